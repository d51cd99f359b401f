//! Catalog consumers (RFC 9432 §5): each version of a consumed catalog zone
//! is read whole and the member zones are made to match it — added, given
//! new group settings, reset when their unique id changes, handed over to
//! another catalog by `coo`, removed with their files. The catalog's own
//! saved copy is the persisted member list: at start-up it loads first and
//! every member starts from its own saved copy.
//!
//! Versions are compared, not events counted: each pass reads the latest
//! version served, so a change that arrives while another is applied is
//! applied next, and none is lost. The one thing an intermediate version
//! can say that the latest cannot — a `coo` for a member it then drops — is
//! read from the catalog's received changes in between. An invalid version
//! changes nothing.

use super::{Running, ZoneChangeError, Zones};
use crate::catz::{self, Member};
use crate::config::{self, CatalogConfig, CatalogRole, Role};
use crate::runtime_zones::{self, ZoneOrigin};
use crate::supervise::lock;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tracing::{info, warn};

/// How often the served catalogs are looked at (one pointer compare each).
const LOOK_EVERY: Duration = Duration::from_millis(20);

/// A consumed catalog: the version last applied and what it listed.
///
/// Lock order: `zones` before `consumed` (and `cfg`), never the other way.
#[derive(Default)]
pub(super) struct Consumed {
    /// The last version read (valid or not), held so its address cannot be
    /// reused by a later version (compared with `Arc::ptr_eq`); None makes
    /// the next pass apply the catalog again (after a config reload).
    seen: Option<Arc<crate::zone::Zone>>,
    members: BTreeMap<String, Member>,
    /// Why the last version read was not applied, and when.
    pub(super) error: Option<(String, std::time::SystemTime)>,
    /// The catalog's settings these members were started with.
    cfg: Option<CatalogConfig>,
    /// The serial of the version last applied: `coo`s are read from the
    /// changes received since (a config reload keeps it).
    applied: Option<u32>,
    /// Members another catalog handed to this one by `coo` before this
    /// one's listing of them was applied: given this catalog's settings,
    /// or dropped if it no longer lists them, at its next pass.
    adopted: std::collections::BTreeSet<String>,
}

/// Runs every consumer of the config, for as long as the server runs.
pub async fn consume_catalogs(zones: Arc<Zones>) {
    let mut tick = tokio::time::interval(LOOK_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let idle = lock(&zones.consumed).is_empty()
            && !lock(&zones.cfg)
                .catalogs
                .iter()
                .any(|c| c.role == CatalogRole::Consumer);
        if idle {
            continue;
        }
        let z = zones.clone();
        // Starting and stopping zones touches the disk: not on a worker.
        let _ = tokio::task::spawn_blocking(move || z.look_at_catalogs()).await;
    }
}

impl Zones {
    fn look_at_catalogs(&self) {
        let consumers: Vec<CatalogConfig> = lock(&self.cfg)
            .catalogs
            .iter()
            .filter(|c| c.role == CatalogRole::Consumer)
            .cloned()
            .collect();
        // Members of a catalog no longer consumed go with it.
        let dropped: Vec<String> = lock(&self.consumed)
            .keys()
            .filter(|c| !consumers.iter().any(|k| &k.name == *c))
            .cloned()
            .collect();
        for c in dropped {
            info!(catalog = %c, "catalog no longer in the config; its members are no longer served");
            self.apply_members(&c, None, BTreeMap::new(), &BTreeMap::new());
            lock(&self.consumed).remove(&c);
            let _ = std::fs::remove_file(self.members_path(&c));
        }
        for cat in consumers {
            let Some(apex) = crate::zone::name::lower_wire(&cat.name) else {
                continue;
            };
            // First look (at start-up, or the catalog is new): the members
            // last applied are served at once, from their saved copies,
            // whatever the catalog's own copy holds.
            if !lock(&self.consumed).contains_key(&cat.name) {
                let known = self.saved_members(&cat.name);
                lock(&self.consumed).insert(cat.name.clone(), Consumed::default());
                if !known.is_empty() {
                    info!(catalog = %cat.name, members = known.len(), "serving the members last applied");
                    self.apply_members(&cat.name, Some(&cat), known, &BTreeMap::new());
                }
            }
            let Some((version, history)) = self
                .catalog
                .load()
                .get(&apex)
                .and_then(|s| Some((s.zone.clone()?, s.history.clone())))
            else {
                continue;
            };
            let (seen, applied) = lock(&self.consumed)
                .get(&cat.name)
                .map(|c| (c.seen.clone(), c.applied))
                .unwrap_or_default();
            if seen.as_ref().is_some_and(|s| Arc::ptr_eq(s, &version)) {
                continue;
            }
            // `coo` properties of the versions since the one last applied
            // (a member handed over and then dropped from this catalog
            // faster than one look). After a restart none is known: the
            // saved member set has no serial.
            let since: Vec<_> = match applied {
                Some(serial) => history
                    .iter()
                    .filter(|d| crate::zone::serial::is_newer(d.to_serial(), serial))
                    .cloned()
                    .collect(),
                None => Vec::new(),
            };
            let coo_seen = catz::coo_added(&apex, &since);
            let applied = match catz::members(&version) {
                Ok(listed) => {
                    self.apply_members(&cat.name, Some(&cat), listed, &coo_seen);
                    self.catalog_status(&cat.name, None);
                    Some(version.serial())
                }
                Err(e) => {
                    warn!(catalog = %cat.name, serial = version.serial(), error = %e, "invalid catalog; the previous member set stays");
                    self.catalog_status(
                        &cat.name,
                        Some(format!("serial {}: {e}", version.serial())),
                    );
                    applied
                }
            };
            let mut consumed = lock(&self.consumed);
            let c = consumed.entry(cat.name.clone()).or_default();
            c.applied = applied;
            c.seen = Some(version);
        }
    }

    /// Every consumed catalog's reason for not applying its last version.
    pub(super) fn catalog_errors(&self) -> BTreeMap<String, (String, std::time::SystemTime)> {
        lock(&self.consumed)
            .iter()
            .filter_map(|(n, c)| Some((n.clone(), c.error.clone()?)))
            .collect()
    }

    /// Has every consumed catalog applied again on the next pass: the
    /// members' settings may have changed (a config reload), or a zone that
    /// took a member's name may have gone.
    pub(super) fn reapply_catalogs(&self) {
        for c in lock(&self.consumed).values_mut() {
            c.seen = None;
        }
    }

    /// Shown as the catalog zone's `last_error` in `status` (kept apart
    /// from the zone's own: a transfer that succeeds does not clear it).
    fn catalog_status(&self, catalog: &str, error: Option<String>) {
        lock(&self.consumed)
            .entry(catalog.to_string())
            .or_default()
            .error = error.map(|e| {
            (
                format!("catalog not applied: {e}"),
                std::time::SystemTime::now(),
            )
        });
    }

    /// Makes the members of `catalog` those `listed` (`cat` None: the
    /// catalog is gone, so are they).
    /// `coo_seen`: member id → new owner, from versions read past.
    fn apply_members(
        &self,
        catalog: &str,
        cat: Option<&CatalogConfig>,
        listed: BTreeMap<String, Member>,
        coo_seen: &BTreeMap<String, String>,
    ) {
        let mine = ZoneOrigin::Catalog(catalog.to_string());
        let (before, same_cfg, adopted) = lock(&self.consumed)
            .get_mut(catalog)
            .map(|c| {
                (
                    c.members.clone(),
                    c.cfg.as_ref() == cat,
                    std::mem::take(&mut c.adopted),
                )
            })
            .unwrap_or_default();
        // Other catalogs' served versions, parsed once per pass.
        let mut listings = BTreeMap::new();
        let (mut added, mut removed, mut reset) = (0, 0, 0);
        for (name, old) in &before {
            if listed.contains_key(name) {
                continue;
            }
            let owner = lock(&self.zones).get(name).map(|r| r.origin.clone());
            if owner != Some(mine.clone()) {
                continue;
            }
            // RFC 9432 §5.6: a member moving to the catalog its `coo` names
            // keeps its data when that catalog lists it (in the version
            // applied, or in the one served and not yet applied). The
            // newest `coo` wins; one naming this catalog means nothing.
            let coo = coo_seen
                .get(&old.id)
                .or(old.coo.as_ref())
                .filter(|to| to.as_str() != catalog);
            if let Some(to) = coo
                && self.lists(to, name, &mut listings)
            {
                if let Some(r) = lock(&self.zones).get_mut(name) {
                    r.origin = ZoneOrigin::Catalog(to.clone());
                }
                // Its settings become the new owner's at that catalog's
                // next pass, which also drops it if no longer listed.
                if let Some(c) = lock(&self.consumed).get_mut(to) {
                    c.members.remove(name);
                    c.adopted.insert(name.clone());
                    c.seen = None;
                }
                info!(zone = %name, from = %catalog, to = %to, "member handed over (coo)");
                continue;
            }
            self.drop_member(name);
            removed += 1;
        }
        if let Some(cat) = cat {
            for (name, m) in &listed {
                // Listed as before, with the same settings, and still ours:
                // nothing to do (without this, one member added cost every
                // member's settings rebuilt: 1.3 s of CPU for 10,000).
                if same_cfg
                    && before.get(name) == Some(m)
                    && lock(&self.zones)
                        .get(name)
                        .is_some_and(|r| r.origin == mine)
                {
                    continue;
                }
                match self.member_change(catalog, cat, m, before.get(name)) {
                    Ok(Change::Added) => added += 1,
                    Ok(Change::Reset) => reset += 1,
                    Ok(Change::None) => {}
                    Err(e) => {
                        warn!(catalog = %catalog, zone = %name, error = %e, "member not served")
                    }
                }
            }
        }
        // Handed over to this catalog, no longer listed by it.
        for name in adopted.iter().filter(|n| !listed.contains_key(*n)) {
            if lock(&self.zones)
                .get(name)
                .is_some_and(|r| r.origin == mine)
            {
                self.drop_member(name);
                removed += 1;
            }
        }
        let count = listed.len();
        if cat.is_some() {
            self.save_members(catalog, &listed);
        }
        let mut consumed = lock(&self.consumed);
        let c = consumed.entry(catalog.to_string()).or_default();
        c.members = listed;
        c.cfg = cat.cloned();
        if added + removed + reset > 0 {
            info!(catalog = %catalog, members = count, added, removed, reset, "catalog applied");
        }
    }

    fn member_change(
        &self,
        catalog: &str,
        cat: &CatalogConfig,
        m: &Member,
        before: Option<&Member>,
    ) -> Result<Change, ZoneChangeError> {
        let mine = ZoneOrigin::Catalog(catalog.to_string());
        let zc = {
            let cfg = lock(&self.cfg);
            config::zone_from_json(
                &cat.member_json(&m.name, m.group.as_deref()),
                &format!("catalog {catalog}"),
                &cfg.server,
                &cfg.keys,
            )
            .map_err(|e| ZoneChangeError::Invalid(e.to_string()))?
        };
        // Who hands this member over (coo), read before `zones` is taken.
        let coo_from: Vec<String> = lock(&self.consumed)
            .iter()
            .filter(|(_, c)| c.members.get(&m.name).and_then(|o| o.coo.as_deref()) == Some(catalog))
            .map(|(name, _)| name.clone())
            .collect();
        let mut zones = lock(&self.zones);
        match zones.get_mut(&m.name) {
            None => {
                zones.insert(m.name.clone(), self.start_zone(zc, mine));
                Ok(Change::Added)
            }
            Some(r) if r.origin == mine => {
                // RFC 9432 §5.3: a new unique id resets the member.
                if before.is_some_and(|b| b.id != m.id) {
                    // Under the same lock throughout: nothing else can take
                    // the name between the old zone's end and the new start.
                    let Some(old) = zones.remove(&m.name) else {
                        return Ok(Change::None);
                    };
                    let _ = self.forget(old);
                    info!(zone = %m.name, catalog = %catalog, id = %m.id, "member's unique id changed; its copy is dropped and it transfers afresh");
                    let fresh = self.start_zone(zc, mine);
                    zones.insert(m.name.clone(), fresh);
                    return Ok(Change::Reset);
                }
                if r.cfg != zc {
                    self.reconfigure_zone(r, zc);
                }
                Ok(Change::None)
            }
            Some(r) => {
                let from_coo =
                    matches!(&r.origin, ZoneOrigin::Catalog(other) if coo_from.contains(other));
                if from_coo {
                    r.origin = mine;
                    self.reconfigure_zone(r, zc);
                    info!(zone = %m.name, catalog = %catalog, "member taken over (coo)");
                    return Ok(Change::None);
                }
                if before.is_none() {
                    warn!(zone = %m.name, catalog = %catalog, served_from = r.origin.label(), "member also served from elsewhere; that one wins");
                }
                Ok(Change::None)
            }
        }
    }

    /// Does the consumed catalog `catalog` list `member`, in the version
    /// applied or in the one it serves now (parsed once into `listings`)?
    fn lists(
        &self,
        catalog: &str,
        member: &str,
        listings: &mut BTreeMap<String, BTreeMap<String, Member>>,
    ) -> bool {
        match lock(&self.consumed).get(catalog) {
            None => return false,
            Some(c) if c.members.contains_key(member) => return true,
            Some(_) => {}
        }
        listings
            .entry(catalog.to_string())
            .or_insert_with(|| {
                crate::zone::name::lower_wire(catalog)
                    .and_then(|apex| self.catalog.load().get(&apex).and_then(|s| s.zone.clone()))
                    .and_then(|v| catz::members(&v).ok())
                    .unwrap_or_default()
            })
            .contains_key(member)
    }

    fn members_path(&self, catalog: &str) -> std::path::PathBuf {
        let stem = crate::fsutil::zone_file_stem(catalog);
        self.data_dir().join(format!("{stem}members"))
    }

    /// The member set last applied, as saved (none: empty).
    fn saved_members(&self, catalog: &str) -> BTreeMap<String, Member> {
        let path = self.members_path(catalog);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice::<Vec<Member>>(&bytes)
                .map(|v| v.into_iter().map(|m| (m.name.clone(), m)).collect())
                .unwrap_or_else(|e| {
                    warn!(path = %path.display(), error = %e, "saved member list unreadable; waiting for the catalog");
                    BTreeMap::new()
                }),
            Err(_) => BTreeMap::new(),
        }
    }

    /// Saves the member set just applied (atomically), so a restart serves
    /// it even when the catalog's saved copy is a version that failed.
    fn save_members(&self, catalog: &str, members: &BTreeMap<String, Member>) {
        let list: Vec<&Member> = members.values().collect();
        let path = self.members_path(catalog);
        let written = serde_json::to_vec(&list)
            .map_err(std::io::Error::other)
            .and_then(|b| crate::fsutil::write_atomic(&path, &b));
        if let Err(e) = written {
            warn!(catalog = %catalog, path = %path.display(), error = %e, "could not save the member list");
        }
    }

    /// Stops a member and deletes its files.
    fn drop_member(&self, name: &str) {
        if let Some(r) = lock(&self.zones).remove(name) {
            let files = self.forget(r).len();
            info!(zone = %name, files, "member removed from its catalog; no longer served");
        }
    }

    /// Stops a zone and deletes what tandem kept of it in data_dir (a
    /// primary's zone file stays); returns the files deleted.
    pub(super) fn forget(&self, r: Running) -> Vec<std::path::PathBuf> {
        let name = r.cfg.name.clone();
        let copy = (r.cfg.role == Role::Secondary).then(|| r.cfg.file.clone());
        self.stop_zone(r, true);
        runtime_zones::remove_files(&self.data_dir(), &name, copy.as_deref())
    }
}

enum Change {
    Added,
    Reset,
    None,
}
