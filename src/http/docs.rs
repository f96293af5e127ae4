//! `GET /openapi.yaml`: the spec, compiled into the binary so what is served is what was
//! tested against the router.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

/// `openapi.yaml` at the repository root.
pub const OPENAPI_YAML: &str = include_str!("../../openapi.yaml");

pub async fn openapi_yaml() -> Response {
    let mut response = OPENAPI_YAML.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/yaml"),
    );
    response
}
