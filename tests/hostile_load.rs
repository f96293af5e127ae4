//! Hostile load: what one client can make the service hold, and what stays available to
//! others while it tries. Bounded in count and time, loopback only; nothing here asserts how
//! fast anything happens, only that it happens (or is refused).

mod common;

use std::time::Duration;

use common::*;
use darktrace_export::simulator::Faults;
use serde_json::json;

/// Two syncs of one source at once, collections A and B: one runs, the other is refused
/// with 409 `sync-in-progress` and changes nothing, so Darktrace ends with exactly one
/// collection. The first sync is held inside Darktrace (its first call hangs until its
/// attempt times out and is retried) while the second is sent, so they surely overlap.
#[tokio::test]
async fn a_second_sync_of_a_source_in_progress_is_409_and_one_collection_remains() {
    let sim = simulator().await;
    sim.set_faults(Faults {
        hang_next: 1,
        ..Faults::default()
    });
    let mut config = config_for(&sim);
    config.darktrace.timeout = Duration::from_secs(1);
    quick_retries(&mut config);
    let app = std::sync::Arc::new(spawn_with(sim, config).await);
    let collection = |names: &[&str]| {
        json!(
            names
                .iter()
                .map(|n| json!({"type": "FQDN", "value": n}))
                .collect::<Vec<_>>()
        )
    };
    let a = collection(&["a1.example", "a2.example", "a3.example"]);
    let b = collection(&["b1.example", "b2.example", "b3.example"]);

    let first = {
        let app = app.clone();
        tokio::spawn(async move { app.post("/sync", &a).await })
    };
    eventually("the first sync is inside Darktrace", || {
        !app.sim.calls().is_empty()
    })
    .await;
    let second = app
        .http
        .post(app.url("/sync"))
        .bearer_auth(API_TOKEN)
        .json(&b)
        .send()
        .await
        .unwrap();
    assert_eq!(second.headers()["retry-after"], "5");
    let problem = expect_problem(second, 409).await;
    assert_eq!(
        problem["type"],
        "urn:darktrace-export:problem:sync-in-progress"
    );
    assert!(
        problem["detail"].as_str().unwrap().contains("ThreatQ"),
        "{problem}"
    );

    let (status, report) = first.await.unwrap();
    assert_eq!(status, 200, "{report:#}");
    assert_accounts_for_every_item(&report, 3);
    let mut names = app.sim.with_store(|s| s.names(Some("ThreatQ")));
    names.sort();
    assert_eq!(names, ["a1.example", "a2.example", "a3.example"]);

    // The lock is released with the answer: the next sync of the source runs.
    let (status, report) = app.post("/sync", &b).await;
    assert_eq!(status, 200, "{report:#}");
    let mut names = app.sim.with_store(|s| s.names(Some("ThreatQ")));
    names.sort();
    assert_eq!(names, ["b1.example", "b2.example", "b3.example"]);
}

/// A type or id longer than 256 characters comes back cut, with its full length, in
/// `type`/`id` and in `detail` alike: the answer does not grow with the item's text.
#[tokio::test]
async fn long_echoed_fields_are_cut_with_a_marker() {
    let app = spawn().await;
    let long_type = "T".repeat(10_000);
    let long_id = "i".repeat(5_000);
    let (status, report) = app
        .export(&json!([{"type": long_type, "id": long_id, "value": "x.example"}]))
        .await;
    assert_eq!(status, 200, "{report:#}");
    let result = &report["results"][0];
    assert_eq!(result["reason"], "unsupported_type");
    let echoed_type = result["type"].as_str().unwrap();
    assert_eq!(
        echoed_type,
        format!("{}…(cut, 10000 characters)", "T".repeat(256))
    );
    assert_eq!(
        result["id"],
        format!("{}…(cut, 5000 characters)", "i".repeat(256))
    );
    let detail = result["detail"].as_str().unwrap();
    assert!(detail.contains("(cut, 10000 characters)"), "{detail}");
    let answer = serde_json::to_string(&report).unwrap();
    assert!(answer.len() < 2_000, "{} bytes", answer.len());
}

/// `"status":"Whitelisted","status":"Active"` is not exported as Active: a screened key
/// given twice makes the item `invalid`/`duplicate_key`, naming the key; nothing is sent.
#[tokio::test]
async fn a_key_given_twice_in_one_item_is_invalid_never_last_wins() {
    let app = spawn().await;
    let body = br#"[{"type": "FQDN", "value": "twice.example", "status": "Whitelisted", "status": "Active"},
                    {"type": "FQDN", "value": "once.example", "status": "Active"}]"#;
    let response = app
        .http
        .post(app.url("/export"))
        .bearer_auth(API_TOKEN)
        .header("content-type", "application/json")
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let report: serde_json::Value = response.json().await.unwrap();
    assert_accounts_for_every_item(&report, 2);
    let first = &report["results"][0];
    assert_eq!(first["outcome"], "invalid", "{first}");
    assert_eq!(first["reason"], "duplicate_key");
    assert!(
        first["detail"].as_str().unwrap().contains("status"),
        "{first}"
    );
    assert_eq!(report["results"][1]["outcome"], "exported");
    assert_eq!(
        app.sim.with_store(|s| s.names(Some("ThreatQ"))),
        ["once.example"]
    );
}
