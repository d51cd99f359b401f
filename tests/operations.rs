//! Operating tandem: the control API and CLI, followers' lag on the
//! primary, Prometheus metrics, tokens, and config reload under load.

mod common;

use common::*;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use std::net::SocketAddr;
use std::time::Duration;
use tandem::ops::client::request;

#[test]
fn status_and_metrics_show_a_propagation() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ops.zone");
    std::fs::write(&file, zone_text("ops.test.", 1, "")).unwrap();
    let (sport, pctl, sctl) = (free_port(), free_port(), free_port());
    let pcfg = format!(
        "[server]\nlisten = [\"127.0.0.1:{{PORT}}\"]\ncontrol = \"127.0.0.1:{pctl}\"\ndata_dir = \"var\"\n\
         [[zone]]\nname = \"ops.test.\"\nrole = \"primary\"\nfile = \"{}\"\nnotify = [\"127.0.0.1:{sport}\"]\n",
        file.display()
    );
    let p = Tandem::start(&pcfg, "ops.test.");
    let sdir = tempfile::tempdir().unwrap();
    let scfg = format!(
        "[server]\nlisten = [\"127.0.0.1:{{PORT}}\"]\ncontrol = \"127.0.0.1:{sctl}\"\ndata_dir = \"var\"\n\
         [[zone]]\nname = \"ops.test.\"\nrole = \"secondary\"\nprimaries = [\"{}\"]\nmin_refresh = 1\nmin_retry = 1\n",
        p.addr
    );
    let s = Tandem::start_in(sdir.path(), sport, &scfg, "ops.test.");
    write(&file, &zone_text("ops.test.", 2, "new A 192.0.2.2\n"));
    let pc: SocketAddr = format!("127.0.0.1:{pctl}").parse().unwrap();
    let sc: SocketAddr = format!("127.0.0.1:{sctl}").parse().unwrap();
    // The primary sees its follower reach serial 2.
    let follower = wait_for(
        "the follower at serial 2 in /status",
        Duration::from_secs(20),
        || {
            let st = api_get(pc, "/status");
            let f = st["zones"][0]["followers"][0].clone();
            (f["serial"] == 2 && f["notify_acked"] == true).then_some(f)
        },
    );
    assert_eq!(follower["address"], format!("127.0.0.1:{sport}"));
    assert_eq!(follower["lag_serials"], 0);
    assert!(
        follower["last_seen"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
    let st = api_get(pc, "/status");
    let z = &st["zones"][0];
    assert_eq!(
        (
            z["name"].as_str(),
            z["role"].as_str(),
            z["serial"].as_u64(),
            z["state"].as_str()
        ),
        (Some("ops.test."), Some("primary"), Some(2), Some("serving"))
    );
    assert!(z["last_loaded"].is_string());
    // The secondary: its primary, serial, next refresh and expiry. The
    // primary counts the follower at serial 2 when the transfer out ends;
    // the secondary still saves the version before it serves it.
    let st = wait_for(
        "the secondary serving serial 2",
        Duration::from_secs(20),
        || {
            let st = api_get(sc, "/status");
            (st["zones"][0]["state"] == "serving" && st["zones"][0]["serial"] == 2).then_some(st)
        },
    );
    let z = &st["zones"][0];
    assert_eq!(
        (
            z["role"].as_str(),
            z["serial"].as_u64(),
            z["state"].as_str()
        ),
        (Some("secondary"), Some(2), Some("serving"))
    );
    assert_eq!(z["primaries"][0], p.addr.to_string());
    assert!(z["next_refresh"].is_string() && z["expires_at"].is_string());

    // Metrics, parsed as Prometheus text.
    let _ = udp_query(p.addr, &query("new.ops.test.", RecordType::A));
    let m = scrape(pc);
    assert!(
        sample(
            &m,
            "tandem_transfers_out_total",
            &[("kind", "IXFR"), ("result", "ok")]
        ) >= 1.0
    );
    assert!(
        sample(
            &m,
            "tandem_transfers_out_total",
            &[("kind", "AXFR"), ("result", "ok")]
        ) >= 1.0
    );
    assert!(sample(&m, "tandem_notify_acked_total", &[]) >= 1.0);
    assert_eq!(
        sample(&m, "tandem_zone_serial", &[("zone", "ops.test.")]),
        2.0
    );
    assert_eq!(
        sample(
            &m,
            "tandem_zone_state",
            &[("zone", "ops.test."), ("state", "serving")]
        ),
        1.0
    );
    assert_eq!(
        sample(&m, "tandem_follower_serial", &[("zone", "ops.test.")]),
        2.0
    );
    assert_eq!(
        sample(&m, "tandem_follower_lag_serials", &[("zone", "ops.test.")]),
        0.0
    );
    assert!(
        sample(&m, "tandem_propagation_seconds", &[]) >= 1.0,
        "propagation observed"
    );
    // The heap holds at least the served zone.
    assert!(sample(&m, "tandem_heap_bytes", &[("kind", "in_use")]) > 100_000.0);
    assert!(
        sample(
            &m,
            "tandem_queries_total",
            &[("transport", "udp"), ("qtype", "A"), ("rcode", "NOERROR")]
        ) >= 1.0
    );
    assert!(sample(&m, "tandem_zone_queries_total", &[("zone", "ops.test.")]) >= 1.0);
    let m = scrape(sc);
    assert!(
        sample(
            &m,
            "tandem_transfers_in_total",
            &[("kind", "IXFR"), ("result", "ok")]
        ) >= 1.0
    );
    assert!(sample(&m, "tandem_notify_received_total", &[]) >= 1.0);

    // The CLI: a table, JSON, actions, a clear failure.
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_tandem"))
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, _) = cli(&["status", "--control", &pc.to_string()]);
    assert_eq!(code, Some(0));
    assert!(
        out.contains("ops.test.") && out.contains("follower 127.0.0.1:") && out.contains("lag 0"),
        "{out}"
    );
    let (code, out, _) = cli(&["status", "--json", "--control", &sc.to_string()]);
    assert_eq!(code, Some(0));
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&out).unwrap()["zones"][0]["serial"],
        2
    );
    assert_eq!(
        cli(&["retransfer", "ops.test.", "--control", &sc.to_string()]).0,
        Some(0)
    );
    wait_for("the retransfer", Duration::from_secs(10), || {
        s.log_text().contains("(retransfer)").then_some(())
    });
    assert_eq!(
        cli(&["notify", "ops.test.", "--control", &pc.to_string()]).0,
        Some(0)
    );
    assert_eq!(
        cli(&["reload", "ops.test.", "--control", &pc.to_string()]).0,
        Some(0)
    );
    let (code, _, err) = cli(&["refresh", "ops.test.", "--control", &pc.to_string()]);
    assert_eq!(code, Some(1));
    assert!(err.contains("primary zone"), "{err}");
    let (code, _, err) = cli(&["refresh", "nope.test.", "--control", &sc.to_string()]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("no zone nope.test.") && err.contains("404"),
        "{err}"
    );
    let (code, _, err) = cli(&["status", "--control", &format!("127.0.0.1:{}", free_port())]);
    assert_eq!(code, Some(1));
    assert!(err.contains("cannot reach the control API"), "{err}");
}

#[test]
fn the_token_is_enforced_and_required_off_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("t.zone");
    std::fs::write(&file, zone_text("tok.test.", 1, "")).unwrap();
    let ctl = free_port();
    let cfg = format!(
        "[server]\nlisten = [\"127.0.0.1:{{PORT}}\"]\ncontrol = \"127.0.0.1:{ctl}\"\ncontrol_token = \"s3cret-token\"\n\
         [[zone]]\nname = \"tok.test.\"\nrole = \"primary\"\nfile = \"{}\"\n",
        file.display()
    );
    let _t = Tandem::start(&cfg, "tok.test.");
    let addr: SocketAddr = format!("127.0.0.1:{ctl}").parse().unwrap();
    assert_eq!(request(addr, "GET", "/status", None).unwrap().0, 401);
    assert_eq!(
        request(addr, "GET", "/metrics", Some("wrong")).unwrap().0,
        401
    );
    assert_eq!(
        request(
            addr,
            "POST",
            "/zones/tok.test./notify",
            Some("s3cret-tokeX")
        )
        .unwrap()
        .0,
        401
    );
    assert_eq!(
        request(addr, "GET", "/status", Some("s3cret-token"))
            .unwrap()
            .0,
        200
    );
    assert_eq!(
        request(
            addr,
            "POST",
            "/zones/tok.test./notify",
            Some("s3cret-token")
        )
        .unwrap()
        .0,
        200
    );
    // Off loopback without a token: the server refuses to start.
    let bad = cfg.replace(
        &format!("control = \"127.0.0.1:{ctl}\"\ncontrol_token = \"s3cret-token\""),
        "control = \"0.0.0.0:1\"",
    );
    std::fs::write(
        dir.path().join("bad.toml"),
        bad.replace("{PORT}", &free_port().to_string()),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(["serve", "--config", "bad.toml"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("control_token"));
}

#[test]
fn config_reload_adds_and_removes_zones_while_another_is_under_load() {
    let dir = tempfile::tempdir().unwrap();
    for (name, file) in [
        ("keep.test.", "keep.zone"),
        ("old.test.", "old.zone"),
        ("new.test.", "new.zone"),
    ] {
        std::fs::write(
            dir.path().join(file),
            zone_text(name, 1, "www A 192.0.2.80\n"),
        )
        .unwrap();
    }
    let zone = |name: &str, file: &str| {
        format!(
            "[[zone]]\nname = \"{name}\"\nrole = \"primary\"\nfile = \"{}\"\n",
            dir.path().join(file).display()
        )
    };
    let ctl = free_port();
    let head = format!(
        "[server]\nlisten = [\"127.0.0.1:{{PORT}}\"]\ncontrol = \"127.0.0.1:{ctl}\"\ndata_dir = \"var\"\n"
    );
    let t = Tandem::start(
        &format!(
            "{head}{}{}",
            zone("keep.test.", "keep.zone"),
            zone("old.test.", "old.zone")
        ),
        "keep.test.",
    );
    let port = t.addr.port().to_string();

    // Load on the untouched zone; every answer must be right.
    let load = QueryLoad::start(t.addr, &["www.keep.test."]);
    // SIGHUP: new.test. added, old.test. removed.
    std::fs::write(
        t.dir.join("tandem.toml"),
        format!(
            "{head}{}{}",
            zone("keep.test.", "keep.zone"),
            zone("new.test.", "new.zone")
        )
        .replace("{PORT}", &port),
    )
    .unwrap();
    t.signal("-HUP");
    wait_for("new.test. served", Duration::from_secs(10), || {
        (!t.q("www.new.test.", RecordType::A).answers.is_empty()).then_some(())
    });
    wait_for("old.test. gone", Duration::from_secs(10), || {
        (t.q("www.old.test.", RecordType::A).metadata.response_code == ResponseCode::Refused)
            .then_some(())
    });
    // POST /reload: old.test. back, new.test. out.
    std::fs::write(
        t.dir.join("tandem.toml"),
        format!(
            "{head}{}{}",
            zone("keep.test.", "keep.zone"),
            zone("old.test.", "old.zone")
        )
        .replace("{PORT}", &port),
    )
    .unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{ctl}").parse().unwrap();
    let (code, body) = request(addr, "POST", "/reload", None).unwrap();
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (v["added"][0].as_str(), v["removed"][0].as_str()),
        (Some("old.test."), Some("new.test."))
    );
    wait_for("old.test. back", Duration::from_secs(10), || {
        (!t.q("www.old.test.", RecordType::A).answers.is_empty()).then_some(())
    });
    // A broken config changes nothing.
    std::fs::write(
        t.dir.join("tandem.toml"),
        format!("{head}bogus = 1\n").replace("{PORT}", &port),
    )
    .unwrap();
    let (code, body) = request(addr, "POST", "/reload", None).unwrap();
    assert_eq!(code, 400);
    assert!(body.contains("bogus"), "{body}");
    assert_eq!(t.q("www.old.test.", RecordType::A).answers.len(), 1);
    let (ok, failed) = load.stop();
    assert!(ok > 100, "the load ran");
    assert_eq!(
        failed, 0,
        "queries for the untouched zone failed during reloads"
    );
}
