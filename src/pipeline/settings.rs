//! The settings of one request: the configured defaults with its overrides applied.

use chrono::{DateTime, Duration as ChronoDuration, Utc};

/// The settings of one request: the configured defaults with its overrides applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestSettings {
    pub source: String,
    /// UTC `YYYY-MM-DDTHH:MM:SS`, or `None` for no expiry.
    pub expiry: Option<String>,
    pub description: Option<String>,
    /// Add entries with Darktrace's `iagn: true` (`AUTONOMOUS_RESPONSE`).
    pub iagn: bool,
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
