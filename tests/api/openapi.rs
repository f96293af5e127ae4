//! `openapi.yaml` pinned to the code: the same routes as the router, examples that satisfy
//! their own schemas, the outcome vocabulary and problem types of the code, and real
//! answers of the service that satisfy the schemas a generated client would trust.

use std::collections::BTreeSet;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{Request, StatusCode};
use darktrace_export::app::app_state;
use darktrace_export::config::{Config, DarktraceConfig};
use darktrace_export::http::problem::{Problem, ProblemKind};
use darktrace_export::http::routes::ROUTES;
use darktrace_export::http::{docs, router};
use darktrace_export::outcome::{Outcome, Reason};
use darktrace_export::simulator::Faults;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::helpers::*;
use crate::spec::Spec;

fn table_operations() -> BTreeSet<(String, String)> {
    ROUTES
        .iter()
        .map(|r| (r.method.to_owned(), r.path.to_owned()))
        .collect()
}

#[test]
fn the_spec_documents_exactly_the_routes_of_the_table() {
    assert_eq!(Spec::load().operations(), table_operations());
}

/// A router whose Darktrace is never called: the probes below stop before any handler
/// would reach it.
fn offline_router() -> axum::Router {
    offline_router_with(|_| {})
}

fn offline_router_with(adjust: impl FnOnce(&mut Config)) -> axum::Router {
    let mut config = Config::new(DarktraceConfig::new(
        "http://127.0.0.1:9".parse().unwrap(),
        "p",
        "s",
    ));
    // With tokens, as in production: an unknown route must still be 404, not 401.
    config.api_tokens = vec![secrecy::SecretString::from("t")];
    adjust(&mut config);
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

/// Nothing outside the table is served.
#[tokio::test]
async fn a_path_not_in_the_table_answers_404() {
    for (method, path) in [
        ("GET", "/admin"),
        ("POST", "/exports"),
        ("GET", "/export/x"),
    ] {
        assert_eq!(
            status_of(method, path).await,
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
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
fn the_validator_holds_each_endpoint_to_its_own_report_shape() {
    let spec = Spec::load();
    let schema = |name: &str| format!("#/components/schemas/{name}");
    let plan = json!({
        "source": "ThreatQ", "expiry": null, "dry_run": true,
        "summary": {"received": 1, "exported": 0, "would_export": 0, "skipped": 0,
                    "invalid": 0, "failed": 0, "removed": 0, "would_remove": 1},
        "results": [{"index": 0, "outcome": "would_remove", "reason": "dry_run_removal",
                     "detail": "held; would go"}]
    });
    spec.validate(&schema("RemoveReport"), &plan).unwrap();
    assert!(
        spec.validate(&schema("ExportReport"), &plan).is_err(),
        "/export never counts would_remove"
    );
    let mut zero = plan.clone();
    zero["summary"]["would_remove"] = json!(0);
    assert!(
        spec.validate(&schema("Report"), &zero).is_err(),
        "would_remove is left out when zero"
    );
    let mut dated = plan.clone();
    dated["expiry"] = json!("2026-12-27T17:52:02");
    assert!(
        spec.validate(&schema("RemoveReport"), &dated).is_err(),
        "/remove sets no expiry"
    );
    assert!(
        spec.validate(&schema("SyncReport"), &plan).is_err(),
        "/sync always has removals"
    );
    let stray = json!({"value": "stray.example", "outcome": "would_remove",
                       "reason": "dry_run_removal", "detail": "would go"});
    let mut synced = plan.clone();
    synced["removals"] = json!([stray]);
    spec.validate(&schema("SyncReport"), &synced).unwrap();
    assert!(
        spec.validate(&schema("RemoveReport"), &synced).is_err(),
        "only /sync lists removals"
    );
    let mut mispaired = synced.clone();
    mispaired["removals"][0]["reason"] = json!("dry_run");
    assert!(spec.validate(&schema("SyncReport"), &mispaired).is_err());
    let mut exported = synced.clone();
    exported["removals"][0]["outcome"] = json!("exported");
    exported["removals"][0]["reason"] = json!("added");
    assert!(
        spec.validate(&schema("SyncReport"), &exported).is_err(),
        "a removal is removed, failed or would_remove"
    );

    let refusal = json!({
        "type": "urn:darktrace-export:problem:sync-cap",
        "title": "Sync plan exceeds SYNC_MAX_REMOVALS", "status": 409, "detail": "too many",
        "source": "ThreatQ", "sync_max_removals": 0, "planned_removals": 1, "exportable": 1,
        "removals": [stray]
    });
    spec.validate(&schema("SyncRefusal"), &refusal).unwrap();
    for member in [
        "source",
        "sync_max_removals",
        "planned_removals",
        "exportable",
        "removals",
    ] {
        let mut without = refusal.clone();
        without.as_object_mut().unwrap().remove(member);
        assert!(
            spec.validate(&schema("SyncRefusal"), &without).is_err(),
            "{member} is required"
        );
    }
    let mut carried_out = refusal.clone();
    carried_out["removals"][0]["outcome"] = json!("removed");
    carried_out["removals"][0]["reason"] = json!("removed");
    assert!(
        spec.validate(&schema("SyncRefusal"), &carried_out).is_err(),
        "a refused plan removed nothing"
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

/// The fixed problem types of the spec, `ProblemType`'s enum.
fn documented_problem_types(spec: &Spec) -> BTreeSet<String> {
    spec.at("#/components/schemas/ProblemType/anyOf/0")["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn problem_types_are_the_codes_own() {
    let spec = Spec::load();
    let produced: BTreeSet<String> = ProblemKind::ALL.iter().map(|k| k.uri()).collect();
    assert_eq!(documented_problem_types(&spec), produced);

    // Framework rejections the service did not describe: `http-<4xx>`, by pattern.
    let problem = "#/components/schemas/Problem";
    for status in [StatusCode::BAD_REQUEST, StatusCode::IM_A_TEAPOT] {
        let answer = serde_json::to_value(Problem::from_status(status, "refused")).unwrap();
        spec.validate(problem, &answer).unwrap();
    }
    let answer = serde_json::to_value(Problem::internal_with_status(StatusCode::BAD_GATEWAY));
    spec.validate(problem, &answer.unwrap()).unwrap();
    for undocumented in ["http-200", "http-500", "http-4000", "no-such-kind"] {
        let mut answer = serde_json::to_value(Problem::internal()).unwrap();
        answer["type"] = json!(format!("urn:darktrace-export:problem:{undocumented}"));
        assert!(
            spec.validate(problem, &answer).is_err(),
            "{undocumented} passes"
        );
    }
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
    let app = spawn_adjusted(|config| {
        config.limits.sync_max_removals = 2;
    })
    .await;
    let check = |method: &str, path: &str, response: (u16, String, Value)| {
        let (status, content_type, body) = response;
        if let Err(error) = spec.validate_response(method, path, status, &content_type, &body) {
            panic!("{method} {path} → {status} {content_type}: {error}\n{body:#}");
        }
    };

    let collection = example_collection();
    check("POST", "/export", post(&app, "/export", &collection).await);
    let dry = json!({"indicators": collection["data"], "dry_run": true, "source": "Dry"});
    check("POST", "/export", post(&app, "/export", &dry).await);
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

    // /remove: a dry run (one held entry would go), then the removal itself. Under a source
    // of their own: the exports above filled the default one.
    seed(
        &app,
        "Plans",
        &["held.example", "revoked.example", "stray.example"],
        None,
    );
    let removal = json!([
        fqdn("Held.Example."),
        fqdn("absent.example"),
        {"type": "MD5", "value": "d41d8cd98f00b204e9800998ecf8427e"},
    ]);
    let answer = post(&app, "/remove?source=Plans&dry_run=true", &removal).await;
    assert_eq!(answer.0, 200, "{:#}", answer.2);
    assert_eq!(answer.2["summary"]["would_remove"], 1, "{:#}", answer.2);
    check("POST", "/remove", answer);
    let answer = post(&app, "/remove?source=Plans", &removal).await;
    assert_eq!(answer.0, 200, "{:#}", answer.2);
    assert_eq!(answer.2["summary"]["removed"], 2, "{:#}", answer.2);
    check("POST", "/remove", answer);

    // /sync: the plan removes an item's entry (whitelisted) and two the collection does
    // not name; a dry run shows it, the cap of 2 refuses it, force carries it out.
    seed(&app, "Plans", &["extra.example"], None);
    let collection = json!([fqdn("new.example"), whitelisted("revoked.example")]);
    let answer = post(&app, "/sync?source=Plans&dry_run=true", &collection).await;
    assert_eq!(answer.0, 200, "{:#}", answer.2);
    // The whitelisted item's entry and the two strays under `removals`.
    assert_eq!(answer.2["summary"]["would_remove"], 3, "{:#}", answer.2);
    assert_eq!(answer.2["summary"]["removals"], 2, "{:#}", answer.2);
    assert_eq!(answer.2["removals"].as_array().unwrap().len(), 2);
    check("POST", "/sync", answer);
    let answer = post(&app, "/sync?source=Plans", &collection).await;
    assert_eq!(answer.0, 409, "{:#}", answer.2);
    assert_eq!(answer.2["planned_removals"], 3, "{:#}", answer.2);
    check("POST", "/sync", answer);
    let answer = post(&app, "/sync?source=Plans&force=true", &collection).await;
    assert_eq!(answer.0, 200, "{:#}", answer.2);
    assert_eq!(answer.2["removals"].as_array().unwrap().len(), 2);
    check("POST", "/sync", answer);
    let answer = post(&app, "/sync?source=Plans", &collection).await;
    assert_eq!(answer.0, 200, "{:#}", answer.2);
    assert_eq!(answer.2["removals"], json!([]), "nothing left to remove");
    check("POST", "/sync", answer);

    app.sim.set_faults(Faults {
        fail_next: 100,
        ..Default::default()
    });
    let failing = json!([{"value": "down.example", "type": "FQDN"}]);
    for path in ["/export", "/remove", "/sync"] {
        let answer = post(&app, path, &failing).await;
        assert_eq!(answer.0, 502, "{path}: {:#}", answer.2);
        check("POST", path, answer);
    }

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

/// Refusals no operation can list (unknown path, wrong method) match the responses the
/// spec describes for them in `components/responses`.
#[tokio::test]
async fn unknown_routes_and_wrong_methods_answer_as_documented() {
    let spec = Spec::load();
    for (method, path, documented, status) in [
        ("GET", "/admin", "NotFound", 404),
        ("POST", "/export/extra", "NotFound", 404),
        ("GET", "/export", "MethodNotAllowed", 405),
        ("POST", "/healthz", "MethodNotAllowed", 405),
    ] {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", "Bearer t")
            .body(Body::empty())
            .unwrap();
        let response = offline_router().oneshot(request).await.unwrap();
        assert_eq!(response.status().as_u16(), status, "{method} {path}");
        let response_at = format!("#/components/responses/{documented}");
        for header in spec.at(&response_at)["headers"].as_object().unwrap().keys() {
            assert!(
                response.headers().contains_key(header.as_str()),
                "{method} {path} lacks {header}"
            );
        }
        check_documented(&spec, &response_at, response).await;
    }
}

/// A body that does not arrive before the request's deadline is the documented 408 on
/// every batch route.
#[tokio::test]
async fn a_body_too_slow_is_the_documented_408_on_every_batch_route() {
    let spec = Spec::load();
    let app = offline_router_with(|config| {
        config.limits.request_timeout = Duration::from_millis(200);
    });
    for path in ["/export", "/remove", "/sync"] {
        let never_ends = futures_util::stream::pending::<Result<Bytes, std::io::Error>>();
        let request = Request::post(path)
            .header("authorization", "Bearer t")
            .header("content-type", "application/json")
            .body(Body::from_stream(never_ends))
            .unwrap();
        let response = tokio::time::timeout(Duration::from_secs(10), app.clone().oneshot(request))
            .await
            .expect("answered before the test's own timeout")
            .unwrap();
        assert_eq!(response.status(), StatusCode::REQUEST_TIMEOUT, "{path}");
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        let body: Value = serde_json::from_slice(
            &axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .unwrap(),
        )
        .unwrap();
        assert_eq!(body["type"], "urn:darktrace-export:problem:body-timeout");
        if let Err(error) = spec.validate_response("POST", path, 408, &content_type, &body) {
            panic!("POST {path} → 408: {error}\n{body:#}");
        }
    }
}

/// Checks an answer against a response of `components/responses`: its schema, and the
/// `type` and `status` of its example.
async fn check_documented(spec: &Spec, response_at: &str, response: axum::response::Response) {
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(content_type, "application/problem+json", "{response_at}");
    let body: Value = serde_json::from_slice(
        &axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap(),
    )
    .unwrap();
    let media = format!("{response_at}/content/application~1problem+json");
    if let Err(error) = spec.validate(&format!("{media}/schema"), &body) {
        panic!("{response_at}: {error}\n{body:#}");
    }
    let example = &spec.at(&media)["example"];
    assert_eq!(body["type"], example["type"], "{response_at}: {body:#}");
    assert_eq!(body["status"], example["status"], "{response_at}: {body:#}");
}

/// Posts a JSON body with the token; status, content type and answer.
async fn post(app: &TestApp, path: &str, body: &Value) -> (u16, String, Value) {
    send(
        app,
        path,
        Some(API_TOKEN),
        "application/json",
        &body.to_string(),
    )
    .await
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
