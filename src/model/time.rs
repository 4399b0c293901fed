//! Timestamps as shiplog stores and renders them.
//!
//! Every timestamp is kept in UTC as RFC 3339 text with exactly six fractional digits
//! (`2026-11-21T05:25:52.637104Z`): fixed width, so SQLite orders them correctly as plain text,
//! and the same shape Sentry's API returns, so clients parse it unchanged.

use chrono::{DateTime, SecondsFormat, Utc};

/// A timestamp in shiplog's canonical text form.
pub fn format(ts: DateTime<Utc>) -> String {
    ts.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Parses any RFC 3339 timestamp (any offset, any precision) into UTC.
pub fn parse(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text.trim())
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Normalises a client-supplied RFC 3339 timestamp into the canonical form.
pub fn normalize(text: &str) -> Option<String> {
    parse(text).map(format)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_form_is_fixed_width_utc() {
        let t = parse("2024-01-02T12:00:25+02:00").unwrap();
        assert_eq!(format(t), "2024-01-02T10:00:25.000000Z");
        let t = parse("2026-11-21T05:17:51.107624107Z").unwrap();
        assert_eq!(format(t), "2026-11-21T05:17:51.107624Z");
    }

    #[test]
    fn rejects_what_sentry_cli_rejects() {
        assert!(parse("2024-01-01 00:00:00").is_none());
        assert!(parse("yesterday").is_none());
    }
}
