//! A zone built from fuzzed records, then queried and transferred: the
//! combination the per-parser targets missed (a zone line `x NS \# 2 0501`
//! once loaded and killed every UDP worker with two queries).
//!
//! Input: the first byte picks the form. Even: the rest is zone-file text
//! after a fixed SOA and NS. Odd: the rest is records in wire form, each
//! `labels(1) [len label]… type(2) rdlen(1) rdata`, added to the builder
//! (which refuses what its type table rejects).
#![no_main]

#[path = "shared.rs"]
mod shared;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(zone) = shared::zone_from_input(data) {
        shared::ask_everything(&zone);
        shared::axfr_round_trip(&zone);
    }
});
