//! `<project>/<agent>`: how commands name an agent.

use std::fmt;
use std::str::FromStr;

/// `<project>/<agent>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentRef {
    pub project: String,
    pub agent: String,
}

impl FromStr for AgentRef {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once('/') {
            Some((project, agent))
                if !project.is_empty() && !agent.is_empty() && !agent.contains('/') =>
            {
                Ok(Self {
                    project: project.to_owned(),
                    agent: agent.to_owned(),
                })
            }
            _ => Err(format!("expected <project>/<agent>, got `{s}`")),
        }
    }
}

impl fmt::Display for AgentRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.project, self.agent)
    }
}
