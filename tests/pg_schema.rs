//! PostgreSQL's schema is SQLite's: every SQLite migration has a PostgreSQL twin of the same
//! name, and after all of them both databases have the same tables, columns (types
//! normalized), primary keys, unique constraints, foreign keys, indexes and triggers.
//!
//! When this fails after adding a SQLite migration, the message lists each difference, e.g.
//! `only in SQLite: table ingest_batches column received`: write that into the PostgreSQL
//! twin (`src/store/postgres/migrations/<same name>.sql`, listed in
//! `store::postgres::MIGRATIONS`).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use common::postgres::{PgCluster, execute, query};
use shiplog::store::postgres::{MIGRATIONS, PgStore, VERSION_TABLE};

/// What a schema says, as `fact -> detail` lines that compare as text.
type Facts = BTreeMap<String, String>;

fn migration_files(dir: &str) -> BTreeSet<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.ends_with(".sql"))
        .collect()
}

#[test]
fn every_sqlite_migration_has_a_postgres_twin() {
    let sqlite = migration_files("src/store/migrations");
    let postgres = migration_files("src/store/postgres/migrations");
    let listed: BTreeSet<String> = MIGRATIONS.iter().map(|(n, _)| n.to_string()).collect();
    let mut problems = Vec::new();
    for name in sqlite.difference(&postgres) {
        problems.push(format!(
            "SQLite migration {name} has no PostgreSQL twin: write src/store/postgres/migrations/{name}"
        ));
    }
    for name in postgres.difference(&sqlite) {
        problems.push(format!(
            "src/store/postgres/migrations/{name} has no SQLite migration of that name"
        ));
    }
    for name in postgres.difference(&listed) {
        problems.push(format!(
            "src/store/postgres/migrations/{name} is not listed in store::postgres::MIGRATIONS"
        ));
    }
    let order: Vec<&str> = MIGRATIONS.iter().map(|(n, _)| *n).collect();
    let mut sorted = order.clone();
    sorted.sort();
    if order != sorted {
        problems.push(format!(
            "store::postgres::MIGRATIONS is not in file order: {order:?}"
        ));
    }
    assert!(problems.is_empty(), "\n{}\n", problems.join("\n"));
}

/// `INTEGER`/`bigint` -> integer, `TEXT` -> text, `BLOB`/`bytea` -> blob, `REAL` -> real.
fn normalize_type(ty: &str) -> String {
    let ty = ty.to_ascii_lowercase();
    match ty.as_str() {
        "integer" | "int" | "bigint" | "smallint" | "int8" | "int4" | "int2" => "integer",
        "text" | "character varying" | "varchar" => "text",
        "blob" | "bytea" => "blob",
        "real" | "double precision" | "float8" | "float4" => "real",
        other => return other.to_string(),
    }
    .to_string()
}

/// `'{}'::text` -> `'{}'`, `(0)` -> `0`.
fn normalize_default(default: Option<String>) -> String {
    let Some(mut d) = default else {
        return "none".into();
    };
    while d.starts_with('(') && d.ends_with(')') {
        d = d[1..d.len() - 1].to_string();
    }
    if let Some(cast) = d.rfind("::")
        && d[cast + 2..]
            .chars()
            .all(|c| c.is_ascii_alphabetic() || c == ' ')
    {
        d.truncate(cast);
    }
    d
}

/// `(build_number IS NOT NULL)` -> `build_number is not null`.
fn normalize_predicate(p: &str) -> String {
    p.replace(['(', ')', '"'], "")
        .to_ascii_lowercase()
        .trim()
        .to_string()
}

fn sqlite_facts(path: &Path) -> Facts {
    let conn = rusqlite::Connection::open(path).expect("open sqlite");
    let mut facts = Facts::new();
    let objects: Vec<(String, String, String, Option<String>)> = conn
        .prepare(
            "SELECT type, name, tbl_name, sql FROM sqlite_master
              WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for (kind, name, table, sql) in objects {
        match kind.as_str() {
            "table" => table_facts_sqlite(&conn, &name, &mut facts),
            "index" => {
                let Some(sql) = sql else { continue }; // a constraint's own index
                let columns: Vec<String> = conn
                    .prepare("SELECT name, \"desc\" FROM pragma_index_xinfo(?1) WHERE key = 1 ORDER BY seqno")
                    .unwrap()
                    .query_map([&name], |r| {
                        let col: String = r.get(0)?;
                        let desc: bool = r.get(1)?;
                        Ok(if desc { format!("{col} DESC") } else { col })
                    })
                    .unwrap()
                    .collect::<Result<_, _>>()
                    .unwrap();
                let unique = sql.to_ascii_uppercase().starts_with("CREATE UNIQUE");
                let predicate = sql
                    .to_ascii_uppercase()
                    .find(" WHERE ")
                    .map(|at| normalize_predicate(&sql[at + 7..]))
                    .unwrap_or_default();
                facts.insert(
                    format!("index {name}"),
                    format!(
                        "on {table} ({}) unique={unique} where={predicate}",
                        columns.join(", ")
                    ),
                );
            }
            "trigger" => {
                facts.insert(format!("trigger {name}"), format!("on {table}"));
            }
            _ => {}
        }
    }
    facts
}

fn table_facts_sqlite(conn: &rusqlite::Connection, table: &str, facts: &mut Facts) {
    facts.insert(format!("table {table}"), String::new());
    let columns: Vec<(String, String, bool, Option<String>, i64)> = conn
        .prepare("SELECT name, type, \"notnull\", dflt_value, pk FROM pragma_table_info(?1)")
        .unwrap()
        .query_map([table], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut pk: Vec<(i64, String)> = Vec::new();
    for (name, ty, notnull, default, pk_pos) in columns {
        if pk_pos > 0 {
            pk.push((pk_pos, name.clone()));
        }
        // A primary key column is NOT NULL in PostgreSQL whatever its declaration.
        let notnull = notnull || pk_pos > 0;
        facts.insert(
            format!("table {table} column {name}"),
            format!(
                "{} notnull={notnull} default={}",
                normalize_type(&ty),
                normalize_default(default)
            ),
        );
    }
    pk.sort();
    let pk: Vec<String> = pk.into_iter().map(|(_, n)| n).collect();
    facts.insert(format!("table {table} primary key"), pk.join(", "));
    let uniques: Vec<String> = conn
        .prepare("SELECT name FROM pragma_index_list(?1) WHERE origin = 'u'")
        .unwrap()
        .query_map([table], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for index in uniques {
        let cols: Vec<String> = conn
            .prepare("SELECT name FROM pragma_index_info(?1) ORDER BY seqno")
            .unwrap()
            .query_map([&index], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        facts.insert(
            format!("table {table} unique ({})", cols.join(", ")),
            String::new(),
        );
    }
    let mut fks: BTreeMap<i64, (Vec<String>, String, Vec<String>, String)> = BTreeMap::new();
    let rows: Vec<(i64, String, String, Option<String>, String)> = conn
        .prepare(
            "SELECT id, \"table\", \"from\", \"to\", on_delete FROM pragma_foreign_key_list(?1) ORDER BY id, seq",
        )
        .unwrap()
        .query_map([table], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for (id, target, from, to, on_delete) in rows {
        let fk = fks
            .entry(id)
            .or_insert_with(|| (vec![], target, vec![], on_delete.to_ascii_lowercase()));
        fk.0.push(from);
        fk.2.push(to.unwrap_or_else(|| "<primary key>".into()));
    }
    for (from, target, to, on_delete) in fks.into_values() {
        facts.insert(
            format!("table {table} foreign key ({})", from.join(", ")),
            format!(
                "references {target} ({}) on delete {on_delete}",
                to.join(", ")
            ),
        );
    }
}

fn postgres_facts(url: &str) -> Facts {
    let mut facts = Facts::new();
    let tables = query(
        url,
        "SELECT c.oid::bigint, c.relname::text FROM pg_class c
          WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r'",
    );
    for row in &tables {
        let table: String = row.get(1);
        if table == VERSION_TABLE {
            continue;
        }
        facts.insert(format!("table {table}"), String::new());
    }
    for row in query(
        url,
        "SELECT table_name::text, column_name::text, data_type::text, is_nullable = 'NO',
                column_default::text
           FROM information_schema.columns WHERE table_schema = 'public'",
    ) {
        let table: String = row.get(0);
        if table == VERSION_TABLE {
            continue;
        }
        let (column, ty, notnull, default): (String, String, bool, Option<String>) =
            (row.get(1), row.get(2), row.get(3), row.get(4));
        facts.insert(
            format!("table {table} column {column}"),
            format!(
                "{} notnull={notnull} default={}",
                normalize_type(&ty),
                normalize_default(default)
            ),
        );
    }
    // Constraints with their column names in key order.
    let column_list = |rel: &str, keys: &str| {
        format!(
            "array(SELECT a.attname::text FROM unnest({keys}) WITH ORDINALITY k(attnum, n)
                    JOIN pg_attribute a ON a.attrelid = {rel} AND a.attnum = k.attnum ORDER BY k.n)"
        )
    };
    for row in query(
        url,
        &format!(
            "SELECT c.contype::text, t.relname::text, {}, f.relname::text, {},
                    c.confdeltype::text
               FROM pg_constraint c
               JOIN pg_class t ON t.oid = c.conrelid
               LEFT JOIN pg_class f ON f.oid = c.confrelid
              WHERE t.relnamespace = 'public'::regnamespace AND c.contype IN ('p', 'u', 'f')",
            column_list("c.conrelid", "c.conkey"),
            column_list("c.confrelid", "c.confkey"),
        ),
    ) {
        let (kind, table, cols): (String, String, Vec<String>) =
            (row.get(0), row.get(1), row.get(2));
        if table == VERSION_TABLE {
            continue;
        }
        match kind.as_str() {
            "p" => {
                facts.insert(format!("table {table} primary key"), cols.join(", "));
            }
            "u" => {
                facts.insert(
                    format!("table {table} unique ({})", cols.join(", ")),
                    String::new(),
                );
            }
            _ => {
                let target: String = row.get(3);
                let to: Vec<String> = row.get(4);
                let on_delete = match row.get::<_, String>(5).as_str() {
                    "c" => "cascade",
                    "n" => "set null",
                    "r" => "restrict",
                    "d" => "set default",
                    _ => "no action",
                };
                facts.insert(
                    format!("table {table} foreign key ({})", cols.join(", ")),
                    format!(
                        "references {target} ({}) on delete {on_delete}",
                        to.join(", ")
                    ),
                );
            }
        }
    }
    for row in query(
        url,
        "SELECT i.relname::text, t.relname::text, ix.indisunique,
                coalesce(pg_get_expr(ix.indpred, ix.indrelid), ''),
                array(SELECT pg_get_indexdef(ix.indexrelid, k::int, true)
                        FROM generate_series(1, ix.indnkeyatts) k),
                ix.indoption::int2[]
           FROM pg_index ix
           JOIN pg_class i ON i.oid = ix.indexrelid
           JOIN pg_class t ON t.oid = ix.indrelid
          WHERE t.relnamespace = 'public'::regnamespace
            AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = ix.indexrelid)",
    ) {
        let (name, table, unique, predicate, cols, options): (
            String,
            String,
            bool,
            String,
            Vec<String>,
            Vec<i16>,
        ) = (
            row.get(0),
            row.get(1),
            row.get(2),
            row.get(3),
            row.get(4),
            row.get(5),
        );
        let cols: Vec<String> = cols
            .iter()
            .zip(options.iter().chain(std::iter::repeat(&0)))
            .map(|(c, o)| {
                let c = c.trim_matches('"');
                if o & 1 == 1 {
                    format!("{c} DESC")
                } else {
                    c.to_string()
                }
            })
            .collect();
        facts.insert(
            format!("index {name}"),
            format!(
                "on {table} ({}) unique={unique} where={}",
                cols.join(", "),
                normalize_predicate(&predicate)
            ),
        );
    }
    for row in query(
        url,
        "SELECT g.tgname::text, t.relname::text FROM pg_trigger g
           JOIN pg_class t ON t.oid = g.tgrelid
          WHERE NOT g.tgisinternal AND t.relnamespace = 'public'::regnamespace",
    ) {
        let (name, table): (String, String) = (row.get(0), row.get(1));
        facts.insert(format!("trigger {name}"), format!("on {table}"));
    }
    facts
}

/// Every difference, one line each.
fn diff(sqlite: &Facts, postgres: &Facts) -> Vec<String> {
    let mut out = Vec::new();
    for (fact, detail) in sqlite {
        match postgres.get(fact) {
            None => out.push(format!("only in SQLite:     {fact} {detail}")),
            Some(other) if other != detail => out.push(format!(
                "differs:            {fact}: SQLite `{detail}`, PostgreSQL `{other}`"
            )),
            Some(_) => {}
        }
    }
    for (fact, detail) in postgres {
        if !sqlite.contains_key(fact) {
            out.push(format!("only in PostgreSQL: {fact} {detail}"));
        }
    }
    out
}

fn migrate_postgres(url: &str) -> (usize, usize, i64) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = PgStore::connect(url, 2).expect("connect");
        let first = store.migrate().await.expect("migrate");
        let again = store.migrate().await.expect("migrate again");
        let version = store.schema_version().await.expect("version");
        (first, again, version)
    })
}

#[test]
fn postgres_schema_matches_sqlite_schema() {
    let Some(cluster) = PgCluster::start() else {
        return;
    };
    let url = cluster.create_db();
    let (first, again, version) = migrate_postgres(&url);
    assert_eq!(
        first,
        MIGRATIONS.len(),
        "a fresh database gets every migration"
    );
    assert_eq!(again, 0, "migrating twice applies nothing the second time");
    assert_eq!(version, MIGRATIONS.len() as i64);

    // SQLite compares text byte by byte; so must PostgreSQL, whatever the database's locale,
    // or ORDER BY version (and every text index) would sort differently on the two.
    let not_c: Vec<String> = query(
        &url,
        "SELECT table_name || '.' || column_name FROM information_schema.columns
          WHERE table_schema = 'public' AND data_type = 'text'
            AND collation_name IS DISTINCT FROM 'C' AND table_name <> 'shiplog_schema_migrations'
          ORDER BY 1",
    )
    .iter()
    .map(|r| r.get(0))
    .collect();
    assert!(
        not_c.is_empty(),
        "text columns without COLLATE \"C\" in PostgreSQL: {not_c:?}"
    );

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shiplog.sqlite3");
    drop(shiplog::store::Store::open(&path).expect("SQLite migrations"));

    let sqlite = sqlite_facts(&path);
    let postgres = postgres_facts(&url);
    assert!(
        sqlite.len() > 100,
        "read the SQLite schema: {}",
        sqlite.len()
    );
    let differences = diff(&sqlite, &postgres);
    assert!(
        differences.is_empty(),
        "\nPostgreSQL's schema differs from SQLite's in {} places (fix the PostgreSQL twin of \
         the SQLite migration that made each, in src/store/postgres/migrations/):\n  {}\n",
        differences.len(),
        differences.join("\n  ")
    );
}

#[test]
fn postgres_makes_a_key_for_every_new_project_as_sqlite_does() {
    let Some(cluster) = PgCluster::start() else {
        return;
    };
    let url = cluster.create_db();
    migrate_postgres(&url);
    execute(
        &url,
        "INSERT INTO organizations (slug, name, date_added) VALUES ('acme', 'Acme', 'now');
         INSERT INTO projects (org_id, slug, name, date_added) VALUES (1, 'web', 'Web', 'now')",
    );
    let keys = query(
        &url,
        "SELECT project_id, public_key, label, status FROM project_keys",
    );
    assert_eq!(keys.len(), 1);
    let key: String = keys[0].get(1);
    assert_eq!(key.len(), 32);
    assert!(
        key.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')),
        "{key}"
    );
    assert_eq!(keys[0].get::<_, String>(2), "Default");
    assert_eq!(keys[0].get::<_, i64>(3), 0);
}

#[test]
fn the_diff_names_the_missing_table_and_column() {
    // The failure message is the point of this file: check its shape without a server.
    let mut sqlite = Facts::new();
    sqlite.insert("table ingest".into(), String::new());
    sqlite.insert(
        "table ingest column body".into(),
        "blob notnull=true default=none".into(),
    );
    sqlite.insert(
        "table releases column url".into(),
        "text notnull=false default=none".into(),
    );
    let mut postgres = Facts::new();
    postgres.insert(
        "table releases column url".into(),
        "integer notnull=false default=none".into(),
    );
    let lines = diff(&sqlite, &postgres);
    assert_eq!(
        lines,
        [
            "only in SQLite:     table ingest ",
            "only in SQLite:     table ingest column body blob notnull=true default=none",
            "differs:            table releases column url: SQLite `text notnull=false default=none`, PostgreSQL `integer notnull=false default=none`",
        ]
    );
    assert_eq!(normalize_default(Some("'{}'::text".into())), "'{}'");
    assert_eq!(normalize_type("bigint"), normalize_type("INTEGER"));
}

#[test]
fn two_daemons_migrating_one_database_at_once_apply_each_migration_once() {
    let Some(cluster) = PgCluster::start() else {
        return;
    };
    let url = cluster.create_db();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (a, b) = runtime.block_on(async {
        let (one, two) = (
            PgStore::connect(&url, 1).unwrap(),
            PgStore::connect(&url, 1).unwrap(),
        );
        tokio::join!(one.migrate(), two.migrate())
    });
    let (a, b) = (a.expect("first migrate"), b.expect("second migrate"));
    assert_eq!(
        a + b,
        MIGRATIONS.len(),
        "each migration applied by exactly one"
    );
    let versions: Vec<i64> = query(
        &url,
        &format!("SELECT version FROM {VERSION_TABLE} ORDER BY version"),
    )
    .iter()
    .map(|r| r.get(0))
    .collect();
    assert_eq!(versions, (1..=MIGRATIONS.len() as i64).collect::<Vec<_>>());
}
