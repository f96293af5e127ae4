//! Properties over arbitrary and near-miss input: the parsers never panic, and whatever they
//! accept is already in the form they produce.

use super::fqdn::plain_name;
use super::*;
use proptest::prelude::*;

/// Labels that are valid, nearly valid, internationalised, punycode or hostile.
fn label() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9]{1,10}",
        "[a-zA-Z0-9_-]{1,12}",
        "xn--[a-z0-9-]{1,10}",
        "[a-zäöüßéñçøÅÉ日本語ＡＢ０-]{1,8}",
        "[a-z0-9]{60,66}",
        "[a-z]{1,4}[ ,*/:@;%\\x00\\u{200b}。．][a-z]{1,4}",
    ]
}

fn name() -> impl Strategy<Value = String> {
    (
        proptest::collection::vec(label(), 1..6),
        "[ \\t]{0,2}",
        "\\.{0,2}",
    )
        .prop_map(|(labels, pad, dots)| format!("{pad}{}{dots}{pad}", labels.join(".")))
}

fn ipv4_like() -> impl Strategy<Value = String> {
    prop_oneof![
        (any::<[u8; 4]>()).prop_map(|o| Ipv4Addr::from(o).to_string()),
        "[0-9]{1,4}(\\.[0-9]{0,4}){0,4}(/[0-9]{1,2}|:[0-9]{1,5})?",
        " ?[0-9.٠-٩x]{1,16} ?",
    ]
}

fn ipv6_like() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<[u16; 8]>().prop_map(|s| Ipv6Addr::from(s).to_string()),
        any::<[u16; 8]>().prop_map(|s| exploded_ipv6(&Ipv6Addr::from(s)).to_uppercase()),
        any::<[u8; 4]>().prop_map(|o| format!("::ffff:{}", Ipv4Addr::from(o))),
        "[0-9a-fA-F:.]{0,42}",
        "\\[?[0-9a-f:]{2,20}\\]?(%[a-z0-9]{1,4}|/[0-9]{1,3})?",
    ]
}

fn any_value() -> impl Strategy<Value = String> {
    prop_oneof![any::<String>(), name(), ipv4_like(), ipv6_like()]
}

fn kind() -> impl Strategy<Value = IndicatorType> {
    proptest::sample::select(IndicatorType::ALL.to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn parsing_never_panics(kind in kind(), raw in any_value()) {
        let _ = kind.parse(&raw);
    }

    #[test]
    fn normalising_is_idempotent(kind in kind(), raw in any_value()) {
        if let Ok(first) = kind.parse(&raw) {
            let once = first.wire_value();
            // Parsed as what it became: an IPv4-mapped IPv6 address is sent as IPv4.
            let twice = first.kind().parse(&once).map(|i| i.wire_value());
            prop_assert_eq!(twice, Ok(once));
        }
    }

    #[test]
    fn an_accepted_value_parses_again_to_itself(kind in kind(), raw in any_value()) {
        if let Ok(indicator) = kind.parse(&raw) {
            let again = indicator.kind().parse(&indicator.wire_value());
            prop_assert_eq!(again, Ok(indicator));
        }
    }

    #[test]
    fn exported_values_hold_no_comma_whitespace_or_upper_case(
        kind in kind(),
        raw in any_value(),
    ) {
        if let Ok(indicator) = kind.parse(&raw) {
            let wire = indicator.wire_value();
            prop_assert!(!wire.is_empty());
            prop_assert!(wire.is_ascii(), "{wire}");
            prop_assert!(
                !wire.chars().any(|c| c == ',' || c.is_whitespace() || c.is_uppercase()),
                "{wire}"
            );
        }
    }

    #[test]
    fn the_one_pass_check_vouches_only_for_what_every_rule_accepts(
        raw in prop_oneof![any_value(), "[a-z0-9x.-]{0,24}", "[a-z0-9-]{60,66}\\.[a-z0-9x-]{1,4}"],
    ) {
        if let Some(name) = plain_name(&raw) {
            prop_assert_eq!(Fqdn::parse_any(&raw), Ok(Fqdn(name.to_owned())));
        }
    }

    #[test]
    fn generated_names_are_accepted_lowercased_and_reparse_unchanged(
        // An `xn--` label must be valid punycode, which a random one is not.
        labels in proptest::collection::vec(
            "[a-zA-Z0-9_]([a-zA-Z0-9_-]{0,20}[a-zA-Z0-9_])?"
                .prop_filter("not an xn-- label", |l| !l.to_ascii_lowercase().starts_with("xn--")),
            1..5,
        ),
        unicode in "[a-zäöüéñ日本]{1,10}",
        tld in "[a-zA-Z]{2,6}",
    ) {
        let plain = format!("{}.{tld}", labels.join("."));
        let fqdn = Fqdn::parse(&format!(" {plain}. ")).unwrap();
        prop_assert_eq!(fqdn.as_str(), plain.to_ascii_lowercase());
        let international = Fqdn::parse(&format!("{unicode}.{plain}")).unwrap();
        prop_assert_eq!(Fqdn::parse(international.as_str()), Ok(international));
    }

    #[test]
    fn generated_addresses_are_accepted_in_canonical_form(
        octets in any::<[u8; 4]>(),
        segments in any::<[u16; 8]>(),
    ) {
        let v4 = Ipv4Addr::from(octets);
        prop_assert_eq!(parse_ipv4(&v4.to_string()), Ok(v4));
        let v6 = Ipv6Addr::from(segments);
        let wire = Indicator::Ipv6(parse_ipv6(&v6.to_string()).unwrap()).wire_value();
        prop_assert_eq!(wire.len(), 39);
        prop_assert_eq!(wire, exploded_ipv6(&v6));
    }
}
