//! Artifacts benchmark: storing a 200 MB bundle through the upload endpoints (shiplog's own
//! uploader, speaking sentry-cli's chunk protocol) and through the drop folder, against a real
//! daemon (the release binary), compared with `cp` + `sha1sum` of the same bytes on the same
//! disk; and the daemon's peak RSS (VmHWM) while it does so.
//!
//! Run: `cargo bench --bench artifacts`. Prints a Markdown table for BENCHMARKS.md. Each
//! phase runs on a fresh daemon and data dir, so no phase finds its chunks already stored.
//! Without `--bench` (as `cargo test --all-targets` runs it) it does nothing.
//!
//! `SHIPLOG_BENCH_BLOBS` picks the blob store (`storage.blobs`): unset or `db`, `file` (a
//! directory next to the data dir), or an `s3://bucket/prefix` URL reached through
//! `SHIPLOG_BENCH_S3_ENDPOINT` (plain http allowed; credentials from `AWS_*`).
//! `SHIPLOG_BENCH_RUNS` overrides the number of runs.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const FILES: usize = 20;
const FILE_SIZE: usize = 10 << 20;
const RUNS: usize = 3;

fn runs() -> usize {
    std::env::var("SHIPLOG_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(RUNS)
}

/// The `storage:` section for `SHIPLOG_BENCH_BLOBS` (see the module docs).
fn storage(dir: &Path) -> String {
    match std::env::var("SHIPLOG_BENCH_BLOBS").as_deref() {
        Ok("file") => format!(
            "storage:\n  blobs: file://{}\n",
            dir.join("blobs").display()
        ),
        Ok(url) if url.starts_with("s3://") => format!(
            "storage:\n  blobs: {url}\n  s3: {{ endpoint: \"{}\", allow_http: true }}\n",
            std::env::var("SHIPLOG_BENCH_S3_ENDPOINT").unwrap_or_default()
        ),
        _ => String::new(),
    }
}

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_shiplog")
}

fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A sentry-cli-shaped bundle (SYSB header, deflated entries, manifest last) of FILES files.
fn make_bundle(path: &Path, release: &str) -> u64 {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).expect("bundle"));
    file.write_all(b"SYSB\x02\x00\x00\x00").unwrap();
    let mut zip = zip::ZipWriter::new(file);
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .compression_level(Some(1));
    let mut files = serde_json::Map::new();
    for i in 0..FILES {
        let name = format!("files/_/_/static/chunk-{i}.min.js");
        zip.start_file(name.as_str(), options).unwrap();
        zip.write_all(&noise(i as u64 + 1, FILE_SIZE)).unwrap();
        files.insert(
            name,
            serde_json::json!({"type": "minified_source", "url": format!("~/static/chunk-{i}.min.js")}),
        );
    }
    zip.start_file("manifest.json", options).unwrap();
    let manifest = serde_json::json!({"org": "acme", "release": release, "files": files});
    zip.write_all(manifest.to_string().as_bytes()).unwrap();
    zip.finish()
        .unwrap()
        .into_inner()
        .unwrap()
        .sync_all()
        .unwrap();
    std::fs::metadata(path).unwrap().len()
}

struct Daemon {
    child: Child,
    dir: PathBuf,
    url: String,
    token: String,
}

impl Daemon {
    fn start(dir: &Path, drop: &Path) -> Daemon {
        std::fs::create_dir_all(dir).unwrap();
        let config = dir.join("config.yaml");
        std::fs::write(
            &config,
            format!(
                "organization: acme\nprojects:\n  - slug: web\nartifacts:\n  drop_dirs: [{}]\n{}",
                drop.display(),
                storage(dir)
            ),
        )
        .unwrap();
        let child = Command::new(bin())
            .arg("--config")
            .arg(&config)
            .arg("--data-dir")
            .arg(dir.join("data"))
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn daemon");
        let runtime = dir.join("data/daemon.json");
        let deadline = Instant::now() + Duration::from_secs(30);
        let url = loop {
            if let Ok(text) = std::fs::read_to_string(&runtime)
                && let Ok(v) = serde_json::from_str::<serde_json::Value>(&text)
            {
                break v["url"].as_str().unwrap().to_string();
            }
            assert!(Instant::now() < deadline, "daemon did not start");
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut d = Daemon {
            child,
            dir: dir.to_path_buf(),
            url,
            token: String::new(),
        };
        let out = d.shiplog(&["token", "create"]);
        d.token = String::from_utf8(out.stdout).unwrap().trim().to_string();
        let out = d.shiplog(&["releases", "-p", "web", "new", "bench@1.0.0"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        d
    }

    fn shiplog(&self, args: &[&str]) -> std::process::Output {
        Command::new(bin())
            .arg("--config")
            .arg(self.dir.join("config.yaml"))
            .arg("--data-dir")
            .arg(self.dir.join("data"))
            .args(args)
            .env("SHIPLOG_URL", &self.url)
            .env("SHIPLOG_TOKEN", &self.token)
            .output()
            .expect("shiplog")
    }

    /// Peak resident set size so far, in MiB.
    fn peak_rss_mib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    }

    fn db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open_with_flags(
            self.dir.join("data/shiplog.sqlite3"),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap()
    }

    fn count(db: &rusqlite::Connection, sql: &str) -> i64 {
        db.query_row(sql, [], |r| r.get(0)).unwrap_or(0)
    }

    fn stored_files(db: &rusqlite::Connection) -> i64 {
        Self::count(db, "SELECT count(*) FROM artifact_index")
    }

    /// Waits (polling every 5 ms) until the bundle's verify step has read every entry.
    fn wait_verified(&self, db: &rusqlite::Connection) {
        let deadline = Instant::now() + Duration::from_secs(600);
        while Self::count(
            db,
            "SELECT count(*) FROM artifact_bundles WHERE verified IS NOT NULL",
        ) != 1
        {
            assert!(Instant::now() < deadline, "bundle never verified");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// CPU seconds (user + system) of a process from /proc/<pid>/stat, or, for `None`, of this
/// process's waited-for children (cutime + cstime).
fn cpu_seconds(pid: Option<u32>) -> f64 {
    let path = match pid {
        Some(p) => format!("/proc/{p}/stat"),
        None => "/proc/self/stat".to_string(),
    };
    let text = std::fs::read_to_string(path).unwrap_or_default();
    // The fields after the parenthesised command name start at field 3 (state).
    let rest = text.rsplit(')').next().unwrap_or("");
    let f: Vec<f64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    let at = |i: usize| f.get(i).copied().unwrap_or(0.0);
    let ticks = if pid.is_some() {
        at(11) + at(12) // utime, stime
    } else {
        at(13) + at(14) // cutime, cstime
    };
    ticks / 100.0
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// One measured run: wall seconds until the artifacts are stored and served, and until the
/// verify step has read every entry; CPU seconds (daemon + client) until verified; daemon
/// peak RSS in MiB.
struct Run {
    wall: f64,
    verified: f64,
    cpu: f64,
    rss: f64,
}

fn baseline(bundle: &Path, work: &Path) -> Run {
    let copy = work.join("copy.zip");
    let cpu0 = cpu_seconds(None);
    let start = Instant::now();
    let cp = Command::new("cp").arg(bundle).arg(&copy).status().unwrap();
    let sum = Command::new("sha1sum")
        .arg(&copy)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    let wall = start.elapsed().as_secs_f64();
    assert!(cp.success() && sum.success());
    let cpu = cpu_seconds(None) - cpu0;
    let _ = std::fs::remove_file(copy);
    Run {
        wall,
        verified: wall,
        cpu,
        rss: 0.0,
    }
}

fn upload(bundle: &Path, work: &Path, run: usize) -> Run {
    let d = Daemon::start(&work.join(format!("up-{run}")), &work.join("unused-drop"));
    let args = vec![
        "artifacts",
        "-r",
        "bench@1.0.0",
        "upload",
        "-p",
        "web",
        "--wait",
        bundle.to_str().unwrap(),
    ];
    let (daemon0, client0) = (cpu_seconds(Some(d.child.id())), cpu_seconds(None));
    let start = Instant::now();
    let out = d.shiplog(&args);
    let wall = start.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let db = d.db();
    assert_eq!(Daemon::stored_files(&db), FILES as i64);
    d.wait_verified(&db);
    let verified = start.elapsed().as_secs_f64();
    let cpu = cpu_seconds(Some(d.child.id())) - daemon0 + cpu_seconds(None) - client0;
    Run {
        wall,
        verified,
        cpu,
        rss: d.peak_rss_mib(),
    }
}

fn drop_folder(bundle: &Path, work: &Path, run: usize) -> Run {
    let drop = work.join(format!("drop-{run}"));
    std::fs::create_dir_all(&drop).unwrap();
    let d = Daemon::start(&work.join(format!("dropd-{run}")), &drop);
    // Put the bundle beside the drop folder first (same disk, flushed, like a file CI
    // finished writing earlier), then rename it in: the clock starts when the drop appears.
    let staged = drop.join("bundle.zip.tmp");
    std::fs::copy(bundle, &staged).unwrap();
    let _ = Command::new("sync").status();
    let target = drop.join("bundle.zip");
    let db = d.db();
    let daemon0 = cpu_seconds(Some(d.child.id()));
    let start = Instant::now();
    std::fs::rename(&staged, &target).unwrap();
    let deadline = Instant::now() + Duration::from_secs(600);
    // Stored: every file is in the release's index (and downloadable).
    while Daemon::stored_files(&db) != FILES as i64 {
        assert!(Instant::now() < deadline, "drop not stored");
        std::thread::sleep(Duration::from_millis(5));
    }
    let wall = start.elapsed().as_secs_f64();
    // Verified: the drop is cleared away once the verify step has read every entry.
    while target.exists() {
        assert!(Instant::now() < deadline, "drop not verified");
        std::thread::sleep(Duration::from_millis(5));
    }
    let verified = start.elapsed().as_secs_f64();
    let cpu = cpu_seconds(Some(d.child.id())) - daemon0;
    Run {
        wall,
        verified,
        cpu,
        rss: d.peak_rss_mib(),
    }
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let work = tempfile::Builder::new()
        .prefix("shiplog-bench-artifacts")
        .tempdir_in(std::env::temp_dir())
        .unwrap();
    let bundle = work.path().join("bundle.zip");
    let size = make_bundle(&bundle, "bench@1.0.0");
    let mb = size as f64 / 1e6;
    eprintln!("bundle: {mb:.1} MB, {FILES} files");
    let _ = Command::new("sync").status();

    let base_runs: Vec<Run> = (0..runs())
        .map(|_| baseline(&bundle, work.path()))
        .collect();
    let base = median(base_runs.iter().map(|r| r.wall).collect());
    let base_cpu = median(base_runs.iter().map(|r| r.cpu).collect());
    let mut rows = Vec::new();
    let mut measure = |name: &str, f: &dyn Fn(usize) -> Run| {
        let results: Vec<Run> = (0..runs()).map(f).collect();
        let t = median(results.iter().map(|r| r.wall).collect());
        let v = median(results.iter().map(|r| r.verified).collect());
        let cpu = median(results.iter().map(|r| r.cpu).collect());
        let rss = results.iter().map(|r| r.rss).fold(0.0, f64::max);
        eprintln!(
            "{name}: stored {t:.2} s, verified {v:.2} s, {cpu:.2} s CPU, peak RSS {rss:.1} MiB"
        );
        rows.push((name.to_string(), t, v, cpu, rss));
    };
    // The CLI sends raw chunks to a daemon on this machine (gzip, sentry-cli's way, only
    // pays over a network): this is the protocol's own cost.
    measure("upload endpoints (`shiplog artifacts upload`)", &|r| {
        upload(&bundle, work.path(), r)
    });
    measure("drop folder", &|r| drop_folder(&bundle, work.path(), r));

    println!(
        "Bundle: {mb:.1} MB ({FILES} files of {} MiB, deflated, SYSB header); median of {} runs; blobs: {}.",
        FILE_SIZE >> 20,
        runs(),
        std::env::var("SHIPLOG_BENCH_BLOBS").unwrap_or_else(|_| "db".into())
    );
    println!();
    println!(
        "| path | stored (wall) | throughput | stored vs `cp` + `sha1sum` | verified (wall) | verified vs `cp` + `sha1sum` | CPU to verified (daemon + client) | daemon peak RSS (VmHWM) |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    println!(
        "| `cp` + `sha1sum` (baseline) | {base:.2} s | {:.0} MB/s | 1.00x | - | - | {base_cpu:.2} s | - |",
        mb / base
    );
    for (name, t, v, cpu, rss) in rows {
        println!(
            "| {name} | {t:.2} s | {:.0} MB/s | {:.2}x | {v:.2} s | {:.2}x | {cpu:.2} s | {rss:.0} MiB |",
            mb / t,
            base / t,
            base / v,
        );
    }
    println!();
    println!(
        "Load average at the end: {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
}
