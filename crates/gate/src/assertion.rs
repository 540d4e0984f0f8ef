//! The identity assertion the gate hands the app: a short-lived ES256 JWT
//! (`typ: laissez-assertion+jwt`) saying who is calling (user, client, agent,
//! scopes), for the app's origin only, signed with the gate's own key. The app
//! verifies it against the gate's JWKS at
//! `/.well-known/laissez-gate/jwks.json`, so it need not trust headers
//! alone. The key lives in memory: a restarted gate has a new key id, which
//! apps pick up by refetching the JWKS when they see an unknown `kid`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use laissez_oauth::access_token::AccessTokenClaims;
use p256::ecdsa::SigningKey;
use p256::pkcs8::EncodePrivateKey;
use serde::Serialize;

/// How long an assertion is valid, seconds.
pub const ASSERTION_TTL: i64 = 60;
/// The JOSE `typ` of assertions.
pub const TYP: &str = "laissez-assertion+jwt";

/// Signs assertions.
pub struct AssertionSigner {
    kid: String,
    key: EncodingKey,
    jwk: serde_json::Value,
    /// Recent assertions by access token id: one signature serves every
    /// request of a token for most of the assertion's life.
    recent: std::sync::Mutex<std::collections::HashMap<String, (String, i64)>>,
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    aud: &'a str,
    sub: &'a str,
    client_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    act: Option<&'a laissez_oauth::access_token::Actor>,
    scope: &'a str,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    accounts: &'a [String],
    iat: i64,
    exp: i64,
}

impl AssertionSigner {
    /// A signer with a fresh key.
    pub fn generate() -> Result<AssertionSigner, String> {
        let key = loop {
            let mut d = [0u8; 32];
            getrandom::fill(&mut d).map_err(|e| e.to_string())?;
            if let Ok(key) = SigningKey::from_bytes(&d.into()) {
                break key;
            }
        };
        let point = key.verifying_key().to_encoded_point(false);
        let x = URL_SAFE_NO_PAD.encode(point.x().map(|x| x.as_slice()).unwrap_or_default());
        let y = URL_SAFE_NO_PAD.encode(point.y().map(|y| y.as_slice()).unwrap_or_default());
        let kid = laissez_token::random_base62(16).map_err(|e| e.to_string())?;
        let der = key.to_pkcs8_der().map_err(|e| e.to_string())?;
        Ok(AssertionSigner {
            jwk: serde_json::json!({"kty": "EC", "crv": "P-256", "x": x, "y": y, "kid": kid, "use": "sig", "alg": "ES256"}),
            kid,
            key: EncodingKey::from_ec_der(der.as_bytes()),
            recent: std::sync::Mutex::new(std::collections::HashMap::new()),
        })
    }

    /// The public key set.
    pub fn jwks(&self) -> serde_json::Value {
        serde_json::json!({"keys": [self.jwk]})
    }

    /// An assertion from `issuer` (the gate) to `audience` (the app's origin).
    pub fn sign(
        &self,
        issuer: &str,
        audience: &str,
        claims: &AccessTokenClaims,
        now: i64,
    ) -> Option<String> {
        if let Some((assertion, exp)) = self.recent.lock().ok()?.get(&claims.jti)
            && *exp - now > ASSERTION_TTL / 2
        {
            return Some(assertion.clone());
        }
        let assertion = self.sign_new(issuer, audience, claims, now)?;
        if let Ok(mut recent) = self.recent.lock() {
            if recent.len() > 10_000 {
                recent.retain(|_, (_, exp)| *exp > now);
            }
            recent.insert(claims.jti.clone(), (assertion.clone(), now + ASSERTION_TTL));
        }
        Some(assertion)
    }

    fn sign_new(
        &self,
        issuer: &str,
        audience: &str,
        claims: &AccessTokenClaims,
        now: i64,
    ) -> Option<String> {
        let mut header = Header::new(Algorithm::ES256);
        header.typ = Some(TYP.into());
        header.kid = Some(self.kid.clone());
        let body = Claims {
            iss: issuer,
            aud: audience,
            sub: &claims.sub,
            client_id: &claims.client_id,
            act: claims.act.as_ref(),
            scope: &claims.scope,
            accounts: &claims.accounts,
            iat: now,
            exp: now + ASSERTION_TTL,
        };
        jsonwebtoken::encode(&header, &body, &self.key).ok()
    }
}
