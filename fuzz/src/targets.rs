//! The targets. Each feeds bytes to one parser of untrusted input and checks
//! what must hold for every input, beyond not panicking.

use std::sync::OnceLock;

use laissez_gate::browser::safe_return_target;
use laissez_gate::facts::{RpcCalls, normalize_path};
use std::net::IpAddr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use laissez_gate::verify::{IssuerKey, access_token_key_id, verify_signed};
use laissez_oauth::address::is_public;
use laissez_oauth::client::{ClientKind, GrantType, RegistrationRequest};
use laissez_oauth::redirect;
use laissez_scan::stream::decode_escapes;
use laissez_scan::{Engine, RuleSet};
use laissez_token::{Namespace, Token};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};

use crate::Target;

/// Every target, in the order CI runs them.
pub static ALL: &[Target] = &[
    Target {
        name: "token_parse",
        run: token_parse,
        dictionary: &[b"lz", b"ut_", b"at_", b"tt_", b"rt_", b"cs_", b"_", b"acme"],
    },
    Target {
        name: "redirect_match",
        run: redirect_match,
        dictionary: &[
            b"http://127.0.0.1",
            b"http://[::1]",
            b"http://localhost",
            b"https://",
            b":8080",
            b"/callback",
            b"?a=b",
            b"#",
            b"@",
            b"%2f",
            b"%00",
            b"\n",
            b"com.example.app:/",
        ],
    },
    Target {
        name: "client_metadata",
        run: client_metadata,
        dictionary: &[
            b"\"redirect_uris\"",
            b"\"grant_types\"",
            b"\"client_credentials\"",
            b"\"token_endpoint_auth_method\"",
            b"\"none\"",
            b"\"client_uri\"",
            b"\"logo_uri\"",
            b"\"https://app.example/cb\"",
            b"\"http://127.0.0.1/cb\"",
            b"[",
            b"]",
            b"{",
            b"}",
            b",",
            b":",
            b"null",
            b"\\u0000",
        ],
    },
    Target {
        name: "scan_engine",
        run: scan_engine,
        dictionary: &[
            b"lzut_",
            b"lzat_",
            b"ghp_",
            b"github_pat_",
            b"AKIA",
            b"xoxb-",
            b"sk_live_",
            b"-----BEGIN PRIVATE KEY-----",
            b"-----END PRIVATE KEY-----",
            b"password=",
            b"postgres://u:p@h/db",
            b"eyJ",
            b"sk-ant-",
            b"\n",
        ],
    },
    Target {
        name: "jws_verify",
        run: jws_verify,
        dictionary: &[
            b"\"alg\"",
            b"\"ES256\"",
            b"\"none\"",
            b"\"HS256\"",
            b"\"typ\"",
            b"\"at+jwt\"",
            b"\"kid\"",
            b"\"iss\"",
            b"\"https://issuer.example\"",
            b"\"exp\"",
            b"\"sub\"",
            b"\"aud\"",
            b"\"jti\"",
            b"\"nbf\"",
            b"4102444800",
            b"null",
            b"{",
            b"}",
            b".",
            b",",
        ],
    },
    Target {
        name: "task_grant",
        run: task_grant,
        dictionary: &[
            b"@",
            b"https://",
            b"http://",
            b"notes.read",
            b"acme/apps/wiki",
            b"/",
            b"..",
            b"%2e",
            b"%2f",
            b":443",
            b"?",
            b"#",
            b"tsk_",
        ],
    },
    Target {
        name: "intent_propose",
        run: intent_propose,
        dictionary: &[
            b"read tickets",
            b"queue ",
            b"../",
            b"admin",
            b"\xe2\x80\x8b",
            b"\xd0\xb5",
            b"grant",
            b" ",
        ],
    },
    Target {
        name: "dpop_proof",
        run: dpop_proof,
        dictionary: &[
            b"\"typ\"",
            b"\"dpop+jwt\"",
            b"\"alg\"",
            b"\"ES256\"",
            b"\"EdDSA\"",
            b"\"none\"",
            b"\"HS256\"",
            b"\"jwk\"",
            b"\"kty\"",
            b"\"EC\"",
            b"\"OKP\"",
            b"\"RSA\"",
            b"\"crv\"",
            b"\"P-256\"",
            b"\"d\"",
            b"\"jti\"",
            b"\"htm\"",
            b"\"POST\"",
            b"\"htu\"",
            b"\"https://api.example/notes\"",
            b"\"iat\"",
            b"1700000000",
            b"\"ath\"",
            b"\"nonce\"",
            b"{",
            b"}",
            b".",
            b",",
        ],
    },
    Target {
        name: "client_assertion",
        run: client_assertion,
        dictionary: &[
            b"\"alg\"",
            b"\"ES256\"",
            b"\"RS256\"",
            b"\"none\"",
            b"\"HS256\"",
            b"\"kid\"",
            b"\"iss\"",
            b"\"sub\"",
            b"\"agent\"",
            b"\"aud\"",
            b"\"https://id.example\"",
            b"\"exp\"",
            b"\"nbf\"",
            b"\"iat\"",
            b"1700000000",
            b"\"jti\"",
            b"[",
            b"]",
            b"{",
            b"}",
            b".",
            b",",
        ],
    },
    Target {
        name: "address_filter",
        run: address_filter,
        dictionary: &[],
    },
    Target {
        name: "path_normalize",
        run: path_normalize,
        dictionary: &[
            b"/", b"//", b"/./", b"/../", b"%2e", b"%2E%2E", b"%2f", b"%2F", b"%5c", b"%61", b"%",
            b"%%", b";", b"..;", b"?", b"#", b"admin", b"\\",
        ],
    },
    Target {
        name: "rpc_calls",
        run: rpc_calls,
        dictionary: &[
            b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"x\"}}",
            b"\"method\"",
            b"\"tools/call\"",
            b"\"params\"",
            b"\"name\"",
            b"[",
            b"]",
            b"{",
            b"}",
            b",",
            b"NaN",
            b"\\ud800",
            b"\xef\xbb\xbf",
            b"1e999",
        ],
    },
    Target {
        name: "return_target",
        run: return_target,
        dictionary: &[
            b"/",
            b"//",
            b"\\",
            b"%5C",
            b"%2F",
            b"%25",
            b"https://evil",
            b"javascript:",
            b"%0a",
        ],
    },
    Target {
        name: "decode_escapes",
        run: escapes,
        dictionary: &[
            b"%5F",
            b"%5f",
            b"\\u005f",
            b"\\ud83d\\ude00",
            b"\\/",
            b"%5Cu005f",
            b"%",
            b"\\u",
        ],
    },
];

/// `Token::parse`: whatever it accepts re-serialises to the same text, has a
/// valid checksum and a 40-character body.
pub fn token_parse(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(token) = Token::parse(text) {
        assert_eq!(token.expose(), text);
        assert!(text.starts_with(token.prefix()));
        assert!(Namespace::new(token.namespace()).is_ok());
        let signed = &text.as_bytes()[..text.len() - laissez_token::CHECKSUM_LEN];
        assert_eq!(
            &laissez_token::checksum(signed)[..],
            &text.as_bytes()[text.len() - laissez_token::CHECKSUM_LEN..]
        );
    }
}

/// Redirect URI validation and matching: the first line is registered, the
/// second requested. A match is exact, or the same loopback URI on another
/// port; a non-loopback registration matches only itself.
pub fn redirect_match(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (registered, requested) = text.split_once('\n').unwrap_or((&text, &text));
    let valid = redirect::validate(registered);
    let registered = vec![registered.to_owned()];
    let matched = redirect::matches(&registered, requested);
    if requested == registered[0] {
        assert!(matched, "a URI matches itself");
    }
    if matched && requested != registered[0] {
        let (Some(a), Some(b)) = (url_of(requested), url_of(&registered[0])) else {
            panic!("a match other than the same string needs two URLs");
        };
        assert!(
            redirect::is_loopback(&a) && redirect::is_loopback(&b),
            "only loopback URIs may differ (in port)"
        );
        assert_eq!(
            (a.host_str(), a.path(), a.query()),
            (b.host_str(), b.path(), b.query())
        );
        assert!(a.fragment().is_none());
    }
    let _ = valid;
}

fn url_of(text: &str) -> Option<url::Url> {
    url::Url::parse(text).ok()
}

/// RFC 7591 registration metadata and metadata documents: any bytes either
/// fail with an OAuth error or validate into metadata whose every redirect
/// URI passes validation, and a client that registered itself never holds
/// the client-credentials grant.
pub fn client_metadata(data: &[u8]) {
    for kind in [ClientKind::Dynamic, ClientKind::MetadataDocument] {
        if let Ok(metadata) = RegistrationRequest::parse(data, kind) {
            for uri in &metadata.redirect_uris {
                assert!(
                    redirect::validate(uri).is_ok(),
                    "stored an invalid redirect URI {uri:?}"
                );
            }
            assert_eq!(metadata.response_types, vec!["code".to_owned()]);
            assert!(
                !metadata.allows(GrantType::ClientCredentials),
                "a {kind:?} client got client_credentials"
            );
        }
    }
}

/// The scanner engine over arbitrary bytes: every hit lies inside the text,
/// inside its own match, and a valid Laissez hit parses as a token.
pub fn scan_engine(data: &[u8]) {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    let engine = ENGINE.get_or_init(|| {
        Engine::new(&[Namespace::default()], RuleSet::All, Vec::new())
            .unwrap_or_else(|e| panic!("the built-in rules compile: {e}"))
    });
    for hit in engine.scan(data) {
        assert!(hit.match_start <= hit.start && hit.start < hit.end && hit.end <= hit.match_end);
        assert!(hit.match_end <= data.len());
        assert!(hit.detector < engine.detectors().len());
    }
}

/// The gate's path normaliser: what it accepts is absolute, has no empty,
/// `.` or `..` segment, no encoded separator unless allowed, and
/// normalises to itself.
pub fn path_normalize(data: &[u8]) {
    let Some((&flag, rest)) = data.split_first() else {
        return;
    };
    let Ok(raw) = std::str::from_utf8(rest) else {
        return;
    };
    let allow = flag & 1 == 1;
    if let Ok(path) = normalize_path(raw, allow) {
        assert!(path.starts_with('/'), "{path:?} is not absolute");
        assert!(!path.contains("//"), "{path:?} has an empty segment");
        for segment in path.split('/') {
            assert!(
                segment != "." && segment != "..",
                "{path:?} has a dot segment"
            );
        }
        if !allow {
            let upper = path.to_ascii_uppercase();
            assert!(
                !upper.contains("%2F") && !upper.contains("%5C"),
                "{path:?} kept an encoded separator"
            );
        }
        assert_eq!(
            normalize_path(&path, allow).as_deref(),
            Ok(path.as_str()),
            "not idempotent"
        );
    }
}

/// Strict JSON-RPC reading on tool-ruled routes: any bytes are either
/// refused or read, and a read body says so.
pub fn rpc_calls(data: &[u8]) {
    if let Ok(calls) = RpcCalls::parse(data) {
        assert!(calls.body_read);
    }
}

/// The sign-in return target is always a same-origin path, and stable.
pub fn return_target(data: &[u8]) {
    let target = safe_return_target(&String::from_utf8_lossy(data));
    assert!(
        target.starts_with('/') && !target.starts_with("//") && !target.contains('\\'),
        "{target:?}"
    );
    assert_eq!(safe_return_target(&target), target);
}

/// DLP's escape decoding: never longer than its input, and every decoded
/// byte maps back into the input, in order.
pub fn escapes(data: &[u8]) {
    if let Some(decoded) = decode_escapes(data) {
        assert!(decoded.bytes.len() <= data.len());
        assert_eq!(decoded.origins.len(), decoded.bytes.len() + 1);
        assert!(decoded.origins.windows(2).all(|w| w[0] <= w[1]));
        assert!(decoded.origins.iter().all(|&o| o as usize <= data.len()));
    }
}

const ISSUER: &str = "https://issuer.example";

/// A fixed signing key and its public half.
fn jws_keys() -> &'static (SigningKey, IssuerKey) {
    static KEYS: OnceLock<(SigningKey, IssuerKey)> = OnceLock::new();
    KEYS.get_or_init(|| {
        let key = SigningKey::from_bytes(&[7u8; 32].into())
            .unwrap_or_else(|e| panic!("a fixed P-256 scalar: {e}"));
        let point = key.verifying_key().to_encoded_point(false);
        let coordinate = |c: Option<&p256::FieldBytes>| {
            URL_SAFE_NO_PAD.encode(c.map(|c| c.as_slice()).unwrap_or_default())
        };
        let jwk = serde_json::json!({"kty": "EC", "crv": "P-256",
            "x": coordinate(point.x()), "y": coordinate(point.y())});
        let decoding =
            IssuerKey::from_jwk(&jwk).unwrap_or_else(|e| panic!("the fixed public key: {e}"));
        (key, decoding)
    })
}

/// The gate's JWS verification. The first byte chooses what the rest is:
/// a whole compact token; a JWS header signed (correctly) with the gate's
/// key over valid claims; or claims signed under a valid header. Whatever
/// is accepted is ES256 `at+jwt` with a key id, from the issuer.
pub fn jws_verify(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (key, decoding) = jws_keys();
    const HEADER: &str = r#"{"alg":"ES256","typ":"at+jwt","kid":"k1"}"#;
    const CLAIMS: &str = r#"{"iss":"https://issuer.example","sub":"usr_a","aud":"https://app.example","exp":4102444800,"iat":1700000000,"jti":"j","client_id":"c","scope":"notes.read"}"#;
    let token = match mode % 3 {
        0 => String::from_utf8_lossy(rest).into_owned(),
        1 => sign(key, rest, CLAIMS.as_bytes()),
        _ => sign(key, HEADER.as_bytes(), rest),
    };
    if let Ok(claims) = verify_signed(&token, decoding, ISSUER) {
        assert_eq!(claims.iss, ISSUER);
        assert!(
            access_token_key_id(&token).is_ok(),
            "accepted a header the gate refuses"
        );
        let header = jsonwebtoken::decode_header(&token)
            .unwrap_or_else(|e| panic!("accepted an unreadable header: {e}"));
        assert_eq!(header.alg, jsonwebtoken::Algorithm::ES256);
    }
}

const DPOP_NOW: i64 = 1_700_000_000;

/// A DPoP proof as the gate and the token endpoint verify it. The first
/// byte chooses what the rest is: a whole proof; a header signed (correctly)
/// with a fixed key over valid claims; or claims signed under a valid header
/// carrying that key. Whatever is accepted is fresh, names a short non-empty
/// `jti`, and, when signed by the fixed key, yields that key's thumbprint.
pub fn dpop_proof(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (key, _) = jws_keys();
    let jwk = dpop_jwk();
    let header = serde_json::json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk}).to_string();
    let claims = serde_json::json!({
        "jti": "j", "htm": "POST", "htu": "https://api.example/notes", "iat": DPOP_NOW
    })
    .to_string();
    let proof = match mode % 3 {
        0 => String::from_utf8_lossy(rest).into_owned(),
        1 => sign(key, rest, claims.as_bytes()),
        _ => sign(key, header.as_bytes(), rest),
    };
    let expected = laissez_dpop::Expected {
        method: "POST",
        url: "https://api.example/notes?q=1",
        access_token: None,
        nonce: None,
        now: DPOP_NOW,
        max_age: 60,
        leeway: 5,
    };
    if let Ok(verified) = laissez_dpop::verify_proof(&proof, &expected) {
        assert!(!verified.jti.is_empty() && verified.jti.chars().count() <= 256);
        assert!((DPOP_NOW - 65..=DPOP_NOW + 5).contains(&verified.iat));
        if mode % 3 == 2 {
            let fixed = laissez_dpop::jwk::thumbprint(jwk)
                .unwrap_or_else(|e| panic!("the fixed key's thumbprint: {e}"));
            assert_eq!(verified.jkt, fixed, "accepted a proof under another key");
        }
    }
}

/// RFC 7523 client assertions: raw text, a signed assertion with a fuzzed
/// header, or one with fuzzed claims, all under the registered key. What is
/// admitted names a short `jti` and expires within the allowed lifetime.
pub fn client_assertion(data: &[u8]) {
    use laissez_oauth::assertion::{self, Expected, MAX_JTI_LEN, MAX_LIFETIME};
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (key, _) = jws_keys();
    let jwks = serde_json::json!({"keys": [dpop_jwk()]});
    let header = br#"{"alg":"ES256"}"#;
    let claims = serde_json::json!({"iss": "agent", "sub": "agent",
        "aud": "https://id.example", "exp": DPOP_NOW + 60, "jti": "j"})
    .to_string();
    let text = match mode % 3 {
        0 => String::from_utf8_lossy(rest).into_owned(),
        1 => sign(key, rest, claims.as_bytes()),
        _ => sign(key, header, rest),
    };
    let expected = Expected {
        client_id: "agent",
        audiences: &["https://id.example"],
        now: DPOP_NOW,
        leeway: 5,
    };
    if let Ok(admitted) = assertion::verify(&text, &jwks, &expected) {
        assert!(!admitted.jti.is_empty() && admitted.jti.chars().count() <= MAX_JTI_LEN);
        assert!(admitted.until <= DPOP_NOW + MAX_LIFETIME + 10);
        assert!(admitted.until >= DPOP_NOW - 5);
    }
}

/// The public JWK of [`jws_keys`]'s signing key.
fn dpop_jwk() -> &'static serde_json::Value {
    static JWK: OnceLock<serde_json::Value> = OnceLock::new();
    JWK.get_or_init(|| {
        let point = jws_keys().0.verifying_key().to_encoded_point(false);
        let coordinate = |c: Option<&p256::FieldBytes>| {
            URL_SAFE_NO_PAD.encode(c.map(|c| c.as_slice()).unwrap_or_default())
        };
        serde_json::json!({
            "kty": "EC", "crv": "P-256", "x": coordinate(point.x()), "y": coordinate(point.y())
        })
    })
}

fn sign(key: &SigningKey, header: &[u8], claims: &[u8]) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let signature: Signature = key.sign(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
}

/// The metadata-document address filter: an IPv6 address that maps or
/// embeds an IPv4 one is public only if that IPv4 address is, and no
/// loopback, private, link-local or unspecified address is public.
pub fn address_filter(data: &[u8]) {
    let mut v6 = [0u8; 16];
    for (slot, byte) in v6.iter_mut().zip(data) {
        *slot = *byte;
    }
    let ip6 = std::net::Ipv6Addr::from(v6);
    let ip4 = std::net::Ipv4Addr::new(v6[12], v6[13], v6[14], v6[15]);
    for ip in [IpAddr::V6(ip6), IpAddr::V4(ip4)] {
        if is_public(ip) {
            assert!(
                !ip.is_loopback() && !ip.is_unspecified() && !ip.is_multicast(),
                "{ip} is public"
            );
            if let IpAddr::V4(v4) = ip {
                assert!(
                    !v4.is_private() && !v4.is_link_local() && !v4.is_broadcast(),
                    "{ip} is public"
                );
            }
        }
    }
    if let Some(mapped) = ip6.to_ipv4_mapped() {
        assert_eq!(
            is_public(IpAddr::V6(ip6)),
            is_public(IpAddr::V4(mapped)),
            "{ip6} and {mapped} differ"
        );
    }
}

/// A task grant (`permission@resource`), a task resource and a task id as
/// the server reads them from requests: what parses prints back to the same
/// value, an app URL keeps no userinfo, query, fragment or dot segment, and
/// a resource covers itself.
pub fn task_grant(data: &[u8]) {
    use laissez_core::task::{TaskGrant, TaskResource};
    let text = String::from_utf8_lossy(data);
    if let Ok(grant) = text.parse::<TaskGrant>() {
        let printed = grant.to_string();
        let again: TaskGrant = printed
            .parse()
            .unwrap_or_else(|e| panic!("{printed} does not parse again: {e}"));
        assert_eq!(again, grant);
        assert!(laissez_core::task::covered_by(
            &grant,
            std::slice::from_ref(&grant)
        ));
    }
    if let Ok(TaskResource::App(url)) = TaskResource::parse(&text) {
        let after_scheme = url.split_once("://").map_or("", |(_, rest)| rest);
        assert!(!url.contains(['@', '?', '#']), "{url}");
        assert!(
            !after_scheme
                .split('/')
                .any(|segment| segment == ".." || segment == "."),
            "{url}"
        );
    }
    if let Some((seq, tag)) = laissez_store::task::parse_task_id(&text) {
        assert_eq!(laissez_store::task::task_id(seq, tag), text);
    }
}

/// Intent rules proposing grants from a description: whatever the words,
/// a proposal holds only the matched rule's permissions, on its templates
/// filled with values of the capture alphabet.
pub fn intent_propose(data: &[u8]) {
    use std::sync::OnceLock;
    static RULES: OnceLock<laissez_core::task::IntentRules> = OnceLock::new();
    let rules = RULES.get_or_init(|| {
        laissez_core::task::IntentRules::from_toml(
            r#"
[[rule]]
name = "read-queue"
pattern = "read (the )?(?P<queue>[a-z0-9._-]+) queue"
permissions = ["tickets.read"]
resources = ["https://tickets.example/queues/{queue}/"]

[[rule]]
name = "summarise"
phrases = ["summarise tickets", "read tickets"]
permissions = ["tickets.read"]
resources = ["https://tickets.example/"]
"#,
        )
        .unwrap_or_else(|e| panic!("the fixed rules load: {e}"))
    });
    let description = String::from_utf8_lossy(data);
    if let Ok(proposal) = rules.propose(&description) {
        for grant in &proposal.grants {
            assert_eq!(grant.permission.as_str(), "tickets.read");
            let text = grant.resource.to_string();
            let tail = text
                .strip_prefix("https://tickets.example/")
                .unwrap_or_else(|| panic!("{text} is outside the templates"));
            if let Some(queue) = tail.strip_prefix("queues/") {
                let value = queue.trim_end_matches('/');
                assert!(laissez_core::task::is_capture_value(value), "{value}");
            } else {
                assert!(tail.is_empty(), "{text}");
            }
        }
    }
}
