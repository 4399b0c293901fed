//! Installing, removing and inspecting shiplog's git hooks (the scripts in the top-level
//! `hooks/` directory, embedded here).
//!
//! The hooks only write: each drops one small file into the repository's spool dir
//! (`<git-common-dir>/shiplog/spool/`) and exits 0, and the daemon reads the spool (DESIGN.md
//! "Hooks write, the daemon reads"). This module puts them in place without breaking what is
//! already there:
//!
//! - **Where.** The hooks dir is what git itself will use, `git rev-parse --path-format=absolute
//!   --git-path hooks`: it honours `core.hooksPath` and, from a linked worktree, names the
//!   common dir's hooks, which every worktree shares. Git is run once, at install time (never
//!   on git's own hot path). A hook finds its repository's spool dir from `GIT_DIR` or `.git`
//!   with builtins alone, and does nothing where there is none: the spool dir (made by install
//!   and by the daemon for each configured repository) is what says "shiplog follows this
//!   repository", so a hooks dir shared through a global `core.hooksPath` costs the other
//!   repositories one shell start and no files.
//! - **Which.** A working clone gets `post-commit`, `post-rewrite` and `pre-push`; a bare
//!   repository gets `post-receive`. `reference-transaction` is optional: git starts it about
//!   five times per commit, which alone costs more than the per-commit budget, and the
//!   daemon's ref watcher and reconcile see local tags without it (BENCHMARKS.md "Git hooks").
//!   `post-update` is not used: post-receive sees the same pushes, with old and new values.
//! - **Other people's hooks.** A hook that is not ours is moved to `<hook>.shiplog-prev` and
//!   our script runs it first with the same arguments and input (and, for the hooks that can
//!   stop git, passes its exit status on). Our files carry the line [`MARKER`], so installing
//!   again only refreshes our scripts (one chained hook, never a chain of ours), and uninstall
//!   removes only ours and puts the previous hook back.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The line that marks a hook file as shiplog's.
pub const MARKER: &str = "# shiplog-hook v1";
/// Marks any version of our hooks, so an older one is recognised and replaced.
const MARKER_PREFIX: &str = "# shiplog-hook v";
/// Suffix of a user's hook that ours runs first.
pub const PREV_SUFFIX: &str = ".shiplog-prev";
/// The spool dir, relative to the git common dir.
pub const SPOOL_DIR: &str = "shiplog/spool";

/// One embedded hook script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Script {
    pub name: &'static str,
    pub text: &'static str,
}

pub const POST_COMMIT: Script = Script {
    name: "post-commit",
    text: include_str!("../hooks/post-commit"),
};
pub const POST_REWRITE: Script = Script {
    name: "post-rewrite",
    text: include_str!("../hooks/post-rewrite"),
};
pub const PRE_PUSH: Script = Script {
    name: "pre-push",
    text: include_str!("../hooks/pre-push"),
};
pub const REFERENCE_TRANSACTION: Script = Script {
    name: "reference-transaction",
    text: include_str!("../hooks/reference-transaction"),
};
pub const POST_RECEIVE: Script = Script {
    name: "post-receive",
    text: include_str!("../hooks/post-receive"),
};

/// Every hook shiplog ships, in the order status lists them.
pub const ALL: [Script; 5] = [
    POST_COMMIT,
    POST_REWRITE,
    PRE_PUSH,
    REFERENCE_TRANSACTION,
    POST_RECEIVE,
];

/// Why hooks could not be installed, removed or inspected.
#[derive(Debug, thiserror::Error)]
pub enum HooksError {
    /// `git` could not be run at all.
    #[error("cannot run git ({0}); install git 2.31 or newer and make sure it is on PATH")]
    GitMissing(std::io::Error),
    /// The path is not inside a git repository (or git is too old for the query).
    #[error("{path} is not a git repository ({detail})")]
    NotARepository { path: PathBuf, detail: String },
    /// Reading or writing a hook file failed.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A foreign hook is in place and a `.shiplog-prev` from earlier is in the way.
    #[error(
        "{hook} is not shiplog's and {prev} already exists; move one of them away and install again"
    )]
    PrevInTheWay { hook: PathBuf, prev: PathBuf },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> HooksError + '_ {
    move |source| HooksError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Where a repository's hooks and spool are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The hooks dir git uses for this repository.
    pub hooks_dir: PathBuf,
    /// The git common dir (the main `.git`, or the bare repository itself).
    pub common_dir: PathBuf,
    /// `true` for a bare repository.
    pub bare: bool,
    /// `core.hooksPath`, when it is set (the hooks dir then lies outside the git dir).
    pub hooks_path: Option<String>,
}

impl Location {
    /// The spool dir the hooks write into.
    pub fn spool_dir(&self) -> PathBuf {
        self.common_dir.join(SPOOL_DIR)
    }

    /// The hooks this repository gets by default.
    pub fn default_scripts(&self) -> Vec<Script> {
        if self.bare {
            vec![POST_RECEIVE]
        } else {
            vec![POST_COMMIT, POST_REWRITE, PRE_PUSH]
        }
    }
}

/// Finds the hooks dir and common dir of the repository at (or containing) `path`.
pub fn locate(path: &Path) -> Result<Location, HooksError> {
    let out = Command::new("git")
        .arg("-C")
        .arg(path)
        .args([
            "rev-parse",
            "--path-format=absolute",
            "--git-path",
            "hooks",
            "--git-common-dir",
            "--is-bare-repository",
        ])
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_COMMON_DIR")
        .output()
        .map_err(HooksError::GitMissing)?;
    let not_repo = |detail: String| HooksError::NotARepository {
        path: path.to_path_buf(),
        detail,
    };
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let first = err.lines().next().unwrap_or("git rev-parse failed").trim();
        return Err(not_repo(first.trim_start_matches("fatal: ").to_owned()));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let (Some(hooks), Some(common), Some(bare)) = (lines.next(), lines.next(), lines.next()) else {
        return Err(not_repo(format!(
            "unexpected git rev-parse output {text:?}"
        )));
    };
    let hooks_path = Command::new("git")
        .arg("-C")
        .arg(path)
        .args(["config", "--get", "core.hooksPath"])
        .env_remove("GIT_DIR")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .filter(|s| !s.is_empty());
    Ok(Location {
        hooks_dir: PathBuf::from(hooks),
        common_dir: PathBuf::from(common),
        bare: bare.trim() == "true",
        hooks_path,
    })
}

/// What a hook file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookState {
    /// No file.
    Missing,
    /// Ours, current version.
    Ours,
    /// Ours, but an older (or edited) version: installing again refreshes it.
    Outdated,
    /// Somebody else's.
    Foreign,
}

impl HookState {
    pub fn as_str(self) -> &'static str {
        match self {
            HookState::Missing => "missing",
            HookState::Ours => "installed",
            HookState::Outdated => "outdated",
            HookState::Foreign => "foreign",
        }
    }
}

/// `true` when the text is one of our hook scripts (any version).
pub fn is_ours(text: &str) -> bool {
    text.lines()
        .any(|l| l.trim_end().starts_with(MARKER_PREFIX))
}

fn state_of(path: &Path, script: &Script) -> HookState {
    // A symlink is followed: a hook managed elsewhere and linked in is foreign unless it is
    // literally our script.
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            if !is_ours(&text) {
                HookState::Foreign
            } else if text == script.text {
                HookState::Ours
            } else {
                HookState::Outdated
            }
        }
        Err(_) if path.symlink_metadata().is_ok() => HookState::Foreign,
        Err(_) => HookState::Missing,
    }
}

fn prev_path(hook: &Path) -> PathBuf {
    let mut name = hook.as_os_str().to_owned();
    name.push(PREV_SUFFIX);
    PathBuf::from(name)
}

/// What happened to one hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookChange {
    pub name: &'static str,
    pub action: Action,
}

/// What install or uninstall did to one hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Wrote our script where there was none.
    Installed,
    /// Moved the user's hook to `.shiplog-prev` and wrote ours, which runs it first.
    Chained,
    /// Ours was there already; refreshed (a no-op when it was current).
    Refreshed,
    /// Removed ours.
    Removed,
    /// Removed ours and put the user's hook back.
    Restored,
    /// Left alone: not ours, or nothing there.
    Untouched,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Installed => "installed",
            Action::Chained => "installed (your hook kept as <hook>.shiplog-prev, runs first)",
            Action::Refreshed => "already installed",
            Action::Removed => "removed",
            Action::Restored => "removed (your previous hook restored)",
            Action::Untouched => "left alone",
        }
    }
}

/// Installs `scripts` into the repository's hooks dir and creates its spool dir.
pub fn install(loc: &Location, scripts: &[Script]) -> Result<Vec<HookChange>, HooksError> {
    std::fs::create_dir_all(&loc.hooks_dir).map_err(io_err(&loc.hooks_dir))?;
    let spool = loc.spool_dir();
    std::fs::create_dir_all(&spool).map_err(io_err(&spool))?;
    let mut changes = Vec::new();
    for script in scripts {
        let path = loc.hooks_dir.join(script.name);
        let prev = prev_path(&path);
        let action = match state_of(&path, script) {
            HookState::Ours | HookState::Outdated => Action::Refreshed,
            HookState::Missing => Action::Installed,
            HookState::Foreign => {
                if prev.symlink_metadata().is_ok() {
                    return Err(HooksError::PrevInTheWay { hook: path, prev });
                }
                std::fs::rename(&path, &prev).map_err(io_err(&path))?;
                Action::Chained
            }
        };
        if state_of(&path, script) != HookState::Ours {
            write_script(&path, script.text)?;
        }
        changes.push(HookChange {
            name: script.name,
            action,
        });
    }
    Ok(changes)
}

/// Writes a script atomically (temp file + rename), executable.
fn write_script(path: &Path, text: &str) -> Result<(), HooksError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".shiplog-tmp");
    let tmp = PathBuf::from(tmp);
    {
        let mut file = std::fs::File::create(&tmp).map_err(io_err(&tmp))?;
        file.write_all(text.as_bytes()).map_err(io_err(&tmp))?;
        file.sync_all().map_err(io_err(&tmp))?;
    }
    set_executable(&tmp)?;
    std::fs::rename(&tmp, path).map_err(io_err(path))
}

#[cfg(unix)]
fn set_executable(path: &Path) -> Result<(), HooksError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).map_err(io_err(path))
}

#[cfg(not(unix))]
fn set_executable(_path: &Path) -> Result<(), HooksError> {
    Ok(())
}

/// Removes our hooks (every kind we ship) and restores the hooks they chained. Foreign hooks
/// are left alone; the spool dir is kept (the daemon may still have files to read).
pub fn uninstall(loc: &Location) -> Result<Vec<HookChange>, HooksError> {
    let mut changes = Vec::new();
    for script in ALL {
        let path = loc.hooks_dir.join(script.name);
        let prev = prev_path(&path);
        let has_prev = prev.symlink_metadata().is_ok();
        let action = match state_of(&path, &script) {
            HookState::Ours | HookState::Outdated => {
                std::fs::remove_file(&path).map_err(io_err(&path))?;
                if has_prev {
                    std::fs::rename(&prev, &path).map_err(io_err(&prev))?;
                    Action::Restored
                } else {
                    Action::Removed
                }
            }
            // Our hook is gone but the one it chained is still parked: put it back.
            HookState::Missing if has_prev => {
                std::fs::rename(&prev, &path).map_err(io_err(&prev))?;
                Action::Restored
            }
            HookState::Missing | HookState::Foreign => Action::Untouched,
        };
        if action != Action::Untouched {
            changes.push(HookChange {
                name: script.name,
                action,
            });
        }
    }
    Ok(changes)
}

/// One hook as `status` reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HookStatus {
    pub name: &'static str,
    pub state: &'static str,
    /// A user's hook that ours runs first.
    pub chained: bool,
    /// Whether git will run it (it is executable).
    pub executable: bool,
}

/// The hooks of a repository and its spool backlog.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Status {
    pub hooks_dir: PathBuf,
    pub spool_dir: PathBuf,
    pub bare: bool,
    pub hooks_path: Option<String>,
    pub hooks: Vec<HookStatus>,
    /// Spool files not yet read by the daemon.
    pub spool_backlog: usize,
}

/// What is installed where.
pub fn status(loc: &Location) -> Status {
    let hooks = ALL
        .iter()
        .map(|script| {
            let path = loc.hooks_dir.join(script.name);
            HookStatus {
                name: script.name,
                state: state_of(&path, script).as_str(),
                chained: prev_path(&path).symlink_metadata().is_ok(),
                executable: is_executable(&path),
            }
        })
        .collect();
    let spool_dir = loc.spool_dir();
    let spool_backlog = std::fs::read_dir(&spool_dir)
        .map(|dir| {
            dir.filter_map(Result::ok)
                .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
                .count()
        })
        .unwrap_or(0);
    Status {
        hooks_dir: loc.hooks_dir.clone(),
        spool_dir,
        bare: loc.bare,
        hooks_path: loc.hooks_path.clone(),
        hooks,
        spool_backlog,
    }
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[cfg(not(unix))]
fn is_executable(path: &Path) -> bool {
    path.is_file()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_script_is_marked_and_posix_sh() {
        for script in ALL {
            assert!(script.text.starts_with("#!/bin/sh\n"), "{}", script.name);
            assert_eq!(script.text.lines().nth(1), Some(MARKER), "{}", script.name);
            assert!(is_ours(script.text));
            // Builtins only: no command substitution, no external tools.
            let code: String = script
                .text
                .lines()
                .filter(|l| !l.trim_start().starts_with('#'))
                .collect::<Vec<_>>()
                .join("\n");
            assert!(!code.replace("$((", "").contains("$("), "{}", script.name);
            assert!(!code.contains('`'), "{}", script.name);
            for tool in ["git ", "cat ", "date", " mv ", "mkdir", "curl", "wget"] {
                assert!(!code.contains(tool), "{} runs {tool}", script.name);
            }
        }
    }

    #[test]
    fn foreign_hooks_are_not_ours() {
        assert!(!is_ours("#!/bin/sh\necho shiplog-hook\n"));
        assert!(is_ours("#!/bin/sh\n# shiplog-hook v0\n"));
    }

    #[test]
    fn install_chains_once_and_uninstall_restores() {
        let dir = tempfile::tempdir().unwrap();
        let loc = Location {
            hooks_dir: dir.path().join("hooks"),
            common_dir: dir.path().to_path_buf(),
            bare: false,
            hooks_path: None,
        };
        std::fs::create_dir_all(&loc.hooks_dir).unwrap();
        let user = loc.hooks_dir.join("pre-push");
        std::fs::write(&user, "#!/bin/sh\nexit 1\n").unwrap();
        let first = install(&loc, &loc.default_scripts()).unwrap();
        assert_eq!(first[2].action, Action::Chained);
        let second = install(&loc, &loc.default_scripts()).unwrap();
        assert!(second.iter().all(|c| c.action == Action::Refreshed));
        let prev = loc.hooks_dir.join("pre-push.shiplog-prev");
        assert_eq!(
            std::fs::read_to_string(&prev).unwrap(),
            "#!/bin/sh\nexit 1\n"
        );
        assert!(
            !loc.hooks_dir
                .join("pre-push.shiplog-prev.shiplog-prev")
                .exists()
        );
        let st = status(&loc);
        assert!(st.hooks.iter().any(|h| h.name == "pre-push" && h.chained));
        assert!(loc.spool_dir().is_dir());
        uninstall(&loc).unwrap();
        assert_eq!(
            std::fs::read_to_string(&user).unwrap(),
            "#!/bin/sh\nexit 1\n"
        );
        assert!(!prev.exists());
        assert!(!loc.hooks_dir.join("post-commit").exists());
    }
}
