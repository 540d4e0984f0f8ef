//! How the OAuth endpoints answer: JSON with `Cache-Control: no-store`
//! (RFC 6749 §5.1), errors as `{error, error_description}` with the status
//! RFC 6749 §5.2 gives them, and form bodies whose every failure is an
//! `invalid_request`.

use axum::extract::{FromRequest, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use laissez_oauth::{ErrorCode, OAuthError};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// An OAuth error as an HTTP response.
pub struct OAuthFailure(pub OAuthError);

impl From<OAuthError> for OAuthFailure {
    fn from(error: OAuthError) -> OAuthFailure {
        OAuthFailure(error)
    }
}

impl From<laissez_store::Error> for OAuthFailure {
    fn from(error: laissez_store::Error) -> OAuthFailure {
        tracing::error!(%error, "store failed during an OAuth request");
        OAuthFailure(OAuthError::new(
            ErrorCode::ServerError,
            "the store is unavailable; nothing was changed, try again",
        ))
    }
}

impl IntoResponse for OAuthFailure {
    fn into_response(self) -> Response {
        let status = match self.0.error {
            ErrorCode::InvalidClient => StatusCode::UNAUTHORIZED,
            ErrorCode::ServerError => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        };
        let mut response = (status, axum::Json(&self.0)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"laissez\""),
            );
        }
        response
    }
}

/// A JSON answer that must not be cached (it carries tokens or secrets).
pub fn no_store(status: StatusCode, body: &impl Serialize) -> Response {
    let mut response = (status, axum::Json(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// An `application/x-www-form-urlencoded` body; repeated or malformed
/// parameters are an `invalid_request`.
pub struct OAuthForm<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for OAuthForm<T> {
    type Rejection = OAuthFailure;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Form::<T>::from_request(req, state).await {
            Ok(axum::Form(value)) => Ok(OAuthForm(value)),
            Err(rejection) => Err(OAuthFailure(OAuthError::invalid_request(format!(
                "the body must be application/x-www-form-urlencoded with each parameter once: {}",
                rejection.body_text()
            )))),
        }
    }
}

/// A JSON body (for registration); failures are `invalid_client_metadata`.
pub struct OAuthJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for OAuthJson<T> {
    type Rejection = OAuthFailure;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(OAuthJson(value)),
            Err(rejection) => Err(OAuthFailure(OAuthError::new(
                ErrorCode::InvalidClientMetadata,
                format!(
                    "the body must be a JSON client metadata document: {}",
                    rejection.body_text()
                ),
            ))),
        }
    }
}
