//! Conventional-commit subjects (`feat(ui)!: add dark mode`) read for release notes.
//!
//! A subject is conventional when its first line is `type(scope)?!?: description`. Types map
//! to the sections release notes show: feat, fix, perf, refactor, docs, and chore (which
//! also takes build, ci, test, style and revert); everything else, conventional or not, is
//! "other". A `!` before the colon or a `BREAKING CHANGE:` / `BREAKING-CHANGE:` footer marks
//! the commit as breaking.
//!
//! Pure: no I/O, never panics on any input.

use std::sync::LazyLock;

use regex::Regex;

/// A release-notes section, in the order notes list them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Section {
    Feat,
    Fix,
    Perf,
    Refactor,
    Docs,
    Chore,
    Other,
}

impl Section {
    pub const ALL: [Section; 7] = [
        Section::Feat,
        Section::Fix,
        Section::Perf,
        Section::Refactor,
        Section::Docs,
        Section::Chore,
        Section::Other,
    ];

    /// The key used in JSON (`feat`, ..., `other`).
    pub fn key(self) -> &'static str {
        match self {
            Section::Feat => "feat",
            Section::Fix => "fix",
            Section::Perf => "perf",
            Section::Refactor => "refactor",
            Section::Docs => "docs",
            Section::Chore => "chore",
            Section::Other => "other",
        }
    }

    /// The heading used in Markdown.
    pub fn title(self) -> &'static str {
        match self {
            Section::Feat => "Features",
            Section::Fix => "Bug fixes",
            Section::Perf => "Performance",
            Section::Refactor => "Refactoring",
            Section::Docs => "Documentation",
            Section::Chore => "Chores",
            Section::Other => "Other changes",
        }
    }
}

/// A commit message read as a conventional commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    pub section: Section,
    pub scope: Option<String>,
    pub breaking: bool,
    /// The description (the first line without its `type(scope):` prefix).
    pub description: String,
}

static CONVENTIONAL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^([A-Za-z]+)(?:\(([^()\r\n]*)\))?(!)?:[ \t]+(\S.*)$").expect("static regex")
});
static BREAKING_FOOTER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?m)^BREAKING[ -]CHANGE:[ \t]").expect("static regex"));

/// Reads a commit message.
pub fn parse(message: &str) -> Subject {
    let first = message.lines().next().unwrap_or("").trim();
    let footer_breaking = BREAKING_FOOTER.is_match(message);
    match CONVENTIONAL.captures(first) {
        Some(c) => {
            let ty = c.get(1).map_or("", |m| m.as_str()).to_ascii_lowercase();
            let section = match ty.as_str() {
                "feat" | "feature" => Section::Feat,
                "fix" | "bugfix" => Section::Fix,
                "perf" => Section::Perf,
                "refactor" => Section::Refactor,
                "docs" | "doc" => Section::Docs,
                "chore" | "build" | "ci" | "test" | "tests" | "style" | "revert" => Section::Chore,
                _ => Section::Other,
            };
            Subject {
                section,
                scope: c
                    .get(2)
                    .map(|m| m.as_str().trim().to_string())
                    .filter(|s| !s.is_empty()),
                breaking: c.get(3).is_some() || footer_breaking,
                description: c.get(4).map_or("", |m| m.as_str()).trim().to_string(),
            }
        }
        None => Subject {
            section: Section::Other,
            scope: None,
            breaking: footer_breaking,
            description: first.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conventional_subjects() {
        let s = parse("feat(ui)!: add dark mode\n\nbody");
        assert_eq!(s.section, Section::Feat);
        assert_eq!(s.scope.as_deref(), Some("ui"));
        assert!(s.breaking);
        assert_eq!(s.description, "add dark mode");

        let s = parse("fix: handle empty input");
        assert_eq!((s.section, s.breaking), (Section::Fix, false));
        assert_eq!(s.scope, None);

        for (msg, section) in [
            ("perf: faster", Section::Perf),
            ("refactor(core): split", Section::Refactor),
            ("docs: readme", Section::Docs),
            ("chore: bump", Section::Chore),
            ("ci: cache", Section::Chore),
            ("Build: x", Section::Chore),
            ("wip: stuff", Section::Other),
            ("Fixes WEB-1", Section::Other),
            ("Merge branch 'main'", Section::Other),
            ("feat:no space", Section::Other),
            ("", Section::Other),
        ] {
            assert_eq!(parse(msg).section, section, "{msg:?}");
        }
    }

    #[test]
    fn breaking_footer() {
        let s = parse("refactor: drop v1 API\n\nBREAKING CHANGE: v1 clients must upgrade");
        assert!(s.breaking);
        assert!(parse("chore: x\n\nBREAKING-CHANGE: y").breaking);
        assert!(!parse("chore: x\n\nnot a BREAKING CHANGE: y").breaking);
    }

    #[test]
    fn plain_messages_keep_their_first_line() {
        let s = parse("  Update the parser  \n\ndetails");
        assert_eq!(s.description, "Update the parser");
    }
}
