//! Release-health sessions as SDKs send them, and Relay's rules for accepting and counting them
//! (sentry-semantics.md §8.1–8.2, health-ui-notifications-scale.md §1).
//!
//! Two envelope item types carry sessions:
//!
//! * `session`: one [`SessionUpdate`] of one session (application mode: mobile, browser,
//!   desktop and CLI apps). The first update of a session says `init: true`; later ones carry
//!   its new status.
//! * `sessions`: [`SessionAggregates`], counts per minute the session started in (request
//!   mode: servers, one "session" per request).
//!
//! [`validate_update`] and [`validate_aggregates`] apply Relay's ingest rules (a valid release;
//! `started` and `timestamp` neither older than the maximum age nor more than 60 s ahead, after
//! correcting the client's clock drift from the envelope's `sent_at`; an invalid environment is
//! dropped, the session kept). [`Contribution`] is what an accepted item adds to the rollups,
//! exactly as Relay's metrics extraction counts it, filed under the hour the session started.
//!
//! Pure: no I/O; the caller passes the time in.

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde::Deserialize;
use serde_json::Value;

use super::{environment, version};

/// Relay's `max_secs_in_future`: a session may start at most this far ahead of the server.
pub const MAX_SECS_IN_FUTURE: i64 = 60;

/// Relay's `MINIMUM_CLOCK_DRIFT`: a smaller difference between `sent_at` and the time of
/// receipt is network latency, not a wrong clock, and is not corrected.
pub const MINIMUM_CLOCK_DRIFT_SECS: i64 = 55 * 60;

/// The nil UUID some SDKs send as `did` when they know no user: it counts as no user.
const NIL_UUID: &str = "00000000-0000-0000-0000-000000000000";

/// A session's status (Relay's `SessionStatus`; unknown strings are kept for forward
/// compatibility and count as errors, as in Relay).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum SessionStatus {
    #[default]
    Ok,
    Exited,
    Crashed,
    Abnormal,
    Errored,
    Unhandled,
    Unknown(String),
}

impl SessionStatus {
    fn parse(text: &str) -> SessionStatus {
        match text {
            "ok" => SessionStatus::Ok,
            "exited" => SessionStatus::Exited,
            "crashed" => SessionStatus::Crashed,
            "abnormal" => SessionStatus::Abnormal,
            "errored" => SessionStatus::Errored,
            "unhandled" => SessionStatus::Unhandled,
            other => SessionStatus::Unknown(other.to_string()),
        }
    }

    /// Anything but `ok` and `exited` means the session saw an error.
    pub fn is_error(&self) -> bool {
        !matches!(self, SessionStatus::Ok | SessionStatus::Exited)
    }
}

/// The `attrs` of a session item.
#[derive(Debug, Clone, PartialEq)]
pub struct Attributes {
    pub release: String,
    pub environment: Option<String>,
}

/// One `session` item.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionUpdate {
    /// The session id; `None` when the SDK sent none (Relay then makes up a fresh one).
    pub sid: Option<String>,
    /// The distinct id of the user, if any.
    pub did: Option<String>,
    pub init: bool,
    pub started: DateTime<Utc>,
    /// When this update was made; absent means "now" (Relay's default).
    pub timestamp: Option<DateTime<Utc>>,
    /// Seconds.
    pub duration: Option<f64>,
    pub status: SessionStatus,
    pub errors: u64,
    pub attrs: Attributes,
}

/// One group of a `sessions` item: the sessions that started in one minute.
#[derive(Debug, Clone, PartialEq)]
pub struct AggregateGroup {
    pub started: DateTime<Utc>,
    pub did: Option<String>,
    pub exited: u64,
    pub errored: u64,
    pub abnormal: u64,
    pub unhandled: u64,
    pub crashed: u64,
}

/// One `sessions` item.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionAggregates {
    pub aggregates: Vec<AggregateGroup>,
    pub attrs: Attributes,
}

/// Why a session item was refused; [`Refusal::reason`] is the name operators see counted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The payload is not a session of this item type.
    #[error("invalid session payload: {0}")]
    Invalid(String),
    /// `attrs.release` is not a valid release name.
    #[error("invalid release {0:?}")]
    InvalidRelease(String),
    /// `started` or `timestamp` is older than the maximum session age.
    #[error("session is older than the maximum session age")]
    TooOld,
    /// `started` or `timestamp` is more than 60 s in the future.
    #[error("session starts or ends in the future")]
    InFuture,
}

impl Refusal {
    /// A stable name for counting (`shiplog releases health` and the API show these).
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::Invalid(_) => "invalid_payload",
            Refusal::InvalidRelease(_) => "invalid_release",
            Refusal::TooOld => "too_old",
            Refusal::InFuture => "in_future",
        }
    }
}

fn timestamp(value: &Value) -> Result<DateTime<Utc>, String> {
    match value {
        Value::String(s) => super::time::parse(s).ok_or_else(|| format!("invalid timestamp {s:?}")),
        Value::Number(n) => {
            let secs = n.as_f64().unwrap_or(f64::NAN);
            if !secs.is_finite() || secs.abs() > 1e11 {
                return Err(format!("invalid timestamp {n}"));
            }
            Utc.timestamp_micros((secs * 1e6) as i64)
                .single()
                .ok_or_else(|| format!("invalid timestamp {n}"))
        }
        other => Err(format!("invalid timestamp {other}")),
    }
}

#[derive(Deserialize)]
struct WireAttrs {
    release: Option<String>,
    environment: Option<String>,
}

impl WireAttrs {
    fn into_attrs(self) -> Result<Attributes, String> {
        Ok(Attributes {
            release: self
                .release
                .ok_or_else(|| "missing attrs.release".to_string())?,
            environment: self.environment,
        })
    }
}

#[derive(Deserialize)]
struct WireUpdate {
    sid: Option<String>,
    did: Option<Value>,
    #[serde(default)]
    init: bool,
    started: Option<Value>,
    timestamp: Option<Value>,
    duration: Option<f64>,
    status: Option<String>,
    #[serde(default)]
    errors: u64,
    attrs: Option<WireAttrs>,
}

#[derive(Deserialize)]
struct WireGroup {
    started: Option<Value>,
    did: Option<Value>,
    #[serde(default)]
    exited: u64,
    #[serde(default)]
    errored: u64,
    #[serde(default)]
    abnormal: u64,
    #[serde(default)]
    unhandled: u64,
    #[serde(default)]
    crashed: u64,
}

#[derive(Deserialize)]
struct WireAggregates {
    #[serde(default)]
    aggregates: Vec<WireGroup>,
    attrs: Option<WireAttrs>,
}

/// A `did` as a user key: strings as given, numbers as their text; empty or nil is no user.
fn distinct_id(value: Option<Value>) -> Option<String> {
    let text = match value? {
        Value::String(s) => s,
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    (!text.is_empty() && text != NIL_UUID).then_some(text)
}

fn required_time(value: Option<Value>, field: &str) -> Result<DateTime<Utc>, String> {
    timestamp(&value.ok_or_else(|| format!("missing {field}"))?)
}

/// Parses a `session` item's payload.
pub fn parse_update(payload: &[u8]) -> Result<SessionUpdate, Refusal> {
    let wire: WireUpdate =
        serde_json::from_slice(payload).map_err(|e| Refusal::Invalid(e.to_string()))?;
    let started = required_time(wire.started, "started").map_err(Refusal::Invalid)?;
    let timestamp = wire
        .timestamp
        .map(|t| timestamp(&t))
        .transpose()
        .map_err(Refusal::Invalid)?;
    let attrs = wire
        .attrs
        .ok_or_else(|| Refusal::Invalid("missing attrs".into()))?
        .into_attrs()
        .map_err(Refusal::Invalid)?;
    Ok(SessionUpdate {
        sid: wire.sid.filter(|s| !s.is_empty()),
        did: distinct_id(wire.did),
        init: wire.init,
        started,
        timestamp,
        duration: wire.duration.filter(|d| d.is_finite() && *d >= 0.0),
        status: wire
            .status
            .as_deref()
            .map_or(SessionStatus::Ok, SessionStatus::parse),
        errors: wire.errors,
        attrs,
    })
}

/// Parses a `sessions` item's payload.
pub fn parse_aggregates(payload: &[u8]) -> Result<SessionAggregates, Refusal> {
    let wire: WireAggregates =
        serde_json::from_slice(payload).map_err(|e| Refusal::Invalid(e.to_string()))?;
    let attrs = wire
        .attrs
        .ok_or_else(|| Refusal::Invalid("missing attrs".into()))?
        .into_attrs()
        .map_err(Refusal::Invalid)?;
    let mut aggregates = Vec::with_capacity(wire.aggregates.len());
    for g in wire.aggregates {
        aggregates.push(AggregateGroup {
            started: required_time(g.started, "aggregates[].started").map_err(Refusal::Invalid)?,
            did: distinct_id(g.did),
            exited: g.exited,
            errored: g.errored,
            abnormal: g.abnormal,
            unhandled: g.unhandled,
            crashed: g.crashed,
        });
    }
    Ok(SessionAggregates { aggregates, attrs })
}

/// When and under which limits an item is judged.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    /// When the server received the envelope.
    pub received: DateTime<Utc>,
    /// The envelope header's `sent_at`, if any (the client's clock at sending).
    pub sent_at: Option<DateTime<Utc>>,
    /// `health.max_session_age`.
    pub max_age: Duration,
}

impl Clock {
    /// Relay's clock-drift correction: how much to add to the client's timestamps. Zero without
    /// `sent_at` or when the difference is below [`MINIMUM_CLOCK_DRIFT_SECS`].
    pub fn drift(&self) -> Duration {
        match self.sent_at {
            Some(sent) => {
                let drift = self.received - sent;
                if drift.num_seconds().abs() >= MINIMUM_CLOCK_DRIFT_SECS {
                    drift
                } else {
                    Duration::zero()
                }
            }
            None => Duration::zero(),
        }
    }

    fn check(&self, t: DateTime<Utc>) -> Result<(), Refusal> {
        if t < self.received - self.max_age {
            Err(Refusal::TooOld)
        } else if t > self.received + Duration::seconds(MAX_SECS_IN_FUTURE) {
            Err(Refusal::InFuture)
        } else {
            Ok(())
        }
    }
}

fn validate_attrs(attrs: &mut Attributes) -> Result<(), Refusal> {
    if version::validate(&attrs.release).is_err() {
        return Err(Refusal::InvalidRelease(attrs.release.clone()));
    }
    // Relay drops an invalid environment and keeps the session.
    if attrs
        .environment
        .as_deref()
        .is_some_and(|e| environment::validate(e).is_err())
    {
        attrs.environment = None;
    }
    Ok(())
}

/// Relay's checks on a session update: corrects the clock drift, lifts a `timestamp` before
/// `started` to `started`, refuses an invalid release and out-of-range times, drops an invalid
/// environment.
pub fn validate_update(mut s: SessionUpdate, clock: &Clock) -> Result<SessionUpdate, Refusal> {
    let drift = clock.drift();
    s.started += drift;
    let ts = s.timestamp.map_or(clock.received, |t| t + drift);
    s.timestamp = Some(ts.max(s.started));
    validate_attrs(&mut s.attrs)?;
    clock.check(s.started)?;
    clock.check(ts.max(s.started))?;
    Ok(s)
}

/// Relay's checks on aggregates: the item is refused for an invalid release; a group out of
/// the time range is dropped (the rest is kept); an invalid environment is dropped.
pub fn validate_aggregates(
    mut s: SessionAggregates,
    clock: &Clock,
) -> Result<(SessionAggregates, Vec<Refusal>), Refusal> {
    validate_attrs(&mut s.attrs)?;
    let drift = clock.drift();
    let mut dropped = Vec::new();
    s.aggregates = s
        .aggregates
        .into_iter()
        .filter_map(|mut g| {
            g.started += drift;
            match clock.check(g.started) {
                Ok(()) => Some(g),
                Err(r) => {
                    dropped.push(r);
                    None
                }
            }
        })
        .collect();
    Ok((s, dropped))
}

/// User flags of a distinct id within one rollup bucket (OR-ed over the sessions seen).
pub mod user_flags {
    pub const ERRORED: i64 = 1;
    pub const CRASHED: i64 = 2;
    pub const ABNORMAL: i64 = 4;
    pub const UNHANDLED: i64 = 8;
}

/// What one accepted session update or aggregate group adds to the rollups (Relay's metrics
/// extraction, `relay-server/src/metrics_extraction/sessions`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Contribution {
    /// The session's start: everything is filed under it.
    pub started: DateTime<Utc>,
    /// `c:sessions/session{init}`: 1 for an `init` update, the total of an aggregate group.
    pub sessions: u64,
    /// Aggregates' errored sessions (`errored_preaggr`): abnormal + errored + unhandled +
    /// crashed.
    pub errored_preaggr: u64,
    /// An update that saw an error: its session id, counted once however many updates say so.
    pub errored_sid: Option<String>,
    pub crashed: u64,
    pub abnormal: u64,
    pub unhandled: u64,
    /// The distinct id and its [`user_flags`].
    pub user: Option<(String, i64)>,
    /// Seconds, for exited sessions that report a duration.
    pub exited_duration: Option<f64>,
}

fn status_flags(status: &SessionStatus) -> i64 {
    match status {
        SessionStatus::Crashed => user_flags::CRASHED,
        SessionStatus::Abnormal => user_flags::ABNORMAL,
        SessionStatus::Unhandled => user_flags::UNHANDLED,
        _ => 0,
    }
}

impl Contribution {
    /// What a (validated) session update counts. `sid` is the update's session id (the caller
    /// makes one up when the SDK sent none).
    pub fn of_update(s: &SessionUpdate, sid: &str) -> Contribution {
        let errored = s.errors > 0 || s.status.is_error();
        let mut flags = status_flags(&s.status);
        if errored {
            flags |= user_flags::ERRORED;
        }
        Contribution {
            started: s.started,
            sessions: u64::from(s.init),
            errored_sid: errored.then(|| sid.to_string()),
            crashed: u64::from(s.status == SessionStatus::Crashed),
            abnormal: u64::from(s.status == SessionStatus::Abnormal),
            unhandled: u64::from(s.status == SessionStatus::Unhandled),
            user: s.did.clone().map(|d| (d, flags)),
            exited_duration: match s.status {
                SessionStatus::Exited => s.duration,
                _ => None,
            },
            ..Default::default()
        }
    }

    /// What one aggregate group counts.
    pub fn of_group(g: &AggregateGroup) -> Contribution {
        let errored = g.abnormal + g.errored + g.unhandled + g.crashed;
        let mut flags = 0;
        if errored > 0 {
            flags |= user_flags::ERRORED;
        }
        if g.crashed > 0 {
            flags |= user_flags::CRASHED;
        }
        if g.abnormal > 0 {
            flags |= user_flags::ABNORMAL;
        }
        if g.unhandled > 0 {
            flags |= user_flags::UNHANDLED;
        }
        Contribution {
            started: g.started,
            sessions: g.exited + errored,
            errored_preaggr: errored,
            crashed: g.crashed,
            abnormal: g.abnormal,
            unhandled: g.unhandled,
            user: g.did.clone().map(|d| (d, flags)),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        super::super::time::parse(s).unwrap()
    }

    fn clock(received: &str) -> Clock {
        Clock {
            received: t(received),
            sent_at: None,
            max_age: Duration::days(5),
        }
    }

    const UPDATE: &str = r#"{"sid":"7c7b6585-4d1d-4b5f-a8c3-7c9a3b8f7f10","did":"u1","init":true,"started":"2026-12-01T10:00:00Z","timestamp":"2026-12-01T10:05:00Z","duration":300.5,"status":"exited","errors":0,"attrs":{"release":"app@1.0","environment":"production"}}"#;

    #[test]
    fn parses_what_sdks_send() {
        let s = parse_update(UPDATE.as_bytes()).unwrap();
        assert_eq!(s.did.as_deref(), Some("u1"));
        assert!(s.init);
        assert_eq!(s.status, SessionStatus::Exited);
        assert_eq!(s.duration, Some(300.5));
        assert_eq!(s.attrs.release, "app@1.0");
        assert_eq!(s.attrs.environment.as_deref(), Some("production"));
        let a = parse_aggregates(br#"{"aggregates":[{"started":"2026-12-01T10:01:00Z","exited":3,"errored":1}],"attrs":{"release":"api@2"}}"#).unwrap();
        assert_eq!(a.aggregates.len(), 1);
        assert_eq!(a.aggregates[0].exited, 3);
        assert_eq!(a.aggregates[0].crashed, 0);
        assert_eq!(a.aggregates[0].did, None);
        let n =
            parse_update(br#"{"started":1764583200.5,"attrs":{"release":"r"},"status":"weird"}"#)
                .unwrap();
        assert_eq!(n.started, t("2025-12-01T10:00:00.5Z"));
        assert_eq!(n.status, SessionStatus::Unknown("weird".into()));
        assert!(n.status.is_error());
    }

    #[test]
    fn release_and_started_are_required() {
        for bad in [
            r#"{"attrs":{"release":"r"}}"#,
            r#"{"started":"2026-12-01T10:00:00Z"}"#,
            r#"{"started":"2026-12-01T10:00:00Z","attrs":{}}"#,
            r#"{"started":"yesterday","attrs":{"release":"r"}}"#,
            r#"[1]"#,
        ] {
            assert_eq!(
                parse_update(bad.as_bytes()).unwrap_err().reason(),
                "invalid_payload",
                "{bad}"
            );
        }
    }

    #[test]
    fn nil_or_empty_did_is_no_user() {
        for did in [r#""00000000-0000-0000-0000-000000000000""#, r#""""#, "null"] {
            let body = format!(
                r#"{{"did":{did},"started":"2026-12-01T10:00:00Z","attrs":{{"release":"r"}}}}"#
            );
            assert_eq!(parse_update(body.as_bytes()).unwrap().did, None);
        }
        let body = r#"{"did":42,"started":"2026-12-01T10:00:00Z","attrs":{"release":"r"}}"#;
        assert_eq!(
            parse_update(body.as_bytes()).unwrap().did.as_deref(),
            Some("42")
        );
    }

    #[test]
    fn relay_time_rules() {
        let c = clock("2026-12-06T10:00:01Z");
        let s = parse_update(UPDATE.as_bytes()).unwrap();
        // 5 days and a bit old.
        assert_eq!(validate_update(s.clone(), &c).unwrap_err(), Refusal::TooOld);
        let c = clock("2026-12-01T10:05:00Z");
        assert!(validate_update(s.clone(), &c).is_ok());
        // Started 61 s ahead.
        let c = clock("2026-12-01T09:58:59Z");
        assert_eq!(
            validate_update(s.clone(), &c).unwrap_err(),
            Refusal::InFuture
        );
        // A client clock two hours ahead: corrected by sent_at, then accepted.
        let c = Clock {
            received: t("2026-12-01T08:05:00Z"),
            sent_at: Some(t("2026-12-01T10:05:00Z")),
            max_age: Duration::days(5),
        };
        let v = validate_update(s.clone(), &c).unwrap();
        assert_eq!(v.started, t("2026-12-01T08:00:00Z"));
        // A small difference is latency, not drift.
        let c = Clock {
            received: t("2026-12-01T10:05:00Z"),
            sent_at: Some(t("2026-12-01T10:04:00Z")),
            max_age: Duration::days(5),
        };
        assert_eq!(
            validate_update(s, &c).unwrap().started,
            t("2026-12-01T10:00:00Z")
        );
    }

    #[test]
    fn timestamp_before_started_is_lifted() {
        let body = r#"{"started":"2026-12-01T10:00:00Z","timestamp":"2026-12-01T09:00:00Z","attrs":{"release":"r"}}"#;
        let s = parse_update(body.as_bytes()).unwrap();
        let v = validate_update(s, &clock("2026-12-01T10:00:30Z")).unwrap();
        assert_eq!(v.timestamp, Some(t("2026-12-01T10:00:00Z")));
    }

    #[test]
    fn invalid_release_refused_invalid_environment_dropped() {
        let c = clock("2026-12-01T10:05:00Z");
        for release in ["latest", ".", "..", "", "a/b", "x\ny"] {
            let mut s = parse_update(UPDATE.as_bytes()).unwrap();
            s.attrs.release = release.to_string();
            assert_eq!(
                validate_update(s, &c).unwrap_err().reason(),
                "invalid_release",
                "{release:?}"
            );
        }
        for env in ["none", "..", "a/b", &"e".repeat(65)] {
            let mut s = parse_update(UPDATE.as_bytes()).unwrap();
            s.attrs.environment = Some(env.to_string());
            assert_eq!(validate_update(s, &c).unwrap().attrs.environment, None);
        }
    }

    #[test]
    fn aggregates_drop_only_out_of_range_groups() {
        let a = parse_aggregates(br#"{"aggregates":[{"started":"2026-11-01T10:00:00Z","exited":1},{"started":"2026-12-01T10:00:00Z","exited":2}],"attrs":{"release":"r","environment":"none"}}"#).unwrap();
        let (a, dropped) = validate_aggregates(a, &clock("2026-12-01T10:05:00Z")).unwrap();
        assert_eq!(dropped, vec![Refusal::TooOld]);
        assert_eq!(a.aggregates.len(), 1);
        assert_eq!(a.attrs.environment, None);
    }

    #[test]
    fn counts_updates_as_relay() {
        let mut s = parse_update(UPDATE.as_bytes()).unwrap();
        let c = Contribution::of_update(&s, "sid");
        assert_eq!(c.sessions, 1);
        assert_eq!(c.errored_sid, None);
        assert_eq!(c.user, Some(("u1".into(), 0)));
        assert_eq!(c.exited_duration, Some(300.5));
        s.init = false;
        s.status = SessionStatus::Crashed;
        let c = Contribution::of_update(&s, "sid");
        assert_eq!(c.sessions, 0);
        assert_eq!(c.crashed, 1);
        assert_eq!(c.errored_sid.as_deref(), Some("sid"));
        assert_eq!(
            c.user,
            Some(("u1".into(), user_flags::CRASHED | user_flags::ERRORED))
        );
        assert_eq!(c.exited_duration, None);
        s.status = SessionStatus::Ok;
        s.errors = 2;
        let c = Contribution::of_update(&s, "sid");
        assert_eq!(c.errored_sid.as_deref(), Some("sid"));
        assert_eq!(c.crashed, 0);
    }

    #[test]
    fn counts_aggregates_as_relay() {
        let g = AggregateGroup {
            started: t("2026-12-01T10:00:00Z"),
            did: None,
            exited: 5,
            errored: 2,
            abnormal: 1,
            unhandled: 1,
            crashed: 3,
        };
        let c = Contribution::of_group(&g);
        assert_eq!(c.sessions, 12);
        assert_eq!(c.errored_preaggr, 7);
        assert_eq!((c.crashed, c.abnormal, c.unhandled), (3, 1, 1));
        assert_eq!(c.user, None);
    }

    mod props {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn parsing_never_panics(body in proptest::collection::vec(any::<u8>(), 0..200)) {
                let _ = parse_update(&body);
                let _ = parse_aggregates(&body);
            }
        }
    }
}
