//! `/sync`: make Darktrace's list for one source equal to the exportable part of a collection.
//!
//! One read of the source gives the plan: add or refresh every exportable item (a refresh
//! moves its expiry forward), remove the held entries of items the collection revokes
//! (excluded status, protected, type no longer exported) and the held entries it does not
//! name at all. Only the request's source is read and touched, one `removeentry` + `source`
//! at a time, so entries of other sources can never go. A plan removing more than
//! `SYNC_MAX_REMOVALS` entries, or one that would remove entries while exporting nothing, is
//! refused whole unless forced: a collection that came back empty or cut short must not
//! empty the list by accident.

use std::collections::HashSet;

use crate::deadline::Deadline;
use serde::Serialize;

use crate::darktrace::CallTally;
use crate::outcome::deadline_verdict;
use crate::outcome::{ItemResult, Reason, Removal, Report, Verdict};
use crate::pipeline::held::{Held, read_failure};
use crate::pipeline::remove::PlannedRemoval;
use crate::pipeline::{Exporter, RequestSettings, report};
use crate::screen::Accepted;
use crate::threatq::Item;

/// A plan refused for removing more than `SYNC_MAX_REMOVALS` entries; nothing was changed.
/// Serialised as the extension members of the 409 problem.
#[derive(Debug, Clone, Serialize)]
pub struct CapExceeded {
    pub source: String,
    pub sync_max_removals: usize,
    pub planned_removals: usize,
    /// Items of the collection the plan would add or refresh; a plan with none that
    /// removes anything is refused whatever the cap.
    pub exportable: usize,
    /// Every entry the plan would remove, items of the collection first, then the entries it
    /// does not name, each `would_remove`.
    pub removals: Vec<Removal>,
}

impl CapExceeded {
    pub fn detail(&self) -> String {
        if self.exportable == 0 {
            return format!(
                "the collection holds no exportable item, and the sync would remove {} entries from source {}: every entry it holds; nothing was changed. Check that the collection is the right one and complete, or send force=true to empty the source",
                self.planned_removals, self.source
            );
        }
        format!(
            "the sync would remove {} entries from source {}, more than SYNC_MAX_REMOVALS ({}); nothing was changed. Check that the collection is complete, or send force=true to carry out the plan",
            self.planned_removals, self.source, self.sync_max_removals
        )
    }
}

/// An item of the collection whose held entry goes, with why.
struct Revocation<'h> {
    index: usize,
    name: &'h str,
    why: String,
}

impl Exporter {
    /// Syncs the source to the collection `items`, or refuses a plan over `max_removals`.
    pub async fn sync<'a>(
        &self,
        items: Vec<Item<'a>>,
        settings: &RequestSettings,
        max_removals: usize,
        deadline: &Deadline,
        tally: &CallTally,
    ) -> Result<Report<'a>, CapExceeded> {
        let pending = if settings.dry_run {
            Verdict::new(Reason::DryRun, "valid; would be sent to Darktrace")
        } else {
            deadline_verdict()
        };
        let revocable = self
            .screener
            .for_removal()
            .screen(items.clone(), &pending)
            .accepted;
        let screened = self.screener.screen(items, &pending);
        let mut results = screened.results;
        let exported: HashSet<&str> = screened
            .accepted
            .iter()
            .map(|a| a.wire_value.as_str())
            .collect();
        // Items the service can identify but will not export. A value another item exports
        // stays; screening already kept back every spelling of an excluded value.
        let revoked: Vec<&Accepted> = revocable
            .iter()
            .filter(|r| !exported.contains(r.wire_value.as_str()))
            .collect();
        let source = settings.source.as_str();

        let held = match deadline.run(self.client.entry_details(source, tally)).await {
            Err(_elapsed) => {
                let verdict = deadline_verdict();
                settle_all(&mut results, &screened.accepted, &revoked, &verdict);
                return Ok(sync_report(settings, results, Vec::new()));
            }
            Ok(Err(error)) => {
                tracing::warn!(error = %error, source, "reading the source before sync failed");
                let verdict = read_failure(&error, source);
                settle_all(&mut results, &screened.accepted, &revoked, &verdict);
                return Ok(sync_report(settings, results, Vec::new()));
            }
            Ok(Ok(details)) => Held::new(details.into_iter().map(|d| d.name)),
        };

        let revocations: Vec<Revocation> = revoked
            .iter()
            .filter_map(|r| {
                held.get(&r.wire_value).map(|name| Revocation {
                    index: r.index,
                    name,
                    why: results[r.index].detail.to_string(),
                })
            })
            .collect();
        let named: HashSet<&str> = exported
            .iter()
            .copied()
            .chain(revoked.iter().map(|r| r.wire_value.as_str()))
            .collect();
        let strays: Vec<&str> = held
            .iter()
            .filter(|(value, _)| !named.contains(value.as_str()))
            .map(|(_, name)| name)
            .collect();

        let planned = revocations.len() + strays.len();
        // A collection with nothing to export (`[]`, a page with no data, all skipped) is
        // far more often a query gone wrong than a wish to empty the source.
        let empties_source = screened.accepted.is_empty() && planned > 0;
        if !settings.dry_run && !settings.force && (planned > max_removals || empties_source) {
            let plan = |value: &str, detail: String| Removal {
                value: value.to_owned(),
                outcome: Reason::DryRunRemoval.outcome(),
                reason: Reason::DryRunRemoval,
                detail: detail.into(),
            };
            let removals = revocations
                .iter()
                .map(|r| {
                    plan(
                        r.name,
                        format!("item {} of the collection: {}", r.index, r.why),
                    )
                })
                .chain(
                    strays
                        .iter()
                        .map(|name| plan(name, "not in the collection".to_owned())),
                )
                .collect();
            return Err(CapExceeded {
                source: source.to_owned(),
                sync_max_removals: max_removals,
                planned_removals: planned,
                exportable: screened.accepted.len(),
                removals,
            });
        }

        if settings.dry_run {
            for r in &revocations {
                results[r.index].settle(Verdict::new(
                    Reason::DryRunRemoval,
                    format!(
                        "Darktrace holds it under source {source} and it would be removed: {}",
                        r.why
                    ),
                ));
            }
            let removals = strays
                .iter()
                .map(|name| Removal {
                    value: (*name).to_owned(),
                    outcome: Reason::DryRunRemoval.outcome(),
                    reason: Reason::DryRunRemoval,
                    detail: format!(
                        "Darktrace holds it under source {source}, the collection does not name it, and it would be removed"
                    )
                    .into(),
                })
                .collect();
            return Ok(sync_report(settings, results, removals));
        }

        self.send_adds(&screened.accepted, settings, deadline, tally, &mut results)
            .await;
        let calls: Vec<PlannedRemoval> = revocations
            .iter()
            .map(|r| PlannedRemoval {
                name: r.name,
                why: format!(": {}", r.why),
            })
            .chain(strays.iter().map(|name| PlannedRemoval {
                name,
                why: ": not in the collection".into(),
            }))
            .collect();
        let mut verdicts = self
            .send_removals(&calls, source, deadline, tally)
            .await
            .into_iter();
        for (r, verdict) in revocations.iter().zip(verdicts.by_ref()) {
            results[r.index].settle(verdict);
        }
        let removals = strays
            .iter()
            .zip(verdicts)
            .map(|(name, verdict)| Removal {
                value: (*name).to_owned(),
                outcome: verdict.reason.outcome(),
                reason: verdict.reason,
                detail: verdict.detail,
            })
            .collect();
        Ok(sync_report(settings, results, removals))
    }
}

/// Every item the sync would have touched gets `verdict`: the source could not be read.
fn settle_all(
    results: &mut [ItemResult<'_>],
    exported: &[Accepted],
    revoked: &[&Accepted],
    verdict: &Verdict,
) {
    for index in exported
        .iter()
        .map(|a| a.index)
        .chain(revoked.iter().map(|r| r.index))
    {
        results[index].settle(verdict.clone());
    }
}

/// A sync's answer always carries `removals`, empty when no stray entry went.
fn sync_report<'a>(
    settings: &RequestSettings,
    results: Vec<ItemResult<'a>>,
    removals: Vec<Removal>,
) -> Report<'a> {
    let mut report = report(settings, results);
    report.summary.count_removals(&removals);
    report.removals = Some(removals);
    report
}
