//! Pure rules: no AWS or Lambda types in here.

pub mod announce;
pub mod callback;
pub mod deploy_request;
pub mod deployment;
pub mod ending;
pub mod execution;
pub mod fallback;
pub mod fleet;
pub mod fleet_guard;
pub mod form;
pub mod images;
pub mod json;
pub mod observe;
pub mod order;
pub mod plan;
pub mod provenance;
pub mod rebuild;
pub mod record;
pub mod request;
pub mod retention;
pub mod scan_gate;
pub mod secrets;
pub mod start;
pub mod status;
pub mod supersede;
pub mod text;
