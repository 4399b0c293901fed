//! Issues, their events, DSN keys, commit links and resolutions (migration 0005). The hashes
//! and users of issues are in [`super::grouping`].

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};

use super::StoreError;
use super::orgs::{Org, Project};
use crate::model::activity::ActivityType;

/// Sentry's GroupStatus values.
pub const STATUS_UNRESOLVED: i64 = 0;
pub const STATUS_RESOLVED: i64 = 1;
pub const STATUS_IGNORED: i64 = 2;

/// GroupResolution types and statuses.
pub const RES_IN_RELEASE: i64 = 0;
pub const RES_IN_NEXT_RELEASE: i64 = 1;
pub const RES_PENDING: i64 = 0;
pub const RES_RESOLVED: i64 = 1;

// ------------------------------------------------------------------------------------------
// DSN keys

/// The project (and its organization) whose DSN public key this is, if the key is active.
pub fn project_by_public_key(
    conn: &Connection,
    key: &str,
) -> Result<Option<(Org, Project)>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT p.id, p.org_id, p.slug, p.name, p.platform, o.slug, o.name, o.date_added
             FROM project_keys k JOIN projects p ON p.id = k.project_id
             JOIN organizations o ON o.id = p.org_id
             WHERE k.public_key = ?1 AND k.status = 0",
        )?
        .query_row([key], |r| {
            Ok((
                Org {
                    id: r.get(1)?,
                    slug: r.get(5)?,
                    name: r.get(6)?,
                    date_added: r.get(7)?,
                },
                Project {
                    id: r.get(0)?,
                    org_id: r.get(1)?,
                    slug: r.get(2)?,
                    name: r.get(3)?,
                    platform: r.get(4)?,
                },
            ))
        })
        .optional()?)
}

/// The active public key of a project (the oldest, when it has several).
pub fn public_key(conn: &Connection, project_id: i64) -> Result<Option<String>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT public_key FROM project_keys WHERE project_id = ?1 AND status = 0
             ORDER BY id LIMIT 1",
        )?
        .query_row([project_id], |r| r.get(0))
        .optional()?)
}

/// Whether a project with this id exists at all (to tell a wrong key from a wrong project).
pub fn project_exists(conn: &Connection, project_id: i64) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM projects WHERE id = ?1")?
        .query_row([project_id], |_| Ok(()))
        .optional()?
        .is_some())
}

// ------------------------------------------------------------------------------------------
// Issues

/// An issue row, with its project's slug and name.
#[derive(Debug, Clone, PartialEq)]
pub struct Issue {
    pub id: i64,
    pub org_id: i64,
    pub project_id: i64,
    pub project_slug: String,
    pub project_name: String,
    pub project_platform: Option<String>,
    pub short_id: i64,
    pub fingerprint: String,
    pub title: String,
    pub culprit: Option<String>,
    pub level: String,
    pub ty: String,
    pub platform: Option<String>,
    pub metadata: String,
    pub status: i64,
    pub substatus: Option<String>,
    pub first_seen: String,
    pub last_seen: String,
    pub active_at: String,
    pub resolved_at: Option<String>,
    pub times_seen: i64,
    pub first_release_id: Option<i64>,
    pub last_release_id: Option<i64>,
    /// The grouping version the issue was created with (`model::grouping`).
    pub grouping_version: i64,
    /// Distinct users seen in its events (Sentry's `userCount`).
    pub user_count: i64,
}

impl Issue {
    /// `WEB-1A`.
    pub fn qualified_short_id(&self) -> String {
        crate::model::issue_ref::ShortId::qualified(
            &self.project_slug,
            u64::try_from(self.short_id).unwrap_or(0),
        )
    }
}

const COLUMNS: &str = "i.id, i.org_id, i.project_id, p.slug, p.name, p.platform, i.short_id, \
    i.fingerprint, i.title, i.culprit, i.level, i.type, i.platform, i.metadata, i.status, \
    i.substatus, i.first_seen, i.last_seen, i.active_at, i.resolved_at, i.times_seen, \
    i.first_release_id, i.last_release_id, i.grouping_version, i.user_count";

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Issue> {
    Ok(Issue {
        id: r.get(0)?,
        org_id: r.get(1)?,
        project_id: r.get(2)?,
        project_slug: r.get(3)?,
        project_name: r.get(4)?,
        project_platform: r.get(5)?,
        short_id: r.get(6)?,
        fingerprint: r.get(7)?,
        title: r.get(8)?,
        culprit: r.get(9)?,
        level: r.get(10)?,
        ty: r.get(11)?,
        platform: r.get(12)?,
        metadata: r.get(13)?,
        status: r.get(14)?,
        substatus: r.get(15)?,
        first_seen: r.get(16)?,
        last_seen: r.get(17)?,
        active_at: r.get(18)?,
        resolved_at: r.get(19)?,
        times_seen: r.get(20)?,
        first_release_id: r.get(21)?,
        last_release_id: r.get(22)?,
        grouping_version: r.get(23)?,
        user_count: r.get(24)?,
    })
}

fn one(conn: &Connection, wheres: &str, args: &[SqlValue]) -> Result<Option<Issue>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM issues i JOIN projects p ON p.id = i.project_id WHERE {wheres}"
    );
    Ok(conn
        .prepare_cached(&sql)?
        .query_row(params_from_iter(args.iter()), from_row)
        .optional()?)
}

pub fn by_id(conn: &Connection, org_id: i64, id: i64) -> Result<Option<Issue>, StoreError> {
    one(
        conn,
        "i.org_id = ?1 AND i.id = ?2",
        &[SqlValue::Integer(org_id), SqlValue::Integer(id)],
    )
}

/// The issue `SLUG-<number>` of an organization.
pub fn by_short_id(
    conn: &Connection,
    org_id: i64,
    project_slug: &str,
    number: i64,
) -> Result<Option<Issue>, StoreError> {
    one(
        conn,
        "i.org_id = ?1 AND p.slug = ?2 AND i.short_id = ?3",
        &[
            SqlValue::Integer(org_id),
            SqlValue::Text(project_slug.to_string()),
            SqlValue::Integer(number),
        ],
    )
}

/// Takes the next short-id counter value of a project (1, 2, ...).
pub fn next_short_id(conn: &Connection, project_id: i64) -> Result<i64, StoreError> {
    Ok(conn
        .prepare_cached(
            "INSERT INTO issue_counters (project_id, value) VALUES (?1, 1)
             ON CONFLICT (project_id) DO UPDATE SET value = value + 1
             RETURNING value",
        )?
        .query_row([project_id], |r| r.get(0))?)
}

/// What a new issue starts with.
#[derive(Debug, Clone)]
pub struct NewIssue<'a> {
    pub org_id: i64,
    pub project_id: i64,
    pub short_id: i64,
    pub fingerprint: &'a str,
    pub title: &'a str,
    pub culprit: Option<&'a str>,
    pub level: &'a str,
    pub ty: &'a str,
    pub platform: Option<&'a str>,
    pub metadata: &'a str,
    pub seen: &'a str,
    pub release_id: Option<i64>,
    pub grouping_version: i64,
}

pub fn insert(conn: &Connection, n: &NewIssue<'_>) -> Result<i64, StoreError> {
    conn.prepare_cached(
        "INSERT INTO issues (org_id, project_id, short_id, fingerprint, title, culprit, level,
             type, platform, metadata, status, substatus, first_seen, last_seen, active_at,
             times_seen, first_release_id, last_release_id, grouping_version)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 0, 'new', ?11, ?11, ?11, 0, ?12, ?12,
                 ?13)",
    )?
    .execute(params![
        n.org_id,
        n.project_id,
        n.short_id,
        n.fingerprint,
        n.title,
        n.culprit,
        n.level,
        n.ty,
        n.platform,
        n.metadata,
        n.seen,
        n.release_id,
        n.grouping_version
    ])?;
    Ok(conn.last_insert_rowid())
}

/// Counts an event: times seen, last seen (never backwards), last release (of the newest
/// event), and the title/level/culprit of the newest event.
pub fn record_seen(
    conn: &Connection,
    issue_id: i64,
    seen: &str,
    release_id: Option<i64>,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE issues SET times_seen = times_seen + 1,
             last_release_id = CASE WHEN ?2 >= last_seen AND ?3 IS NOT NULL THEN ?3
                                    ELSE last_release_id END,
             last_seen = max(last_seen, ?2),
             first_seen = min(first_seen, ?2)
         WHERE id = ?1",
    )?
    .execute(params![issue_id, seen, release_id])?;
    Ok(())
}

/// Sets status and substatus; `resolved_at` is set when resolving, and `active_at` when the
/// issue becomes active again (a regression).
pub fn set_status(
    conn: &Connection,
    issue_id: i64,
    status: i64,
    substatus: Option<&str>,
    now: &str,
) -> Result<bool, StoreError> {
    let n = conn
        .prepare_cached(
            "UPDATE issues SET status = ?2, substatus = ?3,
                 resolved_at = CASE WHEN ?2 = 1 THEN ?4 ELSE resolved_at END,
                 active_at = CASE WHEN ?3 = 'regressed' THEN ?4 ELSE active_at END
             WHERE id = ?1 AND (status <> ?2 OR substatus IS NOT ?3)",
        )?
        .execute(params![issue_id, status, substatus, now])?;
    Ok(n > 0)
}

/// An issue list request.
#[derive(Debug, Clone, Default)]
pub struct IssueQuery {
    pub org_id: i64,
    pub project_ids: Vec<i64>,
    /// Only issues of these statuses (empty: any).
    pub statuses: Vec<i64>,
    pub substatus: Option<String>,
    /// Only issues with events in this release.
    pub release_id: Option<i64>,
    /// Only issues first seen in this release.
    pub first_release_id: Option<i64>,
    /// Only issues whose title or culprit contains this text.
    pub text: Option<String>,
    pub sort: IssueSort,
    pub limit: usize,
    pub offset: usize,
}

/// Issue list order (Sentry's `sort`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum IssueSort {
    /// Last seen, newest first (Sentry's `date`).
    #[default]
    LastSeen,
    /// First seen, newest first (`new`).
    FirstSeen,
    /// Most events first (`freq`).
    Frequency,
}

/// Lists issues; returns at most `limit + 1` so the caller can tell whether more exist.
pub fn list(conn: &Connection, q: &IssueQuery) -> Result<Vec<Issue>, StoreError> {
    let mut args = vec![SqlValue::Integer(q.org_id)];
    let mut wheres = vec!["i.org_id = ?1".to_string()];
    let bind = |args: &mut Vec<SqlValue>, v: SqlValue| {
        args.push(v);
        format!("?{}", args.len())
    };
    if !q.project_ids.is_empty() {
        let marks: Vec<String> = q
            .project_ids
            .iter()
            .map(|id| bind(&mut args, SqlValue::Integer(*id)))
            .collect();
        wheres.push(format!("i.project_id IN ({})", marks.join(", ")));
    }
    if !q.statuses.is_empty() {
        let marks: Vec<String> = q
            .statuses
            .iter()
            .map(|s| bind(&mut args, SqlValue::Integer(*s)))
            .collect();
        wheres.push(format!("i.status IN ({})", marks.join(", ")));
    }
    if let Some(s) = &q.substatus {
        let m = bind(&mut args, SqlValue::Text(s.clone()));
        wheres.push(format!("i.substatus = {m}"));
    }
    if let Some(r) = q.release_id {
        let m = bind(&mut args, SqlValue::Integer(r));
        wheres.push(format!(
            "EXISTS (SELECT 1 FROM events e WHERE e.release_id = {m} AND e.issue_id = i.id)"
        ));
    }
    if let Some(r) = q.first_release_id {
        let m = bind(&mut args, SqlValue::Integer(r));
        wheres.push(format!("i.first_release_id = {m}"));
    }
    if let Some(t) = &q.text {
        let m = bind(&mut args, SqlValue::Text(format!("%{}%", escape_like(t))));
        wheres.push(format!(
            "(i.title LIKE {m} ESCAPE '\\' OR i.culprit LIKE {m} ESCAPE '\\')"
        ));
    }
    let order = match q.sort {
        IssueSort::LastSeen => "i.last_seen DESC, i.id DESC",
        IssueSort::FirstSeen => "i.first_seen DESC, i.id DESC",
        IssueSort::Frequency => "i.times_seen DESC, i.id DESC",
    };
    let limit = bind(&mut args, SqlValue::Integer(q.limit as i64 + 1));
    let offset = bind(&mut args, SqlValue::Integer(q.offset as i64));
    let sql = format!(
        "SELECT {COLUMNS} FROM issues i JOIN projects p ON p.id = i.project_id
         WHERE {} ORDER BY {order} LIMIT {limit} OFFSET {offset}",
        wheres.join(" AND ")
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params_from_iter(args.iter()), from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn escape_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Whether any issue first appeared in this release (Sentry then refuses to delete it).
pub fn release_has_first_issues(conn: &Connection, release_id: i64) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM issues WHERE first_release_id = ?1 LIMIT 1")?
        .query_row([release_id], |_| Ok(()))
        .optional()?
        .is_some())
}

/// `release_projects.new_groups += 1`: an issue was first seen in this release.
pub fn count_new_group(
    conn: &Connection,
    release_id: i64,
    project_id: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE release_projects SET new_groups = new_groups + 1
         WHERE release_id = ?1 AND project_id = ?2",
    )?
    .execute(params![release_id, project_id])?;
    Ok(())
}

// ------------------------------------------------------------------------------------------
// Events

/// One event to store.
#[derive(Debug, Clone)]
pub struct NewEvent<'a> {
    pub event_id: &'a str,
    pub project_id: i64,
    pub issue_id: i64,
    pub release_id: Option<i64>,
    pub environment: Option<&'a str>,
    pub platform: Option<&'a str>,
    pub level: &'a str,
    pub timestamp: &'a str,
    pub received: &'a str,
    pub message: Option<&'a str>,
    pub exception_type: Option<&'a str>,
    pub exception_value: Option<&'a str>,
    /// Empty when the frames can be read back from `data` (see [`super::payload`]).
    pub frames: &'a str,
    /// The payload, encoded by [`super::payload::encode`].
    pub data: &'a [u8],
}

pub fn insert_event(conn: &Connection, e: &NewEvent<'_>) -> Result<i64, StoreError> {
    conn.prepare_cached(
        "INSERT INTO events (event_id, project_id, issue_id, release_id, environment, platform,
             level, timestamp, received, message, exception_type, exception_value, frames, data)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    )?
    .execute(params![
        e.event_id,
        e.project_id,
        e.issue_id,
        e.release_id,
        e.environment,
        e.platform,
        e.level,
        e.timestamp,
        e.received,
        e.message,
        e.exception_type,
        e.exception_value,
        e.frames,
        e.data
    ])?;
    Ok(conn.last_insert_rowid())
}

/// Whether the project already stored an event with this id (SDK retries send it again).
pub fn event_exists(
    conn: &Connection,
    project_id: i64,
    event_id: &str,
) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM events WHERE project_id = ?1 AND event_id = ?2")?
        .query_row(params![project_id, event_id], |_| Ok(()))
        .optional()?
        .is_some())
}

/// A stored event, as the API shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    pub event_id: String,
    pub issue_id: i64,
    pub project_id: i64,
    pub release: Option<String>,
    pub environment: Option<String>,
    pub platform: Option<String>,
    pub level: Option<String>,
    pub timestamp: String,
    pub received: String,
    pub message: Option<String>,
    pub exception_type: Option<String>,
    pub exception_value: Option<String>,
    pub frames: String,
    /// The payload as stored (see `core::issue::MAX_STORED_EVENT`).
    pub data: String,
}

/// The newest events of an issue.
pub fn events_of(
    conn: &Connection,
    issue_id: i64,
    limit: usize,
) -> Result<Vec<StoredEvent>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {EVENT_COLUMNS}
         FROM events e LEFT JOIN releases r ON r.id = e.release_id
         WHERE e.issue_id = ?1 ORDER BY e.timestamp DESC, e.id DESC LIMIT ?2"
    ))?;
    let rows = stmt.query_map(params![issue_id, limit as i64], stored_event)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The columns [`stored_event`] reads, in its order (`e` is `events`, `r` its release).
const EVENT_COLUMNS: &str = "e.event_id, e.issue_id, e.project_id, r.version, e.environment,
    e.platform, e.level, e.timestamp, e.received, e.message, e.exception_type,
    e.exception_value, e.frames, e.data";

fn stored_event(r: &rusqlite::Row) -> rusqlite::Result<StoredEvent> {
    let data = super::payload::decode(r.get_ref(13)?);
    let frames = super::payload::frames_of(r.get(12)?, &data);
    Ok(StoredEvent {
        event_id: r.get(0)?,
        issue_id: r.get(1)?,
        project_id: r.get(2)?,
        release: r.get(3)?,
        environment: r.get(4)?,
        platform: r.get(5)?,
        level: r.get(6)?,
        timestamp: r.get(7)?,
        received: r.get(8)?,
        message: r.get(9)?,
        exception_type: r.get(10)?,
        exception_value: r.get(11)?,
        frames,
        data,
    })
}

/// Per (release, project, environment): first/last seen and new issues (Sentry's
/// ReleaseProjectEnvironment counters).
pub fn note_release_environment(
    conn: &Connection,
    release_id: i64,
    project_id: i64,
    environment_id: i64,
    seen: &str,
    new_issue: bool,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO release_project_environments (release_id, project_id, environment_id,
             new_issues_count, first_seen, last_seen)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5)
         ON CONFLICT (release_id, project_id, environment_id) DO UPDATE SET
             new_issues_count = new_issues_count + excluded.new_issues_count,
             first_seen = min(COALESCE(first_seen, excluded.first_seen), excluded.first_seen),
             last_seen = max(COALESCE(last_seen, excluded.last_seen), excluded.last_seen)",
    )?
    .execute(params![
        release_id,
        project_id,
        environment_id,
        i64::from(new_issue),
        seen
    ])?;
    Ok(())
}

/// The first and last event timestamps of each release (Sentry's release `firstEvent` and
/// `lastEvent`), for those that have events.
pub fn event_spans(
    conn: &Connection,
    release_ids: &[i64],
) -> Result<std::collections::HashMap<i64, (String, String)>, StoreError> {
    let mut out = std::collections::HashMap::new();
    // Chunked to stay far below SQLite's bound-parameter limit.
    for chunk in release_ids.chunks(500) {
        let marks = vec!["?"; chunk.len()].join(", ");
        let sql = format!(
            "SELECT release_id, min(timestamp), max(timestamp) FROM events
              WHERE release_id IN ({marks}) GROUP BY release_id"
        );
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(params_from_iter(chunk.iter()), |r| {
            Ok((r.get::<_, i64>(0)?, (r.get(1)?, r.get(2)?)))
        })?;
        for row in rows {
            let (id, span) = row?;
            out.insert(id, span);
        }
    }
    Ok(out)
}

// ------------------------------------------------------------------------------------------
// Commit links

/// A commit's reference to an issue, with the issue when it exists.
#[derive(Debug, Clone, PartialEq)]
pub struct Link {
    pub id: i64,
    pub commit_id: i64,
    pub short_id: String,
    pub project_slug: String,
    pub issue_id: Option<i64>,
    pub resolved_release_id: Option<i64>,
    pub datetime: String,
}

/// Records a link; `true` when it is new.
pub fn insert_link(
    conn: &Connection,
    org_id: i64,
    commit_id: i64,
    short_id: &str,
    project_slug: &str,
    number: Option<i64>,
    now: &str,
) -> Result<bool, StoreError> {
    let n = conn
        .prepare_cached(
            "INSERT INTO issue_commit_links (org_id, commit_id, short_id, project_slug,
                 short_number, datetime)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (commit_id, short_id) DO NOTHING",
        )?
        .execute(params![
            org_id,
            commit_id,
            short_id,
            project_slug,
            number,
            now
        ])?;
    Ok(n == 1)
}

/// Links an issue to a commit through the API (Sentry's `inCommit`): kept whatever the commit's
/// message says. `false` if the link existed (it becomes manual).
pub fn insert_manual_link(
    conn: &Connection,
    org_id: i64,
    commit_id: i64,
    short_id: &str,
    project_slug: &str,
    number: i64,
    now: &str,
) -> Result<bool, StoreError> {
    let created = insert_link(
        conn,
        org_id,
        commit_id,
        short_id,
        project_slug,
        Some(number),
        now,
    )?;
    conn.prepare_cached(
        "UPDATE issue_commit_links SET manual = 1 WHERE commit_id = ?1 AND short_id = ?2",
    )?
    .execute(params![commit_id, short_id])?;
    Ok(created)
}

/// A commit of a repository, by its sha (full, as stored).
pub fn commit_id_by_key(
    conn: &Connection,
    repository_id: i64,
    key: &str,
) -> Result<Option<i64>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT id FROM commits WHERE repository_id = ?1 AND key = ?2")?
        .query_row(params![repository_id, key], |r| r.get(0))
        .optional()?)
}

/// The most recent release (by date added) whose commits include this one.
pub fn latest_release_with_commit(
    conn: &Connection,
    commit_id: i64,
) -> Result<Option<i64>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT r.id FROM release_commits rc JOIN releases r ON r.id = rc.release_id
              WHERE rc.commit_id = ?1 ORDER BY r.date_added DESC, r.id DESC LIMIT 1",
        )?
        .query_row([commit_id], |r| r.get(0))
        .optional()?)
}

/// Removes a commit's links that its message no longer makes.
pub fn remove_stale_links(
    conn: &Connection,
    commit_id: i64,
    keep: &[String],
) -> Result<usize, StoreError> {
    let mut args = vec![SqlValue::Integer(commit_id)];
    let marks: Vec<String> = keep
        .iter()
        .map(|k| {
            args.push(SqlValue::Text(k.clone()));
            format!("?{}", args.len())
        })
        .collect();
    // Links made through the API (`manual`) are not the message's to remove.
    let sql = if marks.is_empty() {
        "DELETE FROM issue_commit_links WHERE commit_id = ?1 AND manual = 0".to_string()
    } else {
        format!(
            "DELETE FROM issue_commit_links WHERE commit_id = ?1 AND manual = 0 AND short_id NOT IN ({})",
            marks.join(", ")
        )
    };
    Ok(conn.execute(&sql, params_from_iter(args.iter()))?)
}

const LINK_COLUMNS: &str = "l.id, l.commit_id, l.short_id, l.project_slug, \
    (SELECT i.id FROM issues i JOIN projects p ON p.id = i.project_id \
     WHERE p.org_id = l.org_id AND p.slug = l.project_slug AND i.short_id = l.short_number), \
    l.resolved_release_id, l.datetime";

fn link_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Link> {
    Ok(Link {
        id: r.get(0)?,
        commit_id: r.get(1)?,
        short_id: r.get(2)?,
        project_slug: r.get(3)?,
        issue_id: r.get(4)?,
        resolved_release_id: r.get(5)?,
        datetime: r.get(6)?,
    })
}

/// The links of the commits of a release, newest commit first.
pub fn links_of_release(conn: &Connection, release_id: i64) -> Result<Vec<Link>, StoreError> {
    let sql = format!(
        "SELECT {LINK_COLUMNS} FROM issue_commit_links l
         JOIN release_commits rc ON rc.commit_id = l.commit_id
         WHERE rc.release_id = ?1 ORDER BY rc.position, l.id"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map([release_id], link_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The links of some commits.
pub fn links_of_commit(conn: &Connection, commit_id: i64) -> Result<Vec<Link>, StoreError> {
    let sql = format!(
        "SELECT {LINK_COLUMNS} FROM issue_commit_links l WHERE l.commit_id = ?1 ORDER BY l.id"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map([commit_id], link_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Notes the release a link resolved its issue in.
pub fn mark_link_applied(
    conn: &Connection,
    link_id: i64,
    release_id: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE issue_commit_links SET resolved_release_id = ?2 WHERE id = ?1")?
        .execute(params![link_id, release_id])?;
    Ok(())
}

/// The newest link to an issue, and whether its commit is part of any release
/// (Sentry's `has_pending_commit_resolution` reads both).
pub fn latest_link_of_issue(
    conn: &Connection,
    issue: &Issue,
) -> Result<Option<(i64, bool)>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT l.commit_id,
                    EXISTS (SELECT 1 FROM release_commits rc WHERE rc.commit_id = l.commit_id)
             FROM issue_commit_links l
             WHERE l.org_id = ?1 AND l.project_slug = ?2 AND l.short_number = ?3
             ORDER BY l.datetime DESC, l.id DESC LIMIT 1",
        )?
        .query_row(
            params![issue.org_id, issue.project_slug, issue.short_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?)
}

/// Commit row ids of a release.
pub fn commit_ids_of_release(conn: &Connection, release_id: i64) -> Result<Vec<i64>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT commit_id FROM release_commits WHERE release_id = ?1 ORDER BY position",
    )?;
    let rows = stmt.query_map([release_id], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

// ------------------------------------------------------------------------------------------
// Resolutions

/// A GroupResolution row with its release's version and ordering dates.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolution {
    pub id: i64,
    pub issue_id: i64,
    pub release_id: i64,
    pub release_version: String,
    pub release_date_added: String,
    pub release_date_released: Option<String>,
    pub ty: Option<i64>,
    pub status: i64,
    pub current_release_version: Option<String>,
    pub actor: Option<String>,
    pub datetime: String,
}

const RES_COLUMNS: &str = "g.id, g.issue_id, g.release_id, r.version, r.date_added, \
    r.date_released, g.type, g.status, g.current_release_version, g.actor, g.datetime";

fn res_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Resolution> {
    Ok(Resolution {
        id: r.get(0)?,
        issue_id: r.get(1)?,
        release_id: r.get(2)?,
        release_version: r.get(3)?,
        release_date_added: r.get(4)?,
        release_date_released: r.get(5)?,
        ty: r.get(6)?,
        status: r.get(7)?,
        current_release_version: r.get(8)?,
        actor: r.get(9)?,
        datetime: r.get(10)?,
    })
}

pub fn resolution_of(conn: &Connection, issue_id: i64) -> Result<Option<Resolution>, StoreError> {
    let sql = format!(
        "SELECT {RES_COLUMNS} FROM issue_resolutions g JOIN releases r ON r.id = g.release_id
         WHERE g.issue_id = ?1"
    );
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([issue_id], res_from_row)
        .optional()?)
}

/// What a resolution is set to.
#[derive(Debug, Clone)]
pub struct SetResolution<'a> {
    pub issue_id: i64,
    pub release_id: i64,
    pub ty: i64,
    pub status: i64,
    pub current_release_version: Option<&'a str>,
    pub actor: Option<&'a str>,
    pub now: &'a str,
}

/// Sentry's `GroupResolution.create_or_update`; returns the row id and whether it is new.
pub fn upsert_resolution(
    conn: &Connection,
    s: &SetResolution<'_>,
) -> Result<(i64, bool), StoreError> {
    let existing: Option<i64> = conn
        .prepare_cached("SELECT id FROM issue_resolutions WHERE issue_id = ?1")?
        .query_row([s.issue_id], |r| r.get(0))
        .optional()?;
    match existing {
        Some(id) => {
            conn.prepare_cached(
                "UPDATE issue_resolutions SET release_id = ?2, type = ?3, status = ?4,
                     current_release_version = ?5, actor = ?6, datetime = ?7 WHERE id = ?1",
            )?
            .execute(params![
                id,
                s.release_id,
                s.ty,
                s.status,
                s.current_release_version,
                s.actor,
                s.now
            ])?;
            Ok((id, false))
        }
        None => {
            conn.prepare_cached(
                "INSERT INTO issue_resolutions (issue_id, release_id, type, status,
                     current_release_version, actor, datetime)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                s.issue_id,
                s.release_id,
                s.ty,
                s.status,
                s.current_release_version,
                s.actor,
                s.now
            ])?;
            Ok((conn.last_insert_rowid(), true))
        }
    }
}

pub fn delete_resolution(conn: &Connection, issue_id: i64) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM issue_resolutions WHERE issue_id = ?1")?
        .execute([issue_id])?;
    Ok(())
}

/// Sentry's `clear_expired_resolutions` query: pending next-release resolutions of releases
/// that share a project with `release_id` and were added before it.
pub fn expired_resolutions(
    conn: &Connection,
    release_id: i64,
    date_added: &str,
) -> Result<Vec<Resolution>, StoreError> {
    let sql = format!(
        "SELECT {RES_COLUMNS} FROM issue_resolutions g JOIN releases r ON r.id = g.release_id
         WHERE (g.type IS NULL OR g.type = 1) AND g.status = 0
           AND g.release_id <> ?1 AND r.date_added < ?2
           AND EXISTS (SELECT 1 FROM release_projects a JOIN release_projects b
                       ON a.project_id = b.project_id
                       WHERE a.release_id = g.release_id AND b.release_id = ?1)
         ORDER BY g.id"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params![release_id, date_added], res_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Ids of the issues resolved in a release: by a resolution pointing at it, or by a commit of
/// the release that references them (Sentry's issues-resolved-in-release).
pub fn resolved_in_release(conn: &Connection, release_id: i64) -> Result<Vec<i64>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT issue_id FROM issue_resolutions WHERE release_id = ?1
         UNION
         SELECT i.id FROM issue_commit_links l
           JOIN release_commits rc ON rc.commit_id = l.commit_id AND rc.release_id = ?1
           JOIN projects p ON p.org_id = l.org_id AND p.slug = l.project_slug
           JOIN issues i ON i.project_id = p.id AND i.short_id = l.short_number
         ORDER BY 1",
    )?;
    let rows = stmt.query_map([release_id], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

// ------------------------------------------------------------------------------------------
// Activity about issues

/// An activity entry about an issue.
#[derive(Debug, Clone)]
pub struct IssueActivity<'a> {
    pub org_id: i64,
    pub project_id: Option<i64>,
    pub issue_id: Option<i64>,
    pub release_id: Option<i64>,
    pub kind: ActivityType,
    pub ident: Option<&'a str>,
    pub data: serde_json::Value,
    pub datetime: &'a str,
}

pub fn insert_activity(conn: &Connection, a: &IssueActivity<'_>) -> Result<i64, StoreError> {
    conn.prepare_cached(
        "INSERT INTO activities (org_id, project_id, issue_id, release_id, type, ident, data,
             datetime)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        a.org_id,
        a.project_id,
        a.issue_id,
        a.release_id,
        a.kind.code(),
        a.ident,
        a.data.to_string(),
        a.datetime
    ])?;
    Ok(conn.last_insert_rowid())
}

/// The newest SET_RESOLVED_IN_RELEASE entry for a resolution (its ident is the resolution id).
pub fn resolution_activity(
    conn: &Connection,
    issue_id: i64,
    resolution_id: i64,
) -> Result<Option<(i64, String)>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT id, data FROM activities WHERE issue_id = ?1 AND type = ?2 AND ident = ?3
             ORDER BY datetime DESC, id DESC LIMIT 1",
        )?
        .query_row(
            params![
                issue_id,
                ActivityType::SetResolvedInRelease.code(),
                resolution_id.to_string()
            ],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?)
}

pub fn set_activity_data(conn: &Connection, id: i64, data: &str) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE activities SET data = ?2 WHERE id = ?1")?
        .execute(params![id, data])?;
    Ok(())
}

/// An activity entry of an issue, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivityRow {
    pub id: i64,
    pub kind: i64,
    pub ident: Option<String>,
    pub data: String,
    pub datetime: String,
}

/// The activity of an issue, newest first.
pub fn activity_of(conn: &Connection, issue_id: i64) -> Result<Vec<ActivityRow>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, type, ident, data, datetime FROM activities WHERE issue_id = ?1
         ORDER BY datetime DESC, id DESC LIMIT 100",
    )?;
    let rows = stmt.query_map([issue_id], |r| {
        Ok(ActivityRow {
            id: r.get(0)?,
            kind: r.get(1)?,
            ident: r.get(2)?,
            data: r.get(3)?,
            datetime: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

// ------------------------------------------------------------------------------------------
// Releases as the issue rules see them

/// A release's version and the dates it is ordered by.
#[derive(Debug, Clone, PartialEq)]
pub struct ReleaseOrder {
    pub id: i64,
    pub version: String,
    pub date_added: String,
    pub date_released: Option<String>,
}

impl ReleaseOrder {
    /// Sentry's `release_order_date`: `date_released or date_added`.
    pub fn order_date(&self) -> &str {
        self.date_released.as_deref().unwrap_or(&self.date_added)
    }
}

fn order_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ReleaseOrder> {
    Ok(ReleaseOrder {
        id: r.get(0)?,
        version: r.get(1)?,
        date_added: r.get(2)?,
        date_released: r.get(3)?,
    })
}

pub fn release_order(
    conn: &Connection,
    release_id: i64,
) -> Result<Option<ReleaseOrder>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT id, version, date_added, date_released FROM releases WHERE id = ?1",
        )?
        .query_row([release_id], order_from_row)
        .optional()?)
}

pub fn release_order_by_version(
    conn: &Connection,
    org_id: i64,
    version: &str,
) -> Result<Option<ReleaseOrder>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT id, version, date_added, date_released FROM releases
             WHERE org_id = ?1 AND version = ?2",
        )?
        .query_row(params![org_id, version], order_from_row)
        .optional()?)
}

/// The project's most recent release by `COALESCE(date_released, date_added)` (Sentry's
/// `most_recent_release`).
pub fn most_recent_release(
    conn: &Connection,
    project_id: i64,
) -> Result<Option<ReleaseOrder>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT r.id, r.version, r.date_added, r.date_released FROM releases r
             JOIN release_projects rp ON rp.release_id = r.id AND rp.project_id = ?1
             ORDER BY COALESCE(r.date_released, r.date_added) DESC, r.id DESC LIMIT 1",
        )?
        .query_row([project_id], order_from_row)
        .optional()?)
}

/// The project's greatest semver release (Sentry's `greatest_semver_release`).
pub fn greatest_semver_release(
    conn: &Connection,
    project_id: i64,
) -> Result<Option<ReleaseOrder>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT r.id, r.version, r.date_added, r.date_released FROM releases r
             JOIN release_projects rp ON rp.release_id = r.id AND rp.project_id = ?1
             WHERE r.major IS NOT NULL
             ORDER BY r.major DESC, r.minor DESC, r.patch DESC, r.revision DESC,
                      r.prerelease_case DESC, r.prerelease DESC LIMIT 1",
        )?
        .query_row([project_id], order_from_row)
        .optional()?)
}

/// Whether the project's last 10 releases have semver columns, newest first.
pub fn recent_semver_flags(conn: &Connection, project_id: i64) -> Result<Vec<bool>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT r.major IS NOT NULL FROM releases r
         JOIN release_projects rp ON rp.release_id = r.id AND rp.project_id = ?1
         ORDER BY r.date_added DESC, r.id DESC LIMIT 10",
    )?;
    let rows = stmt.query_map([project_id], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The first release after `after` in date order among a project's releases (Sentry's
/// date-ordered "next release": `date_added` later, or equal with a higher id).
pub fn next_release_by_date(
    conn: &Connection,
    project_id: i64,
    after: &ReleaseOrder,
) -> Result<Option<ReleaseOrder>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT r.id, r.version, r.date_added, r.date_released FROM releases r
             JOIN release_projects rp ON rp.release_id = r.id AND rp.project_id = ?1
             WHERE r.date_added > ?2 OR (r.date_added = ?2 AND r.id > ?3)
             ORDER BY COALESCE(r.date_released, r.date_added), r.id LIMIT 1",
        )?
        .query_row(
            params![project_id, after.date_added, after.id],
            order_from_row,
        )
        .optional()?)
}

// ------------------------------------------------------------------------------------------
// Release notes

/// A commit of a release with its author and repository, for release notes.
#[derive(Debug, Clone, PartialEq)]
pub struct NoteCommit {
    pub id: i64,
    pub key: String,
    pub message: Option<String>,
    pub author_name: Option<String>,
    pub author_email: Option<String>,
    pub repository: String,
    pub date_added: String,
}

/// The first `limit` commits of a release, newest first.
pub fn release_commits(
    conn: &Connection,
    release_id: i64,
    limit: usize,
) -> Result<Vec<NoteCommit>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT c.id, c.key, c.message, a.name, a.email, r.name, c.date_added
         FROM release_commits rc JOIN commits c ON c.id = rc.commit_id
         JOIN repositories r ON r.id = c.repository_id
         LEFT JOIN commit_authors a ON a.id = c.author_id
         WHERE rc.release_id = ?1 ORDER BY rc.position LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![release_id, limit as i64], |r| {
        Ok(NoteCommit {
            id: r.get(0)?,
            key: r.get(1)?,
            message: r.get(2)?,
            author_name: r.get(3)?,
            author_email: r.get(4)?,
            repository: r.get(5)?,
            date_added: r.get(6)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// How many commits a release has.
pub fn release_commit_count(conn: &Connection, release_id: i64) -> Result<u64, StoreError> {
    Ok(conn
        .prepare_cached("SELECT count(*) FROM release_commits WHERE release_id = ?1")?
        .query_row([release_id], |r| r.get::<_, i64>(0))? as u64)
}

/// The first `limit` authors of a release's commits (email, a name, commit count), in the
/// order of their newest commit; commits without an author count under the empty email.
pub fn release_authors(
    conn: &Connection,
    release_id: i64,
    limit: usize,
) -> Result<Vec<(String, Option<String>, u64)>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT coalesce(a.email, ''), max(a.name), count(*)
         FROM release_commits rc JOIN commits c ON c.id = rc.commit_id
         LEFT JOIN commit_authors a ON a.id = c.author_id
         WHERE rc.release_id = ?1
         GROUP BY coalesce(a.email, '') ORDER BY min(rc.position) LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![release_id, limit as i64], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? as u64))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Whether the organization has a project with this slug.
pub fn project_slug_exists(conn: &Connection, org_id: i64, slug: &str) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM projects WHERE org_id = ?1 AND slug = ?2")?
        .query_row(params![org_id, slug], |_| Ok(()))
        .optional()?
        .is_some())
}

// ------------------------------------------------------------------------------------------
// Suspect commits

/// Sentry's `get_previous_releases`: up to `limit` releases of the project ordered at or
/// before `release_id` by `COALESCE(date_released, date_added)`, newest first, the release
/// itself included; only the 100 highest release ids up to it are considered.
pub fn previous_releases(
    conn: &Connection,
    project_id: i64,
    release_id: i64,
    limit: usize,
) -> Result<Vec<i64>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "WITH cand AS (
             SELECT r.id, COALESCE(r.date_released, r.date_added) AS d FROM releases r
             JOIN release_projects rp ON rp.release_id = r.id AND rp.project_id = ?1
             WHERE r.id <= ?2 ORDER BY r.id DESC LIMIT 100)
         SELECT id FROM cand
         WHERE d <= (SELECT COALESCE(date_released, date_added) FROM releases WHERE id = ?2)
         ORDER BY d DESC, id DESC LIMIT ?3",
    )?;
    let rows = stmt.query_map(params![project_id, release_id, limit as i64], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Whether any of these releases has commits.
pub fn releases_have_commits(conn: &Connection, release_ids: &[i64]) -> Result<bool, StoreError> {
    if release_ids.is_empty() {
        return Ok(false);
    }
    let marks = vec!["?"; release_ids.len()].join(", ");
    let sql = format!("SELECT 1 FROM release_commits WHERE release_id IN ({marks}) LIMIT 1");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row(params_from_iter(release_ids.iter()), |_| Ok(()))
        .optional()?
        .is_some())
}

/// `(commit id, filename)` of the file changes of these releases' commits whose file name
/// ends with one of `names`, case-insensitively (Sentry's `filename__iendswith`).
pub fn matching_file_changes(
    conn: &Connection,
    release_ids: &[i64],
    names: &[String],
) -> Result<Vec<(i64, String)>, StoreError> {
    if release_ids.is_empty() || names.is_empty() {
        return Ok(Vec::new());
    }
    let mut args: Vec<SqlValue> = release_ids
        .iter()
        .map(|id| SqlValue::Integer(*id))
        .collect();
    let releases = (1..=release_ids.len())
        .map(|i| format!("?{i}"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut likes = Vec::new();
    for n in names {
        args.push(SqlValue::Text(format!(
            "%{}",
            escape_like(&n.to_lowercase())
        )));
        likes.push(format!(
            "lower(f.filename) LIKE ?{} ESCAPE '\\'",
            args.len()
        ));
    }
    let sql = format!(
        "SELECT DISTINCT f.commit_id, f.filename FROM commit_file_changes f
         WHERE f.commit_id IN (SELECT commit_id FROM release_commits WHERE release_id IN ({releases}))
           AND ({})
         ORDER BY f.commit_id, f.filename",
        likes.join(" OR ")
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map(params_from_iter(args.iter()), |r| {
        Ok((r.get(0)?, r.get(1)?))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A commit with its repository and author, as Fixes linking and suspect commits read it.
#[derive(Debug, Clone, PartialEq)]
pub struct CommitInfo {
    pub id: i64,
    pub key: String,
    pub message: Option<String>,
    pub date_added: String,
    pub repository: String,
    pub author_id: Option<i64>,
    pub author_name: Option<String>,
    pub author_email: Option<String>,
}

pub fn commit_infos(conn: &Connection, ids: &[i64]) -> Result<Vec<CommitInfo>, StoreError> {
    let mut out = Vec::with_capacity(ids.len());
    let mut stmt = conn.prepare_cached(
        "SELECT c.id, c.key, c.message, c.date_added, r.name, c.author_id, a.name, a.email
         FROM commits c JOIN repositories r ON r.id = c.repository_id
         LEFT JOIN commit_authors a ON a.id = c.author_id WHERE c.id = ?1",
    )?;
    for id in ids {
        if let Some(c) = stmt
            .query_row([id], |r| {
                Ok(CommitInfo {
                    id: r.get(0)?,
                    key: r.get(1)?,
                    message: r.get(2)?,
                    date_added: r.get(3)?,
                    repository: r.get(4)?,
                    author_id: r.get(5)?,
                    author_name: r.get(6)?,
                    author_email: r.get(7)?,
                })
            })
            .optional()?
        {
            out.push(c);
        }
    }
    Ok(out)
}

/// The issue, frames and platform of a project's event.
pub fn event_frames(
    conn: &Connection,
    project_id: i64,
    event_id: &str,
) -> Result<Option<(i64, String, Option<String>)>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT issue_id, frames, platform, data FROM events
             WHERE project_id = ?1 AND event_id = ?2",
        )?
        .query_row(params![project_id, event_id], |r| {
            let frames: String = r.get(1)?;
            let frames = if frames.is_empty() {
                super::payload::frames_of(frames, &super::payload::decode(r.get_ref(3)?))
            } else {
                frames
            };
            Ok((r.get(0)?, frames, r.get(2)?))
        })
        .optional()?)
}

/// A project's event with the issue it was grouped into.
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectEvent {
    pub issue_id: i64,
    pub title: String,
    pub event: StoredEvent,
}

/// A page of a project's events, newest first.
pub fn events_of_project(
    conn: &Connection,
    project_id: i64,
    limit: usize,
    offset: usize,
) -> Result<Vec<ProjectEvent>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {EVENT_COLUMNS}, i.title
         FROM events e JOIN issues i ON i.id = e.issue_id
              LEFT JOIN releases r ON r.id = e.release_id
         WHERE e.project_id = ?1 ORDER BY e.timestamp DESC, e.id DESC LIMIT ?2 OFFSET ?3"
    ))?;
    let rows = stmt.query_map(params![project_id, limit as i64, offset as i64], |r| {
        let event = stored_event(r)?;
        Ok(ProjectEvent {
            issue_id: event.issue_id,
            title: r.get(14)?,
            event,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
