//! The command line: every setting is a flag and an environment variable of the same name.
//!
//! Values arrive here as given; [`crate::config::Config::from_args`] checks them all and
//! turns them into typed settings, so a mistake is reported once, naming the setting.

use std::path::PathBuf;

use clap::{Args, FromArgMatches, Parser, Subcommand};
use secrecy::SecretString;

/// Exports ThreatQ FQDN and IP indicators to Darktrace's Watched Domains (`/intelfeed`).
#[derive(Debug, Parser)]
#[command(
    name = "darktrace-export",
    version,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service (the default).
    Serve(ServeArgs),
    /// Run the Darktrace simulator alone.
    Simulate(crate::simulator::SimulateArgs),
    /// Make two signed reads of Darktrace and say whether host, TLS, tokens, clock and
    /// source name are right; with THREATQ_URL, also sign in to ThreatQ and read the
    /// collection's first page. Changes nothing.
    Check(ServeArgs),
    /// Read the ThreatQ collection (THREATQ_COLLECTION) once and export or sync it; print
    /// the report. Exit 0 when nothing failed, 1 otherwise, 2 on bad configuration.
    Pull(PullArgs),
    /// Run the ThreatQ simulator alone (token and collection endpoints).
    SimulateThreatq(crate::threatq_sim::SimulateThreatqArgs),
    /// GET /healthz of a running service; exit 0 when healthy (the container health check).
    Healthcheck {
        /// What to probe; by default /healthz at the port of LISTEN_ADDR on loopback.
        #[arg(long)]
        url: Option<String>,
        /// The service's listen address, whose port is probed when --url is not given.
        #[arg(long, env = "LISTEN_ADDR")]
        listen_addr: Option<String>,
    },
}

/// The service's settings (SPEC §2). Secrets are read here and never printed back: they are
/// held as [`SecretString`] from the start, so even `Debug` of these arguments redacts them.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Settings")]
pub struct ServeArgs {
    /// Start an in-process Darktrace simulator and use it; no Darktrace or API token needed.
    /// Only for serving: `check` and `pull` refuse it.
    #[arg(long)]
    pub demo: bool,

    /// Darktrace host: host, host:port or https://host[:port].
    #[arg(long, env = "DARKTRACE_HOST")]
    pub darktrace_host: Option<String>,
    /// Darktrace API public token.
    #[arg(long, env = "DARKTRACE_PUBLIC_TOKEN", hide_env_values = true, value_parser = secret)]
    pub darktrace_public_token: Option<SecretString>,
    /// File holding the Darktrace API public token.
    #[arg(long, env = "DARKTRACE_PUBLIC_TOKEN_FILE")]
    pub darktrace_public_token_file: Option<PathBuf>,
    /// Darktrace API private token (the signing key).
    #[arg(long, env = "DARKTRACE_PRIVATE_TOKEN", hide_env_values = true, value_parser = secret)]
    pub darktrace_private_token: Option<SecretString>,
    /// File holding the Darktrace API private token.
    #[arg(long, env = "DARKTRACE_PRIVATE_TOKEN_FILE")]
    pub darktrace_private_token_file: Option<PathBuf>,
    /// Source label given to the entries in Darktrace (1 to 63 characters).
    #[arg(long, env = "SOURCE_NAME", default_value = "ThreatQ")]
    pub source_name: String,
    /// Days until entries expire in Darktrace; 0 = no expiry.
    #[arg(long, env = "DAYS_TO_EXPIRATION", default_value = "0")]
    pub days_to_expiration: String,
    /// Add entries with Darktrace's `iagn: true`, so Autonomous Response may act on them.
    #[arg(long, env = "AUTONOMOUS_RESPONSE", default_value = "false")]
    pub autonomous_response: String,
    /// Darktrace's strength of the entries: 0 to 100, or `score` (ThreatQ's score x 10);
    /// empty = left out.
    #[arg(long, env = "STRENGTH", default_value = "")]
    pub strength: String,
    /// Take an item's expiry from ThreatQ's `expires_at` (else `expires_calculated_at`).
    #[arg(long, env = "EXPIRY_FROM_THREATQ", default_value = "false")]
    pub expiry_from_threatq: String,
    /// Ignore HTTPS_PROXY/HTTP_PROXY/ALL_PROXY/NO_PROXY for Darktrace calls.
    #[arg(long, env = "DISABLE_PROXIES", default_value = "false")]
    pub disable_proxies: String,
    /// Verify Darktrace's TLS certificate.
    #[arg(long, env = "ENABLE_SSL_VERIFICATION", default_value = "true")]
    pub enable_ssl_verification: String,
    /// Most indicators one request may carry.
    #[arg(long, env = "OBJECTS_PER_RUN", default_value = "10000")]
    pub objects_per_run: String,
    /// Address to listen on (default 0.0.0.0:8080, 127.0.0.1:8080 with --demo).
    #[arg(long, env = "LISTEN_ADDR")]
    pub listen_addr: Option<String>,
    /// Comma-separated bearer tokens accepted on /export, /remove, /sync and /pull.
    #[arg(long, env = "API_TOKENS", hide_env_values = true, value_parser = secret)]
    pub api_tokens: Option<SecretString>,
    /// File of bearer tokens, one per line.
    #[arg(long, env = "API_TOKENS_FILE")]
    pub api_tokens_file: Option<PathBuf>,
    /// Serve without bearer tokens (not recommended).
    #[arg(long, env = "ALLOW_UNAUTHENTICATED", default_value = "false")]
    pub allow_unauthenticated: String,
    /// Extra PEM CA bundle to trust for Darktrace.
    #[arg(long, env = "DARKTRACE_CA_FILE")]
    pub darktrace_ca_file: Option<PathBuf>,
    /// Entries per Darktrace call (at most 10000).
    #[arg(long, env = "DARKTRACE_BATCH_SIZE", default_value = "5000")]
    pub darktrace_batch_size: String,
    /// The most Darktrace calls in flight at once, across all requests: the ceiling of an
    /// adaptive limit that starts at 2 and follows the appliance's answers.
    #[arg(long, env = "DARKTRACE_CONCURRENCY", default_value = "8")]
    pub darktrace_concurrency: String,
    /// Timeout of one Darktrace call attempt, in seconds.
    #[arg(long, env = "DARKTRACE_TIMEOUT_SECS", default_value = "30")]
    pub darktrace_timeout_secs: String,
    /// Retries of one call after a retryable failure.
    #[arg(long, env = "DARKTRACE_MAX_RETRIES", default_value = "3")]
    pub darktrace_max_retries: String,
    /// ThreatQ types to export (FQDN, IP Address, IPv6 Address).
    #[arg(long, env = "EXPORT_TYPES", default_value = "FQDN,IP Address")]
    pub export_types: String,
    /// ThreatQ statuses never exported; empty = none.
    #[arg(long, env = "EXCLUDED_STATUSES", default_value = "Whitelisted,Expired")]
    pub excluded_statuses: String,
    /// The only ThreatQ statuses exported; empty = any status not excluded.
    #[arg(long, env = "EXPORT_STATUSES", default_value = "")]
    pub export_statuses: String,
    /// Lowest ThreatQ score exported, 0 to 10; empty = any score, or none.
    #[arg(long, env = "MIN_SCORE", default_value = "")]
    pub min_score: String,
    /// Domains never exported, nor any name under them.
    #[arg(long, env = "PROTECTED_DOMAINS", default_value = "")]
    pub protected_domains: String,
    /// CIDRs never exported, besides the built-in non-routable ranges.
    #[arg(long, env = "PROTECTED_NETWORKS", default_value = "")]
    pub protected_networks: String,
    /// Never export very popular domains nor well-known public DNS resolvers (data/popular/).
    #[arg(long, env = "PROTECT_POPULAR", default_value = "true")]
    pub protect_popular: String,
    /// Allow private, loopback, link-local, CGNAT, multicast and similar addresses.
    #[arg(long, env = "EXPORT_NON_ROUTABLE", default_value = "false")]
    pub export_non_routable: String,
    /// Send FQDNs as hostnames (exact match) instead of domains.
    #[arg(long, env = "FQDN_AS_HOSTNAME", default_value = "false")]
    pub fqdn_as_hostname: String,
    /// Description given to the entries (under 256 characters).
    #[arg(long, env = "DESCRIPTION")]
    pub description: Option<String>,
    /// Largest accepted request body, in bytes.
    #[arg(long, env = "MAX_BODY_BYTES", default_value = "33554432")]
    pub max_body_bytes: String,
    /// /export, /remove and /sync requests served at once; more get 503.
    #[arg(long, env = "MAX_CONCURRENT_EXPORTS", default_value = "64")]
    pub max_concurrent_exports: String,
    /// Time one request may take, in seconds.
    #[arg(long, env = "REQUEST_TIMEOUT_SECS", default_value = "300")]
    pub request_timeout_secs: String,
    /// Time in-flight requests get to finish after SIGTERM/SIGINT, in seconds.
    #[arg(long, env = "SHUTDOWN_GRACE_SECS", default_value = "30")]
    pub shutdown_grace_secs: String,
    /// Most removals a /sync plan may hold without force=true.
    #[arg(long, env = "SYNC_MAX_REMOVALS", default_value = "100")]
    pub sync_max_removals: String,
    /// Log format: json or text.
    #[arg(long, env = "LOG_FORMAT", default_value = "json")]
    pub log_format: String,
    /// Seconds a connection may take to send a request's headers, and may stay idle between
    /// requests.
    #[arg(long, env = "HEADER_READ_TIMEOUT_SECS", default_value = "10")]
    pub header_read_timeout_secs: String,
    /// Seconds a write of an answer may wait for the client to read before the connection
    /// is closed.
    #[arg(long, env = "WRITE_TIMEOUT_SECS", default_value = "30")]
    pub write_timeout_secs: String,
    /// Connections served at once; beyond them new connections wait in the kernel backlog.
    #[arg(long, env = "MAX_CONNECTIONS", default_value = "1024")]
    pub max_connections: String,
    /// Connections beyond MAX_CONNECTIONS that serve /healthz and /readyz only.
    #[arg(long, env = "HEALTH_CONNECTIONS", default_value = "8")]
    pub health_connections: String,
    /// Largest request head (request line and headers) in bytes; at least 8192.
    #[arg(long, env = "MAX_HEADER_BYTES", default_value = "16384")]
    pub max_header_bytes: String,
    /// Most headers one request may carry.
    #[arg(long, env = "MAX_HEADERS", default_value = "64")]
    pub max_headers: String,
    /// SHA-256 fingerprints (comma-separated, as openssl prints them) of the certificate
    /// Darktrace presents; when set, only a certificate with one of them is accepted.
    #[arg(long, env = "DARKTRACE_CERT_SHA256")]
    pub darktrace_cert_sha256: Option<String>,

    /// ThreatQ to pull from: https://host[:port]; unset = no pull.
    #[arg(long, env = "THREATQ_URL")]
    pub threatq_url: Option<String>,
    /// The ThreatQ API client id.
    #[arg(long, env = "THREATQ_CLIENT_ID")]
    pub threatq_client_id: Option<String>,
    /// ThreatQ user e-mail (password grant).
    #[arg(long, env = "THREATQ_EMAIL")]
    pub threatq_email: Option<String>,
    /// ThreatQ user password (password grant).
    #[arg(long, env = "THREATQ_PASSWORD", hide_env_values = true, value_parser = secret)]
    pub threatq_password: Option<SecretString>,
    /// File holding the ThreatQ user password.
    #[arg(long, env = "THREATQ_PASSWORD_FILE")]
    pub threatq_password_file: Option<PathBuf>,
    /// ThreatQ OAuth client secret (client credentials grant, instead of e-mail and password).
    #[arg(long, env = "THREATQ_CLIENT_SECRET", hide_env_values = true, value_parser = secret)]
    pub threatq_client_secret: Option<SecretString>,
    /// File holding the ThreatQ OAuth client secret.
    #[arg(long, env = "THREATQ_CLIENT_SECRET_FILE")]
    pub threatq_client_secret_file: Option<PathBuf>,
    /// The data collection's hash, as in /api/indicators/query/hash/{hash}.
    #[arg(long, env = "THREATQ_COLLECTION")]
    pub threatq_collection: Option<String>,
    /// Items per page read from ThreatQ.
    #[arg(long, env = "THREATQ_PAGE_SIZE", default_value = "1000")]
    pub threatq_page_size: String,
    /// Extra PEM CA bundle to trust for ThreatQ.
    #[arg(long, env = "THREATQ_CA_FILE")]
    pub threatq_ca_file: Option<PathBuf>,
    /// SHA-256 fingerprints of the certificate ThreatQ presents (as for Darktrace).
    #[arg(long, env = "THREATQ_CERT_SHA256")]
    pub threatq_cert_sha256: Option<String>,
    /// Verify ThreatQ's TLS certificate.
    #[arg(long, env = "THREATQ_ENABLE_SSL_VERIFICATION", default_value = "true")]
    pub threatq_enable_ssl_verification: String,
    /// What a pull does: sync (the source made equal to the collection) or export (add and
    /// refresh only).
    #[arg(long, env = "PULL_MODE", default_value = "sync")]
    pub pull_mode: String,
    /// In serve: pull on this schedule, in seconds; 0 = only on POST /pull.
    #[arg(long, env = "PULL_INTERVAL_SECS", default_value = "0")]
    pub pull_interval_secs: String,
}

/// `pull`: the service's settings, and what this one run may do.
#[derive(Debug, Clone, Args)]
pub struct PullArgs {
    /// Print the plan and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Carry out a sync plan over SYNC_MAX_REMOVALS (or one that empties the source).
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub serve: ServeArgs,
}

impl ServeArgs {
    /// The settings as they are when nothing is given: the `default_value`s above, and
    /// nothing from the environment. The one source of the documented defaults: the typed
    /// defaults of [`crate::config`] are parsed from these.
    pub fn defaults() -> ServeArgs {
        let command = ServeArgs::augment_args(clap::Command::new("darktrace-export"))
            .mut_args(|arg| arg.env(None));
        let matches = command
            .try_get_matches_from(["darktrace-export"])
            .expect("the defaults parse");
        ServeArgs::from_arg_matches(&matches).expect("the defaults parse")
    }
}

/// Wraps a secret flag or variable as soon as it is read.
fn secret(raw: &str) -> Result<SecretString, std::convert::Infallible> {
    Ok(SecretString::from(raw))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_of_the_arguments_shows_no_secret() {
        let cli = Cli::try_parse_from([
            "darktrace-export",
            "--darktrace-public-token",
            "public-abc-123",
            "--darktrace-private-token",
            "private-def-456",
            "--api-tokens",
            "api-ghi-789",
            "--threatq-password",
            "tq-pass-jkl-012",
            "--threatq-client-secret",
            "tq-secret-mno-345",
        ])
        .unwrap();
        let text = format!("{cli:?}");
        for secret in [
            "public-abc-123",
            "private-def-456",
            "api-ghi-789",
            "tq-pass-jkl-012",
            "tq-secret-mno-345",
        ] {
            assert!(!text.contains(secret), "{secret} shows in {text}");
        }
        assert!(text.contains("REDACTED"), "{text}");
    }
}
