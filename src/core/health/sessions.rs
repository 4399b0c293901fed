//! `GET /api/0/organizations/{org}/sessions/`: Sentry's sessions API (`snuba/sessions_v2.py`
//! and its metrics-backed successor) over the hourly rollups.
//!
//! The request names fields (`sum(session)`, `count_unique(user)`, `crash_rate(...)`,
//! `crash_free_rate(...)`, duration percentiles), groups (`project`, `release`, `environment`,
//! `session.status`), a time range and an interval; the answer has one group per combination
//! of the grouping values with its totals over the whole range and its series per interval.
//! Distinct users are unions over the range or interval, never sums. The date-range rules
//! and the error messages are Sentry's (`get_constrained_date_range`).

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, TimeZone, Utc};
use rusqlite::Connection;
use serde_json::{Map, Value, json};

use crate::core::CoreError;
use crate::model::health::{self, SessionCounts, UserCounts, parse_period};
use crate::model::session::user_flags;
use crate::model::time;
use crate::store::health::{self as store, Scope};

const ONE_HOUR: i64 = 3600;
const ONE_DAY: i64 = 86400;
/// Sentry's `MAX_POINTS`.
const MAX_POINTS: i64 = 1000;
/// Sentry's `MAX_STATS_PERIOD`, the default range.
const DEFAULT_PERIOD: &str = "90d";

/// A sessions request as the API receives it (projects already resolved to ids).
#[derive(Debug, Clone, Default)]
pub struct SessionsRequest {
    pub fields: Vec<String>,
    pub group_by: Vec<String>,
    pub stats_period: Option<String>,
    pub start: Option<String>,
    pub end: Option<String>,
    pub interval: Option<String>,
    pub project_ids: Vec<i64>,
    pub environments: Vec<String>,
    pub query: Option<String>,
}

fn invalid(detail: impl Into<String>) -> CoreError {
    CoreError::Invalid {
        field: None,
        detail: detail.into(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Field {
    Sessions,
    Users,
    CrashRate { users: bool },
    CrashFreeRate { users: bool },
    Duration(Stat),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Stat {
    Avg,
    Quantile(f64),
}

fn field(name: &str) -> Option<Field> {
    Some(match name {
        "sum(session)" => Field::Sessions,
        "count_unique(user)" => Field::Users,
        "crash_rate(session)" => Field::CrashRate { users: false },
        "crash_rate(user)" => Field::CrashRate { users: true },
        "crash_free_rate(session)" => Field::CrashFreeRate { users: false },
        "crash_free_rate(user)" => Field::CrashFreeRate { users: true },
        "avg(session.duration)" => Field::Duration(Stat::Avg),
        "p50(session.duration)" => Field::Duration(Stat::Quantile(0.5)),
        "p75(session.duration)" => Field::Duration(Stat::Quantile(0.75)),
        "p90(session.duration)" => Field::Duration(Stat::Quantile(0.9)),
        "p95(session.duration)" => Field::Duration(Stat::Quantile(0.95)),
        "p99(session.duration)" => Field::Duration(Stat::Quantile(0.99)),
        "max(session.duration)" => Field::Duration(Stat::Quantile(1.0)),
        _ => return None,
    })
}

/// Sentry's `get_constrained_date_range` with the one-hour resolution: `(start, end, interval)`
/// in unix seconds.
fn date_range(req: &SessionsRequest, now: i64) -> Result<(i64, i64, i64), CoreError> {
    let interval = match req.interval.as_deref() {
        None | Some("") => ONE_HOUR,
        Some(text) => parse_period(text)
            .map(|d| d.num_seconds())
            .ok_or_else(|| invalid(format!("Invalid interval: \"{text}\"")))?,
    };
    if interval < ONE_HOUR || interval % ONE_HOUR != 0 {
        return Err(invalid(
            "The interval has to be a multiple of the minimum interval of one hour.",
        ));
    }
    if interval > ONE_DAY {
        return Err(invalid("The interval has to be less than one day."));
    }
    if ONE_DAY % interval != 0 {
        return Err(invalid(
            "The interval should divide one day without a remainder.",
        ));
    }
    let parse_time = |name: &str, text: &str| {
        time::parse(text)
            .or_else(|| {
                chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
                    .ok()
                    .map(|n| n.and_utc())
            })
            .map(|t| t.timestamp())
            .ok_or_else(|| invalid(format!("{name}: invalid date \"{text}\"")))
    };
    let (start, mut end) = match (req.start.as_deref(), req.end.as_deref()) {
        (Some(s), Some(e)) if !s.is_empty() && !e.is_empty() => {
            // An explicit end is inclusive.
            (parse_time("start", s)?, parse_time("end", e)? + 1)
        }
        (Some(s), _) | (_, Some(s)) if !s.is_empty() => {
            return Err(invalid("start and end are both required"));
        }
        _ => {
            let period = req
                .stats_period
                .as_deref()
                .filter(|p| !p.is_empty())
                .unwrap_or(DEFAULT_PERIOD);
            let secs = parse_period(period)
                .map(|d| d.num_seconds())
                .filter(|s| *s > 0)
                .ok_or_else(|| invalid(format!("Invalid statsPeriod: \"{period}\"")))?;
            (now - secs, now)
        }
    };
    if start >= end {
        return Err(invalid("start must be before end"));
    }
    let ceil_div = |a: i64, b: i64| (a + b - 1).div_euclid(b);
    let rounding = ceil_div(interval, ONE_HOUR) * ONE_HOUR;
    let mut range = rounding * ceil_div(end - start, rounding);
    if range / interval > MAX_POINTS {
        return Err(invalid(
            "Your interval and date range would create too many results. Use a larger interval, or a smaller date range.",
        ));
    }
    end = rounding * ceil_div(end, rounding);
    if rounding > interval && end - range > start {
        range += rounding;
    }
    let start = end - range;
    let end = if end > now { 60 * (now / 60 + 1) } else { end };
    Ok((start, end, interval))
}

/// `release:X`, `release:[a,b]`, `environment:X` terms of `query`.
fn parse_query(query: &str) -> Result<(Vec<String>, Vec<String>), CoreError> {
    let mut releases = Vec::new();
    let mut environments = Vec::new();
    for token in crate::model::search::tokenize(query) {
        let Some((key, value)) = token.split_once(':') else {
            return Err(invalid(format!(
                "Invalid query: free text \"{token}\" is not supported; use release:VERSION"
            )));
        };
        let values: Vec<String> = match value.strip_prefix('[').and_then(|v| v.strip_suffix(']')) {
            Some(list) => list
                .split(',')
                .map(|v| v.trim().trim_matches('"').to_string())
                .filter(|v| !v.is_empty())
                .collect(),
            None => vec![value.to_string()],
        };
        match key {
            "release" => releases.extend(values),
            "environment" => environments.extend(values),
            other => return Err(invalid(format!("Invalid query field: \"{other}\""))),
        }
    }
    Ok((releases, environments))
}

fn iso(ts: i64) -> String {
    Utc.timestamp_opt(ts, 0)
        .single()
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Everything summed for one group and one interval (or the totals).
#[derive(Debug, Clone, Default)]
struct Cell {
    sessions: SessionCounts,
    users: HashMap<i64, i64>,
    bins: HashMap<i64, u64>,
}

impl Cell {
    fn user_counts(&self) -> UserCounts {
        let mut u = UserCounts {
            users: self.users.len() as u64,
            ..Default::default()
        };
        for flags in self.users.values() {
            u.errored += u64::from(flags & user_flags::ERRORED != 0);
            u.crashed += u64::from(flags & user_flags::CRASHED != 0);
            u.abnormal += u64::from(flags & user_flags::ABNORMAL != 0);
        }
        u
    }

    fn value(&self, f: Field, status: Option<&str>) -> Value {
        let users = || self.user_counts();
        let rate = |part: u64, whole: u64| {
            if whole == 0 {
                Value::Null
            } else {
                json!(part as f64 / whole as f64)
            }
        };
        match f {
            Field::Sessions => match status {
                Some(s) => json!(health::sessions_of_status(&self.sessions, s)),
                None => json!(self.sessions.sessions),
            },
            Field::Users => match status {
                Some(s) => json!(health::users_of_status(&users(), s)),
                None => json!(users().users),
            },
            Field::CrashRate { users: false } => {
                rate(self.sessions.crashed, self.sessions.sessions)
            }
            Field::CrashRate { users: true } => {
                let u = users();
                rate(u.crashed, u.users)
            }
            Field::CrashFreeRate { users: false } => rate(
                self.sessions.sessions - self.sessions.crashed.min(self.sessions.sessions),
                self.sessions.sessions,
            ),
            Field::CrashFreeRate { users: true } => {
                let u = users();
                rate(u.users - u.crashed.min(u.users), u.users)
            }
            // Durations exist for healthy (exited) sessions only; milliseconds, as Sentry.
            Field::Duration(_) if status.is_some_and(|s| s != "healthy") => Value::Null,
            Field::Duration(stat) => {
                let bins: Vec<(i64, u64)> = self.bins.iter().map(|(b, n)| (*b, *n)).collect();
                let secs = match stat {
                    Stat::Quantile(q) => health::quantile(&bins, q),
                    Stat::Avg => {
                        let n: u64 = bins.iter().map(|(_, n)| n).sum();
                        (n > 0).then(|| {
                            bins.iter()
                                .map(|(b, c)| health::bin_value(*b) * *c as f64)
                                .sum::<f64>()
                                / n as f64
                        })
                    }
                };
                secs.map_or(Value::Null, |s| json!(s * 1000.0))
            }
        }
    }
}

/// The group key: `(project, release version, environment)`, each only when grouped by.
type GroupKey = (Option<i64>, Option<String>, Option<String>);

/// Runs a sessions query.
pub fn query(
    conn: &Connection,
    org_id: i64,
    req: &SessionsRequest,
    now: DateTime<Utc>,
) -> Result<Value, CoreError> {
    if req.fields.is_empty() {
        return Err(invalid("Request is missing a \"field\""));
    }
    let mut fields = Vec::new();
    for name in &req.fields {
        let f = field(name).ok_or_else(|| invalid(format!("Invalid field: \"{name}\"")))?;
        fields.push((name.clone(), f));
    }
    for g in &req.group_by {
        if !matches!(
            g.as_str(),
            "project" | "release" | "environment" | "session.status"
        ) {
            return Err(invalid(format!("Invalid groupBy: \"{g}\"")));
        }
    }
    let by_status = req.group_by.iter().any(|g| g == "session.status");
    if by_status
        && let Some((name, _)) = fields
            .iter()
            .find(|(_, f)| matches!(f, Field::CrashRate { .. } | Field::CrashFreeRate { .. }))
    {
        return Err(invalid(format!(
            "Cannot group field {name} by session.status"
        )));
    }
    let (start, end, interval) = date_range(req, now.timestamp())?;
    let (releases, mut environments) = parse_query(req.query.as_deref().unwrap_or(""))?;
    environments.extend(req.environments.iter().cloned());

    let release_ids = if releases.is_empty() {
        None
    } else {
        let mut ids = Vec::new();
        for v in &releases {
            if let Some(r) = crate::store::releases::by_version(conn, org_id, v)? {
                ids.push(r.id);
            }
        }
        Some(ids)
    };
    let scope = Scope {
        org_id,
        project_ids: req.project_ids.clone(),
        release_ids,
        environments,
        start: health::bucket_of(start),
        end,
    };
    let grouped = |g: &str| req.group_by.iter().any(|x| x == g);
    let mut versions: HashMap<i64, String> = HashMap::new();
    let mut key = |project_id: i64, release_id: i64, env: &str| -> Result<GroupKey, CoreError> {
        let version = if grouped("release") {
            Some(match versions.get(&release_id) {
                Some(v) => v.clone(),
                None => {
                    let v = crate::store::releases::by_id(conn, release_id)?
                        .map(|r| r.version)
                        .unwrap_or_default();
                    versions.insert(release_id, v.clone());
                    v
                }
            })
        } else {
            None
        };
        Ok((
            grouped("project").then_some(project_id),
            version,
            grouped("environment").then(|| env.to_string()),
        ))
    };
    let steps: Vec<i64> = (start..end).step_by(interval as usize).collect();
    let step_of = |bucket: i64| -> Option<usize> {
        (bucket >= start && bucket < end).then(|| ((bucket - start) / interval) as usize)
    };
    let mut totals: BTreeMap<GroupKey, Cell> = BTreeMap::new();
    let mut series: HashMap<(GroupKey, usize), Cell> = HashMap::new();
    for r in store::rollups(conn, &scope)? {
        let Some(i) = step_of(r.bucket) else { continue };
        let k = key(r.project_id, r.release_id, &r.environment)?;
        totals.entry(k.clone()).or_default().sessions.add(&r.counts);
        series.entry((k, i)).or_default().sessions.add(&r.counts);
    }
    let want_users = fields.iter().any(|(_, f)| {
        matches!(
            f,
            Field::Users | Field::CrashRate { users: true } | Field::CrashFreeRate { users: true }
        )
    });
    if want_users {
        for u in store::users(conn, &scope)? {
            let Some(i) = step_of(u.bucket) else { continue };
            let k = key(u.project_id, u.release_id, &u.environment)?;
            *totals
                .entry(k.clone())
                .or_default()
                .users
                .entry(u.user)
                .or_default() |= u.flags;
            *series
                .entry((k, i))
                .or_default()
                .users
                .entry(u.user)
                .or_default() |= u.flags;
        }
    }
    if fields.iter().any(|(_, f)| matches!(f, Field::Duration(_))) {
        for d in store::durations(conn, &scope)? {
            let Some(i) = step_of(d.bucket) else { continue };
            let k = key(d.project_id, d.release_id, &d.environment)?;
            *totals
                .entry(k.clone())
                .or_default()
                .bins
                .entry(d.bin)
                .or_default() += d.count;
            *series
                .entry((k, i))
                .or_default()
                .bins
                .entry(d.bin)
                .or_default() += d.count;
        }
    }

    let statuses: Vec<Option<&str>> = if by_status {
        health::STATUSES.iter().map(|s| Some(*s)).collect()
    } else {
        vec![None]
    };
    let empty = Cell::default();
    let mut groups = Vec::new();
    for (k, total) in &totals {
        for status in &statuses {
            let mut by = Map::new();
            if let Some(p) = k.0 {
                by.insert("project".into(), json!(p));
            }
            if let Some(v) = &k.1 {
                by.insert("release".into(), json!(v));
            }
            if let Some(e) = &k.2 {
                by.insert("environment".into(), json!(e));
            }
            if let Some(s) = status {
                by.insert("session.status".into(), json!(s));
            }
            let mut tot = Map::new();
            let mut ser = Map::new();
            for (name, f) in &fields {
                tot.insert(name.clone(), total.value(*f, *status));
                let values: Vec<Value> = (0..steps.len())
                    .map(|i| {
                        series
                            .get(&(k.clone(), i))
                            .unwrap_or(&empty)
                            .value(*f, *status)
                    })
                    .collect();
                ser.insert(name.clone(), Value::Array(values));
            }
            groups.push(json!({ "by": by, "totals": tot, "series": ser }));
        }
    }
    // Sentry returns the groups ordered by the first field, largest first.
    let first = fields[0].0.clone();
    groups.sort_by(|a, b| {
        let v = |g: &Value| g["totals"][&first].as_f64().unwrap_or(f64::MIN);
        v(b).total_cmp(&v(a))
    });
    Ok(json!({
        "start": iso(start),
        "end": iso(end),
        "query": req.query.clone().unwrap_or_default(),
        "intervals": steps.iter().map(|t| iso(*t)).collect::<Vec<_>>(),
        "groups": groups,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(period: &str, interval: &str) -> SessionsRequest {
        SessionsRequest {
            stats_period: Some(period.into()),
            interval: Some(interval.into()),
            ..Default::default()
        }
    }

    #[test]
    fn date_range_as_sentry() {
        let now = 1_764_585_000; // 2025-12-01T10:30:00Z
        let (start, end, interval) = date_range(&req("24h", "1h"), now).unwrap();
        assert_eq!(interval, 3600);
        assert_eq!(end, 60 * (now / 60 + 1));
        assert_eq!(start, 1_764_500_400); // 2025-11-30T11:00:00Z: 24 whole hours back from 11:00
        let (start, _, interval) = date_range(&req("7d", "1d"), now).unwrap();
        assert_eq!(interval, 86400);
        assert_eq!(start % 86400, 0);
        for (period, interval, msg) in [
            (
                "24h",
                "30m",
                "The interval has to be a multiple of the minimum interval of one hour.",
            ),
            ("24h", "2d", "The interval has to be less than one day."),
            (
                "24h",
                "5h",
                "The interval should divide one day without a remainder.",
            ),
            (
                "90d",
                "1h",
                "Your interval and date range would create too many results. Use a larger interval, or a smaller date range.",
            ),
        ] {
            let err = date_range(&req(period, interval), now).unwrap_err();
            assert_eq!(err.to_string(), msg);
        }
        let explicit = SessionsRequest {
            start: Some("2025-11-30T00:00:00Z".into()),
            end: Some("2025-11-30T23:59:59Z".into()),
            ..Default::default()
        };
        assert_eq!(
            date_range(&explicit, now).unwrap(),
            (1_764_460_800, 1_764_547_200, 3600)
        );
    }

    #[test]
    fn query_terms() {
        assert_eq!(
            parse_query("release:a@1 environment:prod release:[b,\"c d\"]").unwrap(),
            (
                vec!["a@1".into(), "b".into(), "c d".into()],
                vec!["prod".into()]
            )
        );
        assert_eq!(
            parse_query("user:x").unwrap_err().to_string(),
            "Invalid query field: \"user\""
        );
    }
}
