//! The appliance's answers: each `/intelfeed` call checked, faults applied, the store read
//! or changed, and the call recorded.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use chrono::{NaiveDateTime, Utc};
use serde_json::{Value, json};

use super::store::AddOptions;
use super::verify::{self, Refusal, SignedRequest};
use super::{CallRecord, Faults, NO_ANSWER, Shared, Store};

pub(super) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/intelfeed", any(intelfeed))
        .with_state(shared)
}

/// Counts a call in flight for as long as it lives.
struct InFlight<'a>(&'a Shared);

impl<'a> InFlight<'a> {
    /// Counts the call in; returns how many are in progress with it.
    fn enter(shared: &'a Shared) -> (Self, usize) {
        let now = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        shared.max_in_flight.fetch_max(now, Ordering::SeqCst);
        (InFlight(shared), now)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn intelfeed(
    State(shared): State<Arc<Shared>>,
    method: Method,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (_in_flight, now_in_flight) = InFlight::enter(&shared);
    let (latency, over_capacity) = {
        let faults = shared.faults.lock().expect("faults lock");
        (faults.latency, faults.over_capacity(now_in_flight))
    };
    let query = query.unwrap_or_default();
    let date = headers
        .get("dtapi-date")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let record = |status: u16, body: Bytes| CallRecord {
        method: method.to_string(),
        target: if query.is_empty() {
            "/intelfeed".to_owned()
        } else {
            format!("/intelfeed?{query}")
        },
        body,
        status,
        date: date.clone(),
    };
    if let Some(retry_after) = over_capacity {
        shared.overloaded.fetch_add(1, Ordering::SeqCst);
        let (status, response) = injected_failure(503, Some(retry_after));
        shared.record(|| record(status, body));
        return response;
    }
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let (hang, injected) = {
        let mut faults = shared.faults.lock().expect("faults lock");
        let hang = faults.take_hang(method == Method::GET);
        let injected = (!hang)
            .then(|| faults.take_failure(method == Method::GET))
            .flatten();
        (hang, injected)
    };
    if hang {
        shared.record(|| record(NO_ANSWER, body));
        // Long enough for any client timeout; the task ends when the client goes away.
        tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
        return StatusCode::GATEWAY_TIMEOUT.into_response();
    }
    let (status, response) = match injected {
        Some((status, retry_after)) => injected_failure(status, retry_after),
        None => answer(&shared, &method, &query, &headers, &body),
    };
    shared.record(|| record(status, body));
    response
}

impl Shared {
    /// Keeps the call `make` describes, unless told to keep none.
    fn record(&self, make: impl FnOnce() -> CallRecord) {
        if self.skip_recording.load(Ordering::Relaxed) {
            return;
        }
        self.calls.lock().expect("calls lock").push(make());
    }
}

fn injected_failure(status: u16, retry_after: Option<u64>) -> (u16, Response) {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    if code.is_redirection() {
        // What an appliance does with a session it does not know.
        return redirect("/login");
    }
    let mut response = (code, "injected failure").into_response();
    if let Some(secs) = retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, secs.into());
    }
    (code.as_u16(), response)
}

fn answer(
    shared: &Shared,
    method: &Method,
    query: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> (u16, Response) {
    let faults = shared.faults.lock().expect("faults lock").clone();
    let header_text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let decoded;
    let signed_part: &[u8] = if *method == Method::GET && faults.sign_decoded_query {
        decoded = decoded_query(query);
        decoded.as_bytes()
    } else if *method == Method::GET {
        query.as_bytes()
    } else {
        body
    };
    let request = SignedRequest {
        token: header_text("dtapi-token"),
        date: header_text("dtapi-date"),
        signature: header_text("dtapi-signature"),
        path: "/intelfeed",
        signed_part,
    };
    let appliance_now = Utc::now() + chrono::Duration::seconds(faults.clock_offset_secs);
    let pair = match verify::verify(
        &request,
        &shared.tokens,
        appliance_now,
        !faults.refuse_compact_date,
    ) {
        Ok(pair) => pair,
        Err(Refusal::NotLoggedIn) => return redirect("/login"),
        Err(Refusal::Signature) => return appliance_error("API SIGNATURE ERROR"),
        Err(Refusal::Date) => return appliance_error("API DATE ERROR"),
    };
    let now = Utc::now().naive_utc();
    let mut store = shared.store.lock().expect("store lock");
    store.expire(now);
    match *method {
        Method::GET => json_answer(StatusCode::OK, read(&store, query)),
        Method::POST if !pair.can_edit => redirect("/403"),
        Method::POST => match parse_post(headers, body) {
            Ok(params) => {
                let answered = change(&mut store, &params, &faults);
                let changed = answered.0 == StatusCode::OK.as_u16();
                if changed && shared.faults.lock().expect("faults lock").take_reset() {
                    cut_off()
                } else {
                    answered
                }
            }
            Err(why) => json_answer(StatusCode::BAD_REQUEST, json!({ "error": why })),
        },
        _ => json_answer(
            StatusCode::METHOD_NOT_ALLOWED,
            json!({"error": "method not allowed"}),
        ),
    }
}

fn read(store: &Store, query: &str) -> Value {
    let mut source = None;
    let mut sources = false;
    let mut full = false;
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        match key.as_ref() {
            "source" => source = Some(value.into_owned()),
            "sources" => sources = value == "true",
            "fulldetails" => full = value == "true",
            _ => {}
        }
    }
    if sources {
        json!(store.sources())
    } else if full {
        json!(store.details(source.as_deref()))
    } else {
        json!(store.names(source.as_deref()))
    }
}

/// The parameters of a POST, from JSON or a form.
#[derive(Debug, Default)]
struct PostParams {
    fields: Vec<(String, Value)>,
}

impl PostParams {
    fn text(&self, key: &str) -> Option<String> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
    }

    fn flag(&self, key: &str) -> bool {
        self.text(key)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }
}

fn parse_post(headers: &HeaderMap, body: &[u8]) -> Result<PostParams, String> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type.starts_with("application/json") {
        let value: Value =
            serde_json::from_slice(body).map_err(|e| format!("invalid JSON: {e}"))?;
        let object = value.as_object().ok_or("body is not a JSON object")?;
        Ok(PostParams {
            fields: object.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        })
    } else {
        Ok(PostParams {
            fields: form_urlencoded::parse(body)
                .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
                .collect(),
        })
    }
}

fn change(store: &mut Store, params: &PostParams, faults: &Faults) -> (u16, Response) {
    let source = params.text("source");
    if params.text("removeall").is_some() {
        store.remove_all();
        return json_answer(StatusCode::OK, json!({"response": "SUCCESS"}));
    }
    if let Some(entry) = params.text("removeentry") {
        store.remove(&entry, source.as_deref());
        return json_answer(StatusCode::OK, json!({"response": "SUCCESS"}));
    }
    let list = params.text("addlist").or_else(|| params.text("addentry"));
    let Some(list) = list else {
        return json_answer(StatusCode::BAD_REQUEST, json!({"error": "nothing to do"}));
    };
    let expiry = match params.text("expiry") {
        Some(text) if !text.is_empty() => match parse_expiry(&text) {
            Some(x) => Some(x),
            None => {
                return json_answer(StatusCode::BAD_REQUEST, json!({"error": "invalid expiry"}));
            }
        },
        _ => None,
    };
    let strength = match params.text("strength") {
        None => None,
        Some(text) => match text.trim().parse::<u8>() {
            Ok(n) if n <= 100 => Some(n),
            _ => {
                return json_answer(
                    StatusCode::BAD_REQUEST,
                    json!({"error": "invalid strength"}),
                );
            }
        },
    };
    let names: Vec<&str> = list
        .split([',', '\n'])
        .filter(|name| !faults.reject_entries.iter().any(|r| r == name.trim()))
        .collect();
    let options = AddOptions {
        source,
        description: params.text("description"),
        expiry,
        hostname: params.flag("hostname"),
        strength,
        iagn: params.flag("iagn"),
    };
    let result = store.add(&names, &options);
    let answer = if faults.bare_success {
        json!({"response": "SUCCESS"})
    } else if faults.no_lists {
        json!({"response": "SUCCESS", "added": result.added.len(), "updated": result.updated.len()})
    } else {
        json!({
            "response": "SUCCESS",
            "added": result.added.len(),
            "updated": result.updated.len(),
            "addedList": result.added,
            "updatedList": result.updated,
        })
    };
    json_answer(StatusCode::OK, answer)
}

fn parse_expiry(text: &str) -> Option<NaiveDateTime> {
    let text = text.trim().trim_end_matches('Z');
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S")
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S"))
        .ok()
}

fn json_answer(status: StatusCode, value: Value) -> (u16, Response) {
    (status.as_u16(), (status, axum::Json(value)).into_response())
}

/// The appliance's 400: a pretty-printed object keyed by the first path segment.
fn appliance_error(message: &str) -> (u16, Response) {
    let body = format!("{{\n  \"intelfeed\": \"{message}\"\n}}");
    let response = Response::builder()
        .status(StatusCode::BAD_REQUEST)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .expect("static response");
    (400, response)
}

/// An answer that starts and then breaks off, as when the connection drops after the
/// appliance has applied a change: the client cannot know whether it took effect.
fn cut_off() -> (u16, Response) {
    let broken = futures_util::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "simulated connection reset",
        ))
    });
    let response = Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(broken))
        .expect("static response");
    (NO_ANSWER, response)
}

fn redirect(to: &'static str) -> (u16, Response) {
    let response = Response::builder()
        .status(StatusCode::FOUND)
        .header(header::LOCATION, to)
        .body(Body::from(format!("Found. Redirecting to {to}")))
        .expect("static response");
    (302, response)
}

/// `a=b%20c&d=e+f` as `a=b c&d=e f`: the query as a signer that signs decoded values sees it.
fn decoded_query(query: &str) -> String {
    form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}
