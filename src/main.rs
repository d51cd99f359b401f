//! tandem: an authoritative DNS server, primary or secondary.

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use tandem::config::{self, Config};
use tandem::daemon;
use tandem::lifecycles::ConfigSource;
use tandem::ops::client as control_client;
use tandem::zone;

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

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Human,
    Json,
}

/// How the CLI finds the control API.
#[derive(clap::Args)]
struct Control {
    /// Control API address (default: from --config, else 127.0.0.1:8053).
    #[arg(long)]
    control: Option<SocketAddr>,
    /// Read the control address and token from this config file.
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Bearer token (default: $TANDEM_TOKEN, else the config's control_token).
    #[arg(long)]
    token: Option<String>,
    /// Print the API's JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (no --config: zones/*.zone on 127.0.0.1:5353).
    Serve {
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Log lines for people (default) or as JSON objects.
        #[arg(long, value_enum, default_value = "human")]
        log_format: LogFormat,
    },
    /// Parse and check a zone file; errors as FILE:LINE: message, exit 1.
    Check {
        zonefile: PathBuf,
        /// Zone name (default: the file name without `.zone`).
        #[arg(long)]
        origin: Option<String>,
    },
    /// Zones, roles, serials, states; on a primary, each follower and its lag.
    Status {
        #[command(flatten)]
        ctl: Control,
    },
    /// Re-read zone file(s) (primary) or the whole config (no ZONE).
    Reload {
        zone: Option<String>,
        #[command(flatten)]
        ctl: Control,
    },
    /// Secondary: check the primary's SOA now.
    Refresh {
        zone: String,
        #[command(flatten)]
        ctl: Control,
    },
    /// Secondary: transfer the whole zone (AXFR) now.
    Retransfer {
        zone: String,
        #[command(flatten)]
        ctl: Control,
    },
    /// Send NOTIFY to the zone's followers now.
    Notify {
        zone: String,
        #[command(flatten)]
        ctl: Control,
    },
    /// Add or remove a zone at run time (kept in data_dir/zones.json).
    Zone {
        #[command(subcommand)]
        change: ZoneChange,
    },
}

#[derive(Subcommand)]
enum ZoneChange {
    /// Serve a new zone: `--role primary --file F` or `--role secondary
    /// --primary ADDR` (more keys of a `[[zone]]` table with `--set KEY=VALUE`).
    Add {
        zone: String,
        #[arg(long)]
        role: String,
        #[arg(long)]
        file: Option<PathBuf>,
        /// A primary to transfer from (repeatable), as in `primaries`.
        #[arg(long = "primary")]
        primaries: Vec<String>,
        /// A follower to NOTIFY (repeatable), as in `notify`.
        #[arg(long)]
        notify: Vec<String>,
        /// Any other key of a `[[zone]]` table, its value in TOML
        /// (`--set serial_policy='"unixtime"'`, `--set min_refresh=60`).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        #[command(flatten)]
        ctl: Control,
    },
    /// Stop serving a zone added with `zone add` and delete its files in data_dir.
    Remove {
        zone: String,
        #[command(flatten)]
        ctl: Control,
    },
}

/// The JSON body of `zone add`: the zone's keys as a `[[zone]]` table has them.
fn zone_body(
    zone: &str,
    role: &str,
    file: Option<PathBuf>,
    primaries: Vec<String>,
    notify: Vec<String>,
    set: &[String],
) -> anyhow::Result<String> {
    let mut t = serde_json::Map::new();
    t.insert("name".into(), zone.into());
    t.insert("role".into(), role.into());
    if let Some(f) = file {
        // The server resolves paths from its own directory: send it whole.
        let f = std::path::absolute(&f).unwrap_or(f);
        t.insert("file".into(), f.display().to_string().into());
    }
    if !primaries.is_empty() {
        t.insert("primaries".into(), primaries.into());
    }
    if !notify.is_empty() {
        t.insert("notify".into(), notify.into());
    }
    for kv in set {
        let (k, v) = kv
            .split_once('=')
            .with_context(|| format!("--set {kv}: expected KEY=VALUE"))?;
        let value: toml::Value = toml::from_str::<toml::Table>(&format!("v = {v}"))
            .map(|mut t| t.remove("v").unwrap_or(toml::Value::Boolean(false)))
            .or_else(|_| Ok::<_, anyhow::Error>(toml::Value::String(v.to_string())))?;
        t.insert(k.trim().into(), serde_json::to_value(value)?);
    }
    Ok(serde_json::Value::Object(t).to_string())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let r = match cli.command {
        Command::Serve { config, log_format } => serve(config, log_format),
        Command::Check { zonefile, origin } => check(&zonefile, origin.as_deref()),
        Command::Status { ctl } => call(&ctl, "GET", "/status".into()),
        Command::Reload { zone: None, ctl } => call(&ctl, "POST", "/reload".into()),
        Command::Reload { zone: Some(z), ctl } => call(&ctl, "POST", format!("/zones/{z}/reload")),
        Command::Refresh { zone, ctl } => call(&ctl, "POST", format!("/zones/{zone}/refresh")),
        Command::Retransfer { zone, ctl } => {
            call(&ctl, "POST", format!("/zones/{zone}/retransfer"))
        }
        Command::Notify { zone, ctl } => call(&ctl, "POST", format!("/zones/{zone}/notify")),
        Command::Zone {
            change:
                ZoneChange::Add {
                    zone,
                    role,
                    file,
                    primaries,
                    notify,
                    set,
                    ctl,
                },
        } => zone_body(&zone, &role, file, primaries, notify, &set)
            .and_then(|body| call_with(&ctl, "POST", "/zones".into(), Some(body))),
        Command::Zone {
            change: ZoneChange::Remove { zone, ctl },
        } => call(&ctl, "DELETE", format!("/zones/{zone}")),
    };
    match r {
        Ok(code) => code,
        Err(e) => {
            eprintln!("tandem: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn check(path: &Path, origin: Option<&str>) -> anyhow::Result<ExitCode> {
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
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("{e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Logging from `RUST_LOG` if set, else the config's `log_level`, else
/// info. Either one that is not a level is a startup error naming it.
fn init_logging(cfg: &Config, format: LogFormat) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    let directive = match std::env::var("RUST_LOG") {
        Ok(v) if !v.trim().is_empty() => {
            config::log_filter(&v).map_err(|e| anyhow::anyhow!("RUST_LOG: {e}"))?
        }
        _ => cfg
            .server
            .log_level
            .clone()
            .unwrap_or_else(|| "info".into()),
    };
    let filter = tracing_subscriber::EnvFilter::try_new(&directive)
        .map_err(|e| anyhow::anyhow!("log level {directive:?}: {e}"))?;
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => b.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => b.json().init(),
    }
    Ok(())
}

fn serve(config_path: Option<PathBuf>, format: LogFormat) -> anyhow::Result<ExitCode> {
    let source = match config_path {
        Some(p) => ConfigSource::File(p),
        None => ConfigSource::Default(std::env::current_dir()?),
    };
    let cfg = source.read()?;
    init_logging(&cfg, format)?;
    daemon::run(cfg, source)?;
    Ok(ExitCode::SUCCESS)
}

/// One control API call, printed as a table or as JSON.
fn call(ctl: &Control, method: &str, path: String) -> anyhow::Result<ExitCode> {
    call_with(ctl, method, path, None)
}

fn call_with(
    ctl: &Control,
    method: &str,
    path: String,
    body: Option<String>,
) -> anyhow::Result<ExitCode> {
    let cfg = match &ctl.config {
        Some(p) => Some(config::load(p)?),
        None => None,
    };
    let addr = match (ctl.control, &cfg) {
        (Some(a), _) => a,
        (None, Some(c)) => c
            .server
            .control
            .context("the config has no [server] control address")?,
        (None, None) => config::DEFAULT_CONTROL.parse()?,
    };
    let token = ctl
        .token
        .clone()
        .or_else(|| std::env::var("TANDEM_TOKEN").ok())
        .or_else(|| cfg.and_then(|c| c.server.control_token));
    let (code, body) =
        control_client::send(addr, method, &path, token.as_deref(), body.as_deref())?;
    let v: serde_json::Value =
        serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body.clone()));
    if ctl.json {
        println!("{}", serde_json::to_string_pretty(&v)?);
    }
    if !(200..300).contains(&code) {
        let msg = v.get("error").and_then(|e| e.as_str()).unwrap_or(&body);
        eprintln!("tandem: {msg} (HTTP {code})");
        return Ok(ExitCode::FAILURE);
    }
    if ctl.json {
        return Ok(ExitCode::SUCCESS);
    }
    if path == "/status" {
        print_status(&v);
    } else if path == "/reload" {
        let list = |k: &str| -> String {
            let names: Vec<String> = v[k]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect();
            if names.is_empty() {
                "none".into()
            } else {
                names.join(", ")
            }
        };
        println!(
            "config reloaded: added {}; removed {}; changed {}; {} unchanged",
            list("added"),
            list("removed"),
            list("changed"),
            v["unchanged"]
        );
        if v["restart_required"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
        {
            println!(
                "not applied until a restart: [server] {}",
                list("restart_required")
            );
        }
    } else if path == "/zones" {
        println!("zone {} added", v["zone"].as_str().unwrap_or(""));
    } else if method == "DELETE" {
        println!(
            "zone {} removed ({} files deleted from data_dir)",
            v["zone"].as_str().unwrap_or(""),
            v["files_removed"]
        );
    } else {
        let result = v["result"].as_str().unwrap_or_default();
        if code == 202 {
            println!(
                "{}: {} still running: {result}",
                v["zone"].as_str().unwrap_or(""),
                v["action"].as_str().unwrap_or("")
            );
        } else {
            println!("{result}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_status(v: &serde_json::Value) {
    let s = |x: &serde_json::Value| match x {
        serde_json::Value::Null => "-".to_string(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    println!(
        "{:<28} {:<10} {:<12} {:<11} DETAIL",
        "ZONE", "ROLE", "SERIAL", "STATE"
    );
    for z in v["zones"].as_array().into_iter().flatten() {
        let detail = if z["role"] == "secondary" {
            let primaries: Vec<String> = z["primaries"]
                .as_array()
                .into_iter()
                .flatten()
                .map(&s)
                .collect();
            format!(
                "primaries {}  next refresh {}  expires {}",
                primaries.join(","),
                s(&z["next_refresh"]),
                s(&z["expires_at"])
            )
        } else {
            format!("loaded {}", s(&z["last_loaded"]))
        };
        let detail = match z["origin"].as_str() {
            Some("config") | None => detail,
            Some(o) => format!("{detail}  (from {o})"),
        };
        println!(
            "{:<28} {:<10} {:<12} {:<11} {}",
            s(&z["name"]),
            s(&z["role"]),
            s(&z["serial"]),
            s(&z["state"]),
            detail
        );
        if let Some(e) = z["last_error"].as_str() {
            println!("  last error ({}): {e}", s(&z["last_error_at"]));
        }
        let followers = z["followers"].as_array().map_or(0, |f| f.len());
        if followers > 0 {
            let last = match z["converged_serial"].as_u64() {
                Some(serial) => format!(
                    "serial {serial} reached every listed follower {} ms after it was published",
                    s(&z["convergence_ms"])
                ),
                None => "no version has reached every listed follower yet".to_string(),
            };
            let now = if z["converged"] == true {
                "converged"
            } else {
                "not converged"
            };
            println!("  {now}: {last}");
        }
        for f in z["followers"].as_array().into_iter().flatten() {
            let behind = match f["behind_since"].as_str() {
                Some(t) => format!("  behind since {t}"),
                None => String::new(),
            };
            println!(
                "  follower {:<24} {:<11} serving {:<12} lag {:<6} checked {:<21} notify acked {}{behind}",
                s(&f["address"]),
                s(&f["state"]),
                s(&f["serving_serial"]),
                s(&f["lag_serials"]),
                s(&f["last_checked"]),
                s(&f["notify_acked"])
            );
        }
    }
}
