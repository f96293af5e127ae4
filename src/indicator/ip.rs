//! `IP Address` and `IPv6 Address` values, and the forms they are sent in.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::fqdn::is_ipv6_literal;
use super::{IndicatorType, ValueError};

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

/// `198.51.100.7`, written digit by digit: the same text as `Display`, without the
/// formatting machinery, which showed in the profile of screening a large batch.
pub(super) fn dotted_ipv4(ip: &Ipv4Addr) -> String {
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
