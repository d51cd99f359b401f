//! The CHAOS-class identity (RFC 4892): `version.bind`, `version.server`,
//! `id.server`, `hostname.bind`.

use super::request::{AA, Request, TC, rcode};
use super::writer::{ANSWER, Writer};
use crate::zone::{name, rtype};

/// What `version.bind`/`version.server` and `id.server`/`hostname.bind`
/// say (CH TXT, as NSD and Knot answer them); empty hides one (REFUSED).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Chaos {
    pub identity: String,
    pub version: String,
}

pub const CLASS: u16 = 3;

/// `version.bind`, `version.server`, `id.server`, `hostname.bind` in class
/// CH (RFC 4892): TXT (or ANY) answered with the configured text, TTL 0;
/// other names and types, and hidden (empty) values, REFUSED as NSD and Knot
/// do. AA is set, as BIND does.
pub fn answer(q: &Request, w: &mut Writer, c: &Chaos) -> u16 {
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
    if w.rr_in_class(ANSWER, q.qname, rtype::TXT, CLASS, 0, &rd[..1 + text.len()])
        .is_err()
    {
        w.set_flags(w.flags() | TC);
    }
    rcode::NOERROR
}
