//! The rebuild Lambda: see [`agentbuild_core::handlers::rebuild`].

fn main() -> Result<(), lambda_runtime::Error> {
    agentbuild_core::handlers::rebuild::main()
}
