//! Certificates for TLS tests, made with rcgen: a CA that issues server
//! and client certificates, the TLS of a listener asking client
//! certificates of a CA, and an HTTPS client that trusts a CA and presents
//! a certificate.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType,
};

/// A CA and what it signs.
pub struct Authority {
    /// The CA certificate.
    pub certificate: rcgen::Certificate,
    key: KeyPair,
}

/// A certificate and its key, PEM.
pub struct Issued {
    /// The certificate, PEM.
    pub cert: String,
    /// Its key, PEM.
    pub key: String,
    /// The certificate, DER.
    pub der: Vec<u8>,
}

impl Authority {
    /// A new self-signed CA named `name`.
    pub fn new(name: &str) -> Authority {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let certificate = params.self_signed(&key).unwrap();
        Authority { certificate, key }
    }

    /// A server certificate for localhost and 127.0.0.1.
    pub fn server(&self) -> Issued {
        let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        params
            .subject_alt_names
            .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.issue(params, "localhost")
    }

    /// A client certificate named `name`.
    pub fn client(&self, name: &str) -> Issued {
        self.client_for(name, &[])
    }

    /// A client certificate named `name` carrying the DNS names `dns`.
    pub fn client_for(&self, name: &str, dns: &[&str]) -> Issued {
        let mut params =
            CertificateParams::new(dns.iter().map(|d| (*d).to_owned()).collect::<Vec<_>>())
                .unwrap();
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.issue(params, name)
    }

    fn issue(&self, mut params: CertificateParams, name: &str) -> Issued {
        let key = KeyPair::generate().unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        let certificate = params
            .signed_by(&key, &self.certificate, &self.key)
            .unwrap();
        Issued {
            cert: certificate.pem(),
            key: key.serialize_pem(),
            der: certificate.der().to_vec(),
        }
    }
}

/// The TLS of a listener with a server certificate of `server_ca` and
/// client certificates of `client_ca`.
pub fn listener_tls(dir: &Path, server_ca: &Authority, client_ca: &Authority) -> laissez_tls::Tls {
    let server = server_ca.server();
    let files = laissez_tls::TlsFiles {
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
        client_ca: Some(dir.join("client-ca.pem")),
        self_signed_clients: false,
    };
    std::fs::write(&files.cert, &server.cert).unwrap();
    std::fs::write(&files.key, &server.key).unwrap();
    std::fs::write(dir.join("client-ca.pem"), client_ca.certificate.pem()).unwrap();
    laissez_tls::Tls::load(&files).unwrap()
}

/// An HTTPS client trusting `server_ca`, presenting `identity` if any.
pub fn https_client(server_ca: &Authority, identity: Option<&Issued>) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(
            reqwest::Certificate::from_pem(server_ca.certificate.pem().as_bytes()).unwrap(),
        );
    if let Some(issued) = identity {
        let pem = format!("{}{}", issued.key, issued.cert);
        builder = builder.identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap());
    }
    builder.build().unwrap()
}

/// A server listening with TLS and asking client certificates of its own
/// client CA, in this process (stopped when dropped).
pub struct TlsServer {
    /// Its https URL (the issuer).
    pub url: String,
    /// The bootstrap administrator's token.
    pub admin: String,
    /// The CA of its server certificate.
    pub server_ca: Authority,
    /// The CA its listener accepts client certificates of.
    pub client_ca: Authority,
    _stop: tokio::sync::oneshot::Sender<()>,
    _temp: tempfile::TempDir,
}

impl TlsServer {
    /// Starts one on a fresh data folder.
    pub async fn start() -> TlsServer {
        let temp = tempfile::tempdir().unwrap();
        let server_ca = Authority::new("server CA");
        let client_ca = Authority::new("client CA");
        let options = laissez_server::run::Options {
            tls: Some(listener_tls(temp.path(), &server_ca, &client_ca)),
            ..Default::default()
        };
        let data = temp.path().join("data");
        let started = laissez_server::run::start(&data, "127.0.0.1:0", &options)
            .await
            .unwrap();
        let url = started.issuer.clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(started.serve(async move {
            let _ = stopped.await;
        }));
        let admin = std::fs::read_to_string(data.join(laissez_server::bootstrap::ADMIN_TOKEN_FILE))
            .unwrap()
            .trim()
            .to_owned();
        TlsServer {
            url,
            admin,
            server_ca,
            client_ca,
            _stop: stop,
            _temp: temp,
        }
    }

    /// An HTTPS client trusting this server, presenting `identity` if any.
    pub fn client(&self, identity: Option<&Issued>) -> reqwest::Client {
        https_client(&self.server_ca, identity)
    }

    /// An admin API call that must succeed; returns its JSON body.
    pub async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: serde_json::Value,
    ) -> serde_json::Value {
        let response = self
            .client(None)
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(&self.admin)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        assert!(status.is_success(), "{path}: {status} {body}");
        body
    }
}
