//! Every Lambda of functions/ in one binary, for the local stack: `agentbuild-handlers <function>`
//! runs the process `functions/<function>`'s own binary runs — both call the same
//! `handlers::<module>::main` ([`handlers::MAINS`]). A cold `make test` or `make demo` links this
//! once instead of twelve binaries; AWS runs the per-function binaries (`make package`).

use agentbuild_core::handlers;
use std::process::ExitCode;

fn main() -> ExitCode {
    let name = std::env::args().nth(1).unwrap_or_default();
    let module = name.replace('-', "_");
    let Some((_, main)) = handlers::MAINS.iter().find(|(m, _)| *m == module) else {
        let known: Vec<String> = handlers::MAINS
            .iter()
            .map(|(m, _)| m.replace('_', "-"))
            .collect();
        eprintln!(
            "usage: agentbuild-handlers <function>; function must be one of {}",
            known.join(", ")
        );
        return ExitCode::from(2);
    };
    match main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e:?}");
            ExitCode::FAILURE
        }
    }
}
