//! Gallery errors: one sentence each, naming the cause once (no error is both printed in the
//! message and chained as a source, so it never appears twice in a report).

use std::path::PathBuf;
use thiserror::Error;

/// Longest part of a name echoed in a message, in characters.
const SHOWN_CHARS: usize = 64;

/// A name quoted for a message, cut to [`SHOWN_CHARS`] characters: as a person typed it
/// (accents, combining marks and other scripts as they are, not as Rust escapes), with only
/// quotes, backslashes, control characters and invisible or direction-changing characters
/// escaped, so that a message cannot be forged or reordered by a name.
pub fn quoted_name(name: &str) -> String {
    let n = name.chars().count();
    let head: String = name.chars().take(SHOWN_CHARS).collect();
    let mut out = String::with_capacity(head.len() + 2);
    out.push('"');
    for c in head.chars() {
        let invisible = matches!(c, '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2060}'..='\u{2069}' | '\u{feff}');
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            _ if c.is_control() || invisible => out.extend(c.escape_default()),
            _ => out.push(c),
        }
    }
    out.push('"');
    if n > SHOWN_CHARS {
        out.push_str(&format!("... ({n} characters)"));
    }
    out
}

pub(crate) use quoted_name as shown;

/// What can go wrong with a gallery.
#[derive(Debug, Error)]
pub enum GalleryError {
    /// Another process holds the write lock longer than the busy timeout.
    #[error("gallery {path} is busy (another process is writing to it); try again", path = .path.display())]
    Busy {
        /// The gallery file.
        path: PathBuf,
    },
    /// An embedding (or a requested metric) does not fit the gallery's contract.
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
    #[error("no one called {} is enrolled in {}", shown(.name), .path.display())]
    UnknownSubject {
        /// The name asked for.
        name: String,
        /// The gallery file.
        path: PathBuf,
    },
    /// A rename onto an existing name.
    #[error("{} is already enrolled in {}", shown(.name), .path.display())]
    NameTaken {
        /// The name.
        name: String,
        /// The gallery file.
        path: PathBuf,
    },
    /// The same face of the same photo is already enrolled under another name.
    #[error(
        "this face ({face_box} in photo {photo}) is already enrolled as {} in {}; enrolling it as {} too needs allow-duplicate",
        shown(.existing), .path.display(), shown(.name), photo = &.photo_sha256[..12.min(.photo_sha256.len())]
    )]
    Duplicate {
        /// The gallery file.
        path: PathBuf,
        /// Who holds it already.
        existing: String,
        /// Who it was offered for.
        name: String,
        /// The photo's SHA-256.
        photo_sha256: String,
        /// The face box, `[l,t,r,b]`.
        face_box: String,
    },
    /// A write on a gallery that is open read-only or cannot be written.
    #[error("gallery {path} is read-only: {reason}", path = .path.display())]
    ReadOnly {
        /// The gallery file.
        path: PathBuf,
        /// Why, and what was asked.
        reason: String,
    },
    /// The file is not a visage gallery (or of a newer schema).
    #[error("{path} is not a visage gallery this version can open: {reason}", path = .path.display())]
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
    #[error("gallery {path}: {cause}", path = .path.display())]
    Sqlite {
        /// The gallery file.
        path: PathBuf,
        /// The cause (part of the message, not chained as a source).
        cause: rusqlite::Error,
    },
    /// The vector index failed.
    #[error("vector index: {0}")]
    Index(String),
}

impl GalleryError {
    /// Wraps a SQLite error, turning lock timeouts into [`GalleryError::Busy`] and write
    /// refusals into [`GalleryError::ReadOnly`].
    pub(crate) fn sqlite(path: &std::path::Path, e: rusqlite::Error) -> Self {
        if let rusqlite::Error::SqliteFailure(f, _) = &e {
            match f.code {
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked => {
                    return GalleryError::Busy { path: path.to_path_buf() }
                }
                rusqlite::ErrorCode::NotADatabase => {
                    return GalleryError::NotAGallery { path: path.to_path_buf(), reason: "not a SQLite database".into() }
                }
                rusqlite::ErrorCode::ReadOnly => {
                    return GalleryError::ReadOnly {
                        path: path.to_path_buf(),
                        reason: "the file or its folder cannot be written (open it read-only to search it)".into(),
                    }
                }
                _ => {}
            }
        }
        GalleryError::Sqlite { path: path.to_path_buf(), cause: e }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn long_names_are_cut_and_causes_appear_once() {
        let long = "x".repeat(10_000);
        let e = GalleryError::UnknownSubject { name: long, path: "g.db".into() };
        let m = e.to_string();
        assert!(m.len() < 200 && m.contains("(10000 characters)"), "{m}");
        let e = GalleryError::sqlite(std::path::Path::new("g.db"), rusqlite::Error::InvalidQuery);
        assert!(e.source().is_none(), "the cause is in the message, not chained too");
        assert_eq!(e.to_string().matches("Query is not read-only").count(), 1, "{e}");
    }

    #[test]
    fn names_are_quoted_as_typed_with_only_control_characters_escaped() {
        assert_eq!(shown("Jose\u{301} M\u{fc}ller"), "\"Jose\u{301} M\u{fc}ller\"");
        assert_eq!(shown("a\tb\u{1b}[31m\"q\""), "\"a\\tb\\u{1b}[31m\\\"q\\\"\"");
        let e = GalleryError::UnknownSubject { name: "Zo\u{eb}\u{200b}".into(), path: "g.db".into() };
        assert!(e.to_string().contains("\"Zo\u{eb}\\u{200b}\""), "{e}");
    }
}
