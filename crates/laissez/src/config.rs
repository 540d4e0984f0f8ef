//! Configuration files: `laissez serve --config laissez.toml` and `laissez
//! gate --config …` (or `LAISSEZ_CONFIG`), checked by `laissez config check`.
//!
//! A file has a `[serve]` and a `[gate]` table; each key is the long name
//! of one of that command's flags (`listen = "0.0.0.0:8700"`, `tls-cert =
//! "/etc/laissez/cert.pem"`, `browser-login = true`, `rule = ["GET /
//! notes.read"]` for a repeatable flag). The keys come from the command
//! line's own definition, so every flag is a key and nothing else is: an
//! unknown key, a value of the wrong shape or one the flag would refuse is
//! an error naming the key, before anything starts.
//!
//! Precedence: a flag on the command line, then its environment variable,
//! then the file, then the flag's default. The file's values become flags
//! appended to the command line for every flag not already given there or
//! by the environment, and the whole is parsed again, so a file value goes
//! through exactly the checks the flag does.

use std::ffi::OsString;
use std::path::Path;

use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches, CommandFactory};

/// The commands a file configures: its tables.
pub const SECTIONS: [&str; 2] = ["serve", "gate"];

/// Flags that are actions, not settings: never in a file.
const NOT_SETTINGS: [&str; 4] = ["config", "help", "version", "reset_admin_token"];

/// Why a configuration file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("{path}: {why}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        why: String,
    },
    /// The file is not TOML.
    #[error("{path}: not TOML: {why}")]
    Syntax {
        /// The file.
        path: String,
        /// The parser's message, with the line.
        why: String,
    },
    /// A key (or table) no flag has, or a value it cannot take.
    #[error("{path}: {key}: {why}")]
    Key {
        /// The file.
        path: String,
        /// `[section] key`, or `[section]`.
        key: String,
        /// What is wrong.
        why: String,
    },
    /// The command line with the file's values does not parse.
    #[error("{path}: {why}")]
    Combined {
        /// The file.
        path: String,
        /// Clap's first line.
        why: String,
    },
}

/// The command line `argv` with the configuration file it names (through
/// `--config` or `LAISSEZ_CONFIG`) applied, parsed. Without a file, the
/// first parse; clap's own errors (and `--help`) exit as usual.
pub fn parse_args<C: CommandFactory>(argv: Vec<OsString>) -> Result<ArgMatches, ConfigError> {
    // A first, lenient parse finds the file and what the command line sets
    // (a flag the file provides, such as the gate's --app, is still missing).
    let Ok(loose) = C::command().ignore_errors(true).try_get_matches_from(&argv) else {
        return Ok(C::command().get_matches_from(&argv));
    };
    let file = loose.subcommand().and_then(|(section, sub)| {
        let path = sub
            .try_get_one::<std::path::PathBuf>("config")
            .ok()
            .flatten()?;
        SECTIONS
            .contains(&section)
            .then(|| (section.to_owned(), sub.clone(), path.clone()))
    });
    let Some((section, sub, path)) = file else {
        return Ok(C::command().get_matches_from(&argv));
    };
    let table = read(&path)?;
    let display = path.display().to_string();
    let extra = section_args::<C>(&table, &section, Some(&sub), &display)?;
    let mut combined = argv;
    combined.extend(extra);
    C::command()
        .try_get_matches_from(combined)
        .map_err(|e| match e.kind() {
            clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                e.exit()
            }
            _ => ConfigError::Combined {
                path: display,
                why: first_line(&e),
            },
        })
}

/// `laissez config check FILE`: every table of `path` applied to its
/// command alone; the settings each would run with, as TOML with where
/// each value came from, secrets hidden.
pub fn check<C: CommandFactory>(path: &Path) -> Result<String, ConfigError> {
    let table = read(path)?;
    let display = path.display().to_string();
    let mut out = String::new();
    for section in SECTIONS {
        if !table.contains_key(section) {
            continue;
        }
        let extra = section_args::<C>(&table, section, None, &display)?;
        let mut argv: Vec<OsString> = vec!["laissez".into(), section.into()];
        argv.extend(extra);
        let matches =
            C::command()
                .try_get_matches_from(argv)
                .map_err(|e| ConfigError::Combined {
                    path: display.clone(),
                    why: format!("[{section}]: {}", first_line(&e)),
                })?;
        let Some((_, sub)) = matches.subcommand() else {
            continue;
        };
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&format!("[{section}]\n"));
        let command = C::command();
        let Some(definition) = command.find_subcommand(section) else {
            continue;
        };
        for arg in settings(definition) {
            let id = arg.get_id().as_str();
            let Some(raw) = sub.get_raw(id) else {
                continue;
            };
            let values: Vec<String> = raw.map(|v| v.to_string_lossy().into_owned()).collect();
            let Some(key) = arg.get_long() else {
                continue;
            };
            let secret =
                arg.is_hide_env_values_set() || id.contains("token") || id.contains("secret");
            let value = if secret {
                toml::Value::String("(hidden)".into())
            } else if arg.get_action().takes_values() {
                match arg.get_action() {
                    ArgAction::Append => {
                        toml::Value::Array(values.into_iter().map(toml::Value::String).collect())
                    }
                    _ => toml::Value::String(values.join(" ")),
                }
            } else {
                toml::Value::Boolean(values.first().is_some_and(|v| v == "true"))
            };
            let source = match sub.value_source(id) {
                Some(ValueSource::CommandLine) => "file",
                Some(ValueSource::EnvVariable) => "environment",
                _ => "default",
            };
            out.push_str(&format!("{key} = {value} # {source}\n"));
        }
    }
    if out.is_empty() {
        return Err(ConfigError::Key {
            path: display,
            key: "the file".into(),
            why: "it has neither a [serve] nor a [gate] table".into(),
        });
    }
    Ok(out)
}

/// Reads and parses a file.
fn read(path: &Path) -> Result<toml::Table, ConfigError> {
    let display = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
        path: display.clone(),
        why: e.to_string(),
    })?;
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        let line = e
            .span()
            .map(|span| text[..span.start.min(text.len())].lines().count().max(1));
        ConfigError::Syntax {
            path: display.clone(),
            why: match line {
                Some(line) => format!("line {line}: {}", e.message().trim()),
                None => e.message().trim().to_owned(),
            },
        }
    })?;
    if let Some(unknown) = table.keys().find(|k| !SECTIONS.contains(&k.as_str())) {
        return Err(ConfigError::Key {
            path: display,
            key: unknown.clone(),
            why: "unknown table or key; a file has [serve] and [gate] tables".into(),
        });
    }
    Ok(table)
}

/// The flags that `table`'s `[section]` adds: one per key whose flag
/// `given` (the command line as parsed, if any) did not already set on the
/// command line or through the environment. Each value is checked by the
/// flag's own parser here, so an error names the key.
fn section_args<C: CommandFactory>(
    table: &toml::Table,
    section: &str,
    given: Option<&ArgMatches>,
    path: &str,
) -> Result<Vec<OsString>, ConfigError> {
    let key_error = |key: &str, why: String| ConfigError::Key {
        path: path.to_owned(),
        key: format!("[{section}] {key}"),
        why,
    };
    let Some(entries) = table.get(section) else {
        return Ok(Vec::new());
    };
    let Some(entries) = entries.as_table() else {
        return Err(key_error("", "must be a table".into()));
    };
    let mut command = C::command();
    command.build();
    let Some(definition) = command.find_subcommand(section) else {
        return Ok(Vec::new());
    };
    let mut extra = Vec::new();
    for (key, value) in entries {
        let Some(arg) = settings(definition).find(|a| a.get_long() == Some(key.as_str())) else {
            return Err(key_error(
                key,
                format!(
                    "unknown key; `laissez {section} --help` lists the flags, and each long name is a key"
                ),
            ));
        };
        let id = arg.get_id().as_str();
        if given.is_some_and(|m| {
            matches!(
                m.value_source(id),
                Some(ValueSource::CommandLine | ValueSource::EnvVariable)
            )
        }) {
            continue;
        }
        let flag = OsString::from(format!("--{key}"));
        if !arg.get_action().takes_values() {
            match value {
                toml::Value::Boolean(true) => extra.push(flag),
                toml::Value::Boolean(false) => {}
                _ => return Err(key_error(key, "must be true or false".into())),
            }
            continue;
        }
        let many = matches!(arg.get_action(), ArgAction::Append);
        let values = match value {
            toml::Value::Array(items) if many => items.iter().collect(),
            toml::Value::Array(_) => {
                return Err(key_error(key, "takes one value, not a list".into()));
            }
            other => vec![other],
        };
        for item in values {
            let text = match item {
                toml::Value::String(text) => text.clone(),
                toml::Value::Integer(n) => n.to_string(),
                toml::Value::Float(x) => x.to_string(),
                _ => {
                    return Err(key_error(key, "must be a string (or a number)".into()));
                }
            };
            check_value(arg, &text).map_err(|why| key_error(key, why))?;
            extra.push(flag.clone());
            extra.push(text.into());
        }
    }
    Ok(extra)
}

/// Runs `text` through the value parser of `arg` (alone: its relations to
/// other flags are checked when the whole command line is parsed).
fn check_value(arg: &clap::Arg, text: &str) -> Result<(), String> {
    let alone = clap::Arg::new(arg.get_id().clone())
        .value_parser(arg.get_value_parser().clone())
        .allow_hyphen_values(true)
        .action(ArgAction::Set);
    clap::Command::new("laissez")
        .no_binary_name(true)
        .arg(alone)
        .try_get_matches_from([OsString::from(text)])
        .map(drop)
        .map_err(|e| first_line(&e))
}

/// The arguments of `command` a file may set.
fn settings(command: &clap::Command) -> impl Iterator<Item = &clap::Arg> {
    command.get_arguments().filter(|a| {
        !NOT_SETTINGS.contains(&a.get_id().as_str()) && !a.is_global_set() && a.get_long().is_some()
    })
}

/// Clap's message, on one line, without its `error: ` prefix.
fn first_line(error: &clap::Error) -> String {
    let text = error.render().to_string();
    let line = text.lines().next().unwrap_or_default();
    line.strip_prefix("error: ")
        .unwrap_or(line)
        .trim()
        .to_owned()
}
