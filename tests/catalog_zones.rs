//! Catalog zones (RFC 9432), tandem consuming a catalog a tandem primary
//! serves as an ordinary zone: members added, grouped, reset, removed with
//! their files; an invalid catalog changes nothing and says why; a restart
//! serves every member from disk before the primary is back.

mod common;

use common::*;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

const CAT: &str = "cat.test.";

/// A catalog zone listing `members` as (id, name, group).
fn catalog(serial: u32, version: &str, members: &[(&str, &str, Option<&str>)]) -> String {
    let mut body = format!("version TXT \"{version}\"\n");
    for (id, name, group) in members {
        body += &format!("{id}.zones PTR {name}\n");
        if let Some(g) = group {
            body += &format!("group.{id}.zones TXT \"{g}\"\n");
        }
    }
    zone_text(CAT, serial, &body)
}

fn primary_config(dir: &Path, zones: &[&str], notify: u16) -> String {
    let mut c = String::from("[server]\nlisten = [\"127.0.0.1:{PORT}\"]\ndata_dir = \"var\"\n");
    for z in zones {
        c += &format!(
            "[[zone]]\nname = \"{z}\"\nrole = \"primary\"\nfile = \"{}\"\nnotify = [\"127.0.0.1:{notify}\"]\nallow_transfer = [\"127.0.0.0/8\"]\nserial_policy = \"keep\"\n",
            dir.join(format!("{z}zone")).display()
        );
    }
    c
}

fn rcode(addr: SocketAddr, zone: &str) -> ResponseCode {
    udp_query(addr, &query(zone, RecordType::SOA))
        .metadata
        .response_code
}

fn wait_gone(addr: SocketAddr, zone: &str) {
    wait_for(&format!("{zone} to stop"), Duration::from_secs(10), || {
        (rcode(addr, zone) == ResponseCode::Refused).then_some(())
    });
}

#[test]
fn a_consumer_follows_its_catalog_and_serves_members_from_disk_after_a_restart() {
    let pdir = tempfile::tempdir().unwrap();
    let p2dir = tempfile::tempdir().unwrap();
    let cport = free_port();
    for (z, serial) in [("m1.test.", 1), ("m2.test.", 2), ("m3.test.", 3)] {
        std::fs::write(
            pdir.path().join(format!("{z}zone")),
            zone_text(z, serial, "www A 192.0.2.1\n"),
        )
        .unwrap();
    }
    std::fs::write(
        p2dir.path().join("m4.test.zone"),
        zone_text("m4.test.", 40, ""),
    )
    .unwrap();
    let cat_file = pdir.path().join(format!("{CAT}zone"));
    std::fs::write(
        &cat_file,
        catalog(
            1,
            "2",
            &[("a1", "m1.test.", None), ("a2", "m2.test.", None)],
        ),
    )
    .unwrap();
    let p = Tandem::start(
        &primary_config(
            pdir.path(),
            &[CAT, "m1.test.", "m2.test.", "m3.test."],
            cport,
        ),
        CAT,
    );
    let p2 = Tandem::start(
        &primary_config(p2dir.path(), &["m4.test."], cport),
        "m4.test.",
    );

    let cdir = tempfile::tempdir().unwrap();
    let ctl = free_port();
    let consumer_config = format!(
        "[server]\nlisten = [\"127.0.0.1:{{PORT}}\"]\ndata_dir = \"var\"\ncontrol = \"127.0.0.1:{ctl}\"\n\
         [[catalog]]\nname = \"{CAT}\"\nrole = \"consumer\"\nprimaries = [\"{}\"]\nmin_refresh = 1\nmin_retry = 1\n\
         [catalog.defaults]\nmin_refresh = 1\nmin_retry = 1\nallow_notify = [\"127.0.0.0/8\"]\n\
         [catalog.group.elsewhere]\nprimaries = [\"{}\"]\n",
        p.addr, p2.addr
    );
    let started = std::time::Instant::now();
    let mut c = Tandem::start_in(cdir.path(), cport, &consumer_config, CAT);
    // Members serve within seconds of start.
    wait_serial(c.addr, "m1.test.", 1, Duration::from_secs(10));
    wait_serial(c.addr, "m2.test.", 2, Duration::from_secs(10));
    eprintln!("two members served {:?} after start", started.elapsed());
    let api = SocketAddr::from(([127, 0, 0, 1], ctl));
    let status = api_get(api, "/status");
    let origin = |st: &serde_json::Value, z: &str| {
        st["zones"]
            .as_array()
            .and_then(|a| a.iter().find(|x| x["name"] == z))
            .map(|x| x["origin"].clone())
    };
    assert_eq!(origin(&status, "m1.test."), Some(CAT.into()));
    assert_eq!(origin(&status, CAT), Some("config".into()));

    // Added (one in a group served by another primary), removed, id changed.
    write(
        &cat_file,
        &catalog(
            2,
            "2",
            &[
                ("b1", "m1.test.", None),
                ("a3", "m3.test.", None),
                ("a4", "m4.test.", Some("elsewhere")),
            ],
        ),
    );
    wait_serial(c.addr, "m3.test.", 3, Duration::from_secs(10));
    wait_serial(c.addr, "m4.test.", 40, Duration::from_secs(10));
    wait_gone(c.addr, "m2.test.");
    let var = cdir.path().join("var");
    wait_for("m2's files to go", Duration::from_secs(5), || {
        (!var.join("m2.test.zone").exists()).then_some(())
    });
    c.wait_log(0, &["unique id changed"], Duration::from_secs(10));
    wait_serial(c.addr, "m1.test.", 1, Duration::from_secs(10));

    // An invalid catalog (no version) keeps the member set and says why.
    let log_at = c.log_text().len();
    write(&cat_file, &catalog(3, "", &[("a3", "m3.test.", None)]));
    wait_serial(c.addr, CAT, 3, Duration::from_secs(10));
    c.wait_log(log_at, &["invalid catalog"], Duration::from_secs(10));
    assert_eq!(rcode(c.addr, "m1.test."), ResponseCode::NoError);
    let status = api_get(api, "/status");
    let cat_status = status["zones"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["name"] == CAT))
        .cloned()
        .unwrap_or_default();
    assert!(
        cat_status["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("version")),
        "{cat_status}"
    );

    // A restart with every primary gone serves every member from disk.
    drop(p);
    drop(p2);
    c.kill9();
    let c = Tandem::start_in(cdir.path(), cport, &consumer_config, CAT);
    for (z, serial) in [("m1.test.", 1), ("m3.test.", 3), ("m4.test.", 40)] {
        wait_serial(c.addr, z, serial, Duration::from_secs(5));
    }
    assert_eq!(rcode(c.addr, "m2.test."), ResponseCode::Refused);
}

#[test]
fn a_tandem_producer_feeds_a_tandem_consumer_through_config_and_api_changes() {
    const PCAT: &str = "produced.test.";
    let pdir = tempfile::tempdir().unwrap();
    let cport = free_port();
    for (z, serial) in [("p1.test.", 1), ("p2.test.", 2), ("p3.test.", 3)] {
        std::fs::write(
            pdir.path().join(format!("{z}zone")),
            zone_text(z, serial, "www A 192.0.2.1\n"),
        )
        .unwrap();
    }
    let ctl = free_port();
    let member = |z: &str, group: &str| {
        format!(
            "[[zone]]\nname = \"{z}\"\nrole = \"primary\"\nfile = \"{}\"\nnotify = [\"127.0.0.1:{cport}\"]\nallow_transfer = [\"127.0.0.0/8\"]\ncatalog = \"{PCAT}\"\n{group}",
            pdir.path().join(format!("{z}zone")).display()
        )
    };
    let producer_config = format!(
        "[server]\nlisten = [\"127.0.0.1:{{PORT}}\"]\ndata_dir = \"var\"\ncontrol = \"127.0.0.1:{ctl}\"\n\
         [[catalog]]\nname = \"{PCAT}\"\nrole = \"producer\"\nnotify = [\"127.0.0.1:{cport}\"]\nallow_transfer = [\"127.0.0.0/8\"]\n{}{}",
        member("p1.test.", ""),
        member("p2.test.", "catalog_group = \"gold\"\n"),
    );
    let pdata = tempfile::tempdir().unwrap();
    let pport = free_port();
    let mut p = Tandem::start_in(pdata.path(), pport, &producer_config, PCAT);
    let cdir = tempfile::tempdir().unwrap();
    let consumer_config = format!(
        "[server]\nlisten = [\"127.0.0.1:{{PORT}}\"]\ndata_dir = \"var\"\n\
         [[catalog]]\nname = \"{PCAT}\"\nrole = \"consumer\"\nprimaries = [\"{}\"]\nmin_refresh = 1\nmin_retry = 1\n\
         [catalog.defaults]\nmin_refresh = 1\nmin_retry = 1\n",
        p.addr
    );
    let c = Tandem::start_in(cdir.path(), cport, &consumer_config, PCAT);
    wait_serial(c.addr, "p1.test.", 1, Duration::from_secs(10));
    wait_serial(c.addr, "p2.test.", 2, Duration::from_secs(10));
    // The group is in the catalog.
    let m = udp_query(
        p.addr,
        &query(
            &format!("group.{}.zones.{PCAT}", tandem::catz::member_id("p2.test.")),
            RecordType::TXT,
        ),
    );
    assert_eq!(m.answers.len(), 1);

    // A zone added through the API joins its catalog; removed, it leaves.
    let ctl_arg = format!("127.0.0.1:{ctl}");
    let file = pdir.path().join("p3.test.zone");
    let (code, out, err) = p.cli(&[
        "zone",
        "add",
        "p3.test.",
        "--role",
        "primary",
        "--file",
        file.to_str().unwrap(),
        "--notify",
        &format!("127.0.0.1:{cport}"),
        "--set",
        &format!("catalog=\"{PCAT}\""),
        "--set",
        "allow_transfer=[\"127.0.0.0/8\"]",
        "--control",
        &ctl_arg,
    ]);
    assert_eq!(code, 0, "{out}{err}");
    wait_serial(c.addr, "p3.test.", 3, Duration::from_secs(10));
    let (code, out, err) = p.cli(&["zone", "remove", "p3.test.", "--control", &ctl_arg]);
    assert_eq!(code, 0, "{out}{err}");
    wait_gone(c.addr, "p3.test.");

    // Ids are stable across a producer restart: nothing is reset.
    p.kill9();
    let p = Tandem::start_in(pdata.path(), pport, &producer_config, PCAT);
    // A member dropped from the config file leaves the catalog.
    let fewer = producer_config.replace(&member("p1.test.", ""), "");
    std::fs::write(
        pdata.path().join("tandem.toml"),
        fewer.replace("{PORT}", &pport.to_string()),
    )
    .unwrap();
    p.signal("-HUP");
    wait_gone(c.addr, "p1.test.");
    assert_eq!(rcode(c.addr, "p2.test."), ResponseCode::NoError);
    assert!(
        !c.log_text().contains("unique id changed"),
        "{}",
        c.log_text()
    );
}

#[test]
fn a_new_secondary_with_only_a_catalog_serves_a_hundred_members() {
    let pdir = tempfile::tempdir().unwrap();
    let cport = free_port();
    let names: Vec<String> = (0..100).map(|i| format!("z{i}.hundred.test.")).collect();
    let mut members = Vec::new();
    for (i, z) in names.iter().enumerate() {
        std::fs::write(
            pdir.path().join(format!("{z}zone")),
            zone_text(z, i as u32 + 1, "www A 192.0.2.1\nmail A 192.0.2.2\n"),
        )
        .unwrap();
        members.push((format!("m{i}"), z.clone()));
    }
    let listed: Vec<(&str, &str, Option<&str>)> = members
        .iter()
        .map(|(id, z)| (id.as_str(), z.as_str(), None))
        .collect();
    let cat_file = pdir.path().join(format!("{CAT}zone"));
    std::fs::write(&cat_file, catalog(1, "2", &listed)).unwrap();
    let mut all: Vec<&str> = vec![CAT];
    all.extend(names.iter().map(String::as_str));
    let p = Tandem::start(&primary_config(pdir.path(), &all, cport), CAT);
    for (i, z) in names.iter().enumerate() {
        wait_serial(p.addr, z, i as u32 + 1, Duration::from_secs(10));
    }
    let cdir = tempfile::tempdir().unwrap();
    let consumer_config = format!(
        "[server]\nlisten = [\"127.0.0.1:{{PORT}}\"]\ndata_dir = \"var\"\n\
         [[catalog]]\nname = \"{CAT}\"\nrole = \"consumer\"\nprimaries = [\"{}\"]\n",
        p.addr
    );
    let started = std::time::Instant::now();
    let mut c = Tandem::start_in(cdir.path(), cport, &consumer_config, CAT);
    for (i, z) in names.iter().enumerate() {
        wait_serial(c.addr, z, i as u32 + 1, Duration::from_secs(30));
    }
    eprintln!("100 members served {:?} after start", started.elapsed());

    // A member removed on the primary stops within the NOTIFY round trip.
    let at = std::time::Instant::now();
    write(&cat_file, &catalog(2, "2", &listed[1..]));
    wait_gone(c.addr, &names[0]);
    eprintln!("a removed member stopped {:?} after the edit", at.elapsed());

    // Restarted without its primary: all 99 from disk at once.
    drop(p);
    c.kill9();
    let at = std::time::Instant::now();
    let c = Tandem::start_in(cdir.path(), cport, &consumer_config, CAT);
    for (i, z) in names.iter().enumerate().skip(1) {
        wait_serial(c.addr, z, i as u32 + 1, Duration::from_secs(10));
    }
    eprintln!(
        "99 members served from disk {:?} after restart",
        at.elapsed()
    );
    assert_eq!(rcode(c.addr, &names[0]), ResponseCode::Refused);
}

/// A tier: a tandem producer, a tandem consumer that serves the catalog
/// and its members on (NOTIFY and transfers out, from `[[catalog]]` and
/// `[catalog.defaults]`), and a tandem consumer of that consumer. A member
/// added through the producer's API and removed again, and an edit, reach
/// the end of the chain; the last one, restarted with the middle one gone,
/// serves the members from disk.
#[test]
fn a_catalog_flows_down_a_tier_of_tandems() {
    const TCAT: &str = "tier.test.";
    let zones = tempfile::tempdir().unwrap();
    let (aport, bport, ctl) = (free_port(), free_port(), free_port());
    let zone_file = |z: &str, serial: u32, body: &str| {
        let path = zones.path().join(format!("{z}zone"));
        write(
            &path,
            &zone_text(z, serial, &format!("www A 192.0.2.1\n{body}")),
        );
        path
    };
    let member = |z: &str, file: &Path| {
        format!(
            "[[zone]]\nname = \"{z}\"\nrole = \"primary\"\nfile = \"{}\"\nnotify = [\"127.0.0.1:{aport}\"]\n\
             allow_transfer = [\"127.0.0.0/8\"]\ncatalog = \"{TCAT}\"\n",
            file.display()
        )
    };
    let t1 = zone_file("t1.test.", 1, "");
    let t2 = zone_file("t2.test.", 2, "");
    let producer = format!(
        "[server]\nlisten = [\"127.0.0.1:{{PORT}}\"]\ndata_dir = \"var\"\ncontrol = \"127.0.0.1:{ctl}\"\n\
         [[catalog]]\nname = \"{TCAT}\"\nrole = \"producer\"\nnotify = [\"127.0.0.1:{aport}\"]\n\
         allow_transfer = [\"127.0.0.0/8\"]\n{}{}",
        member("t1.test.", &t1),
        member("t2.test.", &t2)
    );
    let p = Tandem::start(&producer, TCAT);
    // The middle: a consumer whose catalog and members are served on.
    let onward = format!("notify = [\"127.0.0.1:{bport}\"]\nallow_transfer = [\"127.0.0.0/8\"]\n");
    let middle = format!(
        "[server]\nlisten = [\"127.0.0.1:{{PORT}}\"]\ndata_dir = \"var\"\n\
         [[catalog]]\nname = \"{TCAT}\"\nrole = \"consumer\"\nprimaries = [\"{}\"]\nmin_retry = 1\n{onward}\
         [catalog.defaults]\nmin_retry = 1\n{onward}",
        p.addr
    );
    let adir = tempfile::tempdir().unwrap();
    let a = Tandem::start_in(adir.path(), aport, &middle, TCAT);
    let leaf = format!(
        "[server]\nlisten = [\"127.0.0.1:{{PORT}}\"]\ndata_dir = \"var\"\n\
         [[catalog]]\nname = \"{TCAT}\"\nrole = \"consumer\"\nprimaries = [\"{}\"]\nmin_retry = 1\n\
         [catalog.defaults]\nmin_retry = 1\n",
        a.addr
    );
    let bdir = tempfile::tempdir().unwrap();
    let mut b = Tandem::start_in(bdir.path(), bport, &leaf, TCAT);
    let follow = Duration::from_secs(20);
    for t in [&a, &b] {
        wait_serial(t.addr, "t1.test.", 1, follow);
        wait_serial(t.addr, "t2.test.", 2, follow);
    }

    // Added through the producer's API.
    let t3 = zone_file("t3.test.", 3, "");
    let ctl_arg = format!("127.0.0.1:{ctl}");
    let (code, out, err) = p.cli(&[
        "zone",
        "add",
        "t3.test.",
        "--role",
        "primary",
        "--file",
        t3.to_str().unwrap(),
        "--notify",
        &format!("127.0.0.1:{aport}"),
        "--set",
        &format!("catalog=\"{TCAT}\""),
        "--set",
        "allow_transfer=[\"127.0.0.0/8\"]",
        "--control",
        &ctl_arg,
    ]);
    assert_eq!(code, 0, "{out}{err}");
    wait_serial(b.addr, "t3.test.", 3, follow);

    // Edited on the producer: by NOTIFY and IXFR down both hops.
    zone_file("t2.test.", 20, "new A 192.0.2.20\n");
    wait_serial(b.addr, "t2.test.", 20, follow);
    assert_eq!(answer_count(b.addr, "new.t2.test.", RecordType::A), 1);

    // Removed on the producer: gone at the end of the chain, its copy too.
    let (code, out, err) = p.cli(&["zone", "remove", "t3.test.", "--control", &ctl_arg]);
    assert_eq!(code, 0, "{out}{err}");
    wait_gone(b.addr, "t3.test.");
    wait_for("t3's copy on the leaf to go", follow, || {
        (!bdir.path().join("var/t3.test.zone").exists()).then_some(())
    });

    // The leaf restarted with the middle gone: its members from disk.
    drop(a);
    b.kill9();
    let b = Tandem::start_in(bdir.path(), bport, &leaf, TCAT);
    wait_serial(b.addr, "t1.test.", 1, follow);
    wait_serial(b.addr, "t2.test.", 20, follow);
    assert_eq!(rcode(b.addr, "t3.test."), ResponseCode::Refused);
}

/// RFC 9432 §5.6, change of ownership: a member of catalog A whose `coo`
/// names catalog B, listed by B, then dropped by A, moves to B with its
/// data — no reset, no new transfer, never unserved.
#[test]
fn a_member_changes_catalog_by_coo_without_losing_its_data() {
    const A: &str = "cat-a.test.";
    const B: &str = "cat-b.test.";
    let catalog_of = |cat: &str, serial: u32, body: &str| {
        zone_text(cat, serial, &format!("version TXT \"2\"\n{body}"))
    };
    let pdir = tempfile::tempdir().unwrap();
    let file = |z: &str| pdir.path().join(format!("{z}zone"));
    let cport = free_port();
    write(&file(A), &catalog_of(A, 1, "a1.zones PTR co.test.\n"));
    write(&file(B), &catalog_of(B, 1, ""));
    write(
        &file("co.test."),
        &zone_text("co.test.", 7, "www A 192.0.2.7\n"),
    );
    let p = Tandem::start(
        &primary_config(pdir.path(), &[A, B, "co.test."], cport),
        "co.test.",
    );
    let ctl = free_port();
    // B's members may be transferred from the consumer, A's not: which
    // catalog's settings a member has shows from outside.
    let consumer = |cat: &str, extra: &str| {
        format!(
            "[[catalog]]\nname = \"{cat}\"\nrole = \"consumer\"\nprimaries = [\"{}\"]\nmin_retry = 1\n\
             [catalog.defaults]\nmin_retry = 1\n{extra}",
            p.addr
        )
    };
    let config = format!(
        "[server]\nlisten = [\"127.0.0.1:{{PORT}}\"]\ndata_dir = \"var\"\ncontrol = \"127.0.0.1:{ctl}\"\n{}{}",
        consumer(A, ""),
        consumer(B, "allow_transfer = [\"127.0.0.0/8\"]\n")
    );
    let axfr = |addr| transfer(addr, &query("co.test.", RecordType::AXFR)).0;
    let cdir = tempfile::tempdir().unwrap();
    let c = Tandem::start_in(cdir.path(), cport, &config, A);
    wait_serial(c.addr, "co.test.", 7, Duration::from_secs(10));
    let api = SocketAddr::from(([127, 0, 0, 1], ctl));
    let origin = || {
        api_get(api, "/status")["zones"]
            .as_array()
            .and_then(|a| a.iter().find(|x| x["name"] == "co.test.").cloned())
            .map(|x| x["origin"].clone())
    };
    assert_eq!(origin(), Some(A.into()));
    let transfers = |log: &str| {
        log.matches("AXFR received and applied zone=co.test.")
            .count()
    };
    assert_eq!(transfers(&c.log_text()), 1);
    assert_eq!(axfr(c.addr), ResponseCode::Refused);

    // A names B as the new owner; B lists the member (under its own id).
    write(
        &file(A),
        &catalog_of(
            A,
            2,
            "a1.zones PTR co.test.\ncoo.a1.zones PTR cat-b.test.\n",
        ),
    );
    write(&file(B), &catalog_of(B, 2, "b1.zones PTR co.test.\n"));
    wait_serial(c.addr, A, 2, Duration::from_secs(10));
    wait_serial(c.addr, B, 2, Duration::from_secs(10));
    // A drops it: B has it now, with the data it had and B's settings.
    write(&file(A), &catalog_of(A, 3, ""));
    wait_serial(c.addr, A, 3, Duration::from_secs(10));
    wait_for("the member to move to B", Duration::from_secs(10), || {
        (origin() == Some(B.into()) && axfr(c.addr) == ResponseCode::NoError).then_some(())
    });
    assert_eq!(serial_of(c.addr, "co.test."), Some(7));
    let log = c.log_text();
    assert!(log.contains("(coo)"), "{log}");
    assert_eq!(
        transfers(&log),
        1,
        "the member was transferred again:\n{log}"
    );
    assert!(!log.contains("unique id changed"), "{log}");
    assert!(!log.contains("no longer served zone=co.test."), "{log}");
    assert!(cdir.path().join("var/co.test.zone").exists());

    // B drops it in turn: gone, files too (B owns it, nothing is left over).
    write(&file(B), &catalog_of(B, 3, ""));
    wait_gone(c.addr, "co.test.");
    wait_for("its copy to go", Duration::from_secs(10), || {
        (!cdir.path().join("var/co.test.zone").exists()).then_some(())
    });
}
