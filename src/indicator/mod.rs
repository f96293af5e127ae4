//! Checked, normalised indicator values: parse, don't validate.
//!
//! Only an [`Indicator`] can reach the Darktrace client, and one can only be made by the
//! parsers here, so a value that Darktrace could misread (a comma splits `addlist`) or that
//! is not what the analyst meant (a URL, a defanged name) never leaves the service.

mod fqdn;
mod ip;
#[cfg(test)]
mod props;
#[cfg(test)]
mod tests;

pub use fqdn::{Fqdn, name_is_within};
pub use ip::{exploded_ipv6, parse_ipv4, parse_ipv6};

use std::net::{Ipv4Addr, Ipv6Addr};

use ip::dotted_ipv4;

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
