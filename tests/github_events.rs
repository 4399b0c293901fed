//! GitHub deliveries applied end to end: a real daemon whose `github.api_url` points at a local
//! fake of GitHub's API, every example payload posted with a correct signature, and the
//! resulting releases, commits, hooks and delivery log checked in the API and the database.

mod common;

use std::time::{Duration, Instant};

use common::Daemon;
use common::github_fake::{FakeCommit, FakeFile, FakeGithub, Fault, fake_sha};
use serde_json::{Value, json};
use shiplog::github::verify::sign;

const SECRET: &str = "hook secret";
const HELLO: &str = "Codertocat/Hello-World";
const HELLO_HEAD: &str = "6113728f27ae82c7b1a177c8d03f9e96e0adf246";
const APP: &str = "gagbo/app-test-repo";
const APP_HEAD: &str = "bd7a63727468ca899e6a43e40fe9d76b3501f3f4";
const BAXTER: &str = "baxterthehacker/public-repo";

fn config(fake: &FakeGithub, extra: &str) -> String {
    format!(
        "organization: acme
projects:
  - slug: web
    name: Web
  - slug: api
    name: API
repositories:
  - name: {HELLO}
    github: {HELLO}
    projects: [web]
  - name: acme/app
    github: {APP}
    projects: [api]
  - name: {BAXTER}
    github: {BAXTER}
    projects: [web]
github:
  webhook_secret: \"{SECRET}\"
  api_url: {}
{extra}",
        fake.url
    )
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/github/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn post(d: &Daemon, event: &str, guid: &str, body: &[u8]) -> u16 {
    reqwest::blocking::Client::new()
        .post(format!("{}/webhooks/github", d.url))
        .header("content-type", "application/json")
        .header("x-github-event", event)
        .header("x-github-delivery", guid)
        .header("x-github-hook-id", "109948940")
        .header("x-hub-signature-256", sign(SECRET.as_bytes(), body))
        .body(body.to_vec())
        .send()
        .unwrap()
        .status()
        .as_u16()
}

fn wait_until(d: &Daemon, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}\n{}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until the pipeline has nothing left to do (applied or given up).
fn drained(d: &Daemon) {
    wait_until(d, "the inbox to drain", || {
        d.count("SELECT count(*) FROM inbox WHERE processed_at IS NULL AND attempts < 5") == 0
    });
}

fn outcome(d: &Daemon, guid: &str) -> (String, String) {
    d.db()
        .query_row(
            "SELECT outcome, detail FROM github_deliveries WHERE delivery = ?1",
            [guid],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap_or_else(|e| panic!("no outcome for {guid}: {e}\n{}", d.log()))
}

fn release(d: &Daemon, version: &str) -> Value {
    let (status, r) = d.api(
        "GET",
        &format!("organizations/acme/releases/{version}/"),
        None,
    );
    assert_eq!(status, 200, "release {version}: {r}\n{}", d.log());
    r
}

fn release_commit_shas(d: &Daemon, version: &str) -> Vec<String> {
    let db = d.db();
    let mut stmt = db
        .prepare(
            "SELECT c.key FROM release_commits rc JOIN commits c ON c.id = rc.commit_id
             JOIN releases r ON r.id = rc.release_id WHERE r.version = ?1 ORDER BY rc.position",
        )
        .unwrap();
    stmt.query_map([version], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn head_commit(d: &Daemon, version: &str) -> String {
    d.db()
        .query_row(
            "SELECT c.key FROM release_head_commits h JOIN commits c ON c.id = h.commit_id
             JOIN releases r ON r.id = h.release_id WHERE r.version = ?1",
            [version],
            |r| r.get(0),
        )
        .unwrap()
}

/// GitHub's history for the repositories the example payloads name, ending at their commits.
fn seed(fake: &FakeGithub) -> Vec<String> {
    let mut hello = fake.add_commits(HELLO, 5, 1);
    hello.push(fake.add_commit(
        HELLO,
        FakeCommit {
            sha: HELLO_HEAD.into(),
            message: "Initial commit".into(),
            author_name: "Codertocat".into(),
            author_email: "21031067+Codertocat@users.noreply.github.com".into(),
            date: "2019-05-15T15:19:25Z".into(),
            files: vec![FakeFile::new("README.md", "added")],
        },
    ));
    fake.tag(HELLO, "simple-tag", HELLO_HEAD, false);
    fake.tag(HELLO, "0.0.1", HELLO_HEAD, true);
    fake.add_commits(APP, 3, 2);
    fake.add_commit(
        APP,
        FakeCommit {
            sha: APP_HEAD.into(),
            message: "Bump to 0.2.1\n\nFixes API-7".into(),
            author_name: "Gerry".into(),
            author_email: "gerry@example.com".into(),
            date: "2023-08-18T13:00:00+02:00".into(),
            files: vec![
                FakeFile::new("Cargo.toml", "modified"),
                FakeFile::renamed("src/old.rs", "src/new.rs"),
            ],
        },
    );
    fake.tag(APP, "v0.2.1", APP_HEAD, true);
    hello
}

#[test]
fn every_example_payload_is_applied() {
    let fake = FakeGithub::start();
    let hello = seed(&fake);
    let d = Daemon::start_with(&config(&fake, "schedules: []\n"));
    let deliveries = [
        ("ping", "ping.json"),
        ("push", "push-branch-update.json"),
        ("push", "push-commits-new-branch.json"),
        ("push", "push-tag-created.json"),
        ("create", "create-tag.json"),
        ("push", "push-tag-created.octocrab-real.json"),
        ("release", "release-published.json"),
        ("delete", "delete-tag.json"),
        ("push", "push-tag-deleted.json"),
    ];
    for (event, file) in deliveries {
        assert_eq!(post(&d, event, file, &fixture(file)), 202, "{file}");
    }
    drained(&d);
    assert_eq!(d.count("SELECT count(*) FROM github_deliveries"), 9);
    for (_, file) in deliveries {
        let (o, detail) = outcome(&d, file);
        assert_eq!(o, "applied", "{file}: {detail}");
    }

    // ping: the hook is recorded.
    let (id, events, content): (String, String, String) = d
        .db()
        .query_row(
            "SELECT hook_id, events, content_type FROM github_hooks",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(
        (id.as_str(), events.as_str(), content.as_str()),
        ("109948940", "[\"*\"]", "json")
    );

    // Branch pushes: the payload's commits with their patch sets.
    let files: Vec<(String, String)> = {
        let db = d.db();
        let mut stmt = db
            .prepare(
                "SELECT c.key, f.type || ' ' || f.filename FROM commit_file_changes f
                 JOIN commits c ON c.id = f.commit_id
                 JOIN repositories r ON r.id = c.repository_id
                 WHERE r.name IN (?1, ?2) AND c.key IN (?3, ?4) ORDER BY c.key",
            )
            .unwrap();
        stmt.query_map(
            [
                BAXTER,
                HELLO,
                "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c",
                HELLO_HEAD,
            ],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
    };
    assert_eq!(
        files,
        vec![
            (
                "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c".to_string(),
                "M README.md".to_string()
            ),
            (HELLO_HEAD.to_string(), "A README.md".to_string()),
        ]
    );
    let author: String = d
        .db()
        .query_row(
            "SELECT a.email FROM commits c JOIN commit_authors a ON a.id = c.author_id
             WHERE c.key = '0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(author, "baxterthehacker@users.noreply.github.com");

    // Tag pushed (lightweight): a release of the default policy with the newest commits
    // from the fake's API (a first release: initial_depth, here all 6).
    let r = release(&d, "simple-tag");
    assert_eq!(r["commitCount"], 6, "{r}");
    assert_eq!(r["projects"][0]["slug"], "web");
    assert_eq!(r["ref"], "simple-tag");
    let mut expected = hello.clone();
    expected.reverse();
    assert_eq!(release_commit_shas(&d, "simple-tag"), expected);
    assert_eq!(head_commit(&d, "simple-tag"), HELLO_HEAD);
    assert!(r["data"].get("commitsPending").is_none(), "{r}");

    // Annotated tag: the release is at head_commit (the peeled commit), not the tag object,
    // and the rename arrived as D + A.
    let r = release(&d, "0.2.1");
    assert_eq!(r["commitCount"], 4, "{r}");
    assert_eq!(r["projects"][0]["slug"], "api");
    assert_eq!(head_commit(&d, "0.2.1"), APP_HEAD);
    let renamed: Vec<String> = {
        let db = d.db();
        let mut stmt = db
            .prepare(
                "SELECT f.type || ' ' || f.filename FROM commit_file_changes f
                 JOIN commits c ON c.id = f.commit_id WHERE c.key = ?1 ORDER BY f.filename",
            )
            .unwrap();
        stmt.query_map([APP_HEAD], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    assert_eq!(
        renamed,
        vec!["M Cargo.toml", "A src/new.rs", "D src/old.rs"]
    );

    // Release published on GitHub: created from its tag (peeled through the API) and finalized
    // at published_at.
    let r = release(&d, "0.0.1");
    assert_eq!(r["dateReleased"], "2019-05-15T15:20:53.000000Z", "{r}");
    assert_eq!(
        r["url"],
        "https://github.com/Codertocat/Hello-World/releases/tag/0.0.1"
    );
    // Its tag is on the same commit as simple-tag, the release before it: no new commits.
    assert_eq!(r["commitCount"], 0, "{r}");
    assert_eq!(head_commit(&d, "0.0.1"), HELLO_HEAD);

    // Deleting the tag keeps its release.
    assert!(outcome(&d, "delete-tag.json").1.contains("kept"));
    release(&d, "simple-tag");
    assert_eq!(d.count("SELECT count(*) FROM releases"), 3);

    // What the CLI shows.
    let out = d.shiplog(&["github", "deliveries", "-n", "50"]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let text = common::stdout(&out);
    assert!(text.contains("release.published"), "{text}");
    assert!(text.contains("release 0.0.1 finalized"), "{text}");
    let out = d.shiplog(&["github", "hooks"]);
    assert!(common::stdout(&out).contains("109948940"));
    // Publishing notes to GitHub is off by default.
    assert!(fake.requests_to("/releases/").is_empty());
}

#[test]
fn release_notes_are_published_to_the_github_release_when_enabled() {
    let fake = FakeGithub::start();
    seed(&fake);
    fake.add_release(HELLO, 17372790, "0.0.1", "Hand-written intro.");
    let config = config(&fake, "schedules: []\n").replace(
        &format!("  api_url: {}\n", fake.url),
        &format!(
            "  api_url: {}\n  publish_release_notes: true\n  token: ghp_notes\n",
            fake.url
        ),
    );
    let d = Daemon::start_with(&config);
    assert_eq!(
        post(&d, "release", "rel", &fixture("release-published.json")),
        202
    );
    drained(&d);
    let (o, detail) = outcome(&d, "rel");
    assert_eq!(o, "applied");
    assert!(
        detail.contains("release notes published to GitHub"),
        "{detail}"
    );
    let body = fake.release_body(HELLO, 17372790).unwrap();
    assert!(
        body.starts_with("Hand-written intro.\n\n<!-- shiplog:release-notes -->\n# 0.0.1"),
        "{body}"
    );
    assert!(body.contains("Initial commit"), "{body}");
    assert!(body.ends_with("<!-- /shiplog:release-notes -->"), "{body}");
    let patches: Vec<_> = fake
        .requests_to("/releases/17372790")
        .into_iter()
        .filter(|r| r.method == "PATCH")
        .collect();
    assert_eq!(patches.len(), 1);
    assert_eq!(
        patches[0].authorization.as_deref(),
        Some("Bearer ghp_notes")
    );
    // Redelivered: the notes block is replaced, not added twice.
    assert_eq!(
        post(
            &d,
            "release",
            "rel-again",
            &fixture("release-published.json")
        ),
        202
    );
    drained(&d);
    let again = fake.release_body(HELLO, 17372790).unwrap();
    assert_eq!(
        again.matches("<!-- shiplog:release-notes -->").count(),
        1,
        "{again}"
    );
}

#[test]
fn the_same_delivery_twice_is_processed_once() {
    let fake = FakeGithub::start();
    let d = Daemon::start_with(&config(&fake, "schedules: []\n"));
    let body = fixture("push-branch-update.json");
    assert_eq!(post(&d, "push", "dup-1", &body), 202);
    drained(&d);
    assert_eq!(post(&d, "push", "dup-1", &body), 200);
    drained(&d);
    assert_eq!(d.count("SELECT count(*) FROM inbox"), 1);
    assert_eq!(d.count("SELECT count(*) FROM github_deliveries"), 1);
    assert_eq!(d.count("SELECT count(*) FROM commits"), 1);
}

#[test]
fn deliveries_for_unknown_repositories_and_events_are_recorded_and_ignored() {
    let fake = FakeGithub::start();
    let d = Daemon::start_with(&config(&fake, "schedules: []\n"));
    let mut push: Value = serde_json::from_slice(&fixture("push-branch-update.json")).unwrap();
    push["repository"]["full_name"] = json!("someone/else");
    let body = serde_json::to_vec(&push).unwrap();
    assert_eq!(post(&d, "push", "unknown-repo", &body), 202);
    let star = br#"{"action": "created", "repository": {"full_name": "Codertocat/Hello-World"}}"#;
    assert_eq!(post(&d, "star", "a-star", star), 202);
    drained(&d);
    let (o, detail) = outcome(&d, "unknown-repo");
    assert_eq!(o, "ignored");
    assert!(
        detail.contains("someone/else is not configured"),
        "{detail}"
    );
    assert_eq!(outcome(&d, "a-star").0, "ignored");
    assert_eq!(d.count("SELECT count(*) FROM commits"), 0);
    assert!(d.log().contains("not configured"));
}

#[test]
fn a_rate_limited_fetch_leaves_commits_pending_until_a_retry_completes_it() {
    let fake = FakeGithub::start();
    seed(&fake);
    // The first API call for the release's commits hits an exhausted rate limit (reset an
    // hour away: too long to wait in place).
    fake.fail("/commits", 1, Fault::RateLimited { reset_in: 3600 });
    let d = Daemon::start_with(&config(&fake, "schedules: []\n"));
    assert_eq!(
        post(&d, "push", "tag", &fixture("push-tag-created.json")),
        202
    );
    wait_until(&d, "the pending release", || {
        d.count("SELECT count(*) FROM github_deliveries WHERE outcome = 'pending'") == 1
    });
    let (status, r) = d.api("GET", "organizations/acme/releases/simple-tag/", None);
    // Either still pending, or the retry (2 s later) has already completed it.
    assert_eq!(status, 200);
    if r["commitCount"] == 0 {
        assert_eq!(r["data"]["commitsPending"], true, "{r}");
        assert!(
            r["data"]["commitsError"]
                .as_str()
                .unwrap()
                .contains("rate limit"),
            "{r}"
        );
    }
    assert!(outcome(&d, "tag").1.contains("rate limit"));
    wait_until(&d, "the retry", || outcome(&d, "tag").0 == "applied");
    let r = release(&d, "simple-tag");
    assert_eq!(r["commitCount"], 6, "{r}");
    assert!(r["data"].get("commitsPending").is_none(), "{r}");
    assert_eq!(d.count("SELECT count(*) FROM releases"), 1);
}

#[test]
fn the_pending_state_is_visible_in_the_api_and_the_cli() {
    let fake = FakeGithub::start();
    seed(&fake);
    // GitHub keeps failing: every attempt of the pipeline ends pending.
    fake.fail("/commits", 1000, Fault::Status(502));
    let d = Daemon::start_with(&config(&fake, "schedules: []\n"));
    assert_eq!(
        post(&d, "push", "tag", &fixture("push-tag-created.json")),
        202
    );
    wait_until(&d, "the pending release", || {
        d.count("SELECT count(*) FROM github_deliveries WHERE outcome = 'pending'") == 1
    });
    let r = release(&d, "simple-tag");
    assert_eq!(r["data"]["commitsPending"], true, "{r}");
    assert_eq!(r["commitCount"], 0);
    let out = d.shiplog(&["releases", "info", "simple-tag"]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let text = common::stdout(&out);
    assert!(text.contains("pending"), "{text}");
    assert!(text.contains("502"), "{text}");
    // GitHub recovers; the next attempt completes the release.
    fake.clear_faults();
    wait_until(&d, "the retry", || outcome(&d, "tag").0 == "applied");
    let r = release(&d, "simple-tag");
    assert_eq!(r["commitCount"], 6, "{r}");
    assert!(r["data"].get("commitsPending").is_none(), "{r}");
}

#[test]
fn a_502_is_retried_in_place_and_the_release_completes_at_once() {
    let fake = FakeGithub::start();
    seed(&fake);
    fake.fail("/commits", 1, Fault::Status(502));
    let d = Daemon::start_with(&config(&fake, "schedules: []\n"));
    assert_eq!(
        post(&d, "push", "tag", &fixture("push-tag-created.json")),
        202
    );
    drained(&d);
    assert_eq!(outcome(&d, "tag").0, "applied");
    assert_eq!(release(&d, "simple-tag")["commitCount"], 6);
    assert_eq!(
        fake.requests().iter().filter(|r| r.status == 502).count(),
        1
    );
}

/// A push payload for `repo` moving `branch` from `before` to `after`.
fn push_payload(repo: &str, before: &str, after: &str, forced: bool, commits: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "ref": "refs/heads/main", "before": before, "after": after,
        "created": false, "deleted": false, "forced": forced, "base_ref": null,
        "compare": format!("https://github.com/{repo}/compare/{}...{}", &before[..12], &after[..12]),
        "commits": commits, "head_commit": null,
        "repository": {"full_name": repo, "created_at": 1557933565, "pushed_at": 1557933600},
        "pusher": {"name": "x", "email": "x@example.com"},
    }))
    .unwrap()
}

#[test]
fn a_force_push_without_commits_and_a_capped_push_fetch_through_compare() {
    let fake = FakeGithub::start();
    let shas = fake.add_commits(HELLO, 2060, 1);
    let d = Daemon::start_with(&config(&fake, "schedules: []\n"));

    let forced = push_payload(HELLO, &shas[0], &shas[5], true, json!([]));
    assert_eq!(post(&d, "push", "forced", &forced), 202);
    drained(&d);
    assert!(
        outcome(&d, "forced").1.contains("recorded 5 commits"),
        "{:?}",
        outcome(&d, "forced")
    );

    // 2048 listed commits is GitHub's cap: the full list comes from compare.
    let listed: Vec<Value> = shas[11..11 + 2048]
        .iter()
        .map(|s| json!({"id": s, "message": "m", "timestamp": "2026-01-01T00:00:00Z",
            "author": {"name": "a", "email": "a@example.com"}, "added": [], "removed": [], "modified": []}))
        .collect();
    let capped = push_payload(HELLO, &shas[5], &shas[2059], false, json!(listed));
    assert_eq!(post(&d, "push", "capped", &capped), 202);
    drained(&d);
    let (o, detail) = outcome(&d, "capped");
    assert_eq!(o, "applied");
    assert!(detail.contains("recorded 2054 commits"), "{detail}");
    assert_eq!(d.count("SELECT count(*) FROM commits"), 5 + 2054);
    // Patch sets came from the API too.
    assert_eq!(
        d.count(&format!(
            "SELECT count(*) FROM commit_file_changes f JOIN commits c ON c.id = f.commit_id WHERE c.key = '{}'",
            shas[2059]
        )),
        1
    );
}

#[test]
fn reconcile_creates_releases_for_tags_no_webhook_announced() {
    let fake = FakeGithub::start();
    let repo = "acme/api";
    let first = fake.add_commits(repo, 3, 1);
    fake.tag(repo, "v1.0.0", &first[2], false);
    let d = Daemon::start_with(&format!(
        "organization: acme
projects:
  - slug: api
    name: API
repositories:
  - name: acme/api
    github: acme/api
    projects: [api]
github:
  webhook_secret: \"{SECRET}\"
  api_url: {}
schedules:
  - name: reconcile
    cron: \"*/1 * * * * *\"
    job: reconcile
",
        fake.url
    ));
    // The first listing is the baseline: v1.0.0 is history.
    wait_until(&d, "the baseline", || {
        d.count("SELECT count(*) FROM ref_baselines") == 1
    });
    // More than three tags pushed at once: GitHub sends no webhook at all.
    let mut tags = Vec::new();
    for minor in 1..=4 {
        let shas = fake.add_commits(repo, 2, 1);
        let tag = format!("v1.{minor}.0");
        fake.tag(repo, &tag, &shas[1], minor % 2 == 0);
        tags.push((format!("1.{minor}.0"), shas));
    }
    wait_until(&d, "reconcile to create the releases", || {
        d.count("SELECT count(*) FROM releases WHERE commit_count > 0") == 4
    });
    assert_eq!(
        d.count("SELECT count(*) FROM releases WHERE version = '1.0.0'"),
        0
    );
    // Each release after the first holds the commits since the one before it.
    for (version, shas) in &tags[1..] {
        let mut expected = shas.clone();
        expected.reverse();
        assert_eq!(&release_commit_shas(&d, version), &expected, "{version}");
        assert_eq!(head_commit(&d, version), shas[1]);
    }
    // Later runs find nothing new.
    let before = fake.requests_to("/tags").len();
    wait_until(&d, "another reconcile", || {
        fake.requests_to("/tags").len() > before + 1
    });
    assert_eq!(
        d.count("SELECT count(*) FROM releases"),
        4,
        "nothing created twice"
    );
    assert!(d.log().contains("github"), "{}", d.log());
}

#[test]
fn github_repositories_are_listed_by_the_repos_api() {
    let fake = FakeGithub::start();
    let d = Daemon::start_with(&config(&fake, "schedules: []\n"));
    let (status, list) = d.api("GET", "organizations/acme/repos/", None);
    assert_eq!(status, 200, "{list}");
    let app = list
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "acme/app")
        .unwrap_or_else(|| panic!("{list}"));
    assert_eq!(app["provider"]["id"], "integrations:github", "{app}");
    assert_eq!(app["externalSlug"], APP, "{app}");
    assert_eq!(app["url"], format!("{}/{APP}", fake.url), "{app}");
}

#[test]
fn fixes_in_pushed_commits_link_issues() {
    let fake = FakeGithub::start();
    let mut shas = fake.add_commits(APP, 1, 1);
    // GitHub's API knows the pushed commit as the push describes it.
    shas.push(fake.add_commit(
        APP,
        FakeCommit {
            sha: fake_sha("fix"),
            message: "Round amounts\n\nFixes API-1".into(),
            author_name: "Ann".into(),
            author_email: "ann@example.com".into(),
            date: "2026-11-21T10:00:00+01:00".into(),
            files: vec![FakeFile::new("app/billing/charge.py", "modified")],
        },
    ));
    let d = Daemon::start_with(&config(&fake, "schedules: []\n"));
    let dsn = common::events::dsn(&d, "api");
    let issue = common::events::send_and_find(
        &d,
        &dsn,
        &common::events::error_event("ValueError", "bad charge", None),
    );
    let short_id = issue["shortId"].as_str().unwrap().to_string();
    assert_eq!(short_id, "API-1");
    let commits = json!([{
        "id": shas[1], "message": format!("Round amounts\n\nFixes {short_id}"),
        "timestamp": "2026-11-21T10:00:00+01:00",
        "author": {"name": "Ann", "email": "ann@example.com", "username": "ann"},
        "added": [], "removed": [], "modified": ["app/billing/charge.py"],
    }]);
    let body = push_payload(APP, &shas[0], &shas[1], false, commits);
    assert_eq!(post(&d, "push", "fixes", &body), 202);
    drained(&d);
    assert_eq!(outcome(&d, "fixes").0, "applied");
    assert_eq!(
        d.count(&format!(
            "SELECT count(*) FROM issue_commit_links l JOIN commits c ON c.id = l.commit_id
             WHERE l.short_id = '{short_id}' AND c.key = '{}'",
            shas[1]
        )),
        1
    );
    let (_, still) = d.api(
        "GET",
        &format!("organizations/acme/issues/{short_id}/"),
        None,
    );
    assert_eq!(
        still["status"], "unresolved",
        "a pushed commit alone resolves nothing"
    );

    // The tag that ships the commit resolves the issue in its release.
    fake.tag(APP, "v0.3.0", &shas[1], true);
    let tag = serde_json::to_vec(&json!({
        "ref": "refs/tags/v0.3.0", "before": "0".repeat(40), "after": fake.tag_object(APP, "v0.3.0"),
        "created": true, "deleted": false, "forced": false, "base_ref": null, "commits": [],
        "head_commit": {"id": shas[1], "message": "Round amounts", "timestamp": "2026-11-21T10:00:00+01:00",
            "author": {"name": "Ann", "email": "ann@example.com"}, "added": [], "removed": [], "modified": []},
        "repository": {"full_name": APP, "created_at": 1692363214, "pushed_at": 1692363300},
    }))
    .unwrap();
    assert_eq!(post(&d, "push", "ship", &tag), 202);
    drained(&d);
    assert_eq!(
        outcome(&d, "ship").0,
        "applied",
        "{:?}",
        outcome(&d, "ship")
    );
    let (_, resolved) = d.api(
        "GET",
        &format!("organizations/acme/issues/{short_id}/"),
        None,
    );
    assert_eq!(
        resolved["status"],
        "resolved",
        "{resolved}\n{:?}\n{}",
        outcome(&d, "ship"),
        release(&d, "0.3.0")
    );
    let (_, list) = d.api("GET", "organizations/acme/releases/0.3.0/resolved/", None);
    assert_eq!(list[0]["shortId"], short_id.as_str(), "{list}");
}

#[test]
fn set_commits_for_a_github_only_repository_fetches_the_range_from_the_api() {
    let fake = FakeGithub::start();
    let shas = fake.add_commits(APP, 8, 1);
    let d = Daemon::start_with(&config(&fake, "schedules: []\n"));
    let (status, r) = d.api(
        "POST",
        "organizations/acme/releases/",
        Some(json!({"version": "2.0.0", "projects": ["api"],
            "refs": [{"repository": "acme/app", "commit": shas[7], "previousCommit": shas[2]}]})),
    );
    assert_eq!(status, 201, "{r}\n{}", d.log());
    let mut expected: Vec<String> = shas[3..].to_vec();
    expected.reverse();
    assert_eq!(release_commit_shas(&d, "2.0.0"), expected);
    assert_eq!(head_commit(&d, "2.0.0"), shas[7]);
    assert!(
        !fake
            .requests_to(&format!("/compare/{}...{}", shas[2], shas[7]))
            .is_empty()
    );
}

#[test]
fn the_real_sentry_cli_sets_commits_of_a_github_only_repository() {
    let Some(cli) = common::sentry_cli::require_sentry_cli(
        "the_real_sentry_cli_sets_commits_of_a_github_only_repository",
    ) else {
        return;
    };
    let fake = FakeGithub::start();
    let shas = fake.add_commits(APP, 6, 2);
    let d = Daemon::start_with(&config(&fake, "schedules: []\n"));
    let run = |args: &[&str]| {
        let out = common::sentry_cli::sentry_cli_command(&cli, &format!("{}/", d.url), &d.token)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "sentry-cli {args:?}: {}\n{}",
            common::stderr(&out),
            d.log()
        );
        common::stdout(&out)
    };
    run(&["releases", "--org", "acme", "-p", "api", "new", "3.0.0"]);
    let spec = format!("acme/app@{}..{}", shas[1], shas[5]);
    run(&[
        "releases",
        "--org",
        "acme",
        "set-commits",
        "3.0.0",
        "--commit",
        &spec,
    ]);
    let mut expected: Vec<String> = shas[2..].to_vec();
    expected.reverse();
    assert_eq!(release_commit_shas(&d, "3.0.0"), expected);
    assert_eq!(release(&d, "3.0.0")["commitCount"], 4);
}
