//! `laissez hygiene|settings|whoami`: organization-wide views.

use clap::{Args, Subcommand};
use serde_json::json;

use crate::error::CliError;
use crate::{Global, output};

/// The hygiene report's threshold.
#[derive(Args)]
pub struct HygieneArgs {
    /// Report credentials unused for at least this many days.
    #[arg(long, default_value_t = 30)]
    unused_days: i64,
    /// Send each person a digest of what they answer for now (through the
    /// server's webhook and email), instead of printing the report.
    #[arg(long)]
    notify: bool,
    /// With --notify: credentials expiring within this many days.
    #[arg(long, default_value_t = 7, requires = "notify")]
    expiring_days: i64,
}

/// Settings commands.
#[derive(Subcommand)]
pub enum SettingsCommand {
    /// Show the settings.
    Show,
    /// Rotate the OAuth access token signing key (older keys keep verifying).
    RotateKeys,
    /// Change token lifetimes and how people sign in.
    Set {
        /// Lifetime of tokens created without --ttl.
        #[arg(long, allow_hyphen_values = true)]
        default_ttl: Option<String>,
        /// The longest lifetime any token may have.
        #[arg(long, allow_hyphen_values = true)]
        max_ttl: Option<String>,
        /// Accept sign-ins only through the upstream identity provider (true or false).
        #[arg(long)]
        require_federated_login: Option<bool>,
        /// Revoke Laissez tokens reported leaked in private places too, not
        /// only flag them (true or false). Public leaks are always revoked.
        #[arg(long)]
        revoke_private_leaks: Option<bool>,
    },
}

/// Runs `laissez hygiene`.
pub async fn hygiene(global: &Global, args: HygieneArgs) -> Result<(), CliError> {
    if args.notify {
        let queued = global
            .client()?
            .post(
                "/v1/hygiene/notify",
                json!({"unused_days": args.unused_days, "expiring_days": args.expiring_days}),
            )
            .await?;
        if global.json {
            output::json(&queued);
        } else {
            println!(
                "queued {} digest(s) with {} finding(s) for: {}",
                output::text(&queued["digests"]),
                output::text(&queued["findings"]),
                queued["people"]
                    .as_array()
                    .map(|p| p.iter().map(output::text).collect::<Vec<_>>().join(", "))
                    .unwrap_or_default()
            );
        }
        return Ok(());
    }
    let findings = global
        .client()?
        .get(&format!("/v1/hygiene?unused_days={}", args.unused_days))
        .await?;
    if global.json {
        output::json(&findings);
        return Ok(());
    }
    let findings = findings.as_array().cloned().unwrap_or_default();
    if findings.is_empty() {
        println!("no findings");
        return Ok(());
    }
    let rows = findings
        .iter()
        .map(|f| {
            let what = match f["finding"].as_str().unwrap_or("") {
                "owner_inactive" => format!("owner {} is inactive", output::principal(&f["owner"])),
                "unused" => format!("unused for {} days", output::text(&f["days"])),
                "never_used" => format!("never used ({} days old)", output::text(&f["age_days"])),
                "no_expiry" => "never expires".into(),
                "expiring_soon" => format!("expires in {} day(s)", output::text(&f["days_left"])),
                "over_max_lifetime" => format!(
                    "lifetime {} days is over the organization maximum",
                    f["lifetime_seconds"].as_i64().unwrap_or(0) / 86_400
                ),
                other => other.to_owned(),
            };
            vec![
                output::text(&f["finding"]),
                output::principal(&f["principal"]),
                output::text(&f["credential_id"]),
                what,
            ]
        })
        .collect();
    output::table(&["finding", "principal", "credential", "detail"], rows);
    Ok(())
}

/// Runs a settings command.
pub async fn settings(global: &Global, command: SettingsCommand) -> Result<(), CliError> {
    let client = global.client()?;
    if let SettingsCommand::RotateKeys = command {
        let rotated = client.post("/v1/keys/rotate", json!({})).await?;
        if global.json {
            output::json(&rotated);
        } else {
            println!("signing with key {}", output::text(&rotated["signing_kid"]));
        }
        return Ok(());
    }
    let mut settings = client.get("/v1/settings").await?;
    if let SettingsCommand::Set {
        default_ttl,
        max_ttl,
        require_federated_login,
        revoke_private_leaks,
    } = command
    {
        if default_ttl.is_none()
            && max_ttl.is_none()
            && require_federated_login.is_none()
            && revoke_private_leaks.is_none()
        {
            return Err(CliError::Local(
                "nothing to change: pass --default-ttl, --max-ttl, --require-federated-login or --revoke-private-leaks"
                    .into(),
            ));
        }
        if let Some(revoke) = revoke_private_leaks {
            settings["revoke_private_leaks"] = json!(revoke);
        }
        if let Some(required) = require_federated_login {
            settings["require_federated_login"] = json!(required);
        }
        if let Some(ttl) = default_ttl {
            settings["default_ttl"] = json!(ttl);
        }
        if let Some(ttl) = max_ttl {
            settings["max_ttl"] = json!(ttl);
        }
        settings = client
            .call(reqwest::Method::PUT, "/v1/settings", Some(settings))
            .await?;
    }
    if global.json {
        output::json(&settings);
    } else {
        output::table(
            &[
                "default ttl",
                "max ttl",
                "federated login required",
                "revoke private leaks",
            ],
            vec![vec![
                output::text(&settings["default_ttl"]),
                output::text(&settings["max_ttl"]),
                output::text(&settings["require_federated_login"]),
                output::text(&settings["revoke_private_leaks"]),
            ]],
        );
    }
    Ok(())
}

/// Runs `laissez whoami`.
pub async fn whoami(global: &Global) -> Result<(), CliError> {
    let me = global.client()?.get("/v1/whoami").await?;
    if global.json {
        output::json(&me);
        return Ok(());
    }
    let credential = &me["credential"];
    let policies: Vec<String> = me["policies"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|p| {
                    format!(
                        "{} on {}",
                        output::text(&p["role"]),
                        output::text(&p["scope"])
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let mut rows: Vec<(&str, String)> = vec![
        ("principal", output::principal(&me["principal"])),
        ("owner", output::principal(&me["owner"])),
        ("chain", output::text(&me["chain_text"])),
        (
            "credential",
            format!(
                "{} ({})",
                output::text(&credential["id"]),
                output::masked(credential)
            ),
        ),
        (
            "narrowed to",
            output::restriction(&credential["restriction"]),
        ),
        ("expires", output::time(&credential["expires_at"])),
        (
            "policies",
            if policies.is_empty() {
                "none".into()
            } else {
                policies.join("\n")
            },
        ),
    ];
    // A task credential: what the task may do bounds everything above.
    let task = &me["task"];
    if task.is_object() {
        let grants: Vec<&str> = task["grants"]
            .as_array()
            .map(|g| g.iter().filter_map(serde_json::Value::as_str).collect())
            .unwrap_or_default();
        rows.push((
            "task",
            format!(
                "{} ({})",
                output::text(&task["id"]),
                output::text(&task["status"])
            ),
        ));
        rows.push(("task grants", grants.join("\n")));
        rows.push(("task expires", output::time(&task["expires_at"])));
    }
    let rows = rows
        .into_iter()
        .map(|(k, v)| vec![k.to_owned(), v])
        .collect();
    output::table(&["", "whoami"], rows);
    Ok(())
}
