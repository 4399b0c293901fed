//! Tags to releases: the one place that turns "a tag appeared" into a release with commits.
//!
//! Every path a tag can arrive by ends here: the git hooks (through the spool), the ref
//! watcher, reconcile, and GitHub (webhooks and its tag list). [`release_for_tag`]
//!
//! 1. picks the repository's release policy for the tag: the first policy whose `on` is the
//!    trigger and whose `tag_pattern` matches, and renders the version from its template;
//! 2. finds the previous release *of the same policy* in the same repository (so a monorepo's
//!    `ui-*` tags follow `ui-*` tags, not `v*` ones), ordered as Sentry orders releases:
//!    by semantic version when both versions parse as one, else by date (released, else
//!    created);
//! 3. collects the commits `previous tag..this tag` (only those touching the policy's `paths`),
//!    or the newest `initial_depth` commits for a first release, from a [`CommitSource`]
//!    (local git, or GitHub's compare API) -- outside any transaction;
//! 4. in one store transaction creates (or reuses) the release with the policy's projects,
//!    replaces its commits (Sentry's set_commits), sets its head commit to the tag's commit,
//!    and records the tag as the release's source.
//!
//! It is idempotent: a tag already applied with the same commit changes nothing, however
//! many paths report it. A tag moved to another commit re-sets the release's commits. A
//! release that already had commits from somewhere else (sentry-cli set-commits) keeps them;
//! the tag is only recorded as its source.

use std::cmp::Ordering;

use futures_util::future::BoxFuture;

use crate::config::{Config, ReleasePolicy, ReleaseTrigger, RepositoryConfig};
use crate::core::org::ProjectRef;
use crate::core::release::{self, CreateRelease};
use crate::core::{self, CoreError};
use crate::git::RangeOptions;
use crate::model::commit::CommitData;
use crate::model::version;
use crate::pipeline::HandlerError;
use crate::store::Store;
use crate::store::orgs::Org;
use crate::store::refs::{self, PolicyRelease, ReleaseSource};
use crate::store::releases::{self, Release};
use crate::store::repos::Repository;

/// A tag someone saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagSeen {
    /// The repository's configured name (`owner/repo`).
    pub repository: String,
    /// The tag's short name (`v1.2.0`, not `refs/tags/v1.2.0`).
    pub tag: String,
    /// The commit the tag points at, peeled (for an annotated tag: its commit, not the tag
    /// object).
    pub target: String,
    /// How it was seen: created where shiplog looks ([`ReleaseTrigger::Tag`]) or pushed or
    /// received ([`ReleaseTrigger::Push`]).
    pub trigger: ReleaseTrigger,
    /// When the tag was made, for a tag imported from history (`core::import`): its release
    /// is created and finalized at that date. `None` for a tag seen as it is made: now.
    pub date: Option<String>,
}

/// Where the commits of a range come from. Local git implements it
/// ([`crate::pipeline::git::LocalCommits`]); so does GitHub's API.
pub trait CommitSource: Send + Sync {
    /// The commits `from..to` (newest first, with patch sets), as
    /// [`crate::git::collect_range`] defines them; `from = None` means the newest
    /// `opts.initial_depth` commits reachable from `to`.
    fn range(
        &self,
        from: Option<&str>,
        to: &str,
        opts: &RangeOptions,
    ) -> BoxFuture<'_, Result<Vec<CommitData>, HandlerError>>;
}

/// A stable name for a policy, so its releases can be found again. Built from what defines
/// the policy (trigger, pattern and template), not its position in the list, so reordering
/// the config does not orphan releases.
pub fn policy_key(policy: &ReleasePolicy) -> String {
    format!("{}:{} -> {}", policy.on, policy.tag_pattern, policy.version)
}

/// The first policy of `repository` with trigger `trigger` whose pattern matches `tag`, and
/// the version it gives.
pub fn matching_policy<'a>(
    repository: &'a RepositoryConfig,
    tag: &str,
    trigger: ReleaseTrigger,
) -> Option<(&'a ReleasePolicy, String)> {
    repository
        .releases
        .iter()
        .filter(|p| p.on == trigger && trigger != ReleaseTrigger::None)
        .find_map(|p| p.version_for_tag(tag).map(|v| (p, v)))
}

/// Sentry's order of two releases: by semantic version when both parse as one, else by date.
pub fn release_order(a_version: &str, a_date: &str, b_version: &str, b_date: &str) -> Ordering {
    version::compare(a_version, b_version).unwrap_or_else(|| a_date.cmp(b_date))
}

/// The release of the same policy just before `version` (dated `date`), if any.
pub fn previous_release<'a>(
    candidates: &'a [PolicyRelease],
    version: &str,
    date: &str,
) -> Option<&'a PolicyRelease> {
    candidates
        .iter()
        .filter(|c| c.version != version)
        .filter(|c| release_order(&c.version, &c.date, version, date) == Ordering::Less)
        .reduce(|best, c| {
            if release_order(&c.version, &c.date, &best.version, &best.date) == Ordering::Greater {
                c
            } else {
                best
            }
        })
}

/// What the store says must happen for a tag.
enum Plan {
    /// The tag was applied already, with this commit.
    Done(Box<Release>),
    /// Collect `from..target` and write.
    Collect { from: Option<String> },
}

fn missing_repository(name: &str) -> CoreError {
    CoreError::NotFound(format!(
        "repository {name} is not in the store yet; it is added from the config at daemon start"
    ))
}

fn load(
    conn: &rusqlite::Connection,
    org_slug: &str,
    name: &str,
) -> Result<(Org, Repository), CoreError> {
    let org = core::org::org(conn, org_slug)?;
    let repository =
        core::repo::by_name(conn, org.id, name)?.ok_or_else(|| missing_repository(name))?;
    Ok((org, repository))
}

/// Makes (or finds) the release for a tag; `None` when no policy of the repository wants the
/// tag. See the module documentation for the steps.
pub async fn release_for_tag(
    store: &Store,
    config: &Config,
    seen: &TagSeen,
    source: &dyn CommitSource,
) -> Result<Option<Release>, HandlerError> {
    let Some(repo_config) = config.repository(&seen.repository) else {
        return Ok(None);
    };
    let Some((policy, version)) = matching_policy(repo_config, &seen.tag, seen.trigger) else {
        return Ok(None);
    };
    let key = policy_key(policy);
    let org_slug = config.organization.clone();
    let projects: Vec<ProjectRef> = repo_config
        .policy_projects(policy)
        .iter()
        .cloned()
        .map(ProjectRef::Slug)
        .collect();

    let plan = {
        let (org_slug, name, key, version, target, seen_date) = (
            org_slug.clone(),
            seen.repository.clone(),
            key.clone(),
            version.clone(),
            seen.target.clone(),
            seen.date.clone(),
        );
        store
            .read(move |conn| -> Result<Plan, CoreError> {
                let (org, repository) = load(conn, &org_slug, &name)?;
                let existing = releases::by_version(conn, org.id, &version)?;
                let mut date = seen_date.unwrap_or_else(core::now);
                if let Some(release) = &existing {
                    if let Some(src) = refs::release_source(conn, release.id, repository.id, &key)?
                        && src.target_commit == target
                    {
                        return Ok(Plan::Done(Box::new(release.clone())));
                    }
                    date = release
                        .date_released
                        .clone()
                        .unwrap_or_else(|| release.date_added.clone());
                }
                let candidates = refs::policy_releases(conn, repository.id, &key)?;
                let from = previous_release(&candidates, &version, &date)
                    .map(|p| p.source.target_commit.clone());
                Ok(Plan::Collect { from })
            })
            .await?
    };
    let from = match plan {
        Plan::Done(release) => return Ok(Some(*release)),
        Plan::Collect { from } => from,
    };

    let opts = RangeOptions {
        paths: policy.paths.clone(),
        initial_depth: policy.initial_depth,
    };
    let mut commits = source.range(from.as_deref(), &seen.target, &opts).await?;
    // set_commits files each commit under the repository it names.
    for c in &mut commits {
        c.repository = Some(seen.repository.clone());
    }
    tracing::debug!(
        repository = %seen.repository,
        tag = %seen.tag,
        %version,
        from = from.as_deref().unwrap_or("-"),
        commits = commits.len(),
        "collected the release's commits"
    );

    let seen = seen.clone();
    let release = store
        .write(move |tx| -> Result<Release, CoreError> {
            let now = core::now();
            let (org, repository) = load(tx, &org_slug, &seen.repository)?;
            let existing = releases::by_version(tx, org.id, &version)?;
            let had_commits = existing.as_ref().is_some_and(|r| r.commit_count > 0);
            let source_row = match &existing {
                Some(r) => refs::release_source(tx, r.id, repository.id, &key)?,
                None => None,
            };
            if let (Some(r), Some(src)) = (&existing, &source_row)
                && src.target_commit == seen.target
            {
                return Ok(r.clone());
            }
            // An imported tag's release is created and finalized when the tag was made, so
            // the index and "previous release" order are those of its history.
            let upserted = release::upsert(
                tx,
                &org,
                &CreateRelease {
                    version: version.clone(),
                    projects: projects.clone(),
                    ref_: Some(seen.tag.clone()),
                    date_released: seen.date.clone(),
                    ..Default::default()
                },
                seen.date.as_deref().unwrap_or(&now),
            )?;
            let release = upserted.release;
            // Commits set through the API before the tag win over the tag's range; a moved
            // tag (a source row with another commit) re-sets the range.
            if source_row.is_some() || !had_commits {
                core::commit::set_commits(tx, &org, &release, &commits)?;
                core::commit::set_head_commit(tx, &release, &repository, &seen.target)?;
            } else {
                tracing::info!(
                    release = %release.version,
                    tag = %seen.tag,
                    "the release already has commits; keeping them and recording the tag as its source"
                );
            }
            refs::put_release_source(
                tx,
                &ReleaseSource {
                    release_id: release.id,
                    repository_id: repository.id,
                    policy_key: key.clone(),
                    tag: seen.tag.clone(),
                    target_commit: seen.target.clone(),
                    trigger: seen.trigger.as_str().to_owned(),
                },
                &now,
            )?;
            releases::by_id(tx, release.id)?.ok_or_else(|| release::not_found(&version))
        })
        .await?;
    Ok(Some(release))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pr(version: &str, date: &str) -> PolicyRelease {
        PolicyRelease {
            source: ReleaseSource {
                release_id: 0,
                repository_id: 0,
                policy_key: String::new(),
                tag: version.into(),
                target_commit: version.into(),
                trigger: "tag".into(),
            },
            version: version.into(),
            date: date.into(),
        }
    }

    #[test]
    fn previous_is_the_highest_lower_semver() {
        let c = vec![
            pr("web@1.0.0", "2026-01-01"),
            pr("web@1.2.0", "2026-01-03"),
            pr("web@1.1.0", "2026-01-02"),
        ];
        assert_eq!(
            previous_release(&c, "web@1.3.0", "2026-01-04")
                .unwrap()
                .version,
            "web@1.2.0"
        );
        // A backport tagged last still follows its own line.
        assert_eq!(
            previous_release(&c, "web@1.1.1", "2026-01-05")
                .unwrap()
                .version,
            "web@1.1.0"
        );
        assert!(previous_release(&c, "web@0.9.0", "2026-01-05").is_none());
    }

    #[test]
    fn previous_falls_back_to_dates() {
        let c = vec![pr("nightly-a", "2026-01-01"), pr("nightly-b", "2026-01-02")];
        assert_eq!(
            previous_release(&c, "nightly-c", "2026-01-03")
                .unwrap()
                .version,
            "nightly-b"
        );
    }

    #[test]
    fn policies_match_by_trigger_and_pattern() {
        let repo = RepositoryConfig {
            name: "acme/web".into(),
            releases: vec![
                ReleasePolicy {
                    tag_pattern: "^v(?P<version>.+)$".into(),
                    version: "web@{version}".into(),
                    ..Default::default()
                },
                ReleasePolicy {
                    on: ReleaseTrigger::Push,
                    tag_pattern: "^ui-(?P<version>.+)$".into(),
                    version: "ui@{version}".into(),
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        assert_eq!(
            matching_policy(&repo, "v1.0", ReleaseTrigger::Tag).map(|p| p.1),
            Some("web@1.0".into())
        );
        assert!(matching_policy(&repo, "ui-1.0", ReleaseTrigger::Tag).is_none());
        assert_eq!(
            matching_policy(&repo, "ui-1.0", ReleaseTrigger::Push).map(|p| p.1),
            Some("ui@1.0".into())
        );
    }
}
