//! `darktrace-export check`: one signed call, one line saying what is right or wrong.

use crate::config::Config;
use crate::darktrace::{CallError, CallTally, DarktraceClient};

/// Makes one signed `GET /intelfeed?sources=true`; `Ok` holds the line to print on success.
pub async fn run(config: &Config) -> Result<String, String> {
    let client = DarktraceClient::new(&config.darktrace).map_err(|e| e.to_string())?;
    let host = config
        .darktrace
        .base_url
        .as_str()
        .trim_end_matches('/')
        .to_owned();
    match client.sources(&CallTally::default()).await {
        Ok(sources) => Ok(format!(
            "ok: {host} answered a signed call; host, TLS, tokens and clock are right ({} sources)",
            sources.len()
        )),
        Err(error) => Err(format!("{}: {}", label(&error), error_line(&error, &host))),
    }
}

fn label(error: &CallError) -> &'static str {
    match error {
        CallError::Auth(_) => "tokens",
        CallError::Clock => "clock",
        CallError::Permission => "permission",
        CallError::Tls(_) => "tls",
        CallError::Unavailable(_) | CallError::Timeout => "host",
        CallError::Unexpected(_) => "darktrace",
    }
}

fn error_line(error: &CallError, host: &str) -> String {
    match error {
        CallError::Unavailable(_) | CallError::Timeout => {
            format!("{host}: {}", error.verdict().detail)
        }
        _ => error.verdict().detail.into_owned(),
    }
}
