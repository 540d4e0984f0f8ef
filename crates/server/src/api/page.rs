//! Paging for every list of the admin API: `limit` (at most [`MAX_LIMIT`],
//! [`DEFAULT_LIMIT`] when absent) and an opaque `cursor` naming where the
//! previous page ended. The body stays a JSON array; when more follows, the
//! response carries the next page's address in a `Link: <…>; rel="next"`
//! header (RFC 8288) and the bare cursor in `Laissez-Next-Cursor`.
//!
//! A cursor is the sort key of the last item returned, so pages neither skip
//! nor repeat items when others are added or removed meanwhile.

use axum::Json;
use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;

use crate::problem::ApiError;

/// Items per page when the request names no limit.
pub const DEFAULT_LIMIT: usize = 100;
/// Items per page at most.
pub const MAX_LIMIT: usize = 1000;
/// The header carrying the next page's cursor.
pub const NEXT_CURSOR: HeaderName = HeaderName::from_static("laissez-next-cursor");

/// A page request, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageRequest {
    /// Items at most.
    pub limit: usize,
    /// The sort key after which the page starts.
    pub after: Option<String>,
}

impl PageRequest {
    /// Parses `limit` and `cursor` as given in a query string.
    pub fn parse(limit: Option<usize>, cursor: Option<&str>) -> Result<PageRequest, ApiError> {
        let limit = limit.unwrap_or(DEFAULT_LIMIT);
        if limit == 0 || limit > MAX_LIMIT {
            return Err(ApiError::BadRequest(format!(
                "limit must be 1 to {MAX_LIMIT}"
            )));
        }
        let after = match cursor {
            None => None,
            Some(cursor) => {
                let bad = || {
                    ApiError::BadRequest(
                        "cursor is not one this server gave out; start again without it".into(),
                    )
                };
                if cursor.is_empty() || cursor.len() > 512 {
                    return Err(bad());
                }
                let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
                Some(String::from_utf8(bytes).map_err(|_| bad())?)
            }
        };
        Ok(PageRequest { limit, after })
    }

    /// The page of `items` (sorted by `key`, ascending, keys unique) after
    /// the cursor, and the cursor of the next page if more follows.
    pub fn apply<T>(&self, items: Vec<T>, key: impl Fn(&T) -> String) -> Page<T> {
        let mut rest: Vec<T> = match &self.after {
            Some(after) => items.into_iter().filter(|i| key(i) > *after).collect(),
            None => items,
        };
        let next = if rest.len() > self.limit {
            rest.truncate(self.limit);
            rest.last().map(|last| URL_SAFE_NO_PAD.encode(key(last)))
        } else {
            None
        };
        Page { items: rest, next }
    }
}

/// One page of a list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// The next page's cursor, if more follows.
    pub next: Option<String>,
}

impl<T: Serialize> Page<T> {
    /// The page as a JSON array, with the next page's address for `path`
    /// (the list's path and its other query parameters, already encoded).
    pub fn respond(self, path: &str, limit: usize) -> Response {
        let mut headers = HeaderMap::new();
        if let Some(next) = &self.next {
            let sep = if path.contains('?') { '&' } else { '?' };
            let link = format!("<{path}{sep}limit={limit}&cursor={next}>; rel=\"next\"");
            if let (Ok(link), Ok(cursor)) =
                (HeaderValue::from_str(&link), HeaderValue::from_str(next))
            {
                headers.insert(header::LINK, link);
                headers.insert(NEXT_CURSOR, cursor);
            }
        }
        (headers, Json(self.items)).into_response()
    }
}

/// A sort key for items listed oldest first: time, then id.
pub fn ascending(at: i64, id: &str) -> String {
    format!("{:020}.{id}", at.max(0))
}

/// The time and id of an [`ascending`] key (for stores that page in SQL).
pub fn parse_ascending(key: &str) -> Option<(i64, String)> {
    let (at, id) = key.split_once('.')?;
    Some((at.parse().ok()?, id.to_owned()))
}

/// A sort key for items listed newest first: time (reversed), then id.
pub fn descending(at: i64, id: &str) -> String {
    format!("{:020}.{id}", i64::MAX - at.max(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(page: &Page<(i64, &'static str)>) -> Vec<&'static str> {
        page.items.iter().map(|(_, id)| *id).collect()
    }

    #[test]
    fn pages_follow_each_other_without_gaps_or_repeats() {
        let items = vec![(1, "a"), (1, "b"), (2, "c"), (3, "d"), (3, "e")];
        let key = |i: &(i64, &str)| ascending(i.0, i.1);
        let first = PageRequest::parse(Some(2), None)
            .unwrap()
            .apply(items.clone(), key);
        assert_eq!(keys(&first), ["a", "b"]);
        let second = PageRequest::parse(Some(2), first.next.as_deref())
            .unwrap()
            .apply(items.clone(), key);
        assert_eq!(keys(&second), ["c", "d"]);
        let third = PageRequest::parse(Some(2), second.next.as_deref())
            .unwrap()
            .apply(items.clone(), key);
        assert_eq!(keys(&third), ["e"]);
        assert_eq!(third.next, None);
        // An item removed meanwhile does not shift the next page.
        let fewer: Vec<_> = items.iter().copied().filter(|i| i.1 != "b").collect();
        let again = PageRequest::parse(Some(2), first.next.as_deref())
            .unwrap()
            .apply(fewer, key);
        assert_eq!(keys(&again), ["c", "d"]);
    }

    #[test]
    fn ascending_keys_parse_back() {
        let key = ascending(1_700_000_000, "cl_x.y");
        assert_eq!(
            parse_ascending(&key),
            Some((1_700_000_000, "cl_x.y".to_owned()))
        );
        assert_eq!(parse_ascending("nope"), None);
    }

    #[test]
    fn newest_first_keys_sort_ascending() {
        assert!(descending(200, "a") < descending(100, "a"));
        assert!(descending(100, "a") < descending(100, "b"));
        assert!(ascending(100, "z") < ascending(200, "a"));
    }

    #[test]
    fn bad_limits_and_cursors_are_refused() {
        for (limit, cursor) in [
            (Some(0), None),
            (Some(MAX_LIMIT + 1), None),
            (None, Some("")),
            (None, Some("!!!")),
            (None, Some("/w")),
        ] {
            assert!(
                PageRequest::parse(limit, cursor).is_err(),
                "{limit:?} {cursor:?}"
            );
        }
        assert_eq!(
            PageRequest::parse(None, None).unwrap(),
            PageRequest {
                limit: DEFAULT_LIMIT,
                after: None
            }
        );
    }
}
