//! `laissez`: the Laissez server (`laissez serve`) and its admin CLI in one
//! binary. This file declares the command line and dispatches; each command
//! group lives in its own module under `commands`.

mod client;
/// Prints a line for whoever started a long-running command; a closed
/// stdout (a supervisor that stopped reading) must not stop the server.
macro_rules! announce {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

mod commands;
mod config;
mod dpop;
mod error;
mod output;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, FromArgMatches, Parser, Subcommand};

use crate::client::Client;
use crate::error::CliError;

/// Identity for AI agents and every other non-human identity.
#[derive(Parser)]
#[command(name = "laissez", version, about, propagate_version = true)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

/// Options shared by the client commands.
#[derive(Args, Clone)]
pub struct Global {
    /// The server's URL (`127.0.0.1:8700` alone means http, for loopback only).
    #[arg(
        long,
        global = true,
        env = "LAISSEZ_URL",
        default_value = "http://127.0.0.1:8700"
    )]
    server: String,
    /// The token to present (default: DATA/admin-token beside a local server).
    #[arg(long, global = true, env = "LAISSEZ_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// The data folder whose admin token is used when no token is given.
    #[arg(
        long,
        global = true,
        env = "LAISSEZ_DATA",
        default_value = "laissez-data"
    )]
    data: PathBuf,
    /// Give up on a request to the server after this long (30s, 2m, 500ms).
    #[arg(long, global = true, env = "LAISSEZ_TIMEOUT", default_value = "30s",
        value_parser = client::parse_timeout)]
    timeout: Duration,
    /// Print machine-readable JSON (errors too, on stderr).
    #[arg(long, global = true)]
    json: bool,
}

impl Global {
    /// A client of --server with the token from --token, LAISSEZ_TOKEN or
    /// DATA/admin-token.
    pub fn client(&self) -> Result<Client, CliError> {
        self.client_at(&client::server_url(&self.server)?)
    }

    /// A client of another server (checked URL) with the same token, sent
    /// with proofs of the key in `LAISSEZ_DPOP_KEY` when that is set.
    pub fn client_at(&self, base: &str) -> Result<Client, CliError> {
        let key = dpop::key_from_env()?;
        Ok(Client::new(base, self.token()?, self.timeout)?.with_proof_key(key))
    }

    /// The token from --token, LAISSEZ_TOKEN or DATA/admin-token. A token
    /// given but empty is an error, not a reason to fall back to the admin
    /// token: `LAISSEZ_TOKEN="$T"` with a `$T` that failed to be made must
    /// not quietly run as the administrator.
    pub fn token(&self) -> Result<String, CliError> {
        let token = match &self.token {
            Some(token) if token.trim().is_empty() => return Err(CliError::EmptyToken),
            Some(token) => token.trim().to_owned(),
            None => {
                let path = self.data.join(laissez_server::bootstrap::ADMIN_TOKEN_FILE);
                std::fs::read_to_string(&path)
                    .map(|t| t.trim().to_owned())
                    .map_err(|_| CliError::NoToken(path.display().to_string()))?
            }
        };
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(CliError::Local(
                "the token holds spaces or characters no Laissez token has; pass it exactly as it was issued".into(),
            ));
        }
        Ok(token)
    }
}

#[derive(Subcommand)]
enum Command {
    /// Run the server on an embedded SQLite store in the data folder.
    Serve(commands::serve::ServeArgs),
    /// Make an HTTP request as an agent: follow WWW-Authenticate through
    /// discovery, registration and your consent, then cache the tokens.
    Fetch(commands::fetch::FetchArgs),
    /// Run the identity-aware gate in front of one app.
    Gate(commands::gate::GateArgs),
    /// Manage users (humans).
    #[command(subcommand)]
    User(commands::principals::UserCommand),
    /// Manage services (scripts, CI jobs), each owned by a user.
    #[command(subcommand)]
    Service(commands::principals::OwnedCommand),
    /// Manage agents (AI agents, OAuth clients), each owned by a user.
    #[command(subcommand)]
    Agent(commands::principals::OwnedCommand),
    /// Issue, list, roll, revoke and check tokens.
    #[command(subcommand)]
    Token(commands::tokens::TokenCommand),
    /// Define roles (named sets of permissions).
    #[command(subcommand)]
    Role(commands::policies::RoleCommand),
    /// Grant roles on scopes (principal + role + scope).
    #[command(subcommand)]
    Policy(commands::policies::PolicyCommand),
    /// Ask whether a principal may use a permission on a resource.
    /// Exits 0 on allow and 1 on deny.
    Check(commands::policies::CheckArgs),
    /// Read, verify and export the audit log.
    #[command(subcommand)]
    Audit(commands::audit::AuditCommand),
    /// OAuth applications: register, list, and those users let act for them.
    #[command(subcommand)]
    App(commands::apps::AppCommand),
    /// Protected resources: apps behind gates, their scopes in plain words.
    #[command(subcommand)]
    Resource(commands::resources::ResourceCommand),
    /// Report risky identities and credentials.
    Hygiene(commands::org::HygieneArgs),
    /// Show or change organization settings (token lifetimes).
    #[command(subcommand)]
    Settings(commands::org::SettingsCommand),
    /// Show who the presented token is: principal, owner, chain, scope, expiry.
    Whoami,
    /// Find credentials in files, directories, stdin (`-`), git history
    /// (--git) or staged changes (--staged). Exits 0 when nothing is found,
    /// 1 when something is, 2 on error.
    Scan(commands::scan::ScanCommand),
    /// Leaked credentials the intake recorded: where, and what was done.
    #[command(subcommand)]
    Leaks(commands::leaks::LeaksCommand),
    /// Task credentials: run a command with one, list, show and complete them.
    #[command(subcommand)]
    Task(commands::tasks::TaskCommand),
    /// Tasks waiting for a person: list, show, approve (possibly narrower), deny.
    #[command(subcommand)]
    Approvals(commands::tasks::ApprovalsCommand),
    /// Copy an embedded deployment's data folder (database as of one commit,
    /// checked; signing keys; admin token) into a new folder, while its
    /// server runs.
    Backup(commands::backup::BackupArgs),
    /// Make a new data folder from a backup (then `laissez serve --data` it).
    Restore(commands::backup::RestoreArgs),
    /// Configuration files for serve and gate: check one.
    #[command(subcommand)]
    Config(commands::package::ConfigCommand),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(commands::package::CompletionsArgs),
    /// Write man pages, one per command, into a folder.
    Man(commands::package::ManArgs),
}

async fn run(cli: Cli) -> Result<(), CliError> {
    let global = cli.global;
    match cli.command {
        Command::Serve(args) => commands::serve::run(args).await,
        Command::Gate(args) => commands::gate::run(args).await,
        Command::Fetch(args) => commands::fetch::run(args).await,
        Command::User(command) => commands::principals::user(&global, command).await,
        Command::Service(command) => commands::principals::owned(&global, "service", command).await,
        Command::Agent(command) => commands::principals::owned(&global, "agent", command).await,
        Command::Token(command) => commands::tokens::run(&global, command).await,
        Command::Role(command) => commands::policies::role(&global, command).await,
        Command::Policy(command) => commands::policies::policy(&global, command).await,
        Command::Check(args) => commands::policies::check(&global, args).await,
        Command::Audit(command) => commands::audit::run(&global, command).await,
        Command::App(command) => commands::apps::run(&global, command).await,
        Command::Resource(command) => commands::resources::run(&global, command).await,
        Command::Hygiene(args) => commands::org::hygiene(&global, args).await,
        Command::Settings(command) => commands::org::settings(&global, command).await,
        Command::Whoami => commands::org::whoami(&global).await,
        Command::Leaks(command) => commands::leaks::run(&global, command).await,
        Command::Task(command) => commands::tasks::task(&global, command).await,
        Command::Approvals(command) => commands::tasks::approvals(&global, command).await,
        Command::Backup(args) => commands::backup::backup(args, global.json),
        Command::Restore(args) => commands::backup::restore(args, global.json),
        Command::Config(command) => commands::package::config(command),
        Command::Completions(args) => commands::package::completions(args),
        Command::Man(args) => commands::package::man(args),
        Command::Scan(_) => unreachable!("scan is dispatched by main for its exit status"),
    }
}

/// Prints `error` on stderr: one line, or a JSON document in `--json` mode.
fn report(error: &CliError, json: bool) {
    if json {
        eprintln!(
            "{}",
            serde_json::to_string(&error.to_json()).unwrap_or_default()
        );
    } else {
        eprintln!("error: {error}");
    }
}

fn main() -> ExitCode {
    // With --config (or LAISSEZ_CONFIG), serve and gate read the file's
    // settings too; a wrong file is one line and exit 1, like any error.
    let parsed = config::parse_args::<Cli>(std::env::args_os().collect())
        .map_err(|e| CliError::Local(e.to_string()))
        .and_then(|matches| {
            Cli::from_arg_matches(&matches).map_err(|e| CliError::Local(e.to_string()))
        });
    let cli = match parsed {
        Ok(cli) => cli,
        Err(error) => {
            report(&error, std::env::args().any(|a| a == "--json"));
            return ExitCode::FAILURE;
        }
    };
    let json = cli.global.json;
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            report(
                &CliError::Local(format!("cannot start the async runtime: {e}")),
                json,
            );
            return ExitCode::FAILURE;
        }
    };
    if let Command::Scan(command) = cli.command {
        // 0: nothing found, 1: something found, 2: the scan could not run.
        return match runtime.block_on(commands::scan::run(&cli.global, command)) {
            Ok(false) => ExitCode::SUCCESS,
            Ok(true) => ExitCode::from(1),
            Err(error) => {
                report(&error, json);
                ExitCode::from(2)
            }
        };
    }
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError::Denied) => ExitCode::FAILURE,
        Err(CliError::Exited(code)) => ExitCode::from(code),
        Err(error) => {
            report(&error, json);
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    /// A subcommand's argument with the id of a global option takes its
    /// place: `fetch -d` once panicked on every call, and `token revoke
    /// SECRET` presented the secret as the caller's own token.
    #[test]
    fn no_argument_shadows_a_global_option() {
        fn walk(command: &clap::Command, path: &str, globals: &[&str], clashes: &mut Vec<String>) {
            for arg in command.get_arguments() {
                let id = arg.get_id().as_str();
                // `serve --data` is the same data folder, by design.
                let same_meaning = id == "data" && path == "laissez serve";
                if globals.contains(&id) && !arg.is_global_set() && !same_meaning {
                    clashes.push(format!("{path} {id}"));
                }
            }
            for sub in command.get_subcommands() {
                walk(sub, &format!("{path} {}", sub.get_name()), globals, clashes);
            }
        }
        let command = Cli::command();
        let globals: Vec<&str> = command
            .get_arguments()
            .filter(|a| a.is_global_set())
            .map(|a| a.get_id().as_str())
            .collect();
        assert!(globals.contains(&"token") && globals.contains(&"data"));
        let mut clashes = Vec::new();
        for sub in command.get_subcommands() {
            walk(
                sub,
                &format!("laissez {}", sub.get_name()),
                &globals,
                &mut clashes,
            );
        }
        assert!(
            clashes.is_empty(),
            "arguments shadowing global options: {clashes:?}"
        );
        command.debug_assert();
    }
}
