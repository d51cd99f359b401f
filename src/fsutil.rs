//! Crash-safe file writes: temp file in the same directory, fsync, rename,
//! fsync the directory. A reader sees the old file or the new one, never a
//! torn one. Small records written before every publish (a primary's
//! served serial, a secondary's timers) use `write_slot` instead: one fsync
//! rather than two.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
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
    let dir = dir_of(path);
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
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// The directory `path` is in (`.` for a bare file name).
pub fn dir_of(path: &Path) -> &Path {
    path.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Makes the entries of `dir` (files created, renamed or removed in it)
/// durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// A file name for per-zone state: the zone name with `/` escaped.
pub fn zone_file_stem(zone_name: &str) -> String {
    if zone_name == "." {
        "root.".to_string()
    } else {
        zone_name.replace('/', "%2F")
    }
}

// ---- two checksummed slots, overwritten in turn -------------------------
//
// A record of PAYLOAD octets lives in a file of two slots (magic,
// generation, payload, CRC-32). Each write overwrites the older slot in
// place and syncs once; a write torn by a crash fails its checksum and the
// other slot — the record as it was before — is read. Only creating the
// file goes through `write_atomic`.

pub const SLOT_PAYLOAD: usize = 24;
const SLOT_MAGIC: &[u8; 4] = b"TDS2";
const SLOT: usize = 4 + 8 + SLOT_PAYLOAD + 4;

fn encode_slot(generation: u64, payload: &[u8; SLOT_PAYLOAD]) -> [u8; SLOT] {
    let mut b = [0u8; SLOT];
    b[..4].copy_from_slice(SLOT_MAGIC);
    b[4..12].copy_from_slice(&generation.to_be_bytes());
    b[12..12 + SLOT_PAYLOAD].copy_from_slice(payload);
    let crc = crc32fast::hash(&b[..SLOT - 4]);
    b[SLOT - 4..].copy_from_slice(&crc.to_be_bytes());
    b
}

/// The newest whole slot of `bytes`: (its index, generation, payload).
fn newest_slot(bytes: &[u8]) -> Option<(usize, u64, [u8; SLOT_PAYLOAD])> {
    (0..2)
        .filter_map(|i| {
            let b = bytes.get(i * SLOT..(i + 1) * SLOT)?;
            if &b[..4] != SLOT_MAGIC
                || crc32fast::hash(&b[..SLOT - 4]).to_be_bytes() != b[SLOT - 4..]
            {
                return None;
            }
            let generation = u64::from_be_bytes(b[4..12].try_into().ok()?);
            let payload: [u8; SLOT_PAYLOAD] = b[12..12 + SLOT_PAYLOAD].try_into().ok()?;
            Some((i, generation, payload))
        })
        .max_by_key(|&(_, g, _)| g)
}

/// The record last written whole, if the file is a slot file.
pub fn read_slot(bytes: &[u8]) -> Option<[u8; SLOT_PAYLOAD]> {
    newest_slot(bytes).map(|(_, _, p)| p)
}

/// Writes `payload` over the older slot of `path` (creating the file whole
/// if it is missing or not a slot file) and syncs it.
pub fn write_slot(path: &Path, payload: &[u8; SLOT_PAYLOAD]) -> std::io::Result<()> {
    let in_place = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .ok()
        .and_then(|mut f| {
            let mut bytes = [0u8; 2 * SLOT];
            f.read_exact(&mut bytes).ok()?;
            let (slot, generation, _) = newest_slot(&bytes)?;
            // At the last generation the file is written anew from 1.
            Some((f, 1 - slot, generation.checked_add(1)?))
        });
    let Some((mut f, slot, generation)) = in_place else {
        let mut bytes = [0u8; 2 * SLOT];
        bytes[..SLOT].copy_from_slice(&encode_slot(1, payload));
        return write_atomic(path, &bytes);
    };
    f.seek(SeekFrom::Start((slot * SLOT) as u64))?;
    f.write_all(&encode_slot(generation, payload))?;
    f.sync_data()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(n: u8) -> [u8; SLOT_PAYLOAD] {
        [n; SLOT_PAYLOAD]
    }

    #[test]
    fn the_newest_whole_slot_wins_and_a_torn_one_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("rec");
        let read = || read_slot(&std::fs::read(&p).unwrap_or_default());
        assert_eq!(read(), None);
        for n in 1..=5 {
            write_slot(&p, &payload(n)).unwrap();
            assert_eq!(read(), Some(payload(n)));
        }
        // Tear the slot just written (5): 4 is read.
        let mut bytes = std::fs::read(&p).unwrap();
        let (slot, _, _) = newest_slot(&bytes).unwrap();
        bytes[slot * SLOT + 13] ^= 0xff;
        std::fs::write(&p, &bytes).unwrap();
        assert_eq!(read(), Some(payload(4)));
        // The next write goes over the torn slot, not the good one.
        write_slot(&p, &payload(6)).unwrap();
        assert_eq!(read(), Some(payload(6)));
        let bytes = std::fs::read(&p).unwrap();
        let other = 1 - slot;
        assert_eq!(
            read_slot(&[&bytes[other * SLOT..(other + 1) * SLOT], &[0u8; SLOT][..]].concat()),
            Some(payload(4))
        );
    }
}
