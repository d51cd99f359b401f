//! Counters for `/metrics` (rendered by `ops::metrics`). The query path
//! counts into slots spread over cache lines, picked per thread (a worker
//! shares a slot only when there are more workers than slots); everything
//! else is rare enough for plain atomics.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

/// Query types counted by name; everything else is "other".
pub const QTYPES: &[(u16, &str)] = &[
    (1, "A"),
    (2, "NS"),
    (5, "CNAME"),
    (6, "SOA"),
    (12, "PTR"),
    (15, "MX"),
    (16, "TXT"),
    (28, "AAAA"),
    (33, "SRV"),
    (43, "DS"),
    (48, "DNSKEY"),
    (64, "SVCB"),
    (65, "HTTPS"),
    (251, "IXFR"),
    (252, "AXFR"),
    (255, "ANY"),
    (257, "CAA"),
];
pub const QT: usize = 18;
/// rcodes 0..=10 by number, then BADVERS/BADSIG (16), then other.
pub const RC: usize = 13;
const SLOTS: usize = 4;

pub const RCODE_NAMES: [&str; RC] = [
    "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "YXDOMAIN", "YXRRSET",
    "NXRRSET", "NOTAUTH", "NOTZONE", "BADVERS", "OTHER",
];

#[repr(align(64))]
struct Slot([AtomicU64; 2 * RC * QT]);

pub struct Metrics {
    queries: [Slot; SLOTS],
    pub transfers_out: [[AtomicU64; 2]; 2],
    pub transfer_out_bytes: [AtomicU64; 2],
    pub transfers_in: [[AtomicU64; 2]; 2],
    pub transfer_in_bytes: [AtomicU64; 2],
    pub notify_sent: AtomicU64,
    pub notify_acked: AtomicU64,
    pub notify_failed: AtomicU64,
    pub notify_received: AtomicU64,
    pub notify_refused: AtomicU64,
    pub reload_failures: AtomicU64,
    /// Seconds from a new version's publication to a follower's transfer of it.
    pub propagation: Histogram,
    /// Seconds from a new version's publication until every listed follower
    /// was confirmed serving it.
    pub convergence: Histogram,
    next_slot: AtomicUsize,
}

pub static METRICS: LazyLock<Metrics> = LazyLock::new(|| Metrics {
    queries: std::array::from_fn(|_| Slot(std::array::from_fn(|_| AtomicU64::new(0)))),
    transfers_out: Default::default(),
    transfer_out_bytes: Default::default(),
    transfers_in: Default::default(),
    transfer_in_bytes: Default::default(),
    notify_sent: AtomicU64::new(0),
    notify_acked: AtomicU64::new(0),
    notify_failed: AtomicU64::new(0),
    notify_received: AtomicU64::new(0),
    notify_refused: AtomicU64::new(0),
    reload_failures: AtomicU64::new(0),
    propagation: Histogram::new(&[
        0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
    ]),
    convergence: Histogram::new(&[
        0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
    ]),
    next_slot: AtomicUsize::new(0),
});

thread_local! {
    static SLOT: usize = METRICS.next_slot.fetch_add(1, Relaxed) % SLOTS;
}

/// A counter the query path bumps from several threads: one cache line per
/// slot, threads spread over the slots (see the module comment).
#[derive(Debug, Default)]
pub struct SlottedCounter([Padded; SLOTS]);

#[derive(Debug, Default)]
#[repr(align(64))]
struct Padded(AtomicU64);

impl SlottedCounter {
    #[inline]
    pub fn add(&self) {
        SLOT.with(|&s| self.0[s].0.fetch_add(1, Relaxed));
    }

    pub fn get(&self) -> u64 {
        self.0.iter().map(|p| p.0.load(Relaxed)).sum()
    }
}

pub const AXFR: usize = 0;
pub const IXFR: usize = 1;
pub const OK: usize = 0;
pub const FAILED: usize = 1;

fn qtype_index(t: u16) -> usize {
    QTYPES.iter().position(|&(c, _)| c == t).unwrap_or(QT - 1)
}

fn rcode_index(rc: u16) -> usize {
    match rc {
        0..=10 => rc as usize,
        16 => 11,
        _ => 12,
    }
}

/// Counts one answered query from its response bytes (question echoed).
#[inline]
pub fn count_response(tcp: bool, resp: &[u8]) {
    if resp.len() < 12 {
        return;
    }
    let mut i = 12;
    let mut qtype = 0;
    if resp[5] == 1 {
        while i < resp.len() && resp[i] != 0 && resp[i] < 64 {
            i += resp[i] as usize + 1;
        }
        if let Some(t) = resp.get(i + 1..i + 3) {
            qtype = u16::from_be_bytes([t[0], t[1]]);
        }
    }
    let rc = (resp[3] & 0xf) as u16;
    let idx = (tcp as usize * RC + rcode_index(rc)) * QT + qtype_index(qtype);
    SLOT.with(|&s| METRICS.queries[s].0[idx].fetch_add(1, Relaxed));
}

impl Metrics {
    /// Queries answered over TCP (or UDP) with rcode index `rc` and query
    /// type index `qt`, summed over the worker slots.
    pub fn queries(&self, tcp: bool, rc: usize, qt: usize) -> u64 {
        let idx = (tcp as usize * RC + rc) * QT + qt;
        self.queries.iter().map(|s| s.0[idx].load(Relaxed)).sum()
    }
}

pub fn transfer_out(kind: usize, ok: bool, bytes: u64) {
    METRICS.transfers_out[kind][if ok { OK } else { FAILED }].fetch_add(1, Relaxed);
    METRICS.transfer_out_bytes[kind].fetch_add(bytes, Relaxed);
}

pub fn transfer_in(kind: usize, ok: bool, bytes: u64) {
    METRICS.transfers_in[kind][if ok { OK } else { FAILED }].fetch_add(1, Relaxed);
    METRICS.transfer_in_bytes[kind].fetch_add(bytes, Relaxed);
}

pub struct Histogram {
    bounds: Vec<f64>,
    counts: Vec<AtomicU64>,
    sum_micros: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    fn new(bounds: &[f64]) -> Histogram {
        Histogram {
            bounds: bounds.to_vec(),
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_micros: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, secs: f64) {
        let i = self
            .bounds
            .iter()
            .position(|&b| secs <= b)
            .unwrap_or(self.bounds.len());
        self.counts[i].fetch_add(1, Relaxed);
        self.sum_micros.fetch_add((secs * 1e6) as u64, Relaxed);
        self.count.fetch_add(1, Relaxed);
    }

    pub fn render(&self, name: &str, out: &mut String) {
        use std::fmt::Write;
        let mut cumulative = 0;
        for (i, b) in self.bounds.iter().enumerate() {
            cumulative += self.counts[i].load(Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{b}\"}} {cumulative}");
        }
        cumulative += self.counts[self.bounds.len()].load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
        let _ = writeln!(
            out,
            "{name}_sum {}",
            self.sum_micros.load(Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count {}", self.count.load(Relaxed));
    }
}
