//! The EDNS options answered, only ever when the request carried an OPT
//! record (RFC 6891): NSID (RFC 5001), EXPIRE (RFC 7314) and DNS cookies
//! (RFC 7873, server cookies as RFC 9018 defines them). A request without
//! any of them costs nothing here: the caller sees `None` and writes the
//! bare OPT record as before.
//!
//! Cookies copy BIND 9.18 with its defaults (`answer-cookie yes`,
//! `require-server-cookie no`), checked by running it side by side
//! (`tests/edns_options.rs`, `cookies_as_bind_answers_them_…`):
//!
//! - a client cookie alone, a server cookie that is not ours (a length
//!   other than 16, another version), too old or from the future, or whose
//!   hash does not match: a normal answer carrying the client cookie and a
//!   fresh server cookie (BIND's `process_cookie` just does not set
//!   HAVECOOKIE; it answers BADCOOKIE only with `require-server-cookie`, and
//!   so does tandem with `[server] require_server_cookie = true`, over UDP);
//! - a valid server cookie: a normal answer; the server cookie is echoed
//!   unchanged while its timestamp is less than half an hour old, then a
//!   new one is made (RFC 9018 §4.3; BIND makes a new one every time);
//! - a COOKIE option whose length is neither 8 nor 16..=40: FORMERR (BIND
//!   rejects the message in its OPT parser, `DNS_R_OPTERR` → FORMERR).
//!
//! - a query with no question and a COOKIE option: NOERROR with the server
//!   cookie (RFC 7873 §5.4, BIND; Knot 3.2 answers FORMERR).
//!
//! Where Knot 3.2 (`mod-cookies`, which must be enabled) differs: it
//! answers an invalid server cookie with BADCOOKIE (and the right cookie)
//! rather than normally, and echoes a valid one unchanged, as tandem does
//! for cookies younger than half an hour. Both make the same RFC 9018
//! cookies from the same secret as BIND and tandem do.
//!
//! A server cookie is valid from 5 minutes in the future to an hour in the
//! past (RFC 9018 §4.3, BIND's window), under the current secret or the one
//! before it (a config reload that changes `cookie_secret` keeps the old one
//! for validation until the next change; its cookies age out within the
//! hour anyway).

use super::Options;
use super::request::{EDNS_COOKIE, EDNS_EXPIRE, EDNS_NSID, Edns, Request};
use crate::catalog::Served;
use crate::config::{MAX_NSID, Role};
use crate::zone::rdata::Soa;
use crate::zone::rtype;
use std::hash::Hasher;
use std::net::IpAddr;

/// The client cookie's length (RFC 7873 §4.1).
const CLIENT: usize = 8;
/// Our server cookie's length (RFC 9018 §4.2).
const SERVER: usize = 16;
/// RFC 9018 §4.2: the version this server cookie format carries.
const VERSION: u8 = 1;
/// A server cookie younger than this is echoed as it is (RFC 9018 §4.3).
const REFRESH_AFTER: u32 = 1800;
/// The validity window (RFC 9018 §4.3; BIND's too).
const MAX_AGE: u32 = 3600;
const MAX_SKEW: u32 = 300;
/// Option octets one response may carry besides padding.
const MAX_OPTIONS: usize = (4 + MAX_NSID) + (4 + 4) + (4 + CLIENT + SERVER);

/// What the options need from the config; swapped whole on reload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The NSID sent; empty: none.
    pub nsid: Box<[u8]>,
    /// Server cookies are made with `secret` and checked against it and
    /// `previous`.
    pub secret: [u8; 16],
    pub previous: Option<[u8; 16]>,
    /// Whether `secret` came from the config (else it is random, made at start).
    pub configured: bool,
    /// UDP requests with a cookie but no valid server cookie get BADCOOKIE
    /// (BIND's `require-server-cookie`).
    pub require_server_cookie: bool,
}

/// Sixteen random octets for a secret nobody configured.
pub fn random_secret() -> [u8; 16] {
    let mut s = [0u8; 16];
    if getrandom::getrandom(&mut s).is_err() {
        // No entropy source: still unpredictable enough to a remote client
        // that does not know when the process started.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        s = (t ^ (std::process::id() as u128) << 64).to_le_bytes();
    }
    s
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            nsid: Box::default(),
            secret: random_secret(),
            previous: None,
            configured: false,
            require_server_cookie: false,
        }
    }
}

impl Settings {
    /// The settings a config asks for, `old` the ones in use (a reload):
    /// a changed secret moves the old one to `previous`; an unconfigured
    /// secret keeps the random one already in use.
    pub fn from_config(server: &crate::config::Server, old: Option<&Settings>) -> Settings {
        let (secret, configured) = match (server.cookie_secret, old) {
            (Some(s), _) => (s, true),
            (None, Some(o)) if !o.configured => (o.secret, false),
            (None, _) => (random_secret(), false),
        };
        let previous = match old {
            Some(o) if o.secret != secret => Some(o.secret),
            Some(o) => o.previous,
            None => None,
        };
        Settings {
            nsid: server.nsid.clone().into(),
            secret,
            previous,
            configured,
            require_server_cookie: server.require_server_cookie,
        }
    }
}

/// The request's COOKIE option, judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cookie {
    /// None came (or no OPT at all).
    Absent,
    /// A length RFC 7873 §5.2.2 does not allow: FORMERR.
    Malformed,
    /// The cookie to answer with (client cookie, server cookie), and
    /// whether the request's server cookie was ours and valid.
    Answer {
        cookie: [u8; CLIENT + SERVER],
        valid: bool,
    },
}

impl Cookie {
    /// Judges the request's cookie from `client`. Costs one branch when
    /// there is none.
    pub fn check(req: &Request, client: IpAddr, opts: &Options) -> Cookie {
        let Some(data) = req.edns.and_then(|e| e.cookie) else {
            return Cookie::Absent;
        };
        if data.len() != CLIENT && !(16..=40).contains(&data.len()) {
            return Cookie::Malformed;
        }
        let now = crate::clock::unix_secs() as u32;
        let s = opts.edns.load();
        Cookie::judge(data, client, &s, now)
    }

    fn judge(data: &[u8], client: IpAddr, s: &Settings, now: u32) -> Cookie {
        let mut cookie = [0u8; CLIENT + SERVER];
        cookie[..CLIENT].copy_from_slice(&data[..CLIENT]);
        let server = &data[CLIENT..];
        let age = match server.get(4..8) {
            Some(ts) => now.wrapping_sub(u32::from_be_bytes([ts[0], ts[1], ts[2], ts[3]])) as i32,
            None => i32::MAX,
        };
        let valid = server.len() == SERVER
            && server[0] == VERSION
            && (-(MAX_SKEW as i32)..=MAX_AGE as i32).contains(&age)
            && std::iter::once(&s.secret)
                .chain(s.previous.as_ref())
                .any(|k| {
                    let h = hash(k, &data[..CLIENT], &server[..8], client);
                    subtle::ConstantTimeEq::ct_eq(&h[..], &server[8..]).into()
                });
        if valid && age < REFRESH_AFTER as i32 {
            cookie[CLIENT..].copy_from_slice(server);
        } else {
            // A new one, made now with the current secret.
            cookie[CLIENT] = VERSION;
            cookie[CLIENT + 4..CLIENT + 8].copy_from_slice(&now.to_be_bytes());
            let h = hash(
                &s.secret,
                &data[..CLIENT],
                &cookie[CLIENT..CLIENT + 8],
                client,
            );
            cookie[CLIENT + 8..].copy_from_slice(&h);
        }
        Cookie::Answer { cookie, valid }
    }

    /// Did the request carry a valid server cookie of ours?
    pub fn valid(&self) -> bool {
        matches!(self, Cookie::Answer { valid: true, .. })
    }
}

/// RFC 9018 §4.4: SipHash-2-4 over client cookie | version | reserved |
/// timestamp | client IP, keyed with the secret; the 64-bit result in the
/// reference implementation's (little-endian) byte order, as BIND and Knot
/// write it, so servers of different makes can share a secret.
fn hash(secret: &[u8; 16], client_cookie: &[u8], head: &[u8], ip: IpAddr) -> [u8; 8] {
    let mut h = siphasher::sip::SipHasher24::new_with_key(secret);
    h.write(client_cookie);
    h.write(head);
    match ip {
        IpAddr::V4(a) => h.write(&a.octets()),
        IpAddr::V6(a) => h.write(&a.octets()),
    }
    h.finish().to_le_bytes()
}

/// What the EXPIRE option says for a zone (RFC 7314 §2–3): on a secondary
/// the seconds left before its copy expires, on a primary the SOA EXPIRE.
/// `None` when the zone has no data or no known expiry.
pub fn zone_expire(served: &Served) -> Option<u32> {
    let zone = served.zone.as_deref()?;
    match served.status.role {
        Role::Primary => zone
            .apex()
            .get(rtype::SOA)
            .and_then(|s| s.iter().next())
            .and_then(Soa::parse)
            .map(|s| s.expire),
        Role::Secondary => served.status.expires_in(),
    }
}

/// The options of one response, gathered before its body is written (so
/// their room is kept free) and finished after it (EXPIRE is known only
/// once the zone is found). Exists only when the request asked for one.
pub struct Reply {
    buf: [u8; MAX_OPTIONS],
    len: usize,
    expire: bool,
}

impl Reply {
    /// `None` when the request asks for none of these options (the common
    /// case: nothing is loaded or copied). Options are taken only as far as
    /// `budget` octets go (a small UDP limit, a long name, a long NSID):
    /// the answer itself comes first.
    pub fn new(e: &Edns, cookie: &Cookie, opts: &Options, budget: usize) -> Option<Reply> {
        let answer_cookie = matches!(cookie, Cookie::Answer { .. });
        if !(e.nsid || e.expire || answer_cookie) {
            return None;
        }
        let mut r = Reply {
            buf: [0; MAX_OPTIONS],
            len: 0,
            expire: e.expire && budget >= 8,
        };
        let mut left = budget.saturating_sub(if r.expire { 8 } else { 0 });
        if let Cookie::Answer { cookie, .. } = cookie
            && left >= 4 + cookie.len()
        {
            r.push(EDNS_COOKIE, cookie);
            left -= 4 + cookie.len();
        }
        if e.nsid {
            let s = opts.edns.load();
            let nsid = &s.nsid[..s.nsid.len().min(MAX_NSID)];
            if !nsid.is_empty() && left >= 4 + nsid.len() {
                r.push(EDNS_NSID, nsid);
            }
        }
        Some(r)
    }

    fn push(&mut self, code: u16, data: &[u8]) {
        let b = &mut self.buf[self.len..self.len + 4 + data.len()];
        b[0..2].copy_from_slice(&code.to_be_bytes());
        b[2..4].copy_from_slice(&(data.len() as u16).to_be_bytes());
        b[4..].copy_from_slice(data);
        self.len += 4 + data.len();
    }

    /// The octets to keep free for these options.
    pub fn room(&self) -> usize {
        self.len + if self.expire { 8 } else { 0 }
    }

    /// The options' octets, EXPIRE added when the body found a value.
    pub fn finish(&mut self, expire: Option<u32>) -> &[u8] {
        if let (true, Some(v)) = (self.expire, expire) {
            self.push(EDNS_EXPIRE, &v.to_be_bytes());
            self.expire = false;
        }
        &self.buf[..self.len]
    }
}

/// An OPT record with these options, for the transfer path (which builds
/// its messages itself): root owner, type OPT, `payload`, version 0.
pub fn opt_record(payload: u16, options: &[u8]) -> Vec<u8> {
    let mut rr = vec![0u8; 11 + options.len()];
    rr[1..3].copy_from_slice(&rtype::OPT.to_be_bytes());
    rr[3..5].copy_from_slice(&payload.to_be_bytes());
    rr[9..11].copy_from_slice(&(options.len() as u16).to_be_bytes());
    rr[11..].copy_from_slice(options);
    rr
}

/// One EXPIRE option (RFC 7314 §2), for the transfer path.
pub fn expire_option(v: u32) -> [u8; 8] {
    let mut o = [0u8; 8];
    o[0..2].copy_from_slice(&EDNS_EXPIRE.to_be_bytes());
    o[2..4].copy_from_slice(&4u16.to_be_bytes());
    o[4..].copy_from_slice(&v.to_be_bytes());
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings {
            secret: *b"0123456789abcdef",
            ..Settings::default()
        }
    }

    fn answer(c: Cookie) -> ([u8; 24], bool) {
        match c {
            Cookie::Answer { cookie, valid } => (cookie, valid),
            other => panic!("{other:?}"),
        }
    }

    const IP: &str = "192.0.2.1";

    #[test]
    fn a_client_cookie_gets_a_server_cookie_that_then_validates() {
        let s = settings();
        let ip = IP.parse().unwrap();
        let (c, valid) = answer(Cookie::judge(b"clientck", ip, &s, 1_000_000));
        assert!(!valid);
        assert_eq!(&c[..8], b"clientck");
        assert_eq!(c[8], 1, "version");
        assert_eq!(&c[9..12], &[0, 0, 0], "reserved");
        assert_eq!(u32::from_be_bytes([c[12], c[13], c[14], c[15]]), 1_000_000);
        // Presented again a minute later: valid and echoed unchanged.
        let (c2, valid) = answer(Cookie::judge(&c, ip, &s, 1_000_060));
        assert!(valid);
        assert_eq!(c2, c);
        // After 40 minutes: still valid, but refreshed.
        let (c3, valid) = answer(Cookie::judge(&c, ip, &s, 1_002_400));
        assert!(valid);
        assert_ne!(c3, c);
        // After two hours, from another address, or altered: not valid.
        assert!(!answer(Cookie::judge(&c, ip, &s, 1_007_201)).1);
        assert!(
            !answer(Cookie::judge(
                &c,
                "192.0.2.2".parse().unwrap(),
                &s,
                1_000_001
            ))
            .1
        );
        let mut bad = c;
        bad[23] ^= 1;
        assert!(!answer(Cookie::judge(&bad, ip, &s, 1_000_001)).1);
        // Too far in the future: not valid.
        assert!(!answer(Cookie::judge(&c, ip, &s, 1_000_000 - 301)).1);
    }

    #[test]
    fn the_previous_secret_still_validates_after_a_rotation() {
        let old = settings();
        let ip = IP.parse().unwrap();
        let (c, _) = answer(Cookie::judge(b"clientck", ip, &old, 5000));
        let new = Settings {
            secret: *b"fedcba9876543210",
            previous: Some(old.secret),
            configured: true,
            ..settings()
        };
        assert!(answer(Cookie::judge(&c, ip, &new, 5001)).1);
        let newer = Settings {
            secret: *b"another secret!!",
            previous: Some(new.secret),
            ..new.clone()
        };
        assert!(!answer(Cookie::judge(&c, ip, &newer, 5001)).1);
    }

    #[test]
    fn options_that_do_not_fit_are_left_out_answer_first() {
        let opts = Options::default();
        opts.edns.store(std::sync::Arc::new(Settings {
            nsid: vec![b'n'; 255].into(),
            ..settings()
        }));
        let e = Edns {
            payload: 512,
            version: 0,
            dnssec_ok: false,
            padding: false,
            nsid: true,
            expire: true,
            cookie: None,
        };
        let cookie = Cookie::Answer {
            cookie: [1; 24],
            valid: false,
        };
        let codes = |budget| {
            let mut r = Reply::new(&e, &cookie, &opts, budget).unwrap();
            let room = r.room();
            let b = r.finish(Some(7)).to_vec();
            assert!(
                b.len() <= budget && b.len() <= room,
                "{budget}: {}",
                b.len()
            );
            let mut codes = Vec::new();
            let mut i = 0;
            while i < b.len() {
                codes.push(u16::from_be_bytes([b[i], b[i + 1]]));
                i += 4 + u16::from_be_bytes([b[i + 2], b[i + 3]]) as usize;
            }
            codes
        };
        assert_eq!(codes(1000), [EDNS_COOKIE, EDNS_NSID, EDNS_EXPIRE]);
        assert_eq!(codes(100), [EDNS_COOKIE, EDNS_EXPIRE]);
        assert_eq!(codes(20), [EDNS_EXPIRE]);
        assert!(codes(7).is_empty());
    }

    /// RFC 9018 Appendix A.1 (IPv4): the client cookie 2464c4abcf10c957,
    /// the secret e5e973e5a6b2a43f48e7dc849e37bfcf, time 1559731985 from
    /// 198.51.100.100 gives the server cookie 010000005cf79f111f8130c3eee29480.
    #[test]
    fn rfc_9018_test_vector() {
        let hex = |s: &str| data_encoding::HEXLOWER.decode(s.as_bytes()).unwrap();
        let s = Settings {
            secret: hex("e5e973e5a6b2a43f48e7dc849e37bfcf").try_into().unwrap(),
            ..Settings::default()
        };
        let (c, _) = answer(Cookie::judge(
            &hex("2464c4abcf10c957"),
            "198.51.100.100".parse().unwrap(),
            &s,
            1559731985,
        ));
        assert_eq!(
            data_encoding::HEXLOWER.encode(&c[8..]),
            "010000005cf79f111f8130c3eee29480"
        );
    }
}
