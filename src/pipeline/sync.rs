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

use serde::Serialize;

use super::changes::{Sent, with_changes};
use super::held::{Held, read_failure};
use super::remove::PlannedRemoval;
use super::{Exporter, RequestSettings, report};
use crate::darktrace::CallTally;
use crate::darktrace::wire::HeldName;
use crate::deadline::Deadline;
use crate::outcome::{ItemResult, Outcome, Reason, Removal, Report, Verdict, deadline_verdict};
use crate::screen::{Accepted, Screened};
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation<'h> {
    pub index: usize,
    /// Darktrace's spelling of the entry.
    pub name: &'h HeldName,
    /// The item's own result detail: why it is not exported.
    pub why: String,
}

/// What a sync does to the source, worked out from the screened collection and what
/// Darktrace holds. Pure: every rule of it is tested without a Darktrace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncPlan<'h> {
    /// Items the collection holds but does not export, whose entry Darktrace holds.
    pub revocations: Vec<Revocation<'h>>,
    /// Entries Darktrace holds under the source that the collection does not name.
    pub strays: Vec<&'h HeldName>,
    /// How many items the sync adds or refreshes.
    pub exportable: usize,
}

impl<'h> SyncPlan<'h> {
    /// The plan for `exported` (the accepted items) and `revoked` (items identified but not
    /// exported), whose results are `results`, against `held`.
    pub fn new(
        exported: &[Accepted],
        revoked: &[&Accepted],
        results: &[ItemResult<'_>],
        held: &'h Held,
    ) -> SyncPlan<'h> {
        let revocations = revoked
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
            .chain(revoked.iter().copied())
            .map(|a| a.wire_value.as_str())
            .collect();
        let strays = held
            .iter()
            .filter(|(value, _)| !named.contains(value.as_str()))
            .map(|(_, name)| name)
            .collect();
        SyncPlan {
            revocations,
            strays,
            exportable: exported.len(),
        }
    }

    /// How many entries the plan removes.
    pub fn removals(&self) -> usize {
        self.revocations.len() + self.strays.len()
    }

    /// Why the plan may not be carried out without `force=true`, if it may not: it removes
    /// more than `max_removals`, or it removes anything while exporting nothing (`[]`, a page
    /// with no data, all skipped: far more often a query gone wrong than a wish to empty the
    /// source). A dry run is never refused: it only shows the plan.
    pub fn refusal(&self, settings: &RequestSettings, max_removals: usize) -> Option<CapExceeded> {
        let planned = self.removals();
        let empties_source = self.exportable == 0 && planned > 0;
        if settings.dry_run || settings.force || (planned <= max_removals && !empties_source) {
            return None;
        }
        let plan = |name: &HeldName, detail: String| Removal {
            value: name.as_str().to_owned(),
            outcome: Reason::DryRunRemoval.outcome(),
            reason: Reason::DryRunRemoval,
            detail: detail.into(),
        };
        let removals = self
            .revocations
            .iter()
            .map(|r| {
                plan(
                    r.name,
                    format!("item {} of the collection: {}", r.index, r.why),
                )
            })
            .chain(
                self.strays
                    .iter()
                    .map(|name| plan(name, "not in the collection".to_owned())),
            )
            .collect();
        Some(CapExceeded {
            source: settings.source.clone(),
            sync_max_removals: max_removals,
            planned_removals: planned,
            exportable: self.exportable,
            removals,
        })
    }

    /// A dry run's answer: each revoked item `would_remove`, and the strays listed so.
    pub fn show(&self, source: &str, results: &mut [ItemResult<'_>]) -> Vec<Removal> {
        for r in &self.revocations {
            results[r.index].settle(Verdict::new(
                Reason::DryRunRemoval,
                format!(
                    "Darktrace holds it under source {source} and it would be removed: {}",
                    r.why
                ),
            ));
        }
        self.strays
            .iter()
            .map(|name| Removal {
                value: name.as_str().to_owned(),
                outcome: Reason::DryRunRemoval.outcome(),
                reason: Reason::DryRunRemoval,
                detail: format!(
                    "Darktrace holds it under source {source}, the collection does not name it, and it would be removed"
                )
                .into(),
            })
            .collect()
    }

    /// The removal calls, revocations first, then strays.
    pub fn calls(&self) -> Vec<PlannedRemoval<'h>> {
        self.revocations
            .iter()
            .map(|r| PlannedRemoval {
                name: r.name,
                why: format!(": {}", r.why),
            })
            .chain(self.strays.iter().map(|name| PlannedRemoval {
                name,
                why: ": not in the collection".into(),
            }))
            .collect()
    }

    /// Settles the revoked items and lists the strays by the verdicts of [`Self::calls`],
    /// given in the same order.
    pub fn settle(&self, verdicts: Vec<Verdict>, results: &mut [ItemResult<'_>]) -> Vec<Removal> {
        let mut verdicts = verdicts.into_iter();
        for (r, verdict) in self.revocations.iter().zip(verdicts.by_ref()) {
            results[r.index].settle(verdict);
        }
        self.strays
            .iter()
            .zip(verdicts)
            .map(|(name, verdict)| Removal {
                value: name.as_str().to_owned(),
                outcome: verdict.reason.outcome(),
                reason: verdict.reason,
                detail: verdict.detail,
            })
            .collect()
    }
}

impl Exporter {
    /// Syncs the source to the collection `items`: screen, read what the source holds, plan
    /// (refused over `max_removals` or when it would empty the source), then add and remove.
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
        self.sync_screened(
            screened,
            &revocable,
            settings,
            max_removals,
            deadline,
            tally,
        )
        .await
    }

    /// [`Self::sync`] of a collection already screened: `screened` by the export rules,
    /// `revocable` the items the removal rules accept (a pull screens page by page).
    pub async fn sync_screened<'a>(
        &self,
        screened: Screened<'a>,
        revocable: &[Accepted],
        settings: &RequestSettings,
        max_removals: usize,
        deadline: &Deadline,
        tally: &CallTally,
    ) -> Result<Report<'a>, CapExceeded> {
        let mut results = screened.results;
        let revoked = revoked(&screened.accepted, revocable);
        let source = settings.source.as_str();

        let held = match deadline.run(self.client.entry_details(source, tally)).await {
            Ok(Ok(details)) => Held::from_details(details),
            failed => {
                let verdict = match failed {
                    Ok(Err(error)) => {
                        tracing::warn!(error = %error, source, "reading the source before sync failed");
                        read_failure(&error, source)
                    }
                    _ => deadline_verdict(),
                };
                settle_all(&mut results, &screened.accepted, &revoked, &verdict);
                return Ok(sync_report(settings, results, Vec::new()));
            }
        };

        let plan = SyncPlan::new(&screened.accepted, &revoked, &results, &held);
        if let Some(refused) = plan.refusal(settings, max_removals) {
            return Err(refused);
        }
        if settings.dry_run {
            self.note_changes(&screened.accepted, &held, settings, &mut results);
            let removals = plan.show(source, &mut results);
            return Ok(sync_report(settings, results, removals));
        }
        self.send_adds(&screened.accepted, settings, deadline, tally, &mut results)
            .await;
        self.note_changes(&screened.accepted, &held, settings, &mut results);
        let verdicts = self
            .send_removals(&plan.calls(), source, deadline, tally)
            .await;
        let removals = plan.settle(verdicts, &mut results);
        Ok(sync_report(settings, results, removals))
    }
}

impl Exporter {
    /// Says in each refreshed item's detail what its add changed (or, in a dry run, would
    /// change) of the entry Darktrace held: strength, expiry, Autonomous Response.
    fn note_changes(
        &self,
        exported: &[Accepted],
        held: &Held,
        settings: &RequestSettings,
        results: &mut [ItemResult<'_>],
    ) {
        for item in exported {
            let result = &mut results[item.index];
            let done = match result.outcome {
                Outcome::Exported => true,
                Outcome::WouldExport => false,
                _ => continue, // the add failed: nothing changed
            };
            let Some(state) = held.state(&item.wire_value) else {
                continue;
            };
            let shape = self.shape_of(item, settings);
            let changes = state.changes(&Sent {
                strength: shape.strength,
                expiry: shape.expiry.as_deref(),
                iagn: settings.iagn,
            });
            if !changes.is_empty() {
                result.detail = with_changes(&result.detail, &changes, done).into();
            }
        }
    }
}

/// Items the service can identify but will not export. A value another item exports stays;
/// screening already kept back every spelling of an excluded value.
fn revoked<'r>(exported: &[Accepted], revocable: &'r [Accepted]) -> Vec<&'r Accepted> {
    let exported: HashSet<&str> = exported.iter().map(|a| a.wire_value.as_str()).collect();
    revocable
        .iter()
        .filter(|r| !exported.contains(r.wire_value.as_str()))
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::indicator::IndicatorType;

    fn accepted(index: usize, value: &str) -> Accepted {
        Accepted {
            index,
            kind: IndicatorType::Fqdn,
            wire_value: crate::screen::WireValue::unchecked(value),
            score: None,
            expires: None,
        }
    }

    fn results(details: &[&'static str]) -> Vec<ItemResult<'static>> {
        details
            .iter()
            .enumerate()
            .map(|(index, detail)| ItemResult {
                index,
                id: None,
                type_name: None,
                value: None,
                outcome: Reason::ExcludedStatus.outcome(),
                exported_value: None,
                reason: Reason::ExcludedStatus,
                detail: (*detail).into(),
            })
            .collect()
    }

    fn settings(dry_run: bool, force: bool) -> RequestSettings {
        RequestSettings {
            source: "S".into(),
            expiry: None,
            description: None,
            iagn: false,
            strength: None,
            dry_run,
            force,
        }
    }

    fn held(names: &[&str]) -> Held {
        Held::new(names.iter().copied().map(HeldName::listed))
    }

    #[test]
    fn strays_are_held_entries_the_collection_does_not_name_in_any_spelling() {
        let held = held(&[
            "Keep.Example",
            "stray.example",
            "revoked.example",
            "*other.example",
        ]);
        let exported = [accepted(0, "keep.example")];
        let revocable = [
            accepted(1, "revoked.example"),
            accepted(2, "absent.example"),
        ];
        let revoked: Vec<&Accepted> = revocable.iter().collect();
        let results = results(&["", "status Whitelisted is never exported", "gone"]);
        let plan = SyncPlan::new(&exported, &revoked, &results, &held);
        assert_eq!(
            plan.revocations,
            vec![Revocation {
                index: 1,
                name: &HeldName::listed("revoked.example"),
                why: "status Whitelisted is never exported".into()
            }]
        );
        let strays: Vec<&str> = plan.strays.iter().map(|n| n.as_str()).collect();
        assert_eq!(strays, ["stray.example", "*other.example"]);
        assert_eq!(plan.removals(), 3);
        assert_eq!(plan.exportable, 1);
        let calls: Vec<&str> = plan.calls().iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            calls,
            ["revoked.example", "stray.example", "*other.example"]
        );
    }

    #[test]
    fn a_value_another_item_exports_is_not_revoked() {
        let exported = [accepted(1, "both.example")];
        let revocable = [accepted(0, "both.example"), accepted(1, "both.example")];
        assert!(revoked(&exported, &revocable).is_empty());
    }

    #[test]
    fn over_the_cap_or_emptying_the_source_is_refused_unless_forced_or_a_dry_run() {
        let held = held(&["a.example", "b.example", "c.example"]);
        let results = results(&["", ""]);
        let keep = [accepted(0, "a.example")];
        let plan = SyncPlan::new(&keep, &[], &results, &held);
        assert_eq!(plan.removals(), 2);
        assert!(
            plan.refusal(&settings(false, false), 2).is_none(),
            "at the cap"
        );
        let refused = plan
            .refusal(&settings(false, false), 1)
            .expect("over the cap");
        assert_eq!(refused.planned_removals, 2);
        assert_eq!(refused.exportable, 1);
        assert_eq!(refused.removals.len(), 2);
        assert!(
            refused
                .removals
                .iter()
                .all(|r| r.reason == Reason::DryRunRemoval)
        );
        assert!(refused.detail().contains("more than SYNC_MAX_REMOVALS (1)"));
        assert!(plan.refusal(&settings(false, true), 1).is_none(), "forced");
        assert!(plan.refusal(&settings(true, false), 1).is_none(), "dry run");

        let nothing = SyncPlan::new(&[], &[], &results, &held);
        let refused = nothing
            .refusal(&settings(false, false), 100)
            .expect("an empty collection never empties the source");
        assert_eq!(refused.exportable, 0);
        assert!(refused.detail().contains("no exportable item"));
        assert!(nothing.refusal(&settings(false, true), 100).is_none());
        let empty = Held::default();
        let nothing_held = SyncPlan::new(&[], &[], &results, &empty);
        assert!(nothing_held.refusal(&settings(false, false), 0).is_none());
    }

    #[test]
    fn a_dry_run_shows_the_plan_and_settles_by_the_verdicts_in_call_order() {
        let held = held(&["revoked.example", "stray.example"]);
        let revocable = [accepted(0, "revoked.example")];
        let revoked: Vec<&Accepted> = revocable.iter().collect();
        let mut shown = results(&["status Whitelisted is never exported"]);
        let plan = SyncPlan::new(&[], &revoked, &shown.clone(), &held);
        let removals = plan.show("S", &mut shown);
        assert_eq!(shown[0].reason, Reason::DryRunRemoval);
        assert!(
            shown[0].detail.contains("Whitelisted"),
            "{}",
            shown[0].detail
        );
        assert_eq!(removals.len(), 1);
        assert_eq!(removals[0].value, "stray.example");
        assert_eq!(removals[0].reason, Reason::DryRunRemoval);

        let mut settled = results(&["status Whitelisted is never exported"]);
        let removals = plan.settle(
            vec![
                Verdict::new(Reason::Removed, "removed"),
                Verdict::new(Reason::DarktraceTimeout, "timed out"),
            ],
            &mut settled,
        );
        assert_eq!(settled[0].reason, Reason::Removed);
        assert_eq!(removals[0].value, "stray.example");
        assert_eq!(removals[0].reason, Reason::DarktraceTimeout);
        assert_eq!(removals[0].outcome, Reason::DarktraceTimeout.outcome());
    }
}
