//! JSON output helpers.

use serde::Serialize;
use std::io::Write;

/// Prints one JSON value per line on stdout.
pub fn json_line<T: Serialize>(value: &T) {
    let mut out = std::io::stdout().lock();
    let _ = serde_json::to_writer(&mut out, value);
    let _ = writeln!(out);
}

/// A path as text for JSON and messages: names that are not valid UTF-8 are printed lossily
/// (invalid bytes become U+FFFD) instead of failing.
pub fn path_text(path: &std::path::Path) -> String {
    path.to_string_lossy().into_owned()
}

/// An input that failed: always on stderr, and in JSON mode also as one JSON error object
/// (`{"path": ..., "error": ...}`) on stdout, so scripts reading stdout see it too.
pub fn report_error(path: &std::path::Path, err: &dyn std::fmt::Display, json: bool) {
    eprintln!("visage: {err}");
    if json {
        json_line(&serde_json::json!({ "path": path_text(path), "error": err.to_string() }));
    }
}

/// An error and its causes as one sentence: each cause once (causes whose text an outer
/// message already contains, as when an error prints its source itself, are not repeated).
pub fn error_text(e: &anyhow::Error) -> String {
    let mut s = String::new();
    for cause in e.chain() {
        let c = cause.to_string();
        if c.is_empty() || s.contains(&c) {
            continue;
        }
        if !s.is_empty() && c.contains(&s) {
            s = c;
            continue;
        }
        if !s.is_empty() {
            s.push_str(": ");
        }
        s.push_str(&c);
    }
    s
}

/// An `f32` as the `f64` with the same shortest decimal form (`0.1f32` becomes `0.1`, not
/// `0.10000000149011612`), for thresholds that are printed and compared as `f64`.
pub fn f32_as_decimal(x: f32) -> f64 {
    x.to_string().parse().unwrap_or(x as f64)
}

/// An embedding for JSON: each `f32` by its shortest decimal form (see [`f32_as_decimal`]),
/// so that it reads back as the same `f32` without `f64` widening noise.
pub fn f32s_as_decimal(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| f32_as_decimal(x)).collect()
}
