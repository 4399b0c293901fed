//! Activity types, numbered as Sentry numbers them (sentry-semantics.md appendix), so the
//! activity log reads the same as Sentry's.

/// One kind of entry in the activity log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i64)]
pub enum ActivityType {
    SetResolved = 1,
    SetUnresolved = 2,
    SetIgnored = 3,
    SetRegression = 6,
    FirstSeen = 9,
    Release = 10,
    SetResolvedInRelease = 13,
    SetResolvedInCommit = 16,
    Deploy = 17,
    ReferencedInCommit = 28,
}

impl ActivityType {
    pub fn code(self) -> i64 {
        self as i64
    }
}

/// Sentry's `Activity.get_version_ident`: the first 64 characters of the version.
pub fn version_ident(version: &str) -> String {
    version.chars().take(64).collect()
}
