//! What Darktrace's answer to an add call says of each entry: `addedList` and `updatedList`
//! matched to the entries sent, or, from an older appliance without lists, its counts and a
//! read of the source.

use std::borrow::Cow;
use std::collections::HashSet;

use crate::darktrace::wire::AddAnswer;
use crate::outcome::{ItemResult, Reason, Verdict};
use crate::screen::Accepted;

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
pub(super) fn confirmed_verdict(answer: &AddAnswer, sent: usize) -> Verdict {
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
    use crate::indicator::IndicatorType;

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
                wire_value: crate::screen::WireValue::unchecked(value),
                score: None,
                expires: None,
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
