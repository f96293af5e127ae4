//! The simulator's two routes: `/api/token` and `/api/indicators/query/hash/{hash}`.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use rand::distr::{Alphanumeric, SampleString};
use serde_json::{Value, json};

use super::{PageEnd, Shared};

pub(super) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/api/token", post(token))
        .route("/api/indicators/query/hash/{hash}", get(collection))
        .with_state(shared)
}

fn answer(status: StatusCode, body: Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// Latency, and the first `fail_first` requests failing; `None` when the request goes on.
async fn misbehave(shared: &Shared) -> Option<Response> {
    if !shared.config.latency.is_zero() {
        tokio::time::sleep(shared.config.latency).await;
    }
    let n = shared.requests.fetch_add(1, Ordering::SeqCst);
    (n < shared.config.fail_first).then(|| {
        let status = StatusCode::from_u16(shared.config.fail_status)
            .unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        answer(status, json!({"errors": ["simulated failure"]}))
    })
}

fn pairs(text: &str) -> HashMap<String, String> {
    form_urlencoded::parse(text.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// `POST /api/token`: fields from the query, then the body (JSON or form), then Basic auth.
async fn token(
    State(shared): State<Arc<Shared>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(failed) = misbehave(&shared).await {
        return failed;
    }
    let query = pairs(query.as_deref().unwrap_or(""));
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let (body_fields, body_form): (HashMap<String, String>, &'static str) =
        if content_type.starts_with("application/json") {
            let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(&body) else {
                return answer(
                    StatusCode::BAD_REQUEST,
                    json!({"errors": ["bad login request"]}),
                );
            };
            let fields = map
                .into_iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k, s.to_owned())))
                .collect();
            (fields, "json")
        } else {
            (pairs(&String::from_utf8_lossy(&body)), "form")
        };
    let field = |name: &str| {
        body_fields
            .get(name)
            .or_else(|| query.get(name))
            .map(String::as_str)
    };
    let config = &shared.config;
    let granted = match field("grant_type") {
        Some("password") => {
            let user = field("email").or_else(|| field("username"));
            let right = field("client_id") == Some(config.client_id.as_str())
                && user == Some(config.email.as_str())
                && field("password") == Some(config.password.as_str());
            if !right {
                return answer(
                    StatusCode::UNAUTHORIZED,
                    json!({"data": {"errors": {"email": ["The credentials are not valid."]}}}),
                );
            }
            let sdk = query.contains_key("grant_type") && body_form == "json";
            if sdk { "sdk" } else { body_form }
        }
        Some("client_credentials") => {
            let basic = basic_auth(&headers);
            let right = config.client_secret.is_some()
                && basic
                    == Some((
                        config.client_id.clone(),
                        config.client_secret.clone().unwrap_or_default(),
                    ));
            if !right {
                return answer(
                    StatusCode::UNAUTHORIZED,
                    json!({"errors": ["invalid client credentials"]}),
                );
            }
            "client_credentials"
        }
        _ => {
            return answer(
                StatusCode::BAD_REQUEST,
                json!({"errors": ["bad login request: grant_type"]}),
            );
        }
    };
    let access = Alphanumeric.sample_string(&mut rand::rng(), 32);
    shared.tokens.lock().expect("tokens lock").insert(
        access.clone(),
        tokio::time::Instant::now() + config.token_ttl,
    );
    shared.grants.lock().expect("grants lock").push(granted);
    shared
        .issued
        .lock()
        .expect("issued lock")
        .push(access.clone());
    answer(
        StatusCode::OK,
        json!({
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": config.token_ttl.as_secs(),
            "refresh_token": Alphanumeric.sample_string(&mut rand::rng(), 32),
        }),
    )
}

fn basic_auth(headers: &HeaderMap) -> Option<(String, String)> {
    use base64::Engine;
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    Some((id.to_owned(), secret.to_owned()))
}

/// `GET /api/indicators/query/hash/{hash}?limit=N&cursorMark=C`.
async fn collection(
    State(shared): State<Arc<Shared>>,
    Path(hash): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let hold = shared.knobs.lock().expect("knobs lock").hold.clone();
    if let Some(hold) = hold {
        shared.held.fetch_add(1, Ordering::SeqCst);
        let _ = hold.acquire().await;
        shared.held.fetch_sub(1, Ordering::SeqCst);
    }
    if let Some(failed) = misbehave(&shared).await {
        return failed;
    }
    let unauthorized = || {
        answer(
            StatusCode::UNAUTHORIZED,
            json!({"errors": ["Unauthorized"]}),
        )
    };
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let Some(token) = auth.strip_prefix("Bearer ") else {
        if auth.to_ascii_lowercase().starts_with("bearer ") {
            shared.lowercase_refused.fetch_add(1, Ordering::SeqCst);
        }
        return unauthorized();
    };
    let valid = shared
        .tokens
        .lock()
        .expect("tokens lock")
        .get(token)
        .is_some_and(|until| tokio::time::Instant::now() < *until);
    if !valid {
        return unauthorized();
    }
    let Some(items) = shared.config.collections.get(&hash) else {
        return answer(
            StatusCode::NOT_FOUND,
            json!({"errors": ["no such collection"]}),
        );
    };
    let query = pairs(query.as_deref().unwrap_or(""));
    let limit: usize = query
        .get("limit")
        .and_then(|l| l.parse().ok())
        .filter(|l| *l > 0)
        .unwrap_or(100);
    let cursor = query.get("cursorMark").map_or("*", String::as_str);
    let offset = if cursor == "*" {
        Some(0)
    } else {
        cursor
            .strip_prefix("AoJ")
            .and_then(|o| o.parse::<usize>().ok())
    };
    let Some(offset) = offset else {
        return answer(
            StatusCode::BAD_REQUEST,
            json!({"errors": ["invalid cursorMark"]}),
        );
    };
    let page_index = offset / limit;
    let (end, failing, revoke) = {
        let knobs = shared.knobs.lock().expect("knobs lock");
        (knobs.page_end, knobs.failing_page, knobs.revoke_after_pages)
    };
    if let Some((page, status)) = failing
        && page == page_index
    {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return answer(status, json!({"errors": ["simulated page failure"]}));
    }
    if revoke.is_some_and(|after| shared.pages_served.load(Ordering::SeqCst) >= after) {
        shared.knobs.lock().expect("knobs lock").revoke_after_pages = None;
        shared.tokens.lock().expect("tokens lock").clear();
        return unauthorized();
    }
    let upto = (offset + limit).min(items.len());
    let page = &items[offset.min(items.len())..upto];
    let next = if end == PageEnd::UnchangedCursor && upto >= items.len() {
        cursor.to_owned()
    } else {
        format!("AoJ{upto}")
    };
    let data = match (page.is_empty(), end) {
        (true, PageEnd::EmptyObject) => json!({}),
        _ => Value::Array(page.to_vec()),
    };
    shared.pages_served.fetch_add(1, Ordering::SeqCst);
    answer(
        StatusCode::OK,
        json!({"total": items.len(), "data": data, "nextCursorMark": next, "limit": limit}),
    )
}
