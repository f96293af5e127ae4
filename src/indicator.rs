//! Checked, normalised indicator values: parse, don't validate.
//!
//! Only an [`Indicator`] can reach the Darktrace client, and one can only be made by the
//! parsers here, so a value that Darktrace could misread (a comma splits `addlist`) or that
//! is not what the analyst meant (a URL, a defanged name) never leaves the service.

use std::borrow::Cow;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

/// The ThreatQ indicator types the service knows how to export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IndicatorType {
    Fqdn,
    Ipv4,
    Ipv6,
}

impl IndicatorType {
    pub const ALL: [IndicatorType; 3] = [
        IndicatorType::Fqdn,
        IndicatorType::Ipv4,
        IndicatorType::Ipv6,
    ];

    /// The ThreatQ type name, exactly as ThreatQ spells it.
    pub fn threatq_name(self) -> &'static str {
        match self {
            IndicatorType::Fqdn => "FQDN",
            IndicatorType::Ipv4 => "IP Address",
            IndicatorType::Ipv6 => "IPv6 Address",
        }
    }

    /// Matches a ThreatQ type name: trimmed, case-insensitive.
    pub fn from_threatq_name(name: &str) -> Option<IndicatorType> {
        // ThreatQ spells its types exactly; only hand-written input needs the lenient match.
        if let Some(exact) = IndicatorType::ALL
            .into_iter()
            .find(|t| t.threatq_name() == name)
        {
            return Some(exact);
        }
        let name = name.trim();
        IndicatorType::ALL
            .into_iter()
            .find(|t| t.threatq_name().eq_ignore_ascii_case(name))
    }

    /// Parses a raw value as this type.
    pub fn parse(self, raw: &str) -> Result<Indicator, ValueError> {
        match self {
            IndicatorType::Fqdn => Fqdn::parse(raw).map(Indicator::Fqdn),
            IndicatorType::Ipv4 => parse_ipv4(raw).map(Indicator::Ipv4),
            // An IPv4-mapped address (`::ffff:198.51.100.7`) is the IPv4 host on the wire,
            // and that is what Darktrace sees in traffic: it is sent, and deduplicated, as one.
            IndicatorType::Ipv6 => parse_ipv6(raw).map(|ip| match ip.to_ipv4_mapped() {
                Some(v4) => Indicator::Ipv4(v4),
                None => Indicator::Ipv6(ip),
            }),
        }
    }
}

/// Why a value is not a well-formed indicator of its type; the message is the result's detail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ValueError {
    pub kind: IndicatorType,
    pub message: String,
}

impl ValueError {
    fn new(kind: IndicatorType, message: impl Into<String>) -> Self {
        ValueError {
            kind,
            message: message.into(),
        }
    }
}

/// A fully qualified domain name in the form sent to Darktrace: lowercase ASCII (IDNA),
/// no trailing dot, at least two labels.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fqdn(String);

/// Most characters a name may have (RFC 1035).
const MAX_NAME_LEN: usize = 253;
/// Most characters a label may have.
const MAX_LABEL_LEN: usize = 63;

impl Fqdn {
    /// Trims, drops one trailing dot, maps to lowercase ASCII with IDNA (UTS #46, as browsers
    /// resolve names) and checks the result; anything that is not a bare name is refused
    /// with a message saying why.
    pub fn parse(raw: &str) -> Result<Fqdn, ValueError> {
        if let Some(name) = plain_name(raw) {
            return Ok(Fqdn(name.to_owned()));
        }
        Self::parse_any(raw)
    }

    /// Every rule, one after another: the path of any value [`plain_name`] does not vouch for.
    fn parse_any(raw: &str) -> Result<Fqdn, ValueError> {
        let fail = |m: String| ValueError::new(IndicatorType::Fqdn, m);
        let value = raw.trim();
        if value.is_empty() {
            return Err(fail("is empty".into()));
        }
        if let Some(problem) = refused_form(value) {
            return Err(fail(problem.into()));
        }
        let without_dot = value.strip_suffix('.').unwrap_or(value);
        if let Some(problem) = address_literal(without_dot) {
            return Err(fail(problem.into()));
        }
        if without_dot.is_empty() {
            return Err(fail("is only a dot".into()));
        }
        let ascii = to_ascii(without_dot).map_err(|_| {
            fail(
                "is not a valid internationalised domain name (IDNA: a bad xn-- label or a disallowed character)"
                    .into(),
            )
        })?;
        check_ascii_name(&ascii).map_err(fail)?;
        check_unicode_hyphens(&ascii).map_err(fail)?;
        Ok(Fqdn(ascii.into_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True when `self` is `domain` or a name under it.
    pub fn is_within(&self, domain: &Fqdn) -> bool {
        name_is_within(&self.0, &domain.0)
    }
}

/// True when `name` is `domain` or a name under it (both lowercase ASCII).
pub fn name_is_within(name: &str, domain: &str) -> bool {
    name == domain
        || (name.len() > domain.len()
            && name.ends_with(domain)
            && name.as_bytes()[name.len() - domain.len() - 1] == b'.')
}

/// The name a feed nearly always sends, checked in one pass over its bytes: labels of
/// lowercase ASCII letters, digits and inner hyphens, none an `xn--` label, at least two, the
/// last not numeric, within the length limits, with at most one trailing dot. Such a name is
/// its own normal form and every rule of [`Fqdn::parse_any`] accepts it unchanged; for any
/// other value this says `None` and those rules decide.
fn plain_name(value: &str) -> Option<&str> {
    let name = value.strip_suffix('.').unwrap_or(value);
    if name.len() > MAX_NAME_LEN {
        return None;
    }
    let mut labels = 0;
    let mut last_label: &[u8] = &[];
    for label in name.as_bytes().split(|b| *b == b'.') {
        let plain = !label.is_empty()
            && label.len() <= MAX_LABEL_LEN
            && label[0] != b'-'
            && label[label.len() - 1] != b'-'
            && !label.starts_with(b"xn--")
            && label
                .iter()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-');
        if !plain {
            return None;
        }
        labels += 1;
        last_label = label;
    }
    // A numeric or `0x` last label reads as an address (the full rules say which).
    let numeric = last_label.iter().all(u8::is_ascii_digit) || last_label.starts_with(b"0x");
    (labels >= 2 && !numeric).then_some(name)
}

/// IDNA's domain-to-ASCII. A name of lowercase letters, digits, hyphens and dots with no
/// `xn--` label (nearly every name a feed carries) maps to itself, so it is borrowed without
/// running the mapping; the `Cow` form means a name is copied once, after every check.
fn to_ascii(name: &str) -> Result<Cow<'_, str>, idna::Errors> {
    let plain = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
    if plain && !name.split('.').any(|label| label.starts_with("xn--")) {
        return Ok(Cow::Borrowed(name));
    }
    idna::domain_to_ascii(name).map(Cow::Owned)
}

impl fmt::Display for Fqdn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Ways analysts write a dot so that a name cannot be clicked; such values are not names.
const DEFANGED_DOTS: [&str; 5] = ["[.]", "(.)", "{.}", "[dot]", "(dot)"];

/// Forms that are something other than a bare name, each with why it is refused.
fn refused_form(value: &str) -> Option<&'static str> {
    // One pass finds the plain values (nearly all of them), which none of the rules below
    // can refuse: each rule needs one of these bytes (a defanged dot its bracket, a defanged
    // scheme its ':' or '[', a line break a control or non-ASCII byte).
    let suspect = |b: &u8| {
        matches!(
            b,
            b'[' | b'(' | b'{' | b':' | b'*' | b',' | b';' | b'/' | b'\\' | b'?' | b'#' | b'@'
        ) || b.is_ascii_whitespace()
            || b.is_ascii_control()
            || !b.is_ascii()
    };
    if !value.as_bytes().iter().any(suspect) {
        return None;
    }
    let lower = value.to_lowercase();
    if DEFANGED_DOTS.iter().any(|d| lower.contains(d)) {
        return Some("is defanged ([.]); send the plain name");
    }
    if is_defanged_scheme(&lower) {
        return Some("is defanged (hxxp); send the host name alone");
    }
    if value.contains("://") {
        return Some("is a URL (has a scheme); send the host name alone");
    }
    if value.contains('*') {
        return Some("holds a wildcard (*); Darktrace domains already match their subdomains");
    }
    if value.contains(',') {
        return Some("holds a comma, which would split Darktrace's entry list");
    }
    if value.contains(['\n', '\r', '\u{2028}', '\u{2029}', '\u{85}']) {
        return Some("holds a line break, which would split Darktrace's entry list");
    }
    if value.contains(';') {
        return Some("holds a semicolon; send one name per indicator");
    }
    if value.contains('/') || value.contains('\\') {
        return Some("holds a path (/); send the host name alone");
    }
    if value.contains('?') || value.contains('#') {
        return Some("holds a query or fragment; send the host name alone");
    }
    if value.contains('@') {
        return Some("holds user information (@); send the host name alone");
    }
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Some("holds whitespace or control characters");
    }
    None
}

/// `hxxp://`, `hxxps[:]//` and the like: a defanged URL scheme. A name that merely starts
/// with the letters `hxxp` is not refused.
fn is_defanged_scheme(lower: &str) -> bool {
    ["hxxps", "hxxp"].iter().any(|scheme| {
        lower
            .strip_prefix(scheme)
            .is_some_and(|rest| rest.starts_with(':') || rest.starts_with('['))
    })
}

/// An address, or an address with a port, given as a name.
fn address_literal(value: &str) -> Option<&'static str> {
    if value.parse::<Ipv4Addr>().is_ok() {
        return Some("is an IPv4 address, not a domain name; use type IP Address");
    }
    // Every IPv6 form holds a ':', so a value without one is never tried as IPv6.
    if value.contains(':') {
        if is_ipv6_literal(value) {
            return Some("is an IPv6 address, not a domain name; use type IPv6 Address");
        }
        return Some("holds a ':' (a port?); send the host name alone");
    }
    None
}

/// True for an IPv6 address, also in brackets or with a zone or prefix.
fn is_ipv6_literal(value: &str) -> bool {
    let bare = value.split(['%', '/']).next().unwrap_or(value);
    let bare = bare.strip_prefix('[').unwrap_or(bare);
    let bare = bare.strip_suffix(']').unwrap_or(bare);
    bare.parse::<Ipv6Addr>().is_ok()
}

/// Checks a name already mapped to ASCII by IDNA.
fn check_ascii_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("is empty once IDNA drops its invisible characters".into());
    }
    if name.len() > MAX_NAME_LEN {
        return Err(format!(
            "is {} characters long; a domain name has at most {MAX_NAME_LEN}",
            name.len()
        ));
    }
    if !name.contains('.') {
        return Err("has a single label; a domain name needs at least two (example.com)".into());
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err("has an empty label (two dots in a row, or a leading dot)".into());
        }
        if label.len() > MAX_LABEL_LEN {
            return Err(format!(
                "has a label of {} characters; at most {MAX_LABEL_LEN}",
                label.len()
            ));
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
        {
            return Err(format!(
                "holds '{}', which a domain name cannot hold",
                c.escape_default()
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!(
                "has a label that starts or ends with a hyphen ({label})"
            ));
        }
    }
    if name.parse::<Ipv4Addr>().is_ok() {
        return Err("is an IPv4 address, not a domain name; use type IP Address".into());
    }
    if is_numeric_label(name.rsplit('.').next().unwrap_or(name)) {
        return Err(
            "ends in a numeric label, so it reads as an IP address; no top-level domain is numeric"
                .into(),
        );
    }
    Ok(())
}

/// The hyphen rule holds for the name as written too: `-bücher` becomes `xn---bcher-kva`,
/// whose ASCII form no longer starts with a hyphen.
fn check_unicode_hyphens(ascii: &str) -> Result<(), String> {
    if !ascii.split('.').any(|label| label.starts_with("xn--")) {
        return Ok(());
    }
    let (unicode, _) = idna::domain_to_unicode(ascii);
    match unicode
        .split('.')
        .find(|label| label.starts_with('-') || label.ends_with('-'))
    {
        Some(label) => Err(format!(
            "has a label that starts or ends with a hyphen ({label})"
        )),
        None => Ok(()),
    }
}

/// A label that URL parsers read as a number (decimal, or `0x` hex), making the whole name
/// an IPv4 address to a browser (`1.2.3.0x4` is 1.2.3.4).
fn is_numeric_label(label: &str) -> bool {
    let digits = |s: &str, hex: bool| {
        s.bytes().all(|b| {
            if hex {
                b.is_ascii_hexdigit()
            } else {
                b.is_ascii_digit()
            }
        })
    };
    match label.strip_prefix("0x") {
        Some(rest) => digits(rest, true),
        None => !label.is_empty() && digits(label, false),
    }
}

/// Parses an `IP Address` value: exactly four decimal octets, no leading zeros.
pub fn parse_ipv4(raw: &str) -> Result<Ipv4Addr, ValueError> {
    let fail = |m: &str| ValueError::new(IndicatorType::Ipv4, m);
    let value = raw.trim();
    if value.is_empty() {
        return Err(fail("is empty"));
    }
    // Every IPv6 form holds a ':', so plain IPv4 text is never tried as IPv6.
    if value.contains(':') && is_ipv6_literal(value) {
        return Err(fail("is an IPv6 address; use type IPv6 Address"));
    }
    if value.contains('/') {
        return Err(fail(
            "has a CIDR prefix; send a single address (IP Address holds one)",
        ));
    }
    if value.contains(':') {
        return Err(fail("holds a ':' (a port?); send the address alone"));
    }
    if value.split('.').count() != 4 {
        return Err(fail("is not four dot-separated decimal octets"));
    }
    let mut bytes = [0u8; 4];
    for (slot, octet) in bytes.iter_mut().zip(value.split('.')) {
        if octet.is_empty() || !octet.bytes().all(|b| b.is_ascii_digit()) {
            return Err(fail("has an octet that is not decimal digits"));
        }
        if octet.len() > 1 && octet.starts_with('0') {
            return Err(fail(
                "has an octet with a leading zero (ambiguous: octal or decimal)",
            ));
        }
        *slot = octet
            .parse::<u8>()
            .map_err(|_| fail("has an octet above 255"))?;
    }
    Ok(Ipv4Addr::from(bytes))
}

/// Parses an `IPv6 Address` value: any textual form, without zone, brackets or prefix.
pub fn parse_ipv6(raw: &str) -> Result<Ipv6Addr, ValueError> {
    let fail = |m: &str| ValueError::new(IndicatorType::Ipv6, m);
    let value = raw.trim();
    if value.is_empty() {
        return Err(fail("is empty"));
    }
    if value.parse::<Ipv4Addr>().is_ok() {
        return Err(fail("is an IPv4 address; use type IP Address"));
    }
    if value.contains('%') {
        return Err(fail("has a zone (%); send the address alone"));
    }
    if value.starts_with('[') || value.ends_with(']') {
        return Err(fail("is in brackets; send the address alone"));
    }
    if value.contains('/') {
        return Err(fail("has a prefix length; send a single address"));
    }
    value
        .parse::<Ipv6Addr>()
        .map_err(|_| fail("is not a valid IPv6 address"))
}

/// A checked indicator, ready to be sent.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Indicator {
    Fqdn(Fqdn),
    Ipv4(Ipv4Addr),
    Ipv6(Ipv6Addr),
}

impl Indicator {
    pub fn kind(&self) -> IndicatorType {
        match self {
            Indicator::Fqdn(_) => IndicatorType::Fqdn,
            Indicator::Ipv4(_) => IndicatorType::Ipv4,
            Indicator::Ipv6(_) => IndicatorType::Ipv6,
        }
    }

    /// [`Indicator::wire_value`], moving a name's text rather than copying it.
    pub fn into_wire_value(self) -> String {
        match self {
            Indicator::Fqdn(name) => name.0,
            other => other.wire_value(),
        }
    }

    /// The exact text Darktrace receives: IPv6 in full exploded lowercase form, since
    /// compressed forms are reported not to be accepted.
    pub fn wire_value(&self) -> String {
        match self {
            Indicator::Fqdn(name) => name.0.clone(),
            Indicator::Ipv4(ip) => dotted_ipv4(ip),
            Indicator::Ipv6(ip) => exploded_ipv6(ip),
        }
    }
}

/// `198.51.100.7`, written digit by digit: the same text as `Display`, without the
/// formatting machinery, which showed in the profile of screening a large batch.
fn dotted_ipv4(ip: &Ipv4Addr) -> String {
    let mut out = String::with_capacity(15);
    for (i, octet) in ip.octets().into_iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        if octet >= 100 {
            out.push(char::from(b'0' + octet / 100));
        }
        if octet >= 10 {
            out.push(char::from(b'0' + octet / 10 % 10));
        }
        out.push(char::from(b'0' + octet % 10));
    }
    out
}

/// `2001:db8::1` → `2001:0db8:0000:0000:0000:0000:0000:0001`.
pub fn exploded_ipv6(ip: &Ipv6Addr) -> String {
    let s = ip.segments();
    format!(
        "{:04x}:{:04x}:{:04x}:{:04x}:{:04x}:{:04x}:{:04x}:{:04x}",
        s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

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
}

/// Properties over arbitrary and near-miss input: the parsers never panic, and whatever they
/// accept is already in the form they produce.
#[cfg(test)]
mod props {
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
}
