//! Data loss prevention: credentials in the bodies the gate carries.
//!
//! Each app chooses, per direction, what happens when a request or response
//! body holds a credential the scanner recognises: `block` (the request fails
//! with a 403 problem naming the rule, the secret masked), `redact` (the
//! secret is replaced by `[REDACTED:<rule>]***`, as long as the secret, so
//! lengths stay true and bodies stream), or `report` (it passes; the
//! decision is audited and a Laissez token is reported to the leak intake,
//! which revokes it). Bodies are inspected as they stream, with bounded
//! memory: small bodies that may be blocked are read whole first (so a
//! blocked request never reaches the app); larger ones stream and are cut
//! off at the first find.
//!
//! An app marked as an AI API (OpenAI-compatible `/v1/chat/completions` and
//! `/v1/responses`) also has its streamed completions inspected: the text
//! deltas of each choice are joined and scanned as one text, so a token the
//! model emits a few characters at a time is still found and redacted before
//! the client sees it.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame};
use laissez_scan::stream::{Boundary, StreamFind, StreamScanner};
use laissez_scan::{Engine, RuleSet, mask};
use serde_json::{Value, json};

/// What to do with a credential found in a body.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DlpAction {
    /// Do not inspect.
    #[default]
    Off,
    /// Refuse the request (403).
    Block,
    /// Replace the secret.
    Redact,
    /// Let it pass; audit it and report Laissez tokens for revocation.
    Report,
}

impl DlpAction {
    /// Parses `off`, `block`, `redact` or `report`.
    pub fn parse(text: &str) -> Result<DlpAction, String> {
        match text {
            "off" => Ok(DlpAction::Off),
            "block" => Ok(DlpAction::Block),
            "redact" => Ok(DlpAction::Redact),
            "report" => Ok(DlpAction::Report),
            other => Err(format!(
                "DLP action '{other}' must be one of off, block, redact, report"
            )),
        }
    }

    /// The action as written.
    pub fn as_str(self) -> &'static str {
        match self {
            DlpAction::Off => "off",
            DlpAction::Block => "block",
            DlpAction::Redact => "redact",
            DlpAction::Report => "report",
        }
    }
}

/// An app's DLP settings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DlpSettings {
    /// For request bodies.
    pub request: DlpAction,
    /// For response bodies.
    pub response: DlpAction,
    /// The app is an OpenAI-compatible AI API: streamed completions are
    /// inspected as text.
    pub ai_api: bool,
}

impl DlpSettings {
    /// Whether anything is inspected.
    pub fn enabled(&self) -> bool {
        self.request != DlpAction::Off || self.response != DlpAction::Off
    }
}

/// Which body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// From the client to the app.
    Request,
    /// From the app to the client.
    Response,
}

impl Direction {
    /// `request` or `response`.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Request => "request",
            Direction::Response => "response",
        }
    }
}

/// Bodies up to this size are read whole before forwarding when they may be
/// blocked, so a blocked body never reaches the other side.
pub const WHOLE_BODY_LIMIT: usize = 1 << 20;

/// A body refused by `block`.
#[derive(Clone, Debug)]
pub struct Blocked {
    /// The rule that matched.
    pub rule: String,
    /// What it found.
    pub description: String,
    /// The secret, masked.
    pub masked: String,
}

impl std::fmt::Display for Blocked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the body holds a {} ({}), rule {}",
            self.description, self.masked, self.rule
        )
    }
}

impl std::error::Error for Blocked {}

/// The gate's DLP: the scanning engine, the settings, and where finds go.
pub struct Dlp {
    engine: Arc<Engine>,
    /// The app's settings.
    pub settings: DlpSettings,
    intake: Option<LeakIntake>,
    metrics: Option<Arc<laissez_metrics::Metrics>>,
}

/// Where Laissez tokens found in `report` mode are sent.
struct LeakIntake {
    url: String,
    token: String,
    http: reqwest::Client,
}

/// Who and what a body belongs to, for audit records and leak reports.
#[derive(Clone, Debug, Default)]
pub struct Exchange {
    /// The app.
    pub app: String,
    /// The request's method and path.
    pub method: String,
    /// The request's path.
    pub path: String,
    /// The user the token acts for.
    pub user: Option<String>,
    /// The OAuth client.
    pub client_id: Option<String>,
}

impl Dlp {
    /// DLP with every built-in rule; finds in `report` mode go to the leak
    /// intake of `issuer` with `token` (the gate's audit token).
    pub fn new(settings: DlpSettings, issuer: &str, token: Option<String>) -> Result<Dlp, String> {
        let engine = Engine::new(
            &[laissez_token::Namespace::default()],
            RuleSet::Traffic,
            Vec::new(),
        )
        .map_err(|e| e.to_string())?;
        Ok(Dlp {
            engine: Arc::new(engine),
            settings,
            intake: token.map(|token| LeakIntake {
                url: format!("{}/v1/leaks", issuer.trim_end_matches('/')),
                token,
                http: reqwest::Client::new(),
            }),
            metrics: None,
        })
    }

    /// Counts every action taken (`laissez_dlp_actions_total`) in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<laissez_metrics::Metrics>) -> Dlp {
        self.metrics = Some(metrics);
        self
    }

    /// The action for `direction`.
    pub fn action(&self, direction: Direction) -> DlpAction {
        match direction {
            Direction::Request => self.settings.request,
            Direction::Response => self.settings.response,
        }
    }

    /// An inspector for one body; `event_stream` when it is
    /// `text/event-stream` from an AI API.
    pub fn inspector(
        self: &Arc<Self>,
        direction: Direction,
        event_stream: bool,
        exchange: Exchange,
        audit: Option<Arc<crate::report::AuditReporter>>,
    ) -> Inspector {
        let action = self.action(direction);
        let sink = FindSink {
            dlp: self.clone(),
            direction,
            action,
            exchange,
            audit,
            blocked: Arc::default(),
        };
        let redact = action == DlpAction::Redact;
        let kind = if event_stream && self.settings.ai_api {
            InspectorKind::Completions(Completions::new(self.engine.clone(), redact))
        } else {
            InspectorKind::Plain(StreamScanner::new(self.engine.clone(), redact))
        };
        Inspector { kind, sink }
    }
}

/// Audits finds and reports Laissez tokens.
struct FindSink {
    dlp: Arc<Dlp>,
    direction: Direction,
    action: DlpAction,
    exchange: Exchange,
    audit: Option<Arc<crate::report::AuditReporter>>,
    blocked: Arc<std::sync::OnceLock<Blocked>>,
}

impl FindSink {
    /// Remembers the block, for whoever sees the stream fail.
    fn sink_blocked(&self, blocked: Blocked) -> Result<(), Blocked> {
        self.blocked.set(blocked)
    }

    /// Handles finds; in `block` mode the first one blocks.
    fn found(&self, finds: Vec<StreamFind>) -> Result<(), Blocked> {
        let Some(first) = finds.first() else {
            return Ok(());
        };
        let detectors = self.dlp.engine.detectors();
        let mut laissez_tokens = Vec::new();
        for find in &finds {
            let detector = &detectors[find.detector];
            tracing::warn!(app = %self.exchange.app, direction = self.direction.as_str(), rule = %detector.id, action = self.action.as_str(), "credential in a body");
            if let Some(metrics) = &self.dlp.metrics {
                metrics.dlp(self.action.as_str());
            }
            if let Some(audit) = &self.audit {
                audit.record(json!({
                    "app": self.exchange.app,
                    "decision": format!("dlp.{}", self.action.as_str()),
                    "method": self.exchange.method,
                    "path": self.exchange.path,
                    "user": self.exchange.user,
                    "client_id": self.exchange.client_id,
                    "reason": format!("{} in the {} body: {}", detector.id, self.direction.as_str(), mask(&find.secret)),
                }));
            }
            if self.action == DlpAction::Report && detector.kind.is_some() {
                laissez_tokens.push(json!({
                    "token": find.secret,
                    "type": detector.id,
                    "url": format!("gate {} {} {} {}", self.exchange.app, self.direction.as_str(), self.exchange.method, self.exchange.path),
                    "source": "gate-dlp",
                    "public": true,
                }));
            }
        }
        if !laissez_tokens.is_empty() {
            match &self.dlp.intake {
                Some(intake) => {
                    let request = intake
                        .http
                        .post(&intake.url)
                        .bearer_auth(&intake.token)
                        .json(&laissez_tokens);
                    tokio::spawn(async move {
                        match request.send().await {
                            Ok(r) if r.status().is_success() => {}
                            Ok(r) => {
                                tracing::error!(status = %r.status(), "the leak intake refused the gate's report")
                            }
                            Err(e) => tracing::error!(error = %e, "cannot reach the leak intake"),
                        }
                    });
                }
                None => tracing::error!(
                    "a Laissez token passed the gate but it has no --audit-token to report it with"
                ),
            }
        }
        if self.action == DlpAction::Block {
            let detector = &detectors[first.detector];
            let blocked = Blocked {
                rule: detector.id.clone(),
                description: detector.description.clone(),
                masked: mask(&first.secret),
            };
            let _ = self.sink_blocked(blocked.clone());
            return Err(blocked);
        }
        Ok(())
    }
}

/// Inspects one body as it passes.
pub struct Inspector {
    kind: InspectorKind,
    sink: FindSink,
}

enum InspectorKind {
    Plain(StreamScanner),
    Completions(Completions),
}

impl Inspector {
    /// What this inspector does with a find.
    pub fn action(&self) -> DlpAction {
        self.sink.action
    }

    /// Set once this body is blocked: a streamed body that fails midway
    /// tells the proxy why through it.
    pub fn blocked(&self) -> Arc<std::sync::OnceLock<Blocked>> {
        self.sink.blocked.clone()
    }

    /// Takes the next chunk; returns what may pass on now. In `report`
    /// mode the chunk passes on at once, untouched; only the scanner waits.
    pub fn push(&mut self, chunk: &Bytes) -> Result<Bytes, Blocked> {
        let passthrough = self.sink.action == DlpAction::Report;
        let (bytes, finds) = match &mut self.kind {
            InspectorKind::Plain(scanner) => {
                let released = scanner.push(chunk);
                (released.bytes, released.finds)
            }
            InspectorKind::Completions(completions) => completions.push(chunk),
        };
        self.sink.found(finds)?;
        Ok(if passthrough {
            chunk.clone()
        } else {
            Bytes::from(bytes)
        })
    }

    /// Ends the body; returns the rest.
    pub fn finish(&mut self) -> Result<Bytes, Blocked> {
        let passthrough = self.sink.action == DlpAction::Report;
        let (bytes, finds) = match &mut self.kind {
            InspectorKind::Plain(scanner) => {
                let released = scanner.finish();
                (released.bytes, released.finds)
            }
            InspectorKind::Completions(completions) => completions.finish(),
        };
        self.sink.found(finds)?;
        Ok(if passthrough {
            Bytes::new()
        } else {
            Bytes::from(bytes)
        })
    }

    /// Inspects a whole body at once (one scan, nothing held back).
    pub fn whole(&mut self, body: &[u8]) -> Result<Bytes, Blocked> {
        let (bytes, finds) = match &mut self.kind {
            InspectorKind::Plain(scanner) => {
                let released = scanner.finish_with(body);
                (released.bytes, released.finds)
            }
            InspectorKind::Completions(completions) => {
                let (mut bytes, mut finds) = completions.push(body);
                let (rest, more) = completions.finish();
                bytes.extend(rest);
                finds.extend(more);
                (bytes, finds)
            }
        };
        self.sink.found(finds)?;
        Ok(Bytes::from(bytes))
    }
}

/// A body passed through an [`Inspector`]; a block ends it with an error.
pub struct InspectedBody<B> {
    inner: B,
    inspector: Inspector,
    done: bool,
    /// Bytes still to come when the length is known: a peer that has them
    /// all may never ask for the end, so the last chunk ends the inspection.
    remaining: Option<u64>,
}

impl<B> InspectedBody<B> {
    /// Wraps `inner`, whose length is `length` if known.
    pub fn new(inner: B, inspector: Inspector, length: Option<u64>) -> InspectedBody<B> {
        InspectedBody {
            inner,
            inspector,
            done: false,
            remaining: length,
        }
    }

    fn data(&mut self, data: &Bytes) -> Result<Bytes, Blocked> {
        let out = self.inspector.push(data)?;
        let Some(remaining) = &mut self.remaining else {
            return Ok(out);
        };
        *remaining = remaining.saturating_sub(data.len() as u64);
        if *remaining > 0 {
            return Ok(out);
        }
        self.done = true;
        let rest = self.inspector.finish()?;
        if rest.is_empty() {
            return Ok(out);
        }
        let mut joined = Vec::with_capacity(out.len() + rest.len());
        joined.extend_from_slice(&out);
        joined.extend_from_slice(&rest);
        Ok(Bytes::from(joined))
    }
}

impl<B> HttpBody for InspectedBody<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        loop {
            if self.done {
                return Poll::Ready(None);
            }
            match Pin::new(&mut self.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e.into()))),
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => match self.data(&data) {
                        Ok(out) if out.is_empty() => continue,
                        Ok(out) => return Poll::Ready(Some(Ok(Frame::data(out)))),
                        Err(blocked) => {
                            self.done = true;
                            return Poll::Ready(Some(Err(Box::new(blocked))));
                        }
                    },
                    // Trailers pass as they are.
                    Err(frame) => return Poll::Ready(Some(Ok(frame))),
                },
                Poll::Ready(None) => {
                    self.done = true;
                    return match self.inspector.finish() {
                        Ok(out) if out.is_empty() => Poll::Ready(None),
                        Ok(out) => Poll::Ready(Some(Ok(Frame::data(out)))),
                        Err(blocked) => Poll::Ready(Some(Err(Box::new(blocked)))),
                    };
                }
            }
        }
    }
}

/// Streamed completions (server-sent events) of an OpenAI-compatible API.
///
/// Events are handled whole. The text deltas of each output (a chat choice,
/// or a Responses API content part) go through their own word-boundary
/// scanner, and each event carries on whatever its scanner releases; the
/// held remainder is flushed into the event that finishes the output. Other
/// events (and the full texts some of them repeat) are scanned whole.
struct Completions {
    engine: Arc<Engine>,
    redact: bool,
    pending: Vec<u8>,
    /// Each unfinished output: its scanner and its last event, the template
    /// for flushing what is held if the stream ends without finishing it.
    outputs: HashMap<String, (StreamScanner, Value)>,
}

impl Completions {
    fn new(engine: Arc<Engine>, redact: bool) -> Completions {
        Completions {
            engine,
            redact,
            pending: Vec::new(),
            outputs: HashMap::new(),
        }
    }

    fn push(&mut self, chunk: &[u8]) -> (Vec<u8>, Vec<StreamFind>) {
        self.pending.extend_from_slice(chunk);
        let mut out = Vec::new();
        let mut finds = Vec::new();
        while let Some(end) = event_end(&self.pending) {
            let event: Vec<u8> = self.pending.drain(..end).collect();
            self.event(&event, &mut out, &mut finds);
        }
        // An event that never ends is scanned as plain text past a bound.
        if self.pending.len() > WHOLE_BODY_LIMIT {
            let rest: Vec<u8> = std::mem::take(&mut self.pending);
            self.plain(&rest, &mut out, &mut finds);
        }
        (out, finds)
    }

    fn finish(&mut self) -> (Vec<u8>, Vec<StreamFind>) {
        let mut out = Vec::new();
        let mut finds = Vec::new();
        let rest = std::mem::take(&mut self.pending);
        if !rest.is_empty() {
            self.event(&rest, &mut out, &mut finds);
        }
        self.flush_outputs(&mut out, &mut finds);
        (out, finds)
    }

    /// Sends what unfinished outputs hold, each in an event shaped like its last.
    fn flush_outputs(&mut self, out: &mut Vec<u8>, finds: &mut Vec<StreamFind>) {
        for (_, (mut scanner, mut template)) in self.outputs.drain() {
            let rest = scanner.finish();
            finds.extend(rest.finds);
            if rest.bytes.is_empty() {
                continue;
            }
            let text = Value::String(String::from_utf8_lossy(&rest.bytes).into_owned());
            if let Some(choices) = template.get_mut("choices").and_then(Value::as_array_mut) {
                for choice in choices {
                    choice["delta"] = json!({ "content": text.clone() });
                    choice["finish_reason"] = Value::Null;
                }
            } else {
                template["delta"] = text;
            }
            out.extend_from_slice(format!("data: {template}\n\n").as_bytes());
        }
    }

    /// Scans `text` whole, appending it (redacted if so) to `out`.
    fn plain(&self, text: &[u8], out: &mut Vec<u8>, finds: &mut Vec<StreamFind>) {
        let mut scanner = StreamScanner::new(self.engine.clone(), self.redact);
        let released = scanner.finish_with(text);
        out.extend(released.bytes);
        finds.extend(released.finds);
    }

    fn event(&mut self, event: &[u8], out: &mut Vec<u8>, finds: &mut Vec<StreamFind>) {
        let text = String::from_utf8_lossy(event);
        let data: String = text
            .lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .map(|d| d.strip_prefix(' ').unwrap_or(d))
            .collect::<Vec<_>>()
            .join("\n");
        let Ok(mut value) = serde_json::from_str::<Value>(&data) else {
            // `[DONE]`: whatever outputs still hold goes out first.
            if data.trim() == "[DONE]" {
                self.flush_outputs(out, finds);
            }
            // `[DONE]`, comments, non-JSON: scanned whole.
            self.plain(event, out, finds);
            return;
        };
        let mut extra_before = Vec::new();
        let touched = self.deltas(&mut value, finds, &mut extra_before);
        for extra in extra_before {
            out.extend_from_slice(format!("data: {extra}\n\n").as_bytes());
        }
        if touched {
            // Other fields of a delta event (ids, roles) hold no free text.
            let fields: Vec<&str> = text
                .lines()
                .filter(|l| !l.starts_with("data:") && !l.is_empty())
                .collect();
            for field in fields {
                out.extend_from_slice(field.as_bytes());
                out.push(b'\n');
            }
            out.extend_from_slice(format!("data: {value}\n\n").as_bytes());
        } else {
            self.plain(event, out, finds);
        }
    }

    /// Replaces the text deltas in `value` with what their scanners release;
    /// returns whether it held any. Events to send before this one (flushes
    /// ahead of a Responses API `done`) go to `before`.
    fn deltas(
        &mut self,
        value: &mut Value,
        finds: &mut Vec<StreamFind>,
        before: &mut Vec<Value>,
    ) -> bool {
        // Chat Completions: choices[].delta.content, finish_reason ends a choice.
        if let Some(choices) = value.get_mut("choices").and_then(Value::as_array_mut) {
            let mut touched = false;
            for choice in choices {
                let key = format!("chat:{}", choice["index"].as_i64().unwrap_or(0));
                let finished = !choice["finish_reason"].is_null();
                let content = choice["delta"]["content"].as_str().map(str::to_owned);
                if content.is_none() && !finished {
                    continue;
                }
                touched = true;
                let template = json!({ "choices": [choice.clone()] });
                let scanner = self.scanner(&key, template);
                let mut released = scanner.push(content.unwrap_or_default().as_bytes());
                if finished {
                    let rest = scanner.finish();
                    released.bytes.extend(rest.bytes);
                    released.finds.extend(rest.finds);
                    self.outputs.remove(&key);
                }
                finds.extend(released.finds);
                let text = String::from_utf8_lossy(&released.bytes).into_owned();
                if !choice["delta"].is_object() {
                    choice["delta"] = json!({});
                }
                choice["delta"]["content"] = Value::String(text);
            }
            return touched;
        }
        // Responses API: response.output_text.delta / .done per content part.
        let kind = value["type"].as_str().unwrap_or_default().to_owned();
        let key = format!(
            "responses:{}:{}",
            value["item_id"].as_str().unwrap_or_default(),
            value["content_index"].as_i64().unwrap_or(0)
        );
        if kind == "response.output_text.delta" {
            let delta = value["delta"].as_str().unwrap_or_default().to_owned();
            let released = self.scanner(&key, value.clone()).push(delta.as_bytes());
            finds.extend(released.finds);
            value["delta"] = Value::String(String::from_utf8_lossy(&released.bytes).into_owned());
            return true;
        }
        if kind == "response.output_text.done"
            && let Some((mut scanner, _)) = self.outputs.remove(&key)
        {
            let rest = scanner.finish();
            finds.extend(rest.finds);
            if !rest.bytes.is_empty() {
                let mut flush = value.clone();
                flush["type"] = json!("response.output_text.delta");
                flush["delta"] = Value::String(String::from_utf8_lossy(&rest.bytes).into_owned());
                if let Some(object) = flush.as_object_mut() {
                    object.remove("text");
                }
                before.push(flush);
            }
        }
        false
    }

    /// The scanner of output `key`, whose latest event is `template`.
    fn scanner(&mut self, key: &str, template: Value) -> &mut StreamScanner {
        let engine = self.engine.clone();
        let redact = self.redact;
        let entry = self.outputs.entry(key.to_owned()).or_insert_with(|| {
            (
                StreamScanner::with_boundary(engine, redact, Boundary::Word),
                Value::Null,
            )
        });
        entry.1 = template;
        &mut entry.0
    }
}

/// The end (exclusive) of the first complete event in `bytes`.
fn event_end(bytes: &[u8]) -> Option<usize> {
    let lf = memchr_pair(bytes, b"\n\n").map(|i| i + 2);
    let crlf = memchr_pair(bytes, b"\r\n\r\n").map(|i| i + 4);
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn memchr_pair(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
