//! `shiplog migrate --to postgres://...`: copies the data dir's SQLite store into an empty
//! PostgreSQL database and checks every table's row count (`store::postgres::copy`).
//!
//! Stop the daemon first: the copy reads one consistent snapshot, so what the daemon writes
//! after it started is not in PostgreSQL.

use std::io::Write;
use std::process::ExitCode;

use clap::Args;

use super::{CliError, output};
use crate::config::Config;
use crate::store::postgres::PgStore;
use crate::store::postgres::copy::{self, CopyError, Progress};
use crate::store::{DB_FILE, Store};

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The empty PostgreSQL database to copy the store into:
    /// postgres://USER[:PASSWORD]@HOST[:PORT]/DB (TLS is not supported yet).
    #[arg(long, value_name = "URL")]
    pub to: String,
}

pub fn run(config: &Config, args: &MigrateArgs) -> Result<ExitCode, CliError> {
    if !args.to.starts_with("postgres://") && !args.to.starts_with("postgresql://") {
        return Err(CliError::Usage(
            "--to must be a postgres:// URL, e.g. postgres://shiplog@localhost/shiplog".into(),
        ));
    }
    let path = config.data_dir().join(DB_FILE);
    if !path.is_file() {
        return Err(CliError::Usage(CopyError::NoSource(path).to_string()));
    }
    if crate::daemon::runtime_info(&config.data_dir()).is_some() {
        eprintln!(
            "note: {} has a daemon.json: if the daemon is still running, what it writes from now on is not copied",
            config.data_dir().display()
        );
    }
    // Brings an older store up to this shiplog's schema, as every data-dir command does.
    drop(Store::open(&path)?);
    let pg = PgStore::connect(&args.to, 2).map_err(|e| CliError::Usage(e.to_string()))?;

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut stderr = std::io::stderr();
    let mut report_progress = |p: Progress<'_>| {
        let _ = match p {
            Progress::Start { table, rows } if rows > 0 => {
                writeln!(stderr, "copying {table} ({rows} rows)")
            }
            // Batches of a big table (by rows, or by bytes for the chunks), not the one line
            // that ends a small one.
            Progress::Rows { table, done, rows } if done < rows || rows > copy::BATCH_ROWS => {
                writeln!(stderr, "  {table}: {done}/{rows}")
            }
            _ => Ok(()),
        };
    };
    let report = runtime
        .block_on(copy::copy_sqlite_to_postgres(
            &path,
            &pg,
            &mut report_progress,
        ))
        .map_err(|e| CliError::Usage(e.to_string()))?;

    let rows: Vec<Vec<String>> = report
        .tables
        .iter()
        .map(|t| {
            vec![
                t.table.clone(),
                t.sqlite.to_string(),
                t.postgres.to_string(),
                if t.sqlite == t.postgres {
                    "ok"
                } else {
                    "MISMATCH"
                }
                .to_string(),
            ]
        })
        .collect();
    output::table(&["TABLE", "SQLITE", "POSTGRES", ""], &rows)?;
    let total: i64 = report.tables.iter().map(|t| t.postgres).sum();
    if report.counts_match() {
        output::line(&format!(
            "copied {total} rows in {} tables into {}",
            report.tables.len(),
            report.target
        ))?;
        Ok(ExitCode::SUCCESS)
    } else {
        let bad: Vec<&str> = report
            .tables
            .iter()
            .filter(|t| t.sqlite != t.postgres)
            .map(|t| t.table.as_str())
            .collect();
        Err(CliError::Usage(format!(
            "row counts differ in {}: the copy in {} is incomplete; empty that database and run migrate again",
            bad.join(", "),
            report.target
        )))
    }
}
