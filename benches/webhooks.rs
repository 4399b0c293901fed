//! Signed GitHub webhook deliveries accepted per second by a real `shiplog serve` on loopback.
//!
//! Starts the daemon binary on 127.0.0.1 with a temp data dir and a webhook secret, then a
//! tokio + reqwest load generator posts a bounded number of signed `push` deliveries (the
//! 8 KB push-branch-update.json fixture, each with its own X-GitHub-Delivery) over several
//! keep-alive connections, recording each request's latency. The pipeline worker applies the
//! deliveries at the same time (they name a repository that is not configured, so each is
//! logged and ignored), as it would in production. At the end the daemon is stopped and the
//! inbox is counted: it must hold exactly one row per 202 answer.
//!
//! Run: `cargo bench --bench webhooks` (targets: > 3 000 deliveries/s, p99 < 20 ms).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use shiplog::github::verify::sign;
use shiplog::github::webhook::form_encode;

const SECRET: &str = "bench-secret";
const DELIVERIES: usize = 20_000;
const WARMUP: usize = 500;

struct Daemon {
    child: Child,
    url: String,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

fn stop(child: &mut Child) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn start(dir: &Path) -> Daemon {
    let config = dir.join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "organization: acme\ngithub:\n  webhook_secret: {SECRET}\n  api_url: http://127.0.0.1:9\nschedules: []\n"
        ),
    )
    .expect("config");
    let data = dir.join("data");
    let log = std::fs::File::create(dir.join("daemon.log")).expect("log");
    let child = Command::new(env!("CARGO_BIN_EXE_shiplog"))
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(&data)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn shiplog serve");
    // Owned by the guard at once, so a failed start still stops the process.
    let mut daemon = Daemon {
        child,
        url: String::new(),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(text) = std::fs::read_to_string(data.join("daemon.json"))
            && let Ok(info) = serde_json::from_str::<serde_json::Value>(&text)
            && let Some(url) = info["url"].as_str()
            && reqwest::blocking::get(format!("{url}/healthz"))
                .is_ok_and(|r| r.status().is_success())
        {
            daemon.url = url.to_string();
            return daemon;
        }
        assert!(Instant::now() < deadline, "daemon did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
}

struct Run {
    label: &'static str,
    connections: usize,
    sent: usize,
    accepted: usize,
    other: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

async fn load(
    url: &str,
    label: &'static str,
    body: Arc<Vec<u8>>,
    content_type: &'static str,
    prefix: &str,
    total: usize,
    connections: usize,
) -> Run {
    let signature = sign(SECRET.as_bytes(), &body);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(1)
            .build()
            .expect("client");
        let (url, body, signature, next) = (
            format!("{url}/webhooks/github"),
            body.clone(),
            signature.clone(),
            next.clone(),
        );
        let prefix = prefix.to_string();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let (mut accepted, mut other) = (0, 0);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let t = Instant::now();
                let resp = client
                    .post(&url)
                    .header("content-type", content_type)
                    .header("x-github-event", "push")
                    .header("x-github-delivery", format!("{prefix}-{i:08}"))
                    .header("x-github-hook-id", "1")
                    .header("x-hub-signature-256", &signature)
                    .body(body.as_ref().clone())
                    .send()
                    .await;
                match resp {
                    Ok(r) => {
                        let status = r.status().as_u16();
                        let _ = r.bytes().await;
                        latencies.push(t.elapsed());
                        if status == 202 {
                            accepted += 1;
                        } else {
                            other += 1;
                        }
                    }
                    Err(_) => other += 1,
                }
            }
            (latencies, accepted, other)
        }));
    }
    let mut run = Run {
        label,
        connections,
        sent: total,
        accepted: 0,
        other: 0,
        elapsed: Duration::ZERO,
        latencies: Vec::new(),
    };
    for t in tasks {
        let (l, a, o) = t.await.expect("task");
        run.latencies.extend(l);
        run.accepted += a;
        run.other += o;
    }
    run.elapsed = started.elapsed();
    run.latencies.sort();
    run
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut daemon = start(dir.path());
    let json = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/github/push-branch-update.json"
    ))
    .expect("fixture");
    let form = form_encode(std::str::from_utf8(&json).expect("utf-8")).into_bytes();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let json = Arc::new(json);
    let form = Arc::new(form);
    let mut runs = Vec::new();
    let warmup = rt.block_on(async {
        let warmup = load(
            &daemon.url,
            "warm-up",
            json.clone(),
            "application/json",
            "warm",
            WARMUP,
            4,
        )
        .await;
        for connections in [4, 16] {
            runs.push(
                load(
                    &daemon.url,
                    "json",
                    json.clone(),
                    "application/json",
                    &format!("json{connections}"),
                    DELIVERIES,
                    connections,
                )
                .await,
            );
        }
        runs.push(
            load(
                &daemon.url,
                "form",
                form.clone(),
                "application/x-www-form-urlencoded",
                "form",
                DELIVERIES / 2,
                16,
            )
            .await,
        );
        warmup
    });
    stop(&mut daemon.child);

    let db = rusqlite::Connection::open(dir.path().join("data/shiplog.sqlite3")).expect("db");
    let inbox: i64 = db
        .query_row(
            "SELECT count(*) FROM inbox WHERE kind = 'github.webhook'",
            [],
            |r| r.get(0),
        )
        .expect("count");
    let applied: i64 = db
        .query_row("SELECT count(*) FROM github_deliveries", [], |r| r.get(0))
        .unwrap_or(-1);

    println!(
        "GitHub webhooks: {} B JSON body ({} B form), signed, loopback, real daemon",
        json.len(),
        form.len()
    );
    println!(
        "| body | connections | deliveries | 202s | other | seconds | deliveries/s | p50 ms | p90 ms | p99 ms | max ms |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    let mut total_accepted = warmup.accepted;
    for r in &runs {
        total_accepted += r.accepted;
        println!(
            "| {} | {} | {} | {} | {} | {:.2} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} |",
            r.label,
            r.connections,
            r.sent,
            r.accepted,
            r.other,
            r.elapsed.as_secs_f64(),
            r.accepted as f64 / r.elapsed.as_secs_f64(),
            pct(&r.latencies, 0.50),
            pct(&r.latencies, 0.90),
            pct(&r.latencies, 0.99),
            pct(&r.latencies, 1.0),
        );
    }
    println!(
        "inbox rows: {inbox}; 202 answers (warm-up included): {total_accepted}; applied by the worker before stop: {applied}; {}",
        if inbox as usize == total_accepted {
            "nothing lost"
        } else {
            "MISMATCH"
        }
    );
    assert_eq!(inbox as usize, total_accepted, "inbox rows != 202 answers");
}
