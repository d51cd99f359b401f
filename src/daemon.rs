//! `tandem serve`: binds the sockets, runs each zone's lifecycle, serves the
//! control API, and applies config reloads (SIGHUP, `POST /reload`) zone by
//! zone: added zones start, removed ones stop, changed ones restart, and the
//! others keep serving untouched.

use crate::answer::Options;
use crate::catalog::{Catalog, Served, SharedCatalog, TransferPolicy};
use crate::config::{self, Config, Role, ZoneConfig};
use crate::memory;
use crate::primary::{self, PrimaryZone, watch::FileWatch};
use crate::secondary::{self, SecondaryZone};
use crate::server;
use crate::status::ZoneStatus;
use crate::tsig::Keyring;
use arc_swap::ArcSwap;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tracing::{error, info, warn};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("listen {addr} ({proto})")]
    Bind {
        addr: SocketAddr,
        proto: &'static str,
        source: std::io::Error,
    },
    #[error("control API {addr}")]
    Control {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{0}")]
    Keys(String),
    #[error("runtime: {0}")]
    Runtime(#[from] std::io::Error),
}

/// Quiet time after a file event before the zone is re-read, so a burst of
/// writes (an editor saving, a script touching twice) makes one reload.
const SETTLE: Duration = Duration::from_millis(100);

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

/// One running zone.
struct Running {
    cfg: ZoneConfig,
    status: Arc<ZoneStatus>,
    primary: Option<Arc<Mutex<PrimaryZone>>>,
    commands: Option<mpsc::UnboundedSender<secondary::Command>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// What the control API may ask of a zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Reload,
    Refresh,
    Retransfer,
    Notify,
}

#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("no zone {0} is served here")]
    NoZone(String),
    #[error("{0}")]
    NotApplicable(String),
}

pub struct Daemon {
    pub catalog: SharedCatalog,
    opts: Arc<Options>,
    source: ConfigSource,
    cfg: Mutex<Config>,
    zones: Mutex<BTreeMap<String, Running>>,
    watch: FileWatch,
    reload_tx: mpsc::UnboundedSender<String>,
    rt: tokio::runtime::Handle,
}

impl Daemon {
    /// Starts one zone's lifecycle (not its first load, for primaries).
    fn start_zone(&self, zc: ZoneConfig, keys: &Keyring) -> Running {
        let status = Arc::new(ZoneStatus::new(&zc));
        let policy = Arc::new(TransferPolicy {
            allow_transfer: zc.allow_transfer.clone(),
            transfer_key: zc.transfer_key.clone(),
        });
        memory::publish(&self.catalog, |c| {
            c.with_zone(Served::empty(&zc.apex, policy.clone(), status.clone()))
        });
        let data_dir = self
            .cfg
            .lock()
            .map(|c| c.server.data_dir.clone())
            .unwrap_or_default();
        let key = zc
            .transfer_key
            .as_deref()
            .and_then(|k| keys.get(k))
            .cloned();
        let (announce, rx) = tokio::sync::watch::channel(None);
        let _guard = self.rt.enter();
        let mut tasks = if zc.notify.is_empty() {
            Vec::new()
        } else {
            primary::notify::spawn(
                zc.name.clone(),
                zc.apex.clone(),
                &zc.notify,
                key.clone(),
                rx,
                status.clone(),
            )
        };
        match zc.role {
            Role::Primary => {
                let pz = PrimaryZone::open(zc.clone(), &data_dir, announce, status.clone());
                Running {
                    cfg: zc,
                    status,
                    primary: Some(Arc::new(Mutex::new(pz))),
                    commands: None,
                    tasks,
                }
            }
            Role::Secondary => {
                let (tx, commands) = mpsc::unbounded_channel();
                let sz = SecondaryZone::new(
                    zc.clone(),
                    key,
                    self.catalog.clone(),
                    &data_dir,
                    announce,
                    status.clone(),
                    commands,
                );
                tasks.push(self.rt.spawn(sz.run()));
                Running {
                    cfg: zc,
                    status,
                    primary: None,
                    commands: Some(tx),
                    tasks,
                }
            }
        }
    }

    fn stop_zone(&self, r: Running) {
        for t in r.tasks {
            t.abort();
        }
        self.watch.set_files(&r.cfg.name, &[]);
        memory::publish(&self.catalog, |c| c.without(&r.cfg.apex));
    }

    /// Reads a primary zone's file (blocking) and re-registers its files.
    fn load_primary(&self, name: &str) {
        let pz = self
            .zones
            .lock()
            .ok()
            .and_then(|z| z.get(name).and_then(|r| r.primary.clone()));
        if let Some(pz) = pz
            && let Ok(mut z) = pz.lock()
        {
            z.reload(&self.catalog);
            self.watch.set_files(name, &z.files);
        }
    }

    /// Re-reads the config; a config that fails validation changes nothing.
    pub fn reload_config(&self) -> Result<serde_json::Value, String> {
        let new = self.source.read().map_err(|e| e.to_string())?;
        let keys = Keyring::from_config(&new.keys)?;
        let mut zones = self
            .zones
            .lock()
            .map_err(|_| "internal error".to_string())?;
        let old_names: BTreeSet<String> = zones.keys().cloned().collect();
        let new_names: BTreeSet<String> = new.zones.iter().map(|z| z.name.clone()).collect();
        self.opts.keys.store(Arc::new(keys.clone()));
        let old_server = self
            .cfg
            .lock()
            .map(|c| (c.server.listen.clone(), c.server.control))
            .ok();
        if old_server != Some((new.server.listen.clone(), new.server.control)) {
            warn!("listen and control addresses change only with a restart");
        }
        if let Ok(mut c) = self.cfg.lock() {
            *c = new.clone();
        }
        let (mut added, mut removed, mut changed) = (Vec::new(), Vec::new(), Vec::new());
        for name in old_names.difference(&new_names) {
            if let Some(r) = zones.remove(name) {
                self.stop_zone(r);
                info!(zone = %name, "zone removed from the config; no longer served");
                removed.push(name.clone());
            }
        }
        let mut to_load = Vec::new();
        for zc in new.zones {
            let name = zc.name.clone();
            match zones.get(&name) {
                Some(r) if r.cfg == zc => continue,
                Some(_) => {
                    if let Some(r) = zones.remove(&name) {
                        self.stop_zone(r);
                    }
                    changed.push(name.clone());
                }
                None => added.push(name.clone()),
            }
            let is_primary = zc.role == Role::Primary;
            info!(zone = %name, "starting zone from the new config");
            zones.insert(name.clone(), self.start_zone(zc, &keys));
            if is_primary {
                to_load.push(name);
            }
        }
        drop(zones);
        for name in to_load {
            let _ = self.reload_tx.send(name);
        }
        info!(?added, ?removed, ?changed, "config reloaded");
        Ok(serde_json::json!({"ok": true, "added": added, "removed": removed, "changed": changed}))
    }

    pub fn zone_action(&self, name: &str, action: Action) -> Result<(), ActionError> {
        let mut apex = crate::zone::name::parse_absolute(name)
            .map_err(|_| ActionError::NoZone(name.to_string()))?;
        crate::zone::name::lowercase(&mut apex);
        let key = crate::zone::name::to_text(&apex);
        let zones = self
            .zones
            .lock()
            .map_err(|_| ActionError::NoZone(name.to_string()))?;
        let r = zones
            .get(&key)
            .ok_or_else(|| ActionError::NoZone(key.clone()))?;
        match (action, &r.primary, &r.commands) {
            (Action::Reload, Some(_), _) => {
                let _ = self.reload_tx.send(key);
            }
            (Action::Notify, Some(pz), _) => {
                if let Ok(z) = pz.lock() {
                    z.renotify();
                }
            }
            (Action::Refresh | Action::Retransfer, Some(_), _) => {
                return Err(ActionError::NotApplicable(format!(
                    "{key} is a primary zone: refresh and retransfer are for secondaries"
                )));
            }
            (a, None, Some(tx)) => {
                let cmd = match a {
                    Action::Reload | Action::Refresh => secondary::Command::Refresh,
                    Action::Retransfer => secondary::Command::Retransfer,
                    Action::Notify => secondary::Command::Notify,
                };
                let _ = tx.send(cmd);
            }
            (_, None, None) => return Err(ActionError::NoZone(key)),
        }
        Ok(())
    }

    pub fn status_json(&self) -> serde_json::Value {
        let zones: Vec<serde_json::Value> = self
            .zones
            .lock()
            .map(|z| z.values().map(|r| r.status.json()).collect())
            .unwrap_or_default();
        serde_json::json!({ "zones": zones })
    }

    pub fn metrics_text(&self) -> String {
        use std::fmt::Write;
        let mut out = String::with_capacity(8192);
        crate::stats::render(&mut out);
        if let Some(h) = memory::heap() {
            let _ = writeln!(
                out,
                "# HELP tandem_heap_bytes Heap memory: in use (mapped included), held free by malloc, mapped directly.\n# TYPE tandem_heap_bytes gauge\n\
                 tandem_heap_bytes{{kind=\"in_use\"}} {}\ntandem_heap_bytes{{kind=\"free\"}} {}\ntandem_heap_bytes{{kind=\"mapped\"}} {}",
                h.in_use, h.free, h.mapped
            );
        }
        let zones: Vec<Arc<ZoneStatus>> = self
            .zones
            .lock()
            .map(|z| z.values().map(|r| r.status.clone()).collect())
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "# HELP tandem_zone_queries_total Queries answered from each zone.\n# TYPE tandem_zone_queries_total counter"
        );
        for z in &zones {
            let _ = writeln!(
                out,
                "tandem_zone_queries_total{{zone=\"{}\"}} {}",
                z.name,
                z.queries.get()
            );
        }
        let _ = writeln!(
            out,
            "# HELP tandem_zone_serial The serial each zone serves.\n# TYPE tandem_zone_serial gauge"
        );
        for z in &zones {
            if let Some(s) = z.serial() {
                let _ = writeln!(out, "tandem_zone_serial{{zone=\"{}\"}} {s}", z.name);
            }
        }
        let _ = writeln!(
            out,
            "# HELP tandem_zone_records Records in the served version.\n# TYPE tandem_zone_records gauge"
        );
        for z in &zones {
            let _ = writeln!(
                out,
                "tandem_zone_records{{zone=\"{}\"}} {}",
                z.name,
                z.records()
            );
        }
        let _ = writeln!(
            out,
            "# HELP tandem_zone_state 1 for the zone's current state.\n# TYPE tandem_zone_state gauge"
        );
        for z in &zones {
            let st = z.state();
            for s in crate::status::State::ALL {
                let _ = writeln!(
                    out,
                    "tandem_zone_state{{zone=\"{}\",state=\"{}\"}} {}",
                    z.name,
                    s.name(),
                    u8::from(s == st)
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP tandem_follower_serial The serial a follower last reached.\n# TYPE tandem_follower_serial gauge"
        );
        let mut lags = String::new();
        for z in &zones {
            for (f, serial, lag) in z.follower_gauges() {
                let _ = writeln!(
                    out,
                    "tandem_follower_serial{{zone=\"{}\",follower=\"{f}\"}} {serial}",
                    z.name
                );
                let _ = writeln!(
                    lags,
                    "tandem_follower_lag_serials{{zone=\"{}\",follower=\"{f}\"}} {lag}",
                    z.name
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP tandem_follower_lag_serials How many serials a follower is behind.\n# TYPE tandem_follower_lag_serials gauge"
        );
        out.push_str(&lags);
        out
    }
}

pub fn run(cfg: Config, source: ConfigSource) -> Result<(), StartError> {
    memory::tune_malloc();
    info!(config = %cfg.source, zones = cfg.zones.len(), "starting");
    let keys = Keyring::from_config(&cfg.keys).map_err(StartError::Keys)?;
    let catalog: SharedCatalog = Arc::new(ArcSwap::from_pointee(Catalog::default()));
    let opts = Arc::new(Options {
        udp_payload: cfg.server.udp_payload,
        keys: ArcSwap::from_pointee(keys.clone()),
    });
    let stop = Arc::new(AtomicBool::new(false));

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let _guard = rt.enter();

    // Bind everything before loading, so a port conflict fails fast.
    let mut workers = Vec::new();
    for &addr in &cfg.server.listen {
        let bind = |proto, source| StartError::Bind {
            addr,
            proto,
            source,
        };
        let std_listener = std::net::TcpListener::bind(addr).map_err(|e| bind("TCP", e))?;
        std_listener.set_nonblocking(true)?;
        let listener = tokio::net::TcpListener::from_std(std_listener)?;
        let settings = server::tcp::TcpSettings {
            idle_timeout: cfg.server.tcp_idle_timeout,
            max_connections: cfg.server.tcp_max_connections,
            max_transfers_out: cfg.server.max_transfers_out,
        };
        rt.spawn(server::tcp::serve(
            listener,
            catalog.clone(),
            opts.clone(),
            settings,
        ));
        for i in 0..cfg.server.udp_workers {
            let sock = server::udp::bind(addr).map_err(|e| bind("UDP", e))?;
            let (c, o, s, rrl) = (catalog.clone(), opts.clone(), stop.clone(), cfg.server.rrl);
            workers.push(
                std::thread::Builder::new()
                    .name(format!("udp-{i}"))
                    .spawn(move || server::udp::run_worker(sock, c, o, s, rrl))?,
            );
        }
        info!(%addr, udp_workers = cfg.server.udp_workers, "listening (UDP and TCP)");
    }
    let control = match cfg.server.control {
        Some(addr) => {
            let l = std::net::TcpListener::bind(addr)
                .map_err(|source| StartError::Control { addr, source })?;
            l.set_nonblocking(true)?;
            Some((addr, tokio::net::TcpListener::from_std(l)?))
        }
        None => None,
    };

    if let Err(e) = std::fs::create_dir_all(&cfg.server.data_dir) {
        error!(data_dir = %cfg.server.data_dir.display(), "cannot create data_dir: {e}; journals and serials will not persist");
    }
    let (reload_tx, reload_rx) = mpsc::unbounded_channel::<String>();
    let watch = FileWatch::start(cfg.server.zone_watch, reload_tx.clone());
    let token = cfg.server.control_token.clone();
    let daemon = Arc::new(Daemon {
        catalog: catalog.clone(),
        opts,
        source,
        cfg: Mutex::new(cfg.clone()),
        zones: Mutex::new(BTreeMap::new()),
        watch,
        reload_tx: reload_tx.clone(),
        rt: rt.handle().clone(),
    });
    for zc in &cfg.zones {
        let r = daemon.start_zone(zc.clone(), &keys);
        if let Ok(mut z) = daemon.zones.lock() {
            z.insert(zc.name.clone(), r);
        }
        if zc.role == Role::Primary {
            daemon.load_primary(&zc.name);
        }
    }
    rt.spawn(reloader(reload_rx, daemon.clone()));
    if let Some((addr, listener)) = control {
        rt.spawn(crate::control::serve(listener, daemon.clone(), token));
        info!(%addr, "control API listening");
    }

    rt.block_on(async {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut hup), Ok(mut term), Ok(mut int)) =
            (signal(SignalKind::hangup()), signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
        else {
            error!("cannot install signal handlers");
            return;
        };
        loop {
            tokio::select! {
                _ = hup.recv() => {
                    info!("SIGHUP: re-reading the config and the zone files");
                    let d = daemon.clone();
                    match tokio::task::spawn_blocking(move || d.reload_config()).await {
                        Ok(Ok(_)) => {}
                        Ok(Err(e)) => error!("config not reloaded, nothing changed: {e}"),
                        Err(e) => error!("config reload failed: {e}"),
                    }
                    let names: Vec<String> = daemon.zones.lock().map(|z| z.iter().filter(|(_, r)| r.primary.is_some()).map(|(n, _)| n.clone()).collect()).unwrap_or_default();
                    for n in names {
                        let _ = reload_tx.send(n);
                    }
                }
                _ = term.recv() => break,
                _ = int.recv() => break,
            }
        }
        info!("shutting down");
    });
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        let _ = w.join();
    }
    Ok(())
}

/// Reloads primary zones named by file events, SIGHUP and the control API,
/// once each per burst.
async fn reloader(mut rx: mpsc::UnboundedReceiver<String>, daemon: Arc<Daemon>) {
    while let Some(first) = rx.recv().await {
        let mut pending = BTreeSet::from([first]);
        while let Ok(Some(n)) = tokio::time::timeout(SETTLE, rx.recv()).await {
            pending.insert(n);
        }
        let d = daemon.clone();
        let _ = tokio::task::spawn_blocking(move || {
            for name in pending {
                d.load_primary(&name);
            }
        })
        .await;
    }
}
