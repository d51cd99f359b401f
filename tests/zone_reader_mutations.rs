//! The zone-file reader never panics: mutated zone files give a zone or a
//! FILE:LINE error, nothing else.

mod common;

use common::*;
use tandem::zone::load_zone_str;

const TOKENS: &[&str] = &[
    "(",
    ")",
    "\"",
    ";",
    "\\",
    "\\#",
    "$",
    "${",
    "}",
    "@",
    ".",
    "..",
    "*",
    "\n",
    " ",
    "\t",
    "$ORIGIN",
    "$TTL",
    "$GENERATE",
    "$INCLUDE",
    "IN",
    "TYPE65535",
    "\\255",
    "\\999",
    "0",
    "4294967296",
    "-",
    "=",
    ",",
    "RRSIG",
    "NSEC3",
    "HTTPS",
    "alpn=",
];

#[test]
fn mutated_zone_files_load_or_fail_cleanly() {
    let seeds: Vec<String> = [
        "example.test.zone",
        "signed.test.zone",
        "2.0.192.in-addr.arpa.zone",
    ]
    .iter()
    .map(|f| {
        std::fs::read_to_string(data(f))
            .unwrap()
            .replace("$INCLUDE", ";")
    })
    .collect();
    let mut rng = Rng(7);
    let mut loaded = 0;
    for i in 0..20_000 {
        let mut text = seeds[i % seeds.len()].clone().into_bytes();
        for _ in 0..1 + rng.below(6) {
            let at = rng.below(text.len());
            match rng.below(3) {
                0 => text[at] = rng.next() as u8,
                1 => {
                    let t = TOKENS[rng.below(TOKENS.len())].as_bytes();
                    text.splice(at..at, t.iter().copied());
                }
                _ => {
                    let end = (at + rng.below(40)).min(text.len());
                    text.drain(at..end);
                }
            }
        }
        let text = String::from_utf8_lossy(&text);
        match load_zone_str(&text, "m.zone", b"\x07example\x04test\x00") {
            Ok(_) => loaded += 1,
            Err(e) => assert!(e.to_string().starts_with("m.zone"), "{e}"),
        }
    }
    assert!(loaded > 0);
}
