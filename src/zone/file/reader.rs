//! Reads the entries of a stretch of master-file text into a `Stager`:
//! records (blank owner = previous owner, TTL and class in either order,
//! rdata by the type table) and the directives `$ORIGIN`, `$TTL` and
//! `$GENERATE`; an `$INCLUDE` stops the reader so its caller can read the
//! file. Errors are (line, message); the caller names the file.
//!
//! What one entry leaves for the next (`Carry`) may start as a guess, for a
//! chunk read ahead of its turn: the reader notes which guesses it relied
//! on, so the chunk can be kept only if they prove true.

use super::lexer::{Lexer, Tok};
use crate::zone::rdata::Soa;
use crate::zone::rdata::parse::{self as rdata, Fields};
use crate::zone::stage::Stager;
use crate::zone::{name, rtype};

/// Nesting limit for `$INCLUDE` (stops include loops).
pub const MAX_INCLUDE_DEPTH: usize = 16;
/// Upper bound on the records one `$GENERATE` may produce.
const MAX_GENERATE: u64 = 1 << 20;

/// One piece of reading state carried from entry to entry.
#[derive(Clone, Debug)]
pub struct Carried<T> {
    value: T,
    /// Set by this reader (else it is what the reader started with).
    own: bool,
    /// Read before this reader set it.
    relied: bool,
}

impl<T: Clone + PartialEq> Carried<T> {
    pub fn known(value: T) -> Self {
        Carried {
            value,
            own: true,
            relied: false,
        }
    }

    fn get(&mut self) -> &T {
        if !self.own {
            self.relied = true;
        }
        &self.value
    }

    fn set(&mut self, value: T) {
        self.value = value;
        self.own = true;
    }

    /// Sets the value in place (no allocation for a value that has room).
    fn set_with(&mut self, f: impl FnOnce(&mut T)) {
        f(&mut self.value);
        self.own = true;
    }

    fn as_guess(&self) -> Self {
        Carried {
            value: self.value.clone(),
            own: false,
            relied: false,
        }
    }

    /// Whether what a reader that started from `guess` did holds when the
    /// true starting value is `truth`.
    fn fits(&self, guess: &T, truth: &T) -> bool {
        !self.relied || guess == truth
    }

    fn absorb(&mut self, later: &Self) {
        if later.own {
            self.value = later.value.clone();
        }
    }
}

/// The state one entry leaves for the next (BIND's rules).
#[derive(Clone, Debug)]
pub struct Carry {
    /// `$ORIGIN` (scoped to a file: an `$INCLUDE` starts its own).
    pub origin: Carried<Vec<u8>>,
    pub default_ttl: Carried<Option<u32>>,
    /// The last TTL written on a record (used when there is no `$TTL`).
    pub last_ttl: Carried<Option<u32>>,
    /// For entries that start with blank space.
    pub last_owner: Carried<Vec<u8>>,
}

impl Carry {
    pub fn new(origin: &[u8]) -> Carry {
        Carry {
            origin: Carried::known(origin.to_vec()),
            default_ttl: Carried::known(None),
            last_ttl: Carried::known(None),
            last_owner: Carried::known(Vec::new()),
        }
    }

    /// This state as a guess for a reader that starts further on.
    pub fn as_guess(&self) -> Carry {
        Carry {
            origin: self.origin.as_guess(),
            default_ttl: self.default_ttl.as_guess(),
            last_ttl: self.last_ttl.as_guess(),
            last_owner: self.last_owner.as_guess(),
        }
    }

    /// Whether a reader that started from `guess` and ended in this state
    /// read as it would have from `truth`.
    pub fn fits(&self, guess: &Carry, truth: &Carry) -> bool {
        self.origin.fits(&guess.origin.value, &truth.origin.value)
            && self
                .default_ttl
                .fits(&guess.default_ttl.value, &truth.default_ttl.value)
            && self
                .last_ttl
                .fits(&guess.last_ttl.value, &truth.last_ttl.value)
            && self
                .last_owner
                .fits(&guess.last_owner.value, &truth.last_owner.value)
    }

    /// The state after a reader that started here ended in `later`.
    pub fn absorb(&mut self, later: &Carry) {
        self.origin.absorb(&later.origin);
        self.default_ttl.absorb(&later.default_ttl);
        self.last_ttl.absorb(&later.last_ttl);
        self.last_owner.absorb(&later.last_owner);
    }

    /// The state an `$INCLUDE`d file starts with: its own origin, the rest
    /// as it is.
    pub fn for_include(&self, origin: Vec<u8>) -> Carry {
        Carry {
            origin: Carried::known(origin),
            ..self.clone()
        }
    }

    /// Back from an `$INCLUDE`: the TTLs and last owner it left, this
    /// file's origin.
    pub fn after_include(&mut self, inner: &Carry) {
        self.default_ttl.set(inner.default_ttl.value);
        self.last_ttl.set(inner.last_ttl.value);
        self.last_owner.set(inner.last_owner.value.clone());
    }
}

/// Why a reader stopped.
#[derive(Debug)]
pub enum Stop {
    /// No entry starts before the end: the reader stands at `pos`, the
    /// start of line `line` (past the end when an entry ran over it).
    End { pos: usize, line: usize },
    /// An `$INCLUDE` on `line` (checked): `file` (as written) is to be read
    /// with `origin`, then reading goes on at `pos`, the start of `next_line`.
    Include {
        file: Vec<u8>,
        origin: Vec<u8>,
        line: usize,
        pos: usize,
        next_line: usize,
    },
}

pub struct Reader {
    pub carry: Carry,
    depth: usize,
    owner: Vec<u8>,
    rdata: Vec<u8>,
}

type Failed = (usize, String);

/// An `$INCLUDE`'s file name (as written) and origin.
type Include = (Vec<u8>, Vec<u8>);

impl Reader {
    /// A reader of a file nested `depth` `$INCLUDE`s deep.
    pub fn new(carry: Carry, depth: usize) -> Reader {
        Reader {
            carry,
            depth,
            owner: Vec::with_capacity(name::MAX_NAME),
            rdata: Vec::with_capacity(1024),
        }
    }

    /// Reads the entries of `text` that start from `from` (the start of
    /// line `line`) and before `end`.
    pub fn read(
        &mut self,
        stager: &mut Stager,
        text: &[u8],
        from: usize,
        end: usize,
        line: usize,
    ) -> Result<Stop, Failed> {
        let mut lx = Lexer::at(text, from, line);
        let mut toks: Vec<Tok> = Vec::with_capacity(16);
        let mut words: Vec<(&[u8], bool)> = Vec::with_capacity(16);
        loop {
            let Some(entry) = lx.next_entry_before(&mut toks, end)? else {
                return Ok(Stop::End {
                    pos: lx.pos(),
                    line: lx.line(),
                });
            };
            words.clear();
            words.extend(toks.iter().map(|t| (lx.text(t), t.quoted)));
            let line = entry.line;
            let first = words[0];
            if !entry.blank_owner && !first.1 && first.0.first() == Some(&b'$') {
                if let Some((file, origin)) = self.directive(stager, &words, line)? {
                    return Ok(Stop::Include {
                        file,
                        origin,
                        line,
                        pos: lx.pos(),
                        next_line: lx.line(),
                    });
                }
            } else {
                self.record(stager, &words, entry.blank_owner, line)
                    .map_err(|m| (line, m))?;
            }
        }
    }

    /// Reads a directive; an `$INCLUDE` is returned (file, origin) to be read.
    fn directive(
        &mut self,
        stager: &mut Stager,
        words: &[(&[u8], bool)],
        line: usize,
    ) -> Result<Option<Include>, Failed> {
        let d = words[0].0.to_ascii_uppercase();
        let arg = |i: usize| words.get(i).map(|w| w.0);
        let e = |m: String| (line, m);
        match &d[..] {
            b"$ORIGIN" => {
                let t = arg(1).ok_or_else(|| e("$ORIGIN needs a name".into()))?;
                let mut o = Vec::new();
                name::from_text(t, Some(self.carry.origin.get()), &mut o)
                    .map_err(|x| e(format!("$ORIGIN: {x}")))?;
                self.carry.origin.set(o);
            }
            b"$TTL" => {
                let t = arg(1).ok_or_else(|| e("$TTL needs a value".into()))?;
                let ttl = rdata::parse_ttl(t)
                    .ok_or_else(|| e(format!("bad $TTL '{}'", String::from_utf8_lossy(t))))?;
                self.carry.default_ttl.set(Some(ttl));
            }
            b"$INCLUDE" => {
                let t = arg(1).ok_or_else(|| e("$INCLUDE needs a file name".into()))?;
                if self.depth >= MAX_INCLUDE_DEPTH {
                    return Err(e("$INCLUDE nested too deeply (include loop?)".into()));
                }
                let mut o = self.carry.origin.get().clone();
                if let Some(ot) = arg(2) {
                    o.clear();
                    name::from_text(ot, Some(self.carry.origin.get()), &mut o)
                        .map_err(|x| e(format!("$INCLUDE origin: {x}")))?;
                }
                return Ok(Some((t.to_vec(), o)));
            }
            b"$GENERATE" => self.generate(stager, words, line)?,
            _ => {
                return Err(e(format!(
                    "unknown directive '{}'",
                    String::from_utf8_lossy(words[0].0)
                )));
            }
        }
        Ok(None)
    }

    fn record(
        &mut self,
        stager: &mut Stager,
        words: &[(&[u8], bool)],
        blank_owner: bool,
        line: usize,
    ) -> Result<(), String> {
        let mut i = 0;
        self.owner.clear();
        if blank_owner {
            let last = self.carry.last_owner.get();
            if last.is_empty() {
                return Err("no owner name (first record starts with blank space)".into());
            }
            self.owner.extend_from_slice(last);
        } else {
            name::from_text(words[0].0, Some(self.carry.origin.get()), &mut self.owner).map_err(
                |e| {
                    format!(
                        "bad owner name '{}': {e}",
                        String::from_utf8_lossy(words[0].0)
                    )
                },
            )?;
            let owner = &self.owner;
            self.carry.last_owner.set_with(|o| o.clone_from(owner));
            i = 1;
        }
        let mut ttl = None;
        let mut class_seen = false;
        let rt = loop {
            let w = words.get(i).ok_or("missing record type")?.0;
            i += 1;
            if w.first().is_some_and(u8::is_ascii_digit) {
                if ttl.is_some() {
                    return Err(format!("unexpected '{}'", String::from_utf8_lossy(w)));
                }
                ttl = Some(
                    rdata::parse_ttl(w)
                        .ok_or_else(|| format!("bad TTL '{}'", String::from_utf8_lossy(w)))?,
                );
                continue;
            }
            if !class_seen && (w.eq_ignore_ascii_case(b"IN") || w.eq_ignore_ascii_case(b"CLASS1")) {
                class_seen = true;
                continue;
            }
            if !class_seen
                && (w.eq_ignore_ascii_case(b"CH")
                    || w.eq_ignore_ascii_case(b"HS")
                    || w.eq_ignore_ascii_case(b"CS")
                    || w.len() > 5 && w[..5].eq_ignore_ascii_case(b"CLASS"))
            {
                return Err(format!(
                    "class {} not supported (only IN)",
                    String::from_utf8_lossy(w)
                ));
            }
            break rtype::from_text(w)
                .ok_or_else(|| format!("unknown record type '{}'", String::from_utf8_lossy(w)))?;
        };
        self.rdata.clear();
        let mut f = Fields::new(&words[i..], self.carry.origin.get());
        rdata::encode(rt, &mut f, &mut self.rdata)
            .map_err(|e| format!("{} record: {e}", rtype::to_text(rt)))?;
        let ttl = match ttl {
            Some(t) => {
                self.carry.last_ttl.set(Some(t));
                t
            }
            None => match *self.carry.default_ttl.get() {
                Some(t) => t,
                None => match *self.carry.last_ttl.get() {
                    Some(t) => t,
                    None if rt == rtype::SOA => {
                        // BIND: no $TTL and no TTL on the SOA → the SOA's MINIMUM.
                        let t = Soa::parse(&self.rdata)
                            .ok_or("SOA record: malformed rdata")?
                            .minimum;
                        self.carry.last_ttl.set(Some(t));
                        t
                    }
                    None => return Err("no TTL given and no $TTL in effect".into()),
                },
            },
        };
        stager.add(&self.owner, rt, ttl, &self.rdata, line as u32)
    }

    /// `$GENERATE range lhs [ttl] [class] type rhs` (BIND syntax).
    fn generate(
        &mut self,
        stager: &mut Stager,
        words: &[(&[u8], bool)],
        line: usize,
    ) -> Result<(), Failed> {
        let e = |m: String| (line, format!("$GENERATE: {m}"));
        if words.len() < 5 {
            return Err(e("expected: range lhs [ttl] [class] type rhs".into()));
        }
        let (start, stop, step) = parse_range(words[1].0).ok_or_else(|| {
            e(format!(
                "bad range '{}'",
                String::from_utf8_lossy(words[1].0)
            ))
        })?;
        if (stop - start) / step >= MAX_GENERATE {
            return Err(e(format!(
                "range produces more than {MAX_GENERATE} records"
            )));
        }
        let lhs = words[2].0;
        let middle: Vec<&[u8]> = words[3..words.len() - 1].iter().map(|w| w.0).collect();
        let rhs = words[words.len() - 1];
        let mut text = Vec::with_capacity(128);
        let mut v = start;
        while v <= stop {
            text.clear();
            substitute(lhs, v, &mut text).map_err(e)?;
            for m in &middle {
                text.push(b' ');
                text.extend_from_slice(m);
            }
            text.push(b' ');
            if rhs.1 {
                text.push(b'"');
            }
            substitute(rhs.0, v, &mut text).map_err(e)?;
            if rhs.1 {
                text.push(b'"');
            }
            let mut lx = Lexer::new(&text);
            let mut toks = Vec::new();
            lx.next_entry(&mut toks).map_err(|(_, m)| e(m))?;
            let ws: Vec<(&[u8], bool)> = toks.iter().map(|t| (lx.text(t), t.quoted)).collect();
            // The generated owner is no "previous owner" for what follows.
            let saved = self.carry.last_owner.clone();
            let r = self.record(stager, &ws, false, line);
            self.carry.last_owner = saved;
            r.map_err(e)?;
            v += step;
        }
        Ok(())
    }
}

fn parse_range(s: &[u8]) -> Option<(u64, u64, u64)> {
    let s = std::str::from_utf8(s).ok()?;
    let (range, step) = match s.split_once('/') {
        Some((r, st)) => (r, st.parse().ok()?),
        None => (s, 1),
    };
    let (a, b) = range.split_once('-')?;
    let (a, b): (u64, u64) = (a.parse().ok()?, b.parse().ok()?);
    (a <= b && step > 0).then_some((a, b, step))
}

/// Expands `$`, `${offset,width,base}` and `\$` in a `$GENERATE` template.
fn substitute(t: &[u8], v: u64, out: &mut Vec<u8>) -> Result<(), String> {
    let mut i = 0;
    while i < t.len() {
        match t[i] {
            b'\\' if t.get(i + 1) == Some(&b'$') => {
                out.extend_from_slice(b"\\$");
                i += 2;
            }
            b'$' if t.get(i + 1) == Some(&b'{') => {
                let end = t[i..]
                    .iter()
                    .position(|&c| c == b'}')
                    .ok_or("unterminated ${")?
                    + i;
                let spec = std::str::from_utf8(&t[i + 2..end]).map_err(|_| "bad ${} modifier")?;
                let mut parts = spec.split(',');
                let offset: i64 = parts
                    .next()
                    .unwrap_or("0")
                    .trim()
                    .parse()
                    .map_err(|_| format!("bad offset in ${{{spec}}}"))?;
                let width: usize = match parts.next() {
                    Some(w) => w
                        .trim()
                        .parse()
                        .map_err(|_| format!("bad width in ${{{spec}}}"))?,
                    None => 0,
                };
                if width > 64 {
                    return Err(format!("width {width} in ${{{spec}}} is too large"));
                }
                let base = parts.next().unwrap_or("d").trim();
                let n = (v as i64)
                    .checked_add(offset)
                    .filter(|n| *n >= 0)
                    .ok_or("offset makes the value negative")? as u64;
                let s = match base {
                    "d" => format!("{n:0width$}"),
                    "o" => format!("{n:0width$o}"),
                    "x" => format!("{n:0width$x}"),
                    "X" => format!("{n:0width$X}"),
                    "n" | "N" => nibbles(n, width, base == "N"),
                    _ => return Err(format!("bad base '{base}' in ${{{spec}}}")),
                };
                out.extend_from_slice(s.as_bytes());
                i = end + 1;
            }
            b'$' => {
                out.extend_from_slice(v.to_string().as_bytes());
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Ok(())
}

/// BIND's nibble format: hex digits least significant first, dot separated;
/// `width` counts digits and dots.
fn nibbles(mut v: u64, width: usize, upper: bool) -> String {
    let digits = if upper {
        b"0123456789ABCDEF"
    } else {
        b"0123456789abcdef"
    };
    let mut s = String::new();
    let mut w = width as i64;
    loop {
        s.push(digits[(v & 0xf) as usize] as char);
        v >>= 4;
        w -= 1;
        if w > 0 || v != 0 {
            s.push('.');
            w -= 1;
        } else {
            break;
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nibble_format() {
        assert_eq!(nibbles(0x1f, 0, false), "f.1");
        assert_eq!(nibbles(1, 5, false), "1.0.0");
    }

    #[test]
    fn guesses_relied_on_must_prove_true() {
        let truth = Carry::new(b"\x01a\x00");
        let mut guess = truth.clone();
        guess.default_ttl.set(Some(60));
        let guess = guess.as_guess();
        let mut chunk = guess.clone();
        // Setting before reading relies on nothing.
        chunk.default_ttl.set(Some(5));
        assert_eq!(*chunk.default_ttl.get(), Some(5));
        assert!(chunk.fits(&guess, &truth));
        let mut chunk = guess.clone();
        assert_eq!(*chunk.default_ttl.get(), Some(60));
        assert!(!chunk.fits(&guess, &truth));
        let mut t = truth.clone();
        t.absorb(&chunk);
        assert_eq!(t.default_ttl.value, None);
    }
}
