//! One pull: every page read and screened as it arrives (each item made owned, then the page
//! dropped, so memory holds the results and accepted values and one page), then the
//! collection exported or synced by the same code as `/export` and `/sync`. A page that
//! cannot be read ends the run before anything is sent.

use std::time::Instant;

use super::client::{ThreatqClient, ThreatqError};
use super::page::parse_page;
use crate::config::PullMode;
use crate::darktrace::CallTally;
use crate::deadline::Deadline;
use crate::outcome::{Reason, Report, Verdict, deadline_verdict};
use crate::pipeline::{CapExceeded, Exporter, RequestSettings};
use crate::threatq::ItemSink;

/// Why a pull changed nothing.
#[derive(Debug)]
pub enum Stopped {
    /// ThreatQ could not be read (token or a page).
    Threatq(ThreatqError),
    /// The sync plan is over `SYNC_MAX_REMOVALS` or would empty the source.
    Refused(CapExceeded),
}

/// What was read from ThreatQ.
#[derive(Debug, Clone, Copy, Default)]
pub struct Read {
    pub pages: usize,
    pub items: usize,
    pub total: Option<u64>,
}

/// Reads the whole collection and exports or syncs it under `settings`.
pub async fn pull(
    exporter: &Exporter,
    threatq: &ThreatqClient,
    mode: PullMode,
    settings: &RequestSettings,
    max_removals: usize,
    deadline: impl FnOnce() -> Deadline,
    tally: &CallTally,
) -> Result<(Report<'static>, Read), Stopped> {
    let started = Instant::now();
    let removal_rules = exporter.screener.for_removal();
    let mut screening = exporter.screener.start();
    let mut revocable = (mode == PullMode::Sync).then(|| removal_rules.start());
    let mut read = Read::default();
    let mut cursor = String::from("*");
    loop {
        let bytes = threatq.page(&cursor).await.map_err(Stopped::Threatq)?;
        let page = parse_page(&bytes).map_err(|e| Stopped::Threatq(ThreatqError::Answer(e)))?;
        read.total = read.total.or(page.total);
        let next = page.next(&cursor).map(str::to_owned);
        if page.items.is_empty() {
            break;
        }
        read.pages += 1;
        read.items += page.items.len();
        for item in page.items {
            let item = item.into_owned();
            if let Some(revocable) = &mut revocable {
                revocable.take(item.clone());
            }
            screening.take(item);
        }
        tracing::info!(
            pages = read.pages,
            items = read.items,
            total = read.total,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "pull: page read"
        );
        match next {
            Some(next) => cursor = next,
            None => break,
        }
    }
    tracing::info!(
        pages = read.pages,
        items = read.items,
        elapsed_ms = started.elapsed().as_millis() as u64,
        mode = mode.as_str(),
        "pull: collection read"
    );
    let deadline = deadline();
    let report = match revocable {
        None => {
            exporter
                .export_screened(screening, settings, &deadline, tally)
                .await
        }
        Some(revocable) => {
            let pending = if settings.dry_run {
                Verdict::new(Reason::DryRun, "valid; would be sent to Darktrace")
            } else {
                deadline_verdict()
            };
            let revocable = revocable.finish(&pending).accepted;
            let screened = screening.finish(&pending);
            exporter
                .sync_screened(
                    screened,
                    &revocable,
                    settings,
                    max_removals,
                    &deadline,
                    tally,
                )
                .await
                .map_err(Stopped::Refused)?
        }
    };
    Ok((report, read))
}
