//! `laissez user|service|agent`: principals and their owners.

use clap::Subcommand;
use serde_json::{Value, json};

use crate::client::encode;
use crate::error::CliError;
use crate::{Global, output};

/// Commands for users.
#[derive(Subcommand)]
pub enum UserCommand {
    /// Add a user.
    Add {
        /// Unique name (lowercase letters, digits, `.`, `_`, `@`, `-`).
        name: String,
        /// Free text.
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List users.
    List,
    /// Deactivate a user: every credential of everything they own stops working.
    Deactivate {
        /// Name or id.
        name: String,
    },
    /// Reactivate a user.
    Activate {
        /// Name or id.
        name: String,
    },
    /// Set a user's password for the sign-in page (read from standard input).
    Password {
        /// Name or id.
        name: String,
    },
    /// Set the email address a user is told of leaks at (`-` removes it).
    Email {
        /// Name or id.
        name: String,
        /// The address.
        email: String,
    },
}

/// Commands for services and agents.
#[derive(Subcommand)]
pub enum OwnedCommand {
    /// Add one, owned by a user.
    Add {
        /// Unique name.
        name: String,
        /// The owning user (name or id). Required.
        #[arg(long)]
        owner: Option<String>,
        /// Free text.
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List them.
    List,
    /// Deactivate one: its credentials stop working.
    Deactivate {
        /// Name or id.
        name: String,
    },
    /// Reactivate one.
    Activate {
        /// Name or id.
        name: String,
    },
}

/// Runs a user command.
pub async fn user(global: &Global, command: UserCommand) -> Result<(), CliError> {
    match command {
        UserCommand::Add { name, description } => {
            add(global, "user", &name, None, &description).await
        }
        UserCommand::List => list(global, "user").await,
        UserCommand::Deactivate { name } => status(global, &name, "deactivate").await,
        UserCommand::Activate { name } => status(global, &name, "activate").await,
        UserCommand::Password { name } => password(global, &name).await,
        UserCommand::Email { name, email } => {
            let value = if email == "-" {
                json!(null)
            } else {
                json!(email)
            };
            let answer = global
                .client()?
                .call(
                    reqwest::Method::PUT,
                    &format!("/v1/principals/{}/email", encode(&name)),
                    Some(json!({ "email": value })),
                )
                .await?;
            if global.json {
                match answer {
                    Value::Null => output::json(&json!({ "principal": name, "email": value })),
                    answer => output::json(&answer),
                }
            } else if value.is_null() {
                println!("email of {name} removed");
            } else {
                println!("email of {name} set");
            }
            Ok(())
        }
    }
}

/// Runs a service or agent command.
pub async fn owned(global: &Global, kind: &str, command: OwnedCommand) -> Result<(), CliError> {
    match command {
        OwnedCommand::Add {
            name,
            owner,
            description,
        } => {
            let owner = owner.ok_or_else(|| {
                CliError::Local(format!(
                    "every {kind} needs a human owner: pass --owner USER"
                ))
            })?;
            add(global, kind, &name, Some(&owner), &description).await
        }
        OwnedCommand::List => list(global, kind).await,
        OwnedCommand::Deactivate { name } => status(global, &name, "deactivate").await,
        OwnedCommand::Activate { name } => status(global, &name, "activate").await,
    }
}

async fn add(
    global: &Global,
    kind: &str,
    name: &str,
    owner: Option<&str>,
    description: &str,
) -> Result<(), CliError> {
    let client = global.client()?;
    let mut body = json!({"kind": kind, "name": name, "description": description});
    if let Some(owner) = owner {
        body["owner"] = json!(owner);
    }
    let created = client.post("/v1/principals", body).await?;
    if global.json {
        output::json(&created);
    } else {
        println!("created {kind} {name} ({})", output::text(&created["id"]));
    }
    Ok(())
}

async fn list(global: &Global, kind: &str) -> Result<(), CliError> {
    let client = global.client()?;
    let all = client.get_all("/v1/principals").await?;
    let all = all.as_array().cloned().unwrap_or_default();
    let mine: Vec<Value> = all.iter().filter(|p| p["kind"] == kind).cloned().collect();
    if global.json {
        output::json(&Value::Array(mine));
        return Ok(());
    }
    let name_of = |id: &Value| {
        all.iter()
            .find(|p| &p["id"] == id)
            .map(|p| output::text(&p["name"]))
            .unwrap_or_else(|| output::text(id))
    };
    let rows = mine
        .iter()
        .map(|p| {
            vec![
                output::text(&p["name"]),
                output::text(&p["id"]),
                output::text(&p["kind"]),
                if p["owner_id"].is_null() {
                    "—".into()
                } else {
                    name_of(&p["owner_id"])
                },
                output::text(&p["status"]),
                output::time(&p["created_at"]),
            ]
        })
        .collect();
    output::table(&["name", "id", "kind", "owner", "status", "created"], rows);
    Ok(())
}

async fn status(global: &Global, name: &str, action: &str) -> Result<(), CliError> {
    let client = global.client()?;
    let principal = client
        .post(
            &format!("/v1/principals/{}/{action}", encode(name)),
            json!({}),
        )
        .await?;
    if global.json {
        output::json(&principal);
    } else {
        println!(
            "{} {} is now {}",
            output::text(&principal["kind"]),
            output::text(&principal["name"]),
            output::text(&principal["status"])
        );
    }
    Ok(())
}

async fn password(global: &Global, name: &str) -> Result<(), CliError> {
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).map_err(|e| {
        CliError::Local(format!("cannot read the password from standard input: {e}"))
    })?;
    let password = line.trim_end_matches(['\r', '\n']);
    if password.is_empty() {
        return Err(CliError::Local("no password on standard input (e.g. `read -s P; echo \"$P\" | laissez user password NAME`)".into()));
    }
    global
        .client()?
        .call(
            reqwest::Method::PUT,
            &format!("/v1/principals/{}/password", encode(name)),
            Some(json!({"password": password})),
        )
        .await?;
    if global.json {
        output::json(&json!({"user": name, "password": "set"}));
    } else {
        println!("password set for {name}");
    }
    Ok(())
}
