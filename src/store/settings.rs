//! Instance settings the daemon records for code that has no config at hand (`settings`).

use rusqlite::{Connection, OptionalExtension, params};

use super::StoreError;

/// The URL the daemon answers at (its issues' permalinks start with it).
pub const PUBLIC_URL: &str = "public_url";

pub fn get(conn: &Connection, key: &str) -> Result<Option<String>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT value FROM settings WHERE key = ?1")?
        .query_row([key], |r| r.get(0))
        .optional()?)
}

pub fn set(conn: &Connection, key: &str, value: &str) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO settings (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )?
    .execute(params![key, value])?;
    Ok(())
}
