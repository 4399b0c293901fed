//! How event payloads are kept on disk: zstd-compressed BLOBs.
//!
//! An error event is mostly repetitive JSON (frame paths, context lines, SDK names): compressed
//! alone, one is a third to a fifth of its size. Rows written before payloads were compressed hold the
//! payload as uncompressed TEXT; SQLite keeps each value's own type, so [`decode`] tells the
//! two apart by that type and old rows read as before, without a rewrite.
//!
//! Stack frames are not stored a second time: an event whose stored payload still has its
//! exception gets an empty `frames` column, and [`frames_of`] derives them from the payload
//! when suspect commits or the API ask. Only a payload trimmed down past its exception
//! (`core::issue::MAX_STORED_EVENT`) keeps its frames in the column.

use rusqlite::types::ValueRef;

/// zstd level 3 (its default): about 20 µs for a 5 KB event, within a few percent of the
/// higher levels' ratio on JSON this small.
const LEVEL: i32 = 3;

/// The largest payload [`decode`] inflates (stored payloads are at most 64 KiB).
const MAX_DECODED: usize = 4 << 20;

thread_local! {
    /// A compression context per thread, reused: creating one allocates and clears about a
    /// megabyte of tables, which cost more than compressing the event (perf under
    /// benches/ingest.rs: `ZSTD_createCCtx` was the daemon's costliest function, with the
    /// allocator's large-block churn behind it).
    static COMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Compressor<'static>>> =
        const { std::cell::RefCell::new(None) };
}

/// The BLOB stored for a payload.
pub fn encode(json: &[u8]) -> Vec<u8> {
    // Compressing from memory into memory cannot fail but for allocation; keep the bytes
    // uncompressed then rather than lose the event (decode reads both).
    let compressed = COMPRESSOR.with(|cell| {
        let mut slot = cell.try_borrow_mut().ok()?;
        if slot.is_none() {
            *slot = zstd::bulk::Compressor::new(LEVEL).ok();
        }
        slot.as_mut()?.compress(json).ok()
    });
    compressed.unwrap_or_else(|| json.to_vec())
}

/// The payload's JSON text from a stored `data` value: a BLOB is zstd (or, should compression
/// have failed, the raw JSON), TEXT is a row from before compression.
pub fn decode(value: ValueRef<'_>) -> String {
    match value {
        ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
        ValueRef::Blob(b) => match zstd::bulk::decompress(b, MAX_DECODED) {
            Ok(json) => String::from_utf8(json)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
            Err(_) => String::from_utf8_lossy(b).into_owned(),
        },
        _ => "{}".into(),
    }
}

/// The `frames` column of an event: as stored, or derived from its payload when empty.
pub fn frames_of(column: String, data: &str) -> String {
    if !column.is_empty() {
        return column;
    }
    let frames = serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(data)
        .ok()
        .and_then(|map| crate::model::event::Event::from_json(&map).ok())
        .map(|event| event.frames)
        .unwrap_or_default();
    serde_json::to_string(&frames).unwrap_or_else(|_| "[]".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_reads_old_text_rows() {
        let json = br#"{"exception":{"values":[{"type":"E","stacktrace":{"frames":[{"filename":"a.py","lineno":3}]}}]}}"#;
        let blob = encode(json);
        let text = decode(ValueRef::Blob(&blob));
        assert_eq!(text.as_bytes(), json);
        assert_eq!(decode(ValueRef::Text(json)).as_bytes(), json);
        assert_eq!(
            frames_of(String::new(), &text),
            r#"[{"filename":"a.py","lineno":3}]"#
        );
        assert_eq!(frames_of("[]".into(), &text), "[]");
    }
}
