//! The GitHub reconciler in process, against the fake GitHub API: the baseline, a release left
//! "commits pending" completed by a later run, deleted tags. (tests/github_events.rs covers
//! reconcile through a real daemon and its cron schedule.)

mod common;

use std::sync::Arc;

use common::github_fake::FakeGithub;
use shiplog::config::Config;
use shiplog::core::{self, CoreError};
use shiplog::pipeline::Pipeline;
use shiplog::store::Store;
use shiplog::store::github as gstore;

const REPO: &str = "acme/api";

fn setup(
    fake: &FakeGithub,
) -> (
    tempfile::TempDir,
    Store,
    Pipeline,
    shiplog::github::Integration,
) {
    let config = Config::from_yaml_str(
        &format!(
            "organization: acme
projects:
  - slug: api
repositories:
  - name: {REPO}
    github: {REPO}
    projects: [api]
github:
  api_url: {}
",
            fake.url
        ),
        "test",
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_dir(dir.path()).unwrap();
    {
        let config = config.clone();
        store
            .write_blocking(|tx| -> Result<(), CoreError> {
                let now = core::now();
                let org = core::org::sync_config(tx, &config, &now)?;
                core::repo::sync_config(tx, &org, &config, &now)
            })
            .unwrap();
    }
    let pipeline = Pipeline::new(store.clone());
    let github = shiplog::github::register(&pipeline, Arc::new(config)).unwrap();
    (dir, store, pipeline, github)
}

fn count(store: &Store, sql: &str) -> i64 {
    let sql = sql.to_string();
    store
        .read_blocking(move |c| -> Result<i64, shiplog::store::StoreError> {
            Ok(c.query_row(&sql, [], |r| r.get(0))?)
        })
        .unwrap()
}

#[tokio::test]
async fn a_release_left_commits_pending_is_completed_by_reconcile() {
    let fake = FakeGithub::start();
    let shas = fake.add_commits(REPO, 4, 1);
    fake.tag(REPO, "v1.0.0", &shas[3], true);
    let (_dir, store, pipeline, github) = setup(&fake);
    // What a webhook whose fetches kept failing leaves behind.
    let release_id = store
        .write(|tx| -> Result<i64, CoreError> {
            let org = core::org::org(tx, "acme")?;
            let up = core::release::upsert(
                tx,
                &org,
                &core::release::CreateRelease {
                    version: "1.0.0".into(),
                    projects: vec![core::org::ProjectRef::Slug("api".into())],
                    ref_: Some("v1.0.0".into()),
                    ..Default::default()
                },
                &core::now(),
            )?;
            gstore::mark_commits_pending(tx, up.release.id, "GitHub rate limit reached")?;
            Ok(up.release.id)
        })
        .await
        .unwrap();

    let reconciler = github.reconciler();
    let first = reconciler.reconcile_repo(REPO, REPO).await.unwrap();
    assert_eq!(first.baseline, Some(1), "the first run is the baseline");
    assert_eq!(first.submitted, 1, "but the pending release is retried");
    assert_eq!(pipeline.drain().await.unwrap(), 1);
    assert_eq!(
        count(
            &store,
            &format!("SELECT commit_count FROM releases WHERE id = {release_id}")
        ),
        4
    );
    let pending = store
        .read(move |c| gstore::commits_pending(c, release_id))
        .await
        .unwrap();
    assert!(!pending);

    // Nothing left to do.
    let second = reconciler.reconcile_repo(REPO, REPO).await.unwrap();
    assert_eq!(
        (second.baseline, second.submitted, second.deleted),
        (None, 0, 0)
    );
}

#[tokio::test]
async fn new_tags_are_submitted_oldest_first_and_deleted_ones_forgotten() {
    let fake = FakeGithub::start();
    let shas = fake.add_commits(REPO, 2, 1);
    fake.tag(REPO, "v0.9.0", &shas[1], false);
    let (_dir, store, pipeline, github) = setup(&fake);
    let reconciler = github.reconciler();
    assert_eq!(
        reconciler
            .reconcile_repo(REPO, REPO)
            .await
            .unwrap()
            .baseline,
        Some(1)
    );

    // Tags pushed together, listed by GitHub newest first and not in version order.
    let mut commits = Vec::new();
    for (i, tag) in ["v1.10.0", "v1.9.0", "v1.2.0"].iter().enumerate() {
        let s = fake.add_commits(REPO, 1, 1);
        fake.tag(REPO, tag, &s[0], i == 0);
        commits.push(s[0].clone());
    }
    let run = reconciler.reconcile_repo(REPO, REPO).await.unwrap();
    assert_eq!(run.submitted, 3);
    let order: Vec<String> = store
        .read(|c| -> Result<Vec<String>, shiplog::store::StoreError> {
            let mut stmt = c.prepare(
                "SELECT json_extract(payload, '$.tag') FROM inbox WHERE kind = 'github.tag' ORDER BY id",
            )?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
        .unwrap();
    assert_eq!(order, vec!["v1.2.0", "v1.9.0", "v1.10.0"]);
    // Submitted again before they are applied: nothing new in the inbox.
    assert_eq!(
        reconciler
            .reconcile_repo(REPO, REPO)
            .await
            .unwrap()
            .submitted,
        0
    );
    assert_eq!(pipeline.drain().await.unwrap(), 3);
    assert_eq!(count(&store, "SELECT count(*) FROM releases"), 3);
    assert_eq!(count(&store, "SELECT count(*) FROM ref_snapshots"), 4);

    fake.untag(REPO, "v1.9.0");
    let run = reconciler.reconcile_repo(REPO, REPO).await.unwrap();
    assert_eq!((run.submitted, run.deleted), (0, 1));
    assert_eq!(count(&store, "SELECT count(*) FROM ref_snapshots"), 3);
    assert_eq!(
        count(&store, "SELECT count(*) FROM releases"),
        3,
        "releases stay"
    );
    // Re-created on the same commit: the applied event was forgotten with the tag, so it is
    // news again.
    fake.tag(REPO, "v1.9.0", &commits[1], false);
    let run = reconciler.reconcile_repo(REPO, REPO).await.unwrap();
    assert_eq!(run.submitted, 1);
    assert_eq!(pipeline.drain().await.unwrap(), 1);
    assert_eq!(count(&store, "SELECT count(*) FROM ref_snapshots"), 4);
}
