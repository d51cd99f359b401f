//! The layout ARCHITECTURE.md promises, checked on the source: every
//! `crate::…` and `super::…` path in a module is an arrow to the module it
//! names; the arrows form no cycle (between files, nor between top-level
//! modules), and the query path reaches nothing of the transfer side, the
//! zone lifecycles or the daemon.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

type Graph = BTreeMap<String, BTreeSet<String>>;

/// Module path of a source file: `src/xfr/out.rs` → `xfr::out`,
/// `src/xfr/mod.rs` → `xfr`, `src/lib.rs` → `` (the crate root).
fn module_of(rel: &Path) -> String {
    let s = rel.with_extension("").to_string_lossy().replace('/', "::");
    let s = s.strip_suffix("::mod").unwrap_or(&s).to_string();
    if s == "lib" || s == "main" {
        String::new()
    } else {
        s
    }
}

/// The source without comments and without the unit-test module.
fn code_of(text: &str) -> String {
    let text = match text.find("#[cfg(test)]") {
        Some(i) => &text[..i],
        None => text,
    };
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Paths written in `code` that start with `crate::`, `super::` or `self::`,
/// brace groups expanded one level deep (`crate::{a, b::c}`).
fn paths_in(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let bytes = code.as_bytes();
    for start in ["crate::", "super::", "self::"] {
        let mut from = 0;
        while let Some(i) = code[from..].find(start) {
            let at = from + i;
            from = at + start.len();
            if at > 0 && (bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_') {
                continue;
            }
            let rest = &code[at..];
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(rest.len());
            let head = rest[..end].trim_end_matches(':').to_string();
            if rest[end..].starts_with('{') {
                let close = rest[end..].find('}').map(|c| end + c).unwrap_or(rest.len());
                for item in rest[end + 1..close].split(',') {
                    let item = item.split_whitespace().next().unwrap_or("");
                    let item = item.trim_end_matches(['{', ':']);
                    if !item.is_empty() {
                        out.push(format!("{head}::{item}"));
                    }
                }
            } else {
                out.push(head);
            }
        }
    }
    out
}

/// The longest known module a path names, from the module `here`.
fn resolve(here: &str, path: &str, modules: &BTreeSet<String>) -> Option<String> {
    let mut parts: Vec<&str> = path.split("::").filter(|p| !p.is_empty()).collect();
    let mut base: Vec<String> = Vec::new();
    match parts.first().copied() {
        Some("crate") => {
            parts.remove(0);
        }
        Some("super") | Some("self") => {
            base = here
                .split("::")
                .filter(|p| !p.is_empty())
                .map(String::from)
                .collect();
            while let Some(&p) = parts.first() {
                match p {
                    "super" => {
                        base.pop();
                    }
                    "self" => {}
                    _ => break,
                }
                parts.remove(0);
            }
        }
        _ => return None,
    }
    let full: Vec<String> = base
        .into_iter()
        .chain(parts.iter().map(|p| p.to_string()))
        .collect();
    (1..=full.len())
        .rev()
        .map(|n| full[..n].join("::"))
        .find(|m| modules.contains(m))
}

fn graph() -> Graph {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    let mut todo = vec![src.clone()];
    while let Some(dir) = todo.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                files.push(p);
            }
        }
    }
    let modules: BTreeSet<String> = files
        .iter()
        .map(|f| module_of(f.strip_prefix(&src).unwrap()))
        .filter(|m| !m.is_empty())
        .collect();
    let mut g = Graph::new();
    for f in &files {
        let here = module_of(f.strip_prefix(&src).unwrap());
        if here.is_empty() {
            continue;
        }
        let code = code_of(&std::fs::read_to_string(f).unwrap());
        let to: BTreeSet<String> = paths_in(&code)
            .iter()
            .filter_map(|p| resolve(&here, p, &modules))
            // A module naming its own children is no arrow back.
            .filter(|m| *m != here && !m.starts_with(&format!("{here}::")))
            .collect();
        g.entry(here).or_default().extend(to);
    }
    g
}

/// Strongly connected groups of more than one module (Tarjan's algorithm).
fn cycles(g: &Graph) -> Vec<Vec<String>> {
    struct T<'a> {
        g: &'a Graph,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on: BTreeSet<&'a str>,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(t: &mut T<'a>, v: &'a str) {
        let i = t.index.len();
        t.index.insert(v, i);
        t.low.insert(v, i);
        t.stack.push(v);
        t.on.insert(v);
        for w in t.g.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !t.index.contains_key(w) {
                visit(t, w);
                let lw = t.low[w];
                let lv = t.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if t.on.contains(w) {
                let iw = t.index[w];
                let lv = t.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if t.low[v] == t.index[v] {
            let mut group = Vec::new();
            while let Some(w) = t.stack.pop() {
                t.on.remove(w);
                group.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if group.len() > 1 {
                t.out.push(group);
            }
        }
    }
    let mut t = T {
        g,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in g.keys() {
        if !t.index.contains_key(v.as_str()) {
            visit(&mut t, v);
        }
    }
    t.out
}

fn top(m: &str) -> String {
    m.split("::").next().unwrap_or(m).to_string()
}

#[test]
fn modules_form_no_cycle() {
    let g = graph();
    assert!(g.len() > 40, "the source was read ({} modules)", g.len());
    assert_eq!(cycles(&g), Vec::<Vec<String>>::new(), "file-level cycles");
    let mut tops = Graph::new();
    for (from, to) in &g {
        for t in to {
            if top(from) != top(t) {
                tops.entry(top(from)).or_default().insert(top(t));
            }
        }
    }
    assert_eq!(cycles(&tops), Vec::<Vec<String>>::new(), "top-level cycles");
}

#[test]
fn the_query_path_reaches_nothing_of_transfers_or_lifecycles() {
    let g = graph();
    let mut seen = BTreeSet::new();
    let mut todo: Vec<String> = g.keys().filter(|m| top(m) == "query").cloned().collect();
    assert!(!todo.is_empty());
    while let Some(m) = todo.pop() {
        if seen.insert(m.clone()) {
            todo.extend(g.get(&m).into_iter().flatten().cloned());
        }
    }
    let forbidden: Vec<&String> = seen
        .iter()
        .filter(|m| {
            [
                "xfr",
                "primary",
                "secondary",
                "server",
                "ops",
                "daemon",
                "lifecycles",
            ]
            .contains(&top(m).as_str())
        })
        .collect();
    assert!(forbidden.is_empty(), "query/ reaches {forbidden:?}");
}
