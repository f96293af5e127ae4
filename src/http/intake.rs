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
    let bytes = match deadline
        .run(read_limited(body, limit, initial_capacity(declared)))
        .await
    {
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

/// Most of a declared `Content-Length` reserved before the bytes arrive.
pub const RESERVED_UP_FRONT: usize = 64 * 1024;

/// The buffer's first size: the declared length, up to [`RESERVED_UP_FRONT`]. A client can
/// declare any length and send 200 bytes, so a declared length never reserves more; past
/// that the buffer grows with what arrives (doubling, so a large body is copied a few times,
/// not once per chunk).
pub fn initial_capacity(declared: Option<u64>) -> usize {
    declared.map_or(0, |len| {
        usize::try_from(len).map_or(RESERVED_UP_FRONT, |len| len.min(RESERVED_UP_FRONT))
    })
}

/// Reads `body` whole, refusing it as soon as it passes `limit` bytes. The buffer starts at
/// `capacity` and grows with what arrives.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_declared_length_reserves_at_most_a_small_buffer() {
        assert_eq!(initial_capacity(None), 0);
        assert_eq!(initial_capacity(Some(200)), 200);
        assert_eq!(initial_capacity(Some(33_554_432)), RESERVED_UP_FRONT);
        assert_eq!(initial_capacity(Some(u64::MAX)), RESERVED_UP_FRONT);
    }

    #[tokio::test]
    async fn a_body_shorter_than_declared_gets_a_buffer_its_own_size() {
        let bytes = read_limited(
            Body::from(vec![b'x'; 200]),
            1 << 25,
            initial_capacity(Some(1 << 25)),
        )
        .await
        .unwrap();
        assert_eq!(bytes.len(), 200);
    }
}
