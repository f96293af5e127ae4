//! Secrets stay secret: the real binary at trace level, through a full export and its error
//! paths, never writes a token to its log or its answers.

use crate::helpers::process::Service;
use darktrace_export::simulator::{Faults, Simulator};
use serde_json::json;

const PUBLIC: &str = "pubtok-4f1c9a7e2b";
const PRIVATE: &str = "privtok-9d03be61c8";
const API_TOKENS: [&str; 2] = ["apitok-old-5a7e31", "apitok-new-c6b2f0"];
const SECRETS: [&str; 4] = [PUBLIC, PRIVATE, API_TOKENS[0], API_TOKENS[1]];

fn assert_no_secret(what: &str, text: &str) {
    for secret in SECRETS {
        assert!(
            !text.contains(secret),
            "{secret} appears in {what}:\n{text}"
        );
    }
}

/// Sends one request and checks its answer, headers included, for secrets.
async fn call(request: reqwest::RequestBuilder) -> u16 {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    assert_no_secret("response headers", &format!("{:?}", response.headers()));
    let body = response.text().await.unwrap();
    assert_no_secret("a response body", &body);
    status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_the_trace_log_or_an_answer() {
    let sim = Simulator::start_local(PUBLIC, PRIVATE).await.unwrap();
    let url = sim.url();
    let api_tokens = API_TOKENS.join(",");
    let mut service = Service::start(&[
        ("DARKTRACE_HOST", &url),
        ("DARKTRACE_PUBLIC_TOKEN", PUBLIC),
        ("DARKTRACE_PRIVATE_TOKEN", PRIVATE),
        ("API_TOKENS", &api_tokens),
        ("DARKTRACE_MAX_RETRIES", "1"),
        ("REQUEST_TIMEOUT_SECS", "1"),
        ("RUST_LOG", "trace"),
    ]);
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let export = |token: &str| {
        http.post(service.url("/export"))
            .bearer_auth(token)
            .json(&json!([{"type": "FQDN", "value": "evil.example"}, {"type": "IP Address", "value": "198.51.100.7"}]))
    };

    // A full export with each token, and an export Darktrace answers without lists.
    assert_eq!(call(export(API_TOKENS[0])).await, 200);
    assert_eq!(call(export(API_TOKENS[1])).await, 200);
    sim.set_faults(Faults {
        no_lists: true,
        ..Faults::default()
    });
    assert_eq!(call(export(API_TOKENS[0])).await, 200);

    // Refused requests.
    assert_eq!(call(export("apitok-old")).await, 401);
    let wrong_scheme = http
        .post(service.url("/export"))
        .header("authorization", format!("Basic {}", API_TOKENS[0]))
        .json(&json!([]));
    assert_eq!(call(wrong_scheme).await, 401);
    let not_json = http
        .post(service.url("/export"))
        .bearer_auth(API_TOKENS[0])
        .header("content-type", "application/json")
        .body("[{");
    assert_eq!(call(not_json).await, 400);

    // Darktrace failing: retried 503s, a permission refusal, a hang past the deadline.
    sim.set_faults(Faults {
        fail_next: 4,
        fail_status: 503,
        retry_after_secs: Some(0),
        ..Faults::default()
    });
    assert_eq!(call(export(API_TOKENS[0])).await, 502);
    sim.set_faults(Faults {
        fail_next: 1,
        fail_status: 403,
        ..Faults::default()
    });
    assert_eq!(call(export(API_TOKENS[0])).await, 502);
    sim.set_faults(Faults {
        hang: true,
        ..Faults::default()
    });
    assert_eq!(call(export(API_TOKENS[0])).await, 502);
    sim.set_faults(Faults::default());

    for path in ["/healthz", "/readyz", "/nowhere"] {
        call(http.get(service.url(path))).await;
    }

    service.signal("TERM");
    assert!(service.wait().success());
    let log = service.log();

    // The log really is at trace level and covers what happened, so its silence means something.
    assert!(
        log.contains("\"level\":\"TRACE\""),
        "no trace lines:\n{log}"
    );
    assert!(log.contains("batch finished"), "{log}");
    assert!(log.contains("retrying"), "{log}");
    assert!(
        sim.calls().len() >= 7,
        "Darktrace was called: {}",
        sim.calls().len()
    );
    assert_no_secret("the log", &log);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_given_in_a_file_stays_out_of_the_log_too() {
    let sim = Simulator::start_local(PUBLIC, PRIVATE).await.unwrap();
    let dir = std::env::temp_dir().join(format!("secrets-files-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let public = write("public", &format!("{PUBLIC}\n"));
    let private = write("private", &format!("{PRIVATE}\n"));
    let tokens = write("tokens", &API_TOKENS.join("\n"));
    let url = sim.url();
    let mut service = Service::start(&[
        ("DARKTRACE_HOST", &url),
        ("DARKTRACE_PUBLIC_TOKEN_FILE", &public),
        ("DARKTRACE_PRIVATE_TOKEN_FILE", &private),
        ("API_TOKENS_FILE", &tokens),
        ("RUST_LOG", "trace"),
    ]);
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let request = http
        .post(service.url("/export"))
        .bearer_auth(API_TOKENS[1])
        .json(&json!([{"type": "FQDN", "value": "evil.example"}]));
    assert_eq!(call(request).await, 200);
    service.signal("INT");
    assert!(service.wait().success());
    let _ = std::fs::remove_dir_all(&dir);
    let log = service.log();
    assert!(log.contains("\"level\":\"TRACE\""), "{log}");
    assert_no_secret("the log", &log);
}

/// The ThreatQ password (from a file), the tokens ThreatQ grants and the Darktrace tokens
/// stay out of a trace-level log through pulls that succeed, renew a token and fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn threatq_credentials_and_tokens_stay_out_of_the_log() {
    use darktrace_export::threatq_sim::{ThreatqSim, ThreatqSimConfig};
    const TQ_PASSWORD: &str = "tqpass-81d2c7e4";
    let sim = Simulator::start_local(PUBLIC, PRIVATE).await.unwrap();
    let mut config = ThreatqSimConfig::new("client-1", "user@example.org", TQ_PASSWORD);
    config.collections.insert(
        "h1".into(),
        vec![json!({"type": {"name": "FQDN"}, "value": "evil.example"})],
    );
    let tq = ThreatqSim::start_local(config).await.unwrap();
    let dir = std::env::temp_dir().join(format!("secrets-threatq-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let password = dir.join("password");
    std::fs::write(&password, format!("{TQ_PASSWORD}\n")).unwrap();
    let (dt_url, tq_url) = (sim.url(), tq.url());
    let mut service = Service::start(&[
        ("DARKTRACE_HOST", &dt_url),
        ("DARKTRACE_PUBLIC_TOKEN", PUBLIC),
        ("DARKTRACE_PRIVATE_TOKEN", PRIVATE),
        ("API_TOKENS", API_TOKENS[0]),
        ("THREATQ_URL", &tq_url),
        ("THREATQ_CLIENT_ID", "client-1"),
        ("THREATQ_EMAIL", "user@example.org"),
        ("THREATQ_PASSWORD_FILE", password.to_str().unwrap()),
        ("THREATQ_COLLECTION", "h1"),
        ("PULL_MODE", "export"),
        ("DARKTRACE_MAX_RETRIES", "0"),
        ("RUST_LOG", "trace"),
    ]);
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let pull = || http.post(service.url("/pull")).bearer_auth(API_TOKENS[0]);
    assert_eq!(call(pull()).await, 200);
    tq.revoke_tokens_after_pages(0);
    assert_eq!(call(pull()).await, 200);
    tq.fail_page(0, 500);
    assert_eq!(call(pull()).await, 502);
    service.signal("TERM");
    assert!(service.wait().success());
    let _ = std::fs::remove_dir_all(&dir);
    let log = service.log();
    assert!(log.contains("\"level\":\"TRACE\""), "{log}");
    assert!(log.contains("getting a new token"), "{log}");
    assert_no_secret("the log", &log);
    let granted = tq.issued_tokens();
    assert_eq!(granted.len(), 2);
    for secret in granted.iter().map(String::as_str).chain([TQ_PASSWORD]) {
        assert!(!log.contains(secret), "{secret} appears in the log");
    }
}
