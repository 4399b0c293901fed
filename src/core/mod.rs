//! The domain operations: what a release is, how it is created and updated, what a deploy
//! records, who may call the API.
//!
//! Every input ends up here: the HTTP API calls these functions directly, the pipeline worker
//! calls them for events from hooks, watchers and webhooks. They take a transaction (for writes)
//! or a connection (for reads) so a caller composes several into one atomic unit, and they know
//! nothing of HTTP, notify or git2. Errors are [`CoreError`], which the API maps to Sentry's
//! statuses and the CLI prints as one line.

pub mod artifact;
pub mod commit;
pub mod deploy;
pub mod health;
pub mod import;
pub mod issue;
pub mod notes;
pub mod notify;
pub mod org;
pub mod project_issues;
pub mod release;
pub mod release_file;
pub mod repo;
pub mod tag;
pub mod token;
pub mod web_session;

use crate::store::StoreError;

/// Why a domain operation refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// The organization, project, release or other named thing does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The request is malformed or breaks a rule; `field` names the offending input.
    #[error("{detail}")]
    Invalid {
        field: Option<&'static str>,
        detail: String,
    },
    /// The caller may not do this (wrong organization, revoked token).
    #[error("{0}")]
    Forbidden(String),
    /// The operation conflicts with the stored state (e.g. a release still referenced).
    #[error("{0}")]
    Conflict(String),
    /// The store failed; nothing was changed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<rusqlite::Error> for CoreError {
    fn from(e: rusqlite::Error) -> Self {
        CoreError::Store(StoreError::Sqlite(e))
    }
}

impl CoreError {
    /// An `Invalid` error about one input field.
    pub fn invalid(field: &'static str, detail: impl Into<String>) -> Self {
        CoreError::Invalid {
            field: Some(field),
            detail: detail.into(),
        }
    }
}

/// The current time in shiplog's canonical text form.
pub fn now() -> String {
    crate::model::time::format(chrono::Utc::now())
}
