//! The daemon's log lines, one line per event whatever the event carries.
//!
//! Log fields hold names that come from outside (a drop named `a\nb.zip`, a repository, a
//! version, a GitHub delivery): written raw, a newline in one forges a second log line and an
//! escape sequence rewrites the terminal. The formatter writes each event with one
//! `write_all`, so the writer here escapes every control character of that event (and the
//! bidirectional controls that reorder text) except its final newline, and, when colours are
//! on, the escape character the colours themselves use.

use std::borrow::Cow;
use std::io::{self, Write};

use tracing_subscriber::fmt::MakeWriter;

/// Standard error, escaped (see the module documentation).
#[derive(Debug, Clone, Copy)]
pub struct EscapedStderr {
    /// Colours are on: the escape character stays (the formatter's own colour codes need it).
    pub ansi: bool,
}

impl<'a> MakeWriter<'a> for EscapedStderr {
    type Writer = Escaped;

    fn make_writer(&'a self) -> Escaped {
        Escaped { ansi: self.ansi }
    }
}

/// One event's writer.
pub struct Escaped {
    ansi: bool,
}

impl Write for Escaped {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_all(buf)?;
        Ok(buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        let text = String::from_utf8_lossy(buf);
        io::stderr()
            .lock()
            .write_all(escape(&text, self.ansi).as_bytes())
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

/// `text` with every control character but a final newline (and ESC when `keep_esc`) written
/// as an escape: `\n`, `\r`, `\t`, else `\u{..}`.
pub fn escape(text: &str, keep_esc: bool) -> Cow<'_, str> {
    let (body, end) = match text.strip_suffix('\n') {
        Some(body) => (body, "\n"),
        None => (text, ""),
    };
    let bad = |c: char| {
        (c.is_control() && !(keep_esc && c == '\x1b')) || crate::model::version::is_bidi_control(c)
    };
    if !body.contains(bad) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in body.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if bad(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out.push_str(end);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_stays_one_line() {
        assert_eq!(
            escape("drop refused drop=a\nb.zip\n", false),
            "drop refused drop=a\\nb.zip\n"
        );
        assert_eq!(
            escape("a\r\tb\u{85}c\u{202e}d", false),
            "a\\r\\tb\\u{85}c\\u{202e}d"
        );
        assert_eq!(
            escape("\x1b[31mred\x1b[0m\n", false),
            "\\u{1b}[31mred\\u{1b}[0m\n"
        );
        assert_eq!(escape("\x1b[31mred\x1b[0m\n", true), "\x1b[31mred\x1b[0m\n");
        assert!(matches!(escape("plain line\n", false), Cow::Borrowed(_)));
    }
}
