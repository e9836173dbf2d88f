//! The layout the engine and its HTTP doors keep (issue 24): no import cycle of more than two
//! modules in either crate, no source file over 800 lines, and an engine that depends on no HTTP
//! framework. Modules and their arrows are read as `../shared/tools/modgraph.py` reads them: a
//! module is a file, an arrow is a `crate::…` or `super::…` path (in a `use` group too) to the
//! longest module prefix that exists, test modules and the crate root left out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const CRATES: [&str; 2] = ["wagate-engine", "wagate-http"];
const MAX_LINES: usize = 800;
const MAX_CYCLE: usize = 2;

type Module = Vec<String>;

fn crate_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(name)
}

/// Every `.rs` file under `src`, as its module path (`a/b.rs` and `a/b/mod.rs` are `a::b`).
fn modules(src: &Path) -> BTreeMap<Module, PathBuf> {
    let mut out = BTreeMap::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(src).expect("under src").with_extension("");
            let mut parts: Module = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().to_string())
                .collect();
            if parts.last().is_some_and(|p| p == "mod") {
                parts.pop();
            }
            if parts == ["lib"] || parts == ["main"] {
                parts.clear();
            }
            out.insert(parts, path);
        }
    }
    out
}

/// The text without comments and without `#[cfg(test)] mod … { … }` blocks.
fn code_of(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if text[i..].starts_with("//") {
            i += text[i..].find('\n').unwrap_or(text.len() - i);
        } else if text[i..].starts_with("/*") {
            i += text[i..].find("*/").map_or(text.len() - i, |n| n + 2);
        } else {
            let c = text[i..].chars().next().expect("a char");
            out.push(c);
            i += c.len_utf8();
        }
    }
    let mut code = String::with_capacity(out.len());
    let mut rest = out.as_str();
    while let Some(at) = rest.find("#[cfg(test)]") {
        code.push_str(&rest[..at]);
        let after = &rest[at + "#[cfg(test)]".len()..];
        let trimmed = after.trim_start();
        let is_mod = trimmed.starts_with("mod ") || trimmed.starts_with("pub mod ");
        match (is_mod, after.find(['{', ';'])) {
            (true, Some(open)) if after.as_bytes()[open] == b'{' => {
                let mut depth = 0usize;
                let mut end = after.len();
                for (j, c) in after[open..].char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                end = open + j + 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                rest = &after[end..];
            }
            _ => rest = after,
        }
    }
    code.push_str(rest);
    code
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The paths a file names from `crate` or `super`, each as (`crate`|`super`, segments).
fn references(code: &str) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    for start in ["crate", "super"] {
        let mut from = 0;
        while let Some(at) = code[from..].find(start) {
            let at = from + at;
            from = at + start.len();
            let before_ok = code[..at].chars().next_back().is_none_or(|c| !is_ident(c) && c != ':');
            if !before_ok || !code[from..].starts_with("::") {
                continue;
            }
            let mut segments = Vec::new();
            let mut rest = &code[from..];
            while let Some(after) = rest.strip_prefix("::") {
                let name: String = after.chars().take_while(|c| is_ident(*c)).collect();
                if name.is_empty() {
                    // A group: `crate::a::{b, c::d}` names each item.
                    if let Some(group) = after.strip_prefix('{') {
                        let inner = &group[..group.find('}').unwrap_or(group.len())];
                        for item in inner.split(',') {
                            let item = item.split(" as ").next().unwrap_or_default().trim();
                            let mut path = segments.clone();
                            path.extend(item.split("::").map(|s| s.trim().to_string()).filter(|s| is_path(s)));
                            out.push((start.to_string(), path));
                        }
                    }
                    break;
                }
                rest = &after[name.len()..];
                segments.push(name);
            }
            out.push((start.to_string(), segments));
        }
    }
    out
}

fn is_path(s: &str) -> bool {
    !s.is_empty() && s != "self" && s != "*" && s.chars().all(is_ident)
}

/// The module a reference from `here` lands in: the longest prefix of its path that exists.
fn resolve(mods: &BTreeMap<Module, PathBuf>, here: &Module, kind: &str, path: &[String]) -> Option<Module> {
    let mut full: Module = Vec::new();
    let mut parts = path.to_vec();
    if kind == "super" {
        full = here[..here.len().saturating_sub(1)].to_vec();
        while parts.first().is_some_and(|p| p == "super") {
            parts.remove(0);
            full.pop();
        }
    }
    full.extend(parts);
    (0..=full.len())
        .rev()
        .map(|n| full[..n].to_vec())
        .find(|m| mods.contains_key(m))
}

/// The strongly connected components with more than one module (Tarjan).
fn cycles(edges: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<Vec<Module>> {
    struct T<'a> {
        edges: &'a BTreeMap<Module, BTreeSet<Module>>,
        index: BTreeMap<Module, usize>,
        low: BTreeMap<Module, usize>,
        stack: Vec<Module>,
        on: BTreeSet<Module>,
        out: Vec<Vec<Module>>,
    }
    fn visit(t: &mut T, v: &Module) {
        let n = t.index.len();
        t.index.insert(v.clone(), n);
        t.low.insert(v.clone(), n);
        t.stack.push(v.clone());
        t.on.insert(v.clone());
        for w in t.edges.get(v).into_iter().flatten() {
            if !t.index.contains_key(w) {
                visit(t, w);
                let lw = t.low[w];
                let lv = t.low.get_mut(v).expect("visited");
                *lv = (*lv).min(lw);
            } else if t.on.contains(w) {
                let iw = t.index[w];
                let lv = t.low.get_mut(v).expect("visited");
                *lv = (*lv).min(iw);
            }
        }
        if t.low[v] == t.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = t.stack.pop() {
                t.on.remove(&w);
                let done = &w == v;
                comp.push(w);
                if done {
                    break;
                }
            }
            if comp.len() > 1 {
                t.out.push(comp);
            }
        }
    }
    let mut t = T {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in edges.keys() {
        if !t.index.contains_key(v) {
            visit(&mut t, v);
        }
    }
    t.out
}

fn graph(name: &str) -> (BTreeMap<Module, PathBuf>, BTreeMap<Module, BTreeSet<Module>>) {
    let mods = modules(&crate_dir(name).join("src"));
    let mut edges = BTreeMap::new();
    for (m, path) in &mods {
        if m.is_empty() {
            continue; // the crate root wires everything
        }
        let code = code_of(&std::fs::read_to_string(path).expect("source"));
        let targets: BTreeSet<Module> = references(&code)
            .iter()
            .filter_map(|(kind, p)| resolve(&mods, m, kind, p))
            .filter(|t| t != m && !t.is_empty())
            .collect();
        edges.insert(m.clone(), targets);
    }
    (mods, edges)
}

#[test]
fn no_import_cycle_of_more_than_two_modules() {
    let mut found = Vec::new();
    for name in CRATES {
        let (mods, edges) = graph(name);
        assert!(mods.len() > 10, "{name}: the modules were not found");
        assert!(edges.values().any(|t| !t.is_empty()), "{name}: no arrows were read");
        for cycle in cycles(&edges).into_iter().filter(|c| c.len() > MAX_CYCLE) {
            let names: Vec<String> = cycle.iter().map(|m| m.join("::")).collect();
            found.push(format!("{name}: {}", names.join(" → ")));
        }
    }
    assert!(
        found.is_empty(),
        "import cycles of more than {MAX_CYCLE} modules:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_cycle_finder_finds_a_cycle() {
    // So that the test above cannot pass by reading nothing.
    let m = |s: &str| vec![s.to_string()];
    let edges: BTreeMap<Module, BTreeSet<Module>> = [
        (m("a"), [m("b")].into()),
        (m("b"), [m("c")].into()),
        (m("c"), [m("a")].into()),
        (m("d"), [m("a")].into()),
    ]
    .into();
    let found = cycles(&edges);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].len(), 3);
    let code = "use crate::{state::Engine, auth::accounts::{x, y}};\nfn f() { super::super::z::f(); }\n// crate::nope\n#[cfg(test)]\nmod tests { use crate::hidden; }";
    let refs = references(&code_of(code));
    let paths: Vec<String> = refs.iter().map(|(k, p)| format!("{k}::{}", p.join("::"))).collect();
    assert!(paths.contains(&"crate::state::Engine".to_string()), "{paths:?}");
    assert!(
        paths.iter().any(|p| p.starts_with("crate::auth::accounts")),
        "{paths:?}"
    );
    assert!(paths.iter().any(|p| p.starts_with("super::super::z")), "{paths:?}");
    assert!(
        !paths.iter().any(|p| p.contains("nope") || p.contains("hidden")),
        "{paths:?}"
    );
}

#[test]
fn no_source_file_over_800_lines() {
    let mut long = Vec::new();
    for name in CRATES {
        for dir in ["src", "tests"] {
            let root = crate_dir(name).join(dir);
            if !root.exists() {
                continue;
            }
            for path in modules(&root).into_values() {
                let lines = std::fs::read_to_string(&path).expect("source").lines().count();
                if lines > MAX_LINES {
                    long.push(format!("{} ({lines} lines)", path.display()));
                }
            }
        }
    }
    assert!(long.is_empty(), "files over {MAX_LINES} lines:\n{}", long.join("\n"));
}

#[test]
fn the_engine_depends_on_no_http_framework() {
    let manifest = std::fs::read_to_string(crate_dir("wagate-engine").join("Cargo.toml")).expect("Cargo.toml");
    let deps = manifest
        .split("[dependencies]")
        .nth(1)
        .and_then(|d| d.split("\n[").next())
        .expect("a [dependencies] table");
    for framework in [
        "axum",
        "hyper",
        "hyper-util",
        "tower",
        "tower-http",
        "actix-web",
        "warp",
        "poem",
    ] {
        let named = deps
            .lines()
            .any(|l| l.split(['=', '.', ' ']).next().is_some_and(|d| d.trim() == framework));
        assert!(!named, "wagate-engine depends on {framework}");
    }
}
