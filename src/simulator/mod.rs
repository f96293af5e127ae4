//! A strict Darktrace `/intelfeed` simulator: it checks signatures over the exact bytes and
//! the date window as an appliance does, keeps entries per source, answers in the
//! appliance's shapes, and injects faults on request. It drives `--demo`, the tests and the
//! benchmarks.

pub mod faults;
pub mod store;
pub mod tls;
pub mod verify;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use chrono::{NaiveDateTime, Utc};
use serde_json::{Value, json};
use tokio::net::TcpListener;

pub use faults::Faults;
use store::AddOptions;
pub use store::Store;
pub use tls::{Authority, SelfSigned};
pub use verify::TokenPair;
use verify::{Refusal, SignedRequest};

/// `darktrace-export simulate`: the simulator alone.
#[derive(Debug, Clone, clap::Args)]
pub struct SimulateArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9443")]
    pub listen: SocketAddr,
    /// The public token clients must sign with.
    #[arg(long)]
    pub public_token: String,
    /// The private token (HMAC key).
    #[arg(long)]
    pub private_token: String,
    /// Milliseconds of latency added to every answer.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Answer the first N calls with --fail-status.
    #[arg(long, default_value_t = 0)]
    pub fail_first: u32,
    /// Status of the injected failures.
    #[arg(long, default_value_t = 503)]
    pub fail_status: u16,
    /// Retry-After seconds sent with the injected failures.
    #[arg(long)]
    pub retry_after: Option<u64>,
    /// Leave addedList/updatedList out of add answers (older appliances).
    #[arg(long)]
    pub no_lists: bool,
    /// Refuse the compact date form.
    #[arg(long)]
    pub refuse_compact_date: bool,
    /// Never answer any call (the client's timeout is what ends it).
    #[arg(long)]
    pub hang: bool,
    /// Apply the first N changes, then cut the connection instead of answering.
    #[arg(long, default_value_t = 0)]
    pub reset_after_change: u32,
    /// Seconds the appliance's clock is off by (negative: behind); past ±1800 every
    /// signed call gets API DATE ERROR.
    #[arg(long, default_value_t = 0, allow_hyphen_values = true)]
    pub clock_offset_secs: i64,
    /// Serve HTTPS with a fresh self-signed certificate, written in PEM to this file.
    #[arg(long)]
    pub tls_cert_out: Option<PathBuf>,
    /// A second token pair, without the "Edit Domains" permission: it may read, but a
    /// change gets 302 to /403.
    #[arg(long, requires = "readonly_private_token")]
    pub readonly_public_token: Option<String>,
    /// The private token of the read-only pair.
    #[arg(long, requires = "readonly_public_token")]
    pub readonly_private_token: Option<String>,
    /// With --tls-cert-out: make the certificate CA:TRUE, as `openssl req -x509` does.
    #[arg(long, requires = "tls_cert_out")]
    pub tls_ca_flagged: bool,
    /// Check a GET's signature over its percent-decoded query, as some signers compute
    /// it: a source name holding a space or `&` then fails only on the source's read.
    #[arg(long)]
    pub sign_decoded_query: bool,
}

/// One call the simulator received, for tests to inspect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRecord {
    pub method: String,
    /// Path and query, as received.
    pub target: String,
    pub body: Bytes,
    /// The status answered, or [`NO_ANSWER`] for a call left hanging or cut off.
    pub status: u16,
    /// The `DTAPI-Date` header as received.
    pub date: Option<String>,
}

/// The status recorded for a call that got no complete answer.
pub const NO_ANSWER: u16 = 0;

#[derive(Debug, Default)]
struct Shared {
    tokens: Vec<TokenPair>,
    store: Mutex<Store>,
    faults: Mutex<Faults>,
    calls: Mutex<Vec<CallRecord>>,
    /// Keep no call records (set for load runs and the standalone simulator).
    skip_recording: AtomicBool,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

/// A running simulator: its address, and a window on what it holds and saw.
#[derive(Debug, Clone)]
pub struct Simulator {
    addr: SocketAddr,
    scheme: &'static str,
    shared: Arc<Shared>,
}

impl Simulator {
    /// Starts on `listener` (use port 0 in tests) in a background task.
    pub fn start(
        listener: TcpListener,
        tokens: Vec<TokenPair>,
        faults: Faults,
    ) -> std::io::Result<Simulator> {
        let addr = listener.local_addr()?;
        Ok(Simulator::launch(listener, addr, "http", tokens, faults))
    }

    /// Starts on `listener` serving HTTPS with `identity`'s certificate.
    pub fn start_tls(
        listener: TcpListener,
        identity: &SelfSigned,
        tokens: Vec<TokenPair>,
        faults: Faults,
    ) -> std::io::Result<Simulator> {
        let addr = listener.local_addr()?;
        let listener = tls::TlsListener::new(listener, identity)?;
        Ok(Simulator::launch(listener, addr, "https", tokens, faults))
    }

    fn launch<L>(
        listener: L,
        addr: SocketAddr,
        scheme: &'static str,
        tokens: Vec<TokenPair>,
        faults: Faults,
    ) -> Simulator
    where
        L: axum::serve::Listener,
        L::Addr: std::fmt::Debug,
    {
        let shared = Arc::new(Shared {
            tokens,
            faults: Mutex::new(faults),
            ..Shared::default()
        });
        let app = router(shared.clone());
        tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                tracing::error!(%error, "simulator stopped");
            }
        });
        Simulator {
            addr,
            scheme,
            shared,
        }
    }

    /// Starts on a free loopback port with one token pair that may edit.
    pub async fn start_local(public: &str, private: &str) -> std::io::Result<Simulator> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        Simulator::start(
            listener,
            vec![TokenPair {
                public: public.into(),
                private: private.into(),
                can_edit: true,
            }],
            Faults::default(),
        )
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` (`https://` when serving TLS), for `DARKTRACE_HOST`.
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    pub fn set_faults(&self, faults: Faults) {
        *self.shared.faults.lock().expect("faults lock") = faults;
    }

    /// Whether to keep a record (body included) of every call for [`Simulator::calls`]. On by
    /// default; turned off where nothing reads the records, since they grow with every call.
    pub fn record_calls(&self, record: bool) {
        self.shared.skip_recording.store(!record, Ordering::Relaxed);
    }

    pub fn calls(&self) -> Vec<CallRecord> {
        self.shared.calls.lock().expect("calls lock").clone()
    }

    /// The most calls that were in progress at once.
    pub fn max_in_flight(&self) -> usize {
        self.shared.max_in_flight.load(Ordering::SeqCst)
    }

    /// Read access to the entries (expired ones dropped first).
    pub fn with_store<T>(&self, f: impl FnOnce(&Store) -> T) -> T {
        let mut store = self.shared.store.lock().expect("store lock");
        store.expire(Utc::now().naive_utc());
        f(&store)
    }

    /// Write access, to seed entries in tests and demos.
    pub fn with_store_mut<T>(&self, f: impl FnOnce(&mut Store) -> T) -> T {
        f(&mut self.shared.store.lock().expect("store lock"))
    }
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/intelfeed", any(intelfeed))
        .with_state(shared)
}

/// Counts a call in flight for as long as it lives.
struct InFlight<'a>(&'a Shared);

impl<'a> InFlight<'a> {
    fn enter(shared: &'a Shared) -> Self {
        let now = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        shared.max_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight(shared)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn intelfeed(
    State(shared): State<Arc<Shared>>,
    method: Method,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let _in_flight = InFlight::enter(&shared);
    let latency = shared.faults.lock().expect("faults lock").latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let query = query.unwrap_or_default();
    let date = headers
        .get("dtapi-date")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let record = |status: u16, body: Bytes| CallRecord {
        method: method.to_string(),
        target: if query.is_empty() {
            "/intelfeed".to_owned()
        } else {
            format!("/intelfeed?{query}")
        },
        body,
        status,
        date: date.clone(),
    };
    let (hang, injected) = {
        let mut faults = shared.faults.lock().expect("faults lock");
        let hang = faults.take_hang(method == Method::GET);
        let injected = (!hang)
            .then(|| faults.take_failure(method == Method::GET))
            .flatten();
        (hang, injected)
    };
    if hang {
        shared.record(|| record(NO_ANSWER, body));
        // Long enough for any client timeout; the task ends when the client goes away.
        tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
        return StatusCode::GATEWAY_TIMEOUT.into_response();
    }
    let (status, response) = match injected {
        Some((status, retry_after)) => injected_failure(status, retry_after),
        None => answer(&shared, &method, &query, &headers, &body),
    };
    shared.record(|| record(status, body));
    response
}

impl Shared {
    /// Keeps the call `make` describes, unless told to keep none.
    fn record(&self, make: impl FnOnce() -> CallRecord) {
        if self.skip_recording.load(Ordering::Relaxed) {
            return;
        }
        self.calls.lock().expect("calls lock").push(make());
    }
}

fn injected_failure(status: u16, retry_after: Option<u64>) -> (u16, Response) {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    if code.is_redirection() {
        // What an appliance does with a session it does not know.
        return redirect("/login");
    }
    let mut response = (code, "injected failure").into_response();
    if let Some(secs) = retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, secs.into());
    }
    (code.as_u16(), response)
}

fn answer(
    shared: &Shared,
    method: &Method,
    query: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> (u16, Response) {
    let faults = shared.faults.lock().expect("faults lock").clone();
    let header_text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let decoded;
    let signed_part: &[u8] = if *method == Method::GET && faults.sign_decoded_query {
        decoded = decoded_query(query);
        decoded.as_bytes()
    } else if *method == Method::GET {
        query.as_bytes()
    } else {
        body
    };
    let request = SignedRequest {
        token: header_text("dtapi-token"),
        date: header_text("dtapi-date"),
        signature: header_text("dtapi-signature"),
        path: "/intelfeed",
        signed_part,
    };
    let appliance_now = Utc::now() + chrono::Duration::seconds(faults.clock_offset_secs);
    let pair = match verify::verify(
        &request,
        &shared.tokens,
        appliance_now,
        !faults.refuse_compact_date,
    ) {
        Ok(pair) => pair,
        Err(Refusal::NotLoggedIn) => return redirect("/login"),
        Err(Refusal::Signature) => return appliance_error("API SIGNATURE ERROR"),
        Err(Refusal::Date) => return appliance_error("API DATE ERROR"),
    };
    let now = Utc::now().naive_utc();
    let mut store = shared.store.lock().expect("store lock");
    store.expire(now);
    match *method {
        Method::GET => json_answer(StatusCode::OK, read(&store, query)),
        Method::POST if !pair.can_edit => redirect("/403"),
        Method::POST => match parse_post(headers, body) {
            Ok(params) => {
                let answered = change(&mut store, &params, &faults);
                let changed = answered.0 == StatusCode::OK.as_u16();
                if changed && shared.faults.lock().expect("faults lock").take_reset() {
                    cut_off()
                } else {
                    answered
                }
            }
            Err(why) => json_answer(StatusCode::BAD_REQUEST, json!({ "error": why })),
        },
        _ => json_answer(
            StatusCode::METHOD_NOT_ALLOWED,
            json!({"error": "method not allowed"}),
        ),
    }
}

fn read(store: &Store, query: &str) -> Value {
    let mut source = None;
    let mut sources = false;
    let mut full = false;
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        match key.as_ref() {
            "source" => source = Some(value.into_owned()),
            "sources" => sources = value == "true",
            "fulldetails" => full = value == "true",
            _ => {}
        }
    }
    if sources {
        json!(store.sources())
    } else if full {
        json!(store.details(source.as_deref()))
    } else {
        json!(store.names(source.as_deref()))
    }
}

/// The parameters of a POST, from JSON or a form.
#[derive(Debug, Default)]
struct PostParams {
    fields: Vec<(String, Value)>,
}

impl PostParams {
    fn text(&self, key: &str) -> Option<String> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
    }

    fn flag(&self, key: &str) -> bool {
        self.text(key)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }
}

fn parse_post(headers: &HeaderMap, body: &[u8]) -> Result<PostParams, String> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type.starts_with("application/json") {
        let value: Value =
            serde_json::from_slice(body).map_err(|e| format!("invalid JSON: {e}"))?;
        let object = value.as_object().ok_or("body is not a JSON object")?;
        Ok(PostParams {
            fields: object.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        })
    } else {
        Ok(PostParams {
            fields: form_urlencoded::parse(body)
                .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
                .collect(),
        })
    }
}

fn change(store: &mut Store, params: &PostParams, faults: &Faults) -> (u16, Response) {
    let source = params.text("source");
    if params.text("removeall").is_some() {
        store.remove_all();
        return json_answer(StatusCode::OK, json!({"response": "SUCCESS"}));
    }
    if let Some(entry) = params.text("removeentry") {
        store.remove(&entry, source.as_deref());
        return json_answer(StatusCode::OK, json!({"response": "SUCCESS"}));
    }
    let list = params.text("addlist").or_else(|| params.text("addentry"));
    let Some(list) = list else {
        return json_answer(StatusCode::BAD_REQUEST, json!({"error": "nothing to do"}));
    };
    let expiry = match params.text("expiry") {
        Some(text) if !text.is_empty() => match parse_expiry(&text) {
            Some(x) => Some(x),
            None => {
                return json_answer(StatusCode::BAD_REQUEST, json!({"error": "invalid expiry"}));
            }
        },
        _ => None,
    };
    let names: Vec<&str> = list
        .split([',', '\n'])
        .filter(|name| !faults.reject_entries.iter().any(|r| r == name.trim()))
        .collect();
    let options = AddOptions {
        source,
        description: params.text("description"),
        expiry,
        hostname: params.flag("hostname"),
    };
    let result = store.add(&names, &options);
    let answer = if faults.bare_success {
        json!({"response": "SUCCESS"})
    } else if faults.no_lists {
        json!({"response": "SUCCESS", "added": result.added.len(), "updated": result.updated.len()})
    } else {
        json!({
            "response": "SUCCESS",
            "added": result.added.len(),
            "updated": result.updated.len(),
            "addedList": result.added,
            "updatedList": result.updated,
        })
    };
    json_answer(StatusCode::OK, answer)
}

fn parse_expiry(text: &str) -> Option<NaiveDateTime> {
    let text = text.trim().trim_end_matches('Z');
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S")
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S"))
        .ok()
}

fn json_answer(status: StatusCode, value: Value) -> (u16, Response) {
    (status.as_u16(), (status, axum::Json(value)).into_response())
}

/// The appliance's 400: a pretty-printed object keyed by the first path segment.
fn appliance_error(message: &str) -> (u16, Response) {
    let body = format!("{{\n  \"intelfeed\": \"{message}\"\n}}");
    let response = Response::builder()
        .status(StatusCode::BAD_REQUEST)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .expect("static response");
    (400, response)
}

/// An answer that starts and then breaks off, as when the connection drops after the
/// appliance has applied a change: the client cannot know whether it took effect.
fn cut_off() -> (u16, Response) {
    let broken = futures_util::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "simulated connection reset",
        ))
    });
    let response = Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(broken))
        .expect("static response");
    (NO_ANSWER, response)
}

fn redirect(to: &'static str) -> (u16, Response) {
    let response = Response::builder()
        .status(StatusCode::FOUND)
        .header(header::LOCATION, to)
        .body(Body::from(format!("Found. Redirecting to {to}")))
        .expect("static response");
    (302, response)
}

/// `a=b%20c&d=e+f` as `a=b c&d=e f`: the query as a signer that signs decoded values sees it.
fn decoded_query(query: &str) -> String {
    form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// Runs `simulate` until interrupted.
pub async fn run(args: SimulateArgs) -> std::io::Result<()> {
    let listener = TcpListener::bind(args.listen).await?;
    let faults = Faults {
        latency: std::time::Duration::from_millis(args.latency_ms),
        fail_next: args.fail_first,
        fail_status: args.fail_status,
        retry_after_secs: args.retry_after,
        no_lists: args.no_lists,
        refuse_compact_date: args.refuse_compact_date,
        hang: args.hang,
        reset_after_change: args.reset_after_change,
        clock_offset_secs: args.clock_offset_secs,
        sign_decoded_query: args.sign_decoded_query,
        ..Faults::default()
    };
    let mut tokens = vec![TokenPair {
        public: args.public_token,
        private: args.private_token,
        can_edit: true,
    }];
    if let (Some(public), Some(private)) = (args.readonly_public_token, args.readonly_private_token)
    {
        tokens.push(TokenPair {
            public,
            private,
            can_edit: false,
        });
    }
    let sim = match &args.tls_cert_out {
        Some(path) => {
            let extra = vec![args.listen.ip().to_string()];
            let identity = if args.tls_ca_flagged {
                SelfSigned::generate_ca_flagged(&extra)
            } else {
                SelfSigned::generate(&extra)
            }
            .map_err(std::io::Error::other)?;
            std::fs::write(path, &identity.cert_pem).map_err(|e| {
                std::io::Error::new(e.kind(), format!("cannot write {}: {e}", path.display()))
            })?;
            Simulator::start_tls(listener, &identity, tokens, faults)?
        }
        None => Simulator::start(listener, tokens, faults)?,
    };
    // Nothing can read the records of a standalone simulator; keeping them would only grow it.
    sim.record_calls(false);
    tracing::info!(addr = %sim.addr(), "Darktrace simulator listening");
    println!("Darktrace simulator listening on {}", sim.url());
    tokio::signal::ctrl_c().await?;
    Ok(())
}
