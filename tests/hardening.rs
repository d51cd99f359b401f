//! Abuse and faults: slow-loris TCP clients, the limit on transfers out,
//! a corrupted journal, a deleted zone file, an unwritable data_dir.

mod common;

use common::*;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

fn primary(file: &Path, extra_server: &str) -> String {
    format!(
        "[server]\nlisten = [\"127.0.0.1:{{PORT}}\"]\ndata_dir = \"var\"\n{extra_server}\n[[zone]]\nname = \"hard.test.\"\nrole = \"primary\"\nfile = \"{}\"\nallow_transfer = [\"127.0.0.1\"]\n",
        file.display()
    )
}

#[test]
fn slow_loris_connections_do_not_keep_queries_out() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("z.zone");
    std::fs::write(&file, zone_text("hard.test.", 1, "www A 192.0.2.80\n")).unwrap();
    let t = Tandem::start(
        &primary(&file, "tcp_max_connections = 20\ntcp_idle_timeout = 30"),
        "hard.test.",
    );
    // Sixty connections that start a message and never finish it.
    let hogs: Vec<std::net::TcpStream> = (0..60)
        .map(|_| {
            let mut s = std::net::TcpStream::connect(t.addr).unwrap();
            let _ = s.write_all(&[0]);
            s
        })
        .collect();
    // UDP is unaffected.
    assert_eq!(t.q("www.hard.test.", RecordType::A).answers.len(), 1);
    // TCP gets through once the slow ones are cut (1 s while the table is busy).
    let started = std::time::Instant::now();
    let m = wait_for(
        "a TCP answer despite the slow clients",
        Duration::from_secs(15),
        || {
            let mut s = std::net::TcpStream::connect(t.addr).ok()?;
            s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
            tcp_send(
                &mut s,
                &query("www.hard.test.", RecordType::A).to_vec().ok()?,
            );
            let raw =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| tcp_recv_raw(&mut s)))
                    .ok()?;
            hickory_proto::op::Message::from_vec(&raw).ok()
        },
    );
    assert_eq!(m.answers.len(), 1);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    drop(hogs);
}

#[test]
fn transfers_out_beyond_the_limit_wait_for_a_slot_then_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("z.zone");
    let body: String = (0..150_000)
        .map(|i| format!("h{i} TXT \"filler record {i}\"\n"))
        .collect();
    std::fs::write(&file, zone_text("hard.test.", 1, &body)).unwrap();
    let t = Tandem::start(&primary(&file, "max_transfers_out = 1"), "hard.test.");
    // A slow reader holds the only transfer slot.
    let mut slow = slow_reader(t.addr);
    slow.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    tcp_send(
        &mut slow,
        &query("hard.test.", RecordType::AXFR).to_vec().unwrap(),
    );
    let _first = tcp_recv_raw(&mut slow);
    let (rcode, _) = transfer(t.addr, &query("hard.test.", RecordType::AXFR));
    assert_eq!(rcode, ResponseCode::Refused);
    assert!(t.log_text().contains("too many transfers out"));
    drop(slow);
    wait_for("the slot to free up", Duration::from_secs(20), || {
        let (rcode, recs) = transfer(t.addr, &query("hard.test.", RecordType::AXFR));
        (rcode == ResponseCode::NoError && recs.len() == 150_004).then_some(())
    });
}

#[test]
fn a_truncated_journal_is_detected_and_ixfr_falls_back_to_the_whole_zone() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("z.zone");
    std::fs::write(&file, zone_text("hard.test.", 1, "")).unwrap();
    let cfg = primary(&file, "").replace(
        "data_dir = \"var\"",
        &format!("data_dir = \"{}\"", dir.path().join("var").display()),
    );
    {
        let t = Tandem::start(&cfg, "hard.test.");
        for s in 2..=3 {
            write(
                &file,
                &zone_text("hard.test.", s, &format!("r{s} A 192.0.2.{s}\n")),
            );
            wait_for("the new serial", Duration::from_secs(10), || {
                (serial_of(t.addr, "hard.test.") == Some(s)).then_some(())
            });
        }
    }
    // The newest segment of the journal loses its last five octets.
    let journal = std::fs::read_dir(dir.path().join("var/hard.test.journal.d"))
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .max_by_key(|p| {
            p.file_name()
                .and_then(|x| x.to_str()?.parse::<u64>().ok())
                .unwrap_or(0)
        })
        .expect("a journal segment");
    let len = std::fs::metadata(&journal).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&journal)
        .unwrap()
        .set_len(len - 5)
        .unwrap();
    let t = Tandem::start(&cfg, "hard.test.");
    assert!(
        t.log_text().contains("corrupt or truncated"),
        "{}",
        t.log_text()
    );
    assert_eq!(serial_of(t.addr, "hard.test."), Some(3));
    // 2 → 3 was in the lost entry: the answer is the whole zone.
    let (_, recs) = transfer(t.addr, &ixfr_query("hard.test.", 2));
    assert_eq!(recs[1].record_type(), RecordType::NS, "AXFR-style");
    // 1 → 2 survived but no longer reaches the served serial either.
    let (_, recs) = transfer(t.addr, &ixfr_query("hard.test.", 1));
    assert_eq!(recs[1].record_type(), RecordType::NS);
}

#[test]
fn a_deleted_zone_file_keeps_the_last_version_serving() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("z.zone");
    std::fs::write(&file, zone_text("hard.test.", 4, "www A 192.0.2.80\n")).unwrap();
    let t = Tandem::start(&primary(&file, ""), "hard.test.");
    std::fs::remove_file(&file).unwrap();
    wait_for("the error logged", Duration::from_secs(10), || {
        t.log_text()
            .contains("keeping the served version")
            .then_some(())
    });
    assert_eq!(serial_of(t.addr, "hard.test."), Some(4));
    assert_eq!(t.q("www.hard.test.", RecordType::A).answers.len(), 1);
}

#[test]
fn an_unwritable_data_dir_is_logged_and_serving_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("z.zone");
    std::fs::write(&file, zone_text("hard.test.", 1, "www A 192.0.2.80\n")).unwrap();
    let p = Tandem::start(&primary(&file, ""), "hard.test.");
    // data_dir below a regular file cannot exist, whoever we run as.
    let blocker = dir.path().join("not-a-dir");
    std::fs::write(&blocker, "x").unwrap();
    let scfg = format!(
        "[server]\nlisten = [\"127.0.0.1:{{PORT}}\"]\ndata_dir = \"{}\"\n[[zone]]\nname = \"hard.test.\"\nrole = \"secondary\"\nprimaries = [\"{}\"]\n",
        blocker.join("var").display(),
        p.addr
    );
    let s = Tandem::start(&scfg, "hard.test.");
    assert_eq!(s.q("www.hard.test.", RecordType::A).answers.len(), 1);
    let log = s.log_text();
    assert!(
        log.contains("cannot create data_dir") && log.contains("cannot save the new version"),
        "{log}"
    );
}

/// A version whose every part names its serial, so a half-applied state shows.
fn versioned(serial: u32, filler: usize) -> String {
    let body: String = (0..filler)
        .map(|i| format!("f{i} TXT \"filler {i} of version {serial}\"\n"))
        .collect();
    zone_text(
        "hard.test.",
        serial,
        &format!("ver TXT \"v{serial}\"\n{body}"),
    )
}

fn consistent(addr: std::net::SocketAddr) -> Option<u32> {
    // Three queries see one version only if the serial did not move between
    // them (a new version may be swapped in meanwhile): read until it holds.
    for _ in 0..20 {
        let serial = serial_of(addr, "hard.test.")?;
        let ver = udp_query_timeout(
            addr,
            &query("ver.hard.test.", RecordType::TXT),
            Duration::from_secs(1),
        )?;
        let filler = udp_query_timeout(
            addr,
            &query("f7.hard.test.", RecordType::TXT),
            Duration::from_secs(1),
        )?;
        if serial_of(addr, "hard.test.")? != serial {
            continue;
        }
        let txt = ver.answers.first()?.data.to_string();
        assert!(
            txt.contains(&format!("v{serial}")),
            "serial {serial} served with {txt}: a mixed version"
        );
        let f = filler.answers.first()?.data.to_string();
        assert!(
            f.contains(&format!("version {serial}")),
            "serial {serial} with filler {f}: a mixed version"
        );
        return Some(serial);
    }
    None
}

#[test]
fn a_secondary_killed_twenty_times_mid_transfer_or_save_restarts_whole() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("z.zone");
    std::fs::write(&file, versioned(1, 20_000)).unwrap();
    let sport = free_port();
    let pcfg = primary(&file, "").replace(
        "allow_transfer",
        &format!("notify = [\"127.0.0.1:{sport}\"]\nallow_transfer"),
    );
    let p = Tandem::start(&pcfg, "hard.test.");
    let sdir = tempfile::tempdir().unwrap();
    let scfg = format!(
        "[server]\nlisten = [\"127.0.0.1:{{PORT}}\"]\ndata_dir = \"var\"\n[[zone]]\nname = \"hard.test.\"\nrole = \"secondary\"\nprimaries = [\"{}\"]\n\
         min_refresh = 1\nmin_retry = 1\njournal_max_entries = 3\n",
        p.addr
    );
    let mut s = Tandem::start_in(sdir.path(), sport, &scfg, "hard.test.");
    let mut rng = Rng(0x5eed);
    for round in 0..20u32 {
        let serial = round + 2;
        // Every record changes: a large IXFR, and journal trims force copy rewrites.
        write(&file, &versioned(serial, 20_000));
        std::thread::sleep(Duration::from_millis(rng.below(400) as u64));
        s.kill9();
        s = Tandem::start_in(sdir.path(), sport, &scfg, "hard.test.");
        let got = consistent(s.addr)
            .unwrap_or_else(|| panic!("answers right after the restart: {}", s.log_text()));
        assert!(
            got == serial - 1 || got == serial,
            "round {round}: serial {got}\n{}",
            s.log_text()
        );
        wait_for(&format!("serial {serial}"), Duration::from_secs(60), || {
            (consistent(s.addr) == Some(serial)).then_some(())
        });
    }
}

#[test]
fn a_primary_killed_during_an_axfr_out_leaves_the_secondary_whole_and_it_completes_later() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("z.zone");
    std::fs::write(&file, versioned(1, 10)).unwrap();
    let pdir = tempfile::tempdir().unwrap();
    let pport = free_port();
    let pcfg = primary(&file, "");
    let mut p = Tandem::start_in(pdir.path(), pport, &pcfg, "hard.test.");
    let sdir = tempfile::tempdir().unwrap();
    let scfg = format!(
        "[server]\nlisten = [\"127.0.0.1:{{PORT}}\"]\ndata_dir = \"var\"\n[[zone]]\nname = \"hard.test.\"\nrole = \"secondary\"\nprimaries = [\"{}\"]\n\
         min_refresh = 1\nmax_refresh = 1\nmin_retry = 1\nmax_retry = 1\n",
        p.addr
    );
    let s = Tandem::start_in(sdir.path(), free_port(), &scfg, "hard.test.");
    assert_eq!(consistent(s.addr), Some(1));
    // A big new version; the primary dies while sending it.
    std::fs::write(&file, versioned(2, 200_000)).unwrap();
    p.kill9();
    // The log file is shared across restarts: look only at what comes next.
    let before = p.log_text().len();
    p = Tandem::spawn_in(pdir.path(), pport, &pcfg);
    wait_for("a transfer to start", Duration::from_secs(60), || {
        p.log_text()[before..]
            .contains("transfer out started")
            .then_some(())
    });
    p.kill9();
    assert_eq!(consistent(s.addr), Some(1), "the old version, whole");
    wait_for(
        "the cut transfer seen by the secondary",
        Duration::from_secs(10),
        || {
            let log = s.log_text();
            (log.contains("mid-transfer")
                || log.contains("Connection reset")
                || log.contains("refused"))
            .then_some(())
        },
    );
    let _p = Tandem::start_in(pdir.path(), pport, &pcfg, "hard.test.");
    wait_for("the secondary at serial 2", Duration::from_secs(60), || {
        (consistent(s.addr) == Some(2)).then_some(())
    });
}

#[test]
fn response_rate_limiting_drops_and_slips_per_client_network() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("z.zone");
    std::fs::write(&file, zone_text("hard.test.", 1, "www A 192.0.2.80\n")).unwrap();
    let t = Tandem::start(
        &primary(&file, "rrl_responses_per_second = 10\nrrl_slip = 2"),
        "hard.test.",
    );
    // Let the startup queries' budget refill.
    std::thread::sleep(Duration::from_millis(1500));
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let q = query("www.hard.test.", RecordType::A).to_vec().unwrap();
    for _ in 0..200 {
        sock.send_to(&q, t.addr).unwrap();
    }
    let (mut full, mut truncated) = (0, 0);
    let mut buf = [0u8; 1500];
    while let Ok(n) = sock.recv(&mut buf) {
        let m = hickory_proto::op::Message::from_vec(&buf[..n]).unwrap();
        if m.metadata.truncation {
            assert!(m.answers.is_empty());
            truncated += 1;
        } else {
            full += 1;
        }
    }
    assert!((5..=30).contains(&full), "{full} full answers at 10/s");
    assert!(truncated > 20, "{truncated} slipped (TC) answers");
    assert!(full + truncated < 150, "most over-limit answers dropped");
    // Another network is not affected.
    let other = std::net::UdpSocket::bind("127.0.1.1:0").unwrap();
    other
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    other.send_to(&q, t.addr).unwrap();
    let n = other.recv(&mut buf).unwrap();
    let m = hickory_proto::op::Message::from_vec(&buf[..n]).unwrap();
    assert_eq!(m.answers.len(), 1);
}

#[test]
#[ignore = "needs root: mounts a small tmpfs"]
fn a_full_data_dir_is_logged_serving_goes_on_and_saving_resumes_with_space() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("z.zone");
    std::fs::write(&file, versioned(1, 3000)).unwrap();
    let sport = free_port();
    let pcfg = primary(&file, "").replace(
        "allow_transfer",
        &format!("notify = [\"127.0.0.1:{sport}\"]\nallow_transfer"),
    );
    let _p = Tandem::start(&pcfg, "hard.test.");
    let small = dir.path().join("small");
    std::fs::create_dir(&small).unwrap();
    let mount = |opts: &str| {
        let st = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", opts, "tmpfs"])
            .arg(&small)
            .status()
            .unwrap();
        assert!(st.success(), "mount tmpfs");
    };
    mount("size=64k");
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(small.clone());
    let sdir = tempfile::tempdir().unwrap();
    let scfg = format!(
        "[server]\nlisten = [\"127.0.0.1:{{PORT}}\"]\ndata_dir = \"{}\"\n[[zone]]\nname = \"hard.test.\"\nrole = \"secondary\"\nprimaries = [\"{}\"]\nmin_refresh = 1\nmin_retry = 1\n",
        small.join("var").display(),
        _p.addr
    );
    let s = Tandem::start_in(sdir.path(), sport, &scfg, "hard.test.");
    assert_eq!(
        consistent(s.addr),
        Some(1),
        "serving although the copy could not be saved"
    );
    assert!(
        s.log_text().contains("cannot save the new version"),
        "{}",
        s.log_text()
    );
    // Space returns; the next version is saved.
    let st = std::process::Command::new("mount")
        .args(["-o", "remount,size=16m"])
        .arg(&small)
        .status()
        .unwrap();
    assert!(st.success());
    write(&file, &versioned(2, 3000));
    wait_for("serial 2", Duration::from_secs(30), || {
        (consistent(s.addr) == Some(2)).then_some(())
    });
    let copy = std::fs::read_to_string(small.join("var/hard.test.zone"))
        .unwrap_or_else(|e| panic!("the copy is on disk now: {e}\n{}", s.log_text()));
    assert!(copy.contains("v2"));
}

/// With two entries kept and one entry per segment, every edit appends a
/// segment and deletes one; SIGKILL lands at random points of that. Each
/// restart serves a serial no older than the one served before it, the
/// journal opens to a chained history (a torn last entry aside), and IXFR
/// from the previous serial is answered.
#[test]
fn a_primary_killed_while_its_journal_trims_restarts_on_a_chained_history() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("z.zone");
    std::fs::write(&file, zone_text("hard.test.", 1, "")).unwrap();
    let cfg = primary(&file, "")
        .replace(
            "data_dir = \"var\"",
            &format!("data_dir = \"{}\"", dir.path().join("var").display()),
        )
        .replace("allow_transfer", "journal_max_entries = 2\nallow_transfer");
    let port = free_port();
    let work = tempfile::tempdir().unwrap();
    let mut t = Tandem::start_in(work.path(), port, &cfg, "hard.test.");
    let mut rng = Rng(0x7e1a);
    let mut served = 1;
    for round in 0..15u32 {
        let serial = round + 2;
        write(
            &file,
            &zone_text(
                "hard.test.",
                serial,
                &format!("r{serial} A 192.0.2.{serial}\n"),
            ),
        );
        std::thread::sleep(Duration::from_millis(rng.below(250) as u64));
        served = serial_of(t.addr, "hard.test.")
            .unwrap_or(served)
            .max(served);
        t.kill9();
        let before = t.log_text().len();
        t = Tandem::start_in(work.path(), port, &cfg, "hard.test.");
        let now = wait_for("the restarted primary", Duration::from_secs(10), || {
            serial_of(t.addr, "hard.test.")
        });
        assert!(now >= served, "round {round}: serial {now} after {served}");
        let log = t.log_text()[before..].to_string();
        assert!(!log.contains("do not chain"), "round {round}:\n{log}");
        let (rcode, recs) = transfer(t.addr, &ixfr_query("hard.test.", now.saturating_sub(1)));
        assert_eq!(rcode, ResponseCode::NoError, "round {round}");
        assert!(!recs.is_empty());
        served = now;
    }
}
