//! Reading a batch request: content type, body size, JSON shape, batch size and overrides,
//! each refusal a [`Problem`] that says what to fix.

use axum::http::{HeaderMap, header};
use chrono::Utc;
use serde::de::DeserializeSeed;

use crate::config::{
    Config, MAX_DAYS_TO_EXPIRATION, check_description, check_source_name, parse_bool,
};
use crate::export::{RequestSettings, expiry_after};
use crate::http::handoff;
use crate::http::problem::Problem;
use crate::threatq::{
    Batch, BatchRead, BatchSeed, BodyOverrides, ItemSink, KeyReading, OVERRIDE_KEYS,
};

/// Refuses bodies that are not declared JSON.
pub fn check_content_type(headers: &HeaderMap) -> Result<(), Problem> {
    let declared = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = declared
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
    {
        Ok(())
    } else if declared.is_empty() {
        Err(Problem::unsupported_media_type(
            "no Content-Type; send Content-Type: application/json",
        ))
    } else {
        Err(Problem::unsupported_media_type(format!(
            "Content-Type is {declared}; send application/json"
        )))
    }
}

/// Bodies from this size on are read and screened on two threads: below it, a second
/// thread costs more than it saves.
pub const HANDOFF_FROM_BYTES: usize = 1024 * 1024;

/// Parses the body into a batch: 400 when it is not JSON, 422 when it is the wrong shape,
/// 413 when it holds more items than `OBJECTS_PER_RUN`.
pub fn parse_batch<'a>(body: &'a [u8], objects_per_run: usize) -> Result<Batch<'a>, Problem> {
    let (items, overrides) = read_items(body, objects_per_run, Vec::new)?;
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
pub fn read_items<'a, S: ItemSink<'a> + Send>(
    body: &'a [u8],
    objects_per_run: usize,
    new_sink: impl Fn() -> S,
) -> Result<(S, BodyOverrides), Problem> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(Problem::not_json(
            "the body is empty; send a JSON array of indicators, or an object with \"data\" or \"indicators\"",
        ));
    }
    let beside = (body.len() >= HANDOFF_FROM_BYTES)
        .then(|| {
            handoff::take_beside(new_sink(), |handoff| {
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
            read_checked(body, objects_per_run, &mut sink)?
        }
    };
    if let Some(stray) = &read.stray_key {
        return Err(Problem::bad_parameter(stray.detail()));
    }
    if read.total > objects_per_run {
        return Err(Problem::too_large(format!(
            "batch has {} indicators; OBJECTS_PER_RUN is {objects_per_run}",
            read.total
        )));
    }
    Ok((sink, read.overrides))
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
) -> Result<BatchRead, Problem> {
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
        Err(e) => Err(json_problem(&e, &track.path().to_string())),
        Ok(read) => match deserializer.end() {
            Err(e) => Err(json_problem(&e, ".")),
            Ok(()) => Ok(read),
        },
    }
}

fn json_problem(error: &serde_json::Error, path: &str) -> Problem {
    use serde_json::error::Category;
    match error.classify() {
        Category::Data => {
            let at = if path.is_empty() || path == "." {
                String::new()
            } else {
                format!(" at {path}")
            };
            Problem::wrong_shape(format!("{}{at}", strip_position(error)))
        }
        Category::Syntax | Category::Eof | Category::Io => Problem::not_json(format!(
            "body is not valid JSON: {} at line {} column {}",
            strip_position(error),
            error.line(),
            error.column()
        )),
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

/// Refuses a bad query parameter before the body is read: a query parameter beats the
/// body, so one that is wrong is wrong whatever the body holds, and a typo should not cost a
/// large batch its whole reading first.
pub fn check_query(config: &Config, query: Option<&str>) -> Result<(), Problem> {
    settings(config, &BodyOverrides::default(), query).map(drop)
}

/// The request's settings: defaults, then body overrides, then query parameters.
pub fn settings(
    config: &Config,
    body: &BodyOverrides,
    query: Option<&str>,
) -> Result<RequestSettings, Problem> {
    let mut merged = body.clone();
    let mut seen: Vec<String> = Vec::new();
    for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        let bad = |why: String| Problem::bad_parameter(format!("query parameter {key}: {why}"));
        // `dry_run=true&dry_run=false` has no meaning a caller can rely on.
        if seen.iter().any(|k| *k == key) {
            return Err(Problem::bad_parameter(format!(
                "query parameter {key} is given twice; give it once"
            )));
        }
        seen.push(key.to_string());
        match key.as_ref() {
            "source" => merged.source = Some(value.into_owned()),
            "description" => merged.description = Some(value.into_owned()),
            "days_to_expiration" => {
                merged.days_to_expiration = Some(
                    value
                        .trim()
                        .parse()
                        .map_err(|_| bad(format!("'{value}' is not a whole number of days")))?,
                )
            }
            "dry_run" => {
                merged.dry_run = Some(parse_bool("dry_run", &value).map_err(|e| bad(e.problem))?)
            }
            "force" => {
                merged.force = Some(parse_bool("force", &value).map_err(|e| bad(e.problem))?)
            }
            other => {
                return Err(Problem::bad_parameter(format!(
                    "unknown query parameter '{other}'; known: {}",
                    OVERRIDE_KEYS.join(", ")
                )));
            }
        }
    }

    let source = match merged.source.as_deref() {
        Some(s) => {
            check_source_name(s).map_err(|p| Problem::bad_parameter(format!("source {p}")))?
        }
        None => config.defaults.source.clone(),
    };
    let days = match merged.days_to_expiration {
        Some(days) => u32::try_from(days)
            .ok()
            .filter(|d| *d <= MAX_DAYS_TO_EXPIRATION)
            .ok_or_else(|| {
                Problem::bad_parameter(format!(
                    "days_to_expiration {days} is out of range; give 0 to {MAX_DAYS_TO_EXPIRATION}"
                ))
            })?,
        None => config.defaults.days_to_expiration,
    };
    let description = match merged.description.as_deref() {
        Some(d) => Some(
            check_description(d).map_err(|p| Problem::bad_parameter(format!("description {p}")))?,
        ),
        None => config.defaults.description.clone(),
    };
    Ok(RequestSettings {
        source,
        expiry: expiry_after(days, Utc::now()),
        description,
        dry_run: merged.dry_run.unwrap_or(false),
        force: merged.force.unwrap_or(false),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_errors_are_400_with_position_and_shape_errors_are_422_with_path() {
        let p = parse_batch(b"[{\"value\": }", 10).unwrap_err();
        assert_eq!(p.status, 400);
        assert!(p.detail.contains("line 1 column"), "{}", p.detail);
        let p = parse_batch(br#"{"indicators": [], "dry_run": "yes"}"#, 10).unwrap_err();
        assert_eq!(p.status, 422);
        assert!(p.detail.contains("dry_run"), "{}", p.detail);
        let p = parse_batch(br#"{"total": 0}"#, 10).unwrap_err();
        assert_eq!(p.status, 422);
    }

    #[test]
    fn both_lists_are_refused_after_the_body_is_read_through() {
        let p = parse_batch(br#"{"data": [], "indicators": ["#, 10).unwrap_err();
        assert_eq!(p.status, 400, "{}", p.detail);
        let p = parse_batch(br#"{"indicators": [], "data": 5}"#, 10).unwrap_err();
        assert_eq!(p.status, 422);
        assert!(p.detail.ends_with("at data"), "{}", p.detail);
        let p = parse_batch(br#"{"data": [1], "indicators": [2]}"#, 10).unwrap_err();
        assert_eq!(p.status, 422);
        assert!(p.detail.contains("not both"), "{}", p.detail);
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
        let (screening, _) = read_items(body.as_bytes(), 50_000, || screener.start()).unwrap();
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
        assert_eq!(p.status, 413);
        assert_eq!(
            p.detail,
            "batch has 40000 indicators; OBJECTS_PER_RUN is 39999"
        );
        let broken = format!("{}]", &body[..body.len() - 2]);
        let p = parse_batch(broken.as_bytes(), 50_000).unwrap_err();
        assert_eq!(p.status, 400, "{}", p.detail);
        assert!(p.detail.contains("line "), "{}", p.detail);
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
            assert_eq!(p.status, 400, "{body}");
            assert!(p.detail.contains(named), "{body}: {}", p.detail);
            assert!(p.detail.contains("dry_run, force"), "{}", p.detail);
        }
        // ThreatQ's own keys of a page are not ours to refuse.
        let page = r#"{"total": 0, "data": [], "nextCursorMark": "x", "limit": 5, "offset": 0}"#;
        assert!(parse_batch(page.as_bytes(), 10).is_ok());
    }

    #[test]
    fn more_items_than_objects_per_run_is_413() {
        let p = parse_batch(b"[1,2,3]", 2).unwrap_err();
        assert_eq!(p.status, 413);
        assert_eq!(p.detail, "batch has 3 indicators; OBJECTS_PER_RUN is 2");
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
            assert_eq!(p.status, 413, "{body}");
            assert_eq!(p.detail, "batch has 7 indicators; OBJECTS_PER_RUN is 3");
        }
        assert_eq!(parse_batch(b"[1,2,3]", 3).unwrap().items.len(), 3);
    }

    #[test]
    fn bad_json_past_the_item_limit_is_still_400() {
        let p = parse_batch(b"[1,2,3,{]", 2).unwrap_err();
        assert_eq!(p.status, 400, "{}", p.detail);
    }

    #[test]
    fn deep_nesting_is_refused_as_not_json() {
        let body = "[".repeat(100_000);
        assert_eq!(parse_batch(body.as_bytes(), 10).unwrap_err().status, 400);
    }

    #[test]
    fn query_beats_body_and_unknown_parameters_are_refused() {
        let config = Config::new(crate::config::DarktraceConfig::new(
            "https://dt.example".parse().unwrap(),
            "p",
            "s",
        ));
        let body = BodyOverrides {
            source: Some("FromBody".into()),
            dry_run: Some(false),
            ..BodyOverrides::default()
        };
        let s = settings(&config, &body, Some("dry_run=true&source=FromQuery")).unwrap();
        assert_eq!(s.source, "FromQuery");
        assert!(s.dry_run);
        assert_eq!(
            settings(&config, &body, Some("dryrun=true"))
                .unwrap_err()
                .status,
            400
        );
        assert_eq!(
            settings(&config, &body, Some(&format!("source={}", "x".repeat(64))))
                .unwrap_err()
                .status,
            400
        );
        assert_eq!(
            settings(&config, &body, Some("days_to_expiration=99999"))
                .unwrap_err()
                .status,
            400
        );
        for days in ["-1", "3651"] {
            let p =
                settings(&config, &body, Some(&format!("days_to_expiration={days}"))).unwrap_err();
            assert_eq!(p.status, 400);
            assert!(p.detail.contains("give 0 to 3650"), "{}", p.detail);
        }
        let negative = BodyOverrides {
            days_to_expiration: Some(-5),
            ..BodyOverrides::default()
        };
        assert_eq!(settings(&config, &negative, None).unwrap_err().status, 400);
    }
}
