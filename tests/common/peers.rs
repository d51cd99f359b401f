//! Real BIND/Knot/NSD processes as test peers (see ../shared/PEERS.md).

use super::{dies_with_test, free_port, query, udp_query_timeout, wait_for};
use hickory_proto::rr::RecordType;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Nsd {
    child: Child,
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
}

/// Expands a zone file to one record per line with `named-checkzone -D`
/// (NSD reads neither $GENERATE nor our relative $INCLUDE paths).
pub fn expand_zone(origin: &str, file: &Path, out: &Path) {
    let st = Command::new("named-checkzone")
        .args(["-q", "-D", "-o"])
        .arg(out)
        .arg(origin)
        .arg(file)
        .current_dir(file.parent().unwrap_or(Path::new(".")))
        .status()
        .expect("named-checkzone (bind9-utils) is installed");
    assert!(st.success(), "named-checkzone {origin} {}", file.display());
}

impl Nsd {
    /// Starts NSD serving `zones` (origin, file) and waits until the first answers.
    pub fn start(zones: &[(&str, PathBuf)]) -> Nsd {
        for _ in 0..5 {
            let port = free_port();
            let dir = tempfile::tempdir().expect("tempdir");
            let d = dir.path().display().to_string();
            let mut conf = format!(
                "server:\n  ip-address: 127.0.0.1@{port}\n  port: {port}\n  username: \"\"\n  chroot: \"\"\n  database: \"\"\n  \
                 zonelistfile: {d}/zone.list\n  xfrdfile: {d}/xfrd.state\n  pidfile: {d}/nsd.pid\n  logfile: {d}/nsd.log\n  \
                 server-count: 1\n  reuseport: yes\n  rrl-ratelimit: 0\n  rrl-whitelist-ratelimit: 0\n  rrl-size: 1000\n  \
                 minimal-responses: yes\n  verbosity: 1\nremote-control:\n  control-enable: no\n"
            );
            for (origin, file) in zones {
                conf.push_str(&format!(
                    "zone:\n  name: {origin}\n  zonefile: {}\n",
                    file.display()
                ));
            }
            std::fs::write(dir.path().join("nsd.conf"), conf).expect("write nsd.conf");
            let child = dies_with_test(&mut Command::new("nsd"))
                .args(["-d", "-c"])
                .arg(dir.path().join("nsd.conf"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("nsd is installed");
            let mut n = Nsd {
                child,
                addr: SocketAddr::from(([127, 0, 0, 1], port)),
                dir,
            };
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = n.child.try_wait() {
                    break;
                }
                let q = query(zones[0].0, RecordType::SOA);
                if udp_query_timeout(n.addr, &q, Duration::from_millis(200))
                    .is_some_and(|m| !m.answers.is_empty())
                {
                    return n;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = n.child.kill();
        }
        panic!("nsd did not start");
    }
}

impl Drop for Nsd {
    fn drop(&mut self) {
        // NSD forks; SIGTERM to the parent takes the children down with it.
        stop(&mut self.child);
    }
}

/// A BIND 9 or Knot DNS process in the foreground, logging to a file.
pub struct Peer {
    child: Child,
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    pub log: PathBuf,
}

impl Peer {
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn spawn(cmd: &str, args: &[String], dir: tempfile::TempDir, port: u16) -> Peer {
        let log = dir.path().join(format!("{cmd}.log"));
        let child = dies_with_test(&mut Command::new(cmd))
            .args(args)
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .unwrap_or_else(|e| panic!("{cmd} is installed: {e}"));
        Peer {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            dir,
            log,
        }
    }

    /// BIND `named` on `port` as a secondary of `zone` from `primary` (optionally with a TSIG key).
    pub fn bind_secondary(
        port: u16,
        zone: &str,
        primary: SocketAddr,
        key: Option<(&str, &str)>,
    ) -> Peer {
        let (dir, d) = peer_dir();
        let (key_stmt, key_ref) = key_texts(
            key,
            |name, secret| {
                format!("key \"{name}\" {{ algorithm hmac-sha256; secret \"{secret}\"; }};\n")
            },
            |name| format!(" key \"{name}\""),
        );
        let conf = format!(
            "{}{key_stmt}\
             zone \"{zone}\" {{\n  type secondary;\n  primaries {{ {} port {}{key_ref}; }};\n  file \"{d}/secondary.db\";\n}};\n",
            bind_options(&d, port, "  notify no;\n"),
            primary.ip(),
            primary.port()
        );
        Peer::named(dir, port, &conf, true)
    }

    /// Knot `knotd` on `port` as a secondary of `zone` from `primary` (optionally with a TSIG key).
    pub fn knot_secondary(
        port: u16,
        zone: &str,
        primary: SocketAddr,
        key: Option<(&str, &str)>,
    ) -> Peer {
        let (dir, d) = peer_dir();
        let (key_section, key_ref) = key_texts(
            key,
            |name, secret| {
                format!("key:\n  - id: {name}\n    algorithm: hmac-sha256\n    secret: {secret}\n")
            },
            |name| format!("\n    key: {name}"),
        );
        let conf = format!(
            "server:\n  rundir: {d}\n  listen: 127.0.0.1@{port}\nlog:\n  - target: stderr\n    any: info\n\
             database:\n  storage: {d}/db\n{key_section}\
             remote:\n  - id: primary\n    address: {}@{}{key_ref}\n\
             acl:\n  - id: notify_from_primary\n    address: {}{key_ref}\n    action: notify\n\
             template:\n  - id: default\n    storage: {d}\n\
             zone:\n  - domain: {zone}\n    master: primary\n    acl: notify_from_primary\n",
            primary.ip(),
            primary.port(),
            primary.ip()
        );
        std::fs::create_dir_all(dir.path().join("db")).expect("knot db dir");
        std::fs::write(dir.path().join("knot.conf"), conf).expect("knot.conf");
        let conf_path = dir.path().join("knot.conf").display().to_string();
        Peer::spawn("knotd", &["-c".into(), conf_path], dir, port)
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

impl Peer {
    /// SIGHUP: both named and knotd re-read their zone files.
    pub fn hup(&self) {
        let _ = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status();
    }

    /// BIND `named` on `port` as the primary of `zone` from `file`, notifying
    /// `follower` and serving IXFR from file edits.
    pub fn bind_primary(port: u16, zone: &str, file: &Path, follower: SocketAddr) -> Peer {
        Peer::bind_primary_with(port, zone, file, follower, "")
    }

    /// As `bind_primary`, with `options` added to BIND's `options` block.
    pub fn bind_primary_with(
        port: u16,
        zone: &str,
        file: &Path,
        follower: SocketAddr,
        options: &str,
    ) -> Peer {
        let (dir, d) = peer_dir();
        let extra = format!(
            "  notify explicit;\n  also-notify {{ {} port {}; }};\n  notify-delay 0;\n  \
             allow-transfer {{ 127.0.0.1; }};\n  ixfr-from-differences yes;\n{options}",
            follower.ip(),
            follower.port()
        );
        let conf = format!(
            "{}zone \"{zone}\" {{\n  type primary;\n  file \"{}\";\n}};\n",
            bind_options(&d, port, &extra),
            file.display()
        );
        Peer::named(dir, port, &conf, false)
    }

    /// Knot `knotd` on `port` as the primary of `zone` from `file`, with a
    /// TSIG key on transfers and NOTIFY to `follower`.
    pub fn knot_primary(
        port: u16,
        zone: &str,
        file: &Path,
        follower: SocketAddr,
        key: (&str, &str),
    ) -> Peer {
        let (dir, d) = peer_dir();
        let (kname, secret) = key;
        let conf = format!(
            "server:\n  rundir: {d}\n  listen: 127.0.0.1@{port}\nlog:\n  - target: stderr\n    any: info\n\
             database:\n  storage: {d}/db\nkey:\n  - id: {kname}\n    algorithm: hmac-sha256\n    secret: {secret}\n\
             remote:\n  - id: follower\n    address: {}@{}\n    key: {kname}\n\
             acl:\n  - id: xfr\n    address: 127.0.0.1\n    key: {kname}\n    action: transfer\n\
             template:\n  - id: default\n    storage: {d}\n    zonefile-load: difference\n    journal-content: changes\n    zonefile-sync: -1\n\
             zone:\n  - domain: {zone}\n    file: {}\n    notify: follower\n    acl: xfr\n",
            follower.ip(),
            follower.port(),
            file.display()
        );
        std::fs::create_dir_all(dir.path().join("db")).expect("knot db dir");
        std::fs::write(dir.path().join("knot.conf"), conf).expect("knot.conf");
        let conf_path = dir.path().join("knot.conf").display().to_string();
        Peer::spawn("knotd", &["-c".into(), conf_path], dir, port)
    }
}

impl Peer {
    /// Knot serving `zones` (origin, file) from their files, nothing else;
    /// waits until each answers its SOA.
    pub fn knot_serving(zones: &[(&str, PathBuf)]) -> Peer {
        let port = free_port();
        let (dir, d) = peer_dir();
        let mut conf = format!(
            "server:\n  rundir: {d}\n  listen: 127.0.0.1@{port}\nlog:\n  - target: stderr\n    any: info\n\
             database:\n  storage: {d}/db\ntemplate:\n  - id: default\n    storage: {d}\n    zonefile-sync: -1\n\
             zone:\n"
        );
        for (origin, file) in zones {
            conf.push_str(&format!(
                "  - domain: {origin}\n    file: {}\n",
                file.display()
            ));
        }
        std::fs::create_dir_all(dir.path().join("db")).expect("knot db dir");
        std::fs::write(dir.path().join("knot.conf"), conf).expect("knot.conf");
        let conf_path = dir.path().join("knot.conf").display().to_string();
        let peer = Peer::spawn("knotd", &["-c".into(), conf_path], dir, port);
        for (origin, _) in zones {
            wait_for(
                &format!("knot to serve {origin}"),
                Duration::from_secs(20),
                || {
                    udp_query_timeout(
                        peer.addr,
                        &query(origin, RecordType::SOA),
                        Duration::from_millis(200),
                    )
                    .filter(|m| !m.answers.is_empty())
                },
            );
        }
        peer
    }
}

/// A Knot configuration: rundir, listener, log to stderr and database in
/// `d`, then `body` (remotes, acls, templates, zones).
pub fn knot_conf(d: &str, port: u16, body: &str) -> String {
    format!(
        "server:\n  rundir: {d}\n  listen: 127.0.0.1@{port}\nlog:\n  - target: stderr\n    any: info\n\
         database:\n  storage: {d}/db\n{body}"
    )
}

impl Peer {
    /// `knotd` on `port` with `body` after the shared sections
    /// (`knot_conf`); `{D}` in `body` becomes its directory. Rewrite the
    /// configuration with `knot_reconfigure`.
    pub fn knot_with(port: u16, body: &str) -> Peer {
        let (dir, d) = peer_dir();
        std::fs::create_dir_all(dir.path().join("db")).expect("knot db dir");
        let path = dir.path().join("knot.conf");
        std::fs::write(&path, knot_conf(&d, port, &body.replace("{D}", &d))).expect("knot.conf");
        Peer::spawn(
            "knotd",
            &["-c".into(), path.display().to_string()],
            dir,
            port,
        )
    }

    /// Writes a new `body` for a Knot started by `knot_with` and has it
    /// re-read (SIGHUP: configuration and changed zone files).
    pub fn knot_reconfigure(&self, body: &str) {
        let d = self.dir.path().display().to_string();
        let conf = knot_conf(&d, self.addr.port(), &body.replace("{D}", &d));
        std::fs::write(self.dir.path().join("knot.conf"), conf).expect("knot.conf");
        self.hup();
    }

    /// `knotc` on this Knot's control socket; its standard output.
    pub fn knotc(&self, args: &[&str]) -> String {
        let out = Command::new("knotc")
            .arg("-s")
            .arg(self.dir.path().join("knot.sock"))
            .args(args)
            .output()
            .expect("knotc is installed");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// BIND's options that every test peer shares, listening on `port`.
pub fn bind_options(d: &str, port: u16, extra: &str) -> String {
    format!(
        "options {{\n  directory \"{d}\";\n  pid-file \"{d}/named.pid\";\n  session-keyfile \"{d}/session.key\";\n  \
         managed-keys-directory \"{d}\";\n  listen-on port {port} {{ 127.0.0.1; }};\n  listen-on-v6 {{ none; }};\n  \
         recursion no;\n{extra}}};\ncontrols {{ }};\n"
    )
}

impl Peer {
    /// BIND `named` on `port` as a secondary of `zone` from the TLS primary
    /// at `primary`, verifying its certificate against `ca` and `name`
    /// (BIND's XoT: strict verification, ALPN "dot", no SOA query first).
    pub fn bind_tls_secondary(
        port: u16,
        zone: &str,
        primary: SocketAddr,
        ca: &Path,
        name: &str,
    ) -> Peer {
        let (dir, d) = peer_dir();
        let conf = format!(
            "{}tls primary-tls {{\n  ca-file \"{}\";\n  remote-hostname \"{name}\";\n}};\n\
             zone \"{zone}\" {{\n  type secondary;\n  primaries {{ {} port {} tls primary-tls; }};\n  file \"{d}/secondary.db\";\n}};\n",
            bind_options(&d, port, "  notify no;\n"),
            ca.display(),
            primary.ip(),
            primary.port()
        );
        Peer::named(dir, port, &conf, true)
    }

    /// BIND `named` on `port` (and TLS on `tls_port` with `cert`/`key`) as
    /// the primary of `zone` from `file`, transfers over TLS only,
    /// notifying `follower` and serving IXFR from file edits.
    pub fn bind_tls_primary(
        port: u16,
        tls_port: u16,
        zone: &str,
        file: &Path,
        (cert, key): (&Path, &Path),
        follower: SocketAddr,
    ) -> Peer {
        let (dir, d) = peer_dir();
        let extra = format!(
            "  listen-on port {tls_port} tls local-tls {{ 127.0.0.1; }};\n  notify explicit;\n  \
             also-notify {{ {} port {}; }};\n  notify-delay 0;\n  allow-transfer port {tls_port} transport tls {{ 127.0.0.1; }};\n  \
             ixfr-from-differences yes;\n",
            follower.ip(),
            follower.port()
        );
        let conf = format!(
            "tls local-tls {{\n  cert-file \"{}\";\n  key-file \"{}\";\n}};\n{}\
             zone \"{zone}\" {{\n  type primary;\n  file \"{}\";\n}};\n",
            cert.display(),
            key.display(),
            bind_options(&d, port, &extra),
            file.display()
        );
        Peer::named(dir, port, &conf, false)
    }

    /// `named -g` on `conf` (written to DIR/named.conf); with `debug`, at
    /// debug level 3, where named logs whether a transfer came incrementally.
    pub fn named(dir: tempfile::TempDir, port: u16, conf: &str, debug: bool) -> Peer {
        let path = dir.path().join("named.conf");
        std::fs::write(&path, conf).expect("named.conf");
        let mut args: Vec<String> = vec!["-g".into()];
        if debug {
            args.extend(["-d".into(), "3".into()]);
        }
        args.extend(["-c".into(), path.display().to_string()]);
        Peer::spawn("named", &args, dir, port)
    }
}

/// A peer's working directory and its path as text for config files.
pub fn peer_dir() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().display().to_string();
    (dir, d)
}

/// A TSIG key's definition and the reference to it, in a peer's config
/// syntax; both empty without a key.
fn key_texts(
    key: Option<(&str, &str)>,
    definition: impl Fn(&str, &str) -> String,
    reference: impl Fn(&str) -> String,
) -> (String, String) {
    match key {
        Some((name, secret)) => (definition(name, secret), reference(name)),
        None => (String::new(), String::new()),
    }
}

/// SIGTERM, then SIGKILL if the daemon is still there after 5 s.
fn stop(child: &mut Child) {
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}
