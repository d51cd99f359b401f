//! What a secondary keeps on disk, per zone: its copy of the zone (master
//! format, rewritten atomically), the journal of differences received since
//! (appended and fsynced), and its timers. After a crash at any moment the
//! copy plus the journal's chain from it give the last accepted version.

use crate::fsutil::write_atomic_with;
use crate::xfr::journal::{self, Journal};
use crate::zone::diff::Diff;
use crate::zone::file::write as text;
use crate::zone::{Zone, load_zone_file};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tracing::warn;

/// Persisted timers (Unix seconds).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timers {
    /// Serial of the zone copy file (the journal replays from it).
    pub copy_serial: u32,
    pub last_refresh: u64,
    pub expires_at: u64,
}

pub struct Store {
    pub copy: PathBuf,
    timers_path: PathBuf,
    pub journal: Option<Journal>,
    pub timers: Timers,
    /// The timers changed but are not on disk yet (`save_pending_timers`).
    timers_pending: bool,
}

/// The timers: a slot file (written after every transfer, on the path to
/// serving it: one fsync), or the text form older versions wrote.
fn read_timers(p: &Path) -> Option<Timers> {
    let bytes = std::fs::read(p).ok()?;
    if let Some(s) = crate::fsutil::read_slot(&bytes) {
        return Some(Timers {
            copy_serial: u32::from_be_bytes(s[0..4].try_into().ok()?),
            last_refresh: u64::from_be_bytes(s[4..12].try_into().ok()?),
            expires_at: u64::from_be_bytes(s[12..20].try_into().ok()?),
        });
    }
    let text = String::from_utf8(bytes).ok()?;
    let mut t = Timers::default();
    for line in text.lines() {
        let (k, v) = line.split_once('=')?;
        match k {
            "copy_serial" => t.copy_serial = v.trim().parse().ok()?,
            "last_refresh" => t.last_refresh = v.trim().parse().ok()?,
            "expires_at" => t.expires_at = v.trim().parse().ok()?,
            _ => {}
        }
    }
    Some(t)
}

const TIMERS_LINE: &str = "; tandem timers:";

/// The timers as the first line of a copy (a comment to every reader).
fn timers_line(t: &Timers) -> String {
    format!(
        "{TIMERS_LINE} last_refresh={} expires_at={}\n",
        t.last_refresh, t.expires_at
    )
}

/// The timers in the first line of the copy at `path`, if it has them.
fn copy_timers(path: &Path) -> Option<Timers> {
    let mut head = [0u8; 128];
    let n = std::fs::File::open(path).ok()?.read(&mut head).ok()?;
    let line = std::str::from_utf8(&head[..n])
        .ok()?
        .strip_prefix(TIMERS_LINE)?
        .split('\n')
        .next()?;
    let mut t = Timers::default();
    for field in line.split_whitespace() {
        match field.split_once('=')? {
            ("last_refresh", v) => t.last_refresh = v.parse().ok()?,
            ("expires_at", v) => t.expires_at = v.parse().ok()?,
            _ => {}
        }
    }
    Some(t)
}

impl Store {
    pub fn open(
        copy: PathBuf,
        data_dir: &Path,
        stem: &str,
        max_entries: usize,
        max_bytes: u64,
    ) -> Store {
        let timers_path = data_dir.join(format!("{stem}timers"));
        let journal = match Journal::open(
            &data_dir.join(format!("{stem}journal")),
            max_entries,
            max_bytes,
        ) {
            Ok((j, warnings)) => {
                for w in warnings {
                    warn!("{w}");
                }
                Some(j)
            }
            Err(e) => {
                warn!("{e}; keeping no journal");
                None
            }
        };
        let timers = read_timers(&timers_path).unwrap_or_default();
        Store {
            copy,
            timers_path,
            journal,
            timers,
            timers_pending: false,
        }
    }

    /// The last accepted version: the copy, brought forward by the journal.
    pub fn load(&mut self, apex: &[u8]) -> Option<Zone> {
        if !self.copy.exists() {
            return None;
        }
        let mut z = match load_zone_file(&self.copy, apex) {
            Ok(l) => l.zone,
            Err(e) => {
                warn!("saved copy unusable ({e}); the zone will be transferred again");
                return None;
            }
        };
        // The copy on disk, not the timers file (which may lag a crash
        // behind it), says where replay starts; its first line holds the
        // timers as they were when it was written, newer than the timers
        // file's unless a refresh came since.
        if let Some(t) = copy_timers(&self.copy)
            && t.last_refresh > self.timers.last_refresh
        {
            self.timers = t;
        }
        self.timers.copy_serial = z.serial();
        let history = self.history();
        if let Some(last) = history.last()
            && let Some(links) = journal::chain(&history, z.serial(), last.to_serial())
        {
            for d in links {
                match z.apply(&d.deleted, &d.added, &d.to) {
                    Ok(next) => z = next,
                    Err(e) => {
                        warn!(
                            "journal entry {} → {} does not apply ({e}); serving serial {}",
                            d.from_serial(),
                            d.to_serial(),
                            z.serial()
                        );
                        break;
                    }
                }
            }
        }
        Some(z)
    }

    /// Is a version on disk that a restart would serve?
    pub fn holds_a_version(&self) -> bool {
        self.copy.exists()
    }

    pub fn set_journal_bounds(&mut self, max_entries: usize, max_bytes: u64) {
        if let Some(j) = self.journal.as_mut() {
            j.set_bounds(max_entries, max_bytes);
        }
    }

    pub fn history(&self) -> Vec<Arc<Diff>> {
        self.journal
            .as_ref()
            .map(|j| j.entries())
            .unwrap_or_default()
    }

    /// Writes the copy, its first line the timers as they are now: a zone
    /// copied whole (every catalog member's first transfer) needs no timers
    /// file of its own until a later refresh leaves the copy as it is.
    /// Creating two files per member was half of provisioning 10,000
    /// catalog members (README "Catalog zones at scale").
    fn write_copy(&mut self, zone: &Zone) -> std::io::Result<()> {
        let head = timers_line(&self.timers);
        write_atomic_with(&self.copy, |out| {
            out.write_all(head.as_bytes())?;
            text::write_zone(zone, out)
        })?;
        // Only once it is on disk: replay starts from here.
        self.timers.copy_serial = zone.serial();
        Ok(())
    }

    /// Saves a whole new version: the copy, and (for followers' IXFR) the
    /// difference from the previous version if there was one.
    pub fn save_full(&mut self, zone: &Zone, diff: Option<Diff>) -> std::io::Result<()> {
        // The copy first: once it is on disk no journal entry is needed to
        // replay, so the journal may be trimmed freely.
        self.write_copy(zone)?;
        if let Some(j) = self.journal.as_mut() {
            let r = match diff {
                Some(d) => j
                    .append_or_restart(d)
                    .and_then(|restart| j.trim().map(|_| restart)),
                None => j.clear().map(|_| None),
            };
            match r {
                Ok(None) => {}
                Ok(Some(why)) => warn!("{why}"),
                Err(e) => warn!("{e}"),
            }
        }
        // The copy's first line holds the timers.
        Ok(())
    }

    /// Saves incremental changes: appended to the journal; the copy is
    /// rewritten when the journal no longer reaches back to it, or would not
    /// once trimmed. The order (append, copy, trim) keeps a replayable chain
    /// on disk whenever the process dies.
    pub fn save_diffs(&mut self, zone: &Zone, diffs: Vec<Diff>) -> std::io::Result<()> {
        // Differences that do not follow the journal restart its history:
        // the copy moves to the new version first, so no crash can leave a
        // copy whose replay chain was deleted.
        let first = diffs.first().map(|d| d.from_serial());
        if let Some(j) = self.journal.as_ref()
            && j.last_serial().is_some_and(|last| Some(last) != first)
        {
            self.write_copy(zone)?;
            if let Some(j) = self.journal.as_mut()
                && let Err(e) = j.clear()
            {
                warn!("{e}");
            }
        }
        let mut ok = self.journal.is_some();
        if let Some(j) = self.journal.as_mut() {
            for d in diffs {
                if let Err(e) = j.append(d) {
                    warn!("{e}");
                    ok = false;
                    break;
                }
            }
        }
        let from = self.timers.copy_serial;
        let history = self.history();
        let cut = self
            .journal
            .as_ref()
            .is_some_and(|j| j.trim_would_cut(from));
        if !ok || cut || journal::chain(&history, from, zone.serial()).is_none() {
            self.write_copy(zone)?;
        }
        if let Some(j) = self.journal.as_mut()
            && let Err(e) = j.trim()
        {
            warn!("{e}");
        }
        if self.timers.copy_serial != from {
            // The copy moved, and its first line holds the timers.
            return Ok(());
        }
        // Only the refresh times changed: they are saved after the swap
        // (`save_pending_timers`), off the path to serving the version. A
        // crash in between leaves the previous refresh times, which a
        // restart corrects with its first refresh.
        self.timers_pending = true;
        Ok(())
    }

    /// Saves timers left for after the swap by `save_diffs`.
    pub fn save_pending_timers(&mut self) -> std::io::Result<()> {
        if !std::mem::take(&mut self.timers_pending) {
            return Ok(());
        }
        self.save_timers()
    }

    pub fn save_timers(&self) -> std::io::Result<()> {
        let t = self.timers;
        let mut s = [0u8; crate::fsutil::SLOT_PAYLOAD];
        s[0..4].copy_from_slice(&t.copy_serial.to_be_bytes());
        s[4..12].copy_from_slice(&t.last_refresh.to_be_bytes());
        s[12..20].copy_from_slice(&t.expires_at.to_be_bytes());
        crate::fsutil::write_slot(&self.timers_path, &s)
    }
}
