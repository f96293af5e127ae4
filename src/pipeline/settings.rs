//! The settings of one request: the configured defaults with its overrides applied.

use chrono::{DateTime, Duration as ChronoDuration, Utc};

use crate::threatq::Score;

/// Darktrace's strength of an entry (0 to 100), as `STRENGTH` sets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strength {
    /// The same for every entry.
    Fixed(u8),
    /// ThreatQ's score x 10; an item without a score is sent without a strength.
    Score,
}

impl Strength {
    /// The strength sent for an item scored `score`.
    pub fn of(self, score: Option<Score>) -> Option<u8> {
        match self {
            Strength::Fixed(n) => Some(n),
            Strength::Score => score.map(|s| u8::try_from(s.tenths().min(100)).unwrap_or(100)),
        }
    }
}

/// The settings of one request: the configured defaults with its overrides applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestSettings {
    pub source: String,
    /// UTC `YYYY-MM-DDTHH:MM:SS`, or `None` for no expiry.
    pub expiry: Option<String>,
    pub description: Option<String>,
    /// Add entries with Darktrace's `iagn: true` (`AUTONOMOUS_RESPONSE`).
    pub iagn: bool,
    /// Darktrace's strength of the entries (`STRENGTH`); `None` leaves it out.
    pub strength: Option<Strength>,
    pub dry_run: bool,
    /// `/sync` only: carry out a plan over `SYNC_MAX_REMOVALS`.
    pub force: bool,
}

/// `now + days` in Darktrace's expiry form; `0` days means no expiry.
pub fn expiry_after(days: u32, now: DateTime<Utc>) -> Option<String> {
    (days > 0).then(|| {
        (now + ChronoDuration::days(i64::from(days)))
            .format("%Y-%m-%dT%H:%M:%S")
            .to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn expiry_is_now_plus_days_in_darktrace_form() {
        let now = Utc.with_ymd_and_hms(2026, 11, 27, 17, 52, 2).unwrap();
        assert_eq!(
            expiry_after(30, now).as_deref(),
            Some("2026-12-27T17:52:02")
        );
        assert_eq!(expiry_after(0, now), None);
    }
}
