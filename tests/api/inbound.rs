//! Inbound safety, black-box: who may call, what a refused request is told, and how the
//! service behaves when asked for more than it will do.

use std::time::Duration;

use crate::helpers::process::{Service, command};
use crate::helpers::*;
use darktrace_export::simulator::Faults;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn every_configured_token_is_accepted_for_rotation() {
    let app = spawn_adjusted(|config| {
        config.api_tokens = vec!["old-token".into(), "new-token".into()];
    })
    .await;
    for token in ["old-token", "new-token"] {
        let response = app.post_as("/export", token, &fqdns(1)).await;
        assert_eq!(response.status(), 200, "{token}");
    }
    let response = app
        .post_as("/export", "old-token-but-longer", &fqdns(1))
        .await;
    let problem = expect_problem(response, 401).await;
    assert!(problem["detail"].as_str().unwrap().contains("API_TOKENS"));
}

#[tokio::test]
async fn a_refused_token_reaches_nothing_and_says_bearer() {
    let app = spawn().await;
    for authorization in [
        None,
        Some("Basic dGVzdA=="),
        Some("Bearer "),
        Some("Bearer x"),
    ] {
        let mut request = app.http.post(app.url("/export")).json(&fqdns(1));
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
        expect_problem(response, 401).await;
    }
    assert!(app.sim.calls().is_empty());
}

#[tokio::test]
async fn open_endpoints_never_ask_for_a_token() {
    let app = spawn().await;
    for path in ["/healthz", "/readyz", "/metrics", "/openapi.yaml"] {
        let response = app.http.get(app.url(path)).send().await.unwrap();
        assert_ne!(response.status(), 401, "{path}");
        assert!(response.headers().get("www-authenticate").is_none());
    }
}

#[tokio::test]
async fn a_body_that_is_not_json_is_400_with_line_and_column() {
    let app = spawn().await;
    let response = app
        .post_raw("/export", Some("application/json"), "[\n {\"value\": }]")
        .await;
    let problem = expect_problem(response, 400).await;
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.contains("line 2 column"), "{detail}");
    assert!(app.sim.calls().is_empty());
}

/// A body read as it arrives (over a MiB, so it comes in many chunks and is screened on a
/// second thread) and broken deep inside is refused as a whole one is, at the body's own
/// line and column, and nothing of it reached Darktrace: `/sync`, which reads its body
/// whole, says the same.
#[tokio::test]
async fn a_body_broken_far_in_is_refused_at_its_own_line_and_column() {
    let app = spawn_adjusted(|c| c.limits.objects_per_run = 100_000).await;
    let good: Vec<String> = (0..40_000)
        .map(|i| format!("{{\"type\": \"FQDN\", \"value\": \"host-{i}.example\"}}"))
        .collect();
    let body = format!("[\n{},\n  {{\"value\": tru}}]", good.join(",\n"));
    assert!(body.len() > 1 << 20);
    let streamed = app
        .post_raw("/export", Some("application/json"), body.clone())
        .await;
    let streamed = expect_problem(streamed, 400).await["detail"].clone();
    let whole = app.post_raw("/sync", Some("application/json"), body).await;
    let whole = expect_problem(whole, 400).await["detail"].clone();
    assert_eq!(streamed, whole);
    let detail = streamed.as_str().unwrap();
    assert!(
        detail.starts_with("body is not valid JSON: ") && detail.contains(" at line 40002 column "),
        "{detail}"
    );
    assert!(app.sim.calls().is_empty());
}

#[tokio::test]
async fn a_body_not_declared_json_is_415() {
    let app = spawn().await;
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let response = app.post_raw("/export", content_type, "[]").await;
        let problem = expect_problem(response, 415).await;
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains("application/json"),
            "{problem}"
        );
    }
    let response = app
        .post_raw("/export", Some("application/json; charset=utf-8"), "[]")
        .await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn a_body_of_the_wrong_shape_is_422_naming_the_path() {
    let app = spawn().await;
    let cases = [
        (json!({"total": 3}), "data"),
        (json!({"indicators": [], "dry_run": "yes"}), "dry_run"),
        (json!({"indicators": {"value": "a.example"}}), "indicators"),
        (json!("a.example"), "array"),
    ];
    for (body, mentioned) in cases {
        let (status, problem) = app.export(&body).await;
        assert_eq!(status, 422, "{body}");
        let detail = problem["detail"].as_str().unwrap();
        assert!(detail.contains(mentioned), "{body}: {detail}");
    }
    assert!(app.sim.calls().is_empty());
}

#[tokio::test]
async fn a_body_over_max_body_bytes_is_413_and_nothing_is_sent() {
    let app = spawn_adjusted(|config| {
        config.limits.max_body_bytes = 1024;
    })
    .await;
    let body = serde_json::to_vec(&fqdns(100)).unwrap();
    assert!(body.len() > 1024);
    let response = app
        .post_raw("/export", Some("application/json"), body)
        .await;
    let problem = expect_problem(response, 413).await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("MAX_BODY_BYTES (1024 bytes)")
    );
    assert!(app.sim.calls().is_empty());
}

#[tokio::test]
async fn a_body_under_max_body_bytes_is_read_whatever_its_size() {
    let app = spawn_adjusted(|config| {
        config.limits.max_body_bytes = 8 * 1024 * 1024;
    })
    .await;
    // Past axum's own 2 MB default, which must not apply in MAX_BODY_BYTES's place.
    let mut body = serde_json::to_vec(&fqdns(2)).unwrap();
    body.splice(1..1, std::iter::repeat_n(b' ', 3 * 1024 * 1024));
    let response = app
        .post_raw("/export", Some("application/json"), body)
        .await;
    assert_eq!(response.status(), 200);
    let report: Value = response.json().await.unwrap();
    assert_accounts_for_every_item(&report, 2);
}

#[tokio::test]
async fn a_chunked_body_over_max_body_bytes_is_413() {
    let app = spawn_adjusted(|config| {
        config.limits.max_body_bytes = 1024;
    })
    .await;
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let mut request = format!(
        "POST /export HTTP/1.1\r\nhost: {}\r\nauthorization: Bearer {API_TOKEN}\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n",
        app.addr
    );
    for _ in 0..8 {
        request.push_str(&format!("200\r\n{}\r\n", " ".repeat(512)));
    }
    request.push_str("0\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let answer = read_answer(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("application/problem+json"), "{answer}");
    assert!(app.sim.calls().is_empty());
}

/// Reads what the service answers on a raw connection until it closes it.
async fn read_answer(stream: &mut tokio::net::TcpStream) -> String {
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the service never finished its answer");
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn more_items_than_objects_per_run_is_413_before_anything_is_sent() {
    let app = spawn_adjusted(|config| {
        config.limits.objects_per_run = 5;
    })
    .await;
    let (status, problem) = app.export(&json!({"indicators": fqdns(6)})).await;
    assert_eq!(status, 413);
    assert_eq!(
        problem["detail"],
        "batch has 6 indicators; OBJECTS_PER_RUN is 5"
    );
    assert!(app.sim.calls().is_empty());
    let (status, report) = app.export(&fqdns(5)).await;
    assert_eq!(status, 200);
    assert_accounts_for_every_item(&report, 5);
}

#[tokio::test]
async fn bad_overrides_are_400_naming_what_is_wrong() {
    let app = spawn().await;
    let long_source = "s".repeat(64);
    let long_description = "d".repeat(256);
    let cases: Vec<(String, Value, &str)> = vec![
        (format!("/export?source={long_source}"), fqdns(1), "source"),
        ("/export?source=".into(), fqdns(1), "source"),
        (
            "/export?days_to_expiration=-1".into(),
            fqdns(1),
            "0 to 3650",
        ),
        ("/export?days_to_expiration=soon".into(), fqdns(1), "days"),
        ("/export?dry_run=maybe".into(), fqdns(1), "dry_run"),
        (
            "/export?dryrun=true".into(),
            fqdns(1),
            "did you mean 'dry_run'",
        ),
        (
            "/sync?Dry-Run=true".into(),
            fqdns(1),
            "did you mean 'dry_run'",
        ),
        // A bad query is refused before the body is read, whatever the body is.
        ("/export?dryrun=true".into(), json!({"total": 3}), "dryrun"),
        ("/remove?dryrun=true".into(), json!({"total": 3}), "dryrun"),
        ("/sync?dryrun=true".into(), json!({"total": 3}), "dryrun"),
        (
            "/export".into(),
            json!({"indicators": fqdns(1), "source": long_source}),
            "63",
        ),
        (
            "/export".into(),
            json!({"indicators": fqdns(1), "description": long_description}),
            "256",
        ),
        (
            "/export".into(),
            json!({"indicators": fqdns(1), "days_to_expiration": -3}),
            "0 to 3650",
        ),
        (
            "/export".into(),
            json!({"indicators": fqdns(1), "days_to_expiration": 4000}),
            "0 to 3650",
        ),
        // A query parameter given twice has no meaning to rely on.
        (
            "/export?dry_run=true&dry_run=false".into(),
            fqdns(1),
            "twice",
        ),
        ("/sync?source=A&source=B".into(), fqdns(1), "twice"),
        // A misspelt override in the body never turns into a real export.
        (
            "/export".into(),
            json!({"indicators": fqdns(1), "dryrun": true}),
            "'dryrun'",
        ),
        (
            "/export".into(),
            json!({"indicators": fqdns(1), "sorce": "X"}),
            "'sorce'",
        ),
        (
            "/sync".into(),
            json!({"indicators": fqdns(1), "Dry_Run": true}),
            "'Dry_Run'",
        ),
        (
            "/export".into(),
            json!({"total": 1, "data": fqdns(1), "Dry_Run": true}),
            "did you mean 'dry_run'",
        ),
        (
            "/remove".into(),
            json!({"total": 1, "data": fqdns(1), "dry-run": true}),
            "did you mean 'dry_run'",
        ),
    ];
    for (path, body, mentioned) in cases {
        let (status, problem) = app.post(&path, &body).await;
        assert_eq!(status, 400, "{path} {body}: {problem}");
        assert_eq!(
            problem["type"],
            "urn:darktrace-export:problem:bad-parameter"
        );
        let detail = problem["detail"].as_str().unwrap();
        assert!(detail.contains(mentioned), "{path}: {detail}");
    }
    assert!(app.sim.calls().is_empty());
}

#[tokio::test]
async fn overrides_in_a_threatq_page_are_honoured_in_every_route() {
    let app = spawn().await;
    for path in ["/export", "/remove", "/sync"] {
        let body = json!({"total": 1, "data": fqdns(1), "nextCursorMark": "AoJ9", "limit": 100,
                          "dry_run": true, "source": "FromPage"});
        let (status, report) = app.post(path, &body).await;
        assert_eq!(status, 200, "{path}: {report}");
        assert_eq!(report["dry_run"], true, "{path}: {report}");
        assert_eq!(report["source"], "FromPage", "{path}: {report}");
    }
    assert!(app.posts().is_empty(), "a dry run sends nothing");
    assert!(
        app.sim.calls().iter().all(|c| c.method == "GET"),
        "only reads of the source"
    );
}

#[tokio::test]
async fn an_empty_body_or_a_byte_order_mark_says_so_and_an_override_of_the_wrong_type_says_what_it_takes()
 {
    let app = spawn().await;
    let response = app.post_raw("/export", Some("application/json"), "").await;
    let problem = expect_problem(response, 400).await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("the body is empty"),
        "{problem}"
    );
    // As Windows PowerShell saves a file in UTF-8: named, on every batch route.
    for path in ["/export", "/remove", "/sync"] {
        let body = format!("\u{feff}{}", json!({"indicators": fqdns(1)}));
        let response = app.post_raw(path, Some("application/json"), body).await;
        let problem = expect_problem(response, 400).await;
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains("byte order mark"),
            "{path}: {problem}"
        );
    }
    assert!(app.posts().is_empty());
    let cases = [
        ("days_to_expiration", json!("30"), "a whole number of days"),
        ("dry_run", json!("yes"), "true or false"),
        ("source", json!(7), "a string"),
    ];
    for (key, value, expected) in cases {
        let mut body = json!({"indicators": fqdns(1)});
        body[key] = value;
        let (status, problem) = app.export(&body).await;
        assert_eq!(status, 422, "{problem}");
        let detail = problem["detail"].as_str().unwrap();
        assert!(
            detail.contains(expected) && detail.contains(key),
            "{detail}"
        );
        assert!(
            !detail.contains("i64") && !detail.contains("bool"),
            "{detail}"
        );
    }
    assert!(app.sim.calls().is_empty());
}

#[tokio::test]
async fn unknown_routes_are_404_and_wrong_methods_405_as_problems() {
    let app = spawn().await;
    let response = app.http.get(app.url("/nowhere")).send().await.unwrap();
    let problem = expect_problem(response, 404).await;
    assert!(problem["detail"].as_str().unwrap().contains("/nowhere"));

    let response = app
        .http
        .get(app.url("/export"))
        .bearer_auth(API_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["allow"], "POST");
    let problem = expect_problem(response, 405).await;
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.contains("use POST"), "{problem}");

    let response = app.http.delete(app.url("/healthz")).send().await.unwrap();
    expect_problem(response, 405).await;
}

#[tokio::test]
async fn beyond_max_concurrent_exports_requests_get_503_with_retry_after_at_once() {
    let sim = simulator().await;
    let (mut config, gate) = config_behind_gate(&sim).await;
    config.limits.max_concurrent_exports = 2;
    let app = std::sync::Arc::new(spawn_with(sim, config).await);

    let first: Vec<_> = (0..2)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move { app.export(&fqdns(1)).await })
        })
        .collect();
    gate.until_held(2).await;

    // Both permits are held until Darktrace answers: these are refused, not queued.
    for _ in 0..4 {
        let response = app
            .post_raw("/export", Some("application/json"), "[]")
            .await;
        assert_eq!(response.headers()["retry-after"], "1");
        let problem = expect_problem(response, 503).await;
        assert_eq!(problem["type"], "urn:darktrace-export:problem:overloaded");
    }
    // Health endpoints still answer.
    for path in ["/healthz", "/readyz"] {
        let response = app.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
    gate.open();
    for request in first {
        let (status, report) = request.await.unwrap();
        assert_eq!(status, 200);
        assert_accounts_for_every_item(&report, 1);
    }
}

#[tokio::test]
async fn six_parallel_exports_over_a_limit_of_two_complete_or_are_shed() {
    let sim = simulator().await;
    let (mut config, gate) = config_behind_gate(&sim).await;
    config.limits.max_concurrent_exports = 2;
    let app = std::sync::Arc::new(spawn_with(sim, config).await);
    let (answered, mut answers) = tokio::sync::mpsc::unbounded_channel();
    for _ in 0..6 {
        let app = app.clone();
        let answered = answered.clone();
        tokio::spawn(async move {
            let response = app.post_as("/export", API_TOKEN, &fqdns(3)).await;
            let status = response.status().as_u16();
            let retry_after = response.headers().get("retry-after").cloned();
            let body: Value = response.json().await.unwrap();
            let _ = answered.send((status, retry_after, body));
        });
    }
    drop(answered);
    let mut next = async || {
        tokio::time::timeout(Duration::from_secs(120), answers.recv())
            .await
            .expect("every export is answered")
            .expect("an answer")
    };
    // Two exports hold the permits, their calls waiting at the gate; the other four are
    // shed at once, not queued behind them.
    gate.until_held(2).await;
    for _ in 0..4 {
        let (status, retry_after, body) = next().await;
        assert_eq!(status, 503, "{body}");
        assert!(retry_after.is_some());
        assert_eq!(body["type"], "urn:darktrace-export:problem:overloaded");
    }
    gate.open();
    for _ in 0..2 {
        let (status, _, body) = next().await;
        assert_eq!(status, 200, "{body}");
        assert_accounts_for_every_item(&body, 3);
        assert_eq!(body["summary"]["exported"], 3);
    }
}

#[tokio::test]
async fn a_request_past_its_deadline_answers_502_with_every_item_accounted_for() {
    let sim = simulator().await;
    sim.set_faults(Faults {
        hang: true,
        ..Faults::default()
    });
    let mut config = config_for(&sim);
    config.limits.request_timeout = Duration::from_millis(700);
    let app = spawn_with(sim, config).await;
    let (status, report) = app
        .export(&json!([
            {"type": "FQDN", "value": "a.example"},
            {"type": "MD5", "value": "d41d8cd98f00b204e9800998ecf8427e"},
            {"type": "IP Address", "value": "198.51.100.7"},
            {"type": "FQDN", "value": "bad..example"},
        ]))
        .await;
    assert_eq!(status, 502, "{report}");
    assert_accounts_for_every_item(&report, 4);
    assert_eq!(
        outcomes(&report),
        vec![
            ("failed".into(), "deadline".into()),
            ("skipped".into(), "unsupported_type".into()),
            ("failed".into(), "deadline".into()),
            ("invalid".into(), "invalid_fqdn".into()),
        ]
    );
    assert!(
        report["results"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("REQUEST_TIMEOUT_SECS")
    );
}

#[tokio::test]
async fn calls_cut_off_by_the_deadline_leave_only_confirmed_items_exported() {
    let sim = simulator().await;
    sim.set_faults(Faults {
        latency: Duration::from_millis(400),
        ..Faults::default()
    });
    let mut config = config_for(&sim);
    config.darktrace.batch_size = 1;
    config.darktrace.concurrency = 1;
    config.limits.request_timeout = Duration::from_millis(1000);
    let app = spawn_with(sim, config).await;
    let (status, report) = app.export(&fqdns(6)).await;
    assert_eq!(status, 502, "{report}");
    assert_accounts_for_every_item(&report, 6);
    let held = app.sim.with_store(|s| s.names(Some("ThreatQ")));
    let mut deadline = 0;
    for result in report["results"].as_array().unwrap() {
        match (result["outcome"].as_str(), result["reason"].as_str()) {
            (Some("exported"), _) => {
                let value = result["exported_value"].as_str().unwrap();
                assert!(held.iter().any(|h| h == value), "{value} not in Darktrace");
            }
            (Some("failed"), Some("deadline")) => deadline += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(deadline >= 1);
}

#[tokio::test]
async fn a_body_that_does_not_arrive_before_the_deadline_is_408() {
    let app = spawn_adjusted(|config| {
        config.limits.request_timeout = Duration::from_millis(500);
    })
    .await;
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let head = format!(
        "POST /export HTTP/1.1\r\nhost: {}\r\nauthorization: Bearer {API_TOKEN}\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n[",
        app.addr
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let answer = read_answer(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("application/problem+json"), "{answer}");
    assert!(answer.contains("REQUEST_TIMEOUT_SECS"), "{answer}");
    assert!(app.sim.calls().is_empty());
}

/// A body that goes wrong early is refused then, not once the client has sent (or failed
/// to send) the rest: a client that sends a broken start and stalls gets its 400, not the
/// deadline's 408.
#[tokio::test]
async fn a_body_broken_at_its_start_is_refused_before_the_rest_arrives() {
    let app = spawn_adjusted(|config| {
        config.limits.request_timeout = Duration::from_secs(30);
    })
    .await;
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let head = format!(
        "POST /export HTTP/1.1\r\nhost: {}\r\nauthorization: Bearer {API_TOKEN}\r\ncontent-type: application/json\r\ncontent-length: 1000000\r\n\r\n[1, }}",
        app.addr
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    // The connection stays open (the client could still send the rest): read the answer,
    // not to the end of the stream.
    let mut answer = Vec::new();
    let read_problem = async {
        let mut buffer = [0u8; 4096];
        while !String::from_utf8_lossy(&answer).ends_with('}') {
            let read = stream.read(&mut buffer).await.unwrap();
            assert!(read > 0, "closed before the answer");
            answer.extend_from_slice(&buffer[..read]);
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read_problem)
        .await
        .expect("answered before the body's end, long before the deadline");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("line 1 column 5"), "{answer}");
    assert!(app.sim.calls().is_empty());
}

#[tokio::test]
async fn tokens_from_api_tokens_and_api_tokens_file_are_all_accepted() {
    let sim = simulator().await;
    let dir = std::env::temp_dir().join(format!("inbound-tokens-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("tokens");
    std::fs::write(
        &file,
        "# rotated monthly\nfile-token-1\n\n  file-token-2  \n",
    )
    .unwrap();
    let url = sim.url();
    let service = Service::start(&[
        ("DARKTRACE_HOST", &url),
        ("DARKTRACE_PUBLIC_TOKEN", PUBLIC),
        ("DARKTRACE_PRIVATE_TOKEN", PRIVATE),
        ("API_TOKENS", "env-token-1, env-token-2"),
        ("API_TOKENS_FILE", file.to_str().unwrap()),
    ]);
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let status = |token: &'static str| {
        let request = http
            .post(service.url("/export"))
            .bearer_auth(token)
            .json(&fqdns(1));
        async move { request.send().await.unwrap().status().as_u16() }
    };
    for token in ["env-token-1", "env-token-2", "file-token-1", "file-token-2"] {
        assert_eq!(status(token).await, 200, "{token}");
    }
    for token in [
        "# rotated monthly",
        "env-token-1, env-token-2",
        "file-token-3",
    ] {
        assert_eq!(status(token).await, 401, "{token}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn allow_unauthenticated_starts_with_a_warning_and_needs_no_token() {
    let sim = simulator().await;
    let url = sim.url();
    let service = Service::start(&[
        ("DARKTRACE_HOST", &url),
        ("DARKTRACE_PUBLIC_TOKEN", PUBLIC),
        ("DARKTRACE_PRIVATE_TOKEN", PRIVATE),
        ("ALLOW_UNAUTHENTICATED", "true"),
    ]);
    let response = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(service.url("/export"))
        .json(&fqdns(1))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let warning = service
        .log()
        .lines()
        .find(|l| l.contains("\"WARN\"") && l.contains("unauthenticated"))
        .map(str::to_owned);
    assert!(warning.is_some(), "{}", service.log());
}

#[test]
fn without_a_token_the_service_refuses_to_start_saying_how_to_fix_it() {
    let output = command()
        .envs([
            ("DARKTRACE_HOST", "dt.example"),
            ("DARKTRACE_PUBLIC_TOKEN", "p"),
            ("DARKTRACE_PRIVATE_TOKEN", "s"),
            ("API_TOKENS", " , "),
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    for hint in ["API_TOKENS_FILE", "ALLOW_UNAUTHENTICATED=true"] {
        assert!(stderr.contains(hint), "{stderr}");
    }
}

#[test]
fn demo_without_a_token_refuses_a_non_loopback_address() {
    let output = command()
        .args(["--demo", "--listen-addr", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.starts_with("LISTEN_ADDR"), "{stderr}");
    assert!(stderr.contains("loopback"), "{stderr}");
}

#[test]
fn each_out_of_range_setting_stops_the_service_naming_it() {
    let base = [
        ("DARKTRACE_HOST", "dt.example"),
        ("DARKTRACE_PUBLIC_TOKEN", "p"),
        ("DARKTRACE_PRIVATE_TOKEN", "s"),
        ("API_TOKENS", "t"),
    ];
    let long_source = "s".repeat(64);
    let long_description = "d".repeat(256);
    let cases: &[(&str, &str)] = &[
        ("SOURCE_NAME", ""),
        ("SOURCE_NAME", &long_source),
        ("DESCRIPTION", &long_description),
        ("DAYS_TO_EXPIRATION", "-1"),
        ("DAYS_TO_EXPIRATION", "3651"),
        ("OBJECTS_PER_RUN", "0"),
        ("MAX_BODY_BYTES", "0"),
        ("MAX_CONCURRENT_EXPORTS", "0"),
        ("REQUEST_TIMEOUT_SECS", "0"),
        ("SHUTDOWN_GRACE_SECS", "-5"),
        ("DARKTRACE_BATCH_SIZE", "0"),
        ("DARKTRACE_CONCURRENCY", "0"),
        ("DARKTRACE_TIMEOUT_SECS", "0"),
        ("DARKTRACE_MAX_RETRIES", "many"),
        ("SYNC_MAX_REMOVALS", "-1"),
        ("ALLOW_UNAUTHENTICATED", "perhaps"),
    ];
    for (setting, value) in cases {
        let output = command().envs(base).env(setting, value).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{setting}={value}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.starts_with(setting), "{setting}={value}: {stderr}");
    }
}
