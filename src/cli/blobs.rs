//! `shiplog blobs`: where artifact bytes live (store::blob_store). Works on the data dir
//! directly, daemon running or not.

use std::io::Write;
use std::process::ExitCode;

use clap::Subcommand;

use super::CliError;
use crate::config::Config;
use crate::store::Store;
use crate::store::blob_store::{self, BlobStore, BlobUrl};

#[derive(Debug, Subcommand)]
pub enum BlobsCommand {
    /// Move every stored blob to another backend (db, file:///path or s3://bucket/prefix),
    /// with progress; the daemon keeps serving meanwhile. Then set `storage.blobs` to the same
    /// URL so new bytes go there too.
    Migrate {
        /// Where to: db | file:///path | s3://bucket/prefix (s3 settings from `storage.s3`).
        #[arg(long, value_name = "URL")]
        to: String,
    },
}

pub fn run(config: &Config, cmd: &BlobsCommand) -> Result<ExitCode, CliError> {
    match cmd {
        BlobsCommand::Migrate { to } => {
            let url = BlobUrl::parse(to).map_err(CliError::Usage)?;
            let store = Store::open_dir(&config.data_dir())?;
            store.use_blob_store(
                BlobStore::from_config(&config.storage)
                    .map_err(|e| CliError::Usage(format!("storage.blobs: {e}")))?,
            );
            let mut err = std::io::stderr();
            let mut last_percent = None;
            let done = blob_store::migrate(&store, &url, &mut |p| {
                let percent = (p.moved * 100).checked_div(p.total).unwrap_or(100);
                if last_percent != Some(percent) {
                    last_percent = Some(percent);
                    let _ = writeln!(
                        err,
                        "moved {}/{} blobs ({} bytes) to {url} ({percent}%)",
                        p.moved, p.total, p.bytes
                    );
                }
            })?;
            println!("moved {} blobs ({} bytes) to {url}", done.moved, done.bytes);
            if BlobUrl::parse(&config.storage.blobs).ok().as_ref() != Some(&url) {
                eprintln!(
                    "note: storage.blobs is {:?}: new bytes still go there until it is set to {url} (and the daemon restarted)",
                    config.storage.blobs
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
