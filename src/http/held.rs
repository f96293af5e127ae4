//! A response body that keeps something alive until the answer has been written.
//!
//! A batch request holds a `MAX_CONCURRENT_EXPORTS` permit; released when the handler
//! returns, it would let a client that never reads its answers start new exports while each
//! unread answer stays in memory. Moved into the answer's body instead, the permit lives
//! until hyper has handed the answer to the kernel (it drops the body once nothing of it is
//! left to buffer) or the connection ends, which `WRITE_TIMEOUT_SECS` ensures for a client
//! that stops reading.

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::response::Response;
use http_body::{Frame, SizeHint};

/// `body`, holding `held` until it is dropped.
pub struct Holding<T> {
    body: Body,
    _held: T,
}

/// The response with `held` moved into its body.
pub fn hold_until_written<T: Send + Unpin + 'static>(response: Response, held: T) -> Response {
    response.map(|body| Body::new(Holding { body, _held: held }))
}

impl<T: Unpin> http_body::Body for Holding<T> {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    /// Never ends early: hyper then keeps the body (and what it holds) until the last of
    /// the answer has left its write buffer, instead of dropping it with the last chunk.
    fn is_end_stream(&self) -> bool {
        false
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::response::IntoResponse;
    use http_body_util::BodyExt;
    use std::sync::Arc;

    #[tokio::test]
    async fn what_is_held_lives_until_the_body_is_dropped_and_no_longer() {
        let permits = Arc::new(tokio::sync::Semaphore::new(1));
        let permit = permits.clone().try_acquire_owned().unwrap();
        let response = hold_until_written("answer".into_response(), permit);
        assert_eq!(
            permits.available_permits(),
            0,
            "held by the unwritten answer"
        );
        let (_, mut body) = response.into_parts();
        let frame = body.frame().await.unwrap().unwrap();
        assert_eq!(frame.into_data().unwrap(), "answer");
        assert_eq!(
            permits.available_permits(),
            0,
            "still held until the body goes"
        );
        drop(body);
        assert_eq!(permits.available_permits(), 1);
    }

    #[test]
    fn the_length_is_still_known_so_the_answer_keeps_its_content_length() {
        let response = hold_until_written("answer".into_response(), ());
        assert_eq!(http_body::Body::size_hint(response.body()).exact(), Some(6));
    }
}
