//! The GitHub reconciler: GitHub's tag list compared with what shiplog has applied.
//!
//! Webhooks are the fast path, not a reliable one: GitHub sends no `push`/`create` event when
//! more than three tags are pushed at once, never retries a failed delivery, and a daemon that
//! was down misses everything sent meanwhile. So the `reconcile` job (every five minutes by
//! default, and once at start) lists each `github:` repository's tags through the API and
//! compares them with the repository's ref snapshot (the same table local repositories use):
//!
//! - the first listing is the baseline: the tags that exist then are history and make no
//!   releases (as for a local repository), so adding an old repository does not flood the
//!   store with releases -- unless the repository says `import_tags: true`, when the import
//!   of that history (`core::import`) is queued first;
//! - afterwards, a tag that is not in the snapshot (or points elsewhere) is submitted as a
//!   [`TagFound`] event, oldest version first, and the handler makes its release; the snapshot
//!   row is written by the handler once the tag is applied, so a tag whose commits could not be
//!   fetched (its release "commits pending") is found again on the next run;
//! - a tag gone from GitHub leaves the snapshot (its release stays);
//! - a tag whose release is still marked "commits pending" is submitted again, so a release
//!   whose webhook ran out of retries is completed by a later run.

use std::sync::Arc;

use futures_util::future::BoxFuture;

use super::client::GithubClient;
use super::handler::{TagFound, tag_key_prefix, trigger_for};
use crate::config::Config;
use crate::core::tag::matching_policy;
use crate::core::{self, CoreError};
use crate::model::version;
use crate::pipeline::import::ImportRequested;
use crate::pipeline::{Event, MAX_ATTEMPTS, Pipeline, Submitted};
use crate::schedule::Reconciler;
use crate::store::github::{self as gstore, InboxState};
use crate::store::inbox;
use crate::store::refs::{self, SnapshotRef};
use crate::store::{releases, repos};

/// The reconciler for every repository reached through GitHub.
pub struct GithubReconciler {
    pipeline: Pipeline,
    config: Arc<Config>,
    client: GithubClient,
}

/// What one repository's comparison found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RepoSummary {
    pub baseline: Option<usize>,
    pub submitted: usize,
    pub deleted: usize,
}

impl GithubReconciler {
    pub fn new(pipeline: Pipeline, config: Arc<Config>, client: GithubClient) -> Self {
        GithubReconciler {
            pipeline,
            config,
            client,
        }
    }

    /// `(shiplog name, owner/name)` of every active repository reached through GitHub.
    async fn targets(&self) -> Result<Vec<(String, String)>, CoreError> {
        let config = self.config.clone();
        self.pipeline
            .store()
            .read(move |conn| -> Result<Vec<(String, String)>, CoreError> {
                let org = core::org::org(conn, &config.organization)?;
                Ok(core::repo::list(conn, org.id)?
                    .into_iter()
                    .filter(|r| r.status == repos::STATUS_ACTIVE && r.path.is_none())
                    .filter_map(|r| r.external.clone().map(|g| (r.name, g)))
                    .collect())
            })
            .await
    }

    /// Compares one repository and submits what is missing.
    pub async fn reconcile_repo(&self, name: &str, github: &str) -> Result<RepoSummary, String> {
        let tags = self
            .client
            .tags(github)
            .await
            .map_err(|e| format!("{name}: {e}"))?;
        let listed: Vec<(String, SnapshotRef)> = tags
            .iter()
            .map(|t| {
                (
                    format!("refs/tags/{}", t.name),
                    SnapshotRef {
                        target: t.commit.sha.clone(),
                        peeled: Some(t.commit.sha.clone()),
                    },
                )
            })
            .collect();
        let store = self.pipeline.store().clone();
        if self.config.repository(name).is_some_and(|r| r.import_tags) {
            self.queue_first_import(name)
                .await
                .map_err(|e| format!("{name}: {e}"))?;
        }
        let config = self.config.clone();
        let repo_name = name.to_owned();
        // One write: the baseline (first listing) or the snapshot's view of which tags are new
        // and gone, plus the tags whose release still waits for its commits.
        let plan = store
            .write(move |tx| -> Result<Plan, CoreError> {
                let now = core::now();
                let org = core::org::org(tx, &config.organization)?;
                let repository = core::repo::by_name(tx, org.id, &repo_name)?.ok_or_else(|| {
                    CoreError::NotFound(format!("repository {repo_name} is not in the store"))
                })?;
                let mut plan = Plan::default();
                if refs::baseline_taken(tx, repository.id)?.is_none() {
                    refs::take_baseline(tx, repository.id, &listed, &now)?;
                    plan.baseline = Some(listed.len());
                } else {
                    let snapshot = refs::snapshot(tx, repository.id)?;
                    for (ref_name, value) in &listed {
                        match snapshot.get(ref_name) {
                            Some(s) if s.peeled == value.peeled => {}
                            _ => plan.new.push((ref_name.clone(), value.target.clone())),
                        }
                    }
                    for ref_name in snapshot.keys().filter(|r| r.starts_with("refs/tags/")) {
                        if !listed.iter().any(|(l, _)| l == ref_name) {
                            refs::delete_ref(tx, repository.id, ref_name)?;
                            let tag = ref_name.trim_start_matches("refs/tags/");
                            inbox::forget_processed(tx, &tag_key_prefix(&repo_name, tag))?;
                            plan.deleted += 1;
                        }
                    }
                    refs::mark_reconciled(tx, repository.id, &now)?;
                }
                // A release left "commits pending" (its webhook's retries ran out, or it came
                // before the baseline) is completed through its tag, whatever the snapshot says.
                let any_pending = gstore::any_commits_pending(tx, org.id)?;
                if let Some(repo_config) = config.repository(&repo_name).filter(|_| any_pending) {
                    for (ref_name, value) in &listed {
                        let tag = ref_name.trim_start_matches("refs/tags/");
                        let trigger = trigger_for(&config, &repo_name, tag);
                        let Some((_, version)) = matching_policy(repo_config, tag, trigger) else {
                            continue;
                        };
                        let pending = match releases::by_version(tx, org.id, &version)? {
                            Some(r) => gstore::commits_pending(tx, r.id)?,
                            None => false,
                        };
                        if pending && !plan.new.iter().any(|(r, _)| r == ref_name) {
                            plan.new.push((ref_name.clone(), value.target.clone()));
                        }
                    }
                }
                Ok(plan)
            })
            .await
            .map_err(|e| format!("{name}: {e}"))?;
        let Plan {
            baseline,
            mut new,
            deleted,
        } = plan;
        // Oldest version first, so each release's range starts at the one before it.
        new.sort_by(|(a, _), (b, _)| tag_order(a, b));
        let mut submitted = 0;
        for (ref_name, commit) in new {
            let event = TagFound {
                repository: name.to_owned(),
                github: github.to_owned(),
                tag: ref_name.trim_start_matches("refs/tags/").to_owned(),
                commit,
            };
            if self
                .submit(&event)
                .await
                .map_err(|e| format!("{name}: {e}"))?
            {
                submitted += 1;
            }
        }
        Ok(RepoSummary {
            baseline,
            submitted,
            deleted,
        })
    }

    /// Queues the import of a repository configured with `import_tags: true` whose baseline is
    /// not taken yet. Queued before the baseline is written, so a crash in between queues it
    /// again (the same key) rather than losing it.
    async fn queue_first_import(&self, name: &str) -> Result<(), CoreError> {
        let (org_slug, repo_name) = (self.config.organization.clone(), name.to_owned());
        let taken = self
            .pipeline
            .store()
            .read(move |conn| -> Result<bool, CoreError> {
                let org = core::org::org(conn, &org_slug)?;
                Ok(match core::repo::by_name(conn, org.id, &repo_name)? {
                    Some(r) => refs::baseline_taken(conn, r.id)?.is_some(),
                    None => false,
                })
            })
            .await?;
        if !taken {
            self.pipeline
                .submit("reconcile", &ImportRequested::first_sight(name))
                .await?;
        }
        Ok(())
    }

    /// Submits a tag unless the same one is still waiting in the inbox; one the pipeline gave up
    /// on (or applied without recording it) is submitted afresh, at most once an hour.
    async fn submit(&self, event: &TagFound) -> Result<bool, String> {
        let key = format!("{}:{}", TagFound::KIND, event.idempotency_key());
        let state = self
            .pipeline
            .store()
            .read(move |conn| gstore::inbox_state(conn, &key, MAX_ATTEMPTS))
            .await
            .map_err(|e| e.to_string())?;
        let submitted = match state {
            InboxState::Waiting => return Ok(false),
            InboxState::Absent => self.pipeline.submit("reconcile", event).await,
            InboxState::GaveUp | InboxState::Processed => {
                // At most once an hour per tag, so a tag that keeps failing (a project missing
                // from the config) does not add an inbox row every run.
                let hour: String = core::now().chars().take(13).collect();
                let again = Again(event.clone(), hour);
                self.pipeline.submit("reconcile", &again).await
            }
        }
        .map_err(|e| e.to_string())?;
        Ok(matches!(submitted, Submitted::New(_)))
    }
}

/// What one comparison decided.
#[derive(Default)]
struct Plan {
    /// Set when this run took the baseline (with its tag count).
    baseline: Option<usize>,
    /// `(ref name, commit)` to submit.
    new: Vec<(String, String)>,
    deleted: usize,
}

/// A [`TagFound`] submitted again under a fresh key (same payload, so the same handler).
struct Again(TagFound, String);

impl serde::Serialize for Again {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> serde::Deserialize<'de> for Again {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Again(TagFound::deserialize(d)?, String::new()))
    }
}

impl Event for Again {
    const KIND: &'static str = TagFound::KIND;
    fn idempotency_key(&self) -> String {
        format!("{}:again:{}", self.0.idempotency_key(), self.1)
    }
}

/// Tags in version order where both parse as versions (`v1.10.0` after `v1.9.0`), else by
/// name.
fn tag_order(a: &str, b: &str) -> std::cmp::Ordering {
    let bare = |r: &str| {
        let t = r.trim_start_matches("refs/tags/");
        t.strip_prefix('v').unwrap_or(t).to_owned()
    };
    version::compare(&bare(a), &bare(b)).unwrap_or_else(|| a.cmp(b))
}

impl Reconciler for GithubReconciler {
    fn name(&self) -> &str {
        "github"
    }

    fn reconcile(&self) -> BoxFuture<'_, Result<String, String>> {
        Box::pin(async move {
            let targets = self.targets().await.map_err(|e| e.to_string())?;
            if targets.is_empty() {
                return Ok("no GitHub repositories".to_owned());
            }
            let mut lines = Vec::new();
            let mut errors = Vec::new();
            for (name, github) in targets {
                match self.reconcile_repo(&name, &github).await {
                    Ok(RepoSummary {
                        baseline: Some(n),
                        submitted,
                        ..
                    }) => lines.push(format!(
                        "{name}: baseline of {n} tags{}",
                        if submitted > 0 {
                            format!(", {submitted} pending release(s) retried")
                        } else {
                            String::new()
                        }
                    )),
                    Ok(s) => lines.push(format!(
                        "{name}: {} new tag{}, {} deleted",
                        s.submitted,
                        if s.submitted == 1 { "" } else { "s" },
                        s.deleted
                    )),
                    Err(e) => errors.push(e),
                }
            }
            if errors.is_empty() {
                Ok(lines.join("; "))
            } else {
                Err(format!(
                    "{}{}",
                    errors.join("; "),
                    if lines.is_empty() {
                        String::new()
                    } else {
                        format!(" (ok: {})", lines.join("; "))
                    }
                ))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_sort_by_version_then_name() {
        let mut tags = vec![
            "refs/tags/v1.10.0",
            "refs/tags/v1.9.0",
            "refs/tags/v1.9.1",
            "refs/tags/v2.0.0-rc.1",
            "refs/tags/v2.0.0",
        ];
        tags.sort_by(|a, b| tag_order(a, b));
        assert_eq!(
            tags,
            vec![
                "refs/tags/v1.9.0",
                "refs/tags/v1.9.1",
                "refs/tags/v1.10.0",
                "refs/tags/v2.0.0-rc.1",
                "refs/tags/v2.0.0",
            ]
        );
    }
}
