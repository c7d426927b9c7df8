//! The check-build Lambda: see [`agentbuild_core::handlers::check_build`].

fn main() -> Result<(), lambda_runtime::Error> {
    agentbuild_core::handlers::check_build::main()
}
