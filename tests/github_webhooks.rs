//! `POST /webhooks/github` against a real daemon: signed deliveries are stored once and
//! answered 202; every kind of bad delivery is refused with nothing stored.

mod common;

use common::Daemon;
use serde_json::Value;
use shiplog::github::verify::sign;
use shiplog::github::webhook::form_encode;

const SECRET: &str = "It's a Secret to Everybody";

fn config(extra: &str) -> String {
    format!(
        "organization: acme
projects:
  - slug: web
    name: Web
github:
  webhook_secret: \"{SECRET}\"
  api_url: http://127.0.0.1:9
schedules: []
{extra}"
    )
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/github/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// Posts a delivery; `headers` are added as given.
fn post(d: &Daemon, body: Vec<u8>, headers: &[(&str, String)]) -> (u16, Value) {
    let mut req = reqwest::blocking::Client::new()
        .post(format!("{}/webhooks/github", d.url))
        .body(body);
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let resp = req.send().unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn signed(event: &str, guid: &str, body: &[u8]) -> Vec<(&'static str, String)> {
    vec![
        ("content-type", "application/json".into()),
        ("x-github-event", event.into()),
        ("x-github-delivery", guid.into()),
        ("x-github-hook-id", "109948940".into()),
        ("user-agent", "GitHub-Hookshot/044aadd".into()),
        ("x-hub-signature-256", sign(SECRET.as_bytes(), body)),
    ]
}

fn inbox(d: &Daemon) -> i64 {
    d.count("SELECT count(*) FROM inbox")
}

#[test]
fn a_signed_delivery_is_accepted_once() {
    let d = Daemon::start_with(&config(""));
    let body = fixture("ping.json");
    let (status, v) = post(&d, body.clone(), &signed("ping", "guid-1", &body));
    assert_eq!(status, 202, "{v}");
    assert_eq!(v["delivery"], "guid-1");
    assert_eq!(inbox(&d), 1);
    let (status, v) = post(&d, body.clone(), &signed("ping", "guid-1", &body));
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["status"], "duplicate");
    assert_eq!(inbox(&d), 1);
    // The same event through a second hook is another delivery.
    let mut other_hook = signed("ping", "guid-1", &body);
    other_hook[3].1 = "2".into();
    assert_eq!(post(&d, body.clone(), &other_hook).0, 202);
    assert_eq!(inbox(&d), 2);
    let stored: String = d
        .db()
        .query_row(
            "SELECT payload FROM inbox WHERE idem_key = 'github.webhook:109948940:guid-1'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let stored: Value = serde_json::from_str(&stored).unwrap();
    assert_eq!(stored["event"], "ping");
    assert_eq!(
        stored["body"].as_str().unwrap().as_bytes(),
        &body[..],
        "kept byte for byte"
    );
}

#[test]
fn a_form_encoded_delivery_is_verified_over_the_form_bytes() {
    let d = Daemon::start_with(&config(""));
    let json = String::from_utf8(fixture("create-tag.json")).unwrap();
    let form = form_encode(&json).into_bytes();
    let mut headers = signed("create", "guid-form", &form);
    headers[0].1 = "application/x-www-form-urlencoded".into();
    let (status, v) = post(&d, form, &headers);
    assert_eq!(status, 202, "{v}");
    let stored: String = d
        .db()
        .query_row("SELECT payload FROM inbox", [], |r| r.get(0))
        .unwrap();
    let stored: Value = serde_json::from_str(&stored).unwrap();
    assert_eq!(stored["body"].as_str().unwrap(), json);
}

#[test]
fn bad_deliveries_are_refused_and_nothing_is_stored() {
    let d = Daemon::start_with(&config(""));
    let body = fixture("push-branch-update.json");

    let wrong = {
        let mut h = signed("push", "g", &body);
        h[5].1 = sign(b"not the secret", &body);
        h
    };
    let (status, v) = post(&d, body.clone(), &wrong);
    assert_eq!(status, 401);
    assert!(
        v["detail"].as_str().unwrap().contains("does not match"),
        "{v}"
    );

    let missing: Vec<_> = signed("push", "g", &body).into_iter().take(5).collect();
    let (status, v) = post(&d, body.clone(), &missing);
    assert_eq!(status, 401);
    assert!(
        v["detail"]
            .as_str()
            .unwrap()
            .contains("missing X-Hub-Signature-256"),
        "{v}"
    );

    let mut sha1_only: Vec<_> = missing.clone();
    sha1_only.push((
        "x-hub-signature",
        "sha1=7d38cdd689735b008b3c702edd92eea23791c5f6".into(),
    ));
    let (status, v) = post(&d, body.clone(), &sha1_only);
    assert_eq!(status, 401);
    assert!(v["detail"].as_str().unwrap().contains("sha1"), "{v}");

    let mut tampered = body.clone();
    let at = tampered.iter().position(|b| *b == b'R').unwrap();
    tampered[at] = b'r';
    let (status, _) = post(&d, tampered, &signed("push", "g", &body));
    assert_eq!(status, 401);

    let malformed = b"{\"ref\": \"refs/heads/main\", ".to_vec();
    let (status, v) = post(&d, malformed.clone(), &signed("push", "g", &malformed));
    assert_eq!(status, 400);
    assert!(
        v["detail"].as_str().unwrap().contains("not valid JSON"),
        "{v}"
    );

    let mut oversized = b"{\"pad\": \"".to_vec();
    oversized.resize(26 * 1024 * 1024, b'a');
    oversized.extend_from_slice(b"\"}");
    let (status, v) = post(&d, oversized.clone(), &signed("push", "g", &oversized));
    assert_eq!(status, 413, "{v}");

    let no_event: Vec<_> = signed("push", "g", &body)
        .into_iter()
        .filter(|(k, _)| *k != "x-github-event")
        .collect();
    assert_eq!(post(&d, body.clone(), &no_event).0, 400);

    assert_eq!(inbox(&d), 0);
    // And the daemon still takes a good one.
    assert_eq!(post(&d, body.clone(), &signed("push", "g", &body)).0, 202);
    assert_eq!(inbox(&d), 1);
}

#[test]
fn without_a_secret_deliveries_are_refused_with_how_to_fix_it() {
    let d = Daemon::start_with(
        "organization: acme
github:
  api_url: http://127.0.0.1:9
schedules: []
",
    );
    let body = fixture("ping.json");
    let (status, v) = post(&d, body.clone(), &signed("ping", "g", &body));
    assert_eq!(status, 403);
    assert!(
        v["detail"]
            .as_str()
            .unwrap()
            .contains("github.webhook_secret"),
        "{v}"
    );
    assert_eq!(inbox(&d), 0);
}
