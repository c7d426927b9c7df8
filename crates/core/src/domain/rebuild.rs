//! Rebuild planning: which agents a scheduled run rebuilds, in which order, with which input.
//! Pure: the handler lists, reads and starts; these rules decide.

use super::execution::{RebuildInput, RebuildOf};
use super::record::BuildRecord;
use super::request::{is_name, ValidRequest};
use serde_json::Value;

/// An agent whose latest build can be rebuilt.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// `project/agent`
    pub label: String,
    pub project: String,
    pub agent: String,
    pub record: BuildRecord,
    pub request: ValidRequest,
}

/// `agents/<project>/<agent>/latest.json` -> (project, agent); anything else under `agents/`
/// is not a pointer.
pub fn latest_pointer(key: &str) -> Option<(&str, &str)> {
    let (project, agent) = key
        .strip_prefix("agents/")?
        .strip_suffix("/latest.json")?
        .split_once('/')?;
    (is_name(project) && is_name(agent)).then_some((project, agent))
}

/// A latest record as a candidate, or why it is skipped.
pub fn candidate(project: &str, agent: &str, record: BuildRecord) -> Result<Candidate, String> {
    if !record.status.is_success() {
        return Err(format!(
            "latest build {} is {}",
            record.build_id, record.status
        ));
    }
    let Some(request) = record.request.clone() else {
        return Err(
            "the latest record does not hold its request (written before records \
                    did); build it once through the API"
                .into(),
        );
    };
    Ok(Candidate {
        label: format!("{project}/{agent}"),
        project: project.to_string(),
        agent: agent.to_string(),
        record,
        request,
    })
}

/// Oldest latest build first: what a run defers leads the next one, so nobody starves.
pub fn order(candidates: &mut [Candidate]) {
    candidates.sort_by(|a, b| {
        (a.record.timestamps.requested_at, &a.label)
            .cmp(&(b.record.timestamps.requested_at, &b.label))
    });
}

/// The execution input of a candidate's rebuild: only which build it rebuilds and which run
/// asks. ValidateRequest takes the rest from that build's record (its request, forced; its
/// source version and SHA-256; its submission time, so that the rebuild replaces latest.json
/// only while latest still names that submission or an older one) — nothing trust-bearing
/// travels in the input.
pub fn rebuild_input(run: &str, c: &Candidate) -> Value {
    serde_json::to_value(RebuildInput {
        rebuild: RebuildOf {
            build_id: c.record.build_id.clone(),
            run: run.to_string(),
        },
    })
    .expect("a rebuild input always serializes")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::record::tests::{plan, running, t};
    use crate::domain::status::BuildStatus;

    fn record(status: BuildStatus, requested: &str) -> BuildRecord {
        let mut b = running();
        b.status = status;
        let mut p = plan();
        p.requested_at = t(requested);
        BuildRecord::new(&p, Some(&b), None, t(requested))
    }

    #[test]
    fn only_latest_pointers_of_valid_names_are_agents() {
        assert_eq!(latest_pointer("agents/p/a/latest.json"), Some(("p", "a")));
        for other in [
            "agents/p/latest.json",
            "agents/P/a/latest.json",
            "agents/p/a/b/latest.json",
            "builds/x.json",
        ] {
            assert_eq!(latest_pointer(other), None, "{other}");
        }
    }

    #[test]
    fn failures_and_records_without_a_request_are_skipped_with_a_reason() {
        let e = candidate(
            "p",
            "a",
            record(BuildStatus::Failed, "2026-11-28T10:00:00Z"),
        )
        .unwrap_err();
        assert!(e.contains("FAILED"), "{e}");
        let mut old = record(BuildStatus::Succeeded, "2026-11-28T10:00:00Z");
        old.request = None;
        assert!(candidate("p", "a", old)
            .unwrap_err()
            .contains("does not hold its request"));
    }

    #[test]
    fn the_oldest_latest_build_goes_first() {
        let mut cs = vec![
            candidate(
                "p",
                "new",
                record(BuildStatus::Succeeded, "2026-11-28T12:00:00Z"),
            )
            .unwrap(),
            candidate(
                "p",
                "old",
                record(BuildStatus::Reused, "2026-11-28T09:00:00Z"),
            )
            .unwrap(),
        ];
        order(&mut cs);
        assert_eq!(cs[0].agent, "old");
    }

    #[test]
    fn a_rebuild_input_names_only_the_build_and_the_run() {
        let mut r = record(BuildStatus::Succeeded, "2026-11-28T10:00:00Z");
        r.timestamps.submitted_at = Some(t("2026-11-01T08:00:00Z"));
        let input = rebuild_input("20261129T0300", &candidate("p", "a", r).unwrap());
        assert_eq!(
            input,
            serde_json::json!({"rebuild": {"buildId": "b-1", "run": "20261129T0300"}})
        );
    }

    #[test]
    fn a_candidate_keeps_the_recorded_request_with_its_deploy_settings() {
        use crate::domain::deploy_request::{validate_deploy, RolePolicy};
        let roles = RolePolicy {
            default_role: "arn:aws:iam::123456789012:role/agentbuild-runtime".into(),
            allowed: vec!["arn:aws:iam::123456789012:role/team-runtime".into()],
        };
        let spec = validate_deploy(
            &serde_json::json!({"protocol": "MCP", "environmentVariables": {"LOG_LEVEL": "info"},
                                "roleArn": "arn:aws:iam::123456789012:role/team-runtime"}),
            "agentbuild",
            "nexus-ai",
            "sales",
            Some(&roles),
        )
        .unwrap();
        let mut b = running();
        b.status = BuildStatus::Succeeded;
        let mut p = plan();
        p.deploy = Some(spec.clone());
        let r = BuildRecord::new(&p, Some(&b), None, t("2026-11-28T10:05:00Z"));
        let back: BuildRecord = serde_json::from_slice(&r.to_json()).unwrap();
        let c = candidate("nexus-ai", "sales", back).unwrap();
        // The resolved runtime name travels as the caller's: a rebuild deploys to the same one.
        assert_eq!(c.request.deploy, Some(spec.into()));
        let plain = BuildRecord::new(&plan(), Some(&b), None, t("2026-11-28T10:05:00Z"));
        assert_eq!(
            candidate("nexus-ai", "sales", plain)
                .unwrap()
                .request
                .deploy,
            None
        );
    }
}
