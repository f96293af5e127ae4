//! Taking entries out of Darktrace under one source: `/remove`, and the removals of `/sync`.
//!
//! What Darktrace holds under the source is read first, so `not_present` is a fact rather
//! than a guess and an entry that is not there costs no call. Each removal is one
//! `removeentry` + `source` call, so an entry another source also holds stays in that source;
//! `removeall`, which wipes every source, is never sent. Calls go out in parallel within the
//! client's `DARKTRACE_CONCURRENCY`, with its retry rules.

use futures_util::future::join_all;

use super::held::{Held, read_failure};
use super::{Exporter, RequestSettings, report};
use crate::darktrace::wire::HeldName;
use crate::darktrace::{CallError, CallTally};
use crate::deadline::Deadline;
use crate::outcome::{Reason, Report, Verdict, deadline_verdict};
use crate::threatq::Item;

/// The verdict of a removal call; `why` says why the entry goes.
fn removal_verdict(
    answer: Result<Result<(), CallError>, crate::deadline::Expired>,
    source: &str,
    why: &str,
) -> Verdict {
    match answer {
        Err(_elapsed) => deadline_verdict(),
        Ok(Ok(())) => Verdict::new(
            Reason::Removed,
            format!("removed from Darktrace under source {source}{why}"),
        ),
        Ok(Err(error)) => {
            let cause = error.verdict();
            Verdict::new(
                cause.reason,
                format!("removal from source {source} failed: {}", cause.detail),
            )
        }
    }
}

/// One entry to take out: Darktrace's spelling, and the reason given in its result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedRemoval<'h> {
    pub name: &'h HeldName,
    /// Appended to "removed from Darktrace under source S", e.g. ": not in the collection".
    pub why: String,
}

impl Exporter {
    /// Removes each valid indicator of a batch from Darktrace under the request's source.
    ///
    /// Screened with [`crate::screen::Screener::for_removal`]: statuses and protection do not
    /// stop a removal. An entry Darktrace does not hold is `removed`/`not_present`; in a dry
    /// run, one it holds is `would_remove`.
    pub async fn remove<'a>(
        &self,
        items: Vec<Item<'a>>,
        settings: &RequestSettings,
        deadline: &Deadline,
        tally: &CallTally,
    ) -> Report<'a> {
        let screened = self
            .screener
            .for_removal()
            .screen(items, &deadline_verdict());
        let mut results = screened.results;
        let source = settings.source.as_str();
        if !screened.accepted.is_empty() {
            match deadline.run(self.client.entries(source, tally)).await {
                Err(_elapsed) => {} // every valid item stays failed/deadline
                Ok(Err(error)) => {
                    tracing::warn!(error = %error, source, "reading the source before removal failed");
                    let verdict = read_failure(&error, source);
                    for item in &screened.accepted {
                        results[item.index].settle(verdict.clone());
                    }
                }
                Ok(Ok(names)) => {
                    let held = Held::new(names);
                    let mut planned = Vec::new();
                    for item in &screened.accepted {
                        match held.get(&item.wire_value) {
                            None => results[item.index].settle(Verdict::new(
                                Reason::NotPresent,
                                format!("Darktrace does not hold it under source {source}"),
                            )),
                            Some(_) if settings.dry_run => {
                                results[item.index].settle(Verdict::new(
                                    Reason::DryRunRemoval,
                                    format!(
                                        "Darktrace holds it under source {source}; it would be removed"
                                    ),
                                ))
                            }
                            Some(name) => planned.push((
                                item.index,
                                PlannedRemoval {
                                    name,
                                    why: String::new(),
                                },
                            )),
                        }
                    }
                    let removals: Vec<PlannedRemoval> =
                        planned.iter().map(|(_, p)| p.clone()).collect();
                    let verdicts = self.send_removals(&removals, source, deadline, tally).await;
                    for ((index, _), verdict) in planned.iter().zip(verdicts) {
                        results[*index].settle(verdict);
                    }
                }
            }
        }
        let mut report = report(settings, results);
        report.expiry = None; // nothing was added, so no expiry was set
        report
    }

    /// Sends one `removeentry` + `source` call per entry, in parallel within the client's
    /// limit, and answers one verdict per entry, in order.
    pub async fn send_removals(
        &self,
        removals: &[PlannedRemoval<'_>],
        source: &str,
        deadline: &Deadline,
        tally: &CallTally,
    ) -> Vec<Verdict> {
        join_all(removals.iter().map(|removal| async move {
            let answer = deadline
                .run(self.client.remove(removal.name, source, tally))
                .await;
            if let Ok(Err(error)) = &answer {
                tracing::warn!(error = %error, source, "Darktrace removal call failed");
            }
            removal_verdict(answer, source, &removal.why)
        }))
        .await
    }
}
