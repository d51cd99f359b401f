//! One task per listed follower of a zone: the whole leader-follower loop
//! for it. Each new version is announced by NOTIFY (`notify_out`); then the
//! follower is asked for the zone's SOA — soon after the acknowledgment,
//! backing off, then every `follower_check_interval` — and the serial it
//! *serves* is recorded (`status::ZoneStatus::follower_checked`: in_sync,
//! behind or unreachable, and the zone's convergence time). A follower
//! behind for longer than `follower_behind_after` is NOTIFYed again, with
//! a doubling pause, and logged once when it falls behind and once when it
//! recovers. Nothing here depends on what the follower runs: BIND, Knot and
//! NSD answer SOA queries like tandem.

use super::client::{Client, XfrError};
use super::notify_out::{Announce, Signing, notify_version};
pub use crate::config::FollowerChecks as Checks;
use crate::config::Primary;
use crate::status::{Check, ZoneStatus};
use crate::zone::diff::Rr;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::{Instant, sleep_until};
use tracing::{info, warn};

/// The first check after a NOTIFY is answered: a follower usually has the
/// version a few milliseconds later.
const FIRST_CHECK: Duration = Duration::from_millis(20);
/// The longest pause between re-NOTIFYs of a follower left behind.
const MAX_RENOTIFY: Duration = Duration::from_secs(600);
/// How long one SOA check may take (at most the interval).
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// Starts one task per follower; returns their handles (stopped when the
/// zone is removed or its followers or settings change).
pub fn spawn(
    zone: String,
    apex: Vec<u8>,
    targets: &[SocketAddr],
    signing: Signing,
    announce: &Announce,
    status: Arc<ZoneStatus>,
    checks: Checks,
) -> Vec<tokio::task::JoinHandle<()>> {
    targets
        .iter()
        .map(|&target| {
            let f = Follower {
                zone: zone.clone(),
                apex: apex.clone(),
                target,
                signing: signing.clone(),
                status: status.clone(),
                checks,
            };
            tokio::spawn(f.run(announce.subscribe()))
        })
        .collect()
}

struct Follower {
    zone: String,
    apex: Vec<u8>,
    target: SocketAddr,
    signing: Signing,
    status: Arc<ZoneStatus>,
    checks: Checks,
}

impl Follower {
    async fn run(self, mut rx: watch::Receiver<Option<Rr>>) {
        let mut announce = true;
        let mut next_check = Instant::now() + self.checks.interval;
        let mut poll = FIRST_CHECK;
        let mut renotify = self.checks.behind_after;
        let mut behind_since: Option<Instant> = None;
        let mut warned = false;
        loop {
            if announce {
                announce = false;
                let soa = rx.borrow_and_update().clone();
                if let Some(soa) = soa {
                    if !notify_version(
                        &self.zone,
                        &self.apex,
                        &soa,
                        self.target,
                        &self.signing,
                        &mut rx,
                        &self.status,
                    )
                    .await
                    {
                        // A newer version came while retrying: announce it.
                        announce = true;
                        continue;
                    }
                    poll = FIRST_CHECK;
                    next_check = Instant::now() + poll;
                }
            }
            tokio::select! {
                changed = rx.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    announce = true;
                }
                _ = sleep_until(next_check) => {
                    let now = Instant::now();
                    if rx.borrow().is_none() {
                        // Nothing served yet: nothing to confirm.
                        next_check = now + self.checks.interval;
                        continue;
                    }
                    let check = self.check().await;
                    let now = Instant::now();
                    match check {
                        Check::InSync => {
                            if warned {
                                info!(zone = %self.zone, follower = %self.target, "follower serves the current version again");
                            }
                            warned = false;
                            behind_since = None;
                            renotify = self.checks.behind_after;
                            next_check = now + self.checks.interval;
                        }
                        Check::Behind | Check::Unreachable => {
                            let since = *behind_since.get_or_insert(now);
                            if now.duration_since(since) >= renotify {
                                if !warned {
                                    warn!(zone = %self.zone, follower = %self.target, state = check.name(), behind_for_s = now.duration_since(since).as_secs(), "follower does not serve the current version; NOTIFYing it again");
                                    warned = true;
                                }
                                announce = check == Check::Behind;
                                behind_since = Some(now);
                                renotify = (renotify * 2).min(MAX_RENOTIFY);
                            }
                            // Soon while it catches up, then at the interval.
                            next_check = now + poll.min(self.checks.interval);
                            poll = (poll * 2).min(self.checks.interval);
                        }
                    }
                }
            }
        }
    }

    /// Asks the follower which serial it serves (UDP, TCP when truncated,
    /// signed with the zone's key) and records the answer.
    async fn check(&self) -> Check {
        let key = self
            .signing
            .key
            .as_ref()
            .and_then(|k| self.signing.keys.load().get(k).cloned());
        let client = Client {
            apex: &self.apex,
            key: key.as_ref(),
            tls: None,
            max_records: 1,
            max_bytes: 65535,
            timeout: CHECK_TIMEOUT.min(self.checks.interval),
            // Only the serial matters here, not the follower's EXPIRE.
            edns: false,
        };
        let primary = Primary {
            addr: self.target,
            tls: false,
        };
        let found = match client.soa_serial(primary).await {
            Ok(c) => Ok(Some(c.serial)),
            Err(XfrError::Timeout | XfrError::Io(_)) => Err(()),
            // It answers, but not with the zone (REFUSED, SERVFAIL, not
            // authoritative): reachable, and not serving it.
            Err(_) => Ok(None),
        };
        self.status.follower_checked(self.target, found)
    }
}
