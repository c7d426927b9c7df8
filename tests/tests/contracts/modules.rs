//! The one module-graph checker, for the core and the CLI: no module's production part (the
//! whole file but its `#[cfg(test)]` items, wherever they stand) over 500 lines, and no import
//! cycle between modules.

use agentbuild_tests::root;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Module path (`domain::plan`, `handlers::api`) -> its production text.
fn modules(src: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("a source dir") {
            let path = entry.expect("an entry").path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().and_then(|e| e.to_str()) != Some("rs") {
                continue;
            }
            let rel = path.strip_prefix(src).unwrap().with_extension("");
            let name = rel.to_string_lossy().replace('/', "::");
            let name = name.trim_end_matches("::mod").to_string();
            if name == "lib" || name == "main" || name.split("::").any(|s| s == "tests") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            out.insert(name, production(&text));
        }
    }
    out
}

/// `text` without its top-level test-only items: a `#[cfg(test)]` (or `#[cfg(all(test, …))]`)
/// attribute at the start of a line and the item under it (`mod tests;`, or a block up to its
/// closing brace at the start of a line). Whatever comes after a test module still counts.
fn production(text: &str) -> String {
    let mut out = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if !(line.starts_with("#[cfg(test)]") || line.starts_with("#[cfg(all(test")) {
            out.push(line);
            continue;
        }
        // Further attributes of the item, then the item itself.
        let mut item = lines.next();
        while item.is_some_and(|l| l.starts_with("#[")) {
            item = lines.next();
        }
        if item.is_some_and(|l| !l.trim_end().ends_with(';')) {
            for l in lines.by_ref() {
                if l == "}" {
                    break;
                }
            }
        }
    }
    out.join("\n")
}

/// The modules each module's production part names through `crate::` or `super::` paths
/// (the longest known module of each path).
fn imports(modules: &BTreeMap<String, String>) -> BTreeMap<String, BTreeSet<String>> {
    let path_at = |text: &str, i: usize| -> Vec<String> {
        text[i..]
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .next()
            .unwrap_or("")
            .split("::")
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()
    };
    let longest = |segments: &[String]| {
        (1..=segments.len())
            .rev()
            .map(|n| segments[..n].join("::"))
            .find(|m| modules.contains_key(m))
    };
    modules
        .iter()
        .map(|(name, production)| {
            // Code only: a doc comment's link is no import.
            let code: Vec<&str> = production
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .collect();
            let text = &code.join("\n");
            let mut edges = BTreeSet::new();
            for (i, _) in text.match_indices("crate::") {
                edges.extend(longest(&path_at(text, i + "crate::".len())));
            }
            let parent: Vec<String> = name
                .rsplit_once("::")
                .map(|(p, _)| p.split("::").map(String::from).collect())
                .unwrap_or_default();
            for (i, _) in text.match_indices("super::") {
                let mut full = parent.clone();
                full.extend(path_at(text, i + "super::".len()));
                edges.extend(longest(&full));
            }
            edges.remove(name);
            (name.clone(), edges)
        })
        .collect()
}

fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> BTreeMap<String, BTreeSet<String>> {
    // Peel off modules that import nothing left; whatever remains is in (or behind) a cycle.
    let mut left = graph.clone();
    while let Some(leaf) = left
        .iter()
        .find(|(_, edges)| edges.iter().all(|e| !left.contains_key(e)))
        .map(|(m, _)| m.clone())
    {
        left.remove(&leaf);
    }
    left
}

#[test]
fn the_core_has_no_import_cycle() {
    let modules = modules(&root().join("crates/core/src"));
    let graph = imports(&modules);
    assert!(
        graph["domain::plan"].contains("domain::request"),
        "{graph:?}"
    );
    assert!(graph["services::live_status"].contains("services::records"));
    let left = cycles(&graph);
    assert!(left.is_empty(), "modules in import cycles: {left:#?}");
}

/// The CLI's modules import downwards only (its lib.rs names the layers).
#[test]
fn the_cli_has_no_import_cycle() {
    let modules = modules(&root().join("crates/cli/src"));
    let graph = imports(&modules);
    assert!(graph["aws::direct"].contains("aws") && graph["cli"].contains("commands"));
    assert!(graph["terminal"].is_empty(), "terminal is a leaf");
    let left = cycles(&graph);
    assert!(left.is_empty(), "modules in import cycles: {left:#?}");
}

#[test]
fn production_after_a_test_module_still_counts() {
    let text = "fn a() {}\n#[cfg(test)]\nmod tests {\n    fn t() {}\n}\n\nfn b() {}\n\
                #[cfg(all(test, feature = \"lambda\"))]\npub(crate) mod fakes;\nfn c() {}";
    assert_eq!(production(text), "fn a() {}\n\nfn b() {}\nfn c() {}");
}

#[test]
fn a_cycle_is_found() {
    let graph = BTreeMap::from([
        ("a".to_string(), BTreeSet::from(["b".to_string()])),
        ("b".to_string(), BTreeSet::from(["a".to_string()])),
        ("c".to_string(), BTreeSet::from(["a".to_string()])),
    ]);
    assert_eq!(
        cycles(&graph).len(),
        3,
        "c depends on the cycle: it stays too"
    );
}

#[test]
fn no_production_part_exceeds_500_lines() {
    for src in ["crates/core/src", "crates/cli/src"] {
        for (name, text) in modules(&root().join(src)) {
            let n = text.lines().count();
            assert!(n <= 500, "{src}/{name}: {n} production lines");
        }
    }
}

/// The functions of a production text longer than `max` lines (signature to closing brace):
/// `(name, lines)`. A function ends at the first line that is its own indentation plus `}`.
fn long_functions(text: &str, max: usize) -> Vec<(String, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut long = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(name) = fn_name(line) else { continue };
        let indent = &line[..line.len() - line.trim_start().len()];
        // A declaration without a body (a trait's) ends with `;` before any `{`.
        let declaration = lines[i..]
            .iter()
            .find(|l| l.contains('{') || l.trim_end().ends_with(';'))
            .is_none_or(|l| !l.contains('{'));
        if declaration || line.trim_end().ends_with('}') {
            continue;
        }
        let close = format!("{indent}}}");
        let end = lines[i..].iter().position(|l| l.trim_end() == close);
        let n = end.map_or(lines.len() - i, |e| e + 1);
        if n > max {
            long.push((name, n));
        }
    }
    long
}

/// `fn name` after any visibility and qualifiers at the start of a line.
fn fn_name(line: &str) -> Option<String> {
    let mut rest = line.trim_start();
    for prefix in [
        "pub(crate) ",
        "pub(super) ",
        "pub ",
        "const ",
        "async ",
        "unsafe ",
    ] {
        rest = rest.strip_prefix(prefix).unwrap_or(rest);
    }
    let rest = rest.strip_prefix("fn ")?;
    let name: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    (!name.is_empty()).then_some(name)
}

/// Functions fit on a screen: no production function of the core or the CLI over 60 lines (a
/// Lambda's main is ≤ 20 lines by the house style).
#[test]
fn no_production_function_exceeds_60_lines() {
    let mut long = Vec::new();
    for src in ["crates/core/src", "crates/cli/src"] {
        for (name, text) in modules(&root().join(src)) {
            for (f, n) in long_functions(&text, 60) {
                long.push(format!("{src}/{name}::{f}: {n} lines"));
            }
        }
    }
    assert!(long.is_empty(), "functions over 60 lines: {long:#?}");
}

#[test]
fn a_long_function_is_found_and_a_trait_declaration_is_not() {
    let body = "    x();\n".repeat(61);
    let text = format!(
        "trait T {{\n    fn decl(\n        a: u8,\n    ) -> u8;\n}}\npub async fn long() {{\n{body}}}\n\
         fn short() {{ 1 }}\nimpl S {{\n    fn inner() {{\n        y();\n    }}\n}}"
    );
    assert_eq!(long_functions(&text, 60), vec![("long".to_string(), 63)]);
}
