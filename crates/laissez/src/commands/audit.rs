//! `laissez audit`: list, verify and export the hash-chained audit log.

use clap::Subcommand;
use serde_json::Value;

use crate::error::CliError;
use crate::{Global, output};

/// Audit commands.
#[derive(Subcommand)]
pub enum AuditCommand {
    /// List records.
    List {
        /// Records after this sequence number.
        #[arg(long, default_value_t = 0)]
        after: i64,
        /// How many (1 to 1000).
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Check the hash chain; exits 1 and names the first bad record if broken.
    Verify,
    /// Print every record as JSON lines.
    Export,
}

/// Runs an audit command.
pub async fn run(global: &Global, command: AuditCommand) -> Result<(), CliError> {
    let client = global.client()?;
    match command {
        AuditCommand::List { after, limit } => {
            let records = client
                .get(&format!("/v1/audit?after={after}&limit={limit}"))
                .await?;
            if global.json {
                output::json(&records);
                return Ok(());
            }
            let rows = records
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|r| {
                    vec![
                        output::text(&r["seq"]),
                        output::time(&r["at"]),
                        output::chain(&r["chain"]),
                        output::text(&r["action"]),
                        output::text(&r["target"]),
                        output::text(&r["outcome"]),
                        output::text(&r["client_ip"]),
                    ]
                })
                .collect();
            output::table(
                &[
                    "seq",
                    "time",
                    "chain",
                    "action",
                    "target",
                    "outcome",
                    "client ip",
                ],
                rows,
            );
            Ok(())
        }
        AuditCommand::Verify => {
            let verification = client.get("/v1/audit/verify").await?;
            if global.json {
                output::json(&verification);
            }
            match &verification["first_break"] {
                Value::Null => {
                    if !global.json {
                        println!(
                            "audit log intact: {} records",
                            output::text(&verification["records"])
                        );
                    }
                    Ok(())
                }
                broken => Err(CliError::Local(format!(
                    "audit log broken at record {}: {}",
                    output::text(&broken["seq"]),
                    output::text(&broken["why"])
                ))),
            }
        }
        AuditCommand::Export => {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            let mut after = 0;
            loop {
                let page = client
                    .get(&format!("/v1/audit?after={after}&limit=1000"))
                    .await?;
                let Some(records) = page.as_array().filter(|r| !r.is_empty()) else {
                    return Ok(());
                };
                for record in records {
                    // A closed pipe (`| head`) ends the export quietly.
                    if writeln!(out, "{record}").is_err() {
                        return Ok(());
                    }
                    after = record["seq"].as_i64().unwrap_or(after);
                }
            }
        }
    }
}
