//! Settings that shape each add call (Autonomous Response, score, strength, statuses,
//! ThreatQ's own expiry), read from the exact bodies the simulator received.

use serde_json::{Value, json};

use crate::helpers::*;

fn two_fqdns() -> Value {
    json!([
        {"type": "FQDN", "value": "a.example", "status": "Active"},
        {"type": "FQDN", "value": "b.example", "status": "Active"},
    ])
}

/// Add bodies in one order whatever order they arrived in.
fn sorted(mut bodies: Vec<Value>) -> Vec<Value> {
    bodies.sort_by_key(|b| b.to_string());
    bodies
}

#[tokio::test]
async fn autonomous_response_is_left_out_of_add_calls_by_default() {
    let app = spawn().await;
    let (status, _) = app.export(&two_fqdns()).await;
    assert_eq!(status, 200);
    assert_eq!(
        app.posts(),
        vec![json!({"addlist": "a.example,b.example", "source": "ThreatQ"})]
    );
}

#[tokio::test]
async fn autonomous_response_sends_iagn_true_on_every_add_call() {
    let app = spawn_adjusted(|config| {
        config.defaults.autonomous_response = true;
        config.darktrace.batch_size = 1;
    })
    .await;
    let (status, _) = app.export(&two_fqdns()).await;
    assert_eq!(status, 200);
    assert_eq!(
        sorted(app.posts()),
        vec![
            json!({"addlist": "a.example", "iagn": true, "source": "ThreatQ"}),
            json!({"addlist": "b.example", "iagn": true, "source": "ThreatQ"}),
        ]
    );
}

#[tokio::test]
async fn autonomous_response_override_in_the_body_and_the_query() {
    let app = spawn().await;
    let body = json!({"indicators": two_fqdns(), "autonomous_response": true});
    let (status, _) = app.post("/export", &body).await;
    assert_eq!(status, 200);
    let (status, _) = app.post("/export?autonomous_response=false", &body).await;
    assert_eq!(status, 200);
    let (status, _) = app
        .post("/sync?autonomous_response=true", &two_fqdns())
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        app.posts(),
        vec![
            json!({"addlist": "a.example,b.example", "iagn": true, "source": "ThreatQ"}),
            json!({"addlist": "a.example,b.example", "source": "ThreatQ"}),
            json!({"addlist": "a.example,b.example", "iagn": true, "source": "ThreatQ"}),
        ]
    );
    let (status, problem) = app
        .post("/export?autonomous_response=maybe", &two_fqdns())
        .await;
    assert_eq!(status, 400, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("autonomous_response"),
        "{problem}"
    );
    assert_eq!(app.posts().len(), 3, "a refused override sends nothing");
}

#[tokio::test]
async fn autonomous_response_is_warned_at_start() {
    let log = start_log(&[("AUTONOMOUS_RESPONSE", "true")]).await;
    assert!(
        log.lines()
            .any(|l| l.contains("WARN") && l.contains("AUTONOMOUS_RESPONSE")),
        "{log}"
    );
    let quiet = start_log(&[]).await;
    assert!(!quiet.contains("AUTONOMOUS_RESPONSE"), "{quiet}");
}

#[tokio::test]
async fn min_score_keeps_back_lower_and_unscored_items() {
    let app = spawn_adjusted(|config| config.screen.min_score = Some(7)).await;
    let items = json!([
        {"type": "FQDN", "value": "seven.example", "score": 7},
        {"type": "FQDN", "value": "quoted.example", "score": "8"},
        {"type": "FQDN", "value": "manual.example", "score": {"generated_score": 2, "manual_score": 9}},
        {"type": "FQDN", "value": "generated.example", "score": {"generated_score": "7.5", "manual_score": null}},
        {"type": "FQDN", "value": "six.example", "score": 6.9},
        {"type": "FQDN", "value": "overruled.example", "score": {"generated_score": 9, "manual_score": 3}},
        {"type": "FQDN", "value": "unscored.example"},
        {"type": "FQDN", "value": "words.example", "score": "high"},
        {"type": "FQDN", "value": "not..valid", "score": 1},
        {"type": "FQDN", "value": "white.example", "status": "Whitelisted", "score": 1},
    ]);
    let (status, report) = app.export(&items).await;
    assert_eq!(status, 200, "{report}");
    let reasons: Vec<String> = outcomes(&report).into_iter().map(|(_, r)| r).collect();
    assert_eq!(
        reasons,
        [
            "added",
            "added",
            "added",
            "added",
            "low_score",
            "low_score",
            "low_score",
            "low_score",
            "low_score",
            "excluded_status",
        ]
    );
    assert_eq!(report["results"][4]["outcome"], "skipped");
    assert_eq!(
        report["results"][4]["detail"],
        "score 6.9 is below 7 (MIN_SCORE)"
    );
    assert_eq!(
        app.posts(),
        vec![json!({
            "addlist": "seven.example,quoted.example,manual.example,generated.example",
            "source": "ThreatQ"
        })]
    );
}

#[tokio::test]
async fn without_min_score_the_score_does_not_matter() {
    let app = spawn().await;
    let (status, report) = app
        .export(&json!([{"type": "FQDN", "value": "low.example", "score": 0}, {"type": "FQDN", "value": "none.example"}]))
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        app.posts(),
        vec![json!({"addlist": "low.example,none.example", "source": "ThreatQ"})]
    );
}

/// The real binary started with the test tokens and `extra`: its exit code and stderr.
fn start_with(extra: &[(&str, &str)]) -> (Option<i32>, String) {
    let output = crate::helpers::process::command()
        .env("DARKTRACE_HOST", "dt.example")
        .env("DARKTRACE_PUBLIC_TOKEN", PUBLIC)
        .env("DARKTRACE_PRIVATE_TOKEN", PRIVATE)
        .env("API_TOKENS", API_TOKEN)
        .envs(extra.iter().copied())
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[test]
fn min_score_out_of_range_stops_the_start() {
    for bad in ["11", "-1", "seven"] {
        let (code, stderr) = start_with(&[("MIN_SCORE", bad)]);
        assert_eq!(code, Some(2), "{stderr}");
        assert!(stderr.starts_with("MIN_SCORE"), "{stderr}");
    }
}

#[tokio::test]
async fn a_fixed_strength_goes_on_every_add_call() {
    let app = spawn_adjusted(|config| {
        config.defaults.strength = Some(darktrace_export::pipeline::Strength::Fixed(40));
    })
    .await;
    let (status, _) = app.export(&two_fqdns()).await;
    assert_eq!(status, 200);
    assert_eq!(
        app.posts(),
        vec![json!({"addlist": "a.example,b.example", "source": "ThreatQ", "strength": 40})]
    );
}

#[tokio::test]
async fn strength_from_the_score_groups_calls_by_strength_and_hostname() {
    let app = spawn_adjusted(|config| {
        config.defaults.strength = Some(darktrace_export::pipeline::Strength::Score);
        config.screen.fqdn_as_hostname = true;
        config.darktrace.batch_size = 2;
    })
    .await;
    let items = json!([
        {"type": "FQDN", "value": "a.example", "score": 7},
        {"type": "IP Address", "value": "198.51.100.1", "score": "7"},
        {"type": "IP Address", "value": "198.51.100.2", "score": {"generated_score": 7, "manual_score": 9}},
        {"type": "IP Address", "value": "198.51.100.3"},
        {"type": "IP Address", "value": "198.51.100.4", "score": 7.0},
        {"type": "IP Address", "value": "198.51.100.5", "score": 7},
        {"type": "FQDN", "value": "b.example", "score": 9},
    ]);
    let (status, report) = app.export(&items).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["summary"]["exported"], 7, "{report}");
    // Calls go in parallel, so they may arrive in any order.
    assert_eq!(
        sorted(app.posts()),
        sorted(vec![
            json!({"addlist": "198.51.100.3", "source": "ThreatQ"}),
            json!({"addlist": "198.51.100.1,198.51.100.4", "source": "ThreatQ", "strength": 70}),
            json!({"addlist": "198.51.100.5", "source": "ThreatQ", "strength": 70}),
            json!({"addlist": "198.51.100.2", "source": "ThreatQ", "strength": 90}),
            json!({"addlist": "a.example", "hostname": true, "source": "ThreatQ", "strength": 70}),
            json!({"addlist": "b.example", "hostname": true, "source": "ThreatQ", "strength": 90}),
        ])
    );
}

#[test]
fn a_bad_strength_stops_the_start() {
    for bad in ["101", "-1", "strong"] {
        let (code, stderr) = start_with(&[("STRENGTH", bad)]);
        assert_eq!(code, Some(2), "{stderr}");
        assert!(stderr.starts_with("STRENGTH"), "{stderr}");
    }
    let (code, stderr) = start_with(&[("STRENGTH", "Score"), ("LISTEN_ADDR", "256.0.0.1:1")]);
    assert!(!stderr.starts_with("STRENGTH"), "{code:?} {stderr}");
}

#[tokio::test]
async fn export_statuses_is_an_allow_list_beside_excluded_statuses() {
    let app = spawn_adjusted(|config| {
        config.screen.export_statuses = Some(vec!["active".into(), "whitelisted".into()]);
    })
    .await;
    let items = json!([
        {"type": "FQDN", "value": "active.example", "status": "Active"},
        {"type": "FQDN", "value": "shout.example", "status": {"name": " ACTIVE "}},
        {"type": "FQDN", "value": "review.example", "status": "Review"},
        {"type": "FQDN", "value": "bare.example"},
        {"type": "FQDN", "value": "white.example", "status": "Whitelisted"},
        {"type": "FQDN", "value": "Review.Example.", "status": "Active"},
    ]);
    let (status, report) = app.export(&items).await;
    assert_eq!(status, 200, "{report}");
    let reasons: Vec<String> = outcomes(&report).into_iter().map(|(_, r)| r).collect();
    assert_eq!(
        reasons,
        [
            "added",
            "added",
            "excluded_status",
            "excluded_status",
            "excluded_status",
            "added"
        ]
    );
    assert_eq!(
        report["results"][2]["detail"],
        "status Review is not one of EXPORT_STATUSES"
    );
    assert_eq!(
        report["results"][4]["detail"],
        "status Whitelisted is never exported (EXCLUDED_STATUSES)"
    );
    // A status outside the allow-list keeps back only its own item.
    assert_eq!(
        app.posts(),
        vec![json!({
            "addlist": "active.example,shout.example,review.example",
            "source": "ThreatQ"
        })]
    );
}

#[tokio::test]
async fn expiry_from_threatq_sets_each_items_expiry_and_the_earlier_wins() {
    let app = spawn_adjusted(|config| {
        config.screen.expiry_from_threatq = true;
        config.defaults.days_to_expiration = 3650;
    })
    .await;
    let items = json!([
        {"type": "FQDN", "value": "own.example", "expires_at": "2030-01-02 03:04:05"},
        {"type": "FQDN", "value": "calc.example", "expires_at": null, "expires_calculated_at": "2030-01-02 03:04:05"},
        {"type": "FQDN", "value": "both.example", "expires_at": "2031-05-06 07:08:09", "expires_calculated_at": "2030-01-02 03:04:05"},
        {"type": "FQDN", "value": "late.example", "expires_at": "2999-01-01 00:00:00"},
        {"type": "FQDN", "value": "none.example"},
        {"type": "FQDN", "value": "odd.example", "expires_at": "soon"},
        {"type": "FQDN", "value": "gone.example", "expires_at": "2001-02-03 04:05:06"},
    ]);
    let (status, report) = app.export(&items).await;
    assert_eq!(status, 200, "{report}");
    let reasons: Vec<String> = outcomes(&report).into_iter().map(|(_, r)| r).collect();
    assert_eq!(
        reasons,
        [
            "added", "added", "added", "added", "added", "added", "expired"
        ]
    );
    assert_eq!(report["results"][6]["outcome"], "skipped");
    assert_eq!(
        report["results"][6]["detail"],
        "expired in ThreatQ at 2001-02-03 04:05:06 UTC (EXPIRY_FROM_THREATQ)"
    );
    // DAYS_TO_EXPIRATION's expiry (about ten years from now) is earlier than 2999's.
    let request_expiry = report["expiry"].as_str().unwrap().to_owned();
    assert!(request_expiry.as_str() < "2999", "{request_expiry}");
    assert_eq!(
        sorted(app.posts()),
        sorted(vec![
            json!({"addlist": "own.example,calc.example", "expiry": "2030-01-02T03:04:05", "source": "ThreatQ"}),
            json!({"addlist": "both.example", "expiry": "2031-05-06T07:08:09", "source": "ThreatQ"}),
            json!({"addlist": "late.example,none.example,odd.example", "expiry": request_expiry, "source": "ThreatQ"}),
        ])
    );
}

#[tokio::test]
async fn without_days_the_threatq_expiry_alone_counts_and_off_it_is_ignored() {
    let items = json!([
        {"type": "FQDN", "value": "own.example", "expires_at": "2030-01-02 03:04:05"},
        {"type": "FQDN", "value": "none.example"},
        {"type": "FQDN", "value": "gone.example", "expires_at": "2001-02-03 04:05:06"},
    ]);
    let on = spawn_adjusted(|config| config.screen.expiry_from_threatq = true).await;
    let (status, _) = on.export(&items).await;
    assert_eq!(status, 200);
    assert_eq!(
        sorted(on.posts()),
        sorted(vec![
            json!({"addlist": "own.example", "expiry": "2030-01-02T03:04:05", "source": "ThreatQ"}),
            json!({"addlist": "none.example", "source": "ThreatQ"}),
        ])
    );
    let off = spawn().await;
    let (status, _) = off.export(&items).await;
    assert_eq!(status, 200);
    assert_eq!(
        off.posts(),
        vec![json!({"addlist": "own.example,none.example,gone.example", "source": "ThreatQ"})]
    );
}

#[tokio::test]
async fn the_simulator_keeps_strength_and_autonomous_response_per_entry() {
    let app = spawn_adjusted(|config| {
        config.defaults.strength = Some(darktrace_export::pipeline::Strength::Score);
        config.defaults.autonomous_response = true;
    })
    .await;
    let items = json!([
        {"type": "FQDN", "value": "a.example", "score": 4},
        {"type": "FQDN", "value": "b.example"},
    ]);
    let (status, _) = app.export(&items).await;
    assert_eq!(status, 200);
    let details = app
        .sim
        .with_store_mut(|store| store.details(Some("ThreatQ")));
    let shown: Vec<(&str, u8, bool)> = details
        .iter()
        .map(|d| (d.name.as_str(), d.strength, d.iagn))
        .collect();
    assert_eq!(
        shown,
        [("a.example", 40, true), ("b.example", 100, true)],
        "an add without a strength gets the appliance's default"
    );
}

#[tokio::test]
async fn a_mixed_collection_is_judged_in_the_documented_order() {
    let app = spawn_adjusted(|config| {
        config.screen.min_score = Some(5);
        config.screen.export_statuses = Some(vec!["active".into()]);
        config.screen.expiry_from_threatq = true;
        config.defaults.strength = Some(darktrace_export::pipeline::Strength::Score);
    })
    .await;
    let items = json!([
        {"type": "FQDN", "value": "white.example", "status": "Whitelisted", "score": 9},
        {"type": "FQDN", "value": "review.example", "status": "Review", "score": 9},
        {"type": "FQDN", "value": "low.example", "status": "Active", "score": 3, "expires_at": "2001-01-01 00:00:00"},
        {"type": "FQDN", "value": "gone.example", "status": "Active", "score": 8, "expires_at": "2001-01-01 00:00:00"},
        {"type": "FQDN", "value": "bad..example", "status": "Active", "score": 8},
        {"type": "FQDN", "value": "good.example", "status": "Active", "score": {"generated_score": 2, "manual_score": "8"}, "expires_at": "2030-01-02 03:04:05"},
        {"type": "FQDN", "value": "plain.example", "status": "active", "score": 6},
    ]);
    let (status, report) = app.export(&items).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        outcomes(&report),
        [
            ("skipped", "excluded_status"),
            ("skipped", "excluded_status"),
            ("skipped", "low_score"),
            ("skipped", "expired"),
            ("invalid", "invalid_fqdn"),
            ("exported", "added"),
            ("exported", "added"),
        ]
        .map(|(o, r)| (o.to_owned(), r.to_owned()))
    );
    assert_eq!(
        sorted(app.posts()),
        sorted(vec![
            json!({"addlist": "good.example", "expiry": "2030-01-02T03:04:05", "source": "ThreatQ", "strength": 80}),
            json!({"addlist": "plain.example", "source": "ThreatQ", "strength": 60}),
        ])
    );
}

/// Puts `name` under `source` as another tool might have: with its own strength, expiry and
/// Autonomous Response setting.
fn seed_entry(app: &TestApp, source: &str, name: &str, strength: u8, iagn: bool, expiry: &str) {
    let expiry = (!expiry.is_empty())
        .then(|| chrono::NaiveDateTime::parse_from_str(expiry, "%Y-%m-%dT%H:%M:%S").unwrap());
    app.sim.with_store_mut(|store| {
        store.add(
            &[name],
            &darktrace_export::simulator::store::AddOptions {
                source: Some(source.into()),
                expiry,
                strength: Some(strength),
                iagn,
                ..Default::default()
            },
        )
    });
}

fn detail_of(report: &Value, value: &str) -> String {
    report["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["value"] == value)
        .unwrap_or_else(|| panic!("{value} in {report}"))["detail"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn sync_refreshes_kept_entries_and_says_what_it_changed_of_each() {
    let app = spawn_adjusted(|config| {
        config.defaults.autonomous_response = true;
        config.defaults.strength = Some(darktrace_export::pipeline::Strength::Fixed(70));
        config.defaults.days_to_expiration = 0;
    })
    .await;
    seed_entry(
        &app,
        "ThreatQ",
        "changed.example",
        50,
        false,
        "2030-01-01T00:00:00",
    );
    seed_entry(&app, "ThreatQ", "same.example", 70, true, "");
    seed_entry(
        &app,
        "Other",
        "changed.example",
        50,
        false,
        "2031-06-01T00:00:00",
    );
    let collection = json!([
        fqdn("changed.example"),
        fqdn("same.example"),
        fqdn("new.example")
    ]);

    let (status, plan) = app.post("/sync?dry_run=true", &collection).await;
    assert_eq!(status, 200, "{plan}");
    assert!(
        detail_of(&plan, "changed.example").ends_with(
            "; would change in Darktrace: strength 50 → 70, expiry 2030-01-01T00:00:00 → none, Autonomous Response off → on"
        ),
        "{plan}"
    );
    assert!(
        !detail_of(&plan, "same.example").contains("change"),
        "{plan}"
    );
    assert_eq!(
        app.sim
            .with_store(|s| s.entry("changed.example").unwrap().strength),
        50,
        "a dry run changes nothing"
    );

    let (status, report) = app.post("/sync", &collection).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        detail_of(&report, "changed.example"),
        "already in Darktrace; refreshed; changed in Darktrace: strength 50 → 70, expiry 2030-01-01T00:00:00 → none, Autonomous Response off → on"
    );
    assert!(
        !detail_of(&report, "same.example").contains("change"),
        "{report}"
    );
    assert!(
        !detail_of(&report, "new.example").contains("change"),
        "{report}"
    );
    assert_eq!(
        app.posts(),
        vec![json!({
            "addlist": "changed.example,same.example,new.example",
            "iagn": true, "source": "ThreatQ", "strength": 70
        })],
        "every kept entry is refreshed by the add"
    );
    let (strength, iagn, ours, theirs) = app.sim.with_store(|s| {
        let e = s.entry("changed.example").unwrap();
        (
            e.strength,
            e.iagn,
            e.expiry_in("ThreatQ"),
            e.expiry_in("Other"),
        )
    });
    assert_eq!((strength, iagn, ours), (70, true, None));
    assert_eq!(
        theirs.map(|t| t.to_string()),
        Some("2031-06-01 00:00:00".into()),
        "another source's expiry is its own"
    );

    // Run again: Darktrace now holds what the collection says, so nothing is said changed.
    let (_, again) = app.post("/sync", &collection).await;
    assert!(
        !detail_of(&again, "changed.example").contains("change"),
        "{again}"
    );
}

#[test]
fn protect_popular_takes_only_true_or_false() {
    let (code, stderr) = start_with(&[("PROTECT_POPULAR", "maybe")]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.starts_with("PROTECT_POPULAR"), "{stderr}");
}

#[tokio::test]
async fn popular_values_never_reach_darktrace_unless_protect_popular_is_off() {
    let popular = json!([
        fqdn("google.com"),
        fqdn("microsoft.com"),
        {"type": "IP Address", "status": "Active", "value": "8.8.8.8"},
        {"type": "IP Address", "status": "Active", "value": "1.1.1.1"},
        fqdn("c2.evil.example"),
    ]);
    let app = spawn().await;
    let (status, report) = app.export(&popular).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        app.posts(),
        vec![json!({"addlist": "c2.evil.example", "source": "ThreatQ"})]
    );
    for result in &report["results"].as_array().unwrap()[..4] {
        assert_eq!(result["reason"], "protected", "{result}");
        assert!(
            result["detail"]
                .as_str()
                .unwrap()
                .contains("MISP warning list"),
            "{result}"
        );
    }

    let app = spawn_adjusted(|config| config.screen.protect_popular = false).await;
    let (status, _) = app.export(&popular).await;
    assert_eq!(status, 200);
    assert_eq!(
        app.posts(),
        vec![json!({
            "addlist": "google.com,microsoft.com,8.8.8.8,1.1.1.1,c2.evil.example",
            "source": "ThreatQ"
        })]
    );
}
