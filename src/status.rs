//! What `tandem status` shows: each zone's state and serial and, on a
//! primary, each follower with the serial it reached — the acknowledgment
//! half of the leader-follower loop. Kept in memory, bounded.

use crate::config::{Role, ZoneConfig};
use crate::zone::serial::is_newer;
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

/// Followers remembered per zone; beyond it the longest-unseen unlisted one goes.
const MAX_FOLLOWERS: usize = 256;
/// Unlisted followers not seen for this long are forgotten.
const FOLLOWER_AGE: Duration = Duration::from_secs(7 * 86400);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Loading,
    Serving,
    Refreshing,
    Expired,
    Failed,
    /// Serving, but what it serves cannot be persisted (see `last_error`).
    Degraded,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Loading => "loading",
            State::Serving => "serving",
            State::Refreshing => "refreshing",
            State::Expired => "expired",
            State::Failed => "failed",
            State::Degraded => "degraded",
        }
    }
    pub const ALL: [State; 6] = [
        State::Loading,
        State::Serving,
        State::Refreshing,
        State::Expired,
        State::Failed,
        State::Degraded,
    ];
}

/// What the last check of a follower found (the primary asks each listed
/// follower for the zone's SOA; `xfr::follower`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// It serves the version we serve.
    InSync,
    /// It answers, with an older serial or without the zone.
    Behind,
    /// It does not answer.
    Unreachable,
}

impl Check {
    pub fn name(self) -> &'static str {
        match self {
            Check::InSync => "in_sync",
            Check::Behind => "behind",
            Check::Unreachable => "unreachable",
        }
    }
    pub const ALL: [Check; 3] = [Check::InSync, Check::Behind, Check::Unreachable];
}

#[derive(Debug, Clone)]
struct Follower {
    address: String,
    serial: Option<u32>,
    /// The serial it answered our last SOA check with.
    serving: Option<u32>,
    check: Option<Check>,
    /// Since when it has been behind (reset when in sync).
    behind_since: Option<SystemTime>,
    last_checked: Option<SystemTime>,
    last_seen: Option<SystemTime>,
    seen_at: Option<Instant>,
    notify_acked: Option<bool>,
    listed: bool,
    /// Serials whose propagation time was already counted.
    counted: Option<u32>,
}

impl Follower {
    fn new(address: String, listed: bool) -> Follower {
        Follower {
            address,
            serial: None,
            last_seen: None,
            seen_at: None,
            notify_acked: None,
            listed,
            counted: None,
            serving: None,
            check: None,
            behind_since: None,
            last_checked: None,
        }
    }
}

#[derive(Debug)]
struct Info {
    state: State,
    serial: Option<u32>,
    records: usize,
    last_loaded: Option<SystemTime>,
    next_refresh: Option<SystemTime>,
    expires_at: Option<SystemTime>,
    /// Recent versions and when they were published.
    published: VecDeque<(u32, Instant)>,
    /// What went wrong last (a file that does not load, a refresh that
    /// failed, a version that cannot be saved), until it goes right.
    last_error: Option<(SystemTime, String)>,
    /// Why what is served cannot be persisted, while that lasts.
    degraded: Option<String>,
    /// The last version every listed follower was confirmed serving, and
    /// how long after its publication the last of them was.
    converged: Option<(u32, Duration)>,
}

impl Info {
    fn new(state: State) -> Info {
        Info {
            state,
            serial: None,
            records: 0,
            last_loaded: None,
            next_refresh: None,
            expires_at: None,
            published: VecDeque::new(),
            last_error: None,
            degraded: None,
            converged: None,
        }
    }
}

#[derive(Debug)]
pub struct ZoneStatus {
    pub name: String,
    pub role: Role,
    primaries: Mutex<Vec<crate::config::Primary>>,
    info: Mutex<Info>,
    /// Listed followers (the `notify` addresses) by address; others by IP
    /// with port 0 (their transfers come from any port).
    followers: Mutex<HashMap<SocketAddr, Follower>>,
    /// Queries answered from this zone.
    pub queries: crate::stats::SlottedCounter,
    /// A secondary's expiry deadline (Unix seconds; 0: none), read by the
    /// answer path for the EXPIRE option (RFC 7314).
    expires_unix: AtomicU64,
}

/// RFC 3339 in UTC, seconds precision.
pub fn rfc3339(t: SystemTime) -> String {
    const F: &[time::format_description::BorrowedFormatItem] =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    time::OffsetDateTime::from_unix_timestamp(secs as i64)
        .ok()
        .and_then(|d| d.format(F).ok())
        .unwrap_or_default()
}

fn lag(current: Option<u32>, theirs: Option<u32>) -> Option<u32> {
    let (c, t) = (current?, theirs?);
    Some(if is_newer(c, t) { c.wrapping_sub(t) } else { 0 })
}

impl ZoneStatus {
    pub fn new(cfg: &ZoneConfig) -> ZoneStatus {
        let followers = cfg
            .notify
            .iter()
            .map(|a| (*a, Follower::new(a.to_string(), true)))
            .collect();
        ZoneStatus {
            name: cfg.name.clone(),
            role: cfg.role,
            primaries: Mutex::new(cfg.primaries.clone()),
            info: Mutex::new(Info::new(State::Loading)),
            followers: Mutex::new(followers),
            queries: Default::default(),
            expires_unix: AtomicU64::new(0),
        }
    }

    /// The status of a zone outside any config (fuzzing, benchmarks).
    pub fn standalone(name: &str) -> ZoneStatus {
        ZoneStatus {
            name: name.to_string(),
            role: Role::Primary,
            primaries: Mutex::new(Vec::new()),
            info: Mutex::new(Info::new(State::Serving)),
            followers: Mutex::new(HashMap::new()),
            queries: Default::default(),
            expires_unix: AtomicU64::new(0),
        }
    }

    pub fn set_state(&self, s: State) {
        {
            let mut i = crate::supervise::lock(&self.info);
            i.state = s;
        }
    }

    /// The state shown: `degraded` while serving something that cannot be
    /// persisted.
    pub fn state(&self) -> State {
        let i = crate::supervise::lock(&self.info);
        Self::shown(&i)
    }

    fn shown(i: &Info) -> State {
        match (i.state, &i.degraded) {
            (State::Serving | State::Refreshing, Some(_)) => State::Degraded,
            (s, _) => s,
        }
    }

    /// The lifecycle's own state (refreshing, serving…), degradation aside.
    pub fn base_state(&self) -> State {
        crate::supervise::lock(&self.info).state
    }

    /// Records what went wrong (logged by the caller), or that it is over
    /// (while degraded, the reason stays the last error).
    pub fn set_error(&self, e: Option<String>) {
        let mut i = crate::supervise::lock(&self.info);
        i.last_error = match e {
            Some(m) => Some((SystemTime::now(), m)),
            None => i.degraded.clone().map(|d| (SystemTime::now(), d)),
        };
    }

    pub fn is_degraded(&self) -> bool {
        crate::supervise::lock(&self.info).degraded.is_some()
    }

    pub fn last_error(&self) -> Option<String> {
        crate::supervise::lock(&self.info)
            .last_error
            .as_ref()
            .map(|e| e.1.clone())
    }

    /// Serving something that cannot be persisted (and why), or no longer.
    pub fn set_degraded(&self, why: Option<String>) {
        let mut i = crate::supervise::lock(&self.info);
        match &why {
            Some(w) => i.last_error = Some((SystemTime::now(), w.clone())),
            None if i.degraded.is_some() => i.last_error = None,
            None => {}
        }
        i.degraded = why;
    }

    pub fn set_primaries(&self, p: &[crate::config::Primary]) {
        *crate::supervise::lock(&self.primaries) = p.to_vec();
    }

    /// The followers listed in the zone's `notify` (a config reload may
    /// change them); unlisted ones seen transferring are kept.
    pub fn set_listed(&self, notify: &[SocketAddr]) {
        let mut f = crate::supervise::lock(&self.followers);
        f.retain(|k, v| !v.listed || notify.contains(k));
        for a in notify {
            f.entry(*a)
                .or_insert_with(|| Follower::new(a.to_string(), true));
        }
    }

    pub fn serial(&self) -> Option<u32> {
        crate::supervise::lock(&self.info).serial
    }

    pub fn records(&self) -> usize {
        crate::supervise::lock(&self.info).records
    }

    /// A new version is being served. No follower is known to serve it
    /// yet: those in sync become behind until a check finds otherwise.
    pub fn published(&self, serial: u32, records: usize) {
        {
            let now = SystemTime::now();
            for f in crate::supervise::lock(&self.followers).values_mut() {
                if f.check == Some(Check::InSync) && f.serving != Some(serial) {
                    f.check = Some(Check::Behind);
                    f.behind_since = Some(now);
                }
            }
        }
        {
            let mut i = crate::supervise::lock(&self.info);
            i.state = State::Serving;
            i.serial = Some(serial);
            i.records = records;
            i.last_loaded = Some(SystemTime::now());
            i.published.push_back((serial, Instant::now()));
            while i.published.len() > 64 {
                i.published.pop_front();
            }
        }
    }

    /// When a secondary's copy expires (Unix seconds), or `None` once it
    /// has (or while it has no copy).
    pub fn set_expiry(&self, unix: Option<u64>) {
        self.expires_unix
            .store(unix.unwrap_or(0), Ordering::Relaxed);
    }

    /// Seconds until the copy expires (RFC 7314's EXPIRE on a secondary);
    /// `None` when unknown or already past.
    pub fn expires_in(&self) -> Option<u32> {
        let at = self.expires_unix.load(Ordering::Relaxed);
        let now = crate::clock::unix_secs();
        (at > now).then(|| u32::try_from(at - now).unwrap_or(u32::MAX))
    }

    pub fn set_timers(&self, next_refresh: Option<SystemTime>, expires_at: Option<SystemTime>) {
        {
            let mut i = crate::supervise::lock(&self.info);
            i.next_refresh = next_refresh;
            i.expires_at = expires_at;
        }
    }

    /// The entries a host at `ip` stands for: the listed followers at that
    /// address (several secondaries may share one host), else its own entry.
    fn entries_for(f: &mut HashMap<SocketAddr, Follower>, ip: IpAddr) -> Vec<SocketAddr> {
        let listed: Vec<SocketAddr> = f
            .keys()
            .filter(|k| k.port() != 0 && k.ip() == ip)
            .copied()
            .collect();
        if !listed.is_empty() {
            return listed;
        }
        let key = SocketAddr::new(ip, 0);
        if !f.contains_key(&key) && f.len() >= MAX_FOLLOWERS {
            let now = Instant::now();
            f.retain(|_, v| {
                v.listed
                    || v.seen_at
                        .is_some_and(|t| now.duration_since(t) < FOLLOWER_AGE)
            });
            if f.len() >= MAX_FOLLOWERS
                && let Some(oldest) = f
                    .iter()
                    .filter(|(_, v)| !v.listed)
                    .min_by_key(|(_, v)| v.seen_at)
                    .map(|(k, _)| *k)
            {
                f.remove(&oldest);
            }
        }
        f.entry(key)
            .or_insert_with(|| Follower::new(ip.to_string(), false));
        vec![key]
    }

    /// A follower showed up (SOA, IXFR or AXFR); `reached` is the serial it
    /// has (from its IXFR request) or just transferred.
    pub fn follower_seen(&self, peer: IpAddr, reached: Option<u32>) {
        let mut f = crate::supervise::lock(&self.followers);
        for key in Self::entries_for(&mut f, peer) {
            let Some(e) = f.get_mut(&key) else { continue };
            e.last_seen = Some(SystemTime::now());
            e.seen_at = Some(Instant::now());
            if let Some(s) = reached
                && e.serial.is_none_or(|old| is_newer(s, old))
            {
                e.serial = Some(s);
            }
        }
    }

    /// A follower transferred version `serial`: counts how long that version
    /// took to get there, once per follower and version.
    pub fn follower_transferred(&self, peer: IpAddr, serial: u32) {
        self.follower_seen(peer, Some(serial));
        let published = crate::supervise::lock(&self.info)
            .published
            .iter()
            .find(|(s, _)| *s == serial)
            .map(|(_, t)| *t);
        let mut f = crate::supervise::lock(&self.followers);
        let Some(t) = published else { return };
        for key in Self::entries_for(&mut f, peer) {
            if let Some(e) = f.get_mut(&key)
                && e.counted != Some(serial)
            {
                e.counted = Some(serial);
                crate::stats::METRICS
                    .propagation
                    .observe(t.elapsed().as_secs_f64());
            }
        }
    }

    /// Records a check of the listed follower `target`: the serial it
    /// serves (`Ok(None)`: it answers without the zone), or `Err` when it
    /// did not answer. Returns what it is now. When it is the last listed
    /// follower to serve the current version, that version has converged:
    /// the time from its publication is kept and observed.
    pub fn follower_checked(&self, target: SocketAddr, found: Result<Option<u32>, ()>) -> Check {
        let (current, published) = {
            let i = crate::supervise::lock(&self.info);
            let published = i
                .serial
                .and_then(|s| i.published.iter().rev().find(|(p, _)| *p == s))
                .map(|(_, t)| *t);
            (i.serial, published)
        };
        let now = SystemTime::now();
        let (check, all_in_sync) = {
            let mut f = crate::supervise::lock(&self.followers);
            let Some(e) = f.get_mut(&target) else {
                return Check::Unreachable;
            };
            let check = match found {
                Err(()) => Check::Unreachable,
                Ok(Some(s)) if Some(s) == current || current.is_some_and(|c| is_newer(s, c)) => {
                    Check::InSync
                }
                Ok(_) => Check::Behind,
            };
            e.last_checked = Some(now);
            e.check = Some(check);
            if let Ok(s) = found {
                e.serving = s;
                if let Some(s) = s
                    && e.serial.is_none_or(|old| is_newer(s, old))
                {
                    e.serial = Some(s);
                }
            }
            match check {
                Check::InSync => e.behind_since = None,
                _ => {
                    e.behind_since.get_or_insert(now);
                }
            }
            let all = f.values().filter(|v| v.listed).all(|v| {
                v.check == Some(Check::InSync)
                    && v.serving
                        .zip(current)
                        .is_some_and(|(s, c)| s == c || is_newer(s, c))
            });
            (check, all)
        };
        if all_in_sync && let (Some(serial), Some(at)) = (current, published) {
            let mut i = crate::supervise::lock(&self.info);
            if i.converged.is_none_or(|(s, _)| s != serial) {
                let took = at.elapsed();
                i.converged = Some((serial, took));
                crate::stats::METRICS
                    .convergence
                    .observe(took.as_secs_f64());
            }
        }
        check
    }

    /// How many listed followers are in each check state (unchecked ones
    /// are not counted), in `Check::ALL` order.
    pub fn follower_states(&self) -> [usize; 3] {
        let mut n = [0; 3];
        for v in crate::supervise::lock(&self.followers).values() {
            if let Some(c) = v.check {
                n[Check::ALL.iter().position(|x| *x == c).unwrap_or(0)] += 1;
            }
        }
        n
    }

    pub fn notify_result(&self, target: SocketAddr, acked: bool) {
        if let Some(e) = crate::supervise::lock(&self.followers).get_mut(&target) {
            e.notify_acked = Some(acked);
        }
    }

    pub fn json(&self) -> Value {
        let t = |x: Option<SystemTime>| x.map(rfc3339);
        let mut z = json!({
            "name": self.name,
            "role": match self.role { Role::Primary => "primary", Role::Secondary => "secondary" },
        });
        let Some(obj) = z.as_object_mut() else {
            return z;
        };
        let serial = {
            let i = crate::supervise::lock(&self.info);
            {
                obj.insert("state".into(), json!(Self::shown(&i).name()));
                if let Some((at, msg)) = &i.last_error {
                    obj.insert("last_error".into(), json!(msg));
                    obj.insert("last_error_at".into(), json!(rfc3339(*at)));
                }
                obj.insert("serial".into(), json!(i.serial));
                // Converged: every listed follower was seen serving the
                // current version.
                let converged = i.converged.filter(|(s, _)| Some(*s) == i.serial);
                obj.insert("converged".into(), json!(converged.is_some()));
                obj.insert(
                    "convergence_ms".into(),
                    json!(i.converged.map(|(_, d)| d.as_millis() as u64)),
                );
                obj.insert(
                    "converged_serial".into(),
                    json!(i.converged.map(|(s, _)| s)),
                );
                obj.insert("records".into(), json!(i.records));
                obj.insert("last_loaded".into(), json!(t(i.last_loaded)));
                if self.role == Role::Secondary {
                    obj.insert(
                        "primaries".into(),
                        json!(
                            crate::supervise::lock(&self.primaries)
                                .iter()
                                .map(|p| p.to_string())
                                .collect::<Vec<_>>()
                        ),
                    );
                    obj.insert("next_refresh".into(), json!(t(i.next_refresh)));
                    obj.insert("expires_at".into(), json!(t(i.expires_at)));
                }
                i.serial
            }
        };
        let mut followers: Vec<Value> = crate::supervise::lock(&self.followers)
            .values()
            .map(|v| {
                json!({
                    "address": v.address,
                    "serial": v.serial,
                    "lag_serials": lag(serial, v.serving.or(v.serial)),
                    "last_seen": t(v.last_seen),
                    "notify_acked": v.notify_acked,
                    "serving_serial": v.serving,
                    "state": v.check.map(Check::name),
                    "behind_since": t(v.behind_since),
                    "last_checked": t(v.last_checked),
                })
            })
            .collect();
        followers.sort_by(|a, b| a["address"].as_str().cmp(&b["address"].as_str()));
        obj.insert("followers".into(), Value::Array(followers));
        z
    }

    /// (follower address, serial, lag) for metrics.
    pub fn follower_gauges(&self) -> Vec<(String, u32, u32)> {
        let serial = self.serial();
        crate::supervise::lock(&self.followers)
            .values()
            .filter_map(|v| Some((v.address.clone(), v.serial?, lag(serial, v.serial)?)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_lag() {
        assert_eq!(
            rfc3339(SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_651_200 + 3661)),
            "2026-11-26T01:01:01Z"
        );
        assert_eq!(lag(Some(10), Some(7)), Some(3));
        assert_eq!(lag(Some(1), Some(u32::MAX)), Some(2));
        assert_eq!(lag(Some(5), Some(9)), Some(0));
    }
}
