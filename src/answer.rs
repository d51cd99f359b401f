//! The authoritative answer: request bytes + catalog → response bytes
//! (RFC 1034 §4.3.2, RFC 2308, RFC 4592, RFC 6891, RFC 8482). Allocation
//! free: names are handled in fixed buffers, RRsets copied from the zone.

use crate::acl;
use crate::catalog::{Catalog, Served, key_ok};
use crate::stats::METRICS;
use crate::tsig::{self, SharedKeyring};
use crate::wire::{
    self, ADDITIONAL, ANSWER, AUTHORITY, Full, Reject, Request, Writer, opcode, rcode,
};
use crate::zone::{F_CNAME, F_NS, Node, RRset, Zone, name, rtype};
use std::net::IpAddr;
use std::sync::atomic::Ordering::Relaxed;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Transport {
    Udp,
    Tcp,
}

/// Room kept free for the OPT record.
const OPT_LEN: usize = 11;
/// Longest CNAME chain followed inside a zone.
const MAX_CHAIN: usize = 16;

const QR: u16 = 0x8000;
const AA: u16 = 0x0400;
const TC: u16 = 0x0200;
const RD: u16 = 0x0100;
const CD: u16 = 0x0010;

pub struct Options {
    pub udp_payload: u16,
    /// Swapped whole when the config is reloaded.
    pub keys: SharedKeyring,
    /// The CHAOS-class identity answers, swapped on reload.
    pub chaos: arc_swap::ArcSwap<Chaos>,
}

/// What `version.bind`/`version.server` and `id.server`/`hostname.bind`
/// say (CH TXT, as NSD and Knot answer them); empty hides one (REFUSED).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Chaos {
    pub identity: String,
    pub version: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            udp_payload: crate::config::DEFAULT_UDP_PAYLOAD,
            keys: Default::default(),
            chaos: Default::default(),
        }
    }
}

/// Room kept free for a TSIG record when the request was signed.
const TSIG_ROOM: usize = 400;

/// Answers one request into `out` (at least 65535 bytes for TCP). Returns the
/// response length, or `None` when the request must be dropped.
pub fn answer(
    catalog: &Catalog,
    req: &[u8],
    out: &mut [u8],
    tr: Transport,
    peer: IpAddr,
    opts: &Options,
) -> Option<usize> {
    let parsed = match wire::parse_request(req) {
        Ok(r) => r,
        Err(Reject::Drop) => return None,
        Err(Reject::Rcode(rc)) => return Some(bare_error(req, out, rc)),
    };
    if parsed.signed {
        return answer_signed(catalog, req, &parsed, out, tr, peer, opts);
    }
    Some(respond(catalog, &parsed, out, tr, peer, opts, None))
}

/// The slow path for TSIG-signed requests: verify, answer, sign.
fn answer_signed(
    catalog: &Catalog,
    req: &[u8],
    parsed: &Request,
    out: &mut [u8],
    tr: Transport,
    peer: IpAddr,
    opts: &Options,
) -> Option<usize> {
    let now = crate::clock::unix_secs();
    let mut msg = match tsig::verify(&opts.keys.load(), req, now) {
        Ok(v) => {
            let n = respond(catalog, parsed, out, tr, peer, opts, Some(&v.key));
            let mut msg = out[..n].to_vec();
            tsig::sign_response(&v, &mut msg, now)?;
            msg
        }
        Err(f) => {
            crate::warn_limited!(%peer, "refused signed request: {}", f.describe());
            let rc = if matches!(f, tsig::Failure::Malformed) {
                rcode::FORMERR
            } else {
                rcode::NOTAUTH
            };
            let mut w = Writer::new(out, 512);
            w.header(parsed.id, QR | (parsed.flags & 0x7800) | rc);
            let _ = w.question(parsed.question);
            let n = w.finish();
            let mut msg = out[..n].to_vec();
            tsig::error_response(&f, &mut msg, now);
            msg
        }
    };
    msg.truncate(out.len());
    out[..msg.len()].copy_from_slice(&msg);
    Some(msg.len())
}

/// Builds the response to a parsed request; `key` names the TSIG key that
/// signed it (room is kept for the response's TSIG).
fn respond(
    catalog: &Catalog,
    parsed: &Request,
    out: &mut [u8],
    tr: Transport,
    peer: IpAddr,
    opts: &Options,
    key: Option<&[u8]>,
) -> usize {
    let reserve = if key.is_some() { TSIG_ROOM } else { 0 };
    let edns = parsed.edns;
    let limit = match (tr, edns) {
        (Transport::Tcp, _) => 65535,
        (Transport::Udp, None) => 512,
        (Transport::Udp, Some(e)) => e.payload.min(opts.udp_payload).max(512) as usize,
    } - reserve;
    let mut w = Writer::new(out, limit - if edns.is_some() { OPT_LEN } else { 0 });
    let flags = QR | (parsed.flags & (0x7800 | RD | CD));
    w.header(parsed.id, flags);
    let rc = if w.question(parsed.question).is_err() {
        rcode::FORMERR
    } else if parsed.edns.is_some_and(|e| e.version > 0) {
        rcode::BADVERS
    } else if parsed.opcode == opcode::NOTIFY {
        notify(catalog, parsed, &mut w, peer, key)
    } else if parsed.opcode != opcode::QUERY {
        rcode::NOTIMP
    } else {
        query(catalog, parsed, &mut w, tr, peer, key, opts)
    };
    let mut flags = w.flags() | (rc & 0xf);
    if rc == rcode::FORMERR || rc == rcode::BADVERS {
        flags &= !AA;
    }
    w.set_flags(flags);
    if let Some(e) = edns {
        w.set_limit(limit);
        let payload = opts.udp_payload;
        w.opt(payload, (rc >> 4) as u8, e.dnssec_ok);
    }
    w.finish()
}

/// FORMERR/NOTIMP for a request whose question could not be read: the
/// header alone, echoing ID, opcode and RD.
fn bare_error(req: &[u8], out: &mut [u8], rc: u16) -> usize {
    out[..12].fill(0);
    out[0..2].copy_from_slice(&req[0..2]);
    let flags = QR | (u16::from_be_bytes([req[2], req[3]]) & (0x7800 | RD)) | rc;
    out[2..4].copy_from_slice(&flags.to_be_bytes());
    12
}

/// Scratch state of one lookup: the current name (lower-cased) and the
/// names already visited along a CNAME chain.
struct Lookup<'z> {
    zone: &'z Zone,
    dnssec_ok: bool,
    tr: Transport,
}

enum Found<'z> {
    Exact(Node<'z>),
    Referral(Node<'z>),
    Wildcard(Node<'z>),
    Missing,
}

fn query(
    catalog: &Catalog,
    q: &Request,
    w: &mut Writer,
    tr: Transport,
    peer: IpAddr,
    key: Option<&[u8]>,
    opts: &Options,
) -> u16 {
    match q.qtype {
        rtype::OPT | rtype::TSIG | rtype::TKEY => return rcode::FORMERR,
        rtype::MAILA | rtype::MAILB => return rcode::NOTIMP,
        // AXFR is TCP only (RFC 5936 §4.2); over TCP the server streams it.
        rtype::AXFR => return rcode::FORMERR,
        rtype::IXFR => return ixfr_over_udp(catalog, q, w, peer, key),
        _ => {}
    }
    if q.qclass == CHAOS {
        return chaos(q, w, &opts.chaos.load());
    }
    if q.qclass != 1 && q.qclass != 255 {
        return rcode::REFUSED;
    }
    let mut lower = [0u8; name::MAX_NAME];
    let qname = &mut lower[..q.qname.len()];
    qname.copy_from_slice(q.qname);
    name::lowercase(qname);
    crate::supervise::inject_fault(qname);
    let Some(mut served) = catalog.find(qname) else {
        return rcode::REFUSED;
    };
    served.status.queries.add();
    // A follower checking the zone's serial (only hosts allowed to transfer
    // count, so resolvers asking SOA do not fill the table).
    if q.qtype == rtype::SOA
        && *served.apex == *qname
        && acl::allows(&served.policy.allow_transfer, peer)
    {
        served.status.follower_seen(peer, None);
    }
    // DS lives on the parent side of a cut (RFC 4035 §3.1.4.1).
    if q.qtype == rtype::DS
        && qname[..] == *served.apex
        && let Some(parent) = catalog.find_parent(&served.apex)
    {
        served = parent;
    }
    let Some(zone) = served.zone.as_deref() else {
        return rcode::SERVFAIL;
    };
    w.set_flags(w.flags() | AA);
    let lk = Lookup {
        zone,
        dnssec_ok: q.edns.is_some_and(|e| e.dnssec_ok),
        tr,
    };
    let answer_start = w.mark();
    match lk.resolve(qname, q.qname, q.qtype, w) {
        Ok(rc) => rc,
        Err(Full) => {
            w.rollback(answer_start);
            w.set_flags(w.flags() | TC);
            rcode::NOERROR
        }
    }
}

const CHAOS: u16 = 3;

/// `version.bind`, `version.server`, `id.server`, `hostname.bind` in class
/// CH (RFC 4892): TXT (or ANY) answered with the configured text, TTL 0;
/// other names and types, and hidden (empty) values, REFUSED as NSD and Knot
/// do. AA is set, as BIND does.
fn chaos(q: &Request, w: &mut Writer, c: &Chaos) -> u16 {
    let mut lower = [0u8; name::MAX_NAME];
    let qname = &mut lower[..q.qname.len()];
    qname.copy_from_slice(q.qname);
    name::lowercase(qname);
    let text = match &qname[..] {
        b"\x07version\x04bind\x00" | b"\x07version\x06server\x00" => &c.version,
        b"\x02id\x06server\x00" | b"\x08hostname\x04bind\x00" => &c.identity,
        _ => return rcode::REFUSED,
    };
    if text.is_empty() || !matches!(q.qtype, rtype::TXT | rtype::ANY) || text.len() > 255 {
        return rcode::REFUSED;
    }
    let mut rd = [0u8; 256];
    rd[0] = text.len() as u8;
    rd[1..1 + text.len()].copy_from_slice(text.as_bytes());
    w.set_flags(w.flags() | AA);
    if w.rr_in_class(ANSWER, q.qname, rtype::TXT, CHAOS, 0, &rd[..1 + text.len()])
        .is_err()
    {
        w.set_flags(w.flags() | TC);
    }
    rcode::NOERROR
}

/// The zone a transfer request names, if the name is exactly a zone apex.
pub fn transfer_zone<'c>(catalog: &'c Catalog, qname: &[u8]) -> Option<&'c Served> {
    let mut lower = [0u8; name::MAX_NAME];
    let l = &mut lower[..qname.len()];
    l.copy_from_slice(qname);
    name::lowercase(l);
    catalog.find(l).filter(|s| *s.apex == *l)
}

/// NOTIFY in (RFC 1996): for a secondary zone, from an allowed source
/// (with the zone's key, if it has one), it asks the zone's task to check
/// its primary now. Anything else is refused and logged.
fn notify(catalog: &Catalog, q: &Request, w: &mut Writer, peer: IpAddr, key: Option<&[u8]>) -> u16 {
    let zname = || name::to_text(q.qname);
    let Some(served) = transfer_zone(catalog, q.qname) else {
        crate::warn_limited!(zone = %zname(), %peer, rcode = "NOTAUTH", "NOTIFY for a zone not served here");
        return rcode::NOTAUTH;
    };
    let Some(door) = served.notify_in.as_ref() else {
        crate::warn_limited!(zone = %zname(), %peer, rcode = "NOTAUTH", "NOTIFY for a primary zone");
        return rcode::NOTAUTH;
    };
    if !acl::allows(&door.allow, peer) || !key_ok(door.key.as_deref(), key) {
        let key = key.map_or("none".to_string(), name::to_text);
        crate::warn_limited!(zone = %zname(), %peer, %key, rcode = "REFUSED", "NOTIFY from a source not in allow_notify (or without the zone's key); ignored");
        METRICS.notify_refused.fetch_add(1, Relaxed);
        return rcode::REFUSED;
    }
    METRICS.notify_received.fetch_add(1, Relaxed);
    let _ = door.tx.send(peer);
    w.set_flags(w.flags() | AA);
    rcode::NOERROR
}

/// May `peer`, whose request was signed with `key` (if any), transfer the zone?
pub fn transfer_allowed(served: &Served, peer: IpAddr, key: Option<&[u8]>) -> bool {
    acl::allows(&served.policy.allow_transfer, peer)
        && key_ok(served.policy.transfer_key.as_deref(), key)
}

/// IXFR over UDP (RFC 1995 §2): the current SOA alone; a client that is
/// behind then comes back over TCP.
fn ixfr_over_udp(
    catalog: &Catalog,
    q: &Request,
    w: &mut Writer,
    peer: IpAddr,
    key: Option<&[u8]>,
) -> u16 {
    let Some(served) = transfer_zone(catalog, q.qname) else {
        return rcode::NOTAUTH;
    };
    if !transfer_allowed(served, peer, key) {
        return rcode::REFUSED;
    }
    let Some(zone) = served.zone.as_deref() else {
        return rcode::SERVFAIL;
    };
    w.set_flags(w.flags() | AA);
    let soa = zone.soa_rr();
    if w.rr(ANSWER, q.qname, rtype::SOA, soa.ttl, &soa.rdata)
        .is_err()
    {
        w.set_flags(w.flags() | TC);
    }
    rcode::NOERROR
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
                        encloser = Some(offs[k] as usize);
                    }
                    None => {
                        return self.wildcard(lname, encloser.unwrap_or(lname.len() - apex_len));
                    }
                }
            }
            match zone.find(lname) {
                Some(node) => Found::Exact(node),
                None => Found::Missing,
            }
        } else {
            if let Some(node) = zone.find(lname) {
                return Found::Exact(node);
            }
            let mut at = 0;
            loop {
                at += lname[at] as usize + 1;
                if lname.len() - at < apex_len {
                    return Found::Missing;
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
        if ce.len() + 2 > name::MAX_NAME {
            return Found::Missing;
        }
        buf[0] = 1;
        buf[1] = b'*';
        buf[2..2 + ce.len()].copy_from_slice(ce);
        match self.zone.find(&buf[..2 + ce.len()]) {
            Some(node) => Found::Wildcard(node),
            None => Found::Missing,
        }
    }

    fn resolve(&self, lname: &[u8], qname: &[u8], qtype: u16, w: &mut Writer) -> Result<u16, Full> {
        let mut cur_lower = [0u8; name::MAX_NAME];
        let mut cur_owner = [0u8; name::MAX_NAME];
        let mut len = lname.len();
        cur_lower[..len].copy_from_slice(lname);
        cur_owner[..len].copy_from_slice(qname);
        let mut seen_hashes = [0u64; MAX_CHAIN];
        for step in 0..MAX_CHAIN {
            let lower = &cur_lower[..len];
            let owner = &cur_owner[..len];
            let node = match self.find(lower, qtype) {
                Found::Referral(cut) => {
                    if step == 0 {
                        w.set_flags(w.flags() & !AA);
                    }
                    self.referral(cut, w)?;
                    return Ok(rcode::NOERROR);
                }
                Found::Missing => {
                    self.negative(w)?;
                    return Ok(rcode::NXDOMAIN);
                }
                // A wildcard answers under the name asked (RFC 4592 §3.3.1).
                Found::Exact(n) | Found::Wildcard(n) => n,
            };
            // The query's own spelling (or the CNAME target's, as written in
            // the rdata just sent): case preserved, and it compresses.
            let out_owner = owner;
            if node.flags() & F_CNAME != 0 && qtype != rtype::CNAME && qtype != rtype::ANY {
                let Some(cname) = node.get(rtype::CNAME) else {
                    break;
                };
                self.rrset(ANSWER, out_owner, cname, node, w)?;
                let Some(target) = cname.iter().next() else {
                    break;
                };
                if !name::is_subdomain(target, self.zone.origin()) {
                    return Ok(rcode::NOERROR);
                }
                len = target.len();
                cur_owner[..len].copy_from_slice(target);
                cur_lower[..len].copy_from_slice(target);
                name::lowercase(&mut cur_lower[..len]);
                // A loop ends the chain once every name in it has been answered.
                let h = self.zone.hash(&cur_lower[..len]);
                if seen_hashes[..step + 1].contains(&h) || h == self.zone.hash(lname) {
                    return Ok(rcode::NOERROR);
                }
                seen_hashes[step] = h;
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
                    self.negative(w)?;
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
                    self.negative(w)?;
                }
                return Ok(rcode::NOERROR);
            }
            match node.get(qtype) {
                Some(set) => {
                    self.rrset(ANSWER, out_owner, set, node, w)?;
                    self.additional_for(set, w);
                }
                None => self.negative(w)?,
            }
            return Ok(rcode::NOERROR);
        }
        Ok(rcode::NOERROR)
    }

    /// Writes an RRset and, with DO, the RRSIGs covering it.
    fn rrset(
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
        if self.dnssec_ok
            && let Some(ds) = cut.get(rtype::DS)
        {
            self.rrset(AUTHORITY, cut.name(), ds, cut, w)?;
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
