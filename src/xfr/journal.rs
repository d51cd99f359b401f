//! The per-zone IXFR journal: every accepted change as a difference between
//! two SOAs, each starting where the previous one ended (an entry that does
//! not is refused). On disk it is a run of segment files `NAME.journal.d/N`:
//! a magic header, then entries `len ‖ crc32 ‖ payload`, appended to the
//! newest segment and fsynced. Each zone has its own directory so that
//! opening a journal lists only its own segments: with the segments flat in
//! `data_dir`, 10,000 catalog members each listed 20,000 entries to open
//! (half of provisioning's time, see README "Catalog zones at scale"). A torn or corrupt tail is detected on open
//! and cut off (never served). Trimming to the bounds drops entries from
//! memory at once and deletes a segment file once none of its entries is
//! kept, so nothing is ever rewritten and a crash at any point leaves whole
//! segments (as Knot's and NSD's journals trim in place).

use crate::fsutil::{dir_of, sync_dir, write_atomic};
use crate::zone::diff::{Diff, Rr};
use crate::zone::rdata::{self, Soa};
use crate::zone::serial;
use std::collections::VecDeque;
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
    #[error(
        "journal {path}: a change from serial {from} does not follow the last entry, which ends at {last}; refused"
    )]
    Gap { path: String, from: u32, last: u32 },
}

/// One segment file and how many of the kept entries are in it.
struct Segment {
    seq: u64,
    path: PathBuf,
    /// Entries written to it (kept or already trimmed from memory).
    written: usize,
    bytes: u64,
}

pub struct Journal {
    /// `…/NAME.journal`; segments are this path plus `.N`.
    base: PathBuf,
    segments: VecDeque<Segment>,
    /// Kept entries, oldest first, with their framed size and segment.
    entries: VecDeque<(Arc<Diff>, u64, u64)>,
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
        base: &Path,
        max_entries: usize,
        max_bytes: u64,
    ) -> Result<(Journal, Vec<String>), JournalError> {
        let mut j = Journal {
            base: base.to_path_buf(),
            segments: VecDeque::new(),
            entries: VecDeque::new(),
            bytes: 0,
            max_entries,
            max_bytes,
        };
        let mut warnings = Vec::new();
        let io = |p: &Path, source| JournalError::Io {
            path: p.display().to_string(),
            source,
        };
        let mut files = j.segment_files().map_err(|e| io(base, e))?;
        // A journal written before segments (one file, the same framing)
        // reads as the oldest segment.
        if base.is_file() {
            files.insert(0, (0, base.to_path_buf()));
        }
        let mut broken = false;
        for (seq, path) in files {
            if broken {
                // Everything after a corrupt entry goes: it cannot chain.
                std::fs::remove_file(&path).map_err(|e| io(&path, e))?;
                continue;
            }
            let bytes = std::fs::read(&path).map_err(|e| io(&path, e))?;
            if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
                warnings.push(format!(
                    "journal {}: not a tandem journal segment; discarded with what follows",
                    path.display()
                ));
                std::fs::remove_file(&path).map_err(|e| io(&path, e))?;
                broken = true;
                continue;
            }
            let mut seg = Segment {
                seq,
                path: path.clone(),
                written: 0,
                bytes: MAGIC.len() as u64,
            };
            let mut pos = MAGIC.len();
            while pos < bytes.len() {
                let entry = read_entry(&bytes, pos);
                let problem = match &entry {
                    None => Some("corrupt or truncated entry"),
                    Some((d, _)) => match j.entries.back() {
                        Some((last, _, _)) if last.to_serial() != d.from_serial() => {
                            Some("entries do not chain")
                        }
                        _ => None,
                    },
                };
                if let Some(problem) = problem {
                    warnings.push(format!(
                        "journal {}: {problem} at byte {pos}; dropped it and everything after",
                        path.display()
                    ));
                    cut(&path, pos as u64).map_err(|e| io(&path, e))?;
                    broken = true;
                    break;
                }
                let Some((diff, size)) = entry else { break };
                j.bytes += size as u64;
                j.entries.push_back((Arc::new(diff), size as u64, seq));
                seg.written += 1;
                seg.bytes += size as u64;
                pos += size;
            }
            j.segments.push_back(seg);
        }
        j.trim()?;
        Ok((j, warnings))
    }

    /// The directory of the segments: `base` + `.d`.
    fn segment_dir(&self) -> PathBuf {
        segment_dir(&self.base)
    }

    /// The segment files on disk, oldest first.
    fn segment_files(&self) -> std::io::Result<Vec<(u64, PathBuf)>> {
        let mut found = Vec::new();
        let entries = match std::fs::read_dir(self.segment_dir()) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(found),
            Err(e) => return Err(e),
        };
        for e in entries {
            let e = e?;
            if let Some(n) = e.file_name().to_str().and_then(|n| n.parse::<u64>().ok()) {
                found.push((n, e.path()));
            }
        }
        found.sort();
        Ok(found)
    }

    /// Makes the segment directory, durably: its entry in the parent is
    /// synced before a segment in it is trusted to be there.
    fn make_segment_dir(&self) -> std::io::Result<()> {
        let dir = self.segment_dir();
        match std::fs::create_dir(&dir) {
            // Already there (an empty one a crash left): synced all the same.
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(&dir)?;
            }
            Err(e) => return Err(e),
        }
        sync_dir(dir_of(&self.base))
    }

    fn io(&self, path: &Path) -> impl Fn(std::io::Error) -> JournalError + use<> {
        let path = path.display().to_string();
        move |source| JournalError::Io {
            path: path.clone(),
            source,
        }
    }

    /// Entries a segment takes before the next one starts: a quarter of the
    /// bounds, so that at most a quarter more than the bounds is on disk.
    fn segment_full(&self, seg: &Segment) -> bool {
        seg.written >= self.max_entries.div_ceil(4).max(1)
            || seg.bytes >= (self.max_bytes / 4).max(64 << 10)
    }

    /// Appends one change, fsynced before returning. It must start at the
    /// serial the last entry ended at (else `Gap`: the caller restarts the
    /// history with `clear`). The journal may now be over its bounds:
    /// `trim` brings it back, once whoever keeps a zone copy that replays
    /// from these entries has moved the copy forward.
    pub fn append(&mut self, diff: Diff) -> Result<Arc<Diff>, JournalError> {
        if let Some((last, _, _)) = self.entries.back()
            && last.to_serial() != diff.from_serial()
        {
            return Err(JournalError::Gap {
                path: self.base.display().to_string(),
                from: diff.from_serial(),
                last: last.to_serial(),
            });
        }
        let f = frame(&diff);
        if self.segments.back().is_none_or(|s| self.segment_full(s)) {
            let seq = self.segments.back().map_or(1, |s| s.seq + 1);
            // The first segment in the directory (the legacy single file,
            // seq 0, lives beside it).
            if self.segments.iter().all(|s| s.seq == 0) {
                self.make_segment_dir()
                    .map_err(self.io(&self.segment_dir()))?;
            }
            let path = self.segment_dir().join(seq.to_string());
            write_atomic(&path, MAGIC).map_err(self.io(&path))?;
            self.segments.push_back(Segment {
                seq,
                path,
                written: 0,
                bytes: MAGIC.len() as u64,
            });
        }
        let io_base = self.io(&self.base);
        let Some(seg) = self.segments.back_mut() else {
            return Err(io_base(std::io::Error::other("no segment to append to")));
        };
        let io = {
            let path = seg.path.display().to_string();
            move |source| JournalError::Io {
                path: path.clone(),
                source,
            }
        };
        let mut file = OpenOptions::new()
            .append(true)
            .open(&seg.path)
            .map_err(&io)?;
        file.write_all(&f).map_err(&io)?;
        file.sync_data().map_err(&io)?;
        seg.written += 1;
        seg.bytes += f.len() as u64;
        let seq = seg.seq;
        let diff = Arc::new(diff);
        self.bytes += f.len() as u64;
        self.entries.push_back((diff.clone(), f.len() as u64, seq));
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
        for (_, size, _) in &self.entries {
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
            .any(|(d, _, _)| d.from_serial() == serial)
    }

    /// Drops the oldest entries beyond the bounds, and the segment files
    /// none of whose entries is kept any more (the newest one stays).
    pub fn trim(&mut self) -> Result<(), JournalError> {
        for _ in 0..self.excess() {
            if let Some((_, size, _)) = self.entries.pop_front() {
                self.bytes -= size;
            }
        }
        let oldest_kept = self.entries.front().map(|e| e.2);
        while self.segments.len() > 1
            && let Some(seg) = self.segments.front()
            && oldest_kept.is_none_or(|k| seg.seq < k)
        {
            let path = seg.path.clone();
            std::fs::remove_file(&path).map_err(self.io(&path))?;
            self.segments.pop_front();
        }
        Ok(())
    }

    /// Forgets every entry (the history no longer leads to what is served).
    pub fn clear(&mut self) -> Result<(), JournalError> {
        self.entries.clear();
        self.bytes = 0;
        let had_segments = !self.segments.is_empty();
        while let Some(seg) = self.segments.pop_front() {
            std::fs::remove_file(&seg.path).map_err(self.io(&seg.path))?;
        }
        if self.base.is_file() {
            std::fs::remove_file(&self.base).map_err(self.io(&self.base))?;
        }
        // Empty now; a zone that no longer keeps a history keeps no
        // directory. (Not looked for when there was none: every full
        // transfer clears.)
        if had_segments {
            let _ = std::fs::remove_dir(self.segment_dir());
        }
        Ok(())
    }

    /// Appends `diff`; when it does not follow the last entry, the history
    /// restarts with it (logged by the caller from the returned warning).
    pub fn append_or_restart(&mut self, diff: Diff) -> Result<Option<String>, JournalError> {
        match self.append(diff.clone()) {
            Ok(_) => Ok(None),
            Err(gap @ JournalError::Gap { .. }) => {
                self.clear()?;
                self.append(diff)?;
                Ok(Some(format!("{gap}; IXFR history restarts here")))
            }
            Err(e) => Err(e),
        }
    }

    pub fn entries(&self) -> Vec<Arc<Diff>> {
        self.entries.iter().map(|(d, _, _)| d.clone()).collect()
    }

    pub fn last_serial(&self) -> Option<u32> {
        self.entries.back().map(|(d, _, _)| d.to_serial())
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Segment files on disk (for tests of the trimming).
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }
}

/// Where the segments of the journal `base` live.
pub fn segment_dir(base: &Path) -> PathBuf {
    let mut d = base.as_os_str().to_owned();
    d.push(".d");
    PathBuf::from(d)
}

/// Moves segments written flat in `data_dir` by earlier versions
/// (`NAME.journal.N`) into their journal's directory (`NAME.journal.d/N`).
/// Run once at start-up, before any journal opens: one listing of
/// `data_dir` instead of one per journal. Each move is a rename, so a crash
/// midway leaves every segment in one place or the other, and the next
/// start moves the rest (numbered after those moved). A journal whose
/// flat segments do not follow those already in its directory (an earlier
/// version ran after a move) is left as it is, both sets on disk, and named
/// in the error: its two histories are not mixed. Any other failure is named too, after everything else
/// has moved. Returns how many moved.
pub fn move_flat_segments(data_dir: &Path) -> std::io::Result<usize> {
    let entries = match std::fs::read_dir(data_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut failed = Vec::new();
    // Journal base name → its flat segments.
    let mut flat: std::collections::BTreeMap<String, Vec<(String, PathBuf)>> =
        std::collections::BTreeMap::new();
    for e in entries {
        let e = match e {
            Ok(e) => e,
            Err(err) => {
                failed.push(format!("listing {}: {err}", data_dir.display()));
                continue;
            }
        };
        let Some(name) = e.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        let Some((base, seq)) = name.rsplit_once('.') else {
            continue;
        };
        if !base.ends_with("journal")
            || seq.is_empty()
            || !seq.bytes().all(|b| b.is_ascii_digit())
            || !e.file_type().is_ok_and(|t| t.is_file())
        {
            continue;
        }
        flat.entry(base.to_string())
            .or_default()
            .push((seq.to_string(), e.path()));
    }
    let mut moved = 0;
    for (base, mut segments) in flat {
        // Oldest first, so that a crash midway leaves the directory the
        // lower numbers and the flat files the rest.
        segments.sort_by_key(|(seq, _)| seq.parse::<u64>().unwrap_or(u64::MAX));
        let dir = segment_dir(&data_dir.join(&base));
        let newest_in_dir = std::fs::read_dir(&dir).ok().and_then(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u64>().ok())
                .max()
        });
        let oldest_flat = segments
            .first()
            .and_then(|(seq, _)| seq.parse::<u64>().ok());
        // Flat segments that do not follow the directory's are another
        // history (an earlier version ran after a move): not mixed in.
        if let Some(newest) = newest_in_dir
            && oldest_flat.is_none_or(|oldest| oldest <= newest)
        {
            failed.push(format!(
                "{base}: {} flat segments that do not follow those in {}; left in place",
                segments.len(),
                dir.display()
            ));
            continue;
        }
        let mut moved_here = 0;
        for (seq, from) in segments {
            match std::fs::create_dir_all(&dir).and_then(|_| std::fs::rename(&from, dir.join(&seq)))
            {
                Ok(()) => moved_here += 1,
                Err(err) => failed.push(format!("{}: {err}", from.display())),
            }
        }
        if moved_here > 0
            && let Err(err) = sync_dir(&dir)
        {
            failed.push(format!("syncing {}: {err}", dir.display()));
        }
        moved += moved_here;
    }
    if moved > 0
        && let Err(err) = sync_dir(data_dir)
    {
        failed.push(format!("syncing {}: {err}", data_dir.display()));
    }
    if !failed.is_empty() {
        return Err(std::io::Error::other(format!(
            "{moved} moved; {}",
            failed.join("; ")
        )));
    }
    Ok(moved)
}

/// One framed entry at `pos`: the difference and the framed size.
fn read_entry(bytes: &[u8], pos: usize) -> Option<(Diff, usize)> {
    let len = u32::from_le_bytes(bytes.get(pos..pos + 4)?.try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(bytes.get(pos + 4..pos + 8)?.try_into().ok()?);
    let payload = bytes.get(pos + 8..pos + 8 + len)?;
    if crc32fast::hash(payload) != crc {
        return None;
    }
    Some((decode_payload(payload)?, 8 + len))
}

/// Cuts a segment at `len` octets (a torn or corrupt tail), fsynced.
fn cut(path: &Path, len: u64) -> std::io::Result<()> {
    let f = OpenOptions::new().write(true).open(path)?;
    f.set_len(len)?;
    f.sync_all()?;
    drop(f);
    sync_dir(dir_of(path))
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
/// a record added and later deleted disappears, and the reverse; a record
/// listed twice goes out once. The records are borrowed from the links, and
/// hashed with foldhash, not SipHash: an IXFR of 200,000 records spent most
/// of its time copying them and hashing the copies.
pub fn condense(links: &[Arc<Diff>]) -> (Vec<&Rr>, Vec<&Rr>) {
    let dels = links.iter().map(|d| d.deleted.len()).sum();
    let adds = links.iter().map(|d| d.added.len()).sum();
    let mut deleted: Vec<&Rr> = Vec::with_capacity(dels);
    let mut added: Vec<&Rr> = Vec::with_capacity(adds);
    let mut del_set: RrSet = RrSet::with_capacity_and_hasher(dels, Default::default());
    let mut add_set: RrSet = RrSet::with_capacity_and_hasher(adds, Default::default());
    let mut cancelled = false;
    for d in links {
        for r in &d.deleted {
            if add_set.remove(r) {
                cancelled = true;
            } else if del_set.insert(r) {
                deleted.push(r);
            }
        }
        for r in &d.added {
            if del_set.remove(r) {
                cancelled = true;
            } else if add_set.insert(r) {
                added.push(r);
            }
        }
    }
    // Only a cancellation leaves in the lists a record no longer in its set.
    if cancelled {
        deleted.retain(|r| del_set.contains(r));
        added.retain(|r| add_set.contains(r));
    }
    (deleted, added)
}

type RrSet<'a> = hashbrown::HashSet<&'a Rr, foldhash::fast::RandomState>;

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
        let base = dir.path().join("t.journal");
        let (mut j, w) = Journal::open(&base, 10, 1 << 20).unwrap();
        assert!(w.is_empty());
        j.append(d(1, 2, vec![], vec![a(1)])).unwrap();
        j.append(d(2, 3, vec![a(1)], vec![a(2)])).unwrap();
        let (j2, w) = Journal::open(&base, 10, 1 << 20).unwrap();
        assert!(w.is_empty());
        assert_eq!(j2.entries(), j.entries());
        // Cut the segment in the middle of the last entry.
        let p = segment_dir(&base).join("1");
        let len = std::fs::metadata(&p).unwrap().len();
        let f = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
        f.set_len(len - 3).unwrap();
        let (j3, w) = Journal::open(&base, 10, 1 << 20).unwrap();
        assert_eq!(w.len(), 1, "{w:?}");
        assert_eq!(j3.last_serial(), Some(2));
        // A flipped byte is caught by the checksum.
        let mut bytes = std::fs::read(&p).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::write(&p, bytes).unwrap();
        let (j4, w) = Journal::open(&base, 10, 1 << 20).unwrap();
        assert_eq!((w.len(), j4.len()), (1, 0));
    }

    #[test]
    fn refuses_a_change_that_does_not_follow() {
        let dir = tempfile::tempdir().unwrap();
        let (mut j, _) = Journal::open(&dir.path().join("t.journal"), 10, 1 << 20).unwrap();
        j.append(d(1, 2, vec![], vec![a(1)])).unwrap();
        let e = j.append(d(5, 6, vec![], vec![a(5)])).unwrap_err();
        assert!(e.to_string().contains("from serial 5"), "{e}");
        assert_eq!(j.last_serial(), Some(2));
        // Restarting the history takes it.
        assert!(
            j.append_or_restart(d(5, 6, vec![], vec![a(5)]))
                .unwrap()
                .is_some()
        );
        assert_eq!(j.entries().len(), 1);
    }

    /// Trimming deletes whole old segments, never rewrites one; a crash
    /// that leaves any prefix of those deletions undone opens to the same
    /// bounded, chained history.
    #[test]
    fn trimming_deletes_old_segments_and_survives_a_crash_midway() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("t.journal");
        let (mut j, _) = Journal::open(&base, 8, 1 << 20).unwrap();
        for s in 1..=40 {
            j.append(d(s, s + 1, vec![], vec![a(s as u8)])).unwrap();
            // A crash between the append and the trim: copy the files.
            if s == 30 {
                let snap = dir.path().join("snap/t.journal.d");
                std::fs::create_dir_all(&snap).unwrap();
                for e in std::fs::read_dir(segment_dir(&base)).unwrap() {
                    let e = e.unwrap();
                    std::fs::copy(e.path(), snap.join(e.file_name())).unwrap();
                }
            }
            j.trim().unwrap();
        }
        assert_eq!(j.len(), 8);
        // Segments of two entries: at most the bounds plus one segment.
        assert!(j.segment_count() <= 5, "{}", j.segment_count());
        let (j2, w) = Journal::open(&base, 8, 1 << 20).unwrap();
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(j2.entries(), j.entries());
        // The snapshot, opened, trims itself to a chained, bounded history.
        let (j3, w) = Journal::open(&dir.path().join("snap/t.journal"), 8, 1 << 20).unwrap();
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(j3.len(), 8);
        assert_eq!(j3.last_serial(), Some(31));
        assert!(chain(&j3.entries(), 23, 31).is_some());
    }

    /// Segments an earlier version wrote flat in data_dir are moved into
    /// the journal's directory at start-up and read as before, trimmed
    /// ones (first segment above 1) included; a crash that moved only some
    /// is finished by the next start.
    #[test]
    fn flat_segments_are_moved_into_the_journal_directory() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("t.journal");
        let (mut j, _) = Journal::open(&base, 4, 1 << 20).unwrap();
        for s in 1..=20 {
            j.append(d(s, s + 1, vec![], vec![a(s as u8)])).unwrap();
            j.trim().unwrap();
        }
        let kept = j.entries();
        drop(j);
        // Flatten it as the earlier layout had it, one segment left behind
        // in the directory (a crash midway through a move).
        let mut segs: Vec<_> = std::fs::read_dir(segment_dir(&base))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        segs.sort_by_key(|n| n.parse::<u64>().unwrap());
        assert!(segs[0] != "1", "{segs:?}");
        for n in &segs[1..] {
            std::fs::rename(
                segment_dir(&base).join(n),
                dir.path().join(format!("t.journal.{n}")),
            )
            .unwrap();
        }
        std::fs::write(dir.path().join("t.journal.zone"), b"not a segment").unwrap();
        assert_eq!(move_flat_segments(dir.path()).unwrap(), segs.len() - 1);
        assert_eq!(move_flat_segments(dir.path()).unwrap(), 0);
        let (j, w) = Journal::open(&base, 4, 1 << 20).unwrap();
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(j.entries(), kept);
        assert!(dir.path().join("t.journal.zone").is_file());
    }

    /// A journal with segments both flat and in its directory (an earlier
    /// version ran after a move) keeps both sets as they are: its two
    /// histories are never mixed. Other journals still move, and the error
    /// names the one left.
    #[test]
    fn a_journal_with_segments_in_both_places_is_left_as_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("t.journal");
        let (mut j, _) = Journal::open(&base, 10, 1 << 20).unwrap();
        j.append(d(1, 2, vec![], vec![a(1)])).unwrap();
        let newer = std::fs::read(segment_dir(&base).join("1")).unwrap();
        std::fs::write(dir.path().join("t.journal.1"), b"older").unwrap();
        std::fs::write(dir.path().join("t.journal.2"), b"older").unwrap();
        std::fs::write(dir.path().join("u.journal.4"), MAGIC).unwrap();
        let e = move_flat_segments(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains("t.journal: 2 flat segments") && e.contains("1 moved"),
            "{e}"
        );
        assert_eq!(std::fs::read(segment_dir(&base).join("1")).unwrap(), newer);
        assert!(!segment_dir(&base).join("2").exists());
        assert!(
            segment_dir(&dir.path().join("u.journal"))
                .join("4")
                .is_file()
        );
        assert!(dir.path().join("t.journal.1").is_file());
        assert!(dir.path().join("t.journal.2").is_file());
    }

    /// A cleared journal leaves no directory behind.
    #[test]
    fn clearing_removes_the_segment_directory() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("t.journal");
        let (mut j, _) = Journal::open(&base, 4, 1 << 20).unwrap();
        j.append(d(1, 2, vec![], vec![a(1)])).unwrap();
        assert!(segment_dir(&base).is_dir());
        j.clear().unwrap();
        assert!(!segment_dir(&base).exists());
        j.append(d(5, 6, vec![], vec![a(5)])).unwrap();
        assert_eq!(Journal::open(&base, 4, 1 << 20).unwrap().0.len(), 1);
    }

    /// A journal from before segments (one file) reads as the oldest one.
    #[test]
    fn reads_a_single_file_journal() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("t.journal");
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&frame(&d(1, 2, vec![], vec![a(1)])));
        std::fs::write(&base, bytes).unwrap();
        let (mut j, w) = Journal::open(&base, 10, 1 << 20).unwrap();
        assert!(w.is_empty());
        j.append(d(2, 3, vec![], vec![a(2)])).unwrap();
        assert_eq!(Journal::open(&base, 10, 1 << 20).unwrap().0.len(), 2);
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
        assert_eq!(del, vec![&a(1)]);
        assert_eq!(add, vec![&a(3), &a(4)]);
        assert!(up_to_date(4, 4) && up_to_date(5, 4) && !up_to_date(3, 4));
    }
}
