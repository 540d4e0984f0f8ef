//! `laissez fetch`: an HTTP request that follows `WWW-Authenticate` through
//! discovery, registration, consent and PKCE, like any OAuth-aware agent.
//! Inside `laissez task run`, a URL under one of the task's resources goes
//! with that resource's access token and a DPoP proof of the task's key,
//! and nothing is discovered.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use laissez_agent::Agent;
use reqwest::{Method, StatusCode};

use crate::dpop::{self, AccessTokens, KEY_VAR, Proving, SendError, TOKENS_VAR};
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
    let method = Method::from_bytes(args.method.to_ascii_uppercase().as_bytes())
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
    if let Some(tokens) = AccessTokens::from_env()?
        && let Some(token) = tokens.for_url(&args.url)
    {
        let (status, bytes) = with_task_token(method, &args.url, body, &headers, token).await?;
        return print_answer(&args.url, status, &bytes);
    }
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
    print_answer(&args.url, status, &bytes)
}

/// Sends the request with a task's access `token`, bound to the key in
/// `LAISSEZ_DPOP_KEY`; once more with the server's nonce when it wants one.
async fn with_task_token(
    method: Method,
    url: &str,
    body: Option<Vec<u8>>,
    headers: &[(String, String)],
    token: &str,
) -> Result<(StatusCode, Vec<u8>), CliError> {
    let key = dpop::key_from_env()?.ok_or_else(|| {
        CliError::Local(format!(
            "{TOKENS_VAR} holds a token for {url}, but {KEY_VAR} names no key to prove it with"
        ))
    })?;
    let http = reqwest::Client::builder()
        .build()
        .map_err(|e| CliError::Local(format!("cannot set up HTTP: {e}")))?;
    let build = || {
        let mut request = http.request(method.clone(), url);
        for (name, value) in headers {
            // The task's credential is the one presented.
            if !name.eq_ignore_ascii_case("authorization") && !name.eq_ignore_ascii_case("dpop") {
                request = request.header(name, value);
            }
        }
        if let Some(body) = &body {
            request = request.body(body.clone());
        }
        request.header(reqwest::header::AUTHORIZATION, format!("DPoP {token}"))
    };
    let proving = Proving {
        key: &key,
        method: method.as_str(),
        url,
        access_token: Some(token),
    };
    let exchange = dpop::send(build, Some(proving))
        .await
        .map_err(|e| match e {
            SendError::Proof(e) => CliError::Local(format!("cannot sign a DPoP proof: {e}")),
            SendError::Transport(e) => CliError::Local(format!("{url}: {e}")),
        })?;
    Ok((exchange.status, exchange.body))
}

/// Prints the answer's body; an unsuccessful status is an error.
fn print_answer(url: &str, status: StatusCode, bytes: &[u8]) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(bytes);
    if !status.is_success() {
        return Err(CliError::Local(format!("{url} answered HTTP {status}")));
    }
    Ok(())
}
