//! The chunk-upload and assemble protocol over HTTP, as sentry-cli speaks it, with real
//! bundles: options, Sentry's chunk errors, the size limits (413), the assemble state
//! machine, zip-slip refusals, the legacy release assemble, deletion, and pruning.

mod common;

use common::Daemon;
use common::artifacts::{
    assemble_until_done, blob_totals, bundle, corrupt_bundle, download, file_named, files, gzip,
    manifest, multipart, noise, post_chunks, sha1_hex, upload, wait_for,
};
use serde_json::{Value, json};

const MIB: usize = 1 << 20;

fn limited() -> Daemon {
    Daemon::start_with(&format!(
        "{}artifacts:\n  max_request_size: 2 MiB\n  max_file_size: 3 MiB\nlimits:\n  max_upload_body: 3 MiB\n",
        common::DEFAULT_CONFIG
    ))
}

fn new_release(d: &Daemon, version: &str) {
    let (status, v) = d.api(
        "POST",
        "organizations/acme/releases/",
        Some(json!({"version": version, "projects": ["web"]})),
    );
    assert_eq!(status, 201, "{v}");
}

#[test]
fn options_advertise_the_protocol() {
    let d = limited();
    let (status, o) = d.api("GET", "organizations/acme/chunk-upload/", None);
    assert_eq!(status, 200, "{o}");
    assert_eq!(o["url"], "/api/0/organizations/acme/chunk-upload/");
    assert_eq!(o["chunkSize"], 1 << 20);
    assert!(o["chunkSize"].as_u64().unwrap().is_power_of_two());
    assert_eq!(o["chunksPerRequest"], 64);
    assert_eq!(o["maxRequestSize"], 2 * MIB);
    assert_eq!(o["maxFileSize"], 3 * MIB);
    assert_eq!(o["hashAlgorithm"], "sha1");
    assert_eq!(o["compression"], json!(["gzip"]));
    assert!(o["concurrency"].as_u64().unwrap() >= 1);
    let (status, _) = d.api("GET", "organizations/other/chunk-upload/", None);
    assert_eq!(status, 404);
}

#[test]
fn chunk_uploads_are_checked_like_sentry() {
    let d = limited();
    // Checksum mismatch: the part's name is not the sha1 of its bytes.
    let (ct, body) = multipart(&[("file", &sha1_hex(b"other"), b"data".to_vec())]);
    let (status, v) = post_chunks(&d, &ct, body);
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["error"], "Checksum mismatch");
    assert!(
        v["detail"]
            .as_str()
            .unwrap()
            .starts_with("Checksum mismatch")
    );
    // The same check after gunzip.
    let (ct, body) = multipart(&[("file_gzip", &sha1_hex(b"other"), gzip(b"data"))]);
    assert_eq!(post_chunks(&d, &ct, body).1["error"], "Checksum mismatch");

    // A chunk over chunkSize, raw or once decompressed.
    let big = vec![7u8; MIB + 1];
    let (ct, body) = multipart(&[("file", &sha1_hex(&big), big.clone())]);
    let (status, v) = post_chunks(&d, &ct, body);
    assert_eq!(
        (status, v["error"].as_str()),
        (400, Some("Chunk size too large")),
        "{v}"
    );
    let (ct, body) = multipart(&[("file_gzip", &sha1_hex(&big), gzip(&big))]);
    assert_eq!(
        post_chunks(&d, &ct, body).1["error"],
        "Chunk size too large"
    );

    // More than chunksPerRequest parts.
    let parts: Vec<(String, Vec<u8>)> = (0..65u32)
        .map(|i| {
            let data = i.to_le_bytes().to_vec();
            (sha1_hex(&data), data)
        })
        .collect();
    let parts: Vec<(&str, &str, Vec<u8>)> = parts
        .iter()
        .map(|(n, b)| ("file", n.as_str(), b.clone()))
        .collect();
    let (ct, body) = multipart(&parts);
    assert_eq!(post_chunks(&d, &ct, body).1["error"], "Too many chunks");

    // More than maxRequestSize (2 MiB) of chunk bytes, sent compressed in a small body.
    let chunks: Vec<Vec<u8>> = (0..3u8).map(|i| vec![i; MIB]).collect();
    let parts: Vec<(&str, String, Vec<u8>)> = chunks
        .iter()
        .map(|c| ("file_gzip", sha1_hex(c), gzip(c)))
        .collect();
    let parts: Vec<(&str, &str, Vec<u8>)> = parts
        .iter()
        .map(|(f, n, b)| (*f, n.as_str(), b.clone()))
        .collect();
    let (ct, body) = multipart(&parts);
    let (status, v) = post_chunks(&d, &ct, body);
    assert_eq!(
        (status, v["error"].as_str()),
        (400, Some("Request too large")),
        "{v}"
    );

    // A body over limits.max_upload_body (3 MiB): 413 with a detail naming the limit.
    let chunks: Vec<Vec<u8>> = (0..4u64).map(|i| noise(i, MIB)).collect();
    let parts: Vec<(&str, String, Vec<u8>)> = chunks
        .iter()
        .map(|c| ("file", sha1_hex(c), c.clone()))
        .collect();
    let parts: Vec<(&str, &str, Vec<u8>)> = parts
        .iter()
        .map(|(f, n, b)| (*f, n.as_str(), b.clone()))
        .collect();
    let (ct, body) = multipart(&parts);
    let (status, v) = post_chunks(&d, &ct, body);
    assert_eq!(status, 413, "{v}");
    assert!(
        v["detail"].as_str().unwrap().contains("max_upload_body"),
        "{v}"
    );

    // A good chunk is stored once, however often it is sent.
    let data = noise(99, 1000);
    for _ in 0..2 {
        let (ct, body) = multipart(&[("file_gzip", &sha1_hex(&data), gzip(&data))]);
        assert_eq!(post_chunks(&d, &ct, body).0, 200);
    }
    assert_eq!(
        d.count(&format!(
            "SELECT count(*) FROM blobs WHERE sha1 = '{}'",
            sha1_hex(&data)
        )),
        1
    );
}

#[test]
fn assemble_walks_sentrys_states_and_enforces_the_file_limit() {
    let d = limited();
    new_release(&d, "1.0.0");
    let js = noise(1, 300_000);
    let m = manifest(
        "acme",
        Some("1.0.0"),
        &[("files/_/_/a.js", "~/a.js", "minified_source")],
    );
    let data = bundle(&m, &[("files/_/_/a.js", &js)], true);
    let body = json!({
        "checksum": sha1_hex(&data),
        "chunks": [sha1_hex(&data)],
        "projects": ["web"],
        "version": "1.0.0",
    });
    // First call: not_found with the missing chunks (always present).
    let (status, v) = d.api(
        "POST",
        "organizations/acme/artifactbundle/assemble/",
        Some(body.clone()),
    );
    assert_eq!(status, 200);
    assert_eq!(v["state"], "not_found");
    assert_eq!(v["missingChunks"], json!([sha1_hex(&data)]));
    let again = upload(&d, &data, MIB, json!({"version": "1.0.0"}));
    assert_eq!(again, body);
    let done = assemble_until_done(&d, &body);
    assert_eq!(done["state"], "ok", "{done}");
    assert_eq!(done["missingChunks"], json!([]));
    let list = files(&d, "1.0.0");
    let (_, bytes) = download(
        &d,
        &format!(
            "organizations/acme/releases/1.0.0/files/{}/?download=1",
            file_named(&list, "~/a.js")["id"].as_str().unwrap()
        ),
    );
    assert!(bytes == js);

    // Assembled again once the stored `ok` has expired (Sentry's ten minutes, aged here):
    // the same chunks make the same files, so only metadata is rewritten.
    let blobs_before = common::artifacts::blob_totals(&d);
    let files_before = d.count("SELECT count(*) FROM files");
    {
        let db = rusqlite::Connection::open(d.data_dir().join("shiplog.sqlite3")).unwrap();
        db.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
        db.execute(
            "UPDATE assemble_states SET updated = '2025-01-01T00:00:00.000000Z'",
            [],
        )
        .unwrap();
    }
    let (_, v) = d.api(
        "POST",
        "organizations/acme/artifactbundle/assemble/",
        Some(body.clone()),
    );
    assert_eq!(v["state"], "created", "{v}");
    assert_eq!(assemble_until_done(&d, &body)["state"], "ok");
    assert_eq!(common::artifacts::blob_totals(&d), blobs_before);
    assert_eq!(d.count("SELECT count(*) FROM files"), files_before);
    assert_eq!(files(&d, "1.0.0").len(), 1);

    // Over max_file_size (3 MiB): 413 at assemble time.
    let big = noise(2, 4 * MIB);
    let body = upload(&d, &big, MIB, json!({}));
    let (status, v) = d.api(
        "POST",
        "organizations/acme/artifactbundle/assemble/",
        Some(body),
    );
    assert_eq!(status, 413, "{v}");
    assert!(
        v["detail"]
            .as_str()
            .unwrap()
            .contains("exceeds maximum size"),
        "{v}"
    );

    // Malformed requests are 400s with Sentry's wording.
    let (status, v) = d.api(
        "POST",
        "organizations/acme/artifactbundle/assemble/",
        Some(json!({"checksum": "nope", "chunks": [], "projects": ["web"]})),
    );
    assert_eq!(status, 400, "{v}");
    let (status, v) = d.api(
        "POST",
        "organizations/acme/artifactbundle/assemble/",
        Some(json!({"checksum": sha1_hex(b"x"), "chunks": [], "projects": []})),
    );
    assert_eq!(status, 400);
    assert!(
        v["detail"]
            .as_str()
            .unwrap()
            .contains("at least one project")
    );
}

/// Assembles `body` (the answer may be `ok`: a bundle stored whole is indexed before its
/// verify step), then polls with an empty chunk list, which never starts a new attempt, until
/// the verify step has turned the state to `error`; returns that answer.
fn refused_after_ok(d: &Daemon, body: &Value) -> Value {
    let first = assemble_until_done(d, body);
    assert!(
        first["state"] == "ok" || first["state"] == "error",
        "{first}"
    );
    let poll = json!({"checksum": body["checksum"], "chunks": [], "projects": ["web"]});
    let mut last = Value::Null;
    wait_for(30, "the verify step to refuse the bundle", || {
        last = d
            .api(
                "POST",
                "organizations/acme/artifactbundle/assemble/",
                Some(poll.clone()),
            )
            .1;
        last["state"] == "error"
    });
    last
}

#[test]
fn a_corrupt_entry_or_a_wrong_checksum_in_an_uploaded_bundle_is_caught_by_the_verify_step() {
    let d = Daemon::start_with(&format!(
        "{}artifacts:\n  index_min_files: 2\n",
        common::DEFAULT_CONFIG
    ));
    new_release(&d, "1.0.0");
    let (b, c) = (noise(31, 30_000), noise(32, 30_000));
    let m = manifest(
        "acme",
        Some("1.0.0"),
        &[
            ("files/b.js", "~/b.js", "minified_source"),
            ("files/c.js", "~/c.js", "minified_source"),
        ],
    );
    let data = corrupt_bundle(&m, &[("files/b.js", &b), ("files/c.js", &c)], "files/b.js");
    let body = upload(&d, &data, MIB, json!({"version": "1.0.0"}));
    // A bundle stored whole is indexed from its zip directory and manifest, so the client may
    // hear `ok` first; the verify step then reads every entry, withdraws the bundle and turns
    // the state to `error` for whoever polls again.
    let last = refused_after_ok(&d, &body);
    let detail = last["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("checksum mismatch"), "{last}");
    assert!(detail.contains("files/b.js"), "{last}");
    for table in [
        "artifact_bundles",
        "artifact_index",
        "debug_id_artifacts",
        "files",
    ] {
        assert_eq!(
            d.count(&format!("SELECT count(*) FROM {table}")),
            0,
            "{table}"
        );
    }
    assert!(files(&d, "1.0.0").is_empty());

    // The same pass checks the announced checksum of a bundle stored whole.
    let sound = bundle(&m, &[("files/b.js", &b), ("files/c.js", &c)], true);
    let mut lying = upload(&d, &sound, MIB, json!({"version": "1.0.0"}));
    lying["checksum"] = json!(sha1_hex(b"something else"));
    let last = refused_after_ok(&d, &lying);
    let detail = last["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("Reported checksum mismatch"), "{last}");
    assert_eq!(d.count("SELECT count(*) FROM artifact_bundles"), 0);
    // A bundle of release files is checked before anything is stored.
    let one = bundle(
        &manifest("acme", Some("1.0.0"), &[("files/b.js", "~/b.js", "source")]),
        &[("files/b.js", &b)],
        true,
    );
    let mut lying = upload(&d, &one, MIB, json!({"version": "1.0.0"}));
    lying["checksum"] = json!(sha1_hex(b"yet another thing"));
    let v = assemble_until_done(&d, &lying);
    assert_eq!(v["state"], "error", "{v}");
    assert!(
        v["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("Reported checksum mismatch"),
        "{v}"
    );
    assert_eq!(d.count("SELECT count(*) FROM release_files"), 0);
}

fn refused(d: &Daemon, data: &[u8]) -> String {
    refused_for(d, data, "1.0.0")
}

fn refused_for(d: &Daemon, data: &[u8], version: &str) -> String {
    let body = upload(d, data, MIB, json!({ "version": version }));
    let v = assemble_until_done(d, &body);
    assert_eq!(v["state"], "error", "{v}");
    v["detail"].as_str().unwrap().to_string()
}

#[test]
fn zip_slip_and_bad_bundles_are_refused_and_store_nothing() {
    let d = Daemon::start();
    new_release(&d, "1.0.0");
    // An entry that climbs out of the bundle.
    let m = manifest(
        "acme",
        Some("1.0.0"),
        &[("../evil.js", "~/evil.js", "minified_source")],
    );
    let detail = refused(&d, &bundle(&m, &[("../evil.js", b"evil")], true));
    assert!(detail.contains("path outside the bundle"), "{detail}");
    // An absolute path.
    let m = manifest(
        "acme",
        Some("1.0.0"),
        &[("/etc/passwd", "~/p.js", "source")],
    );
    let detail = refused(&d, &bundle(&m, &[("/etc/passwd", b"root")], false));
    assert!(detail.contains("path outside the bundle"), "{detail}");
    // A symlink entry.
    let m = manifest(
        "acme",
        Some("1.0.0"),
        &[("files/link.js", "~/link.js", "source")],
    );
    let mut cursor = std::io::Cursor::new(Vec::new());
    {
        let mut z = zip::ZipWriter::new(&mut cursor);
        let o = zip::write::SimpleFileOptions::default();
        z.add_symlink("files/link.js", "/etc/passwd", o).unwrap();
        z.start_file("manifest.json", o).unwrap();
        std::io::Write::write_all(&mut z, m.to_string().as_bytes()).unwrap();
        z.finish().unwrap();
    }
    let detail = refused(&d, &cursor.into_inner());
    assert!(detail.contains("path outside the bundle"), "{detail}");
    assert!(detail.contains("symbolic link"), "{detail}");
    // Wrong organization, wrong release, bad manifest, not a zip.
    let m = manifest(
        "other",
        Some("1.0.0"),
        &[("files/a.js", "~/a.js", "source")],
    );
    let detail = refused(&d, &bundle(&m, &[("files/a.js", b"a")], true));
    assert!(detail.contains("organization does not match"), "{detail}");
    let m = manifest("acme", Some("2.0.0"), &[("files/a.js", "~/a.js", "source")]);
    let detail = refused(&d, &bundle(&m, &[("files/a.js", b"b")], true));
    assert!(detail.contains("release does not match"), "{detail}");
    let detail = refused(&d, &bundle(&json!({"org": "acme", "files": 3}), &[], true));
    assert!(detail.contains("bad manifest"), "{detail}");
    let detail = refused(&d, b"this is not a zip at all");
    assert!(detail.contains("the bundle is invalid"), "{detail}");
    // Nothing of any of them was stored.
    for table in [
        "files",
        "release_files",
        "artifact_bundles",
        "artifact_index",
        "debug_id_artifacts",
    ] {
        assert_eq!(
            d.count(&format!("SELECT count(*) FROM {table}")),
            0,
            "{table}"
        );
    }
    // An error is reported once; the same upload then starts afresh (e.g. after a fix).
    new_release(&d, "3.0.0");
    let m = manifest("acme", Some("3.0.0"), &[("files/a.js", "~/a.js", "source")]);
    let data = bundle(&m, &[("files/a.js", b"c")], true);
    let detail = refused_for(&d, &data, "1.0.0");
    assert!(detail.contains("release does not match"), "{detail}");
    let body = upload(&d, &data, MIB, json!({"version": "3.0.0"}));
    assert_eq!(assemble_until_done(&d, &body)["state"], "ok");
    assert_eq!(files(&d, "3.0.0").len(), 1);
}

#[test]
fn a_bundle_for_a_release_not_created_yet_is_kept_until_it_is() {
    let d = Daemon::start();
    // Small and large bundles alike (release files and the artifact index otherwise).
    let small = manifest("acme", Some("4.0.0"), &[("files/a.js", "~/a.js", "source")]);
    let small = bundle(&small, &[("files/a.js", b"small")], true);
    let body = upload(&d, &small, MIB, json!({"version": "4.0.0"}));
    assert_eq!(assemble_until_done(&d, &body)["state"], "ok");
    let names: Vec<(String, String, String)> = (0..12)
        .map(|i| {
            (
                format!("files/m{i}.js"),
                format!("~/m{i}.js"),
                "source".to_string(),
            )
        })
        .collect();
    let entries: Vec<(&str, &str, &str)> = names
        .iter()
        .map(|(p, u, k)| (p.as_str(), u.as_str(), k.as_str()))
        .collect();
    let large = manifest("acme", Some("4.0.0"), &entries);
    let contents: Vec<(&str, &[u8])> = names
        .iter()
        .map(|(p, _, _)| (p.as_str(), &b"m"[..]))
        .collect();
    let body = upload(
        &d,
        &bundle(&large, &contents, true),
        MIB,
        json!({"version": "4.0.0"}),
    );
    assert_eq!(assemble_until_done(&d, &body)["state"], "ok");

    // Nothing shows yet: the release does not exist.
    let (status, _) = d.api("GET", "organizations/acme/releases/4.0.0/files/", None);
    assert_eq!(status, 404);
    assert_eq!(d.count("SELECT count(*) FROM artifact_bundles"), 2);
    assert_eq!(d.count("SELECT count(*) FROM pending_artifact_index"), 13);

    new_release(&d, "4.0.0");
    let listed = files(&d, "4.0.0");
    assert_eq!(listed.len(), 13, "{listed:?}");
    assert!(listed.iter().all(|f| f["sha1"].is_string()), "{listed:?}");
    assert_eq!(d.count("SELECT count(*) FROM pending_artifact_index"), 0);
    // And the bytes come back.
    let a = listed.iter().find(|f| f["name"] == "~/a.js").unwrap();
    let id = a["id"].as_str().unwrap();
    let resp = reqwest::blocking::Client::new()
        .get(format!(
            "{}/api/0/organizations/acme/releases/4.0.0/files/{id}/?download=1",
            d.url
        ))
        .bearer_auth(&d.token)
        .send()
        .unwrap();
    assert_eq!(resp.bytes().unwrap().as_ref(), b"small");
}

#[test]
fn legacy_release_assemble_deletion_and_dists() {
    let d = Daemon::start();
    new_release(&d, "web@1.0.0");
    let m = json!({"org": "acme", "release": "web@1.0.0", "dist": "7", "files": {
        "files/_/_/app.js": {"type": "minified_source", "url": "~/app.js", "headers": {"Sourcemap": "app.js.map"}},
        "files/_/_/app.js.map": {"type": "source_map", "url": "~/app.js.map"}
    }});
    let data = bundle(
        &m,
        &[
            ("files/_/_/app.js", b"app();"),
            ("files/_/_/app.js.map", b"{}"),
        ],
        true,
    );
    let body = upload(&d, &data, MIB, json!({}));
    let legacy = json!({"checksum": body["checksum"], "chunks": body["chunks"]});
    let path = "organizations/acme/releases/web@1.0.0/assemble/";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (status, v) = d.api("POST", path, Some(legacy.clone()));
        assert_eq!(status, 200, "{v}");
        if v["state"] == "ok" {
            break;
        }
        assert_ne!(v["state"], "error", "{v}");
        assert!(std::time::Instant::now() < deadline);
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let list = files(&d, "web@1.0.0");
    assert_eq!(list.len(), 2);
    let app = file_named(&list, "~/app.js");
    assert_eq!(app["dist"], "7");
    assert_eq!(app["headers"]["Sourcemap"], "app.js.map");
    // Sentry's ident: sha1(name + "\0\0" + dist).
    let ident = sha1_hex(b"~/app.js\0\x007");
    assert_eq!(
        d.count(&format!(
            "SELECT count(*) FROM release_files WHERE ident = '{ident}'"
        )),
        1
    );
    let (status, dists) = d.api(
        "GET",
        "organizations/acme/releases/web@1.0.0/files/?dist=8",
        None,
    );
    assert_eq!((status, dists), (200, json!([])));
    let (status, meta) = d.api(
        "GET",
        &format!(
            "organizations/acme/releases/web@1.0.0/files/{}/",
            app["id"].as_str().unwrap()
        ),
        None,
    );
    assert_eq!(status, 200);
    assert_eq!(meta["sha1"], sha1_hex(b"app();"));
    // A release that does not exist: 404 as sentry-cli expects.
    let (status, _) = d.api(
        "POST",
        "organizations/acme/releases/nope/assemble/",
        Some(legacy.clone()),
    );
    assert_eq!(status, 404);

    let url = format!(
        "organizations/acme/releases/web@1.0.0/files/{}/",
        app["id"].as_str().unwrap()
    );
    assert_eq!(d.api("DELETE", &url, None).0, 204);
    assert_eq!(d.api("GET", &url, None).0, 404);
    assert_eq!(d.api("DELETE", &url, None).0, 404);
    assert_eq!(files(&d, "web@1.0.0").len(), 1);
    assert_eq!(
        d.api(
            "GET",
            "organizations/acme/releases/web@1.0.0/files/zz/",
            None
        )
        .0,
        404
    );
}

/// Uploads `files` (entry, url, bytes) as release files of `release` and waits for `ok`.
fn put_files(d: &Daemon, release: &str, list: &[(&str, &str, &[u8])]) {
    let m = manifest(
        "acme",
        Some(release),
        &list
            .iter()
            .map(|(p, u, _)| (*p, *u, "minified_source"))
            .collect::<Vec<_>>(),
    );
    let entries: Vec<(&str, &[u8])> = list.iter().map(|(p, _, b)| (*p, *b)).collect();
    let data = bundle(&m, &entries, true);
    let body = upload(d, &data, MIB, json!({"version": release}));
    assert_eq!(assemble_until_done(d, &body)["state"], "ok");
}

#[test]
fn pruning_keeps_every_chunk_still_in_use() {
    let mut d = Daemon::start();
    new_release(&d, "old");
    new_release(&d, "new");
    // vendor.js is the same in both releases (2.5 MiB: three chunks shared by both).
    let vendor = noise(10, 5 * MIB / 2);
    let old_only = noise(11, 3 * MIB / 2);
    let new_only = noise(12, MIB / 2);
    put_files(
        &d,
        "old",
        &[
            ("files/v.js", "~/vendor.js", &vendor),
            ("files/o.js", "~/old.js", &old_only),
        ],
    );
    put_files(
        &d,
        "new",
        &[
            ("files/v.js", "~/vendor.js", &vendor),
            ("files/n.js", "~/new.js", &new_only),
        ],
    );
    let vendor_chunks: Vec<String> = vendor.chunks(MIB).map(sha1_hex).collect();
    let old_chunks: Vec<String> = old_only.chunks(MIB).map(sha1_hex).collect();
    let has = |d: &Daemon, sha: &str| {
        d.count(&format!("SELECT count(*) FROM blobs WHERE sha1 = '{sha}'")) == 1
    };
    assert!(vendor_chunks.iter().chain(&old_chunks).all(|c| has(&d, c)));

    // Make release "old" and every upload look a year old, then prune with the daemon down.
    d.stop();
    {
        let db = rusqlite::Connection::open(d.data_dir().join("shiplog.sqlite3")).unwrap();
        db.execute(
            "UPDATE releases SET date_added = '2025-01-01T00:00:00.000000Z' WHERE version = 'old'",
            [],
        )
        .unwrap();
        db.execute(
            "UPDATE blob_owners SET last_used = '2025-01-01T00:00:00.000000Z'",
            [],
        )
        .unwrap();
        db.execute(
            "UPDATE artifact_bundles SET date_uploaded = '2025-01-01T00:00:00.000000Z'",
            [],
        )
        .unwrap();
    }
    let out = d.shiplog(&["artifacts", "prune", "--keep-days", "30"]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let report = common::stdout(&out);
    assert!(
        report.contains("release files") && report.contains("chunks"),
        "{report}"
    );
    d.restart();

    assert!(files(&d, "old").is_empty());
    assert!(
        vendor_chunks.iter().all(|c| has(&d, c)),
        "a shared chunk was pruned"
    );
    assert!(
        old_chunks.iter().all(|c| !has(&d, c)),
        "old.js's chunks are still there"
    );
    assert_eq!(
        d.count("SELECT count(*) FROM blobs WHERE id NOT IN (SELECT blob_id FROM file_blobs)"),
        0,
        "unreferenced chunks remain"
    );
    let list = files(&d, "new");
    for (name, data) in [("~/vendor.js", &vendor), ("~/new.js", &new_only)] {
        let id = file_named(&list, name)["id"].as_str().unwrap().to_string();
        let (_, bytes) = download(
            &d,
            &format!("organizations/acme/releases/new/files/{id}/?download=1"),
        );
        assert!(&bytes == data, "{name} changed");
    }
    // Pruning again removes nothing more.
    let (blobs, bytes) = blob_totals(&d);
    let out = d.shiplog(&["artifacts", "prune", "--keep-days", "30"]);
    assert!(out.status.success());
    assert_eq!(blob_totals(&d), (blobs, bytes));
}

#[test]
fn cli_uploads_lists_downloads_and_deletes() {
    let d = Daemon::start();
    new_release(&d, "1.0.0");
    let work = tempfile::tempdir().unwrap();
    let dist = work.path().join("dist");
    std::fs::create_dir_all(dist.join("js")).unwrap();
    let big = common::artifacts::js(5, 3 * MIB);
    std::fs::write(dist.join("js/app.js"), &big).unwrap();
    std::fs::write(
        dist.join("js/app.js.map"),
        br#"{"version":3,"mappings":""}"#,
    )
    .unwrap();
    std::fs::write(dist.join("readme.txt"), b"not uploaded").unwrap();
    let out = d.shiplog(&[
        "artifacts",
        "-r",
        "1.0.0",
        "upload",
        "-p",
        "web",
        "--url-prefix",
        "~/static",
        "--wait",
        dist.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert!(
        common::stdout(&out).contains("2 files stored"),
        "{}",
        common::stdout(&out)
    );
    let list = files(&d, "1.0.0");
    assert_eq!(list.len(), 2, "{list:#?}");
    let app = file_named(&list, "~/static/js/app.js");
    let id = app["id"].as_str().unwrap().to_string();

    let out = d.shiplog(&["artifacts", "-r", "1.0.0", "list"]);
    assert!(out.status.success());
    assert!(common::stdout(&out).contains("~/static/js/app.js.map"));

    let target = work.path().join("got.js");
    let out = d.shiplog(&[
        "artifacts",
        "-r",
        "1.0.0",
        "download",
        &id,
        "--output",
        target.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert!(std::fs::read(&target).unwrap() == big);

    // The same upload again sends no chunk.
    let out = d.shiplog(&[
        "artifacts",
        "-r",
        "1.0.0",
        "upload",
        "-p",
        "web",
        "--url-prefix",
        "~/static",
        "--wait",
        dist.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    assert!(
        common::stdout(&out).contains(" 0 of "),
        "{}",
        common::stdout(&out)
    );

    let out = d.shiplog(&["artifacts", "-r", "1.0.0", "delete", &id]);
    assert!(out.status.success());
    assert_eq!(files(&d, "1.0.0").len(), 1);
    let out = d.shiplog(&["artifacts", "-r", "1.0.0", "delete", &id]);
    assert!(!out.status.success());
    let err = common::stderr(&out);
    assert!(
        err.contains("not found") && err.lines().count() == 1,
        "{err}"
    );
    // No release: one line saying what to pass.
    let out = d.shiplog(&["artifacts", "list"]);
    assert!(!out.status.success());
    assert!(common::stderr(&out).contains("--release"));
    let _ = Value::Null;
}
