//! Reads RFC 1035 master files ($ORIGIN, $TTL, $INCLUDE, $GENERATE) into a
//! `ZoneBuilder`. Every error carries FILE:LINE.

use super::lexer::{Lexer, Tok};
use crate::zone::build::{BuildError, Origin, ZoneBuilder};
use crate::zone::rdata::Soa;
use crate::zone::rdata::parse::{self as rdata, Fields};
use crate::zone::{Zone, name, rtype};
use std::fmt;
use std::path::{Path, PathBuf};

/// Nesting limit for `$INCLUDE` (stops include loops).
const MAX_INCLUDE_DEPTH: usize = 16;
/// Upper bound on the records one `$GENERATE` may produce.
const MAX_GENERATE: u64 = 1 << 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneError {
    pub file: String,
    /// 0 when the error is about the zone as a whole.
    pub line: usize,
    pub msg: String,
}

impl fmt::Display for ZoneError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        if self.line > 0 {
            write!(f, "{}:{}: {}", self.file, self.line, self.msg)
        } else {
            write!(f, "{}: {}", self.file, self.msg)
        }
    }
}

impl std::error::Error for ZoneError {}

/// A loaded zone with the files it was read from (the zone file first, then
/// its `$INCLUDE`s) and the checker's warnings.
pub struct Loaded {
    pub zone: Zone,
    pub files: Vec<PathBuf>,
    pub warnings: Vec<String>,
}

struct Loader {
    builder: ZoneBuilder,
    files: Vec<PathBuf>,
    default_ttl: Option<u32>,
    last_ttl: Option<u32>,
    last_owner: Vec<u8>,
    owner: Vec<u8>,
    rdata: Vec<u8>,
}

/// The mutable state of one file being read; `$ORIGIN` is scoped to it.
struct FileCx {
    idx: u16,
    origin: Vec<u8>,
    depth: usize,
}

impl Loader {
    fn new(origin: &[u8]) -> Self {
        Loader {
            builder: ZoneBuilder::new(origin),
            files: Vec::new(),
            default_ttl: None,
            last_ttl: None,
            last_owner: Vec::new(),
            owner: Vec::with_capacity(256),
            rdata: Vec::with_capacity(1024),
        }
    }

    fn err(&self, file: u16, line: usize, msg: impl Into<String>) -> ZoneError {
        ZoneError {
            file: self.file_name(file),
            line,
            msg: msg.into(),
        }
    }

    fn file_name(&self, idx: u16) -> String {
        self.files
            .get(idx as usize)
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    }

    fn add_file(&mut self, path: PathBuf) -> Result<u16, String> {
        let idx =
            u16::try_from(self.files.len()).map_err(|_| "too many included files".to_string())?;
        self.files.push(path);
        Ok(idx)
    }

    fn read_text(&mut self, text: &[u8], cx: &mut FileCx) -> Result<(), ZoneError> {
        let mut lx = Lexer::new(text);
        let mut toks: Vec<Tok> = Vec::with_capacity(16);
        let mut words: Vec<(&[u8], bool)> = Vec::with_capacity(16);
        loop {
            let entry = match lx.next_entry(&mut toks) {
                Ok(Some(e)) => e,
                Ok(None) => return Ok(()),
                Err((line, msg)) => return Err(self.err(cx.idx, line, msg)),
            };
            words.clear();
            words.extend(toks.iter().map(|t| (lx.text(t), t.quoted)));
            let line = entry.line;
            let first = words[0];
            if !entry.blank_owner && !first.1 && first.0.first() == Some(&b'$') {
                self.directive(&words, cx, line)?;
            } else {
                self.record(&words, entry.blank_owner, cx, line)
                    .map_err(|m| self.err(cx.idx, line, m))?;
            }
        }
    }

    fn directive(
        &mut self,
        words: &[(&[u8], bool)],
        cx: &mut FileCx,
        line: usize,
    ) -> Result<(), ZoneError> {
        let d = words[0].0.to_ascii_uppercase();
        let arg = |i: usize| words.get(i).map(|w| w.0);
        let e = |s: &Self, m: String| s.err(cx.idx, line, m);
        match &d[..] {
            b"$ORIGIN" => {
                let t = arg(1).ok_or_else(|| e(self, "$ORIGIN needs a name".into()))?;
                let mut o = Vec::new();
                name::from_text(t, Some(&cx.origin), &mut o)
                    .map_err(|x| e(self, format!("$ORIGIN: {x}")))?;
                cx.origin = o;
            }
            b"$TTL" => {
                let t = arg(1).ok_or_else(|| e(self, "$TTL needs a value".into()))?;
                let ttl = rdata::parse_ttl(t)
                    .ok_or_else(|| e(self, format!("bad $TTL '{}'", String::from_utf8_lossy(t))))?;
                self.default_ttl = Some(ttl);
            }
            b"$INCLUDE" => {
                let t = arg(1).ok_or_else(|| e(self, "$INCLUDE needs a file name".into()))?;
                if cx.depth >= MAX_INCLUDE_DEPTH {
                    return Err(e(self, "$INCLUDE nested too deeply (include loop?)".into()));
                }
                let mut o = cx.origin.clone();
                if let Some(ot) = arg(2) {
                    o.clear();
                    name::from_text(ot, Some(&cx.origin), &mut o)
                        .map_err(|x| e(self, format!("$INCLUDE origin: {x}")))?;
                }
                let rel = PathBuf::from(String::from_utf8_lossy(t).into_owned());
                // Relative to the including file's directory, else to the working directory.
                let here = self.files[cx.idx as usize].parent().map(|d| d.join(&rel));
                let path = match here {
                    Some(p) if rel.is_relative() && p.exists() => p,
                    _ => rel,
                };
                let text = std::fs::read(&path)
                    .map_err(|x| e(self, format!("$INCLUDE {}: {x}", path.display())))?;
                let idx = self.add_file(path).map_err(|m| e(self, m))?;
                let mut inner = FileCx {
                    idx,
                    origin: o,
                    depth: cx.depth + 1,
                };
                self.read_text(&text, &mut inner)?;
            }
            b"$GENERATE" => self.generate(words, cx, line)?,
            _ => {
                return Err(e(
                    self,
                    format!(
                        "unknown directive '{}'",
                        String::from_utf8_lossy(words[0].0)
                    ),
                ));
            }
        }
        Ok(())
    }

    fn record(
        &mut self,
        words: &[(&[u8], bool)],
        blank_owner: bool,
        cx: &FileCx,
        line: usize,
    ) -> Result<(), String> {
        let mut i = 0;
        self.owner.clear();
        if blank_owner {
            if self.last_owner.is_empty() {
                return Err("no owner name (first record starts with blank space)".into());
            }
            self.owner.extend_from_slice(&self.last_owner);
        } else {
            name::from_text(words[0].0, Some(&cx.origin), &mut self.owner).map_err(|e| {
                format!(
                    "bad owner name '{}': {e}",
                    String::from_utf8_lossy(words[0].0)
                )
            })?;
            self.last_owner.clear();
            self.last_owner.extend_from_slice(&self.owner);
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
        let mut f = Fields::new(&words[i..], &cx.origin);
        rdata::encode(rt, &mut f, &mut self.rdata)
            .map_err(|e| format!("{} record: {e}", rtype::to_text(rt)))?;
        let ttl = match ttl {
            Some(t) => {
                self.last_ttl = Some(t);
                t
            }
            None => match (self.default_ttl, self.last_ttl) {
                (Some(t), _) | (None, Some(t)) => t,
                (None, None) if rt == rtype::SOA => {
                    // BIND: no $TTL and no TTL on the SOA → the SOA's MINIMUM.
                    let t = Soa::parse(&self.rdata)
                        .ok_or("SOA record: malformed rdata")?
                        .minimum;
                    self.last_ttl = Some(t);
                    t
                }
                (None, None) => return Err("no TTL given and no $TTL in effect".into()),
            },
        };
        self.builder.add(
            &self.owner,
            rt,
            ttl,
            &self.rdata,
            Origin {
                file: cx.idx,
                line: line as u32,
            },
        )
    }

    /// `$GENERATE range lhs [ttl] [class] type rhs` (BIND syntax).
    fn generate(
        &mut self,
        words: &[(&[u8], bool)],
        cx: &mut FileCx,
        line: usize,
    ) -> Result<(), ZoneError> {
        let e = |s: &Self, m: String| s.err(cx.idx, line, format!("$GENERATE: {m}"));
        if words.len() < 5 {
            return Err(e(self, "expected: range lhs [ttl] [class] type rhs".into()));
        }
        let (start, stop, step) = parse_range(words[1].0).ok_or_else(|| {
            e(
                self,
                format!("bad range '{}'", String::from_utf8_lossy(words[1].0)),
            )
        })?;
        if (stop - start) / step >= MAX_GENERATE {
            return Err(e(
                self,
                format!("range produces more than {MAX_GENERATE} records"),
            ));
        }
        let lhs = words[2].0;
        let middle: Vec<&[u8]> = words[3..words.len() - 1].iter().map(|w| w.0).collect();
        let rhs = words[words.len() - 1];
        let mut text = Vec::with_capacity(128);
        let mut v = start;
        while v <= stop {
            text.clear();
            substitute(lhs, v, &mut text).map_err(|m| e(self, m))?;
            for m in &middle {
                text.push(b' ');
                text.extend_from_slice(m);
            }
            text.push(b' ');
            if rhs.1 {
                text.push(b'"');
            }
            substitute(rhs.0, v, &mut text).map_err(|m| e(self, m))?;
            if rhs.1 {
                text.push(b'"');
            }
            let mut lx = Lexer::new(&text);
            let mut toks = Vec::new();
            lx.next_entry(&mut toks).map_err(|(_, m)| e(self, m))?;
            let ws: Vec<(&[u8], bool)> = toks.iter().map(|t| (lx.text(t), t.quoted)).collect();
            let saved = std::mem::take(&mut self.last_owner);
            let r = self.record(&ws, false, cx, line);
            self.last_owner = saved;
            r.map_err(|m| e(self, m))?;
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

fn finish(loader: Loader) -> Result<Loaded, ZoneError> {
    let files = loader.files;
    let name_of = |o: Option<crate::zone::build::Origin>| match o {
        Some(o) => (
            files
                .get(o.file as usize)
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            o.line as usize,
        ),
        None => (
            files
                .first()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            0,
        ),
    };
    let builder = loader.builder;
    match builder.build_with_warnings() {
        Ok((zone, warnings)) => {
            let warnings = warnings
                .into_iter()
                .map(|(o, m)| {
                    let (f, l) = name_of(Some(o));
                    format!("{f}:{l}: {m}")
                })
                .collect();
            Ok(Loaded {
                zone,
                files,
                warnings,
            })
        }
        Err(BuildError { at, msg }) => {
            let (file, line) = name_of(at);
            Err(ZoneError { file, line, msg })
        }
    }
}

/// Loads and checks a zone file for the zone `origin` (absolute wire name).
pub fn load_zone_file(path: &Path, origin: &[u8]) -> Result<Loaded, ZoneError> {
    let mut loader = Loader::new(origin);
    let text = std::fs::read(path).map_err(|e| ZoneError {
        file: path.display().to_string(),
        line: 0,
        msg: e.to_string(),
    })?;
    let idx = loader
        .add_file(path.to_path_buf())
        .map_err(|m| loader.err(0, 0, m))?;
    let mut cx = FileCx {
        idx,
        origin: origin.to_vec(),
        depth: 0,
    };
    loader.read_text(&text, &mut cx)?;
    drop(text);
    finish(loader)
}

/// Loads zone text held in memory (tests, fuzzing).
pub fn load_zone_str(text: &str, file: &str, origin: &[u8]) -> Result<Zone, ZoneError> {
    let mut loader = Loader::new(origin);
    let idx = loader
        .add_file(PathBuf::from(file))
        .map_err(|m| loader.err(0, 0, m))?;
    let mut cx = FileCx {
        idx,
        origin: origin.to_vec(),
        depth: 0,
    };
    loader.read_text(text.as_bytes(), &mut cx)?;
    finish(loader).map(|l| l.zone)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORIGIN: &[u8] = b"\x07example\x00";
    const HEAD: &str = "$TTL 300\n@ SOA ns host 1 2 3 4 5\n NS ns\nns A 192.0.2.1\n";

    fn load(body: &str) -> Result<Zone, ZoneError> {
        load_zone_str(&format!("{HEAD}{body}"), "z", ORIGIN)
    }

    #[test]
    fn errors_name_file_and_line() {
        let e = load("a A 1.2.3\n").err().unwrap();
        assert_eq!(e.line, 5);
        assert!(e.to_string().starts_with("z:5: A record: bad IPv4"), "{e}");
        assert_eq!(load("x.other. A 1.2.3.4\n").err().unwrap().line, 5);
        let e = load("c CNAME ns\nc A 1.2.3.4\n").err().unwrap();
        assert!(e.msg.contains("CNAME and other data"), "{e}");
        let e = load("sub SOA ns host 1 2 3 4 5\n").err().unwrap();
        assert!(e.msg.contains("not at top"), "{e}");
        let e = load_zone_str("@ 1 SOA ns host 1 2 3 4 5\n", "z", ORIGIN)
            .err()
            .unwrap();
        assert!(e.msg.contains("no NS"), "{e}");
        assert_eq!(load("a LOC 1 2\n").err().unwrap().line, 5);
        assert!(load("a CLASS3 TXT \"x\"\n").is_err());
    }

    #[test]
    fn generate_reverse_zone() {
        let z = load(
            "$GENERATE 1-254/2 ${0,3,d} PTR host-$.example.\n$GENERATE 0-15 x${0,3,n} A 10.0.0.$\n",
        )
        .unwrap();
        let n = z.find(b"\x03003\x07example\x00").unwrap();
        let ptr = n.get(rtype::PTR).unwrap().iter().next().unwrap().to_vec();
        assert_eq!(name::to_text(&ptr), "host-3.example.");
        assert!(z.find(b"\x03002\x07example\x00").is_none());
        assert!(z.find(b"\x02xf\x010\x07example\x00").is_some());
        assert_eq!(nibbles(0x1f, 0, false), "f.1");
        assert_eq!(nibbles(1, 5, false), "1.0.0");
    }

    #[test]
    fn ttl_and_class_order() {
        let z = load("a IN 60 A 1.2.3.4\nb 70 IN A 1.2.3.4\nc A 1.2.3.4\n").unwrap();
        assert_eq!(
            z.find(b"\x01a\x07example\x00")
                .unwrap()
                .get(rtype::A)
                .unwrap()
                .ttl,
            60
        );
        assert_eq!(
            z.find(b"\x01b\x07example\x00")
                .unwrap()
                .get(rtype::A)
                .unwrap()
                .ttl,
            70
        );
        assert_eq!(
            z.find(b"\x01c\x07example\x00")
                .unwrap()
                .get(rtype::A)
                .unwrap()
                .ttl,
            300
        );
    }
}
