//! Property tests for every parser of untrusted input: arbitrary bytes and structured garbage
//! must give a value or a typed error, never a panic (issue 10). Each property runs 10 000
//! cases; inputs stay small so the whole file runs in seconds.

use proptest::prelude::*;
use serde_json::{Map, Value};

use shiplog::config::Config;
use shiplog::core::commit::RefSpec;
use shiplog::core::release::{Cursor, parse_per_page, parse_query};
use shiplog::github::payload::Payload;
use shiplog::github::webhook::{Request, intake};
use shiplog::model::{envelope, event::Event, issue_ref, manifest, version};
use shiplog::watch::spool;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 10_000,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Any JSON value, a few levels deep, with keys a parser looks for mixed into random ones.
fn json_value() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("type".to_owned()),
        Just("length".to_owned()),
        Just("files".to_owned()),
        Just("url".to_owned()),
        Just("release".to_owned()),
        Just("exception".to_owned()),
        Just("values".to_owned()),
        Just("stacktrace".to_owned()),
        Just("frames".to_owned()),
        Just("message".to_owned()),
        Just("timestamp".to_owned()),
        Just("ref".to_owned()),
        Just("repository".to_owned()),
        Just("commits".to_owned()),
        "[a-z_]{0,8}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 16, 4, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..4)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..128)
}

/// Text: either `shaped` (structured garbage) or arbitrary bytes read as UTF-8.
fn text(shaped: impl Strategy<Value = String>) -> impl Strategy<Value = String> {
    prop_oneof![
        shaped,
        bytes().prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn versions(text in text("([a-z@]{0,3}[0-9]{0,20}[.+*xX-]){0,5}[0-9a-z]{0,3}")) {
        let _ = version::validate(&text);
        let _ = version::parse(&text);
        let _ = version::SemVer::parse(&text);
        let _ = version::version_info(&text);
    }

    #[test]
    fn fixes_grammar(text in text("((Fixes|fix|Closes)[: ]{0,2}(#|[A-Z]{1,3}-)?[0-9A-Z]{0,14}[ ,]?|\\[[a-z]?\\]\\([a-z]?\\)|https?://h/[a-z/]{0,12}[0-9]{0,20}/?){0,4}")) {
        let _ = issue_ref::find_references(&text);
        let _ = issue_ref::find_url_references(&text, "http://h/");
        let _ = issue_ref::strip_markdown_links(&text);
        let _ = issue_ref::ShortId::parse(&text);
        let _ = issue_ref::decode_base32(&text);
    }

    #[test]
    fn manifests(raw in bytes(), value in json_value(), wrap in any::<bool>()) {
        let _ = manifest::parse(&raw);
        let value = if wrap {
            serde_json::json!({"org": "acme", "release": "1.0", "files": value})
        } else {
            value
        };
        let _ = manifest::parse(value.to_string().as_bytes());
    }

    #[test]
    fn envelopes_and_their_items(raw in bytes(), payload in json_value(), length in prop::option::of(0usize..64)) {
        let _ = envelope::parse(&raw);
        let headers = "{\"event_id\":\"9ec79c33ec9942ab8353589fcb2e04dc\"}";
        let item_header = match length {
            Some(n) => format!("{{\"type\":\"event\",\"length\":{n}}}"),
            None => "{\"type\":\"event\"}".to_owned(),
        };
        let body = format!("{headers}\n{item_header}\n{payload}\n");
        if let Ok(env) = envelope::parse(body.as_bytes()) {
            for item in env.items {
                if let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(&item.payload) {
                    let _ = Event::from_json(&map).map(|e| e.grouping());
                }
            }
        }
    }

    #[test]
    fn webhook_payloads(event in "push|create|delete|release|ping|[a-z_]{0,10}", raw in bytes(), value in json_value()) {
        let event = event.as_str();
        let _ = Payload::parse(event, value.to_string().as_bytes());
        let sig = shiplog::github::verify::sign(b"s", &raw);
        let req = Request {
            event: Some(event),
            delivery: Some("d"),
            hook_id: Some("1"),
            signature_256: Some(&sig),
            signature_1: false,
            content_type: Some("application/x-www-form-urlencoded"),
            body: &raw,
        };
        let _ = intake(Some("s"), &req, "2024-01-01T00:00:00Z");
    }

    #[test]
    fn configs(text in text("((listen|organization|limits|artifacts|projects|header_timeout|max_unpacked_bundle|slug)|[ :\\-\n\\[\\]{}'\"$0-9a-z]{0,4}){0,12}")) {
        let _ = Config::from_yaml_str(&text, "fuzz.yaml").map(|c| c.validate());
    }

    #[test]
    fn spool_files(text in text("(shiplog-spool 1\n|end\n|arg [a-z0-9 ]{0,8}\n|line [a-z0-9 ]{0,8}\n|[a-z ]{0,6}\n){0,6}")) {
        let _ = spool::parse(&text);
    }

    #[test]
    fn cursors_pages_and_search_queries(
        cursor in text("(-?[0-9]{0,20}(:|\\.)){0,3}[0-9a-z]{0,3}"),
        query in text("((release\\.version|release\\.build|release|!?[a-z.]{0,6}):(>=|<=|!=|>|<|=)?(\\[[a-z0-9,]{0,8}\\]?|\"[a-z ]{0,6}\"?|[0-9*xX.@a-z-]{0,22}) ?){0,3}"),
    ) {
        let _ = Cursor::parse(&cursor);
        let _ = Cursor::page_number(Some(&cursor));
        let _ = parse_per_page(Some(&cursor));
        let _ = parse_query(&query);
        let _ = shiplog::model::search::tokenize(&query);
    }

    #[test]
    fn set_commits_refs(repository in prop::option::of(".{0,12}"), commit in prop::option::of("[0-9a-f.]{0,90}"), previous in prop::option::of(".{0,8}")) {
        let _ = RefSpec::parse(repository.as_deref(), commit.as_deref(), previous.as_deref());
    }
}
