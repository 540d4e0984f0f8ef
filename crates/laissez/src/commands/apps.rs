//! `laissez app`: the applications users have let act for them, and
//! disconnecting one (its refresh tokens and access tokens die at once).

use clap::Subcommand;
use serde_json::json;

use crate::client::encode;
use crate::error::CliError;
use crate::{Global, output};

/// Connected application commands.
#[derive(Subcommand)]
pub enum AppCommand {
    /// List a user's connected applications (yours by default).
    Connected {
        /// The user (name or id).
        #[arg(long)]
        user: Option<String>,
    },
    /// Disconnect an application: its grant, refresh tokens and access tokens end now.
    Disconnect {
        /// The application's client id.
        client_id: String,
        /// The user (name or id); yourself by default.
        #[arg(long)]
        user: Option<String>,
    },
}

/// Runs an app command.
pub async fn run(global: &Global, command: AppCommand) -> Result<(), CliError> {
    let client = global.client()?;
    let apps = match command {
        AppCommand::Connected { user } => {
            let path = match user {
                Some(u) => format!("/v1/connected-apps?user={}", encode(&u)),
                None => "/v1/connected-apps".into(),
            };
            client.get(&path).await?
        }
        AppCommand::Disconnect { client_id, user } => {
            let apps = client
                .post(
                    "/v1/connected-apps/disconnect",
                    json!({"client_id": client_id, "user": user}),
                )
                .await?;
            if !global.json {
                println!("disconnected {client_id}");
            }
            apps
        }
    };
    if global.json {
        output::json(&apps);
        return Ok(());
    }
    let rows = apps
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|a| {
            vec![
                output::text(&a["client_id"]),
                output::text(&a["client_name"]),
                output::text(&a["user"]),
                output::text(&a["scope"]),
                output::text(&a["resource"]),
                output::time(&a["granted_at"]),
                output::time(&a["last_used_at"]),
            ]
        })
        .collect();
    output::table(
        &[
            "client",
            "name",
            "user",
            "scopes",
            "resource",
            "granted",
            "last used",
        ],
        rows,
    );
    Ok(())
}
