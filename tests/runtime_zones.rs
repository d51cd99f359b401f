//! Zones added and removed at run time through the control API and the
//! CLI: served at once, listed with their origin, kept across a restart and
//! a config reload, and gone with their files when removed.

mod common;

use common::*;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use std::time::Duration;

fn config(ctl: u16, primary_file: &std::path::Path) -> String {
    format!(
        "[server]\nlisten = [\"127.0.0.1:{{PORT}}\"]\ndata_dir = \"var\"\ncontrol = \"127.0.0.1:{ctl}\"\n\
         [[zone]]\nname = \"base.test.\"\nrole = \"primary\"\nfile = \"{}\"\nallow_transfer = [\"127.0.0.0/8\"]\n",
        primary_file.display()
    )
}

fn origin_of(status: &serde_json::Value, zone: &str) -> Option<String> {
    status["zones"]
        .as_array()?
        .iter()
        .find(|z| z["name"] == zone)
        .and_then(|z| z["origin"].as_str().map(str::to_string))
}

fn rcode(addr: std::net::SocketAddr, zone: &str) -> ResponseCode {
    udp_query(addr, &query(zone, RecordType::SOA))
        .metadata
        .response_code
}

#[test]
fn zones_added_at_run_time_are_served_kept_and_removed_with_their_files() {
    // A primary to follow, and the server under test.
    let zdir = tempfile::tempdir().unwrap();
    let base = zdir.path().join("base.zone");
    std::fs::write(&base, zone_text("base.test.", 1, "")).unwrap();
    let upstream_file = zdir.path().join("up.zone");
    std::fs::write(
        &upstream_file,
        zone_text("up.test.", 7, "www A 192.0.2.7\n"),
    )
    .unwrap();
    let upstream = Tandem::start(
        &format!(
            "[server]\nlisten = [\"127.0.0.1:{{PORT}}\"]\ndata_dir = \"var\"\n[[zone]]\nname = \"up.test.\"\nrole = \"primary\"\nfile = \"{}\"\nallow_transfer = [\"127.0.0.0/8\"]\n",
            upstream_file.display()
        ),
        "up.test.",
    );
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let ctl = free_port();
    let mut t = Tandem::start_in(dir.path(), port, &config(ctl, &base), "base.test.");
    let api = std::net::SocketAddr::from(([127, 0, 0, 1], ctl));
    let ctl_arg = format!("127.0.0.1:{ctl}");

    // A secondary zone through the API, a primary zone through the CLI.
    let body = serde_json::json!({
        "name": "up.test.", "role": "secondary",
        "primaries": [upstream.addr.to_string()], "min_refresh": 1, "min_retry": 1,
    });
    let (code, text) =
        tandem::ops::client::send(api, "POST", "/zones", None, Some(&body.to_string())).unwrap();
    assert_eq!(code, 201, "{text}");
    wait_serial(port_addr(port), "up.test.", 7, Duration::from_secs(10));
    assert_eq!(answer_count(t.addr, "www.up.test.", RecordType::A), 1);
    let extra = zdir.path().join("extra.zone");
    std::fs::write(&extra, zone_text("extra.test.", 3, "")).unwrap();
    let (code, out, err) = t.cli(&[
        "zone",
        "add",
        "Extra.Test",
        "--role",
        "primary",
        "--file",
        extra.to_str().unwrap(),
        "--set",
        "serial_policy=\"keep\"",
        "--control",
        &ctl_arg,
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("zone extra.test. added"), "{out}");
    wait_serial(t.addr, "extra.test.", 3, Duration::from_secs(10));

    // Refused: a zone served already, an unknown key, a config zone removed.
    let (code, text) = tandem::ops::client::send(
        api,
        "POST",
        "/zones",
        None,
        Some(r#"{"name":"base.test.","role":"primary","file":"/x"}"#),
    )
    .unwrap();
    assert!(code == 400 || code == 409, "{code} {text}");
    let (code, text) = tandem::ops::client::send(
        api,
        "POST",
        "/zones",
        None,
        Some(
            r#"{"name":"new.test.","role":"secondary","primaries":["127.0.0.1:1"],"colour":"red"}"#,
        ),
    )
    .unwrap();
    assert_eq!(code, 400, "{text}");
    assert!(text.contains("colour"), "{text}");
    let (code, _, err) = t.cli(&["zone", "remove", "base.test.", "--control", &ctl_arg]);
    assert_eq!(code, 1);
    assert!(err.contains("remove it there"), "{err}");
    assert_eq!(rcode(t.addr, "base.test."), ResponseCode::NoError);

    // Listed with their origin; a config reload keeps them.
    let status = api_get(api, "/status");
    assert_eq!(origin_of(&status, "up.test.").as_deref(), Some("api"));
    assert_eq!(origin_of(&status, "extra.test.").as_deref(), Some("api"));
    assert_eq!(origin_of(&status, "base.test.").as_deref(), Some("config"));
    let (code, out, err) = t.cli(&["reload", "--control", &ctl_arg]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(rcode(t.addr, "up.test."), ResponseCode::NoError);
    assert_eq!(rcode(t.addr, "extra.test."), ResponseCode::NoError);

    // A restart serves them again (the secondary from its saved copy).
    drop(upstream);
    t.kill9();
    let t = Tandem::start_in(dir.path(), port, &config(ctl, &base), "up.test.");
    assert_eq!(answer_count(t.addr, "www.up.test.", RecordType::A), 1);
    wait_serial(t.addr, "extra.test.", 3, Duration::from_secs(10));
    let var = dir.path().join("var");
    assert!(var.join("up.test.zone").exists());

    // Removed: no longer served, its files gone, a restart does not bring it back.
    let (code, out, err) = t.cli(&["zone", "remove", "up.test.", "--control", &ctl_arg]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(rcode(t.addr, "up.test."), ResponseCode::Refused);
    let left: Vec<String> = std::fs::read_dir(&var)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|f| f.starts_with("up.test."))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    let (code, _, _) = t.cli(&["zone", "remove", "extra.test.", "--control", &ctl_arg]);
    assert_eq!(code, 0);
    assert!(extra.exists(), "a primary's zone file is the operator's");
    let mut t = t;
    t.kill9();
    let t = Tandem::start_in(dir.path(), port, &config(ctl, &base), "base.test.");
    assert_eq!(rcode(t.addr, "up.test."), ResponseCode::Refused);
    assert_eq!(rcode(t.addr, "extra.test."), ResponseCode::Refused);
}

fn port_addr(port: u16) -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], port))
}
