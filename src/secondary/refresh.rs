//! REFRESH: ask the primaries' SOA in turn and transfer from the first
//! that is ahead (IXFR, AXFR when it must).

use super::SecondaryZone;
use super::slots::transfer_slot;
use crate::config::Primary;
use crate::query::request::rcode;
use crate::tls::Connector;
use crate::xfr::client::{Client, XfrError};
use crate::zone::serial::is_newer;
use hickory_proto::rr::TSigner;
use tokio::time::Instant;
use tracing::{info, warn};

/// Where and how one refresh talks to a primary.
pub(super) struct Link<'a> {
    pub primary: Primary,
    pub key: Option<&'a TSigner>,
    pub tls: Option<&'a Connector>,
    /// Whether requests carry an OPT (asking for EXPIRE).
    pub edns: bool,
}

/// Why a refresh from one primary failed, and whether asking the next one
/// could help: not when no transfer slot is free (that is this server's
/// limit, not the primary's fault).
pub(super) struct Failed {
    why: String,
    try_next: bool,
}

impl Failed {
    fn no_slot(why: String) -> Failed {
        Failed {
            why,
            try_next: false,
        }
    }
}

impl From<String> for Failed {
    fn from(why: String) -> Failed {
        Failed {
            why,
            try_next: true,
        }
    }
}

impl SecondaryZone {
    /// The zone's TSIG key as the keyring holds it now (a reloaded secret
    /// is used at the next request).
    fn signer(&self) -> Result<Option<TSigner>, String> {
        match &self.policy.key {
            None => Ok(None),
            Some(w) => self.keys.load().get(w).cloned().map(Some).ok_or_else(|| {
                format!(
                    "TSIG key {} is not configured",
                    crate::zone::name::to_text(w)
                )
            }),
        }
    }

    /// The transfer client for this zone's limits, and the link's key, TLS
    /// settings and EDNS.
    pub(super) fn client<'a>(&'a self, link: &Link<'a>) -> Client<'a> {
        Client {
            apex: &self.cfg.apex,
            key: link.key,
            tls: link.tls,
            max_records: self.cfg.max_transfer_records,
            max_bytes: self.cfg.max_transfer_bytes,
            timeout: self.cfg.transfer_timeout,
            edns: link.edns,
        }
    }

    /// REFRESH: ask the primaries in order; transfer when one is ahead.
    /// Says what happened.
    pub(super) async fn refresh(&mut self) -> Result<String, String> {
        let mut errors = Vec::new();
        for i in 0..self.primaries.len() {
            let primary = self.primaries[i];
            match self.refresh_from(primary).await {
                Ok(done) => {
                    // The one that answered goes first next time.
                    self.primaries[..=i].rotate_right(1);
                    return Ok(done);
                }
                Err(Failed { why, try_next }) => {
                    warn!(zone = %self.cfg.name, %primary, "{why}");
                    errors.push(format!("{primary}: {why}"));
                    if !try_next {
                        break;
                    }
                }
            }
        }
        Err(errors.join("; "))
    }

    async fn refresh_from(&mut self, primary: Primary) -> Result<String, Failed> {
        let key = self.signer()?;
        // Read at each refresh: a rotated CA or client certificate applies
        // without a reload.
        let tls = match primary.tls {
            true => Some(
                self.cfg
                    .tls
                    .connector()
                    .map_err(|e| format!("TLS settings: {e}"))?,
            ),
            false => None,
        };
        let mut link = Link {
            primary,
            key: key.as_ref(),
            tls: tls.as_ref(),
            edns: true,
        };
        if std::mem::take(&mut self.force_axfr) {
            let _slot = match transfer_slot(None, self.cfg.transfer_timeout).await {
                Ok((slot, _)) => slot,
                Err(why) => {
                    self.force_axfr = true;
                    return Err(Failed::no_slot(why));
                }
            };
            let started = std::time::Instant::now();
            let (style, serial, records) =
                self.transfer(&link, None, None, true).await.map_err(|e| {
                    self.force_axfr = true;
                    format!("AXFR: {e}")
                })?;
            info!(zone = %self.cfg.name, %primary, serial, records, ms = started.elapsed().as_millis() as u64, "{style} received and applied (retransfer)");
            return Ok(format!("{style} from {primary}: serving serial {serial}"));
        }
        let check = match self.client(&link).soa_serial(primary).await {
            // RFC 6891 §7: a primary that does not understand the OPT record
            // (or its EXPIRE option) is asked again, and this refresh's
            // transfer made, without it.
            Err(XfrError::Rcode(rcode::FORMERR, _)) => {
                warn!(zone = %self.cfg.name, %primary, "FORMERR to an SOA query with EDNS; asking again without");
                link.edns = false;
                self.client(&link).soa_serial(primary).await
            }
            r => r,
        }
        .map_err(|e| format!("SOA query: {e}"))?;
        let (theirs, conn) = (check.serial, check.conn);
        if let Some(z) = &self.current
            && !is_newer(theirs, z.serial())
        {
            let serial = z.serial();
            // RFC 7314 §4: the EXPIRE counts only when the primary serves
            // the version we have.
            self.refreshed(check.expire.filter(|_| theirs == serial))
                .await;
            return Ok(format!(
                "up to date at serial {serial} ({primary} has {theirs})"
            ));
        }
        // One slot of `max_transfers_in` for this refresh's transfers,
        // the AXFR fallback included.
        let (_slot, conn) = transfer_slot(conn, self.cfg.transfer_timeout)
            .await
            .map_err(Failed::no_slot)?;
        let current_soa = self.current.as_ref().map(|z| z.soa_rr());
        let started = std::time::Instant::now();
        let (kind, result) = match &current_soa {
            Some(soa) => match self.transfer(&link, conn, Some(soa), false).await {
                Ok(v) => ("IXFR", Ok(v)),
                Err(e) => {
                    warn!(zone = %self.cfg.name, %primary, "IXFR failed ({e}); trying AXFR");
                    ("AXFR", self.transfer(&link, None, None, false).await)
                }
            },
            None => ("AXFR", self.transfer(&link, conn, None, false).await),
        };
        let (style, serial, records) = result.map_err(|e| format!("{kind}: {e}"))?;
        info!(
            zone = %self.cfg.name,
            %primary,
            serial,
            records,
            ms = started.elapsed().as_millis() as u64,
            "{style} received and applied"
        );
        Ok(format!("{style} from {primary}: serving serial {serial}"))
    }

    /// Records a successful refresh: timers moved and saved. `received` is
    /// the primary's EXPIRE option, if it sent one.
    async fn refreshed(&mut self, received: Option<u32>) {
        let mut expire = self.expire_for(self.current.as_deref(), received);
        // A check only moves the deadline later (BIND: "has the expire time
        // improved?"): a secondary among the primaries that answers with
        // little time left must not cut short what a fresher check gave.
        let now = Instant::now();
        if let Some(left) = self.expire_at.and_then(|at| at.checked_duration_since(now)) {
            expire = expire.max(left);
        }
        self.set_expire_at(Some(now + expire));
        // An fsync: off the runtime's threads (10,000 catalog members
        // checked at once after a restart would stall them).
        let secs = crate::clock::unix_secs();
        self.save_timers_with(move |store| {
            store.timers.last_refresh = secs;
            store.timers.expires_at = secs + expire.as_secs();
            store.save_timers()
        })
        .await;
    }
}
