//! Darktrace failing in each documented way: every item gets the documented outcome and
//! reason, the simulator sees the documented number of calls, and nothing hangs.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::helpers::*;
use chrono::Utc;
use darktrace_export::config::{Config, DarktraceConfig};
use darktrace_export::darktrace::retry::{Backoff, MAX_RETRY_AFTER};
use darktrace_export::darktrace::wire::AddCall;
use darktrace_export::darktrace::{CallError, CallTally, DarktraceClient};
use darktrace_export::simulator::{Faults, NO_ANSWER, Simulator};
use futures_util::FutureExt;
use serde_json::{Value, json};

/// The app against `sim` with `faults`, two retries after the first attempt and short waits.
async fn app_with(sim: Simulator, faults: Faults, adjust: impl FnOnce(&mut Config)) -> TestApp {
    sim.set_faults(faults);
    let mut config = config_for(&sim);
    quick_retries(&mut config);
    adjust(&mut config);
    spawn_with(sim, config).await
}

fn failed(reason: &str, n: usize) -> Vec<(String, String)> {
    vec![("failed".into(), reason.into()); n]
}

fn details(report: &Value) -> Vec<String> {
    report["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["detail"].as_str().unwrap().to_owned())
        .collect()
}

fn faults_failing(n: u32, status: u16) -> Faults {
    Faults {
        fail_next: n,
        fail_status: status,
        ..Faults::default()
    }
}

#[tokio::test]
async fn two_503s_then_success_is_three_calls_and_every_item_exported() {
    let app = app_with(simulator().await, faults_failing(2, 503), |_| {}).await;
    let (status, report) = app.export_or_fail(&two_indicators()).await;
    assert_eq!(status, 200, "{report:#}");
    assert_eq!(
        outcomes(&report),
        vec![("exported".into(), "added".into()); 2]
    );
    let statuses: Vec<u16> = app.sim.calls().iter().map(|c| c.status).collect();
    assert_eq!(statuses, vec![503, 503, 200]);
}

#[tokio::test]
async fn overload_and_server_errors_are_retried_until_they_pass() {
    for status in [408, 429, 500, 502, 504] {
        let app = app_with(simulator().await, faults_failing(1, status), |_| {}).await;
        let (code, report) = app.export_or_fail(&two_indicators()).await;
        assert_eq!(code, 200, "{status}: {report:#}");
        assert_eq!(app.sim.calls().len(), 2, "{status} is retried once");
    }
}

#[tokio::test]
async fn a_503_that_outlasts_the_retries_fails_every_item_as_darktrace_unavailable() {
    let app = app_with(simulator().await, faults_failing(100, 503), |_| {}).await;
    let (status, report) = app.export_or_fail(&two_indicators()).await;
    assert_eq!(status, 502);
    assert_eq!(outcomes(&report), failed("darktrace_unavailable", 2));
    for detail in details(&report) {
        assert!(
            detail.contains("503") && detail.contains("after 3 attempts"),
            "{detail}"
        );
    }
    assert_eq!(
        app.sim.calls().len(),
        3,
        "the first attempt and two retries"
    );
    assert!(app.sim.with_store(|s| s.names(None)).is_empty());
}

#[tokio::test]
async fn a_429_that_outlasts_the_retries_is_darktrace_unavailable() {
    let app = app_with(simulator().await, faults_failing(100, 429), |_| {}).await;
    let (_, report) = app.export_or_fail(&two_indicators()).await;
    assert_eq!(outcomes(&report), failed("darktrace_unavailable", 2));
    assert_eq!(app.sim.calls().len(), 3);
}

#[tokio::test]
async fn another_4xx_is_darktrace_error_naming_the_status_and_tried_once() {
    let app = app_with(simulator().await, faults_failing(100, 404), |_| {}).await;
    let (status, report) = app.export_or_fail(&two_indicators()).await;
    assert_eq!(status, 502);
    assert_eq!(outcomes(&report), failed("darktrace_error", 2));
    assert!(details(&report).iter().all(|d| d.contains("404")));
    assert_eq!(app.sim.calls().len(), 1);
}

#[tokio::test]
async fn a_redirect_to_the_login_page_is_darktrace_auth_and_tried_once() {
    let app = app_with(simulator().await, faults_failing(100, 302), |_| {}).await;
    let (status, report) = app.export_or_fail(&two_indicators()).await;
    assert_eq!(status, 502);
    assert_eq!(outcomes(&report), failed("darktrace_auth", 2));
    assert!(
        details(&report)
            .iter()
            .all(|d| d.contains("DARKTRACE_PUBLIC_TOKEN"))
    );
    assert_eq!(app.sim.calls().len(), 1, "a redirect is not followed");
}

#[tokio::test]
async fn a_wrong_public_token_is_darktrace_auth_and_tried_once() {
    let app = app_with(simulator().await, Faults::default(), |c| {
        c.darktrace.public_token = secrecy::SecretString::from("unknown-public-token");
    })
    .await;
    let (_, report) = app.export_or_fail(&two_indicators()).await;
    assert_eq!(outcomes(&report), failed("darktrace_auth", 2));
    assert!(
        details(&report)
            .iter()
            .all(|d| d.contains("API SIGNATURE ERROR") && !d.contains(PRIVATE))
    );
    assert_eq!(app.sim.calls().len(), 1);
}

#[tokio::test]
async fn a_clock_off_by_more_than_30_minutes_is_darktrace_clock_and_tried_once() {
    let faults = Faults {
        clock_offset_secs: 31 * 60,
        ..Faults::default()
    };
    let app = app_with(simulator().await, faults, |_| {}).await;
    let (status, report) = app.export_or_fail(&two_indicators()).await;
    assert_eq!(status, 502);
    assert_eq!(outcomes(&report), failed("darktrace_clock", 2));
    for detail in details(&report) {
        assert!(
            detail.contains("clock") && detail.contains("30 minutes"),
            "{detail}"
        );
    }
    assert_eq!(app.sim.calls().len(), 1);
}

#[tokio::test]
async fn a_clock_off_by_less_than_30_minutes_is_fine() {
    let faults = Faults {
        clock_offset_secs: -29 * 60,
        ..Faults::default()
    };
    let app = app_with(simulator().await, faults, |_| {}).await;
    let (status, _) = app.export_or_fail(&two_indicators()).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_token_without_edit_domains_is_darktrace_permission_and_tried_once() {
    let app = app_with(simulator_with_readonly().await, Faults::default(), |c| {
        c.darktrace.public_token = secrecy::SecretString::from(READONLY_PUBLIC);
        c.darktrace.private_token = secrecy::SecretString::from(READONLY_PRIVATE);
    })
    .await;
    let (status, report) = app.export_or_fail(&two_indicators()).await;
    assert_eq!(status, 502);
    assert_eq!(outcomes(&report), failed("darktrace_permission", 2));
    assert!(details(&report).iter().all(|d| d.contains("Edit Domains")));
    let calls = app.sim.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].status, 302);
    assert!(app.sim.with_store(|s| s.names(None)).is_empty());
}

#[tokio::test]
async fn a_hang_times_out_each_attempt_and_ends_as_darktrace_timeout() {
    let faults = Faults {
        hang: true,
        ..Faults::default()
    };
    let app = app_with(simulator().await, faults, |c| {
        c.darktrace.timeout = Duration::from_millis(300);
        c.darktrace.max_retries = 1;
    })
    .await;
    let (status, report) = app.export_or_fail(&two_indicators()).await;
    assert_eq!(status, 502);
    assert_eq!(outcomes(&report), failed("darktrace_timeout", 2));
    assert!(
        details(&report)
            .iter()
            .all(|d| d.contains("DARKTRACE_TIMEOUT_SECS"))
    );
    let calls = app.sim.calls();
    assert_eq!(calls.len(), 2, "the first attempt and one retry");
    assert!(calls.iter().all(|c| c.status == NO_ANSWER));
}

#[tokio::test]
async fn one_hang_then_an_answer_is_exported() {
    let faults = Faults {
        hang_next: 1,
        ..Faults::default()
    };
    let app = app_with(simulator().await, faults, |c| {
        c.darktrace.timeout = Duration::from_secs(1);
    })
    .await;
    let (status, report) = app.export_or_fail(&two_indicators()).await;
    assert_eq!(status, 200, "{report:#}");
    let statuses: Vec<u16> = app.sim.calls().iter().map(|c| c.status).collect();
    assert_eq!(statuses, vec![NO_ANSWER, 200]);
}

#[tokio::test]
async fn a_reset_after_the_change_is_retried_and_the_re_add_confirms_it() {
    let faults = Faults {
        reset_after_change: 1,
        ..Faults::default()
    };
    let app = app_with(simulator().await, faults, |_| {}).await;
    let (status, report) = app.export_or_fail(&two_indicators()).await;
    assert_eq!(status, 200, "{report:#}");
    assert_eq!(
        outcomes(&report),
        vec![("exported".into(), "updated".into()); 2],
        "the first attempt took effect, so the retry finds the entries there"
    );
    let statuses: Vec<u16> = app.sim.calls().iter().map(|c| c.status).collect();
    assert_eq!(statuses, vec![NO_ANSWER, 200]);
    let mut held = app.sim.with_store(|s| s.names(Some("ThreatQ")));
    held.sort();
    assert_eq!(held, vec!["198.51.100.7", "a.example"]);
}

#[tokio::test]
async fn resets_on_every_attempt_are_darktrace_unavailable_though_the_change_took_effect() {
    let faults = Faults {
        reset_after_change: 100,
        ..Faults::default()
    };
    let app = app_with(simulator().await, faults, |_| {}).await;
    let (status, report) = app.export_or_fail(&two_indicators()).await;
    assert_eq!(status, 502);
    assert_eq!(outcomes(&report), failed("darktrace_unavailable", 2));
    assert_eq!(app.sim.calls().len(), 3);
    assert_eq!(
        app.sim.with_store(|s| s.names(Some("ThreatQ"))).len(),
        2,
        "failed means not confirmed; the appliance may hold the entries anyway"
    );
}

#[tokio::test]
async fn nothing_listening_is_darktrace_unavailable() {
    let sim = simulator().await;
    let mut config = config_for(&sim);
    quick_retries(&mut config);
    let closed = ClosedPort::new();
    config.darktrace.base_url = closed.url().parse().unwrap();
    let app = spawn_with(sim, config).await;
    let (status, report) = app.export_or_fail(&two_indicators()).await;
    assert_eq!(status, 502);
    assert_eq!(outcomes(&report), failed("darktrace_unavailable", 2));
    for detail in details(&report) {
        assert!(
            detail.contains("cannot connect") && detail.contains("DARKTRACE_HOST"),
            "{detail}"
        );
    }
}

/// Darktrace said SUCCESS; only the check could not confirm more before the deadline: the
/// entries are `accepted`, not `failed`, and the answer is no 502.
#[tokio::test]
async fn an_answer_without_lists_whose_check_runs_out_of_time_is_accepted() {
    let faults = Faults {
        no_lists: true,
        hang_reads: true,
        ..Faults::default()
    };
    let app = app_with(simulator().await, faults, |config| {
        config.limits.request_timeout = std::time::Duration::from_secs(2);
    })
    .await;
    let (status, report) = app.export_or_fail(&two_indicators()).await;
    assert_eq!(status, 200, "{report:#}");
    assert_eq!(
        outcomes(&report),
        vec![("exported".into(), "accepted".into()); 2]
    );
    assert!(
        details(&report)
            .iter()
            .all(|d| d.contains("ran out of time")),
        "{report:#}"
    );
}

#[tokio::test]
async fn an_answer_without_lists_whose_check_fails_is_accepted() {
    let faults = Faults {
        no_lists: true,
        fail_next_reads: 1,
        fail_status: 404,
        ..Faults::default()
    };
    let app = app_with(simulator().await, faults, |_| {}).await;
    let (status, report) = app.export_or_fail(&two_indicators()).await;
    assert_eq!(status, 200, "{report:#}");
    assert_eq!(
        outcomes(&report),
        vec![("exported".into(), "accepted".into()); 2]
    );
    assert!(details(&report).iter().all(|d| d.contains("check failed")));
    let calls: Vec<(String, u16)> = app
        .sim
        .calls()
        .iter()
        .map(|c| (c.target.clone(), c.status))
        .collect();
    assert_eq!(
        calls,
        vec![
            ("/intelfeed".to_owned(), 200),
            ("/intelfeed?source=ThreatQ".to_owned(), 404)
        ]
    );
}

#[tokio::test]
async fn a_bare_success_is_confirmed_by_one_read_per_request() {
    let sim = simulator().await;
    let faults = Faults {
        bare_success: true,
        ..Faults::default()
    };
    let app = app_with(sim, faults, |c| c.darktrace.batch_size = 1).await;
    let (status, report) = app.export_or_fail(&two_indicators()).await;
    assert_eq!(status, 200, "{report:#}");
    assert_eq!(
        outcomes(&report),
        vec![("exported".into(), "added".into()); 2]
    );
    let reads = app.sim.calls().iter().filter(|c| c.method == "GET").count();
    assert_eq!(reads, 1, "one read confirms every call of the request");
}

/// The app with one indicator per call and `concurrency` calls at once, reaching a slow
/// Darktrace through a closed [`Gate`].
async fn gated_app(concurrency: usize) -> (TestApp, Gate) {
    let faults = Faults {
        latency: Duration::from_millis(100),
        ..Faults::default()
    };
    let sim = simulator().await;
    let gate = Gate::start(sim.addr()).await;
    let app = app_with(sim, faults, |c| {
        c.darktrace.concurrency = concurrency;
        c.darktrace.batch_size = 1;
        c.darktrace.base_url = gate.url().parse().unwrap();
    })
    .await;
    (app, gate)
}

#[tokio::test]
async fn calls_in_flight_never_exceed_darktrace_concurrency_across_requests() {
    let (app, gate) = gated_app(2).await;
    let batch = |n: u8| {
        json!(
            (1..=4)
                .map(|i| json!({"type": "IP Address", "value": format!("198.51.{n}.{i}")}))
                .collect::<Vec<_>>()
        )
    };
    let (one, two, three) = (batch(100), batch(101), batch(102));
    let exports = async {
        tokio::join!(
            app.export_or_fail(&one),
            app.export_or_fail(&two),
            app.export_or_fail(&three)
        )
    };
    // Two calls waiting at the gate at once: the chunks do not go out one at a time.
    let together = async {
        gate.until_held(2).await;
        gate.open();
    };
    let ((a, b, c), ()) = tokio::join!(exports, together);
    for (status, report) in [a, b, c] {
        assert_eq!(status, 200, "{report:#}");
        assert_eq!(report["summary"]["exported"], 4);
    }
    assert_eq!(app.posts().len(), 12);
    let max = app.sim.max_in_flight();
    assert!(max <= 2, "{max} calls were in flight; the limit is 2");
}

#[tokio::test]
async fn the_chunks_of_one_request_go_out_in_parallel_within_the_limit() {
    let (app, gate) = gated_app(3).await;
    let items: Vec<Value> = (1..=9)
        .map(|i| json!({"type": "IP Address", "value": format!("198.51.100.{i}")}))
        .collect();
    let items = json!(items);
    let export = app.export_or_fail(&items);
    // The two calls the limit starts at wait at the gate at once.
    let together = async {
        gate.until_held(2).await;
        gate.open();
    };
    let ((status, report), ()) = tokio::join!(export, together);
    assert_eq!(status, 200, "{report:#}");
    let max = app.sim.max_in_flight();
    assert!(max <= 3, "{max} calls in flight; limit 3");
}

// ---- The client on its own: signing per attempt, and the waits it asks for. ----

fn client_for(sim: &Simulator, max_retries: u32) -> DarktraceClient {
    let mut config = DarktraceConfig::new(sim.url().parse().unwrap(), PUBLIC, PRIVATE);
    config.max_retries = max_retries;
    DarktraceClient::new(&config).unwrap()
}

/// A client whose waits are recorded instead of slept.
fn recording(client: DarktraceClient) -> (DarktraceClient, Arc<Mutex<Vec<Duration>>>) {
    let waits = Arc::new(Mutex::new(Vec::new()));
    let seen = waits.clone();
    let client = client.with_sleep(Arc::new(move |wait| {
        seen.lock().unwrap().push(wait);
        async {}.boxed()
    }));
    (client, waits)
}

fn one_entry() -> AddCall<'static> {
    static ENTRY: std::sync::LazyLock<darktrace_export::screen::WireValue> =
        std::sync::LazyLock::new(|| checked("a.example"));
    AddCall::plain(vec![&*ENTRY], "ThreatQ")
}

#[tokio::test]
async fn every_attempt_is_signed_afresh_over_the_same_bytes() {
    let sim = simulator().await;
    sim.set_faults(faults_failing(2, 503));
    let ticks = Arc::new(Mutex::new(0i64));
    let start = Utc::now();
    let (client, _) = recording(client_for(&sim, 3).with_clock(Arc::new(move || {
        let mut t = ticks.lock().unwrap();
        *t += 1;
        start + chrono::Duration::seconds(*t)
    })));
    let tally = CallTally::default();
    client.add(&one_entry(), &tally).await.unwrap();
    let calls = sim.calls();
    assert_eq!(calls.len(), 3);
    assert_eq!(tally.calls(), 3);
    assert_eq!(tally.retries(), 2);
    let dates: Vec<_> = calls.iter().map(|c| c.date.clone().unwrap()).collect();
    assert!(
        dates[0] != dates[1] && dates[1] != dates[2],
        "each attempt has its own date: {dates:?}"
    );
    assert_eq!(
        calls[2].status, 200,
        "the last attempt's signature is valid"
    );
    assert!(
        calls.iter().all(|c| c.body == calls[0].body),
        "the body is serialised once"
    );
}

#[tokio::test]
async fn retry_after_is_honoured_and_clamped_to_a_minute() {
    let sim = simulator().await;
    for (sent, expected) in [(7, Duration::from_secs(7)), (3600, MAX_RETRY_AFTER)] {
        sim.set_faults(Faults {
            fail_next: 2,
            fail_status: 429,
            retry_after_secs: Some(sent),
            ..Faults::default()
        });
        let (client, waits) = recording(client_for(&sim, 3));
        client
            .add(&one_entry(), &CallTally::default())
            .await
            .unwrap();
        assert_eq!(
            *waits.lock().unwrap(),
            vec![expected; 2],
            "Retry-After {sent}"
        );
    }
}

#[tokio::test]
async fn without_retry_after_the_waits_grow_with_jitter_up_to_the_cap() {
    let sim = simulator().await;
    sim.set_faults(faults_failing(100, 503));
    let backoff = Backoff {
        base: Duration::from_millis(100),
        cap: Duration::from_millis(300),
    };
    let (client, waits) = recording(client_for(&sim, 4).with_backoff(backoff));
    let error = client
        .add(&one_entry(), &CallTally::default())
        .await
        .unwrap_err();
    assert!(matches!(error, CallError::Unavailable(_)), "{error:?}");
    assert_eq!(sim.calls().len(), 5);
    let waits = waits.lock().unwrap().clone();
    let ceilings = [100, 200, 300, 300].map(Duration::from_millis);
    assert_eq!(waits.len(), 4);
    for (wait, ceiling) in waits.iter().zip(ceilings) {
        assert!(
            *wait >= ceiling / 2 && *wait <= ceiling,
            "{wait:?} not in [{:?}, {ceiling:?}]",
            ceiling / 2
        );
    }
}

#[tokio::test]
async fn final_errors_are_not_waited_for() {
    let sim = simulator().await;
    sim.set_faults(faults_failing(100, 400));
    let (client, waits) = recording(client_for(&sim, 3));
    let error = client
        .add(&one_entry(), &CallTally::default())
        .await
        .unwrap_err();
    assert!(matches!(error, CallError::Unexpected(_)), "{error:?}");
    assert!(waits.lock().unwrap().is_empty());
    assert_eq!(sim.calls().len(), 1);
}

#[tokio::test]
async fn an_entry_left_out_of_both_lists_is_rejected_and_the_others_exported() {
    let faults = Faults {
        reject_entries: vec!["198.51.100.7".into()],
        ..Faults::default()
    };
    let app = app_with(simulator().await, faults, |_| {}).await;
    let (status, report) = app.export_or_fail(&two_indicators()).await;
    assert_eq!(status, 502);
    assert_eq!(
        outcomes(&report),
        vec![
            ("exported".into(), "added".into()),
            ("failed".into(), "rejected".into())
        ]
    );
    assert_eq!(app.sim.calls().len(), 1, "a rejection is not retried");
}

#[tokio::test]
async fn without_lists_an_entry_the_read_does_not_show_is_rejected() {
    let faults = Faults {
        no_lists: true,
        reject_entries: vec!["198.51.100.7".into()],
        ..Faults::default()
    };
    let app = app_with(simulator().await, faults, |_| {}).await;
    let (status, report) = app.export_or_fail(&two_indicators()).await;
    assert_eq!(status, 502);
    assert_eq!(
        outcomes(&report),
        vec![
            ("exported".into(), "added".into()),
            ("failed".into(), "rejected".into())
        ]
    );
    assert_eq!(app.sim.calls().len(), 2, "the add and one confirming read");
}
