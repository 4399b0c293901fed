//! PostgreSQL: the connection pool, the schema and its migrations (issue 16, first part).
//!
//! **What exists.** A pool of tokio-postgres connections ([`PgStore`]), PostgreSQL's own
//! migrations creating the same tables, columns and indexes as SQLite's (`tests/pg_schema.rs`
//! compares the two and fails on any difference), and [`copy`], which moves an SQLite store
//! into an empty PostgreSQL database (`shiplog migrate --to postgres://...`). The daemon does
//! not serve from PostgreSQL yet: the query functions of the other `store` modules take a
//! rusqlite `Connection`, and `docs/storage-seam.md` is the plan for the seam that lets them
//! have a second implementation.
//!
//! **Why tokio-postgres.** sqlx's SQLite driver needs a libsqlite3-sys that cannot be linked
//! beside rusqlite 0.40's, and sqlx's `Any` driver cannot carry the types a second backend
//! would need; tokio-postgres is small, async and runs on the tokio the daemon already has.
//!
//! **Migrations.** One file per SQLite migration, with the same file name, in
//! `postgres/migrations/`. The version of a database is the number of migrations applied, as
//! for SQLite (`rusqlite_migration` counts them the same way), recorded one row per migration
//! in [`VERSION_TABLE`]. Each migration runs in its own transaction under an advisory lock, so
//! two daemons starting on one database apply it once. Type mapping: `INTEGER` becomes
//! `BIGINT` (SQLite integers are 64-bit), `INTEGER PRIMARY KEY id` becomes an identity column
//! that accepts explicit ids (the copy keeps every id), `BLOB` becomes `BYTEA`; flags SQLite
//! stores as 0/1 stay integers so every query reads the same values on both. Every `TEXT`
//! column is `COLLATE "C"`: SQLite compares text byte by byte, and versions, timestamps and
//! names must sort the same on both whatever locale the database was created with. `user` and
//! `offset` are reserved words in PostgreSQL and are quoted there.
//!
//! A PostgreSQL store starts empty at the schema of SQLite's 0017, so the data backfills of
//! SQLite migrations up to 0017 are left out of their twins. **From 0018 on, a migration that
//! rewrites existing rows must do so in its PostgreSQL twin too.**

pub mod copy;
mod value;

use std::str::FromStr;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::NoTls;

/// The table recording which migrations a PostgreSQL database has.
pub const VERSION_TABLE: &str = "shiplog_schema_migrations";

/// Key of the advisory lock held while migrating ("shiplog" in ASCII).
const MIGRATION_LOCK: i64 = 0x0073_6869_706c_6f67;

/// PostgreSQL's migrations, in order, named as their SQLite twins. Append only.
pub const MIGRATIONS: &[(&str, &str)] = &[
    ("0001_core.sql", include_str!("migrations/0001_core.sql")),
    (
        "0002_commits.sql",
        include_str!("migrations/0002_commits.sql"),
    ),
    ("0003_hooks.sql", include_str!("migrations/0003_hooks.sql")),
    (
        "0004_artifacts.sql",
        include_str!("migrations/0004_artifacts.sql"),
    ),
    (
        "0005_issues.sql",
        include_str!("migrations/0005_issues.sql"),
    ),
    (
        "0006_github.sql",
        include_str!("migrations/0006_github.sql"),
    ),
    (
        "0007_bundle_verify.sql",
        include_str!("migrations/0007_bundle_verify.sql"),
    ),
    (
        "0008_settings.sql",
        include_str!("migrations/0008_settings.sql"),
    ),
    (
        "0009_manual_links.sql",
        include_str!("migrations/0009_manual_links.sql"),
    ),
    (
        "0010_github_org_scope.sql",
        include_str!("migrations/0010_github_org_scope.sql"),
    ),
    (
        "0011_pending_bundles_and_project_events.sql",
        include_str!("migrations/0011_pending_bundles_and_project_events.sql"),
    ),
    (
        "0013_health.sql",
        include_str!("migrations/0013_health.sql"),
    ),
    (
        "0015_grouping.sql",
        include_str!("migrations/0015_grouping.sql"),
    ),
    (
        "0016_notifications.sql",
        include_str!("migrations/0016_notifications.sql"),
    ),
    (
        "0017_health_daily_users.sql",
        include_str!("migrations/0017_health_daily_users.sql"),
    ),
    (
        "0019_blob_backends.sql",
        include_str!("migrations/0019_blob_backends.sql"),
    ),
    (
        "0020_web_sessions.sql",
        include_str!("migrations/0020_web_sessions.sql"),
    ),
    (
        "0021_health_daily_counts.sql",
        include_str!("migrations/0021_health_daily_counts.sql"),
    ),
    (
        "0022_blob_entry_digests.sql",
        include_str!("migrations/0022_blob_entry_digests.sql"),
    ),
];

/// Errors of the PostgreSQL store.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    /// The URL is not a PostgreSQL connection string.
    #[error("invalid PostgreSQL URL: {0}")]
    Url(String),
    /// No connection could be had from the pool.
    #[error("cannot connect to PostgreSQL at {target}: {reason}")]
    Connect { target: String, reason: String },
    /// PostgreSQL refused a statement.
    #[error("PostgreSQL error: {}", describe(.0))]
    Postgres(#[from] tokio_postgres::Error),
    /// A migration failed; the database keeps the migrations before it.
    #[error("PostgreSQL migration {name} failed: {}", describe(.source))]
    Migration {
        name: &'static str,
        source: tokio_postgres::Error,
    },
    /// The database was migrated by a newer shiplog.
    #[error(
        "PostgreSQL database {target} has schema version {found}, newer than this shiplog knows ({known}); upgrade shiplog"
    )]
    TooNew {
        target: String,
        found: i64,
        known: usize,
    },
}

/// tokio-postgres's `Display` of a server error is only "db error"; the server's message and
/// detail are what tell the user what to fix.
fn describe(err: &tokio_postgres::Error) -> String {
    match err.as_db_error() {
        Some(db) => match db.detail() {
            Some(detail) => format!("{}: {detail}", db.message()),
            None => db.message().to_string(),
        },
        None => err.to_string(),
    }
}

/// A pool of connections to one PostgreSQL database.
#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
    target: String,
}

impl std::fmt::Debug for PgStore {
    // The URL may carry a password: only user, host and database are shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("target", &self.target)
            .finish()
    }
}

/// `user@host:port/db` of a connection string, without its password.
pub fn target_of(config: &tokio_postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "localhost".to_string(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!(
        "{}@{host}:{port}/{}",
        config.get_user().unwrap_or(""),
        config.get_dbname().unwrap_or("")
    )
}

impl PgStore {
    /// A pool of up to `size` connections to `url` (`postgres://user[:pass]@host[:port]/db`,
    /// or the key=value form). Connects lazily: the first [`PgStore::client`] reports an
    /// unreachable server. TLS is not supported yet (the connections use `NoTls`).
    pub fn connect(url: &str, size: usize) -> Result<PgStore, PgError> {
        let config =
            tokio_postgres::Config::from_str(url).map_err(|e| PgError::Url(e.to_string()))?;
        let target = target_of(&config);
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(size.max(1))
            .build()
            .map_err(|e| PgError::Url(e.to_string()))?;
        Ok(PgStore { pool, target })
    }

    /// `user@host:port/db`, for messages.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// A connection from the pool.
    pub async fn client(&self) -> Result<deadpool_postgres::Client, PgError> {
        self.pool.get().await.map_err(|e| PgError::Connect {
            target: self.target.clone(),
            // The pool's own message hides the server's ("database x does not exist").
            reason: match &e {
                deadpool_postgres::PoolError::Backend(e) => describe(e),
                other => other.to_string(),
            },
        })
    }

    /// The number of migrations applied (0 for a database shiplog never touched).
    pub async fn schema_version(&self) -> Result<i64, PgError> {
        let client = self.client().await?;
        let exists: bool = client
            .query_one(
                "SELECT to_regclass($1) IS NOT NULL",
                &[&format!("\"{VERSION_TABLE}\"")],
            )
            .await?
            .get(0);
        if !exists {
            return Ok(0);
        }
        let row = client
            .query_one(&format!("SELECT count(*) FROM \"{VERSION_TABLE}\""), &[])
            .await?;
        Ok(row.get(0))
    }

    /// Brings the schema up to date; returns the migrations it applied.
    pub async fn migrate(&self) -> Result<usize, PgError> {
        let mut client = self.client().await?;
        // Under the lock too: two concurrent CREATE TABLE IF NOT EXISTS can both try to
        // create it, and one fails.
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await?;
        tx.batch_execute(&version_table_ddl()).await?;
        tx.commit().await?;
        let mut applied = 0;
        for (index, (name, sql)) in MIGRATIONS.iter().enumerate() {
            let version = i64::try_from(index + 1).unwrap_or(i64::MAX);
            let tx = client.transaction().await?;
            // Serializes daemons migrating one database: the second waits, then sees the row.
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
                .await?;
            let done: i64 = tx
                .query_one(
                    &format!("SELECT count(*) FROM \"{VERSION_TABLE}\" WHERE version = $1"),
                    &[&version],
                )
                .await?
                .get(0);
            if done > 0 {
                continue;
            }
            tx.batch_execute(sql)
                .await
                .map_err(|source| PgError::Migration { name, source })?;
            tx.execute(
                &format!("INSERT INTO \"{VERSION_TABLE}\" (version, name) VALUES ($1, $2)"),
                &[&version, name],
            )
            .await?;
            tx.commit().await?;
            applied += 1;
        }
        let found: i64 = client
            .query_one(
                &format!("SELECT coalesce(max(version), 0) FROM \"{VERSION_TABLE}\""),
                &[],
            )
            .await?
            .get(0);
        if found > MIGRATIONS.len() as i64 {
            return Err(PgError::TooNew {
                target: self.target.clone(),
                found,
                known: MIGRATIONS.len(),
            });
        }
        Ok(applied)
    }
}

fn version_table_ddl() -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS \"{VERSION_TABLE}\" (
             version     BIGINT PRIMARY KEY,
             name        TEXT NOT NULL,
             applied_at  TIMESTAMPTZ NOT NULL DEFAULT now()
         )"
    )
}

/// Applies every migration inside `tx`, on a database known to be empty (the copy's own
/// transaction, so that a failed copy leaves no schema behind).
pub(crate) async fn migrate_empty(tx: &tokio_postgres::Transaction<'_>) -> Result<(), PgError> {
    tx.batch_execute(&version_table_ddl()).await?;
    for (index, (name, sql)) in MIGRATIONS.iter().enumerate() {
        let version = i64::try_from(index + 1).unwrap_or(i64::MAX);
        tx.batch_execute(sql)
            .await
            .map_err(|source| PgError::Migration { name, source })?;
        tx.execute(
            &format!("INSERT INTO \"{VERSION_TABLE}\" (version, name) VALUES ($1, $2)"),
            &[&version, name],
        )
        .await?;
    }
    Ok(())
}

/// `name` quoted as a PostgreSQL (and SQLite) identifier.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_hides_the_password() {
        let config =
            tokio_postgres::Config::from_str("postgres://ship:secret@db.example:6543/shiplog")
                .unwrap();
        assert_eq!(target_of(&config), "ship@db.example:6543/shiplog");
        let store = PgStore::connect("postgres://ship:secret@db.example/shiplog", 2).unwrap();
        assert!(!format!("{store:?}").contains("secret"));
    }

    #[test]
    fn a_bad_url_is_refused() {
        assert!(matches!(
            PgStore::connect("postgres://host:notaport/db", 1),
            Err(PgError::Url(_))
        ));
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote_ident("user"), "\"user\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }

    #[test]
    fn every_migration_is_named_as_a_migration_file() {
        for (name, sql) in MIGRATIONS {
            assert!(name.ends_with(".sql") && name[..4].parse::<u32>().is_ok());
            assert!(!sql.contains("WITHOUT ROWID"), "{name}");
        }
    }
}
