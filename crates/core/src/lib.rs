//! agentbuild's core, shared by every door: the domain (pure rules), ports with their AWS
//! adapters, and the configuration. With the `lambda` feature (every crate under `functions/`
//! turns it on, the CLI does not): the state payloads the ASL passes between states and one
//! handler per Lambda.
//!
//! Finding a Lambda: `template.yaml` resource -> `functions/<name>/src/main.rs` ->
//! `handlers::<name>::handle`.

pub mod adapters;
pub mod config;
pub mod contract;
pub mod domain;
pub mod error;
#[cfg(feature = "lambda")]
pub mod handlers;
#[cfg(feature = "lambda")]
pub mod model;
pub mod ports;
pub mod services;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use error::Error;
