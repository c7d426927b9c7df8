//! The api Lambda: see [`agentbuild_core::handlers::api`].

fn main() -> Result<(), lambda_http::Error> {
    agentbuild_core::handlers::api::main()
}
