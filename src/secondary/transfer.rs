//! A transfer in: fetched and checked by `xfr::client`, built or applied
//! here (every record validated), then FLUSHed to disk (`store`) and only
//! then swapped into the catalog.

use super::refresh::Link;
use super::{SecondaryZone, StoreUnavailable};
use crate::stats;
use crate::xfr::client::{Conn, XfrError};
use crate::xfr::reader::Fetched;
use crate::zone::diff::{self, Rr};
use crate::zone::records::Records;
use crate::zone::{Zone, build, rtype, serial::is_newer, stage, workers};
use std::sync::Arc;
use tokio::time::Instant;
use tracing::error;

impl SecondaryZone {
    /// One transfer, checked, saved (with the refresh timers it sets) and
    /// published; the EXPIRE timer restarts. Returns (style, serial, records).
    pub(super) async fn transfer(
        &mut self,
        link: &Link<'_>,
        conn: Option<Conn>,
        current: Option<&Rr>,
        any_serial: bool,
    ) -> Result<(&'static str, u32, usize), XfrError> {
        let kind = if current.is_some() {
            stats::IXFR
        } else {
            stats::AXFR
        };
        let got = match self.client(link).fetch(link.primary, current, conn).await {
            Ok(r) => r,
            Err(e) => {
                stats::transfer_in(kind, false, 0);
                return Err(e);
            }
        };
        stats::transfer_in(kind, true, got.bytes);
        let (fetched, received_expire) = (got.fetched, got.expire);
        let old = self.current.clone();
        let apex = self.cfg.apex.clone();
        let (style, next, diffs) = match fetched {
            Fetched::UpToDate => {
                return Ok(("up to date", old.map(|z| z.serial()).unwrap_or(0), 0));
            }
            Fetched::Full(records) => {
                let z = tokio::task::spawn_blocking(move || build_full(&apex, records))
                    .await
                    .map_err(|e| XfrError::Malformed(e.to_string()))?
                    .map_err(XfrError::Malformed)?;
                (
                    if current.is_some() {
                        "IXFR (answered AXFR-style)"
                    } else {
                        "AXFR"
                    },
                    z,
                    None,
                )
            }
            Fetched::Incremental(diffs) => {
                let Some(base) = old.clone() else {
                    return Err(XfrError::Malformed("incremental answer to an AXFR".into()));
                };
                let z = tokio::task::spawn_blocking({
                    let diffs = diffs.clone();
                    move || apply_all(&base, &diffs)
                })
                .await
                .map_err(|e| XfrError::Malformed(e.to_string()))?
                .map_err(XfrError::Malformed)?;
                ("IXFR", z, Some(diffs))
            }
        };
        if let Some(o) = old.as_ref().filter(|_| !any_serial)
            && !is_newer(next.serial(), o.serial())
        {
            return Err(XfrError::Malformed(format!(
                "transfer brought serial {}, not newer than {}",
                next.serial(),
                o.serial()
            )));
        }
        let records = next.record_count();
        let expire = self.expire_for(Some(&next), received_expire);
        let next = Arc::new(next);
        // FLUSH before the swap: what is served is on disk, with the timers
        // this refresh sets. (Serving a first version before saving it was
        // tried for catalog members: no faster, and a crash in between,
        // with primaries at different serials, could bring back an older
        // serial than one already served.)
        let now = crate::clock::unix_secs();
        let z = next.clone();
        let (saved, on_disk) = self
            .on_store(move |store| {
                store.timers.last_refresh = now;
                store.timers.expires_at = now + expire.as_secs();
                let r = match diffs {
                    Some(d) => store.save_diffs(&z, d),
                    None => {
                        let d = old.as_ref().map(|o| diff::diff(o, &z));
                        store.save_full(&z, d)
                    }
                };
                (r, store.holds_a_version())
            })
            .await
            .map_err(|e| match e {
                StoreUnavailable::Busy => XfrError::Malformed(e.to_string()),
                StoreUnavailable::Failed(e) => XfrError::Malformed(format!("saving: {e}")),
            })?;
        match saved {
            Ok(()) => self.status.set_degraded(None),
            // An older version on disk would come back after a restart: the
            // serial would go backwards. Keep serving what is saved.
            Err(e) if on_disk => {
                let why = format!(
                    "cannot save serial {} under {}: {e}; still serving the saved serial",
                    next.serial(),
                    self.cfg.file.display()
                );
                error!(zone = %self.cfg.name, "{why}");
                self.status.set_degraded(Some(why.clone()));
                return Err(XfrError::Malformed(why));
            }
            // Nothing on disk: a restart starts empty and transfers afresh,
            // so serving from memory cannot make the serial go backwards.
            Err(e) => {
                let why = format!(
                    "cannot save the new version: {e}; serving serial {} from memory only",
                    next.serial()
                );
                error!(zone = %self.cfg.name, "{why}");
                self.status.set_degraded(Some(why));
            }
        }
        self.swap_in(&next, expire, records);
        // Refresh times the save left for after the swap.
        self.save_timers_with(|store| store.save_pending_timers())
            .await;
        Ok((style, next.serial(), records))
    }

    /// Serves `next`: swapped into the catalog, the EXPIRE timer restarted,
    /// followers told.
    fn swap_in(&mut self, next: &Arc<Zone>, expire: std::time::Duration, records: usize) {
        self.current = Some(next.clone());
        self.set_expire_at(Some(Instant::now() + expire));
        self.publish();
        self.status.published(next.serial(), records);
        self.announce.send_replace(Some(next.soa_rr()));
    }
}

/// Builds a version from a full transfer; the checks are the zone file's.
/// The records are staged in blocks on every core, each block freed once
/// staged, then built on every core.
pub fn build_full(apex: &[u8], records: Records) -> Result<Zone, String> {
    let threads = if records.len() >= build::PARALLEL_FROM_RECORDS {
        workers::threads()
    } else {
        1
    };
    let staged = stage::stage_blocks(apex, records.into_blocks(), threads, |stager, block| {
        for (i, r) in block.iter().enumerate() {
            let n = block.first() + i;
            if n > 0 && r.rtype == rtype::SOA {
                return Err("an SOA inside the transfer".to_string());
            }
            // The record's number stands for its line: the first of
            // several failures in reading order is reported.
            stager
                .add(r.owner, r.rtype, r.ttl, r.rdata, (n + 1) as u32)
                .map_err(|e| format!("record {} rejected: {e}", n + 1))?;
        }
        Ok(())
    })?;
    build::build(staged, threads)
        .map(|(z, _)| z)
        .map_err(|e| e.msg)
}

/// Applies received differences in order, each checked.
pub fn apply_all(base: &Zone, diffs: &[diff::Diff]) -> Result<Zone, String> {
    let mut z: Option<Zone> = None;
    for d in diffs {
        let cur = z.as_ref().unwrap_or(base);
        if d.from_serial() != cur.serial() {
            return Err(format!(
                "difference starts at serial {} but we are at {}",
                d.from_serial(),
                cur.serial()
            ));
        }
        z = Some(
            cur.apply(&d.deleted, &d.added, &d.to)
                .map_err(|e| format!("{} → {}: {e}", d.from_serial(), d.to_serial()))?,
        );
    }
    z.ok_or_else(|| "an empty incremental answer".into())
}
