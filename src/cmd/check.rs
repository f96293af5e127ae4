//! `darktrace-export check`: two signed reads, one line saying what is right or wrong.
//!
//! The first call is `GET /intelfeed?sources=true`, the second the read `/sync` and
//! `/remove` make of `SOURCE_NAME` (`GET /intelfeed?fulldetails=true&source=...`): how an
//! appliance signs a query holding a space or `&` is not documented, so a name that breaks
//! only that read is reported as the cause. Each call is made once (no retries, so an
//! unreachable host is reported within one `DARKTRACE_TIMEOUT_SECS`). A read cannot prove
//! the "Edit Domains" permission: an appliance lets a read-only token read. `check` never
//! changes anything in Darktrace to find out, so it reports a missing permission only when
//! a read itself is refused for it, and otherwise says the permission shows on the first
//! export (as `darktrace_permission`).
//!
//! A refused certificate is described (fingerprint, names, dates) with advice for its cause.

use chrono::Utc;

use crate::config::{Config, ConfigError, DarktraceConfig, ThreatqAuth, ThreatqConfig};
use crate::darktrace::tls::explain_refusal;
use crate::darktrace::{CallError, CallTally, DarktraceClient};
use crate::pull::ThreatqClient;
use crate::pull::page::parse_page;

/// Why `check` did not say ok.
#[derive(Debug)]
pub enum Failure {
    /// The settings are wrong before any call (exit 2, as for `serve`).
    Config(ConfigError),
    /// Darktrace, or the way to it, said no (exit 1): the line says what to fix.
    Darktrace(String),
}

/// Makes the calls with the service's configuration; `Ok` holds the line to print on
/// success.
pub async fn run(config: &Config) -> Result<String, Failure> {
    let client = DarktraceClient::new(&config.darktrace)
        .map_err(Failure::Config)?
        .with_max_retries(0);
    probe(&client, &config.darktrace, &config.defaults.source)
        .await
        .map_err(Failure::Darktrace)
}

/// The calls and their one-line verdict, with an already-built client.
pub async fn probe(
    client: &DarktraceClient,
    config: &DarktraceConfig,
    source: &str,
) -> Result<String, String> {
    let host = config.base_url.as_str().trim_end_matches('/').to_owned();
    let via = config
        .proxy
        .as_ref()
        .map(|p| format!(" via proxy {p}"))
        .unwrap_or_default();
    let tally = CallTally::default();
    let sources = match client.sources(&tally).await {
        Ok(sources) => sources,
        Err(error) => return Err(line(&error, client, &host, &via)),
    };
    let entries = match client.entry_details(source, &tally).await {
        Ok(entries) => entries,
        Err(CallError::Auth(_)) => {
            return Err(format!(
                "source: {host}{via} accepted a signed call but refused the signed read of SOURCE_NAME '{source}' (GET /intelfeed?fulldetails=true&source=...): the source name is the cause; how an appliance signs a query holding a space, '&' or other characters that are encoded is not documented, so choose a SOURCE_NAME of letters, digits, '-', '_' and '.'"
            ));
        }
        Err(error) => return Err(line(&error, client, &host, &via)),
    };
    let transport = if config.base_url.scheme() != "https" {
        "the connection is plain HTTP (not encrypted)".to_owned()
    } else if config.trust.verify && !config.trust.cert_sha256.is_empty() {
        "TLS (certificate pinned by DARKTRACE_CERT_SHA256)".to_owned()
    } else if config.trust.verify {
        "TLS".to_owned()
    } else {
        "TLS (certificate NOT verified: ENABLE_SSL_VERIFICATION=false)".to_owned()
    };
    Ok(format!(
        "ok: {host}{via} accepted signed calls: host, {transport}, tokens and clock are right ({} sources; '{source}' holds {} entries); a token without the \"Edit Domains\" permission can still read, so that shows on the first export as darktrace_permission",
        sources.len(),
        entries.len()
    ))
}

/// `what: detail`, where `what` names the part to fix.
fn line(error: &CallError, client: &DarktraceClient, host: &str, via: &str) -> String {
    let detail = error.verdict().detail;
    match error {
        CallError::Auth(_) => format!("tokens: {detail}"),
        CallError::Clock => format!(
            "clock: {detail} (this host's clock says {} UTC)",
            Utc::now().format("%Y-%m-%d %H:%M:%S")
        ),
        CallError::Permission => format!("permission: {detail}"),
        CallError::Tls(_) => match client.last_tls_refusal() {
            Some(refusal) => format!(
                "tls: {host}{via}: {}",
                explain_refusal(&refusal, client.trust_setup())
            ),
            None => format!("tls: {host}{via}: {detail}"),
        },
        CallError::Unavailable(_) | CallError::Timeout => format!("host: {host}{via}: {detail}"),
        CallError::Unexpected(_) => format!("darktrace: {host}{via}: {detail}"),
    }
}

/// ThreatQ's checks when a pull is configured, one line each: a token, then the first page
/// of the collection (its `total`). Each call is made once; the second only after the first
/// passed.
pub async fn threatq(config: &ThreatqConfig) -> Vec<Result<String, String>> {
    let host = config.base_url.as_str().trim_end_matches('/').to_owned();
    let once = ThreatqConfig {
        max_retries: 0,
        ..config.clone()
    };
    let client = match ThreatqClient::new(&once) {
        Ok(client) => client,
        Err(error) => return vec![Err(format!("threatq: {error}"))],
    };
    let grant = match config.auth {
        ThreatqAuth::Password { .. } => "password grant",
        ThreatqAuth::ClientCredentials { .. } => "client credentials grant",
    };
    if let Err(error) = client.authenticate().await {
        return vec![Err(format!("threatq token: {host}: {error}"))];
    }
    let token = Ok(format!(
        "threatq token: ok: {host} granted a token ({grant})"
    ));
    let collection = &config.collection;
    let page = match client.page("*").await {
        Ok(bytes) => match parse_page(&bytes) {
            Ok(page) => Ok(format!(
                "threatq collection: ok: collection {collection} holds {} items (the first page had {})",
                page.total
                    .map_or_else(|| "an unknown number of".to_owned(), |t| t.to_string()),
                page.items.len()
            )),
            Err(why) => Err(format!("threatq collection: {host}: {why}")),
        },
        Err(error) => Err(format!(
            "threatq collection: {host}: collection {collection}: {error}"
        )),
    };
    vec![token, page]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_failure_names_the_part_to_fix() {
        let client = DarktraceClient::new(&DarktraceConfig::new(
            "https://dt.example".parse().unwrap(),
            "pub",
            "priv",
        ))
        .unwrap();
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
            let text = line(&error, &client, "https://dt.example", "");
            assert!(text.starts_with(start), "{text}");
            assert_eq!(text.lines().count(), 1, "{text}");
        }
        assert!(line(&CallError::Permission, &client, "h", "").contains("Edit Domains"));
        assert!(line(&CallError::Clock, &client, "h", "").contains("30 minutes"));
    }
}
