//! The spool: the files shiplog's git hooks write and the daemon reads.
//!
//! A hook cannot wait for the daemon (it may be stopped, and git must not slow down), so it
//! writes what it saw into `<git-common-dir>/shiplog/spool/` and exits. The format is a few
//! text lines, easy to write with shell builtins alone:
//!
//! ```text
//! shiplog-spool 1
//! hook pre-push
//! arg origin
//! arg git@example.com:acme/web.git
//! line refs/tags/v1.2.0 9f3c... refs/tags/v1.2.0 0000...
//! end
//! ```
//!
//! The hook creates the file under a fresh name with the shell's noclobber (an `O_EXCL`
//! open), which is atomic and unique without starting `mv`; the price is that a reader can
//! see a file while it is being written, so a file counts only once its `end` line is there.
//! A file that stays incomplete (the hook was killed) is set aside as `*.bad` after
//! [`STALE_AFTER`], like one that does not parse.
//!
//! Files are turned into pipeline events ([`crate::pipeline::git`]) and deleted only after the
//! inbox accepted them, so a crash between the two replays the file, which the events'
//! idempotency keys make harmless.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::pipeline::git::{CommitsCreated, RefSeen, RefUpdated};

/// An incomplete file older than this is abandoned.
pub const STALE_AFTER: Duration = Duration::from_secs(600);
/// Suffix given to files that cannot be read as spool records.
pub const BAD_SUFFIX: &str = ".bad";

/// One hook's record.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record {
    pub hook: String,
    pub args: Vec<String>,
    pub lines: Vec<String>,
}

/// What a spool file holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    Complete(Record),
    /// No `end` line yet: being written, or abandoned.
    Incomplete,
    /// Not a spool record.
    Malformed(String),
}

/// Parses a spool file.
pub fn parse(text: &str) -> Parsed {
    let mut lines = text.lines();
    match lines.next() {
        Some("shiplog-spool 1") => {}
        Some(other) if other.starts_with("shiplog-spool ") => {
            return Parsed::Malformed(format!("unknown spool version {other:?}"));
        }
        None | Some("") => return Parsed::Incomplete,
        Some(other) => return Parsed::Malformed(format!("not a spool file (starts {other:?})")),
    }
    let mut record = Record::default();
    for line in lines {
        if line == "end" {
            if record.hook.is_empty() {
                return Parsed::Malformed("no hook line".into());
            }
            return Parsed::Complete(record);
        }
        let (key, value) = line.split_once(' ').unwrap_or((line, ""));
        match key {
            "hook" => record.hook = value.to_owned(),
            "arg" => record.args.push(value.to_owned()),
            "line" => record.lines.push(value.to_owned()),
            // Newer hooks may add keys; ignore what we do not know.
            _ => {}
        }
    }
    Parsed::Incomplete
}

/// The events of one spool record.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Events {
    pub refs: Vec<RefUpdated>,
    pub commits: Option<CommitsCreated>,
}

fn is_zero(sha: &str) -> bool {
    sha.bytes().all(|b| b == b'0')
}

fn sha(text: &str) -> Option<String> {
    (!text.is_empty() && !is_zero(text)).then(|| text.to_owned())
}

/// Turns a record of repository `repository` into events. `name` is the spool file's name,
/// which makes a `HEAD` (unresolved) commit unique.
pub fn events(repository: &str, name: &str, record: &Record) -> Result<Events, String> {
    let mut out = Events::default();
    match record.hook.as_str() {
        "post-commit" | "post-rewrite" => {
            let mut shas: Vec<String> = Vec::new();
            for line in &record.lines {
                let fields: Vec<&str> = line.split_whitespace().collect();
                // post-commit: `<sha>`; post-rewrite: `<old> <new> [extra]`.
                let new = if record.hook == "post-commit" {
                    fields.first()
                } else {
                    fields.get(1)
                };
                if let Some(new) = new
                    && !shas.iter().any(|s| s == new)
                {
                    shas.push((*new).to_owned());
                }
            }
            if !shas.is_empty() {
                out.commits = Some(CommitsCreated {
                    repository: repository.to_owned(),
                    commits: shas,
                    nonce: Some(name.to_owned()),
                });
            }
        }
        "reference-transaction" | "post-receive" => {
            let seen = if record.hook == "post-receive" {
                RefSeen::Received
            } else {
                RefSeen::Local
            };
            for line in &record.lines {
                let fields: Vec<&str> = line.split_whitespace().collect();
                let [old, new, name] = fields[..] else {
                    return Err(format!("bad {} line {line:?}", record.hook));
                };
                out.refs.push(RefUpdated {
                    repository: repository.to_owned(),
                    ref_name: name.to_owned(),
                    old: sha(old),
                    new: sha(new),
                    seen,
                    source: "hook".into(),
                });
            }
        }
        "pre-push" => {
            for line in &record.lines {
                let fields: Vec<&str> = line.split_whitespace().collect();
                let [_local_ref, local, remote_ref, remote] = fields[..] else {
                    return Err(format!("bad pre-push line {line:?}"));
                };
                out.refs.push(RefUpdated {
                    repository: repository.to_owned(),
                    ref_name: remote_ref.to_owned(),
                    old: sha(remote),
                    new: sha(local),
                    seen: RefSeen::Pushed,
                    source: "hook".into(),
                });
            }
        }
        other => return Err(format!("unknown hook {other:?}")),
    }
    Ok(out)
}

/// A spool file waiting to be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub path: PathBuf,
    pub name: String,
    pub modified: SystemTime,
}

/// The files of a spool dir in the order the hooks wrote them (modification time, then
/// name), without set-aside `*.bad` files. A missing dir is empty.
pub fn pending(dir: &Path) -> std::io::Result<Vec<Pending>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || name.ends_with(BAD_SUFFIX) {
            continue;
        }
        let Ok(meta) = entry.metadata() else { continue };
        if !meta.is_file() {
            continue;
        }
        files.push(Pending {
            path: entry.path(),
            name,
            modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
        });
    }
    files.sort_by(|a, b| a.modified.cmp(&b.modified).then(a.name.cmp(&b.name)));
    Ok(files)
}

/// Sets a file aside as unreadable, keeping it for a human to look at.
pub fn set_aside(file: &Pending) {
    let mut bad = file.path.as_os_str().to_owned();
    bad.push(BAD_SUFFIX);
    if let Err(e) = std::fs::rename(&file.path, PathBuf::from(bad)) {
        tracing::warn!(file = %file.path.display(), error = %e, "cannot set aside a bad spool file");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const Z: &str = "0000000000000000000000000000000000000000";
    const A: &str = "1111111111111111111111111111111111111111";
    const B: &str = "2222222222222222222222222222222222222222";

    #[test]
    fn parses_complete_and_waits_for_incomplete() {
        let text = format!("shiplog-spool 1\nhook post-commit\nline {A}\nend\n");
        let Parsed::Complete(r) = parse(&text) else {
            panic!()
        };
        assert_eq!(r.hook, "post-commit");
        assert_eq!(r.lines, vec![A.to_string()]);
        assert_eq!(parse(""), Parsed::Incomplete);
        assert_eq!(
            parse("shiplog-spool 1\nhook post-commit\n"),
            Parsed::Incomplete
        );
        assert!(matches!(parse("hello\n"), Parsed::Malformed(_)));
        assert!(matches!(
            parse("shiplog-spool 9\nend\n"),
            Parsed::Malformed(_)
        ));
    }

    #[test]
    fn reference_transaction_lines_become_ref_events() {
        let r = Record {
            hook: "reference-transaction".into(),
            args: vec!["committed".into()],
            lines: vec![
                format!("{Z} {A} refs/tags/v1"),
                format!("{Z} {Z} refs/tags/v0"),
            ],
        };
        let e = events("acme/web", "f", &r).unwrap();
        assert_eq!(e.refs.len(), 2);
        assert_eq!(e.refs[0].old, None);
        assert_eq!(e.refs[0].new.as_deref(), Some(A));
        assert_eq!(e.refs[0].seen, RefSeen::Local);
        // A deletion whose old value git did not report.
        assert_eq!((e.refs[1].old.clone(), e.refs[1].new.clone()), (None, None));
    }

    #[test]
    fn pre_push_uses_the_remote_ref_and_local_sha() {
        let r = Record {
            hook: "pre-push".into(),
            args: vec!["origin".into(), "../remote.git".into()],
            lines: vec![format!("refs/tags/x {A} refs/tags/v1 {Z}")],
        };
        let e = events("acme/web", "f", &r).unwrap();
        assert_eq!(e.refs[0].ref_name, "refs/tags/v1");
        assert_eq!(e.refs[0].new.as_deref(), Some(A));
        assert_eq!(e.refs[0].seen, RefSeen::Pushed);
    }

    #[test]
    fn rewrites_record_the_new_commits_once() {
        let r = Record {
            hook: "post-rewrite".into(),
            args: vec!["rebase".into()],
            lines: vec![format!("{A} {B}"), format!("{Z} {B}")],
        };
        let e = events("acme/web", "f", &r).unwrap();
        assert_eq!(e.commits.unwrap().commits, vec![B.to_string()]);
        assert!(
            events(
                "acme/web",
                "f",
                &Record {
                    hook: "pre-commit".into(),
                    ..Default::default()
                }
            )
            .is_err()
        );
    }
}
