//! Parsers of untrusted OAuth parameters never panic, and the rules hold for
//! arbitrary inputs: PKCE verifies only its own verifier, loopback matching
//! never accepts another host or path.

use laissez_oauth::pkce::{Challenge, challenge_for};
use laissez_oauth::resource::Resource;
use laissez_oauth::{OAuthScopes, redirect};
use proptest::prelude::*;

proptest! {
    #[test]
    fn parsers_never_panic(input in ".{0,200}") {
        let _ = Resource::parse(&input);
        let _ = redirect::validate(&input);
        let _ = redirect::matches(&["http://127.0.0.1/cb".to_owned()], &input);
        let _ = OAuthScopes::parse(Some(&input));
        let _ = Challenge::from_request(Some(&input), Some("S256"));
        if let Ok(c) = Challenge::from_request(Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"), Some("S256")) {
            let _ = c.verify(&input);
        }
    }

    #[test]
    fn pkce_accepts_exactly_its_verifier(a in "[A-Za-z0-9._~-]{43,128}", b in "[A-Za-z0-9._~-]{43,128}") {
        let challenge = Challenge::from_request(Some(&challenge_for(&a)), Some("S256")).unwrap();
        prop_assert!(challenge.verify(&a).is_ok());
        prop_assert_eq!(challenge.verify(&b).is_ok(), a == b);
    }

    #[test]
    fn loopback_port_freedom_keeps_host_and_path(port in 1u16.., path in "/[a-z]{0,8}", other in "/[a-z]{0,8}") {
        let registered = vec![format!("http://127.0.0.1{path}")];
        let same = format!("http://127.0.0.1:{port}{path}");
        let elsewhere = format!("http://127.0.0.1:{port}{other}");
        let other_host = format!("http://localhost:{port}{path}");
        let other_scheme = format!("https://127.0.0.1:{port}{path}");
        prop_assert!(redirect::matches(&registered, &same));
        prop_assert_eq!(redirect::matches(&registered, &elsewhere), path == other);
        prop_assert!(!redirect::matches(&registered, &other_host));
        prop_assert!(!redirect::matches(&registered, &other_scheme));
    }

    #[test]
    fn trailing_slash_is_one_resource(host in "[a-z]{1,10}\\.example", port in prop::option::of(1u16..)) {
        let base = match port {
            Some(p) => format!("https://{host}:{p}"),
            None => format!("https://{host}"),
        };
        prop_assert_eq!(Resource::parse(&base).unwrap(), Resource::parse(&format!("{base}/")).unwrap());
    }
}
