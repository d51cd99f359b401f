//! Records in master-file format, for the secondary's copy of a zone. Common
//! types are written as people read them; the rest in RFC 3597 generic form
//! (`TYPE \# len hex`), which reads back exactly.

use super::diff::Rr;
use super::{Zone, name, rtype};
use std::fmt::Write;
use std::net::{Ipv4Addr, Ipv6Addr};

fn charstrings(mut rd: &[u8], out: &mut String) -> Option<()> {
    let mut first = true;
    while !rd.is_empty() {
        let len = rd[0] as usize;
        let s = rd.get(1..1 + len)?;
        if !first {
            out.push(' ');
        }
        first = false;
        out.push('"');
        for &c in s {
            // Inside quotes a space is plain text.
            name::escape_byte(c, b"\"\\", 0x20, out);
        }
        out.push('"');
        rd = &rd[1 + len..];
    }
    Some(())
}

fn names(rd: &[u8], count: usize, out: &mut String) -> Option<usize> {
    let mut at = 0;
    for i in 0..count {
        let l = name::wire_len(&rd[at..])?;
        if i > 0 {
            out.push(' ');
        }
        out.push_str(&name::to_text(&rd[at..at + l]));
        at += l;
    }
    Some(at)
}

fn native(t: u16, rd: &[u8], out: &mut String) -> Option<()> {
    match t {
        rtype::A => {
            let a: [u8; 4] = rd.try_into().ok()?;
            let _ = write!(out, "{}", Ipv4Addr::from(a));
        }
        rtype::AAAA => {
            let a: [u8; 16] = rd.try_into().ok()?;
            let _ = write!(out, "{}", Ipv6Addr::from(a));
        }
        rtype::NS | rtype::CNAME | rtype::PTR | rtype::DNAME => {
            (names(rd, 1, out)? == rd.len()).then_some(())?;
        }
        rtype::MX => {
            let _ = write!(out, "{} ", u16::from_be_bytes([*rd.first()?, *rd.get(1)?]));
            (names(&rd[2..], 1, out)? + 2 == rd.len()).then_some(())?;
        }
        rtype::SRV => {
            let n = |i: usize| rd.get(i..i + 2).map(|b| u16::from_be_bytes([b[0], b[1]]));
            let _ = write!(out, "{} {} {} ", n(0)?, n(2)?, n(4)?);
            (names(&rd[6..], 1, out)? + 6 == rd.len()).then_some(())?;
        }
        rtype::SOA => {
            let at = names(rd, 2, out)?;
            let f = rd.get(at..at + 20)?;
            (at + 20 == rd.len()).then_some(())?;
            for i in 0..5 {
                let _ = write!(
                    out,
                    " {}",
                    u32::from_be_bytes([f[4 * i], f[4 * i + 1], f[4 * i + 2], f[4 * i + 3]])
                );
            }
        }
        rtype::TXT | rtype::SPF => charstrings(rd, out)?,
        _ => return None,
    }
    Some(())
}

/// One record as a master-file line (absolute owner, TTL, IN, type, rdata).
pub fn record_line(r: &Rr, out: &mut String) {
    let _ = write!(out, "{} {} IN ", name::to_text(&r.owner), r.ttl);
    let mut rd = String::new();
    if native(r.rtype, &r.rdata, &mut rd).is_some() {
        let _ = write!(out, "{} {}", rtype::to_text(r.rtype), rd);
    } else {
        let _ = write!(out, "TYPE{} \\# {}", r.rtype, r.rdata.len());
        if !r.rdata.is_empty() {
            out.push(' ');
            for b in r.rdata.iter() {
                let _ = write!(out, "{b:02x}");
            }
        }
    }
    out.push('\n');
}

/// The whole zone, SOA first.
pub fn zone_text(z: &Zone) -> String {
    let mut out = String::with_capacity(z.record_count() * 48 + 64);
    out.push_str("; written by tandem: the secondary's copy of the zone\n");
    record_line(&z.soa_rr(), &mut out);
    let mut apex = z.origin().to_vec();
    name::lowercase(&mut apex);
    for node in z.nodes() {
        let at_apex = node.name().eq_ignore_ascii_case(&apex);
        for set in node.rrsets() {
            if at_apex && set.rtype == rtype::SOA {
                continue;
            }
            for rd in set.iter() {
                let r = Rr {
                    owner: node.name().into(),
                    rtype: set.rtype,
                    ttl: set.ttl,
                    rdata: rd.into(),
                };
                record_line(&r, &mut out);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zone::diff::content_hash;
    use crate::zone::load_zone_str;

    #[test]
    fn every_test_zone_reads_back_the_same() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/");
        for (origin, file) in [
            ("example.test.", "example.test.zone"),
            ("signed.test.", "signed.test.zone"),
            ("signed.test.", "nsec3.signed.test.zone"),
        ] {
            let apex = name::parse_absolute(origin).unwrap();
            let z =
                crate::zone::load_zone_file(std::path::Path::new(&format!("{dir}{file}")), &apex)
                    .unwrap()
                    .zone;
            let text = zone_text(&z);
            let back = load_zone_str(&text, "copy", &apex)
                .unwrap_or_else(|e| panic!("{file}: {e}\n{text}"));
            assert_eq!(content_hash(&back), content_hash(&z), "{file}");
            assert_eq!(back.serial(), z.serial());
            assert_eq!(back.record_count(), z.record_count());
        }
    }
}
