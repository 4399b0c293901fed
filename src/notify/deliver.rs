//! The delivery task: polls the outbox for due deliveries, sends each on its own task and
//! records the outcome (delivered, another attempt later, or failed).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::task::JoinSet;

use super::config::NotificationsConfig;
use super::{FIRST_RETRY, MAX_RETRY_WAIT, Sender, email, render, slack, webhook};
use crate::core::notify::Subject;
use crate::model::time;
use crate::store::notifications::{self as store, Delivery};
use crate::store::{Store, StoreError, orgs};

/// How often the outbox is polled for due deliveries.
const POLL: Duration = Duration::from_secs(1);
/// How long shutdown waits for sends under way.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);
/// At most this many deliveries are picked up per poll.
const BATCH: usize = 100;

/// The wait before the attempt after `attempts` failed ones: [`FIRST_RETRY`], doubling, at
/// most [`MAX_RETRY_WAIT`].
pub fn backoff(attempts: i64) -> Duration {
    let factor = 1u32 << attempts.clamp(0, 20);
    FIRST_RETRY.saturating_mul(factor).min(MAX_RETRY_WAIT)
}

/// When to try again after a failure at `now`, or `None` when the retry window has passed.
fn next_attempt(
    created: &str,
    attempts: i64,
    now: DateTime<Utc>,
    retry_for: Duration,
) -> Option<String> {
    let created = time::parse(created).unwrap_or(now);
    let next = now + chrono::Duration::from_std(backoff(attempts)).ok()?;
    let deadline = created + chrono::Duration::from_std(retry_for).ok()?;
    (next <= deadline).then(|| time::format(next))
}

/// A transport error as one line, without the URL (a Slack URL is a secret).
pub(super) fn describe(e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    let mut text = what.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text = format!("{what}: {s}");
        source = s.source();
    }
    text
}

pub(super) fn check_status(status: reqwest::StatusCode) -> Result<(), String> {
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("the receiver answered HTTP {}", status.as_u16()))
    }
}

/// Sends what the outbox holds. Cheap to clone.
#[derive(Clone)]
pub struct Notifier {
    store: Store,
    senders: Arc<HashMap<String, Sender>>,
    public_url: String,
    client: reqwest::Client,
    retry_for: Duration,
}

impl Notifier {
    /// Records the config's targets in the store (so that changes enqueue deliveries for them)
    /// and prepares to send to them.
    pub async fn new(
        store: Store,
        config: &NotificationsConfig,
        public_url: String,
    ) -> Result<Notifier, StoreError> {
        let targets = super::targets(config);
        let rows: Vec<store::Target> = targets.iter().map(|(t, _)| t.clone()).collect();
        store
            .write(move |tx| store::replace_targets(tx, &rows))
            .await?;
        let senders = targets.into_iter().map(|(t, s)| (t.key, s)).collect();
        Ok(Notifier {
            store,
            senders: Arc::new(senders),
            public_url,
            client: super::http_client(),
            retry_for: config.retry_for,
        })
    }

    /// The deploy email: it waits (as a failed attempt, retried) while the release's commits
    /// are pending, so that it lists them.
    async fn deploy_email(
        &self,
        mailer: &email::Mailer,
        d: &Delivery,
        subject: Subject,
    ) -> Result<(), String> {
        let (release_id, deploy_id) = match subject {
            Subject::Deploy {
                release_id,
                deploy_id,
            } => (release_id, deploy_id),
            Subject::Issue {
                issue_id,
                release_id,
            } => return self.issue_email(mailer, d, issue_id, release_id).await,
            Subject::Release { .. } => {
                return Err(format!("no email is sent for {}", d.event_type));
            }
        };
        let org_id = d.org_id;
        let public_url = self.public_url.clone();
        let read = self
            .store
            .read(move |c| {
                let org = orgs::org_by_id(c, org_id)?;
                let release = crate::store::releases::by_id(c, release_id)?;
                let deploy = crate::store::deploys::by_id(c, deploy_id)?;
                let (Some(org), Some(release), Some(deploy)) = (org, release, deploy) else {
                    return Ok(None);
                };
                let pending = serde_json::from_str::<serde_json::Value>(&release.data)
                    .ok()
                    .and_then(|v| v["commitsPending"].as_bool())
                    .unwrap_or(false);
                let notes = crate::core::notes::notes(c, &org, &release.version)?;
                let files = store::release_files_changed(c, release.id)?;
                let url = slack::release_url(&public_url, &org.slug, &release.version);
                Ok::<_, crate::core::CoreError>(Some((
                    pending,
                    notes,
                    files,
                    url,
                    deploy.environment,
                )))
            })
            .await
            .map_err(|e| e.to_string())?;
        let (pending, notes, files, url, environment) =
            read.ok_or("what the event was about has been deleted")?;
        if pending {
            return Err("waiting for the release's commits (commits pending)".into());
        }
        mailer.send_deploy(&environment, &notes, files, &url).await
    }

    /// A new issue or a regression, to the committers of its suspect commits, else of the release
    /// it appeared in (`core::issue::mail_committers`).
    async fn issue_email(
        &self,
        mailer: &email::Mailer,
        d: &Delivery,
        issue_id: i64,
        release_id: Option<i64>,
    ) -> Result<(), String> {
        let (org_id, public_url) = (d.org_id, self.public_url.clone());
        let read = self
            .store
            .read(move |c| {
                let Some(org) = orgs::org_by_id(c, org_id)? else {
                    return Ok(None);
                };
                let subject = Subject::Issue {
                    issue_id,
                    release_id,
                };
                let Some(data) = render::data(c, &org, &subject, &public_url)? else {
                    return Ok(None);
                };
                let release = match release_id {
                    Some(id) => crate::store::releases::by_id(c, id)?,
                    None => None,
                };
                let committers =
                    crate::core::issue::mail_committers(c, &org, issue_id, release_id)?;
                Ok::<_, crate::core::CoreError>(Some((
                    data,
                    release.map(|r| r.version),
                    committers,
                )))
            })
            .await
            .map_err(|e| e.to_string())?;
        let (data, version, committers) =
            read.ok_or("what the event was about has been deleted")?;
        let regression = d.event_type == crate::core::notify::ISSUE_REGRESSED;
        mailer
            .send_issue(regression, version.as_deref(), &data["issue"], &committers)
            .await
    }

    /// Runs the delivery loop until `stopping` turns true, then waits for the sends under way.
    pub fn spawn(
        self,
        mut stopping: tokio::sync::watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut sending: JoinSet<i64> = JoinSet::new();
            let mut busy: HashSet<i64> = HashSet::new();
            while !*stopping.borrow() {
                while let Some(done) = sending.try_join_next() {
                    if let Ok(id) = done {
                        busy.remove(&id);
                    }
                }
                let now = crate::core::now();
                match self.store.read(move |c| store::due(c, &now, BATCH)).await {
                    Ok(due) => {
                        for d in due {
                            if busy.insert(d.id) {
                                let this = self.clone();
                                sending.spawn(async move {
                                    let id = d.id;
                                    this.deliver(d).await;
                                    id
                                });
                            }
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot read the notification outbox"),
                }
                tokio::select! {
                    _ = tokio::time::sleep(POLL) => {}
                    _ = stopping.changed() => {}
                }
            }
            // Sends under way get a moment to finish and record their outcome; one stuck on a
            // slow target is dropped and, still pending, is sent again after the restart
            // (receivers dedupe by `webhook-id`).
            let drain = async { while sending.join_next().await.is_some() {} };
            if tokio::time::timeout(SHUTDOWN_GRACE, drain).await.is_err() {
                sending.abort_all();
            }
        })
    }

    /// One attempt at one delivery, its outcome written back to the outbox.
    async fn deliver(&self, d: Delivery) {
        let outcome = self.attempt(&d).await;
        let now = Utc::now();
        let now_text = time::format(now);
        let id = d.id;
        let written = match &outcome {
            Ok(()) => {
                tracing::info!(delivery = id, target = %d.target, event = %d.event_type, "notification delivered");
                self.store
                    .write(move |tx| store::delivered(tx, id, &now_text))
                    .await
            }
            Err(error) => {
                let next = next_attempt(&d.created, d.attempts, now, self.retry_for);
                tracing::warn!(
                    delivery = id, target = %d.target, event = %d.event_type, %error,
                    retry_at = next.as_deref().unwrap_or("never"),
                    "notification not delivered"
                );
                let error = error.clone();
                self.store
                    .write(move |tx| {
                        store::attempt_failed(tx, id, &error, next.as_deref(), &now_text)
                    })
                    .await
            }
        };
        if let Err(e) = written {
            tracing::warn!(delivery = id, error = %e, "cannot record a notification's outcome");
        }
    }

    async fn attempt(&self, d: &Delivery) -> Result<(), String> {
        let sender = self
            .senders
            .get(&d.target)
            .ok_or("the target is no longer in the config")?;
        let subject: Subject =
            serde_json::from_str(&d.subject).map_err(|e| format!("unreadable subject: {e}"))?;
        if let Sender::Email(mailer) = sender {
            return self.deploy_email(mailer, d, subject).await;
        }
        let (org_id, public_url) = (d.org_id, self.public_url.clone());
        let rendered = self
            .store
            .read(move |c| {
                let Some(org) = orgs::org_by_id(c, org_id)? else {
                    return Ok(None);
                };
                let data = render::data(c, &org, &subject, &public_url)?;
                Ok::<_, crate::core::CoreError>(data.map(|data| (org.slug, data)))
            })
            .await
            .map_err(|e| e.to_string())?;
        let (org, data) = rendered.ok_or("what the event was about has been deleted")?;
        let event = Event {
            id: format!("shiplog_{}", d.id),
            event_type: d.event_type.clone(),
            timestamp: d.created.clone(),
            data,
            org,
        };
        send(&self.client, &self.public_url, sender, &event).await
    }
}

/// Sends one message to one target.
async fn send(
    client: &reqwest::Client,
    public_url: &str,
    sender: &Sender,
    event: &Event,
) -> Result<(), String> {
    match sender {
        Sender::Webhook { url, key } => {
            let body = serde_json::json!({
                "type": event.event_type,
                "timestamp": event.timestamp,
                "data": event.data,
            });
            webhook::send(client, url, key, &event.id, body.to_string().into_bytes()).await
        }
        Sender::Slack { url } => {
            let message = slack::message(&event.event_type, &event.data, public_url, &event.org);
            slack::send(client, url, &message).await
        }
        Sender::Email(mailer) => mailer.send_test().await,
    }
}

/// Sends a `test` message to every target of the config now (`shiplog notifications test`),
/// without the outbox: the outcome per target, labelled by kind and (redacted) URL.
pub async fn send_test(config: &NotificationsConfig) -> Vec<(String, Result<(), String>)> {
    let client = super::http_client();
    let mut out = Vec::new();
    for (target, sender) in super::targets(config) {
        let label = match &sender {
            Sender::Webhook { url, .. } => format!("webhook {url}"),
            Sender::Slack { url } => format!("slack {}", super::config::redacted_url(url)),
            Sender::Email(_) => "email".to_owned(),
        };
        let outcome = match &sender {
            Sender::Slack { url } => {
                let message = serde_json::json!({ "text": "shiplog: test notification" });
                slack::send(&client, url, &message).await
            }
            Sender::Email(mailer) => mailer.send_test().await,
            Sender::Webhook { .. } => {
                let event = Event {
                    id: format!(
                        "shiplog_test_{}_{}",
                        target.key,
                        Utc::now().timestamp_millis()
                    ),
                    event_type: "test".into(),
                    timestamp: crate::core::now(),
                    data: serde_json::json!({ "message": "shiplog notifications test" }),
                    org: String::new(),
                };
                send(&client, "", &sender, &event).await
            }
        };
        out.push((label, outcome));
    }
    out
}

/// A message about to be sent.
struct Event {
    id: String,
    event_type: String,
    timestamp: String,
    data: serde_json::Value,
    org: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::RETRY_FOR;

    #[test]
    fn backoff_doubles_from_seconds_up_to_an_hour() {
        assert_eq!(backoff(0), Duration::from_secs(2));
        assert_eq!(backoff(1), Duration::from_secs(4));
        assert_eq!(backoff(5), Duration::from_secs(64));
        assert_eq!(backoff(30), MAX_RETRY_WAIT);
    }

    #[test]
    fn retries_stop_after_a_day() {
        let created = time::parse("2026-01-01T00:00:00Z").unwrap();
        let text = time::format(created);
        assert!(next_attempt(&text, 0, created, RETRY_FOR).is_some());
        let late = created + chrono::Duration::hours(24);
        assert_eq!(next_attempt(&text, 12, late, RETRY_FOR), None);
        let soon = created + chrono::Duration::seconds(3);
        assert_eq!(next_attempt(&text, 1, soon, Duration::from_secs(5)), None);
    }
}
