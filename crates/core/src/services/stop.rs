//! Stopping a CodeBuild build on the way to a final record (a cancel, a record that is no
//! success): one rule for what a failed StopBuild means.

use crate::ports::BuildService;
use crate::Error;

/// StopBuild; `true` when stopped (or already ended). A CodeBuild that does not know the build
/// or refuses is logged: the record matters more than the stop (nothing runs that we could
/// stop). A transient error is returned: the caller (a retried state, a cancel asked again)
/// tries again.
pub async fn stop_build<B: BuildService>(
    builds: &B,
    build_id: &str,
    id: &str,
    why: &str,
) -> Result<bool, Error> {
    match builds.stop(id).await {
        Ok(()) => {
            tracing::info!(build_id, codebuild_id = id, why, "build stopped");
            Ok(true)
        }
        Err(e @ Error::TransientAws(_)) => Err(e),
        Err(e) => {
            tracing::warn!(build_id, codebuild_id = id, error = %e, "build not stopped");
            Ok(false)
        }
    }
}
