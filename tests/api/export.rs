//! Black-box export tests: the real app against the strict simulator, both on loopback.

use crate::helpers::*;
use serde_json::json;

#[tokio::test]
async fn the_example_collection_exports_exactly_its_valid_normalised_values() {
    let app = spawn().await;
    let collection = example_collection();
    let received = collection["data"].as_array().unwrap().len();
    let (status, report) = app.export(&collection).await;
    assert_eq!(status, 200, "{report:#}");
    assert_accounts_for_every_item(&report, received);

    let exported: Vec<String> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["outcome"] == "exported")
        .map(|r| r["exported_value"].as_str().unwrap().to_owned())
        .collect();
    let mut expected = vec![
        "update-check.malvertising.example",
        "login-microsoftonline.phish.example",
        "cdn.evil-payloads.example",
        "198.51.100.23",
        "203.0.113.77",
        "192.0.2.14",
        "c2.darkstar.example",
        "xn--80ak6aa92e.example",
        "xn--bcher-phish-thb.example",
        "185.220.101.4",
        "45.155.205.99",
        "mail.tracker-pixel.example",
        "exfil.data-sink.example",
    ];
    assert_eq!(exported, expected);

    let mut held = app.sim.with_store(|s| s.names(Some("ThreatQ")));
    held.sort();
    expected.sort();
    assert_eq!(
        held, expected,
        "Darktrace holds exactly the exported values"
    );

    let by_value = |v: &str| {
        report["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["value"] == v)
            .unwrap()
            .clone()
    };
    assert_eq!(
        by_value("intranet.partner.example")["reason"],
        "excluded_status"
    );
    assert_eq!(by_value("10.20.30.40")["reason"], "protected");
    assert_eq!(by_value("evil[.]example")["reason"], "invalid_fqdn");
    assert_eq!(by_value("198.051.100.9")["reason"], "invalid_ipv4");
    assert_eq!(by_value("c2.darkstar.example.")["reason"], "duplicate");
    assert_eq!(
        by_value("44d88612fea8a8f36de82e1278abb02f")["reason"],
        "unsupported_type"
    );
    assert_eq!(by_value("only-type-id.example")["reason"], "unknown_type");
    assert_eq!(by_value("co.uk")["reason"], "protected");
    assert_eq!(report["results"][34]["reason"], "not_an_object");
    assert_eq!(report["results"][35]["reason"], "missing_value");
    assert_eq!(
        by_value("Login-Microsoftonline.Phish.Example.")["id"],
        106701
    );
    assert_eq!(by_value("cdn.evil-payloads.example")["reason"], "added");
}

#[tokio::test]
async fn every_call_is_signed_so_the_strict_simulator_accepts_it() {
    let app = spawn().await;
    let (status, _) = app.export(&example_collection()).await;
    assert_eq!(status, 200);
    let calls = app.sim.calls();
    assert!(!calls.is_empty());
    for call in calls {
        assert_eq!(call.status, 200, "{} {}", call.method, call.target);
    }
}

#[tokio::test]
async fn the_add_call_is_compact_ascii_json_with_addlist_source_and_expiry() {
    let app = spawn_adjusted(|config| {
        config.defaults.days_to_expiration = 30;
    })
    .await;
    let sent = chrono::Utc::now();
    let (status, report) = app
        .export(&json!([{"type": "FQDN", "value": "a.example"}, {"type": "IP Address", "value": "198.51.100.7"}]))
        .await;
    let answered = chrono::Utc::now();
    assert_eq!(status, 200);
    let calls = app.sim.calls();
    let body = std::str::from_utf8(&calls[0].body).unwrap();
    let expiry = report["expiry"].as_str().unwrap();
    assert_eq!(
        body,
        format!(r#"{{"addlist":"a.example,198.51.100.7","expiry":"{expiry}","source":"ThreatQ"}}"#)
    );
    let when = chrono::NaiveDateTime::parse_from_str(expiry, "%Y-%m-%dT%H:%M:%S").unwrap();
    // 30 days from the moment of the request, to the second (the expiry has no fraction).
    let days = chrono::Duration::days(30);
    let earliest = (sent - chrono::Duration::seconds(1)).naive_utc() + days;
    let latest = answered.naive_utc() + days;
    assert!(
        earliest <= when && when <= latest,
        "expiry {expiry} is 30 days after the request ({sent} to {answered})"
    );
    let held = app.sim.with_store(|s| s.details(Some("ThreatQ")));
    assert!(held.iter().all(|e| e.expiry == expiry));
}

#[tokio::test]
async fn zero_days_to_expiration_sends_no_expiry() {
    let app = spawn().await;
    let (status, report) = app
        .export(&json!([{"type": "FQDN", "value": "a.example"}]))
        .await;
    assert_eq!(status, 200);
    assert_eq!(report["expiry"], serde_json::Value::Null);
    let posts = app.posts();
    assert!(posts[0].get("expiry").is_none(), "{:?}", posts[0]);
}

#[tokio::test]
async fn a_second_export_reports_updated() {
    let app = spawn().await;
    let batch = json!([{"type": "FQDN", "value": "a.example"}, {"type": "IP Address", "value": "203.0.113.5"}]);
    let (_, first) = app.export(&batch).await;
    assert_eq!(
        outcomes(&first),
        vec![("exported".into(), "added".into()); 2]
    );
    let (status, second) = app.export(&batch).await;
    assert_eq!(status, 200);
    assert_eq!(
        outcomes(&second),
        vec![("exported".into(), "updated".into()); 2]
    );
}

#[tokio::test]
async fn a_wrong_private_token_fails_every_item_with_darktrace_auth_and_is_not_retried() {
    let app = spawn_adjusted(|config| {
        config.darktrace.private_token = secrecy::SecretString::from("wrong-private-token");
    })
    .await;
    let (status, report) = app
        .export(&json!([{"type": "FQDN", "value": "a.example"}, {"type": "FQDN", "value": "b.example"}]))
        .await;
    assert_eq!(status, 502);
    assert_eq!(
        outcomes(&report),
        vec![("failed".into(), "darktrace_auth".into()); 2]
    );
    assert_eq!(report["summary"]["failed"], 2);
    assert_eq!(app.sim.calls().len(), 1, "a signature error is tried once");
    assert!(app.sim.with_store(|s| s.names(None)).is_empty());
}

#[tokio::test]
async fn a_dry_run_sends_nothing_and_shows_what_would_be_sent() {
    let app = spawn().await;
    let (status, report) = app
        .post(
            "/export?dry_run=true",
            &json!({"data": [{"type": "FQDN", "value": "A.Example."}, {"type": "FQDN", "value": "bad..example"}]}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(report["dry_run"], true);
    assert_eq!(report["results"][0]["outcome"], "would_export");
    assert_eq!(report["results"][0]["exported_value"], "a.example");
    assert_eq!(report["results"][1]["outcome"], "invalid");
    assert!(app.sim.calls().is_empty(), "a dry run calls nothing");
}

/// An empty collection, in each form a workflow may post it (ThreatQ itself answers a page
/// without items with `"data": {}`), is an empty answer, not a refusal, and calls nothing.
#[tokio::test]
async fn an_empty_collection_in_every_form_is_an_empty_answer_and_calls_nothing() {
    let app = spawn().await;
    for body in [
        json!([]),
        json!({"data": []}),
        json!({"data": {}, "limit": 10, "nextCursorMark": "AoJ0", "total": 0}),
        json!({"indicators": []}),
    ] {
        let (status, report) = app.post("/export", &body).await;
        assert_eq!(status, 200, "{body}: {report:#}");
        assert_eq!(report["results"], json!([]), "{body}");
        assert_eq!(report["summary"]["received"], 0, "{body}");
    }
    // A single object where the list belongs is still the wrong shape, never read as empty.
    let (status, problem) = app
        .post(
            "/export",
            &json!({"data": {"type": "FQDN", "value": "a.example"}}),
        )
        .await;
    assert_eq!(status, 422, "{problem:#}");
    assert!(app.sim.calls().is_empty());
}

#[tokio::test]
async fn body_overrides_set_source_and_description() {
    let app = spawn().await;
    let (status, report) = app
        .export(&json!({"indicators": [{"type": "FQDN", "value": "a.example"}], "source": "Intel Team", "description": "from ThreatQ", "days_to_expiration": 7}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(report["source"], "Intel Team");
    let held = app.sim.with_store(|s| s.details(Some("Intel Team")));
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].description, "from ThreatQ");
    assert!(!held[0].expiry.is_empty());
}

#[tokio::test]
async fn batches_are_split_into_calls_of_darktrace_batch_size() {
    let app = spawn_adjusted(|config| {
        config.darktrace.batch_size = 2;
    })
    .await;
    let items: Vec<_> = (1..=5)
        .map(|i| json!({"type": "IP Address", "value": format!("198.51.100.{i}")}))
        .collect();
    let (status, report) = app.export(&json!(items)).await;
    assert_eq!(status, 200);
    assert_eq!(report["summary"]["exported"], 5);
    assert_eq!(app.posts().len(), 3);
}

#[tokio::test]
async fn fqdns_as_hostnames_go_in_calls_of_their_own() {
    let app = spawn_adjusted(|config| {
        config.screen.fqdn_as_hostname = true;
    })
    .await;
    let (status, _) = app
        .export(&json!([{"type": "FQDN", "value": "a.example"}, {"type": "IP Address", "value": "198.51.100.1"}]))
        .await;
    assert_eq!(status, 200);
    let posts = app.posts();
    assert_eq!(posts.len(), 2);
    let hostname_calls: Vec<_> = posts
        .iter()
        .filter(|p| p.get("hostname").is_some())
        .collect();
    assert_eq!(hostname_calls.len(), 1);
    assert_eq!(hostname_calls[0]["addlist"], "a.example");
    assert_eq!(hostname_calls[0]["hostname"], true);
}

#[tokio::test]
async fn an_answer_without_lists_is_confirmed_by_reading_the_source() {
    let app = spawn().await;
    app.sim.set_faults(darktrace_export::simulator::Faults {
        no_lists: true,
        ..Default::default()
    });
    let (status, report) = app
        .export(&json!([{"type": "FQDN", "value": "a.example"}]))
        .await;
    assert_eq!(status, 200);
    assert_eq!(outcomes(&report), vec![("exported".into(), "added".into())]);
    let calls = app.sim.calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[1].target, "/intelfeed?source=ThreatQ");
}

#[tokio::test]
async fn a_simulator_told_not_to_record_keeps_no_calls_but_still_serves() {
    let app = spawn().await;
    app.sim.record_calls(false);
    let (status, report) = app
        .export(&json!([{"type": "FQDN", "value": "a.example"}]))
        .await;
    assert_eq!(status, 200, "{report:#}");
    assert!(app.sim.calls().is_empty());
    assert_eq!(app.sim.with_store(|s| s.names(None)), vec!["a.example"]);
}

/// A large answer is streamed (chunked, no `Content-Length`) and a small one written whole;
/// both are the same report, every item in order, and the large one arrives in several
/// chunks of the body.
#[tokio::test]
async fn a_large_answer_is_streamed_and_a_small_one_written_whole_alike() {
    let app = spawn().await;
    for (items, streamed) in [(3, false), (2_500, true)] {
        let response = app.post_as("/export", API_TOKEN, &fqdns(items)).await;
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers().get("content-length").is_none(),
            streamed,
            "{items} items: {:?}",
            response.headers()
        );
        assert_eq!(response.headers()["content-type"], "application/json");
        let mut response = response;
        let mut body = Vec::new();
        let mut chunks = 0;
        while let Some(chunk) = response.chunk().await.unwrap() {
            body.extend_from_slice(&chunk);
            chunks += 1;
        }
        if streamed {
            assert!(chunks > 1, "{chunks} chunk");
        }
        let report: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_accounts_for_every_item(&report, items);
        assert_eq!(report["summary"]["exported"], items);
        let values: Vec<_> = report["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["value"].as_str().unwrap().to_owned())
            .collect();
        let sent: Vec<_> = (0..items).map(|i| format!("host-{i}.example")).collect();
        assert_eq!(values, sent);
    }
}

/// A `/sync` answer past 64 KiB goes out in chunks (never one growing buffer) and is the
/// whole report.
#[tokio::test]
async fn a_large_sync_answer_is_sent_in_chunks_and_whole() {
    let app = spawn().await;
    let response = app.post_as("/sync", API_TOKEN, &fqdns(1_500)).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("content-length").is_none());
    let body = response.bytes().await.unwrap();
    assert!(body.len() > 64 * 1024, "{} bytes", body.len());
    let report: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_accounts_for_every_item(&report, 1_500);
    assert_eq!(report["summary"]["exported"], 1_500);
}
