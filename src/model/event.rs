//! Error events as SDKs send them, reduced to what shiplog keeps.
//!
//! [`Event::from_json`] reads the parts of Sentry's event payload that matter here (id,
//! timestamp, level, release, environment, message or logentry, exceptions with their stack
//! frames, fingerprint, user, tags) and tolerates everything else, as Relay does. Which issue
//! an event belongs to and what that issue is called is [`super::grouping`]'s business; the
//! user and tags the API shows are [`super::event_tags`]'.
//!
//! Pure: no I/O, never panics on any input.

use std::ops::Range;
use std::sync::LazyLock;

use chrono::{DateTime, TimeZone, Utc};
use regex::Regex;
use serde_json::{Map, Value};

/// At most this many frames are kept per event.
pub const MAX_FRAMES: usize = 250;

/// Why an event payload was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// The payload is not a JSON object.
    #[error("event payload is not a JSON object: {0}")]
    NotAnObject(String),
    /// `event_id` is not a UUID.
    #[error("invalid event_id {0:?}: expected 32 hexadecimal digits, dashes allowed")]
    BadEventId(String),
}

/// One stack frame, as stored for suspect-commit matching and display. The fields only
/// grouping reads (`colno`, `context_line`, `package`) are not stored.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Frame {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub abs_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub module: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lineno: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub in_app: Option<bool>,
    #[serde(skip)]
    pub platform: Option<String>,
    #[serde(skip)]
    pub colno: Option<i64>,
    #[serde(skip)]
    pub package: Option<String>,
    #[serde(skip)]
    pub context_line: Option<String>,
}

/// One exception of an event (Sentry orders them oldest first; the last is the one raised).
#[derive(Debug, Clone, PartialEq)]
pub struct Exception {
    pub ty: Option<String>,
    pub value: Option<String>,
    pub module: Option<String>,
    /// `mechanism.synthetic`: the SDK made this exception up to carry a stack trace (a message
    /// captured with `attachStacktrace`, a non-Error thrown in JavaScript); its type and value
    /// say nothing.
    pub synthetic: bool,
    /// `mechanism.type` and `mechanism.handled`, for the `mechanism` and `handled` tags.
    pub mechanism: Option<String>,
    pub handled: Option<bool>,
    /// Its stack frames: a range of [`Event::frames`].
    pub frames: Range<usize>,
}

/// The user an event is about (Sentry's user interface, the fields shiplog shows).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct User {
    pub id: Option<String>,
    pub email: Option<String>,
    pub username: Option<String>,
    pub ip_address: Option<String>,
    pub name: Option<String>,
}

/// The parts of an event shiplog keeps.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// 32 lowercase hex digits, when the event has one.
    pub event_id: Option<String>,
    pub timestamp: Option<DateTime<Utc>>,
    pub level: String,
    pub platform: Option<String>,
    pub release: Option<String>,
    pub dist: Option<String>,
    pub environment: Option<String>,
    pub logger: Option<String>,
    pub server_name: Option<String>,
    /// The message as shown (parameters substituted).
    pub message: Option<String>,
    /// The message template (`hello %s`), when the event sent one.
    pub message_template: Option<String>,
    pub exceptions: Vec<Exception>,
    /// Frames, oldest call first (Sentry's order), at most [`MAX_FRAMES`]: every exception's,
    /// then the event's own stack trace (or its thread's).
    pub frames: Vec<Frame>,
    /// The event's own stack trace (`stacktrace`, or the one thread that has one), when Sentry
    /// would group by it: a range of [`Event::frames`].
    pub stacktrace: Option<Range<usize>>,
    pub fingerprint: Option<Vec<String>>,
    pub culprit: Option<String>,
    pub transaction: Option<String>,
    pub request_url: Option<String>,
    pub user: Option<User>,
    /// The event's own `tags`, in the order sent.
    pub tags: Vec<(String, String)>,
    /// `contexts.runtime`, `contexts.os`, `contexts.browser` as `(name, version)`.
    pub runtime: Option<(String, Option<String>)>,
    pub os: Option<(String, Option<String>)>,
    pub browser: Option<(String, Option<String>)>,
}

fn string(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Normalises an event id: 32 hex digits, dashes allowed, any case.
pub fn normalize_event_id(text: &str) -> Option<String> {
    let hex: String = text.chars().filter(|c| *c != '-').collect();
    (hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then(|| hex.to_lowercase())
}

/// Reads Sentry's `timestamp`: Unix seconds (a number or a numeric string) or RFC 3339, where
/// a missing offset means UTC.
pub fn parse_timestamp(v: &Value) -> Option<DateTime<Utc>> {
    let from_secs = |secs: f64| {
        if !secs.is_finite() || !(0.0..=253_402_300_799.0).contains(&secs) {
            return None;
        }
        let whole = secs.trunc() as i64;
        let nanos = ((secs - secs.trunc()) * 1e9) as u32;
        Utc.timestamp_opt(whole, nanos.min(999_999_999)).single()
    };
    match v {
        Value::Number(n) => from_secs(n.as_f64()?),
        Value::String(s) => {
            if let Ok(secs) = s.trim().parse::<f64>() {
                return from_secs(secs);
            }
            crate::model::time::parse(s).or_else(|| {
                chrono::NaiveDateTime::parse_from_str(s.trim(), "%Y-%m-%dT%H:%M:%S%.f")
                    .ok()
                    .map(|t| t.and_utc())
            })
        }
        _ => None,
    }
}

static PRINTF: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"%(?:\([A-Za-z0-9_]+\))?[#0\- +]?\d*(?:\.\d+)?[hlL]?([diouxXeEfFgGcrs%])")
        .expect("static regex")
});
static BRACES: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\{(\d*)\}").expect("static regex"));

fn param_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Substitutes `%s`-style and `{}`-style placeholders with the parameters, like Relay's
/// logentry normalisation; a template with no placeholders is returned as is.
pub fn format_message(template: &str, params: &[Value]) -> String {
    if params.is_empty() {
        return template.to_string();
    }
    let mut next = 0;
    let out = PRINTF.replace_all(template, |c: &regex::Captures<'_>| {
        if &c[1] == "%" {
            return "%".to_string();
        }
        let p = params.get(next).map(param_text);
        next += 1;
        p.unwrap_or_else(|| c[0].to_string())
    });
    if next > 0 {
        return out.into_owned();
    }
    let mut next = 0;
    BRACES
        .replace_all(template, |c: &regex::Captures<'_>| {
            let index = if c[1].is_empty() {
                next += 1;
                next - 1
            } else {
                c[1].parse().unwrap_or(usize::MAX)
            };
            params
                .get(index)
                .map(param_text)
                .unwrap_or_else(|| c[0].to_string())
        })
        .into_owned()
}

/// Appends a stack trace's frames to `out`; returns the range they took.
fn frames_of(
    stacktrace: Option<&Value>,
    platform: Option<&str>,
    out: &mut Vec<Frame>,
) -> Range<usize> {
    let start = out.len();
    let Some(frames) = stacktrace
        .and_then(|s| s.get("frames"))
        .and_then(Value::as_array)
    else {
        return start..start;
    };
    for f in frames {
        if out.len() >= MAX_FRAMES {
            break;
        }
        if !f.is_object() {
            continue;
        }
        out.push(Frame {
            filename: string(f.get("filename")),
            abs_path: string(f.get("abs_path")),
            module: string(f.get("module")),
            function: string(f.get("function")),
            lineno: f.get("lineno").and_then(Value::as_i64),
            in_app: f.get("in_app").and_then(Value::as_bool),
            platform: string(f.get("platform")).or_else(|| platform.map(str::to_string)),
            colno: f.get("colno").and_then(Value::as_i64),
            package: string(f.get("package")),
            context_line: string(f.get("context_line")),
        });
    }
    start..out.len()
}

fn values(v: Option<&Value>) -> Vec<&Value> {
    match v {
        Some(Value::Array(list)) => list.iter().collect(),
        Some(Value::Object(o)) => o
            .get("values")
            .and_then(Value::as_array)
            .map(|l| l.iter().collect())
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// A context's `(name, version)` (`contexts.runtime` and the like).
fn context(payload: &Map<String, Value>, key: &str) -> Option<(String, Option<String>)> {
    let c = payload.get("contexts")?.get(key)?;
    Some((string(c.get("name"))?, string(c.get("version"))))
}

/// Sentry's `tags`: an object, or a list of `[key, value]` pairs.
fn tags_of(v: Option<&Value>) -> Vec<(String, String)> {
    let pair = |k: &str, v: &Value| {
        let v = match v {
            Value::String(s) => s.clone(),
            Value::Number(_) | Value::Bool(_) => v.to_string(),
            _ => return None,
        };
        (!k.is_empty() && !v.is_empty()).then(|| (k.to_string(), v))
    };
    match v {
        Some(Value::Object(o)) => o.iter().filter_map(|(k, v)| pair(k, v)).collect(),
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(|p| match p.as_array().map(Vec::as_slice) {
                Some([Value::String(k), v]) => pair(k, v),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn user_of(v: Option<&Value>) -> Option<User> {
    let u = v?.as_object()?;
    let field = |k: &str| string(u.get(k)).filter(|s| !s.trim().is_empty());
    let user = User {
        id: field("id"),
        email: field("email"),
        username: field("username"),
        // `{{auto}}` asks Relay for the client's address, which shiplog does not record.
        ip_address: field("ip_address").filter(|ip| ip != "{{auto}}"),
        name: field("name"),
    };
    (user != User::default()).then_some(user)
}

impl Event {
    /// Reads an event payload. Only a payload that is not a JSON object, or an `event_id`
    /// that is not a UUID, is refused; anything else unusable is ignored.
    pub fn from_json(payload: &Map<String, Value>) -> Result<Event, EventError> {
        let event_id = match payload.get("event_id") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => {
                Some(normalize_event_id(s).ok_or_else(|| EventError::BadEventId(s.clone()))?)
            }
            Some(other) => return Err(EventError::BadEventId(other.to_string())),
        };
        let platform = string(payload.get("platform"));
        let (message, message_template) = Self::message_of(payload);

        let mut exceptions = Vec::new();
        let mut frames = Vec::new();
        for e in values(payload.get("exception")) {
            let mechanism = e.get("mechanism");
            let frames = frames_of(e.get("stacktrace"), platform.as_deref(), &mut frames);
            exceptions.push(Exception {
                ty: string(e.get("type")),
                value: string(e.get("value")),
                module: string(e.get("module")),
                synthetic: mechanism.and_then(|m| m.get("synthetic")) == Some(&Value::Bool(true)),
                mechanism: string(mechanism.and_then(|m| m.get("type"))),
                handled: mechanism
                    .and_then(|m| m.get("handled"))
                    .and_then(Value::as_bool),
                frames,
            });
        }
        let mut stacktrace = payload
            .get("stacktrace")
            .map(|s| frames_of(Some(s), platform.as_deref(), &mut frames));
        if frames.is_empty() {
            // A crashed thread's stack, else the first thread that has one; Sentry groups by
            // it only when it is the one crashed thread or the only thread with a stack.
            let threads = values(payload.get("threads"));
            let with_stack: Vec<&&Value> = threads
                .iter()
                .filter(|t| t.get("stacktrace").is_some())
                .collect();
            let crashed: Vec<&&Value> = with_stack
                .iter()
                .copied()
                .filter(|t| t.get("crashed") == Some(&Value::Bool(true)))
                .collect();
            let thread = crashed.first().or_else(|| with_stack.first());
            if let Some(t) = thread {
                let range = frames_of(t.get("stacktrace"), platform.as_deref(), &mut frames);
                if crashed.len() == 1 || with_stack.len() == 1 {
                    stacktrace = Some(range);
                }
            }
        }

        let fingerprint = payload
            .get("fingerprint")
            .and_then(Value::as_array)
            .map(|list| {
                list.iter()
                    .filter_map(|v| match v {
                        Value::String(s) => Some(s.clone()),
                        Value::Number(n) => Some(n.to_string()),
                        Value::Bool(b) => Some(b.to_string()),
                        _ => None,
                    })
                    .collect::<Vec<_>>()
            })
            .filter(|l| !l.is_empty());

        Ok(Event {
            event_id,
            timestamp: payload.get("timestamp").and_then(parse_timestamp),
            level: string(payload.get("level"))
                .map(|l| l.to_lowercase())
                .unwrap_or_else(|| "error".to_string()),
            platform,
            release: string(payload.get("release")).map(|r| r.trim().to_string()),
            dist: string(payload.get("dist")),
            environment: string(payload.get("environment")),
            logger: string(payload.get("logger")),
            server_name: string(payload.get("server_name")),
            message,
            message_template,
            exceptions,
            frames,
            stacktrace,
            fingerprint,
            culprit: string(payload.get("culprit")),
            transaction: string(payload.get("transaction")),
            request_url: string(payload.get("request").and_then(|r| r.get("url"))),
            user: user_of(payload.get("user")),
            tags: tags_of(payload.get("tags")),
            runtime: context(payload, "runtime"),
            os: context(payload, "os"),
            browser: context(payload, "browser"),
        })
    }

    fn message_of(payload: &Map<String, Value>) -> (Option<String>, Option<String>) {
        let entry = payload
            .get("logentry")
            .or_else(|| match payload.get("message") {
                Some(v @ Value::Object(_)) => Some(v),
                _ => None,
            });
        if let Some(entry) = entry {
            let template = string(entry.get("message"));
            let params: Vec<Value> = entry
                .get("params")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let formatted = string(entry.get("formatted"))
                .or_else(|| template.as_deref().map(|t| format_message(t, &params)));
            if formatted.is_some() || template.is_some() {
                return (formatted, template);
            }
        }
        match payload.get("message") {
            Some(Value::String(s)) if !s.is_empty() => (Some(s.clone()), None),
            _ => (None, None),
        }
    }

    /// The exception that was raised (Sentry's `exception.values[-1]`).
    pub fn main_exception(&self) -> Option<&Exception> {
        self.exceptions.last()
    }

    /// The frames of one exception's stack trace, or of the event's own.
    pub fn frames_in(&self, range: &Range<usize>) -> &[Frame] {
        self.frames.get(range.clone()).unwrap_or(&[])
    }
}

static HEX_NUMBER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b0[xX][0-9a-fA-F]+\b").expect("static regex"));
static DIGITS: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"[0-9]+").expect("static regex"));

/// Replaces hexadecimal literals and digit runs with placeholders, for grouping.
pub fn strip_numbers(text: &str) -> String {
    let text = HEX_NUMBER.replace_all(text, "<hex>");
    DIGITS.replace_all(&text, "<int>").into_owned()
}

/// Cuts `text` to `max` characters, marking the cut with `...`.
pub fn truncate_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn event(v: Value) -> Event {
        Event::from_json(v.as_object().unwrap()).unwrap()
    }

    #[test]
    fn reads_the_event_sentry_cli_sends() {
        let text = include_str!("../../tests/fixtures/send_event_envelope.txt");
        let payload = text.lines().nth(2).unwrap();
        let v: Value = serde_json::from_str(payload).unwrap();
        let e = event(v);
        assert_eq!(
            e.event_id.as_deref(),
            Some("e19661b2968f45c6ba963adcd9fd88f7")
        );
        assert_eq!(e.release.as_deref(), Some("1.0.0"));
        assert_eq!(e.environment.as_deref(), Some("production"));
        assert_eq!(e.message.as_deref(), Some("deploy smoke test"));
        assert_eq!(e.level, "error");
        assert_eq!(
            e.timestamp.map(crate::model::time::format).as_deref(),
            Some("2026-11-21T05:25:54.291366Z")
        );
        let g = e.description();
        assert_eq!(g.title, "deploy smoke test");
        assert_eq!(g.ty, "default");
    }

    #[test]
    fn logentry_params_are_substituted() {
        let a = event(json!({"logentry": {"message": "hello %s", "params": ["world"]}}));
        assert_eq!(a.message.as_deref(), Some("hello world"));
        assert_eq!(a.message_template.as_deref(), Some("hello %s"));
        assert_eq!(
            format_message("{} and {}", &[json!(1), json!("b")]),
            "1 and b"
        );
        assert_eq!(format_message("{1} {0}", &[json!("a"), json!("b")]), "b a");
        assert_eq!(format_message("100%% of %d", &[json!(3)]), "100% of 3");
        assert_eq!(format_message("%s %s", &[json!("only")]), "only %s");
        assert_eq!(format_message("plain", &[json!("x")]), "plain");
    }

    #[test]
    fn exceptions_keep_their_own_frames() {
        let e = event(json!({
            "platform": "python",
            "exception": {"values": [
                {"type": "KeyError", "stacktrace": {"frames": [{"function": "a"}, {"function": "b"}]}},
                {"type": "ValueError", "mechanism": {"synthetic": true, "handled": false, "type": "x"},
                 "stacktrace": {"frames": [{"function": "c", "context_line": "  c()  ", "colno": 4}]}}
            ]},
            "stacktrace": {"frames": [{"function": "d"}]},
            "user": {"id": 7, "name": "Ann"},
        }));
        assert_eq!(e.frames.len(), 4);
        assert_eq!(e.exceptions[0].frames, 0..2);
        assert_eq!(e.exceptions[1].frames, 2..3);
        assert_eq!(e.stacktrace, Some(3..4));
        assert!(e.exceptions[1].synthetic);
        assert_eq!(e.exceptions[1].handled, Some(false));
        assert_eq!(e.frames[2].context_line.as_deref(), Some("  c()  "));
        assert_eq!(e.frames[2].colno, Some(4));
        assert_eq!(e.frames[2].platform.as_deref(), Some("python"));
        assert_eq!(e.user.as_ref().and_then(|u| u.id.as_deref()), Some("7"));
        // What grouping alone reads is not stored with the frames.
        let stored = serde_json::to_string(&e.frames[2]).unwrap();
        assert_eq!(stored, r#"{"function":"c"}"#);
    }

    #[test]
    fn a_thread_stack_counts_only_when_it_is_the_one() {
        let one = event(json!({"threads": {"values": [
            {"id": 1, "stacktrace": {"frames": [{"function": "main"}]}},
            {"id": 2}
        ]}}));
        assert_eq!(one.stacktrace, Some(0..1));
        let two = event(json!({"threads": {"values": [
            {"id": 1, "stacktrace": {"frames": [{"function": "main"}]}},
            {"id": 2, "stacktrace": {"frames": [{"function": "worker"}]}}
        ]}}));
        assert_eq!(two.frames.len(), 1);
        assert_eq!(two.stacktrace, None);
        let crashed = event(json!({"threads": {"values": [
            {"id": 1, "stacktrace": {"frames": [{"function": "main"}]}},
            {"id": 2, "crashed": true, "stacktrace": {"frames": [{"function": "worker"}]}}
        ]}}));
        assert_eq!(crashed.frames[0].function.as_deref(), Some("worker"));
        assert_eq!(crashed.stacktrace, Some(0..1));
    }

    #[test]
    fn nothing_to_read() {
        let e = event(json!({}));
        assert_eq!(e.level, "error");
        assert!(e.exceptions.is_empty() && e.frames.is_empty() && e.user.is_none());
    }

    #[test]
    fn event_ids_and_timestamps() {
        assert_eq!(
            normalize_event_id("CCAAF22C-29DD-4337-B4AD-1F4DC8DFE1EA").as_deref(),
            Some("ccaaf22c29dd4337b4ad1f4dc8dfe1ea")
        );
        assert_eq!(normalize_event_id("xyz"), None);
        assert!(Event::from_json(json!({"event_id": "nope"}).as_object().unwrap()).is_err());
        assert!(Event::from_json(json!({"event_id": 5}).as_object().unwrap()).is_err());
        let t = |v: Value| parse_timestamp(&v).map(crate::model::time::format);
        assert_eq!(
            t(json!(1700000000.5)).as_deref(),
            Some("2023-11-14T22:13:20.500000Z")
        );
        assert_eq!(
            t(json!("2024-01-02T03:04:05Z")).as_deref(),
            Some("2024-01-02T03:04:05.000000Z")
        );
        assert_eq!(
            t(json!("2024-01-02T03:04:05")).as_deref(),
            Some("2024-01-02T03:04:05.000000Z")
        );
        assert_eq!(t(json!("soon")), None);
        assert_eq!(t(json!(-5)), None);
        assert_eq!(t(json!(1e300)), None);
    }

    mod props {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn never_panics_on_messages(template in "\\PC{0,40}", p in "\\PC{0,10}") {
                let _ = format_message(&template, &[Value::String(p)]);
                let _ = strip_numbers(&template);
                let _ = truncate_chars(&template, 5);
            }
        }
    }
}
