//! Accepting and serving connections, with bounds a client cannot get around.
//!
//! `axum::serve` has no header-read timeout, no write timeout, no cap on connections and
//! hyper's default header buffer (about 400 KiB) per connection, so a client that opens many
//! connections and never finishes its headers, or never reads its answer, grows memory
//! without bound. Here each connection is served by hyper's HTTP/1 builder with:
//!
//! - a header-read timeout (`HEADER_READ_TIMEOUT_SECS`). Hyper starts it whenever the
//!   connection waits for a request head, on a new connection and between keep-alive
//!   requests alike, so it is also the idle keep-alive timeout;
//! - a cap on header bytes (`MAX_HEADER_BYTES`) and count (`MAX_HEADERS`); past them hyper
//!   answers 431 itself and closes;
//! - a write timeout (`WRITE_TIMEOUT_SECS`, [`StallTimeout`]): a write that makes no progress
//!   for that long ends the connection, so a client that does not read its answer frees the
//!   answer's memory and its `MAX_CONCURRENT_EXPORTS` permit;
//! - `MAX_CONNECTIONS`: at the cap the loop stops accepting, so new connections wait in the
//!   kernel's backlog rather than in this process's memory.
//!
//! Beyond the cap, `HEALTH_CONNECTIONS` more connections are accepted that serve `/healthz`
//! and `/readyz` only (anything else gets 503 `overloaded`) and one request each: probes
//! keep answering on a fresh connection while others hold every regular connection, on the
//! same port the probes already use. Such a connection cannot start an export, so holding
//! one gains a client nothing but the header-read timeout.
//!
//! Shutdown: when `stop` turns true the listener is closed, each connection finishes the
//! request it is serving and closes (hyper's graceful shutdown), and [`serve`] returns once
//! every connection has closed.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::Sleep;
use tower::ServiceExt;

use crate::config::Limits;
use crate::http::problem::Problem;

/// Hyper's lower bound for its read buffer: a smaller `MAX_HEADER_BYTES` is refused.
pub const MIN_HEADER_BYTES: usize = 8192;

/// Paths a connection of the health reserve serves.
const HEALTH_PATHS: [&str; 2] = ["/healthz", "/readyz"];

/// A connection's place under `MAX_CONNECTIONS` or in the health reserve, held while it
/// is open.
struct Slot {
    health_only: bool,
    _permit: OwnedSemaphorePermit,
}

impl Slot {
    fn regular(permit: OwnedSemaphorePermit) -> Self {
        Slot {
            health_only: false,
            _permit: permit,
        }
    }

    fn health(permit: OwnedSemaphorePermit) -> Self {
        Slot {
            health_only: true,
            _permit: permit,
        }
    }
}

/// Serves `app` on `listener` within `limits` until `stop` turns true, then lets each
/// connection finish its request and returns when all have closed.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
) -> io::Result<()> {
    let regular = Arc::new(Semaphore::new(limits.max_connections));
    let health = Arc::new(Semaphore::new(limits.health_connections));
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.max(MIN_HEADER_BYTES))
        .max_headers(limits.max_headers);
    let http = Arc::new(http);
    loop {
        // A slot first, then a connection: at the cap nothing is accepted, and the kernel
        // holds new connections in its backlog.
        let slot = tokio::select! {
            biased;
            () = stopped(&mut stop) => break,
            permit = regular.clone().acquire_owned() => Slot::regular(permit.expect("never closed")),
            permit = health.clone().acquire_owned(), if limits.health_connections > 0 => {
                Slot::health(permit.expect("never closed"))
            }
        };
        let stream = tokio::select! {
            biased;
            () = stopped(&mut stop) => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    accept_failed(&error).await;
                    continue;
                }
            },
        };
        // A regular slot may have freed while waiting for the connection.
        let slot = match regular.clone().try_acquire_owned() {
            Ok(permit) if slot.health_only => Slot::regular(permit),
            _ => slot,
        };
        tokio::spawn(serve_connection(
            stream,
            app.clone(),
            http.clone(),
            limits.write_timeout,
            slot,
            stop.clone(),
        ));
    }
    drop(listener);
    // Every permit back means every connection has closed.
    let _all = regular
        .acquire_many(u32::try_from(limits.max_connections).unwrap_or(u32::MAX))
        .await;
    let _all = health
        .acquire_many(u32::try_from(limits.health_connections).unwrap_or(u32::MAX))
        .await;
    Ok(())
}

/// Resolves once `stop` is true (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Errors of `accept` that concern one connection are skipped; others (out of file
/// descriptors, say) are logged and the loop pauses, so it does not spin.
async fn accept_failed(error: &io::Error) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        error.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::error!(%error, "cannot accept a connection; pausing for a second");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// Serves one connection until it closes, holding its slot's permit until then.
async fn serve_connection(
    stream: TcpStream,
    app: Router,
    http: Arc<http1::Builder>,
    write_timeout: Duration,
    slot: Slot,
    mut stop: watch::Receiver<bool>,
) {
    let health_only = slot.health_only;
    // An answer written in parts (a streamed `/export` answer) must not wait for the
    // client's delayed acknowledgement of the part before (Nagle's algorithm: 40 ms each).
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%error, "could not set TCP_NODELAY");
    }
    let io = TokioIo::new(StallTimeout::new(stream, write_timeout));
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let app = app.clone();
        async move { Ok::<_, Infallible>(answer(app, request.map(Body::new), health_only).await) }
    });
    let mut http = (*http).clone();
    // A reserve connection serves one request, so it cannot be kept for more.
    http.keep_alive(!health_only);
    let connection = http.serve_connection(io, service);
    tokio::pin!(connection);
    let mut stopping = false;
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%error, "connection ended with an error");
                }
                break;
            }
            () = stopped(&mut stop), if !stopping => {
                stopping = true;
                connection.as_mut().graceful_shutdown();
            }
        }
    }
    drop(slot);
}

/// The router's answer, or on a reserve connection 503 for anything but the probes.
async fn answer(app: Router, request: Request, health_only: bool) -> Response {
    if health_only && !HEALTH_PATHS.contains(&request.uri().path()) {
        return Problem {
            detail: "MAX_CONNECTIONS connections are open; this one serves only /healthz and \
                     /readyz; retry shortly"
                .into(),
            ..Problem::overloaded()
        }
        .into_response();
    }
    match app.oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

/// A stream whose writes fail with `TimedOut` once one has waited longer than `limit`
/// without progress: the peer stopped reading.
///
/// Only a write that cannot proceed arms the timer, and any progress disarms it, so a
/// large answer read slowly but steadily is not cut off; and a handler waiting on Darktrace
/// writes nothing, so it is not cut off either.
pub struct StallTimeout<S> {
    inner: S,
    limit: Duration,
    stalled: Option<Pin<Box<Sleep>>>,
}

impl<S> StallTimeout<S> {
    pub fn new(inner: S, limit: Duration) -> Self {
        StallTimeout {
            inner,
            limit,
            stalled: None,
        }
    }

    /// Passes `poll` through, arming the timer while it is pending.
    fn guard<T>(
        &mut self,
        cx: &mut Context<'_>,
        poll: impl FnOnce(Pin<&mut S>, &mut Context<'_>) -> Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>>
    where
        S: Unpin,
    {
        match poll(Pin::new(&mut self.inner), cx) {
            Poll::Ready(result) => {
                self.stalled = None;
                Poll::Ready(result)
            }
            Poll::Pending => {
                let limit = self.limit;
                let timer = self
                    .stalled
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
                ready!(timer.as_mut().poll(cx));
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the peer did not read the answer within WRITE_TIMEOUT_SECS",
                )))
            }
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for StallTimeout<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for StallTimeout<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut()
            .guard(cx, |inner, cx| inner.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.get_mut()
            .guard(cx, |inner, cx| inner.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().guard(cx, |inner, cx| inner.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut()
            .guard(cx, |inner, cx| inner.poll_shutdown(cx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test(start_paused = true)]
    async fn a_write_the_peer_never_reads_fails_after_the_limit() {
        // A 64-byte pipe whose reader never reads: the second write cannot proceed.
        let (writer, _reader) = tokio::io::duplex(64);
        let mut stream = StallTimeout::new(writer, Duration::from_secs(5));
        stream.write_all(&[0; 64]).await.unwrap();
        let error = stream.write_all(&[0; 64]).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_that_progresses_before_the_limit_is_not_cut_off() {
        let (writer, mut reader) = tokio::io::duplex(64);
        let mut stream = StallTimeout::new(writer, Duration::from_secs(5));
        let reading = tokio::spawn(async move {
            let mut total = 0;
            let mut buf = [0u8; 64];
            while total < 640 {
                // Slower than nothing, but each read within the limit.
                tokio::time::sleep(Duration::from_secs(4)).await;
                total += tokio::io::AsyncReadExt::read(&mut reader, &mut buf)
                    .await
                    .unwrap();
            }
            total
        });
        stream.write_all(&[0; 640]).await.unwrap();
        assert_eq!(reading.await.unwrap(), 640);
    }
}
