//! HTTP metrics and `GET /metrics`.
//!
//! Requests are labelled by the matched route, never the raw path, so a scanner probing
//! random URLs cannot grow the number of series: anything unrouted is `unmatched`.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::telemetry::metrics::{self as names, prometheus};

/// Prometheus text exposition format.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

pub async fn render() -> Response {
    let mut response = prometheus().render().into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    response
}

/// Middleware: counts, times and gauges every request.
pub async fn track(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = method_label(request.method());
    let _in_flight = InFlight::start();
    let started = Instant::now();
    let response = next.run(request).await;
    metrics::counter!(
        names::HTTP_REQUESTS,
        "method" => method,
        "route" => route.clone(),
        "status" => response.status().as_u16().to_string()
    )
    .increment(1);
    metrics::histogram!(names::HTTP_DURATION, "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// Standard methods by name; anything else is `other`, again to bound the series.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Holds one unit of the in-flight gauge; dropped (and so released) even when the client
/// goes away and the request future is cancelled.
struct InFlight;

impl InFlight {
    fn start() -> Self {
        metrics::gauge!(names::HTTP_IN_FLIGHT).increment(1.0);
        InFlight
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        metrics::gauge!(names::HTTP_IN_FLIGHT).decrement(1.0);
    }
}
