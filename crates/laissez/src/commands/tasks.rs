//! `laissez task` and `laissez approvals`: task credentials from the
//! command line.
//!
//! `task run` asks for a task credential bound to a fresh DPoP key, waits
//! for a person's approval when the server wants one, runs a command with
//! the credential in its environment, and completes the task when the
//! command ends, however it ends. The other commands list, show and
//! complete tasks, and decide the approvals that wait for a person.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use laissez_dpop::ProofKey;
use reqwest::Method;
use serde_json::{Value, json};
use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::client::{self, Client, encode};
use crate::dpop::{KEY_VAR, TASK_ID_VAR, TOKEN_VAR, TOKENS_VAR};
use crate::error::CliError;
use crate::{Global, output};

/// Task commands.
#[derive(Subcommand)]
pub enum TaskCommand {
    /// Ask for a task credential, run a command with it, and complete the
    /// task when the command ends (exits with the command's code).
    Run(RunArgs),
    /// List the tasks you can see, newest first.
    List {
        /// Only tasks in this state: pending, active, completed, revoked,
        /// denied or lapsed.
        #[arg(long)]
        state: Option<String>,
    },
    /// Show one task.
    Show {
        /// The task's id.
        id: String,
    },
    /// Complete a task: it and every task derived from it end now.
    Complete {
        /// The task's id.
        id: String,
    },
}

/// What `task run` asks for and runs.
#[derive(Args)]
pub struct RunArgs {
    /// A permission the task needs (on every resource); repeatable.
    #[arg(long = "permission", required = true)]
    permissions: Vec<String>,
    /// A resource: an app's URL or a scope such as `/`; repeatable.
    #[arg(long = "resource", required = true)]
    resources: Vec<String>,
    /// The task's lifetime (10m, 2h; default: the organization's).
    #[arg(long)]
    ttl: Option<String>,
    /// What the task is for, as the approver sees it (default: the command).
    #[arg(long)]
    description: Option<String>,
    /// A client IP range the credential may be used from; repeatable.
    #[arg(long = "allow-ip")]
    allowed_ips: Vec<String>,
    /// Fail at once when the task needs a person's approval.
    #[arg(long)]
    no_wait: bool,
    /// Give up waiting for an approval after this long (30s, 15m).
    #[arg(long, default_value = "15m", value_parser = client::parse_timeout)]
    wait_timeout: Duration,
    /// The command to run, after `--`.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    command: Vec<String>,
}

/// Approval commands.
#[derive(Subcommand)]
pub enum ApprovalsCommand {
    /// List the approvals waiting for you (--all: decided ones too).
    List {
        /// Decided approvals too.
        #[arg(long)]
        all: bool,
    },
    /// Show one approval.
    Show {
        /// The approval's id (the task's).
        id: String,
    },
    /// Approve a task, as asked or narrower (--grant).
    Approve {
        /// The approval's id (the task's).
        id: String,
        /// Approve only this `permission@resource`; repeatable.
        #[arg(long = "grant")]
        grants: Vec<String>,
        /// Why (kept in the audit log).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Deny a task.
    Deny {
        /// The approval's id (the task's).
        id: String,
        /// Why (kept in the audit log).
        #[arg(long)]
        reason: Option<String>,
    },
}

/// Runs a task command.
pub async fn task(global: &Global, command: TaskCommand) -> Result<(), CliError> {
    match command {
        TaskCommand::Run(args) => run(global, args).await,
        TaskCommand::List { state } => {
            let path = match state {
                Some(state) => format!("/v1/tasks?state={}", encode(&state)),
                None => "/v1/tasks".to_owned(),
            };
            let tasks = global.client()?.get_all(&path).await?;
            if global.json {
                output::json(&tasks);
                return Ok(());
            }
            let tasks = tasks.as_array().cloned().unwrap_or_default();
            if tasks.is_empty() {
                println!("no tasks");
                return Ok(());
            }
            let rows = tasks
                .iter()
                .map(|t| {
                    vec![
                        output::text(&t["id"]),
                        output::text(&t["status"]),
                        output::text(&t["agent"]),
                        list(&t["grants"]),
                        output::time(&t["expires_at"]),
                    ]
                })
                .collect();
            output::table(&["id", "status", "agent", "grants", "expires"], rows);
            Ok(())
        }
        TaskCommand::Show { id } => {
            let task = global
                .client()?
                .get(&format!("/v1/tasks/{}", encode(&id)))
                .await?;
            if global.json {
                output::json(&task);
            } else {
                print_task(&task);
            }
            Ok(())
        }
        TaskCommand::Complete { id } => {
            let answer = global
                .client()?
                .call(
                    Method::POST,
                    &format!("/v1/tasks/{}/complete", encode(&id)),
                    None,
                )
                .await?;
            if global.json {
                output::json(&answer);
            } else if answer["already_ended"].as_bool() == Some(true) {
                println!(
                    "task {id} had already ended ({})",
                    output::text(&answer["task"]["status"])
                );
            } else {
                println!("completed task {id}; ended: {}", list(&answer["ended"]));
            }
            Ok(())
        }
    }
}

/// Runs an approvals command.
pub async fn approvals(global: &Global, command: ApprovalsCommand) -> Result<(), CliError> {
    let client = global.client()?;
    match command {
        ApprovalsCommand::List { all } => {
            let path = if all {
                "/v1/approvals?all=true&limit=1000"
            } else {
                "/v1/approvals?limit=1000"
            };
            let approvals = client.get(path).await?;
            if global.json {
                output::json(&approvals);
                return Ok(());
            }
            let approvals = approvals.as_array().cloned().unwrap_or_default();
            if approvals.is_empty() {
                println!("no approvals waiting");
                return Ok(());
            }
            let rows = approvals
                .iter()
                .map(|a| {
                    vec![
                        output::text(&a["id"]),
                        output::text(&a["status"]),
                        output::text(&a["task"]["agent"]),
                        list(&a["task"]["grants"]),
                        list(&a["reasons"]),
                        output::text(&a["description"]),
                    ]
                })
                .collect();
            output::table(
                &["id", "status", "agent", "grants", "why", "description"],
                rows,
            );
            Ok(())
        }
        ApprovalsCommand::Show { id } => {
            let approval = client
                .get(&format!("/v1/approvals/{}", encode(&id)))
                .await?;
            if global.json {
                output::json(&approval);
                return Ok(());
            }
            println!("approval:    {}", output::text(&approval["id"]));
            println!("status:      {}", output::text(&approval["status"]));
            println!("description: {}", output::text(&approval["description"]));
            println!("why:         {}", list(&approval["reasons"]));
            println!("agent:       {}", output::text(&approval["task"]["agent"]));
            println!("grants:      {}", list(&approval["task"]["grants"]));
            if !approval["decided_by"].is_null() {
                println!(
                    "decided by:  {} at {}",
                    output::text(&approval["decided_by"]),
                    output::time(&approval["decided_at"])
                );
            }
            Ok(())
        }
        ApprovalsCommand::Approve { id, grants, reason } => {
            let mut body = json!({ "reason": reason.unwrap_or_default() });
            if !grants.is_empty() {
                body["grants"] = json!(grants);
            }
            let task = client
                .post(&format!("/v1/approvals/{}/approve", encode(&id)), body)
                .await?;
            if global.json {
                output::json(&task);
            } else {
                println!("approved task {id}: {}", list(&task["grants"]));
            }
            Ok(())
        }
        ApprovalsCommand::Deny { id, reason } => {
            let body = json!({ "reason": reason.unwrap_or_default() });
            let task = client
                .post(&format!("/v1/approvals/{}/deny", encode(&id)), body)
                .await?;
            if global.json {
                output::json(&task);
            } else {
                println!("denied task {id}");
            }
            Ok(())
        }
    }
}

/// Runs `laissez task run`.
async fn run(global: &Global, args: RunArgs) -> Result<(), CliError> {
    // From here on SIGINT and SIGTERM are ours to handle: the task is
    // completed and the key removed whenever this command stops.
    let mut signals = Signals::new()?;
    let caller = global.client()?;
    if caller.proves_possession() {
        return Err(CliError::Local(format!(
            "laissez task run cannot run inside another task ({KEY_VAR} is set): ask with the agent's own token"
        )));
    }
    let key = ProofKey::generate()
        .map_err(|e| CliError::Local(format!("cannot make a DPoP key: {e}")))?;
    let dir = tempfile::Builder::new()
        .prefix("laissez-task-")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .tempdir()
        .map_err(|e| CliError::Local(format!("cannot make a private folder for the key: {e}")))?;
    let key_path = dir.path().join("dpop-key.pem");
    write_private(&key_path, &key.to_pem())?;

    let asked = caller
        .post_proving("/v1/tasks", Some(args.ask()), &key)
        .await?;
    let issued = match Asked::parse(&asked)? {
        Asked::Issued(issued) => issued,
        Asked::Pending(pending) if args.no_wait => {
            return Err(CliError::Local(format!(
                "task {id} needs a person's approval ({why}); its owner runs `laissez approvals approve {id}`, or run again without --no-wait",
                id = pending.id,
                why = pending.reasons.join("; "),
            )));
        }
        Asked::Pending(pending) => {
            eprintln!(
                "task {id} waits for approval: {why}\n  the owner approves with: laissez approvals approve {id}\n  (or denies with: laissez approvals deny {id})",
                id = pending.id,
                why = pending.reasons.join("; "),
            );
            tokio::select! {
                issued = pending.wait(&caller, &key, args.wait_timeout) => issued?,
                signal = signals.next() => {
                    return Err(CliError::Local(format!(
                        "stopped by signal {signal} while waiting for approval of task {}",
                        pending.id
                    )));
                }
            }
        }
    };
    eprintln!("{}", issued.summary());

    let task_client =
        Client::new(caller.base(), issued.token.clone(), global.timeout)?.with_proof_key(Some(key));
    let ran = run_command(
        &args.command,
        &issued,
        caller.base(),
        &key_path,
        &mut signals,
    )
    .await;
    let completed = issued.complete(&task_client, &caller).await;
    let removed = dir.close();
    if let Err(error) = &removed {
        eprintln!(
            "error: cannot remove the task's key at {}: {error}",
            key_path.display()
        );
    }
    report_completion(&issued, &completed);
    let code = ran?;
    match (code, completed.is_ok() && removed.is_ok()) {
        (0, true) => Ok(()),
        (0, false) => Err(CliError::Exited(1)),
        (code, _) => Err(CliError::Exited(code)),
    }
}

impl RunArgs {
    /// The `POST /v1/tasks` body.
    fn ask(&self) -> Value {
        let mut body = json!({
            "description": self.description.clone().unwrap_or_else(|| self.command.join(" ")),
            "permissions": self.permissions,
            "resources": self.resources,
            "allowed_ips": self.allowed_ips,
        });
        if let Some(ttl) = &self.ttl {
            body["ttl"] = json!(ttl);
        }
        body
    }
}

/// The server's answer to an ask.
enum Asked {
    /// Issued at once.
    Issued(Issued),
    /// Waiting for a person.
    Pending(Pending),
}

impl Asked {
    fn parse(answer: &Value) -> Result<Asked, CliError> {
        if answer["status"] == "pending" {
            let id = answer["approval_id"]
                .as_str()
                .ok_or_else(|| CliError::BadResponse("a pending task without its id".into()))?;
            Ok(Asked::Pending(Pending {
                id: id.to_owned(),
                reasons: strings(&answer["reasons"]),
                interval: Duration::from_secs(answer["interval"].as_u64().unwrap_or(5).max(1)),
            }))
        } else {
            Issued::parse(answer).map(Asked::Issued)
        }
    }
}

/// A task waiting for a person's approval.
struct Pending {
    id: String,
    reasons: Vec<String>,
    interval: Duration,
}

impl Pending {
    /// Polls until the task is issued, refused or over, or `timeout` passed.
    async fn wait(
        &self,
        caller: &Client,
        key: &ProofKey,
        timeout: Duration,
    ) -> Result<Issued, CliError> {
        let deadline = Instant::now() + timeout;
        let path = format!("/v1/tasks/{}/token", encode(&self.id));
        let mut interval = self.interval;
        loop {
            if Instant::now() + interval > deadline {
                return Err(CliError::Local(format!(
                    "gave up waiting for approval of task {} after {} s (--wait-timeout); it stays pending until it expires",
                    self.id,
                    timeout.as_secs()
                )));
            }
            tokio::time::sleep(interval).await;
            let polled = caller.post_proving(&path, None, key).await;
            let code = match &polled {
                Ok(answer) => return Issued::parse(answer),
                Err(CliError::Problem {
                    code: Some(code), ..
                }) => code.as_str(),
                Err(_) => return polled.and_then(|answer| Issued::parse(&answer)),
            };
            match code {
                "authorization_pending" => {}
                "slow_down" => interval += SLOW_DOWN,
                "access_denied" => {
                    return Err(CliError::Local(format!(
                        "task {} was denied by its approver; nothing was run",
                        self.id
                    )));
                }
                "expired_token" => {
                    return Err(CliError::Local(format!(
                        "the request for task {} is over before it was approved; nothing was run",
                        self.id
                    )));
                }
                _ => return polled.and_then(|answer| Issued::parse(&answer)),
            }
        }
    }
}

/// An issued task credential.
struct Issued {
    id: String,
    token: String,
    access_tokens: BTreeMap<String, String>,
    granted: Vec<String>,
    dropped: Vec<(String, String)>,
    expires_at: Value,
}

impl Issued {
    fn parse(answer: &Value) -> Result<Issued, CliError> {
        let missing = |what: &str| CliError::BadResponse(format!("an issued task without {what}"));
        let id = answer["task"]["id"].as_str().ok_or_else(|| missing("id"))?;
        let token = answer["token"].as_str().ok_or_else(|| missing("token"))?;
        let mut access_tokens = BTreeMap::new();
        for entry in answer["access_tokens"].as_array().into_iter().flatten() {
            let (Some(resource), Some(jwt)) =
                (entry["resource"].as_str(), entry["access_token"].as_str())
            else {
                return Err(missing("a resource and token for each access token"));
            };
            access_tokens.insert(resource.to_owned(), jwt.to_owned());
        }
        let dropped = answer["dropped"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|d| (output::text(&d["grant"]), output::text(&d["reason"])))
            .collect();
        Ok(Issued {
            id: id.to_owned(),
            token: token.to_owned(),
            access_tokens,
            granted: strings(&answer["granted"]),
            dropped,
            expires_at: answer["task"]["expires_at"].clone(),
        })
    }

    /// One line for the person who ran `task run`.
    fn summary(&self) -> String {
        let mut line = format!(
            "task {}: granted {}",
            self.id,
            if self.granted.is_empty() {
                "nothing".to_owned()
            } else {
                self.granted.join(", ")
            }
        );
        if !self.dropped.is_empty() {
            let dropped: Vec<String> = self
                .dropped
                .iter()
                .map(|(grant, reason)| format!("{grant} ({reason})"))
                .collect();
            line.push_str(&format!("; dropped {}", dropped.join(", ")));
        }
        line.push_str(&format!("; expires {}", output::time(&self.expires_at)));
        line
    }

    /// Completes the task with its own credential, or, when that is
    /// refused, with the caller's.
    async fn complete(&self, task_client: &Client, caller: &Client) -> Result<(), CliError> {
        let path = format!("/v1/tasks/{}/complete", encode(&self.id));
        match task_client.call(Method::POST, &path, None).await {
            Ok(_) => Ok(()),
            Err(first) => match caller.call(Method::POST, &path, None).await {
                Ok(_) => Ok(()),
                Err(_) => Err(first),
            },
        }
    }

    /// The environment the command runs with.
    fn environment(&self, server: &str, key_path: &Path) -> Vec<(&'static str, String)> {
        let mut env = vec![
            ("LAISSEZ_URL", server.to_owned()),
            ("LAISSEZ_TOKEN", self.token.clone()),
            (KEY_VAR, key_path.display().to_string()),
            (TASK_ID_VAR, self.id.clone()),
            (
                TOKENS_VAR,
                serde_json::to_string(&self.access_tokens).unwrap_or_default(),
            ),
        ];
        if let [(_, jwt)] = self.access_tokens.iter().collect::<Vec<_>>().as_slice() {
            env.push((TOKEN_VAR, (*jwt).clone()));
        }
        env
    }
}

/// Says on stderr whether the task was completed.
fn report_completion(issued: &Issued, completed: &Result<(), CliError>) {
    match completed {
        Ok(()) => eprintln!("task {}: completed", issued.id),
        Err(error) => eprintln!(
            "error: could not complete task {id} ({error}); it ends by itself at {at}, or run `laissez task complete {id}`",
            id = issued.id,
            at = output::time(&issued.expires_at),
        ),
    }
}

/// Runs the command with the task's environment, passing SIGINT and
/// SIGTERM on to it; returns its exit code (128 + the signal that ended it).
async fn run_command(
    command: &[String],
    issued: &Issued,
    server: &str,
    key_path: &Path,
    signals: &mut Signals,
) -> Result<u8, CliError> {
    use std::os::unix::process::ExitStatusExt as _;

    let [program, arguments @ ..] = command else {
        return Err(CliError::Local("give the command to run after --".into()));
    };
    let mut child = std::process::Command::new(program);
    child
        .args(arguments)
        .envs(issued.environment(server, key_path));
    if issued.access_tokens.len() != 1 {
        child.env_remove(TOKEN_VAR);
    }
    let mut child = child
        .spawn()
        .map_err(|e| CliError::Local(format!("cannot run '{program}': {e}")))?;
    let pid = rustix::process::Pid::from_raw(i32::try_from(child.id()).unwrap_or(0));
    let waiting = tokio::task::spawn_blocking(move || child.wait());
    tokio::pin!(waiting);
    let status = loop {
        tokio::select! {
            status = &mut waiting => break status,
            signal = signals.next() => {
                if let Some(pid) = pid {
                    // The child may have exited already; then there is nobody to tell.
                    let _ = rustix::process::kill_process(pid, signal.forwarded());
                }
            }
        }
    };
    let status = status
        .map_err(|e| CliError::Local(format!("lost track of '{program}': {e}")))?
        .map_err(|e| CliError::Local(format!("lost track of '{program}': {e}")))?;
    Ok(match (status.code(), status.signal()) {
        (Some(code), _) => u8::try_from(code).unwrap_or(1),
        (None, Some(signal)) => u8::try_from(128 + signal).unwrap_or(1),
        (None, None) => 1,
    })
}

/// SIGINT and SIGTERM, caught for as long as this lives.
struct Signals {
    interrupt: Signal,
    terminate: Signal,
}

/// A caught signal.
#[derive(Clone, Copy, Debug)]
enum Caught {
    Interrupt,
    Terminate,
}

impl Signals {
    fn new() -> Result<Signals, CliError> {
        let catch =
            |kind| signal(kind).map_err(|e| CliError::Local(format!("cannot catch signals: {e}")));
        Ok(Signals {
            interrupt: catch(SignalKind::interrupt())?,
            terminate: catch(SignalKind::terminate())?,
        })
    }

    async fn next(&mut self) -> Caught {
        tokio::select! {
            _ = self.interrupt.recv() => Caught::Interrupt,
            _ = self.terminate.recv() => Caught::Terminate,
        }
    }
}

impl Caught {
    fn forwarded(self) -> rustix::process::Signal {
        match self {
            Caught::Interrupt => rustix::process::Signal::INT,
            Caught::Terminate => rustix::process::Signal::TERM,
        }
    }
}

impl std::fmt::Display for Caught {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Caught::Interrupt => "SIGINT",
            Caught::Terminate => "SIGTERM",
        })
    }
}

/// Writes `text` to a new file only its owner can read.
fn write_private(path: &Path, text: &str) -> Result<(), CliError> {
    use std::os::unix::fs::OpenOptionsExt as _;

    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut file| file.write_all(text.as_bytes()).map(|()| file))
        .map_err(|e| CliError::Local(format!("cannot write the key to {}: {e}", path.display())))?;
    file.flush()
        .map_err(|e| CliError::Local(format!("cannot write the key to {}: {e}", path.display())))
}

/// Prints a task for people.
fn print_task(task: &Value) {
    println!("task:     {}", output::text(&task["id"]));
    println!("status:   {}", output::text(&task["status"]));
    println!("agent:    {}", output::text(&task["agent"]));
    println!("grants:   {}", list(&task["grants"]));
    if !task["parent"].is_null() {
        println!("parent:   {}", output::text(&task["parent"]));
    }
    println!("issued:   {}", output::time(&task["issued_at"]));
    println!("expires:  {}", output::time(&task["expires_at"]));
    if !task["ended_at"].is_null() {
        println!("ended:    {}", output::time(&task["ended_at"]));
    }
    let approval = &task["approval"];
    if approval.is_object() {
        println!("approval: {}", list(&approval["reasons"]));
        match approval["decided_by"].as_str() {
            Some(by) => println!(
                "decided:  by {by} at {}",
                output::time(&approval["decided_at"])
            ),
            None => println!(
                "decided:  not yet (laissez approvals approve {})",
                output::text(&task["id"])
            ),
        }
    }
}

/// A JSON array of strings, as strings.
fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// A JSON array of strings as `a, b`, or `—`.
fn list(value: &Value) -> String {
    let items = strings(value);
    if items.is_empty() {
        "—".into()
    } else {
        items.join(", ")
    }
}

/// How much longer to wait between polls after `slow_down` (RFC 8628 §3.5).
const SLOW_DOWN: Duration = Duration::from_secs(5);
