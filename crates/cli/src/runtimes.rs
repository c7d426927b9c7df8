//! `agentbuild runtimes <project>/<agent>` (list) and `agentbuild retire <project>/<agent>
//! <runtimeName> [--force]`: an agent's AgentCore runtimes through the API (`GET` / `DELETE
//! /projects/{project}/agents/{agent}/runtimes[/{runtimeName}]`). Only the API retires: the
//! caller's IAM identity is what the retirement records, and its route is what a caller policy
//! scopes.

use agentbuild_core::domain::deploy_request::is_runtime_name;
use agentbuild_core::domain::request::{is_name, NAME_RULE};
use agentbuild_core::domain::runtime_names::{AgentRuntime, AgentRuntimes};
use serde_json::{json, Value};
use std::io::Write;

use crate::error::CliError;
use crate::output::{Output, EXIT_OK, EXIT_REJECTED};
use crate::service::{Rejection, Service};
use crate::terminal::sanitize;

/// What `runtimes` or `retire` found out.
#[derive(Debug, Clone, PartialEq)]
pub enum RuntimesOutcome {
    Listed(AgentRuntimes),
    Retired(Box<AgentRuntime>),
    Refused(Rejection),
}

fn names(project: &str, agent: &str) -> Result<(), CliError> {
    for (what, name) in [("project", project), ("agent", agent)] {
        if !is_name(name) {
            return Err(CliError::Usage(format!("{what} `{name}`: {NAME_RULE}")));
        }
    }
    Ok(())
}

pub async fn list<S: Service>(
    svc: &S,
    project: &str,
    agent: &str,
) -> Result<RuntimesOutcome, CliError> {
    names(project, agent)?;
    Ok(RuntimesOutcome::Listed(svc.runtimes(project, agent).await?))
}

pub async fn retire<S: Service>(
    svc: &S,
    project: &str,
    agent: &str,
    name: &str,
    force: bool,
) -> Result<RuntimesOutcome, CliError> {
    names(project, agent)?;
    if !is_runtime_name(name) {
        return Err(CliError::Usage(format!(
            "runtime name `{name}`: not an AgentCore runtime name"
        )));
    }
    Ok(match svc.retire(project, agent, name, force).await? {
        Ok(entry) => RuntimesOutcome::Retired(Box::new(entry)),
        Err(refused) => RuntimesOutcome::Refused(refused),
    })
}

impl RuntimesOutcome {
    pub fn exit_code(&self) -> u8 {
        match self {
            RuntimesOutcome::Refused(_) => EXIT_REJECTED,
            _ => EXIT_OK,
        }
    }

    pub fn to_json(&self) -> Value {
        match self {
            RuntimesOutcome::Listed(all) => json!(all),
            RuntimesOutcome::Retired(entry) => json!(entry),
            RuntimesOutcome::Refused(r) => json!({"status": "REJECTED", "error": r}),
        }
    }

    pub fn to_text(&self) -> String {
        match self {
            RuntimesOutcome::Listed(all) if all.runtimes.is_empty() => {
                format!(
                    "{}/{} has no runtime names bound yet\n",
                    all.project, all.agent
                )
            }
            RuntimesOutcome::Listed(all) => all.runtimes.iter().map(entry_line).collect(),
            RuntimesOutcome::Retired(entry) => entry_line(entry),
            RuntimesOutcome::Refused(r) => {
                format!("rejected  {}: {} ({})\n", r.field, r.message, r.code)
            }
        }
    }

    pub fn render(&self, format: Output, out: &mut dyn Write) -> Result<u8, CliError> {
        let text = match format {
            Output::Json => format!("{}\n", self.to_json()),
            Output::Text => self.to_text(),
        };
        out.write_all(sanitize(&text).as_bytes())
            .map_err(CliError::Stdout)?;
        Ok(self.exit_code())
    }
}

/// `<name>  <STATUS>  <runtime id>  build <id>  [retired <when> by <who>]`.
fn entry_line(e: &AgentRuntime) -> String {
    let b = &e.binding;
    let status = serde_json::to_value(e.status).ok();
    let status = status.as_ref().and_then(Value::as_str).unwrap_or("?");
    let mut line = format!(
        "{}  {status}  {}  build {}",
        b.runtime_name,
        b.runtime_id.as_deref().unwrap_or("-"),
        b.last_build_id.as_deref().unwrap_or("-"),
    );
    if let Some(r) = &b.retired {
        line += &format!(
            "  retired {} by {}",
            r.at.format("%Y-%m-%dT%H:%M:%SZ"),
            r.by
        );
    }
    line + "\n"
}

/// `rollback`: the history entry of the move, as JSON on stdout.
pub async fn rollback_command<S: Service>(
    svc: &S,
    (project, agent): (&str, &str),
    to: Option<String>,
    (endpoint, runtime_name): (Option<String>, Option<String>),
    stdout: &mut dyn Write,
) -> Result<u8, CliError> {
    let entry = rollback(svc, project, agent, to, (endpoint, runtime_name)).await?;
    writeln!(stdout, "{entry}").map_err(|e| CliError::Api(format!("stdout: {e}")))?;
    Ok(0)
}

/// `rollback <project>/<agent> [--to] [--endpoint] [--runtime-name]`: the API moves the agent's
/// endpoint (of that runtime) back and answers the history entry of the move.
pub async fn rollback<S: Service>(
    svc: &S,
    project: &str,
    agent: &str,
    to: Option<String>,
    (endpoint, runtime_name): (Option<String>, Option<String>),
) -> Result<serde_json::Value, CliError> {
    let mut body = serde_json::json!({});
    if let Some(to) = to {
        body["to"] = to.into();
    }
    if let Some(endpoint) = endpoint {
        body["endpoint"] = endpoint.into();
    }
    if let Some(name) = runtime_name {
        body["runtimeName"] = name.into();
    }
    svc.rollback(project, agent, &body).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(status: &str, retired: bool) -> AgentRuntime {
        let mut v = json!({"status": status, "runtimeName": "Old", "stack": "agentbuild",
            "project": "demo", "agent": "bot", "boundAt": "2026-12-07T06:00:00Z",
            "runtimeId": "Old-1", "runtimeArn": "arn", "lastBuildId": "b-1"});
        if retired {
            v["retired"] = json!({"at": "2026-12-07T06:30:00Z", "by": "arn:aws:iam::1:user/ops"});
        }
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn lists_and_retirements_print_one_line_per_runtime_and_json_as_the_api_answers() {
        let listed = RuntimesOutcome::Listed(AgentRuntimes {
            project: "demo".into(),
            agent: "bot".into(),
            runtimes: vec![entry("SUPERSEDED", false)],
        });
        assert_eq!(listed.to_text(), "Old  SUPERSEDED  Old-1  build b-1\n");
        assert_eq!(listed.to_json()["runtimes"][0]["status"], "SUPERSEDED");
        let retired = RuntimesOutcome::Retired(Box::new(entry("RETIRED", true)));
        assert!(retired
            .to_text()
            .ends_with("retired 2026-12-07T06:30:00Z by arn:aws:iam::1:user/ops\n"));
        assert_eq!(retired.exit_code(), EXIT_OK);
        let refused = RuntimesOutcome::Refused(Rejection {
            code: "RuntimeInUse".into(),
            field: "deploy.runtimeName".into(),
            message: "current".into(),
        });
        assert_eq!(refused.exit_code(), EXIT_REJECTED);
        assert_eq!(refused.to_json()["error"]["field"], "deploy.runtimeName");
    }
}
