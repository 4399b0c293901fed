//! History import benchmark: a synthetic repository of ripgrep's size -- about 4 500 commits and
//! 126 tags in two release policies, one of them path-filtered -- imported into a fresh store
//! with `core::import`, as `import_tags: true` does at first sight and `shiplog repos import`
//! does later.
//!
//! The repository is built with `git fast-import`: ten crates of about 40 files each, every
//! commit changing two or three files of one crate (`crates/ignore` in one commit of eight),
//! 100 `v0.X.Y` tags every 45 commits (every other one annotated) and 26 `ignore-0.4.N` tags
//! every 173 commits for the policy with `paths: [crates/ignore]`. Run with
//! `cargo bench --bench import`.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use shiplog::config::Config;
use shiplog::core::import::{self, Step};
use shiplog::pipeline::git::LocalCommits;
use shiplog::store::Store;

#[path = "support/mod.rs"]
mod support;
use support::{fast_import, git};

const COMMITS: usize = 4_500;
const CRATES: [&str; 10] = [
    "core", "ignore", "printer", "searcher", "matcher", "regex", "pcre2", "globset", "cli", "grep",
];
const RUNS: usize = 3;

/// Builds the repository; returns the number of tags.
fn build_repo(dir: &Path) -> usize {
    git(dir, &["-c", "init.defaultBranch=main", "init", "-q"]);
    let mut stream = Vec::with_capacity(8 << 20);
    let base = 1_500_000_000u64;
    let mut tags = 0;
    for i in 1..=COMMITS {
        let when = base + i as u64 * 3600;
        let krate = if i % 8 == 0 {
            "ignore"
        } else {
            CRATES[(i * 7) % CRATES.len()]
        };
        let message = if i % 50 == 0 {
            format!("{krate}: fix a thing\n\nFixes WEB-{}\n", i / 50)
        } else {
            format!("{krate}: change {i}\n")
        };
        writeln!(stream, "commit refs/heads/main\nmark :{i}").unwrap();
        writeln!(stream, "author Dev <dev@example.com> {when} +0000").unwrap();
        writeln!(stream, "committer Dev <dev@example.com> {when} +0000").unwrap();
        writeln!(stream, "data {}\n{message}", message.len()).unwrap();
        if i > 1 {
            writeln!(stream, "from :{}", i - 1).unwrap();
        } else {
            for k in CRATES {
                for f in 0..40 {
                    let path = format!("crates/{k}/src/m{}/f{f}.rs", f % 4);
                    writeln!(stream, "M 100644 inline {path}\ndata 2\nv0").unwrap();
                }
            }
        }
        for n in 0..(2 + i % 2) {
            let f = (i * 13 + n * 17) % 40;
            let path = format!("crates/{krate}/src/m{}/f{f}.rs", f % 4);
            let body = format!("v{i}");
            writeln!(
                stream,
                "M 100644 inline {path}\ndata {}\n{body}",
                body.len()
            )
            .unwrap();
        }
        writeln!(stream).unwrap();
        if i % 45 == 0 {
            let n = i / 45;
            let name = format!("v0.{}.{}", n / 10, n % 10);
            if n % 2 == 0 {
                let msg = format!("release {name}");
                writeln!(
                    stream,
                    "tag {name}\nfrom :{i}\ntagger Dev <dev@example.com> {} +0000\ndata {}\n{msg}",
                    when + 60,
                    msg.len()
                )
                .unwrap();
            } else {
                writeln!(stream, "reset refs/tags/{name}\nfrom :{i}\n").unwrap();
            }
            tags += 1;
        }
        if i % 173 == 0 {
            writeln!(
                stream,
                "reset refs/tags/ignore-0.4.{}\nfrom :{i}\n",
                i / 173
            )
            .unwrap();
            tags += 1;
        }
    }
    fast_import(dir, &stream);
    tags
}

fn main() {
    // `cargo bench` passes --bench; a test runner listing targets gets nothing.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let repo_dir = dir.path().join("rg");
    std::fs::create_dir(&repo_dir).unwrap();
    let t = Instant::now();
    let tags = build_repo(&repo_dir);
    println!(
        "built a {COMMITS}-commit repository with {tags} tags in {:.2} s",
        t.elapsed().as_secs_f64()
    );
    let config = Config::from_yaml_str(
        &format!(
            "organization: acme
projects:
  - slug: rg
  - slug: ignore
repositories:
  - name: acme/rg
    path: '{}'
    projects: [rg]
    releases:
      - tag_pattern: '^v(?P<version>.+)$'
        version: 'rg@{{version}}'
      - tag_pattern: '^ignore-(?P<version>.+)$'
        version: 'ignore@{{version}}'
        projects: [ignore]
        paths: [crates/ignore]
",
            repo_dir.display()
        ),
        "bench",
    )
    .expect("config");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let history = LocalCommits {
        path: repo_dir.clone(),
    };
    let mut times = Vec::new();
    for run in 0..RUNS {
        let data = dir.path().join(format!("data{run}"));
        let store = Store::open_dir(&data).expect("store");
        store
            .write_blocking(|tx| {
                let now = shiplog::core::now();
                let org = shiplog::core::org::sync_config(tx, &config, &now)?;
                shiplog::core::repo::sync_config(tx, &org, &config, &now)
            })
            .expect("sync config");
        let t = Instant::now();
        let report = runtime
            .block_on(import::import(
                &store,
                &config,
                "acme/rg",
                &history,
                false,
                &mut |_: Step<'_>| {},
            ))
            .expect("import");
        let elapsed = t.elapsed();
        let commits: usize = report.releases.iter().map(|(_, n)| n).sum();
        assert_eq!(report.releases.len(), tags);
        println!(
            "run {}: {} releases, {commits} commits in {:.2} s",
            run + 1,
            report.releases.len(),
            elapsed.as_secs_f64()
        );
        times.push(elapsed);
    }
    times.sort();
    println!(
        "| import of {tags} tags ({COMMITS} commits, two policies, one path-filtered), fresh store | median of {RUNS}: {:.2} s | target < 10 s |",
        times[RUNS / 2].as_secs_f64()
    );
}
