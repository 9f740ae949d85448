//! JSON output helpers.

use serde::Serialize;
use std::io::Write;

/// Prints one JSON value per line on stdout.
pub fn json_line<T: Serialize>(value: &T) {
    let mut out = std::io::stdout().lock();
    let _ = serde_json::to_writer(&mut out, value);
    let _ = writeln!(out);
}

/// An input that failed: printed on stderr and as a JSON line, so scripts see it too.
pub fn report_error(path: &std::path::Path, err: &dyn std::fmt::Display) {
    eprintln!("visage: {err}");
    json_line(&serde_json::json!({ "path": path, "error": err.to_string() }));
}
