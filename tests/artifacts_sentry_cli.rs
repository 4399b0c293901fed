//! The real sentry-cli uploading source maps to a real daemon: `sourcemaps inject`, then
//! `sourcemaps upload --release V` with and without `--wait`; the files come back byte for
//! byte through the API, are found by debug id and URL, and a second upload of the same
//! bundle stores nothing new.

mod common;

use std::path::Path;
use std::process::Output;

use common::artifacts::{blob_totals, download, file_named, files, wait_for};
use common::sentry_cli::{require_sentry_cli, sentry_cli_command};
use common::{Daemon, stderr, stdout};
use serde_json::Value;

fn run(bin: &Path, d: &Daemon, args: &[&str]) -> Output {
    sentry_cli_command(bin, &d.url, &d.token)
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
    format!("{}{}", stdout(&out), stderr(&out))
}

/// A small built site: two minified scripts with source maps, one in a subdirectory.
fn make_dist(dir: &Path) {
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(
        dir.join("app.min.js"),
        "function greet(n){return\"hello \"+n}console.log(greet(\"world\"));\n//# sourceMappingURL=app.min.js.map\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("app.min.js.map"),
        r#"{"version":3,"file":"app.min.js","sources":["app.js"],"names":["greet","n"],"mappings":"AAAA,SAASA,MAAMC","sourcesContent":["function greet(n) {\n  return 'hello ' + n;\n}\nconsole.log(greet('world'));\n"]}"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("sub/other.min.js"),
        "var x=1;console.log(x);\n//# sourceMappingURL=other.min.js.map\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("sub/other.min.js.map"),
        r#"{"version":3,"file":"other.min.js","sources":["other.js"],"names":[],"mappings":"AAAA","sourcesContent":["var x = 1;\nconsole.log(x);\n"]}"#,
    )
    .unwrap();
}

fn compare_all(d: &Daemon, release: &str, dist: &Path) {
    let list = files(d, release);
    for (url, rel) in [
        ("~/app.min.js", "app.min.js"),
        ("~/app.min.js.map", "app.min.js.map"),
        ("~/sub/other.min.js", "sub/other.min.js"),
        ("~/sub/other.min.js.map", "sub/other.min.js.map"),
    ] {
        let f = file_named(&list, url);
        let on_disk = std::fs::read(dist.join(rel)).unwrap();
        let id = f["id"].as_str().unwrap();
        let (status, bytes) = download(
            d,
            &format!("organizations/acme/releases/{release}/files/{id}/?download=1"),
        );
        assert_eq!(status, 200);
        assert!(bytes == on_disk, "{url} differs from {rel}");
        assert_eq!(f["size"], on_disk.len() as u64);
        assert_eq!(f["sha1"], common::artifacts::sha1_hex(&on_disk));
    }
}

#[test]
fn sentry_cli_uploads_source_maps_that_come_back_byte_for_byte() {
    let Some(bin) = require_sentry_cli("sentry_cli_uploads_source_maps") else {
        return;
    };
    let d = Daemon::start();
    let work = tempfile::tempdir().unwrap();
    let dist = work.path().join("dist");
    make_dist(&dist);
    let out = ok(&bin, &d, &["sourcemaps", "inject", dist.to_str().unwrap()]);
    assert!(out.contains("debug"), "{out}");
    let js = std::fs::read_to_string(dist.join("app.min.js")).unwrap();
    let debug_id = js
        .lines()
        .find_map(|l| l.strip_prefix("//# debugId="))
        .expect("inject adds a debug id")
        .trim()
        .to_string();

    ok(&bin, &d, &["releases", "-p", "web", "new", "1.0.0"]);
    ok(&bin, &d, &["releases", "-p", "web", "new", "1.1.0"]);

    // With --wait: the CLI polls until the daemon says ok.
    let out = ok(
        &bin,
        &d,
        &[
            "sourcemaps",
            "upload",
            "-p",
            "web",
            "--release",
            "1.0.0",
            "--wait",
            dist.to_str().unwrap(),
        ],
    );
    assert!(out.contains("File processing complete"), "{out}");
    assert_eq!(files(&d, "1.0.0").len(), 4);
    compare_all(&d, "1.0.0", &dist);
    let list = files(&d, "1.0.0");
    let js = file_named(&list, "~/app.min.js");
    assert_eq!(js["headers"]["sourcemap"], "app.min.js.map");
    assert_eq!(js["headers"]["debug-id"], debug_id.as_str());
    assert_eq!(js["dist"], Value::Null);

    // Without --wait: the CLI stops after the second assemble call; the files arrive.
    let out = ok(
        &bin,
        &d,
        &[
            "sourcemaps",
            "upload",
            "-p",
            "web",
            "--release",
            "1.1.0",
            "--dist",
            "42",
            dist.to_str().unwrap(),
        ],
    );
    assert!(
        out.contains("File upload complete") || out.contains("File processing complete"),
        "{out}"
    );
    wait_for(30, "release 1.1.0's files", || {
        files(&d, "1.1.0").len() == 4
    });
    compare_all(&d, "1.1.0", &dist);
    assert_eq!(
        file_named(&files(&d, "1.1.0"), "~/app.min.js")["dist"],
        "42"
    );

    // Found by debug id (in both releases) and by URL (Sentry's normalize candidates).
    let (status, found) = d.api(
        "GET",
        &format!("organizations/acme/artifacts/lookup/?debug_id={debug_id}"),
        None,
    );
    assert_eq!(status, 200, "{found}");
    let found = found.as_array().unwrap();
    assert!(found.len() >= 4, "{found:#?}");
    assert!(
        found
            .iter()
            .any(|f| f["release"] == "1.0.0" && f["url"] == "~/app.min.js")
    );
    let js_hit = found
        .iter()
        .find(|f| f["url"] == "~/app.min.js" && f["release"] == "1.1.0")
        .unwrap();
    let (_, bytes) = download(&d, js_hit["download"].as_str().unwrap());
    assert!(bytes == std::fs::read(dist.join("app.min.js")).unwrap());
    let (status, found) = d.api(
        "GET",
        "organizations/acme/artifacts/lookup/?url=https%3A%2F%2Fcdn.example.com%2Fsub%2Fother.min.js%3Fv%3D3&release=1.0.0",
        None,
    );
    assert_eq!(status, 200, "{found}");
    assert_eq!(found[0]["url"], "~/sub/other.min.js", "{found}");

    // The same upload again: every chunk is already there; nothing new is stored.
    let (blobs_before, bytes_before) = blob_totals(&d);
    let pages_before = d.count("SELECT page_count FROM pragma_page_count()");
    let out = ok(
        &bin,
        &d,
        &[
            "sourcemaps",
            "upload",
            "-p",
            "web",
            "--release",
            "1.0.0",
            "--wait",
            dist.to_str().unwrap(),
        ],
    );
    assert!(
        out.contains("Nothing to upload") || out.contains("File processing complete"),
        "{out}"
    );
    assert_eq!(blob_totals(&d), (blobs_before, bytes_before));
    let pages_after = d.count("SELECT page_count FROM pragma_page_count()");
    assert!(
        pages_after - pages_before <= 16,
        "database grew by {} pages",
        pages_after - pages_before
    );
    compare_all(&d, "1.0.0", &dist);

    // Source maps for a release that does not exist yet are kept (the release is a label on
    // the bundle, as in Sentry) and shown once the release is created.
    ok(
        &bin,
        &d,
        &[
            "sourcemaps",
            "upload",
            "-p",
            "web",
            "--release",
            "9.9.9",
            dist.to_str().unwrap(),
        ],
    );
    common::artifacts::wait_for(30, "the kept bundle", || {
        d.count("SELECT count(*) FROM pending_artifact_index") == 4
    });
    assert_eq!(
        d.api("GET", "organizations/acme/releases/9.9.9/", None).0,
        404
    );
    ok(&bin, &d, &["releases", "-p", "web", "new", "9.9.9"]);
    compare_all(&d, "9.9.9", &dist);
}

#[test]
fn a_large_upload_goes_to_the_artifact_index() {
    let Some(bin) = require_sentry_cli("a_large_upload_goes_to_the_artifact_index") else {
        return;
    };
    let d = Daemon::start_with(&format!(
        "{}artifacts:\n  index_min_files: 3\n",
        common::DEFAULT_CONFIG
    ));
    let work = tempfile::tempdir().unwrap();
    let dist = work.path().join("dist");
    make_dist(&dist);
    ok(&bin, &d, &["sourcemaps", "inject", dist.to_str().unwrap()]);
    ok(&bin, &d, &["releases", "-p", "web", "new", "2.0.0"]);
    ok(
        &bin,
        &d,
        &[
            "sourcemaps",
            "upload",
            "-p",
            "web",
            "--release",
            "2.0.0",
            "--wait",
            dist.to_str().unwrap(),
        ],
    );
    // Stored as one bundle with four index entries, not as four files.
    assert_eq!(d.count("SELECT count(*) FROM artifact_bundles"), 1);
    assert_eq!(d.count("SELECT count(*) FROM artifact_index"), 4);
    assert_eq!(d.count("SELECT count(*) FROM release_files"), 0);
    let list = files(&d, "2.0.0");
    assert!(
        list.iter()
            .all(|f| f["id"].as_str().unwrap().starts_with('i'))
    );
    // A bundle is indexed from its manifest when assembled; the verify step then reads every
    // entry (CRC-32, size) and records its sha1.
    wait_for(30, "the bundle's verify step", || {
        d.count("SELECT count(*) FROM artifact_bundles WHERE verified IS NOT NULL") == 1
    });
    compare_all(&d, "2.0.0", &dist);

    // The bundle is also found by debug id and its entries download from it.
    let js = std::fs::read_to_string(dist.join("sub/other.min.js")).unwrap();
    let debug_id = js
        .lines()
        .find_map(|l| l.strip_prefix("//# debugId="))
        .unwrap()
        .trim()
        .to_string();
    let (_, found) = d.api(
        "GET",
        &format!("organizations/acme/artifacts/lookup/?debug_id={debug_id}"),
        None,
    );
    let hit = found
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["url"] == "~/sub/other.min.js")
        .unwrap_or_else(|| panic!("{found:#?}"));
    assert!(hit["bundleId"].is_string());
    let (status, bytes) = download(&d, hit["download"].as_str().unwrap());
    assert_eq!(status, 200);
    assert!(bytes == js.as_bytes());
}
