//! The verify step: every entry of a bundle stored whole, read once after its assemble.
//!
//! A bundle stored whole is indexed from its manifest and zip directory; [`verify_bundle`]
//! then inflates each entry, checks its CRC-32 and size and records its sha1, or withdraws the
//! bundle. An upload's 1 MiB chunks are rewritten cut at the entries in the same pass. Entries
//! whose blobs an earlier verify step already inflated (the same file in another release's
//! bundle) are recalled from `blob_entry_digests` instead of read again.

use std::collections::HashMap;
use std::io::Read;

use futures_util::future::BoxFuture;
use rusqlite::Transaction;
use serde::{Deserialize, Serialize};

use super::{
    AssembleError, AssembleEvent, Bundle, STREAM_PIECE, digest, entry_offsets, is_aligned,
    open_bundle,
};
use crate::pipeline::{self, Event, Handler, HandlerError};
use crate::store::artifacts as rows;
use crate::store::blobs::{self, BlobReader, ChunkSink};
use crate::store::entry_digests::{self, EntryFacts};
use crate::store::{Store, StoreError, inbox};

/// What [`verify_bundle`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verified {
    /// Every entry inflated, matched its CRC-32 and its declared size; the index now has each
    /// entry's sha1.
    Sound,
    /// The bundle is gone, holds another file now, or was verified already: nothing to do.
    Superseded,
    /// An entry is corrupt: the bundle and everything pointing into it were removed.
    Withdrawn(String),
}

/// Reads every entry of the bundle in `artifact_bundles` row `bundle_row` (stored as file
/// `file_id`) front to back: inflates it, checks its CRC-32 and its size against the zip's
/// directory, and hashes it (or recalls all that, for an entry whose blobs an earlier verify
/// step read and nothing else needs this pass over); with `checksum`, the same pass checks the whole bundle's sha1
/// (an upload's announced checksum). Then, in one transaction, either records each entry's size and
/// sha1 in the release's artifact index and marks the bundle verified, or withdraws the bundle
/// and calls `on_withdraw` with the reason (to report it where the bundle came from).
/// Blocking: call it from a blocking thread.
pub fn verify_bundle(
    store: &Store,
    bundle_row: i64,
    file_id: i64,
    checksum: Option<&str>,
    on_withdraw: &dyn Fn(&Transaction<'_>, &str) -> Result<(), StoreError>,
) -> Result<Verified, StoreError> {
    let bs = store.blob_store();
    let now = crate::core::now();
    let found = store.read_blocking(|conn| {
        let Some(bundle) = rows::unverified_bundle(conn, bundle_row, file_id)? else {
            return Ok::<_, StoreError>(None);
        };
        let named = blobs::parts_with_sha1(conn, file_id)?;
        let parts: Vec<blobs::Part> = named.iter().map(|(p, _)| *p).collect();
        // An upload's blobs are sentry-cli's 1 MiB chunks, which do not line up with the
        // entries: the same pass writes the bundle anew cut at each entry (a drop's already
        // is), so its files are stored once whichever bundle brings them again.
        let cuts = entry_offsets(BlobReader::new(conn, &bs, parts.clone()));
        let len = parts.last().map_or(0, |p| p.offset + p.size);
        let aligned = is_aligned(&parts, &cuts);
        let stored_spans = if aligned {
            let layout: Vec<_> = named
                .iter()
                .map(|(p, sha1)| (p.offset, p.size, p.blob_id, sha1.as_str()))
                .collect();
            entry_spans(&layout, &cuts)
        } else {
            HashMap::new()
        };
        // Entries whose blobs an earlier verify step inflated are not read again. Only when
        // nothing else needs every byte to pass (a realignment, an upload's checksum).
        let recall = aligned && checksum.is_none();
        let known = |at: u64, facts: &EntryFacts| -> Option<String> {
            let (blobs, _) = stored_spans.get(&at).filter(|_| recall)?;
            // A failed lookup only costs the read it would have saved.
            entry_digests::get(conn, blobs, facts).ok().flatten()
        };
        let mut reader = BlobReader::new(conn, &bs, parts.clone());
        if checksum.is_some() {
            reader = reader.digesting();
        }
        if !aligned {
            let sink = ChunkSink::new(store, bundle.org_id, &now)
                .without_digest()
                .cut_at(cuts.clone());
            reader = reader.realigning(sink);
        }
        let outcome = open_bundle(reader).and_then(|mut zip| {
            let entries = digest_entries(&mut zip, &known);
            let (digest, realigned) = zip
                .into_inner()
                .finish()
                .map_err(|e| AssembleError::Store(StoreError::Task(e.to_string())))?;
            // A checksum mismatch explains any other failure, so it is reported first.
            if let Some(expected) = checksum {
                let actual = digest.unwrap_or_default();
                if !actual.eq_ignore_ascii_case(expected) {
                    return Err(AssembleError::Checksum(format!(
                        "Reported checksum mismatch: the chunks hash to {actual}, the request says {expected}"
                    )));
                }
            }
            entries.map(|e| (e, realigned.filter(|r| r.size == len)))
        });
        // Where each entry's blobs will be once verified, to remember what they inflate to.
        Ok(Some(outcome.map(|(entries, realigned)| {
            let spans = match &realigned {
                Some(r) => {
                    let layout: Vec<_> = blobs::parts_of(&r.blobs)
                        .iter()
                        .zip(&r.blobs)
                        .map(|(p, b)| (p.offset, p.size, b.id, b.sha1.as_str()))
                        .collect();
                    entry_spans(&layout, &cuts)
                }
                None => stored_spans,
            };
            (entries, realigned, spans)
        })))
    })?;
    let Some(result) = found else {
        return Ok(Verified::Superseded);
    };
    let tally = result.as_ref().ok().map(|(entries, _, _)| {
        entries
            .iter()
            .fold((0, 0), |(read, recalled), e| match e.read {
                Some(_) => (read + e.size, recalled),
                None => (read, recalled + e.size),
            })
    });
    let verified = store.write_blocking(|tx| {
        if rows::unverified_bundle(tx, bundle_row, file_id)?.is_none() {
            return Ok(Verified::Superseded);
        }
        match result {
            Ok((entries, realigned, spans)) => {
                if let Some(r) = realigned {
                    blobs::replace_parts(tx, file_id, &r.blobs)?;
                }
                for e in &entries {
                    rows::set_entry_digest(tx, bundle_row, &e.path, e.size, &e.sha1)?;
                    // Remember what the entry's blobs inflate to when they hold all of it (its
                    // local header and every compressed byte): a later bundle holding the
                    // same blobs needs no read to know it.
                    if let Some(read) = &e.read
                        && let Some((blobs, end)) = spans.get(&read.header_start)
                        && read.data_end <= *end
                    {
                        entry_digests::put(tx, blobs, &read.facts, &e.sha1)?;
                    }
                }
                rows::set_bundle_verified(tx, bundle_row, &crate::core::now())?;
                Ok(Verified::Sound)
            }
            Err(AssembleError::Store(e)) => Err(e),
            Err(e) => {
                let reason = e.to_string();
                rows::withdraw_bundle(tx, bundle_row)?;
                on_withdraw(tx, &reason)?;
                Ok(Verified::Withdrawn(reason))
            }
        }
    })?;
    if let (Verified::Sound, Some((read, recalled))) = (&verified, tally) {
        crate::metrics::verify_bytes(read, recalled);
    }
    Ok(verified)
}

/// One file entry of a bundle, as the verify step read it or recalled it.
struct EntryDigest {
    path: String,
    size: u64,
    sha1: String,
    /// Set when the entry was read (not recalled): where it sits, to remember it by its blob.
    read: Option<EntryRead>,
}

/// Where a read entry's bytes sit in the bundle, with the directory's facts they matched.
struct EntryRead {
    header_start: u64,
    /// One past its last compressed byte.
    data_end: u64,
    facts: EntryFacts,
}

/// Every file entry, read in the order the bytes sit in the bundle: inflated, checked against
/// its CRC-32 and declared size, and hashed, unless `known` recalls its sha1 from where its
/// local header starts and its directory facts.
fn digest_entries(
    zip: &mut Bundle<'_>,
    known: &dyn Fn(u64, &EntryFacts) -> Option<String>,
) -> Result<Vec<EntryDigest>, AssembleError> {
    let mut order = Vec::with_capacity(zip.len());
    for i in 0..zip.len() {
        let entry = zip
            .by_index_data(i)
            .map_err(|e| AssembleError::InvalidBundle(e.to_string()))?;
        if !entry.is_dir() {
            order.push((entry.header_start(), i));
        }
    }
    order.sort_unstable();
    let mut buf = vec![0u8; STREAM_PIECE * 4];
    let mut out = Vec::with_capacity(order.len());
    for (header_start, i) in order {
        let (path, facts) = {
            let entry = zip
                .by_index_data(i)
                .map_err(|e| AssembleError::InvalidBundle(e.to_string()))?;
            let path = entry
                .name()
                .map_err(|e| AssembleError::InvalidBundle(e.to_string()))?
                .to_string();
            let facts = EntryFacts {
                method: format!("{:?}", entry.compression()),
                compressed_size: entry.compressed_size(),
                size: entry.size(),
                crc32: entry.crc32(),
            };
            (path, facts)
        };
        if let Some(sha1) = known(header_start, &facts) {
            out.push(EntryDigest {
                path,
                size: facts.size,
                sha1,
                read: None,
            });
            continue;
        }
        let mut entry = zip
            .by_index(i)
            .map_err(|e| AssembleError::InvalidBundle(e.to_string()))?;
        let declared = facts.size;
        // The zip reader checks the CRC-32 when the entry ends; read one byte past the declared
        // size so an entry that inflates to more is caught too.
        let (size, sha1) = digest(&mut (&mut entry).take(declared + 1), &mut buf, &path)?;
        if size != declared {
            return Err(AssembleError::Checksum(format!(
                "{path} inflates to {size} bytes, the zip directory says {declared}"
            )));
        }
        let read = entry.data_start().map(|start| EntryRead {
            header_start,
            data_end: start.saturating_add(facts.compressed_size),
            facts,
        });
        out.push(EntryDigest {
            path,
            size,
            sha1,
            read,
        });
    }
    Ok(out)
}

/// The verify step of a bundle assembled from an upload; a corrupt entry turns the upload's
/// assemble state to `error` with the reason, for clients that poll again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyEvent {
    pub bundle_row: i64,
    pub file_id: i64,
    pub assemble: AssembleEvent,
}

impl Event for VerifyEvent {
    const KIND: &'static str = "artifacts.verify";
    // One per assemble attempt (row ids can be reused once a withdrawn bundle is deleted).
    fn idempotency_key(&self) -> String {
        self.assemble.idempotency_key()
    }
}

/// Applies [`VerifyEvent`]s.
pub struct VerifyHandler {
    pub store: Store,
}

impl Handler for VerifyHandler {
    fn handle<'a>(&'a self, entry: &'a inbox::Entry) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            let event: VerifyEvent = pipeline::decode(entry)?;
            let store = self.store.clone();
            tokio::task::spawn_blocking(move || {
                let a = &event.assemble;
                let on_withdraw = |tx: &Transaction<'_>, reason: &str| {
                    rows::set_assemble_state(
                        tx,
                        a.org_id,
                        a.task.as_str(),
                        &a.request.checksum,
                        a.generation,
                        "error",
                        Some(reason),
                        &crate::core::now(),
                    )
                };
                // A drop's checksum was computed from its bytes; an upload's was announced.
                let checksum =
                    (!a.request.checksum_verified).then_some(a.request.checksum.as_str());
                let verified = verify_bundle(
                    &store,
                    event.bundle_row,
                    event.file_id,
                    checksum,
                    &on_withdraw,
                )?;
                if let Verified::Withdrawn(reason) = &verified {
                    tracing::warn!(checksum = %a.request.checksum, error = %reason, "artifact bundle withdrawn: an entry is corrupt");
                }
                Ok(())
            })
            .await
            .map_err(|e| HandlerError::Retry(format!("verify task failed: {e}")))?
        })
    }
}

/// The blobs holding each entry of a bundle cut at its entries: for each cut that starts a
/// blob, the blobs from there to the next cut, named by the sha1 of their sha1s, with the
/// offset they end at. `layout` is `(offset, size, blob id, sha1)` per blob, in file order.
fn entry_spans(
    layout: &[(u64, u64, i64, &str)],
    cuts: &[u64],
) -> HashMap<u64, (entry_digests::EntryBlobs, u64)> {
    use sha1::{Digest, Sha1};
    let mut cuts = cuts.to_vec();
    cuts.sort_unstable();
    cuts.dedup();
    let starts: HashMap<u64, usize> = layout.iter().enumerate().map(|(i, b)| (b.0, i)).collect();
    let mut out = HashMap::new();
    for pair in cuts.windows(2) {
        let (start, next) = (pair[0], pair[1]);
        let Some(&first) = starts.get(&start) else {
            continue;
        };
        let mut hasher = Sha1::new();
        let mut end = start;
        for &(offset, size, _, sha1) in layout[first..].iter() {
            if end >= next {
                break;
            }
            hasher.update(sha1.as_bytes());
            hasher.update(b",");
            end = offset + size;
        }
        if end == next {
            let blobs = entry_digests::EntryBlobs {
                digest: hex::encode(hasher.finalize()),
                first_blob: layout[first].2,
            };
            out.insert(start, (blobs, end));
        }
    }
    out
}
