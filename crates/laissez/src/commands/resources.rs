//! `laissez resource`: the apps behind gates, with their scopes in plain
//! words (shown on consent pages) and the scopes requests get by default.

use clap::{Args, Subcommand};
use serde_json::json;

use crate::error::CliError;
use crate::{Global, output};

/// What `laissez resource add` takes.
#[derive(Args)]
pub struct AddArgs {
    /// The URL agents connect to, e.g. https://notes.example.com/mcp.
    resource: String,
    /// A name for people.
    #[arg(long)]
    name: String,
    /// A scope and what it allows: "notes.read=Read your notes"; repeatable.
    #[arg(long = "scope")]
    scopes: Vec<String>,
    /// A scope given to requests that name none; repeatable.
    #[arg(long = "default-scope")]
    default_scopes: Vec<String>,
    /// Keep the gate's configuration here too: where the app really is
    /// (then `laissez gate --app NAME` needs nothing else).
    #[arg(long)]
    upstream: Option<String>,
    /// Have `laissez serve` run the gate itself on this address (with --upstream).
    #[arg(long, requires = "upstream")]
    listen: Option<String>,
    /// A scope every request through the gate needs; repeatable (with --upstream).
    #[arg(long = "require-scope", requires = "upstream")]
    required_scopes: Vec<String>,
    /// A gate route rule, "[METHOD] /path scope1,scope2" or "tool:NAME scopes"; repeatable.
    #[arg(long = "rule", requires = "upstream")]
    rules: Vec<String>,
    /// The account the app belongs to (the gate refuses tokens not granted it).
    #[arg(long, requires = "upstream")]
    account: Option<String>,
    /// Send browsers without a token to sign in.
    #[arg(long, requires = "upstream")]
    browser_login: bool,
    /// What the gate does with credentials in request bodies.
    #[arg(long, requires = "upstream", default_value = "off", value_parser = ["off", "block", "redact", "report"])]
    dlp_request: String,
    /// What the gate does with credentials in response bodies.
    #[arg(long, requires = "upstream", default_value = "off", value_parser = ["off", "block", "redact", "report"])]
    dlp_response: String,
    /// The app is an OpenAI-compatible AI API: streamed completions are inspected as text.
    #[arg(long, requires = "upstream")]
    ai_api: bool,
}

/// Resource commands.
#[derive(Subcommand)]
pub enum ResourceCommand {
    /// Register (or replace) a protected resource.
    Add(Box<AddArgs>),
    /// List protected resources.
    List,
}

/// Runs a resource command.
pub async fn run(global: &Global, command: ResourceCommand) -> Result<(), CliError> {
    let client = global.client()?;
    match command {
        ResourceCommand::Add(args) => {
            let AddArgs {
                resource,
                name,
                scopes,
                default_scopes,
                upstream,
                listen,
                required_scopes,
                rules,
                account,
                browser_login,
                dlp_request,
                dlp_response,
                ai_api,
            } = *args;
            let mut described = serde_json::Map::new();
            for scope in scopes {
                let (scope, words) = scope.split_once('=').ok_or_else(|| {
                    CliError::Local(format!("--scope '{scope}' must be NAME=what it allows"))
                })?;
                described.insert(scope.trim().to_owned(), json!(words.trim()));
            }
            let mut body = json!({"resource": resource, "name": name, "scopes": described, "default_scopes": default_scopes});
            if let Some(upstream) = upstream {
                body["gate"] = json!({
                    "upstream": upstream,
                    "listen": listen,
                    "required_scopes": required_scopes,
                    "rules": rules,
                    "account": account,
                    "browser_login": browser_login,
                    "dlp_request": dlp_request,
                    "dlp_response": dlp_response,
                    "ai_api": ai_api,
                });
            }
            let saved = client
                .call(reqwest::Method::PUT, "/v1/resources", Some(body))
                .await?;
            if global.json {
                output::json(&saved);
            } else {
                println!("registered {}", output::text(&saved["resource"]));
            }
        }
        ResourceCommand::List => {
            let resources = client.get("/v1/resources").await?;
            if global.json {
                output::json(&resources);
                return Ok(());
            }
            let rows = resources
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|r| {
                    let scopes: Vec<String> = r["scopes"]
                        .as_object()
                        .map(|m| {
                            m.iter()
                                .map(|(k, v)| format!("{k}: {}", output::text(v)))
                                .collect()
                        })
                        .unwrap_or_default();
                    let defaults: Vec<String> = r["default_scopes"]
                        .as_array()
                        .map(|a| a.iter().map(output::text).collect())
                        .unwrap_or_default();
                    let gate = &r["gate"];
                    let gate = if gate.is_null() {
                        String::new()
                    } else {
                        format!(
                            "-> {}{}",
                            output::text(&gate["upstream"]),
                            gate["listen"]
                                .as_str()
                                .map(|l| format!("\nserved on {l}"))
                                .unwrap_or_default()
                        )
                    };
                    vec![
                        output::text(&r["resource"]),
                        output::text(&r["name"]),
                        scopes.join("\n"),
                        defaults.join(" "),
                        gate,
                    ]
                })
                .collect();
            output::table(&["resource", "name", "scopes", "default", "gate"], rows);
        }
    }
    Ok(())
}
