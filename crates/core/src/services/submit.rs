//! Submit: start the build execution of a validated request, or find the one the same request
//! already started. Every door that starts builds by request (the API, the CLI's direct mode)
//! goes through here, so "the same request twice is one build" means the same everywhere.

use crate::domain::execution::{
    execution_name, open_input, ExecutionInput, SourcePin, Submission, MAX_API_ATTEMPTS,
};
use crate::domain::request::ValidRequest;
use crate::ports::{Executions, StartOutcome};
use crate::Error;
use serde_json::Value;

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
    let submission = Submission {
        request: req.clone(),
        source: pin.cloned(),
        limits: None,
    };
    let input = serde_json::to_string(&submission).expect("a submission always serializes");
    for attempt in 0..MAX_API_ATTEMPTS {
        let name = execution_name(door, req, pin, attempt);
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
        let same_request = existing
            .input
            .as_deref()
            .and_then(|i| serde_json::from_str::<Value>(i).ok())
            .is_some_and(|v| same_submission(&v, &submission));
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
        let again =
            existing.status.ended_unsuccessfully() || (req.force && !existing.status.is_open());
        if same_request && !again {
            return Ok(Ok(found));
        }
    }
    Ok(Err(Refused::TooManyAttempts))
}

/// Whether an execution's input asks for the same build as `ours`, compared as typed values:
/// the same request, and (without a key, whose build is the key's whatever the bytes) the same
/// pinned content.
fn same_submission(input: &Value, ours: &Submission) -> bool {
    match open_input(input) {
        Ok(ExecutionInput::Submission(theirs)) => {
            theirs.request == ours.request
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
