//! Typed settings, checked once at start. A bad value stops the service with one line naming
//! the setting ([`ConfigError`]); nothing downstream re-checks them.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use ipnet::IpNet;
use reqwest::Url;
use secrecy::{ExposeSecret, SecretString};

use crate::cli::ServeArgs;
use crate::darktrace::proxy::{ProxyEnv, ProxyRoute};
use crate::darktrace::retry::Backoff;
use crate::darktrace::tls::Fingerprint;
use crate::indicator::{Fqdn, IndicatorType};

/// A setting that is missing or wrong; printed as `SETTING: problem`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{setting}: {problem}")]
pub struct ConfigError {
    pub setting: &'static str,
    pub problem: String,
}

impl ConfigError {
    pub fn new(setting: &'static str, problem: impl Into<String>) -> Self {
        ConfigError {
            setting,
            problem: problem.into(),
        }
    }
}

/// How to reach and sign for Darktrace.
#[derive(Debug, Clone)]
pub struct DarktraceConfig {
    /// Scheme, host and port only.
    pub base_url: Url,
    pub public_token: SecretString,
    pub private_token: SecretString,
    pub disable_proxies: bool,
    /// The proxy Darktrace calls go through, chosen at start from the proxy variables
    /// (`None`: direct, also whenever `disable_proxies` is set).
    pub proxy: Option<ProxyRoute>,
    pub verify_tls: bool,
    /// PEM bytes of extra CAs to trust.
    pub ca_pem: Option<Vec<u8>>,
    pub batch_size: usize,
    pub concurrency: usize,
    pub timeout: Duration,
    pub max_retries: u32,
    /// Waits between retries. Not a setting: the default suits Darktrace; tests shorten it.
    pub backoff: Backoff,
    /// `DARKTRACE_CERT_SHA256`: when not empty, the only certificates Darktrace may present.
    pub cert_sha256: Vec<Fingerprint>,
}

impl DarktraceConfig {
    /// Darktrace settings with the documented defaults (those of the command line, see
    /// [`ServeArgs::defaults`]) for everything but where and who.
    pub fn new(base_url: Url, public_token: &str, private_token: &str) -> Self {
        DarktraceConfig::from_args(
            &ServeArgs::defaults(),
            base_url,
            SecretString::from(public_token.to_owned()),
            SecretString::from(private_token.to_owned()),
            &ProxyEnv::default(),
        )
        .expect("the documented defaults are valid")
    }

    /// Everything about Darktrace but its host and tokens, from the settings.
    fn from_args(
        args: &ServeArgs,
        base_url: Url,
        public_token: SecretString,
        private_token: SecretString,
        proxy_env: &ProxyEnv,
    ) -> Result<Self, ConfigError> {
        let ca_pem = match &args.darktrace_ca_file {
            Some(path) => Some(std::fs::read(path).map_err(|e| {
                ConfigError::new(
                    "DARKTRACE_CA_FILE",
                    format!("cannot read {}: {e}", path.display()),
                )
            })?),
            None => None,
        };
        if let Some(pem) = &ca_pem {
            crate::darktrace::tls::ca_certificates(pem)?;
        }
        let disable_proxies = parse_bool("DISABLE_PROXIES", &args.disable_proxies)?;
        let proxy = if disable_proxies {
            None
        } else {
            proxy_env.route_for(&base_url)?
        };
        Ok(DarktraceConfig {
            base_url,
            public_token,
            private_token,
            disable_proxies,
            proxy,
            verify_tls: parse_bool("ENABLE_SSL_VERIFICATION", &args.enable_ssl_verification)?,
            ca_pem,
            batch_size: parse_number(
                "DARKTRACE_BATCH_SIZE",
                &args.darktrace_batch_size,
                1,
                100_000,
            )?,
            concurrency: parse_number(
                "DARKTRACE_CONCURRENCY",
                &args.darktrace_concurrency,
                1,
                256,
            )?,
            timeout: Duration::from_secs(parse_number(
                "DARKTRACE_TIMEOUT_SECS",
                &args.darktrace_timeout_secs,
                1,
                3600,
            )?),
            max_retries: parse_number("DARKTRACE_MAX_RETRIES", &args.darktrace_max_retries, 0, 10)?,
            backoff: Backoff::default(),
            cert_sha256: match &args.darktrace_cert_sha256 {
                Some(raw) => crate::darktrace::tls::parse_pins(raw)?,
                None => Vec::new(),
            },
        })
    }
}

/// Which indicators go, and which never do.
#[derive(Debug, Clone)]
pub struct ScreenConfig {
    pub export_types: Vec<IndicatorType>,
    /// Lowercased, trimmed status names.
    pub excluded_statuses: Vec<String>,
    pub protected_domains: Vec<Fqdn>,
    pub protected_networks: Vec<IpNet>,
    pub export_non_routable: bool,
    pub fqdn_as_hostname: bool,
}

impl Default for ScreenConfig {
    /// The documented defaults: those of the command line (see [`ServeArgs::defaults`]).
    fn default() -> Self {
        ScreenConfig::from_args(&ServeArgs::defaults()).expect("the documented defaults are valid")
    }
}

impl ScreenConfig {
    fn from_args(args: &ServeArgs) -> Result<Self, ConfigError> {
        Ok(ScreenConfig {
            export_types: parse_export_types(&args.export_types)?,
            excluded_statuses: split_list(&args.excluded_statuses)
                .map(|s| s.to_lowercase())
                .collect(),
            protected_domains: split_list(&args.protected_domains)
                .map(|d| {
                    Fqdn::parse(d)
                        .map_err(|e| ConfigError::new("PROTECTED_DOMAINS", format!("'{d}' {e}")))
                })
                .collect::<Result<_, _>>()?,
            protected_networks: split_list(&args.protected_networks)
                .map(parse_network)
                .collect::<Result<_, _>>()?,
            export_non_routable: parse_bool("EXPORT_NON_ROUTABLE", &args.export_non_routable)?,
            fqdn_as_hostname: parse_bool("FQDN_AS_HOSTNAME", &args.fqdn_as_hostname)?,
        })
    }
}

/// The defaults of a request, each overridable per request.
#[derive(Debug, Clone)]
pub struct ExportDefaults {
    pub source: String,
    pub days_to_expiration: u32,
    pub description: Option<String>,
}

impl Default for ExportDefaults {
    /// The documented defaults: those of the command line (see [`ServeArgs::defaults`]).
    fn default() -> Self {
        ExportDefaults::from_args(&ServeArgs::defaults())
            .expect("the documented defaults are valid")
    }
}

impl ExportDefaults {
    fn from_args(args: &ServeArgs) -> Result<Self, ConfigError> {
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
        })
    }
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
    fn from_args(args: &ServeArgs) -> Result<Self, ConfigError> {
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Text,
}

/// Everything the service needs, checked.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen_addr: SocketAddr,
    pub darktrace: DarktraceConfig,
    pub screen: ScreenConfig,
    pub defaults: ExportDefaults,
    pub limits: Limits,
    /// Accepted bearer tokens; empty only when unauthenticated use was allowed.
    pub api_tokens: Vec<SecretString>,
    pub allow_unauthenticated: bool,
    pub log_format: LogFormat,
}

impl Config {
    /// A configuration with every documented default, for the given Darktrace; used by
    /// tests and `--demo`. Unauthenticated until tokens are added.
    pub fn new(darktrace: DarktraceConfig) -> Self {
        Config {
            listen_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            darktrace,
            screen: ScreenConfig::default(),
            defaults: ExportDefaults::default(),
            limits: Limits::default(),
            api_tokens: Vec::new(),
            allow_unauthenticated: true,
            log_format: LogFormat::Text,
        }
    }

    /// Checks every setting, with the proxy variables of the process environment; the
    /// first problem found is returned.
    pub fn from_args(args: &ServeArgs) -> Result<Config, ConfigError> {
        Config::from_args_with(args, &ProxyEnv::from_env())
    }

    /// [`Config::from_args`] with the proxy variables given, so tests need not change the
    /// process environment.
    pub fn from_args_with(args: &ServeArgs, proxy_env: &ProxyEnv) -> Result<Config, ConfigError> {
        let demo = args.demo;
        let base_url = match &args.darktrace_host {
            Some(host) => parse_darktrace_host(host)?,
            None => {
                return Err(ConfigError::new(
                    "DARKTRACE_HOST",
                    "not set; give the Darktrace appliance's host (or run with --demo)",
                ));
            }
        };
        let public_token = secret_setting(
            "DARKTRACE_PUBLIC_TOKEN",
            args.darktrace_public_token
                .as_ref()
                .map(ExposeSecret::expose_secret),
            args.darktrace_public_token_file.as_deref(),
        )?;
        let private_token = secret_setting(
            "DARKTRACE_PRIVATE_TOKEN",
            args.darktrace_private_token
                .as_ref()
                .map(ExposeSecret::expose_secret),
            args.darktrace_private_token_file.as_deref(),
        )?;
        let darktrace =
            DarktraceConfig::from_args(args, base_url, public_token, private_token, proxy_env)?;

        let screen = ScreenConfig::from_args(args)?;
        let defaults = ExportDefaults::from_args(args)?;

        let limits = Limits::from_args(args)?;

        let mut api_tokens: Vec<SecretString> = args
            .api_tokens
            .as_ref()
            .map(|t| split_list(t.expose_secret()))
            .into_iter()
            .flatten()
            .map(|t| SecretString::from(t.to_owned()))
            .collect();
        if let Some(path) = &args.api_tokens_file {
            let text = read_setting_file("API_TOKENS_FILE", path)?;
            api_tokens.extend(
                text.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .map(|t| SecretString::from(t.to_owned())),
            );
        }
        let allow_unauthenticated =
            parse_bool("ALLOW_UNAUTHENTICATED", &args.allow_unauthenticated)? || demo;
        if api_tokens.is_empty() && !allow_unauthenticated {
            return Err(ConfigError::new(
                "API_TOKENS",
                "no bearer token set; set API_TOKENS (or API_TOKENS_FILE), or ALLOW_UNAUTHENTICATED=true to serve without one",
            ));
        }

        let listen_addr = match &args.listen_addr {
            Some(addr) => addr.trim().parse().map_err(|_| {
                ConfigError::new(
                    "LISTEN_ADDR",
                    format!("'{addr}' is not an address like 0.0.0.0:8080"),
                )
            })?,
            None if demo => SocketAddr::from(([127, 0, 0, 1], 8080)),
            None => DEFAULT_LISTEN_ADDR.parse().expect("a valid default"),
        };
        if demo && api_tokens.is_empty() && !listen_addr.ip().is_loopback() {
            return Err(ConfigError::new(
                "LISTEN_ADDR",
                "--demo without API_TOKENS listens on loopback only (127.0.0.1 or ::1)",
            ));
        }

        let log_format = match args.log_format.trim().to_ascii_lowercase().as_str() {
            "json" => LogFormat::Json,
            "text" => LogFormat::Text,
            other => {
                return Err(ConfigError::new(
                    "LOG_FORMAT",
                    format!("'{other}' is neither json nor text"),
                ));
            }
        };

        Ok(Config {
            listen_addr,
            darktrace,
            screen,
            defaults,
            limits,
            api_tokens,
            allow_unauthenticated,
            log_format,
        })
    }
}

/// Where the service listens unless `LISTEN_ADDR` says otherwise (loopback in `--demo`).
pub const DEFAULT_LISTEN_ADDR: &str = "0.0.0.0:8080";

/// Longest expiry a request may ask for: ten years.
pub const MAX_DAYS_TO_EXPIRATION: u32 = 3650;

/// `host`, `host:port`, `https://host[:port]` or `http://…` → a base URL. No scheme means https.
pub fn parse_darktrace_host(raw: &str) -> Result<Url, ConfigError> {
    let fail = |p: String| ConfigError::new("DARKTRACE_HOST", p);
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(fail("is empty".into()));
    }
    let with_scheme = if raw.contains("://") {
        raw.to_owned()
    } else {
        format!("https://{raw}")
    };
    // The value is not echoed: a URL that fails to parse may still hold a password.
    let url = Url::parse(&with_scheme).map_err(|e| {
        fail(format!(
            "is not a host, host:port or https://host[:port] ({e})"
        ))
    })?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(fail(format!(
            "scheme '{}' is not https or http",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(fail(format!("'{raw}' has no host")));
    }
    if !(url.path() == "/" || url.path().is_empty()) || url.query().is_some() {
        return Err(fail(format!(
            "'{raw}' has a path or query; give the host (and port) only"
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(fail(
            "must not hold credentials; use the token settings".into(),
        ));
    }
    Ok(url)
}

/// Source names: 1 to 63 characters, no control characters (SPEC §2; Darktrace: under 64).
pub fn check_source_name(raw: &str) -> Result<String, String> {
    let name = raw.trim();
    let len = name.chars().count();
    if len == 0 {
        return Err("is empty; give 1 to 63 characters".into());
    }
    if len > 63 {
        return Err(format!("is {len} characters; at most 63"));
    }
    if name.chars().any(char::is_control) {
        return Err("holds control characters".into());
    }
    Ok(name.to_owned())
}

/// Descriptions: under 256 characters, no control characters.
pub fn check_description(raw: &str) -> Result<String, String> {
    let len = raw.chars().count();
    if len >= 256 {
        return Err(format!("is {len} characters; it must be under 256"));
    }
    if raw.chars().any(|c| c.is_control() && c != '\n') {
        return Err("holds control characters".into());
    }
    Ok(raw.to_owned())
}

fn secret_setting(
    setting: &'static str,
    value: Option<&str>,
    file: Option<&Path>,
) -> Result<SecretString, ConfigError> {
    let value = match (value, file) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::new(
                setting,
                format!("set both {setting} and {setting}_FILE; give one"),
            ));
        }
        (Some(v), None) => v.trim().to_owned(),
        (None, Some(path)) => {
            let file_setting: &'static str = if setting == "DARKTRACE_PUBLIC_TOKEN" {
                "DARKTRACE_PUBLIC_TOKEN_FILE"
            } else {
                "DARKTRACE_PRIVATE_TOKEN_FILE"
            };
            read_setting_file(file_setting, path)?.trim().to_owned()
        }
        (None, None) => {
            return Err(ConfigError::new(
                setting,
                format!("not set; set {setting} or {setting}_FILE (or run with --demo)"),
            ));
        }
    };
    if value.is_empty() {
        return Err(ConfigError::new(setting, "is empty"));
    }
    Ok(SecretString::from(value))
}

fn read_setting_file(setting: &'static str, path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new(setting, format!("cannot read {}: {e}", path.display())))
}

/// `true`/`false` (also `1`/`0`, `yes`/`no`, `on`/`off`), case-insensitive.
pub fn parse_bool(setting: &'static str, raw: &str) -> Result<bool, ConfigError> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(ConfigError::new(
            setting,
            format!("'{raw}' is not true or false"),
        )),
    }
}

fn parse_number<T>(setting: &'static str, raw: &str, min: T, max: T) -> Result<T, ConfigError>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
{
    let value: T = raw
        .trim()
        .parse()
        .map_err(|_| ConfigError::new(setting, format!("'{raw}' is not a whole number")))?;
    if value < min || value > max {
        return Err(ConfigError::new(
            setting,
            format!("{value} is out of range; give {min} to {max}"),
        ));
    }
    Ok(value)
}

fn split_list(raw: &str) -> impl Iterator<Item = &str> {
    raw.split([',', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn parse_export_types(raw: &str) -> Result<Vec<IndicatorType>, ConfigError> {
    let mut types = Vec::new();
    for name in split_list(raw) {
        let kind = IndicatorType::from_threatq_name(name).ok_or_else(|| {
            ConfigError::new(
                "EXPORT_TYPES",
                format!("'{name}' is not exportable; choose from FQDN, IP Address, IPv6 Address"),
            )
        })?;
        if !types.contains(&kind) {
            types.push(kind);
        }
    }
    if types.is_empty() {
        return Err(ConfigError::new(
            "EXPORT_TYPES",
            "is empty; nothing would be exported",
        ));
    }
    Ok(types)
}

fn parse_network(raw: &str) -> Result<IpNet, ConfigError> {
    raw.parse::<IpNet>()
        .or_else(|_| raw.parse::<std::net::IpAddr>().map(IpNet::from))
        .map(|net| net.trunc())
        .map_err(|_| {
            ConfigError::new(
                "PROTECTED_NETWORKS",
                format!("'{raw}' is not a CIDR like 203.0.113.0/24"),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn args(extra: &[&str]) -> ServeArgs {
        let mut argv = vec![
            "darktrace-export",
            "--darktrace-host",
            "dt.example",
            "--darktrace-public-token",
            "pub",
            "--darktrace-private-token",
            "priv",
            "--api-tokens",
            "t1, t2",
        ];
        argv.extend_from_slice(extra);
        crate::cli::Cli::try_parse_from(argv).unwrap().serve
    }

    /// Loads settings as if no proxy variable were set, whatever this host has.
    fn load(args: &ServeArgs) -> Result<Config, ConfigError> {
        Config::from_args_with(args, &ProxyEnv::default())
    }

    #[test]
    fn a_proxy_variable_is_used_unless_proxies_are_disabled() {
        let env = ProxyEnv::from_lookup(|name| {
            (name == "https_proxy").then(|| "http://proxy.corp.example:3128".to_owned())
        });
        let config = Config::from_args_with(&args(&[]), &env).unwrap();
        assert_eq!(
            config.darktrace.proxy.unwrap().to_string(),
            "http://proxy.corp.example:3128 (from https_proxy)"
        );
        let config = Config::from_args_with(&args(&["--disable-proxies", "true"]), &env).unwrap();
        assert!(config.darktrace.proxy.is_none());
        assert!(config.darktrace.disable_proxies);
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let config = load(&args(&[])).unwrap();
        assert_eq!(config.darktrace.base_url.as_str(), "https://dt.example/");
        assert_eq!(config.defaults.source, "ThreatQ");
        assert_eq!(config.defaults.days_to_expiration, 0);
        assert!(config.darktrace.verify_tls);
        assert!(!config.darktrace.disable_proxies);
        assert_eq!(config.limits.objects_per_run, 10_000);
        assert_eq!(config.darktrace.batch_size, 1000);
        assert_eq!(config.api_tokens.len(), 2);
        assert_eq!(config.listen_addr.to_string(), "0.0.0.0:8080");
        // The typed defaults tests build with are the command line's, not a second copy.
        let typed = Config::new(DarktraceConfig::new(
            "https://dt.example".parse().unwrap(),
            "p",
            "s",
        ));
        assert_eq!(
            format!("{:?}", typed.limits),
            format!("{:?}", config.limits)
        );
        assert_eq!(
            format!("{:?}", typed.screen),
            format!("{:?}", config.screen)
        );
        assert_eq!(
            format!("{:?}", typed.defaults),
            format!("{:?}", config.defaults)
        );
        assert_eq!(typed.darktrace.batch_size, config.darktrace.batch_size);
        assert_eq!(typed.darktrace.concurrency, config.darktrace.concurrency);
        assert_eq!(typed.darktrace.timeout, config.darktrace.timeout);
        assert_eq!(typed.darktrace.max_retries, config.darktrace.max_retries);
    }

    #[test]
    fn host_forms_are_understood() {
        assert_eq!(
            parse_darktrace_host("dt.example:8443").unwrap().as_str(),
            "https://dt.example:8443/"
        );
        assert_eq!(
            parse_darktrace_host("http://127.0.0.1:9000")
                .unwrap()
                .as_str(),
            "http://127.0.0.1:9000/"
        );
        assert!(parse_darktrace_host("ftp://dt.example").is_err());
        assert!(parse_darktrace_host("https://dt.example/intelfeed").is_err());
    }

    #[test]
    fn each_bad_setting_is_named() {
        let cases: &[(&[&str], &str)] = &[
            (&["--source-name", &"x".repeat(64)], "SOURCE_NAME"),
            (&["--days-to-expiration=-1"], "DAYS_TO_EXPIRATION"),
            (&["--objects-per-run", "0"], "OBJECTS_PER_RUN"),
            (
                &["--enable-ssl-verification", "maybe"],
                "ENABLE_SSL_VERIFICATION",
            ),
            (&["--export-types", "MD5"], "EXPORT_TYPES"),
            (
                &["--protected-networks", "10.0.0.0/33"],
                "PROTECTED_NETWORKS",
            ),
            (&["--description", &"d".repeat(256)], "DESCRIPTION"),
            (&["--log-format", "xml"], "LOG_FORMAT"),
            (&["--listen-addr", "nowhere"], "LISTEN_ADDR"),
            (&["--darktrace-batch-size", "0"], "DARKTRACE_BATCH_SIZE"),
            (
                &["--darktrace-cert-sha256", "AB:CD"],
                "DARKTRACE_CERT_SHA256",
            ),
        ];
        for (extra, setting) in cases {
            let err = load(&args(extra)).unwrap_err();
            assert_eq!(err.setting, *setting, "{extra:?}: {err}");
        }
    }

    #[test]
    fn no_api_token_is_refused_unless_allowed() {
        let mut a = args(&[]);
        a.api_tokens = None;
        assert_eq!(load(&a).unwrap_err().setting, "API_TOKENS");
        a.allow_unauthenticated = "true".into();
        assert!(load(&a).is_ok());
    }

    #[test]
    fn secrets_do_not_show_in_debug() {
        let mut a = args(&[]);
        a.darktrace_private_token = Some("s3cr3t-value".into());
        a.darktrace_public_token = Some("pub-value-123".into());
        a.api_tokens = Some("api-token-xyz".into());
        let text = format!("{:?}", load(&a).unwrap());
        for secret in ["s3cr3t-value", "pub-value-123", "api-token-xyz"] {
            assert!(!text.contains(secret), "{secret} leaked into Debug");
        }
    }

    #[test]
    fn a_host_that_fails_to_parse_is_not_echoed() {
        let err =
            parse_darktrace_host("https://admin:hunter2-secret@dt.example:99999").unwrap_err();
        assert_eq!(err.setting, "DARKTRACE_HOST");
        assert!(!err.to_string().contains("hunter2-secret"), "{err}");
    }
}
