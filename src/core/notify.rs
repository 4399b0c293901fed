//! Notifications: which configured targets an event goes to, written to the durable outbox in
//! the caller's transaction (issue 14). The change and its notifications commit or roll back
//! together, so nothing is lost when the daemon stops or a receiver is down; the delivery task
//! (`crate::notify`) sends them later, never on the pipeline's or a request's path.

use rusqlite::Connection;
use serde::{Deserialize, Serialize};

use super::CoreError;
use crate::store::notifications::{self as store, NewDelivery};

/// The kinds of event a target can ask for, named as in the config and the webhook `type`.
pub const EVENT_TYPES: &[&str] = &[
    DEPLOY_CREATED,
    RELEASE_CREATED,
    RELEASE_FINALIZED,
    ISSUE_CREATED,
    ISSUE_RESOLVED,
    ISSUE_REGRESSED,
];
pub const DEPLOY_CREATED: &str = "deploy.created";
pub const RELEASE_CREATED: &str = "release.created";
pub const RELEASE_FINALIZED: &str = "release.finalized";
pub const ISSUE_CREATED: &str = "issue.created";
pub const ISSUE_RESOLVED: &str = "issue.resolved";
pub const ISSUE_REGRESSED: &str = "issue.regressed";

/// What an event is about, stored as JSON in the outbox and rendered when it is sent, so the
/// receiver gets the API's current shape of the release, deploy or issue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Subject {
    Release {
        release_id: i64,
    },
    Deploy {
        release_id: i64,
        deploy_id: i64,
    },
    /// `release_id`: the release the issue was first seen or regressed in.
    Issue {
        issue_id: i64,
        #[serde(default)]
        release_id: Option<i64>,
    },
}

/// Whether a target that wants `events` and `environments` (empty: all) takes this event.
/// Events without an environment (releases) pass the environment filter.
pub fn wants(target: &store::Target, event_type: &str, environment: Option<&str>) -> bool {
    let event_ok = target.events.is_empty() || target.events.iter().any(|e| e == event_type);
    let env_ok = match environment {
        Some(env) => target.environments.is_empty() || target.environments.iter().any(|e| e == env),
        None => true,
    };
    event_ok && env_ok
}

/// [`enqueue`] for an issue event (`issue.created`, `issue.regressed`, `issue.resolved`);
/// `release_id` is the release it was first seen, regressed or resolved in, if any.
pub fn enqueue_issue(
    conn: &Connection,
    org_id: i64,
    event_type: &str,
    environment: Option<&str>,
    issue_id: i64,
    release_id: Option<i64>,
    now: &str,
) -> Result<(), CoreError> {
    let subject = Subject::Issue {
        issue_id,
        release_id,
    };
    enqueue(conn, org_id, event_type, environment, subject, now)
}

/// Writes one delivery per configured target that wants the event. Costs one small read when
/// no target is configured.
pub fn enqueue(
    conn: &Connection,
    org_id: i64,
    event_type: &str,
    environment: Option<&str>,
    subject: Subject,
    now: &str,
) -> Result<(), CoreError> {
    let targets = store::targets(conn)?;
    if targets.is_empty() {
        return Ok(());
    }
    let subject = serde_json::to_string(&subject).unwrap_or_default();
    for target in targets.iter().filter(|t| wants(t, event_type, environment)) {
        // A committer hears of an issue at most once per release: a new issue or a
        // regression, not both, and not every time it regresses again in the same release.
        if target.kind == "email"
            && matches!(event_type, ISSUE_CREATED | ISSUE_REGRESSED)
            && store::exists(
                conn,
                &target.key,
                &subject,
                &[ISSUE_CREATED, ISSUE_REGRESSED],
            )?
        {
            continue;
        }
        store::insert(
            conn,
            &NewDelivery {
                org_id,
                target: &target.key,
                event_type,
                subject: &subject,
                created: now,
            },
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(events: &[&str], environments: &[&str]) -> store::Target {
        store::Target {
            key: "webhook:x".into(),
            kind: "webhook".into(),
            events: events.iter().map(|s| s.to_string()).collect(),
            environments: environments.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn filters_by_event_type_and_environment() {
        let all = target(&[], &[]);
        assert!(wants(&all, DEPLOY_CREATED, Some("staging")));
        let prod_deploys = target(&[DEPLOY_CREATED], &["production"]);
        assert!(wants(&prod_deploys, DEPLOY_CREATED, Some("production")));
        assert!(!wants(&prod_deploys, DEPLOY_CREATED, Some("staging")));
        assert!(!wants(&prod_deploys, ISSUE_CREATED, Some("production")));
        let prod = target(&[], &["production"]);
        assert!(wants(&prod, RELEASE_CREATED, None));
    }

    #[test]
    fn subject_round_trips_as_json() {
        let s = Subject::Deploy {
            release_id: 1,
            deploy_id: 2,
        };
        let text = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<Subject>(&text).unwrap(), s);
    }
}
