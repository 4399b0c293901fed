//! `shiplog artifacts upload|list|download|delete|prune`: a release's source maps and other
//! artifacts.
//!
//! `upload` speaks sentry-cli's protocol (sentry-cli-protocol.md §7): it builds the same
//! bundle sentry-cli builds (`SYSB` header, `files/<mapped path>` entries, `manifest.json`
//! last) from directories of files and a `--url-prefix`, or takes a ready bundle zip; cuts it
//! into the chunk size the daemon advertises; asks `assemble` which chunks are missing;
//! uploads only those (gzip per chunk when offered, several requests at once) with a progress
//! bar; and asks `assemble` again, polling with `--wait` until the daemon says `ok` or
//! `error`. `download` streams an artifact to a file with a progress bar. `prune` works on the
//! data dir directly, like `token`.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use futures_util::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use reqwest::Method;
use serde_json::{Value, json};
use sha1::{Digest, Sha1};

use super::client::{Client, ClientOptions, segment};
use super::{CliError, output};
use crate::config::Config;
use crate::model::manifest::{self, Manifest, ManifestFile};

#[derive(Debug, Args)]
pub struct ArtifactsArgs {
    #[command(flatten)]
    client: ClientOptions,
    /// The release [env: SHIPLOG_RELEASE, SENTRY_RELEASE]
    #[arg(long, short = 'r', global = true, value_name = "VERSION")]
    release: Option<String>,
    /// The distribution (e.g. a build number) within the release.
    #[arg(long, short = 'd', global = true, value_name = "DIST")]
    dist: Option<String>,
    #[command(subcommand)]
    command: ArtifactsCommand,
}

#[derive(Debug, Subcommand)]
enum ArtifactsCommand {
    /// Upload files (source maps, minified JS) or a ready bundle zip, like `sentry-cli
    /// sourcemaps upload`.
    Upload {
        /// Directories or files to upload, or one bundle `.zip`.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Project slug; repeat for several [env: SHIPLOG_PROJECT, SENTRY_PROJECT]
        #[arg(long, short = 'p', value_name = "PROJECT")]
        project: Vec<String>,
        /// URL prefix of the files, as the browser sees them (default `~`).
        #[arg(long, default_value = "~")]
        url_prefix: String,
        /// File extensions to pick from directories (default: js cjs mjs map jsbundle bundle).
        #[arg(long = "ext", short = 'x', value_name = "EXT")]
        extensions: Vec<String>,
        /// Wait until the daemon has stored the files (or refused them).
        #[arg(long)]
        wait: bool,
        /// Send chunks uncompressed even when the daemon accepts gzip (the default already
        /// for a daemon on this machine, where compressing costs more than it saves).
        #[arg(long)]
        no_compress: bool,
    },
    /// List the release's artifacts.
    List,
    /// Download an artifact of the release.
    Download {
        /// The artifact id (from `list`).
        id: String,
        /// Where to write it (default: its file name in the current directory; `-`: stdout).
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Delete an artifact of the release.
    Delete {
        /// The artifact id (from `list`).
        id: String,
    },
    /// Delete artifacts of releases older than N days, and the chunks nothing uses any more
    /// (works on the data dir directly).
    Prune {
        #[arg(long, value_name = "DAYS")]
        keep_days: u32,
    },
}

fn env_first(keys: &[&str]) -> Option<String> {
    keys.iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
}

fn release_of(args: &ArtifactsArgs) -> Result<String, CliError> {
    args.release
        .clone()
        .or_else(|| env_first(&["SHIPLOG_RELEASE", "SENTRY_RELEASE"]))
        .ok_or_else(|| CliError::Usage("which release? pass --release VERSION".into()))
}

pub async fn run(config: &Config, args: &ArtifactsArgs) -> Result<ExitCode, CliError> {
    if let ArtifactsCommand::Prune { keep_days } = &args.command {
        return prune(config, *keep_days).await;
    }
    let client = Client::new(&args.client, config)?;
    match &args.command {
        ArtifactsCommand::Upload {
            paths,
            project,
            url_prefix,
            extensions,
            wait,
            no_compress,
        } => {
            let projects = if project.is_empty() {
                env_first(&["SHIPLOG_PROJECT", "SENTRY_PROJECT"])
                    .map(|p| vec![p])
                    .unwrap_or_default()
            } else {
                project.clone()
            };
            let release = args
                .release
                .clone()
                .or_else(|| env_first(&["SHIPLOG_RELEASE", "SENTRY_RELEASE"]));
            upload(
                &client,
                &Upload {
                    paths: paths.clone(),
                    projects,
                    release,
                    dist: args.dist.clone(),
                    url_prefix: url_prefix.clone(),
                    extensions: extensions.clone(),
                    wait: *wait,
                    compress: !no_compress,
                },
            )
            .await
        }
        ArtifactsCommand::List => list(&client, &release_of(args)?, args.dist.as_deref()).await,
        ArtifactsCommand::Download { id, output } => {
            download(&client, &release_of(args)?, id, output.as_deref()).await
        }
        ArtifactsCommand::Delete { id } => {
            let release = release_of(args)?;
            let path = files_path(&client, &release, Some(id));
            client.send(Method::DELETE, &path, None).await?;
            if !client.json {
                output::line(&format!("Deleted artifact {id} of release {release}"))?;
            }
            Ok(ExitCode::SUCCESS)
        }
        ArtifactsCommand::Prune { .. } => Ok(ExitCode::SUCCESS),
    }
}

fn files_path(client: &Client, release: &str, id: Option<&str>) -> String {
    let mut p = format!(
        "organizations/{}/releases/{}/files/",
        segment(&client.org),
        segment(release)
    );
    if let Some(id) = id {
        p.push_str(&segment(id));
        p.push('/');
    }
    p
}

fn human_size(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

async fn list(client: &Client, release: &str, dist: Option<&str>) -> Result<ExitCode, CliError> {
    let mut all: Vec<Value> = Vec::new();
    let mut cursor = String::new();
    loop {
        let mut path = format!(
            "{}?per_page=1000&cursor={}",
            files_path(client, release, None),
            super::client::query_value(&cursor)
        );
        if let Some(d) = dist {
            path.push_str(&format!("&dist={}", super::client::query_value(d)));
        }
        let resp = client.execute(client.request(Method::GET, &path)).await?;
        let next = resp
            .headers()
            .get(reqwest::header::LINK)
            .and_then(|v| v.to_str().ok())
            .and_then(next_cursor);
        let page: Value = resp.json().await.map_err(|e| CliError::Connect {
            url: client.base.clone(),
            reason: e.to_string(),
        })?;
        all.extend(page.as_array().cloned().unwrap_or_default());
        match next {
            Some(c) => cursor = c,
            None => break,
        }
    }
    if client.json {
        output::json(&Value::Array(all))?;
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = all
        .iter()
        .map(|f| {
            vec![
                output::text(f, "id"),
                output::text(f, "name"),
                output::text(f, "dist"),
                f.get("size")
                    .and_then(Value::as_u64)
                    .map_or("-".into(), human_size),
                output::text(f, "sha1").chars().take(12).collect(),
                output::when(f, "dateCreated"),
            ]
        })
        .collect();
    output::table(&["ID", "NAME", "DIST", "SIZE", "SHA1", "CREATED"], &rows)?;
    Ok(ExitCode::SUCCESS)
}

/// The `cursor` of a `rel="next"` entry with `results="true"` in Sentry's `Link` header.
fn next_cursor(link: &str) -> Option<String> {
    link.split(',')
        .find(|part| part.contains("rel=\"next\"") && part.contains("results=\"true\""))
        .and_then(|part| part.split("cursor=\"").nth(1))
        .and_then(|rest| rest.split('"').next())
        .map(str::to_string)
}

fn bar(total: Option<u64>, message: &str) -> ProgressBar {
    let pb = match total {
        Some(n) => ProgressBar::new(n),
        None => ProgressBar::no_length(),
    };
    let style = ProgressStyle::with_template(
        "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    )
    .map(|s| s.progress_chars("=> "))
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    pb.set_style(style);
    pb.set_message(message.to_string());
    pb
}

async fn download(
    client: &Client,
    release: &str,
    id: &str,
    output_path: Option<&Path>,
) -> Result<ExitCode, CliError> {
    let meta = client.get(&files_path(client, release, Some(id))).await?;
    let name = meta
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("artifact")
        .to_string();
    let size = meta.get("size").and_then(Value::as_u64);
    let basename = name
        .rsplit('/')
        .next()
        .filter(|n| !n.is_empty())
        .unwrap_or("artifact");
    let to_stdout = output_path.is_some_and(|p| p == Path::new("-"));
    let target = output_path
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(basename));
    let path = format!("{}?download=1", files_path(client, release, Some(id)));
    let resp = client.execute(client.request(Method::GET, &path)).await?;
    let pb = bar(size.or(resp.content_length()), "downloading");
    let mut sink: Box<dyn Write> = if to_stdout {
        Box::new(std::io::stdout().lock())
    } else {
        // Written beside the target and renamed, so a failed download leaves no half file.
        let tmp = part_path(&target);
        Box::new(std::io::BufWriter::new(
            std::fs::File::create(&tmp)
                .map_err(|e| CliError::Usage(format!("cannot write {}: {e}", tmp.display())))?,
        ))
    };
    let mut hasher = Sha1::new();
    let mut stream = resp.bytes_stream();
    let mut got = 0u64;
    while let Some(piece) = stream.next().await {
        let piece = piece.map_err(|e| CliError::Connect {
            url: client.base.clone(),
            reason: e.to_string(),
        })?;
        hasher.update(&piece);
        sink.write_all(&piece)?;
        got += piece.len() as u64;
        pb.set_position(got);
    }
    sink.flush()?;
    drop(sink);
    pb.finish_and_clear();
    let sha1 = hex::encode(hasher.finalize());
    if let Some(expected) = meta.get("sha1").and_then(Value::as_str)
        && expected != sha1
    {
        if !to_stdout {
            let _ = std::fs::remove_file(part_path(&target));
        }
        return Err(CliError::Usage(format!(
            "download of {name} is damaged: sha1 {sha1}, expected {expected}; try again"
        )));
    }
    if !to_stdout {
        std::fs::rename(part_path(&target), &target)?;
        if !client.json {
            output::line(&format!(
                "Downloaded {name} ({}) to {}",
                human_size(got),
                target.display()
            ))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn part_path(target: &Path) -> PathBuf {
    let mut name = target.as_os_str().to_os_string();
    name.push(".part");
    PathBuf::from(name)
}

async fn prune(config: &Config, keep_days: u32) -> Result<ExitCode, CliError> {
    if keep_days == 0 {
        return Err(CliError::Usage(
            "--keep-days must be at least 1 (0 would delete every artifact)".into(),
        ));
    }
    let store = crate::store::Store::open_dir(&config.data_dir())?;
    store.use_blob_store(
        crate::store::blob_store::BlobStore::from_config(&config.storage)
            .map_err(|e| CliError::Usage(format!("storage.blobs: {e}")))?,
    );
    let report = crate::core::artifact::prune(&store, keep_days).await?;
    output::fields(&[
        ("release files", report.release_files.to_string()),
        ("index entries", report.index_entries.to_string()),
        ("bundles", report.bundles.to_string()),
        ("files", report.files.to_string()),
        ("chunks", report.blobs.to_string()),
        ("bytes freed", human_size(report.blob_bytes)),
    ])?;
    Ok(ExitCode::SUCCESS)
}

struct Upload {
    paths: Vec<PathBuf>,
    projects: Vec<String>,
    release: Option<String>,
    dist: Option<String>,
    url_prefix: String,
    extensions: Vec<String>,
    wait: bool,
    compress: bool,
}

const DEFAULT_EXTENSIONS: &[&str] = &["js", "cjs", "mjs", "map", "jsbundle", "bundle"];

/// A temp file removed when dropped.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn usage(text: impl Into<String>) -> CliError {
    CliError::Usage(text.into())
}

/// Whether a base URL names this machine (`localhost`, 127.0.0.0/8, `[::1]`).
fn is_loopback(base: &str) -> bool {
    let rest = base.split_once("://").map_or(base, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or("");
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        authority.rsplit_once(':').map_or(authority, |(h, _)| h)
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Whether a file is a bundle: a zip, or sentry-cli's `SYSB` + zip.
fn is_bundle(path: &Path) -> bool {
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && (&magic == b"PK\x03\x04" || &magic == manifest::SYSB_MAGIC)
}

/// Files under `paths` to bundle, as (url, file).
fn collect(up: &Upload) -> Result<Vec<(String, PathBuf)>, CliError> {
    let exts: Vec<String> = if up.extensions.is_empty() {
        DEFAULT_EXTENSIONS.iter().map(|e| e.to_string()).collect()
    } else {
        up.extensions
            .iter()
            .map(|e| e.trim_start_matches('.').to_ascii_lowercase())
            .collect()
    };
    let prefix = up.url_prefix.trim_end_matches('/');
    let mut out = Vec::new();
    for root in &up.paths {
        let meta = std::fs::metadata(root)
            .map_err(|e| usage(format!("cannot read {}: {e}", root.display())))?;
        if meta.is_file() {
            let name = root
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            out.push((format!("{prefix}/{name}"), root.clone()));
            continue;
        }
        let mut stack = vec![root.clone()];
        while let Some(dir) = stack.pop() {
            let entries = std::fs::read_dir(&dir)
                .map_err(|e| usage(format!("cannot read {}: {e}", dir.display())))?;
            for entry in entries.flatten() {
                let path = entry.path();
                let Ok(ft) = entry.file_type() else { continue };
                if ft.is_dir() {
                    stack.push(path);
                } else if ft.is_file() {
                    let ext = path
                        .extension()
                        .map(|e| e.to_string_lossy().to_ascii_lowercase())
                        .unwrap_or_default();
                    if !exts.contains(&ext) {
                        continue;
                    }
                    let rel = path
                        .strip_prefix(root)
                        .unwrap_or(&path)
                        .components()
                        .map(|c| c.as_os_str().to_string_lossy().into_owned())
                        .collect::<Vec<_>>()
                        .join("/");
                    out.push((format!("{prefix}/{rel}"), path));
                }
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The headers sentry-cli writes for a file: `sourcemap` (a JS file's sourceMappingURL) and
/// `debug-id` (from `//# debugId=` or a map's `debugId`).
fn headers_for(
    path: &Path,
    kind: manifest::SourceFileType,
) -> std::collections::BTreeMap<String, String> {
    let mut headers = std::collections::BTreeMap::new();
    let Ok(mut f) = std::fs::File::open(path) else {
        return headers;
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    if kind == manifest::SourceFileType::SourceMap {
        // A map's debugId sits at the top level; scanning the text finds it without parsing
        // what may be a very large JSON document.
        let mut text = String::new();
        if f.read_to_string(&mut text).is_ok()
            && let Some(i) = text
                .find("\"debugId\"")
                .or_else(|| text.find("\"debug_id\""))
        {
            let rest = &text[i..];
            if let Some(v) = rest.split('"').nth(3)
                && let Some(id) = manifest::normalize_debug_id(v)
            {
                headers.insert("debug-id".into(), id);
            }
        }
        return headers;
    }
    // The comments sentry-cli reads sit at the end of a JS file.
    let tail = len.saturating_sub(64 * 1024);
    let mut text = String::new();
    if f.seek(SeekFrom::Start(tail)).is_ok() {
        let mut bytes = Vec::new();
        let _ = f.read_to_end(&mut bytes);
        text = String::from_utf8_lossy(&bytes).into_owned();
    }
    for line in text.lines().rev() {
        let line = line.trim();
        if let Some(v) = line
            .strip_prefix("//# sourceMappingURL=")
            .or_else(|| line.strip_prefix("//@ sourceMappingURL="))
        {
            headers
                .entry("sourcemap".into())
                .or_insert_with(|| v.trim().to_string());
        } else if let Some(v) = line.strip_prefix("//# debugId=")
            && let Some(id) = manifest::normalize_debug_id(v)
        {
            headers.entry("debug-id".into()).or_insert(id);
        }
    }
    headers
}

/// Builds a bundle from loose files into a temp file.
fn build_bundle(client: &Client, up: &Upload) -> Result<(TempFile, usize), CliError> {
    let files = collect(up)?;
    if files.is_empty() {
        return Err(usage(
            "no files to upload: give directories with .js/.map files (or --ext), or a bundle .zip",
        ));
    }
    let mut manifest = Manifest {
        org: Some(client.org.clone()),
        release: up.release.clone(),
        dist: up.dist.clone(),
        project: (up.projects.len() == 1).then(|| up.projects[0].clone()),
        ..Default::default()
    };
    let mut sources = Vec::new();
    let mut id_hasher = Sha1::new();
    for (url, path) in &files {
        let kind = manifest::type_for_path(url);
        let headers = headers_for(path, kind);
        let bundle_path = manifest::url_to_bundle_path(url);
        if manifest.files.contains_key(&bundle_path) {
            return Err(usage(format!(
                "two files map to the same URL {url}; upload them separately"
            )));
        }
        id_hasher.update(url.as_bytes());
        id_hasher.update(kind.name().as_bytes());
        for (k, v) in &headers {
            id_hasher.update(k.as_bytes());
            id_hasher.update(v.as_bytes());
        }
        let mut f = std::fs::File::open(path)
            .map_err(|e| usage(format!("cannot read {}: {e}", path.display())))?;
        std::io::copy(&mut f, &mut HashWriter(&mut id_hasher))?;
        manifest.files.insert(
            bundle_path.clone(),
            ManifestFile {
                kind: Some(kind.name().into()),
                url: Some(url.clone()),
                headers,
            },
        );
        sources.push((bundle_path, path.clone()));
    }
    if manifest.release.is_none()
        && manifest
            .files
            .values()
            .all(|f| manifest::header(&f.headers, "debug-id").is_none())
    {
        return Err(usage(
            "Cannot upload: give --release VERSION, or inject debug ids into your sources first (sentry-cli sourcemaps inject)",
        ));
    }
    manifest.debug_id = Some(manifest::uuid_from_hex(&hex::encode(id_hasher.finalize())));
    let mut rnd = [0u8; 8];
    let _ = getrandom::fill(&mut rnd);
    let tmp =
        TempFile(std::env::temp_dir().join(format!("shiplog-bundle-{}.zip", hex::encode(rnd))));
    let total: u64 = sources
        .iter()
        .filter_map(|(_, p)| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    let pb = bar(Some(total), "bundling");
    let file = std::fs::File::create(&tmp.0)?;
    let written = crate::core::artifact::write_bundle(
        std::io::BufWriter::new(file),
        &manifest,
        &sources,
        true,
        &|n| pb.inc(n),
    )?;
    written
        .into_inner()
        .map_err(|e| e.into_error())?
        .sync_all()?;
    pb.finish_and_clear();
    Ok((tmp, sources.len()))
}

struct HashWriter<'a>(&'a mut Sha1);

impl Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The most chunks `shiplog artifacts upload` puts in one request (see `upload`).
const MAX_CHUNKS_PER_REQUEST: u64 = 8;

/// The chunk checksums of a file and its own sha1. The whole file's sha1 is computed on a
/// second thread while this one hashes the chunks.
fn chunk_file(path: &Path, chunk_size: usize) -> std::io::Result<(String, Vec<String>, u64)> {
    std::thread::scope(|scope| {
        let whole = scope.spawn(|| crate::model::manifest::sha1_file(path));
        let mut f = std::fs::File::open(path)?;
        let mut chunks = Vec::new();
        let mut buf = vec![0u8; chunk_size];
        let mut size = 0u64;
        loop {
            let mut filled = 0;
            while filled < chunk_size {
                let n = f.read(&mut buf[filled..])?;
                if n == 0 {
                    break;
                }
                filled += n;
            }
            if filled == 0 {
                break;
            }
            chunks.push(hex::encode(Sha1::digest(&buf[..filled])));
            size += filled as u64;
            if filled < chunk_size {
                break;
            }
        }
        let whole = whole
            .join()
            .map_err(|_| std::io::Error::other("the hashing thread panicked"))??;
        Ok((whole, chunks, size))
    })
}

/// One multipart request's body: the given chunks, gzipped when asked.
fn multipart_body(
    path: &Path,
    chunk_size: usize,
    chunks: &[(usize, String)],
    gzip: bool,
    boundary: &str,
) -> std::io::Result<(Vec<u8>, u64)> {
    let mut f = std::fs::File::open(path)?;
    let mut body = Vec::new();
    let mut raw_bytes = 0u64;
    let mut buf = vec![0u8; chunk_size];
    for (index, sha1) in chunks {
        f.seek(SeekFrom::Start((*index * chunk_size) as u64))?;
        let mut filled = 0;
        while filled < chunk_size {
            let n = f.read(&mut buf[filled..])?;
            if n == 0 {
                break;
            }
            filled += n;
        }
        raw_bytes += filled as u64;
        let field = if gzip { "file_gzip" } else { "file" };
        write!(
            body,
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{sha1}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        )?;
        if gzip {
            let mut enc = flate2::write::GzEncoder::new(&mut body, flate2::Compression::fast());
            enc.write_all(&buf[..filled])?;
            enc.finish()?;
        } else {
            body.extend_from_slice(&buf[..filled]);
        }
        body.extend_from_slice(b"\r\n");
    }
    write!(body, "--{boundary}--\r\n")?;
    Ok((body, raw_bytes))
}

async fn assemble_call(client: &Client, body: &Value) -> Result<Value, CliError> {
    let path = format!(
        "organizations/{}/artifactbundle/assemble/",
        segment(&client.org)
    );
    Ok(client.send(Method::POST, &path, Some(body)).await?.1)
}

async fn upload(client: &Client, up: &Upload) -> Result<ExitCode, CliError> {
    if up.projects.is_empty() {
        return Err(usage(
            "which project? pass --project SLUG (-p), or set SHIPLOG_PROJECT",
        ));
    }
    if up.dist.is_some() && up.release.is_none() {
        return Err(usage("--dist needs --release"));
    }
    let options = client
        .get(&format!(
            "organizations/{}/chunk-upload/",
            segment(&client.org)
        ))
        .await?;
    let chunk_size = options
        .get("chunkSize")
        .and_then(Value::as_u64)
        .filter(|n| *n > 0)
        .unwrap_or(1 << 20) as usize;
    // The server's limit, and at most 8 MiB a request: the first request starts sooner and the
    // daemon hashes and stores one request's chunks while the next ones arrive.
    let per_request = options
        .get("chunksPerRequest")
        .and_then(Value::as_u64)
        .unwrap_or(64)
        .clamp(1, MAX_CHUNKS_PER_REQUEST) as usize;
    let max_request = options
        .get("maxRequestSize")
        .and_then(Value::as_u64)
        .unwrap_or(32 << 20);
    let concurrency = options
        .get("concurrency")
        .and_then(Value::as_u64)
        .unwrap_or(4)
        .clamp(1, 16) as usize;
    // Compressing only pays where the network is slower than the CPU: not on this machine.
    let gzip = up.compress
        && !is_loopback(&client.base)
        && options
            .get("compression")
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|v| v == "gzip"));
    let upload_url = options
        .get("url")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();

    let ready = up.paths.len() == 1 && up.paths[0].is_file() && is_bundle(&up.paths[0]);
    let (_tmp, bundle, count) = if ready {
        (None, up.paths[0].clone(), None)
    } else {
        let (tmp, n) = build_bundle(client, up)?;
        let path = tmp.0.clone();
        (Some(tmp), path, Some(n))
    };
    let b = bundle.clone();
    let (checksum, chunks, size) = tokio::task::spawn_blocking(move || chunk_file(&b, chunk_size))
        .await
        .map_err(|e| usage(e.to_string()))??;
    let request = json!({
        "checksum": checksum,
        "chunks": chunks,
        "projects": up.projects,
        "version": up.release,
        "dist": up.dist,
    });
    let first = assemble_call(client, &request).await?;
    let missing: Vec<String> = first
        .get("missingChunks")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    if !missing.is_empty() {
        // Index of each missing chunk's first occurrence, in file order.
        let want: std::collections::HashSet<&str> = missing.iter().map(String::as_str).collect();
        let mut seen = std::collections::HashSet::new();
        let todo: Vec<(usize, String)> = chunks
            .iter()
            .enumerate()
            .filter(|(_, c)| want.contains(c.as_str()) && seen.insert(c.as_str()))
            .map(|(i, c)| (i, c.clone()))
            .collect();
        let mut batches: Vec<Vec<(usize, String)>> = Vec::new();
        let mut cur: Vec<(usize, String)> = Vec::new();
        let mut cur_bytes = 0u64;
        for item in todo {
            let len = (size - (item.0 * chunk_size) as u64).min(chunk_size as u64);
            if !cur.is_empty() && (cur.len() >= per_request || cur_bytes + len > max_request) {
                batches.push(std::mem::take(&mut cur));
                cur_bytes = 0;
            }
            cur_bytes += len;
            cur.push(item);
        }
        if !cur.is_empty() {
            batches.push(cur);
        }
        let total: u64 = batches
            .iter()
            .flatten()
            .map(|(i, _)| (size - (*i * chunk_size) as u64).min(chunk_size as u64))
            .sum();
        let pb = Arc::new(bar(Some(total), "uploading"));
        let results = futures_util::stream::iter(batches.into_iter().map(|batch| {
            let pb = pb.clone();
            let bundle = bundle.clone();
            let upload_url = upload_url.clone();
            async move {
                let mut rnd = [0u8; 12];
                let _ = getrandom::fill(&mut rnd);
                let boundary = format!("shiplog{}", hex::encode(rnd));
                let bd = boundary.clone();
                let (body, raw) = tokio::task::spawn_blocking(move || {
                    multipart_body(&bundle, chunk_size, &batch, gzip, &bd)
                })
                .await
                .map_err(|e| usage(e.to_string()))??;
                let req = client
                    .request(Method::POST, &upload_url)
                    .header(
                        reqwest::header::CONTENT_TYPE,
                        format!("multipart/form-data; boundary={boundary}"),
                    )
                    .body(body);
                client.execute(req).await?;
                pb.inc(raw);
                Ok::<_, CliError>(())
            }
        }))
        .buffer_unordered(concurrency)
        .collect::<Vec<_>>()
        .await;
        pb.finish_and_clear();
        for r in results {
            r?;
        }
    }
    let started = Instant::now();
    let mut answer = assemble_call(client, &request).await?;
    // Assembling takes from milliseconds (a bundle indexed from its manifest) to seconds:
    // poll soon, then less and less often.
    let mut pause = Duration::from_millis(10);
    loop {
        let state = answer
            .get("state")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        match state.as_str() {
            "ok" => break,
            "error" => {
                let detail = answer
                    .get("detail")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown error");
                return Err(usage(format!("the daemon refused the upload: {detail}")));
            }
            _ if !up.wait => break,
            _ if started.elapsed() > Duration::from_secs(300) => {
                return Err(usage(
                    "the daemon did not finish processing within 300 s; check `shiplog artifacts list` later",
                ));
            }
            _ => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(250));
                answer = assemble_call(client, &request).await?;
            }
        }
    }
    let state = answer.get("state").and_then(Value::as_str).unwrap_or("");
    if client.json {
        output::json(&json!({
            "checksum": checksum,
            "size": size,
            "chunks": chunks.len(),
            "uploadedChunks": missing.len(),
            "files": count,
            "state": state,
        }))?;
    } else {
        let what = match count {
            Some(n) => format!("{n} files"),
            None => bundle.display().to_string(),
        };
        let done = if state == "ok" {
            "stored"
        } else {
            "uploaded (processing pending on the daemon)"
        };
        output::line(&format!(
            "{what} {done}: bundle {checksum}, {}, {} of {} chunks sent",
            human_size(size),
            missing.len(),
            chunks.len()
        ))?;
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        super::super::Cli::command().debug_assert();
    }

    #[test]
    fn loopback_urls_are_recognised() {
        assert!(is_loopback("http://127.0.0.1:8740"));
        assert!(is_loopback("http://localhost:1/"));
        assert!(is_loopback("http://[::1]:8740"));
        assert!(!is_loopback("https://shiplog.example.com"));
        assert!(!is_loopback("http://10.0.0.1:8740"));
    }

    #[test]
    fn next_cursor_reads_sentrys_link() {
        let link = "<http://h/x?&cursor=100:-1:1>; rel=\"previous\"; results=\"false\"; cursor=\"100:-1:1\", <http://h/x?&cursor=100:1:0>; rel=\"next\"; results=\"true\"; cursor=\"100:1:0\"";
        assert_eq!(next_cursor(link).as_deref(), Some("100:1:0"));
        let last = link.replace("results=\"true\"", "results=\"false\"");
        assert_eq!(next_cursor(&last), None);
    }

    #[test]
    fn chunking_matches_the_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("b");
        let data: Vec<u8> = (0..2500u32).map(|i| i as u8).collect();
        std::fs::write(&p, &data).unwrap();
        let (sha, chunks, size) = chunk_file(&p, 1000).unwrap();
        assert_eq!(size, 2500);
        assert_eq!(sha, hex::encode(Sha1::digest(&data)));
        assert_eq!(chunks.len(), 3);
        assert_eq!(chunks[2], hex::encode(Sha1::digest(&data[2000..])));
    }

    #[test]
    fn headers_come_from_the_files() {
        let dir = tempfile::tempdir().unwrap();
        let js = dir.path().join("a.js");
        std::fs::write(
            &js,
            "x();\n//# debugId=0A5AA7CD-77B1-5C46-ABF2-49BA8D573609\n//# sourceMappingURL=a.js.map\n",
        )
        .unwrap();
        let h = headers_for(&js, manifest::SourceFileType::MinifiedSource);
        assert_eq!(h["sourcemap"], "a.js.map");
        assert_eq!(h["debug-id"], "0a5aa7cd-77b1-5c46-abf2-49ba8d573609");
        let map = dir.path().join("a.js.map");
        std::fs::write(
            &map,
            r#"{"version":3,"debugId":"0a5aa7cd-77b1-5c46-abf2-49ba8d573609"}"#,
        )
        .unwrap();
        let h = headers_for(&map, manifest::SourceFileType::SourceMap);
        assert_eq!(h["debug-id"], "0a5aa7cd-77b1-5c46-abf2-49ba8d573609");
    }
}
