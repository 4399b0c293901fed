//! Slack-compatible incoming webhooks (Slack, Mattermost, Rocket.Chat, ...): one short
//! `text` line with a link to the web page of the release or issue.

use serde_json::{Value, json};

/// Escapes text for Slack's mrkdwn (`&`, `<`, `>` are its only control characters).
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// `{public_url}/organizations/{org}/releases/{version}/`, the version percent-encoded.
pub fn release_url(public_url: &str, org: &str, version: &str) -> String {
    let Ok(mut url) = reqwest::Url::parse(public_url) else {
        return public_url.to_owned();
    };
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty()
            .extend(["organizations", org, "releases", version, ""]);
    }
    url.to_string()
}

/// The message for an event whose `data` is the webhook payload's.
pub fn message(event_type: &str, data: &Value, public_url: &str, org: &str) -> Value {
    let s = |v: &Value| v.as_str().map(escape).unwrap_or_default();
    let release_link = |release: &Value| {
        let version = release["version"].as_str().unwrap_or_default();
        format!(
            "<{}|{}>",
            release_url(public_url, org, version),
            escape(version)
        )
    };
    let text = match event_type {
        crate::core::notify::DEPLOY_CREATED => format!(
            "Deployed {} to *{}*",
            release_link(&data["release"]),
            s(&data["deploy"]["environment"])
        ),
        crate::core::notify::RELEASE_CREATED => {
            format!("New release {}", release_link(&data["release"]))
        }
        crate::core::notify::RELEASE_FINALIZED => {
            format!("Release {} finalized", release_link(&data["release"]))
        }
        _ => {
            let issue = &data["issue"];
            let what = match event_type {
                crate::core::notify::ISSUE_CREATED => "New issue",
                crate::core::notify::ISSUE_REGRESSED => "Regression",
                crate::core::notify::ISSUE_RESOLVED => "Resolved",
                _ => "Issue",
            };
            format!(
                "{what}: <{}|{}> {}",
                issue["permalink"].as_str().unwrap_or_default(),
                s(&issue["shortId"]),
                s(&issue["title"])
            )
        }
    };
    json!({ "text": text })
}

/// POSTs the message; `Err` says why it was not accepted.
pub async fn send(client: &reqwest::Client, url: &str, message: &Value) -> Result<(), String> {
    let response = client
        .post(url)
        .json(message)
        .send()
        .await
        .map_err(|e| super::deliver::describe(&e))?;
    super::deliver::check_status(response.status())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deploy_message_links_the_release_page() {
        let data = json!({
            "release": {"version": "app@1.0 <b>"},
            "deploy": {"environment": "production"},
        });
        let m = message("deploy.created", &data, "http://x", "acme");
        let text = m["text"].as_str().unwrap();
        assert!(
            text.starts_with("Deployed <http://x/organizations/acme/releases/app@1.0%20%3Cb%3E/|"),
            "{text}"
        );
        assert!(
            text.ends_with("|app@1.0 &lt;b&gt;> to *production*"),
            "{text}"
        );
    }
}
