//! Crash-safe file writes: temp file in the same directory, fsync, rename,
//! fsync the directory. A reader sees the old file or the new one, never a
//! torn one.

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
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
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Small records rewritten often (a primary's served serial, a secondary's
/// timers) live in a file of two fixed slots, `magic ‖ seq ‖ len ‖ crc32 ‖
/// text`. A write goes over the older slot in place and is made durable with
/// `fdatasync`: no new inode, no rename, no directory sync. Creating a file
/// and fsyncing it waits for the filesystem's journal commit, which took up
/// to 36 s on a saturated machine (benches/soak.py); an in-place overwrite
/// took milliseconds. A torn write leaves a bad CRC in that slot, and the
/// other slot — the previous record — is read instead.
const SLOT: usize = 512;
const SLOT_MAGIC: &[u8; 4] = b"TDS1";
const SLOT_HEAD: usize = 4 + 8 + 2 + 4;

fn slot_record(slot: &[u8]) -> Option<(u64, &[u8])> {
    if slot.get(..4)? != SLOT_MAGIC {
        return None;
    }
    let seq = u64::from_le_bytes(slot.get(4..12)?.try_into().ok()?);
    let len = u16::from_le_bytes(slot.get(12..14)?.try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(slot.get(14..18)?.try_into().ok()?);
    let text = slot.get(SLOT_HEAD..SLOT_HEAD + len)?;
    (crc32fast::hash(&slot[4..SLOT_HEAD - 4]) ^ crc32fast::hash(text) == crc).then_some((seq, text))
}

/// The newest valid record of a slot file as text; a file in any other
/// format (written by `write_atomic`) is returned whole.
pub fn read_record(path: &Path) -> Option<String> {
    let bytes = fs::read(path).ok()?;
    if !bytes.starts_with(SLOT_MAGIC) && bytes.get(SLOT..SLOT + 4) != Some(SLOT_MAGIC) {
        return String::from_utf8(bytes).ok();
    }
    let a = bytes.get(..SLOT).and_then(slot_record);
    let b = bytes.get(SLOT..2 * SLOT).and_then(slot_record);
    let (_, text) = match (a, b) {
        (Some(a), Some(b)) => {
            if b.0 > a.0 {
                b
            } else {
                a
            }
        }
        (Some(r), None) | (None, Some(r)) => r,
        (None, None) => return None,
    };
    String::from_utf8(text.to_vec()).ok()
}

/// Writes `text` (at most 494 bytes) as the newest record of a slot file.
pub fn write_record(path: &Path, text: &str) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    let text = text.as_bytes();
    if SLOT_HEAD + text.len() > SLOT {
        return Err(std::io::Error::other("record too long for its slot"));
    }
    let old = fs::read(path).unwrap_or_default();
    let a = old.get(..SLOT).and_then(slot_record).map(|r| r.0);
    let b = old.get(SLOT..2 * SLOT).and_then(slot_record).map(|r| r.0);
    let newest = a.max(b);
    let seq = newest.map_or(1, |s| s + 1);
    let mut slot = vec![0u8; SLOT];
    slot[..4].copy_from_slice(SLOT_MAGIC);
    slot[4..12].copy_from_slice(&seq.to_le_bytes());
    slot[12..14].copy_from_slice(&(text.len() as u16).to_le_bytes());
    let crc = crc32fast::hash(&slot[4..SLOT_HEAD - 4]) ^ crc32fast::hash(text);
    slot[14..18].copy_from_slice(&crc.to_le_bytes());
    slot[SLOT_HEAD..SLOT_HEAD + text.len()].copy_from_slice(text);
    if old.len() != 2 * SLOT || newest.is_none() {
        // A new file (or one in the old text format): built whole, atomically.
        let mut image = slot;
        image.resize(2 * SLOT, 0);
        return write_atomic(path, &image);
    }
    // Over the older slot (or the invalid one), in place.
    let at = if a == newest { SLOT } else { 0 };
    let f = fs::OpenOptions::new().write(true).open(path)?;
    f.write_all_at(&slot, at as u64)?;
    f.sync_data()
}

/// A file name for per-zone state: the zone name with `/` escaped.
pub fn zone_file_stem(zone_name: &str) -> String {
    if zone_name == "." {
        "root.".to_string()
    } else {
        zone_name.replace('/', "%2F")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_records_alternate_and_survive_a_torn_write() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state");
        // The old text format reads as it is.
        fs::write(&p, "serial=1\n").unwrap();
        assert_eq!(read_record(&p).as_deref(), Some("serial=1\n"));
        write_record(&p, "serial=2\n").unwrap();
        assert_eq!(read_record(&p).as_deref(), Some("serial=2\n"));
        write_record(&p, "serial=3\n").unwrap();
        write_record(&p, "serial=4\n").unwrap();
        assert_eq!(read_record(&p).as_deref(), Some("serial=4\n"));
        assert_eq!(fs::metadata(&p).unwrap().len(), 2 * SLOT as u64);
        // Tear the newest slot: the previous record is read, and the next
        // write goes over the torn slot.
        let mut bytes = fs::read(&p).unwrap();
        let newest = (0..2)
            .find(|i| {
                slot_record(&bytes[i * SLOT..(i + 1) * SLOT]).map(|r| r.1) == Some(b"serial=4\n")
            })
            .unwrap();
        bytes[newest * SLOT + SLOT_HEAD] ^= 0xff;
        fs::write(&p, &bytes).unwrap();
        assert_eq!(read_record(&p).as_deref(), Some("serial=3\n"));
        write_record(&p, "serial=5\n").unwrap();
        assert_eq!(read_record(&p).as_deref(), Some("serial=5\n"));
        let bytes = fs::read(&p).unwrap();
        let other = 1 - newest;
        assert_eq!(
            slot_record(&bytes[other * SLOT..(other + 1) * SLOT]).map(|r| r.1),
            Some(&b"serial=3\n"[..])
        );
        assert!(write_record(&p, &"x".repeat(600)).is_err());
    }
}
