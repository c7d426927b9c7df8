//! Whose build is it: the project a build id belongs to, so that a door scoped to one project
//! (the API's `/projects/{project}/builds/{buildId}` routes) answers another project's build
//! exactly as it answers an unknown id.

use super::records;
use crate::domain::execution::{open_input, ExecutionInput};
use crate::domain::request::is_name;
use crate::ports::{Executions, ObjectStore};
use crate::Error;
use serde_json::Value;

/// The project of build `build_id`: its record's; without a record yet, its execution input's
/// (the request's project, or the project of the record a fleet rebuild rebuilds). `None`: no
/// such build, or an execution whose input names no project (it is refused by validation and
/// belongs to nobody's project).
pub async fn project_of<S: ObjectStore, X: Executions>(
    store: &S,
    executions: &X,
    build_id: &str,
) -> Result<Option<String>, Error> {
    if let Some(stored) = records::build(store, build_id).await? {
        return Ok(Some(stored.record.project));
    }
    let Some(execution) = executions.describe(build_id).await? else {
        return Ok(None);
    };
    let Some(input) = execution
        .input
        .as_deref()
        .and_then(|text| serde_json::from_str::<Value>(text).ok())
    else {
        return Ok(None);
    };
    Ok(match open_input(&input) {
        Ok(ExecutionInput::Submission(s)) => Some(s.request.project.to_string()),
        Ok(ExecutionInput::Prebuilt(e)) => Some(e.project.to_string()),
        Ok(ExecutionInput::Rebuild(r)) => records::build(store, &r.build_id)
            .await?
            .map(|s| s.record.project),
        // A request validation refuses still names its project (when that name is valid):
        // the refusal is that project's to see.
        Err(_) => claimed_project(&input),
    })
}

fn claimed_project(input: &Value) -> Option<String> {
    let request = input.get("request").unwrap_or(input);
    let project = request.get("project")?.as_str()?;
    is_name(project).then(|| project.to_string())
}

/// `true` when build `build_id` exists and belongs to `project`.
pub async fn belongs_to<S: ObjectStore, X: Executions>(
    store: &S,
    executions: &X,
    build_id: &str,
    project: &str,
) -> Result<bool, Error> {
    Ok(project_of(store, executions, build_id).await?.as_deref() == Some(project))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::record::build_key;
    use crate::domain::record::tests::{plan, running, t};
    use crate::domain::record::BuildRecord;
    use crate::ports::ExecutionStatus;
    use crate::testing::fakes::{FakeExecutions, FakeStore, OWN};

    fn record(build_id: &str, project: &str) -> BuildRecord {
        let mut rec = BuildRecord::new(&plan(), Some(&running()), None, t("2026-11-28T10:05:00Z"));
        rec.build_id = build_id.into();
        rec.project = project.into();
        rec
    }

    #[tokio::test]
    async fn the_record_the_execution_input_or_the_rebuilt_record_names_the_project() {
        let store = FakeStore::default();
        store.seed(&build_key("b-1"), record("b-1", "nexus-ai").to_json());
        let request = format!(
            r#"{{"request":{{"project":"other","agent":"a","source":"s3://{OWN}/sources/other/a/x.zip"}}}}"#
        );
        let executions = FakeExecutions::default()
            .with("api-2", ExecutionStatus::Running, &request)
            .with(
                "fleet-3",
                ExecutionStatus::Running,
                r#"{"rebuild":{"buildId":"b-1","run":"20261128T1000"}}"#,
            )
            .with("bad-4", ExecutionStatus::Failed, r#"{"colour":"red"}"#)
            .with(
                "bad-5",
                ExecutionStatus::Failed,
                r#"{"project":"p","colour":"red"}"#,
            )
            .with(
                "bad-6",
                ExecutionStatus::Failed,
                r#"{"project":"Not_Valid"}"#,
            );
        let of = |id: &'static str| project_of(&store, &executions, id);
        assert_eq!(of("b-1").await.unwrap().as_deref(), Some("nexus-ai"));
        assert_eq!(of("api-2").await.unwrap().as_deref(), Some("other"));
        assert_eq!(of("fleet-3").await.unwrap().as_deref(), Some("nexus-ai"));
        assert_eq!(of("bad-4").await.unwrap(), None);
        assert_eq!(
            of("bad-5").await.unwrap().as_deref(),
            Some("p"),
            "refused, still p's"
        );
        assert_eq!(of("bad-6").await.unwrap(), None);
        assert_eq!(of("nothing").await.unwrap(), None);
        assert!(belongs_to(&store, &executions, "b-1", "nexus-ai")
            .await
            .unwrap());
        assert!(!belongs_to(&store, &executions, "b-1", "other")
            .await
            .unwrap());
    }
}
