//! Shared test harness: starts the real `tandem` binary on free loopback
//! ports and talks DNS to it over real sockets. Decoding uses hickory-proto,
//! an implementation independent of tandem's own encoder.
#![allow(dead_code)]

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::time::{Duration, Instant};

pub const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");

/// A port free for both UDP and TCP on 127.0.0.1 at the moment of asking.
pub fn free_port() -> u16 {
    loop {
        let u = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
        let port = u.local_addr().expect("addr").port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Makes the child die with the thread that starts it (the test's), so a
/// test binary that panics or exits never leaves a server holding ports.
pub fn dies_with_test(cmd: &mut Command) -> &mut Command {
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        })
    }
}

/// Polls `f` until it returns `Some`, or panics after `timeout`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub struct Tandem {
    pub child: Child,
    pub addr: SocketAddr,
    /// The working directory (config, log, `var/`); kept for restarts.
    pub dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    pub log: PathBuf,
}

impl Tandem {
    /// Starts `tandem serve` with `config` (where `{PORT}` becomes the DNS
    /// port and `{DATA}` the test data folder) in a fresh directory, and
    /// waits until `ready_zone` answers its SOA.
    pub fn start(config: &str, ready_zone: &str) -> Tandem {
        for _ in 0..5 {
            let tmp = tempfile::tempdir().expect("tempdir");
            let dir = tmp.path().to_path_buf();
            let mut t = Tandem::spawn_in(&dir, free_port(), config);
            t._tmp = Some(tmp);
            if t.wait_ready(ready_zone) {
                return t;
            }
            // Lost a race for the port (or failed): try another.
        }
        panic!("tandem did not start");
    }

    /// Starts tandem in `dir` on `port` (a restart keeps both) without
    /// waiting for any zone.
    pub fn spawn_in(dir: &Path, port: u16, config: &str) -> Tandem {
        let cfg = config
            .replace("{PORT}", &port.to_string())
            .replace("{DATA}", DATA);
        std::fs::write(dir.join("tandem.toml"), cfg).expect("write config");
        let log = dir.join("tandem.log");
        let logf = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("log file");
        let child = dies_with_test(&mut Command::new(env!("CARGO_BIN_EXE_tandem")))
            .args(["serve", "--config", "tandem.toml"])
            .current_dir(dir)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(logf)
            .spawn()
            .expect("spawn tandem");
        Tandem {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            dir: dir.to_path_buf(),
            _tmp: None,
            log,
        }
    }

    /// Like `spawn_in`, then waits until `zone` answers authoritatively.
    pub fn start_in(dir: &Path, port: u16, config: &str, zone: &str) -> Tandem {
        let mut t = Tandem::spawn_in(dir, port, config);
        assert!(
            t.wait_ready(zone),
            "tandem in {} did not serve {zone}:\n{}",
            dir.display(),
            t.log_text()
        );
        t
    }

    /// SIGKILL, no cleanup: what a crash looks like.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn wait_ready(&mut self, zone: &str) -> bool {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                eprintln!("tandem exited: {}", self.log_text());
                return false;
            }
            if let Some(m) = udp_query_timeout(
                self.addr,
                &query(zone, RecordType::SOA),
                Duration::from_millis(200),
            ) && m.metadata.authoritative
                && !m.answers.is_empty()
            {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn udp(&self, msg: &Message) -> Message {
        udp_query(self.addr, msg)
    }

    pub fn tcp(&self, msg: &Message) -> Message {
        tcp_query(self.addr, msg)
    }

    pub fn q(&self, name: &str, t: RecordType) -> Message {
        self.udp(&query(name, t))
    }

    pub fn path(&self, p: &str) -> PathBuf {
        self.dir.join(p)
    }
}

impl Drop for Tandem {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn query(name: &str, t: RecordType) -> Message {
    let mut m = Message::new(rand_id(), MessageType::Query, OpCode::Query);
    m.add_query(Query::query(Name::from_str(name).expect("name"), t));
    m
}

pub fn with_edns(mut m: Message, payload: u16, dnssec_ok: bool) -> Message {
    let mut e = Edns::new();
    e.set_max_payload(payload);
    e.set_dnssec_ok(dnssec_ok);
    m.set_edns(e);
    m
}

pub fn rand_id() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0x1234);
    NEXT.fetch_add(7919, Ordering::Relaxed)
}

pub fn udp_raw(addr: SocketAddr, bytes: &[u8], timeout: Duration) -> Option<Vec<u8>> {
    let s = UdpSocket::bind("127.0.0.1:0").ok()?;
    s.set_read_timeout(Some(timeout)).ok()?;
    s.send_to(bytes, addr).ok()?;
    let mut buf = vec![0u8; 65535];
    let n = s.recv(&mut buf).ok()?;
    buf.truncate(n);
    Some(buf)
}

pub fn udp_query_timeout(addr: SocketAddr, msg: &Message, timeout: Duration) -> Option<Message> {
    let bytes = msg.to_vec().ok()?;
    let r = udp_raw(addr, &bytes, timeout)?;
    Message::from_vec(&r).ok()
}

pub fn udp_query(addr: SocketAddr, msg: &Message) -> Message {
    for _ in 0..3 {
        if let Some(m) = udp_query_timeout(addr, msg, Duration::from_secs(2)) {
            assert_eq!(m.metadata.id, msg.metadata.id, "response ID");
            return m;
        }
    }
    panic!("no UDP answer from {addr} to {:?}", msg.queries);
}

pub fn tcp_send(s: &mut TcpStream, bytes: &[u8]) {
    let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(bytes);
    s.write_all(&framed).expect("tcp write");
}

pub fn tcp_recv(s: &mut TcpStream) -> Message {
    let mut len = [0u8; 2];
    s.read_exact(&mut len).expect("tcp read length");
    let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
    s.read_exact(&mut buf).expect("tcp read body");
    Message::from_vec(&buf).expect("parse tcp response")
}

pub fn tcp_query(addr: SocketAddr, msg: &Message) -> Message {
    let mut s = TcpStream::connect(addr).expect("tcp connect");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    tcp_send(&mut s, &msg.to_vec().expect("encode"));
    tcp_recv(&mut s)
}

/// Config serving the shared test zones on {PORT}.
pub fn test_zones_config() -> String {
    let mut c = String::from("[server]\nlisten = [\"127.0.0.1:{PORT}\"]\ndata_dir = \"var\"\n");
    for (name, file) in TEST_ZONES {
        c.push_str(&format!(
            "\n[[zone]]\nname = \"{name}\"\nrole = \"primary\"\nfile = \"{{DATA}}/{file}\"\n"
        ));
    }
    c
}

pub const TEST_ZONES: &[(&str, &str)] = &[
    ("example.test.", "example.test.zone"),
    ("child.example.test.", "child.example.test.zone"),
    ("signed.test.", "signed.test.zone"),
    ("2.0.192.in-addr.arpa.", "2.0.192.in-addr.arpa.zone"),
];

pub fn data(p: &str) -> PathBuf {
    Path::new(DATA).join(p)
}
/// A small deterministic generator (xorshift), so failures reproduce.
pub struct Rng(pub u64);
impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

pub mod peers;

/// Reads one framed DNS message from a TCP stream, raw.
pub fn tcp_recv_raw(s: &mut TcpStream) -> Vec<u8> {
    let mut len = [0u8; 2];
    s.read_exact(&mut len).expect("tcp read length");
    let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
    s.read_exact(&mut buf).expect("tcp read body");
    buf
}

/// Sends a zone-transfer request and reads the whole answer: until the
/// closing SOA (AXFR, or IXFR answered AXFR-style), the third SOA of the
/// current serial (an incremental IXFR), a lone SOA (up to date) or an
/// error. Returns the raw messages.
pub fn transfer_raw(addr: SocketAddr, request: &[u8]) -> Vec<Vec<u8>> {
    let mut s = TcpStream::connect(addr).expect("tcp connect");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    tcp_send(&mut s, request);
    let mut msgs = Vec::new();
    let mut records: Vec<hickory_proto::rr::Record> = Vec::new();
    loop {
        let raw = tcp_recv_raw(&mut s);
        let m = Message::from_vec(&raw).expect("parse transfer message");
        let rcode = m.metadata.response_code;
        records.extend(m.answers.iter().cloned());
        msgs.push(raw);
        if rcode != hickory_proto::op::ResponseCode::NoError || records.is_empty() {
            return msgs;
        }
        let serial_of = |r: &hickory_proto::rr::Record| match &r.data {
            hickory_proto::rr::RData::SOA(s) => Some(s.serial),
            _ => None,
        };
        let Some(current) = serial_of(&records[0]) else {
            return msgs;
        };
        if records.len() == 1 {
            // A lone SOA in the first message: up to date.
            return msgs;
        }
        let incremental = serial_of(&records[1]).is_some_and(|s| s != current);
        let seen = records
            .iter()
            .filter(|r| serial_of(r) == Some(current))
            .count();
        if seen == if incremental { 3 } else { 2 } {
            return msgs;
        }
    }
}

/// Every answer record of a transfer, decoded.
pub fn transfer(
    addr: SocketAddr,
    request: &Message,
) -> (
    hickory_proto::op::ResponseCode,
    Vec<hickory_proto::rr::Record>,
) {
    let msgs = transfer_raw(addr, &request.to_vec().expect("encode"));
    let mut rcode = hickory_proto::op::ResponseCode::NoError;
    let mut out = Vec::new();
    for raw in msgs {
        let m = Message::from_vec(&raw).expect("parse");
        rcode = m.metadata.response_code;
        out.extend(m.answers);
    }
    (rcode, out)
}

/// An IXFR request carrying the client's serial in the authority section.
pub fn ixfr_query(zone: &str, serial: u32) -> Message {
    use hickory_proto::rr::rdata::SOA;
    use hickory_proto::rr::{RData, Record};
    let mut m = query(zone, RecordType::IXFR);
    let name = Name::from_str(zone).expect("name");
    let soa = SOA::new(name.clone(), name.clone(), serial, 0, 0, 0, 0);
    m.add_authority(Record::from_rdata(name, 0, RData::SOA(soa)));
    m
}

pub fn soa_serial(m: &Message) -> Option<u32> {
    m.answers.iter().find_map(|r| match &r.data {
        hickory_proto::rr::RData::SOA(s) => Some(s.serial),
        _ => None,
    })
}

/// Replaces a file by writing a new one and renaming it over, as many
/// editors save.
pub fn write(path: &Path, text: &str) {
    let tmp = path.with_extension("swp");
    std::fs::write(&tmp, text).expect("write");
    std::fs::rename(&tmp, path).expect("rename");
}

/// The serial `addr` serves for `zone`, if it answers authoritatively.
pub fn serial_of(addr: SocketAddr, zone: &str) -> Option<u32> {
    udp_query_timeout(
        addr,
        &query(zone, RecordType::SOA),
        Duration::from_millis(300),
    )
    .filter(|m| m.metadata.authoritative)
    .and_then(|m| soa_serial(&m))
}
