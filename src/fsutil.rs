//! Crash-safe file writes: temp file in the same directory, fsync, rename,
//! fsync the directory. A reader sees the old file or the new one, never a
//! torn one.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::Path;

pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_atomic_with(path, |w| w.write_all(bytes))
}

/// As `write_atomic`, the contents written by `fill` (buffered), so that a
/// large file need not be held in memory whole.
pub fn write_atomic_with(
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let result = (|| {
        let mut f = BufWriter::with_capacity(1 << 20, File::create(&tmp)?);
        fill(&mut f)?;
        let f = f.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// A file name for per-zone state: the zone name with `/` escaped.
pub fn zone_file_stem(zone_name: &str) -> String {
    if zone_name == "." {
        "root.".to_string()
    } else {
        zone_name.replace('/', "%2F")
    }
}
