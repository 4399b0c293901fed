//! Where artifact bytes live: the blob store seam.
//!
//! The database is always the index (store::blobs): a blob row has the sha1 that deduplicates
//! it, its size, the organizations that own it and, through `file_blobs`, the files using it
//! (their count is its reference count; prune removes rows nothing references). Where the bytes
//! of a row are is the row's own business, so readers never need to know the configured
//! backend, and a store can be moved from one backend to another while it is read:
//!
//! - `db` (the default): in the row's `data` column, written in the same transaction as the row;
//! - `file:///path`: one file per blob under that directory (`object_store`'s
//!   `LocalFileSystem`, which writes to a staging file and renames it into place);
//! - `s3://bucket/prefix`: one object per blob in an S3 bucket (`object_store`'s `AmazonS3`;
//!   credentials from the `AWS_*` environment, `storage.s3.endpoint` for any S3-compatible
//!   server). A single PUT is atomic in S3.
//!
//! An object's key is its sha1 plus a random suffix ([`BlobStore::put_new`]): a key is written
//! once, and never reused, so deleting the object of a pruned row can never take the bytes of
//! a newer row with the same sha1 — the one race between prune and a running upload that
//! content-addressed keys alone would have. An object is written *before* the row naming it
//! commits; a crash in between leaves an object no row names, never a row without its bytes.
//! Objects whose rows are gone wait in `blob_trash` until they are deleted after the commit
//! ([`empty_trash`]).
//!
//! `object_store` is async; everything here is called from blocking threads (the writer, the
//! blob reader), so a small runtime of its own runs the requests and the caller waits on a
//! channel, which works from any thread.

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use object_store::ObjectStoreExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, PutPayload};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Deserialize;

use super::StoreError;

/// The `storage:` section of the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// Where new artifact bytes go: `db` (inside the database, the default), `file:///path`
    /// (a directory) or `s3://bucket/prefix`. Bytes already stored stay where they are until
    /// `shiplog blobs migrate --to URL` moves them; reads find them wherever they are.
    pub blobs: String,
    /// How to reach S3 for `s3://` URLs. Credentials come from the standard `AWS_*`
    /// environment variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, ...).
    pub s3: S3Config,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            blobs: "db".into(),
            s3: S3Config::default(),
        }
    }
}

/// `storage.s3`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct S3Config {
    /// An S3-compatible server, e.g. `https://s3.example.com`. Default: AWS itself (or
    /// `AWS_ENDPOINT`).
    pub endpoint: Option<String>,
    /// The bucket's region. Default: `AWS_REGION`, else `us-east-1`.
    pub region: Option<String>,
    /// Allow a plain `http://` endpoint. Default false.
    pub allow_http: bool,
}

impl StorageConfig {
    /// `(key, message)` of the first problem.
    pub fn validate(&self) -> Result<(), (String, String)> {
        BlobUrl::parse(&self.blobs).map_err(|m| ("storage.blobs".to_string(), m))?;
        if let Some(e) = &self.s3.endpoint
            && !(e.starts_with("http://") || e.starts_with("https://"))
        {
            return Err((
                "storage.s3.endpoint".into(),
                format!("{e:?} is not an http:// or https:// URL"),
            ));
        }
        Ok(())
    }
}

/// A parsed blob store URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobUrl {
    Db,
    File(PathBuf),
    S3 { bucket: String, prefix: String },
}

impl BlobUrl {
    pub fn parse(text: &str) -> Result<BlobUrl, String> {
        let text = text.trim();
        if text == "db" {
            return Ok(BlobUrl::Db);
        }
        if let Some(path) = text.strip_prefix("file://") {
            if !path.starts_with('/') || path.len() < 2 {
                return Err(format!(
                    "{text:?}: a file URL needs an absolute directory, e.g. file:///var/lib/shiplog/blobs"
                ));
            }
            return Ok(BlobUrl::File(PathBuf::from(path.trim_end_matches('/'))));
        }
        if let Some(rest) = text.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(format!(
                    "{text:?}: an s3 URL needs a bucket, s3://bucket/prefix"
                ));
            }
            return Ok(BlobUrl::S3 {
                bucket: bucket.to_string(),
                prefix: prefix.trim_matches('/').to_string(),
            });
        }
        Err(format!(
            "{text:?} is not a blob store: write db, file:///path or s3://bucket/prefix"
        ))
    }
}

impl std::fmt::Display for BlobUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BlobUrl::Db => write!(f, "db"),
            BlobUrl::File(p) => write!(f, "file://{}", p.display()),
            BlobUrl::S3 { bucket, prefix } if prefix.is_empty() => write!(f, "s3://{bucket}"),
            BlobUrl::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

/// Why a blob could not be written or read outside the database.
#[derive(Debug, thiserror::Error)]
pub enum BlobStoreError {
    #[error("{0}")]
    Url(String),
    /// The object a row names is not there.
    #[error("blob {key} is missing from {url}")]
    NotFound { url: String, key: String },
    #[error("{url}: {source}")]
    Backend {
        url: String,
        #[source]
        source: object_store::Error,
    },
    #[error("blob store: {0}")]
    Runtime(String),
}

impl From<BlobStoreError> for StoreError {
    fn from(e: BlobStoreError) -> Self {
        StoreError::Task(e.to_string())
    }
}

/// One object store (a file:// directory or an s3:// bucket and prefix).
struct Objects {
    url: String,
    store: Arc<dyn ObjectStore>,
    prefix: String,
}

impl Objects {
    fn path(&self, key: &str) -> ObjectPath {
        if self.prefix.is_empty() {
            ObjectPath::from(key)
        } else {
            ObjectPath::from(format!("{}/{key}", self.prefix))
        }
    }
}

/// The configured target for new blobs plus every backend rows name, opened on first use.
pub struct BlobStore {
    target: BlobUrl,
    s3: S3Config,
    opened: Mutex<HashMap<String, Arc<Objects>>>,
    runtime: OnceLock<Result<tokio::runtime::Runtime, String>>,
}

impl std::fmt::Debug for BlobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobStore")
            .field("target", &self.target.to_string())
            .finish()
    }
}

impl Default for BlobStore {
    fn default() -> Self {
        BlobStore::new(BlobUrl::Db, S3Config::default())
    }
}

impl Drop for BlobStore {
    fn drop(&mut self) {
        // Dropping a runtime from an async thread panics; let its threads wind down alone.
        if let Some(Ok(rt)) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl BlobStore {
    pub fn new(target: BlobUrl, s3: S3Config) -> Self {
        BlobStore {
            target,
            s3,
            opened: Mutex::new(HashMap::new()),
            runtime: OnceLock::new(),
        }
    }

    /// The store `storage:` configures; the target backend is opened (a directory created, an
    /// S3 client built) so a bad setting fails at start.
    pub fn from_config(config: &StorageConfig) -> Result<Self, BlobStoreError> {
        let target = BlobUrl::parse(&config.blobs).map_err(BlobStoreError::Url)?;
        let store = BlobStore::new(target, config.s3.clone());
        if let Some(url) = store.target_url() {
            store.objects(&url)?;
        }
        Ok(store)
    }

    /// The URL new blobs go to, or `None` for the database.
    pub fn target_url(&self) -> Option<String> {
        match self.target {
            BlobUrl::Db => None,
            ref other => Some(other.to_string()),
        }
    }

    fn runtime(&self) -> Result<&tokio::runtime::Runtime, BlobStoreError> {
        self.runtime
            .get_or_init(|| {
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("shiplog-blobs")
                    .enable_all()
                    .build()
                    .map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(|e| BlobStoreError::Runtime(e.clone()))
    }

    /// Runs `fut` on the blob runtime and waits for it; callable from any thread.
    fn run<T: Send + 'static>(
        &self,
        fut: impl Future<Output = T> + Send + 'static,
    ) -> Result<T, BlobStoreError> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.runtime()?.spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.recv()
            .map_err(|_| BlobStoreError::Runtime("a blob request was dropped".into()))
    }

    fn objects(&self, url: &str) -> Result<Arc<Objects>, BlobStoreError> {
        let mut opened = self.opened.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(o) = opened.get(url) {
            return Ok(o.clone());
        }
        let backend = |source| BlobStoreError::Backend {
            url: url.to_string(),
            source,
        };
        let objects = match BlobUrl::parse(url).map_err(BlobStoreError::Url)? {
            BlobUrl::Db => {
                return Err(BlobStoreError::Url(
                    "db is not an object store (its bytes are in the rows)".into(),
                ));
            }
            BlobUrl::File(dir) => {
                std::fs::create_dir_all(&dir).map_err(|e| {
                    BlobStoreError::Url(format!("{url}: cannot create {}: {e}", dir.display()))
                })?;
                let fs =
                    object_store::local::LocalFileSystem::new_with_prefix(&dir).map_err(backend)?;
                Objects {
                    url: url.to_string(),
                    store: Arc::new(fs),
                    prefix: String::new(),
                }
            }
            BlobUrl::S3 { bucket, prefix } => {
                let mut b = object_store::aws::AmazonS3Builder::from_env()
                    .with_bucket_name(&bucket)
                    .with_allow_http(self.s3.allow_http);
                if let Some(region) = &self.s3.region {
                    b = b.with_region(region);
                }
                if let Some(endpoint) = &self.s3.endpoint {
                    b = b.with_endpoint(endpoint);
                }
                Objects {
                    url: url.to_string(),
                    store: Arc::new(b.build().map_err(backend)?),
                    prefix,
                }
            }
        };
        let objects = Arc::new(objects);
        opened.insert(url.to_string(), objects.clone());
        Ok(objects)
    }

    /// Writes `data` (whose sha1 is `sha1`) as a new object of the backend at `url`, under a
    /// key no other write uses; returns the key.
    pub fn put_new(&self, url: &str, sha1: &str, data: Vec<u8>) -> Result<String, BlobStoreError> {
        let objects = self.objects(url)?;
        let mut nonce = [0u8; 8];
        getrandom::fill(&mut nonce).map_err(|e| BlobStoreError::Runtime(e.to_string()))?;
        let fan = sha1.get(..2).unwrap_or("00");
        let key = format!("{fan}/{sha1}-{}", hex::encode(nonce));
        let path = objects.path(&key);
        let o = objects.clone();
        self.run(async move { o.store.put(&path, PutPayload::from(data)).await })?
            .map_err(|source| BlobStoreError::Backend {
                url: objects.url.clone(),
                source,
            })?;
        Ok(key)
    }

    /// [`BlobStore::put_new`] for several blobs, written concurrently (at most
    /// [`PUT_CONCURRENCY`] at a time): a local directory writes each through a blocking thread
    /// and an S3 server answers each after a round trip, so one at a time leaves both idle
    /// most of the time. Returns each blob's key, in order; on an error, the objects already
    /// written are left for prune, as after a crash.
    pub fn put_new_many(
        &self,
        url: &str,
        blobs: Vec<(String, bytes::Bytes)>,
    ) -> Result<Vec<String>, BlobStoreError> {
        use futures_util::{StreamExt, TryStreamExt};
        let objects = self.objects(url)?;
        let mut puts = Vec::with_capacity(blobs.len());
        for (sha1, data) in blobs {
            let mut nonce = [0u8; 8];
            getrandom::fill(&mut nonce).map_err(|e| BlobStoreError::Runtime(e.to_string()))?;
            let fan = sha1.get(..2).unwrap_or("00");
            puts.push((format!("{fan}/{sha1}-{}", hex::encode(nonce)), data));
        }
        let o = objects.clone();
        self.run(async move {
            futures_util::stream::iter(puts)
                .map(|(key, data)| {
                    let o = o.clone();
                    async move {
                        o.store
                            .put(&o.path(&key), PutPayload::from(data))
                            .await
                            .map(|_| key)
                    }
                })
                .buffered(PUT_CONCURRENCY)
                .try_collect::<Vec<_>>()
                .await
        })?
        .map_err(|source| BlobStoreError::Backend {
            url: objects.url.clone(),
            source,
        })
    }

    /// The bytes of object `key` at `url`.
    pub fn get(&self, url: &str, key: &str) -> Result<Vec<u8>, BlobStoreError> {
        let objects = self.objects(url)?;
        let path = objects.path(key);
        let o = objects.clone();
        let got = self.run(async move {
            match o.store.get(&path).await {
                Ok(r) => r.bytes().await,
                Err(e) => Err(e),
            }
        })?;
        match got {
            Ok(bytes) => Ok(bytes.to_vec()),
            Err(object_store::Error::NotFound { .. }) => Err(BlobStoreError::NotFound {
                url: url.to_string(),
                key: key.to_string(),
            }),
            Err(source) => Err(BlobStoreError::Backend {
                url: url.to_string(),
                source,
            }),
        }
    }

    /// Deletes object `key` at `url`; one already gone is not an error.
    pub fn delete(&self, url: &str, key: &str) -> Result<(), BlobStoreError> {
        let objects = self.objects(url)?;
        let path = objects.path(key);
        let o = objects.clone();
        match self.run(async move { o.store.delete(&path).await })? {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(source) => Err(BlobStoreError::Backend {
                url: url.to_string(),
                source,
            }),
        }
    }

    /// Every object key at `url` (under its prefix), for checks and tests.
    pub fn list(&self, url: &str) -> Result<Vec<String>, BlobStoreError> {
        use futures_util::TryStreamExt;
        let objects = self.objects(url)?;
        let o = objects.clone();
        let prefix = (!o.prefix.is_empty()).then(|| ObjectPath::from(o.prefix.as_str()));
        let metas: Vec<_> = self
            .run(async move { o.store.list(prefix.as_ref()).try_collect::<Vec<_>>().await })?
            .map_err(|source| BlobStoreError::Backend {
                url: url.to_string(),
                source,
            })?;
        let strip = if objects.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", objects.prefix)
        };
        let mut keys: Vec<String> = metas
            .into_iter()
            .map(|m| {
                let p = m.location.to_string();
                p.strip_prefix(&strip).map(str::to_string).unwrap_or(p)
            })
            .collect();
        keys.sort();
        Ok(keys)
    }
}

/// The id of the backend row for `url`, created if needed.
pub fn backend_id(conn: &Connection, url: &str) -> Result<i64, StoreError> {
    conn.prepare_cached(
        "INSERT INTO blob_backends (url) VALUES (?1) ON CONFLICT (url) DO NOTHING",
    )?
    .execute([url])?;
    Ok(conn
        .prepare_cached("SELECT id FROM blob_backends WHERE url = ?1")?
        .query_row([url], |r| r.get(0))?)
}

/// Queues an object for deletion once the current transaction commits.
pub fn trash(conn: &Connection, url: &str, key: &str) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO blob_trash (url, object_key) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
    )?
    .execute(params![url, key])?;
    Ok(())
}

/// Deletes the objects in `blob_trash` (after the transactions that dropped their rows
/// committed). Returns how many were deleted; one that fails stays for the next call.
pub fn empty_trash(store: &super::Store) -> Result<u64, StoreError> {
    let items: Vec<(String, String)> = store.read_blocking(|c| {
        let mut stmt = c.prepare("SELECT url, object_key FROM blob_trash LIMIT 10000")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok::<_, StoreError>(rows.collect::<Result<_, _>>()?)
    })?;
    let bs = store.blob_store();
    let mut done = Vec::new();
    for (url, key) in items {
        // A key is never reused, so deleting it cannot touch a row written since.
        match bs.delete(&url, &key) {
            Ok(()) => done.push((url, key)),
            Err(e) => tracing::warn!(%url, %key, error = %e, "could not delete a blob object"),
        }
    }
    let n = done.len() as u64;
    if !done.is_empty() {
        store.write_blocking(move |tx| {
            let mut stmt =
                tx.prepare_cached("DELETE FROM blob_trash WHERE url = ?1 AND object_key = ?2")?;
            for (url, key) in &done {
                stmt.execute(params![url, key])?;
            }
            Ok::<_, StoreError>(())
        })?;
    }
    Ok(n)
}

/// Object writes in flight at once in [`BlobStore::put_new_many`].
pub const PUT_CONCURRENCY: usize = 8;

/// Where a blob row's bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// In the row (`db`).
    Inline,
    Object {
        url: String,
        key: String,
    },
}

/// The location of blob `blob_id`.
pub fn location(conn: &Connection, blob_id: i64) -> Result<Option<Location>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT k.url, b.object_key FROM blobs b LEFT JOIN blob_backends k ON k.id = b.backend_id
              WHERE b.id = ?1",
        )?
        .query_row([blob_id], |r| {
            let url: Option<String> = r.get(0)?;
            let key: Option<String> = r.get(1)?;
            Ok(match (url, key) {
                (Some(url), Some(key)) => Location::Object { url, key },
                _ => Location::Inline,
            })
        })
        .optional()?)
}

/// How far [`migrate`] got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Progress {
    pub moved: u64,
    pub total: u64,
    pub bytes: u64,
}

/// Moves every blob not yet at `to` there, a batch at a time, while the store stays in use:
/// each batch is read (and its sha1 checked), written to `to`, and its rows switched to the
/// new location in one transaction; the old objects are deleted after that commit. A reader
/// that looked a row up just before may find the old object gone and looks again
/// ([`super::blobs::blob_data`]). Blobs written meanwhile to another backend (a daemon still
/// configured for it) are picked up until none is left.
pub fn migrate(
    store: &super::Store,
    to: &BlobUrl,
    progress: &mut dyn FnMut(Progress),
) -> Result<Progress, StoreError> {
    const BATCH: usize = 32;
    let bs = store.blob_store();
    let target = match to {
        BlobUrl::Db => None,
        other => {
            let url = other.to_string();
            bs.objects(&url)?;
            Some(url)
        }
    };
    // Rows not at the target, after `after` (by id).
    let pending_sql = match &target {
        None => {
            "SELECT b.id, b.sha1, b.size FROM blobs b
                  WHERE b.backend_id IS NOT NULL AND b.id > ?1 ORDER BY b.id LIMIT ?2"
        }
        Some(_) => {
            "SELECT b.id, b.sha1, b.size FROM blobs b
                     WHERE (b.backend_id IS NULL
                            OR b.backend_id IS NOT (SELECT id FROM blob_backends WHERE url = ?3))
                       AND b.id > ?1 ORDER BY b.id LIMIT ?2"
        }
    };
    let count_sql = match &target {
        None => "SELECT count(*) FROM blobs WHERE backend_id IS NOT NULL AND ?1 IS NULL",
        Some(_) => {
            "SELECT count(*) FROM blobs WHERE backend_id IS NULL
                     OR backend_id IS NOT (SELECT id FROM blob_backends WHERE url = ?1)"
        }
    };
    let mut done = Progress {
        total: store.read_blocking(|c| {
            Ok::<i64, StoreError>(c.query_row(count_sql, [target.as_deref()], |r| r.get(0))?)
        })? as u64,
        ..Default::default()
    };
    progress(done);
    let mut after = 0i64;
    loop {
        // Read a batch where it is now.
        let batch: Vec<(i64, Option<Location>, Vec<u8>)> = store.read_blocking(|c| {
            let rows: Vec<(i64, String, i64)> = {
                let mut stmt = c.prepare_cached(pending_sql)?;
                let row = |r: &rusqlite::Row<'_>| Ok((r.get(0)?, r.get(1)?, r.get(2)?));
                match &target {
                    None => stmt
                        .query_map(params![after, BATCH as i64], row)?
                        .collect::<Result<_, _>>()?,
                    Some(url) => stmt
                        .query_map(params![after, BATCH as i64, url], row)?
                        .collect::<Result<_, _>>()?,
                }
            };
            let mut out = Vec::with_capacity(rows.len());
            for (id, sha1, _) in rows {
                let at = location(c, id)?;
                let data = super::blobs::blob_data(c, &bs, id)?;
                let actual = super::blobs::sha1_hex(&data);
                if actual != sha1 {
                    return Err(StoreError::Task(format!(
                        "blob {id} should hash to {sha1} but its bytes hash to {actual}; not moved"
                    )));
                }
                out.push((id, at, data));
            }
            Ok::<_, StoreError>(out)
        })?;
        let Some(last) = batch.last().map(|b| b.0) else {
            break;
        };
        after = last;
        // Write the copies, then switch the rows that are still where they were read.
        let mut staged = Vec::with_capacity(batch.len());
        for (id, at, data) in batch {
            let key = match &target {
                Some(url) => {
                    let sha1 = super::blobs::sha1_hex(&data);
                    Some(bs.put_new(url, &sha1, data.clone())?)
                }
                None => None,
            };
            staged.push((id, at, data, key));
        }
        let target2 = target.clone();
        let (moved, bytes) = store.write_blocking(move |tx| {
            let backend = target2.as_deref().map(|u| backend_id(tx, u)).transpose()?;
            let (mut moved, mut bytes) = (0u64, 0u64);
            for (id, at, data, key) in &staged {
                let now_at = location(tx, *id)?;
                if now_at.as_ref() != at.as_ref() {
                    // Pruned or moved meanwhile: the copy is not needed.
                    if let (Some(url), Some(key)) = (&target2, key) {
                        trash(tx, url, key)?;
                    }
                    continue;
                }
                match (backend, key) {
                    (Some(b), Some(k)) => tx
                        .prepare_cached(
                            "UPDATE blobs SET data = X'', backend_id = ?2, object_key = ?3 WHERE id = ?1",
                        )?
                        .execute(params![id, b, k])?,
                    _ => tx
                        .prepare_cached(
                            "UPDATE blobs SET data = ?2, backend_id = NULL, object_key = NULL WHERE id = ?1",
                        )?
                        .execute(params![id, data])?,
                };
                if let Some(Location::Object { url, key }) = at {
                    trash(tx, url, key)?;
                }
                moved += 1;
                bytes += data.len() as u64;
            }
            Ok::<_, StoreError>((moved, bytes))
        })?;
        empty_trash(store)?;
        done.moved += moved;
        done.bytes += bytes;
        done.total = done.total.max(done.moved);
        progress(done);
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_and_print_back() {
        assert_eq!(BlobUrl::parse("db").unwrap(), BlobUrl::Db);
        let f = BlobUrl::parse("file:///var/lib/shiplog/blobs/").unwrap();
        assert_eq!(f, BlobUrl::File("/var/lib/shiplog/blobs".into()));
        assert_eq!(f.to_string(), "file:///var/lib/shiplog/blobs");
        let s = BlobUrl::parse("s3://bucket/a/b/").unwrap();
        assert_eq!(s.to_string(), "s3://bucket/a/b");
        assert_eq!(
            BlobUrl::parse("s3://bucket").unwrap().to_string(),
            "s3://bucket"
        );
        for bad in ["file://relative", "s3://", "ftp://x", "", "file://"] {
            assert!(BlobUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_file_store_writes_each_key_once_and_deletes_quietly() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("file://{}", dir.path().display());
        let bs = BlobStore::new(BlobUrl::parse(&url).unwrap(), S3Config::default());
        let sha = crate::model::manifest::sha1_hex(b"hello");
        let a = bs.put_new(&url, &sha, b"hello".to_vec()).unwrap();
        let b = bs.put_new(&url, &sha, b"hello".to_vec()).unwrap();
        assert_ne!(a, b, "a key is never reused");
        assert!(a.starts_with(&format!("{}/{sha}-", &sha[..2])));
        assert_eq!(bs.get(&url, &a).unwrap(), b"hello");
        assert_eq!(bs.list(&url).unwrap().len(), 2);
        bs.delete(&url, &a).unwrap();
        bs.delete(&url, &a).unwrap();
        assert!(matches!(
            bs.get(&url, &a),
            Err(BlobStoreError::NotFound { .. })
        ));
        assert_eq!(bs.list(&url).unwrap(), vec![b]);
    }
}
