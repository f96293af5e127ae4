//! Faults the simulator injects on request, to show how the service behaves when a real
//! appliance is slow, overloaded or older.

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
    /// Never answer (until the client gives up).
    pub hang: bool,
    /// Answer adds with counts only, as older appliances do.
    pub no_lists: bool,
    /// Answer adds with only `{"response":"SUCCESS"}`.
    pub bare_success: bool,
    /// Refuse the compact `YYYYMMDDTHHMMSS` date form, as one 7.1 appliance did.
    pub refuse_compact_date: bool,
    /// Apply the next `reset_after_change` changes, then cut the connection instead of answering.
    pub reset_after_change: u32,
}

impl Faults {
    /// The status of an injected failure, consuming one if any is due.
    pub fn take_failure(&mut self) -> Option<(u16, Option<u64>)> {
        if self.fail_next == 0 {
            return None;
        }
        if self.fail_after > 0 {
            self.fail_after -= 1;
            return None;
        }
        self.fail_next -= 1;
        let status = if self.fail_status == 0 {
            503
        } else {
            self.fail_status
        };
        Some((status, self.retry_after_secs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_begin_after_the_calls_let_through() {
        let mut faults = Faults {
            fail_next: 2,
            fail_after: 1,
            fail_status: 400,
            ..Faults::default()
        };
        let taken: Vec<_> = (0..4).map(|_| faults.take_failure()).collect();
        assert_eq!(
            taken,
            vec![None, Some((400, None)), Some((400, None)), None]
        );
    }
}
