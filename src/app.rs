//! Building and running the service on an already-bound listener, so tests can use port 0.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use crate::config::{Config, ConfigError};
use crate::darktrace::DarktraceClient;
use crate::deadline::Drain;
use crate::http::health::Readiness;
use crate::http::{AppState, router, server};
use crate::pipeline::Exporter;
use crate::pull::Puller;
use crate::screen::Screener;
use crate::source_lock::SourceLocks;
use crate::telemetry;

/// The service, ready to run.
pub struct Application {
    listener: TcpListener,
    state: AppState,
}

impl Application {
    /// Builds the service on `listener`; fails only on configuration the client rejects.
    pub fn build(config: Config, listener: TcpListener) -> Result<Application, ConfigError> {
        Ok(Application {
            listener,
            state: app_state(config)?,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("bound listener has an address")
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves; then readiness turns 503, new connections are
    /// refused, and in-flight requests get `SHUTDOWN_GRACE_SECS` to finish. A request still
    /// waiting on Darktrace when the grace ends answers at once, reporting what was not
    /// confirmed as `failed`/`deadline`; [`ANSWER_TIME`] more is allowed to write it.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let grace = self.state.config.limits.shutdown_grace;
        let readiness = self.state.readiness.clone();
        let drain = self.state.drain.clone();
        let (stop_tx, stop_rx) = watch::channel(false);
        let limits = self.state.config.limits.clone();
        // PULL_INTERVAL_SECS: pulls on a timer while the service serves.
        let schedule = self.state.pull.clone().and_then(|puller| {
            let interval = puller.config().threatq.as_ref()?.interval?;
            let ticks = crate::pull::schedule::every(interval);
            Some(tokio::spawn(crate::pull::schedule::run(puller, ticks)))
        });
        let _schedule = schedule.map(AbortOnDrop);
        let serve = server::serve(self.listener, router(self.state), limits, stop_rx);
        tokio::pin!(serve);
        let upkeep = tokio::spawn(metrics_upkeep());
        let _upkeep = AbortOnDrop(upkeep);
        tokio::select! {
            result = &mut serve => return result,
            () = shutdown => {}
        }
        readiness.shutting_down();
        drain.begin(tokio::time::Instant::now() + grace);
        tracing::info!(
            grace_secs = grace.as_secs(),
            "shutting down: finishing requests in progress"
        );
        let _ = stop_tx.send(true);
        match tokio::time::timeout(grace + ANSWER_TIME, serve).await {
            Ok(result) => result,
            Err(_) => {
                tracing::warn!("shutdown grace ran out; stopping with requests still in progress");
                Ok(())
            }
        }
    }
}

/// Time after the shutdown grace for requests cut short by it to write their answers.
pub const ANSWER_TIME: std::time::Duration = std::time::Duration::from_secs(1);

/// The state shared by the handlers, built from the configuration.
pub fn app_state(config: Config) -> Result<AppState, ConfigError> {
    // Before any request, so no metric recorded by the first one is lost.
    telemetry::metrics::prometheus();
    let client = DarktraceClient::new(&config.darktrace)?;
    let screener = Screener::new(&config.screen, config.darktrace.base_url.host_str());
    let exporter = Exporter {
        client,
        screener,
        batch_size: config.darktrace.batch_size,
        fqdn_as_hostname: config.screen.fqdn_as_hostname,
    };
    let config = Arc::new(config);
    let exporter = Arc::new(exporter);
    let source_locks = SourceLocks::default();
    let drain = Drain::default();
    let pull = Puller::new(
        config.clone(),
        exporter.clone(),
        source_locks.clone(),
        drain.clone(),
    )?;
    Ok(AppState {
        batch_permits: Arc::new(Semaphore::new(config.limits.max_concurrent_exports)),
        config,
        exporter,
        readiness: Readiness::default(),
        drain,
        source_locks,
        pull,
    })
}

/// Drains histogram samples into their buckets now and then, so memory does not grow
/// between scrapes (or without any).
async fn metrics_upkeep() {
    let mut every = tokio::time::interval(telemetry::metrics::UPKEEP_EVERY);
    loop {
        every.tick().await;
        telemetry::metrics::prometheus().run_upkeep();
    }
}

/// Stops a background task when the server it serves stops.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Resolves on SIGTERM or SIGINT. The handlers are installed when this is called, not when
/// the future is first polled: a signal that comes as soon as the service answers must
/// start a graceful shutdown, not kill the process. Call it within the runtime.
#[cfg(unix)]
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let terminate = signal(SignalKind::terminate()).ok();
    let interrupt = signal(SignalKind::interrupt()).ok();
    async move {
        tokio::select! {
            _ = received(terminate) => {}
            _ = received(interrupt) => {}
        }
    }
}

/// Waits for one delivery of `signal`; forever if it could not be installed.
#[cfg(unix)]
async fn received(signal: Option<tokio::signal::unix::Signal>) {
    match signal {
        Some(mut signal) => {
            signal.recv().await;
        }
        None => std::future::pending().await,
    }
}

/// Resolves on Ctrl-C.
#[cfg(not(unix))]
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}
