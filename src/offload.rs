//! CPU-bound work of a request (reading and screening a batch, writing its answer) kept off
//! the async workers, so `/healthz` and small requests are served while a large batch is
//! read.
//!
//! `block_in_place` hands the worker's other tasks to a fresh worker thread while this one
//! computes, and it can borrow what the request holds (the body, the items read from it),
//! which `spawn_blocking` cannot without copying the body. On a current-thread runtime
//! (the tests' own), where there is no other worker to take over, the work runs in place.

use tokio::runtime::{Handle, RuntimeFlavor};

/// Runs `work` where it does not hold up the async workers.
pub fn off_workers<R>(work: impl FnOnce() -> R) -> R {
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(work),
        _ => work(),
    }
}
