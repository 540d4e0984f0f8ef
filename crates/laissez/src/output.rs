//! How answers are shown: pretty JSON with `--json`, otherwise tables and
//! short lines for people.

use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use serde_json::Value;

/// Prints `value` as pretty JSON.
pub fn json(value: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_default()
    );
}

/// A table with these headers and rows, arranged to fit the terminal: its
/// width from `COLUMNS` when set (as shells export it), else from the
/// terminal itself; output to a pipe or file is not wrapped.
pub fn table(headers: &[&str], rows: Vec<Vec<String>>) {
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(headers.to_vec());
    let columns = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<u16>().ok())
        .filter(|c| *c >= MIN_WIDTH);
    if let Some(width) = columns {
        table.set_width(width);
    }
    for row in rows {
        table.add_row(row);
    }
    println!("{table}");
}

/// A Unix time as `YYYY-MM-DD HH:MM` UTC; `never` when absent.
pub fn time(value: &Value) -> String {
    let Some(seconds) = value.as_i64() else {
        return "never".into();
    };
    match time::OffsetDateTime::from_unix_timestamp(seconds) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02}",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute()
        ),
        Err(_) => seconds.to_string(),
    }
}

/// A JSON string field, or `—`.
pub fn text(value: &Value) -> String {
    match value {
        Value::String(s) if !s.is_empty() => s.clone(),
        Value::Null => "—".into(),
        Value::String(_) => "—".into(),
        other => other.to_string(),
    }
}

/// A credential as `lzat…x9Qa` from its listed `prefix` and `last4`: the
/// mask `laissez scan` shows, so one token looks the same everywhere.
pub fn masked(credential: &Value) -> String {
    laissez_scan::mask_parts(
        credential["prefix"].as_str().unwrap_or(""),
        credential["last4"].as_str().unwrap_or(""),
    )
}

/// A server's hint of a secret (`lzat_…x9Qa`) in the same mask.
pub fn hint(value: &Value) -> String {
    match value.as_str().and_then(|h| h.split_once('…')) {
        Some((start, last4)) => laissez_scan::mask_parts(start, last4),
        None => text(value),
    }
}

/// `kind:name` for a principal reference.
pub fn principal(value: &Value) -> String {
    match (value["kind"].as_str(), value["name"].as_str()) {
        (Some(kind), Some(name)) => format!("{kind}:{name}"),
        _ => "—".into(),
    }
}

/// A chain of principal references as `user:alice → agent:bot`.
pub fn chain(value: &Value) -> String {
    let links: Vec<String> = value
        .as_array()
        .map(|a| a.iter().map(principal).collect())
        .unwrap_or_default();
    if links.is_empty() {
        "—".into()
    } else {
        links.join(" → ")
    }
}

/// A credential restriction as `role on scope`.
pub fn restriction(value: &Value) -> String {
    let listed = value["permissions"].as_array().map(|listed| {
        listed
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(",")
    });
    let what = match (value["role"].as_str(), listed) {
        (None, None) => None,
        (Some(role), None) => Some(format!("role {role}")),
        (None, Some(listed)) => Some(listed),
        (Some(role), Some(listed)) => Some(format!("role {role}: only {listed}")),
    };
    match (what, value["scope"].as_str()) {
        (None, None) => "(principal's policies)".into(),
        (Some(what), None) => what,
        (None, Some(scope)) => format!("scope {scope}"),
        (Some(what), Some(scope)) => format!("{what} on {scope}"),
    }
}

/// Narrower `COLUMNS` values are ignored: no table is readable below it.
const MIN_WIDTH: u16 = 20;
