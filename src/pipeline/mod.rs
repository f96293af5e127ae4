//! The three pipelines, each "plan (pure) → execute (I/O) → reconcile (pure)" over one
//! screened batch: [`export`] adds, [`remove`] takes out, [`sync`] makes a source equal to a
//! collection. Every item gets its result from screening; items that go to Darktrace start as
//! `failed`/`deadline` and only Darktrace's answer moves them, so a request cut short by its
//! deadline still accounts for every item.

pub mod changes;
pub mod export;
pub mod held;
pub mod reconcile;
pub mod remove;
pub mod settings;
pub mod sync;

pub use held::Held;
pub use settings::{RequestSettings, Strength, expiry_after};
pub use sync::CapExceeded;

use crate::darktrace::DarktraceClient;
use crate::outcome::{ItemResult, Report, Summary};
use crate::screen::Screener;

/// Runs exports against one Darktrace; shared by every request.
#[derive(Debug, Clone)]
pub struct Exporter {
    pub client: DarktraceClient,
    pub screener: Screener,
    pub batch_size: usize,
    pub fqdn_as_hostname: bool,
}

/// Builds the answer from settled results.
pub fn report<'a>(settings: &RequestSettings, results: Vec<ItemResult<'a>>) -> Report<'a> {
    Report {
        source: settings.source.clone(),
        expiry: settings.expiry.clone(),
        dry_run: settings.dry_run,
        summary: Summary::of(&results),
        results,
        removals: None,
    }
}
