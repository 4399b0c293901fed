//! Release version rules: validation, structured parsing, ordering and the derived values
//! (semver columns, `versionInfo`) that are stored and shown for a release.
//!
//! Everything here mirrors Sentry's server-side behaviour together with the
//! `sentry-release-parser` crate that Sentry uses (through Relay) to understand release names:
//!
//! * [`validate`] is Sentry's `Release.is_valid_version` plus the API's 200-character limit,
//!   extended with `sentry-release-parser`'s stricter character rule (every C0 control character
//!   and DEL is rejected, not only CR, LF, FF and TAB), and stricter still: C1 controls and the
//!   bidirectional overrides are refused too, so a version always reads as what it is.
//! * [`parse`] mirrors `Release::parse`: an optional `package@` prefix, a build-hash check and the
//!   parser's version grammar (1 to 4 numeric components, an optional pre-release and an optional
//!   `+build_code`), plus the human-readable `description`.
//! * [`SemVer`]'s [`Ord`] follows the parser's `impl Ord for Version`.
//! * [`semver_columns`] reproduces the semver columns Sentry stores on a new release row, and
//!   [`version_info`] the `versionInfo` object of the release API.
//!
//! The module is pure: no I/O, no global state beyond compile-time-constant regexes, and no
//! function panics on any input.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::LazyLock;

use regex::Regex;
use serde_json::{Value, json};

/// Longest accepted release version, in characters (Sentry's `MAX_VERSION_LENGTH`).
pub const MAX_VERSION_LENGTH: usize = 200;

/// `package@version`: the package may start with one `@`, otherwise it contains no `@`.
static RELEASE_REGEX: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(@?[^@]+)@(.+?)$").expect("RELEASE_REGEX is a valid constant pattern")
});

/// The version grammar of `sentry-release-parser`.
static VERSION_REGEX: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?x)
        ^
        (?P<major>[0-9][0-9]*)
        (?:\.(?P<minor>[0-9][0-9]*))?
        (?:\.(?P<patch>[0-9][0-9]*))?
        (?:\.(?P<revision>[0-9][0-9]*))?
        (?:
            (?P<prerelease>
                (?:-|[a-z])
                (?:0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*)?
                (?:\.(?:0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*))*
            )
        )?
        (?:\+(?P<build_code>[0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?
        $
        ",
    )
    .expect("VERSION_REGEX is a valid constant pattern")
});

/// Why a release version is rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VersionError {
    /// The version is empty or consists only of whitespace.
    #[error(
        "release version is empty or only whitespace; give the release a name such as \"1.2.3\" or \"my-app@1.2.3\""
    )]
    Empty,
    /// The trimmed version is `.`, `..` or `latest` (any letter case).
    #[error(
        "release version {version:?} is reserved (\".\", \"..\" and \"latest\" in any letter case cannot be used); choose another name"
    )]
    Reserved {
        /// The version as given.
        version: String,
    },
    /// The version contains a slash, a backslash, a control character or a bidi control.
    #[error(
        "release version {version:?} contains a forbidden character {ch:?} (slashes, backslashes, control characters such as tab or newline and bidirectional controls are not allowed)"
    )]
    ForbiddenCharacter {
        /// The version as given.
        version: String,
        /// The first forbidden character found.
        ch: char,
    },
    /// The version is longer than [`MAX_VERSION_LENGTH`] characters.
    #[error(
        "release version is {len} characters long; shorten it to at most {max} characters",
        max = MAX_VERSION_LENGTH
    )]
    TooLong {
        /// The length of the version, in characters.
        len: usize,
    },
}

/// Characters a release version may never contain: `/`, `\`, every control character (C0,
/// which includes CR, LF, FF and TAB, DEL and C1 such as U+0085) and the bidirectional
/// embedding, override and isolate controls, which make a name display as another.
fn is_forbidden_version_char(c: char) -> bool {
    c == '/' || c == '\\' || c.is_control() || is_bidi_control(c)
}

/// The bidirectional formatting characters that reorder the text around them (U+202A–U+202E,
/// U+2066–U+2069): a version or name holding one can show as something it is not.
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Checks that `version` is an acceptable release version.
///
/// The checks run in Sentry's order: the length limit (on the value as given), forbidden
/// characters (on the value as given), then emptiness and the reserved names `.`, `..` and
/// `latest` (case-insensitive) on the whitespace-trimmed value.
pub fn validate(version: &str) -> Result<(), VersionError> {
    let len = version.chars().count();
    if len > MAX_VERSION_LENGTH {
        return Err(VersionError::TooLong { len });
    }
    if let Some(ch) = version.chars().find(|&c| is_forbidden_version_char(c)) {
        return Err(VersionError::ForbiddenCharacter {
            version: version.to_owned(),
            ch,
        });
    }
    let trimmed = version.trim();
    if trimmed.is_empty() {
        return Err(VersionError::Empty);
    }
    if trimmed == "." || trimmed == ".." || trimmed.eq_ignore_ascii_case("latest") {
        return Err(VersionError::Reserved {
            version: version.to_owned(),
        });
    }
    Ok(())
}

/// Whether `s` looks like a build hash: hexadecimal, 12, 16, 20, 32, 40 or 64 characters long.
fn is_build_hash(s: &str) -> bool {
    matches!(s.len(), 12 | 16 | 20 | 32 | 40 | 64) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The four numeric components of a version as written, absent ones as `None`.
pub type RawQuad = (String, Option<String>, Option<String>, Option<String>);

/// A version understood by `sentry-release-parser`'s grammar.
///
/// Equality, hashing and ordering only look at the numeric quad, the pre-release and the build
/// code, so `1.0` equals `1.0.0.0`.
#[derive(Debug, Clone)]
pub struct SemVer {
    /// First component.
    pub major: u64,
    /// Second component, 0 when absent.
    pub minor: u64,
    /// Third component, 0 when absent.
    pub patch: u64,
    /// Fourth component, 0 when absent.
    pub revision: u64,
    /// Pre-release marker without its leading `-` (`rc1` in `1.0-rc1` and `1.0rc1`).
    pub pre: Option<String>,
    /// Text after `+`.
    pub build_code: Option<String>,
    /// The whole version text as parsed.
    pub raw: String,
    /// The version text before `+build_code`.
    pub raw_short: String,
    /// How many numeric components were written (1 to 4).
    pub components: u8,
    /// The numeric components as written (leading zeros kept).
    pub raw_quad: RawQuad,
}

impl SemVer {
    /// Parses a bare version (no package) with `sentry-release-parser`'s grammar.
    ///
    /// A single numeric component followed by a pre-release that does not start with `-` is
    /// rejected: `1.0a1` and `1-a1` parse, `1a1` does not. A numeric component too large for
    /// `u64` reads as 0, as in the parser.
    pub fn parse(version: &str) -> Option<SemVer> {
        let caps = VERSION_REGEX.captures(version)?;
        let text = |name: &str| caps.name(name).map(|m| m.as_str());
        let number = |raw: Option<&str>| raw.and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);

        let major_raw = text("major")?;
        let minor_raw = text("minor");
        let patch_raw = text("patch");
        let revision_raw = text("revision");
        let components = 1
            + u8::from(minor_raw.is_some())
            + u8::from(patch_raw.is_some())
            + u8::from(revision_raw.is_some());

        let prerelease = text("prerelease");
        if components == 1 && prerelease.is_some_and(|p| !p.starts_with('-')) {
            return None;
        }
        let pre = prerelease
            .map(|p| p.strip_prefix('-').unwrap_or(p))
            .filter(|p| !p.is_empty())
            .map(str::to_owned);

        let build = caps.name("build_code");
        let raw_short = match build {
            // The build code is preceded by exactly one `+`.
            Some(m) => version
                .get(..m.start().saturating_sub(1))
                .unwrap_or(version),
            None => version,
        };

        Some(SemVer {
            major: number(Some(major_raw)),
            minor: number(minor_raw),
            patch: number(patch_raw),
            revision: number(revision_raw),
            pre,
            build_code: build.map(|m| m.as_str().to_owned()),
            raw: version.to_owned(),
            raw_short: raw_short.to_owned(),
            components,
            raw_quad: (
                major_raw.to_owned(),
                minor_raw.map(str::to_owned),
                patch_raw.map(str::to_owned),
                revision_raw.map(str::to_owned),
            ),
        })
    }

    /// `(major, minor, patch, revision)`.
    pub fn quad(&self) -> (u64, u64, u64, u64) {
        (self.major, self.minor, self.patch, self.revision)
    }

    /// The build code read as an unsigned number, if it is one.
    pub fn build_number(&self) -> Option<u64> {
        self.build_code.as_deref().and_then(|b| b.parse().ok())
    }
}

/// No pre-release beats any pre-release; two pre-releases compare as strings.
fn cmp_pre(a: Option<&str>, b: Option<&str>) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(a), Some(b)) => a.cmp(b),
    }
}

/// Sort key of a build code: absent, then numeric (by value), then anything else (as text).
/// Text breaks ties between numerically equal codes such as `010` and `10`.
fn build_key(code: Option<&str>) -> (u8, u64, &str) {
    match code {
        None => (0, 0, ""),
        Some(c) => match c.parse::<u64>() {
            Ok(n) => (1, n, c),
            Err(_) => (2, 0, c),
        },
    }
}

/// Two numeric build codes compare by value, two other build codes as strings, and a missing
/// build code sorts first, as in the parser. The parser compares a numeric code with a
/// non-numeric one as strings, which is not transitive (`10` > `9` > `1a` > `10`); here a
/// numeric code sorts below a non-numeric one (as numeric identifiers do in SemVer 2.0), which
/// keeps this a total order that Rust's sorts can rely on.
fn cmp_build(a: Option<&str>, b: Option<&str>) -> Ordering {
    build_key(a).cmp(&build_key(b))
}

impl Ord for SemVer {
    fn cmp(&self, other: &Self) -> Ordering {
        self.quad()
            .cmp(&other.quad())
            .then_with(|| cmp_pre(self.pre.as_deref(), other.pre.as_deref()))
            .then_with(|| cmp_build(self.build_code.as_deref(), other.build_code.as_deref()))
    }
}

impl PartialOrd for SemVer {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for SemVer {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for SemVer {}

impl Hash for SemVer {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.quad().hash(state);
        self.pre.hash(state);
        self.build_code.hash(state);
    }
}

impl fmt::Display for SemVer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

/// A release name split into its parts, as `sentry-release-parser`'s `Release::parse` sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedRelease {
    /// The part before `@`, or `""` when the release has no package.
    pub package: String,
    /// The part after `@`, or the whole (trimmed) release when it has no package.
    pub version_raw: String,
    /// The parsed version; only releases with a package and a non-hash version get one.
    pub version: Option<SemVer>,
    /// A build hash found in the build code or as the whole version.
    pub build_hash: Option<String>,
    /// The short, human-readable name of the release.
    pub description: String,
}

/// Splits a release name into package, version, build hash and description.
///
/// The input is trimmed first. `package@version` is recognised by the parser's
/// `^(@?[^@]+)@(.+?)$`: the package may start with one `@` (as npm-style scoped names do) and
/// otherwise contains no `@`, so the split happens at the first `@` after that optional leading
/// one, and everything after it (including any further `@`) is the version. Without a match the package is empty, the whole
/// release is `version_raw` and no version is parsed. A `version_raw` that looks like a build
/// hash is never parsed as a version. This function does not validate: run [`validate`] for
/// that. It never panics.
pub fn parse(release: &str) -> ParsedRelease {
    let release = release.trim();
    let (package, version_raw) = match RELEASE_REGEX.captures(release) {
        Some(caps) => match (caps.get(1), caps.get(2)) {
            (Some(p), Some(v)) => (p.as_str(), v.as_str()),
            _ => ("", release),
        },
        None => ("", release),
    };
    let version = if package.is_empty() || is_build_hash(version_raw) {
        None
    } else {
        SemVer::parse(version_raw)
    };
    let build_hash = version
        .as_ref()
        .and_then(|v| v.build_code.as_deref())
        .filter(|code| is_build_hash(code))
        .or_else(|| is_build_hash(version_raw).then_some(version_raw))
        .map(str::to_owned);
    let short_hash = build_hash.as_deref().map(|h| h.get(..12).unwrap_or(h));

    let description = match (&version, short_hash) {
        (Some(v), Some(hash)) => format!("{} ({hash})", v.raw_short),
        (Some(v), None) => match &v.build_code {
            Some(code) => format!("{} ({code})", v.raw_short),
            None => v.raw_short.clone(),
        },
        (None, Some(hash)) => hash.to_owned(),
        (None, None) if package.is_empty() => version_raw.to_owned(),
        (None, None) => format!("{package}@{version_raw}"),
    };

    ParsedRelease {
        package: package.to_owned(),
        version_raw: version_raw.to_owned(),
        version,
        build_hash,
        description,
    }
}

/// The semver columns Sentry stores on a newly created release row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SemverColumns {
    /// The package (the part before `@`).
    pub package: String,
    /// First component.
    pub major: i64,
    /// Second component.
    pub minor: i64,
    /// Third component.
    pub patch: i64,
    /// Fourth component.
    pub revision: i64,
    /// The pre-release, `""` when there is none.
    pub prerelease: String,
    /// 1 when `prerelease` is empty, else 0, so a final release sorts above its pre-releases.
    pub prerelease_case: i64,
    /// The build code.
    pub build_code: Option<String>,
    /// The build code as a number, when it is a non-negative integer that fits in an `i64`.
    pub build_number: Option<i64>,
}

/// A component as written, if it fits Sentry's `validate_bigint` (0 ..= 2^63 - 1).
///
/// This reads the written digits rather than the parser's `u64`, which silently turns numbers
/// of 2^64 and above into 0; such components are out of range here.
fn bigint(raw: Option<&str>) -> Option<i64> {
    match raw {
        None => Some(0),
        Some(digits) => digits.parse::<i64>().ok().filter(|n| *n >= 0),
    }
}

/// The semver columns for a release version, or `None` when Sentry would leave them NULL.
///
/// Columns exist only for a valid version that contains `@`, whose version part parses, and
/// whose four components all fit in `0 ..= 2^63 - 1`. `build_number` is set only when the build
/// code is an integer in that range.
pub fn semver_columns(version: &str) -> Option<SemverColumns> {
    if !version.contains('@') || validate(version).is_err() {
        return None;
    }
    let parsed = parse(version);
    let v = parsed.version?;
    let (major_raw, minor_raw, patch_raw, revision_raw) = &v.raw_quad;
    let major = bigint(Some(major_raw))?;
    let minor = bigint(minor_raw.as_deref())?;
    let patch = bigint(patch_raw.as_deref())?;
    let revision = bigint(revision_raw.as_deref())?;
    let build_number = v
        .build_code
        .as_deref()
        .and_then(|code| code.parse::<i64>().ok())
        .filter(|n| *n >= 0);
    let prerelease = v.pre.unwrap_or_default();
    let prerelease_case = i64::from(prerelease.is_empty());
    Some(SemverColumns {
        package: parsed.package,
        major,
        minor,
        patch,
        revision,
        prerelease,
        prerelease_case,
        build_code: v.build_code,
        build_number,
    })
}

/// Sentry's `versionInfo` object for a release version, or JSON `null` for an invalid version.
///
/// Shape: `{"package", "version": {"raw", + when parsed: "major", "minor", "patch", "pre",
/// "buildCode", "components"}, "description", "buildHash"}`; `package` is `null` when the
/// release has none.
pub fn version_info(version: &str) -> Value {
    if validate(version).is_err() {
        return Value::Null;
    }
    let parsed = parse(version);
    let mut version_obj = serde_json::Map::new();
    version_obj.insert("raw".into(), Value::String(parsed.version_raw.clone()));
    if let Some(v) = &parsed.version {
        version_obj.insert("major".into(), json!(v.major));
        version_obj.insert("minor".into(), json!(v.minor));
        version_obj.insert("patch".into(), json!(v.patch));
        version_obj.insert("pre".into(), json!(v.pre));
        version_obj.insert("buildCode".into(), json!(v.build_code));
        version_obj.insert("components".into(), json!(v.components));
    }
    let package = if parsed.package.is_empty() {
        Value::Null
    } else {
        Value::String(parsed.package)
    };
    json!({
        "package": package,
        "version": Value::Object(version_obj),
        "description": parsed.description,
        "buildHash": parsed.build_hash,
    })
}

/// Compares two release names by their versions, ignoring any package.
///
/// Like Relay's `compare_versions`, the version part (after the package, if any) is parsed
/// with [`SemVer::parse`]; `None` when either side does not parse.
pub fn compare(a: &str, b: &str) -> Option<Ordering> {
    let a = SemVer::parse(&parse(a).version_raw)?;
    let b = SemVer::parse(&parse(b).version_raw)?;
    Some(a.cmp(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::hash_map::DefaultHasher;

    const HASH_64: &str = "a86d127c4b2f23a0a862620280427dcc01c78676a86d127c4b2f23a0a8626202";

    fn hex_of_len(len: usize) -> String {
        HASH_64.chars().cycle().take(len).collect()
    }

    // ----------------------------------------------------------------------------------------
    // validate

    #[test]
    fn validate_accepts_ordinary_versions() {
        let ok = [
            "1.0",
            "1.2.3-beta+77",
            "my-app@1.2.3",
            "@scope@1.0.0",
            " 1.0 ",
            "  padded  ",
            "release with spaces",
            "a:b;c,d",
            "latest-build",
            "the-latest",
            "latest2",
            "...",
            ". .",
            ".a",
            "none",
            "ünïcödé-日本",
            "a86d127c4b2f23a0a862620280427dcc01c78676",
        ];
        for v in ok {
            assert_eq!(validate(v), Ok(()), "{v:?} should be valid");
        }
    }

    #[test]
    fn validate_rejects_each_forbidden_character() {
        let forbidden = [
            '\r', '\n', '\x0c', '\t', '/', '\\', '\0', '\x01', '\x07', '\x08', '\x0b', '\x1b',
            '\x1f', '\x7f',
        ];
        for ch in forbidden {
            for version in [
                format!("a{ch}b"),
                format!("{ch}"),
                format!("1.0{ch}"),
                format!("{ch} "),
            ] {
                assert_eq!(
                    validate(&version),
                    Err(VersionError::ForbiddenCharacter {
                        version: version.clone(),
                        ch
                    }),
                    "{version:?}"
                );
            }
        }
    }

    #[test]
    fn validate_reports_first_forbidden_character() {
        assert_eq!(
            validate("a\\b/c"),
            Err(VersionError::ForbiddenCharacter {
                version: "a\\b/c".into(),
                ch: '\\'
            })
        );
        // Forbidden characters are checked on the raw value, so even padding is not exempt.
        assert_eq!(
            validate("1.0\n"),
            Err(VersionError::ForbiddenCharacter {
                version: "1.0\n".into(),
                ch: '\n'
            })
        );
    }

    #[test]
    fn validate_allows_non_control_unicode_and_spaces() {
        for v in [
            "a\u{a0}b",
            "a\u{2003}b",
            "x y",
            "caf\u{e9}-1.0",
            "\u{5d0}\u{5d1}-2",
        ] {
            assert_eq!(validate(v), Ok(()), "{v:?}");
        }
    }

    #[test]
    fn validate_rejects_c1_controls_and_bidi_overrides() {
        for (v, ch) in [
            ("a\u{85}b", '\u{85}'),
            ("1.0\u{9f}", '\u{9f}'),
            ("1.0\u{202e}3.2", '\u{202e}'),
            ("\u{2066}x", '\u{2066}'),
        ] {
            assert_eq!(
                validate(v),
                Err(VersionError::ForbiddenCharacter {
                    version: v.into(),
                    ch
                }),
                "{v:?}"
            );
        }
    }

    #[test]
    fn validate_rejects_reserved_names_in_any_case_and_padding() {
        let reserved = [
            ".",
            "..",
            "latest",
            "LATEST",
            "Latest",
            "lAtEsT",
            "latesT",
            " latest",
            "latest ",
            "  LaTeSt  ",
            " .",
            ". ",
            " .. ",
            "\u{a0}latest\u{2003}",
        ];
        for v in reserved {
            assert_eq!(
                validate(v),
                Err(VersionError::Reserved { version: v.into() }),
                "{v:?}"
            );
        }
    }

    #[test]
    fn validate_rejects_empty_and_whitespace_only() {
        for v in ["", " ", "     ", "\u{a0}", "\u{2003} \u{3000}"] {
            assert_eq!(validate(v), Err(VersionError::Empty), "{v:?}");
        }
        // Whitespace that is also a control character is reported as a forbidden character.
        assert!(matches!(
            validate("\t"),
            Err(VersionError::ForbiddenCharacter { ch: '\t', .. })
        ));
    }

    #[test]
    fn validate_length_limit_counts_characters() {
        let cases: [(String, Result<(), VersionError>); 6] = [
            ("a".repeat(200), Ok(())),
            ("a".repeat(201), Err(VersionError::TooLong { len: 201 })),
            ("é".repeat(200), Ok(())),
            ("é".repeat(201), Err(VersionError::TooLong { len: 201 })),
            (format!("pkg@{}", "1".repeat(196)), Ok(())),
            // The length check comes first, like the API serializer's max_length.
            ("/".repeat(201), Err(VersionError::TooLong { len: 201 })),
        ];
        for (v, expected) in cases {
            assert_eq!(validate(&v), expected, "length {}", v.chars().count());
        }
        assert_eq!(MAX_VERSION_LENGTH, 200);
    }

    #[test]
    fn error_messages_are_actionable_one_liners() {
        let cases = [
            (
                validate("a/b"),
                "release version \"a/b\" contains a forbidden character '/' (slashes, backslashes, control characters such as tab or newline and bidirectional controls are not allowed)",
            ),
            (
                validate("a\tb"),
                "release version \"a\\tb\" contains a forbidden character '\\t' (slashes, backslashes, control characters such as tab or newline and bidirectional controls are not allowed)",
            ),
            (
                validate(" Latest "),
                "release version \" Latest \" is reserved (\".\", \"..\" and \"latest\" in any letter case cannot be used); choose another name",
            ),
            (
                validate("  "),
                "release version is empty or only whitespace; give the release a name such as \"1.2.3\" or \"my-app@1.2.3\"",
            ),
            (
                validate(&"x".repeat(250)),
                "release version is 250 characters long; shorten it to at most 200 characters",
            ),
        ];
        for (result, expected) in cases {
            let message = match result {
                Err(e) => e.to_string(),
                Ok(()) => panic!("expected an error for {expected:?}"),
            };
            assert_eq!(message, expected);
            assert!(!message.contains('\n'));
        }
        let message = VersionError::ForbiddenCharacter {
            version: "a\nb".into(),
            ch: '\n',
        }
        .to_string();
        assert!(!message.contains('\n'), "{message}");
    }

    // ----------------------------------------------------------------------------------------
    // SemVer::parse

    type Expected = (
        u64,
        u64,
        u64,
        u64,
        Option<&'static str>,
        Option<&'static str>,
        u8,
        &'static str,
    );

    #[test]
    fn semver_parse_table() {
        let cases: &[(&str, Option<Expected>)] = &[
            ("1", Some((1, 0, 0, 0, None, None, 1, "1"))),
            ("1.2", Some((1, 2, 0, 0, None, None, 2, "1.2"))),
            ("1.2.3", Some((1, 2, 3, 0, None, None, 3, "1.2.3"))),
            ("1.2.3.4", Some((1, 2, 3, 4, None, None, 4, "1.2.3.4"))),
            ("1.2.3.04", Some((1, 2, 3, 4, None, None, 4, "1.2.3.04"))),
            (
                "01.002.0003",
                Some((1, 2, 3, 0, None, None, 3, "01.002.0003")),
            ),
            (
                "1.2.3-dev+BUILD-code",
                Some((1, 2, 3, 0, Some("dev"), Some("BUILD-code"), 3, "1.2.3-dev")),
            ),
            ("1.0a1", Some((1, 0, 0, 0, Some("a1"), None, 2, "1.0a1"))),
            ("1.0a", Some((1, 0, 0, 0, Some("a"), None, 2, "1.0a"))),
            (
                "1.0alpha2+build-code",
                Some((
                    1,
                    0,
                    0,
                    0,
                    Some("alpha2"),
                    Some("build-code"),
                    2,
                    "1.0alpha2",
                )),
            ),
            (
                "1.0rc1+20200101100",
                Some((1, 0, 0, 0, Some("rc1"), Some("20200101100"), 2, "1.0rc1")),
            ),
            (
                "1.0rc1+1.2.3",
                Some((1, 0, 0, 0, Some("rc1"), Some("1.2.3"), 2, "1.0rc1")),
            ),
            ("1-a1", Some((1, 0, 0, 0, Some("a1"), None, 1, "1-a1"))),
            (
                "1-rc.1",
                Some((1, 0, 0, 0, Some("rc.1"), None, 1, "1-rc.1")),
            ),
            (
                "1.0.0-alpha.beta.1+build.5",
                Some((
                    1,
                    0,
                    0,
                    0,
                    Some("alpha.beta.1"),
                    Some("build.5"),
                    3,
                    "1.0.0-alpha.beta.1",
                )),
            ),
            ("1.0.0-0", Some((1, 0, 0, 0, Some("0"), None, 3, "1.0.0-0"))),
            (
                "1.0.0--x",
                Some((1, 0, 0, 0, Some("-x"), None, 3, "1.0.0--x")),
            ),
            // A bare `-` is a pre-release marker with nothing in it: no pre-release.
            ("1.0-", Some((1, 0, 0, 0, None, None, 2, "1.0-"))),
            ("1-", Some((1, 0, 0, 0, None, None, 1, "1-"))),
            (
                "1.2.3.4-rc1+99",
                Some((1, 2, 3, 4, Some("rc1"), Some("99"), 4, "1.2.3.4-rc1")),
            ),
            (
                "1+a86d127c4b2f",
                Some((1, 0, 0, 0, None, Some("a86d127c4b2f"), 1, "1")),
            ),
            // A component that overflows u64 reads as 0, as in the parser.
            (
                "99999999999999999999999.1",
                Some((0, 1, 0, 0, None, None, 2, "99999999999999999999999.1")),
            ),
            ("1a1", None),
            ("1rc1", None),
            ("1.2.3.4.5", None),
            ("1.0A1", None),
            ("1.0-01", None),
            ("v1.0", None),
            ("1.0+", None),
            ("1.0+a..b", None),
            ("1.0+a+b", None),
            ("1.0 ", None),
            (" 1.0", None),
            ("1.0\n", None),
            ("", None),
            ("abc", None),
            ("6f85d2f", None),
            ("085240e73782", None),
        ];
        for (input, expected) in cases {
            let got = SemVer::parse(input);
            match (got, expected) {
                (None, None) => {}
                (
                    Some(v),
                    Some((major, minor, patch, revision, pre, build, components, raw_short)),
                ) => {
                    assert_eq!(v.quad(), (*major, *minor, *patch, *revision), "{input}");
                    assert_eq!(v.pre.as_deref(), *pre, "{input}");
                    assert_eq!(v.build_code.as_deref(), *build, "{input}");
                    assert_eq!(v.components, *components, "{input}");
                    assert_eq!(v.raw_short, *raw_short, "{input}");
                    assert_eq!(v.raw, *input);
                    assert_eq!(v.to_string(), *input);
                }
                (got, expected) => panic!("{input:?}: got {got:?}, expected {expected:?}"),
            }
        }
    }

    #[test]
    fn semver_raw_quad_keeps_written_components() {
        type Quad<'a> = (&'a str, Option<&'a str>, Option<&'a str>, Option<&'a str>);
        let cases: [(&str, Quad); 4] = [
            ("1", ("1", None, None, None)),
            ("1.0a1", ("1", Some("0"), None, None)),
            ("1.2.03", ("1", Some("2"), Some("03"), None)),
            ("1.2.3.04", ("1", Some("2"), Some("3"), Some("04"))),
        ];
        for (input, (a, b, c, d)) in cases {
            let v = SemVer::parse(input).expect("parses");
            let (ra, rb, rc, rd) = &v.raw_quad;
            assert_eq!(
                (ra.as_str(), rb.as_deref(), rc.as_deref(), rd.as_deref()),
                (a, b, c, d),
                "{input}"
            );
        }
    }

    #[test]
    fn semver_build_number() {
        let cases = [
            ("1.0+10", Some(10)),
            ("1.0+007", Some(7)),
            ("1.0+18446744073709551615", Some(u64::MAX)),
            ("1.0+18446744073709551616", None),
            ("1.0+1.2", None),
            ("1.0+abc", None),
            ("1.0", None),
        ];
        for (input, expected) in cases {
            assert_eq!(
                SemVer::parse(input).and_then(|v| v.build_number()),
                expected,
                "{input}"
            );
        }
    }

    // ----------------------------------------------------------------------------------------
    // parse

    struct ParseCase {
        input: &'static str,
        package: &'static str,
        version_raw: &'static str,
        parsed: bool,
        build_hash: Option<&'static str>,
        description: &'static str,
    }

    #[test]
    fn parse_table() {
        let h40 = "a86d127c4b2f23a0a862620280427dcc01c78676";
        let cases = [
            ParseCase {
                input: "@foo.bar.baz--blah@1.2.3-dev+BUILD-code",
                package: "@foo.bar.baz--blah",
                version_raw: "1.2.3-dev+BUILD-code",
                parsed: true,
                build_hash: None,
                description: "1.2.3-dev (BUILD-code)",
            },
            ParseCase {
                input: "085240e73782",
                package: "",
                version_raw: "085240e73782",
                parsed: false,
                build_hash: Some("085240e73782"),
                description: "085240e73782",
            },
            ParseCase {
                input: "hackweek@6f85d2f",
                package: "hackweek",
                version_raw: "6f85d2f",
                parsed: false,
                build_hash: None,
                description: "hackweek@6f85d2f",
            },
            ParseCase {
                input: "org.example.FooApp@1.0+20200101100",
                package: "org.example.FooApp",
                version_raw: "1.0+20200101100",
                parsed: true,
                build_hash: None,
                description: "1.0 (20200101100)",
            },
            ParseCase {
                input: "org.example.FooApp@1.0rc1+20200101100",
                package: "org.example.FooApp",
                version_raw: "1.0rc1+20200101100",
                parsed: true,
                build_hash: None,
                description: "1.0rc1 (20200101100)",
            },
            ParseCase {
                input: "@foo.bar.baz--blah@1.0a+build-code",
                package: "@foo.bar.baz--blah",
                version_raw: "1.0a+build-code",
                parsed: true,
                build_hash: None,
                description: "1.0a (build-code)",
            },
            ParseCase {
                input: "@foo.bar.baz--blah@1.0a+a86d127c4b2f23a0a862620280427dcc01c78676",
                package: "@foo.bar.baz--blah",
                version_raw: "1.0a+a86d127c4b2f23a0a862620280427dcc01c78676",
                parsed: true,
                build_hash: Some(h40),
                description: "1.0a (a86d127c4b2f)",
            },
            ParseCase {
                input: "a86d127c4b2f23a0a862620280427dcc01c78676",
                package: "",
                version_raw: h40,
                parsed: false,
                build_hash: Some(h40),
                description: "a86d127c4b2f",
            },
            ParseCase {
                input: "some-package@a86d127c4b2f23a0a862620280427dcc01c78676",
                package: "some-package",
                version_raw: h40,
                parsed: false,
                build_hash: Some(h40),
                description: "a86d127c4b2f",
            },
            ParseCase {
                input: "package@085240e737828d8326719bf97730188e927e49ca",
                package: "package",
                version_raw: "085240e737828d8326719bf97730188e927e49ca",
                parsed: false,
                build_hash: Some("085240e737828d8326719bf97730188e927e49ca"),
                description: "085240e73782",
            },
            // A hash is never read as a version, even when it is all digits.
            ParseCase {
                input: "pkg@123456789012",
                package: "pkg",
                version_raw: "123456789012",
                parsed: false,
                build_hash: Some("123456789012"),
                description: "123456789012",
            },
            ParseCase {
                input: "foo.bar.baz@1.2.3.04",
                package: "foo.bar.baz",
                version_raw: "1.2.3.04",
                parsed: true,
                build_hash: None,
                description: "1.2.3.04",
            },
            ParseCase {
                input: "app@1",
                package: "app",
                version_raw: "1",
                parsed: true,
                build_hash: None,
                description: "1",
            },
            ParseCase {
                input: "app@1a1",
                package: "app",
                version_raw: "1a1",
                parsed: false,
                build_hash: None,
                description: "app@1a1",
            },
            ParseCase {
                input: "app@1.0a1",
                package: "app",
                version_raw: "1.0a1",
                parsed: true,
                build_hash: None,
                description: "1.0a1",
            },
            // Without a package nothing is parsed as a version.
            ParseCase {
                input: "1.0.0",
                package: "",
                version_raw: "1.0.0",
                parsed: false,
                build_hash: None,
                description: "1.0.0",
            },
            ParseCase {
                input: "  foo   ",
                package: "",
                version_raw: "foo",
                parsed: false,
                build_hash: None,
                description: "foo",
            },
            ParseCase {
                input: "  web@2.0  ",
                package: "web",
                version_raw: "2.0",
                parsed: true,
                build_hash: None,
                description: "2.0",
            },
            // The package holds no `@` beyond an optional leading one.
            ParseCase {
                input: "a@b@1.0",
                package: "a",
                version_raw: "b@1.0",
                parsed: false,
                build_hash: None,
                description: "a@b@1.0",
            },
            ParseCase {
                input: "@a@1.0@2",
                package: "@a",
                version_raw: "1.0@2",
                parsed: false,
                build_hash: None,
                description: "@a@1.0@2",
            },
            ParseCase {
                input: "@foo",
                package: "",
                version_raw: "@foo",
                parsed: false,
                build_hash: None,
                description: "@foo",
            },
            ParseCase {
                input: "foo@",
                package: "",
                version_raw: "foo@",
                parsed: false,
                build_hash: None,
                description: "foo@",
            },
            ParseCase {
                input: "@@1.0",
                package: "",
                version_raw: "@@1.0",
                parsed: false,
                build_hash: None,
                description: "@@1.0",
            },
            ParseCase {
                input: "",
                package: "",
                version_raw: "",
                parsed: false,
                build_hash: None,
                description: "",
            },
        ];
        for case in cases {
            let p = parse(case.input);
            assert_eq!(p.package, case.package, "{:?}", case.input);
            assert_eq!(p.version_raw, case.version_raw, "{:?}", case.input);
            assert_eq!(p.version.is_some(), case.parsed, "{:?}", case.input);
            assert_eq!(p.build_hash.as_deref(), case.build_hash, "{:?}", case.input);
            assert_eq!(p.description, case.description, "{:?}", case.input);
        }
    }

    #[test]
    fn parse_basic_release_fields() {
        let p = parse("@foo.bar.baz--blah@1.2.3-dev+BUILD-code");
        let v = p.version.expect("parses");
        assert_eq!(v.quad(), (1, 2, 3, 0));
        assert_eq!(v.pre.as_deref(), Some("dev"));
        assert_eq!(v.build_code.as_deref(), Some("BUILD-code"));
        assert_eq!(v.raw_short, "1.2.3-dev");
        assert_eq!(v.components, 3);

        let p = parse("foo.bar.baz@1.2.3.04");
        let v = p.version.expect("parses");
        assert_eq!(v.quad(), (1, 2, 3, 4));
        assert_eq!(v.components, 4);
    }

    #[test]
    fn parse_detects_hashes_of_every_length() {
        for len in [12, 16, 20, 32, 40, 64] {
            let hash = hex_of_len(len);
            let short = &hash[..12];

            let bare = parse(&hash);
            assert_eq!(
                bare.build_hash.as_deref(),
                Some(hash.as_str()),
                "bare len {len}"
            );
            assert_eq!(bare.description, short, "bare len {len}");

            let qualified = parse(&format!("pkg@{hash}"));
            assert!(qualified.version.is_none(), "len {len}");
            assert_eq!(
                qualified.build_hash.as_deref(),
                Some(hash.as_str()),
                "qualified len {len}"
            );
            assert_eq!(qualified.description, short, "qualified len {len}");

            let upper = hash.to_ascii_uppercase();
            assert_eq!(
                parse(&upper).build_hash.as_deref(),
                Some(upper.as_str()),
                "upper len {len}"
            );

            let as_build = parse(&format!("pkg@2.1.0+{hash}"));
            assert!(as_build.version.is_some(), "len {len}");
            assert_eq!(
                as_build.build_hash.as_deref(),
                Some(hash.as_str()),
                "build len {len}"
            );
            assert_eq!(
                as_build.description,
                format!("2.1.0 ({short})"),
                "build len {len}"
            );
        }
    }

    #[test]
    fn parse_ignores_hex_of_other_lengths_and_non_hex() {
        for len in [1, 7, 11, 13, 15, 17, 19, 21, 31, 33, 39, 41, 63, 65] {
            let s = hex_of_len(len);
            let p = parse(&s);
            assert_eq!(p.build_hash, None, "len {len}");
            assert_eq!(p.description, s, "len {len}");

            let b = parse(&format!("pkg@1.0+{s}"));
            assert_eq!(b.build_hash, None, "build len {len}");
            assert_eq!(b.description, format!("1.0 ({s})"), "build len {len}");
        }
        let not_hex = format!("{}g", hex_of_len(39));
        assert_eq!(parse(&not_hex).build_hash, None);
        assert_eq!(parse(&format!("pkg@1.0+{not_hex}")).build_hash, None);
    }

    #[test]
    fn parse_never_panics() {
        let alphabet: Vec<char> = "@+-.019aAfz_ /\\\n\t\0é日\u{7f}\u{a0}".chars().collect();
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let len = (next() % 14) as usize;
            let s: String = (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect();
            let p = parse(&s);
            if p.version.is_some() {
                assert!(!p.package.is_empty(), "{s:?}");
            }
            let _ = version_info(&s);
            let _ = semver_columns(&s);
            let _ = compare(&s, "1.0");
            let _ = validate(&s);
        }
        for s in [
            "@",
            "@@",
            "+",
            "1+",
            "1.+",
            "@1",
            "1@",
            "\u{10ffff}@\u{10ffff}",
            "é@1+é",
        ] {
            let _ = parse(s);
            let _ = version_info(s);
        }
    }

    // ----------------------------------------------------------------------------------------
    // ordering

    #[test]
    fn compare_table() {
        use Ordering::{Equal, Greater, Less};
        let cases = [
            ("1.0.0", "1.0.0", Equal),
            ("1.0.0", "1.0.0-rc1", Greater),
            ("1.0.0-rc1", "1.0.0-rc2", Less),
            ("1.0.0-alpha", "1.0.0-beta", Less),
            // Pre-releases compare as plain strings.
            ("1.0.0-rc10", "1.0.0-rc9", Less),
            ("1.0.0-rc1", "0.9", Greater),
            ("1.10", "1.9", Greater),
            ("1.10.0", "1.9.9", Greater),
            ("1.0", "2.0", Less),
            ("1.1.0", "10.0", Less),
            ("1.1.0", "1.1.1", Less),
            ("1.1.0.1", "1.1.0.2", Less),
            ("1.1.0.1", "1.1.0.0", Greater),
            ("1.1.0.1", "1.0.42.0", Greater),
            ("1.0", "1.0.0", Equal),
            ("1.0", "1.0.0.0", Equal),
            ("01.0", "1.0", Equal),
            ("1.0dev", "1.0.0-dev", Equal),
            ("1.0dev", "1.0.0.0-dev", Equal),
            ("1.0dev", "1.0.0.0-dev1", Less),
            ("1.0dev", "1.0.0.0", Less),
            // Build codes: numeric ones by value, others as strings, none first.
            ("1.0.0+9", "1.0.0+10", Less),
            ("1.0.0+100", "1.0.0+99", Greater),
            ("1.0.0+20200101100", "1.0.0+20200101099", Greater),
            ("1.0.0+10", "1.0.0+10", Equal),
            ("1.0.0+010", "1.0.0+10", Less),
            ("1.0.0+a", "1.0.0+b", Less),
            ("1.0+abcd", "1.0+abcde", Less),
            ("1.0.0+1.2.10", "1.0.0+1.2.9", Less),
            ("1.0.0", "1.0.0+1", Less),
            ("1.0.0", "1.0.0+a", Less),
            ("1.0.0+9", "1.0.0+1a", Less),
            // The build code only breaks ties.
            ("1.0.0-rc1+999", "1.0.0+1", Less),
            ("1.0.1+1", "1.0.0+999", Greater),
            // Packages are dropped before comparing.
            ("web@2.0", "api@1.0", Greater),
            ("web@1.0.0", "1.0.0", Equal),
            ("@scope@1.0.0-rc1", "@scope@1.0.0", Less),
        ];
        for (a, b, expected) in cases {
            assert_eq!(compare(a, b), Some(expected), "{a} vs {b}");
            assert_eq!(compare(b, a), Some(expected.reverse()), "{b} vs {a}");
        }
    }

    #[test]
    fn compare_none_when_either_side_does_not_parse() {
        let cases = [
            ("1a1", "1.0"),
            ("1.0", "hackweek@6f85d2f"),
            ("", "1"),
            ("latest", "1.0"),
            ("pkg@abc", "pkg@1.0"),
            ("1.0", "a@b@1.0"),
        ];
        for (a, b) in cases {
            assert_eq!(compare(a, b), None, "{a} vs {b}");
            assert_eq!(compare(b, a), None, "{b} vs {a}");
        }
    }

    fn hash_of(v: &SemVer) -> u64 {
        let mut h = DefaultHasher::new();
        v.hash(&mut h);
        h.finish()
    }

    #[test]
    fn ordering_is_a_total_order_consistent_with_eq_and_hash() {
        let inputs = [
            "1",
            "1.0",
            "1.0.0",
            "1.0.0.0",
            "1.0.0.1",
            "1.0-rc1",
            "1.0rc1",
            "1.0.0-rc2",
            "1.0.0-rc10",
            "1.0.0+9",
            "1.0.0+10",
            "1.0.0+010",
            "1.0.0+1a",
            "1.0.0+a",
            "1.0.0+B",
            "1.0.0+1.2",
            "1.0.0-rc1+5",
            "1.0.0-rc1+a",
            "1.9",
            "1.10",
            "2",
            "0.9.9",
            "1-a",
            "1.0.0--x",
        ];
        let versions: Vec<SemVer> = inputs
            .iter()
            .map(|s| SemVer::parse(s).expect("parses"))
            .collect();
        for a in &versions {
            assert_eq!(a.cmp(a), Ordering::Equal, "{a}");
            for b in &versions {
                let ab = a.cmp(b);
                assert_eq!(ab.reverse(), b.cmp(a), "{a} vs {b}");
                assert_eq!(a == b, ab == Ordering::Equal, "{a} vs {b}");
                assert_eq!(a.partial_cmp(b), Some(ab));
                if a == b {
                    assert_eq!(hash_of(a), hash_of(b), "{a} vs {b}");
                }
                for c in &versions {
                    if ab != Ordering::Greater && b.cmp(c) != Ordering::Greater {
                        assert_ne!(a.cmp(c), Ordering::Greater, "{a} <= {b} <= {c}");
                    }
                }
            }
        }
        let mut sorted = versions.clone();
        sorted.sort();
        let order: Vec<&str> = sorted.iter().map(|v| v.raw.as_str()).collect();
        let pos = |s: &str| order.iter().position(|x| *x == s).expect("present");
        assert!(pos("0.9.9") < pos("1.0-rc1"));
        assert!(pos("1.0.0-rc1+a") < pos("1.0.0-rc2"));
        assert!(pos("1.0.0-rc10") < pos("1.0.0-rc2"));
        assert!(pos("1.0.0-rc2") < pos("1.0.0"));
        assert!(pos("1.0.0+9") < pos("1.0.0+10"));
        assert!(pos("1.0.0+10") < pos("1.0.0+1a"));
        assert!(pos("1.9") < pos("1.10"));
        assert_eq!(order.last(), Some(&"2"));
    }

    #[test]
    fn equality_ignores_how_the_quad_was_written() {
        let a = SemVer::parse("1.0").expect("parses");
        let b = SemVer::parse("1.0.0.0").expect("parses");
        assert_eq!(a, b);
        assert_eq!(hash_of(&a), hash_of(&b));
        assert_ne!(SemVer::parse("1.0+1"), SemVer::parse("1.0+01"));
        assert_ne!(SemVer::parse("1.0-a"), SemVer::parse("1.0"));
    }

    // ----------------------------------------------------------------------------------------
    // semver_columns

    #[test]
    fn semver_columns_for_package_versions() {
        let cols = |package: &str,
                    quad: (i64, i64, i64, i64),
                    prerelease: &str,
                    build_code: Option<&str>,
                    build_number: Option<i64>| SemverColumns {
            package: package.into(),
            major: quad.0,
            minor: quad.1,
            patch: quad.2,
            revision: quad.3,
            prerelease: prerelease.into(),
            prerelease_case: i64::from(prerelease.is_empty()),
            build_code: build_code.map(str::to_owned),
            build_number,
        };
        let max = i64::MAX;
        let cases = [
            (
                "web@1.2.3-beta+77",
                cols("web", (1, 2, 3, 0), "beta", Some("77"), Some(77)),
            ),
            ("web@1.2.3", cols("web", (1, 2, 3, 0), "", None, None)),
            ("app@1.2.3.4", cols("app", (1, 2, 3, 4), "", None, None)),
            ("app@1", cols("app", (1, 0, 0, 0), "", None, None)),
            ("app@1.0a1", cols("app", (1, 0, 0, 0), "a1", None, None)),
            (
                "@scope@2.0.0-rc.1",
                cols("@scope", (2, 0, 0, 0), "rc.1", None, None),
            ),
            ("  web@1.0  ", cols("web", (1, 0, 0, 0), "", None, None)),
            (
                "web@1.0+abc",
                cols("web", (1, 0, 0, 0), "", Some("abc"), None),
            ),
            (
                "web@1.0+1.2",
                cols("web", (1, 0, 0, 0), "", Some("1.2"), None),
            ),
            (
                "web@1.0+007",
                cols("web", (1, 0, 0, 0), "", Some("007"), Some(7)),
            ),
            (
                "web@1.0+-5",
                cols("web", (1, 0, 0, 0), "", Some("-5"), None),
            ),
            (
                "web@1.0+-0",
                cols("web", (1, 0, 0, 0), "", Some("-0"), Some(0)),
            ),
            (
                "web@1.0+9223372036854775807",
                cols(
                    "web",
                    (1, 0, 0, 0),
                    "",
                    Some("9223372036854775807"),
                    Some(max),
                ),
            ),
            (
                "web@1.0+9223372036854775808",
                cols("web", (1, 0, 0, 0), "", Some("9223372036854775808"), None),
            ),
            (
                "web@9223372036854775807.0",
                cols("web", (max, 0, 0, 0), "", None, None),
            ),
            (
                "web@1.2.3.9223372036854775807",
                cols("web", (1, 2, 3, max), "", None, None),
            ),
            (
                "web@1.0+a86d127c4b2f",
                cols("web", (1, 0, 0, 0), "", Some("a86d127c4b2f"), None),
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(semver_columns(input), Some(expected), "{input}");
        }
    }

    #[test]
    fn semver_columns_none_cases() {
        let cases = [
            // No `@`: never semver, even when the text is a version.
            "1.2.3",
            "1.2.3-beta+77",
            "a86d127c4b2f23a0a862620280427dcc01c78676",
            // The version part does not parse.
            "web@abc",
            "web@1a1",
            "hackweek@6f85d2f",
            "web@a86d127c4b2f23a0a862620280427dcc01c78676",
            "web@123456789012",
            "a@b@1.0",
            "@foo",
            "foo@",
            // Invalid release versions.
            "web@1.0\t",
            "web@1.0\\2",
            "",
            // Components outside 0 ..= 2^63 - 1.
            "web@9223372036854775808",
            "web@1.9223372036854775808",
            "web@1.2.9223372036854775808",
            "web@1.2.3.9223372036854775808",
            "web@18446744073709551615.0",
            "web@99999999999999999999999",
        ];
        for input in cases {
            assert_eq!(semver_columns(input), None, "{input:?}");
        }
        let too_long = format!("web@1.{}", "0".repeat(200));
        assert_eq!(semver_columns(&too_long), None);
    }

    #[test]
    fn prerelease_case_marks_final_releases() {
        let final_release = semver_columns("web@1.0.0").expect("columns");
        let pre_release = semver_columns("web@1.0.0-rc1").expect("columns");
        assert_eq!(
            (final_release.prerelease_case, pre_release.prerelease_case),
            (1, 0)
        );
        let key = |c: &SemverColumns| {
            (
                c.major,
                c.minor,
                c.patch,
                c.revision,
                c.prerelease_case,
                c.prerelease.clone(),
            )
        };
        assert!(key(&final_release) > key(&pre_release));
    }

    // ----------------------------------------------------------------------------------------
    // version_info

    #[test]
    fn version_info_table() {
        let cases = [
            (
                "@foo.bar.baz--blah@1.2.3-dev+BUILD-code",
                json!({
                    "package": "@foo.bar.baz--blah",
                    "version": {
                        "raw": "1.2.3-dev+BUILD-code",
                        "major": 1, "minor": 2, "patch": 3,
                        "pre": "dev", "buildCode": "BUILD-code", "components": 3
                    },
                    "description": "1.2.3-dev (BUILD-code)",
                    "buildHash": null
                }),
            ),
            (
                "org.example.FooApp@1.0+20200101100",
                json!({
                    "package": "org.example.FooApp",
                    "version": {
                        "raw": "1.0+20200101100",
                        "major": 1, "minor": 0, "patch": 0,
                        "pre": null, "buildCode": "20200101100", "components": 2
                    },
                    "description": "1.0 (20200101100)",
                    "buildHash": null
                }),
            ),
            (
                "app@1.2.3.4",
                json!({
                    "package": "app",
                    "version": {
                        "raw": "1.2.3.4",
                        "major": 1, "minor": 2, "patch": 3,
                        "pre": null, "buildCode": null, "components": 4
                    },
                    "description": "1.2.3.4",
                    "buildHash": null
                }),
            ),
            (
                "085240e73782",
                json!({
                    "package": null,
                    "version": {"raw": "085240e73782"},
                    "description": "085240e73782",
                    "buildHash": "085240e73782"
                }),
            ),
            (
                "hackweek@6f85d2f",
                json!({
                    "package": "hackweek",
                    "version": {"raw": "6f85d2f"},
                    "description": "hackweek@6f85d2f",
                    "buildHash": null
                }),
            ),
            (
                "1.0.0",
                json!({
                    "package": null,
                    "version": {"raw": "1.0.0"},
                    "description": "1.0.0",
                    "buildHash": null
                }),
            ),
            ("latest", Value::Null),
            ("a/b", Value::Null),
            ("", Value::Null),
        ];
        for (input, expected) in cases {
            assert_eq!(version_info(input), expected, "{input:?}");
        }
    }
}
