//! The api Lambda: see [`agentbuild_core::handlers::api`].

use agentbuild_core::handlers::api::{handle, Deps};
use lambda_http::{service_fn, Error, Request};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    let deps = Deps::from_env().await?;
    lambda_http::run(service_fn(|request: Request| handle(&deps, request))).await
}
