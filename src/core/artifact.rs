//! Artifacts: assembling uploaded or dropped bundles into release files and artifact bundles,
//! reading them back, and pruning old ones.
//!
//! # The assemble flow (Sentry's "Release File Creation Process", sentry-semantics.md §7.4)
//!
//! A bundle reaches [`assemble`] as a list of chunks already in the blob store — uploaded by
//! sentry-cli (`/chunk-upload/`) or cut from a file in a drop folder. Assembling then:
//!
//! 1. checks the chunks: all owned by the organization, their total under
//!    `artifacts.max_file_size`, their concatenation hashing to the announced checksum (for a
//!    bundle stored whole, in the verify step below);
//! 2. opens the bundle (a zip, behind sentry-cli's 8-byte `SYSB` header or not), refuses any
//!    entry that could leave the bundle (zip-slip) and parses `manifest.json`;
//! 3. validates the manifest against the organization and the release (the request's version,
//!    else the manifest's). A release that does not exist yet is created when
//!    `artifacts.create_missing_release`; otherwise, as in Sentry where a bundle's release is
//!    a label, the bundle is kept whole and its index entries wait under the release's name
//!    until a release of that name is created ([`adopt_pending`]);
//! 4. counts the artifacts: under `artifacts.index_min_files` each one is stored as a release
//!    file of its own (name = URL, dist, Sentry's ident, the manifest's headers such as
//!    `sourcemap`); at or over it the bundle itself is stored and the release's artifact index
//!    maps each URL to its entry; bundles without a release are stored as bundles found by
//!    debug id. Debug ids from `debug-id` headers point at whichever was stored.
//!
//! # The verify step
//!
//! A bundle stored whole is indexed from its manifest and its zip directory (entry sizes as
//! declared), as Sentry does, so storing it costs about one pass over its bytes. Reading every
//! entry — inflating it, checking its CRC-32 and size, hashing it — costs more than that, so
//! it happens after the commit, in one more pass: [`verify_bundle`], run by a pipeline event
//! enqueued in the assemble's own transaction ([`VerifyEvent`] for uploads, the drop folder's
//! own for drops). It records each index entry's sha1 and marks the bundle verified, or, if an
//! entry is corrupt (or an upload's checksum was wrong), withdraws the bundle and reports why:
//! the upload's assemble state turns to `error`, a drop goes to `failed/`. The same pass
//! rewrites an upload's bundle, which arrives as sentry-cli's 1 MiB chunks, as blobs cut at
//! each zip entry ([`entry_offsets`]; a drop is cut that way as it is stored), so a file that
//! comes again in another bundle is stored once, and verified once: what an entry's blobs
//! inflate to is remembered (`blob_entry_digests`), so the verify step of a later bundle with
//! the same files reads only what is new (module `verify`). Until then index
//! entries list `sha1: null`. A bundle that would replace artifacts already stored is read in
//! full at assemble instead, so a corrupt bundle never costs what was there before.
//!
//! Everything visible is written in **one transaction** at the end: files, release files,
//! bundle, index entries, debug ids, and (for uploads) the `ok` state. Before it, only blobs
//! are written — content-addressed chunks that no row refers to until that commit — so a crash
//! anywhere leaves either the whole assemble or nothing (prune collects orphaned chunks).
//!
//! # Uploads are asynchronous
//!
//! The assemble endpoint ([`begin_assemble`]) answers at once: `not_found` with the missing
//! chunks, or the stored state, or `created` after recording the state and submitting an
//! [`AssembleEvent`] to the pipeline, whose [`AssembleHandler`] moves it to `assembling` and
//! then `ok` or `error`. States live in SQLite, so after a crash the pipeline redoes the
//! event and clients polling with `--wait` see it through.
//!
//! # Retention
//!
//! [`prune`] deletes the artifacts of releases older than `keep_days` and then every chunk no
//! remaining file uses, in one transaction.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::sync::Arc;

use futures_util::future::BoxFuture;
use rusqlite::{Connection, Transaction};
use serde::{Deserialize, Serialize};

use super::CoreError;
use super::org::{ProjectRef, resolve_projects};
use crate::config::Config;
use crate::model::manifest::{self, Artifact, Manifest, ManifestError};
use crate::pipeline::{self, Event, Handler, HandlerError};
use crate::store::artifacts::{self as rows, ArtifactId, Content, DebugTarget, Listed};
use crate::store::blob_store;
use crate::store::blobs::{self, BlobReader, BlobRef, ChunkSink};
use crate::store::orgs::Org;
use crate::store::releases::{self, Release};
use crate::store::{Store, StoreError, inbox};

pub use crate::store::artifacts::PruneReport;

mod verify;
pub use verify::{Verified, VerifyEvent, VerifyHandler, verify_bundle};

/// Chunks per upload request advertised to clients (Sentry's `MAX_CHUNKS_PER_REQUEST`).
pub const CHUNKS_PER_REQUEST: usize = 64;
/// Parallel upload requests advertised to clients. The store has one writer, so more than a
/// few only queue; four keeps gunzip and hashing of one request overlapping another's write.
pub const UPLOAD_CONCURRENCY: u8 = 4;
/// How long a finished (`ok`) assemble answers from its stored state before the same checksum
/// is assembled anew (Sentry caches the state for 600 s).
const OK_STATE_TTL_SECS: i64 = 600;
/// An assemble still `created` or `assembling` after this long is started again.
const STALE_ASSEMBLE_SECS: i64 = 1800;
/// Unreferenced chunks younger than this (by last upload or assemble request) survive prune:
/// they may belong to an upload still in progress.
const BLOB_GRACE_HOURS: i64 = 1;
/// The largest `manifest.json` read into memory.
const MAX_MANIFEST: u64 = 16 * 1024 * 1024;
/// Bytes per piece when streaming an artifact out.
const STREAM_PIECE: usize = 64 * 1024;

/// The artifact limits and rules, from the config's `artifacts:` and `limits:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub index_min_files: usize,
    pub create_missing_release: bool,
    pub max_file_size: u64,
    pub max_request_size: u64,
    pub max_upload_body: usize,
    /// `limits.max_unpacked_bundle`: the most a bundle may inflate to.
    pub max_unpacked_bundle: u64,
}

impl Settings {
    pub fn from_config(config: &Config) -> Self {
        Settings {
            index_min_files: config.artifacts.index_min_files,
            create_missing_release: config.artifacts.create_missing_release,
            max_file_size: config.artifacts.max_file_size,
            max_request_size: config.artifacts.max_request_size,
            max_upload_body: config.limits.max_upload_body,
            max_unpacked_bundle: config.limits.max_unpacked_bundle,
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings::from_config(&Config::default())
    }
}

/// Which assemble endpoint a request came through (Sentry's `AssembleTask`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    /// `POST /organizations/{org}/artifactbundle/assemble/` (sentry-cli 2.x and 3.x).
    ArtifactBundle,
    /// `POST /organizations/{org}/releases/{version}/assemble/` (legacy release bundles).
    ReleaseBundle,
    /// A bundle from a drop folder.
    Drop,
}

impl Task {
    pub fn as_str(self) -> &'static str {
        match self {
            Task::ArtifactBundle => "artifact_bundle",
            Task::ReleaseBundle => "release_bundle",
            Task::Drop => "drop",
        }
    }
}

/// An assemble request: the bundle's checksum and chunks, and what it is for.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AssembleRequest {
    pub checksum: String,
    pub chunks: Vec<String>,
    /// Project slugs (or ids as strings); empty means the manifest's `project`, if any.
    #[serde(default)]
    pub projects: Vec<String>,
    /// The release; `None` means the manifest's `release`, if any.
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub dist: Option<String>,
    /// The checksum was computed by shiplog itself from the very bytes the chunks were cut
    /// from (a drop), so re-hashing the bundle would only repeat that work.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub checksum_verified: bool,
}

/// Why an assemble failed. `Display` is the `detail` clients and `.error` files show.
#[derive(Debug, thiserror::Error)]
pub enum AssembleError {
    /// A chunk is not in the store (or belongs to another organization).
    #[error("Not all chunks available for assembling")]
    MissingChunks,
    /// The bundle, or a file in it, is over `artifacts.max_file_size`.
    #[error("File {name} exceeds maximum size ({size} > {max}); raise artifacts.max_file_size")]
    TooLarge { name: String, size: u64, max: u64 },
    /// The bundle inflates to more than `limits.max_unpacked_bundle` (by its zip directory,
    /// or while it is read: the directory can lie).
    #[error(
        "the bundle unpacks to more than limits.max_unpacked_bundle ({size} > {max} bytes); split it or raise limits.max_unpacked_bundle"
    )]
    Unpacked { size: u64, max: u64 },
    /// The chunks do not hash to the announced checksum, or a zip entry fails its CRC.
    #[error("checksum mismatch: {0}")]
    Checksum(String),
    /// Not a zip, no manifest, an entry missing.
    #[error("the bundle is invalid: {0}")]
    InvalidBundle(String),
    /// The manifest is malformed or a path leaves the bundle.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("organization does not match uploaded bundle: {0}")]
    OrgMismatch(String),
    #[error("release does not match uploaded bundle: {0}")]
    ReleaseMismatch(String),
    /// Sentry's rule for artifact bundles: something must find them again.
    #[error("uploading a bundle without debug ids or release is prohibited")]
    Unfindable,
    /// A rule of the request (projects, dist without release).
    #[error("{0}")]
    Invalid(String),
    /// The store failed; worth retrying.
    #[error("internal error: {0}")]
    Store(#[from] StoreError),
}

impl From<rusqlite::Error> for AssembleError {
    fn from(e: rusqlite::Error) -> Self {
        AssembleError::Store(e.into())
    }
}

impl From<CoreError> for AssembleError {
    fn from(e: CoreError) -> Self {
        match e {
            CoreError::Store(s) => AssembleError::Store(s),
            other => AssembleError::Invalid(other.to_string()),
        }
    }
}

/// How an assembled bundle was stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredAs {
    /// The bundle listed no files (Sentry discards it and answers ok).
    Nothing,
    /// Each artifact as a release file of its own.
    ReleaseFiles,
    /// The bundle itself, under this bundle id (and in the release's artifact index), in
    /// `artifact_bundles` row `row` with file `file_id`. Unless `verified` (its entries were
    /// read at assemble), the verify step ([`verify_bundle`]) reads them after the commit.
    Bundle {
        bundle_id: String,
        row: i64,
        file_id: i64,
        verified: bool,
    },
}

/// What [`assemble`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub artifact_count: usize,
    pub release: Option<String>,
    pub dist: Option<String>,
    pub stored_as: StoredAs,
}

/// An artifact of the bundle being assembled: its manifest entry, its size and sha1 when it
/// was read, and its blobs when it is stored as a release file of its own. Entries of a bundle
/// stored whole are usually not read at assemble (`sha1` is `None` and `size` the zip
/// directory's until the verify step).
struct Read1 {
    artifact: Artifact,
    size: u64,
    sha1: Option<String>,
    blobs: Option<Vec<BlobRef>>,
}

/// A stored bundle opened as a zip. The zip reader finds the archive behind a `SYSB` header
/// itself (it locates the central directory from the end and detects the offset).
type Bundle<'c> = zip::ZipArchive<BlobReader<'c>>;

/// Opens a stored bundle file as a zip.
fn open_bundle(mut reader: BlobReader<'_>) -> Result<Bundle<'_>, AssembleError> {
    let mut magic = [0u8; 4];
    let n = reader
        .read(&mut magic)
        .map_err(|e| AssembleError::InvalidBundle(e.to_string()))?;
    if n < 4 || (&magic != manifest::SYSB_MAGIC && &magic != b"PK\x03\x04") {
        return Err(AssembleError::InvalidBundle(
            "not a zip file or a sentry-cli bundle (SYSB header)".into(),
        ));
    }
    reader
        .seek(SeekFrom::Start(0))
        .map_err(|e| AssembleError::InvalidBundle(e.to_string()))?;
    zip::ZipArchive::new(reader)
        .map_err(|e| AssembleError::InvalidBundle(format!("cannot read the zip: {e}")))
}

/// Where each entry of the zip in `file` starts, and its central directory: the cut points
/// that make a bundle's blobs content-addressed per entry ([`ChunkSink::cut_at`]). Empty when
/// it is not a zip (assembling it reports that).
pub fn entry_offsets<R: Read + Seek>(file: R) -> Vec<u64> {
    let Ok(mut zip) = zip::ZipArchive::new(file) else {
        return Vec::new();
    };
    let mut cuts = vec![zip.offset(), zip.central_directory_start()];
    for i in 0..zip.len() {
        if let Ok(entry) = zip.by_index_raw(i) {
            cuts.push(entry.header_start());
        }
    }
    cuts
}

/// Whether `parts` already end a blob at each of `cuts`.
fn is_aligned(parts: &[blobs::Part], cuts: &[u64]) -> bool {
    let len = parts.last().map_or(0, |p| p.offset + p.size);
    let bounds: std::collections::HashSet<u64> = parts.iter().map(|p| p.offset).collect();
    cuts.iter().all(|c| *c >= len || bounds.contains(c))
}

/// The bundle made of `chunks` written anew as per-entry blobs (`None` when its chunks already
/// are). For a bundle whose entries were read at assemble, so no verify step follows to do it
/// in its own pass.
fn realign(
    store: &Store,
    org_id: i64,
    chunks: &[BlobRef],
    now: &str,
) -> Result<Option<Vec<BlobRef>>, StoreError> {
    let bs = store.blob_store();
    store.read_blocking(|conn| {
        let parts = blobs::parts_of(chunks);
        let cuts = entry_offsets(BlobReader::new(conn, &bs, parts.clone()));
        if is_aligned(&parts, &cuts) {
            return Ok(None);
        }
        let sink = ChunkSink::new(store, org_id, now)
            .without_digest()
            .cut_at(cuts);
        let (_, stored) = BlobReader::new(conn, &bs, parts)
            .realigning(sink)
            .finish()
            .map_err(|e| StoreError::Task(e.to_string()))?;
        let size: u64 = chunks.iter().map(|b| b.size).sum();
        Ok(stored.filter(|s| s.size == size).map(|s| s.blobs))
    })
}

/// Refuses entries that could leave the bundle (`..`, absolute paths, symlinks) and a bundle
/// whose directory adds up to more than `max_unpacked` bytes.
fn check_entries(zip: &Bundle<'_>, max_unpacked: u64) -> Result<(), AssembleError> {
    let mut unpacked = 0u64;
    for i in 0..zip.len() {
        let entry = zip
            .by_index_data(i)
            .map_err(|e| AssembleError::InvalidBundle(e.to_string()))?;
        let name = entry
            .name()
            .map_err(|e| AssembleError::InvalidBundle(e.to_string()))?;
        let path = if entry.is_dir() {
            name.trim_end_matches('/')
        } else {
            &name
        };
        manifest::check_bundle_path(path)?;
        unpacked = unpacked.saturating_add(entry.size());
        if unpacked > max_unpacked {
            return Err(AssembleError::Unpacked {
                size: unpacked,
                max: max_unpacked,
            });
        }
        if entry.is_symlink() {
            return Err(ManifestError::PathOutside {
                path: name.to_string(),
                why: "symbolic link",
            }
            .into());
        }
    }
    Ok(())
}

fn read_manifest(zip: &mut Bundle<'_>) -> Result<Manifest, AssembleError> {
    let mut entry = zip
        .by_name(manifest::MANIFEST_PATH)
        .map_err(|_| AssembleError::InvalidBundle("it has no manifest.json".into()))?;
    if entry.size() > MAX_MANIFEST {
        return Err(AssembleError::InvalidBundle(format!(
            "manifest.json is {} bytes, over the {MAX_MANIFEST}-byte limit",
            entry.size()
        )));
    }
    let mut bytes = Vec::new();
    entry
        .by_ref()
        .take(MAX_MANIFEST + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| entry_error(manifest::MANIFEST_PATH, e))?;
    Ok(manifest::parse(&bytes)?)
}

fn entry_error(path: &str, e: std::io::Error) -> AssembleError {
    if e.to_string().contains("Invalid checksum") {
        AssembleError::Checksum(format!("{path} is corrupt (its CRC-32 does not match)"))
    } else {
        AssembleError::InvalidBundle(format!("cannot read {path}: {e}"))
    }
}

/// Assembles a bundle whose chunks are in the store (see the module docs). Blocking: call it
/// from a blocking thread. `finish` runs last inside the one transaction that stores the
/// result (the pipeline handler records the `ok` state there).
pub fn assemble(
    store: &Store,
    settings: &Settings,
    org: &Org,
    req: &AssembleRequest,
    finish: &dyn Fn(&Transaction<'_>, &StoredAs) -> Result<(), StoreError>,
) -> Result<Outcome, AssembleError> {
    let now = super::now();
    if req.dist.is_some() && req.version.is_none() {
        return Err(AssembleError::Invalid(
            "You need to specify a release together with a dist".into(),
        ));
    }
    // Phase 1, reads only (plus chunks for release files): verify, open, validate, hash.
    let bs = store.blob_store();
    let (chunks, manifest, version, dist, reads) = store.read_blocking(|conn| {
        let found = blobs::owned(conn, org.id, &req.chunks)?;
        let chunks: Vec<BlobRef> = found
            .into_iter()
            .collect::<Option<_>>()
            .ok_or(AssembleError::MissingChunks)?;
        let size: u64 = chunks.iter().map(|b| b.size).sum();
        if size > settings.max_file_size {
            return Err(AssembleError::TooLarge {
                name: "bundle".into(),
                size,
                max: settings.max_file_size,
            });
        }
        // One pass: the zip is read in file order (entries of release files, or only its
        // directory and manifest for a bundle stored whole) while the reader hashes the blobs it
        // fetches, so the checksum is verified without reading the bundle twice.
        let reader = BlobReader::new(conn, &bs, blobs::parts_of(&chunks));
        let reader = if req.checksum_verified {
            reader
        } else {
            reader.digesting()
        };
        let result = open_bundle(reader).and_then(|mut zip| {
            let (manifest, version, dist, reads) =
                read_bundle(store, settings, org, req, &now, &mut zip)?;
            // Entries left to the verify step leave the checksum to it too: one pass over the
            // bytes checks both, after the commit.
            let deferred = reads.iter().any(|r| r.sha1.is_none());
            let digest = if deferred {
                None
            } else {
                zip.into_inner()
                    .finish_digest()
                    .map_err(|e| AssembleError::Store(StoreError::Task(e.to_string())))?
            };
            Ok((manifest, version, dist, reads, digest, deferred))
        });
        // A checksum mismatch explains any other failure, so it is reported first.
        let verify = |digest: Option<String>| -> Result<(), AssembleError> {
            if req.checksum_verified && digest.is_none() {
                return Ok(());
            }
            let actual = match digest {
                Some(d) => d,
                None => {
                    let r = BlobReader::new(conn, &bs, blobs::parts_of(&chunks)).digesting();
                    r.finish_digest()
                        .map_err(|e| AssembleError::Store(StoreError::Task(e.to_string())))?
                        .unwrap_or_default()
                }
            };
            if actual.eq_ignore_ascii_case(&req.checksum) {
                Ok(())
            } else {
                Err(AssembleError::Checksum(format!(
                    "Reported checksum mismatch: the chunks hash to {actual}, the request says {}",
                    req.checksum
                )))
            }
        };
        match result {
            Ok((manifest, version, dist, reads, digest, deferred)) => {
                if !deferred {
                    verify(digest)?;
                }
                Ok((chunks, manifest, version, dist, reads))
            }
            Err(AssembleError::Store(e)) => Err(AssembleError::Store(e)),
            Err(e) => {
                if !req.checksum_verified {
                    verify(None)?;
                }
                Err(e)
            }
        }
    })?;

    // A bundle read in full here and stored whole: cut it at its entries now.
    let whole = !reads.is_empty()
        && reads.iter().all(|r| r.sha1.is_some())
        && !reads.iter().all(|r| r.blobs.is_some());
    let chunks = match whole {
        true => realign(store, org.id, &chunks, &now)?.unwrap_or(chunks),
        false => chunks,
    };

    // Phase 2: one transaction stores everything.
    store.write_blocking(|tx| {
        let release = match &version {
            Some(v) => release_for(tx, settings, org, v, req, &manifest, &now)?,
            None => None,
        };
        let pending = version.as_deref().filter(|_| release.is_none());
        let stored_as = if reads.is_empty() {
            StoredAs::Nothing
        } else if let (Some(release), true) = (&release, reads.iter().all(|r| r.blobs.is_some())) {
            store_release_files(tx, org, release, dist.as_deref(), &reads, &now)?;
            StoredAs::ReleaseFiles
        } else {
            let projects = projects_for(tx, org, req, &manifest)?;
            store_bundle(
                tx,
                org,
                release.as_ref(),
                dist.as_deref(),
                &projects,
                &req.checksum,
                &chunks,
                &manifest,
                &reads,
                pending,
                &now,
            )?
        };
        if let Some(v) = pending {
            tracing::info!(release = v, "bundle kept until its release is created");
        }
        finish(tx, &stored_as)?;
        Ok::<_, AssembleError>(Outcome {
            artifact_count: reads.len(),
            release: version.clone(),
            dist: dist.clone(),
            stored_as,
        })
    })
}

/// Reads an opened bundle: entries checked, manifest parsed and validated against the
/// organization and release, every listed artifact read in file order (hashed, and written as
/// chunks when it will be stored as a release file of its own).
#[allow(clippy::type_complexity)]
fn read_bundle(
    store: &Store,
    settings: &Settings,
    org: &Org,
    req: &AssembleRequest,
    now: &str,
    zip: &mut Bundle<'_>,
) -> Result<(Manifest, Option<String>, Option<String>, Vec<Read1>), AssembleError> {
    check_entries(zip, settings.max_unpacked_bundle)?;
    let manifest = read_manifest(zip)?;
    match manifest.org.as_deref() {
        Some(o) if o == org.slug => {}
        Some(o) => {
            return Err(AssembleError::OrgMismatch(format!(
                "the manifest names organization '{o}', the bundle was sent to '{}'",
                org.slug
            )));
        }
        None => {
            return Err(AssembleError::OrgMismatch(format!(
                "the manifest names no organization (\"org\"); expected '{}'",
                org.slug
            )));
        }
    }
    let version = match (&req.version, &manifest.release) {
        (Some(v), Some(m)) if v != m => {
            return Err(AssembleError::ReleaseMismatch(format!(
                "the manifest names release '{m}', the upload is for '{v}'"
            )));
        }
        (Some(v), _) => Some(v.clone()),
        (None, m) => m.clone(),
    };
    let dist = req.dist.clone().or_else(|| manifest.dist.clone());
    // A bundle for a release that does not exist yet waits for it, stored whole and read now:
    // its entries' digests must be known when they move to the release's index.
    let pending = match &version {
        Some(v) => {
            !settings.create_missing_release
                && store
                    .read_blocking(|c| releases::by_version(c, org.id, v))?
                    .is_none()
        }
        None => false,
    };
    let artifacts = manifest.artifacts();
    if version.is_none()
        && manifest.bundle_debug_id().is_none()
        && artifacts.iter().all(|a| a.debug_id.is_none())
    {
        return Err(AssembleError::Unfindable);
    }
    let single = version.is_some() && !pending && artifacts.len() < settings.index_min_files;
    // Visit entries in the order their bytes sit in the file.
    let mut order = Vec::with_capacity(artifacts.len());
    for artifact in artifacts {
        let index = zip.index_for_name(&artifact.path).ok_or_else(|| {
            AssembleError::InvalidBundle(format!(
                "the manifest lists {}, which the bundle does not contain",
                artifact.path
            ))
        })?;
        let entry = zip
            .by_index_data(index)
            .map_err(|e| AssembleError::InvalidBundle(e.to_string()))?;
        let (at, declared) = (entry.header_start(), entry.size());
        if declared > settings.max_file_size {
            return Err(AssembleError::TooLarge {
                name: artifact.path.clone(),
                size: declared,
                max: settings.max_file_size,
            });
        }
        order.push((at, index, declared, artifact));
    }
    order.sort_by_key(|(at, _, _, _)| *at);
    // A bundle stored whole is indexed from its manifest and zip directory, as Sentry does:
    // reading (inflating, CRC-checking, hashing) every entry costs more than storing the
    // bundle, so the verify step does it after the commit (`verify_bundle`). Unless the bundle
    // would replace artifacts already stored: a bundle found corrupt later could not give them
    // back, so its entries are read now, before anything is replaced.
    let read_now = single
        || pending
        || store.read_blocking(|c| {
            replaces_stored(c, org, version.as_deref(), dist.as_deref(), &manifest, req)
        })?;
    let mut buf = vec![0u8; STREAM_PIECE * 4];
    let mut reads = Vec::with_capacity(order.len());
    let mut unpacked = 0u64;
    for (_, index, declared, artifact) in order {
        if !read_now {
            reads.push(Read1 {
                artifact,
                size: declared,
                sha1: None,
                blobs: None,
            });
            continue;
        }
        let mut entry = zip
            .by_index(index)
            .map_err(|e| AssembleError::InvalidBundle(format!("{}: {e}", artifact.path)))?;
        // Never trust the declared size: stop one byte past it (or past the limit) whatever the
        // zip claims, so a lying directory cannot make a small zip inflate without bound.
        let mut limited = (&mut entry).take(declared.min(settings.max_file_size) + 1);
        let (size, sha1, blobs) = if single {
            let mut sink = ChunkSink::new(store, org.id, now);
            sink.copy_from(&mut limited).map_err(|e| match e {
                Ok(io) => entry_error(&artifact.path, io),
                Err(store) => AssembleError::Store(store),
            })?;
            let stored = sink.finish()?;
            (stored.size, stored.sha1, Some(stored.blobs))
        } else {
            let (size, sha1) = digest(&mut limited, &mut buf, &artifact.path)?;
            (size, sha1, None)
        };
        if size > settings.max_file_size {
            return Err(AssembleError::TooLarge {
                name: artifact.path.clone(),
                size,
                max: settings.max_file_size,
            });
        }
        unpacked = unpacked.saturating_add(size);
        if size > declared || unpacked > settings.max_unpacked_bundle {
            return Err(AssembleError::Unpacked {
                size: unpacked,
                max: settings.max_unpacked_bundle,
            });
        }
        reads.push(Read1 {
            artifact,
            size,
            sha1: Some(sha1),
            blobs,
        });
    }
    // Keep the manifest's (path) order for what is stored.
    reads.sort_by(|a, b| a.artifact.path.cmp(&b.artifact.path));
    Ok((manifest, version, dist, reads))
}

/// Whether storing this bundle would replace something already stored: an artifact of the
/// release under one of the bundle's URLs, or a bundle under the same bundle id.
fn replaces_stored(
    conn: &Connection,
    org: &Org,
    version: Option<&str>,
    dist: Option<&str>,
    manifest: &Manifest,
    req: &AssembleRequest,
) -> Result<bool, StoreError> {
    let bundle_id = manifest
        .bundle_debug_id()
        .unwrap_or_else(|| manifest::uuid_from_hex(&req.checksum));
    if rows::bundle_by_id(conn, org.id, &bundle_id)?.is_some() {
        return Ok(true);
    }
    let Some(release) = version
        .map(|v| releases::by_version(conn, org.id, v))
        .transpose()?
        .flatten()
    else {
        return Ok(false);
    };
    for artifact in manifest.artifacts() {
        if rows::ident_taken(conn, release.id, &manifest::ident(&artifact.url, dist))? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Reads `reader` to its end through `buf`: its size and sha1. A read error names `path`.
fn digest(
    reader: &mut dyn Read,
    buf: &mut [u8],
    path: &str,
) -> Result<(u64, String), AssembleError> {
    manifest::sha1_reader(reader, buf).map_err(|e| entry_error(path, e))
}

fn release_for(
    tx: &Transaction<'_>,
    settings: &Settings,
    org: &Org,
    version: &str,
    req: &AssembleRequest,
    manifest: &Manifest,
    now: &str,
) -> Result<Option<Release>, AssembleError> {
    if let Some(r) = releases::by_version(tx, org.id, version)? {
        return Ok(Some(r));
    }
    if !settings.create_missing_release {
        return Ok(None);
    }
    let projects = project_refs(req, manifest);
    let up = super::release::upsert(
        tx,
        org,
        &super::release::CreateRelease {
            version: version.to_string(),
            projects,
            user_agent: Some("shiplog artifacts".into()),
            ..Default::default()
        },
        now,
    )?;
    Ok(Some(up.release))
}

fn project_refs(req: &AssembleRequest, manifest: &Manifest) -> Vec<ProjectRef> {
    let names: Vec<String> = if req.projects.is_empty() {
        manifest.project.iter().cloned().collect()
    } else {
        req.projects.clone()
    };
    names.into_iter().map(ProjectRef::Slug).collect()
}

fn projects_for(
    conn: &Connection,
    org: &Org,
    req: &AssembleRequest,
    manifest: &Manifest,
) -> Result<Vec<i64>, AssembleError> {
    let refs = project_refs(req, manifest);
    Ok(resolve_projects(conn, org.id, &refs)
        .map_err(|e| match e {
            CoreError::Store(s) => AssembleError::Store(s),
            other => AssembleError::Invalid(format!("One or more projects are invalid: {other}")),
        })?
        .into_iter()
        .map(|p| p.id)
        .collect())
}

fn headers_json(headers: &BTreeMap<String, String>) -> String {
    serde_json::to_string(headers).unwrap_or_else(|_| "{}".into())
}

fn store_release_files(
    tx: &Transaction<'_>,
    org: &Org,
    release: &Release,
    dist: Option<&str>,
    reads: &[Read1],
    now: &str,
) -> Result<(), AssembleError> {
    for r in reads {
        let url = &r.artifact.url;
        let basename = url.rsplit('/').next().unwrap_or(url);
        let headers = headers_json(&r.artifact.headers);
        let file_id = blobs::insert_file(
            tx,
            &blobs::NewFile {
                name: basename,
                kind: "release.file",
                headers: &headers,
                size: r.size,
                sha1: r.sha1.as_deref().unwrap_or_default(),
                created: now,
            },
            r.blobs.as_deref().unwrap_or_default(),
        )?;
        let ident = manifest::ident(url, dist);
        let rf = rows::put_release_file(
            tx,
            &rows::NewReleaseFile {
                org_id: org.id,
                release_id: release.id,
                dist,
                ident: &ident,
                name: url,
                file_id,
                now,
            },
        )?;
        if let Some(debug_id) = &r.artifact.debug_id {
            rows::add_debug_id(
                tx,
                org.id,
                debug_id,
                r.artifact.kind.code(),
                url,
                DebugTarget::ReleaseFile(rf),
                now,
            )?;
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn store_bundle(
    tx: &Transaction<'_>,
    org: &Org,
    release: Option<&Release>,
    dist: Option<&str>,
    projects: &[i64],
    checksum: &str,
    chunks: &[BlobRef],
    manifest: &Manifest,
    reads: &[Read1],
    pending: Option<&str>,
    now: &str,
) -> Result<StoredAs, AssembleError> {
    let bundle_id = manifest
        .bundle_debug_id()
        .unwrap_or_else(|| manifest::uuid_from_hex(checksum));
    let size: u64 = chunks.iter().map(|b| b.size).sum();
    let name = format!("bundle-artifacts-{}.zip", checksum.to_ascii_lowercase());
    let file_id = blobs::insert_file(
        tx,
        &blobs::NewFile {
            name: &name,
            kind: "artifact.bundle",
            headers: "{}",
            size,
            sha1: &checksum.to_ascii_lowercase(),
            created: now,
        },
        chunks,
    )?;
    let row = rows::put_bundle(tx, org.id, &bundle_id, file_id, reads.len() as i64, now)?;
    if let Some(release) = release {
        rows::link_release(tx, release.id, dist, row, now)?;
    }
    for project in projects {
        rows::link_project(tx, *project, row)?;
    }
    for r in reads {
        let a = &r.artifact;
        if let Some(debug_id) = &a.debug_id {
            rows::add_debug_id(
                tx,
                org.id,
                debug_id,
                a.kind.code(),
                &a.url,
                DebugTarget::Bundle { row, path: &a.path },
                now,
            )?;
        }
        if let Some(release) = release {
            let ident = manifest::ident(&a.url, dist);
            rows::put_index_entry(
                tx,
                &rows::NewIndexEntry {
                    org_id: org.id,
                    release_id: release.id,
                    dist,
                    ident: &ident,
                    url: &a.url,
                    bundle_row: row,
                    path: &a.path,
                    kind: a.kind.name(),
                    headers: &headers_json(&a.headers),
                    size: r.size,
                    sha1: r.sha1.as_deref(),
                    now,
                },
            )?;
        } else if let Some(release_name) = pending {
            rows::put_pending_entry(
                tx,
                org.id,
                &rows::PendingEntry {
                    release_name: release_name.to_string(),
                    dist: dist.map(str::to_string),
                    url: a.url.clone(),
                    bundle_row: row,
                    path: a.path.clone(),
                    kind: a.kind.name().to_string(),
                    headers: headers_json(&a.headers),
                    size: r.size,
                    sha1: r.sha1.clone(),
                },
                now,
            )?;
        }
    }
    let verified = reads.iter().all(|r| r.sha1.is_some());
    if verified {
        rows::set_bundle_verified(tx, row, now)?;
    }
    Ok(StoredAs::Bundle {
        bundle_id,
        row,
        file_id,
        verified,
    })
}

/// Gives a newly created release the bundles uploaded for it before it existed: their index
/// entries move from waiting under its name to its artifact index, and each bundle is linked
/// to it. Returns how many artifacts it got.
pub fn adopt_pending(
    tx: &Transaction<'_>,
    org: &Org,
    release: &Release,
    now: &str,
) -> Result<usize, CoreError> {
    let entries = rows::take_pending(tx, org.id, &release.version)?;
    for e in &entries {
        let dist = e.dist.as_deref();
        rows::link_release(tx, release.id, dist, e.bundle_row, now)?;
        rows::put_index_entry(
            tx,
            &rows::NewIndexEntry {
                org_id: org.id,
                release_id: release.id,
                dist,
                ident: &manifest::ident(&e.url, dist),
                url: &e.url,
                bundle_row: e.bundle_row,
                path: &e.path,
                kind: &e.kind,
                headers: &e.headers,
                size: e.size,
                sha1: e.sha1.as_deref(),
                now,
            },
        )?;
    }
    Ok(entries.len())
}

// ---------------------------------------------------------------------------------------------
// The upload side: assemble requests and their pipeline events
// ---------------------------------------------------------------------------------------------

/// What the assemble endpoint answers (Sentry's `ChunkFileState` plus `missingChunks`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Some chunks must be uploaded first.
    Missing(Vec<String>),
    /// A stored state: `created`, `assembling`, `ok` or `error` (with detail).
    State {
        state: String,
        detail: Option<String>,
    },
    /// A new assemble was recorded as `created`; submit its event.
    Started(AssembleEvent),
    /// The bundle is over `artifacts.max_file_size` (answered 413).
    TooLarge(String),
}

fn is_sha1(text: &str) -> bool {
    text.len() == 40 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Validates an assemble request the way Sentry's JSON schema does.
pub fn validate_request(task: Task, req: &AssembleRequest) -> Result<(), CoreError> {
    if !is_sha1(&req.checksum) {
        return Err(CoreError::invalid(
            "checksum",
            format!("checksum {:?} is not a 40-character hex sha1", req.checksum),
        ));
    }
    if let Some(bad) = req.chunks.iter().find(|c| !is_sha1(c)) {
        return Err(CoreError::invalid(
            "chunks",
            format!("chunk {bad:?} is not a 40-character hex sha1"),
        ));
    }
    if task == Task::ArtifactBundle && req.projects.is_empty() {
        return Err(CoreError::invalid(
            "projects",
            "You need to specify at least one project",
        ));
    }
    if let Some(v) = &req.version
        && (v.is_empty() || v.contains('/'))
    {
        return Err(CoreError::invalid("version", "version must match ^[^/]+$"));
    }
    if req.dist.is_some() && req.version.is_none() {
        return Err(CoreError::invalid(
            "dist",
            "You need to specify a release together with a dist",
        ));
    }
    Ok(())
}

/// The assemble endpoint's state machine (sentry-cli-protocol.md §7.5), in one transaction:
/// missing chunks first; then a stored state (an `ok` younger than ten minutes, an `error` not
/// yet shown, or one in progress); else a new assemble is recorded as `created`.
pub fn begin_assemble(
    tx: &Transaction<'_>,
    settings: &Settings,
    org: &Org,
    task: Task,
    req: &AssembleRequest,
    now: &str,
) -> Result<Answer, CoreError> {
    validate_request(task, req)?;
    if task == Task::ArtifactBundle {
        let refs: Vec<ProjectRef> = req.projects.iter().cloned().map(ProjectRef::Slug).collect();
        resolve_projects(tx, org.id, &refs).map_err(|e| match e {
            CoreError::Invalid { .. } | CoreError::NotFound(_) => {
                CoreError::invalid("projects", format!("One or more projects are invalid: {e}"))
            }
            other => other,
        })?;
    }
    let missing = blobs::missing(tx, org.id, &req.chunks, now)?;
    if !missing.is_empty() {
        return Ok(Answer::Missing(missing));
    }
    let existing = rows::assemble_state(tx, org.id, task.as_str(), &req.checksum)?;
    if req.chunks.is_empty() {
        // Sentry: an empty chunk list is a poll.
        return Ok(match existing {
            Some(s) => Answer::State {
                state: s.state,
                detail: s.detail,
            },
            None => Answer::Missing(Vec::new()),
        });
    }
    if let Some(s) = existing {
        let fresh = |ttl: i64| {
            crate::model::time::parse(&s.updated)
                .is_some_and(|t| (chrono::Utc::now() - t).num_seconds() < ttl)
        };
        match s.state.as_str() {
            // In progress; one that has not moved for half an hour died with its event (it
            // failed for good in the pipeline) and is started again.
            "created" | "assembling" if fresh(STALE_ASSEMBLE_SECS) => {
                return Ok(Answer::State {
                    state: s.state,
                    detail: s.detail,
                });
            }
            "ok" if fresh(OK_STATE_TTL_SECS) => {
                return Ok(Answer::State {
                    state: s.state,
                    detail: None,
                });
            }
            // An error is shown once (sentry-cli stops polling when it sees it); the next
            // request for the same bundle is a new attempt, e.g. after creating the release.
            "error" if !s.reported => {
                rows::mark_reported(tx, org.id, task.as_str(), &req.checksum)?;
                return Ok(Answer::State {
                    state: s.state,
                    detail: s.detail,
                });
            }
            _ => {}
        }
    }
    let sizes = blobs::owned(tx, org.id, &req.chunks)?;
    let size: u64 = sizes.iter().flatten().map(|b| b.size).sum();
    if size > settings.max_file_size {
        return Ok(Answer::TooLarge(format!(
            "File exceeds maximum size ({size} > {}): the bundle is larger than artifacts.max_file_size",
            settings.max_file_size
        )));
    }
    let json = serde_json::to_string(req).unwrap_or_default();
    let generation = rows::start_assemble(tx, org.id, task.as_str(), &req.checksum, &json, now)?;
    Ok(Answer::Started(AssembleEvent {
        org_id: org.id,
        task,
        generation,
        request: req.clone(),
    }))
}

/// Records a failure to even queue an assemble, so polls see an error rather than `created`.
pub fn fail_to_queue(
    tx: &Transaction<'_>,
    event: &AssembleEvent,
    detail: &str,
) -> Result<(), CoreError> {
    rows::set_assemble_state(
        tx,
        event.org_id,
        event.task.as_str(),
        &event.request.checksum,
        event.generation,
        "error",
        Some(detail),
        &super::now(),
    )?;
    Ok(())
}

/// A bundle uploaded through the API, waiting to be assembled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssembleEvent {
    pub org_id: i64,
    pub task: Task,
    pub generation: i64,
    pub request: AssembleRequest,
}

impl Event for AssembleEvent {
    const KIND: &'static str = "artifacts.assemble";
    fn idempotency_key(&self) -> String {
        format!(
            "{}:{}:{}:{}",
            self.org_id,
            self.task.as_str(),
            self.request.checksum.to_ascii_lowercase(),
            self.generation
        )
    }
}

/// Applies [`AssembleEvent`]s: `assembling`, then the assemble, then `ok` (in the same
/// transaction as the artifacts) or `error` with the reason.
pub struct AssembleHandler {
    pub store: Store,
    pub settings: Arc<Settings>,
}

impl Handler for AssembleHandler {
    fn handle<'a>(&'a self, entry: &'a inbox::Entry) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            let event: AssembleEvent = pipeline::decode(entry)?;
            let store = self.store.clone();
            let settings = self.settings.clone();
            tokio::task::spawn_blocking(move || run_assemble_event(&store, &settings, &event))
                .await
                .map_err(|e| HandlerError::Retry(format!("assemble task failed: {e}")))?
        })
    }
}

fn run_assemble_event(
    store: &Store,
    settings: &Settings,
    event: &AssembleEvent,
) -> Result<(), HandlerError> {
    let task = event.task.as_str();
    let checksum = event.request.checksum.as_str();
    let current = store.write_blocking(|tx| {
        let state = rows::assemble_state(tx, event.org_id, task, checksum)?;
        let current = state.is_some_and(|s| {
            s.generation == event.generation && (s.state == "created" || s.state == "assembling")
        });
        if current {
            rows::set_assemble_state(
                tx,
                event.org_id,
                task,
                checksum,
                event.generation,
                "assembling",
                None,
                &super::now(),
            )?;
        }
        Ok::<_, StoreError>(current)
    })?;
    if !current {
        return Ok(()); // superseded by a newer attempt
    }
    let Some(org) = store.read_blocking(|c| crate::store::orgs::org_by_id(c, event.org_id))? else {
        return Err(HandlerError::Permanent("organization vanished".into()));
    };
    let request = event.request.clone();
    let finish = |tx: &Transaction<'_>, stored: &StoredAs| {
        rows::set_assemble_state(
            tx,
            event.org_id,
            task,
            checksum,
            event.generation,
            "ok",
            None,
            &super::now(),
        )?;
        if let StoredAs::Bundle {
            row,
            file_id,
            verified: false,
            ..
        } = stored
        {
            pipeline::enqueue(
                tx,
                "artifacts",
                &VerifyEvent {
                    bundle_row: *row,
                    file_id: *file_id,
                    assemble: event.clone(),
                },
            )?;
        }
        Ok(())
    };
    match assemble(store, settings, &org, &request, &finish) {
        Ok(outcome) => {
            tracing::info!(org = %org.slug, checksum, files = outcome.artifact_count, stored_as = ?outcome.stored_as, "assembled artifact bundle");
            Ok(())
        }
        Err(AssembleError::Store(e)) => Err(HandlerError::Retry(e.to_string())),
        Err(e) => {
            tracing::warn!(org = %org.slug, checksum, error = %e, "artifact bundle refused");
            let detail = e.to_string();
            store.write_blocking(|tx| {
                rows::set_assemble_state(
                    tx,
                    event.org_id,
                    task,
                    checksum,
                    event.generation,
                    "error",
                    Some(&detail),
                    &super::now(),
                )
            })?;
            Ok(())
        }
    }
}

/// Registers the assemble and verify handlers. Call before the pipeline worker starts.
pub fn register(pipeline: &pipeline::Pipeline, store: &Store, settings: Arc<Settings>) {
    pipeline.register(
        AssembleEvent::KIND,
        Arc::new(AssembleHandler {
            store: store.clone(),
            settings,
        }),
    );
    pipeline.register(
        VerifyEvent::KIND,
        Arc::new(VerifyHandler {
            store: store.clone(),
        }),
    );
}

/// Resubmits assembles a previous run accepted but did not finish. Their events are normally
/// still pending in the inbox (a resubmit is then a dropped duplicate); this covers a crash
/// between recording `created` and queueing the event.
pub async fn resume(pipeline: &pipeline::Pipeline, store: &Store) -> Result<(), StoreError> {
    let pending = store.read(rows::unfinished_assembles).await?;
    for s in pending {
        let task = match s.task.as_str() {
            "release_bundle" => Task::ReleaseBundle,
            _ => Task::ArtifactBundle,
        };
        let Ok(request) = serde_json::from_str::<AssembleRequest>(&s.request) else {
            continue;
        };
        let event = AssembleEvent {
            org_id: s.org_id,
            task,
            generation: s.generation,
            request,
        };
        pipeline.submit("artifacts", &event).await?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The read side
// ---------------------------------------------------------------------------------------------

/// A page of a release's artifacts.
pub fn list(
    conn: &Connection,
    release: &Release,
    dist: Option<Option<&str>>,
    limit: usize,
    offset: usize,
) -> Result<Vec<Listed>, CoreError> {
    Ok(rows::list(conn, release.id, dist, limit, offset)?)
}

/// Parses an artifact id from a URL, or Sentry's 404.
pub fn parse_id(text: &str) -> Result<ArtifactId, CoreError> {
    text.parse()
        .map_err(|_| CoreError::NotFound(format!("Release file '{text}' not found")))
}

/// One artifact of a release, or Sentry's 404.
pub fn get(conn: &Connection, release: &Release, id: ArtifactId) -> Result<Listed, CoreError> {
    rows::get(conn, release.id, id)?
        .ok_or_else(|| CoreError::NotFound(format!("Release file '{id}' not found")))
}

/// Deletes one artifact of a release.
pub fn delete(tx: &Transaction<'_>, release: &Release, id: ArtifactId) -> Result<(), CoreError> {
    if rows::delete(tx, release.id, id)? {
        Ok(())
    } else {
        Err(CoreError::NotFound(format!(
            "Release file '{id}' not found"
        )))
    }
}

/// A lookup result: an artifact found by debug id or URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// `debug_id` or `url`.
    pub matched_by: &'static str,
    pub url: String,
    pub kind: Option<String>,
    pub debug_id: Option<String>,
    pub release: Option<String>,
    pub dist: Option<String>,
    /// The release artifact id (release files and index entries).
    pub artifact_id: Option<ArtifactId>,
    pub size: Option<u64>,
    pub sha1: Option<String>,
    pub headers: Option<String>,
    pub content: Content,
}

/// Finds artifacts by debug id (anywhere in the organization) and/or by URL in a release
/// (trying Sentry's `normalize` candidates in order).
pub fn lookup(
    conn: &Connection,
    org: &Org,
    debug_id: Option<&str>,
    url: Option<&str>,
    release: Option<&str>,
    dist: Option<&str>,
) -> Result<Vec<Found>, CoreError> {
    let mut out = Vec::new();
    if let Some(text) = debug_id {
        let id = manifest::normalize_debug_id(text).ok_or_else(|| {
            CoreError::invalid("debug_id", format!("{text:?} is not a debug id (a UUID)"))
        })?;
        for hit in rows::by_debug_id(conn, org.id, &id)? {
            let kind = manifest::SourceFileType::from_code(hit.source_file_type)
                .map(|k| k.name().to_string());
            out.push(Found {
                matched_by: "debug_id",
                url: hit.url,
                kind,
                debug_id: Some(hit.debug_id),
                release: hit.release.as_ref().map(|(v, _)| v.clone()),
                dist: hit.dist,
                artifact_id: hit.release.map(|(_, id)| id),
                size: hit.size,
                sha1: hit.sha1,
                headers: None,
                content: hit.content,
            });
        }
    }
    if let Some(url) = url {
        let Some(version) = release else {
            return Err(CoreError::invalid(
                "release",
                "a lookup by url needs the release (add &release=VERSION)",
            ));
        };
        let Some(r) = releases::by_version(conn, org.id, version)? else {
            return Err(super::release::not_found(version));
        };
        for hit in rows::by_names(conn, r.id, dist, &manifest::normalize(url))? {
            out.push(Found {
                matched_by: "url",
                url: hit.name,
                kind: hit.kind,
                debug_id: None,
                release: Some(version.to_string()),
                dist: hit.dist,
                artifact_id: Some(hit.id),
                size: Some(hit.size),
                sha1: hit.sha1,
                headers: Some(hit.headers),
                content: hit.content,
            });
        }
    }
    Ok(out)
}

/// The bytes of one entry of an organization's stored bundle, by bundle id and path.
pub fn bundle_entry(
    conn: &Connection,
    org: &Org,
    bundle_id: &str,
    path: &str,
) -> Result<Content, CoreError> {
    let b = rows::bundle_by_id(conn, org.id, bundle_id)?
        .ok_or_else(|| CoreError::NotFound(format!("Artifact bundle '{bundle_id}' not found")))?;
    manifest::check_bundle_path(path).map_err(|e| CoreError::invalid("path", e.to_string()))?;
    Ok(Content::Bundle {
        bundle_row: b.id,
        bundle_id: b.bundle_id,
        file_id: b.file_id,
        path: path.to_string(),
    })
}

/// Streams an artifact's bytes: a blocking reader fills a small channel, one piece at a time,
/// so memory stays at a blob (plus a zip entry's inflate window) whatever the file's size. The
/// first message is the total size when known.
pub fn stream(
    store: &Store,
    content: Content,
) -> tokio::sync::mpsc::Receiver<Result<Vec<u8>, std::io::Error>> {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let store = store.clone();
    tokio::task::spawn_blocking(move || {
        let bs = store.blob_store();
        let result = store.read_blocking(|conn| {
            let send = |piece: Result<Vec<u8>, std::io::Error>| tx.blocking_send(piece).is_ok();
            match &content {
                Content::File { file_id } => {
                    for part in blobs::parts(conn, *file_id)? {
                        let data = blobs::blob_data(conn, &bs, part.blob_id)?;
                        if !send(Ok(data)) {
                            break;
                        }
                    }
                }
                Content::Bundle { file_id, path, .. } => {
                    let parts = blobs::parts(conn, *file_id)?;
                    let mut zip = match open_bundle(BlobReader::new(conn, &bs, parts)) {
                        Ok(z) => z,
                        Err(e) => {
                            send(Err(std::io::Error::other(e.to_string())));
                            return Ok(());
                        }
                    };
                    let mut entry = match zip.by_name(path) {
                        Ok(e) => e,
                        Err(e) => {
                            send(Err(std::io::Error::other(format!("{path}: {e}"))));
                            return Ok(());
                        }
                    };
                    loop {
                        let mut buf = vec![0u8; STREAM_PIECE];
                        match entry.read(&mut buf) {
                            Ok(0) => break,
                            Ok(n) => {
                                buf.truncate(n);
                                if !send(Ok(buf)) {
                                    break;
                                }
                            }
                            Err(e) => {
                                send(Err(e));
                                break;
                            }
                        }
                    }
                }
            }
            Ok::<_, StoreError>(())
        });
        if let Err(e) = result {
            let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
        }
    });
    rx
}

/// Whether the artifact with this content is stored (a bundle entry exists in its bundle).
pub fn content_exists(
    conn: &Connection,
    bs: &crate::store::blob_store::BlobStore,
    content: &Content,
) -> Result<bool, CoreError> {
    match content {
        Content::File { file_id } => Ok(blobs::file(conn, *file_id)?.is_some()),
        Content::Bundle { file_id, path, .. } => {
            let parts = blobs::parts(conn, *file_id)?;
            let zip = open_bundle(BlobReader::new(conn, bs, parts))
                .map_err(|e| CoreError::Conflict(e.to_string()))?;
            Ok(zip.index_for_name(path).is_some())
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Retention
// ---------------------------------------------------------------------------------------------

/// Removes the artifacts of releases created more than `keep_days` days ago (and bundles tied
/// to no release uploaded before then), then the files and chunks nothing references any
/// more, in one transaction. A chunk any remaining file uses is never removed, nor one an
/// upload touched in the last hour. The `prune_artifacts` job calls this.
pub async fn prune(store: &Store, keep_days: u32) -> Result<PruneReport, CoreError> {
    let now = chrono::Utc::now();
    let release_cutoff =
        crate::model::time::format(now - chrono::Duration::days(i64::from(keep_days)));
    let blob_cutoff = crate::model::time::format(now - chrono::Duration::hours(BLOB_GRACE_HOURS));
    let report = store
        .write(move |tx| rows::prune(tx, &release_cutoff, &blob_cutoff))
        .await?;
    let s = store.clone();
    let objects = tokio::task::spawn_blocking(move || blob_store::empty_trash(&s))
        .await
        .map_err(|e| StoreError::Task(e.to_string()))??;
    if objects > 0 {
        tracing::info!(objects, "deleted the objects of pruned blobs");
    }
    tracing::info!(?report, keep_days, "pruned artifacts");
    Ok(report)
}

// ---------------------------------------------------------------------------------------------
// Writing bundles (the CLI's upload and directory drops)
// ---------------------------------------------------------------------------------------------

/// Writes a bundle as sentry-cli does: with `sysb`, the 8-byte `SYSB` header, then a zip of
/// `sources` (entry path, file on disk) with `manifest.json` last. Entries are deflated and
/// dated 1980-01-01, so the same files always give the same bytes and checksum. `progress` is
/// told the bytes of each source file as it is added.
pub fn write_bundle<W: std::io::Write + Seek>(
    mut out: W,
    manifest: &Manifest,
    sources: &[(String, std::path::PathBuf)],
    sysb: bool,
    progress: &dyn Fn(u64),
) -> std::io::Result<W> {
    if sysb {
        out.write_all(manifest::SYSB_MAGIC)?;
        out.write_all(&manifest::SYSB_VERSION.to_le_bytes())?;
    }
    let mut zip = zip::ZipWriter::new(out).set_auto_large_file();
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .last_modified_time(zip::DateTime::default());
    let zip_err = |e: zip::result::ZipError| std::io::Error::other(e.to_string());
    for (path, file) in sources {
        manifest::check_bundle_path(path).map_err(std::io::Error::other)?;
        zip.start_file(path.as_str(), options).map_err(zip_err)?;
        let mut f = std::fs::File::open(file)
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", file.display())))?;
        let n = std::io::copy(&mut f, &mut zip)?;
        progress(n);
    }
    zip.start_file(manifest::MANIFEST_PATH, options)
        .map_err(zip_err)?;
    let text = serde_json::to_vec_pretty(manifest).map_err(std::io::Error::other)?;
    std::io::Write::write_all(&mut zip, &text)?;
    zip.finish().map_err(zip_err)
}
