//! Every refusal the gate answers with: RFC 9457 problem details, built in
//! this one place so each has the same shape (`type`, `title`, `status`,
//! `detail`, served as `application/problem+json`).

use axum::http::header::{CONTENT_TYPE, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::dlp::{Blocked, Direction};

/// A refusal, before it is rendered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The HTTP status.
    pub status: StatusCode,
    /// The last part of the problem type URI, e.g. `bad-path`.
    pub kind: &'static str,
    /// A short, fixed summary.
    pub title: &'static str,
    /// What went wrong with this request.
    pub detail: String,
}

impl Problem {
    /// A problem of `kind` with `status`, `title` and `detail`.
    pub fn new(
        status: StatusCode,
        kind: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Problem {
        Problem {
            status,
            kind,
            title,
            detail: detail.into(),
        }
    }

    /// The answer.
    pub fn response(&self) -> Response {
        problem(
            self.status,
            self.kind,
            self.title,
            &self.detail,
            Value::Null,
        )
    }
}

/// A problem-details answer; `extra`, when an object, adds its members.
pub fn problem(
    status: StatusCode,
    kind: &str,
    title: &str,
    detail: &str,
    extra: Value,
) -> Response {
    let mut body = json!({
        "type": format!("https://laissez.dev/problems/{kind}"),
        "title": title,
        "status": status.as_u16(),
        "detail": detail,
    });
    if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
        body.extend(extra);
    }
    let mut response = (status, axum::Json(body)).into_response();
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    response
}

/// A `401`/`403` with the RFC 6750 / RFC 9728 `WWW-Authenticate` challenge
/// pointing at `metadata_url`, naming `scopes` and the error, if any.
///
/// With `dpop`, a `DPoP` challenge follows the `Bearer` one (which stays
/// first, for clients that read only the first): it names the proof
/// algorithms, carries the error when the error is about the proof
/// (`invalid_dpop_proof`, `use_dpop_nonce`), and `nonce` goes out as the
/// `DPoP-Nonce` header.
pub fn challenge(
    metadata_url: &str,
    status: StatusCode,
    error: Option<(&str, &str)>,
    scopes: &[String],
    dpop: bool,
    nonce: Option<String>,
) -> Response {
    let mut value = format!("Bearer resource_metadata=\"{metadata_url}\"");
    if !scopes.is_empty() {
        value.push_str(&format!(", scope=\"{}\"", scopes.join(" ")));
    }
    let about_proof = error.is_some_and(|(code, _)| code.contains("dpop"));
    let described = |(code, description): (&str, &str)| {
        format!(
            ", error=\"{code}\", error_description=\"{}\"",
            description.replace(['"', '\\'], "'")
        )
    };
    if let Some(error) = error.filter(|_| !about_proof) {
        value.push_str(&described(error));
    }
    if dpop || about_proof {
        value.push_str(&format!(
            ", DPoP algs=\"{}\"",
            laissez_dpop::ALGORITHMS.join(" ")
        ));
        if let Some(error) = error.filter(|_| about_proof) {
            value.push_str(&described(error));
        }
    }
    let title = if status == StatusCode::FORBIDDEN {
        "Insufficient scope"
    } else {
        "Not authenticated"
    };
    let detail = error.map(|(_, d)| d.to_owned()).unwrap_or_else(|| {
        "this app needs an access token from the Laissez authorization server; see the WWW-Authenticate header".into()
    });
    let mut response = problem(
        status,
        "gate",
        title,
        &detail,
        json!({"error": error.map(|(code, _)| code)}),
    );
    if let Ok(value) = HeaderValue::from_str(&value) {
        response.headers_mut().insert(WWW_AUTHENTICATE, value);
    }
    if let Some(nonce) = nonce.and_then(|n| HeaderValue::from_str(&n).ok()) {
        response.headers_mut().insert("dpop-nonce", nonce);
    }
    response
}

/// `502`: the app could not be reached, or answered something unusable.
pub fn bad_gateway(why: &str) -> Response {
    problem(
        StatusCode::BAD_GATEWAY,
        "upstream",
        "Bad gateway",
        why,
        Value::Null,
    )
}

/// The `403` for a body DLP blocked.
pub fn blocked(blocked: &Blocked, direction: Direction) -> Response {
    let detail = match direction {
        Direction::Request => format!(
            "the request body holds a {} ({}); remove the credential and send the request again, and revoke it if it was real",
            blocked.description, blocked.masked
        ),
        Direction::Response => format!(
            "the app's answer holds a {} ({}), so the gate withheld it",
            blocked.description, blocked.masked
        ),
    };
    problem(
        StatusCode::FORBIDDEN,
        "credential-in-body",
        "Credential in the body",
        &detail,
        json!({
            "rule": blocked.rule,
            "secret": blocked.masked,
            "direction": direction.as_str(),
        }),
    )
}
