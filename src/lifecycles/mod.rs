//! The zones being served, each with its lifecycle (`primary/` or
//! `secondary/`) and its NOTIFY-out tasks: started, stopped, and given new
//! settings in place when the config is reloaded; asked to reload, refresh,
//! retransfer or notify by the control API, which waits for the outcome.

use crate::catalog::{Served, SharedCatalog, ZonePolicy, publish};
use crate::config::{self, Config, Role, ZoneConfig};
use crate::primary::watch::{Changed, FileWatch};
use crate::primary::{PrimaryZone, Reloaded};
use crate::query::Chaos;
use crate::runtime_zones::{self, ZoneOrigin};
use crate::secondary::{self, SecondaryZone};
use crate::server::dispatch::Options;
use crate::status::ZoneStatus;
use crate::supervise::{self, lock};
use crate::xfr::follower;
use crate::xfr::notify_out::{self, Announce};
use crate::xfr::tsig::Keyring;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::{info, warn};

mod members;
pub use members::consume_catalogs;

/// After a complete write (closed, or renamed into place) the zone is read
/// once nothing more came for this long: a burst of saves in a row (a script
/// writing twice) is one reload, and a single save is served within a few
/// milliseconds.
const BURST: Duration = Duration::from_millis(1);
/// After a write that may not be complete (no close seen yet), the quiet
/// time before the zone is read anyway: a writer that keeps its file open.
const SETTLE: Duration = Duration::from_millis(100);

/// How long the control API waits for a refresh or retransfer to finish
/// before answering that it is still running.
const ACTION_WAIT: Duration = Duration::from_secs(30);

/// Where the config comes from, to read it again on reload.
#[derive(Clone)]
pub enum ConfigSource {
    File(PathBuf),
    /// The embedded default over `zones/` in this directory.
    Default(PathBuf),
}

impl ConfigSource {
    pub fn read(&self) -> Result<Config, config::ConfigError> {
        match self {
            ConfigSource::File(p) => config::load(p),
            ConfigSource::Default(dir) => config::embedded_default(dir),
        }
    }
}

/// The CHAOS identity a config asks for.
pub fn chaos(server: &config::Server) -> Chaos {
    Chaos {
        identity: server.identity.clone(),
        version: server.version.clone(),
    }
}

/// A zone's lifecycle, by role.
enum Lifecycle {
    Primary(Arc<Mutex<PrimaryZone>>),
    Secondary {
        commands: mpsc::UnboundedSender<secondary::Command>,
        task: JoinHandle<()>,
    },
}

/// One running zone.
struct Running {
    cfg: ZoneConfig,
    origin: ZoneOrigin,
    /// Built once from `cfg`, shared by every path that serves the zone.
    policy: Arc<ZonePolicy>,
    status: Arc<ZoneStatus>,
    announce: Announce,
    /// One NOTIFY task per follower in `cfg.notify`.
    notifiers: Vec<JoinHandle<()>>,
    life: Lifecycle,
}

/// What the control API may ask of a zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Reload,
    Refresh,
    Retransfer,
    Notify,
}

/// What became of an action.
#[derive(Debug)]
pub enum Outcome {
    Done(String),
    Failed(String),
    /// Not finished within `ACTION_WAIT`; it goes on.
    Running(String),
}

/// Why a zone could not be added or removed at run time.
#[derive(Debug, thiserror::Error)]
pub enum ZoneChangeError {
    #[error("{0}")]
    Invalid(String),
    #[error("zone {0} is already served")]
    Exists(String),
    #[error("no zone {0} is served here")]
    NoZone(String),
    #[error("zone {0} is listed in {1}; remove it there")]
    NotRemovable(String, String),
    #[error("{0}")]
    Store(#[from] runtime_zones::StoreError),
}

#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("no zone {0} is served here")]
    NoZone(String),
    #[error("{0}")]
    NotApplicable(String),
}

pub struct Zones {
    catalog: SharedCatalog,
    opts: Arc<Options>,
    source: ConfigSource,
    /// The config in effect: zones and keys as last reloaded, `[server]` as
    /// at start (its changes need a restart).
    cfg: Mutex<Config>,
    zones: Mutex<BTreeMap<String, Running>>,
    /// Zones added through the control API, as kept on disk.
    api: Mutex<runtime_zones::Store>,
    /// Per consumed catalog, the version last read and its members.
    consumed: Mutex<BTreeMap<String, members::Consumed>>,
    watch: FileWatch,
    reload_tx: mpsc::UnboundedSender<Changed>,
    rt: tokio::runtime::Handle,
}

impl Zones {
    /// Starts every zone of `cfg` and those added through the control API
    /// (primaries read their files now).
    pub fn start(
        catalog: SharedCatalog,
        opts: Arc<Options>,
        source: ConfigSource,
        cfg: Config,
        watch: FileWatch,
        reload_tx: mpsc::UnboundedSender<Changed>,
        rt: tokio::runtime::Handle,
    ) -> Result<Arc<Zones>, runtime_zones::StoreError> {
        let api = runtime_zones::Store::open(&cfg.server.data_dir)?;
        if let Some(why) = api.unread() {
            tracing::error!(error = %why, "zones added through the control API cannot be read; they are not served");
        }
        let mut all: Vec<(ZoneConfig, ZoneOrigin)> = cfg
            .zones
            .iter()
            .map(|zc| (zc.clone(), ZoneOrigin::Config))
            .collect();
        for (name, v) in api.zones() {
            if cfg.zones.iter().any(|z| &z.name == name) {
                warn!(zone = %name, "zone added through the control API is also in the config file; the config file's settings win");
                continue;
            }
            let src = api.path().display().to_string();
            match config::zone_from_json(v, &src, &cfg.server, &cfg.keys) {
                Ok(zc) => all.push((zc, ZoneOrigin::Api)),
                Err(e) => {
                    warn!(zone = %name, error = %e, "zone added through the control API no longer valid; not served")
                }
            }
        }
        let zones = Arc::new(Zones {
            catalog,
            opts,
            source,
            cfg: Mutex::new(cfg),
            zones: Mutex::new(BTreeMap::new()),
            api: Mutex::new(api),
            consumed: Mutex::new(BTreeMap::new()),
            watch,
            reload_tx,
            rt,
        });
        let mut primaries = Vec::new();
        for (zc, origin) in all {
            let r = zones.start_zone(zc.clone(), origin);
            lock(&zones.zones).insert(zc.name.clone(), r);
            if zc.role == Role::Primary {
                primaries.push(zc.name);
            }
        }
        // Produced catalogs are written before any primary is read.
        zones.write_catalogs();
        for name in primaries {
            zones.load_primary(&name);
        }
        Ok(zones)
    }

    /// Adds a zone from its settings as JSON (the keys of a `[[zone]]`
    /// table), kept in `data_dir/zones.json` before it starts.
    pub fn add_zone(&self, v: &serde_json::Value) -> Result<serde_json::Value, ZoneChangeError> {
        let zc = {
            let cfg = lock(&self.cfg);
            let zc = config::zone_from_json(v, "POST /zones", &cfg.server, &cfg.keys)
                .map_err(|e| ZoneChangeError::Invalid(e.to_string()))?;
            if let Some(c) = &zc.catalog
                && !cfg
                    .catalogs
                    .iter()
                    .any(|k| &k.name == c && k.role == config::CatalogRole::Producer)
            {
                return Err(ZoneChangeError::Invalid(format!(
                    "key `catalog`: no [[catalog]] named \"{c}\" with role = \"producer\""
                )));
            }
            zc
        };
        let mut zones = lock(&self.zones);
        if zones.contains_key(&zc.name) {
            return Err(ZoneChangeError::Exists(zc.name));
        }
        lock(&self.api).set(&zc.name, Some(v.clone()))?;
        let name = zc.name.clone();
        let is_primary = zc.role == Role::Primary;
        zones.insert(name.clone(), self.start_zone(zc, ZoneOrigin::Api));
        drop(zones);
        if is_primary {
            self.load_primary(&name);
        }
        self.reload_catalogs();
        info!(zone = %name, "zone added through the control API");
        Ok(serde_json::json!({ "ok": true, "zone": name, "origin": "api" }))
    }

    /// Writes every produced catalog whose member list changed (the zone
    /// file tandem keeps for it in `data_dir`); returns their names.
    fn write_catalogs(&self) -> Vec<String> {
        let producers: Vec<String> = lock(&self.cfg)
            .catalogs
            .iter()
            .filter(|c| c.role == config::CatalogRole::Producer)
            .map(|c| c.name.clone())
            .collect();
        let mut changed = Vec::new();
        for cat in producers {
            let (file, members) = {
                let zones = lock(&self.zones);
                let Some(file) = zones.get(&cat).map(|r| r.cfg.file.clone()) else {
                    continue;
                };
                let members: Vec<(String, Option<String>)> = zones
                    .values()
                    .filter(|r| {
                        r.cfg.role == Role::Primary && r.cfg.catalog.as_deref() == Some(&cat)
                    })
                    .map(|r| (r.cfg.name.clone(), r.cfg.catalog_group.clone()))
                    .collect();
                (file, members)
            };
            let text = crate::catz::produce(&cat, &members);
            if std::fs::read_to_string(&file).is_ok_and(|t| t == text) {
                continue;
            }
            match crate::fsutil::write_atomic(&file, text.as_bytes()) {
                Ok(()) => {
                    info!(catalog = %cat, members = members.len(), "produced catalog written");
                    changed.push(cat);
                }
                Err(e) => {
                    warn!(catalog = %cat, file = %file.display(), error = %e, "could not write the produced catalog");
                }
            }
        }
        changed
    }

    /// Writes the produced catalogs and has the changed ones read.
    fn reload_catalogs(&self) {
        for name in self.write_catalogs() {
            let _ = self.reload_tx.send(Changed::complete(name));
        }
    }

    /// Stops serving a zone added through the control API and removes what
    /// tandem kept of it in `data_dir` (a primary's zone file stays).
    pub fn remove_zone(&self, name: &str) -> Result<serde_json::Value, ZoneChangeError> {
        let name = config::zone_name(name).map_err(ZoneChangeError::Invalid)?;
        let mut zones = lock(&self.zones);
        let Some(r) = zones.get(&name) else {
            return Err(ZoneChangeError::NoZone(name));
        };
        if r.origin != ZoneOrigin::Api {
            let source = match &r.origin {
                ZoneOrigin::Catalog(c) => format!("the catalog {c}"),
                _ => lock(&self.cfg).source.clone(),
            };
            return Err(ZoneChangeError::NotRemovable(name, source));
        }
        lock(&self.api).set(&name, None)?;
        let Some(r) = zones.remove(&name) else {
            return Err(ZoneChangeError::NoZone(name));
        };
        drop(zones);
        let removed = self.forget(r);
        self.reload_catalogs();
        self.reapply_catalogs();
        info!(zone = %name, files = removed.len(), "zone removed through the control API; no longer served");
        Ok(serde_json::json!({ "ok": true, "zone": name, "files_removed": removed.len() }))
    }

    /// The primary zones' names (SIGHUP re-reads their files).
    pub fn primaries(&self) -> Vec<String> {
        lock(&self.zones)
            .iter()
            .filter(|(_, r)| matches!(r.life, Lifecycle::Primary(_)))
            .map(|(n, _)| n.clone())
            .collect()
    }
}

/// The `[server]` keys whose change needs a restart, named.
fn restart_required(old: &config::Server, new: &config::Server) -> Vec<&'static str> {
    let mut keys = Vec::new();
    let mut check = |key, changed: bool| {
        if changed {
            keys.push(key);
        }
    };
    check("listen", old.listen != new.listen);
    check("control", old.control != new.control);
    check("control_token", old.control_token != new.control_token);
    check("data_dir", old.data_dir != new.data_dir);
    check("udp_workers", old.udp_workers != new.udp_workers);
    check("udp_payload", old.udp_payload != new.udp_payload);
    check(
        "tcp_idle_timeout",
        old.tcp_idle_timeout != new.tcp_idle_timeout,
    );
    check(
        "tcp_max_connections",
        old.tcp_max_connections != new.tcp_max_connections,
    );
    check(
        "max_transfers_out",
        old.max_transfers_out != new.max_transfers_out,
    );
    check(
        "max_transfers_in",
        old.max_transfers_in != new.max_transfers_in,
    );
    check(
        "transfer_out_timeout",
        old.transfer_out_timeout != new.transfer_out_timeout,
    );
    check(
        "rrl_responses_per_second",
        old.rrl.map(|r| r.responses_per_second) != new.rrl.map(|r| r.responses_per_second),
    );
    check(
        "rrl_slip",
        old.rrl.map(|r| r.slip) != new.rrl.map(|r| r.slip),
    );
    check("log_level", old.log_level != new.log_level);
    check("zone_watch", old.zone_watch != new.zone_watch);
    check("tls_listen", old.tls_listen != new.tls_listen);
    check("tls_certificate", old.tls.is_some() != new.tls.is_some());
    keys
}

impl Zones {
    fn data_dir(&self) -> PathBuf {
        lock(&self.cfg).server.data_dir.clone()
    }

    /// One task per follower the zone's policy names: NOTIFY, then checks
    /// that it serves each version (`xfr::follower`).
    fn notifiers(
        &self,
        zc: &ZoneConfig,
        policy: &ZonePolicy,
        announce: &Announce,
        status: &Arc<ZoneStatus>,
    ) -> Vec<JoinHandle<()>> {
        if policy.notify.is_empty() {
            return Vec::new();
        }
        let _guard = self.rt.enter();
        follower::spawn(
            zc.name.clone(),
            zc.apex.clone(),
            &policy.notify,
            notify_out::Signing {
                key: policy.key.clone(),
                keys: self.opts.keys.clone(),
            },
            announce,
            status.clone(),
            zc.follower_checks,
        )
    }

    /// Starts one zone's lifecycle (not its first load, for primaries). What
    /// the catalog already serves under that name (a zone whose role
    /// changed) stays served until the new lifecycle replaces it.
    fn start_zone(&self, zc: ZoneConfig, origin: ZoneOrigin) -> Running {
        let status = Arc::new(ZoneStatus::new(&zc));
        let inherited = self
            .catalog
            .load()
            .get(&zc.apex)
            .and_then(|s| s.zone.clone());
        let policy = Arc::new(ZonePolicy::from_config(&zc));
        let served = Served {
            zone: inherited.clone(),
            ..Served::empty(&zc.apex, policy.clone(), status.clone())
        };
        publish::swap(&self.catalog, |c| c.with_zone(served.clone()));
        let data_dir = self.data_dir();
        let (announce, _) = tokio::sync::watch::channel(None);
        let notifiers = self.notifiers(&zc, &policy, &announce, &status);
        let life = match zc.role {
            Role::Primary => {
                let pz = PrimaryZone::open(
                    zc.clone(),
                    policy.clone(),
                    &data_dir,
                    announce.clone(),
                    status.clone(),
                );
                Lifecycle::Primary(Arc::new(Mutex::new(pz)))
            }
            Role::Secondary => {
                let (tx, commands) = mpsc::unbounded_channel();
                let sz = SecondaryZone::new(
                    zc.clone(),
                    policy.clone(),
                    self.opts.keys.clone(),
                    self.catalog.clone(),
                    &data_dir,
                    announce.clone(),
                    status.clone(),
                    commands,
                    inherited,
                );
                Lifecycle::Secondary {
                    commands: tx,
                    task: self.rt.spawn(sz.run()),
                }
            }
        };
        Running {
            cfg: zc,
            origin,
            policy,
            status,
            announce,
            notifiers,
            life,
        }
    }

    /// Ends a zone's tasks; `unpublish` also stops serving it.
    fn stop_zone(&self, r: Running, unpublish: bool) {
        for t in r.notifiers {
            t.abort();
        }
        if let Lifecycle::Secondary { task, .. } = r.life {
            task.abort();
        }
        self.watch.set_files(&r.cfg.name, &[]);
        if unpublish {
            publish::swap(&self.catalog, |c| c.without(&r.cfg.apex));
        }
    }

    /// Applies a zone's new settings without touching what it serves.
    /// True when its file must be read again.
    fn reconfigure_zone(&self, r: &mut Running, zc: ZoneConfig) -> bool {
        let policy = Arc::new(ZonePolicy::from_config(&zc));
        let followers_changed = r.policy.notify != policy.notify
            || r.policy.key != policy.key
            || r.cfg.follower_checks != zc.follower_checks;
        let reload = match &r.life {
            Lifecycle::Primary(pz) => {
                lock(pz).reconfigure(zc.clone(), policy.clone(), &self.catalog)
            }
            Lifecycle::Secondary { commands, .. } => {
                let _ = commands.send(secondary::Command::Reconfigure(
                    Box::new(zc.clone()),
                    policy.clone(),
                ));
                false
            }
        };
        r.status.set_primaries(&zc.primaries);
        if followers_changed {
            for t in r.notifiers.drain(..) {
                t.abort();
            }
            r.status.set_listed(&policy.notify);
            r.notifiers = self.notifiers(&zc, &policy, &r.announce, &r.status);
        }
        r.cfg = zc;
        r.policy = policy;
        reload
    }

    /// Reads a primary zone's file (blocking) and re-registers its files.
    /// A panic in the reload is caught: the zone keeps what it serves.
    fn load_primary(&self, name: &str) -> Option<Reloaded> {
        let pz = match &lock(&self.zones).get(name)?.life {
            Lifecycle::Primary(pz) => pz.clone(),
            Lifecycle::Secondary { .. } => return None,
        };
        let mut z = lock(&pz);
        let r = supervise::supervised(|| z.reload(&self.catalog)).unwrap_or_else(|msg| {
            supervise::count(supervise::Path::Zone);
            z.failed(
                &self.catalog,
                format!("internal error while reloading (please report it): {msg}"),
            )
        });
        self.watch.set_files(name, &z.files);
        Some(r)
    }

    /// Re-reads the config; a config that fails validation changes nothing.
    pub fn reload_config(&self) -> Result<serde_json::Value, String> {
        let new = self.source.read().map_err(|e| e.to_string())?;
        let keys = Keyring::from_config(&new.keys)?;
        let mut zones = lock(&self.zones);
        let old_server = lock(&self.cfg).server.clone();
        let restart = restart_required(&old_server, &new.server);
        if !restart.is_empty() {
            warn!(keys = ?restart, "these [server] settings change only with a restart; the running values stay");
        }
        // Certificate and key files are read again even when their paths
        // stay: that is how a renewed certificate is put in place.
        // Connections in flight keep the one they started with. Read before
        // anything changes, so a bad file changes nothing.
        let tls = match (self.opts.tls.load().is_some(), &new.server.tls) {
            (true, Some(t)) => Some(
                t.build()
                    .map_err(|e| format!("TLS: {e}; nothing changed"))?,
            ),
            _ => None,
        };
        self.opts.keys.store(Arc::new(keys));
        self.opts.query.chaos.store(Arc::new(chaos(&new.server)));
        crate::zone::denial::set_max_iterations(new.server.nsec3_max_iterations);
        let old_edns = self.opts.query.edns.load_full();
        let edns = crate::query::edns::Settings::from_config(&new.server, Some(&old_edns));
        if edns.secret != old_edns.secret {
            info!(
                "cookie secret changed; server cookies made with the previous one stay valid until they age out (an hour) or the next change"
            );
        }
        self.opts.query.edns.store(Arc::new(edns));
        if let Some(c) = tls {
            self.opts.tls.store(Some(c));
            info!("TLS certificate and key read again");
        }
        let new_names: BTreeSet<String> = new.zones.iter().map(|z| z.name.clone()).collect();
        let (mut added, mut removed, mut changed) = (Vec::new(), Vec::new(), Vec::new());
        let mut unchanged = 0;
        // Zones added through the API or by a catalog stay (the file lists
        // what it lists; `members.rs` drops those of a catalog now gone).
        let gone: Vec<String> = zones
            .iter()
            .filter(|(n, r)| !new_names.contains(*n) && r.origin == ZoneOrigin::Config)
            .map(|(n, _)| n.clone())
            .collect();
        for name in gone {
            if let Some(r) = zones.remove(&name) {
                self.stop_zone(r, true);
                info!(zone = %name, "zone removed from the config; no longer served");
                removed.push(name);
            }
        }
        let mut to_load = Vec::new();
        for zc in new.zones.clone() {
            let name = zc.name.clone();
            if let Some(r) = zones.get_mut(&name)
                && r.origin != ZoneOrigin::Config
            {
                warn!(zone = %name, from = r.origin.label(), "zone is now in the config file; the config file's settings win");
                if r.origin == ZoneOrigin::Api
                    && let Err(e) = lock(&self.api).set(&name, None)
                {
                    warn!(zone = %name, error = %e, "could not drop it from the API's list");
                }
                r.origin = ZoneOrigin::Config;
            }
            match zones.get_mut(&name) {
                Some(r) if r.cfg == zc => unchanged += 1,
                // Same role (and, for a secondary, the same copy on disk):
                // new settings in place.
                Some(r)
                    if r.cfg.role == zc.role
                        && (zc.role == Role::Primary || r.cfg.file == zc.file) =>
                {
                    if self.reconfigure_zone(r, zc) {
                        to_load.push(name.clone());
                    }
                    changed.push(name);
                }
                _ => {
                    if let Some(old) = zones.remove(&name) {
                        // A new role (or a secondary's copy moved): the old
                        // lifecycle stops, what it served stays until the
                        // new one replaces it.
                        self.stop_zone(old, false);
                        changed.push(name.clone());
                    } else {
                        added.push(name.clone());
                    }
                    info!(zone = %name, "starting zone from the new config");
                    let is_primary = zc.role == Role::Primary;
                    zones.insert(name.clone(), self.start_zone(zc, ZoneOrigin::Config));
                    if is_primary {
                        to_load.push(name);
                    }
                }
            }
        }
        {
            let mut c = lock(&self.cfg);
            c.keys = new.keys;
            c.zones = new.zones;
            c.catalogs = new.catalogs;
            c.source = new.source;
        }
        drop(zones);
        to_load.extend(self.write_catalogs());
        // Members get the catalogs' new settings, and names a removed zone
        // freed, without waiting for the catalogs to change.
        self.reapply_catalogs();
        for name in to_load {
            let _ = self.reload_tx.send(Changed::complete(name));
        }
        info!(?added, ?removed, ?changed, unchanged, "config reloaded");
        Ok(serde_json::json!({
            "ok": true,
            "added": added,
            "removed": removed,
            "changed": changed,
            "unchanged": unchanged,
            "restart_required": restart,
        }))
    }

    /// Runs `action` on a zone and waits for its outcome (reload, refresh
    /// and retransfer; NOTIFY is only queued).
    pub async fn zone_action(
        self: &Arc<Self>,
        name: &str,
        action: Action,
    ) -> Result<Outcome, ActionError> {
        let mut apex = crate::zone::name::parse_absolute(name)
            .map_err(|_| ActionError::NoZone(name.to_string()))?;
        crate::zone::name::lowercase(&mut apex);
        let key = crate::zone::name::to_text(&apex);
        enum Handle {
            Primary(Arc<Mutex<PrimaryZone>>),
            Secondary(mpsc::UnboundedSender<secondary::Command>),
        }
        let handle = {
            let zones = lock(&self.zones);
            let r = zones
                .get(&key)
                .ok_or_else(|| ActionError::NoZone(key.clone()))?;
            match &r.life {
                Lifecycle::Primary(pz) => Handle::Primary(pz.clone()),
                Lifecycle::Secondary { commands, .. } => Handle::Secondary(commands.clone()),
            }
        };
        match (action, handle) {
            (Action::Reload, Handle::Primary(_)) => {
                let d = self.clone();
                let k = key.clone();
                let r = tokio::task::spawn_blocking(move || d.load_primary(&k))
                    .await
                    .ok()
                    .flatten();
                Ok(match r {
                    Some(Reloaded::Published(s)) => {
                        Outcome::Done(format!("{key} now serves serial {s}"))
                    }
                    Some(Reloaded::Unchanged(s)) => {
                        Outcome::Done(format!("{key} unchanged: serving serial {s}"))
                    }
                    Some(Reloaded::Failed(e)) => Outcome::Failed(e),
                    None => Outcome::Failed(format!("{key} is no longer configured")),
                })
            }
            (Action::Notify, Handle::Primary(pz)) => Ok(if lock(&pz).renotify() {
                Outcome::Done(format!("NOTIFY queued for {key}'s followers"))
            } else {
                Outcome::Failed(format!("{key} serves nothing yet"))
            }),
            (Action::Refresh | Action::Retransfer, Handle::Primary(_)) => {
                Err(ActionError::NotApplicable(format!(
                    "{key} is a primary zone: refresh and retransfer are for secondaries"
                )))
            }
            (Action::Notify, Handle::Secondary(tx)) => {
                let _ = tx.send(secondary::Command::Notify);
                Ok(Outcome::Done(format!(
                    "NOTIFY queued for {key}'s followers"
                )))
            }
            (a, Handle::Secondary(tx)) => {
                let (reply, outcome) = oneshot::channel();
                let cmd = match a {
                    Action::Retransfer => secondary::Command::Retransfer(Some(reply)),
                    _ => secondary::Command::Refresh(Some(reply)),
                };
                if tx.send(cmd).is_err() {
                    return Ok(Outcome::Failed(format!("{key} has stopped")));
                }
                Ok(match tokio::time::timeout(ACTION_WAIT, outcome).await {
                    Ok(Ok(Ok(done))) => Outcome::Done(done),
                    Ok(Ok(Err(e))) => Outcome::Failed(e),
                    Ok(Err(_)) => Outcome::Failed(format!("{key} has stopped")),
                    Err(_) => Outcome::Running(format!(
                        "still running after {}s; see `tandem status`",
                        ACTION_WAIT.as_secs()
                    )),
                })
            }
        }
    }

    pub fn status_json(&self) -> serde_json::Value {
        // Copied out first: `zones` is always taken before `consumed`.
        let consumed = self.catalog_errors();
        let zones: Vec<serde_json::Value> = lock(&self.zones)
            .values()
            .map(|r| {
                let mut z = r.status.json();
                if let Some(o) = z.as_object_mut() {
                    o.insert("origin".into(), r.origin.label().into());
                    if let Some((e, at)) = consumed.get(&r.cfg.name) {
                        o.insert("last_error".into(), e.clone().into());
                        o.insert("last_error_at".into(), crate::status::rfc3339(*at).into());
                    }
                }
                z
            })
            .collect();
        serde_json::json!({ "zones": zones })
    }

    /// Every zone's status, for /metrics.
    pub fn statuses(&self) -> Vec<Arc<ZoneStatus>> {
        lock(&self.zones)
            .values()
            .map(|r| r.status.clone())
            .collect()
    }
}

/// Reloads primary zones named by file events, SIGHUP and config reloads,
/// once each per burst. Changes that arrive during a reload are read by the
/// next one, so none is lost and none waits for a timer.
pub async fn reloader(mut rx: mpsc::UnboundedReceiver<Changed>, zones: Arc<Zones>) {
    while let Some(first) = rx.recv().await {
        // Per zone, whether its latest event finished a write; the wait is
        // the long one while any zone may still be mid-write.
        let mut pending = BTreeMap::from([(first.zone, first.complete)]);
        let quiet = |p: &BTreeMap<String, bool>| {
            if p.values().all(|&complete| complete) {
                BURST
            } else {
                SETTLE
            }
        };
        while let Ok(Some(c)) = tokio::time::timeout(quiet(&pending), rx.recv()).await {
            pending.insert(c.zone, c.complete);
        }
        let pending: Vec<String> = pending.into_keys().collect();
        let d = zones.clone();
        let _ = tokio::task::spawn_blocking(move || {
            for name in pending {
                d.load_primary(&name);
            }
        })
        .await;
    }
}
