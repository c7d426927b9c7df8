//! Glue: one module per Lambda, each with its `Deps` (built once in `main`) and `handle`.

pub mod api;
pub mod assemble_artifact;
pub mod await_build;
pub mod build_events;
pub mod check_build;
pub mod check_runtime;
pub mod deploy_runtime;
pub mod prepare_code;
pub mod rebuild;
pub mod record_result;
pub mod start_build;
pub mod validate_request;

use chrono::{DateTime, Utc};

/// The clock handlers read; tests pin it.
pub type Clock = fn() -> DateTime<Utc>;

pub use crate::adapters::{aws_config, s3_client};
