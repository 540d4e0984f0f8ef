//! Table and property tests for DPoP proof verification: every rule of
//! RFC 9449 §4.3 that `verify_proof` enforces, each algorithm it accepts,
//! and that no input makes it panic or accept altered claims.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey};
use proptest::prelude::*;
use serde_json::{Value, json};

use laissez_dpop::jwk::thumbprint;
use laissez_dpop::{
    ALGORITHMS, Expected, Nonces, ProofError, ProofKey, TYP, Verified, ath, htu, verify_proof,
    verify_proof_with_nonces,
};

const NOW: i64 = 1_700_000_000;
const URL: &str = "https://api.example/notes";
const TOKEN: &str = "lzat_0123456789abcdefghijABCDEFGHIJ0123456789";

/// A fixed Ed25519 key, made with `openssl genpkey -algorithm ed25519`.
const ED25519_PEM: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIE7MZmJ0yHSGFHe8Q6P3aNIVYKzLoLcl2rTiaDU1Be+e
-----END PRIVATE KEY-----";
/// Its public `x`, from python3's `cryptography` (raw public bytes, base64url).
const ED25519_X: &str = "ie_aufUm2EwdT-0Jc2tChUwTOWCyv-e8gHjMV0ob8Xk";

/// A fixed P-384 key, made with `openssl genpkey -algorithm EC -pkeyopt
/// ec_paramgen_curve:P-384` and `openssl pkcs8 -topk8 -nocrypt`.
const P384_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIG2AgEAMBAGByqGSM49AgEGBSuBBAAiBIGeMIGbAgEBBDAPUu/pV0GI4/8eweWY
43cZz5e5YlolXY4z0vnzRNT0wlNhXHnrG3KqN89tJ52Kpv2hZANiAARZpyW/Hxc9
fIcizEACijwA9aH7OfF8QZg8jD+bxn0AVLDvGmOoWFYEko5vMy8a3y2Deqri+KVw
zeZpK9C1wPB/eWgV18vlVFf+YmgwDxUxULRDjwxatflpPkAR+PhyP0I=
-----END PRIVATE KEY-----";
const P384_X: &str = "Waclvx8XPXyHIsxAAoo8APWh-znxfEGYPIw_m8Z9AFSw7xpjqFhWBJKObzMvGt8t";
const P384_Y: &str = "g3qq4vilcM3maSvQtcDwf3loFdfL5VRX_mJoMA8VMVC0Q48MWrX5aT5AEfj4cj9C";

/// A fixed 2048-bit RSA key, made with `openssl genpkey -algorithm RSA` and
/// `openssl rsa -traditional` (PKCS#1, which jsonwebtoken's RSA signer reads).
const RSA_PEM: &str = "-----BEGIN RSA PRIVATE KEY-----
MIIEpAIBAAKCAQEA76ZHI6lJUP6S7Mfvapv25KAeEDP0mz8HE8HYit3Rs0JdBo34
9L5pNFM7xI3uej0vg4CdGZ2+afGJjG5I0c3hEYaSIpfBofWA+XhvOK3YandCFu+Y
56g32k96Es6RkX+4wX7Uv2E8lEEY8xYuGDyhkTO5+mMrTrmvnLFHnvlNnc7yjMuw
2AwjvL9NwYXBeo9cjaMOyMMitroeViLzQyfSk9Gx5e2ZB//4ySDDQ6T3l8caSfxF
6T3h29ysdIPwTOYi17W0NpH+0QVMG9OgS1EjRxjUKMWkgMUnZ41lhcONgKECd0Pi
IX1qdxPl/tBuzASKSfCWMvV4n9bFEmJcAw1uDQIDAQABAoIBADCuhWsAG42heTUy
VDdC4X+F6zV9aGYVApoH2bYz40JX68/GDVmiSHrBobWG43ffcAR1nvQyMBkTYM6v
JInCGcNWo971FveQiJek2GsaHYlbGojQOS5t5JKrbG/fmICHAoAEBLGvzf+Lzcar
rcdsoaF+cXwkowqF+9+Hv7XSjOrOV6NVfMIFn/1NRkgzXsG+Id6xKoChLfAw3WXX
D9+g5ZOkX+4KBzjP7KCFJLS3v+iailMWF+NAuc/0aMGb2m7bTCDyaY6bKRkPm2EJ
zJmwsGVp3X9hiKQa14kVxThEHAlXhBmjmL6wnW6oZpLQRqQ6AZb3M81Z+Jnjh+M2
ql73sWECgYEA+KL28exS0976OVdqhp2zsUIXCjwpUJp30zAQJt3zoNvOv2XdOapB
Cx5FeWOFIawBr5MP0fAUUzzgWyLcntyDN0WRemmG5crigiNUNuNUmAc+MYa93L3p
fqlnRVSf79NZXgVPFzzuBZw6XwQwqGMBkywXR2rDmbUfu+KMgdjGGnUCgYEA9r8t
kHP0zqp1/15TUpvYis0JWcv3tOTYBV8Fl+e8qSk3KcHjAWovMzEthy5l7wcWX6o0
fI/oj4zZHUPL9+mwrxIaLaq5dKqq7JIxu3LEwg0QeqaCnefnVpi0G/X20zPf31dx
3zZzbqMqMJjE3BJtv9BIIXx+Sf0Jue2x8Jf2IjkCgYEAqtI72yZEGbBeNbsrQuVi
KWyAq9V9hRU7MesZjbp7wY6C0tjHTvD70wmvLaEEPIgSeHAPNGs/a5itg6/F55cU
x4qSUonh1kq3qDVhjHxPCEwhnKE4HEqV+yGkA+wKHhkUkxYOqqZ/2XbmW5VjYKz0
zgpCzBw72oSoEsupQSSPpmkCgYBpKAypFWHteaQUEwT7ncNpU/x6Mnz8sNKHZ3mg
xXgXt6L0vtaZ0cEP1hOLGvECL0kPuB/qPgJkuygEWtJgc02DLvnNIIcs+1cgvyVG
t6C2+o5dVv0vgpeKxkVr7SUl2WO9cSzsbe4/5nWihFjRWWFAb+ltq/q+WYJ9pJlC
6eBRsQKBgQDMvlAl6mDtVpzQ0ZT0OrvPn3kL43lo9AFO83c2gko4geyd8syJCsXN
r2Zls2fwRHFN7BpcNA2+5NjIOXz9ApkcwQX2qluAsFkF52v85f+bhOpZa7iH28wz
M/PhP9f7DjlQvHhYncWS/qigRycEQyEvAFkh5KHn/eBEXZhvKPzpuA==
-----END RSA PRIVATE KEY-----";
const RSA_N: &str = "76ZHI6lJUP6S7Mfvapv25KAeEDP0mz8HE8HYit3Rs0JdBo349L5pNFM7xI3uej0vg4CdGZ2-afGJjG5I0c3hEYaSIpfBofWA-XhvOK3YandCFu-Y56g32k96Es6RkX-4wX7Uv2E8lEEY8xYuGDyhkTO5-mMrTrmvnLFHnvlNnc7yjMuw2AwjvL9NwYXBeo9cjaMOyMMitroeViLzQyfSk9Gx5e2ZB__4ySDDQ6T3l8caSfxF6T3h29ysdIPwTOYi17W0NpH-0QVMG9OgS1EjRxjUKMWkgMUnZ41lhcONgKECd0PiIX1qdxPl_tBuzASKSfCWMvV4n9bFEmJcAw1uDQ";

fn expected() -> Expected<'static> {
    Expected {
        method: "POST",
        url: URL,
        access_token: None,
        nonce: None,
        now: NOW,
        max_age: 60,
        leeway: 5,
    }
}

fn der(pem: &str) -> Vec<u8> {
    let body: String = pem
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect();
    STANDARD.decode(body).unwrap_or_default()
}

/// A signer for tests: an encoding key, its algorithm and its public JWK.
struct Signer {
    key: EncodingKey,
    alg: Algorithm,
    jwk: Value,
}

impl Signer {
    fn es256(key: &ProofKey) -> Signer {
        Signer {
            key: EncodingKey::from_ec_der(&der(&key.to_pem())),
            alg: Algorithm::ES256,
            jwk: key.public_jwk(),
        }
    }

    fn header(&self) -> Value {
        json!({"typ": TYP, "alg": alg_name(self.alg), "jwk": self.jwk})
    }

    /// Signs `header` and `claims` as given (any algorithm header, any JSON).
    fn sign(&self, header: &Value, claims: &Value) -> String {
        sign_raw(
            &self.key,
            self.alg,
            &header.to_string(),
            &claims.to_string(),
        )
    }

    fn good(&self) -> String {
        self.sign(&self.header(), &good_claims())
    }
}

fn sign_raw(key: &EncodingKey, alg: Algorithm, header: &str, claims: &str) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let signature = jsonwebtoken::crypto::sign(input.as_bytes(), key, alg).unwrap_or_default();
    format!("{input}.{signature}")
}

fn alg_name(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::ES256 => "ES256",
        Algorithm::ES384 => "ES384",
        Algorithm::EdDSA => "EdDSA",
        Algorithm::RS256 => "RS256",
        Algorithm::PS256 => "PS256",
        Algorithm::HS256 => "HS256",
        _ => "other",
    }
}

fn good_claims() -> Value {
    json!({"jti": "jti-1", "htm": "POST", "htu": URL, "iat": NOW})
}

fn with(mut value: Value, member: &str, replacement: Value) -> Value {
    value[member] = replacement;
    value
}

fn without(mut value: Value, member: &str) -> Value {
    if let Some(object) = value.as_object_mut() {
        object.remove(member);
    }
    value
}

fn key() -> ProofKey {
    ProofKey::generate().unwrap_or_else(|e| panic!("cannot generate a key: {e}"))
}

#[test]
fn good_proof_yields_the_thumbprint() {
    let proof_key = key();
    let signer = Signer::es256(&proof_key);
    let verified = verify_proof(&signer.good(), &expected());
    assert_eq!(
        verified,
        Ok(Verified {
            jkt: proof_key.thumbprint(),
            jti: "jti-1".into(),
            iat: NOW,
            nonce: None,
        })
    );
    let verified = verified.unwrap_or_else(|e| panic!("{e}"));
    assert!(verified.matches(&proof_key.thumbprint()));
    assert!(!verified.matches(&key().thumbprint()));
    assert!(!verified.matches(""));
    assert_eq!(verified.bound_to(&proof_key.thumbprint()), Ok(()));
    assert_eq!(
        verified.bound_to(&key().thumbprint()),
        Err(ProofError::KeyMismatch)
    );
}

#[test]
fn each_rule_gives_its_error() {
    let proof_key = key();
    let signer = Signer::es256(&proof_key);
    let other = Signer::es256(&key());
    let header = signer.header();
    let claims = good_claims();
    let good = signer.good();
    let parts: Vec<&str> = good.split('.').collect();
    let tampered_claims = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(with(claims.clone(), "htm", json!("GET")).to_string()),
        parts[2]
    );
    let tampered_header = format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(with(header.clone(), "kid", json!("x")).to_string()),
        parts[1],
        parts[2]
    );
    let hmac = EncodingKey::from_secret(b"secret");
    let hs256 = sign_raw(
        &hmac,
        Algorithm::HS256,
        &with(header.clone(), "alg", json!("HS256")).to_string(),
        &claims.to_string(),
    );
    let hs256_oct = sign_raw(
        &hmac,
        Algorithm::HS256,
        &json!({"typ": TYP, "alg": "HS256", "jwk": {"kty": "oct", "k": "c2VjcmV0"}}).to_string(),
        &claims.to_string(),
    );
    let alg_none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(with(header.clone(), "alg", json!("none")).to_string()),
        parts[1]
    );
    let alg_none_signed = format!("{alg_none}AAAA");
    let private_jwk = with(
        header.clone(),
        "jwk",
        with(signer.jwk.clone(), "d", json!("AAAA")),
    );
    let symmetric_jwk = with(
        header.clone(),
        "jwk",
        with(signer.jwk.clone(), "k", json!("AAAA")),
    );
    let rsa_jwk_for_es256 = with(
        header.clone(),
        "jwk",
        json!({"kty": "RSA", "n": RSA_N, "e": "AQAB"}),
    );
    let long_jti: String = "j".repeat(257);
    let oversize = signer.sign(
        &header,
        &with(claims.clone(), "pad", json!("x".repeat(6200))),
    );

    use ProofError::*;
    let malformed = Malformed(String::new());
    let cases: Vec<(&str, String, ProofError)> = vec![
        (
            "wrong typ",
            signer.sign(&with(header.clone(), "typ", json!("JWT")), &claims),
            WrongType,
        ),
        (
            "typ in other case",
            signer.sign(&with(header.clone(), "typ", json!("DPoP+JWT")), &claims),
            WrongType,
        ),
        (
            "no typ",
            signer.sign(&without(header.clone(), "typ"), &claims),
            WrongType,
        ),
        ("alg none, empty signature", alg_none, malformed.clone()),
        (
            "alg none, some signature",
            alg_none_signed,
            UnsupportedAlgorithm("none".into()),
        ),
        (
            "HS256 with the EC jwk",
            hs256,
            UnsupportedAlgorithm("HS256".into()),
        ),
        (
            "HS256 with an oct jwk",
            hs256_oct,
            UnsupportedAlgorithm("HS256".into()),
        ),
        (
            "alg of another family than the jwk",
            signer.sign(&rsa_jwk_for_es256, &claims),
            UnsupportedAlgorithm(String::new()),
        ),
        (
            "no jwk",
            signer.sign(&without(header.clone(), "jwk"), &claims),
            MissingJwk,
        ),
        (
            "private jwk",
            signer.sign(&private_jwk, &claims),
            PrivateKeyInHeader,
        ),
        (
            "symmetric member in jwk",
            signer.sign(&symmetric_jwk, &claims),
            PrivateKeyInHeader,
        ),
        (
            "signed by another key",
            other.sign(&header, &claims),
            BadSignature,
        ),
        ("tampered claims", tampered_claims, BadSignature),
        ("tampered header", tampered_header, BadSignature),
        (
            "wrong htm",
            signer.sign(&header, &with(claims.clone(), "htm", json!("GET"))),
            WrongMethod,
        ),
        (
            "htm in other case",
            signer.sign(&header, &with(claims.clone(), "htm", json!("post"))),
            WrongMethod,
        ),
        (
            "other host",
            signer.sign(
                &header,
                &with(claims.clone(), "htu", json!("https://evil.example/notes")),
            ),
            WrongUrl,
        ),
        (
            "other path",
            signer.sign(
                &header,
                &with(claims.clone(), "htu", json!("https://api.example/notes/1")),
            ),
            WrongUrl,
        ),
        (
            "other scheme",
            signer.sign(
                &header,
                &with(claims.clone(), "htu", json!("http://api.example/notes")),
            ),
            WrongUrl,
        ),
        (
            "other port",
            signer.sign(
                &header,
                &with(
                    claims.clone(),
                    "htu",
                    json!("https://api.example:8443/notes"),
                ),
            ),
            WrongUrl,
        ),
        (
            "htu not a URL",
            signer.sign(&header, &with(claims.clone(), "htu", json!("/notes"))),
            WrongUrl,
        ),
        (
            "too old",
            signer.sign(&header, &with(claims.clone(), "iat", json!(NOW - 66))),
            Stale,
        ),
        (
            "in the future",
            signer.sign(&header, &with(claims.clone(), "iat", json!(NOW + 6))),
            Future,
        ),
        (
            "iat a string",
            signer.sign(&header, &with(claims.clone(), "iat", json!("1700000000"))),
            malformed.clone(),
        ),
        (
            "iat a fraction",
            signer.sign(&header, &with(claims.clone(), "iat", json!(1.5))),
            malformed.clone(),
        ),
        (
            "no iat",
            signer.sign(&header, &without(claims.clone(), "iat")),
            malformed.clone(),
        ),
        (
            "no jti",
            signer.sign(&header, &without(claims.clone(), "jti")),
            malformed.clone(),
        ),
        (
            "empty jti",
            signer.sign(&header, &with(claims.clone(), "jti", json!(""))),
            malformed.clone(),
        ),
        (
            "jti too long",
            signer.sign(&header, &with(claims.clone(), "jti", json!(long_jti))),
            malformed.clone(),
        ),
        (
            "no htm",
            signer.sign(&header, &without(claims.clone(), "htm")),
            malformed.clone(),
        ),
        (
            "no htu",
            signer.sign(&header, &without(claims.clone(), "htu")),
            malformed.clone(),
        ),
        (
            "claims not an object",
            signer.sign(&header, &json!([1, 2])),
            malformed.clone(),
        ),
        ("oversize", oversize, TooLarge),
        ("oversize garbage", "a".repeat(8 * 1024 + 1), TooLarge),
        ("empty", String::new(), malformed.clone()),
        ("two parts", "a.b".into(), malformed.clone()),
        ("four parts", format!("{good}.x"), malformed.clone()),
        ("not base64", "!!!.!!!.!!!".into(), malformed.clone()),
        (
            "header not JSON",
            format!(
                "{}.{}.{}",
                URL_SAFE_NO_PAD.encode("nope"),
                parts[1],
                parts[2]
            ),
            malformed.clone(),
        ),
        (
            "signature not base64",
            format!("{}.{}.!!", parts[0], parts[1]),
            malformed.clone(),
        ),
    ];
    for (name, proof, want) in cases {
        let got = verify_proof(&proof, &expected());
        let same = match (&got, &want) {
            (Err(Malformed(_)), Malformed(_)) => true,
            (Err(UnsupportedAlgorithm(_)), UnsupportedAlgorithm(w)) if w.is_empty() => true,
            (Err(g), w) => g == w,
            (Ok(_), _) => false,
        };
        assert!(same, "{name}: got {got:?}, want {want:?}");
    }
}

#[test]
fn iat_window_edges_are_inclusive() {
    let signer = Signer::es256(&key());
    for (iat, ok) in [
        (NOW, true),
        (NOW - 65, true),
        (NOW - 66, false),
        (NOW + 5, true),
        (NOW + 6, false),
        (i64::MIN, false),
        (i64::MAX, false),
    ] {
        let proof = signer.sign(&signer.header(), &with(good_claims(), "iat", json!(iat)));
        assert_eq!(verify_proof(&proof, &expected()).is_ok(), ok, "iat {iat}");
    }
    let proof = signer.good();
    let extreme = Expected {
        now: i64::MAX,
        max_age: i64::MAX,
        leeway: i64::MAX,
        ..expected()
    };
    assert!(verify_proof(&proof, &extreme).is_ok());
    let extreme = Expected {
        now: i64::MIN,
        max_age: i64::MIN,
        leeway: i64::MIN,
        ..expected()
    };
    assert!(verify_proof(&proof, &extreme).is_err());
}

#[test]
fn htu_ignores_query_fragment_default_port_and_case() {
    let signer = Signer::es256(&key());
    for (claim, request) in [
        ("https://api.example/notes?x=1", URL),
        ("https://api.example/notes#frag", URL),
        (URL, "https://api.example/notes?page=2#top"),
        ("https://api.example:443/notes", URL),
        (URL, "https://api.example:443/notes"),
        ("HTTPS://API.Example/notes", URL),
        ("http://api.example:80/notes", "http://api.example/notes"),
    ] {
        let proof = signer.sign(&signer.header(), &with(good_claims(), "htu", json!(claim)));
        let result = verify_proof(
            &proof,
            &Expected {
                url: request,
                ..expected()
            },
        );
        assert!(result.is_ok(), "{claim} vs {request}: {result:?}");
    }
}

#[test]
fn htu_normalises_and_refuses() {
    assert_eq!(
        htu("HTTPS://A.Example:443/X?q#f").ok().as_deref(),
        Some("https://a.example/X")
    );
    assert_eq!(
        htu("http://a.example:8080").ok().as_deref(),
        Some("http://a.example:8080/")
    );
    assert_eq!(
        htu("https://a.example/%7Efoo").ok().as_deref(),
        Some("https://a.example/%7Efoo")
    );
    assert_eq!(
        htu("https://[::1]:443/x").ok().as_deref(),
        Some("https://[::1]/x")
    );
    for bad in [
        "ftp://a.example/x",
        "https://user@a.example/x",
        "https://u:p@a.example/",
        "/relative",
        "",
        "https://",
        "file:///etc/passwd",
    ] {
        assert!(matches!(htu(bad), Err(ProofError::Malformed(_))), "{bad}");
    }
}

#[test]
fn ath_is_checked_when_a_token_is_sent() {
    let signer = Signer::es256(&key());
    let with_token = Expected {
        access_token: Some(TOKEN),
        ..expected()
    };
    let right = signer.sign(
        &signer.header(),
        &with(good_claims(), "ath", json!(ath(TOKEN))),
    );
    let wrong = signer.sign(
        &signer.header(),
        &with(good_claims(), "ath", json!(ath("other"))),
    );
    assert!(verify_proof(&right, &with_token).is_ok());
    assert_eq!(
        verify_proof(&signer.good(), &with_token),
        Err(ProofError::MissingAth)
    );
    assert_eq!(verify_proof(&wrong, &with_token), Err(ProofError::WrongAth));
    // Without a token, an ath claim is harmless.
    assert!(verify_proof(&right, &expected()).is_ok());
    // RFC 9449 §7.1's example: ath of "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU".
    assert_eq!(
        ath("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"),
        "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"
    );
}

#[test]
fn required_nonce_is_checked() {
    let signer = Signer::es256(&key());
    let needs = Expected {
        nonce: Some("n-1"),
        ..expected()
    };
    let right = signer.sign(
        &signer.header(),
        &with(good_claims(), "nonce", json!("n-1")),
    );
    let wrong = signer.sign(
        &signer.header(),
        &with(good_claims(), "nonce", json!("n-2")),
    );
    assert_eq!(
        verify_proof(&right, &needs).map(|v| v.nonce),
        Ok(Some("n-1".into()))
    );
    assert_eq!(
        verify_proof(&signer.good(), &needs),
        Err(ProofError::UseNonce)
    );
    assert_eq!(verify_proof(&wrong, &needs), Err(ProofError::UseNonce));
    assert_eq!(ProofError::UseNonce.oauth_error(), "use_dpop_nonce");
    assert_eq!(ProofError::WrongAth.oauth_error(), "invalid_dpop_proof");
}

#[test]
fn stateless_nonces_through_verify_proof_with_nonces() {
    let proof_key = key();
    let nonces = Nonces::new([3; 32], 300);
    let current = nonces.issue(NOW);
    let expired = nonces.issue(NOW - 600);
    let forged = Nonces::new([4; 32], 300).issue(NOW);
    let proof = |nonce: Option<&str>| {
        proof_key
            .proof("POST", URL, None, nonce, NOW)
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let verified = verify_proof_with_nonces(&proof(Some(&current)), &expected(), &nonces);
    assert_eq!(verified.map(|v| v.nonce), Ok(Some(current.clone())));
    for nonce in [
        None,
        Some(expired.as_str()),
        Some(forged.as_str()),
        Some("junk"),
    ] {
        assert_eq!(
            verify_proof_with_nonces(&proof(nonce), &expected(), &nonces),
            Err(ProofError::UseNonce),
            "{nonce:?}"
        );
    }
    // Other failures still come first.
    let stale = Expected {
        now: NOW + 1000,
        ..expected()
    };
    assert_eq!(
        verify_proof_with_nonces(&proof(None), &stale, &nonces),
        Err(ProofError::Stale)
    );
}

#[test]
fn proof_key_proofs_verify() {
    let proof_key = key();
    let proof = proof_key
        .proof(
            "GET",
            "https://api.example/notes?page=2",
            Some(TOKEN),
            Some("n"),
            NOW,
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let request = Expected {
        method: "GET",
        url: "https://api.example/notes?page=3",
        access_token: Some(TOKEN),
        nonce: Some("n"),
        ..expected()
    };
    let verified = verify_proof(&proof, &request).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(verified.jkt, proof_key.thumbprint());
    assert_eq!(verified.jti.len(), 22);
    assert_eq!(verified.iat, NOW);
    let again = proof_key
        .proof("GET", URL, None, None, NOW)
        .unwrap_or_else(|e| panic!("{e}"));
    let again = verify_proof(
        &again,
        &Expected {
            method: "GET",
            ..expected()
        },
    );
    assert_ne!(again.map(|v| v.jti), Ok(verified.jti));
    // The key's own proofs are refused for another method or a stolen token.
    assert_eq!(
        verify_proof(
            &proof,
            &Expected {
                method: "POST",
                ..request
            }
        ),
        Err(ProofError::WrongMethod)
    );
    assert_eq!(
        verify_proof(
            &proof,
            &Expected {
                access_token: Some("other"),
                ..request
            }
        ),
        Err(ProofError::WrongAth)
    );
    assert!(matches!(
        proof_key.proof("GET", "not a url", None, None, NOW),
        Err(ProofError::Malformed(_))
    ));
}

#[test]
fn every_listed_algorithm_verifies() {
    let es256 = Signer::es256(&key());
    let es384 = Signer {
        key: EncodingKey::from_ec_der(&der(P384_PEM)),
        alg: Algorithm::ES384,
        jwk: json!({"kty": "EC", "crv": "P-384", "x": P384_X, "y": P384_Y}),
    };
    let eddsa = Signer {
        key: EncodingKey::from_ed_der(&der(ED25519_PEM)),
        alg: Algorithm::EdDSA,
        jwk: json!({"kty": "OKP", "crv": "Ed25519", "x": ED25519_X}),
    };
    let rsa_jwk = json!({"kty": "RSA", "n": RSA_N, "e": "AQAB"});
    let rs256 = Signer {
        key: EncodingKey::from_rsa_der(&der(RSA_PEM)),
        alg: Algorithm::RS256,
        jwk: rsa_jwk.clone(),
    };
    let ps256 = Signer {
        key: EncodingKey::from_rsa_der(&der(RSA_PEM)),
        alg: Algorithm::PS256,
        jwk: rsa_jwk,
    };
    let signers = [es256, es384, eddsa, rs256, ps256];
    let tested: Vec<&str> = signers.iter().map(|s| alg_name(s.alg)).collect();
    assert_eq!(tested, ALGORITHMS);
    for signer in &signers {
        let name = alg_name(signer.alg);
        let verified = verify_proof(&signer.good(), &expected());
        assert_eq!(verified.map(|v| v.jkt), thumbprint(&signer.jwk), "{name}");
        // And a signature by another key of the same kind fails.
        let forged = with(signer.header(), "jwk", Signer::es256(&key()).jwk);
        if signer.alg == Algorithm::ES256 {
            assert_eq!(
                verify_proof(&signer.sign(&forged, &good_claims()), &expected()),
                Err(ProofError::BadSignature)
            );
        }
    }
    // Ed25519's jwk thumbprint, computed independently with python3 (see jwk.rs).
    assert_eq!(
        thumbprint(&signers[2].jwk).ok().as_deref(),
        Some("JWLrCZTakAmiPMDjby7d9k8S3KeI_Z5h1PJhSGx5ueI")
    );
    // RS256 and PS256 signatures are not interchangeable.
    let rs_as_ps = signers[3].sign(
        &with(signers[3].header(), "alg", json!("PS256")),
        &good_claims(),
    );
    assert_eq!(
        verify_proof(&rs_as_ps, &expected()),
        Err(ProofError::BadSignature)
    );
}

#[test]
fn short_or_wrong_size_keys_are_refused() {
    let signer = Signer::es256(&key());
    for jwk in [
        json!({"kty": "OKP", "crv": "Ed25519", "x": "AAAA"}),
        json!({"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA"}),
        json!({"kty": "RSA", "n": "AQAB", "e": "AQAB"}),
    ] {
        let alg = match jwk["kty"].as_str() {
            Some("OKP") => "EdDSA",
            Some("EC") => "ES256",
            _ => "RS256",
        };
        let header = json!({"typ": TYP, "alg": alg, "jwk": jwk});
        let proof = signer.sign(&header, &good_claims());
        assert!(
            matches!(
                verify_proof(&proof, &expected()),
                Err(ProofError::Malformed(_))
            ),
            "{jwk}"
        );
    }
}

#[test]
fn error_messages_are_sentences() {
    for error in [
        ProofError::Malformed("x".into()),
        ProofError::TooLarge,
        ProofError::WrongType,
        ProofError::UnsupportedAlgorithm("HS256".into()),
        ProofError::MissingJwk,
        ProofError::PrivateKeyInHeader,
        ProofError::BadSignature,
        ProofError::WrongMethod,
        ProofError::WrongUrl,
        ProofError::Stale,
        ProofError::Future,
        ProofError::MissingAth,
        ProofError::WrongAth,
        ProofError::UseNonce,
        ProofError::Replayed,
        ProofError::CacheFull,
        ProofError::KeyMismatch,
        ProofError::BadKey("x".into()),
        ProofError::RandomUnavailable,
    ] {
        let text = error.to_string();
        assert!(
            text.starts_with("the ") || text.starts_with("this "),
            "{text}"
        );
        assert!(!text.contains('\n'), "{text}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_strings_never_panic(input in any::<String>()) {
        let _ = verify_proof(&input, &expected());
    }

    #[test]
    fn jws_shaped_strings_never_panic(input in "[A-Za-z0-9_-]{0,80}\\.[A-Za-z0-9_-]{0,80}\\.[A-Za-z0-9_-]{0,90}") {
        prop_assert!(verify_proof(&input, &expected()).is_err());
    }

    #[test]
    fn mutated_proofs_verify_as_signed_or_not_at_all(
        edits in prop::collection::vec((any::<prop::sample::Index>(), 0u8..3, any::<u8>()), 1..4)
    ) {
        let signer = Signer::es256(&fixed_key());
        let proof = signer.good();
        let original = verify_proof(&proof, &expected());
        prop_assert!(original.is_ok());
        let mut bytes = proof.into_bytes();
        for (index, kind, byte) in edits {
            let at = index.index(bytes.len());
            match kind {
                0 => bytes[at] = byte,
                1 => { bytes.remove(at); }
                _ => bytes.insert(at, byte),
            }
        }
        let mutated = String::from_utf8_lossy(&bytes).into_owned();
        if let Ok(verified) = verify_proof(&mutated, &expected()) {
            prop_assert_eq!(Ok(verified), original);
        }
    }

    #[test]
    fn resigned_claims_never_pass_with_the_old_signature(jti in "[a-z]{1,10}", iat in NOW - 60..NOW + 5) {
        let signer = Signer::es256(&fixed_key());
        let good = signer.good();
        let parts: Vec<&str> = good.split('.').collect();
        let claims = json!({"jti": jti, "htm": "POST", "htu": URL, "iat": iat});
        prop_assume!(claims != good_claims());
        let spliced = format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode(claims.to_string()), parts[2]);
        prop_assert_eq!(verify_proof(&spliced, &expected()), Err(ProofError::BadSignature));
    }
}

fn fixed_key() -> ProofKey {
    // One key for all cases of a property, so each case only signs and verifies.
    static KEY: std::sync::OnceLock<ProofKey> = std::sync::OnceLock::new();
    KEY.get_or_init(key).clone()
}
