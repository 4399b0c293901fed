//! Copying an SQLite store into an empty PostgreSQL database (`shiplog migrate --to`).
//!
//! Generic over the schema: the tables and their columns are read from SQLite's catalog
//! (`sqlite_master`, `pragma_table_info`), their order from its foreign keys (a table is
//! copied after the tables it references), and the target types from PostgreSQL's catalog, so
//! a table added by a later migration is copied without a change here.
//!
//! The whole copy reads one SQLite snapshot (one read transaction) and writes one PostgreSQL
//! transaction, schema included: a copy that fails leaves the database as empty as it was,
//! and can be run again. Rows stream through `COPY ... FROM STDIN (FORMAT binary)`, reported every
//! [`BATCH_ROWS`] rows or [`BATCH_BYTES`] bytes. User triggers (projects' key trigger) are off
//! during the copy: the keys are copied with everything else. Identity sequences then restart
//! after the largest id copied, and each table's row count is compared on both sides.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use futures_util::pin_mut;
use rusqlite::{Connection, OpenFlags};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};

use super::value::Cell;
use super::{MIGRATIONS, PgError, PgStore, VERSION_TABLE, quote_ident};

/// Rows between two progress reports.
pub const BATCH_ROWS: u64 = 5_000;
/// Bytes between two progress reports (blobs are up to 1 MiB each).
pub const BATCH_BYTES: usize = 64 << 20;

/// Why a copy was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// The target already holds tables; the copy only fills an empty database.
    #[error(
        "PostgreSQL database {target} is not empty ({count} tables, e.g. {example}): migrate copies into an empty database only; create one (`createdb NAME`) or empty this one (`DROP SCHEMA public CASCADE; CREATE SCHEMA public;`) and run migrate again"
    )]
    NotEmpty {
        target: String,
        count: i64,
        example: String,
    },
    /// The SQLite file is missing.
    #[error("no shiplog store at {0}: check --data-dir (or the config's data_dir)")]
    NoSource(PathBuf),
    /// The SQLite store and this shiplog's PostgreSQL schema are not at the same version.
    #[error(
        "the SQLite store has schema version {sqlite} but this shiplog's PostgreSQL migrations reach {postgres}: a SQLite migration has no PostgreSQL twin (tests/pg_schema.rs says which); this shiplog cannot migrate this store"
    )]
    Version { sqlite: i64, postgres: usize },
    /// SQLite has a table or column that PostgreSQL's schema lacks.
    #[error("cannot copy {0}: PostgreSQL's schema has no such column (a migration is missing)")]
    Schema(String),
    /// A value does not fit its PostgreSQL column (`row`: its position in the table's scan).
    #[error("cannot copy {table}.{column} of row {row}: {reason}")]
    Value {
        table: String,
        column: String,
        row: u64,
        reason: String,
    },
    /// The foreign keys form a cycle, so no table order satisfies them.
    #[error("cannot order tables by their foreign keys: cycle among {0}")]
    Cycle(String),
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error(transparent)]
    Pg(#[from] PgError),
}

impl From<tokio_postgres::Error> for CopyError {
    fn from(e: tokio_postgres::Error) -> Self {
        CopyError::Pg(PgError::Postgres(e))
    }
}

/// What the copy tells its caller as it goes.
#[derive(Debug)]
pub enum Progress<'a> {
    /// Copying `table` begins; it has `rows` rows.
    Start { table: &'a str, rows: u64 },
    /// `done` rows of `table` written so far.
    Rows {
        table: &'a str,
        done: u64,
        rows: u64,
    },
}

/// One table's row counts after the copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableCount {
    pub table: String,
    pub sqlite: i64,
    pub postgres: i64,
}

/// The outcome of a copy that ran to the end.
#[derive(Debug, Clone)]
pub struct CopyReport {
    pub target: String,
    pub tables: Vec<TableCount>,
}

impl CopyReport {
    /// Every table has as many rows in PostgreSQL as in SQLite.
    pub fn counts_match(&self) -> bool {
        self.tables.iter().all(|t| t.sqlite == t.postgres)
    }
}

/// A table to copy: its name and columns, as SQLite has them.
#[derive(Debug)]
struct Table {
    name: String,
    columns: Vec<String>,
    references: BTreeSet<String>,
}

/// Copies the SQLite database at `sqlite_path` into the empty PostgreSQL database of `pg`,
/// creating the schema first.
pub async fn copy_sqlite_to_postgres(
    sqlite_path: &Path,
    pg: &PgStore,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<CopyReport, CopyError> {
    if !sqlite_path.is_file() {
        return Err(CopyError::NoSource(sqlite_path.to_path_buf()));
    }
    refuse_non_empty(pg).await?;

    let mut sqlite = Connection::open_with_flags(
        sqlite_path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    sqlite.busy_timeout(std::time::Duration::from_secs(10))?;
    // One snapshot for the whole copy and the counts after it: WAL keeps it stable while a
    // daemon writes on (what it writes after this point is not copied).
    let snapshot = sqlite.transaction()?;
    let version: i64 = snapshot.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version != MIGRATIONS.len() as i64 {
        return Err(CopyError::Version {
            sqlite: version,
            postgres: MIGRATIONS.len(),
        });
    }
    let tables = order_by_references(sqlite_tables(&snapshot)?)?;

    let mut client = pg.client().await?;
    // The schema is made in the copy's transaction too (PostgreSQL's DDL is transactional):
    // a copy that fails leaves no tables behind, so running it again is not refused.
    let tx = client.transaction().await?;
    super::migrate_empty(&tx).await?;
    let pg_types = postgres_columns(&*tx).await?;
    for table in &tables {
        for column in &table.columns {
            if !pg_types.contains_key(&(table.name.clone(), column.clone())) {
                return Err(CopyError::Schema(format!("{}.{column}", table.name)));
            }
        }
    }
    for table in &tables {
        tx.batch_execute(&format!(
            "ALTER TABLE {} DISABLE TRIGGER USER",
            quote_ident(&table.name)
        ))
        .await?;
    }
    for table in &tables {
        copy_table(&snapshot, &tx, table, &pg_types, progress).await?;
    }
    for table in &tables {
        tx.batch_execute(&format!(
            "ALTER TABLE {} ENABLE TRIGGER USER",
            quote_ident(&table.name)
        ))
        .await?;
    }
    reset_identities(&tx).await?;
    tx.commit().await?;

    let mut counts = Vec::with_capacity(tables.len());
    for table in &tables {
        let sql = format!("SELECT count(*) FROM {}", quote_ident(&table.name));
        let sqlite_rows: i64 = snapshot.query_row(&sql, [], |r| r.get(0))?;
        let pg_rows: i64 = client.query_one(&sql, &[]).await?.get(0);
        counts.push(TableCount {
            table: table.name.clone(),
            sqlite: sqlite_rows,
            postgres: pg_rows,
        });
    }
    counts.sort_by(|a, b| a.table.cmp(&b.table));
    Ok(CopyReport {
        target: pg.target().to_string(),
        tables: counts,
    })
}

/// Any relation outside PostgreSQL's own schemas makes the database non-empty.
async fn refuse_non_empty(pg: &PgStore) -> Result<(), CopyError> {
    let client = pg.client().await?;
    let rows = client
        .query(
            "SELECT n.nspname || '.' || c.relname
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
                AND n.nspname NOT IN ('pg_catalog', 'information_schema')
                AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
              ORDER BY 1",
            &[],
        )
        .await?;
    if let Some(first) = rows.first() {
        return Err(CopyError::NotEmpty {
            target: pg.target().to_string(),
            count: rows.len() as i64,
            example: first.get(0),
        });
    }
    Ok(())
}

/// The store's tables with their columns and the tables they reference.
fn sqlite_tables(conn: &Connection) -> Result<Vec<Table>, CopyError> {
    let mut stmt = conn.prepare(
        "SELECT name FROM sqlite_master
          WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
    )?;
    let names = stmt
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    let mut tables = Vec::with_capacity(names.len());
    for name in names {
        let columns = conn
            .prepare("SELECT name FROM pragma_table_info(?1) ORDER BY cid")?
            .query_map([&name], |r| r.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        let references = conn
            .prepare("SELECT DISTINCT \"table\" FROM pragma_foreign_key_list(?1)")?
            .query_map([&name], |r| r.get::<_, String>(0))?
            .collect::<Result<BTreeSet<_>, _>>()?;
        tables.push(Table {
            name,
            columns,
            references,
        });
    }
    Ok(tables)
}

/// Tables in an order where each comes after the tables it references (self-references
/// aside), by name among equals, so the copy is the same every time.
fn order_by_references(tables: Vec<Table>) -> Result<Vec<Table>, CopyError> {
    let names: BTreeSet<String> = tables.iter().map(|t| t.name.clone()).collect();
    let mut pending: BTreeMap<String, Table> =
        tables.into_iter().map(|t| (t.name.clone(), t)).collect();
    let mut done: BTreeSet<String> = BTreeSet::new();
    let mut ordered = Vec::with_capacity(pending.len());
    while !pending.is_empty() {
        let ready: Vec<String> = pending
            .values()
            .filter(|t| {
                t.references
                    .iter()
                    .all(|r| r == &t.name || done.contains(r) || !names.contains(r))
            })
            .map(|t| t.name.clone())
            .collect();
        if ready.is_empty() {
            let cycle: Vec<&str> = pending.keys().map(String::as_str).collect();
            return Err(CopyError::Cycle(cycle.join(", ")));
        }
        for name in ready {
            if let Some(table) = pending.remove(&name) {
                done.insert(name);
                ordered.push(table);
            }
        }
    }
    Ok(ordered)
}

/// Every column's type in the current schema, by (table, column).
async fn postgres_columns(
    client: &impl tokio_postgres::GenericClient,
) -> Result<HashMap<(String, String), Type>, CopyError> {
    let rows = client
        .query(
            "SELECT c.relname::text, a.attname::text, a.atttypid
               FROM pg_attribute a
               JOIN pg_class c ON c.oid = a.attrelid
              WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r'
                AND a.attnum > 0 AND NOT a.attisdropped",
            &[],
        )
        .await?;
    let mut types = HashMap::with_capacity(rows.len());
    for row in rows {
        let oid: u32 = row.get(2);
        // Types outside the built-in set come back as `None`; TEXT makes coerce refuse them
        // with a clear message rather than guess.
        let ty = Type::from_oid(oid).unwrap_or(Type::UNKNOWN);
        types.insert((row.get(0), row.get(1)), ty);
    }
    Ok(types)
}

async fn copy_table(
    snapshot: &rusqlite::Transaction<'_>,
    tx: &tokio_postgres::Transaction<'_>,
    table: &Table,
    pg_types: &HashMap<(String, String), Type>,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<(), CopyError> {
    let quoted_table = quote_ident(&table.name);
    let rows: i64 =
        snapshot.query_row(&format!("SELECT count(*) FROM {quoted_table}"), [], |r| {
            r.get(0)
        })?;
    let rows = u64::try_from(rows).unwrap_or(0);
    progress(Progress::Start {
        table: &table.name,
        rows,
    });
    if rows == 0 {
        return Ok(());
    }
    let column_list = table
        .columns
        .iter()
        .map(|c| quote_ident(c))
        .collect::<Vec<_>>()
        .join(", ");
    let types: Vec<Type> = table
        .columns
        .iter()
        .map(|c| pg_types[&(table.name.clone(), c.clone())].clone())
        .collect();

    let sink = tx
        .copy_in(&format!(
            "COPY {quoted_table} ({column_list}) FROM STDIN (FORMAT binary)"
        ))
        .await?;
    let writer = BinaryCopyInWriter::new(sink, &types);
    pin_mut!(writer);

    let mut stmt = snapshot.prepare(&format!("SELECT {column_list} FROM {quoted_table}"))?;
    let mut source = stmt.query([])?;
    let mut done: u64 = 0;
    let mut batch_bytes = 0usize;
    let mut cells: Vec<Cell> = Vec::with_capacity(types.len());
    while let Some(row) = source.next()? {
        cells.clear();
        for (i, ty) in types.iter().enumerate() {
            let cell = Cell::coerce(row.get_ref(i)?, ty).map_err(|reason| CopyError::Value {
                table: table.name.clone(),
                column: table.columns[i].clone(),
                row: done + 1,
                reason,
            })?;
            batch_bytes += cell.weight();
            cells.push(cell);
        }
        let values: Vec<&(dyn ToSql + Sync)> =
            cells.iter().map(|c| c as &(dyn ToSql + Sync)).collect();
        writer.as_mut().write(&values).await?;
        done += 1;
        if done.is_multiple_of(BATCH_ROWS) || batch_bytes >= BATCH_BYTES {
            batch_bytes = 0;
            progress(Progress::Rows {
                table: &table.name,
                done,
                rows,
            });
        }
    }
    writer.finish().await?;
    progress(Progress::Rows {
        table: &table.name,
        done,
        rows,
    });
    Ok(())
}

/// Restarts every identity sequence after the largest id its table now holds, so the next
/// row made in PostgreSQL does not collide with a copied one.
async fn reset_identities(tx: &tokio_postgres::Transaction<'_>) -> Result<(), CopyError> {
    let rows = tx
        .query(
            "SELECT table_name::text, column_name::text FROM information_schema.columns
              WHERE table_schema = current_schema() AND is_identity = 'YES'
                AND table_name <> $1",
            &[&VERSION_TABLE],
        )
        .await?;
    for row in rows {
        let (table, column): (String, String) = (row.get(0), row.get(1));
        let (qt, qc) = (quote_ident(&table), quote_ident(&column));
        tx.execute(
            &format!(
                "SELECT setval(pg_get_serial_sequence($1, $2),
                               coalesce((SELECT max({qc}) FROM {qt}), 0) + 1, false)"
            ),
            &[&qt, &column],
        )
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(name: &str, refs: &[&str]) -> Table {
        Table {
            name: name.into(),
            columns: vec![],
            references: refs.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn tables_come_after_what_they_reference() {
        let ordered = order_by_references(vec![
            table("events", &["issues", "projects"]),
            table("issues", &["projects", "issues"]),
            table("organizations", &[]),
            table("projects", &["organizations"]),
        ])
        .unwrap();
        let names: Vec<_> = ordered.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["organizations", "projects", "issues", "events"]);
    }

    #[test]
    fn a_cycle_is_reported_with_its_tables() {
        let err = order_by_references(vec![table("a", &["b"]), table("b", &["a"])]).unwrap_err();
        assert!(err.to_string().contains("a, b"), "{err}");
    }
}
