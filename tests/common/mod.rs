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

    /// Starts tandem in a fresh directory without waiting for any zone
    /// (for one that is not expected to serve).
    pub fn spawn(config: &str) -> Tandem {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut t = Tandem::spawn_in(tmp.path(), free_port(), config);
        t._tmp = Some(tmp);
        t
    }

    /// Sends the server signal `sig` (as `kill` spells it: `-HUP`, `-STOP`).
    pub fn signal(&self, sig: &str) {
        let st = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(st.success(), "kill {sig}");
    }

    /// Starts tandem on `port` in a fresh directory (removed with it) and
    /// waits until `zone` answers authoritatively.
    pub fn start_on(port: u16, config: &str, zone: &str) -> Tandem {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut t = Tandem::start_in(tmp.path(), port, config, zone);
        t._tmp = Some(tmp);
        t
    }

    /// Starts tandem in `dir` on `port` (a restart keeps both) without
    /// waiting for any zone.
    pub fn spawn_in(dir: &Path, port: u16, config: &str) -> Tandem {
        Tandem::spawn_env(dir, port, config, &[])
    }

    /// As `spawn_in`, with extra environment variables for the server.
    pub fn spawn_env(dir: &Path, port: u16, config: &str, env: &[(&str, &str)]) -> Tandem {
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
            .envs(env.iter().copied())
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

    /// Starts tandem in a fresh directory with extra environment variables
    /// and waits until `ready_zone` answers its SOA.
    pub fn start_env(config: &str, ready_zone: &str, env: &[(&str, &str)]) -> Tandem {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().to_path_buf();
        let mut t = Tandem::spawn_env(&dir, free_port(), config, env);
        t._tmp = Some(tmp);
        assert!(
            t.wait_ready(ready_zone),
            "tandem did not start:\n{}",
            t.log_text()
        );
        t
    }

    /// Runs the `tandem` CLI in this server's directory: (exit code, stdout, stderr).
    pub fn cli(&self, args: &[&str]) -> (i32, String, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_tandem"))
            .args(args)
            .current_dir(&self.dir)
            .output()
            .expect("run tandem");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Waits until the log, from byte `from` on, holds every one of
    /// `needles`; panics showing that part of the log.
    pub fn wait_log(&self, from: usize, needles: &[&str], timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let log = self.log_text();
            let part = log.get(from..).unwrap_or("");
            if needles.iter().all(|n| part.contains(n)) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no {needles:?} in the log:\n{part}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
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

pub fn tcp_send<W: Write>(s: &mut W, bytes: &[u8]) {
    let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(bytes);
    s.write_all(&framed).expect("tcp write");
}

pub fn tcp_recv<R: Read>(s: &mut R) -> Message {
    Message::from_vec(&tcp_recv_raw(s)).expect("parse tcp response")
}

pub fn tcp_query(addr: SocketAddr, msg: &Message) -> Message {
    let mut s = TcpStream::connect(addr).expect("tcp connect");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    tcp_send(&mut s, &msg.to_vec().expect("encode"));
    tcp_recv(&mut s)
}

/// Config serving the shared test zones on {PORT}.
/// Starts tandem on the test zones and waits until every one of them
/// answers: they load in parallel, so one zone ready says nothing of the rest.
pub fn start_test_zones() -> Tandem {
    let mut t = Tandem::start(&test_zones_config(), TEST_ZONES[0].0);
    for (zone, _) in TEST_ZONES {
        assert!(t.wait_ready(zone), "{zone} not served:\n{}", t.log_text());
    }
    t
}

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

/// Queries `names` (type A) over UDP in a loop on a thread of its own,
/// counting answers that are NOERROR with one record and everything else.
pub struct QueryLoad {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    counts: std::thread::JoinHandle<(usize, usize)>,
}

impl QueryLoad {
    pub fn start(addr: SocketAddr, names: &[&str]) -> QueryLoad {
        use std::sync::atomic::Ordering::Relaxed;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let s = stop.clone();
        let counts = std::thread::spawn(move || {
            let (mut ok, mut failed) = (0, 0);
            while !s.load(Relaxed) {
                for n in &names {
                    match udp_query_timeout(addr, &query(n, RecordType::A), Duration::from_secs(1))
                    {
                        Some(m)
                            if m.metadata.response_code
                                == hickory_proto::op::ResponseCode::NoError
                                && m.answers.len() == 1 =>
                        {
                            ok += 1
                        }
                        _ => failed += 1,
                    }
                }
            }
            (ok, failed)
        });
        QueryLoad { stop, counts }
    }

    /// (right answers, anything else).
    pub fn stop(self) -> (usize, usize) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.counts.join().expect("query load")
    }
}

/// A TCP connection to `addr` with a 4 KiB receive buffer: a reader that
/// stalls the sender as soon as it stops reading.
pub fn slow_reader(addr: SocketAddr) -> TcpStream {
    let sock =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    sock.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    sock.connect(&addr.into()).expect("connect");
    sock.into()
}

/// A small zone: SOA (REFRESH 3600, RETRY 600, EXPIRE 86400, MINIMUM 60),
/// NS ns1 with its address, then `body`.
pub fn zone_text(origin: &str, serial: u32, body: &str) -> String {
    format!(
        "$ORIGIN {origin}\n$TTL 300\n@ SOA ns1 hostmaster {serial} 3600 600 86400 60\n NS ns1\nns1 A 192.0.2.1\n{body}"
    )
}

/// An HMAC-SHA256 TSIG signer for key `name` (fudge 300 s).
pub fn tsig_signer(name: &str, secret: &[u8]) -> hickory_proto::rr::TSigner {
    hickory_proto::rr::TSigner::new(
        secret.to_vec(),
        hickory_proto::rr::rdata::tsig::TsigAlgorithm::HmacSha256,
        hickory_proto::rr::Name::from_ascii(name).expect("key name"),
        300,
    )
    .expect("TSIG signer")
}

/// Seconds since the Unix epoch, for TSIG times.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// How many answers `addr` gives for `name`/`rtype` over UDP.
pub fn answer_count(addr: SocketAddr, name: &str, rtype: RecordType) -> usize {
    udp_query(addr, &query(name, rtype)).answers.len()
}

/// GET a control API path; the JSON body.
pub fn api_get(addr: SocketAddr, path: &str) -> serde_json::Value {
    let (code, body) = tandem::ops::client::request(addr, "GET", path, None).expect("control API");
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).expect("JSON")
}

/// Every sample of the server's /metrics.
pub fn scrape(addr: SocketAddr) -> Vec<prometheus_parse::Sample> {
    let (code, body) =
        tandem::ops::client::request(addr, "GET", "/metrics", None).expect("control API");
    assert_eq!(code, 200);
    let lines = body.lines().map(|l| Ok(l.to_string()));
    prometheus_parse::Scrape::parse(lines)
        .expect("valid Prometheus text")
        .samples
}

/// The samples of metric `name` whose labels match, summed (a histogram
/// counts its largest bucket).
pub fn sample(samples: &[prometheus_parse::Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(v)))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            prometheus_parse::Value::Histogram(ref h) => {
                h.iter().map(|b| b.count).fold(0.0, f64::max)
            }
            _ => 0.0,
        })
        .sum()
}

/// One metric of the server at `addr`, as `sample` sums it.
pub fn metric(addr: SocketAddr, name: &str, labels: &[(&str, &str)]) -> f64 {
    sample(&scrape(addr), name, labels)
}

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
pub mod signing;
pub mod tls;
pub mod unbound;

/// Reads one framed DNS message from a TCP stream, raw.
pub fn tcp_recv_raw<R: Read>(s: &mut R) -> Vec<u8> {
    tcp_read_framed(s).expect("tcp read of a framed message")
}

/// One framed DNS message from a TCP stream, raw; None when the stream
/// ends or fails first (a scripted server's loop stops there).
pub fn tcp_read_framed<R: Read>(s: &mut R) -> Option<Vec<u8>> {
    let mut len = [0u8; 2];
    s.read_exact(&mut len).ok()?;
    let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
    s.read_exact(&mut buf).ok()?;
    Some(buf)
}

/// Sends a zone-transfer request and reads the whole answer: until the
/// closing SOA (AXFR, or IXFR answered AXFR-style), the third SOA of the
/// current serial (an incremental IXFR), a lone SOA (up to date) or an
/// error. Returns the raw messages.
pub fn transfer_raw(addr: SocketAddr, request: &[u8]) -> Vec<Vec<u8>> {
    let mut s = TcpStream::connect(addr).expect("tcp connect");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    transfer_on(&mut s, request)
}

/// As `transfer_raw`, on a connection already open (TCP or TLS).
pub fn transfer_on<S: Read + Write>(s: &mut S, request: &[u8]) -> Vec<Vec<u8>> {
    tcp_send(s, request);
    let mut msgs = Vec::new();
    let mut records: Vec<hickory_proto::rr::Record> = Vec::new();
    loop {
        let raw = tcp_recv_raw(s);
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

/// Waits until `addr` serves `zone` at serial `want`.
pub fn wait_serial(addr: SocketAddr, zone: &str, want: u32, timeout: Duration) {
    wait_for(
        &format!("{addr} serving {zone} at serial {want}"),
        timeout,
        || (serial_of(addr, zone) == Some(want)).then_some(()),
    );
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
