//! When a request must have its answer: `REQUEST_TIMEOUT_SECS` after it arrived, or the end
//! of the shutdown drain if that comes first.
//!
//! Every wait on Darktrace goes through [`Deadline::run`], so when either runs out the
//! pipeline stops waiting and answers, reporting what was not confirmed as
//! `failed`/`deadline`: a request is never left unanswered, not even at shutdown.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::watch;
use tokio::time::{Instant, sleep_until};

/// The end of the shutdown drain, set once when shutdown begins; shared by all requests.
#[derive(Debug, Clone)]
pub struct Drain(Arc<watch::Sender<Option<Instant>>>);

impl Default for Drain {
    fn default() -> Self {
        Drain(Arc::new(watch::channel(None).0))
    }
}

impl Drain {
    /// Requests in progress must answer by `until`.
    pub fn begin(&self, until: Instant) {
        self.0.send_replace(Some(until));
    }
}

/// The time was up before the awaited call finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expired;

/// A request's deadline.
#[derive(Debug, Clone)]
pub struct Deadline {
    at: Instant,
    drain: Option<watch::Receiver<Option<Instant>>>,
}

impl Deadline {
    /// A deadline at `at`, whatever happens to the process (tools and benchmarks).
    pub fn at(at: Instant) -> Self {
        Deadline { at, drain: None }
    }

    /// A deadline at `at`, or at the end of the shutdown drain if that comes first.
    pub fn with_drain(at: Instant, drain: &Drain) -> Self {
        Deadline {
            at,
            drain: Some(drain.0.subscribe()),
        }
    }

    /// Runs `work` until it finishes or the deadline passes.
    pub async fn run<F: Future>(&self, work: F) -> Result<F::Output, Expired> {
        let drain_ends = async {
            let Some(mut drain) = self.drain.clone() else {
                return std::future::pending().await;
            };
            let until = match drain.wait_for(Option::is_some).await {
                Ok(until) => *until,
                Err(_closed) => None,
            };
            match until {
                Some(until) => sleep_until(until).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            output = work => Ok(output),
            () = sleep_until(self.at) => Err(Expired),
            () = drain_ends => Err(Expired),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn work_that_finishes_in_time_gives_its_output() {
        let deadline = Deadline::at(Instant::now() + Duration::from_secs(10));
        assert_eq!(deadline.run(async { 7 }).await, Ok(7));
    }

    #[tokio::test(start_paused = true)]
    async fn work_past_the_deadline_expires() {
        let deadline = Deadline::at(Instant::now() + Duration::from_secs(10));
        let slow = tokio::time::sleep(Duration::from_secs(60));
        assert_eq!(deadline.run(slow).await, Err(Expired));
    }

    #[tokio::test(start_paused = true)]
    async fn the_shutdown_drain_cuts_a_longer_deadline_short() {
        let drain = Drain::default();
        let deadline = Deadline::with_drain(Instant::now() + Duration::from_secs(300), &drain);
        let started = Instant::now();
        let waiting = tokio::spawn(async move {
            deadline
                .run(tokio::time::sleep(Duration::from_secs(200)))
                .await
        });
        tokio::time::sleep(Duration::from_secs(5)).await;
        drain.begin(Instant::now() + Duration::from_secs(2));
        assert_eq!(waiting.await.unwrap(), Err(Expired));
        assert_eq!(started.elapsed(), Duration::from_secs(7));
    }
}
