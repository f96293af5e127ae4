//! What an operator sees: Prometheus metrics, and log lines that carry the request id.
//!
//! The metrics recorder is global to the test process, so metric checks compare a scrape
//! before and after, and only ever expect counts to have grown by at least as much.

use std::collections::HashMap;
use std::sync::OnceLock;

use darktrace_export::config::LogFormat;
use darktrace_export::simulator::Faults;
use darktrace_export::telemetry::Capture;
use serde_json::{Value, json};
use tracing_subscriber::EnvFilter;

use crate::helpers::*;

/// One scrape: `name{labels}` (labels sorted) → value.
type Scrape = HashMap<String, f64>;

async fn scrape(app: &TestApp) -> (String, Scrape) {
    let response = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = response.text().await.unwrap();
    let mut samples = HashMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (series, value) = line.rsplit_once(' ').unwrap();
        samples.insert(canonical(series), value.parse().unwrap());
    }
    (text, samples)
}

/// `name{b="2",a="1"}` → `name{a="1",b="2"}`, so lookups do not depend on label order.
fn canonical(series: &str) -> String {
    match series.split_once('{') {
        None => series.to_owned(),
        Some((name, labels)) => {
            let mut labels: Vec<&str> = labels.trim_end_matches('}').split(',').collect();
            labels.sort_unstable();
            format!("{name}{{{}}}", labels.join(","))
        }
    }
}

fn grew(before: &Scrape, after: &Scrape, series: &str) -> f64 {
    let series = canonical(series);
    let now = after
        .get(&series)
        .unwrap_or_else(|| panic!("no {series} in the scrape"));
    now - before.get(&series).copied().unwrap_or(0.0)
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status_and_indicators_by_outcome() {
    let app = spawn().await;
    let (_, before) = scrape(&app).await;

    let (status, _) = app
        .export(&json!([
            {"value": "metrics-one.example", "type": "FQDN"},
            {"value": "10.1.2.3", "type": "IP Address"},
            {"value": "x", "type": "MD5"}
        ]))
        .await;
    assert_eq!(status, 200);
    let unauthorized = app
        .http
        .post(app.url("/export"))
        .json(&json!([]))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthorized.status(), 401);
    let probe = app.http.get(app.url("/wp-login.php")).send().await.unwrap();
    assert_eq!(probe.status(), 404);

    let (text, after) = scrape(&app).await;
    let requests = |route: &str, method: &str, status: u16| {
        format!(r#"http_requests_total{{method="{method}",route="{route}",status="{status}"}}"#)
    };
    assert!(grew(&before, &after, &requests("/export", "POST", 200)) >= 1.0);
    assert!(grew(&before, &after, &requests("/export", "POST", 401)) >= 1.0);
    assert!(grew(&before, &after, &requests("unmatched", "GET", 404)) >= 1.0);
    assert!(!text.contains("wp-login"), "raw paths never become labels");
    for (outcome, reason) in [
        ("exported", "added"),
        ("skipped", "protected"),
        ("skipped", "unsupported_type"),
    ] {
        let series = format!(r#"indicators_total{{outcome="{outcome}",reason="{reason}"}}"#);
        assert!(grew(&before, &after, &series) >= 1.0, "{series}");
    }
    assert!(grew(&before, &after, r#"darktrace_calls_total{result="ok"}"#) >= 1.0);

    // Latencies are histograms with buckets, not summaries.
    for name in [
        "http_request_duration_seconds",
        "darktrace_call_duration_seconds",
    ] {
        assert!(
            text.contains(&format!("# TYPE {name} histogram")),
            "{name} is a histogram"
        );
        assert!(
            text.contains(&format!("{name}_bucket{{")),
            "{name} has buckets"
        );
    }
    assert!(
        grew(
            &before,
            &after,
            r#"http_request_duration_seconds_count{method="POST",route="/export"}"#
        ) >= 2.0
    );
    // The scrape itself is in flight while it is rendered.
    assert!(after[&canonical("http_requests_in_flight")] >= 1.0);
    let build = format!(
        r#"darktrace_export_build_info{{version="{}"}}"#,
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(after[&canonical(&build)], 1.0);
}

#[tokio::test]
async fn darktrace_calls_are_counted_as_retried_then_by_failure_class() {
    let app = spawn().await;
    let (_, before) = scrape(&app).await;
    // The test configuration allows 2 retries: 3 attempts, all refused with 503.
    app.sim.set_faults(Faults {
        fail_next: 3,
        ..Faults::default()
    });
    let (status, report) = app
        .export(&json!([{"value": "retried.example", "type": "FQDN"}]))
        .await;
    assert_eq!(status, 502, "{report:#}");
    assert_eq!(report["results"][0]["reason"], "darktrace_unavailable");

    let (_, after) = scrape(&app).await;
    assert!(
        grew(
            &before,
            &after,
            r#"darktrace_calls_total{result="retried"}"#
        ) >= 2.0
    );
    assert!(
        grew(
            &before,
            &after,
            r#"darktrace_calls_total{result="darktrace_unavailable"}"#
        ) >= 1.0
    );
}

/// The JSON lines a capture holds.
trait JsonLines {
    fn lines(&self) -> Vec<Value>;
}

impl JsonLines for Capture {
    fn lines(&self) -> Vec<Value> {
        self.text()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}")))
            .collect()
    }
}

/// The service's JSON log lines, from every test of this binary: the subscriber is the
/// process's global one (as in the service), so no test depends on thread-local dispatch.
fn logs() -> &'static Capture {
    static LOGS: OnceLock<Capture> = OnceLock::new();
    LOGS.get_or_init(|| {
        let capture = Capture::default();
        let writer = capture.clone();
        let subscriber = darktrace_export::telemetry::subscriber(
            LogFormat::Json,
            EnvFilter::new("info,darktrace_export=debug"),
            move || writer.clone(),
            false,
        );
        tracing::subscriber::set_global_default(subscriber).expect("no other subscriber");
        capture
    })
}

/// The lines written inside a request's span, by any test.
fn request_lines() -> Vec<Value> {
    logs()
        .lines()
        .into_iter()
        .filter(|l| l["span"].as_str().is_some_and(|s| s.starts_with("request")))
        .collect()
}

#[tokio::test]
async fn every_log_line_of_a_request_carries_the_callers_request_id() {
    logs();
    let app = spawn().await;
    app.sim.set_faults(Faults {
        fail_next: 1,
        ..Faults::default()
    });
    let response = app
        .http
        .post(app.url("/export"))
        .bearer_auth(API_TOKEN)
        .header("x-request-id", "tq-run-4711")
        .json(&json!([{"value": "logged.example", "type": "FQDN"}]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-request-id"], "tq-run-4711");

    let lines = request_lines();
    for line in &lines {
        let id = line["request_id"].as_str().unwrap_or_default();
        assert!(!id.is_empty(), "a line of a request without its id: {line}");
    }
    let ours: Vec<&Value> = lines
        .iter()
        .filter(|l| l["request_id"] == "tq-run-4711")
        .collect();
    let retry = ours
        .iter()
        .find(|l| l["message"] == "Darktrace call failed; retrying")
        .expect("the client's retry line carries the id");
    assert_eq!(retry["level"], "WARN");
    let summary = ours
        .iter()
        .find(|l| l["message"] == "batch finished")
        .expect("the summary line carries the id");
    assert_eq!(summary["action"], "export");
    assert_eq!(summary["route"], "/export");
    assert_eq!(summary["source"], "ThreatQ");
    assert_eq!(summary["received"], 1);
    assert_eq!(summary["exported"], 1);
    assert_eq!(summary["failed"], 0);
    assert_eq!(summary["darktrace_calls"], 2);
    assert_eq!(summary["darktrace_retries"], 1);
    assert!(summary["duration_ms"].is_u64());
}

#[tokio::test]
async fn a_request_without_an_id_gets_one_in_its_answer_and_its_log_lines() {
    logs();
    let app = spawn().await;
    let response = app
        .post_as(
            "/export",
            API_TOKEN,
            &json!([{"value": "fresh-id.example", "type": "FQDN"}]),
        )
        .await;
    assert_eq!(response.status(), 200);
    let id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
    assert!(
        request_lines()
            .iter()
            .any(|l| l["message"] == "batch finished" && l["request_id"] == id.as_str()),
        "the summary line carries the generated id"
    );
}

#[tokio::test]
async fn a_caller_id_too_long_or_not_visible_ascii_is_replaced_and_never_echoed() {
    logs();
    let app = spawn().await;
    let long = format!("long-{}", "x".repeat(200));
    for bad in [long.as_str(), "has space", "tab\there", "café"] {
        let value = reqwest::header::HeaderValue::from_bytes(bad.as_bytes()).unwrap();
        let response = app
            .http
            .get(app.url("/healthz"))
            .header("x-request-id", value)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let id = response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(uuid::Uuid::parse_str(&id).is_ok(), "{bad} gave {id}");
        let lines = logs().lines();
        assert!(
            lines.iter().all(|l| !l.to_string().contains(bad)),
            "the refused id reached a log line"
        );
        let said = lines
            .iter()
            .find(|l| {
                l["request_id"] == id.as_str()
                    && l["message"]
                        .as_str()
                        .unwrap_or("")
                        .starts_with("X-Request-Id refused")
            })
            .expect("the log says the id was replaced");
        assert_eq!(said["length"], bad.len());
    }
    // Exactly 128 visible characters are taken as they are.
    let longest = "y".repeat(128);
    let response = app
        .http
        .get(app.url("/healthz"))
        .header("x-request-id", &longest)
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], longest.as_str());
}

#[tokio::test]
async fn text_logs_written_to_a_pipe_carry_no_colour_codes() {
    // A warning at start: coloured on a terminal, plain everywhere else.
    let log = start_log(&[("ENABLE_SSL_VERIFICATION", "false")]).await;
    assert!(log.contains("WARN"), "{log}");
    assert!(
        !log.contains('\u{1b}'),
        "escape codes in a piped log: {log:?}"
    );
}
