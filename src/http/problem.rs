//! Refusals of a whole request, as RFC 9457 `application/problem+json`.
//!
//! 4xx details say what to change; 5xx details never carry internal error text.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// A problem document. `kind` is the last part of its `type` URI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: &'static str,
    pub status: u16,
    pub detail: String,
    #[serde(skip)]
    pub retry_after: Option<u64>,
}

/// Problem types are URNs; openapi.yaml describes each.
const TYPE_BASE: &str = "urn:darktrace-export:problem:";

impl Problem {
    fn new(status: StatusCode, kind: &str, title: &'static str, detail: impl Into<String>) -> Self {
        Problem {
            kind: format!("{TYPE_BASE}{kind}"),
            title,
            status: status.as_u16(),
            detail: detail.into(),
            retry_after: None,
        }
    }

    pub fn not_json(detail: impl Into<String>) -> Self {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "not-json",
            "Body is not JSON",
            detail,
        )
    }

    pub fn bad_parameter(detail: impl Into<String>) -> Self {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "bad-parameter",
            "Invalid request setting",
            detail,
        )
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Problem::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Missing or wrong bearer token",
            detail,
        )
    }

    pub fn too_large(detail: impl Into<String>) -> Self {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            "Request too large",
            detail,
        )
    }

    pub fn unsupported_media_type(detail: impl Into<String>) -> Self {
        Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Content type is not JSON",
            detail,
        )
    }

    pub fn wrong_shape(detail: impl Into<String>) -> Self {
        Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "wrong-shape",
            "Body is not a batch of indicators",
            detail,
        )
    }

    pub fn conflict(detail: impl Into<String>) -> Self {
        Problem::new(
            StatusCode::CONFLICT,
            "sync-cap",
            "Sync plan exceeds SYNC_MAX_REMOVALS",
            detail,
        )
    }

    /// Another `/sync` of the source is in progress in this process.
    pub fn sync_in_progress(source: &str) -> Self {
        Problem {
            retry_after: Some(5),
            ..Problem::new(
                StatusCode::CONFLICT,
                "sync-in-progress",
                "Source is being synced",
                format!(
                    "a sync of source {source} is in progress; nothing was changed; retry when it has finished"
                ),
            )
        }
    }

    pub fn overloaded() -> Self {
        Problem {
            retry_after: Some(1),
            ..Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "overloaded",
                "Too many requests in progress",
                "MAX_CONCURRENT_EXPORTS requests are already in progress; retry shortly",
            )
        }
    }

    pub fn shutting_down() -> Self {
        Problem {
            retry_after: Some(5),
            ..Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting-down",
                "Service is shutting down",
                "this instance is shutting down; retry on another",
            )
        }
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::NOT_FOUND, "not-found", "No such route", detail)
    }

    pub fn method_not_allowed(detail: impl Into<String>) -> Self {
        Problem::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method-not-allowed",
            "Method not allowed on this route",
            detail,
        )
    }

    /// The body did not arrive before the request's deadline.
    pub fn body_timeout(detail: impl Into<String>) -> Self {
        Problem::new(
            StatusCode::REQUEST_TIMEOUT,
            "body-timeout",
            "Request body too slow",
            detail,
        )
    }

    /// A 4xx the service did not describe itself (an extractor's rejection, say).
    pub fn from_status(status: StatusCode, detail: impl Into<String>) -> Self {
        Problem::new(
            status,
            &format!("http-{}", status.as_u16()),
            status.canonical_reason().unwrap_or("Request refused"),
            detail,
        )
    }

    /// A 5xx with the generic detail of [`Problem::internal`].
    pub fn internal_with_status(status: StatusCode) -> Self {
        Problem {
            status: status.as_u16(),
            ..Problem::internal()
        }
    }

    /// An unexpected failure: the cause is logged, never sent.
    pub fn internal() -> Self {
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
            "the service failed unexpectedly; see its log",
        )
    }

    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl Problem {
    /// The problem with RFC 9457 extension members (an object's fields) beside the standard
    /// ones, for refusals that must show what they refused, such as a sync plan.
    pub fn with_members<T: Serialize>(self, members: &T) -> Response {
        #[derive(Serialize)]
        struct Extended<'a, T> {
            #[serde(flatten)]
            problem: &'a Problem,
            #[serde(flatten)]
            members: &'a T,
        }
        match serde_json::to_vec(&Extended {
            problem: &self,
            members,
        }) {
            Ok(body) => {
                let mut response = self.into_response();
                *response.body_mut() = axum::body::Body::from(body);
                response
            }
            Err(error) => {
                tracing::error!(%error, "could not serialise the problem's members");
                Problem::internal().into_response()
            }
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = (self.status_code(), body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if self.status == 401 {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}
