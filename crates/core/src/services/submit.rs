//! Submit: start the build execution of a validated request, or find the one the same request
//! already started. Every door that starts builds by request (the API, the CLI's direct mode)
//! goes through here, so "the same request twice is one build" means the same everywhere.

use crate::domain::execution::{
    open_input, submission_name, ExecutionInput, PromoteOf, SourcePin, Submission, MAX_API_ATTEMPTS,
};
use crate::domain::plan::{BuildPlan, ExecutionFacts, SourceObject};
use crate::domain::record::{build_key, BuildRecord, BuildState};
use crate::domain::request::{Trigger, ValidRequest};
use crate::ports::{Executions, ObjectStore, Precondition, StartOutcome};
use crate::Error;
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::future::Future;

/// A build execution of the request runs (or ran).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Started {
    pub build_id: String,
    pub execution_arn: String,
    /// The same request had started it before (a retry of the call, or the same key).
    pub existing: bool,
}

/// Why no execution was started or found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// The idempotencyKey already named build `build_id` of a different request.
    IdempotencyKeyReused { build_id: String },
    /// This exact keyless request already failed `MAX_API_ATTEMPTS` times.
    TooManyAttempts,
}

impl Refused {
    pub fn code(&self) -> &'static str {
        match self {
            Refused::IdempotencyKeyReused { .. } => "IdempotencyKeyReused",
            Refused::TooManyAttempts => "TooManyAttempts",
        }
    }

    pub fn message(&self) -> String {
        match self {
            Refused::IdempotencyKeyReused { build_id } => format!(
                "this key already named build {build_id} of a different request; \
                 send a new idempotencyKey for a new build"
            ),
            Refused::TooManyAttempts => format!(
                "this exact request already failed {MAX_API_ATTEMPTS} times; \
                 send an idempotencyKey to start another build"
            ),
        }
    }
}

/// What the API knows when it accepts a request: enough for a well-formed first record.
#[derive(Debug, Clone, Copy)]
pub struct Accepting<'a> {
    /// The build state machine's ARN (an execution's ARN is derived from it and the name).
    pub state_machine_arn: &'a str,
    pub repository_uri: &'a str,
    /// The stack whose defaults resolve the request's `deploy`.
    pub stack: &'a str,
    pub now: DateTime<Utc>,
}

/// [`submit`], with a first RUNNING record written at each name just before its execution is
/// started (the API's door). Once a buildId is handed out, its record exists: an execution that
/// then fails inside ValidateRequest (the source version deleted since, S3 failing past its
/// retries) is closed by the last-resort closer, which finds this record, ends it `ERROR` with
/// the execution's error and announces it. The write is `If-None-Match: *`: a record already at
/// the name (a repeated call, an earlier build of the name) is left as it is.
pub async fn submit_recorded<X: Executions, S: ObjectStore>(
    executions: &X,
    store: &S,
    accepting: Accepting<'_>,
    req: &ValidRequest,
    pin: &SourcePin,
    promote: Option<&PromoteOf>,
) -> Result<Result<Started, Refused>, Error> {
    let first = |name: String| accept(store, accepting, name, req, pin);
    let submission = Submission {
        request: req.clone(),
        source: Some(pin.clone()),
        limits: None,
        promote: promote.cloned(),
    };
    start_named(executions, "api", &submission, first).await
}

/// The first record of build `name`: the plan as the API knows it, RUNNING, nothing started.
/// ValidateRequest replaces it with its own (`handlers::validate_request`).
async fn accept<S: ObjectStore>(
    store: &S,
    accepting: Accepting<'_>,
    name: String,
    req: &ValidRequest,
    pin: &SourcePin,
) -> Result<(), Error> {
    let object = SourceObject {
        sha256: pin.sha256.clone(),
        version_id: Some(pin.version_id.clone()),
    };
    let facts = ExecutionFacts {
        stack: accepting.stack.to_string(),
        execution_arn: crate::domain::execution::execution_arn(accepting.state_machine_arn, &name),
        build_id: name,
        trigger: Trigger::Api,
        requested_at: accepting.now,
        submitted_at: None,
        deadline_seconds: None,
    };
    let plan = BuildPlan::new(req.clone(), object, accepting.repository_uri, facts);
    let first = BuildState::starting(accepting.now);
    let record = BuildRecord::new(&plan, Some(&first), None, accepting.now);
    let key = build_key(&plan.build_id);
    if !store
        .put_json_if(&key, record.to_json(), Precondition::Absent)
        .await?
    {
        tracing::info!(build_id = %plan.build_id, "a record exists at the name; kept");
    }
    Ok(())
}

/// Starts execution `<door>-<hash>` of `req` validated against `pin` (see
/// `domain::execution::execution_name`). A taken name is the same build when its input is the
/// same request — unless, without an idempotencyKey, that build ended unsuccessfully, or it was
/// a forced build that has ended: then asking again means "build again", under the next name
/// (`-r2`, ...). (A forced request repeated while its build runs is still that build: a
/// retried call starts nothing twice.)
pub async fn submit<X: Executions>(
    executions: &X,
    door: &str,
    req: &ValidRequest,
    pin: Option<&SourcePin>,
) -> Result<Result<Started, Refused>, Error> {
    let nothing = |_: String| std::future::ready(Ok(()));
    let submission = Submission {
        request: req.clone(),
        source: pin.cloned(),
        limits: None,
        promote: None,
    };
    start_named(executions, door, &submission, nothing).await
}

/// The loop of [`submit`]; `before_start` runs with each name right before StartExecution.
async fn start_named<X, F, Fut>(
    executions: &X,
    door: &str,
    submission: &Submission,
    mut before_start: F,
) -> Result<Result<Started, Refused>, Error>
where
    X: Executions,
    F: FnMut(String) -> Fut,
    Fut: Future<Output = Result<(), Error>>,
{
    let req = &submission.request;
    let input = serde_json::to_string(submission).expect("a submission always serializes");
    for attempt in 0..MAX_API_ATTEMPTS {
        let name = submission_name(door, submission, attempt);
        before_start(name.clone()).await?;
        let existing = match executions.start(&name, &input).await? {
            StartOutcome::Running { arn } => {
                return Ok(Ok(Started {
                    build_id: name,
                    execution_arn: arn,
                    existing: false,
                }))
            }
            // Taken but not found: Step Functions has not caught up with itself yet.
            StartOutcome::NameTaken => executions.describe(&name).await?.ok_or_else(|| {
                Error::TransientAws(format!(
                    "execution {name} exists but cannot be described yet"
                ))
            })?,
        };
        let same_request = same_submission(existing.input.as_deref(), submission);
        let found = Started {
            build_id: name.clone(),
            execution_arn: existing.arn.clone(),
            existing: true,
        };
        if req.idempotency_key.is_some() {
            // The key names the build, finished or not; reusing it for another request is the
            // caller's mistake, not a new build.
            return Ok(if same_request {
                Ok(found)
            } else {
                Err(Refused::IdempotencyKeyReused { build_id: name })
            });
        }
        // A promote asked again once the first has ended deploys again: its target may serve
        // another build by now (a promote names its build, like a rollback).
        let repeatable = req.force || submission.promote.is_some();
        let again =
            existing.status.ended_unsuccessfully() || (repeatable && !existing.status.is_open());
        if same_request && !again {
            return Ok(Ok(found));
        }
    }
    Ok(Err(Refused::TooManyAttempts))
}

/// Whether an execution's input asks for the same build as `ours`, compared as typed values:
/// the same request, and (without a key, whose build is the key's whatever the bytes) the same
/// pinned content.
fn same_submission(input: Option<&str>, ours: &Submission) -> bool {
    let Some(input) = input.and_then(|i| serde_json::from_str::<Value>(i).ok()) else {
        return false;
    };
    match open_input(&input) {
        Ok(ExecutionInput::Submission(theirs)) => {
            theirs.request == ours.request
                && theirs.promote == ours.promote
                && (ours.request.idempotency_key.is_some() || theirs.source == ours.source)
        }
        _ => false,
    }
}

#[cfg(all(test, feature = "lambda"))]
mod tests {
    use super::*;
    use crate::domain::request::{validate, SourcePolicy};
    use crate::ports::ExecutionStatus;
    use crate::testing::fakes::FakeExecutions;
    use serde_json::json;

    fn req(force: bool, key: Option<&str>) -> ValidRequest {
        let mut v = json!({"project": "p", "agent": "a", "source": "s3://b-1/sources/p/a/x.zip", "force": force});
        if let Some(k) = key {
            v["idempotencyKey"] = json!(k);
        }
        validate(&v, &SourcePolicy::own("b-1")).unwrap()
    }

    async fn go(x: &FakeExecutions, r: &ValidRequest) -> Started {
        submit(x, "api", r, Some(&pin("v1")))
            .await
            .unwrap()
            .unwrap()
    }

    fn accepting() -> Accepting<'static> {
        Accepting {
            state_machine_arn: "arn:aws:states:us-east-1:1:stateMachine:m",
            repository_uri: "1.dkr.ecr.us-east-1.amazonaws.com/agentbuild",
            stack: "agentbuild-test",
            now: "2026-11-28T10:00:00Z".parse().unwrap(),
        }
    }

    fn pin(version: &str) -> SourcePin {
        SourcePin {
            version_id: version.into(),
            sha256: "ab".repeat(32),
        }
    }

    #[tokio::test]
    async fn new_bytes_at_the_same_key_are_a_new_build_but_a_key_keeps_its_build() {
        let x = FakeExecutions::default();
        let first = go(&x, &req(false, None)).await;
        let v2 = submit(&x, "api", &req(false, None), Some(&pin("v2")))
            .await
            .unwrap()
            .unwrap();
        assert_ne!(v2.build_id, first.build_id);
        assert!(!v2.existing);
        let keyed = go(&x, &req(false, Some("k9"))).await;
        let again = submit(&x, "api", &req(false, Some("k9")), Some(&pin("v2")))
            .await
            .unwrap()
            .unwrap();
        assert_eq!((again.build_id, again.existing), (keyed.build_id, true));
    }

    #[tokio::test]
    async fn the_api_writes_the_first_record_before_it_starts_and_keeps_it_on_a_repeat() {
        use crate::domain::record::BuildRecord;
        use crate::domain::status::BuildStatus;
        use crate::testing::fakes::FakeStore;
        let (x, store) = (FakeExecutions::default(), FakeStore::default());
        let accepting = accepting();
        let r = req(false, None);
        let first = submit_recorded(&x, &store, accepting, &r, &pin("v1"), None)
            .await
            .unwrap()
            .unwrap();
        let key = format!("builds/{}.json", first.build_id);
        let rec: BuildRecord = store.own_json(&key).unwrap();
        assert_eq!(
            (rec.status, rec.trigger),
            (BuildStatus::Running, Trigger::Api)
        );
        assert_eq!(
            rec.execution_arn,
            format!("arn:aws:states:us-east-1:1:execution:m:{}", first.build_id)
        );
        assert_eq!(rec.source.version_id.as_deref(), Some("v1"));
        assert!(rec.codebuild.build_id.is_none() && rec.codebuild.start_requested_at.is_none());
        let later = Accepting {
            now: "2026-11-28T10:05:00Z".parse().unwrap(),
            ..accepting
        };
        let again = submit_recorded(&x, &store, later, &r, &pin("v1"), None)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(again.build_id, first.build_id);
        assert_eq!(store.own_json::<BuildRecord>(&key).unwrap(), rec);
    }

    #[tokio::test]
    async fn the_same_request_twice_is_one_build() {
        let x = FakeExecutions::default();
        let first = go(&x, &req(false, None)).await;
        x.end(&first.build_id, ExecutionStatus::Succeeded, None);
        let again = go(&x, &req(false, None)).await;
        assert_eq!((again.build_id, again.existing), (first.build_id, true));
    }

    #[tokio::test]
    async fn a_forced_request_builds_again_once_its_build_has_ended_but_not_while_it_runs() {
        let x = FakeExecutions::default();
        let first = go(&x, &req(true, None)).await;
        let retried = go(&x, &req(true, None)).await;
        assert_eq!(
            retried.build_id, first.build_id,
            "a retried call while it runs"
        );
        x.end(&first.build_id, ExecutionStatus::Succeeded, None);
        let again = go(&x, &req(true, None)).await;
        assert_ne!(again.build_id, first.build_id);
        assert!(again.build_id.starts_with(&first.build_id) && again.build_id.ends_with("-r2"));
    }

    #[tokio::test]
    async fn a_promote_asked_again_after_it_ended_deploys_again_not_while_it_runs() {
        use crate::testing::fakes::FakeStore;
        let (x, store) = (FakeExecutions::default(), FakeStore::default());
        let accepting = accepting();
        let of = PromoteOf {
            build_id: "api-old".into(),
        };
        let (r, v1) = (req(false, None), pin("v1"));
        let promote = || submit_recorded(&x, &store, accepting, &r, &v1, Some(&of));
        let first = promote().await.unwrap().unwrap();
        let retried = promote().await.unwrap().unwrap();
        assert_eq!(
            retried.build_id, first.build_id,
            "a retried call while it runs"
        );
        x.end(&first.build_id, ExecutionStatus::Succeeded, None);
        let again = promote().await.unwrap().unwrap();
        assert!(!again.existing && again.build_id == format!("{}-r2", first.build_id));
    }

    #[tokio::test]
    async fn a_key_names_one_build_even_when_forced() {
        let x = FakeExecutions::default();
        let first = go(&x, &req(true, Some("k1"))).await;
        x.end(&first.build_id, ExecutionStatus::Succeeded, None);
        assert_eq!(
            go(&x, &req(true, Some("k1"))).await.build_id,
            first.build_id
        );
        let other = submit(&x, "api", &req(false, Some("k1")), Some(&pin("v1")))
            .await
            .unwrap();
        assert_eq!(
            other,
            Err(Refused::IdempotencyKeyReused {
                build_id: first.build_id
            })
        );
    }
}
