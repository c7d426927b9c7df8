//! The deploy-runtime Lambda: see [`agentbuild_core::handlers::deploy_runtime`].

fn main() -> Result<(), lambda_runtime::Error> {
    agentbuild_core::handlers::deploy_runtime::main()
}
