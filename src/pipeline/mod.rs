//! The pipeline: one durable inbox and one worker that every input feeds.
//!
//! Adapters (git hooks via the spool, the ref watcher, reconcile, GitHub webhooks, the CI drop
//! folder) turn what they saw into an [`Event`] and [`Pipeline::submit`] it. Submitting writes
//! the event to the `inbox` table under its idempotency key and returns; a duplicate key is
//! dropped there, so the same tag seen by three adapters is applied once. The single worker
//! then applies events in arrival order through the [`Handler`] registered for the event's
//! kind. A handler that fails is retried with backoff, and other events are not held up
//! behind it; after [`MAX_ATTEMPTS`] the event stays in the inbox, marked failed, with its
//! error, for `shiplog` to show.
//!
//! Because the inbox is written before anything is applied, an event accepted just before a
//! crash is applied after the restart.
//!
//! Handlers are registered per kind by the feature that owns the kind (see `daemon.rs`), so
//! the pipeline knows nothing of git, GitHub or artifacts.

pub mod git;
pub mod import;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::{Notify, watch};

use crate::core;
use crate::store::{Store, StoreError, inbox};

/// Attempts before an event is left failed.
pub const MAX_ATTEMPTS: i64 = 5;

/// Something an adapter saw, to be applied by the worker.
pub trait Event: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The kind name stored in the inbox and used to find the handler.
    const KIND: &'static str;
    /// Identical events share this key; the second one is dropped.
    fn idempotency_key(&self) -> String;
}

/// Why a handler could not apply an event.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// Worth retrying later (a repository briefly locked, GitHub rate-limited us, ...).
    #[error("{0}")]
    Retry(String),
    /// Retrying cannot help (malformed payload, a rule refuses it); recorded and left.
    #[error("{0}")]
    Permanent(String),
}

impl From<StoreError> for HandlerError {
    fn from(e: StoreError) -> Self {
        HandlerError::Retry(e.to_string())
    }
}

impl From<core::CoreError> for HandlerError {
    fn from(e: core::CoreError) -> Self {
        match e {
            core::CoreError::Store(e) => HandlerError::Retry(e.to_string()),
            other => HandlerError::Permanent(other.to_string()),
        }
    }
}

/// Applies events of some kinds.
pub trait Handler: Send + Sync + 'static {
    /// Applies one event. `entry.payload` is the JSON the adapter submitted.
    fn handle<'a>(&'a self, entry: &'a inbox::Entry) -> BoxFuture<'a, Result<(), HandlerError>>;
}

/// Decodes an entry's payload as the event type a handler expects.
pub fn decode<E: Event>(entry: &inbox::Entry) -> Result<E, HandlerError> {
    serde_json::from_str(&entry.payload).map_err(|e| {
        HandlerError::Permanent(format!("malformed {} event payload: {e}", entry.kind))
    })
}

/// A handle to the inbox and its worker; cheap to clone.
#[derive(Clone)]
pub struct Pipeline {
    store: Store,
    wake: Arc<Notify>,
    handlers: Arc<std::sync::RwLock<HashMap<&'static str, Arc<dyn Handler>>>>,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline").finish_non_exhaustive()
    }
}

/// The outcome of a submit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Submitted {
    /// Stored under this inbox id; the worker will apply it.
    New(i64),
    /// An event with the same idempotency key was already received.
    Duplicate,
}

impl Pipeline {
    pub fn new(store: Store) -> Pipeline {
        Pipeline {
            store,
            wake: Arc::new(Notify::new()),
            handlers: Default::default(),
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Registers the handler for events of kind `kind` (one per kind).
    pub fn register(&self, kind: &'static str, handler: Arc<dyn Handler>) {
        self.handlers
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(kind, handler);
    }

    /// Stores an event durably and wakes the worker.
    pub async fn submit<E: Event>(&self, source: &str, event: &E) -> Result<Submitted, StoreError> {
        let (key, payload) = encode(event);
        let source = source.to_string();
        let id = self
            .store
            .write(move |tx| inbox::insert(tx, &key, &source, E::KIND, &payload, &core::now()))
            .await?;
        Ok(self.submitted(id))
    }

    /// [`Pipeline::submit`] for threads outside the async runtime (notify callbacks).
    pub fn submit_blocking<E: Event>(
        &self,
        source: &str,
        event: &E,
    ) -> Result<Submitted, StoreError> {
        let (key, payload) = encode(event);
        let id = self.store.write_blocking(|tx| {
            inbox::insert(tx, &key, source, E::KIND, &payload, &core::now())
        })?;
        Ok(self.submitted(id))
    }

    fn submitted(&self, id: Option<i64>) -> Submitted {
        match id {
            Some(id) => {
                self.wake.notify_one();
                Submitted::New(id)
            }
            None => Submitted::Duplicate,
        }
    }

    /// Applies every event that is due now, in order, and returns how many were applied or
    /// failed. The worker calls this in a loop; tests and reconcile may call it directly.
    pub async fn drain(&self) -> Result<usize, StoreError> {
        let mut n = 0;
        loop {
            let now = core::now();
            let next = self
                .store
                .read(move |c| inbox::next_due(c, &now, MAX_ATTEMPTS))
                .await?;
            let Some(entry) = next else {
                return Ok(n);
            };
            self.apply(entry).await?;
            n += 1;
        }
    }

    async fn apply(&self, entry: inbox::Entry) -> Result<(), StoreError> {
        let handler = self
            .handlers
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(entry.kind.as_str())
            .cloned();
        let result = match handler {
            Some(h) => h.handle(&entry).await,
            None => Err(HandlerError::Permanent(format!(
                "no handler for events of kind {}",
                entry.kind
            ))),
        };
        let id = entry.id;
        match result {
            Ok(()) => {
                crate::metrics::event_applied(&entry.kind);
                self.store
                    .write(move |tx| inbox::mark_done(tx, id, &core::now()))
                    .await
            }
            Err(e) => {
                let give_up = matches!(e, HandlerError::Permanent(_)).then_some(MAX_ATTEMPTS);
                let attempts = entry.attempts + 1;
                let for_good = give_up.is_some() || attempts >= MAX_ATTEMPTS;
                crate::metrics::event_failed(&entry.kind, !for_good);
                if for_good {
                    tracing::error!(id, kind = %entry.kind, key = %entry.idem_key, error = %e, "event failed for good");
                } else {
                    tracing::warn!(id, kind = %entry.kind, attempts, error = %e, "event failed, will retry");
                }
                // 2 s, 4 s, 8 s, ... between attempts.
                let delay = chrono::Duration::seconds(1 << attempts.clamp(1, 10));
                let not_before = crate::model::time::format(chrono::Utc::now() + delay);
                let message = e.to_string();
                self.store
                    .write(move |tx| inbox::mark_failed(tx, id, &message, &not_before, give_up))
                    .await
            }
        }
    }

    /// Runs the worker until `shutdown` turns true. Finishes the event in hand before it
    /// returns.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        loop {
            if *shutdown.borrow() {
                return;
            }
            if let Err(e) = self.drain().await {
                tracing::error!(error = %e, "pipeline: store error, pausing");
            }
            let wait = self.until_next_retry().await;
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    async fn until_next_retry(&self) -> Duration {
        let idle = Duration::from_secs(30);
        let next = self
            .store
            .read(|c| inbox::next_retry_at(c, MAX_ATTEMPTS))
            .await
            .ok()
            .flatten();
        match next.and_then(|t| crate::model::time::parse(&t)) {
            Some(at) => (at - chrono::Utc::now())
                .to_std()
                .unwrap_or(Duration::ZERO)
                .min(idle),
            None => idle,
        }
    }

    /// Counts of pending, failed and processed events.
    pub async fn counts(&self) -> Result<inbox::Counts, StoreError> {
        self.store.read(|c| inbox::counts(c, MAX_ATTEMPTS)).await
    }
}

/// Records an event inside a transaction that is already open, so it commits (or not) with
/// the rows it follows from. Only for handlers: the worker applies it in the drain it is
/// running, without a wake-up. Returns `None` for a duplicate.
pub fn enqueue<E: Event>(
    tx: &rusqlite::Transaction<'_>,
    source: &str,
    event: &E,
) -> Result<Option<i64>, StoreError> {
    let (key, payload) = encode(event);
    inbox::insert(tx, &key, source, E::KIND, &payload, &core::now())
}

fn encode<E: Event>(event: &E) -> (String, String) {
    let key = format!("{}:{}", E::KIND, event.idempotency_key());
    // Events are plain data; serialising them cannot fail.
    let payload = serde_json::to_string(event).unwrap_or_default();
    (key, payload)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[derive(Serialize, Deserialize)]
    struct Noted {
        key: String,
        fail_times: usize,
    }

    impl Event for Noted {
        const KIND: &'static str = "noted";
        fn idempotency_key(&self) -> String {
            self.key.clone()
        }
    }

    struct Counter(AtomicUsize, AtomicUsize);

    impl Handler for Counter {
        fn handle<'a>(
            &'a self,
            entry: &'a inbox::Entry,
        ) -> BoxFuture<'a, Result<(), HandlerError>> {
            Box::pin(async move {
                let e: Noted = decode(entry)?;
                let calls = self.1.fetch_add(1, Ordering::SeqCst);
                if calls < e.fail_times {
                    return Err(HandlerError::Retry("not yet".into()));
                }
                self.0.fetch_add(1, Ordering::SeqCst);
                Ok(())
            })
        }
    }

    #[tokio::test]
    async fn duplicates_are_dropped_and_events_applied_once() {
        let dir = tempfile::tempdir().unwrap();
        let p = Pipeline::new(Store::open_dir(dir.path()).unwrap());
        let h = Arc::new(Counter(AtomicUsize::new(0), AtomicUsize::new(0)));
        p.register("noted", h.clone());
        let e = Noted {
            key: "a".into(),
            fail_times: 0,
        };
        assert!(matches!(
            p.submit("test", &e).await.unwrap(),
            Submitted::New(_)
        ));
        assert_eq!(p.submit("test", &e).await.unwrap(), Submitted::Duplicate);
        assert_eq!(p.drain().await.unwrap(), 1);
        assert_eq!(h.0.load(Ordering::SeqCst), 1);
        assert_eq!(p.counts().await.unwrap().processed, 1);
    }

    #[tokio::test]
    async fn failures_are_recorded_and_retried_later() {
        let dir = tempfile::tempdir().unwrap();
        let p = Pipeline::new(Store::open_dir(dir.path()).unwrap());
        let h = Arc::new(Counter(AtomicUsize::new(0), AtomicUsize::new(0)));
        p.register("noted", h.clone());
        let e = Noted {
            key: "b".into(),
            fail_times: 1,
        };
        p.submit("test", &e).await.unwrap();
        assert_eq!(p.drain().await.unwrap(), 1);
        assert_eq!(h.0.load(Ordering::SeqCst), 0);
        // Not due yet: backoff.
        assert_eq!(p.drain().await.unwrap(), 0);
        let c = p.counts().await.unwrap();
        assert_eq!((c.pending, c.processed), (1, 0));
    }

    #[tokio::test]
    async fn unknown_kinds_fail_for_good() {
        let dir = tempfile::tempdir().unwrap();
        let p = Pipeline::new(Store::open_dir(dir.path()).unwrap());
        let e = Noted {
            key: "c".into(),
            fail_times: 0,
        };
        p.submit("test", &e).await.unwrap();
        p.drain().await.unwrap();
        assert_eq!(p.counts().await.unwrap().failed, 1);
    }
}
