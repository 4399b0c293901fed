//! Emails through SMTP (`lettre`, rustls). Deploy emails as Sentry's: subject `Deployed version
//! {version} to {environment}`, a text and an HTML part with the numbers of commits, authors
//! and files changed, the commits per repository and the issues the release fixes. Sent to the
//! release's committers whose address is in `committer_domains` (never anyone else from git
//! history) and to the fixed `to` list. A new issue or a regression goes, by the same rule, to
//! the committers of its suspect commits, else of the release it appeared in
//! (`core::issue::mail_committers`; `core::notify` writes it once per issue and release).

use std::collections::BTreeMap;
use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde_json::Value;

/// The SMTP connection and the addresses of the email target.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    to: Vec<Mailbox>,
    committer_domains: Vec<String>,
}

/// `smtp://` (plain), `smtp+starttls://` or `smtps://` as lettre's transport, with a timeout
/// on every connection and command.
pub fn transport(url: &str) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
    let url = match url.strip_prefix("smtp+starttls://") {
        Some(rest) if rest.contains('?') => format!("smtp://{rest}&tls=required"),
        Some(rest) => format!("smtp://{rest}?tls=required"),
        None if url.starts_with("smtp://") || url.starts_with("smtps://") => url.to_owned(),
        None => return Err("must start with smtp://, smtp+starttls:// or smtps://".into()),
    };
    Ok(AsyncSmtpTransport::<Tokio1Executor>::from_url(&url)
        .map_err(|e| format!("is not a usable SMTP URL: {e}"))?
        .timeout(Some(Duration::from_secs(15)))
        .build())
}

impl Mailer {
    pub fn from_config(c: &super::config::EmailConfig) -> Result<Mailer, (String, String)> {
        let key = |k: &str| format!("notifications.email.{k}");
        let transport = transport(&c.smtp_url).map_err(|m| (key("smtp_url"), m))?;
        let from = c
            .from
            .parse()
            .map_err(|e| (key("from"), format!("{:?} is not an address: {e}", c.from)))?;
        let mut to = Vec::new();
        for (i, t) in c.to.iter().enumerate() {
            to.push(t.parse().map_err(|e| {
                (
                    key(&format!("to[{i}]")),
                    format!("{t:?} is not an address: {e}"),
                )
            })?);
        }
        Ok(Mailer {
            transport,
            from,
            to,
            committer_domains: c
                .committer_domains
                .iter()
                .map(|d| d.to_lowercase())
                .collect(),
        })
    }

    /// The committers in `committer_domains`, then `to`, each once.
    fn recipients(&self, committers: &[String]) -> Vec<Mailbox> {
        let mut out: Vec<Mailbox> = Vec::new();
        for email in committers {
            let lower = email.to_lowercase();
            let allowed = lower
                .rsplit_once('@')
                .is_some_and(|(_, domain)| self.committer_domains.iter().any(|d| d == domain));
            if allowed && let Ok(mailbox) = email.parse::<Mailbox>() {
                out.push(mailbox);
            }
        }
        for t in &self.to {
            out.push(t.clone());
        }
        let mut seen = std::collections::HashSet::new();
        out.retain(|m| seen.insert(m.email.to_string().to_lowercase()));
        out
    }

    /// Sends the deploy email; `notes` is `core::notes::notes` of the release.
    pub async fn send_deploy(
        &self,
        environment: &str,
        notes: &Value,
        files_changed: i64,
        release_url: &str,
    ) -> Result<(), String> {
        let committers: Vec<String> = notes["authors"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a["email"].as_str().map(str::to_owned))
            .collect();
        let to = self.recipients(&committers);
        if to.is_empty() {
            return Ok(());
        }
        let version = notes["version"].as_str().unwrap_or_default();
        let (text, html) = deploy_body(environment, notes, files_changed, release_url);
        let mut builder = Message::builder()
            .from(self.from.clone())
            .subject(format!("Deployed version {version} to {environment}"));
        for m in to {
            builder = builder.to(m);
        }
        let message = builder
            .multipart(MultiPart::alternative_plain_html(text, html))
            .map_err(|e| format!("cannot build the email: {e}"))?;
        self.send(message).await
    }

    /// A new issue (or a regression) to `committers` (see `core::issue::mail_committers`) in
    /// `committer_domains`, plus `to`.
    pub async fn send_issue(
        &self,
        regression: bool,
        version: Option<&str>,
        issue: &Value,
        committers: &[String],
    ) -> Result<(), String> {
        let to = self.recipients(committers);
        if to.is_empty() {
            return Ok(());
        }
        let s = |k: &str| issue[k].as_str().unwrap_or_default();
        let what = if regression {
            "Regression"
        } else {
            "New issue"
        };
        let place = version.map(|v| format!(" in {v}")).unwrap_or_default();
        let heading = format!("{what}{place}: {} {}", s("shortId"), s("title"));
        let text = format!("{heading}\n{}\n{}\n", s("culprit"), s("permalink"));
        let html = format!(
            "<p>{}{}: <a href=\"{}\">{}</a> {}</p>\n<p>{}</p>\n",
            what,
            esc(&place),
            esc(s("permalink")),
            esc(s("shortId")),
            esc(s("title")),
            esc(s("culprit"))
        );
        let mut builder = Message::builder().from(self.from.clone()).subject(heading);
        for m in to {
            builder = builder.to(m);
        }
        let message = builder
            .multipart(MultiPart::alternative_plain_html(text, html))
            .map_err(|e| format!("cannot build the email: {e}"))?;
        self.send(message).await
    }

    /// A test message to `to` (or the sender when `to` is empty).
    pub async fn send_test(&self) -> Result<(), String> {
        let mut builder = Message::builder()
            .from(self.from.clone())
            .subject("shiplog: test notification");
        let to = if self.to.is_empty() {
            vec![self.from.clone()]
        } else {
            self.to.clone()
        };
        for m in to {
            builder = builder.to(m);
        }
        let message = builder
            .body("shiplog notifications test".to_owned())
            .map_err(|e| format!("cannot build the email: {e}"))?;
        self.send(message).await
    }

    async fn send(&self, message: Message) -> Result<(), String> {
        self.transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| format!("SMTP: {e}"))
    }
}

/// The text and HTML parts of the deploy email.
fn deploy_body(
    environment: &str,
    notes: &Value,
    files_changed: i64,
    release_url: &str,
) -> (String, String) {
    let version = notes["version"].as_str().unwrap_or_default();
    let commits = notes["commitCount"].as_i64().unwrap_or(0);
    let authors = notes["authors"].as_array().map_or(0, Vec::len);
    // Commits per repository, in the notes' order.
    let mut by_repo: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for section in notes["sections"].as_array().into_iter().flatten() {
        for c in section["commits"].as_array().into_iter().flatten() {
            let repo = c["repository"].as_str().unwrap_or("").to_owned();
            let subject = format!(
                "{} {}",
                c["shortId"].as_str().unwrap_or(""),
                c["description"].as_str().unwrap_or("")
            );
            by_repo
                .entry(repo)
                .or_default()
                .push((subject, c["author"].as_str().unwrap_or("").to_owned()));
        }
    }
    let fixed: Vec<(String, String)> = notes["fixedIssues"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| {
            (
                i["shortId"].as_str().unwrap_or("").to_owned(),
                i["title"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();

    let summary = format!("{commits} commits, {authors} authors, {files_changed} files changed");
    let mut text =
        format!("Version {version} was deployed to {environment}.\n\n{summary}\n{release_url}\n");
    let mut html = format!(
        "<p>Version <a href=\"{}\">{}</a> was deployed to <b>{}</b>.</p>\n<p>{}</p>\n",
        esc(release_url),
        esc(version),
        esc(environment),
        esc(&summary)
    );
    for (repo, list) in &by_repo {
        text.push_str(&format!("\n{repo}\n"));
        html.push_str(&format!("<h3>{}</h3>\n<ul>\n", esc(repo)));
        for (subject, author) in list {
            text.push_str(&format!("  {subject} ({author})\n"));
            html.push_str(&format!(
                "<li>{} <i>{}</i></li>\n",
                esc(subject),
                esc(author)
            ));
        }
        html.push_str("</ul>\n");
    }
    if !fixed.is_empty() {
        text.push_str("\nFixes\n");
        html.push_str("<h3>Fixes</h3>\n<ul>\n");
        for (id, title) in &fixed {
            text.push_str(&format!("  {id} {title}\n"));
            html.push_str(&format!("<li>{} {}</li>\n", esc(id), esc(title)));
        }
        html.push_str("</ul>\n");
    }
    (text, html)
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn mailer(domains: &[&str], to: &[&str]) -> Mailer {
        Mailer::from_config(&crate::notify::config::EmailConfig {
            smtp_url: "smtp://127.0.0.1:2525".into(),
            from: "shiplog <shiplog@example.com>".into(),
            committer_domains: domains.iter().map(|s| s.to_string()).collect(),
            to: to.iter().map(|s| s.to_string()).collect(),
        })
        .unwrap()
    }

    #[test]
    fn only_committers_in_the_domains_and_the_fixed_list_are_mailed() {
        let m = mailer(&["example.com"], &["team@example.com"]);
        let got: Vec<String> = m
            .recipients(&[
                "Ann@Example.com".into(),
                "bob@elsewhere.org".into(),
                "eve@example.com.evil.org".into(),
                "team@example.com".into(),
            ])
            .iter()
            .map(|m| m.email.to_string())
            .collect();
        assert_eq!(got, vec!["Ann@Example.com", "team@example.com"]);
    }

    #[test]
    fn deploy_body_lists_commits_per_repository_and_fixed_issues() {
        let notes = json!({
            "version": "1.0", "commitCount": 2,
            "authors": [{"email": "a@example.com"}],
            "sections": [{"commits": [
                {"repository": "acme/web", "shortId": "abc1234", "description": "fix <login>", "author": "Ann"},
            ]}],
            "fixedIssues": [{"shortId": "WEB-1", "title": "TypeError"}],
        });
        let (text, html) = deploy_body("production", &notes, 3, "http://x/r/");
        assert!(
            text.contains("2 commits, 1 authors, 3 files changed"),
            "{text}"
        );
        assert!(
            text.contains("acme/web\n  abc1234 fix <login> (Ann)"),
            "{text}"
        );
        assert!(text.contains("WEB-1 TypeError"), "{text}");
        assert!(html.contains("fix &lt;login&gt;"), "{html}");
    }

    #[test]
    fn smtp_urls_of_the_three_kinds_are_accepted() {
        assert!(transport("smtp://127.0.0.1:25").is_ok());
        assert!(transport("smtp+starttls://u:p@mail.example.com:587").is_ok());
        assert!(transport("smtps://u:p@mail.example.com").is_ok());
        assert!(transport("http://mail.example.com").is_err());
    }
}
