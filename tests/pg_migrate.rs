//! `shiplog migrate --to postgres://...`: a store made by a real daemon (releases, commits, a
//! deploy, events and their issue, an artifact bundle's chunks, the token) is copied into a
//! real PostgreSQL, every table's rows are there with their values and ids, and new rows get
//! fresh ids. A database that is not empty is refused with one line saying what to do.

mod common;

use std::collections::BTreeMap;

use common::artifacts::{assemble_until_done, bundle, manifest, noise, sha1_hex, upload};
use common::events::{dsn, error_event, send_and_find};
use common::postgres::{PgCluster, count, execute, query};
use common::{Daemon, stderr, stdout};
use serde_json::json;

/// Every table of the daemon's SQLite store with its row count.
fn sqlite_counts(d: &Daemon) -> BTreeMap<String, i64> {
    let db = d.db();
    let tables: Vec<String> = db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite%'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    tables
        .into_iter()
        .map(|t| {
            let n = db
                .query_row(&format!("SELECT count(*) FROM \"{t}\""), [], |r| r.get(0))
                .unwrap();
            (t, n)
        })
        .collect()
}

fn commit(id: &str, ts: &str, message: &str) -> serde_json::Value {
    json!({
        "repository": "acme/app",
        "author_name": "Dev One",
        "author_email": "dev@acme.test",
        "timestamp": ts,
        "message": message,
        "id": id,
        "patch_set": [{"path": "src/app.js", "type": "M"}],
    })
}

/// Makes a store with a bit of everything through the daemon's API.
fn populate(d: &Daemon) {
    for version in ["1.0.0", "1.1.0"] {
        let (status, body) = d.api(
            "POST",
            "organizations/acme/releases/",
            Some(json!({"version": version, "projects": ["web"]})),
        );
        assert_eq!(status, 201, "{body}");
    }
    let (status, body) = d.api(
        "PUT",
        "organizations/acme/releases/1.1.0/",
        Some(json!({"commits": [
            commit(&"a".repeat(40), "2024-01-02T12:00:20+02:00", "Add the cart\n"),
            commit(&"b".repeat(40), "2024-01-02T12:00:25+02:00", "Fix the total\n"),
        ]})),
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = d.api(
        "POST",
        "organizations/acme/releases/1.0.0/deploys/",
        Some(json!({"environment": "production"})),
    );
    assert_eq!(status, 201, "{body}");

    let key = dsn(d, "web");
    send_and_find(
        d,
        &key,
        &error_event("ValueError", "bad total", Some("1.1.0")),
    );
    send_and_find(
        d,
        &key,
        &error_event("ValueError", "bad total", Some("1.1.0")),
    );

    // A bundle in several chunks: rows in blobs (BLOB data), files, file_blobs, bundles.
    let js = noise(7, 300_000);
    let m = manifest(
        "acme",
        Some("1.0.0"),
        &[("files/_/_/a.js", "~/a.js", "minified_source")],
    );
    let data = bundle(&m, &[("files/_/_/a.js", &js)], true);
    let body = upload(d, &data, 100_000, json!({"version": "1.0.0"}));
    let done = assemble_until_done(d, &body);
    assert_eq!(done["state"], "ok", "{done}");
}

#[test]
fn a_daemon_store_is_copied_into_postgres_with_every_row() {
    let Some(cluster) = PgCluster::start() else {
        return;
    };
    let mut d = Daemon::start();
    populate(&d);
    d.stop();
    let before = sqlite_counts(&d);
    for (table, min) in [
        ("releases", 2),
        ("commits", 2),
        ("deploys", 1),
        ("events", 2),
        ("issues", 1),
        ("blobs", 2),
        ("api_tokens", 1),
        ("project_keys", 2),
    ] {
        assert!(before[table] >= min, "{table}: {before:?}");
    }

    // The server's own reason, not just "db error".
    let out = d.shiplog(&["migrate", "--to", &cluster.url("nosuch")]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("database \"nosuch\" does not exist"),
        "{}",
        stderr(&out)
    );

    let url = cluster.create_db();
    let out = d.shiplog(&["migrate", "--to", &url]);
    assert!(
        out.status.success(),
        "migrate failed: {}{}",
        stdout(&out),
        stderr(&out)
    );
    let printed = stdout(&out);
    assert!(printed.contains("TABLE"), "{printed}");
    assert!(printed.contains("copied"), "{printed}");
    assert!(!printed.contains("MISMATCH"), "{printed}");

    // Every table, same count, and the table printed it.
    for (table, rows) in &before {
        assert_eq!(
            count(&url, &format!("SELECT count(*) FROM \"{table}\"")),
            *rows,
            "{table}"
        );
        let line = printed
            .lines()
            .find(|l| l.split_whitespace().next() == Some(table.as_str()))
            .unwrap_or_else(|| panic!("no line for {table} in:\n{printed}"));
        let cells: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(
            cells,
            [table.as_str(), &rows.to_string(), &rows.to_string(), "ok"]
        );
    }

    // Values and ids, not just counts.
    let db = d.db();
    let sqlite_releases: Vec<(i64, String, i64)> = db
        .prepare("SELECT id, version, commit_count FROM releases ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let pg_releases: Vec<(i64, String, i64)> = query(
        &url,
        "SELECT id, version, commit_count FROM releases ORDER BY id",
    )
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2)))
    .collect();
    assert_eq!(pg_releases, sqlite_releases);
    assert_eq!(pg_releases[1].2, 2, "1.1.0 has its two commits");
    let messages: Vec<String> = query(&url, "SELECT message FROM commits ORDER BY key")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(messages, ["Add the cart\n", "Fix the total\n"]);
    let sqlite_keys: Vec<String> = db
        .prepare("SELECT public_key FROM project_keys ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let pg_keys: Vec<String> = query(&url, "SELECT public_key FROM project_keys ORDER BY id")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        pg_keys, sqlite_keys,
        "the DSN keys survive (the trigger was off)"
    );
    assert_eq!(
        count(&url, "SELECT times_seen FROM issues"),
        2,
        "the issue counts both events"
    );
    // Chunks arrive byte for byte.
    for row in query(&url, "SELECT sha1, size, data FROM blobs") {
        let (sha1, size, data): (String, i64, Vec<u8>) = (row.get(0), row.get(1), row.get(2));
        assert_eq!(sha1_hex(&data), sha1);
        assert_eq!(data.len() as i64, size);
    }

    // The identity sequences continue after the copied ids.
    let max_id = count(&url, "SELECT max(id) FROM releases");
    execute(
        &url,
        "INSERT INTO releases (org_id, version, date_added) VALUES (1, '9.9.9', 'now')",
    );
    assert_eq!(
        count(&url, "SELECT id FROM releases WHERE version = '9.9.9'"),
        max_id + 1
    );

    // A second copy into the same database is refused, with one line saying what to do.
    let out = d.shiplog(&["migrate", "--to", &url]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("is not empty"), "{err}");
    assert!(err.contains("createdb"), "{err}");
}

#[test]
fn migrate_says_what_is_wrong_with_the_target() {
    let mut d = Daemon::start();
    d.stop();
    let out = d.shiplog(&["migrate", "--to", "mysql://root@localhost/shiplog"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("postgres:// URL"), "{}", stderr(&out));

    // Port 1 on loopback: nothing listens there.
    let out = d.shiplog(&["migrate", "--to", "postgres://postgres@127.0.0.1:1/shiplog"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("cannot connect to PostgreSQL at postgres@127.0.0.1:1/shiplog"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

/// Runs the CLI on a bare data dir (no daemon, embedded defaults).
fn shiplog_on(data_dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_shiplog"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("SHIPLOG_CONFIG")
        .env_remove("SHIPLOG_DATA_DIR")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run shiplog")
}

#[test]
fn a_copy_that_fails_leaves_the_database_empty_and_can_be_run_again() {
    let Some(cluster) = PgCluster::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = shiplog_on(&data, &["token", "create", "--name", "ci"]);
    assert!(out.status.success(), "{}", stderr(&out));
    // SQLite keeps bytes that are not UTF-8 in a TEXT column; PostgreSQL's text cannot.
    let db = rusqlite::Connection::open(data.join("shiplog.sqlite3")).unwrap();
    db.execute("UPDATE api_tokens SET name = X'fffe'", [])
        .unwrap();

    let url = cluster.create_db();
    let out = shiplog_on(&data, &["migrate", "--to", &url]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains(
            "cannot copy api_tokens.name of row 1: a binary value cannot be stored as text"
        ),
        "{err}"
    );
    assert_eq!(
        count(
            &url,
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        ),
        0,
        "the schema was rolled back with the rows"
    );

    db.execute("UPDATE api_tokens SET name = 'ci'", []).unwrap();
    let out = shiplog_on(&data, &["migrate", "--to", &url]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        count(&url, "SELECT count(*) FROM api_tokens WHERE name = 'ci'"),
        1
    );
}
