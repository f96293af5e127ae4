//! The export pipeline: screen → plan calls → send → reconcile → one result per item.
//!
//! Every item gets its result from screening; items that go to Darktrace start as
//! `failed`/`deadline` and only Darktrace's answer moves them, so a request cut short by its
//! deadline still accounts for every item.

use std::borrow::Cow;
use std::collections::HashSet;

use crate::deadline::Deadline;
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use futures_util::future::join_all;

use crate::darktrace::wire::{AddAnswer, AddCall};
use crate::darktrace::{CallError, CallTally, DarktraceClient};
use crate::indicator::IndicatorType;
use crate::outcome::{ItemResult, Reason, Report, Summary, Verdict, deadline_verdict};
use crate::screen::{Accepted, Screener, Screening};
use crate::threatq::{Item, ItemSink};

/// The settings of one request: the configured defaults with its overrides applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestSettings {
    pub source: String,
    /// UTC `YYYY-MM-DDTHH:MM:SS`, or `None` for no expiry.
    pub expiry: Option<String>,
    pub description: Option<String>,
    pub dry_run: bool,
    /// `/sync` only: carry out a plan over `SYNC_MAX_REMOVALS`.
    pub force: bool,
}

/// `now + days` in Darktrace's expiry form; `0` days means no expiry.
pub fn expiry_after(days: u32, now: DateTime<Utc>) -> Option<String> {
    (days > 0).then(|| {
        (now + ChronoDuration::days(i64::from(days)))
            .format("%Y-%m-%dT%H:%M:%S")
            .to_string()
    })
}

/// Runs exports against one Darktrace; shared by every request.
#[derive(Debug, Clone)]
pub struct Exporter {
    pub client: DarktraceClient,
    pub screener: Screener,
    pub batch_size: usize,
    pub fqdn_as_hostname: bool,
}

impl Exporter {
    /// Exports a batch and answers for each of its items.
    pub async fn export<'a>(
        &self,
        items: Vec<Item<'a>>,
        settings: &RequestSettings,
        deadline: &Deadline,
        tally: &CallTally,
    ) -> Report<'a> {
        let mut screening = self.screener.start();
        for item in items {
            screening.take(item);
        }
        self.export_screened(screening, settings, deadline, tally)
            .await
    }

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
        let pending = if settings.dry_run {
            Verdict::new(Reason::DryRun, "valid; would be sent to Darktrace")
        } else {
            deadline_verdict()
        };
        let screened = screening.finish(&pending);
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
        let chunks = self.plan(accepted);
        let calls = chunks.iter().map(|chunk| AddCall {
            entries: chunk.iter().map(|a| a.wire_value.as_str()).collect(),
            source: &settings.source,
            expiry: settings.expiry.as_deref(),
            description: settings.description.as_deref(),
            hostname: chunk.first().is_some_and(|a| self.is_hostname(a.kind)),
        });
        let answers = join_all(
            calls.map(|call| async move { deadline.run(self.client.add(&call, tally)).await }),
        )
        .await;

        let mut unconfirmed: Vec<(&Accepted, &AddAnswer, usize)> = Vec::new();
        for (chunk, answer) in chunks.iter().zip(&answers) {
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
                    names.iter().map(|n| normalise_echo(n)).collect();
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

    /// Splits accepted items into calls: hostnames apart (the flag covers a whole call),
    /// then chunks of `batch_size`.
    fn plan<'x>(&self, accepted: &'x [Accepted]) -> Vec<Vec<&'x Accepted>> {
        let (hostnames, others): (Vec<&Accepted>, Vec<&Accepted>) =
            accepted.iter().partition(|a| self.is_hostname(a.kind));
        [others, hostnames]
            .into_iter()
            .flat_map(|group| {
                group
                    .chunks(self.batch_size)
                    .map(<[&Accepted]>::to_vec)
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    fn is_hostname(&self, kind: IndicatorType) -> bool {
        self.fqdn_as_hostname && kind == IndicatorType::Fqdn
    }
}

/// Builds the answer from settled results.
pub fn report<'a>(settings: &RequestSettings, results: Vec<ItemResult<'a>>) -> Report<'a> {
    Report {
        source: settings.source.clone(),
        expiry: settings.expiry.clone(),
        dry_run: settings.dry_run,
        summary: Summary::of(&results),
        results,
        removals: None,
    }
}

/// Darktrace may echo names in another case, mark hostname entries with `*`, or list an
/// IPv6 address compressed; compare in the form we send. Names echoed in that form already
/// (the usual case) are borrowed, not copied.
pub(crate) fn normalise_echo(name: &str) -> Cow<'_, str> {
    let name = name.trim().trim_start_matches('*').trim_start_matches('.');
    let name = name.trim_end_matches('.');
    if name.contains(':')
        && let Ok(ip) = name.parse::<std::net::Ipv6Addr>()
    {
        return Cow::Owned(crate::indicator::exploded_ipv6(&ip));
    }
    if name.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(name.to_ascii_lowercase())
    } else {
        Cow::Borrowed(name)
    }
}

/// Settles each entry of an add call by the list of Darktrace's answer that names it.
pub fn reconcile_lists<'l>(
    chunk: &[&Accepted],
    added: &'l Option<Vec<String>>,
    updated: &'l Option<Vec<String>>,
    results: &mut [ItemResult<'_>],
) {
    // The usual answer names every entry in one list, in the order sent: the whole chunk
    // then shares that list's verdict, found without building sets (a fifth to a quarter
    // of the cost of matching by sets; see BENCHMARKS.md).
    let whole_chunk = if is_empty(updated) && names_chunk_in_order(added, chunk) {
        Some(added_verdict())
    } else if is_empty(added) && names_chunk_in_order(updated, chunk) {
        Some(updated_verdict())
    } else {
        None
    };
    if let Some(verdict) = whole_chunk {
        for item in chunk {
            results[item.index].settle(verdict.clone());
        }
        return;
    }
    reconcile_by_sets(chunk, added, updated, results);
}

/// Settles each entry by whether either list names it, in any order and spelling.
fn reconcile_by_sets<'l>(
    chunk: &[&Accepted],
    added: &'l Option<Vec<String>>,
    updated: &'l Option<Vec<String>>,
    results: &mut [ItemResult<'_>],
) {
    let set = |list: &'l Option<Vec<String>>| -> HashSet<Cow<'l, str>> {
        list.iter().flatten().map(|n| normalise_echo(n)).collect()
    };
    let (added, updated) = (set(added), set(updated));
    for item in chunk {
        let verdict = if updated.contains(item.wire_value.as_str()) {
            updated_verdict()
        } else if added.contains(item.wire_value.as_str()) {
            added_verdict()
        } else {
            Verdict::new(
                Reason::Rejected,
                "Darktrace said SUCCESS but left it out of addedList and updatedList",
            )
        };
        results[item.index].settle(verdict);
    }
}

fn is_empty(list: &Option<Vec<String>>) -> bool {
    list.as_ref().is_none_or(Vec::is_empty)
}

/// True when `list` names exactly the entries of `chunk`, in the order they were sent.
fn names_chunk_in_order(list: &Option<Vec<String>>, chunk: &[&Accepted]) -> bool {
    list.as_ref().is_some_and(|names| {
        names.len() == chunk.len()
            && names
                .iter()
                .zip(chunk)
                .all(|(name, item)| normalise_echo(name) == item.wire_value.as_str())
    })
}

fn added_verdict() -> Verdict {
    Verdict::new(Reason::Added, "new entry in Darktrace")
}

fn updated_verdict() -> Verdict {
    Verdict::new(Reason::Updated, "already in Darktrace; refreshed")
}

/// An entry confirmed by reading the source; the counts say whether it was new when they can.
fn confirmed_verdict(answer: &AddAnswer, sent: usize) -> Verdict {
    match answer.updated {
        Some(0) => Verdict::new(
            Reason::Added,
            "new entry in Darktrace (confirmed by reading the source)",
        ),
        Some(n) if n as usize >= sent => Verdict::new(
            Reason::Updated,
            "already in Darktrace; refreshed (confirmed by reading the source)",
        ),
        _ => Verdict::new(
            Reason::Added,
            "in Darktrace (confirmed by reading the source; the appliance did not say whether it was new)",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn expiry_is_now_plus_days_in_darktrace_form() {
        let now = Utc.with_ymd_and_hms(2026, 11, 27, 17, 52, 2).unwrap();
        assert_eq!(
            expiry_after(30, now).as_deref(),
            Some("2026-12-27T17:52:02")
        );
        assert_eq!(expiry_after(0, now), None);
    }

    #[test]
    fn confirmation_uses_counts_when_they_decide() {
        let answer = |updated| AddAnswer {
            response: Some("SUCCESS".into()),
            updated,
            ..AddAnswer::default()
        };
        assert_eq!(confirmed_verdict(&answer(Some(0)), 3).reason, Reason::Added);
        assert_eq!(
            confirmed_verdict(&answer(Some(3)), 3).reason,
            Reason::Updated
        );
        assert_eq!(confirmed_verdict(&answer(None), 3).reason, Reason::Added);
    }

    #[test]
    fn names_chunk_in_order_or_not_settle_each_entry_by_the_list_that_names_it() {
        let accepted: Vec<Accepted> = ["a.example", "b.example", "c.example"]
            .iter()
            .enumerate()
            .map(|(index, value)| Accepted {
                index,
                kind: IndicatorType::Fqdn,
                wire_value: (*value).to_owned(),
            })
            .collect();
        let chunk: Vec<&Accepted> = accepted.iter().collect();
        let reasons = |added: &[&str], updated: &[&str]| {
            let list = |names: &[&str]| Some(names.iter().map(|n| n.to_string()).collect());
            let mut results: Vec<ItemResult> = (0..3)
                .map(|index| ItemResult {
                    index,
                    id: None,
                    type_name: None,
                    value: None,
                    outcome: Reason::Deadline.outcome(),
                    exported_value: None,
                    reason: Reason::Deadline,
                    detail: "".into(),
                })
                .collect();
            reconcile_lists(&chunk, &list(added), &list(updated), &mut results);
            results.iter().map(|r| r.reason).collect::<Vec<_>>()
        };
        let all = ["a.example", "b.example", "c.example"];
        use Reason::{Added, Rejected, Updated};
        assert_eq!(reasons(&all, &[]), vec![Added; 3]);
        assert_eq!(reasons(&[], &all), vec![Updated; 3]);
        assert_eq!(
            reasons(&["C.Example.", "a.example", "b.example"], &[]),
            vec![Added; 3]
        );
        assert_eq!(
            reasons(&["a.example", "c.example"], &["b.example"]),
            vec![Added, Updated, Added]
        );
        assert_eq!(
            reasons(&["a.example", "b.example", "x.example"], &[]),
            vec![Added, Added, Rejected]
        );
        assert_eq!(reasons(&all, &["b.example"]), vec![Added, Updated, Added]);
    }

    #[test]
    fn echoed_names_compare_in_the_form_sent() {
        assert_eq!(normalise_echo("Evil.Example."), "evil.example");
        assert_eq!(normalise_echo("*host.example"), "host.example");
        assert_eq!(normalise_echo("*.host.example"), "host.example");
        assert_eq!(
            normalise_echo("2001:db8::1"),
            "2001:0db8:0000:0000:0000:0000:0000:0001"
        );
        assert!(matches!(normalise_echo("a.example"), Cow::Borrowed(_)));
    }
}
