//! Who may call the batch endpoints.

use crate::helpers::*;

#[tokio::test]
async fn export_without_a_bearer_token_is_401_problem_json() {
    let app = spawn().await;
    let response = app
        .http
        .post(app.url("/export"))
        .header("content-type", "application/json")
        .body("[]")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let problem: serde_json::Value = response.json().await.unwrap();
    assert_eq!(problem["status"], 401);
    assert!(app.sim.calls().is_empty());
}

#[tokio::test]
async fn a_wrong_bearer_token_is_401() {
    let app = spawn().await;
    let response = app
        .post_as("/export", "not-the-token", &serde_json::json!([]))
        .await;
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn health_endpoints_need_no_token_and_never_call_darktrace() {
    let app = spawn().await;
    for (path, body) in [
        ("/healthz", r#"{"status":"ok"}"#),
        ("/readyz", r#"{"status":"ready"}"#),
    ] {
        let response = app.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.text().await.unwrap(), body);
    }
    assert!(app.sim.calls().is_empty());
}
