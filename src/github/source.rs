//! GitHub as a [`CommitSource`]: the commits of a release range from the API, for
//! `core::tag::release_for_tag`, exactly as local git supplies them for a clone.

use futures_util::future::BoxFuture;

use super::client::GithubClient;
use crate::core::import::{History, HistoryTag};
use crate::core::tag::CommitSource;
use crate::git::RangeOptions;
use crate::model::commit::CommitData;
use crate::pipeline::HandlerError;

/// The commits of one GitHub repository.
pub struct GithubCommits {
    client: GithubClient,
    /// `owner/name` on GitHub.
    github: String,
    /// The repository's name in shiplog (what commits are filed under).
    name: String,
}

impl GithubCommits {
    pub fn new(client: GithubClient, github: &str, name: &str) -> GithubCommits {
        GithubCommits {
            client,
            github: github.to_owned(),
            name: name.to_owned(),
        }
    }
}

impl CommitSource for GithubCommits {
    fn range(
        &self,
        from: Option<&str>,
        to: &str,
        opts: &RangeOptions,
    ) -> BoxFuture<'_, Result<Vec<CommitData>, HandlerError>> {
        let from = from.map(str::to_owned);
        let to = to.to_owned();
        let paths = opts.paths.clone();
        let depth = opts.initial_depth;
        Box::pin(async move {
            let mut commits = self
                .client
                .range(&self.github, from.as_deref(), &to, &paths, depth)
                .await?;
            for c in &mut commits {
                c.repository = Some(self.name.clone());
            }
            Ok(commits)
        })
    }
}

impl History for GithubCommits {
    fn tags(&self) -> BoxFuture<'_, Result<Vec<HistoryTag>, HandlerError>> {
        Box::pin(async move {
            Ok(self
                .client
                .tags(&self.github)
                .await?
                .into_iter()
                .map(|t| HistoryTag {
                    name: t.name,
                    commit: t.commit.sha,
                    date: None,
                })
                .collect())
        })
    }

    fn tag_date<'a>(&'a self, tag: &'a HistoryTag) -> BoxFuture<'a, Result<String, HandlerError>> {
        Box::pin(async move {
            Ok(self
                .client
                .tag_date(&self.github, &tag.name, &tag.commit)
                .await?)
        })
    }
}
