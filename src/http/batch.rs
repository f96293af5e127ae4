//! The batch endpoints `/export`, `/remove` and `/sync`, which share one request shape.

use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{Extension, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::darktrace::CallTally;
use crate::deadline::Deadline;
use tokio::sync::mpsc;

use crate::http::intake::{self, WholeBody};
use crate::http::problem::Problem;
use crate::http::{AppState, request};
use crate::offload;
use crate::outcome::{Outcome, Reason, Report};
use crate::pipeline::RequestSettings;
use crate::pipeline::export::pending_verdict;
use crate::screen::Screened;
use crate::threatq::{self, Batch};

/// Exports each valid indicator to Darktrace under the source.
///
/// The body is read and judged while it arrives, on a blocking thread (two for a large
/// body), never on the async workers; the calls leave once its last item is judged.
#[tracing::instrument(name = "export", skip_all)]
pub async fn export(
    State(state): State<AppState>,
    Extension(deadline): Extension<Deadline>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
    let started = Instant::now();
    request::check_query(&state.config, query.as_deref())?;
    let large = intake::declared_length(&headers)
        .is_some_and(|len| len >= threatq::HANDOFF_FROM_BYTES as u64);
    let (to_reader, chunks) = mpsc::channel(CHUNKS_AHEAD);
    let judging = tokio::task::spawn_blocking({
        let state = state.clone();
        move || judge_export(&state, chunks, large, query.as_deref())
    });
    let feeding = intake::feed(body, &state, &deadline, to_reader);
    tokio::pin!(feeding, judging);
    let joined = |judged: Result<_, tokio::task::JoinError>| {
        judged.unwrap_or_else(|failed| std::panic::resume_unwind(failed.into_panic()))
    };
    let judged = tokio::select! {
        // A body too large, late or cut off is refused as such, whatever its reading made of
        // it (the reader then sees the body end early).
        biased;
        fed = &mut feeding => {
            fed?;
            joined(judging.await)
        }
        // The reader refused the body before its end: that is the answer, at once, not
        // after the client has sent (or trickled) the rest.
        judged = &mut judging => match joined(judged) {
            Err(refused) => return Err(refused),
            done => {
                feeding.await?;
                done
            }
        },
    };
    let (screened, settings) = judged?;
    let tally = CallTally::default();
    let report = state
        .exporter
        .export_judged(screened, &settings, &deadline, &tally)
        .await;
    log_summary("export", &report, &tally, started);
    if report.results.len() < STREAM_ANSWER_FROM {
        return Ok(report_response(&report));
    }
    Ok(streamed_report_response(report))
}

/// Chunks of an `/export` body received but not yet read: enough to keep the reader busy
/// while the next arrive, few enough that a slow reader holds the client back.
const CHUNKS_AHEAD: usize = 16;

/// Reads and screens an `/export` body as its chunks arrive, then settles it with the
/// request's settings (the body's overrides, the query's).
fn judge_export(
    state: &AppState,
    mut chunks: mpsc::Receiver<Bytes>,
    large: bool,
    query: Option<&str>,
) -> Result<(Screened<'static>, RequestSettings), Problem> {
    let arriving = std::iter::from_fn(|| chunks.blocking_recv());
    let (screening, overrides) =
        threatq::read_streamed(arriving, state.config.limits.objects_per_run, large, || {
            state.exporter.screener.start()
        })?;
    let settings = request::settings(&state.config, &overrides, query)?;
    let screened = screening.finish(&pending_verdict(settings.dry_run));
    Ok((screened, settings))
}

/// The batch, read whole into a list (as `/remove` and `/sync` take it), and its settings.
/// Content type, size and arrival of the body were checked by [`crate::http::intake`]
/// before the handler runs.
fn batch_and_settings<'b>(
    state: &AppState,
    query: Option<&str>,
    body: &'b Bytes,
) -> Result<(Batch<'b>, RequestSettings), Problem> {
    request::check_query(&state.config, query)?;
    let batch =
        offload::off_workers(|| threatq::parse_batch(body, state.config.limits.objects_per_run))?;
    let settings = request::settings(&state.config, &batch.overrides, query)?;
    Ok((batch, settings))
}

/// Removes each valid indicator from Darktrace under the source.
#[tracing::instrument(name = "remove", skip_all)]
pub async fn remove(
    State(state): State<AppState>,
    Extension(deadline): Extension<Deadline>,
    RawQuery(query): RawQuery,
    WholeBody(body): WholeBody,
) -> Result<Response, Problem> {
    let started = Instant::now();
    let (batch, settings) = batch_and_settings(&state, query.as_deref(), &body)?;
    let tally = CallTally::default();
    let report = state
        .exporter
        .remove(batch.items, &settings, &deadline, &tally)
        .await;
    log_summary("remove", &report, &tally, started);
    Ok(report_response(&report))
}

/// Makes the source hold exactly the exportable part of the collection; 409 with the plan
/// when it would remove more than `SYNC_MAX_REMOVALS` entries without `force=true`.
#[tracing::instrument(name = "sync", skip_all)]
pub async fn sync(
    State(state): State<AppState>,
    Extension(deadline): Extension<Deadline>,
    RawQuery(query): RawQuery,
    WholeBody(body): WholeBody,
) -> Result<Response, Problem> {
    let started = Instant::now();
    let (batch, settings) = batch_and_settings(&state, query.as_deref(), &body)?;
    let _source = state
        .source_locks
        .try_lock(&settings.source)
        .ok_or_else(|| Problem::sync_in_progress(&settings.source))?;
    let tally = CallTally::default();
    let synced = state
        .exporter
        .sync(
            batch.items,
            &settings,
            state.config.limits.sync_max_removals,
            &deadline,
            &tally,
        )
        .await;
    match synced {
        Ok(report) => {
            log_summary("sync", &report, &tally, started);
            let removals = report.removals.as_deref().unwrap_or_default();
            tracing::info!(
                source = %report.source,
                strays_removed = removals.iter().filter(|r| r.outcome == Outcome::Removed).count(),
                strays_failed = removals.iter().filter(|r| r.outcome == Outcome::Failed).count(),
                strays_planned = removals.iter().filter(|r| r.outcome == Outcome::WouldRemove).count(),
                "sync removed entries the collection does not name"
            );
            Ok(report_response(&report))
        }
        Err(refused) => {
            tracing::warn!(
                source = %refused.source,
                planned_removals = refused.planned_removals,
                sync_max_removals = refused.sync_max_removals,
                exportable = refused.exportable,
                "sync refused: the plan removes more than SYNC_MAX_REMOVALS, or empties the source"
            );
            Ok(Problem::sync_cap(refused.detail()).with_members(&refused))
        }
    }
}

/// One line per batch request: what happened, in counts.
pub fn log_summary(action: &'static str, report: &Report<'_>, tally: &CallTally, started: Instant) {
    let s = &report.summary;
    for (reason, count) in Reason::ALL.iter().zip(reason_counts(report)) {
        if count > 0 {
            metrics::counter!(
                crate::telemetry::metrics::INDICATORS,
                "outcome" => reason.outcome().as_str(),
                "reason" => reason.as_str()
            )
            .increment(count);
        }
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
        would_remove = s.would_remove,
        not_present = s.not_present,
        removals = s.removals,
        darktrace_calls = tally.calls(),
        darktrace_retries = tally.retries(),
        darktrace_concurrency_limit = tally.concurrency_limit(),
        duration_ms = started.elapsed().as_millis() as u64,
        "batch finished"
    );
}

/// Indicators per reason, the entries a sync removed without being asked included; counted
/// first so the metrics registry is touched once per reason, not once per indicator.
fn reason_counts(report: &Report<'_>) -> [u64; Reason::ALL.len()] {
    let mut per_reason = [0u64; Reason::ALL.len()];
    let removals = report.removals.iter().flatten().map(|r| r.reason);
    for reason in report.results.iter().map(|r| r.reason).chain(removals) {
        per_reason[reason as usize] += 1;
    }
    per_reason
}

/// 200 when no item failed, 502 when one did; the body is the same.
fn report_status(report: &Report<'_>) -> StatusCode {
    if report.has_failures() {
        StatusCode::BAD_GATEWAY
    } else {
        StatusCode::OK
    }
}

/// Answers of this many results on are streamed ([`streamed_report_response`]); a smaller
/// one (under about 180 KiB) is written at once, cheaper than a thread's handover.
const STREAM_ANSWER_FROM: usize = 1000;

/// The answer's chunks, written on a blocking thread while hyper sends the ones before.
const ANSWER_CHUNK_BYTES: usize = 64 * 1024;

/// Chunks written but not yet sent: a client that reads slowly holds the writer back.
const ANSWER_CHUNKS_AHEAD: usize = 4;

/// [`report_response`] for a report that owns its text (an `/export`'s): the body is written
/// in chunks on a blocking thread while hyper sends them, so the first bytes leave at once
/// and the whole answer (18 MiB for 100,000 items) is never held; the report is freed there
/// too, off the async workers. A client that goes away stops the writer at its next chunk.
pub fn streamed_report_response(report: Report<'static>) -> Response {
    let status = report_status(&report);
    let (to_body, chunks) = mpsc::channel::<Vec<u8>>(ANSWER_CHUNKS_AHEAD);
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || {
        let written = report.write_json_in_chunks(ANSWER_CHUNK_BYTES, |chunk| {
            to_body.blocking_send(chunk).is_ok()
        });
        if let Err(error) = written {
            span.in_scope(|| tracing::error!(%error, "could not serialise the report"));
        }
    });
    let body = Body::from_stream(futures_util::stream::unfold(chunks, |mut chunks| async {
        let chunk = chunks.recv().await?;
        Some((
            Ok::<_, std::convert::Infallible>(Bytes::from(chunk)),
            chunks,
        ))
    }));
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// 200 when no item failed, 502 when one did; the body is the same. A large answer is
/// written in 64 KiB chunks, sent one after the other: never copied into a larger buffer
/// as it grows (an allocator that keeps what it freed for a while would hold every size).
pub fn report_response(report: &Report<'_>) -> Response {
    let status = report_status(report);
    let written = offload::off_workers(|| {
        let mut chunks = Vec::new();
        report
            .write_json_in_chunks(ANSWER_CHUNK_BYTES, |chunk| {
                chunks.push(Bytes::from(chunk));
                true
            })
            .map(|_| chunks)
    });
    match written {
        Ok(chunks) => {
            let body = if chunks.len() == 1 {
                Body::from(chunks.into_iter().next().unwrap_or_default())
            } else {
                Body::from_stream(futures_util::stream::iter(
                    chunks.into_iter().map(Ok::<_, std::convert::Infallible>),
                ))
            };
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::{ItemResult, Removal, Summary};

    #[test]
    fn the_entries_a_sync_removed_are_counted_with_the_items() {
        let item = ItemResult {
            index: 0,
            id: None,
            type_name: None,
            value: None,
            outcome: Outcome::Removed,
            exported_value: None,
            reason: Reason::Removed,
            detail: "".into(),
        };
        let stray = |reason: Reason| Removal {
            value: "stray.example".into(),
            outcome: reason.outcome(),
            reason,
            detail: "".into(),
        };
        let report = Report {
            source: "S".into(),
            expiry: None,
            dry_run: false,
            summary: Summary::default(),
            results: vec![item],
            removals: Some(vec![
                stray(Reason::Removed),
                stray(Reason::DarktraceTimeout),
            ]),
        };
        let counts = reason_counts(&report);
        assert_eq!(counts[Reason::Removed as usize], 2);
        assert_eq!(counts[Reason::DarktraceTimeout as usize], 1);
        assert_eq!(counts.iter().sum::<u64>(), 3);
    }
}
