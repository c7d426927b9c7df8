//! What a command prints on stdout, and its exit code.
//!
//! `--output json`: the last line on stdout is one JSON object — `{"buildId", "status",
//! "record"}` (plus `executionArn` after a submit, `error` when a build ended without a record),
//! or for a rejected request `{"status": "REJECTED", "error": {"code", "field", "message"}}`.
//! Exit codes: 0 SUCCEEDED / REUSED (and a build still running or just submitted), 1 any other
//! final status, 2 a rejected request, 3 no answer (configuration, network, AWS errors).
//! `cancel`: 0 when the build ended STOPPED, 1 when it had finished on its own (`{"buildId",
//! "status", "error": {"code": "AlreadyFinished", ...}}`), 2 a malformed id, 3 no answer.
//!
//! Everything in it that came from the service is printed through [`crate::terminal`]: text
//! without control sequences, JSON with no raw control character.

use std::io::Write;

use agentbuild_core::domain::deployment::{Deployment, DeploymentStatus};
use agentbuild_core::domain::ending::Reported;
use agentbuild_core::domain::record::BuildRecord;
use agentbuild_core::domain::status::BuildStatus;
use clap::ValueEnum;
use serde_json::{json, Value};

use crate::error::{CliError, EXIT_NOT_SUCCEEDED};
use crate::service::{BuildView, Rejection, Started, ViewState};
use crate::terminal::{json_line, sanitize};

pub const EXIT_OK: u8 = 0;
pub const EXIT_BUILD_FAILED: u8 = EXIT_NOT_SUCCEEDED;
pub const EXIT_REJECTED: u8 = 2;

/// `--output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Human-readable lines.
    Text,
    /// One JSON object: {"buildId","status","record"}, or {"status":"REJECTED","error":{...}}.
    Json,
}

#[derive(Debug, Clone, Copy, clap::Args)]
pub struct OutputArg {
    /// Output format: with `json`, the last line on stdout is one JSON object.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

/// What a command found out.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Submitted, not waited for.
    Submitted(Started),
    Build(BuildView),
    Rejected(Rejection),
    /// An agent's latest successful build.
    Latest(Box<BuildRecord>),
    /// A build after `cancel`.
    Cancelled(BuildView),
    /// `status --provenance`: where the build's artifact came from and what the gate said.
    Provenance(BuildView),
    /// `cancel` of a build that had finished on its own, with this status.
    AlreadyFinished {
        build_id: String,
        status: Reported,
    },
}

impl Outcome {
    /// `status --provenance`: the same look, printed as its provenance.
    pub fn with_provenance(self, provenance: bool) -> Self {
        match self {
            Outcome::Build(view) if provenance => Outcome::Provenance(view),
            other => other,
        }
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            Outcome::Submitted(_) | Outcome::Latest(_) => EXIT_OK,
            Outcome::Rejected(_) => EXIT_REJECTED,
            Outcome::Cancelled(view) if view.state == ViewState::Final(BuildStatus::Stopped) => {
                EXIT_OK
            }
            Outcome::Cancelled(_) | Outcome::AlreadyFinished { .. } => EXIT_BUILD_FAILED,
            Outcome::Build(view) | Outcome::Provenance(view) => match &view.state {
                ViewState::Running => EXIT_OK,
                // Built, but its deployment failed: the execution failed DeployFailed.
                ViewState::Final(s) if s.is_success() && deployment_failed(view) => {
                    EXIT_BUILD_FAILED
                }
                ViewState::Final(s) if s.is_success() => EXIT_OK,
                ViewState::Final(_) => EXIT_BUILD_FAILED,
                ViewState::Rejected(_) => EXIT_REJECTED,
            },
        }
    }

    pub fn to_json(&self) -> Value {
        match self {
            Outcome::Submitted(s) => json!({
                "buildId": s.build_id,
                "status": "RUNNING",
                "record": null,
                "executionArn": s.execution_arn,
            }),
            Outcome::Rejected(r) => rejected_json(r),
            Outcome::AlreadyFinished { build_id, status } => json!({
                "buildId": build_id,
                "status": status,
                "record": null,
                "error": {"code": "AlreadyFinished", "message": finished_message(build_id, status.as_str())},
            }),
            Outcome::Build(view) | Outcome::Cancelled(view) => match &view.state {
                ViewState::Rejected(r) => rejected_json(r),
                _ => {
                    let mut v = json!({
                        "buildId": view.build_id,
                        "status": view.status(),
                        "record": view.record,
                    });
                    if let (None, Some(e)) = (&view.record, &view.error) {
                        v["error"] = json!(e);
                    }
                    v
                }
            },
            Outcome::Latest(r) => json!({
                "buildId": r.build_id,
                "status": r.status,
                "record": r,
            }),
            Outcome::Provenance(view) => crate::provenance::to_json(view),
        }
    }

    pub fn render(&self, format: Output, out: &mut dyn Write) -> Result<(), CliError> {
        let text = match format {
            Output::Json => format!("{}\n", json_line(&self.to_json())),
            Output::Text => self.to_text(),
        };
        out.write_all(text.as_bytes()).map_err(CliError::Stdout)
    }

    pub fn to_text(&self) -> String {
        match self {
            Outcome::Submitted(s) => {
                let mut t = line("build", &s.build_id);
                let status = if s.existing {
                    "RUNNING (submitted before)"
                } else {
                    "RUNNING"
                };
                t += &line("status", status);
                t += &line("execution", &s.execution_arn);
                t
            }
            Outcome::Rejected(r) => rejected_text(r),
            Outcome::AlreadyFinished { build_id, status } => {
                line("build", build_id)
                    + &line("status", status.as_str())
                    + &line("error", &finished_message(build_id, status.as_str()))
            }
            Outcome::Build(view) | Outcome::Cancelled(view) => match &view.state {
                ViewState::Rejected(r) => line("build", &view.build_id) + &rejected_text(r),
                _ => view_text(view),
            },
            Outcome::Latest(r) => record_text(r, r.status.as_str()),
            Outcome::Provenance(view) => crate::provenance::to_text(view, line),
        }
    }
}

fn finished_message(build_id: &str, status: &str) -> String {
    format!("AlreadyFinished: build {build_id} had finished on its own ({status}); nothing was cancelled")
}

fn rejected_json(r: &Rejection) -> Value {
    json!({"status": "REJECTED", "error": r})
}

fn rejected_text(r: &Rejection) -> String {
    line("status", "REJECTED") + &line("error", &format!("{} {}: {}", r.code, r.field, r.message))
}

/// `key` and `value` in columns. The value is sanitized and trimmed (a message from CodeBuild
/// or Step Functions often ends in a line break); a value of several lines goes on under
/// itself.
fn line(key: &str, value: &str) -> String {
    let value = sanitize(value);
    let mut lines = value.trim().lines().map(str::trim_end);
    let mut out = format!("{key:<10} {}\n", lines.next().unwrap_or_default());
    for more in lines {
        if !more.is_empty() {
            out += &format!("{:<10} {more}", "");
        }
        out.push('\n');
    }
    out
}

fn view_text(view: &BuildView) -> String {
    let mut status = view.status().to_owned();
    if let Some(step) = &view.step {
        status = format!("{status} ({step})");
    }
    let mut t = match &view.record {
        Some(r) => record_text(r, &status),
        None => line("build", &view.build_id) + &line("status", &status),
    };
    if let (None, Some(e)) = (
        &view.record.as_ref().and_then(|r| r.error.as_ref()),
        &view.error,
    ) {
        t += &line("error", &format!("{}: {}", e.kind, e.message));
    }
    t
}

fn deployment_failed(view: &BuildView) -> bool {
    view.record
        .as_ref()
        .and_then(|r| r.deployment.as_ref())
        .is_some_and(|d| d.status == DeploymentStatus::Failed)
}

fn deployment_text(d: &Deployment) -> String {
    let mut t = format!("{} {}", d.status.as_str(), d.runtime_name);
    if let Some(id) = &d.runtime_id {
        t += &format!(" ({id}");
        if let Some(v) = &d.runtime_version {
            t += &format!(", version {v}");
        }
        t += ")";
    }
    if let Some(action) = &d.action {
        t += &format!(" {}", action.to_lowercase());
    }
    if let Some(why) = &d.failure_reason {
        t += &format!(": {why}");
    }
    t
}

fn record_text(r: &BuildRecord, status: &str) -> String {
    let mut status = status.to_owned();
    if let Some(secs) = r.durations.total_seconds {
        status = format!("{status} in {}", duration(secs));
    }
    let mut t = line("build", &r.build_id);
    t += &line("status", &status);
    t += &line(
        "agent",
        &format!("{}/{} (trigger {})", r.project, r.agent, trigger(r)),
    );
    let mut image = format!("{}:{}", r.image.repository_uri, r.image.tag);
    if let Some(digest) = &r.image.digest {
        image = format!("{image}@{digest}");
    }
    t += &line("image", &image);
    t += &line("source", &r.source.uri);
    if let Some(from) = &r.reused_from {
        t += &line("reused", &format!("the image of build {from}"));
    }
    if let Some(id) = &r.codebuild.build_id {
        let mut cb = id.clone();
        if let Some(p) = &r.codebuild.failed_phase {
            cb = format!("{cb} — phase {} {}", p.name, p.status);
            if let Some(m) = &p.message {
                cb = format!("{cb}: {m}");
            }
        }
        t += &line("codebuild", &cb);
    }
    if let Some(url) = &r.codebuild.log_url {
        t += &line("logs", url);
    }
    if let Some(e) = &r.error {
        t += &line("error", &format!("{}: {}", e.kind, e.message));
    }
    if let Some(d) = &r.deployment {
        t += &line("deployment", &deployment_text(d));
        if let Some(uri) = &d.container_uri {
            t += &line("runs", uri);
        }
    }
    t
}

fn trigger(r: &BuildRecord) -> String {
    serde_json::to_value(r.trigger)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

/// `1h 02m 03s` / `2m 05s` / `7s`.
pub fn duration(secs: i64) -> String {
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m {s:02}s"),
        _ => format!("{h}h {m:02}m {s:02}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::tests::record;
    use agentbuild_core::domain::record::{ErrorInfo, FailedPhase};
    use agentbuild_core::domain::status::BuildStatus;

    fn final_view(status: BuildStatus) -> BuildView {
        BuildView {
            build_id: "cli-0123".into(),
            state: ViewState::Final(status),
            step: None,
            record: Some(Box::new(record(status.as_str()))),
            codebuild: None,
            error: None,
            settled: true,
        }
    }

    #[test]
    fn exit_code_for_each_final_status() {
        use BuildStatus::*;
        for (status, code) in [
            (Succeeded, 0),
            (Reused, 0),
            (Failed, 1),
            (Fault, 1),
            (Stopped, 1),
            (TimedOut, 1),
            (Error, 1),
        ] {
            let outcome = Outcome::Build(final_view(status));
            assert_eq!(outcome.exit_code(), code, "{status}");
            let json = outcome.to_json();
            assert_eq!(json["status"], status.as_str());
            assert_eq!(json["buildId"], "cli-0123");
            assert_eq!(json["record"]["status"], status.as_str());
        }
    }

    #[test]
    fn a_build_whose_deployment_failed_exits_1_and_shows_why() {
        let mut view = final_view(BuildStatus::Succeeded);
        let deployment: Deployment = serde_json::from_value(json!({
            "status": "FAILED", "runtimeId": "rt-1", "runtimeArn": "arn", "runtimeName": "ab_demo_x",
            "runtimeVersion": "2", "containerUri": "repo@sha256:ff", "action": "UPDATED",
            "failureReason": "image is not arm64", "startedAt": "2026-11-28T10:00:00Z",
            "finishedAt": "2026-11-28T10:01:00Z"
        }))
        .unwrap();
        view.record.as_mut().unwrap().deployment = Some(deployment.clone());
        let outcome = Outcome::Build(view.clone());
        assert_eq!(outcome.exit_code(), 1);
        let text = outcome.to_text();
        assert!(
            text.contains(
                "deployment FAILED ab_demo_x (rt-1, version 2) updated: image is not arm64"
            ),
            "{text}"
        );
        assert_eq!(
            outcome.to_json()["record"]["deployment"]["status"],
            "FAILED"
        );
        let mut ready = deployment;
        ready.status = DeploymentStatus::Ready;
        ready.failure_reason = None;
        view.record.as_mut().unwrap().deployment = Some(ready);
        let outcome = Outcome::Build(view);
        assert_eq!(outcome.exit_code(), 0);
        assert!(
            outcome.to_text().contains("runs       repo@sha256:ff"),
            "{}",
            outcome.to_text()
        );
    }

    #[test]
    fn rejections_exit_2_with_code_field_and_message() {
        let r = Rejection::invalid("agent", "must match ^[a-z0-9][a-z0-9-]{0,62}$");
        for outcome in [
            Outcome::Rejected(r.clone()),
            Outcome::Build(BuildView {
                build_id: "cli-1".into(),
                state: ViewState::Rejected(r.clone()),
                step: None,
                record: None,
                codebuild: None,
                error: None,
                settled: true,
            }),
        ] {
            assert_eq!(outcome.exit_code(), 2);
            assert_eq!(
                outcome.to_json(),
                json!({"status": "REJECTED", "error": {
                    "code": "InvalidRequest", "field": "agent",
                    "message": "must match ^[a-z0-9][a-z0-9-]{0,62}$"
                }})
            );
            assert!(outcome
                .to_text()
                .contains("InvalidRequest agent: must match"));
        }
    }

    #[test]
    fn json_output_is_one_line_ending_the_output() {
        let mut out = Vec::new();
        Outcome::Build(final_view(BuildStatus::Failed))
            .render(Output::Json, &mut out)
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count(), 1);
        let last: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
        assert_eq!(last["status"], "FAILED");
    }

    #[test]
    fn running_and_submitted_builds_exit_0() {
        let started = Started {
            build_id: "cli-1".into(),
            execution_arn: "arn:x".into(),
            existing: false,
        };
        let outcome = Outcome::Submitted(started);
        assert_eq!(outcome.exit_code(), 0);
        assert_eq!(
            outcome.to_json(),
            json!({"buildId": "cli-1", "status": "RUNNING", "record": null, "executionArn": "arn:x"})
        );
        let running = BuildView {
            build_id: "cli-1".into(),
            state: ViewState::Running,
            step: Some("BUILD".into()),
            record: None,
            codebuild: None,
            error: None,
            settled: true,
        };
        assert_eq!(Outcome::Build(running).exit_code(), 0);
    }

    #[test]
    fn an_ended_build_without_record_carries_the_execution_error() {
        let view = BuildView {
            build_id: "cli-1".into(),
            state: ViewState::Final(BuildStatus::TimedOut),
            step: None,
            record: None,
            codebuild: None,
            error: Some(ErrorInfo::new("States.Timeout", "execution timed out")),
            settled: false,
        };
        let outcome = Outcome::Build(view);
        assert_eq!(outcome.exit_code(), 1);
        assert_eq!(outcome.to_json()["error"]["type"], "States.Timeout");
        assert!(outcome
            .to_text()
            .contains("States.Timeout: execution timed out"));
    }

    #[test]
    fn text_shows_image_logs_and_duration() {
        let text = Outcome::Build(final_view(BuildStatus::Succeeded)).to_text();
        assert!(text.contains("SUCCEEDED in 1m 05s"), "{text}");
        assert!(
            text.contains("agentbuild:sample-agent-0123456789abcdef01234567@sha256:ff"),
            "{text}"
        );
        assert!(
            text.contains("logs       https://console.aws.amazon.com/"),
            "{text}"
        );
    }

    /// A FAILED record with `text` in every field a service or a build controls.
    fn hostile_record(text: &str) -> BuildRecord {
        let mut r = record("FAILED");
        r.build_id = format!("cli-{text}");
        r.project = format!("demo{text}");
        r.agent = format!("agent{text}");
        r.source.uri = format!("s3://b/{text}.zip");
        r.image.repository_uri = format!("repo{text}");
        r.image.tag = format!("tag{text}");
        r.image.digest = Some(format!("sha256:{text}"));
        r.reused_from = Some(format!("cli-{text}"));
        r.codebuild.build_id = Some(format!("agentbuild:{text}"));
        r.codebuild.failed_phase = Some(FailedPhase {
            name: format!("BUILD{text}"),
            status: format!("FAILED{text}"),
            code: Some(format!("COMMAND_EXECUTION_ERROR{text}")),
            message: Some(format!("Error while executing command: {text}")),
        });
        r.codebuild.log_url = Some(format!("https://console.aws.amazon.com/{text}"));
        r.error = Some(ErrorInfo::new(format!("FAILED{text}"), text));
        r
    }

    /// Every outcome a command prints, with `text` wherever the service or a build put text.
    fn hostile_outcomes(text: &str) -> Vec<Outcome> {
        let rejection = Rejection {
            code: format!("InvalidRequest{text}"),
            field: format!("buildArgs.{text}"),
            message: format!("must match {text}"),
        };
        let live = BuildView {
            build_id: format!("cli-{text}"),
            state: ViewState::Running,
            step: Some(format!("BUILD{text}")),
            record: None,
            codebuild: None,
            error: None,
            settled: true,
        };
        let ended = BuildView {
            state: ViewState::Final(BuildStatus::TimedOut),
            error: Some(ErrorInfo::new(format!("States.Timeout{text}"), text)),
            ..live.clone()
        };
        let rejected = BuildView {
            state: ViewState::Rejected(rejection.clone()),
            ..live.clone()
        };
        vec![
            Outcome::Build(BuildView {
                record: Some(Box::new(hostile_record(text))),
                state: ViewState::Final(BuildStatus::Failed),
                ..live.clone()
            }),
            Outcome::Latest(Box::new(hostile_record(text))),
            Outcome::Build(live),
            Outcome::Build(ended),
            Outcome::Build(rejected),
            Outcome::Rejected(rejection),
            Outcome::Submitted(Started {
                build_id: format!("cli-{text}"),
                execution_arn: format!("arn:{text}"),
                existing: false,
            }),
        ]
    }

    #[test]
    fn text_output_carries_no_control_sequence_from_the_service() {
        for (hostile, clean) in crate::terminal::tests::HOSTILE {
            for outcome in hostile_outcomes(hostile) {
                let mut out = Vec::new();
                outcome.render(Output::Text, &mut out).unwrap();
                let text = String::from_utf8(out).unwrap();
                crate::terminal::tests::assert_inert(&text);
                let first = clean.lines().next().unwrap_or_default().trim();
                assert!(text.contains(first), "{hostile:?} -> {text}");
            }
        }
    }

    #[test]
    fn a_failed_records_summary_shows_what_the_service_said_without_its_escapes() {
        let r = hostile_record("\x1b]52;c;cm0gLXJmIH4=\x07\x1b[2K\rSUCCEEDED\u{9b}1A");
        let text = Outcome::Latest(Box::new(r)).to_text();
        assert!(
            text.contains("error      FAILEDSUCCEEDED: SUCCEEDED\n"),
            "{text}"
        );
        assert!(!text.contains("52;c;"), "{text}");
    }

    #[test]
    fn json_output_escapes_what_serde_json_writes_raw_and_keeps_the_value() {
        for (hostile, _) in crate::terminal::tests::HOSTILE {
            for outcome in hostile_outcomes(hostile) {
                let mut out = Vec::new();
                outcome.render(Output::Json, &mut out).unwrap();
                let text = String::from_utf8(out).unwrap();
                assert!(!text.trim_end().chars().any(char::is_control), "{text:?}");
                assert_eq!(text.lines().count(), 1, "{text:?}");
                let back: Value = serde_json::from_str(text.trim_end()).unwrap();
                assert_eq!(back, outcome.to_json(), "the same value, escaped");
            }
        }
    }

    #[test]
    fn the_failure_line_of_a_summary_ends_its_line_once() {
        let mut r = record("FAILED");
        r.codebuild.failed_phase = Some(FailedPhase {
            name: "BUILD".into(),
            status: "FAILED".into(),
            code: Some("COMMAND_EXECUTION_ERROR".into()),
            message: Some(
                "Error while executing command: docker buildx build. Reason: exit status 1\n"
                    .into(),
            ),
        });
        r.error = Some(ErrorInfo::new("FAILED", "CodeBuild build FAILED\r\n"));
        let text = Outcome::Latest(Box::new(r)).to_text();
        assert!(!text.contains("\n\n"), "{text}");
        assert!(
            text.contains("phase BUILD FAILED: Error while executing command: docker buildx build. Reason: exit status 1\nlogs "),
            "{text}"
        );
        assert!(
            text.ends_with("error      FAILED: CodeBuild build FAILED\n"),
            "{text}"
        );
        // A message of several lines goes on under itself.
        assert_eq!(
            line("error", "first\n\n  second  \n"),
            "error      first\n\n             second\n"
        );
    }

    #[test]
    fn durations() {
        assert_eq!(duration(7), "7s");
        assert_eq!(duration(125), "2m 05s");
        assert_eq!(duration(3723), "1h 02m 03s");
    }
}
