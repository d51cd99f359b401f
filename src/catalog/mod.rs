//! The set of zones being served, published as one immutable value. A zone
//! change builds a new `Catalog` sharing every other zone's `Arc` and swaps it
//! in (`publish`); the query path loads it once per batch of packets,
//! without a lock.

pub mod publish;

use crate::zone::diff::Diff;
use crate::zone::{Zone, name};
use arc_swap::ArcSwap;
use hashbrown::HashTable;
use ipnet::IpNet;
use std::hash::BuildHasher;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use tokio::sync::mpsc;

/// One served zone: its version and what goes with it.
#[derive(Clone)]
pub struct Served {
    /// The lower-cased apex.
    pub apex: Arc<[u8]>,
    /// `None` while a zone has no usable data (not loaded yet, or expired):
    /// queries for it get SERVFAIL.
    pub zone: Option<Arc<Zone>>,
    /// The journal's changes leading up to `zone` (oldest first), for IXFR.
    pub history: Arc<[Arc<Diff>]>,
    pub policy: Arc<ZonePolicy>,
    /// Where a secondary zone hears of NOTIFYs that passed the policy
    /// (RFC 1996). `None` for primary zones, which refuse NOTIFY.
    pub notify_in: Option<mpsc::UnboundedSender<IpAddr>>,
    pub status: Arc<crate::status::ZoneStatus>,
}

/// One zone's access rules, built once from its config and swapped whole
/// on reload, read by every path: who may transfer it (AXFR, IXFR, and the
/// SOA checks counted as a follower's), who may NOTIFY it, the TSIG key its
/// transfers and NOTIFYs in and out are signed with (by lower-cased wire
/// name; the secret is looked up in the keyring at each use, so a rotated
/// one applies at once), and the followers it NOTIFYs.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ZonePolicy {
    pub allow_transfer: Vec<IpNet>,
    pub allow_notify: Vec<IpNet>,
    pub key: Option<Box<[u8]>>,
    pub notify: Vec<SocketAddr>,
    /// Whether transfers must come over TLS (and with a client certificate).
    pub transfer_tls: crate::config::TransferTls,
}

impl ZonePolicy {
    pub fn from_config(zc: &crate::config::ZoneConfig) -> ZonePolicy {
        ZonePolicy {
            allow_transfer: zc.allow_transfer.clone(),
            allow_notify: zc.allow_notify.clone(),
            key: zc.transfer_key.as_deref().and_then(name::lower_wire),
            notify: zc.notify.clone(),
            transfer_tls: zc.transfer_tls,
        }
    }

    /// Does a message signed with `used` (a lower-cased wire key name, or
    /// none) satisfy the zone's key?
    pub fn key_ok(&self, used: Option<&[u8]>) -> bool {
        match (&self.key, used) {
            (None, _) => true,
            (Some(w), Some(u)) => **w == *u,
            (Some(_), None) => false,
        }
    }
}

impl Served {
    /// A zone with no data yet (answers SERVFAIL).
    pub fn empty(
        apex: &[u8],
        policy: Arc<ZonePolicy>,
        status: Arc<crate::status::ZoneStatus>,
    ) -> Served {
        Served {
            apex: apex.into(),
            zone: None,
            history: Arc::new([]),
            policy,
            notify_in: None,
            status,
        }
    }

    /// A zone served on its own, transfers allowed from anywhere (fuzzing,
    /// benchmarks and tests that drive the answer path directly).
    pub fn standalone(zone: Arc<Zone>) -> Served {
        let mut apex = zone.origin().to_vec();
        name::lowercase(&mut apex);
        let status = Arc::new(crate::status::ZoneStatus::standalone(&name::to_text(&apex)));
        let policy = Arc::new(ZonePolicy {
            allow_transfer: vec![
                "0.0.0.0/0".parse().expect("a net"),
                "::/0".parse().expect("a net"),
            ],
            ..ZonePolicy::default()
        });
        Served {
            zone: Some(zone),
            ..Served::empty(&apex, policy, status)
        }
    }
}

/// Zones are kept in `SHARDS` hash tables, each behind its own `Arc`, so a
/// change copies one shard and the shard pointers, not every zone: with one
/// table, each zone started or published copied all the others (10,000
/// catalog members took minutes to start, benches/catalog.py).
const SHARDS: usize = 256;

type Shard = HashTable<Served>;

#[derive(Clone)]
pub struct Catalog {
    shards: Arc<[Arc<Shard>]>,
    hasher: foldhash::fast::RandomState,
}

impl Default for Catalog {
    fn default() -> Self {
        Catalog {
            shards: (0..SHARDS).map(|_| Arc::new(Shard::new())).collect(),
            hasher: Default::default(),
        }
    }
}

pub type SharedCatalog = Arc<ArcSwap<Catalog>>;

impl Catalog {
    pub fn new(zones: Vec<Served>) -> Self {
        zones
            .into_iter()
            .fold(Catalog::default(), |c, s| c.with_zone(s))
    }

    /// The apex's hash and its shard. hashbrown takes its bucket from the
    /// low bits and its tag from the top seven: the shard from bits in
    /// between leaves both spread.
    #[inline]
    fn locate(&self, apex: &[u8]) -> (u64, usize) {
        let h = self.hasher.hash_one(apex);
        (h, (h >> 32) as usize % SHARDS)
    }

    fn with_shard(&self, i: usize, change: impl FnOnce(&mut Shard)) -> Catalog {
        let mut shards: Vec<Arc<Shard>> = self.shards.to_vec();
        change(Arc::make_mut(&mut shards[i]));
        Catalog {
            shards: shards.into(),
            hasher: self.hasher.clone(),
        }
    }

    /// A copy with `served` replacing the zone of the same apex (or added).
    pub fn with_zone(&self, served: Served) -> Catalog {
        let (h, i) = self.locate(&served.apex);
        let hasher = self.hasher.clone();
        self.with_shard(i, |shard| {
            match shard.find_mut(h, |s| s.apex == served.apex) {
                Some(s) => *s = served,
                None => {
                    shard.insert_unique(h, served, |s| hasher.hash_one(&s.apex));
                }
            }
        })
    }

    /// Removes a zone (live config reload).
    pub fn without(&self, apex: &[u8]) -> Catalog {
        let (h, i) = self.locate(apex);
        self.with_shard(i, |shard| {
            if let Ok(e) = shard.find_entry(h, |s| *s.apex == *apex) {
                e.remove();
            }
        })
    }

    /// The zone whose apex is exactly the lower-cased `apex`.
    pub fn get(&self, apex: &[u8]) -> Option<&Served> {
        let (h, i) = self.locate(apex);
        self.shards[i].find(h, |s| *s.apex == *apex)
    }

    /// The most specific zone containing the lower-cased `name`.
    #[inline]
    pub fn find(&self, lower_name: &[u8]) -> Option<&Served> {
        let mut n = lower_name;
        loop {
            if let Some(s) = self.get(n) {
                return Some(s);
            }
            n = name::parent(n)?;
        }
    }

    /// The zone holding the delegation to `apex` (for DS queries at an apex).
    pub fn find_parent(&self, apex: &[u8]) -> Option<&Served> {
        self.find(name::parent(apex)?)
    }
}
