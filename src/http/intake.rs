//! Taking in the body of a batch request, within its deadline and size limit.
//!
//! The request's deadline starts when it arrives, not when its body has been read: a client
//! that trickles its body holds one of the `MAX_CONCURRENT_EXPORTS` permits, so reading the
//! body must count against `REQUEST_TIMEOUT_SECS` too. The middleware checks what the head
//! says and hands the deadline to the handler as a request extension; the body itself is
//! read whole ([`WholeBody`], for `/remove` and `/sync`) or handed on chunk by chunk as it
//! arrives ([`feed`], for `/export`), under the same limit and deadline either way.

use axum::body::{Body, BodyDataStream, Bytes};
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use tokio::sync::mpsc;

use crate::deadline::Deadline;

use crate::http::problem::Problem;
use crate::http::{AppState, request, request_deadline};

/// Middleware for batch routes: checks the content type and the declared length (at most
/// `MAX_BODY_BYTES`) and records the deadline for the handler.
pub async fn take_in_body(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let deadline = Deadline::with_drain(request_deadline(&state.config), &state.drain);
    if let Err(problem) = request::check_content_type(request.headers()) {
        return problem.into_response();
    }
    let limit = state.config.limits.max_body_bytes;
    if declared_length(request.headers()).is_some_and(|len| len > limit as u64) {
        return too_large(limit).into_response();
    }
    request.extensions_mut().insert(deadline);
    next.run(request).await
}

/// The body's `Content-Length`, when it declares one.
pub fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

/// The body of a batch request read whole, at most `MAX_BODY_BYTES`, before the request's
/// deadline: what `/remove` and `/sync` read.
pub struct WholeBody(pub Bytes);

impl FromRequest<AppState> for WholeBody {
    type Rejection = Problem;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Problem> {
        let deadline = arrival_deadline(&request)?;
        let declared = declared_length(request.headers());
        let mut arriving = Arriving::new(request.into_body(), state);
        let mut buffer = Vec::with_capacity(initial_capacity(declared));
        let read = async {
            while let Some(chunk) = arriving.next().await? {
                if let Some(more) = reserve_now(declared, buffer.len(), buffer.capacity()) {
                    buffer.reserve_exact(more);
                }
                buffer.extend_from_slice(&chunk);
            }
            Ok::<(), Problem>(())
        };
        deadline.run(read).await.map_err(|_elapsed| late(state))??;
        Ok(WholeBody(Bytes::from(buffer)))
    }
}

/// The deadline [`take_in_body`] fixed when the request arrived.
pub fn arrival_deadline(request: &Request) -> Result<Deadline, Problem> {
    request
        .extensions()
        .get::<Deadline>()
        .cloned()
        .ok_or_else(|| {
            tracing::error!("a batch route without its body intake");
            Problem::internal()
        })
}

/// Sends each chunk of `body` to `reader` as it arrives, at most `MAX_BODY_BYTES` in all,
/// before the deadline. A reader that stops taking (it refused the body) ends the feed
/// without error: its refusal is the answer.
pub async fn feed(
    body: Body,
    state: &AppState,
    deadline: &Deadline,
    reader: mpsc::Sender<Bytes>,
) -> Result<(), Problem> {
    let mut arriving = Arriving::new(body, state);
    let fed = async {
        while let Some(chunk) = arriving.next().await? {
            if reader.send(chunk).await.is_err() {
                break;
            }
        }
        Ok::<(), Problem>(())
    };
    deadline.run(fed).await.map_err(|_elapsed| late(state))?
}

/// A body's chunks as they arrive, refused once they pass `MAX_BODY_BYTES`.
struct Arriving {
    stream: BodyDataStream,
    limit: usize,
    received: usize,
}

impl Arriving {
    fn new(body: Body, state: &AppState) -> Self {
        Arriving {
            stream: body.into_data_stream(),
            limit: state.config.limits.max_body_bytes,
            received: 0,
        }
    }

    /// The next chunk; `None` at the end of the body.
    async fn next(&mut self) -> Result<Option<Bytes>, Problem> {
        let Some(chunk) = self.stream.next().await else {
            return Ok(None);
        };
        let chunk = chunk.map_err(|_| {
            Problem::not_json("the body could not be read to its end (the client stopped sending)")
        })?;
        self.received += chunk.len();
        if self.received > self.limit {
            return Err(too_large(self.limit));
        }
        Ok(Some(chunk))
    }
}

fn late(state: &AppState) -> Problem {
    Problem::body_timeout(format!(
        "the body did not arrive within REQUEST_TIMEOUT_SECS ({} s)",
        state.config.limits.request_timeout.as_secs()
    ))
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

fn too_large(limit: usize) -> Problem {
    Problem::too_large(format!(
        "body is larger than MAX_BODY_BYTES ({limit} bytes)"
    ))
}

/// When to reserve the rest of a declared length: once a quarter of it has arrived, so
/// that the buffer is not grown (and copied) again and again, while a client that declares
/// 32 MiB and sends 200 bytes still reserves nothing (a client has to send a quarter of
/// what it declares to make the service hold the rest). Returns the bytes to reserve.
pub fn reserve_now(declared: Option<u64>, received: usize, capacity: usize) -> Option<usize> {
    let declared = usize::try_from(declared?).ok()?;
    (received >= declared / 4 && capacity < declared).then(|| declared - received)
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

    #[test]
    fn the_rest_of_a_declared_length_is_reserved_once_a_quarter_has_arrived() {
        let declared = Some(32 << 20);
        assert_eq!(reserve_now(declared, 200, RESERVED_UP_FRONT), None);
        assert_eq!(reserve_now(declared, (8 << 20) - 1, 8 << 20), None);
        assert_eq!(reserve_now(declared, 8 << 20, 8 << 20), Some(24 << 20));
        // Reserved once: the buffer then holds the whole declared length.
        assert_eq!(reserve_now(declared, 9 << 20, 32 << 20), None);
        assert_eq!(reserve_now(None, 1 << 30, 0), None);
        assert_eq!(reserve_now(Some(100), 25, 100), None);
    }
}
