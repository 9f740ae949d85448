//! Helpers the CLI's end-to-end tests share: run the `visage` binary and read what it wrote.
// Each test binary uses only some of these.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

/// Runs the `visage` binary built for these tests with `args` and waits for it.
pub fn visage(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_visage")).args(args).output().expect("run visage")
}

/// The run's standard output and standard error, each as text.
pub fn out_err(o: &Output) -> (String, String) {
    (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

/// The run's standard output followed by its standard error, as one text.
pub fn all_text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// A path as an argument string.
pub fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}
