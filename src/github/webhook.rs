//! Taking in a webhook delivery: from raw HTTP parts to a verified [`Delivery`] for the inbox.
//!
//! This is everything the endpoint does before answering GitHub, kept free of axum so the rules
//! are unit-tested here: the signature is checked over the raw body first (for a form-encoded
//! hook that is the form bytes, not the JSON inside), then the JSON is extracted (`payload=` of
//! a form) and checked to be a JSON object. Nothing is parsed further: the delivery is stored as
//! received and read by the pipeline handler later, so the answer goes back within
//! milliseconds (GitHub gives up after 10 s and never retries).
//!
//! Deliveries are deduplicated on `(X-GitHub-Hook-ID, X-GitHub-Delivery)`: the delivery GUID
//! identifies the event and is shared by every hook subscribed to it, and a manual redelivery
//! repeats it.

use serde::{Deserialize, Serialize};

use super::verify::{self, SignatureError};
use crate::pipeline::Event;

/// The largest delivery accepted: GitHub caps payloads at 25 MB and does not send larger ones.
pub const MAX_BODY: usize = 25 * 1024 * 1024;

/// A verified delivery, as stored in the inbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// `X-GitHub-Event`: `push`, `create`, `release`, `ping`, ...
    pub event: String,
    /// `X-GitHub-Delivery`, the event's GUID.
    pub delivery: String,
    /// `X-GitHub-Hook-ID`, the webhook configuration that sent it (`-` when absent).
    pub hook_id: String,
    pub received_at: String,
    /// The payload JSON exactly as received (for a form delivery, the `payload` field).
    pub body: String,
}

impl Event for Delivery {
    const KIND: &'static str = "github.webhook";
    fn idempotency_key(&self) -> String {
        format!("{}:{}", self.hook_id, self.delivery)
    }
}

/// What the endpoint read from the request.
#[derive(Debug, Clone, Copy, Default)]
pub struct Request<'a> {
    pub event: Option<&'a str>,
    pub delivery: Option<&'a str>,
    pub hook_id: Option<&'a str>,
    pub signature_256: Option<&'a str>,
    /// Whether the legacy `X-Hub-Signature` (SHA-1) header came.
    pub signature_1: bool,
    pub content_type: Option<&'a str>,
    pub body: &'a [u8],
}

/// Why a delivery was refused; each maps to one HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IntakeError {
    /// No secret configured: unsigned deliveries are never accepted (403).
    #[error(
        "GitHub webhooks are disabled: set github.webhook_secret (or $GITHUB_WEBHOOK_SECRET) to the webhook's secret and restart shiplog"
    )]
    NoSecret,
    /// The signature is missing, SHA-1 only or wrong (401).
    #[error(transparent)]
    Signature(#[from] SignatureError),
    /// The request is not a GitHub delivery shiplog can read (400).
    #[error("{0}")]
    Malformed(String),
}

/// Verifies a delivery and turns it into the inbox event.
pub fn intake(secret: Option<&str>, req: &Request<'_>, now: &str) -> Result<Delivery, IntakeError> {
    let secret = secret
        .filter(|s| !s.is_empty())
        .ok_or(IntakeError::NoSecret)?;
    verify::verify(
        secret.as_bytes(),
        req.signature_256,
        req.signature_1,
        req.body,
    )?;
    let event = req
        .event
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .ok_or_else(|| {
            IntakeError::Malformed("missing X-GitHub-Event header: which event is this?".into())
        })?;
    let is_form = req
        .content_type
        .map(|c| {
            c.trim()
                .to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        })
        .unwrap_or(false);
    let json = if is_form {
        form_payload(req.body)?
    } else {
        String::from_utf8(req.body.to_vec())
            .map_err(|_| IntakeError::Malformed("the body is not UTF-8 JSON".into()))?
    };
    check_json_object(&json)?;
    // Without a GUID (a hand-made request), identical bodies are one delivery.
    let delivery = match req.delivery.map(str::trim).filter(|d| !d.is_empty()) {
        Some(d) => d.to_owned(),
        None => format!("sha256-{}", hex::encode(sha2_digest(json.as_bytes()))),
    };
    let hook_id = req
        .hook_id
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .unwrap_or("-")
        .to_owned();
    Ok(Delivery {
        event: event.to_owned(),
        delivery,
        hook_id,
        received_at: now.to_owned(),
        body: json,
    })
}

fn sha2_digest(bytes: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).to_vec()
}

/// Parses as JSON without building a tree (cheap), and requires an object.
fn check_json_object(json: &str) -> Result<(), IntakeError> {
    if !json.trim_start().starts_with('{') {
        return Err(IntakeError::Malformed(
            "the payload is not a JSON object".into(),
        ));
    }
    serde_json::from_str::<serde::de::IgnoredAny>(json)
        .map(|_| ())
        .map_err(|e| IntakeError::Malformed(format!("the payload is not valid JSON: {e}")))
}

/// The `payload` field of a form-encoded delivery, decoded.
fn form_payload(body: &[u8]) -> Result<String, IntakeError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| IntakeError::Malformed("the form body is not UTF-8".into()))?;
    let value = text
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == "payload")
        .map(|(_, v)| v)
        .ok_or_else(|| {
            IntakeError::Malformed(
                "a form-encoded delivery must carry the JSON in a `payload` field".into(),
            )
        })?;
    percent_decode(value).ok_or_else(|| {
        IntakeError::Malformed("the `payload` field is not valid form encoding".into())
    })
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space, `%XX` a byte.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// Form-encodes a JSON payload the way GitHub does for `content_type: form` hooks (tests and
/// benchmarks).
pub fn form_encode(json: &str) -> String {
    let mut out = String::from("payload=");
    for b in json.bytes() {
        match b {
            b' ' => out.push('+'),
            b if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'*') => {
                out.push(b as char)
            }
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::github::verify::sign;

    const SECRET: &str = "s3cret";
    const NOW: &str = "2026-11-21T00:00:00.000000Z";

    fn request<'a>(body: &'a [u8], sig: &'a str) -> Request<'a> {
        Request {
            event: Some("push"),
            delivery: Some("72d3162e-cc78-11e3-81ab-4c9367dc0958"),
            hook_id: Some("42"),
            signature_256: Some(sig),
            content_type: Some("application/json"),
            body,
            ..Default::default()
        }
    }

    #[test]
    fn json_delivery_is_verified_and_keyed_by_hook_and_guid() {
        let body = br#"{"zen": "Keep it logically awesome."}"#;
        let sig = sign(SECRET.as_bytes(), body);
        let d = intake(Some(SECRET), &request(body, &sig), NOW).unwrap();
        assert_eq!(d.event, "push");
        assert_eq!(d.body.as_bytes(), body);
        assert_eq!(
            d.idempotency_key(),
            "42:72d3162e-cc78-11e3-81ab-4c9367dc0958"
        );
    }

    #[test]
    fn form_delivery_is_verified_over_the_form_bytes() {
        let json = r#"{"zen": "Half measures are as bad as nothing at all.", "n": "a&b=c+d%"}"#;
        let form = form_encode(json);
        let sig = sign(SECRET.as_bytes(), form.as_bytes());
        let mut req = request(form.as_bytes(), &sig);
        req.content_type = Some("application/x-www-form-urlencoded");
        let d = intake(Some(SECRET), &req, NOW).unwrap();
        assert_eq!(d.body, json);
        // Signing the JSON instead of the form bytes is not GitHub's scheme.
        let wrong = sign(SECRET.as_bytes(), json.as_bytes());
        req.signature_256 = Some(&wrong);
        assert!(matches!(
            intake(Some(SECRET), &req, NOW),
            Err(IntakeError::Signature(SignatureError::Mismatch))
        ));
    }

    #[test]
    fn refusals_happen_before_anything_is_read() {
        let body = br#"{"a": 1}"#;
        let sig = sign(SECRET.as_bytes(), body);
        assert_eq!(
            intake(None, &request(body, &sig), NOW),
            Err(IntakeError::NoSecret)
        );
        assert_eq!(
            intake(Some(""), &request(body, &sig), NOW),
            Err(IntakeError::NoSecret)
        );
        let mut req = request(body, &sig);
        req.signature_256 = None;
        req.signature_1 = true;
        assert_eq!(
            intake(Some(SECRET), &req, NOW),
            Err(IntakeError::Signature(SignatureError::Sha1Only))
        );
        let tampered = br#"{"a": 2}"#;
        assert_eq!(
            intake(Some(SECRET), &request(tampered, &sig), NOW),
            Err(IntakeError::Signature(SignatureError::Mismatch))
        );
    }

    #[test]
    fn malformed_bodies_are_refused_after_the_signature() {
        for body in [&b"{not json"[..], b"[1, 2]", b"", b"\xff\xfe"] {
            let sig = sign(SECRET.as_bytes(), body);
            assert!(
                matches!(
                    intake(Some(SECRET), &request(body, &sig), NOW),
                    Err(IntakeError::Malformed(_))
                ),
                "{body:?}"
            );
        }
        let body = b"other=1";
        let sig = sign(SECRET.as_bytes(), body);
        let mut req = request(body, &sig);
        req.content_type = Some("application/x-www-form-urlencoded");
        assert!(matches!(
            intake(Some(SECRET), &req, NOW),
            Err(IntakeError::Malformed(_))
        ));
        let mut req = request(br#"{}"#, "");
        let sig = sign(SECRET.as_bytes(), b"{}");
        req.signature_256 = Some(&sig);
        req.event = None;
        assert!(matches!(
            intake(Some(SECRET), &req, NOW),
            Err(IntakeError::Malformed(_))
        ));
    }

    #[test]
    fn missing_guid_falls_back_to_the_body_hash() {
        let body = br#"{"a": 1}"#;
        let sig = sign(SECRET.as_bytes(), body);
        let mut req = request(body, &sig);
        req.delivery = None;
        req.hook_id = None;
        let a = intake(Some(SECRET), &req, NOW).unwrap();
        let b = intake(Some(SECRET), &req, NOW).unwrap();
        assert_eq!(a.idempotency_key(), b.idempotency_key());
        assert!(a.idempotency_key().starts_with("-:sha256-"));
    }
}
