//! Test harness: the real app on a loopback port 0, against the simulator on another.

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

/// A closed [`Gate`] in front of `sim`, and the test configuration that reaches `sim`
/// through it.
pub async fn config_behind_gate(sim: &Simulator) -> (Config, Gate) {
    let gate = Gate::start(sim.addr()).await;
    let mut config = config_for(sim);
    config.darktrace.base_url = gate.url().parse().unwrap();
    (config, gate)
}

/// Starts the app against a fresh simulator with the test configuration changed by `adjust`.
pub async fn spawn_adjusted(adjust: impl FnOnce(&mut Config)) -> TestApp {
    let sim = simulator().await;
    let mut config = config_for(&sim);
    adjust(&mut config);
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
        let response = self.post_as(path, API_TOKEN, body).await;
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }

    /// POSTs a JSON body to `path` with `token`, whatever the answer.
    pub async fn post_as(&self, path: &str, token: &str, body: &Value) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// POSTs to `path` with the API token and no body (`/pull`), whatever the answer.
    pub async fn post_empty(&self, path: &str) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .bearer_auth(API_TOKEN)
            .send()
            .await
            .unwrap()
    }

    /// POSTs raw `body` to `path` with the API token and `content_type`.
    pub async fn post_raw(
        &self,
        path: &str,
        content_type: Option<&str>,
        body: impl Into<reqwest::Body>,
    ) -> reqwest::Response {
        let mut request = self.http.post(self.url(path)).bearer_auth(API_TOKEN);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        request.body(body).send().await.unwrap()
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

/// A loopback port held closed: a socket is bound to it but never listens, so a connection
/// to it is refused, and no other socket (of this test or another) can take the port while
/// this value lives. Binding a listener and dropping it would free the port for the next
/// test to bind.
pub struct ClosedPort(tokio::net::TcpSocket);

impl ClosedPort {
    pub fn new() -> ClosedPort {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(([127, 0, 0, 1], 0).into()).unwrap();
        ClosedPort(socket)
    }

    pub fn port(&self) -> u16 {
        self.0.local_addr().unwrap().port()
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port())
    }
}

/// A loopback relay in front of Darktrace that holds every connection it accepts until
/// [`Gate::open`]. While it is closed, the calls a client has sent wait there and can be
/// counted: how many run at once, or what the service does while they wait, is then
/// certain instead of likely, as it would be with an added latency.
pub struct Gate {
    pub addr: SocketAddr,
    held: std::sync::Arc<tokio::sync::watch::Sender<usize>>,
    open: tokio::sync::watch::Sender<bool>,
}

impl Gate {
    /// A closed gate in front of `upstream`.
    pub async fn start(upstream: SocketAddr) -> Gate {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let held = std::sync::Arc::new(tokio::sync::watch::channel(0_usize).0);
        let (open, opened) = tokio::sync::watch::channel(false);
        let waiting = held.clone();
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let mut opened = opened.clone();
                let waiting = waiting.clone();
                tokio::spawn(async move {
                    waiting.send_modify(|n| *n += 1);
                    let _ = opened.wait_for(|open| *open).await;
                    waiting.send_modify(|n| *n -= 1);
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Gate { addr, held, open }
    }

    /// `http://<addr>`, for `DARKTRACE_HOST` or `config.darktrace.base_url`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Waits (at most a minute, failing the test then) until `n` connections wait at the
    /// gate at once.
    pub async fn until_held(&self, n: usize) {
        let mut held = self.held.subscribe();
        tokio::time::timeout(
            std::time::Duration::from_secs(60),
            held.wait_for(|held| *held >= n),
        )
        .await
        .unwrap_or_else(|_| panic!("never {n} Darktrace calls held at once"))
        .unwrap();
    }

    /// Lets every held connection and every later one through.
    pub fn open(&self) {
        self.open.send_replace(true);
    }
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
    let mut cmd = tokio::process::Command::from(process::command());
    cmd.kill_on_drop(true);
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

/// Puts `names` in Darktrace under `source`, as an earlier export (or another tool) would.
pub fn seed(app: &TestApp, source: &str, names: &[&str], expiry: Option<chrono::NaiveDateTime>) {
    app.sim.with_store_mut(|store| {
        store.add(
            names,
            &darktrace_export::simulator::store::AddOptions {
                source: Some(source.into()),
                expiry,
                ..Default::default()
            },
        )
    });
}

/// An active ThreatQ FQDN indicator.
pub fn fqdn(value: &str) -> Value {
    serde_json::json!({"type": "FQDN", "status": "Active", "value": value})
}

/// A whitelisted ThreatQ FQDN indicator, type and status as plain names.
pub fn whitelisted(value: &str) -> Value {
    serde_json::json!({"type": "FQDN", "status": "Whitelisted", "value": value})
}

/// A whitelisted ThreatQ FQDN indicator, type and status as `{"name": ...}` objects, the
/// shape ThreatQ's API returns them in.
pub fn whitelisted_named(value: &str) -> Value {
    serde_json::json!({"type": {"name": "FQDN"}, "status": {"name": "Whitelisted"}, "value": value})
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
