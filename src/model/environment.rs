//! Environment name rules, mirroring Sentry's `Environment.is_valid_name` and the deploy API.
//!
//! Sentry accepts an environment name (for example the `environment` of a deploy) when it is
//! non-blank, at most 64 characters long, matches `^[^\n\r\f\/]*$` (no line feed, carriage
//! return, form feed or slash) and is not one of the reserved names `.`, `..` or `none`
//! (compared case-insensitively; `sentry-release-parser` reserves the same names).
//!
//! Two details are deliberately stricter than a literal reading of the Python code: a newline
//! is rejected anywhere (Python's `$` would let one trailing `\n` through), and the emptiness
//! and reserved-name checks look at the whitespace-trimmed name, as the API does after its
//! serializer has trimmed the field.

/// Longest accepted environment name, in characters (Sentry's `ENVIRONMENT_NAME_MAX_LENGTH`).
pub const MAX_ENVIRONMENT_LENGTH: usize = 64;

/// Why an environment name is rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvironmentError {
    /// The name is empty or consists only of whitespace.
    #[error(
        "environment name is empty or only whitespace; use a name such as \"production\" or \"staging\""
    )]
    Empty,
    /// The trimmed name is `.`, `..` or `none` (any letter case).
    #[error(
        "environment name {name:?} is reserved (\".\", \"..\" and \"none\" in any letter case cannot be used); choose another name"
    )]
    Reserved {
        /// The name as given.
        name: String,
    },
    /// The name contains a slash or a control character other than tab.
    #[error(
        "environment name {name:?} contains a forbidden character {ch:?} (slashes, control characters such as line feeds or NUL and bidirectional controls are not allowed)"
    )]
    ForbiddenCharacter {
        /// The name as given.
        name: String,
        /// The first forbidden character found.
        ch: char,
    },
    /// The name is longer than [`MAX_ENVIRONMENT_LENGTH`] characters.
    #[error(
        "environment name is {len} characters long; shorten it to at most {max} characters",
        max = MAX_ENVIRONMENT_LENGTH
    )]
    TooLong {
        /// The length of the name, in characters.
        len: usize,
    },
}

/// Characters excluded by Sentry's `ENVIRONMENT_NAME_PATTERN`, `^[^\n\r\f\/]*$`, and, beyond
/// Sentry, every other control character but tab (NUL, C1 such as U+0085) and the
/// bidirectional controls: none of them belongs in a name shown in logs and pages.
fn is_forbidden_environment_char(c: char) -> bool {
    matches!(c, '\n' | '\r' | '\x0c' | '/')
        || (c.is_control() && c != '\t')
        || crate::model::version::is_bidi_control(c)
}

/// Checks that `name` is an acceptable environment name.
///
/// The checks run in this order: the length limit and forbidden characters on the name as
/// given, then emptiness and the reserved names `.`, `..` and `none` (case-insensitive) on the
/// whitespace-trimmed name.
pub fn validate(name: &str) -> Result<(), EnvironmentError> {
    let len = name.chars().count();
    if len > MAX_ENVIRONMENT_LENGTH {
        return Err(EnvironmentError::TooLong { len });
    }
    if let Some(ch) = name.chars().find(|&c| is_forbidden_environment_char(c)) {
        return Err(EnvironmentError::ForbiddenCharacter {
            name: name.to_owned(),
            ch,
        });
    }
    let trimmed = name.trim();
    if trimmed.is_empty() {
        return Err(EnvironmentError::Empty);
    }
    if trimmed == "." || trimmed == ".." || trimmed.eq_ignore_ascii_case("none") {
        return Err(EnvironmentError::Reserved {
            name: name.to_owned(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_nul_c1_and_bidi_controls() {
        for (name, ch) in [
            ("prod\0", '\0'),
            ("a\u{85}", '\u{85}'),
            ("\u{202e}dorp", '\u{202e}'),
        ] {
            assert_eq!(
                validate(name),
                Err(EnvironmentError::ForbiddenCharacter {
                    name: name.into(),
                    ch
                }),
                "{name:?}"
            );
        }
    }

    #[test]
    fn accepts_ordinary_names() {
        let ok = [
            "production",
            "staging",
            "Prod-EU_1",
            "dev.local",
            "...",
            "none-such",
            "nonexistent",
            "latest",
            "release candidate",
            " production ",
            "tab\there",
            "back\\slash",
            "ünïcödé-日本",
            "@",
        ];
        for name in ok {
            assert_eq!(validate(name), Ok(()), "{name:?}");
        }
    }

    #[test]
    fn rejects_each_forbidden_character() {
        for ch in ['\n', '\r', '\x0c', '/'] {
            for name in [
                format!("a{ch}b"),
                format!("{ch}"),
                format!("prod{ch}"),
                format!("{ch}prod"),
            ] {
                assert_eq!(
                    validate(&name),
                    Err(EnvironmentError::ForbiddenCharacter {
                        name: name.clone(),
                        ch
                    }),
                    "{name:?}"
                );
            }
        }
        assert_eq!(
            validate("eu/west\n"),
            Err(EnvironmentError::ForbiddenCharacter {
                name: "eu/west\n".into(),
                ch: '/'
            })
        );
    }

    #[test]
    fn rejects_reserved_names_in_any_case_and_padding() {
        let reserved = [
            ".", "..", "none", "None", "NONE", "nOnE", " none", "none ", "  NoNe  ", " . ",
            "\u{a0}..",
        ];
        for name in reserved {
            assert_eq!(
                validate(name),
                Err(EnvironmentError::Reserved { name: name.into() }),
                "{name:?}"
            );
        }
    }

    #[test]
    fn rejects_empty_and_whitespace_only() {
        for name in ["", " ", "    ", "\t", "\u{a0}\u{2003}"] {
            assert_eq!(validate(name), Err(EnvironmentError::Empty), "{name:?}");
        }
    }

    #[test]
    fn length_limit_counts_characters() {
        let cases: [(String, Result<(), EnvironmentError>); 5] = [
            ("e".repeat(64), Ok(())),
            ("e".repeat(65), Err(EnvironmentError::TooLong { len: 65 })),
            ("é".repeat(64), Ok(())),
            ("é".repeat(65), Err(EnvironmentError::TooLong { len: 65 })),
            ("/".repeat(65), Err(EnvironmentError::TooLong { len: 65 })),
        ];
        for (name, expected) in cases {
            assert_eq!(validate(&name), expected, "length {}", name.chars().count());
        }
        assert_eq!(MAX_ENVIRONMENT_LENGTH, 64);
    }

    #[test]
    fn error_messages_are_actionable_one_liners() {
        let cases = [
            (
                validate("eu/west"),
                "environment name \"eu/west\" contains a forbidden character '/' (slashes, control characters such as line feeds or NUL and bidirectional controls are not allowed)",
            ),
            (
                validate("a\nb"),
                "environment name \"a\\nb\" contains a forbidden character '\\n' (slashes, control characters such as line feeds or NUL and bidirectional controls are not allowed)",
            ),
            (
                validate("None"),
                "environment name \"None\" is reserved (\".\", \"..\" and \"none\" in any letter case cannot be used); choose another name",
            ),
            (
                validate(""),
                "environment name is empty or only whitespace; use a name such as \"production\" or \"staging\"",
            ),
            (
                validate(&"x".repeat(70)),
                "environment name is 70 characters long; shorten it to at most 64 characters",
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
    }
}
