//! What a primary remembers across restarts: the serial it last served and
//! a hash of that version's content, so a restart never serves an older
//! serial and can tell whether the file changed while it was down.

use crate::fsutil::write_atomic;
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct State {
    pub serial: u32,
    pub content: u64,
}

pub fn read(path: &Path) -> Option<State> {
    let text = std::fs::read_to_string(path).ok()?;
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

pub fn write(path: &Path, s: State) -> std::io::Result<()> {
    write_atomic(
        path,
        format!("serial={}\ncontent={:016x}\n", s.serial, s.content).as_bytes(),
    )
}
