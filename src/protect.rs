//! What must never be exported, whatever the threat feed says: addresses that are not
//! globally routable, public suffixes, special-use names, the operator's own domains and
//! networks, and the Darktrace host itself. Darktrace can block what it watches.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::config::ScreenConfig;
use crate::indicator::{Fqdn, Indicator};

/// Special-use names (RFC 6761, RFC 8375, ICANN's `internal`) never exported, nor names under them.
const SPECIAL_USE_DOMAINS: [&str; 4] = ["localhost", "local", "internal", "arpa"];

/// IPv4 ranges that are not globally routable, with the name given in the result's detail.
/// The documentation ranges (192.0.2/24, 198.51.100/24, 203.0.113/24) are deliberately absent.
const NON_ROUTABLE_V4: [(&str, &str); 12] = [
    ("0.0.0.0/8", "'this network' (0/8, includes unspecified)"),
    ("10.0.0.0/8", "private (10/8)"),
    ("100.64.0.0/10", "shared address space (CGNAT 100.64/10)"),
    ("127.0.0.0/8", "loopback (127/8)"),
    ("169.254.0.0/16", "link-local (169.254/16)"),
    ("172.16.0.0/12", "private (172.16/12)"),
    ("192.0.0.0/24", "IETF protocol assignments (192.0.0/24)"),
    ("192.168.0.0/16", "private (192.168/16)"),
    ("198.18.0.0/15", "benchmarking (198.18/15)"),
    ("224.0.0.0/4", "multicast (224/4)"),
    ("240.0.0.0/4", "reserved (240/4, includes broadcast)"),
    ("255.255.255.255/32", "broadcast"),
];

const NON_ROUTABLE_V6: [(&str, &str); 5] = [
    ("::/128", "unspecified (::)"),
    ("::1/128", "loopback (::1)"),
    ("fc00::/7", "unique-local (fc00::/7)"),
    ("fe80::/10", "link-local (fe80::/10)"),
    ("ff00::/8", "multicast (ff00::/8)"),
];

/// The protection rules, built once from the settings.
#[derive(Debug, Clone)]
pub struct Protection {
    export_non_routable: bool,
    protected_domains: Vec<Fqdn>,
    protected_networks: Vec<IpNet>,
    darktrace_host: Option<Indicator>,
    non_routable_v4: Vec<(Ipv4Net, &'static str)>,
    non_routable_v6: Vec<(Ipv6Net, &'static str)>,
}

impl Protection {
    pub fn new(config: &ScreenConfig, darktrace_host: Option<&str>) -> Self {
        Protection {
            export_non_routable: config.export_non_routable,
            protected_domains: config.protected_domains.clone(),
            protected_networks: config.protected_networks.clone(),
            darktrace_host: darktrace_host.and_then(crate::screen::host_indicator),
            non_routable_v4: NON_ROUTABLE_V4
                .iter()
                .map(|(net, name)| (net.parse().expect("built-in range"), *name))
                .collect(),
            non_routable_v6: NON_ROUTABLE_V6
                .iter()
                .map(|(net, name)| (net.parse().expect("built-in range"), *name))
                .collect(),
        }
    }

    /// The rule that protects this indicator, as the sentence for the result's detail.
    pub fn rule_for(&self, indicator: &Indicator) -> Option<String> {
        if self.darktrace_host.as_ref() == Some(indicator) {
            return Some("is the Darktrace host this service talks to".into());
        }
        match indicator {
            Indicator::Fqdn(name) => self.domain_rule(name),
            Indicator::Ipv4(ip) => self.address_rule(IpAddr::V4(*ip)),
            Indicator::Ipv6(ip) => self.address_rule(IpAddr::V6(*ip)),
        }
    }

    fn domain_rule(&self, name: &Fqdn) -> Option<String> {
        let text = name.as_str();
        if let Some(special) = SPECIAL_USE_DOMAINS
            .iter()
            .find(|d| text == **d || text.ends_with(&format!(".{d}")))
        {
            return Some(format!("is under the special-use domain '{special}'"));
        }
        if let Some(suffix) = psl::suffix(text.as_bytes())
            && suffix.is_known()
            && suffix.as_bytes() == text.as_bytes()
        {
            return Some(
                "is a public suffix (Public Suffix List): it would match every domain under it"
                    .into(),
            );
        }
        if let Some(domain) = self.protected_domains.iter().find(|d| name.is_within(d)) {
            return Some(format!(
                "is under protected domain {domain} (PROTECTED_DOMAINS)"
            ));
        }
        None
    }

    fn address_rule(&self, ip: IpAddr) -> Option<String> {
        if let Some(net) = self.protected_networks.iter().find(|n| n.contains(&ip)) {
            return Some(format!(
                "is in protected network {net} (PROTECTED_NETWORKS)"
            ));
        }
        if self.export_non_routable {
            return None;
        }
        let range = match ip {
            IpAddr::V4(v4) => self.v4_range(v4),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => self.v4_range(v4).map(|r| r.to_owned()),
                None => self.v6_range(v6),
            },
        };
        range.map(|r| format!("is not globally routable: {r} (EXPORT_NON_ROUTABLE=true allows it)"))
    }

    fn v4_range(&self, ip: Ipv4Addr) -> Option<String> {
        self.non_routable_v4
            .iter()
            .find(|(net, _)| net.contains(&ip))
            .map(|(_, name)| (*name).to_owned())
    }

    fn v6_range(&self, ip: Ipv6Addr) -> Option<String> {
        self.non_routable_v6
            .iter()
            .find(|(net, _)| net.contains(&ip))
            .map(|(_, name)| (*name).to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::indicator::IndicatorType;

    fn rule(config: &ScreenConfig, kind: IndicatorType, value: &str) -> Option<String> {
        let indicator = kind.parse(value).unwrap();
        Protection::new(config, Some("dt.corp.example")).rule_for(&indicator)
    }

    #[test]
    fn non_routable_addresses_are_protected_but_documentation_ranges_are_not() {
        let c = ScreenConfig::default();
        for ip in [
            "10.1.2.3",
            "127.0.0.1",
            "100.64.0.1",
            "192.0.0.8",
            "198.18.0.1",
            "255.255.255.255",
            "0.0.0.0",
        ] {
            assert!(rule(&c, IndicatorType::Ipv4, ip).is_some(), "{ip}");
        }
        for ip in ["192.0.2.1", "198.51.100.7", "203.0.113.9", "8.8.8.8"] {
            assert_eq!(rule(&c, IndicatorType::Ipv4, ip), None, "{ip}");
        }
        for ip in ["::1", "fd00::1", "fe80::1", "ff02::1", "::ffff:10.0.0.1"] {
            assert!(rule(&c, IndicatorType::Ipv6, ip).is_some(), "{ip}");
        }
        assert_eq!(rule(&c, IndicatorType::Ipv6, "2001:db8::1"), None);
    }

    #[test]
    fn export_non_routable_lifts_only_the_built_in_ranges() {
        let c = ScreenConfig {
            export_non_routable: true,
            protected_networks: vec!["10.9.0.0/16".parse().unwrap()],
            ..ScreenConfig::default()
        };
        assert_eq!(rule(&c, IndicatorType::Ipv4, "10.1.2.3"), None);
        assert!(
            rule(&c, IndicatorType::Ipv4, "10.9.1.1")
                .unwrap()
                .contains("PROTECTED_NETWORKS")
        );
    }

    #[test]
    fn public_suffixes_special_names_and_own_domains_are_protected() {
        let c = ScreenConfig {
            protected_domains: vec![Fqdn::parse("corp.example").unwrap()],
            ..ScreenConfig::default()
        };
        for name in [
            "co.uk",
            "github.io",
            "printer.local",
            "host.home.arpa",
            "a.internal",
            "x.corp.example",
            "corp.example",
            "dt.corp.example",
        ] {
            assert!(rule(&c, IndicatorType::Fqdn, name).is_some(), "{name}");
        }
        for name in ["evil.co.uk", "someone.github.io", "evilcorp.example"] {
            assert_eq!(rule(&c, IndicatorType::Fqdn, name), None, "{name}");
        }
    }
}
