//! `tandem serve`: binds the sockets, starts the zones, the file watcher,
//! the reloader and the control API, and turns signals into reloads and a
//! clean shutdown. It wires the parts together and owns none of them.

use crate::catalog::{Catalog, SharedCatalog, publish};
use crate::config::Config;
use crate::lifecycles::{self, ConfigSource, Zones};
use crate::primary::watch::{Changed, FileWatch};
use crate::query;
use crate::server::{self, dispatch::Options};
use crate::supervise;
use crate::xfr::tsig::Keyring;
use arc_swap::ArcSwap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
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
    #[error("control API {addr}")]
    Control {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{0}")]
    Keys(String),
    #[error("TLS: {0}")]
    Tls(#[from] crate::tls::TlsError),
    #[error("runtime: {0}")]
    Runtime(#[from] std::io::Error),
    #[error("zones added through the control API: {0}")]
    ApiZones(#[from] crate::runtime_zones::StoreError),
}

pub fn run(cfg: Config, source: ConfigSource) -> Result<(), StartError> {
    publish::tune_malloc();
    supervise::install_hook();
    info!(config = %cfg.source, zones = cfg.zones.len(), "starting");
    crate::zone::denial::set_max_iterations(cfg.server.nsec3_max_iterations);
    let keys = Keyring::from_config(&cfg.keys).map_err(StartError::Keys)?;
    let catalog: SharedCatalog = Arc::new(ArcSwap::from_pointee(Catalog::default()));
    let opts = Arc::new(Options {
        query: query::Options {
            udp_payload: cfg.server.udp_payload,
            chaos: ArcSwap::from_pointee(lifecycles::chaos(&cfg.server)),
            edns: ArcSwap::from_pointee(query::edns::Settings::from_config(&cfg.server, None)),
        },
        keys: Arc::new(ArcSwap::from_pointee(keys)),
        tls: arc_swap::ArcSwapOption::new(cfg.server.tls.as_ref().map(|t| t.build()).transpose()?),
    });
    let stop = Arc::new(AtomicBool::new(false));

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let _guard = rt.enter();

    // Bind everything before loading, so a port conflict fails fast.
    let mut workers = Vec::new();
    let stream_listener = |addr: SocketAddr, proto: &'static str, tls: bool| {
        let std_listener =
            std::net::TcpListener::bind(addr).map_err(|source| StartError::Bind {
                addr,
                proto,
                source,
            })?;
        std_listener.set_nonblocking(true)?;
        let listener = tokio::net::TcpListener::from_std(std_listener)?;
        let settings = server::tcp::TcpSettings {
            idle_timeout: cfg.server.tcp_idle_timeout,
            max_connections: cfg.server.tcp_max_connections,
            max_transfers_out: cfg.server.max_transfers_out,
            transfer_deadlines: crate::xfr::out::Deadlines {
                message: cfg.server.tcp_idle_timeout,
                whole: cfg.server.transfer_out_timeout,
            },
        };
        rt.spawn(server::tcp::serve(
            listener,
            catalog.clone(),
            opts.clone(),
            settings,
            tls,
        ));
        Ok::<(), StartError>(())
    };
    for &addr in &cfg.server.tls_listen {
        stream_listener(addr, "TLS", true)?;
        info!(%addr, "listening (DNS over TLS, XoT)");
    }
    for &addr in &cfg.server.listen {
        let bind = |proto, source| StartError::Bind {
            addr,
            proto,
            source,
        };
        stream_listener(addr, "TCP", false)?;
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
    crate::secondary::limit_transfers_in(cfg.server.max_transfers_in);
    match crate::xfr::journal::move_flat_segments(&cfg.server.data_dir) {
        Ok(0) => {}
        Ok(n) => {
            info!(data_dir = %cfg.server.data_dir.display(), "moved {n} journal segments into per-zone journal directories")
        }
        Err(e) => {
            error!(data_dir = %cfg.server.data_dir.display(), "cannot move journal segments into per-zone directories: {e}; their history may be missing")
        }
    }
    let (reload_tx, reload_rx) = mpsc::unbounded_channel::<Changed>();
    let watch = FileWatch::start(cfg.server.zone_watch, reload_tx.clone());
    let token = cfg.server.control_token.clone();
    let zones = Zones::start(
        catalog.clone(),
        opts,
        source,
        cfg.clone(),
        watch,
        reload_tx.clone(),
        rt.handle().clone(),
    )?;
    rt.spawn(lifecycles::reloader(reload_rx, zones.clone()));
    rt.spawn(lifecycles::consume_catalogs(zones.clone()));
    if let Some((addr, listener)) = control {
        rt.spawn(crate::ops::control::serve(listener, zones.clone(), token));
        info!(%addr, "control API listening");
    }

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
                    info!("SIGHUP: re-reading the config and the zone files");
                    let z = zones.clone();
                    match tokio::task::spawn_blocking(move || z.reload_config()).await {
                        Ok(Ok(_)) => {}
                        Ok(Err(e)) => error!("config not reloaded, nothing changed: {e}"),
                        Err(e) => error!("config reload failed: {e}"),
                    }
                    for n in zones.primaries() {
                        let _ = reload_tx.send(Changed::complete(n));
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
