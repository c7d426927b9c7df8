//! The `agentbuild` command-line client: packages a build context, submits it as a build
//! request (through the API, or straight to the state machine) and follows the build.
//!
//! Layout: [`cli`] parses and wires; [`commands`] holds each command's logic over the small
//! [`service::Service`] trait, which [`aws`] implements (S3, Step Functions, the API over
//! [`http`], CloudWatch Logs); [`output`] is the stdout contract and exit codes; [`settings`]
//! reads flags, the environment and `.local/env`; [`terminal`] strips control sequences from
//! whatever the service or a build log says, before it is printed.

pub mod aws;
pub mod cli;
pub mod commands;
pub mod dockerignore;
pub mod error;
pub mod http;
pub mod output;
pub mod package;
pub mod progress;
pub mod request;
pub mod service;
pub mod settings;
pub mod terminal;
