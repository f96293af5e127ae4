//! A ThreatQ simulator: `/api/token` (password grant in the forms real clients send it, and
//! client credentials), and data collections served by cursor, ending with `"data": {}` as
//! ThreatQ does. Tokens expire after their TTL; a lowercase `bearer` is refused, as ThreatQ
//! refuses it. It drives `--demo`, the tests and the load test; tests read its counters.

mod args;
mod handler;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::net::TcpListener;

use crate::simulator::tls::{SelfSigned, TlsListener};

pub use args::{SimulateThreatqArgs, load_collection, run};

/// How the last page of a collection says paging is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PageEnd {
    /// A page past the end with `"data": {}` (ThreatQ's own answer).
    #[default]
    EmptyObject,
    /// A page past the end with `"data": []`.
    EmptyArray,
    /// The last page with items returns the cursor it was asked for.
    UnchangedCursor,
}

/// Who may sign in, what is served, and how it misbehaves.
#[derive(Debug, Clone)]
pub struct ThreatqSimConfig {
    pub client_id: String,
    pub email: String,
    pub password: String,
    pub client_secret: Option<String>,
    /// Collections by hash: the indicator objects, in order.
    pub collections: HashMap<String, Vec<Value>>,
    pub token_ttl: Duration,
    pub latency: Duration,
    /// The first `fail_first` requests answer `fail_status`.
    pub fail_first: usize,
    pub fail_status: u16,
}

impl ThreatqSimConfig {
    pub fn new(client_id: &str, email: &str, password: &str) -> Self {
        ThreatqSimConfig {
            client_id: client_id.into(),
            email: email.into(),
            password: password.into(),
            client_secret: None,
            collections: HashMap::new(),
            token_ttl: Duration::from_secs(3600),
            latency: Duration::ZERO,
            fail_first: 0,
            fail_status: 503,
        }
    }
}

/// Faults a test switches on while the simulator runs.
#[derive(Debug, Default)]
struct Knobs {
    page_end: PageEnd,
    /// Every request for this page (0-based) answers this status.
    failing_page: Option<(usize, u16)>,
    /// After this many pages served, every token held so far stops being accepted.
    revoke_after_pages: Option<usize>,
    /// A collection request waits here until the test lets it through.
    hold: Option<Arc<tokio::sync::Semaphore>>,
}

#[derive(Debug)]
struct Shared {
    config: ThreatqSimConfig,
    tokens: Mutex<HashMap<String, tokio::time::Instant>>,
    knobs: Mutex<Knobs>,
    requests: AtomicUsize,
    grants: Mutex<Vec<&'static str>>,
    issued: Mutex<Vec<String>>,
    pages_served: AtomicUsize,
    lowercase_refused: AtomicUsize,
    held: AtomicUsize,
}

/// A running ThreatQ simulator.
#[derive(Debug, Clone)]
pub struct ThreatqSim {
    addr: SocketAddr,
    scheme: &'static str,
    shared: Arc<Shared>,
}

impl ThreatqSim {
    /// Starts on `listener` (port 0 in tests) in a background task.
    pub fn start(listener: TcpListener, config: ThreatqSimConfig) -> std::io::Result<ThreatqSim> {
        let addr = listener.local_addr()?;
        Ok(ThreatqSim::launch(listener, addr, "http", config))
    }

    /// Starts on `listener` serving HTTPS with `identity`'s certificate, as an on-premises
    /// ThreatQ with its own self-signed certificate does.
    pub fn start_tls(
        listener: TcpListener,
        identity: &SelfSigned,
        config: ThreatqSimConfig,
    ) -> std::io::Result<ThreatqSim> {
        let addr = listener.local_addr()?;
        let listener = TlsListener::new(listener, identity)?;
        Ok(ThreatqSim::launch(listener, addr, "https", config))
    }

    fn launch<L>(
        listener: L,
        addr: SocketAddr,
        scheme: &'static str,
        config: ThreatqSimConfig,
    ) -> ThreatqSim
    where
        L: axum::serve::Listener,
        L::Addr: std::fmt::Debug,
    {
        let shared = Arc::new(Shared {
            config,
            tokens: Mutex::default(),
            knobs: Mutex::default(),
            requests: AtomicUsize::new(0),
            grants: Mutex::default(),
            issued: Mutex::default(),
            pages_served: AtomicUsize::new(0),
            lowercase_refused: AtomicUsize::new(0),
            held: AtomicUsize::new(0),
        });
        let app = handler::router(shared.clone());
        tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                tracing::error!(%error, "ThreatQ simulator stopped");
            }
        });
        ThreatqSim {
            addr,
            scheme,
            shared,
        }
    }

    /// Starts on a free loopback port.
    pub async fn start_local(config: ThreatqSimConfig) -> std::io::Result<ThreatqSim> {
        ThreatqSim::start(TcpListener::bind(("127.0.0.1", 0)).await?, config)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` (`https://` with TLS), for `THREATQ_URL`.
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// Tokens granted so far.
    pub fn token_grants(&self) -> usize {
        self.grants().len()
    }

    /// How each token was asked for, in order: `sdk` (grant and client id in the query, the
    /// user as JSON), `json`, `form` or `client_credentials`.
    pub fn grants(&self) -> Vec<&'static str> {
        self.shared.grants.lock().expect("grants lock").clone()
    }

    /// Every access token granted, for tests that look for them where they must not be.
    pub fn issued_tokens(&self) -> Vec<String> {
        self.shared.issued.lock().expect("issued lock").clone()
    }

    /// Collection pages answered with 200 (the end page included).
    pub fn pages_served(&self) -> usize {
        self.shared.pages_served.load(Ordering::SeqCst)
    }

    /// Collection requests refused for a lowercase `bearer`.
    pub fn lowercase_bearer_refused(&self) -> usize {
        self.shared.lowercase_refused.load(Ordering::SeqCst)
    }

    pub fn set_page_end(&self, end: PageEnd) {
        self.knobs().page_end = end;
    }

    /// Every request for page `page` (0-based) answers `status`.
    pub fn fail_page(&self, page: usize, status: u16) {
        self.knobs().failing_page = Some((page, status));
    }

    /// Once `pages` pages have been served, the tokens granted so far stop being accepted
    /// (a token expiring in the middle of paging).
    pub fn revoke_tokens_after_pages(&self, pages: usize) {
        self.knobs().revoke_after_pages = Some(pages);
    }

    /// Holds every collection request until [`ThreatqSim::release`].
    pub fn hold_pages(&self) {
        self.knobs().hold = Some(Arc::new(tokio::sync::Semaphore::new(0)));
    }

    /// Collection requests waiting in [`ThreatqSim::hold_pages`].
    pub fn held(&self) -> usize {
        self.shared.held.load(Ordering::SeqCst)
    }

    /// Lets every held request (and all later ones) through.
    pub fn release(&self) {
        if let Some(hold) = self.knobs().hold.take() {
            hold.add_permits(tokio::sync::Semaphore::MAX_PERMITS / 2);
        }
    }

    fn knobs(&self) -> std::sync::MutexGuard<'_, Knobs> {
        self.shared.knobs.lock().expect("knobs lock")
    }
}
