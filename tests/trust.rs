//! Nothing a zone, a transfer, a config or an operator does takes tandem
//! down or makes it lie: supervision, reloads that keep what is served,
//! serials that never go backwards, errors operators can act on, deadlines,
//! bounded logs, keys, and the CHAOS identity.

mod common;

use common::*;
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RecordType};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::str::FromStr;
use std::time::{Duration, Instant};

fn server(ctl: u16, extra: &str) -> String {
    format!(
        "[server]\nlisten = [\"127.0.0.1:{{PORT}}\"]\ncontrol = \"127.0.0.1:{ctl}\"\ndata_dir = \"var\"\n{extra}\n"
    )
}

fn primary_zone(name: &str, file: &std::path::Path, extra: &str) -> String {
    format!(
        "[[zone]]\nname = \"{name}\"\nrole = \"primary\"\nfile = \"{}\"\n{extra}\n",
        file.display()
    )
}

fn ctl_addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn count(log: &str, needle: &str) -> usize {
    log.matches(needle).count()
}

#[test]
fn a_panic_answering_a_query_is_survived_counted_and_logged_with_the_query() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ok.zone");
    std::fs::write(&file, zone_text("ok.test.", 1, "www A 192.0.2.80\n")).unwrap();
    let ctl = free_port();
    let t = Tandem::start_env(
        &format!("{}{}", server(ctl, ""), primary_zone("ok.test.", &file, "")),
        "ok.test.",
        &[("TANDEM_FAULT_PANIC", "boom.ok.test.")],
    );
    let boom = query("boom.ok.test.", RecordType::A);
    assert!(udp_query_timeout(t.addr, &boom, Duration::from_millis(300)).is_none());
    // A burst of them.
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for _ in 0..500 {
        sock.send_to(&boom.to_vec().unwrap(), t.addr).unwrap();
    }
    // Over TCP the connection survives too: the next query on it is answered.
    let mut s = TcpStream::connect(t.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    for _ in 0..5 {
        tcp_send(&mut s, &boom.to_vec().unwrap());
    }
    tcp_send(
        &mut s,
        &query("www.ok.test.", RecordType::A).to_vec().unwrap(),
    );
    assert_eq!(tcp_recv(&mut s).answers.len(), 1);
    // Both UDP workers still answer.
    for _ in 0..20 {
        assert_eq!(t.q("www.ok.test.", RecordType::A).answers.len(), 1);
    }
    let c = ctl_addr(ctl);
    assert!(metric(c, "tandem_panics_total", &[("path", "udp")]) >= 450.0);
    assert!(metric(c, "tandem_panics_total", &[("path", "tcp")]) >= 5.0);
    let log = t.log_text();
    let hex = data_encoding::HEXLOWER.encode(&boom.to_vec().unwrap()[2..]);
    assert!(log.contains(&hex[..40]), "the query in hex:\n{log}");
    assert!(log.contains("recovered from a panic"), "{log}");
    // Logged with a rate limit, and no default panic message per packet.
    assert!(count(&log, "recovered from a panic") <= 40, "{log}");
    assert_eq!(count(&log, "panicked at"), 0, "{log}");
}

#[test]
fn a_panic_in_a_reload_is_caught_and_the_next_reload_still_runs() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, crash) = (dir.path().join("ok.zone"), dir.path().join("crash.zone"));
    std::fs::write(&ok, zone_text("ok.test.", 1, "")).unwrap();
    std::fs::write(&crash, zone_text("crash.test.", 7, "www A 192.0.2.7\n")).unwrap();
    let ctl = free_port();
    let t = Tandem::start_env(
        &format!(
            "{}{}{}",
            server(ctl, ""),
            primary_zone("ok.test.", &ok, ""),
            primary_zone("crash.test.", &crash, "")
        ),
        "ok.test.",
        &[("TANDEM_FAULT_PANIC", "crash.test.")],
    );
    let st = api_get(ctl_addr(ctl), "/status");
    let z = st["zones"]
        .as_array()
        .unwrap()
        .iter()
        .find(|z| z["name"] == "crash.test.")
        .unwrap()
        .clone();
    assert_eq!(z["state"], "failed", "{z}");
    assert!(
        z["last_error"].as_str().unwrap().contains("internal error"),
        "{z}"
    );
    let (code, out, err) = t.cli(&[
        "reload",
        "crash.test.",
        "--control",
        &ctl_addr(ctl).to_string(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("serial 7"), "{out}");
    assert_eq!(t.q("www.crash.test.", RecordType::A).answers.len(), 1);
    assert_eq!(
        metric(ctl_addr(ctl), "tandem_panics_total", &[("path", "zone")]),
        1.0
    );
}

#[test]
fn a_config_reload_with_new_settings_keeps_serving_even_a_zone_whose_file_broke() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("z.zone");
    std::fs::write(&file, zone_text("keep.test.", 3, "www A 192.0.2.3\n")).unwrap();
    let ctl = free_port();
    let cfg = |acl: &str| {
        format!(
            "{}{}",
            server(ctl, "zone_watch = \"off\""),
            primary_zone(
                "keep.test.",
                &file,
                &format!("allow_transfer = [\"{acl}\"]")
            )
        )
    };
    let t = Tandem::start(&cfg("127.0.0.2"), "keep.test.");
    let axfr = || transfer(t.addr, &query("keep.test.", RecordType::AXFR)).0;
    assert_eq!(axfr(), ResponseCode::Refused);
    std::fs::write(&file, "this is not a zone file\n").unwrap();
    std::fs::write(
        t.dir.join("tandem.toml"),
        cfg("127.0.0.1").replace("{PORT}", &t.addr.port().to_string()),
    )
    .unwrap();
    let (code, out, err) = t.cli(&["reload", "--control", &ctl_addr(ctl).to_string()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("changed keep.test."), "{out}");
    // Still serving serial 3, with the new transfer policy.
    assert_eq!(serial_of(t.addr, "keep.test."), Some(3));
    assert_eq!(t.q("www.keep.test.", RecordType::A).answers.len(), 1);
    assert_eq!(axfr(), ResponseCode::NoError);
    // The broken file shows in status, and reloading it says where.
    let (code, _, err) = t.cli(&[
        "reload",
        "keep.test.",
        "--control",
        &ctl_addr(ctl).to_string(),
    ]);
    assert_eq!(code, 1);
    assert!(err.contains(&format!("{}:1:", file.display())), "{err}");
    let (_, table, _) = t.cli(&["status", "--control", &ctl_addr(ctl).to_string()]);
    assert!(
        table.contains("last error") && table.contains("z.zone:1:"),
        "{table}"
    );
    assert!(
        t.log_text()
            .contains("keeping the served version (serial 3)")
    );
}

#[test]
fn no_query_fails_while_config_reloads_change_every_zone() {
    let dir = tempfile::tempdir().unwrap();
    let pfile = dir.path().join("p.zone");
    std::fs::write(&pfile, zone_text("p.test.", 1, "www A 192.0.2.1\n")).unwrap();
    let up = Tandem::start(
        &format!(
            "[server]\nlisten = [\"127.0.0.1:{{PORT}}\"]\ndata_dir = \"var\"\n{}",
            primary_zone(
                "up.test.",
                &{
                    let f = dir.path().join("up.zone");
                    std::fs::write(&f, zone_text("up.test.", 1, "www A 192.0.2.2\n")).unwrap();
                    f
                },
                "allow_transfer = [\"127.0.0.0/8\"]"
            )
        ),
        "up.test.",
    );
    let ctl = free_port();
    let cfg = |n: u32| {
        format!(
            "{}{}[[zone]]\nname = \"up.test.\"\nrole = \"secondary\"\nprimaries = [\"{}\"]\nallow_notify = [\"127.0.0.{n}\"]\nmin_refresh = {}\n",
            server(ctl, ""),
            primary_zone(
                "p.test.",
                &pfile,
                &format!("allow_transfer = [\"127.0.0.{n}\"]")
            ),
            up.addr,
            300 + n
        )
    };
    let t = Tandem::start(&cfg(1), "p.test.");
    wait_for("the secondary zone", Duration::from_secs(10), || {
        serial_of(t.addr, "up.test.")
    });
    let load = QueryLoad::start(t.addr, &["www.p.test.", "www.up.test."]);
    for round in 0..10u32 {
        std::fs::write(
            t.dir.join("tandem.toml"),
            cfg(2 + round % 2).replace("{PORT}", &t.addr.port().to_string()),
        )
        .unwrap();
        let (code, out, err) = t.cli(&["reload", "--control", &ctl_addr(ctl).to_string()]);
        assert_eq!(code, 0, "{out}{err}");
        assert!(out.contains("p.test.") && out.contains("up.test."), "{out}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (ok, failed) = load.stop();
    assert!(ok > 200, "the load ran");
    assert_eq!(failed, 0, "failed queries across reloads");
}

#[test]
fn server_settings_that_need_a_restart_are_named_in_the_reply() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("z.zone");
    std::fs::write(&file, zone_text("r.test.", 1, "")).unwrap();
    let ctl = free_port();
    let t = Tandem::start(
        &format!(
            "{}{}",
            server(ctl, "udp_workers = 1"),
            primary_zone("r.test.", &file, "")
        ),
        "r.test.",
    );
    std::fs::write(
        t.dir.join("tandem.toml"),
        format!(
            "{}{}",
            server(
                ctl,
                "udp_workers = 2\ntcp_idle_timeout = 5\nversion = \"renamed\""
            ),
            primary_zone("r.test.", &file, "")
        )
        .replace("{PORT}", &t.addr.port().to_string()),
    )
    .unwrap();
    let (code, out, err) = t.cli(&["reload", "--control", &ctl_addr(ctl).to_string()]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("not applied until a restart: [server] udp_workers, tcp_idle_timeout"),
        "{out}"
    );
    assert!(t.log_text().contains("change only with a restart"));
    // version is applied at once.
    let m = t.udp(&chaos("version.bind."));
    assert!(m.answers[0].data.to_string().contains("renamed"));
}

/// A state file that cannot be written: its path is a directory.
#[test]
fn a_serial_that_cannot_be_persisted_is_not_published_and_never_goes_back() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("z.zone");
    std::fs::write(&file, zone_text("d.test.", 10, "www A 192.0.2.10\n")).unwrap();
    let ctl = free_port();
    let cfg = format!(
        "{}{}",
        server(ctl, "zone_watch = \"off\""),
        primary_zone("d.test.", &file, "")
    );
    let work = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(work.path().join("var/d.test.state")).unwrap();
    let port = free_port();
    let mut t = Tandem::start_in(work.path(), port, &cfg, "d.test.");
    // The file holds serial 10: served although it cannot be persisted.
    assert_eq!(serial_of(t.addr, "d.test."), Some(10));
    let st = api_get(ctl_addr(ctl), "/status");
    assert_eq!(st["zones"][0]["state"], "degraded", "{st}");
    // An edit that needs serial 11 (increment) is not published.
    std::fs::write(&file, zone_text("d.test.", 10, "www A 192.0.2.11\n")).unwrap();
    let (code, _, err) = t.cli(&["reload", "d.test.", "--control", &ctl_addr(ctl).to_string()]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("cannot persist serial 11"), "{err}");
    assert_eq!(serial_of(t.addr, "d.test."), Some(10));
    let st = api_get(ctl_addr(ctl), "/status");
    assert_eq!(st["zones"][0]["state"], "degraded");
    assert!(
        st["zones"][0]["last_error"]
            .as_str()
            .unwrap()
            .contains("cannot persist"),
        "{st}"
    );
    assert_eq!(
        metric(
            ctl_addr(ctl),
            "tandem_zone_state",
            &[("zone", "d.test."), ("state", "degraded")]
        ),
        1.0
    );
    t.kill9();
    let t = Tandem::start_in(work.path(), port, &cfg, "d.test.");
    assert_eq!(serial_of(t.addr, "d.test."), Some(10), "not backwards");
    // Writable again: the next reload persists what is served, and the
    // next edit goes out as 11.
    std::fs::remove_dir(work.path().join("var/d.test.state")).unwrap();
    let (code, out, err) = t.cli(&["reload", "d.test.", "--control", &ctl_addr(ctl).to_string()]);
    assert_eq!(code, 0, "{out}{err}");
    let st = api_get(ctl_addr(ctl), "/status");
    assert_eq!(st["zones"][0]["state"], "serving", "{st}");
    assert!(st["zones"][0].get("last_error").is_none(), "{st}");
    std::fs::write(&file, zone_text("d.test.", 10, "www A 192.0.2.12\n")).unwrap();
    let (code, out, err) = t.cli(&["reload", "d.test.", "--control", &ctl_addr(ctl).to_string()]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(serial_of(t.addr, "d.test."), Some(11));
}

#[test]
fn a_secondary_keeps_what_is_saved_when_a_newer_version_cannot_be() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("z.zone");
    std::fs::write(&file, zone_text("s.test.", 1, "www A 192.0.2.1\n")).unwrap();
    let sport = free_port();
    let p = Tandem::start(
        &format!(
            "[server]\nlisten = [\"127.0.0.1:{{PORT}}\"]\ndata_dir = \"var\"\n{}",
            primary_zone(
                "s.test.",
                &file,
                &format!("notify = [\"127.0.0.1:{sport}\"]")
            )
        ),
        "s.test.",
    );
    let work = tempfile::tempdir().unwrap();
    let ctl = free_port();
    let scfg = format!(
        "{}[[zone]]\nname = \"s.test.\"\nrole = \"secondary\"\nprimaries = [\"{}\"]\nmin_refresh = 1\nmin_retry = 1\njournal_max_entries = 1\n",
        server(ctl, ""),
        p.addr
    );
    let mut s = Tandem::start_in(work.path(), sport, &scfg, "s.test.");
    // Every way to save a version is blocked, by directories where files
    // go: the copy's temp file and the journal's first segment. (The timers
    // are written in place and still succeed; they name no version.)
    let pid = s.child.id();
    for f in [
        format!(".s.test.zone.tmp.{pid}"),
        "s.test.journal.d/1".to_string(),
    ] {
        std::fs::create_dir_all(work.path().join("var").join(f)).unwrap();
    }
    write(&file, &zone_text("s.test.", 2, "www A 192.0.2.2\n"));
    wait_for("the save failure", Duration::from_secs(20), || {
        s.log_text().contains("cannot save serial 2").then_some(())
    });
    assert_eq!(serial_of(s.addr, "s.test."), Some(1), "the saved serial");
    let st = api_get(ctl_addr(ctl), "/status");
    assert_eq!(st["zones"][0]["state"], "degraded", "{st}");
    s.kill9();
    let s = Tandem::start_in(work.path(), sport, &scfg, "s.test.");
    assert!(serial_of(s.addr, "s.test.").is_some_and(|x| x >= 1));
}

#[test]
fn startup_errors_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    // (exited with success?, stderr); a server that starts instead of
    // refusing is killed after 5 s and counts as a failure to refuse.
    let run = |cfg: &str, env: &[(&str, &str)]| {
        std::fs::write(dir.path().join("t.toml"), cfg).unwrap();
        let mut child = dies_with_test(&mut std::process::Command::new(env!(
            "CARGO_BIN_EXE_tandem"
        )))
        .args(["serve", "--config", "t.toml"])
        .current_dir(dir.path())
        .env_remove("RUST_LOG")
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        let ok = loop {
            if let Some(st) = child.try_wait().unwrap() {
                break st.success();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break true;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut err = String::new();
        let _ = child.stderr.take().unwrap().read_to_string(&mut err);
        (ok, err)
    };
    let base = format!("[server]\nlisten = [\"127.0.0.1:{}\"]\n", free_port());
    let base = base.as_str();
    let (ok, err) = run(&format!("{base}log_level = \"loud\"\n"), &[]);
    assert!(
        !ok && err.contains("log_level") && err.contains("loud"),
        "{err}"
    );
    let (ok, err) = run(base, &[("RUST_LOG", "verbose")]);
    assert!(
        !ok && err.contains("RUST_LOG") && err.contains("verbose"),
        "{err}"
    );
    let (ok, err) = run(&format!("{base}control_token = \"\"\n"), &[]);
    assert!(
        !ok && err.contains("control_token") && err.contains("empty"),
        "{err}"
    );
}

#[test]
fn log_level_warning_keeps_warnings_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.zone");
    std::fs::write(&bad, "not a zone\n").unwrap();
    let good = dir.path().join("good.zone");
    std::fs::write(&good, zone_text("good.test.", 1, "")).unwrap();
    let t = Tandem::start_env(
        &format!(
            "[server]\nlisten = [\"127.0.0.1:{{PORT}}\"]\ndata_dir = \"var\"\nlog_level = \"warning\"\n{}{}",
            primary_zone("good.test.", &good, ""),
            primary_zone("bad.test.", &bad, "")
        ),
        "good.test.",
        &[("RUST_LOG", "")],
    );
    let log = t.log_text();
    assert!(
        log.contains("ERROR") && log.contains("bad.zone:1:"),
        "{log}"
    );
    assert!(!log.contains(" INFO "), "{log}");
}

#[test]
fn refresh_waits_for_the_outcome_and_names_what_failed() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("z.zone");
    std::fs::write(&file, zone_text("o.test.", 5, "")).unwrap();
    let p = Tandem::start(
        &format!(
            "[server]\nlisten = [\"127.0.0.1:{{PORT}}\"]\ndata_dir = \"var\"\n{}",
            primary_zone("o.test.", &file, "allow_transfer = [\"127.0.0.1\"]")
        ),
        "o.test.",
    );
    let closed = free_port();
    let ctl = free_port();
    let s = Tandem::start(
        &format!(
            "{}[[zone]]\nname = \"o.test.\"\nrole = \"secondary\"\nprimaries = [\"{}\"]\n\
             [[zone]]\nname = \"nowhere.test.\"\nrole = \"secondary\"\nprimaries = [\"127.0.0.1:{closed}\"]\n\
             [[zone]]\nname = \"denied.test.\"\nrole = \"secondary\"\nprimaries = [\"{}\"]\n",
            server(ctl, ""),
            p.addr,
            p.addr
        ),
        "o.test.",
    );
    let c = ctl_addr(ctl).to_string();
    let (code, out, err) = s.cli(&["refresh", "o.test.", "--control", &c]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("up to date at serial 5"), "{out}");
    let (code, _, err) = s.cli(&["refresh", "nowhere.test.", "--control", &c]);
    assert_eq!(code, 1);
    assert!(err.contains("onnection refused"), "{err}");
    assert!(!err.contains("timed out"), "{err}");
    // The primary does not serve denied.test.: NOTAUTH for the transfer,
    // REFUSED... by name in the error and the log.
    let (code, _, err) = s.cli(&["refresh", "denied.test.", "--control", &c]);
    assert_eq!(code, 1);
    assert!(err.contains("REFUSED") || err.contains("NOTAUTH"), "{err}");
    assert!(!s.log_text().contains("answered 5") && !s.log_text().contains("answered 9"));
    let st = api_get(ctl_addr(ctl), "/status");
    let zones = st["zones"].as_array().unwrap();
    let nowhere = zones.iter().find(|z| z["name"] == "nowhere.test.").unwrap();
    assert_eq!(nowhere["state"], "failed");
    assert!(
        nowhere["last_error"]
            .as_str()
            .unwrap()
            .contains("onnection refused")
    );
}

#[test]
fn transfer_errors_carry_the_tsig_error_name() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("z.zone");
    std::fs::write(&file, zone_text("k.test.", 1, "")).unwrap();
    let key = |secret: &str| {
        format!(
            "[[key]]\nname = \"xfr.k.test.\"\nalgorithm = \"hmac-sha256\"\nsecret = \"{secret}\"\n"
        )
    };
    let p = Tandem::start(
        &format!(
            "[server]\nlisten = [\"127.0.0.1:{{PORT}}\"]\ndata_dir = \"var\"\n{}{}",
            key("cmlnaHQgc2VjcmV0IHJpZ2h0IHNlY3JldCByaWdodCEh"),
            primary_zone(
                "k.test.",
                &file,
                "allow_transfer = [\"127.0.0.1\"]\ntransfer_key = \"xfr.k.test.\""
            )
        ),
        "k.test.",
    );
    let ctl = free_port();
    let s = Tandem::spawn_in(
        tempfile::tempdir().unwrap().keep().as_path(),
        free_port(),
        &format!(
            "{}{}[[zone]]\nname = \"k.test.\"\nrole = \"secondary\"\nprimaries = [\"{}\"]\ntransfer_key = \"xfr.k.test.\"\nmin_retry = 1\n",
            server(ctl, ""),
            key("d3Jvbmcgc2VjcmV0IHdyb25nIHNlY3JldCB3cm9uZyEh"),
            p.addr
        ),
    );
    wait_for("a TSIG error in the log", Duration::from_secs(15), || {
        s.log_text().contains("NOTAUTH (TSIG BADSIG)").then_some(())
    });
    assert!(p.log_text().contains("BADSIG"), "{}", p.log_text());
}

#[test]
fn a_secondary_that_never_loaded_serves_soon_after_its_primary_appears() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("z.zone");
    std::fs::write(&file, zone_text("late.test.", 1, "www A 192.0.2.1\n")).unwrap();
    let pport = free_port();
    let ctl = free_port();
    let s = Tandem::spawn_in(
        tempfile::tempdir().unwrap().keep().as_path(),
        free_port(),
        &format!(
            "{}[[zone]]\nname = \"late.test.\"\nrole = \"secondary\"\nprimaries = [\"127.0.0.1:{pport}\"]\n",
            server(ctl, "")
        ),
    );
    std::thread::sleep(Duration::from_secs(3));
    let pdir = tempfile::tempdir().unwrap();
    let _p = Tandem::start_in(
        pdir.path(),
        pport,
        &format!(
            "[server]\nlisten = [\"127.0.0.1:{{PORT}}\"]\ndata_dir = \"var\"\n{}",
            primary_zone("late.test.", &file, "allow_transfer = [\"127.0.0.1\"]")
        ),
        "late.test.",
    );
    let appeared = Instant::now();
    // Default min_retry is 500 s: without the backoff this would take minutes.
    wait_for("the secondary serving", Duration::from_secs(40), || {
        serial_of(s.addr, "late.test.")
    });
    assert!(appeared.elapsed() < Duration::from_secs(35));
}

#[test]
fn a_reader_that_stops_reading_is_cut_and_its_transfer_slot_freed() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("z.zone");
    // Larger than the socket buffers on both sides (4 MiB each, at most).
    let body: String = (0..250_000)
        .map(|i| format!("h{i} TXT \"filler record {i}\"\n"))
        .collect();
    std::fs::write(&file, zone_text("big.test.", 1, &body)).unwrap();
    let t = Tandem::start(
        &format!(
            "[server]\nlisten = [\"127.0.0.1:{{PORT}}\"]\ndata_dir = \"var\"\nmax_transfers_out = 1\ntcp_idle_timeout = 2\n{}",
            primary_zone("big.test.", &file, "allow_transfer = [\"127.0.0.1\"]")
        ),
        "big.test.",
    );
    let mut stalled = slow_reader(t.addr);
    tcp_send(
        &mut stalled,
        &query("big.test.", RecordType::AXFR).to_vec().unwrap(),
    );
    // The stalled reader must hold the one slot before the check begins;
    // otherwise the check's own transfer can take it first.
    wait_for(
        "the stalled transfer to start",
        Duration::from_secs(10),
        || t.log_text().contains("transfer out started").then_some(()),
    );
    // Never read. Within a few seconds the slot is free again.
    let started = Instant::now();
    wait_for("the slot to be freed", Duration::from_secs(20), || {
        let (rcode, recs) = transfer(t.addr, &query("big.test.", RecordType::AXFR));
        (rcode == ResponseCode::NoError && recs.len() == 250_004).then_some(())
    });
    assert!(started.elapsed() < Duration::from_secs(15));
    assert!(
        t.log_text().contains("transfer out abandoned"),
        "{}",
        t.log_text()
    );
    drop(stalled);
}

#[test]
fn the_control_api_caps_connections_and_closes_silent_ones() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("z.zone");
    std::fs::write(&file, zone_text("c.test.", 1, "")).unwrap();
    let ctl = free_port();
    let _t = Tandem::start(
        &format!("{}{}", server(ctl, ""), primary_zone("c.test.", &file, "")),
        "c.test.",
    );
    let silent: Vec<TcpStream> = (0..64)
        .map(|_| TcpStream::connect(ctl_addr(ctl)).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    // The 65th is closed at once.
    let mut extra = TcpStream::connect(ctl_addr(ctl)).unwrap();
    extra
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = [0u8; 16];
    assert!(matches!(extra.read(&mut buf), Ok(0) | Err(_)));
    // The silent ones are closed after the header timeout, and the API
    // answers again.
    let started = Instant::now();
    for mut s in silent {
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let _ = s.write_all(b"GET /sta");
        assert!(matches!(s.read(&mut buf), Ok(_) | Err(_)));
    }
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    wait_for("the API answering", Duration::from_secs(5), || {
        tandem::ops::client::request(ctl_addr(ctl), "GET", "/status", None)
            .ok()
            .filter(|(c, _)| *c == 200)
    });
}

#[test]
fn log_lines_a_flood_of_packets_triggers_are_rate_limited() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("z.zone");
    std::fs::write(&file, zone_text("f.test.", 1, "")).unwrap();
    let ctl = free_port();
    let t = Tandem::start(
        &format!("{}{}", server(ctl, ""), primary_zone("f.test.", &file, "")),
        "f.test.",
    );
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let notify = |id: u16| {
        let mut m = Message::new(id, MessageType::Query, OpCode::Notify);
        m.add_query(Query::query(
            Name::from_str("nothere.test.").unwrap(),
            RecordType::SOA,
        ));
        m.to_vec().unwrap()
    };
    for i in 0..3000u16 {
        sock.send_to(&notify(i), t.addr).unwrap();
    }
    std::thread::sleep(Duration::from_millis(1200));
    let _ = udp_raw(t.addr, &notify(1), Duration::from_secs(1));
    let log = wait_for("the suppressed count", Duration::from_secs(5), || {
        let log = t.log_text();
        log.contains("suppressed=").then_some(log)
    });
    let lines = count(&log, "NOTIFY for a zone not served here");
    assert!(lines <= 40, "{lines} lines for 3000 packets");
    assert!(metric(ctl_addr(ctl), "tandem_log_suppressed_total", &[]) >= 2900.0);
}

#[test]
fn key_names_match_however_written_and_a_rotated_secret_reaches_every_zone() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("z.zone");
    std::fs::write(&file, zone_text("rot.test.", 1, "www A 192.0.2.1\n")).unwrap();
    let (pctl, sctl, sport) = (free_port(), free_port(), free_port());
    let key = |name: &str, secret: &str| {
        format!("[[key]]\nname = \"{name}\"\nalgorithm = \"hmac-sha256\"\nsecret = \"{secret}\"\n")
    };
    let (old, new) = (
        "b2xkIHNlY3JldCBvbGQgc2VjcmV0IG9sZCBzZWNyZXQh",
        "bmV3IHNlY3JldCBuZXcgc2VjcmV0IG5ldyBzZWNyZXQh",
    );
    let pcfg = |secret: &str| {
        format!(
            "{}{}{}",
            server(pctl, ""),
            key("XFR.rot.test", secret),
            primary_zone(
                "rot.test.",
                &file,
                &format!("notify = [\"127.0.0.1:{sport}\"]\ntransfer_key = \"xfr.ROT.test\"")
            )
        )
    };
    let p = Tandem::start(&pcfg(old), "rot.test.");
    let scfg = |secret: &str| {
        format!(
            "{}{}[[zone]]\nname = \"rot.test.\"\nrole = \"secondary\"\nprimaries = [\"{}\"]\ntransfer_key = \"xfr.rot.test.\"\n",
            server(sctl, ""),
            key("xfr.rot.test.", secret),
            p.addr
        )
    };
    let sdir = tempfile::tempdir().unwrap();
    let s = Tandem::start_in(sdir.path(), sport, &scfg(old), "rot.test.");
    assert_eq!(serial_of(s.addr, "rot.test."), Some(1));
    // Both sides get the new secret; no zone setting changes.
    for (t, cfg, c) in [(&p, pcfg(new), pctl), (&s, scfg(new), sctl)] {
        std::fs::write(
            t.dir.join("tandem.toml"),
            cfg.replace("{PORT}", &t.addr.port().to_string()),
        )
        .unwrap();
        let (code, out, err) = t.cli(&["reload", "--control", &ctl_addr(c).to_string()]);
        assert_eq!(code, 0, "{out}{err}");
        assert!(
            out.contains("0 unchanged") || out.contains("1 unchanged"),
            "{out}"
        );
    }
    write(&file, &zone_text("rot.test.", 2, "www A 192.0.2.2\n"));
    wait_for("serial 2 over the new key", Duration::from_secs(20), || {
        (serial_of(s.addr, "rot.test.") == Some(2)).then_some(())
    });
    assert!(!s.log_text().contains("BADSIG"), "{}", s.log_text());
}

fn chaos(name: &str) -> Message {
    let mut m = query(name, RecordType::TXT);
    m.queries[0].set_query_class(DNSClass::CH);
    m
}

#[test]
fn chaos_identity_is_answered_or_hidden_as_nsd_and_knot_do() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("z.zone");
    std::fs::write(&file, zone_text("id.test.", 1, "")).unwrap();
    let t = Tandem::start(
        &format!(
            "[server]\nlisten = [\"127.0.0.1:{{PORT}}\"]\ndata_dir = \"var\"\nidentity = \"ns1.example\"\n{}",
            primary_zone("id.test.", &file, "")
        ),
        "id.test.",
    );
    for (name, want) in [
        ("version.bind.", "tandem "),
        ("version.server.", "tandem "),
        ("id.server.", "ns1.example"),
        ("HOSTNAME.bind.", "ns1.example"),
    ] {
        let m = t.udp(&chaos(name));
        assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{name}");
        assert!(m.metadata.authoritative, "{name}");
        assert_eq!(m.answers[0].dns_class, DNSClass::CH);
        assert_eq!(m.answers[0].ttl, 0);
        assert!(m.answers[0].data.to_string().contains(want), "{name}");
    }
    let mut a = chaos("version.bind.");
    a.queries[0].set_query_type(RecordType::A);
    assert_eq!(t.udp(&a).metadata.response_code, ResponseCode::Refused);
    assert_eq!(
        t.udp(&chaos("authors.bind.")).metadata.response_code,
        ResponseCode::Refused
    );
    let hidden = Tandem::start(
        &format!(
            "[server]\nlisten = [\"127.0.0.1:{{PORT}}\"]\ndata_dir = \"var\"\nidentity = \"\"\nversion = \"\"\n{}",
            primary_zone("id.test.", &file, "")
        ),
        "id.test.",
    );
    for name in ["version.bind.", "id.server."] {
        assert_eq!(
            hidden.udp(&chaos(name)).metadata.response_code,
            ResponseCode::Refused,
            "{name}"
        );
    }
}
