//! Which indicators go to Darktrace, and why the others don't.
//!
//! Judgement runs in a fixed order: shape of the item (an object with a non-blank string
//! `value`), type, status, score, ThreatQ expiry, value syntax, protection, duplicate. The first rule that refuses
//! an item gives its result, so the answer names the most basic thing wrong with it.

pub mod popular;
pub mod protect;
mod screening;

pub use screening::Screening;

use std::borrow::Cow;

use chrono::{NaiveDateTime, Utc};

use crate::config::ScreenConfig;
use crate::indicator::{Indicator, IndicatorType};
use crate::outcome::{ItemResult, Reason, Verdict, bounded};
use crate::threatq::{Item, ItemSink, Named, RawValue, Score};
use protect::Protection;

/// A value that passed every rule, in the exact form Darktrace receives. Only screening makes
/// one (the field is private to this module and its own), and the Darktrace client adds only
/// these: an unchecked value cannot reach Darktrace.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WireValue(String);

impl WireValue {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A value taken as checked, for unit tests of the code downstream of screening.
    #[cfg(test)]
    pub(crate) fn unchecked(value: &str) -> WireValue {
        WireValue(value.to_owned())
    }
}

/// An item that passed every rule: what to send, and for which result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub index: usize,
    pub kind: IndicatorType,
    /// The exact text Darktrace receives.
    pub wire_value: WireValue,
    /// ThreatQ's score, for a strength taken from it.
    pub score: Option<Score>,
    /// The item's own ThreatQ expiry, UTC, when `EXPIRY_FROM_THREATQ` is on.
    pub expires: Option<NaiveDateTime>,
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
    /// If set, the only statuses exported (`EXPORT_STATUSES`), in [`status_key`] form.
    export_statuses: Option<Vec<String>>,
    /// Items scored lower, or not at all, are kept back (`MIN_SCORE`).
    min_score: Option<Score>,
    /// An item's own ThreatQ expiry counts (`EXPIRY_FROM_THREATQ`).
    expiry_from_threatq: bool,
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
            export_statuses: config
                .export_statuses
                .as_ref()
                .map(|list| list.iter().map(|s| status_key(s)).collect()),
            min_score: config.min_score.map(Score::points),
            expiry_from_threatq: config.expiry_from_threatq,
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
            export_statuses: None,
            min_score: None,
            expiry_from_threatq: false,
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

    /// Judges one value as an item of ThreatQ type `type_name` with no status and no score
    /// (so kept back while `MIN_SCORE` is set): what screening would send for it, or the
    /// verdict that keeps it back.
    pub fn check_value(&self, type_name: &str, raw: &str) -> Result<WireValue, Verdict> {
        self.judge(
            &Named::Name(type_name.into()),
            &Named::Absent,
            None,
            None,
            &RawValue::Text(raw.into()),
        )
        .map(|indicator| WireValue(indicator.into_wire_value()))
    }

    /// Judges every item. `pending` is the verdict placed on accepted items until they are sent.
    pub fn screen<'a>(&self, items: Vec<Item<'a>>, pending: &Verdict) -> Screened<'a> {
        let mut screening = Screening::with_capacity(self, items.len());
        for item in items {
            screening.take(item);
        }
        screening.finish(pending)
    }

    /// Starts judging a batch whose items arrive one at a time (see [`ItemSink`]).
    pub fn start<'a>(&self) -> Screening<'_, 'a> {
        Screening::with_capacity(self, 0)
    }

    /// Value shape, type, status, score, value syntax, protection: the rules that need only
    /// the item itself. A missing or non-string value is a malformed item whatever its type, so it is
    /// reported before the type is looked at.
    pub fn judge(
        &self,
        kind: &Named<'_>,
        status: &Named<'_>,
        score: Option<Score>,
        expires: Option<NaiveDateTime>,
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
        self.judge_score(score)?;
        self.judge_expiry(expires)?;
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

    /// The expiry an accepted item carries: its own ThreatQ expiry, when that counts.
    pub fn own_expiry(&self, expires: Option<NaiveDateTime>) -> Option<NaiveDateTime> {
        expires.filter(|_| self.expiry_from_threatq)
    }

    fn judge_expiry(&self, expires: Option<NaiveDateTime>) -> Result<(), Verdict> {
        match self.own_expiry(expires) {
            Some(at) if at <= Utc::now().naive_utc() => Err(Verdict::new(
                Reason::Expired,
                format!(
                    "expired in ThreatQ at {} UTC (EXPIRY_FROM_THREATQ)",
                    at.format("%Y-%m-%d %H:%M:%S")
                ),
            )),
            _ => Ok(()),
        }
    }

    fn judge_score(&self, score: Option<Score>) -> Result<(), Verdict> {
        let Some(min) = self.min_score else {
            return Ok(());
        };
        match score {
            Some(score) if score >= min => Ok(()),
            Some(score) => Err(Verdict::new(
                Reason::LowScore,
                format!("score {score} is below {min} (MIN_SCORE)"),
            )),
            None => Err(Verdict::new(
                Reason::LowScore,
                format!("item has no score, and MIN_SCORE is {min}"),
            )),
        }
    }

    fn judge_status(&self, status: &Named<'_>) -> Result<(), Verdict> {
        match self.excluded(status) {
            Some(verdict) => Err(verdict),
            None => self.judge_allowed_status(status),
        }
    }

    /// Whether `status` is kept out by `EXCLUDED_STATUSES`: such an item keeps every other
    /// spelling of its value, and its parent domains, out too. A status merely missing from
    /// `EXPORT_STATUSES` does not: it says nothing good about the value.
    pub fn revokes(&self, status: &Named<'_>) -> bool {
        self.excluded(status).is_some()
    }

    /// With `EXPORT_STATUSES` set, only a status named in it passes; no status, or one
    /// given only by id, cannot be shown to be in it.
    fn judge_allowed_status(&self, status: &Named<'_>) -> Result<(), Verdict> {
        let Some(allowed) = &self.export_statuses else {
            return Ok(());
        };
        let why: Cow<'static, str> = match status {
            Named::Name(name) if allowed.contains(&status_key(name)) => return Ok(()),
            Named::Name(name) => format!(
                "status {} is not one of EXPORT_STATUSES",
                bounded(Cow::Borrowed(name.trim()))
            )
            .into(),
            Named::Absent => "item has no status, and only EXPORT_STATUSES are exported".into(),
            Named::IdOnly => {
                "status is given only by id, which cannot be checked against EXPORT_STATUSES; send the status name".into()
            }
            Named::Malformed => {
                "status is neither a name nor an object with a name, so it cannot be checked against EXPORT_STATUSES".into()
            }
        };
        Err(Verdict::new(Reason::ExcludedStatus, why))
    }

    /// The verdict of `EXCLUDED_STATUSES` on `status`, if it keeps the item out.
    fn excluded(&self, status: &Named<'_>) -> Option<Verdict> {
        match status {
            Named::Name(name) if self.is_excluded_status(name) => Some(Verdict::new(
                Reason::ExcludedStatus,
                format!(
                    "status {} is never exported (EXCLUDED_STATUSES)",
                    bounded(Cow::Borrowed(name.trim()))
                ),
            )),
            // A status id cannot be matched against names, so it might be Whitelisted:
            // with a system that can block traffic, not exporting is the safe side.
            Named::IdOnly if !self.excluded_statuses.is_empty() => Some(Verdict::new(
                Reason::ExcludedStatus,
                "status is given only by id, which cannot be checked against EXCLUDED_STATUSES; send the status name",
            )),
            Named::Malformed if !self.excluded_statuses.is_empty() => Some(Verdict::new(
                Reason::ExcludedStatus,
                "status is neither a name nor an object with a name, so it cannot be checked against EXCLUDED_STATUSES",
            )),
            _ => None,
        }
    }
}

/// The form status names are compared in: trimmed and lowercased.
fn status_key(name: &str) -> String {
    name.trim().to_lowercase()
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
            screened.accepted[2].wire_value.as_str(),
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
