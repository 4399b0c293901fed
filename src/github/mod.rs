//! GitHub: signed webhooks in, the REST API out, for repositories that live only on GitHub.
//!
//! - [`verify`] checks `X-Hub-Signature-256` over a delivery's raw bytes;
//! - [`payload`] reads the deliveries shiplog acts on (`push`, `create`, `delete`, `release`,
//!   `ping`) with GitHub's quirks tolerated;
//! - [`client`] reaches the REST API through octocrab for commit ranges, files and tags.
//!
//! The HTTP endpoint (`api::webhooks`) only verifies and stores a delivery in the durable inbox;
//! everything else happens later in the pipeline worker, so GitHub gets its answer within
//! milliseconds whatever the API or the database are doing.

pub mod client;
pub mod payload;
pub mod remote;
pub mod verify;
pub mod webhook;

pub use client::{GithubClient, GithubError, RetryPolicy};
