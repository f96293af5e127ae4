//! A JSON line format that lifts span fields to the top level.
//!
//! tracing-subscriber's own JSON format nests span fields under `span`/`spans`; a log
//! pipeline then has to search arrays to find a request. Here each line is one flat object:
//! `timestamp`, `level`, `target`, `span` (the span names, outermost first), the fields of
//! every enclosing span, then the event's own fields, inner ones winning on a clash.

use std::fmt;

use chrono::{SecondsFormat, Utc};
use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// The event format of `LOG_FORMAT=json`.
#[derive(Debug, Clone, Copy, Default)]
pub struct FlatJson;

impl<S> FormatEvent<S, JsonFields> for FlatJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, JsonFields>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let mut line = Map::new();
        line.insert(
            "timestamp".into(),
            Utc::now()
                .to_rfc3339_opts(SecondsFormat::Millis, true)
                .into(),
        );
        line.insert("level".into(), meta.level().as_str().into());
        line.insert("target".into(), meta.target().into());
        if let Some(scope) = ctx.event_scope() {
            let mut names = Vec::new();
            for span in scope.from_root() {
                names.push(span.name());
                let extensions = span.extensions();
                let Some(fields) = extensions.get::<FormattedFields<JsonFields>>() else {
                    continue;
                };
                // Span fields were formatted by `JsonFields`: an object, or empty.
                if let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(fields) {
                    line.extend(fields);
                }
            }
            line.insert("span".into(), names.join(":").into());
        }
        event.record(&mut Fields(&mut line));
        writeln!(writer, "{}", ordered(line)?)
    }
}

/// Keys people read first, in this order; the rest follow alphabetically.
const LEADING: [&str; 6] = [
    "timestamp",
    "level",
    "message",
    "request_id",
    "span",
    "target",
];

/// The line as a JSON object whose leading keys come first, for people reading raw logs.
fn ordered(mut line: Map<String, Value>) -> Result<String, fmt::Error> {
    let leading: Vec<(String, Value)> = LEADING
        .iter()
        .filter_map(|key| line.remove(*key).map(|v| ((*key).to_owned(), v)))
        .collect();
    let mut text = String::from("{");
    for (i, (key, value)) in leading.into_iter().chain(line).enumerate() {
        if i > 0 {
            text.push(',');
        }
        text.push_str(&serde_json::to_string(&key).map_err(|_| fmt::Error)?);
        text.push(':');
        text.push_str(&serde_json::to_string(&value).map_err(|_| fmt::Error)?);
    }
    text.push('}');
    Ok(text)
}

/// Records an event's fields into the line, keeping numbers and booleans typed.
struct Fields<'a>(&'a mut Map<String, Value>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().into(), format!("{value:?}").into());
    }
}

#[cfg(test)]
mod tests {
    use tracing_subscriber::EnvFilter;

    use crate::config::LogFormat;
    use crate::telemetry::Capture;

    #[test]
    fn span_fields_are_lifted_to_the_top_level_of_each_line() {
        let capture = Capture::default();
        let writer = capture.clone();
        let subscriber = crate::telemetry::subscriber(
            LogFormat::Json,
            EnvFilter::new("info"),
            move || writer.clone(),
            false,
        );
        tracing::subscriber::with_default(subscriber, || {
            let outer = tracing::info_span!("request", request_id = "r-1", method = "POST");
            let _outer = outer.enter();
            let inner = tracing::info_span!("export");
            let _inner = inner.enter();
            tracing::warn!(retry = 2_u64, ok = false, "Darktrace call failed; retrying");
        });
        let text = capture.text();
        let line: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(line["request_id"], "r-1");
        assert_eq!(line["method"], "POST");
        assert_eq!(line["span"], "request:export");
        assert_eq!(line["level"], "WARN");
        assert_eq!(line["message"], "Darktrace call failed; retrying");
        assert_eq!(line["retry"], 2);
        assert_eq!(line["ok"], false);
        assert!(
            text.starts_with(r#"{"timestamp":"#),
            "leading keys first: {text}"
        );
        let message = text.find(r#""message":"#).unwrap();
        assert!(message < text.find(r#""method":"#).unwrap(), "{text}");
    }
}
