//! The real sentry-cli's `issues list|resolve|mute|unresolve` and `events list` against a real
//! daemon, with 3.x and with 2.x (whose `events list` parses more of each event): the
//! project-scoped endpoints with Sentry's bulk-mutation selection (`-i` ids, `-s` status,
//! `--all`, `--query`), each checked against the issue statuses the daemon stored.

mod common;

use std::path::Path;

use common::events::{Dsn, dsn, error_event, send_and_find};
use common::sentry_cli::{
    ok_against as ok, require_sentry_cli, require_sentry_cli_2, run_against as run,
};
use common::{Daemon, stderr};
use serde_json::{Value, json};

/// One issue per call: its own exception type and its own function.
fn issue(d: &Daemon, dsn: &Dsn, name: &str) -> (String, String) {
    let mut event = error_event(&format!("{name}Error"), "boom", Some("1.0.0"));
    event["exception"]["values"][0]["stacktrace"]["frames"] = json!([
        {"filename": format!("app/{name}.py"), "module": format!("app.{name}"),
         "function": name, "in_app": true, "lineno": 7}
    ]);
    let issue = send_and_find(d, dsn, &event);
    (
        issue["id"].as_str().unwrap().to_string(),
        issue["shortId"].as_str().unwrap().to_string(),
    )
}

/// The stored status of an issue (0 unresolved, 1 resolved, 2 ignored).
fn status(d: &Daemon, id: &str) -> i64 {
    d.count(&format!("SELECT status FROM issues WHERE id = {id}"))
}

/// Both pinned clients (each one skipped locally, required in CI).
fn clients(test_name: &str) -> Vec<std::path::PathBuf> {
    [
        require_sentry_cli(test_name),
        require_sentry_cli_2(test_name),
    ]
    .into_iter()
    .flatten()
    .collect()
}

#[test]
fn sentry_cli_lists_and_bulk_changes_a_projects_issues() {
    for bin in clients("sentry_cli_lists_and_bulk_changes_a_projects_issues") {
        bulk_changes(&bin);
    }
}

fn bulk_changes(bin: &Path) {
    let bin = bin.to_path_buf();
    let d = Daemon::start();
    let web = dsn(&d, "web");
    let api = dsn(&d, "api");
    let (pay, pay_short) = issue(&d, &web, "pay");
    let (refund, refund_short) = issue(&d, &web, "refund");
    let (ship, _) = issue(&d, &web, "ship");
    let (other, other_short) = issue(&d, &api, "login");

    // list: every issue of the project (sentry-cli sends an empty query), none of another.
    let list = ok(&bin, &d, &["issues", "-p", "web", "list"]);
    for short in [&pay_short, &refund_short] {
        assert!(list.contains(short.as_str()), "{list}");
    }
    assert!(!list.contains(&other_short), "{list}");

    // resolve -i: one issue by id.
    let out = ok(&bin, &d, &["issues", "-p", "web", "resolve", "-i", &pay]);
    assert!(out.contains("new status: resolved"), "{out}");
    assert_eq!(status(&d, &pay), 1);
    assert_eq!(status(&d, &refund), 0);

    // list --query: Sentry's search.
    let list = ok(
        &bin,
        &d,
        &["issues", "-p", "web", "list", "--query", "is:resolved"],
    );
    assert!(
        list.contains(&pay_short) && !list.contains(&refund_short),
        "{list}"
    );

    // mute -i -i: several ids; muted is Sentry's ignored.
    ok(
        &bin,
        &d,
        &["issues", "-p", "web", "mute", "-i", &refund, "-i", &ship],
    );
    assert_eq!((status(&d, &refund), status(&d, &ship)), (2, 2));

    // unresolve -s muted: every muted issue, and only those.
    ok(
        &bin,
        &d,
        &["issues", "-p", "web", "unresolve", "-s", "muted"],
    );
    assert_eq!((status(&d, &refund), status(&d, &ship)), (0, 0));
    assert_eq!(status(&d, &pay), 1, "a resolved issue is not muted");

    // An id of another project is ignored, as Sentry ignores it.
    ok(&bin, &d, &["issues", "-p", "web", "resolve", "-i", &other]);
    assert_eq!(status(&d, &other), 0);

    // resolve --all: the project's unresolved issues, not another project's.
    ok(&bin, &d, &["issues", "-p", "web", "resolve", "--all"]);
    assert_eq!((status(&d, &refund), status(&d, &ship)), (1, 1));
    assert_eq!(status(&d, &other), 0);
    let activity = d.count(&format!(
        "SELECT count(*) FROM activities WHERE issue_id = {refund}"
    ));
    assert!(activity >= 3, "each change is recorded as activity");

    // An unknown project is sentry-cli's "Project not found", for a real reason.
    let out = run(&bin, &d, &["issues", "-p", "nope", "list"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("Project not found"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn sentry_cli_lists_a_projects_events() {
    for bin in clients("sentry_cli_lists_a_projects_events") {
        events_list(&bin);
    }
}

fn events_list(bin: &Path) {
    let bin = bin.to_path_buf();
    let d = Daemon::start();
    let web = dsn(&d, "web");
    issue(&d, &web, "pay");
    issue(&d, &web, "refund");
    issue(&d, &dsn(&d, "api"), "login");

    let out = ok(&bin, &d, &["events", "-p", "web", "list"]);
    let ids: Vec<String> = d
        .db()
        .prepare("SELECT event_id FROM events e JOIN projects p ON p.id = e.project_id WHERE p.slug = ?1")
        .unwrap()
        .query_map(["web"], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(ids.len(), 2);
    for id in &ids {
        // sentry-cli prints the UUID hyphenated.
        let hyphenated = format!(
            "{}-{}-{}-{}-{}",
            &id[..8],
            &id[8..12],
            &id[12..16],
            &id[16..20],
            &id[20..]
        );
        assert!(out.contains(&hyphenated), "{id} missing from:\n{out}");
    }
    assert!(out.contains("payError"), "titles are shown:\n{out}");

    let (status, body) = d.api("GET", "projects/acme/api/events/", None);
    assert_eq!(status, 200);
    assert_eq!(body.as_array().map(Vec::len), Some(1), "{body}");
    assert_eq!(
        body[0]["title"].as_str().map(|t| t.contains("loginError")),
        Some(true)
    );
    assert!(matches!(body[0]["groupID"], Value::String(_)));

    let out = ok(
        &bin,
        &d,
        &["events", "-p", "api", "list", "--max-rows", "1"],
    );
    assert!(!out.contains("No events found"), "{out}");
}
