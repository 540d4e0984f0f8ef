//! `laissez token`: issue (the secret is printed once), list without
//! secrets, roll, revoke, and check offline.

use clap::Subcommand;
use serde_json::{Value, json};

use crate::client::encode;
use crate::error::CliError;
use crate::{Global, output};

/// Token commands.
#[derive(Subcommand)]
pub enum TokenCommand {
    /// Issue a token for a principal; the secret is printed once.
    Create {
        /// Whose token (name or id).
        #[arg(long)]
        principal: String,
        /// Narrow the token to this role.
        #[arg(long)]
        role: Option<String>,
        /// Narrow the token to this scope.
        #[arg(long)]
        scope: Option<String>,
        /// Lifetime, e.g. 30m, 12h, 7d (default: the organization default).
        #[arg(long, allow_hyphen_values = true)]
        ttl: Option<String>,
        /// Client IP range (CIDR) it may be used from; repeat for several.
        #[arg(long = "allow-ip")]
        allow_ip: Vec<String>,
        /// Free text.
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List tokens (never their secrets).
    List {
        /// Only this principal's tokens.
        #[arg(long)]
        principal: Option<String>,
    },
    /// Show one token.
    Show {
        /// Token id (tok_...).
        id: String,
    },
    /// Give a token a new secret; the old one stops working.
    Roll {
        /// Token id.
        id: String,
        /// Lifetime of the new secret (default: the old lifetime).
        #[arg(long, allow_hyphen_values = true)]
        ttl: Option<String>,
    },
    /// Revoke a token; it is refused from the next request on.
    Revoke {
        /// Token id.
        id: String,
    },
    /// Check a token's format and checksum offline, and name its kind.
    Check {
        /// The token.
        token: String,
    },
}

/// Runs a token command.
pub async fn run(global: &Global, command: TokenCommand) -> Result<(), CliError> {
    match command {
        TokenCommand::Create {
            principal,
            role,
            scope,
            ttl,
            allow_ip,
            description,
        } => {
            let body = json!({
                "principal": principal, "role": role, "scope": scope, "ttl": ttl,
                "allowed_ips": allow_ip, "description": description,
            });
            let issued = global.client()?.post("/v1/tokens", body).await?;
            issued_token(global, &issued, "created");
            Ok(())
        }
        TokenCommand::List { principal } => {
            let path = match principal {
                Some(p) => format!("/v1/tokens?principal={}", encode(&p)),
                None => "/v1/tokens".into(),
            };
            let tokens = global.client()?.get_all(&path).await?;
            if global.json {
                output::json(&tokens);
                return Ok(());
            }
            let rows = tokens
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(row)
                .collect();
            output::table(
                &[
                    "id",
                    "token",
                    "kind",
                    "principal",
                    "owner",
                    "narrowed to",
                    "created",
                    "expires",
                    "last used",
                    "state",
                ],
                rows,
            );
            Ok(())
        }
        TokenCommand::Show { id } => {
            let token = global
                .client()?
                .get(&format!("/v1/tokens/{}", encode(&id)))
                .await?;
            if global.json {
                output::json(&token);
            } else {
                output::table(
                    &[
                        "id",
                        "token",
                        "kind",
                        "principal",
                        "owner",
                        "narrowed to",
                        "created",
                        "expires",
                        "last used",
                        "state",
                    ],
                    vec![row(&token)],
                );
            }
            Ok(())
        }
        TokenCommand::Roll { id, ttl } => {
            let issued = global
                .client()?
                .post(
                    &format!("/v1/tokens/{}/roll", encode(&id)),
                    json!({"ttl": ttl}),
                )
                .await?;
            issued_token(global, &issued, "rolled");
            Ok(())
        }
        TokenCommand::Revoke { id } => {
            let token = global
                .client()?
                .post(&format!("/v1/tokens/{}/revoke", encode(&id)), json!({}))
                .await?;
            if global.json {
                output::json(&token);
            } else {
                println!(
                    "revoked {} ({}…{})",
                    output::text(&token["id"]),
                    output::text(&token["prefix"]),
                    output::text(&token["last4"])
                );
            }
            Ok(())
        }
        TokenCommand::Check { token } => check(global, &token),
    }
}

fn issued_token(global: &Global, issued: &Value, verb: &str) {
    if global.json {
        output::json(issued);
        return;
    }
    println!("{}", output::text(&issued["token"]));
    eprintln!(
        "{verb} {} for {}, expires {} UTC. This is the only time the token is shown: store it now.",
        output::text(&issued["id"]),
        output::principal(&issued["principal"]),
        output::time(&issued["expires_at"])
    );
}

fn row(token: &Value) -> Vec<String> {
    vec![
        output::text(&token["id"]),
        format!(
            "{}…{}",
            output::text(&token["prefix"]),
            output::text(&token["last4"])
        ),
        output::text(&token["kind"]),
        output::principal(&token["principal"]),
        output::principal(&token["owner"]),
        output::restriction(&token["restriction"]),
        output::time(&token["created_at"]),
        output::time(&token["expires_at"]),
        output::time(&token["last_used_at"]),
        output::text(&token["state"]),
    ]
}

fn check(global: &Global, text: &str) -> Result<(), CliError> {
    let token = laissez_token::Token::parse(text.trim())
        .map_err(|e| CliError::Local(format!("not a valid Laissez token: {e}")))?;
    if global.json {
        output::json(&json!({
            "valid": true,
            "kind": token.kind().code(),
            "description": token.kind().describe(),
            "namespace": token.namespace(),
            "prefix": token.prefix(),
        }));
    } else {
        println!(
            "valid {} token: {} (namespace {}); checksum verified offline",
            token.prefix(),
            token.kind().describe(),
            token.namespace()
        );
    }
    Ok(())
}
