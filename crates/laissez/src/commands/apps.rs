//! `laissez app`: the applications users have let act for them, and
//! disconnecting one (its refresh tokens and access tokens die at once).

use clap::Subcommand;
use serde_json::json;

use crate::client::encode;
use crate::error::CliError;
use crate::{Global, output};

/// Application commands.
#[derive(Subcommand)]
pub enum AppCommand {
    /// Pre-register an OAuth client (its secret, if any, is shown once).
    Register {
        /// The application's name, shown on the consent page.
        #[arg(long)]
        name: String,
        /// A redirect URI; repeatable.
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        /// A grant type (authorization_code, refresh_token, client_credentials); repeatable.
        #[arg(long = "grant", default_values_t = ["authorization_code".to_owned(), "refresh_token".to_owned()])]
        grants: Vec<String>,
        /// Space-separated scopes it may use.
        #[arg(long)]
        scope: Option<String>,
        /// A public client (native app, CLI agent): no secret, PKCE only.
        #[arg(long, conflicts_with = "jwks")]
        public: bool,
        /// Authenticate with signed JWTs (private_key_jwt, RFC 7523) instead
        /// of a secret: a file holding the client's public JWK Set (or one JWK).
        #[arg(long, value_name = "FILE")]
        jwks: Option<std::path::PathBuf>,
        /// The service or agent a client_credentials client acts as (its
        /// policies bound every token the client obtains).
        #[arg(long)]
        principal: Option<String>,
    },
    /// List registered applications.
    List,
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

/// Reads a public JWK Set (or a single JWK, wrapped into a set) from `path`.
fn read_jwks(path: &std::path::Path) -> Result<serde_json::Value, CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::Local(format!("cannot read --jwks {}: {e}", path.display())))?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        CliError::Local(format!(
            "--jwks {} is not JSON ({e}); give a JWK Set {{\"keys\": [...]}} or one public JWK",
            path.display()
        ))
    })?;
    Ok(if value.get("kty").is_some() {
        json!({"keys": [value]})
    } else {
        value
    })
}

/// Runs an app command.
pub async fn run(global: &Global, command: AppCommand) -> Result<(), CliError> {
    let client = global.client()?;
    let apps = match command {
        AppCommand::Register {
            name,
            redirect_uris,
            grants,
            scope,
            public,
            jwks,
            principal,
        } => {
            let jwks = jwks.as_deref().map(read_jwks).transpose()?;
            let method = match (public, &jwks) {
                (true, _) => "none",
                (false, Some(_)) => "private_key_jwt",
                (false, None) => "client_secret_basic",
            };
            let mut body = json!({"client_name": name, "redirect_uris": redirect_uris, "grant_types": grants,
                           "scope": scope, "token_endpoint_auth_method": method, "principal": principal});
            if let Some(jwks) = jwks {
                body["jwks"] = jwks;
            }
            let registered = client.post("/v1/clients", body).await?;
            if global.json {
                output::json(&registered);
            } else {
                println!("client_id {}", output::text(&registered["client_id"]));
                if let Some(secret) = registered["client_secret"].as_str() {
                    println!("client_secret {secret}");
                    eprintln!("This is the only time the secret is shown: store it now.");
                }
            }
            return Ok(());
        }
        AppCommand::List => {
            let clients = client.get_all("/v1/clients").await?;
            if global.json {
                output::json(&clients);
                return Ok(());
            }
            let rows = clients
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|c| {
                    vec![
                        output::text(&c["client_id"]),
                        output::text(&c["client_name"]),
                        output::text(&c["kind"]),
                        if c["confidential"] == true {
                            "confidential".into()
                        } else {
                            "public".into()
                        },
                        c["grant_types"]
                            .as_array()
                            .map(|g| g.iter().map(output::text).collect::<Vec<_>>().join(" "))
                            .unwrap_or_default(),
                        output::time(&c["created_at"]),
                    ]
                })
                .collect();
            output::table(
                &["client", "name", "registered", "type", "grants", "created"],
                rows,
            );
            return Ok(());
        }
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
                a["accounts"]
                    .as_array()
                    .map(|list| {
                        list.iter()
                            .filter_map(|v| v.as_str())
                            .collect::<Vec<_>>()
                            .join(" ")
                    })
                    .unwrap_or_default(),
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
            "accounts",
            "resource",
            "granted",
            "last used",
        ],
        rows,
    );
    Ok(())
}
