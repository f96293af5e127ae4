//! Which indicators go to Darktrace, and why the others don't.
//!
//! Judgement runs in a fixed order: shape of the item (an object with a non-blank string
//! `value`), type, status, value syntax, protection, duplicate. The first rule that refuses
//! an item gives its result, so the answer names the most basic thing wrong with it.

use std::borrow::Cow;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::net::IpAddr;

use crate::config::ScreenConfig;
use crate::indicator::{Indicator, IndicatorType};
use crate::outcome::{ItemResult, Reason, Verdict, bounded, bounded_id, deadline_verdict};
use crate::protect::Protection;
use crate::threatq::{Item, ItemSink, Named, RawValue};

/// An item that passed every rule: what to send, and for which result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub index: usize,
    pub kind: IndicatorType,
    /// The exact text Darktrace receives.
    pub wire_value: String,
}

/// A batch after screening: one result per item, and the items still to send.
///
/// Items in `accepted` hold the pending verdict in `results` (not yet confirmed, or the dry
/// run's) until Darktrace answers for them.
#[derive(Debug)]
pub struct Screened<'a> {
    pub results: Vec<ItemResult<'a>>,
    pub accepted: Vec<Accepted>,
}

/// Screening rules built once from the settings.
#[derive(Debug, Clone)]
pub struct Screener {
    export_types: Vec<IndicatorType>,
    excluded_statuses: Vec<String>,
    protection: Protection,
    /// Off only in the removal rules: taking an entry out can never block anything.
    apply_protection: bool,
}

impl Screener {
    /// `darktrace_host` is never exported: an entry for it could cut the service off.
    pub fn new(config: &ScreenConfig, darktrace_host: Option<&str>) -> Self {
        Screener {
            export_types: config.export_types.clone(),
            excluded_statuses: config
                .excluded_statuses
                .iter()
                .map(|s| status_key(s))
                .filter(|s| !s.is_empty())
                .collect(),
            protection: Protection::new(config, darktrace_host),
            apply_protection: true,
        }
    }

    /// The rules for taking entries out of Darktrace: any type the service can parse (also
    /// one since dropped from `EXPORT_TYPES`), any status (a whitelisted indicator is exactly
    /// what should go), no protection. Shape, value syntax and duplicates still count, so
    /// what is removed is always a well-formed name or address.
    pub fn for_removal(&self) -> Screener {
        Screener {
            export_types: IndicatorType::ALL.to_vec(),
            excluded_statuses: Vec::new(),
            protection: self.protection.clone(),
            apply_protection: false,
        }
    }

    /// Status names match trimmed and case-insensitively, custom non-ASCII names included.
    pub fn is_excluded_status(&self, status: &str) -> bool {
        let trimmed = status.trim();
        if trimmed.is_ascii() {
            // The common case, compared without a lowercase copy per item.
            return self
                .excluded_statuses
                .iter()
                .any(|s| s.eq_ignore_ascii_case(trimmed));
        }
        let status = status_key(trimmed);
        self.excluded_statuses.contains(&status)
    }

    /// Judges every item. `pending` is the verdict placed on accepted items until they are sent.
    pub fn screen<'a>(&self, items: Vec<Item<'a>>, pending: &Verdict) -> Screened<'a> {
        let mut screening = self.start();
        screening.results.reserve_exact(items.len());
        for item in items {
            screening.take(item);
        }
        screening.finish(pending)
    }

    /// Starts judging a batch whose items arrive one at a time (see [`ItemSink`]).
    pub fn start<'a>(&self) -> Screening<'_, 'a> {
        Screening {
            screener: self,
            results: Vec::new(),
            accepted: Vec::new(),
            first_seen: HashMap::new(),
            duplicates: Vec::new(),
            revoked: HashMap::new(),
        }
    }

    /// Value shape, type, status, value syntax, protection: the rules that need only the item
    /// itself. A missing or non-string value is a malformed item whatever its type, so it is
    /// reported before the type is looked at.
    pub fn judge(
        &self,
        kind: &Named<'_>,
        status: &Named<'_>,
        value: &RawValue<'_>,
    ) -> Result<Indicator, Verdict> {
        let raw = match value {
            RawValue::Text(text) if !text.trim().is_empty() => text,
            RawValue::Text(text) if text.is_empty() => {
                return Err(Verdict::new(Reason::MissingValue, "value is empty"));
            }
            RawValue::Text(_) => {
                return Err(Verdict::new(
                    Reason::MissingValue,
                    "value is blank (only whitespace)",
                ));
            }
            RawValue::NotAString => {
                return Err(Verdict::new(Reason::MissingValue, "value is not a string"));
            }
            RawValue::Missing => {
                return Err(Verdict::new(Reason::MissingValue, "item has no value"));
            }
        };
        let kind = self.judge_type(kind)?;
        self.judge_status(status)?;
        let indicator = kind.parse(raw).map_err(|e| {
            let reason = match e.kind {
                IndicatorType::Fqdn => Reason::InvalidFqdn,
                IndicatorType::Ipv4 => Reason::InvalidIpv4,
                IndicatorType::Ipv6 => Reason::InvalidIpv6,
            };
            Verdict::new(reason, format!("{} {}", kind.threatq_name(), e.message))
        })?;
        if self.apply_protection
            && let Some(rule) = self.protection.rule_for(&indicator)
        {
            return Err(Verdict::new(
                Reason::Protected,
                format!("{} {rule}", indicator.wire_value()),
            ));
        }
        Ok(indicator)
    }

    fn judge_type(&self, kind: &Named<'_>) -> Result<IndicatorType, Verdict> {
        match kind {
            Named::Name(name) if name.trim().is_empty() => {
                Err(Verdict::new(Reason::UnknownType, "type name is empty"))
            }
            Named::Name(name) => {
                let known = IndicatorType::from_threatq_name(name)
                    .filter(|t| self.export_types.contains(t));
                known.ok_or_else(|| {
                    Verdict::new(
                        Reason::UnsupportedType,
                        format!(
                            "type {} is not exported (EXPORT_TYPES)",
                            bounded(Cow::Borrowed(name.trim()))
                        ),
                    )
                })
            }
            Named::IdOnly => Err(Verdict::new(
                Reason::UnknownType,
                "type is given only by id, which differs between ThreatQ installs; send the type name",
            )),
            Named::Absent => Err(Verdict::new(Reason::UnknownType, "item has no type")),
            Named::Malformed => Err(Verdict::new(
                Reason::UnknownType,
                "type is neither a name nor an object with a name",
            )),
        }
    }

    fn judge_status(&self, status: &Named<'_>) -> Result<(), Verdict> {
        match status {
            Named::Name(name) if self.is_excluded_status(name) => Err(Verdict::new(
                Reason::ExcludedStatus,
                format!(
                    "status {} is never exported (EXCLUDED_STATUSES)",
                    bounded(Cow::Borrowed(name.trim()))
                ),
            )),
            // A status id cannot be matched against names, so it might be Whitelisted:
            // with a system that can block traffic, not exporting is the safe side.
            Named::IdOnly if !self.excluded_statuses.is_empty() => Err(Verdict::new(
                Reason::ExcludedStatus,
                "status is given only by id, which cannot be checked against EXCLUDED_STATUSES; send the status name",
            )),
            Named::Malformed if !self.excluded_statuses.is_empty() => Err(Verdict::new(
                Reason::ExcludedStatus,
                "status is neither a name nor an object with a name, so it cannot be checked against EXCLUDED_STATUSES",
            )),
            _ => Ok(()),
        }
    }
}

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
    first_seen: HashMap<String, usize>,
    /// Items settled as duplicates: (item, the first item of its value).
    duplicates: Vec<(usize, usize)>,
    /// Values of items whose status is excluded, by the first such item: no other
    /// spelling of the same value may be exported (`Example.com` Whitelisted keeps
    /// `example.com.` Active out too).
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
            self.results.push(result);
            return;
        }
        match self
            .screener
            .judge(&indicator.kind, &indicator.status, &indicator.value)
        {
            Err(verdict) => {
                if verdict.reason == Reason::ExcludedStatus
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
                            wire_value,
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

impl<'a> Screening<'_, 'a> {
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
        let verdict = if let Some(first) = revoked.get(&item.wire_value) {
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
                    item.wire_value
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

/// The form status names are compared in: trimmed and lowercased.
fn status_key(name: &str) -> String {
    name.trim().to_lowercase()
}

/// The Darktrace host as an indicator, when it is a name or an address.
pub fn host_indicator(host: &str) -> Option<Indicator> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => Some(Indicator::Ipv4(ip)),
        Ok(IpAddr::V6(ip)) => Some(Indicator::Ipv6(ip)),
        Err(_) => crate::indicator::Fqdn::parse(host)
            .ok()
            .map(Indicator::Fqdn),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Outcome;

    fn screener() -> Screener {
        Screener::new(&ScreenConfig::default(), Some("dt.corp.example"))
    }

    fn run(json: &str) -> Vec<(Reason, Option<String>)> {
        let batch: crate::threatq::Batch = serde_json::from_str(json).unwrap();
        let pending = Verdict::new(Reason::DryRun, "would be sent");
        let screened = screener().screen(batch.items, &pending);
        assert_eq!(screened.results.len(), batch_len(json));
        screened
            .results
            .into_iter()
            .map(|r| (r.reason, r.exported_value.map(Cow::into_owned)))
            .collect()
    }

    fn batch_len(json: &str) -> usize {
        serde_json::from_str::<serde_json::Value>(json)
            .unwrap()
            .as_array()
            .unwrap()
            .len()
    }

    #[test]
    fn only_the_first_of_equal_values_is_sent_and_later_ones_name_it() {
        let batch: crate::threatq::Batch = serde_json::from_str(
            r#"[{"type": "FQDN", "value": "a.example"},
                {"type": "FQDN", "value": "A.Example."},
                {"type": "IP Address", "value": "198.51.100.7"},
                {"type": "FQDN", "value": "a.example"}]"#,
        )
        .unwrap();
        let pending = Verdict::new(Reason::DryRun, "would be sent");
        let screened = screener().screen(batch.items, &pending);
        let sent: Vec<(usize, &str)> = screened
            .accepted
            .iter()
            .map(|a| (a.index, a.wire_value.as_str()))
            .collect();
        assert_eq!(sent, vec![(0, "a.example"), (2, "198.51.100.7")]);
        for i in [1, 3] {
            assert_eq!(screened.results[i].reason, Reason::Duplicate);
            assert_eq!(screened.results[i].detail, "same value as item 0");
            assert_eq!(screened.results[i].exported_value, None);
        }
        assert_eq!(
            screened.results[0].exported_value.as_deref(),
            Some("a.example")
        );
        // Sent as written, so the answer borrows the value from the body.
        assert!(matches!(
            screened.results[0].exported_value,
            Some(Cow::Borrowed(_))
        ));
    }

    #[test]
    fn judges_in_order_and_normalises() {
        let got = run(r#"[
            {"type": "FQDN", "value": "Evil.Example."},
            {"type": "MD5", "value": "d41d8cd98f00b204e9800998ecf8427e"},
            {"type_id": 11, "value": "x.example"},
            {"type": "FQDN", "status": "Whitelisted", "value": "good.example"},
            {"type": "IP Address", "value": "10.0.0.1"},
            {"type": "IP Address", "value": "198.51.100.300"},
            {"type": "FQDN", "value": "evil.example"},
            "junk",
            {"type": "FQDN"},
            {"type": "FQDN", "value": "dt.corp.example"}
        ]"#);
        let reasons: Vec<Reason> = got.iter().map(|g| g.0).collect();
        assert_eq!(
            reasons,
            vec![
                Reason::DryRun,
                Reason::UnsupportedType,
                Reason::UnknownType,
                Reason::ExcludedStatus,
                Reason::Protected,
                Reason::InvalidIpv4,
                Reason::Duplicate,
                Reason::NotAnObject,
                Reason::MissingValue,
                Reason::Protected,
            ]
        );
        assert_eq!(got[0].1.as_deref(), Some("evil.example"));
    }

    #[test]
    fn removal_rules_take_any_status_known_type_and_protected_value_but_not_junk() {
        let batch: crate::threatq::Batch = serde_json::from_str(
            r#"[
            {"type": "FQDN", "status": "Whitelisted", "value": "good.example"},
            {"type": "IP Address", "status_id": 4, "value": "10.0.0.1"},
            {"type": "IPv6 Address", "value": "2001:db8::1"},
            {"type": "MD5", "value": "d41d8cd98f00b204e9800998ecf8427e"},
            {"type": "FQDN", "value": "bad..example"},
            {"type": "FQDN", "value": "Good.Example."}
        ]"#,
        )
        .unwrap();
        let pending = Verdict::new(Reason::Deadline, "pending");
        let screened = screener().for_removal().screen(batch.items, &pending);
        let reasons: Vec<Reason> = screened.results.iter().map(|r| r.reason).collect();
        assert_eq!(
            reasons,
            vec![
                Reason::Deadline,
                Reason::Deadline,
                Reason::Deadline,
                Reason::UnsupportedType,
                Reason::InvalidFqdn,
                Reason::Duplicate,
            ]
        );
        assert_eq!(
            screened.accepted[2].wire_value,
            "2001:0db8:0000:0000:0000:0000:0000:0001"
        );
    }

    #[test]
    fn status_by_id_only_is_not_exported_while_statuses_are_excluded() {
        let got = run(r#"[{"type": "FQDN", "status_id": 4, "value": "a.example"}]"#);
        assert_eq!(got[0].0, Reason::ExcludedStatus);
        assert_eq!(got[0].0.outcome(), Outcome::Skipped);
    }

    #[test]
    fn a_missing_value_is_reported_before_the_type() {
        let got = run(r#"[
            {"type": "MD5"},
            {"type_id": 3, "value": 7},
            {"type": "FQDN", "value": "   "},
            {"type": "MD5", "value": "d41d8cd98f00b204e9800998ecf8427e"}
        ]"#);
        let reasons: Vec<Reason> = got.iter().map(|g| g.0).collect();
        assert_eq!(
            reasons,
            vec![
                Reason::MissingValue,
                Reason::MissingValue,
                Reason::MissingValue,
                Reason::UnsupportedType,
            ]
        );
    }

    #[test]
    fn statuses_match_trimmed_and_case_insensitively_beyond_ascii() {
        let config = ScreenConfig {
            excluded_statuses: vec!["  Überprüft ".into(), "".into()],
            ..ScreenConfig::default()
        };
        let screener = Screener::new(&config, None);
        assert!(screener.is_excluded_status("ÜBERPRÜFT"));
        assert!(!screener.is_excluded_status(""));
        assert!(!screener.is_excluded_status("Whitelisted"));
    }

    #[test]
    fn a_blank_type_name_is_an_unknown_type() {
        let got = run(
            r#"[{"type": " ", "value": "a.example"}, {"type": {"name": ""}, "value": "a.example"}]"#,
        );
        assert_eq!(got[0].0, Reason::UnknownType);
        assert_eq!(got[1].0, Reason::UnknownType);
    }
}

/// Whatever a batch holds, every item gets exactly one result and the counts add up.
#[cfg(test)]
mod props {
    use super::*;
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
                prop_assert!(sent.insert(accepted.wire_value.clone()), "sent twice");
            }
        }
    }

    #[test]
    fn an_excluded_status_keeps_every_spelling_of_its_value_back() {
        for json in [
            r#"[{"type": "FQDN", "status": "Active", "value": "example.org."},
                {"type": "FQDN", "status": "Whitelisted", "value": "Example.org"}]"#,
            r#"[{"type": "FQDN", "status": "Whitelisted", "value": "Example.org"},
                {"type": "FQDN", "status": "Active", "value": "example.org."}]"#,
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
