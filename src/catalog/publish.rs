//! Where replaced versions go to die, and how their memory gets back to the
//! kernel.
//!
//! A version replaced in the catalog may still be read by a query worker
//! (an `arc_swap` guard held for one batch) or a transfer out. Whoever drops
//! the last reference frees it: if that were a UDP worker, freeing a large
//! zone would stall its queries, and the freed memory would sit in glibc's
//! free lists after the reload's `malloc_trim` already ran (benches/soak.py
//! saw the RSS creep up by one zone's size at a time). So replaced catalogs
//! are handed to one reaper thread, which waits until it holds the last
//! reference, drops it there, and then trims the heap.

use super::{Catalog, SharedCatalog};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// How often the reaper looks again at versions still in use.
const POLL: Duration = Duration::from_millis(10);

/// Swaps in the catalog `change` makes from the current one: readers see the
/// old or the new catalog, never a mix. Update every other holder of the
/// replaced version before calling this, so the reaper's drop is the last.
pub fn swap(catalog: &SharedCatalog, change: impl FnMut(&Arc<Catalog>) -> Catalog) {
    retire(catalog.rcu(change));
}

/// Hands a replaced catalog to the reaper thread.
fn retire(old: Arc<Catalog>) {
    static REAPER: OnceLock<Option<Sender<Arc<Catalog>>>> = OnceLock::new();
    let reaper = REAPER.get_or_init(|| {
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("tandem-reaper".into())
            .spawn(move || reap(rx))
            .ok()
            .map(|_| tx)
    });
    // Without a reaper (thread creation failed) the last reader frees it.
    if let Some(tx) = reaper {
        let _ = tx.send(old);
    }
}

/// The least time between two heap trims: `malloc_trim` walks the whole
/// heap, and 10,000 catalog members starting retire 20,000 catalogs in
/// seconds (a trim after each was 7 % of provisioning's CPU).
const TRIM_GAP: Duration = Duration::from_millis(500);

fn reap(rx: mpsc::Receiver<Arc<Catalog>>) {
    let mut held: Vec<Arc<Catalog>> = Vec::new();
    let mut trim_due = false;
    let mut last_trim = std::time::Instant::now() - TRIM_GAP;
    loop {
        let next = if held.is_empty() && !trim_due {
            rx.recv().map_err(|_| RecvTimeoutError::Disconnected)
        } else {
            rx.recv_timeout(POLL)
        };
        match next {
            Ok(old) => held.push(old),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        // Nobody can take a new reference to a retired catalog, so a count
        // of one stays one.
        let before = held.len();
        held.retain(|c| Arc::strong_count(c) > 1);
        trim_due |= held.len() < before;
        if trim_due && last_trim.elapsed() >= TRIM_GAP {
            trim_heap();
            trim_due = false;
            last_trim = std::time::Instant::now();
        }
    }
}

/// Tunes glibc's malloc for a process that builds large, short-lived zone
/// versions on whichever blocking thread runs the reload or transfer:
/// - one arena: with an arena per thread, each keeps the freed memory of the
///   builds it ran (soak: +33 % RSS over 8 minutes with the default);
/// - a fixed, lower mmap threshold (64 KiB): a zone's larger shard buffers
///   are mapped on their own and go back to the kernel whole when a version
///   is freed. glibc's default (128 KiB, raised to the largest block ever
///   freed) puts them in the heap, which fragments: a secondary following
///   one edit a second held 4.0 MB free in its heap after 400 versions of a
///   10k-name zone, 1.2 MB with 64 KiB (the primary: 1.4 → 0.4 MB). 32 KiB
///   frees as much but made a 10-record IXFR on 1M names 7.6 ms instead of
///   5.9 ms (fresh pages for every rebuilt shard); 64 KiB keeps 5.9 ms.
///
/// The query path does not allocate, so neither costs it anything. Settings
/// given in the environment (MALLOC_ARENA_MAX, MALLOC_MMAP_THRESHOLD_,
/// GLIBC_TUNABLES) win.
pub fn tune_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let set = |var: &str| std::env::var_os(var).is_some();
        let tunables = std::env::var("GLIBC_TUNABLES").unwrap_or_default();
        // SAFETY: mallopt only changes allocator tuning; called before
        // other threads start.
        unsafe {
            if !set("MALLOC_ARENA_MAX") && !tunables.contains("arena_max") {
                libc::mallopt(libc::M_ARENA_MAX, 1);
            }
            if !set("MALLOC_MMAP_THRESHOLD_") && !tunables.contains("mmap_threshold") {
                libc::mallopt(libc::M_MMAP_THRESHOLD, 64 * 1024);
            }
        }
    }
}

/// Returns freed heap memory to the kernel (glibc keeps it otherwise).
pub fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases unused memory.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The allocator's view of the heap, for /metrics: memory in use by tandem
/// versus memory held free by malloc (fragmentation) tells a leak from a
/// heap that has not been handed back.
pub struct Heap {
    pub in_use: usize,
    pub free: usize,
    pub mapped: usize,
}

pub fn heap() -> Option<Heap> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallinfo2 only reads allocator statistics.
        let m = unsafe { libc::mallinfo2() };
        Some(Heap {
            in_use: m.uordblks + m.hblkhd,
            free: m.fordblks,
            mapped: m.hblkhd,
        })
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    None
}
