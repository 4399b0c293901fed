//! Issue references: Sentry's short ids (`WEB-1A`) and the "Fixes WEB-1A" grammar of commit
//! messages (sentry-semantics.md §4.1, §4.2).
//!
//! * A short id is `<PROJECT SLUG>-<base32 counter>`. The counter is written in Crockford-style
//!   base 32 without I, L, O and U ([`BASE32_ALPHABET`]); decoding folds `O` to `0` and `I`/`L`
//!   to `1`, so ids read aloud or retyped still resolve. [`ShortId::parse`] splits an id the way
//!   Sentry's `parse_short_id` does.
//! * [`find_references`] is Sentry's `find_referenced_groups` without the database: markdown
//!   links are reduced to their text, then every `Fix|Fixes|Fixed|Close|Closes|Closed|Resolve|
//!   Resolves|Resolved` (any case, optional colon) followed by whitespace opens a run of ids,
//!   commas and words, and every `X-Y` token in that run is a reference. Whether an issue with
//!   that id exists is the caller's question: the references are returned either way.
//! * [`find_url_references`] is the grammar's newest form, `Fixes https://<host>/.../issues/123`:
//!   the numeric issue id of every such URL whose host is this server's (or a subdomain of it).
//!
//! Almost no commit message contains a keyword, so [`find_references`] first runs a byte scan
//! for the keywords' keyword-unique fragments and only runs the regexes when one is present.
//! The scan is exact: every text the keyword regex can match contains `fix`, `clo` or `olv`
//! in ASCII letters of any case (the regex's Unicode case folding adds no other spelling of
//! those letters).
//!
//! Pure: no I/O, and no function here panics on any input.

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::Regex;

/// Sentry's `BASE32_ALPHABET`: Crockford's alphabet without I, L, O and U.
pub const BASE32_ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// The largest counter a short id may carry (the column is a signed 64-bit BigInt).
pub const MAX_SHORT_NUMBER: u64 = i64::MAX as u64;

/// Sentry's `base32_encode`: most significant digit first; 0 is `"0"`.
pub fn encode_base32(mut number: u64) -> String {
    if number == 0 {
        return "0".to_string();
    }
    let mut digits = Vec::with_capacity(13);
    while number > 0 {
        digits.push(BASE32_ALPHABET[(number % 32) as usize]);
        number /= 32;
    }
    digits.reverse();
    digits.into_iter().map(char::from).collect()
}

/// Sentry's `base32_decode`: uppercase, fold `O`→`0` and `I`/`L`→`1`, then read base 32.
/// `None` for an empty string, a character outside the alphabet (such as `U`) or a value that
/// does not fit in [`MAX_SHORT_NUMBER`].
pub fn decode_base32(text: &str) -> Option<u64> {
    if text.is_empty() {
        return None;
    }
    let mut value: u64 = 0;
    for ch in text.chars() {
        let ch = match ch.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            c => c,
        };
        let digit = BASE32_ALPHABET.iter().position(|&b| char::from(b) == ch)? as u64;
        value = value.checked_mul(32)?.checked_add(digit)?;
    }
    (value <= MAX_SHORT_NUMBER).then_some(value)
}

/// A decoded short id: the project slug (lowercased) and the per-project counter.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ShortId {
    pub project_slug: String,
    pub number: u64,
}

/// Sentry's newest `parse_short_id` regex: an optional `issue:` prefix, the slug (shortest
/// possible), one separator, and a trailing alphanumeric run.
static SHORT_ID_PARSE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:issue+:)?(.*?)(?:[\s_-])([A-Za-z0-9]+)$").expect("static regex")
});

impl ShortId {
    /// Splits `WEB-1A` into slug `web` and counter 42, as Sentry's `parse_short_id` does.
    /// `None` when the text has no separator before a trailing alphanumeric run, or the run
    /// does not decode.
    pub fn parse(text: &str) -> Option<ShortId> {
        // Python's `$` also matches before one trailing newline.
        let text = text.strip_suffix('\n').unwrap_or(text);
        let caps = SHORT_ID_PARSE.captures(text)?;
        let slug = caps.get(1)?.as_str().to_lowercase();
        let number = decode_base32(caps.get(2)?.as_str())?;
        Some(ShortId {
            project_slug: slug,
            number,
        })
    }

    /// The qualified form Sentry shows: `WEB-1A`.
    pub fn qualified(project_slug: &str, number: u64) -> String {
        format!("{}-{}", project_slug.to_uppercase(), encode_base32(number))
    }
}

impl std::fmt::Display for ShortId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&ShortId::qualified(&self.project_slug, self.number))
    }
}

/// One issue a text refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueRef {
    /// The token as matched, uppercased (`WEB-1A`); the identity of the reference.
    pub text: String,
    /// The decoded id, when the token decodes (`FOLLOW-UP` does not: `U` is not a digit).
    pub short_id: Option<ShortId>,
}

static MARKDOWN_LINK: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)\[([^]]+)\]\([^)]+\)").expect("static regex"));
static FIXES: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)\b(?:Fix|Fixes|Fixed|Close|Closes|Closed|Resolve|Resolves|Resolved):?\s+([A-Za-z0-9_\-\s\,]+)\b",
    )
    .expect("static regex")
});
static FIXES_URL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)\b(?:Fix|Fixes|Fixed|Close|Closes|Closed|Resolve|Resolves|Resolved):?\s+(https?://[^\s]+)",
    )
    .expect("static regex")
});
static ISSUE_URL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"/issues/(\d+)").expect("static regex"));
static SHORT_ID_TOKEN: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)\b([A-Z0-9_-]+-[A-Z0-9]+)\b").expect("static regex"));

/// `true` when the text may contain a fix keyword: it contains `fix`, `clo` or `olv` in ASCII
/// letters of any case. Never `false` for a text the keyword regex matches.
pub fn may_contain_keyword(text: &str) -> bool {
    let b = text.as_bytes();
    if b.len() < 3 {
        return false;
    }
    let lower = |x: u8| x | 0x20;
    for i in 0..b.len() - 2 {
        let hit = match lower(b[i]) {
            b'f' => lower(b[i + 1]) == b'i' && lower(b[i + 2]) == b'x',
            b'c' => lower(b[i + 1]) == b'l' && lower(b[i + 2]) == b'o',
            b'o' => lower(b[i + 1]) == b'l' && lower(b[i + 2]) == b'v',
            _ => false,
        };
        if hit {
            return true;
        }
    }
    false
}

/// Sentry's markdown stripping: `[text](url)` becomes `text`.
pub fn strip_markdown_links(text: &str) -> Cow<'_, str> {
    if !text.contains('[') {
        return Cow::Borrowed(text);
    }
    MARKDOWN_LINK.replace_all(text, "$1")
}

/// Every issue the text says it fixes, in order of first mention, each once.
pub fn find_references(text: &str) -> Vec<IssueRef> {
    let text = strip_markdown_links(text);
    if !may_contain_keyword(&text) {
        return Vec::new();
    }
    let mut out: Vec<IssueRef> = Vec::new();
    for fixes in FIXES.captures_iter(&text) {
        let Some(run) = fixes.get(1) else { continue };
        for token in SHORT_ID_TOKEN.find_iter(run.as_str()) {
            let upper = token.as_str().to_uppercase();
            if out.iter().any(|r| r.text == upper) {
                continue;
            }
            out.push(IssueRef {
                short_id: ShortId::parse(token.as_str()),
                text: upper,
            });
        }
    }
    out
}

/// The host (and port) of a URL: what follows `scheme://` up to the path, without userinfo.
fn netloc(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    (!host.is_empty()).then_some(host)
}

/// The issue ids of every `Fixes https://<host>/.../issues/<id>` in the text (Sentry's
/// `_fixes_url_re` then `_issue_url_re`), in order, each once. Only URLs of this server count:
/// their host must be `server_url`'s, or a subdomain of it; ids past the column's range are
/// dropped. Markdown links are reduced to their text first, as for short ids.
pub fn find_url_references(text: &str, server_url: &str) -> Vec<i64> {
    let Some(ours) = netloc(server_url).map(str::to_ascii_lowercase) else {
        return Vec::new();
    };
    let text = strip_markdown_links(text);
    if !text.contains("/issues/") || !may_contain_keyword(&text) {
        return Vec::new();
    }
    let mut out = Vec::new();
    for fixes in FIXES_URL.captures_iter(&text) {
        let Some(url) = fixes.get(1).map(|m| m.as_str()) else {
            continue;
        };
        let Some(host) = netloc(url).map(str::to_ascii_lowercase) else {
            continue;
        };
        if host != ours && !host.ends_with(&format!(".{ours}")) {
            continue;
        }
        let id = ISSUE_URL
            .captures(url)
            .and_then(|c| c.get(1))
            .and_then(|m| m.as_str().parse::<i64>().ok());
        if let Some(id) = id
            && !out.contains(&id)
        {
            out.push(id);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs(text: &str) -> Vec<String> {
        find_references(text).into_iter().map(|r| r.text).collect()
    }

    #[test]
    fn issue_urls_of_this_server_are_references() {
        let server = "http://127.0.0.1:8740";
        let cases: &[(&str, &[i64])] = &[
            (
                "Fixes http://127.0.0.1:8740/organizations/acme/issues/12/",
                &[12],
            ),
            (
                "fixed: http://127.0.0.1:8740/organizations/acme/issues/3",
                &[3],
            ),
            (
                "Closes http://127.0.0.1:8740/organizations/acme/issues/4/?project=1 and Resolves http://127.0.0.1:8740/organizations/acme/issues/5/",
                &[4, 5],
            ),
            // Another host, another port, or no keyword: not ours.
            ("Fixes https://sentry.io/organizations/acme/issues/12/", &[]),
            (
                "Fixes http://127.0.0.1:9999/organizations/acme/issues/12/",
                &[],
            ),
            (
                "See http://127.0.0.1:8740/organizations/acme/issues/12/",
                &[],
            ),
            // Out of range, or not an issue URL.
            (
                "Fixes http://127.0.0.1:8740/organizations/acme/issues/99999999999999999999/",
                &[],
            ),
            (
                "Fixes http://127.0.0.1:8740/organizations/acme/releases/1/",
                &[],
            ),
            // A markdown link is reduced to its text, as Sentry does.
            (
                "Fixes [the crash](http://127.0.0.1:8740/organizations/acme/issues/12/)",
                &[],
            ),
        ];
        for (text, want) in cases {
            assert_eq!(&find_url_references(text, server), want, "{text}");
        }
        // Subdomains of the server's host count; a look-alike suffix does not.
        let server = "https://shiplog.example.com";
        assert_eq!(
            find_url_references("Fixes https://eu.shiplog.example.com/x/issues/7/", server),
            vec![7]
        );
        assert!(
            find_url_references("Fixes https://evilshiplog.example.com/issues/7/", server)
                .is_empty()
        );
        assert!(find_url_references("Fixes https://x/issues/7/", "not a url").is_empty());
    }

    #[test]
    fn base32_matches_sentry() {
        let cases: &[(u64, &str)] = &[
            (0, "0"),
            (1, "1"),
            (9, "9"),
            (10, "A"),
            (17, "H"),
            (18, "J"),
            (19, "K"),
            (20, "M"),
            (21, "N"),
            (22, "P"),
            (26, "T"),
            (27, "V"),
            (31, "Z"),
            (32, "10"),
            (42, "1A"),
            (1023, "ZZ"),
            (1024, "100"),
            (i64::MAX as u64, "7ZZZZZZZZZZZZ"),
        ];
        for (n, s) in cases {
            assert_eq!(encode_base32(*n), *s, "encode {n}");
            assert_eq!(decode_base32(s), Some(*n), "decode {s}");
        }
    }

    #[test]
    fn decoding_folds_and_rejects_like_sentry() {
        // Lowercase is read as uppercase; O, I and L are the digits they look like.
        assert_eq!(decode_base32("1a"), Some(42));
        assert_eq!(decode_base32("O"), Some(0));
        assert_eq!(decode_base32("o1"), Some(1));
        assert_eq!(decode_base32("I"), Some(1));
        assert_eq!(decode_base32("L"), Some(1));
        assert_eq!(decode_base32("l0"), Some(32));
        assert_eq!(decode_base32("1O"), decode_base32("10"));
        // U is not in the alphabet, nor is anything but letters and digits.
        assert_eq!(decode_base32("U"), None);
        assert_eq!(decode_base32("1U"), None);
        assert_eq!(decode_base32("-1"), None);
        assert_eq!(decode_base32(""), None);
        assert_eq!(decode_base32("é"), None);
        // Leading zeros are harmless; values past the BigInt column are not ids.
        assert_eq!(decode_base32("0001"), Some(1));
        assert_eq!(decode_base32("8000000000000"), None);
        assert_eq!(decode_base32("ZZZZZZZZZZZZZZZZ"), None);
    }

    #[test]
    fn short_ids_parse_like_sentry() {
        let sid = |slug: &str, n: u64| {
            Some(ShortId {
                project_slug: slug.into(),
                number: n,
            })
        };
        assert_eq!(ShortId::parse("WEB-1A"), sid("web", 42));
        assert_eq!(ShortId::parse("web-1a"), sid("web", 42));
        assert_eq!(ShortId::parse("SENTRY-1"), sid("sentry", 1));
        // The slug may contain separators: the id is the trailing run after the last one.
        assert_eq!(ShortId::parse("MY-APP-12"), sid("my-app", 34));
        assert_eq!(ShortId::parse("MY_APP-12"), sid("my_app", 34));
        assert_eq!(ShortId::parse("MY_APP_12"), sid("my_app", 34));
        assert_eq!(ShortId::parse("WEB 1"), sid("web", 1));
        // The newest form accepts an `issue:` prefix (and Python's `$` a final newline).
        assert_eq!(ShortId::parse("issue:WEB-1"), sid("web", 1));
        assert_eq!(ShortId::parse("WEB-1\n"), sid("web", 1));
        // Folding applies to the id part.
        assert_eq!(ShortId::parse("WEB-1O"), sid("web", 32));
        assert_eq!(ShortId::parse("WEB-L"), sid("web", 1));
        // No separator, an undecodable id, or an empty id: not a short id.
        assert_eq!(ShortId::parse("WEB1"), None);
        assert_eq!(ShortId::parse("FOLLOW-UP"), None);
        assert_eq!(ShortId::parse("WEB-"), None);
        assert_eq!(ShortId::parse(""), None);
        // An empty slug is what Sentry's regex yields for "-1"; no project has it.
        assert_eq!(ShortId::parse("-1"), sid("", 1));
    }

    #[test]
    fn qualified_form() {
        assert_eq!(ShortId::qualified("web", 42), "WEB-1A");
        assert_eq!(ShortId::qualified("my-app", 1), "MY-APP-1");
        assert_eq!(ShortId::parse("WEB-1A").unwrap().to_string(), "WEB-1A");
    }

    #[test]
    fn every_keyword_in_any_case_with_optional_colon() {
        for kw in [
            "Fix", "Fixes", "Fixed", "Close", "Closes", "Closed", "Resolve", "Resolves", "Resolved",
        ] {
            for form in [kw.to_string(), kw.to_lowercase(), kw.to_uppercase()] {
                assert_eq!(refs(&format!("{form} WEB-1")), ["WEB-1"], "{form}");
                assert_eq!(refs(&format!("{form}: WEB-1")), ["WEB-1"], "{form}:");
                assert_eq!(refs(&format!("x\n{form}:\tWEB-1\n")), ["WEB-1"], "{form}");
            }
        }
    }

    #[test]
    fn grammar_cases() {
        let cases: &[(&str, &[&str])] = &[
            // Sentry's own example: several ids after one keyword.
            ("Fixes SENTRY-1, SENTRY-2", &["SENTRY-1", "SENTRY-2"]),
            ("fix: WEB-1A and API-3 in one go", &["WEB-1A", "API-3"]),
            ("Fixes WEB-1 Fixes WEB-2", &["WEB-1", "WEB-2"]),
            // Several keywords per message, over lines.
            (
                "Rework the parser\n\nFixes WEB-1\n\nCloses API-2",
                &["WEB-1", "API-2"],
            ),
            // Sentry quirk, kept: a run swallows the next keyword line when only words and
            // newlines separate them, so the colon after `Resolved` ends the run and WEB-3
            // (whose keyword was consumed) is not found.
            (
                "Fixes WEB-1\nCloses API-2\nResolved: WEB-3",
                &["WEB-1", "API-2"],
            ),
            ("Fixes WEB-1.\nResolved: WEB-3", &["WEB-1", "WEB-3"]),
            // The run spans whitespace and newlines up to the first other character.
            ("Fixes WEB-1\nand API-2.", &["WEB-1", "API-2"]),
            ("Fixes WEB-1. Also API-2", &["WEB-1"]),
            // Each id once, case-insensitively, uppercased.
            ("fixes web-1, WEB-1", &["WEB-1"]),
            // Markdown links are reduced to their text first.
            (
                "Fixes [WEB-1](https://sentry.example/issues/1/)",
                &["WEB-1"],
            ),
            (
                "Fix [WEB-2](http://x) and [API-1](http://y)",
                &["WEB-2", "API-1"],
            ),
            // Slugs with separators and underscores.
            ("Fixes MY-APP-12", &["MY-APP-12"]),
            ("Fixes MY_APP-12", &["MY_APP-12"]),
            // Words with a dash in the run are tokens too; they simply decode to nothing
            // or name no project.
            ("Fixes the follow-up WEB-1", &["FOLLOW-UP", "WEB-1"]),
            // No keyword, keyword inside a word, keyword without whitespace after it.
            ("Refactor WEB-1", &[]),
            ("Prefix WEB-1", &[]),
            ("hotfix WEB-1", &[]),
            ("Fixes:WEB-1", &[]),
            ("Fixing WEB-1", &[]),
            ("Fixes #123", &[]),
            ("Fixes 123", &[]),
            ("fix: handle empty input", &[]),
            ("", &[]),
        ];
        for (text, want) in cases {
            assert_eq!(refs(text), *want, "{text:?}");
        }
    }

    #[test]
    fn references_carry_decoded_ids() {
        let r = find_references("Fixes WEB-1A, FOLLOW-UP");
        assert_eq!(
            r[0].short_id,
            Some(ShortId {
                project_slug: "web".into(),
                number: 42
            })
        );
        assert_eq!(r[1].text, "FOLLOW-UP");
        assert_eq!(r[1].short_id, None);
    }

    #[test]
    fn prefilter_is_exact_on_keywords() {
        for text in ["FIX", "fIx", "clO", "CLOSE", "resOLVe", "reſolve"] {
            assert!(may_contain_keyword(text), "{text}");
        }
        for text in ["", "fi", "Refactor", "add tests", "bump deps", "f i x"] {
            assert!(!may_contain_keyword(text), "{text}");
        }
        // A markdown link can only hide a keyword that the stripped text shows.
        assert_eq!(refs("[Fi](u)xes WEB-1"), ["WEB-1"]);
    }

    mod props {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn base32_round_trips(n in 0u64..=MAX_SHORT_NUMBER) {
                let s = encode_base32(n);
                prop_assert_eq!(decode_base32(&s), Some(n));
                prop_assert_eq!(decode_base32(&s.to_lowercase()), Some(n));
            }

            #[test]
            fn short_ids_round_trip(slug in "[a-z][a-z0-9_-]{0,20}", n in 0u64..=MAX_SHORT_NUMBER) {
                let text = ShortId::qualified(&slug, n);
                let parsed = ShortId::parse(&text).unwrap();
                prop_assert_eq!(parsed.number, n);
                prop_assert_eq!(parsed.project_slug, slug);
            }

            #[test]
            fn parser_never_panics(text in any::<String>()) {
                let _ = find_references(&text);
                let _ = ShortId::parse(&text);
                let _ = decode_base32(&text);
            }

            #[test]
            fn parser_never_panics_near_keywords(
                text in "(Fix|fixes|CLOSED|resolve:|\\[|\\]|\\(|\\)|[A-Z]{1,4}-[0-9A-Z]{1,3}|,| |\n|\\PC){0,40}"
            ) {
                for r in find_references(&text) {
                    prop_assert!(r.text.contains('-'));
                }
            }

            #[test]
            fn prefilter_never_hides_a_match(text in "(Fix|fixes|CLOSED|resolve:|ſ|[A-Z]{1,4}-[0-9A-Z]{1,3}| |\\PC){0,20}") {
                let stripped = strip_markdown_links(&text);
                if FIXES.is_match(&stripped) {
                    prop_assert!(may_contain_keyword(&stripped));
                }
            }
        }
    }
}
