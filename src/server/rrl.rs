//! Response-rate limiting (as BIND's and NSD's RRL): answers to one client
//! prefix are limited to a rate; over it, answers are dropped, except every
//! `slip`-th which goes out truncated (TC=1, no data) so that a real client
//! retries over TCP while a spoofed victim gets nothing worth amplifying.
//! Off unless `[server] rrl_responses_per_second` is set. Each UDP worker
//! keeps its own table: SO_REUSEPORT sends one client to one worker.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

#[derive(Debug, Clone, Copy)]
pub struct RrlConfig {
    pub responses_per_second: u32,
    pub slip: u32,
}

pub enum Verdict {
    Send,
    /// Send a truncated, empty answer instead.
    Slip,
    Drop,
}

struct Bucket {
    tokens: f64,
    last: Instant,
    dropped: u32,
}

pub struct Rrl {
    cfg: RrlConfig,
    table: HashMap<[u8; 8], Bucket>,
}

/// Table size past which idle entries are swept.
const MAX_ENTRIES: usize = 100_000;

/// The client's /24 (IPv4) or /56 (IPv6): one network, one budget.
fn prefix(ip: IpAddr) -> [u8; 8] {
    let mut k = [0u8; 8];
    match ip {
        IpAddr::V4(v4) => k[..3].copy_from_slice(&v4.octets()[..3]),
        IpAddr::V6(v6) => {
            k[0] = 6;
            k[1..8].copy_from_slice(&v6.octets()[..7]);
        }
    }
    k
}

impl Rrl {
    pub fn new(cfg: RrlConfig) -> Rrl {
        Rrl {
            cfg,
            table: HashMap::new(),
        }
    }

    pub fn check(&mut self, client: IpAddr) -> Verdict {
        let now = Instant::now();
        let rate = self.cfg.responses_per_second as f64;
        if self.table.len() > MAX_ENTRIES {
            self.table
                .retain(|_, b| now.duration_since(b.last).as_secs() < 15);
        }
        let b = self.table.entry(prefix(client)).or_insert(Bucket {
            tokens: rate,
            last: now,
            dropped: 0,
        });
        b.tokens = (b.tokens + now.duration_since(b.last).as_secs_f64() * rate).min(rate);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            return Verdict::Send;
        }
        b.dropped = b.dropped.wrapping_add(1);
        if self.cfg.slip > 0 && b.dropped.is_multiple_of(self.cfg.slip) {
            Verdict::Slip
        } else {
            Verdict::Drop
        }
    }
}

/// Turns a response into its truncated form: header and question, TC=1.
pub fn truncate(resp: &mut [u8], len: usize) -> usize {
    if len < 12 {
        return len;
    }
    let mut end = 12;
    if resp[5] == 1 {
        while end < len && resp[end] != 0 && resp[end] < 64 {
            end += resp[end] as usize + 1;
        }
        end = (end + 5).min(len);
    }
    resp[2] |= 0x02;
    resp[6..12].fill(0);
    end
}
