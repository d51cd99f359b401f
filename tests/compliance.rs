//! Protocol compliance as ISC's EDNS compliance tester sees it: `genreport`
//! (gitlab.isc.org/isc-projects/DNS-Compliance-Testing) run against tandem
//! reports every test `ok`, on an unsigned and a signed zone, as it does for
//! BIND 9.18. Every fix it led to also has a plain test here, so it holds
//! where genreport cannot be had.

mod common;

use common::*;
use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The Z bit of the header's second flag octet (hickory-proto drops it).
const Z: u8 = 0x40;

/// A header-only request (a question when `question`) with the flag
/// octets `flags` and opcode `op`.
fn raw(op: u8, flags: u16, question: bool) -> Vec<u8> {
    let f = flags | (u16::from(op) << 11);
    let mut q = vec![0x4a, 0x17, (f >> 8) as u8, f as u8, 0, 0, 0, 0, 0, 0, 0, 0];
    if question {
        q[5] = 1;
        q.extend_from_slice(b"\x07example\x04test\x00\x00\x06\x00\x01");
    }
    q
}

fn ask(t: &Tandem, req: &[u8]) -> (Vec<u8>, Message) {
    let r = udp_raw(t.addr, req, Duration::from_secs(2)).expect("reply");
    let m = Message::from_vec(&r).expect("decode reply");
    assert_eq!(m.metadata.id, 0x4a17);
    assert_eq!(m.metadata.message_type, MessageType::Response);
    (r, m)
}

/// genreport's "opcodeflg": opcode 15 with AA, TC, RD, RA, Z, AD and CD
/// all set. BIND 9.18 answers NOTIMP keeping none of them; RD and CD are
/// defined for QUERY only (RFC 1035 §4.1.1, RFC 4035 §3.2.2), and the
/// others are the server's to set.
#[test]
fn an_unknown_opcode_with_every_flag_gets_notimp_echoing_none() {
    let t = start_test_zones();
    for question in [false, true] {
        let (r, m) = ask(&t, &raw(15, 0x07f0, question));
        let h = &m.metadata;
        assert_eq!(h.op_code, OpCode::Unknown(15));
        assert_eq!(h.response_code, ResponseCode::NotImp);
        let set = [
            ("AA", h.authoritative),
            ("TC", h.truncation),
            ("RD", h.recursion_desired),
            ("RA", h.recursion_available),
            ("AD", h.authentic_data),
            ("CD", h.checking_disabled),
            ("Z", r[3] & Z != 0),
        ];
        let echoed: Vec<_> = set.iter().filter(|(_, on)| *on).map(|(f, _)| f).collect();
        assert!(echoed.is_empty(), "flags echoed: {echoed:?}");
    }
}

/// RD and CD are echoed to a QUERY, even one answered FORMERR (as BIND),
/// and to no other opcode: STATUS and the unassigned ones get NOTIMP
/// without them, NOTIFY its answer without them (BIND 9.18 alike).
#[test]
fn rd_and_cd_are_echoed_to_query_only() {
    let t = start_test_zones();
    let rd_cd = 0x0110;
    // QUERY with no question: FORMERR, RD and CD kept.
    let (_, m) = ask(&t, &raw(0, rd_cd, false));
    assert_eq!(m.metadata.response_code, ResponseCode::FormErr);
    assert!(m.metadata.recursion_desired && m.metadata.checking_disabled);
    // A QUERY answered: RD and CD kept.
    let (_, m) = ask(&t, &raw(0, rd_cd, true));
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.metadata.recursion_desired && m.metadata.checking_disabled);
    // IQUERY, STATUS, opcode 3, UPDATE, DSO: NOTIMP, neither kept.
    for op in [1u8, 2, 3, 5, 6] {
        let (_, m) = ask(&t, &raw(op, rd_cd, op == 5));
        assert_eq!(m.metadata.op_code, OpCode::from_u8(op));
        assert_eq!(
            m.metadata.response_code,
            ResponseCode::NotImp,
            "opcode {op}"
        );
        assert!(
            !m.metadata.recursion_desired && !m.metadata.checking_disabled,
            "opcode {op}: RD or CD echoed"
        );
    }
    // NOTIFY (with and without its question): neither kept.
    for question in [false, true] {
        let (_, m) = ask(&t, &raw(4, rd_cd, question));
        assert_eq!(m.metadata.op_code, OpCode::Notify);
        assert!(
            !m.metadata.recursion_desired && !m.metadata.checking_disabled,
            "NOTIFY: RD or CD echoed"
        );
    }
}

/// The genreport binary: `$GENREPORT`, else compiled from `$GENREPORT_SRC`
/// (a DNS-Compliance-Testing checkout) into the target directory. Its one
/// source file needs only a C compiler, libc's resolver and OpenSSL's
/// headers (Debian: libssl-dev); its autotools setup only finds those, so
/// an empty config.h does here what `configure` would on Linux.
fn genreport() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("GENREPORT") {
        return Some(PathBuf::from(p));
    }
    let src = PathBuf::from(std::env::var_os("GENREPORT_SRC")?).join("genreport.c");
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("genreport");
    let bin = dir.join("genreport");
    if !bin.exists() {
        std::fs::create_dir_all(&dir).expect("genreport build dir");
        std::fs::write(dir.join("config.h"), "").expect("config.h");
        let out = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
            .args(["-O1", "-w", "-I"])
            .arg(&dir)
            .arg("-o")
            .arg(&bin)
            .arg(&src)
            .args(["-lresolv", "-lcrypto"])
            .output()
            .expect("run cc");
        assert!(
            out.status.success(),
            "building genreport from {} failed:\n{}",
            src.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Some(bin)
}

/// Runs `genreport` with every test group (type tests, then FULL, which
/// includes EDNS, and COMMON) on `zones` served at `t`, and returns its
/// report lines.
fn run_genreport(bin: &Path, t: &Tandem, zones: &[&str]) -> Vec<String> {
    let mut child = dies_with_test(&mut Command::new(bin))
        .args(["-P", &t.addr.port().to_string(), "-t", "-f", "-c", "-o"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start genreport");
    let input: String = zones
        .iter()
        .map(|z| format!("{z} ns1.{z} {}\n", t.addr.ip()))
        .collect();
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write zones");
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait genreport") {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("genreport did not finish in 120 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut out = String::new();
    let mut err = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(status.success(), "genreport: {status}\n{out}\n{err}");
    out.lines().map(str::to_owned).collect()
}

/// Every test genreport makes reports `ok` (a result such as `ok,yes` or
/// `ok,cookie` adds information to an ok), on the unsigned example.test.
/// and the signed signed.test.
#[test]
#[ignore = "needs genreport build deps"]
fn genreport_reports_every_test_ok() {
    let Some(bin) = genreport() else {
        eprintln!(
            "SKIPPED: set GENREPORT to a genreport binary, or GENREPORT_SRC to a \
             DNS-Compliance-Testing checkout to build one"
        );
        return;
    };
    let t = start_test_zones();
    let zones = ["example.test.", "signed.test."];
    let lines = run_genreport(&bin, &t, &zones);
    let mut failures = Vec::new();
    for z in zones {
        let line = lines
            .iter()
            .find(|l| l.starts_with(&format!("{z} @")))
            .unwrap_or_else(|| panic!("no report for {z}:\n{}", lines.join("\n")));
        let (_, results) = line.split_once("): ").expect("report line");
        let results: Vec<(&str, &str)> = results
            .split_whitespace()
            .map(|r| r.split_once('=').expect("test=result"))
            .collect();
        // -t -f -c: 99 tests, the 65 type tests and the FULL, EDNS and
        // COMMON ones (more in newer genreports).
        assert!(
            results.len() >= 99 && results.iter().any(|(n, _)| *n == "opcodeflg"),
            "{z}: not the full set of tests: {line}"
        );
        for (name, result) in results {
            if result != "ok" && !result.starts_with("ok,") {
                failures.push(format!("{z} {name}={result}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "genreport failures:\n{}",
        failures.join("\n")
    );
}
