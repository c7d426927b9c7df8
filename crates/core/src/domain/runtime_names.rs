//! Runtime names belong to one agent of one stack (issue 21, item 3): the first request that
//! names a runtime binds the name to its agent (`runtimes/<name>.json`, a conditional write);
//! any other agent naming it is refused with `deploy.runtimeName`. The binding then follows the
//! runtime: the build that last deployed it, and its retirement (a tombstone: the name stays
//! the agent's). Pure: `services::runtime_names` loads, decides, stores.

use super::deploy_request::default_runtime_name;
use super::deployment::Owner;
use super::request::RequestError;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The field every refusal of a runtime name names.
pub const FIELD: &str = "deploy.runtimeName";

/// Where the binding of runtime name `name` is kept (one stack, one bucket).
pub fn binding_key(name: &str) -> String {
    format!("runtimes/{name}.json")
}

/// The agent's index of its names (`<name>.json` under this prefix): what its runtimes list
/// reads, so a list never scans the whole stack's names.
pub fn agent_prefix(project: &str, agent: &str) -> String {
    format!("agents/{project}/{agent}/runtimes/")
}

/// The agent's index entry of `name`.
pub fn index_key(project: &str, agent: &str, name: &str) -> String {
    format!("{}{name}.json", agent_prefix(project, agent))
}

/// The name an index entry's key stands for.
pub fn indexed_name<'a>(key: &'a str, prefix: &str) -> Option<&'a str> {
    key.strip_prefix(prefix)?.strip_suffix(".json")
}

/// A runtime name bound to an agent, and what became of its runtime.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Binding {
    pub runtime_name: String,
    pub stack: String,
    pub project: String,
    pub agent: String,
    pub bound_at: DateTime<Utc>,
    /// The runtime agentbuild last created or updated under this name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_arn: Option<String>,
    /// The build that last deployed to it, and when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_build_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_deployed_at: Option<DateTime<Utc>>,
    /// Set by a retire; lifted when the agent deploys under the name again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired: Option<Retired>,
}

/// Who retired the runtime, when, and which runtime was deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Retired {
    pub at: DateTime<Utc>,
    pub by: String,
    /// The runtime deleted (`None`: there was none left to delete).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_arn: Option<String>,
    /// It was the agent's current runtime (a forced retire).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub was_current: bool,
}

impl Binding {
    pub fn owned_by(&self, owner: &Owner) -> bool {
        self.stack == owner.stack && self.project == owner.project && self.agent == owner.agent
    }
}

/// What a name's runtime is to its agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RuntimeState {
    /// The runtime of the agent's latest deployment.
    Active,
    /// Deployed to before; the agent deploys elsewhere now (a changed `runtimeName`): it still
    /// runs its last image until it is retired.
    Superseded,
    /// Bound, but nothing was deployed under it yet.
    Reserved,
    /// Deleted through retire; the name stays the agent's.
    Retired,
}

/// One of an agent's runtimes, as `GET …/runtimes` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentRuntime {
    pub status: RuntimeState,
    #[serde(flatten)]
    pub binding: Binding,
}

/// The agent's runtimes, as `GET /projects/{project}/agents/{agent}/runtimes` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentRuntimes {
    pub project: String,
    pub agent: String,
    pub runtimes: Vec<AgentRuntime>,
}

/// The status of `binding` when the agent's latest deployment went to runtime name `current`.
pub fn state_of(binding: &Binding, current: Option<&str>) -> RuntimeState {
    if binding.retired.is_some() {
        RuntimeState::Retired
    } else if current == Some(binding.runtime_name.as_str()) && binding.runtime_id.is_some() {
        RuntimeState::Active
    } else if binding.runtime_id.is_some() {
        RuntimeState::Superseded
    } else {
        RuntimeState::Reserved
    }
}

/// A name of the form of agentbuild's default names (`ab_…_<8 hex>`) other than the owner's
/// own default: reserved for the agent it is derived from, even before that agent first
/// deploys (else anyone could take another agent's default name first).
fn is_foreign_default(name: &str, owner: &Owner) -> bool {
    let looks_default = name.starts_with("ab_")
        && name.rsplit_once('_').is_some_and(|(_, h)| {
            h.len() == 8 && h.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
        });
    looks_default && name != default_runtime_name(owner.stack, owner.project, owner.agent)
}

/// The claim rule: `Ok(None)` the name is the owner's already (nothing to write), `Ok(Some)`
/// the new binding to write (the name was free), `Err` the name is another agent's.
pub fn decide_claim(
    stored: Option<&Binding>,
    name: &str,
    owner: &Owner,
    now: DateTime<Utc>,
) -> Result<Option<Binding>, RequestError> {
    if is_foreign_default(name, owner) {
        return Err(RequestError::new(
            FIELD,
            format!(
                "{name} has the form of agentbuild's default runtime names (ab_…_<8 hex>), \
                 which belong to the agent they are derived from; omit runtimeName for \
                 {}/{}'s own default, or choose another name",
                owner.project, owner.agent
            ),
        ));
    }
    match stored {
        Some(b) if b.owned_by(owner) => Ok(None),
        Some(b) => Err(RequestError::new(
            FIELD,
            format!(
                "runtime name {name} belongs to another agent (bound {}); a runtime name \
                 belongs to one agent of one stack: choose another name",
                b.bound_at.format("%Y-%m-%dT%H:%M:%SZ")
            ),
        )),
        None => Ok(Some(Binding {
            runtime_name: name.to_string(),
            stack: owner.stack.to_string(),
            project: owner.project.to_string(),
            agent: owner.agent.to_string(),
            bound_at: now,
            runtime_id: None,
            runtime_arn: None,
            last_build_id: None,
            last_deployed_at: None,
            retired: None,
        })),
    }
}

/// The binding after build `build_id` created or updated runtime `id` (`arn`) under its name:
/// `None` when it already says so (a retried step).
pub fn deployed(
    binding: &Binding,
    id: &str,
    arn: &str,
    build_id: &str,
    now: DateTime<Utc>,
) -> Option<Binding> {
    let same = binding.runtime_id.as_deref() == Some(id)
        && binding.last_build_id.as_deref() == Some(build_id)
        && binding.retired.is_none();
    (!same).then(|| Binding {
        runtime_id: Some(id.to_string()),
        runtime_arn: Some(arn.to_string()),
        last_build_id: Some(build_id.to_string()),
        last_deployed_at: Some(now),
        retired: None,
        ..binding.clone()
    })
}

/// The binding of a name the agent deployed to before names were bound (a stack upgraded with
/// agents deployed), noted with that runtime: only a binding that names no runtime yet (a
/// retired or followed one is left as it is).
pub fn adopted(
    binding: &Binding,
    id: &str,
    arn: &str,
    build_id: &str,
    at: DateTime<Utc>,
) -> Option<Binding> {
    (binding.runtime_id.is_none() && binding.retired.is_none())
        .then(|| deployed(binding, id, arn, build_id, at))
        .flatten()
}

/// Why a retire is refused before anything is touched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetireRefusal {
    /// No binding, or another agent's: the caller learns nothing of it.
    NotFound,
    /// The agent's current runtime, without `force`.
    Current,
}

/// The retire rule before the runtime is looked up: the caller's agent must own the name, and
/// its current runtime is retired only when forced. `Ok(true)`: retired already (answer the
/// stored binding again); `Ok(false)`: go on and delete.
pub fn may_retire(
    stored: Option<&Binding>,
    owner: &Owner,
    current: Option<&str>,
    force: bool,
) -> Result<bool, RetireRefusal> {
    let binding = stored
        .filter(|b| b.owned_by(owner))
        .ok_or(RetireRefusal::NotFound)?;
    match state_of(binding, current) {
        RuntimeState::Retired => Ok(true),
        RuntimeState::Active if !force => Err(RetireRefusal::Current),
        _ => Ok(false),
    }
}

/// The binding retired by `by` at `now`; `deleted` is the ARN of the runtime deleted.
pub fn retired(
    binding: &Binding,
    deleted: Option<String>,
    current: Option<&str>,
    by: &str,
    now: DateTime<Utc>,
) -> Binding {
    let was_current = state_of(binding, current) == RuntimeState::Active;
    Binding {
        retired: Some(Retired {
            at: now,
            by: by.to_string(),
            runtime_arn: deleted.or_else(|| binding.runtime_arn.clone()),
            was_current,
        }),
        ..binding.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STACK: &str = "agentbuild";

    fn owner<'a>(agent: &'a str) -> Owner<'a> {
        Owner {
            stack: STACK,
            project: "nexus-ai",
            agent,
        }
    }

    fn now() -> DateTime<Utc> {
        "2026-12-07T06:00:00Z".parse().unwrap()
    }

    fn bound(agent: &str) -> Binding {
        decide_claim(None, "Sales_Bot", &owner(agent), now())
            .unwrap()
            .unwrap()
    }

    #[test]
    fn a_free_name_is_bound_its_owner_reclaims_it_and_anyone_else_is_refused() {
        let b = bound("sales");
        assert_eq!(
            (b.project.as_str(), b.agent.as_str()),
            ("nexus-ai", "sales")
        );
        assert_eq!(
            decide_claim(Some(&b), "Sales_Bot", &owner("sales"), now()),
            Ok(None)
        );
        let err = decide_claim(Some(&b), "Sales_Bot", &owner("billing"), now()).unwrap_err();
        assert_eq!(err.field, FIELD);
        assert!(err.message.contains("another agent"), "{}", err.message);
        // The same agent of another stack is another owner.
        let other = Owner {
            stack: "agentbuild-staging",
            ..owner("sales")
        };
        assert!(decide_claim(Some(&b), "Sales_Bot", &other, now()).is_err());
    }

    #[test]
    fn another_agents_default_name_is_refused_even_before_it_is_bound() {
        let theirs = default_runtime_name(STACK, "nexus-ai", "billing");
        let err = decide_claim(None, &theirs, &owner("sales"), now()).unwrap_err();
        assert_eq!(err.field, FIELD);
        assert!(err.message.contains("default"));
        let mine = default_runtime_name(STACK, "nexus-ai", "sales");
        assert!(decide_claim(None, &mine, &owner("sales"), now())
            .unwrap()
            .is_some());
        // Only the exact form is reserved.
        assert!(decide_claim(None, "ab_team_bot", &owner("sales"), now()).is_ok());
    }

    #[test]
    fn the_state_follows_deploys_a_changed_name_and_retire() {
        let b = bound("sales");
        assert_eq!(state_of(&b, Some("Sales_Bot")), RuntimeState::Reserved);
        let d = deployed(&b, "rt-1", "arn:rt-1", "b-1", now()).unwrap();
        assert_eq!(deployed(&d, "rt-1", "arn:rt-1", "b-1", now()), None);
        assert_eq!(state_of(&d, Some("Sales_Bot")), RuntimeState::Active);
        assert_eq!(state_of(&d, Some("Sales_Bot_2")), RuntimeState::Superseded);
        let r = retired(
            &d,
            None,
            Some("Sales_Bot_2"),
            "arn:aws:iam::1:user/ops",
            now(),
        );
        assert_eq!(state_of(&r, Some("Sales_Bot_2")), RuntimeState::Retired);
        let gone = r.retired.as_ref().unwrap();
        assert_eq!(gone.runtime_arn.as_deref(), Some("arn:rt-1"));
        assert!(!gone.was_current);
        // Deploying under the name again lifts the tombstone.
        let again = deployed(&r, "rt-2", "arn:rt-2", "b-9", now()).unwrap();
        assert_eq!(state_of(&again, Some("Sales_Bot")), RuntimeState::Active);
    }

    #[test]
    fn only_a_binding_without_a_runtime_adopts_the_previous_one() {
        let b = bound("sales");
        let a = adopted(&b, "rt-0", "arn:rt-0", "b-0", now()).unwrap();
        assert_eq!(a.last_build_id.as_deref(), Some("b-0"));
        assert_eq!(adopted(&a, "rt-9", "arn:rt-9", "b-9", now()), None);
        let r = retired(&a, None, None, "ops", now());
        assert_eq!(adopted(&r, "rt-0", "arn:rt-0", "b-0", now()), None);
    }

    #[test]
    fn retire_needs_the_owner_and_force_for_the_current_runtime_and_is_idempotent() {
        let d = deployed(&bound("sales"), "rt-1", "arn:rt-1", "b-1", now()).unwrap();
        let me = owner("sales");
        assert_eq!(
            may_retire(None, &me, None, false),
            Err(RetireRefusal::NotFound)
        );
        assert_eq!(
            may_retire(Some(&d), &owner("billing"), None, true),
            Err(RetireRefusal::NotFound)
        );
        assert_eq!(
            may_retire(Some(&d), &me, Some("Sales_Bot"), false),
            Err(RetireRefusal::Current)
        );
        assert_eq!(
            may_retire(Some(&d), &me, Some("Sales_Bot"), true),
            Ok(false)
        );
        assert_eq!(may_retire(Some(&d), &me, Some("Other"), false), Ok(false));
        let r = retired(&d, Some("arn:rt-1".into()), Some("Sales_Bot"), "me", now());
        assert!(r.retired.as_ref().unwrap().was_current);
        assert_eq!(
            may_retire(Some(&r), &me, Some("Sales_Bot"), false),
            Ok(true)
        );
    }

    #[test]
    fn the_binding_is_pinned_as_stored() {
        let d = deployed(&bound("sales"), "rt-1", "arn:rt-1", "b-1", now()).unwrap();
        assert_eq!(
            serde_json::to_value(&d).unwrap(),
            serde_json::json!({
                "runtimeName": "Sales_Bot", "stack": "agentbuild", "project": "nexus-ai",
                "agent": "sales", "boundAt": "2026-12-07T06:00:00Z", "runtimeId": "rt-1",
                "runtimeArn": "arn:rt-1", "lastBuildId": "b-1",
                "lastDeployedAt": "2026-12-07T06:00:00Z"
            })
        );
        assert_eq!(binding_key("Sales_Bot"), "runtimes/Sales_Bot.json");
        assert_eq!(index_key("p", "a", "N"), "agents/p/a/runtimes/N.json");
        assert_eq!(
            indexed_name("agents/p/a/runtimes/N.json", &agent_prefix("p", "a")),
            Some("N")
        );
    }
}
