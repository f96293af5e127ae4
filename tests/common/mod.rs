//! Test harness: the real app on a loopback port 0, against the simulator on another.
#![allow(dead_code)]

pub mod process;

use std::net::SocketAddr;

use darktrace_export::app::Application;
use darktrace_export::config::{Config, DarktraceConfig};
use darktrace_export::simulator::Simulator;
use secrecy::SecretString;
use serde_json::Value;

pub const PUBLIC: &str = "test-public-token";
pub const PRIVATE: &str = "test-private-token";
pub const API_TOKEN: &str = "test-api-token";

pub struct TestApp {
    pub addr: SocketAddr,
    pub sim: Simulator,
    pub http: reqwest::Client,
}

/// A configuration pointing at `sim`, with one API token and fast retries.
pub fn config_for(sim: &Simulator) -> Config {
    let mut darktrace = DarktraceConfig::new(sim.url().parse().unwrap(), PUBLIC, PRIVATE);
    darktrace.max_retries = 2;
    let mut config = Config::new(darktrace);
    config.api_tokens = vec![SecretString::from(API_TOKEN)];
    config.allow_unauthenticated = false;
    config
}

pub async fn simulator() -> Simulator {
    Simulator::start_local(PUBLIC, PRIVATE).await.unwrap()
}

/// Starts the app with the default test configuration.
pub async fn spawn() -> TestApp {
    let sim = simulator().await;
    let config = config_for(&sim);
    spawn_with(sim, config).await
}

/// Starts the app with `config` against `sim`.
pub async fn spawn_with(sim: Simulator, config: Config) -> TestApp {
    if std::env::var_os("TEST_LOG").is_some() {
        darktrace_export::telemetry::init(darktrace_export::config::LogFormat::Text);
    }
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let app = Application::build(config, listener).unwrap();
    let addr = app.local_addr();
    tokio::spawn(app.run_until(std::future::pending()));
    TestApp {
        addr,
        sim,
        http: reqwest::Client::builder().no_proxy().build().unwrap(),
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// POSTs a JSON body to `path` with the API token.
    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let response = self
            .http
            .post(self.url(path))
            .bearer_auth(API_TOKEN)
            .json(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }

    pub async fn export(&self, body: &Value) -> (u16, Value) {
        self.post("/export", body).await
    }

    /// The POSTs Darktrace received.
    pub fn posts(&self) -> Vec<Value> {
        self.sim
            .calls()
            .into_iter()
            .filter(|c| c.method == "POST")
            .map(|c| serde_json::from_slice(&c.body).unwrap())
            .collect()
    }
}

/// The example ThreatQ collection shipped in `examples/`.
pub fn example_collection() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/threatq-collection.json"
    ))
    .unwrap();
    serde_json::from_str(&text).unwrap()
}

/// `(outcome, reason)` of every result.
pub fn outcomes(report: &Value) -> Vec<(String, String)> {
    report["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["outcome"].as_str().unwrap().to_owned(),
                r["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Checks the invariants every answer keeps: one result per item, in order, and a summary
/// that adds up.
pub fn assert_accounts_for_every_item(report: &Value, received: usize) {
    let results = report["results"].as_array().unwrap();
    assert_eq!(results.len(), received);
    for (i, r) in results.iter().enumerate() {
        assert_eq!(r["index"], i);
    }
    let s = &report["summary"];
    assert_eq!(s["received"], received);
    let sum: u64 = [
        "exported",
        "would_export",
        "skipped",
        "invalid",
        "failed",
        "removed",
    ]
    .iter()
    .map(|k| s[k].as_u64().unwrap())
    .sum::<u64>()
        // Dry runs of `/remove` and `/sync` also count `would_remove` (left out when zero).
        + s["would_remove"].as_u64().unwrap_or(0);
    // A sync's entries under `removals` are counted by outcome too.
    let removals = report["removals"].as_array().map_or(0, Vec::len);
    assert_eq!(s["removals"].as_u64().unwrap_or(0), removals as u64);
    assert_eq!(sum, (received + removals) as u64);
}

/// Retries without real waiting worth the name: failure tests stay quick.
pub fn quick_retries(config: &mut Config) {
    config.darktrace.backoff = darktrace_export::darktrace::retry::Backoff {
        base: std::time::Duration::from_millis(2),
        cap: std::time::Duration::from_millis(10),
    };
}

/// The token pair of a read-only API user (no "Edit Domains"), accepted by
/// [`simulator_with_readonly`].
pub const READONLY_PUBLIC: &str = "readonly-public-token";
pub const READONLY_PRIVATE: &str = "readonly-private-token";

/// A simulator that knows the test tokens and a read-only pair.
pub async fn simulator_with_readonly() -> Simulator {
    use darktrace_export::simulator::{Faults, TokenPair};
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    Simulator::start(
        listener,
        vec![
            TokenPair {
                public: PUBLIC.into(),
                private: PRIVATE.into(),
                can_edit: true,
            },
            TokenPair {
                public: READONLY_PUBLIC.into(),
                private: READONLY_PRIVATE.into(),
                can_edit: false,
            },
        ],
        Faults::default(),
    )
    .unwrap()
}

/// A simulator serving HTTPS with a fresh self-signed certificate, and that certificate.
pub async fn tls_simulator() -> (Simulator, darktrace_export::simulator::SelfSigned) {
    use darktrace_export::simulator::{Faults, SelfSigned, TokenPair};
    let identity = SelfSigned::generate(&[]).unwrap();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let sim = Simulator::start_tls(
        listener,
        &identity,
        vec![TokenPair {
            public: PUBLIC.into(),
            private: PRIVATE.into(),
            can_edit: true,
        }],
        Faults::default(),
    )
    .unwrap();
    (sim, identity)
}

/// A loopback port nothing listens on.
pub fn closed_port() -> u16 {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    probe.local_addr().unwrap().port()
}

/// Two indicators that pass screening: one FQDN, one IPv4.
pub fn two_indicators() -> Value {
    serde_json::json!([
        {"type": "FQDN", "value": "a.example"},
        {"type": "IP Address", "value": "198.51.100.7"}
    ])
}

impl TestApp {
    /// [`TestApp::export`], failing the test instead of hanging if no answer comes.
    pub async fn export_or_fail(&self, body: &Value) -> (u16, Value) {
        tokio::time::timeout(std::time::Duration::from_secs(120), self.export(body))
            .await
            .expect("the service answers; a failing Darktrace must not hang it")
    }
}

/// The real binary with an empty environment (plus PATH), so neither the host's settings
/// nor its proxy variables leak in; each test adds what it needs.
pub fn binary() -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_darktrace-export"));
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .kill_on_drop(true);
    cmd
}

/// Runs `darktrace-export check` against `host` with the test tokens and `extra`
/// variables; returns the exit code and what it printed on stdout.
pub async fn run_check(host: &str, extra: &[(&str, &str)]) -> (Option<i32>, String) {
    let output = binary()
        .arg("check")
        .env("DARKTRACE_HOST", host)
        .env("DARKTRACE_PUBLIC_TOKEN", PUBLIC)
        .env("DARKTRACE_PRIVATE_TOKEN", PRIVATE)
        .env("ALLOW_UNAUTHENTICATED", "true")
        .envs(extra.iter().copied())
        .output();
    let output = tokio::time::timeout(std::time::Duration::from_secs(120), output)
        .await
        .expect("check finishes")
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    (output.status.code(), stdout)
}

/// `darktrace-export simulate` as a child process with the test tokens and `extra`
/// arguments; returns it (killed on drop) and the URL it printed.
pub async fn simulate(extra: &[&str]) -> (tokio::process::Child, String) {
    use tokio::io::AsyncBufReadExt;
    let mut child = binary()
        .args([
            "simulate",
            "--listen",
            "127.0.0.1:0",
            "--public-token",
            PUBLIC,
            "--private-token",
            PRIVATE,
        ])
        .args(extra)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let line = tokio::time::timeout(std::time::Duration::from_secs(60), lines.next_line())
        .await
        .expect("the simulator starts")
        .unwrap()
        .expect("the simulator prints its address");
    let url = line.rsplit(' ').next().unwrap_or_default().to_owned();
    (child, url)
}

/// An app whose shutdown the test triggers: send on `stop` to begin it; `served` resolves
/// when the app has stopped.
pub struct ControlledApp {
    pub app: TestApp,
    pub state: darktrace_export::http::AppState,
    pub stop: tokio::sync::oneshot::Sender<()>,
    pub served: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Starts the app with `config` against `sim`, with a shutdown the test controls.
pub async fn spawn_controlled(sim: Simulator, config: Config) -> ControlledApp {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let app = Application::build(config, listener).unwrap();
    let addr = app.local_addr();
    let state = app.state().clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));
    ControlledApp {
        app: TestApp {
            addr,
            sim,
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
        },
        state,
        stop,
        served,
    }
}

/// Checks that `response` is an RFC 9457 problem with `status`, and returns its body.
pub async fn expect_problem(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status().as_u16(), status);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["status"], status, "{problem}");
    for field in ["type", "title", "detail"] {
        assert!(problem[field].is_string(), "{field} missing: {problem}");
    }
    problem
}

/// `n` FQDN indicators `host-<i>.example`.
pub fn fqdns(n: usize) -> Value {
    Value::Array(
        (0..n)
            .map(|i| serde_json::json!({"type": "FQDN", "value": format!("host-{i}.example")}))
            .collect(),
    )
}

/// Polls `done` (at most ten seconds) until it holds.
pub async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..500 {
        if done() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("never happened: {what}");
}

/// What the real binary logs (as text) from start until it listens, started against an
/// unreachable Darktrace with the test tokens and `extra` variables; then it is stopped.
pub async fn start_log(extra: &[(&str, &str)]) -> String {
    use tokio::io::AsyncBufReadExt;
    let mut child = binary()
        .env("DARKTRACE_HOST", "https://127.0.0.1:1")
        .env("DARKTRACE_PUBLIC_TOKEN", PUBLIC)
        .env("DARKTRACE_PRIVATE_TOKEN", PRIVATE)
        .env("API_TOKENS", API_TOKEN)
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .env("LOG_FORMAT", "text")
        .envs(extra.iter().copied())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let mut log = Vec::new();
    let read = async {
        while let Ok(Some(line)) = lines.next_line().await {
            let done = line.contains("listening");
            log.push(line);
            if done {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(60), read).await;
    let _ = child.kill().await;
    log.join("\n")
}

/// `value` as screening with the default rules accepts it: the only way to a wire value.
pub fn checked(value: &str) -> darktrace_export::screen::WireValue {
    darktrace_export::screen::Screener::new(
        &darktrace_export::config::ScreenConfig::default(),
        None,
    )
    .check_value("FQDN", value)
    .expect("an exportable FQDN")
}
