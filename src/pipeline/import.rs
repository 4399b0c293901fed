//! The history import as a pipeline event: `repo.import`, submitted when shiplog first sees a
//! repository configured with `import_tags: true` (by the local ref sync and by the GitHub
//! reconciler, before they take the baseline).
//!
//! Going through the durable inbox makes the import survive a restart: an import cut short is
//! retried, and since `core::import` makes only the missing releases, a retry finishes the
//! work without repeating any of it. The worker applies events one at a time, so tags made
//! after the baseline are applied after the import, each finding its predecessor in place.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};

use super::git::LocalCommits;
use super::{Event, Handler, HandlerError, Pipeline, decode};
use crate::config::Config;
use crate::core::CoreError;
use crate::core::import::{self, History, Step};
use crate::github::GithubClient;
use crate::github::source::GithubCommits;
use crate::store::{Store, inbox};

/// Import the tags of a repository (`repo.import`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportRequested {
    /// The repository's configured name.
    pub repository: String,
    /// Why (`first-sight`); part of the key, so a repository's first-sight import is queued
    /// once however many times it is noticed before the baseline is written.
    pub reason: String,
}

impl Event for ImportRequested {
    const KIND: &'static str = "repo.import";
    fn idempotency_key(&self) -> String {
        format!("{}:{}", self.repository, self.reason)
    }
}

impl ImportRequested {
    /// The import of a repository seen for the first time.
    pub fn first_sight(repository: &str) -> ImportRequested {
        ImportRequested {
            repository: repository.to_owned(),
            reason: "first-sight".to_owned(),
        }
    }
}

/// Where a configured repository's history comes from: its local path, else GitHub.
pub fn history_for(
    config: &Config,
    name: &str,
    github: impl FnOnce() -> Result<GithubClient, crate::github::GithubError>,
) -> Result<Box<dyn History>, CoreError> {
    let repo = config.repository(name).ok_or_else(|| {
        CoreError::NotFound(format!(
            "repository {name} is not in the config file; the import follows the release policies configured there"
        ))
    })?;
    if let Some(path) = &repo.path {
        return Ok(Box::new(LocalCommits { path: path.clone() }));
    }
    let Some(remote) = &repo.github else {
        return Err(CoreError::invalid(
            "repository",
            format!("repository {name} has neither a path nor a github name"),
        ));
    };
    let client = github().map_err(|e| CoreError::invalid("github", e.to_string()))?;
    Ok(Box::new(GithubCommits::new(client, remote, name)))
}

/// Applies `repo.import` events.
pub struct ImportHandler {
    pub store: Store,
    pub config: Arc<Config>,
    pub github: GithubClient,
}

impl Handler for ImportHandler {
    fn handle<'a>(&'a self, entry: &'a inbox::Entry) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            let ev: ImportRequested = decode(entry)?;
            let client = self.github.clone();
            let history = history_for(&self.config, &ev.repository, move || Ok(client))?;
            let report = import::import(
                &self.store,
                &self.config,
                &ev.repository,
                history.as_ref(),
                false,
                &mut |step| {
                    if let Step::Planned { total } = step {
                        tracing::info!(repository = %ev.repository, releases = total, "importing the repository's tags");
                    }
                },
            )
            .await?;
            let commits: usize = report.releases.iter().map(|(_, n)| n).sum();
            tracing::info!(
                repository = %ev.repository,
                releases = report.releases.len(),
                commits,
                already_there = report.present,
                unmatched_tags = report.unmatched,
                "tags imported as releases"
            );
            Ok(())
        })
    }
}

/// Registers the import handler on the pipeline.
pub fn register(pipeline: &Pipeline, config: Arc<Config>, github: GithubClient) {
    pipeline.register(
        ImportRequested::KIND,
        Arc::new(ImportHandler {
            store: pipeline.store().clone(),
            config,
            github,
        }),
    );
}
