//! Sentry's envelope format (sentry-cli-protocol.md §9): the body SDKs and `sentry-cli
//! send-event` post to `/api/{project_id}/envelope/`.
//!
//! ```text
//! {"event_id":"…","dsn":"…"}          envelope header: one JSON object on one line
//! {"type":"event","length":590}        item header; `length` is optional
//! {…590 bytes of payload…}             without `length` the payload runs to the next newline
//! ```
//!
//! Parsing follows Relay: an item with `length` takes exactly that many bytes (a newline after
//! it is optional at the end), an item without one ends at the next newline. Blank lines
//! between items are tolerated. Every item type is returned; what to do with each is the
//! caller's choice (shiplog keeps `event` items and ignores the rest).
//!
//! Pure: no I/O, never panics on any input.

use serde_json::{Map, Value};

/// Why an envelope body could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// The body is empty.
    #[error("empty envelope")]
    Empty,
    /// The first line is not a JSON object.
    #[error("invalid envelope header: {0}")]
    Header(String),
    /// An item header line is not a JSON object with a string `type`.
    #[error("invalid item header at byte {offset}: {reason}")]
    ItemHeader { offset: usize, reason: String },
    /// An item's `length` runs past the end of the body.
    #[error("item at byte {offset} declares {length} bytes but only {available} follow")]
    Truncated {
        offset: usize,
        length: usize,
        available: usize,
    },
    /// A payload of declared length is followed by something other than a newline.
    #[error("missing newline after item payload at byte {0}")]
    MissingNewline(usize),
}

/// One item of an envelope.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// The item type (`event`, `transaction`, `attachment`, `session`, `client_report`, ...).
    pub ty: String,
    pub headers: Map<String, Value>,
    pub payload: Vec<u8>,
}

/// A parsed envelope.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    pub headers: Map<String, Value>,
    pub items: Vec<Item>,
}

impl Envelope {
    /// The `event_id` of the envelope header, if any.
    pub fn event_id(&self) -> Option<&str> {
        self.headers.get("event_id").and_then(Value::as_str)
    }

    /// The `dsn` of the envelope header, if any (an auth source when the request has none).
    pub fn dsn(&self) -> Option<&str> {
        self.headers.get("dsn").and_then(Value::as_str)
    }
}

fn line_end(body: &[u8], from: usize) -> usize {
    body[from..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(body.len(), |p| from + p)
}

fn json_object(bytes: &[u8]) -> Result<Map<String, Value>, String> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err("not a JSON object".to_string()),
        Err(e) => Err(e.to_string()),
    }
}

/// Parses an envelope body.
pub fn parse(body: &[u8]) -> Result<Envelope, EnvelopeError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(EnvelopeError::Empty);
    }
    let end = line_end(body, 0);
    let headers = json_object(&body[..end]).map_err(EnvelopeError::Header)?;
    let mut pos = (end + 1).min(body.len());
    let mut items = Vec::new();
    while pos < body.len() {
        let end = line_end(body, pos);
        let line = &body[pos..end];
        if line.iter().all(u8::is_ascii_whitespace) {
            pos = end + 1;
            continue;
        }
        let item_headers = json_object(line).map_err(|reason| EnvelopeError::ItemHeader {
            offset: pos,
            reason,
        })?;
        let ty = match item_headers.get("type") {
            Some(Value::String(t)) => t.clone(),
            _ => {
                return Err(EnvelopeError::ItemHeader {
                    offset: pos,
                    reason: "missing string field `type`".to_string(),
                });
            }
        };
        let start = (end + 1).min(body.len());
        let payload_end = match item_headers.get("length") {
            Some(v) => {
                let length = v
                    .as_u64()
                    .and_then(|n| usize::try_from(n).ok())
                    .ok_or_else(|| EnvelopeError::ItemHeader {
                        offset: pos,
                        reason: format!("`length` must be a non-negative integer, got {v}"),
                    })?;
                let available = body.len() - start;
                if length > available {
                    return Err(EnvelopeError::Truncated {
                        offset: pos,
                        length,
                        available,
                    });
                }
                let payload_end = start + length;
                match body.get(payload_end) {
                    None | Some(b'\n') => {}
                    Some(b'\r') if body.get(payload_end + 1) == Some(&b'\n') => {}
                    Some(_) => return Err(EnvelopeError::MissingNewline(payload_end)),
                }
                payload_end
            }
            None => line_end(body, start),
        };
        items.push(Item {
            ty,
            headers: item_headers,
            payload: body[start..payload_end].to_vec(),
        });
        pos = payload_end + 1;
        if body.get(payload_end) == Some(&b'\r') {
            pos += 1;
        }
    }
    Ok(Envelope { headers, items })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAPTURED: &str = include_str!("../../tests/fixtures/send_event_envelope.txt");

    #[test]
    fn reads_the_envelope_sentry_cli_sends() {
        let env = parse(CAPTURED.as_bytes()).unwrap();
        assert_eq!(env.event_id(), Some("e19661b2-968f-45c6-ba96-3adcd9fd88f7"));
        assert_eq!(env.items.len(), 1);
        assert_eq!(env.items[0].ty, "event");
        assert_eq!(env.items[0].payload.len(), 544);
        let event: Value = serde_json::from_slice(&env.items[0].payload).unwrap();
        assert_eq!(event["logentry"]["message"], "deploy smoke test");
    }

    #[test]
    fn items_with_and_without_length() {
        let body = b"{}\n{\"type\":\"event\"}\n{\"a\":1}\n{\"type\":\"attachment\",\"length\":3}\na\nb\n{\"type\":\"client_report\"}\n{}";
        let env = parse(body).unwrap();
        let types: Vec<&str> = env.items.iter().map(|i| i.ty.as_str()).collect();
        assert_eq!(types, ["event", "attachment", "client_report"]);
        assert_eq!(env.items[0].payload, b"{\"a\":1}");
        assert_eq!(env.items[1].payload, b"a\nb");
        assert_eq!(env.items[2].payload, b"{}");
    }

    #[test]
    fn length_payload_may_end_the_body_without_newline() {
        let env = parse(b"{}\n{\"type\":\"event\",\"length\":2}\n{}").unwrap();
        assert_eq!(env.items[0].payload, b"{}");
        let env = parse(b"{}\n{\"type\":\"event\",\"length\":0}\n").unwrap();
        assert_eq!(env.items[0].payload, b"");
    }

    #[test]
    fn header_only_envelope_has_no_items() {
        assert!(parse(b"{\"event_id\":\"x\"}").unwrap().items.is_empty());
        assert!(parse(b"{}\n\n\n").unwrap().items.is_empty());
    }

    #[test]
    fn malformed_envelopes_are_refused_with_a_reason() {
        assert_eq!(parse(b""), Err(EnvelopeError::Empty));
        assert_eq!(parse(b" \n"), Err(EnvelopeError::Empty));
        assert!(matches!(
            parse(b"not json\n"),
            Err(EnvelopeError::Header(_))
        ));
        assert!(matches!(parse(b"[1]\n"), Err(EnvelopeError::Header(_))));
        assert!(matches!(
            parse(b"{}\n{\"length\":2}\n{}"),
            Err(EnvelopeError::ItemHeader { .. })
        ));
        assert!(matches!(
            parse(b"{}\nnope\n"),
            Err(EnvelopeError::ItemHeader { offset: 3, .. })
        ));
        assert!(matches!(
            parse(b"{}\n{\"type\":\"event\",\"length\":-1}\n{}"),
            Err(EnvelopeError::ItemHeader { .. })
        ));
        assert_eq!(
            parse(b"{}\n{\"type\":\"event\",\"length\":99}\n{}"),
            Err(EnvelopeError::Truncated {
                offset: 3,
                length: 99,
                available: 2
            })
        );
        assert_eq!(
            parse(b"{}\n{\"type\":\"event\",\"length\":1}\n{}"),
            Err(EnvelopeError::MissingNewline(32))
        );
    }

    mod props {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn never_panics(body in proptest::collection::vec(any::<u8>(), 0..300)) {
                let _ = parse(&body);
            }

            #[test]
            fn never_panics_on_envelope_like_text(
                body in "(\\{\\}|\\{\"type\":\"event\"(,\"length\":[0-9]{1,3})?\\}|\n|[a-z{}\"]{0,5}){0,12}"
            ) {
                let _ = parse(body.as_bytes());
            }
        }
    }
}
