//! `PULL_INTERVAL_SECS`: a pull on a timer, the first shortly after start, never two at once
//! (each tick waits for the pull before it; ticks missed meanwhile become one, and the interval counts from it). The timer is
//! a [`Ticks`] so tests drive it by hand.

use std::future::Future;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::{Instant, Interval, MissedTickBehavior, interval_at};

use super::{PullError, Puller};

/// The first scheduled pull comes this long after start, once the service is serving.
pub const FIRST_AFTER: Duration = Duration::from_secs(5);

/// Where the schedule's ticks come from.
pub trait Ticks: Send {
    /// Waits for the next tick; `false` when there will be none.
    fn tick(&mut self) -> impl Future<Output = bool> + Send;
}

impl Ticks for Interval {
    async fn tick(&mut self) -> bool {
        Interval::tick(self).await;
        true
    }
}

impl Ticks for mpsc::Receiver<()> {
    async fn tick(&mut self) -> bool {
        self.recv().await.is_some()
    }
}

/// Ticks [`FIRST_AFTER`] from now, then every `interval`.
pub fn every(interval: Duration) -> Interval {
    let mut ticks = interval_at(Instant::now() + FIRST_AFTER, interval);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    ticks
}

/// Pulls on each tick until the ticks end. A failed pull is logged (and counted) by the
/// pull itself; the schedule goes on.
pub async fn run(puller: Puller, mut ticks: impl Ticks) {
    while ticks.tick().await {
        match puller.run(false, false).await {
            Ok(_) | Err(PullError::Threatq(_)) | Err(PullError::Refused(_)) => {}
            Err(PullError::Running) => {
                tracing::info!("scheduled pull skipped: a pull is running")
            }
            Err(PullError::SourceBusy(source)) => {
                tracing::info!(%source, "scheduled pull skipped: the source is being synced")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_first_tick_comes_shortly_after_start_then_one_per_interval() {
        let start = Instant::now();
        let mut ticks = every(Duration::from_secs(600));
        assert!(Ticks::tick(&mut ticks).await);
        assert_eq!(Instant::now() - start, FIRST_AFTER);
        assert!(Ticks::tick(&mut ticks).await);
        assert_eq!(
            Instant::now() - start,
            FIRST_AFTER + Duration::from_secs(600)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn ticks_missed_while_a_pull_ran_become_one_then_the_interval_counts_from_it() {
        let start = Instant::now();
        let mut ticks = every(Duration::from_secs(60));
        Ticks::tick(&mut ticks).await;
        // A pull that takes three intervals.
        tokio::time::sleep(Duration::from_secs(190)).await;
        Ticks::tick(&mut ticks).await;
        let second = Instant::now() - start;
        Ticks::tick(&mut ticks).await;
        let third = Instant::now() - start;
        assert!(
            third - second >= Duration::from_secs(59),
            "{second:?} {third:?}"
        );
    }
}
