//! `laissez serve`: the server on its data folder until Ctrl-C or SIGTERM.

use std::path::PathBuf;

use clap::Args;
use laissez_server::Bootstrapped;
use tracing_subscriber::EnvFilter;

use crate::error::CliError;

/// Where the server keeps its data and listens.
#[derive(Args)]
pub struct ServeArgs {
    /// The data folder (created on first start).
    #[arg(long, env = "LAISSEZ_DATA", default_value = "laissez-data")]
    data: PathBuf,
    /// How long a self-registered OAuth client that never obtained a token
    /// is kept (e.g. 24h, the default).
    #[arg(long, value_parser = laissez_core::ttl::Ttl::parse)]
    unused_client_ttl: Option<laissez_core::ttl::Ttl>,
    /// Intent rules for task credentials: a TOML file of `[[rule]]` tables
    /// (phrases or a pattern mapped to permissions on resource templates).
    #[arg(long)]
    intent_rules: Option<PathBuf>,
    /// The address to listen on.
    #[arg(long, env = "LAISSEZ_LISTEN", default_value = "127.0.0.1:8700")]
    listen: String,
    /// The public URL clients reach the server at; it is the OAuth issuer
    /// (default: http://, or https:// with --tls-cert, and the listen address).
    #[arg(long, env = "LAISSEZ_ISSUER")]
    issuer: Option<String>,
    #[command(flatten)]
    tls: TlsArgs,
    /// Fetch Client ID Metadata Documents under an https prefix from another
    /// URL instead ("https://app.example/=http://127.0.0.1:9000/"); repeatable.
    #[arg(long = "client-metadata-map")]
    client_metadata_map: Vec<String>,
    /// The organization's upstream OpenID Connect provider (its issuer URL):
    /// people of every account may sign in through it.
    #[arg(long, env = "LAISSEZ_OIDC_ISSUER", requires = "oidc_client_id")]
    oidc_issuer: Option<String>,
    /// Laissez's client id at the upstream provider.
    #[arg(long, env = "LAISSEZ_OIDC_CLIENT_ID", requires = "oidc_issuer")]
    oidc_client_id: Option<String>,
    /// A file holding Laissez's client secret at the upstream provider
    /// (or set LAISSEZ_OIDC_CLIENT_SECRET).
    #[arg(long)]
    oidc_client_secret_file: Option<PathBuf>,
    /// The name on the sign-in button.
    #[arg(long, default_value = "your organization's identity provider")]
    oidc_name: String,
    /// The ID token claim that names a person's Laissez user on first sign-in.
    #[arg(long, default_value = "preferred_username")]
    oidc_username_claim: String,
    /// Create a Laissez user on first sign-in when none has that name.
    #[arg(long)]
    oidc_create_users: bool,
    /// Accept leak reports signed by GitHub's secret scanning, verified with
    /// the keys in this file or at this URL (GitHub publishes them at
    /// https://api.github.com/meta/public_keys/secret_scanning).
    #[arg(long, env = "LAISSEZ_GITHUB_KEYS")]
    github_keys: Option<String>,
    /// POST each leak incident to this URL, signed with the secret in
    /// --leak-webhook-secret-file (or LAISSEZ_LEAK_WEBHOOK_SECRET).
    #[arg(long, env = "LAISSEZ_LEAK_WEBHOOK")]
    leak_webhook: Option<String>,
    /// A file holding the leak webhook's signing secret.
    #[arg(long)]
    leak_webhook_secret_file: Option<PathBuf>,
    /// Email the owner of each leaked credential through this SMTP server
    /// (smtp://host:port, or smtps:// for TLS).
    #[arg(long, env = "LAISSEZ_SMTP", requires = "smtp_from")]
    smtp: Option<String>,
    /// The sender address of leak emails.
    #[arg(long, env = "LAISSEZ_SMTP_FROM")]
    smtp_from: Option<String>,
    /// Stream every audit record to this URL as it is written: POSTed in
    /// batches, in order, at least once, signed with the secret in
    /// --audit-webhook-secret-file (or LAISSEZ_AUDIT_WEBHOOK_SECRET).
    #[arg(long, env = "LAISSEZ_AUDIT_WEBHOOK")]
    audit_webhook: Option<String>,
    /// A file holding the audit webhook's signing secret.
    #[arg(long)]
    audit_webhook_secret_file: Option<PathBuf>,
    /// Stream every audit record to a syslog collector at tcp://host:port
    /// (RFC 5424, octet-counted framing, facility authpriv).
    #[arg(long, env = "LAISSEZ_AUDIT_SYSLOG", value_name = "tcp://HOST:PORT")]
    audit_syslog: Option<String>,
    /// How often each person gets a hygiene digest of what they answer for
    /// (through --leak-webhook and --smtp), e.g. 7d; 0s turns it off.
    #[arg(long, default_value = "7d", value_name = "DURATION")]
    hygiene_digest_every: String,
    /// Write a new admin token to DATA/admin-token (audited) and exit: the
    /// way back in when the bootstrap token expired or was lost. Needs the
    /// data folder, nothing else; a running server accepts the new token at
    /// once.
    #[arg(long)]
    reset_admin_token: bool,
    #[command(flatten)]
    log: LogArgs,
    /// Read settings from this TOML file too ([serve] and [gate] tables,
    /// keys named like the flags); flags and environment variables win.
    #[arg(long, env = "LAISSEZ_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
}

/// How a long-running command (`serve`, `gate`) logs.
#[derive(Args, Clone, Debug)]
pub struct LogArgs {
    /// Log lines on stderr as `text`, or as `json` (one object a line, for
    /// log shippers). Which lines: LAISSEZ_LOG (an EnvFilter, default info).
    #[arg(long, env = "LAISSEZ_LOG_FORMAT", default_value = "text",
        value_parser = ["text", "json"])]
    log_format: String,
}

/// Native TLS for a listener (`serve`, `gate`), with optional client
/// certificates (RFC 8705).
#[derive(Args, Clone, Debug, Default)]
pub struct TlsArgs {
    /// Serve HTTPS with this certificate chain (PEM, leaf first); needs --tls-key.
    #[arg(long, value_name = "FILE")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, value_name = "FILE")]
    tls_key: Option<PathBuf>,
    /// Ask clients for a certificate (without requiring one) and accept
    /// those issued by a CA in this file (PEM); others fail the handshake.
    #[arg(long, value_name = "FILE")]
    tls_client_ca: Option<PathBuf>,
    /// Accept any client certificate, self-signed included, whose key the
    /// client proves in the handshake (RFC 8705 self_signed_tls_client_auth).
    #[arg(long)]
    tls_self_signed_clients: bool,
}

impl TlsArgs {
    /// The listener's TLS, read and checked now so that a wrong file stops
    /// the start before anything listens; `None` without --tls-cert.
    pub fn load(&self) -> Result<Option<laissez_tls::Tls>, CliError> {
        let (cert, key) = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => (cert.clone(), key.clone()),
            (None, None) if self.tls_client_ca.is_none() && !self.tls_self_signed_clients => {
                return Ok(None);
            }
            (Some(_), None) => return Err(CliError::Local("--tls-cert needs --tls-key".into())),
            (None, Some(_)) => return Err(CliError::Local("--tls-key needs --tls-cert".into())),
            (None, None) => {
                return Err(CliError::Local(
                    "client certificates need TLS: pass --tls-cert and --tls-key".into(),
                ));
            }
        };
        let files = laissez_tls::TlsFiles {
            cert,
            key,
            client_ca: self.tls_client_ca.clone(),
            self_signed_clients: self.tls_self_signed_clients,
        };
        laissez_tls::Tls::load(&files)
            .map(Some)
            .map_err(|e| CliError::Local(e.to_string()))
    }
}

fn notify_config(
    args: &ServeArgs,
) -> Result<laissez_server::leaks::notify::NotifyConfig, CliError> {
    let webhook = match &args.leak_webhook {
        None => None,
        Some(url) => Some(signed_webhook(
            url,
            args.leak_webhook_secret_file.as_deref(),
            "--leak-webhook",
            "LAISSEZ_LEAK_WEBHOOK_SECRET",
        )?),
    };
    let smtp = match (&args.smtp, &args.smtp_from) {
        (Some(url), Some(from)) => Some((url.clone(), from.clone())),
        _ => None,
    };
    Ok(laissez_server::leaks::notify::NotifyConfig {
        webhook,
        smtp,
        issuer: String::new(),
    })
}

/// A webhook URL (`flag`) and its signing secret, from `file` or else the
/// environment variable `env`: an http(s) URL, a secret of 16 characters
/// or more.
fn signed_webhook(
    url: &str,
    file: Option<&std::path::Path>,
    flag: &str,
    env: &str,
) -> Result<(String, String), CliError> {
    let secret = secret(
        file,
        env,
        &format!("{flag} needs a signing secret: pass {flag}-secret-file or set {env}"),
    )?;
    if secret.len() < 16 {
        return Err(CliError::Local(format!(
            "the {flag} secret must be at least 16 characters"
        )));
    }
    if !url.starts_with("https://") && !url.starts_with("http://") {
        return Err(CliError::Local(format!(
            "{flag} '{url}' must be an http(s) URL"
        )));
    }
    Ok((url.to_owned(), secret))
}

/// `--hygiene-digest-every`: a duration, or `0s` for never.
fn digest_interval(text: &str) -> Result<i64, CliError> {
    if matches!(text, "0" | "0s" | "off") {
        return Ok(0);
    }
    laissez_core::ttl::Ttl::parse(text)
        .map(|t| t.seconds())
        .map_err(|e| CliError::Local(format!("--hygiene-digest-every {text}: {e}")))
}

/// Where audit records are streamed.
fn audit_stream(args: &ServeArgs) -> Result<laissez_server::audit_stream::StreamConfig, CliError> {
    let webhook = match &args.audit_webhook {
        None => None,
        Some(url) => Some(signed_webhook(
            url,
            args.audit_webhook_secret_file.as_deref(),
            "--audit-webhook",
            "LAISSEZ_AUDIT_WEBHOOK_SECRET",
        )?),
    };
    let syslog = match &args.audit_syslog {
        None => None,
        Some(target) => Some(
            laissez_server::audit_stream::syslog::parse_target(target)
                .map_err(|e| CliError::Local(e.to_string()))?,
        ),
    };
    Ok(laissez_server::audit_stream::StreamConfig {
        webhook,
        syslog,
        hostname: String::new(),
    })
}

/// A secret from a file (trimmed) or else the environment variable `env`;
/// `missing` is the error when neither is given.
fn secret(file: Option<&std::path::Path>, env: &str, missing: &str) -> Result<String, CliError> {
    match (file, std::env::var(env)) {
        (Some(path), _) => Ok(std::fs::read_to_string(path)
            .map_err(|e| CliError::Local(format!("{}: {e}", path.display())))?
            .trim()
            .to_owned()),
        (None, Ok(secret)) => Ok(secret),
        (None, Err(_)) => Err(CliError::Local(missing.to_owned())),
    }
}

fn upstream(
    args: &ServeArgs,
) -> Result<Option<laissez_server::web::federation::UpstreamConfig>, CliError> {
    let (Some(issuer), Some(client_id)) = (&args.oidc_issuer, &args.oidc_client_id) else {
        return Ok(None);
    };
    let client_secret = secret(
        args.oidc_client_secret_file.as_deref(),
        "LAISSEZ_OIDC_CLIENT_SECRET",
        "--oidc-issuer needs a client secret: pass --oidc-client-secret-file or set LAISSEZ_OIDC_CLIENT_SECRET",
    )?;
    use laissez_server::web::federation::IssuerTransport;
    match IssuerTransport::of(issuer) {
        IssuerTransport::Https | IssuerTransport::LoopbackHttp => {}
        IssuerTransport::PlainHttp => {
            return Err(CliError::Local(format!(
                "--oidc-issuer '{issuer}' must be https: ID tokens and the client secret would cross the network in clear (http is accepted for loopback only)"
            )));
        }
        IssuerTransport::Invalid => {
            return Err(CliError::Local(format!(
                "--oidc-issuer '{issuer}' must be an https URL without a query"
            )));
        }
    }
    Ok(Some(laissez_server::web::federation::UpstreamConfig {
        issuer: issuer.clone(),
        client_id: client_id.clone(),
        client_secret,
        display_name: args.oidc_name.clone(),
        username_claim: args.oidc_username_claim.clone(),
        create_users: args.oidc_create_users,
    }))
}

/// Runs the server.
pub async fn run(args: ServeArgs) -> Result<(), CliError> {
    init_logging(&args.log);
    if let Some(path) = &args.config {
        tracing::info!(config = %path.display(), "settings read from the configuration file too");
    }
    if args.reset_admin_token {
        return reset_admin_token(&args.data).await;
    }
    let mut mappings = Vec::new();
    for mapping in &args.client_metadata_map {
        let (from, to) = mapping.split_once('=').ok_or_else(|| {
            CliError::Local(format!(
                "--client-metadata-map '{mapping}' must be https://PREFIX=URL"
            ))
        })?;
        if !from.starts_with("https://") {
            return Err(CliError::Local(format!(
                "--client-metadata-map '{mapping}': the prefix must start with https://"
            )));
        }
        mappings.push((from.to_owned(), to.to_owned()));
    }
    let tls = args.tls.load()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    reload_on_hangup(tls.clone());
    let upstream = upstream(&args)?;
    if let Some(config) = &upstream {
        // Said now rather than at the first sign-in; the server still starts,
        // so it can serve everything else while the provider is down.
        let probe = laissez_server::web::federation::Federation::new(config.clone());
        if let Err(error) = probe.discover().await {
            tracing::warn!(
                issuer = %config.issuer,
                "the OpenID Connect provider cannot be used: {error}; sign-in through it will fail until it can"
            );
        }
    }
    let options = laissez_server::run::Options {
        issuer: args.issuer.clone(),
        tls,
        metadata_document_mappings: mappings,
        upstream,
        github_keys: args.github_keys.clone(),
        notify: notify_config(&args)?,
        audit_stream: audit_stream(&args)?,
        hygiene_digest_every: Some(digest_interval(&args.hygiene_digest_every)?),
        limits: Default::default(),
        unused_client_ttl: args.unused_client_ttl.map(|ttl| ttl.seconds()),
        intent_rules: match &args.intent_rules {
            Some(path) => Some(intent_rules(path)?),
            None => None,
        },
    };
    let started = laissez_server::run::start(&args.data, &args.listen, &options).await?;
    if let Bootstrapped::Created(path) = &started.bootstrapped {
        announce!(
            "created admin user 'admin'; its token is in {} (mode 0600, shown nowhere else)",
            path.display()
        );
    }
    announce!("listening on {scheme}://{}", started.addr);
    for (app, addr) in &started.gates {
        announce!("gate {app} listening on http://{addr}");
    }
    started
        .serve(shutdown_signal())
        .await
        .map_err(|e| CliError::Local(format!("the server stopped: {e}")))?;
    tracing::info!("stopped");
    Ok(())
}

/// `serve --reset-admin-token`: a new admin token in the data folder.
async fn reset_admin_token(data: &std::path::Path) -> Result<(), CliError> {
    let database = data.join(laissez_server::run::DATABASE_FILE);
    if !database.exists() {
        return Err(CliError::Local(format!(
            "{} holds no Laissez store; start `laissez serve --data {}` once to create it",
            data.display(),
            data.display()
        )));
    }
    let store = laissez_store::sqlite::SqliteStore::open(&database)
        .map_err(|e| CliError::Local(format!("cannot open {}: {e}", database.display())))?;
    let path = laissez_server::bootstrap::reset_admin_token(
        &store,
        &laissez_token::Namespace::default(),
        data,
    )
    .await
    .map_err(|e| CliError::Local(e.to_string()))?;
    announce!(
        "wrote a new token for user '{}' to {} (mode 0600, shown nowhere else); other tokens are unchanged",
        laissez_server::bootstrap::ADMIN_NAME,
        path.display()
    );
    Ok(())
}

/// Logs to stderr at the level in `LAISSEZ_LOG` (default `info`), as text
/// (coloured only when stderr is a terminal) or JSON lines.
pub fn init_logging(log: &LogArgs) {
    use std::io::IsTerminal;
    let filter = EnvFilter::try_from_env("LAISSEZ_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if log.log_format == "json" {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .init();
    } else {
        builder.with_ansi(std::io::stderr().is_terminal()).init();
    }
}

/// On each SIGHUP, reads the listener's certificate and key again (new
/// handshakes get the new pair); a pair that does not load is logged and
/// the old one kept. Without TLS a SIGHUP is logged and ignored (it does
/// not stop the process, so `systemctl reload` is always safe).
pub fn reload_on_hangup(tls: Option<laissez_tls::Tls>) {
    #[cfg(unix)]
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hangups) = signal(SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP; the TLS certificate is read at start only");
            return;
        };
        while hangups.recv().await.is_some() {
            let Some(tls) = &tls else {
                tracing::info!("SIGHUP: no TLS certificate to reload");
                continue;
            };
            match tls.reload() {
                Ok(()) => tracing::info!(
                    cert = %tls.files().cert.display(),
                    "SIGHUP: TLS certificate and key reloaded"
                ),
                Err(error) => tracing::error!(
                    %error,
                    "SIGHUP: the new TLS certificate or key does not load; still serving the old one"
                ),
            }
        }
    });
    #[cfg(not(unix))]
    drop(tls);
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

/// Reads `--intent-rules`.
fn intent_rules(path: &std::path::Path) -> Result<laissez_core::task::IntentRules, CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::Local(format!("--intent-rules {}: {e}", path.display())))?;
    laissez_core::task::IntentRules::from_toml(&text)
        .map_err(|e| CliError::Local(format!("--intent-rules {}: {e}", path.display())))
}
