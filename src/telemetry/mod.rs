//! Telemetry for the process: one tracing subscriber (JSON lines by default, text for people)
//! and one Prometheus recorder.

pub mod capture;
pub mod json;
pub mod metrics;

use std::io::IsTerminal;

use tracing::Subscriber;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format::JsonFields;

use crate::config::LogFormat;
pub use capture::Capture;

/// Installs the subscriber on stderr; the level comes from `RUST_LOG` (default `info`).
/// Text is coloured only on a terminal (and never with `NO_COLOR` set), so a file or a log
/// collector gets no escape codes.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let _ = tracing::subscriber::set_global_default(subscriber(
        format,
        filter,
        std::io::stderr,
        colour,
    ));
}

/// The subscriber `init` installs, writing to `writer` (tests capture its lines with it),
/// with colour codes only when `colour` (a terminal).
///
/// In JSON, the fields of every enclosing span are flattened into each line, so a line
/// written deep inside a request (a Darktrace retry, the batch summary) carries the
/// request's `request_id` at the top level, where a log query can find it.
pub fn subscriber<W>(
    format: LogFormat,
    filter: EnvFilter,
    writer: W,
    colour: bool,
) -> Box<dyn Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(writer);
    match format {
        LogFormat::Json => Box::new(
            builder
                .fmt_fields(JsonFields::new())
                .event_format(json::FlatJson)
                .finish(),
        ),
        LogFormat::Text => Box::new(builder.finish()),
    }
}
