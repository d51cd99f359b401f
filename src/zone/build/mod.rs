//! Staged records (from a file or a transfer) → named-checkzone's checks →
//! an immutable `Zone`, on every core: each partition of the records is
//! indexed (`index`), the names are completed with their ancestors
//! (`ancestors`), then each unit of partitions is checked and laid out into
//! its shards and freed (`layout`). The zone-wide checks are decided here
//! from what the units report.

mod ancestors;
mod index;
mod layout;

use super::stage::{Mark, PARTITIONS, Run, Staged, Stager, partition_of};
use super::{NameHasher, Zone, name, workers};
use index::Part;
use std::hash::BuildHasher;
use std::sync::Arc;

pub use super::stage::Origin;

/// Nodes per shard a new version aims for: small enough that an IXFR touching
/// a few names copies little, large enough that a big zone has few shards.
const NODES_PER_SHARD: usize = 2048;

/// Below this many records a build runs on one thread: starting threads
/// would cost more than it saves.
pub const PARALLEL_FROM_RECORDS: usize = 32 << 10;

/// A check failure: the message and, when a record caused it, where it was.
#[derive(Debug)]
pub struct BuildError {
    pub at: Option<Origin>,
    pub msg: String,
}

/// Records added one by one (a transfer, a test), built on every core.
pub struct ZoneBuilder {
    origin: Vec<u8>,
    hasher: NameHasher,
    stager: Stager,
    runs: Vec<Run>,
    /// The file of the records since `from`.
    file: Option<u16>,
    from: Mark,
}

impl ZoneBuilder {
    pub fn new(origin: &[u8]) -> Self {
        let hasher = NameHasher::default();
        let mut stager = Stager::new(origin, &hasher);
        let from = stager.mark();
        ZoneBuilder {
            origin: origin.to_vec(),
            hasher,
            stager,
            runs: Vec::new(),
            file: None,
            from,
        }
    }

    pub fn origin(&self) -> &[u8] {
        &self.origin
    }

    /// Adds one record. `owner` is an absolute wire name, `rdata` wire rdata.
    pub fn add(
        &mut self,
        owner: &[u8],
        rtype: u16,
        ttl: u32,
        rdata: &[u8],
        at: Origin,
    ) -> Result<(), String> {
        if self.file != Some(at.file) {
            self.cut();
            self.file = Some(at.file);
        }
        self.stager.add(owner, rtype, ttl, rdata, at.line)
    }

    fn cut(&mut self) {
        let to = self.stager.mark();
        if let Some(file) = self.file {
            self.runs.push(Run {
                stager: 0,
                file,
                line_offset: 0,
                from: std::mem::replace(&mut self.from, to.clone()),
                to,
            });
        } else {
            self.from = to;
        }
    }

    pub fn record_count(&self) -> usize {
        self.stager.records()
    }

    /// Checks the zone and lays it out. Consumes the builder.
    pub fn build(self) -> Result<Zone, BuildError> {
        self.build_with_warnings().map(|(z, _)| z)
    }

    /// As `build`, also returning the non-fatal findings (TTL mismatches
    /// inside an RRset, duplicates), in reading order.
    pub fn build_with_warnings(mut self) -> Result<(Zone, Vec<(Origin, String)>), BuildError> {
        self.cut();
        let threads = if self.stager.records() >= PARALLEL_FROM_RECORDS {
            workers::threads()
        } else {
            1
        };
        build(
            Staged {
                origin: self.origin,
                hasher: self.hasher,
                stagers: vec![self.stager],
                runs: self.runs,
            },
            threads,
        )
    }
}

/// Builds the zone from staged records with `threads` threads; returns it
/// with the non-fatal findings in reading order.
pub fn build(staged: Staged, threads: usize) -> Result<(Zone, Vec<(Origin, String)>), BuildError> {
    let Staged {
        origin,
        hasher,
        stagers,
        runs,
    } = staged;
    let too_large = |e: index::TooLarge| BuildError {
        at: None,
        msg: e.to_string(),
    };
    let mut parts: Vec<Part> = (0..PARTITIONS).map(|_| Part::default()).collect();
    for s in stagers {
        for (part, log) in parts.iter_mut().zip(s.into_logs()) {
            part.logs.push(log);
        }
    }

    workers::map(parts.iter_mut().enumerate(), threads, |(p, part)| {
        index::index(part, p, &runs)
    })
    .into_iter()
    .collect::<Result<(), _>>()
    .map_err(too_large)?;

    // The apex is a node even without records (the checks then say what
    // is missing), spelt as first read.
    let mut apex_key = origin.clone();
    name::lowercase(&mut apex_key);
    let apex_hash = hasher.hash_one(&apex_key[..]);
    let ap = partition_of(apex_hash);
    let apex_id = match parts[ap].index.find(&parts[ap].logs, apex_hash, &apex_key) {
        Some(id) => id,
        None => parts[ap]
            .index
            .push_extra(apex_hash, &apex_key, 0)
            .map_err(too_large)?,
    };
    let apex = (ap, apex_id);
    let zone_origin: Box<[u8]> = parts[ap].index.name(&parts[ap].logs, apex_id).into();

    ancestors::complete(&mut parts, apex, &hasher, threads).map_err(too_large)?;

    let n: usize = parts.iter().map(|p| p.index.len()).sum();
    let shard_count = (n / NODES_PER_SHARD)
        .max(1)
        .next_power_of_two()
        .min(1 << 12);
    let units = shard_count.min(PARTITIONS);
    let mut grouped: Vec<Vec<(usize, &mut Part)>> = (0..units).map(|_| Vec::new()).collect();
    for (p, part) in parts.iter_mut().enumerate() {
        grouped[p & (units - 1)].push((p, part));
    }
    let plan = layout::Plan {
        runs: &runs,
        shards: shard_count,
        units,
        apex,
        hasher: &hasher,
    };
    let laid = workers::map(grouped.into_iter().enumerate(), threads, |(u, unit)| {
        layout::lay_out(&plan, u, unit)
    });

    // named-checkzone's zone-wide checks, in its order, then the first
    // node (in reading order) that failed its own checks.
    if let Some((_, e)) = laid
        .iter()
        .filter_map(|l| l.misplaced_soa.as_ref())
        .min_by_key(|(k, _)| *k)
    {
        return Err(BuildError {
            at: e.at,
            msg: e.msg.clone(),
        });
    }
    let apex_soas: Vec<Origin> = laid
        .iter()
        .flat_map(|l| l.apex_soas.iter().copied())
        .collect();
    match apex_soas.len() {
        0 => {
            return Err(BuildError {
                at: None,
                msg: format!("{}: has no SOA record", name::to_text(&origin)),
            });
        }
        1 => {}
        _ => {
            return Err(BuildError {
                at: Some(apex_soas[1]),
                msg: "multiple SOA records at the zone apex".into(),
            });
        }
    }
    if !laid.iter().any(|l| l.apex_ns) {
        return Err(BuildError {
            at: None,
            msg: format!(
                "{}: has no NS records at the zone apex",
                name::to_text(&origin)
            ),
        });
    }
    let mut laid = laid;
    if let Some(i) = (0..laid.len())
        .filter(|&i| laid[i].error.is_some())
        .min_by_key(|&i| laid[i].error.as_ref().map(|(k, _)| *k))
        && let Some((_, e)) = laid[i].error.take()
    {
        return Err(e);
    }

    let mut shards: Vec<Option<Arc<super::Shard>>> = (0..shard_count).map(|_| None).collect();
    let mut warnings = Vec::new();
    let mut records = 0;
    let mut has_cuts = false;
    let mut soa = (0, 0, 0);
    for l in laid {
        for (s, shard) in l.shards {
            shards[s] = Some(Arc::new(shard));
        }
        warnings.extend(l.warnings);
        records += l.records;
        has_cuts |= l.has_cuts;
        if let Some(s) = l.soa {
            soa = s;
        }
    }
    warnings.sort_by_key(|(k, _, _)| *k);
    let shards: Box<[Arc<super::Shard>]> =
        shards.into_iter().map(|s| s.unwrap_or_default()).collect();
    let mut zone = Zone {
        origin: zone_origin,
        apex_key: apex_key.into_boxed_slice(),
        hasher,
        shards,
        shard_mask: shard_count as u64 - 1,
        has_cuts,
        soa_ttl: soa.0,
        serial: soa.1,
        minimum: soa.2,
        names: n,
        records,
        signed: false,
        denial: None,
    };
    let (signed, denial) = super::denial::index(&zone).map_err(|e| BuildError {
        at: None,
        msg: format!("{}: {e}", name::to_text(&zone.origin)),
    })?;
    zone.signed = signed;
    zone.denial = denial.map(Arc::new);
    Ok((
        zone,
        warnings.into_iter().map(|(_, at, m)| (at, m)).collect(),
    ))
}
