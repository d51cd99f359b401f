//! Log lines a remote packet can trigger, rate-limited per call site: at
//! most `PER_SECOND` a second go out, the rest are counted and the count
//! rides on the next line that goes out (`suppressed=N`) and in /metrics
//! (`tandem_log_suppressed_total`). Whoever can send packets cannot flood
//! the log or slow the server down by making it write.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};

/// Lines per second per call site.
const PER_SECOND: u32 = 10;

/// Lines suppressed by every limiter, for /metrics.
pub static SUPPRESSED_TOTAL: AtomicU64 = AtomicU64::new(0);

pub struct Limiter {
    second: AtomicU64,
    count: AtomicU32,
    suppressed: AtomicU64,
}

impl Limiter {
    pub const fn new() -> Self {
        Limiter {
            second: AtomicU64::new(0),
            count: AtomicU32::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// `Some(lines suppressed since the last one out)` when this line may go out.
    pub fn allow(&self) -> Option<u64> {
        let now = crate::clock::unix_secs();
        let seen = self.second.load(Relaxed);
        if seen != now
            && self
                .second
                .compare_exchange(seen, now, Relaxed, Relaxed)
                .is_ok()
        {
            self.count.store(0, Relaxed);
        }
        if self.count.fetch_add(1, Relaxed) < PER_SECOND {
            Some(self.suppressed.swap(0, Relaxed))
        } else {
            self.suppressed.fetch_add(1, Relaxed);
            SUPPRESSED_TOTAL.fetch_add(1, Relaxed);
            None
        }
    }
}

impl Default for Limiter {
    fn default() -> Self {
        Self::new()
    }
}

/// `tracing::event!` at `$level`, rate-limited at this call site.
#[macro_export]
macro_rules! log_limited {
    ($level:expr, $($arg:tt)+) => {{
        static LIMIT: $crate::ratelog::Limiter = $crate::ratelog::Limiter::new();
        if let Some(suppressed) = LIMIT.allow() {
            if suppressed > 0 {
                tracing::event!($level, suppressed, $($arg)+);
            } else {
                tracing::event!($level, $($arg)+);
            }
        }
    }};
}

#[macro_export]
macro_rules! warn_limited {
    ($($arg:tt)+) => { $crate::log_limited!(tracing::Level::WARN, $($arg)+) };
}

#[macro_export]
macro_rules! info_limited {
    ($($arg:tt)+) => { $crate::log_limited!(tracing::Level::INFO, $($arg)+) };
}

#[macro_export]
macro_rules! error_limited {
    ($($arg:tt)+) => { $crate::log_limited!(tracing::Level::ERROR, $($arg)+) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_second_and_counts_the_rest() {
        let l = Limiter::new();
        let out = (0..100).filter(|_| l.allow().is_some()).count();
        // One or two seconds may have started during the loop.
        assert!((10..=20).contains(&out), "{out}");
        assert!(l.suppressed.load(Relaxed) >= 80);
    }
}
