//! Typed settings, checked once at start. A bad value stops the service with one line naming
//! the setting ([`ConfigError`]); nothing downstream re-checks them. Each part of the
//! settings is a file: [`darktrace`], [`screen`], [`limits`]; [`parse`] reads one value.

mod darktrace;
mod limits;
mod parse;
mod screen;
mod threatq;
mod trust;
mod unknown;

pub use darktrace::DarktraceConfig;
pub use limits::{ExportDefaults, Limits};
pub use parse::{
    DEFAULT_LISTEN_ADDR, MAX_DAYS_TO_EXPIRATION, check_description, check_source_name, parse_bool,
    parse_darktrace_host,
};
pub use screen::ScreenConfig;
pub use threatq::{PullMode, ThreatqAuth, ThreatqConfig};
pub use trust::{DARKTRACE_TRUST, THREATQ_TRUST, TlsTrust, TrustNames};
pub use unknown::warn_about_unknown_settings;

use std::net::SocketAddr;

use secrecy::{ExposeSecret, SecretString};

use crate::cli::ServeArgs;
use crate::darktrace::proxy::ProxyEnv;

use parse::{SecretKind, checked_secret, read_setting_file, secret_setting, split_list};

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
    /// The ThreatQ collection a pull reads; `None` when `THREATQ_URL` is not set.
    pub threatq: Option<ThreatqConfig>,
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
            threatq: None,
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

        let mut api_tokens: Vec<SecretString> = Vec::new();
        for token in args
            .api_tokens
            .as_ref()
            .map(|t| split_list(t.expose_secret()))
            .into_iter()
            .flatten()
        {
            let token = checked_secret("API_TOKENS", token, SecretKind::Token)?;
            api_tokens.push(SecretString::from(token));
        }
        if let Some(path) = &args.api_tokens_file {
            let text = read_setting_file("API_TOKENS_FILE", path)?;
            for token in text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
            {
                let token = checked_secret("API_TOKENS_FILE", token, SecretKind::Token)?;
                api_tokens.push(SecretString::from(token));
            }
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

        let threatq = ThreatqConfig::from_args(args, darktrace.timeout, darktrace.max_retries)?;

        Ok(Config {
            threatq,
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

    /// A token file saved with a byte order mark, a second line, quotes or two tokens on a
    /// line stops the start naming the file's setting, never showing the token.
    #[test]
    fn a_damaged_token_file_is_refused_by_name_at_start() {
        let dir = std::env::temp_dir().join(format!("token-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = |name: &str, text: &str| {
            let path = dir.join(name);
            std::fs::write(&path, text).unwrap();
            path.to_str().unwrap().to_owned()
        };
        let private = |text: &str| {
            let path = file("private", text);
            let argv = [
                "darktrace-export",
                "--darktrace-host",
                "dt.example",
                "--darktrace-public-token",
                "pub",
                "--darktrace-private-token-file",
                path.as_str(),
                "--api-tokens",
                "t1",
            ];
            load(&crate::cli::Cli::try_parse_from(argv).unwrap().serve)
        };
        assert!(
            private("secret-key\r\n").is_ok(),
            "a line ending is trimmed"
        );
        for damaged in [
            "\u{feff}secret-key\n",
            "secret-key\nsecond line\n",
            "\"secret-key\"\n",
            "secret key\n",
        ] {
            let err = private(damaged).unwrap_err();
            assert_eq!(err.setting, "DARKTRACE_PRIVATE_TOKEN_FILE", "{damaged:?}");
            assert!(!err.to_string().contains("secret-key"), "{err}");
        }
        let tokens = file("tokens", "# rotated monthly\nAPIF_1\nAPIF_2 APIF_3\n");
        let err = load(&args(&["--api-tokens-file", tokens.as_str()])).unwrap_err();
        assert_eq!(err.setting, "API_TOKENS_FILE");
        assert!(!err.to_string().contains("APIF"), "{err}");
        let mut spaced = args(&[]);
        spaced.api_tokens = Some(SecretString::from("t1, t 2"));
        let err = load(&spaced).unwrap_err();
        assert_eq!(err.setting, "API_TOKENS");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn protected_domains_separated_by_semicolons_say_to_use_commas() {
        let err = load(&args(&["--protected-domains", "a.example;b.example"])).unwrap_err();
        assert_eq!(err.setting, "PROTECTED_DOMAINS");
        assert!(
            err.problem.contains("separate the names with commas"),
            "{err}"
        );
        let config = load(&args(&["--protected-domains", "a.example, b.example"])).unwrap();
        assert_eq!(config.screen.protected_domains.len(), 2);
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let config = load(&args(&[])).unwrap();
        assert_eq!(config.darktrace.base_url.as_str(), "https://dt.example/");
        assert_eq!(config.defaults.source, "ThreatQ");
        assert_eq!(config.defaults.days_to_expiration, 0);
        assert!(config.darktrace.trust.verify);
        assert!(!config.darktrace.disable_proxies);
        assert_eq!(config.limits.objects_per_run, 10_000);
        assert_eq!(config.darktrace.batch_size, 5000);
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
