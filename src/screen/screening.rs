//! Judging a batch as its items arrive: duplicates settled on the way, and in [`Screening::finish`]
//! the rule that reaches back (an excluded value keeps out the items before it too).

use std::borrow::Cow;
use std::collections::HashMap;
use std::collections::hash_map::Entry;

use super::{Accepted, Screened, Screener, WireValue};
use crate::indicator::IndicatorType;
use crate::outcome::{ItemResult, Reason, Verdict, bounded, bounded_id, deadline_verdict};
use crate::threatq::{Item, ItemSink, Named, RawValue};

/// A batch being judged item by item, in the order of the batch. Duplicates are settled
/// as items arrive; the rule that reaches back (an excluded value keeps out the items
/// before it too) is settled in [`Screening::finish`].
#[derive(Debug)]
pub struct Screening<'s, 'a> {
    screener: &'s Screener,
    results: Vec<ItemResult<'a>>,
    /// The first item of each wire value, in the order of the batch.
    accepted: Vec<Accepted>,
    /// The first item of each wire value. The key is a copy of the value `accepted` holds:
    /// one short allocation per accepted value, under 5% of screening (BENCHMARKS.md).
    /// Hashed with foldhash, seeded at random per table: several times cheaper than SipHash
    /// on short names.
    first_seen: HashMap<String, usize, foldhash::fast::RandomState>,
    /// Items settled as duplicates: (item, the first item of its value).
    duplicates: Vec<(usize, usize)>,
    /// Values of items whose status is excluded, by the first such item: no other
    /// spelling of the same value may be exported (`Evil.Example` Whitelisted keeps
    /// `evil.example.` Active out too).
    revoked: HashMap<String, usize>,
}

impl<'a> ItemSink<'a> for Screening<'_, 'a> {
    fn take(&mut self, item: Item<'a>) {
        let index = self.results.len();
        // Accepted items wait as not yet confirmed; a dry run's `finish` says so instead.
        let waiting = deadline_verdict();
        let mut result = ItemResult {
            index,
            id: None,
            type_name: None,
            value: None,
            outcome: waiting.reason.outcome(),
            exported_value: None,
            reason: waiting.reason,
            detail: waiting.detail,
        };
        let indicator = match item {
            Item::NotAnObject => {
                result.settle(Verdict::new(
                    Reason::NotAnObject,
                    "item is not a JSON object",
                ));
                self.results.push(result);
                return;
            }
            Item::Indicator(indicator) => indicator,
        };
        result.id = indicator.id.map(bounded_id);
        if let RawValue::Text(value) = &indicator.value {
            result.value = Some(value.clone());
        }
        if let Some(key) = indicator.duplicate_key {
            result.settle(Verdict::new(
                Reason::DuplicateKey,
                format!("key {key} is given twice in the object; send it once"),
            ));
            // One of two statuses may be an excluded one: the safe side keeps the value out
            // of the batch, as an excluded status would.
            if key.starts_with("status")
                && let Some(value) = parsed_value(&indicator.kind, &indicator.value)
            {
                self.revoked.entry(value).or_insert(index);
            }
            self.results.push(result);
            return;
        }
        match self.screener.judge(
            &indicator.kind,
            &indicator.status,
            indicator.score,
            indicator.expires,
            &indicator.value,
        ) {
            Err(verdict) => {
                if verdict.reason == Reason::ExcludedStatus
                    && self.screener.revokes(&indicator.status)
                    && let Some(value) = parsed_value(&indicator.kind, &indicator.value)
                {
                    self.revoked.entry(value).or_insert(index);
                }
                result.settle(verdict);
            }
            Ok(parsed) => {
                let kind = parsed.kind();
                let wire_value = parsed.into_wire_value();
                match self.first_seen.entry(wire_value) {
                    Entry::Occupied(seen) => {
                        let first = *seen.get();
                        result.settle(Verdict::new(
                            Reason::Duplicate,
                            format!("same value as item {first}"),
                        ));
                        self.duplicates.push((index, first));
                    }
                    Entry::Vacant(slot) => {
                        let wire_value = slot.key().clone();
                        slot.insert(index);
                        // Borrowed from the body when sent as written (the usual case).
                        result.exported_value = Some(match &result.value {
                            Some(value) if *value == wire_value => value.clone(),
                            _ => Cow::Owned(wire_value.clone()),
                        });
                        self.accepted.push(Accepted {
                            index,
                            kind,
                            wire_value: WireValue(wire_value),
                            score: indicator.score,
                            expires: self.screener.own_expiry(indicator.expires),
                        });
                    }
                }
            }
        }
        if let Named::Name(name) = indicator.kind {
            result.type_name = Some(bounded(name));
        }
        self.results.push(result);
    }
}

impl<'s, 'a> Screening<'s, 'a> {
    /// A screening of a batch expected to hold `items` items.
    pub(super) fn with_capacity(screener: &'s Screener, items: usize) -> Self {
        Screening {
            screener,
            results: Vec::with_capacity(items),
            accepted: Vec::new(),
            // Most items of a batch are first values: sized for half the items expected, a
            // large batch's table is rehashed once at most.
            first_seen: HashMap::with_capacity_and_hasher(
                items / 2,
                foldhash::fast::RandomState::default(),
            ),
            duplicates: Vec::new(),
            revoked: HashMap::new(),
        }
    }

    /// Keeps back every value an excluded item holds, and gives each accepted item
    /// `pending`, the verdict it keeps until Darktrace answers for it.
    pub fn finish(mut self, pending: &Verdict) -> Screened<'a> {
        settle_revoked(
            &mut self.accepted,
            &mut self.results,
            &self.duplicates,
            &self.revoked,
            self.screener.apply_protection && self.screener.protection.entries_match_subdomains(),
        );
        // Accepted items already hold the verdict of a real export.
        if *pending != deadline_verdict() {
            for item in &self.accepted {
                self.results[item.index].settle(pending.clone());
            }
        }
        Screened {
            results: self.results,
            accepted: self.accepted,
        }
    }
}

/// The wire value of an item kept back by its status, when its type and value are readable.
fn parsed_value(kind: &Named<'_>, value: &RawValue<'_>) -> Option<String> {
    let (Named::Name(name), RawValue::Text(raw)) = (kind, value) else {
        return None;
    };
    let kind = IndicatorType::from_threatq_name(name)?;
    kind.parse(raw).ok().map(|indicator| indicator.wire_value())
}

/// Keeps back every accepted item whose value an item with an excluded status also holds,
/// and the duplicates of such items: the exclusion says the value must never be deployed,
/// whatever else the batch says. When entries match the names under them, a parent domain of
/// an excluded name is kept back too (`protected`): an entry for `parent.example` would match
/// a whitelisted `www.parent.example`.
fn settle_revoked(
    accepted: &mut Vec<Accepted>,
    results: &mut [ItemResult<'_>],
    duplicates: &[(usize, usize)],
    revoked: &HashMap<String, usize>,
    protect_parents: bool,
) {
    if revoked.is_empty() {
        return;
    }
    // Each parent domain of an excluded name, by the excluded item. Addresses have no
    // parents that an accepted name could equal (a name's last label is never numeric).
    let mut parents: HashMap<&str, (&str, usize)> = HashMap::new();
    if protect_parents {
        for (name, first) in revoked {
            let mut rest = name.as_str();
            while let Some((_, parent)) = rest.split_once('.') {
                parents.entry(parent).or_insert((name, *first));
                rest = parent;
            }
        }
    }
    // The first item of each value kept back, with the verdict its duplicates share.
    let mut kept_back: HashMap<usize, Verdict> = HashMap::new();
    accepted.retain(|item| {
        let verdict = if let Some(first) = revoked.get(item.wire_value.as_str()) {
            let status = &results[*first].detail;
            Verdict::new(
                Reason::ExcludedStatus,
                format!("same value as item {first}, whose {status}"),
            )
        } else if let Some((child, first)) = parents.get(item.wire_value.as_str())
            && item.kind == IndicatorType::Fqdn
        {
            let status = &results[*first].detail;
            Verdict::new(
                Reason::Protected,
                format!(
                    "{} is a parent domain of {child}, item {first}, whose {status}; as a watched domain it would match it",
                    item.wire_value.as_str()
                ),
            )
        } else {
            return true;
        };
        let result = &mut results[item.index];
        result.exported_value = None;
        result.settle(verdict.clone());
        kept_back.insert(item.index, verdict);
        false
    });
    for (duplicate, first) in duplicates {
        if let Some(verdict) = kept_back.get(first) {
            results[*duplicate].settle(verdict.clone());
        }
    }
}

/// Whatever a batch holds, every item gets exactly one result and the counts add up.
#[cfg(test)]
mod props {
    use super::*;
    use crate::config::ScreenConfig;
    use crate::outcome::{Outcome, Summary};
    use proptest::prelude::*;
    use serde_json::{Value, json};

    fn name_field() -> impl Strategy<Value = Option<Value>> {
        prop_oneof![
            Just(None),
            Just(Some(Value::Null)),
            proptest::sample::select(vec![
                "FQDN",
                "fqdn ",
                "IP Address",
                "IPv6 Address",
                "MD5",
                "",
                "URL",
                "Active",
                "Whitelisted",
                " expired",
                "Review",
            ])
            .prop_map(|n| Some(json!(n))),
            proptest::sample::select(vec!["FQDN", "IP Address", "Whitelisted", "Active"])
                .prop_map(|n| Some(json!({"name": n, "id": 3}))),
            any::<u8>().prop_map(|id| Some(json!(id))),
            Just(Some(json!([1, 2]))),
        ]
    }

    fn value_field() -> impl Strategy<Value = Option<Value>> {
        prop_oneof![
            Just(None),
            Just(Some(Value::Null)),
            Just(Some(json!(42))),
            proptest::sample::select(vec![
                "evil.example",
                "Evil.Example.",
                "10.0.0.1",
                "198.51.100.7",
                "2001:db8::1",
                "co.uk",
                "a[.]example",
                " ",
                "dt.soc.example",
                "::ffff:10.0.0.1",
            ])
            .prop_map(|v| Some(json!(v))),
            any::<String>().prop_map(|v| Some(json!(v))),
        ]
    }

    fn item() -> impl Strategy<Value = Value> {
        prop_oneof![
            8 => (name_field(), name_field(), value_field()).prop_map(|(kind, status, value)| {
                let mut item = serde_json::Map::new();
                for (key, field) in [("type", kind), ("status", status), ("value", value)] {
                    if let Some(field) = field {
                        item.insert(key.into(), field);
                    }
                }
                Value::Object(item)
            }),
            1 => Just(json!("not an object")),
            1 => Just(json!(null)),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn a_batch_yields_one_result_per_item_and_a_summary_that_adds_up(
            items in proptest::collection::vec(item(), 0..40),
        ) {
            let body = Value::Array(items.clone()).to_string();
            let batch: crate::threatq::Batch = serde_json::from_str(&body).unwrap();
            let config = ScreenConfig {
                export_types: IndicatorType::ALL.to_vec(),
                ..ScreenConfig::default()
            };
            let pending = Verdict::new(Reason::DryRun, "would be sent");
            let screened = Screener::new(&config, Some("dt.soc.example")).screen(batch.items, &pending);

            prop_assert_eq!(screened.results.len(), items.len());
            for (position, result) in screened.results.iter().enumerate() {
                prop_assert_eq!(result.index, position);
                prop_assert_eq!(result.outcome, result.reason.outcome());
                prop_assert_eq!(result.exported_value.is_some(), result.reason == Reason::DryRun);
                if result.reason == Reason::Duplicate {
                    let first: usize = result.detail.rsplit(' ').next().unwrap().parse().unwrap();
                    prop_assert!(first < position);
                    prop_assert_eq!(screened.results[first].reason, Reason::DryRun);
                }
            }
            let summary = Summary::of(&screened.results);
            prop_assert_eq!(summary.received, items.len());
            prop_assert_eq!(
                summary.exported + summary.would_export + summary.skipped + summary.invalid
                    + summary.failed + summary.removed,
                summary.received
            );
            prop_assert_eq!(summary.would_export, screened.accepted.len());
            let mut sent = std::collections::HashSet::new();
            for accepted in &screened.accepted {
                let result = &screened.results[accepted.index];
                prop_assert_eq!(result.outcome, Outcome::WouldExport);
                prop_assert_eq!(result.exported_value.as_deref(), Some(accepted.wire_value.as_str()));
                prop_assert!(sent.insert(accepted.wire_value.as_str().to_owned()), "sent twice");
            }
        }
    }

    #[test]
    fn an_excluded_status_keeps_every_spelling_of_its_value_back() {
        for json in [
            r#"[{"type": "FQDN", "status": "Active", "value": "evil.example."},
                {"type": "FQDN", "status": "Whitelisted", "value": "Evil.Example"}]"#,
            r#"[{"type": "FQDN", "status": "Whitelisted", "value": "Evil.Example"},
                {"type": "FQDN", "status": "Active", "value": "evil.example."}]"#,
        ] {
            let batch: crate::threatq::Batch = serde_json::from_str(json).unwrap();
            let screened = Screener::new(&ScreenConfig::default(), None)
                .screen(batch.items, &Verdict::new(Reason::DryRun, "would be sent"));
            assert!(screened.accepted.is_empty(), "{json}");
            for result in &screened.results {
                assert_eq!(result.reason, Reason::ExcludedStatus, "{json}");
            }
            let active = screened
                .results
                .iter()
                .find(|r| r.detail.starts_with("same value"))
                .unwrap();
            assert!(active.detail.contains("Whitelisted"), "{}", active.detail);
        }
    }

    #[test]
    fn an_excluded_name_keeps_its_parent_domains_back_unless_sent_as_hostnames() {
        let batch = r#"[{"type": "FQDN", "status": "Active", "value": "parent.example"},
                        {"type": "FQDN", "status": "Whitelisted", "value": "WWW.Parent.Example."},
                        {"type": "FQDN", "status": "Active", "value": "Parent.Example"},
                        {"type": "FQDN", "status": "Active", "value": "a.www.parent.example"},
                        {"type": "FQDN", "status": "Active", "value": "other.example"}]"#;
        let pending = Verdict::new(Reason::DryRun, "would be sent");
        let screen = |config: &ScreenConfig| {
            let parsed: crate::threatq::Batch = serde_json::from_str(batch).unwrap();
            Screener::new(config, None).screen(parsed.items, &pending)
        };
        let screened = screen(&ScreenConfig::default());
        let reasons: Vec<Reason> = screened.results.iter().map(|r| r.reason).collect();
        assert_eq!(
            reasons,
            [
                Reason::Protected,
                Reason::ExcludedStatus,
                Reason::Protected,
                Reason::DryRun,
                Reason::DryRun
            ]
        );
        let detail = &screened.results[0].detail;
        assert!(
            detail.contains("parent domain of www.parent.example, item 1")
                && detail.contains("Whitelisted"),
            "{detail}"
        );
        assert_eq!(
            screened.results[2].detail, *detail,
            "its duplicate shares it"
        );
        assert_eq!(screened.results[0].exported_value, None);
        let sent: Vec<&str> = screened
            .accepted
            .iter()
            .map(|a| a.wire_value.as_str())
            .collect();
        assert_eq!(sent, ["a.www.parent.example", "other.example"]);

        let hostnames = ScreenConfig {
            fqdn_as_hostname: true,
            ..ScreenConfig::default()
        };
        let screened = screen(&hostnames);
        assert_eq!(screened.results[0].reason, Reason::DryRun);
        assert_eq!(screened.accepted.len(), 3);
    }

    #[test]
    fn an_ipv4_mapped_ipv6_address_is_sent_and_deduplicated_as_ipv4() {
        let config = ScreenConfig {
            export_types: IndicatorType::ALL.to_vec(),
            ..ScreenConfig::default()
        };
        let batch: crate::threatq::Batch = serde_json::from_str(
            r#"[{"type": "IPv6 Address", "value": "::ffff:198.51.100.7"},
                {"type": "IP Address", "value": "198.51.100.7"},
                {"type": "IPv6 Address", "value": "::FFFF:c633:6407"}]"#,
        )
        .unwrap();
        let pending = Verdict::new(Reason::DryRun, "would be sent");
        let screened = Screener::new(&config, None).screen(batch.items, &pending);
        assert_eq!(
            screened.results[0].exported_value.as_deref(),
            Some("198.51.100.7")
        );
        assert_eq!(screened.accepted[0].kind, IndicatorType::Ipv4);
        for i in [1, 2] {
            assert_eq!(screened.results[i].reason, Reason::Duplicate, "{i}");
            assert_eq!(screened.results[i].detail, "same value as item 0");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ScreenConfig;

    #[test]
    fn a_status_given_twice_keeps_its_value_out_of_the_batch() {
        let batch: crate::threatq::Batch = serde_json::from_str(
            r#"[{"type": "FQDN", "status": "Whitelisted", "status": "Active", "value": "x.example"},
                {"type": "FQDN", "status": "Active", "value": "X.Example."},
                {"type": "FQDN", "value": "y.example", "value": "z.example"},
                {"type": "FQDN", "value": "z.example"}]"#,
        )
        .unwrap();
        let pending = Verdict::new(Reason::DryRun, "would be sent");
        let screened = Screener::new(&ScreenConfig::default(), None).screen(batch.items, &pending);
        let reasons: Vec<Reason> = screened.results.iter().map(|r| r.reason).collect();
        assert_eq!(
            reasons,
            [
                Reason::DuplicateKey,
                Reason::ExcludedStatus,
                Reason::DuplicateKey,
                Reason::DryRun
            ]
        );
        assert!(
            screened.results[1].detail.contains("item 0")
                && screened.results[1].detail.contains("twice"),
            "{}",
            screened.results[1].detail
        );
    }
}
