//! The GitHub API client against a local fake of GitHub's REST API (tests/common/github_fake.rs):
//! paging past compare's 250 commits and a commit's 300 files, tag lists, annotated tags,
//! rate limits and 5xx replies. No request leaves 127.0.0.1.

mod common;

use std::time::{Duration, Instant};

use common::github_fake::{FakeCommit, FakeFile, FakeGithub, Fault, fake_sha};
use shiplog::config::GithubConfig;
use shiplog::github::{GithubClient, GithubError, RetryPolicy};
use shiplog::model::commit::ChangeKind;

const REPO: &str = "acme/api";
const TOKEN: &str = "ghp_test_token";

fn client(fake: &FakeGithub) -> GithubClient {
    GithubClient::new(&GithubConfig {
        webhook_secret: None,
        token: Some(TOKEN.into()),
        api_url: fake.url.clone(),
        ..Default::default()
    })
    .unwrap()
    .with_retry(RetryPolicy {
        attempts: 4,
        base_delay: Duration::from_millis(20),
        max_wait: Duration::from_secs(5),
    })
}

fn assert_all_authenticated(fake: &FakeGithub) {
    for r in fake.requests() {
        assert_eq!(
            r.authorization.as_deref(),
            Some(format!("Bearer {TOKEN}").as_str()),
            "request without the token: {}",
            r.uri
        );
    }
}

#[tokio::test]
async fn compare_pages_past_250_commits_and_returns_newest_first() {
    let fake = FakeGithub::start();
    let shas = fake.add_commits(REPO, 321, 2);
    let gh = client(&fake);
    let commits = gh
        .range(REPO, Some(&shas[0]), &shas[320], &[], 20)
        .await
        .unwrap();
    assert_eq!(commits.len(), 320, "every commit after the base, not 250");
    assert_eq!(commits[0].id, shas[320], "newest first");
    assert_eq!(commits[319].id, shas[1]);
    let c = &commits[0];
    assert_eq!(c.repository.as_deref(), Some(REPO));
    assert_eq!(c.message.as_deref(), Some("Commit 320 of acme/api\n"));
    assert_eq!(c.author_email.as_deref(), Some("jane@example.com"));
    assert!(c.timestamp.is_some());
    assert_eq!(c.patch_set.len(), 2);
    assert!(c.patch_set.iter().all(|f| f.kind == ChangeKind::Modified));
    let pages = fake.requests_to("/compare/");
    assert_eq!(pages.len(), 4, "{pages:?}");
    assert!(pages.iter().all(|r| r.uri.contains("per_page=100")));
    assert_eq!(fake.requests_to("/commits/").len(), 320);
    assert_all_authenticated(&fake);
}

#[tokio::test]
async fn commit_files_past_300_follow_link_headers_on_the_fakes_host() {
    let fake = FakeGithub::start();
    let mut files: Vec<FakeFile> = (0..349)
        .map(|i| FakeFile::new(&format!("gen/file{i:03}.txt"), "added"))
        .collect();
    files.push(FakeFile::renamed("old/name.rs", "new/name.rs"));
    let sha = fake.add_commit(
        REPO,
        FakeCommit {
            sha: fake_sha("big"),
            message: "Vendor everything".into(),
            author_name: "Jane Doe".into(),
            author_email: "jane@example.com".into(),
            date: "2026-11-20T10:00:00+01:00".into(),
            files,
        },
    );
    let gh = client(&fake);
    let c = gh.commit(REPO, &sha).await.unwrap();
    // 349 added + the rename as D(old) + A(new).
    assert_eq!(c.patch_set.len(), 351);
    assert_eq!(c.timestamp.as_deref(), Some("2026-11-20T10:00:00+01:00"));
    let tail: Vec<(&str, ChangeKind)> = c.patch_set[349..]
        .iter()
        .map(|f| (f.path.as_str(), f.kind))
        .collect();
    assert_eq!(
        tail,
        vec![
            ("old/name.rs", ChangeKind::Deleted),
            ("new/name.rs", ChangeKind::Added)
        ]
    );
    let pages = fake.requests_to(&format!("/commits/{sha}"));
    let page_numbers: Vec<bool> = (1..=4)
        .map(|p| pages.iter().any(|r| r.uri.contains(&format!("page={p}"))))
        .collect();
    assert_eq!(page_numbers, vec![true; 4], "{pages:?}");
    assert_eq!(pages.len(), 4);
    assert_all_authenticated(&fake);
}

#[tokio::test]
async fn tags_are_listed_across_pages_and_annotated_tags_peel() {
    let fake = FakeGithub::start();
    let shas = fake.add_commits(REPO, 80, 1);
    for (i, sha) in shas.iter().enumerate() {
        fake.tag(REPO, &format!("v1.0.{i}"), sha, i % 2 == 0);
    }
    let gh = client(&fake);
    let tags = gh.tags(REPO).await.unwrap();
    assert_eq!(tags.len(), 80);
    assert_eq!(tags[0].name, "v1.0.79");
    assert_eq!(tags[0].commit.sha, shas[79]);
    assert_eq!(fake.requests_to("/tags").len(), 1, "per_page=100");
    // Annotated: ref -> tag object -> commit. Lightweight: ref -> commit.
    assert_eq!(gh.peel_tag(REPO, "v1.0.4").await.unwrap(), shas[4]);
    assert_eq!(gh.peel_tag(REPO, "v1.0.5").await.unwrap(), shas[5]);
    assert!(fake.tag_object(REPO, "v1.0.4").is_some());
    assert_eq!(fake.requests_to("/git/tags/").len(), 1);
    assert!(matches!(
        gh.peel_tag(REPO, "nope").await,
        Err(GithubError::NotFound(_))
    ));
    assert_all_authenticated(&fake);
}

#[tokio::test]
async fn tag_list_pages_follow_link_headers() {
    let fake = FakeGithub::start();
    let shas = fake.add_commits(REPO, 1, 0);
    for i in 0..230 {
        fake.tag(REPO, &format!("t{i}"), &shas[0], false);
    }
    let tags = client(&fake).tags(REPO).await.unwrap();
    assert_eq!(tags.len(), 230);
    let pages = fake.requests_to("/tags");
    assert_eq!(pages.len(), 3);
    assert!(pages[1].uri.contains("page=2") && pages[2].uri.contains("page=3"));
    assert_all_authenticated(&fake);
}

#[tokio::test]
async fn a_secondary_rate_limit_is_waited_out_then_the_call_succeeds() {
    let fake = FakeGithub::start();
    let shas = fake.add_commits(REPO, 3, 1);
    fake.fail("/compare/", 1, Fault::SecondaryRateLimit { retry_after: 1 });
    let started = Instant::now();
    let commits = client(&fake)
        .range(REPO, Some(&shas[0]), &shas[2], &[], 20)
        .await
        .unwrap();
    assert_eq!(commits.len(), 2);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After was honoured"
    );
    let statuses: Vec<u16> = fake
        .requests_to("/compare/")
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, vec![403, 200]);
}

#[tokio::test]
async fn an_exhausted_rate_limit_fails_fast_as_transient() {
    let fake = FakeGithub::start();
    let shas = fake.add_commits(REPO, 3, 1);
    fake.fail("/compare/", 1, Fault::RateLimited { reset_in: 3600 });
    let started = Instant::now();
    let err = client(&fake)
        .range(REPO, Some(&shas[0]), &shas[2], &[], 20)
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "no hour-long wait in place"
    );
    match &err {
        GithubError::RateLimited {
            retry_after,
            detail,
        } => {
            assert!(retry_after.as_secs() > 3500);
            assert!(detail.contains("API rate limit exceeded"), "{detail}");
        }
        other => panic!("expected RateLimited, got {other:?}"),
    }
    assert!(err.is_transient());
    // The reset came: the same call now works.
    let commits = client(&fake)
        .range(REPO, Some(&shas[0]), &shas[2], &[], 20)
        .await
        .unwrap();
    assert_eq!(commits.len(), 2);
}

#[tokio::test]
async fn a_502_is_retried_with_backoff_and_a_lasting_one_is_reported() {
    let fake = FakeGithub::start();
    let shas = fake.add_commits(REPO, 2, 1);
    fake.fail(&format!("/commits/{}", shas[1]), 1, Fault::Status(502));
    let gh = client(&fake);
    let c = gh.commit(REPO, &shas[1]).await.unwrap();
    assert_eq!(c.id, shas[1]);
    let statuses: Vec<u16> = fake
        .requests_to(&format!("/commits/{}", shas[1]))
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, vec![502, 200]);

    fake.fail(&format!("/commits/{}", shas[0]), 10, Fault::Status(502));
    let err = gh.commit(REPO, &shas[0]).await.unwrap_err();
    assert!(
        matches!(err, GithubError::Unavailable { attempts: 4, .. }),
        "{err:?}"
    );
    assert!(err.is_transient());
}

#[tokio::test]
async fn first_release_takes_initial_depth_and_paths_filter_commits() {
    let fake = FakeGithub::start();
    let shas = fake.add_commits(REPO, 30, 1);
    let ui = fake.add_commit(
        REPO,
        FakeCommit {
            sha: fake_sha("ui"),
            message: "Fixes UI-1: button".into(),
            author_name: "Ann".into(),
            author_email: "ann@example.com".into(),
            date: "2026-11-21T00:00:00Z".into(),
            files: vec![FakeFile::new("packages/ui/button.ts", "modified")],
        },
    );
    let gh = client(&fake);
    let recent = gh.range(REPO, None, &ui, &[], 20).await.unwrap();
    assert_eq!(recent.len(), 20);
    assert_eq!(recent[0].id, ui);
    assert_eq!(recent[1].id, shas[29]);

    let only_ui = gh
        .range(REPO, None, &ui, &["packages/ui".to_string()], 20)
        .await
        .unwrap();
    assert_eq!(only_ui.len(), 1);
    assert_eq!(only_ui[0].id, ui);

    let ranged = gh
        .range(REPO, Some(&shas[20]), &ui, &["packages/ui".to_string()], 20)
        .await
        .unwrap();
    assert_eq!(ranged.iter().map(|c| &c.id).collect::<Vec<_>>(), vec![&ui]);

    // A previous head GitHub no longer knows: the newest commits instead.
    let fallback = gh
        .range(REPO, Some(&fake_sha("gone")), &ui, &[], 5)
        .await
        .unwrap();
    assert_eq!(fallback.len(), 5);
    assert!(
        gh.range(REPO, Some(&ui), &ui, &[], 5)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn an_unknown_repository_is_not_found_and_not_retried() {
    let fake = FakeGithub::start();
    let err = client(&fake).tags("acme/nope").await.unwrap_err();
    assert!(matches!(err, GithubError::NotFound(_)), "{err:?}");
    assert!(!err.is_transient());
    assert_eq!(fake.requests().len(), 1);
}
