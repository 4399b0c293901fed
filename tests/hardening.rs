//! Regression tests for what broke when the daemon was attacked on purpose (issue 10): each
//! test pins one hole, named after it, and fails without its fix.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::artifacts::{
    assemble_until_done, bundle, drop_file, file_named, files, manifest, upload, wait_for,
};
use common::{DEFAULT_CONFIG, Daemon};
use serde_json::json;

/// Runs `shiplog serve` with `config`, killing it if it has not exited after `limit`.
fn serve_until_exit(
    config: &str,
    listen: &str,
    limit: Duration,
) -> (Option<i32>, String, Duration) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.yaml");
    std::fs::write(&cfg, config).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_shiplog"))
        .arg("--config")
        .arg(&cfg)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["serve", "--listen", listen])
        .current_dir(dir.path())
        .env_remove("SHIPLOG_CONFIG")
        .env_remove("SHIPLOG_LISTEN")
        .env_remove("SHIPLOG_DATA_DIR")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    let _ = child.stderr.take().unwrap().read_to_string(&mut err);
    (code, err, started.elapsed())
}

#[test]
fn a_busy_port_stops_start_up_at_once_even_with_a_drop_folder() {
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let config = format!("{DEFAULT_CONFIG}artifacts:\n  drop_dirs: [drop]\n");
    let (code, err, took) = serve_until_exit(&config, &addr, Duration::from_secs(20));
    assert!(code.is_some(), "serve hung on a busy port:\n{err}");
    assert_ne!(code, Some(0), "{err}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error: ") && last.contains(&addr),
        "the last line must name the address: {err}"
    );
}

/// Reads until the daemon closes the connection; how long that took (None: still open after
/// `limit`).
fn time_until_closed(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    stream.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Some(started.elapsed()),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return Some(started.elapsed());
            }
            Err(_) => return None,
        }
        if started.elapsed() > limit {
            return None;
        }
    }
}

const SHORT_TIMEOUTS: &str =
    "limits:\n  header_timeout: 1s\n  idle_timeout: 3s\n  body_timeout: 1s\n";

#[test]
fn stalled_connections_are_closed() {
    let d = Daemon::start_with(&format!("{DEFAULT_CONFIG}{SHORT_TIMEOUTS}"));
    let addr = d.url.trim_start_matches("http://").to_string();
    let limit = Duration::from_secs(10);

    // Nothing at all: the idle timeout.
    let mut silent = TcpStream::connect(&addr).unwrap();
    // Half a request head: the header timeout, well before the idle one.
    let mut slow = TcpStream::connect(&addr).unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    // A body announced and never sent: the body timeout.
    let mut stalled = TcpStream::connect(&addr).unwrap();
    write!(
        stalled,
        "POST /api/0/organizations/acme/releases/ HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n{{\"ver",
        d.token
    )
    .unwrap();
    // A keep-alive connection after its answer: the idle timeout.
    let mut kept = TcpStream::connect(&addr).unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();

    let slow_took = time_until_closed(&mut slow, limit).expect("half a head stays open");
    assert!(slow_took < Duration::from_millis(2500), "{slow_took:?}");
    let stalled_took = time_until_closed(&mut stalled, limit).expect("a stalled body stays open");
    assert!(
        stalled_took < Duration::from_millis(3000),
        "{stalled_took:?}"
    );
    time_until_closed(&mut silent, limit).expect("a silent connection stays open");
    time_until_closed(&mut kept, limit).expect("an idle keep-alive connection stays open");

    // Requests that keep moving are not affected.
    let (status, _) = d.api("GET", "organizations/acme/releases/", None);
    assert_eq!(status, 200);
}

/// A daemon watching a drop folder, with release 1.0.0.
fn with_drop_folder(extra: &str) -> (Daemon, PathBuf, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let drop = dir.path().join("drop");
    std::fs::create_dir_all(&drop).unwrap();
    let d = Daemon::start_with(&format!(
        "{DEFAULT_CONFIG}artifacts:\n  drop_dirs: [{}]\n{extra}",
        drop.display()
    ));
    let (status, v) = d.api(
        "POST",
        "organizations/acme/releases/",
        Some(json!({"version": "1.0.0", "projects": ["web"]})),
    );
    assert_eq!(status, 201, "{v}");
    (d, drop, dir)
}

fn failed_reason(drop: &Path, name: &str) -> String {
    let error = drop.join("failed").join(format!("{name}.error"));
    wait_for(30, &format!("{name} to land in failed/"), || error.exists());
    std::fs::read_to_string(error).unwrap()
}

/// One highly compressible file of `len` zero bytes in a bundle for release 1.0.0.
fn zeros_bundle(len: usize) -> Vec<u8> {
    let m = manifest(
        "acme",
        Some("1.0.0"),
        &[("files/a.js", "~/a.js", "minified_source")],
    );
    bundle(&m, &[("files/a.js", &vec![0u8; len])], true)
}

/// Rewrites the uncompressed size of every entry in a zip's local headers and central
/// directory, as a hostile bundle would, so the directory understates what the entries inflate
/// to.
fn understate_sizes(mut zip: Vec<u8>, size: u32) -> Vec<u8> {
    for (signature, at) in [(b"PK\x03\x04", 22), (b"PK\x01\x02", 24)] {
        let mut i = 0;
        while let Some(pos) = zip[i..].windows(4).position(|w| w == signature) {
            let field = i + pos + at;
            let name_len_at = i + pos + if at == 22 { 26 } else { 28 };
            let name_len = u16::from_le_bytes([zip[name_len_at], zip[name_len_at + 1]]) as usize;
            let name_at = i + pos + if at == 22 { 30 } else { 46 };
            if zip[name_at..name_at + name_len] != *b"manifest.json" {
                zip[field..field + 4].copy_from_slice(&size.to_le_bytes());
            }
            i += pos + 4;
        }
    }
    zip
}

#[test]
fn a_bundle_unpacking_past_the_limit_is_refused_and_stores_nothing() {
    let (d, drop, _dir) = with_drop_folder("limits:\n  max_unpacked_bundle: 1 MiB\n");
    // 4 MiB of zeros deflate to a few KiB: the zip directory says 4 MiB.
    drop_file(&drop, "bomb.zip", &zeros_bundle(4 * 1024 * 1024));
    let reason = failed_reason(&drop, "bomb.zip");
    assert!(reason.contains("max_unpacked_bundle"), "{reason}");
    assert_eq!(d.count("SELECT count(*) FROM blobs"), 0);

    // The same bundle uploaded, its directory lying (it claims 1000 bytes): caught while
    // inflating, the assemble state says why, and no file is stored.
    let lying = understate_sizes(zeros_bundle(4 * 1024 * 1024), 1000);
    let body = upload(&d, &lying, 1024 * 1024, json!({"version": "1.0.0"}));
    let answer = assemble_until_done(&d, &body);
    assert_eq!(answer["state"], "error", "{answer}");
    let detail = answer["detail"].as_str().unwrap();
    assert!(
        detail.contains("max_unpacked_bundle") || detail.contains("declared"),
        "{answer}"
    );
    assert_eq!(d.count("SELECT count(*) FROM files"), 0);
    assert_eq!(d.count("SELECT count(*) FROM release_files"), 0);
}

#[test]
fn a_deleted_files_chunks_can_be_pruned_at_once() {
    let d = Daemon::start();
    let (status, _) = d.api(
        "POST",
        "organizations/acme/releases/",
        Some(json!({"version": "1.0.0", "projects": ["web"]})),
    );
    assert_eq!(status, 201);
    let body = upload(
        &d,
        &zeros_bundle(300_000),
        1024 * 1024,
        json!({"version": "1.0.0"}),
    );
    assert_eq!(assemble_until_done(&d, &body)["state"], "ok");
    let list = files(&d, "1.0.0");
    let id = file_named(&list, "~/a.js")["id"]
        .as_str()
        .unwrap()
        .to_string();
    let before = d.count("SELECT count(*) FROM blobs");
    let (status, v) = d.api(
        "DELETE",
        &format!("organizations/acme/releases/1.0.0/files/{id}/"),
        None,
    );
    assert_eq!(status, 204, "{v}");
    let out = d.shiplog(&["artifacts", "prune", "--keep-days", "3650"]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    // The file's own chunk went; the uploaded bundle's chunks stay for their grace hour.
    assert!(d.count("SELECT count(*) FROM blobs") < before);
    assert_eq!(d.count("SELECT count(*) FROM files"), 0);
}

#[cfg(unix)]
#[test]
fn a_symlink_in_the_drop_folder_is_refused_without_touching_its_target() {
    let (d, drop, dir) = with_drop_folder("");
    let outside = dir.path().join("outside.zip");
    let secret = zeros_bundle(100);
    std::fs::write(&outside, &secret).unwrap();
    std::os::unix::fs::symlink(&outside, drop.join("link.zip")).unwrap();
    let reason = failed_reason(&drop, "link.zip");
    assert!(reason.contains("symbolic link"), "{reason}");
    assert!(
        std::fs::symlink_metadata(drop.join("failed/link.zip"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(std::fs::read(&outside).unwrap(), secret);
    assert_eq!(d.count("SELECT count(*) FROM blobs"), 0);
    assert!(files(&d, "1.0.0").is_empty());
}

/// Sends raw bytes as one HTTP/1.1 request and returns (status, content type, body).
fn raw_request(d: &Daemon, head: &str, body: &[u8]) -> (u16, String, String) {
    let mut stream = TcpStream::connect(d.url.trim_start_matches("http://")).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let content_type = answer
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-type: ")
                .map(str::to_owned)
        })
        .unwrap_or_default();
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, content_type, body)
}

#[test]
fn bad_input_is_refused_with_a_json_detail() {
    let d = Daemon::start();
    for version in ["1.0\u{85}", "1.0\u{202e}3.2", "\u{2066}1.0"] {
        let (status, v) = d.api(
            "POST",
            "organizations/acme/releases/",
            Some(json!({"version": version, "projects": ["web"]})),
        );
        assert_eq!(status, 400, "{version:?}: {v}");
        assert!(
            v["detail"]
                .as_str()
                .unwrap()
                .contains("forbidden character"),
            "{v}"
        );
    }
    let (status, _) = d.api(
        "POST",
        "organizations/acme/releases/",
        Some(json!({"version": "1.0", "projects": ["web"]})),
    );
    assert_eq!(status, 201);
    let (status, v) = d.api(
        "POST",
        "organizations/acme/releases/1.0/deploys/",
        Some(json!({"environment": "prod\u{0}"})),
    );
    assert_eq!(status, 400, "{v}");

    // A path that is not UTF-8, and a multipart body without a boundary: JSON, not text.
    let auth = format!("Authorization: Bearer {}\r\n", d.token);
    let (status, content_type, body) = raw_request(
        &d,
        &format!(
            "GET /api/0/organizations/acme/releases/%FF%FE/ HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n"
        ),
        b"",
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(v["detail"].is_string(), "{v}");
    let (status, content_type, body) = raw_request(
        &d,
        &format!(
            "POST /api/0/organizations/acme/chunk-upload/ HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: multipart/form-data\r\nContent-Length: 4\r\nConnection: close\r\n\r\n"
        ),
        b"abcd",
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(v["detail"].is_string(), "{v}");
}

#[test]
fn overflowing_and_non_ascii_input_answers_instead_of_panicking() {
    let d = Daemon::start();
    // A commit id that is not ASCII: the notes cut a short id by characters.
    let (status, v) = d.api(
        "POST",
        "organizations/acme/releases/",
        Some(json!({
            "version": "2.0",
            "projects": ["web"],
            "commits": [{"id": "ééééééééé", "repository": "acme/web", "message": "fix: x"}],
        })),
    );
    assert_eq!(status, 201, "{v}");
    let (status, v) = d.api("GET", "organizations/acme/releases/2.0/notes/", None);
    assert_eq!(status, 200, "{v}");

    for path in [
        "organizations/acme/releases/?cursor=100:9223372036854775807:0",
        "organizations/acme/releases/2.0/files/?cursor=100:9223372036854775807:0",
        "organizations/acme/issues/?cursor=100:9223372036854775807:0",
        "organizations/acme/releases/?query=release.version:9223372036854775807.*",
    ] {
        let (status, v) = d.api("GET", path, None);
        assert_eq!(status, 400, "{path}: {v}");
        assert!(v["detail"].is_string(), "{path}: {v}");
    }
    // The daemon is still there.
    assert_eq!(d.api("GET", "organizations/acme/releases/", None).0, 200);
}

#[test]
fn github_deliveries_and_hooks_are_visible_to_their_organization_only() {
    let secret = "s3cret";
    let d = Daemon::start_with(&format!(
        "{DEFAULT_CONFIG}github:\n  webhook_secret: {secret}\n  api_url: http://127.0.0.1:9\nschedules: []\n"
    ));
    let body = std::fs::read(format!(
        "{}/tests/fixtures/github/ping.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let resp = reqwest::blocking::Client::new()
        .post(format!("{}/webhooks/github", d.url))
        .header("content-type", "application/json")
        .header("x-github-event", "ping")
        .header("x-github-delivery", "guid-1")
        .header("x-github-hook-id", "109948940")
        .header(
            "x-hub-signature-256",
            shiplog::github::verify::sign(secret.as_bytes(), &body),
        )
        .body(body)
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 202);
    wait_for(30, "the ping to be applied", || {
        let (_, v) = d.api("GET", "organizations/acme/github/deliveries/", None);
        v.as_array().is_some_and(|a| !a.is_empty())
    });
    let (_, hooks) = d.api("GET", "organizations/acme/github/hooks/", None);
    assert_eq!(hooks.as_array().unwrap().len(), 1, "{hooks}");

    let out = d.shiplog(&["token", "create", "--org", "other", "--create-org"]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let other = common::stdout(&out).trim().to_string();
    for path in [
        "organizations/other/github/deliveries/",
        "organizations/other/github/hooks/",
    ] {
        let (status, v) = d.request("GET", path, None, Some(&other));
        assert_eq!(status, 200, "{v}");
        assert_eq!(v, json!([]), "{path}");
    }
}

#[test]
fn token_create_for_an_unknown_organization_needs_create_org() {
    let d = Daemon::start();
    let out = d.shiplog(&["token", "create", "--org", "other"]);
    assert!(!out.status.success());
    let err = common::stderr(&out);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("other") && err.contains("--create-org"),
        "{err}"
    );
    assert_eq!(
        d.count("SELECT count(*) FROM organizations WHERE slug = 'other'"),
        0
    );
    let out = d.shiplog(&["token", "create", "--org", "other", "--create-org"]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert_eq!(
        d.count("SELECT count(*) FROM organizations WHERE slug = 'other'"),
        1
    );
    // The configured organization needs no flag.
    let out = d.shiplog(&["token", "create", "--org", "acme"]);
    assert!(out.status.success(), "{}", common::stderr(&out));
}

#[test]
fn untrusted_names_cannot_forge_log_lines() {
    let (d, drop, _dir) = with_drop_folder("");
    drop_file(&drop, "a\nforged line.zip", b"not a zip at all");
    failed_reason(&drop, "a\nforged line.zip");
    let log = d.log();
    assert!(log.contains("a\\nforged line.zip"), "{log}");
    assert!(
        !log.lines().any(|l| l.starts_with("forged line")),
        "a name split a log line:\n{log}"
    );
}

#[test]
fn release_urls_and_notes_are_bounded() {
    let d = Daemon::start();
    let long = format!("https://example.com/{}", "x".repeat(200));
    let (status, v) = d.api(
        "POST",
        "organizations/acme/releases/",
        Some(json!({"version": "1.0", "projects": ["web"], "url": long})),
    );
    assert_eq!(status, 400, "{v}");
    assert!(v["detail"].as_str().unwrap().contains("200"), "{v}");
    let commits: Vec<_> = (0..1005)
        .map(|i| json!({"id": format!("{i:040x}"), "repository": "acme/web", "message": format!("fix: change {i}"), "author_email": format!("dev{}@example.com", i % 3)}))
        .collect();
    let (status, v) = d.api(
        "POST",
        "organizations/acme/releases/",
        Some(json!({"version": "1.0", "projects": ["web"], "url": "https://example.com/1.0", "commits": commits})),
    );
    assert_eq!(status, 201, "{v}");
    let (status, v) = d.api(
        "PUT",
        "organizations/acme/releases/1.0/",
        Some(json!({"url": long})),
    );
    assert_eq!(status, 400, "{v}");
    let (status, notes) = d.api("GET", "organizations/acme/releases/1.0/notes/", None);
    assert_eq!(status, 200);
    assert_eq!(notes["commitCount"], 1005);
    assert_eq!(notes["commitsListed"], 1000);
    let listed: usize = notes["sections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["commits"].as_array().unwrap().len())
        .sum();
    assert_eq!(listed, 1000);
    let per_author: u64 = notes["authors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["commits"].as_u64().unwrap())
        .sum();
    assert_eq!(per_author, 1005, "{}", notes["authors"]);
}

#[test]
fn a_long_commit_list_is_stored_in_batches_with_the_same_result() {
    let d = Daemon::start();
    // More than one storing batch, timestamps out of order, one skipped commit.
    let n = 2500;
    let commits: Vec<_> = (0..n)
        .map(|i| {
            let minute = (i * 7919) % n;
            json!({
                "id": format!("{i:040x}"),
                "repository": if i % 2 == 0 { "acme/web" } else { "acme/api" },
                "message": if i == 5 { "wip #skipsentry".to_owned() } else { format!("fix: change {i}") },
                "author_email": format!("dev{}@example.com", i % 4),
                "timestamp": format!("2024-01-01T{:02}:{:02}:00Z", minute / 60 % 24, minute % 60),
            })
        })
        .collect();
    let (status, v) = d.api(
        "POST",
        "organizations/acme/releases/",
        Some(json!({"version": "3.0", "projects": ["web"]})),
    );
    assert_eq!(status, 201, "{v}");
    let (status, v) = d.api(
        "PUT",
        "organizations/acme/releases/3.0/",
        Some(json!({"commits": commits})),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["commitCount"], n - 1, "{v}");
    assert_eq!(v["authors"].as_array().unwrap().len(), 4, "{v}");
    let (_, page) = d.api("GET", "organizations/acme/releases/3.0/commits/", None);
    let dates: Vec<&str> = page
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["dateCreated"].as_str().unwrap())
        .collect();
    assert!(
        dates.windows(2).all(|w| w[0] >= w[1]),
        "not newest first: {dates:?}"
    );
    assert_eq!(
        d.count("SELECT count(*) FROM release_head_commits h JOIN releases r ON r.id = h.release_id WHERE r.version = '3.0'"),
        2
    );
}
