//! Errors as RFC 9457 problem details.
//!
//! Every handler returns [`ApiError`]; this is the one place that turns it
//! into a status code and an `application/problem+json` body whose `detail`
//! says what to do about it. Request bodies go through [`ApiJson`], which
//! turns malformed, mistyped and oversize JSON into the same kind of answer.
//! Whatever else answers an error without a document (the router's `405`,
//! axum's query, path and form rejections) is turned into one by
//! [`ensure_problem`], a layer over the whole router.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use utoipa::ToSchema;

/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// An RFC 9457 problem details document.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    /// A short summary of the kind of problem.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong this time, and what to do about it.
    pub detail: String,
    /// The OAuth error code, where the failure has one (`authorization_pending`,
    /// `slow_down`, `access_denied`, `invalid_dpop_proof`, `use_dpop_nonce`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed or names something invalid.
    #[error("{0}")]
    BadRequest(String),
    /// No valid credential was presented.
    #[error("{0}")]
    Unauthenticated(String),
    /// The credential is valid but policy does not allow this.
    #[error("{0}")]
    Forbidden(String),
    /// The thing named does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The change conflicts with what exists.
    #[error("{0}")]
    Conflict(String),
    /// The request body is too large.
    #[error("the request body is larger than {MAX_BODY_BYTES} bytes")]
    PayloadTooLarge,
    /// The store cannot be read or written.
    #[error("{0}")]
    Unavailable(String),
    /// A poll of a pending request (RFC 8628 codes: `authorization_pending`,
    /// `slow_down`, `access_denied`, `expired_token`).
    #[error("{1}")]
    Polling(&'static str, String),
    /// A DPoP proof was missing, wrong, or needs the server's nonce (RFC
    /// 9449 §7.1): `error`, its description, and a fresh nonce to send.
    #[error("{1}")]
    Dpop(&'static str, String, Option<String>),
}

impl ApiError {
    fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad-request", "Bad request"),
            ApiError::Unauthenticated(_) => (
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "Not authenticated",
            ),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden", "Not allowed"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not-found", "Not found"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict", "Conflict"),
            ApiError::PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                "Request body too large",
            ),
            ApiError::Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "store-unavailable",
                "Store unavailable",
            ),
            ApiError::Polling(..) => (StatusCode::BAD_REQUEST, "not-yet", "Not issued"),
            ApiError::Dpop(..) => (StatusCode::UNAUTHORIZED, "dpop-proof", "DPoP proof refused"),
        }
    }

    /// The problem document for this error.
    pub fn problem(&self) -> Problem {
        let (status, slug, title) = self.parts();
        Problem {
            kind: format!("https://laissez.dev/problems/{slug}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail: self.to_string(),
            error: match self {
                ApiError::Polling(code, _) | ApiError::Dpop(code, _, _) => Some((*code).to_owned()),
                _ => None,
            },
        }
    }
}

impl From<laissez_store::Error> for ApiError {
    fn from(error: laissez_store::Error) -> ApiError {
        use laissez_store::Error as E;
        match error {
            E::NotFound { .. } => ApiError::NotFound(error.to_string()),
            E::Conflict(message) => ApiError::Conflict(message),
            E::Unavailable(_) | E::Closed => {
                tracing::error!(%error, "store unavailable");
                ApiError::Unavailable(format!(
                    "{error}; nothing was changed. Check the data folder's disk and permissions"
                ))
            }
            E::Corrupt(_) => {
                tracing::error!(%error, "store corrupt");
                ApiError::Unavailable(error.to_string())
            }
        }
    }
}

impl From<laissez_core::Error> for ApiError {
    fn from(error: laissez_core::Error) -> ApiError {
        ApiError::BadRequest(error.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = self.problem();
        let status =
            StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, axum::Json(problem)).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let ApiError::Dpop(code, _, nonce) = &self {
            // Bearer first, for clients that read only the first challenge.
            let challenge = format!(
                "Bearer realm=\"laissez\", DPoP realm=\"laissez\", error=\"{code}\", algs=\"{}\"",
                laissez_dpop::ALGORITHMS.join(" ")
            );
            if let Ok(value) = HeaderValue::from_str(&challenge) {
                headers.insert(header::WWW_AUTHENTICATE, value);
            }
            if let Some(value) = nonce.as_deref().and_then(|n| HeaderValue::from_str(n).ok()) {
                headers.insert("dpop-nonce", value);
            }
        } else if status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"laissez\""),
            );
        }
        response
    }
}

/// A JSON request body; any failure to read it is a problem document.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(match rejection {
                JsonRejection::MissingJsonContentType(_) => ApiError::BadRequest(
                    "send the body as JSON with `Content-Type: application/json`".into(),
                ),
                JsonRejection::JsonSyntaxError(e) => {
                    ApiError::BadRequest(format!("the body is not valid JSON: {}", inner(&e)))
                }
                JsonRejection::JsonDataError(e) => {
                    ApiError::BadRequest(format!("the body has the wrong shape: {}", inner(&e)))
                }
                JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                    ApiError::PayloadTooLarge
                }
                other => ApiError::BadRequest(other.body_text()),
            }),
        }
    }
}

/// Parses an optional JSON body: empty means `T::default()`.
pub fn json_or_default<T: DeserializeOwned + Default>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError::BadRequest(format!(
            "the body is not valid JSON of the right shape: {e}"
        ))
    })
}

fn inner(error: &dyn std::error::Error) -> String {
    let mut source: &dyn std::error::Error = error;
    while let Some(next) = source.source() {
        source = next;
    }
    source.to_string()
}

/// Makes every error answer a document: an error whose body is plain text or
/// empty (axum's rejections, the router's `405 Method Not Allowed`) becomes
/// RFC 9457 problem details with that text as its `detail`. JSON (problem
/// details, OAuth errors) and HTML (sign-in and consent pages) pass as they are.
pub async fn ensure_problem(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let plain = match response.headers().get(header::CONTENT_TYPE) {
        None => true,
        Some(value) => value
            .to_str()
            .map(|v| v.to_ascii_lowercase().starts_with("text/plain"))
            .unwrap_or(true),
    };
    if !plain {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, MAX_REJECTION_BYTES)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let problem = Problem::for_status(status, rejection_detail(status, &method, &text));
    let body = serde_json::to_vec(&problem).unwrap_or_default();
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, axum::body::Body::from(body))
}

/// What to tell the caller about an error answered without a document.
fn rejection_detail(status: StatusCode, method: &Method, text: &str) -> String {
    match status {
        StatusCode::METHOD_NOT_ALLOWED => format!(
            "this endpoint does not answer {method}; the Allow header lists the methods it does, and /openapi.json describes them"
        ),
        _ if text.is_empty() => format!(
            "{}; the API is described at /openapi.json",
            status.canonical_reason().unwrap_or("error")
        ),
        _ => text.chars().take(MAX_DETAIL_CHARS).collect(),
    }
}

impl Problem {
    /// A problem for `status` with this detail; the type is named after the
    /// status's reason phrase (`method-not-allowed`).
    pub fn for_status(status: StatusCode, detail: String) -> Problem {
        let title = status.canonical_reason().unwrap_or("Error");
        let slug: String = title
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == ' ')
            .map(|c| {
                if c == ' ' {
                    '-'
                } else {
                    c.to_ascii_lowercase()
                }
            })
            .collect();
        Problem {
            kind: format!("https://laissez.dev/problems/{slug}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail,
            error: None,
        }
    }
}

/// Largest plain-text error body read to become a problem's detail.
const MAX_REJECTION_BYTES: usize = 16 * 1024;

/// Longest detail taken from a plain-text error body.
const MAX_DETAIL_CHARS: usize = 500;

/// Answers requests to unknown paths.
pub async fn not_found() -> ApiError {
    ApiError::NotFound("no such endpoint; the API is described at /openapi.json".into())
}
