//! Release-health benchmarks (BENCHMARKS.md "## Release health"):
//!
//! 1. single-session envelopes through `POST /api/{project}/envelope/` of a real `shiplog
//!    serve` on loopback, from a multi-connection client on the same machine: throughput and
//!    per-request latency (each answer comes after the session's transaction committed);
//!    target ≥ 10 000/s, p99 < 20 ms;
//! 2. `GET /api/0/organizations/{org}/releases/?health=1&per_page=100` over 100 releases with
//!    90 days of hourly rollups (three users an hour each, a duration histogram): p50 < 20 ms.
//!
//! Run with `cargo bench --bench health`. `SHIPLOG_BENCH_SESSIONS` and
//! `SHIPLOG_BENCH_CLIENTS` change the ingest run's size; `SHIPLOG_BENCH_ONLY=ingest|page` runs
//! one of the two; `SHIPLOG_BENCH_KEEP=1` keeps the page benchmark's data dir (its path is
//! printed) to study its queries afterwards.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use serde_json::{Value, json};
use shiplog::core::release::{self, CreateRelease};
use shiplog::model::health::{SessionCounts, bucket_of, duration_bin};
use shiplog::store::Store;
use shiplog::store::health::{self as health_store, Key};

mod support;
use support::daemon::Daemon;

/// The daemon's config: one project, `web`.
const CONFIG: &str = "organization: acme\nprojects:\n  - slug: web\n";

/// One application-mode update: 1 000 users, 20 releases, a crash every 50th.
fn envelope(n: usize, now: &str) -> Vec<u8> {
    let session = json!({
        "sid": format!("{:032x}", n as u128 + 1),
        "did": format!("user-{}", n % 1000),
        "init": true,
        "started": now,
        "timestamp": now,
        "status": if n.is_multiple_of(50) { "crashed" } else { "exited" },
        "duration": (n % 600) as f64,
        "attrs": {"release": format!("web@1.{}.0", n % 20), "environment": "production"},
    });
    let payload = serde_json::to_vec(&session).expect("json");
    let mut body = format!(
        "{}\n{}\n",
        json!({"sent_at": now}),
        json!({"type": "session", "length": payload.len()})
    )
    .into_bytes();
    body.extend_from_slice(&payload);
    body.push(b'\n');
    body
}

struct IngestResult {
    sessions: usize,
    clients: usize,
    secs: f64,
    p50_ms: f64,
    p99_ms: f64,
    stored: i64,
    peak_rss_mib: f64,
}

/// The daemon's peak resident memory (`VmHWM`), in MiB.
fn peak_rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

fn bench_ingest() -> IngestResult {
    let sessions: usize = std::env::var("SHIPLOG_BENCH_SESSIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30_000);
    let clients: usize = std::env::var("SHIPLOG_BENCH_CLIENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(32);
    let daemon = Daemon::start_temp(CONFIG);
    let dsn = daemon.cli(&["projects", "dsn", "web"]);
    let rest = dsn.strip_prefix("http://").expect("http DSN");
    let (key, rest) = rest.split_once('@').expect("key");
    let project = rest.rsplit('/').next().expect("project id").to_string();
    let url = Arc::new(format!("{}/api/{project}/envelope/", daemon.url));
    let auth = Arc::new(format!("Sentry sentry_key={key}, sentry_version=7"));
    let now = shiplog::core::now();
    let bodies: Arc<Vec<Vec<u8>>> = Arc::new((0..sessions).map(|n| envelope(n, &now)).collect());

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (elapsed, mut latencies) = runtime.block_on(async move {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(clients)
            .build()
            .expect("client");
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let start = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..clients {
            let (client, url, auth, bodies, next) = (
                client.clone(),
                url.clone(),
                auth.clone(),
                bodies.clone(),
                next.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::new();
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= bodies.len() {
                        return lat;
                    }
                    let t = Instant::now();
                    let resp = client
                        .post(url.as_str())
                        .header("X-Sentry-Auth", auth.as_str())
                        .body(bodies[i].clone())
                        .send()
                        .await
                        .expect("post");
                    assert_eq!(resp.status().as_u16(), 200, "session {i} refused");
                    let _ = resp.bytes().await;
                    lat.push(t.elapsed());
                }
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.expect("client task"));
        }
        (start.elapsed(), all)
    });
    latencies.sort();
    let pick = |q: f64| {
        latencies[((q * latencies.len() as f64) as usize).min(latencies.len() - 1)].as_secs_f64()
            * 1000.0
    };
    let stored: i64 = rusqlite::Connection::open(daemon.data().join("shiplog.sqlite3"))
        .expect("db")
        .query_row("SELECT sum(sessions) FROM health_rollups", [], |r| r.get(0))
        .expect("count");
    IngestResult {
        sessions,
        clients,
        secs: elapsed.as_secs_f64(),
        p50_ms: pick(0.5),
        p99_ms: pick(0.99),
        stored,
        peak_rss_mib: peak_rss_mib(daemon.child.id()),
    }
}

/// Seeds 100 releases with 90 days of hourly rollups into a running daemon's store.
fn seed(data: &Path) -> usize {
    let store = Store::open_dir(data).expect("store");
    let rows = store
        .write_blocking(|tx| {
            let org = shiplog::core::org::org(tx, "acme")?;
            let project =
                shiplog::store::orgs::project_by_slug(tx, org.id, "web")?.expect("project web");
            let now = chrono::Utc::now().timestamp();
            let mut rows = 0;
            for r in 0..100 {
                let up = release::upsert(
                    tx,
                    &org,
                    &CreateRelease {
                        version: format!("web@2.{r}.0"),
                        projects: vec![shiplog::core::org::ProjectRef::Id(project.id)],
                        ..Default::default()
                    },
                    &shiplog::core::now(),
                )?;
                for h in 0..(90 * 24) {
                    let key = Key {
                        project_id: project.id,
                        release_id: up.release.id,
                        bucket: bucket_of(now - h * 3600),
                        environment: "production",
                    };
                    health_store::add_counts(
                        tx,
                        &key,
                        &SessionCounts {
                            sessions: 20,
                            crashed: (h % 3) as u64,
                            errored_sids: 1,
                            ..Default::default()
                        },
                    )?;
                    for u in 0..3 {
                        health_store::add_user(tx, &key, &format!("u{}", (h + u) % 40), 0)?;
                    }
                    health_store::add_duration(tx, &key, duration_bin(30.0 + (h % 7) as f64))?;
                    rows += 1;
                }
            }
            Ok::<_, shiplog::core::CoreError>(rows)
        })
        .expect("seed");
    // The daemon folds its own commits back into the database file once writes pause
    // (store::checkpoint); this seed is another process's, so fold it as the daemon would.
    // Left in the WAL, every page the page reads would be looked up there first.
    rusqlite::Connection::open(data.join("shiplog.sqlite3"))
        .and_then(|c| c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())))
        .expect("checkpoint the seed");
    rows
}

fn bench_page() -> (usize, usize, f64, f64) {
    let mut daemon = Daemon::start_temp(CONFIG);
    let token = daemon.cli(&["token", "create", "--name", "bench"]);
    let rows = seed(&daemon.data());
    let client = reqwest::blocking::Client::new();
    let url = format!(
        "{}/api/0/organizations/acme/releases/?health=1&per_page=100",
        daemon.url
    );
    let get = || {
        let resp = client.get(&url).bearer_auth(&token).send().expect("get");
        assert_eq!(resp.status().as_u16(), 200);
        let list: Value = resp.json().expect("json");
        assert_eq!(list.as_array().map(Vec::len), Some(100));
        assert!(list[0]["projects"][0]["healthData"]["totalSessions"].as_u64() > Some(0));
    };
    for _ in 0..3 {
        get();
    }
    let runs = 50;
    let mut times = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        get();
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    if std::env::var_os("SHIPLOG_BENCH_KEEP").is_some() {
        if let Some(temp) = daemon.temp.as_mut() {
            temp.disable_cleanup(true);
        }
        println!("data dir kept: {}", daemon.data().display());
    }
    (rows, runs, times[runs / 2], times[runs * 9 / 10])
}

fn main() {
    // `cargo bench` passes --bench; test runners (`cargo test --all-targets`, nextest's
    // `--list`) run this binary too, and must not start a benchmark.
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench") {
        if !args.iter().any(|a| a == "--list") {
            println!("benchmarks run with `cargo bench --bench health`");
        }
        return;
    }
    println!("| benchmark | size | result | target |");
    println!("|---|---|---|---|");
    let only = std::env::var("SHIPLOG_BENCH_ONLY").unwrap_or_default();
    if only != "page" {
        let r = bench_ingest();
        println!(
            "| single-session envelopes (real daemon, loopback) | {} sessions, {} connections; {} counted | {:.0} sessions/s; p50 {:.2} ms, p99 {:.2} ms; daemon peak RSS {:.1} MiB | ≥ 10 000/s, p99 < 20 ms |",
            r.sessions,
            r.clients,
            r.stored,
            r.sessions as f64 / r.secs,
            r.p50_ms,
            r.p99_ms,
            r.peak_rss_mib
        );
    }
    if only != "ingest" {
        let (rows, runs, p50, p90) = bench_page();
        println!(
            "| releases?health=1&per_page=100 | 100 releases, {rows} hourly rollups (90 days), {runs} requests | p50 {p50:.2} ms, p90 {p90:.2} ms | p50 < 20 ms |"
        );
    }
}
