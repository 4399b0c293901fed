//! History import: the tags a repository already has become releases, at first sight
//! (`import_tags: true`) or later (`shiplog repos import`). Real repositories made with the git
//! CLI, a real daemon, the local fake GitHub API; results read through the API.

mod common;

use std::path::Path;
use std::time::Duration;

use common::github_fake::FakeGithub;
use common::hook_repo::{GitRepo, wait_for, yaml_path};
use common::{Daemon, stderr, stdout};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);
const ALICE: (&str, &str) = ("Alice Example", "alice@example.com");

const PROJECTS: &str = "organization: acme
projects:
  - slug: web
  - slug: ui
schedules: []
";

fn repo_config(repo: &Path, import_tags: bool) -> String {
    format!(
        "{PROJECTS}repositories:
  - name: acme/web
    path: {}
    projects: [web]
    import_tags: {import_tags}
    releases:
      - tag_pattern: '^v(?P<version>.+)$'
        version: 'web@{{version}}'
        initial_depth: 2
      - tag_pattern: '^ui-(?P<version>.+)$'
        version: 'ui@{{version}}'
        projects: [ui]
        paths: [packages/ui]
        initial_depth: 5
",
        yaml_path(repo)
    )
}

/// What the history test repository holds, and what each release must get.
struct History {
    repo: GitRepo,
    /// version -> (tag, expected commits newest first)
    expected: Vec<(&'static str, &'static str, Vec<String>)>,
    fix: String,
}

/// c1..c3, v1.0.0 (lightweight), c4 "Fixes WEB-1", c5 (ui), ui-1.0 (annotated), c6, v1.1.0
/// (annotated), c7 (ui), c8 (docs), ui-1.1 on c8 (outside the policy's paths), nightly-1
/// (no policy).
fn history(dir: &Path) -> History {
    let repo = GitRepo::init(&dir.join("web"));
    repo.commit("c1", &[("app.js", "1")], ALICE);
    repo.commit("c2", &[("app.js", "2")], ALICE);
    repo.commit("c3: ui", &[("packages/ui/a.js", "1")], ALICE);
    repo.tag("v1.0.0");
    let fix = repo.commit(
        "c4: round amounts\n\nFixes WEB-1",
        &[("app.js", "4")],
        ALICE,
    );
    repo.commit("c5: ui", &[("packages/ui/b.js", "1")], ALICE);
    repo.tag_annotated("ui-1.0");
    repo.commit("c6", &[("app.js", "6")], ALICE);
    repo.tag_annotated("v1.1.0");
    repo.commit("c7: ui", &[("packages/ui/a.js", "7")], ALICE);
    repo.commit("c8: docs", &[("docs/readme.md", "8")], ALICE);
    repo.tag("ui-1.1");
    repo.tag("nightly-1");
    let ui = &["packages/ui"][..];
    let expected = vec![
        (
            "web@1.0.0",
            "v1.0.0",
            repo.list("v1.0.0", &[])[..2].to_vec(),
        ),
        ("web@1.1.0", "v1.1.0", repo.list("v1.0.0..v1.1.0", &[])),
        ("ui@1.0", "ui-1.0", repo.list("ui-1.0", ui)),
        ("ui@1.1", "ui-1.1", repo.list("ui-1.0..ui-1.1", ui)),
    ];
    assert_eq!(expected[1].2.len(), 3);
    assert_eq!(expected[2].2.len(), 2);
    assert_eq!(
        expected[3].2.len(),
        1,
        "c7 only: the tag's own commit is outside the paths"
    );
    History {
        repo,
        expected,
        fix,
    }
}

fn release(d: &Daemon, version: &str) -> Value {
    let (status, r) = d.api(
        "GET",
        &format!("organizations/acme/releases/{version}/"),
        None,
    );
    assert_eq!(status, 200, "{version}: {r}");
    r
}

fn commit_ids(d: &Daemon, version: &str) -> Vec<String> {
    let (status, list) = d.api(
        "GET",
        &format!("organizations/acme/releases/{version}/commits/"),
        None,
    );
    assert_eq!(status, 200, "{list}");
    list.as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect()
}

fn instant(text: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("{text:?}: {e}"))
        .to_utc()
}

/// The date `git` gives a tag: the tagger date when annotated, else the commit's.
fn tag_date(repo: &GitRepo, tag: &str) -> chrono::DateTime<chrono::Utc> {
    instant(&repo.git(&[
        "for-each-ref",
        "--format=%(creatordate:iso-strict)",
        &format!("refs/tags/{tag}"),
    ]))
}

fn totals(d: &Daemon) -> (i64, i64, i64) {
    (
        d.count("SELECT count(*) FROM releases"),
        d.count("SELECT count(*) FROM release_commits"),
        d.count("SELECT count(*) FROM release_sources"),
    )
}

fn shiplog_ok(d: &Daemon, args: &[&str]) -> String {
    let out = d.shiplog(args);
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    stdout(&out)
}

#[test]
fn import_tags_at_first_sight_makes_the_releases_of_the_history() {
    let tmp = tempfile::tempdir().unwrap();
    let h = history(tmp.path());
    // The issue the history fixes exists before the repository is configured.
    let mut d = Daemon::start_with(PROJECTS);
    let dsn = common::events::dsn(&d, "web");
    let issue = common::events::send_and_find(
        &d,
        &dsn,
        &common::events::error_event("ValueError", "bad amount", None),
    );
    assert_eq!(issue["shortId"], "WEB-1");
    d.stop();
    std::fs::write(d.config_path(), repo_config(&h.repo.path, true)).unwrap();
    d.restart();

    wait_for("the imported releases", WAIT, || {
        (d.count("SELECT count(*) FROM releases WHERE date_released IS NOT NULL") == 4)
            .then_some(())
    });
    for (version, tag, commits) in &h.expected {
        assert_eq!(&commit_ids(&d, version), commits, "{version}");
        let r = release(&d, version);
        let when = tag_date(&h.repo, tag);
        assert_eq!(instant(r["dateCreated"].as_str().unwrap()), when, "{r}");
        assert_eq!(instant(r["dateReleased"].as_str().unwrap()), when, "{r}");
        assert_eq!(r["ref"], *tag, "{r}");
    }
    // The annotated tag is dated by its tagger, after its commit.
    let ui = release(&d, "ui@1.0");
    assert!(
        instant(ui["dateReleased"].as_str().unwrap())
            > instant(&h.repo.git(&["log", "-1", "--format=%cI", "ui-1.0"]))
    );
    assert_eq!(release(&d, "ui@1.0")["projects"][0]["slug"], "ui");
    // Newest first, as the tags were made.
    let (_, list) = d.api("GET", "organizations/acme/releases/", None);
    let order: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["version"].as_str().unwrap())
        .collect();
    assert_eq!(order, ["ui@1.1", "web@1.1.0", "ui@1.0", "web@1.0.0"]);
    assert_eq!(
        d.count("SELECT count(*) FROM releases WHERE version LIKE '%nightly%'"),
        0
    );
    // `Fixes WEB-1` resolved the issue in the release that first shipped the commit.
    let (_, resolved) = d.api(
        "GET",
        "organizations/acme/releases/web@1.1.0/resolved/",
        None,
    );
    assert_eq!(resolved[0]["shortId"], "WEB-1", "{resolved}");
    let (_, issue) = d.api("GET", "organizations/acme/issues/WEB-1/", None);
    assert_eq!(issue["status"], "resolved", "{issue}");
    assert!(h.expected[1].2.contains(&h.fix));

    // A restart, a second import and the watcher make nothing twice.
    let before = totals(&d);
    d.restart();
    let out = shiplog_ok(&d, &["repos", "import", "acme/web"]);
    assert!(out.contains("Imported 0 releases"), "{out}");
    assert!(out.contains("4 already there"), "{out}");
    assert!(out.contains("1 tag matching no release policy"), "{out}");
    assert_eq!(totals(&d), before);
    assert_eq!(
        d.count("SELECT count(*) FROM inbox WHERE kind = 'repo.import'"),
        1
    );

    // A tag made now follows its imported predecessor.
    h.repo.commit("c9", &[("app.js", "9")], ALICE);
    h.repo.tag("v1.2.0");
    let ids = wait_for("release web@1.2.0", WAIT, || {
        let (status, _) = d.api("GET", "organizations/acme/releases/web@1.2.0/", None);
        (status == 200).then(|| commit_ids(&d, "web@1.2.0"))
    });
    assert_eq!(ids, h.repo.list("v1.1.0..v1.2.0", &[]));
    assert_eq!(totals(&d).0, 5);
}

#[test]
fn repos_import_later_makes_only_the_missing_releases_and_dry_run_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let h = history(tmp.path());
    let d = Daemon::start_with(&repo_config(&h.repo.path, false));
    wait_for("the baseline", WAIT, || {
        (d.count("SELECT count(*) FROM ref_baselines") == 1).then_some(())
    });
    assert_eq!(
        d.count("SELECT count(*) FROM releases"),
        0,
        "tags are the baseline"
    );

    let out = shiplog_ok(&d, &["repos", "import", "acme/web", "--dry-run", "--json"]);
    let plan: Value = serde_json::from_str(&out).unwrap();
    let planned: Vec<(String, u64)> = plan["releases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["version"].as_str().unwrap().to_string(),
                r["commitCount"].as_u64().unwrap(),
            )
        })
        .collect();
    let mut want: Vec<(String, u64)> = h
        .expected
        .iter()
        .map(|(v, _, c)| (v.to_string(), c.len() as u64))
        .collect();
    let mut got = planned.clone();
    want.sort();
    got.sort();
    assert_eq!(got, want, "{plan}");
    assert_eq!(plan["unmatchedTags"], 1);
    assert_eq!(totals(&d), (0, 0, 0), "a dry run writes nothing");
    let table = shiplog_ok(&d, &["repos", "import", "acme/web", "--dry-run"]);
    assert!(
        table.contains("Would import 4 releases (8 commits)"),
        "{table}"
    );
    assert!(table.contains("ui@1.1"), "{table}");

    // One release exists already (made by hand): the import leaves it and makes the rest.
    let (status, _) = d.api(
        "POST",
        "organizations/acme/releases/",
        Some(serde_json::json!({"version": "web@1.0.0", "projects": ["web"]})),
    );
    assert_eq!(status, 201);
    let out = shiplog_ok(&d, &["repos", "import", "acme/web"]);
    assert!(out.contains("Imported 4 releases"), "{out}");
    for (version, _, commits) in &h.expected[1..] {
        assert_eq!(&commit_ids(&d, version), commits, "{version}");
    }
    let once = totals(&d);
    assert_eq!(once.0, 4);
    let again = shiplog_ok(&d, &["repos", "import", "acme/web"]);
    assert!(again.contains("Imported 0 releases"), "{again}");
    assert_eq!(totals(&d), once, "a second import changes nothing");

    let missing = d.shiplog(&["repos", "import", "acme/nope"]);
    assert!(!missing.status.success());
    assert!(
        stderr(&missing).contains("not in the config file"),
        "{}",
        stderr(&missing)
    );
}

#[test]
fn a_github_only_repository_imports_its_tags_from_the_api() {
    let fake = FakeGithub::start();
    let repo = "acme/api";
    let shas = fake.add_commits(repo, 6, 1);
    fake.tag(repo, "v1.0.0", &shas[1], false);
    fake.tag(repo, "v1.1.0", &shas[3], true);
    fake.tag(repo, "v1.2.0", &shas[5], false);
    fake.tag(repo, "nightly", &shas[5], false);
    let d = Daemon::start_with(&format!(
        "organization: acme
projects:
  - slug: api
repositories:
  - name: acme/api
    github: acme/api
    projects: [api]
    import_tags: true
    releases:
      - tag_pattern: '^v(?P<version>.+)$'
        initial_depth: 1
github:
  webhook_secret: secret
  api_url: {}
schedules: []
",
        fake.url
    ));
    wait_for("the imported releases", WAIT, || {
        (d.count("SELECT count(*) FROM releases WHERE date_released IS NOT NULL") == 3)
            .then_some(())
    });
    assert_eq!(commit_ids(&d, "1.0.0"), [shas[1].clone()]);
    assert_eq!(commit_ids(&d, "1.1.0"), [shas[3].clone(), shas[2].clone()]);
    assert_eq!(commit_ids(&d, "1.2.0"), [shas[5].clone(), shas[4].clone()]);
    // Lightweight: the commit's date; annotated: the tagger's, which the fake sets later.
    let v10 = release(&d, "1.0.0");
    let v11 = release(&d, "1.1.0");
    let d10 = instant(v10["dateReleased"].as_str().unwrap());
    let d11 = instant(v11["dateReleased"].as_str().unwrap());
    assert_eq!(d10, instant(&fake_commit_date(&fake, repo, &shas[1])));
    assert!(
        d11 > instant(&fake_commit_date(&fake, repo, &shas[5])),
        "{v11}"
    );
    assert_eq!(instant(v11["dateCreated"].as_str().unwrap()), d11);
    // The tag objects were asked for, and the compare API gave the ranges.
    assert!(!fake.requests_to("/git/tags/").is_empty());
    assert!(!fake.requests_to("/compare/").is_empty());

    let out = shiplog_ok(&d, &["repos", "import", "acme/api", "--dry-run"]);
    assert!(out.contains("Would import 0 releases"), "{out}");
    assert!(out.contains("3 already there"), "{out}");
}

/// The date the fake gives a commit.
fn fake_commit_date(fake: &FakeGithub, repo: &str, sha: &str) -> String {
    let body: Value = reqwest::blocking::get(format!("{}/repos/{repo}/commits/{sha}", fake.url))
        .unwrap()
        .json()
        .unwrap();
    body["commit"]["committer"]["date"]
        .as_str()
        .unwrap()
        .to_string()
}
