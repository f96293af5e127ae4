//! A strict Darktrace `/intelfeed` simulator: it checks signatures over the exact bytes and
//! the date window as an appliance does, keeps entries per source, answers in the
//! appliance's shapes, and injects faults on request. It drives `--demo`, the tests and the
//! benchmarks.

mod args;
pub mod faults;
mod handler;
pub mod store;
pub mod tls;
pub mod verify;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use chrono::Utc;
use tokio::net::TcpListener;

pub use args::{SimulateArgs, run};
pub use faults::Faults;
use handler::router;
pub use store::Store;
pub use tls::{Authority, SelfSigned};
pub use verify::TokenPair;

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
    /// Calls refused for want of capacity (`Faults::max_in_flight`).
    overloaded: AtomicUsize,
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

    /// Starts counting [`Simulator::max_in_flight`] afresh, from the calls in progress now.
    pub fn reset_max_in_flight(&self) {
        let now = self.shared.in_flight.load(Ordering::SeqCst);
        self.shared.max_in_flight.store(now, Ordering::SeqCst);
    }

    /// How many calls were refused 503 for want of capacity (`Faults::max_in_flight`).
    pub fn overloaded(&self) -> usize {
        self.shared.overloaded.load(Ordering::SeqCst)
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
