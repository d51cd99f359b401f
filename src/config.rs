//! TOML configuration (README "Configuration") → validated `Config`. Every error names the
//! file, the zone (when inside a `[[zone]]`) and the key.

use crate::zone::name;
use ipnet::IpNet;
use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

// ---- the file as written -------------------------------------------------

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    server: RawServer,
    #[serde(default)]
    key: Vec<RawKey>,
    #[serde(default)]
    zone: Vec<RawZone>,
    /// RFC 9432 catalogs: a zone table plus `role`, `defaults`, `group`.
    #[serde(default)]
    catalog: Vec<toml::Table>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: Option<Vec<String>>,
    control: Option<String>,
    control_token: Option<String>,
    data_dir: Option<PathBuf>,
    udp_workers: Option<usize>,
    udp_payload: Option<u16>,
    tcp_idle_timeout: Option<u64>,
    tcp_max_connections: Option<usize>,
    max_transfers_out: Option<usize>,
    max_transfers_in: Option<usize>,
    rrl_responses_per_second: Option<u32>,
    rrl_slip: Option<u32>,
    log_level: Option<String>,
    zone_watch: Option<String>,
    nsec3_max_iterations: Option<u16>,
    identity: Option<String>,
    version: Option<String>,
    nsid: Option<String>,
    cookie_secret: Option<String>,
    require_server_cookie: Option<bool>,
    transfer_out_timeout: Option<u64>,
    tls_listen: Option<Vec<String>>,
    tls_certificate: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    tls_client_ca: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKey {
    name: String,
    algorithm: String,
    secret: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawZone {
    name: String,
    role: String,
    file: Option<PathBuf>,
    #[serde(default)]
    notify: Vec<String>,
    allow_transfer: Option<Vec<String>>,
    transfer_key: Option<String>,
    serial_policy: Option<String>,
    #[serde(default)]
    primaries: Vec<String>,
    allow_notify: Option<Vec<String>>,
    min_refresh: Option<u32>,
    max_refresh: Option<u32>,
    min_retry: Option<u32>,
    max_retry: Option<u32>,
    min_expire: Option<u32>,
    max_expire: Option<u32>,
    journal_max_entries: Option<usize>,
    journal_max_bytes: Option<u64>,
    max_transfer_records: Option<usize>,
    max_transfer_bytes: Option<u64>,
    transfer_timeout: Option<u64>,
    transfer_tls: Option<String>,
    follower_check_interval: Option<u64>,
    follower_behind_after: Option<u64>,
    tls_ca: Option<PathBuf>,
    tls_name: Option<String>,
    tls_certificate: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    /// A primary zone listed in the catalog so named (a producer here).
    catalog: Option<String>,
    catalog_group: Option<String>,
    /// A producer's catalog zone: its file is written by tandem.
    #[serde(skip)]
    generated: bool,
}

// ---- the validated configuration ----------------------------------------

#[derive(Debug, Clone)]
pub struct Config {
    /// Where it came from (a path, or "<embedded default>").
    pub source: String,
    pub server: Server,
    pub keys: Vec<Key>,
    /// Every zone of the file, the catalog zones of `[[catalog]]` included.
    pub zones: Vec<ZoneConfig>,
    pub catalogs: Vec<CatalogConfig>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CatalogRole {
    /// Follows a catalog zone and serves its members (RFC 9432 §5).
    Consumer,
    /// Publishes a catalog zone listing the primary zones that name it.
    Producer,
}

/// A `[[catalog]]`: the catalog zone itself is in `Config::zones`.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogConfig {
    /// The catalog zone's name (canonical).
    pub name: String,
    pub role: CatalogRole,
    /// What every member zone gets (as a `[[zone]]` table's keys): the
    /// catalog's `primaries` and `transfer_key`, then `[catalog.defaults]`.
    pub defaults: serde_json::Map<String, serde_json::Value>,
    /// `[catalog.group.NAME]`: what members in group NAME get on top.
    pub groups: std::collections::BTreeMap<String, serde_json::Map<String, serde_json::Value>>,
}

impl CatalogConfig {
    /// The settings of member zone `name` (in `group`, if any) as a
    /// `[[zone]]` table's keys.
    pub fn member_json(&self, name: &str, group: Option<&str>) -> serde_json::Value {
        let mut m = self.defaults.clone();
        if let Some(g) = group.and_then(|g| self.groups.get(g)) {
            m.extend(g.clone());
        }
        m.insert("name".into(), name.into());
        m.insert("role".into(), "secondary".into());
        serde_json::Value::Object(m)
    }
}

#[derive(Debug, Clone)]
pub struct Server {
    pub listen: Vec<SocketAddr>,
    pub control: Option<SocketAddr>,
    pub control_token: Option<String>,
    pub data_dir: PathBuf,
    pub udp_workers: usize,
    pub udp_payload: u16,
    pub tcp_idle_timeout: Duration,
    pub tcp_max_connections: usize,
    /// AXFR/IXFR answered at once; more are REFUSED (they retry).
    pub max_transfers_out: usize,
    /// AXFR/IXFR fetched at once by this server's secondary zones; more
    /// wait for a slot (BIND's `transfers-in`, 10).
    pub max_transfers_in: usize,
    /// Response-rate limiting per client /24 or /56 (off when None).
    pub rrl: Option<RrlConfig>,
    /// An EnvFilter directive, validated (`warning` and `notice` accepted).
    pub log_level: Option<String>,
    pub zone_watch: ZoneWatch,
    /// Signed zones whose NSEC3PARAM asks more hash iterations are refused
    /// (RFC 9276; 150 is BIND's and Knot's validator limit).
    pub nsec3_max_iterations: u16,
    /// id.server / hostname.bind (CH TXT); empty hides them (REFUSED).
    pub identity: String,
    /// version.bind / version.server (CH TXT); empty hides them (REFUSED).
    pub version: String,
    /// The EDNS NSID sent to clients that ask (RFC 5001); empty: none.
    pub nsid: Vec<u8>,
    /// The secret server cookies are made with (RFC 7873 / 9018); `None`:
    /// a random one made at start.
    pub cookie_secret: Option<[u8; 16]>,
    /// BADCOOKIE for UDP requests with a cookie but no valid server cookie.
    pub require_server_cookie: bool,
    /// The longest a whole transfer out may take (a slow reader is cut).
    pub transfer_out_timeout: Duration,
    /// Where DNS over TLS and XoT are served (RFC 7858, RFC 9103).
    pub tls_listen: Vec<SocketAddr>,
    /// The listener's certificate and key, and the CA of the client
    /// certificates it accepts; re-read on every config reload.
    pub tls: Option<ServerTls>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerTls {
    pub certificate: PathBuf,
    pub key: PathBuf,
    pub client_ca: Option<PathBuf>,
}

impl ServerTls {
    pub fn build(&self) -> Result<std::sync::Arc<rustls::ServerConfig>, crate::tls::TlsError> {
        crate::tls::server_config(&self.certificate, &self.key, self.client_ca.as_deref())
    }
}

/// A primary a secondary zone transfers from: plain TCP (and UDP for the
/// SOA check), or TLS (`tls://ADDR[:PORT]`, port 853 by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Primary {
    pub addr: SocketAddr,
    pub tls: bool,
}

impl std::fmt::Display for Primary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.tls {
            write!(f, "tls://{}", self.addr)
        } else {
            write!(f, "{}", self.addr)
        }
    }
}

/// How often a zone's listed followers are asked which serial they serve,
/// and when one counts as left behind (`xfr::follower`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FollowerChecks {
    pub interval: Duration,
    pub behind_after: Duration,
}

/// Whether a zone may be transferred over plain TCP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TransferTls {
    #[default]
    Optional,
    /// Over TLS only.
    Required,
    /// Over TLS only, to clients that showed a certificate from `[server]
    /// tls_client_ca` (what `required` means when that CA is set).
    RequiredWithCertificate,
}

/// How a secondary zone's TLS primaries are verified, and the client
/// certificate it shows them; the files are read at each refresh, so a
/// rotated one applies without a reload.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ZoneTls {
    pub ca: Option<PathBuf>,
    pub name: Option<String>,
    pub certificate: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

impl ZoneTls {
    pub fn connector(&self) -> Result<crate::tls::Connector, crate::tls::TlsError> {
        let cert = self.certificate.as_deref().zip(self.key.as_deref());
        crate::tls::Connector::new(self.ca.as_deref(), self.name.as_deref(), cert)
    }
}

/// Response-rate limiting (`server/rrl.rs`): answers per second per
/// client network, and how many dropped ones go out truncated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RrlConfig {
    pub responses_per_second: u32,
    pub slip: u32,
}

/// How a primary notices zone-file edits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZoneWatch {
    /// inotify, falling back to polling where it is unavailable.
    Auto,
    /// Poll every second (network file systems where inotify sees nothing).
    Poll,
    /// Only SIGHUP reloads.
    Off,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    HmacSha256,
    HmacSha384,
    HmacSha512,
}

#[derive(Debug, Clone)]
pub struct Key {
    /// Canonical: lower case, absolute, with the trailing dot.
    pub name: String,
    pub algorithm: Algorithm,
    pub secret: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Primary,
    Secondary,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SerialPolicy {
    Keep,
    Increment,
    UnixTime,
    DateSerial,
}

/// Clamps on the SOA timers a secondary follows (seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerBounds {
    pub min_refresh: u32,
    pub max_refresh: u32,
    pub min_retry: u32,
    pub max_retry: u32,
    pub min_expire: u32,
    pub max_expire: u32,
}

impl Default for TimerBounds {
    /// BIND's defaults.
    fn default() -> Self {
        TimerBounds {
            min_refresh: 300,
            max_refresh: 2_419_200,
            min_retry: 500,
            max_retry: 1_209_600,
            min_expire: 3600,
            max_expire: 14_515_200,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ZoneConfig {
    /// Presentation form, lower case, with the trailing dot.
    pub name: String,
    /// Lower-cased wire form.
    pub apex: Vec<u8>,
    pub role: Role,
    pub file: PathBuf,
    pub notify: Vec<SocketAddr>,
    pub allow_transfer: Vec<IpNet>,
    /// The `[[key]]`'s canonical name (lower case, trailing dot).
    pub transfer_key: Option<String>,
    pub serial_policy: SerialPolicy,
    pub primaries: Vec<Primary>,
    pub allow_notify: Vec<IpNet>,
    pub timers: TimerBounds,
    pub journal_max_entries: usize,
    pub journal_max_bytes: u64,
    /// Limits on one incoming transfer; past them it is abandoned.
    pub max_transfer_records: usize,
    pub max_transfer_bytes: u64,
    /// Seconds a whole incoming transfer may take.
    pub transfer_timeout: std::time::Duration,
    pub transfer_tls: TransferTls,
    /// For `tls://` primaries.
    pub tls: ZoneTls,
    /// How often the followers in `notify` are asked which serial they
    /// serve, and when one is NOTIFYed again for being behind.
    pub follower_checks: FollowerChecks,
    /// A primary zone listed in this produced catalog, in this group.
    pub catalog: Option<String>,
    pub catalog_group: Option<String>,
}

pub const DEFAULT_LISTEN: &str = "127.0.0.1:5353";
pub const DEFAULT_CONTROL: &str = "127.0.0.1:8053";

/// Largest UDP payload we send by default (the 2020 DNS flag day value;
/// BIND, Knot and NSD default to it too).
pub const DEFAULT_UDP_PAYLOAD: u16 = 1232;

/// A zone name as written (`Example.COM` or `example.com.`) in the form
/// zones are known by: lower case, trailing dot.
pub fn zone_name(text: &str) -> Result<String, String> {
    let mut wire = name::parse_absolute(text).map_err(|e| e.to_string())?;
    name::lowercase(&mut wire);
    Ok(name::to_text(&wire))
}

/// A key name as written (`xfr.example` or `XFR.example.`) in canonical
/// form: absolute, lower case, trailing dot. Names are compared in wire
/// form, so the spelling in the file does not matter.
pub fn key_name(text: &str) -> Result<String, String> {
    let mut wire = name::parse_absolute(text).map_err(|e| e.to_string())?;
    if wire == [0] {
        return Err("the root is not a key name".into());
    }
    name::lowercase(&mut wire);
    Ok(name::to_text(&wire))
}

/// A log level as an EnvFilter directive: `error`, `warn` (or `warning`),
/// `info` (or `notice`), `debug`, `trace`, `off`, or `TARGET=LEVEL` pairs
/// separated by commas. Anything else is an error rather than a filter that
/// silently matches nothing.
pub fn log_filter(text: &str) -> Result<String, String> {
    let level = |l: &str| -> Option<&'static str> {
        Some(match l.to_ascii_lowercase().as_str() {
            "off" | "none" => "off",
            "error" | "err" | "critical" => "error",
            "warn" | "warning" => "warn",
            "info" | "notice" => "info",
            "debug" => "debug",
            "trace" => "trace",
            _ => return None,
        })
    };
    let mut out = Vec::new();
    for d in text.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let fixed = match d.split_once('=') {
            None => level(d).map(str::to_string),
            Some((target, l)) => {
                let ok = !target.is_empty()
                    && target
                        .bytes()
                        .all(|c| c.is_ascii_alphanumeric() || b"_:-".contains(&c));
                level(l).filter(|_| ok).map(|l| format!("{target}={l}"))
            }
        };
        out.push(fixed.ok_or_else(|| {
            format!(
                "\"{d}\" is not a log level (error, warn, info, debug, trace, off) or TARGET=LEVEL"
            )
        })?);
    }
    if out.is_empty() {
        return Err("empty".into());
    }
    Ok(out.join(","))
}

/// This host's name, for id.server (NSD and Knot default to it too).
/// The longest NSID sent (RFC 5001 sets no limit; one TXT string's worth).
pub const MAX_NSID: usize = 255;

/// `nsid`: text as it is, or `hex:` and an even number of hex digits
/// (as Knot's `0x…` and BIND's `server-id`): at most 255 octets.
fn nsid(v: &str) -> Result<Vec<u8>, String> {
    let octets = match v.strip_prefix("hex:") {
        Some(h) => {
            let o = data_encoding::HEXLOWER_PERMISSIVE
                .decode(h.as_bytes())
                .map_err(|e| format!("\"{v}\" is not hex:<hex digits>: {e}"))?;
            if o.is_empty() {
                return Err("\"hex:\" needs at least one octet".into());
            }
            o
        }
        None => v.as_bytes().to_vec(),
    };
    if octets.len() > MAX_NSID {
        return Err(format!("{} octets; at most {MAX_NSID}", octets.len()));
    }
    Ok(octets)
}

/// `cookie_secret`: 16 octets in hex (32 digits), as BIND's `cookie-secret`
/// for SipHash-2-4.
fn cookie_secret(v: &str) -> Result<[u8; 16], String> {
    let o = data_encoding::HEXLOWER_PERMISSIVE
        .decode(v.trim().as_bytes())
        .map_err(|e| format!("not hex: {e}"))?;
    o.try_into().map_err(|o: Vec<u8>| {
        format!(
            "{} octets; a cookie secret is 16 octets (32 hex digits)",
            o.len()
        )
    })
}

fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf.
    let r = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if r != 0 {
        return String::new();
    }
    let end = buf.iter().position(|&c| c == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// Reads and validates a config file.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let src = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError(format!("{src}: {e}")))?;
    parse(&text, &src)
}

/// Parses and validates config text; `src` names it in errors.
pub fn parse(text: &str, src: &str) -> Result<Config, ConfigError> {
    let raw: RawFile = toml::from_str(text).map_err(|e| {
        let zone = e
            .span()
            .and_then(|s| zone_at(text, s.start))
            .map(|z| format!(" zone \"{z}\":"))
            .unwrap_or_default();
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
        let at = line.map(|l| format!("{l}:")).unwrap_or_default();
        ConfigError(format!("{src}:{at}{zone} {}", e.message()))
    })?;
    validate(raw, src)
}

/// The `name` of the `[[zone]]` table enclosing byte `pos`, if any.
fn zone_at(text: &str, pos: usize) -> Option<String> {
    let before = &text[..pos.min(text.len())];
    let start = before.rfind("[[zone]]")?;
    if before[start..]
        .lines()
        .skip(1)
        .any(|l| l.trim_start().starts_with('['))
    {
        return None;
    }
    text[start..]
        .lines()
        .skip(1)
        .take_while(|l| !l.trim_start().starts_with('['))
        .find_map(|l| {
            let (k, v) = l.split_once('=')?;
            (k.trim() == "name").then(|| v.trim().trim_matches('"').to_string())
        })
}

fn socket_addr(s: &str, default_port: Option<u16>) -> Result<SocketAddr, String> {
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    match (default_port, s.parse::<IpAddr>()) {
        (Some(p), Ok(ip)) => Ok(SocketAddr::new(ip, p)),
        _ => Err(format!(
            "bad address \"{s}\" (expected IP:PORT, IPv6 as [ADDR]:PORT)"
        )),
    }
}

/// A primary as written: `ADDR[:PORT]` (port 53) or `tls://ADDR[:PORT]`
/// (port 853).
fn primary(s: &str) -> Result<Primary, String> {
    match s.strip_prefix("tls://") {
        Some(rest) => socket_addr(rest, Some(853)).map(|addr| Primary { addr, tls: true }),
        None => socket_addr(s, Some(53)).map(|addr| Primary { addr, tls: false }),
    }
}

fn cidr(s: &str) -> Result<IpNet, String> {
    s.parse::<IpNet>()
        .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("bad address or prefix \"{s}\" (expected e.g. 192.0.2.0/24 or ::1)"))
}

fn validate(raw: RawFile, src: &str) -> Result<Config, ConfigError> {
    let err =
        |ctx: &str, key: &str, msg: String| ConfigError(format!("{src}: {ctx}key `{key}`: {msg}"));
    let s = raw.server;
    let listen = s
        .listen
        .unwrap_or_else(|| vec![DEFAULT_LISTEN.to_string()])
        .iter()
        .map(|a| socket_addr(a, None))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|m| err("[server] ", "listen", m))?;
    if listen.is_empty() {
        return Err(err(
            "[server] ",
            "listen",
            "at least one address is needed".into(),
        ));
    }
    let control = s
        .control
        .as_deref()
        .map(|a| socket_addr(a, None))
        .transpose()
        .map_err(|m| err("[server] ", "control", m))?;
    if s.control_token
        .as_deref()
        .is_some_and(|t| t.trim().is_empty())
    {
        return Err(err(
            "[server] ",
            "control_token",
            "is empty: set a secret, or remove the key (loopback only)".into(),
        ));
    }
    if let Some(c) = control
        && !c.ip().is_loopback()
        && s.control_token.is_none()
    {
        return Err(err(
            "[server] ",
            "control_token",
            format!("control API on non-loopback {c} needs a control_token"),
        ));
    }
    let udp_payload = s.udp_payload.unwrap_or(DEFAULT_UDP_PAYLOAD);
    if !(512..=4096).contains(&udp_payload) {
        return Err(err(
            "[server] ",
            "udp_payload",
            format!("{udp_payload} is outside 512..=4096"),
        ));
    }
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let udp_workers = s.udp_workers.unwrap_or(cores);
    if udp_workers == 0 || udp_workers > 256 {
        return Err(err(
            "[server] ",
            "udp_workers",
            format!("{udp_workers} is outside 1..=256"),
        ));
    }
    let zone_watch = match s.zone_watch.as_deref().unwrap_or("auto") {
        "auto" => ZoneWatch::Auto,
        "poll" => ZoneWatch::Poll,
        "off" => ZoneWatch::Off,
        other => {
            return Err(err(
                "[server] ",
                "zone_watch",
                format!("\"{other}\" is not one of auto, poll, off"),
            ));
        }
    };
    let tls_listen = s
        .tls_listen
        .unwrap_or_default()
        .iter()
        .map(|a| socket_addr(a, Some(853)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|m| err("[server] ", "tls_listen", m))?;
    let tls = match (s.tls_certificate, s.tls_key) {
        (Some(certificate), Some(key)) => Some(ServerTls {
            certificate,
            key,
            client_ca: s.tls_client_ca,
        }),
        (None, None) if tls_listen.is_empty() => None,
        (None, _) => {
            return Err(err(
                "[server] ",
                "tls_certificate",
                "tls_listen and tls_key need a certificate (PEM file)".into(),
            ));
        }
        (Some(_), None) => {
            return Err(err(
                "[server] ",
                "tls_key",
                "tls_certificate needs its private key (PEM file)".into(),
            ));
        }
    };
    if let Some(t) = &tls {
        // Each file checked on its own, so the error names the key at fault.
        crate::tls::certificates(&t.certificate)
            .map_err(|e| err("[server] ", "tls_certificate", e.to_string()))?;
        crate::tls::private_key(&t.key).map_err(|e| err("[server] ", "tls_key", e.to_string()))?;
        if let Some(ca) = &t.client_ca {
            crate::tls::certificates(ca)
                .map_err(|e| err("[server] ", "tls_client_ca", e.to_string()))?;
        }
        t.build()
            .map_err(|e| err("[server] ", "tls_key", e.to_string()))?;
    }
    let server = Server {
        listen,
        control,
        control_token: s.control_token,
        data_dir: s.data_dir.unwrap_or_else(|| PathBuf::from("var/tandem")),
        udp_workers,
        udp_payload,
        tcp_idle_timeout: Duration::from_secs(s.tcp_idle_timeout.unwrap_or(30).max(1)),
        tcp_max_connections: s.tcp_max_connections.unwrap_or(256).max(1),
        max_transfers_out: s.max_transfers_out.unwrap_or(10).max(1),
        max_transfers_in: s.max_transfers_in.unwrap_or(10).max(1),
        rrl: s
            .rrl_responses_per_second
            .filter(|&r| r > 0)
            .map(|r| RrlConfig {
                responses_per_second: r,
                slip: s.rrl_slip.unwrap_or(2),
            }),
        log_level: s
            .log_level
            .as_deref()
            .map(log_filter)
            .transpose()
            .map_err(|m| err("[server] ", "log_level", m))?,
        zone_watch,
        nsec3_max_iterations: s.nsec3_max_iterations.unwrap_or(150),
        identity: match s.identity {
            Some(i) => i,
            None => hostname(),
        },
        version: s
            .version
            .unwrap_or_else(|| format!("tandem {}", env!("CARGO_PKG_VERSION"))),
        nsid: s
            .nsid
            .as_deref()
            .map(nsid)
            .transpose()
            .map_err(|m| err("[server] ", "nsid", m))?
            .unwrap_or_default(),
        cookie_secret: s
            .cookie_secret
            .as_deref()
            .map(cookie_secret)
            .transpose()
            .map_err(|m| err("[server] ", "cookie_secret", m))?,
        require_server_cookie: s.require_server_cookie.unwrap_or(false),
        transfer_out_timeout: Duration::from_secs(s.transfer_out_timeout.unwrap_or(7200).max(1)),
        tls_listen,
        tls,
    };
    for (key, v) in [("identity", &server.identity), ("version", &server.version)] {
        if v.len() > 255 {
            return Err(err(
                "[server] ",
                key,
                "longer than a TXT string (255 octets)".into(),
            ));
        }
    }

    let mut keys: Vec<Key> = Vec::new();
    for k in raw.key {
        let ctx = format!("key \"{}\": ", k.name);
        let kname = key_name(&k.name).map_err(|m| err(&ctx, "name", m))?;
        if keys.iter().any(|o| o.name == kname) {
            return Err(err(&ctx, "name", "key defined twice".into()));
        }
        let algorithm = match k.algorithm.to_ascii_lowercase().as_str() {
            "hmac-sha256" => Algorithm::HmacSha256,
            "hmac-sha384" => Algorithm::HmacSha384,
            "hmac-sha512" => Algorithm::HmacSha512,
            other => {
                return Err(err(
                    &ctx,
                    "algorithm",
                    format!("\"{other}\" is not one of hmac-sha256, hmac-sha384, hmac-sha512"),
                ));
            }
        };
        let mut secret = Vec::new();
        crate::zone::rdata::parse::base64_decode(k.secret.as_bytes(), &mut secret)
            .map_err(|e| err(&ctx, "secret", format!("not base64: {e}")))?;
        if secret.is_empty() {
            return Err(err(&ctx, "secret", "empty secret".into()));
        }
        keys.push(Key {
            name: kname,
            algorithm,
            secret,
        });
    }

    let mut zones: Vec<ZoneConfig> = Vec::new();
    for z in raw.zone {
        let zc = zone_config(z, src, &server, &keys)?;
        if zones.iter().any(|o| o.apex == zc.apex) {
            return Err(ConfigError(format!(
                "{src}: zone \"{}\": key `name`: zone listed twice",
                zc.name
            )));
        }
        zones.push(zc);
    }
    let mut catalogs = Vec::new();
    for t in raw.catalog {
        let (zc, cat) = catalog_config(t, src, &server, &keys)?;
        if zones.iter().any(|o| o.apex == zc.apex) {
            return Err(ConfigError(format!(
                "{src}: catalog \"{}\": key `name`: also a [[zone]]",
                zc.name
            )));
        }
        zones.push(zc);
        catalogs.push(cat);
    }
    for z in &zones {
        if let Some(c) = &z.catalog
            && !catalogs
                .iter()
                .any(|k| &k.name == c && k.role == CatalogRole::Producer)
        {
            return Err(ConfigError(format!(
                "{src}: zone \"{}\": key `catalog`: no [[catalog]] named \"{c}\" with role = \"producer\"",
                z.name
            )));
        }
    }
    Ok(Config {
        source: src.to_string(),
        server,
        keys,
        zones,
        catalogs,
    })
}

/// A `[[catalog]]` table: the catalog zone's own settings (any key of a
/// `[[zone]]` table) and, for a consumer, what its members get.
fn catalog_config(
    mut t: toml::Table,
    src: &str,
    server: &Server,
    keys: &[Key],
) -> Result<(ZoneConfig, CatalogConfig), ConfigError> {
    let name = t
        .get("name")
        .and_then(|n| n.as_str())
        .unwrap_or("?")
        .to_string();
    let err =
        |key: &str, m: String| ConfigError(format!("{src}: catalog \"{name}\": key `{key}`: {m}"));
    let role = match t.remove("role").as_ref().and_then(|r| r.as_str()) {
        Some("consumer") => CatalogRole::Consumer,
        Some("producer") => CatalogRole::Producer,
        Some(other) => {
            return Err(err(
                "role",
                format!("\"{other}\" is not consumer or producer"),
            ));
        }
        None => return Err(err("role", "missing: consumer or producer".into())),
    };
    if role == CatalogRole::Producer {
        for k in ["defaults", "group", "file", "primaries"] {
            if t.contains_key(k) {
                return Err(err(k, "not a key of a producer's catalog".into()));
            }
        }
        let mut me = to_json_table(t).map_err(|m| err("", m))?;
        me.insert("role".into(), "primary".into());
        let zname = zone_name(&name).map_err(|m| err("name", m))?;
        me.insert(
            "file".into(),
            server
                .data_dir
                .join(format!("{zname}zone"))
                .display()
                .to_string()
                .into(),
        );
        let mut raw: RawZone = serde_json::from_value(serde_json::Value::Object(me))
            .map_err(|e| ConfigError(format!("{src}: catalog \"{name}\": {e}")))?;
        raw.generated = true;
        let zc = zone_config(raw, src, server, keys)
            .map_err(|e| ConfigError(e.0.replacen("zone \"", "catalog \"", 1)))?;
        let cat = CatalogConfig {
            name: zc.name.clone(),
            role,
            defaults: Default::default(),
            groups: Default::default(),
        };
        return Ok((zc, cat));
    }
    let to_json = |key: &str,
                   v: Option<toml::Value>|
     -> Result<serde_json::Map<String, serde_json::Value>, ConfigError> {
        match v.map(serde_json::to_value) {
            None => Ok(serde_json::Map::new()),
            Some(Ok(serde_json::Value::Object(m))) => Ok(m),
            _ => Err(err(key, "expected a table".into())),
        }
    };
    let given_defaults = to_json("defaults", t.remove("defaults"))?;
    let group_tables = to_json("group", t.remove("group"))?;
    // Each member has its own name, role and copy.
    let per_member = ["name", "role", "file"];
    for (table, m) in std::iter::once(("defaults".to_string(), &given_defaults)).chain(
        group_tables
            .iter()
            .filter_map(|(g, v)| Some((format!("group.{g}"), v.as_object()?))),
    ) {
        if let Some(k) = per_member.iter().find(|k| m.contains_key(**k)) {
            return Err(err(
                &format!("{table}.{k}"),
                "set per member, not here".into(),
            ));
        }
    }
    let mut me = to_json_table(t).map_err(|m| err("", m))?;
    me.insert("role".into(), "secondary".into());
    let zc = zone_from_json(&serde_json::Value::Object(me.clone()), src, server, keys)
        .map_err(|e| ConfigError(e.0.replacen("zone \"", "catalog \"", 1)))?;
    // Members come from the catalog's primaries with its key unless the
    // defaults say otherwise.
    let mut defaults = serde_json::Map::new();
    for k in [
        "primaries",
        "transfer_key",
        "tls_ca",
        "tls_name",
        "tls_certificate",
        "tls_key",
    ] {
        if let Some(v) = me.get(k) {
            defaults.insert(k.into(), v.clone());
        }
    }
    defaults.extend(given_defaults);
    let mut cat = CatalogConfig {
        name: zc.name.clone(),
        role,
        defaults,
        groups: Default::default(),
    };
    for (g, v) in group_tables {
        let serde_json::Value::Object(m) = v else {
            return Err(err(&format!("group.{g}"), "expected a table".into()));
        };
        cat.groups.insert(g, m);
    }
    // Check the member settings now, on a made-up member, so a bad key is
    // an error in this file rather than one per member later.
    let probe = "member.invalid.";
    let groups: Vec<Option<String>> = std::iter::once(None)
        .chain(cat.groups.keys().cloned().map(Some))
        .collect();
    for g in groups {
        let v = cat.member_json(probe, g.as_deref());
        zone_from_json(&v, src, server, keys).map_err(|e| {
            let table = match &g {
                Some(g) => format!("[catalog.group.{g}]"),
                None => "[catalog.defaults]".into(),
            };
            ConfigError(e.0.replacen(
                &format!("zone \"{probe}\""),
                &format!("catalog \"{name}\" {table}"),
                1,
            ))
        })?;
    }
    Ok((zc, cat))
}

/// A zone's settings given as JSON (the keys of a `[[zone]]` table), as
/// the control API's `POST /zones` and `zones.json` hold them; `src` names
/// where they came from in errors.
pub fn zone_from_json(
    v: &serde_json::Value,
    src: &str,
    server: &Server,
    keys: &[Key],
) -> Result<ZoneConfig, ConfigError> {
    let raw: RawZone = serde_json::from_value(v.clone()).map_err(|e| {
        let zone = v.get("name").and_then(|n| n.as_str()).unwrap_or("?");
        ConfigError(format!("{src}: zone \"{zone}\": {e}"))
    })?;
    zone_config(raw, src, server, keys)
}

fn to_json_table(t: toml::Table) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    match serde_json::to_value(toml::Value::Table(t)) {
        Ok(serde_json::Value::Object(m)) => Ok(m),
        _ => Err("expected a table".into()),
    }
}

/// One `[[zone]]` table checked against the server settings and keys:
/// from the config file, the control API (`POST /zones`) or a catalog.
fn zone_config(
    z: RawZone,
    src: &str,
    server: &Server,
    keys: &[Key],
) -> Result<ZoneConfig, ConfigError> {
    let err =
        |ctx: &str, key: &str, msg: String| ConfigError(format!("{src}: {ctx}key `{key}`: {msg}"));
    let ctx = format!("zone \"{}\": ", z.name);
    let e = |key: &str, m: String| err(&ctx, key, m);
    let mut apex = name::parse_absolute(&z.name).map_err(|x| e("name", x.to_string()))?;
    name::lowercase(&mut apex);
    let zname = name::to_text(&apex);
    let role = match z.role.as_str() {
        "primary" => Role::Primary,
        "secondary" => Role::Secondary,
        other => {
            return Err(e(
                "role",
                format!("\"{other}\" is not primary or secondary"),
            ));
        }
    };
    let file = match (role, z.file) {
        (Role::Primary, None) => return Err(e("file", "a primary zone needs a file".into())),
        (Role::Primary, Some(f)) => {
            if !f.is_file() && !z.generated {
                return Err(e("file", format!("{}: no such file", f.display())));
            }
            f
        }
        (Role::Secondary, Some(f)) => f,
        // The stem escapes `/`: a zone name (a catalog member's, say) can
        // hold one, and must not name a path outside data_dir.
        (Role::Secondary, None) => server
            .data_dir
            .join(format!("{}zone", crate::fsutil::zone_file_stem(&zname))),
    };
    let addrs = |key: &str, v: &[String]| {
        v.iter()
            .map(|a| socket_addr(a, Some(53)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|m| e(key, m))
    };
    let nets = |key: &str, v: &[String]| {
        v.iter()
            .map(|a| cidr(a))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|m| e(key, m))
    };
    let notify = addrs("notify", &z.notify)?;
    let primaries = z
        .primaries
        .iter()
        .map(|a| primary(a))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|m| e("primaries", m))?;
    match role {
        Role::Secondary if primaries.is_empty() => {
            return Err(e(
                "primaries",
                "a secondary zone needs at least one primary".into(),
            ));
        }
        Role::Primary if !primaries.is_empty() => {
            return Err(e("primaries", "only secondary zones have primaries".into()));
        }
        _ => {}
    }
    let allow_transfer = match &z.allow_transfer {
        Some(v) => nets("allow_transfer", v)?,
        None => notify.iter().map(|a| IpNet::from(a.ip())).collect(),
    };
    let allow_notify = match &z.allow_notify {
        Some(v) => nets("allow_notify", v)?,
        None => primaries.iter().map(|p| IpNet::from(p.addr.ip())).collect(),
    };
    let transfer_key = match &z.transfer_key {
        Some(k) => {
            let wanted = key_name(k).map_err(|m| e("transfer_key", m))?;
            if !keys.iter().any(|key| key.name == wanted) {
                return Err(e("transfer_key", format!("no [[key]] named \"{k}\"")));
            }
            Some(wanted)
        }
        None => None,
    };
    let serial_policy = match z.serial_policy.as_deref().unwrap_or("increment") {
        "keep" => SerialPolicy::Keep,
        "increment" => SerialPolicy::Increment,
        "unixtime" => SerialPolicy::UnixTime,
        "dateserial" => SerialPolicy::DateSerial,
        other => {
            return Err(e(
                "serial_policy",
                format!("\"{other}\" is not one of keep, increment, unixtime, dateserial"),
            ));
        }
    };
    let d = TimerBounds::default();
    let timers = TimerBounds {
        min_refresh: z.min_refresh.unwrap_or(d.min_refresh),
        max_refresh: z.max_refresh.unwrap_or(d.max_refresh),
        min_retry: z.min_retry.unwrap_or(d.min_retry),
        max_retry: z.max_retry.unwrap_or(d.max_retry),
        min_expire: z.min_expire.unwrap_or(d.min_expire),
        max_expire: z.max_expire.unwrap_or(d.max_expire),
    };
    for (lo, hi, klo, khi) in [
        (
            timers.min_refresh,
            timers.max_refresh,
            "min_refresh",
            "max_refresh",
        ),
        (timers.min_retry, timers.max_retry, "min_retry", "max_retry"),
        (
            timers.min_expire,
            timers.max_expire,
            "min_expire",
            "max_expire",
        ),
    ] {
        if lo > hi {
            return Err(e(klo, format!("{lo} is greater than {khi} = {hi}")));
        }
    }
    let transfer_tls = match z.transfer_tls.as_deref().unwrap_or("optional") {
        "optional" => TransferTls::Optional,
        "required" => TransferTls::Required,
        other => {
            return Err(e(
                "transfer_tls",
                format!("\"{other}\" is not optional or required"),
            ));
        }
    };
    if transfer_tls == TransferTls::Required && server.tls_listen.is_empty() {
        return Err(e(
            "transfer_tls",
            "required, but [server] tls_listen is empty: no one could transfer the zone".into(),
        ));
    }
    let transfer_tls = match (&server.tls, transfer_tls) {
        (Some(t), TransferTls::Required) if t.client_ca.is_some() => {
            TransferTls::RequiredWithCertificate
        }
        (_, t) => t,
    };
    let tls = ZoneTls {
        ca: z.tls_ca,
        name: z.tls_name,
        certificate: z.tls_certificate,
        key: z.tls_key,
    };
    if tls.certificate.is_some() != tls.key.is_some() {
        let k = if tls.key.is_none() {
            "tls_key"
        } else {
            "tls_certificate"
        };
        return Err(e(
            k,
            "tls_certificate and tls_key go together (mutual TLS)".into(),
        ));
    }
    if primaries.iter().any(|p| p.tls) {
        for (key, path) in [("tls_ca", &tls.ca), ("tls_certificate", &tls.certificate)] {
            if let Some(p) = path {
                crate::tls::certificates(p).map_err(|x| e(key, x.to_string()))?;
            }
        }
        if let Some(k) = &tls.key {
            crate::tls::private_key(k).map_err(|x| e("tls_key", x.to_string()))?;
        }
        let key = if tls.name.is_some() {
            "tls_name"
        } else {
            "tls_ca"
        };
        tls.connector().map_err(|x| e(key, x.to_string()))?;
    } else if tls != ZoneTls::default() {
        return Err(e(
            "tls_ca",
            "TLS settings for a zone with no tls:// primary".into(),
        ));
    }
    Ok(ZoneConfig {
        name: zname,
        apex,
        role,
        file,
        notify,
        allow_transfer,
        transfer_key,
        serial_policy,
        primaries,
        allow_notify,
        timers,
        journal_max_entries: z.journal_max_entries.unwrap_or(100),
        journal_max_bytes: z.journal_max_bytes.unwrap_or(64 << 20),
        max_transfer_records: z.max_transfer_records.unwrap_or(20_000_000),
        max_transfer_bytes: z.max_transfer_bytes.unwrap_or(2 << 30),
        transfer_timeout: std::time::Duration::from_secs(z.transfer_timeout.unwrap_or(600).max(1)),
        transfer_tls,
        tls,
        follower_checks: FollowerChecks {
            interval: Duration::from_secs(z.follower_check_interval.unwrap_or(60).max(1)),
            behind_after: Duration::from_secs(z.follower_behind_after.unwrap_or(30).max(1)),
        },
        catalog: match &z.catalog {
            Some(c) if role == Role::Primary => Some(zone_name(c).map_err(|m| e("catalog", m))?),
            Some(_) => {
                return Err(e(
                    "catalog",
                    "only primary zones are listed in a produced catalog".into(),
                ));
            }
            None => None,
        },
        catalog_group: z.catalog_group.clone(),
    })
}

/// The embedded default: every `zones/*.zone` under `dir` as a primary zone
/// named after the file, on 127.0.0.1:5353, data in `var/`.
pub fn embedded_default(dir: &Path) -> Result<Config, ConfigError> {
    let zones_dir = dir.join("zones");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&zones_dir)
        .map_err(|e| ConfigError(format!("<embedded default>: {}: {e}", zones_dir.display())))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "zone") && p.is_file())
        .collect();
    files.sort();
    let mut text = format!(
        "[server]\nlisten = [\"{DEFAULT_LISTEN}\"]\ncontrol = \"{DEFAULT_CONTROL}\"\ndata_dir = \"var\"\n"
    );
    for f in files {
        let stem = f
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let rel = Path::new("zones").join(f.file_name().unwrap_or_default());
        text.push_str(&format!(
            "\n[[zone]]\nname = {:?}\nrole = \"primary\"\nfile = {:?}\n",
            stem,
            rel.display().to_string()
        ));
    }
    parse(&text, "<embedded default>")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(t: &str) -> Result<Config, ConfigError> {
        parse(t, "t.toml")
    }

    #[test]
    fn a_zone_name_cannot_put_its_copy_outside_data_dir() {
        let cfg = p("[server]\ndata_dir = \"/srv/var\"\n").unwrap();
        // One label `/etc/tandem/x` (a catalog could list such a member).
        let v = serde_json::json!({"name": "\\/etc\\/tandem\\/x.", "role": "secondary", "primaries": ["192.0.2.1"]});
        let zc = zone_from_json(&v, "test", &cfg.server, &cfg.keys).unwrap();
        assert!(zc.file.starts_with("/srv/var"), "{}", zc.file.display());
        assert_eq!(zc.file.parent(), Some(std::path::Path::new("/srv/var")));
    }

    #[test]
    fn transfers_in_default_to_bind_s_ten_and_are_at_least_one() {
        assert_eq!(p("").unwrap().server.max_transfers_in, 10);
        let cfg = p("[server]\nmax_transfers_in = 0\n").unwrap();
        assert_eq!(cfg.server.max_transfers_in, 1);
        let cfg = p("[server]\nmax_transfers_in = 64\n").unwrap();
        assert_eq!(cfg.server.max_transfers_in, 64);
    }

    #[test]
    fn names_the_key_and_zone() {
        let e = p("[server]\nlisten = [\"nope\"]\n").unwrap_err().0;
        assert!(
            e.contains("t.toml") && e.contains("listen") && e.contains("nope"),
            "{e}"
        );
        let e = p(
            "[[zone]]\nname = \"a.\"\nrole = \"secondary\"\nprimaries = [\"1.2.3.4\"]\nbogus = 1\n",
        )
        .unwrap_err()
        .0;
        assert!(
            e.contains("zone \"a.\"") && e.contains("bogus") && e.contains("t.toml:5"),
            "{e}"
        );
        let e = p("[[zone]]\nname = \"a.\"\nrole = \"primary\"\nfile = \"/nonexistent\"\n")
            .unwrap_err()
            .0;
        assert!(e.contains("zone \"a.\"") && e.contains("`file`"), "{e}");
        let z = "[[zone]]\nname = \"a.\"\nrole = \"secondary\"\nprimaries = [\"127.0.0.1\"]\n";
        let e = p(&format!("{z}{z}")).unwrap_err().0;
        assert!(e.contains("twice"), "{e}");
        let e = p(&format!("{z}transfer_key = \"k.\"\n")).unwrap_err().0;
        assert!(e.contains("transfer_key"), "{e}");
        let e = p("[server]\ncontrol = \"0.0.0.0:8053\"\n").unwrap_err().0;
        assert!(e.contains("control_token"), "{e}");
        let e = p("[server]\ncontrol_token = \"\"\n").unwrap_err().0;
        assert!(e.contains("control_token") && e.contains("empty"), "{e}");
        let e = p("[server]\nlog_level = \"verbose\"\n").unwrap_err().0;
        assert!(e.contains("log_level") && e.contains("verbose"), "{e}");
    }

    #[test]
    fn key_names_and_log_levels_are_normalised() {
        let c = p("[[key]]\nname = \"XFR.example\"\nalgorithm = \"hmac-sha256\"\nsecret = \"c2VjcmV0\"\n\
                   [[zone]]\nname = \"a.\"\nrole = \"secondary\"\nprimaries = [\"127.0.0.1\"]\ntransfer_key = \"xfr.EXAMPLE.\"\n")
        .unwrap();
        assert_eq!(c.keys[0].name, "xfr.example.");
        assert_eq!(c.zones[0].transfer_key.as_deref(), Some("xfr.example."));
        assert_eq!(log_filter("warning").unwrap(), "warn");
        assert_eq!(
            log_filter("info,tandem=DEBUG").unwrap(),
            "info,tandem=debug"
        );
        assert!(log_filter("warnings").is_err());
        assert!(log_filter("tandem=loud").is_err());
    }

    #[test]
    fn secondary_defaults() {
        let c = p("[[zone]]\nname = \"Example.NET\"\nrole = \"secondary\"\nprimaries = [\"127.0.0.1:5353\", \"::1\"]\n").unwrap();
        let z = &c.zones[0];
        assert_eq!(z.name, "example.net.");
        assert_eq!(z.primaries[1].addr, "[::1]:53".parse().unwrap());
        assert!(!z.primaries[1].tls);
        assert_eq!(z.allow_notify.len(), 2);
        assert_eq!(z.file, PathBuf::from("var/tandem/example.net.zone"));
    }

    #[test]
    fn tls_primaries_default_to_853_and_need_readable_files() {
        let c = p(
            "[[zone]]\nname = \"a.\"\nrole = \"secondary\"\nprimaries = [\"tls://127.0.0.1\", \"tls://[::1]:8853\"]\ntls_name = \"primary.test\"\n",
        );
        // No tls_ca: the system's CAs, which a bare test machine may lack.
        if let Ok(c) = c {
            let z = &c.zones[0];
            assert_eq!(z.primaries[0].to_string(), "tls://127.0.0.1:853");
            assert_eq!(z.primaries[1].to_string(), "tls://[::1]:8853");
        }
        let e = p("[[zone]]\nname = \"a.\"\nrole = \"secondary\"\nprimaries = [\"tls://127.0.0.1\"]\ntls_ca = \"/nonexistent/ca.pem\"\n")
            .unwrap_err()
            .0;
        assert!(
            e.contains("tls_ca") && e.contains("/nonexistent/ca.pem"),
            "{e}"
        );
        let e = p("[server]\ntls_listen = [\"127.0.0.1:853\"]\n")
            .unwrap_err()
            .0;
        assert!(e.contains("tls_certificate"), "{e}");
        let e = p("[server]\ntls_listen = [\"127.0.0.1:853\"]\ntls_certificate = \"/nonexistent/c.pem\"\ntls_key = \"/nonexistent/k.pem\"\n")
            .unwrap_err()
            .0;
        assert!(
            e.contains("key `tls_certificate`") && e.contains("/nonexistent/c.pem"),
            "{e}"
        );
        let e = p("[[zone]]\nname = \"a.\"\nrole = \"secondary\"\nprimaries = [\"127.0.0.1\"]\ntransfer_tls = \"yes\"\n")
            .unwrap_err()
            .0;
        assert!(e.contains("transfer_tls"), "{e}");
    }
}
