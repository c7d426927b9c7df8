//! In-memory ports for handler tests (the SDK adapters have their own aws-smithy-mocks tests).

use crate::domain::record::Phase;
use crate::domain::status::CodeBuildStatus;
use crate::ports::{
    BuildInfo, BuildService, BuildStarter, Delivery, ObjectMeta, ObjectStore, Precondition,
    StartRequest, Tagged, TaskTokens,
};
use crate::Error;
use sha2::{Digest, Sha256};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

thread_local! {
    /// The SDK operations (`OPERATION_ACTIONS` names) the fakes' port calls stand for, on this
    /// thread: each `#[tokio::test]` runs on its own current-thread runtime.
    static OPERATIONS: RefCell<BTreeSet<&'static str>> = RefCell::default();
}

/// Each fake method records what its adapter method sends (see adapters/*.rs), so a handler
/// test sees the operations the real function would need IAM actions for.
pub(crate) fn record(operation: &'static str) {
    OPERATIONS.with(|o| o.borrow_mut().insert(operation));
}

/// Builds `fakes::operations_of`'s scenario list from the names of a handler's tests.
macro_rules! scenarios {
    ($($test:ident),* $(,)?) => {
        &[$((stringify!($test), $test as fn())),*]
    };
}
pub(crate) use scenarios;

/// Runs `scenarios` (a handler's `#[tokio::test]` functions) on this thread and returns the SDK
/// operations they called. `source` is the handler's file: a scenario added there but not to
/// the list fails here, so no path escapes the check.
pub fn operations_of(source: &str, scenarios: &[(&str, fn())]) -> BTreeSet<&'static str> {
    let in_source: BTreeSet<&str> = source
        .split("#[tokio::test]")
        .skip(1)
        .filter_map(|rest| {
            let name = rest.split_once("fn ")?.1;
            name.split(|c: char| !(c.is_alphanumeric() || c == '_'))
                .next()
        })
        .collect();
    let listed: BTreeSet<&str> = scenarios.iter().map(|(name, _)| *name).collect();
    assert_eq!(
        in_source, listed,
        "the operations test must run every #[tokio::test] of the handler"
    );
    OPERATIONS.with(|o| o.borrow_mut().clear());
    for (_, run) in scenarios {
        run();
    }
    OPERATIONS.with(|o| std::mem::take(&mut *o.borrow_mut()))
}

/// `called` is exactly `function`'s catalog operations: none missing from its policy, none
/// listed that no scenario reaches.
pub fn assert_operations_are_listed(function: &str, called: &BTreeSet<&'static str>) {
    let listed: BTreeSet<&str> = crate::testing::catalog::function(function)
        .expect("function in catalog")
        .operations
        .iter()
        .copied()
        .collect();
    let unlisted: Vec<_> = called.difference(&listed).collect();
    assert!(
        unlisted.is_empty(),
        "{function} calls {unlisted:?}, which catalog.rs does not list (so its policy may not allow it)"
    );
    let unreached: Vec<_> = listed.difference(called).collect();
    assert!(
        unreached.is_empty(),
        "catalog.rs lists {unreached:?} for {function}, which no scenario calls"
    );
}

/// (bucket, key) -> (bytes, S3 checksum)
type Objects = BTreeMap<(String, String), (Vec<u8>, Option<String>)>;

#[derive(Default)]
pub struct FakeStore {
    objects: RefCell<Objects>,
    /// The legal hold of own-bucket objects, as hold_latest last set it (`true`: held, kept).
    pub tags: RefCell<BTreeMap<String, bool>>,
    /// The version of each key hold_latest last set (`None`: the current one).
    pub tagged_versions: RefCell<BTreeMap<String, Option<String>>>,
    calls: Cell<usize>,
    /// Versions deleted from their key (HeadObject of them answers 404).
    pub gone_versions: RefCell<BTreeSet<String>>,
    pub puts: RefCell<Vec<String>>,
    /// Errors returned by the next calls, in order.
    pub fail_next: RefCell<VecDeque<Error>>,
}

pub const OWN: &str = "own";
/// The version id every fake object has.
pub const FAKE_VERSION: &str = "v-fake-1";

impl FakeStore {
    pub fn with_object(self, bucket: &str, key: &str, body: &[u8]) -> Self {
        self.objects
            .borrow_mut()
            .insert((bucket.into(), key.into()), (body.to_vec(), None));
        self
    }

    pub fn set_checksum(&self, bucket: &str, key: &str, sha: &str) {
        if let Some(o) = self
            .objects
            .borrow_mut()
            .get_mut(&(bucket.into(), key.into()))
        {
            o.1 = Some(sha.into());
        }
    }

    /// Puts an object in the own bucket as a test's setup, not as an SDK call of the handler.
    pub fn seed(&self, key: &str, body: Vec<u8>) {
        self.objects
            .borrow_mut()
            .insert((OWN.into(), key.into()), (body, None));
    }

    pub fn calls(&self) -> usize {
        self.calls.get()
    }

    pub fn own(&self, key: &str) -> Option<Vec<u8>> {
        self.objects
            .borrow()
            .get(&(OWN.into(), key.into()))
            .map(|o| o.0.clone())
    }

    pub fn own_json<T: serde::de::DeserializeOwned>(&self, key: &str) -> Option<T> {
        self.own(key).map(|b| serde_json::from_slice(&b).unwrap())
    }

    fn enter(&self, operation: &'static str) -> Result<(), Error> {
        record(operation);
        self.calls.set(self.calls.get() + 1);
        match self.fail_next.borrow_mut().pop_front() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

#[cfg(feature = "lambda")]
impl crate::ports::ObjectFiles for FakeStore {
    async fn download(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        path: &std::path::Path,
    ) -> Result<Option<String>, Error> {
        self.enter(match version_id {
            Some(_) => "S3.GetObjectVersion",
            None => "S3.GetObject",
        })?;
        if version_id.is_some_and(|v| self.gone_versions.borrow().contains(v)) {
            return Ok(None);
        }
        let objects = self.objects.borrow();
        let Some((body, _)) = objects.get(&(bucket.into(), key.into())) else {
            return Ok(None);
        };
        std::fs::write(path, body).map_err(|e| Error::InvalidState(e.to_string()))?;
        Ok(Some(version_id.unwrap_or(FAKE_VERSION).to_string()))
    }

    async fn upload(
        &self,
        key: &str,
        path: &std::path::Path,
        sha256: &str,
    ) -> Result<Option<String>, Error> {
        self.enter("S3.PutObject")?;
        let body = std::fs::read(path).map_err(|e| Error::InvalidState(e.to_string()))?;
        assert_eq!(
            hex::encode(Sha256::digest(&body)),
            sha256,
            "the sha256 sent"
        );
        self.puts.borrow_mut().push(key.to_string());
        self.objects
            .borrow_mut()
            .insert((OWN.into(), key.into()), (body, None));
        Ok(Some(FAKE_VERSION.into()))
    }
}

impl ObjectStore for FakeStore {
    async fn head(&self, bucket: &str, key: &str) -> Result<Option<ObjectMeta>, Error> {
        self.enter("S3.HeadObject")?;
        Ok(self
            .objects
            .borrow()
            .get(&(bucket.into(), key.into()))
            .map(|(b, c)| ObjectMeta {
                size: b.len() as u64,
                sha256: c.clone(),
                version_id: Some(FAKE_VERSION.into()),
            }))
    }

    async fn head_version(
        &self,
        bucket: &str,
        key: &str,
        version_id: &str,
    ) -> Result<Option<ObjectMeta>, Error> {
        self.enter("S3.HeadObjectVersion")?;
        if self.gone_versions.borrow().contains(version_id) {
            return Ok(None);
        }
        let objects = self.objects.borrow();
        Ok(objects
            .get(&(bucket.into(), key.into()))
            .map(|(b, c)| ObjectMeta {
                size: b.len() as u64,
                sha256: c.clone(),
                version_id: Some(version_id.into()),
            }))
    }

    async fn sha256(&self, bucket: &str, key: &str, version_id: &str) -> Result<String, Error> {
        assert_eq!(
            version_id, FAKE_VERSION,
            "hashes the version HeadObject saw"
        );
        self.enter("S3.GetObjectVersion")?;
        let objects = self.objects.borrow();
        let (body, _) = objects
            .get(&(bucket.into(), key.into()))
            .ok_or_else(|| Error::AwsService("NoSuchKey".into()))?;
        Ok(hex::encode(Sha256::digest(body)))
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        self.enter("S3.GetObject")?;
        Ok(self.own(key))
    }

    async fn put_json(&self, key: &str, body: Vec<u8>) -> Result<(), Error> {
        self.enter("S3.PutObject")?;
        self.puts.borrow_mut().push(key.to_string());
        self.objects
            .borrow_mut()
            .insert((OWN.into(), key.into()), (body, None));
        Ok(())
    }

    async fn get_tagged(&self, key: &str) -> Result<Option<Tagged>, Error> {
        self.enter("S3.GetObject")?;
        Ok(self.own(key).map(|bytes| Tagged {
            etag: hex::encode(Sha256::digest(&bytes)),
            bytes,
        }))
    }

    async fn put_json_if(
        &self,
        key: &str,
        body: Vec<u8>,
        condition: Precondition<'_>,
    ) -> Result<bool, Error> {
        self.enter("S3.PutObject")?;
        let current = self.own(key).map(|b| hex::encode(Sha256::digest(&b)));
        let holds = match condition {
            Precondition::Absent => current.is_none(),
            Precondition::Matches(etag) => current.as_deref() == Some(etag),
        };
        if holds {
            self.puts.borrow_mut().push(key.to_string());
            self.objects
                .borrow_mut()
                .insert((OWN.into(), key.into()), (body, None));
        }
        Ok(holds)
    }

    fn own_bucket(&self) -> &str {
        OWN
    }

    async fn hold_latest(
        &self,
        key: &str,
        version_id: Option<&str>,
        latest: bool,
    ) -> Result<bool, Error> {
        self.enter("S3.PutObjectLegalHold")?;
        if self.own(key).is_none() {
            return Ok(false);
        }
        self.tags.borrow_mut().insert(key.to_string(), latest);
        let version = version_id.map(String::from);
        self.tagged_versions
            .borrow_mut()
            .insert(key.to_string(), version);
        Ok(true)
    }

    async fn list_keys(&self, prefix: &str) -> Result<Vec<String>, Error> {
        self.enter("S3.ListObjectsV2")?;
        Ok(self
            .objects
            .borrow()
            .keys()
            .filter(|(b, k)| b == OWN && k.starts_with(prefix))
            .map(|(_, k)| k.clone())
            .collect())
    }
}

#[derive(Default)]
pub struct FakeBuilds {
    pub started: RefCell<Vec<StartRequest>>,
    pub stopped: RefCell<Vec<String>>,
    pub builds: RefCell<BTreeMap<String, BuildInfo>>,
}

impl FakeBuilds {
    /// A build CodeBuild knows (test setup).
    pub fn insert(&self, info: BuildInfo) {
        self.builds.borrow_mut().insert(info.id.clone(), info);
    }
}

/// CodeBuild's view of `agentbuild:1`, the build `record::tests::running()` names, started for
/// execution `b-1` of project `agentbuild`, in BUILD since 10:00:20 (or ended at 10:01:30).
pub fn info(status: CodeBuildStatus, complete: bool) -> BuildInfo {
    let t = |s: &str| s.parse().unwrap();
    BuildInfo {
        id: "agentbuild:1".into(),
        status,
        build_complete: complete,
        current_phase: Some("BUILD".into()),
        start_time: Some(t("2026-11-28T10:00:05Z")),
        end_time: complete.then(|| t("2026-11-28T10:01:30Z")),
        phases: vec![Phase {
            name: "BUILD".into(),
            status: None,
            started_at: Some(t("2026-11-28T10:00:20Z")),
            ended_at: None,
            duration_seconds: None,
        }],
        failed_phase: None,
        log_url: Some("https://logs".into()),
        logs: None,
        exported: BTreeMap::from([("IMAGE_DIGEST".into(), "sha256:ab".into())]),
        project: Some("agentbuild".into()),
        agentbuild_build_id: Some("b-1".into()),
    }
}

/// Step Functions' callback side: keeps every (token, output) sent; `answer_next` queues what
/// the next sends answer (default: accepted).
#[derive(Default)]
pub struct FakeTokens {
    pub sent: RefCell<Vec<(String, String)>>,
    answers: RefCell<VecDeque<Result<Delivery, Error>>>,
}

impl FakeTokens {
    pub fn answer_next(&self, answer: Result<Delivery, Error>) {
        self.answers.borrow_mut().push_back(answer);
    }
}

impl TaskTokens for FakeTokens {
    async fn succeed(&self, token: &str, output: &str) -> Result<Delivery, Error> {
        record("SFN.SendTaskSuccess");
        self.sent
            .borrow_mut()
            .push((token.to_string(), output.to_string()));
        self.answers
            .borrow_mut()
            .pop_front()
            .unwrap_or(Ok(Delivery::Accepted))
    }
}

impl BuildService for FakeBuilds {
    async fn get(&self, id: &str) -> Result<Option<BuildInfo>, Error> {
        record("CodeBuild.BatchGetBuilds");
        Ok(self.builds.borrow().get(id).cloned())
    }

    async fn stop(&self, id: &str) -> Result<(), Error> {
        record("CodeBuild.StopBuild");
        self.stopped.borrow_mut().push(id.to_string());
        Ok(())
    }
}

impl BuildStarter for FakeBuilds {
    async fn start(&self, req: &StartRequest) -> Result<String, Error> {
        record("CodeBuild.StartBuild");
        self.started.borrow_mut().push(req.clone());
        Ok(format!("proj:{}", self.started.borrow().len()))
    }

    async fn find_started(&self, build_id: &str) -> Result<Option<String>, Error> {
        record("CodeBuild.ListBuildsForProject");
        record("CodeBuild.BatchGetBuilds");
        Ok(self
            .started
            .borrow()
            .iter()
            .position(|r| {
                r.environment.get("AGENTBUILD_BUILD_ID").map(String::as_str) == Some(build_id)
            })
            .map(|i| format!("proj:{}", i + 1)))
    }
}

mod executions;
pub use executions::{FakeEvents, FakeExecutions};
mod images;
pub use images::FakeImages;
mod logs;
pub use logs::FakeLogs;
