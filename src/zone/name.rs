//! Domain names in uncompressed wire form (`\x03www\x07example\x03com\x00`).
//!
//! The zone store, the lookup and the encoder all work on wire names so a
//! query never needs a decoded `hickory_proto::rr::Name`.

use std::fmt::Write as _;

/// Longest wire name (RFC 1035 §2.3.4).
pub const MAX_NAME: usize = 255;

/// ASCII-lowercases a wire name in place (length octets are < 64, never letters).
pub fn lowercase(name: &mut [u8]) {
    name.make_ascii_lowercase();
}

/// The name with its first label removed (`None` for the root).
#[inline]
pub fn parent(name: &[u8]) -> Option<&[u8]> {
    match name.first() {
        Some(0) | None => None,
        Some(&l) => name.get(l as usize + 1..),
    }
}

/// True when `name` equals `ancestor` or lies below it (case-insensitive).
pub fn is_subdomain(name: &[u8], ancestor: &[u8]) -> bool {
    if name.len() < ancestor.len() {
        return false;
    }
    // Walk label boundaries so `xexample.com` is not taken for `example.com`.
    let mut i = 0;
    loop {
        if name.len() - i == ancestor.len() {
            return name[i..].eq_ignore_ascii_case(ancestor);
        }
        if name.len() - i < ancestor.len() || name[i] == 0 {
            return false;
        }
        i += name[i] as usize + 1;
    }
}

/// Appends one byte in presentation form: `\\X` for the `special` ones,
/// itself when printable (from `lowest` to `~`), `\\DDD` otherwise.
pub fn escape_byte(c: u8, special: &[u8], lowest: u8, out: &mut String) {
    if special.contains(&c) {
        out.push('\\');
        out.push(c as char);
    } else if (lowest..=0x7e).contains(&c) {
        out.push(c as char);
    } else {
        let _ = write!(out, "\\{c:03}");
    }
}

/// The octet a presentation-format escape stands for (`rest` follows the
/// backslash: `DDD` or one character), and how many octets of `rest` it
/// takes.
pub fn escaped(rest: &[u8]) -> Option<(u8, usize)> {
    if rest.len() >= 3 && rest[..3].iter().all(u8::is_ascii_digit) {
        let v =
            (rest[0] - b'0') as u32 * 100 + (rest[1] - b'0') as u32 * 10 + (rest[2] - b'0') as u32;
        u8::try_from(v).ok().map(|c| (c, 3))
    } else {
        rest.first().map(|&c| (c, 1))
    }
}

/// Presentation form, with RFC 1035 escapes, always ending in a dot.
pub fn to_text(name: &[u8]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < name.len() && name[i] != 0 {
        let len = name[i] as usize;
        for &c in name.get(i + 1..i + 1 + len).unwrap_or(&[]) {
            escape_byte(c, b".\\\";()@$", 0x21, &mut out);
        }
        out.push('.');
        i += len + 1;
    }
    if out.is_empty() {
        out.push('.');
    }
    out
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NameError {
    #[error("empty label in name")]
    EmptyLabel,
    #[error("label longer than 63 octets")]
    LabelTooLong,
    #[error("name longer than 255 octets")]
    NameTooLong,
    #[error("bad escape in name")]
    BadEscape,
    #[error("relative name with no origin")]
    NoOrigin,
}

/// Parses a presentation-format name (escapes allowed) into wire form,
/// appending `origin` when the name is relative. `@` is the origin.
pub fn from_text(text: &[u8], origin: Option<&[u8]>, out: &mut Vec<u8>) -> Result<(), NameError> {
    let start = out.len();
    if text == b"@" {
        let o = origin.ok_or(NameError::NoOrigin)?;
        out.extend_from_slice(o);
        return Ok(());
    }
    if text == b"." {
        out.push(0);
        return Ok(());
    }
    let mut label_start = out.len();
    out.push(0);
    let mut i = 0;
    let mut absolute = false;
    while i < text.len() {
        let c = text[i];
        match c {
            b'.' => {
                let len = out.len() - label_start - 1;
                if len == 0 {
                    return Err(NameError::EmptyLabel);
                }
                out[label_start] = len as u8;
                if i + 1 == text.len() {
                    absolute = true;
                }
                label_start = out.len();
                out.push(0);
                i += 1;
                continue;
            }
            b'\\' => {
                let (c, n) = escaped(&text[i + 1..]).ok_or(NameError::BadEscape)?;
                out.push(c);
                i += 1 + n;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
        if out.len() - label_start - 1 > 63 {
            return Err(NameError::LabelTooLong);
        }
    }
    if absolute {
        // The trailing dot left an empty label placeholder: it is the root.
        out.truncate(label_start);
        out.push(0);
    } else {
        let len = out.len() - label_start - 1;
        if len == 0 {
            return Err(NameError::EmptyLabel);
        }
        out[label_start] = len as u8;
        let o = origin.ok_or(NameError::NoOrigin)?;
        out.extend_from_slice(o);
    }
    if out.len() - start > MAX_NAME {
        return Err(NameError::NameTooLong);
    }
    Ok(())
}

/// Parses an absolute or relative-to-root name from a string (config, CLI).
pub fn parse_absolute(text: &str) -> Result<Vec<u8>, NameError> {
    let mut out = Vec::new();
    from_text(text.as_bytes(), Some(&[0]), &mut out)?;
    Ok(out)
}

/// A name from a config or CLI in lower-cased wire form (how names that
/// must match however they are spelled, like TSIG key names, are compared).
pub fn lower_wire(text: &str) -> Option<Box<[u8]>> {
    let mut w = parse_absolute(text).ok()?;
    lowercase(&mut w);
    Some(w.into())
}

/// Length of the uncompressed wire name at the start of `buf`, if valid.
pub fn wire_len(buf: &[u8]) -> Option<usize> {
    let mut i = 0;
    loop {
        let l = *buf.get(i)? as usize;
        if l > 63 {
            return None;
        }
        i += l + 1;
        if i > MAX_NAME {
            return None;
        }
        if l == 0 {
            return (i <= buf.len()).then_some(i);
        }
    }
}

/// Reads a possibly compressed name at `pos` of a message; returns it
/// uncompressed and the offset after it. Pointers must point backwards, so
/// loops are impossible.
pub fn read_compressed(msg: &[u8], mut pos: usize) -> Option<(Vec<u8>, usize)> {
    let mut out = Vec::with_capacity(32);
    let mut end = None;
    let mut limit = pos;
    loop {
        let l = *msg.get(pos)?;
        match l {
            0 => {
                out.push(0);
                return (out.len() <= MAX_NAME).then_some((out, end.unwrap_or(pos + 1)));
            }
            1..=63 => {
                out.extend_from_slice(msg.get(pos..pos + 1 + l as usize)?);
                if out.len() > MAX_NAME {
                    return None;
                }
                pos += 1 + l as usize;
            }
            0xc0..=0xff => {
                let target = (((l & 0x3f) as usize) << 8) | *msg.get(pos + 1)? as usize;
                if target >= limit {
                    return None;
                }
                end.get_or_insert(pos + 2);
                limit = target;
                pos = target;
            }
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(s: &str) -> Vec<u8> {
        parse_absolute(s).unwrap()
    }

    #[test]
    fn parses_and_prints() {
        assert_eq!(wire("www.Example.com."), b"\x03www\x07Example\x03com\x00");
        assert_eq!(wire("."), b"\x00");
        assert_eq!(to_text(&wire("a\\.b.c")), "a\\.b.c.");
        assert_eq!(wire("\\065.x"), b"\x01A\x01x\x00");
        assert_eq!(
            from_text(b"a..b", None, &mut Vec::new()),
            Err(NameError::EmptyLabel)
        );
        assert_eq!(
            from_text(&[b'a'; 64], Some(&[0]), &mut Vec::new()),
            Err(NameError::LabelTooLong)
        );
    }

    #[test]
    fn compressed_names_decompress_and_loops_fail() {
        let msg =
            b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x03www\x07example\x00\x01a\xc0\x10";
        assert_eq!(
            read_compressed(msg, 12).unwrap().0,
            b"\x03www\x07example\x00"
        );
        let (n, end) = read_compressed(msg, 25).unwrap();
        assert_eq!(n, b"\x01a\x07example\x00");
        assert_eq!(end, msg.len());
        let looped = b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xc0\x0c";
        assert!(read_compressed(looped, 12).is_none());
    }

    #[test]
    fn subdomains() {
        assert!(is_subdomain(&wire("a.b.example.com"), &wire("example.com")));
        assert!(is_subdomain(&wire("EXAMPLE.com"), &wire("example.com")));
        assert!(!is_subdomain(&wire("xexample.com"), &wire("example.com")));
        assert!(is_subdomain(&wire("x"), &wire(".")));
        assert_eq!(parent(&wire("a.b")), Some(&wire("b")[..]));
    }
}
