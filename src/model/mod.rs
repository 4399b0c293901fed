//! The pure domain: value types and the rules Sentry applies to them.
//!
//! Nothing in here touches the disk, the network or the clock (callers pass the time in), so every
//! rule can be unit-tested exhaustively. The store, the API and the pipeline build on these types.

pub mod activity;
pub mod changelog;
pub mod commit;
pub mod envelope;
pub mod environment;
pub mod event;
pub mod event_tags;
pub mod grouping;
pub mod health;
pub mod issue_ref;
pub mod manifest;
pub mod search;
pub mod session;
pub mod suspects;
pub mod time;
pub mod title;
pub mod token;
pub mod version;
