//! Inputs the fuzzers once crashed on (`fuzz/regressions/TARGET/`), replayed
//! through the same checks the fuzz targets make, so a fix stays fixed.

#[path = "../fuzz/fuzz_targets/shared.rs"]
mod shared;

use std::sync::Arc;
use tandem::secondary::{apply_all, build_full};
use tandem::xfr::reader::{Fetched, parse_messages};
use tandem::zone::load_zone_str;

const APEX: &[u8] = b"\x07example\x04test\x00";

fn inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = format!("{}/fuzz/regressions/{target}", env!("CARGO_MANIFEST_DIR"));
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| {
                    let p = e.path();
                    (p.display().to_string(), std::fs::read(&p).unwrap())
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// As fuzz_targets/transfer.rs: messages applied to the example zone, the
/// result asked everything and sent out again.
#[test]
fn transfer_regressions() {
    let base = load_zone_str(include_str!("data/example.test.zone"), "base", APEX).unwrap();
    for (file, data) in inputs("transfer") {
        let messages = shared::split_framed(data.get(1..).unwrap_or(&[]));
        let client = data
            .first()
            .is_some_and(|b| b & 1 == 1)
            .then(|| base.serial());
        let zone = match parse_messages(&messages, client, 100_000) {
            Ok(Fetched::Full(records)) => build_full(APEX, records).ok(),
            Ok(Fetched::Incremental(diffs)) => apply_all(&base, &diffs).ok(),
            _ => None,
        };
        if let Some(z) = zone {
            eprintln!("{file}");
            let z = Arc::new(z);
            shared::ask_everything(&z);
            shared::axfr_round_trip(&z);
        }
    }
}

/// As fuzz_targets/zone_query.rs: a zone from the input, asked everything
/// and sent out.
#[test]
fn zone_query_regressions() {
    for (file, data) in inputs("zone_query") {
        eprintln!("{file}");
        if let Some(z) = shared::zone_from_input(&data) {
            shared::ask_everything(&z);
            shared::axfr_round_trip(&z);
        }
    }
}
