//! Ref snapshots and release sources: what shiplog last saw of each local repository's refs,
//! and which tag of which release policy made each release (migration 0003).
//!
//! The snapshot is the "stored ref position" reconcile compares a repository with: a ref whose
//! target differs from its row is a change nobody reported. It is written by the pipeline
//! handler that applied the change, never by the adapters that noticed it, so a change
//! noticed but not yet applied is noticed again (and dropped as a duplicate) rather than lost.

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension, params};

use super::StoreError;

/// One stored ref.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRef {
    /// What the ref points at (a tag object for an annotated tag).
    pub target: String,
    /// The commit it peels to, when it peels to a commit.
    pub peeled: Option<String>,
}

/// Every stored ref of a repository, by full name.
pub fn snapshot(
    conn: &Connection,
    repository_id: i64,
) -> Result<HashMap<String, SnapshotRef>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT ref_name, target, peeled FROM ref_snapshots WHERE repository_id = ?1",
    )?;
    let rows = stmt.query_map([repository_id], |r| {
        Ok((
            r.get::<_, String>(0)?,
            SnapshotRef {
                target: r.get(1)?,
                peeled: r.get(2)?,
            },
        ))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// One stored ref.
pub fn snapshot_ref(
    conn: &Connection,
    repository_id: i64,
    ref_name: &str,
) -> Result<Option<SnapshotRef>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT target, peeled FROM ref_snapshots WHERE repository_id = ?1 AND ref_name = ?2",
        )?
        .query_row(params![repository_id, ref_name], |r| {
            Ok(SnapshotRef {
                target: r.get(0)?,
                peeled: r.get(1)?,
            })
        })
        .optional()?)
}

/// Records where a ref points now.
pub fn put_ref(
    conn: &Connection,
    repository_id: i64,
    ref_name: &str,
    value: &SnapshotRef,
    now: &str,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO ref_snapshots (repository_id, ref_name, target, peeled, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (repository_id, ref_name)
         DO UPDATE SET target = excluded.target, peeled = excluded.peeled, updated_at = excluded.updated_at",
    )?
    .execute(params![
        repository_id,
        ref_name,
        value.target,
        value.peeled,
        now
    ])?;
    Ok(())
}

/// Forgets a deleted ref; `true` if it was stored.
pub fn delete_ref(
    conn: &Connection,
    repository_id: i64,
    ref_name: &str,
) -> Result<bool, StoreError> {
    let n = conn
        .prepare_cached("DELETE FROM ref_snapshots WHERE repository_id = ?1 AND ref_name = ?2")?
        .execute(params![repository_id, ref_name])?;
    Ok(n > 0)
}

/// When the repository's refs were first listed, if they have been.
pub fn baseline_taken(conn: &Connection, repository_id: i64) -> Result<Option<String>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT taken_at FROM ref_baselines WHERE repository_id = ?1")?
        .query_row([repository_id], |r| r.get(0))
        .optional()?)
}

/// Records the first listing of a repository's refs: every ref becomes part of the snapshot
/// without being applied. `false` (and nothing written) if a baseline already exists.
pub fn take_baseline(
    conn: &Connection,
    repository_id: i64,
    refs: &[(String, SnapshotRef)],
    now: &str,
) -> Result<bool, StoreError> {
    let n = conn
        .prepare_cached(
            "INSERT INTO ref_baselines (repository_id, taken_at) VALUES (?1, ?2)
             ON CONFLICT (repository_id) DO NOTHING",
        )?
        .execute(params![repository_id, now])?;
    if n == 0 {
        return Ok(false);
    }
    for (name, value) in refs {
        put_ref(conn, repository_id, name, value, now)?;
    }
    Ok(true)
}

/// Notes that reconcile compared the repository with its snapshot.
pub fn mark_reconciled(conn: &Connection, repository_id: i64, now: &str) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE ref_baselines SET reconciled_at = ?2 WHERE repository_id = ?1")?
        .execute(params![repository_id, now])?;
    Ok(())
}

/// When reconcile last compared the repository with its snapshot, if it ever did.
pub fn reconciled_at(conn: &Connection, repository_id: i64) -> Result<Option<String>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT reconciled_at FROM ref_baselines WHERE repository_id = ?1")?
        .query_row([repository_id], |r| r.get::<_, Option<String>>(0))
        .optional()?
        .flatten())
}

/// The tag a release was made from under one policy of one repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseSource {
    pub release_id: i64,
    pub repository_id: i64,
    pub policy_key: String,
    pub tag: String,
    pub target_commit: String,
    pub trigger: String,
}

/// A release made by a policy, with what ordering releases needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyRelease {
    pub source: ReleaseSource,
    pub version: String,
    /// `COALESCE(date_released, date_added)`: Sentry's date order for releases.
    pub date: String,
}

fn source_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ReleaseSource> {
    Ok(ReleaseSource {
        release_id: r.get(0)?,
        repository_id: r.get(1)?,
        policy_key: r.get(2)?,
        tag: r.get(3)?,
        target_commit: r.get(4)?,
        trigger: r.get(5)?,
    })
}

/// The source of one release under one policy.
pub fn release_source(
    conn: &Connection,
    release_id: i64,
    repository_id: i64,
    policy_key: &str,
) -> Result<Option<ReleaseSource>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT release_id, repository_id, policy_key, tag, target_commit, trigger
             FROM release_sources WHERE release_id = ?1 AND repository_id = ?2 AND policy_key = ?3",
        )?
        .query_row(
            params![release_id, repository_id, policy_key],
            source_from_row,
        )
        .optional()?)
}

/// Every release a policy of a repository made.
pub fn policy_releases(
    conn: &Connection,
    repository_id: i64,
    policy_key: &str,
) -> Result<Vec<PolicyRelease>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT s.release_id, s.repository_id, s.policy_key, s.tag, s.target_commit, s.trigger,
                r.version, COALESCE(r.date_released, r.date_added)
         FROM release_sources s JOIN releases r ON r.id = s.release_id
         WHERE s.repository_id = ?1 AND s.policy_key = ?2",
    )?;
    let rows = stmt.query_map(params![repository_id, policy_key], |r| {
        Ok(PolicyRelease {
            source: source_from_row(r)?,
            version: r.get(6)?,
            date: r.get(7)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Records (or moves) the tag a release was made from.
pub fn put_release_source(
    conn: &Connection,
    source: &ReleaseSource,
    now: &str,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO release_sources
             (release_id, repository_id, policy_key, tag, target_commit, trigger, date_added, date_updated)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)
         ON CONFLICT (release_id, repository_id, policy_key)
         DO UPDATE SET tag = excluded.tag, target_commit = excluded.target_commit,
                       trigger = excluded.trigger, date_updated = excluded.date_updated",
    )?
    .execute(params![
        source.release_id,
        source.repository_id,
        source.policy_key,
        source.tag,
        source.target_commit,
        source.trigger,
        now
    ])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    fn repo(store: &Store) -> i64 {
        store
            .write_blocking(|tx| {
                tx.execute(
                    "INSERT INTO organizations (slug, name, date_added) VALUES ('a', 'A', 'x')",
                    [],
                )?;
                tx.execute(
                    "INSERT INTO repositories (org_id, name, date_added) VALUES (1, 'a/b', 'x')",
                    [],
                )?;
                Ok::<_, StoreError>(tx.last_insert_rowid())
            })
            .unwrap()
    }

    fn r(target: &str) -> SnapshotRef {
        SnapshotRef {
            target: target.into(),
            peeled: Some(target.into()),
        }
    }

    #[test]
    fn baseline_is_taken_once_and_refs_move() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_dir(dir.path()).unwrap();
        let id = repo(&store);
        store
            .write_blocking(|tx| {
                assert!(baseline_taken(tx, id)?.is_none());
                assert!(take_baseline(
                    tx,
                    id,
                    &[("refs/tags/v1".into(), r("aa"))],
                    "t1"
                )?);
                assert!(!take_baseline(
                    tx,
                    id,
                    &[("refs/tags/v2".into(), r("bb"))],
                    "t2"
                )?);
                put_ref(tx, id, "refs/tags/v1", &r("cc"), "t3")?;
                let snap = snapshot(tx, id)?;
                assert_eq!(snap.len(), 1);
                assert_eq!(snap["refs/tags/v1"].target, "cc");
                assert!(delete_ref(tx, id, "refs/tags/v1")?);
                assert!(!delete_ref(tx, id, "refs/tags/v1")?);
                assert_eq!(baseline_taken(tx, id)?.as_deref(), Some("t1"));
                Ok::<_, StoreError>(())
            })
            .unwrap();
    }
}
