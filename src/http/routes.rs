//! The one list of routes. The router is built from [`ROUTES`] and from nothing else (this
//! module's `router_for` is the only place a route is added), and the route tests hold
//! `ROUTES` equal to the operations of `openapi.yaml`, so the spec and the router cannot
//! drift apart in either direction.

use axum::Router;
use axum::routing::{MethodFilter, MethodRouter, on};

use super::{AppState, batch, docs, health, metrics};

/// What answers a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Export,
    Remove,
    Sync,
    Pull,
    Healthz,
    Readyz,
    Metrics,
    OpenApi,
}

/// Which layers stand in front of a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Bearer token, body limit and load shedding: the routes that reach Darktrace.
    Batch,
    /// Bearer token only: `/pull` takes no body, and one pull runs at a time.
    Token,
    /// No token and no shedding: probes, scrapes and the spec must answer under load.
    Open,
}

/// One route: method, path (as in `openapi.yaml`) and what answers it.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub endpoint: Endpoint,
}

/// Every route the service serves.
pub const ROUTES: &[Route] = &[
    route("POST", "/export", Endpoint::Export),
    route("POST", "/remove", Endpoint::Remove),
    route("POST", "/sync", Endpoint::Sync),
    route("POST", "/pull", Endpoint::Pull),
    route("GET", "/healthz", Endpoint::Healthz),
    route("GET", "/readyz", Endpoint::Readyz),
    route("GET", "/metrics", Endpoint::Metrics),
    route("GET", "/openapi.yaml", Endpoint::OpenApi),
];

/// The routes of the table behind `access`, each wrapped by `wrap`, and nothing else.
///
/// Layers go on each method router (`MethodRouter::route_layer`), not on the whole
/// `Router`: that way a wrong method still gets 405 and an unknown path 404, never the
/// answer of a layer meant for the route (401, 415).
pub fn router_for(
    access: Access,
    wrap: impl Fn(MethodRouter<AppState>) -> MethodRouter<AppState>,
) -> Router<AppState> {
    ROUTES
        .iter()
        .filter(|r| r.endpoint.access() == access)
        .fold(Router::new(), |router, r| {
            router.route(r.path, wrap(r.method_router()))
        })
}

const fn route(method: &'static str, path: &'static str, endpoint: Endpoint) -> Route {
    Route {
        method,
        path,
        endpoint,
    }
}

impl Endpoint {
    pub fn access(self) -> Access {
        match self {
            Endpoint::Export | Endpoint::Remove | Endpoint::Sync => Access::Batch,
            Endpoint::Pull => Access::Token,
            Endpoint::Healthz | Endpoint::Readyz | Endpoint::Metrics | Endpoint::OpenApi => {
                Access::Open
            }
        }
    }

    /// The handler, answering `method` only (others get 405).
    fn method_router(self, method: MethodFilter) -> MethodRouter<AppState> {
        match self {
            Endpoint::Export => on(method, batch::export),
            Endpoint::Remove => on(method, batch::remove),
            Endpoint::Sync => on(method, batch::sync),
            Endpoint::Pull => on(method, super::pull::pull),
            Endpoint::Healthz => on(method, health::healthz),
            Endpoint::Readyz => on(method, health::readyz),
            Endpoint::Metrics => on(method, metrics::render),
            Endpoint::OpenApi => on(method, docs::openapi_yaml),
        }
    }
}

impl Route {
    pub fn method_router(&self) -> MethodRouter<AppState> {
        let filter = match self.method {
            "GET" => MethodFilter::GET,
            "POST" => MethodFilter::POST,
            "PUT" => MethodFilter::PUT,
            "DELETE" => MethodFilter::DELETE,
            "PATCH" => MethodFilter::PATCH,
            other => panic!("route table holds an unsupported method {other}"),
        };
        self.endpoint.method_router(filter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_route_is_listed_twice() {
        let mut seen = std::collections::HashSet::new();
        for r in ROUTES {
            assert!(seen.insert((r.method, r.path)), "{} {}", r.method, r.path);
            let _ = r.method_router();
        }
    }
}
