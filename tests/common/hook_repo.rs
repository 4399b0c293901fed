//! Real git repositories for the hook and tag tests, driven through the `git` CLI with a fixed
//! identity and increasing commit dates (so "newest first" is well defined), isolated from the
//! user's and the system's git config.

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A repository on disk.
pub struct GitRepo {
    pub path: PathBuf,
    clock: Cell<i64>,
}

/// `git` with the test environment, run in `dir`.
pub fn git_cmd(dir: &Path) -> Command {
    let mut cmd = Command::new("git");
    cmd.current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "Alice Example")
        .env("GIT_AUTHOR_EMAIL", "alice@example.com")
        .env("GIT_COMMITTER_NAME", "Alice Example")
        .env("GIT_COMMITTER_EMAIL", "alice@example.com")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("SHIPLOG_HOOKS")
        .stdin(Stdio::null());
    cmd
}

/// Runs git in `dir` and returns its trimmed stdout; panics with stderr on failure.
pub fn git_in(dir: &Path, args: &[&str]) -> String {
    let out = git_cmd(dir).args(args).output().expect("run git");
    assert!(
        out.status.success(),
        "git {args:?} in {} failed: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

impl GitRepo {
    /// `git init` of a working clone with branch `main` at `path`.
    pub fn init(path: &Path) -> GitRepo {
        std::fs::create_dir_all(path).expect("mkdir");
        git_in(path, &["-c", "init.defaultBranch=main", "init", "-q"]);
        GitRepo::at(path)
    }

    /// `git init --bare` at `path`.
    pub fn init_bare(path: &Path) -> GitRepo {
        std::fs::create_dir_all(path).expect("mkdir");
        git_in(
            path,
            &["-c", "init.defaultBranch=main", "init", "-q", "--bare"],
        );
        GitRepo::at(path)
    }

    /// An existing repository (or linked worktree).
    pub fn at(path: &Path) -> GitRepo {
        GitRepo {
            path: path.to_path_buf(),
            clock: Cell::new(1_700_000_000),
        }
    }

    pub fn git(&self, args: &[&str]) -> String {
        git_in(&self.path, args)
    }

    /// Runs git and returns the whole output, successful or not.
    pub fn git_output(&self, args: &[&str]) -> Output {
        git_cmd(&self.path).args(args).output().expect("run git")
    }

    fn dated(&self) -> Command {
        let t = self.clock.get() + 60;
        self.clock.set(t);
        let mut cmd = git_cmd(&self.path);
        cmd.env("GIT_AUTHOR_DATE", format!("{t} +0200"))
            .env("GIT_COMMITTER_DATE", format!("{t} +0200"));
        cmd
    }

    /// Writes `files` (path, content), commits them as `author` (name, email) and returns the
    /// new commit's sha.
    pub fn commit(&self, message: &str, files: &[(&str, &str)], author: (&str, &str)) -> String {
        for (file, content) in files {
            let full = self.path.join(file);
            if let Some(parent) = full.parent() {
                std::fs::create_dir_all(parent).expect("mkdir");
            }
            std::fs::write(&full, content).expect("write file");
            self.git(&["add", "--", file]);
        }
        let out = self
            .dated()
            .env("GIT_AUTHOR_NAME", author.0)
            .env("GIT_AUTHOR_EMAIL", author.1)
            .args(["commit", "-q", "--allow-empty", "-m", message])
            .output()
            .expect("git commit");
        assert!(
            out.status.success(),
            "git commit failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.head()
    }

    /// `n` commits, each changing `file`, by Alice.
    pub fn commits(&self, n: usize, file: &str) -> String {
        let mut sha = String::new();
        for i in 0..n {
            let content = format!("{file} change {i} {}\n", self.clock.get());
            sha = self.commit(
                &format!("change {file} #{i}"),
                &[(file, &content)],
                ("Alice Example", "alice@example.com"),
            );
        }
        sha
    }

    pub fn head(&self) -> String {
        self.git(&["rev-parse", "HEAD"])
    }

    /// A lightweight tag on HEAD.
    pub fn tag(&self, name: &str) {
        self.git(&["tag", name]);
    }

    /// An annotated tag on HEAD.
    pub fn tag_annotated(&self, name: &str) {
        let out = self
            .dated()
            .args(["tag", "-a", name, "-m", &format!("release {name}")])
            .output()
            .expect("git tag");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `git rev-list --count <range> [-- paths]`.
    pub fn count(&self, range: &str, paths: &[&str]) -> i64 {
        let mut args = vec!["rev-list", "--count", range];
        if !paths.is_empty() {
            args.push("--");
            args.extend(paths);
        }
        self.git(&args).parse().expect("a count")
    }

    /// `git rev-list <range> [-- paths]`, newest first.
    pub fn list(&self, range: &str, paths: &[&str]) -> Vec<String> {
        let mut args = vec!["rev-list", range];
        if !paths.is_empty() {
            args.push("--");
            args.extend(paths);
        }
        self.git(&args).lines().map(str::to_string).collect()
    }

    /// The git common dir (absolute).
    pub fn common_dir(&self) -> PathBuf {
        PathBuf::from(self.git(&["rev-parse", "--path-format=absolute", "--git-common-dir"]))
    }

    /// The files waiting in the spool.
    pub fn spool_files(&self) -> Vec<String> {
        let dir = self.common_dir().join("shiplog/spool");
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .map(|d| {
                d.filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }
}

/// Polls `f` until it returns `Some` or `timeout` passes; panics with `what` on timeout.
pub fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// A config YAML string with `path` quoted safely.
pub fn yaml_path(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', "''"))
}
