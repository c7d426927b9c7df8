//! The await-build Lambda: see [`agentbuild_core::handlers::await_build`].

fn main() -> Result<(), lambda_runtime::Error> {
    agentbuild_core::handlers::await_build::main()
}
