//! Hostile input: arbitrary bytes, arbitrary JSON, broken and deeply nested bodies never
//! make the service panic or answer 500; every answer is one the API documents.

use std::sync::OnceLock;

use crate::helpers::*;
use axum::Router;
use axum::body::{Body, to_bytes};
use axum::http::Request;
use darktrace_export::app::app_state;
use darktrace_export::simulator::Simulator;
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use tower::ServiceExt;

/// One router and simulator for every case, on a runtime of their own.
struct Harness {
    runtime: tokio::runtime::Runtime,
    router: Router,
    _sim: Simulator,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let sim = runtime.block_on(simulator());
        let mut config = config_for(&sim);
        config.limits.objects_per_run = 50;
        config.limits.max_body_bytes = 1024 * 1024;
        let router = darktrace_export::http::router(app_state(config).unwrap());
        Harness {
            runtime,
            router,
            _sim: sim,
        }
    })
}

/// What the service answered: status, content type, body.
struct Answer {
    status: u16,
    content_type: String,
    body: Vec<u8>,
}

fn send(uri: &str, content_type: &str, body: Vec<u8>) -> Answer {
    let h = harness();
    let request = Request::post(uri)
        .header("authorization", format!("Bearer {API_TOKEN}"))
        .header("content-type", content_type)
        .body(Body::from(body))
        .unwrap();
    h.runtime.block_on(async {
        let response = h.router.clone().oneshot(request).await.unwrap();
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
        Answer {
            status,
            content_type,
            body: body.to_vec(),
        }
    })
}

fn export(body: Vec<u8>) -> Answer {
    send("/export", "application/json", body)
}

/// The answer is documented: a report (200/502) that accounts for every item, or a problem
/// with a 4xx the API lists. Never a 500.
fn assert_documented(answer: &Answer) -> Result<(), TestCaseError> {
    let body: Value = serde_json::from_slice(&answer.body)
        .map_err(|e| TestCaseError::fail(format!("answer is not JSON: {e}")))?;
    match answer.status {
        200 | 502 => {
            prop_assert_eq!(&answer.content_type, "application/json");
            let received = body["summary"]["received"].as_u64().unwrap_or(u64::MAX) as usize;
            assert_accounts_for_every_item(&body, received);
        }
        400 | 413 | 415 | 422 => {
            prop_assert_eq!(&answer.content_type, "application/problem+json");
            prop_assert_eq!(body["status"].as_u64(), Some(u64::from(answer.status)));
            prop_assert!(body["detail"].is_string());
        }
        other => prop_assert!(false, "undocumented status {other}: {body}"),
    }
    Ok(())
}

/// JSON made of the words a ThreatQ body uses, nested a few levels.
fn threatq_like_json() -> impl Strategy<Value = Value> {
    let word = prop_oneof![
        Just("FQDN".to_owned()),
        Just("IP Address".to_owned()),
        Just("IPv6 Address".to_owned()),
        Just("Active".to_owned()),
        Just("Whitelisted".to_owned()),
        Just("a.example".to_owned()),
        Just("198.51.100.7".to_owned()),
        Just("2001:db8::1".to_owned()),
        ".{0,12}",
    ];
    let key = prop_oneof![
        Just("value".to_owned()),
        Just("type".to_owned()),
        Just("status".to_owned()),
        Just("name".to_owned()),
        Just("id".to_owned()),
        Just("type_id".to_owned()),
        Just("data".to_owned()),
        Just("indicators".to_owned()),
        Just("source".to_owned()),
        Just("days_to_expiration".to_owned()),
        Just("description".to_owned()),
        Just("dry_run".to_owned()),
        "[a-z_]{0,6}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        word.prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..6)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_get_a_documented_answer(body in prop::collection::vec(any::<u8>(), 0..2048)) {
        let answer = export(body);
        assert_documented(&answer)?;
    }

    #[test]
    fn near_json_text_gets_a_documented_answer(body in r#"[\[\]{}",:0-9a-zA-Z .\\-]{0,400}"#) {
        let answer = export(body.into_bytes());
        assert_documented(&answer)?;
    }

    #[test]
    fn arbitrary_json_gets_a_documented_answer(value in threatq_like_json()) {
        let answer = export(serde_json::to_vec(&value).unwrap());
        assert_documented(&answer)?;
    }

    #[test]
    fn arbitrary_query_strings_get_a_documented_answer(query in "[a-z_=&%0-9+]{0,60}") {
        let answer = send(&format!("/export?{query}"), "application/json", b"[]".to_vec());
        assert_documented(&answer)?;
    }

    #[test]
    fn arbitrary_content_types_get_a_documented_answer(content_type in "[ -~]{0,40}") {
        let answer = send("/export", &content_type, b"[]".to_vec());
        assert_documented(&answer)?;
    }
}

proptest! {
    // Whole batches are slower to generate; fewer cases cover them.
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn arbitrary_batches_are_answered_item_by_item(items in prop::collection::vec(threatq_like_json(), 0..60)) {
        let count = items.len();
        let answer = export(serde_json::to_vec(&json!({"indicators": items, "dry_run": true})).unwrap());
        assert_documented(&answer)?;
        if count > 50 {
            prop_assert_eq!(answer.status, 413);
        }
    }
}

fn example_bytes() -> Vec<u8> {
    serde_json::to_vec_pretty(&example_collection()).unwrap()
}

#[test]
fn every_truncation_of_a_real_collection_is_400() {
    let full = example_bytes();
    for end in (0..full.len()).step_by(11) {
        let answer = export(full[..end].to_vec());
        assert_eq!(answer.status, 400, "cut at {end}");
        assert_documented(&answer).unwrap();
    }
}

#[test]
fn random_corruptions_of_a_real_collection_get_documented_answers() {
    let full = example_bytes();
    let mut rng = StdRng::seed_from_u64(0x5eed);
    for _ in 0..400 {
        let mut body = full.clone();
        for _ in 0..rng.random_range(1..8) {
            let at = rng.random_range(0..body.len());
            match rng.random_range(0..3) {
                0 => body[at] = rng.random(),
                1 => {
                    body.remove(at);
                }
                _ => body.insert(at, b"[]{}\",:\\"[rng.random_range(0..8)]),
            }
        }
        assert_documented(&export(body)).unwrap();
    }
}

#[test]
fn deep_nesting_anywhere_is_400() {
    for body in [
        "[".repeat(100_000),
        format!("{{\"data\": {}", "[".repeat(100_000)),
        format!(
            "[{{\"value\": \"a.example\", \"attributes\": {}",
            "[".repeat(100_000)
        ),
        format!("[{{\"type\": {}", "{\"name\": ".repeat(10_000)),
    ] {
        let answer = export(body.into_bytes());
        assert_eq!(answer.status, 400);
        assert_documented(&answer).unwrap();
    }
}

#[test]
fn keys_are_held_to_json_text_rules() {
    // Legal: a key whose escape is a line break, beside the indicator's own keys.
    let answer =
        export(br#"[{"note\nline": 1, "type": "FQDN", "value": "keys.example"}]"#.to_vec());
    assert_eq!(answer.status, 200);
    let report: Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(outcomes(&report), vec![("exported".into(), "added".into())]);
    // Not JSON: a raw control character or bytes that are not UTF-8 in a key.
    for body in [
        b"[{\"note\x01\": 1, \"type\": \"FQDN\", \"value\": \"keys.example\"}]".to_vec(),
        b"[{\"note\xff\": 1, \"type\": \"FQDN\", \"value\": \"keys.example\"}]".to_vec(),
    ] {
        assert_400_saying(&export(body), "line 1 column");
    }
}

/// A 400 problem whose detail holds `words`.
fn assert_400_saying(answer: &Answer, words: &str) {
    assert_eq!(answer.status, 400);
    let problem: Value = serde_json::from_slice(&answer.body).unwrap();
    assert!(
        problem["detail"].as_str().unwrap().contains(words),
        "{problem}"
    );
}

#[test]
fn a_deep_object_where_the_list_belongs_is_the_wrong_shape() {
    let answer = export("{\"data\":".repeat(50_000).into_bytes());
    assert_eq!(answer.status, 422);
    assert_documented(&answer).unwrap();
}

#[test]
fn nesting_past_the_parser_limit_where_it_is_read_is_400() {
    let depth = 1000;
    let body = format!(
        "[{{\"value\": \"a.example\", \"type\": {}\"FQDN\"{}}}]",
        "{\"name\": ".repeat(depth),
        "}".repeat(depth)
    );
    assert_400_saying(&export(body.into_bytes()), "recursion limit");
}

#[test]
fn nesting_that_is_closed_and_ignored_is_one_item_not_an_object() {
    let body = format!("[{}{}]", "[".repeat(100_000), "]".repeat(100_000));
    let answer = export(body.into_bytes());
    assert_eq!(answer.status, 200);
    let report: Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(
        outcomes(&report),
        vec![("invalid".into(), "not_an_object".into())]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_thousand_brackets_get_400_and_the_service_stays_up() {
    let app = spawn().await;
    let response = app
        .post_raw("/export", Some("application/json"), "[".repeat(100_000))
        .await;
    let problem = expect_problem(response, 400).await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("line 1 column 100000"),
        "{problem}"
    );
    let healthz = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(healthz.status(), 200);
    let (status, report) = app.export(&fqdns(2)).await;
    assert_eq!(status, 200);
    assert_accounts_for_every_item(&report, 2);
}
