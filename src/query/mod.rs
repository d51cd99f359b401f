//! The query path: request bytes and a `Catalog` → response bytes. It reads
//! the catalog and nothing else: NOTIFY and transfers are answered by
//! `xfr/`, chosen by `server/dispatch.rs`, which also verifies TSIG.
//! Allocation free: names are handled in fixed buffers, RRsets copied
//! from the zone (`tests/answer_path_allocates_nothing.rs`).

pub mod chaos;
pub mod edns;
mod lookup;
mod proof;
pub mod request;
pub mod writer;

use crate::catalog::Catalog;
use crate::zone::{name, rtype};
use request::{AA, CD, QR, RD, Request, TC, opcode, rcode};
use writer::{Full, Writer};

pub use chaos::Chaos;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Transport {
    Udp,
    Tcp,
    /// DNS over TLS: answered as over TCP, and padded when asked (RFC 7830).
    Tls,
}

/// Room kept free for the OPT record.
const OPT_LEN: usize = 11;
/// The response block length RFC 8467 recommends.
const PADDING_BLOCK: usize = 468;
/// Room kept free for a TSIG record when the request was signed.
pub const TSIG_ROOM: usize = 400;

pub struct Options {
    /// Largest UDP payload sent.
    pub udp_payload: u16,
    /// The CHAOS-class identity answers, swapped on reload.
    pub chaos: arc_swap::ArcSwap<Chaos>,
    /// NSID and the cookie secrets, swapped on reload.
    pub edns: arc_swap::ArcSwap<edns::Settings>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            udp_payload: crate::config::DEFAULT_UDP_PAYLOAD,
            chaos: Default::default(),
            edns: Default::default(),
        }
    }
}

/// Writes a response to `parsed` into `out`: header, question, the body
/// `body` writes (it returns the rcode), the OPT record, and the size limit
/// of the transport and the client (room kept for a TSIG when `signed`).
/// The OPT carries the options asked for (`edns`): NSID, `cookie`, and
/// EXPIRE when the body set `Writer::expire`.
/// Every reply goes through here, whatever answers it.
pub fn respond(
    parsed: &Request,
    out: &mut [u8],
    tr: Transport,
    opts: &Options,
    signed: bool,
    cookie: &edns::Cookie,
    body: impl FnOnce(&mut Writer) -> u16,
) -> usize {
    let reserve = if signed { TSIG_ROOM } else { 0 };
    let edns = parsed.edns;
    let limit = match (tr, edns) {
        (Transport::Tcp | Transport::Tls, _) => 65535,
        (Transport::Udp, None) => 512,
        (Transport::Udp, Some(e)) => e.payload.min(opts.udp_payload).max(512) as usize,
    } - reserve;
    let budget = limit.saturating_sub(OPT_LEN + request::HEADER + parsed.question.len());
    let mut options = edns.and_then(|e| edns::Reply::new(&e, cookie, opts, budget));
    let opt_room = OPT_LEN + options.as_ref().map_or(0, edns::Reply::room);
    let mut w = Writer::new(out, limit - if edns.is_some() { opt_room } else { 0 });
    let flags = QR | (parsed.flags & (0x7800 | echoed_flags(parsed.opcode)));
    w.header(parsed.id, flags);
    let rc = if w.question(parsed.question).is_err() {
        rcode::FORMERR
    } else if parsed.edns.is_some_and(|e| e.version > 0) {
        rcode::BADVERS
    } else if parsed.opcode != opcode::QUERY && parsed.opcode != opcode::NOTIFY {
        rcode::NOTIMP
    } else {
        body(&mut w)
    };
    let mut flags = w.flags() | (rc & 0xf);
    if rc == rcode::FORMERR || rc == rcode::BADVERS {
        flags &= !AA;
    }
    w.set_flags(flags);
    if let Some(e) = edns {
        w.set_limit(limit);
        // RFC 8467 §4.1: pad responses to a multiple of 468 octets, only
        // over an encrypted transport and only when the query was padded.
        let pad_to = if tr == Transport::Tls && e.padding {
            PADDING_BLOCK
        } else {
            0
        };
        let expire = w.expire;
        let options = options.as_mut().map_or(&[][..], |o| o.finish(expire));
        w.opt(
            opts.udp_payload,
            (rc >> 4) as u8,
            e.dnssec_ok,
            options,
            pad_to,
        );
    }
    w.finish()
}

/// The request flags a reply copies besides the opcode: RD (RFC 1035
/// §4.1.1) and CD (RFC 4035 §3.2.2) are defined for QUERY only, so a reply
/// to any other opcode clears them, as BIND 9.18 does (its NOTIMP to opcode
/// 15 with every flag set keeps none; ISC's genreport test "opcodeflg"
/// fails a reply that keeps RD).
fn echoed_flags(op: u8) -> u16 {
    if op == opcode::QUERY { RD | CD } else { 0 }
}

/// FORMERR/NOTIMP for a request whose question could not be read: the
/// header alone, echoing ID, opcode, and RD and CD for a QUERY.
pub fn bare_error(req: &[u8], out: &mut [u8], rc: u16) -> usize {
    out[..12].fill(0);
    out[0..2].copy_from_slice(&req[0..2]);
    let f = u16::from_be_bytes([req[2], req[3]]);
    let flags = QR | (f & (0x7800 | echoed_flags(((f >> 11) & 0xf) as u8))) | rc;
    out[2..4].copy_from_slice(&flags.to_be_bytes());
    12
}

/// Answers a QUERY from the catalog into `w` (header and question already
/// written); returns the rcode. Transfers (AXFR, IXFR) are not asked here.
pub fn lookup(
    catalog: &Catalog,
    q: &Request,
    w: &mut Writer,
    tr: Transport,
    opts: &Options,
) -> u16 {
    match q.qtype {
        rtype::OPT | rtype::TSIG | rtype::TKEY => return rcode::FORMERR,
        rtype::MAILA | rtype::MAILB => return rcode::NOTIMP,
        // AXFR is TCP only (RFC 5936 §4.2); over TCP the server streams it.
        rtype::AXFR => return rcode::FORMERR,
        _ => {}
    }
    if q.qclass == chaos::CLASS {
        return chaos::answer(q, w, &opts.chaos.load());
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
    if q.qtype == rtype::SOA && q.edns.is_some_and(|e| e.expire) && qname[..] == *served.apex {
        w.expire = edns::zone_expire(served);
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
    let lk = lookup::Lookup {
        zone,
        // An unsigned zone is answered as unsigned whatever DO says (as NSD
        // and Knot answer): no DS in its referrals, no RRSIGs.
        dnssec_ok: q.edns.is_some_and(|e| e.dnssec_ok) && zone.is_signed(),
        tr,
        proved: Default::default(),
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
