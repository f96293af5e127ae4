//! The defaults of a request, and the bounds on what one caller can make the service do.

use std::time::Duration;

use crate::cli::ServeArgs;
use crate::pipeline::Strength;

use super::ConfigError;
use super::parse::{
    MAX_DAYS_TO_EXPIRATION, check_description, check_source_name, parse_bool, parse_number,
};

/// The defaults of a request, each overridable per request.
#[derive(Debug, Clone)]
pub struct ExportDefaults {
    pub source: String,
    pub days_to_expiration: u32,
    pub description: Option<String>,
    /// Entries are added with `iagn: true` (Autonomous Response may act on them).
    pub autonomous_response: bool,
    /// Darktrace's strength of the entries; `None` leaves it out.
    pub strength: Option<Strength>,
}

impl Default for ExportDefaults {
    /// The documented defaults: those of the command line (see [`ServeArgs::defaults`]).
    fn default() -> Self {
        ExportDefaults::from_args(&ServeArgs::defaults())
            .expect("the documented defaults are valid")
    }
}

impl ExportDefaults {
    pub(super) fn from_args(args: &ServeArgs) -> Result<Self, ConfigError> {
        Ok(ExportDefaults {
            source: check_source_name(&args.source_name)
                .map_err(|p| ConfigError::new("SOURCE_NAME", p))?,
            days_to_expiration: parse_number(
                "DAYS_TO_EXPIRATION",
                &args.days_to_expiration,
                0,
                MAX_DAYS_TO_EXPIRATION,
            )?,
            description: args
                .description
                .as_deref()
                .map(check_description)
                .transpose()
                .map_err(|p| ConfigError::new("DESCRIPTION", p))?,
            autonomous_response: parse_bool("AUTONOMOUS_RESPONSE", &args.autonomous_response)?,
            strength: parse_strength(&args.strength)?,
        })
    }
}

/// `STRENGTH`: empty (none), `score`, or a whole number 0 to 100.
fn parse_strength(raw: &str) -> Result<Option<Strength>, ConfigError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    if raw.eq_ignore_ascii_case("score") {
        return Ok(Some(Strength::Score));
    }
    if raw.parse::<u8>().is_err() && raw.parse::<i64>().is_err() {
        return Err(ConfigError::new(
            "STRENGTH",
            format!("'{raw}' is neither a whole number 0 to 100 nor score"),
        ));
    }
    parse_number("STRENGTH", raw, 0, 100).map(|n| Some(Strength::Fixed(n)))
}

/// Bounds on what one caller can make the service do.
#[derive(Debug, Clone)]
pub struct Limits {
    pub objects_per_run: usize,
    pub max_body_bytes: usize,
    pub max_concurrent_exports: usize,
    pub request_timeout: Duration,
    pub shutdown_grace: Duration,
    pub sync_max_removals: usize,
    pub header_read_timeout: Duration,
    pub write_timeout: Duration,
    pub max_connections: usize,
    pub health_connections: usize,
    pub max_header_bytes: usize,
    pub max_headers: usize,
}

impl Default for Limits {
    /// The documented defaults: those of the command line (see [`ServeArgs::defaults`]).
    fn default() -> Self {
        Limits::from_args(&ServeArgs::defaults()).expect("the documented defaults are valid")
    }
}

impl Limits {
    pub(super) fn from_args(args: &ServeArgs) -> Result<Self, ConfigError> {
        Ok(Limits {
            objects_per_run: parse_number("OBJECTS_PER_RUN", &args.objects_per_run, 1, 10_000_000)?,
            max_body_bytes: parse_number("MAX_BODY_BYTES", &args.max_body_bytes, 1, 1 << 32)?,
            max_concurrent_exports: parse_number(
                "MAX_CONCURRENT_EXPORTS",
                &args.max_concurrent_exports,
                1,
                100_000,
            )?,
            request_timeout: Duration::from_secs(parse_number(
                "REQUEST_TIMEOUT_SECS",
                &args.request_timeout_secs,
                1,
                86_400,
            )?),
            shutdown_grace: Duration::from_secs(parse_number(
                "SHUTDOWN_GRACE_SECS",
                &args.shutdown_grace_secs,
                0,
                3600,
            )?),
            sync_max_removals: parse_number(
                "SYNC_MAX_REMOVALS",
                &args.sync_max_removals,
                0,
                10_000_000,
            )?,
            header_read_timeout: Duration::from_secs(parse_number(
                "HEADER_READ_TIMEOUT_SECS",
                &args.header_read_timeout_secs,
                1,
                3600,
            )?),
            write_timeout: Duration::from_secs(parse_number(
                "WRITE_TIMEOUT_SECS",
                &args.write_timeout_secs,
                1,
                3600,
            )?),
            max_connections: parse_number("MAX_CONNECTIONS", &args.max_connections, 1, 1_000_000)?,
            health_connections: parse_number(
                "HEALTH_CONNECTIONS",
                &args.health_connections,
                0,
                1024,
            )?,
            max_header_bytes: parse_number(
                "MAX_HEADER_BYTES",
                &args.max_header_bytes,
                crate::http::server::MIN_HEADER_BYTES,
                16 * 1024 * 1024,
            )?,
            max_headers: parse_number("MAX_HEADERS", &args.max_headers, 1, 10_000)?,
        })
    }
}
