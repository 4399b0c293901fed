//! The real, unmodified sentry-cli 3.x against a real daemon: every release and deploy verb,
//! each checked against what the daemon stored. The token alone tells sentry-cli where the
//! daemon is and which organization to use (it embeds both), as in a CI job that only sets
//! `SENTRY_AUTH_TOKEN`.

mod common;

use std::path::Path;
use std::process::Output;

use common::sentry_cli::{require_sentry_cli, sentry_cli_command};
use common::{Daemon, stderr, stdout};
use serde_json::Value;

fn run(bin: &Path, d: &Daemon, args: &[&str]) -> Output {
    // SENTRY_URL deliberately points nowhere: the URL embedded in the token must win.
    sentry_cli_command(bin, "http://127.0.0.1:9", &d.token)
        .args(args)
        .output()
        .expect("run sentry-cli")
}

fn ok(bin: &Path, d: &Daemon, args: &[&str]) -> String {
    let out = run(bin, d, args);
    assert!(
        out.status.success(),
        "sentry-cli {args:?} failed:\n{}\n{}\n--- daemon log ---\n{}",
        stdout(&out),
        stderr(&out),
        d.log()
    );
    stdout(&out)
}

fn release(d: &Daemon, version: &str) -> (u16, Value) {
    d.api(
        "GET",
        &format!("organizations/acme/releases/{version}/"),
        None,
    )
}

#[test]
fn sentry_cli_manages_releases_and_deploys() {
    let Some(bin) = require_sentry_cli("sentry_cli_manages_releases_and_deploys") else {
        return;
    };
    let d = Daemon::start();

    let info = ok(&bin, &d, &["info"]);
    assert!(info.contains(&d.url), "{info}");

    // releases new
    let out = ok(&bin, &d, &["releases", "-p", "web", "new", "1.0.0"]);
    assert!(out.contains("Created release 1.0.0"), "{out}");
    let (status, r) = release(&d, "1.0.0");
    assert_eq!(status, 200);
    assert_eq!(r["projects"][0]["slug"], "web");
    assert_eq!(r["dateReleased"], Value::Null);
    assert!(r["dateStarted"].is_string(), "sentry-cli sends dateStarted");
    assert!(r["userAgent"].as_str().unwrap().starts_with("sentry-cli/"));

    // new --finalize with two projects and a URL
    ok(
        &bin,
        &d,
        &[
            "releases",
            "-p",
            "web",
            "-p",
            "api",
            "new",
            "1.1.0",
            "--finalize",
            "--url",
            "https://example.com/r/1.1.0",
        ],
    );
    let (_, r) = release(&d, "1.1.0");
    assert!(r["dateReleased"].is_string());
    assert_eq!(r["url"], "https://example.com/r/1.1.0");
    assert_eq!(r["projects"].as_array().unwrap().len(), 2);

    // A version that needs percent-encoding.
    ok(
        &bin,
        &d,
        &["releases", "-p", "web", "new", "web@2.0.0+build.5"],
    );
    assert_eq!(release(&d, "web@2.0.0%2Bbuild.5").0, 200);

    // list (project-scoped and org-wide)
    let list = ok(&bin, &d, &["releases", "-p", "api", "list"]);
    assert!(list.contains("1.1.0") && !list.contains("1.0.0"), "{list}");
    let list = ok(&bin, &d, &["releases", "list", "--raw", "--delimiter", ","]);
    assert_eq!(list.trim(), "web@2.0.0+build.5,1.1.0,1.0.0");

    // info
    let out = ok(&bin, &d, &["releases", "info", "1.0.0"]);
    assert!(out.contains("1.0.0"), "{out}");
    let missing = run(&bin, &d, &["releases", "info", "0.0.0-missing"]);
    assert_eq!(missing.status.code(), Some(1), "a missing release exits 1");

    // finalize
    let out = ok(
        &bin,
        &d,
        &[
            "releases",
            "-p",
            "web",
            "finalize",
            "1.0.0",
            "--released",
            "1700000000",
        ],
    );
    assert!(out.contains("Finalized release 1.0.0"), "{out}");
    let (_, r) = release(&d, "1.0.0");
    assert_eq!(r["dateReleased"], "2023-11-14T22:13:20.000000Z");

    // archive / restore
    let out = ok(&bin, &d, &["releases", "archive", "1.0.0"]);
    assert!(out.contains("Archived release 1.0.0"), "{out}");
    assert_eq!(release(&d, "1.0.0").1["status"], "archived");
    let list = ok(&bin, &d, &["releases", "list", "--raw", "--delimiter", ","]);
    assert!(
        !list.contains("1.0.0,") && !list.trim().ends_with("1.0.0"),
        "{list}"
    );
    let out = ok(&bin, &d, &["releases", "restore", "1.0.0"]);
    assert!(out.contains("Restored release 1.0.0"), "{out}");
    assert_eq!(release(&d, "1.0.0").1["status"], "open");

    // deploys new / list (both spellings)
    let out = ok(
        &bin,
        &d,
        &[
            "deploys",
            "new",
            "-r",
            "1.0.0",
            "-e",
            "production",
            "-n",
            "deploy-7",
            "-t",
            "90",
        ],
    );
    assert!(
        out.contains("Created new deploy deploy-7 for 'production'"),
        "{out}"
    );
    ok(
        &bin,
        &d,
        &["releases", "deploys", "1.0.0", "new", "-e", "staging"],
    );
    let out = ok(&bin, &d, &["deploys", "list", "-r", "1.0.0"]);
    assert!(
        out.contains("production") && out.contains("staging"),
        "{out}"
    );
    let (_, r) = release(&d, "1.0.0");
    assert_eq!(r["deployCount"], 2);
    assert_eq!(r["lastDeploy"]["environment"], "staging");
    let (_, deploys) = d.api("GET", "organizations/acme/releases/1.0.0/deploys/", None);
    let prod = deploys
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["environment"] == "production")
        .unwrap()
        .clone();
    assert_eq!(prod["name"], "deploy-7");
    assert!(prod["dateStarted"].is_string(), "-t sets dateStarted");
    let bad = run(
        &bin,
        &d,
        &["deploys", "new", "-r", "9.9.9", "-e", "production"],
    );
    assert!(!bad.status.success());
    assert!(
        stderr(&bad).contains("Release not found"),
        "{}",
        stderr(&bad)
    );

    // delete
    let out = ok(&bin, &d, &["releases", "delete", "1.1.0"]);
    assert!(out.contains("Deleted release 1.1.0"), "{out}");
    assert_eq!(release(&d, "1.1.0").0, 404);
    let out = ok(&bin, &d, &["releases", "delete", "1.1.0"]);
    assert!(out.contains("Did nothing"), "{out}");

    // Errors come back as Sentry's detail.
    let bad = run(&bin, &d, &["releases", "-p", "nope", "new", "3.0.0"]);
    assert!(!bad.status.success());
    assert!(
        stderr(&bad).contains("Invalid project ids or slugs: nope"),
        "{}",
        stderr(&bad)
    );
    assert_eq!(release(&d, "3.0.0").0, 404);
}

#[test]
fn sentry_cli_with_a_revoked_token_is_refused() {
    let Some(bin) = require_sentry_cli("sentry_cli_with_a_revoked_token_is_refused") else {
        return;
    };
    let d = Daemon::start();
    assert!(d.shiplog(&["token", "revoke", "1"]).status.success());
    let out = run(&bin, &d, &["releases", "-p", "web", "new", "1.0.0"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("Invalid token"), "{}", stderr(&out));
    assert_eq!(d.count("SELECT count(*) FROM releases"), 0);
}
