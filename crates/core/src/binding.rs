//! Sender constraints: what a task credential is bound to, and whether a
//! request proves it.
//!
//! A task credential is useless without the key it was issued to: a DPoP key
//! (RFC 9449, its RFC 7638 thumbprint `jkt`), a TLS client certificate (RFC
//! 8705, its SHA-256 thumbprint `x5t#S256`), or both. [`KeyBinding::choose`]
//! decides what a new task binds to from what its request proved;
//! [`KeyBinding::admits`] decides whether a request presenting the task
//! proves every key it names. Both are pure; the server gathers the
//! thumbprints (a verified proof, the connection's certificate) and calls
//! them. An unbound binding admits nothing: a task that somehow lost its
//! binding is refused, never treated as a bearer token.

use serde::{Deserialize, Serialize};

/// The keys a credential is bound to, or a request proved. Thumbprints are
/// base64url SHA-256 digests (43 characters).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyBinding {
    /// The DPoP key's RFC 7638 thumbprint (`cnf.jkt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jkt: Option<String>,
    /// The TLS client certificate's thumbprint (`cnf.x5t#S256`).
    #[serde(default, rename = "x5t#S256", skip_serializing_if = "Option::is_none")]
    pub x5t: Option<String>,
}

/// Why a request does not prove a binding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BindingRefusal {
    /// The credential names no key at all (fail closed).
    #[error("the credential is bound to no key, so nothing can prove it")]
    Unbound,
    /// Bound to a DPoP key; the request sent no proof.
    #[error("the credential is bound to a DPoP key: send `Authorization: DPoP` with a proof of it")]
    NoProof,
    /// The proof is of another key.
    #[error("the DPoP proof is of another key than the one the credential is bound to")]
    OtherKey,
    /// Bound to a TLS client certificate; the connection presented none.
    #[error("the credential is bound to a TLS client certificate: connect with it")]
    NoCertificate,
    /// The connection's certificate is another one.
    #[error("the connection's TLS client certificate is not the one the credential is bound to")]
    OtherCertificate,
}

/// Why a new task cannot be bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChoiceError {
    /// Neither a proof nor a certificate: there is nothing to bind to.
    #[error(
        "task credentials are sender-constrained: send a DPoP proof (RFC 9449) of the key to bind, or connect with a TLS client certificate (RFC 8705)"
    )]
    NothingToBind,
    /// The client must get certificate-bound tokens and connected without one.
    #[error(
        "this client registered tls_client_certificate_bound_access_tokens: connect with its TLS client certificate"
    )]
    CertificateRequired,
}

impl KeyBinding {
    /// Bound to a DPoP key only.
    pub fn dpop(jkt: impl Into<String>) -> KeyBinding {
        KeyBinding {
            jkt: Some(jkt.into()),
            x5t: None,
        }
    }

    /// Bound to a TLS client certificate only.
    pub fn certificate(x5t: impl Into<String>) -> KeyBinding {
        KeyBinding {
            jkt: None,
            x5t: Some(x5t.into()),
        }
    }

    /// Whether it names any key.
    pub fn is_bound(&self) -> bool {
        self.jkt.is_some() || self.x5t.is_some()
    }

    /// What a new task binds to, given what its request `proved` (its DPoP
    /// proof's key, its connection's certificate), a sub-agent's key it was
    /// asked to bind to instead (`for_key`, a narrowing for a sub-agent), and
    /// whether the client must get certificate-bound tokens.
    ///
    /// DPoP is the default; a request without a proof binds to its
    /// connection's certificate; a client that registered certificate-bound
    /// tokens binds to its certificate (and to the proof's key too, when it
    /// sent one). A sub-agent's key replaces all of it: the sub-agent holds
    /// neither the parent's key nor its certificate.
    pub fn choose(
        proved: &KeyBinding,
        for_key: Option<&str>,
        certificate_required: bool,
    ) -> Result<KeyBinding, ChoiceError> {
        if let Some(jkt) = for_key {
            return Ok(KeyBinding::dpop(jkt));
        }
        if certificate_required && proved.x5t.is_none() {
            return Err(ChoiceError::CertificateRequired);
        }
        let chosen = match (&proved.jkt, certificate_required) {
            (Some(_), false) => KeyBinding::dpop(proved.jkt.clone().unwrap_or_default()),
            _ => proved.clone(),
        };
        if chosen.is_bound() {
            Ok(chosen)
        } else {
            Err(ChoiceError::NothingToBind)
        }
    }

    /// Whether `presented` proves every key this binding names.
    pub fn admits(&self, presented: &KeyBinding) -> Result<(), BindingRefusal> {
        if !self.is_bound() {
            return Err(BindingRefusal::Unbound);
        }
        if let Some(jkt) = &self.jkt {
            match &presented.jkt {
                None => return Err(BindingRefusal::NoProof),
                Some(proved) if !same(proved, jkt) => return Err(BindingRefusal::OtherKey),
                Some(_) => {}
            }
        }
        if let Some(x5t) = &self.x5t {
            match &presented.x5t {
                None => return Err(BindingRefusal::NoCertificate),
                Some(proved) if !same(proved, x5t) => {
                    return Err(BindingRefusal::OtherCertificate);
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// The token type a client sends it with: `DPoP` when a DPoP key is
    /// bound, else `Bearer` (a certificate-bound token stays a Bearer token,
    /// RFC 8705 §3).
    pub fn token_type(&self) -> &'static str {
        if self.jkt.is_some() { "DPoP" } else { "Bearer" }
    }
}

/// Thumbprints are public, but compared without early exit anyway.
fn same(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const K1: &str = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs";
    const K2: &str = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";
    const C1: &str = "A4DtL2JmUMhAsvJj5tKyn64SqzmuXbMrJa0n761y5v0";
    const C2: &str = "sYTlkG8ZgZ8vWjV35Q_9Y8u5yQx5q3Wq8ZkYhZKz9A0";

    fn b(jkt: Option<&str>, x5t: Option<&str>) -> KeyBinding {
        KeyBinding {
            jkt: jkt.map(str::to_owned),
            x5t: x5t.map(str::to_owned),
        }
    }

    #[test]
    fn admits_only_what_proves_every_bound_key() {
        use BindingRefusal::*;
        let table: &[(KeyBinding, KeyBinding, Result<(), BindingRefusal>)] = &[
            (b(Some(K1), None), b(Some(K1), None), Ok(())),
            (b(Some(K1), None), b(Some(K1), Some(C1)), Ok(())),
            (b(Some(K1), None), b(None, None), Err(NoProof)),
            (b(Some(K1), None), b(None, Some(C1)), Err(NoProof)),
            (b(Some(K1), None), b(Some(K2), None), Err(OtherKey)),
            (b(None, Some(C1)), b(None, Some(C1)), Ok(())),
            (b(None, Some(C1)), b(Some(K1), Some(C1)), Ok(())),
            (b(None, Some(C1)), b(None, None), Err(NoCertificate)),
            (b(None, Some(C1)), b(Some(K1), None), Err(NoCertificate)),
            (b(None, Some(C1)), b(None, Some(C2)), Err(OtherCertificate)),
            (b(Some(K1), Some(C1)), b(Some(K1), Some(C1)), Ok(())),
            (b(Some(K1), Some(C1)), b(Some(K1), None), Err(NoCertificate)),
            (b(Some(K1), Some(C1)), b(None, Some(C1)), Err(NoProof)),
            (
                b(Some(K1), Some(C1)),
                b(Some(K1), Some(C2)),
                Err(OtherCertificate),
            ),
            (b(None, None), b(Some(K1), Some(C1)), Err(Unbound)),
            (b(None, None), b(None, None), Err(Unbound)),
            // A prefix or a case change of the thumbprint is another key.
            (b(Some(K1), None), b(Some(&K1[..42]), None), Err(OtherKey)),
            (
                b(None, Some(C1)),
                b(None, Some(&C1.to_lowercase())),
                Err(OtherCertificate),
            ),
        ];
        for (bound, presented, expected) in table {
            assert_eq!(
                bound.admits(presented),
                *expected,
                "{bound:?} presented {presented:?}"
            );
        }
    }

    #[test]
    fn chooses_dpop_by_default_and_the_certificate_without_a_proof() {
        use ChoiceError::*;
        type Case<'a> = (
            KeyBinding,
            Option<&'a str>,
            bool,
            Result<KeyBinding, ChoiceError>,
        );
        let table: &[Case] = &[
            (b(Some(K1), None), None, false, Ok(b(Some(K1), None))),
            // DPoP is the default even over a connection with a certificate.
            (b(Some(K1), Some(C1)), None, false, Ok(b(Some(K1), None))),
            (b(None, Some(C1)), None, false, Ok(b(None, Some(C1)))),
            (b(None, None), None, false, Err(NothingToBind)),
            // A client registered for certificate-bound tokens binds to it.
            (b(None, Some(C1)), None, true, Ok(b(None, Some(C1)))),
            (b(Some(K1), Some(C1)), None, true, Ok(b(Some(K1), Some(C1)))),
            (b(Some(K1), None), None, true, Err(CertificateRequired)),
            (b(None, None), None, true, Err(CertificateRequired)),
            // A sub-agent's key replaces the requester's.
            (
                b(Some(K1), Some(C1)),
                Some(K2),
                false,
                Ok(b(Some(K2), None)),
            ),
            (b(None, Some(C1)), Some(K2), true, Ok(b(Some(K2), None))),
        ];
        for (proved, for_key, required, expected) in table {
            assert_eq!(
                KeyBinding::choose(proved, *for_key, *required),
                *expected,
                "{proved:?} for {for_key:?} required {required}"
            );
        }
    }

    #[test]
    fn token_type_is_dpop_only_with_a_dpop_key() {
        assert_eq!(b(Some(K1), None).token_type(), "DPoP");
        assert_eq!(b(Some(K1), Some(C1)).token_type(), "DPoP");
        assert_eq!(b(None, Some(C1)).token_type(), "Bearer");
    }

    fn thumbprint() -> impl Strategy<Value = Option<String>> {
        prop::option::of("[A-Za-z0-9_-]{43}")
    }

    proptest! {
        /// A chosen binding is always bound, and the request it was chosen
        /// from proves it (unless it is a sub-agent's key).
        #[test]
        fn a_chosen_binding_is_proved_by_its_request(
            jkt in thumbprint(), x5t in thumbprint(), required in any::<bool>()
        ) {
            let proved = KeyBinding { jkt, x5t };
            if let Ok(chosen) = KeyBinding::choose(&proved, None, required) {
                prop_assert!(chosen.is_bound());
                prop_assert_eq!(chosen.admits(&proved), Ok(()));
                prop_assert!(!required || chosen.x5t.is_some());
            }
        }

        /// Whatever is presented, a binding is admitted only when each key
        /// it names is presented exactly.
        #[test]
        fn admission_needs_each_bound_key(
            bj in thumbprint(), bx in thumbprint(), pj in thumbprint(), px in thumbprint()
        ) {
            let bound = KeyBinding { jkt: bj.clone(), x5t: bx.clone() };
            let presented = KeyBinding { jkt: pj.clone(), x5t: px.clone() };
            let expected = (bj.is_some() || bx.is_some())
                && bj.as_ref().is_none_or(|k| pj.as_ref() == Some(k))
                && bx.as_ref().is_none_or(|c| px.as_ref() == Some(c));
            prop_assert_eq!(bound.admits(&presented).is_ok(), expected);
        }
    }
}
