//! Deploys: a release reaching an environment (sentry-semantics.md §5).

use rusqlite::{Connection, Transaction};
use serde_json::json;

use super::CoreError;
use super::org::{ProjectRef, resolve_projects};
use super::release;
use crate::model::activity::{ActivityType, version_ident};
use crate::model::{environment, time};
use crate::store::activity::{self, NewActivity};
use crate::store::deploys::{self, Deploy, NewDeploy};
use crate::store::orgs::Org;
use crate::store::releases;

/// A deploy as the API receives it.
#[derive(Debug, Clone, Default)]
pub struct CreateDeploy {
    pub environment: String,
    pub name: Option<String>,
    pub url: Option<String>,
    pub date_started: Option<String>,
    pub date_finished: Option<String>,
    /// Projects the deploy covers; empty means every project of the release.
    pub projects: Vec<ProjectRef>,
}

fn time_field(field: &'static str, value: Option<&str>) -> Result<Option<String>, CoreError> {
    match value {
        None => Ok(None),
        Some(v) => time::normalize(v).map(Some).ok_or_else(|| {
            CoreError::invalid(
                field,
                format!("{field} \"{v}\" is not an RFC 3339 timestamp (e.g. 2024-01-31T12:00:00Z)"),
            )
        }),
    }
}

/// Records a deploy of `version`, bumps the release's deploy counters and logs a DEPLOY
/// activity for each project it covers.
pub fn create(
    tx: &Transaction<'_>,
    org: &Org,
    version: &str,
    req: &CreateDeploy,
    now: &str,
) -> Result<Deploy, CoreError> {
    let release = release::get(tx, org, version)?;
    environment::validate(&req.environment)
        .map_err(|e| CoreError::invalid("environment", e.to_string()))?;
    if let Some(name) = &req.name
        && name.chars().count() > 64
    {
        return Err(CoreError::invalid(
            "name",
            "deploy name is longer than 64 characters",
        ));
    }
    if let Some(url) = &req.url
        && !(url.starts_with("http://") || url.starts_with("https://"))
    {
        return Err(CoreError::invalid(
            "url",
            format!("deploy url \"{url}\" must be an http:// or https:// URL"),
        ));
    }
    let date_started = time_field("dateStarted", req.date_started.as_deref())?;
    let date_finished = time_field("dateFinished", req.date_finished.as_deref())?
        .unwrap_or_else(|| now.to_string());

    let release_projects = releases::project_ids(tx, release.id)?;
    let project_ids = if req.projects.is_empty() {
        release_projects
    } else {
        let wanted = resolve_projects(tx, org.id, &req.projects)?;
        let foreign: Vec<String> = wanted
            .iter()
            .filter(|p| !release_projects.contains(&p.id))
            .map(|p| p.slug.clone())
            .collect();
        if !foreign.is_empty() {
            return Err(CoreError::invalid(
                "projects",
                format!(
                    "Invalid projects ({}) for release {}",
                    foreign.join(", "),
                    release.version
                ),
            ));
        }
        wanted.iter().map(|p| p.id).collect()
    };

    let environment_id = deploys::ensure_environment(tx, org.id, &req.environment)?;
    let id = deploys::insert(
        tx,
        &NewDeploy {
            org_id: org.id,
            release_id: release.id,
            environment_id,
            name: req.name.as_deref(),
            url: req.url.as_deref(),
            date_started: date_started.as_deref(),
            date_finished: &date_finished,
        },
        &project_ids,
    )?;
    let ident = version_ident(&release.version);
    for project_id in &project_ids {
        activity::insert(
            tx,
            &NewActivity {
                org_id: org.id,
                project_id: Some(*project_id),
                release_id: Some(release.id),
                kind: ActivityType::Deploy,
                ident: Some(&ident),
                data: json!({
                    "version": release.version,
                    "deploy_id": id,
                    "environment": req.environment,
                }),
                datetime: &date_finished,
            },
        )?;
    }
    super::notify::enqueue(
        tx,
        org.id,
        super::notify::DEPLOY_CREATED,
        Some(&req.environment),
        super::notify::Subject::Deploy {
            release_id: release.id,
            deploy_id: id,
        },
        now,
    )?;
    deploys::by_id(tx, id)?.ok_or_else(|| CoreError::NotFound("deploy vanished".into()))
}

/// Sentry's deploy list for a release: the latest deploy per (project, environment).
pub fn list(conn: &Connection, org: &Org, version: &str) -> Result<Vec<Deploy>, CoreError> {
    let release = release::get(conn, org, version)?;
    Ok(deploys::latest_for_release(conn, release.id, &[])?)
}
