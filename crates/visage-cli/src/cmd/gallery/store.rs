//! The gallery a command works on: the embedded SQLite file, or, in a build with the `milvus`
//! feature, a gallery kept in Milvus and named `milvus://HOST:PORT/NAME` (crates/visage-gallery-milvus).
//! Both answer the same calls; the decision rule (threshold, unknown, top-k) is the caller's.

use anyhow::Result;
use std::fmt;
use std::path::{Path, PathBuf};
use visage::{Metric, ModelDescriptor};
use visage_gallery::{
    Contract, EnrollOptions, EnrollOutcome, ForgetOutcome, Gallery, Match, NewTemplate, OpenOptions, SubjectInfo, TemplateRecord,
};

/// Where a gallery lives, from `--gallery`.
pub enum Location {
    /// A SQLite file.
    File(PathBuf),
    /// `milvus://HOST:PORT/NAME`.
    #[cfg_attr(not(feature = "milvus"), allow(dead_code))]
    Milvus(String),
}

impl Location {
    /// `--gallery`'s value: a `milvus://` URL or a file.
    pub fn of(p: &Path) -> Result<Location> {
        match p.to_str() {
            Some(s) if s.starts_with("milvus://") => {
                if cfg!(feature = "milvus") {
                    Ok(Location::Milvus(s.to_string()))
                } else {
                    anyhow::bail!(
                        "{s}: this visage was built without Milvus; build it with `cargo build --release -p visage-cli --features milvus` to keep galleries in Milvus"
                    )
                }
            }
            _ => Ok(Location::File(p.to_path_buf())),
        }
    }
}

/// An open gallery.
pub enum Store {
    /// The embedded gallery.
    Sqlite(Gallery),
    /// A gallery in Milvus.
    #[cfg(feature = "milvus")]
    Milvus(visage_gallery_milvus::MilvusGallery),
}

/// The same call on either kind of gallery, its error made an `anyhow::Error` (the original
/// error stays reachable by `downcast_ref`).
macro_rules! each {
    ($s:expr, $g:ident => $e:expr) => {
        match $s {
            Store::Sqlite($g) => Ok($e?),
            #[cfg(feature = "milvus")]
            Store::Milvus($g) => Ok($e?),
        }
    };
}

impl Store {
    /// Opens the gallery at `loc` to enroll embeddings of the model `d` describes; a missing
    /// one is created for it (`metric`, or L2).
    pub fn open_to_enroll(loc: &Location, d: &ModelDescriptor, metric: Option<Metric>) -> Result<Store> {
        match loc {
            Location::File(p) => Ok(Store::Sqlite(OpenOptions::for_model(d).create(true).metric(metric).open(p)?)),
            #[cfg(feature = "milvus")]
            Location::Milvus(u) => {
                Ok(Store::Milvus(visage_gallery_milvus::MilvusOptions::for_model(d).create(true).metric(metric).open(u)?))
            }
            #[cfg(not(feature = "milvus"))]
            Location::Milvus(_) => unreachable!("Location::of refuses milvus:// without the feature"),
        }
    }

    /// Opens an existing gallery at `loc`, whatever model it holds (`read_only` for a file).
    pub fn open_existing(loc: &Location, read_only: bool) -> Result<Store> {
        match loc {
            Location::File(p) => Ok(Store::Sqlite(OpenOptions::any_model().read_only(read_only).open(p)?)),
            #[cfg(feature = "milvus")]
            Location::Milvus(u) => Ok(Store::Milvus(visage_gallery_milvus::MilvusOptions::any_model().open(u)?)),
            #[cfg(not(feature = "milvus"))]
            Location::Milvus(_) => unreachable!("Location::of refuses milvus:// without the feature"),
        }
    }

    /// The file's path or the Milvus URL, for messages.
    pub fn place(&self) -> Place<'_> {
        Place(self)
    }

    /// True for a gallery in Milvus.
    pub fn is_milvus(&self) -> bool {
        !matches!(self, Store::Sqlite(_))
    }

    pub fn contract(&self) -> &Contract {
        match self {
            Store::Sqlite(g) => g.contract(),
            #[cfg(feature = "milvus")]
            Store::Milvus(g) => g.contract(),
        }
    }

    pub fn check_model(&self, d: &ModelDescriptor) -> Result<()> {
        match self {
            Store::Sqlite(g) => Ok(g.check_model(d)?),
            #[cfg(feature = "milvus")]
            Store::Milvus(g) => Ok(g.check_model_of(d)?),
        }
    }

    pub fn threshold(&self) -> Result<f64> {
        each!(self, g => g.threshold())
    }

    pub fn set_threshold(&self, t: f64) -> Result<()> {
        each!(self, g => g.set_threshold(t))
    }

    pub fn counts(&self) -> Result<(usize, usize)> {
        each!(self, g => g.counts())
    }

    pub fn has_photo(&self, name: &str, photo_sha256: &str) -> Result<bool> {
        each!(self, g => g.has_photo(name, photo_sha256))
    }

    pub fn enroll_with(&self, name: &str, metadata: Option<&str>, templates: &[NewTemplate], o: EnrollOptions) -> Result<EnrollOutcome> {
        match self {
            Store::Sqlite(g) => Ok(g.enroll_with(name, metadata, templates, o)?),
            #[cfg(feature = "milvus")]
            Store::Milvus(g) => Ok(g.enroll(name, metadata, templates, o.allow_duplicate)?),
        }
    }

    pub fn subjects(&self) -> Result<Vec<SubjectInfo>> {
        each!(self, g => g.subjects())
    }

    pub fn rename(&self, old: &str, new: &str) -> Result<()> {
        each!(self, g => g.rename(old, new))
    }

    pub fn set_metadata(&self, name: &str, metadata: &str) -> Result<()> {
        each!(self, g => g.set_metadata(name, metadata))
    }

    pub fn forget(&self, name: &str) -> Result<ForgetOutcome> {
        each!(self, g => g.forget(name))
    }

    pub fn templates(&self) -> Result<Vec<TemplateRecord>> {
        each!(self, g => g.templates())
    }

    pub fn templates_of(&self, name: &str) -> Result<Vec<Vec<f32>>> {
        each!(self, g => g.templates_of(name))
    }

    pub fn distance_to(&self, name: &str, probe: &[f32]) -> Result<f32> {
        each!(self, g => g.distance_to(name, probe))
    }

    pub fn search(&self, probe: &[f32], k: usize) -> Result<Vec<Match>> {
        each!(self, g => g.search(probe, k))
    }
}

/// A gallery's place (file path or URL), displayed.
pub struct Place<'a>(&'a Store);

impl fmt::Display for Place<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Store::Sqlite(g) => write!(f, "{}", g.path().display()),
            #[cfg(feature = "milvus")]
            Store::Milvus(g) => write!(f, "{}", g.url()),
        }
    }
}

/// A refused duplicate face, from either kind of gallery: (who holds it, who it was offered
/// for, photo SHA-256, face box text).
pub fn duplicate_of(e: &anyhow::Error) -> Option<(&str, &str, &str, &str)> {
    if let Some(visage_gallery::GalleryError::Duplicate { existing, name, photo_sha256, face_box, .. }) = e.downcast_ref() {
        return Some((existing, name, photo_sha256, face_box));
    }
    #[cfg(feature = "milvus")]
    if let Some(visage_gallery_milvus::MilvusError::Duplicate { existing, name, photo_sha256, face_box, .. }) = e.downcast_ref() {
        return Some((existing, name, photo_sha256, face_box));
    }
    None
}
