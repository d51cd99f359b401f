//! NOTIFY out (RFC 1996): a new version is announced to a follower over
//! UDP, retried with backoff until it answers or the retry budget is spent;
//! a newer version supersedes a pending one. Called by the follower's task
//! (`follower.rs`), so at most one NOTIFY is outstanding per follower.

use crate::query::request::rcode;
use crate::query::writer::{ANSWER, Writer};
use crate::stats::METRICS;
use crate::status::ZoneStatus;
use crate::xfr::tsig::{self, SharedKeyring};
use crate::zone::diff::Rr;
use crate::zone::{name, rtype};
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::sync::watch;
use tracing::{debug, info, warn};

/// What a zone's followers are told about: the SOA of the version it now
/// serves (primary or secondary alike).
pub type Announce = watch::Sender<Option<Rr>>;

/// How long one attempt waits for the answer.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
/// Backoff between attempts: 1 s, doubling, at most 30 s.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// After this many attempts for one version, give up (logged) until the next.
const MAX_ATTEMPTS: u32 = 8;

/// The TSIG key NOTIFYs are signed with: its name, looked up in the
/// current keyring at each send (a rotated secret is used at once).
#[derive(Clone)]
pub struct Signing {
    pub key: Option<Box<[u8]>>,
    pub keys: SharedKeyring,
}

/// Announces the version `soa` to `target`: NOTIFY, retried with backoff
/// until it is answered or the attempts are spent. Returns false when a
/// newer version arrived on `rx` meanwhile (announce that one instead).
pub async fn notify_version(
    zone: &str,
    apex: &[u8],
    soa: &Rr,
    target: SocketAddr,
    signing: &Signing,
    rx: &mut watch::Receiver<Option<Rr>>,
    status: &ZoneStatus,
) -> bool {
    let serial = soa.soa_serial().unwrap_or(0);
    let mut delay = Duration::from_secs(1);
    for attempt in 1..=MAX_ATTEMPTS {
        METRICS.notify_sent.fetch_add(1, Relaxed);
        let result = send_once(apex, soa, target, signing).await;
        if result.is_ok() || attempt == MAX_ATTEMPTS {
            let acked = matches!(result, Ok(0));
            status.notify_result(target, acked);
            if acked {
                status.follower_seen(target.ip(), None);
                METRICS.notify_acked.fetch_add(1, Relaxed);
            } else {
                METRICS.notify_failed.fetch_add(1, Relaxed);
            }
        }
        match result {
            Ok(0) => {
                info!(zone = %zone, follower = %target, serial, attempt, "NOTIFY acknowledged");
                return true;
            }
            Ok(rc) => {
                warn!(zone = %zone, follower = %target, serial, rcode = %rcode::name(rc), "NOTIFY answered with an error");
                return true;
            }
            Err(e) if attempt == MAX_ATTEMPTS => {
                warn!(zone = %zone, follower = %target, serial, attempts = attempt, "NOTIFY not answered ({e}); giving up until the next version");
            }
            Err(e) => {
                debug!(zone = %zone, follower = %target, serial, attempt, "NOTIFY: {e}; retrying in {delay:?}");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    changed = rx.changed() => {
                        // A closed channel: the zone is gone; the caller sees it next.
                        return changed.is_err();
                    }
                }
                delay = (delay * 2).min(MAX_BACKOFF);
            }
        }
    }
    true
}

/// The NOTIFY message: opcode NOTIFY, AA, the zone's SOA as question and,
/// as a hint, in the answer section.
pub fn message(apex: &[u8], soa: &Rr, id: u16) -> Vec<u8> {
    let mut buf = vec![0u8; 1024];
    let mut w = Writer::new(&mut buf, 1024);
    w.header(id, (4 << 11) | 0x0400);
    let mut q = apex.to_vec();
    q.extend_from_slice(&rtype::SOA.to_be_bytes());
    q.extend_from_slice(&1u16.to_be_bytes());
    let _ = w.question(&q);
    let _ = w.rr(ANSWER, &soa.owner, rtype::SOA, soa.ttl, &soa.rdata);
    let n = w.finish();
    buf.truncate(n);
    buf
}

/// Sends one NOTIFY and waits for its answer; returns the answer's rcode.
async fn send_once(
    apex: &[u8],
    soa: &Rr,
    target: SocketAddr,
    signing: &Signing,
) -> std::io::Result<u16> {
    let bind: SocketAddr = if target.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let sock = UdpSocket::bind(bind).await?;
    // Connected: an ICMP port unreachable comes back as "connection refused".
    sock.connect(target).await?;
    let id = crate::xfr::message_id();
    let mut msg = message(apex, soa, id);
    if let Some(name) = &signing.key {
        let keys = signing.keys.load();
        let k = keys
            .get(name)
            .ok_or_else(|| std::io::Error::other("the zone's TSIG key is not configured"))?;
        tsig::sign_request(k, &mut msg, crate::clock::unix_secs())
            .ok_or_else(|| std::io::Error::other("cannot sign NOTIFY"))?;
    }
    sock.send(&msg).await?;
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + ATTEMPT_TIMEOUT;
    loop {
        let n = match tokio::time::timeout_at(deadline, sock.recv(&mut buf)).await {
            Ok(r) => r?,
            Err(_) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "timed out",
                ));
            }
        };
        let r = &buf[..n];
        // Only the follower's answer to this NOTIFY counts.
        if n >= 12 && r[..2] == id.to_be_bytes() && r[2] & 0x80 != 0 && (r[2] >> 3) & 0xf == 4 {
            return Ok((r[3] & 0xf) as u16);
        }
        debug!(zone = %name::to_text(apex), "ignored a stray datagram while waiting for a NOTIFY answer");
    }
}
