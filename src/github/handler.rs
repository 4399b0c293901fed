//! Applying GitHub events: the pipeline handler for `github.webhook` (a delivery stored by the
//! endpoint) and `github.tag` (a tag found by the GitHub reconciler).
//!
//! A delivery names its repository by `repository.full_name`; it is matched against the
//! config's `repositories[].github` (then against repositories added with `shiplog repos add
//! --github`). What each event does:
//!
//! - `ping`: the hook is recorded (`shiplog github hooks`);
//! - `push` to a branch: its commits are recorded with their patch sets (from the payload, or
//!   from the compare API when the payload's list is capped at 2048 or empty on a force push)
//!   and their `Fixes PROJ-123` references linked to the issues;
//! - `push` of a tag, `create` of a tag, a tag found by reconcile: the tag goes through
//!   `core::tag::release_for_tag` with [`GithubCommits`] as the commit source, so the release
//!   gets the commits since the previous release from the compare API;
//! - `release` `published`/`released`: the same, then the release is finalized with GitHub's
//!   `published_at`;
//! - tag deletions are logged (the release stays); other events are accepted and ignored.
//!
//! When the API cannot give the commits (rate limit exhausted, GitHub down after retries) the
//! release is still created, marked `data.commitsPending` with the error, and the event is
//! retried ([`HandlerError::Retry`]); the retry, or the next reconcile, completes it and clears
//! the mark. Every delivery's outcome is written to `github_deliveries`.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};

use super::client::{GithubClient, with_notes};
use super::payload::{Payload, PingEvent, PushEvent, RefName, ReleaseEvent, ZERO_SHA};
use super::source::GithubCommits;
use super::webhook::Delivery;
use crate::config::{Config, ReleaseTrigger};
use crate::core::org::ProjectRef;
use crate::core::release::{CreateRelease, UpdateRelease};
use crate::core::tag::{TagSeen, matching_policy, release_for_tag};
use crate::core::{self, CoreError};
use crate::pipeline::{Event, Handler, HandlerError, MAX_ATTEMPTS, decode};
use crate::store::github::{self as gstore, DeliveryLog};
use crate::store::inbox;
use crate::store::refs::{self, SnapshotRef};
use crate::store::releases::Release;
use crate::store::{Store, orgs, repos};

/// A tag the GitHub reconciler found on GitHub and not in the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagFound {
    /// The repository's name in shiplog.
    pub repository: String,
    /// `owner/name` on GitHub.
    pub github: String,
    pub tag: String,
    /// The commit the tag points to (the tags API peels annotated tags).
    pub commit: String,
}

impl Event for TagFound {
    const KIND: &'static str = "github.tag";
    fn idempotency_key(&self) -> String {
        format!("{}:refs/tags/{}:{}", self.repository, self.tag, self.commit)
    }
}

/// The inbox key prefix of every [`TagFound`] of one tag (to forget them when it is deleted).
pub fn tag_key_prefix(repository: &str, tag: &str) -> String {
    format!("{}:{repository}:refs/tags/{tag}:", TagFound::KIND)
}

/// A GitHub repository as shiplog knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The repository's name in shiplog.
    pub name: String,
    /// `owner/name` on GitHub.
    pub github: String,
}

/// The repository a delivery about `full_name` belongs to: a configured `github:` repository,
/// else an active one added with `shiplog repos add --github`. GitHub's names are
/// case-insensitive.
pub fn find_target(
    conn: &rusqlite::Connection,
    config: &Config,
    full_name: &str,
) -> Result<Option<Target>, CoreError> {
    if let Some(r) = config.repositories.iter().find(|r| {
        r.github
            .as_deref()
            .is_some_and(|g| g.eq_ignore_ascii_case(full_name))
    }) {
        return Ok(Some(Target {
            name: r.name.clone(),
            github: r.github.clone().unwrap_or_default(),
        }));
    }
    let org = core::org::org(conn, &config.organization)?;
    Ok(core::repo::list(conn, org.id)?
        .into_iter()
        .find(|r| {
            r.status == repos::STATUS_ACTIVE
                && r.external
                    .as_deref()
                    .is_some_and(|g| g.eq_ignore_ascii_case(full_name))
        })
        .map(|r| Target {
            github: r.external.clone().unwrap_or_default(),
            name: r.name,
        }))
}

/// Which policies a tag that appeared on GitHub goes to: an `on: push` policy that matches it
/// (the tag was pushed), else the `on: tag` ones (for a repository shiplog reaches only
/// through GitHub, a tag appearing there is also a tag created where shiplog looks, and the
/// default policy is `on: tag`).
pub fn trigger_for(config: &Config, repository: &str, tag: &str) -> ReleaseTrigger {
    match config.repository(repository) {
        Some(r) if matching_policy(r, tag, ReleaseTrigger::Push).is_some() => ReleaseTrigger::Push,
        _ => ReleaseTrigger::Tag,
    }
}

/// What applying an event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// `applied` or `ignored`.
    pub kind: &'static str,
    pub detail: String,
}

impl Outcome {
    fn applied(detail: impl Into<String>) -> Outcome {
        Outcome {
            kind: "applied",
            detail: detail.into(),
        }
    }

    fn ignored(detail: impl Into<String>) -> Outcome {
        Outcome {
            kind: "ignored",
            detail: detail.into(),
        }
    }
}

/// The handler of `github.webhook` and `github.tag` events; cheap to clone.
#[derive(Clone)]
pub struct GithubHandler {
    store: Store,
    config: Arc<Config>,
    client: GithubClient,
}

impl GithubHandler {
    pub fn new(store: Store, config: Arc<Config>, client: GithubClient) -> GithubHandler {
        GithubHandler {
            store,
            config,
            client,
        }
    }

    async fn handle_delivery(&self, entry: &inbox::Entry) -> Result<(), HandlerError> {
        let d: Delivery = decode(entry)?;
        let parsed = Payload::parse(&d.event, d.body.as_bytes());
        let (action, repository) = match &parsed {
            Ok(p) => (
                p.action().map(str::to_owned),
                p.repository().map(str::to_owned),
            ),
            Err(_) => (None, None),
        };
        let result = match parsed {
            Ok(p) => self.apply(&d, p).await,
            Err(e) => Err(HandlerError::Permanent(e.to_string())),
        };
        let (outcome, detail) = match &result {
            Ok(o) => (o.kind, o.detail.clone()),
            // The pipeline gives up after its last attempt: say so rather than "pending".
            Err(HandlerError::Retry(m)) if entry.attempts + 1 >= MAX_ATTEMPTS => (
                "failed",
                format!("{m} (gave up; reconcile will retry tags)"),
            ),
            Err(HandlerError::Retry(m)) => ("pending", format!("{m} (will retry)")),
            Err(HandlerError::Permanent(m)) => ("failed", m.clone()),
        };
        match &result {
            Ok(o) => {
                tracing::info!(event = %d.event, delivery = %d.delivery, repository = repository.as_deref().unwrap_or("-"), outcome = o.kind, "{}", o.detail)
            }
            Err(e) => {
                tracing::warn!(event = %d.event, delivery = %d.delivery, repository = repository.as_deref().unwrap_or("-"), error = %e, "GitHub delivery not applied")
            }
        }
        let log = DeliveryLog {
            hook_id: d.hook_id.clone(),
            delivery: d.delivery.clone(),
            event: d.event.clone(),
            action,
            repository,
            received_at: d.received_at.clone(),
            processed_at: core::now(),
            outcome: outcome.to_owned(),
            detail,
        };
        let org_slug = self.config.organization.clone();
        self.store
            .write(move |tx| match orgs::org_by_slug(tx, &org_slug)? {
                Some(org) => gstore::record_delivery(tx, org.id, &log),
                None => Ok(()),
            })
            .await?;
        result.map(|_| ())
    }

    async fn handle_tag(&self, entry: &inbox::Entry) -> Result<(), HandlerError> {
        let t: TagFound = decode(entry)?;
        let target = Target {
            name: t.repository.clone(),
            github: t.github.clone(),
        };
        match self.tag(&target, &t.tag, Some(t.commit.clone())).await? {
            Some(r) => {
                tracing::info!(repository = %t.repository, tag = %t.tag, release = %r.version, "release from a tag found on GitHub")
            }
            None => {
                tracing::debug!(repository = %t.repository, tag = %t.tag, "no release policy matches the tag")
            }
        }
        Ok(())
    }

    async fn apply(&self, d: &Delivery, payload: Payload) -> Result<Outcome, HandlerError> {
        if let Payload::Ping(p) = &payload {
            return self.ping(d, p).await;
        }
        if let Payload::Other(event, _) = &payload {
            return Ok(Outcome::ignored(format!(
                "{event} events are not used by shiplog"
            )));
        }
        let Some(full_name) = payload.repository().map(str::to_owned) else {
            return Ok(Outcome::ignored("the payload names no repository"));
        };
        let config = self.config.clone();
        let lookup = full_name.clone();
        let target = self
            .store
            .read(move |conn| find_target(conn, &config, &lookup))
            .await?;
        let Some(target) = target else {
            tracing::info!(repository = %full_name, event = %d.event, "delivery for a repository that is not configured; ignored");
            return Ok(Outcome::ignored(format!(
                "repository {full_name} is not configured; add it under repositories: with `github: {full_name}`"
            )));
        };
        match payload {
            Payload::Push(p) => match RefName::from_full(&p.ref_) {
                RefName::Branch(branch) => self.push_branch(&target, &branch, &p).await,
                RefName::Tag(tag) if p.deleted || p.after == ZERO_SHA => {
                    self.tag_deleted(&target, &tag).await
                }
                RefName::Tag(tag) => {
                    let commit = p.target_commit().map(str::to_owned);
                    self.tag_outcome(&target, &tag, commit).await
                }
                RefName::Other(r) => Ok(Outcome::ignored(format!("pushes to {r} are not used"))),
            },
            Payload::Create(r) => match RefName::from_short(&r.ref_, &r.ref_type) {
                RefName::Tag(tag) => self.tag_outcome(&target, &tag, None).await,
                _ => Ok(Outcome::ignored(format!(
                    "{} {} created; its commits come with the push event",
                    r.ref_type, r.ref_
                ))),
            },
            Payload::Delete(r) => match RefName::from_short(&r.ref_, &r.ref_type) {
                RefName::Tag(tag) => self.tag_deleted(&target, &tag).await,
                _ => Ok(Outcome::ignored(format!(
                    "{} {} deleted",
                    r.ref_type, r.ref_
                ))),
            },
            Payload::Release(r) => self.release(&target, &r).await,
            Payload::Ping(_) | Payload::Other(..) => Ok(Outcome::ignored("not used")),
        }
    }

    async fn ping(&self, d: &Delivery, p: &PingEvent) -> Result<Outcome, HandlerError> {
        let now = core::now();
        let hook = gstore::Hook {
            hook_id: p
                .hook_id
                .or(p.hook.id)
                .map(|id| id.to_string())
                .unwrap_or_else(|| d.hook_id.clone()),
            target: p.repository.as_ref().map(|r| r.full_name.clone()),
            hook_type: p.hook.type_.clone(),
            events: p.hook.events.clone(),
            content_type: p.hook.config.content_type.clone(),
            zen: p.zen.clone(),
            first_ping_at: now.clone(),
            last_ping_at: now,
        };
        let detail = format!(
            "webhook {} is set up ({} events, {} content){}",
            hook.hook_id,
            if hook.events.is_empty() {
                "no".to_owned()
            } else {
                hook.events.join(",")
            },
            hook.content_type.as_deref().unwrap_or("json"),
            hook.zen
                .as_deref()
                .map(|z| format!(": \"{z}\""))
                .unwrap_or_default()
        );
        let org_slug = self.config.organization.clone();
        self.store
            .write(move |tx| match orgs::org_by_slug(tx, &org_slug)? {
                Some(org) => gstore::upsert_hook(tx, org.id, &hook),
                None => Ok(()),
            })
            .await?;
        Ok(Outcome::applied(detail))
    }

    async fn push_branch(
        &self,
        target: &Target,
        branch: &str,
        p: &PushEvent,
    ) -> Result<Outcome, HandlerError> {
        if p.deleted || p.after == ZERO_SHA {
            return Ok(Outcome::ignored(format!("branch {branch} deleted")));
        }
        let from_api = p.commits_incomplete() && p.before != ZERO_SHA;
        let mut commits = if from_api {
            // The payload's list is capped or empty: the compare API has them all.
            self.client
                .range(&target.github, Some(&p.before), &p.after, &[], 0)
                .await?
        } else {
            p.commits
                .iter()
                .map(|c| c.to_commit_data(&target.name))
                .collect()
        };
        for c in &mut commits {
            c.repository = Some(target.name.clone());
        }
        if commits.is_empty() {
            return Ok(Outcome::ignored(format!(
                "push to {branch} carried no commits"
            )));
        }
        let n = commits.len();
        let (org_slug, name) = (self.config.organization.clone(), target.name.clone());
        self.store
            .write(move |tx| -> Result<(), CoreError> {
                let org = core::org::org(tx, &org_slug)?;
                let repository = core::repo::by_name(tx, org.id, &name)?.ok_or_else(|| {
                    CoreError::NotFound(format!("repository {name} is not in the store"))
                })?;
                let ids = core::commit::record_commits(tx, &org, &repository, &commits)?;
                // "Fixes PROJ-123" in a pushed commit links the issue now; it is resolved
                // when a release containing the commit is made.
                core::issue::link_commits(tx, &org, &ids)?;
                Ok(())
            })
            .await?;
        Ok(Outcome::applied(format!(
            "recorded {n} commit{} on {branch}{}",
            if n == 1 { "" } else { "s" },
            if from_api {
                " (from the compare API)"
            } else {
                ""
            }
        )))
    }

    async fn tag_outcome(
        &self,
        target: &Target,
        tag: &str,
        commit: Option<String>,
    ) -> Result<Outcome, HandlerError> {
        Ok(match self.tag(target, tag, commit).await? {
            Some(r) => Outcome::applied(format!(
                "release {} from tag {tag} ({} commit{})",
                r.version,
                r.commit_count,
                if r.commit_count == 1 { "" } else { "s" }
            )),
            None => Outcome::ignored(format!(
                "no release policy of {} matches tag {tag}",
                target.name
            )),
        })
    }

    /// A tag seen on GitHub: the release per policy, with the commits from the API (`None`
    /// when no policy wants the tag).
    async fn tag(
        &self,
        target: &Target,
        tag: &str,
        commit: Option<String>,
    ) -> Result<Option<Release>, HandlerError> {
        let trigger = trigger_for(&self.config, &target.name, tag);
        let commit = match commit {
            Some(c) => c,
            None => match self.client.peel_tag(&target.github, tag).await {
                Ok(c) => c,
                Err(e) => {
                    let e = HandlerError::from(e);
                    if let HandlerError::Retry(m) = &e {
                        self.mark_pending(target, tag, trigger, m).await;
                    }
                    return Err(e);
                }
            },
        };
        let seen = TagSeen {
            repository: target.name.clone(),
            tag: tag.to_owned(),
            target: commit.clone(),
            trigger,
            date: None,
        };
        let source = GithubCommits::new(self.client.clone(), &target.github, &target.name);
        let result = release_for_tag(&self.store, &self.config, &seen, &source).await;
        let release = match result {
            Ok(r) => r,
            Err(HandlerError::Retry(m)) => {
                self.mark_pending(target, tag, trigger, &m).await;
                return Err(HandlerError::Retry(m));
            }
            Err(e) => return Err(e),
        };
        // The tag is applied: remember it (reconcile compares GitHub's tags with this) and
        // clear a "commits pending" mark left by an earlier attempt.
        let (org_slug, name, tag_name) = (
            self.config.organization.clone(),
            target.name.clone(),
            tag.to_owned(),
        );
        let release_id = release.as_ref().map(|r| r.id);
        self.store
            .write(move |tx| -> Result<Option<Release>, CoreError> {
                let org = core::org::org(tx, &org_slug)?;
                if let Some(repository) = core::repo::by_name(tx, org.id, &name)? {
                    refs::put_ref(
                        tx,
                        repository.id,
                        &format!("refs/tags/{tag_name}"),
                        &SnapshotRef {
                            target: commit.clone(),
                            peeled: Some(commit),
                        },
                        &core::now(),
                    )?;
                }
                match release_id {
                    Some(id) => {
                        gstore::clear_commits_pending(tx, id)?;
                        Ok(crate::store::releases::by_id(tx, id)?)
                    }
                    None => Ok(None),
                }
            })
            .await
            .map_err(HandlerError::from)
    }

    /// Makes the tag's release exist, marked "commits pending", while its commits cannot be
    /// fetched. Best effort: the event is retried whatever happens here.
    async fn mark_pending(&self, target: &Target, tag: &str, trigger: ReleaseTrigger, error: &str) {
        let Some(repo_config) = self.config.repository(&target.name) else {
            return;
        };
        let Some((policy, version)) = matching_policy(repo_config, tag, trigger) else {
            return;
        };
        let projects: Vec<ProjectRef> = repo_config
            .policy_projects(policy)
            .iter()
            .cloned()
            .map(ProjectRef::Slug)
            .collect();
        let (org_slug, tag_name, error) = (
            self.config.organization.clone(),
            tag.to_owned(),
            error.to_owned(),
        );
        let written = self
            .store
            .write(move |tx| -> Result<(), CoreError> {
                let org = core::org::org(tx, &org_slug)?;
                let up = core::release::upsert(
                    tx,
                    &org,
                    &CreateRelease {
                        version,
                        projects,
                        ref_: Some(tag_name),
                        ..Default::default()
                    },
                    &core::now(),
                )?;
                if up.release.commit_count == 0 {
                    gstore::mark_commits_pending(tx, up.release.id, &error)?;
                }
                Ok(())
            })
            .await;
        if let Err(e) = written {
            tracing::warn!(repository = %target.name, tag, error = %e, "could not record the release as commits-pending");
        }
    }

    async fn tag_deleted(&self, target: &Target, tag: &str) -> Result<Outcome, HandlerError> {
        let (org_slug, name, tag_name) = (
            self.config.organization.clone(),
            target.name.clone(),
            tag.to_owned(),
        );
        self.store
            .write(move |tx| -> Result<(), CoreError> {
                let org = core::org::org(tx, &org_slug)?;
                if let Some(repository) = core::repo::by_name(tx, org.id, &name)? {
                    refs::delete_ref(tx, repository.id, &format!("refs/tags/{tag_name}"))?;
                }
                // A tag re-created on the same commit later is news again.
                inbox::forget_processed(tx, &tag_key_prefix(&name, &tag_name))?;
                Ok(())
            })
            .await?;
        Ok(Outcome::applied(format!(
            "tag {tag} deleted on GitHub; its release, if any, is kept"
        )))
    }

    async fn release(&self, target: &Target, r: &ReleaseEvent) -> Result<Outcome, HandlerError> {
        let tag = &r.release.tag_name;
        if !matches!(r.action.as_str(), "published" | "released") {
            return Ok(Outcome::ignored(format!(
                "release {tag} {}: only published and released are used",
                r.action
            )));
        }
        if r.release.draft {
            return Ok(Outcome::ignored(format!("release {tag} is a draft")));
        }
        let release = match self.tag(target, tag, None).await? {
            Some(release) => release,
            None => {
                return Ok(Outcome::ignored(format!(
                    "no release policy of {} matches tag {tag}",
                    target.name
                )));
            }
        };
        let mut detail = if release.date_released.is_some() {
            format!("release {} was already finalized", release.version)
        } else {
            self.finalize(&release, r).await?
        };
        if self.config.github.publish_release_notes
            && let Some(id) = r.release.id
        {
            // The notes are a courtesy: failing to write them does not fail the delivery.
            match self.publish_notes(target, &release.version, id).await {
                Ok(()) => detail.push_str("; release notes published to GitHub"),
                Err(e) => {
                    tracing::warn!(release = %release.version, error = %e, "release notes not published to GitHub");
                    detail.push_str(&format!("; release notes not published: {e}"));
                }
            }
        }
        Ok(Outcome::applied(detail))
    }

    /// Sets dateReleased to GitHub's `published_at` (and the URL to the GitHub release when the
    /// release has none).
    async fn finalize(&self, release: &Release, r: &ReleaseEvent) -> Result<String, HandlerError> {
        let released = r.release.published_at.canonical().unwrap_or_else(core::now);
        let url = match release.url {
            Some(_) => None,
            None => r.release.html_url.clone(),
        };
        let (org_slug, version, when) = (
            self.config.organization.clone(),
            release.version.clone(),
            released.clone(),
        );
        self.store
            .write(move |tx| -> Result<Release, CoreError> {
                let org = core::org::org(tx, &org_slug)?;
                core::release::update(
                    tx,
                    &org,
                    &version,
                    &UpdateRelease {
                        date_released: Some(when),
                        url,
                        ..Default::default()
                    },
                )
            })
            .await?;
        Ok(format!(
            "release {} finalized (published on GitHub at {released})",
            release.version
        ))
    }

    /// Writes the release's notes into the GitHub release's description.
    async fn publish_notes(
        &self,
        target: &Target,
        version: &str,
        github_release: i64,
    ) -> Result<(), String> {
        let (org_slug, v) = (self.config.organization.clone(), version.to_owned());
        let notes = self
            .store
            .read(move |conn| -> Result<serde_json::Value, CoreError> {
                let org = core::org::org(conn, &org_slug)?;
                core::notes::notes(conn, &org, &v)
            })
            .await
            .map_err(|e| e.to_string())?;
        let markdown = core::notes::markdown(&notes);
        let existing = self
            .client
            .release_body(&target.github, github_release)
            .await
            .map_err(|e| e.to_string())?;
        let body = with_notes(&existing, &markdown);
        if body != existing {
            self.client
                .set_release_body(&target.github, github_release, &body)
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

impl Handler for GithubHandler {
    fn handle<'a>(&'a self, entry: &'a inbox::Entry) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            match entry.kind.as_str() {
                TagFound::KIND => self.handle_tag(entry).await,
                _ => self.handle_delivery(entry).await,
            }
        })
    }
}
