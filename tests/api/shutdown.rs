//! Graceful shutdown: on SIGTERM or SIGINT readiness turns 503, no new work is taken, work in
//! progress gets SHUTDOWN_GRACE_SECS to finish, and the process exits 0.

use std::time::Duration;

use crate::helpers::process::Service;
use crate::helpers::*;
use axum::body::Body;
use axum::http::Request;
use tower::ServiceExt;

/// Whether a new connection to `addr` is still served as ready.
async fn ready_on_a_new_connection(addr: std::net::SocketAddr) -> bool {
    let http = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    match http.get(format!("http://{addr}/readyz")).send().await {
        Ok(response) => response.status() == 200,
        Err(_) => false,
    }
}

async fn signal_during_a_slow_export(signal: &str) {
    // The export's call waits at the gate, so it is surely in progress when the signal
    // comes, and stays so until the test has seen new connections refused.
    let sim = simulator().await;
    let gate = Gate::start(sim.addr()).await;
    let url = gate.url();
    let mut service = Service::against(&url, &[("SHUTDOWN_GRACE_SECS", "30")]);
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let export = tokio::spawn(
        http.post(service.url("/export"))
            .bearer_auth(API_TOKEN)
            .json(&fqdns(3))
            .send(),
    );
    gate.until_held(1).await;
    assert!(ready_on_a_new_connection(service.addr).await);

    service.signal(signal);
    let mut refused = false;
    for _ in 0..200 {
        if !ready_on_a_new_connection(service.addr).await {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(refused, "still taking new connections after {signal}");
    gate.open();

    let response = export
        .await
        .unwrap()
        .expect("the export in progress is answered");
    assert_eq!(response.status(), 200);
    let report: serde_json::Value = response.json().await.unwrap();
    assert_accounts_for_every_item(&report, 3);
    assert_eq!(report["summary"]["exported"], 3);
    assert_eq!(sim.with_store(|s| s.names(Some("ThreatQ")).len()), 3);

    let status = service.wait();
    assert_eq!(status.code(), Some(0), "{}", service.log());
    assert!(service.log().contains("shutting down"), "{}", service.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_an_export_in_progress_finish_then_exits_0() {
    signal_during_a_slow_export("TERM").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_lets_an_export_in_progress_finish_then_exits_0() {
    signal_during_a_slow_export("INT").await;
}

#[tokio::test]
async fn once_shutdown_begins_readiness_is_503_and_new_batches_are_refused() {
    let sim = simulator().await;
    let (config, gate) = config_behind_gate(&sim).await;
    let controlled = spawn_controlled(sim, config).await;
    let app = std::sync::Arc::new(controlled.app);
    let exporting = {
        let app = app.clone();
        tokio::spawn(async move { app.export(&fqdns(2)).await })
    };
    gate.until_held(1).await;

    controlled.stop.send(()).unwrap();
    eventually("readiness off", || !controlled.state.readiness.is_ready()).await;

    // The same state behind a router: what a connection still open would be told.
    let router = darktrace_export::http::router(controlled.state.clone());
    let readyz = router
        .clone()
        .oneshot(Request::get("/readyz").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(readyz.status(), 503);
    let healthz = router
        .clone()
        .oneshot(Request::get("/healthz").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(healthz.status(), 200, "the process is still alive");
    let export = router
        .oneshot(
            Request::post("/export")
                .header("authorization", format!("Bearer {API_TOKEN}"))
                .header("content-type", "application/json")
                .body(Body::from("[]"))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(export.status(), 503);
    assert_eq!(export.headers()["retry-after"], "5");
    assert_eq!(export.headers()["content-type"], "application/problem+json");

    gate.open();
    let (status, report) = exporting.await.unwrap();
    assert_eq!(status, 200);
    assert_accounts_for_every_item(&report, 2);
    assert_eq!(report["summary"]["exported"], 2);
    controlled.served.await.unwrap().unwrap();
    assert!(
        tokio::net::TcpStream::connect(app.addr).await.is_err(),
        "the listener is closed"
    );
}

#[tokio::test]
async fn a_request_still_waiting_when_the_grace_runs_out_is_answered_with_deadline() {
    // Darktrace never answers: the gate in front of it is never opened.
    let sim = simulator().await;
    let (mut config, gate) = config_behind_gate(&sim).await;
    config.limits.shutdown_grace = Duration::from_millis(300);
    let controlled = spawn_controlled(sim, config).await;
    let app = std::sync::Arc::new(controlled.app);
    let exporting = {
        let app = app.clone();
        tokio::spawn(async move {
            app.http
                .post(app.url("/export"))
                .bearer_auth(API_TOKEN)
                .json(&fqdns(3))
                .send()
                .await
        })
    };
    gate.until_held(1).await;
    controlled.stop.send(()).unwrap();
    let served = tokio::time::timeout(Duration::from_secs(60), controlled.served)
        .await
        .expect("the service stops although Darktrace never answers");
    served.unwrap().unwrap();
    let response = exporting
        .await
        .unwrap()
        .expect("the request in progress is answered, not cut off");
    assert_eq!(response.status(), 502);
    let report: serde_json::Value = response.json().await.unwrap();
    assert_accounts_for_every_item(&report, 3);
    assert_eq!(report["summary"]["failed"], 3);
    for result in report["results"].as_array().unwrap() {
        assert_eq!(result["reason"], "deadline", "{result}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_answers_a_hung_export_and_exits_0_when_the_grace_runs_out() {
    // Darktrace never answers: the gate in front of it is never opened.
    let sim = simulator().await;
    let gate = Gate::start(sim.addr()).await;
    let mut service = Service::against(&gate.url(), &[("SHUTDOWN_GRACE_SECS", "1")]);
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let export = tokio::spawn(
        http.post(service.url("/export"))
            .bearer_auth(API_TOKEN)
            .json(&fqdns(1))
            .send(),
    );
    gate.until_held(1).await;
    service.signal("TERM");
    assert_eq!(service.wait().code(), Some(0), "{}", service.log());
    let response = export
        .await
        .unwrap()
        .expect("the hung export is answered before the process exits");
    assert_eq!(response.status(), 502);
    let report: serde_json::Value = response.json().await.unwrap();
    assert_eq!(report["results"][0]["reason"], "deadline");
}
