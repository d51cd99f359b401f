//! The per-zone IXFR journal: every accepted change as a difference between
//! two SOAs. On disk: a magic header, then entries `len ‖ crc32 ‖ payload`,
//! appended and fsynced; a torn or corrupt tail is detected on open and cut
//! off (never served). Trimming to the bounds rewrites the file atomically.

use crate::fsutil::write_atomic;
use crate::zone::diff::{Diff, Rr};
use crate::zone::rdata::{self, Soa};
use crate::zone::serial;
use std::collections::{HashSet, VecDeque};
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const MAGIC: &[u8; 8] = b"TANDEMJ1";

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

pub struct Journal {
    path: PathBuf,
    entries: VecDeque<(Arc<Diff>, u64)>,
    bytes: u64,
    max_entries: usize,
    max_bytes: u64,
}

fn encode_payload(d: &Diff) -> Vec<u8> {
    let mut p = Vec::new();
    d.from.encode(&mut p);
    d.to.encode(&mut p);
    for list in [&d.deleted, &d.added] {
        p.extend_from_slice(&(list.len() as u32).to_be_bytes());
        for r in list {
            r.encode(&mut p);
        }
    }
    p
}

fn decode_payload(b: &[u8]) -> Option<Diff> {
    let mut pos = 0;
    let from = Rr::decode(b, &mut pos)?;
    let to = Rr::decode(b, &mut pos)?;
    let mut lists = [Vec::new(), Vec::new()];
    for list in &mut lists {
        let n = u32::from_be_bytes(b.get(pos..pos + 4)?.try_into().ok()?) as usize;
        pos += 4;
        for _ in 0..n {
            list.push(Rr::decode(b, &mut pos)?);
        }
    }
    let [deleted, added] = lists;
    // Journal replay is a door too: an entry whose records are not what
    // their types say is treated as corrupt.
    let well_formed = Soa::parse(&from.rdata).is_some()
        && Soa::parse(&to.rdata).is_some()
        && deleted
            .iter()
            .chain(&added)
            .all(|r| rdata::validate(r.rtype, &r.rdata).is_ok());
    (pos == b.len() && well_formed).then_some(Diff {
        from,
        to,
        deleted,
        added,
    })
}

fn frame(d: &Diff) -> Vec<u8> {
    let payload = encode_payload(d);
    let mut f = Vec::with_capacity(payload.len() + 8);
    f.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    f.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    f.extend_from_slice(&payload);
    f
}

impl Journal {
    /// Opens (or starts) a journal. Returns it with warnings about anything
    /// dropped: a corrupt tail, or entries that do not chain.
    pub fn open(
        path: &Path,
        max_entries: usize,
        max_bytes: u64,
    ) -> Result<(Journal, Vec<String>), JournalError> {
        let io = |source| JournalError::Io {
            path: path.display().to_string(),
            source,
        };
        let mut j = Journal {
            path: path.to_path_buf(),
            entries: VecDeque::new(),
            bytes: 0,
            max_entries,
            max_bytes,
        };
        let mut warnings = Vec::new();
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((j, warnings)),
            Err(e) => return Err(io(e)),
        };
        if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
            warnings.push(format!(
                "journal {}: not a tandem journal; discarded",
                path.display()
            ));
            j.rewrite().map_err(io)?;
            return Ok((j, warnings));
        }
        let mut pos = MAGIC.len();
        while pos < bytes.len() {
            let entry = (|| {
                let len = u32::from_le_bytes(bytes.get(pos..pos + 4)?.try_into().ok()?) as usize;
                let crc = u32::from_le_bytes(bytes.get(pos + 4..pos + 8)?.try_into().ok()?);
                let payload = bytes.get(pos + 8..pos + 8 + len)?;
                if crc32fast::hash(payload) != crc {
                    return None;
                }
                Some((decode_payload(payload)?, 8 + len))
            })();
            let Some((diff, size)) = entry else {
                warnings.push(format!(
                    "journal {}: corrupt or truncated entry at byte {pos}; dropped it and everything after",
                    path.display()
                ));
                break;
            };
            if let Some((last, _)) = j.entries.back()
                && last.to_serial() != diff.from_serial()
            {
                warnings.push(format!(
                    "journal {}: entries do not chain at byte {pos}; dropped the rest",
                    path.display()
                ));
                break;
            }
            j.bytes += size as u64;
            j.entries.push_back((Arc::new(diff), size as u64));
            pos += size;
        }
        if !warnings.is_empty() {
            j.rewrite().map_err(io)?;
        }
        Ok((j, warnings))
    }

    fn rewrite(&self) -> std::io::Result<()> {
        let mut all = MAGIC.to_vec();
        for (d, _) in &self.entries {
            all.extend_from_slice(&frame(d));
        }
        write_atomic(&self.path, &all)
    }

    /// Appends one change, fsynced before returning. The journal may now be
    /// over its bounds: `trim` brings it back, once whoever keeps a zone copy
    /// that replays from these entries has moved the copy forward.
    pub fn append(&mut self, diff: Diff) -> Result<Arc<Diff>, JournalError> {
        let io = |source| JournalError::Io {
            path: self.path.display().to_string(),
            source,
        };
        let f = frame(&diff);
        if !self.path.exists() {
            write_atomic(&self.path, MAGIC).map_err(io)?;
        }
        let mut file = OpenOptions::new()
            .append(true)
            .open(&self.path)
            .map_err(io)?;
        file.write_all(&f).map_err(io)?;
        file.sync_data().map_err(io)?;
        let diff = Arc::new(diff);
        self.bytes += f.len() as u64;
        self.entries.push_back((diff.clone(), f.len() as u64));
        Ok(diff)
    }

    /// New bounds (a config reload); the next `trim` applies them.
    pub fn set_bounds(&mut self, max_entries: usize, max_bytes: u64) {
        self.max_entries = max_entries;
        self.max_bytes = max_bytes;
    }

    /// How many of the oldest entries `trim` would drop.
    fn excess(&self) -> usize {
        let mut n = 0;
        let mut bytes = self.bytes;
        for (_, size) in &self.entries {
            let left = self.entries.len() - n;
            if left <= self.max_entries.max(1) && (bytes <= self.max_bytes || left <= 1) {
                break;
            }
            bytes -= size;
            n += 1;
        }
        n
    }

    /// Would `trim` drop the entry that starts at `serial` (which a zone copy
    /// at that serial needs to be brought forward)?
    pub fn trim_would_cut(&self, serial: u32) -> bool {
        let n = self.excess();
        self.entries
            .iter()
            .take(n)
            .any(|(d, _)| d.from_serial() == serial)
    }

    /// Drops the oldest entries beyond the bounds (file rewritten atomically).
    pub fn trim(&mut self) -> Result<(), JournalError> {
        let n = self.excess();
        if n == 0 {
            return Ok(());
        }
        for _ in 0..n {
            if let Some((_, size)) = self.entries.pop_front() {
                self.bytes -= size;
            }
        }
        self.rewrite().map_err(|source| JournalError::Io {
            path: self.path.display().to_string(),
            source,
        })
    }

    /// Forgets every entry (the history no longer leads to what is served).
    pub fn clear(&mut self) -> Result<(), JournalError> {
        self.entries.clear();
        self.bytes = 0;
        self.rewrite().map_err(|source| JournalError::Io {
            path: self.path.display().to_string(),
            source,
        })
    }

    pub fn entries(&self) -> Vec<Arc<Diff>> {
        self.entries.iter().map(|(d, _)| d.clone()).collect()
    }

    pub fn last_serial(&self) -> Option<u32> {
        self.entries.back().map(|(d, _)| d.to_serial())
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The changes leading from `from` to `to`, if the history holds an
/// unbroken chain between them.
pub fn chain(history: &[Arc<Diff>], from: u32, to: u32) -> Option<&[Arc<Diff>]> {
    let start = history.iter().position(|d| d.from_serial() == from)?;
    let end = history[start..].iter().position(|d| d.to_serial() == to)? + start;
    let links = &history[start..=end];
    links
        .windows(2)
        .all(|w| w[0].to_serial() == w[1].from_serial())
        .then_some(links)
}

/// Condenses consecutive changes into one (RFC 1995 §5: the server may):
/// a record added and later deleted disappears, and the reverse.
pub fn condense(links: &[Arc<Diff>]) -> (Vec<Rr>, Vec<Rr>) {
    let mut deleted: Vec<Rr> = Vec::new();
    let mut added: Vec<Rr> = Vec::new();
    let mut del_set: HashSet<Rr> = HashSet::new();
    let mut add_set: HashSet<Rr> = HashSet::new();
    for d in links {
        for r in &d.deleted {
            if !add_set.remove(r) && del_set.insert(r.clone()) {
                deleted.push(r.clone());
            }
        }
        for r in &d.added {
            if !del_set.remove(r) && add_set.insert(r.clone()) {
                added.push(r.clone());
            }
        }
    }
    deleted.retain(|r| del_set.contains(r));
    added.retain(|r| add_set.contains(r));
    (deleted, added)
}

/// True when `client` is at or past `current` (nothing to send).
pub fn up_to_date(client: u32, current: u32) -> bool {
    !serial::is_newer(current, client)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn soa(serial: u32) -> Rr {
        let mut rd = b"\x02ns\x00\x01h\x00".to_vec();
        rd.extend_from_slice(&serial.to_be_bytes());
        rd.extend_from_slice(&[0; 16]);
        Rr {
            owner: (*b"\x01t\x00").into(),
            rtype: 6,
            ttl: 60,
            rdata: rd.into(),
        }
    }

    fn a(last: u8) -> Rr {
        Rr {
            owner: (*b"\x01x\x01t\x00").into(),
            rtype: 1,
            ttl: 60,
            rdata: vec![192, 0, 2, last].into(),
        }
    }

    fn d(from: u32, to: u32, deleted: Vec<Rr>, added: Vec<Rr>) -> Diff {
        Diff {
            from: soa(from),
            to: soa(to),
            deleted,
            added,
        }
    }

    #[test]
    fn survives_restart_and_drops_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.journal");
        let (mut j, w) = Journal::open(&p, 10, 1 << 20).unwrap();
        assert!(w.is_empty());
        j.append(d(1, 2, vec![], vec![a(1)])).unwrap();
        j.append(d(2, 3, vec![a(1)], vec![a(2)])).unwrap();
        let (j2, w) = Journal::open(&p, 10, 1 << 20).unwrap();
        assert!(w.is_empty());
        assert_eq!(j2.entries(), j.entries());
        // Cut the file in the middle of the last entry.
        let len = std::fs::metadata(&p).unwrap().len();
        let f = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
        f.set_len(len - 3).unwrap();
        let (j3, w) = Journal::open(&p, 10, 1 << 20).unwrap();
        assert_eq!(w.len(), 1, "{w:?}");
        assert_eq!(j3.last_serial(), Some(2));
        // A flipped byte is caught by the checksum.
        let mut bytes = std::fs::read(&p).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::write(&p, bytes).unwrap();
        let (j4, w) = Journal::open(&p, 10, 1 << 20).unwrap();
        assert_eq!((w.len(), j4.len()), (1, 0));
    }

    #[test]
    fn is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.journal");
        let (mut j, _) = Journal::open(&p, 3, 1 << 20).unwrap();
        for s in 1..10 {
            j.append(d(s, s + 1, vec![], vec![a(s as u8)])).unwrap();
            // Four entries before the trim: the oldest (from s - 3) goes.
            assert_eq!(j.trim_would_cut(s.wrapping_sub(3)), s >= 4, "{s}");
            assert!(!j.trim_would_cut(s.wrapping_sub(2)), "{s}");
            j.trim().unwrap();
        }
        assert_eq!(j.len(), 3);
        let (j2, _) = Journal::open(&p, 3, 1 << 20).unwrap();
        assert_eq!(j2.entries()[0].from_serial(), 7);
    }

    #[test]
    fn chains_and_condenses() {
        let h: Vec<Arc<Diff>> = vec![
            Arc::new(d(1, 2, vec![a(1)], vec![a(2)])),
            Arc::new(d(2, 3, vec![a(2)], vec![a(3)])),
            Arc::new(d(3, 4, vec![], vec![a(4)])),
        ];
        assert!(chain(&h, 0, 4).is_none());
        let links = chain(&h, 1, 4).unwrap();
        assert_eq!(links.len(), 3);
        let (del, add) = condense(links);
        assert_eq!(del, vec![a(1)]);
        assert_eq!(add, vec![a(3), a(4)]);
        assert!(up_to_date(4, 4) && up_to_date(5, 4) && !up_to_date(3, 4));
    }
}
