//! Reading one setting's value: numbers in range, flags, lists, names, the Darktrace host,
//! secrets from a value or a file.

use std::path::Path;

use ipnet::IpNet;
use reqwest::Url;
use secrecy::SecretString;

use crate::indicator::IndicatorType;

use super::ConfigError;

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

pub(super) fn secret_setting(
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
        (Some(v), None) => checked_secret(setting, v, SecretKind::Token)?,
        (None, Some(path)) => {
            let file_setting: &'static str = if setting == "DARKTRACE_PUBLIC_TOKEN" {
                "DARKTRACE_PUBLIC_TOKEN_FILE"
            } else {
                "DARKTRACE_PRIVATE_TOKEN_FILE"
            };
            checked_secret(
                file_setting,
                &read_setting_file(file_setting, path)?,
                SecretKind::Token,
            )?
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

/// What a secret is: a token (Darktrace's, a bearer token) holds no whitespace at all; a
/// password or client secret may hold spaces, but not a line break.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SecretKind {
    Token,
    Password,
}

/// `raw` trimmed, unless a file or a paste has visibly damaged it: refused naming `setting`
/// (the file's setting when it came from one) and never the secret, since it would
/// otherwise fail only at its first use, as a signature or sign-in error with no hint of
/// the cause.
pub(super) fn checked_secret(
    setting: &'static str,
    raw: &str,
    kind: SecretKind,
) -> Result<String, ConfigError> {
    let text = raw.trim();
    let problem = if text.starts_with('\u{feff}') {
        Some(
            "starts with a UTF-8 byte order mark (bytes EF BB BF), as some editors save a file; save it without one",
        )
    } else if text.contains(['\n', '\r']) {
        Some("holds more than one line; give the secret alone")
    } else if kind == SecretKind::Token && text.contains(char::is_whitespace) {
        Some("holds a space or tab inside; a token has none")
    } else if kind == SecretKind::Token
        && text.len() >= 2
        && ['"', '\'']
            .iter()
            .any(|&q| text.starts_with(q) && text.ends_with(q))
    {
        Some("is wrapped in quotes; give the token without them")
    } else {
        None
    };
    match problem {
        Some(problem) => Err(ConfigError::new(setting, problem)),
        None => Ok(text.to_owned()),
    }
}

pub(super) fn read_setting_file(setting: &'static str, path: &Path) -> Result<String, ConfigError> {
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

pub(super) fn parse_number<T>(
    setting: &'static str,
    raw: &str,
    min: T,
    max: T,
) -> Result<T, ConfigError>
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

pub(super) fn split_list(raw: &str) -> impl Iterator<Item = &str> {
    raw.split([',', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

pub(super) fn parse_export_types(raw: &str) -> Result<Vec<IndicatorType>, ConfigError> {
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

pub(super) fn parse_network(raw: &str) -> Result<IpNet, ConfigError> {
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
