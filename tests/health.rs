//! Release health end to end: sessions sent to a real daemon as envelopes (by hand with
//! explicit timestamps, and by the real sentry-python and @sentry/node SDKs), read back through
//! Sentry's sessions API, the releases endpoints with `health=1` and the CLI.

mod common;

use std::io::Write;

use chrono::{Duration, SecondsFormat, Utc};
use common::events::{Dsn, dsn, post_raw};
use common::{Daemon, sdks, stderr, stdout};
use serde_json::{Value, json};

fn at(ago: Duration) -> String {
    (Utc::now() - ago).to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// An envelope of `(type, payload)` items with the given header.
fn envelope(header: Value, items: &[(&str, Value)]) -> Vec<u8> {
    let mut body = Vec::new();
    writeln!(body, "{header}").unwrap();
    for (ty, payload) in items {
        let payload = serde_json::to_vec(payload).unwrap();
        writeln!(body, "{}", json!({"type": ty, "length": payload.len()})).unwrap();
        body.extend_from_slice(&payload);
        body.push(b'\n');
    }
    body
}

fn post(d: &Daemon, dsn: &Dsn, body: Vec<u8>) -> (u16, Value) {
    let auth = format!(
        "Sentry sentry_key={}, sentry_version=7, sentry_client=shiplog-tests/1",
        dsn.key
    );
    post_raw(
        d,
        &format!("/api/{}/envelope/", dsn.project_id),
        body,
        &[("X-Sentry-Auth", &auth)],
    )
}

fn send(d: &Daemon, dsn: &Dsn, items: &[(&str, Value)]) {
    let (status, body) = post(d, dsn, envelope(json!({}), items));
    assert_eq!(status, 200, "{body}");
}

/// One application-mode update.
fn update(sid: &str, did: Option<&str>, init: bool, status: &str, started: &str) -> Value {
    let mut s = json!({
        "sid": sid, "init": init, "started": started, "timestamp": started, "status": status,
        "attrs": {"release": "app@1.0", "environment": "production"},
    });
    if let Some(did) = did {
        s["did"] = json!(did);
    }
    s
}

fn health_of(d: &Daemon, version: &str, params: &str) -> Value {
    let (status, body) = d.api(
        "GET",
        &format!("organizations/acme/releases/{version}/?health=1&{params}"),
        None,
    );
    assert_eq!(status, 200, "{body}");
    body["projects"][0]["healthData"].clone()
}

fn sessions_api(d: &Daemon, query: &str) -> (u16, Value) {
    d.api(
        "GET",
        &format!("organizations/acme/sessions/?{query}"),
        None,
    )
}

fn round1(v: &Value) -> Option<f64> {
    v.as_f64().map(|f| (f * 10.0).round() / 10.0)
}

#[test]
fn sessions_are_counted_as_sentry_counts_them() {
    let d = Daemon::start();
    let web = dsn(&d, "web");
    let t = at(Duration::minutes(20));
    // s1: healthy, exited after 100 s. s2: errored twice (counted once), then crashed.
    // s3: abnormal, no user. s4: healthy, the nil UUID as its user (no user).
    let mut exited = update("s1", Some("u1"), false, "exited", &t);
    exited["duration"] = json!(100.0);
    send(
        &d,
        &web,
        &[
            ("session", update("s1", Some("u1"), true, "ok", &t)),
            ("session", exited),
        ],
    );
    send(
        &d,
        &web,
        &[("session", update("s2", Some("u2"), true, "ok", &t))],
    );
    let mut err = update("s2", Some("u2"), false, "ok", &t);
    err["errors"] = json!(1);
    send(&d, &web, &[("session", err.clone())]);
    err["errors"] = json!(2);
    send(&d, &web, &[("session", err)]);
    send(
        &d,
        &web,
        &[("session", update("s2", Some("u2"), false, "crashed", &t))],
    );
    send(
        &d,
        &web,
        &[("session", update("s3", None, true, "abnormal", &t))],
    );
    send(
        &d,
        &web,
        &[(
            "session",
            update(
                "s4",
                Some("00000000-0000-0000-0000-000000000000"),
                true,
                "exited",
                &t,
            ),
        )],
    );

    // The release did not exist: the sessions created it, in project web.
    let h = health_of(&d, "app@1.0", "summaryStatsPeriod=24h");
    assert_eq!(h["totalSessions"], 4, "{h}");
    assert_eq!(h["totalUsers"], 2, "{h}");
    assert_eq!(h["sessionsCrashed"], 1);
    // errored_all = 2 (s2 once, s3); errored = max(0, 2 - crashed 1 - abnormal 1) = 0.
    assert_eq!(h["sessionsErrored"], 0);
    assert_eq!(h["crashFreeSessions"], 75.0);
    assert_eq!(h["crashFreeUsers"], 50.0);
    assert_eq!(h["totalSessions24h"], 4);
    assert_eq!(h["totalProjectSessions24h"], 4);
    assert_eq!(h["adoption"], 100.0);
    assert_eq!(h["sessionsAdoption"], 100.0);
    assert!(
        (h["durationP50"].as_f64().unwrap() - 100.0).abs() < 1.0,
        "{h}"
    );
    assert_eq!(h["hasHealthData"], true);
    let stats = h["stats"]["24h"].as_array().unwrap();
    assert_eq!(stats.len(), 24);
    let sum: i64 = stats.iter().map(|p| p[1].as_i64().unwrap()).sum();
    assert_eq!(sum, 4);

    // The sessions API, grouped by status.
    let (status, body) = sessions_api(
        &d,
        "field=sum(session)&field=count_unique(user)&groupBy=session.status&statsPeriod=24h&interval=1h",
    );
    assert_eq!(status, 200, "{body}");
    let by_status: std::collections::HashMap<String, (i64, i64)> = body["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["by"]["session.status"].as_str().unwrap().to_string(),
                (
                    g["totals"]["sum(session)"].as_i64().unwrap(),
                    g["totals"]["count_unique(user)"].as_i64().unwrap(),
                ),
            )
        })
        .collect();
    assert_eq!(by_status["healthy"], (2, 1));
    assert_eq!(by_status["crashed"], (1, 1));
    assert_eq!(by_status["abnormal"], (1, 0));
    assert_eq!(by_status["errored"], (0, 0));
    assert_eq!(body["intervals"].as_array().unwrap().len(), 24);

    let (status, body) = sessions_api(
        &d,
        "field=crash_free_rate(session)&field=p50(session.duration)&groupBy=release&groupBy=project&statsPeriod=24h&query=release:app@1.0",
    );
    assert_eq!(status, 200, "{body}");
    let g = &body["groups"][0];
    assert_eq!(g["by"]["release"], "app@1.0");
    assert_eq!(
        g["by"]["project"].as_i64().unwrap().to_string(),
        web.project_id
    );
    assert_eq!(g["totals"]["crash_free_rate(session)"], 0.75);
    // Milliseconds, as Sentry's sessions API.
    let p50 = g["totals"]["p50(session.duration)"].as_f64().unwrap();
    assert!((p50 - 100_000.0).abs() < 1000.0, "{p50}");
    assert_eq!(body["query"], "release:app@1.0");
}

#[test]
fn seven_users_over_a_day_and_a_week() {
    // The Releases document's example: seven users use the app for seven days; each day one
    // of them crashes, a different one every day.
    let d = Daemon::start_with(&format!(
        "{}health:\n  max_session_age: 8d\n",
        common::DEFAULT_CONFIG
    ));
    let web = dsn(&d, "web");
    for day in 0..7i64 {
        let started = at(Duration::days(day) + Duration::minutes(30));
        let items: Vec<(&str, Value)> = (0..7)
            .map(|user| {
                let status = if user == day { "crashed" } else { "exited" };
                let sid = format!("d{day}-u{user}");
                let did = format!("user-{user}");
                let mut s = update(&sid, Some(&did), true, status, &started);
                s["attrs"]["release"] = json!("app@7");
                ("session", s)
            })
            .collect();
        send(&d, &web, &items);
    }
    let day = health_of(&d, "app@7", "summaryStatsPeriod=24h");
    assert_eq!(day["totalUsers"], 7, "{day}");
    assert_eq!(round1(&day["crashFreeUsers"]), Some(85.7));
    assert_eq!(round1(&day["crashFreeSessions"]), Some(85.7));
    let week = health_of(&d, "app@7", "summaryStatsPeriod=7d");
    assert_eq!(week["totalUsers"], 7, "{week}");
    assert_eq!(week["totalSessions"], 49);
    assert_eq!(week["crashFreeUsers"], 0.0);
    assert_eq!(round1(&week["crashFreeSessions"]), Some(85.7));

    for (period, expected) in [("24h", 6.0 / 7.0), ("7d", 0.0)] {
        let (status, body) = sessions_api(
            &d,
            &format!(
                "field=crash_free_rate(user)&field=count_unique(user)&statsPeriod={period}&interval=1h"
            ),
        );
        assert_eq!(status, 200, "{body}");
        let totals = &body["groups"][0]["totals"];
        assert_eq!(totals["count_unique(user)"], 7, "{period}: {body}");
        let rate = totals["crash_free_rate(user)"].as_f64().unwrap();
        assert!((rate - expected).abs() < 1e-9, "{period}: {rate}");
    }
}

#[test]
fn refused_sessions_are_counted_and_never_fail_the_envelope() {
    let d = Daemon::start();
    let web = dsn(&d, "web");
    let now = at(Duration::zero());
    let ok = |sid: &str| update(sid, Some("u"), true, "exited", &now);
    let mut bad_release = ok("r1");
    bad_release["attrs"]["release"] = json!("latest");
    let mut no_release = ok("r2");
    no_release["attrs"] = json!({"environment": "production"});
    let too_old = update("r3", None, true, "exited", &at(Duration::days(6)));
    let future = update("r4", None, true, "exited", &at(Duration::minutes(-5)));
    let mut bad_env = ok("r5");
    bad_env["attrs"]["environment"] = json!("none");
    let event = common::events::error_event("ValueError", "bad input", Some("app@1.0"));
    let body = envelope(
        json!({"event_id": event["event_id"]}),
        &[
            ("event", event.clone()),
            ("session", bad_release),
            ("session", no_release),
            ("session", too_old),
            ("session", future),
            ("session", bad_env),
            ("session", json!("not a session")),
            (
                "sessions",
                json!({"attrs": {"release": "app@1.0"}, "aggregates": [
                    {"started": at(Duration::days(9)), "exited": 5},
                    {"started": now, "exited": 2, "crashed": 1},
                ]}),
            ),
            ("session", ok("r6")),
        ],
    );
    let (status, resp) = post(&d, &web, body);
    assert_eq!(status, 200, "{resp}");
    assert_eq!(resp["id"], event["event_id"]);
    assert_eq!(d.count("SELECT count(*) FROM events"), 1);

    // Kept: r5 (environment dropped), r6, and the recent aggregate group (3 sessions).
    let h = health_of(&d, "app@1.0", "summaryStatsPeriod=24h");
    assert_eq!(h["totalSessions"], 5, "{h}");
    assert_eq!(h["sessionsCrashed"], 1);
    let (_, body) = sessions_api(&d, "field=sum(session)&groupBy=environment&statsPeriod=1h");
    let envs: Vec<(String, i64)> = body["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["by"]["environment"].as_str().unwrap().to_string(),
                g["totals"]["sum(session)"].as_i64().unwrap(),
            )
        })
        .collect();
    assert!(envs.contains(&(String::new(), 4)), "{envs:?}");
    assert!(envs.contains(&("production".to_string(), 1)), "{envs:?}");

    let (status, refusals) = d.api("GET", "organizations/acme/sessions/refusals/", None);
    assert_eq!(status, 200);
    let count = |reason: &str| {
        refusals
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["reason"] == reason && r["project"] == "web")
            .map_or(0, |r| r["count"].as_i64().unwrap())
    };
    assert_eq!(count("invalid_release"), 1, "{refusals}");
    assert_eq!(count("invalid_payload"), 2, "{refusals}");
    assert_eq!(count("too_old"), 2, "{refusals}");
    assert_eq!(count("in_future"), 1, "{refusals}");

    // The CLI shows them too.
    let out = d.shiplog(&["releases", "health", "app@1.0", "--period", "24h"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("too_old"), "{text}");

    // Only a malformed envelope is a 400.
    let (status, _) = post(&d, &web, b"{\"broken\n".to_vec());
    assert_eq!(status, 400);
}

#[test]
fn client_clock_drift_is_corrected_from_sent_at() {
    let d = Daemon::start();
    let web = dsn(&d, "web");
    // The client's clock is 3 hours ahead: its `started` is "in the future" until corrected.
    let skewed = at(Duration::hours(-3));
    let body = envelope(
        json!({"sent_at": skewed}),
        &[("session", update("c1", Some("u"), true, "exited", &skewed))],
    );
    let (status, _) = post(&d, &web, body);
    assert_eq!(status, 200);
    let h = health_of(&d, "app@1.0", "summaryStatsPeriod=1h");
    assert_eq!(h["totalSessions"], 1, "{h}");
}

#[test]
fn request_mode_without_users_has_no_user_figures() {
    let d = Daemon::start();
    let api = dsn(&d, "api");
    send(
        &d,
        &api,
        &[(
            "sessions",
            json!({"attrs": {"release": "api@2", "environment": "production"}, "aggregates": [
                {"started": at(Duration::minutes(5)), "exited": 8, "errored": 1, "crashed": 1},
            ]}),
        )],
    );
    let h = health_of(&d, "api@2", "");
    assert_eq!(h["totalSessions"], 10, "{h}");
    assert_eq!(h["sessionsErrored"], 1);
    assert_eq!(h["crashFreeSessions"], 90.0);
    assert_eq!(h["crashFreeUsers"], Value::Null);
    assert_eq!(h["adoption"], Value::Null);
    assert_eq!(h["totalUsers"], 0);
    let out = d.shiplog(&["releases", "health", "api@2"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("n/a"), "{}", stdout(&out));
}

#[test]
fn counts_survive_a_restart_and_concurrent_ingest_loses_nothing() {
    let mut d = Daemon::start();
    let web = dsn(&d, "web");
    let started = at(Duration::minutes(10));
    std::thread::scope(|s| {
        for t in 0..8 {
            let (d, web, started) = (&d, &web, &started);
            s.spawn(move || {
                for i in 0..40 {
                    let sid = format!("t{t}-{i}");
                    let did = format!("user-{t}-{}", i % 4);
                    let status = if i % 10 == 0 { "crashed" } else { "exited" };
                    send(
                        d,
                        web,
                        &[("session", update(&sid, Some(&did), true, status, started))],
                    );
                }
            });
        }
    });
    let check = |d: &Daemon| {
        let h = health_of(d, "app@1.0", "summaryStatsPeriod=24h");
        assert_eq!(h["totalSessions"], 320, "{h}");
        assert_eq!(h["sessionsCrashed"], 32);
        assert_eq!(h["totalUsers"], 32);
    };
    check(&d);
    d.restart();
    check(&d);
}

#[test]
fn release_list_health_sorts_and_errors() {
    let d = Daemon::start();
    let web = dsn(&d, "web");
    let t = at(Duration::minutes(10));
    let mut items = Vec::new();
    for (release, n, crashed) in [("good@1", 10, 0), ("bad@1", 4, 2), ("big@1", 30, 3)] {
        for i in 0..n {
            let status = if i < crashed { "crashed" } else { "exited" };
            let mut s = update(
                &format!("{release}-{i}"),
                Some(&format!("u{i}")),
                true,
                status,
                &t,
            );
            s["attrs"]["release"] = json!(release);
            items.push(("session", s));
        }
    }
    send(&d, &web, &items);
    let versions = |query: &str| -> Vec<String> {
        let (status, body) = d.api(
            "GET",
            &format!("organizations/acme/releases/?{query}"),
            None,
        );
        assert_eq!(status, 200, "{body}");
        body.as_array()
            .unwrap()
            .iter()
            .map(|r| r["version"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        versions("sort=crash_free_sessions&flatten=1"),
        ["good@1", "big@1", "bad@1"]
    );
    assert_eq!(
        versions("sort=sessions&flatten=1"),
        ["big@1", "good@1", "bad@1"]
    );
    assert_eq!(versions("sort=users_24h&flatten=1")[0], "big@1");
    let (status, body) = d.api(
        "GET",
        "organizations/acme/releases/?sort=crash_free_users",
        None,
    );
    assert_eq!(status, 400);
    assert_eq!(
        body["detail"],
        "sorting by crash statistics requires flattening (flatten=1)"
    );
    let (status, body) = d.api(
        "GET",
        "organizations/acme/releases/?health=1&summaryStatsPeriod=3d",
        None,
    );
    assert_eq!(status, 400);
    assert_eq!(
        body["detail"],
        "Invalid summaryStatsPeriod. Valid choices are '1h', '24h', '1d', '48h', '2d', '7d', '14d', '30d', '90d'"
    );
    let (status, body) = d.api("GET", "organizations/acme/releases/?healthStat=x", None);
    assert_eq!(
        (status, body["detail"].as_str()),
        (400, Some("invalid healthStat"))
    );

    // health=1 on the list: every key Sentry returns, users stat series.
    let (_, list) = d.api(
        "GET",
        "organizations/acme/releases/?health=1&healthStat=users&healthStatsPeriod=7d&adoptionStages=1",
        None,
    );
    let big = list
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["version"] == "big@1")
        .unwrap();
    let h = &big["projects"][0]["healthData"];
    for key in [
        "durationP50",
        "durationP90",
        "crashFreeUsers",
        "crashFreeSessions",
        "sessionsCrashed",
        "sessionsErrored",
        "totalUsers",
        "totalUsers24h",
        "totalProjectUsers24h",
        "totalSessions",
        "totalSessions24h",
        "totalProjectSessions24h",
        "adoption",
        "sessionsAdoption",
        "stats",
        "hasHealthData",
    ] {
        assert!(h.get(key).is_some(), "{key} missing: {h}");
    }
    let points = h["stats"]["7d"].as_array().unwrap();
    assert_eq!(points.len(), 7);
    assert_eq!(points[6][1], 30);
    assert_eq!(h["totalProjectSessions24h"], 44);
    assert_eq!(big["adoptionStages"]["web"]["stage"], "low_adoption");

    // The sessions API's 400s.
    for (query, detail) in [
        ("statsPeriod=24h", "Request is missing a \"field\""),
        ("field=foo&statsPeriod=24h", "Invalid field: \"foo\""),
        (
            "field=sum(session)&groupBy=os&statsPeriod=24h",
            "Invalid groupBy: \"os\"",
        ),
        (
            "field=crash_free_rate(session)&groupBy=session.status&statsPeriod=24h",
            "Cannot group field crash_free_rate(session) by session.status",
        ),
        (
            "field=sum(session)&statsPeriod=24h&interval=5h",
            "The interval should divide one day without a remainder.",
        ),
        (
            "field=sum(session)&statsPeriod=90d&interval=1h",
            "Your interval and date range would create too many results. Use a larger interval, or a smaller date range.",
        ),
    ] {
        let (status, body) = sessions_api(&d, query);
        assert_eq!(
            (status, body["detail"].as_str()),
            (400, Some(detail)),
            "{query}"
        );
    }

    // The CLI's list shows crash-free columns once there is data.
    let out = d.shiplog(&["releases", "list"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("CRASH-FREE SESSIONS 24H"), "{text}");
    assert!(text.contains("90.0%"), "{text}");
}

const PY_APP: &str = r#"
import os, sentry_sdk
sentry_sdk.init(dsn=os.environ["DSN"], release="py@1.0", environment="production")
sentry_sdk.set_user({"id": os.environ["USER_ID"]})
scope = sentry_sdk.get_isolation_scope()
scope.start_session(session_mode="application")
mode = os.environ["MODE"]
if mode == "errored":
    try:
        1 / 0
    except ZeroDivisionError:
        sentry_sdk.capture_exception()
if mode == "crashed":
    raise RuntimeError("boom")
scope.end_session()
sentry_sdk.flush()
"#;

const PY_REQUESTS: &str = r#"
import os, sentry_sdk
from sentry_sdk.sessions import track_session
sentry_sdk.init(dsn=os.environ["DSN"], release="pyweb@2.0", environment="production")
for i in range(6):
    with sentry_sdk.isolation_scope() as scope:
        with track_session(scope, session_mode="request"):
            if i == 0:
                try:
                    1 / 0
                except ZeroDivisionError:
                    sentry_sdk.capture_exception()
sentry_sdk.flush()
"#;

#[test]
fn sentry_python_sessions() {
    let Some(python) = sdks::require_python("sentry_python_sessions") else {
        return;
    };
    let d = Daemon::start();
    let web = dsn(&d, "web");
    for (user, mode) in [
        ("a", "healthy"),
        ("b", "errored"),
        ("c", "crashed"),
        ("d", "healthy"),
    ] {
        let out = sdks::run_python(
            &python,
            PY_APP,
            &[("DSN", &web.text), ("USER_ID", user), ("MODE", mode)],
        );
        if mode != "crashed" {
            assert!(out.status.success(), "{mode}: {}", stderr(&out));
        }
    }
    let h = health_of(&d, "py@1.0", "summaryStatsPeriod=24h");
    assert_eq!(h["totalSessions"], 4, "{h}\n{}", d.log());
    assert_eq!(h["totalUsers"], 4);
    assert_eq!(h["sessionsCrashed"], 1);
    assert_eq!(h["sessionsErrored"], 1);
    assert_eq!(h["crashFreeSessions"], 75.0);
    assert_eq!(h["crashFreeUsers"], 75.0);

    // Request mode: aggregates without users.
    let api = dsn(&d, "api");
    let out = sdks::run_python(&python, PY_REQUESTS, &[("DSN", &api.text)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let h = health_of(&d, "pyweb@2.0", "summaryStatsPeriod=24h");
    assert_eq!(h["totalSessions"], 6, "{h}");
    assert_eq!(h["sessionsErrored"], 1);
    assert_eq!(h["crashFreeSessions"], 100.0);
    assert_eq!(h["crashFreeUsers"], Value::Null);
}

const NODE_APP: &str = r#"
const Sentry = require("@sentry/node");
Sentry.init({ dsn: process.env.DSN, release: "node@3.0", environment: "production" });
Sentry.setUser({ id: process.env.USER_ID });
if (process.env.MODE === "errored") Sentry.captureException(new Error("handled"));
// The process-session integration ends the session (exited, with its duration) and sends it
// when the process is about to exit.
"#;

#[test]
fn sentry_node_sessions() {
    let Some(modules) = sdks::require_node_modules("sentry_node_sessions") else {
        return;
    };
    let d = Daemon::start();
    let web = dsn(&d, "web");
    for (user, mode) in [("n1", "healthy"), ("n2", "errored"), ("n3", "healthy")] {
        let out = sdks::run_node(
            &modules,
            NODE_APP,
            &[("DSN", &web.text), ("USER_ID", user), ("MODE", mode)],
        );
        assert!(out.status.success(), "{mode}: {}", stderr(&out));
    }
    let h = health_of(&d, "node@3.0", "summaryStatsPeriod=24h");
    assert_eq!(h["totalSessions"], 3, "{h}\n{}", d.log());
    assert_eq!(h["totalUsers"], 3);
    assert_eq!(h["sessionsErrored"], 1);
    assert_eq!(h["crashFreeSessions"], 100.0);
    assert!(h["durationP50"].as_f64().is_some(), "{h}");
}
