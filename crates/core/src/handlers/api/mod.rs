//! The API: an HTTP request (`lambda_http`, from an HTTP API payload 2.0 event — also the
//! function-URL format `cargo lambda watch` serves locally) -> one of the routes of
//! `routes::ROUTES`, every one under `/projects/{project}/` (IAM scopes a caller to projects by
//! the route's ARN) -> a JSON response (the types of `contract.rs`); every refusal is
//! `{"error": {"code", "field"?, "message", "status"?}}`.
//!
//! Status codes: 202 build accepted, or cancelled (with the STOPPED record); 200 record, live
//! status, log page, runtime list or retired runtime; 400 bad input (`InvalidRequest` — also a body whose `project` is not the
//! path's —, `MalformedJson`, `SourceNotFound`); 404 `NotFound` (also a build of another
//! project); 405 `MethodNotAllowed`; 409 `IdempotencyKeyReused` / `TooManyAttempts` /
//! `AlreadyFinished` (cancel of a build that ended on its own; `status` says how) /
//! `RuntimeInUse` / `NotOurRuntime` (retire, `runtimes.rs`); 413
//! `PayloadTooLarge`; 415 `UnsupportedMediaType`; 503 `ServiceUnavailable` (AWS throttled or
//! busy; retry); 500 `InternalError`.

mod agents;
mod answers;
mod builds;
mod deployments;
mod promote;
mod routes;
mod runtimes;

use super::{aws_config, s3_client, Clock};
use crate::adapters::agentcore::AgentCore;
use crate::adapters::codebuild::CodeBuild;
use crate::adapters::ecr::Ecr;
use crate::adapters::logs::CloudWatchLogs;
use crate::adapters::s3::S3Store;
use crate::adapters::sfn::StepFunctions;
use crate::config::{ApiConfig, ProcessEnv};
use crate::domain::request::{is_name, RequestError, NAME_RULE};
use crate::ports::{BuildLogs, BuildService, Endpoints, Executions, Images, ObjectStore, Runtimes};
use crate::services::submit;
use crate::Error;
use answers::Problem;
use chrono::Utc;
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use routes::{Endpoint, Matched, Routing};

pub struct Deps<S, X, B, L, R, I> {
    pub store: S,
    pub executions: X,
    /// Cancel stops CodeBuild builds by id: no project name needed.
    pub builds: B,
    /// The builds' log streams (`GET .../logs`).
    pub logs: L,
    /// AgentCore's control plane: retire deletes runtimes (`runtimes.rs`), a rollback moves
    /// an agent's endpoint (`deployments.rs`).
    pub runtimes: R,
    /// ECR: a rollback goes only to an image that is still there.
    pub images: I,
    pub config: ApiConfig,
    pub now: Clock,
}

impl<S, X, B, L, R, I> Deps<S, X, B, L, R, I> {
    /// What the submit door needs of this stack, now: submit and promote accept the same way.
    fn accepting(&self) -> submit::Accepting<'_> {
        submit::Accepting {
            state_machine_arn: &self.config.state_machine_arn,
            repository_uri: &self.config.validate.repository_uri,
            stack: &self.config.validate.stack,
            now: (self.now)(),
        }
    }
}

impl Deps<S3Store, StepFunctions, CodeBuild, CloudWatchLogs, AgentCore, Ecr> {
    pub async fn from_env() -> Result<Self, Error> {
        let config = ApiConfig::load(&ProcessEnv)?;
        let sdk = aws_config().await;
        Ok(Self {
            store: S3Store::new(s3_client(&sdk), config.bucket()),
            executions: StepFunctions::new(
                aws_sdk_sfn::Client::new(&sdk),
                config.state_machine_arn.clone(),
            ),
            builds: CodeBuild::new(aws_sdk_codebuild::Client::new(&sdk)),
            logs: CloudWatchLogs::new(aws_sdk_cloudwatchlogs::Client::new(&sdk)),
            runtimes: AgentCore::new(aws_sdk_bedrockagentcorecontrol::Client::new(&sdk)),
            images: Ecr::new(aws_sdk_ecr::Client::new(&sdk)),
            config,
            now: Utc::now,
        })
    }
}

/// The API function's process (`functions/api`'s `main` calls this): tracing,
/// [`Deps::from_env`], then `lambda_http`'s runtime loop over [`handle`].
#[tokio::main]
pub async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    let deps = Deps::from_env().await?;
    lambda_http::run(lambda_http::service_fn(|request: Request| {
        handle(&deps, request)
    }))
    .await
}

/// Never `Err`: every outcome, AWS failures included, is an HTTP answer.
pub async fn handle<
    S: ObjectStore,
    X: Executions,
    B: BuildService,
    L: BuildLogs,
    R: Runtimes + Endpoints,
    I: Images,
>(
    deps: &Deps<S, X, B, L, R, I>,
    request: Request,
) -> Result<Response<Body>, Error> {
    let gateway = gateway(&request);
    let routing = routes::route(&request, gateway.as_ref().and_then(|g| g.route_key));
    let (name, result) = match routing {
        Routing::Found(matched) => (matched.name(), dispatch(deps, &request, &matched).await),
        Routing::WrongMethod(allow) => (
            "wrong method".to_string(),
            Err(Problem::new(
                405,
                "MethodNotAllowed",
                format!("this path accepts {allow}"),
            )
            .allow(allow)),
        ),
        Routing::Unknown => (
            "unknown".to_string(),
            Err(Problem::new(
                404,
                "NotFound",
                format!("no such route; the API has {}", routes::listing()),
            )),
        ),
    };
    let response = match result {
        Ok(reply) => reply,
        Err(problem) => problem.into_response(gateway.and_then(|g| g.request_id)),
    };
    tracing::info!(
        method = %request.method(),
        route = name.as_str(),
        status = response.status().as_u16(),
        "answered"
    );
    Ok(response)
}

/// The route's project is checked once, here, for every route; each endpoint lives in the
/// module of its resource.
async fn dispatch<
    S: ObjectStore,
    X: Executions,
    B: BuildService,
    L: BuildLogs,
    R: Runtimes + Endpoints,
    I: Images,
>(
    deps: &Deps<S, X, B, L, R, I>,
    request: &Request,
    matched: &Matched,
) -> Result<Response<Body>, Problem> {
    let project = matched.param("project");
    if !is_name(project) {
        return Err(RequestError::new("project", NAME_RULE).into());
    }
    let id = matched.param("buildId");
    match matched.spec.endpoint {
        Endpoint::SubmitBuild => {
            // A request naming a prebuilt artifact deploys it as the promote of its build.
            let body = builds::read_body(request, deps.config.max_body_bytes)?;
            if crate::domain::prebuilt::names_prebuilt(&body) {
                promote::prebuilt(deps, &body, project).await
            } else {
                builds::submit(deps, &body, project).await
            }
        }
        Endpoint::GetBuild => builds::get(deps, project, id).await,
        Endpoint::CancelBuild => builds::cancel_build(deps, project, id).await,
        Endpoint::BuildLogs => builds::logs(deps, request, project, id).await,
        Endpoint::LatestAgent => agents::latest(deps, project, matched.param("agent")).await,
        Endpoint::Promote => promote::promote(deps, request, project, id).await,
        Endpoint::Deployments => deployments::list(deps, project, matched.param("agent")).await,
        Endpoint::Rollback => {
            deployments::roll_back(deps, request, project, matched.param("agent")).await
        }
        Endpoint::ListRuntimes => runtimes::list(deps, project, matched.param("agent")).await,
        Endpoint::RetireRuntime => {
            let (agent, name) = (matched.param("agent"), matched.param("runtimeName"));
            runtimes::retire(deps, request, project, agent, name).await
        }
    }
}

/// What API Gateway says about the request: the matched route, the request id.
struct Gateway<'a> {
    route_key: Option<&'a str>,
    request_id: Option<&'a str>,
}

fn gateway(request: &Request) -> Option<Gateway<'_>> {
    match request.request_context_ref()? {
        RequestContext::ApiGatewayV2(c) => Some(Gateway {
            route_key: c.route_key.as_deref(),
            request_id: c.request_id.as_deref(),
        }),
        // Only HTTP API events are enabled; the enum is open to the other origins.
        _ => None,
    }
}

#[cfg(test)]
mod tests;

/// Who asks (a retire, a rollback): the IAM principal API Gateway authorized, else the door
/// itself with the request's id.
fn caller(request: &Request) -> String {
    let iam = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(c)) => c.authorizer.as_ref().and_then(|a| a.iam.as_ref()),
        _ => None,
    };
    iam.and_then(|i| i.user_arn.clone().or_else(|| i.caller_id.clone()))
        .unwrap_or_else(|| {
            let id = gateway(request).and_then(|g| g.request_id).unwrap_or("-");
            format!("api (unauthenticated request {id})")
        })
}
