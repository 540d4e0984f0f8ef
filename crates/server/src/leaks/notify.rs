//! Telling owners about leaks, and about tasks waiting for their approval:
//! a signed webhook and email, delivered from the store's outbox so that
//! nothing acknowledged is lost.
//!
//! An incident's notifications are queued in the same transaction that
//! records it. A background worker delivers them at once (it is woken by the
//! intake) and retries failures with exponential backoff, so a webhook
//! receiver or mail server that is down when the leak is reported still hears
//! of it when it comes back.
//!
//! Webhooks are signed like Stripe's: `Laissez-Signature: t=<unix time>,
//! v1=<hex HMAC-SHA256 of "<t>.<body>" under the shared secret>`, so a
//! receiver can check origin and freshness.

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use laissez_core::leak::Incident;
use laissez_store::{Notification, Store};
use lettre::message::{Mailbox, SinglePart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use sha2::Sha256;
use tokio::sync::Notify;

/// Header carrying a webhook's signature.
pub const SIGNATURE_HEADER: &str = "laissez-signature";

/// Where notifications go.
#[derive(Clone, Debug, Default)]
pub struct NotifyConfig {
    /// The webhook URL and its signing secret.
    pub webhook: Option<(String, String)>,
    /// The SMTP server (`smtp://host:port`) and the sender address.
    pub smtp: Option<(String, String)>,
    /// The public URL of the server, for links in messages.
    pub issuer: String,
}

impl NotifyConfig {
    /// The channels incidents are queued on.
    pub fn channels(&self) -> Vec<String> {
        let mut channels = Vec::new();
        if self.webhook.is_some() {
            channels.push("webhook".to_owned());
        }
        if self.smtp.is_some() {
            channels.push("email".to_owned());
        }
        channels
    }
}

/// Delivers queued notifications.
pub struct Notifier {
    config: NotifyConfig,
    store: Arc<dyn Store>,
    wake: Notify,
    http: reqwest::Client,
    mailer: Option<(AsyncSmtpTransport<Tokio1Executor>, Mailbox)>,
}

/// How often the outbox is checked for retries when nothing wakes the worker.
const POLL: Duration = Duration::from_secs(1);

impl Notifier {
    /// A notifier; fails on an SMTP URL or sender address it cannot use.
    pub fn new(config: NotifyConfig, store: Arc<dyn Store>) -> Result<Notifier, String> {
        let mailer = match &config.smtp {
            None => None,
            Some((url, from)) => {
                let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .map_err(|e| format!("--smtp {url}: {e} (use smtp://host:port)"))?
                    .timeout(Some(Duration::from_secs(10)))
                    .build();
                let from: Mailbox = from
                    .parse()
                    .map_err(|e| format!("--smtp-from {from}: not an email address ({e})"))?;
                Some((transport, from))
            }
        };
        Ok(Notifier {
            config,
            store,
            wake: Notify::new(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .map_err(|e| e.to_string())?,
            mailer,
        })
    }

    /// The channels incidents are queued on.
    pub fn channels(&self) -> Vec<String> {
        self.config.channels()
    }

    /// Asks the worker to deliver now.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Runs the delivery worker until the process ends.
    pub fn spawn(self: Arc<Self>) {
        if self.config.channels().is_empty() {
            return;
        }
        tokio::spawn(async move {
            loop {
                self.deliver_due().await;
                let _ = tokio::time::timeout(POLL, self.wake.notified()).await;
            }
        });
    }

    async fn deliver_due(&self) {
        let due = match self.store.due_notifications(100).await {
            Ok(due) => due,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the notification outbox");
                return;
            }
        };
        for notification in due {
            let outcome = self.deliver(&notification).await;
            if let Err(why) = &outcome {
                tracing::warn!(id = %notification.id, attempts = notification.attempts + 1, error = %why, "notification not delivered");
            }
            if let Err(e) = self
                .store
                .finish_notification(&notification.id, outcome.err())
                .await
            {
                tracing::warn!(error = %e, "cannot record a notification attempt");
            }
        }
    }

    async fn deliver(&self, notification: &Notification) -> Result<(), String> {
        if notification.incident_id.starts_with("tsk_") {
            return self.deliver_approval(notification).await;
        }
        if notification.incident_id.starts_with("dig_") {
            return self.deliver_digest(notification).await;
        }
        let incident = self
            .store
            .incident(&notification.incident_id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("the incident is gone")?;
        match notification.channel.as_str() {
            "webhook" => self.send_webhook(&incident).await,
            "email" => self.send_email(&incident).await,
            other => Err(format!("unknown channel '{other}'")),
        }
    }

    /// Tells an agent's owner that a task waits for their approval.
    async fn deliver_approval(&self, notification: &Notification) -> Result<(), String> {
        let (task, approval) = self
            .store
            .approval(&notification.incident_id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("the task is gone")?;
        let agent = self
            .store
            .principal(&task.agent_id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("the agent is gone")?;
        let owner_id = agent.owner_id.clone().unwrap_or_default();
        match notification.channel.as_str() {
            "webhook" => {
                self.post_webhook(&serde_json::json!({
                    "event": "task.approval_requested",
                    "task": task,
                    "approval": approval,
                    "agent": agent.reference(),
                    "owner": owner_id,
                    "approve": format!("laissez approvals approve {}", task.id),
                }))
                .await
            }
            "email" => {
                let body = format!(
                    "Your agent {agent} asks for a task credential that needs your approval.\n\n\
                     Task:     {id}\n\
                     What for: {description}\n\
                     Grants:   {grants}\n\
                     Why you are asked: {reasons}\n\n\
                     Approve with `laissez approvals approve {id}` (optionally --grant to narrow it),\n\
                     or refuse with `laissez approvals deny {id}`, against {issuer}.\n",
                    agent = agent.name,
                    id = task.id,
                    description = approval.description,
                    grants = task.grants.join(", "),
                    reasons = approval.reasons.join("; "),
                    issuer = self.config.issuer,
                );
                let subject = format!("Laissez: {} asks for your approval", agent.name);
                self.send_mail(&owner_id, subject, body, &format!("task.{}", task.id))
                    .await
            }
            other => Err(format!("unknown channel '{other}'")),
        }
    }

    /// Tells a person what they answer for that needs care.
    async fn deliver_digest(&self, notification: &Notification) -> Result<(), String> {
        let digest = self
            .store
            .digest(&notification.incident_id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("the digest is gone")?;
        let person = self
            .store
            .principal(&digest.owner_id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("the person is gone")?;
        match notification.channel.as_str() {
            "webhook" => {
                self.post_webhook(&serde_json::json!({
                    "event": "hygiene.digest",
                    "digest": digest.id,
                    "owner": person.reference(),
                    "findings": digest.findings,
                    "created_at": digest.created_at,
                }))
                .await
            }
            "email" => {
                let lines: Vec<String> = digest
                    .findings
                    .as_array()
                    .map(|all| all.iter().map(digest_line).collect())
                    .unwrap_or_default();
                let body = format!(
                    "Hello {name},\n\nThese identities and credentials you answer for need care:\n\n{lines}\n\n\
                     See them all with `laissez hygiene` against {issuer}.\n",
                    name = person.name,
                    lines = lines.join("\n"),
                    issuer = self.config.issuer,
                );
                let subject = format!("Laissez: {} things need your care", lines.len());
                self.send_mail(
                    &digest.owner_id,
                    subject,
                    body,
                    &format!("digest.{}", digest.id),
                )
                .await
            }
            other => Err(format!("unknown channel '{other}'")),
        }
    }

    async fn send_webhook(&self, incident: &Incident) -> Result<(), String> {
        let owner = match &incident.owner_id {
            Some(id) => self.store.principal(id).await.ok().flatten(),
            None => None,
        };
        self.post_webhook(&serde_json::json!({
            "event": "leak.incident",
            "incident": incident,
            "owner": owner.map(|o| o.reference()),
        }))
        .await
    }

    /// Posts one signed event to the webhook.
    async fn post_webhook(&self, event: &serde_json::Value) -> Result<(), String> {
        let (url, secret) = self
            .config
            .webhook
            .as_ref()
            .ok_or("no webhook configured")?;
        let body = serde_json::to_vec(event).map_err(|e| e.to_string())?;
        let timestamp = crate::now();
        let response = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .header(SIGNATURE_HEADER, signature(secret, timestamp, &body))
            .body(body)
            .send()
            .await
            .map_err(|e| format!("POST {url}: {e}"))?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(format!("POST {url}: {}", response.status()))
        }
    }

    async fn send_email(&self, incident: &Incident) -> Result<(), String> {
        let owner_id = incident
            .owner_id
            .as_deref()
            .ok_or("the incident has no owner")?;
        let what = match incident.action {
            laissez_core::leak::LeakAction::Revoked => {
                "It has been revoked: anything using it must get a new one."
            }
            laissez_core::leak::LeakAction::Flagged => {
                "It is still valid: revoke it (laissez token revoke) unless you are sure the place is private."
            }
            _ => "It was no longer valid, so nothing else was done.",
        };
        let body = format!(
            "A credential you answer for was reported leaked.\n\n\
             Token:     {hint}\n\
             Credential: {credential}\n\
             Seen at:   {url} ({source}, {visibility})\n\
             Reported by: {reporter}\n\
             Incident:  {id}\n\n\
             {what}\n\n\
             See every incident with `laissez leaks list` against {issuer}.\n",
            hint = incident.token_hint,
            credential = incident.credential_id.as_deref().unwrap_or("-"),
            url = incident.url,
            source = incident.source,
            visibility = if incident.public { "public" } else { "private" },
            reporter = incident.reporter,
            id = incident.id,
            issuer = self.config.issuer,
        );
        let subject = format!("Laissez: your credential {} leaked", incident.token_hint);
        self.send_mail(owner_id, subject, body, &format!("leak.{}", incident.id))
            .await
    }

    /// Mails `body` to a principal's address; `key` names the message, so a
    /// retried delivery is the same message and mail clients and relays can
    /// tell it is.
    async fn send_mail(
        &self,
        owner_id: &str,
        subject: String,
        body: String,
        key: &str,
    ) -> Result<(), String> {
        let (mailer, from) = self.mailer.as_ref().ok_or("no SMTP server configured")?;
        let address = self
            .store
            .email(owner_id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("the owner has no email address")?;
        let to: Mailbox = address
            .parse()
            .map_err(|e| format!("stored address {address}: {e}"))?;
        let message_id = format!("<{key}@{}>", from.email.domain());
        // `singlepart` gives MIME-Version, and a plain text part gives
        // `Content-Type: text/plain; charset=utf-8` with a fitting encoding.
        let message = Message::builder()
            .from(from.clone())
            .to(to)
            .subject(subject)
            .message_id(Some(message_id))
            .singlepart(SinglePart::plain(body))
            .map_err(|e| e.to_string())?;
        mailer
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| format!("SMTP: {e}"))
    }
}

/// One line of a digest email for a finding (as JSON).
fn digest_line(finding: &serde_json::Value) -> String {
    let text = |key: &str| finding[key].as_str().unwrap_or("?").to_owned();
    let principal = format!(
        "{} {}",
        finding["principal"]["kind"].as_str().unwrap_or("?"),
        finding["principal"]["name"].as_str().unwrap_or("?")
    );
    let number = |key: &str| finding[key].as_i64().unwrap_or_default();
    match finding["finding"].as_str().unwrap_or_default() {
        "owner_inactive" => format!(
            "- {principal}: its owner {} {} left; hand it over to another owner or deactivate it",
            finding["owner"]["kind"].as_str().unwrap_or("?"),
            finding["owner"]["name"].as_str().unwrap_or("?")
        ),
        "expiring_soon" => format!(
            "- {principal}: credential {} expires in {} day(s); roll it (laissez token roll) before it does",
            text("credential_id"),
            number("days_left")
        ),
        "unused" => format!(
            "- {principal}: credential {} unused for {} days; revoke it if nothing needs it",
            text("credential_id"),
            number("days")
        ),
        "never_used" => format!(
            "- {principal}: credential {} never used in {} days; revoke it if nothing needs it",
            text("credential_id"),
            number("age_days")
        ),
        "no_expiry" => format!(
            "- {principal}: credential {} never expires; replace it with one that does",
            text("credential_id")
        ),
        "over_max_lifetime" => format!(
            "- {principal}: credential {} lives longer than the organization allows",
            text("credential_id")
        ),
        other => format!("- {principal}: {other}"),
    }
}

/// The `Laissez-Signature` value for `body` sent at `timestamp`.
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}
