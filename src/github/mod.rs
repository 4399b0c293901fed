//! GitHub: signed webhooks in, the REST API out, for repositories that live only on GitHub.
//!
//! - [`verify`] checks `X-Hub-Signature-256` over a delivery's raw bytes;
//! - [`payload`] reads the deliveries shiplog acts on (`push`, `create`, `delete`, `release`,
//!   `ping`) with GitHub's quirks tolerated;
//! - [`client`] reaches the REST API through octocrab for commit ranges, files and tags, and
//!   [`source`] offers it to `core::tag` as a commit source ([`remote`] to set-commits);
//! - [`webhook`] turns a request into a verified delivery for the inbox;
//! - [`handler`] applies deliveries (and tags found by [`reconcile`]) in the pipeline.
//!
//! The HTTP endpoint (`api::webhooks`) only verifies and stores a delivery in the durable inbox;
//! everything else happens later in the pipeline worker, so GitHub gets its answer within
//! milliseconds whatever the API or the database are doing.

pub mod client;
pub mod handler;
pub mod payload;
pub mod reconcile;
pub mod remote;
pub mod source;
pub mod verify;
pub mod webhook;

pub use client::{GithubClient, GithubError, RetryPolicy};

use std::sync::Arc;

use crate::config::Config;
use crate::pipeline::{Event, Pipeline};

/// The GitHub integration of a running daemon.
pub struct Integration {
    pipeline: Pipeline,
    config: Arc<Config>,
    client: GithubClient,
}

/// Sets up GitHub for the daemon: builds the API client (inside the runtime), installs it for
/// set-commits ([`remote`]) and registers the handler of webhook deliveries and reconciled
/// tags. Call it before the pipeline worker starts, so no stored delivery finds no handler.
pub fn register(pipeline: &Pipeline, config: Arc<Config>) -> Result<Integration, GithubError> {
    let client = GithubClient::new(&config.github)?;
    remote::install(client.clone());
    let handler = Arc::new(handler::GithubHandler::new(
        pipeline.store().clone(),
        config.clone(),
        client.clone(),
    ));
    pipeline.register(webhook::Delivery::KIND, handler.clone());
    pipeline.register(handler::TagFound::KIND, handler);
    Ok(Integration {
        pipeline: pipeline.clone(),
        config,
        client,
    })
}

impl Integration {
    /// The API client (the history import reaches GitHub-only repositories through it).
    pub fn client(&self) -> GithubClient {
        self.client.clone()
    }

    /// The reconciler that compares GitHub's tags with the store (part of the reconcile job).
    pub fn reconciler(&self) -> reconcile::GithubReconciler {
        reconcile::GithubReconciler::new(
            self.pipeline.clone(),
            self.config.clone(),
            self.client.clone(),
        )
    }
}
