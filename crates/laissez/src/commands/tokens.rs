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
        /// Narrow the token to this permission; repeat for several (with
        /// --role, each must be the role's).
        #[arg(long = "permission")]
        permission: Vec<String>,
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
        /// Token id (tok_…), the token itself (looked up by its hash, never
        /// shown or put in a URL), or `-` to read the token from stdin.
        #[arg(id = "revoked", value_name = "TOKEN")]
        token: String,
    },
    /// Check a token's format and checksum offline, and name its kind.
    Check {
        /// The token.
        #[arg(id = "checked", value_name = "TOKEN")]
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
            permission,
            ttl,
            allow_ip,
            description,
        } => {
            // Without --permission, no limit by permission (an empty list is refused).
            let permission = (!permission.is_empty()).then_some(permission);
            let body = json!({
                "principal": principal, "role": role, "scope": scope, "ttl": ttl,
                "permissions": permission, "allowed_ips": allow_ip, "description": description,
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
        TokenCommand::Revoke { token } => {
            let client = global.client()?;
            let revoked = match Named::parse(&token)? {
                Named::Id(id) => {
                    client
                        .post(&format!("/v1/tokens/{}/revoke", encode(&id)), json!({}))
                        .await?
                }
                Named::Secret(secret) => {
                    client
                        .post("/v1/tokens/revoke", json!({ "token": secret }))
                        .await?
                }
            };
            if global.json {
                output::json(&revoked);
            } else {
                println!(
                    "revoked {} ({})",
                    output::text(&revoked["id"]),
                    output::masked(&revoked)
                );
            }
            Ok(())
        }
        TokenCommand::Check { token } => check(global, &token),
    }
}

/// How `token revoke` was told which token: by id or by its secret.
enum Named {
    Id(String),
    Secret(String),
}

impl Named {
    /// `tok_…` is an id; `-` reads a secret from stdin; anything else must be
    /// a well-formed token. Errors never repeat what was given: it may be a
    /// secret with a typo.
    fn parse(given: &str) -> Result<Named, CliError> {
        let text = if given == "-" {
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .map_err(|e| CliError::Local(format!("cannot read the token from stdin: {e}")))?;
            line
        } else {
            given.to_owned()
        };
        let text = text.trim();
        if text.starts_with("tok_") {
            return Ok(Named::Id(text.to_owned()));
        }
        match laissez_token::Token::parse(text) {
            Ok(_) => Ok(Named::Secret(text.to_owned())),
            Err(e) => Err(CliError::Local(format!(
                "give a token id (tok_…, see `laissez token list`) or the token itself; what was given is neither ({e})"
            ))),
        }
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
        output::masked(token),
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
