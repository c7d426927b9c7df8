//! The check-runtime Lambda: see [`agentbuild_core::handlers::check_runtime`].

fn main() -> Result<(), lambda_runtime::Error> {
    agentbuild_core::handlers::check_runtime::main()
}
