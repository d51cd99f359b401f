//! Counters for `/metrics`. The query path counts into per-worker slots
//! (no shared cache line between UDP workers); everything else is rare
//! enough for plain atomics.

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
const QT: usize = 18;
/// rcodes 0..=10 by number, then BADVERS/BADSIG (16), then other.
const RC: usize = 13;
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
    next_slot: AtomicUsize::new(0),
});

thread_local! {
    static SLOT: usize = METRICS.next_slot.fetch_add(1, Relaxed) % SLOTS;
}

/// A counter the query path bumps from several threads: one cache line per
/// slot, so the UDP workers never share one.
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

    fn render(&self, name: &str, out: &mut String) {
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

/// The process-wide counters in Prometheus text format (per-zone and
/// per-follower gauges are added by the control API).
pub fn render(out: &mut String) {
    use std::fmt::Write;
    let m = &*METRICS;
    let _ = writeln!(
        out,
        "# HELP tandem_queries_total DNS queries answered, by transport, query type and rcode."
    );
    let _ = writeln!(out, "# TYPE tandem_queries_total counter");
    for (tr, trn) in ["udp", "tcp"].iter().enumerate() {
        for (rc, rcn) in RCODE_NAMES.iter().enumerate() {
            for qt in 0..QT {
                let idx = (tr * RC + rc) * QT + qt;
                let v: u64 = m.queries.iter().map(|s| s.0[idx].load(Relaxed)).sum();
                if v > 0 {
                    let qn = QTYPES.get(qt).map(|q| q.1).unwrap_or("other");
                    let _ = writeln!(
                        out,
                        "tandem_queries_total{{transport=\"{trn}\",qtype=\"{qn}\",rcode=\"{}\"}} {v}",
                        rcn
                    );
                }
            }
        }
    }
    for (dir, counts, bytes) in [
        ("out", &m.transfers_out, &m.transfer_out_bytes),
        ("in", &m.transfers_in, &m.transfer_in_bytes),
    ] {
        let _ = writeln!(
            out,
            "# HELP tandem_transfers_{dir}_total Zone transfers {dir}, by kind and result."
        );
        let _ = writeln!(out, "# TYPE tandem_transfers_{dir}_total counter");
        for (k, kn) in ["AXFR", "IXFR"].iter().enumerate() {
            for (r, rn) in ["ok", "failed"].iter().enumerate() {
                let _ = writeln!(
                    out,
                    "tandem_transfers_{dir}_total{{kind=\"{kn}\",result=\"{rn}\"}} {}",
                    counts[k][r].load(Relaxed)
                );
            }
        }
        let _ = writeln!(out, "# TYPE tandem_transfer_{dir}_bytes_total counter");
        for (k, kn) in ["AXFR", "IXFR"].iter().enumerate() {
            let _ = writeln!(
                out,
                "tandem_transfer_{dir}_bytes_total{{kind=\"{kn}\"}} {}",
                bytes[k].load(Relaxed)
            );
        }
    }
    for (name, v, help) in [
        (
            "tandem_notify_sent_total",
            &m.notify_sent,
            "NOTIFY messages sent (retries included).",
        ),
        (
            "tandem_notify_acked_total",
            &m.notify_acked,
            "NOTIFYs a follower answered.",
        ),
        (
            "tandem_notify_failed_total",
            &m.notify_failed,
            "NOTIFYs given up after every retry.",
        ),
        (
            "tandem_notify_received_total",
            &m.notify_received,
            "NOTIFYs accepted for secondary zones.",
        ),
        (
            "tandem_notify_refused_total",
            &m.notify_refused,
            "NOTIFYs refused (source or key not allowed).",
        ),
        (
            "tandem_reload_failures_total",
            &m.reload_failures,
            "Zone files that failed to load or check.",
        ),
    ] {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
            v.load(Relaxed)
        );
    }
    let _ = writeln!(
        out,
        "# HELP tandem_propagation_seconds From a new version's publication to a follower's transfer of it."
    );
    let _ = writeln!(out, "# TYPE tandem_propagation_seconds histogram");
    m.propagation.render("tandem_propagation_seconds", out);
}

/// Everything /metrics shows: the process-wide counters, the heap, and
/// each zone's gauges.
pub fn render_all(zones: &[std::sync::Arc<crate::status::ZoneStatus>]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(8192);
    render(&mut out);
    let _ = writeln!(
        out,
        "# HELP tandem_panics_total Panics caught (and recovered from), by where.\n# TYPE tandem_panics_total counter"
    );
    for (path, name) in crate::supervise::PATHS {
        let _ = writeln!(
            out,
            "tandem_panics_total{{path=\"{name}\"}} {}",
            crate::supervise::panics(path)
        );
    }
    let _ = writeln!(
        out,
        "# HELP tandem_log_suppressed_total Log lines a remote packet triggered that the rate limit held back.\n# TYPE tandem_log_suppressed_total counter\ntandem_log_suppressed_total {}",
        crate::ratelog::SUPPRESSED_TOTAL.load(Relaxed)
    );
    if let Some(h) = crate::memory::heap() {
        let _ = writeln!(
            out,
            "# HELP tandem_heap_bytes Heap memory: in use (mapped included), held free by malloc, mapped directly.\n# TYPE tandem_heap_bytes gauge\n\
             tandem_heap_bytes{{kind=\"in_use\"}} {}\ntandem_heap_bytes{{kind=\"free\"}} {}\ntandem_heap_bytes{{kind=\"mapped\"}} {}",
            h.in_use, h.free, h.mapped
        );
    }
    let _ = writeln!(
        out,
        "# HELP tandem_zone_queries_total Queries answered from each zone.\n# TYPE tandem_zone_queries_total counter"
    );
    for z in zones {
        let _ = writeln!(
            out,
            "tandem_zone_queries_total{{zone=\"{}\"}} {}",
            z.name,
            z.queries.get()
        );
    }
    let _ = writeln!(
        out,
        "# HELP tandem_zone_serial The serial each zone serves.\n# TYPE tandem_zone_serial gauge"
    );
    for z in zones {
        if let Some(s) = z.serial() {
            let _ = writeln!(out, "tandem_zone_serial{{zone=\"{}\"}} {s}", z.name);
        }
    }
    let _ = writeln!(
        out,
        "# HELP tandem_zone_records Records in the served version.\n# TYPE tandem_zone_records gauge"
    );
    for z in zones {
        let _ = writeln!(
            out,
            "tandem_zone_records{{zone=\"{}\"}} {}",
            z.name,
            z.records()
        );
    }
    let _ = writeln!(
        out,
        "# HELP tandem_zone_state 1 for the zone's current state.\n# TYPE tandem_zone_state gauge"
    );
    for z in zones {
        let st = z.state();
        for s in crate::status::State::ALL {
            let _ = writeln!(
                out,
                "tandem_zone_state{{zone=\"{}\",state=\"{}\"}} {}",
                z.name,
                s.name(),
                u8::from(s == st)
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP tandem_zone_error 1 while the zone has a last error (see `tandem status`).\n# TYPE tandem_zone_error gauge"
    );
    for z in zones {
        let _ = writeln!(
            out,
            "tandem_zone_error{{zone=\"{}\"}} {}",
            z.name,
            u8::from(z.last_error().is_some())
        );
    }
    let _ = writeln!(
        out,
        "# HELP tandem_follower_serial The serial a follower last reached.\n# TYPE tandem_follower_serial gauge"
    );
    let mut lags = String::new();
    for z in zones {
        for (f, serial, lag) in z.follower_gauges() {
            let _ = writeln!(
                out,
                "tandem_follower_serial{{zone=\"{}\",follower=\"{f}\"}} {serial}",
                z.name
            );
            let _ = writeln!(
                lags,
                "tandem_follower_lag_serials{{zone=\"{}\",follower=\"{f}\"}} {lag}",
                z.name
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP tandem_follower_lag_serials How many serials a follower is behind.\n# TYPE tandem_follower_lag_serials gauge"
    );
    out.push_str(&lags);
    out
}
