//! `shiplog serve`: wires the store, the HTTP API and the background tasks together, and stops
//! them cleanly.
//!
//! Start-up order matters: the store is opened and migrated and the config synced before the
//! port is bound, so the first request that `/healthz` admits already sees a ready database.
//! On SIGINT or SIGTERM the listener stops accepting, in-flight requests (and with them their
//! write transactions) finish, background tasks are told to stop, and the runtime file that
//! tells clients where the daemon listens is removed.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;

use crate::api::{self, AppState};
use crate::config::Config;
use crate::core;
use crate::pipeline::Pipeline;
use crate::store::Store;
use crate::{schedule, watch};

/// The file in the data dir that says where a running daemon listens.
pub const RUNTIME_FILE: &str = "daemon.json";

/// Contents of [`RUNTIME_FILE`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RuntimeInfo {
    pub url: String,
    pub listen: SocketAddr,
    pub pid: u32,
}

/// Reads the runtime file of a data dir, if a daemon wrote one.
pub fn runtime_info(data_dir: &Path) -> Option<RuntimeInfo> {
    let text = std::fs::read_to_string(data_dir.join(RUNTIME_FILE)).ok()?;
    serde_json::from_str(&text).ok()
}

fn write_runtime_info(data_dir: &Path, info: &RuntimeInfo) -> std::io::Result<PathBuf> {
    let path = data_dir.join(RUNTIME_FILE);
    let tmp = data_dir.join(format!("{RUNTIME_FILE}.tmp"));
    let text = serde_json::to_string_pretty(info).unwrap_or_default();
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

/// Runs the daemon until SIGINT/SIGTERM.
pub async fn run(config: Config) -> anyhow::Result<()> {
    crate::metrics::install().context("cannot set up the metrics recorder")?;
    // A repository path that is not a repository stops the start, before the store is touched.
    let local_repos = {
        let config = config.clone();
        Arc::new(tokio::task::spawn_blocking(move || watch::repo::open_all(&config)).await??)
    };
    let data_dir = config.data_dir();
    let store = Store::open_dir(&data_dir)
        .with_context(|| format!("cannot open the store in {}", data_dir.display()))?;
    store.use_blob_store(
        crate::store::blob_store::BlobStore::from_config(&config.storage)
            .context("cannot open storage.blobs")?,
    );
    {
        let config = config.clone();
        store
            .write(move |tx| {
                let now = core::now();
                let org = core::org::sync_config(tx, &config, &now)?;
                core::repo::sync_config(tx, &org, &config, &now)
            })
            .await
            .context("cannot apply the config's organization, projects and repositories")?;
    }

    let (stop, stopping) = tokio::sync::watch::channel(false);
    // From here on, any early return (a busy port, ...) must still stop what was started.
    let stop = StopOnDrop(stop);
    let pipeline = Pipeline::new(store.clone());
    // Each feature registers the handlers for the event kinds it owns here.
    let shared_config = Arc::new(config.clone());
    crate::pipeline::git::register(&pipeline, shared_config.clone());
    let github = crate::github::register(&pipeline, shared_config.clone())
        .context("cannot set up the GitHub client")?;
    crate::pipeline::import::register(&pipeline, shared_config.clone(), github.client());
    let artifact_settings = Arc::new(core::artifact::Settings::from_config(&config));
    core::artifact::register(&pipeline, &store, artifact_settings.clone());
    crate::watch::drop_dir::register(&pipeline, &config, artifact_settings.clone());
    let mut tasks = vec![tokio::spawn(pipeline.clone().run(stopping.clone()))];

    // Adapters that feed the pipeline (watchers, scheduler) start here.
    core::artifact::resume(&pipeline, &store)
        .await
        .context("cannot resume unfinished artifact assembles")?;
    let reconcile = schedule::ReconcileJob::new();
    let repo_sync = watch::repo::RepoSync {
        pipeline: pipeline.clone(),
        config: shared_config.clone(),
    };
    reconcile.add(Arc::new(watch::repo::LocalReconciler {
        sync: repo_sync.clone(),
        repos: local_repos.clone(),
    }));
    reconcile.add(Arc::new(github.reconciler()));
    let mut schedules = config.schedules.clone();
    if !schedules
        .iter()
        .any(|s| s.job == crate::config::JobKind::Health)
    {
        schedules.push(HealthJob::default_schedule());
    }
    let mut scheduler = schedule::Scheduler::new(schedules);
    scheduler.register(
        crate::config::JobKind::Health,
        Arc::new(HealthJob {
            store: store.clone(),
            settings: core::health::Settings::from_config(&config),
        }),
    );
    scheduler.register(
        crate::config::JobKind::Reconcile,
        Arc::new(reconcile.clone()),
    );
    scheduler.register(
        crate::config::JobKind::PruneArtifacts,
        Arc::new(PruneArtifactsJob {
            store: store.clone(),
        }),
    );
    scheduler.register(
        crate::config::JobKind::Backup,
        Arc::new(schedule::BackupJob {
            data_dir: data_dir.clone(),
        }),
    );
    let following = watch::repo::start(repo_sync, local_repos, reconcile.clone(), stopping.clone());
    tasks.push(following.await.map_err(anyhow::Error::msg)?);
    tasks.extend(crate::watch::drop_dir::spawn(
        pipeline.clone(),
        &config,
        stopping.clone(),
    ));
    tasks.push(scheduler.spawn(stopping.clone()));

    let listener = TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let public_url = config.effective_public_url(Some(addr));
    // Commit messages that fix an issue by its URL must name this server.
    let url = public_url.clone();
    store
        .write(move |tx| crate::store::settings::set(tx, crate::store::settings::PUBLIC_URL, &url))
        .await?;
    let state = AppState::new(
        store.clone(),
        pipeline.clone(),
        public_url.clone(),
        config.limits.max_json_body,
    )
    .with_github_webhook_secret(config.github.webhook_secret.clone())
    .with_artifacts((*artifact_settings).clone())
    .with_metrics(config.metrics.clone())
    .with_health(core::health::Settings::from_config(&config))
    .with_ingest_queue(config.limits.ingest_queue);
    let app = api::router(state);
    let notifier =
        crate::notify::Notifier::new(store.clone(), &config.notifications, public_url.clone())
            .await
            .context("cannot record the notification targets")?;
    tasks.push(notifier.spawn(stopping.clone()));

    let runtime = write_runtime_info(
        &data_dir,
        &RuntimeInfo {
            url: public_url.clone(),
            listen: addr,
            pid: std::process::id(),
        },
    )
    .with_context(|| format!("cannot write {RUNTIME_FILE} in {}", data_dir.display()))?;

    tracing::info!(
        listen = %addr,
        url = %public_url,
        data_dir = %data_dir.display(),
        "shiplog is ready"
    );
    let timeouts = api::limits::Timeouts::from_config(&config.limits);
    crate::systemd::ready(&addr);
    let served = api::limits::serve(listener, app, timeouts, shutdown_signal()).await;
    let _ = std::fs::remove_file(&runtime);
    // Let background tasks finish what they hold (an event mid-apply) before exiting.
    let _ = stop.0.send(true);
    for task in tasks {
        let _ = task.await;
    }
    served.context("HTTP server failed")?;
    tracing::info!("shiplog stopped");
    Ok(())
}

/// Tells the background tasks to stop when dropped. On a start-up error `run` returns early;
/// without the signal a blocking task (the drop-folder watcher) would keep running and the
/// runtime, which waits for blocking tasks when it is dropped, would never let the process exit.
struct StopOnDrop(tokio::sync::watch::Sender<bool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        let _ = self.0.send(true);
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    crate::systemd::stopping();
    tracing::info!("shutting down: finishing in-flight requests");
}

/// The `health` job: Sentry's hourly adoption stages, and rollups past `health.retention`
/// deleted.
struct HealthJob {
    store: Store,
    settings: core::health::Settings,
}

impl HealthJob {
    /// At minute 0 of every hour, as Sentry's adoption task.
    fn default_schedule() -> crate::config::ScheduleConfig {
        crate::config::ScheduleConfig {
            name: "health".to_owned(),
            cron: "0 0 * * * *".to_owned(),
            job: crate::config::JobKind::Health,
            ..Default::default()
        }
    }
}

impl schedule::Job for HealthJob {
    fn run(
        &self,
        _: &crate::config::ScheduleConfig,
    ) -> futures_util::future::BoxFuture<'_, Result<String, String>> {
        let retention = self.settings.retention;
        Box::pin(async move {
            let (adopted, replaced, pruned) = self
                .store
                .write(move |tx| {
                    let now = chrono::Utc::now();
                    let (adopted, replaced) = core::health::update_adoption(tx, now)?;
                    let pruned = core::health::prune(tx, now, retention)?;
                    Ok::<_, core::CoreError>((adopted, replaced, pruned))
                })
                .await
                .map_err(|e| e.to_string())?;
            Ok(format!(
                "{adopted} releases adopted, {replaced} replaced, {pruned} hourly rollups past retention deleted"
            ))
        })
    }
}

/// The `prune_artifacts` schedule: removes artifacts of releases older than `keep_days` and
/// the chunks nothing references any more (see `core::artifact::prune`).
struct PruneArtifactsJob {
    store: Store,
}

impl schedule::Job for PruneArtifactsJob {
    fn run(
        &self,
        schedule: &crate::config::ScheduleConfig,
    ) -> futures_util::future::BoxFuture<'_, Result<String, String>> {
        // Config validation requires keep_days for this job; 90 days is only a safety net.
        let keep_days = schedule.keep_days.unwrap_or(90);
        Box::pin(async move {
            let r = core::artifact::prune(&self.store, keep_days)
                .await
                .map_err(|e| e.to_string())?;
            Ok(format!(
                "pruned {} release files, {} bundles, {} files and {} chunks ({} bytes)",
                r.release_files, r.bundles, r.files, r.blobs, r.blob_bytes
            ))
        })
    }
}
