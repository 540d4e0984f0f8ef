//! `laissez role|policy|check`: what principals may do, and why.

use clap::{Args, Subcommand};
use serde_json::json;

use crate::client::encode;
use crate::error::CliError;
use crate::{Global, output};

/// Role commands.
#[derive(Subcommand)]
pub enum RoleCommand {
    /// Define a role.
    Add {
        /// Unique name.
        name: String,
        /// A permission, e.g. wiki.pages.read; repeat for several.
        #[arg(long = "permission", required = true)]
        permissions: Vec<String>,
        /// Free text.
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List roles, built-in ones included.
    List,
}

/// Policy commands.
#[derive(Subcommand)]
pub enum PolicyCommand {
    /// Grant a role to a principal on a scope (and everything below it).
    Add {
        /// Who (name or id).
        #[arg(long)]
        principal: String,
        /// Which role.
        #[arg(long)]
        role: String,
        /// Where, e.g. acme/apps/wiki (`/` for everything).
        #[arg(long)]
        scope: String,
    },
    /// List policies.
    List {
        /// Only this principal's.
        #[arg(long)]
        principal: Option<String>,
    },
    /// Remove a policy.
    Remove {
        /// Policy id (pol_...).
        id: String,
    },
}

/// The question `laissez check` asks.
#[derive(Args)]
pub struct CheckArgs {
    /// Who (name or id).
    #[arg(long)]
    principal: String,
    /// What, e.g. wiki.pages.read.
    #[arg(long)]
    permission: String,
    /// Where, e.g. acme/apps/wiki/pages/42.
    #[arg(long)]
    resource: String,
}

/// Runs a role command.
pub async fn role(global: &Global, command: RoleCommand) -> Result<(), CliError> {
    let client = global.client()?;
    match command {
        RoleCommand::Add {
            name,
            permissions,
            description,
        } => {
            let role = client
                .post(
                    "/v1/roles",
                    json!({"name": name, "permissions": permissions, "description": description}),
                )
                .await?;
            if global.json {
                output::json(&role);
            } else {
                println!("created role {name}");
            }
        }
        RoleCommand::List => {
            let roles = client.get("/v1/roles").await?;
            if global.json {
                output::json(&roles);
                return Ok(());
            }
            let rows = roles
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|r| {
                    let permissions: Vec<String> = r["permissions"]
                        .as_array()
                        .map(|a| a.iter().map(output::text).collect())
                        .unwrap_or_default();
                    vec![
                        output::text(&r["name"]),
                        permissions.join("\n"),
                        if r["builtin"] == true {
                            "yes".into()
                        } else {
                            "no".into()
                        },
                        output::text(&r["description"]),
                    ]
                })
                .collect();
            output::table(&["name", "permissions", "built-in", "description"], rows);
        }
    }
    Ok(())
}

/// Runs a policy command.
pub async fn policy(global: &Global, command: PolicyCommand) -> Result<(), CliError> {
    let client = global.client()?;
    match command {
        PolicyCommand::Add {
            principal,
            role,
            scope,
        } => {
            let policy = client
                .post(
                    "/v1/policies",
                    json!({"principal": principal, "role": role, "scope": scope}),
                )
                .await?;
            if global.json {
                output::json(&policy);
            } else {
                println!(
                    "granted {role} on {scope} to {principal} ({})",
                    output::text(&policy["id"])
                );
            }
        }
        PolicyCommand::List { principal } => {
            let path = match principal {
                Some(p) => format!("/v1/policies?principal={}", encode(&p)),
                None => "/v1/policies".into(),
            };
            let policies = client.get_all(&path).await?;
            if global.json {
                output::json(&policies);
                return Ok(());
            }
            let principals = client.get_all("/v1/principals").await.unwrap_or_default();
            let name_of = |id: &serde_json::Value| {
                principals
                    .as_array()
                    .and_then(|all| all.iter().find(|p| &p["id"] == id))
                    .map(|p| format!("{}:{}", output::text(&p["kind"]), output::text(&p["name"])))
                    .unwrap_or_else(|| output::text(id))
            };
            let rows = policies
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|p| {
                    vec![
                        output::text(&p["id"]),
                        name_of(&p["principal_id"]),
                        output::text(&p["role"]),
                        output::text(&p["scope"]),
                        output::time(&p["created_at"]),
                    ]
                })
                .collect();
            output::table(&["id", "principal", "role", "scope", "created"], rows);
        }
        PolicyCommand::Remove { id } => {
            client
                .call(
                    reqwest::Method::DELETE,
                    &format!("/v1/policies/{}", encode(&id)),
                    None,
                )
                .await?;
            if global.json {
                output::json(&json!({"removed": id}));
            } else {
                println!("removed policy {id}");
            }
        }
    }
    Ok(())
}

/// Runs `laissez check`: exit 0 on allow, 1 on deny.
pub async fn check(global: &Global, args: CheckArgs) -> Result<(), CliError> {
    let result = global
        .client()?
        .post(
            "/v1/check",
            json!({"principal": args.principal, "permission": args.permission, "resource": args.resource}),
        )
        .await?;
    if global.json {
        output::json(&result);
    } else {
        println!("{}", output::text(&result["explanation"]));
        println!("chain: {}", output::chain(&result["chain"]));
    }
    if result["allowed"] == true {
        Ok(())
    } else {
        Err(CliError::Denied)
    }
}
