//! The lookup itself (RFC 1034 §4.3.2, RFC 2308, RFC 4592, RFC 8482): a
//! name in one zone version → exact match, referral, wildcard or NXDOMAIN,
//! CNAME chains followed inside the zone, the answer written straight from
//! the zone's wire-form RRsets.

use super::Transport;
use super::request::{AA, TC, rcode};
use super::writer::{ADDITIONAL, ANSWER, AUTHORITY, Full, Writer};
use crate::zone::{F_CNAME, F_DNAME, F_NS, Node, RRset, Zone, name, rtype};
use std::cell::Cell;

/// How many proof records one answer can hold: a CNAME chain of wildcards
/// could ask for more, and duplicates beyond are only wasted bytes.
const MAX_PROVED: usize = 8;

/// The NSEC/NSEC3 owners already written (by address in the zone).
#[derive(Default)]
pub(super) struct Proved(Cell<([usize; MAX_PROVED], usize)>);

impl Proved {
    /// Records `node` as written; false when it already was.
    pub(super) fn first_time(&self, node: Node) -> bool {
        let (mut seen, n) = self.0.get();
        let id = node.name().as_ptr() as usize;
        if seen[..n].contains(&id) {
            return false;
        }
        if n < MAX_PROVED {
            seen[n] = id;
            self.0.set((seen, n + 1));
        }
        true
    }
}

/// Longest CNAME chain followed inside a zone.
const MAX_CHAIN: usize = 16;

/// The name a CNAME/DNAME chain has reached (lower-cased, and as written
/// where it came from) and the hashes of the names it passed.
struct Chain {
    lower: [u8; name::MAX_NAME],
    owner: [u8; name::MAX_NAME],
    len: usize,
    seen: [u64; MAX_CHAIN],
    /// The hash of the name asked.
    first: u64,
}

impl Chain {
    /// Moves on to `target` at step `step`; false when that closes a loop,
    /// which ends the chain once every name in it has been answered.
    fn follow(&mut self, zone: &Zone, target: &[u8], step: usize) -> bool {
        let len = target.len().min(name::MAX_NAME);
        self.len = len;
        self.owner[..len].copy_from_slice(&target[..len]);
        self.lower[..len].copy_from_slice(&target[..len]);
        name::lowercase(&mut self.lower[..len]);
        let h = zone.hash(&self.lower[..len]);
        if self.seen[..step + 1].contains(&h) || h == self.first {
            return false;
        }
        self.seen[step] = h;
        true
    }
}

/// Scratch state of one lookup: the current name (lower-cased) and the
/// names already visited along a CNAME chain.
pub(super) struct Lookup<'z> {
    pub(super) zone: &'z Zone,
    /// DO was set and the zone is signed: RRSIGs and denial proofs go in.
    pub(super) dnssec_ok: bool,
    pub(super) tr: Transport,
    /// The NSEC/NSEC3 records already in the answer (`proof.rs`).
    pub(super) proved: Proved,
}

/// Where a name led. `ce` is the offset in the name of its closest
/// encloser (the longest existing ancestor), which the proofs start from.
pub(super) enum Found<'z> {
    Exact(Node<'z>),
    Referral(Node<'z>),
    Wildcard {
        node: Node<'z>,
        ce: usize,
    },
    Missing {
        ce: usize,
    },
    /// A DNAME owned by the suffix of the name at offset `at` (RFC 6672).
    Dname {
        node: Node<'z>,
        at: usize,
    },
}

impl<'z> Lookup<'z> {
    /// Finds `lname` (lower-cased) in the zone: exact, under a cut, through a
    /// wildcard, or missing.
    fn find(&self, lname: &[u8], qtype: u16) -> Found<'z> {
        let zone = self.zone;
        let apex_len = zone.origin().len();
        if zone.has_cuts() {
            // Walk down from the apex so the highest cut wins; an absent node
            // ends the walk (empty non-terminals are nodes).
            let mut offs = [0u8; 128];
            let mut n = 0;
            let mut i = 0;
            while lname.len() - i > apex_len {
                offs[n] = i as u8;
                n += 1;
                i += lname[i] as usize + 1;
            }
            let mut encloser = None;
            if n > 0 && zone.apex().flags() & F_DNAME != 0 {
                return Found::Dname {
                    node: zone.apex(),
                    at: lname.len() - apex_len,
                };
            }
            for k in (0..n).rev() {
                let suffix = &lname[offs[k] as usize..];
                match zone.find(suffix) {
                    Some(node) => {
                        if node.flags() & F_NS != 0 && !(k == 0 && qtype == rtype::DS) {
                            return Found::Referral(node);
                        }
                        if k == 0 {
                            return Found::Exact(node);
                        }
                        // Below a DNAME owner every name is redirected
                        // (RFC 6672 §2.3); at the owner it is data.
                        if node.flags() & F_DNAME != 0 {
                            return Found::Dname {
                                node,
                                at: offs[k] as usize,
                            };
                        }
                        encloser = Some(offs[k] as usize);
                    }
                    None => {
                        return self.wildcard(lname, encloser.unwrap_or(lname.len() - apex_len));
                    }
                }
            }
            match zone.find(lname) {
                Some(node) => Found::Exact(node),
                None => Found::Missing {
                    ce: lname.len() - apex_len,
                },
            }
        } else {
            if let Some(node) = zone.find(lname) {
                return Found::Exact(node);
            }
            let mut at = 0;
            loop {
                at += lname[at] as usize + 1;
                if lname.len() - at < apex_len {
                    return Found::Missing {
                        ce: lname.len() - apex_len,
                    };
                }
                if zone.find(&lname[at..]).is_some() {
                    return self.wildcard(lname, at);
                }
            }
        }
    }

    /// RFC 4592: the source of synthesis is `*.<closest encloser>`.
    fn wildcard(&self, lname: &[u8], encloser_at: usize) -> Found<'z> {
        let ce = &lname[encloser_at..];
        let mut buf = [0u8; name::MAX_NAME + 2];
        let missing = Found::Missing { ce: encloser_at };
        if ce.len() + 2 > name::MAX_NAME {
            return missing;
        }
        buf[0] = 1;
        buf[1] = b'*';
        buf[2..2 + ce.len()].copy_from_slice(ce);
        match self.zone.find(&buf[..2 + ce.len()]) {
            Some(node) => Found::Wildcard {
                node,
                ce: encloser_at,
            },
            None => missing,
        }
    }

    pub(super) fn resolve(
        &self,
        lname: &[u8],
        qname: &[u8],
        qtype: u16,
        w: &mut Writer,
    ) -> Result<u16, Full> {
        let mut chain = Chain {
            lower: [0u8; name::MAX_NAME],
            owner: [0u8; name::MAX_NAME],
            len: lname.len(),
            seen: [0u64; MAX_CHAIN],
            first: self.zone.hash(lname),
        };
        chain.lower[..lname.len()].copy_from_slice(lname);
        chain.owner[..qname.len()].copy_from_slice(qname);
        for step in 0..MAX_CHAIN {
            let lower = &chain.lower[..chain.len];
            let owner = &chain.owner[..chain.len];
            let mut found = self.find(lower, qtype);
            if let Found::Exact(n) = found
                && self.is_nsec3_owner(n)
            {
                // RFC 5155 §7.2.8: an NSEC3 owner name does not exist for
                // queries (its hash is covered by another NSEC3).
                // A wildcard at the apex still answers it.
                found = self.wildcard(lower, lower[0] as usize + 1);
            }
            let node = match found {
                Found::Referral(cut) => {
                    if step == 0 {
                        w.set_flags(w.flags() & !AA);
                    }
                    self.referral(cut, w)?;
                    return Ok(rcode::NOERROR);
                }
                Found::Missing { ce } => {
                    self.negative(w)?;
                    self.deny_name(lower, ce, w)?;
                    return Ok(rcode::NXDOMAIN);
                }
                Found::Dname { node, at } => {
                    let Some(dname) = node.get(rtype::DNAME) else {
                        break;
                    };
                    let Some(target) = dname.iter().next() else {
                        break;
                    };
                    self.rrset(ANSWER, &owner[at..], dname, node, w)?;
                    // RFC 6672 §2.2: the part of the name below the owner,
                    // then the DNAME's target; too long is YXDOMAIN.
                    let new_len = at + target.len();
                    if new_len > name::MAX_NAME {
                        return Ok(rcode::YXDOMAIN);
                    }
                    let mut synth = [0u8; name::MAX_NAME];
                    synth[..at].copy_from_slice(&owner[..at]);
                    synth[at..new_len].copy_from_slice(target);
                    // The synthesised CNAME is unsigned and takes the DNAME's TTL.
                    w.rr(ANSWER, owner, rtype::CNAME, dname.ttl, &synth[..new_len])?;
                    // A CNAME asked for is answered; otherwise follow it.
                    if qtype == rtype::CNAME
                        || !name::is_subdomain(&synth[..new_len], self.zone.origin())
                    {
                        return Ok(rcode::NOERROR);
                    }
                    if !chain.follow(self.zone, &synth[..new_len], step) {
                        return Ok(rcode::NOERROR);
                    }
                    continue;
                }
                // A wildcard answers under the name asked (RFC 4592 §3.3.1).
                Found::Exact(n) | Found::Wildcard { node: n, .. } => n,
            };
            // Proofs that no closer name exists than the wildcard, and that
            // a name or wildcard lacks the type, are written by `proof.rs`.
            let nodata = |w: &mut Writer| -> Result<(), Full> {
                self.negative(w)?;
                self.deny_type(lower, &found, w)
            };
            // The query's own spelling (or the CNAME target's, as written in
            // the rdata just sent): case preserved, and it compresses.
            let out_owner = owner;
            // RFC 4035 §3.1.4, RFC 6840 §4.3: RRSIG, NSEC and NSEC3 are
            // answered from the owner, never through its CNAME.
            let follows = !matches!(
                qtype,
                rtype::CNAME | rtype::ANY | rtype::RRSIG | rtype::NSEC | rtype::NSEC3
            );
            if node.flags() & F_CNAME != 0 && follows {
                let Some(cname) = node.get(rtype::CNAME) else {
                    break;
                };
                self.rrset(ANSWER, out_owner, cname, node, w)?;
                self.deny_closer(lower, &found, w)?;
                let Some(target) = cname.iter().next() else {
                    break;
                };
                if !name::is_subdomain(target, self.zone.origin()) {
                    return Ok(rcode::NOERROR);
                }
                if !chain.follow(self.zone, target, step) {
                    return Ok(rcode::NOERROR);
                }
                continue;
            }
            if qtype == rtype::ANY {
                let mut any = false;
                // Over UDP the apex answers with its SOA, as NSD does.
                let soa = (self.tr == Transport::Udp)
                    .then(|| node.get(rtype::SOA))
                    .flatten();
                for set in soa.into_iter().chain(node.rrsets()) {
                    if set.rtype == rtype::RRSIG && self.tr == Transport::Udp {
                        continue;
                    }
                    self.rrset(ANSWER, out_owner, set, node, w)?;
                    any = true;
                    // RFC 8482 §4.1: over UDP one RRset is enough.
                    if self.tr == Transport::Udp {
                        break;
                    }
                }
                if !any {
                    nodata(w)?;
                } else {
                    self.deny_closer(lower, &found, w)?;
                }
                return Ok(rcode::NOERROR);
            }
            if qtype == rtype::RRSIG {
                let mut any = false;
                for set in node.rrsets().filter(|s| s.rtype == rtype::RRSIG) {
                    self.rrset(ANSWER, out_owner, set, node, w)?;
                    any = true;
                }
                if !any {
                    nodata(w)?;
                } else {
                    self.deny_closer(lower, &found, w)?;
                }
                return Ok(rcode::NOERROR);
            }
            match node.get(qtype) {
                Some(set) => {
                    self.rrset(ANSWER, out_owner, set, node, w)?;
                    self.deny_closer(lower, &found, w)?;
                    self.additional_for(set, w);
                }
                None => nodata(w)?,
            }
            return Ok(rcode::NOERROR);
        }
        Ok(rcode::NOERROR)
    }

    /// Writes an RRset and, with DO, the RRSIGs covering it.
    pub(super) fn rrset(
        &self,
        section: usize,
        owner: &[u8],
        set: RRset,
        node: Node,
        w: &mut Writer,
    ) -> Result<(), Full> {
        for rd in set.iter() {
            w.rr(section, owner, set.rtype, set.ttl, rd)?;
        }
        if self.dnssec_ok
            && set.rtype != rtype::RRSIG
            && let Some(sigs) = node.sigs(set.rtype)
        {
            for rd in sigs.iter() {
                w.rr(section, owner, rtype::RRSIG, sigs.ttl, rd)?;
            }
        }
        Ok(())
    }

    /// A node of an NSEC3 zone holding only an NSEC3 and its RRSIGs.
    fn is_nsec3_owner(&self, node: Node) -> bool {
        self.zone.denial().is_some_and(|d| d.is_nsec3())
            && node.get(rtype::NSEC3).is_some()
            && node
                .rrsets()
                .all(|s| s.rtype == rtype::NSEC3 || s.rtype == rtype::RRSIG)
    }

    /// NXDOMAIN/NODATA: the SOA in AUTHORITY with the negative TTL.
    fn negative(&self, w: &mut Writer) -> Result<(), Full> {
        let apex = self.zone.apex();
        if let Some(soa) = apex.get(rtype::SOA) {
            let ttl = self.zone.negative_ttl();
            for rd in soa.iter() {
                w.rr(AUTHORITY, apex.name(), rtype::SOA, ttl, rd)?;
            }
            if self.dnssec_ok
                && let Some(sigs) = apex.sigs(rtype::SOA)
            {
                for rd in sigs.iter() {
                    w.rr(AUTHORITY, apex.name(), rtype::RRSIG, ttl, rd)?;
                }
            }
        }
        Ok(())
    }

    /// A referral: the cut's NS (and DS with DO) in AUTHORITY, glue in ADDITIONAL.
    fn referral(&self, cut: Node, w: &mut Writer) -> Result<(), Full> {
        let Some(ns) = cut.get(rtype::NS) else {
            return Ok(());
        };
        self.rrset(AUTHORITY, cut.name(), ns, cut, w)?;
        if self.dnssec_ok {
            match cut.get(rtype::DS) {
                Some(ds) => self.rrset(AUTHORITY, cut.name(), ds, cut, w)?,
                None => self.deny_ds(cut, w)?,
            }
        }
        for target in ns.iter() {
            let in_domain = name::is_subdomain(target, cut.name());
            if self.addresses(target, w).is_err() {
                // RFC 9471: glue for in-domain servers must fit, or TC.
                if in_domain {
                    w.set_flags(w.flags() | TC);
                }
                break;
            }
        }
        Ok(())
    }

    /// A/AAAA of in-zone targets of NS, MX and SRV answers.
    fn additional_for(&self, set: RRset, w: &mut Writer) {
        let skip = match set.rtype {
            rtype::NS => 0,
            rtype::MX => 2,
            rtype::SRV => 6,
            _ => return,
        };
        for rd in set.iter() {
            if rd.len() > skip && self.addresses(&rd[skip..], w).is_err() {
                return;
            }
        }
    }

    /// Adds the A and AAAA RRsets of `target` if the zone holds them; an
    /// RRset that does not fit is left out whole.
    fn addresses(&self, target: &[u8], w: &mut Writer) -> Result<(), Full> {
        if !name::is_subdomain(target, self.zone.origin()) || target.len() > name::MAX_NAME {
            return Ok(());
        }
        let mut lower = [0u8; name::MAX_NAME];
        let l = &mut lower[..target.len()];
        l.copy_from_slice(target);
        name::lowercase(l);
        let Some(node) = self.zone.find(l) else {
            return Ok(());
        };
        for t in [rtype::A, rtype::AAAA] {
            if let Some(set) = node.get(t) {
                let m = w.mark();
                let r = set
                    .iter()
                    .try_for_each(|rd| w.rr(ADDITIONAL, target, t, set.ttl, rd));
                if r.is_err() {
                    w.rollback(m);
                    return r;
                }
            }
        }
        Ok(())
    }
}
