//! What a Darktrace answer means, and whether trying again can help: written out in one place.
//!
//! Retried: connection errors, timeouts, 408, 429 and 5xx. Never retried: every other 4xx,
//! the 400 signature and date errors, and redirects (Darktrace's way of saying "not logged
//! in" or "no permission"). A re-add is harmless, so retrying an add is safe.

use std::time::Duration;

use rand::Rng;
use reqwest::StatusCode;

use crate::outcome::{Reason, Verdict};

/// The longest `Retry-After` the service will honour; longer waits are cut to this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Why a Darktrace call did not succeed. Each maps to one `failed` reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    #[error("{0}")]
    Auth(String),
    #[error("Darktrace refused the request date (API DATE ERROR)")]
    Clock,
    #[error("Darktrace refused the call for lack of permission")]
    Permission,
    #[error("{0}")]
    Tls(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("Darktrace did not answer within DARKTRACE_TIMEOUT_SECS")]
    Timeout,
    #[error("{0}")]
    Unexpected(String),
}

impl CallError {
    /// The result every item of the failed call gets.
    pub fn verdict(&self) -> Verdict {
        match self {
            CallError::Auth(detail) => Verdict::new(Reason::DarktraceAuth, detail.clone()),
            CallError::Clock => Verdict::new(
                Reason::DarktraceClock,
                "Darktrace refused the request date (API DATE ERROR): check this host's clock; Darktrace allows about ±30 minutes",
            ),
            CallError::Permission => Verdict::new(
                Reason::DarktracePermission,
                "Darktrace refused the call: the API token needs the \"Edit Domains\" permission",
            ),
            CallError::Tls(detail) => Verdict::new(Reason::DarktraceTls, detail.clone()),
            CallError::Unavailable(detail) => {
                Verdict::new(Reason::DarktraceUnavailable, detail.clone())
            }
            CallError::Timeout => Verdict::new(
                Reason::DarktraceTimeout,
                "Darktrace did not answer within DARKTRACE_TIMEOUT_SECS",
            ),
            CallError::Unexpected(detail) => Verdict::new(Reason::DarktraceError, detail.clone()),
        }
    }

    /// A short label for metrics and logs.
    pub fn class(&self) -> &'static str {
        self.verdict().reason.as_str()
    }
}

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// 2xx: the body is the answer.
    Done,
    /// Worth another try, after `after` when Darktrace said when.
    Retry {
        error: CallError,
        after: Option<Duration>,
    },
    /// Trying again cannot help.
    Fail(CallError),
}

/// Classifies an HTTP answer. `location` is the redirect target, `body` the answer's bytes.
pub fn classify_status(
    status: StatusCode,
    location: Option<&str>,
    retry_after: Option<Duration>,
    body: &[u8],
) -> Attempt {
    let code = status.as_u16();
    if status.is_success() {
        return Attempt::Done;
    }
    if status.is_redirection() {
        let target = location.unwrap_or("").trim();
        let path = target
            .split(['?', '#'])
            .next()
            .unwrap_or("")
            .trim_end_matches('/');
        return Attempt::Fail(if path.ends_with("/403") {
            CallError::Permission
        } else if path.ends_with("/login") || target.is_empty() {
            CallError::Auth(
                "Darktrace redirected to its login page: the public token is unknown or was not sent (check DARKTRACE_PUBLIC_TOKEN)".into(),
            )
        } else {
            // Not the appliance's answer to a token: a scheme or host redirect (http to
            // https, a load balancer). Its target is shown without its query.
            CallError::Unexpected(format!(
                "Darktrace answered {code} redirecting to {}: check DARKTRACE_HOST (scheme, host and port)",
                target.split('?').next().unwrap_or("")
            ))
        });
    }
    let text = String::from_utf8_lossy(&body[..body.len().min(512)]);
    match code {
        400 if text.contains("API SIGNATURE ERROR") => Attempt::Fail(CallError::Auth(
            "Darktrace refused the signature (API SIGNATURE ERROR): check DARKTRACE_PUBLIC_TOKEN and DARKTRACE_PRIVATE_TOKEN".into(),
        )),
        400 if text.contains("API DATE ERROR") => Attempt::Fail(CallError::Clock),
        401 => Attempt::Fail(CallError::Auth(
            "Darktrace answered 401: check DARKTRACE_PUBLIC_TOKEN and DARKTRACE_PRIVATE_TOKEN".into(),
        )),
        403 => Attempt::Fail(CallError::Permission),
        407 => Attempt::Fail(CallError::Unexpected(
            "the proxy answered 407 (Proxy Authentication Required): put its credentials in the proxy URL, http://user:password@proxy:port".into(),
        )),
        408 => Attempt::Retry {
            error: CallError::Timeout,
            after: retry_after,
        },
        429 | 500..=599 => Attempt::Retry {
            error: CallError::Unavailable(format!("Darktrace answered {code}")),
            after: retry_after,
        },
        _ => Attempt::Fail(CallError::Unexpected(format!(
            "Darktrace answered {code} unexpectedly"
        ))),
    }
}

/// Reads `Retry-After`: seconds or an HTTP date, clamped to [`MAX_RETRY_AFTER`].
pub fn parse_retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    let value = value.trim();
    let wait = match value.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => httpdate::parse_http_date(value)
            .ok()?
            .duration_since(now)
            .unwrap_or(Duration::ZERO),
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

/// Capped exponential backoff with jitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_millis(500),
            cap: Duration::from_secs(20),
        }
    }
}

impl Backoff {
    /// The wait before retry number `retry` (0-based): between half and all of
    /// `min(cap, base · 2^retry)`, so parallel callers spread out.
    pub fn delay(&self, retry: u32) -> Duration {
        let full = self
            .base
            .saturating_mul(1u32 << retry.min(16))
            .min(self.cap);
        let half = full / 2;
        let jitter = rand::rng().random_range(0..=half.as_millis() as u64);
        half + Duration::from_millis(jitter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    fn classify(code: u16, location: Option<&str>, body: &str) -> Attempt {
        classify_status(
            StatusCode::from_u16(code).unwrap(),
            location,
            None,
            body.as_bytes(),
        )
    }

    #[test]
    fn appliance_errors_are_never_retried() {
        let sig = classify(400, None, "{\n  \"intelfeed\": \"API SIGNATURE ERROR\"\n}");
        assert!(matches!(sig, Attempt::Fail(CallError::Auth(_))));
        let date = classify(400, None, "{\n  \"intelfeed\": \"API DATE ERROR\"\n}");
        assert_eq!(date, Attempt::Fail(CallError::Clock));
        assert_eq!(
            classify(302, Some("/403"), ""),
            Attempt::Fail(CallError::Permission)
        );
        assert!(matches!(
            classify(302, Some("/login"), ""),
            Attempt::Fail(CallError::Auth(_))
        ));
        assert!(matches!(
            classify(401, None, ""),
            Attempt::Fail(CallError::Auth(_))
        ));
        assert_eq!(
            classify(403, None, ""),
            Attempt::Fail(CallError::Permission)
        );
        assert!(matches!(
            classify(404, None, ""),
            Attempt::Fail(CallError::Unexpected(_))
        ));
        match classify(407, None, "") {
            Attempt::Fail(CallError::Unexpected(detail)) => assert!(detail.contains("407")),
            other => panic!("407: {other:?}"),
        }
        assert!(matches!(
            classify(400, None, "other"),
            Attempt::Fail(CallError::Unexpected(_))
        ));
    }

    #[test]
    fn overload_and_server_errors_are_retried() {
        for code in [408, 429, 500, 502, 503, 504] {
            assert!(
                matches!(classify(code, None, ""), Attempt::Retry { .. }),
                "{code}"
            );
        }
        assert_eq!(classify(200, None, ""), Attempt::Done);
    }

    #[test]
    fn retry_after_reads_seconds_and_dates_and_is_clamped() {
        let now = SystemTime::now();
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("3600", now), Some(MAX_RETRY_AFTER));
        let later = now + Duration::from_secs(30);
        let date = httpdate::fmt_http_date(later);
        let wait = parse_retry_after(&date, now).unwrap();
        assert!(
            wait <= Duration::from_secs(30) && wait >= Duration::from_secs(28),
            "{wait:?}"
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn backoff_grows_within_its_cap() {
        let b = Backoff::default();
        for retry in 0..20 {
            let full = b.base.saturating_mul(1 << retry.min(16)).min(b.cap);
            let d = b.delay(retry);
            assert!(d >= full / 2 && d <= full, "retry {retry}: {d:?}");
        }
        assert!(b.delay(30) <= b.cap);
    }

    #[test]
    fn only_a_redirect_to_the_login_page_is_an_auth_failure() {
        assert!(matches!(
            classify(302, Some("/login?next=/intelfeed"), ""),
            Attempt::Fail(CallError::Auth(_))
        ));
        assert!(matches!(
            classify(302, None, "Found."),
            Attempt::Fail(CallError::Auth(_))
        ));
        match classify(301, Some("https://dt.example/intelfeed"), "") {
            Attempt::Fail(CallError::Unexpected(detail)) => {
                assert!(detail.contains("DARKTRACE_HOST"), "{detail}")
            }
            other => panic!("{other:?}"),
        }
    }
}
