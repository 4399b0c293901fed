//! Range logic checked against the `git` CLI on repositories made in temp dirs.

use std::path::Path;
use std::process::Command;

use super::*;

struct Repo {
    dir: tempfile::TempDir,
    tick: u32,
}

impl Repo {
    fn new() -> Repo {
        let repo = Repo {
            dir: tempfile::tempdir().unwrap(),
            tick: 0,
        };
        repo.git(&["init", "-q"]);
        repo
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn git(&self, args: &[&str]) -> String {
        git_in(self.path(), args, &[])
    }

    fn write(&self, file: &str, text: &str) {
        let p = self.path().join(file);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    /// Commits everything in the work tree as `author`, one second after the previous commit.
    fn commit_as(&mut self, author: (&str, &str), message: &str) -> String {
        self.tick += 1;
        let date = format!(
            "2024-01-02T12:{:02}:{:02}+02:00",
            self.tick / 60,
            self.tick % 60
        );
        self.git(&["add", "-A"]);
        git_in(
            self.path(),
            &["commit", "-q", "--allow-empty", "-m", message],
            &[
                ("GIT_AUTHOR_NAME", author.0),
                ("GIT_AUTHOR_EMAIL", author.1),
                ("GIT_AUTHOR_DATE", &date),
                ("GIT_COMMITTER_DATE", &date),
            ],
        );
        self.git(&["rev-parse", "HEAD"])
    }

    fn commit(&mut self, message: &str) -> String {
        self.commit_as(("Dev One", "dev@acme.test"), message)
    }

    fn open(&self) -> Repository {
        open(self.path()).unwrap()
    }
}

fn git_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let mut cmd = Command::new("git");
    cmd.current_dir(dir)
        .args([
            "-c",
            "init.defaultBranch=main",
            "-c",
            "user.name=Committer",
            "-c",
            "user.email=committer@acme.test",
            "-c",
            "commit.gpgsign=false",
            "-c",
            "tag.gpgsign=false",
        ])
        .args(args)
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn lines(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

fn ids(commits: &[CommitData]) -> Vec<String> {
    commits.iter().map(|c| c.id.clone()).collect()
}

/// `git log --name-status` for one commit against its first parent, as `X\tpath` lines.
fn git_changes(repo: &Repo, sha: &str) -> Vec<String> {
    let base = if repo
        .git(&["rev-list", "--parents", "-n1", sha])
        .split(' ')
        .count()
        > 1
    {
        format!("{sha}^1")
    } else {
        // The empty tree.
        "4b825dc642cb6eb9a060e54bf8d69288fbee4904".to_string()
    };
    let mut out = lines(&repo.git(&["diff", "--name-status", "--no-renames", &base, sha]));
    out.sort();
    out
}

fn our_changes(c: &CommitData) -> Vec<String> {
    let mut out: Vec<String> = c
        .patch_set
        .iter()
        .map(|f| format!("{}\t{}", f.kind.code(), f.path))
        .collect();
    out.sort();
    out
}

/// A history with three authors, added/modified/deleted files, a rename and a merge:
///
/// ```text
/// c1 - c2 - c3 ------ m - c6
///             \      /
///              c4 - c5      (branch `feature`, touches lib/)
/// ```
fn sample() -> (Repo, Vec<String>) {
    let mut r = Repo::new();
    r.write("app.js", "1\n");
    r.write("README", "hello\n");
    let c1 = r.commit_as(("Dev One", "dev@acme.test"), "initial\n\nwith a body");
    r.write("app.js", "2\n");
    r.write("old.txt", "old\n");
    let c2 = r.commit_as(("Dev Two", "TWO@Acme.Test"), "change app, add old");
    std::fs::rename(r.path().join("old.txt"), r.path().join("new.txt")).unwrap();
    std::fs::remove_file(r.path().join("README")).unwrap();
    let c3 = r.commit_as(
        ("Dev Three", "three@acme.test"),
        "rename old to new, drop README",
    );
    r.git(&["checkout", "-q", "-b", "feature"]);
    r.write("lib/util.js", "u\n");
    let c4 = r.commit_as(("Dev Two", "two@acme.test"), "add util");
    r.write("lib/util.js", "u2\n");
    let c5 = r.commit("change util");
    r.git(&["checkout", "-q", "main"]);
    r.write("app.js", "3\n");
    let c5b = r.commit("main moves on");
    r.tick += 1;
    git_in(
        r.path(),
        &["merge", "-q", "--no-ff", "-m", "merge feature", "feature"],
        &[
            ("GIT_AUTHOR_DATE", "2024-01-02T13:00:00+02:00"),
            ("GIT_COMMITTER_DATE", "2024-01-02T13:00:00+02:00"),
        ],
    );
    let m = r.git(&["rev-parse", "HEAD"]);
    r.write("app.js", "4\n");
    let c6 = r.commit_as(("Dev One", "dev@acme.test"), "after merge");
    (r, vec![c1, c2, c3, c4, c5, c5b, m, c6])
}

#[test]
fn range_is_what_git_log_shows_with_merges_and_first_parent_diffs() {
    let (r, shas) = sample();
    let repo = r.open();
    let got = collect_range(&repo, Some(&shas[1]), &shas[7], &RangeOptions::default()).unwrap();
    let mut want = lines(&r.git(&["rev-list", &format!("{}..{}", shas[1], shas[7])]));
    let mut got_ids = ids(&got);
    assert_eq!(got_ids.len(), want.len());
    assert_eq!(got_ids[0], shas[7], "newest first");
    got_ids.sort();
    want.sort();
    assert_eq!(got_ids, want);
    for c in &got {
        assert_eq!(
            our_changes(c),
            git_changes(&r, &c.id),
            "patch set of {}",
            c.id
        );
    }
    // The merge carries the feature branch's files (diff against its first parent).
    let merge = got.iter().find(|c| c.id == shas[6]).unwrap();
    assert_eq!(our_changes(merge), vec!["A\tlib/util.js".to_string()]);
    // The rename is D + A.
    let rename = got.iter().find(|c| c.id == shas[2]).unwrap();
    assert_eq!(
        our_changes(rename),
        vec!["A\tnew.txt", "D\tREADME", "D\told.txt"]
    );
}

#[test]
fn commit_fields_keep_author_offset_and_full_message() {
    let (r, shas) = sample();
    let repo = r.open();
    let got = collect_range(&repo, None, &shas[0], &RangeOptions::default()).unwrap();
    assert_eq!(got.len(), 1);
    let c = &got[0];
    assert_eq!(c.id, shas[0]);
    assert_eq!(c.message.as_deref(), Some("initial\n\nwith a body\n"));
    assert_eq!(c.author_name.as_deref(), Some("Dev One"));
    assert_eq!(c.author_email.as_deref(), Some("dev@acme.test"));
    assert_eq!(c.timestamp.as_deref(), Some("2024-01-02T12:00:01+02:00"));
    // A root commit is diffed against the empty tree.
    assert_eq!(our_changes(c), vec!["A\tREADME", "A\tapp.js"]);
}

#[test]
fn without_a_start_the_newest_initial_depth_commits() {
    let (r, shas) = sample();
    let repo = r.open();
    let opts = RangeOptions {
        initial_depth: 3,
        ..RangeOptions::default()
    };
    let got = collect_range(&repo, None, &shas[7], &opts).unwrap();
    let want = lines(&r.git(&["rev-list", "--max-count=3", &shas[7]]));
    assert_eq!(ids(&got), want);
    // More depth than history: everything, the root diffed against the empty tree.
    let opts = RangeOptions {
        initial_depth: 100,
        ..RangeOptions::default()
    };
    let got = collect_range(&repo, None, &shas[7], &opts).unwrap();
    assert_eq!(got.len(), 8);
    assert_eq!(got.last().unwrap().id, shas[0]);
    let zero = RangeOptions {
        initial_depth: 0,
        ..RangeOptions::default()
    };
    assert!(
        collect_range(&repo, None, &shas[7], &zero)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn empty_range_and_reversed_range() {
    let (r, shas) = sample();
    let repo = r.open();
    let same = collect_range(&repo, Some(&shas[3]), &shas[3], &RangeOptions::default()).unwrap();
    assert!(same.is_empty());
    let backwards =
        collect_range(&repo, Some(&shas[7]), &shas[2], &RangeOptions::default()).unwrap();
    assert!(backwards.is_empty(), "git log new..old is empty too");
}

#[test]
fn resolves_shas_tags_and_refs() {
    let (r, shas) = sample();
    r.git(&["tag", "light", &shas[2]]);
    r.git(&["tag", "-a", "-m", "annotated", "v1.0.0", &shas[4]]);
    let repo = r.open();
    assert_eq!(resolve_commit(&repo, &shas[1]).unwrap(), shas[1]);
    assert_eq!(resolve_commit(&repo, &shas[1][..7]).unwrap(), shas[1]);
    assert_eq!(resolve_commit(&repo, "light").unwrap(), shas[2]);
    assert_eq!(resolve_commit(&repo, "v1.0.0").unwrap(), shas[4], "peeled");
    assert_eq!(resolve_commit(&repo, "refs/tags/v1.0.0").unwrap(), shas[4]);
    assert_eq!(resolve_commit(&repo, "feature").unwrap(), shas[4]);
    assert_eq!(resolve_commit(&repo, "HEAD").unwrap(), shas[7]);
    assert_eq!(head_sha(&repo).unwrap(), shas[7]);
    for bad in [
        "",
        "nope",
        "0000000000000000000000000000000000000000",
        "a..b",
    ] {
        let err = resolve_commit(&repo, bad).unwrap_err();
        assert!(
            matches!(err, GitError::UnknownRevision { .. }),
            "{bad}: {err}"
        );
    }
    // A tree is not a commit.
    let tree = r.git(&["rev-parse", "HEAD^{tree}"]);
    let err = resolve_commit(&repo, &tree).unwrap_err();
    assert!(err.to_string().contains("not a commit"), "{err}");
}

#[test]
fn opens_bare_repositories_and_refuses_other_dirs() {
    let (r, shas) = sample();
    let bare = tempfile::tempdir().unwrap();
    let bare_path = bare.path().join("web.git");
    git_in(
        r.path(),
        &["clone", "-q", "--bare", ".", bare_path.to_str().unwrap()],
        &[],
    );
    let repo = open(&bare_path).unwrap();
    assert!(repo.is_bare());
    let got = collect_range(&repo, Some(&shas[5]), "main", &RangeOptions::default()).unwrap();
    assert_eq!(got.len(), 4, "c4, c5, merge, c6");

    let plain = tempfile::tempdir().unwrap();
    let Err(err) = open(plain.path()) else {
        panic!("a plain dir opened")
    };
    assert!(err.to_string().contains("is not a git repository"), "{err}");
    // Not searched upwards either.
    std::fs::create_dir(r.path().join("sub")).unwrap();
    assert!(open(&r.path().join("sub")).is_err());
    assert!(discover(&r.path().join("sub")).is_ok());
}

#[test]
fn empty_author_email_is_absent() {
    let mut r = Repo::new();
    r.write("a", "a\n");
    r.commit_as(("No Mail", ""), "no email");
    let repo = r.open();
    let got = collect_range(&repo, None, "HEAD", &RangeOptions::default()).unwrap();
    assert_eq!(got[0].author_email, None);
    assert_eq!(got[0].author_name.as_deref(), Some("No Mail"));
}

/// `git log --format=%H <range> -- <paths>`.
fn git_log_paths(r: &Repo, range: &str, paths: &[&str]) -> Vec<String> {
    let mut args = vec!["log", "--format=%H", range, "--"];
    args.extend_from_slice(paths);
    lines(&r.git(&args))
}

fn path_opts(paths: &[&str]) -> RangeOptions {
    RangeOptions {
        paths: paths.iter().map(|p| p.to_string()).collect(),
        initial_depth: 1000,
    }
}

#[test]
fn path_filters_match_git_log_with_history_simplification() {
    // Two sides of a merge touching the same package, one touching only another, a merge that
    // changes nothing under the path, a root commit in range, and a file path.
    let mut r = Repo::new();
    r.write("packages/ui/a.js", "1\n");
    r.write("packages/api/b.js", "1\n");
    let root = r.commit("root");
    r.git(&["checkout", "-q", "-b", "side"]);
    r.write("packages/ui/a.js", "side\n");
    r.commit("side ui");
    r.write("packages/api/b.js", "side\n");
    r.commit("side api");
    r.git(&["checkout", "-q", "main"]);
    r.write("packages/api/b.js", "main\n");
    r.commit("main api");
    r.tick += 1;
    git_in(
        r.path(),
        &[
            "merge",
            "-q",
            "--no-ff",
            "-X",
            "theirs",
            "-m",
            "merge side",
            "side",
        ],
        &[],
    );
    r.git(&["checkout", "-q", "-b", "other", "HEAD~1"]);
    r.write("docs/x.md", "x\n");
    r.commit("docs only");
    r.git(&["checkout", "-q", "main"]);
    git_in(
        r.path(),
        &["merge", "-q", "--no-ff", "-m", "merge docs", "other"],
        &[],
    );
    r.write("packages/ui/a.js", "last\n");
    let last = r.commit("ui last");
    let repo = r.open();

    for paths in [
        vec!["packages/ui"],
        vec!["packages/api"],
        vec!["packages/ui/a.js"],
        vec!["docs", "packages/api/"],
        vec!["nothing/here"],
    ] {
        for from in [None, Some(root.as_str())] {
            let range = match from {
                Some(f) => format!("{f}..{last}"),
                None => last.clone(),
            };
            let want = git_log_paths(&r, &range, &paths);
            let got = collect_range(&repo, from, &last, &path_opts(&paths)).unwrap();
            let mut got_ids = ids(&got);
            let mut want_sorted = want.clone();
            got_ids.sort();
            want_sorted.sort();
            assert_eq!(got_ids, want_sorted, "paths {paths:?}, range {range}");
        }
    }
    // A kept commit lists all of its files, not only those under the paths.
    let got = collect_range(&repo, None, &last, &path_opts(&["packages/ui"])).unwrap();
    let root_commit = got.iter().find(|c| c.id == root).unwrap();
    assert_eq!(
        our_changes(root_commit),
        vec!["A\tpackages/api/b.js", "A\tpackages/ui/a.js"]
    );
    // initial_depth counts kept commits.
    let opts = RangeOptions {
        paths: vec!["packages/ui".into()],
        initial_depth: 2,
    };
    let got = collect_range(&repo, None, &last, &opts).unwrap();
    let want = git_log_paths(&r, &last, &["packages/ui"]);
    assert_eq!(ids(&got), want[..2].to_vec());
}

#[test]
fn tree_walk_matches_git_on_tricky_changes() {
    let mut r = Repo::new();
    // Names around git's tree order: `a` the directory sorts as `a/`, after `a.b` and `a-b`.
    r.write("a/x", "1\n");
    r.write("a.b", "1\n");
    r.write("a-b", "1\n");
    r.write("a0", "1\n");
    r.write("deep/er/still/file", "1\n");
    r.write("f", "1\n");
    r.write("g", "1\n");
    let mut shas = vec![r.commit("root")];
    // A file becomes a directory and a directory becomes a file.
    std::fs::remove_file(r.path().join("f")).unwrap();
    r.write("f/inside", "1\n");
    std::fs::remove_dir_all(r.path().join("a")).unwrap();
    r.write("a", "now a file\n");
    shas.push(r.commit("swap kinds"));
    // Executable bit only, a symlink replacing a file, a whole subtree deleted, one added.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let p = r.path().join("a.b");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::remove_file(r.path().join("g")).unwrap();
        std::os::unix::fs::symlink("a0", r.path().join("g")).unwrap();
    }
    std::fs::remove_dir_all(r.path().join("deep")).unwrap();
    r.write("new/one/two", "2\n");
    r.write("a-b", "2\n");
    shas.push(r.commit("modes, links, trees"));
    let repo = r.open();
    let got = collect_range(&repo, None, "HEAD", &RangeOptions::default()).unwrap();
    assert_eq!(got.len(), 3);
    for c in &got {
        // git calls a type change T; Sentry has only A/M/D, so it is an M.
        let want: Vec<String> = git_changes(&r, &c.id)
            .into_iter()
            .map(|l| l.replacen("T\t", "M\t", 1))
            .collect();
        let mut want = want;
        want.sort();
        assert_eq!(
            our_changes(c),
            want,
            "commit {}",
            c.message.as_deref().unwrap_or("")
        );
    }
}
