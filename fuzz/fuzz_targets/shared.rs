//! What the fuzz targets check once they have a zone: every name asked for
//! many types over UDP and TCP, with and without DO, each answer read back
//! record by record and its rdata checked against the type table; and the
//! zone sent out by AXFR, read back by the transfer-in parser, and built
//! again to the same content.
#![allow(dead_code)]

use std::sync::{Arc, LazyLock};
use tandem::catalog::{Catalog, Served};
use tandem::query::Transport;
use tandem::secondary::build_full;
use tandem::server::dispatch::{Options, answer};
use tandem::xfr::reader::{Fetched, parse_messages};
use tandem::zone::diff::content_hash;
use tandem::zone::{Zone, ZoneBuilder, load_zone_str, name, rdata, rtype};

static OPTS: LazyLock<Options> = LazyLock::new(Options::default);
static RT: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
});

const FIXED_TYPES: [u16; 14] = [
    rtype::A,
    rtype::NS,
    rtype::CNAME,
    rtype::SOA,
    rtype::MX,
    rtype::TXT,
    rtype::AAAA,
    rtype::SRV,
    rtype::DS,
    rtype::RRSIG,
    rtype::NSEC,
    rtype::ANY,
    rtype::IXFR,
    65280,
];

fn query(qname: &[u8], qtype: u16, dnssec_ok: bool) -> Vec<u8> {
    let mut q = vec![0x4a, 0x11, 0, 0, 0, 1, 0, 0, 0, 0, 0, u8::from(dnssec_ok)];
    q.extend_from_slice(qname);
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&1u16.to_be_bytes());
    if dnssec_ok {
        q.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0x80, 0, 0, 0]);
    }
    q
}

/// Walks every record of a response: names readable, rdata well-formed for
/// its type (after decompression).
fn check_response(resp: &[u8], req: &[u8], udp: bool) {
    assert!(resp.len() >= 12, "short response");
    assert_eq!(&resp[..2], &req[..2], "ID echoed");
    assert!(resp[2] & 0x80 != 0, "QR set");
    if udp {
        assert!(resp.len() <= 1232, "UDP answer of {} octets", resp.len());
    }
    let count = |i: usize| u16::from_be_bytes([resp[i], resp[i + 1]]) as usize;
    let (qd, rrs) = (count(4), count(6) + count(8) + count(10));
    let mut pos = 12;
    for _ in 0..qd {
        let (_, next) = name::read_compressed(resp, pos).expect("question name");
        pos = next + 4;
    }
    for _ in 0..rrs {
        let (_, next) = name::read_compressed(resp, pos).expect("owner name");
        let f = resp.get(next..next + 10).expect("record header");
        let t = u16::from_be_bytes([f[0], f[1]]);
        let len = u16::from_be_bytes([f[8], f[9]]) as usize;
        let (start, end) = (next + 10, next + 10 + len);
        assert!(end <= resp.len(), "rdata past the end");
        if t != rtype::OPT && t != rtype::TSIG {
            let rd = rdata::decompress(t, resp, start, end).expect("rdata names");
            if let Err(e) = rdata::validate(t, &rd) {
                panic!("{} rdata written malformed: {e}", rtype::to_text(t));
            }
        }
        pos = end;
    }
    assert_eq!(pos, resp.len(), "octets after the last record");
}

/// Every name of `zone` (and a missing one, and one below a wildcard's
/// level) asked for the fixed types and the zone's own.
pub fn ask_everything(zone: &Arc<Zone>) {
    let cat = Catalog::new(vec![Served::standalone(zone.clone())]);
    let mut names: Vec<Vec<u8>> = zone.nodes().map(|n| n.name().to_vec()).collect();
    // A name below each one: NXDOMAIN, wildcard, DNAME and referral
    // answers, and with DO the proofs of signed zones.
    for i in 0..names.len() {
        let mut n = b"\x02zz".to_vec();
        n.extend_from_slice(&names[i]);
        if n.len() <= name::MAX_NAME {
            names.push(n);
        }
    }
    for extra in [&b"\x07missing"[..], b"\x01x\x01y"] {
        let mut n = extra.to_vec();
        n.extend_from_slice(zone.origin());
        if n.len() <= name::MAX_NAME {
            names.push(n);
        }
    }
    let mut types: Vec<u16> = FIXED_TYPES.to_vec();
    for node in zone.nodes() {
        types.extend(node.rrsets().map(|s| s.rtype));
    }
    types.sort_unstable();
    types.dedup();
    let peer = "192.0.2.9".parse().expect("addr");
    let mut out = vec![0u8; 65535];
    for n in &names {
        for &t in &types {
            for (tr, udp) in [(Transport::Udp, true), (Transport::Tcp, false)] {
                for dnssec_ok in [false, true] {
                    let q = query(n, t, dnssec_ok);
                    let len = answer(&cat, &q, &mut out, tr, peer, &OPTS).expect("an answer");
                    check_response(&out[..len], &q, udp);
                }
            }
        }
    }
}

/// Messages framed as on TCP (2-octet length, then the message); a short
/// last one is taken as it is.
pub fn split_framed(mut rest: &[u8]) -> Vec<Vec<u8>> {
    let mut messages = Vec::new();
    while rest.len() >= 2 {
        let len = u16::from_be_bytes([rest[0], rest[1]]) as usize;
        let end = (2 + len).min(rest.len());
        messages.push(rest[2..end].to_vec());
        rest = &rest[end..];
    }
    messages
}

/// AXFR out of `zone`, read back and rebuilt: the same content.
pub fn axfr_round_trip(zone: &Arc<Zone>) {
    let cat = Catalog::new(vec![Served::standalone(zone.clone())]);
    let mut apex = zone.origin().to_vec();
    name::lowercase(&mut apex);
    let req = query(&apex, rtype::AXFR, false);
    let parsed = tandem::query::request::parse_request(&req).expect("AXFR request");
    let mut wire: Vec<u8> = Vec::new();
    let limits = tandem::xfr::out::Deadlines {
        message: std::time::Duration::from_secs(5),
        whole: std::time::Duration::from_secs(60),
    };
    RT.block_on(tandem::xfr::out::respond(
        &mut wire,
        &req,
        &parsed,
        &cat,
        "127.0.0.1".parse().expect("addr"),
        tandem::xfr::acl::Channel::Tcp,
        &Default::default(),
        limits,
    ))
    .expect("AXFR written");
    let msgs = split_framed(&wire);
    let Ok(Fetched::Full(records)) = parse_messages(&msgs, None, 10_000_000) else {
        panic!("own AXFR not read back");
    };
    let back =
        build_full(&apex, records).unwrap_or_else(|e| panic!("own AXFR does not build: {e}"));
    assert_eq!(
        content_hash(&back),
        content_hash(zone),
        "AXFR changed the zone"
    );
}

pub const APEX: &[u8] = b"\x07example\x04test\x00";
pub const HEAD: &str =
    "$ORIGIN example.test.\n$TTL 300\n@ SOA ns h 1 2 3 4 5\n NS ns\nns A 192.0.2.1\n";

fn zone_from_wire(mut d: &[u8]) -> Option<tandem::zone::Zone> {
    let mut b = ZoneBuilder::new(APEX);
    let soa = b"\x02ns\x07example\x04test\x00\x01h\x07example\x04test\x00\x00\x00\x00\x01\x00\x00\x00\x02\x00\x00\x00\x03\x00\x00\x00\x04\x00\x00\x00\x05";
    b.add(APEX, 6, 300, soa, Default::default()).ok()?;
    b.add(
        APEX,
        2,
        300,
        b"\x02ns\x07example\x04test\x00",
        Default::default(),
    )
    .ok()?;
    while let Some((&labels, rest)) = d.split_first() {
        d = rest;
        let mut owner = Vec::new();
        for _ in 0..labels % 4 {
            let (&l, rest) = d.split_first()?;
            let l = (l % 8) as usize + 1;
            owner.push(l as u8);
            owner.extend_from_slice(rest.get(..l)?);
            d = &rest[l..];
        }
        owner.extend_from_slice(APEX);
        let t = u16::from_be_bytes([*d.first()?, *d.get(1)?]);
        let len = *d.get(2)? as usize;
        let rd = d.get(3..3 + len)?;
        d = &d[3 + len..];
        let _ = b.add(&owner, t, 300, rd, Default::default());
    }
    b.build().ok()
}

/// The zone a `zone_query` input describes: the first byte picks the form
/// (even: zone-file text after a fixed SOA and NS; odd: wire records), and
/// zones of more than 200 names are skipped (they only slow the search).
pub fn zone_from_input(data: &[u8]) -> Option<Arc<Zone>> {
    let (&mode, rest) = data.split_first()?;
    let zone = if mode % 2 == 0 {
        let text = std::str::from_utf8(rest).ok()?;
        load_zone_str(&format!("{HEAD}{text}"), "fuzz.zone", APEX).ok()?
    } else {
        zone_from_wire(rest)?
    };
    (zone.name_count() <= 200).then(|| Arc::new(zone))
}
