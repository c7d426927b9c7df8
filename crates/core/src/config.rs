//! Each function's configuration, read once at cold start from its environment. The variable
//! names are listed per function in [`crate::testing::catalog`] (test support), which a test holds against template.yaml.

use crate::domain::deploy_request::RolePolicy;
use crate::domain::deployment::DeployPolicy;
use crate::domain::fallback::{Fallback, DEFAULT_CALLBACK_TIMEOUT_SECONDS};
use crate::domain::request::{SecretPolicy, SourcePolicy};
use crate::domain::scan_gate::GatePolicy;
use crate::Error;

pub const BUCKET: &str = "AGENTBUILD_BUCKET";
pub const REPOSITORY_URI: &str = "AGENTBUILD_REPOSITORY_URI";
pub const ALLOWED_SOURCE_BUCKETS: &str = "AGENTBUILD_ALLOWED_SOURCE_BUCKETS";
pub const CODEBUILD_PROJECT: &str = "AGENTBUILD_CODEBUILD_PROJECT";
/// The CodeBuild project that builds code artifacts' dependency layers (LayerProject).
pub const LAYER_PROJECT: &str = "AGENTBUILD_LAYER_PROJECT";
pub const BUILD_TIMEOUT_MINUTES: &str = "AGENTBUILD_BUILD_TIMEOUT_MINUTES";
pub const QUEUED_TIMEOUT_MINUTES: &str = "AGENTBUILD_QUEUED_TIMEOUT_MINUTES";
pub const CALLBACK_TIMEOUT_SECONDS: &str = "AGENTBUILD_CALLBACK_TIMEOUT_SECONDS";
pub const STATE_MACHINE_ARN: &str = "AGENTBUILD_STATE_MACHINE_ARN";
pub const REBUILD_MAX_CONCURRENCY: &str = "AGENTBUILD_REBUILD_MAX_CONCURRENCY";
pub const REBUILD_TOLERATED_FAILURE_PERCENTAGE: &str =
    "AGENTBUILD_REBUILD_TOLERATED_FAILURE_PERCENTAGE";
pub const EVENT_BUS: &str = "AGENTBUILD_EVENT_BUS";
/// The stack's own AgentCore Runtime execution role: a `deploy` without `roleArn` gets it.
pub const RUNTIME_ROLE_ARN: &str = "AGENTBUILD_RUNTIME_ROLE_ARN";
/// Other execution roles a `deploy.roleArn` may name (comma-separated ARNs).
pub const ALLOWED_RUNTIME_ROLES: &str = "AGENTBUILD_ALLOWED_RUNTIME_ROLES";
/// The start of the Secrets Manager ARNs a request's `buildSecrets` may name (the
/// BuildSecretArnPrefix parameter); empty turns build secrets off.
pub const BUILD_SECRET_ARN_PREFIX: &str = "AGENTBUILD_BUILD_SECRET_ARN_PREFIX";
/// The first wait between two checks of a deploying runtime (seconds; it doubles up to 60).
pub const DEPLOY_POLL_SECONDS: &str = "AGENTBUILD_DEPLOY_POLL_SECONDS";
/// How long a runtime may take to become READY before the deployment FAILED (seconds).
pub const DEPLOY_TIMEOUT_SECONDS: &str = "AGENTBUILD_DEPLOY_TIMEOUT_SECONDS";
/// The stack's name (`AWS::StackName`): the `agentbuild:stack` tag of what it creates, and part
/// of its default runtime names.
pub const STACK_NAME: &str = "AGENTBUILD_STACK_NAME";
/// The vulnerability gate's threshold (ScanGateSeverity: CRITICAL | HIGH | MEDIUM | LOW | OFF;
/// default CRITICAL) and whether only findings with a fix block (ScanGateFixableOnly, default true).
pub const SCAN_GATE_SEVERITY: &str = "AGENTBUILD_SCAN_GATE_SEVERITY";
pub const SCAN_GATE_FIXABLE_ONLY: &str = "AGENTBUILD_SCAN_GATE_FIXABLE_ONLY";
pub const SCAN_GATE_REQUIRE_SCAN: &str = "AGENTBUILD_SCAN_GATE_REQUIRE_SCAN";

/// Where a function's settings come from: the process environment in Lambda, a map in tests.
pub trait Source {
    fn get(&self, name: &str) -> Option<String>;

    fn required(&self, name: &str) -> Result<String, Error> {
        self.get(name)
            .filter(|v| !v.trim().is_empty())
            .ok_or_else(|| Error::Config(format!("environment variable {name} is not set")))
    }

    fn number<T: std::str::FromStr>(&self, name: &str, default: T) -> Result<T, Error> {
        match self.get(name).filter(|v| !v.trim().is_empty()) {
            None => Ok(default),
            Some(v) => v.trim().parse().map_err(|_| {
                Error::Config(format!(
                    "environment variable {name} must be a number, got {v:?}"
                ))
            }),
        }
    }
}

/// The process environment.
pub struct ProcessEnv;

impl Source for ProcessEnv {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl<const N: usize> Source for [(&str, &str); N] {
    fn get(&self, name: &str) -> Option<String> {
        self.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidateConfig {
    /// The stack whose defaults a plan's `deploy` takes.
    pub stack: String,
    pub sources: SourcePolicy,
    pub repository_uri: String,
    /// Sources larger than this are rejected (they would be hashed and sent to CodeBuild).
    pub max_source_bytes: u64,
}

impl ValidateConfig {
    pub fn load(env: &impl Source) -> Result<Self, Error> {
        let extra = env.get(ALLOWED_SOURCE_BUCKETS).unwrap_or_default();
        Ok(Self {
            stack: stack_name(env)?,
            sources: SourcePolicy {
                own_bucket: env.required(BUCKET)?,
                extra_buckets: list(&extra),
                runtime_roles: runtime_roles(env)?,
                build_secrets: secret_policy(env)?,
            },
            repository_uri: env.required(REPOSITORY_URI)?,
            max_source_bytes: 1 << 30,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartBuildConfig {
    pub bucket: String,
    pub project: String,
    pub layer_project: String,
    pub build_timeout_minutes: i32,
    pub queued_timeout_minutes: i32,
    pub fallback: Fallback,
}

impl StartBuildConfig {
    pub fn load(env: &impl Source) -> Result<Self, Error> {
        Ok(Self {
            bucket: env.required(BUCKET)?,
            project: env.required(CODEBUILD_PROJECT)?,
            layer_project: env.required(LAYER_PROJECT)?,
            build_timeout_minutes: env.number(BUILD_TIMEOUT_MINUTES, 60)?,
            queued_timeout_minutes: env.number(QUEUED_TIMEOUT_MINUTES, 30)?,
            fallback: fallback(env)?,
        })
    }

    /// CodeBuild's own timeouts plus a grace for its last phases: past this, CheckBuild stops
    /// the build itself.
    pub fn deadline_seconds(&self) -> u64 {
        (self.build_timeout_minutes.max(0) as u64 + self.queued_timeout_minutes.max(0) as u64) * 60
            + 300
    }
}

/// How long a callback wait lasts before CheckBuild looks (the CallbackTimeoutSeconds
/// parameter; the template bounds it, this only refuses what is not a number).
fn fallback(env: &impl Source) -> Result<Fallback, Error> {
    Ok(Fallback::new(env.number(
        CALLBACK_TIMEOUT_SECONDS,
        DEFAULT_CALLBACK_TIMEOUT_SECONDS,
    )?))
}

/// CheckBuild's and AwaitBuild's: the records' bucket and the callback timeout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildWaitConfig {
    pub bucket: String,
    pub fallback: Fallback,
}

impl BuildWaitConfig {
    pub fn load(env: &impl Source) -> Result<Self, Error> {
        Ok(Self {
            bucket: env.required(BUCKET)?,
            fallback: fallback(env)?,
        })
    }
}

/// The event handler's: it completes waits only for builds of this CodeBuild project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildEventsConfig {
    pub check: BuildWaitConfig,
    pub project: String,
    /// The code project's builds (dependency layers) end waits too.
    pub layer_project: String,
}

impl BuildEventsConfig {
    pub fn load(env: &impl Source) -> Result<Self, Error> {
        Ok(Self {
            check: BuildWaitConfig::load(env)?,
            project: env.required(CODEBUILD_PROJECT)?,
            layer_project: env.required(LAYER_PROJECT)?,
        })
    }

    /// A build of one of this stack's projects.
    pub fn is_ours(&self, project: Option<&str>) -> bool {
        project.is_some_and(|p| p == self.project || p == self.layer_project)
    }
}

/// PrepareCode's and AssembleArtifact's: the bucket (layers, artifacts) and the local work
/// directory (Lambda's /tmp; its size is the function's ephemeral storage).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeConfig {
    pub bucket: String,
    pub work_dir: std::path::PathBuf,
}

impl CodeConfig {
    pub fn load(env: &impl Source) -> Result<Self, Error> {
        Ok(Self {
            bucket: env.required(BUCKET)?,
            work_dir: std::env::temp_dir(),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordResultConfig {
    pub bucket: String,
    /// Where `Build Finished` events go: a bus name or ARN.
    pub event_bus: String,
}

impl RecordResultConfig {
    pub fn load(env: &impl Source) -> Result<Self, Error> {
        Ok(Self {
            bucket: env.required(BUCKET)?,
            event_bus: event_bus(env),
        })
    }
}

fn list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|b| !b.is_empty())
        .map(String::from)
        .collect()
}

/// Where build secrets may come from: a prefix that is no secret ARN's start is refused at
/// cold start, not at the first request.
fn secret_policy(env: &impl Source) -> Result<SecretPolicy, Error> {
    let prefix = env.get(BUILD_SECRET_ARN_PREFIX).unwrap_or_default();
    SecretPolicy::from_prefix(&prefix).map_err(|rule| {
        Error::Config(format!(
            "environment variable {BUILD_SECRET_ARN_PREFIX} {rule}"
        ))
    })
}

/// The runtime roles a `deploy` may name: the stack's own and the allowlist.
fn runtime_roles(env: &impl Source) -> Result<RolePolicy, Error> {
    Ok(RolePolicy {
        default_role: env.required(RUNTIME_ROLE_ARN)?,
        allowed: list(&env.get(ALLOWED_RUNTIME_ROLES).unwrap_or_default()),
    })
}

/// A CloudFormation stack name (`^[a-zA-Z][-a-zA-Z0-9]{0,127}$`): it becomes a tag value and
/// part of runtime names.
fn stack_name(env: &impl Source) -> Result<String, Error> {
    let name = env.required(STACK_NAME)?;
    let b = name.as_bytes();
    let ok = b.len() <= 128
        && b[0].is_ascii_alphabetic()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-');
    if ok {
        Ok(name)
    } else {
        Err(Error::Config(format!(
            "environment variable {STACK_NAME} must be a CloudFormation stack name \
             (^[a-zA-Z][-a-zA-Z0-9]{{0,127}}$)"
        )))
    }
}

fn deploy_policy(env: &impl Source) -> Result<DeployPolicy, Error> {
    Ok(DeployPolicy {
        first_wait_seconds: env.number(DEPLOY_POLL_SECONDS, 5)?,
        timeout_seconds: env.number(DEPLOY_TIMEOUT_SECONDS, 900)?,
    })
}

/// DeployRuntime: reads the agent's latest record (its previous deployment), creates or updates
/// the runtime with the stack's role unless the request named an allowed one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployConfig {
    pub bucket: String,
    /// The `agentbuild:stack` tag of the runtimes this stack creates and may touch.
    pub stack: String,
    pub default_role: String,
    pub policy: DeployPolicy,
    /// The vulnerability gate before a version is created (`domain::scan_gate`).
    pub scan_gate: GatePolicy,
}

impl DeployConfig {
    pub fn load(env: &impl Source) -> Result<Self, Error> {
        Ok(Self {
            bucket: env.required(BUCKET)?,
            stack: stack_name(env)?,
            default_role: env.required(RUNTIME_ROLE_ARN)?,
            policy: deploy_policy(env)?,
            scan_gate: scan_gate(env)?,
        })
    }
}

fn scan_gate(env: &impl Source) -> Result<GatePolicy, Error> {
    let severity = env.get(SCAN_GATE_SEVERITY).filter(|v| !v.is_empty());
    let fixable = env.get(SCAN_GATE_FIXABLE_ONLY).filter(|v| !v.is_empty());
    GatePolicy::parse(
        severity.as_deref().unwrap_or("CRITICAL"),
        fixable.as_deref().unwrap_or("true"),
    )
    .map_err(|why| {
        Error::Config(format!(
            "environment variables {SCAN_GATE_SEVERITY}/{SCAN_GATE_FIXABLE_ONLY}: {why}"
        ))
    })
    .and_then(|policy| {
        let require = env.get(SCAN_GATE_REQUIRE_SCAN).filter(|v| !v.is_empty());
        let require_scan = match require.as_deref().unwrap_or("false") {
            "true" => true,
            "false" => false,
            _ => {
                return Err(Error::Config(format!(
                    "environment variable {SCAN_GATE_REQUIRE_SCAN}: must be true or false"
                )))
            }
        };
        Ok(GatePolicy {
            require_scan,
            ..policy
        })
    })
}

/// CheckRuntime: how long to wait between checks (the deadline travels in the state).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckRuntimeConfig {
    /// Where the deploy ledger is re-read before an endpoint moves.
    pub bucket: String,
    /// The `agentbuild:stack` tag of the endpoints this stack creates.
    pub stack: String,
    pub policy: DeployPolicy,
}

impl CheckRuntimeConfig {
    pub fn load(env: &impl Source) -> Result<Self, Error> {
        Ok(Self {
            bucket: env.required(BUCKET)?,
            stack: stack_name(env)?,
            policy: deploy_policy(env)?,
        })
    }
}

/// The bus final records are announced on; the account's default bus unless named.
pub fn event_bus(env: &impl Source) -> String {
    env.get(EVENT_BUS)
        .map(|b| b.trim().to_string())
        .filter(|b| !b.is_empty())
        .unwrap_or_else(|| "default".to_string())
}

/// The build state machine's ARN; execution ARNs are derived from it.
fn state_machine_arn(env: &impl Source) -> Result<String, Error> {
    let arn = env.required(STATE_MACHINE_ARN)?;
    if arn.starts_with("arn:") && arn.contains(":stateMachine:") {
        Ok(arn)
    } else {
        Err(Error::Config(format!(
            "environment variable {STATE_MACHINE_ARN} must be a state machine ARN \
             (arn:<partition>:states:<region>:<account>:stateMachine:<name>), got {arn:?}"
        )))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiConfig {
    /// The same source rules, repository and size limit as ValidateRequest: POST /projects/{p}/builds
    /// answers 400 at once for what the execution would reject.
    pub validate: ValidateConfig,
    pub state_machine_arn: String,
    /// Request bodies larger than this are refused (413) before parsing.
    pub max_body_bytes: usize,
}

impl ApiConfig {
    pub fn load(env: &impl Source) -> Result<Self, Error> {
        Ok(Self {
            validate: ValidateConfig::load(env)?,
            state_machine_arn: state_machine_arn(env)?,
            max_body_bytes: 64 * 1024,
        })
    }

    /// The stack's bucket (records, latest pointers, uploaded sources).
    pub fn bucket(&self) -> &str {
        &self.validate.sources.own_bucket
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RebuildConfig {
    pub bucket: String,
    /// The build machine: the fleet's children are its executions.
    pub state_machine_arn: String,
    /// The Distributed Map's MaxConcurrency: at most this many rebuilds run at once.
    pub max_concurrency: usize,
    /// The Distributed Map's ToleratedFailurePercentage: past it, the run stops starting
    /// rebuilds (a broken base image should not burn CodeBuild minutes on every agent).
    pub tolerated_failure_percentage: f64,
}

impl RebuildConfig {
    pub fn load(env: &impl Source) -> Result<Self, Error> {
        let max_concurrency = env.number(REBUILD_MAX_CONCURRENCY, 5)?;
        if max_concurrency == 0 {
            return Err(Error::Config(format!(
                "environment variable {REBUILD_MAX_CONCURRENCY} must be at least 1 \
                 (disable the schedule to pause rebuilds)"
            )));
        }
        let tolerated = env.number(REBUILD_TOLERATED_FAILURE_PERCENTAGE, 10u32)?;
        if tolerated > 100 {
            return Err(Error::Config(format!(
                "environment variable {REBUILD_TOLERATED_FAILURE_PERCENTAGE} must be 0 to 100"
            )));
        }
        Ok(Self {
            bucket: env.required(BUCKET)?,
            state_machine_arn: state_machine_arn(env)?,
            max_concurrency,
            tolerated_failure_percentage: f64::from(tolerated),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_variable_is_named() {
        let err = BuildWaitConfig::load(&[(CALLBACK_TIMEOUT_SECONDS, "1")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "configuration: environment variable AGENTBUILD_BUCKET is not set"
        );
    }

    #[test]
    fn a_bad_number_is_named() {
        let err = BuildWaitConfig::load(&[(BUCKET, "b"), (CALLBACK_TIMEOUT_SECONDS, "soon")])
            .unwrap_err();
        assert!(err
            .to_string()
            .contains("AGENTBUILD_CALLBACK_TIMEOUT_SECONDS must be a number"));
    }

    #[test]
    fn the_callback_timeout_defaults_to_ten_minutes() {
        let c = BuildWaitConfig::load(&[(BUCKET, "b")]).unwrap();
        assert_eq!(c.fallback.timeout_seconds, 600);
        let c = BuildEventsConfig::load(&[
            (BUCKET, "b"),
            (CODEBUILD_PROJECT, "p"),
            (LAYER_PROJECT, "c"),
            (CALLBACK_TIMEOUT_SECONDS, "3"),
        ])
        .unwrap();
        assert_eq!(
            (c.project.as_str(), c.check.fallback.timeout_seconds),
            ("p", 3)
        );
    }

    #[test]
    fn extra_source_buckets_are_a_comma_list() {
        let c = ValidateConfig::load(&[
            (BUCKET, "own"),
            (STACK_NAME, "agentbuild"),
            (REPOSITORY_URI, "r"),
            (ALLOWED_SOURCE_BUCKETS, " a, ,b "),
            (RUNTIME_ROLE_ARN, "arn:aws:iam::1:role/rt"),
            (
                ALLOWED_RUNTIME_ROLES,
                "arn:aws:iam::1:role/x, arn:aws:iam::1:role/y",
            ),
        ])
        .unwrap();
        assert_eq!(c.sources.extra_buckets, ["a", "b"]);
        let roles = c.sources.runtime_roles;
        assert_eq!(roles.default_role, "arn:aws:iam::1:role/rt");
        assert_eq!(
            roles.allowed,
            ["arn:aws:iam::1:role/x", "arn:aws:iam::1:role/y"]
        );
    }

    #[test]
    fn build_secrets_are_off_without_a_prefix_and_a_bad_prefix_is_refused() {
        let base = [
            (BUCKET, "own"),
            (STACK_NAME, "agentbuild"),
            (REPOSITORY_URI, "r"),
            (RUNTIME_ROLE_ARN, "arn:aws:iam::1:role/rt"),
        ];
        let c = ValidateConfig::load(&base).unwrap();
        assert_eq!(c.sources.build_secrets.arn_prefix, None);
        let prefix = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:agentbuild/";
        let on = [
            base[0],
            base[1],
            base[2],
            base[3],
            (BUILD_SECRET_ARN_PREFIX, prefix),
        ];
        let c = ValidateConfig::load(&on).unwrap();
        assert_eq!(c.sources.build_secrets.arn_prefix.as_deref(), Some(prefix));
        let bad = [
            base[0],
            base[1],
            base[2],
            base[3],
            (BUILD_SECRET_ARN_PREFIX, "*"),
        ];
        let err = ValidateConfig::load(&bad).unwrap_err();
        assert!(err.to_string().contains(BUILD_SECRET_ARN_PREFIX), "{err}");
    }

    #[test]
    fn deadline_covers_codebuild_timeouts_plus_grace() {
        let c = StartBuildConfig::load(&[
            (BUCKET, "b"),
            (CODEBUILD_PROJECT, "p"),
            (LAYER_PROJECT, "c"),
            (BUILD_TIMEOUT_MINUTES, "60"),
            (QUEUED_TIMEOUT_MINUTES, "30"),
        ])
        .unwrap();
        assert_eq!(c.deadline_seconds(), 90 * 60 + 300);
    }

    #[test]
    fn the_event_bus_is_the_default_one_unless_named() {
        let c = RecordResultConfig::load(&[(BUCKET, "b")]).unwrap();
        assert_eq!(c.event_bus, "default");
        let arn = "arn:aws:events:us-east-1:123456789012:event-bus/ops";
        let c = RecordResultConfig::load(&[(BUCKET, "b"), (EVENT_BUS, arn)]).unwrap();
        assert_eq!(c.event_bus, arn);
    }

    const MACHINE: &str = "arn:aws:states:us-east-1:123456789012:stateMachine:agentbuild-build";

    #[test]
    fn api_config_reads_the_validation_settings_and_the_machine() {
        let c = ApiConfig::load(&[
            (BUCKET, "own"),
            (STACK_NAME, "agentbuild"),
            (REPOSITORY_URI, "r"),
            (STATE_MACHINE_ARN, MACHINE),
            (RUNTIME_ROLE_ARN, "arn:aws:iam::1:role/rt"),
        ])
        .unwrap();
        assert_eq!((c.bucket(), c.state_machine_arn.as_str()), ("own", MACHINE));
        assert_eq!(c.max_body_bytes, 65536);
        let err = ApiConfig::load(&[
            (BUCKET, "own"),
            (STACK_NAME, "agentbuild"),
            (REPOSITORY_URI, "r"),
            (RUNTIME_ROLE_ARN, "arn:aws:iam::1:role/rt"),
        ])
        .unwrap_err();
        assert!(err.to_string().contains(STATE_MACHINE_ARN), "{err}");
        // Without the runtime role no door could enforce the role allowlist: refused.
        let err = ApiConfig::load(&[
            (BUCKET, "own"),
            (STACK_NAME, "agentbuild"),
            (REPOSITORY_URI, "r"),
            (STATE_MACHINE_ARN, MACHINE),
        ])
        .unwrap_err();
        assert!(err.to_string().contains(RUNTIME_ROLE_ARN), "{err}");
    }

    #[test]
    fn a_machine_arn_that_is_not_one_is_refused() {
        let err = RebuildConfig::load(&[(BUCKET, "b"), (STATE_MACHINE_ARN, "agentbuild-build")])
            .unwrap_err();
        assert!(
            err.to_string().contains("must be a state machine ARN"),
            "{err}"
        );
    }

    #[test]
    fn rebuild_concurrency_defaults_to_five_and_must_be_positive() {
        let c = RebuildConfig::load(&[(BUCKET, "b"), (STATE_MACHINE_ARN, MACHINE)]).unwrap();
        assert_eq!(c.max_concurrency, 5);
        let err = RebuildConfig::load(&[
            (BUCKET, "b"),
            (STATE_MACHINE_ARN, MACHINE),
            (REBUILD_MAX_CONCURRENCY, "0"),
        ])
        .unwrap_err();
        assert!(err.to_string().contains("at least 1"), "{err}");
    }

    #[test]
    fn rebuild_failure_tolerance_defaults_to_ten_percent_and_is_a_percentage() {
        let c = RebuildConfig::load(&[(BUCKET, "b"), (STATE_MACHINE_ARN, MACHINE)]).unwrap();
        assert_eq!(c.tolerated_failure_percentage, 10.0);
        let err = RebuildConfig::load(&[
            (BUCKET, "b"),
            (STATE_MACHINE_ARN, MACHINE),
            (REBUILD_TOLERATED_FAILURE_PERCENTAGE, "150"),
        ])
        .unwrap_err();
        assert!(err.to_string().contains("0 to 100"), "{err}");
    }

    #[test]
    fn requiring_a_scan_is_off_by_default_and_a_boolean() {
        let base = [
            (BUCKET, "b"),
            (RUNTIME_ROLE_ARN, "arn:aws:iam::1:role/rt"),
            (STACK_NAME, "agentbuild"),
        ];
        assert!(!DeployConfig::load(&base).unwrap().scan_gate.require_scan);
        let with = |v: &'static str| {
            let [b, r, n] = base;
            DeployConfig::load(&[b, r, n, (SCAN_GATE_REQUIRE_SCAN, v)])
        };
        assert!(with("true").unwrap().scan_gate.require_scan);
        assert!(!with("false").unwrap().scan_gate.require_scan);
        let err = with("yes").unwrap_err();
        assert!(err.to_string().contains(SCAN_GATE_REQUIRE_SCAN), "{err}");
    }

    #[test]
    fn the_stack_name_is_required_and_a_stack_name() {
        let env = |name: &'static str| {
            [
                (BUCKET, "b"),
                (RUNTIME_ROLE_ARN, "arn:aws:iam::1:role/rt"),
                (STACK_NAME, name),
            ]
        };
        assert_eq!(
            DeployConfig::load(&env("agentbuild-prod")).unwrap().stack,
            "agentbuild-prod"
        );
        for bad in ["", "1stack", "a/b", "a_b"] {
            let err = DeployConfig::load(&env(bad)).unwrap_err();
            assert!(err.to_string().contains(STACK_NAME), "{bad}: {err}");
        }
    }
}
