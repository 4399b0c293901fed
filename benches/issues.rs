//! Issue benchmarks (BENCHMARKS.md "## Issues"):
//!
//! 1. events ingested per second through `POST /api/{project}/envelope/` of a real `shiplog
//!    serve` on loopback, from a multi-connection client (target: over 2 000/s);
//! 2. Fixes-grammar parsing speed over a large synthetic commit log (target: over 1 M
//!    messages/s; most messages have no keyword).
//!
//! Run with `cargo bench --bench issues`. `SHIPLOG_BENCH_EVENTS` and `SHIPLOG_BENCH_CLIENTS`
//! change the ingest run's size.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use shiplog::model::issue_ref;

struct Daemon {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_shiplog")
}

fn start() -> (Daemon, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("config.yaml");
    std::fs::write(&config, "organization: acme\nprojects:\n  - slug: web\n").expect("config");
    let data = dir.path().join("data");
    let child = Command::new(bin())
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(&data)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn shiplog serve");
    let url = wait_ready(&data);
    let out = Command::new(bin())
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(&data)
        .args(["projects", "dsn", "web"])
        .output()
        .expect("projects dsn");
    let dsn = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(dsn.starts_with("http://"), "no DSN: {dsn}");
    (
        Daemon {
            child,
            url,
            _dir: dir,
        },
        dsn,
    )
}

fn wait_ready(data: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(text) = std::fs::read_to_string(data.join("daemon.json"))
            && let Ok(info) = serde_json::from_str::<Value>(&text)
        {
            let url = info["url"].as_str().unwrap_or_default().to_string();
            if reqwest::blocking::get(format!("{url}/healthz"))
                .is_ok_and(|r| r.status().is_success())
            {
                return url;
            }
        }
        assert!(Instant::now() < deadline, "daemon did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn envelope(n: usize) -> Vec<u8> {
    // 50 distinct issues, 5 releases: most events land in an existing issue, as in production.
    let event = json!({
        "event_id": format!("{:032x}", n as u128 + 1),
        "timestamp": 1_795_238_698.0 + n as f64 / 1000.0,
        "platform": "python",
        "level": "error",
        "release": format!("web@1.{}.0", n % 5),
        "environment": "production",
        "exception": {"values": [{
            "type": format!("Error{}", n % 50),
            "value": format!("request {n} failed after {} ms", n % 997),
            "stacktrace": {"frames": [
                {"filename": "app/main.py", "function": "main", "in_app": true, "lineno": 10},
                {"filename": "app/handlers/orders.py", "module": "app.handlers.orders", "function": "create", "in_app": true, "lineno": 88}
            ]}
        }]},
        "tags": {"region": "eu"},
    });
    let payload = serde_json::to_vec(&event).expect("json");
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

fn bench_ingest() -> (usize, usize, f64) {
    let events: usize = std::env::var("SHIPLOG_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let clients: usize = std::env::var("SHIPLOG_BENCH_CLIENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(32);
    let (daemon, dsn) = start();
    let rest = dsn.strip_prefix("http://").expect("http DSN");
    let (key, rest) = rest.split_once('@').expect("key");
    let project = rest.rsplit('/').next().expect("project id").to_string();
    let url = Arc::new(format!("{}/api/{project}/envelope/", daemon.url));
    let auth = Arc::new(format!("Sentry sentry_key={key}, sentry_version=7"));
    let bodies: Arc<Vec<Vec<u8>>> = Arc::new((0..events).map(envelope).collect());

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let elapsed = runtime.block_on(async move {
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
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= bodies.len() {
                        return;
                    }
                    let resp = client
                        .post(url.as_str())
                        .header("X-Sentry-Auth", auth.as_str())
                        .body(bodies[i].clone())
                        .send()
                        .await
                        .expect("post");
                    assert_eq!(resp.status().as_u16(), 200, "event {i} refused");
                    let _ = resp.bytes().await;
                }
            }));
        }
        for t in tasks {
            t.await.expect("client task");
        }
        start.elapsed()
    });
    drop(daemon);
    (events, clients, elapsed.as_secs_f64())
}

fn commit_log(n: usize) -> Vec<String> {
    let plain = [
        "Update dependencies",
        "refactor(core): split the release module into store and domain parts",
        "Add a test for empty tag lists",
        "docs: explain the spool directory",
        "Merge branch 'main' into feature/hooks",
        "chore: bump version to 1.4.2",
        "Rename ReleaseView::new_groups to new_issues\n\nThe old name leaked Sentry's model.",
        "feat(ui): dark mode for the release page",
        "Make the reconcile job idempotent when a tag moves",
        "perf: batch inserts of file changes",
    ];
    (0..n)
        .map(|i| match i % 100 {
            // 3 %: a conventional `fix:` subject (a keyword, but no ids).
            0..=2 => format!("fix: handle an empty response from the API ({i})"),
            // 2 %: real references.
            3 => format!("Fixes WEB-{}", issue_ref::encode_base32(i as u64)),
            4 => format!(
                "Stop double-counting deploys\n\nFixes API-{}, WEB-{}\nCloses [MOBILE-1](https://x.test/issues/1/)",
                issue_ref::encode_base32(i as u64),
                issue_ref::encode_base32(i as u64 + 1)
            ),
            _ => format!("{} #{i}", plain[i % plain.len()]),
        })
        .collect()
}

fn bench_grammar() -> (usize, usize, f64) {
    let log = commit_log(1_000_000);
    // Warm the regexes.
    let _ = issue_ref::find_references(&log[3]);
    let start = Instant::now();
    let mut refs = 0;
    for m in &log {
        refs += issue_ref::find_references(std::hint::black_box(m)).len();
    }
    (log.len(), refs, start.elapsed().as_secs_f64())
}

fn main() {
    // `cargo bench` passes --bench; test runners (`cargo test --all-targets`, nextest's
    // `--list`) run this binary too, and must not start a benchmark.
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench") {
        if !args.iter().any(|a| a == "--list") {
            println!("benchmarks run with `cargo bench --bench issues`");
        }
        return;
    }
    println!(
        "shiplog issue benchmarks ({} build)",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
    println!();
    let (messages, refs, secs) = bench_grammar();
    println!("| benchmark | size | time | rate | target |");
    println!("|---|---|---|---|---|");
    println!(
        "| Fixes grammar parse | {messages} messages ({refs} references) | {secs:.3} s | {:.2} M messages/s | > 1 M/s |",
        messages as f64 / secs / 1e6
    );
    let (events, clients, secs) = bench_ingest();
    println!(
        "| envelope ingest (real daemon, loopback) | {events} events, {clients} connections | {secs:.2} s | {:.0} events/s | > 2 000/s |",
        events as f64 / secs
    );
}
