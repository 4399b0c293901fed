//! The daemon's metrics, served at `GET /metrics` in Prometheus' text format.
//!
//! Every metric has its name here, and one function that records it: a feature adds a counter
//! with one line (`crate::metrics::envelope_items(..)`) and the names stay in one place. The
//! `metrics` facade records into the Prometheus recorder that [`install`] sets up in
//! `shiplog serve`; elsewhere (CLI commands, unit tests) no recorder is installed and every call
//! here is a no-op.
//!
//! Counters and histograms are recorded where things happen. Gauges that describe the store
//! (inbox depth, oldest pending event, database and WAL size) are read when scraped
//! ([`refresh_store_gauges`]), so they cost nothing between scrapes. Label values come from
//! small fixed sets (route templates, never raw paths; event kinds; outcomes), so the number of
//! series stays bounded.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{
    Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// HTTP requests by `route` (the matched template), `method` and `status`.
pub const HTTP_REQUESTS: &str = "shiplog_http_requests_total";
/// HTTP request latency by `route` and `method`.
pub const HTTP_DURATION: &str = "shiplog_http_request_duration_seconds";
/// Inbox events waiting to be applied (including those waiting for a retry).
pub const INBOX_DEPTH: &str = "shiplog_inbox_depth";
/// Age of the oldest pending inbox event (0 when none).
pub const INBOX_OLDEST_AGE: &str = "shiplog_inbox_oldest_event_age_seconds";
/// Inbox events that gave up after their last attempt.
pub const INBOX_FAILED: &str = "shiplog_inbox_failed_events";
/// Pipeline events applied, by `kind`.
pub const EVENTS_APPLIED: &str = "shiplog_pipeline_events_applied_total";
/// Pipeline event attempts that failed, by `kind` and `retry` (`true` when it will be retried).
pub const EVENTS_FAILED: &str = "shiplog_pipeline_events_failed_total";
/// Envelope items by `type`, `outcome` (`accepted` | `refused`) and `reason`.
pub const ENVELOPE_ITEMS: &str = "shiplog_envelope_items_total";
/// GitHub webhook deliveries by `outcome` (`queued`, `duplicate`, `bad_signature`, ...).
pub const WEBHOOK_DELIVERIES: &str = "shiplog_webhook_deliveries_total";
/// Drop-folder bundles by `outcome` (`stored`, `refused`, `corrupt`).
pub const DROPS: &str = "shiplog_drop_folder_results_total";
/// Time a write waited for the single writer connection.
pub const WRITER_WAIT: &str = "shiplog_store_writer_wait_seconds";
/// Size of the database file.
pub const STORE_BYTES: &str = "shiplog_store_size_bytes";
/// Size of the write-ahead log.
pub const WAL_BYTES: &str = "shiplog_store_wal_size_bytes";
/// Backups written by the `backup` schedule.
pub const BACKUPS: &str = "shiplog_backups_total";
/// Size of the last backup the schedule wrote.
pub const BACKUP_BYTES: &str = "shiplog_backup_last_size_bytes";
/// Notification deliveries waiting to be sent (retries included).
pub const NOTIFY_PENDING: &str = "shiplog_notifications_pending";
/// Notification deliveries that failed for good.
pub const NOTIFY_FAILED: &str = "shiplog_notifications_failed";
/// Counter: inflated bytes of artifact bundle entries the verify step vouched for, by `how`:
/// `read` (inflated, CRC-checked, hashed) or `recalled` (the entry's blob was verified before).
pub const VERIFY_BYTES: &str = "shiplog_artifact_verify_bytes_total";

/// Latency buckets (seconds) for every `*_seconds` histogram.
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the Prometheus recorder (once per process) and its upkeep task; call from inside
/// the daemon's runtime.
pub fn install() -> anyhow::Result<()> {
    if HANDLE.get().is_some() {
        return Ok(());
    }
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), BUCKETS)?
        .install_recorder()?;
    let upkeep = handle.clone();
    // Drains recorded histogram samples into their buckets, so memory stays flat between
    // scrapes.
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            upkeep.run_upkeep();
        }
    });
    let _ = HANDLE.set(handle);
    describe();
    Ok(())
}

/// The `# HELP` lines.
fn describe() {
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests answered, by route template, method and status"
    );
    describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "HTTP request latency, by route template and method"
    );
    describe_gauge!(
        INBOX_DEPTH,
        "Inbox events waiting to be applied (retries included)"
    );
    describe_gauge!(
        INBOX_OLDEST_AGE,
        Unit::Seconds,
        "Age of the oldest pending inbox event"
    );
    describe_gauge!(INBOX_FAILED, "Inbox events that failed for good");
    describe_counter!(EVENTS_APPLIED, "Pipeline events applied, by kind");
    describe_counter!(
        EVENTS_FAILED,
        "Pipeline event attempts that failed, by kind and whether they will be retried"
    );
    describe_counter!(
        ENVELOPE_ITEMS,
        "Envelope items, by type, outcome and refusal reason"
    );
    describe_counter!(WEBHOOK_DELIVERIES, "GitHub webhook deliveries, by outcome");
    describe_counter!(DROPS, "Drop-folder bundles, by outcome");
    describe_histogram!(
        WRITER_WAIT,
        Unit::Seconds,
        "Time writes waited for the single writer connection"
    );
    describe_gauge!(STORE_BYTES, Unit::Bytes, "Size of the SQLite database file");
    describe_gauge!(WAL_BYTES, Unit::Bytes, "Size of the SQLite write-ahead log");
    describe_counter!(BACKUPS, "Backups written by the backup schedule");
    describe_gauge!(
        BACKUP_BYTES,
        Unit::Bytes,
        "Size of the last scheduled backup"
    );
    describe_counter!(
        VERIFY_BYTES,
        Unit::Bytes,
        "Inflated bytes of bundle entries verified, read or recalled from an earlier verify"
    );
    describe_gauge!(NOTIFY_PENDING, "Notification deliveries waiting to be sent");
    describe_gauge!(
        NOTIFY_FAILED,
        "Notification deliveries that failed for good"
    );
}

/// The current metrics in Prometheus' text format; `None` when no recorder is installed.
pub fn render() -> Option<String> {
    HANDLE.get().map(PrometheusHandle::render)
}

/// One HTTP request answered.
pub fn http_request(route: &str, method: &str, status: u16, elapsed: Duration) {
    counter!(HTTP_REQUESTS, "route" => route.to_owned(), "method" => method.to_owned(), "status" => status.to_string())
        .increment(1);
    histogram!(HTTP_DURATION, "route" => route.to_owned(), "method" => method.to_owned())
        .record(elapsed.as_secs_f64());
}

/// A pipeline event applied.
pub fn event_applied(kind: &str) {
    counter!(EVENTS_APPLIED, "kind" => kind.to_owned()).increment(1);
}

/// A pipeline event attempt failed; `retry` when it will be tried again.
pub fn event_failed(kind: &str, retry: bool) {
    counter!(EVENTS_FAILED, "kind" => kind.to_owned(), "retry" => if retry { "true" } else { "false" })
        .increment(1);
}

/// Envelope items of one request: `refused` is `None` when they were accepted, else the reason
/// (a short snake_case word: `too_large`, `invalid`, `unauthorized`, ...).
pub fn envelope_items<'a>(types: impl IntoIterator<Item = &'a str>, refused: Option<&'static str>) {
    let (outcome, reason) = match refused {
        None => ("accepted", ""),
        Some(reason) => ("refused", reason),
    };
    for ty in types {
        counter!(ENVELOPE_ITEMS, "type" => ty.to_owned(), "outcome" => outcome, "reason" => reason)
            .increment(1);
    }
}

/// A GitHub webhook delivery and what became of it.
pub fn webhook_delivery(outcome: &'static str) {
    counter!(WEBHOOK_DELIVERIES, "outcome" => outcome).increment(1);
}

/// A drop-folder bundle and what became of it.
pub fn drop_result(outcome: &'static str) {
    counter!(DROPS, "outcome" => outcome).increment(1);
}

/// Bundle entries the verify step vouched for: `read` and `recalled` inflated bytes.
pub fn verify_bytes(read: u64, recalled: u64) {
    counter!(VERIFY_BYTES, "how" => "read").increment(read);
    counter!(VERIFY_BYTES, "how" => "recalled").increment(recalled);
}

/// How long a write waited for the writer connection.
pub fn writer_wait(waited: Duration) {
    histogram!(WRITER_WAIT).record(waited.as_secs_f64());
}

/// A scheduled backup written.
pub fn backup_written(bytes: u64) {
    counter!(BACKUPS).increment(1);
    gauge!(BACKUP_BYTES).set(bytes as f64);
}

/// A short reason label for a refused request, from its HTTP status.
pub fn refusal_reason(status: u16) -> &'static str {
    match status {
        400 => "invalid",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        413 => "too_large",
        429 => "rate_limited",
        _ => "error",
    }
}

/// Reads the gauges that describe the store: inbox depth and oldest event, database and WAL
/// size. Called on each scrape.
pub async fn refresh_store_gauges(store: &crate::store::Store) {
    let db = store.path().to_path_buf();
    let size = |path: &std::path::Path| std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    gauge!(STORE_BYTES).set(size(&db) as f64);
    let mut wal = db.into_os_string();
    wal.push("-wal");
    gauge!(WAL_BYTES).set(size(std::path::Path::new(&wal)) as f64);
    let backlog = store
        .read(|c| crate::store::inbox::backlog(c, crate::pipeline::MAX_ATTEMPTS))
        .await;
    match backlog {
        Ok(b) => {
            gauge!(INBOX_DEPTH).set(b.pending as f64);
            gauge!(INBOX_FAILED).set(b.failed as f64);
            let age = b
                .oldest_received
                .and_then(|t| crate::model::time::parse(&t))
                .map(|t| (chrono::Utc::now() - t).num_milliseconds().max(0) as f64 / 1000.0)
                .unwrap_or(0.0);
            gauge!(INBOX_OLDEST_AGE).set(age);
        }
        Err(e) => tracing::warn!(error = %e, "cannot read the inbox for /metrics"),
    }
    if let Ok((pending, failed)) = store.read(crate::store::notifications::counts).await {
        gauge!(NOTIFY_PENDING).set(pending as f64);
        gauge!(NOTIFY_FAILED).set(failed as f64);
    }
}
