//! Splits RFC 1035 master-file text into entries (one record or directive
//! each), joining parenthesised continuation lines and dropping comments.
//! Tokens borrow the source: escapes are kept raw and interpreted by whoever
//! knows what the token means (a name, a character-string, a number).
//! A lexer may start at any line start and stop before an entry that would
//! start at or past a bound, so that chunks of one text can be read apart.

#[derive(Clone, Copy, Debug)]
pub struct Tok {
    pub start: u32,
    pub end: u32,
    pub quoted: bool,
}

/// One logical entry: its first line, whether that line began with blank
/// space (owner omitted), and its tokens (in the lexer's token buffer).
#[derive(Debug)]
pub struct Entry {
    pub line: usize,
    pub blank_owner: bool,
}

pub struct Lexer<'a> {
    src: &'a [u8],
    pos: usize,
    line: usize,
}

impl<'a> Lexer<'a> {
    pub fn new(src: &'a [u8]) -> Self {
        Self::at(src, 0, 1)
    }

    /// A lexer reading `src` from `pos`, the start of line `line`.
    pub fn at(src: &'a [u8], pos: usize, line: usize) -> Self {
        Lexer { src, pos, line }
    }

    pub fn pos(&self) -> usize {
        self.pos
    }

    pub fn line(&self) -> usize {
        self.line
    }

    pub fn text(&self, t: &Tok) -> &'a [u8] {
        &self.src[t.start as usize..t.end as usize]
    }

    /// Reads the next entry's tokens into `toks`. `Ok(None)` at end of input.
    pub fn next_entry(&mut self, toks: &mut Vec<Tok>) -> Result<Option<Entry>, (usize, String)> {
        self.next_entry_before(toks, usize::MAX)
    }

    /// As `next_entry`, but `Ok(None)` at the first line start at or past
    /// `end` that is not inside an entry: the lexer then stands there, and
    /// a lexer started there reads on exactly as this one would have.
    pub fn next_entry_before(
        &mut self,
        toks: &mut Vec<Tok>,
        end: usize,
    ) -> Result<Option<Entry>, (usize, String)> {
        toks.clear();
        let src = self.src;
        let mut depth = 0u32;
        let mut entry_line = self.line;
        let mut at_line_start = true;
        let mut blank_owner = false;
        let mut paren_line = 0;
        loop {
            if at_line_start && self.pos >= end && depth == 0 && toks.is_empty() {
                return Ok(None);
            }
            let Some(&c) = src.get(self.pos) else {
                if depth > 0 {
                    return Err((
                        paren_line,
                        "unbalanced parentheses: '(' never closed".into(),
                    ));
                }
                return Ok(if toks.is_empty() {
                    None
                } else {
                    Some(Entry {
                        line: entry_line,
                        blank_owner,
                    })
                });
            };
            if at_line_start && depth == 0 && toks.is_empty() {
                entry_line = self.line;
                blank_owner = c == b' ' || c == b'\t';
                at_line_start = false;
            }
            match c {
                b' ' | b'\t' | b'\r' => self.pos += 1,
                b'\n' => {
                    self.pos += 1;
                    self.line += 1;
                    if depth == 0 {
                        if !toks.is_empty() {
                            return Ok(Some(Entry {
                                line: entry_line,
                                blank_owner,
                            }));
                        }
                        at_line_start = true;
                    }
                }
                b';' => {
                    while self.pos < src.len() && src[self.pos] != b'\n' {
                        self.pos += 1;
                    }
                }
                b'(' => {
                    if depth == 0 {
                        paren_line = self.line;
                    }
                    depth += 1;
                    self.pos += 1;
                }
                b')' => {
                    if depth == 0 {
                        return Err((self.line, "unbalanced parentheses: ')' without '('".into()));
                    }
                    depth -= 1;
                    self.pos += 1;
                }
                b'"' => {
                    let start = self.pos + 1;
                    let mut i = start;
                    loop {
                        match src.get(i) {
                            None => return Err((self.line, "unterminated quoted string".into())),
                            Some(b'\\') => i += 2,
                            Some(b'"') => break,
                            Some(b'\n') => {
                                self.line += 1;
                                i += 1
                            }
                            Some(_) => i += 1,
                        }
                    }
                    if i > src.len() {
                        return Err((self.line, "unterminated quoted string".into()));
                    }
                    toks.push(Tok {
                        start: start as u32,
                        end: i as u32,
                        quoted: true,
                    });
                    self.pos = i + 1;
                }
                _ => {
                    let start = self.pos;
                    let mut i = start;
                    while let Some(&d) = src.get(i) {
                        match d {
                            b' ' | b'\t' | b'\r' | b'\n' | b';' | b'(' | b')' | b'"' => break,
                            b'\\' => i += 2,
                            _ => i += 1,
                        }
                    }
                    let i = i.min(src.len());
                    toks.push(Tok {
                        start: start as u32,
                        end: i as u32,
                        quoted: false,
                    });
                    self.pos = i;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(s: &str) -> Vec<(usize, bool, Vec<String>)> {
        let mut lx = Lexer::new(s.as_bytes());
        let mut toks = Vec::new();
        let mut out = Vec::new();
        while let Some(e) = lx.next_entry(&mut toks).unwrap() {
            let words = toks
                .iter()
                .map(|t| String::from_utf8_lossy(lx.text(t)).into_owned())
                .collect();
            out.push((e.line, e.blank_owner, words));
        }
        out
    }

    #[test]
    fn joins_parentheses_and_drops_comments() {
        let e = entries("; c\n@ IN SOA ns h ( 1 ; serial\n 2 3\n 4 5 )\n\twww A 1.2.3.4\n");
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].0, 2);
        assert_eq!(e[0].2.len(), 10);
        assert!(e[1].1);
        assert_eq!(e[1].0, 5);
    }

    #[test]
    fn quoted_and_escaped() {
        let e = entries("a TXT \"x y\\\" z\" b\\ c\n");
        assert_eq!(e[0].2, vec!["a", "TXT", "x y\\\" z", "b\\ c"]);
    }

    #[test]
    fn unbalanced_reports_line() {
        let mut lx = Lexer::new(b"a A 1\nb ( A\n");
        let mut t = Vec::new();
        lx.next_entry(&mut t).unwrap();
        assert_eq!(lx.next_entry(&mut t).unwrap_err().0, 2);
    }
}
