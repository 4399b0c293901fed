//! Error events as SDKs send them, reduced to what shiplog keeps, and Sentry's rules for
//! grouping them into issues and naming those issues.
//!
//! [`Event::from_json`] reads the parts of Sentry's event payload that matter here (id,
//! timestamp, level, release, environment, message or logentry, exceptions, stack frames,
//! fingerprint) and tolerates everything else, as Relay does. [`Event::grouping`] decides
//! which issue an event belongs to:
//!
//! 1. an explicit `fingerprint` array, where `{{ default }}` stands for the default grouping
//!    below;
//! 2. else the exceptions' types and values, with numbers replaced by placeholders so that
//!    "timeout after 30s" and "timeout after 45s" are one issue;
//! 3. else the message (the logentry's template when there is one, so `hello %s` groups
//!    whatever its parameters), numbers replaced likewise;
//! 4. else one bucket for events that carry nothing to group by.
//!
//! Titles and culprits follow Sentry's: `Type: first line of value` for errors, the message's
//! first line for the rest; the culprit is the newest in-app frame as `module in function`.
//!
//! Pure: no I/O, never panics on any input.

use std::sync::LazyLock;

use chrono::{DateTime, TimeZone, Utc};
use regex::Regex;
use serde_json::{Map, Value, json};
use sha1::{Digest, Sha1};

/// Longest title kept (Sentry truncates the value part to 100 characters).
const TITLE_VALUE_CHARS: usize = 100;
/// Longest culprit kept (Sentry's column is 200 characters).
const CULPRIT_CHARS: usize = 200;
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

/// One stack frame, as stored for suspect-commit matching and display.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
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
}

/// One exception of an event (Sentry orders them oldest first; the last is the one raised).
#[derive(Debug, Clone, PartialEq)]
pub struct Exception {
    pub ty: Option<String>,
    pub value: Option<String>,
    pub module: Option<String>,
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
    pub environment: Option<String>,
    /// The message as shown (parameters substituted).
    pub message: Option<String>,
    /// The message template (`hello %s`), when the event sent one.
    pub message_template: Option<String>,
    pub exceptions: Vec<Exception>,
    /// Frames, oldest call first (Sentry's order), at most [`MAX_FRAMES`].
    pub frames: Vec<Frame>,
    pub fingerprint: Option<Vec<String>>,
    pub culprit: Option<String>,
    pub transaction: Option<String>,
}

/// Which issue an event belongs to and what that issue is called.
#[derive(Debug, Clone, PartialEq)]
pub struct Grouping {
    /// sha1 hex of the grouping components.
    pub hash: String,
    pub title: String,
    pub culprit: Option<String>,
    /// `error` when the event has an exception, else `default` (Sentry's event types).
    pub ty: &'static str,
    /// Sentry's issue metadata: `{type, value, filename, function}` or `{title}`.
    pub metadata: Value,
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

fn frames_of(stacktrace: Option<&Value>, platform: Option<&str>, out: &mut Vec<Frame>) {
    let Some(frames) = stacktrace
        .and_then(|s| s.get("frames"))
        .and_then(Value::as_array)
    else {
        return;
    };
    for f in frames {
        if out.len() >= MAX_FRAMES {
            return;
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
        });
    }
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
            exceptions.push(Exception {
                ty: string(e.get("type")),
                value: string(e.get("value")),
                module: string(e.get("module")),
            });
            frames_of(e.get("stacktrace"), platform.as_deref(), &mut frames);
        }
        frames_of(payload.get("stacktrace"), platform.as_deref(), &mut frames);
        if frames.is_empty() {
            // A crashed thread's stack, else the first thread that has one.
            let threads = values(payload.get("threads"));
            let thread = threads
                .iter()
                .find(|t| t.get("crashed") == Some(&Value::Bool(true)))
                .or_else(|| threads.iter().find(|t| t.get("stacktrace").is_some()));
            if let Some(t) = thread {
                frames_of(t.get("stacktrace"), platform.as_deref(), &mut frames);
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
            environment: string(payload.get("environment")),
            message,
            message_template,
            exceptions,
            frames,
            fingerprint,
            culprit: string(payload.get("culprit")),
            transaction: string(payload.get("transaction")),
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

    fn default_components(&self) -> Vec<String> {
        if !self.exceptions.is_empty() {
            let mut parts = vec!["exception".to_string()];
            for e in &self.exceptions {
                parts.push(e.ty.clone().unwrap_or_default());
                parts.push(strip_numbers(e.value.as_deref().unwrap_or("")));
            }
            return parts;
        }
        if let Some(m) = self.message_template.as_ref().or(self.message.as_ref()) {
            return vec!["message".to_string(), strip_numbers(m)];
        }
        vec!["fallback".to_string()]
    }

    /// The grouping hash, title, culprit and metadata of the issue this event belongs to.
    pub fn grouping(&self) -> Grouping {
        let components = match &self.fingerprint {
            Some(fp) => {
                let mut parts = vec!["fingerprint".to_string()];
                for v in fp {
                    if is_default_variable(v) {
                        parts.extend(self.default_components());
                    } else {
                        parts.push(v.clone());
                    }
                }
                parts
            }
            None => self.default_components(),
        };
        let mut hasher = Sha1::new();
        for c in &components {
            hasher.update(c.as_bytes());
            hasher.update([0x1f]);
        }
        let hash = hex::encode(hasher.finalize());

        let culprit = self
            .culprit
            .clone()
            .or_else(|| self.transaction.clone())
            .or_else(|| self.frame_culprit())
            .map(|c| truncate_chars(&c, CULPRIT_CHARS));
        let top = self.top_frame();
        match self.main_exception() {
            Some(e) => {
                let ty = e.ty.clone().unwrap_or_else(|| "Error".to_string());
                let first_line = e
                    .value
                    .as_deref()
                    .and_then(|v| v.lines().next())
                    .unwrap_or("")
                    .trim();
                let title = if first_line.is_empty() {
                    ty.clone()
                } else {
                    format!("{ty}: {}", truncate_chars(first_line, TITLE_VALUE_CHARS))
                };
                Grouping {
                    hash,
                    title,
                    culprit,
                    ty: "error",
                    metadata: json!({
                        "type": ty,
                        "value": e.value,
                        "filename": top.and_then(|f| f.filename.clone().or_else(|| f.abs_path.clone())),
                        "function": top.and_then(|f| f.function.clone()),
                    }),
                }
            }
            None => {
                let title = self
                    .message
                    .as_deref()
                    .and_then(|m| m.lines().map(str::trim).find(|l| !l.is_empty()))
                    .map(|l| truncate_chars(l, TITLE_VALUE_CHARS))
                    .unwrap_or_else(|| "<unlabeled event>".to_string());
                Grouping {
                    hash,
                    metadata: json!({ "title": title }),
                    title,
                    culprit,
                    ty: "default",
                }
            }
        }
    }

    /// The newest in-app frame, else the newest frame.
    fn top_frame(&self) -> Option<&Frame> {
        self.frames
            .iter()
            .rev()
            .find(|f| f.in_app == Some(true))
            .or_else(|| self.frames.last())
    }

    /// Sentry's `get_frame_culprit` for the top frame.
    fn frame_culprit(&self) -> Option<String> {
        let f = self.top_frame()?;
        let function = f.function.as_deref().unwrap_or("?");
        let platform = f.platform.as_deref().or(self.platform.as_deref());
        if matches!(platform, Some("objc" | "cocoa" | "native")) {
            return Some(function.to_string());
        }
        let fileloc = f.module.as_deref().or(f.filename.as_deref())?;
        if matches!(platform, Some("javascript" | "node")) {
            return Some(format!("{function}({fileloc})"));
        }
        Some(format!("{fileloc} in {function}"))
    }
}

/// `{{ default }}` in a fingerprint (Sentry accepts it with or without the inner spaces).
fn is_default_variable(v: &str) -> bool {
    let inner: String = v.chars().filter(|c| !c.is_whitespace()).collect();
    inner.eq_ignore_ascii_case("{{default}}")
}

static HEX_NUMBER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b0[xX][0-9a-fA-F]+\b").expect("static regex"));
static DIGITS: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"[0-9]+").expect("static regex"));

/// Replaces hexadecimal literals and digit runs with placeholders, for grouping.
pub fn strip_numbers(text: &str) -> String {
    let text = HEX_NUMBER.replace_all(text, "<hex>");
    DIGITS.replace_all(&text, "<int>").into_owned()
}

fn truncate_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
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
        let g = e.grouping();
        assert_eq!(g.title, "deploy smoke test");
        assert_eq!(g.ty, "default");
    }

    #[test]
    fn logentry_params_are_substituted_and_group_by_template() {
        let a = event(json!({"logentry": {"message": "hello %s", "params": ["world"]}}));
        let b = event(json!({"logentry": {"message": "hello %s", "params": ["moon"]}}));
        assert_eq!(a.message.as_deref(), Some("hello world"));
        assert_eq!(a.grouping().title, "hello world");
        assert_eq!(a.grouping().hash, b.grouping().hash);
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
    fn exceptions_group_by_type_and_value_without_numbers() {
        let a = event(json!({"exception": {"values": [
            {"type": "TimeoutError", "value": "timed out after 30s on 0x7ffe12"}]}}));
        let b = event(json!({"exception": [
            {"type": "TimeoutError", "value": "timed out after 45s on 0xdeadbeef"}]}));
        let c = event(json!({"exception": {"values": [
            {"type": "ValueError", "value": "timed out after 30s on 0x7ffe12"}]}}));
        assert_eq!(a.grouping().hash, b.grouping().hash);
        assert_ne!(a.grouping().hash, c.grouping().hash);
        let g = a.grouping();
        assert_eq!(g.title, "TimeoutError: timed out after 30s on 0x7ffe12");
        assert_eq!(g.ty, "error");
        assert_eq!(g.metadata["type"], "TimeoutError");
        // An exception wins over a message.
        let d = event(json!({"message": "x", "exception": {"values": [{"type": "E"}]}}));
        assert_eq!(d.grouping().title, "E");
    }

    #[test]
    fn explicit_fingerprints_and_default_expansion() {
        let base = json!({"exception": {"values": [{"type": "E", "value": "v"}]}});
        let mut a = base.clone();
        a["fingerprint"] = json!(["db-down"]);
        let mut b = json!({"message": "something else entirely"});
        b["fingerprint"] = json!(["db-down"]);
        assert_eq!(event(a.clone()).grouping().hash, event(b).grouping().hash);
        assert_ne!(
            event(a).grouping().hash,
            event(base.clone()).grouping().hash
        );

        let mut c = base.clone();
        c["fingerprint"] = json!(["{{ default }}", "tenant-1"]);
        let mut d = base.clone();
        d["fingerprint"] = json!(["{{default}}", "tenant-2"]);
        let mut e = base.clone();
        e["fingerprint"] = json!(["{{ default }}", "tenant-1"]);
        assert_ne!(event(c.clone()).grouping().hash, event(d).grouping().hash);
        assert_eq!(event(c.clone()).grouping().hash, event(e).grouping().hash);
        assert_ne!(event(c).grouping().hash, event(base).grouping().hash);
    }

    #[test]
    fn frames_and_culprit() {
        let e = event(json!({
            "platform": "python",
            "exception": {"values": [{"type": "KeyError", "value": "'id'", "stacktrace": {"frames": [
                {"filename": "lib/framework.py", "function": "dispatch", "in_app": false},
                {"filename": "app/views.py", "module": "app.views", "function": "show", "lineno": 12, "in_app": true},
                {"filename": "lib/dict.py", "function": "get", "in_app": false}
            ]}}]}
        }));
        assert_eq!(e.frames.len(), 3);
        assert_eq!(e.frames[1].filename.as_deref(), Some("app/views.py"));
        let g = e.grouping();
        assert_eq!(g.culprit.as_deref(), Some("app.views in show"));
        assert_eq!(g.metadata["filename"], "app/views.py");
        let js = event(json!({"platform": "javascript", "stacktrace": {"frames": [
            {"filename": "app.js", "function": "run"}]}, "message": "m"}));
        assert_eq!(js.grouping().culprit.as_deref(), Some("run(app.js)"));
        let t = event(json!({"message": "m", "transaction": "/checkout"}));
        assert_eq!(t.grouping().culprit.as_deref(), Some("/checkout"));
    }

    #[test]
    fn nothing_to_group_by() {
        let e = event(json!({}));
        assert_eq!(e.grouping().title, "<unlabeled event>");
        assert_eq!(e.level, "error");
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

    #[test]
    fn long_values_are_truncated_in_titles() {
        let long = "x".repeat(300);
        let e = event(json!({"exception": {"values": [{"type": "E", "value": long}]}}));
        assert_eq!(e.grouping().title.chars().count(), 3 + 100 + 3);
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
