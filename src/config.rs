//! Configuration: what the daemon reads at start-up, and how it says what is wrong with it.
//!
//! shiplog runs without any configuration file: [`DEFAULT_CONFIG_YAML`] is embedded in the binary
//! and gives the defaults (listen on `127.0.0.1:8740`, keep data in the platform data directory,
//! organization `default`, reconcile every five minutes). A file only needs the keys it changes;
//! every key is optional and every section has a hand-written [`Default`].
//!
//! # Loading, in order
//!
//! [`Config::load`] goes through five stages. Each one can fail, and every failure is a
//! [`ConfigError`] whose `Display` is **one line** that names the file and what to do:
//!
//! 1. **Find the text.** An explicit path (`--config`), else `$SHIPLOG_CONFIG`, else the
//!    embedded default.
//! 2. **Substitute the environment** into the YAML *text*: `${VAR}` is replaced by the variable's
//!    value, `${VAR:-default}` falls back to `default` when `VAR` is unset or empty, and `$$`
//!    is a literal `$`. A `$` followed by anything else is left alone, so regular expressions
//!    such as `'^v(?P<version>.+)$'` need no escaping. Lines that are entirely comments are copied
//!    verbatim. An unset variable without a default is an error naming the variable and its
//!    line. Substitution is textual: if a value may contain YAML syntax (`: `, ` #`, a leading
//!    `*`, `&`, `!`, quotes), put the reference in single quotes.
//! 3. **Parse** with serde. Every struct has `#[serde(default, deny_unknown_fields)]`, so a typo
//!    in a key is an error (with the key path and line) rather than a silently ignored setting.
//!    A section or list written with nothing under it (`projects:` followed only by comments)
//!    counts as absent. Sizes accept plain byte counts or strings such as `"32 MiB"`.
//! 4. **Normalize and override.** Empty strings become `None`; `~` at the start of a path is the
//!    home directory; relative paths in a file are resolved against the file's directory.
//!    Then `SHIPLOG_LISTEN`, `SHIPLOG_DATA_DIR` and `SHIPLOG_PUBLIC_URL` replace the file's
//!    values, and `GITHUB_WEBHOOK_SECRET` / `GITHUB_TOKEN` fill in the GitHub secrets the file
//!    leaves empty. Command-line flags come last, through [`Config::apply_overrides`].
//! 5. **Validate** ([`Config::validate`]): the first problem found is reported as
//!    `<origin>: <key.path>: <what is wrong and how to fix it>`, where `<origin>` is the file,
//!    or the environment variable or flag that supplied the value ([`Provenance`]).
//!
//! # Schedules
//!
//! `schedules[].cron` takes either the 6-field form of the `cron` crate (seconds first, an
//! optional 7th field for the year, `@daily`-style shorthands) or the classic 5-field crontab
//! form, which gets `0` seconds prepended. Two differences between the dialects are handled
//! explicitly ([`parse_cron`]):
//!
//! * **Day-of-week numbers.** Crontab counts 0 or 7 = Sunday, 1 = Monday; the `cron` crate counts
//!   1 = Sunday … 7 = Saturday, and 6-field dialects disagree among themselves (Quartz: 1 =
//!   Sunday, Spring: 1 = Monday). In the 5-field form numbers are read as crontab numbers and
//!   translated (`1-5` becomes `Mon,Tue,Wed,Thu,Fri`). In the 6/7-field form a numeric
//!   day-of-week is **rejected** as ambiguous; write day names (`MON-FRI`) instead. `*`, `?` and
//!   `*/n` are the same in every dialect and are accepted.
//! * **Day-of-month *and* day-of-week.** Crontab fires when *either* matches if both are
//!   restricted; the `cron` crate requires *both*. A 5-field expression that restricts both is
//!   rejected rather than silently changing meaning.
//!
//! # What this module does not do
//!
//! It does not open the data directory, bind the socket, talk to GitHub or touch repositories:
//! it only turns text into checked values. Consumers can rely on a validated [`Config`]: slugs
//! are well-formed, project references resolve, tag patterns compile and fit their version
//! templates, and cron expressions parse.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Component, Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use regex::Regex;
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

/// The configuration used when no file is given. It parses to [`Config::default`].
pub const DEFAULT_CONFIG_YAML: &str = r#"# shiplog's built-in configuration, used when no config file is given.
# See config.example.yaml for every key.
listen: 127.0.0.1:8740
organization: default
schedules:
  - { name: reconcile, cron: "0 */5 * * * *", job: reconcile }
"#;

/// The address the daemon listens on by default.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8740";
/// The organization slug used by default.
pub const DEFAULT_ORGANIZATION: &str = "default";
/// The tag pattern of a release policy that does not set one.
pub const DEFAULT_TAG_PATTERN: &str = r"^v?(?P<version>.+)$";
/// The version template of a release policy that does not set one.
pub const DEFAULT_VERSION_TEMPLATE: &str = "{version}";
/// GitHub's public REST API.
pub const DEFAULT_GITHUB_API_URL: &str = "https://api.github.com";
/// The origin reported for values that come from [`DEFAULT_CONFIG_YAML`] or [`Config::default`].
pub const BUILTIN_ORIGIN: &str = "built-in config";

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;
const SLUG_MAX_LEN: usize = 50;
/// Characters Sentry refuses in a release version (`BAD_RELEASE_CHARS`).
const BAD_VERSION_CHARS: &[char] = &['\r', '\n', '\x0c', '\t', '/', '\\'];

/// Looks up an environment variable; injectable so tests need not mutate the process environment.
type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

fn process_env(name: &str) -> Option<String> {
    std::env::var_os(name).map(|v| v.to_string_lossy().into_owned())
}

/// Everything that can go wrong while loading the configuration. `Display` is one line.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The configuration file could not be read.
    #[error("{}: cannot read the config file: {source}", path.display())]
    Read {
        /// The file that was asked for.
        path: PathBuf,
        /// Why reading it failed.
        #[source]
        source: std::io::Error,
    },
    /// `${VAR}` names a variable that is not set, and gives no default.
    #[error(
        "{origin}:{line}: environment variable {var} is not set; set it, or give a default with ${{{var}:-default}}"
    )]
    MissingEnv {
        /// The file (or other origin) of the text.
        origin: String,
        /// 1-based line of the reference.
        line: usize,
        /// The variable's name.
        var: String,
    },
    /// A `${...}` reference is malformed.
    #[error("{origin}:{line}: {message}")]
    EnvSyntax {
        /// The file (or other origin) of the text.
        origin: String,
        /// 1-based line of the reference.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The text is not valid YAML, has an unknown key, or a value of the wrong type.
    /// The message is serde_yaml's, which names the key path, line and column.
    #[error("{origin}: {message}")]
    Parse {
        /// The file (or other origin) of the text.
        origin: String,
        /// serde_yaml's message, on one line.
        message: String,
    },
    /// The configuration parsed but a value is not acceptable.
    #[error("{origin}: {key}: {message}")]
    Invalid {
        /// The file, or the environment variable or flag that supplied the value.
        origin: String,
        /// The key path, e.g. `projects[1].slug`.
        key: String,
        /// What is wrong and how to fix it.
        message: String,
    },
}

/// A cron expression that cannot be used. `Display` is one line and names the expression.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ScheduleError(String);

// ---------------------------------------------------------------------------------------------
// The configuration structs
// ---------------------------------------------------------------------------------------------

/// The whole configuration. Every key is optional; see `config.example.yaml`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The IP address and port the HTTP server binds, e.g. `127.0.0.1:8740` (this machine only)
    /// or `0.0.0.0:8740` (every interface). Default `127.0.0.1:8740`; `$SHIPLOG_LISTEN` and
    /// `--listen` override it.
    pub listen: String,
    /// The URL clients (sentry-cli, the CLI, tokens, links in web pages) use to reach the
    /// daemon: `http(s)://host[:port]`, with no path, because sentry-cli calls the API at
    /// `<url>/api/0/`. Default: none, meaning `http://` + the listen address
    /// ([`Config::effective_public_url`]). `$SHIPLOG_PUBLIC_URL` overrides it.
    pub public_url: Option<String>,
    /// Where the SQLite database and blobs live. Default: none, meaning
    /// `$XDG_DATA_HOME/shiplog` or `~/.local/share/shiplog` ([`Config::data_dir`]).
    /// `$SHIPLOG_DATA_DIR` and `--data-dir` override it.
    pub data_dir: Option<PathBuf>,
    /// The organization slug clients use in API paths (`/api/0/organizations/<org>/...`).
    /// Default `default`.
    pub organization: String,
    /// The projects releases belong to. Default: none configured (projects named elsewhere
    /// are then not checked against a list).
    #[serde(deserialize_with = "null_as_default")]
    pub projects: Vec<ProjectConfig>,
    /// The git repositories shiplog follows. Default: none.
    #[serde(deserialize_with = "null_as_default")]
    pub repositories: Vec<RepositoryConfig>,
    /// Source maps and other release artifacts.
    #[serde(deserialize_with = "null_as_default")]
    pub artifacts: ArtifactsConfig,
    /// GitHub webhooks and API access.
    #[serde(deserialize_with = "null_as_default")]
    pub github: GithubConfig,
    /// Periodic jobs. Default (key absent or empty): reconcile every five minutes. An explicit
    /// empty list (`schedules: []`) runs no periodic jobs.
    #[serde(deserialize_with = "schedules_or_default")]
    pub schedules: Vec<ScheduleConfig>,
    /// Request size limits of the HTTP server.
    #[serde(deserialize_with = "null_as_default")]
    pub limits: LimitsConfig,
    /// Who may read `GET /metrics`.
    #[serde(deserialize_with = "null_as_default")]
    pub metrics: MetricsConfig,
    /// Release health (sessions): how old a session may be and how long rollups are kept.
    #[serde(deserialize_with = "null_as_default")]
    pub health: HealthConfig,
    /// Webhooks and chat messages on deploys, releases and issues (`crate::notify::config`).
    /// Default: none, nothing is sent.
    #[serde(deserialize_with = "null_as_default")]
    pub notifications: crate::notify::config::NotificationsConfig,
    /// Where artifact bytes live (`crate::store::blob_store`). Default: in the database.
    #[serde(deserialize_with = "null_as_default")]
    pub storage: crate::store::blob_store::StorageConfig,
    /// Where the values came from, for error messages. Not a configuration key.
    #[serde(skip)]
    pub provenance: Provenance,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: DEFAULT_LISTEN.to_owned(),
            public_url: None,
            data_dir: None,
            organization: DEFAULT_ORGANIZATION.to_owned(),
            projects: Vec::new(),
            repositories: Vec::new(),
            artifacts: ArtifactsConfig::default(),
            github: GithubConfig::default(),
            schedules: default_schedules(),
            limits: LimitsConfig::default(),
            metrics: MetricsConfig::default(),
            health: HealthConfig::default(),
            notifications: Default::default(),
            storage: Default::default(),
            provenance: Provenance::builtin(),
        }
    }
}

/// Where a [`Config`]'s values came from: the file, and the keys replaced after parsing.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Provenance {
    /// The file the configuration was read from, or [`BUILTIN_ORIGIN`].
    pub file: String,
    /// Keys replaced after parsing, with what replaced them: `("listen", "SHIPLOG_LISTEN")`,
    /// `("data_dir", "--data-dir")`. The last entry for a key wins.
    pub overrides: Vec<(String, String)>,
}

impl Provenance {
    fn builtin() -> Self {
        Provenance {
            file: BUILTIN_ORIGIN.to_owned(),
            overrides: Vec::new(),
        }
    }

    /// The origin to report for `key`: the override that set it, or the file.
    pub fn origin_of(&self, key: &str) -> &str {
        self.overrides
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map_or(self.file.as_str(), |(_, source)| source.as_str())
    }

    fn record(&mut self, key: &str, source: &str) {
        self.overrides.push((key.to_owned(), source.to_owned()));
    }
}

/// A project: what Sentry calls a project, the unit releases and issues belong to.
/// (`Default` is derived: every field is empty by default.)
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProjectConfig {
    /// The project's slug, used by sentry-cli (`-p web`) and in API paths: 1–50 lowercase
    /// letters, digits, `-` or `_`, not all digits. Required.
    pub slug: String,
    /// A display name. Default: the slug.
    pub name: Option<String>,
    /// Sentry's platform string (`javascript`, `python`, `rust`, ...), shown in the API.
    /// Default: none.
    pub platform: Option<String>,
}

impl ProjectConfig {
    /// The display name: `name`, or the slug.
    pub fn display_name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.slug)
    }
}

/// A git repository shiplog follows, reached either through a local path or through GitHub.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RepositoryConfig {
    /// The repository's name as sentry-cli and GitHub use it, `owner/repo` (more segments are
    /// allowed for nested groups: `group/sub/repo`). Required, unique.
    pub name: String,
    /// A local clone or bare repository: its refs are watched and hooks can be installed.
    /// `~/` is the home directory; a relative path is relative to the config file. Exactly one
    /// of `path` and `github` is required.
    pub path: Option<PathBuf>,
    /// `owner/repo` on GitHub, for a repository reached only through GitHub's API and
    /// webhooks. Exactly one of `path` and `github` is required.
    pub github: Option<String>,
    /// The repository's web URL, shown by the repositories API. Default: derived from
    /// `github` ([`RepositoryConfig::web_url`]), otherwise none.
    pub url: Option<String>,
    /// Slugs of the projects this repository's releases belong to. Default: none.
    #[serde(deserialize_with = "null_as_default")]
    pub projects: Vec<String>,
    /// How tags and pushes become releases, one policy per kind of tag (monorepos have
    /// several). For each tag the first matching `on: tag` policy applies. Default (key
    /// absent or empty): one policy with every default, i.e. tags `v1.2.3` and `1.2.3` make
    /// release `1.2.3`. `releases: []` makes no releases.
    #[serde(deserialize_with = "releases_or_default")]
    pub releases: Vec<ReleasePolicy>,
    /// Make releases of the tags the repository already has when shiplog first sees it: each
    /// tag matching a policy becomes that policy's release, dated at the tag, with the
    /// commits since the policy's previous tag (`shiplog repos import` does the same later).
    /// Default: false, those tags are the baseline and make no release.
    pub import_tags: bool,
}

impl Default for RepositoryConfig {
    fn default() -> Self {
        RepositoryConfig {
            name: String::new(),
            path: None,
            github: None,
            url: None,
            projects: Vec::new(),
            releases: vec![ReleasePolicy::default()],
            import_tags: false,
        }
    }
}

impl RepositoryConfig {
    /// The projects a policy's releases belong to: the policy's own list, else the repository's.
    pub fn policy_projects<'a>(&'a self, policy: &'a ReleasePolicy) -> &'a [String] {
        policy.projects.as_deref().unwrap_or(&self.projects)
    }

    /// The first `on: tag` policy whose pattern matches `tag`, with the version it gives.
    pub fn release_for_tag(&self, tag: &str) -> Option<(&ReleasePolicy, String)> {
        self.releases
            .iter()
            .filter(|policy| policy.on == ReleaseTrigger::Tag)
            .find_map(|policy| policy.version_for_tag(tag).map(|version| (policy, version)))
    }

    /// The web URL shown for this repository: `url`, else one derived from `github` and the
    /// GitHub API URL (`https://github.com/owner/repo`, or the GitHub Enterprise host).
    pub fn web_url(&self, github: &GithubConfig) -> Option<String> {
        if let Some(url) = &self.url {
            return Some(url.trim_end_matches('/').to_owned());
        }
        let repo = self.github.as_deref()?;
        let api = github.api_url.trim_end_matches('/');
        let host = if api == DEFAULT_GITHUB_API_URL {
            "https://github.com"
        } else {
            api.strip_suffix("/api/v3").unwrap_or(api)
        };
        Some(format!("{host}/{repo}"))
    }
}

/// What makes a release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseTrigger {
    /// A new tag matching `tag_pattern` creates a release (the default).
    #[default]
    Tag,
    /// A tag matching `tag_pattern` creates a release when it is pushed: seen by the pre-push
    /// hook of a clone, or received by a bare repository (post-receive).
    Push,
    /// The policy creates no releases by itself (releases come from sentry-cli or the API).
    None,
}

impl ReleaseTrigger {
    /// The name used in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            ReleaseTrigger::Tag => "tag",
            ReleaseTrigger::Push => "push",
            ReleaseTrigger::None => "none",
        }
    }
}

impl fmt::Display for ReleaseTrigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One way a repository's tags become releases.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReleasePolicy {
    /// What creates a release: `tag`, `push` or `none`. Default `tag`.
    pub on: ReleaseTrigger,
    /// A regular expression (Rust `regex` syntax) a tag must match. Its named groups fill the
    /// version template; it needs a group named `version` if the template uses `{version}`.
    /// Default `^v?(?P<version>.+)$`.
    pub tag_pattern: String,
    /// The release version made from a matching tag: `{name}` is replaced by the named group
    /// `name` of `tag_pattern`, `{{` and `}}` are literal braces. Default `{version}`.
    pub version: String,
    /// Slugs of the projects the releases belong to. Default: the repository's `projects`.
    pub projects: Option<Vec<String>>,
    /// How many commits a release gets when there is no earlier release to compare with.
    /// Default 20.
    pub initial_depth: usize,
    /// Only commits touching these paths (relative to the repository root) belong to the
    /// release. Default: every commit.
    #[serde(deserialize_with = "null_as_default")]
    pub paths: Vec<String>,
}

impl Default for ReleasePolicy {
    fn default() -> Self {
        ReleasePolicy {
            on: ReleaseTrigger::Tag,
            tag_pattern: DEFAULT_TAG_PATTERN.to_owned(),
            version: DEFAULT_VERSION_TEMPLATE.to_owned(),
            projects: None,
            initial_depth: 20,
            paths: Vec::new(),
        }
    }
}

impl ReleasePolicy {
    /// Compiles `tag_pattern`. Validation guarantees this succeeds for a loaded config; callers
    /// matching many tags should compile once and use [`ReleasePolicy::render_version`].
    pub fn compiled_pattern(&self) -> Result<Regex, regex::Error> {
        Regex::new(&self.tag_pattern)
    }

    /// The version a tag gives under this policy, or `None` if the tag does not match (or the
    /// pattern does not compile, or the result would be empty).
    ///
    /// With `tag_pattern: '^ui-(?P<version>.+)$'` and `version: 'ui@{version}'`, tag
    /// `ui-0.4.3` gives `ui@0.4.3`.
    pub fn version_for_tag(&self, tag: &str) -> Option<String> {
        let pattern = self.compiled_pattern().ok()?;
        let captures = pattern.captures(tag)?;
        self.render_version(&captures)
    }

    /// Fills the version template from a match of `tag_pattern`. A named group that took no
    /// part in the match is empty; `None` if the template is malformed or the result is empty.
    pub fn render_version(&self, captures: &regex::Captures<'_>) -> Option<String> {
        let parts = parse_template(&self.version).ok()?;
        let mut out = String::new();
        for part in parts {
            match part {
                TemplatePart::Literal(text) => out.push_str(&text),
                TemplatePart::Group(name) => {
                    out.push_str(captures.name(&name).map_or("", |m| m.as_str()));
                }
            }
        }
        (!out.is_empty()).then_some(out)
    }
}

/// What the drop-folder watcher does with a bundle once it has been ingested.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AfterSuccess {
    /// Delete the files (the default).
    #[default]
    Remove,
    /// Move them into a `done/` directory inside the drop directory.
    MoveToDone,
}

/// Source maps and other release artifacts, uploaded by sentry-cli or dropped by CI.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ArtifactsConfig {
    /// Directories CI writes artifact bundles into; shiplog watches them and ingests what
    /// appears. `~/` is the home directory; a relative path is relative to the config file.
    /// Default: none.
    #[serde(deserialize_with = "null_as_default")]
    pub drop_dirs: Vec<PathBuf>,
    /// Bundles with at least this many files are also added to the release's artifact index
    /// (Sentry's rule). Default 10.
    pub index_min_files: usize,
    /// What to do with dropped files once ingested: `remove` or `move_to_done`. Default
    /// `remove`.
    pub after_success: AfterSuccess,
    /// Create the release a bundle names (dropped or uploaded) if it does not exist yet.
    /// Default `false`: the bundle is kept and shown in the release's files once a release of
    /// that name is created (as Sentry keeps it).
    pub create_missing_release: bool,
    /// The largest artifact file accepted, in bytes or as `"2 GiB"`; advertised to sentry-cli
    /// as `maxFileSize`. Default 2 GiB.
    #[serde(deserialize_with = "size::bytes_u64")]
    pub max_file_size: u64,
    /// The most chunk bytes sentry-cli may put in one upload request, in bytes or as
    /// `"32 MiB"`; advertised as `maxRequestSize`. Must be below `limits.max_upload_body`.
    /// Default 32 MiB.
    #[serde(deserialize_with = "size::bytes_u64")]
    pub max_request_size: u64,
}

impl Default for ArtifactsConfig {
    fn default() -> Self {
        ArtifactsConfig {
            drop_dirs: Vec::new(),
            index_min_files: 10,
            after_success: AfterSuccess::Remove,
            create_missing_release: false,
            max_file_size: 2 * GIB,
            max_request_size: 32 * MIB,
        }
    }
}

/// GitHub webhooks and API access. `Debug` prints the secrets as `<redacted>`.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GithubConfig {
    /// The secret configured on the GitHub webhook; deliveries are verified against it
    /// (`X-Hub-Signature-256`). Default: `$GITHUB_WEBHOOK_SECRET` if set, else none.
    pub webhook_secret: Option<String>,
    /// A token for GitHub's API (tags and commits of GitHub-only repositories). Default:
    /// `$GITHUB_TOKEN` if set, else none (anonymous, rate-limited to 60 requests an hour).
    pub token: Option<String>,
    /// The API's base URL; for GitHub Enterprise Server `https://HOST/api/v3`.
    /// Default `https://api.github.com`.
    pub api_url: String,
    /// When a GitHub release is published, write shiplog's release notes (commits, fixed
    /// issues, authors) into its description, between marker comments, keeping what was
    /// written there. Needs a token that may edit releases. Default `false`.
    pub publish_release_notes: bool,
}

impl Default for GithubConfig {
    fn default() -> Self {
        GithubConfig {
            webhook_secret: None,
            token: None,
            api_url: DEFAULT_GITHUB_API_URL.to_owned(),
            publish_release_notes: false,
        }
    }
}

impl fmt::Debug for GithubConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const REDACTED: &str = "<redacted>";
        f.debug_struct("GithubConfig")
            .field(
                "webhook_secret",
                &self.webhook_secret.as_ref().map(|_| REDACTED),
            )
            .field("token", &self.token.as_ref().map(|_| REDACTED))
            .field("api_url", &self.api_url)
            .field("publish_release_notes", &self.publish_release_notes)
            .finish()
    }
}

/// A periodic job.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScheduleConfig {
    /// A name for logs and status output. Required, unique.
    pub name: String,
    /// When to run: 6 fields `sec min hour day-of-month month day-of-week` (optionally a 7th,
    /// the year), 5 fields in crontab form (seconds = 0), or `@hourly`, `@daily`, `@weekly`,
    /// `@monthly`, `@yearly`. See [`parse_cron`] for day-of-week numbering. Required.
    pub cron: String,
    /// The job: `reconcile`, `prune_artifacts`, `backup` or `health`. Default `reconcile`.
    pub job: JobKind,
    /// For `prune_artifacts`: delete artifacts uploaded more than this many days ago.
    /// Required for that job, not allowed for others.
    pub keep_days: Option<u32>,
    /// For `backup`: the directory the copies go to (`~` expanded). Required for that job.
    pub dir: Option<PathBuf>,
    /// For `backup`: how many copies to keep (the oldest beyond are deleted). Default 7.
    pub keep: Option<u32>,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        ScheduleConfig {
            name: String::new(),
            cron: String::new(),
            job: JobKind::Reconcile,
            keep_days: None,
            dir: None,
            keep: None,
        }
    }
}

impl ScheduleConfig {
    /// The parsed cron schedule ([`parse_cron`]).
    pub fn schedule(&self) -> Result<cron::Schedule, ScheduleError> {
        parse_cron(&self.cron)
    }
}

/// The jobs a schedule can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// Compare every repository's refs (and GitHub tags) with what is stored and replay what
    /// was missed (the default).
    #[default]
    Reconcile,
    /// Delete artifacts uploaded more than `keep_days` days ago.
    PruneArtifacts,
    /// Copy the store into `dir`, keeping the last `keep` copies.
    Backup,
    /// Release health upkeep: adoption stages over the last 6 h and `health.retention`. The
    /// daemon runs it hourly even when no schedule names it.
    Health,
}

impl JobKind {
    /// The name used in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Reconcile => "reconcile",
            JobKind::PruneArtifacts => "prune_artifacts",
            JobKind::Backup => "backup",
            JobKind::Health => "health",
        }
    }
}

impl fmt::Display for JobKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Request size limits of the HTTP server.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// The largest request body accepted by JSON endpoints, in bytes or as `"8 MiB"`.
    /// Default 8 MiB: a `set-commits --local` body carries every commit with its patch set
    /// (roughly 400 bytes a commit), so 8 MiB holds about 20 000 commits.
    #[serde(deserialize_with = "size::bytes_usize")]
    pub max_json_body: usize,
    /// The largest request body accepted by upload endpoints (chunk uploads, envelopes), in
    /// bytes or as `"64 MiB"`. Default 64 MiB.
    #[serde(deserialize_with = "size::bytes_usize")]
    pub max_upload_body: usize,
    /// The most an artifact bundle may inflate to, in bytes or as `"2 GiB"`: checked against
    /// its zip directory and again while it is read. Past it the bundle is refused and nothing
    /// of it is stored. Default 2 GiB.
    #[serde(deserialize_with = "size::bytes_u64")]
    pub max_unpacked_bundle: u64,
    /// Once a request's first byte has arrived, the time its head (request line and headers)
    /// has to arrive completely, in seconds or as `"30s"`, `"2m"`. Default 30 s.
    #[serde(deserialize_with = "seconds::duration")]
    pub header_timeout: Duration,
    /// A connection with no request in progress and no traffic for this long is closed (a
    /// client that connects and sends nothing, an unused keep-alive connection). Default 60 s.
    #[serde(deserialize_with = "seconds::duration")]
    pub idle_timeout: Duration,
    /// A request body that delivers nothing for this long fails the request and closes the
    /// connection (a `Content-Length` announced but never sent). Default 60 s.
    #[serde(deserialize_with = "seconds::duration")]
    pub body_timeout: Duration,
    /// The most event-ingest requests (envelopes, store) in progress at once: being read,
    /// prepared or waiting for the writer. Past it a request is answered 429 with
    /// `Retry-After` at once (the Sentry SDKs back off), so latency and memory stay bounded
    /// under overload. Default 512.
    pub ingest_queue: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_json_body: 8 * 1024 * 1024,
            max_upload_body: 64 * 1024 * 1024,
            max_unpacked_bundle: 2 * GIB,
            header_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(60),
            ingest_queue: 512,
        }
    }
}

/// Access to `GET /metrics` (Prometheus text format). It is outside the API's token auth:
/// loopback clients read it freely, others only with `token`.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Serve `/metrics` at all. Default `true`; `false` answers 404.
    pub enabled: bool,
    /// Clients on a loopback address may read it without a token. Default `true`; turn it off
    /// when a reverse proxy on the same machine forwards outside requests.
    pub allow_loopback: bool,
    /// A bearer token (`Authorization: Bearer <token>`) that admits a client from any address.
    /// Default: none, so only loopback clients are admitted.
    pub token: Option<String>,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            enabled: true,
            allow_loopback: true,
            token: None,
        }
    }
}

/// Release health: session ingest rules and rollup retention.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HealthConfig {
    /// Sessions whose `started` or `timestamp` is older than this are refused, as Relay's
    /// `max_session_secs_in_past` does: a period such as `5d`, `36h` or `90m`. Default `5d`.
    #[serde(deserialize_with = "seconds::whole")]
    pub max_session_age: i64,
    /// Hourly session rollups older than this are deleted by the hourly health job. Default
    /// `90d` (the longest period Sentry's release pages ask for).
    #[serde(deserialize_with = "seconds::whole")]
    pub retention: i64,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            max_session_age: 5 * 86400,
            retention: 90 * 86400,
        }
    }
}

impl fmt::Debug for MetricsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetricsConfig")
            .field("enabled", &self.enabled)
            .field("allow_loopback", &self.allow_loopback)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

fn default_schedules() -> Vec<ScheduleConfig> {
    vec![ScheduleConfig {
        name: "reconcile".to_owned(),
        cron: "0 */5 * * * *".to_owned(),
        job: JobKind::Reconcile,
        keep_days: None,
        dir: None,
        keep: None,
    }]
}

/// A key written with no value (`projects:` followed only by comments) counts as absent.
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

fn schedules_or_default<'de, D>(deserializer: D) -> Result<Vec<ScheduleConfig>, D::Error>
where
    D: Deserializer<'de>,
{
    Ok(Option::deserialize(deserializer)?.unwrap_or_else(default_schedules))
}

fn releases_or_default<'de, D>(deserializer: D) -> Result<Vec<ReleasePolicy>, D::Error>
where
    D: Deserializer<'de>,
{
    Ok(Option::deserialize(deserializer)?.unwrap_or_else(|| vec![ReleasePolicy::default()]))
}

// ---------------------------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------------------------

impl Config {
    /// Loads the configuration: from `path`, else from `$SHIPLOG_CONFIG`, else the embedded
    /// [`DEFAULT_CONFIG_YAML`]; then substitutes the environment, applies the environment
    /// overrides and validates. See the module documentation for the stages.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        Self::load_with_env(path, &process_env)
    }

    fn load_with_env(path: Option<&Path>, env: Env<'_>) -> Result<Config, ConfigError> {
        let from_env = env("SHIPLOG_CONFIG")
            .filter(|p| !p.is_empty())
            .map(PathBuf::from);
        let path = path.map(Path::to_path_buf).or(from_env);
        let mut config = match &path {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?;
                let origin = path.display().to_string();
                let mut config = Self::parse(&text, &origin, env)?;
                let base = path.parent().unwrap_or(Path::new(""));
                config.resolve_paths(base, env);
                config
            }
            None => {
                let mut config = Self::parse(DEFAULT_CONFIG_YAML, BUILTIN_ORIGIN, env)?;
                config.resolve_paths(Path::new(""), env);
                config
            }
        };
        config.apply_env_overrides(env);
        config.validate()?;
        tracing::debug!(
            origin = %config.provenance.file,
            overrides = ?config.provenance.overrides,
            "configuration loaded"
        );
        Ok(config)
    }

    /// Parses and validates configuration text, substituting `${VAR}` from the process
    /// environment. `origin` names the text in error messages (usually the file name). The
    /// `SHIPLOG_*`/`GITHUB_*` overrides are *not* applied; [`Config::load`] does that.
    pub fn from_yaml_str(text: &str, origin: &str) -> Result<Config, ConfigError> {
        Self::from_yaml_str_with_env(text, origin, &process_env)
    }

    /// [`Config::from_yaml_str`] with `${VAR}` looked up through `env` instead of the process
    /// environment.
    pub fn from_yaml_str_with_env(
        text: &str,
        origin: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let mut config = Self::parse(text, origin, env)?;
        config.resolve_paths(Path::new(""), env);
        config.validate()?;
        Ok(config)
    }

    /// Substitution, YAML parsing and normalization; no path resolution, no validation.
    fn parse(text: &str, origin: &str, env: Env<'_>) -> Result<Config, ConfigError> {
        let text = substitute_env(text, origin, env)?;
        let mut config: Config = serde_yaml::from_str(&text).map_err(|err| ConfigError::Parse {
            origin: origin.to_owned(),
            message: describe_yaml_error(&err, &text),
        })?;
        config.provenance = Provenance {
            file: origin.to_owned(),
            overrides: Vec::new(),
        };
        config.normalize();
        Ok(config)
    }

    /// Empty strings mean "not set", so `${VAR:-}` can switch an optional key off.
    fn normalize(&mut self) {
        fn empty_to_none(value: &mut Option<String>) {
            if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
                *value = None;
            }
        }
        fn empty_path_to_none(value: &mut Option<PathBuf>) {
            if value.as_deref().is_some_and(|p| p.as_os_str().is_empty()) {
                *value = None;
            }
        }
        empty_to_none(&mut self.public_url);
        empty_path_to_none(&mut self.data_dir);
        empty_to_none(&mut self.github.webhook_secret);
        empty_to_none(&mut self.github.token);
        for repo in &mut self.repositories {
            empty_path_to_none(&mut repo.path);
            empty_to_none(&mut repo.github);
            empty_to_none(&mut repo.url);
        }
    }

    /// Expands `~/` and resolves relative paths written in the file against `base` (the
    /// file's directory).
    fn resolve_paths(&mut self, base: &Path, env: Env<'_>) {
        let home = env("HOME");
        let resolve = |path: &Path| -> PathBuf {
            let expanded = expand_tilde_with(path, home.as_deref());
            if expanded.is_relative() && !base.as_os_str().is_empty() {
                base.join(expanded)
            } else {
                expanded
            }
        };
        if let Some(dir) = &self.data_dir {
            self.data_dir = Some(resolve(dir));
        }
        for repo in &mut self.repositories {
            if let Some(path) = &repo.path {
                repo.path = Some(resolve(path));
            }
        }
        for dir in &mut self.artifacts.drop_dirs {
            *dir = resolve(dir);
        }
    }

    /// `SHIPLOG_LISTEN`, `SHIPLOG_DATA_DIR` and `SHIPLOG_PUBLIC_URL` replace the file's
    /// values; `GITHUB_WEBHOOK_SECRET` and `GITHUB_TOKEN` only fill in empty ones.
    fn apply_env_overrides(&mut self, env: Env<'_>) {
        let get = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        if let Some(listen) = get("SHIPLOG_LISTEN") {
            self.listen = listen;
            self.provenance.record("listen", "SHIPLOG_LISTEN");
        }
        if let Some(dir) = get("SHIPLOG_DATA_DIR") {
            self.data_dir = Some(PathBuf::from(dir));
            self.provenance.record("data_dir", "SHIPLOG_DATA_DIR");
        }
        if let Some(url) = get("SHIPLOG_PUBLIC_URL") {
            self.public_url = Some(url);
            self.provenance.record("public_url", "SHIPLOG_PUBLIC_URL");
        }
        if self.github.webhook_secret.is_none()
            && let Some(secret) = get("GITHUB_WEBHOOK_SECRET")
        {
            self.github.webhook_secret = Some(secret);
            self.provenance
                .record("github.webhook_secret", "GITHUB_WEBHOOK_SECRET");
        }
        if self.github.token.is_none()
            && let Some(token) = get("GITHUB_TOKEN")
        {
            self.github.token = Some(token);
            self.provenance.record("github.token", "GITHUB_TOKEN");
        }
    }

    /// Applies command-line flags (`--listen`, `--data-dir`), which beat the file and the
    /// environment. Call [`Config::validate`] afterwards; errors then name the flag.
    pub fn apply_overrides(&mut self, listen: Option<String>, data_dir: Option<PathBuf>) {
        if let Some(listen) = listen {
            self.listen = listen;
            self.provenance.record("listen", "--listen");
        }
        if let Some(dir) = data_dir {
            self.data_dir = Some(dir);
            self.provenance.record("data_dir", "--data-dir");
        }
    }

    /// The data directory: `data_dir` with a leading `~` expanded, else `$XDG_DATA_HOME/shiplog`
    /// (if that is an absolute path), else `~/.local/share/shiplog`, else (no home directory at
    /// all) `shiplog-data` in the working directory.
    pub fn data_dir(&self) -> PathBuf {
        self.data_dir_with_env(&process_env)
    }

    fn data_dir_with_env(&self, env: Env<'_>) -> PathBuf {
        let home = env("HOME").filter(|h| !h.is_empty());
        if let Some(dir) = &self.data_dir {
            return expand_tilde_with(dir, home.as_deref());
        }
        if let Some(xdg) = env("XDG_DATA_HOME").map(PathBuf::from)
            && xdg.is_absolute()
        {
            return xdg.join("shiplog");
        }
        match home {
            Some(home) => Path::new(&home).join(".local/share/shiplog"),
            None => PathBuf::from("shiplog-data"),
        }
    }

    /// The URL clients should use: `public_url` without a trailing slash, else
    /// `http://<address>` where the address is `bound` (the socket actually bound, which
    /// matters with port 0) or else `listen`. An unspecified address (`0.0.0.0`, `::`) is
    /// replaced by the loopback address, since clients cannot connect to it.
    pub fn effective_public_url(&self, bound: Option<SocketAddr>) -> String {
        if let Some(url) = &self.public_url {
            return url.trim_end_matches('/').to_owned();
        }
        let addr = bound.or_else(|| self.listen.parse::<SocketAddr>().ok());
        match addr {
            Some(mut addr) => {
                match addr.ip() {
                    IpAddr::V4(ip) if ip.is_unspecified() => {
                        addr.set_ip(IpAddr::V4(Ipv4Addr::LOCALHOST));
                    }
                    IpAddr::V6(ip) if ip.is_unspecified() => {
                        addr.set_ip(IpAddr::V6(Ipv6Addr::LOCALHOST));
                    }
                    _ => {}
                }
                format!("http://{addr}")
            }
            None => format!("http://{}", self.listen.trim_end_matches('/')),
        }
    }

    /// The project with this slug.
    pub fn project(&self, slug: &str) -> Option<&ProjectConfig> {
        self.projects.iter().find(|p| p.slug == slug)
    }

    /// The repository with this name (`owner/repo`).
    pub fn repository(&self, name: &str) -> Option<&RepositoryConfig> {
        self.repositories.iter().find(|r| r.name == name)
    }
}

/// Expands a leading `~` (alone or followed by `/`) to the home directory (`$HOME`). Other
/// paths, and `~user`, are returned unchanged.
pub fn expand_tilde(path: &Path) -> PathBuf {
    expand_tilde_with(path, process_env("HOME").as_deref())
}

fn expand_tilde_with(path: &Path, home: Option<&str>) -> PathBuf {
    let Some(home) = home.filter(|h| !h.is_empty()) else {
        return path.to_path_buf();
    };
    let mut components = path.components();
    match components.next() {
        Some(Component::Normal(first)) if first == "~" => {
            Path::new(home).join(components.as_path())
        }
        _ => path.to_path_buf(),
    }
}

// ---------------------------------------------------------------------------------------------
// Environment substitution
// ---------------------------------------------------------------------------------------------

/// Replaces `${VAR}` and `${VAR:-default}` in `text`; `$$` is a literal `$`. Full-line
/// comments are copied unchanged.
fn substitute_env(text: &str, origin: &str, env: Env<'_>) -> Result<String, ConfigError> {
    let mut out = String::with_capacity(text.len());
    for (index, line) in text.split_inclusive('\n').enumerate() {
        let line_no = index + 1;
        if line.trim_start().starts_with('#') {
            out.push_str(line);
            continue;
        }
        let syntax = |message: String| ConfigError::EnvSyntax {
            origin: origin.to_owned(),
            line: line_no,
            message,
        };
        let mut rest = line;
        while let Some(dollar) = rest.find('$') {
            out.push_str(&rest[..dollar]);
            let after = &rest[dollar + 1..];
            if let Some(tail) = after.strip_prefix('$') {
                out.push('$');
                rest = tail;
            } else if let Some(tail) = after.strip_prefix('{') {
                let Some(close) = tail.find('}') else {
                    return Err(syntax(
                        "'${' has no closing '}'; write ${VAR} or ${VAR:-default}, or $$ for a literal $"
                            .to_owned(),
                    ));
                };
                let inner = &tail[..close];
                let (name, default) = match inner.split_once(":-") {
                    Some((name, default)) => (name, Some(default)),
                    None => (inner, None),
                };
                if !is_env_name(name) {
                    return Err(syntax(format!(
                        "'${{{inner}}}' is not a variable reference; write ${{VAR}} or ${{VAR:-default}} with a name of letters, digits and '_', or $$ for a literal $"
                    )));
                }
                let value = env(name).filter(|v| default.is_none() || !v.is_empty());
                match (value, default) {
                    (Some(value), _) => out.push_str(&value),
                    (None, Some(default)) => out.push_str(default),
                    (None, None) => {
                        return Err(ConfigError::MissingEnv {
                            origin: origin.to_owned(),
                            line: line_no,
                            var: name.to_owned(),
                        });
                    }
                }
                rest = &tail[close + 1..];
            } else {
                out.push('$');
                rest = after;
            }
        }
        out.push_str(rest);
    }
    Ok(out)
}

fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// serde_yaml's message on one line. Errors about a top-level key come without a location;
/// find the key's line in the text so the message still says where to look.
fn describe_yaml_error(err: &serde_yaml::Error, text: &str) -> String {
    let mut message = err
        .to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    if !message.contains(" at line ") {
        let location = err
            .location()
            .map(|l| (l.line(), l.column()))
            .filter(|&position| position != (1, 1));
        let key_line = || {
            [("unknown field `", 1), ("duplicate field `", 2)]
                .iter()
                .find_map(|(prefix, nth)| {
                    let key = message.strip_prefix(prefix)?.split('`').next()?;
                    top_level_key_line(text, key, *nth)
                })
        };
        if let Some((line, column)) = location {
            message.push_str(&format!(" at line {line} column {column}"));
        } else if let Some(line) = key_line() {
            message.push_str(&format!(" at line {line}"));
        }
    }
    message
}

/// The 1-based line of the `nth` unindented `key:` in `text`.
fn top_level_key_line(text: &str, key: &str, nth: usize) -> Option<usize> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| {
            let unquoted = line
                .strip_prefix(['"', '\''])
                .and_then(|l| l.strip_prefix(key))
                .and_then(|l| l.strip_prefix(['"', '\'']));
            let rest = unquoted.or_else(|| line.strip_prefix(key));
            rest.is_some_and(|rest| rest.trim_start().starts_with(':'))
        })
        .nth(nth.saturating_sub(1))
        .map(|(index, _)| index + 1)
}

// ---------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------

impl Config {
    /// Checks every value and reports the first problem as
    /// `<origin>: <key.path>: <what is wrong and how to fix it>`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_server()?;
        self.validate_projects()?;
        self.validate_repositories()?;
        self.validate_artifacts_and_limits()?;
        self.validate_github()?;
        self.validate_schedules()?;
        self.notifications
            .validate()
            .map_err(|(key, message)| self.invalid(key, message))?;
        self.storage
            .validate()
            .map_err(|(key, message)| self.invalid(key, message))?;
        Ok(())
    }

    fn invalid(&self, key: impl Into<String>, message: impl Into<String>) -> ConfigError {
        let key = key.into();
        ConfigError::Invalid {
            origin: self.provenance.origin_of(&key).to_owned(),
            key,
            message: message.into(),
        }
    }

    fn validate_server(&self) -> Result<(), ConfigError> {
        if self.listen.parse::<SocketAddr>().is_err() {
            return Err(self.invalid(
                "listen",
                format!(
                    "{:?} is not an IP address and port; write e.g. 127.0.0.1:8740 (this machine only) or 0.0.0.0:8740 (every interface)",
                    self.listen
                ),
            ));
        }
        if let Some(url) = &self.public_url {
            check_url(url, false).map_err(|message| self.invalid("public_url", message))?;
        }
        if let Some(problem) = slug_problem(&self.organization) {
            return Err(self.invalid("organization", problem));
        }
        Ok(())
    }

    fn validate_projects(&self) -> Result<(), ConfigError> {
        for (i, project) in self.projects.iter().enumerate() {
            let key = format!("projects[{i}].slug");
            if let Some(problem) = slug_problem(&project.slug) {
                return Err(self.invalid(key, problem));
            }
            if let Some(first) = self.projects[..i]
                .iter()
                .position(|p| p.slug == project.slug)
            {
                return Err(self.invalid(
                    key,
                    format!(
                        "{:?} is already used by projects[{first}]; project slugs must be unique",
                        project.slug
                    ),
                ));
            }
        }
        Ok(())
    }

    /// A project slug named by a repository or policy: well-formed, and configured if any
    /// projects are configured.
    fn check_project_ref(&self, key: String, slug: &str) -> Result<(), ConfigError> {
        if let Some(problem) = slug_problem(slug) {
            return Err(self.invalid(key, problem));
        }
        if !self.projects.is_empty() && self.project(slug).is_none() {
            let known: Vec<&str> = self.projects.iter().map(|p| p.slug.as_str()).collect();
            return Err(self.invalid(
                key,
                format!(
                    "{slug:?} is not a configured project; add it under projects, or use one of: {}",
                    known.join(", ")
                ),
            ));
        }
        Ok(())
    }

    fn validate_repositories(&self) -> Result<(), ConfigError> {
        for (i, repo) in self.repositories.iter().enumerate() {
            let at = format!("repositories[{i}]");
            if repo.name.trim().is_empty() {
                return Err(self.invalid(
                    format!("{at}.name"),
                    "is empty; write the owner/repo name sentry-cli and GitHub use, e.g. \"acme/web\"",
                ));
            }
            if !is_repo_name(&repo.name, false) {
                return Err(self.invalid(
                    format!("{at}.name"),
                    format!(
                        "{:?} must look like owner/repo (letters, digits, '.', '-' or '_', separated by '/'), e.g. \"acme/web\"",
                        repo.name
                    ),
                ));
            }
            if let Some(first) = self.repositories[..i]
                .iter()
                .position(|r| r.name == repo.name)
            {
                return Err(self.invalid(
                    format!("{at}.name"),
                    format!(
                        "{:?} is already used by repositories[{first}]; repository names must be unique",
                        repo.name
                    ),
                ));
            }
            match (&repo.path, &repo.github) {
                (Some(_), Some(_)) => {
                    return Err(self.invalid(
                        at,
                        "has both path and github; set path for a local clone, or github (owner/repo) for a repository reached only through GitHub's API, not both",
                    ));
                }
                (None, None) => {
                    return Err(self.invalid(
                        at,
                        "needs path (a local clone or bare repository) or github (owner/repo, reached through GitHub's API)",
                    ));
                }
                _ => {}
            }
            if let Some(github) = &repo.github
                && !is_repo_name(github, true)
            {
                return Err(self.invalid(
                    format!("{at}.github"),
                    format!(
                        "{github:?} must be owner/repo as on GitHub, e.g. \"acme/web\" (not a URL)"
                    ),
                ));
            }
            if let Some(url) = &repo.url {
                check_url(url, true)
                    .map_err(|message| self.invalid(format!("{at}.url"), message))?;
            }
            for (j, slug) in repo.projects.iter().enumerate() {
                self.check_project_ref(format!("{at}.projects[{j}]"), slug)?;
            }
            for (j, policy) in repo.releases.iter().enumerate() {
                self.validate_policy(&format!("{at}.releases[{j}]"), policy)?;
            }
        }
        Ok(())
    }

    fn validate_policy(&self, at: &str, policy: &ReleasePolicy) -> Result<(), ConfigError> {
        let pattern = Regex::new(&policy.tag_pattern).map_err(|err| {
            self.invalid(
                format!("{at}.tag_pattern"),
                format!(
                    "'{}' is not a valid regular expression: {}",
                    policy.tag_pattern,
                    describe_regex_error(&err)
                ),
            )
        })?;
        let template_key = format!("{at}.version");
        if policy.version.is_empty() {
            return Err(self.invalid(
                template_key,
                "is empty; write a template such as '{version}' or 'web@{version}'",
            ));
        }
        let parts = parse_template(&policy.version).map_err(|problem| {
            self.invalid(
                template_key.clone(),
                format!("{:?} {problem}", policy.version),
            )
        })?;
        let groups: Vec<&str> = pattern.capture_names().flatten().collect();
        for part in &parts {
            match part {
                TemplatePart::Literal(text) => {
                    if let Some(bad) = text.chars().find(|c| BAD_VERSION_CHARS.contains(c)) {
                        return Err(self.invalid(
                            template_key,
                            format!(
                                "{:?} contains {bad:?}, which Sentry does not allow in a release version",
                                policy.version
                            ),
                        ));
                    }
                }
                TemplatePart::Group(name) if !groups.contains(&name.as_str()) => {
                    if name == "version" {
                        return Err(self.invalid(
                            format!("{at}.tag_pattern"),
                            format!(
                                "'{}' has no named group \"version\", which the version template {:?} uses; capture it, e.g. '^v(?P<version>.+)$'",
                                policy.tag_pattern, policy.version
                            ),
                        ));
                    }
                    let available = if groups.is_empty() {
                        "it has no named groups".to_owned()
                    } else {
                        format!("its named groups are: {}", groups.join(", "))
                    };
                    return Err(self.invalid(
                        template_key,
                        format!(
                            "{:?} uses {{{name}}}, but tag_pattern '{}' has no group named {name:?}; {available}",
                            policy.version, policy.tag_pattern
                        ),
                    ));
                }
                TemplatePart::Group(_) => {}
            }
        }
        if let Some(projects) = &policy.projects {
            if projects.is_empty() {
                return Err(self.invalid(
                    format!("{at}.projects"),
                    "is empty; name at least one project, or remove the key to use the repository's projects",
                ));
            }
            for (k, slug) in projects.iter().enumerate() {
                self.check_project_ref(format!("{at}.projects[{k}]"), slug)?;
            }
        }
        for (k, path) in policy.paths.iter().enumerate() {
            let key = format!("{at}.paths[{k}]");
            let trimmed = path.trim();
            if trimmed.is_empty() {
                return Err(self.invalid(
                    key,
                    "is empty; write a directory or file relative to the repository root, e.g. packages/ui",
                ));
            }
            if trimmed.starts_with('/') || trimmed.starts_with('\\') {
                return Err(self.invalid(
                    key,
                    format!(
                        "{path:?} must be relative to the repository root, e.g. {:?}",
                        trimmed.trim_start_matches(['/', '\\'])
                    ),
                ));
            }
            if trimmed.split(['/', '\\']).any(|segment| segment == "..") {
                return Err(self.invalid(
                    key,
                    format!("{path:?} must stay inside the repository; remove the '..'"),
                ));
            }
        }
        Ok(())
    }

    fn validate_artifacts_and_limits(&self) -> Result<(), ConfigError> {
        for (i, dir) in self.artifacts.drop_dirs.iter().enumerate() {
            if dir.as_os_str().is_empty() {
                return Err(self.invalid(
                    format!("artifacts.drop_dirs[{i}]"),
                    "is empty; write the directory CI drops artifact bundles into",
                ));
            }
        }
        let sizes: [(&str, u64); 5] = [
            ("artifacts.max_file_size", self.artifacts.max_file_size),
            (
                "artifacts.max_request_size",
                self.artifacts.max_request_size,
            ),
            ("limits.max_json_body", self.limits.max_json_body as u64),
            ("limits.max_upload_body", self.limits.max_upload_body as u64),
            (
                "limits.max_unpacked_bundle",
                self.limits.max_unpacked_bundle,
            ),
        ];
        if self.limits.ingest_queue == 0 {
            return Err(self.invalid(
                "limits.ingest_queue",
                "must be greater than 0; write how many ingest requests may wait, e.g. 512",
            ));
        }
        for (key, value) in sizes {
            if value == 0 {
                return Err(self.invalid(
                    key,
                    "must be greater than 0; write a number of bytes or a size such as \"32 MiB\"",
                ));
            }
        }
        let upload = self.limits.max_upload_body as u64;
        if self.artifacts.max_request_size >= upload {
            return Err(self.invalid(
                "artifacts.max_request_size",
                format!(
                    "{} must be below limits.max_upload_body ({}), or sentry-cli's upload requests will be refused; lower it or raise limits.max_upload_body",
                    format_size(self.artifacts.max_request_size),
                    format_size(upload)
                ),
            ));
        }
        Ok(())
    }

    fn validate_github(&self) -> Result<(), ConfigError> {
        check_url(&self.github.api_url, true)
            .map_err(|message| self.invalid("github.api_url", message))
    }

    fn validate_schedules(&self) -> Result<(), ConfigError> {
        for (i, schedule) in self.schedules.iter().enumerate() {
            let at = format!("schedules[{i}]");
            if schedule.name.trim().is_empty() {
                return Err(self.invalid(
                    format!("{at}.name"),
                    "is empty; name the schedule, e.g. \"reconcile\"",
                ));
            }
            if let Some(first) = self.schedules[..i]
                .iter()
                .position(|s| s.name == schedule.name)
            {
                return Err(self.invalid(
                    format!("{at}.name"),
                    format!(
                        "{:?} is already used by schedules[{first}]; schedule names must be unique",
                        schedule.name
                    ),
                ));
            }
            schedule
                .schedule()
                .map_err(|err| self.invalid(format!("{at}.cron"), err.to_string()))?;
            match (schedule.job, schedule.keep_days) {
                (JobKind::PruneArtifacts, None) => {
                    return Err(self.invalid(
                        format!("{at}.keep_days"),
                        "is required for job prune_artifacts (artifacts uploaded more than keep_days days ago are deleted); add e.g. keep_days: 90",
                    ));
                }
                (JobKind::PruneArtifacts, Some(0)) => {
                    return Err(self.invalid(
                        format!("{at}.keep_days"),
                        "must be at least 1 (0 would delete every artifact)",
                    ));
                }
                (JobKind::Reconcile | JobKind::Backup | JobKind::Health, Some(_)) => {
                    return Err(self.invalid(
                        format!("{at}.keep_days"),
                        "is only used by job prune_artifacts; remove it",
                    ));
                }
                _ => {}
            }
            match (schedule.job, &schedule.dir, schedule.keep) {
                (JobKind::Backup, None, _) => {
                    return Err(self.invalid(
                        format!("{at}.dir"),
                        "is required for job backup: the directory the copies go to, e.g. dir: /var/backups/shiplog",
                    ));
                }
                (JobKind::Backup, _, Some(0)) => {
                    return Err(self.invalid(format!("{at}.keep"), "must be at least 1"));
                }
                (JobKind::Reconcile | JobKind::PruneArtifacts | JobKind::Health, Some(_), _) => {
                    return Err(
                        self.invalid(format!("{at}.dir"), "is only used by job backup; remove it")
                    );
                }
                (JobKind::Reconcile | JobKind::PruneArtifacts | JobKind::Health, _, Some(_)) => {
                    return Err(self.invalid(
                        format!("{at}.keep"),
                        "is only used by job backup; remove it",
                    ));
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// Why `slug` is not a valid Sentry slug, or `None` if it is.
fn slug_problem(slug: &str) -> Option<String> {
    if slug.is_empty() {
        return Some(
            "is empty; use lowercase letters, digits, '-' or '_', e.g. \"web\"".to_owned(),
        );
    }
    if !slug
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
    {
        return Some(format!(
            "{slug:?} must be lowercase letters, digits, '-' or '_'"
        ));
    }
    if slug.len() > SLUG_MAX_LEN {
        return Some(format!(
            "{slug:?} is {} characters long; slugs have at most {SLUG_MAX_LEN}",
            slug.len()
        ));
    }
    if slug.chars().all(|c| c.is_ascii_digit()) {
        return Some(format!(
            "{slug:?} must not be all digits (Sentry reads a number as an id); add a letter"
        ));
    }
    None
}

/// `owner/repo` (exactly two segments when `exact`, else two or more).
fn is_repo_name(name: &str, exact: bool) -> bool {
    let segments: Vec<&str> = name.split('/').collect();
    let count_ok = if exact {
        segments.len() == 2
    } else {
        segments.len() >= 2
    };
    count_ok
        && segments.iter().all(|segment| {
            !segment.is_empty()
                && *segment != "."
                && *segment != ".."
                && segment
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        })
}

/// Checks an http(s) URL; `allow_path` permits a path after the host. Returns the message.
fn check_url(url: &str, allow_path: bool) -> Result<(), String> {
    let lower = url.to_ascii_lowercase();
    let scheme_len = if lower.starts_with("http://") {
        "http://".len()
    } else if lower.starts_with("https://") {
        "https://".len()
    } else {
        return Err(format!(
            "{url:?} must start with http:// or https://, e.g. \"https://shiplog.example.com\""
        ));
    };
    if url.chars().any(char::is_whitespace) {
        return Err(format!("{url:?} must not contain spaces"));
    }
    let rest = &url[scheme_len..];
    let host_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (host, tail) = rest.split_at(host_end);
    if host.is_empty() {
        return Err(format!("{url:?} has no host"));
    }
    if tail.contains(['?', '#']) {
        return Err(format!("{url:?} must not have a query or fragment"));
    }
    if !allow_path && !tail.is_empty() && tail != "/" {
        return Err(format!(
            "{url:?} has a path; sentry-cli calls the API at <url>/api/0/, so shiplog must be served at the root of a host or port, e.g. \"{}{host}\"",
            &url[..scheme_len]
        ));
    }
    Ok(())
}

/// The useful line of a regex error (its `Display` spans several lines, with a caret).
fn describe_regex_error(err: &regex::Error) -> String {
    match err {
        regex::Error::Syntax(text) => {
            let lines: Vec<&str> = text.lines().collect();
            let detail = lines
                .iter()
                .find_map(|line| line.strip_prefix("error: "))
                .unwrap_or("syntax error");
            // Line 0 is a heading, line 1 the pattern and line 2 a caret line under it, both
            // indented by four spaces.
            let position = lines
                .get(2)
                .filter(|line| {
                    let carets = line.trim();
                    !carets.is_empty() && carets.chars().all(|c| c == '^')
                })
                .and_then(|line| line.find('^'))
                .map(|col| col.saturating_sub(4) + 1);
            match position {
                Some(pos) => format!("{detail} (at character {pos})"),
                None => detail.to_owned(),
            }
        }
        regex::Error::CompiledTooBig(limit) => {
            format!("it compiles to more than {limit} bytes; simplify it")
        }
        other => other.to_string(),
    }
}

fn format_size(bytes: u64) -> String {
    for (unit, size) in [("GiB", GIB), ("MiB", MIB), ("KiB", KIB)] {
        if bytes >= size && bytes.is_multiple_of(size) {
            return format!("{} {unit}", bytes / size);
        }
    }
    format!("{bytes} bytes")
}

// ---------------------------------------------------------------------------------------------
// Version templates
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
enum TemplatePart {
    Literal(String),
    Group(String),
}

/// Splits `web@{version}` into literal text and `{group}` references; `{{`/`}}` are braces.
fn parse_template(template: &str) -> Result<Vec<TemplatePart>, String> {
    let mut parts = Vec::new();
    let mut literal = String::new();
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                literal.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                literal.push('}');
            }
            '{' => {
                let mut name = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some(c) => name.push(c),
                        None => {
                            return Err(
                                "has a '{' with no closing '}'; write {version}, or {{ for a literal brace"
                                    .to_owned(),
                            );
                        }
                    }
                }
                let valid = name
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if !valid {
                    return Err(format!(
                        "has '{{{name}}}', which is not a group name; write {{version}} or another named group of tag_pattern, or {{{{ for a literal brace"
                    ));
                }
                if !literal.is_empty() {
                    parts.push(TemplatePart::Literal(std::mem::take(&mut literal)));
                }
                parts.push(TemplatePart::Group(name));
            }
            '}' => {
                return Err(
                    "has a '}' with no opening '{'; write }} for a literal brace".to_owned(),
                );
            }
            c => literal.push(c),
        }
    }
    if !literal.is_empty() {
        parts.push(TemplatePart::Literal(literal));
    }
    Ok(parts)
}

// ---------------------------------------------------------------------------------------------
// Cron expressions
// ---------------------------------------------------------------------------------------------

/// Parses a schedule's cron expression.
///
/// * 6 fields `sec min hour day-of-month month day-of-week`, optionally a 7th (year), and the
///   shorthands `@yearly`/`@annually`, `@monthly`, `@weekly`, `@daily`/`@midnight`, `@hourly`:
///   passed to the `cron` crate. A **numeric day-of-week is rejected** here, because 6-field
///   dialects number days differently (the `cron` crate and Quartz: 1 = Sunday; Spring: 1 =
///   Monday); use names (`MON-FRI`, `SUN`). `*`, `?` and `*/n` are accepted.
/// * 5 fields `min hour day-of-month month day-of-week` (crontab): seconds are 0, and
///   day-of-week is read with **crontab numbering** (0 or 7 = Sunday, 1 = Monday … 6 =
///   Saturday; names, ranges, lists and steps work) and translated to day names. Restricting
///   both day-of-month and day-of-week is rejected: crontab runs when either matches, the
///   scheduler only when both do.
///
/// Day-of-month and day-of-week are combined with AND in every form.
pub fn parse_cron(expr: &str) -> Result<cron::Schedule, ScheduleError> {
    let trimmed = expr.trim();
    if trimmed.is_empty() {
        return Err(ScheduleError(
            "is empty; write e.g. \"*/5 * * * *\" (crontab) or \"0 */5 * * * *\" (with seconds)"
                .to_owned(),
        ));
    }
    if trimmed.starts_with('@') {
        let native = match trimmed.to_ascii_lowercase().as_str() {
            "@annually" => "@yearly".to_owned(),
            "@midnight" => "@daily".to_owned(),
            "@reboot" => {
                return Err(ScheduleError(format!(
                    "{expr:?}: @reboot is not supported; reconcile already runs at start-up"
                )));
            }
            other => other.to_owned(),
        };
        return parse_native(expr, &native);
    }
    let fields: Vec<&str> = trimmed.split_whitespace().collect();
    match fields.len() {
        5 => parse_native(expr, &crontab_to_native(expr, &fields)?),
        6 | 7 => {
            let dow = fields[5];
            let numeric = dow.split(',').any(|item| {
                let base = item.split('/').next().unwrap_or(item);
                base.chars().any(|c| c.is_ascii_digit())
            });
            if numeric {
                return Err(ScheduleError(format!(
                    "{expr:?}: day-of-week {dow:?} is a number, and 6-field cron dialects number days differently (here 1 = Sunday, elsewhere 1 = Monday); write day names, e.g. MON-FRI or SUN"
                )));
            }
            parse_native(expr, &fields.join(" "))
        }
        n => Err(ScheduleError(format!(
            "{expr:?} has {n} fields; write 5 (crontab: minute hour day-of-month month day-of-week) or 6 (second minute hour day-of-month month day-of-week), optionally with a 7th for the year"
        ))),
    }
}

fn parse_native(original: &str, native: &str) -> Result<cron::Schedule, ScheduleError> {
    cron::Schedule::from_str(native).map_err(|err| {
        // The crate's message repeats the expression with a caret line; keep the last line
        // that explains something.
        let text = err.to_string();
        let detail = text
            .lines()
            .map(str::trim)
            .rfind(|line| !line.is_empty() && *line != native.trim() && !line.starts_with('^'))
            .unwrap_or("syntax error");
        let read_as = if original.trim() == native {
            String::new()
        } else {
            format!(" (read as {native:?})")
        };
        ScheduleError(format!(
            "{original:?} is not a valid cron expression{read_as}: {detail}"
        ))
    })
}

/// `min hour dom mon dow` → `0 min hour dom mon dow'` with day-of-week translated to names.
fn crontab_to_native(expr: &str, fields: &[&str]) -> Result<String, ScheduleError> {
    let is_star = |field: &str| field.starts_with('*') || field.starts_with('?');
    let (dom, dow) = (fields[2], fields[4]);
    if !is_star(dom) && !is_star(dow) {
        return Err(ScheduleError(format!(
            "{expr:?} restricts both day-of-month and day-of-week; crontab runs when either matches but this scheduler requires both, so set one of them to * (use two schedules for either-or)"
        )));
    }
    let dow = if dow == "*" || dow == "?" {
        dow.to_owned()
    } else {
        translate_crontab_dow(dow)
            .map_err(|problem| ScheduleError(format!("{expr:?}: day-of-week {dow:?} {problem}")))?
    };
    Ok(format!(
        "0 {} {} {} {} {dow}",
        fields[0], fields[1], fields[2], fields[3]
    ))
}

const DAY_NAMES: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];

/// Expands a crontab day-of-week field (0/7 = Sunday) into a list of day names.
fn translate_crontab_dow(field: &str) -> Result<String, String> {
    let mut days = [false; 7];
    for item in field.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => {
                let step: usize = step
                    .parse()
                    .ok()
                    .filter(|s| (1..=7).contains(s))
                    .ok_or_else(|| format!("has step {step:?}; steps are 1 to 7"))?;
                (range, Some(step))
            }
            None => (item, None),
        };
        let (start, end) = if range == "*" || range == "?" {
            (0, 7)
        } else if let Some((a, b)) = range.split_once('-') {
            (crontab_day(a)?, crontab_day(b)?)
        } else {
            let day = crontab_day(range)?;
            // `N/step` runs from N to the end of the week.
            (day, if step.is_some() { 7 } else { day })
        };
        if start > end {
            return Err(format!(
                "has the range {range:?}, which runs backwards; ranges cannot wrap past Saturday (write e.g. 5-7 or FRI-SAT,SUN)"
            ));
        }
        for day in (start..=end).step_by(step.unwrap_or(1)) {
            days[day % 7] = true;
        }
    }
    let names: Vec<&str> = DAY_NAMES
        .iter()
        .zip(days)
        .filter_map(|(name, on)| on.then_some(*name))
        .collect();
    Ok(names.join(","))
}

/// A crontab day: 0–7 (0 and 7 = Sunday) or a name (`sun`, `monday`, ...).
fn crontab_day(text: &str) -> Result<usize, String> {
    if text.is_empty() {
        return Err("has an empty item; write e.g. 1-5 or MON-FRI".to_owned());
    }
    if text.chars().all(|c| c.is_ascii_digit()) {
        return text
            .parse::<usize>()
            .ok()
            .filter(|day| *day <= 7)
            .ok_or_else(|| format!("has {text:?}; crontab days are 0-7 (0 and 7 = Sunday)"));
    }
    let lower = text.to_ascii_lowercase();
    let day = match lower.as_str() {
        "sun" | "sunday" => 0,
        "mon" | "monday" => 1,
        "tue" | "tues" | "tuesday" => 2,
        "wed" | "wednesday" => 3,
        "thu" | "thurs" | "thursday" => 4,
        "fri" | "friday" => 5,
        "sat" | "saturday" => 6,
        _ => {
            return Err(format!(
                "has {text:?}, which is not a day; use 0-7 or SUN, MON, ... SAT"
            ));
        }
    };
    Ok(day)
}

// ---------------------------------------------------------------------------------------------
// Sizes
// ---------------------------------------------------------------------------------------------

/// Sizes in the configuration: a number of bytes, or a string `"<n> <unit>"` with unit `B`,
/// `KiB`, `MiB`, `GiB` or `TiB` (case-insensitive, 1024-based).
/// Timeouts and periods: a whole number of seconds, or a string such as `"500ms"`, `"30s"`,
/// `"2m"`, `"1h"`, `"5d"`, `"2w"`.
pub(crate) mod seconds {
    use super::*;

    pub(super) fn parse(text: &str) -> Result<Duration, String> {
        let text = text.trim();
        let digits_end = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(digits_end);
        let help =
            || format!("{text:?} is not a duration; write seconds or e.g. \"30s\", \"2m\", \"5d\"");
        let number: u64 = number.parse().map_err(|_| help())?;
        let millis = match unit.trim() {
            "ms" => Some(number),
            "" | "s" => number.checked_mul(1000),
            "m" => number.checked_mul(60_000),
            "h" => number.checked_mul(3_600_000),
            "d" => number.checked_mul(86_400_000),
            "w" => number.checked_mul(604_800_000),
            _ => return Err(help()),
        };
        let millis = millis.ok_or_else(|| format!("{text:?} is too long"))?;
        if millis == 0 {
            return Err("must be greater than 0".to_owned());
        }
        Ok(Duration::from_millis(millis))
    }

    struct SecondsVisitor;

    impl Visitor<'_> for SecondsVisitor {
        type Value = Duration;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a duration: a number of seconds or a string such as \"30s\"")
        }

        fn visit_u64<E: de::Error>(self, value: u64) -> Result<Duration, E> {
            parse(&value.to_string()).map_err(E::custom)
        }

        fn visit_i64<E: de::Error>(self, value: i64) -> Result<Duration, E> {
            u64::try_from(value)
                .map_err(|_| E::custom(format!("{value} is negative")))
                .and_then(|v| self.visit_u64(v))
        }

        fn visit_str<E: de::Error>(self, value: &str) -> Result<Duration, E> {
            parse(value).map_err(E::custom)
        }
    }

    pub(crate) fn duration<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Duration, D::Error> {
        deserializer.deserialize_any(SecondsVisitor)
    }

    /// A duration as whole seconds, at least one (health's periods).
    pub(super) fn whole<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
        let d = duration(deserializer)?;
        match i64::try_from(d.as_secs()) {
            Ok(secs) if secs >= 1 => Ok(secs),
            _ => Err(de::Error::custom("must be at least 1s")),
        }
    }
}

mod size {
    use super::*;

    pub(super) fn parse(text: &str) -> Result<u64, String> {
        let text = text.trim();
        let digits_end = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(digits_end);
        let help = || {
            format!(
                "{text:?} is not a size; write a number of bytes or e.g. \"512 KiB\", \"32 MiB\", \"2 GiB\""
            )
        };
        let number: u64 = number.parse().map_err(|_| help())?;
        let multiplier = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "kib" => KIB,
            "mib" => MIB,
            "gib" => GIB,
            "tib" => 1024 * GIB,
            _ => return Err(help()),
        };
        number
            .checked_mul(multiplier)
            .ok_or_else(|| format!("{text:?} is too large"))
    }

    struct SizeVisitor;

    impl Visitor<'_> for SizeVisitor {
        type Value = u64;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a size: a number of bytes or a string such as \"32 MiB\"")
        }

        fn visit_u64<E: de::Error>(self, value: u64) -> Result<u64, E> {
            Ok(value)
        }

        fn visit_i64<E: de::Error>(self, value: i64) -> Result<u64, E> {
            u64::try_from(value)
                .map_err(|_| E::custom(format!("{value} is negative; sizes are at least 0")))
        }

        fn visit_str<E: de::Error>(self, value: &str) -> Result<u64, E> {
            parse(value).map_err(E::custom)
        }
    }

    pub(super) fn bytes_u64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
        deserializer.deserialize_any(SizeVisitor)
    }

    pub(super) fn bytes_usize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<usize, D::Error> {
        let bytes = deserializer.deserialize_any(SizeVisitor)?;
        usize::try_from(bytes).map_err(|_| de::Error::custom(format!("{bytes} is too large")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const EXAMPLE: &str = include_str!("../config.example.yaml");

    #[test]
    fn health_periods() {
        let config = Config::parse(
            "health:\n  max_session_age: 8d\n  retention: 36h\n",
            "c.yaml",
            &no_env,
        )
        .unwrap();
        assert_eq!(config.health.max_session_age, 8 * 86400);
        assert_eq!(config.health.retention, 36 * 3600);
        assert_eq!(Config::default().health, HealthConfig::default());
        let err = Config::parse("health:\n  retention: soon\n", "c.yaml", &no_env).unwrap_err();
        assert!(err.to_string().contains("is not a duration"), "{err}");
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name: &str| map.get(name).cloned()
    }

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::from_yaml_str_with_env(text, "config.yaml", &no_env)
    }

    fn parse_ok(text: &str) -> Config {
        match parse(text) {
            Ok(config) => config,
            Err(err) => panic!("expected {text:?} to parse, got: {err}"),
        }
    }

    fn error(text: &str) -> String {
        match parse(text) {
            Ok(config) => panic!("expected an error for {text:?}, got {config:?}"),
            Err(err) => err.to_string(),
        }
    }

    /// The configuration with provenance reset, for comparing with defaults.
    fn without_provenance(mut config: Config) -> Config {
        config.provenance = Provenance::builtin();
        config
    }

    // --- defaults ------------------------------------------------------------------------

    #[test]
    fn empty_file_is_the_defaults() {
        for text in ["", "\n", "# nothing here\n", "---\n"] {
            assert_eq!(
                without_provenance(parse_ok(text)),
                Config::default(),
                "{text:?}"
            );
        }
        let config = Config::default();
        assert_eq!(config.listen, "127.0.0.1:8740");
        assert_eq!(config.organization, "default");
        assert_eq!(config.public_url, None);
        assert_eq!(config.data_dir, None);
        assert_eq!(config.github.api_url, "https://api.github.com");
        assert_eq!(config.artifacts.index_min_files, 10);
        assert_eq!(config.artifacts.after_success, AfterSuccess::Remove);
        assert!(!config.artifacts.create_missing_release);
        assert_eq!(config.artifacts.max_file_size, 2 * 1024 * 1024 * 1024);
        assert_eq!(config.artifacts.max_request_size, 32 * 1024 * 1024);
        assert_eq!(config.limits.max_json_body, 8 * 1024 * 1024);
        assert_eq!(config.limits.max_upload_body, 64 * 1024 * 1024);
        assert_eq!(config.schedules.len(), 1);
        assert_eq!(config.schedules[0].job, JobKind::Reconcile);
        assert_eq!(config.schedules[0].cron, "0 */5 * * * *");
        assert!(config.validate().is_ok());
    }

    #[test]
    fn embedded_default_parses_to_the_defaults() {
        let config = Config::from_yaml_str_with_env(DEFAULT_CONFIG_YAML, BUILTIN_ORIGIN, &no_env)
            .expect("embedded default");
        assert_eq!(config, Config::default());
    }

    #[test]
    fn load_without_a_file_uses_the_embedded_default() {
        let config = Config::load_with_env(None, &no_env).expect("defaults");
        assert_eq!(config, Config::default());
    }

    #[test]
    fn keys_without_values_count_as_absent() {
        let config = parse_ok(
            "projects:\nrepositories:\nartifacts:\ngithub:\nschedules:\nlimits:\npublic_url:\ndata_dir: ''\nstorage:\n",
        );
        assert_eq!(without_provenance(config), Config::default());
    }

    #[test]
    fn explicitly_empty_schedules_run_nothing() {
        assert!(parse_ok("schedules: []").schedules.is_empty());
    }

    #[test]
    fn a_repository_without_releases_gets_the_default_policy() {
        let config = parse_ok("repositories:\n  - name: acme/web\n    path: /srv/web\n");
        assert_eq!(
            config.repositories[0].releases,
            vec![ReleasePolicy::default()]
        );
        let policy = &config.repositories[0].releases[0];
        assert_eq!(policy.on, ReleaseTrigger::Tag);
        assert_eq!(policy.tag_pattern, r"^v?(?P<version>.+)$");
        assert_eq!(policy.version, "{version}");
        assert_eq!(policy.initial_depth, 20);
        assert_eq!(policy.version_for_tag("v1.2.3").as_deref(), Some("1.2.3"));
        assert_eq!(policy.version_for_tag("1.2.3").as_deref(), Some("1.2.3"));

        let none =
            parse_ok("repositories:\n  - name: acme/web\n    path: /srv/web\n    releases: []\n");
        assert!(none.repositories[0].releases.is_empty());
    }

    // --- the example file ----------------------------------------------------------------

    #[test]
    fn example_config_parses_and_validates() {
        let config = Config::from_yaml_str_with_env(EXAMPLE, "config.example.yaml", &no_env)
            .unwrap_or_else(|err| panic!("{err}"));
        config.validate().expect("valid");
        assert_eq!(config.organization, "acme");
        assert_eq!(config.public_url, None);
        assert_eq!(config.github.webhook_secret, None);
        assert_eq!(config.github.token, None);
        assert_eq!(config.projects.len(), 3);

        let web = config.repository("acme/web").expect("acme/web");
        assert_eq!(web.path.as_deref(), Some(Path::new("/srv/src/acme-web")));
        assert_eq!(web.releases.len(), 2);
        assert_eq!(
            web.release_for_tag("v1.2.0").map(|(_, v)| v).as_deref(),
            Some("web@1.2.0")
        );
        let (ui_policy, ui_version) = web.release_for_tag("ui-0.4.3").expect("ui tag");
        assert_eq!(ui_version, "ui@0.4.3");
        assert_eq!(web.policy_projects(ui_policy), ["ui".to_owned()]);
        assert_eq!(ui_policy.paths, ["packages/ui".to_owned()]);
        assert_eq!(web.policy_projects(&web.releases[0]), ["web".to_owned()]);
        assert!(web.release_for_tag("nightly").is_none());

        let api = config.repository("acme/api").expect("acme/api");
        assert_eq!(api.github.as_deref(), Some("acme/api"));
        assert_eq!(api.releases, vec![ReleasePolicy::default()]);
        assert_eq!(
            api.web_url(&config.github).as_deref(),
            Some("https://github.com/acme/api")
        );

        assert_eq!(
            config.artifacts.drop_dirs,
            [PathBuf::from("/var/lib/shiplog/drop")]
        );
        assert_eq!(config.artifacts.max_file_size, 2 * GIB);
        assert_eq!(config.schedules.len(), 3);
        assert_eq!(config.schedules[1].job, JobKind::PruneArtifacts);
        assert_eq!(config.schedules[1].keep_days, Some(90));
        assert_eq!(config.schedules[2].job, JobKind::Backup);
        assert_eq!(config.schedules[2].keep, Some(7));
        assert_eq!(config.metrics, MetricsConfig::default());
        for schedule in &config.schedules {
            schedule.schedule().expect("cron parses");
        }
        assert_eq!(config.limits, LimitsConfig::default());
    }

    #[test]
    fn example_config_takes_secrets_from_the_environment() {
        let env = env_of(&[
            ("GITHUB_WEBHOOK_SECRET", "s3cret"),
            ("GITHUB_TOKEN", "ghp_x"),
        ]);
        let config =
            Config::from_yaml_str_with_env(EXAMPLE, "config.example.yaml", &env).expect("valid");
        assert_eq!(config.github.webhook_secret.as_deref(), Some("s3cret"));
        assert_eq!(config.github.token.as_deref(), Some("ghp_x"));
    }

    // --- environment substitution --------------------------------------------------------

    #[test]
    fn env_substitution() {
        let env = env_of(&[("ORG", "acme"), ("EMPTY", ""), ("PORT", "9000")]);
        let text = "organization: ${ORG}\nlisten: ${HOST:-0.0.0.0}:${PORT}\npublic_url: ${EMPTY:-http://x.test}\n";
        let config = Config::from_yaml_str_with_env(text, "c.yaml", &env).expect("valid");
        assert_eq!(config.organization, "acme");
        assert_eq!(config.listen, "0.0.0.0:9000");
        assert_eq!(config.public_url.as_deref(), Some("http://x.test"));
    }

    #[test]
    fn env_substitution_escapes_and_lone_dollars() {
        let env = env_of(&[("X", "1")]);
        let out = substitute_env("a: $$X $${X} ${X} '^v(.+)$' $ end\n", "c.yaml", &env)
            .expect("substituted");
        assert_eq!(out, "a: $X ${X} 1 '^v(.+)$' $ end\n");
        // A variable set to the empty string is used as is without a default.
        let env = env_of(&[("E", "")]);
        assert_eq!(
            substitute_env("a: '${E}'", "c.yaml", &env).expect("ok"),
            "a: ''"
        );
        // Comment lines are not substituted.
        let out = substitute_env("  # uses ${UNSET}\na: 1\n", "c.yaml", &no_env).expect("ok");
        assert_eq!(out, "  # uses ${UNSET}\na: 1\n");
    }

    #[test]
    fn missing_env_var_is_an_error_naming_it_and_its_line() {
        let text = "listen: 127.0.0.1:8740\ngithub:\n  token: ${GITHUB_TOKEN}\n";
        assert_eq!(
            error(text),
            "config.yaml:3: environment variable GITHUB_TOKEN is not set; set it, or give a default with ${GITHUB_TOKEN:-default}"
        );
    }

    #[test]
    fn malformed_env_references_are_errors() {
        assert_eq!(
            error("organization: ${ORG\n"),
            "config.yaml:1: '${' has no closing '}'; write ${VAR} or ${VAR:-default}, or $$ for a literal $"
        );
        assert_eq!(
            error("a: 1\norganization: ${1X}\n"),
            "config.yaml:2: '${1X}' is not a variable reference; write ${VAR} or ${VAR:-default} with a name of letters, digits and '_', or $$ for a literal $"
        );
    }

    // --- overrides -----------------------------------------------------------------------

    #[test]
    fn environment_overrides() {
        let env = env_of(&[
            ("SHIPLOG_LISTEN", "0.0.0.0:9999"),
            ("SHIPLOG_DATA_DIR", "/data"),
            ("SHIPLOG_PUBLIC_URL", "https://releases.acme.dev"),
            ("GITHUB_WEBHOOK_SECRET", "from-env"),
            ("GITHUB_TOKEN", "token-from-env"),
        ]);
        let mut config = parse_ok("listen: 127.0.0.1:1\ngithub:\n  token: from-file\n");
        config.apply_env_overrides(&env);
        assert_eq!(config.listen, "0.0.0.0:9999");
        assert_eq!(config.data_dir.as_deref(), Some(Path::new("/data")));
        assert_eq!(
            config.public_url.as_deref(),
            Some("https://releases.acme.dev")
        );
        assert_eq!(config.github.webhook_secret.as_deref(), Some("from-env"));
        // The file's token wins over GITHUB_TOKEN.
        assert_eq!(config.github.token.as_deref(), Some("from-file"));
        config.validate().expect("valid");
    }

    #[test]
    fn errors_name_the_override_that_supplied_the_value() {
        let env = env_of(&[("SHIPLOG_LISTEN", "localhost:80")]);
        let mut config = parse_ok("");
        config.apply_env_overrides(&env);
        assert_eq!(
            config.validate().expect_err("invalid").to_string(),
            "SHIPLOG_LISTEN: listen: \"localhost:80\" is not an IP address and port; write e.g. 127.0.0.1:8740 (this machine only) or 0.0.0.0:8740 (every interface)"
        );
        config.apply_overrides(Some("nope".to_owned()), Some(PathBuf::from("/tmp/x")));
        assert!(
            config
                .validate()
                .expect_err("invalid")
                .to_string()
                .starts_with("--listen: listen: \"nope\"")
        );
        assert_eq!(config.data_dir.as_deref(), Some(Path::new("/tmp/x")));
        config.apply_overrides(Some("[::1]:0".to_owned()), None);
        config.validate().expect("valid");
    }

    #[test]
    fn load_reads_shiplog_config_and_resolves_relative_paths() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("shiplog.yaml");
        std::fs::write(
            &file,
            "data_dir: data\nrepositories:\n  - name: acme/web\n    path: ~/src/web\nartifacts:\n  drop_dirs: [drop]\n",
        )
        .expect("write");
        let file_str = file.display().to_string();
        let env = env_of(&[("SHIPLOG_CONFIG", file_str.as_str()), ("HOME", "/home/me")]);
        let config = Config::load_with_env(None, &env).expect("loads");
        assert_eq!(config.provenance.file, file_str);
        assert_eq!(config.data_dir, Some(dir.path().join("data")));
        assert_eq!(
            config.repositories[0].path.as_deref(),
            Some(Path::new("/home/me/src/web"))
        );
        assert_eq!(config.artifacts.drop_dirs, [dir.path().join("drop")]);
    }

    #[test]
    fn load_reports_unreadable_and_invalid_files_with_their_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("missing.yaml");
        let err = Config::load_with_env(Some(&missing), &no_env).expect_err("missing");
        assert!(
            err.to_string().starts_with(&format!(
                "{}: cannot read the config file: ",
                missing.display()
            )),
            "{err}"
        );
        let bad = dir.path().join("bad.yaml");
        std::fs::write(&bad, "projects:\n  - slug: Web App\n").expect("write");
        let err = Config::load_with_env(Some(&bad), &no_env).expect_err("invalid");
        assert_eq!(
            err.to_string(),
            format!(
                "{}: projects[0].slug: \"Web App\" must be lowercase letters, digits, '-' or '_'",
                bad.display()
            )
        );
    }

    #[test]
    fn data_dir_resolution() {
        let mut config = Config::default();
        let xdg = env_of(&[("XDG_DATA_HOME", "/xdg"), ("HOME", "/home/me")]);
        assert_eq!(
            config.data_dir_with_env(&xdg),
            PathBuf::from("/xdg/shiplog")
        );
        let relative_xdg = env_of(&[("XDG_DATA_HOME", "rel"), ("HOME", "/home/me")]);
        assert_eq!(
            config.data_dir_with_env(&relative_xdg),
            PathBuf::from("/home/me/.local/share/shiplog")
        );
        assert_eq!(
            config.data_dir_with_env(&no_env),
            PathBuf::from("shiplog-data")
        );
        config.data_dir = Some(PathBuf::from("~/shiplog"));
        assert_eq!(
            config.data_dir_with_env(&xdg),
            PathBuf::from("/home/me/shiplog")
        );
        config.data_dir = Some(PathBuf::from("~"));
        assert_eq!(config.data_dir_with_env(&xdg), PathBuf::from("/home/me"));
        config.data_dir = Some(PathBuf::from("~other/x"));
        assert_eq!(config.data_dir_with_env(&xdg), PathBuf::from("~other/x"));
    }

    #[test]
    fn effective_public_url() {
        let mut config = Config::default();
        assert_eq!(config.effective_public_url(None), "http://127.0.0.1:8740");
        let bound: SocketAddr = "127.0.0.1:41234".parse().expect("addr");
        assert_eq!(
            config.effective_public_url(Some(bound)),
            "http://127.0.0.1:41234"
        );
        config.listen = "0.0.0.0:8740".to_owned();
        assert_eq!(config.effective_public_url(None), "http://127.0.0.1:8740");
        config.listen = "[::]:8740".to_owned();
        assert_eq!(config.effective_public_url(None), "http://[::1]:8740");
        config.public_url = Some("https://releases.acme.dev/".to_owned());
        assert_eq!(
            config.effective_public_url(Some(bound)),
            "https://releases.acme.dev"
        );
    }

    // --- secrets -------------------------------------------------------------------------

    #[test]
    fn secrets_are_redacted_in_debug() {
        let config = parse_ok("github:\n  webhook_secret: hunter2\n  token: ghp_abcdef\n");
        let debug = format!("{config:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(!debug.contains("ghp_abcdef"), "{debug}");
        assert!(
            debug.contains("webhook_secret: Some(\"<redacted>\")"),
            "{debug}"
        );
        assert!(debug.contains("token: Some(\"<redacted>\")"), "{debug}");
        let none = format!("{:?}", GithubConfig::default());
        assert!(none.contains("webhook_secret: None"), "{none}");
    }

    // --- release policies ----------------------------------------------------------------

    fn policy(pattern: &str, template: &str) -> ReleasePolicy {
        ReleasePolicy {
            tag_pattern: pattern.to_owned(),
            version: template.to_owned(),
            ..ReleasePolicy::default()
        }
    }

    #[test]
    fn version_for_tag() {
        let web = policy("^v(?P<version>.+)$", "web@{version}");
        let ui = policy("^ui-(?P<version>.+)$", "ui@{version}");
        assert_eq!(web.version_for_tag("v1.2.0").as_deref(), Some("web@1.2.0"));
        assert_eq!(ui.version_for_tag("ui-0.4.3").as_deref(), Some("ui@0.4.3"));
        assert_eq!(web.version_for_tag("ui-0.4.3"), None);
        assert_eq!(ui.version_for_tag("v1.2.0"), None);
        assert_eq!(web.version_for_tag("release-1"), None);

        let named = policy(
            r"^(?P<app>[a-z]+)/v(?P<version>\d+\.\d+\.\d+)(-(?P<pre>.+))?$",
            "{app}-{version}{{{pre}}}",
        );
        assert_eq!(
            named.version_for_tag("shop/v1.2.3-rc1").as_deref(),
            Some("shop-1.2.3{rc1}")
        );
        // A group that did not take part in the match is empty.
        assert_eq!(
            named.version_for_tag("shop/v1.2.3").as_deref(),
            Some("shop-1.2.3{}")
        );
        // A template without groups gives the same version for every matching tag.
        assert_eq!(
            policy("^stable$", "stable")
                .version_for_tag("stable")
                .as_deref(),
            Some("stable")
        );
    }

    #[test]
    fn policy_trigger_and_other_keys_parse() {
        let config = parse_ok(
            "projects: [{slug: web}]\nrepositories:\n  - name: acme/web\n    path: /w\n    releases:\n      - on: push\n        version: 'main'\n        tag_pattern: '^main$'\n        projects: [web]\n        initial_depth: 5\n      - on: none\n",
        );
        let releases = &config.repositories[0].releases;
        assert_eq!(releases[0].on, ReleaseTrigger::Push);
        assert_eq!(releases[0].initial_depth, 5);
        assert_eq!(
            releases[0].projects.as_deref(),
            Some(&["web".to_owned()][..])
        );
        assert_eq!(releases[1].on, ReleaseTrigger::None);
        // `on: push` and `on: none` policies are not used for tags.
        assert!(config.repositories[0].release_for_tag("main").is_none());
    }

    // --- YAML errors ---------------------------------------------------------------------

    #[test]
    fn unknown_keys_are_errors_with_a_location() {
        assert_eq!(
            error("listen: 127.0.0.1:1\nlistn: 127.0.0.1:2\n"),
            "config.yaml: unknown field `listn`, expected one of `listen`, `public_url`, `data_dir`, `organization`, `projects`, `repositories`, `artifacts`, `github`, `schedules`, `limits`, `metrics`, `health`, `notifications`, `storage` at line 2 column 1"
        );
        assert_eq!(
            error("projects:\n  - slug: web\n    nmae: Web\n"),
            "config.yaml: projects[0]: unknown field `nmae`, expected one of `slug`, `name`, `platform` at line 3 column 5"
        );
        assert_eq!(
            error("repositories:\n  - name: a/b\n    path: /x\n    releases:\n      - tag: x\n"),
            "config.yaml: repositories[0].releases[0]: unknown field `tag`, expected one of `on`, `tag_pattern`, `version`, `projects`, `initial_depth`, `paths` at line 5 column 9"
        );
        assert_eq!(
            error("organization: a\norganization: b\n"),
            "config.yaml: duplicate field `organization` at line 2"
        );
    }

    #[test]
    fn yaml_syntax_and_type_errors_are_one_line_with_a_location() {
        assert_eq!(
            error("listen: '127.0.0.1:1\n"),
            "config.yaml: found unexpected end of stream at line 2 column 1, while scanning a quoted scalar at line 1 column 9"
        );
        assert_eq!(
            error("schedules:\n  - name: x\n    cron: '* * * * *'\n    job: prune\n"),
            "config.yaml: schedules[0].job: unknown variant `prune`, expected one of `reconcile`, `prune_artifacts`, `backup`, `health` at line 4 column 10"
        );
        assert_eq!(
            error("artifacts:\n  after_success: keep\n"),
            "config.yaml: artifacts.after_success: unknown variant `keep`, expected `remove` or `move_to_done` at line 2 column 18"
        );
        assert_eq!(
            error("artifacts:\n  max_file_size: 2 GB\n"),
            "config.yaml: artifacts.max_file_size: \"2 GB\" is not a size; write a number of bytes or e.g. \"512 KiB\", \"32 MiB\", \"2 GiB\" at line 2 column 18"
        );
        assert_eq!(
            error("limits:\n  max_json_body: -1\n"),
            "config.yaml: limits.max_json_body: -1 is negative; sizes are at least 0 at line 2 column 18"
        );
    }

    #[test]
    fn sizes_accept_units() {
        let config = parse_ok(
            "artifacts:\n  max_file_size: 1 GiB\n  max_request_size: 512kib\nlimits:\n  max_json_body: 2048\n  max_upload_body: '1 MiB'\n",
        );
        assert_eq!(config.artifacts.max_file_size, GIB);
        assert_eq!(config.artifacts.max_request_size, 512 * KIB);
        assert_eq!(config.limits.max_json_body, 2048);
        assert_eq!(config.limits.max_upload_body, 1024 * 1024);
        assert_eq!(size::parse("3 TiB"), Ok(3 * 1024 * GIB));
        assert!(size::parse("99999999999999 TiB").is_err());
        assert!(size::parse("MiB").is_err());
    }

    #[test]
    fn limits_take_timeouts_and_the_unpacked_bundle_size() {
        let config = parse_ok(
            "limits:\n  header_timeout: 5\n  idle_timeout: 2m\n  body_timeout: 500ms\n  max_unpacked_bundle: 64MiB\n  ingest_queue: 8\n",
        );
        assert_eq!(config.limits.ingest_queue, 8);
        assert_eq!(LimitsConfig::default().ingest_queue, 512);
        assert_eq!(config.limits.header_timeout, Duration::from_secs(5));
        assert_eq!(config.limits.idle_timeout, Duration::from_secs(120));
        assert_eq!(config.limits.body_timeout, Duration::from_millis(500));
        assert_eq!(config.limits.max_unpacked_bundle, 64 * MIB);
        let defaults = LimitsConfig::default();
        assert_eq!(defaults.header_timeout, Duration::from_secs(30));
        assert_eq!(defaults.idle_timeout, Duration::from_secs(60));
        assert_eq!(defaults.max_unpacked_bundle, 2 * GIB);
        assert!(seconds::parse("0s").is_err());
        assert!(seconds::parse("3 days").is_err());
        assert!(seconds::parse("99999999999999999h").is_err());
        assert!(error("limits:\n  idle_timeout: soon\n").contains("not a duration"));
    }

    // --- validation ----------------------------------------------------------------------

    /// Every validation error, with the exact line it prints.
    #[test]
    fn validation_errors() {
        let repo = |extra: &str| {
            format!(
                "projects: [{{slug: web}}, {{slug: ui}}]\nrepositories:\n  - name: acme/web\n    path: /w\n{extra}"
            )
        };
        let cases: Vec<(String, &str)> = vec![
            (
                "listen: localhost:8740".into(),
                "config.yaml: listen: \"localhost:8740\" is not an IP address and port; write e.g. 127.0.0.1:8740 (this machine only) or 0.0.0.0:8740 (every interface)",
            ),
            (
                "public_url: ftp://x".into(),
                "config.yaml: public_url: \"ftp://x\" must start with http:// or https://, e.g. \"https://shiplog.example.com\"",
            ),
            (
                "public_url: https://acme.dev/shiplog".into(),
                "config.yaml: public_url: \"https://acme.dev/shiplog\" has a path; sentry-cli calls the API at <url>/api/0/, so shiplog must be served at the root of a host or port, e.g. \"https://acme.dev\"",
            ),
            (
                "public_url: http:///x".into(),
                "config.yaml: public_url: \"http:///x\" has no host",
            ),
            (
                "public_url: http://a.b/?x=1".into(),
                "config.yaml: public_url: \"http://a.b/?x=1\" must not have a query or fragment",
            ),
            (
                "organization: Acme".into(),
                "config.yaml: organization: \"Acme\" must be lowercase letters, digits, '-' or '_'",
            ),
            (
                "organization: ''".into(),
                "config.yaml: organization: is empty; use lowercase letters, digits, '-' or '_', e.g. \"web\"",
            ),
            (
                "organization: '1234'".into(),
                "config.yaml: organization: \"1234\" must not be all digits (Sentry reads a number as an id); add a letter",
            ),
            (
                format!("organization: {}", "a".repeat(51)),
                "config.yaml: organization: \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\" is 51 characters long; slugs have at most 50",
            ),
            (
                "projects:\n  - slug: web\n  - slug: Web App\n".into(),
                "config.yaml: projects[1].slug: \"Web App\" must be lowercase letters, digits, '-' or '_'",
            ),
            (
                "projects:\n  - name: Web\n".into(),
                "config.yaml: projects[0].slug: is empty; use lowercase letters, digits, '-' or '_', e.g. \"web\"",
            ),
            (
                "projects:\n  - slug: web\n  - slug: api\n  - slug: web\n".into(),
                "config.yaml: projects[2].slug: \"web\" is already used by projects[0]; project slugs must be unique",
            ),
            (
                "repositories:\n  - path: /w\n".into(),
                "config.yaml: repositories[0].name: is empty; write the owner/repo name sentry-cli and GitHub use, e.g. \"acme/web\"",
            ),
            (
                "repositories:\n  - name: web\n    path: /w\n".into(),
                "config.yaml: repositories[0].name: \"web\" must look like owner/repo (letters, digits, '.', '-' or '_', separated by '/'), e.g. \"acme/web\"",
            ),
            (
                "repositories:\n  - {name: a/b, path: /a}\n  - {name: a/b, path: /b}\n".into(),
                "config.yaml: repositories[1].name: \"a/b\" is already used by repositories[0]; repository names must be unique",
            ),
            (
                "repositories:\n  - name: a/b\n    path: /w\n    github: a/b\n".into(),
                "config.yaml: repositories[0]: has both path and github; set path for a local clone, or github (owner/repo) for a repository reached only through GitHub's API, not both",
            ),
            (
                "repositories:\n  - name: a/b\n".into(),
                "config.yaml: repositories[0]: needs path (a local clone or bare repository) or github (owner/repo, reached through GitHub's API)",
            ),
            (
                "repositories:\n  - name: a/b\n    github: https://github.com/a/b\n".into(),
                "config.yaml: repositories[0].github: \"https://github.com/a/b\" must be owner/repo as on GitHub, e.g. \"acme/web\" (not a URL)",
            ),
            (
                "repositories:\n  - name: a/b\n    github: a/b\n    url: github.com/a/b\n".into(),
                "config.yaml: repositories[0].url: \"github.com/a/b\" must start with http:// or https://, e.g. \"https://shiplog.example.com\"",
            ),
            (
                repo("    projects: [web, api]\n"),
                "config.yaml: repositories[0].projects[1]: \"api\" is not a configured project; add it under projects, or use one of: web, ui",
            ),
            (
                // With no projects configured any well-formed slug is accepted, but it must be a slug.
                "repositories:\n  - name: a/b\n    path: /w\n    projects: [Web]\n".into(),
                "config.yaml: repositories[0].projects[0]: \"Web\" must be lowercase letters, digits, '-' or '_'",
            ),
            (
                repo("    releases:\n      - tag_pattern: '^v(?P<version.+)$'\n"),
                "config.yaml: repositories[0].releases[0].tag_pattern: '^v(?P<version.+)$' is not a valid regular expression: invalid capture group character (at character 15)",
            ),
            (
                repo("    releases:\n      - tag_pattern: '^v((.+)$'\n"),
                "config.yaml: repositories[0].releases[0].tag_pattern: '^v((.+)$' is not a valid regular expression: unclosed group (at character 3)",
            ),
            (
                repo("    releases:\n      - tag_pattern: '^v(.+)$'\n"),
                "config.yaml: repositories[0].releases[0].tag_pattern: '^v(.+)$' has no named group \"version\", which the version template \"{version}\" uses; capture it, e.g. '^v(?P<version>.+)$'",
            ),
            (
                repo(
                    "    releases:\n      - tag_pattern: '^v(?P<version>.+)$'\n        version: 'web@{vers}'\n",
                ),
                "config.yaml: repositories[0].releases[0].version: \"web@{vers}\" uses {vers}, but tag_pattern '^v(?P<version>.+)$' has no group named \"vers\"; its named groups are: version",
            ),
            (
                repo("    releases:\n      - tag_pattern: '^v(.+)$'\n        version: '{v}'\n"),
                "config.yaml: repositories[0].releases[0].version: \"{v}\" uses {v}, but tag_pattern '^v(.+)$' has no group named \"v\"; it has no named groups",
            ),
            (
                repo("    releases:\n      - version: 'web@{version'\n"),
                "config.yaml: repositories[0].releases[0].version: \"web@{version\" has a '{' with no closing '}'; write {version}, or {{ for a literal brace",
            ),
            (
                repo("    releases:\n      - version: 'web@{ver-sion}'\n"),
                "config.yaml: repositories[0].releases[0].version: \"web@{ver-sion}\" has '{ver-sion}', which is not a group name; write {version} or another named group of tag_pattern, or {{ for a literal brace",
            ),
            (
                repo("    releases:\n      - version: 'web}'\n"),
                "config.yaml: repositories[0].releases[0].version: \"web}\" has a '}' with no opening '{'; write }} for a literal brace",
            ),
            (
                repo("    releases:\n      - version: ''\n"),
                "config.yaml: repositories[0].releases[0].version: is empty; write a template such as '{version}' or 'web@{version}'",
            ),
            (
                repo("    releases:\n      - version: 'web/{version}'\n"),
                "config.yaml: repositories[0].releases[0].version: \"web/{version}\" contains '/', which Sentry does not allow in a release version",
            ),
            (
                repo("    releases:\n      - projects: []\n"),
                "config.yaml: repositories[0].releases[0].projects: is empty; name at least one project, or remove the key to use the repository's projects",
            ),
            (
                repo("    releases:\n      - {}\n      - projects: [ui, docs]\n"),
                "config.yaml: repositories[0].releases[1].projects[1]: \"docs\" is not a configured project; add it under projects, or use one of: web, ui",
            ),
            (
                repo("    releases:\n      - paths: ['']\n"),
                "config.yaml: repositories[0].releases[0].paths[0]: is empty; write a directory or file relative to the repository root, e.g. packages/ui",
            ),
            (
                repo("    releases:\n      - paths: [/packages/ui]\n"),
                "config.yaml: repositories[0].releases[0].paths[0]: \"/packages/ui\" must be relative to the repository root, e.g. \"packages/ui\"",
            ),
            (
                repo("    releases:\n      - paths: [packages/../../etc]\n"),
                "config.yaml: repositories[0].releases[0].paths[0]: \"packages/../../etc\" must stay inside the repository; remove the '..'",
            ),
            (
                "artifacts:\n  drop_dirs: ['']\n".into(),
                "config.yaml: artifacts.drop_dirs[0]: is empty; write the directory CI drops artifact bundles into",
            ),
            (
                "artifacts:\n  max_file_size: 0\n".into(),
                "config.yaml: artifacts.max_file_size: must be greater than 0; write a number of bytes or a size such as \"32 MiB\"",
            ),
            (
                "artifacts:\n  max_request_size: 0\n".into(),
                "config.yaml: artifacts.max_request_size: must be greater than 0; write a number of bytes or a size such as \"32 MiB\"",
            ),
            (
                "limits:\n  max_json_body: 0\n".into(),
                "config.yaml: limits.max_json_body: must be greater than 0; write a number of bytes or a size such as \"32 MiB\"",
            ),
            (
                "limits:\n  max_upload_body: 0 MiB\n".into(),
                "config.yaml: limits.max_upload_body: must be greater than 0; write a number of bytes or a size such as \"32 MiB\"",
            ),
            (
                "artifacts:\n  max_request_size: 64 MiB\n".into(),
                "config.yaml: artifacts.max_request_size: 64 MiB must be below limits.max_upload_body (64 MiB), or sentry-cli's upload requests will be refused; lower it or raise limits.max_upload_body",
            ),
            (
                "github:\n  api_url: api.github.com\n".into(),
                "config.yaml: github.api_url: \"api.github.com\" must start with http:// or https://, e.g. \"https://shiplog.example.com\"",
            ),
            (
                "schedules:\n  - cron: '* * * * *'\n".into(),
                "config.yaml: schedules[0].name: is empty; name the schedule, e.g. \"reconcile\"",
            ),
            (
                "schedules:\n  - {name: r, cron: '* * * * *'}\n  - {name: r, cron: '* * * * *'}\n"
                    .into(),
                "config.yaml: schedules[1].name: \"r\" is already used by schedules[0]; schedule names must be unique",
            ),
            (
                "schedules:\n  - {name: r, cron: '*/5 * * *'}\n".into(),
                "config.yaml: schedules[0].cron: \"*/5 * * *\" has 4 fields; write 5 (crontab: minute hour day-of-month month day-of-week) or 6 (second minute hour day-of-month month day-of-week), optionally with a 7th for the year",
            ),
            (
                "schedules:\n  - {name: r, cron: '0 61 * * * *'}\n".into(),
                "config.yaml: schedules[0].cron: \"0 61 * * * *\" is not a valid cron expression: Minutes must be less than 59. ('61' specified.)",
            ),
            (
                "schedules:\n  - {name: r, cron: ''}\n".into(),
                "config.yaml: schedules[0].cron: is empty; write e.g. \"*/5 * * * *\" (crontab) or \"0 */5 * * * *\" (with seconds)",
            ),
            (
                "schedules:\n  - {name: p, cron: '@daily', job: prune_artifacts}\n".into(),
                "config.yaml: schedules[0].keep_days: is required for job prune_artifacts (artifacts uploaded more than keep_days days ago are deleted); add e.g. keep_days: 90",
            ),
            (
                "schedules:\n  - {name: p, cron: '@daily', job: prune_artifacts, keep_days: 0}\n"
                    .into(),
                "config.yaml: schedules[0].keep_days: must be at least 1 (0 would delete every artifact)",
            ),
            (
                "schedules:\n  - {name: r, cron: '@daily', keep_days: 3}\n".into(),
                "config.yaml: schedules[0].keep_days: is only used by job prune_artifacts; remove it",
            ),
            (
                "schedules:\n  - {name: b, cron: '@daily', job: backup}\n".into(),
                "config.yaml: schedules[0].dir: is required for job backup: the directory the copies go to, e.g. dir: /var/backups/shiplog",
            ),
            (
                "schedules:\n  - {name: b, cron: '@daily', job: backup, dir: /b, keep: 0}\n".into(),
                "config.yaml: schedules[0].keep: must be at least 1",
            ),
            (
                "schedules:\n  - {name: r, cron: '@daily', keep: 3}\n".into(),
                "config.yaml: schedules[0].keep: is only used by job backup; remove it",
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(error(&text), expected, "for config:\n{text}");
        }
    }

    #[test]
    fn valid_edge_cases() {
        // Nested groups in a repository name, public_url with a trailing slash, IPv6 listen.
        let config = parse_ok(
            "listen: '[::1]:8740'\npublic_url: https://acme.dev:8443/\nrepositories:\n  - name: group/sub/repo\n    path: /r\n",
        );
        assert_eq!(config.effective_public_url(None), "https://acme.dev:8443");
        let ghes = GithubConfig {
            api_url: "https://ghe.acme.dev/api/v3".to_owned(),
            ..GithubConfig::default()
        };
        let repo = RepositoryConfig {
            name: "a/b".to_owned(),
            github: Some("a/b".to_owned()),
            ..RepositoryConfig::default()
        };
        assert_eq!(
            repo.web_url(&ghes).as_deref(),
            Some("https://ghe.acme.dev/a/b")
        );
    }

    // --- cron ----------------------------------------------------------------------------

    fn next_runs(expr: &str, n: usize) -> Vec<chrono::DateTime<chrono::Utc>> {
        let schedule = parse_cron(expr).unwrap_or_else(|err| panic!("{err}"));
        let start = chrono::DateTime::parse_from_rfc3339("2026-11-21T05:21:00Z")
            .expect("date")
            .with_timezone(&chrono::Utc);
        schedule.after(&start).take(n).collect()
    }

    #[test]
    fn five_and_six_field_forms_agree() {
        assert_eq!(next_runs("*/5 * * * *", 5), next_runs("0 */5 * * * *", 5));
        assert_eq!(next_runs("30 3 * * *", 3), next_runs("0 30 3 * * *", 3));
        assert_eq!(
            next_runs("0 0 9 * * Mon-Fri", 1)[0].to_rfc3339(),
            "2026-11-23T09:00:00+00:00"
        );
        // Seven fields: the year.
        assert_eq!(
            next_runs("0 0 0 1 1 * 2030", 1)[0].to_rfc3339(),
            "2030-01-01T00:00:00+00:00"
        );
        assert_eq!(next_runs("@daily", 1), next_runs("0 0 * * *", 1));
        assert_eq!(next_runs("@midnight", 1), next_runs("@daily", 1));
        assert_eq!(next_runs("@annually", 1), next_runs("@yearly", 1));
    }

    #[test]
    fn crontab_day_of_week_numbers_are_translated() {
        use chrono::Datelike;
        assert_eq!(
            parse_cron("0 9 * * 1-5").expect("parses").source(),
            "0 0 9 * * Mon,Tue,Wed,Thu,Fri"
        );
        // 2026-11-21 is a Saturday: crontab 1-5 (Mon-Fri) first fires on Monday the 23rd.
        let runs = next_runs("0 9 * * 1-5", 5);
        let days: Vec<_> = runs.iter().map(|t| t.weekday()).collect();
        use chrono::Weekday::*;
        assert_eq!(days, [Mon, Tue, Wed, Thu, Fri]);
        // 0 and 7 are both Sunday.
        assert_eq!(next_runs("0 0 * * 0", 1)[0].weekday(), Sun);
        assert_eq!(next_runs("0 0 * * 7", 1)[0].weekday(), Sun);
        assert_eq!(next_runs("0 0 * * 6", 1)[0].weekday(), Sat);
        for (crontab, days) in [
            ("5-7", "Sun,Fri,Sat"),
            ("*/2", "Sun,Tue,Thu,Sat"),
            ("1/2", "Sun,Mon,Wed,Fri"),
            ("1-5/2", "Mon,Wed,Fri"),
            ("MON-FRI", "Mon,Tue,Wed,Thu,Fri"),
            ("sun,3", "Sun,Wed"),
            ("0-7", "Sun,Mon,Tue,Wed,Thu,Fri,Sat"),
        ] {
            assert_eq!(
                translate_crontab_dow(crontab).as_deref(),
                Ok(days),
                "{crontab}"
            );
        }
        assert_eq!(
            parse_cron("0 0 * * *").expect("parses").source(),
            "0 0 0 * * *"
        );
    }

    #[test]
    fn ambiguous_and_invalid_cron_expressions_are_rejected() {
        let message = |expr: &str| match parse_cron(expr) {
            Ok(_) => panic!("{expr:?} should be rejected"),
            Err(err) => err.to_string(),
        };
        assert_eq!(
            message("0 0 9 * * 1-5"),
            "\"0 0 9 * * 1-5\": day-of-week \"1-5\" is a number, and 6-field cron dialects number days differently (here 1 = Sunday, elsewhere 1 = Monday); write day names, e.g. MON-FRI or SUN"
        );
        assert_eq!(
            message("0 9 1 * MON"),
            "\"0 9 1 * MON\" restricts both day-of-month and day-of-week; crontab runs when either matches but this scheduler requires both, so set one of them to * (use two schedules for either-or)"
        );
        assert_eq!(
            message("0 9 * * 8"),
            "\"0 9 * * 8\": day-of-week \"8\" has \"8\"; crontab days are 0-7 (0 and 7 = Sunday)"
        );
        assert_eq!(
            message("0 9 * * SAT-SUN"),
            "\"0 9 * * SAT-SUN\": day-of-week \"SAT-SUN\" has the range \"SAT-SUN\", which runs backwards; ranges cannot wrap past Saturday (write e.g. 5-7 or FRI-SAT,SUN)"
        );
        assert_eq!(
            message("0 9 * * funday"),
            "\"0 9 * * funday\": day-of-week \"funday\" has \"funday\", which is not a day; use 0-7 or SUN, MON, ... SAT"
        );
        assert_eq!(
            message("@reboot"),
            "\"@reboot\": @reboot is not supported; reconcile already runs at start-up"
        );
        assert_eq!(
            message("61 * * * *"),
            "\"61 * * * *\" is not a valid cron expression (read as \"0 61 * * * *\"): Minutes must be less than 59. ('61' specified.)"
        );
        // `*/n` on day-of-week means the same in every dialect and is accepted.
        assert!(parse_cron("0 0 0 * * */2").is_ok());
        assert!(parse_cron("0 0 0 ? * MON-FRI").is_ok());
        // Day-of-month with `*/n` in crontab form is AND-combined by cron too.
        assert!(parse_cron("0 0 */2 * MON").is_ok());
    }

    #[test]
    fn schedule_config_uses_parse_cron() {
        let config = parse_ok(
            "schedules:\n  - {name: r, cron: '*/10 * * * *', job: reconcile}\n  - {name: p, cron: '0 4 * * 0', job: prune_artifacts, keep_days: 30}\n",
        );
        assert_eq!(
            config.schedules[0].schedule().expect("ok").source(),
            "0 */10 * * * *"
        );
        assert_eq!(
            config.schedules[1].schedule().expect("ok").source(),
            "0 0 4 * * Sun"
        );
    }
}
