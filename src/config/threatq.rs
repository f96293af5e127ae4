//! Where ThreatQ is, who the service is to it, and what a pull reads and does.
//! Unset `THREATQ_URL` means no pull; once it is set the rest must be complete.

use std::path::Path;
use std::time::Duration;

use reqwest::Url;
use secrecy::SecretString;

use super::trust::{THREATQ_TRUST, TlsTrust};
use crate::cli::ServeArgs;

use super::ConfigError;
use super::parse::{SecretKind, checked_secret, parse_number, read_setting_file};

/// How the service proves who it is to ThreatQ's `/api/token`.
#[derive(Debug, Clone)]
pub enum ThreatqAuth {
    /// `grant_type=password`: a ThreatQ user.
    Password {
        email: String,
        password: SecretString,
    },
    /// `grant_type=client_credentials`: HTTP Basic `client_id:client_secret`.
    ClientCredentials { secret: SecretString },
}

/// What a pull does with the collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullMode {
    /// The source made equal to the collection (`/sync`'s rules and cap).
    Sync,
    /// Add and refresh only (`/export`).
    Export,
}

impl PullMode {
    pub fn as_str(self) -> &'static str {
        match self {
            PullMode::Sync => "sync",
            PullMode::Export => "export",
        }
    }
}

/// ThreatQ's address, credentials, collection, and the pull's mode and schedule.
#[derive(Debug, Clone)]
pub struct ThreatqConfig {
    /// Scheme, host and port only.
    pub base_url: Url,
    pub client_id: String,
    pub auth: ThreatqAuth,
    pub collection: String,
    pub page_size: usize,
    /// `THREATQ_ENABLE_SSL_VERIFICATION`, `THREATQ_CA_FILE`, `THREATQ_CERT_SHA256`.
    pub trust: TlsTrust,
    pub mode: PullMode,
    /// `PULL_INTERVAL_SECS`; `None` = only on request.
    pub interval: Option<Duration>,
    /// Timeout of one ThreatQ call attempt (the Darktrace one).
    pub timeout: Duration,
    /// Retries of one ThreatQ call (the Darktrace ones).
    pub max_retries: u32,
}

impl ThreatqConfig {
    /// The pull settings, or `None` when `THREATQ_URL` is not set.
    pub(super) fn from_args(
        args: &ServeArgs,
        timeout: Duration,
        max_retries: u32,
    ) -> Result<Option<ThreatqConfig>, ConfigError> {
        let Some(raw_url) = &args.threatq_url else {
            return Ok(None);
        };
        let base_url = parse_url(raw_url)?;
        let client_id = required("THREATQ_CLIENT_ID", args.threatq_client_id.as_deref())?;
        let password = optional_secret(
            "THREATQ_PASSWORD",
            "THREATQ_PASSWORD_FILE",
            args.threatq_password.as_ref(),
            args.threatq_password_file.as_deref(),
        )?;
        let secret = optional_secret(
            "THREATQ_CLIENT_SECRET",
            "THREATQ_CLIENT_SECRET_FILE",
            args.threatq_client_secret.as_ref(),
            args.threatq_client_secret_file.as_deref(),
        )?;
        let email = args
            .threatq_email
            .as_deref()
            .map(str::trim)
            .filter(|e| !e.is_empty());
        let auth = match (email, password, secret) {
            (Some(email), Some(password), None) => ThreatqAuth::Password {
                email: email.to_owned(),
                password,
            },
            (None, None, Some(secret)) => ThreatqAuth::ClientCredentials { secret },
            (None, None, None) => {
                return Err(ConfigError::new(
                    "THREATQ_EMAIL",
                    "no ThreatQ credentials; set THREATQ_EMAIL and THREATQ_PASSWORD, or THREATQ_CLIENT_SECRET",
                ));
            }
            (_, _, Some(_)) => {
                return Err(ConfigError::new(
                    "THREATQ_CLIENT_SECRET",
                    "set together with THREATQ_EMAIL or THREATQ_PASSWORD; give one way of signing in",
                ));
            }
            (Some(_), None, None) => {
                return Err(ConfigError::new(
                    "THREATQ_PASSWORD",
                    "not set; THREATQ_EMAIL needs THREATQ_PASSWORD (or THREATQ_PASSWORD_FILE)",
                ));
            }
            (None, Some(_), None) => {
                return Err(ConfigError::new(
                    "THREATQ_EMAIL",
                    "not set; THREATQ_PASSWORD needs THREATQ_EMAIL",
                ));
            }
        };
        let collection = required("THREATQ_COLLECTION", args.threatq_collection.as_deref())?;
        if !collection
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(ConfigError::new(
                "THREATQ_COLLECTION",
                "is not a collection hash (letters, digits, '-' and '_' only)",
            ));
        }
        let trust = TlsTrust::read(
            THREATQ_TRUST,
            &args.threatq_enable_ssl_verification,
            args.threatq_ca_file.as_deref(),
            args.threatq_cert_sha256.as_deref(),
        )?;
        let mode = match args.pull_mode.trim().to_ascii_lowercase().as_str() {
            "sync" => PullMode::Sync,
            "export" => PullMode::Export,
            other => {
                return Err(ConfigError::new(
                    "PULL_MODE",
                    format!("'{other}' is neither sync nor export"),
                ));
            }
        };
        let interval_secs: u64 = parse_number(
            "PULL_INTERVAL_SECS",
            &args.pull_interval_secs,
            0,
            7 * 86_400,
        )?;
        Ok(Some(ThreatqConfig {
            base_url,
            client_id,
            auth,
            collection,
            page_size: parse_number("THREATQ_PAGE_SIZE", &args.threatq_page_size, 1, 10_000)?,
            trust,
            mode,
            interval: (interval_secs > 0).then(|| Duration::from_secs(interval_secs)),
            timeout,
            max_retries,
        }))
    }
}

/// `https://host[:port]` (or `http://`, warned about at start), nothing more.
fn parse_url(raw: &str) -> Result<Url, ConfigError> {
    let fail = |p: String| ConfigError::new("THREATQ_URL", p);
    let raw = raw.trim();
    // The value is not echoed: a URL that fails to parse may still hold a password.
    let url = Url::parse(raw).map_err(|e| fail(format!("is not https://host[:port] ({e})")))?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(fail(format!(
            "scheme '{}' is not https or http",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(fail("has no host".into()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(fail(
            "must not hold credentials; use THREATQ_EMAIL/THREATQ_PASSWORD or THREATQ_CLIENT_SECRET".into(),
        ));
    }
    if !(url.path() == "/" || url.path().is_empty()) || url.query().is_some() {
        return Err(fail(
            "has a path or query; give the scheme, host and port only".into(),
        ));
    }
    Ok(url)
}

fn required(setting: &'static str, value: Option<&str>) -> Result<String, ConfigError> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        Some(value) => Ok(value.to_owned()),
        None => Err(ConfigError::new(
            setting,
            "not set; a pull (THREATQ_URL is set) needs it",
        )),
    }
}

/// A secret given as a value or a file, or neither; both is refused.
fn optional_secret(
    setting: &'static str,
    file_setting: &'static str,
    value: Option<&SecretString>,
    file: Option<&Path>,
) -> Result<Option<SecretString>, ConfigError> {
    use secrecy::ExposeSecret;
    match (value, file) {
        (Some(_), Some(_)) => Err(ConfigError::new(
            setting,
            format!("set both {setting} and {file_setting}; give one"),
        )),
        (Some(v), None) => Ok(Some(SecretString::from(checked_secret(
            setting,
            v.expose_secret(),
            SecretKind::Password,
        )?))),
        (None, Some(path)) => Ok(Some(SecretString::from(checked_secret(
            file_setting,
            &read_setting_file(file_setting, path)?,
            SecretKind::Password,
        )?))),
        (None, None) => Ok(None),
    }
    .and_then(|secret| match secret {
        Some(s) if s.expose_secret().is_empty() => Err(ConfigError::new(setting, "is empty")),
        other => Ok(other),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn args(extra: &[&str]) -> ServeArgs {
        let mut argv = vec!["darktrace-export", "--threatq-url", "https://tq.example"];
        argv.extend_from_slice(extra);
        crate::cli::Cli::try_parse_from(argv).unwrap().serve
    }

    fn load(extra: &[&str]) -> Result<Option<ThreatqConfig>, ConfigError> {
        ThreatqConfig::from_args(&args(extra), Duration::from_secs(30), 3)
    }

    #[test]
    fn no_url_means_no_pull() {
        let args = ServeArgs::defaults();
        assert!(
            ThreatqConfig::from_args(&args, Duration::from_secs(1), 0)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn exactly_one_way_of_signing_in_is_required() {
        let base = ["--threatq-client-id", "c", "--threatq-collection", "abc"];
        let none = load(&base).unwrap_err();
        assert_eq!(none.setting, "THREATQ_EMAIL");
        let both = [
            &base[..],
            &[
                "--threatq-email",
                "e@x",
                "--threatq-password",
                "p",
                "--threatq-client-secret",
                "s",
            ],
        ]
        .concat();
        assert_eq!(load(&both).unwrap_err().setting, "THREATQ_CLIENT_SECRET");
        let password = [
            &base[..],
            &["--threatq-email", "e@x", "--threatq-password", "p"],
        ]
        .concat();
        let config = load(&password).unwrap().unwrap();
        assert!(matches!(config.auth, ThreatqAuth::Password { .. }));
        assert_eq!(config.page_size, 1000);
        assert_eq!(config.mode, PullMode::Sync);
        assert_eq!(config.interval, None);
        let secret = [&base[..], &["--threatq-client-secret", "s"]].concat();
        assert!(matches!(
            load(&secret).unwrap().unwrap().auth,
            ThreatqAuth::ClientCredentials { .. }
        ));
    }

    /// A password may hold spaces; a password file saved with a byte order mark or a second
    /// line stops the start naming the file, never the password.
    #[test]
    fn a_password_may_hold_spaces_but_a_damaged_password_file_is_refused() {
        let base = ["--threatq-client-id", "c", "--threatq-collection", "abc"];
        let spaced = [
            &base[..],
            &[
                "--threatq-email",
                "e@x",
                "--threatq-password",
                "pass phrase",
            ],
        ]
        .concat();
        assert!(load(&spaced).is_ok());
        let path = std::env::temp_dir().join(format!("tq-password-{}", std::process::id()));
        let path_text = path.to_str().unwrap().to_owned();
        for damaged in ["\u{feff}pass phrase\n", "pass phrase\nold phrase\n"] {
            std::fs::write(&path, damaged).unwrap();
            let from_file = [
                &base[..],
                &[
                    "--threatq-email",
                    "e@x",
                    "--threatq-password-file",
                    &path_text,
                ],
            ]
            .concat();
            let err = load(&from_file).unwrap_err();
            assert_eq!(err.setting, "THREATQ_PASSWORD_FILE", "{damaged:?}");
            assert!(!err.to_string().contains("phrase"), "{err}");
        }
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn collection_and_client_id_are_required_and_checked() {
        let missing = load(&["--threatq-client-secret", "s", "--threatq-client-id", "c"]);
        assert_eq!(missing.unwrap_err().setting, "THREATQ_COLLECTION");
        let bad = load(&[
            "--threatq-client-secret",
            "s",
            "--threatq-client-id",
            "c",
            "--threatq-collection",
            "a/../b",
        ]);
        assert_eq!(bad.unwrap_err().setting, "THREATQ_COLLECTION");
        let no_id = load(&[
            "--threatq-client-secret",
            "s",
            "--threatq-collection",
            "abc",
        ]);
        assert_eq!(no_id.unwrap_err().setting, "THREATQ_CLIENT_ID");
    }

    #[test]
    fn a_url_with_a_path_or_credentials_is_refused_without_echoing_it() {
        for url in [
            "https://u:secretpw@tq.example",
            "https://tq.example/api",
            "ftp://tq.example",
        ] {
            let error = parse_url(url).unwrap_err();
            assert_eq!(error.setting, "THREATQ_URL");
            assert!(!error.problem.contains("secretpw"), "{error}");
        }
        assert!(parse_url("http://127.0.0.1:8443").is_ok());
    }
}
