//! AgentCore's Python runtimes for code artifacts (`codeConfiguration.runtime`).

use std::fmt;
use std::str::FromStr;

/// The Python runtimes AgentCore Runtime accepts for a code artifact (CreateAgentRuntime's
/// `codeConfiguration.runtime`: `PYTHON_3_10` … `PYTHON_3_14`; `NODE_22` is not a Python
/// runtime and not supported by agentbuild).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PythonRuntime {
    Python310,
    Python311,
    Python312,
    Python313,
    Python314,
}

impl PythonRuntime {
    /// The default when a request names none: the newest AgentCore supports.
    pub const NEWEST: PythonRuntime = PythonRuntime::Python314;
    pub const ALL: [PythonRuntime; 5] = [
        PythonRuntime::Python310,
        PythonRuntime::Python311,
        PythonRuntime::Python312,
        PythonRuntime::Python313,
        PythonRuntime::Python314,
    ];

    /// AgentCore's name: `PYTHON_3_12`.
    pub fn as_str(self) -> &'static str {
        match self {
            PythonRuntime::Python310 => "PYTHON_3_10",
            PythonRuntime::Python311 => "PYTHON_3_11",
            PythonRuntime::Python312 => "PYTHON_3_12",
            PythonRuntime::Python313 => "PYTHON_3_13",
            PythonRuntime::Python314 => "PYTHON_3_14",
        }
    }

    /// The `--python-version` the build installs wheels for: `3.12`.
    pub fn python_version(self) -> &'static str {
        match self {
            PythonRuntime::Python310 => "3.10",
            PythonRuntime::Python311 => "3.11",
            PythonRuntime::Python312 => "3.12",
            PythonRuntime::Python313 => "3.13",
            PythonRuntime::Python314 => "3.14",
        }
    }
}

impl fmt::Display for PythonRuntime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown runtime name; its message lists the accepted ones.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported runtime `{0}`: expected one of PYTHON_3_10, PYTHON_3_11, PYTHON_3_12, PYTHON_3_13, PYTHON_3_14")]
pub struct UnknownRuntime(pub String);

impl FromStr for PythonRuntime {
    type Err = UnknownRuntime;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PythonRuntime::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownRuntime(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_agentcore_names() {
        for r in PythonRuntime::ALL {
            assert_eq!(r.to_string().parse::<PythonRuntime>(), Ok(r));
        }
        assert_eq!(PythonRuntime::Python312.python_version(), "3.12");
        assert_eq!(PythonRuntime::NEWEST.as_str(), "PYTHON_3_14");
    }

    #[test]
    fn rejects_unknown_runtime_listing_the_valid_ones() {
        let err = "NODE_22".parse::<PythonRuntime>().unwrap_err();
        assert!(err.to_string().contains("PYTHON_3_10"), "{err}");
        assert!("python_3_12".parse::<PythonRuntime>().is_err());
    }
}
