//! SIGHUP re-reads zone files; a broken file keeps the previous version
//! serving and the log names FILE:LINE.

mod common;

use common::*;
use hickory_proto::rr::{RData, RecordType};
use std::time::Duration;

fn serial(t: &Tandem) -> u32 {
    match &t.q("hup.test.", RecordType::SOA).answers[0].data {
        RData::SOA(s) => s.serial,
        other => panic!("{other:?}"),
    }
}

#[test]
fn sighup_reloads_and_bad_files_keep_the_old_version() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hup.test.zone");
    std::fs::write(&file, zone_text("hup.test.", 1, "")).unwrap();
    let cfg = format!(
        "[server]\nlisten = [\"127.0.0.1:{{PORT}}\"]\n[[zone]]\nname = \"hup.test.\"\nrole = \"primary\"\nfile = \"{}\"\n",
        file.display()
    );
    let t = Tandem::start(&cfg, "hup.test.");
    assert_eq!(serial(&t), 1);
    let hup = || t.signal("-HUP");

    std::fs::write(&file, zone_text("hup.test.", 2, "new A 192.0.2.2\n")).unwrap();
    hup();
    wait_for("serial 2", Duration::from_secs(10), || {
        (serial(&t) == 2).then_some(())
    });
    assert_eq!(t.q("new.hup.test.", RecordType::A).answers.len(), 1);

    // Line 6 is broken: the old version keeps serving, the log says where.
    std::fs::write(
        &file,
        zone_text("hup.test.", 3, "ok A 192.0.2.3\nbad A 192.0.2.999\n"),
    )
    .unwrap();
    hup();
    let want = format!("{}:7: A record: bad IPv4 address", file.display());
    wait_for("the error in the log", Duration::from_secs(10), || {
        t.log_text().contains(&want).then_some(())
    });
    assert_eq!(serial(&t), 2);
    assert_eq!(t.q("new.hup.test.", RecordType::A).answers.len(), 1);
    assert!(t.q("ok.hup.test.", RecordType::A).answers.is_empty());
}
