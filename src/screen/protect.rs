//! What must never be exported, whatever the threat feed says: addresses that are not
//! globally routable, public suffixes, special-use names, the operator's own domains and
//! networks, and the Darktrace host itself. Darktrace can block what it watches.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::config::ScreenConfig;
use crate::indicator::{Fqdn, Indicator, name_is_within};

use super::popular::{Popular, popular};

/// Special-use names (RFC 6761, RFC 8375, ICANN's `internal`) never exported, nor names under them.
const SPECIAL_USE_DOMAINS: [&str; 4] = ["localhost", "local", "internal", "arpa"];

/// IPv4 ranges that are not globally routable, with the name given in the result's detail.
/// The first match names the rule, so the narrow ranges come before the wide ones that hold
/// them. The documentation ranges (192.0.2/24, 198.51.100/24, 203.0.113/24) are deliberately
/// absent: they are what examples and tests use.
const NON_ROUTABLE_V4: [(&str, &str); 13] = [
    ("0.0.0.0/32", "unspecified (0.0.0.0)"),
    ("255.255.255.255/32", "broadcast (255.255.255.255)"),
    ("0.0.0.0/8", "'this network' (0/8)"),
    ("10.0.0.0/8", "private (10/8)"),
    ("100.64.0.0/10", "shared address space (CGNAT 100.64/10)"),
    ("127.0.0.0/8", "loopback (127/8)"),
    ("169.254.0.0/16", "link-local (169.254/16)"),
    ("172.16.0.0/12", "private (172.16/12)"),
    ("192.0.0.0/24", "IETF protocol assignments (192.0.0/24)"),
    ("192.168.0.0/16", "private (192.168/16)"),
    ("198.18.0.0/15", "benchmarking (198.18/15)"),
    ("224.0.0.0/4", "multicast (224/4)"),
    ("240.0.0.0/4", "reserved (240/4)"),
];

/// IPv6 ranges that are not globally routable. IPv4-mapped addresses (::ffff:0:0/96) are
/// judged by the IPv4 rules instead; 2001:db8::/32 (documentation) is deliberately absent.
const NON_ROUTABLE_V6: [(&str, &str); 8] = [
    ("::/128", "unspecified (::)"),
    ("::1/128", "loopback (::1)"),
    ("64:ff9b:1::/48", "local-use NAT64 (64:ff9b:1::/48)"),
    ("100::/64", "discard-only (100::/64)"),
    ("2001:2::/48", "benchmarking (2001:2::/48)"),
    ("fc00::/7", "unique-local (fc00::/7)"),
    ("fe80::/10", "link-local (fe80::/10)"),
    ("ff00::/8", "multicast (ff00::/8)"),
];

/// The IPv4 address an IPv6 address carries, and how: IPv4-mapped (`::ffff:a.b.c.d`),
/// IPv4-compatible (`::a.b.c.d`, deprecated), NAT64 (`64:ff9b::a.b.c.d`) or 6to4
/// (`2002:aabb:ccdd::`). Such an address reaches the IPv4 one, so the IPv4 rules apply.
fn embedded_ipv4(ip: Ipv6Addr) -> Option<(&'static str, Ipv4Addr)> {
    let s = ip.segments();
    let low = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(("IPv4-mapped ", v4));
    }
    if s[..6] == [0; 6] && !(s[6] == 0 && s[7] <= 1) {
        return Some(("IPv4-compatible ", low));
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return Some(("NAT64 ", low));
    }
    if s[0] == 0x2002 {
        let v4 = Ipv4Addr::new((s[1] >> 8) as u8, s[1] as u8, (s[2] >> 8) as u8, s[2] as u8);
        return Some(("6to4 ", v4));
    }
    None
}

/// The protection rules, built once from the settings.
#[derive(Debug, Clone)]
pub struct Protection {
    export_non_routable: bool,
    /// FQDNs go out as exact hostnames, so an entry matches no name under it.
    fqdn_as_hostname: bool,
    protected_domains: Vec<Fqdn>,
    protected_networks: Vec<IpNet>,
    /// The shipped popular lists, when `PROTECT_POPULAR` is on.
    popular: Option<&'static Popular>,
    darktrace_host: Option<Indicator>,
    non_routable_v4: Vec<(Ipv4Net, &'static str)>,
    non_routable_v6: Vec<(Ipv6Net, &'static str)>,
}

impl Protection {
    pub fn new(config: &ScreenConfig, darktrace_host: Option<&str>) -> Self {
        Protection {
            export_non_routable: config.export_non_routable,
            fqdn_as_hostname: config.fqdn_as_hostname,
            protected_domains: config.protected_domains.clone(),
            protected_networks: config.protected_networks.clone(),
            popular: config.protect_popular.then(popular),
            darktrace_host: darktrace_host.and_then(host_indicator),
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

    /// True when an entry matches the names under it: FQDNs go out as domains.
    pub fn entries_match_subdomains(&self) -> bool {
        !self.fqdn_as_hostname
    }

    /// The rule that protects this indicator, as the sentence for the result's detail.
    pub fn rule_for(&self, indicator: &Indicator) -> Option<String> {
        if let Some(rule) = self.darktrace_host_rule(indicator) {
            return Some(rule);
        }
        match indicator {
            Indicator::Fqdn(name) => self.domain_rule(name),
            Indicator::Ipv4(ip) => self.address_rule(IpAddr::V4(*ip)),
            Indicator::Ipv6(ip) => self.address_rule(IpAddr::V6(*ip)),
        }
    }

    /// An entry for the Darktrace host would have Darktrace watch (and possibly block) the
    /// very appliance this service talks to. Sent as a domain, an entry also matches every
    /// name under it, so the host's parent domains are refused too.
    fn darktrace_host_rule(&self, indicator: &Indicator) -> Option<String> {
        let host = self.darktrace_host.as_ref()?;
        match (host, indicator) {
            (Indicator::Fqdn(host), Indicator::Fqdn(name)) if host == name => Some(format!(
                "is the Darktrace host ({host}) this service talks to"
            )),
            (Indicator::Fqdn(host), Indicator::Fqdn(name))
                if !self.fqdn_as_hostname && host.is_within(name) =>
            {
                Some(format!(
                    "is a parent domain of the Darktrace host ({host}); as a watched domain it would match the host"
                ))
            }
            (Indicator::Fqdn(_), _) => None,
            (host, indicator) => {
                let host_ip = as_ip(host)?;
                let ip = as_ip(indicator)?;
                (same_address(host_ip, ip))
                    .then(|| format!("is the Darktrace host ({host_ip}) this service talks to"))
            }
        }
    }

    fn domain_rule(&self, name: &Fqdn) -> Option<String> {
        let text = name.as_str();
        if let Some(special) = SPECIAL_USE_DOMAINS.iter().find(|d| name_is_within(text, d)) {
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
        // A watched domain matches every name under it, so a parent of a protected domain
        // would catch the protected one too (unless it is sent as an exact hostname).
        if !self.fqdn_as_hostname
            && let Some(domain) = self.protected_domains.iter().find(|d| d.is_within(name))
        {
            return Some(format!(
                "is a parent domain of protected domain {domain} (PROTECTED_DOMAINS); as a watched domain it would match it"
            ));
        }
        self.popular?.domain_rule(text, !self.fqdn_as_hostname)
    }

    fn address_rule(&self, ip: IpAddr) -> Option<String> {
        if let Some(net) = self
            .protected_networks
            .iter()
            .find(|n| forms_of(ip).any(|form| n.contains(&form)))
        {
            return Some(format!(
                "is in protected network {net} (PROTECTED_NETWORKS)"
            ));
        }
        if let Some(rule) = self
            .popular
            .and_then(|p| forms_of(ip).find_map(|form| p.address_rule(form)))
        {
            return Some(rule);
        }
        if self.export_non_routable {
            return None;
        }
        let (mapped, range) = match ip {
            IpAddr::V4(v4) => ("", self.v4_range(v4)),
            IpAddr::V6(v6) => match self.v6_range(v6) {
                Some(range) => ("", Some(range)),
                None => match embedded_ipv4(v6) {
                    Some((how, v4)) => (how, self.v4_range(v4)),
                    None => ("", None),
                },
            },
        };
        range.map(|r| {
            format!("is not globally routable: {mapped}{r} (EXPORT_NON_ROUTABLE=true allows it)")
        })
    }

    fn v4_range(&self, ip: Ipv4Addr) -> Option<&'static str> {
        self.non_routable_v4
            .iter()
            .find(|(net, _)| net.contains(&ip))
            .map(|(_, name)| *name)
    }

    fn v6_range(&self, ip: Ipv6Addr) -> Option<&'static str> {
        self.non_routable_v6
            .iter()
            .find(|(net, _)| net.contains(&ip))
            .map(|(_, name)| *name)
    }
}

fn as_ip(indicator: &Indicator) -> Option<IpAddr> {
    match indicator {
        Indicator::Ipv4(ip) => Some(IpAddr::V4(*ip)),
        Indicator::Ipv6(ip) => Some(IpAddr::V6(*ip)),
        Indicator::Fqdn(_) => None,
    }
}

/// An address and, for IPv4 and IPv4-mapped IPv6, its other form: `::ffff:203.0.113.5` is
/// the host 203.0.113.5, so a rule for one holds for the other.
fn forms_of(ip: IpAddr) -> impl Iterator<Item = IpAddr> {
    let other = match ip {
        IpAddr::V4(v4) => Some(IpAddr::V6(v4.to_ipv6_mapped())),
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4),
    };
    std::iter::once(ip).chain(other)
}

fn same_address(a: IpAddr, b: IpAddr) -> bool {
    forms_of(a).any(|form| form == b)
}

/// The Darktrace host as an indicator, when it is a name or an address.
pub fn host_indicator(host: &str) -> Option<Indicator> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => Some(Indicator::Ipv4(ip)),
        Ok(IpAddr::V6(ip)) => Some(Indicator::Ipv6(ip)),
        Err(_) => crate::indicator::Fqdn::parse(host)
            .ok()
            .map(Indicator::Fqdn),
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
        for ip in ["192.0.2.1", "198.51.100.7", "203.0.113.9", "185.220.101.4"] {
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

    #[test]
    fn each_range_is_named_by_its_narrowest_rule() {
        let c = ScreenConfig::default();
        for (ip, name) in [
            ("255.255.255.255", "broadcast"),
            ("0.0.0.0", "unspecified"),
            ("0.1.2.3", "this network"),
            ("240.0.0.1", "reserved (240/4)"),
        ] {
            let rule = rule(&c, IndicatorType::Ipv4, ip).unwrap();
            assert!(rule.contains(name), "{ip}: {rule}");
        }
        // An IPv4-mapped address is judged as the IPv4 address it is sent as.
        let mapped = rule(&c, IndicatorType::Ipv6, "::ffff:192.168.1.1").unwrap();
        assert!(mapped.contains("private (192.168/16)"), "{mapped}");
    }

    #[test]
    fn protected_networks_cover_the_ipv4_mapped_form_and_back() {
        let c = ScreenConfig {
            protected_networks: vec![
                "203.0.113.0/24".parse().unwrap(),
                "::ffff:198.51.100.0/120".parse().unwrap(),
            ],
            ..ScreenConfig::default()
        };
        assert!(rule(&c, IndicatorType::Ipv6, "::ffff:203.0.113.5").is_some());
        assert!(rule(&c, IndicatorType::Ipv4, "198.51.100.5").is_some());
        assert_eq!(rule(&c, IndicatorType::Ipv6, "::ffff:192.0.2.5"), None);
    }

    #[test]
    fn the_darktrace_host_and_its_parent_domains_are_protected_when_sent_as_domains() {
        let host_rule = |c: &ScreenConfig, host: &str, kind: IndicatorType, value: &str| {
            Protection::new(c, Some(host)).rule_for(&kind.parse(value).unwrap())
        };
        let c = ScreenConfig::default();
        let fqdn = IndicatorType::Fqdn;
        assert!(host_rule(&c, "dt.soc.example", fqdn, "dt.soc.example").is_some());
        let parent = host_rule(&c, "dt.soc.example", fqdn, "soc.example").unwrap();
        assert!(parent.contains("parent domain"), "{parent}");
        assert_eq!(
            host_rule(&c, "dt.soc.example", fqdn, "x.dt.soc.example"),
            None
        );
        let as_hostname = ScreenConfig {
            fqdn_as_hostname: true,
            ..ScreenConfig::default()
        };
        assert_eq!(
            host_rule(&as_hostname, "dt.soc.example", fqdn, "soc.example"),
            None
        );
        assert!(host_rule(&as_hostname, "dt.soc.example", fqdn, "dt.soc.example").is_some());

        let v6 = IndicatorType::Ipv6;
        assert!(host_rule(&c, "203.0.113.10", IndicatorType::Ipv4, "203.0.113.10").is_some());
        assert!(host_rule(&c, "203.0.113.10", v6, "::ffff:203.0.113.10").is_some());
        assert!(host_rule(&c, "[2001:db8::10]", v6, "2001:0DB8:0:0::10").is_some());
        assert_eq!(
            host_rule(&c, "203.0.113.10", IndicatorType::Ipv4, "203.0.113.11"),
            None
        );
    }

    #[test]
    fn parents_of_protected_domains_are_protected_unless_sent_as_hostnames() {
        let protected = ScreenConfig {
            protected_domains: vec![Fqdn::parse("mail.corp.example").unwrap()],
            ..ScreenConfig::default()
        };
        let check = |config: &ScreenConfig, value: &str| {
            Protection::new(config, None).rule_for(&IndicatorType::Fqdn.parse(value).unwrap())
        };
        let rule = check(&protected, "corp.example").expect("parent is protected");
        assert!(
            rule.contains("parent domain of protected domain mail.corp.example"),
            "{rule}"
        );
        assert_eq!(check(&protected, "other.corp.example"), None);
        let as_hostnames = ScreenConfig {
            fqdn_as_hostname: true,
            ..protected
        };
        assert_eq!(check(&as_hostnames, "corp.example"), None);
    }

    #[test]
    fn ipv6_special_ranges_and_addresses_carrying_a_protected_ipv4_are_protected() {
        let c = ScreenConfig::default();
        for ip in [
            "2001:2::1",
            "100::1",
            "64:ff9b:1::1",
            "::10.0.0.1",
            "::127.0.0.1",
            "64:ff9b::10.1.2.3",
            "64:ff9b::192.168.1.1",
            "2002:0a00:0001::1",
            "2002:c0a8:0101::1",
        ] {
            assert!(rule(&c, IndicatorType::Ipv6, ip).is_some(), "{ip}");
        }
        for ip in [
            "64:ff9b::8.8.8.8",
            "2002:0808:0808::1",
            "::8.8.8.8",
            "2606:4700::1111",
        ] {
            assert_eq!(rule(&c, IndicatorType::Ipv6, ip), None, "{ip}");
        }
        let nat64 = rule(&c, IndicatorType::Ipv6, "64:ff9b::10.1.2.3").unwrap();
        assert!(nat64.contains("NAT64 private"), "{nat64}");
    }
}
