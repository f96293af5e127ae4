//! The Darktrace client: signs every attempt, sends, classifies, retries.
//!
//! One client serves the whole process, and its [`Limiter`] is the one limit on Darktrace
//! calls in flight, shared by every request: adaptive, from 2 up to `DARKTRACE_CONCURRENCY`
//! (see [`super::limit`]). A permit is held for one attempt only, never across a backoff
//! wait.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use reqwest::header::{CONTENT_TYPE, HeaderValue, LOCATION, RETRY_AFTER};
use reqwest::{Method, Url};
use secrecy::{ExposeSecret, SecretString};

use super::limit::{Limiter, Signal};
use super::retry::{Attempt, Backoff, CallError, classify_status, parse_retry_after};
use super::sign;
use super::tls::{self, Cause, Refusal, RefusalSlot, TrustSetup};
use super::wire::{AddAnswer, AddCall, EntryDetails, HeldName, remove_body};
use crate::config::{ConfigError, DarktraceConfig};
use crate::telemetry::metrics as telemetry;

/// The path of the Watched Domains API.
pub const INTELFEED: &str = "/intelfeed";

/// Where the signing time comes from; tests inject a skewed clock.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// How the client waits between attempts; tests inject one that records the wait and
/// returns at once, so backoff and `Retry-After` are checked without waiting.
pub type Sleep = Arc<dyn Fn(Duration) -> BoxFuture<'static, ()> + Send + Sync>;

/// Calls and retries made for one request, for its summary log line.
#[derive(Debug, Default)]
pub struct CallTally {
    pub calls: AtomicU64,
    pub retries: AtomicU64,
    /// The concurrency limit after the request's last attempt (0: no call made).
    pub concurrency_limit: AtomicUsize,
}

impl CallTally {
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }
    pub fn concurrency_limit(&self) -> usize {
        self.concurrency_limit.load(Ordering::Relaxed)
    }
}

#[derive(Clone)]
pub struct DarktraceClient {
    http: reqwest::Client,
    base: Url,
    public_token: SecretString,
    private_token: SecretString,
    limiter: Arc<Limiter>,
    max_retries: u32,
    backoff: Backoff,
    clock: Clock,
    sleep: Sleep,
    /// What was configured to trust, for advice that fits.
    trust: TrustSetup,
    /// The last certificate the verifier refused, for `check`.
    tls_refusals: RefusalSlot,
}

impl std::fmt::Debug for DarktraceClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DarktraceClient")
            .field("base", &self.base.as_str())
            .finish_non_exhaustive()
    }
}

impl DarktraceClient {
    /// Builds the client; a CA bundle that does not parse is a configuration error.
    pub fn new(config: &DarktraceConfig) -> Result<Self, ConfigError> {
        let (tls, tls_refusals) = tls::client_config(&config.trust)?;
        let mut builder = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(config.timeout)
            .pool_max_idle_per_host(config.concurrency)
            .user_agent(concat!("darktrace-export/", env!("CARGO_PKG_VERSION")))
            // The proxy was chosen from the environment with the configuration; the
            // library must not pick one up on its own.
            .no_proxy();
        if let Some(route) = &config.proxy {
            let proxy = reqwest::Proxy::all(route.url().clone())
                .map_err(|_| ConfigError::new(route.variable, "is not a usable proxy URL"))?;
            builder = builder.proxy(proxy);
        }
        let http = builder.timeout(config.timeout).build().map_err(|e| {
            ConfigError::new(
                "DARKTRACE_HOST",
                format!("cannot build the HTTP client: {e}"),
            )
        })?;
        Ok(DarktraceClient {
            http,
            base: config.base_url.clone(),
            public_token: config.public_token.clone(),
            private_token: config.private_token.clone(),
            limiter: Arc::new(Limiter::new(config.concurrency)),
            max_retries: config.max_retries,
            backoff: config.backoff,
            clock: Arc::new(Utc::now),
            sleep: Arc::new(|wait| tokio::time::sleep(wait).boxed()),
            trust: TrustSetup::of(&config.trust),
            tls_refusals,
        })
    }

    /// Replaces the signing clock (tests of the date window).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Replaces the backoff (tests keep it short).
    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Replaces how the client waits between attempts (tests record the waits).
    pub fn with_sleep(mut self, sleep: Sleep) -> Self {
        self.sleep = sleep;
        self
    }

    /// Replaces the number of retries after the first attempt (`check` makes one call).
    pub fn with_max_retries(mut self, max_retries: u32) -> Self {
        self.max_retries = max_retries;
        self
    }

    /// How many calls may be in flight now (the adaptive limit).
    pub fn concurrency_limit(&self) -> usize {
        self.limiter.limit()
    }

    pub fn base_url(&self) -> &Url {
        &self.base
    }

    /// The last certificate Darktrace presented that was refused, and why.
    pub fn last_tls_refusal(&self) -> Option<Refusal> {
        self.tls_refusals
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// What was configured to trust Darktrace's certificate with.
    pub fn trust_setup(&self) -> TrustSetup {
        self.trust
    }

    /// Adds entries; the answer is returned only when Darktrace said SUCCESS.
    pub async fn add(&self, call: &AddCall<'_>, tally: &CallTally) -> Result<AddAnswer, CallError> {
        let body = self
            .send(Method::POST, "", Bytes::from(call.to_body()), tally)
            .await?;
        let answer: AddAnswer = parse_answer(&body)?;
        if !answer.is_success() {
            return Err(CallError::Unexpected(
                "Darktrace answered without \"response\": \"SUCCESS\"".into(),
            ));
        }
        Ok(answer)
    }

    /// Removes one entry from one source (never `removeall`).
    pub async fn remove(
        &self,
        entry: &HeldName,
        source: &str,
        tally: &CallTally,
    ) -> Result<(), CallError> {
        let body = self
            .send(
                Method::POST,
                "",
                Bytes::from(remove_body(entry, source)),
                tally,
            )
            .await?;
        let answer: AddAnswer = parse_answer(&body)?;
        if answer.response.is_some() && !answer.is_success() {
            return Err(CallError::Unexpected(
                "Darktrace answered the removal without SUCCESS".into(),
            ));
        }
        Ok(())
    }

    /// The names Darktrace holds under `source`.
    pub async fn entries(
        &self,
        source: &str,
        tally: &CallTally,
    ) -> Result<Vec<HeldName>, CallError> {
        let query = query(&[("source", source)]);
        parse_answer(&self.send(Method::GET, &query, Bytes::new(), tally).await?)
    }

    /// The entries under `source`, with their details.
    pub async fn entry_details(
        &self,
        source: &str,
        tally: &CallTally,
    ) -> Result<Vec<EntryDetails>, CallError> {
        let query = query(&[("fulldetails", "true"), ("source", source)]);
        parse_answer(&self.send(Method::GET, &query, Bytes::new(), tally).await?)
    }

    /// The source names Darktrace knows: the cheapest signed call, used by `check`.
    pub async fn sources(&self, tally: &CallTally) -> Result<Vec<String>, CallError> {
        parse_answer(
            &self
                .send(Method::GET, "sources=true", Bytes::new(), tally)
                .await?,
        )
    }

    /// Sends one call with retries. For a GET, `query` is signed and sent as is; for a
    /// POST, `body` is.
    async fn send(
        &self,
        method: Method,
        query: &str,
        body: Bytes,
        tally: &CallTally,
    ) -> Result<Bytes, CallError> {
        let mut retry = 0;
        loop {
            let started = Instant::now();
            let outcome = {
                let permit = self.limiter.acquire().await;
                tally.calls.fetch_add(1, Ordering::Relaxed);
                let (outcome, signal) = self.attempt(&method, query, &body).await;
                let limit = permit.finish(signal);
                tally.concurrency_limit.store(limit, Ordering::Relaxed);
                metrics::gauge!(telemetry::DARKTRACE_CONCURRENCY_LIMIT).set(limit as f64);
                outcome
            };
            // An attempt is `retried` only when another one follows; the last attempt of a
            // call that ran out of retries counts under its failure class.
            let result = match &outcome {
                Ok(_) | Err(Attempt::Done) => "ok",
                Err(Attempt::Retry { .. }) if retry < self.max_retries => "retried",
                Err(Attempt::Retry { error, .. }) | Err(Attempt::Fail(error)) => error.class(),
            };
            metrics::counter!(telemetry::DARKTRACE_CALLS, "result" => result).increment(1);
            metrics::histogram!(telemetry::DARKTRACE_DURATION)
                .record(started.elapsed().as_secs_f64());
            match outcome {
                Ok(bytes) => return Ok(bytes),
                Err(Attempt::Retry { error, after }) if retry < self.max_retries => {
                    let wait = wait_before_retry(&self.backoff, retry, after);
                    tracing::warn!(error = %error, retry = retry + 1, wait_ms = wait.as_millis() as u64, "Darktrace call failed; retrying");
                    tally.retries.fetch_add(1, Ordering::Relaxed);
                    retry += 1;
                    (self.sleep)(wait).await;
                }
                Err(Attempt::Retry { error, .. }) => {
                    return Err(match error {
                        CallError::Unavailable(detail) if retry > 0 => CallError::Unavailable(
                            format!("{detail} (after {} attempts)", retry + 1),
                        ),
                        other => other,
                    });
                }
                Err(Attempt::Fail(error)) => return Err(error),
                Err(Attempt::Done) => unreachable!("an attempt that is done returns Ok"),
            }
        }
    }

    /// One signed attempt, and what its answer says about the appliance's load. Signs
    /// afresh: the date is part of the signature.
    async fn attempt(
        &self,
        method: &Method,
        query: &str,
        body: &Bytes,
    ) -> (Result<Bytes, Attempt>, Signal) {
        let date = sign::date_header((self.clock)());
        let signed_part: &[u8] = if *method == Method::GET {
            query.as_bytes()
        } else {
            body
        };
        let signature = sign::request_signature(
            self.private_token.expose_secret().as_bytes(),
            self.public_token.expose_secret(),
            INTELFEED,
            signed_part,
            &date,
        );
        let mut url = self.base.clone();
        url.set_path(INTELFEED);
        url.set_query((!query.is_empty()).then_some(query));

        let mut request = self
            .http
            .request(method.clone(), url)
            .header("DTAPI-Token", sensitive(self.public_token.expose_secret()))
            .header("DTAPI-Date", sensitive(&date))
            .header("DTAPI-Signature", sensitive(&signature));
        if *method == Method::POST {
            request = request
                .header(CONTENT_TYPE, "application/json")
                .body(body.clone());
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) => return transport_failure(&e, self.trust),
        };
        let status = response.status();
        let signal = match status.as_u16() {
            200..=299 => Signal::Answered,
            429 | 503 => Signal::Overload,
            _ => Signal::Neutral,
        };
        let location = header_text(&response, LOCATION);
        let retry_after = header_text(&response, RETRY_AFTER)
            .and_then(|v| parse_retry_after(&v, std::time::SystemTime::now()));
        let bytes = match response.bytes().await {
            Ok(bytes) => bytes,
            Err(e) => return transport_failure(&e, self.trust),
        };
        let outcome = match classify_status(status, location.as_deref(), retry_after, &bytes) {
            Attempt::Done => Ok(bytes),
            other => Err(other),
        };
        (outcome, signal)
    }
}

/// Darktrace's `Retry-After` (already clamped) when it sent one, else the backoff.
pub fn wait_before_retry(backoff: &Backoff, retry: u32, retry_after: Option<Duration>) -> Duration {
    retry_after.unwrap_or_else(|| backoff.delay(retry))
}

/// A header value marked sensitive, so HTTP-level traces print it as redacted.
fn sensitive(value: &str) -> HeaderValue {
    let mut header = HeaderValue::from_str(value).unwrap_or_else(|_| HeaderValue::from_static(""));
    header.set_sensitive(true);
    header
}

fn header_text(response: &reqwest::Response, name: reqwest::header::HeaderName) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// A query string encoded once, so what is signed is what is sent.
fn query(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

fn parse_answer<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, CallError> {
    serde_json::from_slice(body).map_err(|_| {
        CallError::Unexpected(
            "Darktrace answered 200 with a body that is not the expected JSON".into(),
        )
    })
}

/// A failure before any complete HTTP answer, and its signal: a timeout is overload.
fn transport_failure(
    error: &reqwest::Error,
    trust: TrustSetup,
) -> (Result<Bytes, Attempt>, Signal) {
    let attempt = transport_attempt(error, trust);
    let signal = match &attempt {
        Attempt::Retry {
            error: CallError::Timeout,
            ..
        } => Signal::Overload,
        _ => Signal::Neutral,
    };
    (Err(attempt), signal)
}

/// A failure before any HTTP answer: TLS problems are final, the rest worth a retry.
fn transport_attempt(error: &reqwest::Error, trust: TrustSetup) -> Attempt {
    if let Some(tls) = tls_problem(error, trust) {
        return Attempt::Fail(CallError::Tls(tls));
    }
    if error.is_timeout() {
        return Attempt::Retry {
            error: CallError::Timeout,
            after: None,
        };
    }
    let what = if error.is_connect() {
        "cannot connect to Darktrace (refused, unreachable or unknown host); check DARKTRACE_HOST"
    } else {
        "the connection to Darktrace failed (reset or closed)"
    };
    Attempt::Retry {
        error: CallError::Unavailable(what.into()),
        after: None,
    }
}

/// Looks through the error's causes for a TLS problem.
fn tls_problem(error: &(dyn std::error::Error + 'static), trust: TrustSetup) -> Option<String> {
    let mut cause = Some(error);
    while let Some(err) = cause {
        if let Some(tls) = tls::rustls_error_in(err) {
            return Some(match Cause::of(tls) {
                Some(why) => format!(
                    "Darktrace's TLS certificate was refused ({}): {}",
                    why.words(),
                    why.advice(trust, None)
                ),
                None => format!(
                    "TLS with Darktrace failed ({tls}): check DARKTRACE_HOST's scheme and port, DARKTRACE_CA_FILE, ENABLE_SSL_VERIFICATION"
                ),
            });
        }
        cause = err.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::{CertificateError, Error as TlsError};

    /// The shape reqwest and hyper-util give a refused certificate.
    fn wrapped(tls: TlsError) -> std::io::Error {
        std::io::Error::other(std::io::Error::new(std::io::ErrorKind::InvalidData, tls))
    }

    #[test]
    fn a_refused_certificate_is_found_inside_nested_io_errors() {
        let err = wrapped(TlsError::InvalidCertificate(
            CertificateError::UnknownIssuer,
        ));
        let text = tls_problem(&err, TrustSetup::default()).expect("found");
        assert!(text.contains("DARKTRACE_CA_FILE") && text.contains("UnknownIssuer"));
    }

    #[test]
    fn a_non_tls_answer_points_at_scheme_and_port() {
        let err = wrapped(TlsError::InvalidMessage(
            rustls::InvalidMessage::InvalidContentType,
        ));
        assert!(
            tls_problem(&err, TrustSetup::default())
                .unwrap()
                .contains("DARKTRACE_HOST")
        );
    }

    #[test]
    fn other_io_errors_are_not_tls() {
        let err =
            std::io::Error::other(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert_eq!(tls_problem(&err, TrustSetup::default()), None);
    }
}
