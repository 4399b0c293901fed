//! Releases: create-or-update, finalize, archive, delete, list and search — Sentry's rules
//! (sentry-semantics.md §1, §2 and §6).

use std::sync::LazyLock;

use regex::Regex;
use rusqlite::{Connection, Transaction};
use serde_json::json;

use super::CoreError;
use super::health::{self, HealthSort};
use super::notify;
use super::org::{ProjectRef, resolve_projects};
use crate::model::activity::{ActivityType, version_ident};
use crate::model::{time, version};
use crate::store::activity::{self, NewActivity};
use crate::store::deploys::{self, Deploy};
use crate::store::orgs::{Org, Project};
use crate::store::releases::{
    self, Filter, ListQuery, NewRelease, Release, ReleaseUpdate, STATUS_ARCHIVED, STATUS_OPEN, Sort,
};

/// Release status as the API names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Open,
    Archived,
}

impl Status {
    /// Sentry's `ReleaseStatus.from_string`: only `open` and `archived`.
    pub fn parse(text: &str) -> Result<Status, CoreError> {
        match text {
            "open" => Ok(Status::Open),
            "archived" => Ok(Status::Archived),
            other => Err(CoreError::invalid(
                "status",
                format!(
                    "invalid value for status: \"{other}\" (expected \"open\" or \"archived\")"
                ),
            )),
        }
    }

    pub fn code(self) -> i64 {
        match self {
            Status::Open => STATUS_OPEN,
            Status::Archived => STATUS_ARCHIVED,
        }
    }

    pub fn name(code: i64) -> &'static str {
        if code == STATUS_ARCHIVED {
            "archived"
        } else {
            "open"
        }
    }
}

/// A create-or-update request (Sentry's POST to the release collection).
#[derive(Debug, Clone, Default)]
pub struct CreateRelease {
    pub version: String,
    pub projects: Vec<ProjectRef>,
    pub ref_: Option<String>,
    pub url: Option<String>,
    pub date_started: Option<String>,
    pub date_released: Option<String>,
    pub status: Option<Status>,
    pub user_agent: Option<String>,
}

/// The outcome of [`upsert`].
#[derive(Debug, Clone)]
pub struct Upserted {
    pub release: Release,
    /// `true` when the release was created or gained a project (Sentry answers 201), `false`
    /// when nothing new was attached (208 Already Reported).
    pub created: bool,
}

fn validate_version(version: &str) -> Result<(), CoreError> {
    version::validate(version).map_err(|e| CoreError::invalid("version", e.to_string()))
}

fn optional_time(field: &'static str, value: Option<&str>) -> Result<Option<String>, CoreError> {
    match value {
        None => Ok(None),
        Some(v) if v.trim().is_empty() => Ok(None),
        Some(v) => time::normalize(v).map(Some).ok_or_else(|| {
            CoreError::invalid(
                field,
                format!("{field} \"{v}\" is not an RFC 3339 timestamp (e.g. 2024-01-31T12:00:00Z)"),
            )
        }),
    }
}

/// Sentry's limit on a release's `url` (a Django `URLField`).
pub const MAX_URL_LENGTH: usize = 200;

fn check_len(field: &'static str, value: Option<&str>, max: usize) -> Result<(), CoreError> {
    match value {
        Some(v) if v.chars().count() > max => Err(CoreError::invalid(
            field,
            format!("{field} is longer than {max} characters"),
        )),
        _ => Ok(()),
    }
}

/// Creates the release, or updates the existing one the way Sentry's POST does: it attaches
/// new projects and changes `status` when given; it never changes ref, url or dateReleased of
/// an existing release.
pub fn upsert(
    tx: &Transaction<'_>,
    org: &Org,
    req: &CreateRelease,
    now: &str,
) -> Result<Upserted, CoreError> {
    validate_version(&req.version)?;
    check_len("ref", req.ref_.as_deref(), 200)?;
    check_len("url", req.url.as_deref(), MAX_URL_LENGTH)?;
    let date_started = optional_time("dateStarted", req.date_started.as_deref())?;
    let date_released = optional_time("dateReleased", req.date_released.as_deref())?;
    let projects = resolve_projects(tx, org.id, &req.projects)?;

    let (release, mut created) = match releases::by_version(tx, org.id, &req.version)? {
        Some(existing) => {
            if let Some(status) = req.status
                && status.code() != existing.status
            {
                releases::update(
                    tx,
                    existing.id,
                    &ReleaseUpdate {
                        status: Some(status.code()),
                        ..Default::default()
                    },
                )?;
            }
            (existing, false)
        }
        None => {
            let semver = version::semver_columns(&req.version);
            let id = releases::insert(
                tx,
                &NewRelease {
                    org_id: org.id,
                    version: &req.version,
                    ref_: req.ref_.as_deref().filter(|s| !s.is_empty()),
                    url: req.url.as_deref().filter(|s| !s.is_empty()),
                    date_added: now,
                    date_started: date_started.as_deref(),
                    date_released: date_released.as_deref(),
                    status: req.status.map(Status::code).unwrap_or(STATUS_OPEN),
                    user_agent: req.user_agent.as_deref().map(|u| truncate(u, 256)),
                    semver: semver.as_ref(),
                },
            )?;
            let release = releases::by_id(tx, id)?
                .ok_or_else(|| CoreError::NotFound("release vanished".into()))?;
            (release, true)
        }
    };

    let is_new = created;
    for project in &projects {
        if releases::add_project(tx, release.id, project.id)? {
            created = true;
            if let Some(released) = &release.date_released {
                log_release_activity(tx, &release, project.id, released)?;
            }
        }
    }
    let release = releases::by_id(tx, release.id)?
        .ok_or_else(|| CoreError::NotFound("release vanished".into()))?;
    if is_new {
        super::issue::clear_expired_resolutions(tx, &release)?;
        super::artifact::adopt_pending(tx, org, &release, now)?;
        let subject = notify::Subject::Release {
            release_id: release.id,
        };
        notify::enqueue(tx, org.id, notify::RELEASE_CREATED, None, subject, now)?;
        if release.date_released.is_some() {
            notify::enqueue(tx, org.id, notify::RELEASE_FINALIZED, None, subject, now)?;
        }
    }
    Ok(Upserted { release, created })
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

fn log_release_activity(
    conn: &Connection,
    release: &Release,
    project_id: i64,
    datetime: &str,
) -> Result<(), CoreError> {
    let ident = version_ident(&release.version);
    activity::insert(
        conn,
        &NewActivity {
            org_id: release.org_id,
            project_id: Some(project_id),
            release_id: Some(release.id),
            kind: ActivityType::Release,
            ident: Some(&ident),
            data: json!({ "version": release.version }),
            datetime,
        },
    )?;
    Ok(())
}

/// The release with this version, or the 404 sentry-cli understands.
pub fn get(conn: &Connection, org: &Org, version: &str) -> Result<Release, CoreError> {
    releases::by_version(conn, org.id, version)?.ok_or_else(|| not_found(version))
}

/// [`get`], and for a project-scoped URL (`/projects/{org}/{project}/releases/{version}/`) the
/// release must be one of the project's, as in Sentry.
pub fn get_in_project(
    conn: &Connection,
    org: &Org,
    project: Option<&str>,
    version: &str,
) -> Result<Release, CoreError> {
    let release = get(conn, org, version)?;
    if let Some(slug) = project {
        let project = crate::store::orgs::project_by_slug(conn, org.id, slug)?
            .ok_or_else(|| CoreError::NotFound(format!("Project '{slug}' not found")))?;
        if !releases::project_ids(conn, release.id)?.contains(&project.id) {
            return Err(not_found(version));
        }
    }
    Ok(release)
}

/// Sentry's wording, which sentry-cli shows as is.
pub fn not_found(version: &str) -> CoreError {
    CoreError::NotFound(format!("Release '{version}' not found"))
}

/// A PUT on a release: only non-empty fields are applied (Sentry applies truthy values only).
#[derive(Debug, Clone, Default)]
pub struct UpdateRelease {
    pub ref_: Option<String>,
    pub url: Option<String>,
    pub date_released: Option<String>,
    pub status: Option<Status>,
    pub projects: Vec<ProjectRef>,
}

/// Applies a PUT. Finalizing (dateReleased going from unset to set) logs a RELEASE activity for
/// every project of the release.
pub fn update(
    tx: &Transaction<'_>,
    org: &Org,
    version: &str,
    req: &UpdateRelease,
) -> Result<Release, CoreError> {
    let release = get(tx, org, version)?;
    check_len("ref", req.ref_.as_deref(), 200)?;
    check_len("url", req.url.as_deref(), MAX_URL_LENGTH)?;
    let date_released = optional_time("dateReleased", req.date_released.as_deref())?;
    let projects = resolve_projects(tx, org.id, &req.projects)?;
    let nonempty = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
    releases::update(
        tx,
        release.id,
        &ReleaseUpdate {
            ref_: nonempty(&req.ref_),
            url: nonempty(&req.url),
            date_released: date_released.clone(),
            status: req.status.map(Status::code),
        },
    )?;
    for project in &projects {
        releases::add_project(tx, release.id, project.id)?;
    }
    if release.date_released.is_none()
        && let Some(released) = &date_released
    {
        for project_id in releases::project_ids(tx, release.id)? {
            log_release_activity(tx, &release, project_id, released)?;
        }
        let subject = notify::Subject::Release {
            release_id: release.id,
        };
        let now = super::now();
        notify::enqueue(tx, org.id, notify::RELEASE_FINALIZED, None, subject, &now)?;
    }
    releases::by_id(tx, release.id)?.ok_or_else(|| not_found(version))
}

/// Deletes a release with its deploys and project links.
pub fn delete(tx: &Transaction<'_>, org: &Org, version: &str) -> Result<(), CoreError> {
    let release = get(tx, org, version)?;
    super::issue::check_release_deletable(tx, &release)?;
    releases::delete(tx, release.id)?;
    Ok(())
}

/// Everything the API shows about a release, loaded in a few batched queries.
#[derive(Debug, Clone)]
pub struct ReleaseView {
    pub release: Release,
    /// Attached projects with their per-release new-issue counts.
    pub projects: Vec<(Project, i64)>,
    pub last_deploy: Option<Deploy>,
    /// The newest commit of the release, rendered as Sentry's commit JSON.
    pub last_commit: Option<serde_json::Value>,
    /// Commit authors, rendered as Sentry's `{name, email}` objects.
    pub authors: Vec<serde_json::Value>,
    /// When the release's first and last events happened (from the events received).
    pub first_event: Option<String>,
    pub last_event: Option<String>,
}

impl ReleaseView {
    /// New issues first seen in this release, over all its projects.
    pub fn new_groups(&self) -> i64 {
        self.projects.iter().map(|(_, n)| n).sum()
    }
}

/// Loads the views of several releases, keeping their order.
pub fn views(conn: &Connection, list: Vec<Release>) -> Result<Vec<ReleaseView>, CoreError> {
    let ids: Vec<i64> = list.iter().map(|r| r.id).collect();
    let mut projects = releases::projects_of(conn, &ids)?;
    let deploy_ids: Vec<i64> = list.iter().filter_map(|r| r.last_deploy_id).collect();
    let mut deploys = deploys::by_ids(conn, &deploy_ids)?;
    let (mut last_commits, mut authors) = super::commit::release_parts(conn, &list)?;
    let mut spans = crate::store::issues::event_spans(conn, &ids)?;
    Ok(list
        .into_iter()
        .map(|release| {
            let (first_event, last_event) = spans.remove(&release.id).unzip();
            ReleaseView {
                projects: projects.remove(&release.id).unwrap_or_default(),
                last_deploy: release.last_deploy_id.and_then(|id| deploys.remove(&id)),
                last_commit: last_commits.remove(&release.id),
                authors: authors.remove(&release.id).unwrap_or_default(),
                first_event,
                last_event,
                release,
            }
        })
        .collect())
}

/// The view of one release.
pub fn view(conn: &Connection, release: Release) -> Result<ReleaseView, CoreError> {
    views(conn, vec![release])?
        .pop()
        .ok_or_else(|| CoreError::NotFound("release vanished".into()))
}

/// A release list request as the API receives it.
#[derive(Debug, Clone, Default)]
pub struct ListRequest {
    pub projects: Vec<ProjectRef>,
    pub query: Option<String>,
    pub status: Option<String>,
    pub sort: Option<String>,
    pub per_page: Option<String>,
    pub cursor: Option<String>,
    /// `flatten=1`: one row per (release, project).
    pub flatten: bool,
    /// `environment` filters of the session sorts.
    pub environments: Vec<String>,
    /// The period of the session sorts (`summaryStatsPeriod`), in seconds.
    pub summary_secs: i64,
    /// Now, unix seconds (the session sorts' windows end now).
    pub now: i64,
}

/// One row of a release list: a release, or with `flatten=1` a release in one project.
#[derive(Debug, Clone)]
pub struct Row {
    pub release: Release,
    pub project_id: Option<i64>,
}

/// A page of releases and the cursors around it.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub prev: Cursor,
    pub next: Cursor,
}

/// Sentry's cursor: `value:offset:is_prev`. For offset pagination `value` is the page size and
/// `offset` the page number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub value: i64,
    pub offset: i64,
    pub is_prev: bool,
    pub has_results: bool,
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}:{}",
            self.value,
            self.offset,
            u8::from(self.is_prev)
        )
    }
}

impl Cursor {
    /// Parses Sentry's three-integer cursor; an empty string means the first page.
    pub fn parse(text: &str) -> Result<Option<Cursor>, CoreError> {
        if text.is_empty() {
            return Ok(None);
        }
        let bad = || CoreError::invalid("cursor", "Invalid cursor parameter.");
        let parts: Vec<&str> = text.split(':').collect();
        if parts.len() != 3 {
            return Err(bad());
        }
        let value: i64 = parts[0].parse().map_err(|_| bad())?;
        let offset: i64 = parts[1].parse().map_err(|_| bad())?;
        let is_prev: i64 = parts[2].parse().map_err(|_| bad())?;
        Ok(Some(Cursor {
            value,
            offset,
            is_prev: is_prev != 0,
            has_results: false,
        }))
    }
}

impl Cursor {
    /// The page an offset-paginated list asks for (Sentry's OffsetPaginator): the cursor's
    /// `offset`, 0 without a cursor; a negative one is refused as Sentry refuses it.
    pub fn page_number(text: Option<&str>) -> Result<i64, CoreError> {
        match Cursor::parse(text.unwrap_or(""))? {
            None => Ok(0),
            Some(c) if c.offset < 0 => Err(CoreError::invalid(
                "cursor",
                "Pagination offset cannot be negative",
            )),
            // Far beyond any list, and small enough that `page * per_page` cannot overflow.
            Some(c) if c.offset > MAX_PAGE => Err(CoreError::invalid(
                "cursor",
                format!("Pagination offset cannot be above {MAX_PAGE}"),
            )),
            Some(c) => Ok(c.offset),
        }
    }

    /// The previous and next cursors around `page` of an offset-paginated list.
    pub fn around_page(per_page: usize, page: i64, has_next: bool) -> (Cursor, Cursor) {
        let value = per_page as i64;
        (
            Cursor {
                value,
                offset: page.saturating_sub(1),
                is_prev: true,
                has_results: page > 0,
            },
            Cursor {
                value,
                offset: page.saturating_add(1),
                is_prev: false,
                has_results: has_next,
            },
        )
    }
}

/// The highest page an offset cursor may ask for.
pub const MAX_PAGE: i64 = 1_000_000;

/// Default and maximum page size (Sentry's `per_page`).
pub const MAX_PER_PAGE: usize = 100;

/// Parses `per_page` the way Sentry does.
pub fn parse_per_page(text: Option<&str>) -> Result<usize, CoreError> {
    match text {
        None | Some("") => Ok(MAX_PER_PAGE),
        Some(t) => {
            let n: i64 = t
                .parse()
                .map_err(|_| CoreError::invalid("per_page", "Invalid per_page parameter."))?;
            if !(1..=MAX_PER_PAGE as i64).contains(&n) {
                return Err(CoreError::invalid(
                    "per_page",
                    format!("Invalid per_page value. Must be between 1 and {MAX_PER_PAGE}."),
                ));
            }
            Ok(n as usize)
        }
    }
}

/// Lists releases of an organization (optionally of some projects) per Sentry's list endpoint.
pub fn list(conn: &Connection, org: &Org, req: &ListRequest) -> Result<Page<Row>, CoreError> {
    let projects = resolve_projects(conn, org.id, &req.projects)?;
    let status = match req.status.as_deref() {
        None | Some("") | Some("open") => Some(STATUS_OPEN),
        Some("archived") => Some(STATUS_ARCHIVED),
        // Not in Sentry, but the obvious way to see everything.
        Some("any") | Some("all") => None,
        Some(other) => {
            return Err(CoreError::invalid(
                "status",
                format!("invalid value for status: \"{other}\" (expected open, archived or any)"),
            ));
        }
    };
    let sort = match req.sort.as_deref() {
        None | Some("") | Some("date") => Sort::Date,
        Some("semver") => Sort::Semver,
        Some("build") => Sort::Build,
        Some(s) if HealthSort::parse(s).is_some() => {
            if !req.flatten {
                return Err(CoreError::invalid(
                    "sort",
                    "sorting by crash statistics requires flattening (flatten=1)",
                ));
            }
            Sort::Date
        }
        Some("adoption") => Sort::Adoption {
            project_ids: projects.iter().map(|p| p.id).collect(),
            environments: req.environments.clone(),
        },
        Some(_) => return Err(CoreError::invalid("sort", "invalid sort")),
    };
    let health_sort = req.sort.as_deref().and_then(HealthSort::parse);
    let per_page = parse_per_page(req.per_page.as_deref())?;
    let page = Cursor::page_number(req.cursor.as_deref())?;
    let filters = match req.query.as_deref() {
        Some(q) => parse_query_in(q, &req.environments, &project_ids_of(&projects))?,
        None => Vec::new(),
    };
    let offset = (page as usize).saturating_mul(per_page);
    let project_ids: Vec<i64> = projects.iter().map(|p| p.id).collect();
    let mut query = ListQuery {
        org_id: org.id,
        project_ids: project_ids.clone(),
        status,
        filters,
        sort,
        limit: per_page,
        offset,
    };
    let mut items = match health_sort {
        None => {
            let list = releases::list(conn, &query)?;
            if req.flatten {
                flatten(conn, list, &project_ids)?
            } else {
                list.into_iter()
                    .map(|release| Row {
                        release,
                        project_id: None,
                    })
                    .collect()
            }
        }
        Some((by, day)) => {
            // Every matching (release, project) pair, ordered by its session figure.
            query.limit = usize::MAX >> 2;
            query.offset = 0;
            let rows = flatten(conn, releases::list(conn, &query)?, &project_ids)?;
            let secs = if day { 86400 } else { req.summary_secs };
            let pairs: Vec<(i64, i64)> = rows
                .iter()
                .filter_map(|r| r.project_id.map(|p| (r.release.id, p)))
                .collect();
            let sorted = health::sort_pairs(
                conn,
                org.id,
                pairs,
                by,
                &req.environments,
                health::window(req.now, secs),
            )?;
            let mut by_pair: std::collections::HashMap<(i64, i64), Row> = rows
                .into_iter()
                .filter_map(|r| r.project_id.map(|p| ((r.release.id, p), r)))
                .collect();
            sorted
                .into_iter()
                .skip(offset)
                .take(per_page + 1)
                .filter_map(|p| by_pair.remove(&p))
                .collect()
        }
    };
    let has_next = items.len() > per_page;
    items.truncate(per_page);
    let (prev, next) = Cursor::around_page(per_page, page, has_next);
    Ok(Page { items, prev, next })
}

/// One row per (release, project), keeping the releases' order; only `project_ids` when given.
fn flatten(
    conn: &Connection,
    list: Vec<Release>,
    project_ids: &[i64],
) -> Result<Vec<Row>, CoreError> {
    let ids: Vec<i64> = list.iter().map(|r| r.id).collect();
    let mut projects = releases::projects_of(conn, &ids)?;
    let mut rows = Vec::new();
    for release in list {
        for (p, _) in projects.remove(&release.id).unwrap_or_default() {
            if project_ids.is_empty() || project_ids.contains(&p.id) {
                rows.push(Row {
                    release: release.clone(),
                    project_id: Some(p.id),
                });
            }
        }
    }
    Ok(rows)
}

static FREE_TEXT_SUFFIX: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(.*)\s+\(([^)]+)\)\s*$").expect("static regex"));
static SEARCH_TERM: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(!?)([A-Za-z_][A-Za-z0-9_.]*):(.*)$").expect("static regex"));

fn project_ids_of(projects: &[Project]) -> Vec<i64> {
    projects.iter().map(|p| p.id).collect()
}

/// Parses Sentry's release search syntax (sentry-semantics.md §6): free text matches versions
/// case-insensitively anywhere; `release:`, `release.version:`, `release.package:`,
/// `release.build:` and `finalized:` narrow it. `release.stage:` needs an environment: see
/// [`parse_query_in`].
pub fn parse_query(query: &str) -> Result<Vec<Filter>, CoreError> {
    parse_query_in(query, &[], &[])
}

/// [`parse_query`] for a list narrowed to some environments and projects, which
/// `release.stage:adopted|replaced|low_adoption` (or a `[list]` of them, or `!` for the others)
/// needs: exactly one environment, as Sentry requires.
pub fn parse_query_in(
    query: &str,
    environments: &[String],
    project_ids: &[i64],
) -> Result<Vec<Filter>, CoreError> {
    let mut filters = Vec::new();
    let mut free = Vec::new();
    for token in crate::model::search::tokenize(query) {
        let Some(caps) = SEARCH_TERM.captures(&token) else {
            free.push(token);
            continue;
        };
        let negated = !caps[1].is_empty();
        let key = caps[2].to_string();
        let value = caps[3].to_string();
        let filter = match key.as_str() {
            "release" => release_filter(&value, negated)?,
            "release.version" if !negated => semver_filter(&value)?,
            "release.package" if !negated => Filter::Package(value),
            "release.build" if !negated => build_filter(&value),
            "finalized" if !negated => match value.as_str() {
                "true" => Filter::Finalized(true),
                "false" => Filter::Finalized(false),
                _ => {
                    return Err(CoreError::invalid(
                        "query",
                        format!(
                            "Invalid value for finalized: \"{value}\" (expected true or false)"
                        ),
                    ));
                }
            },
            "release.stage" => stage_filter(&value, negated, environments, project_ids)?,
            "release.created" => {
                return Err(CoreError::invalid(
                    "query",
                    "release.created is not supported by shiplog; sort by date instead",
                ));
            }
            "release.version" | "release.package" | "release.build" | "finalized" => {
                return Err(CoreError::invalid(
                    "query",
                    format!("Negation is not supported for {key}"),
                ));
            }
            _ => {
                // Not a search key: a version like `web:1` is free text in Sentry too.
                free.push(token);
                continue;
            }
        };
        filters.push(filter);
    }
    if !free.is_empty() {
        let text = free.join(" ");
        let mut any = vec![Filter::Contains(text.clone())];
        if let Some(c) = FREE_TEXT_SUFFIX.captures(&text) {
            any.push(Filter::Contains(format!("{}+{}", &c[1], &c[2])));
        }
        filters.push(if any.len() == 1 {
            any.remove(0)
        } else {
            Filter::Any(any)
        });
    }
    Ok(filters)
}

/// `release.stage:` (Sentry's `ReleaseQuerySet.filter_by_stage`): one environment, stages
/// `adopted`, `replaced` and `low_adoption`, a `[list]`, `!` for the other stages.
fn stage_filter(
    value: &str,
    negated: bool,
    environments: &[String],
    project_ids: &[i64],
) -> Result<Filter, CoreError> {
    const STAGES: [&str; 3] = ["adopted", "low_adoption", "replaced"];
    let [environment] = environments else {
        return Err(CoreError::invalid(
            "query",
            "Choose a single environment to filter by release stage.",
        ));
    };
    let listed: Vec<&str> = match value.strip_prefix('[').and_then(|v| v.strip_suffix(']')) {
        Some(list) => list
            .split(',')
            .map(|s| s.trim().trim_matches('"'))
            .collect(),
        None => vec![value],
    };
    let mut chosen = Vec::new();
    for stage in listed {
        match STAGES.iter().find(|s| **s == stage) {
            Some(s) => chosen.push(*s),
            None => {
                return Err(CoreError::invalid(
                    "query",
                    "Unsupported release.stage value.",
                ));
            }
        }
    }
    let stages = if negated {
        STAGES.into_iter().filter(|s| !chosen.contains(s)).collect()
    } else {
        chosen
    };
    Ok(Filter::Stage {
        stages,
        environment: environment.clone(),
        project_ids: project_ids.to_vec(),
    })
}

fn release_filter(value: &str, negated: bool) -> Result<Filter, CoreError> {
    if let Some(list) = value.strip_prefix('[').and_then(|v| v.strip_suffix(']')) {
        let items: Vec<String> = list
            .split(',')
            .map(|s| s.trim().trim_matches('"').to_string())
            .filter(|s| !s.is_empty())
            .collect();
        if negated {
            return Err(CoreError::invalid(
                "query",
                "Negated lists (!release:[...]) are not supported",
            ));
        }
        return Ok(Filter::In(items));
    }
    let starts = value.starts_with('*');
    let ends = value.ends_with('*') && value.len() > 1;
    let inner = value.trim_matches('*');
    let filter = match (starts, ends) {
        (true, true) => Filter::Contains(inner.to_string()),
        (false, true) => Filter::Prefix(inner.to_string()),
        (true, false) => Filter::Suffix(inner.to_string()),
        (false, false) => Filter::Exact(value.to_string()),
    };
    match (negated, filter) {
        (false, f) => Ok(f),
        (true, Filter::Exact(v)) => Ok(Filter::NotExact(v)),
        (true, _) => Err(CoreError::invalid(
            "query",
            "Negated wildcards (!release:foo*) are not supported",
        )),
    }
}

fn build_filter(value: &str) -> Filter {
    if let Ok(n) = value.parse::<i64>() {
        Filter::BuildNumber(n)
    } else if let Some(prefix) = value.strip_suffix('*') {
        Filter::BuildCodePrefix(prefix.to_string())
    } else {
        Filter::BuildCode(value.to_string())
    }
}

fn semver_filter(value: &str) -> Result<Filter, CoreError> {
    let (op, rest) = [">=", "<=", "!=", ">", "<", "="]
        .iter()
        .find_map(|op| value.strip_prefix(op).map(|rest| (*op, rest)))
        .unwrap_or(("=", value));
    let (package, raw) = match rest.rsplit_once('@') {
        Some((p, v)) => (Some(p.to_string()), v),
        None => (None, rest),
    };
    let invalid = || {
        CoreError::invalid(
            "query",
            format!(
                "Invalid format of semantic version: \"{rest}\". For example: 1.2.3, web@1.2.3 or 1.2.*"
            ),
        )
    };
    // Wildcards: `1.*`, `1.2.X` select a range on the leading integer parts.
    let parts: Vec<&str> = raw.split('.').collect();
    if let Some(star) = parts
        .iter()
        .position(|p| *p == "*" || *p == "X" || *p == "x")
    {
        if op != "=" || star == 0 || star > 3 || parts.len() != star + 1 {
            return Err(invalid());
        }
        let mut nums = [0i64; 4];
        for (i, p) in parts[..star].iter().enumerate() {
            nums[i] = p.parse().map_err(|_| invalid())?;
        }
        let mut upper = nums;
        upper[star - 1] = upper[star - 1].checked_add(1).ok_or_else(invalid)?;
        let tuple = |n: [i64; 4]| (n[0], n[1], n[2], n[3], 0, String::new());
        // The lowest version with these leading parts is `x.y.0.0-` (a prerelease sorts below
        // the release), so the range is [lower, upper).
        return Ok(Filter::All(vec![
            Filter::SemverCmp {
                op: ">=",
                package: package.clone(),
                tuple: tuple(nums),
            },
            Filter::SemverCmp {
                op: "<",
                package,
                tuple: tuple(upper),
            },
        ]));
    }
    let sv = version::SemVer::parse(raw).ok_or_else(invalid)?;
    let to_i64 = |n: u64| i64::try_from(n).map_err(|_| invalid());
    let pre = sv.pre.clone().unwrap_or_default();
    Ok(Filter::SemverCmp {
        op,
        package,
        tuple: (
            to_i64(sv.major)?,
            to_i64(sv.minor)?,
            to_i64(sv.patch)?,
            to_i64(sv.revision)?,
            i64::from(pre.is_empty()),
            pre,
        ),
    })
}
