//! Starting builds from outside the state machine (the API and the scheduler): the execution
//! input envelope and the deterministic execution names that make starts idempotent.
//!
//! A Standard workflow answers StartExecution with the running execution when name and input
//! are the same, and with `ExecutionAlreadyExists` when the input differs or the execution has
//! closed; a name stays taken for 90 days. So a name derived from what the caller asked for
//! turns "start" into "start or find".

use super::plan::Trigger;
use super::request::ValidRequest;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// Keyless API requests whose earlier executions all ended unsuccessfully get a fresh name up to
/// this many times; past it the caller must send an idempotencyKey.
pub const MAX_API_ATTEMPTS: u32 = 10;

/// The request after validation and defaults: two requests that mean the same build have the
/// same normalized form (and so, without an idempotencyKey, the same execution name).
pub fn request_json(req: &ValidRequest) -> Value {
    let mut v = json!({
        "project": req.project,
        "agent": req.agent,
        "source": req.source.to_string(),
        "dockerfile": req.dockerfile,
        "platform": req.platform,
        "buildArgs": req.build_args,
        "force": req.force,
    });
    if let Some(key) = &req.idempotency_key {
        v["idempotencyKey"] = json!(key);
    }
    // Only when asked for: requests without it keep their execution names.
    if let Some(deploy) = &req.deploy {
        v["deploy"] = json!(deploy);
    }
    v
}

/// `{"trigger": ..., "request": ...}`, the execution input of the API and the scheduler.
pub fn envelope(trigger: Trigger, request: Value) -> Value {
    json!({"trigger": trigger, "request": request})
}

/// JSON with object keys sorted at every level, without whitespace: equal values give equal
/// text whatever order their keys were inserted in (serde_json may preserve insertion order).
pub fn canonical_json(v: &Value) -> String {
    let mut out = String::new();
    write_canonical(v, &mut out);
    out
}

fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(&map[k.as_str()], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// Length-prefixed fields: no two different field lists hash the same bytes.
fn digest(fields: &[&str]) -> String {
    let mut h = Sha256::new();
    for f in fields {
        h.update((f.len() as u64).to_be_bytes());
        h.update(f.as_bytes());
    }
    hex::encode(h.finalize())
}

/// `api-<40 hex>` (then `-r2`, `-r3`, ... for `attempt` 1, 2, ...): see [`execution_name`].
pub fn api_execution_name(req: &ValidRequest, attempt: u32) -> String {
    execution_name("api", req, attempt)
}

/// `<door>-<40 hex>` (then `-r2`, `-r3`, ... for `attempt` 1, 2, ...), for a door that starts
/// builds by request (`api`, or `cli` when the CLI starts executions itself). With an
/// idempotencyKey the hash covers (project, agent, key): the same key names the same build
/// whatever else changed. Without one it covers the normalized request: identical requests
/// share a build.
pub fn execution_name(door: &str, req: &ValidRequest, attempt: u32) -> String {
    let hash = match &req.idempotency_key {
        Some(key) => digest(&[
            &format!("agentbuild-{door}-key-v1"),
            &req.project,
            &req.agent,
            key,
        ]),
        None => digest(&[
            &format!("agentbuild-{door}-content-v1"),
            &canonical_json(&request_json(req)),
        ]),
    };
    match attempt {
        0 => format!("{door}-{}", &hash[..40]),
        n => format!("{door}-{}-r{}", &hash[..40], n + 1),
    }
}

/// `sched-<yyyymmddThhmm of the schedule's time>-<16 hex of project/agent>`: a retried trigger
/// (same event time) names the same executions, so it starts nothing twice.
pub fn schedule_execution_name(at: DateTime<Utc>, project: &str, agent: &str) -> String {
    let hash = digest(&["agentbuild-schedule-v1", project, agent]);
    format!("sched-{}-{}", at.format("%Y%m%dT%H%M"), &hash[..16])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::plan::is_build_id;
    use crate::domain::request::{validate, SourcePolicy};

    fn req(v: Value) -> ValidRequest {
        validate(&v, &SourcePolicy::own("bkt")).unwrap()
    }

    fn base() -> Value {
        json!({"project": "p", "agent": "a", "source": "s3://bkt/sources/p/a/x.zip"})
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        let a: Value =
            serde_json::from_str(r#"{"b":1,"a":{"y":[{"d":1,"c":2}],"x":"é\n"}}"#).unwrap();
        assert_eq!(
            canonical_json(&a),
            r#"{"a":{"x":"é\n","y":[{"c":2,"d":1}]},"b":1}"#
        );
    }

    #[test]
    fn requests_meaning_the_same_build_share_a_name() {
        let mut explicit = base();
        explicit["platform"] = json!("linux/arm64");
        explicit["dockerfile"] = json!("Dockerfile");
        explicit["buildArgs"] = json!({});
        explicit["force"] = json!(false);
        assert_eq!(
            api_execution_name(&req(base()), 0),
            api_execution_name(&req(explicit), 0)
        );
        let mut other = base();
        other["force"] = json!(true);
        assert_ne!(
            api_execution_name(&req(base()), 0),
            api_execution_name(&req(other), 0)
        );
    }

    #[test]
    fn a_key_names_the_build_whatever_the_content() {
        let mut a = base();
        a["idempotencyKey"] = json!("k1");
        let mut b = a.clone();
        b["force"] = json!(true);
        assert_eq!(
            api_execution_name(&req(a.clone()), 0),
            api_execution_name(&req(b), 0)
        );
        let mut c = a.clone();
        c["idempotencyKey"] = json!("k2");
        assert_ne!(
            api_execution_name(&req(a.clone()), 0),
            api_execution_name(&req(c), 0)
        );
        let mut d = a.clone();
        d["agent"] = json!("other");
        d["source"] = json!("s3://bkt/sources/p/other/x.zip");
        assert_ne!(
            api_execution_name(&req(a), 0),
            api_execution_name(&req(d), 0)
        );
    }

    #[test]
    fn names_are_valid_build_ids() {
        let r = req(base());
        let first = api_execution_name(&r, 0);
        let retry = api_execution_name(&r, MAX_API_ATTEMPTS - 1);
        assert_eq!(first.len(), 44);
        assert!(
            retry.starts_with(&first) && retry.ends_with("-r10"),
            "{retry}"
        );
        let at: DateTime<Utc> = "2026-11-29T03:00:41Z".parse().unwrap();
        let s = schedule_execution_name(at, "p", "a");
        assert!(s.starts_with("sched-20261129T0300-"), "{s}");
        for name in [first, retry, s] {
            assert!(is_build_id(&name), "{name}");
        }
    }

    #[test]
    fn schedule_names_differ_by_agent_and_time() {
        let at: DateTime<Utc> = "2026-11-29T03:00:00Z".parse().unwrap();
        let later: DateTime<Utc> = "2026-11-30T03:00:00Z".parse().unwrap();
        assert_ne!(
            schedule_execution_name(at, "p", "a"),
            schedule_execution_name(at, "p", "b")
        );
        // Field boundaries: ("p-a", "b") is not ("p", "a-b").
        assert_ne!(
            schedule_execution_name(at, "p-a", "b"),
            schedule_execution_name(at, "p", "a-b")
        );
        assert_ne!(
            schedule_execution_name(at, "p", "a"),
            schedule_execution_name(later, "p", "a")
        );
    }

    #[test]
    fn the_normalized_request_passes_validation_again() {
        let mut v = base();
        v["buildArgs"] = json!({"A": "1"});
        v["idempotencyKey"] = json!("k");
        let r = req(v);
        assert_eq!(req(request_json(&r)), r);
        let env = envelope(Trigger::Api, request_json(&r));
        assert_eq!(env["trigger"], "api");
    }
}
