//! The build-events Lambda: see [`agentbuild_core::handlers::build_events`].

fn main() -> Result<(), lambda_runtime::Error> {
    agentbuild_core::handlers::build_events::main()
}
