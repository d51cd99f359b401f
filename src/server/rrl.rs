//! Response-rate limiting (as BIND's and NSD's RRL): answers to one client
//! prefix are limited to a rate; over it, answers are dropped, except every
//! `slip`-th which goes out truncated (TC=1, no data) so that a real client
//! retries over TCP while a spoofed victim gets nothing worth amplifying.
//! Off unless `[server] rrl_responses_per_second` is set. Each UDP worker
//! keeps its own fixed-size table: SO_REUSEPORT sends one client to one
//! worker.

use std::net::IpAddr;
use std::time::Instant;

pub use crate::config::RrlConfig;

pub enum Verdict {
    Send,
    /// Send a truncated, empty answer instead.
    Slip,
    Drop,
}

/// One client network's budget. A slot in a fixed table: a network that
/// hashes to a taken slot evicts its holder (as NSD's RRL does), so memory
/// is bounded and each packet costs O(1) whatever the attacker sends.
#[derive(Clone, Copy, Default)]
struct Bucket {
    prefix: [u8; 8],
    tokens: f32,
    /// Milliseconds since the table was made, when last touched.
    last_ms: u32,
    dropped: u32,
}

pub struct Rrl {
    cfg: RrlConfig,
    table: Box<[Bucket]>,
    hasher: foldhash::fast::RandomState,
    start: Instant,
}

/// Slots per UDP worker (24 bytes each: 1.5 MiB).
const SLOTS: usize = 1 << 16;

/// The client's /24 (IPv4) or /56 (IPv6): one network, one budget.
fn prefix(ip: IpAddr) -> [u8; 8] {
    let mut k = [0u8; 8];
    match ip {
        IpAddr::V4(v4) => {
            k[0] = 4;
            k[1..4].copy_from_slice(&v4.octets()[..3]);
        }
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
            table: vec![Bucket::default(); SLOTS].into_boxed_slice(),
            hasher: Default::default(),
            start: Instant::now(),
        }
    }

    pub fn check(&mut self, client: IpAddr) -> Verdict {
        use std::hash::BuildHasher;
        let now = self.start.elapsed().as_millis() as u32;
        let rate = self.cfg.responses_per_second as f32;
        let key = prefix(client);
        let slot = self.hasher.hash_one(key) as usize & (SLOTS - 1);
        let b = &mut self.table[slot];
        if b.prefix != key {
            *b = Bucket {
                prefix: key,
                tokens: rate,
                last_ms: now,
                dropped: 0,
            };
        }
        let elapsed = now.wrapping_sub(b.last_ms) as f32 / 1000.0;
        b.tokens = (b.tokens + elapsed * rate).min(rate);
        b.last_ms = now;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_of_networks_costs_no_memory_and_the_rate_holds() {
        let mut r = Rrl::new(RrlConfig {
            responses_per_second: 5,
            slip: 2,
        });
        // A million distinct /24s: the table does not grow.
        for i in 0..1_000_000u32 {
            let _ = r.check(IpAddr::from((i << 8).to_be_bytes()));
        }
        assert_eq!(r.table.len(), SLOTS);
        let me: IpAddr = "198.51.100.7".parse().unwrap();
        let sent = (0..100)
            .filter(|_| matches!(r.check(me), Verdict::Send))
            .count();
        assert!((5..=6).contains(&sent), "{sent}");
    }
}
