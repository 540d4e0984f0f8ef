//! What packagers and operators need beside the commands themselves:
//! `laissez config check FILE` (a configuration file, as serve and gate
//! would read it), `laissez completions SHELL` (clap_complete) and
//! `laissez man --out DIR` (clap_mangen, one page per command).

use std::path::PathBuf;

use clap::{Args, CommandFactory, Subcommand};

use crate::error::CliError;

/// `laissez config …`.
#[derive(Subcommand)]
pub enum ConfigCommand {
    /// Check a configuration file and print the settings serve and gate
    /// would run with (file, environment or default; secrets hidden).
    Check {
        /// The file (TOML with [serve] and [gate] tables).
        file: PathBuf,
    },
}

/// `laissez completions SHELL`.
#[derive(Args)]
pub struct CompletionsArgs {
    /// The shell.
    shell: clap_complete::Shell,
}

/// `laissez man --out DIR`.
#[derive(Args)]
pub struct ManArgs {
    /// The folder the pages go to (created if missing).
    #[arg(long)]
    out: PathBuf,
}

/// Runs `laissez config …`.
pub fn config(command: ConfigCommand) -> Result<(), CliError> {
    match command {
        ConfigCommand::Check { file } => {
            let settings = crate::config::check::<crate::Cli>(&file)
                .map_err(|e| CliError::Local(e.to_string()))?;
            announce!("{}", settings.trim_end());
            Ok(())
        }
    }
}

/// Prints the completion script for `args.shell`.
pub fn completions(args: CompletionsArgs) -> Result<(), CliError> {
    let mut command = crate::Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "laissez", &mut script);
    use std::io::Write as _;
    std::io::stdout()
        .write_all(&script)
        .map_err(|e| CliError::Local(format!("cannot write the script: {e}")))
}

/// Writes `laissez.1` and one `laissez-COMMAND.1` per (sub)command.
pub fn man(args: ManArgs) -> Result<(), CliError> {
    std::fs::create_dir_all(&args.out)
        .map_err(|e| CliError::Local(format!("{}: {e}", args.out.display())))?;
    clap_mangen::generate_to(crate::Cli::command(), &args.out)
        .map_err(|e| CliError::Local(format!("cannot write the man pages: {e}")))?;
    let written = std::fs::read_dir(&args.out)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().ends_with(".1"))
                .count()
        })
        .unwrap_or(0);
    announce!("wrote {written} man pages to {}", args.out.display());
    Ok(())
}
