//! Any text in: an error, or a zone that passes the checks and reads back
//! the same from its own master-format copy.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tandem::zone::diff::content_hash;
use tandem::zone::file::write::zone_text;
use tandem::zone::load_zone_str;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let apex = b"\x07example\x04test\x00";
    let Ok(z) = load_zone_str(text, "fuzz.zone", apex) else {
        return;
    };
    assert!(
        z.record_count() >= 2,
        "a zone without its SOA and NS passed the checks"
    );
    let copy = zone_text(&z);
    let back = load_zone_str(&copy, "copy", apex)
        .unwrap_or_else(|e| panic!("own copy does not load: {e}\n{copy}"));
    assert_eq!(
        content_hash(&back),
        content_hash(&z),
        "copy differs:\n{copy}"
    );
    assert_eq!(back.serial(), z.serial());
});
