//! The cron scheduler: runs the jobs of `schedules:` at their times.
//!
//! Each schedule gets its own loop: sleep until the next time its cron expression names, run
//! the job, log the outcome, repeat. A run that overlaps its next time simply makes that time
//! the one after (the next time is computed when a run ends), so a job never runs twice at
//! once. Jobs are registered per [`JobKind`] by the features that own them; a schedule whose
//! job nobody registered is reported at start and does nothing.
//!
//! The `cron` crate wants 6 fields (seconds first); config accepts the 5-field crontab form too
//! ([`crate::config::parse_cron`]). Which form each schedule was read as, and its next run, is
//! logged at start, so a `*/5 * * * *` meant as "every five minutes" is visibly that.
//!
//! [`ReconcileJob`] is the `reconcile` job: a list of [`Reconciler`]s (local git repositories
//! here; GitHub adds its own), run one after the other. The daemon also runs it once at start.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use chrono::Utc;
use futures_util::future::BoxFuture;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{JobKind, ScheduleConfig};

/// A periodic job.
pub trait Job: Send + Sync + 'static {
    /// Runs once; `Ok` carries a one-line summary for the log, `Err` what went wrong.
    fn run(&self, schedule: &ScheduleConfig) -> BoxFuture<'_, Result<String, String>>;
}

/// How a cron expression was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CronForm {
    /// `min hour dom mon dow` (seconds are 0).
    Crontab,
    /// `sec min hour dom mon dow`.
    WithSeconds,
    /// `sec min hour dom mon dow year`.
    WithYear,
    /// `@hourly`, `@daily`, ...
    Shorthand,
}

impl CronForm {
    /// Classifies an expression (that [`ScheduleConfig::schedule`] accepted).
    pub fn of(expr: &str) -> CronForm {
        let expr = expr.trim();
        if expr.starts_with('@') {
            return CronForm::Shorthand;
        }
        match expr.split_whitespace().count() {
            5 => CronForm::Crontab,
            7 => CronForm::WithYear,
            _ => CronForm::WithSeconds,
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            CronForm::Crontab => {
                "5-field crontab form (minute hour day month weekday; seconds = 0)"
            }
            CronForm::WithSeconds => "6-field form (second minute hour day month weekday)",
            CronForm::WithYear => "7-field form (second minute hour day month weekday year)",
            CronForm::Shorthand => "shorthand",
        }
    }
}

/// Runs jobs on their schedules.
pub struct Scheduler {
    schedules: Vec<ScheduleConfig>,
    jobs: HashMap<JobKind, Arc<dyn Job>>,
}

impl Scheduler {
    pub fn new(schedules: Vec<ScheduleConfig>) -> Self {
        Scheduler {
            schedules,
            jobs: HashMap::new(),
        }
    }

    /// Registers the job that schedules of `kind` run (one per kind).
    pub fn register(&mut self, kind: JobKind, job: Arc<dyn Job>) {
        self.jobs.insert(kind, job);
    }

    /// Starts every schedule; the task ends when `stop` turns true (a job in progress is
    /// dropped at its next await: jobs keep their writes atomic, so that loses nothing).
    pub fn spawn(self, stop: watch::Receiver<bool>) -> JoinHandle<()> {
        let mut loops = Vec::new();
        for schedule in self.schedules {
            let cron = match schedule.schedule() {
                Ok(c) => c,
                Err(e) => {
                    // Config validation refuses these; keep the others running if one slips by.
                    tracing::error!(schedule = %schedule.name, error = %e, "schedule disabled");
                    continue;
                }
            };
            let Some(job) = self.jobs.get(&schedule.job).cloned() else {
                tracing::warn!(
                    schedule = %schedule.name,
                    job = %schedule.job,
                    "no {} job in this build; the schedule does nothing",
                    schedule.job
                );
                continue;
            };
            let next = cron.upcoming(Utc).next();
            tracing::info!(
                schedule = %schedule.name,
                job = %schedule.job,
                cron = %schedule.cron,
                form = CronForm::of(&schedule.cron).describe(),
                next = next.map(|t| t.to_rfc3339()).unwrap_or_else(|| "never".into()),
                "schedule"
            );
            loops.push(run_schedule(schedule, cron, job, stop.clone()));
        }
        tokio::spawn(async move {
            futures_util::future::join_all(loops).await;
        })
    }
}

async fn run_schedule(
    schedule: ScheduleConfig,
    cron: cron::Schedule,
    job: Arc<dyn Job>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        if *stop.borrow() {
            return;
        }
        let Some(next) = cron.upcoming(Utc).next() else {
            tracing::info!(schedule = %schedule.name, "no further runs");
            return;
        };
        let wait = (next - Utc::now()).to_std().unwrap_or_default();
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => return,
        }
        let started = std::time::Instant::now();
        let outcome = tokio::select! {
            outcome = job.run(&schedule) => outcome,
            _ = stop.changed() => return,
        };
        let ms = started.elapsed().as_millis() as u64;
        match outcome {
            Ok(summary) => {
                tracing::info!(schedule = %schedule.name, job = %schedule.job, ms, "{summary}")
            }
            Err(e) => {
                tracing::warn!(schedule = %schedule.name, job = %schedule.job, ms, error = %e, "job failed")
            }
        }
    }
}

/// One source of missed changes that the reconcile job replays.
pub trait Reconciler: Send + Sync + 'static {
    /// A short name for the log (`git`, `github`).
    fn name(&self) -> &str;
    /// Compares what the source has with what is stored and submits what was missed; `Ok`
    /// carries a one-line summary.
    fn reconcile(&self) -> BoxFuture<'_, Result<String, String>>;
}

/// The `reconcile` job: every registered [`Reconciler`], one after the other. Cheap to clone;
/// clones share the list, so a feature can add its reconciler after the job was registered.
#[derive(Clone, Default)]
pub struct ReconcileJob {
    reconcilers: Arc<RwLock<Vec<Arc<dyn Reconciler>>>>,
}

impl ReconcileJob {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a reconciler; it runs after those added before it.
    pub fn add(&self, reconciler: Arc<dyn Reconciler>) {
        self.reconcilers
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(reconciler);
    }

    /// Runs every reconciler. One failing does not stop the others; the result is an error
    /// if any failed.
    pub async fn run_all(&self) -> Result<String, String> {
        let list: Vec<_> = self
            .reconcilers
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut done = Vec::new();
        let mut failed = Vec::new();
        for r in list {
            match r.reconcile().await {
                Ok(summary) => done.push(format!("{}: {summary}", r.name())),
                Err(e) => failed.push(format!("{}: {e}", r.name())),
            }
        }
        if failed.is_empty() {
            Ok(format!("reconciled ({})", done.join("; ")))
        } else {
            Err(failed.join("; "))
        }
    }
}

impl Job for ReconcileJob {
    fn run(&self, _schedule: &ScheduleConfig) -> BoxFuture<'_, Result<String, String>> {
        Box::pin(self.run_all())
    }
}

/// The `backup` job: a consistent copy of the store into the schedule's `dir`, keeping its
/// `keep` newest copies (`store::backup::backup_rotated`).
pub struct BackupJob {
    pub data_dir: std::path::PathBuf,
}

/// Copies kept by a `backup` schedule that does not say `keep`.
pub const DEFAULT_BACKUP_KEEP: u32 = 7;

impl Job for BackupJob {
    fn run(&self, schedule: &ScheduleConfig) -> BoxFuture<'_, Result<String, String>> {
        // Config validation requires `dir` for this job.
        let dir = schedule
            .dir
            .as_deref()
            .map(crate::config::expand_tilde)
            .ok_or_else(|| "the schedule has no dir".to_string());
        let keep = schedule.keep.unwrap_or(DEFAULT_BACKUP_KEEP) as usize;
        let data_dir = self.data_dir.clone();
        Box::pin(async move {
            let dir = dir?;
            let (report, removed) = tokio::task::spawn_blocking(move || {
                std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
                crate::store::backup::backup_rotated(&data_dir, &dir, keep)
                    .map_err(|e| e.to_string())
            })
            .await
            .map_err(|e| e.to_string())??;
            crate::metrics::backup_written(report.bytes);
            Ok(format!(
                "backed up to {} ({} bytes); removed {removed} old copies",
                report.path.display(),
                report.bytes
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn forms_are_recognised() {
        assert_eq!(CronForm::of("*/5 * * * *"), CronForm::Crontab);
        assert_eq!(CronForm::of("0 */5 * * * *"), CronForm::WithSeconds);
        assert_eq!(CronForm::of("0 0 3 * * * 2030"), CronForm::WithYear);
        assert_eq!(CronForm::of("@daily"), CronForm::Shorthand);
    }

    struct Counting(AtomicUsize);
    impl Job for Counting {
        fn run(&self, _: &ScheduleConfig) -> BoxFuture<'_, Result<String, String>> {
            Box::pin(async move {
                self.0.fetch_add(1, Ordering::SeqCst);
                Ok("counted".into())
            })
        }
    }

    #[tokio::test]
    async fn runs_jobs_on_schedule_and_stops() {
        let job = Arc::new(Counting(AtomicUsize::new(0)));
        let mut s = Scheduler::new(vec![ScheduleConfig {
            name: "every-second".into(),
            cron: "* * * * * *".into(),
            job: JobKind::Reconcile,
            keep_days: None,
            dir: None,
            keep: None,
        }]);
        s.register(JobKind::Reconcile, job.clone());
        let (stop, stopping) = watch::channel(false);
        let handle = s.spawn(stopping);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while job.0.load(Ordering::SeqCst) < 2 {
            assert!(std::time::Instant::now() < deadline, "job never ran twice");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        stop.send(true).unwrap();
        handle.await.unwrap();
    }

    struct Named(&'static str, bool);
    impl Reconciler for Named {
        fn name(&self) -> &str {
            self.0
        }
        fn reconcile(&self) -> BoxFuture<'_, Result<String, String>> {
            let ok = self.1;
            Box::pin(async move {
                if ok {
                    Ok("fine".into())
                } else {
                    Err("broke".into())
                }
            })
        }
    }

    #[tokio::test]
    async fn every_reconciler_runs_even_after_a_failure() {
        let job = ReconcileJob::new();
        job.add(Arc::new(Named("a", false)));
        job.clone().add(Arc::new(Named("b", true)));
        assert_eq!(job.run_all().await, Err("a: broke".into()));
        let ok = ReconcileJob::new();
        ok.add(Arc::new(Named("b", true)));
        assert_eq!(ok.run_all().await.unwrap(), "reconciled (b: fine)");
    }
}
