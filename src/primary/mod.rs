//! Primary zones: the zone file is the source of truth. A reload reads it,
//! applies the serial policy, records the difference from the served version
//! in the journal, publishes the new version and tells the notifier.
//! A file that fails to load or check leaves the served version in place.

pub mod serial_policy;
pub mod state;
pub mod watch;

use crate::catalog::{Served, SharedCatalog, ZonePolicy, publish};
use crate::config::ZoneConfig;
use crate::fsutil::zone_file_stem;
use crate::status::ZoneStatus;
use crate::xfr::journal::Journal;
use crate::xfr::notify_out::Announce;
use crate::zone::diff::{self, Rr, content_hash};
use crate::zone::{Zone, ZoneError, load_zone_file, serial::is_newer};
use state::State;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tracing::{error, info, warn};

pub struct PrimaryZone {
    pub cfg: ZoneConfig,
    policy: Arc<ZonePolicy>,
    journal: Option<Journal>,
    served: Option<Arc<Zone>>,
    content: u64,
    state_path: PathBuf,
    /// The zone file and its `$INCLUDE`s as last read (for the watcher).
    pub files: Vec<PathBuf>,
    announce: Announce,
    status: Arc<ZoneStatus>,
}

/// What a reload did.
#[derive(Debug, PartialEq, Eq)]
pub enum Reloaded {
    Published(u32),
    /// The file holds what is served.
    Unchanged(u32),
    /// Why nothing changed: FILE:LINE and what is wrong, or what failed.
    Failed(String),
}

impl PrimaryZone {
    pub fn open(
        cfg: ZoneConfig,
        policy: Arc<ZonePolicy>,
        data_dir: &Path,
        announce: Announce,
        status: Arc<ZoneStatus>,
    ) -> PrimaryZone {
        let stem = zone_file_stem(&cfg.name);
        let journal = match Journal::open(
            &data_dir.join(format!("{stem}journal")),
            cfg.journal_max_entries,
            cfg.journal_max_bytes,
        ) {
            Ok((j, warnings)) => {
                for w in warnings {
                    warn!(zone = %cfg.name, "{w}");
                }
                Some(j)
            }
            Err(e) => {
                error!(zone = %cfg.name, "{e}; serving without a journal (IXFR falls back to AXFR)");
                None
            }
        };
        PrimaryZone {
            files: vec![cfg.file.clone()],
            state_path: data_dir.join(format!("{stem}state")),
            policy,
            cfg,
            journal,
            served: None,
            content: 0,
            announce,
            status,
        }
    }

    /// New settings from a config reload, applied in place: the served
    /// version stays, published again with the new transfer policy. True
    /// when the zone file must be read again (its path changed).
    pub fn reconfigure(
        &mut self,
        cfg: ZoneConfig,
        policy: Arc<ZonePolicy>,
        catalog: &SharedCatalog,
    ) -> bool {
        let file_changed = cfg.file != self.cfg.file;
        self.policy = policy;
        if let Some(j) = self.journal.as_mut() {
            j.set_bounds(cfg.journal_max_entries, cfg.journal_max_bytes);
        }
        self.cfg = cfg;
        if let Some(z) = self.served.clone() {
            self.publish(catalog, z);
        }
        info!(zone = %self.cfg.name, "new settings applied; the served version stays");
        file_changed
    }

    fn load(&mut self) -> Result<Zone, ZoneError> {
        let started = std::time::Instant::now();
        let loaded = load_zone_file(&self.cfg.file, &self.cfg.apex)?;
        for w in &loaded.warnings {
            warn!(zone = %self.cfg.name, "{w}");
        }
        self.files = loaded.files;
        info!(
            zone = %self.cfg.name,
            file_serial = loaded.zone.serial(),
            records = loaded.zone.record_count(),
            names = loaded.zone.name_count(),
            ms = started.elapsed().as_millis() as u64,
            "zone file read"
        );
        Ok(loaded.zone)
    }

    fn publish(&self, catalog: &SharedCatalog, zone: Arc<Zone>) {
        let history = self
            .journal
            .as_ref()
            .map(|j| j.entries())
            .unwrap_or_default();
        let served = Served {
            apex: self.cfg.apex.clone().into(),
            zone: Some(zone),
            history: history.into(),
            policy: self.policy.clone(),
            notify_in: None,
            status: self.status.clone(),
        };
        publish::swap(catalog, |c| c.with_zone(served.clone()));
    }

    /// Reads the zone file and, if it changed, publishes the new version.
    pub fn reload(&mut self, catalog: &SharedCatalog) -> Reloaded {
        let _span = tracing::info_span!("zone", name = %self.cfg.name).entered();
        crate::supervise::inject_fault_once(&self.cfg.apex);
        let fresh = match self.load() {
            Ok(z) => z,
            Err(e) => return self.failed(catalog, e.to_string()),
        };
        let hash = content_hash(&fresh);
        let file_serial = fresh.serial();
        let now = crate::clock::unix_secs();
        let on_disk = state::read(&self.state_path);
        let (next, diff) = match (&self.served, on_disk) {
            (Some(old), _) => {
                if hash == self.content && !is_newer(file_serial, old.serial()) {
                    // Nothing new; persist what is served if that failed before.
                    let state = State {
                        serial: old.serial(),
                        content: hash,
                    };
                    if self.status.is_degraded() && state::write(&self.state_path, state).is_ok() {
                        info!(zone = %self.cfg.name, serial = old.serial(), "the served serial is persisted again");
                        self.status.set_degraded(None);
                    }
                    self.status.set_error(None);
                    return Reloaded::Unchanged(old.serial());
                }
                let serial = match serial_policy::next(
                    self.cfg.serial_policy,
                    file_serial,
                    old.serial(),
                    now,
                ) {
                    Ok(s) => s,
                    Err(e) => {
                        let msg = format!("{}: {e}", self.cfg.file.display());
                        return self.failed(catalog, msg);
                    }
                };
                let next = if serial == file_serial {
                    fresh
                } else {
                    fresh.with_serial(serial)
                };
                let d = diff::diff(old, &next);
                (next, Some(d))
            }
            (None, Some(st)) if hash == st.content => {
                if is_newer(file_serial, st.serial) {
                    // Same content, higher serial in the file: an SOA-only change.
                    let mut from = fresh.soa_rr();
                    set_serial(&mut from, st.serial);
                    let d = diff::Diff {
                        from,
                        to: fresh.soa_rr(),
                        deleted: vec![],
                        added: vec![],
                    };
                    (fresh, Some(d))
                } else {
                    // What was served before the restart: its serial, its journal.
                    let z = if file_serial == st.serial {
                        fresh
                    } else {
                        fresh.with_serial(st.serial)
                    };
                    (z, None)
                }
            }
            (None, Some(st)) => {
                let serial = match serial_policy::next(
                    self.cfg.serial_policy,
                    file_serial,
                    st.serial,
                    now,
                ) {
                    Ok(s) => s,
                    Err(e) => {
                        let msg = format!("{}: {e}", self.cfg.file.display());
                        return self.failed(catalog, msg);
                    }
                };
                warn!(
                    zone = %self.cfg.name,
                    previous_serial = st.serial,
                    serial,
                    "zone file changed while tandem was stopped; IXFR history restarts here"
                );
                self.clear_journal();
                let z = if serial == file_serial {
                    fresh
                } else {
                    fresh.with_serial(serial)
                };
                (z, None)
            }
            (None, None) => {
                self.clear_journal();
                (fresh, None)
            }
        };
        let serial = next.serial();
        // Persisted before published: after a restart the zone starts from
        // this serial, never an older one. A version whose serial cannot be
        // persisted is published only if a restart would come back to it
        // anyway: the state on disk already says so, or the zone file
        // itself carries the serial.
        let state = State {
            serial,
            content: hash,
        };
        // The state and the journal entry are synced to disk at the same
        // time (two fsyncs in parallel, not in a row): both are on the path
        // from a save to the version being served.
        let state_path = self.state_path.clone();
        let zone_name = self.cfg.name.clone();
        let (written, journal) = std::thread::scope(|scope| {
            let journal = self.journal.as_mut().zip(diff).map(|(j, d)| {
                scope.spawn(move || {
                    j.append_or_restart(d)
                        .and_then(|restart| j.trim().map(|_| restart))
                })
            });
            let written = state::write(&state_path, state);
            (written, journal.map(|h| h.join()))
        });
        match journal {
            None | Some(Ok(Ok(None))) => {}
            Some(Ok(Ok(Some(why)))) => warn!(zone = %zone_name, "{why}"),
            Some(Ok(Err(e))) => {
                error!(zone = %zone_name, "{e}; IXFR history restarts here");
                self.clear_journal();
            }
            Some(Err(_)) => {
                error!(zone = %zone_name, "the journal append panicked; IXFR history restarts here");
                self.clear_journal();
            }
        }
        match written {
            Ok(()) => self.status.set_degraded(None),
            Err(e) if on_disk == Some(state) || serial == file_serial => {
                let why = format!(
                    "cannot persist the served serial to {}: {e}; serving serial {serial}, which the zone file holds",
                    self.state_path.display()
                );
                warn!(zone = %self.cfg.name, "{why}");
                self.status.set_degraded(Some(why));
            }
            Err(e) => {
                let why = format!(
                    "cannot persist serial {serial} to {}: {e}; not publishing it (the serial must not go backwards after a restart)",
                    self.state_path.display()
                );
                self.status.set_degraded(Some(why.clone()));
                // The journal may hold the unpublished version's entry:
                // history restarts with the next version that is served.
                self.clear_journal();
                return self.failed(catalog, why);
            }
        }
        let next = Arc::new(next);
        self.content = hash;
        self.served = Some(next.clone());
        self.publish(catalog, next.clone());
        self.status.published(serial, next.record_count());
        self.status.set_error(None);
        info!(zone = %self.cfg.name, serial, "serving new version");
        self.announce.send_replace(Some(next.soa_rr()));
        Reloaded::Published(serial)
    }

    /// A reload that changed nothing: logged, counted, kept for `status`.
    pub fn failed(&self, catalog: &SharedCatalog, why: String) -> Reloaded {
        crate::stats::METRICS
            .reload_failures
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let served = catalog
            .load()
            .get(&self.cfg.apex)
            .and_then(|s| s.zone.as_ref().map(|z| z.serial()));
        match served {
            Some(serial) => {
                error!(zone = %self.cfg.name, "{why}; keeping the served version (serial {serial})")
            }
            None => {
                error!(zone = %self.cfg.name, "{why}; the zone is not served");
                self.status.set_state(crate::status::State::Failed);
            }
        }
        self.status.set_error(Some(why.clone()));
        Reloaded::Failed(why)
    }

    /// The SOA followers are told about, sent again (`tandem notify`).
    pub fn renotify(&self) -> bool {
        match &self.served {
            Some(z) => {
                self.announce.send_replace(Some(z.soa_rr()));
                true
            }
            None => false,
        }
    }

    fn clear_journal(&mut self) {
        if let Some(j) = self.journal.as_mut()
            && !j.is_empty()
            && let Err(e) = j.clear()
        {
            error!(zone = %self.cfg.name, "{e}");
        }
    }
}

fn set_serial(soa: &mut Rr, serial: u32) {
    crate::zone::rdata::set_soa_serial(&mut soa.rdata, serial);
}
