//! Webhooks signed per the Standard Webhooks spec (standardwebhooks.com): headers
//! `webhook-id`, `webhook-timestamp` and `webhook-signature: v1,<base64 HMAC-SHA256 of
//! "id.timestamp.body">`, keyed with the base64-decoded part of the `whsec_` secret. Receivers
//! check the signature and reject old timestamps, which stops replays.

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The `webhook-signature` header value for this message.
pub fn signature(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    let sig = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    format!("v1,{sig}")
}

/// POSTs a signed message; `Err` says why it was not accepted (any non-2xx status).
pub async fn send(
    client: &reqwest::Client,
    url: &str,
    key: &[u8],
    id: &str,
    body: Vec<u8>,
) -> Result<(), String> {
    let timestamp = chrono::Utc::now().timestamp();
    let sig = signature(key, id, timestamp, &body);
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", sig)
        .body(body)
        .send()
        .await
        .map_err(|e| super::deliver::describe(&e))?;
    super::deliver::check_status(response.status())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the spec's reference libraries (standard-webhooks, "verify" test).
    #[test]
    fn matches_the_reference_signature() {
        let key = base64::engine::general_purpose::STANDARD
            .decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
            .unwrap();
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            signature(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }
}
