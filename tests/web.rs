//! The web pages: sign-in, the cross-site guard and redirects over plain HTTP, and every page
//! rendered from real data in a real browser (headless chromium through WebDriver), which also
//! takes the README's screenshots (docs/web-*.png).

mod common;

use std::time::Duration;

use common::browser::Browser;
use common::events::dsn;
use common::hook_repo::{GitRepo, wait_for, yaml_path};
use common::{Daemon, sdks, stderr, stdout};
use reqwest::blocking::Client;
use reqwest::header::{COOKIE, LOCATION, ORIGIN, SET_COOKIE};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

/// `application/x-www-form-urlencoded` bodies, as a browser posts a form.
trait FormBody {
    fn form_body<K: AsRef<str>, V: AsRef<str>>(self, pairs: &[(K, V)]) -> Self;
}

impl FormBody for reqwest::blocking::RequestBuilder {
    fn form_body<K: AsRef<str>, V: AsRef<str>>(self, pairs: &[(K, V)]) -> Self {
        let enc = |s: &str| -> String {
            s.bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                        (b as char).to_string()
                    }
                    _ => format!("%{b:02X}"),
                })
                .collect()
        };
        let body: Vec<String> = pairs
            .iter()
            .map(|(k, v)| format!("{}={}", enc(k.as_ref()), enc(v.as_ref())))
            .collect();
        self.header("content-type", "application/x-www-form-urlencoded")
            .body(body.join("&"))
    }
}

fn http() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A one-time sign-in link from `shiplog open --print`.
fn open_link(d: &Daemon) -> String {
    let out = d.shiplog(&["open", "--print", "--url", &d.url]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "--print prints the link alone: {text}");
    assert!(lines[0].starts_with(&format!("{}/auth/open?token=", d.url)));
    lines[0].to_string()
}

/// The `name=value` of a response's session cookie, and the whole header.
fn session_cookie(resp: &reqwest::blocking::Response) -> (String, String) {
    let header = resp
        .headers()
        .get(SET_COOKIE)
        .expect("Set-Cookie")
        .to_str()
        .unwrap()
        .to_string();
    let pair = header.split(';').next().unwrap().to_string();
    (pair, header)
}

fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    html[at..at + 64].to_string()
}

fn location(resp: &reqwest::blocking::Response) -> String {
    resp.headers()
        .get(LOCATION)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

#[test]
fn sign_in_links_sessions_and_the_cross_site_guard_over_http() {
    let d = Daemon::start();
    let c = http();
    d.api(
        "POST",
        "organizations/acme/releases/",
        Some(json!({"version": "web@1.0.0", "projects": ["web"]})),
    );

    // Without a session every page redirects to sign-in and shows nothing else.
    for path in [
        "/",
        "/organizations/acme/releases/",
        "/organizations/acme/releases/web@1.0.0/",
        "/organizations/acme/issues/1/",
        "/organizations/nope/settings/",
    ] {
        let resp = c.get(format!("{}{path}", d.url)).send().unwrap();
        assert_eq!(resp.status(), 303, "{path}");
        assert!(location(&resp).starts_with("/auth/signin?next="), "{path}");
        assert!(resp.text().unwrap().is_empty(), "{path}");
    }
    // A form post without a session changes nothing.
    let resp = c
        .post(format!("{}/organizations/acme/releases/web@1.0.0/", d.url))
        .form_body(&[("action", "archive")])
        .send()
        .unwrap();
    assert_eq!(resp.status(), 303);
    let (_, r) = d.api("GET", "organizations/acme/releases/web@1.0.0/", None);
    assert_eq!(r["status"], "open");

    // The sign-in link works once: an HttpOnly, SameSite=Lax cookie, no Secure on http.
    let link = open_link(&d);
    let resp = c.get(&link).send().unwrap();
    assert_eq!(resp.status(), 303);
    let (cookie, header) = session_cookie(&resp);
    assert!(
        header.contains("HttpOnly") && header.contains("SameSite=Lax"),
        "{header}"
    );
    assert!(!header.contains("Secure"), "{header}");
    let resp = c.get(&link).send().unwrap();
    assert_eq!(location(&resp), "/auth/signin?error=link");
    assert!(resp.headers().get(SET_COOKIE).is_none());
    // Only the hash of the session is stored.
    let secret = cookie.split_once('=').unwrap().1.to_string();
    assert_eq!(
        d.count(&format!(
            "SELECT count(*) FROM web_sessions WHERE secret_hash LIKE '%{secret}%'"
        )),
        0
    );
    assert_eq!(d.count("SELECT count(*) FROM web_sessions"), 1);

    let resp = c
        .get(format!("{}/", d.url))
        .header(COOKIE, &cookie)
        .send()
        .unwrap();
    assert_eq!(location(&resp), "/organizations/acme/releases/");
    let page = c
        .get(format!("{}/organizations/acme/releases/web@1.0.0/", d.url))
        .header(COOKIE, &cookie)
        .send()
        .unwrap()
        .text()
        .unwrap();
    let csrf = csrf_of(&page);
    let url = format!("{}/organizations/acme/releases/web@1.0.0/", d.url);

    // No token, a wrong token, or another site's Origin: refused, nothing changed.
    for (form, origin) in [
        (vec![("action", "archive")], d.url.clone()),
        (
            vec![("action", "archive"), ("csrf", "0".repeat(64).as_str())],
            d.url.clone(),
        ),
        (
            vec![("action", "archive"), ("csrf", csrf.as_str())],
            "https://evil.example".to_string(),
        ),
    ] {
        let resp = c
            .post(&url)
            .header(COOKIE, &cookie)
            .header(ORIGIN, origin)
            .form_body(&form)
            .send()
            .unwrap();
        assert_eq!(resp.status(), 403, "{form:?}");
    }
    let resp = c
        .post(&url)
        .header(COOKIE, &cookie)
        .header("Sec-Fetch-Site", "cross-site")
        .form_body(&[("action", "archive"), ("csrf", csrf.as_str())])
        .send()
        .unwrap();
    assert_eq!(resp.status(), 403);
    let (_, r) = d.api("GET", "organizations/acme/releases/web@1.0.0/", None);
    assert_eq!(r["status"], "open");

    // From the page itself: archived.
    let resp = c
        .post(&url)
        .header(COOKIE, &cookie)
        .header(ORIGIN, &d.url)
        .form_body(&[("action", "archive"), ("csrf", csrf.as_str())])
        .send()
        .unwrap();
    assert_eq!(resp.status(), 303);
    let (_, r) = d.api("GET", "organizations/acme/releases/web@1.0.0/", None);
    assert_eq!(r["status"], "archived");

    // Another organization's pages are not found, whatever exists there.
    let resp = c
        .get(format!("{}/organizations/other/releases/", d.url))
        .header(COOKIE, &cookie)
        .send()
        .unwrap();
    assert_eq!(resp.status(), 404);

    // Signing out ends the session.
    let resp = c
        .post(format!("{}/auth/signout", d.url))
        .header(COOKIE, &cookie)
        .header(ORIGIN, &d.url)
        .form_body(&[("csrf", csrf.as_str())])
        .send()
        .unwrap();
    assert_eq!(resp.status(), 303);
    let resp = c
        .get(format!("{}/organizations/acme/releases/", d.url))
        .header(COOKIE, &cookie)
        .send()
        .unwrap();
    assert!(location(&resp).starts_with("/auth/signin"));

    // Signing in with an API token; a wrong one is refused; another site cannot sign a
    // browser in.
    let signin = format!("{}/auth/signin", d.url);
    let resp = c
        .post(&signin)
        .form_body(&[("token", "nope"), ("next", "/")])
        .send()
        .unwrap();
    assert_eq!(resp.status(), 401);
    let resp = c
        .post(&signin)
        .header(ORIGIN, "https://evil.example")
        .form_body(&[("token", d.token.as_str()), ("next", "/")])
        .send()
        .unwrap();
    assert_eq!(resp.status(), 403);
    let resp = c
        .post(&signin)
        .header(ORIGIN, &d.url)
        .form_body(&[
            ("token", d.token.as_str()),
            ("next", "/organizations/acme/issues/"),
        ])
        .send()
        .unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(location(&resp), "/organizations/acme/issues/");
    let (cookie, _) = session_cookie(&resp);
    let resp = c
        .get(format!("{}/organizations/acme/issues/", d.url))
        .header(COOKIE, &cookie)
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);
}

const PY_APP: &str = r#"
import os, sentry_sdk
sentry_sdk.init(dsn=os.environ["DSN"], release=os.environ["RELEASE"], environment="production")
sentry_sdk.set_user({"id": os.environ["USER_ID"]})
scope = sentry_sdk.get_isolation_scope()
scope.start_session(session_mode="application")

def charge(amount):
    return amount / 0

if os.environ["MODE"] == "errored":
    try:
        charge(10)
    except ZeroDivisionError:
        sentry_sdk.capture_exception()
scope.end_session()
sentry_sdk.flush()
"#;

/// Every page from real data — a repository whose tags make releases and whose `Fixes` commit
/// resolves an issue, errors and sessions from sentry-python, a deploy and an artifact — in
/// headless chromium, signed in with a `shiplog open` link.
#[test]
fn the_pages_in_a_real_browser() {
    let Some(python) = sdks::require_python("the_pages_in_a_real_browser") else {
        return;
    };
    let Some(browser) = Browser::start("the_pages_in_a_real_browser") else {
        return;
    };
    let src = tempfile::tempdir().unwrap();
    let repo = GitRepo::init(src.path());
    let dev = ("Dana Dev", "dana@acme.test");
    repo.commit(
        "feat(billing): charge cards",
        &[(
            "app/billing.py",
            "def charge(amount):\n    return amount / 0\n",
        )],
        dev,
    );
    repo.tag("v1.0.0");
    let d = Daemon::start_with(&format!(
        "organization: acme
projects:
  - slug: web
    name: Web
  - slug: api
repositories:
  - name: acme/web
    path: {}
    projects: [web]
    import_tags: true
    releases:
      - tag_pattern: '^v(?P<version>.+)$'
        version: 'web@{{version}}'
schedules: []
",
        yaml_path(src.path())
    ));
    let release_with = |version: &str| {
        wait_for(&format!("release {version}"), WAIT, || {
            let (status, r) = d.api(
                "GET",
                &format!("organizations/acme/releases/{version}/"),
                None,
            );
            (status == 200 && r["commitCount"].as_i64() > Some(0)).then_some(r)
        })
    };
    release_with("web@1.0.0");

    // An error and sessions from the real SDK, in web@1.0.0.
    let web = dsn(&d, "web");
    for (user, mode) in [("a", "healthy"), ("b", "errored"), ("c", "healthy")] {
        let out = sdks::run_python(
            &python,
            PY_APP,
            &[
                ("DSN", &web.text),
                ("RELEASE", "web@1.0.0"),
                ("USER_ID", user),
                ("MODE", mode),
            ],
        );
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let issue: Value = wait_for("WEB-1", WAIT, || {
        let (status, i) = d.api("GET", "organizations/acme/issues/WEB-1/", None);
        (status == 200).then_some(i)
    });
    assert_eq!(issue["shortId"], "WEB-1");

    // The fix, tagged: web@1.1.0 resolves WEB-1.
    repo.commit(
        "fix(billing): never divide by zero\n\nFixes WEB-1",
        &[("app/billing.py", "def charge(amount):\n    return amount\n")],
        dev,
    );
    repo.commit(
        "docs: explain charges",
        &[("docs/billing.md", "Charges.\n")],
        ("Robin Writer", "robin@acme.test"),
    );
    repo.tag("v1.1.0");
    release_with("web@1.1.0");
    wait_for("WEB-1 resolved", WAIT, || {
        let (_, i) = d.api("GET", "organizations/acme/issues/WEB-1/", None);
        (i["status"] == "resolved").then_some(())
    });
    // Sessions of the new release too, so its page has a chart.
    for user in ["a", "c"] {
        let out = sdks::run_python(
            &python,
            PY_APP,
            &[
                ("DSN", &web.text),
                ("RELEASE", "web@1.1.0"),
                ("USER_ID", user),
                ("MODE", "healthy"),
            ],
        );
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let (status, _) = d.api(
        "POST",
        "organizations/acme/releases/web@1.1.0/deploys/",
        Some(json!({"environment": "production", "name": "deploy 42"})),
    );
    assert_eq!(status, 201);
    let (ct, body) = common::artifacts::multipart(&[(
        "file",
        "app.min.js",
        b"console.log('shiplog');".to_vec(),
    )]);
    let resp = reqwest::blocking::Client::new()
        .post(format!(
            "{}/api/0/organizations/acme/releases/web@1.1.0/files/",
            d.url
        ))
        .bearer_auth(&d.token)
        .header("content-type", ct)
        .body(body)
        .send()
        .unwrap();
    let resp_status = resp.status().as_u16();
    assert_eq!(resp_status, 201, "{}", resp.text().unwrap_or_default());

    // The README's screenshots are refreshed with SHIPLOG_UPDATE_SCREENSHOTS=1; otherwise they
    // are taken all the same, into a temp dir, so a test run leaves the tree unchanged.
    let shots = tempfile::tempdir().unwrap();
    let docs = if std::env::var_os("SHIPLOG_UPDATE_SCREENSHOTS").is_some() {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs")
    } else {
        shots.path().to_path_buf()
    };
    let index = format!("{}/organizations/acme/releases/", d.url);

    // Signed out: the index redirects to sign-in and shows none of it.
    browser.goto(&index);
    assert!(browser.url().contains("/auth/signin"), "{}", browser.url());
    assert!(!browser.source().contains("1.1.0"));

    // The link signs in and lands on the releases index.
    let link = open_link(&d);
    browser.goto(&link);
    assert_eq!(browser.url(), index);
    let text = browser.text();
    for want in [
        "1.1.0",
        "1.0.0",
        "web",
        "production",
        "Dana Dev",
        "adoption",
    ] {
        assert!(text.contains(want), "index lacks {want}:\n{text}");
    }
    // Package and version apart; crash-free sessions of web@1.0.0 (one errored, none
    // crashed: 100%).
    assert!(browser.source().contains("<span class=\"pkg\">web</span>"));
    assert!(text.contains("100%"), "{text}");
    browser.screenshot(&docs.join("web-releases.png"));
    // Readable at 375 px: nothing wider than the window but the scrolling tables.
    browser.resize(375, 800);
    assert!(browser.scroll_width() <= 375, "{}", browser.scroll_width());
    browser.resize(1280, 1000);

    // The link does not work twice.
    browser.goto(&link);
    assert!(browser.url().contains("error=link"), "{}", browser.url());

    // The search box takes the API's grammar.
    browser.goto(&format!("{index}?query=release.version:1.0.0"));
    let text = browser.text();
    assert!(text.contains("1.0.0") && !text.contains("1.1.0"), "{text}");

    // Release details: resolved issues on the page as it opens, commits by author with their
    // files, the deploy, the artifact, the chart, the notes.
    browser.goto(&index);
    browser.click("a.ver[href$='web%401.1.0/']");
    let text = browser.text();
    for want in [
        "Issues resolved in this release",
        "WEB-1",
        "ZeroDivisionError",
        "Dana Dev",
        "Robin Writer",
        "fix(billing): never divide by zero",
        "1 file changed",
        "production",
        "deploy 42",
        "app.min.js",
        "23 B",
        "Release notes",
        "Fixed issues",
    ] {
        assert!(text.contains(want), "details lack {want}:\n{text}");
    }
    // Files changed sit in a closed <details>: in the page, not in its visible text.
    assert!(browser.source().contains("M app/billing.py"));
    assert!(
        browser.source().contains("<h4>Fixed issues</h4>"),
        "notes rendered"
    );
    assert!(
        browser.source().contains("<svg class=\"chart\""),
        "a sessions chart"
    );
    browser.resize(1280, 1800);
    browser.screenshot(&docs.join("web-release.png"));
    browser.resize(1280, 1000);
    browser.goto(&format!(
        "{}/organizations/acme/releases/web@1.0.0/?period=7d&tab=new",
        d.url
    ));
    let source = browser.source();
    assert!(source.contains("<svg class=\"chart\""), "a sessions chart");
    assert!(browser.text().contains("WEB-1"), "WEB-1 is new in 1.0.0");

    // Archive and restore from the page.
    browser.click("button[value=archive]");
    assert!(browser.text().contains("Release archived."));
    let (_, r) = d.api("GET", "organizations/acme/releases/web@1.0.0/", None);
    assert_eq!(r["status"], "archived");
    browser.click("button[value=restore]");
    let (_, r) = d.api("GET", "organizations/acme/releases/web@1.0.0/", None);
    assert_eq!(r["status"], "open");

    // The issue: stack trace with in-app frames, tags, activity, release links; reopen it.
    browser.goto(&format!("{}/organizations/acme/issues/WEB-1/", d.url));
    let text = browser.text();
    for want in [
        "ZeroDivisionError",
        "in app",
        "charge",
        "resolved in web@1.1.0",
        "Resolved in web@1.1.0",
        "environment",
        "production",
        "First seen",
    ] {
        assert!(text.contains(want), "issue lacks {want}:\n{text}");
    }
    browser.screenshot(&docs.join("web-issue.png"));
    for shot in ["web-releases.png", "web-release.png", "web-issue.png"] {
        let png = std::fs::read(docs.join(shot)).unwrap();
        assert!(png.starts_with(b"\x89PNG"), "{shot} is a PNG");
    }
    browser.click("button[value=reopen]");
    assert!(browser.text().contains("Issue reopened."));
    let (_, i) = d.api("GET", "organizations/acme/issues/WEB-1/", None);
    assert_eq!(i["status"], "unresolved");

    // The issues list with the API's filters.
    browser.goto(&format!(
        "{}/organizations/acme/issues/?query=is:unresolved",
        d.url
    ));
    assert!(browser.text().contains("WEB-1"));

    // Repositories: the configured one, with its hooks and last reconcile.
    browser.goto(&format!("{}/organizations/acme/repos/", d.url));
    let text = browser.text();
    for want in [
        "acme/web",
        "none installed",
        "Last reconcile",
        "GitHub deliveries",
    ] {
        assert!(text.contains(want), "repositories lack {want}:\n{text}");
    }

    // Settings: a token is shown once; the DSNs.
    browser.goto(&format!("{}/organizations/acme/settings/", d.url));
    browser.fill("#token-name", "from-web");
    browser.click("button[value=create]");
    let text = browser.text();
    assert!(
        text.contains("not shown again") && text.contains("from-web"),
        "{text}"
    );
    assert!(text.contains(&web.text), "{text}");

    // A form on another site posting to shiplog is refused: the release stays open.
    let evil = format!(
        "data:text/html,<form method=post action='{}/organizations/acme/releases/web%401.0.0/'>\
         <input name=action value=archive><button id=go>go</button></form>",
        d.url
    );
    browser.goto(&evil);
    browser.click("#go");
    let (_, r) = d.api("GET", "organizations/acme/releases/web@1.0.0/", None);
    assert_eq!(r["status"], "open", "a cross-site post must change nothing");
}
