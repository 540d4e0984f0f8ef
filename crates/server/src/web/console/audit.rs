//! The audit page: the log newest first, a window of records at a time
//! (`GET /v1/audit`), filtered by principal, action, outcome and day; and
//! a button that walks the whole hash chain (`GET /v1/audit/verify`) and
//! says whether it holds or where it breaks.

use askama::Template;
use axum::extract::{Query, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use laissez_core::audit::AuditRecord;

use super::{Chrome, Console, Form, decode, render, when};
use crate::AppState;
use crate::auth::Authenticated;
use crate::problem::ApiError;

/// Records read per page (before filtering).
const WINDOW: i64 = 500;

/// One record as the page shows it.
pub(super) struct Row {
    pub seq: i64,
    pub at: String,
    pub chain: String,
    pub action: String,
    pub target: String,
    pub outcome: &'static str,
    pub client_ip: String,
}

impl Row {
    pub(super) fn of(record: &AuditRecord) -> Row {
        Row {
            seq: record.seq,
            at: when(Some(record.at)),
            chain: laissez_core::principal::format_chain(&record.chain),
            action: record.action.clone(),
            target: record.target.clone(),
            outcome: record.outcome.as_str(),
            client_ip: record.client_ip.clone().unwrap_or_default(),
        }
    }
}

#[derive(Template)]
#[template(path = "console/audit.html")]
struct Page {
    title: &'static str,
    chrome: Chrome,
    rows: Vec<Row>,
    principal: String,
    action: String,
    outcome: String,
    since: String,
    until: String,
    from: i64,
    to: i64,
    older: Option<String>,
    newer: Option<String>,
    verified: Option<String>,
    intact: bool,
}

/// The filters of the page.
struct Filter {
    principal: String,
    action: String,
    outcome: String,
    since: Option<i64>,
    until: Option<i64>,
}

impl Filter {
    fn parse(form: &Form) -> Result<Filter, ApiError> {
        let day = |key: &str| -> Result<Option<i64>, ApiError> {
            match form.get(key) {
                "" => Ok(None),
                text => super::parse_day(text).map(Some).ok_or_else(|| {
                    ApiError::BadRequest(format!("{key} must be a day as YYYY-MM-DD"))
                }),
            }
        };
        let outcome = form.get("outcome");
        if !matches!(outcome, "" | "success" | "denied" | "unauthenticated") {
            return Err(ApiError::BadRequest(
                "outcome must be success, denied or unauthenticated".into(),
            ));
        }
        Ok(Filter {
            principal: form.get("principal").to_owned(),
            action: form.get("action").to_owned(),
            outcome: outcome.to_owned(),
            since: day("since")?,
            // The whole of the last day counts.
            until: day("until")?.map(|at| at + 86_400),
        })
    }

    fn admits(&self, record: &AuditRecord) -> bool {
        (self.principal.is_empty()
            || record.target == self.principal
            || record
                .chain
                .iter()
                .any(|p| p.name == self.principal || p.id == self.principal))
            && (self.action.is_empty() || record.action.contains(&self.action))
            && (self.outcome.is_empty() || record.outcome.as_str() == self.outcome)
            && self.since.is_none_or(|at| record.at >= at)
            && self.until.is_none_or(|at| record.at < at)
    }

    /// The query string of these filters, for the paging links.
    fn query(&self, form: &Form) -> String {
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(
                ["principal", "action", "outcome", "since", "until"]
                    .into_iter()
                    .map(|k| (k, form.get(k)))
                    .filter(|(_, v)| !v.is_empty()),
            )
            .finish()
    }
}

/// `GET /console/audit?principal=&action=&outcome=&since=&until=&before=&verify=1`.
pub async fn page(
    State(state): State<AppState>,
    console: Console,
    RawQuery(query): RawQuery,
) -> Response {
    let form = Form::query(query.as_deref());
    let filter = match Filter::parse(&form) {
        Ok(filter) => filter,
        Err(e) => return console.refusal(&e),
    };
    let caller = &console.caller;
    let (verified, intact) = if form.get("verify") == "1" {
        match crate::api::audit::verify(State(state.clone()), caller.clone()).await {
            Ok(axum::Json(v)) => match v.first_break {
                None => (
                    Some(format!(
                        "The chain holds: all {} records are intact.",
                        v.records
                    )),
                    true,
                ),
                Some(broken) => (
                    Some(format!(
                        "The chain is broken at record {}: {}",
                        broken.seq, broken.why
                    )),
                    false,
                ),
            },
            Err(e) => return console.refusal(&e),
        }
    } else {
        (None, true)
    };
    let last = match last_seq(&state, caller).await {
        Ok(last) => last,
        Err(e) => return console.refusal(&e),
    };
    let before = match form.get("before") {
        "" => last + 1,
        text => match text.parse::<i64>() {
            Ok(before) if before >= 1 => before.min(last + 1),
            _ => {
                return console.refusal(&ApiError::BadRequest(
                    "before must be a record number".into(),
                ));
            }
        },
    };
    let after = (before - 1 - WINDOW).max(0);
    let records = match records(&state, caller, after, before - 1 - after).await {
        Ok(records) => records,
        Err(e) => return console.refusal(&e),
    };
    let rows: Vec<Row> = records
        .iter()
        .rev()
        .filter(|r| filter.admits(r))
        .map(Row::of)
        .collect();
    let base = filter.query(&form);
    let link = |before: i64| {
        if base.is_empty() {
            format!("/console/audit?before={before}")
        } else {
            format!("/console/audit?{base}&before={before}")
        }
    };
    let page = Page {
        title: "Audit",
        chrome: console.chrome("audit"),
        rows,
        principal: filter.principal,
        action: filter.action,
        outcome: filter.outcome,
        since: form.get("since").to_owned(),
        until: form.get("until").to_owned(),
        from: after + 1,
        to: before - 1,
        older: (after > 0).then(|| link(after + 1)),
        newer: (before <= last).then(|| link((before + WINDOW).min(last + 1))),
        verified,
        intact,
    };
    render(StatusCode::OK, &page)
}

/// Up to `limit` records after `after`, through `GET /v1/audit`.
pub(super) async fn records(
    state: &AppState,
    caller: &Authenticated,
    after: i64,
    limit: i64,
) -> Result<Vec<AuditRecord>, ApiError> {
    if limit <= 0 {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    let mut after = after;
    let mut left = limit;
    while left > 0 {
        let take = left.min(crate::api::audit::MAX_PAGE as i64);
        let answer = crate::api::audit::list(
            State(state.clone()),
            caller.clone(),
            Query(crate::api::audit::Page {
                after,
                limit: Some(take as usize),
                cursor: None,
            }),
        )
        .await?;
        let page: Vec<AuditRecord> = decode(answer).await?;
        let got = page.len() as i64;
        after = page.last().map_or(after, |r| r.seq);
        out.extend(page);
        if got < take {
            break;
        }
        left -= got;
    }
    Ok(out)
}

/// The last record's number, by asking `GET /v1/audit` for one record after
/// ever larger, then bisected, positions (numbers run from 1 without gaps,
/// so a record after `n` exists exactly when `n` is below the last).
pub(super) async fn last_seq(state: &AppState, caller: &Authenticated) -> Result<i64, ApiError> {
    let exists = |after: i64| async move {
        Ok::<bool, ApiError>(!records(state, caller, after, 1).await?.is_empty())
    };
    if !exists(0).await? {
        return Ok(0);
    }
    let (mut low, mut high) = (0_i64, 1_i64);
    while exists(high).await? {
        low = high;
        high = high.saturating_mul(2);
    }
    while high - low > 1 {
        let mid = low + (high - low) / 2;
        if exists(mid).await? {
            low = mid;
        } else {
            high = mid;
        }
    }
    Ok(high)
}
