//! Applying a 10-record IXFR difference to a 1M-name zone: time per apply
//! and peak memory against the steady state (`cargo bench --bench ixfr_apply`).
//! The difference must not copy the zone: only touched shards are rebuilt.

use std::time::Instant;
use tandem::zone::diff::Rr;
use tandem::zone::{load_zone_str, name};

fn status(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

fn main() {
    // The allocator settings `tandem serve` runs with.
    tandem::catalog::publish::tune_malloc();
    let names: usize = std::env::var("NAMES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let mut text = String::from(
        "$ORIGIN bench.test.\n$TTL 3600\n@ SOA ns1 hostmaster 1 7200 3600 1209600 300\n NS ns1\nns1 A 192.0.2.1\n",
    );
    for i in 0..names {
        text.push_str(&format!(
            "h{i} A 10.{}.{}.{}\n",
            (i >> 16) & 255,
            (i >> 8) & 255,
            i & 255
        ));
        if i % 2 == 0 {
            text.push_str(&format!(" AAAA 2001:db8::{:x}\n", i & 0xffff));
        }
    }
    let apex = name::parse_absolute("bench.test.").unwrap();
    let started = Instant::now();
    let mut zone = load_zone_str(&text, "bench", &apex).unwrap();
    drop(text);
    tandem::catalog::publish::trim_heap();
    println!(
        "loaded {} names, {} records in {:.2} s",
        zone.name_count(),
        zone.record_count(),
        started.elapsed().as_secs_f64()
    );
    let steady = status("VmRSS:");
    // Reset the peak so that it measures the applies only.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let owner = |i: usize| {
        name::parse_absolute(&format!("h{i}.bench.test."))
            .unwrap()
            .into_boxed_slice()
    };
    let a = |i: usize, last: u8| Rr {
        owner: owner(i),
        rtype: 1,
        ttl: 3600,
        rdata: vec![10, 9, 9, last].into(),
    };
    let mut times = Vec::new();
    for round in 0..20u32 {
        let picks: Vec<usize> = (0..5)
            .map(|k| (k * 199_999 + round as usize * 7919) % names)
            .collect();
        // Five names lose their A record for another one; five new names appear.
        let deleted: Vec<Rr> = picks
            .iter()
            .map(|&i| Rr {
                rdata: vec![
                    10,
                    ((i >> 16) & 255) as u8,
                    ((i >> 8) & 255) as u8,
                    (i & 255) as u8,
                ]
                .into(),
                ..a(i, 0)
            })
            .collect();
        let added: Vec<Rr> = picks
            .iter()
            .map(|&i| a(i, 1))
            .chain((0..5).map(|k| {
                Rr {
                    owner: name::parse_absolute(&format!("new{round}-{k}.bench.test."))
                        .unwrap()
                        .into(),
                    ..a(0, 2)
                }
            }))
            .collect();
        let mut soa = zone.soa_rr();
        let serial = zone.serial() + 1;
        let at = soa.rdata.len() - 20;
        soa.rdata[at..at + 4].copy_from_slice(&serial.to_be_bytes());
        let t = Instant::now();
        let next = zone.apply(&deleted, &added, &soa).unwrap();
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        // Put the deleted records back for the next round's picks.
        let restore: Vec<Rr> = added[..5].to_vec();
        let mut soa2 = next.soa_rr();
        soa2.rdata[at..at + 4].copy_from_slice(&(serial + 1).to_be_bytes());
        zone = next.apply(&restore, &deleted, &soa2).unwrap();
    }
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let peak = status("VmHWM:");
    println!(
        "10-record IXFR apply on {} names: median {:.2} ms, max {:.2} ms; RSS steady {} MB, peak during applies {} MB ({:.2}x)",
        names,
        times[times.len() / 2],
        times[times.len() - 1],
        steady / 1024,
        peak / 1024,
        peak as f64 / steady as f64
    );
}
