//! Pulling a ThreatQ data collection through ThreatQ's REST API and exporting or syncing
//! it, once (`darktrace-export pull`, `POST /pull`) or on a schedule (`PULL_INTERVAL_SECS`).
//! [`client`] speaks ThreatQ, [`page`] reads a page and knows when paging ends, [`run`] is
//! one pull, [`schedule`] the timer; [`Puller`] holds them for the service.

pub mod client;
pub mod page;
pub mod run;
pub mod schedule;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

pub use client::{ThreatqClient, ThreatqError};
pub use run::{Read, Stopped};

use crate::config::{Config, ConfigError, PullMode};
use crate::darktrace::CallTally;
use crate::deadline::{Deadline, Drain};
use crate::outcome::{Outcome, Report};
use crate::pipeline::{CapExceeded, Exporter};
use crate::source_lock::SourceLocks;
use crate::telemetry::metrics as names;
use crate::threatq::BodyOverrides;

/// Why a pull did not run or changed nothing.
#[derive(Debug)]
pub enum PullError {
    /// Another pull is running in this process.
    Running,
    /// A `/sync` of the same source is running.
    SourceBusy(String),
    Threatq(ThreatqError),
    Refused(CapExceeded),
}

/// The pull of the configured collection, shared by `POST /pull` and the schedule; one at a
/// time.
#[derive(Debug, Clone)]
pub struct Puller {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: Arc<Config>,
    exporter: Arc<Exporter>,
    threatq: ThreatqClient,
    mode: PullMode,
    source_locks: SourceLocks,
    drain: Drain,
    running: AtomicBool,
}

/// Clears the running flag when the pull ends, however it ends.
struct RunningGuard<'a>(&'a AtomicBool);

impl Drop for RunningGuard<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

impl Puller {
    /// The pull of `config`'s collection, or `None` when no ThreatQ is configured.
    pub fn new(
        config: Arc<Config>,
        exporter: Arc<Exporter>,
        source_locks: SourceLocks,
        drain: Drain,
    ) -> Result<Option<Puller>, ConfigError> {
        let Some(threatq) = &config.threatq else {
            return Ok(None);
        };
        let client = ThreatqClient::new(threatq)?.with_backoff(config.darktrace.backoff);
        // Every result at zero from the start: a pull that never succeeds must show as
        // `ok` not growing, since an alert on a series that is absent never fires.
        for result in RUN_RESULTS {
            metrics::counter!(names::PULL_RUNS, "result" => result).increment(0);
        }
        Ok(Some(Puller {
            inner: Arc::new(Inner {
                mode: threatq.mode,
                threatq: client,
                config,
                exporter,
                source_locks,
                drain,
                running: AtomicBool::new(false),
            }),
        }))
    }

    /// The ThreatQ client (for `check`).
    pub fn threatq(&self) -> &ThreatqClient {
        &self.inner.threatq
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Runs one pull now, unless one is running or the source is being synced.
    pub async fn run(&self, dry_run: bool, force: bool) -> Result<Report<'static>, PullError> {
        let inner = &*self.inner;
        if inner.running.swap(true, Ordering::SeqCst) {
            return Err(PullError::Running);
        }
        let _running = RunningGuard(&inner.running);
        let overrides = BodyOverrides {
            dry_run: Some(dry_run),
            force: Some(force),
            ..BodyOverrides::default()
        };
        let settings = crate::http::request::settings(&inner.config, &overrides, None)
            .expect("the configured settings are valid");
        let _source = inner
            .source_locks
            .try_lock(&settings.source)
            .ok_or_else(|| PullError::SourceBusy(settings.source.clone()))?;
        let started = Instant::now();
        let tally = CallTally::default();
        let timeout = inner.config.limits.request_timeout;
        let drain = &inner.drain;
        let result = run::pull(
            &inner.exporter,
            &inner.threatq,
            inner.mode,
            &settings,
            inner.config.limits.sync_max_removals,
            || Deadline::with_drain(tokio::time::Instant::now() + timeout, drain),
            &tally,
        )
        .await;
        metrics::histogram!(names::PULL_DURATION).record(started.elapsed().as_secs_f64());
        match result {
            Ok((report, read)) => {
                crate::http::batch::log_summary("pull", &report, &tally, started);
                count_items(&report);
                let failed = report.has_failures();
                count_run(if failed { "failed" } else { "ok" });
                if !failed && !dry_run {
                    let now = SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .unwrap_or_default();
                    metrics::gauge!(names::PULL_LAST_SUCCESS).set(now.as_secs_f64());
                }
                tracing::info!(
                    pages = read.pages,
                    items = read.items,
                    failed,
                    "pull finished"
                );
                Ok(report)
            }
            Err(Stopped::Threatq(error)) => {
                count_run("threatq_error");
                tracing::warn!(error = %error, "pull stopped: ThreatQ could not be read; nothing in Darktrace was changed");
                Err(PullError::Threatq(error))
            }
            Err(Stopped::Refused(refused)) => {
                count_run("refused");
                tracing::warn!(
                    planned_removals = refused.planned_removals,
                    sync_max_removals = refused.sync_max_removals,
                    exportable = refused.exportable,
                    "pull refused: the sync plan removes more than SYNC_MAX_REMOVALS, or empties the source"
                );
                Err(PullError::Refused(refused))
            }
        }
    }
}

/// The `result` label values of [`names::PULL_RUNS`].
const RUN_RESULTS: [&str; 4] = ["ok", "failed", "refused", "threatq_error"];

fn count_run(result: &'static str) {
    debug_assert!(RUN_RESULTS.contains(&result), "{result}");
    metrics::counter!(names::PULL_RUNS, "result" => result).increment(1);
}

/// Items of the pull by outcome, a sync's removals included.
fn count_items(report: &Report<'_>) {
    let removals = report.removals.iter().flatten().map(|r| r.outcome);
    let mut per: Vec<(Outcome, u64)> = Vec::new();
    for outcome in report.results.iter().map(|r| r.outcome).chain(removals) {
        match per.iter_mut().find(|(o, _)| *o == outcome) {
            Some((_, n)) => *n += 1,
            None => per.push((outcome, 1)),
        }
    }
    for (outcome, n) in per {
        metrics::counter!(names::PULL_ITEMS, "outcome" => outcome.as_str()).increment(n);
    }
}
