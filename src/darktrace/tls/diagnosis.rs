//! What `check` says about a refused certificate: what was presented (fingerprint, names,
//! dates), why it was refused, and advice that fits the cause and does not suggest what is
//! already set.

use std::net::IpAddr;

use rustls::{CertificateError, OtherError};

use super::{Fingerprint, PinMismatch, Refusal, TrustSetup};

/// Why a certificate was refused, in the terms advice is given in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause {
    /// A `CA:TRUE` certificate presented as the server's own.
    CaAsEndEntity,
    UnknownIssuer,
    /// Not valid for the host; the names it holds, when rustls said.
    NameMismatch(Vec<String>),
    Expired,
    NotYetValid,
    PinMismatch,
    Other(String),
}

impl Cause {
    /// The cause of a certificate refusal; `None` for TLS errors of another kind.
    pub fn of(error: &rustls::Error) -> Option<Cause> {
        let rustls::Error::InvalidCertificate(why) = error else {
            return None;
        };
        Some(match why {
            CertificateError::UnknownIssuer => Cause::UnknownIssuer,
            CertificateError::NotValidForName => Cause::NameMismatch(Vec::new()),
            CertificateError::NotValidForNameContext { presented, .. } => {
                Cause::NameMismatch(presented.clone())
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => Cause::Expired,
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                Cause::NotYetValid
            }
            CertificateError::Other(OtherError(inner)) if inner.is::<PinMismatch>() => {
                Cause::PinMismatch
            }
            CertificateError::Other(OtherError(inner))
                if matches!(
                    inner.downcast_ref::<webpki::Error>(),
                    Some(webpki::Error::CaUsedAsEndEntity)
                ) =>
            {
                Cause::CaAsEndEntity
            }
            other => Cause::Other(format!("{other:?}")),
        })
    }

    /// A few words for the log line and the answer's detail.
    pub fn words(&self) -> String {
        match self {
            Cause::CaAsEndEntity => {
                "it is a CA certificate (CA:TRUE) presented as the server's own, CaUsedAsEndEntity"
                    .into()
            }
            Cause::UnknownIssuer => "no trusted CA issued it, UnknownIssuer".into(),
            Cause::NameMismatch(_) => "it is not valid for DARKTRACE_HOST's name".into(),
            Cause::Expired => "it has expired, or this host's clock is wrong".into(),
            Cause::NotYetValid => "it is not valid yet, or this host's clock is wrong".into(),
            Cause::PinMismatch => "it matches no DARKTRACE_CERT_SHA256 fingerprint".into(),
            Cause::Other(what) => what.clone(),
        }
    }

    /// What to do about it. `fingerprint` is the presented certificate's when known; the
    /// CA file is never suggested when one is already set, since it was just refused.
    pub fn advice(&self, setup: TrustSetup, fingerprint: Option<&Fingerprint>) -> String {
        let pin = match fingerprint {
            Some(fp) => format!("DARKTRACE_CERT_SHA256={fp}"),
            None => "DARKTRACE_CERT_SHA256 to its fingerprint (`darktrace-export check` prints it)"
                .into(),
        };
        let last_resort = "ENABLE_SSL_VERIFICATION=false turns checking off, as a last resort";
        match self {
            Cause::CaAsEndEntity if setup.ca_file => format!(
                "the CA file given does not hold this very certificate; set {pin} once the appliance's administrator confirms it ({last_resort})"
            ),
            Cause::CaAsEndEntity => format!(
                "trust this very certificate: put it in DARKTRACE_CA_FILE (an exact copy is accepted whatever its CA flag and names) or set {pin} ({last_resort})"
            ),
            Cause::UnknownIssuer if setup.ca_file => format!(
                "neither the public roots nor the CA file given vouch for it; set {pin} once the appliance's administrator confirms it ({last_resort})"
            ),
            Cause::UnknownIssuer => format!(
                "trust the CA that issued it, or this very certificate, with DARKTRACE_CA_FILE, or set {pin} ({last_resort})"
            ),
            Cause::NameMismatch(names) if names.is_empty() => format!(
                "set DARKTRACE_HOST to a name the certificate holds, or set {pin}"
            ),
            Cause::NameMismatch(names) => format!(
                "it holds {}: set DARKTRACE_HOST to one of them (keeping the port), or set {pin}",
                names.join(", ")
            ),
            Cause::Expired | Cause::NotYetValid => format!(
                "check this host's clock, and have the appliance's certificate renewed; {pin} accepts this very certificate whatever its dates"
            ),
            Cause::PinMismatch => "if the appliance's certificate was renewed, add its new fingerprint to DARKTRACE_CERT_SHA256 once the appliance's administrator confirms it".into(),
            Cause::Other(_) if setup.ca_file => format!("set {pin}, or {last_resort}"),
            Cause::Other(_) => format!(
                "trust its CA with DARKTRACE_CA_FILE, or set {pin} ({last_resort})"
            ),
        }
    }
}

/// What a presented certificate says about itself, for `check`'s line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presented {
    pub fingerprint: Fingerprint,
    /// SAN DNS names and IP addresses, then `CN=` of the subject.
    pub names: Vec<String>,
    /// `not before` and `not after`, as RFC 3339 dates.
    pub validity: Option<(String, String)>,
}

impl Presented {
    pub fn of(der: &[u8]) -> Presented {
        let fingerprint = Fingerprint::of(der);
        let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
            return Presented {
                fingerprint,
                names: Vec::new(),
                validity: None,
            };
        };
        let mut names = Vec::new();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                match name {
                    x509_parser::extensions::GeneralName::DNSName(dns) => {
                        names.push((*dns).to_owned())
                    }
                    x509_parser::extensions::GeneralName::IPAddress(raw) => {
                        if let Some(ip) = ip_from(raw) {
                            names.push(ip.to_string());
                        }
                    }
                    _ => {}
                }
            }
        }
        for cn in cert.subject().iter_common_name() {
            if let Ok(text) = cn.as_str() {
                names.push(format!("CN={text}"));
            }
        }
        let date = |t: x509_parser::time::ASN1Time| t.to_datetime().date().to_string();
        let validity = Some((
            date(cert.validity().not_before),
            date(cert.validity().not_after),
        ));
        Presented {
            fingerprint,
            names,
            validity,
        }
    }

    /// `SHA-256 AB:..., names a, b, CN=c, valid 2024-01-01 to 2025-01-01`.
    pub fn describe(&self) -> String {
        let names = if self.names.is_empty() {
            "no names".to_owned()
        } else {
            format!("names {}", self.names.join(", "))
        };
        let validity = self
            .validity
            .as_ref()
            .map(|(from, to)| format!(", valid {from} to {to}"))
            .unwrap_or_default();
        format!("SHA-256 {}, {names}{validity}", self.fingerprint)
    }
}

fn ip_from(raw: &[u8]) -> Option<IpAddr> {
    match raw.len() {
        4 => Some(IpAddr::from(<[u8; 4]>::try_from(raw).ok()?)),
        16 => Some(IpAddr::from(<[u8; 16]>::try_from(raw).ok()?)),
        _ => None,
    }
}

/// One line for `check` about a refused certificate: what was presented, why it was
/// refused, and what to do.
pub fn explain_refusal(refusal: &Refusal, setup: TrustSetup) -> String {
    let presented = Presented::of(refusal.certificate.as_ref());
    let cause = match Cause::of(&refusal.error) {
        // The names rustls compared come from the certificate; the parsed list also has
        // the CN, so it is the one shown.
        Some(Cause::NameMismatch(_)) => Cause::NameMismatch(
            presented
                .names
                .iter()
                .filter(|n| !n.starts_with("CN="))
                .cloned()
                .collect(),
        ),
        Some(cause) => cause,
        None => Cause::Other(refusal.error.to_string()),
    };
    format!(
        "Darktrace's certificate was refused ({}); it presented {}: {}",
        cause.words(),
        presented.describe(),
        cause.advice(setup, Some(&presented.fingerprint))
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn advice_never_suggests_the_ca_file_once_it_is_set() {
        let fp = Fingerprint::of(b"x");
        let set = TrustSetup {
            ca_file: true,
            pins: false,
        };
        for cause in [
            Cause::CaAsEndEntity,
            Cause::UnknownIssuer,
            Cause::Other("BadSignature".into()),
        ] {
            let text = cause.advice(set, Some(&fp));
            assert!(!text.contains("DARKTRACE_CA_FILE"), "{cause:?}: {text}");
            assert!(
                text.contains(&format!("DARKTRACE_CERT_SHA256={fp}")),
                "{text}"
            );
            let unset = cause.advice(TrustSetup::default(), Some(&fp));
            assert!(unset.contains("DARKTRACE_CA_FILE"), "{cause:?}: {unset}");
        }
    }

    #[test]
    fn each_refusal_of_rustls_gets_its_cause() {
        let ca = rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(
            webpki::Error::CaUsedAsEndEntity,
        ))));
        assert_eq!(Cause::of(&ca), Some(Cause::CaAsEndEntity));
        let pin = rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(
            PinMismatch("DARKTRACE_CERT_SHA256"),
        ))));
        assert_eq!(Cause::of(&pin), Some(Cause::PinMismatch));
        assert_eq!(
            Cause::of(&CertificateError::Expired.into()),
            Some(Cause::Expired)
        );
        assert_eq!(Cause::of(&rustls::Error::HandshakeNotComplete), None);
    }
}
