//! Helpers for the artifact tests: content, bundles (zip, with or without sentry-cli's `SYSB`
//! header), and the raw chunk-upload protocol as sentry-cli speaks it.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sha1::{Digest, Sha1};

use super::Daemon;

pub fn sha1_hex(data: &[u8]) -> String {
    hex::encode(Sha1::digest(data))
}

/// Deterministic pseudo-random bytes (xorshift), incompressible.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Deterministic JavaScript-looking text.
pub fn js(seed: u64, len: usize) -> Vec<u8> {
    let hexed = hex::encode(noise(seed, len / 2 + 1));
    let mut out = format!("/* {seed} */ var a=\"").into_bytes();
    out.extend_from_slice(hexed.as_bytes());
    out.truncate(len.saturating_sub(3).max(out.len().min(len)));
    out.extend_from_slice(b"\";\n");
    out
}

/// A bundle: `files` as (entry path, bytes), then `manifest.json`. `sysb` puts sentry-cli's
/// 8-byte header in front.
pub fn bundle(manifest: &Value, files: &[(&str, &[u8])], sysb: bool) -> Vec<u8> {
    bundle_with(manifest, files, sysb, zip::CompressionMethod::Deflated)
}

/// [`bundle`] with a chosen compression (`Stored` builds big test bundles quickly).
pub fn bundle_with(
    manifest: &Value,
    files: &[(&str, &[u8])],
    sysb: bool,
    method: zip::CompressionMethod,
) -> Vec<u8> {
    let mut cursor = std::io::Cursor::new(Vec::new());
    if sysb {
        cursor.write_all(b"SYSB\x02\x00\x00\x00").unwrap();
    }
    let mut zip = zip::ZipWriter::new(cursor);
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(method)
        .last_modified_time(zip::DateTime::default());
    for (path, data) in files {
        zip.start_file(*path, options).unwrap();
        zip.write_all(data).unwrap();
    }
    zip.start_file("manifest.json", options).unwrap();
    zip.write_all(manifest.to_string().as_bytes()).unwrap();
    zip.finish().unwrap().into_inner()
}

/// [`bundle_with`] (entries stored, not deflated) with one byte of `corrupt`'s content flipped,
/// so that entry no longer matches its CRC-32 while the zip still opens.
#[allow(dead_code)]
pub fn corrupt_bundle(manifest: &Value, files: &[(&str, &[u8])], corrupt: &str) -> Vec<u8> {
    let mut data = bundle_with(manifest, files, true, zip::CompressionMethod::Stored);
    let content = files
        .iter()
        .find(|(path, _)| *path == corrupt)
        .map(|(_, bytes)| *bytes)
        .expect("the entry to corrupt is one of the files");
    let at = data
        .windows(content.len())
        .position(|w| w == content)
        .expect("stored entries keep their bytes");
    data[at + content.len() / 2] ^= 0xff;
    data
}

/// A manifest for `files` as (entry path, url, type).
pub fn manifest(org: &str, release: Option<&str>, files: &[(&str, &str, &str)]) -> Value {
    let mut entries = serde_json::Map::new();
    for (path, url, kind) in files {
        entries.insert(path.to_string(), json!({"type": kind, "url": url}));
    }
    let mut m = json!({"org": org, "files": entries});
    if let Some(r) = release {
        m["release"] = json!(r);
    }
    m
}

/// A multipart body of parts (field, filename, bytes) and its Content-Type.
pub fn multipart(parts: &[(&str, &str, Vec<u8>)]) -> (String, Vec<u8>) {
    let boundary = "------------------------testboundary0123456789";
    let mut body = Vec::new();
    for (field, filename, data) in parts {
        write!(
            body,
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        .unwrap();
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    write!(body, "--{boundary}--\r\n").unwrap();
    (format!("multipart/form-data; boundary={boundary}"), body)
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

/// POSTs a multipart body to the chunk-upload endpoint; returns status and JSON (or Null).
pub fn post_chunks(d: &Daemon, content_type: &str, body: Vec<u8>) -> (u16, Value) {
    let resp = reqwest::blocking::Client::new()
        .post(format!("{}/api/0/organizations/acme/chunk-upload/", d.url))
        .bearer_auth(&d.token)
        .header("Content-Type", content_type)
        .body(body)
        .send()
        .expect("chunk upload");
    let status = resp.status().as_u16();
    let text = resp.text().unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Cuts `data` into chunks of `size`, uploads them gzipped, and returns the assemble body.
pub fn upload(d: &Daemon, data: &[u8], size: usize, extra: Value) -> Value {
    let chunks: Vec<&[u8]> = data.chunks(size).collect();
    for batch in chunks.chunks(2) {
        let parts: Vec<(&str, String, Vec<u8>)> = batch
            .iter()
            .map(|c| ("file_gzip", sha1_hex(c), gzip(c)))
            .collect();
        let parts: Vec<(&str, &str, Vec<u8>)> = parts
            .iter()
            .map(|(f, n, b)| (*f, n.as_str(), b.clone()))
            .collect();
        let (ct, body) = multipart(&parts);
        let (status, v) = post_chunks(d, &ct, body);
        assert_eq!(status, 200, "{v}");
    }
    let mut body = json!({
        "checksum": sha1_hex(data),
        "chunks": chunks.iter().map(|c| sha1_hex(c)).collect::<Vec<_>>(),
        "projects": ["web"],
    });
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            b.insert(k.clone(), v.clone());
        }
    }
    body
}

/// Polls the assemble endpoint until `ok` or `error` and returns the last answer.
pub fn assemble_until_done(d: &Daemon, body: &Value) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, v) = d.api(
            "POST",
            "organizations/acme/artifactbundle/assemble/",
            Some(body.clone()),
        );
        assert_eq!(status, 200, "{v}");
        let state = v["state"].as_str().unwrap_or_default().to_string();
        if state == "ok" || state == "error" {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "assemble never finished: {v}\n{}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// GETs raw bytes with the daemon's token.
pub fn download(d: &Daemon, path: &str) -> (u16, Vec<u8>) {
    let url = if path.starts_with("/api/") {
        format!("{}{path}", d.url)
    } else {
        format!("{}/api/0/{}", d.url, path.trim_start_matches('/'))
    };
    let resp = reqwest::blocking::Client::new()
        .get(url)
        .bearer_auth(&d.token)
        .send()
        .expect("download");
    let status = resp.status().as_u16();
    (status, resp.bytes().map(|b| b.to_vec()).unwrap_or_default())
}

/// The release's files, as the API lists them.
pub fn files(d: &Daemon, release: &str) -> Vec<Value> {
    let (status, v) = d.api(
        "GET",
        &format!("organizations/acme/releases/{release}/files/"),
        None,
    );
    assert_eq!(status, 200, "{v}");
    v.as_array().cloned().unwrap_or_default()
}

/// The listed file with this name.
pub fn file_named<'a>(list: &'a [Value], name: &str) -> &'a Value {
    list.iter()
        .find(|f| f["name"] == name)
        .unwrap_or_else(|| panic!("no file {name} in {list:#?}"))
}

/// Waits until `cond` holds (checked every 50 ms), or panics with `what` after `secs`.
pub fn wait_for(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Writes `data` to `dir/name` through a temp name and a rename, as a careful CI job does.
pub fn drop_file(dir: &Path, name: &str, data: &[u8]) {
    let tmp = dir.join(format!("{name}.tmp"));
    std::fs::write(&tmp, data).unwrap();
    std::fs::rename(&tmp, dir.join(name)).unwrap();
}

/// Total size and count of stored chunks.
pub fn blob_totals(d: &Daemon) -> (i64, i64) {
    let db = d.db();
    db.query_row(
        "SELECT count(*), coalesce(sum(size), 0) FROM blobs",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .unwrap()
}
