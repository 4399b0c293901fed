//! Release-health arithmetic: Sentry's periods, rates and adoption stages
//! (sentry-semantics.md §6 and §8.3–8.4), and the duration histogram the rollups keep.
//!
//! Rollups are hourly; every period is answered by merging the hours it covers, so a 7-day
//! figure is computed over the seven days (distinct users are a union), never an average of
//! days. Distinct users are also kept per UTC day: [`split_window`] cuts a period into whole
//! days and at most 23 edge hours on each side, and the union of those day and hour sets is
//! the same exact union, read from far fewer rows. Durations are kept as a log-scale histogram per hour whose bins are 2 % wide, so a
//! percentile read from merged bins is within 1 % of the exact one.
//!
//! Pure: no I/O, no clock.

use chrono::Duration;

/// Length of a rollup bucket, in seconds.
pub const BUCKET_SECS: i64 = 3600;

/// The bucket (start of the hour, unix seconds) a time falls in.
pub fn bucket_of(unix_secs: i64) -> i64 {
    unix_secs.div_euclid(BUCKET_SECS) * BUCKET_SECS
}

/// Length of a daily user-set bucket, in seconds (UTC days).
pub const DAY_SECS: i64 = 86_400;

/// The day bucket (UTC midnight, unix seconds) a time falls in.
pub fn day_of(unix_secs: i64) -> i64 {
    unix_secs.div_euclid(DAY_SECS) * DAY_SECS
}

/// A period `[start, end)` cut into parts that do not overlap: whole UTC days read from the
/// daily sets and the hours outside them read from the hourly sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowSplit {
    /// Whole days `[start, end)`, if the period covers one.
    pub days: Option<(i64, i64)>,
    /// The hours before the first whole day (or the whole period when it covers no day).
    pub head: Option<(i64, i64)>,
    /// The hours after the last whole day.
    pub tail: Option<(i64, i64)>,
}

/// Splits a period `[start, end)` of whole hours into whole days plus edge hours.
pub fn split_window(start: i64, end: i64) -> WindowSplit {
    let non_empty = |a: i64, b: i64| (a < b).then_some((a, b));
    let first_day = day_of(start + DAY_SECS - 1);
    let last_day = day_of(end);
    if first_day < last_day {
        WindowSplit {
            days: Some((first_day, last_day)),
            head: non_empty(start, first_day),
            tail: non_empty(last_day, end),
        }
    } else {
        WindowSplit {
            days: None,
            head: non_empty(start, end),
            tail: None,
        }
    }
}

/// Parses a period the way Sentry's `parse_stats_period` does: digits and an optional unit,
/// `s`, `m`, `h`, `d` or `w` (seconds without one): `90d`, `24h`, `30m`.
pub fn parse_period(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let n: i64 = digits.parse().ok()?;
    let secs = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        "w" => 7 * 86400,
        _ => return None,
    };
    n.checked_mul(secs).map(Duration::seconds)
}

/// Sentry's `STATS_PERIODS`: the periods the releases endpoint accepts, with the rollup and
/// bucket count of their `stats` series.
pub const STATS_PERIODS: [(&str, i64, i64); 9] = [
    ("1h", 3600, 1),
    ("24h", 3600, 24),
    ("1d", 3600, 24),
    ("48h", 3600, 48),
    ("2d", 3600, 48),
    ("7d", 86400, 7),
    ("14d", 86400, 14),
    ("30d", 86400, 30),
    ("90d", 259200, 30),
];

/// `(rollup_secs, buckets)` of a stats period, or Sentry's error message for `param`.
pub fn stats_period(param: &str, value: &str) -> Result<(i64, i64), String> {
    STATS_PERIODS
        .iter()
        .find(|(name, _, _)| *name == value)
        .map(|(_, rollup, n)| (*rollup, *n))
        .ok_or_else(|| {
            let choices: Vec<String> = STATS_PERIODS
                .iter()
                .map(|(n, _, _)| format!("'{n}'"))
                .collect();
            format!("Invalid {param}. Valid choices are {}", choices.join(", "))
        })
}

/// The timestamps of a `stats` series ending now: `buckets` steps of `rollup`, the first at
/// `(floor(start / rollup) + 1) * rollup` where `start = now - rollup * buckets`; each covers
/// `[ts, ts + rollup)`, the last one the current, partial step.
pub fn stats_buckets(now_secs: i64, rollup: i64, buckets: i64) -> Vec<i64> {
    let start = now_secs - rollup * buckets;
    let first = (start.div_euclid(rollup) + 1) * rollup;
    (0..buckets).map(|i| first + i * rollup).collect()
}

/// `part / whole * 100`, or `None` when there is nothing to divide by.
pub fn percent(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64 * 100.0)
}

/// Sentry's crash-free percentage: `100 - crashed / total * 100`, `None` for no sessions/users.
pub fn crash_free_percent(crashed: u64, total: u64) -> Option<f64> {
    percent(crashed, total).map(|p| 100.0 - p)
}

/// Session counts of some slice of the rollups, summed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionCounts {
    pub sessions: u64,
    /// Aggregates' pre-counted errored sessions.
    pub errored_preaggr: u64,
    /// Distinct errored session ids of single-session updates.
    pub errored_sids: u64,
    pub crashed: u64,
    pub abnormal: u64,
    pub unhandled: u64,
}

impl SessionCounts {
    pub fn add(&mut self, o: &SessionCounts) {
        self.sessions += o.sessions;
        self.errored_preaggr += o.errored_preaggr;
        self.errored_sids += o.errored_sids;
        self.crashed += o.crashed;
        self.abnormal += o.abnormal;
        self.unhandled += o.unhandled;
    }

    /// Every session that saw an error, crashes included (`errored_all`).
    pub fn errored_all(&self) -> u64 {
        self.errored_preaggr + self.errored_sids
    }

    /// Errored but neither crashed nor abnormal (what the `errored` status means).
    pub fn errored(&self) -> u64 {
        self.errored_all()
            .saturating_sub(self.crashed + self.abnormal)
    }

    pub fn healthy(&self) -> u64 {
        self.sessions.saturating_sub(self.errored_all())
    }
}

/// Distinct-user counts of some slice of the rollups.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UserCounts {
    pub users: u64,
    /// Users with at least one errored session (crashes included).
    pub errored: u64,
    pub crashed: u64,
    pub abnormal: u64,
}

impl UserCounts {
    pub fn errored_only(&self) -> u64 {
        self.errored.saturating_sub(self.crashed + self.abnormal)
    }

    pub fn healthy(&self) -> u64 {
        self.users.saturating_sub(self.errored)
    }
}

/// The four values of the sessions API's virtual `session.status` tag.
pub const STATUSES: [&str; 4] = ["healthy", "abnormal", "crashed", "errored"];

/// Sessions of one status (`groupBy=session.status`).
pub fn sessions_of_status(c: &SessionCounts, status: &str) -> u64 {
    match status {
        "healthy" => c.healthy(),
        "abnormal" => c.abnormal,
        "crashed" => c.crashed,
        "errored" => c.errored(),
        _ => c.sessions,
    }
}

/// Users of one status (`groupBy=session.status`).
pub fn users_of_status(c: &UserCounts, status: &str) -> u64 {
    match status {
        "healthy" => c.healthy(),
        "abnormal" => c.abnormal,
        "crashed" => c.crashed,
        "errored" => c.errored_only(),
        _ => c.users,
    }
}

/// Ratio between neighbouring duration bins.
const BIN_RATIO: f64 = 1.02;

/// The histogram bin of a duration in seconds (bin 0 holds everything under 1 ms).
pub fn duration_bin(secs: f64) -> i64 {
    let ms = secs * 1000.0;
    if ms.is_nan() || ms < 1.0 {
        0
    } else {
        1 + (ms.ln() / BIN_RATIO.ln()).floor() as i64
    }
}

/// The representative value of a bin, in seconds: the geometric middle of its range, within
/// 1 % of every value in it.
pub fn bin_value(bin: i64) -> f64 {
    if bin <= 0 {
        0.0
    } else {
        BIN_RATIO.powf(bin as f64 - 0.5) / 1000.0
    }
}

/// The `q` quantile (0..=1) of a merged histogram of `(bin, count)`, in seconds; `None` when
/// empty. Uses the nearest-rank rule.
pub fn quantile(bins: &[(i64, u64)], q: f64) -> Option<f64> {
    let total: u64 = bins.iter().map(|(_, n)| n).sum();
    if total == 0 {
        return None;
    }
    let mut sorted = bins.to_vec();
    sorted.sort_unstable_by_key(|(b, _)| *b);
    let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
    let mut seen = 0;
    for (bin, n) in sorted {
        seen += n;
        if seen >= rank {
            return Some(bin_value(bin));
        }
    }
    None
}

/// A release's share of an environment's sessions that makes it *adopted*.
pub const ADOPTION_THRESHOLD: f64 = 0.1;

/// Sentry's adoption stage of a release in a project and environment.
pub fn adoption_stage(adopted: Option<&str>, unadopted: Option<&str>) -> &'static str {
    match (adopted, unadopted) {
        (Some(_), None) => "adopted",
        (Some(_), Some(_)) => "replaced",
        _ => "low_adoption",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = BUCKET_SECS;
    /// A UTC midnight.
    const D0: i64 = 1_764_633_600;

    #[test]
    fn window_split_into_days_and_edge_hours() {
        assert_eq!(day_of(D0 + 5 * H), D0);
        // 7 days from 05:00 to 05:00: 19 hours, 6 whole days, 5 hours.
        let s = split_window(D0 + 5 * H, D0 + 7 * DAY_SECS + 5 * H);
        assert_eq!(s.head, Some((D0 + 5 * H, D0 + DAY_SECS)));
        assert_eq!(s.days, Some((D0 + DAY_SECS, D0 + 7 * DAY_SECS)));
        assert_eq!(s.tail, Some((D0 + 7 * DAY_SECS, D0 + 7 * DAY_SECS + 5 * H)));
        // At most 23 edge hours on each side.
        let s = split_window(D0 + H, D0 + 3 * DAY_SECS - H);
        assert_eq!(s.head, Some((D0 + H, D0 + DAY_SECS)));
        assert_eq!(s.days, Some((D0 + DAY_SECS, D0 + 2 * DAY_SECS)));
        assert_eq!(s.tail, Some((D0 + 2 * DAY_SECS, D0 + 3 * DAY_SECS - H)));
    }

    #[test]
    fn window_shorter_than_a_day_is_all_hours() {
        // Inside one day.
        let s = split_window(D0 + 2 * H, D0 + 8 * H);
        assert_eq!(s.days, None);
        assert_eq!(s.head, Some((D0 + 2 * H, D0 + 8 * H)));
        assert_eq!(s.tail, None);
        // 24 hours across midnight cover no whole day.
        let s = split_window(D0 + 13 * H, D0 + DAY_SECS + 13 * H);
        assert_eq!(s.days, None);
        assert_eq!(s.head, Some((D0 + 13 * H, D0 + DAY_SECS + 13 * H)));
        // Empty.
        assert_eq!(
            split_window(D0, D0),
            WindowSplit {
                days: None,
                head: None,
                tail: None
            }
        );
    }

    #[test]
    fn window_aligned_on_midnight_is_all_days() {
        let s = split_window(D0, D0 + 7 * DAY_SECS);
        assert_eq!(s.days, Some((D0, D0 + 7 * DAY_SECS)));
        assert_eq!((s.head, s.tail), (None, None));
        let s = split_window(D0, D0 + DAY_SECS);
        assert_eq!(s.days, Some((D0, D0 + DAY_SECS)));
        // Aligned start only: days then a tail.
        let s = split_window(D0, D0 + DAY_SECS + 3 * H);
        assert_eq!(s.days, Some((D0, D0 + DAY_SECS)));
        assert_eq!(
            (s.head, s.tail),
            (None, Some((D0 + DAY_SECS, D0 + DAY_SECS + 3 * H)))
        );
    }

    #[test]
    fn periods() {
        assert_eq!(parse_period("5d"), Some(Duration::days(5)));
        assert_eq!(parse_period("90d"), Some(Duration::days(90)));
        assert_eq!(parse_period("24h"), Some(Duration::hours(24)));
        assert_eq!(parse_period("30m"), Some(Duration::minutes(30)));
        assert_eq!(parse_period("2w"), Some(Duration::days(14)));
        assert_eq!(parse_period("3600"), Some(Duration::hours(1)));
        for bad in ["", "d", "5y", "-1d", "1.5h", "99999999999999999999d"] {
            assert_eq!(parse_period(bad), None, "{bad}");
        }
    }

    #[test]
    fn stats_period_errors_as_sentry() {
        assert_eq!(stats_period("healthStatsPeriod", "24h"), Ok((3600, 24)));
        assert_eq!(stats_period("x", "90d"), Ok((259200, 30)));
        assert_eq!(
            stats_period("summaryStatsPeriod", "3d").unwrap_err(),
            "Invalid summaryStatsPeriod. Valid choices are '1h', '24h', '1d', '48h', '2d', '7d', '14d', '30d', '90d'"
        );
    }

    #[test]
    fn stats_buckets_end_with_the_current_step() {
        let now = 1_764_583_200 + 1800; // 2025-12-01T10:30:00Z
        let b = stats_buckets(now, 3600, 24);
        assert_eq!(b.len(), 24);
        assert_eq!(*b.last().unwrap(), 1_764_583_200);
        assert_eq!(b[1] - b[0], 3600);
    }

    #[test]
    fn rates() {
        assert_eq!(
            crash_free_percent(1, 7).map(|p| (p * 10.0).round()),
            Some(857.0)
        );
        assert_eq!(crash_free_percent(7, 7), Some(0.0));
        assert_eq!(crash_free_percent(0, 0), None);
        let c = SessionCounts {
            sessions: 10,
            errored_preaggr: 2,
            errored_sids: 3,
            crashed: 2,
            abnormal: 1,
            unhandled: 1,
        };
        assert_eq!(c.errored_all(), 5);
        assert_eq!(c.errored(), 2);
        assert_eq!(c.healthy(), 5);
        let total: u64 = STATUSES.iter().map(|s| sessions_of_status(&c, s)).sum();
        assert_eq!(total, 10);
    }

    #[test]
    fn duration_quantiles_within_one_percent() {
        let values: Vec<f64> = (1..=1000).map(|i| i as f64 * 0.37).collect();
        let mut bins = std::collections::HashMap::<i64, u64>::new();
        for v in &values {
            *bins.entry(duration_bin(*v)).or_default() += 1;
        }
        let bins: Vec<(i64, u64)> = bins.into_iter().collect();
        for q in [0.5, 0.9] {
            let exact = values[((q * 1000.0) as usize) - 1];
            let got = quantile(&bins, q).unwrap();
            assert!((got - exact).abs() / exact < 0.01, "{q}: {got} vs {exact}");
        }
        assert_eq!(quantile(&[], 0.5), None);
        assert_eq!(duration_bin(0.0), 0);
        assert_eq!(duration_bin(f64::NAN), 0);
    }

    #[test]
    fn stages() {
        assert_eq!(adoption_stage(Some("t"), None), "adopted");
        assert_eq!(adoption_stage(Some("t"), Some("u")), "replaced");
        assert_eq!(adoption_stage(None, None), "low_adoption");
    }
}
