//! Stateless server nonces (RFC 9449 §8): every node sharing the secret
//! issues and accepts the same nonces without talking to the others.
//!
//! A nonce is base64url of the current time window's number (8 bytes, big
//! endian) followed by the first 16 bytes of HMAC-SHA256 over it. A nonce
//! stays acceptable during its window and the next one, so a client that
//! received one just before the window turned has at least one full window
//! to use it.
//!
//! A server either calls [`verify_proof_with_nonces`], or calls
//! [`crate::verify_proof`] with `expected.nonce = None` and then checks
//! [`crate::Verified::nonce`] with [`Nonces::check`]. On
//! [`ProofError::UseNonce`] it answers `use_dpop_nonce` with a fresh
//! [`Nonces::issue`] in the `DPoP-Nonce` header.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::proof::{Expected, ProofError, Verified, verify_proof};

/// Bytes of the MAC kept in a nonce.
const MAC_LEN: usize = 16;
/// Bytes of a decoded nonce: the window number and the MAC.
const NONCE_LEN: usize = 8 + MAC_LEN;

/// Issues and checks stateless nonces under one secret.
#[derive(Clone)]
pub struct Nonces {
    secret: [u8; 32],
    window: i64,
}

impl Nonces {
    /// Nonces under `secret`, each window lasting `window` seconds (at least
    /// one; smaller values count as one).
    pub fn new(secret: [u8; 32], window: i64) -> Nonces {
        Nonces {
            secret,
            window: window.max(1),
        }
    }

    /// The nonce for the window containing `now`.
    pub fn issue(&self, now: i64) -> String {
        let number = now.div_euclid(self.window);
        let mut bytes = Vec::with_capacity(NONCE_LEN);
        bytes.extend_from_slice(&number.to_be_bytes());
        bytes.extend_from_slice(&self.mac(number));
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// Whether `nonce` was issued by these nonces for the window containing
    /// `now` or the one before. The MAC is compared in constant time.
    pub fn check(&self, nonce: &str, now: i64) -> bool {
        if nonce.len() > 64 {
            return false;
        }
        let Ok(bytes) = URL_SAFE_NO_PAD.decode(nonce) else {
            return false;
        };
        let Some((number, mac)) = bytes.split_first_chunk::<8>() else {
            return false;
        };
        if mac.len() != MAC_LEN {
            return false;
        }
        let number = i64::from_be_bytes(*number);
        let current = now.div_euclid(self.window);
        if number != current && Some(number) != current.checked_sub(1) {
            return false;
        }
        self.mac(number).ct_eq(mac).into()
    }

    fn mac(&self, number: i64) -> [u8; MAC_LEN] {
        // HMAC pads a short key with zeros to the block size, so keying with
        // the secret padded to 64 bytes is the same HMAC, through the
        // infallible fixed-size constructor.
        let mut key = [0u8; 64];
        key[..32].copy_from_slice(&self.secret);
        let mut mac = <Hmac<Sha256> as KeyInit>::new(&key.into());
        mac.update(b"laissez-dpop-nonce");
        mac.update(&number.to_be_bytes());
        let mut out = [0u8; MAC_LEN];
        out.copy_from_slice(&mac.finalize().into_bytes()[..MAC_LEN]);
        out
    }
}

impl std::fmt::Debug for Nonces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Nonces")
            .field("window", &self.window)
            .finish_non_exhaustive()
    }
}

/// [`verify_proof`] with a stateless nonce required: `expected.nonce` is
/// ignored, and a proof whose `nonce` is missing or fails [`Nonces::check`]
/// at `expected.now` gives [`ProofError::UseNonce`].
pub fn verify_proof_with_nonces(
    proof: &str,
    expected: &Expected<'_>,
    nonces: &Nonces,
) -> Result<Verified, ProofError> {
    let verified = verify_proof(
        proof,
        &Expected {
            nonce: None,
            ..*expected
        },
    )?;
    match verified.nonce.as_deref() {
        Some(nonce) if nonces.check(nonce, expected.now) => Ok(verified),
        _ => Err(ProofError::UseNonce),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: [u8; 32] = [7; 32];

    #[test]
    fn current_and_previous_window_only() {
        let nonces = Nonces::new(SECRET, 60);
        let nonce = nonces.issue(120); // window 2
        assert!(nonces.check(&nonce, 120));
        assert!(nonces.check(&nonce, 179));
        assert!(nonces.check(&nonce, 239)); // window 3: the previous is fine
        assert!(!nonces.check(&nonce, 240)); // window 4: expired
        assert!(!nonces.check(&nonce, 119)); // window 1: not yet issued
    }

    #[test]
    fn nodes_with_the_same_secret_agree() {
        let a = Nonces::new(SECRET, 60);
        let b = Nonces::new(SECRET, 60);
        assert_eq!(a.issue(1000), b.issue(1010));
        assert!(b.check(&a.issue(1000), 1000));
        let other = Nonces::new([8; 32], 60);
        assert!(!other.check(&a.issue(1000), 1000));
    }

    #[test]
    fn refuses_forgeries_and_garbage() {
        let nonces = Nonces::new(SECRET, 60);
        let nonce = nonces.issue(1000);
        let mut bytes = URL_SAFE_NO_PAD.decode(&nonce).unwrap_or_default();
        bytes[NONCE_LEN - 1] ^= 1;
        assert!(!nonces.check(&URL_SAFE_NO_PAD.encode(&bytes), 1000));
        // A MAC for one window does not move to another.
        let mut moved = URL_SAFE_NO_PAD.decode(&nonce).unwrap_or_default();
        moved[7] ^= 1;
        assert!(!nonces.check(&URL_SAFE_NO_PAD.encode(&moved), 1000));
        for garbage in [
            "",
            "!!",
            "AAAA",
            &nonce[..nonce.len() - 2],
            &format!("{nonce}AA"),
        ] {
            assert!(!nonces.check(garbage, 1000), "{garbage}");
        }
        assert!(!nonces.check(&nonce, i64::MIN));
        assert!(!nonces.check(&nonce, i64::MAX));
        let _ = nonces.issue(i64::MIN);
        let _ = Nonces::new(SECRET, 0).issue(i64::MAX);
    }
}
