//! The assemble-artifact Lambda: see [`agentbuild_core::handlers::assemble_artifact`].

use agentbuild_core::handlers::assemble_artifact::{handle, Deps};
use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let deps = Deps::from_env().await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<_>| {
        handle(&deps, event.payload)
    }))
    .await
}
