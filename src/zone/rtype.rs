//! Record type codes and their mnemonics.

pub const A: u16 = 1;
pub const NS: u16 = 2;
pub const MD: u16 = 3;
pub const MF: u16 = 4;
pub const CNAME: u16 = 5;
pub const SOA: u16 = 6;
pub const MB: u16 = 7;
pub const MG: u16 = 8;
pub const MR: u16 = 9;
pub const PTR: u16 = 12;
pub const HINFO: u16 = 13;
pub const MINFO: u16 = 14;
pub const MX: u16 = 15;
pub const TXT: u16 = 16;
pub const RP: u16 = 17;
pub const AFSDB: u16 = 18;
pub const RT: u16 = 21;
pub const AAAA: u16 = 28;
pub const LOC: u16 = 29;
pub const SRV: u16 = 33;
pub const NAPTR: u16 = 35;
pub const KX: u16 = 36;
pub const CERT: u16 = 37;
pub const DNAME: u16 = 39;
pub const OPT: u16 = 41;
pub const DS: u16 = 43;
pub const SSHFP: u16 = 44;
pub const RRSIG: u16 = 46;
pub const NSEC: u16 = 47;
pub const DNSKEY: u16 = 48;
pub const DHCID: u16 = 49;
pub const NSEC3: u16 = 50;
pub const NSEC3PARAM: u16 = 51;
pub const TLSA: u16 = 52;
pub const SMIMEA: u16 = 53;
pub const CDS: u16 = 59;
pub const CDNSKEY: u16 = 60;
pub const OPENPGPKEY: u16 = 61;
pub const CSYNC: u16 = 62;
pub const ZONEMD: u16 = 63;
pub const SVCB: u16 = 64;
pub const HTTPS: u16 = 65;
pub const SPF: u16 = 99;
pub const EUI48: u16 = 108;
pub const EUI64: u16 = 109;
pub const TKEY: u16 = 249;
pub const TSIG: u16 = 250;
pub const IXFR: u16 = 251;
pub const AXFR: u16 = 252;
pub const MAILB: u16 = 253;
pub const MAILA: u16 = 254;
pub const ANY: u16 = 255;
pub const URI: u16 = 256;
pub const CAA: u16 = 257;

const NAMES: &[(&str, u16)] = &[
    ("A", A),
    ("NS", NS),
    ("MD", MD),
    ("MF", MF),
    ("CNAME", CNAME),
    ("SOA", SOA),
    ("MB", MB),
    ("MG", MG),
    ("MR", MR),
    ("PTR", PTR),
    ("HINFO", HINFO),
    ("MINFO", MINFO),
    ("MX", MX),
    ("TXT", TXT),
    ("RP", RP),
    ("AFSDB", AFSDB),
    ("RT", RT),
    ("AAAA", AAAA),
    ("LOC", LOC),
    ("SRV", SRV),
    ("NAPTR", NAPTR),
    ("KX", KX),
    ("CERT", CERT),
    ("DNAME", DNAME),
    ("OPT", OPT),
    ("DS", DS),
    ("SSHFP", SSHFP),
    ("RRSIG", RRSIG),
    ("NSEC", NSEC),
    ("DNSKEY", DNSKEY),
    ("DHCID", DHCID),
    ("NSEC3", NSEC3),
    ("NSEC3PARAM", NSEC3PARAM),
    ("TLSA", TLSA),
    ("SMIMEA", SMIMEA),
    ("CDS", CDS),
    ("CDNSKEY", CDNSKEY),
    ("OPENPGPKEY", OPENPGPKEY),
    ("CSYNC", CSYNC),
    ("ZONEMD", ZONEMD),
    ("SVCB", SVCB),
    ("HTTPS", HTTPS),
    ("SPF", SPF),
    ("EUI48", EUI48),
    ("EUI64", EUI64),
    ("TKEY", TKEY),
    ("TSIG", TSIG),
    ("IXFR", IXFR),
    ("AXFR", AXFR),
    ("MAILB", MAILB),
    ("MAILA", MAILA),
    ("ANY", ANY),
    ("URI", URI),
    ("CAA", CAA),
];

/// Mnemonic or `TYPEnnn` (case-insensitive) to code.
pub fn from_text(s: &[u8]) -> Option<u16> {
    if s.len() > 4 && s[..4].eq_ignore_ascii_case(b"TYPE") && s[4..].iter().all(u8::is_ascii_digit)
    {
        return std::str::from_utf8(&s[4..]).ok()?.parse().ok();
    }
    NAMES
        .iter()
        .find(|(n, _)| n.as_bytes().eq_ignore_ascii_case(s))
        .map(|&(_, c)| c)
}

/// Mnemonic, or `TYPEnnn` for types without one.
pub fn to_text(t: u16) -> String {
    NAMES
        .iter()
        .find(|&&(_, c)| c == t)
        .map(|(n, _)| (*n).to_string())
        .unwrap_or_else(|| format!("TYPE{t}"))
}

/// Types that may never appear in zone data.
pub fn is_meta(t: u16) -> bool {
    t == OPT || (128..=255).contains(&t)
}
