//! Legacy release files, one file per request: what sentry-cli 2.x's `releases files VERSION
//! upload FILE NAME` and `files delete --all` call (Sentry's `post_releasefile` and its
//! source-maps `DELETE`). 3.x uploads bundles instead ([`super::artifact`]).
//!
//! An uploaded file is a release file like those a small bundle unpacks into: the same ident
//! (`sha1(name [+ "\0\0" + dist])`), the same listing, lookup and download. Unlike a bundle, a
//! single upload does not replace: a name the release already has is a 409, as in Sentry.

use std::collections::BTreeMap;

use rusqlite::Transaction;

use super::CoreError;
use crate::model::manifest::{self, sha1_hex};
use crate::store::artifacts::{self as rows, ArtifactId, Listed};
use crate::store::blobs::{self, BLOB_SIZE};
use crate::store::orgs::Org;
use crate::store::releases::Release;

/// One file as the multipart request carries it.
#[derive(Debug, Clone)]
pub struct Upload<'a> {
    /// The `name` field (the URL, e.g. `~/app.min.js`), else the file part's filename.
    pub name: &'a str,
    pub dist: Option<&'a str>,
    /// The `header` fields (`Key:Value`).
    pub headers: BTreeMap<String, String>,
    pub data: &'a [u8],
}

/// Parses one `header` form field, `Key: Value`, as Sentry does.
pub fn parse_header(field: &str) -> Result<(String, String), CoreError> {
    let (key, value) = field
        .split_once(':')
        .ok_or_else(|| CoreError::invalid("header", "header value was not formatted correctly"))?;
    Ok((key.trim().to_string(), value.trim().to_string()))
}

/// Stores one file for a release; a name (and dist) the release already has is a conflict.
pub fn upload(
    tx: &Transaction<'_>,
    bs: &crate::store::blob_store::BlobStore,
    org: &Org,
    release: &Release,
    up: &Upload<'_>,
    now: &str,
) -> Result<Listed, CoreError> {
    let name = up.name.trim();
    if name.is_empty() || name == "file" {
        return Err(CoreError::invalid("name", "File name must be specified"));
    }
    let ident = manifest::ident(name, up.dist);
    if rows::ident_taken(tx, release.id, &ident)? {
        return Err(CoreError::Conflict(
            "A file matching this name already exists for the given release".into(),
        ));
    }
    let mut parts = Vec::new();
    for chunk in up.data.chunks(BLOB_SIZE) {
        parts.push(blobs::put_hashed(
            tx,
            bs,
            org.id,
            &sha1_hex(chunk),
            chunk,
            now,
        )?);
    }
    let headers = serde_json::to_string(&up.headers).unwrap_or_else(|_| "{}".into());
    let basename = name.rsplit('/').next().unwrap_or(name);
    let file_id = blobs::insert_file(
        tx,
        &blobs::NewFile {
            name: basename,
            kind: "release.file",
            headers: &headers,
            size: up.data.len() as u64,
            sha1: &sha1_hex(up.data),
            created: now,
        },
        &parts,
    )?;
    let id = rows::put_release_file(
        tx,
        &rows::NewReleaseFile {
            org_id: org.id,
            release_id: release.id,
            dist: up.dist,
            ident: &ident,
            name,
            file_id,
            now,
        },
    )?;
    rows::get(tx, release.id, ArtifactId::File(id))?
        .ok_or_else(|| CoreError::NotFound("release file vanished".into()))
}

/// Deletes every artifact of a release (release files and bundle index entries); returns how
/// many.
pub fn delete_all(tx: &Transaction<'_>, release: &Release) -> Result<usize, CoreError> {
    let mut deleted = 0;
    loop {
        let page = rows::list(tx, release.id, None, 1000, 0)?;
        if page.is_empty() {
            return Ok(deleted);
        }
        let before = deleted;
        for f in &page {
            if rows::delete(tx, release.id, f.id)? {
                deleted += 1;
            }
        }
        if deleted == before {
            return Ok(deleted);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_key_colon_value() {
        assert_eq!(
            parse_header("Sourcemap: app.js.map").unwrap(),
            ("Sourcemap".into(), "app.js.map".into())
        );
        assert_eq!(parse_header("x:a:b").unwrap(), ("x".into(), "a:b".into()));
        assert!(parse_header("nocolon").is_err());
    }
}
