//! Audit streaming: every audit record, soon after it is written, delivered
//! in order to a webhook and to a syslog collector (RFC 5424 over TCP), so a
//! SIEM holds the log too and an attacker who gets at the server cannot
//! quietly rewrite what was already shipped.
//!
//! Each destination ("sink") keeps a cursor in the store: the `seq` of the
//! last record it delivered. Its worker reads the records after the cursor,
//! delivers them, and only then moves the cursor, so delivery is at least
//! once: a record is sent again after a failure or a crash between delivery
//! and the cursor's move, never skipped (receivers deduplicate by `seq`; the
//! hash chain lets them check nothing was left out). A failed delivery is
//! retried with exponential backoff, from the same record. An operator can
//! move a cursor back to replay from a sequence number, never forward: a
//! cursor moved forward would hide records from the SIEM.
//!
//! Webhook batches are signed like notifications (`Laissez-Signature`) and
//! acknowledged by a 2xx answer. Syslog has no acknowledgement: a record
//! counts as delivered once the TCP connection took it, so after a broken
//! connection the worker reconnects and resends from its cursor.

pub mod syslog;

use std::sync::Arc;
use std::time::Duration;

use laissez_core::audit::AuditRecord;
use laissez_store::Store;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// Records per delivery.
pub const BATCH: usize = 200;
/// How often a caught-up worker looks for new records.
const POLL: Duration = Duration::from_millis(250);
/// The longest wait between retries.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// The longest a delivery may take.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);

/// Where audit records go.
#[derive(Clone, Debug, Default)]
pub struct StreamConfig {
    /// A webhook URL and the secret its batches are signed with.
    pub webhook: Option<(String, String)>,
    /// A syslog collector, `host:port` (from `tcp://host:port`).
    pub syslog: Option<String>,
    /// The HOSTNAME syslog messages carry (the issuer's host).
    pub hostname: String,
}

impl StreamConfig {
    /// The names of the configured sinks.
    pub fn sinks(&self) -> Vec<&'static str> {
        let mut sinks = Vec::new();
        if self.webhook.is_some() {
            sinks.push(WEBHOOK);
        }
        if self.syslog.is_some() {
            sinks.push(SYSLOG);
        }
        sinks
    }
}

/// The webhook sink's name.
pub const WEBHOOK: &str = "webhook";
/// The syslog sink's name.
pub const SYSLOG: &str = "syslog";

/// Starts one worker per configured sink; they run until the process ends.
pub fn spawn(config: StreamConfig, store: Arc<dyn Store>) -> Result<(), String> {
    if let Some((url, secret)) = config.webhook.clone() {
        let http = reqwest::Client::builder()
            .timeout(DELIVERY_TIMEOUT)
            .build()
            .map_err(|e| e.to_string())?;
        let sink = Sink::Webhook { url, secret, http };
        tokio::spawn(run(WEBHOOK, sink, store.clone()));
    }
    if let Some(addr) = config.syslog.clone() {
        let sink = Sink::Syslog {
            addr,
            hostname: config.hostname.clone(),
            connection: None,
        };
        tokio::spawn(run(SYSLOG, sink, store));
    }
    Ok(())
}

enum Sink {
    Webhook {
        url: String,
        secret: String,
        http: reqwest::Client,
    },
    Syslog {
        addr: String,
        hostname: String,
        connection: Option<TcpStream>,
    },
}

impl Sink {
    async fn deliver(&mut self, records: &[AuditRecord]) -> Result<(), String> {
        match self {
            Sink::Webhook { url, secret, http } => {
                let body = serde_json::to_vec(&serde_json::json!({ "records": records }))
                    .map_err(|e| e.to_string())?;
                let signature = crate::leaks::notify::signature(secret, crate::now(), &body);
                let answer = http
                    .post(url.as_str())
                    .header("content-type", "application/json")
                    .header(crate::leaks::notify::SIGNATURE_HEADER, signature)
                    .body(body)
                    .send()
                    .await
                    .map_err(|e| format!("webhook: {e}"))?;
                if answer.status().is_success() {
                    Ok(())
                } else {
                    Err(format!("webhook answered {}", answer.status()))
                }
            }
            Sink::Syslog {
                addr,
                hostname,
                connection,
            } => {
                let mut bytes = Vec::new();
                for record in records {
                    let message = syslog::message(record, hostname, std::process::id());
                    bytes.extend(syslog::frame(&message));
                }
                let stream = match connection {
                    Some(stream) => stream,
                    None => connection.insert(
                        tokio::time::timeout(DELIVERY_TIMEOUT, TcpStream::connect(addr.as_str()))
                            .await
                            .map_err(|_| format!("syslog {addr}: connect timed out"))?
                            .map_err(|e| format!("syslog {addr}: {e}"))?,
                    ),
                };
                let written = tokio::time::timeout(DELIVERY_TIMEOUT, async {
                    stream.write_all(&bytes).await?;
                    stream.flush().await
                })
                .await
                .map_err(|_| std::io::Error::other("write timed out"))
                .and_then(|r| r);
                if let Err(e) = written {
                    // Resent from the cursor over a new connection.
                    *connection = None;
                    return Err(format!("syslog {addr}: {e}"));
                }
                Ok(())
            }
        }
    }

    /// Whether a connection that may have broken should be checked before
    /// trusting it with a batch (a peer that closed is seen only on read).
    async fn check(&mut self) {
        if let Sink::Syslog { connection, .. } = self
            && let Some(stream) = connection
        {
            let mut probe = [0u8; 1];
            // A collector never sends; readable means closed (or garbage).
            if let Ok(Ok(_)) =
                tokio::time::timeout(Duration::from_millis(0), stream.peek(&mut probe)).await
            {
                *connection = None;
            }
        }
    }
}

/// The worker of one sink: deliver what follows the cursor, move it, repeat.
async fn run(name: &'static str, mut sink: Sink, store: Arc<dyn Store>) {
    let mut backoff = Duration::from_millis(500);
    loop {
        match step(name, &mut sink, store.as_ref()).await {
            Ok(true) => backoff = Duration::from_millis(500),
            Ok(false) => tokio::time::sleep(POLL).await,
            Err(why) => {
                tracing::warn!(sink = name, error = %why, retry_in_ms = backoff.as_millis() as u64, "audit records not delivered");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// Delivers one batch; whether there was one.
async fn step(name: &str, sink: &mut Sink, store: &dyn Store) -> Result<bool, String> {
    let cursor = store.stream_cursor(name).await.map_err(|e| e.to_string())?;
    let records = store
        .audit_records(cursor, BATCH)
        .await
        .map_err(|e| e.to_string())?;
    let Some(last) = records.last().map(|r| r.seq) else {
        return Ok(false);
    };
    sink.check().await;
    sink.deliver(&records).await?;
    // Only from where it was read: a replay asked for meanwhile wins, and
    // the next step delivers again from there.
    store
        .advance_stream_cursor(name, cursor, last)
        .await
        .map_err(|e| e.to_string())?;
    Ok(true)
}

/// Where a cursor may be moved: only back (a replay), never past where it
/// is (which would skip records), never below 0.
pub fn replay_target(current: i64, asked: i64) -> Result<i64, String> {
    if asked < 0 {
        Err("after must be 0 or more".into())
    } else if asked > current {
        Err(format!(
            "the cursor is at {current}: it moves only back (to replay), never forward, which would skip records"
        ))
    } else {
        Ok(asked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_moves_only_back() {
        assert_eq!(replay_target(10, 0), Ok(0));
        assert_eq!(replay_target(10, 4), Ok(4));
        assert_eq!(replay_target(10, 10), Ok(10));
        assert!(replay_target(10, 11).is_err());
        assert!(replay_target(10, -1).is_err());
        assert!(replay_target(0, 1).is_err());
    }
}
