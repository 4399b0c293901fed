//! One SQLite value on its way into a PostgreSQL column.
//!
//! SQLite stores whatever a row was given (a column's type is only an affinity), PostgreSQL
//! stores exactly the column's type. [`Cell::coerce`] decides, per value and target type,
//! whether the value fits and how; a value that does not fit is an error naming the table,
//! column and row, not a silently changed value.

use bytes::BytesMut;
use rusqlite::types::ValueRef;
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};

/// The first bytes of a zstd frame.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// A value already converted to its PostgreSQL column's type.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Int8(i64),
    Int4(i32),
    Int2(i16),
    Bool(bool),
    Float8(f64),
    Text(String),
    Bytes(Vec<u8>),
}

impl Cell {
    /// Converts an SQLite value for a PostgreSQL column of type `ty`; `Err` says why it does
    /// not fit.
    pub fn coerce(value: ValueRef<'_>, ty: &Type) -> Result<Cell, String> {
        let text_types = [Type::TEXT, Type::VARCHAR, Type::BPCHAR, Type::NAME];
        Ok(match value {
            ValueRef::Null => Cell::Null,
            ValueRef::Integer(v) => match *ty {
                Type::INT8 => Cell::Int8(v),
                Type::INT4 => Cell::Int4(
                    i32::try_from(v).map_err(|_| format!("{v} does not fit an integer"))?,
                ),
                Type::INT2 => Cell::Int2(
                    i16::try_from(v).map_err(|_| format!("{v} does not fit a smallint"))?,
                ),
                Type::BOOL => Cell::Bool(v != 0),
                Type::FLOAT8 => Cell::Float8(v as f64),
                ref t if text_types.contains(t) => Cell::Text(v.to_string()),
                ref t => return Err(format!("an integer cannot be stored as {t}")),
            },
            ValueRef::Real(v) => match *ty {
                Type::FLOAT8 => Cell::Float8(v),
                ref t if text_types.contains(t) => Cell::Text(v.to_string()),
                ref t => return Err(format!("a real number cannot be stored as {t}")),
            },
            ValueRef::Text(bytes) => {
                let text = std::str::from_utf8(bytes)
                    .map_err(|_| "text is not valid UTF-8".to_string())?;
                match *ty {
                    ref t if text_types.contains(t) => {
                        // PostgreSQL text cannot hold NUL; SQLite's can.
                        if text.contains('\0') {
                            return Err("text contains a NUL character".to_string());
                        }
                        Cell::Text(text.to_string())
                    }
                    Type::INT8 => Cell::Int8(
                        text.trim()
                            .parse()
                            .map_err(|_| format!("text {text:?} is not an integer"))?,
                    ),
                    Type::BYTEA => Cell::Bytes(bytes.to_vec()),
                    ref t => return Err(format!("text cannot be stored as {t}")),
                }
            }
            ValueRef::Blob(bytes) => match *ty {
                Type::BYTEA => Cell::Bytes(bytes.to_vec()),
                ref t if text_types.contains(t) => match std::str::from_utf8(bytes) {
                    Ok(text) if !text.contains('\0') => Cell::Text(text.to_string()),
                    // An event payload SQLite keeps zstd-compressed in its TEXT column
                    // (store::payload): PostgreSQL gets the text, which it compresses itself
                    // (TOAST).
                    _ if bytes.starts_with(&ZSTD_MAGIC) => {
                        let text = crate::store::payload::decode(ValueRef::Blob(bytes));
                        if text.contains('\0') {
                            return Err("text contains a NUL character".to_string());
                        }
                        Cell::Text(text)
                    }
                    _ => return Err(format!("a binary value cannot be stored as {t}")),
                },
                ref t => return Err(format!("a binary value cannot be stored as {t}")),
            },
        })
    }

    /// Bytes this value adds to a batch (for batching by size as well as by rows).
    pub fn weight(&self) -> usize {
        match self {
            Cell::Text(s) => s.len(),
            Cell::Bytes(b) => b.len(),
            _ => 8,
        }
    }
}

impl ToSql for Cell {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Cell::Null => Ok(IsNull::Yes),
            Cell::Int8(v) => v.to_sql(ty, out),
            Cell::Int4(v) => v.to_sql(ty, out),
            Cell::Int2(v) => v.to_sql(ty, out),
            Cell::Bool(v) => v.to_sql(ty, out),
            Cell::Float8(v) => v.to_sql(ty, out),
            Cell::Text(v) => v.to_sql(ty, out),
            Cell::Bytes(v) => v.to_sql(ty, out),
        }
    }

    // The type was checked when the cell was made ([`Cell::coerce`]).
    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_go_into_integer_columns_and_are_range_checked() {
        assert_eq!(
            Cell::coerce(ValueRef::Integer(1 << 40), &Type::INT8),
            Ok(Cell::Int8(1 << 40))
        );
        assert!(Cell::coerce(ValueRef::Integer(1 << 40), &Type::INT4).is_err());
        assert_eq!(
            Cell::coerce(ValueRef::Integer(2), &Type::BOOL),
            Ok(Cell::Bool(true))
        );
    }

    #[test]
    fn sqlite_affinity_leftovers_are_converted_or_refused() {
        // A number stored in a TEXT column (SQLite allows it) is text in PostgreSQL.
        assert_eq!(
            Cell::coerce(ValueRef::Integer(7), &Type::TEXT),
            Ok(Cell::Text("7".into()))
        );
        assert_eq!(
            Cell::coerce(ValueRef::Text(b" 42"), &Type::INT8),
            Ok(Cell::Int8(42))
        );
        assert!(Cell::coerce(ValueRef::Text(b"v1"), &Type::INT8).is_err());
        assert!(Cell::coerce(ValueRef::Text(b"a\0b"), &Type::TEXT).is_err());
        assert!(Cell::coerce(ValueRef::Blob(&[0xff, 0xfe]), &Type::TEXT).is_err());
        // A compressed event payload (store::payload) is its JSON text in PostgreSQL.
        let payload = crate::store::payload::encode(br#"{"event_id":"e1"}"#);
        assert_eq!(
            Cell::coerce(ValueRef::Blob(&payload), &Type::TEXT),
            Ok(Cell::Text(r#"{"event_id":"e1"}"#.into()))
        );
        assert_eq!(
            Cell::coerce(ValueRef::Blob(&[1, 2]), &Type::BYTEA),
            Ok(Cell::Bytes(vec![1, 2]))
        );
        assert_eq!(Cell::coerce(ValueRef::Null, &Type::BYTEA), Ok(Cell::Null));
    }
}
