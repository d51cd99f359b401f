//! Zones added at run time through the control API (`POST /zones`,
//! `tandem zone add`): where a zone's settings come from, the list kept in
//! `data_dir/zones.json` so they survive a restart, and the files a removed
//! zone leaves in `data_dir`.

use crate::fsutil;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Where a served zone's settings come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ZoneOrigin {
    /// The TOML file (the source of truth for what it lists).
    Config,
    /// The control API; kept in `zones.json`.
    Api,
    /// A member of the catalog zone so named (RFC 9432).
    Catalog(String),
}

impl ZoneOrigin {
    pub fn label(&self) -> &str {
        match self {
            ZoneOrigin::Config => "config",
            ZoneOrigin::Api => "api",
            ZoneOrigin::Catalog(c) => c,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a JSON list of zones: {source}")]
    Format {
        path: PathBuf,
        source: serde_json::Error,
    },
}

/// The API-added zones by name, each as the JSON it was given.
pub struct Store {
    path: PathBuf,
    zones: BTreeMap<String, serde_json::Value>,
    /// Set when the list could not be read: writing it would lose it.
    unread: Option<String>,
}

impl Store {
    pub fn path_in(data_dir: &Path) -> PathBuf {
        data_dir.join("zones.json")
    }

    /// Reads `data_dir/zones.json` (none yet: an empty list). A file that
    /// cannot be read (a broken `data_dir`) is logged by the caller from
    /// `unread()`; the server serves on and refuses to change the list.
    pub fn open(data_dir: &Path) -> Result<Store, StoreError> {
        let path = Self::path_in(data_dir);
        let mut unread = None;
        let zones = match std::fs::read(&path) {
            Ok(bytes) => {
                let list: Vec<(String, serde_json::Value)> = serde_json::from_slice(&bytes)
                    .map_err(|source| StoreError::Format {
                        path: path.clone(),
                        source,
                    })?;
                list.into_iter().collect()
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => {
                unread = Some(format!("{}: {e}", path.display()));
                BTreeMap::new()
            }
        };
        Ok(Store {
            path,
            zones,
            unread,
        })
    }

    /// Why the list could not be read, if it could not.
    pub fn unread(&self) -> Option<&str> {
        self.unread.as_deref()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn zones(&self) -> impl Iterator<Item = (&String, &serde_json::Value)> {
        self.zones.iter()
    }

    pub fn contains(&self, name: &str) -> bool {
        self.zones.contains_key(name)
    }

    /// Adds or removes a zone and writes the list (atomically) before
    /// returning; on failure the list in memory is what it was.
    pub fn set(&mut self, name: &str, v: Option<serde_json::Value>) -> Result<(), StoreError> {
        if let Some(why) = &self.unread {
            return Err(StoreError::Io {
                path: self.path.clone(),
                source: std::io::Error::other(format!(
                    "the list could not be read ({why}); not changed"
                )),
            });
        }
        let before = match v {
            Some(v) => self.zones.insert(name.to_string(), v),
            None => self.zones.remove(name),
        };
        let list: Vec<(&String, &serde_json::Value)> = self.zones.iter().collect();
        // write_atomic makes data_dir if it is not there yet.
        let written = serde_json::to_vec_pretty(&list)
            .map_err(std::io::Error::other)
            .and_then(|bytes| fsutil::write_atomic(&self.path, &bytes));
        if let Err(source) = written {
            match before {
                Some(old) => self.zones.insert(name.to_string(), old),
                None => self.zones.remove(name),
            };
            return Err(StoreError::Io {
                path: self.path.clone(),
                source,
            });
        }
        Ok(())
    }
}

/// Removes what tandem keeps in `data_dir` for zone `name` (its journal
/// segments, timers, serial state, and a secondary's `copy` when it lies in
/// `data_dir`): a removed zone leaves nothing behind (Knot and NSD leave
/// the files). A primary's zone file is the operator's and stays, wherever
/// it is (`copy` is None for a primary). Returns the files removed.
pub fn remove_files(data_dir: &Path, name: &str, copy: Option<&Path>) -> Vec<PathBuf> {
    let stem = crate::fsutil::zone_file_stem(name);
    let mut removed = Vec::new();
    // The names tandem gives a zone's files, asked for one by one: listing
    // a data_dir of 10,000 catalog members for every removal would not do.
    for suffix in ["timers", "state", "journal", "members"] {
        let path = data_dir.join(format!("{stem}{suffix}"));
        if std::fs::remove_file(&path).is_ok() {
            removed.push(path);
        }
    }
    let segments = crate::xfr::journal::segment_dir(&data_dir.join(format!("{stem}journal")));
    if let Ok(entries) = std::fs::read_dir(&segments) {
        for e in entries.flatten() {
            if std::fs::remove_file(e.path()).is_ok() {
                removed.push(e.path());
            }
        }
        let _ = std::fs::remove_dir(&segments);
    }
    if let Some(c) = copy
        && c.starts_with(data_dir)
        && std::fs::remove_file(c).is_ok()
    {
        removed.push(c.to_path_buf());
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_survives_a_reopen_and_files_of_a_zone_are_found() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        s.set(
            "a.test.",
            Some(serde_json::json!({"name": "a.test.", "role": "secondary"})),
        )
        .unwrap();
        s.set("b.test.", Some(serde_json::json!({"name": "b.test."})))
            .unwrap();
        s.set("b.test.", None).unwrap();
        let s = Store::open(dir.path()).unwrap();
        let names: Vec<&String> = s.zones().map(|(n, _)| n).collect();
        assert_eq!(names, ["a.test."]);

        std::fs::create_dir(dir.path().join("a.test.journal.d")).unwrap();
        for f in [
            "a.test.zone",
            "a.test.journal.d/3",
            "a.test.timers",
            "ab.test.zone",
            "a.test.zone.keep",
        ] {
            std::fs::write(dir.path().join(f), b"x").unwrap();
        }
        let mut gone = remove_files(dir.path(), "a.test.", Some(&dir.path().join("a.test.zone")));
        gone.sort();
        assert_eq!(gone.len(), 3, "{gone:?}");
        // A primary's file (no copy given) stays.
        std::fs::write(dir.path().join("a.test.zone"), b"x").unwrap();
        assert!(remove_files(dir.path(), "a.test.", None).is_empty());
        assert!(dir.path().join("a.test.zone").exists());
        assert!(dir.path().join("ab.test.zone").exists());
        assert!(dir.path().join("a.test.zone.keep").exists());
    }
}
