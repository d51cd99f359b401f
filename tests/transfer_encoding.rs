//! What a transfer out carries is the zone exactly: an AXFR and a large
//! IXFR from the real server, over TCP, decoded by hickory (an
//! implementation independent of tandem's encoder) and by a small reader of
//! this test's own, give the records the store holds, names octet for octet
//! (case kept: compression is by exact octets only), names outside the
//! zone and rdata of types whose names must not be compressed (RFC 3597 §4)
//! included.

mod common;

use common::*;
use hickory_proto::op::Message;
use hickory_proto::rr::{Name, Record, RecordType};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

const ZONE: &str = "mixed.test.";
const APEX: &[u8] = b"\x05mixed\x04test\x00";

/// (owner, type, TTL, rdata) in wire form, names uncompressed.
type Rr = (Vec<u8>, u16, u32, Vec<u8>);

/// A record as hickory reads it: exact owner, type, TTL, rdata as text.
type Seen = (Vec<u8>, u16, u32, String);

/// A zone spelled in mixed case, with names outside it in rdata, types of
/// every compression kind, and enough names for many messages. `version`
/// 2 changes, removes and adds names for a large IXFR.
fn zone_text(version: u32) -> String {
    let mut z = format!(
        "$ORIGIN MiXeD.TeSt.\n$TTL 300\n\
         @ SOA NS1.Elsewhere.NET. HostMaster.MiXeD.TeSt. {version} 3600 600 86400 60\n\
         \x20NS ns1\n NS NS2.Elsewhere.NET.\n MX 10 Mail.Elsewhere.NET.\n\
         ns1 A 192.0.2.1\n\
         Sub NS ns.Sub\nSub NS NS.Elsewhere.NET.\nns.Sub A 192.0.2.2\n\
         _sip._tcp SRV 0 1 5060 SipServer.Elsewhere.NET.\n\
         _sip._udp SRV 0 1 5060 Sip.MiXeD.TeSt.\n\
         rp RP Admin.MiXeD.TeSt. Txt.MiXeD.TeSt.\n\
         afs AFSDB 1 AfsServer.Elsewhere.NET.\n\
         naptr NAPTR 100 10 \"S\" \"SIP+D2U\" \"\" _Sip._udp.MiXeD.TeSt.\n\
         Dn DNAME Target.Elsewhere.NET.\n\
         kx KX 10 Kx.Elsewhere.NET.\n\
         svc HTTPS 1 Svc.Elsewhere.NET. alpn=h2\n\
         svc SVCB 0 Alias.MiXeD.TeSt.\n\
         Nsec NSEC Next.MiXeD.TeSt. A NSEC\n\
         PTR PTR Host.Elsewhere.NET.\n\
         opaque TYPE65280 \\# 14 074578616d706c65047465737400\n\
         Upper.MIXED.TEST. A 192.0.2.5\n\
         cn CNAME www.MIXED.TEST.\n\
         mx2 MX 1 Mail.mixed.test.\n"
    );
    for i in 0..4000 {
        if version == 2 && i % 4 == 1 {
            continue; // removed
        }
        let last = if version == 2 && i % 4 == 0 {
            99
        } else {
            i % 250
        };
        z.push_str(&format!("Host{i} A 10.0.{}.{last}\n", i / 250));
        z.push_str(&format!("host{i} TXT \"record {i}\"\n"));
        if i % 10 == 0 {
            // The apex spelled otherwise: never compressed against `MiXeD.TeSt`.
            z.push_str(&format!("Alt{i}.mixed.TEST. MX 1 Alt{i}.MIXED.test.\n"));
        }
        if i % 3 == 0 {
            z.push_str(&format!("HOST{i}.Dept CNAME Target{i}.Elsewhere.NET.\n"));
        }
        if i % 5 == 0 {
            z.push_str(&format!("h{i} MX 5 Mx{}.Provider.ORG.\n", i % 7));
            z.push_str(&format!("h{i} NS ns.H{i}\nns.H{i} A 192.0.2.9\n"));
        }
    }
    if version == 2 {
        for i in 0..1500 {
            z.push_str(&format!("New{i}.Part MX 1 Else{i}.Where.NET.\n"));
            z.push_str(&format!("New{i}.Part PTR Ptr.Provider.ORG.\n"));
        }
    }
    z
}

fn stored(text: &str) -> Vec<Rr> {
    let z = tandem::zone::load_zone_str(text, "mixed.zone", APEX).expect("zone loads");
    z.records()
        .map(|r| (r.owner.to_vec(), r.rtype, r.ttl, r.rdata.to_vec()))
        .collect()
}

/// The name at `pos` of `msg`, pointers followed (backwards only).
fn read_name(msg: &[u8], mut pos: usize) -> (Vec<u8>, usize) {
    let mut out = Vec::new();
    let mut end = None;
    loop {
        let l = msg[pos] as usize;
        if l >= 0xc0 {
            let target = ((l & 0x3f) << 8) | msg[pos + 1] as usize;
            assert!(target < pos, "pointer forwards");
            end.get_or_insert(pos + 2);
            pos = target;
            continue;
        }
        out.extend_from_slice(&msg[pos..pos + 1 + l]);
        pos += 1 + l;
        if l == 0 {
            return (out, end.unwrap_or(pos));
        }
    }
}

/// The answers of a message: names in the owner and in the rdata of the
/// RFC 1035 types that may be compressed read back whole; every other
/// rdata as it came.
fn answers(msg: &[u8]) -> Vec<Rr> {
    let count = |i: usize| u16::from_be_bytes([msg[i], msg[i + 1]]);
    let mut pos = 12;
    for _ in 0..count(4) {
        pos = read_name(msg, pos).1 + 4;
    }
    let mut out = Vec::new();
    for _ in 0..count(6) {
        let (owner, next) = read_name(msg, pos);
        let f = &msg[next..next + 10];
        let t = u16::from_be_bytes([f[0], f[1]]);
        let ttl = u32::from_be_bytes([f[4], f[5], f[6], f[7]]);
        let (start, end) = (
            next + 10,
            next + 10 + u16::from_be_bytes([f[8], f[9]]) as usize,
        );
        let rd = match t {
            // NS, CNAME, PTR: a name; MX: preference, name; SOA: two names, timers.
            2 | 5 | 12 => read_name(msg, start).0,
            15 => [&msg[start..start + 2], &read_name(msg, start + 2).0[..]].concat(),
            6 => {
                let (m, next) = read_name(msg, start);
                let (r, next) = read_name(msg, next);
                [&m[..], &r[..], &msg[next..end]].concat()
            }
            _ => msg[start..end].to_vec(),
        };
        out.push((owner, t, ttl, rd));
        pos = end;
    }
    assert_eq!(pos, msg.len(), "octets after the last record");
    out
}

/// A hickory name as its exact octets (hickory compares names ignoring
/// case, but keeps each label as it was read).
fn exact(n: &Name) -> Vec<u8> {
    let mut w = Vec::new();
    for label in n.iter() {
        w.push(label.len() as u8);
        w.extend_from_slice(label);
    }
    w.push(0);
    w
}

/// What hickory makes of a record.
fn seen_by_hickory(r: &Record) -> Seen {
    (
        exact(&r.name),
        u16::from(r.record_type()),
        r.ttl,
        r.data.to_string(),
    )
}

/// The same for records in stored form: sent uncompressed in a message of
/// their own, read by hickory.
fn stored_by_hickory(rrs: &[Rr]) -> Vec<Seen> {
    rrs.iter()
        .map(|(owner, t, ttl, rd)| {
            let mut m = vec![0, 1, 0x84, 0, 0, 0, 0, 1, 0, 0, 0, 0];
            m.extend_from_slice(owner);
            m.extend_from_slice(&t.to_be_bytes());
            m.extend_from_slice(&[0, 1]);
            m.extend_from_slice(&ttl.to_be_bytes());
            m.extend_from_slice(&(rd.len() as u16).to_be_bytes());
            m.extend_from_slice(rd);
            let parsed = Message::from_vec(&m).expect("stored record read by hickory");
            seen_by_hickory(&parsed.answers[0])
        })
        .collect()
}

/// Counts of each element: the same multiset either way.
fn multiset<T: Ord + Clone>(v: &[T]) -> BTreeMap<T, usize> {
    let mut m = BTreeMap::new();
    for x in v {
        *m.entry(x.clone()).or_insert(0) += 1;
    }
    m
}

/// Asserts that `got` and `want` hold the same elements as often, showing
/// a few of the differences when not.
fn same<T: Ord + Clone + std::fmt::Debug>(got: &[T], want: &[T], what: &str) {
    let (g, w) = (multiset(got), multiset(want));
    if g == w {
        return;
    }
    let extra: Vec<_> = g
        .iter()
        .filter(|(k, n)| w.get(*k) != Some(n))
        .take(3)
        .collect();
    let missing: Vec<_> = w
        .iter()
        .filter(|(k, n)| g.get(*k) != Some(n))
        .take(3)
        .collect();
    panic!(
        "{what}: {} records sent, {} expected; sent but not expected (first 3): {extra:?}; \
         expected but not sent: {missing:?}",
        got.len(),
        want.len()
    );
}

/// Every record of a transfer, by this test's reader and by hickory.
fn fetch(t: &Tandem, request: &Message) -> (Vec<Rr>, Vec<Seen>, usize) {
    let msgs = transfer_raw(t.addr, &request.to_vec().expect("encode"));
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    for raw in &msgs {
        assert!(raw.len() <= 65535);
        let m = Message::from_vec(raw).expect("hickory reads every message");
        theirs.extend(m.answers.iter().map(seen_by_hickory));
        ours.extend(answers(raw));
    }
    assert_eq!(ours.len(), theirs.len());
    (ours, theirs, msgs.len())
}

fn config(file: &Path) -> String {
    format!(
        "[server]\nlisten = [\"127.0.0.1:{{PORT}}\"]\ndata_dir = \"var\"\n\n[[zone]]\nname = \"{ZONE}\"\nrole = \"primary\"\nfile = \"{}\"\nallow_transfer = [\"127.0.0.1\"]\n",
        file.display()
    )
}

#[test]
fn axfr_and_a_large_ixfr_carry_the_stored_records_exactly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("mixed.zone");
    let v1 = zone_text(1);
    std::fs::write(&file, &v1).expect("write zone");
    let t = Tandem::start(&config(&file), ZONE);

    // AXFR: the SOA, every other record once, the SOA.
    let old = stored(&v1);
    let soa1 = old.iter().find(|r| r.1 == 6).cloned().expect("SOA stored");
    let (got, hickory, messages) = fetch(&t, &query(ZONE, RecordType::AXFR));
    assert!(messages > 5, "{messages} messages");
    assert_eq!(got.first(), Some(&soa1));
    assert_eq!(got.last(), Some(&soa1));
    let body: Vec<Rr> = old.iter().filter(|r| r.1 != 6).cloned().collect();
    same(&got[1..got.len() - 1], &body, "AXFR");
    // Case survived the trip (the comparison above would show it too).
    assert_eq!(&got[0].0, b"\x05MiXeD\x04TeSt\x00");
    assert!(got.iter().any(|r| r.0.starts_with(b"\x05Host1\x05MiXeD")));
    let mut want = vec![soa1.clone()];
    want.extend(body);
    want.push(soa1.clone());
    same(&hickory, &stored_by_hickory(&want), "AXFR read by hickory");

    // A large edit: the primary diffs the file, IXFR from serial 1 carries
    // the condensed difference.
    let v2 = zone_text(2);
    let new = stored(&v2);
    write(&file, &v2);
    wait_serial(t.addr, ZONE, 2, Duration::from_secs(30));
    let soa2 = new.iter().find(|r| r.1 == 6).cloned().expect("SOA stored");
    let (old_set, new_set) = (multiset(&old), multiset(&new));
    let minus = |a: &BTreeMap<Rr, usize>, b: &BTreeMap<Rr, usize>| -> Vec<Rr> {
        a.iter()
            .filter(|(r, _)| r.1 != 6 && !b.contains_key(*r))
            .map(|(r, _)| r.clone())
            .collect()
    };
    let (deleted, added) = (minus(&old_set, &new_set), minus(&new_set, &old_set));
    assert!(
        deleted.len() > 3000 && added.len() >= 4000,
        "{} deleted, {} added",
        deleted.len(),
        added.len()
    );

    let (got, hickory, messages) = fetch(&t, &ixfr_query(ZONE, 1));
    assert!(messages > 5, "{messages} messages");
    // SOA 2, SOA 1, deleted, SOA 2, added, SOA 2 (RFC 1995 §4).
    let second = got
        .iter()
        .skip(2)
        .position(|r| r == &soa2)
        .expect("SOA before the additions")
        + 2;
    assert_eq!(got[0], soa2);
    assert_eq!(got[1], soa1);
    assert_eq!(got.last(), Some(&soa2));
    same(&got[2..second], &deleted, "IXFR deletions");
    same(&got[second + 1..got.len() - 1], &added, "IXFR additions");
    let mut want = vec![soa2.clone(), soa1];
    want.extend(deleted);
    want.push(soa2.clone());
    want.extend(added);
    want.push(soa2);
    same(&hickory, &stored_by_hickory(&want), "IXFR read by hickory");
}
