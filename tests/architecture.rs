//! The layers of `src/lib.rs`'s layout, checked: a module imports only from
//! its own layer and the layers before it, and the modules of one layer do
//! not import each other in a cycle. Read from the `crate::` (and
//! `super::`) paths of every source file outside its tests, in the daemon
//! crate and in the core crate (`crates/core`), whose manifest must also
//! stay free of the I/O stack.

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
            "ingest", "outbox", "reports", "notify", "schedule", "metrics", "secret", "contain",
        ],
    ),
    ("adapters", &["source", "server", "policy"]),
    ("config", &["config"]),
    ("entry points", &["daemon", "cli", "shutdown"]),
];

/// Crates the core crate must never depend on: what waits, or talks to
/// the outside.
const NOT_IN_CORE: &[&str] = &[
    "tokio",
    "sled",
    "axum",
    "hyper",
    "tower",
    "tower-http",
    "lettre",
    "reqwest",
    "libc",
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

/// `text` with comments and the insides of string and character literals
/// blanked (newlines kept, so byte offsets and line numbers still match):
/// what is left is code, whose braces can be counted.
fn code_only(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = b.to_vec();
    let blank = |out: &mut Vec<u8>, from: usize, to: usize| {
        for c in &mut out[from..to.min(b.len())] {
            if *c != b'\n' {
                *c = b' ';
            }
        }
    };
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'/' if b.get(i + 1) == Some(&b'/') => {
                let end = text[i..].find('\n').map_or(b.len(), |n| i + n);
                blank(&mut out, i, end);
                i = end;
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let end = text[i + 2..].find("*/").map_or(b.len(), |n| i + 2 + n + 2);
                blank(&mut out, i, end);
                i = end;
            }
            b'r' if (b.get(i + 1) == Some(&b'"') || b.get(i + 1) == Some(&b'#'))
                && (i == 0 || !is_ident(b[i - 1])) =>
            {
                let hashes = b[i + 1..].iter().take_while(|&&c| c == b'#').count();
                let open = i + 1 + hashes;
                if b.get(open) != Some(&b'"') {
                    i += 1;
                    continue;
                }
                let close = format!("\"{}", "#".repeat(hashes));
                let end = text[open + 1..]
                    .find(&close)
                    .map_or(b.len(), |n| open + 1 + n + close.len());
                blank(&mut out, open + 1, end - close.len());
                i = end;
            }
            b'"' => {
                let mut j = i + 1;
                while j < b.len() && b[j] != b'"' {
                    j += if b[j] == b'\\' { 2 } else { 1 };
                }
                blank(&mut out, i + 1, j);
                i = j + 1;
            }
            // A character literal ('x', '\n', '{'), not a lifetime ('a).
            b'\'' => {
                let end = if b.get(i + 1) == Some(&b'\\') {
                    text[i + 2..].find('\'').map(|n| i + 2 + n)
                } else {
                    let len = text[i + 1..].chars().next().map_or(1, char::len_utf8);
                    (b.get(i + 1 + len) == Some(&b'\'')).then_some(i + 1 + len)
                };
                match end {
                    Some(end) => {
                        blank(&mut out, i + 1, end);
                        i = end + 1;
                    }
                    None => i += 1,
                }
            }
            _ => i += 1,
        }
    }
    String::from_utf8(out).expect("only ASCII bytes were replaced")
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// `code` with every item under `#[cfg(test)]` blanked, wherever it is in
/// the file (a `mod tests { … }` at the end, a helper in the middle, a
/// `mod tests;`): tests may use anything.
fn without_tests(code: &str) -> String {
    let b = code.as_bytes();
    let mut out = b.to_vec();
    let mut from = 0;
    while let Some(n) = code[from..].find("#[cfg(test)]") {
        let start = from + n;
        // The item ends at its first `;` outside braces, or with the brace
        // its body opened.
        let mut depth = 0usize;
        let mut end = b.len();
        for (j, &c) in b.iter().enumerate().skip(start + "#[cfg(test)]".len()) {
            match c {
                b'{' => depth += 1,
                b'}' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        end = j + 1;
                        break;
                    }
                }
                b';' if depth == 0 => {
                    end = j + 1;
                    break;
                }
                _ => {}
            }
        }
        for c in &mut out[start..end] {
            if *c != b'\n' {
                *c = b' ';
            }
        }
        from = end;
    }
    String::from_utf8(out).expect("only ASCII bytes were replaced")
}

/// The top-level modules one file's non-test code names, with line numbers.
fn imports(module: &[String], text: &str) -> Vec<(String, usize)> {
    let code = without_tests(&code_only(text));
    let line_at = |at: usize| code[..at].matches('\n').count() + 1;
    let mut found = Vec::new();
    for (at, _) in code.match_indices("crate::") {
        // `$crate::` in a macro is the crate too; `foo_crate::` is not.
        if at > 0 && is_ident(code.as_bytes()[at - 1]) {
            continue;
        }
        for name in first_segments(&code[at + "crate::".len()..]) {
            found.push((name, line_at(at)));
        }
    }
    // `super::` climbs from the file's own module.
    for (at, _) in code.match_indices("super::") {
        let before = &code[..at];
        if before.ends_with("::") || before.bytes().last().is_some_and(is_ident) {
            continue; // counted with the `super::` before it
        }
        let mut rest = &code[at..];
        let mut depth = 0;
        while let Some(r) = rest.strip_prefix("super::") {
            depth += 1;
            rest = r.trim_start();
        }
        if depth < module.len() {
            continue; // still inside the same top-level module
        }
        for name in first_segments(rest) {
            found.push((name, line_at(at)));
        }
    }
    found.sort_by_key(|(_, line)| *line);
    found
}

/// `name::...` → `[name]`; `{a, b::{c, d}, e}` (over several lines too)
/// → `[a, b, e]`.
fn first_segments(rest: &str) -> Vec<String> {
    let ident = |s: &str| -> String {
        s.trim_start()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let Some(list) = rest.strip_prefix('{') else {
        return Some(ident(rest))
            .into_iter()
            .filter(|n| !n.is_empty())
            .collect();
    };
    // The items at depth one of the braces, split at their commas.
    let mut items = vec![String::new()];
    let mut depth = 1;
    for c in list.chars() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            ',' if depth == 1 => {
                items.push(String::new());
                continue;
            }
            _ => {}
        }
        if let Some(item) = items.last_mut() {
            item.push(c);
        }
    }
    items
        .iter()
        .map(|item| ident(item))
        .filter(|name| !name.is_empty() && name != "self")
        .collect()
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

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn modules_import_only_from_their_layer_and_the_ones_before() {
    let edges = edges(&root().join("src"));
    assert!(edges.len() > 20, "too few imports found: {edges:?}");
    let wrong = violations(&edges);
    assert!(
        wrong.is_empty(),
        "the layers are broken:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_core_crate_has_no_cycles_and_no_io_stack() {
    let edges = edges(&root().join("crates/core/src"));
    assert!(edges.len() >= 4, "too few imports found: {edges:?}");
    for (from, to) in edges.keys() {
        assert_eq!(layer_of(from), Some(0), "{from} in the core crate");
        assert_eq!(
            layer_of(to),
            Some(0),
            "{from} imports {to} in the core crate"
        );
    }
    let wrong = violations(&edges);
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));

    let manifest = std::fs::read_to_string(root().join("crates/core/Cargo.toml"))
        .expect("crates/core/Cargo.toml");
    let manifest: toml::Table = manifest.parse().expect("core manifest is TOML");
    let mut deps = Vec::new();
    for table in ["dependencies", "dev-dependencies", "build-dependencies"] {
        if let Some(t) = manifest.get(table).and_then(|t| t.as_table()) {
            deps.extend(t.keys().cloned());
        }
    }
    assert!(deps.iter().any(|d| d == "chrono"), "{deps:?}");
    for dep in &deps {
        assert!(
            !NOT_IN_CORE.contains(&dep.as_str()),
            "the core crate depends on {dep}, which does I/O"
        );
    }
}

#[test]
fn every_top_level_module_has_a_layer() {
    let lib = std::fs::read_to_string(root().join("src/lib.rs")).expect("lib.rs");
    let core = std::fs::read_to_string(root().join("crates/core/src/lib.rs")).expect("core lib");
    let declared: Vec<&str> = lib
        .lines()
        .chain(core.lines())
        .filter_map(|l| {
            l.strip_prefix("pub mod ")
                .or_else(|| l.strip_prefix("pub(crate) mod "))
        })
        .map(|l| l.trim_end_matches(';'))
        .collect();
    assert!(declared.len() > 15, "{declared:?}");
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
    edges.insert(
        ("reports".into(), "notify".into()),
        "reports/mail.rs:3".into(),
    );
    edges.insert(
        ("notify".into(), "reports".into()),
        "notify/mod.rs:9".into(),
    );
    let wrong = violations(&edges);
    assert_eq!(wrong.len(), 3, "{wrong:?}");
    assert!(wrong[0].contains("detect (core) imports server (adapters)"));
    assert!(wrong[1].contains("import each other"));
    // `super::` inside a module stays inside it.
    assert!(
        imports(
            &module("store/writer/bulk/held.rs"),
            "use super::ids::IdKey;"
        )
        .is_empty()
    );
}

#[test]
fn code_after_a_test_item_and_multi_line_imports_are_read() {
    let module = |p: &str| module_path(Path::new(p));
    // A test helper in the middle of the file hides nothing after it.
    let text = "use crate::event::Event;\n\
                #[cfg(test)]\nfn helper() { let _ = crate::daemon::run; }\n\
                fn later() { crate::server::serve(); }\n\
                #[cfg(test)]\nmod tests;\n\
                use crate::{\n    store::Store,\n    notify::{\n        Notifier,\n    },\n    self,\n};\n";
    let found = imports(&module("detect/x.rs"), text);
    assert_eq!(
        found,
        [
            ("event".to_owned(), 1),
            ("server".to_owned(), 4),
            ("store".to_owned(), 7),
            ("notify".to_owned(), 7),
        ],
        "{found:?}"
    );
    // Paths in comments, strings and character literals are not imports,
    // and a brace in a literal does not end a test module early.
    let text = "// crate::server\nconst A: &str = \"crate::daemon\";\n\
                #[cfg(test)]\nmod tests { const B: char = '}'; const C: &str = r#\"}\"#; use crate::cli; }\n\
                fn f<'a>(x: &'a str) { crate::store::open(x); }\n";
    let found = imports(&module("detect/x.rs"), text);
    assert_eq!(found, [("store".to_owned(), 5)], "{found:?}");
}
