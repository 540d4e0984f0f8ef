//! Sends every decision the gate makes to the Laissez audit log: batched (up
//! to 1,000 per report, at least every 200 ms), in the background, retried
//! with backoff while the server is unreachable. The gate authenticates with
//! a Laissez token holding `laissez.audit.write` (the `laissez-gate` role).

use std::time::Duration;

use serde_json::Value;
use tokio::sync::mpsc;

/// Decisions buffered while the server is slow or away.
pub const BUFFER: usize = 100_000;
const BATCH: usize = 1000;
const FLUSH: Duration = Duration::from_millis(200);

/// The background reporter.
pub struct AuditReporter {
    tx: mpsc::Sender<Value>,
}

impl AuditReporter {
    /// Starts reporting to the server at `issuer` with `token`.
    pub fn start(issuer: &str, token: String) -> AuditReporter {
        let (tx, mut rx) = mpsc::channel::<Value>(BUFFER);
        let url = format!("{}/v1/audit/events", issuer.trim_end_matches('/'));
        let http = reqwest::Client::builder()
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

    /// Queues one decision.
    pub fn record(&self, decision: Value) {
        if self.tx.try_send(decision).is_err() {
            tracing::error!("the audit buffer is full; a gate decision was not recorded");
        }
    }
}
