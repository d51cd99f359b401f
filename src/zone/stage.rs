//! Records read but not yet built into a zone: the builder's input.
//!
//! A reader (a chunk of a zone file, a block of a transfer) checks each
//! record as it comes and appends it to one of `PARTITIONS` logs chosen by
//! the hash of its owner name. The builder then indexes, checks and lays
//! out one partition at a time — on every core, and freeing each
//! partition's logs once its shards exist, so the peak stays near the size
//! of the finished zone instead of holding every record twice.
//!
//! Readers working in parallel each append to their own `Stager`; `Run`s
//! say which stretch of which stager's logs came from where, in reading
//! order, which is the order records keep inside an RRset.

use super::{NameHasher, name, rdata, rtype, workers};
use std::hash::BuildHasher;

/// A power of two: partitions map onto the zone's 2^k shards.
pub const PARTITIONS: usize = 64;

/// Where a record came from, for FILE:LINE errors.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Origin {
    pub file: u16,
    pub line: u32,
}

/// The partition of a name from its hash. Bits 32 and up, as shards use:
/// hashbrown takes its buckets from the low bits and its tags from the top.
pub fn partition_of(hash: u64) -> usize {
    ((hash >> 32) as usize) & (PARTITIONS - 1)
}

// Log entries: a tag; for `NEW_OWNER`, a u64 key (the owner's hash, which
// the builder overwrites with the node's number), the name's length and
// the name; then type u16, TTL u32, line u32, rdata length u16, rdata.
// `SAME_OWNER` repeats the previous entry's owner, which is how records
// usually come (grouped by owner).
pub const SAME_OWNER: u8 = 0;
pub const NEW_OWNER: u8 = 1;
/// Bytes of a record's fixed fields.
pub const FIXED: usize = 12;

/// One stager's logs (one per partition) and what it last wrote.
pub struct Stager {
    apex: Box<[u8]>,
    hasher: NameHasher,
    logs: Vec<Vec<u8>>,
    /// The owner of the last record, as given, and its partition; `None`
    /// after a mark, so every run starts each partition with a full owner.
    last: Option<usize>,
    owner: Vec<u8>,
    lower: Vec<u8>,
    records: usize,
}

/// The length of every log at one moment: runs are cut between two marks.
#[derive(Clone, Debug)]
pub struct Mark(Box<[usize]>);

/// A stretch of one stager's logs, read from one file (or transfer).
#[derive(Clone, Debug)]
pub struct Run {
    pub stager: usize,
    pub file: u16,
    /// Added to the lines stored in the logs (a chunk read ahead of its
    /// turn counts lines from its own start).
    pub line_offset: u32,
    pub from: Mark,
    pub to: Mark,
}

impl Run {
    pub fn range(&self, partition: usize) -> std::ops::Range<usize> {
        self.from.0[partition]..self.to.0[partition]
    }

    pub fn origin(&self, line: u32) -> Origin {
        Origin {
            file: self.file,
            line: line.saturating_add(self.line_offset),
        }
    }
}

impl Stager {
    pub fn new(apex: &[u8], hasher: &NameHasher) -> Stager {
        Stager {
            apex: apex.into(),
            hasher: hasher.clone(),
            logs: vec![Vec::new(); PARTITIONS],
            last: None,
            owner: Vec::with_capacity(name::MAX_NAME),
            lower: Vec::with_capacity(name::MAX_NAME),
            records: 0,
        }
    }

    pub fn mark(&mut self) -> Mark {
        self.last = None;
        Mark(self.logs.iter().map(Vec::len).collect())
    }

    pub fn records(&self) -> usize {
        self.records
    }

    /// The logs, one per partition.
    pub fn into_logs(self) -> Vec<Vec<u8>> {
        self.logs
    }

    /// Checks one record and stages it. `owner` is an absolute wire name,
    /// `rdata` wire rdata. The error says what is wrong with it.
    pub fn add(
        &mut self,
        owner: &[u8],
        rtype: u16,
        ttl: u32,
        rdata: &[u8],
        line: u32,
    ) -> Result<(), String> {
        let same = self.last.is_some() && owner == &self.owner[..];
        if !same && !name::is_subdomain(owner, &self.apex) {
            return Err(format!(
                "{} {}: out of zone data (not below {})",
                name::to_text(owner),
                rtype::to_text(rtype),
                name::to_text(&self.apex)
            ));
        }
        if rtype::is_meta(rtype) {
            return Err(format!(
                "type {} cannot be zone data",
                rtype::to_text(rtype)
            ));
        }
        // The door: nothing enters the store that is not what its type says.
        rdata::validate(rtype, rdata)
            .map_err(|e| format!("{} {}: {e}", name::to_text(owner), rtype::to_text(rtype)))?;
        let rdlen =
            u16::try_from(rdata.len()).map_err(|_| "rdata longer than 65535 octets".to_string())?;
        let part = match self.last {
            Some(p) if same => {
                self.logs[p].push(SAME_OWNER);
                p
            }
            _ => {
                self.lower.clear();
                self.lower.extend_from_slice(owner);
                name::lowercase(&mut self.lower);
                let hash = self.hasher.hash_one(&self.lower[..]);
                let p = partition_of(hash);
                let log = &mut self.logs[p];
                log.push(NEW_OWNER);
                log.extend_from_slice(&hash.to_le_bytes());
                log.push(owner.len() as u8);
                log.extend_from_slice(owner);
                self.owner.clear();
                self.owner.extend_from_slice(owner);
                self.last = Some(p);
                p
            }
        };
        let log = &mut self.logs[part];
        log.extend_from_slice(&rtype.to_le_bytes());
        log.extend_from_slice(&ttl.to_le_bytes());
        log.extend_from_slice(&line.to_le_bytes());
        log.extend_from_slice(&rdlen.to_le_bytes());
        log.extend_from_slice(rdata);
        self.records += 1;
        Ok(())
    }
}

/// Everything a build needs: the records staged by one or more stagers and
/// the runs that put them in reading order.
pub struct Staged {
    /// The zone's origin, as configured.
    pub origin: Vec<u8>,
    /// The hasher every stager used; the zone keeps it.
    pub hasher: NameHasher,
    pub stagers: Vec<Stager>,
    pub runs: Vec<Run>,
}

/// Stages independent blocks of records (a transfer, in pieces) on
/// `threads` threads, each block a run of file 0 in block order; `stage`
/// adds one block's records. The error is that of the first block (in
/// order) that failed.
pub fn stage_blocks<B: Send, E: Send>(
    origin: &[u8],
    blocks: Vec<B>,
    threads: usize,
    stage: impl Fn(&mut Stager, B) -> Result<(), E> + Sync,
) -> Result<Staged, E> {
    let hasher = NameHasher::default();
    let (stagers, done) = workers::run(
        blocks,
        threads,
        |t| (t, Stager::new(origin, &hasher)),
        |(t, stager), block| {
            let from = stager.mark();
            let r = stage(stager, block);
            (*t, from, stager.mark(), r)
        },
    );
    let mut runs = Vec::with_capacity(done.len());
    for (stager, from, to, r) in done {
        r?;
        runs.push(Run {
            stager,
            file: 0,
            line_offset: 0,
            from,
            to,
        });
    }
    Ok(Staged {
        origin: origin.to_vec(),
        hasher,
        stagers: stagers.into_iter().map(|(_, s)| s).collect(),
        runs,
    })
}

/// One entry of a log, as offsets into it.
#[derive(Clone, Copy, Debug)]
pub struct At {
    /// For an entry naming its owner: where its key and its name are.
    pub owner: Option<(usize, usize)>,
    /// Where the fixed fields start.
    pub rec: usize,
    pub next: usize,
}

/// The entry at `pos` of a log (written by `Stager::add`, so well formed).
pub fn entry_at(log: &[u8], pos: usize) -> At {
    let (owner, rec) = if log[pos] == NEW_OWNER {
        let key = pos + 1;
        let len = log[key + 8] as usize;
        (Some((key, key + 9)), key + 9 + len)
    } else {
        (None, pos + 1)
    };
    let rdlen = u16::from_le_bytes([log[rec + 10], log[rec + 11]]) as usize;
    At {
        owner,
        rec,
        next: rec + FIXED + rdlen,
    }
}

/// The owner name of an entry that has one.
pub fn owner_name(log: &[u8], name_at: usize) -> &[u8] {
    let len = log[name_at - 1] as usize;
    &log[name_at..name_at + len]
}

pub fn read_u64(log: &[u8], at: usize) -> u64 {
    let mut b = [0; 8];
    b.copy_from_slice(&log[at..at + 8]);
    u64::from_le_bytes(b)
}

/// A staged record's fields, read from its fixed part at `rec`.
#[derive(Clone, Copy, Debug)]
pub struct Record<'a> {
    pub rtype: u16,
    pub ttl: u32,
    pub line: u32,
    pub rdata: &'a [u8],
}

pub fn record_at(log: &[u8], rec: usize) -> Record<'_> {
    let f = &log[rec..rec + FIXED];
    let rdlen = u16::from_le_bytes([f[10], f[11]]) as usize;
    Record {
        rtype: u16::from_le_bytes([f[0], f[1]]),
        ttl: u32::from_le_bytes([f[2], f[3], f[4], f[5]]),
        line: u32::from_le_bytes([f[6], f[7], f[8], f[9]]),
        rdata: &log[rec + FIXED..rec + FIXED + rdlen],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_through_the_logs() {
        let apex = b"\x07example\x00";
        let mut s = Stager::new(apex, &NameHasher::default());
        let from = s.mark();
        s.add(b"\x01a\x07example\x00", rtype::A, 60, &[1, 2, 3, 4], 3)
            .unwrap();
        s.add(b"\x01a\x07example\x00", rtype::A, 61, &[1, 2, 3, 5], 4)
            .unwrap();
        assert!(
            s.add(b"\x01a\x03org\x00", rtype::A, 1, &[1, 2, 3, 4], 5)
                .is_err()
        );
        assert!(
            s.add(b"\x01a\x07example\x00", rtype::A, 1, &[1], 5)
                .is_err()
        );
        let run = Run {
            stager: 0,
            file: 0,
            line_offset: 10,
            from,
            to: s.mark(),
        };
        assert_eq!(s.records(), 2);
        let logs = s.into_logs();
        let (p, log) = logs
            .iter()
            .enumerate()
            .find(|(_, l)| !l.is_empty())
            .unwrap();
        let r = run.range(p);
        let first = entry_at(log, r.start);
        let (_, name_at) = first.owner.unwrap();
        assert_eq!(owner_name(log, name_at), b"\x01a\x07example\x00");
        let second = entry_at(log, first.next);
        assert!(second.owner.is_none());
        assert_eq!(second.next, r.end);
        let rec = record_at(log, second.rec);
        assert_eq!((rec.ttl, rec.rdata), (61, &[1, 2, 3, 5][..]));
        assert_eq!(run.origin(rec.line).line, 14);
    }
}
