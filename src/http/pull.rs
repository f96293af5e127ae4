//! `POST /pull`: one pull of the configured ThreatQ collection now, answered with its report
//! (as `/sync` answers), or a refusal when ThreatQ could not be read, the plan was refused, a
//! pull is running, or no ThreatQ is configured.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};

use crate::cmd::pull::problem_of;
use crate::config::parse_bool;
use crate::http::AppState;
use crate::http::batch::report_response;
use crate::http::problem::{Problem, ProblemKind};

/// Runs a pull; `?dry_run=true` shows the plan, `?force=true` carries out one over the cap.
#[tracing::instrument(name = "pull", skip_all)]
pub async fn pull(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    if carries_a_body(&headers) {
        return Problem::bad_parameter(
            "/pull takes no body: it reads THREATQ_COLLECTION from ThreatQ; to send a collection yourself, POST it to /sync or /export",
        )
        .into_response();
    }
    let Some(puller) = &state.pull else {
        return Problem::new(
            ProblemKind::PullNotConfigured,
            "this service has no ThreatQ collection to pull: set THREATQ_URL, THREATQ_CLIENT_ID, the credentials and THREATQ_COLLECTION",
        )
        .into_response();
    };
    let (mut dry_run, mut force) = (false, false);
    for (key, value) in form_urlencoded::parse(query.as_deref().unwrap_or("").as_bytes()) {
        let flag = match key.as_ref() {
            "dry_run" => &mut dry_run,
            "force" => &mut force,
            other => {
                return Problem::bad_parameter(format!(
                    "query parameter {other} is not taken by /pull; give dry_run or force"
                ))
                .into_response();
            }
        };
        match parse_bool("dry_run", &value) {
            Ok(value) => *flag = value,
            Err(_) => {
                return Problem::bad_parameter(format!("{key} must be true or false"))
                    .into_response();
            }
        }
    }
    match puller.run(dry_run, force).await {
        Ok(report) => report_response(&report),
        Err(error) => match problem_of(&error) {
            (problem, Some(refused)) => problem.with_members(refused),
            (problem, None) => problem.into_response(),
        },
    }
}

/// Whether the request says it sends a body. A collection posted here by mistake (meant for
/// `/sync`) would otherwise be dropped unread while a real pull runs.
fn carries_a_body(headers: &HeaderMap) -> bool {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|len| len.to_str().ok())
        .is_some_and(|len| len.trim() != "0");
    declared || headers.contains_key(header::TRANSFER_ENCODING)
}
