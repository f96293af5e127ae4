//! The caller's `X-Request-Id`, taken only when it is safe to echo and log.
//!
//! The id is echoed in the answer and written on every log line of the request, so a caller
//! could otherwise put a megabyte, a line break or a fake JSON field into every line. An id
//! longer than [`MAX_LEN`] or holding anything but visible ASCII is replaced by a generated
//! one; the log says so, giving only its length.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;

use super::REQUEST_ID;

/// The longest caller id taken as it is.
pub const MAX_LEN: usize = 128;

/// Marks a request whose caller id was refused: its length, for the log line.
#[derive(Debug, Clone, Copy)]
pub struct ReplacedId {
    pub length: usize,
}

/// True for an id that is safe to echo and to log whole.
pub fn is_acceptable(id: &[u8]) -> bool {
    (1..=MAX_LEN).contains(&id.len()) && id.iter().all(|b| (0x21..=0x7e).contains(b))
}

/// Middleware, outside the layer that sets the id: drops a caller id that is not
/// acceptable, so a fresh one is generated in its place.
pub async fn refuse_unsafe_ids(mut request: Request, next: Next) -> Response {
    let mut ids = request.headers().get_all(&REQUEST_ID).iter();
    let refused = match (ids.next(), ids.next()) {
        (Some(id), None) if !is_acceptable(id.as_bytes()) => Some(id.len()),
        // Given twice: neither is the caller's one id.
        (Some(id), Some(_)) => Some(id.len()),
        _ => None,
    };
    if let Some(length) = refused {
        request.headers_mut().remove(&REQUEST_ID);
        request.extensions_mut().insert(ReplacedId { length });
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_short_visible_ascii_ids_are_taken() {
        assert!(is_acceptable(b"tq-run-4711"));
        assert!(is_acceptable(&[b'a'; MAX_LEN]));
        assert!(!is_acceptable(&[b'a'; MAX_LEN + 1]));
        assert!(!is_acceptable(b""));
        for bad in [
            &b"a b"[..],
            b"a\tb",
            b"line\nbreak",
            "caf\u{e9}".as_bytes(),
            b"\x7f",
        ] {
            assert!(!is_acceptable(bad), "{bad:?}");
        }
    }
}
