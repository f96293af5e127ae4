//! `darktrace-export check`: one signed call, one line saying what is right or wrong.
//!
//! The call is `GET /intelfeed?sources=true`, made once (no retries, so an unreachable
//! host is reported within one `DARKTRACE_TIMEOUT_SECS`). A read cannot prove the "Edit
//! Domains" permission: an appliance lets a read-only token read. `check` never changes
//! anything in Darktrace to find out, so it reports a missing permission only when the read
//! itself is refused for it, and otherwise says the permission shows on the first export
//! (as `darktrace_permission`).

use chrono::Utc;

use crate::config::{Config, DarktraceConfig};
use crate::darktrace::{CallError, CallTally, DarktraceClient};

/// Makes the call with the service's configuration; `Ok` holds the line to print on
/// success, `Err` the line saying what is wrong.
pub async fn run(config: &Config) -> Result<String, String> {
    let client = DarktraceClient::new(&config.darktrace)
        .map_err(|e| e.to_string())?
        .with_max_retries(0);
    probe(&client, &config.darktrace).await
}

/// The call and its one-line verdict, with an already-built client.
pub async fn probe(client: &DarktraceClient, config: &DarktraceConfig) -> Result<String, String> {
    let host = config.base_url.as_str().trim_end_matches('/').to_owned();
    let via = config
        .proxy
        .as_ref()
        .map(|p| format!(" via proxy {p}"))
        .unwrap_or_default();
    match client.sources(&CallTally::default()).await {
        Ok(sources) => {
            let unverified = if config.verify_tls || config.base_url.scheme() != "https" {
                ""
            } else {
                " (certificate NOT verified: ENABLE_SSL_VERIFICATION=false)"
            };
            Ok(format!(
                "ok: {host}{via} accepted a signed call: host, TLS{unverified}, tokens and clock are right ({} sources); a token without the \"Edit Domains\" permission can still read, so that shows on the first export as darktrace_permission",
                sources.len()
            ))
        }
        Err(error) => Err(line(&error, &host, &via)),
    }
}

/// `what: detail`, where `what` names the part to fix.
fn line(error: &CallError, host: &str, via: &str) -> String {
    let detail = error.verdict().detail;
    match error {
        CallError::Auth(_) => format!("tokens: {detail}"),
        CallError::Clock => format!(
            "clock: {detail} (this host's clock says {} UTC)",
            Utc::now().format("%Y-%m-%d %H:%M:%S")
        ),
        CallError::Permission => format!("permission: {detail}"),
        CallError::Tls(_) => format!("tls: {host}{via}: {detail}"),
        CallError::Unavailable(_) | CallError::Timeout => format!("host: {host}{via}: {detail}"),
        CallError::Unexpected(_) => format!("darktrace: {host}{via}: {detail}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_failure_names_the_part_to_fix() {
        let cases = [
            (CallError::Auth("bad signature".into()), "tokens: "),
            (CallError::Clock, "clock: "),
            (CallError::Permission, "permission: "),
            (CallError::Tls("refused".into()), "tls: "),
            (CallError::Unavailable("refused".into()), "host: "),
            (CallError::Timeout, "host: "),
            (CallError::Unexpected("answered 404".into()), "darktrace: "),
        ];
        for (error, start) in cases {
            let text = line(&error, "https://dt.example", "");
            assert!(text.starts_with(start), "{text}");
            assert_eq!(text.lines().count(), 1, "{text}");
        }
        assert!(line(&CallError::Permission, "h", "").contains("Edit Domains"));
        assert!(line(&CallError::Clock, "h", "").contains("30 minutes"));
    }
}
