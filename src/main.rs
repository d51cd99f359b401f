//! tandem: an authoritative DNS server, primary or secondary.

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use tandem::config::{self, Config};
use tandem::{daemon, zone};

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
    daemon::run(cfg)?;
    Ok(std::process::ExitCode::SUCCESS)
}
