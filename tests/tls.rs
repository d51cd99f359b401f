//! DNS over TLS (RFC 7858) and zone transfers over TLS (XoT, RFC 9103),
//! tandem against tandem and against a rustls client, as real processes on
//! loopback. Certificates are made by the test (`common::tls::Pki`).

mod common;

use common::tls::{Pki, TlsStream};
use common::*;
use hickory_proto::op::{Edns, Message, ResponseCode};
use hickory_proto::rr::RecordType;
use std::time::Duration;

const ZONE: &str = "xot.test.";
const BODY: &str = "www A 192.0.2.1\nmail MX 10 www\ntxt TXT \"over TLS\"\n";

/// A primary of `ZONE` with a TLS listener on `tls_port`; `zone_extra`
/// lines go into the zone's table.
fn primary(
    pki: &Pki,
    tls_port: u16,
    mutual: bool,
    zone_extra: &str,
) -> (Tandem, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("xot.zone");
    std::fs::write(&file, zone_text(ZONE, 1, BODY)).unwrap();
    let t = Tandem::start(
        &format!(
            "[server]\nlisten = [\"127.0.0.1:{{PORT}}\"]\ndata_dir = \"var\"\ncontrol = \"127.0.0.1:{}\"\n{}\
             [[zone]]\nname = \"{ZONE}\"\nrole = \"primary\"\nfile = \"{}\"\nallow_transfer = [\"127.0.0.1\"]\n{zone_extra}",
            free_port(),
            pki.server_lines(tls_port, mutual),
            file.display()
        ),
        ZONE,
    );
    (t, dir)
}

/// Sends `msg` on a TLS connection and reads the raw answer.
fn ask(s: &mut TlsStream, msg: &Message) -> Vec<u8> {
    tcp_send(s, &msg.to_vec().unwrap());
    tcp_recv_raw(s)
}

fn tcp_raw(addr: std::net::SocketAddr, msg: &Message) -> Vec<u8> {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    tcp_send(&mut s, &msg.to_vec().unwrap());
    tcp_recv_raw(&mut s)
}

fn with_padding(mut m: Message) -> Message {
    let mut e = Edns::new();
    e.set_max_payload(1232);
    e.options_mut()
        .insert(hickory_proto::rr::rdata::opt::EdnsOption::Unknown(
            12,
            vec![0; 8],
        ));
    m.set_edns(e);
    m
}

#[test]
fn dot_answers_exactly_as_tcp_does_and_pads_when_asked() {
    let pki = Pki::new();
    let tls_port = free_port();
    let (t, _d) = primary(&pki, tls_port, false, "");
    let tls_addr = std::net::SocketAddr::from(([127, 0, 0, 1], tls_port));
    let mut s = pki.connect(tls_addr, &[b"dot"], false).unwrap();
    assert_eq!(s.conn.alpn_protocol(), Some(&b"dot"[..]));
    // Pipelined on one connection, each answer byte for byte the TCP one.
    let questions = [
        ("www.xot.test.", RecordType::A),
        ("mail.xot.test.", RecordType::MX),
        ("nothing.xot.test.", RecordType::A),
        ("xot.test.", RecordType::SOA),
        ("other.example.", RecordType::A),
    ];
    for (name, rtype) in questions {
        let q = with_edns(query(name, rtype), 1232, false);
        let over_tls = ask(&mut s, &q);
        assert_eq!(over_tls, tcp_raw(t.addr, &q), "{name} {rtype}");
    }
    // Padded when asked (RFC 8467: blocks of 468 octets), and only then.
    for (name, rtype) in questions {
        let q = with_padding(query(name, rtype));
        let raw = ask(&mut s, &q);
        assert_eq!(raw.len() % 468, 0, "{name}: {} octets", raw.len());
        let m = Message::from_vec(&raw).unwrap();
        let unpadded = Message::from_vec(&tcp_raw(t.addr, &q)).unwrap();
        assert_eq!(m.answers, unpadded.answers);
        assert_eq!(m.metadata.response_code, unpadded.metadata.response_code);
    }
    // Not over plain TCP: padding there would only cost bytes.
    let plain = tcp_raw(t.addr, &with_padding(query("www.xot.test.", RecordType::A)));
    assert_ne!(plain.len() % 468, 0);
}

#[test]
fn alpn_other_than_dot_is_refused_and_none_is_accepted() {
    let pki = Pki::new();
    let tls_port = free_port();
    let (_t, _d) = primary(&pki, tls_port, false, "");
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], tls_port));
    let Err(e) = pki.connect(addr, &[b"h2"], false) else {
        panic!("h2 accepted");
    };
    assert!(e.to_lowercase().contains("protocol"), "{e}");
    // Clients that offer no ALPN (kdig 3.2, older stubs) are served.
    let mut s = pki.connect(addr, &[], false).unwrap();
    let m = Message::from_vec(&ask(&mut s, &query("www.xot.test.", RecordType::A))).unwrap();
    assert_eq!(m.answers.len(), 1);
}

#[test]
fn a_zone_that_requires_tls_refuses_plain_transfers_and_clients_without_a_certificate() {
    let pki = Pki::new();
    let tls_port = free_port();
    let (t, _d) = primary(&pki, tls_port, true, "transfer_tls = \"required\"\n");
    let tls_addr = std::net::SocketAddr::from(([127, 0, 0, 1], tls_port));
    let axfr = query(ZONE, RecordType::AXFR).to_vec().unwrap();

    let (rcode, _) = transfer(t.addr, &query(ZONE, RecordType::AXFR));
    assert_eq!(rcode, ResponseCode::Refused);
    let m = udp_query(t.addr, &ixfr_query(ZONE, 0));
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);

    let mut anonymous = pki.connect(tls_addr, &[b"dot"], false).unwrap();
    let msgs = transfer_on(&mut anonymous, &axfr);
    let m = Message::from_vec(&msgs[0]).unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    // Queries still work for a client without a certificate.
    let m =
        Message::from_vec(&ask(&mut anonymous, &query("www.xot.test.", RecordType::A))).unwrap();
    assert_eq!(m.answers.len(), 1);

    let mut certified = pki.connect(tls_addr, &[b"dot"], true).unwrap();
    let msgs = transfer_on(&mut certified, &axfr);
    let records: usize = msgs
        .iter()
        .map(|raw| Message::from_vec(raw).unwrap().answers.len())
        .sum();
    assert_eq!(records, 7, "SOA, NS, ns A, www, mail, txt, SOA");
    // IXFR over TLS on the same connection.
    let msgs = transfer_on(&mut certified, &ixfr_query(ZONE, 1).to_vec().unwrap());
    assert_eq!(soa_serial(&Message::from_vec(&msgs[0]).unwrap()), Some(1));

    let log = t.log_text();
    assert!(log.contains("came over plain TCP"), "{log}");
    assert!(log.contains("showed no certificate"), "{log}");
}

fn secondary_config(tls_port: u16, pki_for_ca: &Pki, client: &Pki, name: &str) -> String {
    format!(
        "[server]\nlisten = [\"127.0.0.1:{{PORT}}\"]\ndata_dir = \"var\"\ncontrol = \"127.0.0.1:{}\"\n\
         [[zone]]\nname = \"{ZONE}\"\nrole = \"secondary\"\nprimaries = [\"tls://127.0.0.1:{tls_port}\"]\n\
         tls_ca = \"{}\"\ntls_name = \"{name}\"\ntls_certificate = \"{}\"\ntls_key = \"{}\"\nmin_retry = 1\nmax_retry = 2\n",
        free_port(),
        pki_for_ca.p("ca.pem"),
        client.p("client.pem"),
        client.p("client.key"),
    )
}

#[test]
fn a_tandem_secondary_follows_its_primary_over_mutual_tls() {
    let pki = Pki::new();
    let tls_port = free_port();
    let sport = free_port();
    let (p, d) = primary(
        &pki,
        tls_port,
        true,
        &format!("transfer_tls = \"required\"\nnotify = [\"127.0.0.1:{sport}\"]\n"),
    );
    let sdir = tempfile::tempdir().unwrap();
    let s = Tandem::start_in(
        sdir.path(),
        sport,
        &secondary_config(tls_port, &pki, &pki, common::tls::SERVER_NAME),
        ZONE,
    );
    assert_eq!(answer_count(s.addr, "www.xot.test.", RecordType::A), 1);
    write(
        &d.path().join("xot.zone"),
        &zone_text(ZONE, 2, &format!("{BODY}new A 192.0.2.2\n")),
    );
    wait_serial(s.addr, ZONE, 2, Duration::from_secs(10));
    assert_eq!(answer_count(s.addr, "new.xot.test.", RecordType::A), 1);
    // The new serial is served before the transfer's log line is written
    // (the timers are saved in between): wait for the line.
    s.wait_log(0, &["IXFR received and applied"], Duration::from_secs(10));
    let log = s.log_text();
    assert!(
        log.contains(&format!("tls://127.0.0.1:{tls_port}")),
        "{log}"
    );
    // Every transfer went over TLS: the primary refused none over TCP.
    assert!(
        !p.log_text().contains("transfer refused"),
        "{}",
        p.log_text()
    );
    let (_, out, _) = s.cli(&["status", "--config", "tandem.toml"]);
    assert!(
        out.contains(&format!("tls://127.0.0.1:{tls_port}")),
        "{out}"
    );
}

#[test]
fn a_wrong_name_or_ca_fails_the_transfer_clearly_and_keeps_the_served_copy() {
    let pki = Pki::new();
    let stranger = Pki::new();
    let tls_port = free_port();
    let (p, d) = primary(&pki, tls_port, true, "");
    // Wrong name: never serves, and says why.
    let wrong_name = Tandem::spawn(&secondary_config(tls_port, &pki, &pki, "elsewhere.test"));
    wrong_name.wait_log(
        0,
        &["not valid for name \"elsewhere.test\""],
        Duration::from_secs(10),
    );
    assert_eq!(serial_of(wrong_name.addr, ZONE), None);
    // A primary whose certificate comes from another CA: refused.
    let wrong_ca = Tandem::spawn(&secondary_config(
        tls_port,
        &stranger,
        &pki,
        common::tls::SERVER_NAME,
    ));
    wrong_ca.wait_log(0, &["invalid peer certificate"], Duration::from_secs(10));
    // A client certificate from another CA: the primary refuses it, and
    // says so too.
    let from = p.log_text().len();
    let wrong_client = Tandem::spawn(&secondary_config(
        tls_port,
        &pki,
        &stranger,
        common::tls::SERVER_NAME,
    ));
    wrong_client.wait_log(0, &["alert"], Duration::from_secs(10));
    p.wait_log(
        from,
        &["TLS handshake failed: invalid peer certificate"],
        Duration::from_secs(10),
    );
    assert!(!p.log_text().contains("transfer out started"));
    assert_eq!(serial_of(wrong_client.addr, ZONE), None);

    // A secondary that serves, then is pointed at the wrong name: it keeps
    // its copy while the transfer fails.
    let sdir = tempfile::tempdir().unwrap();
    let sport = free_port();
    let good = secondary_config(tls_port, &pki, &pki, common::tls::SERVER_NAME);
    let s = Tandem::start_in(sdir.path(), sport, &good, ZONE);
    let bad = good.replace(
        &format!("tls_name = \"{}\"", common::tls::SERVER_NAME),
        "tls_name = \"elsewhere.test\"",
    );
    std::fs::write(
        sdir.path().join("tandem.toml"),
        bad.replace("{PORT}", &sport.to_string()),
    )
    .unwrap();
    let (code, out, err) = s.cli(&["reload", "--config", "tandem.toml"]);
    assert_eq!(code, 0, "{out}{err}");
    write(&d.path().join("xot.zone"), &zone_text(ZONE, 2, BODY));
    let from = s.log_text().len();
    let (_, out, err) = s.cli(&["refresh", ZONE, "--config", "tandem.toml"]);
    assert!(
        format!("{out}{err}").contains("not valid for name"),
        "{out}{err}"
    );
    s.wait_log(from, &["not valid for name"], Duration::from_secs(10));
    assert_eq!(serial_of(s.addr, ZONE), Some(1));
}

#[test]
fn a_renewed_certificate_is_used_after_reload_and_open_connections_stay() {
    let pki = Pki::new();
    let tls_port = free_port();
    let (t, _d) = primary(&pki, tls_port, false, "");
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], tls_port));
    let mut open = pki.connect(addr, &[b"dot"], false).unwrap();
    let before = open.conn.peer_certificates().unwrap()[0].to_vec();
    pki.issue("server", &[common::tls::SERVER_NAME, "127.0.0.1"]);
    let (code, out, err) = t.cli(&["reload", "--config", "tandem.toml"]);
    assert_eq!(code, 0, "{out}{err}");
    let mut fresh = pki.connect(addr, &[b"dot"], false).unwrap();
    let after = fresh.conn.peer_certificates().unwrap()[0].to_vec();
    assert_ne!(before, after, "the renewed certificate is served");
    for s in [&mut open, &mut fresh] {
        let m = Message::from_vec(&ask(s, &query("www.xot.test.", RecordType::A))).unwrap();
        assert_eq!(m.answers.len(), 1);
    }
    // A broken certificate file on reload: refused, the last good one stays.
    std::fs::write(pki.path("server.pem"), "not a certificate").unwrap();
    let (code, out, err) = t.cli(&["reload", "--config", "tandem.toml"]);
    assert_ne!(code, 0, "{out}{err}");
    assert!(
        format!("{out}{err}").contains("tls_certificate"),
        "{out}{err}"
    );
    let mut again = pki.connect(addr, &[b"dot"], false).unwrap();
    assert_eq!(again.conn.peer_certificates().unwrap()[0].to_vec(), after);
    let m = Message::from_vec(&ask(&mut again, &query("www.xot.test.", RecordType::A))).unwrap();
    assert_eq!(m.answers.len(), 1);
}
