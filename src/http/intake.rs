//! Taking in the body of a batch request, within its deadline and size limit.
//!
//! The request's deadline starts when it arrives, not when its body has been read: a client
//! that trickles its body holds one of the `MAX_CONCURRENT_EXPORTS` permits, so reading the
//! body must count against `REQUEST_TIMEOUT_SECS` too. The body is buffered here, before the
//! handler runs, and the deadline handed to the handler as a request extension.

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;

use crate::deadline::Deadline;

use crate::http::problem::Problem;
use crate::http::{AppState, request, request_deadline};

/// Middleware for batch routes: checks the content type, reads the whole body (at most
/// `MAX_BODY_BYTES`, before the deadline) and records the deadline for the handler.
pub async fn take_in_body(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let deadline = Deadline::with_drain(request_deadline(&state.config), &state.drain);
    if let Err(problem) = request::check_content_type(request.headers()) {
        return problem.into_response();
    }
    let limit = state.config.limits.max_body_bytes;
    let (mut parts, body) = request.into_parts();
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return too_large(limit).into_response();
    }
    // Within the limit (checked above), so a declared length only sizes the buffer up front.
    let capacity = declared.map_or(0, |len| len as usize);
    let bytes = match deadline.run(read_limited(body, limit, capacity)).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(problem)) => return problem.into_response(),
        Err(_elapsed) => {
            return Problem::body_timeout(format!(
                "the body did not arrive within REQUEST_TIMEOUT_SECS ({} s)",
                state.config.limits.request_timeout.as_secs()
            ))
            .into_response();
        }
    };
    parts.extensions.insert(deadline);
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// Reads `body` whole, refusing it as soon as it passes `limit` bytes. The buffer starts at
/// `capacity` (the declared `Content-Length`), so a large body is not copied again each time
/// the buffer would have had to grow.
async fn read_limited(body: Body, limit: usize, capacity: usize) -> Result<Bytes, Problem> {
    let mut stream = body.into_data_stream();
    let mut buffer = Vec::with_capacity(capacity);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| {
            Problem::not_json("the body could not be read to its end (the client stopped sending)")
        })?;
        if buffer.len() + chunk.len() > limit {
            return Err(too_large(limit));
        }
        buffer.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(buffer))
}

fn too_large(limit: usize) -> Problem {
    Problem::too_large(format!(
        "body is larger than MAX_BODY_BYTES ({limit} bytes)"
    ))
}
