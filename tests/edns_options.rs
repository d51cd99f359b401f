//! The EDNS options peers expect, answered only when the client sent an OPT
//! record: NSID (RFC 5001), EXPIRE (RFC 7314) and DNS cookies (RFC 7873,
//! server cookies per RFC 9018), over UDP, TCP and TLS; the cookie secret
//! and NSID swapped by a config reload; a valid server cookie past RRL; a
//! chain of tandem secondaries expiring with its first copy. Real processes
//! on loopback; answers decoded by hickory-proto.

mod common;

use common::tls::Pki;
use common::*;
use hickory_proto::op::{Edns, Message, ResponseCode};
use hickory_proto::rr::RecordType;
use hickory_proto::rr::rdata::opt::EdnsOption;
use std::net::{SocketAddr, UdpSocket};
use std::process::Command;
use std::time::{Duration, Instant};

const ZONE: &str = "opts.test.";
/// The SOA EXPIRE of every zone here (`zone_text`'s SOA, a day).
const SOA_EXPIRE: u32 = 86_400;
const NSID: u16 = 3;
const EXPIRE: u16 = 9;
const COOKIE: u16 = 10;
const PADDING: u16 = 12;
const CLIENT_COOKIE: &[u8] = b"\x01\x02\x03\x04\x05\x06\x07\x08";

fn zone_file(dir: &std::path::Path) -> String {
    let file = dir.join("opts.zone");
    std::fs::write(
        &file,
        zone_text(ZONE, 1, "www A 192.0.2.1\nmail A 192.0.2.2\n"),
    )
    .unwrap();
    file.display().to_string()
}

/// A primary of `ZONE` with `server` lines added to `[server]`.
fn primary(server: &str) -> (Tandem, tempfile::TempDir) {
    primary_with(server, "")
}

/// As `primary`, with `zone` lines added to the zone's table.
fn primary_with(server: &str, zone: &str) -> (Tandem, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let file = zone_file(dir.path());
    let t = Tandem::start(
        &format!(
            "[server]\nlisten = [\"127.0.0.1:{{PORT}}\"]\ndata_dir = \"var\"\n{server}\n\
             [[zone]]\nname = \"{ZONE}\"\nrole = \"primary\"\nfile = \"{file}\"\nallow_transfer = [\"127.0.0.0/8\"]\n{zone}"
        ),
        ZONE,
    );
    (t, dir)
}

/// A query whose OPT carries `options` (code, data), in that order.
fn ask(name: &str, t: RecordType, options: &[(u16, &[u8])]) -> Message {
    let mut m = query(name, t);
    let mut e = Edns::new();
    e.set_max_payload(1232);
    for (code, data) in options {
        e.options_mut()
            .insert(EdnsOption::Unknown(*code, data.to_vec()));
    }
    m.set_edns(e);
    m
}

/// The options of a response's OPT, in order (`None`: no OPT at all).
fn options(m: &Message) -> Option<Vec<(u16, Vec<u8>)>> {
    m.edns.as_ref().map(|e| {
        e.options()
            .as_ref()
            .iter()
            .map(|(code, o)| {
                (
                    u16::from(*code),
                    Vec::<u8>::try_from(o).expect("option data"),
                )
            })
            .collect()
    })
}

fn option(m: &Message, code: u16) -> Option<Vec<u8>> {
    options(m)?
        .into_iter()
        .find(|(c, _)| *c == code)
        .map(|(_, d)| d)
}

fn expire_of(m: &Message) -> Option<u32> {
    option(m, EXPIRE).map(|d| u32::from_be_bytes(d.try_into().expect("4 octets")))
}

/// The cookie (client + server) a response carries.
fn cookie_of(m: &Message) -> Vec<u8> {
    option(m, COOKIE).expect("a COOKIE option")
}

/// `m` sent over UDP from `source` (another loopback address).
fn udp_from(source: &str, to: SocketAddr, m: &Message) -> Message {
    let s = UdpSocket::bind((source, 0)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    s.send_to(&m.to_vec().unwrap(), to).unwrap();
    let mut buf = vec![0u8; 65535];
    let n = s.recv(&mut buf).expect("an answer");
    Message::from_vec(&buf[..n]).unwrap()
}

#[test]
fn nsid_expire_and_cookies_are_answered_over_udp_and_tcp_only_when_asked() {
    let (t, _d) =
        primary("nsid = \"ns1-opts\"\ncookie_secret = \"000102030405060708090a0b0c0d0e0f\"");
    // No OPT in, no OPT out; an OPT with no options gets an OPT with none.
    let m = t.udp(&query(ZONE, RecordType::SOA));
    assert!(m.edns.is_none());
    let m = t.udp(&ask(ZONE, RecordType::SOA, &[]));
    assert_eq!(options(&m), Some(vec![]));
    let all: &[(u16, &[u8])] = &[(NSID, b""), (EXPIRE, b""), (COOKIE, CLIENT_COOKIE)];
    for tcp in [false, true] {
        let send = |m: &Message| if tcp { t.tcp(m) } else { t.udp(m) };
        let m = send(&ask(ZONE, RecordType::SOA, all));
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert_eq!(m.answers.len(), 1);
        assert_eq!(option(&m, NSID).as_deref(), Some(&b"ns1-opts"[..]));
        // A primary's EXPIRE is its SOA EXPIRE.
        assert_eq!(expire_of(&m), Some(SOA_EXPIRE), "tcp {tcp}");
        let cookie = cookie_of(&m);
        assert_eq!(cookie.len(), 24, "client cookie + a 16-octet server cookie");
        assert_eq!(&cookie[..8], CLIENT_COOKIE);
        assert_eq!(cookie[8], 1, "RFC 9018 version 1");
        assert_eq!(&cookie[9..12], &[0, 0, 0], "reserved");
        let ts = u32::from_be_bytes(cookie[12..16].try_into().unwrap()) as u64;
        assert!(ts.abs_diff(unix_now()) <= 2, "timestamp {ts}");
        // The full cookie back: valid, so echoed as it was (fresh).
        let again = send(&ask(ZONE, RecordType::SOA, &[(COOKIE, &cookie)]));
        assert_eq!(cookie_of(&again), cookie);
        assert!(option(&again, NSID).is_none() && expire_of(&again).is_none());
        // Altered: not ours, so answered normally with a new server cookie.
        let mut bad = cookie.clone();
        bad[23] ^= 0xff;
        let m = send(&ask(ZONE, RecordType::SOA, &[(COOKIE, &bad)]));
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert_eq!(m.answers.len(), 1);
        let fresh = cookie_of(&m);
        assert_eq!(&fresh[..8], CLIENT_COOKIE);
        assert_ne!(fresh[16..], bad[16..]);
        // A server cookie of another length (here 8 octets) is not ours either.
        let m = send(&ask(ZONE, RecordType::A, &[(COOKIE, &cookie[..16])]));
        assert_eq!(cookie_of(&m).len(), 24);
        // EXPIRE is for SOA (and transfers) only.
        let m = send(&ask("www.opts.test.", RecordType::A, all));
        assert!(expire_of(&m).is_none());
        assert!(option(&m, NSID).is_some());
        // A COOKIE option of a length RFC 7873 does not allow: FORMERR.
        for len in [0usize, 7, 9, 15, 41] {
            let m = send(&ask(ZONE, RecordType::SOA, &[(COOKIE, &[7u8; 41][..len])]));
            assert_eq!(
                m.metadata.response_code,
                ResponseCode::FormErr,
                "{len} octets"
            );
        }
    }
    // RFC 7873 §5.4: no question, only a cookie: NOERROR and a server
    // cookie (as BIND answers it); no question and no cookie: FORMERR.
    for tcp in [false, true] {
        let mut q = ask(ZONE, RecordType::SOA, &[(COOKIE, CLIENT_COOKIE)]);
        q.queries.clear();
        let m = if tcp { t.tcp(&q) } else { t.udp(&q) };
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert!(m.queries.is_empty() && m.answers.is_empty());
        assert_eq!(&cookie_of(&m)[..8], CLIENT_COOKIE);
        q.set_edns(Edns::new());
        let m = if tcp { t.tcp(&q) } else { t.udp(&q) };
        assert_eq!(m.metadata.response_code, ResponseCode::FormErr);
    }
    // The server cookie is bound to the client's address.
    let cookie = cookie_of(&t.udp(&ask(ZONE, RecordType::SOA, &[(COOKIE, CLIENT_COOKIE)])));
    let from_elsewhere = udp_from(
        "127.0.0.2",
        t.addr,
        &ask(ZONE, RecordType::SOA, &[(COOKIE, &cookie)]),
    );
    assert_ne!(cookie_of(&from_elsewhere), cookie);
    let same = udp_from(
        "127.0.0.1",
        t.addr,
        &ask(ZONE, RecordType::SOA, &[(COOKIE, &cookie)]),
    );
    assert_eq!(cookie_of(&same), cookie);
    // No NSID configured: none sent.
    let (plain, _d2) = primary("");
    let m = plain.udp(&ask(ZONE, RecordType::SOA, &[(NSID, b"")]));
    assert_eq!(options(&m), Some(vec![]));
}

#[test]
fn over_tls_the_options_come_before_the_padding() {
    let pki = Pki::new();
    let tls_port = free_port();
    let (_t, _d) = primary(&format!(
        "nsid = \"ns1-opts\"\n{}",
        pki.server_lines(tls_port, false)
    ));
    let addr = SocketAddr::from(([127, 0, 0, 1], tls_port));
    let mut s = pki.connect(addr, &[b"dot"], false).unwrap();
    let q = ask(
        ZONE,
        RecordType::SOA,
        &[
            (NSID, b""),
            (EXPIRE, b""),
            (COOKIE, CLIENT_COOKIE),
            (PADDING, &[0; 8]),
        ],
    );
    tcp_send(&mut s, &q.to_vec().unwrap());
    let raw = tcp_recv_raw(&mut s);
    assert_eq!(
        raw.len() % 468,
        0,
        "padded to a block: {} octets",
        raw.len()
    );
    let m = Message::from_vec(&raw).unwrap();
    let codes: Vec<u16> = options(&m).unwrap().iter().map(|(c, _)| *c).collect();
    assert_eq!(codes.len(), 4, "{codes:?}");
    assert_eq!(codes.last(), Some(&PADDING), "padding last: {codes:?}");
    assert_eq!(expire_of(&m), Some(SOA_EXPIRE));
    let cookie = cookie_of(&m);
    // The server cookie over TLS, then again: still valid.
    tcp_send(
        &mut s,
        &ask(ZONE, RecordType::SOA, &[(COOKIE, &cookie)])
            .to_vec()
            .unwrap(),
    );
    let again = Message::from_vec(&tcp_recv_raw(&mut s)).unwrap();
    assert_eq!(cookie_of(&again), cookie);
}

/// The config of the reload test, `server` lines in `[server]`.
fn reload_config(control: u16, file: &str, server: &str) -> String {
    format!(
        "[server]\nlisten = [\"127.0.0.1:{{PORT}}\"]\ndata_dir = \"var\"\ncontrol = \"127.0.0.1:{control}\"\n{server}\n\
         [[zone]]\nname = \"{ZONE}\"\nrole = \"primary\"\nfile = \"{file}\"\n"
    )
}

#[test]
fn a_reload_swaps_the_nsid_and_rotates_the_cookie_secret_keeping_the_previous_one() {
    let dir = tempfile::tempdir().unwrap();
    let file = zone_file(dir.path());
    let control = free_port();
    let secret_a = "cookie_secret = \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"";
    let secret_b = "cookie_secret = \"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\"";
    let secret_c = "cookie_secret = \"cccccccccccccccccccccccccccccccc\"";
    let t = Tandem::start(
        &reload_config(control, &file, &format!("nsid = \"one\"\n{secret_a}")),
        ZONE,
    );
    let reload = |server: &str| {
        let cfg =
            reload_config(control, &file, server).replace("{PORT}", &t.addr.port().to_string());
        std::fs::write(t.path("tandem.toml"), cfg).unwrap();
        t.cli(&["reload", "--control", &format!("127.0.0.1:{control}")])
    };
    let nsid = || option(&t.udp(&ask(ZONE, RecordType::SOA, &[(NSID, b"")])), NSID);
    let judge = |cookie: &[u8]| cookie_of(&t.udp(&ask(ZONE, RecordType::SOA, &[(COOKIE, cookie)])));
    assert_eq!(nsid().as_deref(), Some(&b"one"[..]));
    let cookie = judge(CLIENT_COOKIE);
    assert_eq!(judge(&cookie), cookie, "valid under secret A");

    // New NSID (in hex) and secret B: A's cookies still pass.
    let (code, out, err) = reload(&format!("nsid = \"hex:74776f\"\n{secret_b}"));
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(nsid().as_deref(), Some(&b"two"[..]));
    assert_eq!(judge(&cookie), cookie, "A's cookie after the rotation to B");
    let cookie_b = judge(CLIENT_COOKIE);
    assert_ne!(cookie_b, cookie, "new cookies are made with B");
    assert_eq!(judge(&cookie_b), cookie_b);

    // A bad value: the reload fails naming the key, nothing changes.
    let bad_values = [
        format!("nsid = \"hex:7\"\n{secret_b}"),
        format!("nsid = \"hex:zz\"\n{secret_b}"),
        "nsid = \"two\"\ncookie_secret = \"abcd\"".to_string(),
    ];
    for (bad, key) in bad_values.iter().zip(["nsid", "nsid", "cookie_secret"]) {
        let (code, out, err) = reload(bad);
        assert_ne!(code, 0, "{bad}: {out}");
        assert!(format!("{out}{err}").contains(key), "{bad}: {out}{err}");
        assert_eq!(nsid().as_deref(), Some(&b"two"[..]));
        assert_eq!(judge(&cookie_b), cookie_b, "B still in use");
    }

    // Then C: B's cookies still pass, A's no longer do.
    let (code, out, err) = reload(&format!("nsid = \"two\"\n{secret_c}"));
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(judge(&cookie_b), cookie_b);
    assert_ne!(judge(&cookie), cookie, "A's cookie two rotations later");

    // Without `nsid`, none is sent.
    let (code, out, err) = reload(secret_c);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(nsid(), None);

    // At start, a bad value is an error that names the key.
    for bad in [
        "nsid = \"hex:\"",
        "cookie_secret = \"00112233\"",
        "cookie_secret = \"not hex\"",
    ] {
        let mut s = Tandem::spawn(&reload_config(free_port(), &file, bad));
        let status = wait_for(
            "tandem to refuse the config",
            Duration::from_secs(20),
            || s.child.try_wait().unwrap(),
        );
        assert!(!status.success());
        let key = bad.split(' ').next().unwrap();
        assert!(s.log_text().contains(key), "{bad}: {}", s.log_text());
        s.kill9();
    }
}

/// Sends `n` copies of `m` from one UDP socket, then counts the answers
/// that come within half a second of the last.
fn burst(to: SocketAddr, m: &Message, n: usize) -> usize {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    let bytes = m.to_vec().unwrap();
    for _ in 0..n {
        s.send_to(&bytes, to).unwrap();
    }
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut buf = [0u8; 4096];
    let mut got = 0;
    while let Ok(len) = s.recv(&mut buf) {
        if Message::from_vec(&buf[..len]).is_ok_and(|m| !m.answers.is_empty()) {
            got += 1;
        }
    }
    got
}

#[test]
fn a_valid_server_cookie_passes_rate_limiting() {
    let (t, _d) = primary("rrl_responses_per_second = 1\nrrl_slip = 0");
    // The server cookie, asked over TCP (not rate limited).
    let cookie = cookie_of(&t.tcp(&ask(ZONE, RecordType::SOA, &[(COOKIE, CLIENT_COOKIE)])));
    let plain = ask("www.opts.test.", RecordType::A, &[]);
    let client_only = ask("www.opts.test.", RecordType::A, &[(COOKIE, CLIENT_COOKIE)]);
    let with_cookie = ask("www.opts.test.", RecordType::A, &[(COOKIE, &cookie)]);
    let started = Instant::now();
    let limited = burst(t.addr, &plain, 30);
    let limited_client = burst(t.addr, &client_only, 30);
    let passed = burst(t.addr, &with_cookie, 30);
    let limited_after = burst(t.addr, &plain, 30);
    // One answer per second (plus the bucket's first token) at most.
    let allowed = 2 + started.elapsed().as_secs() as usize;
    assert!(limited <= allowed, "{limited} answered without a cookie");
    assert!(
        limited_client <= allowed,
        "{limited_client} answered with a client cookie only"
    );
    assert!(
        limited_after <= allowed,
        "{limited_after} answered without a cookie afterwards"
    );
    assert_eq!(
        passed, 30,
        "every query with a valid server cookie answered"
    );
}

#[test]
fn require_server_cookie_answers_badcookie_over_udp_as_bind_does() {
    let (t, _d) = primary("require_server_cookie = true");
    // A client cookie alone over UDP: BADCOOKIE (extended rcode 23), no
    // answer, and the server cookie to come back with.
    let m = t.udp(&ask(ZONE, RecordType::SOA, &[(COOKIE, CLIENT_COOKIE)]));
    assert_eq!(m.metadata.response_code, ResponseCode::BADCOOKIE);
    assert!(m.answers.is_empty());
    assert!(!m.metadata.authoritative);
    let cookie = cookie_of(&m);
    assert_eq!(&cookie[..8], CLIENT_COOKIE);
    let m = t.udp(&ask(ZONE, RecordType::SOA, &[(COOKIE, &cookie)]));
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(m.answers.len(), 1);
    // An invalid server cookie: BADCOOKIE with a fresh one.
    let mut bad = cookie.clone();
    bad[20] ^= 1;
    let m = t.udp(&ask(ZONE, RecordType::SOA, &[(COOKIE, &bad)]));
    assert_eq!(m.metadata.response_code, ResponseCode::BADCOOKIE);
    assert_eq!(cookie_of(&m).len(), 24);
    // Over TCP the address is proven: answered.
    let m = t.tcp(&ask(ZONE, RecordType::SOA, &[(COOKIE, CLIENT_COOKIE)]));
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    // Without any cookie (or without EDNS): answered, as BIND does.
    assert_eq!(t.udp(&query(ZONE, RecordType::SOA)).answers.len(), 1);
    assert_eq!(t.udp(&ask(ZONE, RecordType::SOA, &[])).answers.len(), 1);
}

/// The first message of an AXFR of `ZONE` from `addr`, asked with EXPIRE.
fn axfr_first(addr: SocketAddr) -> Message {
    let q = ask(ZONE, RecordType::AXFR, &[(EXPIRE, b"")]);
    let msgs = transfer_raw(addr, &q.to_vec().unwrap());
    Message::from_vec(&msgs[0]).unwrap()
}

fn soa_expire(addr: SocketAddr) -> Option<u32> {
    expire_of(&udp_query(
        addr,
        &ask(ZONE, RecordType::SOA, &[(EXPIRE, b"")]),
    ))
}

/// Seconds from now to the zone's `expires_at` in a server's status.
fn status_expires_in(control: u16) -> i64 {
    let st = api_get(SocketAddr::from(([127, 0, 0, 1], control)), "/status");
    let z = st["zones"]
        .as_array()
        .unwrap()
        .iter()
        .find(|z| z["name"] == ZONE)
        .unwrap()
        .clone();
    let at = z["expires_at"].as_str().expect("expires_at");
    let t =
        time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339).unwrap();
    t.unix_timestamp() - unix_now() as i64
}

#[test]
fn a_chain_of_secondaries_expires_with_the_copy_it_came_from() {
    let (middle_port, leaf_port) = (free_port(), free_port());
    let (p, pdir) = primary_with("", &format!("notify = [\"127.0.0.1:{middle_port}\"]\n"));
    let (middle_ctl, leaf_ctl) = (free_port(), free_port());
    // The middle clamps EXPIRE to 10 minutes (its SOA says a day).
    let middle = Tandem::start_on(
        middle_port,
        &format!(
            "[server]\nlisten = [\"127.0.0.1:{{PORT}}\"]\ndata_dir = \"var\"\ncontrol = \"127.0.0.1:{middle_ctl}\"\n\
             [[zone]]\nname = \"{ZONE}\"\nrole = \"secondary\"\nprimaries = [\"{}\"]\n\
             allow_transfer = [\"127.0.0.0/8\"]\nnotify = [\"127.0.0.1:{leaf_port}\"]\n\
             min_refresh = 1\nmax_refresh = 300\nmin_expire = 60\nmax_expire = 600\n",
            p.addr
        ),
        ZONE,
    );
    // The leaf keeps the default clamps: alone it would keep a day.
    let leaf = Tandem::start_on(
        leaf_port,
        &format!(
            "[server]\nlisten = [\"127.0.0.1:{{PORT}}\"]\ndata_dir = \"var\"\ncontrol = \"127.0.0.1:{leaf_ctl}\"\n\
             [[zone]]\nname = \"{ZONE}\"\nrole = \"secondary\"\nprimaries = [\"{}\"]\n",
            middle.addr
        ),
        ZONE,
    );
    // The primary says its SOA EXPIRE, by query and in a transfer.
    assert_eq!(soa_expire(p.addr), Some(SOA_EXPIRE));
    assert_eq!(expire_of(&axfr_first(p.addr)), Some(SOA_EXPIRE));
    // The middle, the time its copy has left (10 minutes at most).
    let m = soa_expire(middle.addr).expect("middle EXPIRE");
    assert!((550..=600).contains(&m), "middle {m}");
    let from_axfr = expire_of(&axfr_first(middle.addr)).expect("EXPIRE in the AXFR");
    assert!((550..=600).contains(&from_axfr), "middle AXFR {from_axfr}");
    // The leaf took the middle's time, not its own SOA's day: in its
    // answers, in its status.
    let l = soa_expire(leaf.addr).expect("leaf EXPIRE");
    assert!(l <= m && l >= 500, "leaf {l}, middle {m}");
    let status = wait_for(
        "the leaf's status to show its expiry",
        Duration::from_secs(10),
        || {
            let s = status_expires_in(leaf_ctl);
            (s < 1000).then_some(s)
        },
    );
    assert!(
        (500..=600).contains(&status),
        "leaf status expires in {status}s"
    );
    // A refresh that finds the leaf up to date (SOA query with EXPIRE)
    // keeps the bound.
    let (code, out, err) = leaf.cli(&[
        "refresh",
        ZONE,
        "--control",
        &format!("127.0.0.1:{leaf_ctl}"),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("up to date"), "{out}");
    let l2 = soa_expire(leaf.addr).expect("leaf EXPIRE");
    assert!((500..=600).contains(&l2), "leaf after refresh {l2}");
    // The middle's NOTIFY after a change brings a transfer: bounded too.
    std::fs::write(
        pdir.path().join("opts.zone"),
        zone_text(ZONE, 2, "www A 192.0.2.9\n"),
    )
    .unwrap();
    wait_serial(leaf.addr, ZONE, 2, Duration::from_secs(20));
    let l3 = soa_expire(leaf.addr).expect("leaf EXPIRE");
    assert!((500..=600).contains(&l3), "leaf after IXFR {l3}");
}

// ---- with BIND's and Knot's own clients --------------------------------

fn run(cmd: &str, args: &[String]) -> String {
    let out = Command::new(cmd).args(args).output().expect(cmd);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn dig(addr: SocketAddr, extra: &[&str]) -> String {
    let mut args = vec![
        format!("@{}", addr.ip()),
        "-p".into(),
        addr.port().to_string(),
        "+norec".into(),
        "+time=2".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    run("dig", &args)
}

/// The hex after `; COOKIE: ` in dig's output, and whether dig said "good".
fn dig_cookie(out: &str) -> (String, bool) {
    let line = out
        .lines()
        .find(|l| l.starts_with("; COOKIE: "))
        .unwrap_or_else(|| panic!("no COOKIE in:\n{out}"));
    let mut words = line["; COOKIE: ".len()..].split_whitespace();
    let hex = words.next().unwrap().to_string();
    (hex, line.contains("(good)"))
}

#[test]
#[ignore = "needs bind9-dnsutils/knot-dnsutils"]
fn dig_and_kdig_see_the_cookie_echoed_and_accepted() {
    let (t, _d) = primary("nsid = \"ns1-opts\"");
    for tcp in [false, true] {
        let tr = if tcp { "+tcp" } else { "+notcp" };
        let out = dig(t.addr, &[tr, "+cookie", "+nsid", ZONE, "SOA"]);
        assert!(out.contains("status: NOERROR"), "{out}");
        assert!(out.contains("(\"ns1-opts\")"), "{out}");
        let (cookie, good) = dig_cookie(&out);
        assert!(good, "{out}");
        assert_eq!(cookie.len(), 48, "{out}");
        // Sent back whole: accepted, echoed unchanged (fresh).
        let out = dig(t.addr, &[tr, &format!("+cookie={cookie}"), ZONE, "SOA"]);
        assert!(out.contains("status: NOERROR"), "{out}");
        assert_eq!(dig_cookie(&out), (cookie.clone(), true), "{out}");
    }
    // kdig prints the server cookie too.
    let kdig = |extra: &[&str]| {
        let mut args = vec![
            format!("@{}", t.addr.ip()),
            "-p".into(),
            t.addr.port().to_string(),
            "+norec".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        run("kdig", &args)
    };
    let out = kdig(&["+cookie", "+nsid", ZONE, "SOA"]);
    assert!(out.contains("status: NOERROR"), "{out}");
    let line = out
        .lines()
        .find(|l| l.starts_with(";; COOKIE: "))
        .unwrap_or_else(|| panic!("{out}"));
    let cookie = line[";; COOKIE: ".len()..].trim().to_string();
    assert_eq!(cookie.len(), 48, "{out}");
    assert!(out.contains("\"ns1-opts\""), "{out}");
    let out = kdig(&[&format!("+cookie={cookie}"), ZONE, "SOA"]);
    assert!(out.contains("status: NOERROR"), "{out}");
    assert!(
        out.to_uppercase().contains(&cookie.to_uppercase()),
        "the same cookie back:\n{out}"
    );
    // A malformed cookie: FORMERR.
    let out = dig(t.addr, &["+cookie=0102", ZONE, "SOA"]);
    assert!(out.contains("status: FORMERR"), "{out}");
}

#[test]
#[ignore = "needs bind9-dnsutils/knot-dnsutils"]
fn dig_expire_against_a_primary_and_a_secondary() {
    let (p, _d) = primary("");
    let s = Tandem::start(
        &format!(
            "[server]\nlisten = [\"127.0.0.1:{{PORT}}\"]\ndata_dir = \"var\"\n\
             [[zone]]\nname = \"{ZONE}\"\nrole = \"secondary\"\nprimaries = [\"{}\"]\n\
             min_refresh = 1\nmax_refresh = 300\nmin_expire = 60\nmax_expire = 900\n",
            p.addr
        ),
        ZONE,
    );
    let expire = |addr| {
        let out = dig(addr, &["+expire", ZONE, "SOA"]);
        let line = out
            .lines()
            .find(|l| l.starts_with("; EXPIRE: "))
            .unwrap_or_else(|| panic!("no EXPIRE:\n{out}"))
            .to_string();
        line["; EXPIRE: ".len()..]
            .split_whitespace()
            .next()
            .unwrap()
            .parse::<u32>()
            .unwrap()
    };
    assert_eq!(expire(p.addr), SOA_EXPIRE);
    let left = expire(s.addr);
    assert!((850..=900).contains(&left), "secondary: {left}");
    // Not for other types.
    let out = dig(s.addr, &["+expire", "www.opts.test.", "A"]);
    assert!(!out.contains("; EXPIRE:"), "{out}");
}

/// What a cookie query got: rcode, answers, the cookie's length, and
/// whether the server cookie sent was echoed unchanged.
fn cookie_outcome(m: &Message, sent: &[u8]) -> (ResponseCode, usize, usize, bool) {
    let c = option(m, COOKIE).unwrap_or_default();
    (
        m.metadata.response_code,
        m.answers.len(),
        c.len(),
        sent.len() == 24 && c == sent,
    )
}

#[test]
#[ignore = "needs bind9"]
fn cookies_as_bind_answers_them_and_a_shared_secret_validates_across_both() {
    let secret = "000102030405060708090a0b0c0d0e0f";
    let (t, d) = primary(&format!("cookie_secret = \"{secret}\""));
    let bind = common::peers::Peer::bind_primary_with(
        free_port(),
        ZONE,
        &d.path().join("opts.zone"),
        SocketAddr::from(([127, 0, 0, 1], free_port())),
        &format!("  cookie-secret \"{secret}\";\n  cookie-algorithm siphash24;\n"),
    );
    wait_for("BIND to serve the zone", Duration::from_secs(20), || {
        udp_query_timeout(
            bind.addr,
            &query(ZONE, RecordType::SOA),
            Duration::from_millis(200),
        )
        .filter(|m| m.metadata.authoritative)
    });
    // A server cookie BIND made is valid here (RFC 9018: one algorithm,
    // one secret): echoed unchanged a second later, where a cookie that
    // is not valid would be remade with the new time.
    let from_bind = cookie_of(&udp_query(
        bind.addr,
        &ask(ZONE, RecordType::SOA, &[(COOKIE, CLIENT_COOKIE)]),
    ));
    let made = u32::from_be_bytes(from_bind[12..16].try_into().unwrap()) as u64;
    wait_for("the next second", Duration::from_secs(3), || {
        (unix_now() > made).then_some(())
    });
    let here = t.udp(&ask(ZONE, RecordType::SOA, &[(COOKIE, &from_bind)]));
    assert_eq!(cookie_of(&here), from_bind, "BIND's cookie accepted");
    // Each kind of cookie gets what BIND gives it (BIND remakes even a
    // valid cookie every time; tandem echoes one younger than 30 minutes).
    let mut bogus = from_bind.clone();
    bogus[20] ^= 0x55;
    let cases: [(&str, Vec<u8>); 6] = [
        ("client cookie alone", CLIENT_COOKIE.to_vec()),
        ("BIND's server cookie", from_bind.clone()),
        ("an altered server cookie", bogus),
        ("an 8-octet server cookie", from_bind[..16].to_vec()),
        ("7 octets", vec![1; 7]),
        ("41 octets", vec![1; 41]),
    ];
    for ((what, c), no_question) in cases.iter().flat_map(|c| [(c, false), (c, true)]) {
        let mut q = ask(ZONE, RecordType::SOA, &[(COOKIE, c)]);
        if no_question {
            q.queries.clear();
        }
        let (b, ours) = (udp_query(bind.addr, &q), t.udp(&q));
        let (rb, ro) = (cookie_outcome(&b, c), cookie_outcome(&ours, c));
        assert_eq!(
            (rb.0, rb.1, rb.2),
            (ro.0, ro.1, ro.2),
            "{what} (no question: {no_question}): BIND {b:?}\ntandem {ours:?}"
        );
    }
}

/// A primary from before EDNS (a few dozen lines, raw sockets): FORMERR to
/// any request with an OPT record; else the SOA (UDP) or the whole zone
/// (TCP, one message). Returns its address.
fn pre_edns_primary() -> SocketAddr {
    use hickory_proto::op::{MessageType, OpCode};
    use hickory_proto::rr::rdata::{A, NS, SOA};
    use hickory_proto::rr::{Name, RData, Record};
    use std::io::Write;
    use std::str::FromStr;
    let (udp, tcp) = loop {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        if let Ok(tcp) = std::net::TcpListener::bind(udp.local_addr().unwrap()) {
            break (udp, tcp);
        }
    };
    let addr = udp.local_addr().unwrap();
    fn answer(req: &Message) -> Message {
        let n = |s: &str| Name::from_str(s).unwrap();
        let mut m = Message::new(req.metadata.id, MessageType::Response, OpCode::Query);
        for q in &req.queries {
            m.add_query(q.clone());
        }
        if req.edns.is_some() {
            m.metadata.response_code = ResponseCode::FormErr;
            return m;
        }
        m.metadata.authoritative = true;
        let soa = Record::from_rdata(
            n(ZONE),
            3600,
            RData::SOA(SOA::new(
                n("ns1.opts.test."),
                n("h.opts.test."),
                5,
                7200,
                3600,
                86400,
                300,
            )),
        );
        match req.queries.first().map(|q| q.query_type()) {
            Some(RecordType::SOA) => {
                m.add_answer(soa);
            }
            Some(RecordType::AXFR) => {
                m.add_answer(soa.clone());
                m.add_answer(Record::from_rdata(
                    n(ZONE),
                    3600,
                    RData::NS(NS(n("ns1.opts.test."))),
                ));
                m.add_answer(Record::from_rdata(
                    n("ns1.opts.test."),
                    3600,
                    RData::A(A::new(192, 0, 2, 53)),
                ));
                m.add_answer(Record::from_rdata(
                    n("www.opts.test."),
                    3600,
                    RData::A(A::new(192, 0, 2, 5)),
                ));
                m.add_answer(soa);
            }
            _ => m.metadata.response_code = ResponseCode::Refused,
        }
        m
    }
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok((len, from)) = udp.recv_from(&mut buf) {
            if let Ok(req) = Message::from_vec(&buf[..len]) {
                let _ = udp.send_to(&answer(&req).to_vec().unwrap(), from);
            }
        }
    });
    std::thread::spawn(move || {
        for mut s in tcp.incoming().flatten() {
            std::thread::spawn(move || {
                while let Some(req) = tcp_read_framed(&mut s) {
                    let Ok(req) = Message::from_vec(&req) else {
                        return;
                    };
                    let out = answer(&req).to_vec().unwrap();
                    let mut framed = (out.len() as u16).to_be_bytes().to_vec();
                    framed.extend_from_slice(&out);
                    if s.write_all(&framed).is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

#[test]
fn a_primary_that_answers_formerr_to_edns_is_asked_again_without() {
    let primary = pre_edns_primary();
    let t = Tandem::spawn(&format!(
        "[server]\nlisten = [\"127.0.0.1:{{PORT}}\"]\ndata_dir = \"var\"\n\
         [[zone]]\nname = \"{ZONE}\"\nrole = \"secondary\"\nprimaries = [\"{primary}\"]\n"
    ));
    let deadline = Instant::now() + Duration::from_secs(20);
    while serial_of(t.addr, ZONE) != Some(5) {
        assert!(Instant::now() < deadline, "never served:\n{}", t.log_text());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(answer_count(t.addr, "www.opts.test.", RecordType::A), 1);
    assert_eq!(serial_of(t.addr, ZONE), Some(5));
    let log = t.log_text();
    assert!(
        log.contains("FORMERR to an SOA query with EDNS; asking again without"),
        "{log}"
    );
    // Its expiry is the SOA's own (no EXPIRE came).
    let e = soa_expire(t.addr).expect("EXPIRE");
    assert!((86_300..=86_400).contains(&e), "{e}");
}
