//! Release health: sessions in, crash-free rates, adoption and stages out
//! (sentry-semantics.md §8, health-ui-notifications-scale.md §1).
//!
//! * Ingest: [`prepare`] parses and validates the `session` and `sessions` items of an
//!   envelope (outside any transaction: pure), [`record`] files what was accepted into the
//!   hourly rollups and counts what was refused, by reason, in the caller's transaction. A
//!   refused item never fails the envelope's other items. A session of an unknown release
//!   creates the release, as Sentry does.
//! * Release pages: [`health_data`] computes `projects[].healthData` of releases for a summary
//!   period, the last 24 h and a stats period, as Sentry's release serializer does.
//! * The hourly job: [`update_adoption`] (Sentry's adoption stages over the last 6 h) and
//!   [`prune`] (`health.retention`).
//!
//! The sessions API (`/organizations/{org}/sessions/`) lives in [`sessions`].

pub mod sessions;

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use rusqlite::{Connection, Transaction};

use super::CoreError;
use super::org::ProjectRef;
use super::release::{self, CreateRelease};
use crate::config::Config;
use crate::model::envelope::Envelope;
use crate::model::health::{
    self, BUCKET_SECS, SessionCounts, bucket_of, crash_free_percent, percent,
};
use crate::model::session::{self, Clock, Contribution, Refusal};
use crate::model::{time, version};
use crate::store::health::{self as store, Key, Pair, Scope};
use crate::store::orgs::{Org, Project};
use crate::store::{Store, StoreError};

/// The health rules from the config.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// `health.max_session_age`.
    pub max_session_age: Duration,
    /// `health.retention`.
    pub retention: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings::from_config(&Config::default())
    }
}

impl Settings {
    pub fn from_config(config: &Config) -> Self {
        Settings {
            max_session_age: Duration::seconds(config.health.max_session_age),
            retention: Duration::seconds(config.health.retention),
        }
    }
}

/// The accepted sessions of one item: one release and environment, one or more
/// contributions.
#[derive(Debug, Clone, PartialEq)]
pub struct Accepted {
    pub release: String,
    /// `''` when none (or an invalid one was dropped).
    pub environment: String,
    pub contributions: Vec<Contribution>,
}

/// The session items of an envelope, judged.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Prepared {
    pub accepted: Vec<Accepted>,
    /// One reason per refused item (or aggregate group).
    pub refused: Vec<&'static str>,
}

impl Prepared {
    pub fn is_empty(&self) -> bool {
        self.accepted.is_empty() && self.refused.is_empty()
    }
}

/// A session id for an update that carries none (Relay makes up a fresh one).
fn fresh_sid() -> String {
    let mut bytes = [0u8; 16];
    // Without randomness the update still counts; it just cannot collide with another.
    let _ = getrandom::fill(&mut bytes);
    hex::encode(bytes)
}

/// Parses and validates the `session` and `sessions` items of an envelope; the header's
/// `sent_at` corrects the client's clock drift.
pub fn prepare(env: &Envelope, received: DateTime<Utc>, settings: &Settings) -> Prepared {
    let clock = Clock {
        received,
        sent_at: env
            .headers
            .get("sent_at")
            .and_then(|v| v.as_str())
            .and_then(time::parse),
        max_age: settings.max_session_age,
    };
    let mut out = Prepared::default();
    for item in &env.items {
        match item.ty.as_str() {
            "session" => {
                match session::parse_update(&item.payload)
                    .and_then(|s| session::validate_update(s, &clock))
                {
                    Ok(s) => {
                        let sid = s.sid.clone().unwrap_or_else(fresh_sid);
                        out.accepted.push(Accepted {
                            release: s.attrs.release.clone(),
                            environment: s.attrs.environment.clone().unwrap_or_default(),
                            contributions: vec![Contribution::of_update(&s, &sid)],
                        });
                    }
                    Err(r) => out.refused.push(r.reason()),
                }
            }
            "sessions" => {
                match session::parse_aggregates(&item.payload)
                    .and_then(|s| session::validate_aggregates(s, &clock))
                {
                    Ok((s, dropped)) => {
                        out.refused.extend(dropped.iter().map(Refusal::reason));
                        out.accepted.push(Accepted {
                            release: s.attrs.release.clone(),
                            environment: s.attrs.environment.clone().unwrap_or_default(),
                            contributions: s
                                .aggregates
                                .iter()
                                .map(Contribution::of_group)
                                .collect(),
                        });
                    }
                    Err(r) => out.refused.push(r.reason()),
                }
            }
            _ => {}
        }
    }
    out
}

fn is_empty(c: &Contribution) -> bool {
    c.sessions == 0
        && c.errored_preaggr == 0
        && c.crashed == 0
        && c.abnormal == 0
        && c.unhandled == 0
        && c.errored_sid.is_none()
        && c.user.is_none()
        && c.exited_duration.is_none()
}

/// Files accepted sessions into the rollups of `project` and counts the refused ones, in the
/// caller's transaction.
pub fn record(
    tx: &Transaction<'_>,
    org: &Org,
    project: &Project,
    prepared: &Prepared,
    received: DateTime<Utc>,
) -> Result<(), CoreError> {
    let now = time::format(received);
    let mut reasons: HashMap<&str, u64> = HashMap::new();
    for r in &prepared.refused {
        *reasons.entry(r).or_default() += 1;
    }
    for (reason, n) in reasons {
        store::add_refusal(tx, project.id, reason, n, &now)?;
    }
    let mut releases: HashMap<&str, i64> = HashMap::new();
    for a in &prepared.accepted {
        let release_id = match releases.get(a.release.as_str()) {
            Some(id) => *id,
            None => {
                let up = release::upsert(
                    tx,
                    org,
                    &CreateRelease {
                        version: a.release.clone(),
                        projects: vec![ProjectRef::Id(project.id)],
                        ..Default::default()
                    },
                    &now,
                )?;
                releases.insert(&a.release, up.release.id);
                up.release.id
            }
        };
        for c in a.contributions.iter().filter(|c| !is_empty(c)) {
            let key = Key {
                project_id: project.id,
                release_id,
                bucket: bucket_of(c.started.timestamp()),
                environment: &a.environment,
            };
            store::add_counts(
                tx,
                &key,
                &SessionCounts {
                    sessions: c.sessions,
                    errored_preaggr: c.errored_preaggr,
                    errored_sids: 0,
                    crashed: c.crashed,
                    abnormal: c.abnormal,
                    unhandled: c.unhandled,
                },
            )?;
            if let Some(sid) = &c.errored_sid
                && store::add_errored_sid(tx, &key, sid)?
            {
                store::add_counts(
                    tx,
                    &key,
                    &SessionCounts {
                        errored_sids: 1,
                        ..Default::default()
                    },
                )?;
            }
            if let Some((did, flags)) = &c.user {
                store::add_user(tx, &key, did, *flags)?;
            }
            if let Some(d) = c.exited_duration {
                store::add_duration(tx, &key, health::duration_bin(d))?;
            }
        }
    }
    Ok(())
}

/// The window of whole hours covering the last `secs` seconds up to `now` (the current hour
/// included): `[start, end)` in bucket seconds.
pub fn window(now: i64, secs: i64) -> (i64, i64) {
    let end = bucket_of(now) + BUCKET_SECS;
    let hours = ((secs + BUCKET_SECS - 1) / BUCKET_SECS).max(1);
    (end - hours * BUCKET_SECS, end)
}

/// What `health=1` asks of the release endpoints.
#[derive(Debug, Clone)]
pub struct HealthRequest {
    pub environments: Vec<String>,
    /// `summaryStatsPeriod` in seconds.
    pub summary_secs: i64,
    /// `healthStatsPeriod`: name, rollup and bucket count; `None` for no series.
    pub stats: Option<(String, i64, i64)>,
    /// `healthStat=users` (else sessions).
    pub stat_users: bool,
    /// Now, unix seconds.
    pub now: i64,
}

/// `projects[].healthData` of one release in one project (Sentry's keys).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HealthData {
    pub has_health_data: bool,
    pub crash_free_users: Option<f64>,
    pub crash_free_sessions: Option<f64>,
    pub total_users: u64,
    pub total_users_24h: u64,
    pub total_project_users_24h: u64,
    pub total_sessions: u64,
    pub total_sessions_24h: u64,
    pub total_project_sessions_24h: u64,
    pub adoption: Option<f64>,
    pub sessions_adoption: Option<f64>,
    pub sessions_crashed: u64,
    pub sessions_errored: u64,
    /// Seconds.
    pub duration_p50: Option<f64>,
    pub duration_p90: Option<f64>,
    /// `(period name, [(ts, value)])`.
    pub stats: Option<(String, Vec<(i64, u64)>)>,
}

fn scope(org_id: i64, release_ids: &[i64], req: &HealthRequest, (start, end): (i64, i64)) -> Scope {
    Scope {
        org_id,
        project_ids: Vec::new(),
        release_ids: Some(release_ids.to_vec()),
        environments: req.environments.clone(),
        start,
        end,
    }
}

/// Sentry's release health overview for (release, project) pairs.
///
/// The figures are independent queries over the rollups. The summary period's (the most rows:
/// 14 days by default) run on a second reader connection of `reads` while `conn` reads the
/// rest, so a page with health waits for about half of its queries' sum when a core is free
/// (BENCHMARKS.md "Release health"). The two connections may see snapshots a commit apart,
/// as Sentry's separate queries may.
pub fn health_data(
    conn: &Connection,
    reads: &Store,
    org_id: i64,
    pairs: &[(i64, i64)],
    req: &HealthRequest,
) -> Result<HashMap<(i64, i64), HealthData>, CoreError> {
    let mut out = HashMap::new();
    if pairs.is_empty() {
        return Ok(out);
    }
    let release_ids: Vec<i64> = pairs
        .iter()
        .map(|(r, _)| *r)
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let has: HashSet<(i64, i64)> = store::pairs_with_data(conn, pairs)?.into_iter().collect();
    let zeros = req.stats.as_ref().map(|(name, rollup, n)| {
        let points = health::stats_buckets(req.now, *rollup, *n)
            .into_iter()
            .map(|ts| (ts, 0))
            .collect::<Vec<_>>();
        (name.clone(), points)
    });
    if has.is_empty() {
        return Ok(pairs
            .iter()
            .map(|p| {
                let data = HealthData {
                    stats: zeros.clone(),
                    ..Default::default()
                };
                (*p, data)
            })
            .collect());
    }
    let summary_window = window(req.now, req.summary_secs);
    let summary = scope(org_id, &release_ids, req, summary_window);
    let day_window = window(req.now, 86400);
    let same_window = summary_window == day_window;
    let day = scope(org_id, &release_ids, req, day_window);
    let project_ids: Vec<i64> = pairs
        .iter()
        .map(|(_, p)| *p)
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let project_day = Scope {
        release_ids: None,
        project_ids: project_ids.clone(),
        ..day.clone()
    };
    let summary_reads = |c: &Connection| -> Result<_, StoreError> {
        Ok((
            store::counts_by_release(c, &summary)?,
            store::duration_bins_by_release(c, &summary)?,
        ))
    };
    let (summary_figures, rest) = std::thread::scope(|s| {
        let summary_figures = s.spawn(|| reads.read_blocking(summary_reads));
        let rest = (|| -> Result<_, CoreError> {
            // The default series (sessions per hour over the last 24 h) covers the same hourly
            // rows as the 24 h counts: both come from one read of them.
            let mut day_counts = None;
            let series = match &req.stats {
                Some((name, rollup, n)) => {
                    let steps = health::stats_buckets(req.now, *rollup, *n);
                    let hourly_day = !req.stat_users
                        && *rollup == BUCKET_SECS
                        && steps.first() == Some(&day.start)
                        && steps.last().map(|l| l + rollup) == Some(day.end);
                    let series = if hourly_day {
                        let (counts, series) = day_counts_and_series(conn, &day, &steps)?;
                        day_counts = Some(counts);
                        series
                    } else {
                        stats_series(conn, org_id, &release_ids, req, *rollup, *n)?
                    };
                    Some((name.clone(), series))
                }
                None => None,
            };
            // Both periods end at the current hour: each user's latest hours answer both in
            // one read (the longer period's scope covers the shorter).
            let both = if summary.start <= day.start {
                &summary
            } else {
                &day
            };
            let [users, users_24h] =
                store::users_by_release_since(conn, both, [summary.start, day.start])?;
            // A 24 h summary (the web pages') already is the last 24 h: read once.
            let sessions_24h = match day_counts {
                Some(counts) => Some(counts),
                None if same_window => None,
                None => Some(store::counts_by_release(conn, &day)?),
            };
            Ok((
                users,
                users_24h,
                sessions_24h,
                store::sessions_by_project(conn, &project_day)?,
                store::users_by_project(conn, &project_day)?,
                series,
            ))
        })();
        (summary_figures.join(), rest)
    });
    let (sessions, bins) = summary_figures
        .map_err(|_| CoreError::Store(StoreError::Task("a health query panicked".into())))??;
    let (users, users_24h, sessions_24h, project_sessions, project_users, series) = rest?;
    let sessions_24h = sessions_24h.unwrap_or_else(|| sessions.clone());
    for pair in pairs {
        let s = sessions.get(pair).copied().unwrap_or_default();
        let u = users.get(pair).copied().unwrap_or_default();
        let s24 = sessions_24h.get(pair).copied().unwrap_or_default();
        let u24 = users_24h.get(pair).copied().unwrap_or_default();
        let ps = project_sessions.get(&pair.1).copied().unwrap_or(0);
        let pu = project_users.get(&pair.1).copied().unwrap_or(0);
        let b = bins.get(pair).map(Vec::as_slice).unwrap_or(&[]);
        let stats = match (&series, &zeros) {
            (Some((name, all)), Some((_, zero))) => Some((
                name.clone(),
                all.get(pair).cloned().unwrap_or_else(|| zero.clone()),
            )),
            _ => None,
        };
        out.insert(
            *pair,
            HealthData {
                has_health_data: has.contains(pair),
                crash_free_users: crash_free_percent(u.crashed, u.users),
                crash_free_sessions: crash_free_percent(s.crashed, s.sessions),
                total_users: u.users,
                total_users_24h: u24.users,
                total_project_users_24h: pu,
                total_sessions: s.sessions,
                total_sessions_24h: s24.sessions,
                total_project_sessions_24h: ps,
                adoption: percent(u24.users, pu),
                sessions_adoption: percent(s24.sessions, ps),
                sessions_crashed: s.crashed,
                sessions_errored: s.errored(),
                duration_p50: health::quantile(b, 0.5),
                duration_p90: health::quantile(b, 0.9),
                stats,
            },
        );
    }
    Ok(out)
}

/// A `stats` series: `(step start, value)`.
type Series = Vec<(i64, u64)>;

/// [`day_counts_and_series`]'s answer: counts and hourly series per (release, project).
type DayFigures = (HashMap<Pair, SessionCounts>, HashMap<Pair, Series>);

/// The session counts of each (release, project) over `day` and its sessions per hour at
/// `steps` (the hours of `day`), from one read of the hourly rollups.
fn day_counts_and_series(
    conn: &Connection,
    day: &Scope,
    steps: &[i64],
) -> Result<DayFigures, CoreError> {
    let mut counts: HashMap<Pair, SessionCounts> = HashMap::new();
    let mut per_hour: HashMap<Pair, Vec<u64>> = HashMap::new();
    let first = steps.first().copied().unwrap_or(day.start);
    for row in store::rollups(conn, day)? {
        let pair = (row.release_id, row.project_id);
        counts.entry(pair).or_default().add(&row.counts);
        let i = ((row.bucket - first) / BUCKET_SECS) as usize;
        if let Some(n) = per_hour
            .entry(pair)
            .or_insert_with(|| vec![0; steps.len()])
            .get_mut(i)
        {
            *n += row.counts.sessions;
        }
    }
    let series = per_hour
        .into_iter()
        .map(|(pair, values)| (pair, steps.iter().copied().zip(values).collect()))
        .collect();
    Ok((counts, series))
}

/// The `stats` series of each (release, project): sessions or distinct users per step.
fn stats_series(
    conn: &Connection,
    org_id: i64,
    release_ids: &[i64],
    req: &HealthRequest,
    rollup: i64,
    n: i64,
) -> Result<HashMap<Pair, Series>, CoreError> {
    let steps = health::stats_buckets(req.now, rollup, n);
    let (Some(first), Some(last)) = (steps.first().copied(), steps.last().copied()) else {
        return Ok(HashMap::new());
    };
    let sc = scope(org_id, release_ids, req, (first, last + rollup));
    let index = |bucket: i64| ((bucket - first) / rollup) as usize;
    let mut out: HashMap<(i64, i64), Vec<u64>> = HashMap::new();
    if req.stat_users {
        let mut seen: HashSet<((i64, i64), usize, i64)> = HashSet::new();
        for u in store::users(conn, &sc)? {
            let pair = (u.release_id, u.project_id);
            let i = index(u.bucket);
            if seen.insert((pair, i, u.user)) {
                out.entry(pair).or_insert_with(|| vec![0; steps.len()])[i] += 1;
            }
        }
    } else {
        for (pair, bucket, n) in store::sessions_by_bucket(conn, &sc)? {
            out.entry(pair).or_insert_with(|| vec![0; steps.len()])[index(bucket)] += n;
        }
    }
    Ok(out
        .into_iter()
        .map(|(pair, values)| (pair, steps.iter().copied().zip(values).collect()))
        .collect())
}

/// The session sorts of the releases list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthSort {
    CrashFreeSessions,
    CrashFreeUsers,
    Sessions,
    Users,
}

impl HealthSort {
    /// The sort and whether it forces a 24 h window (`sessions_24h`, `users_24h`).
    pub fn parse(text: &str) -> Option<(HealthSort, bool)> {
        Some(match text {
            "crash_free_sessions" => (HealthSort::CrashFreeSessions, false),
            "crash_free_users" => (HealthSort::CrashFreeUsers, false),
            "sessions" => (HealthSort::Sessions, false),
            "users" => (HealthSort::Users, false),
            "sessions_24h" => (HealthSort::Sessions, true),
            "users_24h" => (HealthSort::Users, true),
            _ => return None,
        })
    }
}

/// Orders (release, project) pairs by a session figure over `[start, end)`, best first as
/// Sentry does (lowest crash rate, most sessions or users); pairs without data keep their
/// order after the others.
pub fn sort_pairs(
    conn: &Connection,
    org_id: i64,
    pairs: Vec<(i64, i64)>,
    sort: HealthSort,
    environments: &[String],
    (start, end): (i64, i64),
) -> Result<Vec<(i64, i64)>, CoreError> {
    let release_ids: Vec<i64> = pairs
        .iter()
        .map(|(r, _)| *r)
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    // Past SQLite's bound-parameter limit (32 766) an `IN (...)` list fails: with that many
    // releases, read the whole organization's window instead; only `pairs` are kept below.
    let release_ids = (release_ids.len() <= 10_000).then_some(release_ids);
    let sc = Scope {
        org_id,
        project_ids: Vec::new(),
        release_ids,
        environments: environments.to_vec(),
        start,
        end,
    };
    // Lower keys sort first.
    let keys: HashMap<(i64, i64), f64> = match sort {
        HealthSort::CrashFreeSessions | HealthSort::Sessions => {
            store::counts_by_release(conn, &sc)?
                .into_iter()
                .filter(|(_, c)| c.sessions > 0)
                .map(|(k, c)| {
                    let v = if sort == HealthSort::Sessions {
                        -(c.sessions as f64)
                    } else {
                        c.crashed as f64 / c.sessions as f64
                    };
                    (k, v)
                })
                .collect()
        }
        HealthSort::CrashFreeUsers | HealthSort::Users => store::users_by_release(conn, &sc)?
            .into_iter()
            .filter(|(_, u)| u.users > 0)
            .map(|(k, u)| {
                let v = if sort == HealthSort::Users {
                    -(u.users as f64)
                } else {
                    u.crashed as f64 / u.users as f64
                };
                (k, v)
            })
            .collect(),
    };
    let (mut with, without): (Vec<_>, Vec<_>) =
        pairs.into_iter().partition(|p| keys.contains_key(p));
    with.sort_by(|a, b| keys[a].total_cmp(&keys[b]));
    with.extend(without);
    Ok(with)
}

/// One release's adoption stage in a project (`adoptionStages`).
#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    pub stage: &'static str,
    pub adopted: Option<String>,
    pub unadopted: Option<String>,
}

/// Adoption stages per (release, project): the row of the filtered environment, else the most
/// recently adopted one; `low_adoption` without a row.
pub fn stages(
    conn: &Connection,
    pairs: &[(i64, i64)],
    environments: &[String],
) -> Result<HashMap<(i64, i64), Stage>, CoreError> {
    let ids: Vec<i64> = pairs.iter().map(|(r, _)| *r).collect();
    let mut out: HashMap<(i64, i64), Stage> = HashMap::new();
    for a in store::adoptions(conn, &ids)? {
        if !environments.is_empty() && !environments.contains(&a.environment) {
            continue;
        }
        out.entry((a.release_id, a.project_id)).or_insert(Stage {
            stage: health::adoption_stage(a.adopted.as_deref(), a.unadopted.as_deref()),
            adopted: a.adopted,
            unadopted: a.unadopted,
        });
    }
    for p in pairs {
        out.entry(*p).or_insert(Stage {
            stage: "low_adoption",
            adopted: None,
            unadopted: None,
        });
    }
    Ok(out)
}

/// Sentry's adoption-stage task: over the last 6 h of each (project, environment), a release
/// with at least 10 % of the sessions is adopted; one adopted before that no longer is, is
/// replaced. Returns (adopted, replaced) counts of this run.
pub fn update_adoption(
    tx: &Transaction<'_>,
    now: DateTime<Utc>,
) -> Result<(usize, usize), CoreError> {
    let since = now.timestamp() - 6 * 3600;
    let rows = store::sessions_by_environment(tx, bucket_of(since))?;
    let mut totals: HashMap<(i64, &str), u64> = HashMap::new();
    for (project, env, _, n) in &rows {
        *totals.entry((*project, env.as_str())).or_default() += n;
    }
    let mut versions: HashMap<i64, bool> = HashMap::new();
    let stamp = time::format(now);
    let mut adopted = HashSet::new();
    for (project, env, release_id, n) in &rows {
        let total = totals[&(*project, env.as_str())];
        if total == 0 || (*n as f64) < health::ADOPTION_THRESHOLD * total as f64 {
            continue;
        }
        let valid = match versions.get(release_id) {
            Some(v) => *v,
            None => {
                let v = crate::store::releases::by_id(tx, *release_id)?
                    .is_some_and(|r| version::validate(&r.version).is_ok());
                versions.insert(*release_id, v);
                v
            }
        };
        if valid {
            store::mark_adopted(tx, *project, *release_id, env, &stamp)?;
            adopted.insert((*project, *release_id, env.clone()));
        }
    }
    let seen: HashSet<i64> = rows.iter().map(|(p, ..)| *p).collect();
    let mut replaced = 0;
    for (project, release_id, env) in store::currently_adopted(tx)? {
        if seen.contains(&project) && !adopted.contains(&(project, release_id, env.clone())) {
            store::mark_unadopted(tx, project, release_id, &env, &stamp)?;
            replaced += 1;
        }
    }
    Ok((adopted.len(), replaced))
}

/// Deletes rollups older than `retention`; returns how many hourly rows went.
pub fn prune(
    tx: &Transaction<'_>,
    now: DateTime<Utc>,
    retention: Duration,
) -> Result<usize, CoreError> {
    Ok(store::prune_before(
        tx,
        bucket_of((now - retention).timestamp()),
    )?)
}

/// Refused session items per project and reason (for operators).
pub fn refusals(conn: &Connection, org: &Org) -> Result<Vec<store::RefusalCount>, CoreError> {
    Ok(store::refusals(conn, org.id)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::envelope;
    use crate::store::Store;

    /// An envelope of `sessions` items: `(release, environment, sessions)` started `ago`.
    fn aggregates(items: &[(&str, &str, u64)], started: DateTime<Utc>) -> Envelope {
        let mut body = String::from("{}\n");
        for (release, env, n) in items {
            let payload = serde_json::json!({
                "attrs": {"release": release, "environment": env},
                "aggregates": [{"started": time::format(started), "exited": n}],
            });
            body.push_str("{\"type\":\"sessions\"}\n");
            body.push_str(&payload.to_string());
            body.push('\n');
        }
        envelope::parse(body.as_bytes()).unwrap()
    }

    fn setup() -> (tempfile::TempDir, Store, Org, Project) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_dir(dir.path()).unwrap();
        let now = crate::core::now();
        let (org, project) = store
            .write_blocking(|tx| {
                let org = crate::store::orgs::ensure_org(tx, "acme", &now)?;
                let p = crate::store::orgs::upsert_project(tx, org.id, "app", "App", None, &now)?;
                Ok::<_, CoreError>((org, p))
            })
            .unwrap();
        (dir, store, org, project)
    }

    fn ingest(store: &Store, org: &Org, project: &Project, env: &Envelope, now: DateTime<Utc>) {
        let settings = Settings {
            max_session_age: Duration::days(100),
            retention: Duration::days(90),
        };
        let prepared = prepare(env, now, &settings);
        assert!(prepared.refused.is_empty(), "{:?}", prepared.refused);
        store
            .write_blocking(|tx| record(tx, org, project, &prepared, now))
            .unwrap();
    }

    fn stage_of(store: &Store, release: &str, project: &Project, env: &str) -> Stage {
        store
            .read_blocking(|conn| {
                let r = crate::store::releases::by_version(conn, project.org_id, release)?.unwrap();
                let mut s = stages(conn, &[(r.id, project.id)], &[env.to_string()])?;
                Ok::<_, CoreError>(s.remove(&(r.id, project.id)).unwrap())
            })
            .unwrap()
    }

    #[test]
    fn adoption_stages_as_sentry_computes_them() {
        let (_dir, store, org, project) = setup();
        let now = Utc::now();
        // Last 6 h of production: 1.0 has 95 %, 0.9 has 5 %; staging only 0.9.
        ingest(
            &store,
            &org,
            &project,
            &aggregates(
                &[
                    ("app@1.0", "production", 95),
                    ("app@0.9", "production", 5),
                    ("app@0.9", "staging", 3),
                ],
                now - Duration::hours(2),
            ),
            now,
        );
        let run = |at: DateTime<Utc>| store.write_blocking(|tx| update_adoption(tx, at)).unwrap();
        assert_eq!(run(now), (2, 0));
        assert_eq!(
            stage_of(&store, "app@1.0", &project, "production").stage,
            "adopted"
        );
        assert_eq!(
            stage_of(&store, "app@0.9", &project, "production").stage,
            "low_adoption"
        );
        assert_eq!(
            stage_of(&store, "app@0.9", &project, "staging").stage,
            "adopted"
        );

        // Five hours later 2.0 takes over production: 1.0 is replaced.
        let later = now + Duration::hours(5);
        ingest(
            &store,
            &org,
            &project,
            &aggregates(
                &[("app@2.0", "production", 100)],
                later - Duration::minutes(10),
            ),
            later,
        );
        let (_, replaced) = run(later);
        assert_eq!(
            replaced, 2,
            "1.0 in production and 0.9 in staging left the 6 h window"
        );
        let s = stage_of(&store, "app@1.0", &project, "production");
        assert_eq!(s.stage, "replaced");
        assert!(s.adopted.is_some() && s.unadopted.is_some());
        assert_eq!(
            stage_of(&store, "app@2.0", &project, "production").stage,
            "adopted"
        );
    }

    /// `release.stage:` and `sort=adoption` on the releases list, over the stages the test
    /// above builds.
    #[test]
    fn release_list_filters_by_stage_and_sorts_by_adoption() {
        let (_dir, store, org, project) = setup();
        let now = Utc::now();
        let later = now + Duration::hours(5);
        for (items, started, at) in [
            (
                vec![("app@1.0", "production", 95), ("app@0.9", "production", 5)],
                now - Duration::hours(2),
                now,
            ),
            (
                vec![("app@2.0", "production", 100)],
                later - Duration::minutes(10),
                later,
            ),
        ] {
            ingest(&store, &org, &project, &aggregates(&items, started), at);
            store.write_blocking(|tx| update_adoption(tx, at)).unwrap();
        }
        let list = |query: &str, sort: &str, envs: &[&str]| {
            let req = crate::core::release::ListRequest {
                query: Some(query.to_string()),
                sort: Some(sort.to_string()),
                environments: envs.iter().map(|e| e.to_string()).collect(),
                ..Default::default()
            };
            store.read_blocking(|conn| {
                crate::core::release::list(conn, &org, &req).map(|page| {
                    page.items
                        .into_iter()
                        .map(|r| r.release.version)
                        .collect::<Vec<_>>()
                })
            })
        };
        let prod = ["production"];
        assert_eq!(
            list("release.stage:adopted", "date", &prod).unwrap(),
            ["app@2.0"]
        );
        assert_eq!(
            list("release.stage:replaced", "date", &prod).unwrap(),
            ["app@1.0"]
        );
        assert_eq!(
            list("release.stage:low_adoption", "date", &prod).unwrap(),
            ["app@0.9"]
        );
        let mut others = list("!release.stage:adopted", "date", &prod).unwrap();
        others.sort();
        assert_eq!(others, ["app@0.9", "app@1.0"]);
        let mut both = list("release.stage:[adopted,replaced]", "date", &prod).unwrap();
        both.sort();
        assert_eq!(both, ["app@1.0", "app@2.0"]);
        assert!(
            list("release.stage:adopted", "date", &["staging"])
                .unwrap()
                .is_empty()
        );
        for (query, envs, detail) in [
            (
                "release.stage:adopted",
                &[][..],
                "Choose a single environment to filter by release stage.",
            ),
            (
                "release.stage:gone",
                &prod[..],
                "Unsupported release.stage value.",
            ),
        ] {
            let err = list(query, "date", envs).unwrap_err();
            assert!(err.to_string().contains(detail), "{err}");
        }
        // Adopted most recently first, never adopted (in production) last.
        assert_eq!(
            list("", "adoption", &prod).unwrap(),
            ["app@2.0", "app@1.0", "app@0.9"]
        );
    }

    /// Session updates with users: `(release, environment, did, status, started)`.
    fn user_sessions(items: &[(&str, &str, String, &str, DateTime<Utc>)]) -> Envelope {
        let mut body = String::from("{}\n");
        for (n, (release, env, did, status, started)) in items.iter().enumerate() {
            body.push_str("{\"type\":\"session\"}\n");
            let payload = serde_json::json!({
                "sid": format!("s{n}"), "did": did, "init": true, "status": status,
                "started": time::format(*started),
                "attrs": {"release": release, "environment": env},
            });
            body.push_str(&payload.to_string());
            body.push('\n');
        }
        envelope::parse(body.as_bytes()).unwrap()
    }

    /// Distinct (users, crashed users) per (release, project), unioned in Rust from the hourly
    /// sets alone.
    fn hourly_union(conn: &Connection, sc: &Scope) -> HashMap<Pair, (u64, u64)> {
        let mut flags: HashMap<(Pair, i64), i64> = HashMap::new();
        for u in store::users(conn, sc).unwrap() {
            *flags
                .entry(((u.release_id, u.project_id), u.user))
                .or_default() |= u.flags;
        }
        let mut out: HashMap<Pair, (u64, u64)> = HashMap::new();
        for ((pair, _), f) in flags {
            let e = out.entry(pair).or_default();
            e.0 += 1;
            e.1 += u64::from(f & session::user_flags::CRASHED != 0);
        }
        out
    }

    #[test]
    fn daily_and_hourly_sets_give_the_hourly_union() {
        let (_dir, store, org, project) = setup();
        let now = Utc::now();
        // Nine days of sessions every 5 hours, 13 users, one crash in 7, two releases.
        let items: Vec<_> = (0..(9 * 24 / 5))
            .map(|i| {
                let release = if i % 2 == 0 { "app@1.0" } else { "app@2.0" };
                let env = if i % 3 == 0 { "staging" } else { "production" };
                let status = if i % 7 == 0 { "crashed" } else { "exited" };
                let started = now - Duration::hours(5 * i);
                (release, env, format!("u{}", i % 13), status, started)
            })
            .collect();
        ingest(&store, &org, &project, &user_sessions(&items), now);
        store
            .read_blocking(|conn| {
                let daily: i64 =
                    conn.query_row("SELECT count(*) FROM health_users_daily", [], |r| r.get(0))?;
                assert!(daily > 0);
                for (secs, envs) in [
                    (7 * 86400, vec![]),
                    (7 * 86400, vec!["production".to_string()]),
                    (3 * 86400 + 7200, vec![]),
                    (86400, vec![]),
                    (9 * 86400, vec![]),
                ] {
                    let (start, end) = window(now.timestamp(), secs);
                    let sc = Scope {
                        org_id: org.id,
                        environments: envs,
                        start,
                        end,
                        ..Default::default()
                    };
                    let split: HashMap<Pair, (u64, u64)> = store::users_by_release(conn, &sc)?
                        .into_iter()
                        .map(|(k, u)| (k, (u.users, u.crashed)))
                        .collect();
                    let hourly = hourly_union(conn, &sc);
                    assert!(!hourly.is_empty());
                    assert_eq!(split, hourly, "{secs} s");
                    let per_project: u64 = store::users_by_project(conn, &sc)?
                        .get(&project.id)
                        .copied()
                        .unwrap_or(0);
                    let all: HashSet<i64> = store::users(conn, &sc)?
                        .into_iter()
                        .map(|u| u.user)
                        .collect();
                    assert_eq!(per_project, all.len() as u64, "{secs} s");
                }
                Ok::<_, CoreError>(())
            })
            .unwrap();
        // Retention cutting a day in two rebuilds that day's set from its remaining hours.
        let cutoff = bucket_of(now.timestamp()) - 5 * 86400 - 7 * 3600;
        store
            .write_blocking(|tx| store::prune_before(tx, cutoff))
            .unwrap();
        store
            .read_blocking(|conn| {
                let sc = Scope {
                    org_id: org.id,
                    start: health::day_of(cutoff),
                    end: health::day_of(cutoff) + 86400,
                    ..Default::default()
                };
                let old: i64 = conn.query_row(
                    "SELECT count(*) FROM health_users_daily WHERE day < ?1",
                    [health::day_of(cutoff)],
                    |r| r.get(0),
                )?;
                assert_eq!(old, 0);
                let daily: HashMap<Pair, (u64, u64)> = store::users_by_release(conn, &sc)?
                    .into_iter()
                    .map(|(k, u)| (k, (u.users, u.crashed)))
                    .collect();
                assert_eq!(daily, hourly_union(conn, &sc));
                Ok::<_, CoreError>(())
            })
            .unwrap();
    }

    /// Sessions with users and durations over nine days, two releases, two environments.
    fn mixed_sessions(now: DateTime<Utc>) -> Envelope {
        let mut body = String::from("{}\n");
        for i in 0..(9 * 24 / 5) {
            let release = if i % 2 == 0 { "app@1.0" } else { "app@2.0" };
            let env = if i % 3 == 0 { "staging" } else { "production" };
            let status = match i % 7 {
                0 => "crashed",
                3 => "abnormal",
                _ => "exited",
            };
            body.push_str("{\"type\":\"session\"}\n");
            let payload = serde_json::json!({
                "sid": format!("s{i}"), "did": format!("u{}", i % 13), "init": true,
                "status": status, "errors": i64::from(i % 5 == 0),
                "duration": 10.0 + f64::from(i % 11) * 7.5,
                "started": time::format(now - Duration::hours(5 * i64::from(i))),
                "attrs": {"release": release, "environment": env},
            });
            body.push_str(&payload.to_string());
            body.push('\n');
        }
        envelope::parse(body.as_bytes()).unwrap()
    }

    /// Session counts and duration bins per (release, project), summed in Rust from the hourly
    /// rows alone.
    type HourlySums = (
        HashMap<Pair, (u64, u64, u64)>,
        HashMap<Pair, Vec<(i64, u64)>>,
    );
    fn hourly_sums(conn: &Connection, sc: &Scope) -> HourlySums {
        let mut counts: HashMap<Pair, (u64, u64, u64)> = HashMap::new();
        for r in store::rollups(conn, sc).unwrap() {
            let e = counts.entry((r.release_id, r.project_id)).or_default();
            e.0 += r.counts.sessions;
            e.1 += r.counts.crashed;
            e.2 += r.counts.errored();
        }
        let mut bins: HashMap<Pair, HashMap<i64, u64>> = HashMap::new();
        for d in store::durations(conn, sc).unwrap() {
            *bins
                .entry((d.release_id, d.project_id))
                .or_default()
                .entry(d.bin)
                .or_default() += d.count;
        }
        let bins = bins
            .into_iter()
            .map(|(k, v)| {
                let mut v: Vec<_> = v.into_iter().collect();
                v.sort();
                (k, v)
            })
            .collect();
        (counts, bins)
    }

    fn release_ids(conn: &Connection) -> Vec<i64> {
        conn.prepare("SELECT id FROM releases")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    /// The daily sums and each user's latest hours answer every period as the hourly rows do,
    /// including periods that end in the past (which must not use the latest hours), and after
    /// retention cut a day in two.
    #[test]
    fn daily_sums_and_latest_hours_match_the_hourly_rows() {
        let (_dir, store, org, project) = setup();
        let now = Utc::now();
        ingest(&store, &org, &project, &mixed_sessions(now), now);
        let check = |label: &str| {
            store
                .read_blocking(|conn| {
                    let releases = release_ids(conn);
                    let n = now.timestamp();
                    let ending_now = |secs| window(n, secs);
                    let ending_before = |secs, ago| {
                        let (s, e) = window(n - ago, secs);
                        (s, e)
                    };
                    for ((start, end), envs) in [
                        (ending_now(14 * 86400), vec![]),
                        (ending_now(7 * 86400), vec!["production".to_string()]),
                        (ending_now(3 * 86400 + 7200), vec![]),
                        (ending_now(86400), vec![]),
                        (ending_now(3600), vec![]),
                        (ending_before(3 * 86400, 2 * 86400), vec![]),
                        (ending_before(86400 + 5 * 3600, 36 * 3600), vec![]),
                    ] {
                        let sc = Scope {
                            org_id: org.id,
                            release_ids: Some(releases.clone()),
                            environments: envs,
                            start,
                            end,
                            ..Default::default()
                        };
                        let what = format!("{label}: [{start}, {end})");
                        let users: HashMap<Pair, (u64, u64)> = store::users_by_release(conn, &sc)?
                            .into_iter()
                            .map(|(k, u)| (k, (u.users, u.crashed)))
                            .collect();
                        assert_eq!(users, hourly_union(conn, &sc), "{what}");
                        let project_sc = Scope {
                            release_ids: None,
                            project_ids: vec![project.id],
                            ..sc.clone()
                        };
                        let distinct: HashSet<i64> = store::users(conn, &project_sc)
                            .unwrap()
                            .into_iter()
                            .map(|u| u.user)
                            .collect();
                        let expected: HashMap<i64, u64> = if distinct.is_empty() {
                            HashMap::new()
                        } else {
                            [(project.id, distinct.len() as u64)].into()
                        };
                        assert_eq!(
                            store::users_by_project(conn, &project_sc)?,
                            expected,
                            "project users, {what}"
                        );
                        let (counts, bins) = hourly_sums(conn, &sc);
                        let summed: HashMap<Pair, (u64, u64, u64)> =
                            store::counts_by_release(conn, &sc)?
                                .into_iter()
                                .map(|(k, c)| (k, (c.sessions, c.crashed, c.errored())))
                                .collect();
                        assert_eq!(summed, counts, "{what}");
                        let mut daily_bins = store::duration_bins_by_release(conn, &sc)?;
                        daily_bins.values_mut().for_each(|v| v.sort());
                        assert_eq!(daily_bins, bins, "{what}");
                    }
                    Ok::<_, CoreError>(())
                })
                .unwrap();
        };
        check("as written");
        let cutoff = bucket_of(now.timestamp()) - 5 * 86400 - 7 * 3600;
        store
            .write_blocking(|tx| store::prune_before(tx, cutoff))
            .unwrap();
        check("after retention");
    }

    /// The 24 h hourly series and counts read in one pass give what their own queries give.
    #[test]
    fn the_day_series_and_counts_read_together_match_their_own_queries() {
        let (_dir, store, org, project) = setup();
        let now = Utc::now();
        ingest(&store, &org, &project, &mixed_sessions(now), now);
        store
            .read_blocking(|conn| {
                let releases = release_ids(conn);
                let pairs: Vec<Pair> = releases.iter().map(|r| (*r, project.id)).collect();
                let req = HealthRequest {
                    environments: vec![],
                    summary_secs: 14 * 86400,
                    stats: Some(("24h".into(), 3600, 24)),
                    stat_users: false,
                    now: now.timestamp(),
                };
                let data = health_data(conn, &store, org.id, &pairs, &req)?;
                let series = stats_series(conn, org.id, &releases, &req, 3600, 24)?;
                let day = scope(org.id, &releases, &req, window(req.now, 86400));
                let counts = store::counts_by_release(conn, &day)?;
                assert!(series.values().flatten().any(|(_, n)| *n > 0), "{series:?}");
                for pair in &pairs {
                    let h = &data[pair];
                    let expected = series.get(pair).cloned().unwrap_or_else(|| {
                        health::stats_buckets(req.now, 3600, 24)
                            .into_iter()
                            .map(|ts| (ts, 0))
                            .collect()
                    });
                    assert_eq!(h.stats.as_ref().map(|(_, s)| s), Some(&expected));
                    let c = counts.get(pair).copied().unwrap_or_default();
                    assert_eq!(h.total_sessions_24h, c.sessions);
                }
                Ok::<_, CoreError>(())
            })
            .unwrap();
    }

    /// Migration 0021's backfill builds from the hourly rows exactly what live writes build.
    #[test]
    fn migration_0021_backfill_matches_live_writes() {
        let (_dir, store, org, project) = setup();
        let now = Utc::now();
        ingest(&store, &org, &project, &mixed_sessions(now), now);
        let tables = [
            "health_rollups_daily",
            "health_durations_daily",
            "health_user_last",
        ];
        let dump = |conn: &Connection| -> Vec<Vec<String>> {
            tables
                .iter()
                .map(|t| {
                    let mut stmt = conn.prepare(&format!("SELECT * FROM {t}")).unwrap();
                    let n = stmt.column_count();
                    let mut rows: Vec<String> = stmt
                        .query_map([], |r| {
                            Ok((0..n)
                                .map(|i| format!("{:?}", r.get_ref(i).unwrap()))
                                .collect::<Vec<_>>()
                                .join("|"))
                        })
                        .unwrap()
                        .collect::<Result<_, _>>()
                        .unwrap();
                    rows.sort();
                    rows
                })
                .collect()
        };
        let live = store
            .read_blocking(|c| Ok::<_, CoreError>(dump(c)))
            .unwrap();
        assert!(live.iter().all(|rows| !rows.is_empty()));
        let sql = include_str!("../store/migrations/0021_health_daily_counts.sql");
        let backfill = &sql[sql.find("-- Backfill").unwrap()..];
        let rebuilt = store
            .write_blocking(|tx| {
                for t in tables {
                    tx.execute(&format!("DELETE FROM {t}"), [])?;
                }
                tx.execute_batch(backfill)?;
                Ok::<_, CoreError>(dump(tx))
            })
            .unwrap();
        assert_eq!(rebuilt, live);
    }

    #[test]
    fn migration_0017_backfills_daily_sets_from_the_hourly_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("upgrade.db");
        let day = 1_764_633_600; // a UTC midnight
        {
            // The database as shiplog left it before migration 0017.
            let mut conn = Connection::open(&path).unwrap();
            crate::store::migrate_first(&mut conn, 13).unwrap();
            let t = "2026-01-01T00:00:00.000000Z";
            conn.execute_batch(&format!(
                "INSERT INTO organizations (id, slug, name, date_added) VALUES (1, 'acme', 'Acme', '{t}');
                 INSERT INTO projects (id, org_id, slug, name, date_added) VALUES (1, 1, 'web', 'Web', '{t}');
                 INSERT INTO releases (id, org_id, version, date_added) VALUES (1, 1, 'web@1', '{t}');
                 INSERT INTO health_rollups (project_id, release_id, bucket, environment, sessions)
                     VALUES (1, 1, {h1}, '', 2), (1, 1, {h2}, '', 2), (1, 1, {h3}, '', 1);
                 INSERT INTO health_users (project_id, release_id, bucket, environment, user, flags)
                     VALUES (1, 1, {h1}, '', 10, 1), (1, 1, {h1}, '', 11, 0),
                            (1, 1, {h2}, '', 10, 2), (1, 1, {h2}, '', 12, 0),
                            (1, 1, {h3}, '', 10, 0);",
                h1 = day + 3600,
                h2 = day + 5 * 3600,
                h3 = day + 86400 + 3600,
            ))
            .unwrap();
        }
        let store = Store::open(&path).unwrap();
        let rows: Vec<(i64, i64, i64)> = store
            .read_blocking(|c| {
                let mut stmt = c.prepare(
                    "SELECT day, user, flags FROM health_users_daily ORDER BY day, user",
                )?;
                let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
                Ok::<_, CoreError>(rows.collect::<Result<_, _>>()?)
            })
            .unwrap();
        assert_eq!(
            rows,
            vec![
                (day, 10, 3),
                (day, 11, 0),
                (day, 12, 0),
                (day + 86400, 10, 0)
            ]
        );
    }

    #[test]
    fn retention_prunes_old_rollups_with_their_sets() {
        let (_dir, store, org, project) = setup();
        let now = Utc::now();
        let mut old = String::from("{}\n{\"type\":\"session\"}\n");
        old.push_str(
            &serde_json::json!({
                "sid": "s", "did": "u", "init": true, "status": "crashed",
                "started": time::format(now - Duration::days(95)),
                "attrs": {"release": "app@1.0"},
            })
            .to_string(),
        );
        ingest(
            &store,
            &org,
            &project,
            &envelope::parse(old.as_bytes()).unwrap(),
            now,
        );
        ingest(
            &store,
            &org,
            &project,
            &aggregates(&[("app@1.0", "", 4)], now),
            now,
        );
        let count = |table: &str| -> i64 {
            store
                .read_blocking(|c| {
                    Ok::<_, CoreError>(c.query_row(
                        &format!("SELECT count(*) FROM {table}"),
                        [],
                        |r| r.get(0),
                    )?)
                })
                .unwrap()
        };
        assert_eq!(count("health_rollups"), 2);
        assert_eq!(count("health_users"), 1);
        assert_eq!(count("health_users_daily"), 1);
        assert_eq!(count("health_errored_sids"), 1);
        let pruned = store
            .write_blocking(|tx| prune(tx, now, Duration::days(90)))
            .unwrap();
        assert_eq!(pruned, 1);
        assert_eq!(count("health_rollups"), 1);
        assert_eq!(count("health_users"), 0);
        assert_eq!(count("health_users_daily"), 0);
        assert_eq!(count("health_errored_sids"), 0);
    }
}
