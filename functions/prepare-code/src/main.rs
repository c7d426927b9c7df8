//! The prepare-code Lambda: see [`agentbuild_core::handlers::prepare_code`].

fn main() -> Result<(), lambda_runtime::Error> {
    agentbuild_core::handlers::prepare_code::main()
}
