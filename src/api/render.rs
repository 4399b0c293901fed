//! Domain values rendered as Sentry's JSON shapes (sentry-cli-protocol.md §4.1, §6).

use serde_json::{Value, json};

use crate::core::release::{ReleaseView, Status};
use crate::model::version;
use crate::store::deploys::Deploy;
use crate::store::orgs::{Org, Project};

/// A release as Sentry's serializer renders it. sentry-cli needs `version`, `dateCreated`, a
/// numeric `newGroups` and `projects[{slug, name}]`; the rest is for the web page and scripts.
pub fn release(view: &ReleaseView) -> Value {
    let r = &view.release;
    let data: Value = serde_json::from_str(&r.data).unwrap_or_else(|_| json!({}));
    let projects: Vec<Value> = view
        .projects
        .iter()
        .map(|(p, new_groups)| {
            json!({
                "id": p.id,
                "slug": p.slug,
                "name": p.name,
                "newGroups": new_groups,
                "platform": p.platform,
                "platforms": p.platform.iter().collect::<Vec<_>>(),
                "hasHealthData": false,
            })
        })
        .collect();
    json!({
        "id": r.id,
        "version": r.version,
        "shortVersion": r.version,
        "status": Status::name(r.status),
        "ref": r.ref_,
        "url": r.url,
        "dateCreated": r.date_added,
        "dateReleased": r.date_released,
        "dateStarted": r.date_started,
        "data": data,
        "newGroups": view.new_groups(),
        "owner": r.owner,
        "userAgent": r.user_agent,
        "commitCount": r.commit_count,
        "lastCommit": view.last_commit,
        "deployCount": r.total_deploys,
        "lastDeploy": view.last_deploy.as_ref().map(deploy),
        "authors": view.authors,
        "firstEvent": view.first_event,
        "lastEvent": view.last_event,
        "currentProjectMeta": {},
        "versionInfo": version::version_info(&r.version),
        "projects": projects,
    })
}

/// A deploy. `dateFinished` is never null: sentry-cli panics on a null there.
pub fn deploy(d: &Deploy) -> Value {
    json!({
        "id": d.id.to_string(),
        "environment": d.environment,
        "name": d.name,
        "url": d.url,
        "dateStarted": d.date_started,
        "dateFinished": d.date_finished,
    })
}

/// An organization: sentry-cli's `organizations list` needs every field but `status`/`links`.
pub fn organization(org: &Org, public_url: &str) -> Value {
    json!({
        "id": org.id.to_string(),
        "slug": org.slug,
        "name": org.name,
        "dateCreated": org.date_added,
        "status": {"id": "active", "name": "active"},
        "isEarlyAdopter": false,
        "require2FA": false,
        "requireEmailVerification": false,
        "features": [],
        "links": {"organizationUrl": public_url, "regionUrl": public_url},
    })
}

/// A project: sentry-cli's `projects list` needs `id` (a string), `slug`, `name` and a `team`
/// that may be null.
pub fn project(p: &Project, org: &Org) -> Value {
    json!({
        "id": p.id.to_string(),
        "slug": p.slug,
        "name": p.name,
        "platform": p.platform,
        "isMember": true,
        "hasAccess": true,
        "status": "active",
        "features": [],
        "team": null,
        "organization": {"id": org.id.to_string(), "slug": org.slug, "name": org.name},
    })
}
