//! LOAD: at start, the saved copy is served at once, unless it expired
//! while tandem was stopped.

use super::{SecondaryZone, StoreUnavailable};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tracing::{error, info, warn};

/// Seconds from now until a Unix time (0 if past).
fn until(unix: u64) -> Duration {
    Duration::from_secs(unix.saturating_sub(crate::clock::unix_secs()))
}

impl SecondaryZone {
    /// LOAD: serve the saved copy at once, unless it expired meanwhile.
    pub(super) async fn load_saved(&mut self) {
        let apex = self.cfg.apex.clone();
        let (zone, t) = match self
            .on_store(move |store| (store.load(&apex), store.timers))
            .await
        {
            Ok(r) => r,
            Err(StoreUnavailable::Busy) => return,
            Err(e) => {
                error!("loading the saved copy failed: {e}");
                return;
            }
        };
        let Some(zone) = zone else {
            if let Some(z) = &self.current {
                // Inherited from the zone's previous role.
                self.status.published(z.serial(), z.record_count());
                let (_, _, expire) = self.timers();
                self.set_expire_at(Some(Instant::now() + expire));
                self.publish();
            }
            return;
        };
        if t.expires_at != 0 && t.expires_at <= crate::clock::unix_secs() {
            warn!(zone = %self.cfg.name, serial = zone.serial(), "the saved copy expired while tandem was stopped; not serving it");
            return;
        }
        self.status.published(zone.serial(), zone.record_count());
        self.current = Some(Arc::new(zone));
        let (_, _, expire) = self.timers();
        self.set_expire_at(Some(
            Instant::now()
                + if t.expires_at != 0 {
                    until(t.expires_at)
                } else {
                    expire
                },
        ));
        info!(zone = %self.cfg.name, serial = self.current.as_ref().map(|z| z.serial()), "serving the saved copy");
        self.publish();
        self.announce
            .send_replace(self.current.as_ref().map(|z| z.soa_rr()));
    }
}
