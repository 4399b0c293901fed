//! The GitHub client the daemon installed, for code paths that have no handle on it: the
//! set-commits API (`core::commit::remote_range`) expanding a ref of a repository that lives
//! only on GitHub.
//!
//! One client per process, installed once at daemon start ([`install`]); without one (one-shot
//! CLI commands, unit tests) ranges are simply not fetched and the release keeps its head
//! commit, as before the GitHub integration existed.

use std::sync::OnceLock;

use super::client::{GithubClient, GithubError};
use crate::core::CoreError;
use crate::model::commit::CommitData;
use crate::store::repos::Repository;

static CLIENT: OnceLock<GithubClient> = OnceLock::new();

/// Installs the process's GitHub client; later calls keep the first.
pub fn install(client: GithubClient) {
    let _ = CLIENT.set(client);
}

/// The commits `from..to` (or the newest `initial_depth` up to `to`) of a repository reached
/// through GitHub, newest first; `None` when they cannot be fetched now (no client, or GitHub
/// rate-limited or down: logged, and the release keeps its head commit). An unknown commit is
/// the client's error.
pub async fn range(
    repository: &Repository,
    from: Option<&str>,
    to: &str,
    initial_depth: usize,
) -> Result<Option<Vec<CommitData>>, CoreError> {
    let (Some(client), Some(github)) = (CLIENT.get(), repository.external.as_deref()) else {
        return Ok(None);
    };
    match client.range(github, from, to, &[], initial_depth).await {
        Ok(mut commits) => {
            for c in &mut commits {
                c.repository = Some(repository.name.clone());
            }
            Ok(Some(commits))
        }
        Err(e) if e.is_transient() => {
            tracing::warn!(repository = %repository.name, error = %e, "commits not fetched from GitHub; the release keeps only its head commit");
            Ok(None)
        }
        Err(e @ (GithubError::NotFound(_) | GithubError::Refused { .. })) => {
            Err(CoreError::invalid(
                "refs",
                format!(
                    "Unknown commit \"{to}\" in repository {} on GitHub: {e}",
                    repository.name
                ),
            ))
        }
        Err(e) => Err(CoreError::invalid("refs", e.to_string())),
    }
}
