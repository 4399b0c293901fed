//! Web pages benchmark: a real daemon over a store of 100 000 releases, one of them with
//! 10 000 commits (each with two changed files), signed in with a `shiplog open` link.
//!
//! Measures: the releases index (first page, 25 releases with health) — latency p50/p90 and
//! its HTML plus stylesheet weight — and the details page of the 10 000-commit release (its
//! commit list paged at 100). Latency is measured by a client on loopback, so it is the server
//! time plus a loopback round trip. Prints a Markdown table for BENCHMARKS.md.
//! Run: `cargo bench --bench web` (or `--profile dev` for a debug build, far slower).

use std::path::Path;
use std::time::{Duration, Instant};

use shiplog::config::Config;
use shiplog::core::{self, org::ProjectRef, release::CreateRelease};
use shiplog::model::commit::{ChangeKind, CommitData, FileChange};
use shiplog::store::Store;

mod support;
use support::daemon::{Daemon, shiplog};

const SEEDED: usize = 100_000;
const COMMITS: usize = 10_000;
const ROUNDS: usize = 200;

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
            let big = core::release::upsert(
                tx,
                &org,
                &CreateRelease {
                    version: "web@99.0.0".into(),
                    projects: vec![ProjectRef::Slug("web".into())],
                    ..Default::default()
                },
                &core::now(),
            )?
            .release;
            let commits: Vec<CommitData> = (0..COMMITS)
                .map(|i| CommitData {
                    id: format!("{:040x}", i + 1),
                    repository: Some("acme/web".into()),
                    message: Some(format!("change {i}\n")),
                    author_name: Some(format!("Dev {}", i % 40)),
                    author_email: Some(format!("dev{}@acme.test", i % 40)),
                    timestamp: Some("2026-11-01T10:00:00Z".into()),
                    patch_set: vec![
                        FileChange {
                            path: format!("src/mod{}/file{i}.rs", i % 50),
                            kind: ChangeKind::Modified,
                        },
                        FileChange {
                            path: format!("tests/t{i}.rs"),
                            kind: ChangeKind::Added,
                        },
                    ],
                })
                .collect();
            core::commit::set_commits(tx, &org, &big, &commits)?;
            Ok::<_, core::CoreError>(())
        })
        .expect("seed");
    eprintln!(
        "seeded {SEEDED} releases and one of {COMMITS} commits in {:.1?}",
        start.elapsed()
    );
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// Latencies of `rounds` GETs of `url` (after two warm-up requests) and the body's size.
fn measure(
    client: &reqwest::blocking::Client,
    url: &str,
    cookie: &str,
    rounds: usize,
) -> (Vec<Duration>, usize) {
    let get = || {
        let resp = client
            .get(url)
            .header("cookie", cookie)
            .send()
            .expect("GET");
        assert_eq!(resp.status(), 200, "{url}");
        resp.bytes().expect("body").len()
    };
    get();
    let size = get();
    let mut times: Vec<Duration> = (0..rounds)
        .map(|_| {
            let t = Instant::now();
            get();
            t.elapsed()
        })
        .collect();
    times.sort();
    (times, size)
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("config.yaml"), config_yaml()).expect("config");
    seed(&dir.path().join("data"));
    let d = Daemon::start_in(dir.path());

    // Sign in the way a person does: `shiplog open --print`, then the link.
    let out = shiplog(dir.path())
        .args(["open", "--print", "--url", &d.url])
        .output()
        .expect("shiplog open");
    let link = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let client = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let resp = client.get(&link).send().expect("sign-in link");
    let cookie = resp
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .expect("session cookie")
        .to_string();

    let index = format!("{}/organizations/acme/releases/", d.url);
    let (index_times, index_size) = measure(&client, &index, &cookie, ROUNDS);
    let css = client
        .get(format!("{}/static/style.css", d.url))
        .send()
        .and_then(|r| r.bytes())
        .expect("stylesheet")
        .len();
    let details = format!("{}/organizations/acme/releases/web@99.0.0/", d.url);
    let (details_times, details_size) = measure(&client, &details, &cookie, ROUNDS);

    let sorted: Vec<(&str, Vec<Duration>)> = ["semver", "crash_free_sessions"]
        .into_iter()
        .map(|sort| {
            (
                sort,
                measure(&client, &format!("{index}?sort={sort}"), &cookie, 20).0,
            )
        })
        .collect();

    println!("| web page ({SEEDED} releases) | p50 | p90 | weight |");
    println!("|---|---|---|---|");
    println!(
        "| releases index, first page (25 with 24 h health) | {} | {} | {:.1} KB HTML + {:.1} KB CSS = {:.1} KB |",
        ms(percentile(&index_times, 0.5)),
        ms(percentile(&index_times, 0.9)),
        index_size as f64 / 1000.0,
        css as f64 / 1000.0,
        (index_size + css) as f64 / 1000.0
    );
    for (sort, times) in &sorted {
        println!(
            "| releases index, `sort={sort}` | {} | {} | |",
            ms(percentile(times, 0.5)),
            ms(percentile(times, 0.9))
        );
    }
    println!(
        "| release details, {COMMITS} commits (page of 100, 24 h chart) | {} | {} | {:.1} KB HTML |",
        ms(percentile(&details_times, 0.5)),
        ms(percentile(&details_times, 0.9)),
        details_size as f64 / 1000.0
    );
}
