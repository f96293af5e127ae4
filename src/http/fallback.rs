//! Answers the service did not write itself become problem documents too.
//!
//! axum answers unknown routes (404), wrong methods (405) and its extractors' rejections
//! with empty or plain-text bodies; a panic would drop the connection. Clients of this
//! service parse `application/problem+json` for every refusal, so those answers are
//! rewritten here, in one place, whatever route a later change adds.

use std::any::Any;

use axum::body::to_bytes;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::http::problem::Problem;
use crate::http::routes::ROUTES;

/// The most of a plain-text rejection kept as a problem's detail.
const DETAIL_BYTES: usize = 512;

/// Middleware: rewrites a 4xx or 5xx answer that is not JSON into a problem document.
/// 5xx details stay generic; the original text is logged instead.
pub async fn problem_for_bare_errors(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = shorten(request.uri().path());
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) || is_json(&response) {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = to_bytes(body, DETAIL_BYTES * 4)
        .await
        .map(|b| shorten(String::from_utf8_lossy(&b).trim()))
        .unwrap_or_default();
    let kept: Vec<_> = [header::RETRY_AFTER]
        .into_iter()
        .filter_map(|name| Some((name.clone(), parts.headers.get(&name)?.clone())))
        .collect();
    let problem = match status {
        StatusCode::NOT_FOUND => Problem::not_found(format!(
            "there is no route {path}; see GET /openapi.yaml for the routes"
        )),
        StatusCode::METHOD_NOT_ALLOWED => {
            Problem::method_not_allowed(method_advice(&method, &path))
        }
        s if s.is_server_error() => {
            tracing::error!(status = s.as_u16(), detail = %text, "request failed");
            Problem::internal_with_status(s)
        }
        s if text.is_empty() => Problem::from_status(s, "the request was refused"),
        s => Problem::from_status(s, text),
    };
    let mut rewritten = problem.into_response();
    for (name, value) in kept {
        rewritten.headers_mut().insert(name, value);
    }
    rewritten
}

/// What a 405 says: the method to use instead, from the route table.
fn method_advice(method: &axum::http::Method, path: &str) -> String {
    let allowed: Vec<&str> = ROUTES
        .iter()
        .filter(|r| r.path == path)
        .map(|r| r.method)
        .collect();
    if allowed.is_empty() {
        format!("{method} is not allowed on {path}; the Allow header lists the methods that are")
    } else {
        format!(
            "{method} is not allowed on {path}; use {}",
            allowed.join(" or ")
        )
    }
}

/// The answer to a panic in a handler: a generic 500; the panic's text is not sent.
pub fn panic_response(_payload: Box<dyn Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    Problem::internal().into_response()
}

fn is_json(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v: &HeaderValue| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .is_some_and(|essence| essence == "application/json" || essence.ends_with("+json"))
}

/// At most [`DETAIL_BYTES`] of `text`, cut at a character boundary.
fn shorten(text: &str) -> String {
    if text.len() <= DETAIL_BYTES {
        return text.to_owned();
    }
    let mut end = DETAIL_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::body::Body;
    use axum::routing::get;
    use tower::ServiceExt;
    use tower_http::catch_panic::CatchPanicLayer;

    async fn answer(path: &str) -> (StatusCode, String, String) {
        let (status, headers, body) = answer_with_headers(path).await;
        let content_type = headers[header::CONTENT_TYPE].to_str().unwrap().to_owned();
        (status, content_type, body)
    }

    async fn answer_with_headers(path: &str) -> (StatusCode, axum::http::HeaderMap, String) {
        let app = Router::new()
            .route(
                "/leaky",
                get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "db password hunter2") }),
            )
            .route(
                "/rejected",
                get(|| async { (StatusCode::BAD_REQUEST, "Failed to parse the query") }),
            )
            .route("/panics", get(panics))
            .route(
                "/busy",
                get(|| async {
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        [(header::RETRY_AFTER, "7")],
                        "queue full at worker 3",
                    )
                }),
            )
            .layer(CatchPanicLayer::custom(panic_response))
            .layer(axum::middleware::from_fn(problem_for_bare_errors));
        let response = app
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = to_bytes(response.into_body(), 4096).await.unwrap();
        (status, headers, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn a_rewritten_answer_keeps_its_retry_after() {
        let (status, headers, body) = answer_with_headers("/busy").await;
        assert_eq!(status, 503);
        assert_eq!(headers[header::RETRY_AFTER], "7");
        assert_eq!(headers[header::CONTENT_TYPE], "application/problem+json");
        assert!(!body.contains("worker 3"), "{body}");
    }

    async fn panics() -> &'static str {
        panic!("secret-in-panic")
    }

    #[tokio::test]
    async fn a_5xx_never_carries_its_internal_text() {
        let (status, content_type, body) = answer("/leaky").await;
        assert_eq!(status, 500);
        assert_eq!(content_type, "application/problem+json");
        assert!(!body.contains("hunter2"), "{body}");
    }

    #[tokio::test]
    async fn a_panic_is_a_generic_500_problem() {
        let (status, content_type, body) = answer("/panics").await;
        assert_eq!(status, 500);
        assert_eq!(content_type, "application/problem+json");
        assert!(!body.contains("secret-in-panic"), "{body}");
    }

    #[tokio::test]
    async fn a_plain_text_rejection_becomes_a_problem_with_its_text() {
        let (status, content_type, body) = answer("/rejected").await;
        assert_eq!(status, 400);
        assert_eq!(content_type, "application/problem+json");
        assert!(body.contains("Failed to parse the query"), "{body}");
    }

    #[test]
    fn long_details_are_cut_at_a_character_boundary() {
        let text = "é".repeat(DETAIL_BYTES);
        let short = shorten(&text);
        assert!(short.len() <= DETAIL_BYTES + '…'.len_utf8());
        assert!(short.ends_with('…'));
        assert_eq!(shorten("short"), "short");
    }
}
