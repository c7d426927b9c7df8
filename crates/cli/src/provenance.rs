//! `agentbuild status --provenance`: a finished build's provenance (`domain::provenance`), the
//! SBOM its record names, and the vulnerability gate's verdict on its deploy.

use crate::service::BuildView;
use serde_json::{json, Value};

pub fn to_json(view: &BuildView) -> Value {
    let record = view.record.as_deref();
    json!({
        "buildId": view.build_id,
        "status": view.status(),
        "provenance": record.and_then(|r| r.provenance.as_ref()),
        "scan": record.and_then(|r| r.deployment.as_ref()).and_then(|d| d.scan.as_ref()),
    })
}

pub fn to_text(view: &BuildView, line: fn(&str, &str) -> String) -> String {
    let mut t = line("build", &view.build_id) + &line("status", &view.status());
    let Some(record) = view.record.as_deref() else {
        return t + &line("provenance", "none yet: the build has no final record");
    };
    let Some(p) = record.provenance.as_ref() else {
        return t + &line("provenance", "none: the record predates provenance");
    };
    let version = p.source_version_id.as_deref().unwrap_or("unversioned");
    t += &line("source", &format!("{} (version {version})", p.source_uri));
    t += &line("sha256", &p.source_sha256);
    t += &line(
        "codebuild",
        p.codebuild_build_id
            .as_deref()
            .unwrap_or("none (no build ran)"),
    );
    if let Some(from) = &p.reused_from {
        t += &line("reused", &format!("from build {from}"));
    }
    t += &line(
        "buildspec",
        &format!("{} sha256 {}", p.buildspec, p.buildspec_sha256),
    );
    for i in &p.builder_images {
        let digest = i.digest.as_deref().unwrap_or("tag only, no digest pinned");
        t += &line("builder", &format!("{} {} ({digest})", i.role, i.image));
    }
    let names = |v: &[String]| {
        if v.is_empty() {
            "none".to_string()
        } else {
            v.join(", ")
        }
    };
    t += &line(
        "build args",
        &format!("{} (names only)", names(&p.build_arg_names)),
    );
    t += &line(
        "secrets",
        &format!("{} (ids only)", names(&p.build_secret_ids)),
    );
    if let Some(scan) = record.deployment.as_ref().and_then(|d| d.scan.as_ref()) {
        let ids: Vec<&str> = scan
            .blocking
            .iter()
            .chain(&scan.accepted)
            .map(|f| f.id.as_str())
            .collect();
        t += &line(
            "scan gate",
            &format!(
                "{:?} ({}; {} finding(s) of {}) {}",
                scan.status,
                scan.threshold,
                scan.findings,
                scan.source,
                ids.join(", ")
            ),
        );
    }
    t
}
