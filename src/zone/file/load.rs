//! Reads RFC 1035 master files ($ORIGIN, $TTL, $INCLUDE, $GENERATE) into a
//! zone; every error carries FILE:LINE. Records are staged as they are read
//! and built on every core. A large text is read in chunks on every core
//! too (`ahead`); each chunk is kept only if it is what reading in turn
//! would have given, else it is read again in turn (`reader`), so the
//! records and the first error are those of reading line after line.

use super::ahead;
use super::reader::{Carry, Reader, Stop};
use crate::zone::build::{self, BuildError, Origin};
use crate::zone::stage::{Run, Staged, Stager};
use crate::zone::{NameHasher, Zone, workers};
use std::fmt;
use std::path::{Path, PathBuf};

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

/// How a load spreads its work over the cores.
#[derive(Clone, Copy, Debug)]
struct Tuning {
    threads: usize,
    /// Texts shorter than this are read in turn only.
    parallel_from: usize,
    /// The first bytes of a text, read in turn: what they leave ($ORIGIN,
    /// $TTL) is the guess every other chunk starts from.
    head: usize,
    /// Chunks per thread: enough that a thread slowed by the rest of the
    /// machine leaves its share to the others.
    chunks_per_thread: usize,
    /// Zones with fewer records are built on one thread.
    build_parallel_from: usize,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            threads: workers::threads(),
            parallel_from: 1 << 20,
            head: 64 << 10,
            chunks_per_thread: 8,
            build_parallel_from: build::PARALLEL_FROM_RECORDS,
        }
    }
}

struct Loader {
    apex: Vec<u8>,
    hasher: NameHasher,
    files: Vec<PathBuf>,
    /// The first reads in turn; the others are the threads' that read ahead.
    stagers: Vec<Stager>,
    runs: Vec<Run>,
    tuning: Tuning,
}

impl Loader {
    fn new(origin: &[u8], tuning: Tuning) -> Self {
        let hasher = NameHasher::default();
        Loader {
            stagers: vec![Stager::new(origin, &hasher)],
            apex: origin.to_vec(),
            hasher,
            files: Vec::new(),
            runs: Vec::new(),
            tuning,
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

    /// Reads the whole `text` of file `file`, nested `depth` `$INCLUDE`s
    /// deep, from the state `carry` (left as the text leaves it).
    fn read_text(
        &mut self,
        text: &[u8],
        file: u16,
        depth: usize,
        carry: &mut Carry,
    ) -> Result<(), ZoneError> {
        let t = self.tuning;
        if t.threads < 2 || text.len() < t.parallel_from {
            self.read_in_turn(text, file, depth, (0, 1), text.len(), carry)?;
            return Ok(());
        }
        let (mut pos, mut line) =
            self.read_in_turn(text, file, depth, (0, 1), t.head.min(text.len()), carry)?;
        let chunk_len = (text.len() - pos.min(text.len())) / (t.threads * t.chunks_per_thread) + 1;
        let bounds = ahead::cut(text, pos, chunk_len);
        let guess = carry.as_guess();
        let read = ahead::read(
            text,
            &bounds,
            &guess,
            depth,
            &self.apex,
            &self.hasher,
            t.threads,
        );
        let base = self.stagers.len();
        self.stagers.extend(read.stagers);
        for (k, chunk) in read.chunks.into_iter().enumerate() {
            let (start, end) = (bounds[k], bounds[k + 1]);
            if chunk.holds(start, pos, &guess, carry) {
                // Lines in the chunk count from 1 at its start.
                let offset = line - 1;
                self.runs.push(Run {
                    stager: base + chunk.stager,
                    file,
                    line_offset: offset as u32,
                    from: chunk.from,
                    to: chunk.to,
                });
                carry.absorb(&chunk.carry);
                match chunk.stop {
                    Err((l, m)) => return Err(self.err(file, offset + l, m)),
                    Ok(Stop::End { pos: p, line: l }) => (pos, line) = (p, offset + l),
                    Ok(Stop::Include {
                        file: inc,
                        origin,
                        line: l,
                        pos: p,
                        next_line,
                    }) => {
                        self.include(file, depth, offset + l, &inc, origin, carry)?;
                        (pos, line) = (p, offset + next_line);
                    }
                }
            }
            if pos < end {
                (pos, line) = self.read_in_turn(text, file, depth, (pos, line), end, carry)?;
            }
        }
        Ok(())
    }

    /// Reads in turn the entries of `text` that start from `at` (position,
    /// line) and before `end`, following `$INCLUDE`s; returns where it
    /// stopped.
    fn read_in_turn(
        &mut self,
        text: &[u8],
        file: u16,
        depth: usize,
        at: (usize, usize),
        end: usize,
        carry: &mut Carry,
    ) -> Result<(usize, usize), ZoneError> {
        let (mut pos, mut line) = at;
        loop {
            let stager = &mut self.stagers[0];
            let from = stager.mark();
            let mut reader = Reader::new(carry.clone(), depth);
            let stop = reader.read(stager, text, pos, end, line);
            let to = stager.mark();
            self.runs.push(Run {
                stager: 0,
                file,
                line_offset: 0,
                from,
                to,
            });
            *carry = reader.carry;
            match stop {
                Err((l, m)) => return Err(self.err(file, l, m)),
                Ok(Stop::End { pos, line }) => return Ok((pos, line)),
                Ok(Stop::Include {
                    file: inc,
                    origin,
                    line: l,
                    pos: p,
                    next_line,
                }) => {
                    self.include(file, depth, l, &inc, origin, carry)?;
                    (pos, line) = (p, next_line);
                }
            }
        }
    }

    /// Reads the file an `$INCLUDE` on `line` of `file` names, with its
    /// own origin.
    fn include(
        &mut self,
        file: u16,
        depth: usize,
        line: usize,
        name: &[u8],
        origin: Vec<u8>,
        carry: &mut Carry,
    ) -> Result<(), ZoneError> {
        let rel = PathBuf::from(String::from_utf8_lossy(name).into_owned());
        // Relative to the including file's directory, else to the working directory.
        let here = self
            .files
            .get(file as usize)
            .and_then(|f| f.parent())
            .map(|d| d.join(&rel));
        let path = match here {
            Some(p) if rel.is_relative() && p.exists() => p,
            _ => rel,
        };
        let text = std::fs::read(&path)
            .map_err(|x| self.err(file, line, format!("$INCLUDE {}: {x}", path.display())))?;
        let idx = self.add_file(path).map_err(|m| self.err(file, line, m))?;
        let mut inner = carry.for_include(origin);
        self.read_text(&text, idx, depth + 1, &mut inner)?;
        carry.after_include(&inner);
        Ok(())
    }

    /// Reads the zone file (or text) `text` as file 0.
    fn read_zone(&mut self, path: PathBuf, text: &[u8]) -> Result<(), ZoneError> {
        let idx = self.add_file(path).map_err(|m| self.err(0, 0, m))?;
        let mut carry = Carry::new(&self.apex);
        self.read_text(text, idx, 0, &mut carry)
    }

    fn finish(self) -> Result<Loaded, ZoneError> {
        let files = self.files;
        let name_of = |o: Option<Origin>| match o {
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
        let records: usize = self.stagers.iter().map(Stager::records).sum();
        let threads = if records >= self.tuning.build_parallel_from {
            self.tuning.threads
        } else {
            1
        };
        let staged = Staged {
            origin: self.apex,
            hasher: self.hasher,
            stagers: self.stagers,
            runs: self.runs,
        };
        match build::build(staged, threads) {
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
}

/// Loads and checks a zone file for the zone `origin` (absolute wire name).
pub fn load_zone_file(path: &Path, origin: &[u8]) -> Result<Loaded, ZoneError> {
    let mut loader = Loader::new(origin, Tuning::default());
    let text = std::fs::read(path).map_err(|e| ZoneError {
        file: path.display().to_string(),
        line: 0,
        msg: e.to_string(),
    })?;
    loader.read_zone(path.to_path_buf(), &text)?;
    // The text goes before the build, which needs room for the zone.
    drop(text);
    loader.finish()
}

/// Loads zone text held in memory (tests, fuzzing).
pub fn load_zone_str(text: &str, file: &str, origin: &[u8]) -> Result<Zone, ZoneError> {
    load_text(text.as_bytes(), file, origin, Tuning::default()).map(|l| l.zone)
}

fn load_text(text: &[u8], file: &str, origin: &[u8], tuning: Tuning) -> Result<Loaded, ZoneError> {
    let mut loader = Loader::new(origin, tuning);
    loader.read_zone(PathBuf::from(file), text)?;
    loader.finish()
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::zone::{name, rtype};

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

    /// Everything a zone holds, in a comparable form (empty non-terminals
    /// lower-cased: which descendant spells them is not defined).
    fn dump(z: &Zone) -> Vec<String> {
        let mut v: Vec<String> = z
            .nodes()
            .map(|n| {
                let mut s = if n.is_empty() {
                    name::to_text(n.name()).to_ascii_lowercase()
                } else {
                    name::to_text(n.name())
                };
                s += &format!(" {} {} |", n.children(), n.flags());
                for set in n.rrsets() {
                    s += &format!(
                        " {} {} {:?}",
                        set.rtype,
                        set.ttl,
                        set.iter().collect::<Vec<_>>()
                    );
                }
                s
            })
            .collect();
        v.sort();
        v.push(format!(
            "{:?} {} {} {} {} {}",
            z.origin(),
            z.serial(),
            z.name_count(),
            z.record_count(),
            z.has_cuts(),
            z.negative_ttl()
        ));
        v
    }

    type Outcome = Result<(Vec<String>, Vec<String>, Vec<PathBuf>), String>;

    fn outcome(text: &[u8], file: &Path, origin: &[u8], tuning: Tuning) -> Outcome {
        let mut loader = Loader::new(origin, tuning);
        loader
            .read_zone(file.to_path_buf(), text)
            .and_then(|_| loader.finish())
            .map(|l| {
                let mut w = l.warnings;
                w.sort();
                (dump(&l.zone), w, l.files)
            })
            .map_err(|e| e.to_string())
    }

    struct Rng(u64);
    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n.max(1) as u64) as usize
        }
    }

    fn in_turn() -> Tuning {
        Tuning {
            threads: 1,
            ..Tuning::default()
        }
    }

    /// Chunks of a few bytes read on 2 or 3 threads, after a head of 0 to
    /// 100 bytes: every cut the reader may make, made.
    fn tiny(rng: &mut Rng) -> Tuning {
        Tuning {
            threads: 2 + rng.below(2),
            parallel_from: 0,
            head: rng.below(100),
            chunks_per_thread: 1 << 20,
            build_parallel_from: 0,
        }
    }

    const TRICKY: &str = r#"; no $TTL: TTLs carry from record to record
@ 300 SOA ns host ( 1 2
   3 4 5 )
 NS ns
ns A 192.0.2.1
a A 192.0.2.2
\098 TXT "two
lines" "and a \" quote"
b 60 TXT "x\
y"
c ( A
 192.0.2.3 )
$ORIGIN sub.example.
d A 192.0.2.4
 AAAA ::1
$TTL 90
e A 192.0.2.5
$ORIGIN example.
x.y.z A 192.0.2.6
f CNAME x.y.z
g 70 A 192.0.2.8
g 80 A 192.0.2.9
g A 192.0.2.8
$GENERATE 1-20 h$ A 10.0.0.$
i A 192.0.2.10 ; comment ( "
j TXT ( "a" ; comment )
  "b" )
"#;

    #[test]
    fn reading_ahead_gives_what_reading_in_turn_gives() {
        let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data"));
        let mut seeds: Vec<(PathBuf, Vec<u8>, Vec<u8>)> = [
            ("example.test.zone", "example.test."),
            ("signed.test.zone", "signed.test."),
            ("nsec3.signed.test.zone", "signed.test."),
            ("2.0.192.in-addr.arpa.zone", "2.0.192.in-addr.arpa."),
            ("child.example.test.zone", "child.example.test."),
        ]
        .iter()
        .map(|(f, o)| {
            let path = dir.join(f);
            let text = std::fs::read(&path).unwrap();
            (path, text, name::parse_absolute(o).unwrap())
        })
        .collect();
        seeds.push((
            dir.join("tricky.zone"),
            TRICKY.as_bytes().to_vec(),
            name::parse_absolute("example.").unwrap(),
        ));
        // The seeds as they are, with one chunk per line.
        for (path, text, origin) in &seeds {
            let mut rng = Rng(1);
            let want = outcome(text, path, origin, in_turn());
            assert!(want.is_ok(), "{}: {want:?}", path.display());
            for _ in 0..20 {
                let got = outcome(text, path, origin, tiny(&mut rng));
                assert_eq!(got, want, "{}", path.display());
            }
        }
        // Mutated: the same records, or the same first error.
        const TOKENS: &[&str] = &[
            "(",
            ")",
            "\"",
            ";",
            "\\",
            "\n",
            " ",
            "\t",
            "$ORIGIN x.",
            "$ORIGIN sub",
            "$TTL 5",
            "$GENERATE 1-3 g$ A 10.0.0.$",
            "$INCLUDE include/extra.inc",
            "@",
            "a",
            "60",
            "IN",
            "TXT",
        ];
        let mut rng = Rng(7);
        let mut failed = 0;
        for i in 0..3000 {
            let (path, seed, origin) = &seeds[i % seeds.len()];
            let mut text = seed.clone();
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(text.len());
                match rng.below(3) {
                    0 => text[at] = b"\n \t;()\"\\$a1."[rng.below(12)],
                    1 => {
                        let t = TOKENS[rng.below(TOKENS.len())].as_bytes();
                        text.splice(at..at, t.iter().copied());
                    }
                    _ => {
                        let end = (at + rng.below(20)).min(text.len());
                        text.drain(at..end);
                    }
                }
            }
            let want = outcome(&text, path, origin, in_turn());
            failed += usize::from(want.is_err());
            let got = outcome(&text, path, origin, tiny(&mut rng));
            assert_eq!(
                got,
                want,
                "{}\n{}",
                path.display(),
                String::from_utf8_lossy(&text)
            );
        }
        assert!(failed > 100 && failed < 2900, "{failed}");
    }
}
