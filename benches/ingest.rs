//! Event ingest under the load of issue 18 (BENCHMARKS.md "## Event ingest"):
//!
//! 20 000 error events of about 5.6 KB each — an exception with a 10-frame stack trace, 50
//! error types, one release and one environment — posted as Sentry envelopes over 32
//! keep-alive connections. Every envelope is built before the clock starts; 500 warm-up
//! events go first (so the store holds 20 500 after the run); the stored-event count is
//! checked after. Reported: events/s, p50 and p99 request latency, the server's CPU time per
//! event (utime + stime from `/proc/<pid>/stat` over the timed run), its peak RSS (`VmHWM`)
//! and the size of its data dir 3 s after the run (`SHIPLOG_BENCH_SETTLE_SECS`), at rest.
//!
//! Run with `cargo bench --bench ingest`: it starts a `shiplog serve` of its own. The same
//! generator measures another server when `SHIPLOG_BENCH_URL` is set:
//!
//! | variable | meaning |
//! |---|---|
//! | `SHIPLOG_BENCH_URL` | base URL of the server (e.g. `http://127.0.0.1:3001`) |
//! | `SHIPLOG_BENCH_PROJECT` | the project id in `/api/{id}/envelope/` (default 1) |
//! | `SHIPLOG_BENCH_KEY` | the DSN public key (default 32 × `0`…`f`) |
//! | `SHIPLOG_BENCH_PID` | the server's process id (CPU and RSS) |
//! | `SHIPLOG_BENCH_DATA` | its data dir (store size) |
//! | `SHIPLOG_BENCH_DB` | its SQLite file (stored-event count) |
//! | `SHIPLOG_BENCH_COUNT_SQL` | the count query (default `SELECT count(*) FROM events`) |
//!
//! `SHIPLOG_BENCH_EVENTS` and `SHIPLOG_BENCH_CLIENTS` change the size of the run.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use serde_json::{Value, json};

const WARM_UP: usize = 500;
const ERROR_TYPES: usize = 50;

mod support;
use support::daemon::Daemon;

/// Starts `shiplog serve` on a fresh data dir; returns it with its project id and DSN key.
fn start_shiplog() -> (Daemon, u64, String) {
    let daemon = Daemon::start_temp("organization: acme\nprojects:\n  - slug: web\n");
    let (project, key) = daemon.dsn("web");
    let project = project.parse().expect("project id in DSN");
    (daemon, project, key)
}

/// One 10-frame Python stack trace, different per error type.
fn frames(kind: usize) -> Vec<Value> {
    (0..10)
        .map(|f| {
            let module = format!("app.services.module_{kind}_{f}");
            json!({
                "filename": format!("app/services/module_{kind}_{f}.py"),
                "module": module,
                "function": format!("handle_step_{f}"),
                "lineno": 40 + f * 7,
                "colno": 9,
                "in_app": f >= 3,
                "context_line": format!("        result = self.step_{f}(request, payload)"),
                "pre_context": [
                    format!("    def handle_step_{f}(self, request, payload):"),
                    "        self.log.debug('step', extra={'payload': payload})".to_string(),
                ],
                "post_context": [
                    "        if result is None:".to_string(),
                    "            raise PipelineError('step returned nothing')".to_string(),
                    "        return result".to_string(),
                ],
            })
        })
        .collect()
}

/// The `n`-th event: about 5.6 KB of JSON.
fn event(n: usize, run: &str) -> Value {
    let kind = n % ERROR_TYPES;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    json!({
        "event_id": format!("{run}{n:016x}"),
        "timestamp": now,
        "platform": "python",
        "level": "error",
        "logger": "app.orders",
        "server_name": "web-1.eu-west-1.internal",
        "transaction": "POST /api/orders",
        "extra": {"order_id": n, "attempt": 1, "queue": "orders-high"},
        "release": "web@2.4.1",
        "environment": "production",
        "exception": {"values": [{
            "type": format!("OrderError{kind}"),
            "value": format!("order {n} failed in step {kind} after {} ms", n % 997),
            "module": "app.errors",
            "mechanism": {"type": "generic", "handled": false},
            "stacktrace": {"frames": frames(kind)},
        }]},
        "user": {"id": format!("user-{}", n % 100), "ip_address": "10.0.0.1"},
        "tags": {"region": "eu-west-1", "customer_tier": "pro"},
        "request": {
            "url": "https://shop.example.com/api/orders",
            "method": "POST",
            "headers": {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64)", "Accept": "application/json"},
        },
        "contexts": {
            "os": {"name": "Linux", "version": "6.18"},
            "runtime": {"name": "CPython", "version": "3.13.1"},
        },
        "sdk": {"name": "sentry.python", "version": "2.40.0"},
    })
}

fn envelope(event: &Value) -> Vec<u8> {
    let payload = serde_json::to_vec(event).expect("json");
    let mut body = format!(
        "{}\n{}\n",
        json!({"event_id": event["event_id"]}),
        json!({"type": "event", "length": payload.len()})
    )
    .into_bytes();
    body.extend_from_slice(&payload);
    body.push(b'\n');
    body
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// utime + stime of a process, in seconds.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces) start at state (field 3).
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    // USER_HZ is 100 on every Linux this runs on.
    Some((utime + stime) / 100.0)
}

fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn dir_size(path: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else {
        return std::fs::metadata(path).map_or(0, |m| m.len());
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_size(&e.path()),
            _ => e.metadata().map_or(0, |m| m.len()),
        })
        .sum()
}

fn stored_events(db: &Path, sql: &str) -> Option<i64> {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .ok()?;
    conn.busy_timeout(Duration::from_secs(10)).ok()?;
    conn.query_row(sql, [], |r| r.get(0)).ok()
}

struct Outcome {
    secs: f64,
    latencies: Vec<Duration>,
    refused: usize,
}

/// Posts every body over `clients` keep-alive connections; returns the wall time and each
/// request's latency.
fn post_all(
    runtime: &tokio::runtime::Runtime,
    client: &reqwest::Client,
    url: &Arc<String>,
    auth: &Arc<String>,
    bodies: Vec<Vec<u8>>,
    clients: usize,
) -> Outcome {
    // Bytes clone by reference count: no copy of a body per request.
    let bodies: Arc<Vec<Bytes>> = Arc::new(bodies.into_iter().map(Bytes::from).collect());
    runtime.block_on(async move {
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
                let mut latencies = Vec::new();
                let mut refused = 0;
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= bodies.len() {
                        return (latencies, refused);
                    }
                    let sent = Instant::now();
                    let resp = client
                        .post(url.as_str())
                        .header("X-Sentry-Auth", auth.as_str())
                        .header("Content-Type", "application/x-sentry-envelope")
                        .body(bodies[i].clone())
                        .send()
                        .await
                        .expect("post");
                    let status = resp.status().as_u16();
                    let _ = resp.bytes().await;
                    latencies.push(sent.elapsed());
                    if status != 200 {
                        refused += 1;
                        if refused == 1 {
                            eprintln!("event {i} answered {status}");
                        }
                    }
                }
            }));
        }
        let mut latencies = Vec::new();
        let mut refused = 0;
        for t in tasks {
            let (l, r) = t.await.expect("client task");
            latencies.extend(l);
            refused += r;
        }
        Outcome {
            secs: start.elapsed().as_secs_f64(),
            latencies,
            refused,
        }
    })
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1000.0
}

fn main() {
    // `cargo bench` passes --bench; test runners run this binary too and must not start one.
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench") {
        if !args.iter().any(|a| a == "--list") {
            println!("benchmarks run with `cargo bench --bench ingest`");
        }
        return;
    }
    let events = env_usize("SHIPLOG_BENCH_EVENTS", 20_000);
    let clients = env_usize("SHIPLOG_BENCH_CLIENTS", 32);

    // The server: ours, or the one named by the environment.
    let external = std::env::var("SHIPLOG_BENCH_URL").ok();
    let (daemon, base, project, key, pid, data, db) = match &external {
        Some(url) => {
            let path = |name: &str| std::env::var(name).ok().map(PathBuf::from);
            (
                None,
                url.trim_end_matches('/').to_string(),
                env_usize("SHIPLOG_BENCH_PROJECT", 1) as u64,
                std::env::var("SHIPLOG_BENCH_KEY")
                    .unwrap_or_else(|_| "0123456789abcdef0123456789abcdef".into()),
                std::env::var("SHIPLOG_BENCH_PID")
                    .ok()
                    .and_then(|p| p.parse().ok()),
                path("SHIPLOG_BENCH_DATA"),
                path("SHIPLOG_BENCH_DB"),
            )
        }
        None => {
            let (daemon, project, key) = start_shiplog();
            let (base, pid, data) = (daemon.url.clone(), daemon.child.id(), daemon.data());
            let db = data.join("shiplog.sqlite3");
            (
                Some(daemon),
                base,
                project,
                key,
                Some(pid),
                Some(data),
                Some(db),
            )
        }
    };
    let count_sql = std::env::var("SHIPLOG_BENCH_COUNT_SQL")
        .unwrap_or_else(|_| "SELECT count(*) FROM events".into());
    let url = Arc::new(format!("{base}/api/{project}/envelope/"));
    let auth = Arc::new(format!("Sentry sentry_key={key}, sentry_version=7"));

    // Every envelope is built before the clock starts.
    let run = format!(
        "{:016x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_nanos() as u64
    );
    let warm: Vec<Vec<u8>> = (0..WARM_UP).map(|n| envelope(&event(n, &run))).collect();
    let timed: Vec<Vec<u8>> = (WARM_UP..WARM_UP + events)
        .map(|n| envelope(&event(n, &run)))
        .collect();
    let event_bytes = timed.iter().map(Vec::len).sum::<usize>() / timed.len().max(1);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let client = {
        let _guard = runtime.enter();
        reqwest::Client::builder()
            .pool_max_idle_per_host(clients)
            .timeout(Duration::from_secs(60))
            .build()
            .expect("client")
    };
    let warm_up = post_all(&runtime, &client, &url, &auth, warm, clients);
    assert_eq!(warm_up.refused, 0, "warm-up events refused");

    let cpu_before = pid.and_then(cpu_seconds);
    let outcome = post_all(&runtime, &client, &url, &auth, timed, clients);
    let cpu_after = pid.and_then(cpu_seconds);
    let rss = pid.and_then(peak_rss_kib);

    // The count of stored events (a server that stores after answering gets 60 s to catch up).
    let expected = (WARM_UP + events - outcome.refused) as i64;
    let stored = db.as_deref().map(|db| {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let n = stored_events(db, &count_sql).unwrap_or(-1);
            if n >= expected || Instant::now() > deadline {
                return n;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    // The store's size at rest: both servers get the same pause to fold their WAL back.
    std::thread::sleep(Duration::from_secs(
        env_usize("SHIPLOG_BENCH_SETTLE_SECS", 3) as u64,
    ));
    let size = data.as_deref().map(dir_size);
    let db_size = db
        .as_deref()
        .and_then(|db| std::fs::metadata(db).ok())
        .map(|m| m.len());

    let mut latencies = outcome.latencies;
    latencies.sort_unstable();
    let rate = events as f64 / outcome.secs;
    println!(
        "ingest benchmark ({} build), server {}",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        external
            .as_deref()
            .unwrap_or("shiplog (started by the bench)")
    );
    println!(
        "load: {events} events (+{WARM_UP} warm-up), ~{event_bytes} B envelopes, {ERROR_TYPES} error types, {clients} connections"
    );
    println!();
    println!(
        "| events/s | p50 | p99 | server CPU per event | peak RSS | store after {} events | refused |",
        WARM_UP + events
    );
    println!("|---|---|---|---|---|---|---|");
    let cpu = match (cpu_before, cpu_after) {
        (Some(a), Some(b)) => format!("{:.3} ms", (b - a) * 1000.0 / events as f64),
        _ => "n/a".into(),
    };
    println!(
        "| {rate:.0} | {:.1} ms | {:.1} ms | {cpu} | {} | {} | {} |",
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        rss.map_or("n/a".into(), |k| format!("{:.0} MiB", k as f64 / 1024.0)),
        size.map_or("n/a".into(), |s| format!(
            "{:.1} MB ({:.0} B/event)",
            s as f64 / 1e6,
            s as f64 / (WARM_UP + events) as f64
        )),
        outcome.refused,
    );
    if let Some(db_size) = db_size {
        println!(
            "database file alone (without WAL): {:.1} MB ({:.0} B/event)",
            db_size as f64 / 1e6,
            db_size as f64 / (WARM_UP + events) as f64
        );
    }
    match stored {
        Some(n) => {
            println!("stored events: {n} (expected {expected})");
            assert_eq!(
                n, expected,
                "stored-event count differs from the acknowledged"
            );
        }
        None => println!("stored events: not checked (no SHIPLOG_BENCH_DB)"),
    }
    drop(daemon);
}
