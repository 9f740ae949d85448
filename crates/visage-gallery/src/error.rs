//! Gallery errors.

use std::path::PathBuf;
use thiserror::Error;

/// What can go wrong with a gallery.
#[derive(Debug, Error)]
pub enum GalleryError {
    /// Another process holds the write lock longer than the busy timeout.
    #[error("gallery {path} is busy (another process is writing to it); try again", path = .path.display())]
    Busy {
        /// The gallery file.
        path: PathBuf,
    },
    /// An embedding does not fit the gallery's contract.
    #[error("gallery {path} holds {want}; refusing {got}", path = .path.display())]
    Contract {
        /// The gallery file.
        path: PathBuf,
        /// The gallery's contract.
        want: String,
        /// What was offered.
        got: String,
    },
    /// No subject of that name.
    #[error("no one called {name:?} is enrolled in {path}", path = .path.display())]
    UnknownSubject {
        /// The name asked for.
        name: String,
        /// The gallery file.
        path: PathBuf,
    },
    /// A rename onto an existing name.
    #[error("{name:?} is already enrolled in {path}", path = .path.display())]
    NameTaken {
        /// The name.
        name: String,
        /// The gallery file.
        path: PathBuf,
    },
    /// The file is not a visage gallery (or a newer schema).
    #[error("{path} is not a visage gallery: {reason}", path = .path.display())]
    NotAGallery {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Invalid input (empty name, bad metadata, ...).
    #[error("{0}")]
    Invalid(String),
    /// SQLite failed.
    #[error("gallery {path}: {source}", path = .path.display())]
    Sqlite {
        /// The gallery file.
        path: PathBuf,
        /// The cause.
        source: rusqlite::Error,
    },
    /// The approximate index failed.
    #[error("approximate index: {0}")]
    Index(String),
}

impl GalleryError {
    /// Wraps a SQLite error, turning lock timeouts into [`GalleryError::Busy`].
    pub(crate) fn sqlite(path: &std::path::Path, e: rusqlite::Error) -> Self {
        if let rusqlite::Error::SqliteFailure(f, _) = &e {
            if matches!(f.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) {
                return GalleryError::Busy { path: path.to_path_buf() };
            }
            if f.code == rusqlite::ErrorCode::NotADatabase {
                return GalleryError::NotAGallery { path: path.to_path_buf(), reason: "not a SQLite database".into() };
            }
        }
        GalleryError::Sqlite { path: path.to_path_buf(), source: e }
    }
}
