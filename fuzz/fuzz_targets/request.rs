//! Any bytes in: the response (if any) parses and fits the size allowed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::{Arc, LazyLock};
use tandem::catalog::{Catalog, Served};
use tandem::query::Transport;
use tandem::server::dispatch::{Options, answer};
use tandem::zone::{load_zone_str, name};

static CATALOG: LazyLock<Catalog> = LazyLock::new(|| {
    let zones = [
        (
            "example.test.",
            include_str!("../../tests/data/example.test.zone"),
        ),
        (
            "child.example.test.",
            include_str!("../../tests/data/child.example.test.zone"),
        ),
        (
            "signed.test.",
            include_str!("../../tests/data/signed.test.zone"),
        ),
    ];
    Catalog::new(
        zones
            .iter()
            .map(|(origin, text)| {
                let apex = name::parse_absolute(origin).unwrap();
                Served::standalone(Arc::new(load_zone_str(text, "fuzz", &apex).unwrap()))
            })
            .collect(),
    )
});
static OPTS: LazyLock<Options> = LazyLock::new(Options::default);

fuzz_target!(|data: &[u8]| {
    let tcp = data.first().is_some_and(|b| b & 1 == 1);
    let req = data.get(1..).unwrap_or(&[]);
    let mut out = vec![0u8; 65535];
    let tr = if tcp { Transport::Tcp } else { Transport::Udp };
    let Some(len) = answer(
        &CATALOG,
        req,
        &mut out,
        tr,
        "127.0.0.1".parse().unwrap(),
        &OPTS,
    ) else {
        return;
    };
    let resp = &out[..len];
    assert!(len >= 12 && resp[2] & 0x80 != 0, "a response");
    assert_eq!(&resp[..2], &req[..2], "the request's ID");
    if !tcp {
        let limit = match tandem::query::request::parse_request(req) {
            Ok(r) => r
                .edns
                .map(|e| (e.payload as usize).clamp(512, 1232))
                .unwrap_or(512),
            Err(_) => 512,
        };
        assert!(
            len <= limit,
            "UDP answer of {len} bytes over the limit {limit}"
        );
    }
    if let Err(e) = hickory_proto::op::Message::from_vec(resp) {
        panic!("unparseable response {resp:02x?}: {e}");
    }
});
