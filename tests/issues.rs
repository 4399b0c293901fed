//! Issues end to end against a real daemon: events posted to the envelope endpoint become
//! issues, the API resolves them (now, in a release, in the next release), newer releases
//! regress them, and bad input is refused with Sentry's statuses without changing anything.

mod common;

use std::io::Write;

use common::events::{self, Dsn, dsn, error_event, post_raw, send_and_find, send_event};
use common::gitrepo::GitRepo;
use common::{Daemon, stderr, stdout};
use serde_json::{Value, json};

fn issue(d: &Daemon, id: &str) -> Value {
    let (status, v) = d.api("GET", &format!("organizations/acme/issues/{id}/"), None);
    assert_eq!(status, 200, "{v}");
    v
}

fn put(d: &Daemon, id: &str, body: Value) -> (u16, Value) {
    d.api(
        "PUT",
        &format!("organizations/acme/issues/{id}/"),
        Some(body),
    )
}

fn new_release(d: &Daemon, version: &str) {
    let (status, r) = d.api(
        "POST",
        "organizations/acme/releases/",
        Some(json!({"version": version, "projects": ["web"]})),
    );
    assert!(status == 201 || status == 208, "{r}");
}

/// Everything an ingest request could have changed.
fn snapshot(d: &Daemon) -> (i64, i64, i64, i64, i64) {
    (
        d.count("SELECT count(*) FROM events"),
        d.count("SELECT count(*) FROM issues"),
        d.count("SELECT count(*) FROM releases"),
        d.count("SELECT count(*) FROM activities"),
        d.count("SELECT COALESCE(sum(times_seen), 0) FROM issues"),
    )
}

#[test]
fn an_event_creates_an_issue_and_its_release() {
    let d = Daemon::start();
    let web = dsn(&d, "web");
    assert!(web.text.starts_with("http://"), "{}", web.text);
    assert_eq!(web.key.len(), 32);
    assert!(d.url.ends_with(&web.host), "{} vs {}", d.url, web.host);

    let event = error_event("KeyError", "'user 42' not found", Some("1.0"));
    let (status, body) = send_event(&d, &web, &event);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["id"], event["event_id"]);

    let i = issue(&d, "WEB-1");
    assert_eq!(i["shortId"], "WEB-1");
    assert_eq!(i["title"], "KeyError: 'user 42' not found");
    assert_eq!(i["culprit"], "app.billing.charge in charge");
    assert_eq!(i["status"], "unresolved");
    assert_eq!(i["substatus"], "new");
    assert_eq!(i["count"], "1");
    assert_eq!(i["project"]["slug"], "web");
    assert_eq!(i["firstRelease"]["version"], "1.0");
    assert_eq!(i["lastRelease"]["version"], "1.0");
    assert_eq!(i["activity"][0]["type"], "first_seen");
    // Short ids are case-insensitive and numeric ids work too.
    assert_eq!(issue(&d, "web-1")["id"], i["id"]);
    assert_eq!(issue(&d, i["id"].as_str().unwrap())["shortId"], "WEB-1");

    // The release was created by the event, attached to the project, and counts the issue.
    let (status, r) = d.api("GET", "organizations/acme/releases/1.0/", None);
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["newGroups"], 1);
    assert_eq!(r["projects"][0]["slug"], "web");

    // Same type, different numbers: the same issue. Another type: a new one.
    send_event(
        &d,
        &web,
        &error_event("KeyError", "'user 7' not found", Some("1.0")),
    );
    assert_eq!(issue(&d, "WEB-1")["count"], "2");
    let other = send_and_find(&d, &web, &error_event("ValueError", "bad", Some("1.1")));
    assert_eq!(other["shortId"], "WEB-2");
    let (_, r11) = d.api("GET", "organizations/acme/releases/1.1/", None);
    assert_eq!(r11["newGroups"], 1);
    let (_, r10) = d.api("GET", "organizations/acme/releases/1.0/", None);
    assert_eq!(r10["newGroups"], 1);
    // firstEvent / lastEvent span the release's events, in the list as in the detail.
    let (first, last) = (r10["firstEvent"].as_str(), r10["lastEvent"].as_str());
    assert!(first.is_some() && last.is_some(), "{r10}");
    assert!(first <= last, "{r10}");
    let (_, list) = d.api("GET", "organizations/acme/releases/?query=1.0", None);
    let listed = list
        .as_array()
        .and_then(|l| l.iter().find(|r| r["version"] == "1.0"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(listed["lastEvent"], r10["lastEvent"], "{list}");

    // The event row keeps release, environment and the frames' file paths: the payload is
    // stored compressed, and the frames once, inside it (the column stays empty).
    let db = d.db();
    let (release, env, column, data_type, frames): (String, String, String, String, String) = db
        .query_row(
            "SELECT r.version, e.environment, e.frames, typeof(e.data), e.data FROM events e
             JOIN releases r ON r.id = e.release_id ORDER BY e.id LIMIT 1",
            [],
            |r| {
                let data = shiplog::store::payload::decode(r.get_ref(4)?);
                let frames = shiplog::store::payload::frames_of(r.get(2)?, &data);
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, frames))
            },
        )
        .unwrap();
    assert_eq!((release.as_str(), env.as_str()), ("1.0", "production"));
    assert_eq!((column.as_str(), data_type.as_str()), ("", "blob"));
    assert!(frames.contains("app/billing/charge.py"), "{frames}");

    // A retried event (same id) is stored once.
    let before = events::event_id();
    let mut again = error_event("KeyError", "'user 1' not found", Some("1.0"));
    again["event_id"] = json!(before);
    send_event(&d, &web, &again);
    let (status, body) = send_event(&d, &web, &again);
    assert_eq!(status, 200);
    assert_eq!(body["id"], json!(before));
    assert_eq!(issue(&d, "WEB-1")["count"], "3");
}

#[test]
fn messages_group_by_template_and_every_auth_form_works() {
    let d = Daemon::start();
    let web = dsn(&d, "web");
    let msg = |p: &str| json!({"event_id": events::event_id(), "logentry": {"message": "hello %s", "params": [p]}});
    // X-Sentry-Auth, ?sentry_key=, and the envelope header's dsn.
    let (s1, _) = send_event(&d, &web, &msg("world"));
    let (s2, _) = post_raw(
        &d,
        &format!("/api/{}/envelope/?sentry_key={}", web.project_id, web.key),
        events::envelope(&msg("moon")),
        &[],
    );
    let payload = serde_json::to_vec(&msg("sun")).unwrap();
    let mut body = format!(
        "{}\n{}\n",
        json!({"dsn": web.text}),
        json!({"type": "event", "length": payload.len()})
    )
    .into_bytes();
    body.extend_from_slice(&payload);
    let (s3, _) = post_raw(&d, &format!("/api/{}/envelope/", web.project_id), body, &[]);
    assert_eq!((s1, s2, s3), (200, 200, 200));
    let i = issue(&d, "WEB-1");
    assert_eq!(i["title"], "hello world");
    assert_eq!(i["count"], "3");
    assert_eq!(d.count("SELECT count(*) FROM issues"), 1);

    // gzip bodies, and the legacy store endpoint.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&events::envelope(&msg("gz"))).unwrap();
    let auth = format!("Sentry sentry_key={}, sentry_version=7", web.key);
    let (status, _) = post_raw(
        &d,
        &format!("/api/{}/envelope/", web.project_id),
        gz.finish().unwrap(),
        &[("X-Sentry-Auth", &auth), ("Content-Encoding", "gzip")],
    );
    assert_eq!(status, 200);
    let (status, body) = post_raw(
        &d,
        &format!("/api/{}/store", web.project_id),
        serde_json::to_vec(&msg("legacy")).unwrap(),
        &[("X-Sentry-Auth", &auth)],
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(issue(&d, "WEB-1")["count"], "5");

    // Other item types are accepted and ignored.
    let (status, _) = post_raw(
        &d,
        &format!("/api/{}/envelope/", web.project_id),
        b"{}\n{\"type\":\"session\"}\n{\"sid\":\"x\"}\n{\"type\":\"client_report\",\"length\":2}\n{}\n"
            .to_vec(),
        &[("X-Sentry-Auth", &auth)],
    );
    assert_eq!(status, 200);
    assert_eq!(d.count("SELECT count(*) FROM events"), 5);
}

fn assert_refused(
    d: &Daemon,
    before: (i64, i64, i64, i64, i64),
    got: (u16, Value),
    want: u16,
    text: &str,
) {
    let (status, body) = got;
    assert_eq!(status, want, "{body}");
    let detail = body["detail"].as_str().unwrap_or_default();
    assert!(detail.contains(text), "{detail:?} should mention {text:?}");
    assert_eq!(snapshot(d), before, "a refused request changed the store");
}

#[test]
fn bad_ingest_requests_are_refused_and_change_nothing() {
    let d = Daemon::start();
    let web = dsn(&d, "web");
    let api = dsn(&d, "api");
    send_event(&d, &web, &error_event("E", "seed", Some("1.0")));
    let before = snapshot(&d);
    let path = format!("/api/{}/envelope/", web.project_id);
    let good = events::envelope(&error_event("E", "x", Some("9.9")));
    let auth = |key: &str| format!("Sentry sentry_key={key}, sentry_version=7");

    // Authentication.
    assert_refused(
        &d,
        before,
        post_raw(&d, &path, good.clone(), &[]),
        401,
        "sentry_key",
    );
    assert_refused(
        &d,
        before,
        post_raw(
            &d,
            &path,
            good.clone(),
            &[("X-Sentry-Auth", &auth("0123456789abcdef0123456789abcdef"))],
        ),
        403,
        "unknown DSN key",
    );
    assert_refused(
        &d,
        before,
        post_raw(
            &d,
            &path,
            good.clone(),
            &[("X-Sentry-Auth", &auth(&api.key))],
        ),
        403,
        "belongs to project",
    );
    assert_refused(
        &d,
        before,
        post_raw(
            &d,
            "/api/web/envelope/",
            good.clone(),
            &[("X-Sentry-Auth", &auth(&web.key))],
        ),
        400,
        "invalid project id",
    );

    // Malformed envelopes and events.
    let h = auth(&web.key);
    let headers = [("X-Sentry-Auth", h.as_str())];
    for (body, text) in [
        (b"".to_vec(), "empty envelope"),
        (b"not json\n".to_vec(), "invalid envelope header"),
        (
            b"{}\n{\"length\":2}\n{}".to_vec(),
            "missing string field `type`",
        ),
        (
            b"{}\n{\"type\":\"event\",\"length\":999}\n{}".to_vec(),
            "declares 999 bytes",
        ),
        (
            b"{}\n{\"type\":\"event\"}\n[1,2]\n".to_vec(),
            "not a JSON object",
        ),
        (
            b"{}\n{\"type\":\"event\"}\n{oops\n".to_vec(),
            "invalid event JSON",
        ),
        (
            b"{}\n{\"type\":\"event\"}\n{\"event_id\":\"zz\"}\n".to_vec(),
            "invalid event_id",
        ),
    ] {
        assert_refused(&d, before, post_raw(&d, &path, body, &headers), 400, text);
    }
    assert_refused(
        &d,
        before,
        post_raw(
            &d,
            &path,
            b"garbage".to_vec(),
            &[("X-Sentry-Auth", &h), ("Content-Encoding", "gzip")],
        ),
        400,
        "invalid gzip body",
    );
    // Two events, the second malformed: the first is not stored either.
    let mut two = events::envelope(&error_event("E", "first", Some("1.0")));
    two.extend_from_slice(b"{\"type\":\"event\"}\n{\"event_id\":5}\n");
    assert_refused(
        &d,
        before,
        post_raw(&d, &path, two, &headers),
        400,
        "invalid event_id",
    );

    // An event item over 1 MiB.
    let mut big = error_event("E", "big", Some("1.0"));
    big["extra"] = json!({"blob": "x".repeat(1_100_000)});
    assert_refused(
        &d,
        before,
        post_raw(&d, &path, events::envelope(&big), &headers),
        413,
        "exceeds the 1048576-byte limit",
    );
}

#[test]
fn bodies_over_the_upload_limit_are_refused() {
    let d = Daemon::start_with(&format!(
        "{}limits:\n  max_upload_body: 4096\nartifacts:\n  max_request_size: 1024\n",
        common::DEFAULT_CONFIG
    ));
    let web = dsn(&d, "web");
    let before = snapshot(&d);
    let mut big = error_event("E", "big", Some("1.0"));
    big["extra"] = json!({"blob": "x".repeat(8000)});
    let auth = format!("Sentry sentry_key={}", web.key);
    let path = format!("/api/{}/envelope/", web.project_id);
    assert_refused(
        &d,
        before,
        post_raw(
            &d,
            &path,
            events::envelope(&big),
            &[("X-Sentry-Auth", &auth)],
        ),
        413,
        "max_upload_body",
    );
    // A small gzip body that inflates past the limit is refused as well.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&events::envelope(&big)).unwrap();
    let small = gz.finish().unwrap();
    assert!(small.len() < 4096);
    assert_refused(
        &d,
        before,
        post_raw(
            &d,
            &path,
            small,
            &[("X-Sentry-Auth", &auth), ("Content-Encoding", "gzip")],
        ),
        413,
        "max_upload_body",
    );
    // Under the limit it is fine.
    let (status, _) = send_event(&d, &web, &error_event("E", "small", Some("1.0")));
    assert_eq!(status, 200);
}

#[test]
fn resolved_in_a_release_stays_resolved_for_older_and_regresses_for_newer() {
    let d = Daemon::start();
    let web = dsn(&d, "web");
    send_and_find(
        &d,
        &web,
        &error_event("TimeoutError", "after 30s", Some("web@1.0.0")),
    );
    new_release(&d, "web@1.1.0");
    new_release(&d, "web@1.2.0");

    let (status, i) = put(
        &d,
        "WEB-1",
        json!({"status": "resolved", "statusDetails": {"inRelease": "web@1.1.0"}}),
    );
    assert_eq!(status, 200, "{i}");
    assert_eq!(i["status"], "resolved");
    assert_eq!(i["statusDetails"]["inRelease"], "web@1.1.0");
    let (_, resolved) = d.api(
        "GET",
        "organizations/acme/releases/web@1.1.0/resolved/",
        None,
    );
    assert_eq!(resolved[0]["shortId"], "WEB-1");

    // An event from the older release: still resolved.
    send_event(
        &d,
        &web,
        &error_event("TimeoutError", "after 45s", Some("web@1.0.0")),
    );
    let i = issue(&d, "WEB-1");
    assert_eq!(i["status"], "resolved", "{i}");
    assert_eq!(i["count"], "2");

    // From a newer one: regressed, with the activity saying so.
    send_event(
        &d,
        &web,
        &error_event("TimeoutError", "after 50s", Some("web@1.2.0")),
    );
    let i = issue(&d, "WEB-1");
    assert_eq!(i["status"], "unresolved", "{i}");
    assert_eq!(i["substatus"], "regressed");
    assert_eq!(i["statusDetails"], json!({}));
    let a = &i["activity"][0];
    assert_eq!(a["type"], "set_regression", "{i}");
    assert_eq!(a["data"]["version"], "web@1.2.0");
    assert_eq!(a["data"]["resolved_in_version"], "web@1.1.0");
    let (_, list) = d.api("GET", "organizations/acme/issues/?query=is:regressed", None);
    assert_eq!(list.as_array().unwrap().len(), 1);
}

#[test]
fn resolving_in_the_same_release_regresses_on_its_events() {
    let d = Daemon::start();
    let web = dsn(&d, "web");
    send_and_find(&d, &web, &error_event("E", "boom", Some("2.0")));
    let (status, _) = put(
        &d,
        "WEB-1",
        json!({"statusDetails": {"inRelease": "latest"}}),
    );
    assert_eq!(status, 200);
    assert_eq!(issue(&d, "WEB-1")["statusDetails"]["inRelease"], "2.0");
    send_event(&d, &web, &error_event("E", "boom", Some("2.0")));
    assert_eq!(issue(&d, "WEB-1")["substatus"], "regressed");
}

#[test]
fn plain_resolve_regresses_on_any_new_event_and_reopen_and_ignore_work() {
    let d = Daemon::start();
    let web = dsn(&d, "web");
    send_and_find(&d, &web, &error_event("E", "boom", None));
    let (status, i) = put(&d, "WEB-1", json!({"status": "resolved"}));
    assert_eq!(status, 200);
    assert_eq!(
        (i["status"].as_str(), &i["statusDetails"]),
        (Some("resolved"), &json!({}))
    );
    send_event(&d, &web, &error_event("E", "boom", None));
    assert_eq!(issue(&d, "WEB-1")["substatus"], "regressed");

    let (_, i) = put(&d, "WEB-1", json!({"status": "ignored"}));
    assert_eq!(i["status"], "ignored");
    send_event(&d, &web, &error_event("E", "boom", None));
    assert_eq!(issue(&d, "WEB-1")["status"], "ignored");
    let (_, i) = put(&d, "WEB-1", json!({"status": "unresolved"}));
    assert_eq!(
        (i["status"].as_str(), i["substatus"].as_str()),
        (Some("unresolved"), Some("ongoing"))
    );
}

#[test]
fn resolve_in_next_release_resolves_when_the_next_release_is_created() {
    let d = Daemon::start();
    let web = dsn(&d, "web");
    // Versions without semver: ordered by date.
    send_and_find(&d, &web, &error_event("E", "boom", Some("alpha")));
    let (status, i) = put(&d, "WEB-1", json!({"status": "resolvedInNextRelease"}));
    assert_eq!(status, 200, "{i}");
    assert_eq!(i["status"], "resolved");
    assert_eq!(i["statusDetails"]["inNextRelease"], true);
    assert_eq!(d.count("SELECT type FROM issue_resolutions"), 1);
    assert_eq!(d.count("SELECT status FROM issue_resolutions"), 0);

    // Events from the current release do not regress a pending next-release resolution.
    send_event(&d, &web, &error_event("E", "boom", Some("alpha")));
    assert_eq!(issue(&d, "WEB-1")["status"], "resolved");

    std::thread::sleep(std::time::Duration::from_millis(5));
    new_release(&d, "beta");
    let i = issue(&d, "WEB-1");
    assert_eq!(i["statusDetails"]["inRelease"], "beta", "{i}");
    let act = i["activity"].as_array().unwrap();
    let resolved = act
        .iter()
        .find(|a| a["type"] == "set_resolved_in_release")
        .unwrap();
    assert_eq!(resolved["data"]["version"], "beta");

    std::thread::sleep(std::time::Duration::from_millis(5));
    send_event(&d, &web, &error_event("E", "boom", Some("gamma")));
    assert_eq!(issue(&d, "WEB-1")["substatus"], "regressed");
}

#[test]
fn resolve_in_next_release_with_semver_resolves_at_once() {
    let d = Daemon::start();
    let web = dsn(&d, "web");
    send_and_find(&d, &web, &error_event("E", "boom", Some("web@1.0.0")));
    new_release(&d, "web@1.1.0");
    let (status, i) = put(
        &d,
        "WEB-1",
        json!({"status": "resolved", "statusDetails": {"inNextRelease": true}}),
    );
    assert_eq!(status, 200, "{i}");
    // Semver: resolved in "anything above 1.1.0", stored as in_release of the greatest.
    assert_eq!(i["statusDetails"]["inRelease"], "web@1.1.0");
    send_event(&d, &web, &error_event("E", "boom", Some("web@1.0.0")));
    send_event(&d, &web, &error_event("E", "boom", Some("web@1.1.0")));
    assert_eq!(issue(&d, "WEB-1")["status"], "resolved");
    send_event(&d, &web, &error_event("E", "boom", Some("web@1.1.1")));
    assert_eq!(issue(&d, "WEB-1")["substatus"], "regressed");
}

#[test]
fn bad_issue_api_calls_are_refused_and_change_nothing() {
    let d = Daemon::start();
    let web = dsn(&d, "web");
    send_and_find(&d, &web, &error_event("E", "boom", Some("1.0")));
    let before = snapshot(&d);
    let state = |d: &Daemon| issue(d, "WEB-1")["status"].clone();

    for (id, body, want, text) in [
        (
            "WEB-99",
            json!({"status": "resolved"}),
            404,
            "Issue 'WEB-99' not found",
        ),
        ("API-1", json!({"status": "resolved"}), 404, "not found"),
        ("12345", json!({"status": "resolved"}), 404, "not found"),
        ("nonsense", json!({"status": "resolved"}), 404, "not found"),
        (
            "WEB-1",
            json!({"status": "fixed"}),
            400,
            "\"fixed\" is not a valid choice.",
        ),
        ("WEB-1", json!({}), 400, "Nothing to update"),
        (
            "WEB-1",
            json!({"statusDetails": {"inRelease": "9.9"}}),
            400,
            "Unable to find a release with the given version.",
        ),
        (
            "WEB-1",
            json!({"status": "resolved", "statusDetails": {"inRelease": "1.0", "inNextRelease": true}}),
            400,
            "not both",
        ),
    ] {
        let (status, body) = put(&d, id, body);
        assert_eq!(status, want, "{id}: {body}");
        let detail = body["detail"].as_str().unwrap_or_default();
        assert!(detail.contains(text), "{detail:?} should mention {text:?}");
    }
    let (status, body) = d.api("GET", "organizations/acme/issues/WEB-99/", None);
    assert_eq!(status, 404, "{body}");
    let (status, body) = d.api("GET", "organizations/acme/issues/?query=is:bogus", None);
    assert_eq!(status, 400, "{body}");
    let (status, _) = d.request("GET", "organizations/acme/issues/", None, None);
    assert_eq!(status, 401);
    assert_eq!(state(&d), "unresolved");
    assert_eq!(snapshot(&d), before);

    // A project with no releases cannot be resolved "in the next release" explicitly.
    let plain = send_and_find(&d, &web, &error_event("Other", "x", None));
    let sid = plain["shortId"].as_str().unwrap().to_string();
    let api = dsn(&d, "api");
    let on_api = send_and_find(&d, &api, &error_event("E", "x", None));
    assert_eq!(on_api["shortId"], "API-1");
    let (status, body) = put(
        &d,
        "API-1",
        json!({"statusDetails": {"inNextRelease": true}}),
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("No release data present")
    );
    assert_eq!(issue(&d, &sid)["status"], "unresolved");
}

#[test]
fn a_release_that_issues_first_appeared_in_cannot_be_deleted() {
    let d = Daemon::start();
    let web = dsn(&d, "web");
    send_and_find(&d, &web, &error_event("E", "boom", Some("3.0")));
    let (status, body) = d.api("DELETE", "organizations/acme/releases/3.0/", None);
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["detail"],
        "This release is referenced by active issues and cannot be removed."
    );
    assert_eq!(d.count("SELECT count(*) FROM releases"), 1);
    new_release(&d, "3.1");
    let (status, _) = d.api("DELETE", "organizations/acme/releases/3.1/", None);
    assert_eq!(status, 204);
}

#[test]
fn issue_lists_filter_and_paginate() {
    let d = Daemon::start();
    let web = dsn(&d, "web");
    let api = dsn(&d, "api");
    for n in 0..5 {
        send_event(&d, &web, &error_event(&format!("E{n}"), "x", Some("1.0")));
    }
    send_event(&d, &api, &error_event("A", "x", Some("2.0")));
    put(&d, "WEB-2", json!({"status": "resolved"}));

    let list = |q: &str| {
        let (status, v) = d.api("GET", &format!("organizations/acme/issues/{q}"), None);
        assert_eq!(status, 200, "{v}");
        v.as_array()
            .unwrap()
            .iter()
            .map(|i| i["shortId"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(list("").len(), 5, "default is:unresolved");
    assert_eq!(list("?query=is:resolved"), ["WEB-2"]);
    assert_eq!(list("?query=").len(), 6);
    assert_eq!(list("?query=&project=api"), ["API-1"]);
    assert_eq!(list("?query=release:2.0"), ["API-1"]);
    assert_eq!(
        list("?release=1.0").len(),
        4,
        "release param with the default query"
    );
    assert_eq!(list("?query=&release=1.0").len(), 5);
    assert_eq!(list("?query=E3"), ["WEB-4"]);

    let (status, headers, page) = d.request_full(
        "GET",
        "organizations/acme/issues/?query=&per_page=4",
        None,
        Some(&d.token),
    );
    assert_eq!(status, 200);
    assert_eq!(page.as_array().unwrap().len(), 4);
    let link = headers["link"].to_str().unwrap();
    assert!(
        link.contains("rel=\"next\"; results=\"true\"; cursor=\"4:1:0\""),
        "{link}"
    );
    let second = list("?query=&per_page=4&cursor=4:1:0");
    assert_eq!(second.len(), 2);

    // Quoted terms keep their spaces (versions may contain them).
    send_event(&d, &web, &error_event("Spaced", "x", Some("big release")));
    assert_eq!(list("?query=release:%22big%20release%22"), ["WEB-6"]);
    assert_eq!(list("?query=release:nope").len(), 0);
}

#[test]
fn the_cli_lists_shows_resolves_and_reopens() {
    let d = Daemon::start();
    let web = dsn(&d, "web");
    send_and_find(&d, &web, &error_event("KeyError", "missing", Some("1.0")));
    new_release(&d, "1.1");

    let out = d.shiplog(&["issues", "list"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("WEB-1") && text.contains("KeyError: missing"),
        "{text}"
    );

    let out = d.shiplog(&["issues", "resolve", "WEB-1", "--in-release", "1.1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "WEB-1 is resolved in 1.1");

    let out = d.shiplog(&["issues", "show", "web-1"]);
    let text = stdout(&out);
    assert!(
        text.contains("resolved in 1.1") && text.contains("First release  1.0"),
        "{text}"
    );
    assert!(text.contains("resolved in release 1.1"), "{text}");

    let out = d.shiplog(&["releases", "info", "1.1"]);
    let text = stdout(&out);
    assert!(
        text.contains("Fixed issues") && text.contains("WEB-1  KeyError: missing"),
        "{text}"
    );

    let out = d.shiplog(&["issues", "reopen", "WEB-1"]);
    assert_eq!(stdout(&out).trim(), "WEB-1 is unresolved");
    // The issue was last seen in 1.0 and 1.1 came after it: "next release" is 1.1 already
    // (Sentry's date-ordered rule).
    let out = d.shiplog(&["issues", "resolve", "WEB-1", "--in-next-release"]);
    assert_eq!(stdout(&out).trim(), "WEB-1 is resolved in 1.1");

    let out = d.shiplog(&["issues", "show", "WEB-9"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("Issue 'WEB-9' not found"),
        "{}",
        stderr(&out)
    );
    let out = d.shiplog(&["projects", "dsn", "nope"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no project \"nope\""),
        "{}",
        stderr(&out)
    );
    let out = d.shiplog(&["issues", "list", "--status", "weird"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--status weird"), "{}", stderr(&out));
}

#[test]
fn dsn_keys_exist_for_every_project_and_survive_restarts() {
    let mut d = Daemon::start();
    let before = dsn(&d, "web");
    let out = d.shiplog(&["projects", "add", "mobile"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mobile: Dsn = dsn(&d, "mobile");
    assert_ne!(mobile.key, before.key);
    d.restart();
    assert_eq!(dsn(&d, "web").key, before.key);
    let (status, _) = send_event(&d, &mobile, &error_event("E", "m", None));
    assert_eq!(status, 200);
    assert_eq!(issue(&d, "MOBILE-1")["project"]["slug"], "mobile");
}

fn config_for(repo: &GitRepo) -> String {
    format!(
        "organization: acme
projects:
  - slug: web
    name: Web
  - slug: api
repositories:
  - name: acme/web
    path: {}
    projects: [web]
    releases:
      - on: none
        initial_depth: 5
",
        repo.path_str()
    )
}

fn set_refs(d: &Daemon, version: &str, commit: &str) {
    let (status, body) = d.api(
        "PUT",
        &format!("organizations/acme/releases/{version}/"),
        Some(json!({"refs": [{"repository": "acme/web", "commit": commit}]})),
    );
    assert_eq!(status, 200, "{body}\n{}", d.log());
}

/// The whole loop: an error shows up as WEB-1, a developer commits "Fixes WEB-1", the release
/// that ships the commit resolves it, an event from an older release leaves it resolved, an
/// event from a newer release reopens it as a regression.
#[test]
fn a_fixes_commit_resolves_the_issue_in_the_release_that_ships_it() {
    let mut repo = GitRepo::new();
    repo.write("app/billing/charge.py", "def charge(): pass\n");
    repo.commit("Initial import");
    repo.commits(2, "work");
    let d = Daemon::start_with(&config_for(&repo));
    let web = dsn(&d, "web");

    // 1. The error shows up from release 1.0, which the event creates.
    let first = send_and_find(
        &d,
        &web,
        &error_event("TimeoutError", "charge took 31s", Some("1.0")),
    );
    assert_eq!(first["shortId"], "WEB-1");
    set_refs(&d, "1.0", &repo.head());

    // 2. The fix is committed. On its own (a feature branch, not released) it resolves
    //    nothing; WEB-7 does not exist yet, which does not stop the link from being kept.
    repo.write("app/billing/charge.py", "def charge(): retry()\n");
    let fix = repo.commit("fix(billing): retry charges that time out\n\nFixes WEB-1, WEB-7");
    repo.commit("docs: explain retries");
    assert_eq!(issue(&d, "WEB-1")["status"], "unresolved");

    // 3. Release 1.1 gets the commits since 1.0: WEB-1 is resolved in 1.1.
    new_release(&d, "1.1");
    set_refs(&d, "1.1", &repo.head());
    let i = issue(&d, "WEB-1");
    assert_eq!(i["status"], "resolved", "{i}");
    assert_eq!(i["statusDetails"]["inRelease"], "1.1");
    assert_eq!(i["statusDetails"]["actor"]["email"], "dev@acme.test");
    let kinds: Vec<&str> = i["activity"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "set_resolved_in_release",
            "referenced_in_commit",
            "first_seen"
        ],
        "{i}"
    );
    assert_eq!(i["activity"][1]["data"]["sha"], fix);
    let (_, resolved) = d.api("GET", "organizations/acme/releases/1.1/resolved/", None);
    let ids: Vec<&str> = resolved
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["shortId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["WEB-1"]);
    assert_eq!(
        d.count("SELECT count(*) FROM issue_commit_links WHERE short_id = 'WEB-7'"),
        1
    );

    // The CLI shows it, and the release notes list the fix with its title and the unknown id.
    let out = d.shiplog(&["releases", "info", "1.1"]);
    assert!(
        stdout(&out).contains("WEB-1  TimeoutError: charge took 31s"),
        "{}",
        stdout(&out)
    );
    let out = d.shiplog(&["releases", "notes", "1.1"]);
    let md = stdout(&out);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(md.starts_with("# 1.1\n"), "{md}");
    assert!(
        md.contains("## Bug fixes\n\n- **billing:** retry charges that time out `"),
        "{md}"
    );
    assert!(md.contains("## Documentation\n\n- explain retries"), "{md}");
    assert!(
        md.contains("## Fixed issues\n\n- WEB-1: TimeoutError: charge took 31s\n- WEB-7\n"),
        "{md}"
    );
    assert!(md.contains("## Authors\n\n- Dev One (2 commits)"), "{md}");
    let out = d.shiplog(&["releases", "notes", "1.1", "--format", "json"]);
    let notes: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(notes["sections"][0]["type"], "fix");
    assert_eq!(
        notes["fixedIssues"][1],
        json!({"shortId": "WEB-7", "title": null, "known": false, "status": null})
    );

    // 4. An event from the older release: still resolved.
    send_event(
        &d,
        &web,
        &error_event("TimeoutError", "charge took 45s", Some("1.0")),
    );
    let i = issue(&d, "WEB-1");
    assert_eq!(
        (i["status"].as_str(), i["count"].as_str()),
        (Some("resolved"), Some("2"))
    );

    // Setting 1.1's commits again (as reconcile may) changes nothing.
    set_refs(&d, "1.1", &repo.head());
    assert_eq!(
        d.count("SELECT count(*) FROM activities WHERE type = 13"),
        1
    );

    // 5. An event from a newer release: regressed.
    send_event(
        &d,
        &web,
        &error_event("TimeoutError", "charge took 60s", Some("1.2")),
    );
    let i = issue(&d, "WEB-1");
    assert_eq!(i["status"], "unresolved");
    assert_eq!(i["substatus"], "regressed");
    assert_eq!(i["activity"][0]["type"], "set_regression");
    assert_eq!(i["activity"][0]["data"]["version"], "1.2");
    // Re-setting 1.1's commits does not undo the regression.
    set_refs(&d, "1.1", &repo.head());
    assert_eq!(issue(&d, "WEB-1")["substatus"], "regressed");

    // The same commit in a later release (a hotfix built from it) resolves it again there.
    new_release(&d, "1.2.1");
    let (status, body) = d.api(
        "PUT",
        "organizations/acme/releases/1.2.1/",
        Some(json!({"refs": [{"repository": "acme/web", "commit": repo.head(), "previousCommit": format!("{fix}~1")}]})),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(issue(&d, "WEB-1")["statusDetails"]["inRelease"], "1.2.1");
}

#[test]
fn an_edited_message_drops_its_stale_links() {
    let mut repo = GitRepo::new();
    repo.commit("Initial import");
    let d = Daemon::start_with(&config_for(&repo));
    let web = dsn(&d, "web");
    send_and_find(&d, &web, &error_event("E", "x", Some("1.0")));
    send_and_find(&d, &web, &error_event("F", "y", Some("1.0")));
    new_release(&d, "2.0");
    let commit = |message: &str| {
        json!({"id": "a".repeat(40), "repository": "acme/web", "message": message,
               "author_name": "Dev", "author_email": "dev@acme.test",
               "timestamp": "2024-01-01T00:00:00Z"})
    };
    let put_commits = |c: Value| {
        let (status, body) = d.api(
            "PUT",
            "organizations/acme/releases/2.0/",
            Some(json!({"commits": [c]})),
        );
        assert_eq!(status, 200, "{body}");
    };
    put_commits(commit("Fixes WEB-1"));
    assert_eq!(issue(&d, "WEB-1")["status"], "resolved");
    put_commits(commit("Fixes WEB-2 (the other one)"));
    assert_eq!(issue(&d, "WEB-2")["status"], "resolved");
    let links: Vec<String> = {
        let db = d.db();
        let mut stmt = db
            .prepare("SELECT short_id FROM issue_commit_links ORDER BY id")
            .unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    assert_eq!(links, ["WEB-2"]);
}

#[test]
fn a_commit_that_fixes_an_issue_by_its_url_resolves_it() {
    let mut repo = GitRepo::new();
    repo.commit("Initial import");
    let d = Daemon::start_with(&config_for(&repo));
    let web = dsn(&d, "web");
    let found = send_and_find(&d, &web, &error_event("E", "x", Some("1.0")));
    let permalink = found["permalink"].as_str().unwrap().to_string();
    assert!(permalink.starts_with(&d.url), "{permalink}");
    new_release(&d, "2.0");
    let commit = |sha: char, message: String| {
        json!({"id": sha.to_string().repeat(40), "repository": "acme/web", "message": message,
               "author_name": "Dev", "author_email": "dev@acme.test",
               "timestamp": "2024-01-01T00:00:00Z"})
    };
    // Another server's issue URL with the same id is not this issue.
    let foreign = permalink.replace(&d.url, "https://sentry.example.com");
    let (status, body) = d.api(
        "PUT",
        "organizations/acme/releases/2.0/",
        Some(json!({"commits": [commit('b', format!("Fixes {foreign}"))]})),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(issue(&d, "WEB-1")["status"], "unresolved");
    // This server's permalink, as Sentry's newest grammar allows.
    let (status, body) = d.api(
        "PUT",
        "organizations/acme/releases/2.0/",
        Some(json!({"commits": [commit('c', format!("fix: retry\n\nFixes {permalink}"))]})),
    );
    assert_eq!(status, 200, "{body}");
    let i = issue(&d, "WEB-1");
    assert_eq!(i["status"], "resolved", "{i}");
    assert_eq!(i["statusDetails"]["inRelease"], "2.0", "{i}");
}

#[test]
fn resolving_in_a_commit_resolves_in_the_release_that_has_it() {
    let mut repo = GitRepo::new();
    repo.commit("Initial import");
    let d = Daemon::start_with(&config_for(&repo));
    let web = dsn(&d, "web");
    send_and_find(&d, &web, &error_event("E", "x", Some("1.0")));
    new_release(&d, "2.0");
    new_release(&d, "3.0");
    let sha = "d".repeat(40);
    let set_commits = || {
        let c = json!({"id": sha, "repository": "acme/web", "message": "refactor the cart",
                       "author_name": "Dev", "author_email": "dev@acme.test",
                       "timestamp": "2024-01-01T00:00:00Z"});
        let (status, body) = d.api(
            "PUT",
            "organizations/acme/releases/2.0/",
            Some(json!({"commits": [c]})),
        );
        assert_eq!(status, 200, "{body}");
    };
    set_commits();

    // Sentry's errors, and nothing changes.
    for (details, error) in [
        (
            json!({"inCommit": {"commit": sha, "repository": "acme/nope"}}),
            "Unable to find the given repository.",
        ),
        (
            json!({"inCommit": {"commit": "f".repeat(40), "repository": "acme/web"}}),
            "Unable to find the given commit.",
        ),
    ] {
        let (status, body) = put(&d, "WEB-1", json!({"statusDetails": details}));
        assert_eq!(status, 400, "{body}");
        assert!(body["detail"].as_str().unwrap().contains(error), "{body}");
    }
    assert_eq!(issue(&d, "WEB-1")["status"], "unresolved");

    // The commit is in 2.0: resolved in 2.0, with Sentry's activity.
    let out = d.shiplog(&[
        "issues",
        "resolve",
        "WEB-1",
        "--in-commit",
        &sha,
        "--repo",
        "acme/web",
    ]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert!(
        common::stdout(&out).contains("WEB-1 is resolved"),
        "{}",
        common::stdout(&out)
    );
    let i = issue(&d, "WEB-1");
    assert_eq!(i["status"], "resolved");
    assert_eq!(i["statusDetails"]["inRelease"], "2.0", "{i}");
    assert_eq!(i["activity"][0]["type"], "set_resolved_in_commit", "{i}");
    // Re-reading the commit's message (which names no issue) keeps the link made by hand.
    set_commits();
    assert_eq!(
        d.count("SELECT count(*) FROM issue_commit_links WHERE manual = 1"),
        1
    );
    // Older release: still resolved; newer: regressed.
    send_event(&d, &web, &error_event("E", "x", Some("1.0")));
    let i = issue(&d, "WEB-1");
    assert_eq!(
        (&i["status"], &i["count"]),
        (&json!("resolved"), &json!("2"))
    );
    send_event(&d, &web, &error_event("E", "x", Some("3.0")));
    assert_eq!(issue(&d, "WEB-1")["substatus"], "regressed");
}

#[test]
fn suspect_commits_are_the_recent_commits_that_touched_the_stack_frames() {
    let mut repo = GitRepo::new();
    repo.write("README.md", "web\n");
    repo.commit("Initial import");
    repo.write("app/main.py", "main\n");
    repo.commit_as("Dev One", "one@acme.test", "feat: main entry point");
    repo.write("app/billing/charge.py", "charge\n");
    repo.commit_as("Dev Two", "two@acme.test", "feat(billing): charge cards");
    repo.write("lib/charge.py", "other\n");
    repo.commit_as(
        "Dev Three",
        "three@acme.test",
        "chore: vendored charge helper",
    );
    let d = Daemon::start_with(&config_for(&repo));
    let web = dsn(&d, "web");

    // No release yet: nothing to suspect.
    let plain = error_event("E", "no release", None);
    send_event(&d, &web, &plain);
    let path = |id: &Value| {
        format!(
            "projects/acme/web/events/{}/committers/",
            id.as_str().unwrap()
        )
    };
    let (status, body) = d.api("GET", &path(&plain["event_id"]), None);
    assert_eq!(
        (status, body["detail"].as_str()),
        (404, Some("Release not found"))
    );

    let event = error_event("KeyError", "card", Some("1.0"));
    send_event(&d, &web, &event);
    let (status, body) = d.api("GET", &path(&event["event_id"]), None);
    assert_eq!(
        (status, body["detail"].as_str()),
        (404, Some("No Commits found for Release"))
    );

    set_refs(&d, "1.0", &repo.head());
    let (status, body) = d.api("GET", &path(&event["event_id"]), None);
    assert_eq!(status, 200, "{body}");
    let authors: Vec<&str> = body["committers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["author"]["email"].as_str().unwrap())
        .collect();
    // main.py is the outer frame (5 points), charge.py the inner one (4); Sentry sorts
    // ascending. lib/charge.py shares only the file name with a frame and is no match.
    assert_eq!(authors, ["two@acme.test", "one@acme.test"]);
    assert_eq!(body["committers"][0]["commits"][0]["score"], 3);
    assert_eq!(body["committers"][1]["commits"][0]["score"], 2);

    let out = d.shiplog(&["issues", "show", "WEB-2"]);
    let text = stdout(&out);
    assert!(text.contains("Suspect commits:"), "{text}");
    let one = text
        .find("feat: main entry point  (Dev One)")
        .expect("Dev One listed");
    let two = text
        .find("feat(billing): charge cards  (Dev Two)")
        .expect("Dev Two listed");
    assert!(one < two, "strongest suspect first:\n{text}");

    let (status, body) = d.api(
        "GET",
        "projects/acme/web/events/0123456789abcdef0123456789abcdef/committers/",
        None,
    );
    assert_eq!(
        (status, body["detail"].as_str()),
        (404, Some("Event not found"))
    );
}

/// The loop through git itself: the post-commit hook records a "Fixes WEB-1" commit (a link,
/// no resolution), and the tag that makes the next release resolves WEB-1 in it.
#[test]
fn a_tag_ships_a_fix_that_the_post_commit_hook_recorded() {
    use common::hook_repo::{GitRepo as HookRepo, wait_for, yaml_path};
    let wait = std::time::Duration::from_secs(30);
    let tmp = tempfile::tempdir().unwrap();
    let repo = HookRepo::init(&tmp.path().join("web"));
    repo.commits(3, "app.py");
    let d = Daemon::start_with(&format!(
        "organization: acme
projects:
  - slug: web
repositories:
  - name: acme/web
    path: {}
    projects: [web]
    releases:
      - tag_pattern: '^v(?P<version>.+)$'
        version: 'web@{{version}}'
schedules: []
",
        yaml_path(&repo.path)
    ));
    let out = d.shiplog(&["hooks", "install", "acme/web"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let web = dsn(&d, "web");
    let release_commits = |version: &str| {
        d.count(&format!(
            "SELECT count(*) FROM release_commits rc JOIN releases r ON r.id = rc.release_id
             WHERE r.version = '{version}'"
        ))
    };

    repo.tag("v1.0.0");
    wait_for("release web@1.0.0", wait, || {
        (release_commits("web@1.0.0") > 0).then_some(())
    });
    send_and_find(
        &d,
        &web,
        &error_event("KeyError", "cart", Some("web@1.0.0")),
    );

    let fix = repo.commit(
        "fix(cart): tolerate missing items\n\nFixes WEB-1",
        &[("app.py", "fixed\n")],
        ("Carol", "carol@example.com"),
    );
    wait_for("the hook's commit to be linked", wait, || {
        (d.count("SELECT count(*) FROM issue_commit_links WHERE short_id = 'WEB-1'") == 1)
            .then_some(())
    });
    let i = issue(&d, "WEB-1");
    assert_eq!(
        i["status"], "unresolved",
        "a commit alone resolves nothing: {i}"
    );
    assert_eq!(i["activity"][0]["type"], "referenced_in_commit");
    assert_eq!(i["activity"][0]["data"]["sha"], fix);

    repo.tag("v1.1.0");
    let i = wait_for("WEB-1 resolved by the tag's release", wait, || {
        let i = issue(&d, "WEB-1");
        (i["status"] == "resolved").then_some(i)
    });
    assert_eq!(i["statusDetails"]["inRelease"], "web@1.1.0");
    assert_eq!(i["statusDetails"]["actor"]["email"], "carol@example.com");

    send_event(
        &d,
        &web,
        &error_event("KeyError", "cart", Some("web@1.0.0")),
    );
    assert_eq!(issue(&d, "WEB-1")["status"], "resolved");
    send_event(
        &d,
        &web,
        &error_event("KeyError", "cart", Some("web@1.2.0")),
    );
    assert_eq!(issue(&d, "WEB-1")["substatus"], "regressed");
}
