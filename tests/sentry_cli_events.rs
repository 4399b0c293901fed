//! The real, unmodified `sentry-cli` against a real daemon, for the whole issue loop:
//! `send-event` creates an issue (authenticated by the DSN from `shiplog projects dsn` alone:
//! sentry-cli sends no bearer token for events), a "Fixes WEB-1" commit in a real repository
//! is shipped with `releases set-commits --local`, which resolves the issue in that release,
//! and further events from older and newer releases keep it resolved or regress it.

mod common;

use std::path::Path;
use std::process::Output;

use common::events::dsn;
use common::gitrepo::GitRepo;
use common::sentry_cli::{require_sentry_cli, sentry_cli_command};
use common::{Daemon, stderr, stdout};
use serde_json::Value;

fn send_event(bin: &Path, d: &Daemon, dsn: &str, args: &[&str]) -> Output {
    // No token at all: send-event authenticates with the DSN alone.
    sentry_cli_command(bin, "http://127.0.0.1:9", "")
        .env_remove("SENTRY_AUTH_TOKEN")
        .env("SENTRY_DSN", dsn)
        .arg("send-event")
        .args(args)
        .arg("--no-environ")
        .output()
        .expect("run sentry-cli send-event")
        .tap(|o| {
            if !o.status.success() {
                eprintln!(
                    "sentry-cli failed:\n{}\n{}\n{}",
                    stdout(o),
                    stderr(o),
                    d.log()
                );
            }
        })
}

trait Tap: Sized {
    fn tap(self, f: impl FnOnce(&Self)) -> Self {
        f(&self);
        self
    }
}
impl Tap for Output {}

fn ok(bin: &Path, d: &Daemon, cwd: &Path, args: &[&str]) -> String {
    let out = sentry_cli_command(bin, "http://127.0.0.1:9", &d.token)
        .current_dir(cwd)
        .args(args)
        .output()
        .expect("run sentry-cli");
    assert!(
        out.status.success(),
        "sentry-cli {args:?} failed:\n{}\n{}\n--- daemon log ---\n{}",
        stdout(&out),
        stderr(&out),
        d.log()
    );
    stdout(&out)
}

fn issue(d: &Daemon, id: &str) -> Value {
    let (status, v) = d.api("GET", &format!("organizations/acme/issues/{id}/"), None);
    assert_eq!(status, 200, "{v}");
    v
}

#[test]
fn sentry_cli_send_event_creates_resolves_and_regresses_an_issue() {
    let Some(bin) =
        require_sentry_cli("sentry_cli_send_event_creates_resolves_and_regresses_an_issue")
    else {
        return;
    };
    let repo = GitRepo::new();
    repo.git(&["remote", "add", "origin", "git@github.com:acme/web.git"]);
    let mut repo = repo;
    repo.commit("Initial import");
    repo.commits(2, "work");
    let d = Daemon::start_with(&format!(
        "organization: acme
projects:
  - slug: web
repositories:
  - name: acme/web
    path: {}
    url: https://github.com/acme/web
    projects: [web]
    releases:
      - on: none
",
        repo.path_str()
    ));
    let web = dsn(&d, "web");

    let out = send_event(
        &bin,
        &d,
        &web.text,
        &[
            "-m",
            "payment failed for order %s",
            "-a",
            "1001",
            "--release",
            "1.0",
            "-E",
            "production",
        ],
    );
    assert!(out.status.success());
    let text = stdout(&out);
    assert!(text.contains("Event dispatched"), "{text}");
    let event_id = text
        .lines()
        .find_map(|l| l.strip_prefix("Event id: "))
        .expect("event id line")
        .replace('-', "");
    assert_eq!(
        d.count(&format!(
            "SELECT count(*) FROM events WHERE event_id = '{event_id}'"
        )),
        1
    );

    let i = issue(&d, "WEB-1");
    assert_eq!(i["title"], "payment failed for order 1001");
    assert_eq!(i["firstRelease"]["version"], "1.0");
    let (status, r) = d.api("GET", "organizations/acme/releases/1.0/", None);
    assert_eq!(status, 200);
    assert_eq!(r["newGroups"], 1);

    // The same template with another parameter is the same issue.
    let out = send_event(
        &bin,
        &d,
        &web.text,
        &[
            "-m",
            "payment failed for order %s",
            "-a",
            "1002",
            "--release",
            "1.0",
        ],
    );
    assert!(out.status.success());
    assert_eq!(issue(&d, "WEB-1")["count"], "2");

    // The fix is committed and shipped in 1.1, with sentry-cli's own set-commits --local.
    ok(
        &bin,
        &d,
        repo.path(),
        &["releases", "-p", "web", "set-commits", "1.0", "--local"],
    );
    repo.write("app/payments.py", "def pay(): retry()\n");
    repo.commit("fix(payments): retry failed orders\n\nFixes WEB-1");
    assert_eq!(issue(&d, "WEB-1")["status"], "unresolved");
    ok(
        &bin,
        &d,
        repo.path(),
        &["releases", "-p", "web", "new", "1.1"],
    );
    ok(
        &bin,
        &d,
        repo.path(),
        &["releases", "-p", "web", "set-commits", "1.1", "--local"],
    );
    let i = issue(&d, "WEB-1");
    assert_eq!(i["status"], "resolved", "{i}");
    assert_eq!(i["statusDetails"]["inRelease"], "1.1");

    // An event from 1.0 keeps it resolved, one from 1.2 regresses it.
    let out = send_event(
        &bin,
        &d,
        &web.text,
        &[
            "-m",
            "payment failed for order %s",
            "-a",
            "1003",
            "--release",
            "1.0",
        ],
    );
    assert!(out.status.success());
    assert_eq!(issue(&d, "WEB-1")["status"], "resolved");

    let out = send_event(
        &bin,
        &d,
        &web.text,
        &[
            "-m",
            "payment failed for order %s",
            "-a",
            "1004",
            "--release",
            "1.2",
        ],
    );
    assert!(out.status.success());
    let i = issue(&d, "WEB-1");
    assert_eq!(i["status"], "unresolved");
    assert_eq!(i["substatus"], "regressed");
    assert_eq!(i["count"], "4");
}

#[test]
fn sentry_cli_reports_a_wrong_dsn_key() {
    let Some(bin) = require_sentry_cli("sentry_cli_reports_a_wrong_dsn_key") else {
        return;
    };
    let d = Daemon::start();
    let web = dsn(&d, "web");
    let wrong = web
        .text
        .replace(&web.key, "0123456789abcdef0123456789abcdef");
    let out = send_event(&bin, &d, &wrong, &["-m", "nope"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("unknown DSN key") && err.contains("403"),
        "{err}"
    );
    assert_eq!(d.count("SELECT count(*) FROM events"), 0);
    assert_eq!(d.count("SELECT count(*) FROM issues"), 0);
}
