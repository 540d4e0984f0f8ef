//! Sender-constrained tokens at the gate: whether a verified token may be
//! used by this request, given how it was presented (`Bearer` or `DPoP`),
//! what its DPoP proof turned out to be, the app's rules (DPoP required, or
//! not) and where the request comes from (a task's IP ranges). Pure: the
//! proof is verified before (it needs the gate's replay cache), the answer
//! is a refusal with the OAuth error the challenge names, or nothing.
//!
//! A token bound to a key (`cnf.jkt`) presented as a bearer token, or with
//! a proof of another key, is what a thief holds: that refusal says so, and
//! the gate records it as a possible theft. So is a token bound to a client
//! certificate (RFC 8705 `cnf.x5t#S256`) on a connection whose TLS client
//! certificate has another thumbprint, or none.

use std::net::IpAddr;

use axum::http::HeaderMap;
use ipnet::IpNet;
use laissez_dpop::{ProofError, Verified};
use laissez_oauth::access_token::AccessTokenClaims;
use subtle::ConstantTimeEq;

/// How the request presented its token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// `Authorization: Bearer`.
    Bearer,
    /// `Authorization: DPoP`, with a proof.
    Dpop,
}

/// What the request's DPoP proof turned out to be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Proof {
    /// The request carried no `DPoP` header.
    Absent,
    /// It verified (method, URL, freshness, `ath`, nonce, replay).
    Valid(Verified),
    /// It did not, and why.
    Invalid(ProofError),
}

/// Why a verified token may not be used by this request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BindingRefusal {
    /// The OAuth error: `invalid_token`, `invalid_dpop_proof` or `use_dpop_nonce`.
    pub code: &'static str,
    /// What to do about it.
    pub reason: String,
    /// The token was presented without its key: possibly stolen.
    pub possible_theft: bool,
}

impl BindingRefusal {
    fn new(code: &'static str, reason: impl Into<String>) -> BindingRefusal {
        BindingRefusal {
            code,
            reason: reason.into(),
            possible_theft: false,
        }
    }

    fn theft(reason: impl Into<String>) -> BindingRefusal {
        BindingRefusal {
            code: "invalid_token",
            reason: reason.into(),
            possible_theft: true,
        }
    }
}

/// Whether `claims` may be used by a request presenting them with `scheme`
/// and `proof`, from `client_ip`, on a connection whose TLS client
/// certificate has the `x5t#S256` thumbprint `certificate` (if any), at an
/// app that requires DPoP or not.
pub fn check(
    claims: &AccessTokenClaims,
    scheme: Scheme,
    proof: &Proof,
    require_dpop: bool,
    client_ip: Option<IpAddr>,
    certificate: Option<&str>,
) -> Result<(), BindingRefusal> {
    if !claims.allowed_ips.is_empty() {
        let nets: Vec<IpNet> = claims
            .allowed_ips
            .iter()
            .filter_map(|n| n.parse().ok())
            .collect();
        // Deny by default: unreadable ranges or an unknown address refuse.
        let inside =
            client_ip.is_some_and(|ip| nets.iter().any(|net| net.contains(&canonical(ip))));
        if nets.len() != claims.allowed_ips.len() || !inside {
            return Err(BindingRefusal::new(
                "invalid_token",
                "the token may not be used from this address",
            ));
        }
    }
    if let Some(bound) = claims.cnf.as_ref().and_then(|c| c.x5t_s256.as_deref()) {
        let presented = certificate
            .is_some_and(|thumbprint| thumbprint.as_bytes().ct_eq(bound.as_bytes()).into());
        if !presented {
            return Err(BindingRefusal::theft(
                "the token is bound to a client certificate: present that certificate in the TLS handshake",
            ));
        }
    }
    match (claims.bound_jkt(), scheme, proof) {
        (Some(_), Scheme::Bearer, _) => Err(BindingRefusal::theft(
            "the token is bound to a key: send it as `Authorization: DPoP` with a proof of that key",
        )),
        (Some(_), Scheme::Dpop, Proof::Absent) => Err(BindingRefusal::new(
            "invalid_dpop_proof",
            "send a DPoP header with a proof of the token's key",
        )),
        (_, Scheme::Dpop, Proof::Invalid(error)) => {
            Err(BindingRefusal::new(error.oauth_error(), error.to_string()))
        }
        (Some(jkt), Scheme::Dpop, Proof::Valid(verified)) if !verified.matches(jkt) => Err(
            BindingRefusal::theft("the DPoP proof is by another key than the token is bound to"),
        ),
        (Some(_), Scheme::Dpop, Proof::Valid(_)) => Ok(()),
        (None, Scheme::Dpop, _) => Err(BindingRefusal::new(
            "invalid_token",
            "the token is not DPoP-bound; send it with `Authorization: Bearer`, or ask for a DPoP-bound token",
        )),
        (None, Scheme::Bearer, _) if require_dpop => Err(BindingRefusal::new(
            "invalid_token",
            "this app accepts only DPoP-bound tokens: ask the authorization server with a DPoP proof",
        )),
        (None, Scheme::Bearer, _) => Ok(()),
    }
}

/// An IPv4-mapped IPv6 address as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// The address a request comes from: the peer, or, when the peer is a
/// trusted proxy, the nearest untrusted address it names in
/// `X-Forwarded-For` (an unreadable header gives no address: fail closed).
pub fn client_address(
    headers: &HeaderMap,
    peer: Option<IpAddr>,
    trusted: impl Fn(IpAddr) -> bool,
) -> Option<IpAddr> {
    let peer = peer?;
    if !trusted(peer) {
        return Some(peer);
    }
    let mut hops: Vec<IpAddr> = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        for hop in value.to_str().ok()?.split(',') {
            hops.push(hop.trim().parse().ok()?);
        }
    }
    hops.into_iter().rev().find(|ip| !trusted(*ip))
}

#[cfg(test)]
mod tests {
    use laissez_dpop::ProofKey;
    use laissez_oauth::access_token::Confirmation;

    use super::*;

    fn claims(jkt: Option<&str>, ips: &[&str]) -> AccessTokenClaims {
        AccessTokenClaims {
            sub: "usr_alice".into(),
            cnf: jkt.map(|j| Confirmation {
                jkt: Some(j.to_owned()),
                x5t_s256: None,
            }),
            allowed_ips: ips.iter().map(|s| s.to_string()).collect(),
            ..AccessTokenClaims::default()
        }
    }

    fn verified(key: &ProofKey) -> Proof {
        Proof::Valid(Verified {
            jkt: key.thumbprint(),
            jti: "j".into(),
            iat: 0,
            nonce: None,
        })
    }

    #[test]
    fn a_bound_token_needs_a_proof_of_its_own_key() {
        let key = ProofKey::generate().unwrap();
        let other = ProofKey::generate().unwrap();
        let jkt = key.thumbprint();
        let bound = claims(Some(&jkt), &[]);
        let unbound = claims(None, &[]);
        let ip = Some("10.0.0.1".parse().unwrap());
        type Want = Result<(), (&'static str, bool)>;
        let cases: Vec<(&AccessTokenClaims, Scheme, Proof, bool, Want)> = vec![
            (&bound, Scheme::Dpop, verified(&key), false, Ok(())),
            (
                &bound,
                Scheme::Bearer,
                verified(&key),
                false,
                Err(("invalid_token", true)),
            ),
            (
                &bound,
                Scheme::Bearer,
                Proof::Absent,
                false,
                Err(("invalid_token", true)),
            ),
            (
                &bound,
                Scheme::Dpop,
                verified(&other),
                false,
                Err(("invalid_token", true)),
            ),
            (
                &bound,
                Scheme::Dpop,
                Proof::Absent,
                false,
                Err(("invalid_dpop_proof", false)),
            ),
            (
                &bound,
                Scheme::Dpop,
                Proof::Invalid(ProofError::Replayed),
                false,
                Err(("invalid_dpop_proof", false)),
            ),
            (
                &bound,
                Scheme::Dpop,
                Proof::Invalid(ProofError::UseNonce),
                false,
                Err(("use_dpop_nonce", false)),
            ),
            (&unbound, Scheme::Bearer, Proof::Absent, false, Ok(())),
            (
                &unbound,
                Scheme::Bearer,
                Proof::Absent,
                true,
                Err(("invalid_token", false)),
            ),
            (
                &unbound,
                Scheme::Dpop,
                verified(&key),
                false,
                Err(("invalid_token", false)),
            ),
            (&bound, Scheme::Dpop, verified(&key), true, Ok(())),
        ];
        for (i, (claims, scheme, proof, require, want)) in cases.into_iter().enumerate() {
            let got = check(claims, scheme, &proof, require, ip, None)
                .map_err(|r| (r.code, r.possible_theft));
            assert_eq!(got, want, "case {i}");
        }
    }

    #[test]
    fn a_certificate_bound_token_needs_a_connection_with_that_certificate() {
        let key = ProofKey::generate().unwrap();
        let thumbprint = "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2";
        let other = "_Hl7i4d5kS1FuAkLFMkwj9xzBt5idYOhxtXRknf7Pxs";
        let bound = AccessTokenClaims {
            sub: "usr_alice".into(),
            cnf: Some(Confirmation {
                jkt: None,
                x5t_s256: Some(thumbprint.into()),
            }),
            ..AccessTokenClaims::default()
        };
        let both = AccessTokenClaims {
            cnf: Some(Confirmation {
                jkt: Some(key.thumbprint()),
                x5t_s256: Some(thumbprint.into()),
            }),
            ..bound.clone()
        };
        let unbound = claims(None, &[]);
        type Want = Result<(), (&'static str, bool)>;
        let cases: Vec<(&AccessTokenClaims, Scheme, Proof, Option<&str>, Want)> = vec![
            (
                &bound,
                Scheme::Bearer,
                Proof::Absent,
                Some(thumbprint),
                Ok(()),
            ),
            (
                &bound,
                Scheme::Bearer,
                Proof::Absent,
                Some(other),
                Err(("invalid_token", true)),
            ),
            (
                &bound,
                Scheme::Bearer,
                Proof::Absent,
                None,
                Err(("invalid_token", true)),
            ),
            (
                &bound,
                Scheme::Bearer,
                Proof::Absent,
                Some(&thumbprint[..20]),
                Err(("invalid_token", true)),
            ),
            (
                &bound,
                Scheme::Bearer,
                Proof::Absent,
                Some(""),
                Err(("invalid_token", true)),
            ),
            // Sent as DPoP, it is not DPoP-bound.
            (
                &bound,
                Scheme::Dpop,
                verified(&key),
                Some(thumbprint),
                Err(("invalid_token", false)),
            ),
            // Bound to both: both must hold.
            (
                &both,
                Scheme::Dpop,
                verified(&key),
                Some(thumbprint),
                Ok(()),
            ),
            (
                &both,
                Scheme::Dpop,
                verified(&key),
                None,
                Err(("invalid_token", true)),
            ),
            (
                &both,
                Scheme::Bearer,
                Proof::Absent,
                Some(thumbprint),
                Err(("invalid_token", true)),
            ),
            // A certificate does not matter to an unbound token.
            (&unbound, Scheme::Bearer, Proof::Absent, Some(other), Ok(())),
            (&unbound, Scheme::Bearer, Proof::Absent, None, Ok(())),
        ];
        for (i, (claims, scheme, proof, certificate, want)) in cases.into_iter().enumerate() {
            let got = check(claims, scheme, &proof, false, None, certificate)
                .map_err(|r| (r.code, r.possible_theft));
            assert_eq!(got, want, "case {i}");
        }
    }

    #[test]
    fn ip_ranges_refuse_other_and_unknown_addresses() {
        let key = ProofKey::generate().unwrap();
        let jkt = key.thumbprint();
        let limited = claims(Some(&jkt), &["10.0.0.0/8"]);
        let at = |ip: &str| {
            check(
                &limited,
                Scheme::Dpop,
                &verified(&key),
                false,
                ip.parse().ok(),
                None,
            )
        };
        assert!(at("10.1.2.3").is_ok());
        assert!(at("::ffff:10.1.2.3").is_ok());
        assert!(at("192.0.2.1").is_err());
        assert!(at("unknown").is_err());
        let garbled = claims(Some(&jkt), &["10.0.0.0/8", "not-a-range"]);
        assert!(
            check(
                &garbled,
                Scheme::Dpop,
                &verified(&key),
                false,
                "10.0.0.1".parse().ok(),
                None,
            )
            .is_err()
        );
    }

    #[test]
    fn the_client_address_comes_from_trusted_proxies_only() {
        let trusted = |ip: IpAddr| ip.to_string().starts_with("10.");
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "203.0.113.5, 10.0.0.9".parse().unwrap());
        let proxy = "10.0.0.1".parse().ok();
        let stranger = "198.51.100.7".parse().ok();
        assert_eq!(
            client_address(&headers, proxy, trusted),
            "203.0.113.5".parse().ok()
        );
        assert_eq!(client_address(&headers, stranger, trusted), stranger);
        headers.insert("x-forwarded-for", "garbage".parse().unwrap());
        assert_eq!(client_address(&headers, proxy, trusted), None);
    }
}
