//! BIND 9 and Knot DNS as secondaries of a tandem primary, as real
//! processes: initial AXFR, then an edit reaches them by NOTIFY and IXFR.

mod common;

use common::peers::Peer;
use common::*;
use hickory_proto::rr::RecordType;
use std::path::Path;
use std::time::Duration;

const ZONE: &str = "interop.test.";
const SECRET: &str = "c2VjcmV0IHNlY3JldCBzZWNyZXQgc2VjcmV0IHNlY3JldCE=";

/// Every version of the test zone has this record.
const WWW: &str = "www A 192.0.2.80\n";

/// A tandem primary whose zone notifies `follower` and allows it to transfer.
fn primary(file: &Path, follower_port: u16, keyed: bool) -> Tandem {
    let key = if keyed {
        format!(
            "[[key]]\nname = \"xfr.test.\"\nalgorithm = \"hmac-sha256\"\nsecret = \"{SECRET}\"\n"
        )
    } else {
        String::new()
    };
    let zone_key = if keyed {
        "transfer_key = \"xfr.test.\"\n"
    } else {
        ""
    };
    let cfg = format!(
        "[server]\nlisten = [\"127.0.0.1:{{PORT}}\"]\ndata_dir = \"var\"\n{key}\n[[zone]]\nname = \"{ZONE}\"\nrole = \"primary\"\nfile = \"{}\"\n\
         notify = [\"127.0.0.1:{follower_port}\"]\nallow_transfer = [\"127.0.0.1\"]\n{zone_key}",
        file.display()
    );
    Tandem::start(&cfg, ZONE)
}

/// The secondary learns each change through NOTIFY + IXFR; a broken edit
/// changes nothing.
fn follow(t: &Tandem, file: &Path, secondary: &Peer, ixfr_logged: impl Fn(&str) -> bool) {
    let guard = LogOnPanic(secondary, t);
    wait_serial(secondary.addr, ZONE, 1, Duration::from_secs(60));
    assert_eq!(
        answer_count(secondary.addr, &format!("www.{ZONE}"), RecordType::A),
        1
    );

    write(
        file,
        &zone_text(ZONE, 2, &format!("{WWW}added A 192.0.2.2\n")),
    );
    wait_serial(secondary.addr, ZONE, 2, Duration::from_secs(60));
    assert_eq!(
        answer_count(secondary.addr, &format!("added.{ZONE}"), RecordType::A),
        1,
        "the new record reached the secondary"
    );
    wait_for(
        "the secondary's log to show an IXFR",
        Duration::from_secs(10),
        || ixfr_logged(&secondary.log_text()).then_some(()),
    );

    // A syntax error: the primary keeps serial 2, so does the secondary.
    write(
        file,
        &zone_text(
            ZONE,
            3,
            &format!("{WWW}added A 192.0.2.2\nbroken A not-an-address\n"),
        ),
    );
    wait_for(
        "the primary to log the error",
        Duration::from_secs(10),
        || t.log_text().contains("bad IPv4 address").then_some(()),
    );
    assert_eq!(serial_of(t.addr, ZONE), Some(2));
    // Ask the secondary to check now; it must still be at 2.
    assert_eq!(serial_of(secondary.addr, ZONE), Some(2));
    assert!(
        t.log_text().contains("NOTIFY acknowledged"),
        "{}",
        t.log_text()
    );
    std::mem::forget(guard);
}

/// Prints both logs when a check fails, to see the peer's side.
struct LogOnPanic<'a>(&'a Peer, &'a Tandem);

impl Drop for LogOnPanic<'_> {
    fn drop(&mut self) {
        eprintln!(
            "--- secondary log ---\n{}\n--- tandem log ---\n{}",
            self.0.log_text(),
            self.1.log_text()
        );
    }
}

#[test]
#[ignore = "needs bind9"]
fn bind_follows_tandem_by_notify_and_ixfr() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("interop.zone");
    std::fs::write(&file, zone_text(ZONE, 1, WWW)).unwrap();
    let port = free_port();
    let t = primary(&file, port, false);
    let bind = Peer::bind_secondary(port, ZONE, t.addr, None);
    follow(&t, &file, &bind, |log| {
        log.contains("got incremental response")
    });
}

#[test]
#[ignore = "needs knot"]
fn knot_follows_tandem_with_tsig() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("interop.zone");
    std::fs::write(&file, zone_text(ZONE, 1, WWW)).unwrap();
    let port = free_port();
    let t = primary(&file, port, true);
    let knot = Peer::knot_secondary(port, ZONE, t.addr, Some(("xfr.test.", SECRET)));
    follow(&t, &file, &knot, |log| {
        log.contains("IXFR, incoming") && log.contains("finished")
    });
}

#[test]
#[ignore = "needs bind9-dnsutils (dig)"]
fn dig_axfr_from_another_address_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("interop.zone");
    std::fs::write(&file, zone_text(ZONE, 1, WWW)).unwrap();
    let t = primary(&file, free_port(), false);
    let dig = |source: &str| {
        let out = std::process::Command::new("dig")
            .args([
                "-b",
                source,
                "-p",
                &t.addr.port().to_string(),
                "@127.0.0.1",
                ZONE,
                "AXFR",
            ])
            .output()
            .expect("dig");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let ok = dig("127.0.0.1");
    assert!(ok.contains("XFR size: 5 records"), "{ok}");
    let refused = dig("127.0.0.2");
    assert!(refused.contains("Transfer failed"), "{refused}");
    assert!(t.log_text().contains("peer=127.0.0.2"));
}
