//! Issues: events in, grouping, "Fixes WEB-1" links, resolution in releases and regressions
//! (sentry-semantics.md §2.4, §4).
//!
//! The loop this module owns:
//!
//! 1. [`ingest_event`] groups an event into an issue (creating it, with the next short id of
//!    its project), creates the event's release if it does not exist (Sentry does), counts the
//!    issue as new in that release, and checks for a regression.
//! 2. [`link_commits`] reads the Fixes grammar in commit messages and stores a link per
//!    referenced short id, whether or not that issue exists yet, with a REFERENCED_IN_COMMIT
//!    activity. A link alone resolves nothing: a commit on a feature branch is not a fix yet.
//! 3. [`on_release_commits`] runs when a release's commit list is set: every issue linked
//!    from one of its commits is resolved *in that release*.
//! 4. [`update_status`] is the API's resolve / resolve-in-release / resolve-in-next-release /
//!    unresolve / ignore; [`clear_expired_resolutions`] turns pending next-release
//!    resolutions into resolutions in a release when a newer release is created.
//! 5. An event of a resolved issue from a release newer than the resolving one reopens it
//!    as regressed (`GroupResolution.has_resolution` order: semver when both versions parse,
//!    else the release dates); an event from an older release leaves it resolved.
//!
//! Two deliberate differences from Sentry, both because shiplog applies events one at a time
//! in a single writer: Sentry skips a regression within 5 s of the issue's last activation to
//! absorb races between its parallel event workers; shiplog has no such race, so it does not.
//! And a link resolves its issue in a given release once: setting the same release's commits
//! again (reconcile does) does not undo a regression seen since.

use std::cmp::Ordering;

use chrono::{DateTime, Duration, Utc};
use rusqlite::{Connection, Transaction};
use serde_json::{Map, Value, json};

use super::CoreError;
use super::org::ProjectRef;
use super::release::{self, CreateRelease, Cursor, Page};
use crate::model::activity::ActivityType;
use crate::model::event::{Event, normalize_event_id};
use crate::model::issue_ref::{self, ShortId};
use crate::model::{environment, time, version};
use crate::store::deploys;
use crate::store::grouping as group_store;
use crate::store::issues::{
    self as store, Issue, IssueActivity, IssueQuery, IssueSort, NewEvent, NewIssue,
    RES_IN_NEXT_RELEASE, RES_IN_RELEASE, RES_PENDING, RES_RESOLVED, ReleaseOrder, Resolution,
    STATUS_IGNORED, STATUS_RESOLVED, STATUS_UNRESOLVED, SetResolution,
};
use crate::store::orgs::{Org, Project};
use crate::store::releases::{self, Release};

/// Events further in the future than this are dated when received (Relay's clock-drift rule).
const MAX_SECS_IN_FUTURE: i64 = 60;
/// Events older than this are dated when received (Relay's `max_secs_in_past`).
const MAX_DAYS_IN_PAST: i64 = 30;
/// Largest stored copy of an event payload; bulky optional parts are dropped past it.
pub const MAX_STORED_EVENT: usize = 64 * 1024;

// ------------------------------------------------------------------------------------------
// Ingest

/// What [`ingest_event`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ingested {
    pub event_id: String,
    pub issue_id: i64,
    pub short_id: String,
    /// The event opened a new issue.
    pub created: bool,
    /// The event reopened a resolved issue.
    pub regressed: bool,
    /// An event with this id was already stored; nothing changed.
    pub duplicate: bool,
}

/// A new random event id (32 lowercase hex).
pub fn new_event_id() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        // Only ids are at stake: fall back to the clock rather than refuse the event.
        let nanos = Utc::now().timestamp_nanos_opt().unwrap_or_default();
        bytes[..8].copy_from_slice(&nanos.to_le_bytes());
    }
    hex::encode(bytes)
}

/// An event parsed, grouped and encoded: everything about it that needs no database, done
/// before it reaches the single writer so the writer's transaction does only SQL.
#[derive(Debug)]
pub struct PreparedEvent {
    event: Event,
    event_id: String,
    /// When the event happened (clamped as Relay does), formatted.
    when: String,
    received: String,
    grouping: crate::model::grouping::Grouping,
    /// The stored payload, compressed (`store::payload`).
    data: Vec<u8>,
    /// The frames as JSON when the stored payload was trimmed, else empty (they are read
    /// back from the payload).
    frames: String,
}

/// Parses, groups and encodes one event payload (`raw` is its JSON text as received, when the
/// caller has it: stored as is rather than serialized again).
pub fn prepare_event(
    payload: &Map<String, Value>,
    raw: Option<&[u8]>,
    envelope_event_id: Option<&str>,
    received: DateTime<Utc>,
) -> Result<PreparedEvent, CoreError> {
    let event =
        Event::from_json(payload).map_err(|e| CoreError::invalid("event", e.to_string()))?;
    let event_id = match (&event.event_id, envelope_event_id) {
        (Some(id), _) => id.clone(),
        (None, Some(id)) => normalize_event_id(id).ok_or_else(|| {
            CoreError::invalid(
                "event_id",
                format!("invalid event_id {id:?}: expected 32 hexadecimal digits"),
            )
        })?,
        (None, None) => new_event_id(),
    };
    let when = match event.timestamp {
        Some(t)
            if t <= received + Duration::seconds(MAX_SECS_IN_FUTURE)
                && t >= received - Duration::days(MAX_DAYS_IN_PAST) =>
        {
            t
        }
        _ => received,
    };
    let grouping = event.grouping();
    let (data, frames) = match raw.filter(|r| r.len() <= MAX_STORED_EVENT) {
        Some(raw) => (crate::store::payload::encode(raw), String::new()),
        None => {
            let stored = stored_payload(payload);
            // A trimmed payload may have lost frames (threads, or the exception): keep them.
            let frames = if stored.contains("\"_shiplog_trimmed\"") {
                serde_json::to_string(&event.frames).unwrap_or_else(|_| "[]".into())
            } else {
                String::new()
            };
            (crate::store::payload::encode(stored.as_bytes()), frames)
        }
    };
    Ok(PreparedEvent {
        when: time::format(when),
        received: time::format(received),
        event,
        event_id,
        grouping,
        data,
        frames,
    })
}

/// Stores one event payload of `project`: groups it into an issue, creates its release if
/// needed, and applies the regression rule. One call per event, inside the caller's
/// transaction. ([`prepare_event`] then [`ingest_prepared`].)
pub fn ingest_event(
    tx: &Transaction<'_>,
    org: &Org,
    project: &Project,
    payload: &Map<String, Value>,
    envelope_event_id: Option<&str>,
    received: DateTime<Utc>,
) -> Result<Ingested, CoreError> {
    let prepared = prepare_event(payload, None, envelope_event_id, received)?;
    ingest_prepared(tx, org, project, &prepared)
}

/// Stores an event [`prepare_event`] made, inside the caller's transaction.
pub fn ingest_prepared(
    tx: &Transaction<'_>,
    org: &Org,
    project: &Project,
    prepared: &PreparedEvent,
) -> Result<Ingested, CoreError> {
    let PreparedEvent {
        event,
        event_id,
        when,
        received: received_text,
        grouping,
        data,
        frames,
    } = prepared;
    let event_id = event_id.clone();
    if store::event_exists(tx, project.id, &event_id)? {
        let issue = tx
            .query_row(
                "SELECT issue_id FROM events WHERE project_id = ?1 AND event_id = ?2",
                rusqlite::params![project.id, event_id],
                |r| r.get::<_, i64>(0),
            )
            .ok()
            .and_then(|id| store::by_id(tx, org.id, id).ok().flatten());
        return Ok(Ingested {
            event_id,
            issue_id: issue.as_ref().map_or(0, |i| i.id),
            short_id: issue.map(|i| i.qualified_short_id()).unwrap_or_default(),
            created: false,
            regressed: false,
            duplicate: true,
        });
    }

    // Relay drops an invalid release or environment from the event rather than the event.
    let release = match event.release.as_deref() {
        Some(v) if version::validate(v).is_ok() => {
            if let Some(known) = releases::by_version_in_project(tx, org.id, v, project.id)? {
                Some(known)
            } else {
                let up = release::upsert(
                    tx,
                    org,
                    &CreateRelease {
                        version: v.to_string(),
                        projects: vec![ProjectRef::Id(project.id)],
                        ..Default::default()
                    },
                    when,
                )?;
                Some(up.release)
            }
        }
        _ => None,
    };
    let environment = event
        .environment
        .as_deref()
        .filter(|e| environment::validate(e).is_ok());

    let current = &grouping.hashes[0];
    let existing =
        match group_store::issue_for_hashes(tx, project.id, &grouping.hashes, received_text)? {
            Some((id, version)) => {
                if version != current.version {
                    // Matched the way an older grouping hashed it: from now on the current hash
                    // finds this issue too (Sentry's secondary grouping during an upgrade).
                    group_store::add_hash(tx, project.id, current, id)?;
                }
                store::by_id(tx, org.id, id)?
            }
            None => None,
        };
    let created = existing.is_none();
    let (issue_id, short_number) = match &existing {
        Some(issue) => (issue.id, issue.short_id),
        None => {
            let short = store::next_short_id(tx, project.id)?;
            let metadata = grouping.description.metadata.to_string();
            let id = store::insert(
                tx,
                &NewIssue {
                    org_id: org.id,
                    project_id: project.id,
                    short_id: short,
                    fingerprint: &current.hash,
                    title: &grouping.description.title,
                    culprit: grouping.description.culprit.as_deref(),
                    level: &event.level,
                    ty: grouping.description.ty,
                    platform: event.platform.as_deref(),
                    metadata: &metadata,
                    seen: when,
                    release_id: release.as_ref().map(|r| r.id),
                    grouping_version: current.version,
                },
            )?;
            group_store::add_hash(tx, project.id, current, id)?;
            if let Some(r) = &release {
                store::count_new_group(tx, r.id, project.id)?;
            }
            store::insert_activity(
                tx,
                &IssueActivity {
                    org_id: org.id,
                    project_id: Some(project.id),
                    issue_id: Some(id),
                    release_id: release.as_ref().map(|r| r.id),
                    kind: ActivityType::FirstSeen,
                    ident: None,
                    data: json!({ "event_id": event_id }),
                    datetime: when,
                },
            )?;
            (id, short)
        }
    };
    if let Some(user) = event.user_tag() {
        group_store::add_user(tx, issue_id, &user)?;
    }
    store::record_seen(tx, issue_id, when, release.as_ref().map(|r| r.id))?;

    let regressed = match &existing {
        Some(issue) if issue.status == STATUS_RESOLVED => {
            let order = release.as_ref().map(|r| ReleaseOrder {
                id: r.id,
                version: r.version.clone(),
                date_added: r.date_added.clone(),
                date_released: r.date_released.clone(),
            });
            handle_regression(tx, issue, order.as_ref(), &event_id, when)?
        }
        _ => false,
    };

    let main = event.main_exception();
    store::insert_event(
        tx,
        &NewEvent {
            event_id: &event_id,
            project_id: project.id,
            issue_id,
            release_id: release.as_ref().map(|r| r.id),
            environment,
            platform: event.platform.as_deref(),
            level: &event.level,
            timestamp: when,
            received: received_text,
            message: event.message.as_deref(),
            exception_type: main.and_then(|e| e.ty.as_deref()),
            exception_value: main.and_then(|e| e.value.as_deref()),
            frames,
            data,
        },
    )?;
    if let (Some(r), Some(env)) = (&release, environment) {
        let env_id = deploys::ensure_environment(tx, org.id, env)?;
        store::note_release_environment(tx, r.id, project.id, env_id, when, created)?;
    }

    let kind = if created {
        Some(super::notify::ISSUE_CREATED)
    } else if regressed {
        Some(super::notify::ISSUE_REGRESSED)
    } else {
        None
    };
    if let Some(kind) = kind {
        let release_id = release.as_ref().map(|r| r.id);
        super::notify::enqueue_issue(
            tx,
            org.id,
            kind,
            environment,
            issue_id,
            release_id,
            received_text,
        )?;
    }
    Ok(Ingested {
        event_id,
        issue_id,
        short_id: ShortId::qualified(&project.slug, u64::try_from(short_number).unwrap_or(0)),
        created,
        regressed,
        duplicate: false,
    })
}

/// The payload as stored: whole when small, else without its bulkiest optional parts, else
/// only what identifies and names the event.
fn stored_payload(payload: &Map<String, Value>) -> String {
    let whole = Value::Object(payload.clone()).to_string();
    if whole.len() <= MAX_STORED_EVENT {
        return whole;
    }
    let mut slim = payload.clone();
    for key in [
        "breadcrumbs",
        "extra",
        "modules",
        "debug_meta",
        "threads",
        "request",
        "contexts",
        "spans",
    ] {
        slim.remove(key);
    }
    slim.insert("_shiplog_trimmed".into(), Value::Bool(true));
    let text = Value::Object(slim).to_string();
    if text.len() <= MAX_STORED_EVENT {
        return text;
    }
    let mut minimal = Map::new();
    for key in [
        "event_id",
        "timestamp",
        "level",
        "platform",
        "release",
        "environment",
        "message",
        "logentry",
        "fingerprint",
    ] {
        if let Some(v) = payload.get(key) {
            minimal.insert(key.into(), v.clone());
        }
    }
    minimal.insert("_shiplog_trimmed".into(), Value::Bool(true));
    let text = Value::Object(minimal).to_string();
    if text.len() <= MAX_STORED_EVENT {
        text
    } else {
        json!({"_shiplog_trimmed": true, "event_id": payload.get("event_id")}).to_string()
    }
}

// ------------------------------------------------------------------------------------------
// Ordering releases

/// Semver order of two release names, when both have a parseable version that is not a
/// build hash (Sentry's `compare_version` on `version_raw`).
pub fn semver_cmp(a: &str, b: &str) -> Option<Ordering> {
    if version::parse(a).build_hash.is_some() || version::parse(b).build_hash.is_some() {
        return None;
    }
    version::compare(a, b)
}

/// Sentry's `follows_semver_versioning_scheme` for a project: decided on its last 10
/// releases (by date added), and, when given, the version must itself be semver.
pub fn follows_semver(
    conn: &Connection,
    project_id: i64,
    release_version: Option<&str>,
) -> Result<bool, CoreError> {
    let flags = store::recent_semver_flags(conn, project_id)?;
    Ok(semver_scheme(&flags)
        && release_version.is_none_or(|v| v.contains('@') && version::semver_columns(v).is_some()))
}

/// Sentry's rule on the last (up to 10) releases, newest first, each flagged semver or not:
/// with 2 or fewer the newest must be semver; with fewer than 10 any of the newest 3; with
/// 10, any of the newest 3 and at least 3 in all.
fn semver_scheme(flags: &[bool]) -> bool {
    match flags.len() {
        0 => false,
        1 | 2 => flags[0],
        n if n < 10 => flags.iter().take(3).any(|f| *f),
        _ => flags.iter().take(3).any(|f| *f) && flags.iter().filter(|f| **f).count() >= 3,
    }
}

/// Sentry's `GroupResolution.has_resolution`: does the resolution cover an event from this
/// release (i.e. the release is older than the fix)?
fn has_resolution(
    conn: &Connection,
    org_id: i64,
    res: &Resolution,
    event_release: Option<&ReleaseOrder>,
) -> Result<bool, CoreError> {
    let Some(rel) = event_release else {
        // From "no release" to "some release": the event predates release tracking.
        return Ok(true);
    };
    let res_date = res
        .release_date_released
        .as_deref()
        .unwrap_or(&res.release_date_added);
    if let Some(current) = &res.current_release_version {
        if let Some(ord) = semver_cmp(current, &rel.version) {
            if ord != Ordering::Less {
                return Ok(true);
            }
            return Ok(semver_cmp(&res.release_version, &rel.version) == Some(Ordering::Greater));
        }
        if let Some(cur) = store::release_order_by_version(conn, org_id, current)? {
            return Ok(cur.id == rel.id || cur.order_date() > rel.order_date());
        }
    }
    match res.ty {
        None | Some(RES_IN_NEXT_RELEASE) => {
            Ok(res.release_id == rel.id || res_date > rel.order_date())
        }
        Some(RES_IN_RELEASE) => {
            if res.release_id == rel.id {
                return Ok(false);
            }
            if let Some(ord) = semver_cmp(&res.release_version, &rel.version) {
                return Ok(ord == Ordering::Greater);
            }
            Ok(res_date >= rel.order_date())
        }
        Some(_) => Ok(false),
    }
}

/// Sentry's `_handle_regression`; `true` when the issue was reopened.
fn handle_regression(
    tx: &Transaction<'_>,
    issue: &Issue,
    release: Option<&ReleaseOrder>,
    event_id: &str,
    when: &str,
) -> Result<bool, CoreError> {
    let resolution = store::resolution_of(tx, issue.id)?;
    if let Some(res) = &resolution
        && has_resolution(tx, issue.org_id, res, release)?
    {
        return Ok(false);
    }
    // A referencing commit that is in no release yet: the fix is still coming.
    if let Some((_, released)) = store::latest_link_of_issue(tx, issue)?
        && !released
    {
        return Ok(false);
    }
    let date = std::cmp::max(when, issue.last_seen.as_str()).to_string();
    if !store::set_status(tx, issue.id, STATUS_UNRESOLVED, Some("regressed"), &date)? {
        return Ok(false);
    }
    let version = release.map(|r| r.version.clone()).unwrap_or_default();
    let mut data = json!({ "event_id": event_id, "version": version });
    if let Some(res) = &resolution {
        store::delete_resolution(tx, issue.id)?;
        if let Some((activity_id, text)) = store::resolution_activity(tx, issue.id, res.id)? {
            let mut old: Value = serde_json::from_str(&text).unwrap_or_else(|_| json!({}));
            if old.get("version").and_then(Value::as_str) == Some("") {
                old["version"] = json!(version);
                store::set_activity_data(tx, activity_id, &old.to_string())?;
            }
        }
        if release.is_some_and(|rel| semver_cmp(&res.release_version, &rel.version).is_some()) {
            data["follows_semver"] = json!(true);
            data["resolved_in_version"] = json!(res.release_version);
        }
    }
    store::insert_activity(
        tx,
        &IssueActivity {
            org_id: issue.org_id,
            project_id: Some(issue.project_id),
            issue_id: Some(issue.id),
            release_id: release.map(|r| r.id),
            kind: ActivityType::SetRegression,
            ident: None,
            data,
            datetime: &date,
        },
    )?;
    Ok(true)
}

// ------------------------------------------------------------------------------------------
// Commits

/// Reads the Fixes grammar in these commits' messages and stores a link per referenced short
/// id (also when no such issue exists yet), with a REFERENCED_IN_COMMIT activity for each new
/// link. Links a message no longer makes are removed. Resolves nothing by itself.
pub fn link_commits(tx: &Transaction<'_>, org: &Org, commit_ids: &[i64]) -> Result<(), CoreError> {
    let now = super::now();
    let server_url = crate::store::settings::get(tx, crate::store::settings::PUBLIC_URL)?;
    for commit in store::commit_infos(tx, commit_ids)? {
        let message = commit.message.as_deref().unwrap_or("");
        let mut refs = issue_ref::find_references(message);
        // `Fixes <this server's issue URL>` names an issue by id: linked by its short id.
        if let Some(server_url) = &server_url {
            for id in issue_ref::find_url_references(message, server_url) {
                let Some(issue) = store::by_id(tx, org.id, id)? else {
                    continue;
                };
                let Ok(number) = u64::try_from(issue.short_id) else {
                    continue;
                };
                let text = issue_ref::ShortId::qualified(&issue.project_slug, number);
                if refs.iter().all(|r| r.text != text) {
                    refs.push(issue_ref::IssueRef {
                        short_id: Some(issue_ref::ShortId {
                            project_slug: issue.project_slug.clone(),
                            number,
                        }),
                        text,
                    });
                }
            }
        }
        let keep: Vec<String> = refs.iter().map(|r| r.text.clone()).collect();
        store::remove_stale_links(tx, commit.id, &keep)?;
        for r in &refs {
            let (slug, number) = match &r.short_id {
                Some(s) => (s.project_slug.clone(), i64::try_from(s.number).ok()),
                None => (
                    r.text
                        .rsplit_once(['-', '_'])
                        .map_or(String::new(), |(s, _)| s.to_lowercase()),
                    None,
                ),
            };
            if !store::insert_link(tx, org.id, commit.id, &r.text, &slug, number, &now)? {
                continue;
            }
            let issue = match number {
                Some(n) => store::by_short_id(tx, org.id, &slug, n)?,
                None => None,
            };
            let commit_ident = commit.id.to_string();
            store::insert_activity(
                tx,
                &IssueActivity {
                    org_id: org.id,
                    project_id: issue.as_ref().map(|i| i.project_id),
                    issue_id: issue.as_ref().map(|i| i.id),
                    release_id: None,
                    kind: ActivityType::ReferencedInCommit,
                    ident: Some(&commit_ident),
                    data: json!({ "commit": commit.id, "sha": commit.key, "shortId": r.text }),
                    datetime: &now,
                },
            )?;
        }
    }
    Ok(())
}

/// Sentry's `update_group_resolutions`, run when a release's commit list is set: links the
/// commits' references, then resolves in this release every existing issue that one of its
/// commits references.
pub fn on_release_commits(
    tx: &Transaction<'_>,
    org: &Org,
    release: &Release,
) -> Result<(), CoreError> {
    let commit_ids = store::commit_ids_of_release(tx, release.id)?;
    link_commits(tx, org, &commit_ids)?;
    resolve_linked(tx, org, release)
}

/// Resolves the issues the release's commits are linked to (already made by
/// [`link_commits`]) in the release, unless a link was applied to it already.
pub fn resolve_linked(tx: &Transaction<'_>, org: &Org, release: &Release) -> Result<(), CoreError> {
    let links = store::links_of_release(tx, release.id)?;
    // Only the linking commits' authors are needed (the actors), not every commit's.
    let linking: Vec<i64> = links.iter().map(|l| l.commit_id).collect();
    let authors: std::collections::HashMap<i64, Option<String>> =
        store::commit_infos(tx, &linking)?
            .into_iter()
            .map(|c| (c.id, c.author_email))
            .collect();
    let now = super::now();
    let mut done: Vec<i64> = Vec::new();
    for link in links {
        let Some(issue_id) = link.issue_id else {
            continue;
        };
        if link.resolved_release_id == Some(release.id) {
            continue;
        }
        store::mark_link_applied(tx, link.id, release.id)?;
        if done.contains(&issue_id) {
            continue;
        }
        done.push(issue_id);
        let Some(issue) = store::by_id(tx, org.id, issue_id)? else {
            continue;
        };
        let actor = authors.get(&link.commit_id).cloned().flatten();
        let (res_id, _) = store::upsert_resolution(
            tx,
            &SetResolution {
                issue_id,
                release_id: release.id,
                ty: RES_IN_RELEASE,
                status: RES_RESOLVED,
                current_release_version: None,
                actor: actor.as_deref(),
                now: &now,
            },
        )?;
        store::set_status(tx, issue_id, STATUS_RESOLVED, None, &now)?;
        let ident = res_id.to_string();
        store::insert_activity(
            tx,
            &IssueActivity {
                org_id: org.id,
                project_id: Some(issue.project_id),
                issue_id: Some(issue_id),
                release_id: Some(release.id),
                kind: ActivityType::SetResolvedInRelease,
                ident: Some(&ident),
                data: json!({ "version": release.version, "commit": link.commit_id }),
                datetime: &now,
            },
        )?;
        if issue.status != STATUS_RESOLVED {
            super::notify::enqueue_issue(
                tx,
                org.id,
                super::notify::ISSUE_RESOLVED,
                None,
                issue_id,
                Some(release.id),
                &now,
            )?;
        }
    }
    Ok(())
}

/// Sentry's `clear_expired_resolutions`, run when a release is created: pending "resolve in
/// next release" resolutions of older releases of the same projects resolve in this one.
pub fn clear_expired_resolutions(tx: &Transaction<'_>, release: &Release) -> Result<(), CoreError> {
    let now = super::now();
    for res in store::expired_resolutions(tx, release.id, &release.date_added)? {
        store::upsert_resolution(
            tx,
            &SetResolution {
                issue_id: res.issue_id,
                release_id: release.id,
                ty: RES_IN_RELEASE,
                status: RES_RESOLVED,
                current_release_version: res.current_release_version.as_deref(),
                actor: res.actor.as_deref(),
                now: &now,
            },
        )?;
        if let Some((activity_id, text)) = store::resolution_activity(tx, res.issue_id, res.id)? {
            let mut data: Value = serde_json::from_str(&text).unwrap_or_else(|_| json!({}));
            data["version"] = json!(release.version);
            store::set_activity_data(tx, activity_id, &data.to_string())?;
        }
    }
    Ok(())
}

/// Sentry refuses to delete a release that issues first appeared in.
pub fn check_release_deletable(conn: &Connection, release: &Release) -> Result<(), CoreError> {
    if store::release_has_first_issues(conn, release.id)? {
        return Err(CoreError::Invalid {
            field: None,
            detail: "This release is referenced by active issues and cannot be removed.".into(),
        });
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------
// Lookup, status changes, lists

/// The issue named by numeric id or short id (`WEB-1A`), or a 404 naming it.
pub fn find(conn: &Connection, org: &Org, id: &str) -> Result<Issue, CoreError> {
    let id = id.trim();
    let not_found = || {
        CoreError::NotFound(format!(
            "Issue '{id}' not found (use a numeric id or a short id like WEB-1A; see `shiplog issues list`)"
        ))
    };
    if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) {
        let n: i64 = id.parse().map_err(|_| not_found())?;
        return store::by_id(conn, org.id, n)?.ok_or_else(not_found);
    }
    let sid = ShortId::parse(id).ok_or_else(not_found)?;
    let n = i64::try_from(sid.number).map_err(|_| not_found())?;
    store::by_short_id(conn, org.id, &sid.project_slug, n)?.ok_or_else(not_found)
}

/// A status change as the API's PUT expresses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusChange {
    /// `status: resolved` with no details.
    Resolved,
    /// `statusDetails.inRelease`: a version, or `latest`.
    ResolvedInRelease(String),
    /// `status: resolvedInNextRelease`; `explicit` when `statusDetails.inNextRelease` was
    /// given, which requires a release to exist.
    ResolvedInNextRelease {
        explicit: bool,
    },
    /// `statusDetails.inCommit`: resolved by this commit of this repository (by name), in the
    /// release that contains it.
    ResolvedInCommit {
        commit: String,
        repository: String,
    },
    Unresolved,
    Ignored,
}

/// Applies a status change (Sentry's `update_groups` for one issue).
pub fn update_status(
    tx: &Transaction<'_>,
    org: &Org,
    issue: &Issue,
    change: &StatusChange,
    actor: Option<&str>,
) -> Result<Issue, CoreError> {
    let now = super::now();
    let activity = |kind: ActivityType, ident: Option<&str>, data: Value, release_id| {
        store::insert_activity(
            tx,
            &IssueActivity {
                org_id: org.id,
                project_id: Some(issue.project_id),
                issue_id: Some(issue.id),
                release_id,
                kind,
                ident,
                data,
                datetime: &now,
            },
        )
    };
    let no_release_data = || {
        CoreError::invalid(
            "statusDetails",
            "No release data present in the system to form a basis for 'Next Release'",
        )
    };
    match change {
        StatusChange::Unresolved | StatusChange::Ignored => {
            let (status, sub, kind) = if *change == StatusChange::Unresolved {
                (STATUS_UNRESOLVED, "ongoing", ActivityType::SetUnresolved)
            } else {
                (STATUS_IGNORED, "archived_forever", ActivityType::SetIgnored)
            };
            store::delete_resolution(tx, issue.id)?;
            if store::set_status(tx, issue.id, status, Some(sub), &now)? {
                activity(kind, None, json!({}), None)?;
            }
        }
        StatusChange::Resolved => {
            if store::set_status(tx, issue.id, STATUS_RESOLVED, None, &now)? {
                activity(ActivityType::SetResolved, None, json!({}), None)?;
            }
        }
        StatusChange::ResolvedInCommit { commit, repository } => {
            let invalid = |message: &str| CoreError::invalid("statusDetails", message);
            let repo = crate::store::repos::by_name(tx, org.id, repository)?
                .ok_or_else(|| invalid("Unable to find the given repository."))?;
            let commit_id = store::commit_id_by_key(tx, repo.id, commit)?
                .ok_or_else(|| invalid("Unable to find the given commit."))?;
            let short = ShortId::qualified(
                &issue.project_slug,
                u64::try_from(issue.short_id).unwrap_or_default(),
            );
            // The link resolves the issue in whichever release gets the commit next
            // (`on_release_commits`); a release that has it already resolves it now.
            store::insert_manual_link(
                tx,
                org.id,
                commit_id,
                &short,
                &issue.project_slug,
                issue.short_id,
                &now,
            )?;
            store::set_status(tx, issue.id, STATUS_RESOLVED, None, &now)?;
            activity(
                ActivityType::SetResolvedInCommit,
                Some(&commit_id.to_string()),
                json!({ "commit": commit_id }),
                None,
            )?;
            if let Some(release_id) = store::latest_release_with_commit(tx, commit_id)? {
                store::upsert_resolution(
                    tx,
                    &SetResolution {
                        issue_id: issue.id,
                        release_id,
                        ty: RES_IN_RELEASE,
                        status: RES_RESOLVED,
                        current_release_version: None,
                        actor,
                        now: &now,
                    },
                )?;
            }
        }
        StatusChange::ResolvedInRelease(v) => {
            let release = if v == "latest" {
                store::most_recent_release(tx, issue.project_id)?.ok_or_else(no_release_data)?
            } else {
                store::release_order_by_version(tx, org.id, v)?
                    .filter(|r| {
                        crate::store::releases::project_ids(tx, r.id)
                            .map(|ids| ids.contains(&issue.project_id))
                            .unwrap_or(false)
                    })
                    .ok_or_else(|| {
                        CoreError::invalid(
                            "statusDetails",
                            "Unable to find a release with the given version.",
                        )
                    })?
            };
            let (res_id, created) = store::upsert_resolution(
                tx,
                &SetResolution {
                    issue_id: issue.id,
                    release_id: release.id,
                    ty: RES_IN_RELEASE,
                    status: RES_RESOLVED,
                    current_release_version: None,
                    actor,
                    now: &now,
                },
            )?;
            store::set_status(tx, issue.id, STATUS_RESOLVED, None, &now)?;
            if created {
                let ident = res_id.to_string();
                activity(
                    ActivityType::SetResolvedInRelease,
                    Some(&ident),
                    json!({ "version": release.version }),
                    Some(release.id),
                )?;
            }
        }
        StatusChange::ResolvedInNextRelease { explicit } => {
            let semver = follows_semver(tx, issue.project_id, None)?;
            let release = if semver {
                store::greatest_semver_release(tx, issue.project_id)?
            } else {
                store::most_recent_release(tx, issue.project_id)?
            };
            if *explicit && release.is_none() {
                return Err(no_release_data());
            }
            let mut data = json!({ "version": "" });
            let Some(mut release) = release else {
                if store::set_status(tx, issue.id, STATUS_RESOLVED, None, &now)? {
                    activity(ActivityType::SetResolvedInRelease, None, data, None)?;
                }
                return refreshed(tx, org, issue);
            };
            let (mut ty, mut status) = (RES_IN_NEXT_RELEASE, RES_PENDING);
            let current = if semver {
                store::greatest_semver_release(tx, issue.project_id)?.map(|r| r.version)
            } else {
                match issue.last_release_id {
                    Some(id) => store::release_order(tx, id)?.map(|r| r.version),
                    None => None,
                }
            };
            if let Some(cur) = &current {
                if semver {
                    data["current_release_version"] = json!(cur);
                    (ty, status) = (RES_IN_RELEASE, RES_RESOLVED);
                } else if let Some(cur_obj) = store::release_order_by_version(tx, org.id, cur)?
                    && let Some(next) = store::next_release_by_date(tx, issue.project_id, &cur_obj)?
                {
                    data["version"] = json!(next.version);
                    release = next;
                    (ty, status) = (RES_IN_RELEASE, RES_RESOLVED);
                }
            }
            let (res_id, created) = store::upsert_resolution(
                tx,
                &SetResolution {
                    issue_id: issue.id,
                    release_id: release.id,
                    ty,
                    status,
                    current_release_version: current.as_deref(),
                    actor,
                    now: &now,
                },
            )?;
            store::set_status(tx, issue.id, STATUS_RESOLVED, None, &now)?;
            if created {
                let ident = res_id.to_string();
                activity(
                    ActivityType::SetResolvedInRelease,
                    Some(&ident),
                    data,
                    Some(release.id),
                )?;
            }
        }
    }
    let updated = refreshed(tx, org, issue)?;
    if issue.status != STATUS_RESOLVED && updated.status == STATUS_RESOLVED {
        super::notify::enqueue_issue(
            tx,
            org.id,
            super::notify::ISSUE_RESOLVED,
            None,
            issue.id,
            None,
            &now,
        )?;
    }
    Ok(updated)
}

fn refreshed(conn: &Connection, org: &Org, issue: &Issue) -> Result<Issue, CoreError> {
    store::by_id(conn, org.id, issue.id)?
        .ok_or_else(|| CoreError::NotFound(format!("Issue '{}' not found", issue.id)))
}

/// An issue with what the API shows next to it.
#[derive(Debug, Clone)]
pub struct IssueView {
    pub issue: Issue,
    pub first_release: Option<ReleaseOrder>,
    pub last_release: Option<ReleaseOrder>,
    pub resolution: Option<Resolution>,
}

/// Loads the views of issues, keeping their order.
pub fn views(conn: &Connection, issues: Vec<Issue>) -> Result<Vec<IssueView>, CoreError> {
    let mut out = Vec::with_capacity(issues.len());
    for issue in issues {
        let first_release = match issue.first_release_id {
            Some(id) => store::release_order(conn, id)?,
            None => None,
        };
        let last_release = match issue.last_release_id {
            Some(id) => store::release_order(conn, id)?,
            None => None,
        };
        let resolution = store::resolution_of(conn, issue.id)?;
        out.push(IssueView {
            issue,
            first_release,
            last_release,
            resolution,
        });
    }
    Ok(out)
}

/// An issue list request as the API receives it.
#[derive(Debug, Clone, Default)]
pub struct ListRequest {
    pub projects: Vec<ProjectRef>,
    /// Sentry's search: `is:unresolved|resolved|ignored|regressed`, `release:V`,
    /// `firstRelease:V`, free text. `None` means Sentry's default, `is:unresolved`.
    pub query: Option<String>,
    pub sort: Option<String>,
    pub per_page: Option<String>,
    pub cursor: Option<String>,
}

/// Lists issues per Sentry's organization issues endpoint.
pub fn list(conn: &Connection, org: &Org, req: &ListRequest) -> Result<Page<Issue>, CoreError> {
    let projects = super::org::resolve_projects(conn, org.id, &req.projects)?;
    let mut q = IssueQuery {
        org_id: org.id,
        project_ids: projects.iter().map(|p| p.id).collect(),
        ..Default::default()
    };
    let query = req.query.clone().unwrap_or_else(|| "is:unresolved".into());
    let mut free: Vec<String> = Vec::new();
    for token in crate::model::search::tokenize(&query) {
        let (key, value) = match token.split_once(':') {
            Some((k, v)) => (k, v),
            None => {
                free.push(token);
                continue;
            }
        };
        match key {
            "is" => match value {
                "unresolved" => q.statuses.push(STATUS_UNRESOLVED),
                "resolved" => q.statuses.push(STATUS_RESOLVED),
                "ignored" | "archived" | "muted" => q.statuses.push(STATUS_IGNORED),
                "regressed" | "new" | "ongoing" => {
                    q.statuses.push(STATUS_UNRESOLVED);
                    q.substatus = Some(value.to_string());
                }
                other => {
                    return Err(CoreError::invalid(
                        "query",
                        format!(
                            "Invalid value for is: \"{other}\" (expected unresolved, resolved, ignored, regressed, new or ongoing)"
                        ),
                    ));
                }
            },
            "release" | "release.version" => {
                // An unknown release matches no issue, as in Sentry.
                q.release_id = Some(
                    store::release_order_by_version(conn, org.id, value)?.map_or(-1, |r| r.id),
                );
            }
            "firstRelease" | "first-release" | "first_release" => {
                q.first_release_id = Some(
                    store::release_order_by_version(conn, org.id, value)?.map_or(-1, |r| r.id),
                );
            }
            _ => free.push(token.clone()),
        }
    }
    if !free.is_empty() {
        q.text = Some(free.join(" "));
    }
    q.sort = match req.sort.as_deref() {
        None | Some("") | Some("date") => IssueSort::LastSeen,
        Some("new") => IssueSort::FirstSeen,
        Some("freq") => IssueSort::Frequency,
        Some(other) => {
            return Err(CoreError::invalid(
                "sort",
                format!("Invalid sort: \"{other}\" (expected date, new or freq)"),
            ));
        }
    };
    let per_page = release::parse_per_page(req.per_page.as_deref())?;
    let page = Cursor::page_number(req.cursor.as_deref())?;
    q.limit = per_page;
    q.offset = (page as usize).saturating_mul(per_page);
    let mut items = store::list(conn, &q)?;
    let has_next = items.len() > per_page;
    items.truncate(per_page);
    let (prev, next) = Cursor::around_page(per_page, page, has_next);
    Ok(Page { items, prev, next })
}

/// The issues resolved in a release (Sentry's issues-resolved-in-release endpoint).
pub fn resolved_in_release(
    conn: &Connection,
    org: &Org,
    version: &str,
) -> Result<Vec<Issue>, CoreError> {
    let release = release::get(conn, org, version)?;
    let mut out = Vec::new();
    for id in store::resolved_in_release(conn, release.id)? {
        if let Some(issue) = store::by_id(conn, org.id, id)? {
            out.push(issue);
        }
    }
    Ok(out)
}

/// The DSN of a project: `http://<public key>@<host:port>/<project id>`.
pub fn dsn(conn: &Connection, project: &Project, public_url: &str) -> Result<String, CoreError> {
    let key = store::public_key(conn, project.id)?.ok_or_else(|| {
        CoreError::NotFound(format!("project {} has no active DSN key", project.slug))
    })?;
    let url = public_url.trim_end_matches('/');
    let (scheme, rest) = url.split_once("://").unwrap_or(("http", url));
    let host = rest.split('/').next().unwrap_or(rest);
    Ok(format!("{scheme}://{key}@{host}/{}", project.id))
}

// ------------------------------------------------------------------------------------------
// Suspect commits

/// One suspect author with their commits and each commit's path-match score.
#[derive(Debug, Clone, PartialEq)]
pub struct Committer {
    pub author_name: Option<String>,
    pub author_email: Option<String>,
    pub commits: Vec<(store::CommitInfo, usize)>,
}

/// Sentry's event file committers (§9.1) for one event of a project: the authors of the
/// commits, in the issue's first release and the 4 releases before it, that touched the files
/// of the event's stack frames.
pub fn event_committers(
    conn: &Connection,
    org: &Org,
    project: &Project,
    event_id: &str,
) -> Result<Vec<Committer>, CoreError> {
    use crate::model::suspects;
    let event_id = normalize_event_id(event_id)
        .ok_or_else(|| CoreError::NotFound("Event not found".into()))?;
    let (issue_id, frames, platform) = store::event_frames(conn, project.id, &event_id)?
        .ok_or_else(|| CoreError::NotFound("Event not found".into()))?;
    let issue = store::by_id(conn, org.id, issue_id)?
        .ok_or_else(|| CoreError::NotFound("Issue not found".into()))?;
    let first = issue
        .first_release_id
        .ok_or_else(|| CoreError::NotFound("Release not found".into()))?;
    let releases = store::previous_releases(conn, project.id, first, 5)?;
    if releases.is_empty() {
        return Err(CoreError::NotFound("Release not found".into()));
    }
    if !store::releases_have_commits(conn, &releases)? {
        return Err(CoreError::NotFound("No Commits found for Release".into()));
    }
    let frames: Vec<crate::model::event::Frame> = serde_json::from_str(&frames).unwrap_or_default();
    let chosen = suspects::app_frames(&frames);
    let paths: Vec<Option<String>> = chosen
        .iter()
        .map(|f| suspects::frame_path(f, platform.as_deref()))
        .collect();
    let distinct: Vec<String> = {
        let mut d: Vec<String> = Vec::new();
        for p in paths.iter().flatten() {
            if !d.contains(p) {
                d.push(p.clone());
            }
        }
        d
    };
    let changes = store::matching_file_changes(conn, &releases, &suspects::file_names(&distinct))?;
    let frame_matches: Vec<Vec<(i64, usize)>> = paths
        .iter()
        .map(|p| match p {
            Some(p) => suspects::match_commits_path(&changes, p),
            None => Vec::new(),
        })
        .collect();
    let mut ids: Vec<i64> = frame_matches.iter().flatten().map(|(c, _)| *c).collect();
    ids.sort_unstable();
    ids.dedup();
    let infos = store::commit_infos(conn, &ids)?;
    let author_of: std::collections::HashMap<i64, i64> = infos
        .iter()
        .filter_map(|c| c.author_id.map(|a| (c.id, a)))
        .collect();
    Ok(suspects::committers(&frame_matches, &author_of)
        .into_iter()
        .map(|(_, commits)| {
            let commits: Vec<(store::CommitInfo, usize)> = commits
                .into_iter()
                .filter_map(|(id, score)| {
                    infos
                        .iter()
                        .find(|c| c.id == id)
                        .map(|c| (c.clone(), score))
                })
                .collect();
            let first = commits.first().map(|(c, _)| c.clone());
            Committer {
                author_name: first.as_ref().and_then(|c| c.author_name.clone()),
                author_email: first.and_then(|c| c.author_email),
                commits,
            }
        })
        .collect())
}

/// Who hears of a new issue or a regression: the authors of its suspect commits (Sentry's event
/// file committers of its latest event), else the authors of the release it appeared in. An
/// issue with no suspects (no commits, or no frame matches a changed file) falls back to the
/// release, as Sentry's issue alerts do.
pub fn mail_committers(
    conn: &Connection,
    org: &Org,
    issue_id: i64,
    release_id: Option<i64>,
) -> Result<Vec<String>, CoreError> {
    if let Some(event) = store::events_of(conn, issue_id, 1)?.into_iter().next()
        && let Some(project) = crate::store::orgs::project_by_id(conn, org.id, event.project_id)?
    {
        match event_committers(conn, org, &project, &event.event_id) {
            Ok(suspects) => {
                let emails: Vec<String> = suspects
                    .into_iter()
                    .filter_map(|c| c.author_email)
                    .collect();
                if !emails.is_empty() {
                    return Ok(emails);
                }
            }
            Err(CoreError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    let Some(release_id) = release_id else {
        return Ok(Vec::new());
    };
    Ok(
        store::release_authors(conn, release_id, super::notes::MAX_LISTED)?
            .into_iter()
            .map(|(email, _, _)| email)
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::model::commit::CommitData;
    use crate::store::{Store, orgs, repos};

    fn seeded() -> (tempfile::TempDir, Store, Org, Project) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_dir(dir.path()).unwrap();
        let (org, project) = store
            .write_blocking(|tx| {
                let org = orgs::ensure_org(tx, "acme", "2024-01-01T00:00:00.000000Z")?;
                let p = orgs::upsert_project(
                    tx,
                    org.id,
                    "web",
                    "Web",
                    None,
                    "2024-01-01T00:00:00.000000Z",
                )?;
                Ok::<_, CoreError>((org, p))
            })
            .unwrap();
        (dir, store, org, project)
    }

    fn commit(id: char, message: &str) -> CommitData {
        CommitData {
            id: id.to_string().repeat(40),
            repository: Some("acme/web".into()),
            message: Some(message.into()),
            author_name: Some("Dev".into()),
            author_email: Some("dev@acme.test".into()),
            timestamp: Some("2024-01-02T10:00:00Z".into()),
            patch_set: Vec::new(),
        }
    }

    /// A commit recorded without a release (a post-commit hook, a GitHub push) links the
    /// issue and logs REFERENCED_IN_COMMIT, but resolves only when a release ships it.
    #[test]
    fn a_recorded_commit_links_but_only_a_release_resolves() {
        let (_dir, store, org, project) = seeded();
        let event: Map<String, Value> =
            serde_json::from_value(json!({"message": "boom", "release": "1.0"})).unwrap();
        let (o, p) = (org.clone(), project.clone());
        let ingested = store
            .write_blocking(move |tx| ingest_event(tx, &o, &p, &event, None, Utc::now()))
            .unwrap();
        assert_eq!(ingested.short_id, "WEB-1");

        let o = org.clone();
        store
            .write_blocking(move |tx| {
                let repo =
                    repos::get_or_create(tx, o.id, "acme/web", "2024-01-01T00:00:00.000000Z")?;
                let ids = crate::core::commit::record_commits(
                    tx,
                    &o,
                    &repo,
                    &[
                        commit('a', "Fix the thing\n\nFixes WEB-1"),
                        commit('b', "unrelated"),
                    ],
                )?;
                link_commits(tx, &o, &ids)?;
                // Linking again is idempotent.
                link_commits(tx, &o, &ids)
            })
            .unwrap();
        let (status, referenced, links) = store
            .read_blocking(|c| {
                let status: i64 = c.query_row("SELECT status FROM issues", [], |r| r.get(0))?;
                let referenced: i64 = c.query_row(
                    "SELECT count(*) FROM activities WHERE type = 28 AND issue_id = 1",
                    [],
                    |r| r.get(0),
                )?;
                let links: i64 =
                    c.query_row("SELECT count(*) FROM issue_commit_links", [], |r| r.get(0))?;
                Ok::<_, CoreError>((status, referenced, links))
            })
            .unwrap();
        assert_eq!((status, referenced, links), (STATUS_UNRESOLVED, 1, 1));

        let o = org.clone();
        let resolved = store
            .write_blocking(move |tx| {
                let up = release::upsert(
                    tx,
                    &o,
                    &CreateRelease {
                        version: "1.1".into(),
                        projects: vec![ProjectRef::Slug("web".into())],
                        ..Default::default()
                    },
                    &super::super::now(),
                )?;
                crate::core::commit::set_commits(
                    tx,
                    &o,
                    &up.release,
                    &[commit('a', "Fix the thing\n\nFixes WEB-1")],
                )?;
                let issue = find(tx, &o, "WEB-1")?;
                Ok::<_, CoreError>((issue.status, store::resolution_of(tx, issue.id)?))
            })
            .unwrap();
        assert_eq!(resolved.0, STATUS_RESOLVED);
        let res = resolved.1.unwrap();
        assert_eq!(
            (res.release_version.as_str(), res.ty, res.status),
            ("1.1", Some(RES_IN_RELEASE), RES_RESOLVED)
        );
        assert_eq!(res.actor.as_deref(), Some("dev@acme.test"));
    }

    #[test]
    fn semver_scheme_follows_sentrys_thresholds() {
        let (t, f) = (true, false);
        assert!(!semver_scheme(&[]));
        assert!(semver_scheme(&[t]));
        assert!(!semver_scheme(&[f, t]));
        assert!(semver_scheme(&[f, f, t, f, f]));
        assert!(!semver_scheme(&[f, f, f, t, t, t]));
        assert!(semver_scheme(&[f, f, t, f, f, f, f, f, t, t]));
        assert!(!semver_scheme(&[f, f, t, f, f, f, f, f, f, t]));
    }

    #[test]
    fn semver_comparison_needs_two_semver_versions_and_no_hashes() {
        assert_eq!(semver_cmp("1.2", "1.10"), Some(Ordering::Less));
        assert_eq!(
            semver_cmp("web@2.0.0", "web@1.9.9"),
            Some(Ordering::Greater)
        );
        assert_eq!(semver_cmp("alpha", "1.0"), None);
        assert_eq!(semver_cmp("a86d127c4b2f", "1.0"), None);
    }

    #[test]
    fn large_payloads_are_stored_trimmed() {
        let small: Map<String, Value> =
            serde_json::from_value(json!({"event_id": "a", "message": "m"})).unwrap();
        assert_eq!(
            stored_payload(&small),
            Value::Object(small.clone()).to_string()
        );

        let crumbs: Vec<Value> = (0..5000)
            .map(|i| json!({"message": format!("crumb {i}")}))
            .collect();
        let big: Map<String, Value> = serde_json::from_value(json!({
            "event_id": "a", "message": "m", "breadcrumbs": {"values": crumbs},
            "exception": {"values": [{"type": "E", "value": "v"}]},
        }))
        .unwrap();
        let stored: Value = serde_json::from_str(&stored_payload(&big)).unwrap();
        assert_eq!(stored["_shiplog_trimmed"], true);
        assert!(stored.get("breadcrumbs").is_none());
        assert_eq!(stored["exception"]["values"][0]["type"], "E");

        let huge: Map<String, Value> = serde_json::from_value(json!({
            "event_id": "a", "message": "m", "tags": {"blob": "x".repeat(100_000)},
        }))
        .unwrap();
        let stored: Value = serde_json::from_str(&stored_payload(&huge)).unwrap();
        assert_eq!(
            stored,
            json!({"event_id": "a", "message": "m", "_shiplog_trimmed": true})
        );
    }

    /// An issue made before grouping version 2 keeps its events after the upgrade, both ways
    /// of hashing them find it during the transition, and its users are counted from the
    /// events it already had.
    #[test]
    fn an_upgrade_regroups_nothing() {
        use crate::model::grouping::{GROUPING_VERSION, LEGACY_GROUPING_VERSION};

        let error = |function: &str| -> Map<String, Value> {
            serde_json::from_value(json!({
                "platform": "python",
                "exception": {"values": [{"type": "ZeroDivisionError", "value": "division by zero",
                    "stacktrace": {"frames": [
                        {"module": "shop", "function": function, "in_app": true}]}}]},
                "user": {"id": function},
            }))
            .unwrap()
        };
        let v1 = Event::from_json(&error("pay")).unwrap().grouping().hashes[1].clone();
        assert_eq!(v1.version, LEGACY_GROUPING_VERSION);

        // The database as shiplog left it before migration 0015, with one issue and an event.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("upgrade.db");
        {
            let mut conn = Connection::open(&path).unwrap();
            crate::store::migrate_first(&mut conn, 9).unwrap();
            let t = "2026-01-01T00:00:00.000000Z";
            conn.execute_batch(&format!(
                "INSERT INTO organizations (id, slug, name, date_added) VALUES (1, 'acme', 'Acme', '{t}');
                 INSERT INTO projects (id, org_id, slug, name, date_added) VALUES (1, 1, 'web', 'Web', '{t}');
                 INSERT INTO issues (id, org_id, project_id, short_id, fingerprint, title, first_seen,
                     last_seen, active_at, times_seen)
                     VALUES (1, 1, 1, 1, '{}', 'ZeroDivisionError: division by zero', '{t}', '{t}', '{t}', 1);
                 INSERT INTO issue_counters (project_id, value) VALUES (1, 1);
                 INSERT INTO events (event_id, project_id, issue_id, timestamp, received, data)
                     VALUES ('{}', 1, 1, '{t}', '{t}', '{{\"user\": {{\"email\": \"old@example.com\"}}}}');",
                v1.hash,
                "a".repeat(32),
            ))
            .unwrap();
        }
        let store = Store::open(&path).unwrap();
        let (org, project) = store
            .read_blocking(|c| {
                let org = crate::store::orgs::org_by_slug(c, "acme")?.unwrap();
                let project = crate::store::orgs::project_by_slug(c, org.id, "web")?.unwrap();
                Ok::<_, CoreError>((org, project))
            })
            .unwrap();
        let ingest = |payload: Map<String, Value>| {
            let (o, p) = (org.clone(), project.clone());
            store
                .write_blocking(move |tx| ingest_event(tx, &o, &p, &payload, None, Utc::now()))
                .unwrap()
        };
        let issue = |id: i64| {
            let o = org.clone();
            store
                .read_blocking(move |c| store::by_id(c, o.id, id))
                .unwrap()
                .unwrap()
        };
        let old = issue(1);
        assert_eq!(old.grouping_version, LEGACY_GROUPING_VERSION);
        assert_eq!(old.user_count, 1);

        // Version 2 tells pay() from refund(); the old issue had both, and keeps them.
        assert_eq!(ingest(error("pay")).issue_id, 1);
        assert_eq!(ingest(error("refund")).issue_id, 1);
        assert_eq!(issue(1).user_count, 3);
        // An error the old issue never had opens a new issue of the current version.
        let mut other = error("ship");
        other["exception"]["values"][0]["type"] = json!("KeyError");
        let new = ingest(other);
        assert!(new.created);
        assert_eq!(issue(new.issue_id).grouping_version, GROUPING_VERSION);

        // After the transition the old hash finds nothing, but the current hashes the old
        // issue took on during it still do.
        store
            .write_blocking(|tx| {
                tx.execute(
                    "UPDATE issue_hashes SET expires = '2000-01-01T00:00:00Z' WHERE expires IS NOT NULL",
                    [],
                )?;
                Ok::<_, CoreError>(())
            })
            .unwrap();
        assert_eq!(ingest(error("pay")).issue_id, 1);
        assert!(ingest(error("checkout")).created);
    }
}
