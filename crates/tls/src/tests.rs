//! Real handshakes over an in-memory pipe, with certificates made here.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio_rustls::TlsConnector;

use super::*;

/// A CA and what it signs.
struct Authority {
    certificate: rcgen::Certificate,
    key: KeyPair,
}

impl Authority {
    fn new(name: &str) -> Authority {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let certificate = params.self_signed(&key).unwrap();
        Authority { certificate, key }
    }

    fn issue(&self, names: &[&str], purpose: ExtendedKeyUsagePurpose) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.distinguished_name.push(DnType::CommonName, names[0]);
        params.extended_key_usages = vec![purpose];
        let certificate = params
            .signed_by(&key, &self.certificate, &self.key)
            .unwrap();
        (certificate.pem(), key.serialize_pem())
    }
}

fn self_signed(name: &str) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let params = CertificateParams::new(vec![name.to_owned()]).unwrap();
    (params.self_signed(&key).unwrap().pem(), key.serialize_pem())
}

struct Setup {
    dir: tempfile::TempDir,
    server_ca: Authority,
    client_ca: Authority,
}

impl Setup {
    fn new() -> Setup {
        Setup {
            dir: tempfile::tempdir().unwrap(),
            server_ca: Authority::new("server CA"),
            client_ca: Authority::new("client CA"),
        }
    }

    fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    fn files(&self, client_ca: bool, self_signed_clients: bool) -> TlsFiles {
        let (cert, key) = self
            .server_ca
            .issue(&["localhost"], ExtendedKeyUsagePurpose::ServerAuth);
        TlsFiles {
            cert: self.write("cert.pem", &cert),
            key: self.write("key.pem", &key),
            client_ca: client_ca.then(|| self.write("ca.pem", &self.client_ca.certificate.pem())),
            self_signed_clients,
        }
    }

    /// A handshake between `tls` and a client presenting `identity`:
    /// what the server saw, or whether the handshake failed.
    async fn handshake(
        &self,
        tls: &Tls,
        identity: Option<&(String, String)>,
    ) -> Result<ClientCertificate, String> {
        let mut roots = RootCertStore::empty();
        roots.add(self.server_ca.certificate.der().clone()).unwrap();
        let builder =
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots);
        let mut config = match identity {
            Some((cert, key)) => builder
                .with_client_auth_cert(
                    CertificateDer::pem_slice_iter(cert.as_bytes())
                        .collect::<Result<Vec<_>, _>>()
                        .unwrap(),
                    PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
                )
                .unwrap(),
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let (client_io, server_io) = tokio::io::duplex(64 * 1024);
        let connector = TlsConnector::from(Arc::new(config));
        let name = ServerName::try_from("localhost").unwrap();
        let (client, server) =
            tokio::join!(connector.connect(name, client_io), tls.accept(server_io));
        let (stream, certificate) = server.map_err(|e| e.to_string())?;
        let client = client.map_err(|e| e.to_string())?;
        assert_eq!(
            client.get_ref().1.alpn_protocol(),
            Some(&b"http/1.1"[..]),
            "ALPN http/1.1"
        );
        drop(stream);
        Ok(certificate)
    }
}

fn der_of(pem: &str) -> Vec<u8> {
    CertificateDer::from_pem_slice(pem.as_bytes())
        .unwrap()
        .as_ref()
        .to_vec()
}

#[tokio::test]
async fn without_a_client_ca_no_certificate_is_asked_for() {
    let setup = Setup::new();
    let tls = Tls::load(&setup.files(false, false)).unwrap();
    let seen = setup.handshake(&tls, None).await.unwrap();
    assert_eq!(seen, ClientCertificate::none());
    assert_eq!(seen.thumbprint(), None);
}

#[tokio::test]
async fn a_certificate_of_the_client_ca_reaches_the_server_with_its_thumbprint() {
    let setup = Setup::new();
    let tls = Tls::load(&setup.files(true, false)).unwrap();
    let client = setup
        .client_ca
        .issue(&["agent"], ExtendedKeyUsagePurpose::ClientAuth);
    let seen = setup.handshake(&tls, Some(&client)).await.unwrap();
    let der = der_of(&client.0);
    assert_eq!(seen.der(), Some(der.as_slice()));
    assert_eq!(seen.thumbprint(), Some(thumbprint(&der).as_str()));
    assert_eq!(seen.trust(), Some(Trust::IssuedByClientCa));
    // Requested, not required.
    assert_eq!(
        setup.handshake(&tls, None).await.unwrap(),
        ClientCertificate::none()
    );
}

#[tokio::test]
async fn a_certificate_of_another_ca_fails_the_handshake() {
    let setup = Setup::new();
    let tls = Tls::load(&setup.files(true, false)).unwrap();
    let stranger =
        Authority::new("another CA").issue(&["agent"], ExtendedKeyUsagePurpose::ClientAuth);
    assert!(setup.handshake(&tls, Some(&stranger)).await.is_err());
    assert!(
        setup
            .handshake(&tls, Some(&self_signed("me")))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn self_signed_certificates_are_accepted_when_asked_and_labelled() {
    let setup = Setup::new();
    let tls = Tls::load(&setup.files(true, true)).unwrap();
    let own = self_signed("me");
    let seen = setup.handshake(&tls, Some(&own)).await.unwrap();
    assert_eq!(
        seen.thumbprint(),
        Some(thumbprint(&der_of(&own.0)).as_str())
    );
    assert_eq!(seen.trust(), Some(Trust::KeyProven));
    let issued = setup
        .client_ca
        .issue(&["agent"], ExtendedKeyUsagePurpose::ClientAuth);
    let seen = setup.handshake(&tls, Some(&issued)).await.unwrap();
    assert_eq!(seen.trust(), Some(Trust::IssuedByClientCa));

    let without_ca = Tls::load(&setup.files(false, true)).unwrap();
    let seen = setup.handshake(&without_ca, Some(&issued)).await.unwrap();
    assert_eq!(seen.trust(), Some(Trust::KeyProven));
}

#[tokio::test]
async fn a_client_that_does_not_speak_tls_fails_the_handshake() {
    use tokio::io::AsyncWriteExt;
    let setup = Setup::new();
    let tls = Tls::load(&setup.files(false, false)).unwrap();
    let (mut client, server) = tokio::io::duplex(4096);
    client
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    assert!(matches!(
        tls.accept(server).await,
        Err(TlsError::Handshake(_))
    ));
}

#[test]
fn bad_files_say_which_and_why_in_one_line() {
    let setup = Setup::new();
    let good = setup.files(true, false);
    let (other_cert, _) = self_signed("other");
    let expect = |files: TlsFiles, wanted: &str| {
        let error = Tls::load(&files).unwrap_err().to_string();
        assert!(error.contains(wanted), "{error:?} should say {wanted:?}");
        assert!(!error.contains('\n'), "one line: {error:?}");
    };
    expect(
        TlsFiles {
            cert: setup.dir.path().join("missing.pem"),
            ..good.clone()
        },
        "TLS certificate",
    );
    expect(
        TlsFiles {
            key: setup.write("empty.pem", ""),
            ..good.clone()
        },
        "holds no PEM private key",
    );
    expect(
        TlsFiles {
            cert: setup.write("other.pem", &other_cert),
            ..good.clone()
        },
        "does not match the certificate",
    );
    expect(
        TlsFiles {
            client_ca: Some(setup.write("junk.pem", "not a certificate\n")),
            ..good.clone()
        },
        "TLS client CA",
    );
    assert!(Tls::load(&good).is_ok());
}

#[test]
fn the_thumbprint_is_base64url_sha256_without_padding() {
    // SHA-256 of the empty string.
    assert_eq!(
        thumbprint(b""),
        "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"
    );
}

/// The leaf certificate `tls` presents to a client trusting `setup`'s server CA.
async fn served_leaf(setup: &Setup, tls: &Tls) -> Vec<u8> {
    let mut roots = RootCertStore::empty();
    roots
        .add(setup.server_ca.certificate.der().clone())
        .unwrap();
    let config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    let (client_io, server_io) = tokio::io::duplex(64 * 1024);
    let connector = TlsConnector::from(Arc::new(config));
    let name = ServerName::try_from("localhost").unwrap();
    let (client, server) = tokio::join!(connector.connect(name, client_io), tls.accept(server_io));
    server.unwrap();
    let client = client.unwrap();
    client.get_ref().1.peer_certificates().unwrap()[0]
        .as_ref()
        .to_vec()
}

#[tokio::test]
async fn reload_serves_the_new_pair_and_keeps_the_old_one_when_the_new_one_is_bad() {
    let setup = Setup::new();
    let files = setup.files(false, false);
    let tls = Tls::load(&files).unwrap();
    let first = der_of(&std::fs::read_to_string(&files.cert).unwrap());
    assert_eq!(served_leaf(&setup, &tls).await, first);

    // A renewed certificate: the next handshake, on a clone too, sees it.
    let (cert, key) = setup
        .server_ca
        .issue(&["localhost"], ExtendedKeyUsagePurpose::ServerAuth);
    std::fs::write(&files.cert, &cert).unwrap();
    std::fs::write(&files.key, &key).unwrap();
    let listener_copy = tls.clone();
    tls.reload().unwrap();
    assert_eq!(served_leaf(&setup, &listener_copy).await, der_of(&cert));

    // A key that does not match: an error, and the renewed pair stays.
    let (_, other_key) = self_signed("localhost");
    std::fs::write(&files.key, &other_key).unwrap();
    let error = tls.reload().unwrap_err().to_string();
    assert!(error.contains("does not match"), "{error}");
    std::fs::write(&files.cert, "half written").unwrap();
    assert!(tls.reload().is_err());
    assert_eq!(served_leaf(&setup, &tls).await, der_of(&cert));
}
