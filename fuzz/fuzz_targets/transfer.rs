//! Any sequence of AXFR/IXFR response messages applied to a zone: the
//! result is the old zone (an error) or a valid new version.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;
use tandem::secondary::xfr_in::{Fetched, parse_messages};
use tandem::secondary::{apply_all, build_full};
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

fuzz_target!(|data: &[u8]| {
    // Messages separated as on TCP: 2-byte length, then the message.
    let mut messages = Vec::new();
    let mut rest = data.get(1..).unwrap_or(&[]);
    while rest.len() >= 2 {
        let len = u16::from_be_bytes([rest[0], rest[1]]) as usize;
        let end = (2 + len).min(rest.len());
        messages.push(rest[2..end].to_vec());
        rest = &rest[end..];
    }
    let client = data
        .first()
        .is_some_and(|b| b & 1 == 1)
        .then(|| BASE.serial());
    match parse_messages(&messages, client, 100_000) {
        Ok(Fetched::Full(records)) => {
            if let Ok(z) = build_full(APEX, records) {
                assert!(z.record_count() >= 2);
            }
        }
        Ok(Fetched::Incremental(diffs)) => {
            if let Ok(z) = apply_all(&BASE, &diffs) {
                assert!(z.record_count() >= 2);
                assert!(z.apex().get(tandem::zone::rtype::SOA).is_some());
            }
        }
        Ok(Fetched::UpToDate) | Err(_) => {}
    }
});
