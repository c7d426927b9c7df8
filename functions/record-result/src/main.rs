//! The record-result Lambda: see [`agentbuild_core::handlers::record_result`].

fn main() -> Result<(), lambda_runtime::Error> {
    agentbuild_core::handlers::record_result::main()
}
