//! Watches zone files (and their `$INCLUDE`s) through inotify (the `notify`
//! crate), falling back to polling. Directories are watched, not files, so
//! editors that write a new file and rename it over the old one are seen.
//! Events only name the zone; the reloader coalesces bursts.

use notify::{EventKind, PollWatcher, RecommendedWatcher, RecursiveMode, Watcher};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;
use tracing::{info, warn};

pub struct FileWatch {
    watcher: Mutex<Box<dyn Watcher + Send>>,
    files: Arc<Mutex<HashMap<PathBuf, HashSet<usize>>>>,
    dirs: Mutex<HashSet<PathBuf>>,
}

fn absolute(p: &Path) -> PathBuf {
    let dir = p
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    match p.file_name() {
        Some(f) => dir.join(f),
        None => dir,
    }
}

impl FileWatch {
    /// Starts watching; each change to a registered file sends its zone's index.
    pub fn start(tx: UnboundedSender<usize>) -> FileWatch {
        let files: Arc<Mutex<HashMap<PathBuf, HashSet<usize>>>> = Arc::default();
        let map = files.clone();
        let handler = move |res: notify::Result<notify::Event>| {
            let Ok(ev) = res else { return };
            if matches!(ev.kind, EventKind::Access(_)) {
                return;
            }
            let Ok(map) = map.lock() else { return };
            for p in &ev.paths {
                if let Some(zones) = map.get(p) {
                    for &z in zones {
                        let _ = tx.send(z);
                    }
                }
            }
        };
        let watcher: Box<dyn Watcher + Send> =
            match RecommendedWatcher::new(handler.clone(), notify::Config::default()) {
                Ok(w) => Box::new(w),
                Err(e) => {
                    warn!("inotify unavailable ({e}); polling zone files every second");
                    let cfg = notify::Config::default()
                        .with_poll_interval(Duration::from_secs(1))
                        .with_compare_contents(false);
                    match PollWatcher::new(handler, cfg) {
                        Ok(w) => Box::new(w),
                        Err(e) => {
                            warn!("cannot watch zone files ({e}); reload with SIGHUP");
                            Box::new(NoWatch)
                        }
                    }
                }
            };
        FileWatch {
            watcher: Mutex::new(watcher),
            files,
            dirs: Mutex::default(),
        }
    }

    /// Sets the files whose changes reload zone `zone`.
    pub fn set_files(&self, zone: usize, paths: &[PathBuf]) {
        let paths: Vec<PathBuf> = paths.iter().map(|p| absolute(p)).collect();
        if let Ok(mut map) = self.files.lock() {
            for zones in map.values_mut() {
                zones.remove(&zone);
            }
            map.retain(|_, z| !z.is_empty());
            for p in &paths {
                map.entry(p.clone()).or_default().insert(zone);
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
