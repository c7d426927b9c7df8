//! Helpers shared by the contract and end-to-end tests.

use std::path::{Path, PathBuf};

/// The repository's root (this crate lives in `tests/`).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

pub fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("reading {rel}: {e}"))
}

pub fn json(rel: &str) -> serde_json::Value {
    serde_json::from_str(&read(rel)).unwrap_or_else(|e| panic!("{rel} is not JSON: {e}"))
}

/// Every `${Name}` placeholder in a text, in order of appearance, without repeats.
pub fn placeholders(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else { break };
        let name = after[..end].to_string();
        if !out.contains(&name) {
            out.push(name);
        }
        rest = &after[end + 1..];
    }
    out
}

/// The build state machine's definition.
pub const DEFINITION: &str = "statemachine/build.asl.json";

/// The fleet-rebuild state machine's definition.
pub const FLEET_DEFINITION: &str = "statemachine/rebuild.asl.json";

/// The README's function table, made from the catalog (a test keeps the README equal to it).
pub fn functions_table() -> String {
    let mut out =
        String::from("| function | invoked by | environment | SDK operations | IAM actions |\n|---|---|---|---|---|\n");
    for f in agentbuild_core::testing::catalog::FUNCTIONS {
        let code = |items: &[&str]| {
            items
                .iter()
                .map(|i| format!("`{i}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} |\n",
            f.name,
            f.invoked_by,
            code(f.env),
            code(f.operations),
            code(f.iam_actions)
        ));
    }
    out
}

/// The errors every Task of both definitions retries (full jitter): AWS's transient Lambda
/// errors, a crashed or timed-out function (every step is safe to run again), our own
/// `TransientAwsError`.
pub const TRANSIENT: &[&str] = &[
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
    "Lambda.Unknown",
    "TransientAwsError",
];

/// Every error name an `ErrorEquals` anywhere in an ASL definition lists.
pub fn error_names(definition: &serde_json::Value) -> Vec<String> {
    fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                if let Some(serde_json::Value::Array(names)) = m.get("ErrorEquals") {
                    out.extend(names.iter().map(|n| n.as_str().unwrap().to_string()));
                }
                m.values().for_each(|c| walk(c, out));
            }
            serde_json::Value::Array(a) => a.iter().for_each(|c| walk(c, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(definition, &mut out);
    out
}
