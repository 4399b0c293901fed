//! Event ingest under stress, against a real daemon: a burst past `limits.ingest_queue` is
//! shed with 429 and `Retry-After` (never a 5xx), and an event answered 200 is stored — even
//! when the daemon is killed with SIGKILL in the middle of a burst.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use common::Daemon;
use common::events::{Dsn, dsn, envelope, error_event};

/// Posts one event; returns its status and `Retry-After` header, or `None` when the
/// connection failed (the daemon is gone).
fn post(
    client: &reqwest::blocking::Client,
    url: &str,
    dsn: &Dsn,
    body: Vec<u8>,
) -> Option<(u16, Option<String>, String)> {
    let resp = client
        .post(format!("{url}/api/{}/envelope/", dsn.project_id))
        .header(
            "X-Sentry-Auth",
            format!("Sentry sentry_key={}, sentry_version=7", dsn.key),
        )
        .body(body)
        .send()
        .ok()?;
    let status = resp.status().as_u16();
    let retry = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let text = resp.text().ok()?;
    Some((status, retry, text))
}

fn stored(d: &Daemon, event_id: &str) -> bool {
    d.db()
        .query_row(
            "SELECT count(*) FROM events WHERE event_id = ?1",
            [event_id],
            |r| r.get::<_, i64>(0),
        )
        .unwrap()
        == 1
}

#[test]
fn a_burst_past_the_ingest_queue_is_shed_with_429_and_retry_after() {
    let d = Daemon::start_with(&format!(
        "{}limits:\n  ingest_queue: 2\n",
        common::DEFAULT_CONFIG
    ));
    let web = dsn(&d, "web");
    let answers = Arc::new(Mutex::new(Vec::new()));
    let threads: Vec<_> = (0..48)
        .map(|t| {
            let (url, web, answers) = (d.url.clone(), web.clone(), answers.clone());
            std::thread::spawn(move || {
                let client = reqwest::blocking::Client::new();
                for i in 0..8 {
                    let event = error_event(&format!("Burst{}", (t + i) % 5), "burst", Some("1.0"));
                    let id = event["event_id"].as_str().unwrap().to_string();
                    let answer = post(&client, &url, &web, envelope(&event)).expect("daemon up");
                    answers.lock().unwrap().push((id, answer));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let answers = answers.lock().unwrap();
    let mut ok = 0;
    let mut shed = 0;
    for (id, (status, retry, body)) in answers.iter() {
        match status {
            200 => {
                ok += 1;
                assert!(stored(&d, id), "{id} acknowledged but not stored");
            }
            429 => {
                shed += 1;
                assert_eq!(retry.as_deref(), Some("1"), "{body}");
                assert!(body.contains("limits.ingest_queue"), "{body}");
                assert!(!stored(&d, id), "{id} refused but stored");
            }
            other => panic!("unexpected {other}: {body}\n{}", d.log()),
        }
    }
    assert!(ok > 0 && shed > 0, "{ok} stored, {shed} shed");
    assert_eq!(
        d.count("SELECT count(*) FROM events"),
        ok,
        "stored events differ from the acknowledged"
    );
}

#[test]
fn every_acknowledged_event_survives_kill_9_in_a_burst() {
    let mut d = Daemon::start();
    let web = dsn(&d, "web");
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let dead = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (0..16)
        .map(|t| {
            let (url, web, acknowledged, dead) = (
                d.url.clone(),
                web.clone(),
                acknowledged.clone(),
                dead.clone(),
            );
            std::thread::spawn(move || {
                let client = reqwest::blocking::Client::new();
                let mut i = 0;
                while !dead.load(Ordering::Relaxed) {
                    i += 1;
                    let event = error_event(&format!("Kill{}", (t + i) % 7), "kill", Some("2.0"));
                    let id = event["event_id"].as_str().unwrap().to_string();
                    match post(&client, &url, &web, envelope(&event)) {
                        Some((200, _, _)) => acknowledged.lock().unwrap().push(id),
                        Some((status, _, body)) => {
                            assert!(status < 500, "{status}: {body}")
                        }
                        // Killed mid-request: the event may or may not be stored.
                        None => return,
                    }
                }
            })
        })
        .collect();
    // Kill once the burst is well under way.
    while acknowledged.lock().unwrap().len() < 300 {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    d.kill();
    dead.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    d.restart();
    let acknowledged = acknowledged.lock().unwrap();
    let missing: Vec<&String> = acknowledged.iter().filter(|id| !stored(&d, id)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged events lost: {missing:?}",
        missing.len(),
        acknowledged.len()
    );
    // The restarted daemon takes events again.
    let (status, _, body) = post(
        &reqwest::blocking::Client::new(),
        &d.url,
        &web,
        envelope(&error_event("AfterRestart", "ok", Some("2.0"))),
    )
    .expect("daemon up");
    assert_eq!(status, 200, "{body}");
}
