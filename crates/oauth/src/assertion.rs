//! Client authentication with a signed JWT (RFC 7523 §2.2, the
//! `private_key_jwt` method of OpenID Connect Core §9): the registered key
//! set ([`validate_jwks`]) and the check of one assertion against it
//! ([`verify`]), as pure functions.
//!
//! A client registers public keys only (`jwks`, inline: Laissez does not
//! fetch `jwks_uri`, which would let a registration make the server call any
//! address). At the token, introspection or revocation endpoint it sends
//! `client_assertion_type` = [`ASSERTION_TYPE`] and `client_assertion`, a JWS
//! signed by one of those keys with `iss` and `sub` its `client_id`, `aud` the
//! server (issuer or endpoint URL), a short `exp` and a unique `jti`.
//! [`verify`] checks all of it except the `jti`'s uniqueness, which is the
//! caller's replay cache's job with [`Admitted::until`].

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use laissez_dpop::jwk;
use serde::Deserialize;
use serde_json::Value;

use crate::{ErrorCode, OAuthError};

/// The `client_assertion_type` of a JWT client assertion (RFC 7523 §2.2).
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Signing algorithms accepted, and what metadata advertises as
/// `token_endpoint_auth_signing_alg_values_supported` (asymmetric only).
pub const ALGORITHMS: &[&str] = laissez_dpop::ALGORITHMS;

/// Longest assertion accepted, in bytes, checked before any parsing.
pub const MAX_ASSERTION_LEN: usize = 8 * 1024;

/// Longest lifetime accepted: `exp` at most this many seconds ahead (an
/// hour, as Okta and Authlib's default use; the `jti` is remembered as long).
pub const MAX_LIFETIME: i64 = 3600;

/// Most keys a client may register.
pub const MAX_KEYS: usize = 8;

/// Longest `jti` accepted, in characters.
pub const MAX_JTI_LEN: usize = 256;

fn bad_metadata(why: impl Into<String>) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidClientMetadata, why)
}

fn invalid_client(why: impl Into<String>) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidClient, why)
}

/// Checks a registration's `jwks` member: a JWK Set of 1 to [`MAX_KEYS`]
/// public signing keys (EC P-256/P-384, Ed25519, RSA 2048–4096 bits), each
/// usable with at least one of [`ALGORITHMS`], with distinct `kid`s, `use`
/// (if given) `sig` and `alg` (if given) one of [`ALGORITHMS`] that fits the
/// key. Returns the set as given.
pub fn validate_jwks(jwks: &Value) -> Result<Value, OAuthError> {
    let keys = jwks
        .get("keys")
        .and_then(Value::as_array)
        .ok_or_else(|| bad_metadata("jwks must be a JWK Set: {\"keys\": [ ... ]}"))?;
    if keys.is_empty() || keys.len() > MAX_KEYS {
        return Err(bad_metadata(format!("jwks must hold 1 to {MAX_KEYS} keys")));
    }
    let mut kids = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        if jwk::has_private_members(key) {
            return Err(bad_metadata(format!(
                "jwks key {i} contains private key material; register only the public key and treat this key as compromised"
            )));
        }
        if let Some(usage) = key.get("use")
            && usage.as_str() != Some("sig")
        {
            return Err(bad_metadata(format!(
                "jwks key {i} has \"use\" other than \"sig\""
            )));
        }
        let fitting = fitting_algorithms(key);
        if fitting.is_empty() {
            return Err(bad_metadata(format!(
                "jwks key {i} is not a usable public signing key (EC P-256/P-384, Ed25519 or RSA 2048-4096 bits)"
            )));
        }
        if let Some(alg) = key.get("alg") {
            let fits = alg.as_str().is_some_and(|a| fitting.contains(&a));
            if !fits {
                return Err(bad_metadata(format!(
                    "jwks key {i} has an \"alg\" that is not one of {} or does not fit the key",
                    ALGORITHMS.join(", ")
                )));
            }
        }
        if let Some(kid) = key.get("kid") {
            let kid = kid
                .as_str()
                .filter(|k| !k.is_empty() && k.len() <= 256)
                .ok_or_else(|| {
                    bad_metadata(format!(
                        "jwks key {i} has a \"kid\" that is not a string of 1 to 256 characters"
                    ))
                })?;
            if kids.contains(&kid) {
                return Err(bad_metadata(format!("jwks has two keys with kid {kid:?}")));
            }
            kids.push(kid);
        }
    }
    Ok(jwks.clone())
}

/// The algorithms of [`ALGORITHMS`] that `key` can verify.
fn fitting_algorithms(key: &Value) -> Vec<&'static str> {
    ALGORITHMS
        .iter()
        .copied()
        .filter(|name| {
            name.parse::<Algorithm>()
                .is_ok_and(|alg| jwk::decoding_key(key, alg).is_ok())
        })
        .collect()
}

/// What the server expects of an assertion at this endpoint.
#[derive(Clone, Copy, Debug)]
pub struct Expected<'a> {
    /// The client being authenticated: `iss` and `sub` must equal it.
    pub client_id: &'a str,
    /// Accepted `aud` values: the issuer and the endpoint URLs.
    pub audiences: &'a [&'a str],
    /// The server's clock, Unix seconds.
    pub now: i64,
    /// Clock skew allowed, seconds.
    pub leeway: i64,
}

/// An assertion that passed every check but replay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Admitted {
    /// Its unique identifier: admit it once.
    pub jti: String,
    /// The last second it could still verify: how long to remember the `jti`.
    pub until: i64,
}

#[derive(Deserialize)]
struct Claims {
    iss: String,
    sub: String,
    aud: Value,
    exp: i64,
    #[serde(default)]
    nbf: Option<i64>,
    #[serde(default)]
    iat: Option<i64>,
    jti: String,
}

/// Verifies `assertion` against the client's registered `jwks` (already
/// checked by [`validate_jwks`]).
///
/// The header's `alg` must be one of [`ALGORITHMS`] (never `none` or an HMAC,
/// so the public key cannot be used as a shared secret) and, if the chosen
/// key names an `alg`, that one. With a `kid` only the key of that `kid` is
/// tried; without, every key that fits the algorithm.
pub fn verify(assertion: &str, jwks: &Value, expected: &Expected) -> Result<Admitted, OAuthError> {
    if assertion.len() > MAX_ASSERTION_LEN {
        return Err(invalid_client("the client_assertion is longer than 8 KiB"));
    }
    let header = header(assertion)?;
    let alg_name = header
        .get("alg")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid_client("the client_assertion's header has no string \"alg\""))?;
    if !ALGORITHMS.contains(&alg_name) {
        return Err(invalid_client(format!(
            "the client_assertion is signed with {:?}; sign with one of {}",
            alg_name.chars().take(20).collect::<String>(),
            ALGORITHMS.join(", ")
        )));
    }
    let alg: Algorithm = alg_name
        .parse()
        .map_err(|_| invalid_client("the client_assertion's \"alg\" is not supported"))?;
    let typed = jsonwebtoken::decode_header(assertion).map_err(|e| {
        invalid_client(format!(
            "the client_assertion's header is not a valid JOSE header: {e}"
        ))
    })?;
    if typed.alg != alg {
        return Err(invalid_client("the client_assertion's header is ambiguous"));
    }
    let kid = header.get("kid").and_then(Value::as_str);
    let keys = candidates(jwks, kid, alg_name)?;
    let mut validation = Validation::new(alg);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    let mut claims = None;
    for key in keys {
        let Ok(decoding) = jwk::decoding_key(key, alg) else {
            continue;
        };
        match jsonwebtoken::decode::<Claims>(assertion, &decoding, &validation) {
            Ok(data) => {
                claims = Some(data.claims);
                break;
            }
            Err(e) if *e.kind() == ErrorKind::InvalidSignature => continue,
            Err(e) => return Err(unreadable(&e)),
        }
    }
    let claims = claims.ok_or_else(|| {
        invalid_client(
            "the client_assertion's signature does not verify with any key this client registered",
        )
    })?;
    check_claims(&claims, expected)
}

/// Decodes the protected header, refusing anything but a JSON object.
fn header(assertion: &str) -> Result<Value, OAuthError> {
    let mut parts = assertion.split('.');
    let (Some(header), Some(_), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid_client(
            "the client_assertion must be a compact JWS (three base64url parts)",
        ));
    };
    if signature.is_empty() {
        return Err(invalid_client("the client_assertion has no signature"));
    }
    URL_SAFE_NO_PAD
        .decode(header)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        .filter(Value::is_object)
        .ok_or_else(|| {
            invalid_client("the client_assertion's header is not base64url-encoded JSON")
        })
}

/// The registered keys that may have signed with `alg` (and `kid`).
fn candidates<'a>(
    jwks: &'a Value,
    kid: Option<&str>,
    alg: &str,
) -> Result<Vec<&'a Value>, OAuthError> {
    let keys = jwks
        .get("keys")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let chosen: Vec<&Value> = keys
        .iter()
        .filter(|key| kid.is_none() || key.get("kid").and_then(Value::as_str) == kid)
        .filter(|key| key.get("alg").is_none_or(|a| a.as_str() == Some(alg)))
        .collect();
    if chosen.is_empty() {
        return Err(invalid_client(match kid {
            Some(kid) => format!(
                "no key this client registered has kid {:?} and fits {alg}",
                kid.chars().take(64).collect::<String>()
            ),
            None => format!("no key this client registered fits {alg}"),
        }));
    }
    Ok(chosen)
}

fn unreadable(e: &jsonwebtoken::errors::Error) -> OAuthError {
    match e.kind() {
        ErrorKind::Json(_) => invalid_client(format!(
            "the client_assertion's claims must be a JSON object with string \"iss\", \"sub\", \"jti\", \"aud\" and integer \"exp\" ({e})"
        )),
        ErrorKind::Base64(_) => {
            invalid_client("the client_assertion's claims or signature are not base64url")
        }
        _ => invalid_client(format!("the client_assertion cannot be read ({e})")),
    }
}

/// The claim checks of RFC 7523 §3, after the signature verified.
fn check_claims(claims: &Claims, expected: &Expected) -> Result<Admitted, OAuthError> {
    if claims.iss != expected.client_id || claims.sub != expected.client_id {
        return Err(invalid_client(
            "the client_assertion's \"iss\" and \"sub\" must both be the client_id",
        ));
    }
    let audiences: Vec<&str> = match &claims.aud {
        Value::String(one) => vec![one.as_str()],
        Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !audiences.iter().any(|a| expected.audiences.contains(a)) {
        return Err(invalid_client(format!(
            "the client_assertion's \"aud\" must name this server: {}",
            expected.audiences.join(" or ")
        )));
    }
    let now = expected.now;
    if claims.exp < now.saturating_sub(expected.leeway) {
        return Err(invalid_client("the client_assertion has expired"));
    }
    if claims.exp > now.saturating_add(MAX_LIFETIME + expected.leeway) {
        return Err(invalid_client(format!(
            "the client_assertion's \"exp\" is more than {MAX_LIFETIME} seconds ahead; make short-lived assertions"
        )));
    }
    let future = now.saturating_add(expected.leeway);
    if claims.nbf.is_some_and(|nbf| nbf > future) || claims.iat.is_some_and(|iat| iat > future) {
        return Err(invalid_client(
            "the client_assertion is not valid yet (\"nbf\" or \"iat\" in the future); check the client's clock",
        ));
    }
    if claims.jti.is_empty() || claims.jti.chars().count() > MAX_JTI_LEN {
        return Err(invalid_client(
            "the client_assertion's \"jti\" must be a non-empty string of at most 256 characters",
        ));
    }
    Ok(Admitted {
        jti: claims.jti.clone(),
        until: claims.exp.saturating_add(expected.leeway),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header};
    use p256::ecdsa::SigningKey;
    use p256::pkcs8::EncodePrivateKey;
    use serde_json::json;

    const NOW: i64 = 1_800_000_000;
    const AUD: &[&str] = &["https://id.example", "https://id.example/oauth/token"];

    struct Key {
        signing: EncodingKey,
        public: Value,
    }

    fn key(seed: u8) -> Key {
        let secret = SigningKey::from_slice(&[seed; 32]).expect("key");
        let point = secret.verifying_key().to_encoded_point(false);
        let public = json!({
            "kty": "EC", "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(point.x().expect("x")),
            "y": URL_SAFE_NO_PAD.encode(point.y().expect("y")),
        });
        let der = secret.to_pkcs8_der().expect("der");
        Key {
            signing: EncodingKey::from_ec_der(der.as_bytes()),
            public,
        }
    }

    fn claims() -> Value {
        json!({"iss": "agent", "sub": "agent", "aud": AUD[1], "exp": NOW + 60, "iat": NOW, "jti": "j1"})
    }

    fn sign(key: &Key, kid: Option<&str>, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = kid.map(str::to_owned);
        jsonwebtoken::encode(&header, claims, &key.signing).expect("sign")
    }

    fn expected() -> Expected<'static> {
        Expected {
            client_id: "agent",
            audiences: AUD,
            now: NOW,
            leeway: 5,
        }
    }

    fn jwks(keys: &[Value]) -> Value {
        json!({"keys": keys})
    }

    #[test]
    fn a_well_formed_assertion_is_admitted_until_its_expiry() {
        let k = key(1);
        let set = jwks(std::slice::from_ref(&k.public));
        validate_jwks(&set).expect("valid set");
        let admitted = verify(&sign(&k, None, &claims()), &set, &expected()).expect("admitted");
        assert_eq!(admitted.jti, "j1");
        assert_eq!(admitted.until, NOW + 65);
    }

    #[test]
    fn the_kid_picks_the_key_and_other_keys_are_tried_without_one() {
        let (a, b) = (key(1), key(2));
        let mut pa = a.public.clone();
        pa["kid"] = json!("a");
        let mut pb = b.public.clone();
        pb["kid"] = json!("b");
        let set = jwks(&[pa, pb]);
        assert!(verify(&sign(&b, Some("b"), &claims()), &set, &expected()).is_ok());
        assert!(verify(&sign(&b, None, &claims()), &set, &expected()).is_ok());
        // Signed by b but naming a's kid: only a is tried, and it fails.
        assert!(verify(&sign(&b, Some("a"), &claims()), &set, &expected()).is_err());
        assert!(verify(&sign(&b, Some("c"), &claims()), &set, &expected()).is_err());
    }

    #[test]
    fn claims_that_do_not_fit_are_refused() {
        let k = key(1);
        let set = jwks(std::slice::from_ref(&k.public));
        let cases: &[(&str, Value)] = &[
            ("iss", json!("someone-else")),
            ("sub", json!("someone-else")),
            ("aud", json!("https://evil.example")),
            ("aud", json!(["https://evil.example"])),
            ("aud", json!(7)),
            ("exp", json!(NOW - 6)),
            ("exp", json!(NOW + MAX_LIFETIME + 6)),
            ("nbf", json!(NOW + 60)),
            ("iat", json!(NOW + 60)),
            ("jti", json!("")),
            ("jti", json!("x".repeat(257))),
            ("jti", json!(5)),
            ("exp", json!("soon")),
        ];
        for (name, value) in cases {
            let mut c = claims();
            c[*name] = value.clone();
            let refused = verify(&sign(&k, None, &c), &set, &expected());
            assert!(refused.is_err(), "{name} = {value} was admitted");
            assert_eq!(refused.unwrap_err().error, ErrorCode::InvalidClient);
        }
        for missing in ["iss", "sub", "aud", "exp", "jti"] {
            let mut c = claims();
            c.as_object_mut().expect("object").remove(missing);
            assert!(
                verify(&sign(&k, None, &c), &set, &expected()).is_err(),
                "{missing}"
            );
        }
        let mut c = claims();
        c["aud"] = json!(["https://other.example", AUD[0]]);
        assert!(verify(&sign(&k, None, &c), &set, &expected()).is_ok());
    }

    #[test]
    fn a_signature_by_an_unregistered_key_is_refused() {
        let set = jwks(&[key(1).public]);
        assert!(verify(&sign(&key(2), None, &claims()), &set, &expected()).is_err());
    }

    #[test]
    fn unsigned_and_symmetric_assertions_are_refused() {
        let k = key(1);
        let set = jwks(std::slice::from_ref(&k.public));
        let body = URL_SAFE_NO_PAD.encode(claims().to_string());
        for header in [json!({"alg": "none"}), json!({"alg": "HS256"}), json!({})] {
            let h = URL_SAFE_NO_PAD.encode(header.to_string());
            for token in [format!("{h}.{body}."), format!("{h}.{body}.c2ln")] {
                assert!(verify(&token, &set, &expected()).is_err(), "{header}");
            }
        }
        // The public key used as an HMAC secret (the classic confusion).
        let hmac = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims(),
            &EncodingKey::from_secret(k.public.to_string().as_bytes()),
        )
        .expect("sign");
        assert!(verify(&hmac, &set, &expected()).is_err());
    }

    #[test]
    fn a_key_that_names_another_algorithm_is_not_used() {
        let k = key(1);
        let mut public = k.public.clone();
        public["alg"] = json!("ES384");
        assert!(validate_jwks(&jwks(&[public.clone()])).is_err());
        let set = jwks(&[public]);
        assert!(verify(&sign(&k, None, &claims()), &set, &expected()).is_err());
    }

    #[test]
    fn garbage_is_refused_without_panicking() {
        let set = jwks(&[key(1).public]);
        for text in [
            "",
            ".",
            "..",
            "a.b.c",
            "a.b.c.d",
            &"x".repeat(MAX_ASSERTION_LEN + 1),
        ] {
            assert!(verify(text, &set, &expected()).is_err(), "{text:.20}");
        }
    }

    #[test]
    fn key_sets_with_private_or_unusable_keys_are_refused() {
        let k = key(1);
        let mut private = k.public.clone();
        private["d"] = json!("AAAA");
        let mut enc = k.public.clone();
        enc["use"] = json!("enc");
        let mut kid_a = k.public.clone();
        kid_a["kid"] = json!("a");
        let refused = [
            json!({}),
            json!({"keys": []}),
            json!({"keys": "x"}),
            jwks(&[private]),
            jwks(&[enc]),
            jwks(&[json!({"kty": "oct", "k": "c2VjcmV0"})]),
            jwks(&[json!({"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"})]),
            jwks(&[kid_a.clone(), kid_a]),
            jwks(&vec![k.public.clone(); MAX_KEYS + 1]),
        ];
        for set in refused {
            let e = validate_jwks(&set).expect_err(&set.to_string());
            assert_eq!(e.error, ErrorCode::InvalidClientMetadata);
        }
    }
}
