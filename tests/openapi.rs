//! `openapi.yaml` pinned to the code: the same routes as the router, examples that satisfy
//! their own schemas, the outcome vocabulary and problem types of the code, and real
//! answers of the service that satisfy the schemas a generated client would trust.

mod common;
mod spec;

use std::collections::BTreeSet;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use darktrace_export::app::app_state;
use darktrace_export::config::{Config, DarktraceConfig};
use darktrace_export::http::problem::Problem;
use darktrace_export::http::routes::{NOT_YET_SERVED, ROUTES};
use darktrace_export::http::{docs, router};
use darktrace_export::outcome::{Outcome, Reason};
use serde_json::{Value, json};
use tower::ServiceExt;

use common::*;
use spec::Spec;

fn table_operations() -> BTreeSet<(String, String)> {
    ROUTES
        .iter()
        .map(|r| (r.method.to_owned(), r.path.to_owned()))
        .chain(
            NOT_YET_SERVED
                .iter()
                .map(|(m, p)| ((*m).to_owned(), (*p).to_owned())),
        )
        .collect()
}

#[test]
fn the_spec_documents_exactly_the_routes_of_the_table() {
    assert_eq!(Spec::load().operations(), table_operations());
}

/// A router whose Darktrace is never called: the probes below stop before any handler
/// would reach it.
fn offline_router() -> axum::Router {
    let mut config = Config::new(DarktraceConfig::new(
        "http://127.0.0.1:9".parse().unwrap(),
        "p",
        "s",
    ));
    // With tokens, as in production: an unknown route must still be 404, not 401.
    config.api_tokens = vec![secrecy::SecretString::from("t")];
    router(app_state(config).unwrap())
}

async fn status_of(method: &str, path: &str) -> StatusCode {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", "Bearer t")
        .body(Body::empty())
        .unwrap();
    offline_router().oneshot(request).await.unwrap().status()
}

#[tokio::test]
async fn every_route_of_the_table_is_served_on_its_method_only() {
    for route in ROUTES {
        let status = status_of(route.method, route.path).await;
        assert!(
            status != StatusCode::NOT_FOUND && status != StatusCode::METHOD_NOT_ALLOWED,
            "{} {} answered {status}",
            route.method,
            route.path
        );
        let other = if route.method == "GET" { "POST" } else { "GET" };
        assert_eq!(
            status_of(other, route.path).await,
            StatusCode::METHOD_NOT_ALLOWED,
            "{other} {}",
            route.path
        );
    }
}

/// A documented operation this build lacks must really be missing; once its handler is
/// added, it must move to `ROUTES`, where the test above checks it.
#[tokio::test]
async fn operations_not_yet_served_answer_404() {
    for (method, path) in NOT_YET_SERVED {
        assert_eq!(
            status_of(method, path).await,
            StatusCode::NOT_FOUND,
            "{method} {path} is served: move it from NOT_YET_SERVED to ROUTES"
        );
    }
    assert_eq!(status_of("GET", "/admin").await, StatusCode::NOT_FOUND);
}

#[test]
fn every_example_satisfies_its_schema() {
    let spec = Spec::load();
    let examples = spec.examples();
    assert!(
        examples.len() >= 25,
        "found only {} examples",
        examples.len()
    );
    for (schema, example, at) in &examples {
        if let Err(error) = spec.validate(schema, example) {
            panic!("example at {at} does not satisfy {schema}: {error}");
        }
    }
}

#[test]
fn the_validator_rejects_what_the_schemas_forbid() {
    let spec = Spec::load();
    let report = "#/components/schemas/Report";
    let good = json!({
        "source": "ThreatQ", "expiry": null, "dry_run": false,
        "summary": {"received": 1, "exported": 1, "would_export": 0, "skipped": 0,
                    "invalid": 0, "failed": 0, "removed": 0},
        "results": [{"index": 0, "outcome": "exported", "reason": "added", "detail": "new"}]
    });
    spec.validate(report, &good).unwrap();
    let mut paired_wrongly = good.clone();
    paired_wrongly["results"][0]["reason"] = json!("protected");
    assert!(spec.validate(report, &paired_wrongly).is_err());
    let mut no_summary = good.clone();
    no_summary.as_object_mut().unwrap().remove("summary");
    assert!(spec.validate(report, &no_summary).is_err());
    let mut bad_expiry = good;
    bad_expiry["expiry"] = json!("tomorrow");
    assert!(spec.validate(report, &bad_expiry).is_err());
    assert!(
        spec.validate(
            "#/components/schemas/Batch",
            &json!({"data": [], "indicators": []})
        )
        .is_err()
    );
}

#[test]
fn outcomes_and_reasons_are_the_codes_own_and_paired_as_in_the_code() {
    let spec = Spec::load();
    let names = |pointer: &str| -> Vec<String> {
        spec.at(pointer)["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    };
    let outcomes: Vec<String> = Outcome::ALL.iter().map(|o| o.as_str().into()).collect();
    assert_eq!(names("#/components/schemas/Outcome"), outcomes);
    let reasons: Vec<String> = Reason::ALL.iter().map(|r| r.as_str().into()).collect();
    assert_eq!(names("#/components/schemas/Reason"), reasons);

    let item = "#/components/schemas/ItemResult";
    for reason in Reason::ALL {
        for outcome in Outcome::ALL {
            let result = json!({"index": 0, "outcome": outcome.as_str(),
                                "reason": reason.as_str(), "detail": ""});
            assert_eq!(
                spec.validate(item, &result).is_ok(),
                reason.outcome() == outcome,
                "{} with {}",
                outcome.as_str(),
                reason.as_str()
            );
        }
    }
}

#[test]
fn problem_types_are_the_codes_own() {
    let spec = Spec::load();
    let documented: BTreeSet<String> = spec.at("#/components/schemas/ProblemType")["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    let produced: BTreeSet<String> = [
        Problem::not_json(""),
        Problem::bad_parameter(""),
        Problem::unauthorized(""),
        Problem::too_large(""),
        Problem::unsupported_media_type(""),
        Problem::wrong_shape(""),
        Problem::conflict(""),
        Problem::overloaded(),
        Problem::shutting_down(),
        Problem::internal(),
    ]
    .into_iter()
    .map(|p| p.kind)
    .collect();
    assert_eq!(documented, produced);
}

#[tokio::test]
async fn the_served_spec_is_the_file_as_yaml() {
    let response = offline_router()
        .oneshot(
            Request::builder()
                .uri("/openapi.yaml")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/yaml");
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    assert_eq!(body, docs::OPENAPI_YAML.as_bytes());
}

/// Real answers, checked against the documented response of their status and media type.
#[tokio::test]
async fn real_answers_satisfy_the_documented_responses() {
    let spec = Spec::load();
    let app = spawn().await;
    let check = |method: &str, path: &str, response: (u16, String, Value)| {
        let (status, content_type, body) = response;
        if let Err(error) = spec.validate_response(method, path, status, &content_type, &body) {
            panic!("{method} {path} → {status} {content_type}: {error}\n{body:#}");
        }
    };

    let collection = example_collection();
    check(
        "POST",
        "/export",
        send(
            &app,
            "/export",
            Some(API_TOKEN),
            "application/json",
            &collection.to_string(),
        )
        .await,
    );
    let dry = json!({"indicators": collection["data"], "dry_run": true, "source": "Dry"});
    check(
        "POST",
        "/export",
        send(
            &app,
            "/export",
            Some(API_TOKEN),
            "application/json",
            &dry.to_string(),
        )
        .await,
    );
    check(
        "POST",
        "/export",
        send(&app, "/export", None, "application/json", "[]").await,
    );
    check(
        "POST",
        "/export",
        send(&app, "/export", Some(API_TOKEN), "text/plain", "[]").await,
    );
    check(
        "POST",
        "/export",
        send(&app, "/export", Some(API_TOKEN), "application/json", "[1,").await,
    );
    check(
        "POST",
        "/export",
        send(
            &app,
            "/export",
            Some(API_TOKEN),
            "application/json",
            r#"{"x": 1}"#,
        )
        .await,
    );
    check(
        "POST",
        "/export",
        send(
            &app,
            "/export?dryrun=true",
            Some(API_TOKEN),
            "application/json",
            "[]",
        )
        .await,
    );

    app.sim.set_faults(darktrace_export::simulator::Faults {
        fail_next: 100,
        ..Default::default()
    });
    let failing = json!([{"value": "down.example", "type": "FQDN"}]);
    let answer = send(
        &app,
        "/export",
        Some(API_TOKEN),
        "application/json",
        &failing.to_string(),
    )
    .await;
    assert_eq!(answer.0, 502);
    check("POST", "/export", answer);

    for path in ["/healthz", "/readyz"] {
        let response = app.http.get(app.url(path)).send().await.unwrap();
        let status = response.status().as_u16();
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        check(
            "GET",
            path,
            (status, content_type, response.json().await.unwrap()),
        );
    }
}

/// Sends a body and returns status, content type and JSON answer.
async fn send(
    app: &TestApp,
    path: &str,
    token: Option<&str>,
    content_type: &str,
    body: &str,
) -> (u16, String, Value) {
    let mut request = app
        .http
        .post(app.url(path))
        .header("content-type", content_type)
        .body(body.to_owned());
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    (status, content_type, response.json().await.unwrap())
}
