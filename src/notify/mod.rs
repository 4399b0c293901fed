//! Sending notifications (issue 14): the delivery task that drains the durable outbox
//! (`core::notify` writes it in the same transaction as the change), and the two kinds of
//! target, signed webhooks ([`webhook`]) and Slack-compatible incoming webhooks ([`slack`]).
//!
//! Each delivery is sent on its own task with connect and request timeouts, so a slow or dead
//! target delays neither the pipeline (which only wrote a row) nor the other targets. A failed
//! attempt is retried with exponential backoff, the first after [`FIRST_RETRY`], for
//! [`RETRY_FOR`]; then the delivery is marked failed, which `shiplog notifications list` shows.

pub mod config;
mod deliver;
pub mod email;
mod render;
pub mod slack;
pub mod webhook;

use std::time::Duration;

use sha2::{Digest, Sha256};

pub use deliver::{Notifier, backoff, send_test};

use crate::core::notify::{DEPLOY_CREATED, ISSUE_CREATED, ISSUE_REGRESSED};
use crate::store::notifications::Target;
use config::NotificationsConfig;

/// How soon a failed delivery is tried again the first time; each later wait doubles.
pub const FIRST_RETRY: Duration = Duration::from_secs(2);
/// The longest wait between two attempts.
pub const MAX_RETRY_WAIT: Duration = Duration::from_secs(3600);
/// How long after the event a delivery is still retried, unless `notifications.retry_for`
/// says otherwise.
pub const RETRY_FOR: Duration = Duration::from_secs(24 * 3600);

/// A configured target, with what is needed to send to it.
#[derive(Clone)]
pub enum Sender {
    Webhook { url: String, key: Vec<u8> },
    Slack { url: String },
    Email(Box<email::Mailer>),
}

/// The targets the config names: (outbox row, sender). The key is the kind and a hash of the
/// URL, so the database never holds a URL or secret and a target keeps its key when the
/// config is reordered.
pub fn targets(config: &NotificationsConfig) -> Vec<(Target, Sender)> {
    let key = |kind: &str, url: &str| {
        let hash = hex::encode(Sha256::digest(url.as_bytes()));
        format!("{kind}:{}", &hash[..12])
    };
    let mut out = Vec::new();
    for w in &config.webhooks {
        // Validated at start; a bad secret never gets here.
        let Ok(signing) = config::signing_key(&w.secret) else {
            continue;
        };
        out.push((
            Target {
                key: key("webhook", &w.url),
                kind: "webhook".into(),
                events: w.events.clone(),
                environments: w.environments.clone(),
            },
            Sender::Webhook {
                url: w.url.clone(),
                key: signing,
            },
        ));
    }
    // Validated at start; a bad address never gets here.
    if let Some(c) = &config.email
        && let Ok(mailer) = email::Mailer::from_config(c)
    {
        out.push((
            Target {
                key: key("email", &format!("{} {}", c.smtp_url, c.from)),
                kind: "email".into(),
                events: [DEPLOY_CREATED, ISSUE_CREATED, ISSUE_REGRESSED]
                    .map(String::from)
                    .to_vec(),
                environments: Vec::new(),
            },
            Sender::Email(Box::new(mailer)),
        ));
    }
    for s in &config.slack {
        out.push((
            Target {
                key: key("slack", &s.webhook_url),
                kind: "slack".into(),
                events: s.events.clone(),
                environments: s.environments.clone(),
            },
            Sender::Slack {
                url: s.webhook_url.clone(),
            },
        ));
    }
    out
}

/// The HTTP client for every target: bounded connect and request time, no redirects.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(15))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("shiplog/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_default()
}
