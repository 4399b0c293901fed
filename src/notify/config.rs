//! The `notifications:` config section (issue 14). Every key is optional; without it nothing
//! is sent. `Debug` never prints a secret: webhook secrets are redacted and Slack URLs, whose
//! path is the secret, are shown by host only.

use std::fmt;
use std::time::Duration;

use base64::Engine;
use serde::Deserialize;

use crate::core::notify::EVENT_TYPES;
use crate::model::environment;

/// Where notifications go.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotificationsConfig {
    /// How long after the event a failed delivery is retried before it is marked failed, in
    /// seconds or as `"30m"`, `"24h"`. Default 24 h.
    #[serde(deserialize_with = "crate::config::seconds::duration")]
    pub retry_for: Duration,
    /// Deploy emails to the release's committers (in `committer_domains`) and `to`.
    pub email: Option<EmailConfig>,
    /// Webhooks signed per the Standard Webhooks spec.
    pub webhooks: Vec<WebhookConfig>,
    /// Slack-compatible incoming webhooks.
    pub slack: Vec<SlackConfig>,
}

impl Default for NotificationsConfig {
    fn default() -> Self {
        NotificationsConfig {
            retry_for: super::RETRY_FOR,
            email: None,
            webhooks: Vec::new(),
            slack: Vec::new(),
        }
    }
}

/// The SMTP server and addresses of deploy emails.
#[derive(Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmailConfig {
    /// `smtp://` (plain), `smtp+starttls://` or `smtps://`, with `user:password@` if needed.
    pub smtp_url: String,
    /// The sender, e.g. `shiplog <shiplog@example.com>`.
    pub from: String,
    /// Only committers whose address is in one of these domains are mailed.
    pub committer_domains: Vec<String>,
    /// Fixed recipients of every email as well.
    pub to: Vec<String>,
}

impl fmt::Debug for EmailConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let server = self
            .smtp_url
            .rsplit_once('@')
            .map_or(self.smtp_url.as_str(), |(_, host)| host);
        f.debug_struct("EmailConfig")
            .field("smtp_url", &format!("<redacted>@{server}"))
            .field("from", &self.from)
            .field("committer_domains", &self.committer_domains)
            .field("to", &self.to)
            .finish()
    }
}

/// One signed webhook.
#[derive(Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookConfig {
    /// Where the JSON is POSTed (http:// or https://).
    pub url: String,
    /// `whsec_` + base64 of the signing key.
    pub secret: String,
    /// Event types to send; empty: all.
    pub events: Vec<String>,
    /// Environments to send (deploys, issues); empty: all.
    pub environments: Vec<String>,
}

impl fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("url", &self.url)
            .field("secret", &"<redacted>")
            .field("events", &self.events)
            .field("environments", &self.environments)
            .finish()
    }
}

/// One Slack-compatible incoming webhook.
#[derive(Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SlackConfig {
    /// The incoming webhook URL (its path is the secret).
    pub webhook_url: String,
    /// Event types to send; empty: all.
    pub events: Vec<String>,
    /// Environments to send (deploys, issues); empty: all.
    pub environments: Vec<String>,
}

impl fmt::Debug for SlackConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlackConfig")
            .field("webhook_url", &redacted_url(&self.webhook_url))
            .field("events", &self.events)
            .field("environments", &self.environments)
            .finish()
    }
}

/// `scheme://host/<redacted>`: enough to tell targets apart in logs.
pub fn redacted_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => format!("{}://{}/<redacted>", u.scheme(), u.host_str().unwrap_or("")),
        Err(_) => "<redacted>".into(),
    }
}

/// Decodes a `whsec_` secret into the HMAC key.
pub fn signing_key(secret: &str) -> Result<Vec<u8>, String> {
    let b64 = secret.strip_prefix("whsec_").ok_or(
        "must start with whsec_ followed by base64 (e.g. whsec_$(openssl rand -base64 32))",
    )?;
    let key = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| "the part after whsec_ is not valid base64")?;
    if key.len() < 16 {
        return Err(
            "the key is shorter than 16 bytes; use e.g. whsec_$(openssl rand -base64 32)".into(),
        );
    }
    Ok(key)
}

fn check_url(url: &str) -> Result<(), String> {
    match reqwest::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => Ok(()),
        _ => Err("must be an http:// or https:// URL".into()),
    }
}

fn check_filters(
    at: &str,
    events: &[String],
    environments: &[String],
) -> Result<(), (String, String)> {
    for (i, e) in events.iter().enumerate() {
        if !EVENT_TYPES.contains(&e.as_str()) {
            return Err((
                format!("{at}.events[{i}]"),
                format!(
                    "unknown event type {e:?}; use one of {}",
                    EVENT_TYPES.join(", ")
                ),
            ));
        }
    }
    for (i, e) in environments.iter().enumerate() {
        environment::validate(e)
            .map_err(|err| (format!("{at}.environments[{i}]"), err.to_string()))?;
    }
    Ok(())
}

impl NotificationsConfig {
    /// The first problem as (key path, message); the key path starts with `notifications.`.
    pub fn validate(&self) -> Result<(), (String, String)> {
        if let Some(email) = &self.email {
            super::email::Mailer::from_config(email)?;
            for (i, d) in email.committer_domains.iter().enumerate() {
                if d.is_empty() || d.contains('@') || d.contains(char::is_whitespace) {
                    return Err((
                        format!("notifications.email.committer_domains[{i}]"),
                        format!("{d:?} is not a domain; write e.g. example.com"),
                    ));
                }
            }
        }
        for (i, w) in self.webhooks.iter().enumerate() {
            let at = format!("notifications.webhooks[{i}]");
            check_url(&w.url).map_err(|m| (format!("{at}.url"), m))?;
            signing_key(&w.secret).map_err(|m| (format!("{at}.secret"), m))?;
            check_filters(&at, &w.events, &w.environments)?;
            if self.webhooks[..i].iter().any(|o| o.url == w.url) {
                return Err((format!("{at}.url"), "the same URL is listed twice".into()));
            }
        }
        for (i, s) in self.slack.iter().enumerate() {
            let at = format!("notifications.slack[{i}]");
            check_url(&s.webhook_url).map_err(|m| (format!("{at}.webhook_url"), m))?;
            check_filters(&at, &s.events, &s.environments)?;
            if self.slack[..i]
                .iter()
                .any(|o| o.webhook_url == s.webhook_url)
            {
                return Err((
                    format!("{at}.webhook_url"),
                    "the same URL is listed twice".into(),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_secrets() {
        let c = NotificationsConfig {
            email: Some(EmailConfig {
                smtp_url: "smtps://user:pa55word@mail.example.com".into(),
                from: "shiplog@example.com".into(),
                ..Default::default()
            }),
            webhooks: vec![WebhookConfig {
                url: "https://hooks.example.com/x".into(),
                secret: "whsec_c2VjcmV0c2VjcmV0c2VjcmV0".into(),
                ..Default::default()
            }],
            slack: vec![SlackConfig {
                webhook_url: "https://hooks.slack.com/services/T0/B0/tok3n".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let text = format!("{c:?}");
        assert!(!text.contains("whsec_"), "{text}");
        assert!(!text.contains("tok3n"), "{text}");
        assert!(text.contains("hooks.slack.com"), "{text}");
        assert!(!text.contains("pa55word"), "{text}");
        assert!(text.contains("mail.example.com"), "{text}");
    }

    #[test]
    fn validation_names_the_key() {
        let mut c = NotificationsConfig {
            webhooks: vec![WebhookConfig {
                url: "https://hooks.example.com/x".into(),
                secret: "nope".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        assert_eq!(
            c.validate().unwrap_err().0,
            "notifications.webhooks[0].secret"
        );
        c.webhooks[0].secret = "whsec_c2VjcmV0c2VjcmV0c2VjcmV0".into();
        c.webhooks[0].events = vec!["deploy.made".into()];
        assert_eq!(
            c.validate().unwrap_err().0,
            "notifications.webhooks[0].events[0]"
        );
        c.webhooks[0].events = vec!["deploy.created".into()];
        assert!(c.validate().is_ok());
        c.slack = vec![SlackConfig {
            webhook_url: "ftp://x".into(),
            ..Default::default()
        }];
        assert_eq!(
            c.validate().unwrap_err().0,
            "notifications.slack[0].webhook_url"
        );
    }
}
