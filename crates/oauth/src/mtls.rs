//! Mutual-TLS client authentication and certificate-bound tokens (RFC 8705),
//! as pure functions over the DER of the certificate a client presented on
//! its TLS connection.
//!
//! Two methods: `tls_client_auth` (§2.1), where the certificate chains to the
//! listener's client CA (the TLS layer checked that) and must carry the
//! registered subject alternative name ([`CertificateName`]); and
//! `self_signed_tls_client_auth` (§2.2), where the certificate must be one
//! the client registered in its `jwks` (`x5c`). Either way, tokens issued on
//! that connection can be bound to the certificate: `cnf.x5t#S256` is its
//! SHA-256 thumbprint (`laissez_tls::thumbprint`), and a resource server
//! accepts the token only over a connection presenting the same certificate.

use std::net::IpAddr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rustls_pki_types::{CertificateDer, ServerName};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{ErrorCode, OAuthError};

/// The registered name a `tls_client_auth` client's certificate must carry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CertificateName {
    /// A `dNSName` subject alternative name (`tls_client_auth_san_dns`).
    Dns(String),
    /// An `iPAddress` subject alternative name (`tls_client_auth_san_ip`).
    Ip(IpAddr),
}

fn bad_metadata(why: impl Into<String>) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidClientMetadata, why)
}

/// The name a `tls_client_auth` registration gives: exactly one of
/// `tls_client_auth_san_dns` and `tls_client_auth_san_ip`.
pub fn registered_name(
    san_dns: Option<&str>,
    san_ip: Option<&str>,
) -> Result<CertificateName, OAuthError> {
    match (san_dns, san_ip) {
        (Some(dns), None) => {
            let valid =
                ServerName::try_from(dns).is_ok_and(|name| matches!(name, ServerName::DnsName(_)));
            if valid {
                Ok(CertificateName::Dns(dns.to_ascii_lowercase()))
            } else {
                Err(bad_metadata(
                    "tls_client_auth_san_dns must be a DNS name (e.g. agent.example.com)",
                ))
            }
        }
        (None, Some(ip)) => ip
            .parse()
            .map(CertificateName::Ip)
            .map_err(|_| bad_metadata("tls_client_auth_san_ip must be an IPv4 or IPv6 address")),
        _ => Err(bad_metadata(
            "tls_client_auth needs exactly one of tls_client_auth_san_dns and tls_client_auth_san_ip (subject DN, URI and email names are not supported)",
        )),
    }
}

/// Whether the certificate `der` carries `name` as a subject alternative
/// name. A certificate that does not parse matches nothing.
pub fn carries(der: &[u8], name: &CertificateName) -> bool {
    let der = CertificateDer::from(der);
    let Ok(cert) = webpki::EndEntityCert::try_from(&der) else {
        return false;
    };
    let wanted = match name {
        CertificateName::Dns(dns) => match ServerName::try_from(dns.as_str()) {
            Ok(name) => name,
            Err(_) => return false,
        },
        CertificateName::Ip(ip) => ServerName::IpAddress((*ip).into()),
    };
    cert.verify_is_valid_for_subject_name(&wanted).is_ok()
}

/// Checks a `self_signed_tls_client_auth` registration's `jwks`: 1 to 8
/// keys, each with an `x5c` whose first entry is a certificate (standard
/// base64 DER), no private members.
pub fn validate_certificates(jwks: &Value) -> Result<Value, OAuthError> {
    let keys = jwks
        .get("keys")
        .and_then(Value::as_array)
        .filter(|keys| !keys.is_empty() && keys.len() <= crate::assertion::MAX_KEYS)
        .ok_or_else(|| {
            bad_metadata("self_signed_tls_client_auth needs jwks with 1 to 8 keys, each with an x5c certificate")
        })?;
    for (i, key) in keys.iter().enumerate() {
        if laissez_dpop::jwk::has_private_members(key) {
            return Err(bad_metadata(format!(
                "jwks key {i} contains private key material; register only the certificate"
            )));
        }
        let parses = first_certificate(key).is_some_and(|der| {
            webpki::EndEntityCert::try_from(&CertificateDer::from(der.as_slice())).is_ok()
        });
        if !parses {
            return Err(bad_metadata(format!(
                "jwks key {i} has no x5c whose first entry is a base64 DER certificate"
            )));
        }
    }
    Ok(jwks.clone())
}

/// Whether `der` is one of the certificates registered in `jwks`.
pub fn registered(der: &[u8], jwks: &Value) -> bool {
    jwks.get("keys")
        .and_then(Value::as_array)
        .is_some_and(|keys| {
            keys.iter()
                .filter_map(first_certificate)
                .any(|cert| cert == der)
        })
}

fn first_certificate(key: &Value) -> Option<Vec<u8>> {
    let text = key.get("x5c")?.as_array()?.first()?.as_str()?;
    STANDARD.decode(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A self-signed certificate for `agent.example` and 10.1.2.3, made once
    /// with openssl and kept here (DER, base64).
    const CERT: &str = include_str!("../tests/data/agent-cert.b64");

    fn der() -> Vec<u8> {
        STANDARD.decode(CERT.trim()).expect("base64")
    }

    #[test]
    fn names_are_matched_against_the_certificates_alternative_names() {
        let der = der();
        let dns = |n: &str| CertificateName::Dns(n.into());
        assert!(carries(&der, &dns("agent.example")));
        assert!(carries(
            &der,
            &CertificateName::Ip("10.1.2.3".parse().unwrap())
        ));
        assert!(!carries(&der, &dns("other.example")));
        assert!(!carries(&der, &dns("evil-agent.example")));
        assert!(!carries(
            &der,
            &CertificateName::Ip("10.1.2.4".parse().unwrap())
        ));
        assert!(!carries(b"not a certificate", &dns("agent.example")));
        assert!(!carries(&[], &dns("agent.example")));
    }

    #[test]
    fn a_registration_names_exactly_one_valid_name() {
        assert_eq!(
            registered_name(Some("Agent.Example"), None).unwrap(),
            CertificateName::Dns("agent.example".into())
        );
        assert!(registered_name(None, Some("::1")).is_ok());
        for (dns, ip) in [
            (None, None),
            (Some("a.example"), Some("10.0.0.1")),
            (Some("not a name"), None),
            (Some("10.0.0.1"), None),
            (None, Some("a.example")),
        ] {
            assert!(registered_name(dns, ip).is_err(), "{dns:?} {ip:?}");
        }
    }

    #[test]
    fn self_signed_registrations_hold_certificates_and_match_exactly() {
        let der = der();
        let jwks = json!({"keys": [{"kty": "EC", "x5c": [CERT.trim()]}]});
        validate_certificates(&jwks).expect("valid");
        assert!(registered(&der, &jwks));
        let mut other = der.clone();
        let last = other.len() - 1;
        other[last] ^= 1;
        assert!(!registered(&other, &jwks));
        for bad in [
            json!({}),
            json!({"keys": []}),
            json!({"keys": [{"kty": "EC"}]}),
            json!({"keys": [{"x5c": ["bm90IGEgY2VydA=="]}]}),
            json!({"keys": [{"x5c": [CERT.trim()], "d": "AAAA"}]}),
        ] {
            assert!(validate_certificates(&bad).is_err(), "{bad}");
        }
    }
}
