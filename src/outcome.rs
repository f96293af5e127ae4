//! What became of each indicator: the outcome vocabulary of SPEC §3.1 and the answer shape.
//!
//! A [`Reason`] always belongs to exactly one [`Outcome`], so a result can never pair, say,
//! `exported` with `protected`.

use std::borrow::Cow;

use serde::Serialize;

use crate::threatq::ItemId;

/// The fate of one indicator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Exported,
    WouldExport,
    Skipped,
    Invalid,
    Failed,
    Removed,
    /// Dry run of `/remove` or `/sync`: Darktrace holds it under the source and it would go.
    WouldRemove,
}

impl Outcome {
    pub const ALL: [Outcome; 7] = [
        Outcome::Exported,
        Outcome::WouldExport,
        Outcome::Skipped,
        Outcome::Invalid,
        Outcome::Failed,
        Outcome::Removed,
        Outcome::WouldRemove,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Exported => "exported",
            Outcome::WouldExport => "would_export",
            Outcome::Skipped => "skipped",
            Outcome::Invalid => "invalid",
            Outcome::Failed => "failed",
            Outcome::Removed => "removed",
            Outcome::WouldRemove => "would_remove",
        }
    }
}

/// Declares [`Reason`] from one table: each reason once, with its name on the wire and the
/// one outcome it belongs to, so the enum, [`Reason::ALL`] and the pairing cannot drift.
macro_rules! reasons {
    ($($reason:ident => ($name:literal, $outcome:ident),)+) => {
        /// Why an indicator has its outcome. Machine-readable; the `detail` says it for people.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
        #[serde(rename_all = "snake_case")]
        pub enum Reason {
            $($reason,)+
        }

        impl Reason {
            /// Every reason, in the order of SPEC §3.1 (openapi.yaml lists them likewise).
            pub const ALL: &[Reason] = &[$(Reason::$reason,)+];

            /// The one outcome this reason belongs to.
            pub fn outcome(self) -> Outcome {
                match self {
                    $(Reason::$reason => Outcome::$outcome,)+
                }
            }

            pub fn as_str(self) -> &'static str {
                match self {
                    $(Reason::$reason => $name,)+
                }
            }
        }
    };
}

reasons! {
    Added => ("added", Exported),
    Updated => ("updated", Exported),
    Accepted => ("accepted", Exported),
    DryRun => ("dry_run", WouldExport),
    UnsupportedType => ("unsupported_type", Skipped),
    UnknownType => ("unknown_type", Skipped),
    ExcludedStatus => ("excluded_status", Skipped),
    LowScore => ("low_score", Skipped),
    Expired => ("expired", Skipped),
    Protected => ("protected", Skipped),
    Duplicate => ("duplicate", Skipped),
    MissingValue => ("missing_value", Invalid),
    NotAnObject => ("not_an_object", Invalid),
    DuplicateKey => ("duplicate_key", Invalid),
    InvalidFqdn => ("invalid_fqdn", Invalid),
    InvalidIpv4 => ("invalid_ipv4", Invalid),
    InvalidIpv6 => ("invalid_ipv6", Invalid),
    Rejected => ("rejected", Failed),
    DarktraceAuth => ("darktrace_auth", Failed),
    DarktraceClock => ("darktrace_clock", Failed),
    DarktracePermission => ("darktrace_permission", Failed),
    DarktraceTls => ("darktrace_tls", Failed),
    DarktraceUnavailable => ("darktrace_unavailable", Failed),
    DarktraceTimeout => ("darktrace_timeout", Failed),
    DarktraceError => ("darktrace_error", Failed),
    Deadline => ("deadline", Failed),
    Removed => ("removed", Removed),
    NotPresent => ("not_present", Removed),
    DryRunRemoval => ("dry_run_removal", WouldRemove),
}

/// A reason with the sentence that explains it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub reason: Reason,
    pub detail: Cow<'static, str>,
}

impl Verdict {
    pub fn new(reason: Reason, detail: impl Into<Cow<'static, str>>) -> Self {
        Verdict {
            reason,
            detail: detail.into(),
        }
    }
}

/// The verdict of items still waiting for Darktrace when the request's time runs out; also
/// the verdict an accepted item holds from screening on, until Darktrace answers for it (in
/// a dry run, until screening ends).
pub fn deadline_verdict() -> Verdict {
    Verdict::new(
        Reason::Deadline,
        "not confirmed by Darktrace before the request's deadline (REQUEST_TIMEOUT_SECS)",
    )
}

/// Most characters of a caller's text (an item's `type` or `id`) echoed in an answer.
pub const ECHO_CHARS: usize = 256;

/// `text` as echoed in an answer: whole up to [`ECHO_CHARS`] characters, else its first
/// [`ECHO_CHARS`] and a marker with its full length. An answer then grows with the number
/// of items, never with the length of what a caller put in them.
pub fn bounded(text: Cow<'_, str>) -> Cow<'_, str> {
    match text.char_indices().nth(ECHO_CHARS) {
        None => text,
        Some((cut_at, _)) => Cow::Owned(format!(
            "{}…(cut, {} characters)",
            &text[..cut_at],
            text.chars().count()
        )),
    }
}

/// [`bounded`] for an id: a text id is cut like any text, a number is short.
pub fn bounded_id(id: ItemId) -> ItemId {
    match id {
        ItemId::Text(text) => ItemId::Text(bounded(Cow::Owned(text)).into_owned()),
        number => number,
    }
}

/// One entry of `results`: what became of the item at `index`.
#[derive(Debug, Clone, Serialize)]
pub struct ItemResult<'a> {
    pub index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<ItemId>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_name: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<Cow<'a, str>>,
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exported_value: Option<Cow<'a, str>>,
    pub reason: Reason,
    pub detail: Cow<'static, str>,
}

impl ItemResult<'_> {
    /// Replaces the verdict, keeping the outcome in step with the reason.
    pub fn settle(&mut self, verdict: Verdict) {
        self.outcome = verdict.reason.outcome();
        self.reason = verdict.reason;
        self.detail = verdict.detail;
    }
}

/// Counts per outcome; `received` is always their sum.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub received: usize,
    pub exported: usize,
    pub would_export: usize,
    pub skipped: usize,
    pub invalid: usize,
    pub failed: usize,
    pub removed: usize,
    /// Only in dry runs of `/remove` and `/sync`; left out when zero, so the answers of
    /// `/export` keep their documented shape.
    #[serde(skip_serializing_if = "is_zero")]
    pub would_remove: usize,
    /// Of `removed`, the entries that were not in Darktrace to begin with (`not_present`),
    /// so a reader tells what was taken out from what was not there.
    #[serde(skip_serializing_if = "is_zero")]
    pub not_present: usize,
    /// `/sync` only: the entries under `removals`. Their outcomes are counted above too, so
    /// the outcome counts add up to `received + removals`.
    #[serde(skip_serializing_if = "is_zero")]
    pub removals: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl Summary {
    pub fn of<'r, 'a: 'r>(results: impl IntoIterator<Item = &'r ItemResult<'a>>) -> Summary {
        let mut summary = Summary::default();
        for result in results {
            summary.received += 1;
            summary.count(result.reason);
        }
        summary
    }

    /// Adds the entries a sync removed (or plans to) that were not in the request.
    pub fn count_removals(&mut self, removals: &[Removal]) {
        for removal in removals {
            self.removals += 1;
            self.count(removal.reason);
        }
    }

    fn count(&mut self, reason: Reason) {
        *self.count_mut(reason.outcome()) += 1;
        if reason == Reason::NotPresent {
            self.not_present += 1;
        }
    }

    fn count_mut(&mut self, outcome: Outcome) -> &mut usize {
        match outcome {
            Outcome::Exported => &mut self.exported,
            Outcome::WouldExport => &mut self.would_export,
            Outcome::Skipped => &mut self.skipped,
            Outcome::Invalid => &mut self.invalid,
            Outcome::Failed => &mut self.failed,
            Outcome::Removed => &mut self.removed,
            Outcome::WouldRemove => &mut self.would_remove,
        }
    }
}

/// The answer to `/export`, `/remove` and `/sync`.
#[derive(Debug, Clone, Serialize)]
pub struct Report<'a> {
    pub source: String,
    pub expiry: Option<String>,
    pub dry_run: bool,
    pub summary: Summary,
    pub results: Vec<ItemResult<'a>>,
    /// `/sync` only: entries removed from Darktrace that were not in the request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub removals: Option<Vec<Removal>>,
}

impl Report<'_> {
    /// True when at least one item failed: the answer is then a 502.
    pub fn has_failures(&self) -> bool {
        self.summary.failed > 0
            || self
                .removals
                .iter()
                .flatten()
                .any(|r| r.outcome == Outcome::Failed)
    }
}

impl Report<'_> {
    /// Writes the report as `serde_json::to_writer` does, byte for byte, with the strings of
    /// the results that need no escaping (almost all of them) copied as they are.
    pub fn write_json(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        self.write_json_with(out, |_| true).map(drop)
    }

    /// [`Report::write_json`] in chunks of about `chunk_bytes`, each handed to `send` as it
    /// fills, so the whole answer is never held at once; stops, returning `false`, when
    /// `send` refuses one (the client has gone).
    pub fn write_json_in_chunks(
        &self,
        chunk_bytes: usize,
        mut send: impl FnMut(Vec<u8>) -> bool,
    ) -> serde_json::Result<bool> {
        let mut chunk = Vec::with_capacity(chunk_bytes + 1024);
        let whole = self.write_json_with(&mut chunk, |chunk| {
            chunk.len() < chunk_bytes
                || send(std::mem::replace(
                    chunk,
                    Vec::with_capacity(chunk_bytes + 1024),
                ))
        })?;
        Ok(whole && send(chunk))
    }

    /// Writes the report into `out`, calling `after_result` after each result (it may take
    /// what `out` holds); stops, returning `false`, when `after_result` does.
    fn write_json_with(
        &self,
        out: &mut Vec<u8>,
        mut after_result: impl FnMut(&mut Vec<u8>) -> bool,
    ) -> serde_json::Result<bool> {
        out.extend_from_slice(b"{\"source\":");
        serde_json::to_writer(&mut *out, &self.source)?;
        out.extend_from_slice(b",\"expiry\":");
        serde_json::to_writer(&mut *out, &self.expiry)?;
        out.extend_from_slice(if self.dry_run {
            b",\"dry_run\":true,\"summary\":"
        } else {
            b",\"dry_run\":false,\"summary\":"
        });
        serde_json::to_writer(&mut *out, &self.summary)?;
        out.extend_from_slice(b",\"results\":[");
        for (n, result) in self.results.iter().enumerate() {
            if n > 0 {
                out.push(b',');
            }
            result.write_json(out)?;
            if !after_result(out) {
                return Ok(false);
            }
        }
        out.push(b']');
        if let Some(removals) = &self.removals {
            out.extend_from_slice(b",\"removals\":");
            serde_json::to_writer(&mut *out, removals)?;
        }
        out.push(b'}');
        Ok(true)
    }
}

impl ItemResult<'_> {
    fn write_json(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        out.extend_from_slice(b"{\"index\":");
        serde_json::to_writer(&mut *out, &self.index)?;
        if let Some(id) = &self.id {
            out.extend_from_slice(b",\"id\":");
            serde_json::to_writer(&mut *out, id)?;
        }
        if let Some(type_name) = &self.type_name {
            out.extend_from_slice(b",\"type\":");
            write_str(out, type_name)?;
        }
        if let Some(value) = &self.value {
            out.extend_from_slice(b",\"value\":");
            write_str(out, value)?;
        }
        out.extend_from_slice(b",\"outcome\":\"");
        out.extend_from_slice(self.outcome.as_str().as_bytes());
        out.push(b'"');
        if let Some(exported_value) = &self.exported_value {
            out.extend_from_slice(b",\"exported_value\":");
            write_str(out, exported_value)?;
        }
        out.extend_from_slice(b",\"reason\":\"");
        out.extend_from_slice(self.reason.as_str().as_bytes());
        out.extend_from_slice(b"\",\"detail\":");
        write_str(out, &self.detail)?;
        out.push(b'}');
        Ok(())
    }
}

/// A JSON string: copied between quotes when no byte needs escaping (no control character,
/// quote or backslash), else written by serde_json.
fn write_str(out: &mut Vec<u8>, text: &str) -> serde_json::Result<()> {
    // Checked without stopping early, so the check runs on whole words at a time.
    let needs_escape = text.bytes().fold(false, |any, b| {
        any | (b < 0x20) | (b == b'"') | (b == b'\\')
    });
    if needs_escape {
        return serde_json::to_writer(out, text);
    }
    out.reserve(text.len() + 2);
    out.push(b'"');
    out.extend_from_slice(text.as_bytes());
    out.push(b'"');
    Ok(())
}

/// A Darktrace entry that `/sync` removed (or plans to) without it being in the request.
///
/// `value` is the name as Darktrace lists it; `outcome` is `removed`, `failed` or (dry run,
/// refused plan) `would_remove`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Removal {
    pub value: String,
    pub outcome: Outcome,
    pub reason: Reason,
    pub detail: Cow<'static, str>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(reason: Reason) -> ItemResult<'static> {
        ItemResult {
            index: 0,
            id: None,
            type_name: None,
            value: None,
            outcome: reason.outcome(),
            exported_value: None,
            reason,
            detail: "".into(),
        }
    }

    #[test]
    fn echoed_text_is_cut_after_256_characters_with_its_length() {
        let short = "x".repeat(ECHO_CHARS);
        assert_eq!(bounded(Cow::Borrowed(&short)), short);
        let long = "é".repeat(1000);
        let cut = bounded(Cow::Borrowed(&long));
        assert_eq!(
            cut,
            format!("{}…(cut, 1000 characters)", "é".repeat(ECHO_CHARS))
        );
        let id = bounded_id(ItemId::Text("7".repeat(300)));
        assert_eq!(
            id,
            ItemId::Text(format!("{}…(cut, 300 characters)", "7".repeat(256)))
        );
        assert_eq!(
            bounded_id(ItemId::Number(5.into())),
            ItemId::Number(5.into())
        );
    }

    #[test]
    fn summary_counts_each_outcome_and_adds_up() {
        let results = [
            result(Reason::Added),
            result(Reason::Updated),
            result(Reason::Protected),
            result(Reason::InvalidFqdn),
            result(Reason::DarktraceAuth),
            result(Reason::NotPresent),
            result(Reason::DryRun),
        ];
        let s = Summary::of(&results);
        assert_eq!(s.received, 7);
        assert_eq!(
            (
                s.exported,
                s.would_export,
                s.skipped,
                s.invalid,
                s.failed,
                s.removed
            ),
            (2, 1, 1, 1, 1, 1)
        );
    }

    #[test]
    fn reasons_serialize_as_their_names() {
        for reason in [Reason::DarktraceTls, Reason::NotPresent, Reason::DryRun] {
            let json = serde_json::to_string(&reason).unwrap();
            assert_eq!(json, format!("\"{}\"", reason.as_str()));
        }
        assert_eq!(
            serde_json::to_string(&Outcome::WouldExport).unwrap(),
            "\"would_export\""
        );
    }

    #[test]
    fn would_remove_appears_in_the_summary_only_when_counted() {
        let export = serde_json::to_value(Summary::of(&[result(Reason::Added)])).unwrap();
        assert!(export.get("would_remove").is_none(), "{export}");
        let plan = serde_json::to_value(Summary::of(&[
            result(Reason::DryRunRemoval),
            result(Reason::NotPresent),
        ]))
        .unwrap();
        assert_eq!(plan["would_remove"], 1);
        assert_eq!(plan["removed"], 1);
        assert_eq!(plan["received"], 2);
    }

    /// `ALL` is what the spec test compares with `openapi.yaml`; a reason missing from it
    /// would go undocumented unnoticed.
    #[test]
    fn all_lists_every_reason_once_and_every_outcome_has_one() {
        let listed: std::collections::HashSet<&str> =
            Reason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(listed.len(), Reason::ALL.len(), "a reason is listed twice");
        for outcome in Outcome::ALL {
            assert!(
                Reason::ALL.iter().any(|r| r.outcome() == outcome),
                "no reason in Reason::ALL belongs to {}",
                outcome.as_str()
            );
        }
        // `ALL` and the enum are one list (the `reasons!` table); each name is its own.
        let names: std::collections::HashSet<&str> =
            Reason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(names.len(), Reason::ALL.len());
    }

    #[test]
    fn every_reason_sits_at_its_own_place_in_all() {
        // Counting per reason indexes an array by `reason as usize`.
        for (place, reason) in Reason::ALL.iter().copied().enumerate() {
            assert_eq!(reason as usize, place, "{reason:?}");
        }
    }

    fn report(
        results: Vec<ItemResult<'static>>,
        removals: Option<Vec<Removal>>,
    ) -> Report<'static> {
        Report {
            source: "Threat\"Q\\ é".into(),
            expiry: None,
            dry_run: false,
            summary: Summary::of(&results),
            results,
            removals,
        }
    }

    #[test]
    fn the_report_is_written_as_serde_json_writes_it() {
        let texts = [
            "plain.example",
            "",
            "say \"hi\"",
            "back\\slash",
            "tab\tnew\nline\r",
            "\u{0}\u{1f}\u{7f}",
            "Überprüft ünïcödé \u{2028} 🦀",
            "/slash",
        ];
        let mut results = Vec::new();
        for (index, text) in texts.iter().enumerate() {
            let mut r = result(Reason::ALL[index % Reason::ALL.len()]);
            r.index = index;
            r.id = Some(if index % 2 == 0 {
                ItemId::Text((*text).into())
            } else {
                ItemId::Number(serde_json::Number::from_f64(1.5).unwrap())
            });
            r.type_name = Some(Cow::Borrowed(text));
            r.value = Some(Cow::Owned((*text).into()));
            r.exported_value = (index % 3 != 0).then_some(Cow::Borrowed(text));
            r.detail = Cow::Owned((*text).into());
            results.push(r);
        }
        // Every reason and outcome, by their names.
        results.extend(Reason::ALL.iter().map(|reason| result(*reason)));
        let removal = Removal {
            value: "a\"b".into(),
            outcome: Outcome::Removed,
            reason: Reason::Removed,
            detail: "gone".into(),
        };
        for removals in [None, Some(vec![removal])] {
            let mut report = report(results.clone(), removals);
            for (expiry, dry_run) in [(None, false), (Some("2026-12-27T17:52:02\n".into()), true)] {
                report.expiry = expiry;
                report.dry_run = dry_run;
                let mut written = Vec::new();
                report.write_json(&mut written).unwrap();
                assert_eq!(
                    String::from_utf8(written).unwrap(),
                    serde_json::to_string(&report).unwrap()
                );
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn any_strings_are_written_as_serde_json_writes_them(
            texts in proptest::collection::vec(
                (proptest::option::of(".*"), proptest::option::of(".*"), proptest::option::of(".*"), ".*", proptest::option::of(".*")),
                0..8,
            ),
        ) {
            let results = texts
                .into_iter()
                .enumerate()
                .map(|(index, (type_name, value, exported_value, detail, id))| ItemResult {
                    index,
                    id: id.map(ItemId::Text),
                    type_name: type_name.map(Cow::Owned),
                    value: value.map(Cow::Owned),
                    exported_value: exported_value.map(Cow::Owned),
                    detail: Cow::Owned(detail),
                    ..result(Reason::ALL[index % Reason::ALL.len()])
                })
                .collect();
            let report = report(results, None);
            let mut written = Vec::new();
            report.write_json(&mut written).unwrap();
            proptest::prop_assert_eq!(written, serde_json::to_vec(&report).unwrap());
        }
    }

    #[test]
    fn an_answer_in_chunks_is_the_answer_whole_and_stops_when_refused() {
        let results: Vec<_> = (0..500)
            .map(|index| ItemResult {
                index,
                value: Some(Cow::Owned(format!("host-{index}.example"))),
                ..result(Reason::ALL[index % Reason::ALL.len()])
            })
            .collect();
        let report = report(results, None);
        let mut whole = Vec::new();
        report.write_json(&mut whole).unwrap();
        for chunk_bytes in [1, 100, 4096, 1 << 20] {
            let mut chunks = Vec::new();
            let complete = report
                .write_json_in_chunks(chunk_bytes, |chunk| {
                    chunks.push(chunk);
                    true
                })
                .unwrap();
            assert!(complete);
            assert!(chunks.iter().all(|c| !c.is_empty() || chunks.len() == 1));
            assert_eq!(chunks.concat(), whole, "chunks of {chunk_bytes}");
            if chunk_bytes == 4096 {
                assert!(chunks.len() > 3, "{} chunks", chunks.len());
            }
        }
        let mut sent = 0;
        let complete = report
            .write_json_in_chunks(1000, |_| {
                sent += 1;
                sent < 3
            })
            .unwrap();
        assert!(!complete);
        assert_eq!(sent, 3, "nothing is written past the chunk refused");
    }

    #[test]
    fn settle_keeps_outcome_in_step_with_reason() {
        let mut r = result(Reason::DryRun);
        r.settle(Verdict::new(Reason::Rejected, "left out"));
        assert_eq!(r.outcome, Outcome::Failed);
    }
}
