//! Refusals of a whole request, as RFC 9457 `application/problem+json`.
//!
//! 4xx details say what to change; 5xx details never carry internal error text.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Declares [`ProblemKind`] from one table: each kind once, with its `type` slug, status and
/// title, so the enum, [`ProblemKind::ALL`] and what each kind means cannot drift apart.
macro_rules! problem_kinds {
    ($($kind:ident => ($slug:literal, $status:ident, $title:literal),)+) => {
        /// What a refusal is, fixed: its `type` URI, status and title. [`ProblemKind::ALL`]
        /// lists the service's own kinds, so the spec test holds them equal to `openapi.yaml`'s.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum ProblemKind {
            $($kind,)+
            /// A 4xx the service did not describe itself (a rejection by the HTTP framework).
            Http(StatusCode),
        }

        impl ProblemKind {
            /// Every kind the service writes itself, in `openapi.yaml`'s order.
            pub const ALL: &[ProblemKind] = &[$(ProblemKind::$kind,)+];

            /// The last part of the `type` URI.
            pub fn slug(self) -> String {
                match self {
                    $(ProblemKind::$kind => $slug.to_owned(),)+
                    ProblemKind::Http(status) => format!("http-{}", status.as_u16()),
                }
            }

            pub fn status(self) -> StatusCode {
                match self {
                    $(ProblemKind::$kind => StatusCode::$status,)+
                    ProblemKind::Http(status) => status,
                }
            }

            pub fn title(self) -> &'static str {
                match self {
                    $(ProblemKind::$kind => $title,)+
                    ProblemKind::Http(status) => {
                        status.canonical_reason().unwrap_or("Request refused")
                    }
                }
            }
        }
    };
}

problem_kinds! {
    NotJson => ("not-json", BAD_REQUEST, "Body is not JSON"),
    BadParameter => ("bad-parameter", BAD_REQUEST, "Invalid request setting"),
    Unauthorized => ("unauthorized", UNAUTHORIZED, "Missing or wrong bearer token"),
    NotFound => ("not-found", NOT_FOUND, "No such route"),
    PullNotConfigured => ("pull-not-configured", CONFLICT, "No ThreatQ collection to pull (THREATQ_URL is not set)"),
    MethodNotAllowed => ("method-not-allowed", METHOD_NOT_ALLOWED, "Method not allowed on this route"),
    BodyTimeout => ("body-timeout", REQUEST_TIMEOUT, "Request body too slow"),
    SyncCap => ("sync-cap", CONFLICT, "Sync plan exceeds SYNC_MAX_REMOVALS"),
    SyncInProgress => ("sync-in-progress", CONFLICT, "Source is being synced"),
    PullInProgress => ("pull-in-progress", CONFLICT, "A pull is running"),
    TooLarge => ("too-large", PAYLOAD_TOO_LARGE, "Request too large"),
    UnsupportedMediaType => ("unsupported-media-type", UNSUPPORTED_MEDIA_TYPE, "Content type is not JSON"),
    WrongShape => ("wrong-shape", UNPROCESSABLE_ENTITY, "Body is not a batch of indicators"),
    Internal => ("internal", INTERNAL_SERVER_ERROR, "Internal error"),
    ThreatqError => ("threatq-error", BAD_GATEWAY, "ThreatQ could not be read"),
    Overloaded => ("overloaded", SERVICE_UNAVAILABLE, "Too many requests in progress"),
    ShuttingDown => ("shutting-down", SERVICE_UNAVAILABLE, "Service is shutting down"),
}

/// Problem types are URNs; openapi.yaml describes each.
const TYPE_BASE: &str = "urn:darktrace-export:problem:";

impl ProblemKind {
    /// The `type` URI.
    pub fn uri(self) -> String {
        format!("{TYPE_BASE}{}", self.slug())
    }

    /// Seconds a client should wait before trying again, for the kinds that pass.
    fn retry_after(self) -> Option<u64> {
        match self {
            ProblemKind::Overloaded => Some(1),
            ProblemKind::SyncInProgress
            | ProblemKind::PullInProgress
            | ProblemKind::ShuttingDown => Some(5),
            _ => None,
        }
    }
}

/// A problem document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub kind: ProblemKind,
    pub status: u16,
    pub detail: String,
}

impl Serialize for Problem {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut doc = serializer.serialize_struct("Problem", 4)?;
        doc.serialize_field("type", &self.kind.uri())?;
        doc.serialize_field("title", self.kind.title())?;
        doc.serialize_field("status", &self.status)?;
        doc.serialize_field("detail", &self.detail)?;
        doc.end()
    }
}

impl Problem {
    pub fn new(kind: ProblemKind, detail: impl Into<String>) -> Self {
        Problem {
            kind,
            status: kind.status().as_u16(),
            detail: detail.into(),
        }
    }

    pub fn not_json(detail: impl Into<String>) -> Self {
        Problem::new(ProblemKind::NotJson, detail)
    }

    pub fn bad_parameter(detail: impl Into<String>) -> Self {
        Problem::new(ProblemKind::BadParameter, detail)
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Problem::new(ProblemKind::Unauthorized, detail)
    }

    pub fn too_large(detail: impl Into<String>) -> Self {
        Problem::new(ProblemKind::TooLarge, detail)
    }

    pub fn unsupported_media_type(detail: impl Into<String>) -> Self {
        Problem::new(ProblemKind::UnsupportedMediaType, detail)
    }

    pub fn wrong_shape(detail: impl Into<String>) -> Self {
        Problem::new(ProblemKind::WrongShape, detail)
    }

    /// A sync plan refused (`SYNC_MAX_REMOVALS`, or a collection that would empty the source).
    pub fn sync_cap(detail: impl Into<String>) -> Self {
        Problem::new(ProblemKind::SyncCap, detail)
    }

    /// Another `/sync` of the source is in progress in this process.
    pub fn sync_in_progress(source: &str) -> Self {
        Problem::new(
            ProblemKind::SyncInProgress,
            format!(
                "a sync of source {source} is in progress; nothing was changed; retry when it has finished"
            ),
        )
    }

    pub fn overloaded() -> Self {
        Problem::new(
            ProblemKind::Overloaded,
            "MAX_CONCURRENT_EXPORTS requests are already in progress; retry shortly",
        )
    }

    pub fn shutting_down() -> Self {
        Problem::new(
            ProblemKind::ShuttingDown,
            "this instance is shutting down; retry on another",
        )
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Problem::new(ProblemKind::NotFound, detail)
    }

    pub fn method_not_allowed(detail: impl Into<String>) -> Self {
        Problem::new(ProblemKind::MethodNotAllowed, detail)
    }

    /// The body did not arrive before the request's deadline.
    pub fn body_timeout(detail: impl Into<String>) -> Self {
        Problem::new(ProblemKind::BodyTimeout, detail)
    }

    /// A 4xx the service did not describe itself (an extractor's rejection, say).
    pub fn from_status(status: StatusCode, detail: impl Into<String>) -> Self {
        Problem::new(ProblemKind::Http(status), detail)
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
            ProblemKind::Internal,
            "the service failed unexpectedly; see its log",
        )
    }

    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl From<crate::threatq::ReadError> for Problem {
    fn from(error: crate::threatq::ReadError) -> Self {
        use crate::threatq::ReadError;
        let detail = error.detail();
        match error {
            ReadError::NotJson(_) => Problem::not_json(detail),
            ReadError::WrongShape(_) => Problem::wrong_shape(detail),
            ReadError::TooMany { .. } => Problem::too_large(detail),
            ReadError::StrayKey(_) => Problem::bad_parameter(detail),
        }
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
        if let Some(secs) = self.kind.retry_after() {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_listed_once_with_its_own_slug() {
        let slugs: std::collections::HashSet<String> =
            ProblemKind::ALL.iter().map(|k| k.slug()).collect();
        assert_eq!(slugs.len(), ProblemKind::ALL.len());
        assert!(ProblemKind::ALL.iter().all(|k| k.status().as_u16() >= 400));
    }

    #[test]
    fn a_document_carries_its_kind_as_uri_title_and_status() {
        let doc = serde_json::to_value(Problem::sync_cap("too many")).unwrap();
        assert_eq!(doc["type"], "urn:darktrace-export:problem:sync-cap");
        assert_eq!(doc["title"], "Sync plan exceeds SYNC_MAX_REMOVALS");
        assert_eq!(doc["status"], 409);
        assert_eq!(doc["detail"], "too many");
        let framework = serde_json::to_value(Problem::from_status(StatusCode::IM_A_TEAPOT, "x"));
        assert_eq!(
            framework.unwrap()["type"],
            "urn:darktrace-export:problem:http-418"
        );
        let response = Problem::overloaded().into_response();
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
    }
}
