//! Glue: one module per Lambda, each with its `Deps` (built once in `main`), `handle` and
//! `main` — the whole process of `functions/<name>`, whose `main.rs` only calls it.

pub mod api;
pub mod assemble_artifact;
pub mod await_build;
pub mod build_events;
pub mod check_build;
pub mod check_runtime;
pub mod deploy_runtime;
pub mod prepare_code;
pub mod rebuild;
pub mod record_result;
pub mod start_build;
pub mod validate_request;

use chrono::{DateTime, Utc};

/// The process of one Lambda function: its module's `main`.
pub type Main = fn() -> Result<(), lambda_runtime::Error>;

/// Every Lambda by its handler module's name (its function name with `_` for `-`: the
/// `functions/<name>` crate and binary) with that module's `main`: what `agentbuild-handlers
/// <name>` runs (src/bin/agentbuild-handlers.rs, the local stack's one binary) and what
/// `functions/<name>/src/main.rs` calls (tests/tests/contracts/template.rs holds both to this
/// table and the table to the catalog). Built from the module names, so a name cannot run
/// another module's `main`.
pub const MAINS: &[(&str, Main)] = mains![
    api,
    assemble_artifact,
    await_build,
    build_events,
    check_build,
    check_runtime,
    deploy_runtime,
    prepare_code,
    rebuild,
    record_result,
    start_build,
    validate_request,
];

macro_rules! mains {
    ($($module:ident),* $(,)?) => {
        &[$((stringify!($module), $module::main)),*]
    };
}
use mains;

/// The clock handlers read; tests pin it.
pub type Clock = fn() -> DateTime<Utc>;

pub use crate::adapters::{aws_config, s3_client};

/// A handler module's `pub fn main()`: tracing, `Deps::from_env`, then the Lambda runtime loop
/// over `handle`. It lives here, in the library, so that `handle`'s instantiation over the AWS
/// adapters and the runtime loop compile once, with this crate, and each binary only links.
macro_rules! lambda_main {
    () => {
        /// The Lambda function's process (its binary's `main` calls this).
        #[tokio::main]
        pub async fn main() -> Result<(), lambda_runtime::Error> {
            lambda_runtime::tracing::init_default_subscriber();
            let deps = Deps::from_env().await?;
            lambda_runtime::run(lambda_runtime::service_fn(
                |event: lambda_runtime::LambdaEvent<_>| handle(&deps, event.payload),
            ))
            .await
        }
    };
}
pub(crate) use lambda_main;
