//! `shiplog releases health [VERSION]` and the crash-free columns of `shiplog releases list`:
//! release health read from the daemon's releases endpoints with `health=1`.
//!
//! Figures a project cannot have (crash-free users when its SDK sends no user ids, as Python
//! servers in request mode) print as `n/a`, never as 100 %.

use std::process::ExitCode;

use serde_json::Value;

use super::client::{Client, query_value, segment};
use super::{CliError, output};

/// A percentage with one decimal, or `n/a`.
fn pct(v: &Value) -> String {
    v.as_f64()
        .map_or_else(|| "n/a".to_string(), |p| format!("{p:.1}%"))
}

/// Seconds as `12.3s`, or `-`.
fn secs(v: &Value) -> String {
    v.as_f64()
        .map_or_else(|| "-".to_string(), |s| format!("{s:.1}s"))
}

fn count(v: &Value) -> String {
    v.as_u64()
        .map_or_else(|| "0".to_string(), |n| n.to_string())
}

fn health_params(period: &str, env: Option<&str>) -> String {
    let mut q = format!(
        "health=1&adoptionStages=1&summaryStatsPeriod={}",
        query_value(period)
    );
    if let Some(e) = env {
        q.push_str(&format!("&environment={}", query_value(e)));
    }
    q
}

/// Health of one release per project, or of every release with health data.
pub async fn print(
    client: &Client,
    version: Option<&str>,
    period: &str,
    env: Option<&str>,
) -> Result<ExitCode, CliError> {
    let org = segment(&client.org);
    let params = health_params(period, env);
    let releases = match version {
        Some(v) => vec![
            client
                .get(&format!(
                    "organizations/{org}/releases/{}/?{params}",
                    segment(v)
                ))
                .await?,
        ],
        None => client
            .get(&format!(
                "organizations/{org}/releases/?{params}&per_page=100"
            ))
            .await?
            .as_array()
            .cloned()
            .unwrap_or_default(),
    };
    let refusals = client
        .get(&format!("organizations/{org}/sessions/refusals/"))
        .await?;
    if client.json {
        return output::json(&serde_json::json!({"releases": releases, "refusals": refusals}))
            .map(|_| ExitCode::SUCCESS);
    }
    let mut rows = Vec::new();
    for r in &releases {
        for p in r["projects"].as_array().into_iter().flatten() {
            let h = &p["healthData"];
            if version.is_none() && h["hasHealthData"] != true {
                continue;
            }
            let slug = output::text(p, "slug");
            let stage = r["adoptionStages"][&slug]["stage"]
                .as_str()
                .unwrap_or("-")
                .to_string();
            rows.push(vec![
                output::text(r, "version"),
                slug,
                count(&h["totalSessions"]),
                if h["crashFreeUsers"].is_null() && h["totalUsers"] == 0 {
                    "n/a".into()
                } else {
                    count(&h["totalUsers"])
                },
                pct(&h["crashFreeSessions"]),
                pct(&h["crashFreeUsers"]),
                count(&h["sessionsCrashed"]),
                count(&h["sessionsErrored"]),
                pct(&h["adoption"]),
                pct(&h["sessionsAdoption"]),
                secs(&h["durationP50"]),
                secs(&h["durationP90"]),
                stage,
            ]);
        }
    }
    if rows.is_empty() {
        output::line(&format!("No session data in the last {period}"))?;
    } else {
        output::table(
            &[
                "VERSION",
                "PROJECT",
                "SESSIONS",
                "USERS",
                "CRASH-FREE SESSIONS",
                "CRASH-FREE USERS",
                "CRASHED",
                "ERRORED",
                "USER ADOPTION 24H",
                "SESSION ADOPTION 24H",
                "P50",
                "P90",
                "STAGE",
            ],
            &rows,
        )?;
    }
    let refused: Vec<Vec<String>> = refusals
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            vec![
                output::text(r, "project"),
                output::text(r, "reason"),
                output::text(r, "count"),
                output::when(r, "lastSeen"),
            ]
        })
        .collect();
    if !refused.is_empty() {
        output::line("")?;
        output::line("Refused session items (all releases):")?;
        output::table(&["PROJECT", "REASON", "COUNT", "LAST SEEN"], &refused)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The crash-free columns of a release in `releases list` (fetched with `health=1`): sessions
/// summed over its projects; users only when one project has user figures (users of several
/// projects are not additive). `None` when no release of the page has session data.
pub fn list_columns(releases: &[Value]) -> Option<Vec<[String; 2]>> {
    let has_data = releases.iter().any(|r| {
        r["projects"]
            .as_array()
            .is_some_and(|ps| ps.iter().any(|p| p["hasHealthData"] == true))
    });
    if !has_data {
        return None;
    }
    Some(
        releases
            .iter()
            .map(|r| {
                let projects: Vec<&Value> = r["projects"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|p| &p["healthData"])
                    .filter(|h| h["hasHealthData"] == true)
                    .collect();
                let sessions: u64 = projects
                    .iter()
                    .filter_map(|h| h["totalSessions"].as_u64())
                    .sum();
                let crashed: u64 = projects
                    .iter()
                    .filter_map(|h| h["sessionsCrashed"].as_u64())
                    .sum();
                let sessions = crate::model::health::crash_free_percent(crashed, sessions)
                    .map_or_else(|| "-".to_string(), |p| format!("{p:.1}%"));
                let with_users: Vec<&&Value> = projects
                    .iter()
                    .filter(|h| !h["crashFreeUsers"].is_null())
                    .collect();
                let users = match with_users.as_slice() {
                    [one] => pct(&one["crashFreeUsers"]),
                    [] if !projects.is_empty() => "n/a".to_string(),
                    _ => "-".to_string(),
                };
                [sessions, users]
            })
            .collect(),
    )
}
