//! The validate-request Lambda: see [`agentbuild_core::handlers::validate_request`].

fn main() -> Result<(), lambda_runtime::Error> {
    agentbuild_core::handlers::validate_request::main()
}
