//! Rdata from presentation format (zone files) to wire format, field by
//! field as the type table says, plus RFC 3597 `\# len hex` for any type.
//! What this produces is checked again by `validate` at the zone builder,
//! like rdata from any other source.

use super::{Field, SVC_KEYS, info, loc};
use crate::zone::{name, rtype};
use data_encoding::{BASE32HEX_NOPAD, BASE64, BASE64_NOPAD, HEXLOWER_PERMISSIVE};
use std::net::{Ipv4Addr, Ipv6Addr};

/// The rdata tokens of one record, consumed left to right.
pub struct Fields<'a> {
    toks: &'a [(&'a [u8], bool)],
    i: usize,
    origin: &'a [u8],
}

type R<T> = Result<T, String>;

fn lossy(t: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(t)
}

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
            Some(t) => Err(format!("unexpected extra data '{}'", lossy(t.0))),
        }
    }

    fn num<T: std::str::FromStr>(&mut self, what: &str) -> R<T> {
        let t = self.next(what)?;
        std::str::from_utf8(t)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad {what} '{}'", lossy(t)))
    }

    fn name(&mut self, out: &mut Vec<u8>) -> R<()> {
        let t = self.next("domain name")?;
        name::from_text(t, Some(self.origin), out)
            .map_err(|e| format!("bad name '{}': {e}", lossy(t)))
    }

    fn ttl(&mut self, what: &str) -> R<u32> {
        let t = self.next(what)?;
        parse_ttl(t).ok_or_else(|| format!("bad {what} '{}'", lossy(t)))
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
        rtype::from_text(t).ok_or_else(|| format!("unknown type '{}'", lossy(t)))
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

pub fn unescape(t: &[u8], out: &mut Vec<u8>) -> R<()> {
    let mut i = 0;
    while i < t.len() {
        if t[i] == b'\\' {
            let (c, n) = name::escaped(&t[i + 1..])
                .ok_or("bad escape (\\DDD above 255, or a dangling backslash)")?;
            out.push(c);
            i += 1 + n;
        } else {
            out.push(t[i]);
            i += 1;
        }
    }
    Ok(())
}

pub fn hex_decode(t: &[u8], out: &mut Vec<u8>) -> R<()> {
    let v = HEXLOWER_PERMISSIVE
        .decode(t)
        .map_err(|e| format!("bad hex: {e}"))?;
    out.extend_from_slice(&v);
    Ok(())
}

/// Base64 (RFC 4648), padded; unpadded input is accepted too.
pub fn base64_decode(t: &[u8], out: &mut Vec<u8>) -> R<()> {
    let v = BASE64
        .decode(t)
        .or_else(|e| match t.contains(&b'=') {
            true => Err(e),
            false => BASE64_NOPAD.decode(t),
        })
        .map_err(|e| format!("bad base64: {e}"))?;
    out.extend_from_slice(&v);
    Ok(())
}

fn base32hex_decode(t: &[u8], out: &mut Vec<u8>) -> R<()> {
    let v = BASE32HEX_NOPAD
        .decode(&t.to_ascii_uppercase())
        .map_err(|e| format!("bad base32hex: {e}"))?;
    out.extend_from_slice(&v);
    Ok(())
}

/// Appends `tok`'s bytes after a length octet.
fn with_len(out: &mut Vec<u8>, what: &str, fill: impl FnOnce(&mut Vec<u8>) -> R<()>) -> R<()> {
    let at = out.len();
    out.push(0);
    fill(out)?;
    out[at] = u8::try_from(out.len() - at - 1).map_err(|_| format!("{what} too long"))?;
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

const SIG_TIME: &[time::format_description::BorrowedFormatItem] =
    time::macros::format_description!("[year][month][day][hour][minute][second]");

/// RRSIG time: `YYYYMMDDHHmmSS` or seconds since the epoch.
fn sig_time(t: &[u8]) -> R<u32> {
    let s = std::str::from_utf8(t).map_err(|_| "bad time")?;
    if s.len() == 14 && s.bytes().all(|c| c.is_ascii_digit()) {
        let secs = time::PrimitiveDateTime::parse(s, SIG_TIME)
            .map_err(|e| format!("bad time '{s}': {e}"))?
            .assume_utc()
            .unix_timestamp();
        // RFC 4034 §3.1.5: serial-number arithmetic, stored modulo 2^32.
        Ok(secs as u32)
    } else {
        s.parse().map_err(|_| format!("bad time '{s}'"))
    }
}

/// Prints an RRSIG time as `YYYYMMDDHHmmSS` (what `sig_time` reads).
pub fn sig_time_text(t: u32) -> String {
    time::OffsetDateTime::from_unix_timestamp(t as i64)
        .ok()
        .and_then(|d| d.format(SIG_TIME).ok())
        .unwrap_or_else(|| t.to_string())
}

fn svcb_key(k: &[u8]) -> R<u16> {
    if let Some(i) = SVC_KEYS.iter().position(|n| n.as_bytes() == k) {
        return Ok(i as u16);
    }
    if let Some(n) = k.strip_prefix(b"key") {
        return std::str::from_utf8(n)
            .ok()
            .filter(|s| !s.starts_with('+'))
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad SvcParamKey '{}'", lossy(k)));
    }
    Err(format!("unknown SvcParamKey '{}'", lossy(k)))
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
        let list_of = |v: &[u8], what: &str, val: &mut Vec<u8>| -> R<()> {
            for item in svcb_list(v)? {
                let s = std::str::from_utf8(&item).ok();
                let bad = || format!("bad {what} '{}'", lossy(&item));
                if what == "ipv4hint" {
                    let a: Ipv4Addr = s.and_then(|s| s.parse().ok()).ok_or_else(bad)?;
                    val.extend_from_slice(&a.octets());
                } else {
                    let a: Ipv6Addr = s.and_then(|s| s.parse().ok()).ok_or_else(bad)?;
                    val.extend_from_slice(&a.octets());
                }
            }
            Ok(())
        };
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
            (4, Some(v)) => list_of(v, "ipv4hint", &mut val)?,
            (5, Some(v)) => base64_decode(v, &mut val)?,
            (6, Some(v)) => list_of(v, "ipv6hint", &mut val)?,
            (k, Some(v)) if k > 6 => unescape(v, &mut val)?,
            (k, None) if k > 6 => {}
            _ => {
                return Err(format!("bad value for SvcParamKey '{}'", lossy(k)));
            }
        }
        if params.iter().any(|(k, _)| *k == key) {
            return Err(format!("duplicate SvcParamKey '{}'", lossy(k)));
        }
        params.push((key, val));
    }
    params.sort_by_key(|p| p.0);
    for (k, v) in params {
        let len = u16::try_from(v.len()).map_err(|_| "SvcParam value too long")?;
        out.extend_from_slice(&k.to_be_bytes());
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&v);
    }
    Ok(())
}

fn eui(f: &mut Fields, n: usize, out: &mut Vec<u8>) -> R<()> {
    let s = f.next("address")?;
    let parts: Vec<&[u8]> = s.split(|&c| c == b'-').collect();
    if parts.len() != n || parts.iter().any(|p| p.len() != 2) {
        return Err(format!("bad EUI address '{}'", lossy(s)));
    }
    for p in parts {
        hex_decode(p, out)?;
    }
    Ok(())
}

fn field(t: u16, field: Field, f: &mut Fields, out: &mut Vec<u8>) -> R<()> {
    match field {
        Field::U8 => out.push(f.num::<u8>("number")?),
        Field::U16 => out.extend_from_slice(&f.num::<u16>("number")?.to_be_bytes()),
        Field::U32 => out.extend_from_slice(&f.num::<u32>("number")?.to_be_bytes()),
        Field::Period => out.extend_from_slice(&f.ttl("period")?.to_be_bytes()),
        Field::Time => out.extend_from_slice(&sig_time(f.next("time")?)?.to_be_bytes()),
        Field::Type => out.extend_from_slice(&f.rtype()?.to_be_bytes()),
        Field::Ipv4 => out.extend_from_slice(&f.num::<Ipv4Addr>("IPv4 address")?.octets()),
        Field::Ipv6 => out.extend_from_slice(&f.num::<Ipv6Addr>("IPv6 address")?.octets()),
        Field::Name(_) => f.name(out)?,
        Field::Text => f.charstr(out)?,
        Field::Texts => {
            f.charstr(out)?;
            while f.more() {
                f.charstr(out)?;
            }
        }
        Field::Base64 => base64_decode(&f.rest(), out)?,
        Field::Hex => hex_decode(&f.rest(), out)?,
        Field::Salt => {
            let salt = f.next("salt")?;
            with_len(out, "salt", |out| match salt {
                b"-" => Ok(()),
                s => hex_decode(s, out),
            })?;
        }
        Field::Hash => {
            let h = f.next("next hashed owner")?;
            with_len(out, "hash", |out| base32hex_decode(h, out))?;
        }
        Field::Bitmap => type_bitmap(f, out)?,
        Field::SvcParams => svcb_params(f, out)?,
        Field::Tag => {
            let tag = f.next("tag")?;
            if tag.is_empty() || tag.len() > 255 || !tag.iter().all(u8::is_ascii_alphanumeric) {
                return Err(format!("bad CAA tag '{}'", lossy(tag)));
            }
            out.push(tag.len() as u8);
            out.extend_from_slice(tag);
        }
        Field::Rest => unescape(f.next("value")?, out)?,
        Field::Eui48 => eui(f, 6, out)?,
        Field::Eui64 => eui(f, 8, out)?,
        Field::Loc => loc::parse(f.rest_words(), out)?,
    }
    let _ = t;
    Ok(())
}

impl<'a> Fields<'a> {
    /// The remaining tokens, consumed (LOC reads its own grammar).
    fn rest_words(&mut self) -> Vec<&'a [u8]> {
        let words = self.toks[self.i..].iter().map(|t| t.0).collect();
        self.i = self.toks.len();
        words
    }
}

/// Encodes the rdata of a record of type `t` from its tokens into `out`.
pub fn encode(t: u16, f: &mut Fields, out: &mut Vec<u8>) -> R<()> {
    let start = out.len();
    if f.toks.first().is_some_and(|t| !t.1 && t.0 == b"\\#") {
        // RFC 3597 §5: generic encoding, valid for every type.
        f.i = 1;
        let len: usize = f.num("rdata length")?;
        let hex = f.rest();
        if !(len == 0 && hex.is_empty()) {
            hex_decode(&hex, out)?;
        }
        if out.len() - start != len {
            return Err(format!(
                "\\# length {len} does not match {} octets of data",
                out.len() - start
            ));
        }
        return Ok(());
    }
    if rtype::is_meta(t) {
        return Err(format!("type {} cannot be zone data", rtype::to_text(t)));
    }
    let Some(info) = info(t) else {
        return Err(format!(
            "type {} has no presentation format here: use RFC 3597 '\\# len hex'",
            rtype::to_text(t)
        ));
    };
    for &fl in info.fields {
        field(t, fl, f, out)?;
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
        assert_eq!(sig_time_text(946684800), "20000101000000");
        assert!(sig_time(b"20001301000000").is_err());
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
