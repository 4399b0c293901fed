//! Releases core benchmark: a real daemon (the release binary when run with `cargo bench`) over
//! a store of 100 000 releases.
//!
//! Measures: time from process start to `/healthz` 200, idle RSS, `POST .../releases/`
//! throughput and latency (concurrent clients), and `GET .../releases/?per_page=100` latency.
//! Prints a Markdown table for BENCHMARKS.md. Run: `cargo bench --bench releases`.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use shiplog::config::Config;
use shiplog::core::{self, org::ProjectRef, release::CreateRelease};
use shiplog::store::Store;

const SEEDED: usize = 100_000;
const CREATES: usize = 10_000;
const CLIENTS: usize = 8;
const LISTS: usize = 2_000;

fn config_yaml() -> &'static str {
    "organization: acme\nprojects:\n  - slug: web\n  - slug: api\n"
}

fn seed(data: &Path) {
    let config = Config::from_yaml_str(config_yaml(), "bench").expect("config");
    let store = Store::open_dir(data).expect("store");
    let start = Instant::now();
    store
        .write_blocking(|tx| {
            let org = core::org::sync_config(tx, &config, &core::now())?;
            for i in 0..SEEDED {
                let project = if i % 3 == 0 { "api" } else { "web" };
                let req = CreateRelease {
                    version: format!("{project}@{}.{}.{}", i / 10_000, (i / 100) % 100, i % 100),
                    projects: vec![ProjectRef::Slug(project.into())],
                    ..Default::default()
                };
                core::release::upsert(tx, &org, &req, &core::now())?;
            }
            Ok::<_, core::CoreError>(())
        })
        .expect("seed");
    eprintln!("seeded {SEEDED} releases in {:.1?}", start.elapsed());
}

struct Daemon {
    child: Child,
    url: String,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

fn start(dir: &Path) -> (Daemon, Duration) {
    let data = dir.join("data");
    let _ = std::fs::remove_file(data.join("daemon.json"));
    let t0 = Instant::now();
    // Owned by the guard at once, so every path stops the daemon.
    let mut daemon = Daemon {
        url: String::new(),
        child: Command::new(env!("CARGO_BIN_EXE_shiplog"))
            .arg("--config")
            .arg(dir.join("config.yaml"))
            .arg("--data-dir")
            .arg(&data)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn daemon"),
    };
    let client = reqwest::blocking::Client::new();
    loop {
        if let Ok(text) = std::fs::read_to_string(data.join("daemon.json"))
            && let Ok(v) = serde_json::from_str::<serde_json::Value>(&text)
        {
            let url = v["url"].as_str().unwrap_or_default().to_string();
            if client
                .get(format!("{url}/healthz"))
                .send()
                .map(|r| r.status().is_success())
                .unwrap_or(false)
            {
                daemon.url = url;
                return (daemon, t0.elapsed());
            }
        }
        std::thread::sleep(Duration::from_micros(500));
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "daemon did not start"
        );
    }
}

fn rss_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    // `cargo bench` passes --bench; any other caller (a test runner listing targets) gets
    // nothing, so the benchmark never runs by accident.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("config.yaml"), config_yaml()).expect("config");

    // Start-up and idle memory on an empty store.
    let mut startups = Vec::new();
    let mut idle_rss = 0;
    for _ in 0..10 {
        let (d, took) = start(dir.path());
        startups.push(took);
        std::thread::sleep(Duration::from_millis(300));
        idle_rss = rss_kib(d.child.id(), "VmRSS:");
    }
    startups.sort();

    seed(&dir.path().join("data"));
    let (d, _) = start(dir.path());
    let token = {
        let out = Command::new(env!("CARGO_BIN_EXE_shiplog"))
            .arg("--config")
            .arg(dir.path().join("config.yaml"))
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(["token", "create"])
            .output()
            .expect("token");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    std::thread::sleep(Duration::from_millis(300));
    let idle_rss_big = rss_kib(d.child.id(), "VmRSS:");

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let url = Arc::new(d.url.clone());
    let token = Arc::new(token);

    // Concurrent creates.
    let (create_lat, create_wall) = rt.block_on(async {
        let client = reqwest::Client::new();
        let t0 = Instant::now();
        let mut tasks = Vec::new();
        for c in 0..CLIENTS {
            let client = client.clone();
            let url = url.clone();
            let token = token.clone();
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::with_capacity(CREATES / CLIENTS);
                for i in 0..CREATES / CLIENTS {
                    let body = serde_json::json!({
                        "version": format!("bench-{c}-{i}"), "projects": ["web"]
                    });
                    let t = Instant::now();
                    let r = client
                        .post(format!("{url}/api/0/organizations/acme/releases/"))
                        .bearer_auth(token.as_str())
                        .json(&body)
                        .send()
                        .await
                        .expect("post");
                    assert_eq!(r.status().as_u16(), 201);
                    let _ = r.bytes().await;
                    lat.push(t.elapsed());
                }
                lat
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.expect("task"));
        }
        (all, t0.elapsed())
    });

    // Lists of 100 from a store of 110 000 releases.
    let (list_lat, list_wall) = rt.block_on(async {
        let client = reqwest::Client::new();
        let t0 = Instant::now();
        let mut lat = Vec::with_capacity(LISTS);
        for i in 0..LISTS {
            // Alternate the first page and deeper pages.
            let cursor = if i % 2 == 0 {
                String::new()
            } else {
                format!("&cursor=100:{}:0", i % 50)
            };
            let t = Instant::now();
            let r = client
                .get(format!(
                    "{url}/api/0/organizations/acme/releases/?per_page=100{cursor}"
                ))
                .bearer_auth(token.as_str())
                .send()
                .await
                .expect("get");
            assert_eq!(r.status().as_u16(), 200);
            let _ = r.bytes().await;
            lat.push(t.elapsed());
        }
        (lat, t0.elapsed())
    });
    let peak_rss = rss_kib(d.child.id(), "VmHWM:");

    let mut create_lat = create_lat;
    create_lat.sort();
    let mut list_lat = list_lat;
    list_lat.sort();
    println!("| measure | result | target |");
    println!("|---|---|---|");
    println!(
        "| start → /healthz 200 (median of 10, empty store) | {} | < 100 ms |",
        ms(percentile(&startups, 0.5))
    );
    println!(
        "| idle RSS, empty store | {:.1} MiB | < 20 MB |",
        idle_rss as f64 / 1024.0
    );
    println!(
        "| idle RSS, {SEEDED} releases | {:.1} MiB | |",
        idle_rss_big as f64 / 1024.0
    );
    println!(
        "| POST releases ({CREATES} creates, {CLIENTS} clients) | {:.0} req/s; p50 {}, p99 {} | > 2 000/s |",
        CREATES as f64 / create_wall.as_secs_f64(),
        ms(percentile(&create_lat, 0.5)),
        ms(percentile(&create_lat, 0.99))
    );
    println!(
        "| GET releases?per_page=100 ({LISTS} sequential, {} releases) | {:.0} req/s; p50 {}, p99 {} | p50 < 5 ms |",
        SEEDED + CREATES,
        LISTS as f64 / list_wall.as_secs_f64(),
        ms(percentile(&list_lat, 0.5)),
        ms(percentile(&list_lat, 0.99))
    );
    println!(
        "| peak RSS during the run | {:.1} MiB | |",
        peak_rss as f64 / 1024.0
    );
}
