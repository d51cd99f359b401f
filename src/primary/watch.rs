//! Watches zone files (and their `$INCLUDE`s) through inotify (the `notify`
//! crate), falling back to polling. Directories are watched, not files, so
//! editors that write a new file and rename it over the old one are seen.
//! Events name the zone and say whether a write is complete (the file was
//! closed after writing, or renamed into place) or may still be under way;
//! the reloader reloads at once after the first and waits for quiet after
//! the second, and coalesces bursts.

use crate::config::ZoneWatch;
use notify::event::{AccessKind, AccessMode, ModifyKind, RenameMode};
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;
use tracing::{info, warn};

/// A zone whose file changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changed {
    pub zone: String,
    /// The change is whole: the file was closed after writing, renamed into
    /// place, or found changed by a poll, a signal or a config reload.
    /// Otherwise a writer may still be at it (a write without its close yet).
    pub complete: bool,
}

impl Changed {
    pub fn complete(zone: String) -> Changed {
        Changed {
            zone,
            complete: true,
        }
    }
}

/// Whether an event ends a write (see `Changed::complete`), or is none of
/// ours (`None`: reads, closes without writing).
fn completes(kind: &EventKind) -> Option<bool> {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => Some(true),
        EventKind::Access(_) => None,
        EventKind::Modify(ModifyKind::Name(RenameMode::To | RenameMode::Both)) => Some(true),
        _ => Some(false),
    }
}

pub struct FileWatch {
    watcher: Mutex<Box<dyn Watcher + Send>>,
    files: Arc<Mutex<HashMap<PathBuf, HashSet<String>>>>,
    dirs: Mutex<HashSet<PathBuf>>,
    /// For polling: each file as it was when its zone last read it.
    stamps: Arc<Mutex<HashMap<PathBuf, Stamp>>>,
}

fn absolute(p: &Path) -> PathBuf {
    let dir = crate::fsutil::dir_of(p);
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    match p.file_name() {
        Some(f) => dir.join(f),
        None => dir,
    }
}

impl FileWatch {
    /// Starts watching; each change to a registered file sends the names of the zones read from it.
    pub fn start(mode: ZoneWatch, tx: UnboundedSender<Changed>) -> FileWatch {
        let files: Arc<Mutex<HashMap<PathBuf, HashSet<String>>>> = Arc::default();
        let map = files.clone();
        let poll_tx = tx.clone();
        let stamps: Arc<Mutex<HashMap<PathBuf, Stamp>>> = Arc::default();
        let handler = move |res: notify::Result<notify::Event>| {
            let Ok(ev) = res else { return };
            let Some(complete) = completes(&ev.kind) else {
                return;
            };
            let Ok(map) = map.lock() else { return };
            for p in &ev.paths {
                if let Some(zones) = map.get(p) {
                    for z in zones {
                        let _ = tx.send(Changed {
                            zone: z.clone(),
                            complete,
                        });
                    }
                }
            }
        };
        let watcher: Box<dyn Watcher + Send> = match mode {
            ZoneWatch::Off => Box::new(NoWatch),
            ZoneWatch::Poll => {
                spawn_poller(files.clone(), stamps.clone(), poll_tx);
                Box::new(NoWatch)
            }
            ZoneWatch::Auto => match RecommendedWatcher::new(handler, notify::Config::default()) {
                Ok(w) => Box::new(w),
                Err(e) => {
                    warn!("inotify unavailable ({e}); polling zone files every second");
                    spawn_poller(files.clone(), stamps.clone(), poll_tx);
                    Box::new(NoWatch)
                }
            },
        };
        FileWatch {
            watcher: Mutex::new(watcher),
            files,
            dirs: Mutex::default(),
            stamps,
        }
    }

    /// Sets the files whose changes reload zone `zone`.
    pub fn set_files(&self, zone: &str, paths: &[PathBuf]) {
        let paths: Vec<PathBuf> = paths.iter().map(|p| absolute(p)).collect();
        if let Ok(mut map) = self.files.lock() {
            for zones in map.values_mut() {
                zones.remove(zone);
            }
            map.retain(|_, z| !z.is_empty());
            for p in &paths {
                map.entry(p.clone()).or_default().insert(zone.to_string());
            }
        }
        if let Ok(mut stamps) = self.stamps.lock() {
            for p in &paths {
                stamps.insert(p.clone(), stamp(p));
            }
        }
        let (Ok(mut dirs), Ok(mut w)) = (self.dirs.lock(), self.watcher.lock()) else {
            return;
        };
        for p in &paths {
            let Some(dir) = p.parent() else { continue };
            if dirs.insert(dir.to_path_buf()) {
                match w.watch(dir, RecursiveMode::NonRecursive) {
                    Ok(()) => info!(dir = %dir.display(), "watching for zone file changes"),
                    Err(e) => warn!(dir = %dir.display(), "cannot watch: {e}"),
                }
            }
        }
    }
}

/// What a poll compares: modification time (with nanoseconds), size, inode.
type Stamp = Option<(Option<std::time::SystemTime>, u64, u64)>;

fn stamp(p: &Path) -> Stamp {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(p)
        .ok()
        .map(|m| (m.modified().ok(), m.len(), m.ino()))
}

/// Polls the registered files every second. notify's own poller compares
/// whole seconds of mtime and would miss an edit made in the same second as
/// the previous look.
fn spawn_poller(
    files: Arc<Mutex<HashMap<PathBuf, HashSet<String>>>>,
    stamps: Arc<Mutex<HashMap<PathBuf, Stamp>>>,
    tx: UnboundedSender<Changed>,
) {
    let spawned = std::thread::Builder::new()
        .name("zone-poll".into())
        .spawn(move || {
            loop {
                std::thread::sleep(Duration::from_secs(1));
                let watched: Vec<(PathBuf, Vec<String>)> = match files.lock() {
                    Ok(m) => m
                        .iter()
                        .map(|(p, z)| (p.clone(), z.iter().cloned().collect()))
                        .collect(),
                    Err(_) => return,
                };
                for (path, zones) in watched {
                    let now = stamp(&path);
                    let Ok(mut seen) = stamps.lock() else { return };
                    if let Some(before) = seen.insert(path, now) {
                        drop(seen);
                        if before != now {
                            for z in zones {
                                if tx.send(Changed::complete(z)).is_err() {
                                    return;
                                }
                            }
                        }
                    }
                }
            }
        });
    if let Err(e) = spawned {
        warn!("cannot start the zone-file poller ({e}); reload with SIGHUP");
    }
}

/// Stand-in when neither inotify nor polling can start.
struct NoWatch;

impl Watcher for NoWatch {
    fn new<F: notify::EventHandler>(_: F, _: notify::Config) -> notify::Result<Self> {
        Ok(NoWatch)
    }
    fn watch(&mut self, _: &Path, _: RecursiveMode) -> notify::Result<()> {
        Ok(())
    }
    fn unwatch(&mut self, _: &Path) -> notify::Result<()> {
        Ok(())
    }
    fn kind() -> notify::WatcherKind {
        notify::WatcherKind::NullWatcher
    }
}
