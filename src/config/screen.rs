//! Which indicators go, and which never do.

use ipnet::IpNet;

use crate::cli::ServeArgs;
use crate::indicator::{Fqdn, IndicatorType};

use super::ConfigError;
use super::parse::{parse_bool, parse_export_types, parse_network, parse_number, split_list};

/// Which indicators go, and which never do.
#[derive(Debug, Clone)]
pub struct ScreenConfig {
    pub export_types: Vec<IndicatorType>,
    /// Lowercased, trimmed status names.
    pub excluded_statuses: Vec<String>,
    /// Lowercased, trimmed status names: if set, the only statuses exported.
    pub export_statuses: Option<Vec<String>>,
    /// Lowest ThreatQ score exported (0 to 10); `None` exports any score, or none.
    pub min_score: Option<u8>,
    pub protected_domains: Vec<Fqdn>,
    pub protected_networks: Vec<IpNet>,
    pub export_non_routable: bool,
    /// The shipped lists of very popular domains and public resolvers are never exported.
    pub protect_popular: bool,
    pub fqdn_as_hostname: bool,
    /// An item's own ThreatQ expiry sets its Darktrace expiry, and a passed one keeps it back.
    pub expiry_from_threatq: bool,
}

impl Default for ScreenConfig {
    /// The documented defaults: those of the command line (see [`ServeArgs::defaults`]).
    fn default() -> Self {
        ScreenConfig::from_args(&ServeArgs::defaults()).expect("the documented defaults are valid")
    }
}

impl ScreenConfig {
    pub(super) fn from_args(args: &ServeArgs) -> Result<Self, ConfigError> {
        Ok(ScreenConfig {
            export_types: parse_export_types(&args.export_types)?,
            excluded_statuses: split_list(&args.excluded_statuses)
                .map(|s| s.to_lowercase())
                .collect(),
            export_statuses: Some(
                split_list(&args.export_statuses)
                    .map(|s| s.to_lowercase())
                    .collect::<Vec<_>>(),
            )
            .filter(|list| !list.is_empty()),
            min_score: match args.min_score.trim() {
                "" => None,
                raw => Some(parse_number("MIN_SCORE", raw, 0, 10)?),
            },
            protected_domains: split_list(&args.protected_domains)
                .map(|d| {
                    if d.contains(';') {
                        return Err(ConfigError::new(
                            "PROTECTED_DOMAINS",
                            format!("'{d}' holds a semicolon; separate the names with commas"),
                        ));
                    }
                    Fqdn::parse(d)
                        .map_err(|e| ConfigError::new("PROTECTED_DOMAINS", format!("'{d}' {e}")))
                })
                .collect::<Result<_, _>>()?,
            protected_networks: split_list(&args.protected_networks)
                .map(parse_network)
                .collect::<Result<_, _>>()?,
            export_non_routable: parse_bool("EXPORT_NON_ROUTABLE", &args.export_non_routable)?,
            protect_popular: parse_bool("PROTECT_POPULAR", &args.protect_popular)?,
            fqdn_as_hostname: parse_bool("FQDN_AS_HOSTNAME", &args.fqdn_as_hostname)?,
            expiry_from_threatq: parse_bool("EXPIRY_FROM_THREATQ", &args.expiry_from_threatq)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_statuses_are_trimmed_lowercased_and_empty_means_none() {
        let mut args = ServeArgs::defaults();
        assert_eq!(
            ScreenConfig::from_args(&args).unwrap().export_statuses,
            None
        );
        args.export_statuses = " Active, Review ,,".into();
        assert_eq!(
            ScreenConfig::from_args(&args).unwrap().export_statuses,
            Some(vec!["active".to_owned(), "review".to_owned()])
        );
        args.export_statuses = " , ".into();
        assert_eq!(
            ScreenConfig::from_args(&args).unwrap().export_statuses,
            None
        );
    }
}
