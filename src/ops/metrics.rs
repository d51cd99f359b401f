//! The /metrics text (Prometheus exposition format): the process-wide
//! counters of `stats`, the heap, panics, suppressed log lines, and each
//! zone's state, serial, errors and followers.

use crate::stats::{METRICS, QT, QTYPES, RCODE_NAMES};
use std::sync::atomic::Ordering::Relaxed;

/// The process-wide counters.
fn counters(out: &mut String) {
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
                let v = m.queries(tr == 1, rc, qt);
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
    let _ = writeln!(
        out,
        "# HELP tandem_zone_convergence_seconds From a new version's publication until every listed follower was confirmed serving it."
    );
    let _ = writeln!(out, "# TYPE tandem_zone_convergence_seconds histogram");
    m.convergence.render("tandem_zone_convergence_seconds", out);
}

/// Everything /metrics shows: the process-wide counters, the heap, and
/// each zone's gauges.
pub fn render(zones: &[std::sync::Arc<crate::status::ZoneStatus>]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(8192);
    counters(&mut out);
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
    if let Some(h) = crate::catalog::publish::heap() {
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
    let _ = writeln!(
        out,
        "# HELP tandem_zone_followers Listed followers by what the last check found.\n# TYPE tandem_zone_followers gauge"
    );
    for z in zones {
        for (state, n) in crate::status::Check::ALL.iter().zip(z.follower_states()) {
            let _ = writeln!(
                out,
                "tandem_zone_followers{{zone=\"{}\",state=\"{}\"}} {n}",
                z.name,
                state.name()
            );
        }
    }
    out
}
