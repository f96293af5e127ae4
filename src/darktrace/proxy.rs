//! Which proxy, if any, carries the calls to Darktrace.
//!
//! The proxy variables are read once at start and the choice for the one Darktrace host is
//! made here, instead of leaving it to the HTTP library: the choice is logged and shown by
//! `check`, it can be tested without touching the process environment, and
//! `DISABLE_PROXIES=true` turns all of it off. The rules are those of curl and reqwest:
//! `HTTPS_PROXY` for an https host, `HTTP_PROXY` for an http one, `ALL_PROXY` for either,
//! each in upper case first and then lower case; `NO_PROXY` lists hosts, domains (and
//! their subdomains), addresses and CIDRs that go direct, or `*` for all. As in reqwest,
//! loopback is not exempt unless `NO_PROXY` lists it. Only http and https proxies are
//! supported (the HTTP client is built without SOCKS).

use std::net::IpAddr;

use ipnet::IpNet;
use reqwest::Url;

use crate::config::ConfigError;

/// The proxy variables as found, each with the name it was found under.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ProxyEnv {
    https: Option<(&'static str, String)>,
    http: Option<(&'static str, String)>,
    all: Option<(&'static str, String)>,
    no_proxy: Option<String>,
}

impl std::fmt::Debug for ProxyEnv {
    /// Proxy URLs may hold a password: show only which variables are set.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = |v: &Option<(&'static str, String)>| v.as_ref().map(|(n, _)| *n);
        f.debug_struct("ProxyEnv")
            .field("https", &name(&self.https))
            .field("http", &name(&self.http))
            .field("all", &name(&self.all))
            .field("no_proxy", &self.no_proxy)
            .finish()
    }
}

impl ProxyEnv {
    /// Reads the process environment.
    pub fn from_env() -> ProxyEnv {
        ProxyEnv::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the variables through `get`; empty values count as unset.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> ProxyEnv {
        let first = |names: [&'static str; 2]| {
            names.into_iter().find_map(|name| {
                get(name)
                    .map(|v| v.trim().to_owned())
                    .filter(|v| !v.is_empty())
                    .map(|v| (name, v))
            })
        };
        ProxyEnv {
            https: first(["HTTPS_PROXY", "https_proxy"]),
            http: first(["HTTP_PROXY", "http_proxy"]),
            all: first(["ALL_PROXY", "all_proxy"]),
            no_proxy: first(["NO_PROXY", "no_proxy"]).map(|(_, v)| v),
        }
    }

    /// The proxy for calls to `target`, or `None` when none is set for its scheme or
    /// `NO_PROXY` covers its host. A proxy URL that cannot be used is a configuration error
    /// naming the variable (and never echoing the URL, which may hold a password).
    pub fn route_for(&self, target: &Url) -> Result<Option<ProxyRoute>, ConfigError> {
        let chosen = match target.scheme() {
            "https" => self.https.as_ref().or(self.all.as_ref()),
            _ => self.http.as_ref().or(self.all.as_ref()),
        };
        let Some((variable, raw)) = chosen else {
            return Ok(None);
        };
        if let (Some(no_proxy), Some(host)) = (&self.no_proxy, target.host_str())
            && no_proxy_covers(no_proxy, host)
        {
            return Ok(None);
        }
        parse_proxy_url(variable, raw).map(Some)
    }
}

/// The proxy chosen for Darktrace calls.
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyRoute {
    /// The variable it came from, e.g. `HTTPS_PROXY`.
    pub variable: &'static str,
    url: Url,
}

impl ProxyRoute {
    /// A route through `url`, as if set in `variable` (tests and embedders).
    pub fn new(variable: &'static str, url: &str) -> Result<ProxyRoute, ConfigError> {
        parse_proxy_url(variable, url)
    }

    /// The proxy URL, credentials included, for the HTTP client only.
    pub fn url(&self) -> &Url {
        &self.url
    }
}

impl std::fmt::Display for ProxyRoute {
    /// `scheme://host:port (from VARIABLE)`, without credentials.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}://{}",
            self.url.scheme(),
            self.url.host_str().unwrap_or("?")
        )?;
        if let Some(port) = self.url.port_or_known_default() {
            write!(f, ":{port}")?;
        }
        write!(f, " (from {})", self.variable)
    }
}

impl std::fmt::Debug for ProxyRoute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ProxyRoute({self})")
    }
}

fn parse_proxy_url(variable: &'static str, raw: &str) -> Result<ProxyRoute, ConfigError> {
    let with_scheme = if raw.contains("://") {
        raw.to_owned()
    } else {
        format!("http://{raw}")
    };
    let url = Url::parse(&with_scheme)
        .map_err(|_| ConfigError::new(variable, "is not a proxy URL like http://proxy:3128"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ConfigError::new(
            variable,
            format!(
                "proxy scheme '{}' is not supported; use an http:// or https:// proxy, or DISABLE_PROXIES=true",
                url.scheme()
            ),
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(ConfigError::new(variable, "has no proxy host"));
    }
    Ok(ProxyRoute { variable, url })
}

/// Whether a `NO_PROXY` list sends `host` direct.
pub fn no_proxy_covers(list: &str, host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let address = host.parse::<IpAddr>().ok();
    list.split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .any(|entry| {
            if entry == "*" {
                return true;
            }
            let bare = entry.trim_start_matches('[').trim_end_matches(']');
            if let Some(address) = address {
                return bare.parse::<IpAddr>().is_ok_and(|a| a == address)
                    || bare.parse::<IpNet>().is_ok_and(|n| n.contains(&address));
            }
            let domain = entry.trim_start_matches('.');
            host.eq_ignore_ascii_case(domain)
                || (host.len() > domain.len()
                    && host.as_bytes()[host.len() - domain.len() - 1] == b'.'
                    && host[host.len() - domain.len()..].eq_ignore_ascii_case(domain))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> ProxyEnv {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ProxyEnv::from_lookup(|name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
    }

    fn route(vars: &[(&str, &str)], target: &str) -> Option<String> {
        env(vars)
            .route_for(&Url::parse(target).unwrap())
            .unwrap()
            .map(|r| r.to_string())
    }

    #[test]
    fn the_scheme_picks_the_variable_and_all_proxy_is_the_fallback() {
        let vars = [
            ("HTTPS_PROXY", "http://s.proxy:3128"),
            ("HTTP_PROXY", "http://p.proxy:8080"),
        ];
        assert_eq!(
            route(&vars, "https://dt.example").as_deref(),
            Some("http://s.proxy:3128 (from HTTPS_PROXY)")
        );
        assert_eq!(
            route(&vars, "http://dt.example").as_deref(),
            Some("http://p.proxy:8080 (from HTTP_PROXY)")
        );
        let all = [("ALL_PROXY", "a.proxy:9000")];
        assert_eq!(
            route(&all, "https://dt.example").as_deref(),
            Some("http://a.proxy:9000 (from ALL_PROXY)")
        );
        assert_eq!(route(&[], "https://dt.example"), None);
    }

    #[test]
    fn lower_case_names_count_and_upper_case_wins() {
        assert_eq!(
            route(&[("https_proxy", "http://low:1")], "https://dt.example").as_deref(),
            Some("http://low:1 (from https_proxy)")
        );
        assert_eq!(
            route(
                &[
                    ("https_proxy", "http://low:1"),
                    ("HTTPS_PROXY", "http://up:2")
                ],
                "https://dt.example"
            )
            .as_deref(),
            Some("http://up:2 (from HTTPS_PROXY)")
        );
        assert_eq!(
            route(
                &[("HTTPS_PROXY", "  "), ("https_proxy", "http://low:1")],
                "https://dt.example"
            )
            .as_deref(),
            Some("http://low:1 (from https_proxy)"),
            "an empty value counts as unset"
        );
    }

    #[test]
    fn no_proxy_sends_listed_hosts_direct() {
        let vars = [
            ("HTTPS_PROXY", "http://proxy:3128"),
            ("no_proxy", "corp.example, 10.0.0.0/8,::1"),
        ];
        assert_eq!(route(&vars, "https://dt.corp.example"), None);
        assert_eq!(route(&vars, "https://corp.example"), None);
        assert_eq!(route(&vars, "https://10.1.2.3"), None);
        assert_eq!(route(&vars, "https://[::1]:8443"), None);
        assert!(route(&vars, "https://notcorp.example").is_some());
        assert!(route(&vars, "https://11.1.2.3").is_some());
        assert!(no_proxy_covers("*", "anything.example"));
        assert!(no_proxy_covers(".Corp.Example", "DT.corp.example"));
    }

    #[test]
    fn credentials_never_show_and_bad_proxies_name_their_variable() {
        let r = ProxyRoute::new("HTTPS_PROXY", "http://user:s3cret@proxy:3128").unwrap();
        assert_eq!(r.to_string(), "http://proxy:3128 (from HTTPS_PROXY)");
        assert!(!format!("{r:?}").contains("s3cret"));
        assert_eq!(r.url().password(), Some("s3cret"));
        let e = env(&[("HTTPS_PROXY", "http://user:s3cret@proxy:3128")]);
        assert!(!format!("{e:?}").contains("s3cret"));

        let socks = ProxyRoute::new("ALL_PROXY", "socks5://user:pw@proxy:1080").unwrap_err();
        assert_eq!(socks.setting, "ALL_PROXY");
        assert!(!socks.problem.contains("pw@"));
    }
}
