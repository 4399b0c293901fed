//! Artifact bytes outside the database (store::blob_store), with real parts: the real
//! sentry-cli uploading to a daemon whose `storage.blobs` is a directory (`file://`) or an S3
//! bucket on a real S3-compatible server (moto, on loopback); `shiplog blobs migrate` moving a
//! store db → file → s3 while the daemon serves; and a daemon killed with SIGKILL in the middle
//! of an upload leaving every blob row with whole bytes behind it.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::artifacts::{download, file_named, files, sha1_hex, wait_for};
use common::moto::Moto;
use common::sentry_cli::{require_sentry_cli, sentry_cli_command};
use common::{DEFAULT_CONFIG, Daemon, stderr, stdout};

fn cli(bin: &Path, d: &Daemon) -> Command {
    sentry_cli_command(bin, &d.url, &d.token)
}

fn ok(bin: &Path, d: &Daemon, args: &[&str]) -> String {
    let out: Output = cli(bin, d).args(args).output().expect("run sentry-cli");
    assert!(
        out.status.success(),
        "sentry-cli {args:?} failed:\n{}\n{}\n--- daemon log ---\n{}",
        stdout(&out),
        stderr(&out),
        d.log()
    );
    format!("{}{}", stdout(&out), stderr(&out))
}

/// A built site of `n` minified scripts of `len` bytes each, with source maps.
fn make_dist(dir: &Path, n: u64, len: usize) -> Vec<String> {
    std::fs::create_dir_all(dir).unwrap();
    let mut names = Vec::new();
    for i in 0..n {
        let name = format!("chunk{i}.min.js");
        let mut js = common::artifacts::js(i + 1, len);
        js.extend_from_slice(format!("//# sourceMappingURL={name}.map\n").as_bytes());
        std::fs::write(dir.join(&name), js).unwrap();
        std::fs::write(
            dir.join(format!("{name}.map")),
            format!(
                r#"{{"version":3,"file":"{name}","sources":["c{i}.js"],"names":[],"mappings":"AAAA"}}"#
            ),
        )
        .unwrap();
        names.push(name.clone());
        names.push(format!("{name}.map"));
    }
    names
}

fn upload(bin: &Path, d: &Daemon, release: &str, dist: &Path) {
    ok(bin, d, &["releases", "-p", "web", "new", release]);
    ok(
        bin,
        d,
        &[
            "sourcemaps",
            "upload",
            "-p",
            "web",
            "--release",
            release,
            "--wait",
            dist.to_str().unwrap(),
        ],
    );
}

/// Every file of `release` downloads byte for byte as it is in `dist`.
fn reads_back(d: &Daemon, release: &str, dist: &Path, names: &[String]) {
    let list = files(d, release);
    assert_eq!(list.len(), names.len(), "{list:#?}");
    for name in names {
        let f = file_named(&list, &format!("~/{name}"));
        let id = f["id"].as_str().unwrap();
        let (status, bytes) = download(
            d,
            &format!("organizations/acme/releases/{release}/files/{id}/?download=1"),
        );
        assert_eq!(status, 200);
        assert!(
            bytes == std::fs::read(dist.join(name)).unwrap(),
            "{name} differs"
        );
    }
}

/// `(object key, sha1)` of every blob row: where the store says each blob's bytes are.
fn rows(d: &Daemon) -> Vec<(Option<String>, Option<String>, String)> {
    let db = d.db();
    let mut stmt = db
        .prepare(
            "SELECT k.url, b.object_key, b.sha1 FROM blobs b
               LEFT JOIN blob_backends k ON k.id = b.backend_id ORDER BY b.id",
        )
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// `(key, sha1 of the bytes)` of every object file under `dir` (staging files of an
/// interrupted write, `name#n`, are not objects).
fn dir_objects(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let Ok(fans) = std::fs::read_dir(dir) else {
        return out;
    };
    for fan in fans {
        let fan = fan.unwrap().path();
        for f in std::fs::read_dir(&fan).unwrap() {
            let p = f.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            if name.contains('#') {
                continue;
            }
            let key = format!("{}/{name}", fan.file_name().unwrap().to_string_lossy());
            out.push((key, sha1_hex(&std::fs::read(&p).unwrap())));
        }
    }
    out.sort();
    out
}

/// Every row names an object at `url` that holds exactly its bytes; with `exact`, no object
/// is left that no row names.
fn rows_match_objects(d: &Daemon, url: &str, objects: &[(String, String)], exact: bool) {
    let rows = rows(d);
    assert!(!rows.is_empty());
    for (at, key, sha1) in &rows {
        assert_eq!(at.as_deref(), Some(url), "a blob is not at {url}");
        let key = key.as_deref().unwrap();
        let found = objects.iter().find(|(k, _)| k == key);
        assert_eq!(
            found.map(|(_, s)| s.as_str()),
            Some(sha1.as_str()),
            "blob {key}: object missing or not its bytes"
        );
    }
    if exact {
        assert_eq!(
            rows.len(),
            objects.len(),
            "objects no row names: {objects:?}"
        );
    }
}

fn config(storage: &str) -> String {
    format!("{DEFAULT_CONFIG}artifacts:\n  index_min_files: 4\n{storage}")
}

#[test]
fn sentry_cli_uploads_to_a_file_store() {
    let Some(bin) = require_sentry_cli("sentry_cli_uploads_to_a_file_store") else {
        return;
    };
    let blobs = tempfile::tempdir().unwrap();
    let url = format!("file://{}", blobs.path().display());
    let d = Daemon::start_with(&config(&format!("storage:\n  blobs: {url}\n")));
    let work = tempfile::tempdir().unwrap();
    let dist = work.path().join("dist");
    let names = make_dist(&dist, 3, 1_500_000);
    upload(&bin, &d, "1.0.0", &dist);
    reads_back(&d, "1.0.0", &dist, &names);
    // Nothing in the database but the index: every row's bytes are one file of the directory.
    assert_eq!(
        d.count("SELECT count(*) FROM blobs WHERE length(data) > 0"),
        0
    );
    rows_match_objects(&d, &url, &dir_objects(blobs.path()), true);
}

#[test]
fn sentry_cli_uploads_to_an_s3_store() {
    let Some(bin) = require_sentry_cli("sentry_cli_uploads_to_an_s3_store") else {
        return;
    };
    let Some(moto) = Moto::start("sentry_cli_uploads_to_an_s3_store") else {
        return;
    };
    moto.create_bucket("artifacts");
    let url = "s3://artifacts/shiplog";
    let d = Daemon::start_with(&config(&format!(
        "storage:\n  blobs: {url}\n  s3: {{ endpoint: \"{}\", region: us-east-1, allow_http: true }}\n",
        moto.endpoint
    )));
    let work = tempfile::tempdir().unwrap();
    let dist = work.path().join("dist");
    let names = make_dist(&dist, 3, 1_500_000);
    upload(&bin, &d, "1.0.0", &dist);
    reads_back(&d, "1.0.0", &dist, &names);
    assert_eq!(
        d.count("SELECT count(*) FROM blobs WHERE length(data) > 0"),
        0
    );
    let objects: Vec<(String, String)> = moto
        .objects("artifacts", "shiplog/")
        .into_iter()
        .map(|(k, s)| (k.trim_start_matches("shiplog/").to_string(), s))
        .collect();
    rows_match_objects(&d, url, &objects, true);
}

#[test]
fn blobs_migrate_moves_a_store_db_to_file_to_s3_while_it_serves() {
    let Some(bin) = require_sentry_cli("blobs_migrate") else {
        return;
    };
    let Some(moto) = Moto::start("blobs_migrate") else {
        return;
    };
    moto.create_bucket("moved");
    let d = Daemon::start_with(&config(&format!(
        "storage:\n  blobs: db\n  s3: {{ endpoint: \"{}\", allow_http: true }}\n",
        moto.endpoint
    )));
    let work = tempfile::tempdir().unwrap();
    let dist = work.path().join("dist");
    let names = make_dist(&dist, 3, 1_500_000);
    upload(&bin, &d, "1.0.0", &dist);
    let in_db = d.count("SELECT count(*) FROM blobs WHERE backend_id IS NULL");
    assert!(in_db > 0);

    // db -> file, the daemon running: it reads the moved rows from their new place.
    let dir = tempfile::tempdir().unwrap();
    let file_url = format!("file://{}", dir.path().display());
    let out = d.shiplog(&["blobs", "migrate", "--to", &file_url]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!("moved {in_db} blobs")),
        "{}",
        stdout(&out)
    );
    assert!(
        stderr(&out).contains("(100%)"),
        "progress: {}",
        stderr(&out)
    );
    reads_back(&d, "1.0.0", &dist, &names);
    rows_match_objects(&d, &file_url, &dir_objects(dir.path()), true);

    // file -> s3: the directory's objects are gone afterwards.
    let out = d.shiplog(&["blobs", "migrate", "--to", "s3://moved/p"]);
    assert!(out.status.success(), "{}", stderr(&out));
    reads_back(&d, "1.0.0", &dist, &names);
    let objects: Vec<(String, String)> = moto
        .objects("moved", "p/")
        .into_iter()
        .map(|(k, s)| (k.trim_start_matches("p/").to_string(), s))
        .collect();
    rows_match_objects(&d, "s3://moved/p", &objects, true);
    assert!(dir_objects(dir.path()).is_empty());

    // And back into the database.
    let out = d.shiplog(&["blobs", "migrate", "--to", "db"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        d.count("SELECT count(*) FROM blobs WHERE backend_id IS NOT NULL"),
        0
    );
    reads_back(&d, "1.0.0", &dist, &names);
    assert!(moto.objects("moved", "p/").is_empty());
}

/// Starts a large upload, kills the daemon with SIGKILL once some chunks are stored, restarts
/// it: every blob row has whole bytes behind it, and the upload then goes through.
fn killed_mid_upload(
    d: &mut Daemon,
    bin: &Path,
    objects: &dyn Fn() -> Vec<(String, String)>,
    url: &str,
) {
    let work = tempfile::tempdir().unwrap();
    let dist = work.path().join("dist");
    let names = make_dist(&dist, 8, 3_000_000);
    ok(bin, d, &["releases", "-p", "web", "new", "2.0.0"]);
    let mut upload = cli(bin, d)
        .args([
            "sourcemaps",
            "upload",
            "-p",
            "web",
            "--release",
            "2.0.0",
            "--wait",
        ])
        .arg(&dist)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(120, "the first chunks", || {
        d.count("SELECT count(*) FROM blobs") > 0
    });
    d.kill();
    let _ = upload.wait();
    // What a SIGKILL left: rows only for blobs whose bytes are whole (objects no row names may
    // be left over, invisible).
    rows_match_objects(d, url, &objects(), false);
    d.restart();
    upload_again(bin, d, &dist, &names);
}

fn upload_again(bin: &Path, d: &Daemon, dist: &Path, names: &[String]) {
    ok(
        bin,
        d,
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
    reads_back(d, "2.0.0", dist, names);
}

#[test]
fn sigkill_mid_upload_leaves_no_half_blob_in_a_file_store() {
    let Some(bin) = require_sentry_cli("sigkill_file") else {
        return;
    };
    let blobs = tempfile::tempdir().unwrap();
    let url = format!("file://{}", blobs.path().display());
    let mut d = Daemon::start_with(&config(&format!("storage:\n  blobs: {url}\n")));
    let dir = blobs.path().to_path_buf();
    killed_mid_upload(&mut d, &bin, &|| dir_objects(&dir), &url);
}

#[test]
fn sigkill_mid_upload_leaves_no_half_blob_in_an_s3_store() {
    let Some(bin) = require_sentry_cli("sigkill_s3") else {
        return;
    };
    let Some(moto) = Moto::start("sigkill_s3") else {
        return;
    };
    moto.create_bucket("killed");
    let mut d = Daemon::start_with(&config(&format!(
        "storage:\n  blobs: s3://killed\n  s3: {{ endpoint: \"{}\", allow_http: true }}\n",
        moto.endpoint
    )));
    killed_mid_upload(&mut d, &bin, &|| moto.objects("killed", ""), "s3://killed");
}

/// A sentry-cli style bundle with `manifest.json` *first*, so every entry after it sits at
/// another offset when only the release in the manifest changes.
fn manifest_first_bundle(release: &str, entries: &[(String, Vec<u8>)]) -> Vec<u8> {
    use std::io::Write;
    let listed: Vec<(&str, String, &str)> = entries
        .iter()
        .map(|(p, _)| {
            (
                p.as_str(),
                format!("~/{}", p.rsplit('/').next().unwrap()),
                "minified_source",
            )
        })
        .collect();
    let refs: Vec<(&str, &str, &str)> = listed
        .iter()
        .map(|(p, u, k)| (*p, u.as_str(), *k))
        .collect();
    let m = common::artifacts::manifest("acme", Some(release), &refs);
    let mut cursor = std::io::Cursor::new(Vec::new());
    cursor.write_all(b"SYSB\x02\x00\x00\x00").unwrap();
    let mut zip = zip::ZipWriter::new(cursor);
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .last_modified_time(zip::DateTime::default());
    zip.start_file("manifest.json", options).unwrap();
    zip.write_all(m.to_string().as_bytes()).unwrap();
    for (path, data) in entries {
        zip.start_file(path.as_str(), options).unwrap();
        zip.write_all(data).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

/// The daemon's `/metrics` text.
fn metrics(d: &Daemon) -> String {
    reqwest::blocking::get(format!("{}/metrics", d.url))
        .unwrap()
        .text()
        .unwrap()
}

/// `shiplog_artifact_verify_bytes_total` as (read, recalled).
fn verify_bytes(metrics: &str) -> (u64, u64) {
    let value = |how: &str| {
        let key = format!("shiplog_artifact_verify_bytes_total{{how=\"{how}\"}} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(key.as_str()))
            .map_or(0, |v| v.trim().parse().unwrap())
    };
    (value("read"), value("recalled"))
}

fn blob_bytes(d: &Daemon) -> i64 {
    d.count("SELECT coalesce(sum(size), 0) FROM blobs")
}

#[test]
fn the_same_bundle_dropped_for_two_releases_stores_its_files_once() {
    let dir = tempfile::tempdir().unwrap();
    let drop = dir.path().join("drop");
    std::fs::create_dir_all(&drop).unwrap();
    let d = Daemon::start_with(&format!(
        "{DEFAULT_CONFIG}artifacts:\n  drop_dirs: [{}]\n  index_min_files: 2\n",
        drop.display()
    ));
    for v in ["1.0.0", "2.0.0"] {
        let (status, body) = d.api(
            "POST",
            "organizations/acme/releases/",
            Some(serde_json::json!({"version": v, "projects": ["web"]})),
        );
        assert!(status == 201 || status == 208, "{body}");
    }
    let entries: Vec<(String, Vec<u8>)> = (0..3)
        .map(|i| {
            (
                format!("files/_/_/f{i}.js"),
                common::artifacts::noise(i + 7, 1_500_000),
            )
        })
        .collect();
    let first = manifest_first_bundle("1.0.0", &entries);
    common::artifacts::drop_file(&drop, "one.zip", &first);
    wait_for(60, "the first drop", || !drop.join("one.zip").exists());
    assert_eq!(files(&d, "1.0.0").len(), 3, "{}", d.log());
    let before = blob_bytes(&d);
    assert!(before >= first.len() as i64);

    let before_second = metrics(&d);
    assert_eq!(
        d.count("SELECT count(*) FROM blob_entry_digests"),
        4,
        "entries remembered"
    );
    let second = manifest_first_bundle("2.0.0", &entries);
    common::artifacts::drop_file(&drop, "two.zip", &second);
    wait_for(60, "the second drop", || !drop.join("two.zip").exists());
    assert_eq!(files(&d, "2.0.0").len(), 3, "{}", d.log());
    // What the second bundle has that the first has not: its SYSB header (the same 8 bytes),
    // its manifest entry and its central directory. Everything else is already stored.
    let zip = zip::ZipArchive::new(std::io::Cursor::new(&second)).unwrap();
    let directory = second.len() as u64 - zip.central_directory_start();
    let manifest_entry = zip.central_directory_start()
        - zip.offset()
        - entries
            .iter()
            .map(|(p, data)| 30 + p.len() as u64 + data.len() as u64)
            .sum::<u64>();
    let grown = (blob_bytes(&d) - before) as u64;
    assert!(
        grown <= directory + manifest_entry,
        "the store grew by {grown} bytes; manifest entry {manifest_entry} + directory {directory}"
    );
    // Nor were its files read again to verify it: their blobs were verified with the first
    // bundle, so only the new manifest entry was inflated.
    let files_bytes: u64 = entries.iter().map(|(_, data)| data.len() as u64).sum();
    let (read_first, recalled_first) = verify_bytes(&before_second);
    assert!(read_first >= files_bytes, "{before_second}");
    assert_eq!(recalled_first, 0, "{before_second}");
    let after = metrics(&d);
    let (read, recalled) = verify_bytes(&after);
    assert!(
        read - read_first < 64 * 1024,
        "the second verify read {} bytes: {after}",
        read - read_first
    );
    assert_eq!(recalled, files_bytes, "{after}");
    let sha1s = d.count(
        "SELECT count(*) FROM artifact_index ai JOIN releases r ON r.id = ai.release_id
          WHERE r.version = '2.0.0' AND length(ai.sha1) = 40",
    );
    assert_eq!(sha1s, 3, "every entry of the second bundle has its sha1");
    for (p, data) in &entries {
        let name = format!("~/{}", p.rsplit('/').next().unwrap());
        let list = files(&d, "2.0.0");
        let id = file_named(&list, &name)["id"].as_str().unwrap().to_string();
        let (status, bytes) = download(
            &d,
            &format!("organizations/acme/releases/2.0.0/files/{id}/?download=1"),
        );
        assert_eq!(status, 200);
        assert!(&bytes == data, "{name}");
    }
}

/// Bytes of the blobs some file uses (an upload's own chunks stay, unused, until prune).
fn used_bytes(d: &Daemon) -> i64 {
    d.count("SELECT coalesce(sum(size), 0) FROM blobs WHERE id IN (SELECT blob_id FROM file_blobs)")
}

#[test]
fn the_same_files_uploaded_by_sentry_cli_for_two_releases_are_stored_once() {
    let Some(bin) = require_sentry_cli("same_files_two_releases") else {
        return;
    };
    let d = Daemon::start_with(&config(""));
    let work = tempfile::tempdir().unwrap();
    let dist = work.path().join("dist");
    let names = make_dist(&dist, 3, 1_500_000);
    let verified = |d: &Daemon| {
        wait_for(60, "the verify step", || {
            d.count("SELECT count(*) FROM artifact_bundles WHERE verified IS NULL") == 0
        });
    };
    upload(&bin, &d, "1.0.0", &dist);
    verified(&d);
    let before = used_bytes(&d);
    assert!(before > 1_000_000, "{before}");
    upload(&bin, &d, "2.0.0", &dist);
    verified(&d);
    reads_back(&d, "1.0.0", &dist, &names);
    reads_back(&d, "2.0.0", &dist, &names);
    // The second bundle differs in its manifest (another release) and its zip directory: a
    // few kilobytes, where its files are megabytes.
    // Cut at the entries, not sentry-cli's 1 MiB chunks: a blob ends with every entry.
    let entry_cut = d.count(
        "SELECT count(DISTINCT b.id) FROM blobs b JOIN file_blobs fb ON fb.blob_id = b.id
          WHERE b.size <> 1048576",
    );
    assert!(
        entry_cut >= names.len() as i64,
        "{entry_cut} blobs end before 1 MiB"
    );
    let grown = used_bytes(&d) - before;
    assert!(
        grown < 16 * 1024,
        "the files were stored again: {grown} bytes"
    );
}
