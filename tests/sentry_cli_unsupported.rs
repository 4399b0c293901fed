//! The real sentry-cli 3.x (2.x too for the listings) on what shiplog answers but does not
//! keep: organization, project and repository listings (every field sentry-cli
//! deserializes), and the features shiplog does not
//! have — each command fails with shiplog's own reason, never sentry-cli's "Project not found"
//! guess — and cron check-ins, which are accepted and ignored.

mod common;

use std::path::Path;

use common::events::dsn;
use common::sentry_cli::{
    ok_against as ok, require_sentry_cli, require_sentry_cli_2, run_against as run,
    sentry_cli_command,
};
use common::{Daemon, stderr, stdout};

/// Runs a command that must fail with shiplog's reason.
fn refused(bin: &Path, d: &Daemon, args: &[&str], reason: &str) {
    let out = run(bin, d, args);
    let err = stderr(&out);
    assert!(
        !out.status.success(),
        "{args:?} succeeded:\n{}",
        stdout(&out)
    );
    assert!(
        err.contains(reason),
        "{args:?}: expected {reason:?} in:\n{err}"
    );
    assert!(
        !err.contains("not found"),
        "{args:?}: a misleading 404:\n{err}"
    );
}

#[test]
fn sentry_cli_lists_organizations_projects_and_repos() {
    let name = "sentry_cli_lists_organizations_projects_and_repos";
    for bin in [require_sentry_cli(name), require_sentry_cli_2(name)]
        .into_iter()
        .flatten()
    {
        listings(&bin);
    }
}

fn listings(bin: &Path) {
    let d = Daemon::start();
    let orgs = ok(bin, &d, &["organizations", "list"]);
    assert!(orgs.contains("acme"), "{orgs}");
    let created: String = d
        .db()
        .query_row(
            "SELECT substr(date_added, 1, 10) FROM organizations",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        orgs.contains(&created),
        "the creation date is shown:\n{orgs}"
    );
    let projects = ok(bin, &d, &["projects", "list"]);
    assert!(
        projects.contains("web") && projects.contains("API"),
        "{projects}"
    );
    let out = d.shiplog(&["repos", "add", "acme/docs", "--github", "acme/docs"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let repos = ok(bin, &d, &["repos", "list"]);
    assert!(
        repos.contains("acme/docs") && repos.contains("https://github.com/acme/docs"),
        "{repos}"
    );
}

#[test]
fn sentry_cli_says_what_shiplog_does_not_store() {
    let Some(bin) = require_sentry_cli("sentry_cli_says_what_shiplog_does_not_store") else {
        return;
    };
    let d = Daemon::start();
    let dir = tempfile::tempdir().unwrap();
    let mapping = dir.path().join("mapping.txt");
    std::fs::write(&mapping, "com.example.Main -> a:\n    void run() -> a\n").unwrap();
    refused(
        &bin,
        &d,
        &["upload-proguard", "-p", "web", mapping.to_str().unwrap()],
        "shiplog does not store debug files",
    );
    // Any ELF file is a debug file to sentry-cli.
    let elf = Path::new("/bin/true");
    if elf.exists() {
        refused(
            &bin,
            &d,
            &["debug-files", "upload", "-p", "web", elf.to_str().unwrap()],
            "shiplog does not store debug files",
        );
    }
    refused(
        &bin,
        &d,
        &["monitors", "list"],
        "shiplog does not have cron monitors",
    );
    refused(
        &bin,
        &d,
        &["logs", "list", "--org", "acme", "-p", "web"],
        "shiplog does not store logs",
    );
}

#[test]
fn cron_check_ins_are_accepted_and_ignored() {
    let Some(bin) = require_sentry_cli("cron_check_ins_are_accepted_and_ignored") else {
        return;
    };
    let d = Daemon::start();
    let web = dsn(&d, "web");
    let out = sentry_cli_command(&bin, &d.url, &d.token)
        .env("SENTRY_DSN", &web.text)
        .args(["monitors", "run", "nightly", "--", "true"])
        .output()
        .expect("run sentry-cli");
    assert!(out.status.success(), "{}\n{}", stderr(&out), d.log());
    assert_eq!(d.count("SELECT count(*) FROM events"), 0);
    assert_eq!(d.count("SELECT count(*) FROM issues"), 0);
}
