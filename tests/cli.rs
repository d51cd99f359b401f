//! The command line: `tandem check` like named-checkzone, config errors that
//! name the file, zone and key, and `tandem serve` on the embedded default.

mod common;

use common::*;
use hickory_proto::rr::RecordType;
use std::process::Command;

fn tandem(args: &[&str], dir: &std::path::Path) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run tandem");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_accepts_the_corpus() {
    let nsec3 = [("signed.test.", "nsec3.signed.test.zone")];
    for (origin, file) in TEST_ZONES.iter().chain(&nsec3) {
        let path = data(file);
        let (code, out, err) = tandem(
            &["check", path.to_str().unwrap(), "--origin", origin],
            std::path::Path::new(DATA),
        );
        assert_eq!(code, 0, "{file}: {err}");
        assert!(out.contains("loaded serial") && out.contains("OK"), "{out}");
    }
    // The origin defaults to the file name.
    let zones = concat!(env!("CARGO_MANIFEST_DIR"), "/zones/example.com.zone");
    let (code, out, _) = tandem(&["check", zones], std::path::Path::new(DATA));
    assert_eq!(code, 0);
    assert!(out.contains("example.com./IN"), "{out}");
}

#[test]
fn check_reports_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let head = "$TTL 60\n@ SOA ns h 1 2 3 4 5\n  NS ns\nns A 192.0.2.1\n";
    let cases: &[(&str, &str, &str)] = &[
        (
            "bad-a",
            "www A 192.0.2.300\n",
            "bad-a.zone:5: A record: bad IPv4 address",
        ),
        (
            "cname",
            "www CNAME ns\nwww TXT \"x\"\n",
            "CNAME and other data",
        ),
        (
            "outside",
            "www.example.org. A 192.0.2.1\n",
            "bad-outside.zone:5: www.example.org. A: out of zone",
        ),
        (
            "paren",
            "www TXT ( \"x\"\n",
            "bad-paren.zone:5: unbalanced parentheses",
        ),
        (
            "type",
            "www BOGUS 1\n",
            "bad-type.zone:5: unknown record type 'BOGUS'",
        ),
        ("include", "$INCLUDE inc.txt\n", "inc.txt:2: MX record"),
        (
            "gen",
            "$GENERATE 1-3 h$ A 10.0.0.${0,x}\n",
            "bad-gen.zone:5: $GENERATE",
        ),
    ];
    std::fs::write(dir.path().join("inc.txt"), "ok A 192.0.2.2\nbad MX mail\n").unwrap();
    for (name, body, want) in cases {
        let f = dir.path().join(format!("bad-{name}.zone"));
        std::fs::write(&f, format!("{head}{body}")).unwrap();
        let (code, _, err) = tandem(
            &["check", f.to_str().unwrap(), "--origin", "example.com."],
            dir.path(),
        );
        assert_eq!(code, 1, "{name}");
        assert!(err.contains(want), "{name}: wanted {want:?} in {err:?}");
    }
    let f = dir.path().join("nosoa.zone");
    std::fs::write(&f, "$TTL 60\n@ NS ns\n").unwrap();
    let (code, _, err) = tandem(
        &["check", f.to_str().unwrap(), "--origin", "example.com."],
        dir.path(),
    );
    assert_eq!(code, 1);
    assert!(err.contains("no SOA"), "{err}");
}

#[test]
fn config_errors_name_file_zone_and_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a.zone"),
        "$TTL 60\n@ SOA ns h 1 2 3 4 5\n NS ns\nns A 192.0.2.1\n",
    )
    .unwrap();
    let zone = "[[zone]]\nname = \"a.test.\"\nrole = \"primary\"\nfile = \"a.zone\"\n";
    let cases: &[(&str, &str)] = &[
        ("[server]\nlisten = [\"127.0.0.1\"]\n", "`listen`"),
        (
            "[server]\nlisten = [\"127.0.0.1:1\"]\nlisen = 1\n",
            "unknown field `lisen`",
        ),
        (
            &format!("{zone}notify = [\"not-an-ip\"]\n"),
            "zone \"a.test.\": key `notify`: bad address",
        ),
        (
            &format!("{zone}allow_transfer = [\"10.0.0.0/33\"]\n"),
            "key `allow_transfer`",
        ),
        (&format!("{zone}{zone}"), "zone listed twice"),
        (
            "[[zone]]\nname = \"b.test.\"\nrole = \"primary\"\nfile = \"missing.zone\"\n",
            "zone \"b.test.\": key `file`: missing.zone",
        ),
        (
            &format!("{zone}transfer_key = \"nokey.\"\n"),
            "key `transfer_key`: no [[key]]",
        ),
        (
            &format!("{zone}serial_policy = \"sometimes\"\n"),
            "key `serial_policy`",
        ),
        (
            "[[key]]\nname = \"k.\"\nalgorithm = \"hmac-md5\"\nsecret = \"AAAA\"\n",
            "key \"k.\": key `algorithm`",
        ),
        (
            &format!("{zone}colour = \"blue\"\n"),
            "zone \"a.test.\": unknown field `colour`",
        ),
    ];
    for (i, (cfg, want)) in cases.iter().enumerate() {
        let f = format!("c{i}.toml");
        std::fs::write(dir.path().join(&f), cfg).unwrap();
        let (code, _, err) = tandem(&["serve", "--config", &f], dir.path());
        assert_ne!(code, 0, "case {i}");
        assert!(err.contains(&f), "case {i}: file name missing in {err:?}");
        assert!(err.contains(want), "case {i}: wanted {want:?} in {err:?}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn serve_without_config_uses_zones_dir() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("zones")).unwrap();
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/zones/example.com.zone"),
        dir.path().join("zones/example.com.zone"),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tandem"))
        .arg("serve")
        .current_dir(dir.path())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let addr = "127.0.0.1:5353".parse().unwrap();
    let m = wait_for(
        "the embedded default to answer",
        std::time::Duration::from_secs(20),
        || {
            udp_query_timeout(
                addr,
                &query("example.com.", RecordType::SOA),
                std::time::Duration::from_millis(200),
            )
            .filter(|m| m.metadata.authoritative)
        },
    );
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(m.answers.len(), 1);
}

#[test]
fn example_configs_are_valid() {
    // Integration tests run in the package root, where the example's relative paths point.
    let c = tandem::config::load(std::path::Path::new("examples/primary.toml"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.zones.len(), 1);
    assert_eq!(c.keys.len(), 1);
    let c = tandem::config::load(std::path::Path::new("examples/secondary.toml"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.zones[0].role, tandem::config::Role::Secondary);
}

#[test]
fn the_xot_example_pair_is_valid_with_certificates_in_place() {
    let pki = common::tls::Pki::new();
    pki.issue("server", &["primary.example.com", "127.0.0.1"]);
    let dir = pki.dir.path().display().to_string();
    let zones = concat!(env!("CARGO_MANIFEST_DIR"), "/zones/");
    let text = |f: &str| {
        std::fs::read_to_string(f)
            .unwrap()
            .replace("\"tls/", &format!("\"{dir}/"))
            .replace("\"zones/", &format!("\"{zones}"))
    };
    let p = tandem::config::parse(&text("examples/xot-primary.toml"), "xot-primary.toml")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        p.zones[0].transfer_tls,
        tandem::config::TransferTls::RequiredWithCertificate
    );
    let s = tandem::config::parse(&text("examples/xot-secondary.toml"), "xot-secondary.toml")
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(s.zones[0].primaries[0].tls);
    assert_eq!(s.zones[0].primaries[0].addr, p.server.tls_listen[0]);
}

#[test]
fn the_catalog_example_pair_works_together() {
    // The example files as they are, moved to free ports and absolute zone
    // paths: the consumer serves the producer's member zone.
    let (pport, cport, pctl, cctl) = (free_port(), free_port(), free_port(), free_port());
    let zones = concat!(env!("CARGO_MANIFEST_DIR"), "/zones/");
    let text = |f: &str| {
        std::fs::read_to_string(f)
            .unwrap()
            .replace("127.0.0.1:5353", &format!("127.0.0.1:{pport}"))
            .replace("127.0.0.1:5354", &format!("127.0.0.1:{cport}"))
            .replace("127.0.0.1:8053", &format!("127.0.0.1:{pctl}"))
            .replace("127.0.0.1:8054", &format!("127.0.0.1:{cctl}"))
            .replace("\"zones/", &format!("\"{zones}"))
    };
    let pdir = tempfile::tempdir().unwrap();
    let p = Tandem::start_in(
        pdir.path(),
        pport,
        &text("examples/catalog-producer.toml"),
        "catalog.example.",
    );
    let cdir = tempfile::tempdir().unwrap();
    let c = Tandem::start_in(
        cdir.path(),
        cport,
        &text("examples/catalog-consumer.toml"),
        "catalog.example.",
    );
    let serial = serial_of(p.addr, "example.com.").expect("the producer serves its member");
    wait_for(
        "the consumer to serve the member",
        std::time::Duration::from_secs(20),
        || (serial_of(c.addr, "example.com.") == Some(serial)).then_some(()),
    );
    // The member is in group "gold", whose settings allow transfers.
    let (rcode, records) = transfer(c.addr, &query("example.com.", RecordType::AXFR));
    assert_eq!(rcode, hickory_proto::op::ResponseCode::NoError);
    assert!(records.len() > 2);
}
