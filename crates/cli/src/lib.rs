//! The `agentbuild` command-line client: packages a build context, submits it as a build
//! request (through the API, or straight to the state machine) and follows the build.
//!
//! Layout: [`cli`] parses and wires; [`commands`] holds each command's logic over the small
//! [`service::Service`] trait, which [`aws`] implements twice — [`aws::api`] through the API
//! (over [`http`]), [`aws::direct`] over the core's adapters — both reading the core's answer
//! into one view ([`service::view`]); [`output`] is the stdout contract and exit codes;
//! [`settings`] reads flags, the environment and `.local/env`; [`terminal`] (a leaf) strips
//! control sequences from whatever the service or a build log says, before it is printed.
//! Modules import downwards only (a test below checks): cli → commands → output, progress,
//! request → service → package, error, terminal; cli → aws → service, http, settings.

pub mod aws;
pub mod cli;
pub mod commands;
pub mod dockerignore;
pub mod error;
pub mod http;
pub mod output;
pub mod package;
pub mod progress;
pub mod request;
pub mod service;
pub mod settings;
pub mod terminal;

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::Path;

    /// Each module's production part (above its `#[cfg(test)]`), by module path.
    fn modules() -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let mut dirs = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("src")];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                    continue;
                }
                let rel = path.strip_prefix(env!("CARGO_MANIFEST_DIR")).unwrap();
                let name = rel.with_extension("").to_string_lossy().replace('/', "::");
                let name = name.trim_start_matches("src::").trim_end_matches("::mod");
                let text = std::fs::read_to_string(&path).unwrap();
                let production = text.split("\n#[cfg(test)]").next().unwrap().to_owned();
                out.insert(name.to_owned(), production);
            }
        }
        out
    }

    #[test]
    fn no_production_part_exceeds_500_lines() {
        for (name, text) in modules() {
            assert!(
                text.lines().count() <= 500,
                "{name}: {}",
                text.lines().count()
            );
        }
    }

    /// What each module's production part names of the others: `crate::<module>` (the longest
    /// module path named), and `super::` for its parent.
    fn imports() -> BTreeMap<String, BTreeSet<String>> {
        let modules = modules();
        let graph = modules.iter().map(|(name, text)| {
            let named = text.match_indices("crate::").filter_map(|(i, _)| {
                let rest = &text[i + "crate::".len()..];
                let path: Vec<&str> = rest
                    .split(|c: char| !(c.is_ascii_lowercase() || c == '_' || c == ':'))
                    .next()?
                    .split("::")
                    .collect();
                (1..=path.len())
                    .rev()
                    .map(|n| path[..n].join("::"))
                    .find(|m| modules.contains_key(m))
            });
            let parent = name.rsplit_once("::").map(|(p, _)| p.to_owned());
            let supers = parent.filter(|_| text.contains("super::"));
            let edges = named.chain(supers).filter(|m| m != name).collect();
            (name.clone(), edges)
        });
        graph.collect()
    }

    #[test]
    fn modules_import_each_other_without_a_cycle() {
        let graph = imports();
        assert!(graph["aws::direct"].contains("aws") && graph["cli"].contains("commands"));
        assert!(graph["terminal"].is_empty(), "terminal is a leaf");
        // Peel off modules that import nothing left; whatever remains is in a cycle.
        let mut left = graph.clone();
        while let Some(leaf) = left
            .iter()
            .find(|(_, edges)| edges.iter().all(|e| !left.contains_key(e)))
            .map(|(m, _)| m.clone())
        {
            left.remove(&leaf);
        }
        assert!(left.is_empty(), "modules in import cycles: {left:?}");
    }
}
