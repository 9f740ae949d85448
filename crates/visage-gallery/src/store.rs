//! The SQLite file (subjects, templates, the embedding contract) and the live index that
//! follows it.
//!
//! SQLite is the source of truth. The in-memory [`SearchIndex`] is loaded once and then kept
//! up to date in place: this process's own writes are applied to it right after they commit,
//! and changes made by other processes are picked up by template id (ids are never reused)
//! when a search sees that the gallery's generation counter moved. Searches read through
//! their own read-only connections (WAL), so they never wait for a writer.

use crate::error::shown;
use crate::exact::ExactIndex;
use crate::hnsw::HnswIndex;
use crate::index::{SearchIndex, VectorIndex};
use crate::schema::{MIGRATIONS, SCHEMA_VERSION};
use crate::{Candidate, GalleryError, HnswParams, APPROX_THRESHOLD};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use unicode_normalization::UnicodeNormalization;
use visage_core::{Metric, ModelDescriptor, Thresholds};

/// How long a writer waits for another one before reporting [`GalleryError::Busy`].
const BUSY_TIMEOUT: Duration = Duration::from_secs(15);

/// Longest name, in characters.
const MAX_NAME_CHARS: usize = 200;

/// Templates read from SQLite per bulk insert into the index.
const LOAD_BATCH: usize = 8192;

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

impl Contract {
    /// Refuses embeddings of another model or dimension.
    fn check_model(&self, path: &Path, model: &str, dim: usize) -> Result<(), GalleryError> {
        if self.model != model || self.dim != dim {
            return Err(GalleryError::Contract {
                path: path.to_path_buf(),
                want: self.to_string(),
                got: format!("{dim}-d embeddings of {model}"),
            });
        }
        Ok(())
    }
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

/// One stored face (template) of a subject, without its embedding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaceRecord {
    /// The template's id: stable for ever (never reused).
    pub id: i64,
    /// SHA-256 of the source photo.
    pub photo_sha256: String,
    /// The face rectangle in the photo, `[left, top, right, bottom]`.
    pub face_box: [i64; 4],
    /// Where the photo came from (informational).
    pub source: Option<String>,
    /// Unix time of enrollment.
    pub created_at: i64,
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

/// Options of [`Gallery::enroll_with`].
#[derive(Debug, Clone, Copy, Default)]
pub struct EnrollOptions {
    /// Enroll a face even when the same face of the same photo is already enrolled under
    /// another name (refused by default: identify would then answer both at distance 0).
    pub allow_duplicate: bool,
}

/// What [`Gallery::forget`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForgetOutcome {
    /// Templates deleted.
    pub templates: usize,
    /// True when no copy of them is left in the gallery's files: the deleted pages were
    /// overwritten and the write-ahead log was checkpointed into the main file and truncated.
    /// False when another process holds a read snapshot that keeps the old pages alive: the
    /// erase is recorded and finished by the next open for writing.
    pub erased: bool,
}

/// Where the live index came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexOrigin {
    /// An exact index loaded from SQLite.
    Exact,
    /// An HNSW graph built from SQLite (and saved beside it).
    Built,
    /// An HNSW graph read from the cache file beside the gallery.
    Cached,
    /// An index made by [`OpenOptions::index`].
    Custom,
}

/// A subject's name and distance in a search result.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Match {
    /// Subject name.
    pub name: String,
    /// Distance of its nearest template.
    pub distance: f32,
}

/// Makes a custom index for a gallery: given the metric and dimension, an empty index.
pub type IndexFactory = Arc<dyn Fn(Metric, usize) -> Result<Box<dyn VectorIndex>, GalleryError> + Send + Sync>;

/// How to open a gallery.
#[derive(Clone)]
pub struct OpenOptions {
    /// The model and dimension asked for; `None` takes the file's own.
    model: Option<(String, usize)>,
    thresholds: Option<Thresholds>,
    metric: Option<Metric>,
    create: bool,
    read_only: bool,
    approx_threshold: usize,
    hnsw: HnswParams,
    erase_wait: Duration,
    factory: Option<IndexFactory>,
}

impl OpenOptions {
    /// A gallery of `dim`-d embeddings of `model`: opened for writing, not created. A file of
    /// another model or dimension is refused. Creating one also needs the model's thresholds
    /// ([`Self::thresholds`]); [`Self::for_model`] sets all three from the model's descriptor.
    pub fn new(model: &str, dim: usize) -> Self {
        Self::with_model(Some((model.into(), dim)))
    }

    /// A gallery of the embeddings of the model `d` describes: its id and dimension, and its
    /// thresholds for a gallery these options create.
    pub fn for_model(d: &ModelDescriptor) -> Self {
        Self::new(&d.id, d.dim).thresholds(d.thresholds)
    }

    /// A gallery of whatever model and dimension its file was made for, for work that needs no
    /// embedder: listing, renaming, forgetting, calibrating on the stored templates. It cannot
    /// create a gallery; embeddings given to it must still fit the file's contract, and
    /// [`Gallery::check_model`] checks that an embedder is the gallery's.
    pub fn any_model() -> Self {
        Self::with_model(None)
    }

    fn with_model(model: Option<(String, usize)>) -> Self {
        Self {
            model,
            thresholds: None,
            metric: None,
            create: false,
            read_only: false,
            approx_threshold: APPROX_THRESHOLD,
            hnsw: HnswParams::default(),
            erase_wait: Duration::from_secs(5),
            factory: None,
        }
    }

    /// Creates a missing file (with the requested metric, L2 by default); this needs the
    /// model, its dimension and its thresholds ([`Self::for_model`]).
    pub fn create(mut self, yes: bool) -> Self {
        self.create = yes;
        self
    }

    /// The model's same-person thresholds: a gallery created by these options starts with the
    /// one for its metric as its threshold ([`Gallery::threshold`]).
    pub fn thresholds(mut self, t: Thresholds) -> Self {
        self.thresholds = Some(t);
        self
    }

    /// What a new gallery is made of: the model, its dimension and its thresholds, or why
    /// these options cannot create one.
    fn new_contract(&self, path: &Path) -> Result<(&str, usize, &Thresholds), GalleryError> {
        match (&self.model, &self.thresholds) {
            (Some((model, dim)), Some(t)) => Ok((model, *dim, t)),
            _ => Err(GalleryError::Invalid(format!(
                "cannot create the gallery {}: a new gallery needs its model's id, dimension and thresholds",
                path.display()
            ))),
        }
    }

    /// The metric asked for: used when the gallery is created, and refused when an existing
    /// gallery compares by another one (a gallery's metric is fixed at creation).
    pub fn metric(mut self, metric: Option<Metric>) -> Self {
        self.metric = metric;
        self
    }

    /// Opens read-only: nothing is written (no schema upgrade, no lock taken), so it works in
    /// a read-only folder and never waits for another process's write; writes are refused.
    pub fn read_only(mut self, yes: bool) -> Self {
        self.read_only = yes;
        self
    }

    /// Searches use the HNSW graph from this many templates ([`APPROX_THRESHOLD`] by default).
    pub fn approx_threshold(mut self, templates: usize) -> Self {
        self.approx_threshold = templates;
        self
    }

    /// The HNSW graph's settings.
    pub fn hnsw(mut self, p: HnswParams) -> Self {
        self.hnsw = p;
        self
    }

    /// How long [`Gallery::forget`] waits for other processes' read snapshots to end before it
    /// reports the erase as pending (5 s by default).
    pub fn erase_wait(mut self, d: Duration) -> Self {
        self.erase_wait = d;
        self
    }

    /// Searches run on an index made by `factory` instead of the built-in ones.
    pub fn index(mut self, factory: IndexFactory) -> Self {
        self.factory = Some(factory);
        self
    }

    /// Opens the gallery at `path`.
    pub fn open(&self, path: &Path) -> Result<Gallery, GalleryError> {
        Gallery::open_with(path, self)
    }
}

/// The counters in `meta` that tell what changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Counters {
    /// Bumped by every change to templates or names.
    generation: i64,
    /// Bumped when templates are deleted or subjects renamed or deleted.
    rewrites: i64,
}

/// How far the live index has followed the file.
#[derive(Debug, Default)]
struct SyncState {
    seen: Counters,
    max_template: i64,
    max_subject: i64,
}

/// The searchable state of a gallery.
struct Live {
    index: SearchIndex,
    names: RwLock<HashMap<i64, String>>,
    sync: Mutex<SyncState>,
    generation: AtomicI64,
    origin: IndexOrigin,
}

/// A reader connection borrowed from the pool.
struct Pooled<'a> {
    conn: Option<Connection>,
    pool: &'a Mutex<Vec<Connection>>,
}

impl std::ops::Deref for Pooled<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.conn.as_ref().expect("a connection")
    }
}

impl std::ops::DerefMut for Pooled<'_> {
    fn deref_mut(&mut self) -> &mut Connection {
        self.conn.as_mut().expect("a connection")
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        if let Some(c) = self.conn.take() {
            self.pool.lock().unwrap_or_else(|e| e.into_inner()).push(c);
        }
    }
}

/// An open gallery. Safe to share between threads: searches run at the same time as each
/// other and as writes.
pub struct Gallery {
    path: PathBuf,
    contract: Contract,
    // Readers close before the writer (fields drop in order): the last connection to close
    // checkpoints the log into the main file and deletes it, which a read-only one cannot.
    readers: Mutex<Vec<Connection>>,
    writer: Option<Mutex<Connection>>,
    reader_uri: String,
    live: RwLock<Option<Arc<Live>>>,
    loading: Mutex<()>,
    opts: OpenOptions,
}

/// Unicode NFC form of a name: the NFC and NFD spellings of `José` are one person.
pub(crate) fn nfc(s: &str) -> String {
    s.nfc().collect()
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

fn face_box(b: [i64; 4]) -> String {
    format!("[{},{},{},{}]", b[0], b[1], b[2], b[3])
}

/// `file:` URI of a path (percent-encoding what URIs reserve).
fn file_uri(path: &Path, query: &str) -> String {
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut s = String::from("file:");
    for b in abs.to_string_lossy().bytes() {
        match b {
            b'?' | b'#' | b'%' => s.push_str(&format!("%{b:02X}")),
            _ => s.push(b as char),
        }
    }
    // Non-ASCII bytes were pushed as Latin-1 chars above; redo them as UTF-8 percent escapes.
    let s: String = s.chars().map(|c| if c.is_ascii() { c.to_string() } else { format!("%{:02X}", c as u32) }).collect();
    if query.is_empty() {
        s
    } else {
        format!("{s}?{query}")
    }
}

fn read_counters(conn: &Connection) -> rusqlite::Result<Counters> {
    let mut c = Counters::default();
    let mut st = conn.prepare_cached("SELECT key, value FROM meta WHERE key IN ('generation', 'rewrites')")?;
    let mut rows = st.query([])?;
    while let Some(r) = rows.next()? {
        let (k, v): (String, String) = (r.get(0)?, r.get(1)?);
        let v = v.parse().unwrap_or(0);
        if k == "generation" {
            c.generation = v;
        } else {
            c.rewrites = v;
        }
    }
    Ok(c)
}

/// Bumps the counters inside a write transaction; returns them (before, after).
fn bump(tx: &rusqlite::Transaction, rewrite: bool) -> rusqlite::Result<(Counters, Counters)> {
    let before = read_counters(tx)?;
    let keys: &[&str] = if rewrite { &["generation", "rewrites"] } else { &["generation"] };
    for k in keys {
        tx.execute(
            "INSERT INTO meta (key, value) VALUES (?1, '1') ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1",
            [k],
        )?;
    }
    Ok((before, read_counters(tx)?))
}

/// The stored schema version: `None` for an empty database.
fn schema_version(conn: &Connection, path: &Path) -> Result<Option<i64>, GalleryError> {
    let err = |e| GalleryError::sqlite(path, e);
    let tables: i64 = conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0)).map_err(err)?;
    let has_meta: i64 =
        conn.query_row("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'meta'", [], |r| r.get(0)).map_err(err)?;
    if has_meta == 0 {
        if tables > 0 {
            return Err(GalleryError::NotAGallery { path: path.into(), reason: "a SQLite database without visage's tables".into() });
        }
        return Ok(None);
    }
    let v: Option<String> =
        conn.query_row("SELECT value FROM meta WHERE key = 'schema_version'", [], |r| r.get(0)).optional().map_err(err)?;
    let v = v.ok_or_else(|| GalleryError::NotAGallery { path: path.into(), reason: "meta key schema_version missing".into() })?;
    let v: i64 = v.parse().map_err(|_| GalleryError::NotAGallery { path: path.into(), reason: format!("schema version {v:?}") })?;
    if v > SCHEMA_VERSION {
        return Err(GalleryError::NotAGallery {
            path: path.into(),
            reason: format!("its schema version {v} is newer than this visage knows ({SCHEMA_VERSION}); upgrade visage"),
        });
    }
    Ok(Some(v))
}

/// Checks and normalises a name: NFC, 1 to 200 characters, no control characters or
/// surrounding spaces, not `unknown`.
fn valid_name(name: &str) -> Result<String, GalleryError> {
    let n = nfc(name);
    if n.trim().is_empty() || n.trim() != n || n.chars().count() > MAX_NAME_CHARS || n.chars().any(char::is_control) {
        return Err(GalleryError::Invalid(format!(
            "invalid name {}: names are 1 to {MAX_NAME_CHARS} characters, without control characters or surrounding spaces",
            shown(&n)
        )));
    }
    if n.to_lowercase() == "unknown" {
        return Err(GalleryError::Invalid(format!("the name {} is reserved: it is the answer for a face that matches nobody", shown(&n))));
    }
    Ok(n)
}

impl Gallery {
    /// Opens the gallery at `path` with `opts` (see [`OpenOptions`]).
    pub fn open_with(path: &Path, opts: &OpenOptions) -> Result<Self, GalleryError> {
        if !path.exists() && (!opts.create || opts.read_only) {
            return Err(GalleryError::NotAGallery { path: path.to_path_buf(), reason: "no such file (enroll someone first)".into() });
        }
        if !path.exists() {
            // Refused before the file is made.
            opts.new_contract(path)?;
        }
        let err = |e| GalleryError::sqlite(path, e);
        let ro_flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let (writer, reader_uri) = if opts.read_only {
            // A WAL gallery in a folder nobody may write to (no -shm file can be made) opens
            // only as immutable: SQLite then reads the main file without any lock.
            let plain = file_uri(path, "");
            let ok = Connection::open_with_flags(&plain, ro_flags)
                .and_then(|c| c.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get::<_, i64>(0)));
            match ok {
                Ok(_) => (None, plain),
                Err(rusqlite::Error::SqliteFailure(f, _))
                    if matches!(f.code, rusqlite::ErrorCode::CannotOpen | rusqlite::ErrorCode::ReadOnly) =>
                {
                    (None, file_uri(path, "immutable=1"))
                }
                Err(e) => return Err(err(e)),
            }
        } else {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| GalleryError::Invalid(format!("cannot create folder {}: {e}", dir.display())))?;
            }
            let conn = Connection::open(path).map_err(|e| match &e {
                rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::CannotOpen => GalleryError::ReadOnly {
                    path: path.into(),
                    reason: "the file or its folder cannot be written (searches can open it read-only)".into(),
                },
                _ => err(e),
            })?;
            if conn.is_readonly(rusqlite::MAIN_DB).map_err(err)? {
                return Err(GalleryError::ReadOnly {
                    path: path.into(),
                    reason: "the file cannot be written (searches can open it read-only)".into(),
                });
            }
            conn.busy_timeout(BUSY_TIMEOUT).map_err(err)?;
            conn.pragma_update(None, "foreign_keys", "ON").map_err(err)?;
            // Deleted faces are overwritten, not left in free pages (forget is a privacy request).
            conn.pragma_update(None, "secure_delete", "ON").map_err(err)?;
            conn.pragma_update(None, "synchronous", "NORMAL").map_err(err)?;
            (Some(Mutex::new(conn)), file_uri(path, ""))
        };
        let mut g = Gallery {
            path: path.to_path_buf(),
            // The file's own contract replaces this one once it is read (`check_contract`).
            contract: Contract {
                model: opts.model.as_ref().map_or_else(String::new, |m| m.0.clone()),
                dim: opts.model.as_ref().map_or(0, |m| m.1),
                metric: opts.metric.unwrap_or_default(),
            },
            readers: Mutex::new(Vec::new()),
            writer,
            reader_uri,
            live: RwLock::new(None),
            loading: Mutex::new(()),
            opts: opts.clone(),
        };
        if g.writer.is_some() {
            g.upgrade()?;
        }
        g.check_contract()?;
        if g.writer.is_some() {
            g.finish_pending_erase()?;
        }
        Ok(g)
    }

    /// Creates the tables or applies the migrations the file lacks, in one transaction; does
    /// nothing (and takes no lock) when the file is current.
    fn upgrade(&mut self) -> Result<(), GalleryError> {
        let path = self.path.clone();
        let err = |e| GalleryError::sqlite(&path, e);
        let mut conn = self.writer.as_ref().expect("a writer").lock().unwrap_or_else(|e| e.into_inner());
        let current = schema_version(&conn, &path)?;
        if current == Some(SCHEMA_VERSION) {
            return Ok(());
        }
        if current.is_none() && !self.opts.create {
            return Err(GalleryError::NotAGallery { path, reason: "empty database".into() });
        }
        let new = if current.is_none() { Some(self.opts.new_contract(&path)?) } else { None };
        let new = new.map(|(model, dim, t)| (model.to_string(), dim, *t));
        let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).map_err(err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            // WAL: readers never block the writer; a killed process leaves a consistent file.
            conn.pragma_update(None, "journal_mode", "WAL").map_err(err)?;
        }
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(err)?;
        // Another process may have upgraded it meanwhile.
        let current = schema_version(&tx, &path)?;
        let from = current.unwrap_or(0);
        for m in MIGRATIONS.iter().filter(|m| m.version > from) {
            (m.apply)(&tx).map_err(|e| GalleryError::NotAGallery {
                path: path.clone(),
                reason: format!("upgrading to schema {} ({}) failed: {e}", m.version, m.what),
            })?;
        }
        if let (None, Some((model, dim, thresholds))) = (current, new) {
            let metric = self.opts.metric.unwrap_or_default();
            for (k, v) in [
                ("model", model),
                ("dim", dim.to_string()),
                ("metric", metric.name().to_string()),
                // The f32's shortest decimal form: "0.1", not "0.10000000149011612".
                ("threshold", thresholds.get(metric).to_string()),
                ("created_at", now().to_string()),
            ] {
                tx.execute("INSERT INTO meta (key, value) VALUES (?1, ?2)", params![k, v]).map_err(err)?;
            }
        }
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('schema_version', ?1) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [SCHEMA_VERSION.to_string()],
        )
        .map_err(err)?;
        tx.pragma_update(None, "user_version", SCHEMA_VERSION).map_err(err)?;
        tx.commit().map_err(err)
    }

    /// Reads the contract and refuses a model, dimension or metric other than the one asked.
    fn check_contract(&mut self) -> Result<(), GalleryError> {
        let path = self.path.clone();
        let reader = self.reader()?;
        let err = |e| GalleryError::sqlite(&path, e);
        let Some(_) = schema_version(&reader, &path)? else {
            return Err(GalleryError::NotAGallery { path, reason: "empty database".into() });
        };
        let meta = |k: &str| -> Result<String, GalleryError> {
            reader
                .query_row("SELECT value FROM meta WHERE key = ?1", [k], |r| r.get(0))
                .optional()
                .map_err(err)?
                .ok_or_else(|| GalleryError::NotAGallery { path: path.clone(), reason: format!("meta key {k} missing") })
        };
        let stored = Contract {
            model: meta("model")?,
            dim: meta("dim")?.parse().map_err(|_| GalleryError::NotAGallery { path: path.clone(), reason: "bad dim".into() })?,
            metric: meta("metric")?.parse().map_err(|e: String| GalleryError::NotAGallery { path: path.clone(), reason: e })?,
        };
        if let Some((model, dim)) = &self.opts.model {
            stored.check_model(&path, model, *dim)?;
        }
        if let Some(m) = self.opts.metric.filter(|m| *m != stored.metric) {
            return Err(GalleryError::Contract {
                path,
                want: stored.to_string(),
                got: format!("metric {m} (a gallery's metric is fixed when it is created)"),
            });
        }
        drop(reader);
        self.contract = stored;
        Ok(())
    }

    /// A reader connection from the pool (opened read-only; never takes a write lock).
    fn reader(&self) -> Result<Pooled<'_>, GalleryError> {
        let pooled = self.readers.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let conn = match pooled {
            Some(c) => c,
            None => {
                let err = |e| GalleryError::sqlite(&self.path, e);
                let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI | OpenFlags::SQLITE_OPEN_NO_MUTEX;
                let c = Connection::open_with_flags(&self.reader_uri, flags).map_err(err)?;
                c.busy_timeout(BUSY_TIMEOUT).map_err(err)?;
                c
            }
        };
        Ok(Pooled { conn: Some(conn), pool: &self.readers })
    }

    /// The writer connection, or [`GalleryError::ReadOnly`] naming what was asked.
    fn writer(&self, what: &str) -> Result<std::sync::MutexGuard<'_, Connection>, GalleryError> {
        match &self.writer {
            Some(w) => Ok(w.lock().unwrap_or_else(|e| e.into_inner())),
            None => Err(GalleryError::ReadOnly { path: self.path.clone(), reason: format!("it was opened read-only, and {what} writes") }),
        }
    }

    /// Searches switch from exact to the HNSW graph from this many templates
    /// ([`APPROX_THRESHOLD`] by default). Takes effect when the index is (re)loaded.
    pub fn with_approx_threshold(mut self, templates: usize) -> Self {
        self.opts.approx_threshold = templates;
        self
    }

    /// Whether searches run on an approximate index.
    pub fn is_approximate(&self) -> Result<bool, GalleryError> {
        Ok(!self.live()?.index.capabilities().exact)
    }

    /// Where the live index came from (loads it).
    pub fn index_origin(&self) -> Result<IndexOrigin, GalleryError> {
        Ok(self.live()?.origin)
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The embedding contract.
    pub fn contract(&self) -> &Contract {
        &self.contract
    }

    /// Refuses an embedder of another model or dimension than the gallery's (for a gallery
    /// opened with [`OpenOptions::any_model`] before its embedder was loaded).
    pub fn check_model(&self, d: &ModelDescriptor) -> Result<(), GalleryError> {
        self.contract.check_model(&self.path, &d.id, d.dim)
    }

    /// Whether the gallery was opened read-only.
    pub fn is_read_only(&self) -> bool {
        self.writer.is_none()
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> GalleryError + '_ {
        move |e| GalleryError::sqlite(&self.path, e)
    }

    /// The stored same-person threshold.
    pub fn threshold(&self) -> Result<f64, GalleryError> {
        let v: String = self.reader()?.query_row("SELECT value FROM meta WHERE key = 'threshold'", [], |r| r.get(0)).map_err(self.err())?;
        v.parse().map_err(|_| GalleryError::NotAGallery { path: self.path.clone(), reason: "bad threshold".into() })
    }

    /// Stores a new same-person threshold.
    pub fn set_threshold(&self, t: f64) -> Result<(), GalleryError> {
        if !(t.is_finite() && t >= 0.0) {
            return Err(GalleryError::Invalid(format!("threshold {t} must be a non-negative number")));
        }
        self.writer("storing a threshold")?
            .execute("UPDATE meta SET value = ?1 WHERE key = 'threshold'", [t.to_string()])
            .map_err(self.err())?;
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

    /// Adds templates for `name` (created if new) in one transaction. Templates of a photo
    /// and face already enrolled for this person are skipped, so re-running is harmless; the
    /// same face enrolled under another name is refused ([`EnrollOptions::allow_duplicate`]).
    pub fn enroll(&self, name: &str, metadata: Option<&str>, templates: &[NewTemplate]) -> Result<EnrollOutcome, GalleryError> {
        self.enroll_with(name, metadata, templates, EnrollOptions::default())
    }

    /// [`Self::enroll`] with options.
    pub fn enroll_with(
        &self,
        name: &str,
        metadata: Option<&str>,
        templates: &[NewTemplate],
        opts: EnrollOptions,
    ) -> Result<EnrollOutcome, GalleryError> {
        let name = valid_name(name)?;
        if let Some(m) = metadata {
            serde_json::from_str::<serde_json::Value>(m).map_err(|e| GalleryError::Invalid(format!("metadata must be JSON: {e}")))?;
        }
        for t in templates {
            self.check_embedding(&t.embedding)?;
        }
        let err = self.err();
        let mut conn = self.writer("enrolling")?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(&err)?;
        let created = tx
            .execute("INSERT OR IGNORE INTO subjects (name, metadata, created_at) VALUES (?1, ?2, ?3)", params![name, metadata, now()])
            .map_err(&err)?
            == 1;
        if let Some(m) = metadata {
            tx.execute("UPDATE subjects SET metadata = ?2 WHERE name = ?1", params![name, m]).map_err(&err)?;
        }
        let id: i64 = tx.query_row("SELECT id FROM subjects WHERE name = ?1", [&name], |r| r.get(0)).map_err(&err)?;
        let mut out = EnrollOutcome { added: 0, already: 0 };
        let mut added: Vec<(i64, usize)> = Vec::new();
        {
            let mut other = tx
                .prepare(
                    "SELECT s.name FROM templates t JOIN subjects s ON s.id = t.subject_id
                     WHERE t.photo_sha256 = ?1 AND t.face_box = ?2 AND t.subject_id != ?3 LIMIT 1",
                )
                .map_err(&err)?;
            let mut ins = tx
                .prepare("INSERT OR IGNORE INTO templates (subject_id, embedding, photo_sha256, face_box, source, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")
                .map_err(&err)?;
            for (i, t) in templates.iter().enumerate() {
                let b = face_box(t.face_box);
                if !opts.allow_duplicate {
                    if let Some(existing) =
                        other.query_row(params![t.photo_sha256, b, id], |r| r.get::<_, String>(0)).optional().map_err(&err)?
                    {
                        return Err(GalleryError::Duplicate {
                            path: self.path.clone(),
                            existing,
                            name,
                            photo_sha256: t.photo_sha256.clone(),
                            face_box: b,
                        });
                    }
                }
                let n = ins.execute(params![id, to_blob(&t.embedding), t.photo_sha256, b, t.source, now()]).map_err(&err)?;
                if n == 1 {
                    out.added += 1;
                    added.push((tx.last_insert_rowid(), i));
                } else {
                    out.already += 1;
                }
            }
        }
        let new_subject = created || out.added > 0;
        if !new_subject {
            tx.commit().map_err(&err)?;
        } else {
            let (before, after) = bump(&tx, false).map_err(&err)?;
            self.commit_and_apply(tx, before, after, |live| {
                live.names.write().unwrap_or_else(|e| e.into_inner()).insert(id, name.clone());
                let items: Vec<(i64, i64, &[f32])> = added
                    .iter()
                    .filter(|(tid, _)| !live.index.contains(*tid))
                    .map(|&(tid, i)| (tid, id, templates[i].embedding.as_slice()))
                    .collect();
                live.index.insert_batch(&items)?;
                Ok((added.iter().map(|a| a.0).max(), Some(id)))
            })?;
        }
        drop(conn);
        Ok(out)
    }

    /// Commits this process's own change and applies it to the live index (when loaded). The
    /// index's sync lock is held across the commit, so searches that see the new generation
    /// leave the update to this thread instead of reading it back from SQLite (they only
    /// try that lock, never wait for it). The index's generation moves on only when it had
    /// seen everything before this change.
    fn commit_and_apply(
        &self,
        tx: rusqlite::Transaction,
        before: Counters,
        after: Counters,
        f: impl FnOnce(&Live) -> Result<(Option<i64>, Option<i64>), GalleryError>,
    ) -> Result<(), GalleryError> {
        let live = self.live.read().unwrap_or_else(|e| e.into_inner()).clone();
        let guard = live.as_deref().map(|l| l.sync.lock().unwrap_or_else(|e| e.into_inner()));
        tx.commit().map_err(self.err())?;
        let (Some(live), Some(mut st)) = (live.as_deref(), guard) else { return Ok(()) };
        let (max_t, max_s) = f(live)?;
        if st.seen == before {
            st.seen = after;
            st.max_template = st.max_template.max(max_t.unwrap_or(0));
            st.max_subject = st.max_subject.max(max_s.unwrap_or(0));
            live.generation.store(after.generation, Ordering::Release);
        }
        Ok(())
    }

    /// Whether a photo (by hash) is already enrolled for `name`.
    pub fn has_photo(&self, name: &str, photo_sha256: &str) -> Result<bool, GalleryError> {
        let n: i64 = self
            .reader()?
            .query_row(
                "SELECT count(*) FROM templates t JOIN subjects s ON s.id = t.subject_id WHERE s.name = ?1 AND t.photo_sha256 = ?2",
                params![nfc(name), photo_sha256],
                |r| r.get(0),
            )
            .map_err(self.err())?;
        Ok(n > 0)
    }

    /// Every subject with its template count, by name.
    pub fn subjects(&self) -> Result<Vec<SubjectInfo>, GalleryError> {
        let conn = self.reader()?;
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
        let conn = self.reader()?;
        let s: i64 = conn.query_row("SELECT count(*) FROM subjects", [], |r| r.get(0)).map_err(self.err())?;
        let t: i64 = conn.query_row("SELECT count(*) FROM templates", [], |r| r.get(0)).map_err(self.err())?;
        Ok((s as usize, t as usize))
    }

    /// Renames a subject.
    pub fn rename(&self, old: &str, new: &str) -> Result<(), GalleryError> {
        let (old, new) = (nfc(old), valid_name(new)?);
        let err = self.err();
        let mut conn = self.writer("renaming")?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(&err)?;
        let taken: i64 = tx.query_row("SELECT count(*) FROM subjects WHERE name = ?1", [&new], |r| r.get(0)).map_err(&err)?;
        if taken > 0 {
            return Err(GalleryError::NameTaken { name: new, path: self.path.clone() });
        }
        let id: Option<i64> = tx.query_row("SELECT id FROM subjects WHERE name = ?1", [&old], |r| r.get(0)).optional().map_err(&err)?;
        let Some(id) = id else { return Err(GalleryError::UnknownSubject { name: old, path: self.path.clone() }) };
        tx.execute("UPDATE subjects SET name = ?2 WHERE id = ?1", params![id, new]).map_err(&err)?;
        let (before, after) = bump(&tx, true).map_err(&err)?;
        self.commit_and_apply(tx, before, after, |live| {
            live.names.write().unwrap_or_else(|e| e.into_inner()).insert(id, new);
            Ok((None, None))
        })
    }

    /// Sets a subject's metadata (JSON).
    pub fn set_metadata(&self, name: &str, metadata: &str) -> Result<(), GalleryError> {
        serde_json::from_str::<serde_json::Value>(metadata).map_err(|e| GalleryError::Invalid(format!("metadata must be JSON: {e}")))?;
        let name = nfc(name);
        let n = self
            .writer("setting metadata")?
            .execute("UPDATE subjects SET metadata = ?2 WHERE name = ?1", params![name, metadata])
            .map_err(self.err())?;
        if n == 0 {
            return Err(GalleryError::UnknownSubject { name, path: self.path.clone() });
        }
        Ok(())
    }

    /// Tries, for up to `wait`, to copy the write-ahead log into the main file and truncate it
    /// (which another process's open read snapshot prevents). Returns whether it succeeded.
    fn checkpoint(conn: &Connection, wait: Duration) -> rusqlite::Result<bool> {
        let deadline = Instant::now() + wait;
        conn.busy_timeout(wait.min(Duration::from_millis(200)))?;
        let done = loop {
            let busy: i64 = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0)).unwrap_or(1);
            if busy == 0 {
                break true;
            }
            if Instant::now() >= deadline {
                break false;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        conn.busy_timeout(BUSY_TIMEOUT)?;
        Ok(done)
    }

    /// Finishes an erase that [`Self::forget`] left pending (best effort, without waiting).
    fn finish_pending_erase(&self) -> Result<(), GalleryError> {
        let conn = self.writer("erasing")?;
        let pending: Option<String> =
            conn.query_row("SELECT value FROM meta WHERE key = 'pending_erase'", [], |r| r.get(0)).optional().map_err(self.err())?;
        if pending.is_none() {
            return Ok(());
        }
        if Self::checkpoint(&conn, Duration::ZERO).map_err(self.err())? {
            conn.execute("DELETE FROM meta WHERE key = 'pending_erase'", []).map_err(self.err())?;
            let _ = Self::checkpoint(&conn, Duration::ZERO);
        }
        Ok(())
    }

    /// Deletes a subject and every one of its templates. The deleted data is overwritten
    /// (secure delete) and the write-ahead log checkpointed and truncated, so no copy stays in
    /// the files; when another process's read snapshot prevents that for longer than the
    /// erase wait, the outcome says so and the next open for writing finishes it.
    pub fn forget(&self, name: &str) -> Result<ForgetOutcome, GalleryError> {
        let name = nfc(name);
        let err = self.err();
        let mut conn = self.writer("forgetting")?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(&err)?;
        let id: Option<i64> = tx.query_row("SELECT id FROM subjects WHERE name = ?1", [&name], |r| r.get(0)).optional().map_err(&err)?;
        let Some(id) = id else {
            return Err(GalleryError::UnknownSubject { name, path: self.path.clone() });
        };
        let ids: Vec<i64> = tx
            .prepare("SELECT id FROM templates WHERE subject_id = ?1")
            .and_then(|mut s| s.query_map([id], |r| r.get(0))?.collect())
            .map_err(&err)?;
        tx.execute("DELETE FROM templates WHERE subject_id = ?1", [id]).map_err(&err)?;
        tx.execute("DELETE FROM subjects WHERE id = ?1", [id]).map_err(&err)?;
        let (before, after) = bump(&tx, true).map_err(&err)?;
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('pending_erase', ?1) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [now().to_string()],
        )
        .map_err(&err)?;
        self.commit_and_apply(tx, before, after, |live| {
            for t in &ids {
                live.index.remove(*t)?;
            }
            live.names.write().unwrap_or_else(|e| e.into_inner()).remove(&id);
            Ok((None, None))
        })?;
        let erased = Self::checkpoint(&conn, self.opts.erase_wait).map_err(&err)?;
        if erased {
            conn.execute("DELETE FROM meta WHERE key = 'pending_erase'", []).map_err(&err)?;
            let _ = Self::checkpoint(&conn, Duration::ZERO);
        }
        drop(conn);
        // The cached HNSW graph holds copies of the vectors: delete it now.
        let graph = self.graph_cache();
        for f in [graph.with_extension("hnsw.generation"), graph] {
            if let Err(e) = std::fs::remove_file(&f) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    return Err(GalleryError::Invalid(format!("could not delete {}: {e}", f.display())));
                }
            }
        }
        Ok(ForgetOutcome { templates: ids.len(), erased })
    }

    /// The faces (templates) of `name`, oldest first.
    pub fn faces(&self, name: &str) -> Result<Vec<FaceRecord>, GalleryError> {
        let name = nfc(name);
        let conn = self.reader()?;
        let id: Option<i64> =
            conn.query_row("SELECT id FROM subjects WHERE name = ?1", [&name], |r| r.get(0)).optional().map_err(self.err())?;
        let Some(id) = id else { return Err(GalleryError::UnknownSubject { name, path: self.path.clone() }) };
        let mut st = conn
            .prepare("SELECT id, photo_sha256, face_box, source, created_at FROM templates WHERE subject_id = ?1 ORDER BY id")
            .map_err(self.err())?;
        let rows = st
            .query_map([id], |r| {
                let b: String = r.get(2)?;
                let v: Vec<i64> = serde_json::from_str(&b).unwrap_or_default();
                let mut face_box = [0i64; 4];
                for (d, x) in face_box.iter_mut().zip(v) {
                    *d = x;
                }
                Ok(FaceRecord { id: r.get(0)?, photo_sha256: r.get(1)?, face_box, source: r.get(3)?, created_at: r.get(4)? })
            })
            .map_err(self.err())?;
        rows.collect::<Result<_, _>>().map_err(self.err())
    }

    /// Deletes one face (template `face_id`) of `name`, erased as [`Self::forget`] erases: the
    /// person stays enrolled, with their other faces (or none). `Ok(None)` when `name` has no
    /// face of that id (including another person's face); an unknown name is an error.
    pub fn forget_face(&self, name: &str, face_id: i64) -> Result<Option<ForgetOutcome>, GalleryError> {
        let name = nfc(name);
        let err = self.err();
        let mut conn = self.writer("forgetting a face")?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(&err)?;
        let id: Option<i64> = tx.query_row("SELECT id FROM subjects WHERE name = ?1", [&name], |r| r.get(0)).optional().map_err(&err)?;
        let Some(id) = id else {
            return Err(GalleryError::UnknownSubject { name, path: self.path.clone() });
        };
        let n = tx.execute("DELETE FROM templates WHERE id = ?1 AND subject_id = ?2", params![face_id, id]).map_err(&err)?;
        if n == 0 {
            return Ok(None);
        }
        let (before, after) = bump(&tx, true).map_err(&err)?;
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('pending_erase', ?1) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [now().to_string()],
        )
        .map_err(&err)?;
        self.commit_and_apply(tx, before, after, |live| {
            live.index.remove(face_id)?;
            Ok((None, None))
        })?;
        let erased = Self::checkpoint(&conn, self.opts.erase_wait).map_err(&err)?;
        if erased {
            conn.execute("DELETE FROM meta WHERE key = 'pending_erase'", []).map_err(&err)?;
            let _ = Self::checkpoint(&conn, Duration::ZERO);
        }
        drop(conn);
        let graph = self.graph_cache();
        for f in [graph.with_extension("hnsw.generation"), graph] {
            if let Err(e) = std::fs::remove_file(&f) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    return Err(GalleryError::Invalid(format!("could not delete {}: {e}", f.display())));
                }
            }
        }
        Ok(Some(ForgetOutcome { templates: 1, erased }))
    }

    /// The embeddings of one subject's templates, oldest first (for a Siamese head, which
    /// scores a probe against each of them); an unknown name is an error.
    pub fn templates_of(&self, name: &str) -> Result<Vec<Vec<f32>>, GalleryError> {
        let name = nfc(name);
        let conn = self.reader()?;
        let mut st = conn
            .prepare_cached("SELECT t.embedding FROM templates t JOIN subjects s ON s.id = t.subject_id WHERE s.name = ?1 ORDER BY t.id")
            .map_err(self.err())?;
        let rows: Vec<Vec<f32>> = st
            .query_map([&name], |r| Ok(from_blob(&r.get::<_, Vec<u8>>(0)?)))
            .map_err(self.err())?
            .collect::<Result<_, _>>()
            .map_err(self.err())?;
        if rows.is_empty() {
            return Err(GalleryError::UnknownSubject { name, path: self.path.clone() });
        }
        Ok(rows)
    }

    /// Every template with its subject's name (for calibration and export).
    pub fn templates(&self) -> Result<Vec<TemplateRecord>, GalleryError> {
        let conn = self.reader()?;
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

    /// The file caching the HNSW graph.
    fn graph_cache(&self) -> PathBuf {
        let mut name = self.path.file_name().unwrap_or_default().to_os_string();
        name.push(".hnsw");
        self.path.with_file_name(name)
    }

    fn cache_tag(&self, generation: i64, len: usize) -> String {
        format!("ids {generation} {len} {:?}", self.opts.hnsw)
    }

    /// The live index, loaded from SQLite on first use.
    fn live(&self) -> Result<Arc<Live>, GalleryError> {
        if let Some(l) = &*self.live.read().unwrap_or_else(|e| e.into_inner()) {
            return Ok(l.clone());
        }
        let _one = self.loading.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(l) = &*self.live.read().unwrap_or_else(|e| e.into_inner()) {
            return Ok(l.clone());
        }
        let l = Arc::new(self.load()?);
        *self.live.write().unwrap_or_else(|e| e.into_inner()) = Some(l.clone());
        Ok(l)
    }

    /// Reads the gallery into a new index, in one read transaction: an exact index, or above
    /// the approximate threshold the HNSW graph (from its cache when that was saved for this
    /// very generation, otherwise built and saved).
    fn load(&self) -> Result<Live, GalleryError> {
        let err = self.err();
        let mut conn = self.reader()?;
        let tx = conn.transaction().map_err(&err)?;
        let seen = read_counters(&tx).map_err(&err)?;
        let count: i64 = tx.query_row("SELECT count(*) FROM templates", [], |r| r.get(0)).map_err(&err)?;
        let count = count as usize;
        let metric = self.contract.metric;
        let dim = self.contract.dim;
        let (index, origin, cached): (Box<dyn VectorIndex>, IndexOrigin, bool) = if let Some(f) = &self.opts.factory {
            (f(metric, dim)?, IndexOrigin::Custom, false)
        } else if count >= self.opts.approx_threshold && metric != Metric::Chi2 {
            let file = self.graph_cache();
            let tag_file = file.with_extension("hnsw.generation");
            let tag = self.cache_tag(seen.generation, count);
            let hit = if std::fs::read_to_string(&tag_file).ok().as_deref() == Some(tag.as_str()) {
                HnswIndex::load(&file, metric, dim, self.opts.hnsw, count)?
            } else {
                None
            };
            // A half-precision graph re-ranks with the f32 templates, which its file lacks.
            if let Some(h) = hit.as_ref().filter(|h| h.needs_restore()) {
                let mut q = tx.prepare("SELECT id, embedding FROM templates ORDER BY id").map_err(&err)?;
                let mut rows = q.query([]).map_err(&err)?;
                let mut batch: Vec<(i64, Vec<f32>)> = Vec::with_capacity(LOAD_BATCH);
                let restore = |batch: &mut Vec<(i64, Vec<f32>)>| -> Result<(), GalleryError> {
                    let items: Vec<(i64, &[f32])> = batch.iter().map(|(t, v)| (*t, v.as_slice())).collect();
                    h.restore(&items)?;
                    batch.clear();
                    Ok(())
                };
                while let Some(r) = rows.next().map_err(&err)? {
                    let blob: Vec<u8> = r.get(1).map_err(&err)?;
                    if blob.len() != dim * 4 {
                        return Err(GalleryError::NotAGallery {
                            path: self.path.clone(),
                            reason: format!("a template of {} bytes", blob.len()),
                        });
                    }
                    batch.push((r.get(0).map_err(&err)?, from_blob(&blob)));
                    if batch.len() == LOAD_BATCH {
                        restore(&mut batch)?;
                    }
                }
                restore(&mut batch)?;
            }
            match hit {
                Some(h) => (Box::new(h), IndexOrigin::Cached, true),
                None => (Box::new(HnswIndex::new(metric, dim, self.opts.hnsw)?), IndexOrigin::Built, false),
            }
        } else {
            (Box::new(ExactIndex::new(metric, dim)), IndexOrigin::Exact, false)
        };
        if !index.capabilities().supports(metric) {
            return Err(GalleryError::Index(format!("the {} index cannot search by {metric}", index.capabilities().name)));
        }
        let index = SearchIndex::with_index(index);
        // Room for the file's templates and a quarter more, so enrollments do not grow it soon.
        index.reserve(count + count / 4 + 1024)?;
        let mut st = SyncState { seen, ..Default::default() };
        let mut names = HashMap::new();
        {
            let mut q = tx.prepare("SELECT id, name FROM subjects").map_err(&err)?;
            let mut rows = q.query([]).map_err(&err)?;
            while let Some(r) = rows.next().map_err(&err)? {
                let id: i64 = r.get(0).map_err(&err)?;
                st.max_subject = st.max_subject.max(id);
                names.insert(id, r.get(1).map_err(&err)?);
            }
        }
        {
            let sql = if cached {
                "SELECT id, subject_id, NULL FROM templates ORDER BY id"
            } else {
                "SELECT id, subject_id, embedding FROM templates ORDER BY id"
            };
            let mut q = tx.prepare(sql).map_err(&err)?;
            let mut rows = q.query([]).map_err(&err)?;
            let mut batch: Vec<(i64, i64, Vec<f32>)> = Vec::with_capacity(LOAD_BATCH);
            let mut owners: Vec<(i64, i64)> = Vec::new();
            let flush = |batch: &mut Vec<(i64, i64, Vec<f32>)>| -> Result<(), GalleryError> {
                let items: Vec<(i64, i64, &[f32])> = batch.iter().map(|(t, s, v)| (*t, *s, v.as_slice())).collect();
                index.insert_batch(&items)?;
                batch.clear();
                Ok(())
            };
            while let Some(r) = rows.next().map_err(&err)? {
                let (tid, sid): (i64, i64) = (r.get(0).map_err(&err)?, r.get(1).map_err(&err)?);
                st.max_template = st.max_template.max(tid);
                if cached {
                    owners.push((tid, sid));
                    continue;
                }
                let blob: Vec<u8> = r.get(2).map_err(&err)?;
                if blob.len() != dim * 4 {
                    return Err(GalleryError::NotAGallery {
                        path: self.path.clone(),
                        reason: format!("a template of {} bytes", blob.len()),
                    });
                }
                batch.push((tid, sid, from_blob(&blob)));
                if batch.len() == LOAD_BATCH {
                    flush(&mut batch)?;
                }
            }
            flush(&mut batch)?;
            if cached {
                index.adopt(&owners);
            }
        }
        drop(tx);
        if origin == IndexOrigin::Built {
            self.save_graph(&index, seen.generation);
        }
        Ok(Live { index, names: RwLock::new(names), generation: AtomicI64::new(seen.generation), sync: Mutex::new(st), origin })
    }

    /// Saves the graph beside the gallery, tagged with `generation` (best effort: a read-only
    /// folder just means no cache).
    fn save_graph(&self, index: &SearchIndex, generation: i64) -> bool {
        let file = self.graph_cache();
        let tag_file = file.with_extension("hnsw.generation");
        let tmp = file.with_extension("hnsw.tmp");
        let _ = std::fs::remove_file(&tag_file);
        if matches!(index.index().save(&tmp), Ok(true)) && std::fs::rename(&tmp, &file).is_ok() {
            return std::fs::write(&tag_file, self.cache_tag(generation, index.len())).is_ok();
        }
        let _ = std::fs::remove_file(&tmp);
        false
    }

    /// Saves the live HNSW graph beside the gallery when it is up to date with the file, so
    /// the next open loads it instead of rebuilding (a service calls this at shutdown).
    /// Returns whether a graph was saved; never after a template was removed from it.
    pub fn save_index(&self) -> Result<bool, GalleryError> {
        let live = self.live()?;
        self.refresh(&live)?;
        let st = live.sync.lock().unwrap_or_else(|e| e.into_inner());
        Ok(self.save_graph(&live.index, st.seen.generation))
    }

    /// Catches the live index up with changes other processes made (when the generation
    /// moved). Never waits: if another thread is already updating the index, the search runs
    /// on the index as it is.
    fn refresh(&self, live: &Live) -> Result<(), GalleryError> {
        let mut conn = self.reader()?;
        let generation: i64 = conn
            .prepare_cached("SELECT value FROM meta WHERE key = 'generation'")
            .and_then(|mut s| s.query_row([], |r| r.get::<_, String>(0)).optional())
            .map_err(self.err())?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if generation == live.generation.load(Ordering::Acquire) {
            return Ok(());
        }
        let Ok(mut st) = live.sync.try_lock() else { return Ok(()) };
        self.sync(live, &mut st, &mut conn)
    }

    fn sync(&self, live: &Live, st: &mut SyncState, conn: &mut Connection) -> Result<(), GalleryError> {
        let err = self.err();
        let tx = conn.transaction().map_err(&err)?;
        let now = read_counters(&tx).map_err(&err)?;
        if now == st.seen {
            live.generation.store(now.generation, Ordering::Release);
            return Ok(());
        }
        if now.rewrites != st.seen.rewrites {
            // Deletions or renames: reconcile names and template ids in full.
            let names: HashMap<i64, String> = tx
                .prepare("SELECT id, name FROM subjects")
                .and_then(|mut s| s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
                .map_err(&err)?;
            st.max_subject = names.keys().copied().max().unwrap_or(0).max(st.max_subject);
            *live.names.write().unwrap_or_else(|e| e.into_inner()) = names;
            let ids: HashSet<i64> =
                tx.prepare("SELECT id FROM templates").and_then(|mut s| s.query_map([], |r| r.get(0))?.collect()).map_err(&err)?;
            for id in live.index.ids() {
                if !ids.contains(&id) {
                    live.index.remove(id)?;
                }
            }
        } else {
            let mut q = tx.prepare("SELECT id, name FROM subjects WHERE id > ?1").map_err(&err)?;
            let new: Vec<(i64, String)> =
                q.query_map([st.max_subject], |r| Ok((r.get(0)?, r.get(1)?))).map_err(&err)?.collect::<Result<_, _>>().map_err(&err)?;
            let mut names = live.names.write().unwrap_or_else(|e| e.into_inner());
            for (id, n) in new {
                st.max_subject = st.max_subject.max(id);
                names.insert(id, n);
            }
        }
        {
            let mut q = tx.prepare("SELECT id, subject_id, embedding FROM templates WHERE id > ?1 ORDER BY id").map_err(&err)?;
            let mut rows = q.query([st.max_template]).map_err(&err)?;
            while let Some(r) = rows.next().map_err(&err)? {
                let (tid, sid, blob): (i64, i64, Vec<u8>) = (r.get(0).map_err(&err)?, r.get(1).map_err(&err)?, r.get(2).map_err(&err)?);
                st.max_template = st.max_template.max(tid);
                if !live.index.contains(tid) && blob.len() == self.contract.dim * 4 {
                    live.index.insert(tid, sid, &from_blob(&blob))?;
                }
            }
        }
        st.seen = now;
        live.generation.store(now.generation, Ordering::Release);
        Ok(())
    }

    /// The `k` nearest subjects to `probe` (nearest template per subject), nearest first.
    pub fn search(&self, probe: &[f32], k: usize) -> Result<Vec<Match>, GalleryError> {
        self.check_embedding(probe)?;
        let live = self.live()?;
        self.refresh(&live)?;
        let found = live.index.search(probe, k)?;
        let names = live.names.read().unwrap_or_else(|e| e.into_inner());
        Ok(found
            .into_iter()
            .filter_map(|Candidate { subject, distance }| Some(Match { name: names.get(&subject)?.clone(), distance }))
            .collect())
    }

    /// The distance from `probe` to `name`'s nearest template.
    pub fn distance_to(&self, name: &str, probe: &[f32]) -> Result<f32, GalleryError> {
        self.check_embedding(probe)?;
        let name = nfc(name);
        let live = self.live()?;
        self.refresh(&live)?;
        let ids: Vec<i64> = self
            .reader()?
            .prepare_cached("SELECT t.id FROM templates t JOIN subjects s ON s.id = t.subject_id WHERE s.name = ?1")
            .and_then(|mut s| s.query_map([&name], |r| r.get(0))?.collect())
            .map_err(self.err())?;
        let d = live.index.distances(probe, &ids)?.iter().map(|h| h.distance).fold(f32::INFINITY, f32::min);
        if !d.is_finite() {
            return Err(GalleryError::UnknownSubject { name, path: self.path.clone() });
        }
        Ok(d)
    }
}

impl SearchIndex {
    /// Records template owners for an index whose vectors were loaded from elsewhere (the
    /// cached graph).
    pub(crate) fn adopt(&self, owners: &[(i64, i64)]) {
        self.set_owners(owners);
    }
}
