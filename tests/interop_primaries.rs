//! tandem as the secondary of real BIND 9 and Knot DNS primaries: the first
//! transfer, then file edits on the primary reach tandem by NOTIFY + IXFR.

mod common;

use common::peers::Peer;
use common::*;
use hickory_proto::rr::RecordType;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

const ZONE: &str = "peer.test.";
const SECRET: &str = "c2VjcmV0IHNlY3JldCBzZWNyZXQgc2VjcmV0IHNlY3JldCE=";

fn secondary(port: u16, primary: SocketAddr, keyed: bool) -> (Tandem, tempfile::TempDir) {
    let key = if keyed {
        format!(
            "[[key]]\nname = \"xfr.test.\"\nalgorithm = \"hmac-sha256\"\nsecret = \"{SECRET}\"\n"
        )
    } else {
        String::new()
    };
    let zkey = if keyed {
        "transfer_key = \"xfr.test.\"\n"
    } else {
        ""
    };
    let cfg = format!(
        "[server]\nlisten = [\"127.0.0.1:{{PORT}}\"]\ndata_dir = \"var\"\n{key}[[zone]]\nname = \"{ZONE}\"\nrole = \"secondary\"\n\
         primaries = [\"{primary}\"]\n{zkey}min_refresh = 1\nmin_retry = 1\n"
    );
    let dir = tempfile::tempdir().unwrap();
    (Tandem::start_in(dir.path(), port, &cfg, ZONE), dir)
}

fn follow(peer: &Peer, file: &Path, t: &Tandem) {
    assert_eq!(serial_of(t.addr, ZONE), Some(1));
    // Served before the line saying so is written.
    t.wait_log(0, &["AXFR received and applied"], Duration::from_secs(5));
    std::fs::write(
        file,
        zone_text(ZONE, 2, "www A 192.0.2.80\nadded A 192.0.2.2\n"),
    )
    .unwrap();
    peer.hup();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while serial_of(t.addr, ZONE) != Some(2) {
        assert!(
            std::time::Instant::now() < deadline,
            "tandem never reached serial 2\n--- tandem ---\n{}\n--- peer ---\n{}",
            t.log_text(),
            peer.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        udp_query(t.addr, &query(&format!("added.{ZONE}"), RecordType::A))
            .answers
            .len(),
        1
    );
    t.wait_log(0, &["IXFR received and applied"], Duration::from_secs(5));
    let log = t.log_text();
    assert!(
        log.contains("NOTIFY received"),
        "{log}\n{}",
        peer.log_text()
    );
    assert!(
        log.contains("IXFR received and applied"),
        "{log}\n{}",
        peer.log_text()
    );
}

#[test]
#[ignore = "needs bind9"]
fn tandem_follows_a_bind_primary_by_ixfr() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("peer.zone");
    std::fs::write(&file, zone_text(ZONE, 1, "www A 192.0.2.80\n")).unwrap();
    let (pport, sport) = (free_port(), free_port());
    let bind = Peer::bind_primary(
        pport,
        ZONE,
        &file,
        SocketAddr::from(([127, 0, 0, 1], sport)),
    );
    wait_for("BIND to serve", Duration::from_secs(20), || {
        serial_of(bind.addr, ZONE).filter(|s| *s == 1)
    });
    let (t, _dir) = secondary(sport, bind.addr, false);
    follow(&bind, &file, &t);
}

#[test]
#[ignore = "needs knot"]
fn tandem_follows_a_knot_primary_with_tsig() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("peer.zone");
    std::fs::write(&file, zone_text(ZONE, 1, "www A 192.0.2.80\n")).unwrap();
    let (pport, sport) = (free_port(), free_port());
    let knot = Peer::knot_primary(
        pport,
        ZONE,
        &file,
        SocketAddr::from(([127, 0, 0, 1], sport)),
        ("xfr.test.", SECRET),
    );
    wait_for("Knot to serve", Duration::from_secs(20), || {
        serial_of(knot.addr, ZONE).filter(|s| *s == 1)
    });
    let (t, _dir) = secondary(sport, knot.addr, true);
    follow(&knot, &file, &t);
}
