//! Applying a 10-record IXFR difference to a 1M-name zone: time per apply
//! and peak memory against the steady state (`cargo bench --bench ixfr_apply`).
//! The difference must not copy the zone: only touched shards are rebuilt.
//!
//! Then the same zone NSEC3-signed (apex DNSKEY and NSEC3PARAM, no salt, 0
//! iterations, an NSEC3 per name at its real hash; no RRSIGs: the store
//! checks no signature): the time to build the ordered view of the NSEC3
//! hashes at load, and a 10-record change that deletes five NSEC3 owners
//! and adds five, which must update the view, not rebuild it.
//! `NAMES` sets the zone size (1,000,000).

use std::fmt::Write as _;
use std::time::Instant;
use tandem::zone::denial::{self, Denial};
use tandem::zone::diff::Rr;
use tandem::zone::{Zone, load_zone_str, name};

const APEX: &str = "bench.test.";
const NSEC3: u16 = 50;

fn status(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

fn unsigned_text(names: usize) -> String {
    let mut text = String::from(
        "$ORIGIN bench.test.\n$TTL 3600\n@ SOA ns1 hostmaster 1 7200 3600 1209600 300\n NS ns1\nns1 A 192.0.2.1\n",
    );
    for i in 0..names {
        let _ = writeln!(
            text,
            "h{i} A 10.{}.{}.{}",
            (i >> 16) & 255,
            (i >> 8) & 255,
            i & 255
        );
        if i % 2 == 0 {
            let _ = writeln!(text, " AAAA 2001:db8::{:x}", i & 0xffff);
        }
    }
    text
}

/// The RFC 5155 hash of `owner` (relative to the apex) with no salt and no
/// extra iteration, base32hex, lower case.
fn nsec3_label(owner: &str) -> String {
    let full = if owner == "@" {
        APEX.to_string()
    } else {
        format!("{owner}.{APEX}")
    };
    let wire = name::parse_absolute(&full).unwrap().to_ascii_lowercase();
    let h = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &wire);
    data_encoding::BASE32HEX_NOPAD
        .encode(h.as_ref())
        .to_ascii_lowercase()
}

/// `unsigned_text` plus an NSEC3 chain (each owner names the next hash)
/// and, when `signed`, the apex DNSKEY that makes the zone signed: without
/// it the same records load with no ordered view.
fn nsec3_text(names: usize, signed: bool) -> String {
    let mut text = unsigned_text(names);
    if signed {
        text.push_str("@ DNSKEY 257 3 13 9Zm/7wA4BDb/lOcI3KmFSw7eGrpAlandJb1upbmSl9jJMvjfLCiF42bdwoCtt+veYxjyH/0gFac+Iu6kvyHPrw==\n");
    }
    text.push_str("@ NSEC3PARAM 1 0 0 -\n");
    let mut chain: Vec<(String, &str)> = vec![
        (nsec3_label("@"), "SOA NS DNSKEY NSEC3PARAM"),
        (nsec3_label("ns1"), "A"),
    ];
    for i in 0..names {
        let types = if i % 2 == 0 { "A AAAA" } else { "A" };
        chain.push((nsec3_label(&format!("h{i}")), types));
    }
    chain.sort();
    for (k, (h, types)) in chain.iter().enumerate() {
        let next = &chain[(k + 1) % chain.len()].0;
        let _ = writeln!(text, "{h} NSEC3 1 0 0 - {next} {types}");
    }
    text
}

fn load(text: &str) -> (Zone, f64) {
    let apex = name::parse_absolute(APEX).unwrap();
    let started = Instant::now();
    let zone = load_zone_str(text, "bench", &apex).unwrap();
    (zone, started.elapsed().as_secs_f64())
}

fn view_len(zone: &Zone) -> usize {
    match zone.denial() {
        Some(Denial::Nsec3 { hashes, .. }) | Some(Denial::Nsec(hashes)) => hashes.len(),
        None => 0,
    }
}

fn with_serial(zone: &Zone, serial: u32) -> Rr {
    let mut soa = zone.soa_rr();
    let at = soa.rdata.len() - 20;
    soa.rdata[at..at + 4].copy_from_slice(&serial.to_be_bytes());
    soa
}

/// One round's change: (deleted, added), and the (deleted, added) that
/// undoes what the next round's picks would collide with.
type Change = (Vec<Rr>, Vec<Rr>, Vec<Rr>, Vec<Rr>);

/// 20 rounds of `change` and its undo; the apply times in ms (sorted), the
/// final zone, and the RSS before and the peak during the applies.
fn applies(mut zone: Zone, change: impl Fn(u32, &Zone) -> Change) -> (Vec<f64>, Zone, u64, u64) {
    tandem::catalog::publish::trim_heap();
    let steady = status("VmRSS:");
    // Reset the peak so that it measures the applies only.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let mut times = Vec::new();
    for round in 0..20u32 {
        let (deleted, added, undo_deleted, undo_added) = change(round, &zone);
        let serial = zone.serial() + 1;
        let soa = with_serial(&zone, serial);
        let t = Instant::now();
        let next = zone.apply(&deleted, &added, &soa).unwrap();
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(view_len(&next), view_len(&zone));
        zone = next
            .apply(&undo_deleted, &undo_added, &with_serial(&next, serial + 1))
            .unwrap();
    }
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (times, zone, steady, status("VmHWM:"))
}

fn report(what: &str, names: usize, (times, _, steady, peak): &(Vec<f64>, Zone, u64, u64)) {
    println!(
        "{what} on {} names: median {:.2} ms, max {:.2} ms; RSS steady {} MB, peak during applies {} MB ({:.2}x)",
        names,
        times[times.len() / 2],
        times[times.len() - 1],
        steady / 1024,
        peak / 1024,
        *peak as f64 / *steady as f64
    );
}

fn owner(name: &str) -> Box<[u8]> {
    name::parse_absolute(&format!("{name}.{APEX}"))
        .unwrap()
        .into_boxed_slice()
}

/// Five names lose their A record for another one; five new names appear.
fn unsigned_change(names: usize) -> impl Fn(u32, &Zone) -> Change {
    move |round, _| {
        let a = |owner: Box<[u8]>, rdata: [u8; 4]| Rr {
            owner,
            rtype: 1,
            ttl: 3600,
            rdata: rdata.to_vec().into(),
        };
        let picks: Vec<usize> = (0..5)
            .map(|k| (k * 199_999 + round as usize * 7919) % names)
            .collect();
        let deleted: Vec<Rr> = picks
            .iter()
            .map(|&i| {
                let b = [10, (i >> 16) as u8, (i >> 8) as u8, i as u8];
                a(owner(&format!("h{i}")), b)
            })
            .collect();
        let added: Vec<Rr> = picks
            .iter()
            .map(|&i| a(owner(&format!("h{i}")), [10, 9, 9, 1]))
            .chain((0..5).map(|k| a(owner(&format!("new{round}-{k}")), [10, 9, 9, 2])))
            .collect();
        // Put the deleted records back for the next round's picks.
        (deleted.clone(), added.clone(), added[..5].to_vec(), deleted)
    }
}

/// Five NSEC3 owners go (those of five existing names), five new ones come
/// (the hashes of five new names); undone after each round.
fn nsec3_change(names: usize) -> impl Fn(u32, &Zone) -> Change {
    move |round, zone| {
        let picks: Vec<usize> = (0..5)
            .map(|k| (k * 199_999 + round as usize * 7919) % names)
            .collect();
        let deleted: Vec<Rr> = picks
            .iter()
            .map(|&i| {
                let o = owner(&nsec3_label(&format!("h{i}")));
                let node = zone.find(&o).expect("the NSEC3 owner");
                let rdata = node.get(NSEC3).unwrap().iter().next().unwrap();
                Rr {
                    owner: o,
                    rtype: NSEC3,
                    ttl: 3600,
                    rdata: rdata.to_vec().into(),
                }
            })
            .collect();
        let added: Vec<Rr> = (0..5)
            .map(|k| Rr {
                owner: owner(&nsec3_label(&format!("new{round}-{k}"))),
                ..deleted[k].clone()
            })
            .collect();
        (deleted.clone(), added.clone(), added, deleted)
    }
}

fn main() {
    // The allocator settings `tandem serve` runs with.
    tandem::catalog::publish::tune_malloc();
    let names: usize = std::env::var("NAMES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);

    let (zone, secs) = load(&unsigned_text(names));
    println!(
        "loaded {} names, {} records in {:.2} s",
        zone.name_count(),
        zone.record_count(),
        secs
    );
    let unsigned = applies(zone, unsigned_change(names));
    report("10-record IXFR apply", names, &unsigned);
    drop(unsigned);

    // The same records with and without the DNSKEY that makes the load
    // build the ordered view; best of 3 loads each.
    let mut best = [f64::MAX; 2];
    let mut signed = None;
    for _ in 0..3 {
        for (k, is_signed) in [(0, false), (1, true)] {
            let text = nsec3_text(names, is_signed);
            let (zone, secs) = load(&text);
            drop(text);
            assert_eq!(zone.is_signed(), is_signed);
            best[k] = best[k].min(secs);
            if is_signed {
                signed = Some(zone);
            }
        }
        tandem::catalog::publish::trim_heap();
    }
    let zone = signed.unwrap();
    let t = Instant::now();
    let view = denial::index(&zone).unwrap();
    let index_secs = t.elapsed().as_secs_f64();
    assert!(view.1.is_some());
    drop(view);
    println!(
        "NSEC3-signed: {} names, {} records, {} hashes in the ordered view; load {:.2} s signed vs {:.2} s \
         for the same records unsigned ({:+.2} s, best of 3); the view alone (denial::index) {:.3} s",
        zone.name_count(),
        zone.record_count(),
        view_len(&zone),
        best[1],
        best[0],
        best[1] - best[0],
        index_secs
    );
    let signed = applies(zone, nsec3_change(names));
    report(
        "10-record IXFR apply, NSEC3-signed (5 NSEC3 owners out, 5 in)",
        names,
        &signed,
    );
}
