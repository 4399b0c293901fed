//! The real, unmodified sentry-cli 3.x `releases set-commits` against a real daemon, in real
//! git repositories: `--local`, `--commit`, `--auto` and `--clear`, each checked against the
//! commits the daemon stored and against `git` itself.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Output;

use common::gitrepo::GitRepo;
use common::sentry_cli::{require_sentry_cli, sentry_cli_command};
use common::{Daemon, stderr, stdout};

fn config_for(repo: &GitRepo) -> String {
    format!(
        "organization: acme
projects:
  - slug: web
repositories:
  - name: acme/web
    path: {}
    url: https://github.com/acme/web
    projects: [web]
    releases:
      - on: none
        initial_depth: 5
",
        repo.path_str()
    )
}

/// A repository whose `origin` is GitHub's acme/web, as in a CI checkout.
fn checkout() -> GitRepo {
    let repo = GitRepo::new();
    repo.git(&["remote", "add", "origin", "git@github.com:acme/web.git"]);
    repo
}

fn run(bin: &Path, d: &Daemon, cwd: &Path, args: &[&str]) -> Output {
    sentry_cli_command(bin, "http://127.0.0.1:9", &d.token)
        .current_dir(cwd)
        .args(args)
        .output()
        .expect("run sentry-cli")
}

fn ok(bin: &Path, d: &Daemon, cwd: &Path, args: &[&str]) -> String {
    let out = run(bin, d, cwd, args);
    assert!(
        out.status.success(),
        "sentry-cli {args:?} failed:\n{}\n{}\n--- daemon log ---\n{}",
        stdout(&out),
        stderr(&out),
        d.log()
    );
    format!("{}{}", stdout(&out), stderr(&out))
}

/// The stored commits of a release, newest first.
fn stored(d: &Daemon, version: &str) -> Vec<String> {
    let db = d.db();
    let mut stmt = db
        .prepare(
            "SELECT c.key FROM release_commits rc
             JOIN releases r ON r.id = rc.release_id JOIN commits c ON c.id = rc.commit_id
             WHERE r.version = ?1 ORDER BY rc.position",
        )
        .unwrap();
    stmt.query_map([version], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn stored_changes(d: &Daemon, sha: &str) -> Vec<String> {
    let db = d.db();
    let mut stmt = db
        .prepare(
            "SELECT f.type || char(9) || f.filename FROM commit_file_changes f
             JOIN commits c ON c.id = f.commit_id WHERE c.key = ?1 ORDER BY 1",
        )
        .unwrap();
    let mut out: Vec<String> = stmt
        .query_map([sha], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    out.sort();
    out
}

fn commit_count(d: &Daemon, version: &str) -> i64 {
    let (status, body) = d.api(
        "GET",
        &format!("organizations/acme/releases/{version}/"),
        None,
    );
    assert_eq!(status, 200, "{body}");
    body["commitCount"].as_i64().unwrap()
}

fn set(list: &[String]) -> BTreeSet<String> {
    list.iter().cloned().collect()
}

#[test]
fn sentry_cli_set_commits_local() {
    let Some(bin) = require_sentry_cli("sentry_cli_set_commits_local") else {
        return;
    };
    let mut repo = checkout();
    repo.write("src/util.js", "u\n");
    repo.commit_as("Dev Two", "two@acme.test", "add util");
    repo.commits(24, "c");
    let d = Daemon::start_with(&config_for(&repo));
    let cwd = repo.path().to_path_buf();
    let cwd = cwd.as_path();

    // First release: sentry-cli's default initial depth, 20.
    let out = ok(
        &bin,
        &d,
        cwd,
        &["releases", "-p", "web", "set-commits", "1.0.0", "--local"],
    );
    assert!(out.contains("Success!"), "{out}");
    let first = stored(&d, "1.0.0");
    assert_eq!(first, repo.rev_list(&["--max-count=20", "HEAD"]));
    for sha in &first {
        assert_eq!(
            stored_changes(&d, sha),
            repo.changes(sha),
            "patch set of {sha}"
        );
    }
    // sentry-cli 3.8 names the repository after the git remote.
    assert_eq!(
        d.count(
            "SELECT count(*) FROM commits c JOIN repositories r ON r.id = c.repository_id
             WHERE r.name = 'origin'"
        ),
        20
    );
    let (_, r) = d.api("GET", "organizations/acme/releases/1.0.0/", None);
    assert_eq!(
        r["lastCommit"]["id"],
        repo.head(),
        "full sha for the next --local run"
    );

    // Next release: the commits since 1.0.0's last commit.
    let old_head = repo.head();
    repo.commits(5, "d");
    std::thread::sleep(std::time::Duration::from_millis(5));
    ok(
        &bin,
        &d,
        cwd,
        &["releases", "-p", "web", "set-commits", "1.1.0", "--local"],
    );
    let range = format!("{old_head}..HEAD");
    assert_eq!(stored(&d, "1.1.0"), repo.rev_list(&[&range]));

    // Re-run after two more commits: still counted from 1.0.0, not from 1.1.0 itself.
    repo.commits(2, "e");
    ok(
        &bin,
        &d,
        cwd,
        &["releases", "-p", "web", "set-commits", "1.1.0", "--local"],
    );
    assert_eq!(stored(&d, "1.1.0"), repo.rev_list(&[&range]));
    assert_eq!(commit_count(&d, "1.1.0"), 7);

    // --initial-depth for a release with no predecessor in its project.
    let out = run(
        &bin,
        &d,
        cwd,
        &[
            "releases",
            "-p",
            "web",
            "set-commits",
            "0.1.0",
            "--local",
            "--initial-depth",
            "3",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn sentry_cli_set_commits_commit_range() {
    let Some(bin) = require_sentry_cli("sentry_cli_set_commits_commit_range") else {
        return;
    };
    let mut repo = checkout();
    let shas = repo.commits(12, "c");
    repo.git(&["checkout", "-q", "-b", "side", &shas[6]]);
    repo.write("side.txt", "s\n");
    repo.commit_as("Dev Two", "two@acme.test", "side work");
    repo.git(&["checkout", "-q", "main"]);
    let merge = repo.merge("side", "merge side");
    let d = Daemon::start_with(&config_for(&repo));

    let spec = format!("acme/web@{}..{}", &shas[3], &merge[..12]);
    let out = ok(
        &bin,
        &d,
        repo.path(),
        &[
            "releases",
            "-p",
            "web",
            "set-commits",
            "2.0.0",
            "--commit",
            &spec,
        ],
    );
    assert!(out.contains("acme/web"), "{out}");
    let range = format!("{}..{merge}", shas[3]);
    assert_eq!(commit_count(&d, "2.0.0"), repo.count(&range));
    assert_eq!(set(&stored(&d, "2.0.0")), set(&repo.rev_list(&[&range])));
    for sha in stored(&d, "2.0.0") {
        assert_eq!(
            stored_changes(&d, &sha),
            repo.changes(&sha),
            "patch set of {sha}"
        );
    }

    // An unknown repository is refused by sentry-cli itself, nothing sent.
    let out = run(
        &bin,
        &d,
        repo.path(),
        &[
            "releases",
            "-p",
            "web",
            "set-commits",
            "2.0.0",
            "--commit",
            "acme/nope@abc",
        ],
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("Unknown repo"), "{}", stderr(&out));
    assert_eq!(commit_count(&d, "2.0.0"), repo.count(&range));

    // A sha the repository does not have: the daemon's 400 detail reaches the user.
    let out = run(
        &bin,
        &d,
        repo.path(),
        &[
            "releases",
            "-p",
            "web",
            "set-commits",
            "2.0.0",
            "--commit",
            "acme/web@deadbeef..cafebabe",
        ],
    );
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("Unknown commit") && err.contains("acme/web"),
        "{err}"
    );
    assert_eq!(commit_count(&d, "2.0.0"), repo.count(&range));
}

#[test]
fn sentry_cli_set_commits_auto_and_clear() {
    let Some(bin) = require_sentry_cli("sentry_cli_set_commits_auto_and_clear") else {
        return;
    };
    let mut repo = checkout();
    let first = repo.commits(8, "c");
    let d = Daemon::start_with(&config_for(&repo));
    let cwd = repo.path().to_path_buf();
    let cwd = cwd.as_path();

    // origin git@github.com:acme/web.git matches url https://github.com/acme/web: the CLI
    // sends HEAD, the daemon expands it (no previous release: the config's initial_depth, 5).
    ok(
        &bin,
        &d,
        cwd,
        &["releases", "-p", "web", "set-commits", "1.0.0", "--auto"],
    );
    assert_eq!(
        stored(&d, "1.0.0"),
        repo.rev_list(&["--max-count=5", "HEAD"])
    );

    // The next release starts at 1.0.0's head.
    let more = repo.commits(3, "d");
    std::thread::sleep(std::time::Duration::from_millis(5));
    ok(
        &bin,
        &d,
        cwd,
        &["releases", "-p", "web", "set-commits", "1.1.0", "--auto"],
    );
    let range = format!("{}..{}", first[7], more[2]);
    assert_eq!(stored(&d, "1.1.0"), repo.rev_list(&[&range]));

    // --clear empties it.
    let out = ok(
        &bin,
        &d,
        cwd,
        &["releases", "-p", "web", "set-commits", "1.1.0", "--clear"],
    );
    assert!(out.contains("Clearing commits"), "{out}");
    assert!(stored(&d, "1.1.0").is_empty());
    assert_eq!(commit_count(&d, "1.1.0"), 0);
    assert_eq!(
        d.count(
            "SELECT count(*) FROM release_head_commits h JOIN releases r ON r.id = h.release_id
             WHERE r.version = '1.1.0'"
        ),
        0
    );
    assert_eq!(stored(&d, "1.0.0").len(), 5, "other releases keep theirs");

    // A checkout whose origin matches nothing falls back to local mode, like against Sentry.
    repo.git(&[
        "remote",
        "set-url",
        "origin",
        "git@github.com:someone/else.git",
    ]);
    let out = ok(
        &bin,
        &d,
        cwd,
        &["releases", "-p", "web", "set-commits", "1.2.0", "--auto"],
    );
    assert!(
        out.contains("Proceeding to find commits from local git tree"),
        "{out}"
    );
    assert!(!stored(&d, "1.2.0").is_empty());
}

#[test]
fn sentry_cli_lists_repos() {
    let Some(bin) = require_sentry_cli("sentry_cli_lists_repos") else {
        return;
    };
    let repo = checkout();
    let d = Daemon::start_with(&config_for(&repo));
    let out = ok(&bin, &d, repo.path(), &["repos", "list"]);
    assert!(out.contains("acme/web"), "{out}");
    assert!(out.contains("https://github.com/acme/web"), "{out}");
}
