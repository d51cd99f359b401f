//! `tandem serve`: binds the sockets, starts the zones' lifecycles, and
//! runs until SIGTERM/SIGINT. SIGHUP re-reads the zone files.

use crate::answer::Options;
use crate::catalog::{Catalog, Served, SharedCatalog, TransferPolicy};
use crate::config::{Config, Role};
use crate::primary::{self, PrimaryZone, watch::FileWatch};
use crate::secondary::SecondaryZone;
use crate::server;
use crate::tsig::Keyring;
use arc_swap::ArcSwap;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tracing::{error, info};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("listen {addr} ({proto})")]
    Bind {
        addr: SocketAddr,
        proto: &'static str,
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

pub fn run(cfg: Config) -> Result<(), StartError> {
    info!(config = %cfg.source, zones = cfg.zones.len(), "starting");
    let keys = Keyring::from_config(&cfg.keys).map_err(StartError::Keys)?;
    let policies: Vec<Arc<TransferPolicy>> = cfg
        .zones
        .iter()
        .map(|z| {
            Arc::new(TransferPolicy {
                allow_transfer: z.allow_transfer.clone(),
                transfer_key: z.transfer_key.clone(),
            })
        })
        .collect();
    let catalog: SharedCatalog = Arc::new(ArcSwap::from_pointee(Catalog::new(
        cfg.zones
            .iter()
            .zip(&policies)
            .map(|(z, p)| Served::empty(&z.apex, p.clone()))
            .collect(),
    )));
    let opts = Arc::new(Options {
        udp_payload: cfg.server.udp_payload,
        keys: keys.clone(),
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
        };
        rt.spawn(server::tcp::serve(
            listener,
            catalog.clone(),
            opts.clone(),
            settings,
        ));
        for i in 0..cfg.server.udp_workers {
            let sock = server::udp::bind(addr).map_err(|e| bind("UDP", e))?;
            let (c, o, s) = (catalog.clone(), opts.clone(), stop.clone());
            workers.push(
                std::thread::Builder::new()
                    .name(format!("udp-{i}"))
                    .spawn(move || server::udp::run_worker(sock, c, o, s))?,
            );
        }
        info!(%addr, udp_workers = cfg.server.udp_workers, "listening (UDP and TCP)");
    }

    if let Err(e) = std::fs::create_dir_all(&cfg.server.data_dir) {
        error!(data_dir = %cfg.server.data_dir.display(), "cannot create data_dir: {e}; journals and serials will not persist");
    }
    let (reload_tx, reload_rx) = mpsc::unbounded_channel::<usize>();
    let watch = Arc::new(FileWatch::start(cfg.server.zone_watch, reload_tx.clone()));
    let mut zones: Vec<Option<Arc<Mutex<PrimaryZone>>>> = Vec::new();
    for (i, zc) in cfg.zones.iter().enumerate() {
        match zc.role {
            Role::Primary => {
                let (tx, rx) = tokio::sync::watch::channel(None);
                if !zc.notify.is_empty() {
                    let key = zc
                        .transfer_key
                        .as_deref()
                        .and_then(|k| keys.get(k))
                        .cloned();
                    primary::notify::spawn(zc.name.clone(), zc.apex.clone(), &zc.notify, key, rx);
                }
                let mut pz = PrimaryZone::open(zc.clone(), &cfg.server.data_dir, tx);
                pz.reload(&catalog);
                watch.set_files(i, &pz.files);
                zones.push(Some(Arc::new(Mutex::new(pz))));
            }
            Role::Secondary => {
                let (tx, rx) = tokio::sync::watch::channel(None);
                let key = zc
                    .transfer_key
                    .as_deref()
                    .and_then(|k| keys.get(k))
                    .cloned();
                if !zc.notify.is_empty() {
                    primary::notify::spawn(
                        zc.name.clone(),
                        zc.apex.clone(),
                        &zc.notify,
                        key.clone(),
                        rx,
                    );
                }
                let sz =
                    SecondaryZone::new(zc.clone(), key, catalog.clone(), &cfg.server.data_dir, tx);
                rt.spawn(sz.run());
                zones.push(None);
            }
        }
    }
    let zones = Arc::new(zones);
    rt.spawn(reloader(
        reload_rx,
        zones.clone(),
        catalog.clone(),
        watch.clone(),
    ));

    rt.block_on(async {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut hup), Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::hangup()),
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            error!("cannot install signal handlers");
            return;
        };
        loop {
            tokio::select! {
                _ = hup.recv() => {
                    info!("SIGHUP: re-reading zone files");
                    for i in 0..zones.len() {
                        let _ = reload_tx.send(i);
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

/// Reloads zones named by file events and SIGHUP, once each per burst.
async fn reloader(
    mut rx: mpsc::UnboundedReceiver<usize>,
    zones: Arc<Vec<Option<Arc<Mutex<PrimaryZone>>>>>,
    catalog: SharedCatalog,
    watch: Arc<FileWatch>,
) {
    while let Some(first) = rx.recv().await {
        let mut pending = BTreeSet::from([first]);
        while let Ok(Some(i)) = tokio::time::timeout(SETTLE, rx.recv()).await {
            pending.insert(i);
        }
        let (zones, catalog, watch) = (zones.clone(), catalog.clone(), watch.clone());
        let _ = tokio::task::spawn_blocking(move || {
            for i in pending {
                let Some(Some(z)) = zones.get(i) else {
                    continue;
                };
                let Ok(mut z) = z.lock() else { continue };
                z.reload(&catalog);
                watch.set_files(i, &z.files);
            }
        })
        .await;
    }
}
