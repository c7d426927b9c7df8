//! The assemble-artifact Lambda: see [`agentbuild_core::handlers::assemble_artifact`].

fn main() -> Result<(), lambda_runtime::Error> {
    agentbuild_core::handlers::assemble_artifact::main()
}
