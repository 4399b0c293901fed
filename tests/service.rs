//! Running shiplog as a service: backups taken under load, restore and check; `/metrics`;
//! systemd readiness; JSON logs with request ids; shell completions and man pages.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Daemon, stderr, stdout};
use serde_json::json;

/// Runs the CLI on another data dir (no daemon behind it).
fn shiplog_on(data_dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_shiplog"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("SHIPLOG_CONFIG")
        .env_remove("SHIPLOG_DATA_DIR")
        .output()
        .expect("run shiplog")
}

#[test]
fn a_backup_taken_during_a_burst_of_writes_restores_every_acknowledged_release() {
    let d = Daemon::start();
    // Some artifacts first, so the backup carries blobs and `check` has chunks to verify.
    let dist = d.dir().join("dist");
    std::fs::create_dir_all(&dist).unwrap();
    std::fs::write(dist.join("app.min.js"), "console.log(1)\n".repeat(5000)).unwrap();
    std::fs::write(dist.join("app.min.js.map"), "{\"version\":3}").unwrap();
    assert!(
        d.api(
            "POST",
            "organizations/acme/releases/",
            Some(json!({"version": "web@0", "projects": ["web"]}))
        )
        .0 == 201
    );
    let up = d.shiplog(&[
        "artifacts",
        "-r",
        "web@0",
        "upload",
        "-p",
        "web",
        "--wait",
        dist.to_str().unwrap(),
    ]);
    assert!(up.status.success(), "upload failed: {}", stderr(&up));

    // A writer creating releases as fast as the daemon acknowledges them.
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (acked, stop, url, token) =
            (acked.clone(), stop.clone(), d.url.clone(), d.token.clone());
        std::thread::spawn(move || {
            let client = reqwest::blocking::Client::new();
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) {
                let version = format!("burst@{i}");
                let status = client
                    .post(format!("{url}/api/0/organizations/acme/releases/"))
                    .bearer_auth(&token)
                    .json(&json!({"version": version, "projects": ["web"]}))
                    .send()
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0);
                if status == 201 {
                    acked.lock().unwrap().push(version);
                }
                i += 1;
            }
        })
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while acked.lock().unwrap().len() < 20 {
        assert!(Instant::now() < deadline, "the writer made no progress");
        std::thread::sleep(Duration::from_millis(10));
    }
    let before: Vec<String> = acked.lock().unwrap().clone();
    let file = d.dir().join("backups/shiplog.sqlite3");
    let out = d.shiplog(&["backup", file.to_str().unwrap()]);
    let during = acked.lock().unwrap().len();
    // Let the writer show it went on after the backup.
    let deadline = Instant::now() + Duration::from_secs(30);
    while acked.lock().unwrap().len() <= during && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    stop.store(true, Ordering::SeqCst);
    writer.join().unwrap();
    assert!(out.status.success(), "backup failed: {}", stderr(&out));
    assert!(stdout(&out).contains("backed up"), "{}", stdout(&out));
    assert!(
        acked.lock().unwrap().len() > during,
        "the writes went on during and after the backup"
    );

    // Refusals: an existing backup file, a non-empty data dir.
    let again = d.shiplog(&["backup", file.to_str().unwrap()]);
    assert!(!again.status.success());
    assert!(stderr(&again).contains("--force"), "{}", stderr(&again));
    let refused = shiplog_on(&d.data_dir(), &["restore", file.to_str().unwrap()]);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("is not empty"),
        "{}",
        stderr(&refused)
    );

    let restored = d.dir().join("restored");
    let out = shiplog_on(&restored, &["restore", file.to_str().unwrap()]);
    assert!(out.status.success(), "restore failed: {}", stderr(&out));
    let out = shiplog_on(&restored, &["check"]);
    assert!(
        out.status.success(),
        "check failed: {}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stdout(&out).contains("is sound (3 chunks hashed)"),
        "{}",
        stdout(&out)
    );

    let db = rusqlite::Connection::open(restored.join("shiplog.sqlite3")).unwrap();
    let mut stmt = db
        .prepare("SELECT count(*) FROM releases WHERE version = ?1")
        .unwrap();
    for version in &before {
        let n: i64 = stmt.query_row([version], |r| r.get(0)).unwrap();
        assert_eq!(
            n, 1,
            "{version} was acknowledged before the backup began but is missing"
        );
    }
    let files: i64 = db
        .query_row("SELECT count(*) FROM release_files", [], |r| r.get(0))
        .unwrap();
    assert_eq!(files, 2);

    // A damaged store: check names the damage and fails.
    db.execute(
        "UPDATE blobs SET data = x'00' WHERE id = (SELECT min(id) FROM blobs)",
        [],
    )
    .unwrap();
    drop(stmt);
    drop(db);
    let out = shiplog_on(&restored, &["check"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stdout(&out).contains("problem: chunk"), "{}", stdout(&out));
}

/// Scrapes `/metrics` (with a bearer token when given); returns status and body.
fn scrape(d: &Daemon, token: Option<&str>) -> (u16, String) {
    let mut req = reqwest::blocking::Client::new().get(format!("{}/metrics", d.url));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().expect("scrape");
    (resp.status().as_u16(), resp.text().unwrap_or_default())
}

/// The value of the sample whose name and labels match exactly (0 when absent). `labels` is
/// the text between the braces, in the exporter's order (sorted by key as recorded).
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .find(|(series, _)| {
            let Some(rest) = series.strip_prefix(name) else {
                return false;
            };
            let inner = rest.trim_start_matches('{').trim_end_matches('}');
            if labels.is_empty() {
                return rest.is_empty();
            }
            let mut found: Vec<&str> = inner.split(',').filter(|p| !p.is_empty()).collect();
            found.sort();
            let mut want: Vec<String> =
                labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
            want.sort();
            found == want.iter().map(String::as_str).collect::<Vec<_>>()
        })
        .map_or(0.0, |(_, v)| v.parse().unwrap_or(f64::NAN))
}

#[test]
fn metrics_count_real_traffic_by_route_status_kind_and_outcome() {
    let backups = tempfile::tempdir().unwrap();
    let drops = tempfile::tempdir().unwrap();
    let d = Daemon::start_with(&format!(
        "organization: acme
projects:
  - slug: web
artifacts:
  drop_dirs: [{}]
github:
  webhook_secret: s3cret
  api_url: http://127.0.0.1:9
schedules:
  - {{ name: backup, cron: '* * * * * *', job: backup, dir: {}, keep: 2 }}
metrics:
  allow_loopback: false
  token: m3trics
",
        drops.path().display(),
        backups.path().display()
    ));
    // Loopback is not enough here; the token is.
    assert_eq!(scrape(&d, None).0, 403);
    assert_eq!(scrape(&d, Some("wrong")).0, 403);
    let (status, before) = scrape(&d, Some("m3trics"));
    assert_eq!(status, 200, "{before}");

    let releases = "/api/0/organizations/{org}/releases/";
    let release = "/api/0/organizations/{org}/releases/{version}/";
    let ok = [("method", "GET"), ("route", releases), ("status", "200")];
    let missing = [("method", "GET"), ("route", release), ("status", "404")];
    for _ in 0..3 {
        assert_eq!(d.api("GET", "organizations/acme/releases/", None).0, 200);
    }
    assert_eq!(
        d.api("GET", "organizations/acme/releases/nope/", None).0,
        404
    );
    assert_eq!(
        d.api("GET", "organizations/acme/releases/nope-2/", None).0,
        404
    );

    // Envelopes: one accepted event, one refused for an unknown key.
    let dsn = common::events::dsn(&d, "web");
    let event = common::events::error_event("ValueError", "boom", None);
    assert_eq!(common::events::send_event(&d, &dsn, &event).0, 200);
    let bad = common::events::Dsn {
        key: "0".repeat(32),
        ..dsn.clone()
    };
    assert_eq!(common::events::send_event(&d, &bad, &event).0, 403);

    // Webhooks: a signed ping is queued and applied by the pipeline; a bad signature refused.
    let body = br#"{"zen":"hi","hook_id":1}"#.to_vec();
    let post = |signature: String| {
        reqwest::blocking::Client::new()
            .post(format!("{}/webhooks/github", d.url))
            .header("content-type", "application/json")
            .header("x-github-event", "ping")
            .header("x-github-delivery", "guid-1")
            .header("x-github-hook-id", "1")
            .header("x-hub-signature-256", signature)
            .body(body.clone())
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(post(shiplog::github::verify::sign(b"s3cret", &body)), 202);
    assert_eq!(post("sha256=00".into()), 401);
    let kind: String = d
        .db()
        .query_row("SELECT kind FROM inbox", [], |r| r.get(0))
        .unwrap();

    // Drop folder: a bundle for a release is stored, one for another organization refused.
    let created = d.api(
        "POST",
        "organizations/acme/releases/",
        Some(json!({"version": "web@1", "projects": ["web"]})),
    );
    assert_eq!(created.0, 201);
    for (org, name) in [("acme", "good.zip"), ("someone-else", "bad.zip")] {
        let files = [("files/_/_/a.js", "~/a.js", "minified_source")];
        let m = common::artifacts::manifest(org, Some("web@1"), &files);
        let zip = common::artifacts::bundle(&m, &[("files/_/_/a.js", b"let a = 1;\n")], false);
        common::artifacts::drop_file(drops.path(), name, &zip);
    }

    // The pipeline and the backup schedule run in the background: wait for both.
    let deadline = Instant::now() + Duration::from_secs(20);
    let after = loop {
        let (_, text) = scrape(&d, Some("m3trics"));
        let applied = sample(
            &text,
            "shiplog_pipeline_events_applied_total",
            &[("kind", &kind)],
        );
        let dropped = sample(
            &text,
            "shiplog_drop_folder_results_total",
            &[("outcome", "stored")],
        ) + sample(
            &text,
            "shiplog_drop_folder_results_total",
            &[("outcome", "refused")],
        );
        if applied >= 1.0 && dropped >= 2.0 && sample(&text, "shiplog_backups_total", &[]) >= 1.0 {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "pipeline or backup never counted:\n{text}\n{}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let delta = |name: &str, labels: &[(&str, &str)]| {
        sample(&after, name, labels) - sample(&before, name, labels)
    };
    assert_eq!(delta("shiplog_http_requests_total", &ok), 3.0, "{after}");
    assert_eq!(
        delta("shiplog_http_requests_total", &missing),
        2.0,
        "{after}"
    );
    let latency = [("method", "GET"), ("route", releases)];
    assert_eq!(
        delta("shiplog_http_request_duration_seconds_count", &latency),
        3.0
    );
    assert!(
        after.contains("shiplog_http_request_duration_seconds_bucket{"),
        "{after}"
    );
    let accepted = [("type", "event"), ("outcome", "accepted"), ("reason", "")];
    let refused = [
        ("type", "event"),
        ("outcome", "refused"),
        ("reason", "forbidden"),
    ];
    assert_eq!(
        delta("shiplog_envelope_items_total", &accepted),
        1.0,
        "{after}"
    );
    assert_eq!(
        delta("shiplog_envelope_items_total", &refused),
        1.0,
        "{after}"
    );
    assert_eq!(
        delta("shiplog_webhook_deliveries_total", &[("outcome", "queued")]),
        1.0
    );
    assert_eq!(
        delta(
            "shiplog_webhook_deliveries_total",
            &[("outcome", "bad_signature")]
        ),
        1.0
    );
    assert_eq!(
        delta("shiplog_pipeline_events_applied_total", &[("kind", &kind)]),
        1.0
    );
    assert!(sample(&after, "shiplog_store_size_bytes", &[]) > 0.0);
    assert!(after.contains("shiplog_store_wal_size_bytes "), "{after}");
    assert!(after.contains("shiplog_inbox_depth "), "{after}");
    assert!(
        after.contains("shiplog_inbox_oldest_event_age_seconds "),
        "{after}"
    );
    assert!(
        after.contains("shiplog_store_writer_wait_seconds_count "),
        "{after}"
    );
    // Raw paths never become labels.
    assert!(!after.contains("nope"), "{after}");

    // The backup schedule keeps its last two copies.
    std::thread::sleep(Duration::from_millis(2500));
    let copies = std::fs::read_dir(backups.path()).unwrap().count();
    assert!((1..=2).contains(&copies), "{copies} copies");
}

/// A `shiplog serve` started by the test itself, with extra environment; killed on drop.
struct Served {
    child: std::process::Child,
    dir: tempfile::TempDir,
}

impl Served {
    fn start(env: &[(&str, &std::ffi::OsStr)]) -> Served {
        let dir = tempfile::tempdir().unwrap();
        let log = std::fs::File::create(dir.path().join("daemon.log")).unwrap();
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_shiplog"));
        cmd.arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env_remove("SHIPLOG_CONFIG")
            .env_remove("SHIPLOG_LOG_FORMAT")
            .env("RUST_LOG", "info,shiplog::api=debug")
            .stdin(std::process::Stdio::null())
            .stderr(log);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().unwrap();
        Served { child, dir }
    }

    /// The daemon's URL, once its runtime file exists.
    fn url(&self) -> String {
        let path = self.dir.path().join("data/daemon.json");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(text) = std::fs::read_to_string(&path)
                && let Ok(v) = serde_json::from_str::<serde_json::Value>(&text)
            {
                return v["url"].as_str().unwrap().to_string();
            }
            assert!(Instant::now() < deadline, "no daemon.json:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("daemon.log")).unwrap_or_default()
    }

    fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        self.child.wait().unwrap()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn systemd_hears_ready_once_healthz_answers_and_stopping_on_sigterm() {
    use std::os::unix::net::UnixDatagram;
    let sockets = tempfile::tempdir().unwrap();
    let path = sockets.path().join("notify.sock");
    let socket = UnixDatagram::bind(&path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut served = Served::start(&[("NOTIFY_SOCKET", path.as_os_str())]);
    let mut buf = [0u8; 512];
    let n = socket.recv(&mut buf).expect("no READY=1 within 30 s");
    let ready = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(ready.lines().any(|l| l == "READY=1"), "{ready}");
    assert!(ready.contains("STATUS=listening on 127.0.0.1:"), "{ready}");
    // Ready means ready: /healthz answers at once, and loopback clients may read /metrics.
    let url = served.url();
    let health = reqwest::blocking::get(format!("{url}/healthz")).unwrap();
    assert_eq!(health.status().as_u16(), 200);
    let metrics = reqwest::blocking::get(format!("{url}/metrics")).unwrap();
    assert_eq!(metrics.status().as_u16(), 200);

    assert!(served.terminate().success(), "{}", served.log());
    let n = socket.recv(&mut buf).expect("no STOPPING=1");
    assert_eq!(String::from_utf8_lossy(&buf[..n]), "STOPPING=1\n");
}

#[test]
fn the_unit_file_passes_systemd_analyze_verify() {
    let Ok(out) = std::process::Command::new("systemd-analyze")
        .arg("--version")
        .output()
    else {
        assert!(
            std::env::var_os("CI").is_none(),
            "systemd-analyze is missing in CI"
        );
        eprintln!("skipped: systemd-analyze is not installed");
        return;
    };
    assert!(out.status.success());
    let dir = tempfile::tempdir().unwrap();
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/contrib/shiplog.service"
    ))
    .unwrap()
    // verify checks that the binary exists: point it at the one just built.
    .replace("/usr/local/bin/shiplog", env!("CARGO_BIN_EXE_shiplog"));
    let path = dir.path().join("shiplog.service");
    std::fs::write(&path, unit).unwrap();
    let out = std::process::Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .unwrap();
    // verify exits 0 on unknown keys too, but warns: a clean run prints nothing.
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Makes two requests (one bringing its own id) and returns the ids the daemon answered with.
fn two_requests(url: &str) -> (String, String) {
    let client = reqwest::blocking::Client::new();
    let own = client
        .get(format!("{url}/api/0/organizations/"))
        .header("x-request-id", "ci-run-42.step_7")
        .send()
        .unwrap();
    assert_eq!(own.status().as_u16(), 401);
    let fresh = client.get(format!("{url}/healthz")).send().unwrap();
    let id =
        |r: &reqwest::blocking::Response| r.headers()["x-request-id"].to_str().unwrap().to_string();
    (id(&own), id(&fresh))
}

#[test]
fn json_logs_and_human_logs_both_carry_request_ids() {
    let mut json_served = Served::start(&[("SHIPLOG_LOG_FORMAT", "json".as_ref())]);
    let (own, fresh) = two_requests(&json_served.url());
    assert_eq!(own, "ci-run-42.step_7");
    assert_eq!(fresh.len(), 16, "{fresh}");
    assert!(json_served.terminate().success());
    let log = json_served.log();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l["fields"]["message"] == "shiplog is ready"),
        "{log}"
    );
    for id in [&own, &fresh] {
        let answered = lines
            .iter()
            .find(|l| l["span"]["request_id"] == id.as_str())
            .unwrap_or_else(|| panic!("no line for request {id}:\n{log}"));
        assert_eq!(answered["fields"]["message"], "answered");
    }

    let mut human = Served::start(&[]);
    let (own, fresh) = two_requests(&human.url());
    assert!(human.terminate().success());
    let log = human.log();
    assert!(log.contains(&format!("request_id={own}")), "{log}");
    assert!(log.contains(&format!("request_id={fresh}")), "{log}");
    assert!(!log.trim_start().starts_with('{'), "{log}");

    let out = shiplog_on(human.dir.path(), &["--log-format", "xml", "serve"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("possible values: human, json"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn completions_and_man_pages_are_generated_from_the_command_line() {
    let nowhere = tempfile::tempdir().unwrap();
    for (shell, marker) in [
        ("bash", "complete -F _shiplog"),
        ("zsh", "#compdef shiplog"),
        ("fish", "complete -c shiplog"),
    ] {
        let out = shiplog_on(nowhere.path(), &["completions", shell]);
        assert!(out.status.success(), "{shell}: {}", stderr(&out));
        let text = stdout(&out);
        assert!(text.contains(marker), "{shell}:\n{text}");
        assert!(
            text.contains("backup") && text.contains("releases"),
            "{shell}"
        );
    }
    let bad = shiplog_on(nowhere.path(), &["completions", "tcsh"]);
    assert!(!bad.status.success());

    let out = shiplog_on(nowhere.path(), &["man"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let page = stdout(&out);
    assert!(page.starts_with(".ie \\n(.g .ds Aq"), "{page}");
    assert!(page.contains(".TH shiplog 1"), "{page}");
    assert!(page.contains("releases"), "{page}");

    let dir = nowhere.path().join("man1");
    let out = shiplog_on(nowhere.path(), &["man", "--out-dir", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    for page in [
        "shiplog.1",
        "shiplog-releases.1",
        "shiplog-backup.1",
        "shiplog-token-create.1",
    ] {
        let text =
            std::fs::read_to_string(dir.join(page)).unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(text.contains(".TH "), "{page}");
    }
    // The data dir was never touched: these commands need no config and no store.
    assert!(!nowhere.path().join("shiplog.sqlite3").exists());
}
