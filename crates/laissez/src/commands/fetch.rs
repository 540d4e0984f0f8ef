//! `laissez fetch`: an HTTP request that follows `WWW-Authenticate` through
//! discovery, registration, consent and PKCE, like any OAuth-aware agent.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use laissez_agent::Agent;

use crate::error::CliError;

/// The request to make.
#[derive(Args)]
pub struct FetchArgs {
    /// The URL.
    url: String,
    /// The https URL of this agent's Client ID Metadata Document: used as the
    /// client id where the server supports it, instead of registering.
    #[arg(long)]
    client_metadata_url: Option<String>,
    /// The HTTP method.
    #[arg(short = 'X', long, default_value = "GET")]
    method: String,
    /// A request body (`@FILE` reads a file), as curl's `-d`. Its long form
    /// is `--body`: `--data` is the global data folder.
    #[arg(short = 'd', long = "body", id = "body")]
    body: Option<String>,
    /// A request header, `Name: value`; repeatable.
    #[arg(short = 'H', long = "header")]
    headers: Vec<String>,
    /// The token cache (default: ~/.cache/laissez/tokens.json).
    #[arg(long)]
    cache: Option<PathBuf>,
}

fn present(url: String) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
    eprintln!("To let this agent act for you, open:\n\n  {url}\n");
    let graphical =
        std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some();
    if graphical || cfg!(target_os = "macos") {
        let opener = if cfg!(target_os = "macos") {
            "open"
        } else {
            "xdg-open"
        };
        let _ = std::process::Command::new(opener)
            .arg(&url)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
    }
    Box::pin(async {})
}

/// Runs `laissez fetch`.
pub async fn run(args: FetchArgs) -> Result<(), CliError> {
    let method = reqwest::Method::from_bytes(args.method.to_ascii_uppercase().as_bytes())
        .map_err(|_| CliError::Local(format!("'{}' is not an HTTP method", args.method)))?;
    let body = match args.body.as_deref() {
        Some(path) if path.starts_with('@') => Some(
            std::fs::read(&path[1..])
                .map_err(|e| CliError::Local(format!("{}: {e}", &path[1..])))?,
        ),
        Some(text) => Some(text.as_bytes().to_vec()),
        None => None,
    };
    let headers = args
        .headers
        .iter()
        .map(|h| {
            h.split_once(':')
                .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
                .ok_or_else(|| CliError::Local(format!("header '{h}' must be 'Name: value'")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let cache = args.cache.unwrap_or_else(laissez_agent::default_cache_path);
    let mut agent =
        Agent::new(cache, Box::new(present)).map_err(|e| CliError::Local(e.to_string()))?;
    if let Some(document) = &args.client_metadata_url {
        if !document.starts_with("https://") {
            return Err(CliError::Local(format!(
                "--client-metadata-url '{document}' must be an https URL"
            )));
        }
        agent = agent.with_metadata_document(document);
    }
    let response = agent
        .fetch(method, &args.url, body.as_deref(), &headers)
        .await
        .map_err(|e| CliError::Local(e.to_string()))?;
    let status = response.status();
    let bytes = response
        .bytes()
        .await
        .map_err(|e| CliError::Local(format!("reading the answer: {e}")))?;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(&bytes);
    if !status.is_success() {
        return Err(CliError::Local(format!(
            "{} answered HTTP {status}",
            args.url
        )));
    }
    Ok(())
}
