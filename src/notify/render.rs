//! The `data` of a notification: the release, deploy or issue in the API's JSON shapes (the
//! same render functions the API uses), read when the delivery is sent.

use rusqlite::Connection;
use serde_json::{Value, json};

use crate::core::notify::Subject;
use crate::store::orgs::Org;
use crate::store::{deploys, issues, releases};

/// `Ok(None)` when what the event was about has been deleted since.
pub fn data(
    conn: &Connection,
    org: &Org,
    subject: &Subject,
    public_url: &str,
) -> Result<Option<Value>, crate::core::CoreError> {
    let release = |id: i64| -> Result<Option<Value>, crate::core::CoreError> {
        match releases::by_id(conn, id)? {
            Some(r) => Ok(Some(crate::api::render::release(
                &crate::core::release::view(conn, r)?,
            ))),
            None => Ok(None),
        }
    };
    Ok(match *subject {
        Subject::Release { release_id } => release(release_id)?.map(|r| json!({ "release": r })),
        Subject::Deploy {
            release_id,
            deploy_id,
        } => match (release(release_id)?, deploys::by_id(conn, deploy_id)?) {
            (Some(r), Some(d)) => {
                Some(json!({ "release": r, "deploy": crate::api::render::deploy(&d) }))
            }
            _ => None,
        },
        Subject::Issue { issue_id, .. } => match issues::by_id(conn, org.id, issue_id)? {
            Some(issue) => crate::core::issue::views(conn, vec![issue])?
                .first()
                .map(|v| json!({ "issue": crate::api::issues::issue_json(v, org, public_url) })),
            None => None,
        },
    })
}
