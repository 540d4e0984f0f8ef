//! TLS for Laissez's listeners (`laissez serve`, `laissez gate`): a rustls
//! acceptor built from a PEM certificate chain and its private key, on the
//! ring provider, offering ALPN `http/1.1` (the listeners speak HTTP/1).
//!
//! Client certificates (RFC 8705) are requested, never required: a client
//! without one still connects and authenticates some other way. A client
//! that presents one must either chain it to the configured client CA
//! (RFC 8705 §2.1, PKI) or, when self-signed certificates are accepted
//! (§2.2), present any certificate at all. In both cases rustls checks the
//! handshake's `CertificateVerify` signature with the certificate's own key,
//! so the client holds that key: what a self-signed certificate proves is
//! "the holder of this key", which is all a certificate-bound token
//! (`cnf.x5t#S256`) and a client registered by its certificate need.
//!
//! What a connection presented reaches every request on it as a
//! [`ClientCertificate`]: the leaf's DER, its `x5t#S256` thumbprint and
//! whether it chained to the client CA ([`Trust`]).
//!
//! The server's certificate and key can be replaced while the listener
//! runs ([`Tls::reload`], on SIGHUP in the binary): new handshakes get the
//! new pair, connections already open keep theirs, and a pair that does
//! not load (a half-written file, a key that does not match) leaves the
//! old one in place.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{
    DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig, SignatureScheme,
};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// Where a listener's TLS material is, as the operator named it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsFiles {
    /// The server's certificate chain, leaf first (PEM).
    pub cert: PathBuf,
    /// The leaf's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// The CA certificates client certificates may chain to (PEM).
    pub client_ca: Option<PathBuf>,
    /// Accept any client certificate whose key the client proves, chained
    /// to the client CA or not (RFC 8705 §2.2 `self_signed_tls_client_auth`).
    pub self_signed_clients: bool,
}

/// A listener's TLS: the acceptor, and how to tell whether a client's
/// certificate chains to the client CA. Cheap to clone.
#[derive(Clone)]
pub struct Tls {
    acceptor: TlsAcceptor,
    /// Set when certificates outside the CA are accepted too, so each
    /// presented one is checked again after the handshake to label it.
    recheck: Option<Arc<dyn ClientCertVerifier>>,
    /// Whether a presented certificate chained to the CA by construction.
    chained: bool,
    /// Whether clients are asked for certificates at all.
    asks_clients: bool,
    /// The server's certificate and key, replaceable.
    certified: Arc<Reloadable>,
}

/// The server's current certificate and key, and where they are read from.
#[derive(Debug)]
struct Reloadable {
    files: TlsFiles,
    current: RwLock<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for Reloadable {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        // A poisoned lock still holds a pair that loaded.
        Some(match self.current.read() {
            Ok(current) => current.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        })
    }
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").finish_non_exhaustive()
    }
}

impl Tls {
    /// Reads `files` and builds the acceptor. Every failure names the file
    /// and what is wrong with it, in one line.
    pub fn load(files: &TlsFiles) -> Result<Tls, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let certified = certified_key(files, &provider)?;
        let ca = match &files.client_ca {
            Some(path) => {
                let mut roots = RootCertStore::empty();
                for certificate in certificates(path, "TLS client CA")? {
                    roots.add(certificate).map_err(|e| TlsError::File {
                        what: "TLS client CA",
                        path: path.clone(),
                        why: format!("not a usable CA certificate: {e}"),
                    })?;
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                        .allow_unauthenticated()
                        .build()
                        .map_err(|e| TlsError::File {
                            what: "TLS client CA",
                            path: path.clone(),
                            why: e.to_string(),
                        })?;
                Some(verifier)
            }
            None => None,
        };
        let (verifier, recheck, chained): (Arc<dyn ClientCertVerifier>, _, _) =
            match (ca, files.self_signed_clients) {
                (None, false) => (WebPkiClientVerifier::no_client_auth(), None, false),
                (Some(ca), false) => (ca, None, true),
                (ca, true) => (
                    Arc::new(ProvenKey {
                        ca: ca.clone(),
                        algorithms: provider.signature_verification_algorithms,
                    }),
                    ca,
                    false,
                ),
            };
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Config(e.to_string()))?
            .with_client_cert_verifier(verifier);
        let certified = Arc::new(Reloadable {
            files: files.clone(),
            current: RwLock::new(Arc::new(certified)),
        });
        let mut config = config.with_cert_resolver(certified.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Tls {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            recheck,
            chained,
            asks_clients: files.client_ca.is_some() || files.self_signed_clients,
            certified,
        })
    }

    /// Reads the certificate and key files again and serves the new pair
    /// to every handshake from now on (every clone of this `Tls` shares
    /// it). On any error the old pair stays and the error says why.
    pub fn reload(&self) -> Result<(), TlsError> {
        let provider = rustls::crypto::ring::default_provider();
        let fresh = Arc::new(certified_key(&self.certified.files, &provider)?);
        match self.certified.current.write() {
            Ok(mut current) => *current = fresh,
            Err(poisoned) => *poisoned.into_inner() = fresh,
        }
        Ok(())
    }

    /// The files this listener's certificate and key are read from.
    pub fn files(&self) -> &TlsFiles {
        &self.certified.files
    }

    /// Whether clients are asked for a certificate (a client CA, or
    /// self-signed certificates, is configured): RFC 8705 client
    /// authentication and certificate-bound tokens are possible.
    pub fn asks_client_certificates(&self) -> bool {
        self.asks_clients
    }

    /// Runs the server side of a handshake on `stream`, within
    /// [`HANDSHAKE_TIMEOUT`]; the encrypted stream and the certificate the
    /// client presented.
    pub async fn accept<S>(&self, stream: S) -> Result<(TlsStream<S>, ClientCertificate), TlsError>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let stream = tokio::time::timeout(HANDSHAKE_TIMEOUT, self.acceptor.accept(stream))
            .await
            .map_err(|_| TlsError::HandshakeTimeout)?
            .map_err(TlsError::Handshake)?;
        let presented = stream.get_ref().1.peer_certificates();
        let certificate = match presented {
            Some([leaf, intermediates @ ..]) => {
                let trust = match &self.recheck {
                    Some(ca)
                        if ca
                            .verify_client_cert(leaf, intermediates, UnixTime::now())
                            .is_ok() =>
                    {
                        Trust::IssuedByClientCa
                    }
                    _ if self.chained => Trust::IssuedByClientCa,
                    _ => Trust::KeyProven,
                };
                ClientCertificate::presented(leaf.as_ref(), trust)
            }
            _ => ClientCertificate::none(),
        };
        Ok((stream, certificate))
    }
}

/// The client certificate of a TLS connection, as every request on that
/// connection carries it (an `http::Extensions` entry). A request on a
/// plain-TCP listener has none at all; one on a TLS connection whose
/// client sent no certificate has [`ClientCertificate::none`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientCertificate(Option<Arc<Presented>>);

#[derive(Debug, PartialEq, Eq)]
struct Presented {
    der: Vec<u8>,
    thumbprint: String,
    trust: Trust,
}

/// How far a presented client certificate was checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trust {
    /// It chains to the client CA (and the client holds its key).
    IssuedByClientCa,
    /// The client holds its key; its chain was not accepted on (a
    /// self-signed certificate, RFC 8705 §2.2).
    KeyProven,
}

impl ClientCertificate {
    /// No certificate was presented.
    pub fn none() -> ClientCertificate {
        ClientCertificate(None)
    }

    /// The leaf certificate `der`, checked as `trust` says.
    pub fn presented(der: &[u8], trust: Trust) -> ClientCertificate {
        ClientCertificate(Some(Arc::new(Presented {
            der: der.to_vec(),
            thumbprint: thumbprint(der),
            trust,
        })))
    }

    /// The leaf certificate's DER, if one was presented.
    pub fn der(&self) -> Option<&[u8]> {
        self.0.as_ref().map(|p| p.der.as_slice())
    }

    /// Its RFC 8705 `x5t#S256` thumbprint.
    pub fn thumbprint(&self) -> Option<&str> {
        self.0.as_ref().map(|p| p.thumbprint.as_str())
    }

    /// How far it was checked.
    pub fn trust(&self) -> Option<Trust> {
        self.0.as_ref().map(|p| p.trust)
    }
}

/// The RFC 8705 `x5t#S256` thumbprint of a certificate: base64url (no
/// padding) of the SHA-256 of its DER.
pub fn thumbprint(der: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(der))
}

/// Why TLS could not be set up, or a handshake failed.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file is missing, unreadable or holds the wrong thing.
    #[error("{what} {}: {why}", path.display())]
    File {
        /// Which file: `TLS certificate`, `TLS key` or `TLS client CA`.
        what: &'static str,
        /// Where.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// rustls refused the configuration.
    #[error("TLS: {0}")]
    Config(String),
    /// The handshake failed (a certificate of another CA, plain HTTP, ...).
    #[error("TLS handshake: {0}")]
    Handshake(std::io::Error),
    /// The client took longer than [`HANDSHAKE_TIMEOUT`].
    #[error("TLS handshake: not finished within {HANDSHAKE_TIMEOUT:?}")]
    HandshakeTimeout,
}

/// Accepts any client certificate whose key the client proves in the
/// handshake. Sound because rustls verifies the `CertificateVerify`
/// signature (TLS 1.2 and 1.3) over the handshake transcript with the key
/// in the presented certificate before the handshake completes; only the
/// chain is not required. Offered, not required: clients without a
/// certificate connect too.
#[derive(Debug)]
struct ProvenKey {
    /// The client CA, if any: only for the names it hints to clients.
    ca: Option<Arc<dyn ClientCertVerifier>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for ProvenKey {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.ca.as_ref().map_or(&[], |ca| ca.root_hint_subjects())
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        // The chain is not what this accepts on: the key is, and the
        // signature checks below prove the client holds it (a certificate
        // that cannot be parsed fails there).
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The certificate chain and key of `files`, checked to belong together.
fn certified_key(
    files: &TlsFiles,
    provider: &rustls::crypto::CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let chain = certificates(&files.cert, "TLS certificate")?;
    let key_pem = read(&files.key, "TLS key")?;
    let bad_key = |why: String| TlsError::File {
        what: "TLS key",
        path: files.key.clone(),
        why,
    };
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| bad_key(format!("holds no PEM private key ({e})")))?;
    let signing = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| bad_key(format!("not a usable private key: {e}")))?;
    let certified = CertifiedKey::new(chain, signing);
    certified.keys_match().map_err(|_| {
        bad_key(format!(
            "does not match the certificate in {}",
            files.cert.display()
        ))
    })?;
    Ok(certified)
}

/// Every PEM certificate in `path`; at least one.
fn certificates(path: &Path, what: &'static str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(path, what)?;
    let fail = |why: String| TlsError::File {
        what,
        path: path.to_owned(),
        why,
    };
    let certificates = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fail(format!("unreadable PEM ({e})")))?;
    if certificates.is_empty() {
        return Err(fail("holds no PEM certificate".into()));
    }
    Ok(certificates)
}

fn read(path: &Path, what: &'static str) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| TlsError::File {
        what,
        path: path.to_owned(),
        why: format!("cannot read it: {e}"),
    })
}

/// The longest a client may take to finish the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

#[cfg(test)]
mod tests;
