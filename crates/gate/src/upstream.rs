//! The headers the app receives: the client's, less the credential, the
//! gate's cookie, hop-by-hop headers and every header the gate owns, then
//! the gate's own: the identity it verified (every `X-Laissez-*` header,
//! empty when it has nothing to say) and who connected (`X-Forwarded-*`,
//! `Forwarded`). Pure over a `HeaderMap`.
//!
//! Header names are compared the way CGI and WSGI servers see them (`_`
//! and `-` alike, any case): `X_Laissez_User` reaches a Flask app as
//! `HTTP_X_LAISSEZ_USER`, exactly like `X-Laissez-User`, so both are the
//! gate's.

use std::net::IpAddr;

use axum::http::header::{AUTHORIZATION, CONNECTION, HOST};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use laissez_oauth::access_token::AccessTokenClaims;

/// Who is calling, as the app is told.
#[derive(Clone, Copy, Debug)]
pub struct Identity<'a> {
    /// The verified token's claims.
    pub claims: &'a AccessTokenClaims,
    /// The gate's signed assertion of them, if it could sign one.
    pub assertion: Option<&'a str>,
}

/// Who connected to the gate.
#[derive(Clone, Copy, Debug)]
pub struct Client {
    /// The address the connection came from.
    pub peer: Option<IpAddr>,
    /// That address is a proxy the gate trusts: what it says it was told
    /// (`X-Forwarded-*`, `Forwarded`) is kept, the peer appended.
    pub trusted_proxy: bool,
    /// The scheme agents use to reach the gate (`http` or `https`).
    pub scheme: &'static str,
}

/// Every identity header the gate writes.
pub const IDENTITY_HEADERS: [&str; 6] = [
    "x-laissez-user",
    "x-laissez-client",
    "x-laissez-scope",
    "x-laissez-accounts",
    "x-laissez-agent",
    "x-laissez-assertion",
];

/// Rewrites a request's headers for the app.
pub fn rewrite(headers: &mut HeaderMap, identity: Identity<'_>, client: Client) {
    let host = headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned);
    let told = |headers: &HeaderMap, name: &str| -> Option<String> {
        let values: Vec<&str> = headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        (client.trusted_proxy && !values.is_empty()).then(|| values.join(", "))
    };
    let told_for = told(headers, "x-forwarded-for");
    let told_host = told(headers, "x-forwarded-host");
    let told_proto = told(headers, "x-forwarded-proto");
    let told_forwarded = told(headers, "forwarded");

    headers.remove(AUTHORIZATION);
    // The proof names the token's hash and the agent's key: the gate's, not the app's.
    headers.remove("dpop");
    crate::browser::strip_cookie(headers);
    headers.remove(HOST);
    strip_hop_by_hop(headers);
    let owned: Vec<HeaderName> = headers
        .keys()
        .filter(|name| is_gate_owned(name.as_str()))
        .cloned()
        .collect();
    for name in owned {
        headers.remove(name);
    }

    let claims = identity.claims;
    let accounts = claims.accounts.join(" ");
    let values = [
        claims.sub.as_str(),
        claims.client_id.as_str(),
        claims.scope.as_str(),
        accounts.as_str(),
        claims.act.as_ref().map_or("", |a| a.sub.as_str()),
        identity.assertion.unwrap_or_default(),
    ];
    for (name, value) in IDENTITY_HEADERS.into_iter().zip(values) {
        set(headers, name, value);
    }

    let peer = client.peer.map(|ip| ip.to_string()).unwrap_or_default();
    let chain = |told: Option<String>, own: &str| match told {
        Some(told) if !own.is_empty() => format!("{told}, {own}"),
        Some(told) => told,
        None => own.to_owned(),
    };
    set(headers, "x-forwarded-for", &chain(told_for, &peer));
    let host = host.unwrap_or_default();
    set(
        headers,
        "x-forwarded-host",
        told_host.as_deref().unwrap_or(&host),
    );
    set(
        headers,
        "x-forwarded-proto",
        told_proto.as_deref().unwrap_or(client.scheme),
    );
    let node = match client.peer {
        Some(IpAddr::V6(ip)) => format!("\"[{ip}]\""),
        Some(ip) => ip.to_string(),
        None => "unknown".into(),
    };
    let mut element = format!("for={node};proto={}", client.scheme);
    if !host.is_empty() && host.bytes().all(|b| b.is_ascii_graphic() && b != b'"') {
        element.push_str(&format!(";host=\"{host}\""));
    }
    set(headers, "forwarded", &chain(told_forwarded, &element));
}

/// Whether a header name (as sent, in any case, `_` or `-`) is one only
/// the gate may write: `X-Laissez-*`, `X-Forwarded-*`, `Forwarded`,
/// `X-Real-IP`.
pub fn is_gate_owned(name: &str) -> bool {
    let canonical: String = name
        .chars()
        .map(|c| match c {
            '_' => '-',
            c => c.to_ascii_lowercase(),
        })
        .collect();
    canonical.starts_with("x-laissez")
        || canonical.starts_with("x-forwarded")
        || canonical == "forwarded"
        || canonical == "x-real-ip"
}

/// Removes the headers that belong to one connection, not the message:
/// the standard ones and any the `Connection` header names.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
}

/// Sets `name` to `value`, or to empty when `value` cannot be a header.
fn set(headers: &mut HeaderMap, name: &'static str, value: &str) {
    let value = HeaderValue::from_str(value).unwrap_or(HeaderValue::from_static(""));
    headers.insert(name, value);
}

const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

#[cfg(test)]
mod tests {
    use laissez_oauth::access_token::Actor;

    use super::*;

    fn claims() -> AccessTokenClaims {
        AccessTokenClaims {
            iss: "http://issuer".into(),
            sub: "usr_alice".into(),
            aud: "http://gate".into(),
            exp: 2_000_000_000,
            iat: 1_000_000_000,
            jti: "j1".into(),
            client_id: "cli_1".into(),
            scope: "notes.read".into(),
            accounts: Vec::new(),
            act: None,
            iat_ms: None,
            nbf: None,
            ..AccessTokenClaims::default()
        }
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        headers
    }

    const CLIENT: Client = Client {
        peer: Some(IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 7))),
        trusted_proxy: false,
        scheme: "http",
    };

    #[test]
    fn forged_identity_in_any_spelling_is_replaced() {
        let mut h = headers(&[
            ("x-laissez-user", "admin"),
            ("X_Laissez_User", "admin"),
            ("x_laissez-agent", "evil"),
            ("X-LAISSEZ_ACCOUNTS", "/"),
            ("x-laissezuser", "admin"),
            ("authorization", "Bearer secret"),
            ("connection", "x-secret-hop"),
            ("x-secret-hop", "1"),
            ("x-kept", "yes"),
        ]);
        rewrite(
            &mut h,
            Identity {
                claims: &claims(),
                assertion: None,
            },
            CLIENT,
        );
        for name in h.keys() {
            let owned = is_gate_owned(name.as_str());
            assert!(
                !owned
                    || IDENTITY_HEADERS.contains(&name.as_str())
                    || name.as_str().starts_with("x-forwarded")
                    || name == "forwarded",
                "{name}"
            );
        }
        assert_eq!(h["x-laissez-user"], "usr_alice");
        assert_eq!(h.get_all("x-laissez-user").iter().count(), 1);
        assert_eq!(h["x-laissez-agent"], "");
        assert_eq!(h["x-laissez-accounts"], "");
        assert_eq!(h["x-laissez-assertion"], "");
        assert!(h.get("x_laissez_user").is_none());
        assert!(h.get("authorization").is_none());
        assert!(h.get("x-secret-hop").is_none());
        assert_eq!(h["x-kept"], "yes");
        let mut with_agent = claims();
        with_agent.act = Some(Actor {
            sub: "cli_agent".into(),
            act: None,
        });
        with_agent.accounts = vec!["acme".into(), "beta".into()];
        let mut h = HeaderMap::new();
        rewrite(
            &mut h,
            Identity {
                claims: &with_agent,
                assertion: Some("a.b.c"),
            },
            CLIENT,
        );
        assert_eq!(h["x-laissez-agent"], "cli_agent");
        assert_eq!(h["x-laissez-accounts"], "acme beta");
        assert_eq!(h["x-laissez-assertion"], "a.b.c");
    }

    #[test]
    fn forwarding_headers_say_who_connected() {
        let pairs = [
            ("host", "gate.example"),
            ("x-forwarded-for", "6.6.6.6"),
            ("X_Forwarded_For", "6.6.6.6"),
            ("forwarded", "for=6.6.6.6"),
            ("x-forwarded-host", "evil.example"),
            ("x-forwarded-proto", "https"),
            ("x-real-ip", "6.6.6.6"),
        ];
        let mut h = headers(&pairs);
        rewrite(
            &mut h,
            Identity {
                claims: &claims(),
                assertion: None,
            },
            CLIENT,
        );
        assert_eq!(h["x-forwarded-for"], "192.0.2.7");
        assert_eq!(h.get_all("x-forwarded-for").iter().count(), 1);
        assert_eq!(h["x-forwarded-host"], "gate.example");
        assert_eq!(h["x-forwarded-proto"], "http");
        assert_eq!(
            h["forwarded"],
            "for=192.0.2.7;proto=http;host=\"gate.example\""
        );
        assert!(h.get("x-real-ip").is_none());
        assert!(h.get("x_forwarded_for").is_none());

        let mut h = headers(&pairs);
        rewrite(
            &mut h,
            Identity {
                claims: &claims(),
                assertion: None,
            },
            Client {
                trusted_proxy: true,
                ..CLIENT
            },
        );
        assert_eq!(h["x-forwarded-for"], "6.6.6.6, 192.0.2.7");
        assert_eq!(h["x-forwarded-host"], "evil.example");
        assert_eq!(h["x-forwarded-proto"], "https");
        assert_eq!(
            h["forwarded"],
            "for=6.6.6.6, for=192.0.2.7;proto=http;host=\"gate.example\""
        );
    }
}
