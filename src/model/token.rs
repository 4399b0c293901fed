//! API tokens in sentry-cli's org-token shape.
//!
//! A token is `sntrys_` + standard base64 (with padding) of a JSON payload + `_` + a secret that
//! is 32 random bytes in base64 without padding. sentry-cli decodes the payload and takes the
//! server URL and organization from it, so a CI job needs nothing but `SENTRY_AUTH_TOKEN`
//! (research: sentry-cli-protocol.md §2). Only a SHA-256 of the whole token is ever stored.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub const PREFIX: &str = "sntrys_";

/// What the token carries in the clear. sentry-cli reads `url` and `org`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Payload {
    pub iat: f64,
    pub url: Option<String>,
    pub region_url: Option<String>,
    pub org: String,
}

/// Builds a token from its payload and 32 bytes of secret randomness.
pub fn mint(payload: &Payload, secret: &[u8; 32]) -> String {
    // Serialising a struct of plain fields cannot fail.
    let json = serde_json::to_vec(payload).unwrap_or_default();
    format!(
        "{PREFIX}{}_{}",
        STANDARD.encode(json),
        STANDARD_NO_PAD.encode(secret)
    )
}

/// Decodes the payload of a well-formed org token; `None` for anything else (user tokens,
/// garbage). The server never trusts the payload: it authenticates by hash only.
pub fn payload(token: &str) -> Option<Payload> {
    let rest = token.strip_prefix(PREFIX)?;
    let (encoded, _secret) = rest.split_once('_')?;
    let json = STANDARD.decode(encoded).ok()?;
    serde_json::from_slice(&json).ok()
}

/// The value stored in the database for a token: lowercase hex SHA-256 of the whole string.
pub fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_has_sentry_cli_shape() {
        let p = Payload {
            iat: 1.5,
            url: Some("http://127.0.0.1:8740".into()),
            region_url: Some("http://127.0.0.1:8740".into()),
            org: "acme".into(),
        };
        let t = mint(&p, &[7u8; 32]);
        assert!(t.starts_with("sntrys_"));
        // sentry-cli requires exactly two underscores: after the prefix and before the secret.
        assert_eq!(t.matches('_').count(), 2);
        let secret = t.rsplit('_').next().unwrap();
        assert_eq!(STANDARD_NO_PAD.decode(secret).unwrap().len(), 32);
        assert_eq!(payload(&t), Some(p));
    }

    #[test]
    fn foreign_tokens_have_no_payload() {
        assert_eq!(payload("sntrys_test"), None);
        assert_eq!(payload("sntryu_abc"), None);
        assert_eq!(payload(""), None);
    }

    #[test]
    fn hash_is_stable_hex() {
        assert_eq!(hash("x").len(), 64);
        assert_eq!(hash("x"), hash("x"));
        assert_ne!(hash("x"), hash("y"));
    }
}
