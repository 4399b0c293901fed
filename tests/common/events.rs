//! Helpers for the issue tests: a project's DSN, and envelopes posted to the ingest endpoint
//! the way SDKs post them.

#![allow(dead_code)]

use std::io::Write;

use serde_json::{Value, json};

use super::{Daemon, stderr, stdout};

/// A parsed DSN: `http://<key>@<host:port>/<project id>`.
#[derive(Debug, Clone)]
pub struct Dsn {
    pub text: String,
    pub key: String,
    pub host: String,
    pub project_id: String,
}

/// `shiplog projects dsn SLUG`, parsed.
pub fn dsn(d: &Daemon, slug: &str) -> Dsn {
    let out = d.shiplog(&["projects", "dsn", slug]);
    assert!(out.status.success(), "projects dsn: {}", stderr(&out));
    let text = stdout(&out).trim().to_string();
    let rest = text.strip_prefix("http://").expect("http DSN");
    let (key, rest) = rest.split_once('@').expect("key@");
    let (host, project_id) = rest.split_once('/').expect("host/id");
    Dsn {
        text: text.clone(),
        key: key.to_string(),
        host: host.to_string(),
        project_id: project_id.to_string(),
    }
}

/// An envelope with one event item, as sentry-cli writes it.
pub fn envelope(event: &Value) -> Vec<u8> {
    let payload = serde_json::to_vec(event).unwrap();
    let mut body = Vec::new();
    let header = match event.get("event_id") {
        Some(id) => json!({ "event_id": id }),
        None => json!({}),
    };
    writeln!(body, "{header}").unwrap();
    writeln!(
        body,
        "{}",
        json!({"type": "event", "length": payload.len()})
    )
    .unwrap();
    body.extend_from_slice(&payload);
    body.push(b'\n');
    body
}

/// A random event id.
pub fn event_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(1);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    format!("{:016x}{:016x}", t ^ u64::from(std::process::id()), n)
}

/// An exception event from `release`.
pub fn error_event(ty: &str, value: &str, release: Option<&str>) -> Value {
    let mut e = json!({
        "event_id": event_id(),
        "timestamp": std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64(),
        "platform": "python",
        "level": "error",
        "environment": "production",
        "exception": {"values": [{"type": ty, "value": value, "stacktrace": {"frames": [
            {"filename": "app/main.py", "function": "main", "in_app": true, "lineno": 3},
            {"filename": "app/billing/charge.py", "module": "app.billing.charge", "function": "charge", "in_app": true, "lineno": 42}
        ]}}]},
    });
    if let Some(r) = release {
        e["release"] = json!(r);
    }
    e
}

/// Posts raw bytes to `/api/{project}/envelope/` with the given headers.
pub fn post_raw(d: &Daemon, path: &str, body: Vec<u8>, headers: &[(&str, &str)]) -> (u16, Value) {
    let client = reqwest::blocking::Client::new();
    let mut req = client.post(format!("{}{path}", d.url)).body(body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().expect("post");
    let status = resp.status().as_u16();
    let text = resp.text().unwrap_or_default();
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, value)
}

/// Posts one event as an envelope with a valid `X-Sentry-Auth`; returns status and body.
pub fn send_event(d: &Daemon, dsn: &Dsn, event: &Value) -> (u16, Value) {
    let auth = format!(
        "Sentry sentry_key={}, sentry_version=7, sentry_client=shiplog-tests/1",
        dsn.key
    );
    post_raw(
        d,
        &format!("/api/{}/envelope/", dsn.project_id),
        envelope(event),
        &[("X-Sentry-Auth", &auth)],
    )
}

/// Sends an event and returns the short id of its issue.
pub fn send_and_find(d: &Daemon, dsn: &Dsn, event: &Value) -> Value {
    let (status, body) = send_event(d, dsn, event);
    assert_eq!(status, 200, "{body}\n{}", d.log());
    let id = body["id"].as_str().expect("id").to_string();
    let n = d.count(&format!(
        "SELECT issue_id FROM events WHERE event_id = '{id}'"
    ));
    let (status, issue) = d.api("GET", &format!("organizations/acme/issues/{n}/"), None);
    assert_eq!(status, 200, "{issue}");
    issue
}
