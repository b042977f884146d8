//! Issue 11: no import circles between the engine's files.
//!
//! Reads `src/` and builds the file-level import graph: file `a` imports file `b` when `a.rs`
//! names `crate::b` anywhere — a `use`, a path in code, a doc link, an item of a
//! `crate::{b, c::D}` list — or names an item `lib.rs` re-exports from `b` (`crate::Error` is
//! `error`). `super::` is not counted: every file is a direct child of the crate root, so a
//! `super::` inside one of its inline modules (`mod tests`) names the file itself. Then the
//! strongly connected components of the graph: any with more than one file is a circle, and
//! the test fails naming its files and the lines that make its arrows.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// An arrow's first place: the line of the importing file that makes it.
type Graph = BTreeMap<String, BTreeMap<String, usize>>;

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn ident_at(s: &str) -> &str {
    let end = s.find(|c: char| !is_ident(c)).unwrap_or(s.len());
    &s[..end]
}

/// The first names of every path under `crate::` in `text`, each with its line (1-based):
/// `crate::model::App` gives `model`, `crate::{error::Result, ids}` gives `error` and `ids`.
fn crate_paths(text: &str) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = text[from..].find("crate::") {
        let at = from + i;
        from = at + "crate::".len();
        if text[..at].chars().next_back().is_some_and(is_ident) {
            continue; // `foo_crate::`, not ours
        }
        let line = text[..at].matches('\n').count() + 1;
        let rest = &text[from..];
        if let Some(list) = rest.strip_prefix('{') {
            // the top-level items of a (possibly nested) use list
            let mut depth = 1;
            let mut item_start = true;
            for (j, c) in list.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    ',' if depth == 1 => item_start = true,
                    c if item_start && depth == 1 && is_ident(c) => {
                        item_start = false;
                        let name = ident_at(&list[j..]);
                        let l = line + list[..j].matches('\n').count();
                        out.push((name.to_string(), l));
                    }
                    _ => {}
                }
            }
        } else {
            let name = ident_at(rest);
            if !name.is_empty() {
                out.push((name.to_string(), line));
            }
        }
    }
    out
}

/// The modules of `lib.rs`'s `pub use m::{A, B};` / `pub use m::A;` lines, by re-exported name.
fn reexports(lib: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for stmt in lib.split(';') {
        let Some(path) = stmt.trim().strip_prefix("pub use ") else { continue };
        let Some((module, items)) = path.split_once("::") else { continue };
        for name in items.split(|c: char| !is_ident(c)).filter(|n| !n.is_empty()) {
            out.insert(name.to_string(), module.trim().to_string());
        }
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The engine's file-level import graph (`lib.rs` left out: it only declares and re-exports).
/// A file under a directory `src/m/` counts as module `m`.
fn engine_graph() -> Graph {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let module_of = |p: &Path| {
        let rel = p.strip_prefix(&src).unwrap();
        let first = rel.components().next().unwrap().as_os_str().to_string_lossy().into_owned();
        first.trim_end_matches(".rs").to_string()
    };
    let modules: BTreeSet<String> = files.iter().map(|p| module_of(p)).collect();
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    let reexported = reexports(&lib);
    let mut graph = Graph::new();
    for path in &files {
        let from = module_of(path);
        if from == "lib" {
            continue;
        }
        let arrows = graph.entry(from.clone()).or_default();
        let text = std::fs::read_to_string(path).unwrap();
        for (name, line) in crate_paths(&text) {
            let to = if modules.contains(&name) { Some(&name) } else { reexported.get(&name) };
            if let Some(to) = to.filter(|t| **t != from && t.as_str() != "lib") {
                arrows.entry(to.clone()).or_insert(line);
            }
        }
    }
    graph
}

/// Tarjan's strongly connected components with more than one node.
fn circles(graph: &Graph) -> Vec<Vec<String>> {
    struct State<'a> {
        graph: &'a Graph,
        next: usize,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        s.index.insert(v, s.next);
        s.low.insert(v, s.next);
        s.next += 1;
        s.stack.push(v);
        s.on_stack.insert(v);
        let graph = s.graph;
        for w in graph.get(v).into_iter().flat_map(|a| a.keys()) {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if s.on_stack.contains(w) {
                let iw = s.index[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut comp = Vec::new();
            loop {
                let w = s.stack.pop().unwrap();
                s.on_stack.remove(w);
                comp.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                s.out.push(comp);
            }
        }
    }
    let mut s = State {
        graph,
        next: 0,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.out
}

#[test]
fn engine_files_form_no_import_circle() {
    let graph = engine_graph();
    let found = circles(&graph);
    let mut report = String::new();
    for comp in &found {
        report.push_str(&format!("circle: {}\n", comp.join(", ")));
        for from in comp {
            for (to, line) in &graph[from] {
                if comp.contains(to) {
                    report.push_str(&format!("  {from}.rs:{line} -> {to}\n"));
                }
            }
        }
    }
    assert!(found.is_empty(), "import circles between the engine's files:\n{report}");
}

#[test]
fn the_graph_sees_the_imports_it_should() {
    let graph = engine_graph();
    let has = |from: &str, to: &str| graph.get(from).is_some_and(|a| a.contains_key(to));
    assert!(has("model", "error"), "a `crate::error::Result` path");
    assert!(has("limits", "error"), "`use crate::Error` is the re-export of error::Error");
    assert!(has("store", "outbox"), "a `use crate::outbox::…` line");
    assert!(has("error", "conv_kind") && has("error", "quota"));
    assert!(!graph.contains_key("lib"));
}

#[test]
fn crate_paths_reads_use_lists_and_doc_links() {
    let text = "use crate::{a::X, b,\n    c::{D, e::F}};\n/// See [`G`](crate::g::G).\nlet x = my_crate::h::I;\n$crate::j!();";
    let names: Vec<(String, usize)> = crate_paths(text);
    let got: Vec<(&str, usize)> = names.iter().map(|(n, l)| (n.as_str(), *l)).collect();
    assert_eq!(got, vec![("a", 1), ("b", 1), ("c", 2), ("g", 3), ("j", 5)]);
}

#[test]
fn circles_finds_a_circle() {
    let mut g = Graph::new();
    for (a, b) in [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d"), ("d", "e")] {
        g.entry(a.to_string()).or_default().insert(b.to_string(), 1);
    }
    assert_eq!(circles(&g), vec![vec!["a".to_string(), "b".to_string(), "c".to_string()]]);
}
