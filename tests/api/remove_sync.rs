//! Black-box `/remove` and `/sync` tests: the real app against the strict simulator, which
//! keeps each entry's membership per source.

use crate::helpers::*;
use chrono::{Duration, Utc};
use darktrace_export::simulator::Faults;
use serde_json::{Value, json};

const SOURCE: &str = "ThreatQ";
const OTHER: &str = "Other Feed";

fn held(app: &TestApp, source: &str) -> Vec<String> {
    let mut names = app.sim.with_store(|s| s.names(Some(source)));
    names.sort();
    names
}

fn sorted(names: &[&str]) -> Vec<String> {
    let mut names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    names.sort();
    names
}

/// The removal POSTs Darktrace received, each checked to name one entry under `SOURCE`.
fn removal_posts(app: &TestApp) -> Vec<String> {
    app.posts()
        .into_iter()
        .filter(|p| p.get("removeentry").is_some())
        .map(|p| {
            assert_eq!(p["source"], SOURCE, "{p}");
            assert_eq!(p.as_object().unwrap().len(), 2, "{p}");
            p["removeentry"].as_str().unwrap().to_owned()
        })
        .collect()
}

fn assert_never_removed_all(app: &TestApp) {
    assert_eq!(app.sim.with_store(|s| s.removeall_calls), 0);
    assert!(app.posts().iter().all(|p| p.get("removeall").is_none()));
}

fn removals(report: &Value) -> Vec<(String, String, String)> {
    report["removals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["value"].as_str().unwrap().to_owned(),
                r["outcome"].as_str().unwrap().to_owned(),
                r["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn pair(outcome: &str, reason: &str) -> (String, String) {
    (outcome.into(), reason.into())
}

#[tokio::test]
async fn remove_takes_out_held_entries_whatever_their_status_and_reports_the_rest_not_present() {
    let app = spawn().await;
    seed(
        &app,
        SOURCE,
        &["a.example", "shared.example", "10.0.0.1"],
        None,
    );
    seed(&app, OTHER, &["shared.example"], None);
    let body = json!([
        whitelisted_named("A.Example."),
        fqdn("shared.example"),
        fqdn("never-sent.example"),
        {"type": "IP Address", "value": "10.0.0.1"},
        fqdn("bad..example"),
        {"type": "MD5", "value": "d41d8cd98f00b204e9800998ecf8427e"},
        fqdn("a.example"),
    ]);
    let (status, report) = app.post("/remove", &body).await;
    assert_eq!(status, 200, "{report:#}");
    assert_accounts_for_every_item(&report, 7);
    assert_eq!(
        outcomes(&report),
        vec![
            pair("removed", "removed"),
            pair("removed", "removed"),
            pair("removed", "not_present"),
            pair("removed", "removed"),
            pair("invalid", "invalid_fqdn"),
            pair("skipped", "unsupported_type"),
            pair("skipped", "duplicate"),
        ]
    );
    assert_eq!(report["summary"]["removed"], 4);
    assert_eq!(
        report["summary"]["not_present"], 1,
        "the summary tells what was not there from what was taken out"
    );
    assert_eq!(report["expiry"], Value::Null);
    assert!(
        report.get("removals").is_none(),
        "only /sync lists removals"
    );

    assert!(held(&app, SOURCE).is_empty());
    assert_eq!(held(&app, OTHER), vec!["shared.example"]);
    let mut removed = removal_posts(&app);
    removed.sort();
    assert_eq!(
        removed,
        sorted(&["10.0.0.1", "a.example", "shared.example"])
    );
    let reads: Vec<String> = app
        .sim
        .calls()
        .into_iter()
        .filter(|c| c.method == "GET")
        .map(|c| c.target)
        .collect();
    assert_eq!(reads, vec!["/intelfeed?source=ThreatQ"]);
    assert_never_removed_all(&app);
}

#[tokio::test]
async fn a_dry_run_removal_shows_what_would_go_and_changes_nothing() {
    let app = spawn().await;
    seed(&app, SOURCE, &["a.example"], None);
    let (status, report) = app
        .post(
            "/remove?dry_run=true",
            &json!([fqdn("a.example"), fqdn("b.example")]),
        )
        .await;
    assert_eq!(status, 200, "{report:#}");
    assert_accounts_for_every_item(&report, 2);
    assert_eq!(
        outcomes(&report),
        vec![
            pair("would_remove", "dry_run_removal"),
            pair("removed", "not_present")
        ]
    );
    assert_eq!(report["summary"]["would_remove"], 1);
    assert_eq!(report["summary"]["not_present"], 1);
    assert_eq!(held(&app, SOURCE), vec!["a.example"]);
    assert!(app.posts().is_empty());
}

#[tokio::test]
async fn sync_adds_refreshes_and_removes_within_its_source_only() {
    let app = spawn_adjusted(|config| {
        config.defaults.days_to_expiration = 30;
    })
    .await;
    let soon = Utc::now().naive_utc() + Duration::days(1);
    seed(&app, SOURCE, &["kept.example"], Some(soon));
    seed(&app, SOURCE, &["stray.example", "shared.example"], None);
    seed(&app, OTHER, &["shared.example", "theirs.example"], None);

    let collection = json!({"data": [
        fqdn("Kept.Example."),
        fqdn("new.example"),
        {"type": "IP Address", "status": "Active", "value": "198.51.100.7"},
        {"type": "IP Address", "value": "10.1.2.3"},
    ]});
    let (status, report) = app.post("/sync", &collection).await;
    assert_eq!(status, 200, "{report:#}");
    assert_accounts_for_every_item(&report, 4);
    assert_eq!(
        outcomes(&report),
        vec![
            pair("exported", "updated"),
            pair("exported", "added"),
            pair("exported", "added"),
            pair("skipped", "protected"),
        ]
    );
    let mut gone = removals(&report);
    gone.sort();
    assert_eq!(
        gone,
        vec![
            ("shared.example".into(), "removed".into(), "removed".into()),
            ("stray.example".into(), "removed".into(), "removed".into()),
        ]
    );

    assert_eq!(
        held(&app, SOURCE),
        sorted(&["198.51.100.7", "kept.example", "new.example"])
    );
    assert_eq!(
        held(&app, OTHER),
        sorted(&["shared.example", "theirs.example"]),
        "entries of another source are never touched"
    );
    let expiry = app
        .sim
        .with_store(|s| s.entry("kept.example").unwrap().expiry_in(SOURCE))
        .unwrap();
    assert!(
        expiry > soon + Duration::days(20),
        "the refresh moved the expiry forward: {expiry}"
    );
    let reads: Vec<String> = app
        .sim
        .calls()
        .into_iter()
        .filter(|c| c.method == "GET")
        .map(|c| c.target)
        .collect();
    assert_eq!(reads, vec!["/intelfeed?fulldetails=true&source=ThreatQ"]);
    assert_never_removed_all(&app);
}

#[tokio::test]
async fn a_whitelisted_indicator_in_the_collection_is_removed_and_one_not_held_is_skipped() {
    let app = spawn().await;
    seed(&app, SOURCE, &["revoked.example"], None);
    let collection = json!([
        whitelisted_named("revoked.example"),
        fqdn("evil.example"),
        whitelisted_named("never-sent.example"),
    ]);
    let (status, report) = app.post("/sync", &collection).await;
    assert_eq!(status, 200, "{report:#}");
    assert_accounts_for_every_item(&report, 3);
    assert_eq!(
        outcomes(&report),
        vec![
            pair("removed", "removed"),
            pair("exported", "added"),
            pair("skipped", "excluded_status"),
        ]
    );
    assert!(
        report["results"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("Whitelisted"),
        "{report:#}"
    );
    assert_eq!(report["removals"], json!([]));
    assert_eq!(held(&app, SOURCE), vec!["evil.example"]);
    assert_eq!(removal_posts(&app), vec!["revoked.example"]);
}

/// A whitelisted item revokes its value in every spelling: another item holding the same
/// value is kept back too, and the held entry goes.
#[tokio::test]
async fn a_value_whitelisted_by_one_item_is_removed_although_another_item_holds_it() {
    let app = spawn().await;
    seed(&app, SOURCE, &["twice.example"], None);
    let (status, report) = app
        .post(
            "/sync",
            &json!([
                whitelisted_named("twice.example"),
                fqdn("Twice.Example"),
                fqdn("other.example")
            ]),
        )
        .await;
    assert_eq!(status, 200, "{report:#}");
    assert_eq!(
        outcomes(&report),
        vec![
            pair("removed", "removed"),
            pair("skipped", "excluded_status"),
            pair("exported", "added")
        ]
    );
    assert!(
        report["results"][1]["detail"]
            .as_str()
            .unwrap()
            .contains("same value as item 0"),
        "{report:#}"
    );
    assert!(held(&app, SOURCE) == vec!["other.example"]);
    assert_eq!(removal_posts(&app), vec!["twice.example"]);
}

#[tokio::test]
async fn a_dry_run_sync_answers_with_the_plan_and_changes_nothing() {
    let app = spawn().await;
    seed(&app, SOURCE, &["stray.example", "revoked.example"], None);
    let body = json!({"indicators": [fqdn("new.example"), whitelisted_named("revoked.example")], "dry_run": true});
    let (status, report) = app.post("/sync", &body).await;
    assert_eq!(status, 200, "{report:#}");
    assert_eq!(report["dry_run"], true);
    assert_accounts_for_every_item(&report, 2);
    assert_eq!(
        outcomes(&report),
        vec![
            pair("would_export", "dry_run"),
            pair("would_remove", "dry_run_removal")
        ]
    );
    assert_eq!(
        removals(&report),
        vec![(
            "stray.example".into(),
            "would_remove".into(),
            "dry_run_removal".into()
        )]
    );
    assert_eq!(
        held(&app, SOURCE),
        sorted(&["revoked.example", "stray.example"])
    );
    assert!(app.posts().is_empty(), "a dry run only reads");
}

#[tokio::test]
async fn a_plan_over_the_removal_cap_is_refused_with_the_plan_and_force_carries_it_out() {
    let app = spawn_adjusted(|config| {
        config.limits.sync_max_removals = 2;
    })
    .await;
    seed(&app, SOURCE, &["a.example", "b.example"], None);
    seed(&app, OTHER, &["theirs.example"], None);
    let collection = json!([whitelisted_named("a.example"), fqdn("keep.example")]);

    let (status, report) = app.post("/sync", &json!([fqdn("keep.example")])).await;
    assert_eq!(status, 200, "a plan at the cap is carried out: {report:#}");
    assert_eq!(held(&app, SOURCE), vec!["keep.example"]);

    seed(&app, SOURCE, &["a.example", "b.example", "c.example"], None);
    let response = app.post_as("/sync", API_TOKEN, &collection).await;
    assert_eq!(response.status(), 409);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["type"], "urn:darktrace-export:problem:sync-cap");
    assert_eq!(problem["status"], 409);
    assert_eq!(problem["source"], SOURCE);
    assert_eq!(problem["planned_removals"], 3);
    assert_eq!(problem["sync_max_removals"], 2);
    assert_eq!(
        removals(&problem),
        vec![
            (
                "a.example".into(),
                "would_remove".into(),
                "dry_run_removal".into()
            ),
            (
                "b.example".into(),
                "would_remove".into(),
                "dry_run_removal".into()
            ),
            (
                "c.example".into(),
                "would_remove".into(),
                "dry_run_removal".into()
            ),
        ]
    );
    assert!(
        problem["removals"][0]["detail"]
            .as_str()
            .unwrap()
            .starts_with("item 0 of the collection"),
        "{problem:#}"
    );
    assert_eq!(
        held(&app, SOURCE),
        sorted(&["a.example", "b.example", "c.example", "keep.example"])
    );
    let removals_before = removal_posts(&app).len();

    let (status, report) = app.post("/sync?force=true", &collection).await;
    assert_eq!(status, 200, "{report:#}");
    assert_accounts_for_every_item(&report, 2);
    assert_eq!(
        outcomes(&report),
        vec![pair("removed", "removed"), pair("exported", "updated")]
    );
    assert_eq!(report["removals"].as_array().unwrap().len(), 2);
    assert_eq!(held(&app, SOURCE), vec!["keep.example"]);
    assert_eq!(removal_posts(&app).len(), removals_before + 3);
    assert_eq!(held(&app, OTHER), vec!["theirs.example"]);

    seed(&app, SOURCE, &["a.example", "b.example", "c.example"], None);
    let (status, _) = app
        .post(
            "/sync",
            &json!({"indicators": [fqdn("x.example")], "force": true}),
        )
        .await;
    assert_eq!(status, 200, "force may also come in the body");
    assert_eq!(held(&app, SOURCE), vec!["x.example"]);
    let (status, _) = app
        .post("/sync", &json!({"indicators": [], "force": true}))
        .await;
    assert_eq!(status, 200, "force empties the source");
    assert!(held(&app, SOURCE).is_empty());
    assert_never_removed_all(&app);
}

#[tokio::test]
async fn a_failure_in_the_middle_of_a_sync_reports_each_items_real_state() {
    let app = spawn().await;
    seed(
        &app,
        SOURCE,
        &["kept.example", "stray-1.example", "stray-2.example"],
        None,
    );
    // The read goes through; then the add call and one removal are refused (400: no retry).
    app.sim.set_faults(Faults {
        fail_after: 1,
        fail_next: 2,
        fail_status: 400,
        ..Faults::default()
    });
    let (status, report) = app
        .post("/sync", &json!([fqdn("kept.example"), fqdn("new.example")]))
        .await;
    assert_eq!(status, 502, "{report:#}");
    assert_accounts_for_every_item(&report, 2);
    assert_eq!(
        outcomes(&report),
        vec![pair("failed", "darktrace_error"); 2]
    );

    let now_held = held(&app, SOURCE);
    assert!(
        now_held.contains(&"kept.example".to_owned()),
        "a failed refresh leaves the entry"
    );
    assert!(
        !now_held.contains(&"new.example".to_owned()),
        "a failed add adds nothing"
    );
    let gone = removals(&report);
    assert_eq!(gone.len(), 2);
    for (value, outcome, reason) in &gone {
        match outcome.as_str() {
            "removed" => assert!(!now_held.contains(value), "{value} reported removed"),
            "failed" => {
                assert_eq!(reason, "darktrace_error");
                assert!(now_held.contains(value), "{value} reported failed");
            }
            other => panic!("unexpected outcome {other} for {value}"),
        }
    }
    assert_eq!(
        gone.iter().filter(|g| g.1 == "failed").count(),
        1,
        "{report:#}"
    );
    assert_never_removed_all(&app);
}

#[tokio::test]
async fn a_sync_that_cannot_read_the_source_changes_nothing_and_fails_what_it_would_touch() {
    let app = spawn().await;
    seed(&app, SOURCE, &["stray.example", "revoked.example"], None);
    app.sim.set_faults(Faults {
        fail_next: 1,
        fail_status: 400,
        ..Faults::default()
    });
    let collection = json!([
        fqdn("new.example"),
        whitelisted_named("revoked.example"),
        fqdn("bad..example"),
    ]);
    let (status, report) = app.post("/sync", &collection).await;
    assert_eq!(status, 502, "{report:#}");
    assert_accounts_for_every_item(&report, 3);
    assert_eq!(
        outcomes(&report),
        vec![
            pair("failed", "darktrace_error"),
            pair("failed", "darktrace_error"),
            pair("invalid", "invalid_fqdn"),
        ]
    );
    assert_eq!(report["removals"], json!([]));
    assert_eq!(app.sim.calls().len(), 1, "only the refused read was sent");
    assert_eq!(
        held(&app, SOURCE),
        sorted(&["revoked.example", "stray.example"])
    );
}

#[tokio::test]
async fn remove_and_sync_need_the_bearer_token() {
    let app = spawn().await;
    for path in ["/remove", "/sync"] {
        let response = app
            .http
            .post(app.url(path))
            .json(&json!([]))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{path}");
    }
    assert!(app.sim.calls().is_empty());
}

/// A collection with nothing to export that would remove entries is refused whatever
/// `SYNC_MAX_REMOVALS` is: `[]`, an empty page, or only skipped and invalid items.
#[tokio::test]
async fn a_sync_that_would_empty_the_source_is_refused_unless_forced() {
    let app = spawn().await;
    seed(&app, SOURCE, &["a.example", "b.example", "c.example"], None);
    let nothing_to_export = [
        json!([]),
        json!({"total": 0, "data": []}),
        // ThreatQ's own page without items.
        json!({"data": {}, "limit": 10, "nextCursorMark": "AoJ0", "total": 0}),
        json!({"indicators": []}),
        json!([whitelisted_named("d.example"), {"type": "MD5", "value": "d41d8cd98f00b204e9800998ecf8427e"}, fqdn("bad..example")]),
    ];
    for body in &nothing_to_export {
        let (status, problem) = app.post("/sync", body).await;
        assert_eq!(status, 409, "{body}: {problem:#}");
        assert_eq!(problem["type"], "urn:darktrace-export:problem:sync-cap");
        assert_eq!(problem["exportable"], 0);
        assert_eq!(problem["planned_removals"], 3);
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains("no exportable item"),
            "{problem:#}"
        );
    }
    assert_eq!(
        held(&app, SOURCE),
        sorted(&["a.example", "b.example", "c.example"])
    );
    assert!(removal_posts(&app).is_empty());

    // A dry run shows the plan, its removals counted.
    let (status, report) = app.post("/sync?dry_run=true", &json!([])).await;
    assert_eq!(status, 200, "{report:#}");
    assert_accounts_for_every_item(&report, 0);
    assert_eq!(report["summary"]["would_remove"], 3);
    assert_eq!(report["summary"]["removals"], 3);

    let (status, report) = app.post("/sync?force=true", &json!([])).await;
    assert_eq!(status, 200, "{report:#}");
    assert_accounts_for_every_item(&report, 0);
    assert_eq!(report["summary"]["removed"], 3);
    assert_eq!(report["summary"]["removals"], 3);
    assert!(held(&app, SOURCE).is_empty());

    // Nothing held: nothing to remove, nothing to refuse.
    let (status, report) = app.post("/sync", &json!([])).await;
    assert_eq!(status, 200, "{report:#}");
    assert_never_removed_all(&app);
}

/// A whitelisted host keeps its parent domain out of Darktrace: an entry for the parent
/// would match the host. A sync removes the parent it holds.
#[tokio::test]
async fn a_sync_removes_a_held_parent_domain_of_a_whitelisted_name() {
    let app = spawn().await;
    seed(&app, SOURCE, &["parent.example"], None);
    let collection = json!([
        whitelisted_named("www.parent.example"),
        fqdn("parent.example"),
        fqdn("evil.example"),
    ]);
    let (status, report) = app.post("/sync", &collection).await;
    assert_eq!(status, 200, "{report:#}");
    assert_accounts_for_every_item(&report, 3);
    assert_eq!(
        outcomes(&report),
        vec![
            pair("skipped", "excluded_status"),
            pair("removed", "removed"),
            pair("exported", "added"),
        ]
    );
    let detail = report["results"][1]["detail"].as_str().unwrap();
    assert!(
        detail.contains("parent domain of www.parent.example"),
        "{detail}"
    );
    assert_eq!(held(&app, SOURCE), vec!["evil.example"]);
    assert_eq!(removal_posts(&app), vec!["parent.example"]);
}
