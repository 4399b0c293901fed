//! `shiplog hooks install|uninstall|status` and the hook scripts themselves, on real
//! repositories: chaining a user's hook, core.hooksPath, linked worktrees, idempotent
//! re-installs, clean uninstalls, pre-push, and what a daemon makes of what they record.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::hook_repo::{GitRepo, git_cmd, wait_for, yaml_path};
use common::{Daemon, stderr, stdout};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);

/// Runs the CLI with `config` (no daemon needed for hooks commands).
fn shiplog(dir: &Path, config: &str, args: &[&str]) -> Output {
    let path = dir.join("cli-config.yaml");
    std::fs::write(&path, config).unwrap();
    Command::new(env!("CARGO_BIN_EXE_shiplog"))
        .arg("--config")
        .arg(&path)
        .arg("--data-dir")
        .arg(dir.join("cli-data"))
        .args(args)
        .env_remove("SHIPLOG_CONFIG")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}\n{}",
        stderr(&out),
        stdout(&out)
    );
    stdout(&out)
}

fn repo_config(name: &str, path: &Path, on: &str) -> String {
    format!(
        "organization: acme
projects:
  - slug: web
repositories:
  - name: {name}
    path: {}
    projects: [web]
    releases:
      - on: {on}
        tag_pattern: '^v(?P<version>.+)$'
        version: 'web@{{version}}'
schedules: []
",
        yaml_path(path)
    )
}

/// Our hook files and the chained ones, without git's samples.
fn hook_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".sample"))
        .collect();
    names.sort();
    names
}

fn write_hook(path: &Path, body: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

fn commit_recorded(d: &Daemon, sha: &str) {
    wait_for(&format!("commit {sha} to be recorded"), WAIT, || {
        (d.count(&format!("SELECT count(*) FROM commits WHERE key = '{sha}'")) == 1).then_some(())
    });
}

/// `git commit` with nothing on stdout or stderr from the hooks.
fn quiet_commit(repo: &GitRepo, message: &str) -> String {
    let out = git_cmd(&repo.path)
        .args(["commit", "-q", "--allow-empty", "-m", message])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "");
    assert_eq!(stderr(&out), "");
    repo.head()
}

#[test]
fn install_chains_a_user_hook_reinstalls_idempotently_and_uninstalls_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = GitRepo::init(&tmp.path().join("web"));
    repo.commits(1, "a.txt");
    let hooks = repo.path.join(".git/hooks");
    let marker = tmp.path().join("marker");
    let user_hook = format!("echo \"user hook ran: $*\" >> {}", marker.display());
    write_hook(&hooks.join("post-commit"), &user_hook);
    let original = std::fs::read(hooks.join("post-commit")).unwrap();
    let d = Daemon::start_with(&repo_config("acme/web", &repo.path, "tag"));

    let out = ok(d.shiplog(&["hooks", "install"]));
    assert!(out.contains("acme/web"), "{out}");
    assert!(
        out.contains("your hook kept as <hook>.shiplog-prev"),
        "{out}"
    );
    for _ in 0..2 {
        let again = ok(d.shiplog(&["hooks", "install", "acme/web"]));
        assert!(again.contains("already installed"), "{again}");
        assert!(!again.contains("shiplog-prev"), "{again}");
    }
    assert_eq!(
        hook_files(&hooks),
        [
            "post-commit",
            "post-commit.shiplog-prev",
            "post-rewrite",
            "pre-push"
        ]
    );
    assert_eq!(
        std::fs::read(hooks.join("post-commit.shiplog-prev")).unwrap(),
        original
    );

    // Both run: the user's hook (first) and ours (the daemon records the commit).
    let sha = quiet_commit(&repo, "with hooks");
    assert_eq!(
        std::fs::read_to_string(&marker).unwrap(),
        "user hook ran: \n"
    );
    commit_recorded(&d, &sha);
    // And an amend goes through post-rewrite.
    let amended = quiet_commit(&repo, "placeholder");
    let out = git_cmd(&repo.path)
        .args(["commit", "-q", "--amend", "--allow-empty", "-m", "amended"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let amended_to = repo.head();
    assert_ne!(amended, amended_to);
    commit_recorded(&d, &amended_to);

    let status: Value =
        serde_json::from_str(&ok(d.shiplog(&["hooks", "status", "--json"]))).unwrap();
    let post_commit = status[0]["hooks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["name"] == "post-commit")
        .unwrap()
        .clone();
    assert_eq!(post_commit["state"], "installed");
    assert_eq!(post_commit["chained"], true);
    assert_eq!(status[0]["repository"], "acme/web");
    let table = ok(d.shiplog(&["hooks", "status"]));
    assert!(table.contains("reference-transaction  missing"), "{table}");

    let out = ok(d.shiplog(&["hooks", "uninstall", "acme/web"]));
    assert!(out.contains("your previous hook restored"), "{out}");
    assert_eq!(hook_files(&hooks), ["post-commit"]);
    assert_eq!(std::fs::read(hooks.join("post-commit")).unwrap(), original);
    let again = ok(d.shiplog(&["hooks", "uninstall", "acme/web"]));
    assert!(again.contains("no shiplog hooks"), "{again}");

    // The user's hook still works; ours is gone.
    quiet_commit(&repo, "after uninstall");
    assert_eq!(std::fs::read_to_string(&marker).unwrap().lines().count(), 4);
    assert!(repo.spool_files().is_empty());
}

#[test]
fn hooks_go_where_git_looks_core_hooks_path_and_linked_worktrees() {
    let tmp = tempfile::tempdir().unwrap();
    // core.hooksPath, relative to the work tree.
    let a = GitRepo::init(&tmp.path().join("a"));
    a.commits(1, "a.txt");
    a.git(&["config", "core.hooksPath", ".githooks"]);
    // A linked worktree of another repository.
    let b = GitRepo::init(&tmp.path().join("b"));
    b.commits(1, "b.txt");
    let wt_path = tmp.path().join("b-feature");
    b.git(&[
        "worktree",
        "add",
        "-q",
        "-b",
        "feature",
        wt_path.to_str().unwrap(),
    ]);
    let wt = GitRepo::at(&wt_path);

    let config = format!(
        "organization: acme
repositories:
  - name: acme/a
    path: {}
  - name: acme/b
    path: {}
schedules: []
",
        yaml_path(&a.path),
        yaml_path(&b.path)
    );
    let d = Daemon::start_with(&config);

    let out = ok(d.shiplog(&["hooks", "install", "acme/a"]));
    assert!(out.contains("core.hooksPath"), "{out}");
    assert_eq!(
        hook_files(&a.path.join(".githooks")),
        ["post-commit", "post-rewrite", "pre-push"]
    );
    assert!(hook_files(&a.path.join(".git/hooks")).is_empty());
    let sha = quiet_commit(&a, "through core.hooksPath");
    commit_recorded(&d, &sha);

    // Installing from the worktree writes the common hooks dir every worktree shares.
    let out = ok(d.shiplog(&["hooks", "install", wt_path.to_str().unwrap()]));
    let common_hooks = b.path.join(".git/hooks");
    assert!(
        out.contains(&common_hooks.canonicalize().unwrap().display().to_string())
            || out.contains(&common_hooks.display().to_string()),
        "{out}"
    );
    assert_eq!(
        hook_files(&common_hooks),
        ["post-commit", "post-rewrite", "pre-push"]
    );
    let sha = quiet_commit(&wt, "in the worktree");
    commit_recorded(&d, &sha);
    let sha = quiet_commit(&b, "in the main checkout");
    commit_recorded(&d, &sha);
    assert!(b.spool_files().is_empty());
}

#[test]
fn hooks_are_silent_and_shiplog_hooks_0_turns_them_off() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = GitRepo::init(&tmp.path().join("r"));
    repo.commits(1, "a.txt");
    // Not configured: nothing drains the spool, so what the hooks wrote stays visible.
    let out = ok(shiplog(
        tmp.path(),
        "organization: acme\n",
        &[
            "hooks",
            "install",
            repo.path.to_str().unwrap(),
            "--reference-transaction",
        ],
    ));
    assert!(out.contains("not in the config"), "{out}");

    let out = git_cmd(&repo.path)
        .env("SHIPLOG_HOOKS", "0")
        .args(["commit", "-q", "--allow-empty", "-m", "off"])
        .output()
        .unwrap();
    assert!(out.status.success());
    git_cmd(&repo.path)
        .env("SHIPLOG_HOOKS", "0")
        .args(["tag", "v0"])
        .status()
        .unwrap();
    assert!(repo.spool_files().is_empty());

    let sha = quiet_commit(&repo, "on");
    repo.tag_annotated("v1");
    let files = repo.spool_files();
    assert_eq!(files.len(), 2, "{files:?}");
    let spool = repo.common_dir().join("shiplog/spool");
    let commit_file = files
        .iter()
        .find(|f| f.starts_with("post-commit."))
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(spool.join(commit_file)).unwrap(),
        format!("shiplog-spool 1\nhook post-commit\nline {sha}\nend\n")
    );
    let tag_file = files
        .iter()
        .find(|f| f.starts_with("reference-transaction."))
        .unwrap();
    let tag_object = repo.git(&["rev-parse", "v1"]);
    assert_eq!(
        std::fs::read_to_string(spool.join(tag_file)).unwrap(),
        format!(
            "shiplog-spool 1\nhook reference-transaction\narg committed\nline {} {tag_object} refs/tags/v1\nend\n",
            "0".repeat(40)
        )
    );

    let status = ok(shiplog(
        tmp.path(),
        "organization: acme\n",
        &["hooks", "status", repo.path.to_str().unwrap()],
    ));
    assert!(status.contains("spool backlog  2 file(s)"), "{status}");

    // Without a spool dir the repository is not followed (say, a hooks dir shared through a
    // global core.hooksPath): the hooks write nothing and create nothing.
    std::fs::remove_dir_all(&spool).unwrap();
    quiet_commit(&repo, "not followed");
    repo.tag("v2");
    assert!(!spool.exists());
}

/// Pushes `refs` to `origin`.
fn push(repo: &GitRepo, refs: &[&str]) -> Output {
    let mut args = vec!["push", "-q", "origin"];
    args.extend(refs);
    repo.git_output(&args)
}

#[test]
fn pre_push_records_pushed_tags_unless_the_users_hook_refuses_the_push() {
    let tmp = tempfile::tempdir().unwrap();
    let remote = GitRepo::init_bare(&tmp.path().join("remote.git"));
    let remote_url = remote.path.to_str().unwrap().to_string();

    // An unconfigured clone: the spool shows exactly what pre-push recorded.
    let plain = GitRepo::init(&tmp.path().join("plain"));
    plain.git(&["remote", "add", "origin", &remote_url]);
    plain.commits(1, "a.txt");
    let block = tmp.path().join("block");
    write_hook(
        &plain.path.join(".git/hooks/pre-push"),
        &format!(
            "cat >/dev/null\n[ -e {} ] && exit 1\nexit 0",
            block.display()
        ),
    );
    ok(shiplog(
        tmp.path(),
        "organization: acme\n",
        &["hooks", "install", plain.path.to_str().unwrap()],
    ));
    plain.tag("v0.1.0");
    std::fs::write(&block, "").unwrap();
    let refused = push(&plain, &["main", "v0.1.0"]);
    assert!(
        !refused.status.success(),
        "the user's hook must still stop the push"
    );
    assert!(plain.spool_files().is_empty(), "{:?}", plain.spool_files());
    std::fs::remove_file(&block).unwrap();
    let pushed = push(&plain, &["main", "v0.1.0"]);
    assert!(pushed.status.success(), "{}", stderr(&pushed));
    let files = plain.spool_files();
    assert_eq!(files.len(), 1, "{files:?}");
    let text =
        std::fs::read_to_string(plain.common_dir().join("shiplog/spool").join(&files[0])).unwrap();
    let sha = plain.git(&["rev-parse", "v0.1.0"]);
    assert!(
        text.starts_with("shiplog-spool 1\nhook pre-push\narg origin\n"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "line refs/tags/v0.1.0 {sha} refs/tags/v0.1.0 {}",
            "0".repeat(40)
        )),
        "{text}"
    );
    // Branches are not recorded.
    assert!(!text.contains("refs/heads/main"), "{text}");

    // A configured clone with an `on: push` policy: the pushed tag is the release, the
    // local tag alone is not.
    let web = GitRepo::init(&tmp.path().join("web"));
    web.git(&["remote", "add", "origin", &remote_url]);
    web.git(&["fetch", "-q", "origin"]);
    web.git(&["reset", "-q", "--hard", "origin/main"]);
    let d = Daemon::start_with(&repo_config("acme/web", &web.path, "push"));
    ok(d.shiplog(&["hooks", "install", "acme/web"]));
    web.commits(2, "b.txt");
    web.tag("v1.0.0");
    web.commits(1, "b.txt");
    web.tag("v1.1.0");
    let pushed = push(&web, &["main", "v1.0.0"]);
    assert!(pushed.status.success(), "{}", stderr(&pushed));
    wait_for("web@1.0.0", WAIT, || {
        let (status, r) = d.api("GET", "organizations/acme/releases/web@1.0.0/", None);
        (status == 200).then_some(r)
    });
    // v1.1.0 exists locally but was not pushed.
    let (status, _) = d.api("GET", "organizations/acme/releases/web@1.1.0/", None);
    assert_eq!(status, 404);
    let pushed = push(&web, &["v1.1.0"]);
    assert!(pushed.status.success());
    wait_for("web@1.1.0 with one commit", WAIT, || {
        let (status, r) = d.api("GET", "organizations/acme/releases/web@1.1.0/", None);
        (status == 200 && r["commitCount"] == 1).then_some(r)
    });
}

#[test]
fn status_and_install_explain_bad_targets() {
    let tmp = tempfile::tempdir().unwrap();
    let config = "organization: acme
repositories:
  - name: acme/api
    github: acme/api
";
    let out = shiplog(tmp.path(), config, &["hooks", "install", "acme/api"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("no local path"), "{}", stderr(&out));
    let nowhere: PathBuf = tmp.path().join("nowhere");
    let out = shiplog(
        tmp.path(),
        config,
        &["hooks", "status", nowhere.to_str().unwrap()],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("neither a configured repository"),
        "{}",
        stderr(&out)
    );
    std::fs::create_dir_all(&nowhere).unwrap();
    let out = shiplog(
        tmp.path(),
        config,
        &["hooks", "install", nowhere.to_str().unwrap()],
    );
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("is not a git repository"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(!nowhere.join(".git").exists());
}
