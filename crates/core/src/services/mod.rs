//! Application services: the rules every door (the API, the CLI's direct mode, the Lambdas)
//! needs, over the ports. Pure decisions stay in `domain`; these load, decide, store.

/// The build wait (the Lambdas only: it speaks the state machine's payloads).
#[cfg(feature = "lambda")]
pub mod build_wait;
pub mod cancel;
/// A code build's local files (the Lambdas only: PrepareCode, AssembleArtifact).
#[cfg(feature = "lambda")]
pub mod code_files;
pub mod deploys;
pub mod history;
pub mod images;
pub mod live_status;
pub mod objects;
pub mod owner;
pub mod prebuilt;
pub mod records;
pub mod rollback;
pub mod rollout;
pub mod runtime_names;
pub mod stop;
pub mod submit;
