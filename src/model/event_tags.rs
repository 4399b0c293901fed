//! An event's user and tags as Sentry shows them.
//!
//! Sentry indexes every event under tags: the ones the SDK sent (`tags`) plus ones it derives
//! from the event itself (`level`, `environment`, `release`, `user`, `transaction`, the
//! runtime, ...). The `user` tag names the user by the first of `id`, `email`, `username`,
//! `ip_address` it has (`id:42`, `email:a@example.com`, ...): it is also what an issue's
//! `userCount` counts distinct values of.
//!
//! Pure: no I/O.

use super::event::{Event, User};

impl User {
    /// Sentry's `EventUser.tag_value`: `id:…`, else `email:…`, else `username:…`, else `ip:…`.
    pub fn tag_value(&self) -> Option<String> {
        [
            ("id", &self.id),
            ("email", &self.email),
            ("username", &self.username),
            ("ip", &self.ip_address),
        ]
        .into_iter()
        .find_map(|(key, v)| v.as_ref().map(|v| format!("{key}:{v}")))
    }
}

fn name_version((name, version): &(String, Option<String>)) -> String {
    match version {
        Some(v) => format!("{name} {v}"),
        None => name.clone(),
    }
}

impl Event {
    /// The `user` tag's value, when the event names a user.
    pub fn user_tag(&self) -> Option<String> {
        self.user.as_ref().and_then(User::tag_value)
    }

    /// Every tag of the event, sorted by key: the SDK's own first (they win over derived ones
    /// of the same key), then those Sentry derives.
    pub fn all_tags(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        let mut add = |key: &str, value: Option<String>| {
            if let Some(v) = value.filter(|v| !v.is_empty())
                && !out.iter().any(|(k, _)| k == key)
            {
                out.push((key.to_string(), v));
            }
        };
        for (k, v) in &self.tags {
            add(k, Some(v.clone()));
        }
        add("level", Some(self.level.clone()));
        add("environment", self.environment.clone());
        add("release", self.release.clone());
        add("dist", self.dist.clone());
        add("logger", self.logger.clone());
        add("server_name", self.server_name.clone());
        add("transaction", self.transaction.clone());
        add("user", self.user_tag());
        add("url", self.request_url.clone());
        if let Some(e) = self.main_exception() {
            add("mechanism", e.mechanism.clone());
            add(
                "handled",
                e.handled.map(|h| if h { "yes" } else { "no" }.to_string()),
            );
        }
        for (key, context) in [
            ("runtime", &self.runtime),
            ("os", &self.os),
            ("browser", &self.browser),
        ] {
            if let Some(c) = context {
                add(key, Some(name_version(c)));
                add(&format!("{key}.name"), Some(c.0.clone()));
            }
        }
        out.sort();
        out
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn event(v: Value) -> Event {
        Event::from_json(v.as_object().unwrap()).unwrap()
    }

    #[test]
    fn the_user_tag_takes_the_first_field_in_sentrys_order() {
        let tag = |user: Value| event(json!({ "user": user })).user_tag();
        assert_eq!(
            tag(json!({"id": 42, "email": "a@example.com"})).as_deref(),
            Some("id:42")
        );
        assert_eq!(
            tag(json!({"email": "a@example.com", "username": "a"})).as_deref(),
            Some("email:a@example.com")
        );
        assert_eq!(tag(json!({"username": "a"})).as_deref(), Some("username:a"));
        assert_eq!(
            tag(json!({"ip_address": "10.0.0.1"})).as_deref(),
            Some("ip:10.0.0.1")
        );
        // Relay fills `{{auto}}` from the connection; shiplog does not, so it names no one.
        assert_eq!(tag(json!({"ip_address": "{{auto}}"})), None);
        assert_eq!(tag(json!({"id": ""})), None);
        assert_eq!(tag(json!({"data": {"plan": "pro"}})), None);
        assert_eq!(tag(json!("nobody")), None);
    }

    #[test]
    fn tags_merge_the_sdks_with_derived_ones_sorted() {
        let e = event(json!({
            "level": "warning",
            "environment": "production",
            "release": "web@1.0",
            "tags": {"release": "overridden", "tenant": "acme", "n": 3},
            "user": {"email": "a@example.com"},
            "transaction": "/checkout",
            "request": {"url": "https://example.com/checkout"},
            "contexts": {"runtime": {"name": "CPython", "version": "3.11.7"}},
            "exception": {"values": [{"type": "E", "mechanism": {"type": "generic", "handled": false}}]}
        }));
        let tags = e.all_tags();
        let get = |k: &str| {
            tags.iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("release"), Some("overridden"));
        assert_eq!(get("tenant"), Some("acme"));
        assert_eq!(get("n"), Some("3"));
        assert_eq!(get("level"), Some("warning"));
        assert_eq!(get("environment"), Some("production"));
        assert_eq!(get("user"), Some("email:a@example.com"));
        assert_eq!(get("transaction"), Some("/checkout"));
        assert_eq!(get("url"), Some("https://example.com/checkout"));
        assert_eq!(get("handled"), Some("no"));
        assert_eq!(get("mechanism"), Some("generic"));
        assert_eq!(get("runtime"), Some("CPython 3.11.7"));
        assert_eq!(get("runtime.name"), Some("CPython"));
        let keys: Vec<&str> = tags.iter().map(|(k, _)| k.as_str()).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        // The list form of `tags` is read too.
        let e = event(json!({"tags": [["a", "1"], ["b"], 5]}));
        assert!(e.all_tags().contains(&("a".into(), "1".into())));
    }
}
