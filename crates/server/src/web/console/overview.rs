//! The overview at `/console`: how many people, services, agents, live
//! tokens, connected applications, leak incidents and pending approvals
//! there are, the hygiene report's findings (`GET /v1/hygiene`: owner
//! inactive, unused, never used, no expiry, over the maximum lifetime) and
//! the most recent audit records. It reads through the admin API, so it
//! needs what those reads need (an administrator's view).

use askama::Template;
use axum::extract::{Query, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use laissez_core::credential::{CredentialState, Finding};
use laissez_core::{Principal, PrincipalKind};

use super::audit::{Row as AuditRow, last_seq, records};
use super::tokens::{TokenRow, listed};
use super::{Chrome, Console, Form, render};
use crate::AppState;
use crate::api::settings::HygieneQuery;
use crate::api::tokens::ListTokens;
use crate::problem::ApiError;

/// Audit records shown.
const RECENT: i64 = 10;

/// One counter.
struct Count {
    label: &'static str,
    value: usize,
    href: &'static str,
}

#[derive(Template)]
#[template(path = "console/overview.html")]
struct Page {
    title: &'static str,
    chrome: Chrome,
    counts: Vec<Count>,
    findings: Vec<String>,
    recent: Vec<AuditRow>,
    unused_days: i64,
}

/// `GET /console?unused_days=N` (the hygiene threshold, 30 by default).
pub async fn page(
    State(state): State<AppState>,
    console: Console,
    RawQuery(query): RawQuery,
) -> Response {
    let unused_days = match Form::query(query.as_deref()).get("unused_days") {
        "" => 30,
        text => match text.parse::<i64>() {
            Ok(days) => days,
            Err(_) => {
                return console.refusal(&ApiError::BadRequest(
                    "unused_days must be a number of days".into(),
                ));
            }
        },
    };
    match gather(&state, &console, unused_days).await {
        Ok((counts, findings, recent)) => render(
            StatusCode::OK,
            &Page {
                title: "Overview",
                chrome: console.chrome("overview"),
                counts,
                findings,
                recent,
                unused_days,
            },
        ),
        Err(e) => console.refusal(&e),
    }
}

async fn gather(
    state: &AppState,
    console: &Console,
    unused_days: i64,
) -> Result<(Vec<Count>, Vec<String>, Vec<AuditRow>), ApiError> {
    let caller = &console.caller;
    let principals: Vec<Principal> = console.principals(state, None).await?;
    let of_kind = |kind| principals.iter().filter(|p| p.kind == kind).count();
    let tokens: Vec<TokenRow> = listed(crate::api::tokens::list(
        State(state.clone()),
        caller.clone(),
        Query(ListTokens {
            principal: None,
            limit: Some(1000),
            cursor: None,
        }),
    ))
    .await?;
    let mut connected = 0;
    for person in principals.iter().filter(|p| p.kind == PrincipalKind::User) {
        let axum::Json(apps) = crate::api::connected::list(
            State(state.clone()),
            caller.clone(),
            Query(crate::api::connected::ConnectedQuery {
                user: Some(person.id.clone()),
            }),
        )
        .await?;
        connected += apps.len();
    }
    let leaks = super::leaks::incidents(state, console).await?.len();
    let axum::Json(approvals) = crate::tasks::approvals::list(
        State(state.clone()),
        caller.clone(),
        Query(crate::tasks::approvals::ApprovalsQuery::default()),
    )
    .await?;
    let pending = approvals.as_array().map_or(0, Vec::len);
    let counts = vec![
        Count {
            label: "People",
            value: of_kind(PrincipalKind::User),
            href: "/console/principals",
        },
        Count {
            label: "Services",
            value: of_kind(PrincipalKind::Service),
            href: "/console/principals",
        },
        Count {
            label: "Agents",
            value: of_kind(PrincipalKind::Agent),
            href: "/console/principals",
        },
        Count {
            label: "Live tokens",
            value: tokens
                .iter()
                .filter(|t| t.state == CredentialState::Active)
                .count(),
            href: "/console/tokens",
        },
        Count {
            label: "Connected apps",
            value: connected,
            href: "/console/apps",
        },
        Count {
            label: "Leak incidents",
            value: leaks,
            href: "/console/leaks",
        },
        Count {
            label: "Pending approvals",
            value: pending,
            href: "/console/approvals",
        },
    ];
    let axum::Json(report) = crate::api::settings::hygiene(
        State(state.clone()),
        caller.clone(),
        Query(HygieneQuery {
            unused_days: Some(unused_days),
        }),
    )
    .await?;
    let findings = report.iter().map(describe).collect();
    let last = last_seq(state, caller).await?;
    let after = (last - RECENT).max(0);
    let recent = records(state, caller, after, last - after)
        .await?
        .iter()
        .rev()
        .map(AuditRow::of)
        .collect();
    Ok((counts, findings, recent))
}

/// A hygiene finding in words.
fn describe(finding: &Finding) -> String {
    match finding {
        Finding::OwnerInactive { principal, owner } => format!(
            "{} {}: its owner {} is inactive, so it is suspended",
            principal.kind, principal.name, owner.name
        ),
        Finding::Unused {
            credential_id,
            principal,
            days,
        } => format!(
            "token {credential_id} of {}: unused for {days} days",
            principal.name
        ),
        Finding::NeverUsed {
            credential_id,
            principal,
            age_days,
        } => format!(
            "token {credential_id} of {}: never used in {age_days} days",
            principal.name
        ),
        Finding::NoExpiry {
            credential_id,
            principal,
        } => format!("token {credential_id} of {}: never expires", principal.name),
        Finding::ExpiringSoon {
            credential_id,
            principal,
            days_left,
        } => format!(
            "token {credential_id} of {}: expires in {days_left} day(s)",
            principal.name
        ),
        Finding::OverMaxLifetime {
            credential_id,
            principal,
            lifetime_seconds,
        } => format!(
            "token {credential_id} of {}: lives {} days, longer than the organization allows",
            principal.name,
            lifetime_seconds / 86_400
        ),
    }
}
