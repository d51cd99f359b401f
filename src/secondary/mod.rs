//! Secondary zones: one task per zone follows the primaries (Knot's event
//! model: LOAD at start, then REFRESH on the SOA timers or a NOTIFY, a
//! transfer in, FLUSH to disk, EXPIRE when the primaries stay away).
//! A new version is checked completely, saved, then swapped in whole.

pub mod store;

use crate::catalog::{Served, SharedCatalog, ZonePolicy, publish};
use crate::config::ZoneConfig;
use crate::fsutil::zone_file_stem;
use crate::stats;
use crate::status::{State, ZoneStatus};
use crate::xfr::client::{Client, XfrError};
use crate::xfr::notify_out::Announce;
use crate::xfr::reader::Fetched;
use crate::xfr::tsig::SharedKeyring;
use crate::zone::diff::{self, Rr};
use crate::zone::rdata::Soa;
use crate::zone::{Zone, ZoneBuilder, rtype, serial::is_newer};
use hickory_proto::rr::TSigner;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use store::Store;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tracing::{Instrument, error, info, info_span, warn};

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
    primaries: Vec<SocketAddr>,
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

/// The first wait after a failed refresh of a zone that has no data yet;
/// it doubles up to `NEVER_LOADED_MAX` (or RETRY, if shorter), so a new
/// secondary serves within a minute of its primary appearing (BIND waits
/// longer, with a similar backoff).
const NEVER_LOADED_FIRST: Duration = Duration::from_secs(2);
const NEVER_LOADED_MAX: Duration = Duration::from_secs(60);

/// Seconds from now until a Unix time (0 if past).
fn until(unix: u64) -> Duration {
    Duration::from_secs(unix.saturating_sub(crate::clock::unix_secs()))
}

/// A little randomness so that many zones do not refresh in lockstep:
/// up to 10 % shorter.
fn jitter(d: Duration) -> Duration {
    let r = crate::xfr::message_id() % 1000;
    d.mul_f64(1.0 - r as f64 / 10_000.0)
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

    /// New settings, applied in place: policy, NOTIFY door, primaries,
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

    pub async fn run(mut self) {
        let span = info_span!("zone", name = %self.cfg.name);
        async move {
            self.publish();
            self.load_saved().await;
            let mut next_check = Instant::now();
            loop {
                let expire_at = self.expire_at;
                tokio::select! {
                    _ = tokio::time::sleep_until(next_check) => {}
                    from = self.notify_rx.recv() => {
                        let Some(from) = from else { return };
                        crate::info_limited!(zone = %self.cfg.name, %from, "NOTIFY received; checking the primary now");
                    }
                    cmd = self.commands.recv() => {
                        let Some(cmd) = cmd else { return };
                        match cmd {
                            Command::Notify => {
                                self.announce.send_replace(self.current.as_ref().map(|z| z.soa_rr()));
                                continue;
                            }
                            Command::Reconfigure(cfg, policy) => {
                                if !self.reconfigure(*cfg, policy) {
                                    continue;
                                }
                            }
                            Command::Retransfer(reply) => {
                                self.force_axfr = true;
                                self.waiting.extend(reply);
                            }
                            Command::Refresh(reply) => self.waiting.extend(reply),
                        }
                        info!(zone = %self.cfg.name, "asked by the control API or a config reload");
                    }
                    _ = sleep_opt(expire_at) => {
                        warn!(zone = %self.cfg.name, "EXPIRE passed without a successful refresh; answering SERVFAIL until a transfer succeeds");
                        self.current = None;
                        self.expire_at = None;
                        self.status.set_state(State::Expired);
                        self.status.set_error(Some("expired: no successful refresh within EXPIRE".into()));
                        self.publish();
                        continue;
                    }
                }
                let before = self.status.base_state();
                if before != State::Expired {
                    self.status.set_state(State::Refreshing);
                }
                let outcome = self.refresh().await;
                // The timers of the version now served: a transfer may have
                // brought a new SOA (or the first one).
                let (refresh, retry, _) = self.timers();
                let wait = match &outcome {
                    Ok(_) => {
                        self.backoff = None;
                        self.status.set_error(None);
                        jitter(refresh)
                    }
                    Err(e) => {
                        self.status.set_error(Some(e.clone()));
                        let wait = if self.current.is_some() {
                            retry
                        } else {
                            // Never loaded (or expired): try again soon,
                            // backing off.
                            let b = self
                                .backoff
                                .map_or(NEVER_LOADED_FIRST, |b| b * 2)
                                .min(NEVER_LOADED_MAX.min(retry));
                            self.backoff = Some(b);
                            b
                        };
                        warn!(zone = %self.cfg.name, "refresh failed: {e}; retrying in {}s", wait.as_secs());
                        jitter(wait)
                    }
                };
                for reply in self.waiting.drain(..) {
                    let _ = reply.send(outcome.clone());
                }
                next_check = Instant::now() + wait;
                self.status.set_state(match (&self.current, before) {
                    (Some(_), _) => State::Serving,
                    (None, State::Expired) => State::Expired,
                    (None, _) => State::Failed,
                });
                let expires = self.expire_at.map(|e| std::time::SystemTime::now() + e.saturating_duration_since(Instant::now()));
                self.status.set_timers(Some(std::time::SystemTime::now() + wait), expires);
                // A NOTIFY that came in during the transfer asks for another look.
                let mut pending = false;
                while self.notify_rx.try_recv().is_ok() {
                    pending = true;
                }
                if pending {
                    next_check = Instant::now();
                }
            }
        }
        .instrument(span)
        .await
    }

    /// LOAD: serve the saved copy at once, unless it expired meanwhile.
    async fn load_saved(&mut self) {
        let apex = self.cfg.apex.clone();
        let Some(mut store) = self.store.take() else {
            return;
        };
        let (store, zone) = match tokio::task::spawn_blocking(move || {
            let z = store.load(&apex);
            (store, z)
        })
        .await
        {
            Ok(r) => r,
            Err(e) => {
                error!("loading the saved copy failed: {e}");
                return;
            }
        };
        let t = store.timers;
        self.store = Some(store);
        let Some(zone) = zone else {
            if let Some(z) = &self.current {
                // Inherited from the zone's previous role.
                self.status.published(z.serial(), z.record_count());
                let (_, _, expire) = self.timers();
                self.expire_at = Some(Instant::now() + expire);
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
        self.expire_at = Some(
            Instant::now()
                + if t.expires_at != 0 {
                    until(t.expires_at)
                } else {
                    expire
                },
        );
        info!(zone = %self.cfg.name, serial = self.current.as_ref().map(|z| z.serial()), "serving the saved copy");
        self.publish();
        self.announce
            .send_replace(self.current.as_ref().map(|z| z.soa_rr()));
    }

    /// The zone's TSIG key as the keyring holds it now (a reloaded secret
    /// is used at the next request).
    fn signer(&self) -> Result<Option<TSigner>, String> {
        match &self.policy.key {
            None => Ok(None),
            Some(w) => self.keys.load().get(w).cloned().map(Some).ok_or_else(|| {
                format!(
                    "TSIG key {} is not configured",
                    crate::zone::name::to_text(w)
                )
            }),
        }
    }

    fn client<'a>(&'a self, key: Option<&'a TSigner>) -> Client<'a> {
        Client {
            apex: &self.cfg.apex,
            key,
            max_records: self.cfg.max_transfer_records,
            max_bytes: self.cfg.max_transfer_bytes,
            timeout: self.cfg.transfer_timeout,
        }
    }

    /// REFRESH: ask the primaries in order; transfer when one is ahead.
    /// Says what happened.
    async fn refresh(&mut self) -> Result<String, String> {
        let mut errors = Vec::new();
        for i in 0..self.primaries.len() {
            let primary = self.primaries[i];
            match self.refresh_from(primary).await {
                Ok(done) => {
                    // The one that answered goes first next time.
                    self.primaries[..=i].rotate_right(1);
                    return Ok(done);
                }
                Err(e) => {
                    warn!(zone = %self.cfg.name, %primary, "{e}");
                    errors.push(format!("{primary}: {e}"));
                }
            }
        }
        Err(errors.join("; "))
    }

    async fn refresh_from(&mut self, primary: SocketAddr) -> Result<String, String> {
        let key = self.signer()?;
        if std::mem::take(&mut self.force_axfr) {
            let started = std::time::Instant::now();
            let (style, serial, records) = self
                .transfer(primary, key.as_ref(), None, true)
                .await
                .map_err(|e| {
                self.force_axfr = true;
                format!("AXFR: {e}")
            })?;
            info!(zone = %self.cfg.name, %primary, serial, records, ms = started.elapsed().as_millis() as u64, "{style} received and applied (retransfer)");
            return Ok(format!("{style} from {primary}: serving serial {serial}"));
        }
        let theirs = self
            .client(key.as_ref())
            .soa_serial(primary)
            .await
            .map_err(|e| format!("SOA query: {e}"))?;
        if let Some(z) = &self.current
            && !is_newer(theirs, z.serial())
        {
            let serial = z.serial();
            self.refreshed();
            return Ok(format!(
                "up to date at serial {serial} ({primary} has {theirs})"
            ));
        }
        let current_soa = self.current.as_ref().map(|z| z.soa_rr());
        let started = std::time::Instant::now();
        let (kind, result) = match &current_soa {
            Some(soa) => match self.transfer(primary, key.as_ref(), Some(soa), false).await {
                Ok(v) => ("IXFR", Ok(v)),
                Err(e) => {
                    warn!(zone = %self.cfg.name, %primary, "IXFR failed ({e}); trying AXFR");
                    (
                        "AXFR",
                        self.transfer(primary, key.as_ref(), None, false).await,
                    )
                }
            },
            None => (
                "AXFR",
                self.transfer(primary, key.as_ref(), None, false).await,
            ),
        };
        let (style, serial, records) = result.map_err(|e| format!("{kind}: {e}"))?;
        info!(
            zone = %self.cfg.name,
            %primary,
            serial,
            records,
            ms = started.elapsed().as_millis() as u64,
            "{style} received and applied"
        );
        Ok(format!("{style} from {primary}: serving serial {serial}"))
    }

    /// Records a successful refresh: timers moved and saved.
    fn refreshed(&mut self) {
        let (_, _, expire) = self.timers();
        self.expire_at = Some(Instant::now() + expire);
        let Some(store) = self.store.as_mut() else {
            return;
        };
        store.timers.last_refresh = crate::clock::unix_secs();
        store.timers.expires_at = crate::clock::unix_secs() + expire.as_secs();
        if let Err(e) = store.save_timers() {
            error!(zone = %self.cfg.name, "cannot save timers: {e}");
        }
    }

    /// One transfer, checked, saved (with the refresh timers it sets) and
    /// published; the EXPIRE timer restarts. Returns (style, serial, records).
    async fn transfer(
        &mut self,
        primary: SocketAddr,
        key: Option<&TSigner>,
        current: Option<&Rr>,
        any_serial: bool,
    ) -> Result<(&'static str, u32, usize), XfrError> {
        let kind = if current.is_some() {
            stats::IXFR
        } else {
            stats::AXFR
        };
        let (fetched, _messages, bytes) = match self.client(key).fetch(primary, current).await {
            Ok(r) => r,
            Err(e) => {
                stats::transfer_in(kind, false, 0);
                return Err(e);
            }
        };
        stats::transfer_in(kind, true, bytes);
        let old = self.current.clone();
        let apex = self.cfg.apex.clone();
        let (style, next, diffs) = match fetched {
            Fetched::UpToDate => {
                return Ok(("up to date", old.map(|z| z.serial()).unwrap_or(0), 0));
            }
            Fetched::Full(records) => {
                let z = tokio::task::spawn_blocking(move || build_full(&apex, records))
                    .await
                    .map_err(|e| XfrError::Malformed(e.to_string()))?
                    .map_err(XfrError::Malformed)?;
                (
                    if current.is_some() {
                        "IXFR (answered AXFR-style)"
                    } else {
                        "AXFR"
                    },
                    z,
                    None,
                )
            }
            Fetched::Incremental(diffs) => {
                let Some(base) = old.clone() else {
                    return Err(XfrError::Malformed("incremental answer to an AXFR".into()));
                };
                let z = tokio::task::spawn_blocking({
                    let diffs = diffs.clone();
                    move || apply_all(&base, &diffs)
                })
                .await
                .map_err(|e| XfrError::Malformed(e.to_string()))?
                .map_err(XfrError::Malformed)?;
                ("IXFR", z, Some(diffs))
            }
        };
        if let Some(o) = old.as_ref().filter(|_| !any_serial)
            && !is_newer(next.serial(), o.serial())
        {
            return Err(XfrError::Malformed(format!(
                "transfer brought serial {}, not newer than {}",
                next.serial(),
                o.serial()
            )));
        }
        let records = next.record_count();
        let expire = self.timers_of(Some(&next)).2;
        let next = Arc::new(next);
        // FLUSH before the swap: what is served is on disk, with the timers
        // this successful refresh sets.
        let (saved, on_disk) = {
            let Some(mut store) = self.store.take() else {
                return Err(XfrError::Malformed("store busy".into()));
            };
            let now = crate::clock::unix_secs();
            store.timers.last_refresh = now;
            store.timers.expires_at = now + expire.as_secs();
            let z = next.clone();
            let r = tokio::task::spawn_blocking(move || {
                let r = match diffs {
                    Some(d) => store.save_diffs(&z, d),
                    None => {
                        let d = old.as_ref().map(|o| diff::diff(o, &z));
                        store.save_full(&z, d)
                    }
                };
                let on_disk = store.holds_a_version();
                (store, r, on_disk)
            })
            .await;
            match r {
                Ok((store, r, on_disk)) => {
                    self.store = Some(store);
                    (r, on_disk)
                }
                Err(e) => return Err(XfrError::Malformed(format!("saving: {e}"))),
            }
        };
        match saved {
            Ok(()) => self.status.set_degraded(None),
            // An older version on disk would come back after a restart: the
            // serial would go backwards. Keep serving what is saved.
            Err(e) if on_disk => {
                let why = format!(
                    "cannot save serial {} under {}: {e}; still serving the saved serial",
                    next.serial(),
                    self.cfg.file.display()
                );
                error!(zone = %self.cfg.name, "{why}");
                self.status.set_degraded(Some(why.clone()));
                return Err(XfrError::Malformed(why));
            }
            // Nothing on disk: a restart starts empty and transfers afresh,
            // so serving from memory cannot make the serial go backwards.
            Err(e) => {
                let why = format!(
                    "cannot save the new version: {e}; serving serial {} from memory only",
                    next.serial()
                );
                error!(zone = %self.cfg.name, "{why}");
                self.status.set_degraded(Some(why));
            }
        }
        self.current = Some(next.clone());
        self.expire_at = Some(Instant::now() + expire);
        self.publish();
        self.status.published(next.serial(), records);
        self.announce.send_replace(Some(next.soa_rr()));
        Ok((style, next.serial(), records))
    }
}

async fn sleep_opt(at: Option<Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

/// Builds a version from a full transfer; the checks are the zone file's.
pub fn build_full(apex: &[u8], records: Vec<Rr>) -> Result<Zone, String> {
    let mut b = ZoneBuilder::new(apex);
    for (i, r) in records.iter().enumerate() {
        if i > 0 && r.rtype == rtype::SOA {
            return Err("an SOA inside the transfer".into());
        }
        b.add(&r.owner, r.rtype, r.ttl, &r.rdata, Default::default())
            .map_err(|e| format!("record {} rejected: {e}", i + 1))?;
    }
    b.build().map_err(|e| e.msg)
}

/// Applies received differences in order, each checked.
pub fn apply_all(base: &Zone, diffs: &[diff::Diff]) -> Result<Zone, String> {
    let mut z: Option<Zone> = None;
    for d in diffs {
        let cur = z.as_ref().unwrap_or(base);
        if d.from_serial() != cur.serial() {
            return Err(format!(
                "difference starts at serial {} but we are at {}",
                d.from_serial(),
                cur.serial()
            ));
        }
        z = Some(
            cur.apply(&d.deleted, &d.added, &d.to)
                .map_err(|e| format!("{} → {}: {e}", d.from_serial(), d.to_serial()))?,
        );
    }
    z.ok_or_else(|| "an empty incremental answer".into())
}
