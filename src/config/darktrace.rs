//! Where Darktrace is, who the service is to it, and how it is called.

use std::time::Duration;

use reqwest::Url;
use secrecy::SecretString;

use crate::cli::ServeArgs;
use crate::darktrace::proxy::{ProxyEnv, ProxyRoute};
use crate::darktrace::retry::Backoff;

use super::ConfigError;
use super::parse::{parse_bool, parse_number};
use super::trust::{DARKTRACE_TRUST, TlsTrust};

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
    /// `ENABLE_SSL_VERIFICATION`, `DARKTRACE_CA_FILE`, `DARKTRACE_CERT_SHA256`.
    pub trust: TlsTrust,
    pub batch_size: usize,
    pub concurrency: usize,
    pub timeout: Duration,
    pub max_retries: u32,
    /// Waits between retries. Not a setting: the default suits Darktrace; tests shorten it.
    pub backoff: Backoff,
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
    pub(super) fn from_args(
        args: &ServeArgs,
        base_url: Url,
        public_token: SecretString,
        private_token: SecretString,
        proxy_env: &ProxyEnv,
    ) -> Result<Self, ConfigError> {
        let trust = TlsTrust::read(
            DARKTRACE_TRUST,
            &args.enable_ssl_verification,
            args.darktrace_ca_file.as_deref(),
            args.darktrace_cert_sha256.as_deref(),
        )?;
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
            trust,
            batch_size: parse_number(
                "DARKTRACE_BATCH_SIZE",
                &args.darktrace_batch_size,
                1,
                10_000,
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
        })
    }
}
