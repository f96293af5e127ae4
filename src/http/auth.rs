//! Bearer-token check for the routes that reach Darktrace.
//!
//! Tokens are compared as SHA-1 digests in constant time, so neither a token's content nor
//! its length leaks through timing; every configured token is compared on every request.

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use secrecy::{ExposeSecret, SecretString};
use sha1::{Digest, Sha1};
use subtle::ConstantTimeEq;

use crate::http::problem::Problem;

/// The accepted tokens, kept only as digests.
#[derive(Clone, Default)]
pub struct BearerTokens {
    digests: Vec<[u8; 20]>,
    open: bool,
}

impl std::fmt::Debug for BearerTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BearerTokens({} configured)", self.digests.len())
    }
}

impl BearerTokens {
    /// With no token, every request is let in (the configuration allowed it).
    pub fn new(tokens: &[SecretString]) -> Self {
        BearerTokens {
            digests: tokens.iter().map(|t| digest(t.expose_secret())).collect(),
            open: tokens.is_empty(),
        }
    }

    pub fn accepts(&self, presented: &str) -> bool {
        let presented = digest(presented);
        self.digests
            .iter()
            .fold(0u8, |found, d| found | d.ct_eq(&presented).unwrap_u8())
            == 1
    }

    fn check(&self, authorization: Option<&str>) -> Result<(), Problem> {
        if self.open {
            return Ok(());
        }
        let Some(value) = authorization else {
            return Err(Problem::unauthorized(
                "send Authorization: Bearer <token> (one of API_TOKENS)",
            ));
        };
        let token = value
            .split_once(' ')
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim());
        match token {
            Some(token) if self.accepts(token) => Ok(()),
            Some(_) => Err(Problem::unauthorized(
                "the bearer token is not one of API_TOKENS",
            )),
            None => Err(Problem::unauthorized(
                "the Authorization header is not a Bearer token",
            )),
        }
    }
}

fn digest(token: &str) -> [u8; 20] {
    Sha1::digest(token.as_bytes()).into()
}

/// Middleware: 401 with `WWW-Authenticate: Bearer` unless a configured token is presented.
pub async fn require_bearer(
    State(tokens): State<BearerTokens>,
    request: Request,
    next: Next,
) -> Response {
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match tokens.check(authorization) {
        Ok(()) => next.run(request).await,
        Err(problem) => problem.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_every_configured_token_and_nothing_else() {
        let tokens = BearerTokens::new(&[SecretString::from("old"), SecretString::from("new")]);
        assert!(tokens.check(Some("Bearer old")).is_ok());
        assert!(tokens.check(Some("bearer new")).is_ok());
        assert_eq!(tokens.check(Some("Bearer newer")).unwrap_err().status, 401);
        assert_eq!(tokens.check(Some("Basic bmV3")).unwrap_err().status, 401);
        assert_eq!(tokens.check(None).unwrap_err().status, 401);
    }

    #[test]
    fn no_tokens_means_open() {
        assert!(BearerTokens::new(&[]).check(None).is_ok());
    }
}
