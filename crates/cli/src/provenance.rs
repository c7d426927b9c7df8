//! `agentbuild status --provenance`: a finished build's provenance (`domain::provenance`), the
//! attestations and the registry's signature its record names, and the vulnerability gate's
//! verdict on its deploy.

use crate::service::BuildView;
use agentbuild_core::domain::provenance::Provenance;
use agentbuild_core::domain::record::BuildRecord;
use serde_json::{json, Value};

type Line = fn(&str, &str) -> String;

pub fn to_json(view: &BuildView) -> Value {
    let record = view.record.as_deref();
    json!({
        "buildId": view.build_id,
        "status": view.status(),
        "provenance": record.and_then(|r| r.provenance.as_ref()),
        "attestations": record.and_then(|r| r.image.attestations.as_ref()),
        "signature": record.and_then(|r| r.image.signature.as_ref()),
        "scan": record.and_then(|r| r.deployment.as_ref()).and_then(|d| d.scan.as_ref()),
    })
}

pub fn to_text(view: &BuildView, line: Line) -> String {
    let t = line("build", &view.build_id) + &line("status", view.status());
    let Some(record) = view.record.as_deref() else {
        return t + &line("provenance", "none yet: the build has no final record");
    };
    let Some(p) = record.provenance.as_ref() else {
        return t + &line("provenance", "none: the record predates provenance");
    };
    t + &origin_text(p, line) + &build_text(p, line) + &supply_text(record, line)
}

fn origin_text(p: &Provenance, line: Line) -> String {
    let version = p.source_version_id.as_deref().unwrap_or("unversioned");
    let mut t = line("source", &format!("{} (version {version})", p.source_uri));
    t += &line("sha256", &p.source_sha256);
    let build = p.codebuild_build_id.as_deref();
    t += &line("codebuild", build.unwrap_or("none (no build ran)"));
    if let Some(from) = &p.reused_from {
        t += &line("reused", &format!("from build {from}"));
    }
    t
}

fn build_text(p: &Provenance, line: Line) -> String {
    let spec = format!("{} sha256 {}", p.buildspec, p.buildspec_sha256);
    let mut t = line("buildspec", &spec);
    for i in &p.builder_images {
        let digest = i.digest.as_deref().unwrap_or("tag only, no digest pinned");
        t += &line("builder", &format!("{} {} ({digest})", i.role, i.image));
    }
    let names = |v: &[String]| match v {
        [] => "none".to_string(),
        _ => v.join(", "),
    };
    t += &line("build args", &(names(&p.build_arg_names) + " (names only)"));
    t + &line("secrets", &(names(&p.build_secret_ids) + " (ids only)"))
}

/// The image's attestations and the vulnerability gate's verdict.
fn supply_text(record: &BuildRecord, line: Line) -> String {
    let mut t = String::new();
    if let Some(uri) = &record.image.attestations {
        t += &line(
            "attested",
            &format!("{uri} (sbom.spdx.json, provenance.json)"),
        );
    }
    if let Some(sig) = &record.image.signature {
        let what = sig
            .reference
            .as_deref()
            .or(sig.reason.as_deref())
            .unwrap_or("");
        t += &line("signature", &format!("{:?} {what}", sig.status));
    }
    if let Some(scan) = record.deployment.as_ref().and_then(|d| d.scan.as_ref()) {
        let named = scan.blocking.iter().chain(&scan.accepted);
        let ids: Vec<&str> = named.map(|f| f.id.as_str()).collect();
        let verdict = format!(
            "{:?} ({}; {} finding(s) of {}) {}",
            scan.status,
            scan.threshold,
            scan.findings,
            scan.source,
            ids.join(", ")
        );
        t += &line("scan gate", &verdict);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use agentbuild_core::domain::signature::{ImageSignature, SignatureStatus};

    #[test]
    fn the_supply_lines_name_the_attestations_and_the_signature() {
        let mut record = crate::service::tests::record("SUCCEEDED");
        record.image.attestations = Some("s3://b/attestations/t/".into());
        record.image.signature = Some(ImageSignature {
            status: SignatureStatus::Complete,
            signing_profile_arn: Some("arn:aws:signer:us-east-1:1:/signing-profiles/p".into()),
            digest: Some("sha256:5151".into()),
            reference: Some("repo@sha256:5151".into()),
            reason: None,
        });
        let text = supply_text(&record, |k, v| format!("{k}: {v}\n"));
        assert_eq!(
            text,
            "attested: s3://b/attestations/t/ (sbom.spdx.json, provenance.json)\n\
             signature: Complete repo@sha256:5151\n"
        );
    }
}
