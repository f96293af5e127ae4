//! Faults the simulator injects on request, to show how the service behaves when a real
//! appliance is slow, overloaded, unreachable mid-call or older.

use std::time::Duration;

/// What to get wrong, and how. Changed at run time through [`super::Simulator::set_faults`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Faults {
    /// Added to every answer.
    pub latency: Duration,
    /// The next `fail_next` calls answer `fail_status` (default 503).
    pub fail_next: u32,
    /// Calls answered normally before the `fail_next` failures begin, to fail a request
    /// part-way through (after its read, say).
    pub fail_after: u32,
    pub fail_status: u16,
    /// Sent with the injected failures, in seconds.
    pub retry_after_secs: Option<u64>,
    /// The next `fail_next_reads` GET calls answer `fail_status`, while changes go through:
    /// how a confirmation read can fail after a successful add.
    pub fail_next_reads: u32,
    /// Never answer any call (until the client gives up).
    pub hang: bool,
    /// Never answer the next `hang_next` calls; later ones are answered.
    pub hang_next: u32,
    /// Never answer a GET, while changes are answered: how a confirmation read can run out
    /// of time after a successful add.
    pub hang_reads: bool,
    /// Answer adds with counts only, as older appliances do.
    pub no_lists: bool,
    /// Answer adds with only `{"response":"SUCCESS"}`.
    pub bare_success: bool,
    /// Refuse the compact `YYYYMMDDTHHMMSS` date form, as one 7.1 appliance did.
    pub refuse_compact_date: bool,
    /// Apply the next `reset_after_change` changes, then cut the connection instead of answering.
    pub reset_after_change: u32,
    /// How far the appliance's clock is from the real time, in seconds (signed): past
    /// ±30 minutes every signed call gets `API DATE ERROR`.
    pub clock_offset_secs: i64,
    /// Entries the appliance drops without saying so: a 200 SUCCESS that leaves them out
    /// of both lists, as it does with values it does not accept.
    pub reject_entries: Vec<String>,
    /// Check a GET's signature over the percent-decoded query instead of the bytes sent.
    pub sign_decoded_query: bool,
    /// Capacity: a call arriving while this many are in progress is answered 503 with
    /// `Retry-After` (`retry_after_secs`, else 1) at once. 0: no cap.
    pub max_in_flight: usize,
}

impl Faults {
    /// Whether a call arriving with `in_flight` calls in progress (itself included) is
    /// over capacity, and the `Retry-After` seconds to send it.
    pub fn over_capacity(&self, in_flight: usize) -> Option<u64> {
        (self.max_in_flight > 0 && in_flight > self.max_in_flight)
            .then(|| self.retry_after_secs.unwrap_or(1))
    }

    /// The status of an injected failure, consuming one if any is due. `is_read` says
    /// whether the call is a GET, which `fail_next_reads` also applies to.
    pub fn take_failure(&mut self, is_read: bool) -> Option<(u16, Option<u64>)> {
        let due = self.fail_next > 0 || (is_read && self.fail_next_reads > 0);
        if !due {
            return None;
        }
        if self.fail_after > 0 {
            self.fail_after -= 1;
            return None;
        }
        if self.fail_next > 0 {
            self.fail_next -= 1;
        } else {
            self.fail_next_reads -= 1;
        }
        let status = if self.fail_status == 0 {
            503
        } else {
            self.fail_status
        };
        Some((status, self.retry_after_secs))
    }

    /// Whether this call should never be answered, consuming one `hang_next` if due.
    /// `is_read` says whether the call is a GET, which `hang_reads` applies to.
    pub fn take_hang(&mut self, is_read: bool) -> bool {
        if self.hang || (is_read && self.hang_reads) {
            return true;
        }
        if self.hang_next > 0 {
            self.hang_next -= 1;
            return true;
        }
        false
    }

    /// Whether the change just applied should go unanswered, consuming one if due.
    pub fn take_reset(&mut self) -> bool {
        if self.reset_after_change > 0 {
            self.reset_after_change -= 1;
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counted_faults_run_out() {
        let mut f = Faults {
            fail_next: 1,
            fail_next_reads: 1,
            hang_next: 1,
            reset_after_change: 1,
            ..Faults::default()
        };
        assert_eq!(f.take_failure(false), Some((503, None)));
        assert_eq!(
            f.take_failure(false),
            None,
            "reads-only failures spare changes"
        );
        assert_eq!(f.take_failure(true), Some((503, None)));
        assert_eq!(f.take_failure(true), None);
        assert!(f.take_hang(false) && !f.take_hang(false));
        assert!(f.take_reset() && !f.take_reset());
    }

    #[test]
    fn calls_beyond_capacity_are_refused_with_a_wait() {
        let mut f = Faults {
            max_in_flight: 3,
            ..Faults::default()
        };
        assert_eq!(f.over_capacity(3), None);
        assert_eq!(f.over_capacity(4), Some(1));
        f.retry_after_secs = Some(0);
        assert_eq!(f.over_capacity(4), Some(0));
        f.max_in_flight = 0;
        assert_eq!(f.over_capacity(1000), None, "no cap");
    }

    #[test]
    fn a_permanent_hang_never_runs_out() {
        let mut f = Faults {
            hang: true,
            ..Faults::default()
        };
        assert!((0..5).all(|_| f.take_hang(false)));
    }

    #[test]
    fn failures_begin_after_the_calls_let_through() {
        let mut faults = Faults {
            fail_next: 2,
            fail_after: 1,
            fail_status: 400,
            ..Faults::default()
        };
        let taken: Vec<_> = (0..4).map(|_| faults.take_failure(false)).collect();
        assert_eq!(
            taken,
            vec![None, Some((400, None)), Some((400, None)), None]
        );
    }
}
