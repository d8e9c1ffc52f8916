//! The layers of `src/lib.rs`'s layout, checked: a module imports only from
//! its own layer and the layers before it, and the modules of one layer do
//! not import each other in a cycle. Read from the `crate::` (and
//! `super::`) paths of every source file outside its tests.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers, first to last; a module may import from its own layer and
/// the ones before it. Every top-level module must be listed.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "core",
        &["event", "parse", "detect", "report", "random", "process"],
    ),
    ("store", &["store"]),
    (
        "services",
        &[
            "ingest", "outbox", "mailer", "notify", "schedule", "metrics", "secret", "contain",
        ],
    ),
    ("adapters", &["source", "server", "policy"]),
    ("config", &["config"]),
    ("entry points", &["daemon", "cli", "shutdown"]),
];

/// Imports between top-level modules: (from, to) → a file and line that
/// makes it, for the message.
type Edges = BTreeMap<(String, String), String>;

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|(_, mods)| mods.contains(&module))
}

/// The module path of a source file below `src/` (`store/merge.rs` →
/// `["store", "merge"]`; `mod.rs` names its folder).
fn module_path(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

/// The top-level modules one file's non-test code names, with line numbers.
fn imports(module: &[String], text: &str) -> Vec<(String, usize)> {
    // Tests (at the end of a file, by convention here) may use anything.
    let code = text.split("#[cfg(test)]").next().unwrap_or("");
    let mut found = Vec::new();
    for (n, line) in code.lines().enumerate() {
        let line = line.split("//").next().unwrap_or("");
        for (i, _) in line.match_indices("crate::") {
            let rest = &line[i + "crate::".len()..];
            for name in first_segments(rest) {
                found.push((name, n + 1));
            }
        }
        // `super::` climbs from the file's own module.
        for (i, _) in line.match_indices("super::") {
            if i > 0 && line[..i].ends_with("::") {
                continue; // counted with the `super::` before it
            }
            let mut rest = &line[i..];
            let mut depth = 0;
            while let Some(r) = rest.strip_prefix("super::") {
                depth += 1;
                rest = r;
            }
            if depth < module.len() {
                // Still inside the same top-level module.
                continue;
            }
            for name in first_segments(rest) {
                found.push((name, n + 1));
            }
        }
    }
    found
}

/// `name::...` → `[name]`; `{a, b::c}` → `[a, b]`.
fn first_segments(rest: &str) -> Vec<String> {
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    match rest.strip_prefix('{') {
        Some(list) => list
            .split('}')
            .next()
            .unwrap_or("")
            .split(',')
            .map(|item| ident(item.trim()))
            .filter(|name| !name.is_empty() && name != "self")
            .collect(),
        None => vec![ident(rest)]
            .into_iter()
            .filter(|n| !n.is_empty())
            .collect(),
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every import between two top-level modules of the crate in `src`.
fn edges(src: &Path) -> Edges {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut edges = Edges::new();
    for path in files {
        let rel = path.strip_prefix(src).expect("below src");
        let module = module_path(rel);
        let Some(top) = module.first().cloned() else {
            continue;
        };
        if top == "lib" || top == "main" || module.last().is_some_and(|m| m == "tests") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read source");
        for (to, line) in imports(&module, &text) {
            if to != top {
                edges
                    .entry((top.clone(), to))
                    .or_insert_with(|| format!("{}:{line}", rel.display()));
            }
        }
    }
    edges
}

/// What is wrong with `edges`, one line each.
fn violations(edges: &Edges) -> Vec<String> {
    let mut wrong = Vec::new();
    for ((from, to), at) in edges {
        match (layer_of(from), layer_of(to)) {
            (None, _) => wrong.push(format!("{from} is in no layer of LAYERS ({at})")),
            (_, None) => wrong.push(format!("{to} is in no layer of LAYERS ({at})")),
            (Some(a), Some(b)) if b > a => wrong.push(format!(
                "{from} ({}) imports {to} ({}), a later layer, at {at}",
                LAYERS[a].0, LAYERS[b].0
            )),
            _ => {}
        }
    }
    // Cycles within a layer: an edge whose target reaches back to its source.
    for (from, to) in edges.keys() {
        if layer_of(from) == layer_of(to) && reaches(edges, to, from, &mut BTreeSet::new()) {
            wrong.push(format!(
                "{from} and {to} import each other (through {})",
                edges[&(from.clone(), to.clone())]
            ));
        }
    }
    wrong
}

fn reaches(edges: &Edges, from: &str, target: &str, seen: &mut BTreeSet<String>) -> bool {
    if from == target {
        return true;
    }
    if !seen.insert(from.to_owned()) {
        return false;
    }
    edges
        .keys()
        .filter(|(a, _)| a == from)
        .any(|(_, b)| reaches(edges, b, target, seen))
}

#[test]
fn modules_import_only_from_their_layer_and_the_ones_before() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let edges = edges(&src);
    assert!(edges.len() > 20, "too few imports found: {edges:?}");
    let wrong = violations(&edges);
    assert!(
        wrong.is_empty(),
        "the layers are broken:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn every_top_level_module_has_a_layer() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lib = std::fs::read_to_string(src.join("lib.rs")).expect("lib.rs");
    let declared: Vec<&str> = lib
        .lines()
        .filter_map(|l| l.strip_prefix("pub mod "))
        .map(|l| l.trim_end_matches(';'))
        .collect();
    assert!(declared.len() > 10, "{declared:?}");
    for m in declared {
        assert!(layer_of(m).is_some(), "module {m} is in no layer of LAYERS");
    }
}

#[test]
fn the_check_catches_an_upward_import_and_a_cycle() {
    let module = |p: &str| module_path(Path::new(p));
    // A core module reaching the server, through a braced import and a
    // `super::` path that climbs out of its module.
    let found = imports(
        &module("detect/sender.rs"),
        "use crate::{event::Event, server::AppState};\nfn f() { super::super::store::x(); }\n#[cfg(test)]\nuse crate::daemon;",
    );
    let names: Vec<&str> = found.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["event", "server", "store"]);
    let mut edges = Edges::new();
    edges.insert(
        ("detect".into(), "server".into()),
        "detect/sender.rs:1".into(),
    );
    edges.insert(("mailer".into(), "notify".into()), "mailer.rs:3".into());
    edges.insert(("notify".into(), "mailer".into()), "notify/mod.rs:9".into());
    let wrong = violations(&edges);
    assert_eq!(wrong.len(), 3, "{wrong:?}");
    assert!(wrong[0].contains("detect (core) imports server (adapters)"));
    assert!(wrong[1].contains("import each other"));
    // `super::` inside a module stays inside it.
    assert!(imports(&module("store/bulk/held.rs"), "use super::ids::IdKey;").is_empty());
}
