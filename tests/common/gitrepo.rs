//! Real git repositories in temp dirs, made with the `git` CLI, for tests that need commits.
//!
//! Every git command runs with a fixed identity, no system or global config, `main` as the
//! default branch and no signing, so tests behave the same on every machine. Commits get
//! increasing author and committer times one second apart in a `+02:00` offset unless a test
//! sets them, so "newest first" is well defined.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A repository in its own temp dir.
pub struct GitRepo {
    _dir: tempfile::TempDir,
    path: PathBuf,
    tick: u32,
}

/// Runs git in `dir` with the test environment; panics with git's stderr on failure.
pub fn git_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let mut cmd = Command::new("git");
    cmd.current_dir(dir)
        .args([
            "-c",
            "init.defaultBranch=main",
            "-c",
            "user.name=Committer",
            "-c",
            "user.email=committer@acme.test",
            "-c",
            "commit.gpgsign=false",
            "-c",
            "tag.gpgsign=false",
        ])
        .args(args)
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_INDEX_FILE")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run git");
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

impl GitRepo {
    /// `git init` in a new temp dir (a work tree).
    pub fn new() -> GitRepo {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("web");
        std::fs::create_dir(&path).expect("repo dir");
        let repo = GitRepo {
            _dir: dir,
            path,
            tick: 0,
        };
        repo.git(&["init", "-q"]);
        repo
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn path_str(&self) -> &str {
        self.path.to_str().expect("utf-8 temp path")
    }

    pub fn git(&self, args: &[&str]) -> String {
        git_in(&self.path, args, &[])
    }

    /// Writes a file (creating directories).
    pub fn write(&self, file: &str, text: &str) {
        let p = self.path.join(file);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write file");
    }

    pub fn remove(&self, file: &str) {
        std::fs::remove_file(self.path.join(file)).expect("remove file");
    }

    pub fn rename(&self, from: &str, to: &str) {
        std::fs::rename(self.path.join(from), self.path.join(to)).expect("rename");
    }

    /// The time the next commit gets.
    fn next_date(&mut self) -> String {
        self.tick += 1;
        format!(
            "2024-01-02T{:02}:{:02}:{:02}+02:00",
            10 + self.tick / 3600,
            (self.tick / 60) % 60,
            self.tick % 60
        )
    }

    /// Commits everything in the work tree as `name <email>`; returns the new sha.
    pub fn commit_as(&mut self, name: &str, email: &str, message: &str) -> String {
        let date = self.next_date();
        self.git(&["add", "-A"]);
        git_in(
            &self.path,
            &["commit", "-q", "--allow-empty", "-m", message],
            &[
                ("GIT_AUTHOR_NAME", name),
                ("GIT_AUTHOR_EMAIL", email),
                ("GIT_AUTHOR_DATE", &date),
                ("GIT_COMMITTER_DATE", &date),
            ],
        );
        self.head()
    }

    /// Commits as "Dev One <dev@acme.test>".
    pub fn commit(&mut self, message: &str) -> String {
        self.commit_as("Dev One", "dev@acme.test", message)
    }

    /// `git merge --no-ff` of `branch` into the current branch; returns the merge sha.
    pub fn merge(&mut self, branch: &str, message: &str) -> String {
        let date = self.next_date();
        git_in(
            &self.path,
            &["merge", "-q", "--no-ff", "-m", message, branch],
            &[("GIT_AUTHOR_DATE", &date), ("GIT_COMMITTER_DATE", &date)],
        );
        self.head()
    }

    pub fn head(&self) -> String {
        self.git(&["rev-parse", "HEAD"])
    }

    pub fn rev_parse(&self, spec: &str) -> String {
        self.git(&["rev-parse", spec])
    }

    /// `git rev-list --count <range>`.
    pub fn count(&self, range: &str) -> i64 {
        self.git(&["rev-list", "--count", range])
            .parse()
            .expect("count")
    }

    /// `git rev-list <args>` as a list of shas, newest first.
    pub fn rev_list(&self, args: &[&str]) -> Vec<String> {
        let mut all = vec!["rev-list"];
        all.extend_from_slice(args);
        self.git(&all)
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect()
    }

    /// A commit's changes against its first parent (or the empty tree for a root), as sorted
    /// `X\tpath` lines, renames as D + A.
    pub fn changes(&self, sha: &str) -> Vec<String> {
        let parents = self.git(&["rev-list", "--parents", "-n1", sha]);
        let base = if parents.split(' ').count() > 1 {
            format!("{sha}^1")
        } else {
            "4b825dc642cb6eb9a060e54bf8d69288fbee4904".to_string()
        };
        let mut out: Vec<String> = self
            .git(&["diff", "--name-status", "--no-renames", &base, sha])
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect();
        out.sort();
        out
    }

    /// Makes `n` commits, each changing `app.js`; returns their shas, oldest first.
    pub fn commits(&mut self, n: usize, prefix: &str) -> Vec<String> {
        (0..n)
            .map(|i| {
                self.write("app.js", &format!("{prefix} {i}\n"));
                self.commit(&format!("{prefix} {i}: change app\n\nbody line for {i}\n"))
            })
            .collect()
    }
}

impl Default for GitRepo {
    fn default() -> Self {
        GitRepo::new()
    }
}
