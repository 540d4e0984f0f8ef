//! `laissez gate`: the identity-aware proxy in front of one app.

use std::path::PathBuf;

use clap::Args;
use laissez_gate::{Gate, GateConfig, Rule};

use crate::error::CliError;

/// What the gate fronts.
#[derive(Args)]
pub struct GateArgs {
    /// The app's name. Without --upstream, its whole configuration is read
    /// from the protected resource of that name (`laissez resource add
    /// --upstream`), with --audit-token as the credential.
    #[arg(long)]
    app: String,
    /// Where the app really is, e.g. http://127.0.0.1:3000.
    #[arg(long)]
    upstream: Option<String>,
    /// The address the gate listens on (default: the stored one, else 127.0.0.1:8800).
    #[arg(long)]
    listen: Option<String>,
    /// The public URL agents use to reach the gate (default: http://, or
    /// https:// with --tls-cert, and the listen address).
    #[arg(long)]
    resource: Option<String>,
    #[command(flatten)]
    tls: super::serve::TlsArgs,
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
    /// What to do with credentials in request bodies.
    #[arg(long, default_value = "off", value_parser = ["off", "block", "redact", "report"])]
    dlp_request: String,
    /// What to do with credentials in response bodies.
    #[arg(long, default_value = "off", value_parser = ["off", "block", "redact", "report"])]
    dlp_response: String,
    /// The app is an OpenAI-compatible AI API: streamed completions are inspected as text.
    #[arg(long)]
    ai_api: bool,
    /// Forward paths with an encoded `/` or `\` (`%2F`, `%5C`), kept
    /// encoded; without it such requests get 400.
    #[arg(long)]
    allow_encoded_slash: bool,
    /// A proxy in front of the gate (an address or CIDR range) whose
    /// `X-Forwarded-*` and `Forwarded` headers are kept and appended to;
    /// repeat for several. From anyone else they are replaced.
    #[arg(long = "trusted-proxy", value_parser = parse_net)]
    trusted_proxies: Vec<ipnet::IpNet>,
    /// Accept only DPoP-bound access tokens (RFC 9449); bearer tokens get 401.
    #[arg(long)]
    require_dpop: bool,
    /// DPoP proofs must carry this gate's nonce (served as `DPoP-Nonce`).
    #[arg(long)]
    dpop_nonce: bool,
    /// Serve /healthz, /readyz and /metrics on this address, apart from the
    /// app's paths (e.g. 127.0.0.1:9800; keep it off public interfaces).
    #[arg(long, value_name = "ADDR")]
    ops_listen: Option<String>,
    /// The gate is unready (503 at /readyz) when its revocation feed was
    /// last read longer ago than this (e.g. 90s, the default).
    #[arg(long, value_name = "DURATION", value_parser = crate::client::parse_timeout)]
    ready_max_feed_age: Option<std::time::Duration>,
    /// Convert the app's HTML to Markdown for requests that ask for
    /// `Accept: text/markdown` (DLP reads the converted text).
    #[arg(long)]
    markdown_for_agents: bool,
    /// Trust the CA certificates in this PEM file for the issuer's https
    /// certificate too (an issuer on a private PKI).
    #[arg(long, value_name = "FILE")]
    issuer_ca: Option<PathBuf>,
    #[command(flatten)]
    log: super::serve::LogArgs,
    /// Read settings from this TOML file too ([serve] and [gate] tables,
    /// keys named like the flags); flags and environment variables win.
    #[arg(long, env = "LAISSEZ_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
}

/// An address or CIDR range.
fn parse_net(text: &str) -> Result<ipnet::IpNet, String> {
    text.parse::<ipnet::IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("'{text}' is neither an IP address nor a CIDR range"))
}

/// The stored configuration of the app named `name`.
async fn stored(args: &GateArgs) -> Result<laissez_oauth::protected::ProtectedResource, CliError> {
    let token = args.audit_token.as_deref().ok_or_else(|| {
        CliError::Local(
            "without --upstream the gate reads its configuration from the server: pass --audit-token (a token with the laissez-gate role)".into(),
        )
    })?;
    let url = format!("{}/v1/resources", args.issuer.trim_end_matches('/'));
    // Bounded like every CLI request: a server that never answers must not
    // hang the gate's start.
    let http = reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(10))
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .map_err(|e| CliError::Local(format!("cannot set up HTTP: {e}")))?;
    let response = http
        .get(&url)
        .bearer_auth(token)
        .send()
        .await
        .map_err(|e| CliError::Local(format!("cannot reach {url}: {e}")))?;
    if !response.status().is_success() {
        return Err(CliError::Local(format!(
            "{url} answered {}; does --audit-token hold the laissez-gate role?",
            response.status()
        )));
    }
    let resources: Vec<laissez_oauth::protected::ProtectedResource> = response
        .json()
        .await
        .map_err(|e| CliError::Local(format!("{url}: {e}")))?;
    resources
        .into_iter()
        .find(|r| r.name == args.app && r.gate.is_some())
        .ok_or_else(|| {
            CliError::Local(format!(
                "no protected resource named '{}' has a gate configuration; add one with `laissez resource add --upstream`",
                args.app
            ))
        })
}

/// Runs the gate until Ctrl-C or SIGTERM.
pub async fn run(args: GateArgs) -> Result<(), CliError> {
    super::serve::init_logging(&args.log);
    if let Some(path) = &args.config {
        tracing::info!(config = %path.display(), "settings read from the configuration file too");
    }
    let tls = args.tls.load()?;
    super::serve::reload_on_hangup(tls.clone());
    let Some(upstream_text) = args.upstream.clone() else {
        let resource = stored(&args).await?;
        let mut config =
            GateConfig::from_resource(&resource, &args.issuer).map_err(CliError::Local)?;
        config.audit_token = args.audit_token.clone();
        config.allow_encoded_slash = args.allow_encoded_slash;
        config.trusted_proxies = args.trusted_proxies.clone();
        config.require_dpop |= args.require_dpop;
        config.dpop_nonce |= args.dpop_nonce;
        args.operations(&mut config)?;
        let listen = args
            .listen
            .clone()
            .or_else(|| resource.gate.and_then(|g| g.listen))
            .unwrap_or_else(|| "127.0.0.1:8800".into());
        let ops = args.ops_listener().await?;
        return start(config, &listen, tls, ops).await;
    };
    let upstream = upstream_text
        .parse()
        .map_err(|e| CliError::Local(format!("--upstream '{upstream_text}' is not a URL: {e}")))?;
    let listen = args
        .listen
        .clone()
        .unwrap_or_else(|| "127.0.0.1:8800".into());
    let rules = args
        .rules
        .iter()
        .map(|r| Rule::parse(r))
        .collect::<Result<Vec<_>, _>>()
        .map_err(CliError::Local)?;
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .map_err(|e| CliError::Local(format!("cannot listen on {listen}: {e}")))?;
    let ops = args.ops_listener().await?;
    let addr = listener
        .local_addr()
        .map_err(|e| CliError::Local(e.to_string()))?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let resource = args
        .resource
        .clone()
        .unwrap_or_else(|| format!("{scheme}://{addr}"));
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
    args.operations(&mut config)?;
    config.default_scopes = args.scopes;
    config.rules = rules;
    config.audit_token = args.audit_token;
    config.browser_login = args.browser_login;
    config.account = args.account;
    config.allow_encoded_slash = args.allow_encoded_slash;
    config.trusted_proxies = args.trusted_proxies;
    config.require_dpop = args.require_dpop;
    config.dpop_nonce = args.dpop_nonce;
    config.dlp = laissez_gate::dlp::DlpSettings {
        request: laissez_gate::dlp::DlpAction::parse(&args.dlp_request).map_err(CliError::Local)?,
        response: laissez_gate::dlp::DlpAction::parse(&args.dlp_response)
            .map_err(CliError::Local)?,
        ai_api: args.ai_api,
    };
    serve_gate(config, listener, tls, ops).await
}

impl GateArgs {
    /// The operations settings, on either way of configuring the gate.
    fn operations(&self, config: &mut GateConfig) -> Result<(), CliError> {
        if let Some(age) = self.ready_max_feed_age {
            config.feed_max_age = age;
        }
        config.markdown_for_agents |= self.markdown_for_agents;
        if let Some(path) = &self.issuer_ca {
            let pem = std::fs::read(path)
                .map_err(|e| CliError::Local(format!("--issuer-ca {}: {e}", path.display())))?;
            config.issuer_ca = Some(pem);
            // Checked now, so a wrong file stops the start with one line.
            let _checked = config
                .issuer_client()
                .map_err(|e| CliError::Local(format!("--issuer-ca {}: {e}", path.display())))?;
        }
        Ok(())
    }

    /// The ops listener, bound now so that a wrong address stops the start.
    async fn ops_listener(&self) -> Result<Option<tokio::net::TcpListener>, CliError> {
        let Some(addr) = &self.ops_listen else {
            return Ok(None);
        };
        tokio::net::TcpListener::bind(addr)
            .await
            .map(Some)
            .map_err(|e| CliError::Local(format!("cannot listen on --ops-listen {addr}: {e}")))
    }
}

async fn start(
    config: GateConfig,
    listen: &str,
    tls: Option<laissez_tls::Tls>,
    ops: Option<tokio::net::TcpListener>,
) -> Result<(), CliError> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| CliError::Local(format!("cannot listen on {listen}: {e}")))?;
    serve_gate(config, listener, tls, ops).await
}

async fn serve_gate(
    config: GateConfig,
    listener: tokio::net::TcpListener,
    tls: Option<laissez_tls::Tls>,
    ops: Option<tokio::net::TcpListener>,
) -> Result<(), CliError> {
    let addr = listener
        .local_addr()
        .map_err(|e| CliError::Local(e.to_string()))?;
    let gate = Gate::new(config)
        .await
        .map_err(|e| CliError::Local(e.to_string()))?;
    if let Some(ops) = ops {
        let ops_addr = ops
            .local_addr()
            .map_err(|e| CliError::Local(e.to_string()))?;
        announce!("gate operations (healthz, readyz, metrics) on http://{ops_addr}");
        let gate = gate.clone();
        tokio::spawn(async move {
            if let Err(error) = gate.serve_ops(ops, super::serve::shutdown_signal()).await {
                tracing::error!(%error, "the operations listener stopped");
            }
        });
    }
    let shutdown = super::serve::shutdown_signal();
    let served = match tls {
        None => {
            announce!("gate listening on http://{addr}");
            gate.serve(listener, shutdown).await
        }
        Some(tls) => {
            announce!("gate listening on https://{addr}");
            gate.serve_tls(listener, tls, shutdown).await
        }
    };
    served.map_err(|e| CliError::Local(format!("the gate stopped: {e}")))
}
