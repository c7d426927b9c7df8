//! The `agentbuild` command-line client: packages a build context and (soon) submits and
//! follows builds through the agentbuild API.

pub mod cli;
pub mod dockerignore;
pub mod package;
