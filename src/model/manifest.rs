//! Artifact bundles as data: the `manifest.json` every bundle carries, the paths inside a
//! bundle, and the naming rules Sentry applies to release files.
//!
//! A bundle (sentry-cli-protocol.md §7.6) is a zip, optionally behind sentry-cli's 8-byte
//! `SYSB` header, holding `files/<mapped path>` entries and a `manifest.json` that says, per
//! entry, which URL it is served under, what kind of file it is and which headers go with it
//! (`sourcemap`, `debug-id`). Everything here is pure: [`parse`] turns manifest bytes into a
//! validated [`Manifest`], refusing every path that could step outside the bundle (zip-slip:
//! `..`, absolute paths, drive letters, backslashes); [`ident`] and [`normalize`] are Sentry's
//! `ReleaseFile.get_ident` and `ReleaseFile.normalize` (sentry-semantics.md §7.2);
//! [`url_to_bundle_path`] is sentry-cli's mapping of a URL to an entry path, used when shiplog
//! builds a bundle itself.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use sha1::{Digest, Sha1};

/// The manifest's path inside a bundle.
pub const MANIFEST_PATH: &str = "manifest.json";
/// The magic of sentry-cli's source bundle header: `SYSB` + u32 LE version.
pub const SYSB_MAGIC: &[u8; 4] = b"SYSB";
/// The length of that header; the zip starts right after it.
pub const SYSB_HEADER_LEN: u64 = 8;
/// The version sentry-cli 3.x writes.
pub const SYSB_VERSION: u32 = 2;

/// Why a manifest (or a path in a bundle) is refused. `Display` is the reason shown to users.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// Not JSON, or not the manifest's shape.
    #[error("bad manifest: {0}")]
    Malformed(String),
    /// A path that would leave the bundle (zip-slip) or is not a plain relative path.
    #[error("path outside the bundle: {path:?} ({why})")]
    PathOutside { path: String, why: &'static str },
    /// A file entry of an unknown type.
    #[error(
        "bad manifest: {path:?} has type {kind:?}; expected minified_source, source_map, source or indexed_ram_bundle"
    )]
    UnknownType { path: String, kind: String },
}

/// The kind of an artifact (Sentry's `SourceFileType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceFileType {
    Source,
    MinifiedSource,
    SourceMap,
    IndexedRamBundle,
}

impl SourceFileType {
    /// The manifest name (`minified_source`, ...), matched case-insensitively like Sentry.
    pub fn from_name(name: &str) -> Option<SourceFileType> {
        match name.to_ascii_lowercase().as_str() {
            "source" => Some(SourceFileType::Source),
            "minified_source" => Some(SourceFileType::MinifiedSource),
            "source_map" => Some(SourceFileType::SourceMap),
            "indexed_ram_bundle" => Some(SourceFileType::IndexedRamBundle),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            SourceFileType::Source => "source",
            SourceFileType::MinifiedSource => "minified_source",
            SourceFileType::SourceMap => "source_map",
            SourceFileType::IndexedRamBundle => "indexed_ram_bundle",
        }
    }

    /// Sentry's numeric value (`SOURCE=1 ... INDEXED_RAM_BUNDLE=4`).
    pub fn code(self) -> i64 {
        match self {
            SourceFileType::Source => 1,
            SourceFileType::MinifiedSource => 2,
            SourceFileType::SourceMap => 3,
            SourceFileType::IndexedRamBundle => 4,
        }
    }

    pub fn from_code(code: i64) -> Option<SourceFileType> {
        match code {
            1 => Some(SourceFileType::Source),
            2 => Some(SourceFileType::MinifiedSource),
            3 => Some(SourceFileType::SourceMap),
            4 => Some(SourceFileType::IndexedRamBundle),
            _ => None,
        }
    }
}

impl fmt::Display for SourceFileType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One file entry of a manifest, as written.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ManifestFile {
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
}

/// A bundle's `manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Manifest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dist: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub debug_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Keyed by the entry path inside the bundle.
    #[serde(default)]
    pub files: BTreeMap<String, ManifestFile>,
}

/// A manifest entry after validation: what the assemble flow works with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    /// The entry path inside the bundle (`files/_/_/app.min.js`).
    pub path: String,
    /// The URL it is served under (`~/app.min.js`); the path when the manifest gives none.
    pub url: String,
    pub kind: SourceFileType,
    pub headers: BTreeMap<String, String>,
    /// The normalised `debug-id` header, when present and well-formed.
    pub debug_id: Option<String>,
}

impl Manifest {
    /// The validated entries, in path order.
    pub fn artifacts(&self) -> Vec<Artifact> {
        self.files
            .iter()
            .map(|(path, f)| Artifact {
                path: path.clone(),
                url: f.url.clone().unwrap_or_else(|| path.clone()),
                // `parse` refused unknown types; a missing type is a plain source, as in
                // Sentry's release-bundle path.
                kind: f
                    .kind
                    .as_deref()
                    .and_then(SourceFileType::from_name)
                    .unwrap_or(SourceFileType::Source),
                debug_id: header(&f.headers, "debug-id").and_then(normalize_debug_id),
                headers: f.headers.clone(),
            })
            .collect()
    }

    /// The bundle's own debug id, normalised.
    pub fn bundle_debug_id(&self) -> Option<String> {
        self.debug_id.as_deref().and_then(normalize_debug_id)
    }
}

/// A header by name, compared case-insensitively (Sentry lowercases keys before lookups).
pub fn header<'a>(headers: &'a BTreeMap<String, String>, name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Parses and validates manifest bytes: JSON of the manifest's shape, every entry path a plain
/// relative path inside the bundle, every type known, no empty strings where a value is needed.
pub fn parse(bytes: &[u8]) -> Result<Manifest, ManifestError> {
    let manifest: Manifest =
        serde_json::from_slice(bytes).map_err(|e| ManifestError::Malformed(e.to_string()))?;
    if manifest.files.is_empty() && !bytes.windows(7).any(|w| w == b"\"files\"") {
        return Err(ManifestError::Malformed(
            "it has no \"files\" object naming the bundle's entries".into(),
        ));
    }
    for (path, file) in &manifest.files {
        check_bundle_path(path)?;
        if path == MANIFEST_PATH {
            return Err(ManifestError::Malformed(
                "manifest.json cannot list itself as an artifact".into(),
            ));
        }
        if let Some(kind) = &file.kind
            && SourceFileType::from_name(kind).is_none()
        {
            return Err(ManifestError::UnknownType {
                path: path.clone(),
                kind: kind.clone(),
            });
        }
        if file.url.as_deref().is_some_and(|u| u.trim().is_empty()) {
            return Err(ManifestError::Malformed(format!(
                "{path:?} has an empty url"
            )));
        }
    }
    for (key, value) in [
        ("org", &manifest.org),
        ("release", &manifest.release),
        ("project", &manifest.project),
    ] {
        if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
            return Err(ManifestError::Malformed(format!("\"{key}\" is empty")));
        }
    }
    Ok(manifest)
}

/// Refuses a path that is not a plain relative path inside a bundle (zip-slip and friends):
/// empty, absolute (`/x`, `\x`, `C:x`), with a `..` or `.` component, a backslash, a NUL or an
/// empty component.
pub fn check_bundle_path(path: &str) -> Result<(), ManifestError> {
    let outside = |why| {
        Err(ManifestError::PathOutside {
            path: path.to_string(),
            why,
        })
    };
    if path.is_empty() {
        return outside("empty path");
    }
    if path.starts_with('/') {
        return outside("absolute path");
    }
    if path.contains('\\') {
        return outside("backslash in path");
    }
    if path.contains('\0') {
        return outside("NUL in path");
    }
    let bytes = path.as_bytes();
    if bytes.len() >= 2 && bytes[1] == b':' && bytes[0].is_ascii_alphabetic() {
        return outside("drive-letter path");
    }
    for component in path.split('/') {
        match component {
            ".." => return outside("\"..\" component"),
            "." => return outside("\".\" component"),
            "" => return outside("empty component"),
            _ => {}
        }
    }
    Ok(())
}

/// Lowercase hex sha1.
pub fn sha1_hex(data: &[u8]) -> String {
    hex::encode(Sha1::digest(data))
}

/// Reads `reader` to its end through `buf`: how many bytes, and their lowercase hex sha1.
pub fn sha1_reader(
    reader: &mut dyn std::io::Read,
    buf: &mut [u8],
) -> std::io::Result<(u64, String)> {
    let mut hasher = Sha1::new();
    let mut size = 0u64;
    loop {
        match reader.read(buf) {
            Ok(0) => return Ok((size, hex::encode(hasher.finalize()))),
            Ok(n) => {
                size += n as u64;
                hasher.update(&buf[..n]);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Lowercase hex sha1 of a file's bytes, read 1 MiB at a time. Callers that also cut the
/// file into chunks run this on a second thread: the two hashes then take one pass's time.
pub fn sha1_file(path: &std::path::Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    sha1_reader(&mut file, &mut vec![0u8; 1 << 20]).map(|(_, sha1)| sha1)
}

/// Sentry's `ReleaseFile.get_ident`: `sha1(name)`, or `sha1(name + "\0\0" + dist)` with a dist.
pub fn ident(name: &str, dist: Option<&str>) -> String {
    match dist {
        Some(dist) => sha1_hex(format!("{name}\0\0{dist}").as_bytes()),
        None => sha1_hex(name.as_bytes()),
    }
}

/// Sentry's `ReleaseFile.normalize(url)`: the names under which a release file for `url` may
/// have been stored, most specific first: the URL without its fragment, without its query,
/// then `~` + path (with and without the query).
pub fn normalize(url: &str) -> Vec<String> {
    let without_fragment = url.split_once('#').map_or(url, |(u, _)| u);
    let (without_query, query) = match without_fragment.split_once('?') {
        Some((u, q)) => (u, Some(q)),
        None => (without_fragment, None),
    };
    let path = match without_query.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("", |i| &rest[i..]),
        None => without_query,
    };
    let mut out = vec![without_fragment.to_string()];
    if query.is_some() {
        out.push(without_query.to_string());
    }
    if !path.starts_with('~') {
        if let Some(q) = query {
            out.push(format!("~{path}?{q}"));
        }
        out.push(format!("~{path}"));
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|c| seen.insert(c.clone()));
    out
}

/// symbolic's `normalize_debug_id`: a UUID with or without hyphens, any case, optionally with a
/// hex appendix (breakpad age), becomes lowercase `8-4-4-4-12[-appendix]`. `None` if it is not
/// one.
pub fn normalize_debug_id(text: &str) -> Option<String> {
    let hexes: String = text
        .trim()
        .chars()
        .filter(|c| *c != '-')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    if hexes.len() < 32 || hexes.len() > 40 || !hexes.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let (uuid, appendix) = hexes.split_at(32);
    let mut out = format!(
        "{}-{}-{}-{}-{}",
        &uuid[..8],
        &uuid[8..12],
        &uuid[12..16],
        &uuid[16..20],
        &uuid[20..]
    );
    let appendix = appendix.trim_start_matches('0');
    if !appendix.is_empty() {
        out.push('-');
        out.push_str(appendix);
    }
    Some(out)
}

/// A UUID-shaped id made from a hex digest (a bundle without a `debug_id` is known by its
/// checksum, as in Sentry).
pub fn uuid_from_hex(hex: &str) -> String {
    let mut h: String = hex.chars().filter(char::is_ascii_hexdigit).collect();
    while h.len() < 32 {
        h.push('0');
    }
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// sentry-cli's `url_to_bundle_path`: `~/a/b.js` -> `files/_/_/a/b.js`,
/// `https://cdn.example.com/js/a.js` -> `files/https/cdn.example.com/js/a.js`. Dot segments are
/// resolved away, so the result always passes [`check_bundle_path`].
pub fn url_to_bundle_path(url: &str) -> String {
    let (prefix, path) = if let Some(rest) = url.strip_prefix("~/") {
        ("_/_".to_string(), rest)
    } else if let Some((scheme, rest)) = url.split_once("://") {
        let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let host = if host.is_empty() { "_" } else { host };
        (format!("{scheme}/{host}"), path)
    } else {
        ("_/_".to_string(), url)
    };
    let path = path.split(['?', '#']).next().unwrap_or("");
    let mut parts: Vec<&str> = Vec::new();
    for seg in path.split(['/', '\\']) {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    if parts.is_empty() {
        parts.push("_");
    }
    let prefix: String = prefix
        .chars()
        .map(|c| if c == ':' || c == '\\' { '_' } else { c })
        .collect();
    format!("files/{prefix}/{}", parts.join("/"))
}

/// The type sentry-cli gives a file by its name: maps are `source_map`, everything else it
/// uploads (`.js`, `.mjs`, `.cjs`, ...) is `minified_source`.
pub fn type_for_path(path: &str) -> SourceFileType {
    if path.ends_with(".map") {
        SourceFileType::SourceMap
    } else {
        SourceFileType::MinifiedSource
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAPTURED: &str = r#"{
      "files": {
        "files/_/_/app.min.js":     {"type": "minified_source", "url": "~/app.min.js", "headers": {"sourcemap": "app.min.js.map"}},
        "files/_/_/app.min.js.map": {"type": "source_map",      "url": "~/app.min.js.map"},
        "files/_/_/sub/other.js":   {"type": "minified_source", "url": "~/sub/other.js"}
      },
      "debug_id": "df259316-9003-54e7-b2a6-1037cabba146",
      "dist": "web", "org": "acme", "project": "web", "release": "1.0.0"
    }"#;

    #[test]
    fn parses_the_captured_manifest() {
        let m = parse(CAPTURED.as_bytes()).unwrap();
        assert_eq!(m.org.as_deref(), Some("acme"));
        assert_eq!(m.release.as_deref(), Some("1.0.0"));
        assert_eq!(m.dist.as_deref(), Some("web"));
        let a = m.artifacts();
        assert_eq!(a.len(), 3);
        assert_eq!(a[0].path, "files/_/_/app.min.js");
        assert_eq!(a[0].url, "~/app.min.js");
        assert_eq!(a[0].kind, SourceFileType::MinifiedSource);
        assert_eq!(header(&a[0].headers, "SourceMap"), Some("app.min.js.map"));
        assert_eq!(a[1].kind, SourceFileType::SourceMap);
        assert_eq!(
            m.bundle_debug_id().as_deref(),
            Some("df259316-9003-54e7-b2a6-1037cabba146")
        );
    }

    #[test]
    fn parses_the_real_captures_beside_the_research() {
        // shared/ sits beside the repository in CI and two levels up in a worktree.
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let Some(dir) = ["../shared", "../../shared"]
            .iter()
            .map(|up| root.join(up).join("research/sentry-cli-captures"))
            .find(|d| d.join("example_manifest.json").exists())
        else {
            return; // the research folder is not part of every checkout
        };
        let text = std::fs::read(dir.join("example_manifest.json")).unwrap();
        let m = parse(&text).unwrap();
        assert_eq!(m.files.len(), 3);
        if let Ok(text) = std::fs::read(dir.join("example_manifest_debugids_multiproject.json")) {
            let v: serde_json::Value = serde_json::from_slice(&text).unwrap();
            let m = parse(v["manifest"].to_string().as_bytes()).unwrap();
            let a = m.artifacts();
            assert_eq!(
                a[0].debug_id.as_deref(),
                Some("0a5aa7cd-77b1-5c46-abf2-49ba8d573609")
            );
            assert_eq!(m.release, None);
        }
    }

    #[test]
    fn zip_slip_paths_are_refused() {
        for bad in [
            "../etc/passwd",
            "files/../../x",
            "/etc/passwd",
            "files/./x",
            "C:/windows",
            "files\\..\\x",
            "files//x",
            "",
        ] {
            let json = format!(
                r#"{{"org":"a","files":{{"{}":{{"url":"~/x"}}}}}}"#,
                bad.replace('\\', "\\\\")
            );
            let err = parse(json.as_bytes()).unwrap_err();
            assert!(
                matches!(err, ManifestError::PathOutside { .. }),
                "{bad:?}: {err}"
            );
            assert!(err.to_string().starts_with("path outside the bundle"));
        }
        assert!(check_bundle_path("files/_/_/a..b/c.js").is_ok());
    }

    #[test]
    fn malformed_manifests_say_why() {
        let e = parse(b"{not json").unwrap_err();
        assert!(e.to_string().starts_with("bad manifest:"), "{e}");
        let e = parse(br#"{"org":"a"}"#).unwrap_err();
        assert!(e.to_string().contains("\"files\""), "{e}");
        let e = parse(br#"{"files":{"files/a":{"type":"weird"}}}"#).unwrap_err();
        assert!(e.to_string().contains("weird"), "{e}");
        let e = parse(br#"{"files":{"files/a":{"url":""}}}"#).unwrap_err();
        assert!(e.to_string().contains("empty url"), "{e}");
        let e = parse(br#"{"files":{},"org":""}"#).unwrap_err();
        assert!(e.to_string().contains("\"org\" is empty"), "{e}");
        assert!(parse(br#"{"files":{}}"#).is_ok());
    }

    #[test]
    fn ident_is_sentrys() {
        // sha1("~/app.js") and sha1("~/app.js\0\0web")
        assert_eq!(ident("~/app.js", None), sha1_hex(b"~/app.js"));
        assert_eq!(ident("~/app.js", Some("web")), sha1_hex(b"~/app.js\0\0web"));
        assert_ne!(ident("~/app.js", Some("web")), ident("~/app.js", None));
        assert_eq!(sha1_hex(b"abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
    }

    #[test]
    fn normalize_gives_sentrys_candidates() {
        assert_eq!(
            normalize("https://example.com/static/app.js?v=1#frag"),
            vec![
                "https://example.com/static/app.js?v=1",
                "https://example.com/static/app.js",
                "~/static/app.js?v=1",
                "~/static/app.js",
            ]
        );
        assert_eq!(normalize("http://h/a.js"), vec!["http://h/a.js", "~/a.js"]);
        assert_eq!(normalize("~/a.js"), vec!["~/a.js"]);
    }

    #[test]
    fn debug_ids_normalise() {
        assert_eq!(
            normalize_debug_id("0A5AA7CD77B15C46ABF249BA8D573609").as_deref(),
            Some("0a5aa7cd-77b1-5c46-abf2-49ba8d573609")
        );
        assert_eq!(
            normalize_debug_id("0a5aa7cd-77b1-5c46-abf2-49ba8d573609").as_deref(),
            Some("0a5aa7cd-77b1-5c46-abf2-49ba8d573609")
        );
        assert_eq!(
            normalize_debug_id("0a5aa7cd77b15c46abf249ba8d573609a").as_deref(),
            Some("0a5aa7cd-77b1-5c46-abf2-49ba8d573609-a")
        );
        assert_eq!(normalize_debug_id("nope"), None);
        assert_eq!(
            normalize_debug_id("0a5aa7cd-77b1-5c46-abf2-49ba8d57360z"),
            None
        );
    }

    #[test]
    fn bundle_paths_follow_sentry_cli() {
        assert_eq!(url_to_bundle_path("~/app.min.js"), "files/_/_/app.min.js");
        assert_eq!(
            url_to_bundle_path("https://cdn.example.com/js/app.min.js"),
            "files/https/cdn.example.com/js/app.min.js"
        );
        assert_eq!(
            url_to_bundle_path("~/static/js/app.min.js"),
            "files/_/_/static/js/app.min.js"
        );
        let odd = url_to_bundle_path("~/../../etc/passwd");
        assert!(check_bundle_path(&odd).is_ok(), "{odd}");
    }
}
