//! The webhook payloads shiplog reads: `push`, `create`, `delete`, `release` and `ping`.
//!
//! These are our own minimal structs, not octocrab's webhook models (which its authors mark
//! beta and which fail on fields they do not know): each keeps only what shiplog uses and
//! tolerates what GitHub actually sends —
//!
//! - `repository.created_at`/`pushed_at` are Unix-epoch integers in `push` payloads and
//!   ISO-8601 strings everywhere else ([`Timestamp`] takes both);
//! - `push` names the full ref (`refs/tags/v1`), `create`/`delete` the short one plus
//!   `ref_type` ([`RefName`] takes both);
//! - `head_commit` is null for deletions, `commits` is empty for tag pushes and capped at 2048
//!   entries, lists may be null.
//!
//! The raw JSON is never thrown away: the inbox keeps the delivery's bytes as received, and
//! these structs are parsed from it each time the delivery is applied.

use serde::{Deserialize, Deserializer};

use crate::model::commit::{ChangeKind, CommitData, FileChange};
use crate::model::time;

/// GitHub's all-zero sha: "the ref did not exist" (before) or "was deleted" (after).
pub const ZERO_SHA: &str = "0000000000000000000000000000000000000000";

/// The most commits a `push` payload lists; a payload with this many may be truncated.
pub const PUSH_COMMITS_CAP: usize = 2048;

/// Why a payload could not be read.
#[derive(Debug, thiserror::Error)]
#[error("malformed {event} payload: {source}")]
pub struct PayloadError {
    pub event: String,
    #[source]
    pub source: serde_json::Error,
}

/// A timestamp GitHub sent as epoch seconds or as an ISO-8601 string, kept as RFC 3339 text
/// (the string as given, so a commit keeps its author's offset).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Timestamp(pub Option<String>);

impl Timestamp {
    /// The time in shiplog's canonical UTC form, if it parses.
    pub fn canonical(&self) -> Option<String> {
        self.0.as_deref().and_then(time::normalize)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(i64),
            Float(f64),
            Text(String),
        }
        Ok(Timestamp(match Option::<Raw>::deserialize(d)? {
            None => None,
            Some(Raw::Int(secs)) => chrono::DateTime::from_timestamp(secs, 0).map(time::format),
            Some(Raw::Float(secs)) => {
                chrono::DateTime::from_timestamp(secs as i64, 0).map(time::format)
            }
            Some(Raw::Text(s)) if s.trim().is_empty() => None,
            Some(Raw::Text(s)) => Some(s),
        }))
    }
}

/// `null` or absent → the type's default (GitHub sends `null` for some empty lists).
fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// The repository a delivery is about.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct Repository {
    /// `owner/name`: what `repositories[].github` is matched against.
    pub full_name: String,
    #[serde(default)]
    pub html_url: Option<String>,
    #[serde(default)]
    pub default_branch: Option<String>,
    #[serde(default)]
    pub created_at: Timestamp,
    #[serde(default)]
    pub pushed_at: Timestamp,
}

/// A commit's author or committer.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct Person {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
}

/// One commit of a `push` (also the shape of `head_commit`).
#[derive(Debug, Clone, Deserialize, Default)]
pub struct PushCommit {
    pub id: String,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub timestamp: Timestamp,
    #[serde(default)]
    pub author: Option<Person>,
    /// `false` when the commit was pushed before (to another branch).
    #[serde(default = "yes")]
    pub distinct: bool,
    #[serde(default, deserialize_with = "null_default")]
    pub added: Vec<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub removed: Vec<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub modified: Vec<String>,
}

fn yes() -> bool {
    true
}

impl PushCommit {
    /// The commit in the one shape every source produces; `added`/`removed`/`modified` become
    /// the patch set (A/D/M).
    pub fn to_commit_data(&self, repository: &str) -> CommitData {
        let files = |paths: &[String], kind: ChangeKind| {
            paths
                .iter()
                .map(move |p| FileChange {
                    path: p.clone(),
                    kind,
                })
                .collect::<Vec<_>>()
        };
        let mut patch_set = files(&self.added, ChangeKind::Added);
        patch_set.extend(files(&self.modified, ChangeKind::Modified));
        patch_set.extend(files(&self.removed, ChangeKind::Deleted));
        let author = self.author.clone().unwrap_or_default();
        CommitData {
            id: self.id.clone(),
            repository: Some(repository.to_owned()),
            message: self.message.clone(),
            author_name: author.name.filter(|n| !n.is_empty()),
            author_email: author.email.filter(|e| !e.is_empty()),
            timestamp: self.timestamp.0.clone(),
            patch_set,
        }
    }
}

/// A `push` delivery.
#[derive(Debug, Clone, Deserialize)]
pub struct PushEvent {
    /// The full ref, `refs/heads/main` or `refs/tags/v1.2.3`.
    #[serde(rename = "ref")]
    pub ref_: String,
    pub before: String,
    pub after: String,
    #[serde(default)]
    pub created: bool,
    #[serde(default)]
    pub deleted: bool,
    #[serde(default)]
    pub forced: bool,
    #[serde(default)]
    pub base_ref: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub commits: Vec<PushCommit>,
    /// The pushed commit; for an annotated tag the commit the tag points to (while `after` is
    /// the tag object). Null when the ref was deleted.
    #[serde(default)]
    pub head_commit: Option<PushCommit>,
    pub repository: Repository,
}

impl PushEvent {
    /// `commits` may not be the whole push: it is capped at 2048 entries, and GitHub leaves it
    /// empty for some force pushes. The compare API then has the authoritative list.
    pub fn commits_incomplete(&self) -> bool {
        if self.deleted || self.after == ZERO_SHA {
            return false;
        }
        self.commits.len() >= PUSH_COMMITS_CAP || (self.commits.is_empty() && self.forced)
    }

    /// The commit a tag push points at: `head_commit.id` (peeled by GitHub), else `after`.
    pub fn target_commit(&self) -> Option<&str> {
        if self.deleted || self.after == ZERO_SHA {
            return None;
        }
        Some(
            self.head_commit
                .as_ref()
                .map(|c| c.id.as_str())
                .filter(|id| !id.is_empty())
                .unwrap_or(&self.after),
        )
    }
}

/// A `create` or `delete` delivery (a branch or tag made or removed; no shas).
#[derive(Debug, Clone, Deserialize)]
pub struct RefEvent {
    /// The short name (`v1.2.3`), unlike `push`.
    #[serde(rename = "ref")]
    pub ref_: String,
    /// `tag` or `branch`.
    pub ref_type: String,
    pub repository: Repository,
}

/// A GitHub release.
#[derive(Debug, Clone, Deserialize)]
pub struct GithubRelease {
    #[serde(default)]
    pub id: Option<i64>,
    pub tag_name: String,
    #[serde(default)]
    pub target_commitish: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub draft: bool,
    #[serde(default)]
    pub prerelease: bool,
    #[serde(default)]
    pub html_url: Option<String>,
    #[serde(default)]
    pub created_at: Timestamp,
    #[serde(default)]
    pub published_at: Timestamp,
}

/// A `release` delivery.
#[derive(Debug, Clone, Deserialize)]
pub struct ReleaseEvent {
    /// `published`, `released`, `created`, `edited`, `prereleased`, `unpublished`, `deleted`.
    pub action: String,
    pub release: GithubRelease,
    pub repository: Repository,
}

/// The webhook configuration a `ping` describes.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct Hook {
    #[serde(default)]
    pub id: Option<i64>,
    #[serde(default, rename = "type")]
    pub type_: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub events: Vec<String>,
    #[serde(default)]
    pub config: HookConfig,
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct HookConfig {
    /// `json` or `form`.
    #[serde(default)]
    pub content_type: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
}

/// A `ping` delivery: sent once when a webhook is created.
#[derive(Debug, Clone, Deserialize)]
pub struct PingEvent {
    #[serde(default)]
    pub zen: Option<String>,
    #[serde(default)]
    pub hook_id: Option<i64>,
    #[serde(default)]
    pub hook: Hook,
    #[serde(default)]
    pub repository: Option<Repository>,
}

/// What any other event carries that shiplog looks at (to log it).
#[derive(Debug, Clone, Deserialize, Default)]
pub struct OtherEvent {
    #[serde(default)]
    pub action: Option<String>,
    #[serde(default)]
    pub repository: Option<Repository>,
}

/// A delivery, by `X-GitHub-Event`.
#[derive(Debug, Clone)]
pub enum Payload {
    Push(PushEvent),
    Create(RefEvent),
    Delete(RefEvent),
    Release(ReleaseEvent),
    Ping(PingEvent),
    /// An event shiplog does not act on; accepted and ignored.
    Other(String, OtherEvent),
}

impl Payload {
    /// Parses the JSON of a delivery of event `event`.
    pub fn parse(event: &str, json: &[u8]) -> Result<Payload, PayloadError> {
        let err = |source| PayloadError {
            event: event.to_owned(),
            source,
        };
        Ok(match event {
            "push" => Payload::Push(serde_json::from_slice(json).map_err(err)?),
            "create" => Payload::Create(serde_json::from_slice(json).map_err(err)?),
            "delete" => Payload::Delete(serde_json::from_slice(json).map_err(err)?),
            "release" => Payload::Release(serde_json::from_slice(json).map_err(err)?),
            "ping" => Payload::Ping(serde_json::from_slice(json).map_err(err)?),
            other => Payload::Other(other.to_owned(), serde_json::from_slice(json).map_err(err)?),
        })
    }

    /// `owner/name` of the repository the delivery is about, if it names one.
    pub fn repository(&self) -> Option<&str> {
        match self {
            Payload::Push(p) => Some(&p.repository.full_name),
            Payload::Create(r) | Payload::Delete(r) => Some(&r.repository.full_name),
            Payload::Release(r) => Some(&r.repository.full_name),
            Payload::Ping(p) => p.repository.as_ref().map(|r| r.full_name.as_str()),
            Payload::Other(_, o) => o.repository.as_ref().map(|r| r.full_name.as_str()),
        }
    }

    /// The `action` field, for events that have one.
    pub fn action(&self) -> Option<&str> {
        match self {
            Payload::Release(r) => Some(&r.action),
            Payload::Other(_, o) => o.action.as_deref(),
            _ => None,
        }
    }
}

/// A ref as the payloads name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefName {
    Branch(String),
    Tag(String),
    /// `refs/pull/...`, `refs/notes/...` and the like.
    Other(String),
}

impl RefName {
    /// A full ref (`refs/heads/x`, `refs/tags/x`), as `push` sends it.
    pub fn from_full(full: &str) -> RefName {
        if let Some(tag) = full.strip_prefix("refs/tags/") {
            RefName::Tag(tag.to_owned())
        } else if let Some(branch) = full.strip_prefix("refs/heads/") {
            RefName::Branch(branch.to_owned())
        } else {
            RefName::Other(full.to_owned())
        }
    }

    /// A short name plus `ref_type`, as `create`/`delete` send them. A full ref is accepted
    /// too (GitHub Enterprise versions have sent both).
    pub fn from_short(name: &str, ref_type: &str) -> RefName {
        if name.starts_with("refs/") {
            return RefName::from_full(name);
        }
        match ref_type {
            "tag" => RefName::Tag(name.to_owned()),
            "branch" => RefName::Branch(name.to_owned()),
            _ => RefName::Other(name.to_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAYLOADS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/github");

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!("{PAYLOADS}/{name}")).unwrap()
    }

    #[test]
    fn push_with_epoch_dates_and_one_commit() {
        let Payload::Push(p) = Payload::parse("push", &fixture("push-branch-update.json")).unwrap()
        else {
            panic!("not a push")
        };
        assert_eq!(
            RefName::from_full(&p.ref_),
            RefName::Branch("changes".into())
        );
        assert_eq!(
            p.repository.created_at.0.as_deref(),
            Some("2015-05-05T23:40:12.000000Z")
        );
        assert_eq!(p.commits.len(), 1);
        assert!(!p.commits_incomplete());
        let c = p.commits[0].to_commit_data("acme/web");
        assert_eq!(c.id, "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c");
        assert_eq!(c.timestamp.as_deref(), Some("2015-05-05T19:40:15-04:00"));
        assert_eq!(c.author_name.as_deref(), Some("baxterthehacker"));
        assert_eq!(
            c.patch_set,
            vec![FileChange {
                path: "README.md".into(),
                kind: ChangeKind::Modified
            }]
        );
    }

    #[test]
    fn annotated_tag_push_targets_the_peeled_commit() {
        let Payload::Push(p) =
            Payload::parse("push", &fixture("push-tag-created.octocrab-real.json")).unwrap()
        else {
            panic!("not a push")
        };
        assert_eq!(RefName::from_full(&p.ref_), RefName::Tag("v0.2.1".into()));
        assert_eq!(p.after, "f19c884ab35c8d243bf9d857d631a5d4f190079f");
        assert_eq!(
            p.target_commit(),
            Some("bd7a63727468ca899e6a43e40fe9d76b3501f3f4")
        );
    }

    #[test]
    fn deleted_tag_has_no_target() {
        let Payload::Push(p) = Payload::parse("push", &fixture("push-tag-deleted.json")).unwrap()
        else {
            panic!("not a push")
        };
        assert!(p.head_commit.is_none());
        assert_eq!(p.target_commit(), None);
        assert!(!p.commits_incomplete());
    }

    #[test]
    fn create_delete_release_and_ping_with_iso_dates() {
        let Payload::Create(c) = Payload::parse("create", &fixture("create-tag.json")).unwrap()
        else {
            panic!("not a create")
        };
        assert_eq!(
            RefName::from_short(&c.ref_, &c.ref_type),
            RefName::Tag("simple-tag".into())
        );
        assert_eq!(
            c.repository.created_at.0.as_deref(),
            Some("2019-05-15T15:19:25Z")
        );
        let d = Payload::parse("delete", &fixture("delete-tag.json")).unwrap();
        assert_eq!(d.repository(), Some("Codertocat/Hello-World"));
        let Payload::Release(r) =
            Payload::parse("release", &fixture("release-published.json")).unwrap()
        else {
            panic!("not a release")
        };
        assert_eq!(r.action, "published");
        assert_eq!(r.release.tag_name, "0.0.1");
        assert_eq!(
            r.release.published_at.canonical().as_deref(),
            Some("2019-05-15T15:20:53.000000Z")
        );
        let Payload::Ping(p) = Payload::parse("ping", &fixture("ping.json")).unwrap() else {
            panic!("not a ping")
        };
        assert_eq!(p.hook_id, Some(109948940));
        assert_eq!(p.hook.config.content_type.as_deref(), Some("json"));
        assert_eq!(p.hook.events, vec!["*".to_string()]);
    }

    #[test]
    fn unknown_events_parse_loosely_and_bad_json_fails() {
        let p = Payload::parse(
            "star",
            br#"{"action":"created","repository":{"full_name":"a/b"}}"#,
        )
        .unwrap();
        assert_eq!(p.repository(), Some("a/b"));
        assert_eq!(p.action(), Some("created"));
        assert!(Payload::parse("push", b"{\"ref\": 1}").is_err());
        assert!(Payload::parse("star", b"not json").is_err());
    }

    #[test]
    fn truncated_and_empty_force_pushes_need_the_api() {
        let commit = PushCommit {
            id: "a".repeat(40),
            ..Default::default()
        };
        let mut p: PushEvent = serde_json::from_value(serde_json::json!({
            "ref": "refs/heads/main", "before": "b".repeat(40), "after": "c".repeat(40),
            "forced": true, "commits": null, "head_commit": null,
            "repository": {"full_name": "a/b", "created_at": 1430869212, "pushed_at": "2024-01-01T00:00:00Z"}
        }))
        .unwrap();
        assert!(p.commits_incomplete());
        p.forced = false;
        p.commits = vec![commit; PUSH_COMMITS_CAP];
        assert!(p.commits_incomplete());
        p.commits.truncate(3);
        assert!(!p.commits_incomplete());
    }
}
