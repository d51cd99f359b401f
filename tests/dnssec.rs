//! Signed zones without a validating resolver: the NSEC3 iteration cap, and
//! a secondary whose denial view was updated by IXFRs proving exactly what
//! its primary, which read each version whole, proves. (Validation itself:
//! `dnssec_validation.rs`, through Unbound.)

mod common;

use common::*;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

const ZONE: &str = "proofs.test.";

/// An NSEC3 zone (the store checks no signatures, so the chain needs only
/// well-formed records): `names` are ordinary names, `hashes` the NSEC3
/// owners, one letter repeated 32 times each.
fn nsec3_zone(serial: u32, iterations: u16, names: &[&str], hashes: &[char]) -> String {
    let mut body = format!(
        "@ DNSKEY 257 3 13 AAAA\n@ NSEC3PARAM 1 0 {iterations} -\n@ RRSIG SOA 13 2 300 20361123082136 20261126082136 1 {ZONE} AAAA\n"
    );
    for n in names {
        body += &format!("{n} A 192.0.2.7\n");
    }
    for (i, h) in hashes.iter().enumerate() {
        let next = hashes[(i + 1) % hashes.len()];
        body += &format!(
            "{} NSEC3 1 1 {iterations} - {} A RRSIG\n",
            h.to_string().repeat(32),
            next.to_string().repeat(32)
        );
    }
    zone_text(ZONE, serial, &body)
}

fn authority(addr: SocketAddr, name: &str, t: RecordType) -> (ResponseCode, BTreeSet<String>) {
    let m: Message = udp_query(addr, &with_edns(query(name, t), 4096, true));
    (
        m.metadata.response_code,
        m.authorities.iter().map(|r| r.to_string()).collect(),
    )
}

#[test]
fn nsec3_iterations_above_the_limit_are_refused_unless_the_limit_allows_them() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("z.zone");
    std::fs::write(&file, nsec3_zone(1, 200, &["a"], &['0', '8'])).unwrap();
    let cfg = |extra: &str| {
        format!(
            "[server]\nlisten = [\"127.0.0.1:{{PORT}}\"]\ndata_dir = \"var\"\n{extra}\n[[zone]]\nname = \"{ZONE}\"\nrole = \"primary\"\nfile = \"{}\"\n",
            file.display()
        )
    };
    let t = Tandem::spawn(&cfg(""));
    t.wait_log(
        0,
        &["200 iterations, more than nsec3_max_iterations = 150"],
        Duration::from_secs(20),
    );
    let m = udp_query(t.addr, &query(ZONE, RecordType::SOA));
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    drop(t);

    let t = Tandem::start(&cfg("nsec3_max_iterations = 500"), ZONE);
    let (rc, auth) = authority(t.addr, &format!("nx.{ZONE}"), RecordType::A);
    assert_eq!(rc, ResponseCode::NXDomain);
    assert!(auth.iter().any(|r| r.contains("NSEC3")), "{auth:?}");
    // A file edited past the limit keeps the served version.
    std::fs::write(
        dir.path().join("next"),
        nsec3_zone(2, 600, &["a", "b"], &['0', '8']),
    )
    .unwrap();
    std::fs::rename(dir.path().join("next"), &file).unwrap();
    t.wait_log(0, &["600 iterations"], Duration::from_secs(20));
    assert_eq!(serial_of(t.addr, ZONE), Some(1));
}

#[test]
fn a_secondary_updated_by_ixfr_proves_what_a_fresh_load_proves() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("z.zone");
    let versions = [
        nsec3_zone(
            1,
            0,
            &["a", "b", "c.d", "*.w", "x.w"],
            &['0', '4', '8', 'c', 'g'],
        ),
        // A name and an NSEC3 added.
        nsec3_zone(
            2,
            0,
            &["a", "b", "c.d", "*.w", "x.w", "e.f"],
            &['0', '4', '8', 'a', 'c', 'g'],
        ),
        // Names and NSEC3s deleted, the first and the last included.
        nsec3_zone(3, 0, &["b", "c.d", "*.w", "e.f"], &['4', '8', 'a', 'c']),
        // New parameters: the view is built afresh.
        nsec3_zone(
            4,
            1,
            &["b", "c.d", "*.w", "e.f", "g"],
            &['2', '4', '8', 'a', 'c'],
        ),
    ];
    std::fs::write(&file, &versions[0]).unwrap();
    let sport = free_port();
    let p = Tandem::start(
        &format!(
            "[server]\nlisten = [\"127.0.0.1:{{PORT}}\"]\ndata_dir = \"var\"\n[[zone]]\nname = \"{ZONE}\"\nrole = \"primary\"\nfile = \"{}\"\nnotify = [\"127.0.0.1:{sport}\"]\nallow_transfer = [\"127.0.0.0/8\"]\n",
            file.display()
        ),
        ZONE,
    );
    let sdir = tempfile::tempdir().unwrap();
    let s = Tandem::start_in(
        sdir.path(),
        sport,
        &format!(
            "[server]\nlisten = [\"127.0.0.1:{{PORT}}\"]\ndata_dir = \"var\"\n[[zone]]\nname = \"{ZONE}\"\nrole = \"secondary\"\nprimaries = [\"{}\"]\nmin_refresh = 1\nmin_retry = 1\n",
            p.addr
        ),
        ZONE,
    );
    let asked = [
        ("nx", RecordType::A),
        ("a", RecordType::TXT),
        ("b", RecordType::A),
        ("d", RecordType::A),
        ("zz.c.d", RecordType::A),
        ("y.w", RecordType::A),
        ("y.w", RecordType::TXT),
        ("e.f", RecordType::MX),
        ("q.r.s", RecordType::A),
    ];
    for (i, text) in versions.iter().enumerate() {
        let serial = i as u32 + 1;
        if i > 0 {
            write(&file, text);
        }
        wait_serial(p.addr, ZONE, serial, Duration::from_secs(10));
        wait_serial(s.addr, ZONE, serial, Duration::from_secs(10));
        for (n, t) in asked {
            let name = format!("{n}.{ZONE}");
            let primary = authority(p.addr, &name, t);
            let secondary = authority(s.addr, &name, t);
            assert_eq!(primary, secondary, "serial {serial}: {name} {t}");
            // (The hashes are made up, so which NSEC3 covers what is
            // arbitrary; that some is there, and the same, is the point.)
            if primary.0 != ResponseCode::NoError || primary.1.len() > 2 {
                let nsec3s = primary.1.iter().filter(|r| r.contains(" NSEC3 ")).count();
                assert!(nsec3s >= 1, "serial {serial}: {name}: {:?}", primary.1);
            }
        }
    }
    s.wait_log(0, &["IXFR received and applied"], Duration::from_secs(5));
}
