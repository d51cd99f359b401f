//! Denial-of-existence proofs for signed zones, written into AUTHORITY
//! when the client set DO (RFC 4035 §3.1.3 for NSEC, RFC 5155 §7.2 for
//! NSEC3), each NSEC/NSEC3 with its RRSIGs and none twice in one answer.
//!
//! NSEC3 proofs start from the closest *provable* encloser: the closest
//! encloser when it has an NSEC3, else the nearest ancestor that has one —
//! under opt-out an empty non-terminal above insecure delegations has none,
//! and the covering NSEC3 of the next closer name then carries the opt-out
//! flag (RFC 5155 §7.2.4, as Knot answers; NSD 4.6 proves from the
//! unprovable encloser there and validators reject it).

use super::lookup::{Found, Lookup};
use super::writer::{AUTHORITY, Full, Writer};
use crate::zone::denial::Denial;
use crate::zone::{Node, name, rtype};

/// Offset of the label just below `ce` on the way to `lname`'s start: the
/// next closer name (RFC 5155 §1.3).
fn next_closer(lname: &[u8], ce: usize) -> Option<usize> {
    let mut at = 0;
    while at < ce {
        let next = at + lname[at] as usize + 1;
        if next == ce {
            return Some(at);
        }
        at = next;
    }
    None
}

/// `*.` followed by `lname[ce..]`, in `buf`.
fn wildcard_at<'b>(lname: &[u8], ce: usize, buf: &'b mut [u8; name::MAX_NAME + 2]) -> &'b [u8] {
    let suffix = &lname[ce..];
    let len = (suffix.len() + 2).min(buf.len());
    buf[0] = 1;
    buf[1] = b'*';
    buf[2..len].copy_from_slice(&suffix[..len - 2]);
    &buf[..len]
}

impl Lookup<'_> {
    fn denial(&self) -> Option<&Denial> {
        if self.dnssec_ok {
            self.zone.denial()
        } else {
            None
        }
    }

    /// Writes the NSEC or NSEC3 RRset `node` owns, with its RRSIGs, once.
    fn prove(&self, node: Option<Node>, w: &mut Writer) -> Result<(), Full> {
        let Some(node) = node else {
            return Ok(());
        };
        let t = if self.zone.denial().is_some_and(Denial::is_nsec3) {
            rtype::NSEC3
        } else {
            rtype::NSEC
        };
        if let Some(set) = node.get(t)
            && self.proved.first_time(node)
        {
            self.rrset(AUTHORITY, node.name(), set, node, w)?;
        }
        Ok(())
    }

    /// NSEC3: the closest provable encloser at or above offset `ce` of
    /// `lname` and the NSEC3 matching it, with the offset of the next
    /// closer name below it (None when `lname` itself matched).
    fn provable_encloser<'z>(
        &'z self,
        d: &Denial,
        lname: &[u8],
        mut ce: usize,
    ) -> (Option<Node<'z>>, Option<usize>) {
        let apex_at = lname.len() - self.zone.apex_key().len();
        loop {
            if let Some(m) = d.nsec3_matching(self.zone, &lname[ce..]) {
                return (Some(m), next_closer(lname, ce));
            }
            if ce >= apex_at {
                return (None, next_closer(lname, ce));
            }
            ce += lname[ce] as usize + 1;
        }
    }

    /// NSEC3 closest (provable) encloser proof: the NSEC3 matching the
    /// encloser and the one covering the next closer name. Returns the
    /// encloser's offset.
    fn encloser_proof(
        &self,
        d: &Denial,
        lname: &[u8],
        ce: usize,
        w: &mut Writer,
    ) -> Result<usize, Full> {
        let (m, nc) = self.provable_encloser(d, lname, ce);
        self.prove(m, w)?;
        let Some(nc) = nc else {
            return Ok(ce);
        };
        self.prove(d.nsec3_covering(self.zone, &lname[nc..]), w)?;
        Ok(nc + lname[nc] as usize + 1)
    }

    /// NXDOMAIN for `lname`, whose closest encloser starts at `ce`: the
    /// name and the wildcard that could have matched are both covered.
    pub(super) fn deny_name(&self, lname: &[u8], ce: usize, w: &mut Writer) -> Result<(), Full> {
        let Some(d) = self.denial() else {
            return Ok(());
        };
        let mut buf = [0u8; name::MAX_NAME + 2];
        if d.is_nsec3() {
            let pce = self.encloser_proof(d, lname, ce, w)?;
            let star = wildcard_at(lname, pce, &mut buf);
            self.prove(d.nsec3_covering(self.zone, star), w)
        } else {
            self.prove(d.nsec_at_or_before(self.zone, lname), w)?;
            let star = wildcard_at(lname, ce, &mut buf);
            self.prove(d.nsec_at_or_before(self.zone, star), w)
        }
    }

    /// NODATA for `qtype` at `lname`, which `found` says exists or was
    /// synthesised from a wildcard.
    pub(super) fn deny_type(
        &self,
        lname: &[u8],
        found: &Found,
        w: &mut Writer,
    ) -> Result<(), Full> {
        let Some(d) = self.denial() else {
            return Ok(());
        };
        match *found {
            Found::Wildcard { node, ce } => {
                if d.is_nsec3() {
                    // RFC 5155 §7.2.5: encloser proof, and the wildcard's own NSEC3.
                    self.encloser_proof(d, lname, ce, w)?;
                    let mut buf = [0u8; name::MAX_NAME + 2];
                    let star = wildcard_at(lname, ce, &mut buf);
                    self.prove(d.nsec3_matching(self.zone, star), w)
                } else {
                    self.prove(d.nsec_at_or_before(self.zone, lname), w)?;
                    self.prove(Some(node), w)
                }
            }
            Found::Exact(node) if !d.is_nsec3() => {
                if node.get(rtype::NSEC).is_some() {
                    self.prove(Some(node), w)
                } else {
                    // An empty non-terminal: the NSEC before it, whose next
                    // name is below it (RFC 4035 §3.1.3.2).
                    self.prove(d.nsec_at_or_before(self.zone, lname), w)
                }
            }
            _ => match d.nsec3_matching(self.zone, lname) {
                Some(m) => self.prove(Some(m), w),
                // No NSEC3 at the name: DS at an opted-out delegation, or an
                // empty non-terminal above only such (RFC 5155 §7.2.4).
                None => self.encloser_proof(d, lname, 0, w).map(|_| ()),
            },
        }
    }

    /// A wildcard answered `lname`: prove no closer name exists (RFC 4035
    /// §3.1.3.3, RFC 5155 §7.2.6). Nothing for an exact match.
    pub(super) fn deny_closer(
        &self,
        lname: &[u8],
        found: &Found,
        w: &mut Writer,
    ) -> Result<(), Full> {
        let (Some(d), Found::Wildcard { ce, .. }) = (self.denial(), found) else {
            return Ok(());
        };
        if d.is_nsec3() {
            match next_closer(lname, *ce) {
                Some(nc) => self.prove(d.nsec3_covering(self.zone, &lname[nc..]), w),
                None => Ok(()),
            }
        } else {
            self.prove(d.nsec_at_or_before(self.zone, lname), w)
        }
    }

    /// A referral to an unsigned child: prove the cut has no DS (RFC 4035
    /// §3.1.4.1; RFC 5155 §7.2.7, opt-out included).
    pub(super) fn deny_ds(&self, cut: Node, w: &mut Writer) -> Result<(), Full> {
        let Some(d) = self.denial() else {
            return Ok(());
        };
        if !d.is_nsec3() {
            return self.prove(Some(cut), w);
        }
        let mut lower = [0u8; name::MAX_NAME];
        let l = &mut lower[..cut.name().len()];
        l.copy_from_slice(cut.name());
        name::lowercase(l);
        match d.nsec3_matching(self.zone, l) {
            Some(m) => self.prove(Some(m), w),
            None => self.encloser_proof(d, l, 0, w).map(|_| ()),
        }
    }
}
