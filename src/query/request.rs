//! A request as it arrives: header, question, OPT and whether a TSIG ends
//! it, read in place without allocating. The numbers of the protocol
//! (rcodes, opcodes, header flags) live here too.

use crate::zone::{name, rtype};

pub const HEADER: usize = 12;

pub mod rcode {
    pub const NOERROR: u16 = 0;
    pub const FORMERR: u16 = 1;
    pub const SERVFAIL: u16 = 2;
    pub const NXDOMAIN: u16 = 3;
    pub const NOTIMP: u16 = 4;
    pub const REFUSED: u16 = 5;
    pub const YXDOMAIN: u16 = 6;
    pub const NOTAUTH: u16 = 9;
    pub const BADVERS: u16 = 16;
    /// RFC 7873 §8: an extended rcode, its upper bits written in the OPT.
    pub const BADCOOKIE: u16 = 23;

    /// The mnemonic of an rcode (RFC 6895 §2.3), for log lines.
    pub fn name(rc: u16) -> String {
        const NAMES: [&str; 12] = [
            "NOERROR",
            "FORMERR",
            "SERVFAIL",
            "NXDOMAIN",
            "NOTIMP",
            "REFUSED",
            "YXDOMAIN",
            "YXRRSET",
            "NXRRSET",
            "NOTAUTH",
            "NOTZONE",
            "DSOTYPENI",
        ];
        match rc {
            16 => "BADVERS".into(),
            23 => "BADCOOKIE".into(),
            _ => NAMES
                .get(rc as usize)
                .map_or_else(|| format!("RCODE{rc}"), |n| n.to_string()),
        }
    }
}

/// The EDNS Padding option's code (RFC 7830).
pub const EDNS_PADDING: u16 = 12;
/// The NSID option's code (RFC 5001).
pub const EDNS_NSID: u16 = 3;
/// The EXPIRE option's code (RFC 7314).
pub const EDNS_EXPIRE: u16 = 9;
/// The COOKIE option's code (RFC 7873).
pub const EDNS_COOKIE: u16 = 10;

pub mod opcode {
    pub const QUERY: u8 = 0;
    pub const NOTIFY: u8 = 4;
}

#[derive(Clone, Copy, Debug)]
pub struct Edns<'a> {
    pub payload: u16,
    pub version: u8,
    pub dnssec_ok: bool,
    /// The query carried the Padding option (RFC 7830).
    pub padding: bool,
    /// The query asked for the server's NSID (RFC 5001).
    pub nsid: bool,
    /// The query asked for the zone's EXPIRE (RFC 7314).
    pub expire: bool,
    /// The first COOKIE option's data (RFC 7873), whatever its length:
    /// `query::edns::Cookie` judges it.
    pub cookie: Option<&'a [u8]>,
}

/// A parsed request. `question` spans the question section in the request.
#[derive(Debug)]
pub struct Request<'a> {
    pub id: u16,
    pub flags: u16,
    pub opcode: u8,
    pub qname: &'a [u8],
    pub qtype: u16,
    pub qclass: u16,
    pub question: &'a [u8],
    pub edns: Option<Edns<'a>>,
    /// The TSIG record that ends the request (RFC 8945 §5.1: it must be
    /// last), for verifying it without parsing the message again.
    pub tsig: Option<TsigAt>,
    /// The rdata of an SOA in the authority section, as offsets into the
    /// message: an IXFR request's client SOA (RFC 1995 §3).
    pub authority_soa: Option<(usize, usize)>,
}

/// Where a request's TSIG record is: its first octet, and its rdata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TsigAt {
    pub record: usize,
    pub rdata: (usize, usize),
}

impl Request<'_> {
    pub fn signed(&self) -> bool {
        self.tsig.is_some()
    }
}

/// Why a request got no normal answer.
#[derive(Debug, PartialEq, Eq)]
pub enum Reject {
    /// Not worth a reply: too short to carry an ID, or itself a response.
    Drop,
    /// Reply with this rcode, echoing the ID and opcode (and OPT if parsed).
    Rcode(u16),
}

/// Header flags.
pub const QR: u16 = 0x8000;
pub const AA: u16 = 0x0400;
pub const TC: u16 = 0x0200;
pub const RD: u16 = 0x0100;
pub const CD: u16 = 0x0010;

pub fn u16_at(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?]))
}

/// Skips an (optionally compressed) name in a message; the offset after it.
pub fn skip_name(b: &[u8], mut i: usize) -> Option<usize> {
    loop {
        let l = *b.get(i)?;
        match l {
            0 => return Some(i + 1),
            1..=63 => i += l as usize + 1,
            0xc0..=0xff => return (i + 2 <= b.len()).then_some(i + 2),
            _ => return None,
        }
    }
}

/// Parses a request. Compression is not allowed in the question (there is
/// nothing before it to point to), so `qname` is an uncompressed wire name.
pub fn parse_request(b: &[u8]) -> Result<Request<'_>, Reject> {
    if b.len() < HEADER {
        return Err(Reject::Drop);
    }
    let id = u16::from_be_bytes([b[0], b[1]]);
    let flags = u16::from_be_bytes([b[2], b[3]]);
    if flags & 0x8000 != 0 {
        return Err(Reject::Drop);
    }
    let opcode = ((flags >> 11) & 0xf) as u8;
    if opcode != opcode::QUERY && opcode != opcode::NOTIFY {
        return Err(Reject::Rcode(rcode::NOTIMP));
    }
    let qd = u16_at(b, 4).unwrap_or(0);
    let an = u16_at(b, 6).unwrap_or(0);
    let ns = u16_at(b, 8).unwrap_or(0);
    let ar = u16_at(b, 10).unwrap_or(0);
    // No question is allowed only to ask for a server cookie (RFC 7873
    // §5.4), which the OPT record read below must then carry.
    if qd > 1 || (qd == 0 && opcode != opcode::QUERY) {
        return Err(Reject::Rcode(rcode::FORMERR));
    }
    let (qname, qtype, qclass, question, mut i) = if qd == 1 {
        let qlen = name::wire_len(&b[HEADER..]).ok_or(Reject::Rcode(rcode::FORMERR))?;
        let qend = HEADER + qlen;
        let qtype = u16_at(b, qend).ok_or(Reject::Rcode(rcode::FORMERR))?;
        let qclass = u16_at(b, qend + 2).ok_or(Reject::Rcode(rcode::FORMERR))?;
        (
            &b[HEADER..qend],
            qtype,
            qclass,
            &b[HEADER..qend + 4],
            qend + 4,
        )
    } else {
        (&b[HEADER..HEADER], 0, 0, &b[HEADER..HEADER], HEADER)
    };
    // Records in the answer and authority sections are skipped (a NOTIFY may
    // carry the SOA; an IXFR request carries the client's SOA in authority).
    let mut edns = None;
    let mut tsig = None;
    let mut authority_soa = None;
    for sect in 0..3 {
        let count = [an, ns, ar][sect];
        for _ in 0..count {
            let owner_at = i;
            i = skip_name(b, i).ok_or(Reject::Rcode(rcode::FORMERR))?;
            let t = u16_at(b, i).ok_or(Reject::Rcode(rcode::FORMERR))?;
            let class = u16_at(b, i + 2).ok_or(Reject::Rcode(rcode::FORMERR))?;
            let ttl_hi = u16_at(b, i + 4).ok_or(Reject::Rcode(rcode::FORMERR))?;
            let ttl_lo = u16_at(b, i + 6).ok_or(Reject::Rcode(rcode::FORMERR))?;
            let rdlen = u16_at(b, i + 8).ok_or(Reject::Rcode(rcode::FORMERR))? as usize;
            let rd_at = i + 10;
            i = rd_at + rdlen;
            if i > b.len() {
                return Err(Reject::Rcode(rcode::FORMERR));
            }
            if tsig.is_some() {
                return Err(Reject::Rcode(rcode::FORMERR));
            }
            if t == rtype::TSIG {
                if sect != 2 {
                    return Err(Reject::Rcode(rcode::FORMERR));
                }
                tsig = Some(TsigAt {
                    record: owner_at,
                    rdata: (rd_at, i),
                });
            }
            if t == rtype::SOA && sect == 1 && authority_soa.is_none() {
                authority_soa = Some((rd_at, i));
            }
            if t == rtype::OPT {
                // RFC 6891 §6.1.1: one OPT, in the additional section, owned by the root.
                if sect != 2 || edns.is_some() || b[owner_at] != 0 {
                    return Err(Reject::Rcode(rcode::FORMERR));
                }
                let mut o = rd_at;
                let (mut padding, mut nsid, mut expire) = (false, false, false);
                let mut cookie = None;
                while o < i {
                    let olen = u16_at(b, o + 2)
                        .filter(|_| o + 4 <= i)
                        .ok_or(Reject::Rcode(rcode::FORMERR))?
                        as usize;
                    match u16_at(b, o) {
                        Some(EDNS_PADDING) => padding = true,
                        Some(EDNS_NSID) => nsid = true,
                        Some(EDNS_EXPIRE) => expire = true,
                        Some(EDNS_COOKIE) if cookie.is_none() => {
                            cookie = b.get(o + 4..o + 4 + olen);
                        }
                        _ => {}
                    }
                    o += 4 + olen;
                }
                if o != i {
                    return Err(Reject::Rcode(rcode::FORMERR));
                }
                edns = Some(Edns {
                    payload: class.max(512),
                    version: (ttl_hi & 0xff) as u8,
                    dnssec_ok: ttl_lo & 0x8000 != 0,
                    padding,
                    nsid,
                    expire,
                    cookie,
                });
            }
        }
    }
    if i != b.len() {
        // Trailing garbage after the counted records.
        return Err(Reject::Rcode(rcode::FORMERR));
    }
    if qd == 0 && edns.is_none_or(|e| e.cookie.is_none()) {
        return Err(Reject::Rcode(rcode::FORMERR));
    }
    Ok(Request {
        id,
        flags,
        opcode,
        qname,
        qtype,
        qclass,
        question,
        edns,
        tsig,
        authority_soa,
    })
}

/// The data of the first option `code` in the OPT record of any message
/// (a response too): how a secondary reads the EXPIRE its primary sent.
pub fn find_option(b: &[u8], code: u16) -> Option<&[u8]> {
    let qd = u16_at(b, 4)?;
    let rest = (0..6)
        .step_by(2)
        .map(|k| u16_at(b, 6 + k).map(u32::from))
        .sum::<Option<u32>>()?;
    let mut i = HEADER;
    for _ in 0..qd {
        i = skip_name(b, i)? + 4;
    }
    for _ in 0..rest {
        i = skip_name(b, i)?;
        let t = u16_at(b, i)?;
        let rdlen = u16_at(b, i + 8)? as usize;
        let (start, end) = (i + 10, i + 10 + rdlen);
        if end > b.len() {
            return None;
        }
        if t == rtype::OPT {
            let mut o = start;
            while o + 4 <= end {
                let olen = u16_at(b, o + 2)? as usize;
                let data = b.get(o + 4..o + 4 + olen).filter(|_| o + 4 + olen <= end)?;
                if u16_at(b, o)? == code {
                    return Some(data);
                }
                o += 4 + olen;
            }
            return None;
        }
        i = end;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &[u8], extra: &[u8], ar: u16) -> Vec<u8> {
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, ar as u8];
        q.extend_from_slice(name);
        q.extend_from_slice(&[0, 1, 0, 1]);
        q.extend_from_slice(extra);
        q
    }

    const OPT: &[u8] = &[0, 0, 41, 0x10, 0, 0, 0, 0x80, 0, 0, 0];

    #[test]
    fn parses_query_with_opt() {
        let q = query(b"\x01a\x00", OPT, 1);
        let r = parse_request(&q).unwrap();
        assert_eq!(r.qname, b"\x01a\x00");
        let e = r.edns.unwrap();
        assert_eq!((e.payload, e.dnssec_ok), (4096, true));
    }

    #[test]
    fn no_question_only_to_ask_for_a_cookie() {
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 0, 0, 0, 0, 0, 0, 1];
        q.extend_from_slice(&[0, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, 12, 0, 10, 0, 8]);
        q.extend_from_slice(b"clientck");
        let r = parse_request(&q).unwrap();
        assert!(r.question.is_empty() && r.qname.is_empty());
        assert_eq!(r.edns.unwrap().cookie, Some(&b"clientck"[..]));
        let no_cookie = [
            0x12, 0x34, 0x01, 0x00, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, 0,
        ];
        assert_eq!(
            parse_request(&no_cookie).unwrap_err(),
            Reject::Rcode(rcode::FORMERR)
        );
    }

    #[test]
    fn rejects_malformed() {
        assert_eq!(parse_request(&[0; 5]).unwrap_err(), Reject::Drop);
        let mut resp = query(b"\x01a\x00", &[], 0);
        resp[2] |= 0x80;
        assert_eq!(parse_request(&resp).unwrap_err(), Reject::Drop);
        let two_opts = query(b"\x01a\x00", &[OPT, OPT].concat(), 2);
        assert_eq!(
            parse_request(&two_opts).unwrap_err(),
            Reject::Rcode(rcode::FORMERR)
        );
        let pointer = query(b"\xc0\x0c", &[], 0);
        assert_eq!(
            parse_request(&pointer).unwrap_err(),
            Reject::Rcode(rcode::FORMERR)
        );
        let mut qd0 = query(b"\x00", &[], 0);
        qd0[5] = 0;
        assert_eq!(
            parse_request(&qd0).unwrap_err(),
            Reject::Rcode(rcode::FORMERR)
        );
        let trailing = query(b"\x00", &[1, 2, 3], 0);
        assert_eq!(
            parse_request(&trailing).unwrap_err(),
            Reject::Rcode(rcode::FORMERR)
        );
    }
}
