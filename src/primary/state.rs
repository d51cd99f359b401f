//! What a primary remembers across restarts: the serial it last served and
//! a hash of that version's content, so a restart never serves an older
//! serial and can tell whether the file changed while it was down. Written
//! before every publish, so it is a slot file (`fsutil::write_slot`: one
//! fsync on the save → served path).

use crate::fsutil::{SLOT_PAYLOAD, read_slot, write_slot};
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct State {
    pub serial: u32,
    pub content: u64,
}

/// The text form written before slot files (read so an upgrade keeps its
/// serial).
fn read_text(text: &str) -> Option<State> {
    let mut serial = None;
    let mut content = None;
    for line in text.lines() {
        match line.split_once('=') {
            Some(("serial", v)) => serial = v.trim().parse().ok(),
            Some(("content", v)) => content = u64::from_str_radix(v.trim(), 16).ok(),
            _ => {}
        }
    }
    Some(State {
        serial: serial?,
        content: content?,
    })
}

pub fn read(path: &Path) -> Option<State> {
    let bytes = std::fs::read(path).ok()?;
    if bytes.starts_with(b"serial=") {
        return read_text(std::str::from_utf8(&bytes).ok()?);
    }
    let p = read_slot(&bytes)?;
    Some(State {
        serial: u32::from_be_bytes(p[0..4].try_into().ok()?),
        content: u64::from_be_bytes(p[4..12].try_into().ok()?),
    })
}

pub fn write(path: &Path, s: State) -> std::io::Result<()> {
    let mut p = [0u8; SLOT_PAYLOAD];
    p[0..4].copy_from_slice(&s.serial.to_be_bytes());
    p[4..12].copy_from_slice(&s.content.to_be_bytes());
    write_slot(path, &p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_states_read_back_and_the_text_form_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("z.state");
        assert_eq!(read(&p), None);
        std::fs::write(&p, "serial=42\ncontent=00000000000000ff\n").unwrap();
        let s = State {
            serial: 42,
            content: 0xff,
        };
        assert_eq!(read(&p), Some(s));
        for serial in 43..46 {
            write(&p, State { serial, ..s }).unwrap();
            assert_eq!(read(&p), Some(State { serial, ..s }));
        }
    }
}
