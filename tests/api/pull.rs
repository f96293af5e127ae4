//! Pulling a ThreatQ collection: the `pull` binary and `POST /pull` against the ThreatQ and
//! Darktrace simulators, the schedule driven by hand-made ticks.

use std::time::Duration;

use darktrace_export::config::{PullMode, ThreatqAuth, ThreatqConfig};
use darktrace_export::simulator::Simulator;
use darktrace_export::threatq_sim::{PageEnd, ThreatqSim, ThreatqSimConfig};
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::helpers::{self, API_TOKEN, PRIVATE, PUBLIC, fqdn, whitelisted_named};

const CLIENT_ID: &str = "tq-client-7";
const EMAIL: &str = "analyst@example.org";
const PASSWORD: &str = "tq-pass-3e9a51";
const SECRET: &str = "tq-secret-b71c04";
const HASH: &str = "a1b2c3";

/// Five items: three FQDNs (one of them in two spellings), an address, and a whitelisted
/// name that Darktrace holds and the sync must take out.
fn collection() -> Vec<Value> {
    vec![
        json!({"id": 1, "type": {"name": "FQDN"}, "status": {"name": "Active"}, "value": "one.example"}),
        json!({"id": 2, "type": {"name": "IP Address"}, "status": {"name": "Active"}, "value": "198.51.100.7"}),
        fqdn("two.example"),
        whitelisted_named("revoked.example"),
        fqdn("Two.Example."),
    ]
}

async fn threatq(items: Vec<Value>) -> ThreatqSim {
    let mut config = ThreatqSimConfig::new(CLIENT_ID, EMAIL, PASSWORD);
    config.client_secret = Some(SECRET.into());
    config.collections.insert(HASH.into(), items);
    ThreatqSim::start_local(config).await.unwrap()
}

/// A Darktrace holding `names` under source ThreatQ.
async fn darktrace(names: &[&str]) -> Simulator {
    let sim = helpers::simulator().await;
    sim.with_store_mut(|store| {
        store.add(
            names,
            &darktrace_export::simulator::store::AddOptions {
                source: Some("ThreatQ".into()),
                ..Default::default()
            },
        )
    });
    sim
}

fn names(dt: &Simulator) -> Vec<String> {
    let mut names = dt.with_store(|s| s.names(Some("ThreatQ")));
    names.sort();
    names
}

/// `darktrace-export pull` against the two simulators with `extra` settings and `args`:
/// exit code, stdout as JSON, stderr.
async fn run_pull(
    tq: &ThreatqSim,
    dt: &Simulator,
    extra: &[(&str, &str)],
    args: &[&str],
) -> (Option<i32>, Value, String) {
    run_pull_at(&tq.url(), dt, extra, args).await
}

/// [`run_pull`] against the ThreatQ at `threatq_url`.
async fn run_pull_at(
    threatq_url: &str,
    dt: &Simulator,
    extra: &[(&str, &str)],
    args: &[&str],
) -> (Option<i32>, Value, String) {
    let output = helpers::binary()
        .arg("pull")
        .args(args)
        .env("DARKTRACE_HOST", dt.url())
        .env("DARKTRACE_PUBLIC_TOKEN", PUBLIC)
        .env("DARKTRACE_PRIVATE_TOKEN", PRIVATE)
        .env("THREATQ_URL", threatq_url)
        .env("THREATQ_CLIENT_ID", CLIENT_ID)
        .env("THREATQ_COLLECTION", HASH)
        .env("THREATQ_PAGE_SIZE", "2")
        .env("LOG_FORMAT", "text")
        .envs(extra.iter().copied())
        .output();
    let output = tokio::time::timeout(Duration::from_secs(60), output)
        .await
        .expect("a pull finishes")
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    let printed: Value = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    if printed.get("results").is_some() {
        // The report as POST /pull answers it, in its own order, not with sorted keys.
        assert!(stdout.starts_with("{\"source\":"), "{stdout}");
    }
    (output.status.code(), printed, stderr)
}

const USER: [(&str, &str); 2] = [("THREATQ_EMAIL", EMAIL), ("THREATQ_PASSWORD", PASSWORD)];

fn assert_no_secret(text: &str) {
    for secret in [PASSWORD, SECRET, PRIVATE] {
        assert!(!text.contains(secret), "{secret} appears in:\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_pull_reads_every_page_and_makes_the_source_equal_to_the_collection() {
    let tq = threatq(collection()).await;
    let dt = darktrace(&["revoked.example", "stray.example", "one.example"]).await;
    let (code, report, log) = run_pull(&tq, &dt, &USER, &[]).await;
    assert_eq!(code, Some(0), "{report}\n{log}");
    helpers::assert_accounts_for_every_item(&report, 5);
    assert_eq!(report["summary"]["exported"], 3, "{report}");
    assert_eq!(report["results"][3]["outcome"], "removed", "{report}");
    assert_eq!(report["removals"][0]["value"], "stray.example");
    assert_eq!(names(&dt), ["198.51.100.7", "one.example", "two.example"]);
    // Three pages of items, then ThreatQ's end page with "data": {}.
    assert_eq!(tq.pages_served(), 4);
    assert_eq!(tq.grants(), ["sdk"], "the SDK's form of the password grant");
    assert!(log.contains("pull: page read"), "{log}");
    assert_no_secret(&log);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_pull_with_client_credentials_adds_and_removes_nothing() {
    let tq = threatq(collection()).await;
    let dt = darktrace(&["stray.example"]).await;
    let extra = [("THREATQ_CLIENT_SECRET", SECRET), ("PULL_MODE", "export")];
    let (code, report, log) = run_pull(&tq, &dt, &extra, &[]).await;
    assert_eq!(code, Some(0), "{report}\n{log}");
    assert!(report.get("removals").is_none(), "{report}");
    assert_eq!(report["summary"]["exported"], 3);
    assert_eq!(
        names(&dt),
        [
            "198.51.100.7",
            "one.example",
            "stray.example",
            "two.example"
        ]
    );
    assert_eq!(tq.grants(), ["client_credentials"]);
    assert_no_secret(&log);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_ends_on_an_empty_list_and_on_an_unchanged_cursor() {
    for (end, pages) in [(PageEnd::EmptyArray, 4), (PageEnd::UnchangedCursor, 3)] {
        let tq = threatq(collection()).await;
        tq.set_page_end(end);
        let dt = darktrace(&[]).await;
        let (code, report, log) = run_pull(&tq, &dt, &USER, &[]).await;
        assert_eq!(code, Some(0), "{end:?}: {report}\n{log}");
        assert_eq!(report["summary"]["received"], 5, "{end:?}");
        assert_eq!(tq.pages_served(), pages, "{end:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_that_expires_in_the_middle_of_paging_is_renewed_once() {
    let tq = threatq(collection()).await;
    tq.revoke_tokens_after_pages(1);
    let dt = darktrace(&[]).await;
    let (code, report, log) = run_pull(&tq, &dt, &USER, &[]).await;
    assert_eq!(code, Some(0), "{report}\n{log}");
    assert_eq!(report["summary"]["received"], 5);
    assert_eq!(tq.token_grants(), 2, "one renewal after the 401");
    assert_eq!(names(&dt).len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_credentials_exit_1_and_leave_darktrace_untouched() {
    let tq = threatq(collection()).await;
    let dt = darktrace(&["stray.example"]).await;
    for extra in [
        [
            ("THREATQ_EMAIL", EMAIL),
            ("THREATQ_PASSWORD", "wrong-pass-0"),
        ],
        [
            ("THREATQ_CLIENT_SECRET", "wrong-secret-0"),
            ("PULL_MODE", "sync"),
        ],
    ] {
        let (code, problem, log) = run_pull(&tq, &dt, &extra, &[]).await;
        assert_eq!(code, Some(1), "{problem}\n{log}");
        assert_eq!(
            problem["type"],
            "urn:darktrace-export:problem:threatq-error"
        );
        assert!(
            problem["detail"].as_str().unwrap().contains("credentials"),
            "{problem}"
        );
        assert!(
            !log.contains("wrong-pass-0") && !log.contains("wrong-secret-0"),
            "{log}"
        );
    }
    assert!(dt.calls().is_empty(), "Darktrace was called");
    assert_eq!(names(&dt), ["stray.example"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_that_cannot_be_read_ends_the_run_with_nothing_changed() {
    let tq = threatq(collection()).await;
    tq.fail_page(1, 500);
    let dt = darktrace(&["stray.example"]).await;
    let extra = [USER[0], USER[1], ("DARKTRACE_MAX_RETRIES", "1")];
    let (code, problem, log) = run_pull(&tq, &dt, &extra, &[]).await;
    assert_eq!(code, Some(1), "{problem}\n{log}");
    assert_eq!(
        problem["type"],
        "urn:darktrace-export:problem:threatq-error"
    );
    assert!(log.contains("retrying"), "the page was retried:\n{log}");
    assert!(dt.calls().is_empty(), "Darktrace was called");
    assert_eq!(names(&dt), ["stray.example"]);
}

/// An on-premises ThreatQ with its own self-signed certificate: refused as it is, trusted
/// through THREATQ_CA_FILE or THREATQ_CERT_SHA256, the same settings as Darktrace's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_self_signed_threatq_is_trusted_through_its_ca_file_or_fingerprint() {
    use darktrace_export::darktrace::tls::{Fingerprint, ca_certificates};
    use darktrace_export::simulator::tls::SelfSigned;

    let identity = SelfSigned::generate(&[]).unwrap();
    let mut config = ThreatqSimConfig::new(CLIENT_ID, EMAIL, PASSWORD);
    config.collections.insert(HASH.into(), collection());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tq = ThreatqSim::start_tls(listener, &identity, config).unwrap();
    assert!(tq.url().starts_with("https://"));
    let dt = darktrace(&[]).await;

    let (code, problem, log) = run_pull(&tq, &dt, &USER, &["--dry-run"]).await;
    assert_eq!(code, Some(1), "{problem}\n{log}");
    assert_eq!(
        problem["type"],
        "urn:darktrace-export:problem:threatq-error"
    );
    let detail = problem["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("TLS with ThreatQ failed") && detail.contains("THREATQ_CA_FILE"),
        "a refused certificate reads as what it is: {problem}"
    );
    assert_eq!(
        tq.token_grants(),
        0,
        "credentials went to an untrusted ThreatQ"
    );

    let pem = std::env::temp_dir().join(format!("tq-cert-{}.pem", std::process::id()));
    std::fs::write(&pem, &identity.cert_pem).unwrap();
    let pem_path = pem.to_str().unwrap().to_owned();
    let der = ca_certificates(identity.cert_pem.as_bytes(), "THREATQ_CA_FILE").unwrap();
    let pin = Fingerprint::of(der[0].as_ref()).to_string();
    for trust in [
        ("THREATQ_CA_FILE", pem_path.as_str()),
        ("THREATQ_CERT_SHA256", pin.as_str()),
    ] {
        let extra = [USER[0], USER[1], trust];
        let (code, report, log) = run_pull(&tq, &dt, &extra, &["--dry-run"]).await;
        assert_eq!(code, Some(0), "{}: {report}\n{log}", trust.0);
        assert_eq!(report["summary"]["received"], 5, "{report}");
    }
    std::fs::remove_file(&pem).unwrap();
}

/// A collection hash ThreatQ does not know is named as THREATQ_COLLECTION's problem.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_collection_is_named_as_such() {
    let tq = threatq(collection()).await;
    let dt = darktrace(&["stray.example"]).await;
    let extra = [USER[0], USER[1], ("THREATQ_COLLECTION", "no-such-hash")];
    let (code, problem, log) = run_pull(&tq, &dt, &extra, &[]).await;
    assert_eq!(code, Some(1), "{problem}\n{log}");
    let detail = problem["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("THREATQ_COLLECTION") && detail.contains("'no-such-hash'"),
        "{problem}"
    );
    assert!(dt.calls().is_empty(), "Darktrace was called");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_over_the_cap_is_refused_unless_forced() {
    let tq = threatq(collection()).await;
    let dt = darktrace(&["a.example", "b.example", "c.example"]).await;
    let extra = [USER[0], USER[1], ("SYNC_MAX_REMOVALS", "2")];
    let (code, problem, log) = run_pull(&tq, &dt, &extra, &[]).await;
    assert_eq!(code, Some(1), "{problem}\n{log}");
    assert_eq!(problem["type"], "urn:darktrace-export:problem:sync-cap");
    assert_eq!(problem["planned_removals"], 3);
    assert_eq!(names(&dt), ["a.example", "b.example", "c.example"]);

    let (code, report, log) = run_pull(&tq, &dt, &extra, &["--force"]).await;
    assert_eq!(code, Some(0), "{report}\n{log}");
    assert_eq!(names(&dt), ["198.51.100.7", "one.example", "two.example"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_collection_never_empties_the_source() {
    let tq = threatq(Vec::new()).await;
    let dt = darktrace(&["kept.example"]).await;
    let (code, problem, log) = run_pull(&tq, &dt, &USER, &[]).await;
    assert_eq!(code, Some(1), "{problem}\n{log}");
    assert_eq!(problem["exportable"], 0, "{problem}");
    assert_eq!(names(&dt), ["kept.example"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_prints_the_plan_and_changes_nothing() {
    let tq = threatq(collection()).await;
    let dt = darktrace(&["stray.example", "revoked.example"]).await;
    let (code, report, log) = run_pull(&tq, &dt, &USER, &["--dry-run"]).await;
    assert_eq!(code, Some(0), "{report}\n{log}");
    assert_eq!(report["dry_run"], true);
    assert_eq!(report["summary"]["would_export"], 3, "{report}");
    assert_eq!(report["removals"][0]["outcome"], "would_remove", "{report}");
    assert!(dt.calls().iter().all(|c| c.method == "GET"), "only reads");
    assert_eq!(names(&dt), ["revoked.example", "stray.example"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_without_threatq_or_with_a_bad_setting_exits_2() {
    let output = helpers::binary()
        .args(["pull"])
        .env("DARKTRACE_HOST", "127.0.0.1:9")
        .env("DARKTRACE_PUBLIC_TOKEN", PUBLIC)
        .env("DARKTRACE_PRIVATE_TOKEN", PRIVATE)
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("THREATQ_URL"));

    let tq = threatq(collection()).await;
    let dt = darktrace(&[]).await;
    for (setting, extra) in [
        ("PULL_MODE", [USER[0], USER[1], ("PULL_MODE", "mirror")]),
        (
            "THREATQ_CLIENT_SECRET",
            [USER[0], USER[1], ("THREATQ_CLIENT_SECRET", SECRET)],
        ),
        (
            "THREATQ_PAGE_SIZE",
            [USER[0], USER[1], ("THREATQ_PAGE_SIZE", "0")],
        ),
    ] {
        let (code, _, log) = run_pull(&tq, &dt, &extra, &[]).await;
        assert_eq!(code, Some(2), "{setting}: {log}");
        assert!(log.starts_with(setting), "{setting}: {log}");
        assert_no_secret(&log);
    }
    assert_eq!(tq.token_grants(), 0);
}

/// The password grant as each real client sends it, and what the collection route refuses.
#[tokio::test]
async fn the_simulator_takes_the_password_grant_in_each_form_and_refuses_bearer_in_lowercase() {
    let tq = threatq(collection()).await;
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let token_url = format!("{}/api/token", tq.url());
    let user = json!({"email": EMAIL, "password": PASSWORD});
    let all = json!({"grant_type": "password", "client_id": CLIENT_ID, "email": EMAIL, "password": PASSWORD});
    let form = [
        ("grant_type", "password"),
        ("client_id", CLIENT_ID),
        ("email", EMAIL),
        ("password", PASSWORD),
    ];
    let sdk = http
        .post(format!(
            "{token_url}?grant_type=password&client_id={CLIENT_ID}"
        ))
        .json(&user);
    let json_body = http.post(&token_url).json(&all);
    let form_body = http.post(&token_url).form(&form);
    let mut tokens = Vec::new();
    for request in [sdk, json_body, form_body] {
        let answer: Value = request.send().await.unwrap().json().await.unwrap();
        assert_eq!(answer["token_type"], "Bearer", "{answer}");
        tokens.push(answer["access_token"].as_str().unwrap().to_owned());
    }
    assert_eq!(tq.grants(), ["sdk", "json", "form"]);

    let wrong = http
        .post(&token_url)
        .json(&json!({"grant_type": "password", "client_id": CLIENT_ID, "email": EMAIL, "password": "nope"}))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);

    let page = format!(
        "{}/api/indicators/query/hash/{HASH}?limit=2&cursorMark=*",
        tq.url()
    );
    let lower = http
        .get(&page)
        .header("Authorization", format!("bearer {}", tokens[0]))
        .send()
        .await
        .unwrap();
    assert_eq!(lower.status(), 401);
    assert_eq!(tq.lowercase_bearer_refused(), 1);
    let page: Value = http
        .get(&page)
        .header("Authorization", format!("Bearer {}", tokens[0]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["total"], 5);
    assert_eq!(page["data"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn the_simulator_refuses_a_token_past_its_ttl() {
    let mut config = ThreatqSimConfig::new(CLIENT_ID, EMAIL, PASSWORD);
    config.token_ttl = Duration::ZERO;
    config.collections.insert(HASH.into(), collection());
    let tq = ThreatqSim::start_local(config).await.unwrap();
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let answer: Value = http
        .post(format!("{}/api/token", tq.url()))
        .form(&[
            ("grant_type", "password"),
            ("client_id", CLIENT_ID),
            ("email", EMAIL),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let status = http
        .get(format!(
            "{}/api/indicators/query/hash/{HASH}?limit=2&cursorMark=*",
            tq.url()
        ))
        .header(
            "Authorization",
            format!("Bearer {}", answer["access_token"].as_str().unwrap()),
        )
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 401);
}

/// The test configuration for `dt`, pulling `tq`'s collection two items a page.
fn config_pulling(tq_url: &str, dt: &Simulator) -> darktrace_export::config::Config {
    let mut config = helpers::config_for(dt);
    helpers::quick_retries(&mut config);
    config.threatq = Some(ThreatqConfig {
        base_url: tq_url.parse().unwrap(),
        client_id: CLIENT_ID.into(),
        auth: ThreatqAuth::Password {
            email: EMAIL.into(),
            password: SecretString::from(PASSWORD),
        },
        collection: HASH.into(),
        page_size: 2,
        trust: darktrace_export::config::TlsTrust::public_roots(
            darktrace_export::config::THREATQ_TRUST,
        ),
        mode: PullMode::Sync,
        interval: None,
        timeout: Duration::from_secs(10),
        max_retries: 1,
    });
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_pull_answers_the_report_and_409_while_a_pull_runs() {
    let tq = threatq(collection()).await;
    let dt = darktrace(&["stray.example"]).await;
    let config = config_pulling(&tq.url(), &dt);
    let app = helpers::spawn_with(dt, config).await;

    let anonymous = app.http.post(app.url("/pull")).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);

    // A collection posted here (meant for /sync) is refused, not dropped while a pull runs.
    let with_body = app.post("/pull", &json!([fqdn("posted.example")])).await;
    assert_eq!(with_body.0, 400, "{:#}", with_body.1);
    assert!(
        with_body.1["detail"].as_str().unwrap().contains("/sync"),
        "{:#}",
        with_body.1
    );
    assert_eq!(tq.pages_served(), 0, "ThreatQ was read");
    assert_eq!(names(&app.sim), ["stray.example"]);

    let dry = app.post_empty("/pull?dry_run=true").await;
    assert_eq!(dry.status(), 200);
    let dry: Value = dry.json().await.unwrap();
    assert_eq!(dry["dry_run"], true);
    assert_eq!(names(&app.sim), ["stray.example"]);

    tq.hold_pages();
    let first = tokio::spawn({
        let request = app.http.post(app.url("/pull")).bearer_auth(API_TOKEN);
        async move { request.send().await.unwrap() }
    });
    helpers::eventually("the first pull waits on ThreatQ", || tq.held() == 1).await;
    let second = app.post_empty("/pull").await;
    let problem = helpers::expect_problem(second, 409).await;
    assert_eq!(
        problem["type"],
        "urn:darktrace-export:problem:pull-in-progress"
    );
    let in_progress = problem.clone();
    // A /sync of the same source waits its turn too.
    let sync = app
        .http
        .post(app.url("/sync"))
        .bearer_auth(API_TOKEN)
        .json(&json!([fqdn("x.example")]))
        .send()
        .await
        .unwrap();
    let problem = helpers::expect_problem(sync, 409).await;
    assert_eq!(
        problem["type"],
        "urn:darktrace-export:problem:sync-in-progress"
    );
    tq.release();
    let first = tokio::time::timeout(Duration::from_secs(30), first)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.status(), 200);
    let report: Value = first.json().await.unwrap();
    assert_eq!(report["summary"]["exported"], 3, "{report}");
    let spec = crate::spec::Spec::load();
    spec.validate("#/components/schemas/SyncReport", &report)
        .unwrap();
    spec.validate("#/components/schemas/PullRefusal", &in_progress)
        .unwrap();
    assert_eq!(
        names(&app.sim),
        ["198.51.100.7", "one.example", "two.example"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_threatq_is_a_502_problem_and_health_stays_green() {
    let closed = helpers::ClosedPort::new();
    let dt = darktrace(&[]).await;
    let config = config_pulling(&closed.url(), &dt);
    let app = helpers::spawn_with(dt, config).await;
    let response = app.post_empty("/pull").await;
    let problem = helpers::expect_problem(response, 502).await;
    assert_eq!(
        problem["type"],
        "urn:darktrace-export:problem:threatq-error"
    );
    for probe in ["/healthz", "/readyz"] {
        let status = app.http.get(app.url(probe)).send().await.unwrap().status();
        assert_eq!(status, 200, "{probe}");
    }
    assert!(app.sim.calls().is_empty());
}

#[tokio::test]
async fn post_pull_without_threatq_is_a_clear_409_problem() {
    let app = helpers::spawn().await;
    let response = app.post_empty("/pull").await;
    let problem = helpers::expect_problem(response, 409).await;
    assert_eq!(
        problem["type"],
        "urn:darktrace-export:problem:pull-not-configured"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schedule_pulls_once_per_tick_one_at_a_time() {
    let tq = threatq(collection()).await;
    let dt = darktrace(&["stray.example"]).await;
    let state = darktrace_export::app::app_state(config_pulling(&tq.url(), &dt)).unwrap();
    let puller = state.pull.clone().expect("a pull is configured");
    let (tick, ticks) = tokio::sync::mpsc::channel(2);
    tick.send(()).await.unwrap();
    tick.send(()).await.unwrap();
    drop(tick);
    tokio::time::timeout(
        Duration::from_secs(30),
        darktrace_export::pull::schedule::run(puller, ticks),
    )
    .await
    .expect("the schedule ends with its ticks");
    // Two whole pulls of three pages and the end page each, on one token.
    assert_eq!(tq.pages_served(), 8);
    assert_eq!(tq.token_grants(), 1);
    assert_eq!(names(&dt), ["198.51.100.7", "one.example", "two.example"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_tries_the_threatq_token_and_the_first_page_one_line_each() {
    let tq = threatq(collection()).await;
    let dt = darktrace(&[]).await;
    let settings = |password: &'static str| {
        [
            ("THREATQ_URL", tq.url()),
            ("THREATQ_CLIENT_ID", CLIENT_ID.to_owned()),
            ("THREATQ_COLLECTION", HASH.to_owned()),
            ("THREATQ_EMAIL", EMAIL.to_owned()),
            ("THREATQ_PASSWORD", password.to_owned()),
        ]
    };
    let good = settings(PASSWORD);
    let extra: Vec<(&str, &str)> = good.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (code, stdout) = helpers::run_check(&dt.url(), &extra).await;
    assert_eq!(code, Some(0), "{stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert!(lines[1].starts_with("threatq token: ok"), "{stdout}");
    assert!(lines[2].contains("holds 5 items"), "{stdout}");

    let bad = settings("wrong-pass-1");
    let extra: Vec<(&str, &str)> = bad.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (code, stdout) = helpers::run_check(&dt.url(), &extra).await;
    assert_eq!(code, Some(1), "{stdout}");
    assert!(
        stdout.lines().nth(1).unwrap().contains("credentials"),
        "{stdout}"
    );
    assert!(!stdout.contains("wrong-pass-1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn threatq_answering_503_is_retried_and_the_pull_goes_on() {
    let mut config = ThreatqSimConfig::new(CLIENT_ID, EMAIL, PASSWORD);
    config.collections.insert(HASH.into(), collection());
    config.fail_first = 2;
    config.fail_status = 503;
    let tq = ThreatqSim::start_local(config).await.unwrap();
    let dt = darktrace(&[]).await;
    let (code, report, log) = run_pull(&tq, &dt, &USER, &[]).await;
    assert_eq!(code, Some(0), "{report}\n{log}");
    assert!(log.contains("ThreatQ call failed; retrying"), "{log}");
    assert_eq!(names(&dt).len(), 3);
}

/// `simulate-threatq` as its own process: a collection file in the `{"data": [...]}` form,
/// a token by client credentials, and the first page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulate_threatq_serves_a_collection_file_by_cursor() {
    use tokio::io::AsyncBufReadExt;
    let dir = std::env::temp_dir().join(format!("simulate-threatq-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("collection.json");
    std::fs::write(&file, json!({"total": 5, "data": collection()}).to_string()).unwrap();
    let mut child = helpers::binary()
        .args(["simulate-threatq", "--listen", "127.0.0.1:0"])
        .args([
            "--client-id",
            CLIENT_ID,
            "--email",
            EMAIL,
            "--password",
            PASSWORD,
        ])
        .args(["--client-secret", SECRET])
        .arg("--collection")
        .arg(format!("{HASH}={}", file.display()))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("the simulator starts")
        .unwrap()
        .expect("it prints its address");
    let _ = std::fs::remove_dir_all(&dir);
    let url = line.rsplit(' ').next().unwrap().to_owned();
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let token: Value = http
        .post(format!("{url}/api/token"))
        .basic_auth(CLIENT_ID, Some(SECRET))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let bearer = format!("Bearer {}", token["access_token"].as_str().unwrap());
    let get = |cursor: String| {
        http.get(format!("{url}/api/indicators/query/hash/{HASH}"))
            .query(&[("limit", "3"), ("cursorMark", cursor.as_str())])
            .header("Authorization", bearer.clone())
            .send()
    };
    let first: Value = get("*".into()).await.unwrap().json().await.unwrap();
    assert_eq!(first["total"], 5);
    assert_eq!(first["data"].as_array().unwrap().len(), 3);
    let cursor = first["nextCursorMark"].as_str().unwrap().to_owned();
    let second: Value = get(cursor.clone()).await.unwrap().json().await.unwrap();
    assert_eq!(second["data"].as_array().unwrap().len(), 2);
    let next = second["nextCursorMark"].as_str().unwrap().to_owned();
    assert_ne!(next, cursor);
    let end: Value = get(next).await.unwrap().json().await.unwrap();
    assert_eq!(end["data"], json!({}), "ThreatQ's end page: {end}");
    child.kill().await.unwrap();
}

/// `simulate-threatq --tls-cert-out FILE` serves HTTPS with the certificate it writes, which
/// a pull trusts through THREATQ_CA_FILE.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulate_threatq_serves_https_with_the_certificate_it_writes() {
    use tokio::io::AsyncBufReadExt;
    let dir = std::env::temp_dir().join(format!("simulate-threatq-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (file, pem) = (dir.join("collection.json"), dir.join("threatq.pem"));
    std::fs::write(&file, json!(collection()).to_string()).unwrap();
    let mut child = helpers::binary()
        .args(["simulate-threatq", "--listen", "127.0.0.1:0"])
        .args(["--client-id", CLIENT_ID, "--email", EMAIL])
        .args(["--password", PASSWORD])
        .arg("--collection")
        .arg(format!("{HASH}={}", file.display()))
        .arg("--tls-cert-out")
        .arg(&pem)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("the simulator starts")
        .unwrap()
        .expect("it prints its address");
    let url = line.rsplit(' ').next().unwrap().to_owned();
    assert!(url.starts_with("https://127.0.0.1:"), "{line}");
    let dt = darktrace(&[]).await;
    let ca = pem.to_str().unwrap().to_owned();
    let extra = [USER[0], USER[1], ("THREATQ_CA_FILE", ca.as_str())];
    let (code, report, log) = run_pull_at(&url, &dt, &extra, &["--dry-run"]).await;
    assert_eq!(code, Some(0), "{report}\n{log}");
    assert_eq!(report["summary"]["received"], 5, "{report}");
    child.kill().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
