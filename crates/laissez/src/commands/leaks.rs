//! `laissez leaks`: the incidents the leak intake recorded, with where each
//! token leaked and what was done.

use clap::Subcommand;

use crate::error::CliError;
use crate::{Global, output};

/// Leak commands.
#[derive(Subcommand)]
pub enum LeaksCommand {
    /// List leak incidents, newest first.
    List {
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
}

/// Runs a leaks command.
pub async fn run(global: &Global, command: LeaksCommand) -> Result<(), CliError> {
    let LeaksCommand::List { limit } = command;
    let incidents = global
        .client()?
        .get(&format!("/v1/leaks?limit={limit}"))
        .await?;
    if global.json {
        output::json(&incidents);
        return Ok(());
    }
    let incidents = incidents.as_array().cloned().unwrap_or_default();
    if incidents.is_empty() {
        println!("no leaks reported");
        return Ok(());
    }
    let rows = incidents
        .iter()
        .map(|i| {
            vec![
                output::text(&i["id"]),
                output::hint(&i["token_hint"]),
                output::text(&i["credential_id"]),
                format!(
                    "{} ({}, {})",
                    output::text(&i["url"]),
                    output::text(&i["source"]),
                    if i["public"].as_bool() == Some(true) {
                        "public"
                    } else {
                        "private"
                    }
                ),
                output::text(&i["reporter"]),
                output::text(&i["action"]),
            ]
        })
        .collect();
    output::table(
        &[
            "incident",
            "token",
            "credential",
            "where",
            "reported by",
            "action",
        ],
        rows,
    );
    Ok(())
}
