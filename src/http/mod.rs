//! The HTTP face of the service: routes, the layer stack, and the state handlers share.

pub mod auth;
pub mod batch;
pub mod docs;
pub mod fallback;
pub mod health;
pub mod held;
pub mod intake;
pub mod metrics;
pub mod problem;
pub mod pull;
pub mod request;
pub mod request_id;
pub mod routes;
pub mod server;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRef, MatchedPath, Request, State};
use axum::http::{HeaderName, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use tokio::sync::Semaphore;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::trace::{DefaultOnFailure, TraceLayer};

use crate::config::Config;
use crate::deadline::Drain;
use crate::pipeline::Exporter;
use crate::source_lock::SourceLocks;
use auth::BearerTokens;
use health::Readiness;
use problem::Problem;
use routes::Access;

/// What every handler shares. Cloned per request, so everything in it is behind an `Arc` or
/// is a handle: the exporter's screening and protection lists are built once, never copied.
#[derive(Debug, Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub exporter: Arc<Exporter>,
    pub readiness: Readiness,
    /// Set when shutdown begins: requests in progress must answer by its end.
    pub drain: Drain,
    /// One permit per batch request in progress (`MAX_CONCURRENT_EXPORTS`).
    pub batch_permits: Arc<Semaphore>,
    /// Sources being synced: one sync per source at a time.
    pub source_locks: SourceLocks,
    /// The pull of the ThreatQ collection, when `THREATQ_URL` is set.
    pub pull: Option<crate::pull::Puller>,
}

impl FromRef<AppState> for Readiness {
    fn from_ref(state: &AppState) -> Readiness {
        state.readiness.clone()
    }
}

/// The request id header: taken from the caller when sent, else generated; always echoed.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The router with its full layer stack. Its routes come from [`routes::ROUTES`] only.
///
/// Layers, outermost first: sensitive headers hidden, request id set (from `X-Request-Id`
/// or a new UUID) and echoed, a span per request carrying that id (so every log line of
/// the request does), HTTP metrics, problem+json for framework errors, panics caught; then,
/// on the batch routes only, body limit, bearer token, load shedding and body intake.
pub fn router(state: AppState) -> Router {
    let tokens = BearerTokens::new(&state.config.api_tokens);
    let batch_routes = routes::router_for(Access::Batch, |route| guarded(route, &state, &tokens));
    let token_routes = routes::router_for(Access::Token, |route| {
        route.route_layer(middleware::from_fn_with_state(
            tokens.clone(),
            auth::require_bearer,
        ))
    });

    routes::router_for(Access::Open, |route| route)
        .merge(batch_routes)
        .merge(token_routes)
        .with_state(state)
        .layer(CatchPanicLayer::custom(fallback::panic_response))
        .layer(middleware::from_fn(fallback::problem_for_bare_errors))
        .layer(middleware::from_fn(metrics::track))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                // A 502 is Darktrace failing, already logged with its cause: a warning here.
                .on_failure(DefaultOnFailure::new().level(tracing::Level::WARN)),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .layer(middleware::from_fn(request_id::refuse_unsafe_ids))
        .layer(SetSensitiveRequestHeadersLayer::new([
            header::AUTHORIZATION,
        ]))
}

/// The span every line of a request is written in: its id, method and matched route.
fn request_span(request: &Request) -> tracing::Span {
    let id = request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str);
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %request.method(),
        route = %route,
    );
    if let Some(replaced) = request.extensions().get::<request_id::ReplacedId>() {
        span.in_scope(|| {
            tracing::warn!(
                length = replaced.length,
                max_length = request_id::MAX_LEN,
                "X-Request-Id refused (too long, or not visible ASCII, or given twice); a generated id replaces it"
            )
        });
    }
    span
}

/// Wraps a batch route (one that reaches Darktrace). Each request passes, in order: the
/// body limit, the bearer check (401), load shedding (503), then the content type (415) and
/// body intake within size and deadline (413, 408), before its handler runs.
fn guarded(
    route: MethodRouter<AppState>,
    state: &AppState,
    tokens: &BearerTokens,
) -> MethodRouter<AppState> {
    route
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            intake::take_in_body,
        ))
        .route_layer(middleware::from_fn_with_state(state.clone(), shed_load))
        .route_layer(middleware::from_fn_with_state(
            tokens.clone(),
            auth::require_bearer,
        ))
        .route_layer(DefaultBodyLimit::max(state.config.limits.max_body_bytes))
}

/// Load shedding: beyond `MAX_CONCURRENT_EXPORTS` batch requests, answer 503 at once rather
/// than queue without bound; once shutdown has begun, take no new batch.
async fn shed_load(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if !state.readiness.is_ready() {
        return Problem::shutting_down().into_response();
    }
    match state.batch_permits.clone().try_acquire_owned() {
        // Held until the answer is written, not only until it is ready.
        Ok(permit) => held::hold_until_written(next.run(request).await, permit),
        Err(_) => Problem::overloaded().into_response(),
    }
}

/// How long the handler may take before items not yet confirmed are reported `deadline`.
/// Handlers of guarded routes take the [`crate::deadline::Deadline`] extension instead, which was
/// fixed when the request arrived.
pub fn request_deadline(config: &Config) -> tokio::time::Instant {
    tokio::time::Instant::now() + config.limits.request_timeout
}
