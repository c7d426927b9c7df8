//! The `agentbuild` command-line client: packages a build context, submits it as a build
//! request (through the API, or straight to the state machine) and follows the build.
//!
//! Layout: [`cli`] parses and wires; [`commands`] holds each command's logic over the small
//! [`service::Service`] trait, which [`aws`] implements twice — [`aws::api`] through the API
//! (over [`http`]), [`aws::direct`] over the core's adapters — both reading the core's answer
//! into one view ([`service::view`]); [`output`] is the stdout contract and exit codes;
//! [`settings`] reads flags, the environment and `.local/env`; [`terminal`] (a leaf) strips
//! control sequences from whatever the service or a build log says, before it is printed.
//! Modules import downwards only (tests/tests/contracts/modules.rs checks): cli → commands → output, progress,
//! request → service → package, error, terminal; cli → aws → service, http, settings.

pub mod agent;
pub mod aws;
pub mod cli;
pub mod commands;
pub mod dockerignore;
pub mod error;
pub mod http;
pub mod output;
pub mod package;
pub mod progress;
pub mod promote;
pub mod provenance;
pub mod request;
pub mod runtimes;
pub mod service;
pub mod settings;
pub mod terminal;
