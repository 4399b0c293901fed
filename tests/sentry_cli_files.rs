//! The real sentry-cli 2.x's legacy release files (`releases files VERSION upload|list|
//! delete`, removed in 3.x) against a real daemon, with and without `-p` (the project- and
//! organization-scoped endpoints), each checked against the files the daemon stored.

mod common;

use common::sentry_cli::{ok_against as ok, require_sentry_cli_2, run_against as run};
use common::{Daemon, stderr};

/// The names of a release's stored files, sorted.
fn stored(d: &Daemon, version: &str) -> Vec<String> {
    let db = d.db();
    let mut stmt = db
        .prepare(
            "SELECT rf.name FROM release_files rf JOIN releases r ON r.id = rf.release_id
             WHERE r.version = ?1 ORDER BY rf.name",
        )
        .unwrap();
    stmt.query_map([version], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn sentry_cli_2_uploads_lists_and_deletes_release_files() {
    let Some(bin) = require_sentry_cli_2("sentry_cli_2_uploads_lists_and_deletes_release_files")
    else {
        return;
    };
    let d = Daemon::start();
    let dir = tempfile::tempdir().unwrap();
    let js = dir.path().join("app.min.js");
    let map = dir.path().join("app.min.js.map");
    std::fs::write(&js, "function a(){}\n//# sourceMappingURL=app.min.js.map\n").unwrap();
    std::fs::write(
        &map,
        r#"{"version":3,"sources":["a.js"],"mappings":"AAAA"}"#,
    )
    .unwrap();
    let (js, map) = (js.to_str().unwrap(), map.to_str().unwrap());

    // 2.x creates a one-project release on the project-scoped endpoint.
    let out = ok(&bin, &d, &["releases", "-p", "web", "new", "1.0.0"]);
    assert!(out.contains("Created release 1.0.0"), "{out}");
    let (_, r) = d.api("GET", "organizations/acme/releases/1.0.0/", None);
    assert_eq!(r["projects"][0]["slug"], "web");

    // upload with -p: the project-scoped files endpoint.
    let out = ok(
        &bin,
        &d,
        &[
            "releases",
            "-p",
            "web",
            "files",
            "1.0.0",
            "upload",
            js,
            "~/app.min.js",
            "-H",
            "Sourcemap: app.min.js.map",
        ],
    );
    let sha1 = common::artifacts::sha1_hex(&std::fs::read(js).unwrap());
    assert!(out.contains(&format!("A {sha1}")), "{out}");
    // without -p: the organization-scoped one.
    ok(
        &bin,
        &d,
        &[
            "releases",
            "files",
            "1.0.0",
            "upload",
            map,
            "~/app.min.js.map",
        ],
    );
    assert_eq!(stored(&d, "1.0.0"), ["~/app.min.js", "~/app.min.js.map"]);

    // The bytes come back, and the header was kept.
    let (_, files) = d.api("GET", "organizations/acme/releases/1.0.0/files/", None);
    let first = &files[0];
    assert_eq!(first["name"], "~/app.min.js");
    assert_eq!(first["sha1"], sha1.as_str());
    assert_eq!(first["headers"]["Sourcemap"], "app.min.js.map");

    // The same name again is refused, as Sentry refuses it.
    let again = run(
        &bin,
        &d,
        &["releases", "files", "1.0.0", "upload", js, "~/app.min.js"],
    );
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("File already present"),
        "{}",
        stderr(&again)
    );

    // list, both scopes.
    for args in [
        &["releases", "files", "1.0.0", "list"][..],
        &["releases", "-p", "web", "files", "1.0.0", "list"][..],
    ] {
        let list = ok(&bin, &d, args);
        assert!(
            list.contains("~/app.min.js.map") && list.contains("app.min.js.map"),
            "{list}"
        );
    }

    // delete NAME.
    let out = ok(
        &bin,
        &d,
        &["releases", "files", "1.0.0", "delete", "~/app.min.js"],
    );
    assert!(out.contains("D ~/app.min.js"), "{out}");
    assert_eq!(stored(&d, "1.0.0"), ["~/app.min.js.map"]);

    // delete --all, project-scoped, then organization-scoped on an empty release.
    let out = ok(
        &bin,
        &d,
        &["releases", "-p", "web", "files", "1.0.0", "delete", "--all"],
    );
    assert!(out.contains("All files deleted."), "{out}");
    assert!(stored(&d, "1.0.0").is_empty());
    ok(&bin, &d, &["releases", "files", "1.0.0", "delete", "--all"]);
    assert_eq!(
        d.count("SELECT count(*) FROM files WHERE type = 'release.file'"),
        0,
        "the stored files went with them"
    );

    // A release of another project is not found through this project's endpoints.
    ok(&bin, &d, &["releases", "-p", "api", "new", "2.0.0"]);
    let out = run(
        &bin,
        &d,
        &[
            "releases", "-p", "web", "files", "2.0.0", "upload", js, "~/a.js",
        ],
    );
    assert!(!out.status.success());
    assert!(stored(&d, "2.0.0").is_empty());
}

#[test]
fn sentry_cli_2_manages_a_projects_release_on_the_project_endpoints() {
    let Some(bin) = require_sentry_cli_2("sentry_cli_2_manages_a_projects_release") else {
        return;
    };
    let d = Daemon::start();
    // With one project, 2.x uses /projects/{org}/{project}/releases/{version}/ throughout.
    ok(&bin, &d, &["releases", "-p", "web", "new", "3.0.0"]);
    let out = ok(
        &bin,
        &d,
        &[
            "releases",
            "-p",
            "web",
            "finalize",
            "3.0.0",
            "--released",
            "1700000000",
        ],
    );
    assert!(out.contains("Finalized release 3.0.0"), "{out}");
    let (_, r) = d.api("GET", "organizations/acme/releases/3.0.0/", None);
    assert_eq!(
        r["dateReleased"].as_str().map(|t| &t[..10]),
        Some("2023-11-14")
    );
    let out = ok(&bin, &d, &["releases", "-p", "web", "info", "3.0.0"]);
    assert!(out.contains("3.0.0"), "{out}");
    // Not a release of that project: not found there.
    let out = run(&bin, &d, &["releases", "-p", "api", "info", "3.0.0"]);
    assert!(!out.status.success());
    let out = ok(&bin, &d, &["releases", "-p", "web", "delete", "3.0.0"]);
    assert!(out.contains("Deleted release 3.0.0"), "{out}");
    assert_eq!(
        d.count("SELECT count(*) FROM releases WHERE version = '3.0.0'"),
        0
    );
}
