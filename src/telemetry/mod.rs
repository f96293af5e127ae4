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
    let raw = std::env::var("RUST_LOG").ok();
    let (filter, ignored) = log_filter(raw.as_deref());
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let _ = tracing::subscriber::set_global_default(subscriber(
        format,
        filter,
        std::io::stderr,
        colour,
    ));
    for directive in ignored {
        tracing::warn!(
            "RUST_LOG: '{directive}' is neither a level (error, warn, info, debug, trace, off) nor a target of this service (such as darktrace_export=debug); it is ignored"
        );
    }
}

/// Targets a bare `RUST_LOG` word may name: this crate and the ones it logs through.
const LOG_TARGETS: [&str; 10] = [
    "darktrace_export",
    "axum",
    "tower_http",
    "tower",
    "hyper",
    "hyper_util",
    "reqwest",
    "h2",
    "rustls",
    "tokio",
];

/// The filter `RUST_LOG` asks for (`info` when unset), and the directives left out of it.
///
/// A bare word is read by tracing as a target, so `RUST_LOG=verbose` would show only the
/// events of a target named `verbose`: none, warnings included. Such a word is left out
/// (and named at start); a directive with `=` is tracing's to read. When nothing usable is
/// left, or tracing refuses the rest, the level is `info`.
pub fn log_filter(raw: Option<&str>) -> (EnvFilter, Vec<String>) {
    const LEVELS: [&str; 6] = ["error", "warn", "info", "debug", "trace", "off"];
    let mut kept = Vec::new();
    let mut ignored = Vec::new();
    for directive in raw.unwrap_or("").split(',').map(str::trim) {
        if directive.is_empty() {
            continue;
        }
        let usable = directive.contains(['=', '['])
            || LEVELS.contains(&directive.to_ascii_lowercase().as_str())
            || LOG_TARGETS.iter().any(|t| {
                directive
                    .strip_prefix(t)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
            });
        if usable {
            kept.push(directive);
        } else {
            ignored.push(directive.to_owned());
        }
    }
    if kept.is_empty() {
        return (EnvFilter::new("info"), ignored);
    }
    match EnvFilter::try_new(kept.join(",")) {
        Ok(filter) => (filter, ignored),
        Err(_) => {
            ignored.extend(kept.into_iter().map(str::to_owned));
            (EnvFilter::new("info"), ignored)
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn read(raw: &str) -> (String, Vec<String>) {
        let (filter, ignored) = log_filter(Some(raw));
        (filter.to_string(), ignored)
    }

    #[test]
    fn a_word_that_is_no_level_or_target_is_left_out_instead_of_hiding_every_line() {
        assert_eq!(read("verbose"), ("info".into(), vec!["verbose".into()]));
        assert_eq!(
            read("debug, verbose"),
            ("debug".into(), vec!["verbose".into()])
        );
        assert_eq!(read("WARN"), ("warn".into(), vec![]));
        assert_eq!(
            read("info,darktrace_export=debug"),
            ("darktrace_export=debug,info".into(), vec![])
        );
        assert_eq!(
            read("darktrace_export::pull"),
            ("darktrace_export::pull=trace".into(), vec![])
        );
        assert_eq!(read(""), ("info".into(), vec![]));
        // What tracing itself refuses is named too, and the level is info.
        let (filter, ignored) = read("darktrace_export=loud");
        assert_eq!(filter, "info");
        assert_eq!(ignored, ["darktrace_export=loud"]);
        assert_eq!(log_filter(None).0.to_string(), "info");
    }
}
