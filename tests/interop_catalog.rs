//! Catalog zones (RFC 9432) between tandem and real peers, each a separate
//! process on loopback: a Knot primary generating a catalog that tandem
//! consumes (also behind TSIG, then restarted from disk with Knot gone), a
//! BIND primary serving a hand-written catalog that tandem consumes, and a
//! tandem producer whose catalog Knot (across a restart of the producer)
//! and BIND 9.18 consume. Every change (member added, removed, re-added under a new id,
//! moved to another group, edited) is followed on the other side, waited
//! for with a deadline. See ../shared/PEERS.md for the peers' habits.

mod common;

use common::peers::{Peer, bind_options, peer_dir};
use common::*;
use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, NS, SOA};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long a peer may take to follow one change.
const FOLLOW: Duration = Duration::from_secs(30);

/// Polls `f` until it holds, or panics after `timeout` showing `logs()`.
fn until(what: &str, timeout: Duration, logs: &dyn Fn() -> String, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}\n{}",
            logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Polls until `addr` serves every (zone, serial), or panics after FOLLOW
/// for one of them, showing `logs()`.
fn until_serving(addr: SocketAddr, zones: &[(&str, u32)], logs: &dyn Fn() -> String) {
    for &(z, serial) in zones {
        until(
            &format!("{addr} serving {z} at {serial}"),
            FOLLOW,
            logs,
            || serial_of(addr, z) == Some(serial),
        );
    }
}

/// The rcode `addr` answers a UDP SOA query for `zone` with (None: no answer).
fn soa_rcode(addr: SocketAddr, zone: &str) -> Option<ResponseCode> {
    udp_query_timeout(
        addr,
        &query(zone, RecordType::SOA),
        Duration::from_millis(500),
    )
    .map(|m| m.metadata.response_code)
}

/// The rcode of an AXFR of `zone` from `addr`.
fn axfr_rcode(addr: SocketAddr, zone: &str) -> ResponseCode {
    transfer(addr, &query(zone, RecordType::AXFR)).0
}

/// Member zone files (serial, an address record) in `dir`.
fn member_file(dir: &Path, zone: &str, serial: u32, body: &str) -> PathBuf {
    let path = dir.join(format!("{zone}zone"));
    write(
        &path,
        &zone_text(zone, serial, &format!("www A 192.0.2.1\n{body}")),
    );
    path
}

/// The members of catalog `cat` served at `addr` (name → unique id), read
/// by AXFR over TCP.
fn catalog_ids(addr: SocketAddr, cat: &str) -> BTreeMap<String, String> {
    let (rcode, records) = transfer(addr, &query(cat, RecordType::AXFR));
    assert_eq!(rcode, ResponseCode::NoError, "AXFR of {cat} from {addr}");
    let suffix = format!(".zones.{cat}");
    records
        .iter()
        .filter_map(|r| match &r.data {
            RData::PTR(p) => {
                let owner = r.name.to_ascii().to_ascii_lowercase();
                let id = owner.strip_suffix(&suffix)?;
                (!id.contains('.')).then(|| (p.0.to_ascii().to_ascii_lowercase(), id.to_string()))
            }
            _ => None,
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Knot generates, tandem consumes.

const KCAT: &str = "cat.test.";

/// Knot's configuration: a generated catalog `KCAT` listing `members`
/// (name, group), every zone NOTIFYing tandem at `follower`, member zone
/// files in `zones`, file edits served as IXFR.
fn knot_producer_body(follower: u16, zones: &Path, members: &[(&str, Option<&str>)]) -> String {
    let mut b = format!(
        "remote:\n  - id: tandem\n    address: 127.0.0.1@{follower}\n\
         acl:\n  - id: xfr\n    address: 127.0.0.0/8\n    action: transfer\n\
         template:\n  - id: default\n    storage: {{D}}\n    acl: xfr\n    notify: tandem\n    \
         zonefile-load: difference\n    journal-content: changes\n    zonefile-sync: -1\n\
         zone:\n  - domain: {KCAT}\n    catalog-role: generate\n"
    );
    for (z, group) in members {
        b += &format!(
            "  - domain: {z}\n    file: {}\n    catalog-role: member\n    catalog-zone: {KCAT}\n",
            zones.join(format!("{z}zone")).display()
        );
        if let Some(g) = group {
            b += &format!("    catalog-group: {g}\n");
        }
    }
    b
}

#[test]
#[ignore = "needs knot"]
fn tandem_consumes_a_catalog_knot_generates() {
    let zones = tempfile::tempdir().unwrap();
    for (z, serial) in [("m1.test.", 1), ("m2.test.", 2), ("m3.test.", 3)] {
        member_file(zones.path(), z, serial, "");
    }
    let (kport, cport) = (free_port(), free_port());
    let body = |m: &[(&str, Option<&str>)]| knot_producer_body(cport, zones.path(), m);
    let knot = Peer::knot_with(
        kport,
        &body(&[("m1.test.", None), ("m2.test.", Some("gold"))]),
    );
    // Members of group "gold" may be transferred from tandem, others not:
    // the group's settings are visible from outside.
    let config = format!(
        "[server]\nlisten = [\"127.0.0.1:{{PORT}}\"]\ndata_dir = \"var\"\n\
         [[catalog]]\nname = \"{KCAT}\"\nrole = \"consumer\"\nprimaries = [\"{}\"]\nmin_retry = 1\n\
         [catalog.defaults]\nmin_retry = 1\n\
         [catalog.group.gold]\nallow_transfer = [\"127.0.0.0/8\"]\n",
        knot.addr
    );
    let cdir = tempfile::tempdir().unwrap();
    // Knot refuses a UDP SOA query for the catalog it generates: tandem
    // asks again over TCP (before it did, the catalog never loaded).
    wait_for("Knot to serve its catalog", FOLLOW, || {
        (serial_of(knot.addr, "m2.test.") == Some(2)).then_some(())
    });
    assert_eq!(soa_rcode(knot.addr, KCAT), Some(ResponseCode::Refused));
    let c = Tandem::start_in(cdir.path(), cport, &config, KCAT);
    let logs = || {
        format!(
            "--- tandem ---\n{}\n--- knot ---\n{}",
            c.log_text(),
            knot.log_text()
        )
    };
    until_serving(c.addr, &[("m1.test.", 1), ("m2.test.", 2)], &logs);
    assert_eq!(axfr_rcode(c.addr, "m2.test."), ResponseCode::NoError);
    assert_eq!(axfr_rcode(c.addr, "m1.test."), ResponseCode::Refused);
    let first_ids = catalog_ids(knot.addr, KCAT);

    // A member added.
    knot.knot_reconfigure(&body(&[
        ("m1.test.", None),
        ("m2.test.", Some("gold")),
        ("m3.test.", None),
    ]));
    until("m3 added", FOLLOW, &logs, || {
        serial_of(c.addr, "m3.test.") == Some(3)
    });

    // A member removed: no longer served, its files gone.
    knot.knot_reconfigure(&body(&[("m2.test.", Some("gold")), ("m3.test.", None)]));
    until("m1 removed", FOLLOW, &logs, || {
        soa_rcode(c.addr, "m1.test.") == Some(ResponseCode::Refused)
    });
    let var = cdir.path().join("var");
    until("m1's files to go", FOLLOW, &logs, || {
        !var.join("m1.test.zone").exists()
    });

    // A member removed and added again while tandem looks away: tandem
    // next sees it under a new unique id in one version, and resets it.
    let m3_id = catalog_ids(knot.addr, KCAT)["m3.test."].clone();
    let log_at = c.log_text().len();
    c.signal("-STOP");
    knot.knot_reconfigure(&body(&[("m2.test.", Some("gold"))]));
    until("Knot to drop m3", FOLLOW, &logs, || {
        !catalog_ids(knot.addr, KCAT).contains_key("m3.test.")
    });
    knot.knot_reconfigure(&body(&[("m2.test.", Some("gold")), ("m3.test.", None)]));
    until("Knot to list m3 again", FOLLOW, &logs, || {
        catalog_ids(knot.addr, KCAT).contains_key("m3.test.")
    });
    let new_m3_id = catalog_ids(knot.addr, KCAT)["m3.test."].clone();
    assert_ne!(m3_id, new_m3_id, "Knot gives a re-added member a new id");
    c.signal("-CONT");
    c.wait_log(log_at, &["unique id changed"], FOLLOW);
    until("m3 served again", FOLLOW, &logs, || {
        serial_of(c.addr, "m3.test.") == Some(3)
    });

    // A removed member added back gets a new id too, and is served afresh.
    knot.knot_reconfigure(&body(&[
        ("m1.test.", None),
        ("m2.test.", Some("gold")),
        ("m3.test.", None),
    ]));
    until("m1 back", FOLLOW, &logs, || {
        serial_of(c.addr, "m1.test.") == Some(1)
    });
    assert_ne!(
        catalog_ids(knot.addr, KCAT)["m1.test."],
        first_ids["m1.test."]
    );

    // A member moved to another group takes that group's settings.
    knot.knot_reconfigure(&body(&[
        ("m1.test.", Some("gold")),
        ("m2.test.", Some("silver")),
        ("m3.test.", None),
    ]));
    until("m2 to leave group gold", FOLLOW, &logs, || {
        axfr_rcode(c.addr, "m2.test.") == ResponseCode::Refused
    });
    until("m1 to join group gold", FOLLOW, &logs, || {
        axfr_rcode(c.addr, "m1.test.") == ResponseCode::NoError
    });
    assert_eq!(serial_of(c.addr, "m2.test."), Some(2));

    // A member edited on Knot reaches tandem by NOTIFY and IXFR.
    let log_at = c.log_text().len();
    member_file(zones.path(), "m2.test.", 20, "new A 192.0.2.20\n");
    knot.hup();
    until("m2 at serial 20", FOLLOW, &logs, || {
        serial_of(c.addr, "m2.test.") == Some(20)
    });
    assert_eq!(answer_count(c.addr, "new.m2.test.", RecordType::A), 1);
    c.wait_log(
        log_at,
        &["NOTIFY received", "IXFR received and applied zone=m2.test."],
        FOLLOW,
    );
    eprintln!("{}", logs());
}

// ---------------------------------------------------------------------------
// tandem produces, Knot and BIND consume.

const PCAT: &str = "pcat.test.";

/// A tandem producer of `PCAT` whose zones NOTIFY `follower`; members are
/// the primary zones listed (name, group) with files in `zones`.
struct Producer {
    t: Tandem,
    zones: tempfile::TempDir,
    follower: u16,
    ctl: u16,
}

impl Producer {
    fn config(&self, members: &[(&str, Option<&str>)]) -> String {
        producer_config(self.zones.path(), self.follower, self.ctl, members)
    }

    fn start(follower: u16, members: &[(&str, Option<&str>)]) -> Producer {
        let zones = tempfile::tempdir().unwrap();
        for (z, serial) in [("p1.test.", 1), ("p2.test.", 2), ("p3.test.", 3)] {
            member_file(zones.path(), z, serial, "");
        }
        let ctl = free_port();
        let t = Tandem::start(&producer_config(zones.path(), follower, ctl, members), PCAT);
        Producer {
            t,
            zones,
            follower,
            ctl,
        }
    }

    /// A new member set by config reload (SIGHUP).
    fn reload(&self, members: &[(&str, Option<&str>)]) {
        std::fs::write(
            self.t.path("tandem.toml"),
            self.config(members)
                .replace("{PORT}", &self.t.addr.port().to_string()),
        )
        .unwrap();
        self.t.signal("-HUP");
    }

    /// The state the producer's follower check gives its follower for `zone`.
    fn follower_state(&self, zone: &str) -> Option<String> {
        let st = api_get(SocketAddr::from(([127, 0, 0, 1], self.ctl)), "/status");
        let follower = format!("127.0.0.1:{}", self.follower);
        st["zones"].as_array()?.iter().find(|z| z["name"] == zone)?["followers"]
            .as_array()?
            .iter()
            .find(|f| f["address"] == follower.as_str())?["state"]
            .as_str()
            .map(str::to_string)
    }

    /// `tandem zone add ZONE` into the catalog, through the control API.
    fn add(&self, zone: &str) {
        let file = self.zones.path().join(format!("{zone}zone"));
        let (code, out, err) = self.t.cli(&[
            "zone",
            "add",
            zone,
            "--role",
            "primary",
            "--file",
            file.to_str().unwrap(),
            "--notify",
            &format!("127.0.0.1:{}", self.follower),
            "--set",
            &format!("catalog=\"{PCAT}\""),
            "--set",
            "allow_transfer=[\"127.0.0.0/8\"]",
            "--control",
            &format!("127.0.0.1:{}", self.ctl),
        ]);
        assert_eq!(code, 0, "{out}{err}");
    }
}

fn producer_config(
    zones: &Path,
    follower: u16,
    ctl: u16,
    members: &[(&str, Option<&str>)],
) -> String {
    let mut c = format!(
        "[server]\nlisten = [\"127.0.0.1:{{PORT}}\"]\ndata_dir = \"var\"\ncontrol = \"127.0.0.1:{ctl}\"\n\
         [[catalog]]\nname = \"{PCAT}\"\nrole = \"producer\"\nnotify = [\"127.0.0.1:{follower}\"]\nallow_transfer = [\"127.0.0.0/8\"]\n\
         follower_check_interval = 1\n"
    );
    for (z, group) in members {
        c += &format!(
            "[[zone]]\nname = \"{z}\"\nrole = \"primary\"\nfile = \"{}\"\nnotify = [\"127.0.0.1:{follower}\"]\n\
             allow_transfer = [\"127.0.0.0/8\"]\ncatalog = \"{PCAT}\"\n",
            zones.join(format!("{z}zone")).display()
        );
        if let Some(g) = group {
            c += &format!("catalog_group = \"{g}\"\n");
        }
    }
    c
}

#[test]
#[ignore = "needs knot"]
fn knot_consumes_a_catalog_tandem_produces() {
    let kport = free_port();
    let p = Producer::start(kport, &[("p1.test.", None), ("p2.test.", Some("gold"))]);
    // Members get the template their group names; the first one without
    // a group (Knot's rule). The templates differ only in name: knotc
    // shows which one a member has.
    let mut body = format!(
        "remote:\n  - id: tandem\n    address: {}\n\
         acl:\n  - id: notify\n    address: 127.0.0.1\n    action: notify\n  \
         - id: producer\n    address: 127.0.0.1\n    action: transfer\n\
         template:\n",
        p.t.addr.to_string().replace(':', "@")
    );
    for t in ["default", "member", "gold", "silver"] {
        body += &format!("  - id: {t}\n    storage: {{D}}\n    master: tandem\n    acl: notify\n");
    }
    body += &format!(
        "zone:\n  - domain: {PCAT}\n    catalog-role: interpret\n    catalog-template: [ member, gold, silver ]\n    \
         acl: [ notify, producer ]\n"
    );
    let knot = Peer::knot_with(kport, &body);
    let logs = || {
        format!(
            "--- tandem ---\n{}\n--- knot ---\n{}",
            p.t.log_text(),
            knot.log_text()
        )
    };
    let group_of = |z: &str| knot.knotc(&["zone-status", z, "+catalog"]);
    until_serving(knot.addr, &[("p1.test.", 1), ("p2.test.", 2)], &logs);
    until("p2 in group gold", FOLLOW, &logs, || {
        group_of("p2.test.").contains(&format!("{PCAT}#gold"))
    });
    // Knot 3.2 answers queries to a catalog zone only over TCP and only to
    // clients its ACL lets transfer it (the `producer` acl): the producer's
    // follower check, asked again over TCP, then sees Knot in sync.
    until("Knot in sync on the catalog", FOLLOW, &logs, || {
        p.follower_state(PCAT).as_deref() == Some("in_sync")
    });
    assert_eq!(soa_rcode(knot.addr, PCAT), Some(ResponseCode::Refused));

    // Added at run time through the control API.
    p.add("p3.test.");
    until("Knot serving p3", FOLLOW, &logs, || {
        serial_of(knot.addr, "p3.test.") == Some(3)
    });

    // Removed by config reload (p3, added through the API, stays).
    p.reload(&[("p2.test.", Some("gold"))]);
    until("Knot dropping p1", FOLLOW, &logs, || {
        soa_rcode(knot.addr, "p1.test.") == Some(ResponseCode::Refused)
    });
    assert_eq!(serial_of(knot.addr, "p3.test."), Some(3));

    // Moved to another group.
    p.reload(&[("p2.test.", Some("silver"))]);
    until("p2 in group silver", FOLLOW, &logs, || {
        group_of("p2.test.").contains(&format!("{PCAT}#silver"))
    });
    until("Knot serving p2 after its move", FOLLOW, &logs, || {
        serial_of(knot.addr, "p2.test.").is_some()
    });

    // A member edited on tandem reaches Knot by NOTIFY and IXFR.
    let log_at = knot.log_text().len();
    member_file(p.zones.path(), "p2.test.", 20, "new A 192.0.2.20\n");
    until("Knot serving p2 at 20", FOLLOW, &logs, || {
        serial_of(knot.addr, "p2.test.") == Some(20)
    });
    assert_eq!(answer_count(knot.addr, "new.p2.test.", RecordType::A), 1);
    until("Knot's IXFR of p2", FOLLOW, &logs, || {
        knot.log_text()[log_at..].contains("[p2.test.] IXFR, incoming")
    });

    // The producer restarted (kill -9): the same member ids, a catalog
    // serial that does not go back, so Knot keeps every member as it is
    // (a changed id would make it purge and transfer the member afresh).
    let ids = catalog_ids(p.t.addr, PCAT);
    let serial = serial_of(p.t.addr, PCAT).expect("the catalog's serial");
    let log_at = knot.log_text().len();
    let (dir, port) = (p.t.path(""), p.t.addr.port());
    let config = std::fs::read_to_string(p.t.path("tandem.toml")).unwrap();
    p.t.signal("-KILL");
    wait_for("the producer's port to be free", FOLLOW, || {
        (UdpSocket::bind(("127.0.0.1", port)).is_ok()
            && TcpListener::bind(("127.0.0.1", port)).is_ok())
        .then_some(())
    });
    let restarted = Tandem::start_in(&dir, port, &config, PCAT);
    assert_eq!(catalog_ids(restarted.addr, PCAT), ids);
    let again = serial_of(restarted.addr, PCAT).expect("the catalog's serial");
    assert!(again.wrapping_sub(serial) as i32 >= 0, "{serial} → {again}");
    // A catalog change after the restart still reaches Knot.
    p.add("p1.test.");
    until("Knot serving p1 again", FOLLOW, &logs, || {
        serial_of(knot.addr, "p1.test.") == Some(1)
    });
    let after = knot.log_text()[log_at..].to_string();
    for z in ["p2.test.", "p3.test."] {
        assert!(
            ["zone purged", "zone added from catalog", "AXFR, incoming"]
                .iter()
                .all(|what| !after.contains(&format!("[{z}] {what}"))),
            "Knot reset {z} after the producer's restart:\n{after}"
        );
    }
    assert_eq!(serial_of(knot.addr, "p2.test."), Some(20));
    assert_eq!(serial_of(knot.addr, "p3.test."), Some(3));
    eprintln!("{}", logs());
}

#[test]
#[ignore = "needs bind9"]
fn bind_consumes_a_catalog_tandem_produces() {
    let bport = free_port();
    let p = Producer::start(bport, &[("p1.test.", None), ("p2.test.", Some("gold"))]);
    let (dir, d) = peer_dir();
    let extra = format!(
        "  notify no;\n  catalog-zones {{ zone \"{PCAT}\" default-primaries {{ 127.0.0.1 port {}; }} min-update-interval 1; }};\n",
        p.t.addr.port()
    );
    let conf = format!(
        "{}zone \"{PCAT}\" {{\n  type secondary;\n  primaries {{ 127.0.0.1 port {}; }};\n  file \"{d}/catalog.db\";\n}};\n",
        bind_options(&d, bport, &extra),
        p.t.addr.port()
    );
    let bind = Peer::named(dir, bport, &conf, false);
    let logs = || {
        format!(
            "--- tandem ---\n{}\n--- bind ---\n{}",
            p.t.log_text(),
            bind.log_text()
        )
    };
    until_serving(bind.addr, &[("p1.test.", 1), ("p2.test.", 2)], &logs);
    until("BIND in sync on the catalog", FOLLOW, &logs, || {
        p.follower_state(PCAT).as_deref() == Some("in_sync")
    });
    // BIND 9.18 knows no group property (RFC 9432 §4.4.2): it logs the
    // record as invalid and ignores it; the member is added all the same.
    assert!(
        bind.log_text()
            .contains("catz: invalid record in catalog zone - group."),
        "{}",
        logs()
    );
    assert!(
        bind.log_text()
            .contains("catz: adding zone 'p2.test' from catalog 'pcat.test' - success"),
        "{}",
        logs()
    );

    // Added at run time through the control API.
    p.add("p3.test.");
    until("BIND serving p3", FOLLOW, &logs, || {
        serial_of(bind.addr, "p3.test.") == Some(3)
    });

    // Removed by config reload.
    p.reload(&[("p2.test.", Some("gold"))]);
    until("BIND dropping p1", FOLLOW, &logs, || {
        soa_rcode(bind.addr, "p1.test.") == Some(ResponseCode::Refused)
    });
    assert!(bind.log_text().contains("catz: deleting zone 'p1.test'"));

    // Moved to another group: a new catalog version that BIND reads and
    // applies without touching the member.
    let log_at = bind.log_text().len();
    p.reload(&[("p2.test.", Some("silver"))]);
    until("BIND to read the new catalog", FOLLOW, &logs, || {
        bind.log_text()[log_at..].contains("catz: pcat.test: reload done")
    });
    assert_eq!(serial_of(bind.addr, "p2.test."), Some(2));
    assert!(!bind.log_text()[log_at..].contains("catz: deleting zone 'p2.test'"));

    // A member edited on tandem reaches BIND by NOTIFY and IXFR.
    member_file(p.zones.path(), "p2.test.", 20, "new A 192.0.2.20\n");
    until("BIND serving p2 at 20", FOLLOW, &logs, || {
        serial_of(bind.addr, "p2.test.") == Some(20)
    });
    assert_eq!(answer_count(bind.addr, "new.p2.test.", RecordType::A), 1);
    assert!(
        bind.log_text()
            .contains("zone p2.test/IN: notify from 127.0.0.1"),
        "{}",
        logs()
    );
    p.t.wait_log(
        0,
        &["transfer out started zone=p2.test. peer=127.0.0.1 kind=\"IXFR\" serial=20"],
        FOLLOW,
    );
    eprintln!("{}", logs());
}

// ---------------------------------------------------------------------------
// Knot's habit, scripted: a primary that refuses SOA queries over UDP.

const RZONE: &str = "refuse.test.";

fn rname(s: &str) -> Name {
    Name::from_str(s).unwrap()
}

fn soa_rr(serial: u32) -> Record {
    Record::from_rdata(
        rname(RZONE),
        0,
        RData::SOA(SOA::new(
            rname("invalid."),
            rname("invalid."),
            serial,
            3600,
            600,
            2147483646,
            0,
        )),
    )
}

fn reply(req: &[u8], rcode: ResponseCode, answers: Vec<Record>) -> Vec<u8> {
    let q = Message::from_vec(req).unwrap();
    let mut m = Message::new(q.metadata.id, MessageType::Response, OpCode::Query);
    m.metadata.authoritative = rcode == ResponseCode::NoError;
    m.metadata.response_code = rcode;
    m.add_queries(q.queries.clone());
    m.add_answers(answers);
    m.to_vec().unwrap()
}

/// A primary for `RZONE` at serial 7 that answers REFUSED to everything over
/// UDP and serves SOA and AXFR over TCP; counts the UDP queries.
fn refusing_primary() -> (SocketAddr, Arc<AtomicUsize>) {
    let (udp, tcp) = loop {
        let port = free_port();
        if let (Ok(u), Ok(t)) = (
            UdpSocket::bind(("127.0.0.1", port)),
            TcpListener::bind(("127.0.0.1", port)),
        ) {
            break (u, t);
        }
    };
    let addr = udp.local_addr().unwrap();
    let udp_queries = Arc::new(AtomicUsize::new(0));
    let counter = udp_queries.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        while let Ok((n, from)) = udp.recv_from(&mut buf) {
            counter.fetch_add(1, Ordering::Relaxed);
            let _ = udp.send_to(&reply(&buf[..n], ResponseCode::Refused, vec![]), from);
        }
    });
    std::thread::spawn(move || {
        for mut s in tcp.incoming().flatten() {
            std::thread::spawn(move || {
                while let Some(req) = tcp_read_framed(&mut s) {
                    let Ok(q) = Message::from_vec(&req) else {
                        return;
                    };
                    let answers = match q.queries.first().map(|q| q.query_type()) {
                        Some(RecordType::SOA) => vec![soa_rr(7)],
                        Some(RecordType::AXFR | RecordType::IXFR) => vec![
                            soa_rr(7),
                            Record::from_rdata(rname(RZONE), 0, RData::NS(NS(rname("invalid.")))),
                            Record::from_rdata(
                                rname(&format!("www.{RZONE}")),
                                0,
                                RData::A(A::new(192, 0, 2, 7)),
                            ),
                            soa_rr(7),
                        ],
                        _ => vec![],
                    };
                    tcp_send(&mut s, &reply(&req, ResponseCode::NoError, answers));
                }
            });
        }
    });
    (addr, udp_queries)
}

#[test]
fn a_primary_that_refuses_the_soa_query_over_udp_is_asked_over_tcp() {
    let (primary, udp_queries) = refusing_primary();
    let config = format!(
        "[server]\nlisten = [\"127.0.0.1:{{PORT}}\"]\ndata_dir = \"var\"\n\
         [[zone]]\nname = \"{RZONE}\"\nrole = \"secondary\"\nprimaries = [\"{primary}\"]\nmin_retry = 1\n"
    );
    let t = Tandem::spawn(&config);
    until(
        "the zone from a primary that refuses UDP",
        Duration::from_secs(15),
        &|| t.log_text(),
        || serial_of(t.addr, RZONE) == Some(7),
    );
    assert_eq!(
        answer_count(t.addr, &format!("www.{RZONE}"), RecordType::A),
        1
    );
    assert!(udp_queries.load(Ordering::Relaxed) >= 1);
}

// ---------------------------------------------------------------------------
// Knot generates a catalog behind TSIG; tandem consumes it and, Knot gone,
// restarts serving every member from disk.

#[test]
#[ignore = "needs knot"]
fn tandem_consumes_a_tsig_protected_knot_catalog_and_restarts_from_disk() {
    const KEY: &str = "cat.key.";
    let secret = data_encoding::BASE64.encode(b"catalog transfer secret, 32 byte");
    let members = ["t1.test.", "t2.test.", "t3.test."];
    let zones = tempfile::tempdir().unwrap();
    for (i, z) in members.iter().enumerate() {
        member_file(zones.path(), z, 10 + i as u32, "");
    }
    let (kport, cport) = (free_port(), free_port());
    // Every transfer and NOTIFY signed: the catalog's and the members'.
    let mut body = format!(
        "key:\n  - id: {KEY}\n    algorithm: hmac-sha256\n    secret: {secret}\n\
         remote:\n  - id: tandem\n    address: 127.0.0.1@{cport}\n    key: {KEY}\n\
         acl:\n  - id: xfr\n    address: 127.0.0.0/8\n    key: {KEY}\n    action: transfer\n\
         template:\n  - id: default\n    storage: {{D}}\n    acl: xfr\n    notify: tandem\n\
         zone:\n  - domain: {KCAT}\n    catalog-role: generate\n"
    );
    for z in members {
        body += &format!(
            "  - domain: {z}\n    file: {}\n    catalog-role: member\n    catalog-zone: {KCAT}\n",
            zones.path().join(format!("{z}zone")).display()
        );
    }
    let knot = Peer::knot_with(kport, &body);
    wait_for("Knot to serve the members", FOLLOW, || {
        (serial_of(knot.addr, "t3.test.") == Some(12)).then_some(())
    });
    // Knot wants the key: unsigned, the transfer is refused.
    assert_ne!(axfr_rcode(knot.addr, "t1.test."), ResponseCode::NoError);
    let config = format!(
        "[server]\nlisten = [\"127.0.0.1:{{PORT}}\"]\ndata_dir = \"var\"\n\
         [[key]]\nname = \"{KEY}\"\nalgorithm = \"hmac-sha256\"\nsecret = \"{secret}\"\n\
         [[catalog]]\nname = \"{KCAT}\"\nrole = \"consumer\"\nprimaries = [\"{}\"]\n\
         transfer_key = \"{KEY}\"\nmin_retry = 1\n\
         [catalog.defaults]\ntransfer_key = \"{KEY}\"\nmin_retry = 1\n",
        knot.addr
    );
    let cdir = tempfile::tempdir().unwrap();
    let c = Tandem::start_in(cdir.path(), cport, &config, KCAT);
    let logs = || {
        format!(
            "--- tandem ---\n{}\n--- knot ---\n{}",
            c.log_text(),
            knot.log_text()
        )
    };
    until_serving(
        c.addr,
        &[("t1.test.", 10), ("t2.test.", 11), ("t3.test.", 12)],
        &logs,
    );
    // An edit on Knot: its signed NOTIFY accepted, the IXFR signed.
    let log_at = c.log_text().len();
    member_file(zones.path(), "t2.test.", 20, "new A 192.0.2.20\n");
    knot.hup();
    until("t2 at serial 20", FOLLOW, &logs, || {
        serial_of(c.addr, "t2.test.") == Some(20)
    });
    c.wait_log(log_at, &["NOTIFY received"], FOLLOW);

    // Knot gone; tandem restarted: every member answers from its saved
    // copy at once, before any refresh could succeed.
    drop(knot);
    drop(c);
    let started = Instant::now();
    let c = Tandem::start_in(cdir.path(), cport, &config, KCAT);
    until_serving(
        c.addr,
        &[("t1.test.", 10), ("t2.test.", 20), ("t3.test.", 12)],
        &|| c.log_text(),
    );
    eprintln!(
        "all members served from disk {} ms after the restart",
        started.elapsed().as_millis()
    );
    assert_eq!(answer_count(c.addr, "new.t2.test.", RecordType::A), 1);
}

// ---------------------------------------------------------------------------
// BIND serves a catalog written by hand (BIND 9.18 cannot generate one);
// tandem consumes it.

/// A catalog zone `cat` (version 2) listing `members` as (id, name).
fn catalog_text(cat: &str, serial: u32, members: &[(&str, &str)]) -> String {
    let mut t = format!(
        "$ORIGIN {cat}\n$TTL 0\n@ SOA invalid. invalid. {serial} 3600 600 86400 0\n@ NS invalid.\n\
         version TXT \"2\"\n"
    );
    for (id, name) in members {
        t += &format!("{id}.zones PTR {name}\n");
    }
    t
}

#[test]
#[ignore = "needs bind9"]
fn tandem_consumes_a_catalog_bind_serves() {
    const BCAT: &str = "bcat.test.";
    let zones = tempfile::tempdir().unwrap();
    for (i, z) in ["b1.test.", "b2.test.", "b3.test."].iter().enumerate() {
        member_file(zones.path(), z, 30 + i as u32, "");
    }
    let cat_file = zones.path().join("bcat.test.zone");
    write(
        &cat_file,
        &catalog_text(BCAT, 1, &[("one", "b1.test."), ("two", "b2.test.")]),
    );
    let (bport, cport) = (free_port(), free_port());
    let (dir, d) = peer_dir();
    let extra = format!(
        "  notify explicit;\n  also-notify {{ 127.0.0.1 port {cport}; }};\n  notify-delay 0;\n  \
         allow-transfer {{ 127.0.0.1; }};\n  ixfr-from-differences yes;\n"
    );
    let mut conf = bind_options(&d, bport, &extra);
    for z in [BCAT, "b1.test.", "b2.test.", "b3.test."] {
        conf += &format!(
            "zone \"{z}\" {{\n  type primary;\n  file \"{}\";\n}};\n",
            zones.path().join(format!("{z}zone")).display()
        );
    }
    let bind = Peer::named(dir, bport, &conf, false);
    wait_for("BIND to serve the catalog", FOLLOW, || {
        (serial_of(bind.addr, BCAT) == Some(1)).then_some(())
    });
    let config = format!(
        "[server]\nlisten = [\"127.0.0.1:{{PORT}}\"]\ndata_dir = \"var\"\n\
         [[catalog]]\nname = \"{BCAT}\"\nrole = \"consumer\"\nprimaries = [\"{}\"]\nmin_retry = 1\n\
         [catalog.defaults]\nmin_retry = 1\n",
        bind.addr
    );
    let cdir = tempfile::tempdir().unwrap();
    let c = Tandem::start_in(cdir.path(), cport, &config, BCAT);
    let logs = || {
        format!(
            "--- tandem ---\n{}\n--- named ---\n{}",
            c.log_text(),
            bind.log_text()
        )
    };
    until_serving(c.addr, &[("b1.test.", 30), ("b2.test.", 31)], &logs);
    assert_eq!(soa_rcode(c.addr, "b3.test."), Some(ResponseCode::Refused));

    // One member out, one in, in one catalog version, which BIND NOTIFYs.
    let log_at = c.log_text().len();
    write(
        &cat_file,
        &catalog_text(BCAT, 2, &[("one", "b1.test."), ("three", "b3.test.")]),
    );
    bind.hup();
    until("b3 added", FOLLOW, &logs, || {
        serial_of(c.addr, "b3.test.") == Some(32)
    });
    until("b2 removed", FOLLOW, &logs, || {
        soa_rcode(c.addr, "b2.test.") == Some(ResponseCode::Refused)
    });
    let var = cdir.path().join("var");
    until("b2's copy to go", FOLLOW, &logs, || {
        !var.join("b2.test.zone").exists()
    });
    c.wait_log(
        log_at,
        // BIND 9.18 answers this IXFR AXFR-style (its first reload of the
        // zone has no journal to answer from yet).
        &["NOTIFY received", "received and applied zone=bcat.test."],
        FOLLOW,
    );

    // A member edited on BIND reaches tandem.
    member_file(zones.path(), "b1.test.", 40, "new A 192.0.2.40\n");
    bind.hup();
    until("b1 at serial 40", FOLLOW, &logs, || {
        serial_of(c.addr, "b1.test.") == Some(40)
    });

    // BIND gone, tandem restarted: the members answer from disk.
    drop(bind);
    drop(c);
    let c = Tandem::start_in(cdir.path(), cport, &config, BCAT);
    until_serving(c.addr, &[("b1.test.", 40), ("b3.test.", 32)], &|| {
        c.log_text()
    });
    assert_eq!(soa_rcode(c.addr, "b2.test."), Some(ResponseCode::Refused));
}
