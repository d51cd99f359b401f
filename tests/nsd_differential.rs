//! tandem and NSD serve the same zones; a generated corpus of queries must
//! get the same rcode, AA, TC, answer and authority (as sets of records).
//! Names below DNAMEs are also asked of Knot.

mod common;

use common::peers::{Nsd, Peer, expand_zone};
use common::*;
use hickory_proto::op::Message;
use hickory_proto::rr::{Record, RecordType};
use std::collections::BTreeSet;
use std::str::FromStr;

#[derive(Debug, PartialEq)]
struct View {
    rcode: u16,
    aa: bool,
    tc: bool,
    answer: BTreeSet<String>,
    authority: BTreeSet<String>,
}

fn rr_text(r: &Record) -> String {
    format!(
        "{} {} {} {}",
        r.name.to_string().to_ascii_lowercase(),
        r.ttl,
        r.record_type(),
        r.data
    )
}

fn view(m: &Message) -> View {
    View {
        rcode: u16::from(m.metadata.response_code),
        aa: m.metadata.authoritative,
        tc: m.metadata.truncation,
        answer: m.answers.iter().map(rr_text).collect(),
        authority: m.authorities.iter().map(rr_text).collect(),
    }
}

/// Owner names of a zone, read with tandem's own loader.
fn owners(origin: &str, file: &str) -> Vec<String> {
    let apex = tandem::zone::name::parse_absolute(origin).unwrap();
    let z = tandem::zone::load_zone_file(&data(file), &apex)
        .unwrap()
        .zone;
    let mut v: Vec<String> = z
        .nodes()
        .map(|n| tandem::zone::name::to_text(n.name()))
        .collect();
    v.sort();
    v
}

struct Case {
    name: String,
    qtype: RecordType,
    edns: Option<bool>,
}

fn corpus() -> Vec<Case> {
    let types = [
        RecordType::A,
        RecordType::AAAA,
        RecordType::NS,
        RecordType::SOA,
        RecordType::MX,
        RecordType::TXT,
        RecordType::CNAME,
        RecordType::SRV,
        RecordType::PTR,
        RecordType::DS,
        RecordType::CAA,
        RecordType::HTTPS,
        RecordType::NAPTR,
        RecordType::SSHFP,
        RecordType::TLSA,
        RecordType::HINFO,
        RecordType::Unknown(65280),
        RecordType::ANY,
    ];
    let mut names = BTreeSet::new();
    for (origin, file) in TEST_ZONES {
        let mut own = owners(origin, file);
        if file.contains("in-addr") {
            own.truncate(30);
        }
        for n in own {
            let concrete = n.replace("*.", "star-match.");
            names.insert(concrete.clone());
            names.insert(format!("zz.{concrete}"));
            names.insert(format!("a.b.{concrete}"));
            if !n.starts_with('*') {
                names.insert(n.to_ascii_uppercase());
            }
        }
    }
    names.insert("example.org.".into());
    names.insert("test.".into());
    let mut cases = Vec::new();
    for n in &names {
        for &t in &types {
            let edns = if n.contains("signed.test") {
                Some(true)
            } else {
                None
            };
            cases.push(Case {
                name: n.clone(),
                qtype: t,
                edns,
            });
            if n.starts_with("big.") || t == RecordType::SOA {
                cases.push(Case {
                    name: n.clone(),
                    qtype: t,
                    edns: Some(false),
                });
            }
        }
    }
    cases
}

#[test]
#[ignore = "needs nsd and bind9-utils"]
fn tandem_answers_like_nsd() {
    let work = tempfile::tempdir().unwrap();
    let mut nsd_zones = Vec::new();
    for (origin, file) in TEST_ZONES {
        let out = work.path().join(file);
        expand_zone(origin, &data(file), &out);
        nsd_zones.push((*origin, out));
    }
    let nsd = Nsd::start(&nsd_zones);
    let t = start_test_zones();
    let cases = corpus();
    assert!(cases.len() >= 2000, "corpus has {} queries", cases.len());
    let mut diffs = Vec::new();
    for c in &cases {
        let mut q = query(&c.name, c.qtype);
        if let Some(dnssec_ok) = c.edns {
            q = with_edns(q, 1232, dnssec_ok);
        }
        let ours = view(&udp_query(t.addr, &q));
        let theirs = view(&udp_query(nsd.addr, &q));
        let same = if ours.tc || theirs.tc {
            // A truncated answer says only "ask again over TCP"; what it
            // holds until then is the responder's choice.
            ours.rcode == theirs.rcode && ours.tc == theirs.tc
        } else if c.qtype == RecordType::ANY {
            // RFC 8482 §4.1: both answer one RRset of the responder's choosing
            // (NSD 4.6 even over TCP). Each choice must be among everything
            // the name owns, which tandem lists in full over TCP.
            let full = view(&tcp_query(t.addr, &q));
            let types = |v: &View| {
                v.answer
                    .iter()
                    .map(|r| r.split(' ').nth(2).unwrap_or("").to_string())
                    .filter(|t| t != "RRSIG")
                    .collect::<BTreeSet<_>>()
                    .len()
            };
            ours.rcode == theirs.rcode
                && ours.aa == theirs.aa
                && ours.answer.is_subset(&full.answer)
                && theirs.answer.is_subset(&full.answer)
                && types(&ours) == types(&theirs)
        } else {
            ours == theirs
        };
        if !same {
            diffs.push(format!(
                "{} {} edns={:?}\n  tandem: {ours:?}\n  nsd:    {theirs:?}",
                c.name, c.qtype, c.edns
            ));
        }
    }
    eprintln!(
        "{} queries compared, {} differences",
        cases.len(),
        diffs.len()
    );
    for d in diffs.iter().take(40) {
        eprintln!("{d}");
    }
    assert!(
        diffs.is_empty(),
        "{} of {} queries differ from NSD",
        diffs.len(),
        cases.len()
    );
    let _ = RecordType::from_str("A");
}

#[test]
#[ignore = "needs knot and bind9-utils"]
fn dname_answers_like_knot() {
    let work = tempfile::tempdir().unwrap();
    let (origin, file) = ("example.test.", "example.test.zone");
    let out = work.path().join(file);
    expand_zone(origin, &data(file), &out);
    let knot = Peer::knot_serving(&[(origin, out)]);
    let t = start_test_zones();
    let mut compared = 0;
    let mut diffs = Vec::new();
    for owner in owners(origin, file).iter().filter(|n| n.starts_with("dn")) {
        for prefix in ["", "zz.", "a.b.", "MiXeD.x."] {
            for qtype in [
                RecordType::A,
                RecordType::TXT,
                RecordType::CNAME,
                RecordType::DNAME,
            ] {
                let q = query(&format!("{prefix}{owner}"), qtype);
                let ours = view(&tcp_query(t.addr, &q));
                let theirs = view(&tcp_query(knot.addr, &q));
                compared += 1;
                if ours != theirs {
                    diffs.push(format!(
                        "{prefix}{owner} {qtype}\n  tandem: {ours:?}\n  knot:   {theirs:?}"
                    ));
                }
            }
        }
    }
    eprintln!(
        "{compared} DNAME queries compared with Knot, {} differences",
        diffs.len()
    );
    assert!(compared >= 80, "{compared}");
    assert!(diffs.is_empty(), "{}", diffs.join("\n"));
}
