use super::fqdn::{plain_name, to_ascii};
use super::*;
use std::borrow::Cow;

#[test]
fn fqdn_is_trimmed_lowercased_and_loses_one_trailing_dot() {
    assert_eq!(
        Fqdn::parse("  Evil.Example. ").unwrap().as_str(),
        "evil.example"
    );
}

#[test]
fn fqdn_maps_unicode_to_punycode() {
    assert_eq!(
        Fqdn::parse("bücher.example").unwrap().as_str(),
        "xn--bcher-kva.example"
    );
}

#[test]
fn fqdn_refuses_urls_and_lists() {
    for bad in [
        "http://a.example",
        "a.example/x",
        "a.example:443",
        "a.example,b.example",
        "*.a.example",
        "a[.]example",
        "one-label",
        "a..example",
        "1.2.3.4",
    ] {
        assert!(Fqdn::parse(bad).is_err(), "{bad} should be refused");
    }
}

#[test]
fn ipv4_refuses_leading_zeros_and_cidr() {
    assert_eq!(
        parse_ipv4(" 198.51.100.7 ").unwrap().to_string(),
        "198.51.100.7"
    );
    for bad in [
        "01.2.3.4",
        "1.2.3.4/32",
        "1.2.3",
        "256.1.1.1",
        "1.2.3.4:80",
        "::1",
    ] {
        assert!(parse_ipv4(bad).is_err(), "{bad} should be refused");
    }
}

#[test]
fn values_with_a_refused_form_are_refused_in_any_case() {
    for bad in [
        "HXXP://evil.example",
        "hXXps[:]//evil.example",
        "a[DOT]example",
        "a(Dot)example",
        "a{.}example",
        "a.exa mple",
        "a.exam\u{85}ple",
        "a.exam\u{b}ple",
        "user@a.example",
    ] {
        assert!(Fqdn::parse(bad).is_err(), "{bad} should be refused");
    }
}

#[test]
fn ipv4_is_sent_as_displayed() {
    for text in ["0.0.0.0", "9.10.99.100", "198.51.100.7", "255.255.255.255"] {
        let ip: Ipv4Addr = text.parse().unwrap();
        assert_eq!(Indicator::Ipv4(ip).wire_value(), ip.to_string());
        assert_eq!(Indicator::Ipv4(ip).wire_value(), text);
    }
}

proptest::proptest! {
    /// The shortcut for plain names gives what IDNA gives, errors included.
    #[test]
    fn plain_names_map_as_idna_maps_them(name in "[a-z0-9.-]{1,30}|(xn--)?[a-z0-9-]{0,12}(\\.(xn--)?[a-z0-9-]{0,12}){0,3}") {
        proptest::prop_assert_eq!(
            to_ascii(&name).ok().map(Cow::into_owned),
            idna::domain_to_ascii(&name).ok()
        );
    }

    /// Every IPv4 address is sent as `Display` writes it.
    #[test]
    fn every_ipv4_is_sent_as_displayed(bits in proptest::prelude::any::<u32>()) {
        let ip = Ipv4Addr::from(bits);
        proptest::prop_assert_eq!(Indicator::Ipv4(ip).wire_value(), ip.to_string());
    }
}

#[test]
fn ipv6_is_sent_exploded() {
    let ip = parse_ipv6("2001:DB8::1").unwrap();
    assert_eq!(
        Indicator::Ipv6(ip).wire_value(),
        "2001:0db8:0000:0000:0000:0000:0000:0001"
    );
    assert!(parse_ipv6("fe80::1%eth0").is_err());
    assert!(parse_ipv6("[2001:db8::1]").is_err());
}

#[test]
fn within_matches_the_domain_and_its_subdomains_only() {
    let corp = Fqdn::parse("corp.example").unwrap();
    assert!(Fqdn::parse("corp.example").unwrap().is_within(&corp));
    assert!(Fqdn::parse("a.corp.example").unwrap().is_within(&corp));
    assert!(!Fqdn::parse("evilcorp.example").unwrap().is_within(&corp));
}

#[test]
fn fqdn_refuses_address_literals_with_the_type_to_use() {
    for (raw, says) in [
        ("1.2.3.4.", "use type IP Address"),
        ("[2001:db8::1]", "use type IPv6 Address"),
        ("1.2.3.0x4", "numeric label"),
        ("example.0x", "numeric label"),
    ] {
        let err = Fqdn::parse(raw).unwrap_err();
        assert!(err.message.contains(says), "{raw}: {}", err.message);
    }
    assert_eq!(
        Fqdn::parse("cdn.0xbad.example").unwrap().as_str(),
        "cdn.0xbad.example"
    );
}

#[test]
fn only_a_defanged_scheme_is_refused_not_names_starting_with_hxxp() {
    assert!(Fqdn::parse("hxxps://evil.example").is_err());
    assert!(Fqdn::parse("hxxp[:]//evil.example").is_err());
    assert_eq!(
        Fqdn::parse("hxxphotos.example").unwrap().as_str(),
        "hxxphotos.example"
    );
}

#[test]
fn invalid_punycode_labels_are_refused_by_idna() {
    for bad in [
        "xn--zz.example",
        "xn--.example",
        "a.xn--a",
        "xn--bcher-kva-.example",
    ] {
        let err = Fqdn::parse(bad).unwrap_err();
        assert!(err.message.contains("IDNA"), "{bad}: {}", err.message);
    }
}

#[test]
fn ip_types_point_at_each_other() {
    assert!(
        parse_ipv4("[2001:db8::1]")
            .unwrap_err()
            .message
            .contains("IPv6 Address")
    );
    assert!(
        parse_ipv6("198.51.100.7")
            .unwrap_err()
            .message
            .contains("IP Address")
    );
}

#[test]
fn plain_names_are_checked_in_one_pass_and_the_rest_by_every_rule() {
    assert_eq!(plain_name("evil.example."), Some("evil.example"));
    assert_eq!(plain_name("a-1.b2.example"), Some("a-1.b2.example"));
    for other in [
        "Evil.example",
        "evil.example..",
        "xn--bcher-kva.example",
        "1.2.3.4",
        "host.0x1f",
        "-a.example",
        "single",
        "a_b.example",
        " evil.example",
        "",
    ] {
        assert_eq!(plain_name(other), None, "{other}");
    }
}

#[test]
fn type_names_match_trimmed_and_case_insensitive() {
    assert_eq!(
        IndicatorType::from_threatq_name(" ip address "),
        Some(IndicatorType::Ipv4)
    );
    assert_eq!(IndicatorType::from_threatq_name("MD5"), None);
}
