//! Releases made by git tags: real repositories made with the git CLI, a real daemon whose
//! config registers them, and the API (or the daemon's database) polled with a deadline.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::hook_repo::{GitRepo, git_in, wait_for, yaml_path};
use common::{Daemon, stderr};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);

fn web_config(repo: &Path, initial_depth: usize) -> String {
    format!(
        "organization: acme
projects:
  - slug: web
  - slug: ui
repositories:
  - name: acme/web
    path: {}
    projects: [web]
    releases:
      - tag_pattern: '^v(?P<version>.+)$'
        version: 'web@{{version}}'
        initial_depth: {initial_depth}
schedules: []
",
        yaml_path(repo)
    )
}

/// The release, once the API has it with `commits` commits.
fn release_with(d: &Daemon, version: &str, commits: i64) -> Value {
    wait_for(
        &format!("release {version} with {commits} commits"),
        WAIT,
        || {
            let (status, r) = d.api(
                "GET",
                &format!("organizations/acme/releases/{version}/"),
                None,
            );
            (status == 200 && r["commitCount"] == commits).then_some(r)
        },
    )
}

fn release_exists(d: &Daemon, version: &str) -> bool {
    d.api(
        "GET",
        &format!("organizations/acme/releases/{version}/"),
        None,
    )
    .0 == 200
}

/// The shas of a release's commits, newest first, from the daemon's database.
fn release_shas(d: &Daemon, version: &str) -> Vec<String> {
    let db = d.db();
    let mut stmt = db
        .prepare(
            "SELECT c.key FROM release_commits rc
             JOIN commits c ON c.id = rc.commit_id
             JOIN releases r ON r.id = rc.release_id
             WHERE r.version = ?1 ORDER BY rc.position",
        )
        .unwrap();
    stmt.query_map([version], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// The release's head commit for its repository.
fn head_commit(d: &Daemon, version: &str) -> String {
    d.db()
        .query_row(
            "SELECT c.key FROM release_head_commits h
             JOIN commits c ON c.id = h.commit_id
             JOIN releases r ON r.id = h.release_id WHERE r.version = ?1",
            [version],
            |r| r.get(0),
        )
        .unwrap()
}

/// The e-mails of the release's authors (the `authors` column).
fn author_emails(d: &Daemon, version: &str) -> Vec<String> {
    let db = d.db();
    let ids: String = db
        .query_row(
            "SELECT authors FROM releases WHERE version = ?1",
            [version],
            |r| r.get(0),
        )
        .unwrap();
    let ids: Vec<String> = serde_json::from_str(&ids).unwrap();
    let mut emails: Vec<String> = ids
        .iter()
        .map(|id| {
            db.query_row(
                "SELECT email FROM commit_authors WHERE id = ?1",
                [id.parse::<i64>().unwrap()],
                |r| r.get(0),
            )
            .unwrap()
        })
        .collect();
    emails.sort();
    emails
}

/// A commit's stored file changes, path → type.
fn patch_set(d: &Daemon, sha: &str) -> BTreeMap<String, String> {
    let db = d.db();
    let mut stmt = db
        .prepare(
            "SELECT f.filename, f.type FROM commit_file_changes f
             JOIN commits c ON c.id = f.commit_id WHERE c.key = ?1",
        )
        .unwrap();
    stmt.query_map([sha], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn bob() -> (&'static str, &'static str) {
    ("Bob Builder", "bob@example.com")
}

#[test]
fn three_tags_make_three_releases_with_the_commits_between_them() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = GitRepo::init(&tmp.path().join("web"));
    repo.commit(
        "initial",
        &[("src/old.js", "old\n"), ("README.md", "hello\n")],
        bob(),
    );
    repo.commits(4, "src/app.js");
    let d = Daemon::start_with(&web_config(&repo.path, 3));

    // First release: no predecessor, so the newest `initial_depth` (3) commits.
    repo.commit("readme", &[("README.md", "hello again\n")], bob());
    repo.commits(2, "src/app.js");
    repo.tag("v1.0.0");
    release_with(&d, "web@1.0.0", 3);
    assert_eq!(release_shas(&d, "web@1.0.0"), repo.list("v1.0.0", &[])[..3]);
    assert_eq!(head_commit(&d, "web@1.0.0"), repo.head());

    // Second: an annotated tag; everything since v1.0.0, by two authors, with a patch set
    // that adds, modifies and deletes.
    repo.git(&["rm", "-q", "src/old.js"]);
    let carol = repo.commit(
        "rework\n\nAdds new.js, drops old.js.",
        &[("src/new.js", "new\n"), ("README.md", "changed\n")],
        ("Carol", "Carol@Example.com"),
    );
    repo.commits(3, "src/app.js");
    repo.tag_annotated("v1.1.0");
    let expected = repo.count("v1.0.0..v1.1.0", &[]);
    assert_eq!(expected, 4);
    let r = release_with(&d, "web@1.1.0", expected);
    assert_eq!(r["ref"], "v1.1.0");
    assert_eq!(r["projects"][0]["slug"], "web");
    assert_eq!(
        release_shas(&d, "web@1.1.0"),
        repo.list("v1.0.0..v1.1.0", &[])
    );
    // The release's head is the tag's commit, not the tag object.
    assert_eq!(
        head_commit(&d, "web@1.1.0"),
        repo.git(&["rev-parse", "v1.1.0^{commit}"])
    );
    assert_eq!(
        author_emails(&d, "web@1.1.0"),
        ["alice@example.com", "carol@example.com"]
    );
    // The same through the API: the release's authors and its commit list.
    let mut api_authors: Vec<String> = r["authors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["email"].as_str().unwrap().to_string())
        .collect();
    api_authors.sort();
    assert_eq!(api_authors, ["alice@example.com", "carol@example.com"]);
    assert_eq!(
        r["lastCommit"]["id"],
        repo.git(&["rev-parse", "v1.1.0^{commit}"])
    );
    let (status, listed) = d.api(
        "GET",
        "organizations/acme/releases/web@1.1.0/commits/",
        None,
    );
    assert_eq!(status, 200, "{listed}");
    let listed: Vec<String> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(listed, repo.list("v1.0.0..v1.1.0", &[]));
    let changes = patch_set(&d, &carol);
    assert_eq!(changes["src/new.js"], "A");
    assert_eq!(changes["README.md"], "M");
    assert_eq!(changes["src/old.js"], "D");
    assert_eq!(changes.len(), 3);

    // Third.
    repo.commits(5, "src/app.js");
    repo.tag("v1.2.0");
    let expected = repo.count("v1.1.0..v1.2.0", &[]);
    release_with(&d, "web@1.2.0", expected);
    assert_eq!(
        release_shas(&d, "web@1.2.0"),
        repo.list("v1.1.0..v1.2.0", &[])
    );
    assert_eq!(author_emails(&d, "web@1.2.0"), ["alice@example.com"]);
    assert_eq!(d.count("SELECT count(*) FROM releases"), 3);
}

#[test]
fn monorepo_policies_keep_their_own_lines_and_paths() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = GitRepo::init(&tmp.path().join("mono"));
    repo.commit("init", &[("README.md", "mono\n")], bob());
    let config = format!(
        "organization: acme
projects:
  - slug: web
  - slug: ui
repositories:
  - name: acme/mono
    path: {}
    projects: [web]
    releases:
      - tag_pattern: '^v(?P<version>.+)$'
        version: 'web@{{version}}'
        initial_depth: 2
      - tag_pattern: '^ui-(?P<version>.+)$'
        version: 'ui@{{version}}'
        projects: [ui]
        paths: [packages/ui]
        initial_depth: 3
schedules: []
",
        yaml_path(&repo.path)
    );
    let d = Daemon::start_with(&config);

    repo.commits(2, "packages/ui/button.js");
    repo.commits(2, "apps/web/index.js");
    repo.commits(2, "packages/ui/input.js");
    repo.tag("ui-0.1.0");
    // First ui release: the newest 3 commits that touched packages/ui.
    let first_ui = repo.list("ui-0.1.0", &["packages/ui"]);
    release_with(&d, "ui@0.1.0", 3);
    assert_eq!(release_shas(&d, "ui@0.1.0"), first_ui[..3]);

    repo.tag("v1.0.0");
    release_with(&d, "web@1.0.0", 2);

    repo.commits(3, "apps/web/index.js");
    repo.commits(2, "packages/ui/button.js");
    repo.commit(
        "both",
        &[("apps/web/x.js", "x\n"), ("packages/ui/y.js", "y\n")],
        bob(),
    );
    repo.tag("v1.1.0");
    repo.tag("ui-0.2.0");

    // ui@0.2.0 follows ui@0.1.0 (not v1.0.0) and only has commits touching packages/ui.
    let ui_range = repo.count("ui-0.1.0..ui-0.2.0", &["packages/ui"]);
    assert_eq!(ui_range, 3);
    release_with(&d, "ui@0.2.0", ui_range);
    assert_eq!(
        release_shas(&d, "ui@0.2.0"),
        repo.list("ui-0.1.0..ui-0.2.0", &["packages/ui"])
    );
    // web@1.1.0 follows web@1.0.0 with every commit.
    let web_range = repo.count("v1.0.0..v1.1.0", &[]);
    assert_eq!(web_range, 6);
    let web = release_with(&d, "web@1.1.0", web_range);
    assert_eq!(web["projects"][0]["slug"], "web");
    let (_, ui) = d.api("GET", "organizations/acme/releases/ui@0.2.0/", None);
    assert_eq!(ui["projects"][0]["slug"], "ui");
    assert_eq!(ui["projects"].as_array().unwrap().len(), 1);
    // A tag no policy wants makes nothing.
    repo.tag("nightly");
    repo.tag("v2.0.0");
    release_with(&d, "web@2.0.0", 0);
    assert_eq!(d.count("SELECT count(*) FROM releases"), 5);
}

#[test]
fn a_tag_made_while_the_daemon_is_stopped_becomes_a_release_at_the_next_start() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = GitRepo::init(&tmp.path().join("web"));
    repo.commits(3, "a.txt");
    repo.tag("v0.9.0");
    let mut d = Daemon::start_with(&web_config(&repo.path, 20));
    // A tag that existed before shiplog first looked is history, not a release.
    repo.commits(2, "a.txt");
    repo.tag("v1.0.0");
    release_with(&d, "web@1.0.0", 5);
    assert!(!release_exists(&d, "web@0.9.0"));

    d.stop();
    repo.commits(4, "a.txt");
    repo.tag_annotated("v1.9.0");
    repo.commits(1, "a.txt");
    // Sorts before v1.9.0 by name: tags found together are applied oldest commit first, so
    // each release finds its predecessor already made.
    repo.tag("v1.10.0");
    // Packing refs moves the tags into packed-refs; reconcile reads both.
    repo.git(&["pack-refs", "--all"]);
    d.restart();
    release_with(&d, "web@1.9.0", repo.count("v1.0.0..v1.9.0", &[]));
    release_with(&d, "web@1.10.0", repo.count("v1.9.0..v1.10.0", &[]));
    assert_eq!(repo.count("v1.9.0..v1.10.0", &[]), 1);
    assert!(!release_exists(&d, "web@0.9.0"));

    // Deleting a tag leaves its release.
    repo.git(&["tag", "-d", "v1.10.0"]);
    d.stop();
    d.restart();
    wait_for("the deletion to be applied", WAIT, || {
        let n = d.count("SELECT count(*) FROM ref_snapshots WHERE ref_name = 'refs/tags/v1.10.0'");
        (n == 0).then_some(())
    });
    assert!(release_exists(&d, "web@1.10.0"));
    assert!(d.log().contains("tag deleted"), "{}", d.log());
}

/// Runs `shiplog serve` on a config that must be refused; returns its stderr.
fn refused(d: &Daemon, config: &str) -> String {
    let path = d.dir().join("bad.yaml");
    std::fs::write(&path, config).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_shiplog"))
        .arg("--config")
        .arg(&path)
        .arg("--data-dir")
        .arg(d.data_dir())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env_remove("SHIPLOG_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(!status.success());
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("shiplog serve accepted a bad config");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    stderr(&child.wait_with_output().unwrap())
}

#[test]
fn a_bad_pattern_or_path_stops_the_daemon_with_one_line_and_keeps_the_data() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = GitRepo::init(&tmp.path().join("web"));
    repo.commits(2, "a.txt");
    let mut d = Daemon::start_with(&web_config(&repo.path, 20));
    repo.tag("v1.0.0");
    release_with(&d, "web@1.0.0", 2);
    d.stop();

    let bad_pattern =
        web_config(&repo.path, 20).replace("'^v(?P<version>.+)$'", "'^v(?P<version>.+$'");
    let err = refused(&d, &bad_pattern);
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(
        lines[0].contains("repositories[0].releases[0].tag_pattern"),
        "{err}"
    );
    assert!(lines[0].contains("not a valid regular expression"), "{err}");

    let not_a_repo = tmp.path().join("plain-dir");
    std::fs::create_dir_all(&not_a_repo).unwrap();
    let err = refused(&d, &web_config(&not_a_repo, 20));
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(lines[0].contains("repositories[0].path"), "{err}");
    assert!(lines[0].contains("is not a git repository"), "{err}");

    // Nothing stored was touched: the good config starts again on the same data.
    d.restart();
    release_with(&d, "web@1.0.0", 2);
    assert_eq!(d.count("SELECT count(*) FROM releases"), 1);
}

#[test]
fn the_same_tag_seen_by_every_path_is_one_release() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = GitRepo::init(&tmp.path().join("web"));
    repo.commits(3, "a.txt");
    let mut d = Daemon::start_with(&web_config(&repo.path, 20));
    // The reference-transaction hook reports the tag too, beside the watcher.
    let out = d.shiplog(&["hooks", "install", "acme/web", "--reference-transaction"]);
    assert!(out.status.success(), "{}", stderr(&out));

    repo.commits(2, "a.txt");
    repo.tag_annotated("v1.0.0");
    release_with(&d, "web@1.0.0", 5);
    let shas = release_shas(&d, "web@1.0.0");
    let tag_object = repo.git(&["rev-parse", "v1.0.0"]);
    let spool_copy = format!(
        "shiplog-spool 1\nhook reference-transaction\narg committed\nline {} {tag_object} refs/tags/v1.0.0\nend\n",
        "0".repeat(40)
    );

    // The hook's record again (a replayed spool file), a restart (start-up reconcile), and
    // the push of the tag (pre-push; no `on: push` policy wants it).
    let spool = repo.common_dir().join("shiplog/spool");
    std::fs::write(spool.join("reference-transaction.replayed.1"), &spool_copy).unwrap();
    let remote = GitRepo::init_bare(&tmp.path().join("remote.git"));
    repo.git(&["remote", "add", "origin", remote.path.to_str().unwrap()]);
    repo.git(&["push", "-q", "origin", "main", "v1.0.0"]);
    wait_for("the replayed spool file to be read", WAIT, || {
        repo.spool_files().is_empty().then_some(())
    });
    d.restart();
    wait_for("start-up reconcile", WAIT, || {
        d.log().contains("start-up reconciled").then_some(())
    });
    wait_for("the inbox to be applied", WAIT, || {
        (d.count("SELECT count(*) FROM inbox WHERE processed_at IS NULL") == 0).then_some(())
    });

    assert_eq!(d.count("SELECT count(*) FROM releases"), 1);
    assert_eq!(release_shas(&d, "web@1.0.0"), shas);
    // One inbox entry for the creation, however many reported it.
    assert_eq!(
        d.count(
            "SELECT count(*) FROM inbox WHERE kind = 'git.refs'
             AND idem_key LIKE 'git.refs:acme/web:refs/tags/v1.0.0:%'"
        ),
        1
    );
    assert_eq!(d.count("SELECT count(*) FROM release_sources"), 1);
    assert_eq!(
        d.count("SELECT count(*) FROM inbox WHERE processed_at IS NULL OR last_error IS NOT NULL"),
        0
    );
}

#[test]
fn a_push_into_a_bare_repository_makes_the_release_of_an_on_push_policy() {
    let tmp = tempfile::tempdir().unwrap();
    let server = GitRepo::init_bare(&tmp.path().join("server.git"));
    let config = format!(
        "organization: acme
projects:
  - slug: web
repositories:
  - name: acme/server
    path: {}
    projects: [web]
    releases:
      - on: push
        tag_pattern: '^v(?P<version>.+)$'
        version: 'server@{{version}}'
        initial_depth: 2
schedules: []
",
        yaml_path(&server.path)
    );
    let d = Daemon::start_with(&config);
    let out = d.shiplog(&["hooks", "install", "acme/server"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        common::stdout(&out).contains("post-receive"),
        "{}",
        common::stdout(&out)
    );
    assert!(server.path.join("hooks/post-receive").exists());
    assert!(!server.path.join("hooks/post-commit").exists());

    git_in(
        tmp.path(),
        &["clone", "-q", server.path.to_str().unwrap(), "client"],
    );
    let client = GitRepo::at(&tmp.path().join("client"));
    client.git(&["checkout", "-q", "-b", "main"]);
    client.commits(3, "a.txt");
    client.tag_annotated("v1.0.0");
    let out = client.git_output(&["push", "origin", "main", "v1.0.0"]);
    assert!(out.status.success(), "{}", stderr(&out));
    // The hook says nothing on the push.
    assert!(!stderr(&out).contains("remote:"), "{}", stderr(&out));
    release_with(&d, "server@1.0.0", 2);

    client.commits(4, "a.txt");
    client.tag("v1.1.0");
    client.git(&["push", "-q", "origin", "main", "v1.1.0"]);
    release_with(&d, "server@1.1.0", client.count("v1.0.0..v1.1.0", &[]));
    assert_eq!(
        release_shas(&d, "server@1.1.0"),
        client.list("v1.0.0..v1.1.0", &[])
    );
    assert!(server.spool_files().is_empty());
}
