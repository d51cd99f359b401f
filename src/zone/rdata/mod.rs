//! The record-type table: what the rdata of each known type holds, field by
//! field. One table drives every use of rdata:
//!
//! - reading zone files (`parse`), including RFC 3597 `\# len hex` for a
//!   known type, which must still hold that type's fields;
//! - checking wire rdata once, at the door (`validate`): zone files,
//!   AXFR/IXFR, journal replay and saved copies all pass through it, so the
//!   query and transfer paths may trust what the store holds;
//! - compressing names on output and decompressing them on input, for the
//!   types RFC 3597 §4 allows (`Compress`);
//! - printing (`print`), for the secondary's copy and `tandem check`.
//!
//! Types not in the table are opaque: any rdata up to 65535 octets.

pub mod loc;
pub mod parse;
pub mod print;

use super::{name, rtype};

/// How a name inside rdata may be compressed (RFC 3597 §4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compress {
    /// RFC 1035 types: compressed on output, decompressed on input.
    Yes,
    /// Decompressed on input only (RP, AFSDB, RT, NAPTR, SRV, DNAME).
    Decompress,
    /// Never compressed (every later type).
    No,
}

/// One field of rdata.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    U8,
    U16,
    U32,
    /// A 32-bit period: SOA timers, RRSIG original TTL (TTL units in text).
    Period,
    /// RRSIG expiration and inception (`YYYYMMDDHHmmSS` in text).
    Time,
    /// A record type code (RRSIG's type covered).
    Type,
    Ipv4,
    Ipv6,
    Name(Compress),
    /// One <character-string>.
    Text,
    /// One or more <character-string>s to the end (TXT).
    Texts,
    /// The rest, at least one octet, base64 in text.
    Base64,
    /// The rest, at least one octet, hex in text.
    Hex,
    /// A length octet and that many octets: hex, or `-` when empty (NSEC3 salt).
    Salt,
    /// A length octet and at least one octet, base32hex (NSEC3 next hashed owner).
    Hash,
    /// A type bitmap to the end (RFC 4034 §4.1.2).
    Bitmap,
    /// SvcParams to the end (RFC 9460 §2.2).
    SvcParams,
    /// A CAA tag: a length octet and 1..255 letters or digits.
    Tag,
    /// The rest as one string, possibly empty (CAA value, URI target).
    Rest,
    Eui48,
    Eui64,
    /// LOC (RFC 1876): 16 octets for version 0; other versions are opaque.
    Loc,
}

/// A known type: its fields in order, and whether any name in it is
/// compressed on output or decompressed on input.
#[derive(Debug)]
pub struct TypeInfo {
    pub fields: &'static [Field],
    pub compress: bool,
    pub decompress: bool,
}

const fn type_info(fields: &'static [Field]) -> TypeInfo {
    let mut compress = false;
    let mut decompress = false;
    let mut i = 0;
    while i < fields.len() {
        match fields[i] {
            Field::Name(Compress::Yes) => {
                compress = true;
                decompress = true;
            }
            Field::Name(Compress::Decompress) => decompress = true,
            _ => {}
        }
        i += 1;
    }
    TypeInfo {
        fields,
        compress,
        decompress,
    }
}

/// The table entry of a known type.
pub fn info(t: u16) -> Option<&'static TypeInfo> {
    use Compress::*;
    use Field::*;
    macro_rules! fields {
        ($($f:expr),* $(,)?) => {{
            const INFO: TypeInfo = type_info(&[$($f),*]);
            Some(&INFO)
        }};
    }
    match t {
        rtype::A => fields!(Ipv4),
        rtype::NS
        | rtype::MD
        | rtype::MF
        | rtype::CNAME
        | rtype::MB
        | rtype::MG
        | rtype::MR
        | rtype::PTR => fields!(Name(Yes)),
        rtype::SOA => fields!(Name(Yes), Name(Yes), U32, Period, Period, Period, Period),
        rtype::HINFO => fields!(Text, Text),
        rtype::MINFO => fields!(Name(Yes), Name(Yes)),
        rtype::MX => fields!(U16, Name(Yes)),
        rtype::TXT | rtype::SPF => fields!(Texts),
        rtype::RP => fields!(Name(Decompress), Name(Decompress)),
        rtype::AFSDB | rtype::RT => fields!(U16, Name(Decompress)),
        rtype::AAAA => fields!(Ipv6),
        rtype::LOC => fields!(Loc),
        rtype::SRV => fields!(U16, U16, U16, Name(Decompress)),
        rtype::NAPTR => fields!(U16, U16, Text, Text, Text, Name(Decompress)),
        rtype::KX => fields!(U16, Name(No)),
        rtype::CERT => fields!(U16, U16, U8, Base64),
        rtype::DNAME => fields!(Name(Decompress)),
        rtype::DS | rtype::CDS => fields!(U16, U8, U8, Hex),
        rtype::SSHFP => fields!(U8, U8, Hex),
        rtype::RRSIG => fields!(Type, U8, U8, Period, Time, Time, U16, Name(No), Base64),
        rtype::NSEC => fields!(Name(No), Bitmap),
        rtype::DNSKEY | rtype::CDNSKEY => fields!(U16, U8, U8, Base64),
        rtype::DHCID | rtype::OPENPGPKEY => fields!(Base64),
        rtype::NSEC3 => fields!(U8, U8, U16, Salt, Hash, Bitmap),
        rtype::NSEC3PARAM => fields!(U8, U8, U16, Salt),
        rtype::TLSA | rtype::SMIMEA => fields!(U8, U8, U8, Hex),
        rtype::CSYNC => fields!(U32, U16, Bitmap),
        rtype::ZONEMD => fields!(U32, U8, U8, Hex),
        rtype::SVCB | rtype::HTTPS => fields!(U16, Name(No), SvcParams),
        rtype::EUI48 => fields!(Eui48),
        rtype::EUI64 => fields!(Eui64),
        rtype::URI => fields!(U16, U16, Rest),
        rtype::CAA => fields!(U8, Tag, Rest),
        _ => None,
    }
}

/// Why rdata does not hold what its type says.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RdataError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, RdataError> {
    Err(RdataError(msg.into()))
}

/// Octets `field` takes at the start of `rest` (before content checks).
fn field_len(field: Field, rest: &[u8]) -> Result<usize, RdataError> {
    use Field::*;
    let n = match field {
        U8 => 1,
        U16 | Type => 2,
        U32 | Period | Time | Ipv4 => 4,
        Ipv6 => 16,
        Loc => match rest.first() {
            Some(0) => 16,
            Some(_) => rest.len(),
            None => return err("ends early"),
        },
        Eui48 => 6,
        Eui64 => 8,
        Name(_) => match name::wire_len(rest) {
            Some(n) => n,
            None => return err("no valid domain name where one is expected"),
        },
        Text | Salt | Hash | Tag => match rest.first() {
            Some(&l) => 1 + l as usize,
            None => return err("ends where a length octet is expected"),
        },
        Texts | Base64 | Hex | Bitmap | SvcParams | Rest => rest.len(),
    };
    if n > rest.len() {
        return err("ends early");
    }
    Ok(n)
}

/// The fields of `rd`, in order, each with its octets; an error ends it
/// (rdata shorter than its fields, or octets left over after the last).
pub struct Split<'a> {
    fields: &'static [Field],
    rd: &'a [u8],
    pos: usize,
    i: usize,
    failed: bool,
}

pub fn split<'a>(info: &TypeInfo, rd: &'a [u8]) -> Split<'a> {
    Split {
        fields: info.fields,
        rd,
        pos: 0,
        i: 0,
        failed: false,
    }
}

impl<'a> Iterator for Split<'a> {
    type Item = Result<(Field, &'a [u8]), RdataError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let rest = &self.rd[self.pos..];
        let Some(&field) = self.fields.get(self.i) else {
            if rest.is_empty() {
                return None;
            }
            self.failed = true;
            return Some(err(format!("{} octets left over", rest.len())));
        };
        match field_len(field, rest) {
            Ok(n) => {
                self.i += 1;
                self.pos += n;
                Some(Ok((field, &rest[..n])))
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

/// Most fields a known type has (RRSIG).
const MAX_FIELDS: usize = 9;

/// Checks that `rd` is well-formed rdata of type `t`: every field present
/// and whole, nothing left over, and the contents BIND's `named-checkzone`
/// also insists on (non-empty keys, signatures and digests; digest lengths
/// of known digest types; well-formed type bitmaps and SvcParams). Unknown
/// types are opaque.
pub fn validate(t: u16, rd: &[u8]) -> Result<(), RdataError> {
    if rd.len() > 65535 {
        return err("rdata longer than 65535 octets");
    }
    let Some(info) = info(t) else {
        return Ok(());
    };
    let mut vals: [&[u8]; MAX_FIELDS] = [&[]; MAX_FIELDS];
    for (i, f) in split(info, rd).enumerate() {
        let (field, v) = f?;
        check_field(t, field, v)?;
        if let Some(slot) = vals.get_mut(i) {
            *slot = v;
        }
    }
    let byte = |i: usize| vals[i].first().copied().unwrap_or(0);
    match t {
        // Digest lengths of the digest types BIND checks.
        rtype::DS | rtype::CDS => {
            digest_len("digest", byte(2), vals[3], &[(1, 20), (2, 32), (4, 48)])?
        }
        rtype::SSHFP => digest_len("fingerprint", byte(1), vals[2], &[(1, 20), (2, 32)])?,
        rtype::NAPTR => naptr_regexp(vals[4].get(1..).unwrap_or_default())?,
        rtype::ZONEMD => {
            let want = match byte(2) {
                1 => 48,
                2 => 64,
                _ => 12,
            };
            if vals[3].len() < want {
                return err(format!(
                    "digest of {} octets, at least {want} expected",
                    vals[3].len()
                ));
            }
        }
        _ => {}
    }
    Ok(())
}

/// A digest whose type has a known length must have that length.
fn digest_len(
    what: &str,
    kind: u8,
    digest: &[u8],
    known: &[(u8, usize)],
) -> Result<(), RdataError> {
    match known.iter().find(|k| k.0 == kind) {
        Some(&(_, want)) if want != digest.len() => err(format!(
            "{what} of {} octets, but {what} type {kind} has {want}",
            digest.len()
        )),
        _ => Ok(()),
    }
}

fn check_field(t: u16, field: Field, v: &[u8]) -> Result<(), RdataError> {
    match field {
        Field::Texts => {
            let mut rest = v;
            if rest.is_empty() {
                return err("no character-string");
            }
            while let Some(&l) = rest.first() {
                rest = rest
                    .get(1 + l as usize..)
                    .ok_or_else(|| RdataError("a character-string ends early".into()))?;
            }
        }
        Field::Base64 | Field::Hex if v.is_empty() => {
            return err(format!("{} rdata ends early", rtype::to_text(t)));
        }
        Field::Hash if v.len() < 2 => return err("empty next hashed owner name"),
        Field::Tag if v.len() < 2 || !v[1..].iter().all(u8::is_ascii_alphanumeric) => {
            return err("a CAA tag must be letters and digits");
        }
        Field::Bitmap => bitmap(v, t != rtype::NSEC)?,
        Field::SvcParams => svc_params(v)?,
        Field::Loc if v.first() == Some(&0) => {
            // RFC 1876: size and precisions are mantissa/exponent pairs of
            // 0..9; coordinates on the globe.
            for &b in &v[1..4] {
                if b >> 4 > 9 || b & 0xf > 9 {
                    return err("LOC size or precision out of range");
                }
            }
            let u = |i: usize| u32::from_be_bytes([v[i], v[i + 1], v[i + 2], v[i + 3]]);
            if u(4).abs_diff(1 << 31) > 90 * 3_600_000 || u(8).abs_diff(1 << 31) > 180 * 3_600_000 {
                return err("LOC latitude or longitude out of range");
            }
        }
        _ => {}
    }
    Ok(())
}

/// A NAPTR regexp field, if not empty, is `delim ere delim repl delim
/// [i]` (RFC 3403 §4.1), checked as BIND's `txt_valid_regex` does short of
/// compiling the expression: no NUL, the delimiter neither a digit, `\\`
/// nor `i`, exactly three delimiters, escapes complete, only `i` as a flag.
fn naptr_regexp(re: &[u8]) -> Result<(), RdataError> {
    let Some((&delim, mut rest)) = re.split_first() else {
        return Ok(());
    };
    let bad = || err("NAPTR regexp is not delim-ere-delim-replacement-delim-flags");
    if delim.is_ascii_digit() || matches!(delim, b'\\' | b'i' | 0) {
        return bad();
    }
    let mut part = 0;
    while let Some((&c, tail)) = rest.split_first() {
        rest = tail;
        if c == 0 {
            return bad();
        }
        if c == delim {
            part += 1;
            if part > 2 {
                return bad();
            }
            continue;
        }
        if part == 2 {
            if c != b'i' {
                return bad();
            }
            continue;
        }
        if c == b'\\' {
            match rest.split_first() {
                Some((&0, _)) | None => return bad(),
                Some((&b'0', _)) if part == 1 => return bad(),
                Some((_, tail)) => rest = tail,
            }
        }
    }
    if part < 2 {
        return bad();
    }
    Ok(())
}

/// The blocks of a type bitmap: windows strictly increasing, each 1..32
/// octets long with a non-zero last octet (RFC 4034 §4.1.2).
fn bitmap(mut v: &[u8], empty_ok: bool) -> Result<(), RdataError> {
    if v.is_empty() && !empty_ok {
        return err("empty type bitmap");
    }
    let mut last: Option<u8> = None;
    while !v.is_empty() {
        let (Some(&window), Some(&len)) = (v.first(), v.get(1)) else {
            return err("type bitmap ends inside a block header");
        };
        if last.is_some_and(|l| window <= l) {
            return err("type bitmap windows out of order");
        }
        let len = len as usize;
        if !(1..=32).contains(&len) {
            return err("type bitmap block length outside 1..32");
        }
        let Some(bits) = v.get(2..2 + len) else {
            return err("type bitmap ends inside a block");
        };
        if bits.last() == Some(&0) {
            return err("type bitmap block ends with a zero octet");
        }
        last = Some(window);
        v = &v[2 + len..];
    }
    Ok(())
}

/// The types a bitmap lists, in order.
pub fn bitmap_types(mut v: &[u8]) -> impl Iterator<Item = u16> + '_ {
    let mut window = 0u16;
    let mut bits: &[u8] = &[];
    let mut at = 0usize;
    std::iter::from_fn(move || {
        loop {
            while at < bits.len() * 8 {
                let i = at;
                at += 1;
                if bits[i / 8] & (0x80 >> (i % 8)) != 0 {
                    return Some(window * 256 + i as u16);
                }
            }
            let (&w, &len) = (v.first()?, v.get(1)?);
            bits = v.get(2..2 + len as usize)?;
            v = &v[2 + len as usize..];
            window = w as u16;
            at = 0;
        }
    })
}

/// SvcParam keys with a name (RFC 9460 §14.3.2).
pub const SVC_KEYS: [&str; 8] = [
    "mandatory",
    "alpn",
    "no-default-alpn",
    "port",
    "ipv4hint",
    "ech",
    "ipv6hint",
    "dohpath",
];

/// The SvcParams of an SVCB/HTTPS record, each key with its value.
pub fn svc_param_iter(mut v: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        let key = u16::from_be_bytes([*v.first()?, *v.get(1)?]);
        let len = u16::from_be_bytes([*v.get(2)?, *v.get(3)?]) as usize;
        let val = v.get(4..4 + len)?;
        v = &v[4 + len..];
        Some((key, val))
    })
}

/// SvcParams: keys strictly increasing, each value the shape its key has.
fn svc_params(v: &[u8]) -> Result<(), RdataError> {
    let mut total = 0;
    let mut last: Option<u16> = None;
    for (key, val) in svc_param_iter(v) {
        total += 4 + val.len();
        if last.is_some_and(|l| key <= l) {
            return err("SvcParam keys out of order or repeated");
        }
        last = Some(key);
        let ok = match key {
            0 => {
                !val.is_empty()
                    && val.len() % 2 == 0
                    && val
                        .chunks(2)
                        .map(|c| u16::from_be_bytes([c[0], c[1]]))
                        .try_fold(None, |prev: Option<u16>, k| {
                            (k != 0 && prev.is_none_or(|p| k > p)).then_some(Some(k))
                        })
                        .is_some()
            }
            1 => {
                let mut rest = val;
                let mut ok = !rest.is_empty();
                while let Some(&l) = rest.first() {
                    if l == 0 || rest.len() < 1 + l as usize {
                        ok = false;
                        break;
                    }
                    rest = &rest[1 + l as usize..];
                }
                ok
            }
            2 => val.is_empty(),
            3 => val.len() == 2,
            4 => !val.is_empty() && val.len() % 4 == 0,
            6 => !val.is_empty() && val.len() % 16 == 0,
            65535 => false,
            _ => true,
        };
        if !ok {
            return err(format!("malformed SvcParam {}", svc_key_name(key)));
        }
    }
    if total != v.len() {
        return err("SvcParams end inside a parameter");
    }
    Ok(())
}

pub fn svc_key_name(key: u16) -> String {
    SVC_KEYS
        .get(key as usize)
        .map(|s| s.to_string())
        .unwrap_or_else(|| format!("key{key}"))
}

/// Decompresses the names of a record's rdata read from a message: `start`
/// and `end` bound the rdata in `msg`. Types whose names may not be
/// compressed are copied as they are. `None` when a name in it cannot be read.
pub fn decompress(t: u16, msg: &[u8], start: usize, end: usize) -> Option<Vec<u8>> {
    let raw = msg.get(start..end)?;
    let Some(info) = info(t).filter(|i| i.decompress) else {
        return Some(raw.to_vec());
    };
    let mut out = Vec::with_capacity(raw.len() + 32);
    let mut pos = start;
    for &field in info.fields {
        match field {
            Field::Name(Compress::Yes | Compress::Decompress) => {
                let (n, next) = name::read_compressed(msg, pos)?;
                if next > end {
                    return None;
                }
                out.extend_from_slice(&n);
                pos = next;
            }
            f => {
                let n = field_len(f, msg.get(pos..end)?).ok()?;
                out.extend_from_slice(&msg[pos..pos + n]);
                pos += n;
            }
        }
    }
    (pos == end).then_some(out)
}

/// An SOA record's rdata, read once (RFC 1035 §3.3.13).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Soa<'a> {
    pub mname: &'a [u8],
    pub rname: &'a [u8],
    pub serial: u32,
    pub refresh: u32,
    pub retry: u32,
    pub expire: u32,
    pub minimum: u32,
}

impl<'a> Soa<'a> {
    /// `None` unless `rd` is exactly two names and five 32-bit fields.
    pub fn parse(rd: &'a [u8]) -> Option<Soa<'a>> {
        let a = name::wire_len(rd)?;
        let b = name::wire_len(&rd[a..])?;
        let f = rd.get(a + b..)?;
        if f.len() != 20 {
            return None;
        }
        let n = |i: usize| u32::from_be_bytes([f[4 * i], f[4 * i + 1], f[4 * i + 2], f[4 * i + 3]]);
        Some(Soa {
            mname: &rd[..a],
            rname: &rd[a..a + b],
            serial: n(0),
            refresh: n(1),
            retry: n(2),
            expire: n(3),
            minimum: n(4),
        })
    }

    /// Where the serial sits in the rdata.
    pub fn serial_offset(&self) -> usize {
        self.mname.len() + self.rname.len()
    }
}

/// Rewrites the serial of SOA rdata in place; false when `rd` is no SOA.
pub fn set_soa_serial(rd: &mut [u8], serial: u32) -> bool {
    let Some(at) = Soa::parse(rd).map(|s| s.serial_offset()) else {
        return false;
    };
    rd[at..at + 4].copy_from_slice(&serial.to_be_bytes());
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        data_encoding::HEXLOWER_PERMISSIVE
            .decode(s.as_bytes())
            .unwrap()
    }

    #[test]
    fn the_issue_records_are_refused() {
        for (t, rd) in [
            (rtype::NS, "0501"),
            (rtype::MX, "00"),
            (rtype::A, "010203"),
            (rtype::AAAA, "01020304"),
            (rtype::SRV, "000000000000"),
            (rtype::SOA, "00000000000000000000"),
            (rtype::CNAME, "01"),
            (rtype::TXT, ""),
            (rtype::TXT, "0561"),
            (rtype::DS, "00010802"),
            (rtype::DS, "0001080201"),
            (rtype::RRSIG, "000108020000012c0000000000000000abcd00"),
            (rtype::NSEC, "00000100"),
            (rtype::NAPTR, "00010002"),
            (rtype::PTR, "0501"),
            (rtype::HTTPS, "0001"),
            (rtype::HTTPS, "00010000010000"),
        ] {
            assert!(validate(t, &hex(rd)).is_err(), "{} {rd}", rtype::to_text(t));
        }
        for (t, rd) in [
            (rtype::TXT, "00"),
            (rtype::DS, "0001080001"),
            (rtype::RRSIG, "000108020000012c0000000000000000abcd0001"),
            (rtype::NSEC, "00000140"),
            (rtype::HTTPS, "000100"),
            (rtype::SRV, "00000000000000"),
            (rtype::LOC, "01"),
            (65280, ""),
        ] {
            validate(t, &hex(rd)).unwrap_or_else(|e| panic!("{} {rd}: {e}", rtype::to_text(t)));
        }
    }

    #[test]
    fn soa_view() {
        let rd = hex("02787800016800000000070000000100000002000000030000000f");
        let s = Soa::parse(&rd).unwrap();
        assert_eq!((s.serial, s.refresh, s.minimum), (7, 1, 15));
        assert!(Soa::parse(&rd[..rd.len() - 1]).is_none());
        let mut rd2 = rd.clone();
        assert!(set_soa_serial(&mut rd2, 9));
        assert_eq!(Soa::parse(&rd2).unwrap().serial, 9);
    }

    #[test]
    fn bitmaps() {
        let v = hex("0006400000000002");
        assert!(bitmap(&v, false).is_ok());
        assert_eq!(bitmap_types(&v).collect::<Vec<_>>(), [1, 46]);
        assert!(bitmap(&hex("000140000140"), false).is_err());
        assert!(bitmap(&[], false).is_err());
        assert!(bitmap(&[], true).is_ok());
    }

    #[test]
    fn decompresses_only_where_allowed() {
        // header, then "a.example." at 12, then MX rdata with a pointer to 14.
        let mut msg = vec![0u8; 12];
        msg.extend_from_slice(b"\x01a\x07example\x00");
        let start = msg.len();
        msg.extend_from_slice(b"\x00\x0a\xc0\x0e");
        let end = msg.len();
        assert_eq!(
            decompress(rtype::MX, &msg, start, end).unwrap(),
            b"\x00\x0a\x07example\x00"
        );
        // NSEC's next name may not be compressed: copied as it is.
        assert_eq!(
            decompress(rtype::NSEC, &msg, start, end).unwrap(),
            &msg[start..end]
        );
        assert!(decompress(rtype::MX, &msg, start, end - 1).is_none());
    }
}
