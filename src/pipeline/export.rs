//! `/export`: the accepted items planned into add calls (batch size, hostname flag, strength), sent
//! within the deadline, and each settled by Darktrace's answer.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};

use futures_util::future::join_all;

use super::reconcile::{confirmed_verdict, normalise_echo, reconcile_lists};
use super::{Exporter, RequestSettings, report};
use crate::darktrace::wire::{AddAnswer, AddCall};
use crate::darktrace::{CallError, CallTally};
use crate::deadline::Deadline;
use crate::indicator::IndicatorType;
use crate::outcome::{ItemResult, Reason, Report, Verdict, deadline_verdict};
use crate::screen::{Accepted, Screened, Screening};

/// What every entry of one add call shares beyond the request's settings.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct CallShape {
    hostname: bool,
    pub(super) strength: Option<u8>,
    /// Darktrace's expiry form, `YYYY-MM-DDTHH:MM:SS` UTC.
    pub(super) expiry: Option<String>,
}

/// An item's expiry: the request's (`DAYS_TO_EXPIRATION`) or its own from ThreatQ,
/// the earlier when both are set. The form sorts as time does, so text is compared.
fn item_expiry(request: Option<&str>, item: &Accepted) -> Option<String> {
    let own = item
        .expires
        .map(|at| at.format("%Y-%m-%dT%H:%M:%S").to_string());
    match (request, own) {
        (Some(request), Some(own)) => Some(own.min(request.to_owned())),
        (request, own) => own.or_else(|| request.map(str::to_owned)),
    }
}

/// The verdict an accepted item holds until Darktrace answers for it: a dry run's, or
/// `deadline` (not confirmed in time), which only Darktrace's answer replaces.
pub fn pending_verdict(dry_run: bool) -> Verdict {
    if dry_run {
        Verdict::new(Reason::DryRun, "valid; would be sent to Darktrace")
    } else {
        deadline_verdict()
    }
}

impl Exporter {
    /// Exports a batch whose items were judged as they were read, and answers for each.
    /// `screening` must come from `self.screener.start()`: the export rules, not the
    /// removal rules.
    pub async fn export_screened<'a>(
        &self,
        screening: Screening<'_, 'a>,
        settings: &RequestSettings,
        deadline: &Deadline,
        tally: &CallTally,
    ) -> Report<'a> {
        let pending = pending_verdict(settings.dry_run);
        let screened = crate::offload::off_workers(|| screening.finish(&pending));
        self.export_judged(screened, settings, deadline, tally)
            .await
    }

    /// Exports a batch already judged and finished with [`pending_verdict`].
    pub async fn export_judged<'a>(
        &self,
        screened: Screened<'a>,
        settings: &RequestSettings,
        deadline: &Deadline,
        tally: &CallTally,
    ) -> Report<'a> {
        let mut results = screened.results;
        if !settings.dry_run {
            self.send_adds(&screened.accepted, settings, deadline, tally, &mut results)
                .await;
        }
        report(settings, results)
    }

    /// Sends `accepted` in chunks, in parallel within the client's limit, and settles their
    /// results.
    pub async fn send_adds(
        &self,
        accepted: &[Accepted],
        settings: &RequestSettings,
        deadline: &Deadline,
        tally: &CallTally,
        results: &mut [ItemResult<'_>],
    ) {
        let planned = self.plan(accepted, settings);
        let calls = planned.iter().map(|(shape, chunk)| AddCall {
            entries: chunk.iter().map(|a| &a.wire_value).collect(),
            source: &settings.source,
            expiry: shape.expiry.as_deref(),
            description: settings.description.as_deref(),
            hostname: shape.hostname,
            iagn: settings.iagn,
            strength: shape.strength,
        });
        let answers = join_all(
            calls.map(|call| async move { deadline.run(self.client.add(&call, tally)).await }),
        )
        .await;

        let mut unconfirmed: Vec<(&Accepted, &AddAnswer, usize)> = Vec::new();
        for ((_, chunk), answer) in planned.iter().zip(&answers) {
            match answer {
                Err(_elapsed) => {} // stays failed/deadline
                Ok(Err(error)) => {
                    let verdict = error.verdict();
                    tracing::warn!(error = %error, entries = chunk.len(), "Darktrace add call failed");
                    for item in chunk {
                        results[item.index].settle(verdict.clone());
                    }
                }
                Ok(Ok(answer)) => match (&answer.added_list, &answer.updated_list) {
                    (None, None) => {
                        unconfirmed.extend(chunk.iter().map(|item| (*item, answer, chunk.len())))
                    }
                    (added, updated) => reconcile_lists(chunk, added, updated, results),
                },
            }
        }
        if !unconfirmed.is_empty() {
            self.confirm(&unconfirmed, settings, deadline, tally, results)
                .await;
        }
    }

    /// Confirms entries of answers without lists with one read of the source.
    async fn confirm(
        &self,
        unconfirmed: &[(&Accepted, &AddAnswer, usize)],
        settings: &RequestSettings,
        deadline: &Deadline,
        tally: &CallTally,
        results: &mut [ItemResult<'_>],
    ) {
        let listed = deadline
            .run(self.client.entries(&settings.source, tally))
            .await
            .unwrap_or_else(|_elapsed| {
                Err(CallError::Unexpected(
                    "the check ran out of time (REQUEST_TIMEOUT_SECS)".into(),
                ))
            });
        match listed {
            Ok(names) => {
                let present: HashSet<Cow<'_, str>> =
                    names.iter().map(|n| normalise_echo(n.as_str())).collect();
                for (item, answer, sent) in unconfirmed {
                    let verdict = if present.contains(item.wire_value.as_str()) {
                        confirmed_verdict(answer, *sent)
                    } else {
                        Verdict::new(
                            Reason::Rejected,
                            format!(
                                "Darktrace said SUCCESS but does not list it under source {}",
                                settings.source
                            ),
                        )
                    };
                    results[item.index].settle(verdict);
                }
            }
            Err(error) => {
                for (item, _, _) in unconfirmed {
                    results[item.index].settle(Verdict::new(
                        Reason::Accepted,
                        format!(
                            "Darktrace said SUCCESS without per-entry lists, and the check failed: {error}"
                        ),
                    ));
                }
            }
        }
    }

    /// Splits accepted items into calls: one group per [`CallShape`] (the hostname flag,
    /// the strength and the expiry cover a whole call), each in the batch's order, then chunks of
    /// `batch_size`.
    fn plan<'x>(
        &self,
        accepted: &'x [Accepted],
        settings: &RequestSettings,
    ) -> Vec<(CallShape, Vec<&'x Accepted>)> {
        let mut groups: BTreeMap<CallShape, Vec<&Accepted>> = BTreeMap::new();
        for item in accepted {
            groups
                .entry(self.shape_of(item, settings))
                .or_default()
                .push(item);
        }
        groups
            .into_iter()
            .flat_map(|(shape, group)| {
                group
                    .chunks(self.batch_size)
                    .map(|chunk| (shape.clone(), chunk.to_vec()))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// What the add call carrying `item` sets besides its value.
    pub(super) fn shape_of(&self, item: &Accepted, settings: &RequestSettings) -> CallShape {
        CallShape {
            hostname: self.is_hostname(item.kind),
            strength: settings.strength.and_then(|s| s.of(item.score)),
            expiry: item_expiry(settings.expiry.as_deref(), item),
        }
    }

    fn is_hostname(&self, kind: IndicatorType) -> bool {
        self.fqdn_as_hostname && kind == IndicatorType::Fqdn
    }
}
