//! ThreatQ's REST API as a pull needs it: a token from `/api/token` (password or client
//! credentials grant), renewed before it runs out and once on a 401, and the pages of a
//! data collection. Failures are retried as Darktrace's are (connect errors, timeouts, 408,
//! 429 with `Retry-After`, 5xx), bounded by the same retry count and backoff.

use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::config::{ConfigError, ThreatqAuth, ThreatqConfig};
use crate::darktrace::retry::{Backoff, parse_retry_after};
use crate::darktrace::tls;

/// The token lifetime assumed when ThreatQ does not say (ThreatQ's SDK assumes 30 minutes).
pub const ASSUMED_TOKEN_LIFETIME: Duration = Duration::from_secs(30 * 60);
/// Renew at most this long before a token runs out.
pub const RENEW_EARLY: Duration = Duration::from_secs(60);

/// Why ThreatQ could not be read. No variant carries a secret or ThreatQ's own words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ThreatqError {
    #[error(
        "ThreatQ refused the credentials (HTTP {0} from /api/token): check THREATQ_CLIENT_ID and THREATQ_EMAIL/THREATQ_PASSWORD or THREATQ_CLIENT_SECRET"
    )]
    Credentials(u16),
    #[error("ThreatQ answered 401 to a fresh token: the user may not read the collection")]
    Unauthorized,
    #[error("ThreatQ did not answer within DARKTRACE_TIMEOUT_SECS")]
    Timeout,
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Tls(String),
    #[error("{0}")]
    Answer(String),
    /// 404: what was asked for is not there; [`ThreatqClient::page`] names the collection.
    #[error("HTTP 404 from ThreatQ: check THREATQ_URL")]
    NotFound,
}

/// How one attempt ended.
enum Attempt {
    Done(Bytes),
    Retry(ThreatqError, Option<Duration>),
    Fail(ThreatqError),
    /// 401 on the collection: the token is no longer good.
    Expired,
}

/// When a token obtained at `obtained`, valid for `expires_in` seconds, should be renewed:
/// a tenth of its life early, at most [`RENEW_EARLY`].
pub fn renew_at(obtained: Instant, expires_in: Option<u64>) -> Instant {
    let life = expires_in.map_or(ASSUMED_TOKEN_LIFETIME, Duration::from_secs);
    let early = (life / 10).min(RENEW_EARLY);
    obtained + (life - early)
}

#[derive(Debug)]
struct Token {
    access: SecretString,
    renew_at: Instant,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: Option<String>,
    expires_in: Option<serde_json::Value>,
    errors: Option<serde::de::IgnoredAny>,
}

/// A client for one ThreatQ and one collection.
pub struct ThreatqClient {
    http: reqwest::Client,
    base: Url,
    client_id: String,
    auth: ThreatqAuth,
    collection: String,
    page_size: usize,
    max_retries: u32,
    backoff: Backoff,
    token: Mutex<Option<Token>>,
}

impl std::fmt::Debug for ThreatqClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreatqClient")
            .field("base", &self.base.as_str())
            .field("collection", &self.collection)
            .finish_non_exhaustive()
    }
}

impl ThreatqClient {
    /// Builds the client, trusting ThreatQ's certificate as the Darktrace settings would
    /// (public roots, `THREATQ_CA_FILE`, `THREATQ_CERT_SHA256`, or nothing checked).
    pub fn new(config: &ThreatqConfig) -> Result<Self, ConfigError> {
        let (tls, _refusals) = tls::client_config(&config.trust)?;
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(config.timeout)
            .timeout(config.timeout)
            .user_agent(concat!("darktrace-export/", env!("CARGO_PKG_VERSION")))
            .no_proxy()
            .build()
            .map_err(|e| {
                ConfigError::new("THREATQ_URL", format!("cannot build the HTTP client: {e}"))
            })?;
        Ok(ThreatqClient {
            http,
            base: config.base_url.clone(),
            client_id: config.client_id.clone(),
            auth: config.auth.clone(),
            collection: config.collection.clone(),
            page_size: config.page_size,
            max_retries: config.max_retries,
            backoff: Backoff::default(),
            token: Mutex::new(None),
        })
    }

    /// Replaces the backoff (tests keep it short).
    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Gets a fresh token, whatever is held.
    pub async fn authenticate(&self) -> Result<(), ThreatqError> {
        let token = self.request_token().await?;
        *self.token.lock().await = Some(token);
        Ok(())
    }

    /// One page of the collection from `cursor` (`*` first): the answer's bytes. The token
    /// is renewed when due, and once more if ThreatQ answers 401.
    pub async fn page(&self, cursor: &str) -> Result<Bytes, ThreatqError> {
        let mut url = self.base.clone();
        url.set_path(&format!("/api/indicators/query/hash/{}", self.collection));
        url.query_pairs_mut()
            .append_pair("limit", &self.page_size.to_string())
            .append_pair("cursorMark", cursor);
        let mut renewed = false;
        loop {
            let bearer = self.bearer(renewed).await?;
            let sent = self.with_retries(|| {
                self.http
                    .get(url.clone())
                    .header(AUTHORIZATION, sensitive(&bearer))
            });
            match sent.await {
                Ok(bytes) => return Ok(bytes),
                Err(None) if !renewed => {
                    tracing::info!("ThreatQ answered 401 while paging; getting a new token");
                    renewed = true;
                }
                Err(None) => return Err(ThreatqError::Unauthorized),
                Err(Some(ThreatqError::NotFound)) => {
                    return Err(ThreatqError::Answer(format!(
                        "HTTP 404: ThreatQ has no data collection '{}'; check THREATQ_COLLECTION (the hash at the end of the collection's URL in ThreatQ)",
                        self.collection
                    )));
                }
                Err(Some(error)) => return Err(error),
            }
        }
    }

    /// `Bearer <token>` (capital B: ThreatQ refuses `bearer`), renewing when due or `force`d.
    async fn bearer(&self, force: bool) -> Result<String, ThreatqError> {
        let mut held = self.token.lock().await;
        let due = held
            .as_ref()
            .is_none_or(|t| force || Instant::now() >= t.renew_at);
        if due {
            *held = Some(self.request_token().await?);
        }
        let token = held.as_ref().expect("a token was just set");
        Ok(format!("Bearer {}", token.access.expose_secret()))
    }

    async fn request_token(&self) -> Result<Token, ThreatqError> {
        let mut url = self.base.clone();
        url.set_path("/api/token");
        let obtained = Instant::now();
        let answer = self
            .with_retries(|| match &self.auth {
                // As ThreatQ's SDK sends it: grant and client id in the query, the user as JSON.
                ThreatqAuth::Password { email, password } => {
                    let mut url = url.clone();
                    url.query_pairs_mut()
                        .append_pair("grant_type", "password")
                        .append_pair("client_id", &self.client_id);
                    let body = serde_json::json!({
                        "email": email,
                        "password": password.expose_secret(),
                    });
                    self.http
                        .post(url)
                        .header(CONTENT_TYPE, "application/json")
                        .body(body.to_string())
                }
                ThreatqAuth::ClientCredentials { secret } => self
                    .http
                    .post(url.clone())
                    .basic_auth(&self.client_id, Some(secret.expose_secret()))
                    .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body("grant_type=client_credentials"),
            })
            .await;
        let bytes = match answer {
            Ok(bytes) => bytes,
            Err(None) => return Err(ThreatqError::Credentials(401)),
            Err(Some(ThreatqError::Answer(why))) if why.starts_with("HTTP 400") => {
                return Err(ThreatqError::Credentials(400));
            }
            Err(Some(error)) => return Err(error),
        };
        let answer: TokenAnswer = serde_json::from_slice(&bytes).map_err(|_| {
            ThreatqError::Answer(
                "ThreatQ's /api/token answered with a body that is not JSON".into(),
            )
        })?;
        if answer.errors.is_some() {
            return Err(ThreatqError::Credentials(200));
        }
        let access = answer
            .access_token
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ThreatqError::Answer("ThreatQ's /api/token answered without an access_token".into())
            })?;
        let expires_in = answer.expires_in.and_then(|v| match v {
            serde_json::Value::Number(n) => n.as_u64(),
            serde_json::Value::String(s) => s.trim().parse().ok(),
            _ => None,
        });
        tracing::debug!(expires_in, "ThreatQ token obtained");
        Ok(Token {
            access: SecretString::from(access),
            renew_at: renew_at(obtained, expires_in),
        })
    }

    /// Sends the request `build` makes, retrying what may pass. `Err(None)` is a 401.
    async fn with_retries(
        &self,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<Bytes, Option<ThreatqError>> {
        let mut retry = 0;
        loop {
            match attempt(build()).await {
                Attempt::Done(bytes) => return Ok(bytes),
                Attempt::Expired => return Err(None),
                Attempt::Fail(error) => return Err(Some(error)),
                Attempt::Retry(error, after) if retry < self.max_retries => {
                    let wait = after.unwrap_or_else(|| self.backoff.delay(retry));
                    tracing::warn!(error = %error, retry = retry + 1, wait_ms = wait.as_millis() as u64, "ThreatQ call failed; retrying");
                    retry += 1;
                    tokio::time::sleep(wait).await;
                }
                Attempt::Retry(error, _) => return Err(Some(error)),
            }
        }
    }
}

async fn attempt(request: reqwest::RequestBuilder) -> Attempt {
    let response = match request.send().await {
        Ok(response) => response,
        Err(error) => return transport(&error),
    };
    let status = response.status();
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, std::time::SystemTime::now()));
    let bytes = match response.bytes().await {
        Ok(bytes) => bytes,
        Err(error) => return transport(&error),
    };
    classify(status, retry_after, bytes)
}

/// What an answer means: written out, as for Darktrace.
fn classify(status: StatusCode, retry_after: Option<Duration>, bytes: Bytes) -> Attempt {
    let code = status.as_u16();
    match code {
        200..=299 if holds_errors(&bytes) => Attempt::Fail(ThreatqError::Answer(
            "ThreatQ answered 200 with \"errors\" in its body".into(),
        )),
        200..=299 => Attempt::Done(bytes),
        401 => Attempt::Expired,
        408 => Attempt::Retry(ThreatqError::Timeout, retry_after),
        429 | 500..=599 => Attempt::Retry(
            ThreatqError::Unavailable(format!("ThreatQ answered {code}")),
            retry_after,
        ),
        404 => Attempt::Fail(ThreatqError::NotFound),
        300..=399 => Attempt::Fail(ThreatqError::Answer(format!(
            "HTTP {code}: ThreatQ redirected; check THREATQ_URL (scheme, host and port)"
        ))),
        _ => Attempt::Fail(ThreatqError::Answer(format!(
            "HTTP {code} from ThreatQ, unexpectedly"
        ))),
    }
}

/// True when a JSON object answer holds a top-level `"errors"` (ThreatQ's SDK treats that as
/// an error even in a 200). Only the first bytes are looked at for the key's presence in an
/// object's top level, read without building the answer.
fn holds_errors(bytes: &[u8]) -> bool {
    #[derive(Deserialize)]
    struct Probe {
        errors: Option<serde::de::IgnoredAny>,
    }
    // Only small answers (a token, an error) are probed: a page is checked as it is read.
    bytes.len() < 64 * 1024
        && serde_json::from_slice::<Probe>(bytes).is_ok_and(|p| p.errors.is_some())
}

fn transport(error: &reqwest::Error) -> Attempt {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(err) = cause {
        if let Some(tls) = tls::rustls_error_in(err) {
            return Attempt::Fail(ThreatqError::Tls(format!(
                "TLS with ThreatQ failed ({tls}): check THREATQ_URL, THREATQ_CA_FILE, THREATQ_CERT_SHA256, THREATQ_ENABLE_SSL_VERIFICATION"
            )));
        }
        cause = err.source();
    }
    if error.is_timeout() {
        return Attempt::Retry(ThreatqError::Timeout, None);
    }
    let what = if error.is_connect() {
        "cannot connect to ThreatQ (refused, unreachable or unknown host); check THREATQ_URL"
    } else {
        "the connection to ThreatQ failed (reset or closed)"
    };
    Attempt::Retry(ThreatqError::Unavailable(what.into()), None)
}

fn sensitive(value: &str) -> reqwest::header::HeaderValue {
    let mut header = reqwest::header::HeaderValue::from_str(value)
        .unwrap_or_else(|_| reqwest::header::HeaderValue::from_static(""));
    header.set_sensitive(true);
    header
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_renewed_a_tenth_of_its_life_early_and_at_most_a_minute() {
        let t0 = Instant::now();
        assert_eq!(renew_at(t0, Some(3600)), t0 + Duration::from_secs(3540));
        assert_eq!(renew_at(t0, Some(100)), t0 + Duration::from_secs(90));
        assert_eq!(renew_at(t0, Some(0)), t0);
        assert_eq!(renew_at(t0, None), t0 + Duration::from_secs(1740));
    }

    #[test]
    fn errors_in_a_200_are_an_error_and_5xx_429_are_retried() {
        let ok = |body: &str| classify(StatusCode::OK, None, Bytes::from(body.to_owned()));
        assert!(matches!(ok(r#"{"data":[]}"#), Attempt::Done(_)));
        assert!(matches!(ok(r#"{"errors":["no"]}"#), Attempt::Fail(_)));
        assert!(matches!(
            ok(r#"{"data":{"errors":{"e":["x"]}}}"#),
            Attempt::Done(_)
        ));
        let after = Some(Duration::from_secs(2));
        for code in [429, 500, 503] {
            let status = StatusCode::from_u16(code).unwrap();
            match classify(status, after, Bytes::new()) {
                Attempt::Retry(_, wait) => assert_eq!(wait, after),
                _ => panic!("{code} is retried"),
            }
        }
        assert!(matches!(
            classify(StatusCode::UNAUTHORIZED, None, Bytes::new()),
            Attempt::Expired
        ));
        assert!(matches!(
            classify(StatusCode::NOT_FOUND, None, Bytes::new()),
            Attempt::Fail(_)
        ));
    }
}
