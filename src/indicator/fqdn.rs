//! `FQDN` values: IDNA to ASCII, the label rules, and the forms that are not bare names.

use std::borrow::Cow;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::{IndicatorType, ValueError};

/// A fully qualified domain name in the form sent to Darktrace: lowercase ASCII (IDNA),
/// no trailing dot, at least two labels.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fqdn(pub(super) String);

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
    pub(super) fn parse_any(raw: &str) -> Result<Fqdn, ValueError> {
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
pub(super) fn plain_name(value: &str) -> Option<&str> {
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
pub(super) fn to_ascii(name: &str) -> Result<Cow<'_, str>, idna::Errors> {
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
pub(super) fn is_ipv6_literal(value: &str) -> bool {
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
