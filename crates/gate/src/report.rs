//! Sends every decision the gate makes to the Laissez audit log: batched (up
//! to 1,000 per report, at least every 200 ms), in the background, retried
//! with backoff while the server is unreachable. The gate authenticates with
//! a Laissez token holding `laissez.audit.write` (the `laissez-gate` role).

use std::time::Duration;

use serde_json::Value;
use tokio::sync::mpsc;

/// Longest app name the audit log takes.
pub const MAX_APP: usize = 128;
/// Longest method the audit log takes.
pub const MAX_METHOD: usize = 16;
/// Longest path the audit log takes.
pub const MAX_PATH: usize = 2048;
/// Longest other text field (reason, scope, ids) the gate sends.
pub const MAX_TEXT: usize = 1024;

/// Cuts every text field of a decision to its bound, at a character boundary.
pub fn bound_fields(decision: &mut Value) {
    let Some(fields) = decision.as_object_mut() else {
        return;
    };
    for (name, value) in fields.iter_mut() {
        let limit = match name.as_str() {
            "app" => MAX_APP,
            "method" => MAX_METHOD,
            "path" => MAX_PATH,
            _ => MAX_TEXT,
        };
        if let Value::String(text) = value
            && text.len() > limit
        {
            let mut end = limit;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
        }
    }
}

/// Decisions buffered while the server is slow or away.
pub const BUFFER: usize = 100_000;
const BATCH: usize = 1000;
const FLUSH: Duration = Duration::from_millis(200);

/// The background reporter.
pub struct AuditReporter {
    tx: mpsc::Sender<Value>,
}

impl AuditReporter {
    /// Starts reporting to the server at `issuer` with `token`, over a
    /// client made from `http`.
    pub fn start(issuer: &str, token: String, http: reqwest::ClientBuilder) -> AuditReporter {
        let (tx, mut rx) = mpsc::channel::<Value>(BUFFER);
        let url = format!("{}/v1/audit/events", issuer.trim_end_matches('/'));
        let http = http
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut batch = vec![first];
                let deadline = tokio::time::Instant::now() + FLUSH;
                while batch.len() < BATCH {
                    match tokio::time::timeout_at(deadline, rx.recv()).await {
                        Ok(Some(decision)) => batch.push(decision),
                        _ => break,
                    }
                }
                let mut backoff = Duration::from_millis(100);
                loop {
                    match http
                        .post(&url)
                        .bearer_auth(&token)
                        .json(&batch)
                        .send()
                        .await
                    {
                        Ok(r) if r.status().is_success() => break,
                        Ok(r) if r.status().is_client_error() => {
                            // Refused as malformed or unauthorized: retrying cannot help.
                            tracing::error!(status = %r.status(), dropped = batch.len(), "the audit log refused the gate's report; check the gate's --audit-token");
                            break;
                        }
                        Ok(r) => {
                            tracing::warn!(status = %r.status(), "audit report failed; retrying")
                        }
                        Err(e) => tracing::warn!(error = %e, "audit report failed; retrying"),
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
            }
        });
        AuditReporter { tx }
    }

    /// Queues one decision, its fields cut to what the audit log takes
    /// (a request with a 20-character method or a 10 KB path must not get
    /// the whole batch it travels in refused).
    pub fn record(&self, mut decision: Value) {
        bound_fields(&mut decision);
        if self.tx.try_send(decision).is_err() {
            tracing::error!("the audit buffer is full; a gate decision was not recorded");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_cut_to_what_the_audit_log_takes() {
        let mut decision = serde_json::json!({
            "method": "A".repeat(40), "path": format!("/{}", "é".repeat(3000)),
            "app": "notes", "reason": "x".repeat(5000), "user": null,
        });
        bound_fields(&mut decision);
        assert_eq!(decision["method"].as_str().unwrap().len(), MAX_METHOD);
        let path = decision["path"].as_str().unwrap();
        assert!(path.len() <= MAX_PATH && path.len() > MAX_PATH - 2);
        assert_eq!(decision["app"], "notes");
        assert_eq!(decision["reason"].as_str().unwrap().len(), MAX_TEXT);
        assert!(decision["user"].is_null());
    }
}
