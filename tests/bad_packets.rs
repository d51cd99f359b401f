//! Malformed input never hurts: FORMERR/NOTIMP or silence, never a crash,
//! and the server answers correctly afterwards.

mod common;

use common::*;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use std::net::UdpSocket;
use std::time::Duration;

fn raw_query(name: &[u8], qtype: u16) -> Vec<u8> {
    let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    q.extend_from_slice(name);
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&[0, 1]);
    q
}

fn rcode_of(r: &[u8]) -> u8 {
    r[3] & 0xf
}

#[test]
fn specific_malformations_get_the_right_reply() {
    let t = start_test_zones();
    let send = |b: &[u8]| udp_raw(t.addr, b, Duration::from_millis(500));
    let good = raw_query(b"\x07example\x04test\x00", 1);

    // Truncated header: silence.
    assert!(send(&good[..7]).is_none());
    // A response (QR=1) is never answered.
    let mut resp = good.clone();
    resp[2] |= 0x80;
    assert!(send(&resp).is_none());
    // qdcount 0 and 2: FORMERR.
    for qd in [0u8, 2] {
        let mut b = good.clone();
        b[5] = qd;
        assert_eq!(rcode_of(&send(&b).expect("reply")), 1, "qdcount {qd}");
    }
    // Compression pointer loop in the question: FORMERR.
    let r = send(&raw_query(b"\xc0\x0c", 1)).expect("reply");
    assert_eq!(rcode_of(&r), 1);
    // Question cut short: FORMERR.
    assert_eq!(rcode_of(&send(&good[..good.len() - 1]).expect("reply")), 1);
    // Two OPT records: FORMERR.
    let opt = [0u8, 0, 41, 4, 0, 0, 0, 0, 0, 0, 0];
    let mut b = good.clone();
    b[11] = 2;
    b.extend_from_slice(&opt);
    b.extend_from_slice(&opt);
    assert_eq!(rcode_of(&send(&b).expect("reply")), 1);
    // OPT whose rdata length runs past the end: FORMERR.
    let mut b = good.clone();
    b[11] = 1;
    b.extend_from_slice(&[0, 0, 41, 4, 0, 0, 0, 0, 0, 0xff, 0xff]);
    assert_eq!(rcode_of(&send(&b).expect("reply")), 1);
    // OPT with an option longer than its rdata: FORMERR.
    let mut b = good.clone();
    b[11] = 1;
    b.extend_from_slice(&[0, 0, 41, 4, 0, 0, 0, 0, 0, 0, 4, 0, 10, 0, 8]);
    assert_eq!(rcode_of(&send(&b).expect("reply")), 1);
    // Unknown opcodes (here 3 and 15): NOTIMP, ID echoed.
    for op in [3u8, 15] {
        let mut b = good.clone();
        b[2] = op << 3;
        let r = send(&b).expect("reply");
        assert_eq!(rcode_of(&r), 4, "opcode {op}");
        assert_eq!(&r[..2], &good[..2]);
    }
    // Meta query types.
    assert_eq!(
        rcode_of(&send(&raw_query(b"\x07example\x04test\x00", 41)).expect("reply")),
        1
    );
    // A label longer than 63 octets.
    let mut long = vec![64u8];
    long.extend_from_slice(&[b'a'; 64]);
    long.push(0);
    assert_eq!(rcode_of(&send(&raw_query(&long, 1)).expect("reply")), 1);
    // Still fine.
    assert_eq!(
        t.q("example.test.", RecordType::SOA).metadata.response_code,
        ResponseCode::NoError
    );
}

#[test]
fn a_hundred_thousand_random_and_mutated_packets() {
    let t = start_test_zones();
    let seeds: Vec<Vec<u8>> = [
        with_edns(query("www.example.test.", RecordType::A), 1232, true),
        query("big.example.test.", RecordType::TXT),
        query("x.deleg.example.test.", RecordType::AAAA),
        with_edns(query("www.signed.test.", RecordType::ANY), 4096, true),
        query("foo.wild.example.test.", RecordType::MX),
    ]
    .iter()
    .map(|m| m.to_vec().unwrap())
    .collect();
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let _ = socket2::SockRef::from(&sock).set_recv_buffer_size(8 << 20);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut buf = vec![0u8; 65535];
    let mut replies = 0usize;
    let total = 100_000;
    for i in 0..total {
        let pkt: Vec<u8> = if i % 4 == 0 {
            // Pure noise of random length.
            let len = rng.below(600);
            (0..len).map(|_| rng.next() as u8).collect()
        } else {
            // A valid query with a few bytes flipped, cut or inserted.
            let mut p = seeds[rng.below(seeds.len())].clone();
            for _ in 0..1 + rng.below(4) {
                match rng.below(4) {
                    0 | 1 => {
                        let at = rng.below(p.len());
                        p[at] = rng.next() as u8;
                    }
                    2 => p.truncate(rng.below(p.len() + 1)),
                    _ => {
                        let at = rng.below(p.len() + 1);
                        p.insert(at, rng.next() as u8);
                    }
                }
                if p.is_empty() {
                    break;
                }
            }
            p
        };
        let _ = sock.send_to(&pkt, t.addr);
        if i % 250 != 249 {
            continue;
        }
        // Drain what came back; every reply must be a parseable DNS message.
        while let Ok(n) = sock.recv(&mut buf) {
            replies += 1;
            let reply = &buf[..n];
            assert!(n >= 12 && reply[2] & 0x80 != 0, "reply is a response");
            assert!(n <= 4096, "UDP reply of {n} bytes");
            Message::from_vec(reply)
                .unwrap_or_else(|e| panic!("unparseable reply {reply:02x?} to {pkt:02x?}: {e}"));
        }
        if i % 10_000 == 0 {
            assert!(
                t.q("example.test.", RecordType::SOA).metadata.authoritative,
                "alive at {i}"
            );
        }
    }
    assert!(replies > total / 10, "only {replies} replies");
    // Still answering correctly, on both transports.
    let m = t.q("www.example.test.", RecordType::A);
    assert_eq!(m.answers.len(), 4);
    let m = t.tcp(&query("www.example.test.", RecordType::A));
    assert_eq!(m.answers.len(), 4);
    assert!(!t.log_text().contains("panicked"));
}

#[test]
fn garbage_over_tcp_does_not_hurt() {
    let t = start_test_zones();
    let mut rng = Rng(42);
    for _ in 0..200 {
        let mut c = std::net::TcpStream::connect(t.addr).unwrap();
        let len = rng.below(300);
        let junk: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        let _ = std::io::Write::write_all(&mut c, &junk);
    }
    let m = t.tcp(&query("www.example.test.", RecordType::A));
    assert_eq!(m.answers.len(), 4);
}
