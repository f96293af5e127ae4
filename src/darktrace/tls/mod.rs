//! Which certificate Darktrace may present, and what to say when it presents another.
//!
//! Appliances ship with a self-signed certificate, often made by `openssl req -x509`, which
//! marks it `CA:TRUE`; WebPKI (rightly, for a chain) refuses a CA certificate as a server's.
//! So trust here is WebPKI (the public roots plus `DARKTRACE_CA_FILE`) with two pins on top:
//! a certificate of `DARKTRACE_CA_FILE` that is byte-for-byte the one presented is accepted
//! whatever its flags, names and dates, and `DARKTRACE_CERT_SHA256`, when set, is the only
//! thing that decides (a certificate matching no fingerprint is refused even if WebPKI would
//! take it). The handshake signature is always verified, so a pin proves the server holds
//! the pinned certificate's key.
//!
//! The verifier keeps the last refusal (certificate and reason) so `check` can print the
//! presented certificate's fingerprint and names with advice that fits the cause.

use std::sync::{Arc, Mutex};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, OtherError, RootCertStore,
    SignatureScheme,
};

use crate::config::{ConfigError, TlsTrust};

mod diagnosis;

pub use diagnosis::{Cause, Presented, explain_refusal};

/// The SHA-256 of a certificate's DER bytes, as `openssl x509 -fingerprint -sha256` computes it.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    pub fn of(der: &[u8]) -> Fingerprint {
        let digest = ring::digest::digest(&ring::digest::SHA256, der);
        let mut bytes = [0; 32];
        bytes.copy_from_slice(digest.as_ref());
        Fingerprint(bytes)
    }

    /// One fingerprint as people copy it: hex, colons and case ignored, with or without
    /// openssl's `SHA256 Fingerprint=` in front.
    pub fn parse(raw: &str) -> Result<Fingerprint, String> {
        let text = raw.trim();
        let text = match text.to_ascii_lowercase().find("fingerprint=") {
            Some(at) => &text[at + "fingerprint=".len()..],
            None => text,
        };
        let hex_digits: String = text.chars().filter(|c| *c != ':').collect();
        if let Some(bad) = hex_digits.chars().find(|c| !c.is_ascii_hexdigit()) {
            return Err(format!(
                "'{raw}' holds '{bad}', which is not a hex digit; give the SHA-256 fingerprint as openssl x509 -noout -fingerprint -sha256 prints it"
            ));
        }
        let mut bytes = [0; 32];
        hex::decode_to_slice(&hex_digits, &mut bytes).map_err(|_| {
            format!(
                "'{raw}' has {} hex digits; a SHA-256 fingerprint has 64",
                hex_digits.len()
            )
        })?;
        Ok(Fingerprint(bytes))
    }
}

impl std::fmt::Display for Fingerprint {
    /// Upper-case hex with colons, as openssl prints it, so the two can be compared by eye.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, byte) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{byte:02X}")?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

/// `DARKTRACE_CERT_SHA256` (or ThreatQ's, named by `setting`): comma-separated
/// fingerprints; empty means none.
pub fn parse_pins(raw: &str, setting: &'static str) -> Result<Vec<Fingerprint>, ConfigError> {
    raw.split([',', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|one| Fingerprint::parse(one).map_err(|p| ConfigError::new(setting, p)))
        .collect()
}

/// The certificates of a CA file (`DARKTRACE_CA_FILE`, or ThreatQ's, named by `setting`),
/// each checked to be a certificate that can be trusted; every problem names the setting.
pub fn ca_certificates(
    pem: &[u8],
    setting: &'static str,
) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let fail = |p: String| ConfigError::new(setting, p);
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fail(format!("is not a PEM bundle: {e}")))?;
    if certs.is_empty() {
        return Err(fail("holds no PEM certificate".into()));
    }
    for (n, cert) in certs.iter().enumerate() {
        webpki::anchor_from_trusted_cert(cert).map_err(|e| {
            fail(format!(
                "certificate {} of {} is not a usable X.509 certificate ({e:?})",
                n + 1,
                certs.len()
            ))
        })?;
    }
    Ok(certs)
}

/// What the operator configured, for advice that does not suggest what is already set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrustSetup {
    pub ca_file: bool,
    pub pins: bool,
}

impl TrustSetup {
    pub fn of(trust: &TlsTrust) -> TrustSetup {
        TrustSetup {
            ca_file: trust.ca_pem.is_some(),
            pins: !trust.cert_sha256.is_empty(),
        }
    }
}

/// A certificate the verifier refused, and why.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub certificate: CertificateDer<'static>,
    pub error: rustls::Error,
}

/// Where the verifier leaves its last refusal.
pub type RefusalSlot = Arc<Mutex<Option<Refusal>>>;

/// The refusal of a certificate that matches no fingerprint of the setting it names
/// (`DARKTRACE_CERT_SHA256` or `THREATQ_CERT_SHA256`).
#[derive(Debug)]
pub struct PinMismatch(pub &'static str);

impl std::fmt::Display for PinMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the certificate matches no {} fingerprint", self.0)
    }
}

impl std::error::Error for PinMismatch {}

/// The TLS configuration of the Darktrace client (ALPN as reqwest sets it: h2, then
/// HTTP/1.1), and the slot its verifier records refusals in.
pub fn client_config(config: &TlsTrust) -> Result<(ClientConfig, RefusalSlot), ConfigError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let slot = RefusalSlot::default();
    let names = config.names;
    let trust = if !config.verify {
        Trust::Anything
    } else if !config.cert_sha256.is_empty() {
        Trust::Pinned(config.cert_sha256.clone())
    } else {
        let mut roots = RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let exact = match &config.ca_pem {
            Some(pem) => ca_certificates(pem, names.ca_file)?,
            None => Vec::new(),
        };
        for cert in &exact {
            roots.add(cert.clone()).map_err(|e| {
                ConfigError::new(
                    names.ca_file,
                    format!("holds a certificate that cannot be trusted ({e})"),
                )
            })?;
        }
        let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|e| ConfigError::new(names.ca_file, format!("cannot be used ({e})")))?;
        Trust::WebPki { webpki, exact }
    };
    let verifier = Arc::new(DarktraceVerifier {
        trust,
        pins_setting: names.cert_sha256,
        provider: provider.clone(),
        refusals: slot.clone(),
    });
    let mut tls = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ConfigError::new(names.host, format!("TLS setup failed: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok((tls, slot))
}

#[derive(Debug)]
enum Trust {
    /// `ENABLE_SSL_VERIFICATION=false`.
    Anything,
    /// `DARKTRACE_CERT_SHA256`: these and no others.
    Pinned(Vec<Fingerprint>),
    /// The roots and CA file; `exact` are the CA file's certificates, accepted as they are
    /// when presented byte for byte.
    WebPki {
        webpki: Arc<WebPkiServerVerifier>,
        exact: Vec<CertificateDer<'static>>,
    },
}

#[derive(Debug)]
struct DarktraceVerifier {
    trust: Trust,
    /// The pins' setting, named in a refusal.
    pins_setting: &'static str,
    provider: Arc<CryptoProvider>,
    refusals: RefusalSlot,
}

impl DarktraceVerifier {
    fn decide(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match &self.trust {
            Trust::Anything => Ok(ServerCertVerified::assertion()),
            Trust::Pinned(pins) => {
                if pins.contains(&Fingerprint::of(end_entity)) {
                    Ok(ServerCertVerified::assertion())
                } else {
                    Err(CertificateError::Other(OtherError(Arc::new(PinMismatch(
                        self.pins_setting,
                    ))))
                    .into())
                }
            }
            Trust::WebPki { webpki, exact } => webpki
                .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
                .or_else(|refused| {
                    if exact.iter().any(|c| c.as_ref() == end_entity.as_ref()) {
                        Ok(ServerCertVerified::assertion())
                    } else {
                        Err(refused)
                    }
                }),
        }
    }
}

impl ServerCertVerifier for DarktraceVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let decision = self.decide(end_entity, intermediates, server_name, ocsp_response, now);
        if let Err(error) = &decision {
            let refusal = Refusal {
                certificate: end_entity.clone().into_owned(),
                error: error.clone(),
            };
            *self.refusals.lock().unwrap_or_else(|p| p.into_inner()) = Some(refusal);
        }
        decision
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The rustls error in `err`, looking inside `io::Error`s, which hide what they wrap from
/// `source()` and are nested two deep by the HTTP stack.
pub fn rustls_error_in<'e>(
    err: &'e (dyn std::error::Error + 'static),
) -> Option<&'e rustls::Error> {
    let mut current = err;
    loop {
        if let Some(tls) = current.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        current = current.downcast_ref::<std::io::Error>()?.get_ref()?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPENSSL_LINE: &str = "sha256 Fingerprint=1F:2E:3D:4C:5B:6A:79:88:97:A6:B5:C4:D3:E2:F1:00:1F:2E:3D:4C:5B:6A:79:88:97:A6:B5:C4:D3:E2:F1:00";

    #[test]
    fn a_fingerprint_is_read_as_openssl_prints_it_with_or_without_its_prefix() {
        let with_prefix = Fingerprint::parse(OPENSSL_LINE).unwrap();
        let bare = Fingerprint::parse(&OPENSSL_LINE[19..].to_lowercase()).unwrap();
        let no_colons = Fingerprint::parse(&OPENSSL_LINE[19..].replace(':', "")).unwrap();
        assert_eq!(with_prefix, bare);
        assert_eq!(with_prefix, no_colons);
        assert_eq!(with_prefix.to_string(), OPENSSL_LINE[19..]);
        let old_openssl = Fingerprint::parse(&OPENSSL_LINE.replace("sha256", "SHA256")).unwrap();
        assert_eq!(with_prefix, old_openssl);
    }

    #[test]
    fn a_malformed_fingerprint_names_the_setting() {
        for bad in [
            "AB:CD",
            &"0".repeat(66),
            &"G".repeat(64),
            "sha256 Fingerprint=",
        ] {
            let err = parse_pins(bad, "DARKTRACE_CERT_SHA256").unwrap_err();
            assert_eq!(err.setting, "DARKTRACE_CERT_SHA256", "{bad}");
        }
        let two = format!("{}, {}", &OPENSSL_LINE[19..], "00".repeat(32));
        assert_eq!(parse_pins(&two, "DARKTRACE_CERT_SHA256").unwrap().len(), 2);
        assert!(parse_pins(" ", "DARKTRACE_CERT_SHA256").unwrap().is_empty());
    }

    #[test]
    fn the_fingerprint_is_sha256_of_the_der_bytes() {
        // SHA-256 of the empty input.
        assert_eq!(
            Fingerprint::of(b"")
                .to_string()
                .replace(':', "")
                .to_lowercase(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn a_pem_with_garbage_inside_names_the_ca_file() {
        let pem =
            "-----BEGIN CERTIFICATE-----\nTm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n";
        let err = ca_certificates(pem.as_bytes(), "DARKTRACE_CA_FILE").unwrap_err();
        assert_eq!(err.setting, "DARKTRACE_CA_FILE", "{err}");
        let err = ca_certificates(b"-----BEGIN CERTIFICATE-----\n!!!\n", "DARKTRACE_CA_FILE")
            .unwrap_err();
        assert_eq!(err.setting, "DARKTRACE_CA_FILE", "{err}");
        let err = ca_certificates(b"no pem here", "DARKTRACE_CA_FILE").unwrap_err();
        assert!(err.problem.contains("no PEM certificate"), "{err}");
    }
}
