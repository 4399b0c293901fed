//! What an issue is called: Sentry's titles, metadata and culprits, from one event.
//!
//! An event with an exception is an `error` titled `Type: first line of value` from its last
//! exception (a *synthetic* exception, an SDK's stand-in that only carries a stack trace, has
//! no type: Sentry titles it with the function of the crash frame, else `<unknown>`); any
//! other event is a `default` event titled with its message's first line. The culprit is the
//! event's `culprit`, else its `transaction`, else the newest in-app frame of the last
//! exception's stack trace as `module in function` (JavaScript: `function(module)`), else the
//! request URL (Sentry's `get_culprit`).
//!
//! Pure: no I/O, never panics on any input.

use serde_json::{Value, json};

use super::event::{Event, Frame, truncate_chars};

/// Longest title kept (Sentry truncates the value part to 100 characters).
const TITLE_VALUE_CHARS: usize = 100;
/// Longest culprit kept (Sentry's column is 200 characters).
const CULPRIT_CHARS: usize = 200;
/// Longest file location in a culprit (Sentry's `get_frame_culprit`).
const CULPRIT_FILELOC_CHARS: usize = 100;

/// What an event is called, as Sentry shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Description {
    pub title: String,
    pub culprit: Option<String>,
    /// `error` when the event has an exception, else `default` (Sentry's event types).
    pub ty: &'static str,
    /// Sentry's issue metadata: `{type, value, filename, function}` or `{title}`.
    pub metadata: Value,
}

impl Event {
    /// The event's title, culprit, type and metadata (Sentry's event types).
    pub fn description(&self) -> Description {
        let culprit = self
            .culprit
            .clone()
            .or_else(|| self.transaction.clone())
            .or_else(|| self.stack_culprit())
            .or_else(|| self.request_url.clone())
            .map(|c| truncate_chars(&c, CULPRIT_CHARS));
        let Some(e) = self.main_exception() else {
            let title = self
                .message
                .as_deref()
                .or(self.message_template.as_deref())
                .and_then(|m| m.lines().map(str::trim).find(|l| !l.is_empty()))
                .map(|l| truncate_chars(l, TITLE_VALUE_CHARS))
                .unwrap_or_else(|| "<unlabeled event>".to_string());
            return Description {
                metadata: json!({ "title": title }),
                title,
                culprit,
                ty: "default",
            };
        };
        let crash = self.crash_frame();
        let function = crash.and_then(|f| f.function.clone());
        let ty = (!e.synthetic).then(|| e.ty.clone().unwrap_or_else(|| "Error".to_string()));
        let first_line = e
            .value
            .as_deref()
            .and_then(|v| v.lines().next())
            .unwrap_or("")
            .trim();
        let title = match &ty {
            Some(ty) if first_line.is_empty() => ty.clone(),
            Some(ty) => format!("{ty}: {}", truncate_chars(first_line, TITLE_VALUE_CHARS)),
            None => function.clone().unwrap_or_else(|| "<unknown>".to_string()),
        };
        let mut metadata = json!({
            "value": e.value.clone().unwrap_or_default(),
            "filename": crash.and_then(|f| f.filename.clone().or_else(|| f.abs_path.clone())),
            "function": function,
        });
        if let Some(ty) = ty {
            metadata["type"] = json!(ty);
        }
        Description {
            title,
            culprit,
            ty: "error",
            metadata,
        }
    }

    /// Sentry's crash frame: of the last exception's stack (else the event's own), the newest
    /// in-app frame with a function, else the newest frame with one.
    pub(crate) fn crash_frame(&self) -> Option<&Frame> {
        let frames = match self.main_exception() {
            Some(e) if !e.frames.is_empty() => self.frames_in(&e.frames),
            _ => self
                .stacktrace
                .as_ref()
                .map(|r| self.frames_in(r))
                .unwrap_or(&[]),
        };
        let named = |f: &&Frame| {
            f.function
                .as_deref()
                .is_some_and(|n| n != "<redacted>" && n != "<unknown>")
        };
        frames
            .iter()
            .rev()
            .filter(named)
            .find(|f| f.in_app == Some(true))
            .or_else(|| frames.iter().rev().find(named))
    }

    /// Sentry's `get_stacktrace_culprit` on the last stack trace of the exceptions (else the
    /// event's own): the newest in-app frame that names a place, else the newest frame.
    fn stack_culprit(&self) -> Option<String> {
        let range = match self.exceptions.iter().rev().find(|e| !e.frames.is_empty()) {
            Some(e) => Some(&e.frames),
            None if self.exceptions.is_empty() => self.stacktrace.as_ref(),
            None => None,
        }?;
        let mut fallback = None;
        for f in self.frames_in(range).iter().rev() {
            let culprit = self.frame_culprit(f);
            if f.in_app == Some(true) {
                if culprit.is_some() {
                    return culprit;
                }
            } else if fallback.is_none() {
                fallback = Some(culprit);
            }
        }
        fallback.flatten()
    }

    /// Sentry's `get_frame_culprit`.
    fn frame_culprit(&self, f: &Frame) -> Option<String> {
        let function = f.function.as_deref().unwrap_or("?");
        let platform = f.platform.as_deref().or(self.platform.as_deref());
        if matches!(platform, Some("objc" | "cocoa" | "native")) {
            return Some(function.to_string());
        }
        let fileloc = f.module.as_deref().or(f.filename.as_deref())?;
        if matches!(platform, Some("javascript" | "node")) {
            return Some(format!("{function}({fileloc})"));
        }
        Some(format!(
            "{} in {function}",
            truncate_chars(fileloc, CULPRIT_FILELOC_CHARS)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(v: Value) -> Event {
        Event::from_json(v.as_object().unwrap()).unwrap()
    }

    #[test]
    fn titles_and_metadata() {
        let g = event(json!({"exception": {"values": [{"type": "TimeoutError",
            "value": "timed out after 30s\nsecond line"}]}}))
        .description();
        assert_eq!(g.title, "TimeoutError: timed out after 30s");
        assert_eq!(g.ty, "error");
        assert_eq!(g.metadata["type"], "TimeoutError");
        assert_eq!(g.metadata["value"], "timed out after 30s\nsecond line");
        let d = event(json!({"message": "x", "exception": {"values": [{"type": "E"}]}}));
        assert_eq!(d.description().title, "E");
        let long = "x".repeat(300);
        let e = event(json!({"exception": {"values": [{"type": "E", "value": long}]}}));
        assert_eq!(e.description().title.chars().count(), 3 + 100 + 3);
    }

    #[test]
    fn a_synthetic_exception_is_titled_by_its_crash_function() {
        // What @sentry/node sends for captureMessage with attachStacktrace.
        let message = |f: &str| {
            json!({"platform": "node", "level": "info", "message": "checkout failed for order 12",
            "exception": {"values": [{"value": "checkout failed for order 12",
                "mechanism": {"type": "generic", "handled": true, "synthetic": true},
                "stacktrace": {"frames": [
                    {"filename": "node:internal/modules/cjs/loader", "module": "loader", "function": "Module._compile", "in_app": false},
                    {"filename": "/srv/app.js", "module": "app", "function": "Object.?", "in_app": true},
                    {"filename": "/srv/app.js", "module": "app", "function": f, "in_app": true}
                ]}}]}})
        };
        let g = event(message("checkout")).description();
        assert_eq!(g.title, "checkout");
        assert_eq!(g.metadata.get("type"), None);
        assert_eq!(g.metadata["value"], "checkout failed for order 12");
        assert_eq!(g.metadata["function"], "checkout");
        assert_eq!(g.culprit.as_deref(), Some("checkout(app)"));
        // No function anywhere: Sentry's `<unknown>`.
        let bare = event(
            json!({"exception": {"values": [{"type": "Error", "value": "s",
            "mechanism": {"synthetic": true}}]}, "message": "s"}),
        );
        assert_eq!(bare.description().title, "<unknown>");
    }

    #[test]
    fn culprits() {
        let e = event(json!({
            "platform": "python",
            "exception": {"values": [{"type": "KeyError", "value": "'id'", "stacktrace": {"frames": [
                {"filename": "lib/framework.py", "function": "dispatch", "in_app": false},
                {"filename": "app/views.py", "module": "app.views", "function": "show", "lineno": 12, "in_app": true},
                {"filename": "lib/dict.py", "function": "get", "in_app": false}
            ]}}]}
        }));
        let g = e.description();
        assert_eq!(g.culprit.as_deref(), Some("app.views in show"));
        assert_eq!(g.metadata["filename"], "app/views.py");
        assert_eq!(g.metadata["function"], "show");
        let js = event(json!({"platform": "javascript", "stacktrace": {"frames": [
            {"filename": "app.js", "function": "run"}]}, "message": "m"}));
        assert_eq!(js.description().culprit.as_deref(), Some("run(app.js)"));
        let t = event(json!({"message": "m", "transaction": "/checkout"}));
        assert_eq!(t.description().culprit.as_deref(), Some("/checkout"));
        let u = event(json!({"message": "m", "request": {"url": "https://x.io/a"}}));
        assert_eq!(u.description().culprit.as_deref(), Some("https://x.io/a"));
    }
}
