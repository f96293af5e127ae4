//! How many Darktrace calls may be in flight at once: an adaptive limit, one per process.
//!
//! It starts at [`START`] and never passes the ceiling (`DARKTRACE_CONCURRENCY`). While
//! calls succeed with the limit in use and their latency is not rising, it grows: by one per
//! success until the first cut (a slow start, doubling per round trip), then by one per
//! round of `limit` successes. It is cut at once to three quarters (at least 1) when an
//! attempt is answered 429 or 503, times out, or takes more than twice the usual latency
//! plus [`SLACK`]. Attempts that were sent before a cut cannot cut it again: they describe
//! the load before the cut. An attempt sent after a cut for latency that is still as slow
//! shows the appliance itself got slower: its latency becomes the usual one, without a
//! second cut. The rules ([`Rules`]) are pure and take the times of each
//! attempt; [`Limiter`] holds them and the calls in flight.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// The limit a process starts at.
pub const START: usize = 2;

/// Latency this much above twice the usual one counts as rising; below it, jitter on a
/// fast appliance (a few milliseconds) never cuts the limit.
pub const SLACK: Duration = Duration::from_millis(25);

/// How quickly the usual latency follows answers slower than it (1/32 of the gap each),
/// so a lasting change is learnt while one slow answer is not.
const BASELINE_FOLLOW: u32 = 32;

/// What one attempt's answer says about the appliance's load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// An answer (2xx): its latency decides.
    Answered,
    /// 429, 503 or a timeout: too much at once.
    Overload,
    /// Anything else (a refusal, a cut connection): says nothing about load.
    Neutral,
}

/// One finished attempt, as the rules see it.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub started: Instant,
    pub finished: Instant,
    /// The limit when the attempt was let through.
    pub limit: usize,
    /// Whether it took the last free place (the limit was in use).
    pub saturated: bool,
    pub signal: Signal,
}

/// The limit's rules, without any clock or lock.
#[derive(Debug, Clone)]
pub struct Rules {
    limit: usize,
    ceiling: usize,
    /// The usual latency of an answer; `None` before the first.
    baseline: Option<Duration>,
    /// Successes counted towards the next step up.
    successes: usize,
    /// When the limit was last cut; `None` while still in the slow start.
    last_cut: Option<Instant>,
    /// Whether that cut was for latency: if an attempt sent after it is as slow, fewer
    /// calls did not help, the appliance is slower, and its latency becomes the usual one.
    cut_for_latency: bool,
}

impl Rules {
    /// `ceiling` is `DARKTRACE_CONCURRENCY` (at least 1).
    pub fn new(ceiling: usize) -> Self {
        let ceiling = ceiling.max(1);
        Rules {
            limit: START.min(ceiling),
            ceiling,
            baseline: None,
            successes: 0,
            last_cut: None,
            cut_for_latency: false,
        }
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Takes one attempt's answer into account; returns the limit after it.
    pub fn record(&mut self, sample: Sample) -> usize {
        match sample.signal {
            Signal::Neutral => {}
            Signal::Overload => {
                self.cut(sample);
            }
            Signal::Answered => {
                let latency = sample.finished.saturating_duration_since(sample.started);
                let rising = self
                    .baseline
                    .is_some_and(|usual| latency > usual * 2 + SLACK);
                let after_cut = self.last_cut.is_some_and(|cut| sample.started >= cut);
                if rising && after_cut && self.cut_for_latency {
                    // Still slow with fewer in flight: the new latency is the usual one.
                    self.baseline = Some(latency);
                    self.cut_for_latency = false;
                    return self.limit;
                }
                self.learn(latency);
                if rising {
                    if self.cut(sample) {
                        self.cut_for_latency = true;
                    }
                } else {
                    // Fast again after the cut: it helped, and a later rise is a new one.
                    self.cut_for_latency &= !after_cut;
                    self.grow(sample);
                }
            }
        }
        self.limit
    }

    fn learn(&mut self, latency: Duration) {
        self.baseline = Some(match self.baseline {
            Some(usual) if latency > usual => usual + (latency - usual) / BASELINE_FOLLOW,
            _ => latency,
        });
    }

    /// Cuts the limit unless the attempt was sent before the last cut; says whether it did.
    fn cut(&mut self, sample: Sample) -> bool {
        if self.last_cut.is_some_and(|cut| sample.started < cut) {
            return false;
        }
        self.limit = (self.limit * 3 / 4).max(1);
        self.successes = 0;
        self.last_cut = Some(sample.finished);
        self.cut_for_latency = false;
        true
    }

    fn grow(&mut self, sample: Sample) {
        if !sample.saturated || sample.limit != self.limit || self.limit >= self.ceiling {
            return;
        }
        self.successes += 1;
        let needed = if self.last_cut.is_none() {
            1
        } else {
            self.limit
        };
        if self.successes >= needed {
            self.limit += 1;
            self.successes = 0;
        }
    }
}

#[derive(Debug)]
struct State {
    rules: Rules,
    in_flight: usize,
}

/// The rules and the calls in flight: [`Limiter::acquire`] waits for a place.
#[derive(Debug)]
pub struct Limiter {
    state: Mutex<State>,
    freed: Notify,
}

impl Limiter {
    pub fn new(ceiling: usize) -> Self {
        Limiter {
            state: Mutex::new(State {
                rules: Rules::new(ceiling),
                in_flight: 0,
            }),
            freed: Notify::new(),
        }
    }

    /// The limit now.
    pub fn limit(&self) -> usize {
        self.lock().rules.limit()
    }

    /// Waits until fewer than the limit are in flight; the place is held until the
    /// permit is finished or dropped (one attempt, never a backoff wait).
    pub async fn acquire(&self) -> Permit<'_> {
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            if let Some(permit) = self.try_acquire() {
                return permit;
            }
            freed.await;
        }
    }

    /// A place if one is free now.
    pub fn try_acquire(&self) -> Option<Permit<'_>> {
        let mut state = self.lock();
        let limit = state.rules.limit();
        if state.in_flight >= limit {
            return None;
        }
        state.in_flight += 1;
        Some(Permit {
            limiter: self,
            started: Instant::now(),
            limit,
            saturated: state.in_flight == limit,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One place among the calls in flight.
#[derive(Debug)]
pub struct Permit<'l> {
    limiter: &'l Limiter,
    started: Instant,
    limit: usize,
    saturated: bool,
}

impl Permit<'_> {
    /// Gives the place back with what the attempt's answer said; returns the new limit.
    /// A permit dropped without this (a deadline ended the wait) teaches the rules nothing.
    pub fn finish(self, signal: Signal) -> usize {
        let sample = Sample {
            started: self.started,
            finished: Instant::now(),
            limit: self.limit,
            saturated: self.saturated,
            signal,
        };
        let (before, after) = {
            let mut state = self.limiter.lock();
            let before = state.rules.limit();
            (before, state.rules.record(sample))
        };
        if after > before {
            self.limiter.freed.notify_one();
        }
        after
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.limiter.lock().in_flight -= 1;
        self.limiter.freed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::FutureExt;

    const MS: Duration = Duration::from_millis(1);

    /// Drives the rules with attempts on a made-up clock.
    struct Run {
        rules: Rules,
        t0: Instant,
    }

    impl Run {
        fn new(ceiling: usize) -> Self {
            Run {
                rules: Rules::new(ceiling),
                t0: Instant::now(),
            }
        }

        /// An attempt that started at `start` ms and took `took` ms, with the limit in use.
        fn answer(&mut self, start: u64, took: u64, signal: Signal) -> usize {
            let limit = self.rules.limit();
            self.rules.record(Sample {
                started: self.t0 + MS * start as u32,
                finished: self.t0 + MS * (start + took) as u32,
                limit,
                saturated: true,
                signal,
            })
        }
    }

    #[test]
    fn starts_at_two_and_never_above_the_ceiling() {
        assert_eq!(Rules::new(8).limit(), 2);
        assert_eq!(Rules::new(1).limit(), 1);
        let mut run = Run::new(5);
        for i in 0..50 {
            run.answer(i * 300, 300, Signal::Answered);
        }
        assert_eq!(run.rules.limit(), 5);
    }

    #[test]
    fn slow_start_grows_by_one_per_success_until_the_first_cut() {
        let mut run = Run::new(64);
        let limits: Vec<_> = (0..4)
            .map(|i| run.answer(i * 300, 300, Signal::Answered))
            .collect();
        assert_eq!(limits, vec![3, 4, 5, 6]);
    }

    #[test]
    fn overload_cuts_at_once_to_three_quarters() {
        let mut run = Run::new(64);
        for i in 0..6 {
            run.answer(i * 300, 300, Signal::Answered);
        }
        assert_eq!(run.rules.limit(), 8);
        assert_eq!(run.answer(2_000, 1, Signal::Overload), 6);
        assert_eq!(run.answer(2_100, 1, Signal::Overload), 4);
        assert_eq!(run.answer(2_200, 1, Signal::Overload), 3);
        assert_eq!(run.answer(2_300, 1, Signal::Overload), 2);
        assert_eq!(run.answer(2_400, 1, Signal::Overload), 1);
        assert_eq!(run.answer(2_500, 1, Signal::Overload), 1, "never below 1");
    }

    #[test]
    fn attempts_sent_before_a_cut_do_not_cut_again() {
        let mut run = Run::new(64);
        for i in 0..6 {
            run.answer(i * 300, 300, Signal::Answered);
        }
        // Eight sent at 2,000 ms; the first refused at 2,001 cuts, the others were sent
        // before that and change nothing.
        assert_eq!(run.answer(2_000, 1, Signal::Overload), 6);
        for _ in 0..7 {
            assert_eq!(run.answer(2_000, 5, Signal::Overload), 6);
        }
        // One sent after the cut cuts again.
        assert_eq!(run.answer(2_010, 1, Signal::Overload), 4);
    }

    #[test]
    fn after_a_cut_it_grows_by_one_per_round_of_successes() {
        let mut run = Run::new(64);
        for i in 0..2 {
            run.answer(i * 300, 300, Signal::Answered);
        }
        assert_eq!(run.rules.limit(), 4);
        assert_eq!(run.answer(1_000, 1, Signal::Overload), 3);
        let limits: Vec<_> = (0..7)
            .map(|i| run.answer(2_000 + i * 300, 300, Signal::Answered))
            .collect();
        assert_eq!(limits, vec![3, 3, 4, 4, 4, 4, 5]);
    }

    #[test]
    fn rising_latency_cuts_and_steady_latency_does_not() {
        let mut run = Run::new(64);
        for i in 0..4 {
            run.answer(i * 400, 300, Signal::Answered);
        }
        assert_eq!(run.rules.limit(), 6);
        // Up to twice the usual latency plus the slack is not rising.
        assert_eq!(run.answer(2_000, 600 + 25, Signal::Answered), 7);
        assert_eq!(run.answer(3_000, 700, Signal::Answered), 5, "rising");
    }

    #[test]
    fn an_appliance_that_turned_slower_costs_one_cut_not_a_fall_to_one() {
        let mut run = Run::new(8);
        for i in 0..20 {
            run.answer(i * 10, 5, Signal::Answered);
        }
        assert_eq!(run.rules.limit(), 8);
        // From now on every answer takes 300 ms, however few are in flight.
        assert_eq!(
            run.answer(1_000, 300, Signal::Answered),
            6,
            "rising: cut once"
        );
        assert_eq!(
            run.answer(1_400, 300, Signal::Answered),
            6,
            "as slow after the cut: learnt, not cut again"
        );
        let limits: Vec<_> = (0..14)
            .map(|i| run.answer(2_000 + i * 400, 300, Signal::Answered))
            .collect();
        assert_eq!(limits.last(), Some(&8), "{limits:?}");
        assert!(limits.iter().all(|&l| l >= 6), "{limits:?}");
    }

    #[test]
    fn latency_that_comes_down_after_a_cut_keeps_the_cut() {
        let mut run = Run::new(8);
        for i in 0..20 {
            run.answer(i * 10, 5, Signal::Answered);
        }
        assert_eq!(run.answer(1_000, 300, Signal::Answered), 6);
        assert_eq!(run.answer(1_400, 6, Signal::Answered), 6, "usual again");
        // A later rise is a new one, and cuts.
        assert_eq!(run.answer(1_500, 300, Signal::Answered), 4);
    }

    #[test]
    fn jitter_on_a_fast_appliance_is_not_rising() {
        let mut run = Run::new(8);
        for i in 0..100 {
            run.answer(i * 30, 1 + i % 20, Signal::Answered);
        }
        assert_eq!(run.rules.limit(), 8);
    }

    #[test]
    fn refusals_and_unused_places_change_nothing() {
        let mut run = Run::new(64);
        assert_eq!(run.answer(0, 300, Signal::Neutral), 2);
        let t0 = run.t0;
        let idle = Sample {
            started: t0,
            finished: t0 + MS * 300,
            limit: 2,
            saturated: false,
            signal: Signal::Answered,
        };
        assert_eq!(run.rules.record(idle), 2, "the limit was not in use");
        let stale = Sample {
            limit: 1,
            saturated: true,
            ..idle
        };
        assert_eq!(
            run.rules.record(stale),
            2,
            "let through under another limit"
        );
    }

    #[test]
    fn the_limiter_lets_through_at_most_the_limit_and_frees_on_drop() {
        let limiter = Limiter::new(8);
        let a = limiter.acquire().now_or_never().expect("first place");
        let b = limiter.acquire().now_or_never().expect("second place");
        assert!(!a.saturated && b.saturated);
        assert!(limiter.try_acquire().is_none(), "the limit is 2");
        let mut waiting = Box::pin(limiter.acquire());
        assert!((&mut waiting).now_or_never().is_none());
        drop(a);
        let c = waiting.now_or_never().expect("a freed place is taken");
        // A success with the limit in use raises it.
        assert_eq!(b.finish(Signal::Answered), 3);
        let d = limiter.try_acquire().expect("a place");
        let e = limiter.try_acquire().expect("the new place");
        assert!(limiter.try_acquire().is_none(), "the limit is 3");
        // An overload cuts it at once: two in flight is the limit now.
        assert_eq!(c.finish(Signal::Overload), 2);
        assert!(limiter.try_acquire().is_none());
        drop(d);
        let _f = limiter.try_acquire().expect("below the limit again");
        drop(e);
    }
}
