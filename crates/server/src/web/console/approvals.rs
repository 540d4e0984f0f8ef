//! The approvals page: tasks waiting for a person's decision (a lifetime
//! above the threshold, a sensitive permission), with what each asks for and
//! why it needs approval, and the ones decided lately, by whom. Approving
//! (all that was asked, or only some of the asked grants) and denying are
//! the admin API's handlers (`POST /v1/approvals/{id}/approve`, `/deny`), so
//! who may decide, how far an approval may narrow and the audit record are
//! the API's; the list is `GET /v1/approvals?all=true` as the person calls it.

use std::collections::HashMap;

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use laissez_core::Ttl;
use serde::Deserialize;
use serde_json::json;

use super::{Chrome, Console, render, see_other, when};
use crate::AppState;
use crate::tasks::approvals::ApprovalsQuery;

/// Approvals read at most (pending and decided, newest first).
const LISTED: usize = 200;
/// Decided approvals shown.
const RECENT: usize = 20;

/// An approval as `GET /v1/approvals` shows it.
#[derive(Deserialize)]
struct Listed {
    id: String,
    status: String,
    description: String,
    reasons: Vec<String>,
    ttl: i64,
    decided_by: Option<String>,
    decided_at: Option<i64>,
    task: ListedTask,
}

/// The part of the task the page shows.
#[derive(Deserialize)]
struct ListedTask {
    agent: String,
    grants: Vec<String>,
    expires_at: i64,
}

/// A pending approval.
struct Pending {
    id: String,
    agent: String,
    owner: String,
    description: String,
    grants: Vec<String>,
    reasons: Vec<String>,
    lifetime: String,
    expires: String,
}

/// A decided approval.
struct Decided {
    id: String,
    agent: String,
    description: String,
    decision: &'static str,
    grants: Vec<String>,
    by: String,
    at: String,
}

#[derive(Template)]
#[template(path = "console/approvals.html")]
struct Page {
    title: &'static str,
    chrome: Chrome,
    pending: Vec<Pending>,
    decided: Vec<Decided>,
}

/// `GET /console/approvals`.
pub async fn page(State(state): State<AppState>, console: Console) -> Response {
    let listed = crate::tasks::approvals::list(
        State(state.clone()),
        console.caller.clone(),
        Query(ApprovalsQuery {
            all: true,
            limit: Some(LISTED),
        }),
    )
    .await;
    let approvals: Vec<Listed> =
        match listed.map(|axum::Json(value)| serde_json::from_value::<Vec<Listed>>(value)) {
            Ok(Ok(approvals)) => approvals,
            Ok(Err(e)) => {
                return console.refusal(&crate::problem::ApiError::Unavailable(format!(
                    "cannot read the API's answer: {e}"
                )));
            }
            Err(e) => return console.refusal(&e),
        };
    let names = Names::of(&state, &approvals).await;
    let (mut pending, mut decided) = (Vec::new(), Vec::new());
    for approval in approvals {
        let agent = names.name(&approval.task.agent);
        match approval.decided_at {
            None if approval.status == "pending" => pending.push(Pending {
                owner: names.owner(&approval.task.agent),
                lifetime: Ttl::from_seconds(approval.ttl)
                    .map_or_else(|| format!("{}s", approval.ttl), |t| t.to_string()),
                expires: when(Some(approval.task.expires_at)),
                id: approval.id,
                agent,
                description: approval.description,
                grants: approval.task.grants,
                reasons: approval.reasons,
            }),
            None => {}
            Some(at) if decided.len() < RECENT => decided.push(Decided {
                decision: if approval.status == "denied" {
                    "denied"
                } else {
                    "approved"
                },
                by: approval
                    .decided_by
                    .as_deref()
                    .map(|id| names.name(id))
                    .unwrap_or_default(),
                at: when(Some(at)),
                id: approval.id,
                agent,
                description: approval.description,
                grants: approval.task.grants,
            }),
            Some(_) => {}
        }
    }
    let page = Page {
        title: "Approvals",
        chrome: console.chrome("approvals"),
        pending,
        decided,
    };
    render(StatusCode::OK, &page)
}

/// `POST /console/approvals/approve`: the checked grants (`grant`, one
/// field each) through `POST /v1/approvals/{id}/approve`, which refuses an
/// empty choice or one wider than what was asked, and changes nothing then.
pub async fn approve(State(state): State<AppState>, console: Console, body: Bytes) -> Response {
    decide(state, console, body, Verdict::Approve).await
}

/// `POST /console/approvals/deny`: through `POST /v1/approvals/{id}/deny`.
pub async fn deny(State(state): State<AppState>, console: Console, body: Bytes) -> Response {
    decide(state, console, body, Verdict::Deny).await
}

/// Which of the API's two decisions a form asks for.
enum Verdict {
    Approve,
    Deny,
}

/// Hands a decision form to the API's own handler, which authorizes,
/// validates and audits it, and goes back to the list (or shows the refusal).
async fn decide(state: AppState, console: Console, body: Bytes, verdict: Verdict) -> Response {
    let form = match console.form(&body) {
        Ok(form) => form,
        Err(refused) => return *refused,
    };
    let id = Path(form.get("id").to_owned());
    let caller = console.caller.clone();
    let answer = match verdict {
        Verdict::Approve => {
            let decision = json!({"grants": form.all("grant"), "reason": form.get("reason")});
            let body = Bytes::from(decision.to_string());
            crate::tasks::approvals::approve(State(state), caller, id, body)
                .await
                .map(drop)
        }
        Verdict::Deny => {
            let body = Bytes::from(json!({"reason": form.get("reason")}).to_string());
            crate::tasks::approvals::deny(State(state), caller, id, body)
                .await
                .map(drop)
        }
    };
    match answer {
        Ok(()) => see_other("/console/approvals"),
        Err(e) => console.refusal(&e),
    }
}

/// Names of the agents, their owners and the deciders of the listed
/// approvals (the API names them by id). Only principals the listed
/// approvals already name are looked up; an unknown one shows as its id.
struct Names(HashMap<String, (String, Option<String>)>);

impl Names {
    async fn of(state: &AppState, approvals: &[Listed]) -> Names {
        let mut names = HashMap::new();
        let mut wanted: Vec<String> = approvals
            .iter()
            .flat_map(|a| [Some(a.task.agent.clone()), a.decided_by.clone()])
            .flatten()
            .collect();
        while let Some(id) = wanted.pop() {
            if names.contains_key(&id) {
                continue;
            }
            if let Ok(Some(principal)) = state.store.principal(&id).await {
                if let Some(owner) = &principal.owner_id {
                    wanted.push(owner.clone());
                }
                names.insert(id, (principal.name.to_string(), principal.owner_id));
            }
        }
        Names(names)
    }

    fn name(&self, id: &str) -> String {
        self.0
            .get(id)
            .map_or_else(|| id.to_owned(), |(name, _)| name.clone())
    }

    fn owner(&self, id: &str) -> String {
        self.0
            .get(id)
            .and_then(|(_, owner)| owner.as_deref())
            .map(|owner| self.name(owner))
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_api_listing_reads_as_rows() {
        let listed: Vec<Listed> = serde_json::from_value(json!([{
            "id": "tsk_1", "status": "pending", "description": "nightly cleanup",
            "reasons": ["lifetime 2h is above 1h"], "ttl": 7200,
            "decided_by": null, "decided_at": null,
            "task": {"id": "tsk_1", "agent": "agt_1", "grants": ["notes.read@acme"],
                     "expires_at": 0, "status": "pending"}
        }]))
        .unwrap_or_default();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].task.grants, ["notes.read@acme"]);
        assert_eq!(
            Ttl::from_seconds(listed[0].ttl).map(|t| t.to_string()),
            Some("2h".to_owned())
        );
    }
}
