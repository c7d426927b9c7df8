//! The start-build Lambda: see [`agentbuild_core::handlers::start_build`].

fn main() -> Result<(), lambda_runtime::Error> {
    agentbuild_core::handlers::start_build::main()
}
