//! XoT and DoT with real peers as separate processes: BIND 9 as a secondary
//! of a tandem primary over TLS only, BIND as a TLS primary of a tandem
//! secondary, wrong certificates refused on both sides, and `kdig +tls` /
//! `dig +tls` answered as over TCP.

mod common;

use common::peers::Peer;
use common::tls::{Pki, SERVER_NAME};
use common::*;
use hickory_proto::rr::RecordType;
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

const ZONE: &str = "xot.test.";
const BODY: &str = "www A 192.0.2.1\nmail MX 10 www\n";

fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// A tandem primary of `ZONE` with TLS on `tls_port`, transfers over TLS
/// only, notifying `follower`.
fn tandem_primary(pki: &Pki, tls_port: u16, follower: u16) -> (Tandem, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("xot.zone");
    std::fs::write(&file, zone_text(ZONE, 1, BODY)).unwrap();
    let t = Tandem::start(
        &format!(
            "[server]\nlisten = [\"127.0.0.1:{{PORT}}\"]\ndata_dir = \"var\"\n{}\
             [[zone]]\nname = \"{ZONE}\"\nrole = \"primary\"\nfile = \"{}\"\nallow_transfer = [\"127.0.0.1\"]\n\
             notify = [\"127.0.0.1:{follower}\"]\ntransfer_tls = \"required\"\n",
            pki.server_lines(tls_port, false),
            file.display()
        ),
        ZONE,
    );
    (t, dir)
}

#[test]
#[ignore = "needs bind9"]
fn a_bind_secondary_follows_a_tandem_primary_over_tls_only() {
    let pki = Pki::new();
    let (tls_port, bport) = (free_port(), free_port());
    let (t, d) = tandem_primary(&pki, tls_port, bport);
    let bind = Peer::bind_tls_secondary(
        bport,
        ZONE,
        local(tls_port),
        &pki.path("ca.pem"),
        SERVER_NAME,
    );
    let show = || format!("{}\n---\n{}", bind.log_text(), t.log_text());
    wait_for("BIND serving serial 1", Duration::from_secs(30), || {
        (serial_of(bind.addr, ZONE) == Some(1)).then_some(())
    });
    write(
        &d.path().join("xot.zone"),
        &zone_text(ZONE, 2, &format!("{BODY}added A 192.0.2.2\n")),
    );
    wait_for("BIND serving serial 2", Duration::from_secs(30), || {
        (serial_of(bind.addr, ZONE) == Some(2)).then_some(())
    });
    assert_eq!(
        answer_count(bind.addr, "added.xot.test.", RecordType::A),
        1,
        "{}",
        show()
    );
    // Over plain TCP the same transfer is refused.
    let (rcode, _) = transfer(t.addr, &query(ZONE, RecordType::AXFR));
    assert_eq!(rcode, hickory_proto::op::ResponseCode::Refused);
    let log = t.log_text();
    assert!(log.contains("IXFR from serial 1"), "{}", show());
    assert!(log.contains("came over plain TCP"), "{}", show());
}

#[test]
#[ignore = "needs bind9"]
fn a_bind_secondary_refuses_a_primary_whose_certificate_it_cannot_verify() {
    let pki = Pki::new();
    let stranger = Pki::new();
    let (tls_port, bport) = (free_port(), free_port());
    let (t, _d) = tandem_primary(&pki, tls_port, bport);
    let bind = Peer::bind_tls_secondary(
        bport,
        ZONE,
        local(tls_port),
        &stranger.path("ca.pem"),
        SERVER_NAME,
    );
    // BIND tries (NOTIFY at start, then its own refresh) and fails on the
    // certificate; tandem logs the handshake BIND broke off.
    wait_for(
        "tandem to log BIND's failed handshake",
        Duration::from_secs(30),
        || t.log_text().contains("TLS handshake failed").then_some(()),
    );
    assert_eq!(serial_of(bind.addr, ZONE), None, "{}", bind.log_text());
    assert!(!t.log_text().contains("transfer out started"));
}

#[test]
#[ignore = "needs bind9"]
fn a_tandem_secondary_follows_a_bind_primary_over_tls() {
    let pki = Pki::new();
    let (bport, btls, sport) = (free_port(), free_port(), free_port());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("xot.zone");
    std::fs::write(&file, zone_text(ZONE, 1, BODY)).unwrap();
    let bind = Peer::bind_tls_primary(
        bport,
        btls,
        ZONE,
        &file,
        (&pki.path("server.pem"), &pki.path("server.key")),
        local(sport),
    );
    wait_for("BIND to serve", Duration::from_secs(30), || {
        serial_of(bind.addr, ZONE)
    });
    let secondary = |name: &str, port: u16| {
        format!(
            "[server]\nlisten = [\"127.0.0.1:{{PORT}}\"]\ndata_dir = \"var\"\n\
             [[zone]]\nname = \"{ZONE}\"\nrole = \"secondary\"\nprimaries = [\"tls://127.0.0.1:{btls}\"]\n\
             tls_ca = \"{}\"\ntls_name = \"{name}\"\nmin_retry = 1\nmax_retry = 2\n",
            pki.p("ca.pem")
        )
        .replace("{PORT}", &port.to_string())
    };
    let sdir = tempfile::tempdir().unwrap();
    let s = Tandem::start_in(sdir.path(), sport, &secondary(SERVER_NAME, sport), ZONE);
    // Plain TCP is refused by BIND, so this came over TLS.
    let (rcode, _) = transfer(bind.addr, &query(ZONE, RecordType::AXFR));
    assert_ne!(rcode, hickory_proto::op::ResponseCode::NoError);

    std::fs::write(
        &file,
        zone_text(ZONE, 2, &format!("{BODY}added A 192.0.2.2\n")),
    )
    .unwrap();
    bind.hup();
    wait_serial(s.addr, ZONE, 2, Duration::from_secs(30));
    assert_eq!(answer_count(s.addr, "added.xot.test.", RecordType::A), 1);
    s.wait_log(0, &["IXFR received and applied"], Duration::from_secs(5));
    assert!(
        s.log_text().contains("IXFR received and applied"),
        "{}",
        s.log_text()
    );

    // The wrong name: the transfer fails and says why.
    let other = Tandem::spawn(&secondary("elsewhere.test", free_port()));
    other.wait_log(
        0,
        &["not valid for name \"elsewhere.test\""],
        Duration::from_secs(10),
    );
    assert_eq!(serial_of(other.addr, ZONE), None);
}

/// A dig/kdig answer without the lines that differ by transport or time.
fn sections(tool: &str, args: &[&str]) -> String {
    let out = Command::new(tool)
        .args(args)
        .args(["+noall", "+answer", "+authority", "+additional"])
        .output()
        .unwrap_or_else(|e| panic!("{tool} is installed: {e}"));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
#[ignore = "needs knot-dnsutils and bind9-dnsutils"]
fn kdig_and_dig_over_tls_get_what_they_get_over_tcp() {
    let pki = Pki::new();
    let tls_port = free_port();
    let (t, _d) = tandem_primary(&pki, tls_port, free_port());
    let (tcp, tls) = (t.addr.port().to_string(), tls_port.to_string());
    let mut compared = 0;
    for (name, rtype) in [
        ("www.xot.test", "A"),
        ("xot.test", "MX"),
        ("mail.xot.test", "MX"),
        ("nothing.xot.test", "A"),
        ("xot.test", "SOA"),
        ("xot.test", "NS"),
        ("xot.test", "ANY"),
    ] {
        for tool in ["kdig", "dig"] {
            let plain = sections(tool, &["@127.0.0.1", "-p", &tcp, "+tcp", name, rtype]);
            let over_tls = sections(tool, &["@127.0.0.1", "-p", &tls, "+tls", name, rtype]);
            assert!(!plain.trim().is_empty(), "{tool} {name} {rtype}: no answer");
            assert_eq!(plain, over_tls, "{tool} {name} {rtype}");
            compared += 1;
        }
    }
    assert_eq!(compared, 14);
    // kdig +tls AXFR: refused without a client certificate? No: this zone
    // asks TLS only, not a certificate, so it transfers.
    let axfr = sections(
        "kdig",
        &["@127.0.0.1", "-p", &tls, "+tls", "AXFR", "xot.test"],
    );
    assert_eq!(
        axfr.lines().filter(|l| l.contains("\tSOA\t")).count(),
        2,
        "{axfr}"
    );
}
