//! `shiplog repos import NAME [--dry-run]`: the releases of a repository's existing tags.
//!
//! Like the other `repos` commands it works on the data dir directly, daemon running or not:
//! it reads the repository (the local clone, or GitHub's API with the config's `github:`
//! token) itself and writes through the same `core::import` the daemon's first-sight import
//! uses. The daemon, if running, may apply a new tag at the same time; each release is one
//! transaction that checks again what is there, so nothing is made twice. Progress goes to
//! stderr when it is a terminal.

use std::process::ExitCode;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};

use super::{CliError, output};
use crate::config::Config;
use crate::core::import::{self, Report, Step};
use crate::github::GithubClient;
use crate::pipeline::HandlerError;
use crate::pipeline::import::history_for;
use crate::store::Store;

fn handler_error(e: HandlerError) -> CliError {
    match e {
        HandlerError::Retry(m) => CliError::Usage(format!("{m}; try again later")),
        HandlerError::Permanent(m) => CliError::Usage(m),
    }
}

fn bar(dry_run: bool) -> ProgressBar {
    // Drawn on stderr, and only when it is a terminal.
    let pb = ProgressBar::new(0);
    let style = ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} releases eta {eta}")
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    pb.set_style(style);
    pb.set_message(if dry_run { "counting" } else { "importing" });
    pb
}

/// Runs the import (or the dry run) and prints what it made.
pub fn run(
    config: &Config,
    store: &Store,
    name: &str,
    dry_run: bool,
    json_out: bool,
) -> Result<ExitCode, CliError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let report = runtime.block_on(async {
        let history = history_for(config, name, || GithubClient::new(&config.github))?;
        let pb = bar(dry_run);
        let result = import::import(
            store,
            config,
            name,
            history.as_ref(),
            dry_run,
            &mut |step| match step {
                Step::Planned { total } => pb.set_length(total as u64),
                Step::Made { release, .. } => {
                    pb.set_message(release.version.clone());
                    pb.inc(1);
                }
            },
        )
        .await;
        pb.finish_and_clear();
        result.map_err(handler_error)
    })?;
    print_report(name, &report, dry_run, json_out)
}

fn print_report(
    name: &str,
    report: &Report,
    dry_run: bool,
    json_out: bool,
) -> Result<ExitCode, CliError> {
    let commits: usize = report.releases.iter().map(|(_, n)| n).sum();
    if json_out {
        let releases: Vec<Value> = report
            .releases
            .iter()
            .map(|(p, n)| {
                json!({
                    "version": p.version, "tag": p.tag, "commit": p.commit,
                    "date": p.date, "previousCommit": p.from, "commitCount": n,
                })
            })
            .collect();
        return output::json(&json!({
            "repository": name,
            "dryRun": dry_run,
            "releases": releases,
            "alreadyPresent": report.present,
            "unmatchedTags": report.unmatched,
        }))
        .map(|_| ExitCode::SUCCESS);
    }
    if !report.releases.is_empty() {
        let rows: Vec<Vec<String>> = report
            .releases
            .iter()
            .map(|(p, n)| {
                vec![
                    p.version.clone(),
                    p.tag.clone(),
                    p.date.chars().take(10).collect(),
                    n.to_string(),
                ]
            })
            .collect();
        output::table(&["RELEASE", "TAG", "DATE", "COMMITS"], &rows)?;
    }
    let made = report.releases.len();
    let s = |n: usize| if n == 1 { "" } else { "s" };
    output::line(&format!(
        "{} {made} release{} ({commits} commit{}) from {name}; {} already there, {} tag{} matching no release policy",
        if dry_run { "Would import" } else { "Imported" },
        s(made),
        s(commits),
        report.present,
        report.unmatched,
        s(report.unmatched),
    ))?;
    Ok(ExitCode::SUCCESS)
}
