//! `laissez gate`: the identity-aware proxy in front of one app.

use clap::Args;
use laissez_gate::{Gate, GateConfig, Rule};

use crate::error::CliError;

/// What the gate fronts.
#[derive(Args)]
pub struct GateArgs {
    /// The app's name (for logs and the metadata's resource_name).
    #[arg(long)]
    app: String,
    /// Where the app really is, e.g. http://127.0.0.1:3000.
    #[arg(long)]
    upstream: String,
    /// The address the gate listens on.
    #[arg(long, default_value = "127.0.0.1:8800")]
    listen: String,
    /// The public URL agents use to reach the gate (default: http:// and the listen address).
    #[arg(long)]
    resource: Option<String>,
    /// The Laissez authorization server (its issuer URL).
    #[arg(long, env = "LAISSEZ_URL", default_value = "http://127.0.0.1:8700")]
    issuer: String,
    /// A scope every request needs; repeat for several.
    #[arg(long = "scope")]
    scopes: Vec<String>,
    /// A route rule: "[METHOD] /path scope1,scope2" or "tool:NAME scope1,scope2"
    /// for one MCP tool; the first match wins.
    #[arg(long = "rule")]
    rules: Vec<String>,
    /// A Laissez token with the laissez-gate role: every decision goes to the audit log.
    #[arg(long, env = "LAISSEZ_GATE_TOKEN", hide_env_values = true)]
    audit_token: Option<String>,
    /// Send browsers without a token to sign in (the gate registers as a client).
    #[arg(long)]
    browser_login: bool,
    /// The account the app belongs to: only tokens whose consent granted it pass.
    #[arg(long)]
    account: Option<String>,
}

/// Runs the gate until Ctrl-C or SIGTERM.
pub async fn run(args: GateArgs) -> Result<(), CliError> {
    super::serve::init_logging();
    let upstream = args.upstream.parse().map_err(|e| {
        CliError::Local(format!("--upstream '{}' is not a URL: {e}", args.upstream))
    })?;
    let rules = args
        .rules
        .iter()
        .map(|r| Rule::parse(r))
        .collect::<Result<Vec<_>, _>>()
        .map_err(CliError::Local)?;
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .map_err(|e| CliError::Local(format!("cannot listen on {}: {e}", args.listen)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| CliError::Local(e.to_string()))?;
    let resource = args.resource.unwrap_or_else(|| format!("http://{addr}"));
    let resource = resource
        .parse()
        .map_err(|e| CliError::Local(format!("--resource '{resource}' is not a URL: {e}")))?;
    if let Some(account) = &args.account {
        laissez_core::Scope::parse(account)
            .ok()
            .filter(|s| s.account() == Some(account.as_str()))
            .ok_or_else(|| {
                CliError::Local(format!("--account '{account}' is not an account name"))
            })?;
    }
    let mut config = GateConfig::new(&args.app, resource, upstream, &args.issuer);
    config.default_scopes = args.scopes;
    config.rules = rules;
    config.audit_token = args.audit_token;
    config.browser_login = args.browser_login;
    config.account = args.account;
    let gate = Gate::new(config)
        .await
        .map_err(|e| CliError::Local(e.to_string()))?;
    println!("gate listening on http://{addr}");
    gate.serve(listener, super::serve::shutdown_signal())
        .await
        .map_err(|e| CliError::Local(format!("the gate stopped: {e}")))
}
