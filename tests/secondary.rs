//! Secondaries follow: tandem processes as secondaries of a tandem primary,
//! in fan-out and in a chain, through primary outages (expiry), crashes
//! (SIGKILL) and failover.

mod common;

use common::*;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

const ZONE: &str = "follow.test.";

fn primary_config(file: &Path, followers: &[u16]) -> String {
    let notify: Vec<String> = followers
        .iter()
        .map(|p| format!("\"127.0.0.1:{p}\""))
        .collect();
    format!(
        "[server]\nlisten = [\"127.0.0.1:{{PORT}}\"]\ndata_dir = \"var\"\n[[zone]]\nname = \"{ZONE}\"\nrole = \"primary\"\nfile = \"{}\"\nnotify = [{}]\nallow_transfer = [\"127.0.0.0/8\"]\n",
        file.display(),
        notify.join(", ")
    )
}

/// A secondary of `primaries`; `extra` adds keys to its zone.
fn secondary_config(primaries: &[SocketAddr], extra: &str) -> String {
    let p: Vec<String> = primaries.iter().map(|a| format!("\"{a}\"")).collect();
    format!(
        "[server]\nlisten = [\"127.0.0.1:{{PORT}}\"]\ndata_dir = \"var\"\n[[zone]]\nname = \"{ZONE}\"\nrole = \"secondary\"\nprimaries = [{}]\n\
         min_refresh = 1\nmin_retry = 1\nmin_expire = 1\n{extra}",
        p.join(", ")
    )
}

fn rcode_at(addr: SocketAddr) -> Option<ResponseCode> {
    udp_query_timeout(
        addr,
        &query(ZONE, RecordType::SOA),
        Duration::from_millis(300),
    )
    .map(|m| m.metadata.response_code)
}

#[test]
fn two_secondaries_follow_every_edit_by_ixfr() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("z.zone");
    std::fs::write(&file, zone_text(ZONE, 1, "www A 192.0.2.80\n")).unwrap();
    let (pa, pb) = (free_port(), free_port());
    let p = Tandem::start(&primary_config(&file, &[pa, pb]), ZONE);
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = Tandem::start_in(da.path(), pa, &secondary_config(&[p.addr], ""), ZONE);
    let b = Tandem::start_in(db.path(), pb, &secondary_config(&[p.addr], ""), ZONE);
    for serial in 2..=4 {
        write(
            &file,
            &zone_text(
                ZONE,
                serial,
                &format!("www A 192.0.2.80\nnew{serial} A 192.0.2.{serial}\n"),
            ),
        );
        wait_serial(a.addr, ZONE, serial, Duration::from_secs(30));
        wait_serial(b.addr, ZONE, serial, Duration::from_secs(30));
    }
    for s in [&a, &b] {
        let m = udp_query(s.addr, &query(&format!("new4.{ZONE}"), RecordType::A));
        assert_eq!(m.answers.len(), 1);
        assert!(
            udp_query(s.addr, &query(&format!("new3.{ZONE}"), RecordType::A))
                .answers
                .is_empty(),
            "deleted by the IXFR"
        );
        // The version is served before the line saying so is written.
        wait_for("the third IXFR's log line", Duration::from_secs(5), || {
            (s.log_text().matches("IXFR received and applied").count() >= 3).then_some(())
        });
        let log = s.log_text();
        assert!(log.contains("AXFR received and applied"), "{log}");
        assert_eq!(log.matches("IXFR received and applied").count(), 3, "{log}");
    }
}

#[test]
fn a_chain_of_three_passes_edits_down() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("z.zone");
    std::fs::write(&file, zone_text(ZONE, 1, "")).unwrap();
    let (p2, p3) = (free_port(), free_port());
    let first = Tandem::start(&primary_config(&file, &[p2]), ZONE);
    let d2 = tempfile::tempdir().unwrap();
    let d3 = tempfile::tempdir().unwrap();
    // The middle one is a secondary with followers of its own.
    let middle_extra = format!("notify = [\"127.0.0.1:{p3}\"]\nallow_transfer = [\"127.0.0.1\"]\n");
    let second = Tandem::start_in(
        d2.path(),
        p2,
        &secondary_config(&[first.addr], &middle_extra),
        ZONE,
    );
    let third = Tandem::start_in(d3.path(), p3, &secondary_config(&[second.addr], ""), ZONE);
    write(&file, &zone_text(ZONE, 2, "chained A 192.0.2.2\n"));
    wait_serial(third.addr, ZONE, 2, Duration::from_secs(30));
    assert_eq!(
        answer_count(third.addr, &format!("chained.{ZONE}"), RecordType::A),
        1
    );
    // The middle served an IXFR from the difference it received.
    wait_for("the third's IXFR", Duration::from_secs(10), || {
        third
            .log_text()
            .contains("IXFR received and applied")
            .then_some(())
    });
    assert!(
        second.log_text().contains("IXFR from serial 1"),
        "{}",
        second.log_text()
    );
}

#[test]
fn a_secondary_serves_until_expire_then_servfail_then_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("z.zone");
    std::fs::write(&file, zone_text(ZONE, 1, "")).unwrap();
    let pdir = tempfile::tempdir().unwrap();
    let pport = free_port();
    let pcfg = primary_config(&file, &[]);
    let mut p = Tandem::start_in(pdir.path(), pport, &pcfg, ZONE);
    let sdir = tempfile::tempdir().unwrap();
    let timers = "max_refresh = 1\nmax_retry = 1\nmax_expire = 4\n";
    let s = Tandem::start_in(
        sdir.path(),
        free_port(),
        &secondary_config(&[p.addr], timers),
        ZONE,
    );
    p.kill9();
    let stopped = std::time::Instant::now();
    // Still answering from its copy…
    assert_eq!(serial_of(s.addr, ZONE), Some(1));
    // …until EXPIRE: then SERVFAIL.
    wait_for("SERVFAIL after expiry", Duration::from_secs(20), || {
        (rcode_at(s.addr) == Some(ResponseCode::ServFail)).then_some(())
    });
    assert!(
        stopped.elapsed() >= Duration::from_secs(2),
        "expired too early: {:?}",
        stopped.elapsed()
    );
    assert!(s.log_text().contains("EXPIRE passed"));
    // The primary comes back (same address): the zone recovers by itself.
    let _p = Tandem::start_in(pdir.path(), pport, &pcfg, ZONE);
    wait_serial(s.addr, ZONE, 1, Duration::from_secs(30));
}

/// A copy's expiry survives a restart when no refresh came after its
/// transfer, so no timers file was written: the copy's first line holds the
/// timers. Without them the restart would serve the expired copy.
#[test]
fn a_copy_that_expired_before_a_restart_is_not_served_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("z.zone");
    std::fs::write(&file, zone_text(ZONE, 1, "")).unwrap();
    let mut p = Tandem::start(&primary_config(&file, &[]), ZONE);
    let sdir = tempfile::tempdir().unwrap();
    let sport = free_port();
    let scfg = secondary_config(
        &[p.addr],
        "max_refresh = 2\nmax_retry = 1\nmax_expire = 2\n",
    );
    let mut s = Tandem::start_in(sdir.path(), sport, &scfg, ZONE);
    // Every refresh after the transfer fails: nothing rewrites the timers.
    p.kill9();
    wait_for("SERVFAIL after expiry", Duration::from_secs(20), || {
        (rcode_at(s.addr) == Some(ResponseCode::ServFail)).then_some(())
    });
    s.kill9();
    let var = sdir.path().join("var");
    assert!(var.join("follow.test.zone").is_file());
    assert!(
        !var.join("follow.test.timers").exists(),
        "a refresh wrote the timers file; this test is about the copy's own line"
    );
    let s = Tandem::spawn_in(sdir.path(), sport, &scfg);
    wait_for("the expired copy refused", Duration::from_secs(20), || {
        s.log_text()
            .contains("the saved copy expired while tandem was stopped")
            .then_some(())
    });
    assert_eq!(rcode_at(s.addr), Some(ResponseCode::ServFail));
}

#[test]
fn failover_to_the_second_primary() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("z.zone");
    std::fs::write(&file, zone_text(ZONE, 5, "")).unwrap();
    let p = Tandem::start(&primary_config(&file, &[]), ZONE);
    let dead: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let sdir = tempfile::tempdir().unwrap();
    let s = Tandem::start_in(
        sdir.path(),
        free_port(),
        &secondary_config(&[dead, p.addr], ""),
        ZONE,
    );
    assert_eq!(serial_of(s.addr, ZONE), Some(5));
    assert!(
        s.log_text().contains(&dead.to_string()),
        "the dead primary was tried first"
    );
}

#[test]
fn killed_during_a_large_transfer_it_restarts_on_the_last_accepted_version() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("z.zone");
    std::fs::write(&file, zone_text(ZONE, 1, "small A 192.0.2.1\n")).unwrap();
    let sport = free_port();
    let p = Tandem::start(&primary_config(&file, &[sport]), ZONE);
    let sdir = tempfile::tempdir().unwrap();
    let scfg = secondary_config(&[p.addr], "");
    let mut s = Tandem::start_in(sdir.path(), sport, &scfg, ZONE);
    // A large new version; kill the secondary as soon as it starts on it.
    let big: String = (0..200_000)
        .map(|i| format!("h{i} TXT \"a large zone, record {i}\"\n"))
        .collect();
    let before = s.log_text().len();
    write(&file, &zone_text(ZONE, 2, &big));
    wait_for("the transfer to start", Duration::from_secs(30), || {
        s.log_text()[before..]
            .contains("NOTIFY received")
            .then_some(())
    });
    s.kill9();
    // Restarted: it answers at once, from a complete accepted version…
    let s = Tandem::start_in(sdir.path(), sport, &scfg, ZONE);
    let first = serial_of(s.addr, ZONE).expect("serving right after the restart");
    assert!(first == 1 || first == 2);
    if first == 1 {
        assert_eq!(
            udp_query(s.addr, &query(&format!("small.{ZONE}"), RecordType::A))
                .answers
                .len(),
            1
        );
    }
    // …then completes the transfer.
    wait_serial(s.addr, ZONE, 2, Duration::from_secs(30));
    assert_eq!(
        udp_query(s.addr, &query(&format!("h199999.{ZONE}"), RecordType::TXT))
            .answers
            .len(),
        1
    );
}

#[test]
fn notify_from_elsewhere_is_refused_and_logged() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("z.zone");
    std::fs::write(&file, zone_text(ZONE, 1, "")).unwrap();
    let p = Tandem::start(&primary_config(&file, &[]), ZONE);
    let sdir = tempfile::tempdir().unwrap();
    let s = Tandem::start_in(
        sdir.path(),
        free_port(),
        &secondary_config(&[p.addr], ""),
        ZONE,
    );
    let mut m = hickory_proto::op::Message::new(
        rand_id(),
        hickory_proto::op::MessageType::Query,
        hickory_proto::op::OpCode::Notify,
    );
    m.add_query(hickory_proto::op::Query::query(
        ZONE.parse().unwrap(),
        RecordType::SOA,
    ));
    // From 127.0.0.2, which is not a primary.
    let sock = std::net::UdpSocket::bind("127.0.0.2:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    sock.send_to(&m.to_vec().unwrap(), s.addr).unwrap();
    let mut buf = [0u8; 512];
    let (n, _) = sock.recv_from(&mut buf).unwrap();
    let r = hickory_proto::op::Message::from_vec(&buf[..n]).unwrap();
    assert_eq!(r.metadata.response_code, ResponseCode::Refused);
    wait_for("the refusal logged", Duration::from_secs(5), || {
        s.log_text().contains("not in allow_notify").then_some(())
    });
    // From the primary's address it is taken.
    let r = udp_query(s.addr, &m);
    assert_eq!(r.metadata.response_code, ResponseCode::NoError);
    assert!(r.metadata.authoritative);
}

#[test]
fn after_the_first_transfer_the_refresh_timer_is_the_new_soas() {
    // The first refresh runs before any SOA is known (timers at their
    // minimum); the next one must follow the transferred SOA's REFRESH
    // (3600 s here), not min_refresh.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("z.zone");
    std::fs::write(&file, zone_text(ZONE, 1, "")).unwrap();
    let p = Tandem::start(&primary_config(&file, &[]), ZONE);
    let ctl = free_port();
    let cfg = secondary_config(&[p.addr], "").replacen(
        "data_dir",
        &format!("control = \"127.0.0.1:{ctl}\"\ndata_dir"),
        1,
    );
    let s = Tandem::start(&cfg, ZONE);
    let ctl: SocketAddr = format!("127.0.0.1:{ctl}").parse().unwrap();
    let next = wait_for("a next refresh in /status", Duration::from_secs(10), || {
        let (code, body) = tandem::ops::client::request(ctl, "GET", "/status", None).ok()?;
        let st: serde_json::Value = serde_json::from_str(&body).ok()?;
        let z = &st["zones"][0];
        (code == 200 && z["serial"].as_u64() == Some(1))
            .then(|| z["next_refresh"].as_str().map(str::to_string))
            .flatten()
    });
    // REFRESH 3600 with at most 10 % jitter: well past half an hour.
    let half_hour =
        tandem::status::rfc3339(std::time::SystemTime::now() + Duration::from_secs(1800));
    assert!(
        next > half_hour,
        "next refresh {next}, expected after {half_hour}"
    );
    assert_eq!(serial_of(s.addr, ZONE), Some(1));
}
