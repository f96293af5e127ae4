//! HTTPS for the simulator with a fresh certificate, so certificate verification,
//! `DARKTRACE_CA_FILE`, `DARKTRACE_CERT_SHA256` and `ENABLE_SSL_VERIFICATION=false` can be
//! tried against something that really speaks TLS. Besides the plain self-signed kind it
//! makes the `CA:TRUE` kind `openssl req -x509` makes, and leaves issued by a CA of its own.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert};
use tokio_rustls::rustls::sign::CertifiedKey;
use tokio_rustls::server::TlsStream;

/// How long a client gets to finish its handshake before the connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A certificate and its key, made when the simulator starts: self-signed, or issued by an
/// [`Authority`].
pub struct SelfSigned {
    /// The certificate in PEM, to hand to clients as the CA to trust.
    pub cert_pem: String,
    cert_der: CertificateDer<'static>,
    key_der: Vec<u8>,
}

impl std::fmt::Debug for SelfSigned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SelfSigned").finish_non_exhaustive()
    }
}

impl SelfSigned {
    /// A certificate for `localhost`, `127.0.0.1` and `::1`, plus `extra` names or addresses.
    pub fn generate(extra: &[String]) -> Result<SelfSigned, rcgen::Error> {
        let mut names = vec!["localhost".to_owned(), "127.0.0.1".into(), "::1".into()];
        names.extend(
            extra
                .iter()
                .filter(|n| !names.contains(n))
                .cloned()
                .collect::<Vec<_>>(),
        );
        let rcgen::CertifiedKey { cert, signing_key } = rcgen::generate_simple_self_signed(names)?;
        Ok(SelfSigned {
            cert_pem: cert.pem(),
            cert_der: cert.der().clone(),
            key_der: signing_key.serialize_der(),
        })
    }

    /// A self-signed certificate marked `CA:TRUE` (critical basicConstraints, subject
    /// `CN=localhost`), as `openssl req -x509` (OpenSSL 3) makes one, for the same names as
    /// [`SelfSigned::generate`].
    pub fn generate_ca_flagged(extra: &[String]) -> Result<SelfSigned, rcgen::Error> {
        self_signed_with(extra, IsCa::Ca(BasicConstraints::Unconstrained))
    }

    /// A self-signed certificate with an explicit `basicConstraints CA:FALSE`.
    pub fn generate_not_ca(extra: &[String]) -> Result<SelfSigned, rcgen::Error> {
        self_signed_with(extra, IsCa::ExplicitNoCa)
    }

    /// The same certificate with a fresh key that is not its own: a server that copied an
    /// appliance's certificate but cannot sign for it. A client that verifies the handshake
    /// signature refuses it even when the certificate is pinned.
    pub fn impostor(&self) -> Result<SelfSigned, rcgen::Error> {
        Ok(SelfSigned {
            cert_pem: self.cert_pem.clone(),
            cert_der: self.cert_der.clone(),
            key_der: KeyPair::generate()?.serialize_der(),
        })
    }

    fn server_config(&self) -> Result<ServerConfig, tokio_rustls::rustls::Error> {
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        // A resolver rather than `with_single_cert`, which would refuse an impostor's
        // mismatched key before any client could.
        let key = provider
            .key_provider
            .load_private_key(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
                self.key_der.clone(),
            )))?;
        let certified = Arc::new(CertifiedKey::new(vec![self.cert_der.clone()], key));
        Ok(ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(OneCertificate(certified))))
    }
}

/// Presents one certificate to every client.
#[derive(Debug)]
struct OneCertificate(Arc<CertifiedKey>);

impl ResolvesServerCert for OneCertificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

fn default_names(extra: &[String]) -> Vec<String> {
    let mut names = vec!["localhost".to_owned(), "127.0.0.1".into(), "::1".into()];
    for name in extra {
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    names
}

fn self_signed_with(extra: &[String], is_ca: IsCa) -> Result<SelfSigned, rcgen::Error> {
    let mut params = CertificateParams::new(default_names(extra))?;
    params.is_ca = is_ca;
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    let key = KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    Ok(SelfSigned {
        cert_pem: cert.pem(),
        cert_der: cert.der().clone(),
        key_der: key.serialize_der(),
    })
}

/// A CA of the simulator's own, to issue leaf certificates from: how an appliance with a
/// certificate from a private CA looks.
pub struct Authority {
    /// The CA certificate in PEM, to hand to clients as `DARKTRACE_CA_FILE`.
    pub cert_pem: String,
    issuer: rcgen::Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authority").finish_non_exhaustive()
    }
}

impl Authority {
    pub fn generate() -> Result<Authority, rcgen::Error> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "darktrace-export simulator CA");
        let key = KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        Ok(Authority {
            cert_pem: cert.pem(),
            issuer: rcgen::Issuer::new(params, key),
        })
    }

    /// A leaf certificate (no CA flag) for exactly `names`.
    pub fn issue(&self, names: &[&str]) -> Result<SelfSigned, rcgen::Error> {
        self.issue_with(names, |_| {})
    }

    /// A leaf certificate for `names` whose validity ended a year ago.
    pub fn issue_expired(&self, names: &[&str]) -> Result<SelfSigned, rcgen::Error> {
        self.issue_with(names, |params| {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        })
    }

    fn issue_with(
        &self,
        names: &[&str],
        adjust: impl FnOnce(&mut CertificateParams),
    ) -> Result<SelfSigned, rcgen::Error> {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(names)?;
        params.is_ca = IsCa::ExplicitNoCa;
        adjust(&mut params);
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(SelfSigned {
            cert_pem: cert.pem(),
            cert_der: cert.der().clone(),
            key_der: key.serialize_der(),
        })
    }
}

/// Accepts TCP connections and completes TLS handshakes in the background, so one slow or
/// refused handshake never holds up the others; axum gets finished TLS streams.
pub struct TlsListener {
    local: SocketAddr,
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
}

impl TlsListener {
    pub fn new(listener: TcpListener, identity: &SelfSigned) -> std::io::Result<TlsListener> {
        let local = listener.local_addr()?;
        let config = identity
            .server_config()
            .map_err(|e| std::io::Error::other(format!("TLS setup failed: {e}")))?;
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let (tx, ready) = mpsc::channel(64);
        tokio::spawn(async move {
            while !tx.is_closed() {
                let (tcp, peer) = match listener.accept().await {
                    Ok(accepted) => accepted,
                    Err(_) => {
                        // Out of descriptors and the like: wait instead of spinning.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    // A client that refuses the certificate ends its connection here.
                    if let Ok(Ok(stream)) =
                        tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await
                    {
                        let _ = tx.send((stream, peer)).await;
                    }
                });
            }
        });
        Ok(TlsListener { local, ready })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(accepted) => accepted,
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.local)
    }
}
