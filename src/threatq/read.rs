//! The one way a request body is read: its form, its items (handed one by one to a sink as
//! they are read), its overrides, and everything it can be refused for before any item
//! exists ([`ReadError`]).

use serde::de::DeserializeSeed;

use super::{Batch, BatchRead, BatchSeed, BodyOverrides, ItemSink, KeyReading, StrayKey};

/// Why a body was refused as a whole; nothing of it was judged or sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadError {
    /// Empty, or not JSON; the message says where.
    NotJson(String),
    /// JSON, but not one of the three forms; the message names the path.
    WrongShape(String),
    /// More items than `OBJECTS_PER_RUN`.
    TooMany { total: usize, max: usize },
    /// A top-level key the body may not hold.
    StrayKey(StrayKey),
}

impl ReadError {
    /// The sentence of the refusal, saying what to change.
    pub fn detail(&self) -> String {
        match self {
            ReadError::NotJson(why) | ReadError::WrongShape(why) => why.clone(),
            ReadError::TooMany { total, max } => {
                format!("batch has {total} indicators; OBJECTS_PER_RUN is {max}")
            }
            ReadError::StrayKey(key) => key.detail(),
        }
    }
}

/// Bodies from this size on are read and screened on two threads: below it, a second
/// thread costs more than it saves.
pub const HANDOFF_FROM_BYTES: usize = 1024 * 1024;

/// Parses the body into a batch: 400 when it is not JSON, 422 when it is the wrong shape,
/// 413 when it holds more items than `OBJECTS_PER_RUN`.
pub fn parse_batch<'a>(body: &'a [u8], objects_per_run: usize) -> Result<Batch<'a>, ReadError> {
    let (items, overrides) = read_batch(body, objects_per_run, Vec::new)?;
    Ok(Batch { items, overrides })
}

/// Reads the body, handing each item to a sink from `new_sink` as soon as it is read, and
/// returns the sink with the body's overrides; refusals as for [`parse_batch`].
///
/// The first read takes indicator keys raw and tracks no path (tracking costs an
/// allocation per key). A body it refuses is read again with keys checked as text and the
/// path tracked, into a fresh sink: that read decides, and names where a body goes wrong.
/// A valid body takes the second read too when an indicator key holds an escaped control
/// character (`"note\n"`), which the raw read cannot tell from a raw one; it then costs
/// about three reads, never more.
///
/// A body of [`HANDOFF_FROM_BYTES`] or more is read on this thread while the sink takes the
/// items on a second one (see [`handoff`]); the items reach the sink in the same order.
pub fn read_batch<'a, S: ItemSink<'a> + Send>(
    body: &'a [u8],
    objects_per_run: usize,
    new_sink: impl Fn() -> S,
) -> Result<(S, BodyOverrides), ReadError> {
    let (sink, read) = read_whole(body, objects_per_run, new_sink, &|line, column| {
        (line, column)
    })?;
    Ok((sink, settle(read, 0, objects_per_run)?))
}

/// Where a skeleton (see [`super::stream`]) begins to copy the body as it is: its
/// positions from there on are the body's, shifted.
#[derive(Debug, Clone)]
pub(super) struct SkeletonPlace {
    /// The `0`s standing for the items of the open list already read.
    pub placeholders: usize,
    pub skeleton_at: usize,
    pub body_at: usize,
    /// Newlines in the body before `body_at`, and the body offset where its line begins.
    pub newlines_before: usize,
    pub line_start: usize,
}

impl SkeletonPlace {
    /// The body's line and column of the skeleton's `line` and `column` (serde_json's
    /// count: line from 1, column the bytes before the position on its line).
    fn body_position(&self, skeleton: &[u8], line: usize, column: usize) -> (usize, usize) {
        let line_begins = if line <= 1 {
            0
        } else {
            skeleton
                .iter()
                .enumerate()
                .filter(|(_, b)| **b == b'\n')
                .nth(line - 2)
                .map_or(skeleton.len(), |(at, _)| at + 1)
        };
        let at = (line_begins + column).min(skeleton.len());
        if at < self.skeleton_at {
            return (line, column);
        }
        let copied = &skeleton[self.skeleton_at..at];
        let newlines = copied.iter().filter(|b| **b == b'\n').count();
        let line_start = copied
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(self.line_start, |last| self.body_at + last + 1);
        let body_at = self.body_at + copied.len();
        (1 + self.newlines_before + newlines, body_at - line_start)
    }
}

/// Reads the skeleton a streamed body leaves (its items already handed to `sink`, counted
/// in `streamed`), refusing it as [`read_batch`] refuses the whole body, at the body's own
/// line and column; items the skeleton itself holds go to `sink` after the others.
pub(super) fn read_skeleton<S: ItemSink<'static>>(
    skeleton: &[u8],
    objects_per_run: usize,
    streamed: usize,
    copied: Option<&SkeletonPlace>,
    sink: &mut S,
) -> Result<BodyOverrides, ReadError> {
    let position = |line, column| match copied {
        Some(place) => place.body_position(skeleton, line, column),
        None => (line, column),
    };
    // The `0`s stand for the open list's items: that list is the body's own, counted
    // against OBJECTS_PER_RUN from its start.
    let (max_items, counted) = match copied {
        Some(place) => (objects_per_run, streamed - place.placeholders),
        None => (objects_per_run.saturating_sub(streamed), streamed),
    };
    let (items, read) = read_whole(skeleton, max_items, Vec::new, &position)?;
    if copied.is_some_and(|place| place.placeholders > 0) {
        // Copied from where the body goes wrong, so the read above refused it.
        return Err(ReadError::NotJson(
            "the body could not be read to its end".into(),
        ));
    }
    for item in items {
        sink.take(item.into_owned());
    }
    settle(read, counted, objects_per_run)
}

pub(super) const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// The body's line and column for serde_json's.
type Position<'p> = &'p dyn Fn(usize, usize) -> (usize, usize);

/// Reads `body` whole into a sink from `new_sink`: raw keys first, then, when that read
/// refuses it, again with keys as text and the path tracked (see [`read_batch`]).
fn read_whole<'a, S: ItemSink<'a> + Send>(
    body: &'a [u8],
    objects_per_run: usize,
    new_sink: impl Fn() -> S,
    position: Position<'_>,
) -> Result<(S, BatchRead), ReadError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ReadError::NotJson(
            "the body is empty; send a JSON array of indicators, or an object with \"data\" or \"indicators\""
                .into(),
        ));
    }
    // What an editor or a shell saving "UTF-8" may put first (Windows PowerShell does).
    // RFC 8259 leaves a reader free to refuse it; named, it is quick to fix.
    if body.starts_with(UTF8_BOM) {
        return Err(ReadError::NotJson(
            "the body starts with a UTF-8 byte order mark (bytes EF BB BF); send the JSON without it"
                .into(),
        ));
    }
    let beside = (body.len() >= HANDOFF_FROM_BYTES)
        .then(|| {
            super::handoff::take_beside(new_sink(), |handoff| {
                read_raw(body, objects_per_run, handoff)
            })
        })
        .flatten();
    let (mut sink, first) = beside.unwrap_or_else(|| {
        let mut sink = new_sink();
        let read = read_raw(body, objects_per_run, &mut sink);
        (sink, read)
    });
    let read = match first {
        Ok(read) => read,
        Err(_) => {
            sink = new_sink();
            read_checked(body, objects_per_run, &mut sink, position)?
        }
    };
    Ok((sink, read))
}

/// The refusals that need the whole body read: a stray key, then too many items
/// (`more_items` read elsewhere counted too).
fn settle(
    read: BatchRead,
    more_items: usize,
    objects_per_run: usize,
) -> Result<BodyOverrides, ReadError> {
    if let Some(stray) = &read.stray_key {
        return Err(ReadError::StrayKey(stray.clone()));
    }
    let total = read.total + more_items;
    if total > objects_per_run {
        return Err(ReadError::TooMany {
            total,
            max: objects_per_run,
        });
    }
    Ok(read.overrides)
}

/// The first read: keys raw, no path tracked.
fn read_raw<'a, S: ItemSink<'a>>(
    body: &'a [u8],
    objects_per_run: usize,
    sink: &mut S,
) -> Result<BatchRead, serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let read = BatchSeed {
        max_items: objects_per_run,
        keys: KeyReading::Raw,
        sink,
    }
    .deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(read)
}

/// Reads with every key checked as text, tracking the path so that a failure names the
/// field that failed.
fn read_checked<'a, S: ItemSink<'a>>(
    body: &'a [u8],
    objects_per_run: usize,
    sink: &mut S,
    position: Position<'_>,
) -> Result<BatchRead, ReadError> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let seed = BatchSeed {
        max_items: objects_per_run,
        keys: KeyReading::Checked,
        sink,
    };
    let mut track = serde_path_to_error::Track::new();
    let read = seed.deserialize(serde_path_to_error::Deserializer::new(
        &mut deserializer,
        &mut track,
    ));
    match read {
        Err(e) => Err(json_problem(&e, &track.path().to_string(), position)),
        Ok(read) => match deserializer.end() {
            Err(e) => Err(json_problem(&e, ".", position)),
            Ok(()) => Ok(read),
        },
    }
}

fn json_problem(error: &serde_json::Error, path: &str, position: Position<'_>) -> ReadError {
    use serde_json::error::Category;
    match error.classify() {
        Category::Data => {
            let at = if path.is_empty() || path == "." {
                String::new()
            } else {
                format!(" at {path}")
            };
            ReadError::WrongShape(format!("{}{at}", strip_position(error)))
        }
        Category::Syntax | Category::Eof | Category::Io => {
            let (line, column) = position(error.line(), error.column());
            ReadError::NotJson(format!(
                "body is not valid JSON: {} at line {line} column {column}",
                strip_position(error),
            ))
        }
    }
}

/// serde_json's message without its own " at line L column C" tail.
fn strip_position(error: &serde_json::Error) -> String {
    let text = error.to_string();
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The HTTP status each refusal gets, as the service answers it.
    trait Status {
        fn status(&self) -> u16;
    }
    impl Status for ReadError {
        fn status(&self) -> u16 {
            match self {
                ReadError::NotJson(_) | ReadError::StrayKey(_) => 400,
                ReadError::WrongShape(_) => 422,
                ReadError::TooMany { .. } => 413,
            }
        }
    }

    #[test]
    fn syntax_errors_are_400_with_position_and_shape_errors_are_422_with_path() {
        let p = parse_batch(b"[{\"value\": }", 10).unwrap_err();
        assert_eq!(p.status(), 400);
        assert!(p.detail().contains("line 1 column"), "{}", p.detail());
        let p = parse_batch(br#"{"indicators": [], "dry_run": "yes"}"#, 10).unwrap_err();
        assert_eq!(p.status(), 422);
        assert!(p.detail().contains("dry_run"), "{}", p.detail());
        let p = parse_batch(br#"{"total": 0}"#, 10).unwrap_err();
        assert_eq!(p.status(), 422);
    }

    #[test]
    fn a_leading_byte_order_mark_is_named_and_one_further_in_is_a_syntax_error() {
        for body in [
            &b"\xEF\xBB\xBF[]"[..],
            b"\xEF\xBB\xBF{\"data\": []}",
            b"\xEF\xBB\xBF",
        ] {
            let p = parse_batch(body, 10).unwrap_err();
            assert_eq!(p.status(), 400);
            assert!(p.detail().contains("byte order mark"), "{}", p.detail());
        }
        let p = parse_batch(b" \xEF\xBB\xBF[]", 10).unwrap_err();
        assert!(p.detail().contains("line 1 column 2"), "{}", p.detail());
    }

    #[test]
    fn both_lists_are_refused_after_the_body_is_read_through() {
        let p = parse_batch(br#"{"data": [], "indicators": ["#, 10).unwrap_err();
        assert_eq!(p.status(), 400, "{}", p.detail());
        let p = parse_batch(br#"{"indicators": [], "data": 5}"#, 10).unwrap_err();
        assert_eq!(p.status(), 422);
        assert!(p.detail().ends_with("at data"), "{}", p.detail());
        let p = parse_batch(br#"{"data": [1], "indicators": [2]}"#, 10).unwrap_err();
        assert_eq!(p.status(), 422);
        assert!(p.detail().contains("not both"), "{}", p.detail());
    }

    /// A body over `HANDOFF_FROM_BYTES`, with items that every rule of screening judges.
    fn large_body(items: usize) -> String {
        let kinds = [
            r#"{"type": {"name": "FQDN", "id": 11}, "status": {"name": "Active"}, "value": "host-N.example", "attributes": [{"name": "note", "value": "},{\"value\": \"x\"}"}]}"#,
            r#"{"type": "FQDN", "status": "Whitelisted", "value": "Host-N.Example."}"#,
            r#"{"type": "IP Address", "value": "198.51.100.N"}"#,
            r#"{"type": "IP Address", "value": "10.0.0.N"}"#,
            r#"{"type": "MD5", "value": "d41d8cd98f00b204e9800998ecf8427e"}"#,
            r#"{"type": "FQDN", "value": "dup.example"}"#,
            r#"{"type": "FQDN", "value": "bad..example"}"#,
            r#""not an object""#,
        ];
        let list: Vec<String> = (0..items)
            .map(|n| kinds[n % kinds.len()].replace('N', &(n % 250).to_string()))
            .collect();
        format!(r#"{{"total": {items}, "data": [{}]}}"#, list.join(",\n"))
    }

    #[test]
    fn a_large_body_is_judged_as_one_read_on_a_single_thread_judges_it() {
        use crate::config::ScreenConfig;
        use crate::outcome::{Reason, Verdict};
        use crate::screen::Screener;
        let body = large_body(40_000);
        assert!(body.len() >= HANDOFF_FROM_BYTES, "{}", body.len());
        let screener = Screener::new(&ScreenConfig::default(), None);
        let pending = Verdict::new(Reason::DryRun, "would be sent");
        let (screening, _) = read_batch(body.as_bytes(), 50_000, || screener.start()).unwrap();
        let got = screening.finish(&pending);
        // The reference: serde_json's own read, keys checked as text, then screening.
        let batch: Batch = serde_json::from_str(&body).unwrap();
        let want = screener.screen(batch.items, &pending);
        assert_eq!(got.results.len(), 40_000);
        assert_eq!(got.accepted, want.accepted);
        for (got, want) in got.results.iter().zip(&want.results) {
            assert_eq!(
                (
                    got.index,
                    got.reason,
                    &got.detail,
                    &got.exported_value,
                    &got.value
                ),
                (
                    want.index,
                    want.reason,
                    &want.detail,
                    &want.exported_value,
                    &want.value
                )
            );
        }
    }

    #[test]
    fn a_large_body_is_refused_as_a_small_one_is() {
        let body = large_body(40_000);
        let p = parse_batch(body.as_bytes(), 39_999).unwrap_err();
        assert_eq!(p.status(), 413);
        assert_eq!(
            p.detail(),
            "batch has 40000 indicators; OBJECTS_PER_RUN is 39999"
        );
        let broken = format!("{}]", &body[..body.len() - 2]);
        let p = parse_batch(broken.as_bytes(), 50_000).unwrap_err();
        assert_eq!(p.status(), 400, "{}", p.detail());
        assert!(p.detail().contains("line "), "{}", p.detail());
        // Legal but only readable with keys checked as text: read again, then accepted.
        let escaped = body.replacen(r#""type": "MD5""#, r#""note\u0001": 1, "type": "MD5""#, 1);
        assert_eq!(
            parse_batch(escaped.as_bytes(), 50_000).unwrap().items.len(),
            40_000
        );
    }

    #[test]
    fn overrides_are_read_from_every_object_form() {
        for body in [
            r#"{"indicators": [], "dry_run": true, "source": "S"}"#,
            r#"{"total": 0, "data": [], "dry_run": true, "source": "S", "nextCursorMark": "x"}"#,
        ] {
            let batch = parse_batch(body.as_bytes(), 10).unwrap();
            assert_eq!(batch.overrides.dry_run, Some(true), "{body}");
            assert_eq!(batch.overrides.source.as_deref(), Some("S"), "{body}");
        }
    }

    #[test]
    fn a_key_that_may_be_a_misspelt_override_is_400() {
        for (body, named) in [
            (r#"{"indicators": [], "dryrun": true}"#, "'dryrun'"),
            (r#"{"indicators": [], "total": 0}"#, "'total'"),
            (r#"{"data": [], "DRY_RUN": true}"#, "'DRY_RUN'"),
            (r#"{"data": [], "Source": "x"}"#, "'source'"),
            (
                r#"{"data": [], "days-to-expiration": 3}"#,
                "'days_to_expiration'",
            ),
        ] {
            let p = parse_batch(body.as_bytes(), 10).unwrap_err();
            assert_eq!(p.status(), 400, "{body}");
            assert!(p.detail().contains(named), "{body}: {}", p.detail());
            assert!(p.detail().contains("dry_run, force"), "{}", p.detail());
        }
        // ThreatQ's own keys of a page are not ours to refuse.
        let page = r#"{"total": 0, "data": [], "nextCursorMark": "x", "limit": 5, "offset": 0}"#;
        assert!(parse_batch(page.as_bytes(), 10).is_ok());
    }

    #[test]
    fn more_items_than_objects_per_run_is_413() {
        let p = parse_batch(b"[1,2,3]", 2).unwrap_err();
        assert_eq!(p.status(), 413);
        assert_eq!(p.detail(), "batch has 3 indicators; OBJECTS_PER_RUN is 2");
    }

    #[test]
    fn an_oversized_batch_is_counted_exactly_in_every_form() {
        let items = ["{\"value\": \"a.example\"}"; 7].join(",");
        for body in [
            format!("[{items}]"),
            format!("{{\"data\": [{items}], \"total\": 7}}"),
            format!("{{\"indicators\": [{items}]}}"),
        ] {
            let p = parse_batch(body.as_bytes(), 3).unwrap_err();
            assert_eq!(p.status(), 413, "{body}");
            assert_eq!(p.detail(), "batch has 7 indicators; OBJECTS_PER_RUN is 3");
        }
        assert_eq!(parse_batch(b"[1,2,3]", 3).unwrap().items.len(), 3);
    }

    #[test]
    fn bad_json_past_the_item_limit_is_still_400() {
        let p = parse_batch(b"[1,2,3,{]", 2).unwrap_err();
        assert_eq!(p.status(), 400, "{}", p.detail());
    }

    #[test]
    fn deep_nesting_is_refused_as_not_json() {
        let body = "[".repeat(100_000);
        assert_eq!(parse_batch(body.as_bytes(), 10).unwrap_err().status(), 400);
    }
}
