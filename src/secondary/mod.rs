//! Secondary zones: one task per zone follows the primaries, in Knot's
//! event model, one file per step:
//!
//! - `events.rs`  the loop: timers fire, NOTIFY and commands wake it
//! - `load.rs`    LOAD the saved copy at start
//! - `refresh.rs` REFRESH: the primaries' SOA, then a transfer if one is ahead
//! - `transfer.rs` the transfer in: built or applied, FLUSHed, then swapped in
//! - `store.rs`   FLUSH: the copy, journal and timers on disk
//! - `expire.rs`  EXPIRE when the primaries stay away
//!
//! A new version is checked completely, saved, then swapped in whole.

mod events;
mod expire;
mod load;
mod refresh;
mod slots;
pub mod store;
mod transfer;

pub use slots::limit_transfers_in;
pub use transfer::{apply_all, build_full};

use crate::catalog::{Served, SharedCatalog, ZonePolicy, publish};
use crate::config::ZoneConfig;
use crate::fsutil::zone_file_stem;
use crate::status::ZoneStatus;
use crate::xfr::notify_out::Announce;
use crate::xfr::tsig::SharedKeyring;
use crate::zone::Zone;
use crate::zone::rdata::Soa;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use store::Store;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tracing::{error, info};

/// Where the answer to a control API command goes: what the refresh did,
/// or why it failed.
pub type Reply = oneshot::Sender<Result<String, String>>;

pub struct SecondaryZone {
    cfg: ZoneConfig,
    keys: SharedKeyring,
    catalog: SharedCatalog,
    policy: Arc<ZonePolicy>,
    notify_tx: mpsc::UnboundedSender<IpAddr>,
    notify_rx: mpsc::UnboundedReceiver<IpAddr>,
    announce: Announce,
    /// `None` only while a blocking task holds it.
    store: Option<Store>,
    current: Option<Arc<Zone>>,
    /// Primaries in the order to try; the one that answered last goes first.
    primaries: Vec<crate::config::Primary>,
    expire_at: Option<Instant>,
    status: Arc<ZoneStatus>,
    commands: mpsc::UnboundedReceiver<Command>,
    /// Set by `retransfer`: the next transfer is a full AXFR.
    force_axfr: bool,
    /// Who waits for the outcome of the refresh under way.
    waiting: Vec<Reply>,
    /// The wait before the next try while the zone has no data.
    backoff: Option<Duration>,
}

/// What the control API asks of a secondary zone.
#[derive(Debug)]
pub enum Command {
    /// Check the primary's SOA now.
    Refresh(Option<Reply>),
    /// Transfer the whole zone now.
    Retransfer(Option<Reply>),
    /// Send NOTIFY to this zone's own followers.
    Notify,
    /// New settings (and the policy built from them) from a config reload;
    /// the data stays.
    Reconfigure(Box<ZoneConfig>, Arc<ZonePolicy>),
}

/// Why `on_store` could not run its work.
#[derive(Debug, thiserror::Error)]
pub(super) enum StoreUnavailable {
    /// Another step holds the store (cannot happen within one zone's task).
    #[error("store busy")]
    Busy,
    /// The work panicked; the store went with it.
    #[error("{0}")]
    Failed(#[from] tokio::task::JoinError),
}

impl SecondaryZone {
    /// Runs `work` on the zone's store on a blocking thread (it reads,
    /// writes and fsyncs files) and puts the store back.
    pub(super) async fn on_store<R: Send + 'static>(
        &mut self,
        work: impl FnOnce(&mut Store) -> R + Send + 'static,
    ) -> Result<R, StoreUnavailable> {
        let mut store = self.store.take().ok_or(StoreUnavailable::Busy)?;
        let (store, r) = tokio::task::spawn_blocking(move || {
            let r = work(&mut store);
            (store, r)
        })
        .await?;
        self.store = Some(store);
        Ok(r)
    }

    /// `on_store` for work that saves the timers (and may set them first),
    /// its failures logged.
    pub(super) async fn save_timers_with(
        &mut self,
        work: impl FnOnce(&mut Store) -> std::io::Result<()> + Send + 'static,
    ) {
        match self.on_store(work).await {
            Ok(Ok(())) | Err(StoreUnavailable::Busy) => {}
            Ok(Err(e)) => error!(zone = %self.cfg.name, "cannot save timers: {e}"),
            Err(e) => error!(zone = %self.cfg.name, "saving timers: {e}"),
        }
    }
}

impl SecondaryZone {
    /// `inherited` is what the zone served before this lifecycle started (a
    /// role change in a config reload): served until a saved copy or a
    /// transfer replaces it.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        cfg: ZoneConfig,
        policy: Arc<ZonePolicy>,
        keys: SharedKeyring,
        catalog: SharedCatalog,
        data_dir: &Path,
        announce: Announce,
        status: Arc<ZoneStatus>,
        commands: mpsc::UnboundedReceiver<Command>,
        inherited: Option<Arc<Zone>>,
    ) -> SecondaryZone {
        let (notify_tx, notify_rx) = mpsc::unbounded_channel();
        let stem = zone_file_stem(&cfg.name);
        let store = Store::open(
            cfg.file.clone(),
            data_dir,
            &stem,
            cfg.journal_max_entries,
            cfg.journal_max_bytes,
        );
        SecondaryZone {
            primaries: cfg.primaries.clone(),
            cfg,
            keys,
            catalog,
            policy,
            notify_tx,
            notify_rx,
            announce,
            store: Some(store),
            current: inherited,
            expire_at: None,
            status,
            commands,
            force_axfr: false,
            waiting: Vec::new(),
            backoff: None,
        }
    }

    /// Publishes the current version (or none: SERVFAIL) with its history.
    fn publish(&self) {
        let served = Served {
            apex: self.cfg.apex.clone().into(),
            zone: self.current.clone(),
            history: self
                .store
                .as_ref()
                .map(|s| s.history())
                .unwrap_or_default()
                .into(),
            policy: self.policy.clone(),
            notify_in: Some(self.notify_tx.clone()),
            status: self.status.clone(),
        };
        publish::swap(&self.catalog, |c| c.with_zone(served.clone()));
    }

    /// SOA timers of the current version, clamped: (refresh, retry, expire).
    fn timers(&self) -> (Duration, Duration, Duration) {
        self.timers_of(self.current.as_deref())
    }

    /// REFRESH, RETRY and EXPIRE of `zone`'s SOA, clamped to the config.
    fn timers_of(&self, zone: Option<&Zone>) -> (Duration, Duration, Duration) {
        let t = self.cfg.timers;
        let soa = zone.map(|z| z.soa_rr());
        let f = soa.as_ref().and_then(|s| Soa::parse(&s.rdata));
        let field = |get: fn(&Soa) -> u32| f.as_ref().map_or(0, get);
        let refresh = field(|s| s.refresh).clamp(t.min_refresh, t.max_refresh);
        let retry = field(|s| s.retry).clamp(t.min_retry, t.max_retry);
        let expire = field(|s| s.expire)
            .clamp(t.min_expire, t.max_expire)
            .max(refresh);
        (
            Duration::from_secs(refresh.into()),
            Duration::from_secs(retry.into()),
            Duration::from_secs(expire.into()),
        )
    }

    /// How long a copy of `zone` stays good after a successful refresh: the
    /// (clamped) SOA EXPIRE, or less when the primary sent an EXPIRE option
    /// (RFC 7314 §4: a primary that is itself a secondary passes on the time
    /// its own copy has left, so a chain of secondaries expires together).
    /// As BIND (`get_edns_expire`), a received value only ever shortens it.
    fn expire_for(&self, zone: Option<&Zone>, received: Option<u32>) -> Duration {
        let soa = self.timers_of(zone).2;
        match received {
            Some(r) => soa.min(Duration::from_secs(r.into())),
            None => soa,
        }
    }

    /// Sets (or clears) the expiry deadline; the answer path reads it from
    /// the status for the EXPIRE option.
    fn set_expire_at(&mut self, at: Option<Instant>) {
        self.expire_at = at;
        self.status.set_expiry(at.map(|t| {
            crate::clock::unix_secs() + t.saturating_duration_since(Instant::now()).as_secs()
        }));
    }

    /// New settings, applied in place: policy, NOTIFY channel, primaries,
    /// limits and timer clamps. What is served stays.
    fn reconfigure(&mut self, cfg: ZoneConfig, policy: Arc<ZonePolicy>) -> bool {
        let primaries_changed = cfg.primaries != self.cfg.primaries;
        self.policy = policy;
        if primaries_changed {
            self.primaries = cfg.primaries.clone();
        }
        if let Some(s) = self.store.as_mut() {
            s.set_journal_bounds(cfg.journal_max_entries, cfg.journal_max_bytes);
        }
        self.cfg = cfg;
        self.publish();
        info!(zone = %self.cfg.name, "new settings applied; the served version stays");
        primaries_changed
    }
}
