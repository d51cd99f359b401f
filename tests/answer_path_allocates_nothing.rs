//! The claim in ARCHITECTURE.md: answering a query (unsigned, the UDP path's
//! work between recvmmsg and sendmmsg) allocates nothing. Counted with a
//! global allocator over every kind of answer the test zones give.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;
use tandem::catalog::{Catalog, Served, ZonePolicy};
use tandem::query::Transport;
use tandem::server::dispatch::{Options, answer};
use tandem::zone::{load_zone_file, name};

struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCS.with(|a| a.set(a.get() + 1));
        }
        // SAFETY: forwarded as received.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: forwarded as received.
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static A: Counting = Counting;

fn query(qname: &str, qtype: u16, edns: bool) -> Vec<u8> {
    query_with(qname, qtype, edns, &[])
}

/// A query whose OPT carries `options` (encoded).
fn query_with(qname: &str, qtype: u16, edns: bool, options: &[u8]) -> Vec<u8> {
    let mut q = vec![0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, u8::from(edns)];
    q.extend_from_slice(&name::parse_absolute(qname).unwrap());
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&1u16.to_be_bytes());
    if edns {
        q.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0x80, 0]);
        q.extend_from_slice(&(options.len() as u16).to_be_bytes());
        q.extend_from_slice(options);
    }
    q
}

/// NSID, EXPIRE and a client cookie (RFC 5001, 7314, 7873).
const OPTIONS: &[u8] = &[0, 3, 0, 0, 0, 9, 0, 0, 0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8];

#[test]
fn answering_allocates_nothing() {
    allocates_nothing(&[
        ("example.test.", "example.test.zone"),
        ("child.example.test.", "child.example.test.zone"),
        ("signed.test.", "signed.test.zone"),
        ("2.0.192.in-addr.arpa.", "2.0.192.in-addr.arpa.zone"),
    ]);
}

/// The NSEC3 proofs (hashing, covers) allocate nothing either.
#[test]
fn answering_from_an_nsec3_zone_allocates_nothing() {
    allocates_nothing(&[("signed.test.", "nsec3.signed.test.zone")]);
}

fn allocates_nothing(zones: &[(&str, &str)]) {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/");
    let served = zones
        .iter()
        .map(|(origin, file)| {
            let apex = name::parse_absolute(origin).unwrap();
            let z = load_zone_file(std::path::Path::new(&format!("{dir}{file}")), &apex)
                .unwrap()
                .zone;
            // Nobody may transfer: a resolver's SOA query is not a
            // follower's check (that one is recorded, and allocates).
            Served {
                policy: Arc::new(ZonePolicy::default()),
                ..Served::standalone(Arc::new(z))
            }
        })
        .collect();
    let cat = Catalog::new(served);
    let opts = Options::default();
    opts.query
        .edns
        .store(Arc::new(tandem::query::edns::Settings {
            nsid: b"ns1.test"[..].into(),
            ..Default::default()
        }));
    let peer = "192.0.2.200".parse().unwrap();
    let mut names: Vec<String> = Vec::new();
    for (origin, _) in zones {
        for n in [
            "",
            "www.",
            "nx.",
            "a.b.c.",
            "*.",
            "sub.",
            "ns1.",
            "mail.",
            "alias.",
            // Below DNAMEs (example.test): synthesis, too long, a loop.
            "zz.dn.",
            "a.b.dnlong.",
            "x.dnself.",
            "dncname.",
            "x.wild.",
            "deleg.",
        ] {
            names.push(format!("{n}{origin}"));
        }
    }
    names.push("outside.invalid.".into());
    let mut queries: Vec<Vec<u8>> = names
        .iter()
        .flat_map(|n| {
            [1u16, 2, 5, 6, 15, 16, 28, 33, 43, 46, 255, 65280]
                .into_iter()
                .flat_map(move |t| [query(n, t, false), query(n, t, true)])
        })
        .collect();
    // The EDNS options too: NSID, EXPIRE, a client cookie, then the
    // server cookie that answer carried (validated, echoed).
    for n in ["example.test.", "www.example.test.", "nx.signed.test."] {
        for t in [6u16, 1] {
            let q = query_with(n, t, true, OPTIONS);
            let mut out = vec![0u8; 4096];
            let len = answer(&cat, &q, &mut out, Transport::Udp, peer, &opts).unwrap();
            let at = out[..len]
                .windows(4)
                .position(|w| w == [0, 10, 0, 24])
                .expect("a server cookie");
            let mut with_server = OPTIONS[..8].to_vec();
            with_server.extend_from_slice(&out[at..at + 28]);
            queries.push(q);
            queries.push(query_with(n, t, true, &with_server));
        }
    }
    let mut out = vec![0u8; 65535];
    let mut answered = 0;
    // Warm up: thread-local slots and lazily made statics allocate once.
    for q in &queries {
        let _ = answer(&cat, q, &mut out, Transport::Udp, peer, &opts);
    }
    COUNTING.with(|c| c.set(true));
    for q in &queries {
        for tr in [Transport::Udp, Transport::Tcp] {
            if answer(&cat, q, &mut out, tr, peer, &opts).is_some() {
                answered += 1;
            }
        }
    }
    COUNTING.with(|c| c.set(false));
    assert_eq!(answered, queries.len() * 2);
    assert_eq!(ALLOCS.with(Cell::get), 0, "allocations on the answer path");
}
