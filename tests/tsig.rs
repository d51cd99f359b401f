//! TSIG (RFC 8945) on transfers, queries and NOTIFY, checked with
//! hickory-proto's independent signer and verifier.

mod common;

use common::*;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use hickory_proto::rr::rdata::tsig::TsigError;
use std::net::UdpSocket;
use std::time::Duration;

const SECRET: &str = "c2VjcmV0IHNlY3JldCBzZWNyZXQgc2VjcmV0IHNlY3JldCE=";
const ZONE: &str = "signed-xfr.test.";

fn secret() -> Vec<u8> {
    data_encoding::BASE64.decode(SECRET.as_bytes()).unwrap()
}

fn start(extra: &str) -> (Tandem, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("z.zone");
    let body: String = (0..3000)
        .map(|i| format!("h{i} TXT \"some text to make the zone span several messages {i}\"\n"))
        .collect();
    std::fs::write(
        &file,
        format!("$TTL 60\n@ SOA ns h 1 2 3 4 5\n NS ns\nns A 192.0.2.1\n{body}"),
    )
    .unwrap();
    let cfg = format!(
        "[server]\nlisten = [\"127.0.0.1:{{PORT}}\"]\ndata_dir = \"var\"\n[[key]]\nname = \"xfr.test.\"\nalgorithm = \"hmac-sha256\"\nsecret = \"{SECRET}\"\n\
         [[zone]]\nname = \"{ZONE}\"\nrole = \"primary\"\nfile = \"{}\"\nallow_transfer = [\"127.0.0.1\"]\ntransfer_key = \"xfr.test.\"\n{extra}",
        file.display()
    );
    (Tandem::start(&cfg, ZONE), dir)
}

fn tsig_error(raw: &[u8]) -> (ResponseCode, Option<TsigError>, Vec<u8>) {
    let m = Message::from_vec(raw).unwrap();
    let sig = m.signature().expect("a TSIG record in the error answer");
    (
        m.metadata.response_code,
        sig.data.error,
        sig.data.other.clone(),
    )
}

#[test]
fn transfers_need_the_key_and_every_message_is_signed() {
    let (t, _dir) = start("");
    // Unsigned: refused.
    assert_eq!(
        transfer(t.addr, &query(ZONE, RecordType::AXFR)).0,
        ResponseCode::Refused
    );
    // Signed: every message verifies, MACs chained.
    let mut q = query(ZONE, RecordType::AXFR);
    let mut verifier = q
        .finalize(&tsig_signer("xfr.test.", &secret()), unix_now())
        .unwrap()
        .expect("verifier");
    let msgs = transfer_raw(t.addr, &q.to_vec().unwrap());
    assert!(msgs.len() > 2, "{} messages", msgs.len());
    let mut records = 0;
    for raw in &msgs {
        let r = verifier
            .verify(raw)
            .unwrap_or_else(|e| panic!("message does not verify: {e}"));
        records += r.answers.len();
    }
    assert_eq!(records, 3002 + 2);
}

#[test]
fn tsig_errors_follow_rfc_8945() {
    let (t, _dir) = start("");
    // Unknown key: NOTAUTH, BADKEY, unsigned.
    let mut q = query(ZONE, RecordType::AXFR);
    q.finalize(&tsig_signer("other.test.", &secret()), unix_now())
        .unwrap();
    let (rc, err, _) = tsig_error(&transfer_raw(t.addr, &q.to_vec().unwrap())[0]);
    assert_eq!((rc, err), (ResponseCode::NotAuth, Some(TsigError::BadKey)));
    // Wrong secret: BADSIG.
    let mut q = query(ZONE, RecordType::AXFR);
    q.finalize(&tsig_signer("xfr.test.", b"not the secret"), unix_now())
        .unwrap();
    let (rc, err, _) = tsig_error(&transfer_raw(t.addr, &q.to_vec().unwrap())[0]);
    assert_eq!((rc, err), (ResponseCode::NotAuth, Some(TsigError::BadSig)));
    // An hour off: BADTIME, with the server's time in Other Data.
    let mut q = query(ZONE, RecordType::AXFR);
    q.finalize(&tsig_signer("xfr.test.", &secret()), unix_now() - 3600)
        .unwrap();
    let (rc, err, other) = tsig_error(&transfer_raw(t.addr, &q.to_vec().unwrap())[0]);
    assert_eq!((rc, err), (ResponseCode::NotAuth, Some(TsigError::BadTime)));
    assert_eq!(other.len(), 6);
    // The same over UDP for a plain query.
    let mut q = query(ZONE, RecordType::SOA);
    q.finalize(&tsig_signer("xfr.test.", b"wrong"), unix_now())
        .unwrap();
    let raw = udp_raw(t.addr, &q.to_vec().unwrap(), Duration::from_secs(2)).unwrap();
    assert_eq!(tsig_error(&raw).1, Some(TsigError::BadSig));
    let log = t.log_text();
    assert!(
        log.contains("BADKEY") && log.contains("BADSIG") && log.contains("BADTIME"),
        "{log}"
    );
}

#[test]
fn signed_queries_get_signed_answers() {
    let (t, _dir) = start("");
    let mut q = query(ZONE, RecordType::SOA);
    let mut verifier = q
        .finalize(&tsig_signer("xfr.test.", &secret()), unix_now())
        .unwrap()
        .expect("verifier");
    let raw = udp_raw(t.addr, &q.to_vec().unwrap(), Duration::from_secs(2)).unwrap();
    let r = verifier.verify(&raw).expect("the answer verifies");
    assert_eq!(r.answers.len(), 1);
    // IXFR over UDP with the key: the SOA, signed.
    let mut q = ixfr_query(ZONE, 0);
    let mut verifier = q
        .finalize(&tsig_signer("xfr.test.", &secret()), unix_now())
        .unwrap()
        .expect("verifier");
    let raw = udp_raw(t.addr, &q.to_vec().unwrap(), Duration::from_secs(2)).unwrap();
    assert_eq!(soa_serial(&verifier.verify(&raw).unwrap()), Some(1));
}

#[test]
fn notify_is_signed_with_the_zone_key() {
    let follower = UdpSocket::bind("127.0.0.1:0").unwrap();
    follower
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let (_t, _dir) = start(&format!(
        "notify = [\"{}\"]\n",
        follower.local_addr().unwrap()
    ));
    let mut buf = [0u8; 4096];
    let (n, _) = follower.recv_from(&mut buf).expect("NOTIFY");
    let m = Message::from_vec(&buf[..n]).unwrap();
    assert_eq!(m.signature().expect("signed").name.to_string(), "xfr.test.");
    tsig_signer("xfr.test.", &secret())
        .verify_message_byte(&buf[..n], None, true)
        .expect("NOTIFY MAC verifies");
}
