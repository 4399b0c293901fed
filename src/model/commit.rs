//! Commit data as every source delivers it: git2 walking a local repository, sentry-cli's
//! `set-commits --local` body, a GitHub push payload or the compare API. One shape, so the
//! rules that store commits, link issues and pick suspects do not care where it came from.

use serde::{Deserialize, Serialize};

/// How a file changed in a commit (Sentry's patch_set types; renames arrive as D + A).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ChangeKind {
    #[serde(rename = "A")]
    Added,
    #[serde(rename = "M")]
    Modified,
    #[serde(rename = "D")]
    Deleted,
}

impl ChangeKind {
    /// The one-letter code Sentry uses.
    pub fn code(self) -> &'static str {
        match self {
            ChangeKind::Added => "A",
            ChangeKind::Modified => "M",
            ChangeKind::Deleted => "D",
        }
    }

    /// Parses `A`, `M` or `D`; anything else is not a Sentry change type.
    pub fn from_code(code: &str) -> Option<ChangeKind> {
        match code {
            "A" => Some(ChangeKind::Added),
            "M" => Some(ChangeKind::Modified),
            "D" => Some(ChangeKind::Deleted),
            _ => None,
        }
    }
}

/// One changed file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileChange {
    pub path: String,
    #[serde(rename = "type")]
    pub kind: ChangeKind,
}

/// One commit with what Sentry keeps of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct CommitData {
    /// The commit sha (full 40 hex from git; clients may send up to 64 characters).
    pub id: String,
    /// The repository name as the source named it (`owner/repo`, or sentry-cli's remote name).
    pub repository: Option<String>,
    /// The full message, trailing newline included when git has one.
    pub message: Option<String>,
    pub author_name: Option<String>,
    pub author_email: Option<String>,
    /// Author time, RFC 3339 in the author's own offset.
    pub timestamp: Option<String>,
    pub patch_set: Vec<FileChange>,
}
