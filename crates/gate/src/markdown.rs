//! Markdown for agents (`laissez gate --markdown-for-agents`): a request
//! that asks for `Accept: text/markdown` and whose app answers `text/html`
//! gets the page converted to Markdown (htmd, on an HTML5 parser), served as
//! `text/markdown; charset=utf-8`. Agents read far fewer tokens that way,
//! and the app does not change.
//!
//! The conversion happens before DLP reads the answer, so DLP inspects the
//! text the agent receives. Every answer of such a gate varies with
//! `Accept` (`Vary: Accept`), so caches keep the two forms apart. Pages
//! larger than [`MAX_PAGE`] are not converted: a declared length above it
//! passes as HTML; a streamed page that grows past it is a 502.

use axum::body::Body;
use axum::http::header::{
    ACCEPT, CONTENT_LENGTH, CONTENT_TYPE, ETAG, HeaderMap, HeaderValue, LAST_MODIFIED, VARY,
};
use axum::response::Response;

use crate::respond::bad_gateway;

/// The largest page converted, bytes.
pub const MAX_PAGE: usize = 4 * 1024 * 1024;

/// The media type of a converted page.
pub const MARKDOWN: &str = "text/markdown; charset=utf-8";

/// Whether a request's `Accept` asks for `text/markdown` (with a non-zero
/// quality).
pub fn wanted(headers: &HeaderMap) -> bool {
    headers
        .get_all(ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|range| {
            let mut parts = range.split(';');
            let media = parts.next().unwrap_or_default().trim();
            let refused = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            media.eq_ignore_ascii_case("text/markdown") && !refused
        })
}

/// Adds `Accept` to an answer's `Vary`.
pub fn vary(headers: &mut HeaderMap) {
    let already = headers
        .get_all(VARY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|v| v.trim().eq_ignore_ascii_case("accept") || v.trim() == "*");
    if !already {
        headers.append(VARY, HeaderValue::from_static("Accept"));
    }
}

/// Whether an answer is an HTML page small enough to convert.
pub fn convertible(headers: &HeaderMap) -> bool {
    let html = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("text/html"));
    let small = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .is_none_or(|length| length <= MAX_PAGE);
    html && small
}

/// Converts an HTML answer's body to Markdown, fixing its headers; or the
/// 502 when the page cannot be read whole.
pub async fn convert(headers: &mut HeaderMap, body: Body) -> Result<Body, Response> {
    let bytes = axum::body::to_bytes(body, MAX_PAGE).await.map_err(|_| {
        bad_gateway("the app's page is too large to convert to Markdown, or did not arrive whole")
    })?;
    let html = String::from_utf8_lossy(&bytes).into_owned();
    let markdown = tokio::task::spawn_blocking(move || {
        htmd::HtmlToMarkdown::builder()
            .skip_tags(vec!["script", "style", "noscript", "template"])
            .build()
            .convert(&html)
    })
    .await
    .map_err(|_| bad_gateway("converting the app's page to Markdown failed"))?
    .map_err(|_| bad_gateway("the app's page cannot be converted to Markdown"))?;
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(MARKDOWN));
    headers.insert(CONTENT_LENGTH, HeaderValue::from(markdown.len()));
    // Validators of the HTML do not describe the Markdown.
    headers.remove(ETAG);
    headers.remove(LAST_MODIFIED);
    Ok(Body::from(markdown))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn markdown_is_wanted_when_accept_names_it_with_a_positive_quality() {
        assert!(wanted(&accept("text/markdown")));
        assert!(wanted(&accept("text/html;q=0.5, Text/Markdown;q=0.9")));
        assert!(!wanted(&accept("text/markdown;q=0")));
        assert!(!wanted(&accept("text/html, */*")));
        assert!(!wanted(&HeaderMap::new()));
    }

    #[test]
    fn vary_gains_accept_once() {
        let mut headers = HeaderMap::new();
        headers.insert(VARY, HeaderValue::from_static("Origin"));
        vary(&mut headers);
        vary(&mut headers);
        let all: Vec<_> = headers.get_all(VARY).iter().collect();
        assert_eq!(all, ["Origin", "Accept"]);
    }
}
