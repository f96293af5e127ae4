//! `darktrace-export pull`: one pull of the configured collection; the report (or the
//! refusal) as JSON on stdout, the progress in the log on stderr.

use serde_json::{Value, json};

use crate::config::Config;
use crate::http::problem::{Problem, ProblemKind};
use crate::pipeline::CapExceeded;
use crate::pull::PullError;

/// How a pull ended, for the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Nothing failed.
    Clean,
    /// An item failed, the plan was refused, or ThreatQ could not be read.
    Failed,
}

/// Runs one pull with `config` (which must have a ThreatQ) and returns what to print: the
/// report in the order `POST /pull` answers it, or the refusal.
pub async fn run(config: Config, dry_run: bool, force: bool) -> Result<(Ended, String), String> {
    let state = crate::app::app_state(config).map_err(|e| e.to_string())?;
    let puller = state
        .pull
        .ok_or_else(|| "THREATQ_URL: not set; a pull needs it".to_owned())?;
    Ok(match puller.run(dry_run, force).await {
        Ok(report) => {
            let ended = if report.has_failures() {
                Ended::Failed
            } else {
                Ended::Clean
            };
            let printed = serde_json::to_string(&report).map_err(|e| e.to_string())?;
            (ended, printed)
        }
        Err(error) => (Ended::Failed, refusal(&error).to_string()),
    })
}

/// The refusal of a pull that changed nothing, and the plan it refused when there is one.
pub fn problem_of(error: &PullError) -> (Problem, Option<&CapExceeded>) {
    match error {
        PullError::Running => (
            Problem::new(
                ProblemKind::PullInProgress,
                "a pull is running; nothing was changed; try again when it has finished",
            ),
            None,
        ),
        PullError::SourceBusy(source) => (Problem::sync_in_progress(source), None),
        PullError::Threatq(error) => (
            Problem::new(
                ProblemKind::ThreatqError,
                format!("{error}; nothing in Darktrace was changed"),
            ),
            None,
        ),
        PullError::Refused(refused) => (Problem::sync_cap(refused.detail()), Some(refused)),
    }
}

/// The problem document a pull that changed nothing prints.
pub fn refusal(error: &PullError) -> Value {
    let (problem, members) = problem_of(error);
    let mut doc = serde_json::to_value(&problem).unwrap_or_else(|_| json!({}));
    if let (Some(Value::Object(members)), Value::Object(doc)) =
        (members.and_then(|m| serde_json::to_value(m).ok()), &mut doc)
    {
        for (key, value) in members {
            doc.entry(key).or_insert(value);
        }
    }
    doc
}
