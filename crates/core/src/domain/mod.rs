//! Pure rules: no AWS or Lambda types in here.

pub mod announce;
pub mod callback;
pub mod deploy;
pub mod deployment;
pub mod execution;
pub mod fallback;
pub mod fleet;
pub mod form;
pub mod images;
pub mod json;
pub mod observe;
pub mod plan;
pub mod rebuild;
pub mod record;
pub mod request;
pub mod retention;
pub mod status;
pub mod text;
