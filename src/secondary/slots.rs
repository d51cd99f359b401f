//! The slots of `max_transfers_in`: how many transfers this server's
//! secondary zones fetch at once.

use crate::xfr::client::Conn;
use std::sync::{Arc, OnceLock};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Transfers fetched at once, across every secondary zone of the process.
/// 10,000 catalog members starting together each opened a connection to
/// the primary at once: NSD closed 896 of them mid-transfer and the rest
/// queued behind each other (100–4,600 ms for 11 records); BIND keeps
/// `transfers-in` (10), Knot its background workers.
static TRANSFERS_IN: OnceLock<Arc<Semaphore>> = OnceLock::new();

/// Sets the limit (at start-up; a later call changes nothing).
pub fn limit_transfers_in(n: usize) {
    let _ = TRANSFERS_IN.set(Arc::new(Semaphore::new(n.max(1))));
}

fn transfers_in() -> &'static Arc<Semaphore> {
    TRANSFERS_IN.get_or_init(|| Arc::new(Semaphore::new(10)))
}

/// The longest a refresh waits for a slot before it gives up until its
/// next retry (the zone's task cannot look at EXPIRE meanwhile).
const SLOT_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// A slot for one refresh's transfers (the IXFR and the AXFR it may fall
/// back to), and `conn` if it is still worth using: a connection left open
/// by the SOA check is dropped rather than kept idle while waiting (the
/// primary would close it). Err: none came in time.
pub(super) async fn transfer_slot(
    conn: Option<Conn>,
    timeout: std::time::Duration,
) -> Result<(OwnedSemaphorePermit, Option<Conn>), String> {
    if let Ok(slot) = transfers_in().clone().try_acquire_owned() {
        return Ok((slot, conn));
    }
    drop(conn);
    let wait = timeout.min(SLOT_WAIT);
    match tokio::time::timeout(wait, transfers_in().clone().acquire_owned()).await {
        Ok(Ok(slot)) => Ok((slot, None)),
        _ => Err(format!(
            "no transfer slot free within {} s (max_transfers_in)",
            wait.as_secs()
        )),
    }
}
