//! Test support, never compiled into a Lambda or the CLI: the catalog of functions (the contract
//! tests in `tests/` turn on the `testing` feature to read it) and, for this crate's own unit
//! tests only, the in-memory ports.

pub mod catalog;
#[cfg(all(test, feature = "lambda"))]
pub(crate) mod code;
#[cfg(all(test, feature = "lambda"))]
pub(crate) mod fake_runtimes;
#[cfg(all(test, feature = "lambda"))]
pub(crate) mod fake_scans;
#[cfg(all(test, feature = "lambda"))]
pub(crate) mod fakes;
