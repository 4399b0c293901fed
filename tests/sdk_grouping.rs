//! The real sentry-python and @sentry/node SDKs against a real daemon: their events group into
//! issues as Sentry's default grouping does (by in-app frames, by message template, by
//! fingerprint with `{{ default }}`), are titled as Sentry titles them, count their users, and
//! come back from the issue-events API with tags, user, level, environment and release.

mod common;

use common::Daemon;
use common::events::dsn;
use common::sdks::{require_node_modules, require_python, run_script};
use serde_json::Value;

/// The issue id of every event tagged `case=<case>`, in the order received (payloads are
/// stored compressed, so the tag is read here rather than by SQL).
fn issues_of(d: &Daemon, case: &str) -> Vec<i64> {
    let conn = d.db();
    let mut stmt = conn
        .prepare("SELECT issue_id, data FROM events ORDER BY id")
        .unwrap();
    let rows: Vec<(i64, String)> = stmt
        .query_map([], |r| {
            Ok((r.get(0)?, shiplog::store::payload::decode(r.get_ref(1)?)))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    rows.into_iter()
        .filter(|(_, data)| {
            serde_json::from_str::<Value>(data).is_ok_and(|v| v["tags"]["case"] == case)
        })
        .map(|(issue, _)| issue)
        .collect()
}

/// The one issue of the events tagged `case`.
fn one_issue(d: &Daemon, case: &str, events: usize) -> Value {
    let ids = issues_of(d, case);
    assert_eq!(ids.len(), events, "events of {case}: {ids:?}\n{}", d.log());
    assert!(
        ids.iter().all(|i| *i == ids[0]),
        "{case} split into {ids:?}"
    );
    let (status, issue) = d.api(
        "GET",
        &format!("organizations/acme/issues/{}/", ids[0]),
        None,
    );
    assert_eq!(status, 200, "{issue}");
    issue
}

const PYTHON_APP: &str = r#"
import logging, sys
import sentry_sdk

sentry_sdk.init(dsn=sys.argv[1], release="shop@1.0", environment="production")

def pay(amount):
    return amount / 0

def refund(amount):
    return amount / 0

def report(case, f):
    with sentry_sdk.new_scope() as scope:
        scope.set_tag("case", case)
        try:
            f(10)
        except ZeroDivisionError:
            sentry_sdk.capture_exception()

for _ in range(2):
    report("pay", pay)
report("refund", refund)

for tenant in ("a", "a", "b"):
    with sentry_sdk.new_scope() as scope:
        scope.fingerprint = ["{{ default }}", "tenant-" + tenant]
        report("tenant-" + tenant, pay)

log = logging.getLogger("billing")
for order in ("A-1", "B-22"):
    with sentry_sdk.new_scope() as scope:
        scope.set_tag("case", "declined")
        log.error("payment %s declined", order)

for uid in ("u1", "u2", "u1"):
    with sentry_sdk.new_scope() as scope:
        scope.set_tag("case", "quota")
        scope.set_user({"id": uid, "email": uid + "@example.com"})
        sentry_sdk.capture_message("quota exceeded", level="warning")

sentry_sdk.flush()
"#;

#[test]
fn sentry_python_events_group_like_sentry() {
    let Some(python) = require_python("sentry_python_events_group_like_sentry") else {
        return;
    };
    let d = Daemon::start();
    let web = dsn(&d, "web");
    run_script(&python, "shop.py", PYTHON_APP, &[&web.text], &[]);

    // The same error from the same place twice: one issue; from another function: another.
    let pay = one_issue(&d, "pay", 2);
    let refund = one_issue(&d, "refund", 1);
    assert_ne!(pay["id"], refund["id"]);
    assert_eq!(pay["title"], "ZeroDivisionError: division by zero");
    assert_eq!(refund["title"], "ZeroDivisionError: division by zero");
    assert_eq!(pay["culprit"], "__main__ in pay");
    assert_eq!(refund["culprit"], "__main__ in refund");
    assert_eq!(pay["count"], "2");
    assert_eq!(pay["metadata"]["function"], "pay");

    // `{{ default }}` plus a tenant: the default grouping split by tenant.
    let a = one_issue(&d, "tenant-a", 2);
    let b = one_issue(&d, "tenant-b", 1);
    assert_ne!(a["id"], b["id"]);
    assert_ne!(a["id"], pay["id"]);

    // A logging call groups by its template, whatever the arguments.
    let declined = one_issue(&d, "declined", 2);
    assert_eq!(declined["title"], "payment A-1 declined");
    assert_eq!(declined["level"], "error");

    // Distinct users, by Sentry's user tag (id first).
    let quota = one_issue(&d, "quota", 3);
    assert_eq!(quota["userCount"], 2);
    assert_eq!(quota["count"], "3");
    assert_eq!(quota["title"], "quota exceeded");
    assert_eq!(pay["userCount"], 0);

    // The issue's events carry tags, user, level, environment and release.
    let id = quota["id"].as_str().unwrap();
    let (status, events) = d.api(
        "GET",
        &format!("organizations/acme/issues/{id}/events/"),
        None,
    );
    assert_eq!(status, 200, "{events}");
    let events = events.as_array().unwrap();
    assert_eq!(events.len(), 3);
    let e = &events[0];
    assert_eq!(e["groupID"], id);
    assert_eq!(e["level"], "warning");
    assert_eq!(e["environment"], "production");
    assert_eq!(e["release"], "shop@1.0");
    assert_eq!(e["title"], "quota exceeded");
    assert_eq!(e["event.type"], "default");
    assert_eq!(e["user"]["id"], "u1");
    assert_eq!(e["user"]["email"], "u1@example.com");
    let tag = |k: &str| {
        e["tags"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["key"] == k)
            .map(|t| t["value"].clone())
    };
    assert_eq!(tag("user"), Some("id:u1".into()));
    assert_eq!(tag("level"), Some("warning".into()));
    assert_eq!(tag("environment"), Some("production".into()));
    assert_eq!(tag("release"), Some("shop@1.0".into()));
    assert_eq!(tag("case"), Some("quota".into()));
    assert!(tag("runtime").is_some(), "{e}");
    let keys: Vec<&str> = e["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["key"].as_str().unwrap())
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
}

const NODE_APP: &str = r#"
const Sentry = require('@sentry/node');
Sentry.init({
  dsn: process.argv[2],
  release: 'shop@1.0',
  attachStacktrace: process.argv[3] === 'stack',
});

function checkout(order) {
  Sentry.captureMessage(`checkout failed for order ${order}`, {
    tags: { case: process.argv[3] + '-checkout' },
  });
}

function pay(order) { return order.total.amount; }
function refund(order) { return order.total.amount; }

function report(f) {
  try {
    f({});
  } catch (e) {
    Sentry.captureException(e, { tags: { case: process.argv[3] + '-' + f.name } });
  }
}

for (const order of [12, 345]) checkout(order);
// Not twice in a row: the SDK's Dedupe integration would drop the second.
for (const f of [pay, refund, pay]) report(f);

Sentry.close(5000).then(() => process.exit(0));
"#;

#[test]
fn sentry_node_events_are_titled_and_grouped_like_sentry() {
    let Some(modules) =
        require_node_modules("sentry_node_events_are_titled_and_grouped_like_sentry")
    else {
        return;
    };
    let d = Daemon::start();
    let web = dsn(&d, "web");
    let node = std::path::Path::new("node");
    for mode in ["plain", "stack"] {
        run_script(
            node,
            "shop.js",
            NODE_APP,
            &[&web.text, mode],
            &[("NODE_PATH", &modules)],
        );
    }

    // captureMessage: a message event titled with its message; with attachStacktrace a
    // synthetic exception, which Sentry titles with the function that captured it (never
    // `Error: ...`) and groups by its in-app frames, not by the text.
    let plain = one_issue(&d, "plain-checkout", 2);
    // The SDK sends in parallel: the issue is titled by whichever event came first.
    let title = plain["title"].as_str().unwrap();
    assert!(
        [
            "checkout failed for order 12",
            "checkout failed for order 345"
        ]
        .contains(&title),
        "{title}"
    );
    assert_eq!(plain["level"], "info");
    let stack = one_issue(&d, "stack-checkout", 2);
    assert_eq!(stack["title"], "checkout");
    assert!(
        stack["metadata"]["value"]
            .as_str()
            .unwrap()
            .starts_with("checkout failed for order "),
        "{stack}"
    );
    assert_eq!(stack["culprit"], "checkout(shop)");
    assert_ne!(plain["id"], stack["id"]);

    // captureException: one issue per in-app call path.
    let pay = one_issue(&d, "plain-pay", 2);
    let refund = one_issue(&d, "plain-refund", 1);
    assert_ne!(pay["id"], refund["id"]);
    assert_eq!(
        pay["title"],
        "TypeError: Cannot read properties of undefined (reading 'amount')"
    );
    assert_eq!(pay["culprit"], "pay(shop)");
    assert_eq!(pay["metadata"]["function"], "pay");
    // The same errors with attachStacktrace on are the same issues.
    assert_eq!(one_issue(&d, "stack-pay", 2)["id"], pay["id"]);
}
