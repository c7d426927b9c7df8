//! `pyproject.toml` + `uv.lock`: the registry packages the runtime needs, pinned as locked.
//! From the project's own package, dependency edges are followed (optional dependencies only
//! where an edge asks for the extra; dev dependencies never), skipping edges whose marker does
//! not hold on AgentCore's platform. A reached package from anywhere but the public index
//! (git, URL, path, directory, editable, another registry) is refused, naming it: the build
//! installs from agentbuild's own index only.

use crate::error::ContextError;
use crate::marker;
use crate::requirements::normalize_name;
use crate::runtime::PythonRuntime;
use std::collections::{BTreeMap, BTreeSet};
use toml::{Table, Value};

pub(crate) const PYPROJECT: &str = "pyproject.toml";
pub(crate) const UV_LOCK: &str = "uv.lock";
/// The only registry a locked package may come from: the index the build installs from
/// (agentbuild's stack parameter) serves PyPI's names; a package locked from another registry
/// would be taken from ours under the same name (dependency confusion).
pub const LOCK_REGISTRY: &str = "https://pypi.org/simple";

pub(crate) fn parse_toml(file: &str, text: &str) -> Result<Table, ContextError> {
    text.parse::<Table>().map_err(|e| {
        let first = e.to_string().lines().next().unwrap_or("").to_string();
        ContextError::new(file, format!("not valid TOML: {first}"))
    })
}

/// The project's name and whether it declares any dependency (`[project]`).
pub(crate) fn project(pyproject: &Table) -> Result<(Option<String>, bool), ContextError> {
    let Some(project) = pyproject.get("project") else {
        return Ok((None, false));
    };
    let name = project
        .get("name")
        .and_then(Value::as_str)
        .map(normalize_name);
    let deps = match project.get("dependencies") {
        None => false,
        Some(Value::Array(a)) => !a.is_empty(),
        Some(_) => {
            return Err(ContextError::new(
                PYPROJECT,
                "`project.dependencies` must be a list",
            ))
        }
    };
    Ok((name, deps))
}

struct Locked<'a> {
    name: String,
    version: String,
    table: &'a Table,
}

fn packages(lock: &Table) -> Result<Vec<Locked<'_>>, ContextError> {
    let list = lock
        .get("package")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    list.iter()
        .map(|p| {
            let table = p
                .as_table()
                .ok_or_else(|| ContextError::new(UV_LOCK, "a `[[package]]` is not a table"))?;
            let name = table
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| ContextError::new(UV_LOCK, "a package without a name"))?;
            let version = table
                .get("version")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            Ok(Locked {
                name: normalize_name(name),
                version,
                table,
            })
        })
        .collect()
}

/// A dependency edge: the target's name, its version when the lock has several, the extras asked.
type Edge = (String, Option<String>, Vec<String>);

/// An edge `{ name, version?, marker?, extra? }`, if its marker holds on the runtime.
fn edge(
    package: &str,
    value: &Value,
    runtime: PythonRuntime,
) -> Result<Option<Edge>, ContextError> {
    let bad = || {
        ContextError::new(
            UV_LOCK,
            format!("package `{package}`: a dependency entry is malformed"),
        )
    };
    let t = value.as_table().ok_or_else(bad)?;
    let name = normalize_name(t.get("name").and_then(Value::as_str).ok_or_else(bad)?);
    if let Some(m) = t.get("marker").and_then(Value::as_str) {
        let parsed = marker::parse(m).map_err(|e| {
            ContextError::new(UV_LOCK, format!("package `{package}`: marker `{m}`: {e}"))
        })?;
        if !marker::evaluate(&parsed, runtime) {
            return Ok(None);
        }
    }
    let version = t.get("version").and_then(Value::as_str).map(str::to_string);
    let extras = t
        .get("extra")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(normalize_name)
                .collect()
        })
        .unwrap_or_default();
    Ok(Some((name, version, extras)))
}

/// The edges out of `p`: its dependencies, plus the optional ones of each requested extra.
fn edges_of(
    p: &Locked<'_>,
    extras: &[String],
    runtime: PythonRuntime,
) -> Result<Vec<Edge>, ContextError> {
    let mut values: Vec<&Value> = p
        .table
        .get("dependencies")
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    if let Some(optional) = p
        .table
        .get("optional-dependencies")
        .and_then(Value::as_table)
    {
        for (extra, deps) in optional {
            if extras.contains(&normalize_name(extra)) {
                values.extend(deps.as_array().map(|a| a.iter()).into_iter().flatten());
            }
        }
    }
    let mut out = Vec::new();
    for v in values {
        out.extend(edge(&p.name, v, runtime)?);
    }
    Ok(out)
}

/// Refuses a reached package that does not come from the public index.
fn check_source(p: &Locked<'_>) -> Result<(), ContextError> {
    let source = p.table.get("source").and_then(Value::as_table);
    let registry = source
        .and_then(|s| s.get("registry"))
        .and_then(Value::as_str);
    match registry {
        Some(r) if r.trim_end_matches('/') == LOCK_REGISTRY => Ok(()),
        Some(r) => Err(ContextError::new(UV_LOCK, format!("package `{}` is locked from registry `{r}`: only {LOCK_REGISTRY} is accepted (agentbuild installs from its own index)", p.name))),
        None => {
            let kind = source.and_then(|s| s.keys().next().cloned()).unwrap_or_else(|| "unknown".into());
            Err(ContextError::new(UV_LOCK, format!("package `{}` comes from a {kind} source: only packages from the index are accepted (no git, URL, path or editable dependencies)", p.name)))
        }
    }
}

fn find<'a, 'b>(
    all: &'b [Locked<'a>],
    name: &str,
    version: Option<&str>,
) -> Result<&'b Locked<'a>, ContextError> {
    let mut matches = all
        .iter()
        .filter(|p| p.name == name && version.is_none_or(|v| p.version == v));
    match (matches.next(), matches.next()) {
        (Some(p), None) => Ok(p),
        (Some(_), Some(_)) => Err(ContextError::new(
            UV_LOCK,
            format!(
                "package `{name}` is locked at several versions and an edge does not say which"
            ),
        )),
        (None, _) => Err(ContextError::new(
            UV_LOCK,
            format!("package `{name}` is a dependency but is not in the lock"),
        )),
    }
}

/// `name==version` of every registry package the project needs on `runtime`, sorted.
pub(crate) fn locked_requirements(
    lock: &Table,
    root: &str,
    runtime: PythonRuntime,
) -> Result<Vec<String>, ContextError> {
    let all = packages(lock)?;
    let root = all.iter().find(|p| p.name == root).ok_or_else(|| ContextError::new(UV_LOCK, format!("no package `{root}` (the project of pyproject.toml): is the lock stale? run `uv lock`")))?;
    // (package index, extras requested of it) already expanded.
    let mut seen: BTreeSet<(usize, Vec<String>)> = BTreeSet::new();
    let mut pins: BTreeMap<String, String> = BTreeMap::new();
    let index = |p: &Locked<'_>| all.iter().position(|q| std::ptr::eq(q, p)).unwrap_or(0);
    let mut queue = vec![(index(root), Vec::new())];
    while let Some((i, extras)) = queue.pop() {
        if !seen.insert((i, extras.clone())) {
            continue;
        }
        for (name, version, edge_extras) in edges_of(&all[i], &extras, runtime)? {
            let target = find(&all, &name, version.as_deref())?;
            if !std::ptr::eq(target, root) {
                check_source(target)?;
                pins.insert(target.name.clone(), target.version.clone());
            }
            queue.push((index(target), edge_extras));
        }
    }
    Ok(pins.into_iter().map(|(n, v)| format!("{n}=={v}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCK: &str = r#"
version = 1
[[package]]
name = "agent"
version = "0.1.0"
source = { virtual = "." }
dependencies = [
    { name = "strands-agents" },
    { name = "colorama", marker = "sys_platform == 'win32'" },
    { name = "uvicorn", extra = ["standard"] },
]
[package.dev-dependencies]
dev = [{ name = "pytest" }]

[[package]]
name = "strands-agents"
version = "1.10.0"
source = { registry = "https://pypi.org/simple" }
dependencies = [{ name = "typing-extensions", marker = "python_full_version < '3.13'" }]

[[package]]
name = "typing-extensions"
version = "4.15.0"
source = { registry = "https://pypi.org/simple" }

[[package]]
name = "colorama"
version = "0.4.6"
source = { registry = "https://pypi.org/simple" }

[[package]]
name = "uvicorn"
version = "0.35.0"
source = { registry = "https://pypi.org/simple" }
[package.optional-dependencies]
standard = [{ name = "httptools" }]

[[package]]
name = "httptools"
version = "0.6.4"
source = { registry = "https://pypi.org/simple" }

[[package]]
name = "pytest"
version = "8.0.0"
source = { registry = "https://pypi.org/simple" }
"#;

    fn pins(lock: &str, runtime: PythonRuntime) -> Result<Vec<String>, ContextError> {
        locked_requirements(&parse_toml(UV_LOCK, lock).unwrap(), "agent", runtime)
    }

    #[test]
    fn pins_what_the_runtime_needs_only() {
        assert_eq!(
            pins(LOCK, PythonRuntime::Python312).unwrap(),
            [
                "httptools==0.6.4",
                "strands-agents==1.10.0",
                "typing-extensions==4.15.0",
                "uvicorn==0.35.0"
            ]
        );
        // typing-extensions only below 3.13; colorama (win32) and pytest (dev) never.
        assert_eq!(pins(LOCK, PythonRuntime::Python313).unwrap().len(), 3);
    }

    #[test]
    fn refuses_a_git_dependency_naming_the_package() {
        let lock = LOCK.replace(
            "name = \"httptools\"\nversion = \"0.6.4\"\nsource = { registry = \"https://pypi.org/simple\" }",
            "name = \"httptools\"\nversion = \"0.6.4\"\nsource = { git = \"https://github.com/x/httptools\" }",
        );
        let err = pins(&lock, PythonRuntime::Python312).unwrap_err();
        assert_eq!(err.file, "uv.lock");
        assert!(
            err.message.contains("`httptools` comes from a git source"),
            "{err}"
        );
    }

    #[test]
    fn refuses_path_editable_and_foreign_registry_sources() {
        for (source, says) in [
            ("{ path = \"../wheels/x.whl\" }", "path source"),
            ("{ editable = \"../lib\" }", "editable source"),
            ("{ url = \"https://x/y.whl\" }", "url source"),
            (
                "{ registry = \"https://evil.example/simple\" }",
                "registry `https://evil.example/simple`",
            ),
        ] {
            let lock = LOCK.replace(
                "version = \"4.15.0\"\nsource = { registry = \"https://pypi.org/simple\" }",
                &format!("version = \"4.15.0\"\nsource = {source}"),
            );
            let err = pins(&lock, PythonRuntime::Python312).unwrap_err();
            assert!(
                err.message.contains("typing-extensions") && err.message.contains(says),
                "{err}"
            );
        }
    }

    #[test]
    fn refuses_a_lock_without_the_project() {
        let err = locked_requirements(
            &parse_toml(UV_LOCK, LOCK).unwrap(),
            "other",
            PythonRuntime::Python312,
        )
        .unwrap_err();
        assert!(err.message.contains("stale"), "{err}");
    }
}
