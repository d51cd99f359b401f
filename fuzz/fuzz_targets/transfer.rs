//! Any sequence of AXFR/IXFR response messages applied to a zone: the
//! result is the old zone (an error) or a valid new version, which is then
//! queried by every name and transferred out again.
#![no_main]

#[path = "shared.rs"]
mod shared;

use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;
use tandem::secondary::{apply_all, build_full};
use tandem::xfr::reader::{Fetched, parse_messages};
use tandem::zone::{Zone, load_zone_str};

const APEX: &[u8] = b"\x07example\x04test\x00";
static BASE: LazyLock<Zone> = LazyLock::new(|| {
    load_zone_str(
        include_str!("../../tests/data/example.test.zone"),
        "base",
        APEX,
    )
    .unwrap()
});

fn check(z: Zone) {
    if z.name_count() <= 200 {
        let z = std::sync::Arc::new(z);
        shared::ask_everything(&z);
        shared::axfr_round_trip(&z);
    }
}

fuzz_target!(|data: &[u8]| {
    // Messages separated as on TCP: 2-byte length, then the message.
    let messages = shared::split_framed(data.get(1..).unwrap_or(&[]));
    let client = data
        .first()
        .is_some_and(|b| b & 1 == 1)
        .then(|| BASE.serial());
    match parse_messages(&messages, client, 100_000) {
        Ok(Fetched::Full(records)) => {
            if let Ok(z) = build_full(APEX, records) {
                assert!(z.record_count() >= 2);
                check(z);
            }
        }
        Ok(Fetched::Incremental(diffs)) => {
            if let Ok(z) = apply_all(&BASE, &diffs) {
                assert!(z.record_count() >= 2);
                assert!(z.apex().get(tandem::zone::rtype::SOA).is_some());
                check(z);
            }
        }
        Ok(Fetched::UpToDate) | Err(_) => {}
    }
});
