//! Reading a large text in chunks, all at once, ahead of their turn.
//!
//! The text is cut at line starts that look like the start of an entry
//! (a name at the start of a line); each chunk is read on any free core
//! from a guess of the state its first entry inherits (the state after the
//! text's first lines: origin, `$TTL`, last TTL, last owner). A chunk read
//! so holds only if, when its turn comes, the chunk before ended exactly at
//! its start (no entry — parentheses, a quoted string — ran across the
//! cut) and every guess it relied on proves true; the caller checks that
//! (`Chunk::holds`) and reads any chunk that does not hold again in turn.

use super::reader::{Carry, Reader, Stop};
use crate::zone::stage::{Mark, Stager};
use crate::zone::{NameHasher, workers};

/// One chunk as read ahead: where its records are, the state it ended in,
/// and why it stopped (lines counted from 1 at its start).
pub struct Chunk {
    /// The thread (and so the stager) that read it.
    pub stager: usize,
    pub from: Mark,
    pub to: Mark,
    pub carry: Carry,
    pub stop: Result<Stop, (usize, String)>,
}

impl Chunk {
    /// Whether this chunk, read from `guess`, is what reading it in turn
    /// from `truth` at `pos` would give.
    pub fn holds(&self, start: usize, pos: usize, guess: &Carry, truth: &Carry) -> bool {
        start == pos && self.carry.fits(guess, truth)
    }
}

/// Cuts `text[from..]` into chunks of about `len` bytes: the returned
/// bounds start with `from` and end with the text's length. A cut is made
/// only where a line starts with a character that starts a name.
pub fn cut(text: &[u8], from: usize, len: usize) -> Vec<usize> {
    let mut bounds = vec![from];
    let mut target = from.saturating_add(len.max(1));
    while target < text.len() {
        let Some(nl) = text[target..].iter().position(|&c| c == b'\n') else {
            break;
        };
        let mut at = target + nl + 1;
        // The first line start after the target where a name starts.
        while at < text.len() && !starts_name(text[at]) {
            match text[at..].iter().position(|&c| c == b'\n') {
                Some(nl) => at += nl + 1,
                None => at = text.len(),
            }
        }
        if at >= text.len() {
            break;
        }
        bounds.push(at);
        target = at.saturating_add(len.max(1));
    }
    bounds.push(text.len());
    bounds.dedup();
    bounds
}

/// A character that, at the start of a line, starts an entry with an owner
/// (not blank space, a comment, a parenthesis or a quote).
fn starts_name(c: u8) -> bool {
    !matches!(c, b' ' | b'\t' | b'\r' | b'\n' | b';' | b'(' | b')' | b'"')
}

/// What reading every chunk ahead gives: the stagers (one per thread) and
/// each chunk, in order.
pub struct Read {
    pub stagers: Vec<Stager>,
    pub chunks: Vec<Chunk>,
}

/// Reads the chunks of `text` between `bounds` on `threads` threads, each
/// from `guess`, in a file nested `depth` deep.
pub fn read(
    text: &[u8],
    bounds: &[usize],
    guess: &Carry,
    depth: usize,
    apex: &[u8],
    hasher: &NameHasher,
    threads: usize,
) -> Read {
    let (stagers, chunks) = workers::run(
        bounds.windows(2),
        threads,
        |t| (t, Stager::new(apex, hasher)),
        |(t, stager), w| {
            let from = stager.mark();
            let mut reader = Reader::new(guess.clone(), depth);
            let stop = reader.read(stager, text, w[0], w[1], 1);
            Chunk {
                stager: *t,
                from,
                to: stager.mark(),
                carry: reader.carry,
                stop,
            }
        },
    );
    Read {
        stagers: stagers.into_iter().map(|(_, s)| s).collect(),
        chunks,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_where_a_name_starts_a_line() {
        let text = b"a 1\n b 2\n;c\n(d)\nd 3\ne 4\n";
        assert_eq!(cut(text, 0, 1), vec![0, 16, 20, 24]);
        assert_eq!(cut(text, 0, 100), vec![0, 24]);
        assert_eq!(cut(text, 20, 100), vec![20, 24]);
        assert_eq!(cut(b"", 0, 1), vec![0]);
    }
}
