//! What a resolver sees: tandem serving the test zones, queried over real
//! UDP and TCP sockets, answers decoded by hickory-proto.

mod common;

use common::*;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};
use std::sync::OnceLock;
use std::time::Duration;

/// One server for the read-only tests in this file. Statics are never
/// dropped, so it is started from a thread that lives as long as the test
/// binary: the server dies with that thread (`dies_with_test`), not with
/// whichever test asked first.
fn server() -> &'static Tandem {
    static S: OnceLock<Tandem> = OnceLock::new();
    S.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(start_test_zones());
            loop {
                std::thread::park();
            }
        });
        rx.recv().expect("the server started")
    })
}

fn names(rrs: &[hickory_proto::rr::Record]) -> Vec<String> {
    rrs.iter()
        .map(|r| format!("{} {}", r.name, r.record_type()))
        .collect()
}

fn soa_ttl(m: &Message) -> u32 {
    let soa = m
        .authorities
        .iter()
        .find(|r| r.record_type() == RecordType::SOA)
        .expect("SOA in authority");
    soa.ttl
}

#[test]
fn positive_answer_is_authoritative() {
    let m = server().q("example.test.", RecordType::SOA);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.metadata.authoritative);
    assert_eq!(m.answers.len(), 1);
    assert!(
        m.authorities.is_empty(),
        "minimal responses: {:?}",
        m.authorities
    );
}

#[test]
fn nxdomain_and_nodata_carry_soa_with_negative_ttl() {
    let m = server().q("nope.example.test.", RecordType::A);
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert!(m.metadata.authoritative);
    assert_eq!(soa_ttl(&m), 300);
    let m = server().q("host.example.test.", RecordType::AAAA);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.answers.is_empty());
    assert_eq!(soa_ttl(&m), 300);
}

#[test]
fn cname_chains_loops_and_exits() {
    let m = server().q("www.example.test.", RecordType::A);
    assert_eq!(
        names(&m.answers),
        [
            "www.example.test. CNAME",
            "alias1.example.test. CNAME",
            "alias2.example.test. CNAME",
            "host.example.test. A"
        ]
    );
    let m = server().q("loop1.example.test.", RecordType::A);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(
        names(&m.answers),
        ["loop1.example.test. CNAME", "loop2.example.test. CNAME"]
    );
    let m = server().q("out.example.test.", RecordType::A);
    assert_eq!(names(&m.answers), ["out.example.test. CNAME"]);
    let m = server().q("dangling.example.test.", RecordType::A);
    assert_eq!(
        m.metadata.response_code,
        ResponseCode::NXDomain,
        "RFC 6604: rcode of the last name"
    );
    assert_eq!(names(&m.answers), ["dangling.example.test. CNAME"]);
    let m = server().q("www.example.test.", RecordType::CNAME);
    assert_eq!(names(&m.answers), ["www.example.test. CNAME"]);
}

#[test]
fn empty_non_terminals_are_nodata() {
    for n in ["b.c.example.test.", "c.example.test."] {
        let m = server().q(n, RecordType::A);
        assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{n}");
        assert!(m.answers.is_empty());
        assert_eq!(soa_ttl(&m), 300);
    }
    assert_eq!(
        server()
            .q("zz.c.example.test.", RecordType::A)
            .metadata
            .response_code,
        ResponseCode::NXDomain
    );
}

#[test]
fn wildcards_follow_the_closest_encloser() {
    let m = server().q("foo.wild.example.test.", RecordType::A);
    assert_eq!(names(&m.answers), ["foo.wild.example.test. A"]);
    assert!(m.metadata.authoritative);
    let m = server().q("a.b.wild.example.test.", RecordType::TXT);
    assert_eq!(names(&m.answers), ["a.b.wild.example.test. TXT"]);
    let m = server().q("foo.wild.example.test.", RecordType::MX);
    assert_eq!(
        (m.metadata.response_code, m.answers.len()),
        (ResponseCode::NoError, 0)
    );
    // exists.wild is the closest encloser: no *.exists.wild, so NXDOMAIN.
    assert_eq!(
        server()
            .q("x.exists.wild.example.test.", RecordType::A)
            .metadata
            .response_code,
        ResponseCode::NXDomain
    );
    let m = server().q("exists.wild.example.test.", RecordType::TXT);
    assert_eq!(
        (m.metadata.response_code, m.answers.len()),
        (ResponseCode::NoError, 0)
    );
    let m = server().q("any.cn.example.test.", RecordType::A);
    assert_eq!(
        names(&m.answers),
        ["any.cn.example.test. CNAME", "host.example.test. A"]
    );
}

#[test]
fn referrals_carry_ns_and_glue() {
    let m = server().q("www.deleg.example.test.", RecordType::A);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(!m.metadata.authoritative);
    assert!(m.answers.is_empty());
    assert_eq!(
        names(&m.authorities),
        ["deleg.example.test. NS", "deleg.example.test. NS"]
    );
    let glue = names(&m.additionals);
    assert!(
        glue.contains(&"ns.deleg.example.test. A".to_string()),
        "{glue:?}"
    );
    assert!(
        glue.contains(&"ns.deleg.example.test. AAAA".to_string()),
        "{glue:?}"
    );
    // The delegation point's own NS is a referral too; glue is not answered.
    let m = server().q("deleg.example.test.", RecordType::NS);
    assert!(!m.metadata.authoritative && m.answers.is_empty() && m.authorities.len() == 2);
    let m = server().q("ns.deleg.example.test.", RecordType::A);
    assert!(!m.metadata.authoritative && m.answers.is_empty());
    // DS belongs to the parent side: authoritative.
    let m = server().q("deleg.example.test.", RecordType::DS);
    assert!(m.metadata.authoritative);
    assert_eq!(names(&m.answers), ["deleg.example.test. DS"]);
    let m = server().q("nogl.example.test.", RecordType::A);
    assert!(
        !m.metadata.authoritative
            && m.additionals
                .iter()
                .all(|r| r.record_type() == RecordType::OPT)
    );
}

#[test]
fn nested_zones_pick_the_most_specific() {
    let m = server().q("www.child.example.test.", RecordType::A);
    assert!(m.metadata.authoritative);
    assert_eq!(names(&m.answers), ["www.child.example.test. A"]);
    let m = server().q("child.example.test.", RecordType::SOA);
    assert_eq!(m.answers[0].ttl, 600);
    let m = server().q("child.example.test.", RecordType::DS);
    assert_eq!(
        names(&m.answers),
        ["child.example.test. DS"],
        "DS answered by the parent zone"
    );
    let m = server().q("nothing.child.example.test.", RecordType::A);
    assert_eq!(soa_ttl(&m), 60);
}

#[test]
fn names_outside_every_zone_are_refused() {
    let m = server().q("example.org.", RecordType::A);
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    assert!(!m.metadata.authoritative);
    assert_eq!(
        server().q("test.", RecordType::SOA).metadata.response_code,
        ResponseCode::Refused
    );
}

#[test]
fn edns_is_echoed_and_badvers_returned() {
    let m = server().udp(&with_edns(
        query("example.test.", RecordType::A),
        4096,
        false,
    ));
    let e = m.edns.as_ref().expect("OPT in response");
    assert_eq!(e.max_payload(), 1232);
    assert_eq!(e.version(), 0);
    let mut q = with_edns(query("example.test.", RecordType::A), 4096, false);
    q.edns.as_mut().unwrap().set_version(1);
    let m = server().udp(&q);
    // hickory names rcode 16 BADSIG; as an EDNS extended rcode it is BADVERS.
    assert_eq!(u16::from(m.metadata.response_code), 16);
    assert!(m.answers.is_empty());
}

#[test]
fn oversize_udp_answers_are_truncated() {
    let m = server().q("big.example.test.", RecordType::TXT);
    assert!(m.metadata.truncation);
    assert!(m.answers.is_empty());
    let m = server().udp(&with_edns(
        query("big.example.test.", RecordType::TXT),
        1232,
        false,
    ));
    assert!(!m.metadata.truncation);
    assert_eq!(m.answers.len(), 8);
    let m = server().tcp(&query("big.example.test.", RecordType::TXT));
    assert!(!m.metadata.truncation);
    assert_eq!(m.answers.len(), 8);
}

#[test]
fn any_is_minimal_over_udp_and_full_over_tcp() {
    let m = server().q("example.test.", RecordType::ANY);
    let types: std::collections::HashSet<_> = m.answers.iter().map(|r| r.record_type()).collect();
    assert_eq!(
        types.len(),
        1,
        "RFC 8482: one RRset over UDP, got {:?}",
        names(&m.answers)
    );
    let m = server().tcp(&query("example.test.", RecordType::ANY));
    let types: std::collections::HashSet<_> = m.answers.iter().map(|r| r.record_type()).collect();
    assert!(types.len() >= 6, "{types:?}");
}

#[test]
fn additional_addresses_for_mx_srv_ns() {
    let m = server().q("example.test.", RecordType::MX);
    assert!(names(&m.additionals).contains(&"mail.example.test. A".to_string()));
    let m = server().q("_sip._udp.example.test.", RecordType::SRV);
    assert!(names(&m.additionals).contains(&"sip.example.test. A".to_string()));
    let m = server().q("example.test.", RecordType::NS);
    let add = names(&m.additionals);
    assert!(
        add.contains(&"ns1.example.test. A".to_string())
            && add.contains(&"ns1.example.test. AAAA".to_string())
    );
}

#[test]
fn rrsigs_follow_the_do_bit() {
    let m = server().udp(&with_edns(
        query("www.signed.test.", RecordType::A),
        1232,
        true,
    ));
    assert_eq!(
        names(&m.answers),
        ["www.signed.test. A", "www.signed.test. RRSIG"]
    );
    assert!(m.edns.as_ref().unwrap().flags().dnssec_ok);
    let m = server().udp(&with_edns(
        query("www.signed.test.", RecordType::A),
        1232,
        false,
    ));
    assert_eq!(names(&m.answers), ["www.signed.test. A"]);
    let m = server().udp(&with_edns(
        query("x.wild.signed.test.", RecordType::TXT),
        1232,
        true,
    ));
    assert_eq!(
        names(&m.answers),
        ["x.wild.signed.test. TXT", "x.wild.signed.test. RRSIG"]
    );
    // A wildcard answer proves that no closer name exists.
    let auth = names(&m.authorities);
    assert!(auth.iter().any(|n| n.ends_with(" NSEC")), "{auth:?}");
    let m = server().udp(&with_edns(
        query("nope.signed.test.", RecordType::A),
        1232,
        true,
    ));
    // NXDOMAIN: the SOA, then NSECs covering the name and the wildcard.
    let auth = names(&m.authorities);
    assert_eq!(auth[..2], ["signed.test. SOA", "signed.test. RRSIG"]);
    let nsecs = auth.iter().filter(|n| n.ends_with(" NSEC")).count();
    let sigs = auth.iter().filter(|n| n.ends_with(" RRSIG")).count();
    assert!(nsecs >= 1 && sigs == nsecs + 1, "{auth:?}");
    // Without DO, none of it.
    let m = server().udp(&with_edns(
        query("nope.signed.test.", RecordType::A),
        1232,
        false,
    ));
    assert_eq!(names(&m.authorities), ["signed.test. SOA"]);
    // An unsigned zone is answered as unsigned whatever DO says: its
    // referral carries no DS (as NSD and Knot answer).
    let m = server().udp(&with_edns(
        query("www.deleg.example.test.", RecordType::A),
        1232,
        true,
    ));
    let auth = names(&m.authorities);
    assert!(auth.iter().any(|n| n.ends_with(" NS")), "{auth:?}");
    assert!(!auth.iter().any(|n| n.ends_with(" DS")), "{auth:?}");
    let m = server().tcp(&with_edns(
        query("signed.test.", RecordType::DNSKEY),
        1232,
        true,
    ));
    assert_eq!(
        m.answers
            .iter()
            .filter(|r| r.record_type() == RecordType::DNSKEY)
            .count(),
        2
    );
}

#[test]
fn query_case_is_preserved() {
    // hickory's decoder folds case, so look at the bytes.
    let qname = b"\x03WwW\x07ExAmPlE\x04TeSt\x00";
    let mut q = vec![0xab, 0xcd, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    q.extend_from_slice(qname);
    q.extend_from_slice(&[0, 1, 0, 1]);
    let r = udp_raw(server().addr, &q, Duration::from_secs(2)).expect("answer");
    assert_eq!(&r[12..12 + qname.len()], qname);
    let answer_owner = 12 + qname.len() + 4;
    // The first answer's owner points at the question: same spelling.
    assert_eq!(&r[answer_owner..answer_owner + 2], &[0xc0, 12]);
    let m = server().q("mixedcase.example.test.", RecordType::A);
    assert_eq!(m.answers.len(), 1);
}

#[test]
fn generated_and_included_records_answer() {
    let m = server().q("5.2.0.192.in-addr.arpa.", RecordType::PTR);
    match &m.answers[0].data {
        RData::PTR(p) => assert_eq!(p.0.to_string(), "host-005.example.test."),
        other => panic!("{other:?}"),
    }
    let m = server().q("cname-15.2.0.192.in-addr.arpa.", RecordType::CNAME);
    match &m.answers[0].data {
        RData::CNAME(c) => assert_eq!(c.0.to_string(), "0f.sub.2.0.192.in-addr.arpa."),
        other => panic!("{other:?}"),
    }
    let m = server().q("0a.sub.2.0.192.in-addr.arpa.", RecordType::PTR);
    assert_eq!(m.answers.len(), 1);
    let m = server().q("types.example.test.", RecordType::Unknown(65280));
    assert_eq!(m.answers.len(), 1);
}

#[test]
fn tcp_pipelines_queries_on_one_connection() {
    let s = server();
    let mut conn = std::net::TcpStream::connect(s.addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let qs: Vec<Message> = ["host", "mail", "ns1", "nope"]
        .iter()
        .map(|n| query(&format!("{n}.example.test."), RecordType::A))
        .collect();
    let mut all = Vec::new();
    for q in &qs {
        all.extend_from_slice(&(q.to_vec().unwrap().len() as u16).to_be_bytes());
        all.extend_from_slice(&q.to_vec().unwrap());
    }
    std::io::Write::write_all(&mut conn, &all).unwrap();
    for q in &qs {
        let r = tcp_recv(&mut conn);
        assert_eq!(r.metadata.id, q.metadata.id);
        assert_eq!(r.queries, q.queries);
    }
}

#[test]
fn tcp_idle_connections_are_closed() {
    let cfg = test_zones_config().replace(
        "data_dir = \"var\"",
        "data_dir = \"var\"\ntcp_idle_timeout = 1",
    );
    let t = Tandem::start(&cfg, "example.test.");
    let mut conn = std::net::TcpStream::connect(t.addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let started = std::time::Instant::now();
    let mut buf = [0u8; 1];
    let n = std::io::Read::read(&mut conn, &mut buf).unwrap_or(0);
    assert_eq!(n, 0, "server closed the idle connection");
    assert!(started.elapsed() < Duration::from_secs(9));
}
