//! Release health over HTTP: `GET /api/0/organizations/{org}/sessions/` (Sentry's sessions
//! API), the refusal counters (`.../sessions/refusals/`, shiplog's own), and the `health=1`
//! and `adoptionStages=1` parts of the release endpoints, in Sentry's shapes.

use axum::Json;
use axum::extract::{Path, State};
use rusqlite::Connection;
use serde_json::{Value, json};

use super::AppState;
use super::auth::Auth;
use super::error::ApiError;
use super::extract::QueryPairs;
use crate::core::CoreError;
use crate::core::health::{self, HealthData, HealthRequest, sessions::SessionsRequest};
use crate::core::org::resolve_projects;
use crate::model::health::{parse_period, stats_period};
use crate::store::Store;

/// The `environment` parameters.
pub fn environments(q: &QueryPairs) -> Vec<String> {
    q.all("environment")
        .into_iter()
        .filter(|e| !e.is_empty())
        .map(str::to_string)
        .collect()
}

/// `GET /api/0/organizations/{org}/sessions/`.
pub async fn sessions(
    State(state): State<AppState>,
    auth: Auth,
    Path(org_slug): Path<String>,
    q: QueryPairs,
) -> Result<Json<Value>, ApiError> {
    let strings =
        |name: &str| -> Vec<String> { q.all(name).into_iter().map(str::to_string).collect() };
    let mut req = SessionsRequest {
        fields: strings("field"),
        group_by: strings("groupBy"),
        stats_period: q.get("statsPeriod").map(str::to_string),
        start: q.get("start").map(str::to_string),
        end: q.get("end").map(str::to_string),
        interval: q.get("interval").map(str::to_string),
        project_ids: Vec::new(),
        environments: environments(&q),
        query: q.get("query").map(str::to_string),
    };
    let projects = q.projects();
    let body = state
        .store
        .read(move |conn| {
            let org = auth.org(conn, &org_slug)?;
            req.project_ids = resolve_projects(conn, org.id, &projects)?
                .iter()
                .map(|p| p.id)
                .collect();
            health::sessions::query(conn, org.id, &req, chrono::Utc::now())
        })
        .await?;
    Ok(Json(body))
}

/// `GET /api/0/organizations/{org}/sessions/refusals/`: session items refused at ingest, per
/// project and reason.
pub async fn refusals(
    State(state): State<AppState>,
    auth: Auth,
    Path(org_slug): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let rows = state
        .store
        .read(move |conn| {
            let org = auth.org(conn, &org_slug)?;
            health::refusals(conn, &org)
        })
        .await?;
    Ok(Json(Value::Array(
        rows.into_iter()
            .map(|r| {
                json!({
                    "project": r.project_slug,
                    "reason": r.reason,
                    "count": r.count,
                    "lastSeen": r.last_seen,
                })
            })
            .collect(),
    )))
}

/// The health parameters of the release endpoints, validated as Sentry does.
#[derive(Debug, Clone)]
pub struct HealthParams {
    /// `health=1`.
    pub health: bool,
    /// `adoptionStages=1`.
    pub adoption_stages: bool,
    pub request: HealthRequest,
}

impl HealthParams {
    pub fn parse(q: &QueryPairs) -> Result<HealthParams, CoreError> {
        let health = q.get("health") == Some("1");
        let stat_users = match q.get("healthStat").filter(|s| !s.is_empty()) {
            None | Some("sessions") => false,
            Some("users") => true,
            Some(_) => return Err(CoreError::invalid("healthStat", "invalid healthStat")),
        };
        let summary = q
            .get("summaryStatsPeriod")
            .filter(|s| !s.is_empty())
            .unwrap_or("14d");
        stats_period("summaryStatsPeriod", summary)
            .map_err(|e| CoreError::invalid("summaryStatsPeriod", e))?;
        let summary_secs = parse_period(summary).map_or(14 * 86400, |d| d.num_seconds());
        let stats_name = match q.get("healthStatsPeriod").filter(|s| !s.is_empty()) {
            Some(p) => Some(p),
            None if health => Some("24h"),
            None => None,
        };
        let stats = match stats_name {
            Some(name) => {
                let (rollup, n) = stats_period("healthStatsPeriod", name)
                    .map_err(|e| CoreError::invalid("healthStatsPeriod", e))?;
                Some((name.to_string(), rollup, n))
            }
            None => None,
        };
        Ok(HealthParams {
            health,
            adoption_stages: q.get("adoptionStages") == Some("1"),
            request: HealthRequest {
                environments: environments(q),
                summary_secs,
                stats,
                stat_users,
                now: chrono::Utc::now().timestamp(),
            },
        })
    }
}

fn health_json(h: &HealthData) -> Value {
    let stats = match &h.stats {
        Some((name, points)) => {
            let pts: Vec<Value> = points.iter().map(|(ts, n)| json!([ts, n])).collect();
            json!({ name.clone(): pts })
        }
        None => json!({}),
    };
    json!({
        "durationP50": h.duration_p50,
        "durationP90": h.duration_p90,
        "crashFreeUsers": h.crash_free_users,
        "crashFreeSessions": h.crash_free_sessions,
        "sessionsCrashed": h.sessions_crashed,
        "sessionsErrored": h.sessions_errored,
        "totalUsers": h.total_users,
        "totalUsers24h": h.total_users_24h,
        "totalProjectUsers24h": h.total_project_users_24h,
        "totalSessions": h.total_sessions,
        "totalSessions24h": h.total_sessions_24h,
        "totalProjectSessions24h": h.total_project_sessions_24h,
        "adoption": h.adoption,
        "sessionsAdoption": h.sessions_adoption,
        "stats": stats,
        "hasHealthData": h.has_health_data,
    })
}

/// Adds `projects[].hasHealthData`, with `health=1` `projects[].healthData`, and with
/// `adoptionStages=1` the release's `adoptionStages` to rendered releases.
pub fn decorate(
    conn: &Connection,
    reads: &Store,
    org_id: i64,
    rendered: &mut [Value],
    params: &HealthParams,
) -> Result<(), CoreError> {
    let mut pairs = Vec::new();
    for r in rendered.iter() {
        let Some(release_id) = r["id"].as_i64() else {
            continue;
        };
        for p in r["projects"].as_array().into_iter().flatten() {
            if let Some(project_id) = p["id"].as_i64() {
                pairs.push((release_id, project_id));
            }
        }
    }
    let request = HealthRequest {
        // Without health=1 only hasHealthData is needed: no periods.
        stats: params.request.stats.clone().filter(|_| params.health),
        ..params.request.clone()
    };
    let data = if params.health {
        health::health_data(conn, reads, org_id, &pairs, &request)?
    } else {
        crate::store::health::pairs_with_data(conn, &pairs)?
            .into_iter()
            .map(|pair| {
                (
                    pair,
                    HealthData {
                        has_health_data: true,
                        ..Default::default()
                    },
                )
            })
            .collect()
    };
    let stages = if params.adoption_stages {
        Some(health::stages(conn, &pairs, &request.environments)?)
    } else {
        None
    };
    for r in rendered.iter_mut() {
        let Some(release_id) = r["id"].as_i64() else {
            continue;
        };
        let mut adoption = serde_json::Map::new();
        for p in r["projects"].as_array_mut().into_iter().flatten() {
            let Some(project_id) = p["id"].as_i64() else {
                continue;
            };
            let h = data.get(&(release_id, project_id));
            p["hasHealthData"] = json!(h.is_some_and(|h| h.has_health_data));
            if params.health {
                let empty = HealthData::default();
                p["healthData"] = health_json(h.unwrap_or(&empty));
            }
            if let (Some(stages), Some(slug)) = (&stages, p["slug"].as_str())
                && let Some(s) = stages.get(&(release_id, project_id))
            {
                adoption.insert(
                    slug.to_string(),
                    json!({ "stage": s.stage, "adopted": s.adopted, "unadopted": s.unadopted }),
                );
            }
        }
        if stages.is_some() {
            r["adoptionStages"] = Value::Object(adoption);
        }
    }
    Ok(())
}
