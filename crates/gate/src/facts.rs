//! What the gate knows about a request before it decides: its method, path
//! and credential ([`RequestFacts`]), and the MCP tools its JSON-RPC body
//! calls ([`RpcCalls`]). Pure: parsed from the request's parts and body.
//!
//! Parsing is where a gate fails open if it is lenient, so these parsers
//! are strict: a path is matched and forwarded in one normalised form
//! ([`normalize_path`]), and on a route with tool rules a body the gate
//! cannot fully read as JSON-RPC is refused, never forwarded unchecked.

use std::collections::HashSet;
use std::fmt;
use std::io::Read;

use axum::http::header::{AUTHORIZATION, CONTENT_ENCODING, CONTENT_LENGTH, TRANSFER_ENCODING};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode};
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use crate::config::GateConfig;
use crate::respond::Problem;

/// The request as the gate's decision sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestFacts {
    /// The method, upper case (as it is forwarded).
    pub method: String,
    /// The normalised path (as it is forwarded).
    pub path: String,
    /// The path rules are matched on: [`path`](Self::path), read also the
    /// way servlet containers read it (`;parameters` dropped from each
    /// segment, so `/admin;x` and `/public/..;/admin` are `/admin`). A
    /// stricter reading than an app's only ever asks for more scopes.
    pub rule_path: String,
    /// The query, without `?`, as it came.
    pub query: Option<String>,
    /// How the caller says who it is.
    pub credential: Credential,
    /// Every `DPoP` header value (RFC 9449 proofs).
    pub dpop_proofs: Vec<String>,
    /// The URL the client addressed, without the query (for DPoP `htu`).
    pub url: String,
    /// A person's browser asking for a page.
    pub wants_page: bool,
    /// The request carries a body.
    pub has_body: bool,
}

/// How the caller says who it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credential {
    /// An `Authorization: Bearer` token.
    Bearer(String),
    /// An `Authorization: DPoP` token, sent with a proof.
    Dpop(String),
    /// The gate's browser session cookie.
    Session(String),
    /// Nothing.
    Missing,
}

impl RequestFacts {
    /// The facts of a request to the gate of `config`; refuses (400) a
    /// path it cannot normalise and a request with more than one
    /// `Authorization` header. `%2F` (and `%5C`) pass, undecoded, only
    /// when the app opted in (`allow_encoded_slash`).
    pub fn from_parts(parts: &Parts, config: &GateConfig) -> Result<RequestFacts, Problem> {
        let method = parts.method.as_str().to_ascii_uppercase();
        let secure = config.resource.scheme() == "https";
        let path =
            normalize_path(parts.uri.path(), config.allow_encoded_slash).map_err(|refusal| {
                Problem::new(
                    StatusCode::BAD_REQUEST,
                    "bad-path",
                    "Path not accepted",
                    refusal.to_string(),
                )
            })?;
        let mut authorizations = parts.headers.get_all(AUTHORIZATION).iter();
        let authorization = authorizations.next();
        if authorizations.next().is_some() {
            return Err(Problem::new(
                StatusCode::BAD_REQUEST,
                "bad-credential",
                "More than one credential",
                "send one Authorization header",
            ));
        }
        let mut dpop_proofs = Vec::new();
        for value in parts.headers.get_all("dpop") {
            let text = value.to_str().map_err(|_| {
                Problem::new(
                    StatusCode::BAD_REQUEST,
                    "bad-credential",
                    "Unreadable DPoP proof",
                    "the DPoP header is not ASCII",
                )
            })?;
            dpop_proofs.push(text.to_owned());
        }
        let url = format!(
            "{}{}",
            config.resource.origin().ascii_serialization(),
            parts.uri.path()
        );
        let credential = match authorization.and_then(|v| v.to_str().ok()).and_then(token) {
            Some(credential) => credential,
            None => match crate::browser::session_cookie(&parts.headers, secure) {
                Some(id) => Credential::Session(id),
                None => Credential::Missing,
            },
        };
        let has_body = parts.headers.contains_key(TRANSFER_ENCODING)
            || parts
                .headers
                .get(CONTENT_LENGTH)
                .is_some_and(|v| v.as_bytes() != b"0");
        let rule_path = without_parameters(&path);
        Ok(RequestFacts {
            wants_page: crate::browser::wants_page(&parts.headers, &method),
            method,
            rule_path,
            path,
            query: parts.uri.query().map(str::to_owned),
            credential,
            dpop_proofs,
            url,
            has_body,
        })
    }

    /// The method rules are matched on: `HEAD` is a `GET` without the body.
    pub fn rule_method(&self) -> &str {
        if self.method == Method::HEAD.as_str() {
            Method::GET.as_str()
        } else {
            &self.method
        }
    }

    /// The path and query, as sent on.
    pub fn path_and_query(&self) -> String {
        match &self.query {
            Some(query) => format!("{}?{query}", self.path),
            None => self.path.clone(),
        }
    }
}

/// The token of an `Authorization: Bearer` or `DPoP` value (scheme in any case).
fn token(value: &str) -> Option<Credential> {
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    if token.is_empty() {
        return None;
    }
    if scheme.eq_ignore_ascii_case("bearer") {
        Some(Credential::Bearer(token.to_owned()))
    } else if scheme.eq_ignore_ascii_case("dpop") {
        Some(Credential::Dpop(token.to_owned()))
    } else {
        None
    }
}

/// A normalised path with each segment's `;parameters` dropped, and its
/// dot segments resolved again.
fn without_parameters(path: &str) -> String {
    if !path.contains(';') {
        return path.to_owned();
    }
    let stripped: Vec<&str> = path
        .split('/')
        .map(|segment| segment.split(';').next().unwrap_or_default())
        .collect();
    // Only decoded characters and kept escapes remain, so this normalises.
    normalize_path(&stripped.join("/"), true).unwrap_or_else(|_| path.to_owned())
}

/// Why a path cannot be normalised.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathRefusal {
    /// It does not start with `/`.
    NotAbsolute,
    /// A `%` not followed by two hex digits.
    BadPercentEncoding,
    /// An encoded `/` or `\` (`%2F`, `%5C`), which the app may or may not
    /// treat as a separator, and the app did not opt in.
    EncodedSeparator,
    /// A raw `\`, a control character or a space.
    ForbiddenCharacter,
}

impl fmt::Display for PathRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PathRefusal::NotAbsolute => "the path must start with /",
            PathRefusal::BadPercentEncoding => "the path has a % not followed by two hex digits",
            PathRefusal::EncodedSeparator => {
                "the path has an encoded / or \\ (%2F, %5C), which this app does not accept"
            }
            PathRefusal::ForbiddenCharacter => {
                "the path has a backslash, a space or a control character"
            }
        })
    }
}

/// The one form of a path that rules are matched on and the app is sent:
/// unreserved characters percent-decoded (RFC 3986 §6.2.2.2), other
/// escapes in upper case, repeated slashes merged, `.` and `..` segments
/// resolved (never above the root), a trailing slash kept. Refuses what it
/// cannot normalise (see [`PathRefusal`]); `%2F` and `%5C` are refused
/// unless `allow_encoded_slash`, then kept encoded.
pub fn normalize_path(raw: &str, allow_encoded_slash: bool) -> Result<String, PathRefusal> {
    if !raw.starts_with('/') {
        return Err(PathRefusal::NotAbsolute);
    }
    let bytes = raw.as_bytes();
    let mut decoded = String::with_capacity(raw.len());
    let mut i = 0;
    while i < bytes.len() {
        let byte = bytes[i];
        if byte == b'%' {
            let hex = |at: usize| bytes.get(at).and_then(|b| (*b as char).to_digit(16));
            let (Some(high), Some(low)) = (hex(i + 1), hex(i + 2)) else {
                return Err(PathRefusal::BadPercentEncoding);
            };
            let value = (high * 16 + low) as u8;
            if value.is_ascii_alphanumeric() || b"-._~".contains(&value) {
                decoded.push(value as char);
            } else if value == b'/' || value == b'\\' {
                if !allow_encoded_slash {
                    return Err(PathRefusal::EncodedSeparator);
                }
                decoded.push_str(&format!("%{value:02X}"));
            } else {
                decoded.push_str(&format!("%{value:02X}"));
            }
            i += 3;
            continue;
        }
        if byte == b'\\' || byte == b' ' || byte.is_ascii_control() {
            return Err(PathRefusal::ForbiddenCharacter);
        }
        // A non-ASCII character: copied whole (its bytes are never a
        // separator or a dot).
        let char_len = raw[i..].chars().next().map_or(1, char::len_utf8);
        decoded.push_str(&raw[i..i + char_len]);
        i += char_len;
    }
    let mut segments: Vec<&str> = Vec::new();
    let mut trailing_slash = false;
    for segment in decoded.split('/').skip(1) {
        trailing_slash = false;
        match segment {
            "" => trailing_slash = true,
            "." => trailing_slash = true,
            ".." => {
                segments.pop();
                trailing_slash = true;
            }
            segment => segments.push(segment),
        }
    }
    let mut path = String::with_capacity(decoded.len());
    for segment in &segments {
        path.push('/');
        path.push_str(segment);
    }
    if trailing_slash || segments.is_empty() {
        path.push('/');
    }
    Ok(path)
}

/// Largest body, decoded, read when MCP tool rules apply (or DLP must
/// decode it).
pub const MAX_RPC_BODY: usize = 1 << 20;

/// Why a JSON-RPC body is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BodyRefusal {
    /// A `Content-Encoding` the gate does not decode (`415`).
    UnsupportedEncoding(String),
    /// Larger than [`MAX_RPC_BODY`], before or after decoding (`413`).
    TooLarge,
    /// Its `Content-Encoding` does not decode (`400`).
    Undecodable(String),
    /// Not JSON-RPC the gate can fully read (`400`).
    Malformed(String),
}

impl BodyRefusal {
    /// The problem to answer with.
    pub fn problem(&self) -> Problem {
        match self {
            BodyRefusal::UnsupportedEncoding(encoding) => Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-encoding",
                "Content encoding not supported",
                format!(
                    "this gate reads JSON-RPC bodies sent as identity, gzip, deflate or br, not {encoding}"
                ),
            ),
            BodyRefusal::TooLarge => Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                "Request body too large",
                format!(
                    "bodies this gate reads whole (JSON-RPC for tool rules, encoded bodies for credential checks) are limited to {MAX_RPC_BODY} bytes, decoded"
                ),
            ),
            BodyRefusal::Undecodable(why) => Problem::new(
                StatusCode::BAD_REQUEST,
                "bad-encoding",
                "Body does not decode",
                format!("the body is not valid in its Content-Encoding: {why}"),
            ),
            BodyRefusal::Malformed(why) => Problem::new(
                StatusCode::BAD_REQUEST,
                "bad-json-rpc",
                "Body is not JSON-RPC",
                format!("this route's tool rules need a JSON-RPC body the gate can read: {why}"),
            ),
        }
    }
}

/// The body as sent, decoded per its `Content-Encoding` (a list, applied
/// in order, so undone last first: `gzip`, `x-gzip`, `deflate` (zlib),
/// `br`, `identity`), each step bounded by [`MAX_RPC_BODY`] so a small
/// body cannot expand into a large one.
pub fn decode_content(headers: &HeaderMap, body: &[u8]) -> Result<Vec<u8>, BodyRefusal> {
    let mut encodings = Vec::new();
    for value in headers.get_all(CONTENT_ENCODING) {
        let value = value
            .to_str()
            .map_err(|_| BodyRefusal::UnsupportedEncoding("a non-text encoding".into()))?;
        for encoding in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            encodings.push(encoding.to_ascii_lowercase());
        }
    }
    if encodings.len() > 4 {
        return Err(BodyRefusal::UnsupportedEncoding(
            "more than four encodings".into(),
        ));
    }
    let mut bytes = body.to_vec();
    for encoding in encodings.iter().rev() {
        bytes = match encoding.as_str() {
            "identity" => bytes,
            "gzip" | "x-gzip" => bounded(flate2::read::GzDecoder::new(bytes.as_slice()))?,
            "deflate" => bounded(flate2::read::ZlibDecoder::new(bytes.as_slice()))?,
            "br" => bounded(brotli_decompressor::Decompressor::new(
                bytes.as_slice(),
                4096,
            ))?,
            other => {
                return Err(BodyRefusal::UnsupportedEncoding(
                    other.chars().take(40).collect(),
                ));
            }
        };
    }
    Ok(bytes)
}

fn bounded(reader: impl Read) -> Result<Vec<u8>, BodyRefusal> {
    let mut out = Vec::new();
    reader
        .take(MAX_RPC_BODY as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| BodyRefusal::Undecodable(e.to_string()))?;
    if out.len() > MAX_RPC_BODY {
        return Err(BodyRefusal::TooLarge);
    }
    Ok(out)
}

/// The MCP tools a JSON-RPC message (or batch) calls.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RpcCalls {
    /// The names of the tools called, in order.
    pub tools: Vec<String>,
    /// The body was read (and parsed); without it no tool rule can apply.
    pub body_read: bool,
}

impl RpcCalls {
    /// The calls in a JSON-RPC body, read strictly: one JSON text (no BOM,
    /// no `NaN`, no lone surrogates, no duplicate member names, nesting
    /// within serde_json's limit) holding a message object or a non-empty
    /// batch of them, whose `method`, if any, is a string, and whose
    /// `tools/call` names its tool with a string. Anything else is refused:
    /// a body the gate reads differently from the app must not pass.
    pub fn parse(body: &[u8]) -> Result<RpcCalls, BodyRefusal> {
        let malformed = |why: &str| BodyRefusal::Malformed(why.to_owned());
        let StrictValue(value) = serde_json::from_slice(body)
            .map_err(|e| BodyRefusal::Malformed(format!("not strict JSON: {e}")))?;
        let messages = match value {
            Value::Array(items) if items.is_empty() => return Err(malformed("an empty batch")),
            Value::Array(items) => items,
            one => vec![one],
        };
        let mut tools = Vec::new();
        for message in &messages {
            let Some(message) = message.as_object() else {
                return Err(malformed("a message that is not an object"));
            };
            let method = match message.get("method") {
                None => continue,
                Some(Value::String(method)) => method,
                Some(_) => return Err(malformed("a method that is not a string")),
            };
            if method == "tools/call" {
                match message.get("params").and_then(|p| p.get("name")) {
                    Some(Value::String(name)) => tools.push(name.clone()),
                    _ => return Err(malformed("a tools/call without a tool name")),
                }
            }
        }
        Ok(RpcCalls {
            tools,
            body_read: true,
        })
    }
}

/// A JSON value whose objects have no duplicate member names.
struct StrictValue(Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<StrictValue, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("a number that is not finite"))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(StrictValue(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(serde::de::Error::custom(format!(
                    "duplicate member \"{}\"",
                    key.chars().take(40).collect::<String>()
                )));
            }
            let StrictValue(value) = map.next_value()?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn paths_normalise_to_one_form() {
        let table: &[(&str, Result<&str, PathRefusal>)] = &[
            ("/", Ok("/")),
            ("/admin", Ok("/admin")),
            ("/%61dmin", Ok("/admin")),
            ("/%41DMIN", Ok("/ADMIN")),
            ("//admin", Ok("/admin")),
            ("///admin//x", Ok("/admin/x")),
            ("/./admin", Ok("/admin")),
            ("/x/../admin", Ok("/admin")),
            ("/x/%2e%2e/admin", Ok("/admin")),
            ("/x/%2E./admin", Ok("/admin")),
            ("/../../admin", Ok("/admin")),
            ("/admin/", Ok("/admin/")),
            ("/admin/.", Ok("/admin/")),
            ("/admin/x/..", Ok("/admin/")),
            ("/..", Ok("/")),
            ("/a%20b", Ok("/a%20b")),
            ("/a%3fb", Ok("/a%3Fb")),
            ("/%7Euser", Ok("/~user")),
            ("/%2561dmin", Ok("/%2561dmin")),
            ("/caf\u{e9}", Ok("/caf\u{e9}")),
            ("/admin%2fx", Err(PathRefusal::EncodedSeparator)),
            ("/admin%2Fx", Err(PathRefusal::EncodedSeparator)),
            ("/%5cadmin", Err(PathRefusal::EncodedSeparator)),
            ("/\\admin", Err(PathRefusal::ForbiddenCharacter)),
            ("/a\tb", Err(PathRefusal::ForbiddenCharacter)),
            ("/%zzadmin", Err(PathRefusal::BadPercentEncoding)),
            ("/admin%", Err(PathRefusal::BadPercentEncoding)),
            ("/admin%6", Err(PathRefusal::BadPercentEncoding)),
            ("admin", Err(PathRefusal::NotAbsolute)),
            ("*", Err(PathRefusal::NotAbsolute)),
        ];
        for (raw, expected) in table {
            assert_eq!(
                normalize_path(raw, false).as_deref().map_err(|e| *e),
                *expected,
                "{raw}"
            );
        }
        assert_eq!(normalize_path("/admin%2fx", true).unwrap(), "/admin%2Fx");
        assert_eq!(normalize_path("/a/%2F/../b", true).unwrap(), "/a/b");
    }

    #[test]
    fn normalising_twice_changes_nothing() {
        for raw in ["/%61dmin//x/./../y/", "/a%20b/%7e", "/x/.."] {
            let once = normalize_path(raw, false).unwrap();
            assert_eq!(normalize_path(&once, false).unwrap(), once);
        }
    }

    fn facts(method: &str, uri: &str, headers: &[(&str, &str)]) -> Result<RequestFacts, Problem> {
        let mut request = axum::http::Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let (parts, ()) = request.body(()).unwrap().into_parts();
        let config = GateConfig::new(
            "notes",
            "http://gate.test".parse().unwrap(),
            "http://app.test".parse().unwrap(),
            "http://issuer.test",
        );
        RequestFacts::from_parts(&parts, &config)
    }

    #[test]
    fn methods_and_credentials_normalise() {
        let head = facts("HEAD", "/admin?x=1", &[]).unwrap();
        assert_eq!(head.rule_method(), "GET");
        assert_eq!(head.path_and_query(), "/admin?x=1");
        assert_eq!(facts("get", "/", &[]).unwrap().method, "GET");
        let bearer = facts("GET", "/", &[("authorization", "BEARER  abc ")]).unwrap();
        assert_eq!(bearer.credential, Credential::Bearer("abc".into()));
        let basic = facts("GET", "/", &[("authorization", "Basic abc")]).unwrap();
        assert_eq!(basic.credential, Credential::Missing);
        let two = facts(
            "GET",
            "/",
            &[("authorization", "Bearer a"), ("authorization", "Bearer b")],
        );
        assert_eq!(two.unwrap_err().status, StatusCode::BAD_REQUEST);
        assert_eq!(facts("GET", "/%2e%2e/%61dmin", &[]).unwrap().path, "/admin");
        assert_eq!(
            facts("GET", "/a%2fb", &[]).unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
    }

    #[test]
    fn tool_calls_are_found_in_messages_and_batches() {
        let calls = |body: &[u8]| RpcCalls::parse(body).map(|c| c.tools);
        assert_eq!(
            calls(
                br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"write_note"}}"#
            )
            .unwrap(),
            ["write_note"]
        );
        let batch = br#"[{"method":"tools/list"},{"method":"tools/call","params":{"name":"a"}},{"method":"tools/call","params":{"name":"b"}}]"#;
        assert_eq!(calls(batch).unwrap(), ["a", "b"]);
        assert_eq!(
            calls(br#"{"jsonrpc":"2.0","id":1,"result":{}}"#).unwrap(),
            Vec::<String>::new()
        );
        assert_eq!(
            calls(br#"{"method":"tools/call","params":{"name":"write\u005fnote"}}"#).unwrap(),
            ["write_note"]
        );
    }

    #[test]
    fn bodies_the_gate_cannot_fully_read_are_refused() {
        let deep = format!(
            r#"{{"method":"tools/call","params":{{"name":"write_note","arguments":{{"x":{}1{}}}}}}}"#,
            "[".repeat(200),
            "]".repeat(200)
        );
        let refused: &[&[u8]] = &[
            b"not json",
            b"",
            b"[]",
            b"\xef\xbb\xbf{\"method\":\"tools/call\",\"params\":{\"name\":\"write_note\"}}",
            br#"{"method":"tools/call","params":{"name":"write_note","arguments":{"x":NaN}}}"#,
            br#"{"method":"tools/call","params":{"name":"write_note","arguments":{"x":"\ud800"}}}"#,
            br#"{"method":"tools/call","params":{"name":"read_note","name":"write_note"}}"#,
            br#"{"method":"tools/call","method":"tools/list","params":{"name":"write_note"}}"#,
            br#"{"method":"tools/call"}"#,
            br#"{"method":"tools/call","params":{"name":7}}"#,
            br#"{"method":["tools/call"],"params":{"name":"write_note"}}"#,
            br#"[1]"#,
            br#"{"method":"tools/list"} {"method":"tools/call","params":{"name":"w"}}"#,
            b"{\"method\":\"tools/call\",\"params\":{\"name\":\"write_note\xff\"}}",
            deep.as_bytes(),
        ];
        for body in refused {
            assert!(
                matches!(RpcCalls::parse(body), Err(BodyRefusal::Malformed(_))),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    fn encoded(encoding: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_ENCODING, HeaderValue::from_str(encoding).unwrap());
        headers
    }

    #[test]
    fn encoded_bodies_decode_within_a_bound() {
        let body = br#"{"method":"tools/call","params":{"name":"write_note"}}"#;
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gzip.write_all(body).unwrap();
        let gzip = gzip.finish().unwrap();
        assert_eq!(decode_content(&encoded("gzip"), &gzip).unwrap(), body);
        let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        zlib.write_all(body).unwrap();
        let zlib = zlib.finish().unwrap();
        assert_eq!(decode_content(&encoded("Deflate"), &zlib).unwrap(), body);
        assert_eq!(decode_content(&HeaderMap::new(), body).unwrap(), body);
        assert_eq!(decode_content(&encoded("identity"), body).unwrap(), body);
        assert!(matches!(
            decode_content(&encoded("compress"), body),
            Err(BodyRefusal::UnsupportedEncoding(_))
        ));
        assert!(matches!(
            decode_content(&encoded("gzip"), body),
            Err(BodyRefusal::Undecodable(_))
        ));
        assert!(matches!(
            decode_content(&encoded("br"), body),
            Err(BodyRefusal::Undecodable(_))
        ));
        let mut bomb = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        bomb.write_all(&vec![b' '; 8 * MAX_RPC_BODY]).unwrap();
        let bomb = bomb.finish().unwrap();
        assert!(bomb.len() < 64 * 1024);
        assert_eq!(
            decode_content(&encoded("gzip"), &bomb),
            Err(BodyRefusal::TooLarge)
        );
    }

    proptest::proptest! {
        /// Any input: no panic; what normalises is its own normal form.
        #[test]
        fn parsers_take_any_input(raw in "/[a-zA-Z0-9%./\\\\ _~-]{0,40}", bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            if let Ok(path) = normalize_path(&raw, false) {
                proptest::prop_assert_eq!(normalize_path(&path, false), Ok(path.clone()));
                proptest::prop_assert!(!path.contains("//") && !path.contains("/./") && !path.contains("/../"));
            }
            let _ = RpcCalls::parse(&bytes);
            let _ = decode_content(&encoded("gzip"), &bytes);
            let _ = decode_content(&encoded("br"), &bytes);
            let _ = decode_content(&encoded("deflate"), &bytes);
        }
    }
}
