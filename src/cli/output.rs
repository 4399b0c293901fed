//! Plain-text tables and JSON output for the CLI.

use std::io::Write;

use serde_json::Value;

use super::CliError;

/// Prints rows under a header, columns padded to the widest cell.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> Result<(), CliError> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let mut out = std::io::stdout().lock();
    let line = |cells: Vec<&str>| -> String {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                let pad = widths[i].saturating_sub(c.chars().count());
                s.push_str(c);
                s.push_str(&" ".repeat(pad + 2));
            }
        }
        s.trim_end().to_string()
    };
    writeln!(out, "{}", line(header.to_vec()))?;
    for row in rows {
        writeln!(out, "{}", line(row.iter().map(String::as_str).collect()))?;
    }
    Ok(())
}

/// Prints `key: value` lines, keys aligned.
pub fn fields(pairs: &[(&str, String)]) -> Result<(), CliError> {
    let width = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let mut out = std::io::stdout().lock();
    for (k, v) in pairs {
        writeln!(out, "{k:<width$}  {v}")?;
    }
    Ok(())
}

/// Pretty JSON on stdout.
pub fn json(value: &Value) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_default()
    )?;
    Ok(())
}

/// One line on stdout.
pub fn line(text: &str) -> Result<(), CliError> {
    writeln!(std::io::stdout().lock(), "{text}")?;
    Ok(())
}

/// A string field of a JSON object, or `-`.
pub fn text(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Bool(b)) => b.to_string(),
        _ => "-".into(),
    }
}

/// A timestamp field shortened to `YYYY-MM-DD HH:MM` UTC, or `-`.
pub fn when(v: &Value, key: &str) -> String {
    match v.get(key).and_then(Value::as_str) {
        Some(s) if s.len() >= 16 => format!("{} {}", &s[..10], &s[11..16]),
        Some(s) => s.to_string(),
        None => "-".into(),
    }
}
