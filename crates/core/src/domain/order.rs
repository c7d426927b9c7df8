//! The order of an agent's builds, which `latest.json` and the runtime both follow: the newer
//! submission wins (a rebuild counts as the submission it rebuilds); among builds of one
//! submission, the one that finished last. Pure.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Where a build stands in the agent's order of builds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rank {
    pub build_id: String,
    /// When the source was submitted (a rebuild: the submission it rebuilds).
    pub submitted_at: DateTime<Utc>,
    /// When the build finished (CodeBuild's end, as the record keeps it).
    pub finished_at: Option<DateTime<Utc>>,
}

/// The one order of builds: whether `candidate` is the same build as `current` or a newer one
/// (`latest.json` and the runtime both follow it).
pub fn newer_or_same(current: &Rank, candidate: &Rank) -> bool {
    if current.build_id == candidate.build_id {
        return true;
    }
    match candidate.submitted_at.cmp(&current.submitted_at) {
        std::cmp::Ordering::Greater => true,
        std::cmp::Ordering::Less => false,
        std::cmp::Ordering::Equal => candidate.finished_at >= current.finished_at,
    }
}
