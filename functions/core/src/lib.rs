//! agentbuild's library: the domain (pure rules), the state payloads the ASL passes between
//! states, ports for CodeBuild and S3 with their AWS adapters, and one handler per Lambda.
//!
//! Finding a Lambda: `template.yaml` resource -> `functions/<name>/src/main.rs` ->
//! [`handlers`]`::<name>::handle`.

pub mod adapters;
pub mod catalog;
pub mod config;
pub mod domain;
pub mod error;
pub mod handlers;
pub mod model;
pub mod ports;

pub use error::Error;
