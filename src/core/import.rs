//! History import: releases for the tags a repository already has.
//!
//! By default the tags a repository has when shiplog first sees it are its baseline and make
//! no release. With `import_tags: true` (at first sight, through the pipeline) or with
//! `shiplog repos import NAME` (any time later) they become releases, exactly as if each had
//! been tagged while shiplog was watching:
//!
//! - every tag matching one of the repository's release policies (the first policy, in config
//!   order, whose `on` is not `none` and whose pattern matches) becomes that policy's release;
//!   tags matching no policy are counted and left;
//! - within a policy the tags are taken in release order (semantic version when both parse,
//!   else date), so the oldest gets `initial_depth` commits and each later one the commits since
//!   its predecessor in that policy (path-filtered where the policy has `paths`): the ranges
//!   [`core::tag::release_for_tag`](super::tag::release_for_tag) gives a live tag, because the
//!   import goes through it;
//! - across policies the releases are made in the order their tags were made, so a `Fixes X`
//!   commit resolves X in the release that first contained it, as it would have live;
//! - each release is created and finalized at its tag's date (the tagger date of an annotated
//!   tag, else the commit date), so the index and "previous release" order are its history's;
//! - only the releases that are missing are made: a version whose policy already recorded a
//!   tag for it is left alone, so a restart, a second import or the watcher seeing the same
//!   tags makes nothing twice.
//!
//! A dry run plans the same releases, counts the commits each would get, and writes nothing.
//! Where the tags and commits come from is a [`History`]: a local clone (git2) or GitHub's API.

use futures_util::future::BoxFuture;

use super::tag::{self, CommitSource, TagSeen};
use super::{CoreError, org};
use crate::config::{Config, ReleasePolicy, ReleaseTrigger, RepositoryConfig};
use crate::git::RangeOptions;
use crate::model::time;
use crate::pipeline::HandlerError;
use crate::store::Store;
use crate::store::refs::{self, PolicyRelease, ReleaseSource};

/// A tag as a [`History`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryTag {
    /// The short name (`v1.2.0`).
    pub name: String,
    /// The commit it peels to.
    pub commit: String,
    /// When it was made (RFC 3339), when the listing tells; otherwise
    /// [`History::tag_date`] is asked, only for the tags that become releases.
    pub date: Option<String>,
}

/// A repository's tags and the commits of its ranges.
pub trait History: CommitSource {
    /// Every tag that peels to a commit.
    fn tags(&self) -> BoxFuture<'_, Result<Vec<HistoryTag>, HandlerError>>;
    /// When a tag listed without a date was made: the tagger date of an annotated tag, else
    /// its commit's date.
    fn tag_date<'a>(&'a self, tag: &'a HistoryTag) -> BoxFuture<'a, Result<String, HandlerError>>;
}

/// One release the import makes (or, in a dry run, would make).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    pub tag: String,
    pub version: String,
    /// The commit the tag peels to.
    pub commit: String,
    /// The tag's date, canonical UTC.
    pub date: String,
    /// The index of the policy in the repository's `releases:`.
    pub policy: usize,
    /// Where its range starts: the predecessor's commit (`None`: `initial_depth` commits).
    pub from: Option<String>,
}

/// What an import did (or would do).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// The releases made (would be made), in the order they were made, with their commit
    /// counts.
    pub releases: Vec<(Planned, usize)>,
    /// Tags whose release was already there.
    pub present: usize,
    /// Tags no policy wants.
    pub unmatched: usize,
}

/// Progress, for a terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step<'a> {
    /// The releases to make are known.
    Planned { total: usize },
    /// One more is made (or counted, in a dry run).
    Made {
        release: &'a Planned,
        commits: usize,
    },
}

/// The policy an imported tag belongs to: the first whose trigger makes releases and whose
/// pattern matches, with the version it gives.
pub fn policy_for_tag<'a>(
    repository: &'a RepositoryConfig,
    tag: &str,
) -> Option<(usize, &'a ReleasePolicy, String)> {
    repository
        .releases
        .iter()
        .enumerate()
        .filter(|(_, p)| p.on != ReleaseTrigger::None)
        .find_map(|(i, p)| p.version_for_tag(tag).map(|v| (i, p, v)))
}

/// A tag that matched a policy, before planning.
#[derive(Debug, Clone)]
struct Candidate {
    tag: HistoryTag,
    policy: usize,
    version: String,
}

/// Orders each policy's missing tags and finds each one's predecessor among the releases the
/// policy has (`existing[policy]`) and those planned before it; then interleaves the policies
/// by tag date. Pure: the dates must be filled in.
fn order(
    mut missing: Vec<Vec<(Candidate, String)>>,
    mut existing: Vec<Vec<PolicyRelease>>,
) -> Vec<Planned> {
    let mut queues: Vec<std::collections::VecDeque<Planned>> = Vec::new();
    for (policy, tags) in missing.iter_mut().enumerate() {
        tags.sort_by(|(a, ad), (b, bd)| tag::release_order(&a.version, ad, &b.version, bd));
        let mut queue = std::collections::VecDeque::new();
        for (c, date) in tags.iter() {
            let from = tag::previous_release(&existing[policy], &c.version, date)
                .map(|p| p.source.target_commit.clone());
            existing[policy].push(PolicyRelease {
                source: ReleaseSource {
                    release_id: 0,
                    repository_id: 0,
                    policy_key: String::new(),
                    tag: c.tag.name.clone(),
                    target_commit: c.tag.commit.clone(),
                    trigger: String::new(),
                },
                version: c.version.clone(),
                date: date.clone(),
            });
            queue.push_back(Planned {
                tag: c.tag.name.clone(),
                version: c.version.clone(),
                commit: c.tag.commit.clone(),
                date: date.clone(),
                policy,
                from,
            });
        }
        queues.push(queue);
    }
    // Each policy keeps its own order; between policies the earlier tag goes first.
    let mut out = Vec::new();
    while let Some(next) = queues
        .iter_mut()
        .filter(|q| !q.is_empty())
        .min_by(|a, b| a[0].date.cmp(&b[0].date))
    {
        out.extend(next.pop_front());
    }
    out
}

/// Plans the import of `repository`'s tags: which releases are missing, in which order, and
/// where each range starts. Reads the store; writes nothing.
pub async fn plan(
    store: &Store,
    config: &Config,
    repository: &str,
    history: &dyn History,
) -> Result<(Vec<Planned>, Report), HandlerError> {
    let repo_config = config.repository(repository).ok_or_else(|| {
        CoreError::NotFound(format!(
            "repository {repository} is not in the config file; the import follows the release policies configured there"
        ))
    })?;
    let mut report = Report::default();
    let mut candidates = Vec::new();
    for t in history.tags().await? {
        match policy_for_tag(repo_config, &t.name) {
            Some((policy, _, version)) => candidates.push(Candidate {
                tag: t,
                policy,
                version,
            }),
            None => report.unmatched += 1,
        }
    }
    let keys: Vec<String> = repo_config.releases.iter().map(tag::policy_key).collect();
    let (org_slug, name, policies) = (
        config.organization.clone(),
        repository.to_owned(),
        keys.len(),
    );
    let existing: Vec<Vec<PolicyRelease>> = store
        .read(move |conn| -> Result<_, CoreError> {
            let org = org::org(conn, &org_slug)?;
            let row = super::repo::by_name(conn, org.id, &name)?.ok_or_else(|| {
                CoreError::NotFound(format!(
                    "repository {name} is not in the store yet; start the daemon once (it adds the config's repositories)"
                ))
            })?;
            keys.iter()
                .map(|k| Ok(refs::policy_releases(conn, row.id, k)?))
                .collect()
        })
        .await?;

    let mut missing: Vec<Vec<(Candidate, String)>> = vec![Vec::new(); policies];
    for c in candidates {
        let known = existing[c.policy].iter().any(|r| r.version == c.version)
            || missing[c.policy]
                .iter()
                .any(|(m, _)| m.version == c.version);
        if known {
            report.present += 1;
            continue;
        }
        let date = match &c.tag.date {
            Some(d) => d.clone(),
            None => history.tag_date(&c.tag).await?,
        };
        let date = time::normalize(&date).ok_or_else(|| {
            HandlerError::Permanent(format!(
                "tag {} has an unreadable date {date:?}",
                c.tag.name
            ))
        })?;
        missing[c.policy].push((c, date));
    }
    Ok((order(missing, existing), report))
}

/// Imports `repository`'s tags as releases (see the module documentation), or with
/// `dry_run` only counts what it would make. `progress` hears about each release.
pub async fn import(
    store: &Store,
    config: &Config,
    repository: &str,
    history: &dyn History,
    dry_run: bool,
    progress: &mut (dyn FnMut(Step<'_>) + Send),
) -> Result<Report, HandlerError> {
    let (planned, mut report) = plan(store, config, repository, history).await?;
    progress(Step::Planned {
        total: planned.len(),
    });
    let Some(repo_config) = config.repository(repository) else {
        return Ok(report);
    };
    for p in planned {
        let policy = &repo_config.releases[p.policy];
        let commits = if dry_run {
            let opts = RangeOptions {
                paths: policy.paths.clone(),
                initial_depth: policy.initial_depth,
            };
            history
                .range(p.from.as_deref(), &p.commit, &opts)
                .await?
                .len()
        } else {
            let seen = TagSeen {
                repository: repository.to_owned(),
                tag: p.tag.clone(),
                target: p.commit.clone(),
                trigger: policy.on,
                date: Some(p.date.clone()),
            };
            match tag::release_for_tag(store, config, &seen, history).await? {
                Some(release) => release.commit_count.max(0) as usize,
                None => 0,
            }
        };
        progress(Step::Made {
            release: &p,
            commits,
        });
        report.releases.push((p, commits));
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(name: &str, version: &str, policy: usize, date: &str) -> (Candidate, String) {
        (
            Candidate {
                tag: HistoryTag {
                    name: name.into(),
                    commit: format!("c-{name}"),
                    date: None,
                },
                policy,
                version: version.into(),
            },
            date.into(),
        )
    }

    fn existing(version: &str, commit: &str, date: &str) -> PolicyRelease {
        PolicyRelease {
            source: ReleaseSource {
                release_id: 1,
                repository_id: 1,
                policy_key: "k".into(),
                tag: version.into(),
                target_commit: commit.into(),
                trigger: "tag".into(),
            },
            version: version.into(),
            date: date.into(),
        }
    }

    #[test]
    fn each_policy_chains_by_version_and_policies_interleave_by_date() {
        let missing = vec![
            vec![
                cand("v1.10.0", "web@1.10.0", 0, "2026-01-05"),
                cand("v1.9.0", "web@1.9.0", 0, "2026-01-03"),
                // A backport tagged last still follows its own line.
                cand("v1.9.1", "web@1.9.1", 0, "2026-01-09"),
            ],
            vec![
                cand("ui-2", "ui@2", 1, "2026-01-04"),
                cand("ui-1", "ui@1", 1, "2026-01-01"),
            ],
        ];
        let planned = order(missing, vec![Vec::new(), Vec::new()]);
        let got: Vec<(&str, Option<&str>)> = planned
            .iter()
            .map(|p| (p.tag.as_str(), p.from.as_deref()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("ui-1", None),
                ("v1.9.0", None),
                ("ui-2", Some("c-ui-1")),
                ("v1.9.1", Some("c-v1.9.0")),
                ("v1.10.0", Some("c-v1.9.1")),
            ]
        );
    }

    #[test]
    fn missing_releases_start_at_the_existing_predecessor() {
        let missing = vec![vec![
            cand("v1.2.0", "1.2.0", 0, "2026-01-03"),
            cand("v0.9.0", "0.9.0", 0, "2026-01-01"),
        ]];
        let have = vec![vec![existing("1.1.0", "c-v1.1.0", "2026-01-02")]];
        let planned = order(missing, have);
        assert_eq!(planned[0].tag, "v0.9.0");
        assert_eq!(planned[0].from, None);
        assert_eq!(planned[1].tag, "v1.2.0");
        assert_eq!(planned[1].from.as_deref(), Some("c-v1.1.0"));
    }

    #[test]
    fn tags_go_to_the_first_policy_that_makes_releases() {
        let repo = RepositoryConfig {
            name: "acme/web".into(),
            releases: vec![
                ReleasePolicy {
                    on: ReleaseTrigger::None,
                    tag_pattern: "^v(?P<version>.+)$".into(),
                    version: "none@{version}".into(),
                    ..Default::default()
                },
                ReleasePolicy {
                    on: ReleaseTrigger::Push,
                    tag_pattern: "^v(?P<version>.+)$".into(),
                    version: "web@{version}".into(),
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let (i, _, v) = policy_for_tag(&repo, "v1.0").unwrap();
        assert_eq!((i, v.as_str()), (1, "web@1.0"));
        assert!(policy_for_tag(&repo, "nightly").is_none());
    }
}
