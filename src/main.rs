//! tandem: an authoritative DNS server, primary or secondary.

use anyhow::Context;
use arc_swap::ArcSwap;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tandem::catalog::{Catalog, Served, SharedCatalog};
use tandem::config::{self, Config, Role};
use tandem::{answer, primary, server, zone};
use tracing::{error, info, warn};

#[derive(Parser)]
#[command(
    name = "tandem",
    version,
    about = "Authoritative DNS server: primary and secondary"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (no --config: zones/*.zone on 127.0.0.1:5353).
    Serve {
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Parse and check a zone file; errors as FILE:LINE: message, exit 1.
    Check {
        zonefile: PathBuf,
        /// Zone name (default: the file name without `.zone`).
        #[arg(long)]
        origin: Option<String>,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let r = match cli.command {
        Command::Serve { config } => serve(config),
        Command::Check { zonefile, origin } => check(&zonefile, origin.as_deref()),
    };
    match r {
        Ok(code) => code,
        Err(e) => {
            eprintln!("tandem: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn check(path: &std::path::Path, origin: Option<&str>) -> anyhow::Result<std::process::ExitCode> {
    let origin = match origin {
        Some(o) => o.to_string(),
        None => path
            .file_name()
            .map(|f| f.to_string_lossy().trim_end_matches(".zone").to_string())
            .context("cannot guess the zone name from the file name; give --origin")?,
    };
    let apex = zone::name::parse_absolute(&origin)
        .map_err(|e| anyhow::anyhow!("--origin {origin}: {e}"))?;
    match zone::load_zone_file(path, &apex) {
        Ok(l) => {
            for w in &l.warnings {
                eprintln!("{w}");
            }
            println!(
                "zone {}/IN: loaded serial {} ({} records, {} names)",
                zone::name::to_text(&apex),
                l.zone.serial(),
                l.zone.record_count(),
                l.zone.name_count()
            );
            println!("OK");
            Ok(std::process::ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("{e}");
            Ok(std::process::ExitCode::FAILURE)
        }
    }
}

fn init_logging(cfg: &Config) {
    let default = cfg
        .server
        .log_level
        .clone()
        .unwrap_or_else(|| "info".into());
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
}

fn serve(config_path: Option<PathBuf>) -> anyhow::Result<std::process::ExitCode> {
    let cfg = match &config_path {
        Some(p) => config::load(p)?,
        None => config::embedded_default(&std::env::current_dir()?)?,
    };
    init_logging(&cfg);
    info!(config = %cfg.source, zones = cfg.zones.len(), "starting");

    let catalog: SharedCatalog = Arc::new(ArcSwap::from_pointee(Catalog::new(
        cfg.zones
            .iter()
            .map(|z| Served {
                apex: z.apex.clone().into(),
                zone: None,
            })
            .collect(),
    )));
    let opts = Arc::new(answer::Options {
        udp_payload: cfg.server.udp_payload,
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
        let std_listener =
            std::net::TcpListener::bind(addr).with_context(|| format!("listen {addr} (TCP)"))?;
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
            let sock = server::udp::bind(addr).with_context(|| format!("listen {addr} (UDP)"))?;
            let (c, o, s) = (catalog.clone(), opts.clone(), stop.clone());
            workers.push(
                std::thread::Builder::new()
                    .name(format!("udp-{i}"))
                    .spawn(move || server::udp::run_worker(sock, c, o, s))?,
            );
        }
        info!(%addr, udp_workers = cfg.server.udp_workers, "listening (UDP and TCP)");
    }

    for zc in &cfg.zones {
        match zc.role {
            Role::Primary => {
                primary::reload(&catalog, zc);
            }
            Role::Secondary => {
                warn!(zone = %zc.name, "secondary zones are not followed yet; answering SERVFAIL")
            }
        }
    }

    let cfg = Arc::new(cfg);
    let code = rt.block_on(async {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut hup), Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::hangup()),
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            error!("cannot install signal handlers");
            return std::process::ExitCode::FAILURE;
        };
        loop {
            tokio::select! {
                _ = hup.recv() => {
                    info!("SIGHUP: reloading zone files");
                    let (cat, cfg) = (catalog.clone(), cfg.clone());
                    let _ = tokio::task::spawn_blocking(move || {
                        for zc in cfg.zones.iter().filter(|z| z.role == Role::Primary) {
                            primary::reload(&cat, zc);
                        }
                    }).await;
                }
                _ = term.recv() => break,
                _ = int.recv() => break,
            }
        }
        info!("shutting down");
        std::process::ExitCode::SUCCESS
    });
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        let _ = w.join();
    }
    Ok(code)
}
