//! Unbound as a validating resolver in front of one server under test
//! (see ../shared/PEERS.md): trust anchors for the test zones, a stub zone
//! for each of them pointing at the server, a log that says why an answer
//! was bogus. One Unbound per server under test: it caches, and a name once
//! found bogus stays bogus.

use super::{dies_with_test, free_port, rand_id, udp_query_timeout};
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::{DNSClass, Name, RecordType};
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::time::{Duration, Instant};

pub struct Unbound {
    child: Child,
    pub addr: SocketAddr,
    pub log: PathBuf,
    conf: PathBuf,
    _dir: tempfile::TempDir,
}

impl Unbound {
    /// Starts Unbound on a free loopback port, validating with
    /// `trust_anchors` (DS or DNSKEY lines) and sending every query for
    /// `zones` (and names below them) to `server`; waits until it answers.
    pub fn start(server: SocketAddr, zones: &[&str], trust_anchors: &[String]) -> Unbound {
        for _ in 0..5 {
            let dir = tempfile::tempdir().expect("tempdir");
            let d = dir.path().display().to_string();
            let port = free_port();
            let mut conf = format!(
                "server:\n  interface: 127.0.0.1\n  port: {port}\n  do-ip6: no\n  do-daemonize: no\n  \
                 username: \"\"\n  chroot: \"\"\n  directory: \"{d}\"\n  pidfile: \"{d}/unbound.pid\"\n  \
                 logfile: \"{d}/unbound.log\"\n  use-syslog: no\n  verbosity: 1\n  log-servfail: yes\n  \
                 num-threads: 1\n  so-reuseport: no\n  do-not-query-localhost: no\n  \
                 module-config: \"validator iterator\"\n  val-log-level: 2\n  aggressive-nsec: no\n  \
                 qname-minimisation: no\n  prefetch: no\n  serve-expired: no\n  \
                 access-control: 127.0.0.0/8 allow\n"
            );
            for ta in trust_anchors {
                conf.push_str(&format!(
                    "  trust-anchor: \"{}\"\n",
                    ta.replace(" IN ", " ")
                ));
            }
            // A local socket needs no certificates.
            conf.push_str(&format!(
                "remote-control:\n  control-enable: yes\n  control-interface: \"{d}/control.sock\"\n"
            ));
            for z in zones {
                conf.push_str(&format!(
                    "stub-zone:\n  name: \"{z}\"\n  stub-addr: {}@{}\n",
                    server.ip(),
                    server.port()
                ));
            }
            let path = dir.path().join("unbound.conf");
            std::fs::write(&path, conf).expect("write unbound.conf");
            let log = dir.path().join("unbound.log");
            let child = dies_with_test(&mut Command::new("unbound"))
                .args(["-d", "-c"])
                .arg(&path)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("unbound is installed");
            let mut u = Unbound {
                child,
                addr: SocketAddr::from(([127, 0, 0, 1], port)),
                log,
                conf: path,
                _dir: dir,
            };
            if u.wait_ready() {
                return u;
            }
            eprintln!("unbound did not start:\n{}", u.log_text());
        }
        panic!("unbound did not start");
    }

    /// Waits (20 s at most) until Unbound answers `id.server CH TXT`, which
    /// it answers itself and which puts nothing in its cache.
    fn wait_ready(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut q = Message::new(rand_id(), MessageType::Query, OpCode::Query);
        let mut question = Query::query(
            Name::from_ascii("id.server.").expect("name"),
            RecordType::TXT,
        );
        question.set_query_class(DNSClass::CH);
        q.add_query(question);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if udp_query_timeout(self.addr, &q, Duration::from_millis(200)).is_some() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Runs `unbound-control` with `args` against this Unbound.
    pub fn control(&self, args: &[&str]) {
        let out = Command::new("unbound-control")
            .arg("-c")
            .arg(&self.conf)
            .args(args)
            .output()
            .expect("unbound-control is installed");
        assert!(
            out.status.success(),
            "unbound-control {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Forgets every answer and key found bogus, so that one bad answer
    /// does not make the next queries below the same name fail too.
    pub fn flush_bogus(&self) {
        self.control(&["flush_bogus"]);
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The log's length now, to read what a later query adds.
    pub fn log_len(&self) -> usize {
        std::fs::metadata(&self.log).map_or(0, |m| m.len() as usize)
    }

    /// The log from byte `from` on.
    pub fn log_since(&self, from: usize) -> String {
        let log = self.log_text();
        log.get(from..).unwrap_or("").to_string()
    }

    /// Asks `name`/`qtype` recursively (RD, DO, AD) over TCP; None if
    /// Unbound did not answer within 20 s.
    pub fn ask(&self, name: &str, qtype: RecordType) -> Option<Message> {
        let mut m = Message::new(rand_id(), MessageType::Query, OpCode::Query);
        m.add_query(Query::query(Name::from_str(name).ok()?, qtype));
        m.metadata.recursion_desired = true;
        m.metadata.authentic_data = true;
        let mut e = Edns::new();
        e.set_max_payload(1232);
        e.set_dnssec_ok(true);
        m.set_edns(e);
        let bytes = m.to_vec().ok()?;
        let mut s = TcpStream::connect(self.addr).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(20))).ok()?;
        let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&bytes);
        s.write_all(&framed).ok()?;
        let buf = super::tcp_read_framed(&mut s)?;
        let r = Message::from_vec(&buf).ok()?;
        (r.metadata.id == m.metadata.id).then_some(r)
    }
}

impl Drop for Unbound {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
