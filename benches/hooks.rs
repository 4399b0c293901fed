//! Git hooks benchmarks (BENCHMARKS.md "## Git hooks"):
//!
//! 1. What shiplog's hooks add to `git commit --allow-empty`: the median over many commits in
//!    repositories without hooks, with a bare `exit 0` post-commit hook (the cost of starting
//!    a shell at all), with shiplog's default hooks, and with the optional
//!    reference-transaction hook as well. Commits alternate between the repositories so that
//!    machine noise hits every setup alike.
//! 2. Tag → release visible in the API for a 1 000-commit range: a real daemon watches a
//!    repository; the clock runs from `git tag` until the release answers with all its
//!    commits.
//!
//! Run with `cargo bench --bench hooks` (`-- commit` or `-- tag` for one part).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const COMMITS: usize = 300;
const RANGE: usize = 1000;
const TAG_ROUNDS: usize = 5;

fn git(dir: &Path) -> Command {
    let mut cmd = Command::new("git");
    cmd.current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "Bench")
        .env("GIT_AUTHOR_EMAIL", "bench@example.com")
        .env("GIT_COMMITTER_NAME", "Bench")
        .env("GIT_COMMITTER_EMAIL", "bench@example.com")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd
}

fn run(cmd: &mut Command) {
    let status = cmd.status().expect("run");
    assert!(status.success(), "{cmd:?} failed");
}

fn init(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    run(git(dir).args(["-c", "init.defaultBranch=main", "init", "-q"]));
    run(git(dir).args(["commit", "-q", "--allow-empty", "-m", "root"]));
}

fn shiplog() -> &'static str {
    env!("CARGO_BIN_EXE_shiplog")
}

fn install(dir: &Path, extra: &[&str]) {
    let config = dir.join(".bench-config.yaml");
    std::fs::write(&config, "organization: acme\n").unwrap();
    let mut cmd = Command::new(shiplog());
    cmd.arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.join(".bench-data"))
        .args(["hooks", "install"])
        .arg(dir)
        .args(extra)
        .stdout(Stdio::null());
    run(&mut cmd);
}

/// User + system time of this process's waited-for children (and theirs), from
/// /proc/self/stat, in milliseconds (Linux, 100 clock ticks per second).
fn children_cpu_ms() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may contain spaces) start at state (field 3).
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // cutime and cstime are fields 16 and 17 of the whole line, 14 and 15 here.
    let cutime: f64 = fields.get(13)?.parse().ok()?;
    let cstime: f64 = fields.get(14)?.parse().ok()?;
    Some((cutime + cstime) * 10.0)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn p90(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() * 9 / 10]
}

fn commit_bench(root: &Path) {
    let setups: Vec<(&str, PathBuf)> = vec![
        ("no hooks", root.join("none")),
        ("post-commit `exit 0` (a shell start)", root.join("exit0")),
        ("shiplog default hooks", root.join("default")),
        ("shiplog + reference-transaction", root.join("reftx")),
    ];
    for (_, dir) in &setups {
        init(dir);
    }
    let exit0 = setups[1].1.join(".git/hooks/post-commit");
    std::fs::write(&exit0, "#!/bin/sh\nexit 0\n").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&exit0, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    install(&setups[2].1, &[]);
    install(&setups[3].1, &["--reference-transaction"]);

    let mut times: Vec<Vec<f64>> = vec![Vec::new(); setups.len()];
    // Warm-up, then alternate.
    for (_, dir) in &setups {
        for _ in 0..10 {
            run(git(dir).args(["commit", "-q", "--allow-empty", "-m", "warm"]));
        }
    }
    for i in 0..COMMITS {
        for (k, (_, dir)) in setups.iter().enumerate() {
            let msg = format!("c{i}");
            let start = Instant::now();
            run(git(dir).args(["commit", "-q", "--allow-empty", "-m", &msg]));
            times[k].push(start.elapsed().as_secs_f64() * 1000.0);
        }
    }
    let base = median(&mut times[0].clone());
    println!("\n`git commit --allow-empty`, {COMMITS} commits per setup (alternating):\n");
    println!("| setup | median | p90 | added (median) |");
    println!("|---|---|---|---|");
    for (k, (name, _)) in setups.iter().enumerate() {
        let m = median(&mut times[k]);
        let p = p90(&mut times[k]);
        println!("| {name} | {m:.2} ms | {p:.2} ms | {:+.2} ms |", m - base);
    }
    // CPU time is what a busy machine cannot distort: git's and its hooks' user + system
    // time, per commit, from one block of commits per setup.
    if children_cpu_ms().is_some() {
        println!(
            "\nCPU time (user + system of git and its hooks) per commit, {COMMITS} commits per setup:\n"
        );
        println!("| setup | CPU per commit | added |");
        println!("|---|---|---|");
        let mut base_cpu = None;
        for (name, dir) in &setups {
            let before = children_cpu_ms().unwrap_or(0.0);
            for i in 0..COMMITS {
                run(git(dir).args(["commit", "-q", "--allow-empty", "-m", &format!("cpu{i}")]));
            }
            let per = (children_cpu_ms().unwrap_or(0.0) - before) / COMMITS as f64;
            let base = *base_cpu.get_or_insert(per);
            println!("| {name} | {per:.2} ms | {:+.2} ms |", per - base);
        }
    }
    // What the spools hold now (the daemon is not running): one file per commit.
    let spool = setups[2].1.join(".git/shiplog/spool");
    let n = std::fs::read_dir(&spool).map(|d| d.count()).unwrap_or(0);
    println!("\n(spool of the default setup holds {n} files: one per commit)");
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

fn start_daemon(dir: &Path, repo: &Path) -> Daemon {
    let config = dir.join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "organization: acme
projects: [{{slug: web}}]
repositories:
  - name: acme/web
    path: '{}'
    projects: [web]
    releases:
      - tag_pattern: '^v(?P<version>.+)$'
        version: 'web@{{version}}'
schedules: []
",
            repo.display()
        ),
    )
    .unwrap();
    let data = dir.join("data");
    let child = Command::new(shiplog())
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
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let url = loop {
        if let Ok(text) = std::fs::read_to_string(data.join("daemon.json")) {
            let v: serde_json::Value = serde_json::from_str(&text).unwrap();
            let url = v["url"].as_str().unwrap().to_string();
            if reqwest::blocking::get(format!("{url}/healthz"))
                .is_ok_and(|r| r.status().is_success())
            {
                break url;
            }
        }
        assert!(Instant::now() < deadline, "daemon did not start");
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut d = Daemon { child, url };
    let out = Command::new(shiplog())
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(&data)
        .args(["token", "create"])
        .output()
        .unwrap();
    let token = String::from_utf8_lossy(&out.stdout).trim().to_string();
    d.url = format!("{}|{token}", d.url);
    d
}

/// Builds a linear history of `n` commits, each changing two files, with fast-import.
fn history(repo: &Path, n: usize) {
    let mut stream = String::new();
    let mut t = 1_700_000_000u64;
    for i in 0..n {
        t += 60;
        let msg = format!("change {i}\n");
        stream.push_str(&format!(
            "commit refs/heads/main\ncommitter Bench <bench@example.com> {t} +0000\ndata {}\n{msg}",
            msg.len()
        ));
        if i == 0 {
            stream.push_str("from refs/heads/main^0\n");
        }
        let content = format!("{i}\n");
        for file in [format!("src/f{}.txt", i % 50), "CHANGELOG".to_string()] {
            stream.push_str(&format!(
                "M 100644 inline {file}\ndata {}\n{content}",
                content.len()
            ));
        }
        stream.push('\n');
    }
    let mut child = git(repo)
        .args(["fast-import", "--quiet"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stream.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());
    run(git(repo).args(["reset", "-q", "--hard", "main"]));
}

fn tag_bench(root: &Path) {
    let repo = root.join("tagged");
    init(&repo);
    history(&repo, RANGE * TAG_ROUNDS + 1);
    let d = start_daemon(root, &repo);
    let (url, token) = d.url.split_once('|').unwrap();
    let client = reqwest::blocking::Client::new();
    let commit_count = |version: &str| -> Option<i64> {
        let r = client
            .get(format!(
                "{url}/api/0/organizations/acme/releases/{version}/"
            ))
            .bearer_auth(token)
            .send()
            .ok()?;
        if !r.status().is_success() {
            return None;
        }
        r.json::<serde_json::Value>().ok()?["commitCount"].as_i64()
    };
    let wait = |version: &str, want: i64| -> Duration {
        let start = Instant::now();
        let deadline = start + Duration::from_secs(60);
        loop {
            if commit_count(version) == Some(want) {
                return start.elapsed();
            }
            assert!(Instant::now() < deadline, "{version} never appeared");
            std::thread::sleep(Duration::from_millis(2));
        }
    };
    // The first release (no predecessor) at the oldest commit.
    let total = RANGE * TAG_ROUNDS + 1;
    run(git(&repo).args(["tag", "v1.0.0", &format!("main~{}", total - 1)]));
    wait("web@1.0.0", 2);
    let mut times = Vec::new();
    for round in 1..=TAG_ROUNDS {
        let at = format!("main~{}", total - 1 - round * RANGE);
        let tag = format!("v1.{round}.0");
        let start = Instant::now();
        run(git(&repo).args(["tag", &tag, &at]));
        let waited = wait(&format!("web@1.{round}.0"), RANGE as i64);
        let _ = waited;
        times.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    let mut sorted = times.clone();
    println!(
        "\nTag → release visible in the API, {RANGE}-commit range (2 files per commit), {TAG_ROUNDS} rounds:\n"
    );
    println!("| rounds (ms) | median | max |");
    println!("|---|---|---|");
    println!(
        "| {} | {:.0} ms | {:.0} ms |",
        times
            .iter()
            .map(|t| format!("{t:.0}"))
            .collect::<Vec<_>>()
            .join(", "),
        median(&mut sorted),
        sorted.iter().cloned().fold(0.0, f64::max)
    );
}

fn main() {
    // `cargo bench` passes --bench; test runners (`cargo test --all-targets`, nextest's
    // `--list`) run this binary too, and must not start a benchmark.
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench") {
        if !args.iter().any(|a| a == "--list") {
            println!("benchmarks run with `cargo bench --bench hooks`");
        }
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "load average at start: {}",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    let git_version = Command::new("git").arg("--version").output().unwrap();
    println!(
        "{} , /bin/sh -> {}",
        String::from_utf8_lossy(&git_version.stdout).trim(),
        std::fs::read_link("/bin/sh")
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| "sh".into())
    );
    // `cargo bench --bench hooks -- commit` (or `tag`) runs one part.
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wanted = |name: &str| only.is_empty() || only.iter().any(|o| o == name);
    if wanted("commit") {
        commit_bench(&root.path().join("commit"));
    }
    if wanted("tag") {
        tag_bench(&root.path().join("tag"));
    }
}
