//! How the certificate of one HTTPS peer is trusted. Darktrace and an on-premises ThreatQ are
//! both often self-signed, so both take the same three settings, each under its own names;
//! `darktrace::tls` builds the verifier from this.

use std::path::Path;

use super::ConfigError;
use super::parse::parse_bool;
use crate::darktrace::tls::{Fingerprint, ca_certificates, parse_pins};

/// The names of one peer's trust settings, so every problem names the one to change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrustNames {
    pub verify: &'static str,
    pub ca_file: &'static str,
    pub cert_sha256: &'static str,
    /// The peer's address setting, for a TLS setup that fails as a whole.
    pub host: &'static str,
}

pub const DARKTRACE_TRUST: TrustNames = TrustNames {
    verify: "ENABLE_SSL_VERIFICATION",
    ca_file: "DARKTRACE_CA_FILE",
    cert_sha256: "DARKTRACE_CERT_SHA256",
    host: "DARKTRACE_HOST",
};

pub const THREATQ_TRUST: TrustNames = TrustNames {
    verify: "THREATQ_ENABLE_SSL_VERIFICATION",
    ca_file: "THREATQ_CA_FILE",
    cert_sha256: "THREATQ_CERT_SHA256",
    host: "THREATQ_URL",
};

/// One peer's trust: checked certificates (the public roots plus `ca_pem`), `cert_sha256`
/// pins when set (the only certificates accepted), or nothing checked when `verify` is off.
#[derive(Debug, Clone)]
pub struct TlsTrust {
    pub names: TrustNames,
    pub verify: bool,
    /// PEM bytes of extra CAs (or the appliance's own certificate) to trust.
    pub ca_pem: Option<Vec<u8>>,
    /// When not empty, the only certificates the peer may present.
    pub cert_sha256: Vec<Fingerprint>,
}

impl TlsTrust {
    /// The default: certificates checked against the public roots, nothing else.
    pub fn public_roots(names: TrustNames) -> TlsTrust {
        TlsTrust {
            names,
            verify: true,
            ca_pem: None,
            cert_sha256: Vec::new(),
        }
    }

    /// Reads the three settings; a CA file is read and its certificates checked now, so a
    /// wrong file stops the start rather than the first call.
    pub fn read(
        names: TrustNames,
        verify: &str,
        ca_file: Option<&Path>,
        cert_sha256: Option<&str>,
    ) -> Result<TlsTrust, ConfigError> {
        let ca_pem = match ca_file {
            Some(path) => {
                let pem = std::fs::read(path).map_err(|e| {
                    ConfigError::new(
                        names.ca_file,
                        format!("cannot read {}: {e}", path.display()),
                    )
                })?;
                ca_certificates(&pem, names.ca_file)?;
                Some(pem)
            }
            None => None,
        };
        let trust = TlsTrust {
            names,
            verify: parse_bool(names.verify, verify)?,
            ca_pem,
            cert_sha256: match cert_sha256 {
                Some(raw) => parse_pins(raw, names.cert_sha256)?,
                None => Vec::new(),
            },
        };
        // With checks off, a pin or a CA file would be ignored: the user means to trust one
        // certificate and would trust any.
        let ignored = if !trust.cert_sha256.is_empty() {
            Some(names.cert_sha256)
        } else {
            trust.ca_pem.as_ref().map(|_| names.ca_file)
        };
        match ignored {
            Some(ignored) if !trust.verify => Err(ConfigError::new(
                names.verify,
                format!(
                    "false checks no certificate, so {ignored} would be ignored; leave {} at true ({ignored} is then the trust it needs) or unset {ignored}",
                    names.verify
                ),
            )),
            _ => Ok(trust),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_problem_names_the_peers_own_setting() {
        let missing = Path::new("/nonexistent/ca.pem");
        for names in [DARKTRACE_TRUST, THREATQ_TRUST] {
            let err = TlsTrust::read(names, "true", Some(missing), None).unwrap_err();
            assert_eq!(err.setting, names.ca_file);
            let err = TlsTrust::read(names, "true", None, Some("AB:CD")).unwrap_err();
            assert_eq!(err.setting, names.cert_sha256);
            let err = TlsTrust::read(names, "maybe", None, None).unwrap_err();
            assert_eq!(err.setting, names.verify);
        }
        let trust = TlsTrust::read(THREATQ_TRUST, "false", None, Some(" ")).unwrap();
        assert!(!trust.verify && trust.cert_sha256.is_empty() && trust.ca_pem.is_none());
    }

    #[test]
    fn checks_off_with_a_pin_or_a_ca_file_is_refused_rather_than_the_pin_ignored() {
        let pin = ["AB"; 32].join(":");
        let ca = std::env::temp_dir().join(format!("trust-test-{}.pem", std::process::id()));
        let cert = crate::simulator::tls::SelfSigned::generate(&[]).unwrap();
        std::fs::write(&ca, cert.cert_pem).unwrap();
        for names in [DARKTRACE_TRUST, THREATQ_TRUST] {
            assert!(TlsTrust::read(names, "true", Some(&ca), Some(&pin)).is_ok());
            let err = TlsTrust::read(names, "false", None, Some(&pin)).unwrap_err();
            assert_eq!(err.setting, names.verify);
            assert!(err.to_string().contains(names.cert_sha256), "{err}");
            let err = TlsTrust::read(names, "false", Some(&ca), None).unwrap_err();
            assert_eq!(err.setting, names.verify);
            assert!(err.to_string().contains(names.ca_file), "{err}");
        }
        std::fs::remove_file(&ca).unwrap();
    }
}
