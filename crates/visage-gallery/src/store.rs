//! The SQLite file: subjects, templates and the embedding contract.

use crate::index::SearchIndex;
use crate::schema::{CREATE, SCHEMA_VERSION};
use crate::{default_threshold, Candidate, GalleryError, APPROX_THRESHOLD};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use visage_core::Metric;

/// Model id of dlib's ResNet-29 embedder.
pub const DLIB_MODEL_ID: &str = "dlib_face_recognition_resnet_model_v1";

/// How long a writer waits for another one before reporting [`GalleryError::Busy`].
const BUSY_TIMEOUT: Duration = Duration::from_secs(15);

/// What embeddings a gallery holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contract {
    /// The model that produced them.
    pub model: String,
    /// Their dimension.
    pub dim: usize,
    /// How they are compared.
    pub metric: Metric,
}

impl fmt::Display for Contract {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-d embeddings of {} compared by {}", self.dim, self.model, self.metric)
    }
}

/// A template to add: one face of one photo.
#[derive(Debug, Clone)]
pub struct NewTemplate {
    /// The embedding.
    pub embedding: Vec<f32>,
    /// SHA-256 (hex) of the photo file: makes re-enrolling the same photo a no-op.
    pub photo_sha256: String,
    /// The face rectangle in the photo, `[left, top, right, bottom]`.
    pub face_box: [i64; 4],
    /// Where the photo came from (informational).
    pub source: Option<String>,
}

/// A stored template.
#[derive(Debug, Clone)]
pub struct TemplateRecord {
    /// The subject's name.
    pub name: String,
    /// The embedding.
    pub embedding: Vec<f32>,
    /// SHA-256 of the source photo.
    pub photo_sha256: String,
}

/// One enrolled person.
#[derive(Debug, Clone, PartialEq)]
pub struct SubjectInfo {
    /// Unique name.
    pub name: String,
    /// Free-form JSON metadata.
    pub metadata: Option<String>,
    /// Number of templates.
    pub templates: usize,
    /// Unix time of enrollment.
    pub created_at: i64,
}

/// What [`Gallery::enroll`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnrollOutcome {
    /// Templates added.
    pub added: usize,
    /// Templates that were already there (same photo and face): skipped.
    pub already: usize,
}

/// A subject's name and distance in a search result.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Match {
    /// Subject name.
    pub name: String,
    /// Distance of its nearest template.
    pub distance: f32,
}

/// The searchable snapshot of a gallery.
struct Loaded {
    index: SearchIndex,
    names: Vec<String>,
}

/// An open gallery. Safe to share between threads.
pub struct Gallery {
    path: PathBuf,
    conn: Mutex<Connection>,
    contract: Contract,
    loaded: Mutex<Option<Arc<Loaded>>>,
    approx_threshold: usize,
}

/// Counts changes to the templates: cached derived data (the HNSW graph) is valid only for
/// the generation it was built from.
fn bump_generation(tx: &rusqlite::Transaction) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO meta (key, value) VALUES ('generation', '1') ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1",
        [],
    )?;
    Ok(())
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

fn to_blob(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn from_blob(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

impl Gallery {
    /// Opens the gallery at `path` for embeddings of `model` with `dim` dimensions.
    ///
    /// A missing file is created with metric `create` (and its default threshold) when
    /// `create` is given, and is an error otherwise. An existing gallery of another model or
    /// dimension is refused.
    pub fn open(path: &Path, model: &str, dim: usize, create: Option<Metric>) -> Result<Self, GalleryError> {
        let exists = path.exists();
        if !exists && create.is_none() {
            return Err(GalleryError::NotAGallery { path: path.to_path_buf(), reason: "no such file (enroll someone first)".into() });
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| GalleryError::Invalid(format!("creating {}: {e}", dir.display())))?;
        }
        let err = |e| GalleryError::sqlite(path, e);
        let conn = Connection::open(path).map_err(err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(err)?;
        // WAL: readers never block the writer; a killed process leaves a consistent file.
        conn.pragma_update(None, "journal_mode", "WAL").map_err(err)?;
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(err)?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(err)?;
        // Deleted faces are overwritten, not left in free pages (forget is a privacy request).
        conn.pragma_update(None, "secure_delete", "ON").map_err(err)?;
        let mut g = Gallery {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
            contract: Contract { model: model.into(), dim, metric: create.unwrap_or_default() },
            loaded: Mutex::new(None),
            approx_threshold: APPROX_THRESHOLD,
        };
        g.init_or_check(model, dim, create)?;
        Ok(g)
    }

    fn init_or_check(&mut self, model: &str, dim: usize, create: Option<Metric>) -> Result<(), GalleryError> {
        let path = self.path.clone();
        let err = |e| GalleryError::sqlite(&path, e);
        let mut conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(err)?;
        let has_meta: bool = tx
            .query_row("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'meta'", [], |r| r.get::<_, i64>(0))
            .map_err(err)?
            > 0;
        let has_tables: i64 = tx.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0)).map_err(err)?;
        if !has_meta {
            if has_tables > 0 {
                return Err(GalleryError::NotAGallery { path, reason: "a SQLite database without visage's tables".into() });
            }
            let Some(metric) = create else {
                return Err(GalleryError::NotAGallery { path, reason: "empty database".into() });
            };
            tx.execute_batch(CREATE).map_err(err)?;
            for (k, v) in [
                ("schema_version", SCHEMA_VERSION.to_string()),
                ("model", model.to_string()),
                ("dim", dim.to_string()),
                ("metric", metric.name().to_string()),
                ("threshold", default_threshold(metric).to_string()),
                ("created_at", now().to_string()),
            ] {
                tx.execute("INSERT INTO meta (key, value) VALUES (?1, ?2)", params![k, v]).map_err(err)?;
            }
        }
        let meta = |k: &str| -> Result<String, GalleryError> {
            tx.query_row("SELECT value FROM meta WHERE key = ?1", [k], |r| r.get(0))
                .optional()
                .map_err(err)?
                .ok_or_else(|| GalleryError::NotAGallery { path: path.clone(), reason: format!("meta key {k} missing") })
        };
        let version: i64 = meta("schema_version")?.parse().unwrap_or(i64::MAX);
        if version > SCHEMA_VERSION {
            return Err(GalleryError::NotAGallery {
                path,
                reason: format!("schema version {version} is newer than this visage ({SCHEMA_VERSION})"),
            });
        }
        let stored = Contract {
            model: meta("model")?,
            dim: meta("dim")?.parse().map_err(|_| GalleryError::NotAGallery { path: path.clone(), reason: "bad dim".into() })?,
            metric: meta("metric")?.parse().map_err(|e: String| GalleryError::NotAGallery { path: path.clone(), reason: e })?,
        };
        if stored.model != model || stored.dim != dim {
            return Err(GalleryError::Contract { path, want: stored.to_string(), got: format!("{dim}-d embeddings of {model}") });
        }
        tx.commit().map_err(err)?;
        drop(conn);
        self.contract = stored;
        Ok(())
    }

    /// Searches switch from exact to the HNSW graph from this many templates
    /// ([`APPROX_THRESHOLD`] by default).
    pub fn with_approx_threshold(mut self, templates: usize) -> Self {
        self.approx_threshold = templates;
        self
    }

    /// Whether searches currently run on the HNSW graph.
    pub fn is_approximate(&self) -> Result<bool, GalleryError> {
        Ok(self.loaded()?.index.is_approximate())
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The embedding contract.
    pub fn contract(&self) -> &Contract {
        &self.contract
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> GalleryError + '_ {
        move |e| GalleryError::sqlite(&self.path, e)
    }

    /// The stored same-person threshold.
    pub fn threshold(&self) -> Result<f64, GalleryError> {
        let v: String = self.conn().query_row("SELECT value FROM meta WHERE key = 'threshold'", [], |r| r.get(0)).map_err(self.err())?;
        v.parse().map_err(|_| GalleryError::NotAGallery { path: self.path.clone(), reason: "bad threshold".into() })
    }

    /// Stores a new same-person threshold.
    pub fn set_threshold(&self, t: f64) -> Result<(), GalleryError> {
        if !(t.is_finite() && t >= 0.0) {
            return Err(GalleryError::Invalid(format!("threshold {t} must be a non-negative number")));
        }
        self.conn().execute("UPDATE meta SET value = ?1 WHERE key = 'threshold'", [t.to_string()]).map_err(self.err())?;
        Ok(())
    }

    fn check_embedding(&self, e: &[f32]) -> Result<(), GalleryError> {
        if e.len() != self.contract.dim {
            return Err(GalleryError::Contract {
                path: self.path.clone(),
                want: self.contract.to_string(),
                got: format!("a {}-d embedding", e.len()),
            });
        }
        if e.iter().any(|x| !x.is_finite()) {
            return Err(GalleryError::Invalid("embedding holds NaN or infinite values".into()));
        }
        Ok(())
    }

    fn check_name(name: &str) -> Result<(), GalleryError> {
        if name.trim().is_empty() || name.trim() != name || name.len() > 200 || name.chars().any(char::is_control) {
            return Err(GalleryError::Invalid(format!(
                "invalid name {name:?}: names are 1 to 200 characters, without control characters or surrounding spaces"
            )));
        }
        Ok(())
    }

    /// Adds templates for `name` (created if new) in one transaction. Templates of a photo
    /// and face already enrolled for this person are skipped, so re-running is harmless.
    pub fn enroll(&self, name: &str, metadata: Option<&str>, templates: &[NewTemplate]) -> Result<EnrollOutcome, GalleryError> {
        Self::check_name(name)?;
        if let Some(m) = metadata {
            serde_json::from_str::<serde_json::Value>(m).map_err(|e| GalleryError::Invalid(format!("metadata must be JSON: {e}")))?;
        }
        for t in templates {
            self.check_embedding(&t.embedding)?;
        }
        let err = self.err();
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(&err)?;
        tx.execute("INSERT OR IGNORE INTO subjects (name, metadata, created_at) VALUES (?1, ?2, ?3)", params![name, metadata, now()])
            .map_err(&err)?;
        if let Some(m) = metadata {
            tx.execute("UPDATE subjects SET metadata = ?2 WHERE name = ?1", params![name, m]).map_err(&err)?;
        }
        let id: i64 = tx.query_row("SELECT id FROM subjects WHERE name = ?1", [name], |r| r.get(0)).map_err(&err)?;
        let mut out = EnrollOutcome { added: 0, already: 0 };
        {
            let mut ins = tx
                .prepare("INSERT OR IGNORE INTO templates (subject_id, embedding, photo_sha256, face_box, source, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")
                .map_err(&err)?;
            for t in templates {
                let b = t.face_box;
                let n = ins
                    .execute(params![
                        id,
                        to_blob(&t.embedding),
                        t.photo_sha256,
                        format!("[{},{},{},{}]", b[0], b[1], b[2], b[3]),
                        t.source,
                        now()
                    ])
                    .map_err(&err)?;
                if n == 1 {
                    out.added += 1;
                } else {
                    out.already += 1;
                }
            }
        }
        if out.added > 0 {
            bump_generation(&tx).map_err(&err)?;
        }
        tx.commit().map_err(&err)?;
        drop(conn);
        self.invalidate();
        Ok(out)
    }

    /// Whether a photo (by hash) is already enrolled for `name`.
    pub fn has_photo(&self, name: &str, photo_sha256: &str) -> Result<bool, GalleryError> {
        let n: i64 = self
            .conn()
            .query_row(
                "SELECT count(*) FROM templates t JOIN subjects s ON s.id = t.subject_id WHERE s.name = ?1 AND t.photo_sha256 = ?2",
                params![name, photo_sha256],
                |r| r.get(0),
            )
            .map_err(self.err())?;
        Ok(n > 0)
    }

    /// Every subject with its template count, by name.
    pub fn subjects(&self) -> Result<Vec<SubjectInfo>, GalleryError> {
        let conn = self.conn();
        let mut st = conn
            .prepare(
                "SELECT s.name, s.metadata, s.created_at, count(t.id) FROM subjects s LEFT JOIN templates t ON t.subject_id = s.id
                 GROUP BY s.id ORDER BY s.name",
            )
            .map_err(self.err())?;
        let rows = st
            .query_map([], |r| {
                Ok(SubjectInfo { name: r.get(0)?, metadata: r.get(1)?, created_at: r.get(2)?, templates: r.get::<_, i64>(3)? as usize })
            })
            .map_err(self.err())?;
        rows.collect::<Result<_, _>>().map_err(self.err())
    }

    /// (subjects, templates).
    pub fn counts(&self) -> Result<(usize, usize), GalleryError> {
        let conn = self.conn();
        let s: i64 = conn.query_row("SELECT count(*) FROM subjects", [], |r| r.get(0)).map_err(self.err())?;
        let t: i64 = conn.query_row("SELECT count(*) FROM templates", [], |r| r.get(0)).map_err(self.err())?;
        Ok((s as usize, t as usize))
    }

    /// Renames a subject.
    pub fn rename(&self, old: &str, new: &str) -> Result<(), GalleryError> {
        Self::check_name(new)?;
        let err = self.err();
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(&err)?;
        let taken: i64 = tx.query_row("SELECT count(*) FROM subjects WHERE name = ?1", [new], |r| r.get(0)).map_err(&err)?;
        if taken > 0 {
            return Err(GalleryError::NameTaken { name: new.into(), path: self.path.clone() });
        }
        let n = tx.execute("UPDATE subjects SET name = ?2 WHERE name = ?1", params![old, new]).map_err(&err)?;
        if n == 0 {
            return Err(GalleryError::UnknownSubject { name: old.into(), path: self.path.clone() });
        }
        bump_generation(&tx).map_err(&err)?;
        tx.commit().map_err(&err)?;
        drop(conn);
        self.invalidate();
        Ok(())
    }

    /// Sets a subject's metadata (JSON).
    pub fn set_metadata(&self, name: &str, metadata: &str) -> Result<(), GalleryError> {
        serde_json::from_str::<serde_json::Value>(metadata).map_err(|e| GalleryError::Invalid(format!("metadata must be JSON: {e}")))?;
        let n = self.conn().execute("UPDATE subjects SET metadata = ?2 WHERE name = ?1", params![name, metadata]).map_err(self.err())?;
        if n == 0 {
            return Err(GalleryError::UnknownSubject { name: name.into(), path: self.path.clone() });
        }
        Ok(())
    }

    /// Deletes a subject and every one of its templates; the deleted data is overwritten and
    /// the write-ahead log truncated, so no copy stays in the file. Returns the templates removed.
    pub fn forget(&self, name: &str) -> Result<usize, GalleryError> {
        let err = self.err();
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(&err)?;
        let id: Option<i64> = tx.query_row("SELECT id FROM subjects WHERE name = ?1", [name], |r| r.get(0)).optional().map_err(&err)?;
        let Some(id) = id else {
            return Err(GalleryError::UnknownSubject { name: name.into(), path: self.path.clone() });
        };
        let n = tx.execute("DELETE FROM templates WHERE subject_id = ?1", [id]).map_err(&err)?;
        tx.execute("DELETE FROM subjects WHERE id = ?1", [id]).map_err(&err)?;
        bump_generation(&tx).map_err(&err)?;
        tx.commit().map_err(&err)?;
        // Best effort: another reader may hold the log; the data is already overwritten.
        let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        drop(conn);
        // The cached HNSW graph holds copies of the vectors: delete it now rather than when the
        // next search notices it is stale.
        let (graph, _) = self.graph_cache()?;
        for f in [graph.with_extension("hnsw.generation"), graph] {
            if let Err(e) = std::fs::remove_file(&f) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    return Err(GalleryError::Invalid(format!("could not delete {}: {e}", f.display())));
                }
            }
        }
        self.invalidate();
        Ok(n)
    }

    /// Every template with its subject's name (for calibration and export).
    pub fn templates(&self) -> Result<Vec<TemplateRecord>, GalleryError> {
        let conn = self.conn();
        let mut st = conn
            .prepare(
                "SELECT s.name, t.embedding, t.photo_sha256 FROM templates t JOIN subjects s ON s.id = t.subject_id ORDER BY s.name, t.id",
            )
            .map_err(self.err())?;
        let rows = st
            .query_map([], |r| {
                Ok(TemplateRecord { name: r.get(0)?, embedding: from_blob(&r.get::<_, Vec<u8>>(1)?), photo_sha256: r.get(2)? })
            })
            .map_err(self.err())?;
        rows.collect::<Result<_, _>>().map_err(self.err())
    }

    fn invalidate(&self) {
        *self.loaded.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// Loads (once) the in-memory index from SQLite; builds the HNSW graph above
    /// [`APPROX_THRESHOLD`] templates.
    fn loaded(&self) -> Result<Arc<Loaded>, GalleryError> {
        let mut slot = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(l) = &*slot {
            return Ok(l.clone());
        }
        let mut index = SearchIndex::new(self.contract.metric, self.contract.dim);
        let mut names = Vec::new();
        {
            let conn = self.conn();
            let mut st = conn
                .prepare("SELECT s.name, t.embedding FROM templates t JOIN subjects s ON s.id = t.subject_id ORDER BY s.id, t.id")
                .map_err(self.err())?;
            let mut rows = st.query([]).map_err(self.err())?;
            while let Some(r) = rows.next().map_err(self.err())? {
                let name: String = r.get(0).map_err(self.err())?;
                let blob: Vec<u8> = r.get(1).map_err(self.err())?;
                if blob.len() != self.contract.dim * 4 {
                    return Err(GalleryError::NotAGallery {
                        path: self.path.clone(),
                        reason: format!("a template of {} bytes", blob.len()),
                    });
                }
                if names.last() != Some(&name) {
                    names.push(name);
                }
                index.push((names.len() - 1) as u32, &from_blob(&blob));
            }
        }
        if index.len() >= self.approx_threshold {
            self.attach_approximate(&mut index)?;
        }
        let l = Arc::new(Loaded { index, names });
        *slot = Some(l.clone());
        Ok(l)
    }

    /// The file caching the HNSW graph, and the generation it must be tagged with.
    fn graph_cache(&self) -> Result<(PathBuf, String), GalleryError> {
        let generation: String = self
            .conn()
            .query_row("SELECT value FROM meta WHERE key = 'generation'", [], |r| r.get(0))
            .optional()
            .map_err(self.err())?
            .unwrap_or_else(|| "0".into());
        let mut name = self.path.file_name().unwrap_or_default().to_os_string();
        name.push(".hnsw");
        Ok((self.path.with_file_name(name), generation))
    }

    /// Loads the cached HNSW graph when it was built from this generation of the gallery,
    /// otherwise builds it and refreshes the cache (best effort: a read-only folder just
    /// means no cache).
    fn attach_approximate(&self, index: &mut SearchIndex) -> Result<(), GalleryError> {
        let params = crate::HnswParams::default();
        let (file, generation) = self.graph_cache()?;
        let tag_file = file.with_extension("hnsw.generation");
        let tag = format!("{generation} {} {:?}", index.len(), params);
        if std::fs::read_to_string(&tag_file).ok().as_deref() == Some(tag.as_str()) && index.load_approximate(&file, params)? {
            return Ok(());
        }
        index.build_approximate_with(params)?;
        let tmp = file.with_extension("hnsw.tmp");
        if index.save_approximate(&tmp).is_ok() && std::fs::rename(&tmp, &file).is_ok() {
            let _ = std::fs::write(&tag_file, tag);
        }
        Ok(())
    }

    /// The `k` nearest subjects to `probe` (nearest template per subject), nearest first.
    pub fn search(&self, probe: &[f32], k: usize) -> Result<Vec<Match>, GalleryError> {
        self.check_embedding(probe)?;
        let l = self.loaded()?;
        Ok(l.index
            .search(probe, k)
            .into_iter()
            .map(|Candidate { subject, distance }| Match { name: l.names[subject as usize].clone(), distance })
            .collect())
    }

    /// The distance from `probe` to `name`'s nearest template.
    pub fn distance_to(&self, name: &str, probe: &[f32]) -> Result<f32, GalleryError> {
        self.check_embedding(probe)?;
        let conn = self.conn();
        let mut st = conn
            .prepare("SELECT t.embedding FROM templates t JOIN subjects s ON s.id = t.subject_id WHERE s.name = ?1")
            .map_err(self.err())?;
        let blobs: Vec<Vec<u8>> = st.query_map([name], |r| r.get(0)).map_err(self.err())?.collect::<Result<_, _>>().map_err(self.err())?;
        if blobs.is_empty() {
            return Err(GalleryError::UnknownSubject { name: name.into(), path: self.path.clone() });
        }
        Ok(blobs.iter().map(|b| self.contract.metric.distance(probe, &from_blob(b))).fold(f32::INFINITY, f32::min))
    }
}
