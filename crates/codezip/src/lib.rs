//! agentbuild's code artifacts (issue 22), as a library with no AWS and no async:
//!
//! - [`read_dependencies`]: a code context's dependencies (`requirements.txt`, or
//!   `pyproject.toml` + `uv.lock`) checked line by line and made canonical, with the
//!   content-addressed key of the dependency layer the code build installs from them;
//! - [`assemble`]: the AgentCore code zip from a cached dependency layer and the context, by
//!   copying compressed entries as they are, streaming, refusing what must not reach the runtime.
//!
//! Nothing here executes, imports or unpacks anything from a context: dependency files are read
//! as text; zips are read through their central directory and copied byte for byte.

mod assemble;
mod dependencies;
mod error;
mod layer;
mod lock;
mod marker;
mod paths;
mod requirements;
mod runtime;
#[cfg(test)]
mod testzip;

pub use assemble::{assemble, Assembled, LAYER_PREFIX, MAX_UNZIPPED, MAX_ZIPPED};
pub use dependencies::{
    dependencies_key, read_dependencies, Dependencies, LAYER_FORMAT, MAX_DEPENDENCY_FILE, PLATFORM,
    REQUIREMENTS_TXT,
};
pub use error::ContextError;
pub use layer::{zip_directory, SHEBANG};
pub use lock::LOCK_REGISTRY;
pub use runtime::{PythonRuntime, UnknownRuntime};

/// Re-exported so callers open archives with the same `zip` as this crate.
pub use zip;
