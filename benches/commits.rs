//! Commits benchmark: reading a 10 000-commit range with patch sets through git2, compared with
//! `git log --name-status` over the same range, and storing those commits on a release with
//! `set_commits` (Sentry's §3.2 rules, one SQLite transaction).
//!
//! The repository is built with `git fast-import` (five authors, every commit modifying three
//! files, every fifth adding one and every seventh deleting one, in a tree of a few hundred
//! files in nested directories). Run with `cargo bench --bench commits`.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use shiplog::core::commit;
use shiplog::core::org::ProjectRef;
use shiplog::core::release::{self, CreateRelease};
use shiplog::git::{self, RangeOptions};
use shiplog::model::commit::CommitData;
use shiplog::store::{Store, orgs};

#[path = "support/mod.rs"]
mod support;
use support::{fast_import, git};

/// Commits in the repository; the range `root..tip` then has 10 000.
const COMMITS: usize = 10_001;
const RUNS: usize = 5;

/// Builds the repository; returns (first commit, last commit).
fn build_repo(dir: &Path) -> (String, String) {
    git(dir, &["-c", "init.defaultBranch=main", "init", "-q"]);
    let mut stream = Vec::with_capacity(16 << 20);
    let authors = [
        ("Dev One", "dev@acme.test"),
        ("Dev Two", "two@acme.test"),
        ("Dev Three", "three@acme.test"),
        ("Dev Four", "four@acme.test"),
        ("Dev Five", "five@acme.test"),
    ];
    let mut live: Vec<String> = (0..300)
        .map(|i| format!("src/mod{}/sub{}/file{i}.rs", i % 10, i % 3))
        .collect();
    let mut added = 0usize;
    let base = 1_700_000_000u64;
    for i in 1..=COMMITS {
        let (name, email) = authors[i % authors.len()];
        let when = base + i as u64 * 60;
        let message = format!("commit {i}: change things\n\nFixes WEB-{i}\n");
        writeln!(stream, "commit refs/heads/main\nmark :{i}").unwrap();
        writeln!(stream, "author {name} <{email}> {when} +0200").unwrap();
        writeln!(stream, "committer {name} <{email}> {when} +0200").unwrap();
        writeln!(stream, "data {}\n{message}", message.len()).unwrap();
        if i > 1 {
            writeln!(stream, "from :{}", i - 1).unwrap();
        } else {
            // The root commit creates the whole tree.
            for path in &live {
                let body = format!("{path} v0\n");
                writeln!(
                    stream,
                    "M 100644 inline {path}\ndata {}\n{body}",
                    body.len()
                )
                .unwrap();
            }
        }
        for k in 0..3 {
            let path = &live[(i * 7 + k * 101) % live.len()];
            let body = format!("{path} v{i}\n");
            writeln!(
                stream,
                "M 100644 inline {path}\ndata {}\n{body}",
                body.len()
            )
            .unwrap();
        }
        if i % 5 == 0 {
            added += 1;
            let path = format!("src/new/n{}/added{added}.rs", added % 20);
            let body = format!("{path}\n");
            writeln!(
                stream,
                "M 100644 inline {path}\ndata {}\n{body}",
                body.len()
            )
            .unwrap();
            live.push(path);
        }
        if i % 7 == 0 && live.len() > 200 {
            let path = live.swap_remove((i * 13) % live.len());
            writeln!(stream, "D {path}").unwrap();
        }
        writeln!(stream).unwrap();
    }
    fast_import(dir, &stream);
    let first = String::from_utf8(git(dir, &["rev-list", "--max-parents=0", "main"]).stdout)
        .unwrap()
        .trim()
        .to_string();
    let last = String::from_utf8(git(dir, &["rev-parse", "main"]).stdout)
        .unwrap()
        .trim()
        .to_string();
    (first, last)
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    // `cargo bench` passes --bench; a test runner listing targets gets nothing.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let repo_dir = dir.path().join("repo");
    std::fs::create_dir(&repo_dir).unwrap();
    let t = Instant::now();
    let (first, last) = build_repo(&repo_dir);
    println!("built a {COMMITS}-commit repository in {}", ms(t.elapsed()));
    let range = format!("{first}..{last}");

    // git log over the same range: everything collect_range reads (sha, author, time,
    // message, name-status), renames off.
    let mut git_times = Vec::new();
    let mut git_lines = 0;
    for _ in 0..RUNS {
        let t = Instant::now();
        let out = git(
            &repo_dir,
            &[
                "log",
                "--name-status",
                "--no-renames",
                "--format=%H%n%an%n%ae%n%aI%n%B",
                &range,
            ],
        );
        git_times.push(t.elapsed());
        git_lines = out.stdout.iter().filter(|b| **b == b'\n').count();
    }

    let mut ours = Vec::new();
    let mut commits: Vec<CommitData> = Vec::new();
    for _ in 0..RUNS {
        let t = Instant::now();
        let repo = git::open(&repo_dir).expect("open");
        commits = git::collect_range(&repo, Some(&first), &last, &RangeOptions::default())
            .expect("collect_range");
        ours.push(t.elapsed());
    }
    let changes: usize = commits.iter().map(|c| c.patch_set.len()).sum();
    assert_eq!(commits.len(), COMMITS - 1);

    // A path filter over the same range (git log -- src/mod3).
    let mut filtered_times = Vec::new();
    let mut filtered = 0;
    for _ in 0..RUNS {
        let t = Instant::now();
        let repo = git::open(&repo_dir).expect("open");
        let opts = RangeOptions {
            paths: vec!["src/mod3".into()],
            initial_depth: 20,
        };
        filtered = git::collect_range(&repo, Some(&first), &last, &opts)
            .expect("collect_range")
            .len();
        filtered_times.push(t.elapsed());
    }
    let mut git_filtered = Vec::new();
    for _ in 0..RUNS {
        let t = Instant::now();
        git(
            &repo_dir,
            &[
                "log",
                "--name-status",
                "--no-renames",
                "--format=%H",
                &range,
                "--",
                "src/mod3",
            ],
        );
        git_filtered.push(t.elapsed());
    }

    // set_commits of the 9 999 commits into a fresh store, then a re-set of the same list
    // (every commit and author already stored), each one transaction.
    for c in &mut commits {
        c.repository = Some("acme/web".into());
    }
    let mut fresh = Vec::new();
    let mut reset = Vec::new();
    for run in 0..3 {
        let data = dir.path().join(format!("data{run}"));
        let store = Store::open_dir(&data).expect("store");
        let (org, rel) = store
            .write_blocking(|tx| {
                let now = shiplog::core::now();
                let org = orgs::ensure_org(tx, "acme", &now)?;
                orgs::upsert_project(tx, org.id, "web", "Web", None, &now)?;
                let req = CreateRelease {
                    version: "1.0.0".into(),
                    projects: vec![ProjectRef::Slug("web".into())],
                    ..Default::default()
                };
                let r = release::upsert(tx, &org, &req, &now)?.release;
                Ok::<_, shiplog::core::CoreError>((org, r))
            })
            .expect("setup");
        let t = Instant::now();
        store
            .write_blocking(|tx| commit::set_commits(tx, &org, &rel, &commits))
            .expect("set_commits");
        fresh.push(t.elapsed());
        let t = Instant::now();
        store
            .write_blocking(|tx| commit::set_commits(tx, &org, &rel, &commits))
            .expect("set_commits again");
        reset.push(t.elapsed());
    }

    let git_median = median(git_times);
    let ours_median = median(ours);
    println!();
    println!("| measurement | median of {RUNS} | notes |");
    println!("|---|---|---|");
    println!(
        "| `git log --name-status --no-renames` over {} commits | {} | {git_lines} lines of output |",
        COMMITS - 1,
        ms(git_median)
    );
    println!(
        "| `git::collect_range` over the same range | {} | {} commits, {changes} file changes; {:.2}x git |",
        ms(ours_median),
        commits.len(),
        ours_median.as_secs_f64() / git_median.as_secs_f64()
    );
    println!(
        "| `git log --name-status -- src/mod3` | {} | |",
        ms(median(git_filtered))
    );
    println!(
        "| `git::collect_range` with `paths: [src/mod3]` | {} | {filtered} commits kept |",
        ms(median(filtered_times))
    );
    println!(
        "| `set_commits` of {} commits, fresh SQLite store (median of 3) | {} | one transaction |",
        commits.len(),
        ms(median(fresh))
    );
    println!(
        "| `set_commits` again, replacing the same list (median of 3) | {} | |",
        ms(median(reset))
    );
}
