//! `shiplog repos list|add|remove|import` (import: `cli::import`) and `shiplog releases set-commits|propose-version`.
//!
//! `repos` works on the data dir directly, like `token`, daemon running or not. `set-commits`
//! mirrors sentry-cli (sentry-cli-protocol.md §5): `--auto` matches the `origin` remote's URL
//! to a repository's URL and sends the local `HEAD` as a ref; `--commit REPO@[FROM..]TO` sends
//! refs as typed; `--local` walks the repository in the current directory itself and sends
//! the commits, starting after the previous release's last commit; `--clear` empties the
//! release's commits. `propose-version` prints what sentry-cli would, without a request.

use std::path::Path;
use std::process::ExitCode;

use clap::{ArgGroup, Args, Subcommand};
use reqwest::Method;
use serde_json::{Value, json};

use super::client::{Client, segment};
use super::{CliError, output};
use crate::config::Config;
use crate::core::{self, repo};
use crate::git::{self, RangeOptions};
use crate::store::Store;

#[derive(Debug, Subcommand)]
pub enum ReposCommand {
    /// List repositories (hidden ones included).
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Add a repository outside the config: a local clone (--path) or one on GitHub (--github).
    #[command(group(ArgGroup::new("location").required(true).args(["path", "github"])))]
    Add {
        /// The name sentry-cli and GitHub use, owner/repo.
        name: String,
        /// A local clone or bare repository.
        #[arg(long, value_name = "DIR")]
        path: Option<std::path::PathBuf>,
        /// owner/repo on GitHub.
        #[arg(long, value_name = "OWNER/REPO")]
        github: Option<String>,
        /// The web URL (`sentry-cli set-commits --auto` matches it to the `origin` remote).
        #[arg(long)]
        url: Option<String>,
    },
    /// Remove a repository added with `repos add` (hidden when commits refer to it).
    Remove { name: String },
    /// Make releases of a configured repository's existing tags, by its release policies;
    /// only those missing are made (running it again changes nothing).
    Import {
        name: String,
        /// Print the releases and commit counts it would make; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// Runs a `repos` command against the data dir.
pub fn repos(config: &Config, cmd: &ReposCommand) -> Result<ExitCode, CliError> {
    let store = Store::open_dir(&config.data_dir())?;
    // Only the organization is synced here: the config's repositories are the daemon's to
    // sync at start, and a client run with another config must not hide them.
    let org = store.write_blocking(|tx| core::org::sync_config(tx, config, &core::now()))?;
    match cmd {
        ReposCommand::List { json } => {
            let list = store.read_blocking(|c| repo::list(c, org.id))?;
            if *json {
                let items: Vec<Value> = list
                    .iter()
                    .map(|r| {
                        json!({
                            "id": r.id, "name": r.name, "url": r.url, "provider": r.provider,
                            "path": r.path, "github": r.external, "status": r.status,
                            "dateCreated": r.date_added,
                        })
                    })
                    .collect();
                return output::json(&Value::Array(items)).map(|_| ExitCode::SUCCESS);
            }
            if list.is_empty() {
                output::line(
                    "No repositories. Add one under `repositories:` in the config or with `shiplog repos add`",
                )?;
                return Ok(ExitCode::SUCCESS);
            }
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|r| {
                    vec![
                        r.name.clone(),
                        r.provider.clone(),
                        r.status.clone(),
                        r.path
                            .clone()
                            .or_else(|| r.external.clone())
                            .unwrap_or_else(|| "-".into()),
                        r.url.clone().unwrap_or_else(|| "-".into()),
                    ]
                })
                .collect();
            output::table(&["NAME", "PROVIDER", "STATUS", "WHERE", "URL"], &rows)?;
        }
        ReposCommand::Add {
            name,
            path,
            github,
            url,
        } => {
            let location = match (path, github) {
                (Some(p), _) => repo::Location::Path(repo::check_path(p)?),
                (None, Some(g)) => repo::Location::Github(g.clone()),
                (None, None) => {
                    return Err(CliError::Usage(
                        "give --path DIR or --github owner/repo".into(),
                    ));
                }
            };
            let now = core::now();
            let r = store.write_blocking(|tx| {
                repo::add(tx, &org, config, name, &location, url.as_deref(), &now)
            })?;
            let place = r.path.clone().or(r.external.clone()).unwrap_or_default();
            output::line(&format!("Repository {} ({place}) is ready", r.name))?;
        }
        ReposCommand::Import {
            name,
            dry_run,
            json,
        } => return super::import::run(config, &store, name, *dry_run, *json),
        ReposCommand::Remove { name } => {
            let removed = store.write_blocking(|tx| repo::remove(tx, &org, config, name))?;
            match removed {
                repo::Removed::Deleted => output::line(&format!("Removed repository {name}"))?,
                repo::Removed::Hidden => {
                    output::line(&format!("Hid repository {name} (its commits are kept)"))?
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("mode").required(true).args(["auto", "commit", "local", "clear"])))]
pub struct SetCommitsArgs {
    /// The release version.
    version: String,
    /// Match the `origin` remote's URL to a repository and send HEAD; the daemon expands the
    /// range from the previous release.
    #[arg(long, conflicts_with_all = ["local", "clear"])]
    auto: bool,
    /// REPO[#PATH][@[FROM..]TO], e.g. acme/web@v1.0.0..v1.1.0 (repeatable). Without TO, the
    /// local HEAD (of PATH, else the current directory).
    #[arg(long, short = 'c', value_name = "SPEC", conflicts_with_all = ["local", "clear"])]
    commit: Vec<String>,
    /// Walk the git repository in the current directory and send its commits since the
    /// previous release.
    #[arg(long, conflicts_with = "clear")]
    local: bool,
    /// Commits to send when there is no previous release (with --local).
    #[arg(long, default_value_t = 20, value_name = "N")]
    initial_depth: usize,
    /// When the previous release's commit is not in the history, send the newest
    /// --initial-depth commits instead of failing (with --local).
    #[arg(long)]
    ignore_missing: bool,
    /// Remove every commit from the release.
    #[arg(long)]
    clear: bool,
}

fn repos_path(client: &Client) -> String {
    format!("organizations/{}/repos/", segment(&client.org))
}

/// Every repository the daemon lists (following its pages).
async fn fetch_repos(client: &Client) -> Result<Vec<Value>, CliError> {
    let mut all = Vec::new();
    let mut offset = 0;
    loop {
        let page = client
            .get(&format!("{}?cursor=0:{offset}:0", repos_path(client)))
            .await?;
        let items = page.as_array().cloned().unwrap_or_default();
        let n = items.len();
        all.extend(items);
        if n < repo::PER_PAGE {
            return Ok(all);
        }
        offset += repo::PER_PAGE;
    }
}

/// A remote URL reduced to `host/owner/repo`, lowercased, so that `git@github.com:acme/web.git`
/// and `https://github.com/acme/web` compare equal (as sentry-cli's matching does).
pub fn normalize_url(url: &str) -> Option<String> {
    let mut s = url.trim().to_lowercase();
    while s.ends_with('/') {
        s.pop();
    }
    if let Some(stripped) = s.strip_suffix(".git") {
        s = stripped.to_string();
    }
    let (host, path) = if let Some((_, rest)) = s.split_once("://") {
        let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
        let (host, path) = rest.split_once('/')?;
        (
            host.split(':').next().unwrap_or(host).to_string(),
            path.to_string(),
        )
    } else {
        let rest = s.rsplit_once('@').map_or(s.as_str(), |(_, r)| r);
        let (host, path) = rest.split_once(':')?;
        (host.to_string(), path.to_string())
    };
    let path = path.trim_matches('/');
    if host.is_empty() || path.is_empty() {
        return None;
    }
    Some(format!("{host}/{path}"))
}

/// Providers whose repositories `--auto` may match (sentry-cli's list).
const AUTO_PROVIDERS: &[&str] = &[
    "git",
    "github",
    "bitbucket",
    "visualstudio",
    "google",
    "integrations:github",
    "integrations:github_enterprise",
    "integrations:gitlab",
    "integrations:bitbucket",
    "integrations:bitbucket_server",
    "integrations:vsts",
];

fn remote_name() -> String {
    ["SHIPLOG_VCS_REMOTE", "SENTRY_VCS_REMOTE"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
        .unwrap_or_else(|| "origin".to_string())
}

/// The repository in `list` whose URL is the remote's, if any.
fn matching_repo<'a>(list: &'a [Value], remote_url: &str, any_provider: bool) -> Option<&'a Value> {
    let want = normalize_url(remote_url)?;
    list.iter().find(|r| {
        let provider = r["provider"]["id"].as_str().unwrap_or("");
        (any_provider || AUTO_PROVIDERS.contains(&provider))
            && r["url"].as_str().and_then(normalize_url).as_deref() == Some(want.as_str())
    })
}

fn open_here() -> Result<git2::Repository, CliError> {
    git::discover(Path::new(".")).map_err(|e| {
        CliError::Usage(format!(
            "{e}; run this inside a git repository (or use --commit)"
        ))
    })
}

/// A `--commit` spec: `REPO[#PATH][@[FROM..]TO]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitSpec {
    pub repository: String,
    pub path: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
}

/// Parses a `--commit` spec the way sentry-cli does (`^([^@#]+)(?:#([^@]+))?(?:@(.+))?$`).
pub fn parse_commit_spec(spec: &str) -> Result<CommitSpec, CliError> {
    let bad = || {
        CliError::Usage(format!(
            "--commit {spec:?}: write REPO[#PATH][@[FROM..]TO], e.g. acme/web@v1.0.0..v1.1.0"
        ))
    };
    let (head, rev) = match spec.split_once('@') {
        Some((h, r)) if !r.is_empty() => (h, Some(r)),
        Some(_) => return Err(bad()),
        None => (spec, None),
    };
    let (repository, path) = match head.split_once('#') {
        Some((r, p)) if !p.is_empty() => (r, Some(p.to_string())),
        Some(_) => return Err(bad()),
        None => (head, None),
    };
    if repository.is_empty() {
        return Err(bad());
    }
    let (from, to) = match rev {
        None => (None, None),
        Some(r) => match r.split_once("..") {
            Some((f, t)) if !f.is_empty() && !t.is_empty() => {
                (Some(f.to_string()), Some(t.to_string()))
            }
            Some(_) => return Err(bad()),
            None => (None, Some(r.to_string())),
        },
    };
    Ok(CommitSpec {
        repository: repository.to_string(),
        path,
        from,
        to,
    })
}

fn release_path(client: &Client, version: &str) -> String {
    format!(
        "organizations/{}/releases/{}/",
        segment(&client.org),
        segment(version)
    )
}

/// `shiplog releases set-commits`.
pub async fn set_commits(
    client: &Client,
    projects: &[String],
    args: &SetCommitsArgs,
) -> Result<ExitCode, CliError> {
    let version = &args.version;
    let repos_list = fetch_repos(client).await?;
    if !projects.is_empty() {
        client
            .send(
                Method::POST,
                &format!("organizations/{}/releases/", segment(&client.org)),
                Some(&json!({"version": version, "projects": projects})),
            )
            .await?;
    }
    let path = release_path(client, version);

    if args.clear {
        let (_, release) = client
            .send(Method::PUT, &path, Some(&json!({"refs": []})))
            .await?;
        return done(
            client,
            &release,
            &format!("Cleared the commits of release {version}"),
        );
    }

    if !args.commit.is_empty() {
        let mut refs = Vec::new();
        for spec in &args.commit {
            let spec = parse_commit_spec(spec)?;
            let repository = repos_list
                .iter()
                .filter_map(|r| r["name"].as_str())
                .find(|name| name.eq_ignore_ascii_case(&spec.repository))
                .ok_or_else(|| {
                    CliError::Usage(format!(
                        "Unknown repo '{}' (see `shiplog repos list`)",
                        spec.repository
                    ))
                })?;
            let to = match spec.to {
                Some(to) => to,
                None => {
                    let repo = match &spec.path {
                        Some(p) => git::discover(Path::new(p))
                            .map_err(|e| CliError::Usage(e.to_string()))?,
                        None => open_here()?,
                    };
                    git::head_sha(&repo).map_err(|e| CliError::Usage(e.to_string()))?
                }
            };
            refs.push(json!({"repository": repository, "commit": to, "previousCommit": spec.from}));
        }
        let (_, release) = client
            .send(Method::PUT, &path, Some(&json!({ "refs": refs })))
            .await?;
        return done(
            client,
            &release,
            &format!("Set commits for release {version}"),
        );
    }

    if args.auto {
        let repo = open_here()?;
        let remote = remote_name();
        let matched = git::remote_url(&repo, &remote)
            .and_then(|url| matching_repo(&repos_list, &url, false).cloned());
        if let Some(matched) = matched {
            let head = git::head_sha(&repo).map_err(|e| CliError::Usage(e.to_string()))?;
            let body = json!({"refs": [{
                "repository": matched["name"],
                "commit": head,
                "previousCommit": null,
            }]});
            let (_, release) = client.send(Method::PUT, &path, Some(&body)).await?;
            return done(
                client,
                &release,
                &format!("Set commits for release {version}"),
            );
        }
        eprintln!(
            "Could not match the {remote} remote to a repository (compare `shiplog repos list`). Proceeding to find commits from the local git tree."
        );
    }

    local(client, &repos_list, args, &path).await
}

/// `--local`: walks the current repository and sends the commits since the previous release.
async fn local(
    client: &Client,
    repos_list: &[Value],
    args: &SetCommitsArgs,
    path: &str,
) -> Result<ExitCode, CliError> {
    let version = &args.version;
    let previous = match client
        .send(Method::GET, &format!("{path}previous-with-commits/"), None)
        .await
    {
        Ok((_, v)) => v["lastCommit"]["id"].as_str().map(str::to_string),
        Err(CliError::Api { status: 404, .. }) => None,
        Err(e) => return Err(e),
    };
    let repo = open_here()?;
    let remote = remote_name();
    // Commits go to the repository whose URL is the remote's; sentry-cli sends the remote's
    // name instead (getsentry/sentry-cli#3254), which is used when nothing matches.
    let repository = git::remote_url(&repo, &remote)
        .and_then(|url| matching_repo(repos_list, &url, true))
        .and_then(|r| r["name"].as_str().map(str::to_string))
        .unwrap_or(remote);
    let opts = RangeOptions {
        paths: Vec::new(),
        initial_depth: args.initial_depth,
    };
    let from = match previous {
        Some(sha) if git::resolve_commit(&repo, &sha).is_ok() => Some(sha),
        Some(sha) if !args.ignore_missing => {
            return Err(CliError::Usage(format!(
                "Could not find the previous release's commit {sha} in the git history; use --ignore-missing to send the newest {} commits instead",
                args.initial_depth
            )));
        }
        _ => {
            eprintln!(
                "Could not find the previous commit. Creating a release with {} commits.",
                args.initial_depth
            );
            None
        }
    };
    let mut commits = git::collect_range(&repo, from.as_deref(), "HEAD", &opts)
        .map_err(|e| CliError::Usage(e.to_string()))?;
    if commits.is_empty() {
        output::line("No commits found. Leaving release alone.")?;
        return Ok(ExitCode::SUCCESS);
    }
    for c in &mut commits {
        c.repository = Some(repository.clone());
    }
    let (_, release) = client
        .send(Method::PUT, path, Some(&json!({ "commits": commits })))
        .await?;
    done(
        client,
        &release,
        &format!("Set {} commits for release {version}", commits.len()),
    )
}

fn done(client: &Client, release: &Value, message: &str) -> Result<ExitCode, CliError> {
    if client.json {
        output::json(release)?;
    } else {
        output::line(message)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Environment variables that name a release, in sentry-cli's order after `SENTRY_RELEASE`.
const VERSION_VARS: &[&str] = &[
    "SHIPLOG_RELEASE",
    "SENTRY_RELEASE",
    "SOURCE_VERSION",
    "HEROKU_BUILD_COMMIT",
    "HEROKU_SLUG_COMMIT",
    "CODEBUILD_RESOLVED_SOURCE_VERSION",
    "CIRCLE_SHA1",
    "CF_PAGES_COMMIT_SHA",
];

/// `shiplog releases propose-version`: the first of [`VERSION_VARS`] that is set, else the
/// current repository's HEAD sha. No request is made.
pub fn propose_version() -> Result<ExitCode, CliError> {
    if let Some(v) = VERSION_VARS
        .iter()
        .find_map(|k| std::env::var(k).ok().map(|v| v.trim().to_string()))
        .filter(|v| !v.is_empty())
    {
        output::line(&v)?;
        return Ok(ExitCode::SUCCESS);
    }
    let repo = git::discover(Path::new(".")).map_err(|e| {
        CliError::Usage(format!(
            "Could not automatically determine release name: {e}; set SHIPLOG_RELEASE or run inside a git repository"
        ))
    })?;
    let sha = git::head_sha(&repo).map_err(|e| {
        CliError::Usage(format!(
            "Could not automatically determine release name: {e}"
        ))
    })?;
    output::line(&sha)?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_compare_like_sentry_cli() {
        let web = Some("github.com/acme/web".to_string());
        for url in [
            "git@github.com:acme/web.git",
            "https://github.com/acme/web",
            "https://github.com/Acme/Web.git",
            "ssh://git@github.com:22/acme/web.git",
            "https://user:token@github.com/acme/web/",
            "git://github.com/acme/web",
        ] {
            assert_eq!(normalize_url(url), web, "{url}");
        }
        assert_ne!(normalize_url("git@gitlab.com:acme/web.git"), web);
        assert_eq!(normalize_url("not a url"), None);
    }

    #[test]
    fn commit_specs() {
        assert_eq!(
            parse_commit_spec("acme/web@a1..b2").unwrap(),
            CommitSpec {
                repository: "acme/web".into(),
                path: None,
                from: Some("a1".into()),
                to: Some("b2".into()),
            }
        );
        let s = parse_commit_spec("acme/web#../web@b2").unwrap();
        assert_eq!(s.path.as_deref(), Some("../web"));
        assert_eq!((s.from, s.to.as_deref()), (None, Some("b2")));
        let s = parse_commit_spec("acme/web").unwrap();
        assert_eq!((s.from, s.to), (None, None));
        for bad in ["", "@abc", "acme/web@", "acme/web@..b", "acme/web#@b"] {
            assert!(parse_commit_spec(bad).is_err(), "{bad}");
        }
    }
}
