//! Commits and releases over the HTTP API, on real git repositories and a real daemon:
//! refs expanded through git, raw commit lists, replacing and clearing, previous-with-commits,
//! the commit list, repositories and their pagination, and bad input refused with nothing
//! changed.

mod common;

use std::collections::BTreeSet;
use std::process::Command;

use common::gitrepo::GitRepo;
use common::{Daemon, stderr, stdout};
use serde_json::{Value, json};

/// A daemon whose config registers `repo` as acme/web (by path, 3 commits for a first range)
/// and acme/api as a GitHub-only repository.
fn daemon_for(repo: &GitRepo) -> Daemon {
    Daemon::start_with(&config_for(repo))
}

fn config_for(repo: &GitRepo) -> String {
    format!(
        "organization: acme
projects:
  - slug: web
  - slug: api
repositories:
  - name: acme/web
    path: {}
    url: https://github.com/acme/web
    projects: [web]
    releases:
      - on: none
        initial_depth: 3
  - name: acme/api
    github: acme/api
    projects: [api]
    releases:
      - on: none
",
        repo.path_str()
    )
}

/// Three authors, A/M/D, a rename and a merge: returns the shas, oldest first.
fn history(repo: &mut GitRepo) -> Vec<String> {
    let mut shas = Vec::new();
    repo.write("app.js", "1\n");
    repo.write("README", "hello\n");
    shas.push(repo.commit_as("Dev One", "dev@acme.test", "initial"));
    repo.write("app.js", "2\n");
    repo.write("old.txt", "old\n");
    shas.push(repo.commit_as("Dev Two", "Two@Acme.Test", "change app, add old"));
    repo.rename("old.txt", "new.txt");
    repo.remove("README");
    shas.push(repo.commit_as("Dev Three", "three@acme.test", "rename, drop README"));
    repo.git(&["checkout", "-q", "-b", "feature"]);
    repo.write("lib/util.js", "u\n");
    shas.push(repo.commit_as("Dev Two", "two@acme.test", "add util"));
    repo.write("lib/util.js", "u2\n");
    shas.push(repo.commit_as("CI Bot", "", "no author email"));
    repo.git(&["checkout", "-q", "main"]);
    repo.write("app.js", "3\n");
    shas.push(repo.commit("main moves on"));
    shas.push(repo.merge("feature", "Merge branch feature"));
    repo.write("app.js", "4\n");
    shas.push(repo.commit_as(
        "Dev One",
        "DEV@acme.test",
        "after the merge\n\nFixes WEB-1\n",
    ));
    shas
}

fn new_release(d: &Daemon, version: &str, project: &str) {
    let (status, body) = d.api(
        "POST",
        "organizations/acme/releases/",
        Some(json!({"version": version, "projects": [project]})),
    );
    assert_eq!(status, 201, "{body}");
}

fn put(d: &Daemon, version: &str, body: Value) -> (u16, Value) {
    d.api(
        "PUT",
        &format!("organizations/acme/releases/{version}/"),
        Some(body),
    )
}

fn release(d: &Daemon, version: &str) -> Value {
    let (status, body) = d.api(
        "GET",
        &format!("organizations/acme/releases/{version}/"),
        None,
    );
    assert_eq!(status, 200, "{body}");
    body
}

/// The release's commit shas in list order (newest first), from the API.
fn commit_ids(d: &Daemon, version: &str) -> Vec<String> {
    let (status, body) = d.api(
        "GET",
        &format!("organizations/acme/releases/{version}/commits/"),
        None,
    );
    assert_eq!(status, 200, "{body}");
    body.as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect()
}

/// A stored commit's file changes as sorted `X\tpath` lines.
fn stored_changes(d: &Daemon, sha: &str) -> Vec<String> {
    let db = d.db();
    let mut stmt = db
        .prepare(
            "SELECT f.type, f.filename FROM commit_file_changes f
             JOIN commits c ON c.id = f.commit_id WHERE c.key = ?1 ORDER BY f.filename",
        )
        .unwrap();
    let mut out: Vec<String> = stmt
        .query_map([sha], |r| {
            Ok(format!(
                "{}\t{}",
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?
            ))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    out.sort();
    out
}

fn head_commit(d: &Daemon, version: &str, repository: &str) -> Option<String> {
    d.db()
        .query_row(
            "SELECT c.key FROM release_head_commits h
             JOIN releases r ON r.id = h.release_id
             JOIN repositories p ON p.id = h.repository_id
             JOIN commits c ON c.id = h.commit_id
             WHERE r.version = ?1 AND p.name = ?2",
            [version, repository],
            |r| r.get(0),
        )
        .ok()
}

fn sorted(list: &[String]) -> BTreeSet<String> {
    list.iter().cloned().collect()
}

#[test]
fn refs_range_is_expanded_through_git() {
    let mut repo = GitRepo::new();
    let shas = history(&mut repo);
    let d = daemon_for(&repo);
    new_release(&d, "1.0.0", "web");

    // Short shas, as `sentry-cli --commit` may send them.
    let (from, to) = (&shas[1][..8], &shas[7][..10]);
    let (status, body) = put(
        &d,
        "1.0.0",
        json!({"refs": [{"repository": "acme/web", "commit": to, "previousCommit": from}]}),
    );
    assert_eq!(status, 200, "{body}");
    let range = format!("{}..{}", shas[1], shas[7]);
    assert_eq!(body["commitCount"], repo.count(&range));
    assert_eq!(body["lastCommit"]["id"], shas[7], "full 40-hex sha");
    assert_eq!(
        body["lastCommit"]["message"],
        "after the merge\n\nFixes WEB-1\n"
    );
    assert_eq!(body["lastCommit"]["author"]["email"], "dev@acme.test");
    assert_eq!(body["lastCommit"]["repository"]["name"], "acme/web");
    let emails: BTreeSet<String> = body["authors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["email"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        emails,
        [
            "cibot@localhost",
            "committer@acme.test", // the merge
            "dev@acme.test",
            "three@acme.test",
            "two@acme.test",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
        "emails lowercased and deduplicated; no email gives Sentry's name@localhost"
    );

    let ids = commit_ids(&d, "1.0.0");
    assert_eq!(ids[0], shas[7], "newest first");
    assert_eq!(sorted(&ids), sorted(&repo.rev_list(&[&range])));
    for sha in &ids {
        assert_eq!(
            stored_changes(&d, sha),
            repo.changes(sha),
            "patch set of {sha}"
        );
    }
    // The rename is D + A; the merge carries the feature branch against its first parent.
    assert_eq!(
        stored_changes(&d, &shas[2]),
        ["A\tnew.txt", "D\tREADME", "D\told.txt"]
    );
    assert_eq!(stored_changes(&d, &shas[6]), ["A\tlib/util.js"]);
    assert_eq!(
        head_commit(&d, "1.0.0", "acme/web").as_deref(),
        Some(shas[7].as_str())
    );

    // The same range as `a..b` in `commit`, and a re-set replaces the list.
    let (status, body) = put(
        &d,
        "1.0.0",
        json!({"refs": [{"repository": "acme/web", "commit": format!("{}..{}", shas[5], shas[7])}]}),
    );
    assert_eq!(status, 200, "{body}");
    let range = format!("{}..{}", shas[5], shas[7]);
    assert_eq!(body["commitCount"], repo.count(&range));
    assert_eq!(
        sorted(&commit_ids(&d, "1.0.0")),
        sorted(&repo.rev_list(&[&range]))
    );
}

#[test]
fn without_previous_commit_the_previous_release_head_else_initial_depth() {
    let mut repo = GitRepo::new();
    let first = repo.commits(6, "first");
    let d = daemon_for(&repo);

    // No previous release: the newest `initial_depth` (3, from the config) commits.
    new_release(&d, "1.0.0", "web");
    let (status, body) = put(
        &d,
        "1.0.0",
        json!({"refs": [{"repository": "acme/web", "commit": first[5], "previousCommit": null}]}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["commitCount"], 3);
    assert_eq!(
        commit_ids(&d, "1.0.0"),
        repo.rev_list(&["--max-count=3", &first[5]])
    );

    // The next release starts at 1.0.0's head commit.
    let second = repo.commits(4, "second");
    new_release(&d, "2.0.0", "web");
    let (status, body) = put(
        &d,
        "2.0.0",
        json!({"refs": [{"repository": "acme/web", "commit": "HEAD"}]}),
    );
    assert_eq!(status, 200, "{body}");
    let range = format!("{}..{}", first[5], second[3]);
    assert_eq!(body["commitCount"], repo.count(&range));
    assert_eq!(commit_ids(&d, "2.0.0"), repo.rev_list(&[&range]));
    assert_eq!(
        head_commit(&d, "2.0.0", "acme/web").as_deref(),
        Some(second[3].as_str())
    );

    // A release of another project does not see web's releases: initial depth again.
    new_release(&d, "api-1", "api");
    let (status, body) = put(
        &d,
        "api-1",
        json!({"refs": [{"repository": "acme/web", "commit": second[3]}]}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["commitCount"], 3);

    // Deprecated headCommits work like refs.
    new_release(&d, "3.0.0", "web");
    let (status, body) = put(
        &d,
        "3.0.0",
        json!({"headCommits": [{"repository": "acme/web", "currentId": second[3], "previousId": second[1]}]}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["commitCount"], 2);
}

#[test]
fn refs_in_a_create_request_and_github_only_repositories() {
    let mut repo = GitRepo::new();
    let shas = repo.commits(5, "c");
    let d = daemon_for(&repo);
    let (status, body) = d.api(
        "POST",
        "organizations/acme/releases/",
        Some(json!({
            "version": "1.0.0",
            "projects": ["web"],
            "refs": [{"repository": "acme/web", "commit": shas[4], "previousCommit": shas[2]}],
        })),
    );
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["commitCount"], 2);

    // A repository with no local clone: the head commit is kept, nothing fetched, no error.
    new_release(&d, "api-1", "api");
    let sha = "0123456789abcdef0123456789abcdef01234567";
    let (status, body) = put(
        &d,
        "api-1",
        json!({"refs": [{"repository": "acme/api", "commit": sha}]}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["commitCount"], 0);
    assert_eq!(head_commit(&d, "api-1", "acme/api").as_deref(), Some(sha));
}

/// A body like sentry-cli 3.8's `--local` mode sends.
fn local_commit(id: &str, ts: &str, message: &str, patch: Value) -> Value {
    json!({
        "patch_set": patch,
        "repository": "origin",
        "author_name": "Dev One",
        "author_email": "dev@acme.test",
        "timestamp": ts,
        "message": message,
        "id": id,
    })
}

#[test]
fn raw_commit_lists_are_stored_replaced_and_cleared() {
    let d = Daemon::start();
    new_release(&d, "1.0.0", "web");
    let a = "a".repeat(40);
    let b = "b".repeat(40);
    let c = "c".repeat(40);
    let (status, body) = put(
        &d,
        "1.0.0",
        json!({"commits": [
            local_commit(&a, "2024-01-02T12:00:20+02:00", "older\n", json!([{"path": "app.js", "type": "M"}])),
            local_commit(&b, "2024-01-02T12:00:25+02:00", "newer\n", json!([{"path": "src/util.js", "type": "A"}, {"path": "gone.js", "type": "D"}])),
            local_commit(&c, "2024-01-02T12:00:30+02:00", "wip #skipsentry\n", json!([])),
        ]}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["commitCount"], 2);
    assert_eq!(body["lastCommit"]["id"], b, "sorted by timestamp");
    assert_eq!(
        body["lastCommit"]["dateCreated"],
        "2024-01-02T10:00:25.000000Z"
    );
    assert_eq!(
        body["authors"],
        json!([{"name": "Dev One", "email": "dev@acme.test"}])
    );
    assert_eq!(commit_ids(&d, "1.0.0"), [b.clone(), a.clone()]);
    assert_eq!(stored_changes(&d, &b), ["A\tsrc/util.js", "D\tgone.js"]);
    assert_eq!(
        d.count("SELECT timestamp = '2024-01-02T12:00:25+02:00' FROM commits WHERE key = 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb'"),
        1,
        "the author's offset is kept"
    );
    // sentry-cli's remote name became a repository, as in Sentry.
    let (_, repos) = d.api("GET", "organizations/acme/repos/", None);
    assert_eq!(repos[0]["name"], "origin");
    assert_eq!(repos[0]["provider"]["id"], "unknown");
    assert_eq!(
        head_commit(&d, "1.0.0", "origin").as_deref(),
        Some(b.as_str())
    );

    // An empty list changes nothing (Sentry ignores it).
    let (status, body) = put(&d, "1.0.0", json!({"commits": []}));
    assert_eq!(status, 200);
    assert_eq!(body["commitCount"], 2);

    // A re-set replaces the list.
    let (status, body) = put(
        &d,
        "1.0.0",
        json!({"commits": [local_commit(&c, "2024-01-02T12:00:40+02:00", "only\n", json!([]))]}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["commitCount"], 1);
    assert_eq!(commit_ids(&d, "1.0.0"), vec![c.clone()]);

    // `refs: []` clears commits and head commits; the commits themselves stay.
    let (status, body) = put(&d, "1.0.0", json!({"refs": []}));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["commitCount"], 0);
    assert_eq!(body["lastCommit"], Value::Null);
    assert_eq!(body["authors"], json!([]));
    assert!(commit_ids(&d, "1.0.0").is_empty());
    assert_eq!(d.count("SELECT count(*) FROM release_head_commits"), 0);
    assert_eq!(d.count("SELECT count(*) FROM commits"), 3);

    // A PUT without any commit field leaves commits alone (no accidental clear).
    put(
        &d,
        "1.0.0",
        json!({"commits": [local_commit(&a, "2024-01-02T12:00:20+02:00", "x", json!([]))]}),
    );
    let (status, body) = put(&d, "1.0.0", json!({"url": "https://example.com"}));
    assert_eq!(status, 200);
    assert_eq!(body["commitCount"], 1);
}

#[test]
fn bad_commits_are_400_and_change_nothing() {
    let d = Daemon::start();
    new_release(&d, "1.0.0", "web");
    let a = "a".repeat(40);
    let good = local_commit(
        &a,
        "2024-01-02T12:00:20+02:00",
        "m",
        json!([{"path": "x", "type": "A"}]),
    );
    assert_eq!(put(&d, "1.0.0", json!({"commits": [good.clone()]})).0, 200);

    let cases = [
        (
            local_commit(
                "b",
                "2024-01-02T12:00:20+02:00",
                "m",
                json!([{"path": "x", "type": "R"}]),
            ),
            "Commit patch_set type R is not supported.",
        ),
        (
            json!({"message": "no id"}),
            "commits[1].id: This field is required.",
        ),
        (
            local_commit(&"f".repeat(65), "2024-01-02T12:00:20+02:00", "m", json!([])),
            "no more than 64 characters",
        ),
        (
            local_commit("b", "yesterday", "m", json!([])),
            "is not an RFC 3339 timestamp",
        ),
    ];
    for (bad, want) in cases {
        let (status, body) = put(
            &d,
            "1.0.0",
            json!({"commits": [good.clone(), bad], "dateReleased": "2024-01-01T00:00:00Z"}),
        );
        assert_eq!(status, 400, "{body}");
        let detail = body["detail"].as_str().unwrap();
        assert!(detail.contains(want), "{detail}");
    }
    let r = release(&d, "1.0.0");
    assert_eq!(r["commitCount"], 1);
    assert_eq!(
        r["dateReleased"],
        Value::Null,
        "nothing of the bad requests was applied"
    );
}

#[test]
fn unknown_repositories_and_shas_are_400_and_change_nothing() {
    let mut repo = GitRepo::new();
    let shas = repo.commits(4, "c");
    let d = daemon_for(&repo);
    new_release(&d, "1.0.0", "web");
    let (status, _) = put(
        &d,
        "1.0.0",
        json!({"refs": [{"repository": "acme/web", "commit": shas[3], "previousCommit": shas[1]}]}),
    );
    assert_eq!(status, 200);

    let (status, body) = put(
        &d,
        "1.0.0",
        json!({"dateReleased": "2024-01-01T00:00:00Z", "refs": [
            {"repository": "acme/nope", "commit": shas[3]},
            {"repository": "acme/web", "commit": shas[3]},
            {"repository": "other/x", "commit": shas[3]},
        ]}),
    );
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["detail"],
        "Invalid repository names: acme/nope,other/x"
    );
    assert_eq!(
        body["refs"],
        json!(["Invalid repository names: acme/nope,other/x"])
    );

    for (commit, previous, bad) in [
        (
            "deadbeefdeadbeef",
            Some(shas[1].as_str()),
            "deadbeefdeadbeef",
        ),
        (
            shas[3].as_str(),
            Some("0000000000000000000000000000000000000000"),
            "0000000000000000000000000000000000000000",
        ),
        ("no-such-branch", None, "no-such-branch"),
    ] {
        let (status, body) = put(
            &d,
            "1.0.0",
            json!({"dateReleased": "2024-01-01T00:00:00Z",
                   "refs": [{"repository": "acme/web", "commit": commit, "previousCommit": previous}]}),
        );
        assert_eq!(status, 400, "{body}");
        let detail = body["detail"].as_str().unwrap();
        assert!(
            detail.contains(bad) && detail.contains("acme/web"),
            "the detail names the sha and the repository: {detail}"
        );
    }
    let r = release(&d, "1.0.0");
    assert_eq!(r["commitCount"], 2);
    assert_eq!(r["dateReleased"], Value::Null);
    assert_eq!(
        head_commit(&d, "1.0.0", "acme/web").as_deref(),
        Some(shas[3].as_str())
    );

    // Ref shape errors, Sentry's words.
    let (status, body) = put(
        &d,
        "1.0.0",
        json!({"refs": [{"repository": "acme/web", "commit": "..abc"}]}),
    );
    assert_eq!(status, 400);
    assert_eq!(body["detail"], "Commit cannot begin or end with ..");
    // A missing release is a 404 before any git work.
    let (status, _) = put(
        &d,
        "9.9.9",
        json!({"refs": [{"repository": "acme/web", "commit": shas[3]}]}),
    );
    assert_eq!(status, 404);
}

#[test]
fn previous_with_commits_shapes() {
    let d = Daemon::start();
    let path = |v: &str| format!("organizations/acme/releases/{v}/previous-with-commits/");
    let (status, _) = d.api("GET", &path("0.0.1"), None);
    assert_eq!(status, 404, "a missing release is a 404");

    new_release(&d, "1.0.0", "web");
    let (status, body) = d.api("GET", &path("1.0.0"), None);
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({}),
        "exactly an empty object when there is none"
    );

    let sha1 = "1".repeat(40);
    put(
        &d,
        "1.0.0",
        json!({"commits": [local_commit(&sha1, "2024-01-02T12:00:00Z", "one", json!([]))]}),
    );
    // The release itself is never its own previous release (Sentry's quirk, fixed).
    let (_, body) = d.api("GET", &path("1.0.0"), None);
    assert_eq!(body, json!({}));

    std::thread::sleep(std::time::Duration::from_millis(5));
    new_release(&d, "1.1.0", "web");
    let (_, body) = d.api("GET", &path("1.1.0"), None);
    assert_eq!(body["version"], "1.0.0");
    assert_eq!(body["lastCommit"]["id"], sha1);

    let sha2 = "2".repeat(40);
    put(
        &d,
        "1.1.0",
        json!({"commits": [local_commit(&sha2, "2024-01-03T12:00:00Z", "two", json!([]))]}),
    );
    let (_, body) = d.api("GET", &path("1.1.0"), None);
    assert_eq!(
        body["version"], "1.0.0",
        "re-running still finds the release before"
    );
    // An older release does not see a newer one.
    let (_, body) = d.api("GET", &path("1.0.0"), None);
    assert_eq!(body, json!({}));
    // A project filter that matches nothing gives {} (Sentry).
    let (status, body) = d.api("GET", &format!("{}?project=nope", path("1.1.0")), None);
    assert_eq!(status, 200);
    assert_eq!(body, json!({}));
}

#[test]
fn commit_list_is_paginated_newest_first() {
    let d = Daemon::start();
    new_release(&d, "1.0.0", "web");
    let commits: Vec<Value> = (0..250)
        .map(|i| {
            local_commit(
                &format!("{i:040x}"),
                &format!("2024-01-02T12:{:02}:{:02}Z", i / 60, i % 60),
                &format!("commit {i}"),
                json!([]),
            )
        })
        .collect();
    let (status, body) = put(&d, "1.0.0", json!({ "commits": commits }));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["commitCount"], 250);

    let mut seen = Vec::new();
    let mut cursor = String::new();
    let mut pages = 0;
    loop {
        let (status, headers, body) = d.request_full(
            "GET",
            &format!("organizations/acme/releases/1.0.0/commits/?cursor={cursor}"),
            None,
            Some(&d.token),
        );
        assert_eq!(status, 200, "{body}");
        pages += 1;
        seen.extend(
            body.as_array()
                .unwrap()
                .iter()
                .map(|c| c["id"].as_str().unwrap().to_string()),
        );
        let link = headers["link"].to_str().unwrap().to_string();
        let next = link.split(", <").nth(1).unwrap();
        if next.contains("results=\"false\"") {
            break;
        }
        cursor = next
            .split("cursor=\"")
            .nth(1)
            .unwrap()
            .trim_end_matches('"')
            .to_string();
    }
    assert_eq!(pages, 3);
    let want: Vec<String> = (0..250).rev().map(|i| format!("{i:040x}")).collect();
    assert_eq!(seen, want);
}

#[test]
fn repos_api_lists_and_paginates_like_sentry() {
    let repo = GitRepo::new();
    let d = daemon_for(&repo);
    let (status, body) = d.api("GET", "organizations/acme/repos/?cursor=", None);
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!([
            {"id": body[0]["id"].as_str().unwrap(), "name": "acme/api", "url": "https://github.com/acme/api",
             "provider": {"id": "integrations:github", "name": "GitHub"}, "status": "active",
             "dateCreated": body[0]["dateCreated"], "integrationId": null, "externalSlug": "acme/api", "externalId": null},
            {"id": body[1]["id"].as_str().unwrap(), "name": "acme/web", "url": "https://github.com/acme/web",
             "provider": {"id": "git", "name": "Git"}, "status": "active",
             "dateCreated": body[1]["dateCreated"], "integrationId": null, "externalSlug": null, "externalId": null},
        ])
    );

    // 150 more repositories, auto-created by a raw commit list.
    new_release(&d, "1.0.0", "web");
    let commits: Vec<Value> = (0..150)
        .map(|i| json!({"id": format!("{i:040x}"), "repository": format!("zz/r{i:03}")}))
        .collect();
    assert_eq!(put(&d, "1.0.0", json!({ "commits": commits })).0, 200);

    let url = &d.url;
    let (status, headers, page1) = d.request_full(
        "GET",
        "organizations/acme/repos/?cursor=",
        None,
        Some(&d.token),
    );
    assert_eq!(status, 200);
    assert_eq!(page1.as_array().unwrap().len(), 100);
    assert_eq!(
        headers["link"].to_str().unwrap(),
        format!(
            "<{url}/api/0/organizations/acme/repos/?&cursor=0:0:1>; rel=\"previous\"; results=\"false\"; cursor=\"0:0:1\", \
             <{url}/api/0/organizations/acme/repos/?&cursor=0:100:0>; rel=\"next\"; results=\"true\"; cursor=\"0:100:0\""
        )
    );
    let (_, headers, page2) = d.request_full(
        "GET",
        "organizations/acme/repos/?cursor=0:100:0",
        None,
        Some(&d.token),
    );
    assert_eq!(page2.as_array().unwrap().len(), 52);
    assert_eq!(page2[51]["name"], "zz/r149");
    assert_eq!(
        headers["link"].to_str().unwrap(),
        format!(
            "<{url}/api/0/organizations/acme/repos/?&cursor=0:0:1>; rel=\"previous\"; results=\"true\"; cursor=\"0:0:1\", \
             <{url}/api/0/organizations/acme/repos/?&cursor=0:200:0>; rel=\"next\"; results=\"false\"; cursor=\"0:200:0\""
        )
    );
    let (status, body) = d.api("GET", "organizations/acme/repos/?cursor=bogus", None);
    assert_eq!(status, 400, "{body}");
}

#[test]
fn repos_cli_adds_lists_and_removes() {
    let repo = GitRepo::new();
    let d = daemon_for(&repo);
    let other = GitRepo::new();

    let out = d.shiplog(&["repos", "add", "acme/lib", "--path", other.path_str()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = d.shiplog(&["repos", "add", "acme/docs", "--github", "acme/docs"]);
    assert!(out.status.success(), "{}", stderr(&out));

    let plain = tempfile::tempdir().unwrap();
    let out = d.shiplog(&[
        "repos",
        "add",
        "acme/bad",
        "--path",
        plain.path().to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("is not a git repository"), "{err}");

    let out = d.shiplog(&["repos", "add", "acme/web", "--github", "acme/web"]);
    assert!(
        !out.status.success(),
        "a configured repository belongs to the config"
    );
    assert!(stderr(&out).contains("config"), "{}", stderr(&out));

    let out = d.shiplog(&["repos", "list"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    for name in ["acme/web", "acme/api", "acme/lib", "acme/docs"] {
        assert!(text.contains(name), "{text}");
    }
    assert!(text.contains("https://github.com/acme/docs"), "{text}");
    let out = d.shiplog(&["repos", "list", "--json"]);
    let list: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let lib = list
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "acme/lib")
        .unwrap();
    assert_eq!(lib["provider"], "git");
    assert_eq!(lib["path"], other.path_str());

    // The daemon sees them at once (same database).
    let (_, body) = d.api("GET", "organizations/acme/repos/", None);
    assert_eq!(body.as_array().unwrap().len(), 4);

    let out = d.shiplog(&["repos", "remove", "acme/docs"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = d.shiplog(&["repos", "remove", "acme/docs"]);
    assert!(!out.status.success());
    let (_, body) = d.api("GET", "organizations/acme/repos/", None);
    assert_eq!(body.as_array().unwrap().len(), 3);
}

#[test]
fn repositories_removed_from_the_config_are_hidden_and_bad_paths_refused() {
    let mut repo = GitRepo::new();
    let shas = repo.commits(2, "c");
    let mut d = daemon_for(&repo);
    new_release(&d, "1.0.0", "web");
    put(
        &d,
        "1.0.0",
        json!({"refs": [{"repository": "acme/web", "commit": shas[1]}]}),
    );

    std::fs::write(
        d.config_path(),
        "organization: acme\nprojects:\n  - slug: web\n  - slug: api\n",
    )
    .unwrap();
    d.restart();
    let (_, body) = d.api("GET", "organizations/acme/repos/", None);
    assert_eq!(body, json!([]));
    let (_, body) = d.api("GET", "organizations/acme/repos/?status=hidden", None);
    assert_eq!(body.as_array().unwrap().len(), 2);
    assert_eq!(release(&d, "1.0.0")["commitCount"], 2, "commits are kept");
    // Refs naming a hidden repository are refused.
    let (status, _) = put(
        &d,
        "1.0.0",
        json!({"refs": [{"repository": "acme/web", "commit": shas[1]}]}),
    );
    assert_eq!(status, 400);
    d.stop();

    // A path that is not a repository: the daemon refuses to start, with one line.
    let plain = tempfile::tempdir().unwrap();
    let config = d.dir().join("bad.yaml");
    std::fs::write(
        &config,
        format!(
            "organization: acme\nrepositories:\n  - name: acme/web\n    path: {}\n",
            plain.path().display()
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_shiplog"))
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(d.data_dir())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("repositories[0].path") && err.contains("is not a git repository"),
        "{err}"
    );
}

fn shiplog_in(d: &Daemon, cwd: &std::path::Path, args: &[&str]) -> std::process::Output {
    d.shiplog_cmd(args)
        .current_dir(cwd)
        .env_remove("SHIPLOG_RELEASE")
        .env_remove("SENTRY_RELEASE")
        .env_remove("SHIPLOG_VCS_REMOTE")
        .env_remove("SENTRY_VCS_REMOTE")
        .output()
        .unwrap()
}

fn shiplog_ok(d: &Daemon, cwd: &std::path::Path, args: &[&str]) -> String {
    let out = shiplog_in(d, cwd, args);
    assert!(
        out.status.success(),
        "shiplog {args:?} failed: {}\n--- daemon log ---\n{}",
        stderr(&out),
        d.log()
    );
    stdout(&out)
}

fn repository_of(d: &Daemon, sha: &str) -> String {
    d.db()
        .query_row(
            "SELECT r.name FROM commits c JOIN repositories r ON r.id = c.repository_id
             WHERE c.key = ?1",
            [sha],
            |r| r.get(0),
        )
        .unwrap()
}

#[test]
fn shiplog_set_commits_cli_mirrors_sentry_cli() {
    let mut repo = GitRepo::new();
    repo.git(&["remote", "add", "origin", "git@github.com:acme/web.git"]);
    let shas = repo.commits(8, "c");
    let d = daemon_for(&repo);
    let cwd = repo.path().to_path_buf();
    let pause = || std::thread::sleep(std::time::Duration::from_millis(5));

    // --local: the CLI walks the repository; commits belong to the repository whose URL is
    // origin's (sentry-cli would file them under "origin").
    let out = shiplog_ok(
        &d,
        &cwd,
        &[
            "releases",
            "-p",
            "web",
            "set-commits",
            "1.0.0",
            "--local",
            "--initial-depth",
            "5",
        ],
    );
    assert!(out.contains("Set 5 commits for release 1.0.0"), "{out}");
    assert_eq!(
        commit_ids(&d, "1.0.0"),
        repo.rev_list(&["--max-count=5", "HEAD"])
    );
    assert_eq!(repository_of(&d, &shas[7]), "acme/web");
    for sha in &shas[3..] {
        assert_eq!(stored_changes(&d, sha), repo.changes(sha));
    }
    let more = repo.commits(3, "d");
    pause();
    shiplog_ok(
        &d,
        &cwd,
        &["releases", "-p", "web", "set-commits", "1.1.0", "--local"],
    );
    assert_eq!(
        commit_ids(&d, "1.1.0"),
        repo.rev_list(&[&format!("{}..HEAD", shas[7])])
    );
    // Nothing new since the previous release: the release is left alone.
    let out = shiplog_ok(
        &d,
        &cwd,
        &["releases", "-p", "web", "set-commits", "1.0.5", "--local"],
    );
    assert!(out.contains("No commits found"), "{out}");

    // --commit with a range of tags and shas.
    repo.git(&["tag", "v0.1", &shas[2]]);
    pause();
    let spec = format!("acme/web@v0.1..{}", &shas[5][..7]);
    shiplog_ok(
        &d,
        &cwd,
        &[
            "releases",
            "-p",
            "web",
            "set-commits",
            "2.0.0",
            "--commit",
            &spec,
        ],
    );
    assert_eq!(
        commit_ids(&d, "2.0.0"),
        repo.rev_list(&[&format!("{}..{}", shas[2], shas[5])])
    );
    let out = shiplog_in(
        &d,
        &cwd,
        &[
            "releases",
            "-p",
            "web",
            "set-commits",
            "2.0.0",
            "--commit",
            "acme/nope@abc",
        ],
    );
    assert!(!out.status.success());
    assert_eq!(stderr(&out).trim().lines().count(), 1, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("Unknown repo 'acme/nope'"),
        "{}",
        stderr(&out)
    );

    // --auto: HEAD as a ref; the range starts at the previous release's head (2.0.0's).
    pause();
    shiplog_ok(
        &d,
        &cwd,
        &["releases", "-p", "web", "set-commits", "3.0.0", "--auto"],
    );
    assert_eq!(
        commit_ids(&d, "3.0.0"),
        repo.rev_list(&[&format!("{}..{}", shas[5], more[2])])
    );

    // --clear.
    let out = shiplog_ok(&d, &cwd, &["releases", "set-commits", "3.0.0", "--clear"]);
    assert!(out.contains("Cleared"), "{out}");
    assert!(commit_ids(&d, "3.0.0").is_empty());

    // One mode is required, and --local excludes the others.
    let out = shiplog_in(&d, &cwd, &["releases", "set-commits", "3.0.0"]);
    assert!(!out.status.success());
    let out = shiplog_in(
        &d,
        &cwd,
        &["releases", "set-commits", "3.0.0", "--local", "--clear"],
    );
    assert!(!out.status.success());
}

#[test]
fn propose_version_like_sentry_cli() {
    let mut repo = GitRepo::new();
    let head = repo.commits(1, "c").remove(0);
    let d = Daemon::start();
    let out = shiplog_ok(&d, repo.path(), &["releases", "propose-version"]);
    assert_eq!(out.trim(), head);
    let out = d
        .shiplog_cmd(&["releases", "propose-version"])
        .current_dir(repo.path())
        .env_remove("SHIPLOG_RELEASE")
        .env("SENTRY_RELEASE", "web@1.2.3")
        .output()
        .unwrap();
    assert_eq!(stdout(&out).trim(), "web@1.2.3");
    let plain = tempfile::tempdir().unwrap();
    let out = shiplog_in(&d, plain.path(), &["releases", "propose-version"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("Could not automatically determine release name"),
        "{err}"
    );
}
