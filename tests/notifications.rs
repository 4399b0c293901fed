//! Notifications against a real daemon and a real HTTP receiver on loopback: signed webhooks
//! (verified here per the Standard Webhooks spec), Slack-compatible messages, filters, and
//! the durable outbox surviving a receiver that is down and a daemon restart.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use common::Daemon;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

const KEY_B64: &str = "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }

    /// Checks the Standard Webhooks signature and the timestamp's freshness.
    fn verify(&self) {
        let id = self.header("webhook-id").expect("webhook-id");
        let ts = self.header("webhook-timestamp").expect("webhook-timestamp");
        let sig = self.header("webhook-signature").expect("webhook-signature");
        let key = base64::engine::general_purpose::STANDARD
            .decode(KEY_B64)
            .unwrap();
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
        mac.update(format!("{id}.{ts}.").as_bytes());
        mac.update(&self.body);
        let expected =
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        assert_eq!(sig, format!("v1,{expected}"), "signature");
        let age = chrono::Utc::now().timestamp() - ts.parse::<i64>().unwrap();
        assert!(age.abs() < 300, "timestamp {ts} is {age}s off");
    }
}

/// A tiny HTTP/1.1 server on a thread that records each request and answers 200.
struct Receiver {
    port: u16,
    got: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    fn start_on(port: u16) -> Receiver {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind receiver");
        let port = listener.local_addr().unwrap().port();
        let got = Arc::new(Mutex::new(Vec::new()));
        let sink = got.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                if let Some(r) = read_request(stream) {
                    sink.lock().unwrap().push(r);
                }
            }
        });
        Receiver { port, got }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// Waits until `n` requests arrived at `path`.
    fn wait_for(&self, path: &str, n: usize, within: Duration) -> Vec<Received> {
        let deadline = Instant::now() + within;
        loop {
            let got: Vec<Received> = self
                .received()
                .into_iter()
                .filter(|r| r.path == path)
                .collect();
            if got.len() >= n || Instant::now() > deadline {
                return got;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn read_request(mut stream: TcpStream) -> Option<Received> {
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let path = line.split_whitespace().nth(1)?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    stream
        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
        .ok()?;
    Some(Received {
        path,
        headers,
        body,
    })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn config(webhook_url: &str, slack_url: Option<&str>, extra: &str) -> String {
    let mut c = format!(
        "organization: acme
projects:
  - slug: web
    name: Web
notifications:
  webhooks:
    - url: {webhook_url}
      secret: whsec_{KEY_B64}
{extra}"
    );
    if let Some(slack) = slack_url {
        c.push_str(&format!(
            "  slack:\n    - webhook_url: {slack}\n      events: [deploy.created]\n"
        ));
    }
    c
}

fn create_release(d: &Daemon, version: &str) {
    let (status, body) = d.api(
        "POST",
        "organizations/acme/releases/",
        Some(json!({"version": version, "projects": ["web"]})),
    );
    assert_eq!(status, 201, "{body}");
}

fn deploy(d: &Daemon, version: &str, env: &str) {
    let (status, body) = d.api(
        "POST",
        &format!("organizations/acme/releases/{version}/deploys/"),
        Some(json!({"environment": env})),
    );
    assert_eq!(status, 201, "{body}");
}

#[test]
fn signed_webhooks_and_slack_messages_are_sent_filtered_by_event_and_environment() {
    let receiver = Receiver::start_on(0);
    let d = Daemon::start_with(&config(
        &receiver.url("/hook"),
        Some(&receiver.url("/slack/T0/B0/s3cr3t")),
        "      events: [deploy.created, release.created]\n      environments: [production]\n",
    ));
    create_release(&d, "1.0.0");
    deploy(&d, "1.0.0", "staging");
    deploy(&d, "1.0.0", "production");

    let hooks = receiver.wait_for("/hook", 2, Duration::from_secs(20));
    let slack = receiver.wait_for("/slack/T0/B0/s3cr3t", 2, Duration::from_secs(20));
    // Nothing more arrives: the staging deploy is filtered out of the webhook.
    std::thread::sleep(Duration::from_secs(2));
    let hooks_now = receiver.wait_for("/hook", 0, Duration::ZERO);
    assert_eq!(hooks_now.len(), 2, "{hooks_now:?}");
    for h in &hooks {
        h.verify();
    }
    let mut types: Vec<Value> = hooks.iter().map(|h| h.json()["type"].clone()).collect();
    types.sort_by_key(|t| t.to_string());
    assert_eq!(
        types,
        vec![json!("deploy.created"), json!("release.created")]
    );
    let deploy_msg = hooks
        .iter()
        .map(Received::json)
        .find(|b| b["type"] == "deploy.created")
        .unwrap();
    assert_eq!(deploy_msg["data"]["deploy"]["environment"], "production");
    assert_eq!(deploy_msg["data"]["release"]["version"], "1.0.0");
    assert_eq!(deploy_msg["data"]["release"]["deployCount"], 2);
    assert!(deploy_msg["timestamp"].as_str().is_some());
    // The release webhook carries the API's release shape.
    let (_, api_release) = d.api("GET", "organizations/acme/releases/1.0.0/", None);
    let release_msg = hooks
        .iter()
        .map(Received::json)
        .find(|b| b["type"] == "release.created")
        .unwrap();
    assert_eq!(release_msg["data"]["release"]["id"], api_release["id"]);
    assert_eq!(release_msg["data"]["release"]["projects"][0]["slug"], "web");

    // Slack gets both deploys (no environment filter), one line each with the release link.
    assert_eq!(slack.len(), 2, "{slack:?}");
    let text = slack[0].json()["text"].as_str().unwrap().to_string();
    assert!(
        text.contains(&format!(
            "<{}/organizations/acme/releases/1.0.0/|1.0.0>",
            d.url
        )),
        "{text}"
    );

    // `notifications test` sends a signed test message to each target, outside the outbox.
    let out = d.shiplog(&["notifications", "test"]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let printed = common::stdout(&out);
    assert!(
        printed.contains("ok      webhook") && printed.contains("ok      slack"),
        "{printed}"
    );
    assert!(!printed.contains("s3cr3t"), "{printed}");
    let tests = receiver.wait_for("/hook", 3, Duration::from_secs(10));
    let test_msg = tests
        .iter()
        .find(|h| h.json()["type"] == "test")
        .expect("test message");
    test_msg.verify();

    // Secrets never reach the log or the database.
    let log = d.log();
    assert!(!log.contains(KEY_B64) && !log.contains("s3cr3t"), "{log}");
    assert_eq!(
        d.count("SELECT count(*) FROM notification_deliveries WHERE state = 'delivered'"),
        4
    );
}

#[test]
fn a_deploy_while_the_receiver_is_down_is_delivered_once_after_a_restart() {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/hook");
    let mut d = Daemon::start_with(&config(&url, None, "      events: [deploy.created]\n"));
    create_release(&d, "2.0.0");
    deploy(&d, "2.0.0", "production");

    // The first attempt fails (nothing listens) and a retry is scheduled.
    let deadline = Instant::now() + Duration::from_secs(20);
    while d.count("SELECT count(*) FROM notification_deliveries WHERE attempts > 0") == 0 {
        assert!(
            Instant::now() < deadline,
            "no attempt was made:\n{}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (state, error): (String, String) = d
        .db()
        .query_row(
            "SELECT state, last_error FROM notification_deliveries",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(state, "pending");
    assert!(error.contains("connect"), "{error}");
    // `notifications list` shows it waiting, with the reason.
    let out = d.shiplog(&["notifications", "list", "--json"]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let list: Value = serde_json::from_str(&common::stdout(&out)).unwrap();
    assert_eq!(list[0]["event"], "deploy.created");
    assert_eq!(list[0]["state"], "pending");
    assert!(
        list[0]["lastError"].as_str().unwrap().contains("connect"),
        "{list}"
    );

    d.restart();
    let receiver = Receiver::start_on(port);
    let got = receiver.wait_for("/hook", 1, Duration::from_secs(40));
    assert_eq!(got.len(), 1, "not delivered:\n{}", d.log());
    got[0].verify();
    assert_eq!(got[0].json()["data"]["deploy"]["environment"], "production");
    // Exactly once: nothing else arrives, and the outbox says delivered.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(receiver.received().len(), 1);
    assert_eq!(
        d.count("SELECT count(*) FROM notification_deliveries WHERE state = 'delivered'"),
        1
    );
    let out = d.shiplog(&["notifications", "list"]);
    let table = common::stdout(&out);
    assert!(
        table.contains("deploy.created") && table.contains("delivered"),
        "{table}"
    );
}

#[test]
fn a_bad_notification_config_is_refused_at_start_with_the_key_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    std::fs::write(
        &path,
        "notifications:\n  webhooks:\n    - url: http://127.0.0.1:1/\n      secret: whsec_dG9vc2hvcnQ=\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_shiplog"))
        .arg("--config")
        .arg(&path)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("notifications.webhooks[0].secret"), "{err}");
    assert!(!err.contains("dG9vc2hvcnQ"), "{err}");
}

// --- Email, through a real SMTP server (aiosmtpd) ---------------------------------------------

/// An aiosmtpd server on loopback that saves each message (`N.eml`, recipients in `N.rcpt`),
/// or refuses every message with 554 when `refuse` is set.
const SMTP_SERVER: &str = r#"
import os, sys, time
from aiosmtpd.controller import Controller

out, port, refuse = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "refuse"

class Handler:
    async def handle_DATA(self, server, session, envelope):
        if refuse:
            return "554 5.7.1 refused by policy"
        n = len([f for f in os.listdir(out) if f.endswith(".eml")])
        with open(os.path.join(out, f"{n}.rcpt"), "w") as f:
            f.write("\n".join(envelope.rcpt_tos))
        with open(os.path.join(out, f"{n}.eml"), "wb") as f:
            f.write(envelope.original_content)
        return "250 OK"

controller = Controller(Handler(), hostname="127.0.0.1", port=port)
controller.start()
print("ready", flush=True)
while True:
    time.sleep(3600)
"#;

/// The SMTP server process, killed on drop.
struct Smtp {
    child: std::process::Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl Smtp {
    fn start(python: &std::path::Path, refuse: bool) -> Smtp {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("smtp_server.py");
        std::fs::write(&script, SMTP_SERVER).unwrap();
        let mail = dir.path().join("mail");
        std::fs::create_dir(&mail).unwrap();
        let port = free_port();
        let mut child = std::process::Command::new(python)
            .arg(&script)
            .arg(&mail)
            .arg(port.to_string())
            .arg(if refuse { "refuse" } else { "accept" })
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("start aiosmtpd");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready", "aiosmtpd did not start");
        Smtp { child, dir, port }
    }

    /// (recipients, raw message) of each message received so far.
    fn messages(&self) -> Vec<(Vec<String>, String)> {
        let mail = self.dir.path().join("mail");
        (0..)
            .map_while(|n| {
                let raw = std::fs::read_to_string(mail.join(format!("{n}.eml"))).ok()?;
                let rcpt = std::fs::read_to_string(mail.join(format!("{n}.rcpt"))).ok()?;
                Some((rcpt.lines().map(str::to_owned).collect(), raw))
            })
            .collect()
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn email_config(smtp_port: u16, extra: &str) -> String {
    format!(
        "organization: acme
projects:
  - slug: web
    name: Web
notifications:
{extra}  email:
    smtp_url: smtp://127.0.0.1:{smtp_port}
    from: shiplog <shiplog@acme.test>
    committer_domains: [acme.test]
    to: [team@ops.test]
"
    )
}

fn commit(id: char, email: &str, message: &str, files: &[&str]) -> Value {
    json!({
        "id": id.to_string().repeat(40),
        "repository": "acme/web",
        "author_name": email.split('@').next().unwrap(),
        "author_email": email,
        "timestamp": "2026-01-02T12:00:00Z",
        "message": message,
        "patch_set": files.iter().map(|f| json!({"path": f, "type": "M"})).collect::<Vec<_>>(),
    })
}

#[test]
fn a_deploy_mails_the_committers_in_the_domains_once() {
    let Some(python) = common::sdks::require_python("deploy_email") else {
        return;
    };
    let smtp = Smtp::start(&python, false);
    let d = Daemon::start_with(&email_config(smtp.port, ""));
    create_release(&d, "3.0.0");
    let (status, body) = d.api(
        "PUT",
        "organizations/acme/releases/3.0.0/",
        Some(json!({"commits": [
            commit('a', "ann@acme.test", "fix: login <form>\n", &["src/login.js", "src/form.js"]),
            commit('b', "bob@outside.example", "feat: search\n", &["src/search.js"]),
        ]})),
    );
    assert_eq!(status, 200, "{body}");
    deploy(&d, "3.0.0", "production");

    let deadline = Instant::now() + Duration::from_secs(20);
    while smtp.messages().is_empty() {
        assert!(Instant::now() < deadline, "no mail arrived:\n{}", d.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(2));
    let messages = smtp.messages();
    assert_eq!(messages.len(), 1, "sent once per deploy");
    let (rcpt, raw) = &messages[0];
    // The committer outside committer_domains is never mailed.
    assert_eq!(
        rcpt,
        &vec!["ann@acme.test".to_string(), "team@ops.test".to_string()]
    );
    assert!(
        raw.contains("Subject: Deployed version 3.0.0 to production"),
        "{raw}"
    );
    assert!(
        raw.contains("text/plain") && raw.contains("text/html"),
        "{raw}"
    );
    assert!(
        raw.contains("2 commits, 2 authors, 3 files changed"),
        "{raw}"
    );
    assert!(raw.contains("acme/web"), "{raw}");
    assert!(
        raw.contains("fix: login") || raw.contains("login &lt;form&gt;"),
        "{raw}"
    );
    assert!(!raw.contains("bob@outside.example>"), "{raw}");

    // A new issue in the release → its committers (in the domains) and `to`; the regression
    // that follows in the same release mails nobody again.
    let dsn = common::events::dsn(&d, "web");
    let event = common::events::error_event("TypeError", "x is undefined", Some("3.0.0"));
    let issue = common::events::send_and_find(&d, &dsn, &event);
    let short_id = issue["shortId"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(20);
    while smtp.messages().len() < 2 {
        assert!(Instant::now() < deadline, "no issue mail:\n{}", d.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    let (rcpt, raw) = &smtp.messages()[1];
    assert_eq!(
        rcpt,
        &vec!["ann@acme.test".to_string(), "team@ops.test".to_string()]
    );
    assert!(
        raw.contains(&format!("Subject: New issue in 3.0.0: {short_id}")),
        "{raw}"
    );
    let (status, body) = d.api(
        "PUT",
        &format!("organizations/acme/issues/{short_id}/"),
        Some(json!({"status": "resolved"})),
    );
    assert_eq!(status, 200, "{body}");
    let event = common::events::error_event("TypeError", "x is undefined", Some("3.0.0"));
    let again = common::events::send_and_find(&d, &dsn, &event);
    assert_eq!(again["status"], "unresolved", "regressed: {again}");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(smtp.messages().len(), 2, "once per issue and release");
}

#[test]
fn a_new_issue_mails_the_committers_of_its_suspect_commits() {
    let Some(python) = common::sdks::require_python("suspect_email") else {
        return;
    };
    let smtp = Smtp::start(&python, false);
    let d = Daemon::start_with(&email_config(smtp.port, ""));
    create_release(&d, "5.0.0");
    // Both committers are in the domains; only ann changed a file of the event's stack trace
    // (common::events::error_event raises in app/billing/charge.py).
    let (status, body) = d.api(
        "PUT",
        "organizations/acme/releases/5.0.0/",
        Some(json!({"commits": [
            commit('c', "ann@acme.test", "fix: charge rounding\n", &["app/billing/charge.py"]),
            commit('d', "carl@acme.test", "feat: search\n", &["src/search.js"]),
        ]})),
    );
    assert_eq!(status, 200, "{body}");
    let dsn = common::events::dsn(&d, "web");
    let event = common::events::error_event("ValueError", "bad amount", Some("5.0.0"));
    common::events::send_and_find(&d, &dsn, &event);
    let deadline = Instant::now() + Duration::from_secs(20);
    while smtp.messages().is_empty() {
        assert!(Instant::now() < deadline, "no issue mail:\n{}", d.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    let (rcpt, raw) = &smtp.messages()[0];
    assert_eq!(
        rcpt,
        &vec!["ann@acme.test".to_string(), "team@ops.test".to_string()],
        "{raw}"
    );
}

#[test]
fn an_smtp_server_that_refuses_is_retried_then_the_delivery_fails_visibly() {
    let Some(python) = common::sdks::require_python("refused_email") else {
        return;
    };
    let smtp = Smtp::start(&python, true);
    let d = Daemon::start_with(&email_config(smtp.port, "  retry_for: 5s\n"));
    create_release(&d, "4.0.0");
    deploy(&d, "4.0.0", "production");

    let deadline = Instant::now() + Duration::from_secs(30);
    while d.count("SELECT count(*) FROM notification_deliveries WHERE state = 'failed'") == 0 {
        assert!(Instant::now() < deadline, "never failed:\n{}", d.log());
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = d.shiplog(&["notifications", "list", "--failed", "--json"]);
    let list: Value = serde_json::from_str(&common::stdout(&out)).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert!(
        list[0]["attempts"].as_i64().unwrap() >= 2,
        "retried first: {list}"
    );
    assert!(
        list[0]["lastError"].as_str().unwrap().contains("554"),
        "{list}"
    );
    assert!(smtp.messages().is_empty());
    let metrics = reqwest::blocking::get(format!("{}/metrics", d.url))
        .unwrap()
        .text()
        .unwrap();
    assert!(
        metrics.contains("shiplog_notifications_failed 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("shiplog_notifications_pending 0"),
        "{metrics}"
    );
}

#[test]
fn issue_webhooks_carry_the_api_shape_of_the_issue() {
    let receiver = Receiver::start_on(0);
    let d = Daemon::start_with(&config(
        &receiver.url("/hook"),
        None,
        "      events: [issue.created, issue.resolved]\n",
    ));
    create_release(&d, "5.0.0");
    let dsn = common::events::dsn(&d, "web");
    let event = common::events::error_event("TypeError", "boom", Some("5.0.0"));
    let issue = common::events::send_and_find(&d, &dsn, &event);
    let short_id = issue["shortId"].as_str().unwrap().to_string();
    let (status, body) = d.api(
        "PUT",
        &format!("organizations/acme/issues/{short_id}/"),
        Some(json!({"status": "resolved"})),
    );
    assert_eq!(status, 200, "{body}");

    let got = receiver.wait_for("/hook", 2, Duration::from_secs(20));
    assert_eq!(got.len(), 2, "{got:?}\n{}", d.log());
    let mut by_type = std::collections::HashMap::new();
    for h in &got {
        h.verify();
        let body = h.json();
        by_type.insert(body["type"].as_str().unwrap().to_string(), body);
    }
    let created = &by_type["issue.created"];
    assert_eq!(created["data"]["issue"]["shortId"], json!(short_id));
    assert_eq!(created["data"]["issue"]["id"], issue["id"]);
    assert_eq!(created["data"]["issue"]["permalink"], issue["permalink"]);
    assert_eq!(
        by_type["issue.resolved"]["data"]["issue"]["status"],
        "resolved"
    );
}

#[test]
fn a_target_that_never_answers_does_not_delay_another() {
    // Accepts connections (the kernel's backlog) and never answers a request.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_url = format!("http://{}/hook", silent.local_addr().unwrap());
    let receiver = Receiver::start_on(0);
    let second = format!(
        "      events: [deploy.created]\n    - url: {}\n      secret: whsec_{KEY_B64}\n      events: [deploy.created]\n",
        receiver.url("/fast")
    );
    let d = Daemon::start_with(&config(&silent_url, None, &second));
    create_release(&d, "6.0.0");
    let started = Instant::now();
    deploy(&d, "6.0.0", "production");
    let got = receiver.wait_for("/fast", 1, Duration::from_secs(10));
    assert_eq!(got.len(), 1, "{}", d.log());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // Nor does it hold up the daemon's shutdown.
    let mut d = d;
    let stopping = Instant::now();
    let status = d.stop().expect("daemon was running");
    assert!(status.success(), "{status}");
    assert!(
        stopping.elapsed() < Duration::from_secs(8),
        "{:?}",
        stopping.elapsed()
    );
    drop(silent);
}
