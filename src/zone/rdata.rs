//! Record data from presentation format to wire format, for every type the
//! zone files may hold, plus RFC 3597 `\# len hex` for any type.

use super::{name, rtype};
use std::net::{Ipv4Addr, Ipv6Addr};

/// The rdata tokens of one record, consumed left to right.
pub struct Fields<'a> {
    toks: &'a [(&'a [u8], bool)],
    i: usize,
    origin: &'a [u8],
}

type R<T> = Result<T, String>;

impl<'a> Fields<'a> {
    pub fn new(toks: &'a [(&'a [u8], bool)], origin: &'a [u8]) -> Self {
        Fields { toks, i: 0, origin }
    }

    fn next(&mut self, what: &str) -> R<&'a [u8]> {
        let t = self
            .toks
            .get(self.i)
            .ok_or_else(|| format!("missing {what}"))?;
        self.i += 1;
        Ok(t.0)
    }

    fn more(&self) -> bool {
        self.i < self.toks.len()
    }

    fn end(&self) -> R<()> {
        match self.toks.get(self.i) {
            None => Ok(()),
            Some(t) => Err(format!(
                "unexpected extra data '{}'",
                String::from_utf8_lossy(t.0)
            )),
        }
    }

    fn num<T: std::str::FromStr>(&mut self, what: &str) -> R<T> {
        let t = self.next(what)?;
        std::str::from_utf8(t)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad {what} '{}'", String::from_utf8_lossy(t)))
    }

    fn name(&mut self, out: &mut Vec<u8>) -> R<()> {
        let t = self.next("domain name")?;
        name::from_text(t, Some(self.origin), out)
            .map_err(|e| format!("bad name '{}': {e}", String::from_utf8_lossy(t)))
    }

    fn ttl(&mut self, what: &str) -> R<u32> {
        let t = self.next(what)?;
        parse_ttl(t).ok_or_else(|| format!("bad {what} '{}'", String::from_utf8_lossy(t)))
    }

    fn charstr(&mut self, out: &mut Vec<u8>) -> R<()> {
        let t = self.next("character-string")?;
        push_charstr(t, out)
    }

    /// All remaining tokens joined (base64 and hex may be split by blanks).
    fn rest(&mut self) -> Vec<u8> {
        let mut v = Vec::new();
        while let Some(t) = self.toks.get(self.i) {
            v.extend_from_slice(t.0);
            self.i += 1;
        }
        v
    }

    fn rtype(&mut self) -> R<u16> {
        let t = self.next("type")?;
        rtype::from_text(t).ok_or_else(|| format!("unknown type '{}'", String::from_utf8_lossy(t)))
    }
}

/// TTL as seconds or with units (`1w2d3h4m5s`), at most 2^31-1 (RFC 2181 §8).
pub fn parse_ttl(t: &[u8]) -> Option<u32> {
    if t.is_empty() {
        return None;
    }
    let mut total: u64 = 0;
    let mut cur: u64 = 0;
    let mut digits = false;
    for &c in t {
        match c {
            b'0'..=b'9' => {
                cur = cur * 10 + (c - b'0') as u64;
                digits = true;
                if cur > u32::MAX as u64 {
                    return None;
                }
            }
            _ => {
                let mult = match c.to_ascii_lowercase() {
                    b's' => 1,
                    b'm' => 60,
                    b'h' => 3600,
                    b'd' => 86400,
                    b'w' => 604800,
                    _ => return None,
                };
                if !digits {
                    return None;
                }
                total += cur * mult;
                cur = 0;
                digits = false;
            }
        }
    }
    total += cur;
    (total <= i32::MAX as u64).then_some(total as u32)
}

/// Unescapes a character-string token (`\X`, `\DDD`) and appends it with its
/// length octet.
pub fn push_charstr(t: &[u8], out: &mut Vec<u8>) -> R<()> {
    let len_at = out.len();
    out.push(0);
    unescape(t, out)?;
    let len = out.len() - len_at - 1;
    if len > 255 {
        return Err("character-string longer than 255 octets".into());
    }
    out[len_at] = len as u8;
    Ok(())
}

fn unescape(t: &[u8], out: &mut Vec<u8>) -> R<()> {
    let mut i = 0;
    while i < t.len() {
        if t[i] == b'\\' {
            let rest = &t[i + 1..];
            if rest.len() >= 3 && rest[..3].iter().all(u8::is_ascii_digit) {
                let v = (rest[0] - b'0') as u32 * 100
                    + (rest[1] - b'0') as u32 * 10
                    + (rest[2] - b'0') as u32;
                if v > 255 {
                    return Err("bad \\DDD escape".into());
                }
                out.push(v as u8);
                i += 4;
            } else if let Some(&c) = rest.first() {
                out.push(c);
                i += 2;
            } else {
                return Err("dangling backslash".into());
            }
        } else {
            out.push(t[i]);
            i += 1;
        }
    }
    Ok(())
}

pub fn hex_decode(t: &[u8], out: &mut Vec<u8>) -> R<()> {
    if !t.len().is_multiple_of(2) {
        return Err("odd number of hex digits".into());
    }
    for pair in t.chunks(2) {
        let h = |c: u8| {
            (c as char)
                .to_digit(16)
                .ok_or_else(|| format!("bad hex digit '{}'", c as char))
        };
        out.push((h(pair[0])? * 16 + h(pair[1])?) as u8);
    }
    Ok(())
}

pub fn base64_decode(t: &[u8], out: &mut Vec<u8>) -> R<()> {
    let mut acc: u32 = 0;
    let mut bits = 0;
    let mut pad = 0;
    for &c in t {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => {
                pad += 1;
                continue;
            }
            _ => return Err(format!("bad base64 character '{}'", c as char)),
        };
        if pad > 0 {
            return Err("base64 data after padding".into());
        }
        acc = (acc << 6) | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    if pad > 2 || (bits >= 6) {
        return Err("bad base64 length".into());
    }
    Ok(())
}

fn base32hex_decode(t: &[u8], out: &mut Vec<u8>) -> R<()> {
    let mut acc: u64 = 0;
    let mut bits = 0;
    for &c in t {
        let v = match c.to_ascii_uppercase() {
            c @ b'0'..=b'9' => c - b'0',
            c @ b'A'..=b'V' => c - b'A' + 10,
            b'=' => continue,
            _ => return Err(format!("bad base32hex character '{}'", c as char)),
        };
        acc = (acc << 5) | v as u64;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Ok(())
}

/// NSEC/NSEC3/CSYNC type bitmap (RFC 4034 §4.1.2) from the remaining tokens.
fn type_bitmap(f: &mut Fields, out: &mut Vec<u8>) -> R<()> {
    let mut types = Vec::new();
    while f.more() {
        types.push(f.rtype()?);
    }
    types.sort_unstable();
    types.dedup();
    let mut i = 0;
    while i < types.len() {
        let window = types[i] >> 8;
        let mut bitmap = [0u8; 32];
        let mut len = 0;
        while i < types.len() && types[i] >> 8 == window {
            let low = (types[i] & 0xff) as usize;
            bitmap[low / 8] |= 0x80 >> (low % 8);
            len = low / 8 + 1;
            i += 1;
        }
        out.push(window as u8);
        out.push(len as u8);
        out.extend_from_slice(&bitmap[..len]);
    }
    Ok(())
}

/// RRSIG time: `YYYYMMDDHHmmSS` or seconds since the epoch.
fn sig_time(t: &[u8]) -> R<u32> {
    let s = std::str::from_utf8(t).map_err(|_| "bad time")?;
    if s.len() == 14 && s.bytes().all(|c| c.is_ascii_digit()) {
        let n = |a: usize, b: usize| s[a..b].parse::<i64>().unwrap_or(0);
        let (y, mo, d, h, mi, se) = (n(0, 4), n(4, 6), n(6, 8), n(8, 10), n(10, 12), n(12, 14));
        if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
            return Err(format!("bad time '{s}'"));
        }
        // Days from civil (Howard Hinnant's algorithm).
        let (yy, m) = if mo <= 2 {
            (y - 1, mo + 9)
        } else {
            (y, mo - 3)
        };
        let era = yy.div_euclid(400);
        let yoe = yy - era * 400;
        let doy = (153 * m + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146097 + doe - 719468;
        let secs = days * 86400 + h * 3600 + mi * 60 + se;
        // RFC 4034 §3.1.5: serial-number arithmetic, stored modulo 2^32.
        Ok(secs as u32)
    } else {
        s.parse().map_err(|_| format!("bad time '{s}'"))
    }
}

fn svcb_key(k: &[u8]) -> R<u16> {
    Ok(match k {
        b"mandatory" => 0,
        b"alpn" => 1,
        b"no-default-alpn" => 2,
        b"port" => 3,
        b"ipv4hint" => 4,
        b"ech" => 5,
        b"ipv6hint" => 6,
        _ if k.starts_with(b"key") => std::str::from_utf8(&k[3..])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad SvcParamKey '{}'", String::from_utf8_lossy(k)))?,
        _ => {
            return Err(format!(
                "unknown SvcParamKey '{}'",
                String::from_utf8_lossy(k)
            ));
        }
    })
}

/// Splits an SVCB value list on unescaped commas, unescaping each item.
fn svcb_list(v: &[u8]) -> R<Vec<Vec<u8>>> {
    let mut items = Vec::new();
    let mut cur = Vec::new();
    let mut raw = Vec::new();
    let mut i = 0;
    while i < v.len() {
        match v[i] {
            b'\\' if i + 1 < v.len() => {
                raw.extend_from_slice(&v[i..i + 2]);
                i += 2;
            }
            b',' => {
                unescape(&raw, &mut cur)?;
                items.push(std::mem::take(&mut cur));
                raw.clear();
                i += 1;
            }
            c => {
                raw.push(c);
                i += 1;
            }
        }
    }
    unescape(&raw, &mut cur)?;
    items.push(cur);
    Ok(items)
}

fn svcb_params(f: &mut Fields, out: &mut Vec<u8>) -> R<()> {
    let mut params: Vec<(u16, Vec<u8>)> = Vec::new();
    while f.more() {
        let t = f.next("SvcParam")?;
        let (k, v) = match t.iter().position(|&c| c == b'=') {
            Some(p) => {
                let v = &t[p + 1..];
                // `key="quoted value"` arrives as `key=` then a quoted token.
                let v = if v.is_empty() && f.toks.get(f.i).is_some_and(|t| t.1) {
                    f.next("SvcParam value")?
                } else {
                    v
                };
                (&t[..p], Some(v))
            }
            None => (t, None),
        };
        let key = svcb_key(k)?;
        let mut val = Vec::new();
        match (key, v) {
            (0, Some(v)) => {
                for item in svcb_list(v)? {
                    val.extend_from_slice(&svcb_key(&item)?.to_be_bytes());
                }
            }
            (1, Some(v)) => {
                for item in svcb_list(v)? {
                    if item.is_empty() || item.len() > 255 {
                        return Err("bad alpn value".into());
                    }
                    val.push(item.len() as u8);
                    val.extend_from_slice(&item);
                }
            }
            (2, None) => {}
            (3, Some(v)) => {
                let p: u16 = std::str::from_utf8(v)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .ok_or("bad port")?;
                val.extend_from_slice(&p.to_be_bytes());
            }
            (4, Some(v)) => {
                for item in svcb_list(v)? {
                    let a: Ipv4Addr = std::str::from_utf8(&item)
                        .ok()
                        .and_then(|s| s.parse().ok())
                        .ok_or("bad ipv4hint")?;
                    val.extend_from_slice(&a.octets());
                }
            }
            (5, Some(v)) => base64_decode(v, &mut val)?,
            (6, Some(v)) => {
                for item in svcb_list(v)? {
                    let a: Ipv6Addr = std::str::from_utf8(&item)
                        .ok()
                        .and_then(|s| s.parse().ok())
                        .ok_or("bad ipv6hint")?;
                    val.extend_from_slice(&a.octets());
                }
            }
            (k, Some(v)) if k > 6 => unescape(v, &mut val)?,
            (k, None) if k > 6 => {}
            _ => {
                return Err(format!(
                    "bad value for SvcParamKey '{}'",
                    String::from_utf8_lossy(k)
                ));
            }
        }
        if params.iter().any(|(k, _)| *k == key) {
            return Err(format!(
                "duplicate SvcParamKey '{}'",
                String::from_utf8_lossy(k)
            ));
        }
        params.push((key, val));
    }
    params.sort_by_key(|p| p.0);
    for (k, v) in params {
        out.extend_from_slice(&k.to_be_bytes());
        out.extend_from_slice(&(v.len() as u16).to_be_bytes());
        out.extend_from_slice(&v);
    }
    Ok(())
}

/// Encodes the rdata of a record of type `t` from its tokens into `out`.
pub fn encode(t: u16, f: &mut Fields, out: &mut Vec<u8>) -> R<()> {
    let start = out.len();
    if f.toks.first().is_some_and(|t| !t.1 && t.0 == b"\\#") {
        // RFC 3597 §5: generic encoding, valid for every type.
        f.i = 1;
        let len: usize = f.num("rdata length")?;
        let hex = f.rest();
        hex_decode(&hex, out)?;
        if out.len() - start != len {
            return Err(format!(
                "\\# length {len} does not match {} octets of data",
                out.len() - start
            ));
        }
        return Ok(());
    }
    match t {
        rtype::A => {
            let s = f.next("IPv4 address")?;
            let a: Ipv4Addr = std::str::from_utf8(s)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| format!("bad IPv4 address '{}'", String::from_utf8_lossy(s)))?;
            out.extend_from_slice(&a.octets());
        }
        rtype::AAAA => {
            let s = f.next("IPv6 address")?;
            let a: Ipv6Addr = std::str::from_utf8(s)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| format!("bad IPv6 address '{}'", String::from_utf8_lossy(s)))?;
            out.extend_from_slice(&a.octets());
        }
        rtype::NS | rtype::CNAME | rtype::PTR | rtype::DNAME => f.name(out)?,
        rtype::MX | rtype::AFSDB | rtype::KX => {
            out.extend_from_slice(&f.num::<u16>("preference")?.to_be_bytes());
            f.name(out)?;
        }
        rtype::RP => {
            f.name(out)?;
            f.name(out)?;
        }
        rtype::SOA => {
            f.name(out)?;
            f.name(out)?;
            out.extend_from_slice(&f.num::<u32>("serial")?.to_be_bytes());
            for what in ["refresh", "retry", "expire", "minimum"] {
                out.extend_from_slice(&f.ttl(what)?.to_be_bytes());
            }
        }
        rtype::TXT | rtype::SPF => {
            f.charstr(out)?;
            while f.more() {
                f.charstr(out)?;
            }
        }
        rtype::HINFO => {
            f.charstr(out)?;
            f.charstr(out)?;
        }
        rtype::SRV => {
            for what in ["priority", "weight", "port"] {
                out.extend_from_slice(&f.num::<u16>(what)?.to_be_bytes());
            }
            f.name(out)?;
        }
        rtype::NAPTR => {
            out.extend_from_slice(&f.num::<u16>("order")?.to_be_bytes());
            out.extend_from_slice(&f.num::<u16>("preference")?.to_be_bytes());
            f.charstr(out)?;
            f.charstr(out)?;
            f.charstr(out)?;
            f.name(out)?;
        }
        rtype::CAA => {
            out.push(f.num::<u8>("flags")?);
            let tag = f.next("tag")?;
            if tag.is_empty() || tag.len() > 255 || !tag.iter().all(u8::is_ascii_alphanumeric) {
                return Err(format!("bad CAA tag '{}'", String::from_utf8_lossy(tag)));
            }
            out.push(tag.len() as u8);
            out.extend_from_slice(tag);
            let v = f.next("value")?;
            unescape(v, out)?;
        }
        rtype::SSHFP => {
            out.push(f.num::<u8>("algorithm")?);
            out.push(f.num::<u8>("fingerprint type")?);
            hex_decode(&f.rest(), out)?;
        }
        rtype::TLSA | rtype::SMIMEA => {
            out.push(f.num::<u8>("usage")?);
            out.push(f.num::<u8>("selector")?);
            out.push(f.num::<u8>("matching type")?);
            hex_decode(&f.rest(), out)?;
        }
        rtype::DS | rtype::CDS => {
            out.extend_from_slice(&f.num::<u16>("key tag")?.to_be_bytes());
            out.push(f.num::<u8>("algorithm")?);
            out.push(f.num::<u8>("digest type")?);
            hex_decode(&f.rest(), out)?;
        }
        rtype::DNSKEY | rtype::CDNSKEY => {
            out.extend_from_slice(&f.num::<u16>("flags")?.to_be_bytes());
            out.push(f.num::<u8>("protocol")?);
            out.push(f.num::<u8>("algorithm")?);
            base64_decode(&f.rest(), out)?;
        }
        rtype::RRSIG => {
            out.extend_from_slice(&f.rtype()?.to_be_bytes());
            out.push(f.num::<u8>("algorithm")?);
            out.push(f.num::<u8>("labels")?);
            out.extend_from_slice(&f.ttl("original TTL")?.to_be_bytes());
            let exp = sig_time(f.next("expiration")?)?;
            let inc = sig_time(f.next("inception")?)?;
            out.extend_from_slice(&exp.to_be_bytes());
            out.extend_from_slice(&inc.to_be_bytes());
            out.extend_from_slice(&f.num::<u16>("key tag")?.to_be_bytes());
            f.name(out)?;
            base64_decode(&f.rest(), out)?;
        }
        rtype::NSEC => {
            f.name(out)?;
            type_bitmap(f, out)?;
        }
        rtype::NSEC3 | rtype::NSEC3PARAM => {
            out.push(f.num::<u8>("hash algorithm")?);
            out.push(f.num::<u8>("flags")?);
            out.extend_from_slice(&f.num::<u16>("iterations")?.to_be_bytes());
            let salt = f.next("salt")?;
            if salt == b"-" {
                out.push(0);
            } else {
                let at = out.len();
                out.push(0);
                hex_decode(salt, out)?;
                out[at] = u8::try_from(out.len() - at - 1).map_err(|_| "salt too long")?;
            }
            if t == rtype::NSEC3 {
                let at = out.len();
                out.push(0);
                base32hex_decode(f.next("next hashed owner")?, out)?;
                out[at] = u8::try_from(out.len() - at - 1).map_err(|_| "hash too long")?;
                type_bitmap(f, out)?;
            }
        }
        rtype::CSYNC => {
            out.extend_from_slice(&f.num::<u32>("serial")?.to_be_bytes());
            out.extend_from_slice(&f.num::<u16>("flags")?.to_be_bytes());
            type_bitmap(f, out)?;
        }
        rtype::ZONEMD => {
            out.extend_from_slice(&f.num::<u32>("serial")?.to_be_bytes());
            out.push(f.num::<u8>("scheme")?);
            out.push(f.num::<u8>("hash algorithm")?);
            hex_decode(&f.rest(), out)?;
        }
        rtype::OPENPGPKEY | rtype::DHCID => base64_decode(&f.rest(), out)?,
        rtype::CERT => {
            out.extend_from_slice(&f.num::<u16>("certificate type")?.to_be_bytes());
            out.extend_from_slice(&f.num::<u16>("key tag")?.to_be_bytes());
            out.push(f.num::<u8>("algorithm")?);
            base64_decode(&f.rest(), out)?;
        }
        rtype::URI => {
            out.extend_from_slice(&f.num::<u16>("priority")?.to_be_bytes());
            out.extend_from_slice(&f.num::<u16>("weight")?.to_be_bytes());
            unescape(f.next("target")?, out)?;
        }
        rtype::SVCB | rtype::HTTPS => {
            out.extend_from_slice(&f.num::<u16>("priority")?.to_be_bytes());
            f.name(out)?;
            svcb_params(f, out)?;
        }
        rtype::EUI48 | rtype::EUI64 => {
            let s = f.next("address")?;
            let n = if t == rtype::EUI48 { 6 } else { 8 };
            let parts: Vec<&[u8]> = s.split(|&c| c == b'-').collect();
            if parts.len() != n || parts.iter().any(|p| p.len() != 2) {
                return Err(format!("bad EUI address '{}'", String::from_utf8_lossy(s)));
            }
            for p in parts {
                hex_decode(p, out)?;
            }
        }
        _ if rtype::is_meta(t) => {
            return Err(format!("type {} cannot be zone data", rtype::to_text(t)));
        }
        _ => {
            return Err(format!(
                "type {} has no presentation format here: use RFC 3597 '\\# len hex'",
                rtype::to_text(t)
            ));
        }
    }
    if out.len() - start > 65535 {
        return Err("rdata longer than 65535 octets".into());
    }
    f.end()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(t: u16, s: &str) -> R<Vec<u8>> {
        let toks: Vec<_> = s
            .split_whitespace()
            .map(|w| (w.as_bytes(), false))
            .collect();
        let mut f = Fields::new(&toks, b"\x07example\x00");
        let mut out = Vec::new();
        encode(t, &mut f, &mut out).map(|_| out)
    }

    #[test]
    fn common_types() {
        assert_eq!(enc(rtype::A, "192.0.2.1").unwrap(), [192, 0, 2, 1]);
        assert!(enc(rtype::A, "192.0.2").is_err());
        assert_eq!(
            enc(rtype::MX, "10 mail").unwrap(),
            b"\x00\x0a\x04mail\x07example\x00"
        );
        assert_eq!(enc(rtype::TXT, "a b").unwrap(), b"\x01a\x01b");
        assert_eq!(enc(rtype::TXT, "a\\032b").unwrap(), b"\x03a b");
        assert!(enc(rtype::A, "1.2.3.4 5").is_err());
    }

    #[test]
    fn generic_and_dnssec() {
        assert_eq!(enc(rtype::A, "\\# 4 c0000201").unwrap(), [192, 0, 2, 1]);
        assert!(enc(rtype::A, "\\# 3 c0000201").is_err());
        assert_eq!(enc(65280, "\\# 0").unwrap(), b"");
        assert_eq!(
            enc(rtype::NSEC, "a A NS RRSIG").unwrap(),
            b"\x01a\x07example\x00\x00\x06\x60\x00\x00\x00\x00\x02"
        );
        assert_eq!(
            enc(rtype::DS, "1 8 2 AB CD").unwrap(),
            [0, 1, 8, 2, 0xab, 0xcd]
        );
        assert_eq!(
            enc(rtype::DNSKEY, "257 3 8 AQID").unwrap(),
            [1, 1, 3, 8, 1, 2, 3]
        );
        assert_eq!(sig_time(b"19700101000001").unwrap(), 1);
        assert_eq!(sig_time(b"20000101000000").unwrap(), 946684800);
    }

    #[test]
    fn svcb() {
        let v = enc(rtype::HTTPS, "1 . alpn=h2,h3 port=8443").unwrap();
        assert_eq!(
            v,
            b"\x00\x01\x00\x00\x01\x00\x06\x02h2\x02h3\x00\x03\x00\x02\x20\xfb"
        );
        assert!(enc(rtype::HTTPS, "1 . port=1 port=2").is_err());
    }

    #[test]
    fn ttls() {
        assert_eq!(parse_ttl(b"1h30m"), Some(5400));
        assert_eq!(parse_ttl(b"1W"), Some(604800));
        assert_eq!(parse_ttl(b"h"), None);
        assert_eq!(parse_ttl(b"4294967296"), None);
    }
}
