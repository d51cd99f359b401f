//! The zone's event loop: where its timers fire (REFRESH, RETRY, EXPIRE),
//! where a NOTIFY or a control command wakes it, and where the next check
//! is scheduled from the outcome.

use super::{Command, SecondaryZone};
use crate::status::State;
use std::time::Duration;
use tokio::time::Instant;
use tracing::{Instrument, info, info_span, warn};

/// The first wait after a failed refresh of a zone that has no data yet;
/// it doubles up to `NEVER_LOADED_MAX` (or RETRY, if shorter), so a new
/// secondary serves within a minute of its primary appearing (BIND waits
/// longer, with a similar backoff).
const NEVER_LOADED_FIRST: Duration = Duration::from_secs(2);
const NEVER_LOADED_MAX: Duration = Duration::from_secs(60);

/// A little randomness so that many zones do not refresh in lockstep:
/// up to 10 % shorter.
fn jitter(d: Duration) -> Duration {
    let r = crate::xfr::message_id() % 1000;
    d.mul_f64(1.0 - r as f64 / 10_000.0)
}

impl SecondaryZone {
    /// Runs the zone until its lifecycle is stopped (its channels close).
    /// Not an `async fn`: that would keep a second place for `self` in the
    /// task beside the block that takes it (800 bytes more per zone, held
    /// for the zone's whole life).
    pub fn run(mut self) -> impl std::future::Future<Output = ()> {
        let span = info_span!("zone", name = %self.cfg.name);
        async move {
            self.publish();
            // Boxed, as the refresh below: a task's future is as large as
            // its largest await, held for the zone's whole life (5.3 kB per
            // zone unboxed; 10,000 catalog members hold 10,000).
            Box::pin(self.load_saved()).await;
            let mut next_check = Instant::now();
            loop {
                let expire_at = self.expire_at;
                tokio::select! {
                    _ = tokio::time::sleep_until(next_check) => {}
                    from = self.notify_rx.recv() => {
                        let Some(from) = from else { return };
                        crate::info_limited!(zone = %self.cfg.name, %from, "NOTIFY received; checking the primary now");
                    }
                    cmd = self.commands.recv() => {
                        let Some(cmd) = cmd else { return };
                        match cmd {
                            Command::Notify => {
                                self.announce.send_replace(self.current.as_ref().map(|z| z.soa_rr()));
                                continue;
                            }
                            Command::Reconfigure(cfg, policy) => {
                                if !self.reconfigure(*cfg, policy) {
                                    continue;
                                }
                            }
                            Command::Retransfer(reply) => {
                                self.force_axfr = true;
                                self.waiting.extend(reply);
                            }
                            Command::Refresh(reply) => self.waiting.extend(reply),
                        }
                        info!(zone = %self.cfg.name, "asked by the control API or a config reload");
                    }
                    _ = sleep_opt(expire_at) => {
                        self.expire();
                        continue;
                    }
                }
                let before = self.status.base_state();
                if before != State::Expired {
                    self.status.set_state(State::Refreshing);
                }
                let outcome = Box::pin(self.refresh()).await;
                // The timers of the version now served: a transfer may have
                // brought a new SOA (or the first one).
                let (refresh, retry, _) = self.timers();
                let wait = match &outcome {
                    Ok(_) => {
                        self.backoff = None;
                        self.status.set_error(None);
                        jitter(refresh)
                    }
                    Err(e) => {
                        self.status.set_error(Some(e.clone()));
                        let wait = if self.current.is_some() {
                            retry
                        } else {
                            // Never loaded (or expired): try again soon,
                            // backing off.
                            let b = self
                                .backoff
                                .map_or(NEVER_LOADED_FIRST, |b| b * 2)
                                .min(NEVER_LOADED_MAX.min(retry));
                            self.backoff = Some(b);
                            b
                        };
                        warn!(zone = %self.cfg.name, "refresh failed: {e}; retrying in {}s", wait.as_secs());
                        jitter(wait)
                    }
                };
                for reply in self.waiting.drain(..) {
                    let _ = reply.send(outcome.clone());
                }
                next_check = Instant::now() + wait;
                self.status.set_state(match (&self.current, before) {
                    (Some(_), _) => State::Serving,
                    (None, State::Expired) => State::Expired,
                    (None, _) => State::Failed,
                });
                let expires = self.expire_at.map(|e| std::time::SystemTime::now() + e.saturating_duration_since(Instant::now()));
                self.status.set_timers(Some(std::time::SystemTime::now() + wait), expires);
                // A NOTIFY that came in during the transfer asks for another look.
                let mut pending = false;
                while self.notify_rx.try_recv().is_ok() {
                    pending = true;
                }
                if pending {
                    next_check = Instant::now();
                }
            }
        }
        .instrument(span)
    }
}

async fn sleep_opt(at: Option<Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}
