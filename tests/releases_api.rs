//! The releases and deploys API, driven over HTTP against a real daemon.

mod common;

use common::Daemon;
use serde_json::{Value, json};

fn create(d: &Daemon, version: &str, projects: Value) -> (u16, Value) {
    d.api(
        "POST",
        "organizations/acme/releases/",
        Some(json!({"version": version, "projects": projects})),
    )
}

fn versions(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|r| r["version"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn create_is_idempotent_with_201_then_208() {
    let d = Daemon::start();
    let (status, r) = create(&d, "1.0.0", json!(["web"]));
    assert_eq!(status, 201, "{r}");
    assert_eq!(r["version"], "1.0.0");
    assert_eq!(r["shortVersion"], "1.0.0");
    assert_eq!(r["status"], "open");
    assert_eq!(r["newGroups"], 0);
    assert_eq!(r["commitCount"], 0);
    assert_eq!(r["dateReleased"], Value::Null);
    assert!(r["dateCreated"].as_str().unwrap().ends_with('Z'));
    assert_eq!(r["projects"][0]["slug"], "web");
    assert_eq!(r["projects"][0]["name"], "Web");

    let (status, again) = create(&d, "1.0.0", json!(["web"]));
    assert_eq!(status, 208);
    assert_eq!(again["id"], r["id"]);
    assert_eq!(again["dateCreated"], r["dateCreated"]);

    // A new project on an existing release is news again.
    let (status, both) = create(&d, "1.0.0", json!(["api", "web"]));
    assert_eq!(status, 201);
    let slugs: Vec<&str> = both["projects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["slug"].as_str().unwrap())
        .collect();
    assert_eq!(slugs, ["api", "web"]);
    assert_eq!(d.count("SELECT count(*) FROM releases"), 1);
}

#[test]
fn existing_release_keeps_url_ref_and_date_on_post() {
    let d = Daemon::start();
    let (_, first) = d.api(
        "POST",
        "organizations/acme/releases/",
        Some(json!({"version": "2.0", "projects": ["web"], "url": "https://a.test", "ref": "abc"})),
    );
    let (status, second) = d.api(
        "POST",
        "organizations/acme/releases/",
        Some(
            json!({"version": "2.0", "projects": ["web"], "url": "https://b.test",
                    "dateReleased": "2024-01-01T00:00:00Z"}),
        ),
    );
    assert_eq!(status, 208);
    assert_eq!(second["url"], first["url"]);
    assert_eq!(second["ref"], "abc");
    assert_eq!(second["dateReleased"], Value::Null);
}

#[test]
fn numeric_project_ids_are_accepted() {
    let d = Daemon::start();
    let (_, projects) = d.api("GET", "organizations/acme/projects/", None);
    let web_id: i64 = projects
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["slug"] == "web")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let (status, r) = create(&d, "3.0", json!([web_id]));
    assert_eq!(status, 201, "{r}");
    assert_eq!(r["projects"][0]["slug"], "web");
}

#[test]
fn archive_and_restore_through_the_collection() {
    let d = Daemon::start();
    create(&d, "1.0", json!(["web"]));
    create(&d, "1.1", json!(["web"]));
    let (status, r) = d.api(
        "POST",
        "organizations/acme/releases/",
        Some(json!({"version": "1.0", "projects": [], "status": "archived"})),
    );
    assert_eq!(status, 208);
    assert_eq!(r["status"], "archived");
    let (_, open) = d.api("GET", "organizations/acme/releases/", None);
    assert_eq!(versions(&open), ["1.1"]);
    let (_, archived) = d.api("GET", "organizations/acme/releases/?status=archived", None);
    assert_eq!(versions(&archived), ["1.0"]);
    let (_, r) = d.api(
        "POST",
        "organizations/acme/releases/",
        Some(json!({"version": "1.0", "projects": [], "status": "open"})),
    );
    assert_eq!(r["status"], "open");
    let (status, bad) = d.api(
        "POST",
        "organizations/acme/releases/",
        Some(json!({"version": "1.0", "projects": [], "status": "gone"})),
    );
    assert_eq!(status, 400);
    assert!(bad["detail"].as_str().unwrap().contains("status"));
}

#[test]
fn bad_versions_are_refused_and_nothing_is_stored() {
    let d = Daemon::start();
    create(&d, "keep", json!(["web"]));
    for bad in [
        "", " ", ".", "..", "latest", "LATEST", " latest ", "a/b", "a\\b", "a\nb", "a\tb",
    ] {
        let (status, body) = create(&d, bad, json!(["web"]));
        assert_eq!(status, 400, "{bad:?} -> {body}");
        assert!(body["detail"].as_str().unwrap().len() > 10, "{body}");
        assert!(body["version"].is_array(), "{body}");
    }
    let long = "x".repeat(201);
    assert_eq!(create(&d, &long, json!(["web"])).0, 400);
    assert_eq!(create(&d, &"x".repeat(200), json!(["web"])).0, 201);
    assert_eq!(d.count("SELECT count(*) FROM releases"), 2);
}

#[test]
fn missing_fields_and_bad_json_are_400_with_detail() {
    let d = Daemon::start();
    let (status, body) = d.api(
        "POST",
        "organizations/acme/releases/",
        Some(json!({"projects": ["web"]})),
    );
    assert_eq!(status, 400);
    assert_eq!(body["detail"], "version: This field is required.");
    let (status, body) = d.api(
        "POST",
        "organizations/acme/releases/",
        Some(json!({"version": "1"})),
    );
    assert_eq!(status, 400);
    assert_eq!(body["detail"], "projects: This field is required.");

    let client = reqwest::blocking::Client::new();
    let resp = client
        .post(format!("{}/api/0/organizations/acme/releases/", d.url))
        .bearer_auth(&d.token)
        .body("{not json")
        .send()
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let body: Value = resp.json().unwrap();
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .starts_with("Invalid JSON body")
    );
    assert_eq!(d.count("SELECT count(*) FROM releases"), 0);
}

#[test]
fn unknown_project_is_400_naming_it() {
    let d = Daemon::start();
    let (status, body) = create(&d, "1.0", json!(["web", "nope"]));
    assert_eq!(status, 400);
    assert!(body["detail"].as_str().unwrap().contains("nope"), "{body}");
    assert_eq!(body["projects"][0], body["detail"]);
    assert_eq!(d.count("SELECT count(*) FROM releases"), 0);
}

#[test]
fn tokens_are_required_and_checked() {
    let d = Daemon::start();
    let (status, body) = d.request("GET", "organizations/acme/releases/", None, None);
    assert_eq!(status, 401);
    assert!(body["detail"].as_str().unwrap().contains("credentials"));
    let (status, body) = d.request(
        "GET",
        "organizations/acme/releases/",
        None,
        Some("sntrys_test"),
    );
    assert_eq!(status, 401);
    assert_eq!(body["detail"], "Invalid token");
    let (status, _) = d.request(
        "POST",
        "organizations/acme/releases/",
        Some(json!({"version": "x", "projects": []})),
        Some("nope"),
    );
    assert_eq!(status, 401);
    assert_eq!(d.count("SELECT count(*) FROM releases"), 0);

    // The token check sentry-cli's `info` makes.
    let (status, body) = d.api("GET", "", None);
    assert_eq!(status, 200);
    assert!(
        body["auth"]["scopes"]
            .as_array()
            .unwrap()
            .contains(&json!("project:releases"))
    );
    assert_eq!(body["user"], Value::Null);
    let (status, body) = d.request("GET", "", None, None);
    assert_eq!(status, 200);
    assert_eq!(body["auth"], Value::Null);
    assert_eq!(d.request("GET", "", None, Some("bad")).0, 401);

    // Revoked tokens stop working at once.
    let out = d.shiplog(&["token", "list"]);
    assert!(common::stdout(&out).contains("test"));
    let out = d.shiplog(&["token", "revoke", "1"]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert_eq!(d.api("GET", "organizations/acme/releases/", None).0, 401);
}

#[test]
fn only_a_hash_of_the_token_is_stored() {
    let d = Daemon::start();
    let stored: String = d
        .db()
        .query_row("SELECT token_hash FROM api_tokens", [], |r| r.get(0))
        .unwrap();
    assert_eq!(stored.len(), 64);
    let dump = std::fs::read(d.data_dir().join("shiplog.sqlite3")).unwrap();
    let secret = d.token.rsplit('_').next().unwrap();
    assert!(!String::from_utf8_lossy(&dump).contains(secret));
}

#[test]
fn unknown_org_and_release_are_404() {
    let d = Daemon::start();
    let (status, body) = d.api("GET", "organizations/nope/releases/", None);
    assert_eq!(status, 404);
    assert!(body["detail"].as_str().unwrap().contains("nope"));
    let (status, body) = d.api("GET", "organizations/acme/releases/9.9.9/", None);
    assert_eq!(status, 404);
    assert!(body["detail"].as_str().unwrap().contains("9.9.9"));
    assert_eq!(
        d.api(
            "PUT",
            "organizations/acme/releases/9.9.9/",
            Some(json!({"dateReleased": "2024-01-01T00:00:00Z"}))
        )
        .0,
        404
    );
    assert_eq!(
        d.api("DELETE", "organizations/acme/releases/9.9.9/", None)
            .0,
        404
    );
    assert_eq!(
        d.api(
            "POST",
            "organizations/acme/releases/9.9.9/deploys/",
            Some(json!({"environment": "prod"}))
        )
        .0,
        404
    );
    assert_eq!(
        d.api("GET", "organizations/acme/releases/9.9.9/deploys/", None)
            .0,
        404
    );
    let (status, body) = d.api("GET", "no/such/endpoint/", None);
    assert_eq!(status, 404);
    assert!(body["detail"].is_string());
    let (status, body) = d.api("PATCH", "organizations/acme/releases/", None);
    assert_eq!(status, 405);
    assert!(body["detail"].as_str().unwrap().contains("PATCH"));
}

#[test]
fn percent_encoded_versions_round_trip() {
    let d = Daemon::start();
    let (status, _) = create(&d, "web@2.0.0+build.5", json!(["web"]));
    assert_eq!(status, 201);
    let (status, r) = d.api(
        "GET",
        "organizations/acme/releases/web@2.0.0%2Bbuild.5/",
        None,
    );
    assert_eq!(status, 200);
    assert_eq!(r["version"], "web@2.0.0+build.5");
    assert_eq!(r["versionInfo"]["package"], "web");
    assert_eq!(r["versionInfo"]["version"]["major"], 2);
    assert_eq!(r["versionInfo"]["version"]["buildCode"], "build.5");
    assert_eq!(r["versionInfo"]["description"], "2.0.0 (build.5)");
    let odd = "a#b?c%d{e}`f\"g<h>i+j@k:l;m=n&o,p";
    assert_eq!(create(&d, odd, json!(["web"])).0, 201);
    let (status, r) = d.api(
        "GET",
        "organizations/acme/releases/a%23b%3Fc%25d%7Be%7D%60f%22g%3Ch%3Ei%2Bj@k:l;m=n&o,p/",
        None,
    );
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["version"], odd);
}

#[test]
fn finalize_and_update_fields() {
    let d = Daemon::start();
    create(&d, "1.0", json!(["web", "api"]));
    let (status, r) = d.api(
        "PUT",
        "organizations/acme/releases/1.0/",
        Some(json!({"projects": ["web"], "dateReleased": "2023-11-14T22:13:20Z", "url": "https://x.test", "ref": "main"})),
    );
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["dateReleased"], "2023-11-14T22:13:20.000000Z");
    assert_eq!(r["url"], "https://x.test");
    assert_eq!(r["ref"], "main");
    // Empty values leave fields alone, as in Sentry.
    let (_, r) = d.api(
        "PUT",
        "organizations/acme/releases/1.0/",
        Some(json!({"url": "", "ref": null})),
    );
    assert_eq!(r["url"], "https://x.test");
    assert_eq!(r["ref"], "main");
    // Finalizing logs one RELEASE activity per project.
    assert_eq!(
        d.count("SELECT count(*) FROM activities WHERE type = 10"),
        2
    );
    let (status, body) = d.api(
        "PUT",
        "organizations/acme/releases/1.0/",
        Some(json!({"dateReleased": "yesterday"})),
    );
    assert_eq!(status, 400);
    assert!(body["detail"].as_str().unwrap().contains("RFC 3339"));
    // Nothing changed by the refused request.
    let (_, r) = d.api("GET", "organizations/acme/releases/1.0/", None);
    assert_eq!(r["dateReleased"], "2023-11-14T22:13:20.000000Z");
    // status through PUT
    let (_, r) = d.api(
        "PUT",
        "organizations/acme/releases/1.0/",
        Some(json!({"status": "archived"})),
    );
    assert_eq!(r["status"], "archived");
}

#[test]
fn delete_removes_release_and_deploys() {
    let d = Daemon::start();
    create(&d, "1.0", json!(["web"]));
    d.api(
        "POST",
        "organizations/acme/releases/1.0/deploys/",
        Some(json!({"environment": "production"})),
    );
    let (status, body) = d.api("DELETE", "organizations/acme/releases/1.0/", None);
    assert_eq!(status, 204, "{body}");
    assert_eq!(
        d.api("GET", "organizations/acme/releases/1.0/", None).0,
        404
    );
    assert_eq!(d.count("SELECT count(*) FROM deploys"), 0);
    assert_eq!(d.count("SELECT count(*) FROM release_projects"), 0);
}

#[test]
fn list_orders_filters_and_paginates() {
    let d = Daemon::start();
    for v in [
        "web@1.9.0",
        "web@1.10.0",
        "web@1.10.0-rc1",
        "api@0.1.0",
        "nightly-7",
    ] {
        let project = if v.starts_with("api") { "api" } else { "web" };
        assert_eq!(create(&d, v, json!([project])).0, 201);
    }
    let (_, all) = d.api("GET", "organizations/acme/releases/", None);
    assert_eq!(
        versions(&all),
        [
            "nightly-7",
            "api@0.1.0",
            "web@1.10.0-rc1",
            "web@1.10.0",
            "web@1.9.0"
        ]
    );
    let (_, semver) = d.api("GET", "organizations/acme/releases/?sort=semver", None);
    assert_eq!(
        versions(&semver)[..4],
        ["web@1.10.0", "web@1.10.0-rc1", "web@1.9.0", "api@0.1.0"]
    );
    assert_eq!(versions(&semver)[4], "nightly-7");
    let (_, found) = d.api("GET", "organizations/acme/releases/?query=1.10", None);
    assert_eq!(versions(&found), ["web@1.10.0-rc1", "web@1.10.0"]);
    let (_, found) = d.api(
        "GET",
        "organizations/acme/releases/?query=release:web@1.1*",
        None,
    );
    assert_eq!(versions(&found), ["web@1.10.0-rc1", "web@1.10.0"]);
    let (_, found) = d.api(
        "GET",
        "organizations/acme/releases/?query=release.version:%3E%3D1.10.0",
        None,
    );
    assert_eq!(versions(&found), ["web@1.10.0"]);
    let (_, found) = d.api(
        "GET",
        "organizations/acme/releases/?query=release.package:api",
        None,
    );
    assert_eq!(versions(&found), ["api@0.1.0"]);
    let (_, project) = d.api("GET", "projects/acme/api/releases/", None);
    assert_eq!(versions(&project), ["api@0.1.0"]);
    assert_eq!(d.api("GET", "projects/acme/nope/releases/", None).0, 404);

    // Pagination with Sentry's cursor and Link header.
    let (status, headers, page1) = d.request_full(
        "GET",
        "organizations/acme/releases/?per_page=2",
        None,
        Some(&d.token),
    );
    assert_eq!(status, 200);
    assert_eq!(versions(&page1), ["nightly-7", "api@0.1.0"]);
    let link = headers["link"].to_str().unwrap().to_string();
    assert!(
        link.contains(r#"rel="previous"; results="false""#),
        "{link}"
    );
    assert!(
        link.contains(r#"rel="next"; results="true"; cursor="2:1:0""#),
        "{link}"
    );
    let (_, headers, page3) = d.request_full(
        "GET",
        "organizations/acme/releases/?per_page=2&cursor=2:2:0",
        None,
        Some(&d.token),
    );
    assert_eq!(versions(&page3), ["web@1.9.0"]);
    assert!(
        headers["link"]
            .to_str()
            .unwrap()
            .contains(r#"rel="next"; results="false""#)
    );

    for (bad, what) in [
        ("cursor=abc", "Invalid cursor parameter."),
        ("cursor=1:2", "Invalid cursor parameter."),
        ("cursor=2:-1:1", "Pagination offset cannot be negative"),
        ("sort=size", "invalid sort"),
        (
            "per_page=0",
            "Invalid per_page value. Must be between 1 and 100.",
        ),
        (
            "per_page=500",
            "Invalid per_page value. Must be between 1 and 100.",
        ),
        ("status=weird", "invalid value for status"),
        ("query=finalized:maybe", "Invalid value for finalized"),
    ] {
        let (status, body) = d.api("GET", &format!("organizations/acme/releases/?{bad}"), None);
        assert_eq!(status, 400, "{bad}");
        assert!(
            body["detail"].as_str().unwrap().starts_with(what),
            "{bad}: {body}"
        );
    }
}

#[test]
fn deploys_record_and_list() {
    let d = Daemon::start();
    create(&d, "1.0", json!(["web", "api"]));
    let (status, dep) = d.api(
        "POST",
        "organizations/acme/releases/1.0/deploys/",
        Some(
            json!({"environment": "staging", "name": "first", "url": "https://ci.test/1",
                    "dateStarted": "2024-01-01T00:00:00Z", "dateFinished": "2024-01-01T00:05:00Z"}),
        ),
    );
    assert_eq!(status, 201, "{dep}");
    assert_eq!(dep["environment"], "staging");
    assert_eq!(dep["name"], "first");
    assert!(dep["id"].is_string());
    assert_eq!(dep["dateFinished"], "2024-01-01T00:05:00.000000Z");
    let (status, dep2) = d.api(
        "POST",
        "organizations/acme/releases/1.0/deploys/",
        Some(json!({"environment": "production", "name": null, "url": null, "dateStarted": null, "projects": ["web"]})),
    );
    assert_eq!(status, 201);
    assert!(
        dep2["dateFinished"].is_string(),
        "dateFinished defaults to now"
    );
    let (_, again) = d.api(
        "POST",
        "organizations/acme/releases/1.0/deploys/",
        Some(json!({"environment": "staging"})),
    );
    let (status, list) = d.api("GET", "organizations/acme/releases/1.0/deploys/", None);
    assert_eq!(status, 200);
    let list = list.as_array().unwrap();
    // The latest per environment, newest first; never a null dateFinished.
    assert_eq!(list.len(), 2, "{list:?}");
    assert_eq!(list[0]["id"], again["id"]);
    assert_eq!(list[1]["environment"], "production");
    assert!(list.iter().all(|d| d["dateFinished"].is_string()));

    let (_, r) = d.api("GET", "organizations/acme/releases/1.0/", None);
    assert_eq!(r["deployCount"], 3);
    assert_eq!(r["lastDeploy"]["id"], again["id"]);
    assert_eq!(r["lastDeploy"]["environment"], "staging");
    assert_eq!(
        d.count("SELECT count(*) FROM activities WHERE type = 17"),
        5
    );

    for (body, what) in [
        (json!({}), "environment: This field is required."),
        (json!({"environment": "none"}), "environment"),
        (json!({"environment": "a/b"}), "environment"),
        (json!({"environment": "x".repeat(65)}), "environment"),
        (json!({"environment": "prod", "url": "ftp://x"}), "url"),
        (
            json!({"environment": "prod", "dateFinished": "soon"}),
            "dateFinished",
        ),
        (json!({"environment": "prod", "projects": []}), "projects"),
    ] {
        let (status, err) = d.api(
            "POST",
            "organizations/acme/releases/1.0/deploys/",
            Some(body.clone()),
        );
        assert_eq!(status, 400, "{body}");
        assert!(
            err["detail"].as_str().unwrap().contains(what),
            "{body}: {err}"
        );
    }
    create(&d, "2.0", json!(["web"]));
    let (status, err) = d.api(
        "POST",
        "organizations/acme/releases/2.0/deploys/",
        Some(json!({"environment": "prod", "projects": ["api"]})),
    );
    assert_eq!(status, 400);
    assert_eq!(err["detail"], "Invalid projects (api) for release 2.0");
    assert_eq!(d.count("SELECT count(*) FROM deploys"), 3);
}

#[test]
fn oversized_body_is_413() {
    let d = Daemon::start();
    let huge = "x".repeat(9 * 1024 * 1024);
    let (status, body) = d.api(
        "POST",
        "organizations/acme/releases/",
        Some(json!({"version": "1.0", "projects": ["web"], "url": huge})),
    );
    assert_eq!(status, 413);
    assert!(body["detail"].as_str().unwrap().contains("larger"));
    assert_eq!(d.count("SELECT count(*) FROM releases"), 0);
}

#[test]
fn everything_survives_a_restart() {
    let mut d = Daemon::start();
    for v in ["1.0", "1.1", "1.2"] {
        create(&d, v, json!(["web"]));
    }
    d.api(
        "POST",
        "organizations/acme/releases/1.1/deploys/",
        Some(json!({"environment": "production", "name": "deploy-1"})),
    );
    d.api(
        "PUT",
        "organizations/acme/releases/1.1/",
        Some(json!({"dateReleased": "2024-05-01T10:00:00Z"})),
    );
    let (_, before) = d.api("GET", "organizations/acme/releases/?status=any", None);
    let status = d.stop().unwrap();
    assert!(
        status.success(),
        "SIGTERM is a clean stop: {status}\n{}",
        d.log()
    );
    assert!(!d.data_dir().join("daemon.json").exists());
    d.restart();
    let (_, after) = d.api("GET", "organizations/acme/releases/?status=any", None);
    assert_eq!(before, after);
    let (_, deploys) = d.api("GET", "organizations/acme/releases/1.1/deploys/", None);
    assert_eq!(deploys[0]["name"], "deploy-1");
}

#[test]
fn organizations_and_projects_are_listed() {
    let d = Daemon::start();
    let (status, orgs) = d.api("GET", "organizations/", None);
    assert_eq!(status, 200);
    assert_eq!(orgs[0]["slug"], "acme");
    let (_, org) = d.api("GET", "organizations/acme/", None);
    assert_eq!(org["slug"], "acme");
    let (_, projects) = d.api("GET", "organizations/acme/projects/", None);
    let slugs: Vec<&str> = projects
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["slug"].as_str().unwrap())
        .collect();
    assert_eq!(slugs, ["api", "web"]);
}
