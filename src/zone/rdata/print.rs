//! Rdata in presentation format, field by field as the type table says:
//! what `parse` reads back to the same octets. Types without a table entry
//! (and rdata that is not what its type says) are printed in RFC 3597
//! generic form, which reads back exactly too.

use super::{Field, bitmap_types, info, loc, parse::sig_time_text, split, svc_key_name};
use crate::zone::{name, rtype};
use data_encoding::{BASE32HEX_NOPAD, BASE64, HEXUPPER};
use std::fmt::Write;
use std::net::{Ipv4Addr, Ipv6Addr};

/// `"…"` with `"` and `\` escaped and unprintable octets as `\DDD`.
fn quoted(s: &[u8], out: &mut String) {
    out.push('"');
    for &c in s {
        name::escape_byte(c, b"\"\\", 0x20, out);
    }
    out.push('"');
}

/// One SvcParam value item: as `quoted`, commas escaped too (RFC 9460 §A.1).
fn list_item(s: &[u8], out: &mut String) {
    for &c in s {
        name::escape_byte(c, b"\"\\,", 0x21, out);
    }
}

fn svc_params(mut v: &[u8], out: &mut String) {
    let mut first = true;
    while v.len() >= 4 {
        let key = u16::from_be_bytes([v[0], v[1]]);
        let len = u16::from_be_bytes([v[2], v[3]]) as usize;
        let val = &v[4..4 + len.min(v.len() - 4)];
        v = &v[4 + val.len()..];
        if !first {
            out.push(' ');
        }
        first = false;
        out.push_str(&svc_key_name(key));
        match key {
            0 => {
                let keys: Vec<String> = val
                    .chunks(2)
                    .map(|c| svc_key_name(u16::from_be_bytes([c[0], c[1]])))
                    .collect();
                let _ = write!(out, "={}", keys.join(","));
            }
            1 => {
                out.push_str("=\"");
                let mut rest = val;
                let mut first = true;
                while let Some(&l) = rest.first() {
                    if !first {
                        out.push(',');
                    }
                    first = false;
                    list_item(&rest[1..1 + l as usize], out);
                    rest = &rest[1 + l as usize..];
                }
                out.push('"');
            }
            2 => {}
            3 => {
                let _ = write!(out, "={}", u16::from_be_bytes([val[0], val[1]]));
            }
            4 => {
                let a: Vec<String> = val
                    .chunks(4)
                    .map(|c| Ipv4Addr::from([c[0], c[1], c[2], c[3]]).to_string())
                    .collect();
                let _ = write!(out, "={}", a.join(","));
            }
            5 => {
                let _ = write!(out, "={}", BASE64.encode(val));
            }
            6 => {
                let a: Vec<String> = val
                    .chunks(16)
                    .map(|c| {
                        let mut b = [0u8; 16];
                        b.copy_from_slice(c);
                        Ipv6Addr::from(b).to_string()
                    })
                    .collect();
                let _ = write!(out, "={}", a.join(","));
            }
            _ if val.is_empty() => {}
            _ => {
                out.push('=');
                quoted(val, out);
            }
        }
    }
}

fn field(f: Field, v: &[u8], out: &mut String) -> Option<()> {
    let u16_at = |i: usize| Some(u16::from_be_bytes([*v.get(i)?, *v.get(i + 1)?]));
    let u32_at = || Some(u32::from_be_bytes(v.get(..4)?.try_into().ok()?));
    match f {
        Field::U8 => {
            let _ = write!(out, "{}", v.first()?);
        }
        Field::U16 => {
            let _ = write!(out, "{}", u16_at(0)?);
        }
        Field::U32 | Field::Period => {
            let _ = write!(out, "{}", u32_at()?);
        }
        Field::Time => out.push_str(&sig_time_text(u32_at()?)),
        Field::Type => out.push_str(&rtype::to_text(u16_at(0)?)),
        Field::Ipv4 => {
            let a: [u8; 4] = v.try_into().ok()?;
            let _ = write!(out, "{}", Ipv4Addr::from(a));
        }
        Field::Ipv6 => {
            let a: [u8; 16] = v.try_into().ok()?;
            let _ = write!(out, "{}", Ipv6Addr::from(a));
        }
        Field::Name(_) => out.push_str(&name::to_text(v)),
        Field::Text => quoted(v.get(1..)?, out),
        Field::Texts => {
            let mut rest = v;
            let mut first = true;
            while let Some(&l) = rest.first() {
                if !first {
                    out.push(' ');
                }
                first = false;
                quoted(rest.get(1..1 + l as usize)?, out);
                rest = &rest[1 + l as usize..];
            }
        }
        Field::Base64 => out.push_str(&BASE64.encode(v)),
        Field::Hex => out.push_str(&HEXUPPER.encode(v)),
        Field::Salt => match v.get(1..)? {
            [] => out.push('-'),
            s => out.push_str(&HEXUPPER.encode(s)),
        },
        Field::Hash => out.push_str(&BASE32HEX_NOPAD.encode(v.get(1..)?)),
        Field::Bitmap => {
            let types: Vec<String> = bitmap_types(v).map(rtype::to_text).collect();
            out.push_str(&types.join(" "));
        }
        Field::SvcParams => svc_params(v, out),
        Field::Tag => out.push_str(std::str::from_utf8(v.get(1..)?).ok()?),
        Field::Rest => quoted(v, out),
        Field::Eui48 | Field::Eui64 => {
            let parts: Vec<String> = v.iter().map(|b| format!("{b:02x}")).collect();
            out.push_str(&parts.join("-"));
        }
        Field::Loc => out.push_str(&loc::text(v)?),
    }
    Some(())
}

/// Appends the presentation form of well-formed rdata of a known type;
/// false (and `out` as it was) otherwise.
pub fn known(t: u16, rd: &[u8], out: &mut String) -> bool {
    let Some(info) = info(t) else {
        return false;
    };
    if super::validate(t, rd).is_err() {
        return false;
    }
    let start = out.len();
    let mut ok = true;
    for (i, f) in split(info, rd).enumerate() {
        let Ok((fl, v)) = f else {
            ok = false;
            break;
        };
        let before = out.len();
        if i > 0 {
            out.push(' ');
        }
        if field(fl, v, out).is_none() {
            ok = false;
            break;
        }
        // A field that prints as nothing (an empty bitmap) takes no blank.
        if out.len() == before + 1 && i > 0 {
            out.truncate(before);
        }
    }
    if !ok {
        out.truncate(start);
    }
    ok
}

/// RFC 3597 generic form: `\# len hex`.
pub fn generic(rd: &[u8], out: &mut String) {
    let _ = write!(out, "\\# {}", rd.len());
    if !rd.is_empty() {
        out.push(' ');
        out.push_str(&HEXUPPER.encode(rd));
    }
}

/// `TYPE rdata` for a record: the mnemonic and presentation form when the
/// type has one, else `TYPEnnn \# len hex`.
pub fn type_and_rdata(t: u16, rd: &[u8], out: &mut String) {
    let at = out.len();
    out.push_str(&rtype::to_text(t));
    out.push(' ');
    if !known(t, rd, out) {
        out.truncate(at);
        let _ = write!(out, "TYPE{t} ");
        generic(rd, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zone::rdata::{parse, validate};

    /// Every known type: text → wire → text → wire gives the same octets.
    #[test]
    fn every_type_reads_back() {
        let origin = b"\x07example\x00";
        for (t, text) in [
            (rtype::A, "192.0.2.1"),
            (rtype::NS, "ns.example."),
            (rtype::SOA, "ns h 1 2 3 4 5"),
            (rtype::HINFO, "\"PC\" \"Linux x\""),
            (rtype::MX, "10 mail"),
            (rtype::TXT, "\"a\\\"b\" c \"\\255\""),
            (rtype::RP, "a b"),
            (rtype::AFSDB, "1 x"),
            (rtype::AAAA, "2001:db8::1"),
            (
                rtype::LOC,
                "52 22 23.000 N 4 53 32.000 E -2.00m 0.00m 10000m 10m",
            ),
            (rtype::SRV, "0 5 5060 sip"),
            (
                rtype::NAPTR,
                "100 10 \"u\" \"E2U+sip\" \"!^.*$!sip:x@y!\" .",
            ),
            (rtype::KX, "1 kx"),
            (rtype::CERT, "1 2 3 AQID"),
            (rtype::DNAME, "other."),
            (
                rtype::DS,
                "60485 5 1 2BB183AF5F22588179A53B0A98631FAD1A292118",
            ),
            (rtype::SSHFP, "4 1 00112233445566778899AABBCCDDEEFF00112233"),
            (
                rtype::RRSIG,
                "A 8 2 300 20300101000000 20200101000000 1234 example. AQID",
            ),
            (rtype::NSEC, "b A NS SOA RRSIG NSEC DNSKEY TYPE1234"),
            (rtype::DNSKEY, "257 3 8 AwEAAQ=="),
            (
                rtype::NSEC3,
                "1 1 10 AABB 2T7B4G4VSA5SMI47K61MV5BV1A22BOJR A RRSIG",
            ),
            (rtype::NSEC3, "1 0 0 - 2T7B4G4VSA5SMI47K61MV5BV1A22BOJR"),
            (rtype::NSEC3PARAM, "1 0 0 -"),
            (rtype::TLSA, "3 1 1 AB"),
            (rtype::CSYNC, "66 3 A NS AAAA"),
            (
                rtype::ZONEMD,
                "1 1 1 000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F202122232425262728292A2B2C2D2E2F",
            ),
            (rtype::SVCB, "0 svc.example."),
            (
                rtype::HTTPS,
                "1 . mandatory=alpn,port alpn=\"h2,h\\\\,3\" no-default-alpn port=443 ipv4hint=192.0.2.1,192.0.2.2 ech=AQID ipv6hint=2001:db8::1 key65000=\"x y\"",
            ),
            (rtype::EUI48, "00-00-5e-00-53-2a"),
            (rtype::EUI64, "00-00-5e-ef-10-00-00-2a"),
            (rtype::URI, "10 1 \"https://example.com/\""),
            (rtype::CAA, "0 issue \"ca.example.net; account=1\""),
            (rtype::OPENPGPKEY, "AQID"),
        ] {
            let wire = |s: &str| {
                let mut lx = crate::zone::file::lexer::Lexer::new(s.as_bytes());
                let mut toks = Vec::new();
                lx.next_entry(&mut toks).unwrap();
                let words: Vec<(&[u8], bool)> =
                    toks.iter().map(|t| (lx.text(t), t.quoted)).collect();
                let mut out = Vec::new();
                parse::encode(t, &mut parse::Fields::new(&words, origin), &mut out)
                    .unwrap_or_else(|e| panic!("{} {s}: {e}", rtype::to_text(t)));
                out
            };
            let rd = wire(text);
            validate(t, &rd).unwrap_or_else(|e| panic!("{} {text}: {e}", rtype::to_text(t)));
            let mut printed = String::new();
            assert!(known(t, &rd, &mut printed), "{} prints", rtype::to_text(t));
            assert_eq!(
                wire(&printed),
                rd,
                "{} {text} → {printed}",
                rtype::to_text(t)
            );
        }
    }
}
