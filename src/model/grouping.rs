//! Which issue an event belongs to: Sentry's default grouping (its `newstyle` strategies),
//! versioned so that an upgrade regroups nothing.
//!
//! An event's grouping is a list of *components* hashed with sha1. Without a `fingerprint`:
//!
//! 1. **Exceptions** (every exception of a chain, oldest first): each adds its type and its
//!    stack frames. Only in-app frames count when any exception has one (Sentry's `app`
//!    variant); else every frame (the `system` variant). A frame is its module, else its
//!    file's base name (lowercased; not when the path is a URL, `<anonymous>` or
//!    `[native code]`), plus its function (JavaScript: the part after the last `.`, and
//!    `?`/`<anonymous>` count for nothing) plus, on Python, JavaScript, Node, PHP and Ruby, its
//!    context line with whitespace collapsed (lines over 120 characters are left out). Line
//!    and column numbers never count, so editing code above a crash does not open a new
//!    issue; a frame that repeats the one before it (recursion) counts once. An exception
//!    whose stack adds nothing adds its value instead, with numbers, UUIDs, hex, IP and
//!    e-mail addresses replaced by placeholders. A *synthetic* exception (an SDK's stand-in
//!    that only carries a stack trace) adds no type or value.
//! 2. else the event's own stack trace (or its one thread's), frames as above;
//! 3. else the message *template* (`logentry.message` before formatting, so `payment %s
//!    failed` is one issue whatever the parameters), else the formatted message, with the
//!    same placeholders;
//! 4. else one issue for everything that carries none of these.
//!
//! A `fingerprint` replaces all that: its values are hashed as given, where `{{ default }}`
//! stands for the components above and `{{ transaction }}`, `{{ type }}`, `{{ value }}`,
//! `{{ function }}`, `{{ module }}`, `{{ message }}`, `{{ level }}`, `{{ logger }}` and
//! `{{ tags.NAME }}` for those parts of the event, as in Sentry.
//!
//! **Versions.** Every hash carries the grouping version that made it ([`GROUPING_VERSION`]).
//! An issue keeps the version it was created with. So that an upgrade regroups nothing, an
//! event is hashed the current way *and* every older way ([`Grouping::hashes`], newest
//! first), as Sentry computes a secondary hash while it moves a project to a new grouping
//! config: the event joins the issue of the first hash found, and when that was an older
//! hash, the current one is added to that issue so that it keeps matching. Older hashes
//! expire (the store sets when): after that, only the current hashes an old issue took on
//! still find it.
//!
//! What the issue is called is [`super::title`]'s business.
//!
//! Pure: no I/O, never panics on any input.

use std::sync::LazyLock;

use regex::Regex;
use sha1::{Digest, Sha1};

use super::event::{Event, Frame, strip_numbers};
use super::title::Description;

/// The grouping version new issues get: Sentry's default grouping.
pub const GROUPING_VERSION: i64 = 2;
/// The first grouping (exception type and value, else the message): issues made before
/// version 2 keep it.
pub const LEGACY_GROUPING_VERSION: i64 = 1;

/// Context lines longer than this do not count (Sentry's `get_contextline_component`).
const MAX_CONTEXT_LINE: usize = 120;

/// One hash of an event and the grouping version that made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupHash {
    pub version: i64,
    /// sha1 hex of the grouping components.
    pub hash: String,
}

/// Which issue an event belongs to and what that issue is called.
#[derive(Debug, Clone, PartialEq)]
pub struct Grouping {
    /// The event's hashes, the current version first, then each older one.
    pub hashes: Vec<GroupHash>,
    pub description: Description,
}

impl Grouping {
    /// The hash of the current grouping version.
    pub fn hash(&self) -> &str {
        &self.hashes[0].hash
    }
}

impl Event {
    /// The hashes, title, culprit and metadata of the issue this event belongs to.
    pub fn grouping(&self) -> Grouping {
        Grouping {
            hashes: self.hashes(),
            description: self.description(),
        }
    }

    /// The event's hashes, the current grouping version first.
    fn hashes(&self) -> Vec<GroupHash> {
        vec![
            GroupHash {
                version: GROUPING_VERSION,
                hash: hash_of(&self.components()),
            },
            GroupHash {
                version: LEGACY_GROUPING_VERSION,
                hash: hash_of(&self.legacy_components()),
            },
        ]
    }

    /// The current grouping's components: the fingerprint's, else the default ones.
    fn components(&self) -> Vec<String> {
        let mut parts = vec![format!("v{GROUPING_VERSION}")];
        // `["{{ default }}"]` is the default grouping itself, as in Sentry.
        let custom = self.fingerprint.as_ref().filter(|fp| {
            fp.iter()
                .any(|v| fingerprint_variable(v).as_deref() != Some("default"))
        });
        match custom {
            Some(fp) => {
                parts.push("fingerprint".into());
                for v in fp {
                    match fingerprint_variable(v).as_deref() {
                        Some("default") => parts.extend(self.default_components()),
                        Some(var) => parts.push(self.fingerprint_value(var, v)),
                        None => parts.push(v.clone()),
                    }
                }
            }
            None => parts.extend(self.default_components()),
        }
        parts
    }

    fn default_components(&self) -> Vec<String> {
        // The in-app frames of every exception, else all their frames.
        let stacks_in = |variant| -> Vec<Vec<String>> {
            self.exceptions
                .iter()
                .map(|e| self.stack_components(&e.frames, variant))
                .collect()
        };
        let mut stacks = stacks_in(Variant::App);
        if stacks.iter().all(Vec::is_empty) {
            stacks = stacks_in(Variant::System);
        }
        let mut parts = Vec::new();
        for (e, stack) in self.exceptions.iter().zip(stacks) {
            if !e.synthetic
                && let Some(ty) = &e.ty
            {
                parts.push(format!("type:{ty}"));
            }
            if !stack.is_empty() {
                parts.extend(stack);
            } else if !e.synthetic
                && let Some(value) = e.value.as_deref().filter(|v| !v.trim().is_empty())
            {
                parts.push(format!("value:{}", parameterize(value)));
            }
        }
        if !parts.is_empty() {
            parts.insert(0, "exception".into());
            return parts;
        }
        if let Some(range) = &self.stacktrace {
            for variant in [Variant::App, Variant::System] {
                let stack = self.stack_components(range, variant);
                if !stack.is_empty() {
                    return std::iter::once("stacktrace".to_string())
                        .chain(stack)
                        .collect();
                }
            }
        }
        if let Some(m) = self.message_template.as_ref().or(self.message.as_ref()) {
            return vec!["message".into(), parameterize(m)];
        }
        vec!["fallback".into()]
    }

    /// The components of one stack trace's frames in a variant; empty when none counts.
    fn stack_components(&self, range: &std::ops::Range<usize>, variant: Variant) -> Vec<String> {
        let frames = self.frames_in(range);
        let mut parts = Vec::new();
        for (i, f) in frames.iter().enumerate() {
            if variant == Variant::App && f.in_app != Some(true) {
                continue;
            }
            if i > 0 && is_recursion(&frames[i - 1], f) {
                continue;
            }
            let platform = f.platform.as_deref().or(self.platform.as_deref());
            let frame = frame_components(f, platform);
            if !frame.is_empty() {
                parts.push("frame".into());
                parts.extend(frame);
            }
        }
        parts
    }

    /// What a fingerprint variable stands for (Sentry's `get_fingerprint_value`); an unknown
    /// variable stays as written.
    fn fingerprint_value(&self, var: &str, written: &str) -> String {
        let main = self.main_exception();
        let crash = self.crash_frame();
        let or = |v: Option<&str>, missing: &str| v.unwrap_or(missing).to_string();
        match var {
            "transaction" => or(self.transaction.as_deref(), "<no-transaction>"),
            "message" => or(
                self.message
                    .as_deref()
                    .or(self.message_template.as_deref())
                    .or(main.and_then(|e| e.value.as_deref())),
                "<no-message>",
            ),
            "type" | "error.type" => or(main.and_then(|e| e.ty.as_deref()), "<no-type>"),
            "value" | "error.value" => or(main.and_then(|e| e.value.as_deref()), "<no-value>"),
            "function" | "stack.function" => {
                or(crash.and_then(|f| f.function.as_deref()), "<no-function>")
            }
            "module" | "stack.module" => or(crash.and_then(|f| f.module.as_deref()), "<no-module>"),
            "level" => self.level.clone(),
            "logger" => or(self.logger.as_deref(), "<no-logger>"),
            _ => match var.strip_prefix("tags.") {
                Some(tag) => self
                    .tags
                    .iter()
                    .find(|(k, _)| k == tag)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_else(|| format!("<no-value-for-tag-{tag}>")),
                None => written.to_string(),
            },
        }
    }

    /// Version 1, kept byte for byte so that issues made with it keep their events: the
    /// exceptions' types and values, else the message, numbers replaced.
    fn legacy_components(&self) -> Vec<String> {
        let default = || {
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
        };
        match &self.fingerprint {
            Some(fp) => {
                let mut parts = vec!["fingerprint".to_string()];
                for v in fp {
                    if is_legacy_default_variable(v) {
                        parts.extend(default());
                    } else {
                        parts.push(v.clone());
                    }
                }
                parts
            }
            None => default(),
        }
    }
}

/// Sentry's stack trace variants: only in-app frames, or all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    App,
    System,
}

fn hash_of(components: &[String]) -> String {
    let mut hasher = Sha1::new();
    for c in components {
        hasher.update(c.as_bytes());
        hasher.update([0x1f]);
    }
    hex::encode(hasher.finalize())
}

/// `{{ name }}` in a fingerprint: the variable's name, lowercased (Sentry's
/// `parse_fingerprint_var`).
fn fingerprint_variable(value: &str) -> Option<String> {
    let inner = value.strip_prefix("{{")?.strip_suffix("}}")?.trim();
    (!inner.is_empty() && !inner.contains(char::is_whitespace)).then(|| inner.to_lowercase())
}

/// Version 1's test for `{{ default }}`: any spacing, any case.
fn is_legacy_default_variable(value: &str) -> bool {
    let inner: String = value.chars().filter(|c| !c.is_whitespace()).collect();
    inner.eq_ignore_ascii_case("{{default}}")
}

/// Sentry's behaviour families: JavaScript-like platforms get its JavaScript rules.
fn is_javascript(platform: Option<&str>) -> bool {
    matches!(platform, Some("javascript" | "node"))
}

/// Whether a frame's path is a URL (Sentry's `has_url_origin`); `file:` counts only for
/// JavaScript.
fn has_url_origin(abs_path: Option<&str>, allow_file: bool) -> bool {
    let Some(path) = abs_path else { return false };
    let path = path.strip_prefix("blob:").unwrap_or(path);
    match path.split_once("://") {
        Some(("file", _)) => allow_file,
        Some((scheme, _)) => {
            !scheme.is_empty()
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        }
        None => false,
    }
}

/// Two frames are a recursive call when all of these are equal (Sentry's
/// `RECURSION_COMPARISON_FIELDS`).
fn is_recursion(a: &Frame, b: &Frame) -> bool {
    a.abs_path == b.abs_path
        && a.package == b.package
        && a.module == b.module
        && a.filename == b.filename
        && a.function == b.function
        && a.lineno == b.lineno
        && a.colno == b.colno
}

/// One frame's components (Sentry's `frame` strategy); empty when nothing in it counts.
fn frame_components(f: &Frame, platform: Option<&str>) -> Vec<String> {
    let js = is_javascript(platform);
    let abs_path = f.abs_path.as_deref();
    if js
        && (matches!(
            abs_path,
            Some("[native code]" | "native code" | "eval code" | "<anonymous>")
        ) || function_name(f, platform).as_deref() == Some("eval"))
    {
        return Vec::new();
    }
    let mut parts = Vec::new();
    let module = f.module.as_deref().filter(|m| {
        !(platform == Some("javascript")
            && m.contains('/')
            && abs_path.is_some_and(|p| p.ends_with(m)))
    });
    if let Some(m) = module {
        parts.push(format!("module:{m}"));
    } else if let Some(name) = f.filename.as_deref() {
        let base = name
            .rsplit(['/', '\\'])
            .next()
            .unwrap_or(name)
            .to_lowercase();
        if !has_url_origin(abs_path, js) && base != "<anonymous>" && base != "[native code]" {
            parts.push(format!("filename:{base}"));
        }
    }
    if let Some(function) = function_name(f, platform) {
        let unknown = js
            && (matches!(
                function.as_str(),
                "?" | "<anonymous function>" | "<anonymous>" | "Anonymous function"
            ) || function.ends_with("/<"));
        if !unknown {
            parts.push(format!("function:{function}"));
        }
    }
    if matches!(
        platform,
        Some("javascript" | "node" | "python" | "php" | "ruby")
    ) && let Some(raw) = f.context_line.as_deref()
    {
        let line = raw.split_whitespace().collect::<Vec<_>>().join(" ");
        let from_url = js && f.function.is_none() && has_url_origin(abs_path, false);
        if !line.is_empty() && raw.chars().count() <= MAX_CONTEXT_LINE && !from_url {
            parts.push(format!("context:{line}"));
        }
    }
    parts
}

static RUBY_ERB: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"__\d{4,}_\d{4,}$").expect("static regex"));

/// A frame's function as grouping sees it (Sentry's `get_function_component`).
fn function_name(f: &Frame, platform: Option<&str>) -> Option<String> {
    let function = f.function.as_deref().filter(|s| !s.is_empty())?;
    Some(match platform {
        _ if is_javascript(platform) => function.rsplit('.').next().unwrap_or(function).into(),
        Some("ruby") if function.starts_with("block ") => "block".into(),
        Some("ruby") => RUBY_ERB.replace(function, "").into_owned(),
        _ => function.to_string(),
    })
}

static PARAMETERS: LazyLock<[(Regex, &'static str); 4]> = LazyLock::new(|| {
    let re = |p: &str| Regex::new(p).expect("static regex");
    [
        (re(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"), "<email>"),
        (
            re(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"),
            "<uuid>",
        ),
        (re(r"\b(?:\d{1,3}\.){3}\d{1,3}\b"), "<ip>"),
        (re(r"\b(?:0[xX][0-9a-fA-F]+|[0-9a-fA-F]{32,})\b"), "<hex>"),
    ]
});

/// Replaces what varies between occurrences of one message (addresses, ids, numbers) with
/// placeholders, as Sentry's message parameterization does.
pub fn parameterize(text: &str) -> String {
    let mut out = text.to_string();
    for (re, placeholder) in PARAMETERS.iter() {
        if re.is_match(&out) {
            out = re.replace_all(&out, *placeholder).into_owned();
        }
    }
    strip_numbers(&out)
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn event(v: Value) -> Event {
        Event::from_json(v.as_object().unwrap()).unwrap()
    }

    fn hash(v: Value) -> String {
        event(v).grouping().hash().to_string()
    }

    fn legacy(v: Value) -> String {
        let g = event(v).grouping();
        assert_eq!(g.hashes[1].version, LEGACY_GROUPING_VERSION);
        g.hashes[1].hash.clone()
    }

    /// A Python ZeroDivisionError raised in `function`, called from `caller`.
    fn python_error(function: &str, context: &str, lineno: i64) -> Value {
        json!({
            "platform": "python",
            "exception": {"values": [{"type": "ZeroDivisionError", "value": "division by zero",
                "stacktrace": {"frames": [
                    {"module": "threading", "filename": "threading.py", "function": "run", "lineno": 982, "in_app": false},
                    {"module": "app.api", "filename": "app/api.py", "abs_path": "/srv/app/api.py", "function": "handle", "context_line": format!("    {function}()"), "lineno": lineno, "in_app": true},
                    {"module": "app.billing", "filename": "app/billing.py", "function": function, "context_line": context, "lineno": lineno + 10, "in_app": true}
                ]}}]}
        })
    }

    #[test]
    fn in_app_frames_group_and_line_numbers_do_not() {
        let pay = python_error("pay", "    return 1 / 0", 10);
        let pay_moved = python_error("pay", "    return 1 / 0", 25);
        let refund = python_error("refund", "    return 1 / 0", 10);
        assert_eq!(hash(pay.clone()), hash(pay_moved));
        assert_ne!(hash(pay.clone()), hash(refund.clone()));
        // Version 1 saw one issue in both: type and value only.
        assert_eq!(legacy(pay.clone()), legacy(refund));
        // System frames do not count while in-app ones exist.
        let mut other_system = pay.clone();
        other_system["exception"]["values"][0]["stacktrace"]["frames"][0]["function"] =
            json!("bootstrap");
        assert_eq!(hash(pay.clone()), hash(other_system));
        // Nor does the value, once the stack counts.
        let mut other_value = pay.clone();
        other_value["exception"]["values"][0]["value"] = json!("float division by zero");
        assert_eq!(hash(pay.clone()), hash(other_value));
        // The context line does.
        let edited = python_error("pay", "    return total / count", 10);
        assert_ne!(hash(pay), hash(edited));
    }

    #[test]
    fn frames_use_the_module_else_the_lowercased_base_name() {
        let frame = |f: Value| {
            hash(
                json!({"platform": "python", "exception": {"values": [{"type": "E",
                "stacktrace": {"frames": [f]}}]}}),
            )
        };
        assert_eq!(
            frame(json!({"filename": "/a/App.py", "function": "f", "in_app": true})),
            frame(json!({"filename": "C:\\b\\app.py", "function": "f", "in_app": true}))
        );
        assert_eq!(
            frame(json!({"module": "m", "filename": "x.py", "function": "f", "in_app": true})),
            frame(json!({"module": "m", "filename": "y.py", "function": "f", "in_app": true}))
        );
        assert_ne!(
            frame(json!({"module": "m", "function": "f", "in_app": true})),
            frame(json!({"module": "n", "function": "f", "in_app": true}))
        );
        // Recursion counts once.
        let rec = json!({"filename": "a.py", "function": "f", "lineno": 3, "in_app": true});
        assert_eq!(
            hash(
                json!({"platform": "python", "exception": {"values": [{"type": "E",
                "stacktrace": {"frames": [rec.clone(), rec.clone(), rec.clone()]}}]}})
            ),
            frame(rec)
        );
    }

    #[test]
    fn javascript_frames_follow_sentrys_javascript_rules() {
        let js = |frames: Value| {
            hash(
                json!({"platform": "node", "exception": {"values": [{"type": "TypeError",
                "value": "x is undefined", "stacktrace": {"frames": frames}}]}}),
            )
        };
        // `Object.pay` and `pay` are one function; `?` counts for nothing.
        assert_eq!(
            js(json!([{"module": "app", "function": "Object.pay", "in_app": true}])),
            js(json!([{"module": "app", "function": "pay", "in_app": true}]))
        );
        assert_eq!(
            js(json!([{"module": "app", "function": "Object.?", "in_app": true}])),
            js(json!([{"module": "app", "in_app": true}]))
        );
        // URL paths and eval frames are ignored.
        assert_eq!(
            js(json!([
                {"filename": "app.js", "abs_path": "https://cdn.example.com/app.js", "in_app": true},
                {"module": "app", "function": "pay", "in_app": true}
            ])),
            js(json!([{"module": "app", "function": "pay", "in_app": true}]))
        );
        assert_eq!(
            js(json!([
                {"function": "eval", "module": "x", "in_app": true},
                {"module": "app", "function": "pay", "in_app": true}
            ])),
            js(json!([{"module": "app", "function": "pay", "in_app": true}]))
        );
    }

    #[test]
    fn without_in_app_frames_every_frame_counts_and_without_frames_the_value() {
        let system = |f: &str| {
            hash(json!({"exception": {"values": [{"type": "E", "value": "v",
                "stacktrace": {"frames": [{"module": "lib", "function": f}]}}]}}))
        };
        assert_ne!(system("a"), system("b"));
        let bare = |ty: &str, v: &str| hash(json!({"exception": [{"type": ty, "value": v}]}));
        assert_eq!(
            bare("TimeoutError", "timed out after 30s on 0x7ffe12"),
            bare("TimeoutError", "timed out after 45s on 0xdeadbeef")
        );
        assert_eq!(
            bare(
                "E",
                "user 3f2b8c1e-0d4a-4c7e-9b1a-2a3b4c5d6e7f from 10.0.0.1 (a@b.io)"
            ),
            bare(
                "E",
                "user 0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0 from 10.9.8.7 (c@d.io)"
            )
        );
        assert_ne!(bare("TimeoutError", "v"), bare("ValueError", "v"));
    }

    #[test]
    fn a_synthetic_exception_groups_by_its_frames_not_its_text() {
        // What @sentry/node sends for captureMessage with attachStacktrace.
        let message = |f: &str, text: &str| {
            hash(json!({"platform": "node", "message": text,
                "exception": {"values": [{"value": text, "mechanism": {"synthetic": true},
                    "stacktrace": {"frames": [
                        {"module": "app", "function": f, "in_app": true}]}}]}}))
        };
        assert_ne!(message("checkout", "a"), message("refund", "a"));
        assert_eq!(message("checkout", "a"), message("checkout", "b"));
    }

    #[test]
    fn chained_exceptions_all_count() {
        let chain = |cause: &str| {
            hash(json!({"exception": {"values": [
                {"type": cause, "value": "root"},
                {"type": "RuntimeError", "value": "wrapped",
                 "stacktrace": {"frames": [{"module": "app", "function": "run", "in_app": true}]}}
            ]}}))
        };
        assert_ne!(chain("KeyError"), chain("IOError"));
        let g = event(json!({"exception": {"values": [
            {"type": "KeyError", "value": "root"}, {"type": "RuntimeError", "value": "wrapped"}
        ]}}))
        .grouping();
        assert_eq!(g.description.title, "RuntimeError: wrapped");
    }

    #[test]
    fn messages_group_by_their_template() {
        let a = json!({"logentry": {"message": "payment %s failed", "params": ["a1"]}});
        let b = json!({"logentry": {"message": "payment %s failed", "params": ["b2"]}});
        let c = json!({"logentry": {"message": "refund %s failed", "params": ["a1"]}});
        assert_eq!(hash(a.clone()), hash(b));
        assert_ne!(hash(a.clone()), hash(c));
        assert_eq!(event(a).grouping().description.title, "payment a1 failed");
        assert_eq!(
            hash(json!({"message": "order 12 failed"})),
            hash(json!({"message": "order 13 failed"}))
        );
        // A lone thread's stack groups a message event, as in Sentry.
        let threaded = |f: &str| {
            hash(
                json!({"message": "m", "threads": {"values": [{"stacktrace": {"frames": [
                {"module": "app", "function": f, "in_app": true}]}}]}}),
            )
        };
        assert_ne!(threaded("a"), threaded("b"));
        let g = event(json!({})).grouping();
        assert_eq!(g.description.title, "<unlabeled event>");
        assert_eq!(g.description.ty, "default");
    }

    #[test]
    fn fingerprints_and_their_variables() {
        let base = json!({"exception": {"values": [{"type": "E", "value": "v"}]},
            "transaction": "/pay", "tags": {"tenant": "acme"}});
        let with = |fp: Value| {
            let mut e = base.clone();
            e["fingerprint"] = fp;
            e
        };
        let msg = json!({"message": "something else entirely", "fingerprint": ["db-down"]});
        assert_eq!(hash(with(json!(["db-down"]))), hash(msg.clone()));
        assert_eq!(legacy(with(json!(["db-down"]))), legacy(msg));
        assert_ne!(hash(with(json!(["db-down"]))), hash(base.clone()));
        let c = with(json!(["{{ default }}", "tenant-1"]));
        assert_eq!(
            hash(c.clone()),
            hash(with(json!(["{{default}}", "tenant-1"])))
        );
        assert_eq!(
            hash(c.clone()),
            hash(with(json!(["{{ DEFAULT }}", "tenant-1"])))
        );
        assert_ne!(
            hash(c.clone()),
            hash(with(json!(["{{ default }}", "tenant-2"])))
        );
        assert_ne!(hash(c), hash(base.clone()));
        assert_eq!(hash(with(json!(["{{ default }}"]))), hash(base.clone()));
        assert_eq!(
            hash(with(json!(["{{ transaction }}", "{{ tags.tenant }}"]))),
            hash(with(json!(["/pay", "acme"])))
        );
        assert_eq!(
            hash(with(json!([
                "{{ type }}",
                "{{ error.value }}",
                "{{ tags.none }}"
            ]))),
            hash(with(json!(["E", "v", "<no-value-for-tag-none>"])))
        );
        assert_eq!(
            hash(with(json!(["{{ nonsense }}"]))),
            hash(with(json!(["{{ nonsense }}"])))
        );
    }

    #[test]
    fn the_legacy_hash_is_version_ones() {
        // Pinned: issues stored before version 2 hold exactly these hashes.
        let h = |parts: &[&str]| hash_of(&parts.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(
            legacy(
                json!({"exception": {"values": [{"type": "E", "value": "took 30s",
                "stacktrace": {"frames": [{"function": "f", "in_app": true}]}}]}})
            ),
            h(&["exception", "E", "took <int>s"])
        );
        assert_eq!(
            legacy(json!({"logentry": {"message": "hello %s", "params": ["x"]}})),
            h(&["message", "hello %s"])
        );
        assert_eq!(
            legacy(json!({"message": "m", "fingerprint": ["{{default}}", "a"]})),
            h(&["fingerprint", "message", "m", "a"])
        );
        assert_eq!(legacy(json!({})), h(&["fallback"]));
    }

    mod props {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn never_panics_on_text(text in "\\PC{0,60}") {
                let _ = parameterize(&text);
                let _ = fingerprint_variable(&text);
                let _ = has_url_origin(Some(&text), true);
            }
        }
    }
}
