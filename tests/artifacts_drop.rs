//! The CI drop folder with a real daemon and real files: zip and directory drops, a drop
//! written slowly in place, bad drops landing in `failed/` with their reason, drops present at
//! start-up, duplicates, and a daemon killed (SIGKILL) in the middle of an assemble.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::Daemon;
use common::artifacts::{
    bundle, bundle_with, corrupt_bundle, download, drop_file, file_named, files, js, manifest,
    noise, sha1_hex, wait_for,
};
use serde_json::{Value, json};

struct Setup {
    d: Daemon,
    drop: PathBuf,
    _dir: tempfile::TempDir,
}

fn start(extra: &str) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let drop = dir.path().join("drop");
    std::fs::create_dir_all(&drop).unwrap();
    let d = Daemon::start_with(&format!(
        "{}artifacts:\n  drop_dirs: [{}]\n{extra}",
        common::DEFAULT_CONFIG,
        drop.display()
    ));
    new_release(&d, "1.0.0");
    Setup { d, drop, _dir: dir }
}

fn new_release(d: &Daemon, version: &str) {
    let (status, v) = d.api(
        "POST",
        "organizations/acme/releases/",
        Some(json!({"version": version, "projects": ["web"]})),
    );
    assert!(status == 201 || status == 208, "{v}");
}

fn content(d: &Daemon, release: &str, name: &str) -> Vec<u8> {
    let list = files(d, release);
    let id = file_named(&list, name)["id"].as_str().unwrap().to_string();
    let (status, bytes) = download(
        d,
        &format!("organizations/acme/releases/{release}/files/{id}/?download=1"),
    );
    assert_eq!(status, 200);
    bytes
}

fn two_files() -> (Vec<u8>, Vec<u8>) {
    (
        js(1, 5000),
        br#"{"version":3,"sources":["a.js"],"mappings":"AAAA"}"#.to_vec(),
    )
}

fn site_bundle(release: &str, sysb: bool) -> Vec<u8> {
    let (a, map) = two_files();
    let m = manifest(
        "acme",
        Some(release),
        &[
            ("files/_/_/a.js", "~/a.js", "minified_source"),
            ("files/_/_/a.js.map", "~/a.js.map", "source_map"),
        ],
    );
    bundle(
        &m,
        &[("files/_/_/a.js", &a), ("files/_/_/a.js.map", &map)],
        sysb,
    )
}

/// Writes a directory drop: the files first, `manifest.json` last.
fn write_dir_drop(at: &Path, manifest: &Value, files: &[(&str, &[u8])]) {
    std::fs::create_dir_all(at).unwrap();
    for (path, data) in files {
        let p = at.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    }
    std::fs::write(at.join("manifest.json"), manifest.to_string()).unwrap();
}

fn gone(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_err()
}

fn drop_events(d: &Daemon) -> i64 {
    d.count("SELECT count(*) FROM inbox WHERE kind = 'artifacts.drop'")
}

#[test]
fn zip_and_directory_drops_are_stored_and_cleared_away() {
    let s = start("");
    let (a, map) = two_files();
    drop_file(&s.drop, "site.zip", &site_bundle("1.0.0", true));

    let other = js(2, 3000);
    let m = json!({"org": "acme", "release": "1.0.0", "dist": "web", "files": {
        "files/_/_/b.js": {"type": "minified_source", "url": "~/b.js", "headers": {"sourcemap": "b.js.map"}}
    }});
    write_dir_drop(&s.drop.join("build-7"), &m, &[("files/_/_/b.js", &other)]);

    wait_for(30, "both drops to be processed", || {
        gone(&s.drop.join("site.zip")) && gone(&s.drop.join("build-7"))
    });
    assert!(!s.drop.join("failed").exists(), "{}", s.d.log());
    assert!(content(&s.d, "1.0.0", "~/a.js") == a);
    assert!(content(&s.d, "1.0.0", "~/a.js.map") == map);
    assert!(content(&s.d, "1.0.0", "~/b.js") == other);
    let b = files(&s.d, "1.0.0")
        .into_iter()
        .find(|f| f["name"] == "~/b.js")
        .unwrap();
    assert_eq!(b["dist"], "web");
    assert_eq!(b["headers"]["sourcemap"], "b.js.map");
    assert_eq!(drop_events(&s.d), 2);
}

#[test]
fn a_drop_written_slowly_in_place_is_read_only_when_complete() {
    let s = start("");
    let data = site_bundle("1.0.0", false);
    // A zip written straight under its final name, in pieces, with pauses longer than the
    // settle time: half a zip has no central directory, so it is never taken.
    let mut f = std::fs::File::create(s.drop.join("slow.zip")).unwrap();
    let pieces: Vec<&[u8]> = data.chunks(data.len() / 5 + 1).collect();
    for piece in pieces {
        assert_eq!(drop_events(&s.d), 0, "a half-written drop was picked up");
        f.write_all(piece).unwrap();
        f.flush().unwrap();
        std::thread::sleep(Duration::from_millis(700));
    }
    drop(f);
    // A directory whose files arrive slowly; the manifest comes last.
    let dir = s.drop.join("slowdir");
    let big = noise(3, 300_000);
    std::fs::create_dir_all(dir.join("files")).unwrap();
    let mut f = std::fs::File::create(dir.join("files/c.js")).unwrap();
    for piece in big.chunks(100_000) {
        f.write_all(piece).unwrap();
        f.flush().unwrap();
        std::thread::sleep(Duration::from_millis(500));
    }
    drop(f);
    assert_eq!(
        drop_events(&s.d),
        1,
        "the directory was taken before its manifest"
    );
    std::fs::write(
        dir.join("manifest.json"),
        json!({"org": "acme", "release": "1.0.0", "files": {"files/c.js": {"url": "~/c.js"}}})
            .to_string(),
    )
    .unwrap();

    wait_for(30, "the slow drops", || {
        gone(&s.drop.join("slow.zip")) && gone(&dir)
    });
    assert!(!s.drop.join("failed").exists(), "{}", s.d.log());
    assert_eq!(drop_events(&s.d), 2);
    assert!(content(&s.d, "1.0.0", "~/a.js") == two_files().0);
    assert!(content(&s.d, "1.0.0", "~/c.js") == big);
}

fn failed_reason(drop: &Path, name: &str) -> String {
    let error = drop.join("failed").join(format!("{name}.error"));
    wait_for(30, &format!("{name} to land in failed/"), || error.exists());
    assert!(
        drop.join("failed").join(name).exists(),
        "{name} was not moved"
    );
    assert!(gone(&drop.join(name)));
    std::fs::read_to_string(error).unwrap()
}

#[test]
fn each_bad_drop_lands_in_failed_with_its_reason() {
    let s = start("");
    let file = [("files/a.js", "~/a.js", "minified_source")];
    let a: &[u8] = b"a();";
    // Bad manifest.
    let mut cursor = std::io::Cursor::new(Vec::new());
    {
        let mut z = zip::ZipWriter::new(&mut cursor);
        z.start_file("manifest.json", zip::write::SimpleFileOptions::default())
            .unwrap();
        z.write_all(b"{ this is not json").unwrap();
        z.finish().unwrap();
    }
    drop_file(&s.drop, "badmanifest.zip", &cursor.into_inner());
    // Organization mismatch.
    drop_file(
        &s.drop,
        "otherorg.zip",
        &bundle(
            &manifest("other", Some("1.0.0"), &file),
            &[("files/a.js", a)],
            true,
        ),
    );
    // Checksum mismatch: an entry whose bytes do not match its CRC-32.
    let payload = b"0123456789abcdefghij".repeat(50);
    let mut cursor = std::io::Cursor::new(Vec::new());
    {
        let mut z = zip::ZipWriter::new(&mut cursor);
        let stored = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        z.start_file("files/a.js", stored).unwrap();
        z.write_all(&payload).unwrap();
        z.start_file("manifest.json", stored).unwrap();
        z.write_all(
            manifest("acme", Some("1.0.0"), &file)
                .to_string()
                .as_bytes(),
        )
        .unwrap();
        z.finish().unwrap();
    }
    let mut corrupt = cursor.into_inner();
    let at = corrupt
        .windows(payload.len())
        .position(|w| w == payload.as_slice())
        .unwrap();
    corrupt[at + 10] ^= 0xff;
    drop_file(&s.drop, "corrupt.zip", &corrupt);
    // Paths outside the bundle: in a zip, in a directory's manifest, through a symlink.
    let m = manifest("acme", Some("1.0.0"), &[("../x.js", "~/x.js", "source")]);
    drop_file(&s.drop, "slip.zip", &bundle(&m, &[("../x.js", a)], true));
    write_dir_drop(
        &s.drop.join("slipdir"),
        &manifest(
            "acme",
            Some("1.0.0"),
            &[("files/../../etc/passwd", "~/p", "source")],
        ),
        &[],
    );
    let linkdir = s.drop.join("linkdir");
    std::fs::create_dir_all(linkdir.join("files")).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", linkdir.join("files/h.js")).unwrap();
    std::fs::write(
        linkdir.join("manifest.json"),
        manifest("acme", Some("1.0.0"), &[("files/h.js", "~/h.js", "source")]).to_string(),
    )
    .unwrap();
    // Not a zip at all.
    drop_file(&s.drop, "junk.zip", b"definitely not a zip file");

    for (name, reason) in [
        ("badmanifest.zip", "bad manifest"),
        ("otherorg.zip", "organization does not match"),
        ("corrupt.zip", "checksum mismatch"),
        ("slip.zip", "path outside the bundle"),
        ("slipdir", "path outside the bundle"),
        ("linkdir", "path outside the bundle"),
        ("junk.zip", "the bundle is invalid"),
    ] {
        let got = failed_reason(&s.drop, name);
        assert!(
            got.contains(reason),
            "{name}: {got:?} does not say {reason:?}"
        );
    }
    for table in [
        "files",
        "release_files",
        "artifact_bundles",
        "artifact_index",
        "debug_id_artifacts",
    ] {
        assert_eq!(
            s.d.count(&format!("SELECT count(*) FROM {table}")),
            0,
            "{table}"
        );
    }
    assert!(files(&s.d, "1.0.0").is_empty());

    // A bundle for a release that does not exist yet is no failure: it is kept, and the
    // release shows it once created.
    drop_file(
        &s.drop,
        "norelease.zip",
        &bundle(
            &manifest("acme", Some("9.9.9"), &file),
            &[("files/a.js", a)],
            true,
        ),
    );
    wait_for(30, "the drop for a future release", || {
        gone(&s.drop.join("norelease.zip"))
    });
    assert!(!s.drop.join("failed/norelease.zip").exists());
    assert_eq!(s.d.count("SELECT count(*) FROM artifact_bundles"), 1);
    new_release(&s.d, "9.9.9");
    assert!(content(&s.d, "9.9.9", "~/a.js") == a);
}

#[test]
fn a_bundle_stored_whole_is_verified_after_storing_and_a_corrupt_one_withdrawn() {
    // Two files or more are stored as a bundle with an artifact index.
    let s = start("  index_min_files: 2\n");
    let (a, map) = two_files();
    drop_file(&s.drop, "site.zip", &site_bundle("1.0.0", true));
    // The drop is cleared away only once every entry was read back and hashed.
    wait_for(30, "the sound bundle", || gone(&s.drop.join("site.zip")));
    let list = files(&s.d, "1.0.0");
    assert_eq!(list.len(), 2);
    for (name, bytes) in [("~/a.js", &a), ("~/a.js.map", &map)] {
        let f = file_named(&list, name);
        assert_eq!(f["sha1"], sha1_hex(bytes), "{name}");
        assert_eq!(f["size"], bytes.len(), "{name}");
    }
    assert!(content(&s.d, "1.0.0", "~/a.js") == a);
    assert_eq!(
        s.d.count("SELECT count(*) FROM artifact_bundles WHERE verified IS NOT NULL"),
        1
    );

    // A bundle whose second entry fails its CRC-32: stored from its directory and manifest,
    // then withdrawn by the verify step, and the drop lands in failed/ naming the entry.
    let (b, c) = (noise(21, 40_000), noise(22, 40_000));
    let m = manifest(
        "acme",
        Some("1.0.0"),
        &[
            ("files/b.js", "~/b.js", "minified_source"),
            ("files/c.js", "~/c.js", "minified_source"),
        ],
    );
    let data = corrupt_bundle(&m, &[("files/b.js", &b), ("files/c.js", &c)], "files/c.js");
    drop_file(&s.drop, "corrupt.zip", &data);
    let reason = failed_reason(&s.drop, "corrupt.zip");
    assert!(reason.contains("checksum mismatch"), "{reason}");
    assert!(reason.contains("files/c.js"), "{reason}");
    assert!(s.drop.join("failed/corrupt.zip").exists());
    // Nothing of it is left: one bundle (the sound one), its two index entries, all hashed.
    assert_eq!(s.d.count("SELECT count(*) FROM artifact_bundles"), 1);
    assert_eq!(s.d.count("SELECT count(*) FROM artifact_index"), 2);
    assert_eq!(
        s.d.count("SELECT count(*) FROM artifact_index WHERE sha1 IS NULL"),
        0
    );
    assert_eq!(files(&s.d, "1.0.0").len(), 2);

    // A corrupt bundle that would replace ~/a.js is read in full before anything is replaced,
    // so it is refused at once and the stored ~/a.js stays.
    let new_a = js(9, 6000);
    let m = manifest(
        "acme",
        Some("1.0.0"),
        &[
            ("files/_/_/a.js", "~/a.js", "minified_source"),
            ("files/d.js", "~/d.js", "minified_source"),
        ],
    );
    let data = corrupt_bundle(
        &m,
        &[("files/_/_/a.js", &new_a), ("files/d.js", &b)],
        "files/_/_/a.js",
    );
    drop_file(&s.drop, "replace.zip", &data);
    let reason = failed_reason(&s.drop, "replace.zip");
    assert!(reason.contains("checksum mismatch"), "{reason}");
    assert_eq!(s.d.count("SELECT count(*) FROM artifact_bundles"), 1);
    assert!(content(&s.d, "1.0.0", "~/a.js") == a);
    assert_eq!(files(&s.d, "1.0.0").len(), 2);
}

#[test]
fn drops_present_at_start_up_are_processed_once() {
    let mut s = start("  after_success: move_to_done\n");
    s.d.stop();
    drop_file(&s.drop, "early.zip", &site_bundle("1.0.0", true));
    write_dir_drop(
        &s.drop.join("earlydir"),
        &manifest("acme", Some("1.0.0"), &[("files/e.js", "~/e.js", "source")]),
        &[("files/e.js", b"e();")],
    );
    s.d.restart();
    wait_for(30, "the drops present at start-up", || {
        s.drop.join("done/early.zip").exists() && s.drop.join("done/earlydir").exists()
    });
    assert!(gone(&s.drop.join("early.zip")));
    assert_eq!(content(&s.d, "1.0.0", "~/e.js"), b"e();");
    assert_eq!(drop_events(&s.d), 2);

    // The same bytes dropped again are not stored again; the copy is cleared away.
    drop_file(&s.drop, "again.zip", &site_bundle("1.0.0", true));
    wait_for(30, "the duplicate drop", || {
        s.drop.join("done/again.zip").exists()
    });
    assert_eq!(drop_events(&s.d), 2);
    s.d.restart();
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(drop_events(&s.d), 2, "a restart picked something up twice");
    assert_eq!(files(&s.d, "1.0.0").len(), 3);
}

#[test]
fn a_daemon_killed_mid_assemble_leaves_nothing_and_redoes_the_drop() {
    let mut s = start("");
    // Big enough that assembling (extracting three files into chunks) takes a while.
    let parts: Vec<Vec<u8>> = (0..3u64).map(|i| noise(100 + i, 12 << 20)).collect();
    let m = manifest(
        "acme",
        Some("1.0.0"),
        &[
            ("files/a.js", "~/a.js", "minified_source"),
            ("files/b.js", "~/b.js", "minified_source"),
            ("files/c.js", "~/c.js", "minified_source"),
        ],
    );
    let data = bundle_with(
        &m,
        &[
            ("files/a.js", &parts[0]),
            ("files/b.js", &parts[1]),
            ("files/c.js", &parts[2]),
        ],
        true,
        zip::CompressionMethod::Stored,
    );
    drop_file(&s.drop, "big.zip", &data);
    wait_for(120, "the assemble to start", || {
        s.d.log().contains("assembling artifact drop")
    });
    std::thread::sleep(Duration::from_millis(200));
    s.d.kill();
    assert!(
        !s.d.log().contains("artifact drop stored"),
        "the assemble finished before the kill; make the bundle bigger"
    );
    // Nothing of it is visible: no file, no release file, and the drop is still there.
    for table in ["files", "file_blobs", "release_files"] {
        assert_eq!(
            s.d.count(&format!("SELECT count(*) FROM {table}")),
            0,
            "{table}"
        );
    }
    assert!(s.drop.join("big.zip").exists());

    s.d.restart();
    wait_for(180, "the drop to be processed after the restart", || {
        gone(&s.drop.join("big.zip"))
    });
    assert!(!s.drop.join("failed").exists(), "{}", s.d.log());
    for (name, data) in [
        ("~/a.js", &parts[0]),
        ("~/b.js", &parts[1]),
        ("~/c.js", &parts[2]),
    ] {
        assert!(&content(&s.d, "1.0.0", name) == data, "{name} differs");
    }
    // Every stored file is whole: its size is the sum of its chunks.
    assert_eq!(
        s.d.count(
            "SELECT count(*) FROM files f WHERE f.size <> (SELECT coalesce(sum(b.size), 0)
               FROM file_blobs fb JOIN blobs b ON b.id = fb.blob_id WHERE fb.file_id = f.id)"
        ),
        0
    );
    assert_eq!(drop_events(&s.d), 1);
}

#[test]
fn a_drop_over_the_file_size_limit_is_refused_unread() {
    let s = start("  max_file_size: 2 KiB\n");
    let big = noise(7, 8000);
    let m = manifest(
        "acme",
        Some("1.0.0"),
        &[("files/a.js", "~/a.js", "minified_source")],
    );
    drop_file(
        &s.drop,
        "big.zip",
        &bundle(&m, &[("files/a.js", &big)], true),
    );
    let reason = failed_reason(&s.drop, "big.zip");
    assert!(reason.contains("exceeds maximum size"), "{reason}");
    assert_eq!(s.d.count("SELECT count(*) FROM blobs"), 0);
    assert_eq!(drop_events(&s.d), 0);
}
