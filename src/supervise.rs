//! What keeps one bad input from taking the server down. The bar is zero
//! panics; this is for the one nobody found yet:
//!
//! - `supervised` runs one unit of work (a UDP query, a TCP message) and
//!   turns a panic into an error carrying the panic's message, so the worker
//!   answers the next packet instead of dying;
//! - the panic hook logs panics outside supervision (rate-limited) and hands
//!   the message to `supervised` inside it, so nothing is printed per packet;
//! - `lock` takes a mutex a panicking thread poisoned, instead of skipping
//!   the work behind it;
//! - `tandem_panics_total{path}` counts them all.

use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard};

/// Where a panic was caught, for /metrics.
#[derive(Clone, Copy, Debug)]
pub enum Path {
    Udp,
    Tcp,
    Transfer,
    Zone,
}

pub const PATHS: [(Path, &str); 4] = [
    (Path::Udp, "udp"),
    (Path::Tcp, "tcp"),
    (Path::Transfer, "transfer"),
    (Path::Zone, "zone"),
];

static PANICS: [AtomicU64; 4] = [const { AtomicU64::new(0) }; 4];

pub fn count(path: Path) {
    PANICS[path as usize].fetch_add(1, Relaxed);
}

pub fn panics(path: Path) -> u64 {
    PANICS[path as usize].load(Relaxed)
}

thread_local! {
    static SUPERVISED: Cell<bool> = const { Cell::new(false) };
    static LAST: RefCell<Option<String>> = const { RefCell::new(None) };
}

fn describe(info: &panic::PanicHookInfo) -> String {
    let msg = info
        .payload()
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| info.payload().downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".into());
    match info.location() {
        Some(l) => format!("{msg} at {}:{}", l.file(), l.line()),
        None => msg,
    }
}

/// Routes panics to the log (once tracing is set up).
pub fn install_hook() {
    panic::set_hook(Box::new(|info| {
        let msg = describe(info);
        if SUPERVISED.with(Cell::get) {
            LAST.with(|l| *l.borrow_mut() = Some(msg));
        } else {
            let thread = std::thread::current();
            let name = thread.name().unwrap_or("unnamed");
            crate::error_limited!(thread = name, "panic: {msg}");
        }
    }));
}

/// Runs `f`; a panic inside becomes `Err(its message)`.
pub fn supervised<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    let was = SUPERVISED.with(|s| s.replace(true));
    let r = panic::catch_unwind(AssertUnwindSafe(f));
    SUPERVISED.with(|s| s.set(was));
    r.map_err(|_| {
        LAST.with(|l| l.borrow_mut().take())
            .unwrap_or_else(|| "panic".into())
    })
}

/// Logs (rate-limited) and counts a panic caught answering `request`.
pub fn caught(path: Path, msg: &str, request: &[u8]) {
    count(path);
    let hex = data_encoding::HEXLOWER.encode(&request[..request.len().min(512)]);
    crate::error_limited!(
        ?path,
        request = %hex,
        "recovered from a panic answering a request (please report it with this line): {msg}"
    );
}

/// Test hook, off unless `TANDEM_FAULT_PANIC` names a domain when the
/// server starts: a query for that name panics, and so does the first reload
/// of a zone of that name. Tests use it to check that supervision holds;
/// it costs one load per query when unset.
fn fault_here(lower_name: &[u8]) -> bool {
    static FAULT: std::sync::OnceLock<Option<Vec<u8>>> = std::sync::OnceLock::new();
    let fault = FAULT.get_or_init(|| {
        let mut n =
            crate::zone::name::parse_absolute(&std::env::var("TANDEM_FAULT_PANIC").ok()?).ok()?;
        crate::zone::name::lowercase(&mut n);
        Some(n)
    });
    fault.as_deref() == Some(lower_name)
}

pub fn inject_fault(lower_name: &[u8]) {
    if fault_here(lower_name) {
        panic!(
            "fault injected for {}",
            crate::zone::name::to_text(lower_name)
        );
    }
}

/// As `inject_fault`, the first time only (a zone reload).
pub fn inject_fault_once(lower_name: &[u8]) {
    static FIRED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if fault_here(lower_name) && !FIRED.swap(true, Relaxed) {
        panic!(
            "fault injected for {}",
            crate::zone::name::to_text(lower_name)
        );
    }
}

/// Locks `m`, taking it over from a thread that panicked while holding it.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| {
        crate::error_limited!("a lock was poisoned by a panic; carrying on with its state");
        m.clear_poison();
        poisoned.into_inner()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_supervised_panic_is_an_error_with_its_message() {
        install_hook();
        let r: Result<(), String> = supervised(|| panic!("boom {}", 7));
        assert!(r.unwrap_err().starts_with("boom 7 at src/supervise.rs"));
        assert_eq!(supervised(|| 5), Ok(5));
        let m = std::sync::Arc::new(Mutex::new(1));
        let m2 = m.clone();
        let _ = std::thread::spawn(move || {
            let _g = m2.lock().unwrap();
            panic!("poison");
        })
        .join();
        assert!(m.is_poisoned());
        *lock(&m) += 1;
        assert_eq!(*lock(&m), 2);
    }
}
