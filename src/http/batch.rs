//! The batch endpoints: `/export` (and, with the same request shape, `/remove`, `/sync`).

use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Extension, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::darktrace::CallTally;
use crate::http::intake::Deadline;
use crate::http::problem::Problem;
use crate::http::{AppState, request};
use crate::outcome::Report;

/// The body, or the reason it could not be read (too large, cut off).
fn body_bytes(body: Result<Bytes, BytesRejection>, state: &AppState) -> Result<Bytes, Problem> {
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Problem::too_large(format!(
                "body is larger than MAX_BODY_BYTES ({} bytes)",
                state.config.limits.max_body_bytes
            ))
        } else {
            Problem::not_json(format!("body could not be read: {}", rejection.body_text()))
        }
    })
}

#[tracing::instrument(name = "export", skip_all)]
pub async fn export(
    State(state): State<AppState>,
    Extension(Deadline(deadline)): Extension<Deadline>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    let started = Instant::now();
    request::check_content_type(&headers)?;
    let body = body_bytes(body, &state)?;
    let batch = request::parse_batch(&body, state.config.limits.objects_per_run)?;
    let settings = request::settings(&state.config, &batch.overrides, query.as_deref())?;
    let tally = CallTally::default();
    let report = state
        .exporter
        .export(batch.items, &settings, deadline, &tally)
        .await;
    log_summary("export", &report, &tally, started);
    Ok(report_response(&report))
}

/// One line per batch request: what happened, in counts.
pub fn log_summary(action: &'static str, report: &Report<'_>, tally: &CallTally, started: Instant) {
    let s = &report.summary;
    for result in &report.results {
        metrics::counter!(
            "indicators_total",
            "outcome" => result.outcome.as_str(),
            "reason" => result.reason.as_str()
        )
        .increment(1);
    }
    tracing::info!(
        action,
        source = %report.source,
        dry_run = report.dry_run,
        received = s.received,
        exported = s.exported,
        would_export = s.would_export,
        skipped = s.skipped,
        invalid = s.invalid,
        failed = s.failed,
        removed = s.removed,
        darktrace_calls = tally.calls(),
        darktrace_retries = tally.retries(),
        duration_ms = started.elapsed().as_millis() as u64,
        "batch finished"
    );
}

/// 200 when no item failed, 502 when one did; the body is the same.
pub fn report_response(report: &Report<'_>) -> Response {
    let status = if report.has_failures() {
        StatusCode::BAD_GATEWAY
    } else {
        StatusCode::OK
    };
    match serde_json::to_vec(report) {
        Ok(body) => {
            let mut response = (status, body).into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response
        }
        Err(error) => {
            tracing::error!(%error, "could not serialise the report");
            Problem::internal().into_response()
        }
    }
}
