//! What a build makes: a container image (today's path) or a code zip AgentCore runs directly
//! (`codeConfiguration`). The request's `artifact`, `entryPoint` and `runtime`, their rules,
//! and the S3 keys of code artifacts and dependency layers.

use super::form::{context_path_rule, string_newtype, Rule};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The request's `artifact`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum ArtifactKind {
    /// An image built by CodeBuild from the context's Dockerfile, pushed to ECR.
    #[default]
    Container,
    /// A zip of the context's code and its dependencies (binary wheels), run by AgentCore.
    Code,
}

impl ArtifactKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ArtifactKind::Container => "container",
            ArtifactKind::Code => "code",
        }
    }

    pub fn is_container(&self) -> bool {
        *self == ArtifactKind::Container
    }
}

impl TryFrom<String> for ArtifactKind {
    type Error = Rule;
    fn try_from(s: String) -> Result<Self, Rule> {
        match s.as_str() {
            "container" => Ok(ArtifactKind::Container),
            "code" => Ok(ArtifactKind::Code),
            _ => Err("must be \"container\" or \"code\"".into()),
        }
    }
}

impl From<ArtifactKind> for String {
    fn from(k: ArtifactKind) -> String {
        k.as_str().to_string()
    }
}

impl fmt::Display for ArtifactKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// AgentCore's limit of one `entryPoint` item.
pub const MAX_ENTRY_POINT_LEN: usize = 128;

string_newtype!(
    /// The Python file that starts the agent (`main.py`, `src/agent.py`): AgentCore's
    /// `entryPoint` for a code artifact, `python <entryPoint>` in agentbuild's own Dockerfile
    /// for a container whose context has none. A relative path inside the context in plain
    /// characters that cannot climb out (the rule of `dockerfile`), ending in `.py`.
    EntryPoint,
    entry_point_rule
);

fn entry_point_rule(path: &str) -> Result<(), Rule> {
    context_path_rule(path, MAX_ENTRY_POINT_LEN)?;
    if !path.ends_with(".py") || path.ends_with("/.py") || path == ".py" {
        return Err("must name a Python file (ending in .py)".into());
    }
    Ok(())
}

/// AgentCore's Python runtimes for code artifacts (`PYTHON_3_10` … `PYTHON_3_14`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum PythonRuntime {
    Python310,
    Python311,
    Python312,
    Python313,
    Python314,
}

impl PythonRuntime {
    pub const ALL: [PythonRuntime; 5] = [
        PythonRuntime::Python310,
        PythonRuntime::Python311,
        PythonRuntime::Python312,
        PythonRuntime::Python313,
        PythonRuntime::Python314,
    ];
    /// The default: the newest AgentCore supports.
    pub const NEWEST: PythonRuntime = PythonRuntime::Python314;

    /// AgentCore's name (`PYTHON_3_13`).
    pub fn as_str(self) -> &'static str {
        match self {
            PythonRuntime::Python310 => "PYTHON_3_10",
            PythonRuntime::Python311 => "PYTHON_3_11",
            PythonRuntime::Python312 => "PYTHON_3_12",
            PythonRuntime::Python313 => "PYTHON_3_13",
            PythonRuntime::Python314 => "PYTHON_3_14",
        }
    }

    /// The interpreter version wheels are chosen for (`3.13`).
    pub fn python_version(self) -> &'static str {
        match self {
            PythonRuntime::Python310 => "3.10",
            PythonRuntime::Python311 => "3.11",
            PythonRuntime::Python312 => "3.12",
            PythonRuntime::Python313 => "3.13",
            PythonRuntime::Python314 => "3.14",
        }
    }
}

impl Default for PythonRuntime {
    fn default() -> Self {
        PythonRuntime::NEWEST
    }
}

pub const RUNTIME_RULE: &str =
    "must be one of PYTHON_3_10, PYTHON_3_11, PYTHON_3_12, PYTHON_3_13, PYTHON_3_14";

impl FromStr for PythonRuntime {
    type Err = Rule;
    fn from_str(s: &str) -> Result<Self, Rule> {
        PythonRuntime::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| RUNTIME_RULE.into())
    }
}

impl TryFrom<String> for PythonRuntime {
    type Error = Rule;
    fn try_from(s: String) -> Result<Self, Rule> {
        s.parse()
    }
}

impl From<PythonRuntime> for String {
    fn from(r: PythonRuntime) -> String {
        r.as_str().to_string()
    }
}

impl fmt::Display for PythonRuntime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The plan's artifact: what to make, with its settings resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ArtifactSpec {
    #[default]
    Container,
    #[serde(rename_all = "camelCase")]
    Code {
        entry_point: EntryPoint,
        runtime: PythonRuntime,
    },
}

impl ArtifactSpec {
    pub fn kind(&self) -> ArtifactKind {
        match self {
            ArtifactSpec::Container => ArtifactKind::Container,
            ArtifactSpec::Code { .. } => ArtifactKind::Code,
        }
    }

    pub fn is_container(&self) -> bool {
        matches!(self, ArtifactSpec::Container)
    }
}

/// A dependency layer as a build used it: its content key, and whether it was there already
/// (no CodeBuild build ran for it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DependencyLayer {
    pub key: String,
    pub reused: bool,
}

/// A code artifact as recorded (`artifact` of the record and of `Build Finished`): the exact
/// S3 object version AgentCore runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactRecord {
    pub kind: ArtifactKind,
    /// `s3://<bucket>/artifacts/<project>/<agent>/<sha256>.zip`
    pub uri: String,
    pub bucket: String,
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    pub sha256: String,
    pub size: u64,
    /// `None` for a context without requirements (nothing to install).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dependencies: Option<DependencyLayer>,
    /// The dependency layer's SBOM and scan (issue 24); `None` without dependencies, or for a
    /// layer built before SBOMs were.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sbom: Option<SbomRef>,
}

/// Where a code artifact's SBOM is, and what it lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SbomRef {
    /// `s3://<bucket>/dependencies/<key>.sbom.json`
    pub uri: String,
    /// `CycloneDX 1.5 JSON`
    pub format: String,
    /// Components listed (the installed distributions).
    pub packages: u64,
    /// `s3://<bucket>/dependencies/<key>.scan.json`: pip-audit's summary of the same lock.
    pub scan: String,
}

impl SbomRef {
    /// The reference to layer `key`'s SBOM, from the SBOM's own text; `None` when it is not a
    /// CycloneDX document.
    pub fn of_layer(bucket: &str, key: &str, sbom: &[u8]) -> Option<Self> {
        let doc: serde_json::Value = serde_json::from_slice(sbom).ok()?;
        (doc.get("bomFormat")?.as_str()? == "CycloneDX").then(|| SbomRef {
            uri: format!("s3://{bucket}/{}", layer_sbom_key(key)),
            format: format!(
                "CycloneDX {} JSON",
                doc["specVersion"].as_str().unwrap_or("?")
            ),
            packages: doc["components"].as_array().map_or(0, |c| c.len() as u64),
            scan: format!("s3://{bucket}/{}", layer_scan_key(key)),
        })
    }
}

/// `dependencies/<key>.sbom.json`: the layer's CycloneDX SBOM (written by the layer build).
pub fn layer_sbom_key(key: &str) -> String {
    format!("dependencies/{key}.sbom.json")
}

/// `dependencies/<key>.scan.json`: the layer build's vulnerability scan summary.
pub fn layer_scan_key(key: &str) -> String {
    format!("dependencies/{key}.scan.json")
}

/// What AgentCore runs for a code artifact (`codeConfiguration`): the exact S3 object
/// version, the entry point and the runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeRun {
    pub bucket: String,
    pub key: String,
    pub version_id: Option<String>,
    pub entry_point: String,
    pub runtime: PythonRuntime,
}

impl CodeRun {
    /// What a deployment names as running (its `containerUri` field for an image):
    /// `s3://<bucket>/<key>?versionId=<v>` — the same text from the request and from
    /// GetAgentRuntime, so a check can tell this artifact from another.
    pub fn uri(&self) -> String {
        code_uri(&self.bucket, &self.key, self.version_id.as_deref())
    }
}

/// `s3://<bucket>/<key>` with `?versionId=<v>` when versioned.
pub fn code_uri(bucket: &str, key: &str, version_id: Option<&str>) -> String {
    match version_id {
        Some(v) => format!("s3://{bucket}/{key}?versionId={v}"),
        None => format!("s3://{bucket}/{key}"),
    }
}

/// `artifacts/<project>/<agent>/<sha256>.zip`: a code artifact, named by its own content.
pub fn artifact_key(project: &str, agent: &str, sha256: &str) -> String {
    format!("artifacts/{project}/{agent}/{sha256}.zip")
}

/// `artifacts/<project>/<agent>/inputs/<tag>.json`: which artifact an input (the plan's content
/// tag) was assembled into — what makes an identical source REUSED without assembling it again.
pub fn artifact_index_key(project: &str, agent: &str, content_tag: &str) -> String {
    format!("artifacts/{project}/{agent}/inputs/{content_tag}.json")
}

/// `dependencies/<key>.zip`: a dependency layer, shared by every agent with the same
/// requirements, runtime and platform.
pub fn layer_key(key: &str) -> String {
    format!("dependencies/{key}.zip")
}

/// `dependencies/<key>.requirements.txt`: the canonical requirements the layer build installs.
pub fn layer_requirements_key(key: &str) -> String {
    format!("dependencies/{key}.requirements.txt")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtimes_read_and_print_agentcore_names() {
        for r in PythonRuntime::ALL {
            assert_eq!(r.as_str().parse::<PythonRuntime>().unwrap(), r);
        }
        assert_eq!(PythonRuntime::default(), PythonRuntime::Python314);
        assert_eq!(PythonRuntime::Python312.python_version(), "3.12");
        for bad in ["python3.12", "PYTHON_3_9", "NODE_22", ""] {
            assert!(bad.parse::<PythonRuntime>().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_spec_serializes_with_its_kind() {
        let spec = ArtifactSpec::Code {
            entry_point: "main.py".to_string().try_into().unwrap(),
            runtime: PythonRuntime::Python313,
        };
        let v = serde_json::to_value(&spec).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"kind": "code", "entryPoint": "main.py", "runtime": "PYTHON_3_13"})
        );
        assert_eq!(serde_json::from_value::<ArtifactSpec>(v).unwrap(), spec);
    }
}
