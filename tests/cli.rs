//! shiplog's own CLI against a real daemon, and how `serve` starts and refuses to start.

mod common;

use std::process::{Command, Stdio};

use common::{Daemon, stderr, stdout};
use serde_json::Value;

fn ok(d: &Daemon, args: &[&str]) -> String {
    let out = d.shiplog(args);
    assert!(
        out.status.success(),
        "shiplog {args:?} failed:\n{}{}",
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

fn fails(d: &Daemon, args: &[&str]) -> String {
    let out = d.shiplog(args);
    assert!(!out.status.success(), "shiplog {args:?} should fail");
    let err = stderr(&out);
    assert_eq!(err.trim().lines().count(), 1, "one line of error: {err}");
    assert!(err.starts_with("error: "), "{err}");
    err
}

#[test]
fn release_and_deploy_verbs() {
    let d = Daemon::start();
    assert!(ok(&d, &["releases", "-p", "web", "new", "1.0.0"]).contains("Created release 1.0.0"));
    assert!(ok(&d, &["releases", "-p", "web", "new", "1.0.0"]).contains("already exists"));
    ok(
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
        ],
    );

    let table = ok(&d, &["releases", "list"]);
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("VERSION"), "{table}");
    assert!(
        lines[1].starts_with("1.1.0") && lines[2].starts_with("1.0.0"),
        "{table}"
    );
    assert!(lines[2].contains("(unreleased)"));
    let json: Value = serde_json::from_str(&ok(&d, &["releases", "list", "--json"])).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 2);
    let only_api = ok(&d, &["releases", "-p", "api", "list"]);
    assert!(only_api.contains("1.1.0") && !only_api.contains("1.0.0"));

    let info = ok(&d, &["releases", "info", "1.0.0"]);
    assert!(info.contains("Version") && info.contains("1.0.0") && info.contains("web"));
    ok(
        &d,
        &["releases", "finalize", "1.0.0", "--released", "1700000000"],
    );
    let r: Value = serde_json::from_str(&ok(&d, &["releases", "info", "1.0.0", "--json"])).unwrap();
    assert_eq!(r["dateReleased"], "2023-11-14T22:13:20.000000Z");

    ok(&d, &["releases", "archive", "1.0.0"]);
    assert!(!ok(&d, &["releases", "list"]).contains("1.0.0"));
    assert!(ok(&d, &["releases", "list", "--status", "archived"]).contains("1.0.0"));
    ok(&d, &["releases", "restore", "1.0.0"]);

    assert!(
        ok(
            &d,
            &[
                "deploys",
                "-r",
                "1.0.0",
                "new",
                "-e",
                "production",
                "-n",
                "d1"
            ]
        )
        .contains("Created new deploy d1 for 'production'")
    );
    let deploys = ok(&d, &["deploys", "-r", "1.0.0", "list"]);
    assert!(
        deploys.contains("production") && deploys.contains("d1"),
        "{deploys}"
    );

    assert!(ok(&d, &["releases", "delete", "1.1.0"]).contains("Deleted release 1.1.0"));
    assert_eq!(d.count("SELECT count(*) FROM releases"), 1);
}

#[test]
fn errors_are_one_line_with_nonzero_exit() {
    let d = Daemon::start();
    let err = fails(&d, &["releases", "info", "9.9.9"]);
    assert!(
        err.contains("Release '9.9.9' not found (HTTP 404)"),
        "{err}"
    );
    let err = fails(&d, &["releases", "-p", "nope", "new", "1.0"]);
    assert!(err.contains("Invalid project ids or slugs: nope"), "{err}");
    let err = fails(&d, &["releases", "new", "a/b"]);
    assert!(err.contains("forbidden character '/'"), "{err}");
    let err = fails(&d, &["releases", "archive", "9.9.9"]);
    assert!(err.contains("not found"), "{err}");
    let err = fails(&d, &["deploys", "-r", "9.9.9", "new", "-e", "prod"]);
    assert!(err.contains("not found"), "{err}");
    let err = fails(&d, &["releases", "finalize", "1", "--released", "tomorrow"]);
    assert!(err.contains("not a timestamp"), "{err}");
    let err = fails(&d, &["token", "revoke", "99"]);
    assert!(err.contains("no active token with id 99"), "{err}");

    // Without a token, the CLI says how to get one.
    let out = d
        .shiplog_cmd(&["releases", "list"])
        .env_remove("SHIPLOG_TOKEN")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("shiplog token create"),
        "{}",
        stderr(&out)
    );

    // A daemon that is not there is named with a hint.
    let out = d
        .shiplog_cmd(&["releases", "list"])
        .env("SHIPLOG_URL", "http://127.0.0.1:9")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("cannot reach shiplog at http://127.0.0.1:9"),
        "{err}"
    );
    assert!(err.contains("shiplog serve"), "{err}");
}

#[test]
fn the_token_alone_is_enough() {
    let d = Daemon::start();
    // No SHIPLOG_URL: the URL and organization come from the token.
    let out = d
        .shiplog_cmd(&["releases", "-p", "web", "new", "7.0"])
        .env_remove("SHIPLOG_URL")
        .env("SHIPLOG_DATA_DIR", "/nonexistent")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        d.count("SELECT count(*) FROM releases WHERE version = '7.0'"),
        1
    );
}

#[test]
fn projects_can_be_added_outside_the_config() {
    let d = Daemon::start();
    assert!(ok(&d, &["projects", "add", "mobile", "--name", "Mobile"]).contains("mobile"));
    let list = ok(&d, &["projects", "list"]);
    assert!(list.contains("mobile") && list.contains("Mobile") && list.contains("web"));
    // The running daemon sees it at once.
    ok(&d, &["releases", "-p", "mobile", "new", "m1"]);
    let err = fails(&d, &["projects", "add", "Bad Slug"]);
    assert!(err.contains("lowercase"), "{err}");
}

fn serve_with(config: &str, extra: &[&str]) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.yaml");
    std::fs::write(&cfg, config).unwrap();
    Command::new(env!("CARGO_BIN_EXE_shiplog"))
        .arg("--config")
        .arg(&cfg)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("serve")
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn a_bad_config_is_refused_with_one_line() {
    let out = serve_with(
        "projects:\n  - slug: Web App\n",
        &["--listen", "127.0.0.1:0"],
    );
    assert!(!out.status.success());
    let err = stderr(&out);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("config.yaml: projects[0].slug:"), "{err}");
    let out = serve_with("listen: [1, 2]\n", &[]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("config.yaml"), "{}", stderr(&out));
    let out = serve_with("organization: acme\n", &["--listen", "nonsense"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--listen"), "{}", stderr(&out));
    let out = serve_with("nosuchkey: 1\n", &[]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("nosuchkey"), "{}", stderr(&out));
}

#[test]
fn serve_runs_on_the_embedded_default_without_a_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_shiplog"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("SHIPLOG_DATA_DIR", dir.path())
        .env_remove("SHIPLOG_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let runtime = dir.path().join("daemon.json");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let url = loop {
        if let Ok(text) = std::fs::read_to_string(&runtime)
            && let Ok(v) = serde_json::from_str::<Value>(&text)
        {
            break v["url"].as_str().unwrap().to_string();
        }
        assert!(std::time::Instant::now() < deadline, "daemon did not start");
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let health: Value = reqwest::blocking::get(format!("{url}/healthz"))
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(health["status"], "ok");
    // The default organization is `default`.
    let out = Command::new(env!("CARGO_BIN_EXE_shiplog"))
        .args(["token", "create"])
        .env("SHIPLOG_DATA_DIR", dir.path())
        .env_remove("SHIPLOG_CONFIG")
        .output()
        .unwrap();
    let token = stdout(&out).trim().to_string();
    let payload = shiplog::model::token::payload(&token).unwrap();
    assert_eq!(payload.org, "default");
    assert_eq!(payload.url.as_deref(), Some(url.as_str()));
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    assert!(
        !runtime.exists(),
        "the runtime file is removed on a clean stop"
    );
}
