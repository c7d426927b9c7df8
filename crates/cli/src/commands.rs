//! The commands' logic over a [`Service`]: validate, pack, upload, submit, wait, look up.
//! No AWS types and no printing to stdout here: each command returns an [`Outcome`].

use crate::terminal::sanitize;
use std::io::Write;
use std::time::Duration;

use tokio::time::Instant;

use agentbuild_core::domain::plan::is_build_id;
use agentbuild_core::domain::record::BuildRecord;
use agentbuild_core::domain::request::{is_name, ValidRequest};

use crate::error::CliError;
use crate::output::{Outcome, OutputArg};
use crate::package::{pack_with, PackError, PackOptions};
use crate::progress::Progress;
use crate::request::{source_key, Draft};
use crate::service::{
    BuildView, Cancellation, LogStream, Rejection, Service, Submission, ViewState,
};

/// How `wait` polls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitOptions {
    pub first_interval: Duration,
    pub max_interval: Duration,
    /// How long to keep looking for the record of an execution that already ended (and for a
    /// build the API does not know yet, just after submitting it).
    pub grace: Duration,
}

impl Default for WaitOptions {
    fn default() -> Self {
        Self {
            first_interval: Duration::from_secs(1),
            max_interval: Duration::from_secs(5),
            grace: Duration::from_secs(30),
        }
    }
}

/// A local context: packed, keyed by its SHA-256 under the request's own prefix, the request
/// read once with that URI (every rule but the source's passed before packing), uploaded.
async fn upload<S: Service>(
    svc: &S,
    draft: &Draft,
    bucket: Option<&str>,
    progress: &mut dyn Progress,
) -> Result<Result<ValidRequest, Rejection>, CliError> {
    let dir = match draft.source.as_ref().map(|s| s.local_dir()).transpose() {
        Ok(dir) => dir.flatten().ok_or_else(|| {
            Rejection::invalid("source", "must be an s3:// URI or a local directory")
        }),
        Err(r) => Err(r),
    };
    let dir = match dir {
        Ok(dir) => dir,
        Err(r) => return Ok(Err(r)),
    };
    let bucket = bucket.ok_or_else(no_bucket)?;
    let options = PackOptions {
        dockerfile: draft.text("dockerfile", "Dockerfile").to_string(),
        needs_dockerfile: draft.text("artifact", "container") != "code",
    };
    let packed = match pack_with(&dir, &options) {
        Ok(p) => p,
        Err(e) => return Ok(Err(pack_rejection(e))),
    };
    let key = source_key(
        draft.text("project", ""),
        draft.text("agent", ""),
        &packed.sha256,
    );
    let uri = format!("s3://{bucket}/{key}");
    let valid = match draft.parse_with_source(&uri) {
        Ok(v) => v,
        Err(r) => return Ok(Err(r)),
    };
    progress.note(&format!(
        "packed {} ({} files, {} bytes, sha256 {})",
        dir.display(),
        packed.files,
        packed.size,
        &packed.sha256[..12]
    ));
    if svc.source_exists(bucket, &key).await? {
        progress.note(&format!("{uri} already uploaded"));
    } else {
        svc.upload_source(bucket, &key, &packed).await?;
        progress.note(&format!("uploaded {uri}"));
    }
    Ok(Ok(valid))
}

/// `submit`: validate locally, pack and upload a local source, start the build, and
/// optionally wait for it.
pub async fn submit<S: Service>(
    svc: &S,
    draft: Draft,
    bucket: Option<&str>,
    wait: Option<WaitOptions>,
    progress: &mut dyn Progress,
) -> Result<Outcome, CliError> {
    let ready = match draft.validate_before_upload() {
        Ok(v) => v,
        Err(r) => return Ok(Outcome::Rejected(r)),
    };
    let valid = match ready {
        Some(valid) => valid,
        None => match upload(svc, &draft, bucket, progress).await? {
            Ok(valid) => valid,
            Err(r) => return Ok(Outcome::Rejected(r)),
        },
    };
    let started = match svc.submit(&valid).await? {
        Submission::Rejected(r) => return Ok(Outcome::Rejected(r)),
        Submission::Started(s) => s,
    };
    if started.existing {
        progress.note(&format!(
            "the same request was submitted before as build {} (pass a new --idempotency-key to build it again)",
            started.build_id
        ));
    } else {
        progress.note(&format!("submitted build {}", started.build_id));
    }
    progress.note(&format!(
        "follow: agentbuild wait --project {} {}",
        &*valid.project, started.build_id
    ));
    match wait {
        // One look, so that submitting a request that was built before answers its outcome.
        None => match svc.build(&started.build_id).await {
            Ok(Some(view)) if view.is_done() => Ok(Outcome::Build(view)),
            _ => Ok(Outcome::Submitted(started)),
        },
        Some(options) => wait_for(svc, &started.build_id, options, true, progress)
            .await
            .map(Outcome::Build),
    }
}

/// `status <id>`.
/// `status`'s arguments (here: cli.rs is at its size limit).
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// The build id printed by `submit` (the execution name).
    pub build_id: String,
    /// The build's project (the API scopes every build route by project; a build of
    /// `submit` in the same command needs none).
    #[arg(long)]
    pub project: Option<String>,
    /// Print where the artifact came from (source, CodeBuild build, buildspec hash, builder
    /// images, build-arg names, secret ids, attestations) and the vulnerability gate's verdict.
    #[arg(long)]
    pub provenance: bool,
    #[command(flatten)]
    pub output: OutputArg,
}

/// `status` as its arguments say.
pub async fn status_of<S: Service>(svc: &S, args: &StatusArgs) -> Result<Outcome, CliError> {
    status(svc, &args.build_id, args.provenance).await
}

/// `status <id>`; with `provenance`, printed as its provenance (`status --provenance`).
pub async fn status<S: Service>(
    svc: &S,
    build_id: &str,
    provenance: bool,
) -> Result<Outcome, CliError> {
    check_build_id(build_id)?;
    svc.build(build_id)
        .await?
        .map(|view| Outcome::Build(view).with_provenance(provenance))
        .ok_or_else(|| unknown_build(build_id))
}

/// `wait <id>` (and `submit --wait`): polls until the build ends, then returns its last look.
pub async fn wait<S: Service>(
    svc: &S,
    build_id: &str,
    options: WaitOptions,
    progress: &mut dyn Progress,
) -> Result<Outcome, CliError> {
    check_build_id(build_id)?;
    wait_for(svc, build_id, options, false, progress)
        .await
        .map(Outcome::Build)
}

pub(crate) async fn wait_for<S: Service>(
    svc: &S,
    build_id: &str,
    options: WaitOptions,
    just_submitted: bool,
    progress: &mut dyn Progress,
) -> Result<BuildView, CliError> {
    let started = Instant::now();
    let mut unsettled_since: Option<Instant> = None;
    let mut interval = options.first_interval;
    let result = loop {
        match svc.build(build_id).await {
            Err(e) => break Err(e),
            Ok(None) if just_submitted && started.elapsed() < options.grace => {}
            Ok(None) => break Err(unknown_build(build_id)),
            Ok(Some(view)) => {
                progress.update(&view);
                let settled = match &view.state {
                    ViewState::Running => false,
                    ViewState::Rejected(_) => true,
                    ViewState::Final(_) => {
                        view.settled
                            || unsettled_since.get_or_insert_with(Instant::now).elapsed()
                                >= options.grace
                    }
                };
                if settled {
                    break Ok(view);
                }
            }
        }
        tokio::time::sleep(interval).await;
        interval = (interval * 3 / 2).min(options.max_interval);
    };
    progress.finish();
    result
}

/// `cancel <id>`: stops the build (the service closes its record STOPPED); with `wait`, polls
/// until the STOPPED record is settled (a build stopped before it had a record is answered
/// from its execution at first).
pub async fn cancel<S: Service>(
    svc: &S,
    build_id: &str,
    wait: Option<WaitOptions>,
    progress: &mut dyn Progress,
) -> Result<Outcome, CliError> {
    check_build_id(build_id)?;
    let view = match svc.cancel(build_id).await? {
        None => return Err(unknown_build(build_id)),
        Some(Cancellation::Finished(status)) => {
            return Ok(Outcome::AlreadyFinished {
                build_id: build_id.to_owned(),
                status,
            })
        }
        Some(Cancellation::Cancelled(view)) => view,
    };
    progress.note(&format!("cancelled build {build_id}"));
    match wait {
        Some(options) if !(view.is_done() && view.settled) => {
            wait_for(svc, build_id, options, false, progress)
                .await
                .map(Outcome::Cancelled)
        }
        _ => Ok(Outcome::Cancelled(view)),
    }
}

/// `list <project>/<agent>`: the agent's latest successful build.
pub async fn latest<S: Service>(svc: &S, project: &str, agent: &str) -> Result<Outcome, CliError> {
    for (what, name) in [("project", project), ("agent", agent)] {
        if !is_name(name) {
            return Err(CliError::Usage(format!(
                "{what} `{name}`: {}",
                agentbuild_core::domain::request::NAME_RULE
            )));
        }
    }
    svc.latest(project, agent)
        .await?
        .map(|r| Outcome::Latest(Box::new(r)))
        .ok_or_else(|| {
            CliError::NoSuccessfulBuild(format!(
                "{project}/{agent} has no successful build yet (submit one with `agentbuild \
                 submit <dir> --project {project} --agent {agent}`)"
            ))
        })
}

/// What `logs` found: the link, and the tail or why there is none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logs {
    pub link: Option<String>,
    pub tail: Result<Vec<String>, String>,
}

/// `logs <id>`: the CodeBuild log link from the record or the live status, and its tail
/// from CloudWatch Logs.
pub async fn logs<S: Service>(svc: &S, build_id: &str, lines: u32) -> Result<Logs, CliError> {
    check_build_id(build_id)?;
    let view = svc
        .build(build_id)
        .await?
        .ok_or_else(|| unknown_build(build_id))?;
    let link = view.codebuild.as_ref().and_then(|c| c.log_url.clone());
    let tail = match view.codebuild.as_ref().and_then(LogStream::of) {
        Some(stream) => svc
            .log_tail(build_id, &stream, lines)
            .await
            .map_err(|e| format!("log tail not reachable: {e}")),
        None => Err(match (&view.state, view.record.as_deref()) {
            (ViewState::Rejected(r), _) => {
                format!("the request was rejected ({}: {})", r.field, r.message)
            }
            (
                _,
                Some(BuildRecord {
                    reused_from: Some(from),
                    ..
                }),
            ) => {
                format!("no CodeBuild log: the image of build {from} was reused")
            }
            _ => format!(
                "build {build_id} has no CodeBuild log yet ({})",
                view.status()
            ),
        }),
    };
    Ok(Logs { link, tail })
}

fn pack_rejection(err: PackError) -> Rejection {
    match &err {
        PackError::DockerfileMissing { .. } | PackError::InvalidDockerfilePath { .. } => {
            Rejection::invalid("dockerfile", err.to_string())
        }
        _ => Rejection::invalid("source", err.to_string()),
    }
}

fn check_build_id(build_id: &str) -> Result<(), CliError> {
    if is_build_id(build_id) {
        Ok(())
    } else {
        Err(CliError::Usage(format!(
            "`{build_id}` is not a build id (1 to 80 of letters, digits, '-' and '_'; \
             `submit` prints it)"
        )))
    }
}

fn unknown_build(build_id: &str) -> CliError {
    CliError::NotFound(format!(
        "no build {build_id}: check the id (`submit` prints it) and that you are talking to \
         the same stack (--api-url / --bucket / --state-machine-arn)"
    ))
}

fn no_bucket() -> CliError {
    CliError::Config(
        "no bucket configured: run `make local-up` (it writes .local/env), or pass --bucket \
         / set AGENTBUILD_BUCKET to the stack's bucket"
            .into(),
    )
}

/// `logs <buildId>`: the last `tail` lines, on stdout.
pub async fn print_log_tail<S: Service>(
    svc: &S,
    build_id: &str,
    tail: u32,
    stdout: &mut dyn Write,
) -> Result<u8, CliError> {
    let logs = logs(svc, build_id, tail).await?;
    print_logs(&logs, stdout, &mut std::io::stderr())?;
    Ok(0)
}

/// A log tail as the CLI prints it: the link, then the lines (control sequences stripped).
pub fn print_logs(
    logs: &Logs,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> Result<(), CliError> {
    let mut text = String::new();
    if let Some(link) = &logs.link {
        text += &format!("log: {}\n", sanitize(link).trim());
    }
    match &logs.tail {
        Ok(lines) if lines.is_empty() => {
            let _ = writeln!(stderr, "(the log has no events yet)");
        }
        Ok(lines) => lines
            .iter()
            .for_each(|l| text += &format!("{}\n", sanitize(l).trim_end_matches('\n'))),
        Err(why) => {
            let _ = writeln!(stderr, "{}", sanitize(why).trim_end());
        }
    }
    stdout.write_all(text.as_bytes()).map_err(CliError::Stdout)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::package::Packed;
    use crate::request::FlagRequest;
    use crate::service::tests::record;
    use crate::service::Started;
    use agentbuild_core::contract::LiveCodeBuild;
    use agentbuild_core::domain::record::ErrorInfo;
    use agentbuild_core::domain::request::ValidRequest;
    use agentbuild_core::domain::status::BuildStatus;
    use serde_json::Value;
    use std::cell::RefCell;
    use std::collections::VecDeque;
    use std::path::Path;

    /// A service answering from scripts, recording what it was asked.
    #[derive(Default)]
    struct Fake {
        existing_sources: Vec<String>,
        uploads: RefCell<Vec<(String, String, String)>>,
        submitted: RefCell<Vec<Value>>,
        submission: Option<Submission>,
        views: RefCell<VecDeque<Option<BuildView>>>,
        latest: Option<BuildRecord>,
        tail: Option<Result<Vec<String>, String>>,
        tailed: RefCell<Vec<LogStream>>,
        cancellation: Option<Cancellation>,
        cancelled: RefCell<Vec<String>>,
    }

    impl Service for Fake {
        async fn source_exists(&self, _bucket: &str, key: &str) -> Result<bool, CliError> {
            Ok(self.existing_sources.iter().any(|k| k == key))
        }
        async fn upload_source(
            &self,
            bucket: &str,
            key: &str,
            packed: &Packed,
        ) -> Result<(), CliError> {
            self.uploads
                .borrow_mut()
                .push((bucket.into(), key.into(), packed.sha256.clone()));
            Ok(())
        }
        async fn submit(&self, request: &ValidRequest) -> Result<Submission, CliError> {
            self.submitted
                .borrow_mut()
                .push(serde_json::to_value(request).unwrap());
            Ok(self.submission.clone().unwrap_or_else(|| {
                Submission::Started(Started {
                    build_id: "cli-0123".into(),
                    execution_arn: "arn".into(),
                    existing: false,
                })
            }))
        }
        async fn build(&self, _id: &str) -> Result<Option<BuildView>, CliError> {
            let mut views = self.views.borrow_mut();
            let Some(next) = views.pop_front() else {
                return Ok(None);
            };
            if views.is_empty() {
                views.push_back(next.clone());
            }
            Ok(next)
        }
        async fn latest(&self, _p: &str, _a: &str) -> Result<Option<BuildRecord>, CliError> {
            Ok(self.latest.clone())
        }
        async fn rollback(
            &self,
            _p: &str,
            _a: &str,
            body: &serde_json::Value,
        ) -> Result<serde_json::Value, CliError> {
            Ok(body.clone())
        }
        async fn cancel(&self, id: &str) -> Result<Option<Cancellation>, CliError> {
            self.cancelled.borrow_mut().push(id.into());
            Ok(self.cancellation.clone())
        }
        async fn log_tail(
            &self,
            _build_id: &str,
            stream: &LogStream,
            _lines: u32,
        ) -> Result<Vec<String>, CliError> {
            self.tailed.borrow_mut().push(stream.clone());
            self.tail
                .clone()
                .expect("no scripted tail")
                .map_err(CliError::Aws)
        }
    }

    #[derive(Default)]
    struct Seen {
        notes: Vec<String>,
        updates: Vec<String>,
        finished: bool,
    }

    impl Progress for Seen {
        fn note(&mut self, m: &str) {
            self.notes.push(m.into());
        }
        fn update(&mut self, v: &BuildView) {
            self.updates.push(v.status().into());
        }
        fn finish(&mut self) {
            self.finished = true;
        }
    }

    /// The default options, on paused tokio time: every wait is virtual, and exact.
    const WAIT: WaitOptions = WaitOptions {
        first_interval: Duration::from_secs(1),
        max_interval: Duration::from_secs(5),
        grace: Duration::from_secs(30),
    };

    fn context() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\n").unwrap();
        std::fs::write(dir.path().join("app.py"), "print('hi')\n").unwrap();
        dir
    }

    fn flags(dir: &Path, agent: &str) -> Draft {
        Draft::from_flags(&FlagRequest {
            dir: dir.into(),
            project: "demo".into(),
            agent: agent.into(),
            dockerfile: "Dockerfile".into(),
            platform: "linux/arm64".into(),
            build_args: vec![],
            ..Default::default()
        })
    }

    fn view(state: ViewState, record_status: Option<&str>, settled: bool) -> BuildView {
        let record = record_status.map(record);
        BuildView {
            build_id: "cli-0123".into(),
            state,
            step: None,
            codebuild: record.as_ref().map(|r| LiveCodeBuild {
                build_id: r.codebuild.build_id.clone(),
                log_url: r.codebuild.log_url.clone(),
                logs: r.codebuild.logs.clone(),
            }),
            record: record.map(Box::new),
            error: None,
            settled,
        }
    }

    #[tokio::test]
    async fn submit_packs_uploads_and_starts_a_validated_request() {
        let ctx = context();
        let fake = Fake::default();
        let mut seen = Seen::default();
        let out = submit(
            &fake,
            flags(ctx.path(), "sample-agent"),
            Some("bkt"),
            None,
            &mut seen,
        )
        .await
        .unwrap();
        let uploads = fake.uploads.borrow();
        let (bucket, key, sha) = &uploads[0];
        assert_eq!(bucket, "bkt");
        assert_eq!(key, &format!("sources/demo/sample-agent/{sha}.zip"));
        let submitted = fake.submitted.borrow();
        let request = &submitted[0];
        assert_eq!(request["source"], format!("s3://bkt/{key}"));
        assert_eq!(request["platform"], "linux/arm64");
        let Outcome::Submitted(s) = out else {
            panic!("{out:?}")
        };
        assert!(s.build_id.starts_with("cli-"));
        assert!(
            seen.notes
                .iter()
                .any(|n| n.starts_with("uploaded s3://bkt/sources/")),
            "{:?}",
            seen.notes
        );
    }

    #[tokio::test]
    async fn submitting_a_request_built_before_answers_its_outcome() {
        let ctx = context();
        let fake = Fake {
            submission: Some(Submission::Started(Started {
                build_id: "cli-0123".into(),
                execution_arn: "arn".into(),
                existing: true,
            })),
            views: RefCell::new(VecDeque::from([Some(view(
                ViewState::Final(BuildStatus::Reused),
                Some("REUSED"),
                true,
            ))])),
            ..Default::default()
        };
        let mut seen = Seen::default();
        let out = submit(&fake, flags(ctx.path(), "a"), Some("bkt"), None, &mut seen)
            .await
            .unwrap();
        assert_eq!(out.to_json()["status"], "REUSED");
        assert_eq!(out.exit_code(), 0);
        assert!(
            seen.notes.iter().any(|n| n.contains("submitted before")),
            "{:?}",
            seen.notes
        );
    }

    #[tokio::test]
    async fn submit_skips_the_upload_of_a_source_already_there() {
        let ctx = context();
        let sha = crate::package::pack(ctx.path()).unwrap().sha256;
        let fake = Fake {
            existing_sources: vec![source_key("demo", "a", &sha)],
            ..Default::default()
        };
        let mut seen = Seen::default();
        submit(&fake, flags(ctx.path(), "a"), Some("bkt"), None, &mut seen)
            .await
            .unwrap();
        assert!(fake.uploads.borrow().is_empty());
        assert_eq!(fake.submitted.borrow().len(), 1);
    }

    #[tokio::test]
    async fn an_invalid_request_is_rejected_before_packing_or_uploading() {
        let fake = Fake::default();
        let out = submit(
            &fake,
            flags(Path::new("/does/not/exist"), "Bad_Name"),
            None,
            None,
            &mut Seen::default(),
        )
        .await
        .unwrap();
        assert_eq!(out.exit_code(), 2);
        let Outcome::Rejected(r) = out else { panic!() };
        assert_eq!(r.field, "agent");
        assert!(fake.uploads.borrow().is_empty() && fake.submitted.borrow().is_empty());
    }

    #[tokio::test]
    async fn a_context_without_its_dockerfile_is_rejected_naming_dockerfile() {
        let dir = tempfile::tempdir().unwrap();
        let out = submit(
            &Fake::default(),
            flags(dir.path(), "a"),
            Some("bkt"),
            None,
            &mut Seen::default(),
        )
        .await
        .unwrap();
        let Outcome::Rejected(r) = out else {
            panic!("{out:?}")
        };
        assert_eq!(r.field, "dockerfile");
    }

    #[tokio::test]
    async fn a_local_source_needs_a_bucket_and_says_how_to_get_one() {
        let ctx = context();
        let err = submit(
            &Fake::default(),
            flags(ctx.path(), "a"),
            None,
            None,
            &mut Seen::default(),
        )
        .await
        .unwrap_err();
        assert_eq!(err.exit_code(), 3);
        assert!(err.to_string().contains("make local-up"), "{err}");
    }

    #[tokio::test]
    async fn an_api_rejection_is_the_outcome() {
        let ctx = context();
        let fake = Fake {
            submission: Some(Submission::Rejected(Rejection::invalid(
                "source",
                "does not exist",
            ))),
            ..Default::default()
        };
        let out = submit(
            &fake,
            flags(ctx.path(), "a"),
            Some("bkt"),
            None,
            &mut Seen::default(),
        )
        .await
        .unwrap();
        assert_eq!(out.exit_code(), 2);
        assert_eq!(out.to_json()["error"]["field"], "source");
    }

    #[tokio::test(start_paused = true)]
    async fn submit_wait_follows_the_build_to_its_record() {
        let ctx = context();
        let fake = Fake {
            views: RefCell::new(VecDeque::from([
                Some(view(ViewState::Running, None, true)),
                Some(view(ViewState::Running, Some("RUNNING"), true)),
                Some(view(
                    ViewState::Final(BuildStatus::Succeeded),
                    Some("SUCCEEDED"),
                    true,
                )),
            ])),
            ..Default::default()
        };
        let mut seen = Seen::default();
        let t0 = Instant::now();
        let out = submit(
            &fake,
            flags(ctx.path(), "a"),
            Some("bkt"),
            Some(WAIT),
            &mut seen,
        )
        .await
        .unwrap();
        assert_eq!(out.exit_code(), 0);
        assert_eq!(seen.updates, ["RUNNING", "RUNNING", "SUCCEEDED"]);
        assert!(seen.finished);
        // Looks at 0 s, 1 s and 2.5 s: the interval grows by half each time.
        assert_eq!(t0.elapsed(), Duration::from_millis(2500));
    }

    #[tokio::test(start_paused = true)]
    async fn submit_wait_gives_a_new_build_time_to_be_known_and_backs_off_to_the_max() {
        let ctx = context();
        let mut views = VecDeque::from([None, None]);
        views.extend((0..6).map(|_| Some(view(ViewState::Running, None, true))));
        views.push_back(Some(view(
            ViewState::Final(BuildStatus::Succeeded),
            Some("SUCCEEDED"),
            true,
        )));
        let fake = Fake {
            views: RefCell::new(views),
            ..Default::default()
        };
        let t0 = Instant::now();
        let out = submit(
            &fake,
            flags(ctx.path(), "a"),
            Some("bkt"),
            Some(WAIT),
            &mut Seen::default(),
        )
        .await
        .unwrap();
        assert_eq!(out.exit_code(), 0);
        // 1 + 1.5 + 2.25 + 3.375 + 4 × 5 s between the nine looks.
        assert_eq!(t0.elapsed(), Duration::from_millis(28_125));
    }

    #[tokio::test(start_paused = true)]
    async fn wait_exits_by_the_final_status() {
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
            let fake = Fake {
                views: RefCell::new(VecDeque::from([
                    Some(view(ViewState::Running, Some("RUNNING"), true)),
                    Some(view(ViewState::Final(status), Some(status.as_str()), true)),
                ])),
                ..Default::default()
            };
            let out = wait(&fake, "cli-0123", WAIT, &mut Seen::default())
                .await
                .unwrap();
            assert_eq!(out.exit_code(), code, "{status}");
            assert_eq!(out.to_json()["status"], status.as_str());
        }
    }

    fn stopped(settled: bool) -> BuildView {
        let mut v = view(
            ViewState::Final(BuildStatus::Stopped),
            settled.then_some("STOPPED"),
            settled,
        );
        if let Some(r) = v.record.as_mut() {
            r.error = Some(ErrorInfo::new("Cancelled", "cancelled through the CLI"));
        }
        v
    }

    #[tokio::test]
    async fn cancel_exits_0_when_the_build_ends_stopped() {
        let fake = Fake {
            cancellation: Some(Cancellation::Cancelled(stopped(true))),
            ..Default::default()
        };
        let out = cancel(&fake, "cli-0123", None, &mut Seen::default())
            .await
            .unwrap();
        assert_eq!(out.exit_code(), 0);
        assert_eq!(out.to_json()["status"], "STOPPED");
        assert_eq!(out.to_json()["record"]["error"]["type"], "Cancelled");
        assert_eq!(*fake.cancelled.borrow(), ["cli-0123"]);
    }

    #[tokio::test]
    async fn cancel_of_a_build_that_finished_on_its_own_exits_1_with_its_status() {
        let fake = Fake {
            cancellation: Some(Cancellation::Finished(
                agentbuild_core::domain::ending::Reported::Succeeded,
            )),
            ..Default::default()
        };
        let out = cancel(&fake, "cli-0123", None, &mut Seen::default())
            .await
            .unwrap();
        assert_eq!(out.exit_code(), 1);
        let json = out.to_json();
        assert_eq!(json["status"], "SUCCEEDED");
        assert_eq!(json["error"]["code"], "AlreadyFinished");
        assert!(out.to_text().contains("SUCCEEDED"), "{}", out.to_text());
    }

    #[tokio::test]
    async fn cancel_of_a_malformed_id_exits_2_and_of_an_unknown_build_3() {
        let fake = Fake::default();
        let err = cancel(&fake, "../x", None, &mut Seen::default())
            .await
            .unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(fake.cancelled.borrow().is_empty(), "nothing asked");
        let err = cancel(&fake, "cli-404", None, &mut Seen::default())
            .await
            .unwrap_err();
        assert_eq!(err.exit_code(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn cancel_wait_polls_until_the_stopped_record_is_written() {
        let fake = Fake {
            cancellation: Some(Cancellation::Cancelled(stopped(false))),
            views: RefCell::new(VecDeque::from([Some(stopped(false)), Some(stopped(true))])),
            ..Default::default()
        };
        let out = cancel(&fake, "cli-0123", Some(WAIT), &mut Seen::default())
            .await
            .unwrap();
        assert_eq!(out.exit_code(), 0);
        assert!(matches!(&out, Outcome::Cancelled(v) if v.settled && v.record.is_some()));
        let unwaited = cancel(&fake, "cli-0123", None, &mut Seen::default())
            .await
            .unwrap();
        assert_eq!(unwaited.exit_code(), 0, "STOPPED, its record still to come");
    }

    #[tokio::test(start_paused = true)]
    async fn wait_reports_a_rejected_execution_with_exit_2() {
        let fake = Fake {
            views: RefCell::new(VecDeque::from([Some(view(
                ViewState::Rejected(Rejection::invalid("source", "s3://b/k.zip does not exist")),
                None,
                true,
            ))])),
            ..Default::default()
        };
        let out = wait(&fake, "cli-1", WAIT, &mut Seen::default())
            .await
            .unwrap();
        assert_eq!(out.exit_code(), 2);
        assert_eq!(
            out.to_json(),
            serde_json::json!({"status": "REJECTED", "error": {
                "code": "InvalidRequest", "field": "source", "message": "s3://b/k.zip does not exist"}})
        );
    }

    #[tokio::test(start_paused = true)]
    async fn wait_gives_an_ended_execution_time_to_write_its_record() {
        let mut ended = view(
            ViewState::Final(BuildStatus::TimedOut),
            Some("RUNNING"),
            false,
        );
        ended.error = Some(ErrorInfo::new("States.Timeout", "timed out"));
        let recorded = view(
            ViewState::Final(BuildStatus::TimedOut),
            Some("TIMED_OUT"),
            true,
        );
        let fake = Fake {
            views: RefCell::new(VecDeque::from([
                Some(ended.clone()),
                Some(ended.clone()),
                Some(recorded),
            ])),
            ..Default::default()
        };
        let out = wait(&fake, "cli-0123", WAIT, &mut Seen::default())
            .await
            .unwrap();
        let Outcome::Build(v) = &out else { panic!() };
        assert!(v.settled, "the record came");
        assert_eq!(out.exit_code(), 1);

        // No record ever: after the grace period, the execution's word stands.
        let fake = Fake {
            views: RefCell::new(VecDeque::from([Some(ended)])),
            ..Default::default()
        };
        let t0 = Instant::now();
        let out = wait(&fake, "cli-0123", WAIT, &mut Seen::default())
            .await
            .unwrap();
        assert_eq!(out.exit_code(), 1);
        assert_eq!(out.to_json()["status"], "TIMED_OUT");
        let waited = t0.elapsed();
        assert!(
            waited >= WAIT.grace && waited < WAIT.grace + WAIT.max_interval,
            "{waited:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn unknown_builds_and_malformed_ids() {
        let fake = Fake {
            views: RefCell::new(VecDeque::from([None])),
            ..Default::default()
        };
        let err = status(&fake, "cli-404", false).await.unwrap_err();
        assert!(matches!(err, CliError::NotFound(_)), "{err}");
        assert_eq!(err.exit_code(), 3);
        let err = wait(&fake, "cli-404", WAIT, &mut Seen::default())
            .await
            .unwrap_err();
        assert!(matches!(err, CliError::NotFound(_)), "{err}");
        let err = status(&fake, "../etc/passwd", false).await.unwrap_err();
        assert_eq!(err.exit_code(), 2);
    }

    #[tokio::test]
    async fn list_answers_the_latest_record_or_says_there_is_none() {
        let fake = Fake {
            latest: Some(record("SUCCEEDED")),
            ..Default::default()
        };
        let out = latest(&fake, "demo", "sample-agent").await.unwrap();
        assert_eq!(out.exit_code(), 0);
        assert_eq!(out.to_json()["record"]["agent"], "sample-agent");
        let err = latest(&Fake::default(), "demo", "sample-agent")
            .await
            .unwrap_err();
        assert!(err.to_string().contains("no successful build yet"), "{err}");
        assert!(matches!(err, CliError::NoSuccessfulBuild(_)), "{err:?}");
        assert_eq!(
            err.exit_code(),
            1,
            "the service answered: nothing succeeded"
        );
        assert_eq!(latest(&fake, "Demo", "x").await.unwrap_err().exit_code(), 2);
    }

    #[tokio::test]
    async fn logs_print_the_link_and_the_tail_or_why_not() {
        let fake = Fake {
            views: RefCell::new(VecDeque::from([Some(view(
                ViewState::Final(BuildStatus::Failed),
                Some("FAILED"),
                true,
            ))])),
            tail: Some(Ok(vec!["Step 1/4 : FROM python".into()])),
            ..Default::default()
        };
        let got = logs(&fake, "cli-0123", 50).await.unwrap();
        assert!(got
            .link
            .unwrap()
            .contains("logEvent:group=/agentbuild/builds"));
        assert_eq!(got.tail.unwrap(), ["Step 1/4 : FROM python"]);
        assert_eq!(
            fake.tailed.borrow()[0],
            LogStream {
                group: "/agentbuild/builds".into(),
                stream: "1b2c".into()
            }
        );

        let unreachable = Fake {
            views: RefCell::new(VecDeque::from([Some(view(
                ViewState::Final(BuildStatus::Failed),
                Some("FAILED"),
                true,
            ))])),
            tail: Some(Err("ResourceNotFoundException".into())),
            ..Default::default()
        };
        let got = logs(&unreachable, "cli-0123", 50).await.unwrap();
        assert!(got.link.is_some());
        assert!(got.tail.unwrap_err().starts_with("log tail not reachable"));
    }
}
