//! A scripted, misbehaving primary (raw sockets, a few dozen lines): every
//! kind of bad transfer is rejected and the secondary keeps serving the
//! version it had.

mod common;

use common::*;
use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, NS, SOA, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType, TSigResponseContext, TSigner};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};
use std::io::Write;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const ZONE: &str = "bad.test.";
const SECRET: &[u8] = b"the right secret, 32 bytes long!";

#[derive(Clone, Copy, Debug, PartialEq)]
enum Case {
    Good,
    Truncated,
    FirstNotSoa,
    MismatchedSoa,
    OutOfZone,
    WrongTsig,
    IxfrDeletesMissing,
    Endless,
    /// A record of a known type whose rdata is not what the type says.
    BadRdata(RecordType, &'static [u8]),
}

/// AXFRs whose rdata a naive reader would trust: names that run past their
/// rdata, an A record of three octets, character-strings that end early.
const BAD_RDATA: &[(RecordType, &[u8], &str)] = &[
    (
        RecordType::NS,
        b"\x05\x01",
        "x.bad.test. NS: rdata does not hold",
    ),
    (
        RecordType::MX,
        b"\x00",
        "x.bad.test. MX: rdata does not hold",
    ),
    (RecordType::A, b"\x01\x02\x03", "x.bad.test. A: ends early"),
    (
        RecordType::PTR,
        b"\x05a",
        "x.bad.test. PTR: rdata does not hold",
    ),
    (
        RecordType::TXT,
        b"\x05a",
        "x.bad.test. TXT: a character-string ends early",
    ),
    (
        RecordType::SRV,
        b"\x00\x01\x00\x02\x00\x03\x03abc",
        "x.bad.test. SRV: rdata does not hold",
    ),
    (
        RecordType::SOA,
        b"\x00\x00\x01",
        "x.bad.test. SOA: rdata does not hold",
    ),
];

fn signer(secret: &[u8]) -> TSigner {
    tsig_signer("xfr.test.", secret)
}

fn n(s: &str) -> Name {
    Name::from_str(s).unwrap()
}

fn soa(serial: u32) -> Record {
    Record::from_rdata(
        n(ZONE),
        300,
        RData::SOA(SOA::new(
            n("ns1.bad.test."),
            n("h.bad.test."),
            serial,
            3600,
            600,
            86400,
            60,
        )),
    )
}

fn rec(name: &str, data: RData) -> Record {
    Record::from_rdata(n(name), 300, data)
}

fn zone_body() -> Vec<Record> {
    vec![
        rec(ZONE, RData::NS(NS(n("ns1.bad.test.")))),
        rec("ns1.bad.test.", RData::A(A::new(192, 0, 2, 1))),
        rec("www.bad.test.", RData::A(A::new(192, 0, 2, 80))),
    ]
}

/// Encodes a response to `req` with `answers`, signed as the case asks.
fn response(req: &[u8], answers: Vec<Record>, rcode: ResponseCode, case: Case) -> Vec<u8> {
    let q = Message::from_vec(req).unwrap();
    let mut m = Message::new(q.metadata.id, MessageType::Response, q.metadata.op_code);
    m.metadata.authoritative = true;
    m.metadata.response_code = rcode;
    m.add_queries(q.queries.clone());
    m.add_answers(answers);
    let mut bytes = m.to_vec().unwrap();
    let right = signer(SECRET);
    if let Ok((mac, _, _)) = right.verify_message_byte(req, None, true) {
        let key = if case == Case::WrongTsig {
            signer(b"a wrong secret, also 32 bytes..!")
        } else {
            right
        };
        let now = unix_now();
        let rr = TSigResponseContext::new(q.metadata.id, now, key, mac, None)
            .sign(&bytes)
            .unwrap();
        let mut extra = Vec::new();
        rr.emit(&mut BinEncoder::new(&mut extra)).unwrap();
        bytes.extend_from_slice(&extra);
        bytes[11] += 1;
    }
    bytes
}

fn send(s: &mut std::net::TcpStream, msg: &[u8]) -> std::io::Result<()> {
    s.write_all(&(msg.len() as u16).to_be_bytes())?;
    s.write_all(msg)
}

/// Serves SOA over UDP and transfers over TCP according to `case`.
fn start_script(case: Arc<Mutex<(Case, u32)>>) -> SocketAddr {
    let port = free_port();
    let udp = UdpSocket::bind(("127.0.0.1", port)).unwrap();
    let tcp = TcpListener::bind(("127.0.0.1", port)).unwrap();
    let c = case.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok((len, from)) = udp.recv_from(&mut buf) {
            let (case, serial) = *c.lock().unwrap();
            let _ = udp.send_to(
                &response(&buf[..len], vec![soa(serial)], ResponseCode::NoError, case),
                from,
            );
        }
    });
    std::thread::spawn(move || {
        for stream in tcp.incoming() {
            let Ok(mut s) = stream else { continue };
            let (case, serial) = *case.lock().unwrap();
            std::thread::spawn(move || {
                let Some(req) = tcp_read_framed(&mut s) else {
                    return;
                };
                let qtype = Message::from_vec(&req).unwrap().queries[0].query_type();
                let full =
                    |first: Record, last: Record| [vec![first], zone_body(), vec![last]].concat();
                let reply = |answers, rcode| response(&req, answers, rcode, case);
                let _ = match case {
                    Case::Good | Case::WrongTsig => send(
                        &mut s,
                        &reply(full(soa(serial), soa(serial)), ResponseCode::NoError),
                    ),
                    Case::Truncated => send(
                        &mut s,
                        &reply(
                            vec![soa(serial), zone_body()[0].clone()],
                            ResponseCode::NoError,
                        ),
                    ),
                    Case::FirstNotSoa => send(
                        &mut s,
                        &reply(
                            [zone_body(), vec![soa(serial)]].concat(),
                            ResponseCode::NoError,
                        ),
                    ),
                    Case::MismatchedSoa => send(
                        &mut s,
                        &reply(full(soa(serial), soa(serial + 7)), ResponseCode::NoError),
                    ),
                    Case::BadRdata(t, bytes) => {
                        let mut a = full(soa(serial), soa(serial));
                        let null = hickory_proto::rr::rdata::NULL::with(bytes.to_vec());
                        a.insert(
                            2,
                            rec(
                                "x.bad.test.",
                                RData::Unknown {
                                    code: t,
                                    rdata: null,
                                },
                            ),
                        );
                        send(&mut s, &reply(a, ResponseCode::NoError))
                    }
                    Case::OutOfZone => {
                        let mut a = full(soa(serial), soa(serial));
                        a.insert(
                            2,
                            rec("www.elsewhere.test.", RData::A(A::new(192, 0, 2, 66))),
                        );
                        send(&mut s, &reply(a, ResponseCode::NoError))
                    }
                    Case::IxfrDeletesMissing if qtype == RecordType::IXFR => {
                        let gone = rec(
                            "never.bad.test.",
                            RData::TXT(TXT::new(vec!["not there".into()])),
                        );
                        send(
                            &mut s,
                            &reply(
                                vec![soa(serial), soa(serial - 1), gone, soa(serial), soa(serial)],
                                ResponseCode::NoError,
                            ),
                        )
                    }
                    Case::IxfrDeletesMissing => send(&mut s, &reply(vec![], ResponseCode::Refused)),
                    Case::Endless => {
                        // Already past the limit in the first message (the
                        // rest would need chained MACs this script does not make).
                        let mut first = vec![soa(serial)];
                        first.extend((0..1500).map(|j| {
                            rec(&format!("e{j}.bad.test."), RData::A(A::new(10, 0, 0, 1)))
                        }));
                        let mut r = send(&mut s, &reply(first, ResponseCode::NoError));
                        for i in 0..100_000 {
                            if r.is_err() {
                                break;
                            }
                            let a = (0..50)
                                .map(|j| {
                                    rec(
                                        &format!("e{i}-{j}.bad.test."),
                                        RData::A(A::new(10, 0, 0, 1)),
                                    )
                                })
                                .collect();
                            r = send(&mut s, &reply(a, ResponseCode::NoError));
                        }
                        r
                    }
                };
            });
        }
    });
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn notify(secondary: SocketAddr) {
    let mut m = Message::new(rand_id(), MessageType::Query, OpCode::Notify);
    m.metadata.authoritative = true;
    m.add_query(hickory_proto::op::Query::query(n(ZONE), RecordType::SOA));
    let now = unix_now();
    m.finalize(&signer(SECRET), now).unwrap();
    let r = udp_query(secondary, &m);
    assert_eq!(r.metadata.response_code, ResponseCode::NoError);
}

#[test]
fn every_bad_transfer_is_rejected_and_the_old_version_keeps_serving() {
    let case = Arc::new(Mutex::new((Case::Good, 1)));
    let primary = start_script(case.clone());
    let b64 = data_encoding::BASE64.encode(SECRET);
    let cfg = format!(
        "[server]\nlisten = [\"127.0.0.1:{{PORT}}\"]\ndata_dir = \"var\"\n[[key]]\nname = \"xfr.test.\"\nalgorithm = \"hmac-sha256\"\nsecret = \"{b64}\"\n\
         [[zone]]\nname = \"{ZONE}\"\nrole = \"secondary\"\nprimaries = [\"{primary}\"]\ntransfer_key = \"xfr.test.\"\n\
         min_refresh = 1\nmin_retry = 1\nmax_transfer_records = 1000\ntransfer_timeout = 20\n"
    );
    let s = Tandem::start(&cfg, ZONE);
    assert_eq!(soa_serial(&s.q(ZONE, RecordType::SOA)), Some(1));
    let expectations = [
        (Case::Truncated, "closed the connection mid-transfer"),
        (Case::FirstNotSoa, "not the SOA"),
        (Case::MismatchedSoa, "but the closing one"),
        (Case::OutOfZone, "out of zone"),
        (Case::WrongTsig, "TSIG"),
        (Case::IxfrDeletesMissing, "does not hold"),
        (Case::Endless, "larger than the limit"),
    ];

    for (bad, symptom) in expectations {
        *case.lock().unwrap() = (bad, 2);
        let before = s.log_text().len();
        notify(s.addr);
        s.wait_log(
            before,
            &[symptom, "refresh failed"],
            Duration::from_secs(30),
        );
        let m = s.q(ZONE, RecordType::SOA);
        assert_eq!(soa_serial(&m), Some(1), "{bad:?}: still the old version");
        assert_eq!(
            s.q("www.bad.test.", RecordType::A).answers.len(),
            1,
            "{bad:?}"
        );
        assert!(
            s.q("e0.bad.test.", RecordType::A).answers.is_empty(),
            "{bad:?}"
        );
    }
    assert!(!s.log_text().contains("panicked"), "{}", s.log_text());
    assert_eq!(
        s.tcp(&query("www.bad.test.", RecordType::A)).answers.len(),
        1
    );
    // A good transfer again: taken.
    *case.lock().unwrap() = (Case::Good, 3);
    notify(s.addr);
    wait_for("serial 3", Duration::from_secs(30), || {
        (soa_serial(&s.q(ZONE, RecordType::SOA)) == Some(3)).then_some(())
    });
}

/// Malformed rdata of known types in an AXFR from an unsigned primary (with
/// TSIG, hickory's verifier already refuses such a message whole): the
/// transfer is refused naming the record, the old version keeps serving,
/// and no thread panics.
#[test]
fn malformed_rdata_in_a_transfer_is_refused_naming_the_record() {
    let case = Arc::new(Mutex::new((Case::Good, 1)));
    let primary = start_script(case.clone());
    let cfg = format!(
        "[server]\nlisten = [\"127.0.0.1:{{PORT}}\"]\ndata_dir = \"var\"\n\
         [[zone]]\nname = \"{ZONE}\"\nrole = \"secondary\"\nprimaries = [\"{primary}\"]\n\
         min_refresh = 1\nmin_retry = 1\ntransfer_timeout = 20\n"
    );
    let s = Tandem::start(&cfg, ZONE);
    let notify_unsigned = || {
        let mut m = Message::new(rand_id(), MessageType::Query, OpCode::Notify);
        m.metadata.authoritative = true;
        m.add_query(hickory_proto::op::Query::query(n(ZONE), RecordType::SOA));
        assert_eq!(
            udp_query(s.addr, &m).metadata.response_code,
            ResponseCode::NoError
        );
    };
    for &(t, bytes, symptom) in BAD_RDATA {
        *case.lock().unwrap() = (Case::BadRdata(t, bytes), 2);
        let before = s.log_text().len();
        notify_unsigned();
        s.wait_log(
            before,
            &[symptom, "refresh failed"],
            Duration::from_secs(30),
        );
        assert_eq!(soa_serial(&s.q(ZONE, RecordType::SOA)), Some(1), "{t}");
        let m = s.tcp(&query("www.bad.test.", RecordType::A));
        assert_eq!(m.answers.len(), 1, "{t}");
    }
    assert!(!s.log_text().contains("panicked"), "{}", s.log_text());
}
