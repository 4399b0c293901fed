//! Release-health rollups (migrations 0013, 0017 and 0021): hourly session counts per
//! (project, release, hour, environment) and their daily sums, exact per-hour sets of distinct
//! users and errored session ids, exact per-day sets of distinct users, each user's latest
//! hours per release, a duration histogram per hour and per day, refusal counters and adoption
//! stages.
//!
//! Ids (`did`, `sid`) are stored as 64-bit hashes: a collision needs billions of ids, so the
//! sets are exact for any realistic population, and a period's distinct count is a
//! `COUNT(DISTINCT ...)` over its parts: the whole days from the daily sets and the edge hours
//! from the hourly ones ([`split_window`]). The parts do not overlap, so the union is exact.
//! Sums (session counts, duration bins) are read the same way from their daily twins. A
//! period that ends after every user's latest hour (the releases page's: they end now) counts
//! distinct users from one row per user instead ([`users_by_release`]).

use std::collections::HashMap;

use rusqlite::types::Value;
use rusqlite::{Connection, params, params_from_iter};
use sha1::{Digest, Sha1};

use super::StoreError;
use crate::model::health::{SessionCounts, UserCounts, day_of, split_window};
use crate::model::session::user_flags;

/// The 64-bit key of an id in the user and session-id sets.
pub fn id_hash(text: &str) -> i64 {
    let digest = Sha1::digest(text.as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    i64::from_le_bytes(bytes)
}

/// A release in a project: `(release_id, project_id)`.
pub type Pair = (i64, i64);

/// Where a contribution is filed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key<'a> {
    pub project_id: i64,
    pub release_id: i64,
    pub bucket: i64,
    pub environment: &'a str,
}

/// Adds counts to a rollup row (creating it) and to its day's row.
pub fn add_counts(conn: &Connection, k: &Key<'_>, c: &SessionCounts) -> Result<(), StoreError> {
    for (table, time, at) in [
        ("health_rollups", "bucket", k.bucket),
        ("health_rollups_daily", "day", day_of(k.bucket)),
    ] {
        conn.prepare_cached(&format!(
            "INSERT INTO {table} (project_id, release_id, {time}, environment, sessions,
                 errored_preaggr, errored_sids, crashed, abnormal, unhandled)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT DO UPDATE SET sessions = sessions + excluded.sessions,
                 errored_preaggr = errored_preaggr + excluded.errored_preaggr,
                 errored_sids = errored_sids + excluded.errored_sids,
                 crashed = crashed + excluded.crashed,
                 abnormal = abnormal + excluded.abnormal,
                 unhandled = unhandled + excluded.unhandled"
        ))?
        .execute(params![
            k.project_id,
            k.release_id,
            at,
            k.environment,
            c.sessions as i64,
            c.errored_preaggr as i64,
            c.errored_sids as i64,
            c.crashed as i64,
            c.abnormal as i64,
            c.unhandled as i64,
        ])?;
    }
    Ok(())
}

/// Adds an errored session id to the hour's set; `true` when it was not in it yet. The rollup
/// row must exist.
pub fn add_errored_sid(conn: &Connection, k: &Key<'_>, sid: &str) -> Result<bool, StoreError> {
    let n = conn
        .prepare_cached(
            "INSERT INTO health_errored_sids (project_id, release_id, bucket, environment, sid)
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
        )?
        .execute(params![
            k.project_id,
            k.release_id,
            k.bucket,
            k.environment,
            id_hash(sid)
        ])?;
    Ok(n == 1)
}

/// Adds a user (with its status flags OR-ed in) to the hour's set and to its day's set, and
/// moves its latest hours forward, in the caller's transaction. The rollup row must exist.
pub fn add_user(conn: &Connection, k: &Key<'_>, did: &str, flags: i64) -> Result<(), StoreError> {
    let user = id_hash(did);
    conn.prepare_cached(
        "INSERT INTO health_users (project_id, release_id, bucket, environment, user, flags)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT DO UPDATE SET flags = flags | excluded.flags",
    )?
    .execute(params![
        k.project_id,
        k.release_id,
        k.bucket,
        k.environment,
        user,
        flags
    ])?;
    conn.prepare_cached(
        "INSERT INTO health_users_daily (project_id, release_id, day, environment, user, flags)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT DO UPDATE SET flags = flags | excluded.flags",
    )?
    .execute(params![
        k.project_id,
        k.release_id,
        day_of(k.bucket),
        k.environment,
        user,
        flags
    ])?;
    let at = |flag: i64| if flags & flag != 0 { k.bucket } else { 0 };
    conn.prepare_cached(
        "INSERT INTO health_user_last (project_id, release_id, environment, user, seen, errored,
             crashed, abnormal)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT DO UPDATE SET seen = max(seen, excluded.seen),
             errored = max(errored, excluded.errored), crashed = max(crashed, excluded.crashed),
             abnormal = max(abnormal, excluded.abnormal)",
    )?
    .execute(params![
        k.project_id,
        k.release_id,
        k.environment,
        user,
        k.bucket,
        at(user_flags::ERRORED),
        at(user_flags::CRASHED),
        at(user_flags::ABNORMAL),
    ])?;
    Ok(())
}

/// Counts one exited session's duration into the hour's histogram and its day's. The rollup
/// row must exist.
pub fn add_duration(conn: &Connection, k: &Key<'_>, bin: i64) -> Result<(), StoreError> {
    for (table, time, at) in [
        ("health_durations", "bucket", k.bucket),
        ("health_durations_daily", "day", day_of(k.bucket)),
    ] {
        conn.prepare_cached(&format!(
            "INSERT INTO {table} (project_id, release_id, {time}, environment, bin, count)
             VALUES (?1, ?2, ?3, ?4, ?5, 1)
             ON CONFLICT DO UPDATE SET count = count + 1"
        ))?
        .execute(params![k.project_id, k.release_id, at, k.environment, bin])?;
    }
    Ok(())
}

/// Counts a refused session item.
pub fn add_refusal(
    conn: &Connection,
    project_id: i64,
    reason: &str,
    n: u64,
    now: &str,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO health_refusals (project_id, reason, count, last_seen) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT DO UPDATE SET count = count + excluded.count, last_seen = excluded.last_seen",
    )?
    .execute(params![project_id, reason, n as i64, now])?;
    Ok(())
}

/// A refusal counter.
#[derive(Debug, Clone, PartialEq)]
pub struct RefusalCount {
    pub project_slug: String,
    pub reason: String,
    pub count: i64,
    pub last_seen: String,
}

/// The refusal counters of an organization's projects.
pub fn refusals(conn: &Connection, org_id: i64) -> Result<Vec<RefusalCount>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT p.slug, r.reason, r.count, r.last_seen FROM health_refusals r
         JOIN projects p ON p.id = r.project_id WHERE p.org_id = ?1 ORDER BY p.slug, r.reason",
    )?;
    let rows = stmt.query_map([org_id], |r| {
        Ok(RefusalCount {
            project_slug: r.get(0)?,
            reason: r.get(1)?,
            count: r.get(2)?,
            last_seen: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Which rollups a query reads: hours in `[start, end)`, some projects (all of the org's when
/// empty), optionally some releases and environments.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    pub org_id: i64,
    pub project_ids: Vec<i64>,
    pub release_ids: Option<Vec<i64>>,
    pub environments: Vec<String>,
    pub start: i64,
    pub end: i64,
}

impl Scope {
    /// The WHERE clause over alias `t` and its parameters.
    fn clause(&self) -> (String, Vec<Value>) {
        self.clause_over("bucket", (self.start, self.end))
    }

    /// The WHERE clause over alias `t` with `[start, end)` on its time column `time`.
    fn clause_over(&self, time: &str, (start, end): (i64, i64)) -> (String, Vec<Value>) {
        let mut sql = format!(
            "t.{time} >= ? AND t.{time} < ? AND t.project_id IN (SELECT id FROM projects WHERE org_id = ?)"
        );
        let mut args = vec![
            Value::from(start),
            Value::from(end),
            Value::from(self.org_id),
        ];
        let list = |sql: &mut String, col: &str, n: usize| {
            sql.push_str(&format!(" AND {col} IN ({})", vec!["?"; n].join(", ")));
        };
        if !self.project_ids.is_empty() {
            list(&mut sql, "t.project_id", self.project_ids.len());
            args.extend(self.project_ids.iter().map(|id| Value::from(*id)));
        }
        if let Some(ids) = &self.release_ids {
            list(&mut sql, "t.release_id", ids.len());
            args.extend(ids.iter().map(|id| Value::from(*id)));
        }
        if !self.environments.is_empty() {
            list(&mut sql, "t.environment", self.environments.len());
            args.extend(self.environments.iter().map(|e| Value::from(e.clone())));
        }
        (sql, args)
    }
}

/// One rollup row.
#[derive(Debug, Clone, PartialEq)]
pub struct RollupRow {
    pub project_id: i64,
    pub release_id: i64,
    pub bucket: i64,
    pub environment: String,
    pub counts: SessionCounts,
}

/// The rollup rows of a scope.
pub fn rollups(conn: &Connection, scope: &Scope) -> Result<Vec<RollupRow>, StoreError> {
    let (clause, args) = scope.clause();
    let sql = format!(
        "SELECT t.project_id, t.release_id, t.bucket, t.environment, t.sessions,
             t.errored_preaggr, t.errored_sids, t.crashed, t.abnormal, t.unhandled
         FROM health_rollups t WHERE {clause}"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params_from_iter(args), |r| {
        let n = |i: usize| r.get::<_, i64>(i).map(|v| v.max(0) as u64);
        Ok(RollupRow {
            project_id: r.get(0)?,
            release_id: r.get(1)?,
            bucket: r.get(2)?,
            environment: r.get(3)?,
            counts: SessionCounts {
                sessions: n(4)?,
                errored_preaggr: n(5)?,
                errored_sids: n(6)?,
                crashed: n(7)?,
                abnormal: n(8)?,
                unhandled: n(9)?,
            },
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// One (user, hour) row.
#[derive(Debug, Clone, PartialEq)]
pub struct UserRow {
    pub project_id: i64,
    pub release_id: i64,
    pub bucket: i64,
    pub environment: String,
    pub user: i64,
    pub flags: i64,
}

/// The user rows of a scope.
pub fn users(conn: &Connection, scope: &Scope) -> Result<Vec<UserRow>, StoreError> {
    let (clause, args) = scope.clause();
    let sql = format!(
        "SELECT t.project_id, t.release_id, t.bucket, t.environment, t.user, t.flags
         FROM health_users t WHERE {clause}"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params_from_iter(args), |r| {
        Ok(UserRow {
            project_id: r.get(0)?,
            release_id: r.get(1)?,
            bucket: r.get(2)?,
            environment: r.get(3)?,
            user: r.get(4)?,
            flags: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The distinct-user rows of a scope as a subquery of `(project_id, release_id, user, flags)`:
/// its whole days from the daily sets, its edge hours from the hourly sets. A user appears
/// once per part it was seen in; callers group by user.
fn user_parts(scope: &Scope) -> (String, Vec<Value>) {
    split_parts(scope, "health_users", "health_users_daily", "user, t.flags")
}

/// The rows of an hourly table of sums (`health_rollups`, `health_durations`) over a scope as
/// a subquery of `(project_id, release_id, <columns>)`: its whole days from the table's daily
/// twin (`<table>_daily`), its edge hours from the table itself. Sums add up across the parts.
fn sum_parts(scope: &Scope, table: &str, columns: &str) -> (String, Vec<Value>) {
    split_parts(scope, table, &format!("{table}_daily"), columns)
}

/// A scope's rows as a `UNION ALL` subquery of `(project_id, release_id, <columns>)`: its whole
/// days ([`split_window`]) from `daily` (by `day`), its edge hours from `hourly` (by `bucket`).
fn split_parts(scope: &Scope, hourly: &str, daily: &str, columns: &str) -> (String, Vec<Value>) {
    let split = split_window(scope.start, scope.end);
    let mut reads: Vec<(&str, &str, (i64, i64))> = [split.head, split.tail]
        .into_iter()
        .flatten()
        .map(|range| (hourly, "bucket", range))
        .chain(split.days.map(|days| (daily, "day", days)))
        .collect();
    if reads.is_empty() {
        // An empty period: no rows, same shape.
        reads.push((hourly, "bucket", (scope.start, scope.start)));
    }
    let mut parts = Vec::new();
    let mut args = Vec::new();
    for (table, time, range) in reads {
        let (clause, a) = scope.clause_over(time, range);
        parts.push(format!(
            "SELECT t.project_id, t.release_id, t.{columns} FROM {table} t WHERE {clause}"
        ));
        args.extend(a);
    }
    (parts.join(" UNION ALL "), args)
}

/// One (bin, count) row of the duration histogram.
#[derive(Debug, Clone, PartialEq)]
pub struct DurationRow {
    pub project_id: i64,
    pub release_id: i64,
    pub bucket: i64,
    pub environment: String,
    pub bin: i64,
    pub count: u64,
}

/// The duration histogram rows of a scope.
pub fn durations(conn: &Connection, scope: &Scope) -> Result<Vec<DurationRow>, StoreError> {
    let (clause, args) = scope.clause();
    let sql = format!(
        "SELECT t.project_id, t.release_id, t.bucket, t.environment, t.bin, t.count
         FROM health_durations t WHERE {clause}"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params_from_iter(args), |r| {
        Ok(DurationRow {
            project_id: r.get(0)?,
            release_id: r.get(1)?,
            bucket: r.get(2)?,
            environment: r.get(3)?,
            bin: r.get(4)?,
            count: r.get::<_, i64>(5)?.max(0) as u64,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The duration histogram per (release, project) over a scope, its bins summed in SQL.
pub fn duration_bins_by_release(
    conn: &Connection,
    scope: &Scope,
) -> Result<HashMap<Pair, Vec<(i64, u64)>>, StoreError> {
    let (parts, args) = sum_parts(scope, "health_durations", "bin, t.count");
    // Summed here rather than by a GROUP BY: (release, bin) is not the tables' key order, so
    // SQLite would sort every row through a temporary b-tree first, which cost a 14-day
    // releases page about as much as all its other health queries together.
    let mut stmt = conn.prepare_cached(&parts)?;
    let mut sums: HashMap<(Pair, i64), u64> = HashMap::new();
    let mut rows = stmt.query(params_from_iter(args))?;
    while let Some(r) = rows.next()? {
        let key = ((r.get(1)?, r.get(0)?), r.get(2)?);
        *sums.entry(key).or_default() += r.get::<_, i64>(3)?.max(0) as u64;
    }
    let mut out: HashMap<Pair, Vec<(i64, u64)>> = HashMap::new();
    for ((pair, bin), n) in sums {
        out.entry(pair).or_default().push((bin, n));
    }
    for bins in out.values_mut() {
        bins.sort_unstable();
    }
    Ok(out)
}

/// Session counts per (release, project) over a scope, summed in SQL.
pub fn counts_by_release(
    conn: &Connection,
    scope: &Scope,
) -> Result<HashMap<(i64, i64), SessionCounts>, StoreError> {
    let (parts, args) = sum_parts(
        scope,
        "health_rollups",
        "sessions, t.errored_preaggr, t.errored_sids, t.crashed, t.abnormal, t.unhandled",
    );
    // Summed here, as the duration bins are: a GROUP BY over the parts' union sorts them all.
    let mut stmt = conn.prepare_cached(&parts)?;
    let mut out: HashMap<Pair, SessionCounts> = HashMap::new();
    let mut rows = stmt.query(params_from_iter(args))?;
    while let Some(r) = rows.next()? {
        let n = |i: usize| r.get::<_, i64>(i).map(|v| v.max(0) as u64);
        out.entry((r.get(1)?, r.get(0)?))
            .or_default()
            .add(&SessionCounts {
                sessions: n(2)?,
                errored_preaggr: n(3)?,
                errored_sids: n(4)?,
                crashed: n(5)?,
                abnormal: n(6)?,
                unhandled: n(7)?,
            });
    }
    Ok(out)
}

/// Distinct users per (release, project) over a scope. A period no user has passed yet (the
/// releases page's, which end at the current hour) is read from each user's latest hours;
/// any other from the union of its day and hour sets. Both are exact.
pub fn users_by_release(
    conn: &Connection,
    scope: &Scope,
) -> Result<HashMap<(i64, i64), UserCounts>, StoreError> {
    let [counts] = users_by_release_since(conn, scope, [scope.start])?;
    Ok(counts)
}

/// [`users_by_release`] over several periods that end with `scope` and start at each of
/// `starts` (each within the scope), in one read: the releases page's summary period and its
/// last 24 hours.
pub fn users_by_release_since<const N: usize>(
    conn: &Connection,
    scope: &Scope,
    starts: [i64; N],
) -> Result<[HashMap<Pair, UserCounts>; N], StoreError> {
    if scope.release_ids.is_some()
        && let Some(counts) = users_by_release_latest(conn, scope, starts)?
    {
        return Ok(counts);
    }
    let mut out = starts.map(|_| HashMap::new());
    for (i, start) in starts.into_iter().enumerate() {
        out[i] = users_by_release_union(
            conn,
            &Scope {
                start,
                ..scope.clone()
            },
        )?;
    }
    Ok(out)
}

/// [`users_by_release_since`] from `health_user_last`: a user was seen in `[start, end)` when
/// its latest hour is at or after `start`, provided no user of the scope has a later hour than
/// `end` (then `None`, and the caller takes the union). Per user, its environments merge by
/// their latest hours. Merged and counted here from the rows as read (in key order, a user's
/// environments are adjacent), cheaper than SQLite's two nested GROUP BYs were.
fn users_by_release_latest<const N: usize>(
    conn: &Connection,
    scope: &Scope,
    starts: [i64; N],
) -> Result<Option<[HashMap<Pair, UserCounts>; N]>, StoreError> {
    let earliest = starts.iter().copied().min().unwrap_or(scope.start);
    let (clause, args) = scope.clause_over("seen", (earliest, i64::MAX));
    let sql = format!(
        "SELECT t.release_id, t.project_id, t.user, t.seen, t.errored, t.crashed, t.abnormal
         FROM health_user_last t WHERE {clause}
         ORDER BY t.project_id, t.release_id, t.user"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut out = starts.map(|_| HashMap::new());
    // The user being merged: (pair, user) and its latest seen, errored, crashed, abnormal.
    let mut current: Option<((Pair, i64), [i64; 4])> = None;
    let count =
        |(pair, _): (Pair, i64), last: [i64; 4], out: &mut [HashMap<Pair, UserCounts>; N]| {
            for (i, start) in starts.iter().enumerate() {
                if last[0] >= *start {
                    let c: &mut UserCounts = out[i].entry(pair).or_default();
                    c.users += 1;
                    c.errored += u64::from(last[1] >= *start);
                    c.crashed += u64::from(last[2] >= *start);
                    c.abnormal += u64::from(last[3] >= *start);
                }
            }
        };
    let mut rows = stmt.query(params_from_iter(args))?;
    while let Some(r) = rows.next()? {
        let key = ((r.get(0)?, r.get(1)?), r.get(2)?);
        let hours = [r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?];
        if hours[0] >= scope.end {
            return Ok(None);
        }
        match &mut current {
            Some((k, last)) if *k == key => {
                for (l, h) in last.iter_mut().zip(hours) {
                    *l = (*l).max(h);
                }
            }
            _ => {
                if let Some((k, last)) = current.replace((key, hours)) {
                    count(k, last, &mut out);
                }
            }
        }
    }
    if let Some((k, last)) = current {
        count(k, last, &mut out);
    }
    Ok(Some(out))
}

/// [`users_by_release`] as the union of the scope's day and hour sets.
fn users_by_release_union(
    conn: &Connection,
    scope: &Scope,
) -> Result<HashMap<(i64, i64), UserCounts>, StoreError> {
    let (parts, args) = user_parts(scope);
    let sql = format!(
        "SELECT release_id, project_id, count(*),
             sum(flags & {e} != 0), sum(flags & {c} != 0), sum(flags & {a} != 0)
         FROM (SELECT u.release_id, u.project_id, u.user, max(u.flags & {e}) | max(u.flags & {c})
                   | max(u.flags & {a}) AS flags
               FROM ({parts}) u
               GROUP BY u.release_id, u.project_id, u.user)
         GROUP BY release_id, project_id",
        e = user_flags::ERRORED,
        c = user_flags::CRASHED,
        a = user_flags::ABNORMAL,
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut out = HashMap::new();
    let mut rows = stmt.query(params_from_iter(args))?;
    while let Some(r) = rows.next()? {
        let n = |i: usize| r.get::<_, i64>(i).map(|v| v.max(0) as u64);
        out.insert(
            (r.get(0)?, r.get(1)?),
            UserCounts {
                users: n(2)?,
                errored: n(3)?,
                crashed: n(4)?,
                abnormal: n(5)?,
            },
        );
    }
    Ok(out)
}

/// Sessions per project over a scope (the denominator of session adoption).
pub fn sessions_by_project(
    conn: &Connection,
    scope: &Scope,
) -> Result<HashMap<i64, u64>, StoreError> {
    let (clause, args) = scope.clause();
    let sql = format!(
        "SELECT t.project_id, sum(t.sessions) FROM health_rollups t WHERE {clause}
         GROUP BY t.project_id"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params_from_iter(args), |r| {
        Ok((r.get(0)?, r.get::<_, i64>(1)?.max(0) as u64))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Distinct users per project over a scope (the denominator of user adoption). As
/// [`users_by_release`]: from each user's latest hours when no user has passed the period yet,
/// else from the union of its day and hour sets.
pub fn users_by_project(conn: &Connection, scope: &Scope) -> Result<HashMap<i64, u64>, StoreError> {
    if let Some(counts) = users_by_project_latest(conn, scope)? {
        return Ok(counts);
    }
    users_by_project_union(conn, scope)
}

/// [`users_by_project`] from `health_user_last`; `None` when a user of the scope has a later
/// hour than its end.
fn users_by_project_latest(
    conn: &Connection,
    scope: &Scope,
) -> Result<Option<HashMap<i64, u64>>, StoreError> {
    let (clause, args) = scope.clause_over("seen", (scope.start, i64::MAX));
    let sql = format!(
        "SELECT project_id, count(*), max(seen)
         FROM (SELECT t.project_id, t.user, max(t.seen) AS seen
               FROM health_user_last t WHERE {clause} GROUP BY t.project_id, t.user)
         GROUP BY project_id"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut out = HashMap::new();
    let mut rows = stmt.query(params_from_iter(args))?;
    while let Some(r) = rows.next()? {
        if r.get::<_, i64>(2)? >= scope.end {
            return Ok(None);
        }
        out.insert(r.get(0)?, r.get::<_, i64>(1)?.max(0) as u64);
    }
    Ok(Some(out))
}

/// [`users_by_project`] as the union of the scope's day and hour sets.
fn users_by_project_union(
    conn: &Connection,
    scope: &Scope,
) -> Result<HashMap<i64, u64>, StoreError> {
    let (parts, args) = user_parts(scope);
    let sql = format!(
        "SELECT u.project_id, count(DISTINCT u.user) FROM ({parts}) u GROUP BY u.project_id"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params_from_iter(args), |r| {
        Ok((r.get(0)?, r.get::<_, i64>(1)?.max(0) as u64))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Session counts per (release, project, bucket) over a scope, for `stats` series.
pub fn sessions_by_bucket(
    conn: &Connection,
    scope: &Scope,
) -> Result<Vec<(Pair, i64, u64)>, StoreError> {
    let (clause, args) = scope.clause();
    let sql = format!(
        "SELECT t.release_id, t.project_id, t.bucket, sum(t.sessions) FROM health_rollups t
         WHERE {clause} GROUP BY t.project_id, t.release_id, t.bucket"
    );
    // (Grouped in the primary key's order, so rows are summed as read, without a sort.)
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params_from_iter(args), |r| {
        Ok((
            (r.get(0)?, r.get(1)?),
            r.get(2)?,
            r.get::<_, i64>(3)?.max(0) as u64,
        ))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The (release, project) pairs, of those given, that have any rollup at all: one index probe
/// per pair (a `DISTINCT` over the releases would read every hour of every release).
pub fn pairs_with_data(conn: &Connection, pairs: &[Pair]) -> Result<Vec<Pair>, StoreError> {
    if pairs.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT v.column1, v.column2 FROM (VALUES {}) v
         WHERE EXISTS (SELECT 1 FROM health_rollups t
                       WHERE t.release_id = v.column1 AND t.project_id = v.column2)",
        vec!["(?, ?)"; pairs.len()].join(", ")
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let args = pairs.iter().flat_map(|(r, p)| [*r, *p]);
    let rows = stmt.query_map(params_from_iter(args), |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Deletes rollups of hours before `bucket` (their sets and histograms go with them), the
/// daily rows of days before it, and latest hours before it; the day `bucket` falls in is
/// rebuilt from its remaining hours, so every daily row stays the sum (or union) of its hours.
pub fn prune_before(conn: &Connection, bucket: i64) -> Result<usize, StoreError> {
    let pruned = conn
        .prepare_cached("DELETE FROM health_rollups WHERE bucket < ?1")?
        .execute([bucket])?;
    let day = day_of(bucket);
    for table in [
        "health_users_daily",
        "health_rollups_daily",
        "health_durations_daily",
    ] {
        // A partial day is deleted too, then rebuilt below.
        let op = if day < bucket { "<=" } else { "<" };
        conn.prepare_cached(&format!("DELETE FROM {table} WHERE day {op} ?1"))?
            .execute([day])?;
    }
    if day < bucket {
        for sql in [
            "INSERT INTO health_users_daily (project_id, release_id, day, environment, user, flags)
             SELECT project_id, release_id, ?1, environment, user,
                 max(flags & 1) | max(flags & 2) | max(flags & 4) | max(flags & 8)
             FROM health_users WHERE bucket >= ?2 AND bucket < ?1 + 86400
             GROUP BY project_id, release_id, environment, user",
            "INSERT INTO health_rollups_daily (project_id, release_id, day, environment,
                 sessions, errored_preaggr, errored_sids, crashed, abnormal, unhandled)
             SELECT project_id, release_id, ?1, environment, sum(sessions),
                 sum(errored_preaggr), sum(errored_sids), sum(crashed), sum(abnormal),
                 sum(unhandled)
             FROM health_rollups WHERE bucket >= ?2 AND bucket < ?1 + 86400
             GROUP BY project_id, release_id, environment",
            "INSERT INTO health_durations_daily (project_id, release_id, day, environment, bin,
                 count)
             SELECT project_id, release_id, ?1, environment, bin, sum(count)
             FROM health_durations WHERE bucket >= ?2 AND bucket < ?1 + 86400
             GROUP BY project_id, release_id, environment, bin",
        ] {
            conn.prepare_cached(sql)?.execute([day, bucket])?;
        }
    }
    // Latest hours before the cut say nothing about the periods that remain.
    conn.prepare_cached("DELETE FROM health_user_last WHERE seen < ?1")?
        .execute([bucket])?;
    for column in ["errored", "crashed", "abnormal"] {
        conn.prepare_cached(&format!(
            "UPDATE health_user_last SET {column} = 0 WHERE {column} > 0 AND {column} < ?1"
        ))?
        .execute([bucket])?;
    }
    Ok(pruned)
}

/// Sessions per (project, environment, release) since `bucket`, for adoption stages; only
/// named environments count.
pub fn sessions_by_environment(
    conn: &Connection,
    since_bucket: i64,
) -> Result<Vec<(i64, String, i64, u64)>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT project_id, environment, release_id, sum(sessions) FROM health_rollups
         WHERE bucket >= ?1 AND environment != ''
         GROUP BY project_id, environment, release_id",
    )?;
    let rows = stmt.query_map([since_bucket], |r| {
        Ok((
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get::<_, i64>(3)?.max(0) as u64,
        ))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Marks a release adopted in a project and environment (keeping an earlier adoption time)
/// and clears its `unadopted`.
pub fn mark_adopted(
    conn: &Connection,
    project_id: i64,
    release_id: i64,
    environment: &str,
    now: &str,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO health_adoption (project_id, release_id, environment, adopted)
         VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT DO UPDATE SET adopted = coalesce(adopted, excluded.adopted), unadopted = NULL",
    )?
    .execute(params![project_id, release_id, environment, now])?;
    Ok(())
}

/// Adopted rows that are currently adopted (no `unadopted`).
pub fn currently_adopted(conn: &Connection) -> Result<Vec<(i64, i64, String)>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT project_id, release_id, environment FROM health_adoption
         WHERE adopted IS NOT NULL AND unadopted IS NULL",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Marks an adopted release as replaced.
pub fn mark_unadopted(
    conn: &Connection,
    project_id: i64,
    release_id: i64,
    environment: &str,
    now: &str,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE health_adoption SET unadopted = ?4
         WHERE project_id = ?1 AND release_id = ?2 AND environment = ?3",
    )?
    .execute(params![project_id, release_id, environment, now])?;
    Ok(())
}

/// An adoption row.
#[derive(Debug, Clone, PartialEq)]
pub struct Adoption {
    pub project_id: i64,
    pub release_id: i64,
    pub environment: String,
    pub adopted: Option<String>,
    pub unadopted: Option<String>,
}

/// The adoption rows of some releases.
pub fn adoptions(conn: &Connection, release_ids: &[i64]) -> Result<Vec<Adoption>, StoreError> {
    if release_ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT project_id, release_id, environment, adopted, unadopted FROM health_adoption
         WHERE release_id IN ({}) ORDER BY adopted DESC",
        vec!["?"; release_ids.len()].join(", ")
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params_from_iter(release_ids.iter()), |r| {
        Ok(Adoption {
            project_id: r.get(0)?,
            release_id: r.get(1)?,
            environment: r.get(2)?,
            adopted: r.get(3)?,
            unadopted: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
