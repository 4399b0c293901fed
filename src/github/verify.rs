//! Webhook signatures: `X-Hub-Signature-256` checked over the raw request bytes.
//!
//! GitHub signs every delivery of a hook that has a secret with HMAC-SHA256 of the body, keyed
//! with that secret, hex-encoded and prefixed `sha256=`. The check runs over the bytes exactly
//! as received (for a form-encoded hook that is the form body, not the JSON inside it) and
//! compares in constant time ([`Mac::verify_slice`]), so a caller learns nothing from how long a
//! wrong guess took. The legacy `X-Hub-Signature` (`sha1=`) is never accepted on its own.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Why a delivery's signature was refused. Each message says what to check on GitHub's side.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// Only the legacy SHA-1 header came.
    #[error(
        "only the legacy X-Hub-Signature (sha1) header was sent; shiplog accepts only X-Hub-Signature-256 (GitHub sends it when the webhook has a secret)"
    )]
    Sha1Only,
    /// No signature header at all: the hook has no secret.
    #[error(
        "missing X-Hub-Signature-256 header: set the webhook's secret on GitHub to the value of github.webhook_secret"
    )]
    Missing,
    /// The header is not `sha256=<64 hex digits>`.
    #[error("malformed X-Hub-Signature-256 header: expected sha256=<64 hex digits>")]
    Malformed,
    /// The signature does not match the body: another secret, or the body was altered.
    #[error(
        "X-Hub-Signature-256 does not match the body: the webhook's secret differs from github.webhook_secret, or the body was altered"
    )]
    Mismatch,
}

/// `sha256=<hex>` for `body` under `secret`: what GitHub sends (used by tests and benchmarks).
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let digest = mac(secret, body).map(|m| hex::encode(m.finalize().into_bytes()));
    format!("sha256={}", digest.unwrap_or_default())
}

/// The MAC of `body`. HMAC takes keys of any length, so this is `None` never in practice.
fn mac(secret: &[u8], body: &[u8]) -> Option<HmacSha256> {
    let mut mac = HmacSha256::new_from_slice(secret).ok()?;
    mac.update(body);
    Some(mac)
}

/// Checks a delivery: `sig256` is the `X-Hub-Signature-256` header, `sig1` whether an
/// `X-Hub-Signature` (SHA-1) header came, `body` the raw bytes.
pub fn verify(
    secret: &[u8],
    sig256: Option<&str>,
    sig1_present: bool,
    body: &[u8],
) -> Result<(), SignatureError> {
    let Some(header) = sig256 else {
        return Err(if sig1_present {
            SignatureError::Sha1Only
        } else {
            SignatureError::Missing
        });
    };
    let header = header.trim();
    let Some(hex_part) = header
        .strip_prefix("sha256=")
        .or_else(|| header.strip_prefix("SHA256="))
    else {
        return Err(if header.starts_with("sha1=") {
            SignatureError::Sha1Only
        } else {
            SignatureError::Malformed
        });
    };
    if hex_part.len() != 64 {
        return Err(SignatureError::Malformed);
    }
    let expected = hex::decode(hex_part).map_err(|_| SignatureError::Malformed)?;
    mac(secret, body)
        .ok_or(SignatureError::Mismatch)?
        .verify_slice(&expected)
        .map_err(|_| SignatureError::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    // GitHub's documented test vector (validating-webhook-deliveries.md).
    const SECRET: &[u8] = b"It's a Secret to Everybody";
    const BODY: &[u8] = b"Hello, World!";
    const SIGNATURE: &str =
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    #[test]
    fn official_test_vector_signs_and_verifies() {
        assert_eq!(sign(SECRET, BODY), SIGNATURE);
        assert_eq!(verify(SECRET, Some(SIGNATURE), false, BODY), Ok(()));
        // Upper-case hex is still the same digest.
        let upper = format!("sha256={}", SIGNATURE[7..].to_uppercase());
        assert_eq!(verify(SECRET, Some(&upper), false, BODY), Ok(()));
    }

    #[test]
    fn wrong_secret_or_altered_body_is_a_mismatch() {
        assert_eq!(
            verify(b"another secret", Some(SIGNATURE), false, BODY),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(SECRET, Some(SIGNATURE), false, b"Hello, World?"),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn missing_sha1_only_and_malformed_headers_are_refused() {
        assert_eq!(
            verify(SECRET, None, false, BODY),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify(SECRET, None, true, BODY),
            Err(SignatureError::Sha1Only)
        );
        assert_eq!(
            verify(SECRET, Some("sha1=0123"), false, BODY),
            Err(SignatureError::Sha1Only)
        );
        for bad in ["757107ea", "sha256=zz", "sha256=", "sha256=757107ea0eb2"] {
            assert_eq!(
                verify(SECRET, Some(bad), false, BODY),
                Err(SignatureError::Malformed),
                "{bad}"
            );
        }
        let not_hex = format!("sha256={}", "g".repeat(64));
        assert_eq!(
            verify(SECRET, Some(&not_hex), false, BODY),
            Err(SignatureError::Malformed)
        );
    }
}
