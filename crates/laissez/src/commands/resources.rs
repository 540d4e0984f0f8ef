//! `laissez resource`: the apps behind gates, with their scopes in plain
//! words (shown on consent pages) and the scopes requests get by default.

use clap::Subcommand;
use serde_json::json;

use crate::error::CliError;
use crate::{Global, output};

/// Resource commands.
#[derive(Subcommand)]
pub enum ResourceCommand {
    /// Register (or replace) a protected resource.
    Add {
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
    },
    /// List protected resources.
    List,
}

/// Runs a resource command.
pub async fn run(global: &Global, command: ResourceCommand) -> Result<(), CliError> {
    let client = global.client()?;
    match command {
        ResourceCommand::Add {
            resource,
            name,
            scopes,
            default_scopes,
        } => {
            let mut described = serde_json::Map::new();
            for scope in scopes {
                let (scope, words) = scope.split_once('=').ok_or_else(|| {
                    CliError::Local(format!("--scope '{scope}' must be NAME=what it allows"))
                })?;
                described.insert(scope.trim().to_owned(), json!(words.trim()));
            }
            let body = json!({"resource": resource, "name": name, "scopes": described, "default_scopes": default_scopes});
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
                    vec![
                        output::text(&r["resource"]),
                        output::text(&r["name"]),
                        scopes.join("\n"),
                        defaults.join(" "),
                    ]
                })
                .collect();
            output::table(&["resource", "name", "scopes", "default"], rows);
        }
    }
    Ok(())
}
