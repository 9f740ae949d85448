//! The visage gallery kept in Milvus, so that visage processes hold no state and several of
//! them share one gallery.
//!
//! A gallery is named by a URL, `milvus://HOST:PORT/NAME`. Each gallery (each tenant) is two
//! Milvus collections of its own, `visage_NAME_faces` (one row per template) and
//! `visage_NAME_meta` (the threshold and each subject's metadata); collections rather than a
//! partition key, so that a tenant's index, compaction, load and deletion touch no other
//! tenant's data. The contract (model, dimension, metric) is the faces collection's
//! description, written once when the gallery is created and checked at every open.
//!
//! * **Consistency**: every read (search, query, count) asks for `Strong` consistency, so an
//!   enrollment that was acknowledged to any process is seen by the next search of every
//!   process (tested across processes). Searches can be asked to read `Bounded`, `Session` or
//!   `Eventually` instead ([`SearchConsistency`]), which does not wait for the write log.
//! * **Idempotent writes**: a template's primary key is the SHA-256 of its photo's SHA-256 and
//!   face box, and templates are written with `upsert`: enrolling the same face again, or
//!   retrying a batch that was killed half way, never duplicates a template.
//! * **Forget**: Milvus deletes are logical until compaction. [`MilvusGallery::forget`]
//!   deletes, flushes, triggers a manual compaction, waits for it (bounded) and then checks
//!   that the flushed segments hold no more rows than the live count
//!   ([`ForgetOutcome::erased`](visage_gallery::ForgetOutcome)).
//! * **Decision rule**: Milvus returns the nearest templates; the nearest template per
//!   subject, the threshold, `unknown` and top-k are decided here, as in the embedded gallery.
//! * **Failures**: every call has a timeout and is retried with backoff a bounded number of
//!   times ([`RetryPolicy`]); then a clear error names the server. Nothing waits for ever.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::str::FromStr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use milvus::client::{Client, ConsistencyLevel};
use milvus::data::FieldColumn;
use milvus::index::{IndexParams, IndexType, MetricType};
use milvus::mutate::DeleteOptions;
use milvus::options::CreateCollectionOptions;
use milvus::query::{QueryOptions, SearchOptions};
use milvus::schema::{CollectionSchemaBuilder, FieldSchema};
use milvus::value::{Value, ValueVec};
use sha2::{Digest, Sha256};
use visage_core::{Metric, Thresholds};
use visage_gallery::{Contract, EnrollOutcome, FaceRecord, ForgetOutcome, Match, NewTemplate, SubjectInfo, TemplateRecord};

/// Milvus answers at most this many rows per query or search.
const MAX_WINDOW: usize = 16_384;

/// One template as `templates_full` returns it: the record, its face box as stored, and the
/// source it was enrolled from, if one was recorded.
pub type FullTemplate = (TemplateRecord, [i64; 4], Option<String>);

/// Longest name, in characters (as the embedded gallery).
const MAX_NAME_CHARS: usize = 200;
/// Longest photo hash: a SHA-256 in hex, or `embedding:` and one (a template enrolled from an
/// embedding, as `visage serve` keys them).
const PHOTO_MAX: i32 = 80;

/// A runtime that may be dropped anywhere, an async context included (a gallery held by an
/// async server is dropped there): it shuts down without waiting.
struct Rt(Option<tokio::runtime::Runtime>);

impl std::ops::Deref for Rt {
    type Target = tokio::runtime::Runtime;
    fn deref(&self) -> &tokio::runtime::Runtime {
        self.0.as_ref().expect("the runtime lives as long as its gallery")
    }
}

impl Drop for Rt {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

/// Errors of the Milvus gallery.
#[derive(Debug, thiserror::Error)]
pub enum MilvusError {
    /// A malformed `milvus://` URL.
    #[error("invalid Milvus gallery URL {0:?}: expected milvus://HOST:PORT/NAME (NAME: letters, digits, underscores)")]
    Url(String),
    /// The server did not answer within the retry policy.
    #[error("Milvus at {url} is unreachable or not answering ({attempts} attempts over {secs:.0} s): {last}")]
    Unreachable {
        /// The server.
        url: String,
        /// Attempts made.
        attempts: u32,
        /// Seconds spent.
        secs: f64,
        /// The last error.
        last: String,
    },
    /// The server refused a request.
    #[error("Milvus at {url}: {msg}")]
    Server {
        /// The server.
        url: String,
        /// What it said.
        msg: String,
    },
    /// No gallery of that name, and it was not to be created.
    #[error("no gallery {0} in Milvus (enroll someone first to create it)")]
    Missing(String),
    /// Embeddings that do not fit the gallery's contract.
    #[error("gallery {url} holds {want}; refusing {got}")]
    Contract {
        /// The gallery.
        url: String,
        /// Its contract.
        want: String,
        /// What was offered.
        got: String,
    },
    /// A bad argument.
    #[error("{0}")]
    Invalid(String),
    /// A face (photo and box) already enrolled under another name, offered without
    /// `allow_duplicate`.
    #[error("{url}: this face {face_box} of photo {photo_sha256} is already enrolled as {existing:?}; enrolling it as {name:?} too would make identify answer both at distance 0")]
    Duplicate {
        /// The gallery.
        url: String,
        /// Who holds it already.
        existing: String,
        /// Who it was offered for.
        name: String,
        /// The photo's SHA-256.
        photo_sha256: String,
        /// The face box, `[l,t,r,b]`.
        face_box: String,
    },
    /// No such subject.
    #[error("no one called {name:?} is enrolled in {url}")]
    UnknownSubject {
        /// The gallery.
        url: String,
        /// The name.
        name: String,
    },
}

type Result<T, E = MilvusError> = std::result::Result<T, E>;

/// `milvus://HOST:PORT/NAME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MilvusUrl {
    /// Host name or address.
    pub host: String,
    /// The proxy's gRPC port (19530 by default).
    pub port: u16,
    /// The gallery's name (the tenant).
    pub name: String,
}

/// True when `s` names a Milvus gallery rather than a file.
pub fn is_milvus_url(s: &str) -> bool {
    s.starts_with("milvus://")
}

impl FromStr for MilvusUrl {
    type Err = MilvusError;
    fn from_str(s: &str) -> Result<Self> {
        let bad = || MilvusError::Url(s.to_string());
        let rest = s.strip_prefix("milvus://").ok_or_else(bad)?;
        let (hostport, name) = rest.split_once('/').ok_or_else(bad)?;
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) => (h, p.parse::<u16>().map_err(|_| bad())?),
            None => (hostport, 19530),
        };
        let ok_name = !name.is_empty()
            && name.len() <= 180
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !name.starts_with(|c: char| c.is_ascii_digit());
        if host.is_empty() || !ok_name {
            return Err(bad());
        }
        Ok(Self { host: host.to_string(), port, name: name.to_string() })
    }
}

impl fmt::Display for MilvusUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "milvus://{}:{}/{}", self.host, self.port, self.name)
    }
}

/// How long calls may take and how often they are retried.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts per call (at least 1).
    pub attempts: u32,
    /// Time limit of one attempt.
    pub call_timeout: Duration,
    /// Wait before the second attempt; doubled before each further one.
    pub backoff: Duration,
}

impl Default for RetryPolicy {
    /// 4 attempts of at most 10 s, 0.5 s, 1 s, 2 s apart: an unreachable server is reported
    /// within about 45 s, a restarting one is waited for.
    fn default() -> Self {
        Self { attempts: 4, call_timeout: Duration::from_secs(10), backoff: Duration::from_millis(500) }
    }
}

impl RetryPolicy {
    /// The longest a call can take under this policy.
    pub fn bound(&self) -> Duration {
        let mut t = self.call_timeout * self.attempts;
        let mut b = self.backoff;
        for _ in 1..self.attempts {
            t += b;
            b *= 2;
        }
        t
    }
}

/// The consistency level of searches (identify, verify). Queries, counts and listings always
/// read `Strong`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SearchConsistency {
    /// A search sees every write acknowledged before it started, in any process: it waits for
    /// the query nodes to have consumed the write log up to now (on Milvus 2.3.5 standalone at
    /// its default settings, about 200 ms per search; see BENCHMARKS.md).
    #[default]
    Strong,
    /// A search may miss writes of the last few seconds (Milvus's `gracefulTime`, 5 s by
    /// default) and does not wait.
    Bounded,
    /// A search sees this process's own acknowledged writes (the client's last write
    /// timestamp); other processes' recent writes may be missed.
    Session,
    /// A search sees whatever the query nodes hold now.
    Eventually,
}

impl SearchConsistency {
    fn level(self) -> ConsistencyLevel {
        match self {
            Self::Strong => ConsistencyLevel::Strong,
            Self::Bounded => ConsistencyLevel::Bounded,
            Self::Session => ConsistencyLevel::Session,
            Self::Eventually => ConsistencyLevel::Eventually,
        }
    }
}

/// How to open a Milvus gallery (the model contract as [`visage_gallery::OpenOptions`]).
#[derive(Debug, Clone)]
pub struct MilvusOptions {
    model: Option<(String, usize)>,
    thresholds: Option<Thresholds>,
    metric: Option<Metric>,
    create: bool,
    retry: RetryPolicy,
    search_consistency: SearchConsistency,
    hnsw_m: u32,
    hnsw_ef_construction: u32,
}

impl MilvusOptions {
    /// A gallery of `dim`-d embeddings of `model`; not created.
    pub fn new(model: &str, dim: usize) -> Self {
        Self { model: Some((model.into(), dim)), ..Self::any_model() }
    }
    /// A gallery of the embeddings that `d` describes, with its thresholds for a new gallery.
    pub fn for_model(d: &visage_core::ModelDescriptor) -> Self {
        Self::new(&d.id, d.dim).thresholds(d.thresholds)
    }
    /// Whatever model the gallery holds (listing, forgetting, exporting); cannot create one.
    pub fn any_model() -> Self {
        Self {
            model: None,
            thresholds: None,
            metric: None,
            create: false,
            retry: RetryPolicy::default(),
            search_consistency: SearchConsistency::Strong,
            hnsw_m: 16,
            hnsw_ef_construction: 64,
        }
    }
    /// Creates a missing gallery.
    pub fn create(mut self, yes: bool) -> Self {
        self.create = yes;
        self
    }
    /// The model's thresholds (a new gallery starts with the one for its metric).
    pub fn thresholds(mut self, t: Thresholds) -> Self {
        self.thresholds = Some(t);
        self
    }
    /// The metric of a new gallery (L2 by default); an existing one of another is refused.
    /// Milvus has no chi-squared: such a gallery cannot live in Milvus.
    pub fn metric(mut self, m: Option<Metric>) -> Self {
        self.metric = m;
        self
    }
    /// Timeouts and retries.
    pub fn retry(mut self, r: RetryPolicy) -> Self {
        self.retry = r;
        self
    }
    /// The consistency level of this handle's searches ([`SearchConsistency::Strong`] by default).
    pub fn search_consistency(mut self, c: SearchConsistency) -> Self {
        self.search_consistency = c;
        self
    }
    /// HNSW build settings of a new gallery's index (M, efConstruction).
    pub fn hnsw(mut self, m: u32, ef_construction: u32) -> Self {
        self.hnsw_m = m;
        self.hnsw_ef_construction = ef_construction;
        self
    }
    /// Opens (or creates) the gallery.
    pub fn open(&self, url: &str) -> Result<MilvusGallery> {
        MilvusGallery::open(url, self)
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct StoredContract {
    visage_gallery: u32,
    model: String,
    dim: usize,
    metric: String,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct StoredSubject {
    metadata: Option<String>,
    created_at: i64,
}

/// A gallery in Milvus. Calls block (a small runtime runs inside).
pub struct MilvusGallery {
    rt: Rt,
    client: Client,
    url: MilvusUrl,
    faces: String,
    meta: String,
    contract: Contract,
    retry: RetryPolicy,
    search_consistency: SearchConsistency,
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// A string literal in a Milvus expression.
fn lit(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            o.push('\\');
        }
        o.push(c);
    }
    o.push('"');
    o
}

/// The primary key of a template: the photo and the face (and the name, for a face enrolled
/// under two names on purpose).
pub fn template_key(photo_sha256: &str, face_box: &[i64; 4], name_if_duplicate: Option<&str>) -> String {
    let mut h = Sha256::new();
    h.update(photo_sha256.as_bytes());
    h.update(format!("|{},{},{},{}", face_box[0], face_box[1], face_box[2], face_box[3]).as_bytes());
    if let Some(n) = name_if_duplicate {
        h.update(b"|");
        h.update(n.as_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The id a face is listed under ([`MilvusGallery::faces`]): Milvus keys are hashes, and the
/// id is the key's first 15 hex digits (a positive `i64`).
fn key_face_id(key: &str) -> i64 {
    key.get(..15).and_then(|h| i64::from_str_radix(h, 16).ok()).unwrap_or(0)
}

/// The id under which the face of photo `photo_sha256` at `face_box` is listed once enrolled
/// (without `allow_duplicate`), as [`MilvusGallery::faces`] lists it.
pub fn face_id(photo_sha256: &str, face_box: &[i64; 4]) -> i64 {
    key_face_id(&template_key(photo_sha256, face_box, None))
}

fn valid_name(name: &str) -> Result<String> {
    let n = visage_gallery::normalize_name(name);
    if n.trim().is_empty() || n.trim() != n || n.chars().count() > MAX_NAME_CHARS || n.chars().any(char::is_control) {
        return Err(MilvusError::Invalid(format!(
            "invalid name {n:?}: names are 1 to {MAX_NAME_CHARS} characters, without control characters or surrounding spaces"
        )));
    }
    if n.to_lowercase() == "unknown" {
        return Err(MilvusError::Invalid(format!("the name {n:?} is reserved: it is the answer for a face that matches nobody")));
    }
    Ok(n)
}

fn strings(cols: &[FieldColumn], name: &str) -> Vec<String> {
    cols.iter()
        .find(|c| c.name == name)
        .and_then(|c| match &c.value {
            ValueVec::String(v) => Some(v.clone()),
            _ => None,
        })
        .unwrap_or_default()
}
fn longs(cols: &[FieldColumn], name: &str) -> Vec<i64> {
    cols.iter()
        .find(|c| c.name == name)
        .and_then(|c| match &c.value {
            ValueVec::Long(v) => Some(v.clone()),
            _ => None,
        })
        .unwrap_or_default()
}
fn floats(cols: &[FieldColumn], name: &str) -> Vec<f32> {
    cols.iter()
        .find(|c| c.name == name)
        .and_then(|c| match &c.value {
            ValueVec::Float(v) => Some(v.clone()),
            _ => None,
        })
        .unwrap_or_default()
}

/// Whether an error is worth retrying (transport, timeouts, a server still starting).
fn transient(e: &milvus::error::Error) -> bool {
    let s = format!("{e:?}").to_lowercase();
    [
        "transport",
        "unavailable",
        "timeout",
        "timed out",
        "deadline",
        "connect",
        "not ready",
        "notready",
        "unhealthy",
        "broken pipe",
        "reset",
        "not serving",
        "channel",
    ]
    .iter()
    .any(|w| s.contains(w))
}

impl MilvusGallery {
    /// Connects to the server and opens the gallery named by `url`.
    pub fn open(url: &str, opts: &MilvusOptions) -> Result<Self> {
        let url: MilvusUrl = url.parse()?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| MilvusError::Invalid(format!("cannot start a runtime: {e}")))?;
        let endpoint = format!("http://{}:{}", url.host, url.port);
        let retry = opts.retry;
        let client = Self::retrying(&rt, &url, &retry, || {
            let endpoint = endpoint.clone();
            async move { Client::with_timeout(endpoint, retry.call_timeout, None, None).await }
        })?;
        let faces = format!("visage_{}_faces", url.name);
        let meta = format!("visage_{}_meta", url.name);
        let mut g = Self {
            rt: Rt(Some(rt)),
            client,
            url,
            faces,
            meta,
            contract: Contract { model: String::new(), dim: 0, metric: Metric::L2 },
            retry,
            search_consistency: opts.search_consistency,
        };
        let exists = g.call(|c, f| async move { c.has_collection(f).await }, g.faces.clone())?;
        if !exists {
            if !opts.create {
                return Err(MilvusError::Missing(g.url.to_string()));
            }
            g.create(opts)?;
        }
        g.contract = g.read_contract()?;
        if let Some((model, dim)) = &opts.model {
            g.check_model(model, *dim)?;
        }
        if let Some(m) = opts.metric {
            if m != g.contract.metric {
                return Err(MilvusError::Invalid(format!(
                    "gallery {} compares by {}, not {m} (a gallery's metric is fixed when it is created)",
                    g.url, g.contract.metric
                )));
            }
        }
        Ok(g)
    }

    fn retrying<T, F, Fut>(rt: &tokio::runtime::Runtime, url: &MilvusUrl, p: &RetryPolicy, mut f: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = milvus::error::Result<T>>,
    {
        let start = Instant::now();
        let mut wait = p.backoff;
        let mut last = String::new();
        let attempts = p.attempts.max(1);
        for i in 0..attempts {
            if i > 0 {
                std::thread::sleep(wait);
                wait *= 2;
            }
            match rt.block_on(async { tokio::time::timeout(p.call_timeout, f()).await }) {
                Ok(Ok(v)) => return Ok(v),
                Ok(Err(e)) if !transient(&e) => {
                    return Err(MilvusError::Server { url: url.to_string(), msg: e.to_string() });
                }
                Ok(Err(e)) => last = e.to_string(),
                Err(_) => last = format!("no answer within {:.0} s", p.call_timeout.as_secs_f64()),
            }
        }
        Err(MilvusError::Unreachable { url: url.to_string(), attempts, secs: start.elapsed().as_secs_f64(), last })
    }

    /// One client call under the retry policy.
    fn call<T, A: Clone, F, Fut>(&self, f: F, arg: A) -> Result<T>
    where
        F: Fn(Client, A) -> Fut,
        Fut: Future<Output = milvus::error::Result<T>>,
    {
        Self::retrying(&self.rt, &self.url, &self.retry, || f(self.client.clone(), arg.clone()))
    }

    fn create(&self, opts: &MilvusOptions) -> Result<()> {
        let (model, dim, t) = match (&opts.model, &opts.thresholds) {
            (Some((m, d)), Some(t)) => (m.clone(), *d, *t),
            _ => {
                return Err(MilvusError::Invalid(format!(
                    "cannot create the gallery {}: a new gallery needs its model's id, dimension and thresholds",
                    self.url
                )))
            }
        };
        let metric = opts.metric.unwrap_or_default();
        let mt = match metric {
            Metric::L2 => MetricType::L2,
            Metric::Cosine => MetricType::COSINE,
            Metric::Chi2 => {
                return Err(MilvusError::Invalid(format!(
                    "cannot create {}: Milvus has no chi-squared metric (use l2 or cosine, or the embedded gallery)",
                    self.url
                )))
            }
        };
        let contract = serde_json::to_string(&StoredContract { visage_gallery: 1, model, dim, metric: metric.name().to_string() }).unwrap();
        let faces = CollectionSchemaBuilder::new(&self.faces, &contract)
            .add_field(FieldSchema::new_primary_varchar("key", "sha256 of photo hash and face box", false, 64))
            .add_field(FieldSchema::new_varchar("name", "subject", 4 * MAX_NAME_CHARS as i32))
            .add_field(FieldSchema::new_varchar("photo", "sha256 of the photo, or embedding: and the embedding's", PHOTO_MAX))
            .add_field(FieldSchema::new_varchar("fbox", "face box as JSON", 96))
            .add_field(FieldSchema::new_varchar("source", "where the photo came from", 4096))
            .add_field(FieldSchema::new_int64("created", "unix time"))
            .add_field(FieldSchema::new_float_vector("embedding", "", dim as i64))
            .build()
            .map_err(|e| MilvusError::Invalid(e.to_string()))?;
        let meta = CollectionSchemaBuilder::new(&self.meta, "visage gallery settings and subjects")
            .add_field(FieldSchema::new_primary_varchar("key", "", false, 1024))
            .add_field(FieldSchema::new_varchar("value", "", 65_535))
            .add_field(FieldSchema::new_float_vector("unused", "Milvus needs a vector field", 2))
            .build()
            .map_err(|e| MilvusError::Invalid(e.to_string()))?;
        let strong = || Some(CreateCollectionOptions::with_consistency_level(ConsistencyLevel::Strong));
        // The meta collection first: the faces collection's existence says the gallery is whole.
        for (schema, field, index) in [
            (meta, "unused", IndexParams::new("unused_idx".into(), IndexType::Flat, MetricType::L2, HashMap::new())),
            (
                faces,
                "embedding",
                IndexParams::new(
                    "embedding_hnsw".into(),
                    IndexType::HNSW,
                    mt,
                    HashMap::from([
                        ("M".to_string(), opts.hnsw_m.to_string()),
                        ("efConstruction".to_string(), opts.hnsw_ef_construction.to_string()),
                    ]),
                ),
            ),
        ] {
            let name = schema.name().to_string();
            let exists = self.call(|c, n| async move { c.has_collection(n).await }, name.clone())?;
            if !exists {
                self.call(|c, s| async move { c.create_collection(s, strong()).await }, schema)?;
            }
            let _ = self.call(|c, (n, f, i)| async move { c.create_index(n, f, i).await }, (name.clone(), field.to_string(), index));
            self.call(|c, n| async move { c.load_collection(n, None).await }, name)?;
        }
        self.put_meta("threshold", &t.get(metric).to_string())?;
        Ok(())
    }

    fn read_contract(&self) -> Result<Contract> {
        let d = self.call(|c, n| async move { c.describe_collection(n).await }, self.faces.clone())?;
        let s: StoredContract = serde_json::from_str(&d.schema.description)
            .map_err(|_| MilvusError::Invalid(format!("{}: the collection {} is not a visage gallery", self.url, self.faces)))?;
        let metric: Metric = s.metric.parse().map_err(|_| MilvusError::Invalid(format!("{}: unknown metric {}", self.url, s.metric)))?;
        // Make sure both collections are loaded (a restarted server, another process's gallery).
        for n in [&self.meta, &self.faces] {
            self.call(|c, n| async move { c.load_collection(n, None).await }, n.clone())?;
        }
        Ok(Contract { model: s.model, dim: s.dim, metric })
    }

    /// The gallery's URL.
    pub fn url(&self) -> &MilvusUrl {
        &self.url
    }
    /// What embeddings it holds.
    pub fn contract(&self) -> &Contract {
        &self.contract
    }

    /// Refuses embeddings of another model than the gallery's (as the embedded gallery's
    /// `check_model`).
    pub fn check_model_of(&self, d: &visage_core::ModelDescriptor) -> Result<()> {
        self.check_model(&d.id, d.dim)
    }

    fn check_model(&self, model: &str, dim: usize) -> Result<()> {
        if self.contract.model != model || self.contract.dim != dim {
            return Err(MilvusError::Contract {
                url: self.url.to_string(),
                want: self.contract.to_string(),
                got: format!("{dim}-d embeddings of {model}"),
            });
        }
        Ok(())
    }

    fn check_dim(&self, v: &[f32]) -> Result<()> {
        if v.len() != self.contract.dim || v.iter().any(|x| !x.is_finite()) {
            return Err(MilvusError::Contract {
                url: self.url.to_string(),
                want: self.contract.to_string(),
                got: format!("a {}-d embedding{}", v.len(), if v.iter().any(|x| !x.is_finite()) { " with non-finite values" } else { "" }),
            });
        }
        Ok(())
    }

    fn strong_query(&self) -> QueryOptions {
        QueryOptions::new().consistency_level(ConsistencyLevel::Strong as i32)
    }

    fn query(&self, collection: &str, expr: String, fields: &[&str], limit: usize) -> Result<Vec<FieldColumn>> {
        let opts = self.strong_query().output_fields(fields.iter().map(|s| s.to_string()).collect()).limit(limit as i64);
        self.call(
            |c, (coll, expr, opts): (String, String, QueryOptions)| async move { c.query(coll, &expr, &opts).await },
            (collection.to_string(), expr, opts),
        )
    }

    /// Every row of `collection` matching `expr`, however many: the hex primary keys are split
    /// by prefix until each part fits Milvus's result window.
    fn query_all(&self, collection: &str, expr: &str, fields: &[&str], hex_keys: bool) -> Result<Vec<FieldColumn>> {
        let mut out: Vec<FieldColumn> = Vec::new();
        let mut todo = vec![String::new()];
        while let Some(prefix) = todo.pop() {
            let e = if prefix.is_empty() { format!("({expr})") } else { format!("({expr}) and key like {}", lit(&format!("{prefix}%"))) };
            let cols = self.query(collection, e, fields, MAX_WINDOW)?;
            let n = cols.first().map(|c| c.len()).unwrap_or(0);
            if n >= MAX_WINDOW {
                if !hex_keys || prefix.len() >= 64 {
                    return Err(MilvusError::Invalid(format!("{}: more than {MAX_WINDOW} rows match {expr}", self.url)));
                }
                todo.extend("0123456789abcdef".chars().map(|c| format!("{prefix}{c}")));
                continue;
            }
            if out.is_empty() {
                out = cols;
            } else {
                for c in cols {
                    if let Some(o) = out.iter_mut().find(|o| o.name == c.name) {
                        append(&mut o.value, c.value);
                    }
                }
            }
        }
        Ok(out)
    }

    fn put_meta(&self, key: &str, value: &str) -> Result<()> {
        let s = self.meta_schema()?;
        let cols = vec![
            FieldColumn::new(s.get_field("key").unwrap(), vec![key.to_string()]),
            FieldColumn::new(s.get_field("value").unwrap(), vec![value.to_string()]),
            FieldColumn::new(s.get_field("unused").unwrap(), vec![0f32, 0f32]),
        ];
        self.call(|c, (n, cols)| async move { c.upsert(n, cols, None::<milvus::mutate::UpsertOptions>).await }, (self.meta.clone(), cols))?;
        Ok(())
    }

    fn meta_schema(&self) -> Result<milvus::schema::CollectionSchema> {
        CollectionSchemaBuilder::new(&self.meta, "")
            .add_field(FieldSchema::new_primary_varchar("key", "", false, 1024))
            .add_field(FieldSchema::new_varchar("value", "", 65_535))
            .add_field(FieldSchema::new_float_vector("unused", "", 2))
            .build()
            .map_err(|e| MilvusError::Invalid(e.to_string()))
    }

    fn faces_schema(&self) -> Result<milvus::schema::CollectionSchema> {
        CollectionSchemaBuilder::new(&self.faces, "")
            .add_field(FieldSchema::new_primary_varchar("key", "", false, 64))
            .add_field(FieldSchema::new_varchar("name", "", 4 * MAX_NAME_CHARS as i32))
            .add_field(FieldSchema::new_varchar("photo", "", PHOTO_MAX))
            .add_field(FieldSchema::new_varchar("fbox", "", 96))
            .add_field(FieldSchema::new_varchar("source", "", 4096))
            .add_field(FieldSchema::new_int64("created", ""))
            .add_field(FieldSchema::new_float_vector("embedding", "", self.contract.dim as i64))
            .build()
            .map_err(|e| MilvusError::Invalid(e.to_string()))
    }

    fn get_meta(&self, key: &str) -> Result<Option<String>> {
        let cols = self.query(&self.meta, format!("key == {}", lit(key)), &["key", "value"], 2)?;
        Ok(strings(&cols, "value").into_iter().next())
    }

    /// The same-person threshold.
    pub fn threshold(&self) -> Result<f64> {
        let v = self.get_meta("threshold")?.ok_or_else(|| MilvusError::Invalid(format!("{}: no threshold stored", self.url)))?;
        v.parse().map_err(|_| MilvusError::Invalid(format!("{}: bad threshold {v:?}", self.url)))
    }

    /// Stores a new threshold (finite, >= 0).
    pub fn set_threshold(&self, t: f64) -> Result<()> {
        if !t.is_finite() || t < 0.0 {
            return Err(MilvusError::Invalid(format!("invalid threshold {t}: must be finite and >= 0")));
        }
        self.put_meta("threshold", &t.to_string())
    }

    fn subject_row(&self, name: &str) -> Result<Option<StoredSubject>> {
        Ok(self.get_meta(&format!("subject:{name}"))?.and_then(|v| serde_json::from_str(&v).ok()))
    }

    /// Enrolls templates under `name` (created if new). Idempotent: a face (photo hash and box)
    /// already enrolled under this name is skipped; under another name it is refused unless
    /// `allow_duplicate`. Acknowledged means written: a search that starts after this returns
    /// sees them, from any process.
    pub fn enroll(&self, name: &str, metadata: Option<&str>, templates: &[NewTemplate], allow_duplicate: bool) -> Result<EnrollOutcome> {
        let name = valid_name(name)?;
        for t in templates {
            self.check_dim(&t.embedding)?;
        }
        if let Some(m) = metadata {
            serde_json::from_str::<serde_json::Value>(m).map_err(|e| MilvusError::Invalid(format!("metadata is not JSON: {e}")))?;
        }
        // Keys of this batch, each once.
        let mut seen = HashSet::new();
        let batch: Vec<(String, &NewTemplate)> = templates
            .iter()
            .map(|t| (template_key(&t.photo_sha256, &t.face_box, allow_duplicate.then_some(name.as_str())), t))
            .filter(|(k, _)| seen.insert(k.clone()))
            .collect();
        // What is there already (by key, and the same faces under other names).
        let mut already = HashSet::new();
        for chunk in batch.chunks(1000) {
            let keys: Vec<String> = chunk.iter().map(|(k, _)| lit(k)).collect();
            let plain: Vec<String> = chunk.iter().map(|(_, t)| lit(&template_key(&t.photo_sha256, &t.face_box, None))).collect();
            let expr = format!("key in [{}] or key in [{}]", keys.join(","), plain.join(","));
            let cols = self.query(&self.faces, expr, &["key", "name", "photo", "fbox"], MAX_WINDOW)?;
            let (ks, ns, ps, bs) = (strings(&cols, "key"), strings(&cols, "name"), strings(&cols, "photo"), strings(&cols, "fbox"));
            for (i, (k, n)) in ks.iter().zip(&ns).enumerate() {
                if *n == name {
                    already.insert(k.clone());
                } else if !allow_duplicate {
                    return Err(MilvusError::Duplicate {
                        url: self.url.to_string(),
                        existing: n.clone(),
                        name: name.clone(),
                        photo_sha256: ps.get(i).cloned().unwrap_or_default(),
                        face_box: bs.get(i).cloned().unwrap_or_default(),
                    });
                }
            }
        }
        let new: Vec<&(String, &NewTemplate)> = batch.iter().filter(|(k, _)| !already.contains(k)).collect();
        // The subject row first: a template never exists without its subject.
        let existing = self.subject_row(&name)?;
        if existing.is_none() || metadata.is_some() {
            let created_at = existing.as_ref().map(|s| s.created_at).unwrap_or_else(now);
            let md = metadata.map(str::to_string).or(existing.and_then(|s| s.metadata));
            self.put_meta(&format!("subject:{name}"), &serde_json::to_string(&StoredSubject { metadata: md, created_at }).unwrap())?;
        }
        if !new.is_empty() {
            let s = self.faces_schema()?;
            let ts = now();
            for chunk in new.chunks(2000) {
                let mut emb = Vec::with_capacity(chunk.len() * self.contract.dim);
                for (_, t) in chunk {
                    emb.extend_from_slice(&t.embedding);
                }
                let cols = vec![
                    FieldColumn::new(s.get_field("key").unwrap(), chunk.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>()),
                    FieldColumn::new(s.get_field("name").unwrap(), vec![name.clone(); chunk.len()]),
                    FieldColumn::new(s.get_field("photo").unwrap(), chunk.iter().map(|(_, t)| t.photo_sha256.clone()).collect::<Vec<_>>()),
                    FieldColumn::new(
                        s.get_field("fbox").unwrap(),
                        chunk.iter().map(|(_, t)| serde_json::to_string(&t.face_box).unwrap()).collect::<Vec<_>>(),
                    ),
                    FieldColumn::new(
                        s.get_field("source").unwrap(),
                        chunk.iter().map(|(_, t)| t.source.clone().unwrap_or_default()).collect::<Vec<_>>(),
                    ),
                    FieldColumn::new(s.get_field("created").unwrap(), vec![ts; chunk.len()]),
                    FieldColumn::new(s.get_field("embedding").unwrap(), emb),
                ];
                self.call(
                    |c, (n, cols)| async move { c.upsert(n, cols, None::<milvus::mutate::UpsertOptions>).await },
                    (self.faces.clone(), cols),
                )?;
            }
        }
        Ok(EnrollOutcome { added: new.len(), already: templates.len() - new.len() })
    }

    /// Loads many templates at once (import, benchmarks): subject rows, then templates, in
    /// large upserts, without the per-face duplicate check of [`Self::enroll`] (still
    /// idempotent: keys are the photo hash and box). Names must be valid.
    pub fn bulk_load(&self, rows: &[(String, NewTemplate)]) -> Result<usize> {
        let mut names: Vec<&str> = rows.iter().map(|(n, _)| n.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        let ms = self.meta_schema()?;
        let row = serde_json::to_string(&StoredSubject { metadata: None, created_at: now() }).unwrap();
        for chunk in names.chunks(5000) {
            for n in chunk {
                valid_name(n)?;
            }
            let cols = vec![
                FieldColumn::new(ms.get_field("key").unwrap(), chunk.iter().map(|n| format!("subject:{n}")).collect::<Vec<_>>()),
                FieldColumn::new(ms.get_field("value").unwrap(), vec![row.clone(); chunk.len()]),
                FieldColumn::new(ms.get_field("unused").unwrap(), vec![0f32; 2 * chunk.len()]),
            ];
            self.call(
                |c, (n, cols)| async move { c.upsert(n, cols, None::<milvus::mutate::UpsertOptions>).await },
                (self.meta.clone(), cols),
            )?;
        }
        let s = self.faces_schema()?;
        let ts = now();
        for chunk in rows.chunks(5000) {
            let mut emb = Vec::with_capacity(chunk.len() * self.contract.dim);
            for (_, t) in chunk {
                self.check_dim(&t.embedding)?;
                emb.extend_from_slice(&t.embedding);
            }
            let cols = vec![
                FieldColumn::new(
                    s.get_field("key").unwrap(),
                    chunk.iter().map(|(_, t)| template_key(&t.photo_sha256, &t.face_box, None)).collect::<Vec<_>>(),
                ),
                FieldColumn::new(s.get_field("name").unwrap(), chunk.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>()),
                FieldColumn::new(s.get_field("photo").unwrap(), chunk.iter().map(|(_, t)| t.photo_sha256.clone()).collect::<Vec<_>>()),
                FieldColumn::new(
                    s.get_field("fbox").unwrap(),
                    chunk.iter().map(|(_, t)| serde_json::to_string(&t.face_box).unwrap()).collect::<Vec<_>>(),
                ),
                FieldColumn::new(
                    s.get_field("source").unwrap(),
                    chunk.iter().map(|(_, t)| t.source.clone().unwrap_or_default()).collect::<Vec<_>>(),
                ),
                FieldColumn::new(s.get_field("created").unwrap(), vec![ts; chunk.len()]),
                FieldColumn::new(s.get_field("embedding").unwrap(), emb),
            ];
            self.call(
                |c, (n, cols)| async move { c.upsert(n, cols, None::<milvus::mutate::UpsertOptions>).await },
                (self.faces.clone(), cols),
            )?;
        }
        Ok(rows.len())
    }

    /// Seals what was written (flush) and waits until the HNSW index covers it, at most
    /// `limit`; true when it does. "Covers" is counted where searches run: the rows of the
    /// segments loaded on the query nodes that carry the index (Milvus hands a flushed segment
    /// over from the growing one once its index is built). Segments under 1024 rows get no index in Milvus 2.3 (they are
    /// searched exactly) and count as covered.
    pub fn flush_and_wait_index(&self, limit: Duration) -> Result<bool> {
        self.call(|c, f| async move { c.flush(f).await }, self.faces.clone())?;
        let want = self.template_count()?;
        let deadline = Instant::now() + limit;
        let debug = std::env::var("VISAGE_MILVUS_DEBUG").is_ok();
        loop {
            // Done when the query node serves every row from sealed segments with the index.
            let segs = self.call(|c, f| async move { c.list_loaded_segments(f).await }, self.faces.clone())?;
            let indexed: i64 =
                segs.iter().filter(|s| s.index_id != 0 || !s.index_name.is_empty() || s.num_rows < 1024).map(|s| s.num_rows).sum();
            if debug {
                eprintln!("loaded segments {}, indexed rows {indexed} of {want}", segs.len());
            }
            if indexed as usize >= want {
                return Ok(true);
            }
            if Instant::now() > deadline {
                return Ok(false);
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// Every subject, by name, with its template count.
    pub fn subjects(&self) -> Result<Vec<SubjectInfo>> {
        let meta = self.query_all(&self.meta, "key like \"subject:%\"", &["key", "value"], false)?;
        let faces = self.query_all(&self.faces, "key != \"\"", &["key", "name"], true)?;
        let mut counts: HashMap<String, usize> = HashMap::new();
        for n in strings(&faces, "name") {
            *counts.entry(n).or_default() += 1;
        }
        let mut out: BTreeMap<String, SubjectInfo> = BTreeMap::new();
        for (k, v) in strings(&meta, "key").into_iter().zip(strings(&meta, "value")) {
            let name = k.trim_start_matches("subject:").to_string();
            let s: StoredSubject = serde_json::from_str(&v).unwrap_or(StoredSubject { metadata: None, created_at: 0 });
            let templates = counts.get(&name).copied().unwrap_or(0);
            out.insert(name.clone(), SubjectInfo { name, metadata: s.metadata, templates, created_at: s.created_at });
        }
        Ok(out.into_values().collect())
    }

    /// (subjects, templates).
    pub fn counts(&self) -> Result<(usize, usize)> {
        // The subject rows' keys and a count: no template is read.
        let meta = self.query_all(&self.meta, "key like \"subject:%\"", &["key"], false)?;
        Ok((strings(&meta, "key").len(), self.template_count()?))
    }

    /// Whether `name` is enrolled (with faces or, after they were forgotten one by one, none).
    pub fn has_subject(&self, name: &str) -> Result<bool> {
        Ok(self.subject_row(&visage_gallery::normalize_name(name))?.is_some())
    }

    /// Whether the gallery still exists on the server (another process may have dropped it).
    pub fn exists(&self) -> Result<bool> {
        self.call(|c, f| async move { c.has_collection(f).await }, self.faces.clone())
    }

    /// How many templates the gallery holds (a strong count).
    pub fn template_count(&self) -> Result<usize> {
        let opts = self.strong_query();
        let n = self.call(
            |c, (f, o): (String, QueryOptions)| async move { c.count_with_expr(f, "key != \"\"", &o).await },
            (self.faces.clone(), opts),
        )?;
        Ok(n as usize)
    }

    /// Whether `name` already has a template from the photo with this SHA-256 (enroll-dir's
    /// resume check).
    pub fn has_photo(&self, name: &str, photo_sha256: &str) -> Result<bool> {
        let name = visage_gallery::normalize_name(name);
        let cols = self.query(&self.faces, format!("name == {} and photo == {}", lit(&name), lit(photo_sha256)), &["key"], 1)?;
        Ok(!strings(&cols, "key").is_empty())
    }

    /// A subject's faces, without embeddings.
    pub fn faces(&self, name: &str) -> Result<Vec<FaceRecord>> {
        let name = visage_gallery::normalize_name(name);
        let cols = self.query_all(&self.faces, &format!("name == {}", lit(&name)), &["key", "photo", "fbox", "source", "created"], true)?;
        let (keys, photos, boxes, sources, created) =
            (strings(&cols, "key"), strings(&cols, "photo"), strings(&cols, "fbox"), strings(&cols, "source"), longs(&cols, "created"));
        let mut out: Vec<FaceRecord> = (0..keys.len())
            .map(|i| FaceRecord {
                id: key_face_id(&keys[i]),
                photo_sha256: photos[i].clone(),
                face_box: serde_json::from_str(&boxes[i]).unwrap_or([0; 4]),
                source: Some(sources[i].clone()).filter(|s| !s.is_empty()),
                created_at: created.get(i).copied().unwrap_or(0),
            })
            .collect();
        out.sort_by_key(|f| (f.created_at, f.id));
        Ok(out)
    }

    /// Every template (for export and calibration), with its face box.
    pub fn templates_full(&self) -> Result<Vec<FullTemplate>> {
        let cols = self.query_all(&self.faces, "key != \"\"", &["key", "name", "photo", "fbox", "source", "embedding"], true)?;
        let (names, photos, boxes, sources, emb) =
            (strings(&cols, "name"), strings(&cols, "photo"), strings(&cols, "fbox"), strings(&cols, "source"), floats(&cols, "embedding"));
        let d = self.contract.dim;
        Ok((0..names.len())
            .map(|i| {
                (
                    TemplateRecord { name: names[i].clone(), embedding: emb[i * d..(i + 1) * d].to_vec(), photo_sha256: photos[i].clone() },
                    serde_json::from_str(&boxes[i]).unwrap_or([0; 4]),
                    Some(sources[i].clone()).filter(|s| !s.is_empty()),
                )
            })
            .collect())
    }

    /// Every template.
    pub fn templates(&self) -> Result<Vec<TemplateRecord>> {
        Ok(self.templates_full()?.into_iter().map(|t| t.0).collect())
    }

    /// A subject's template embeddings.
    pub fn templates_of(&self, name: &str) -> Result<Vec<Vec<f32>>> {
        let name = visage_gallery::normalize_name(name);
        let cols = self.query_all(&self.faces, &format!("name == {}", lit(&name)), &["key", "embedding"], true)?;
        let d = self.contract.dim;
        Ok(floats(&cols, "embedding").chunks(d).map(|c| c.to_vec()).collect())
    }

    /// Renames a subject (refused when the new name is taken).
    pub fn rename(&self, old: &str, new: &str) -> Result<()> {
        let old = visage_gallery::normalize_name(old);
        let new = valid_name(new)?;
        let s = self.subject_row(&old)?.ok_or_else(|| MilvusError::UnknownSubject { url: self.url.to_string(), name: old.clone() })?;
        if self.subject_row(&new)?.is_some() {
            return Err(MilvusError::Invalid(format!("{new:?} is already enrolled")));
        }
        self.put_meta(&format!("subject:{new}"), &serde_json::to_string(&s).unwrap())?;
        let rows = self.templates_full()?;
        let mine: Vec<NewTemplate> = rows
            .into_iter()
            .filter(|(t, _, _)| t.name == old)
            .map(|(t, b, src)| NewTemplate { embedding: t.embedding, photo_sha256: t.photo_sha256, face_box: b, source: src })
            .collect();
        // Same keys, new name: upsert replaces each row.
        self.delete_subject_meta(&old)?;
        self.enroll_as(&new, &mine)?;
        Ok(())
    }

    /// Rewrites rows under `name` by key (used by rename): no duplicate check.
    fn enroll_as(&self, name: &str, templates: &[NewTemplate]) -> Result<usize> {
        let s = self.faces_schema()?;
        let ts = now();
        for chunk in templates.chunks(2000) {
            let mut emb = Vec::new();
            for t in chunk {
                emb.extend_from_slice(&t.embedding);
            }
            let cols = vec![
                FieldColumn::new(
                    s.get_field("key").unwrap(),
                    chunk.iter().map(|t| template_key(&t.photo_sha256, &t.face_box, None)).collect::<Vec<_>>(),
                ),
                FieldColumn::new(s.get_field("name").unwrap(), vec![name.to_string(); chunk.len()]),
                FieldColumn::new(s.get_field("photo").unwrap(), chunk.iter().map(|t| t.photo_sha256.clone()).collect::<Vec<_>>()),
                FieldColumn::new(
                    s.get_field("fbox").unwrap(),
                    chunk.iter().map(|t| serde_json::to_string(&t.face_box).unwrap()).collect::<Vec<_>>(),
                ),
                FieldColumn::new(
                    s.get_field("source").unwrap(),
                    chunk.iter().map(|t| t.source.clone().unwrap_or_default()).collect::<Vec<_>>(),
                ),
                FieldColumn::new(s.get_field("created").unwrap(), vec![ts; chunk.len()]),
                FieldColumn::new(s.get_field("embedding").unwrap(), emb),
            ];
            self.call(
                |c, (n, cols)| async move { c.upsert(n, cols, None::<milvus::mutate::UpsertOptions>).await },
                (self.faces.clone(), cols),
            )?;
        }
        Ok(templates.len())
    }

    fn delete_subject_meta(&self, name: &str) -> Result<()> {
        let o = DeleteOptions::with_filter(format!("key == {}", lit(&format!("subject:{name}"))));
        self.call(|c, (n, o): (String, DeleteOptions)| async move { c.delete(n, &o).await }, (self.meta.clone(), o))?;
        Ok(())
    }

    /// Sets a subject's metadata (JSON).
    pub fn set_metadata(&self, name: &str, metadata: &str) -> Result<()> {
        let name = visage_gallery::normalize_name(name);
        serde_json::from_str::<serde_json::Value>(metadata).map_err(|e| MilvusError::Invalid(format!("metadata is not JSON: {e}")))?;
        let mut s =
            self.subject_row(&name)?.ok_or_else(|| MilvusError::UnknownSubject { url: self.url.to_string(), name: name.clone() })?;
        s.metadata = Some(metadata.to_string());
        self.put_meta(&format!("subject:{name}"), &serde_json::to_string(&s).unwrap())
    }

    /// Deletes a subject and every template, then compacts so that the vectors are gone from
    /// the stored segments, not only hidden: `erased` is true once a compaction has completed
    /// and the flushed segments hold no more rows than are live.
    pub fn forget(&self, name: &str) -> Result<ForgetOutcome> {
        let name = visage_gallery::normalize_name(name);
        if self.subject_row(&name)?.is_none() {
            return Err(MilvusError::UnknownSubject { url: self.url.to_string(), name });
        }
        let expr = format!("name == {}", lit(&name));
        let n = self.call(
            |c, (f, e, o): (String, String, QueryOptions)| async move { c.count_with_expr(f, &e, &o).await },
            (self.faces.clone(), expr.clone(), self.strong_query()),
        )? as usize;
        let o = DeleteOptions::with_filter(expr);
        self.call(|c, (f, o): (String, DeleteOptions)| async move { c.delete(f, &o).await }, (self.faces.clone(), o))?;
        self.delete_subject_meta(&name)?;
        let erased = self.compact()?;
        Ok(ForgetOutcome { templates: n, erased })
    }

    /// Deletes one face of `name` (its id as [`Self::faces`] lists it), then compacts as
    /// [`Self::forget`] does; the person stays enrolled. `Ok(None)` when `name` has no face of
    /// that id (another person's face included); an unknown name is an error.
    pub fn forget_face(&self, name: &str, face_id: i64) -> Result<Option<ForgetOutcome>> {
        let name = visage_gallery::normalize_name(name);
        if self.subject_row(&name)?.is_none() {
            return Err(MilvusError::UnknownSubject { url: self.url.to_string(), name });
        }
        if !(0..1i64 << 60).contains(&face_id) {
            return Ok(None);
        }
        let expr = format!("name == {} and key like {}", lit(&name), lit(&format!("{face_id:015x}%")));
        let keys = strings(&self.query(&self.faces, expr, &["key"], 64)?, "key");
        if keys.is_empty() {
            return Ok(None);
        }
        let list: Vec<String> = keys.iter().map(|k| lit(k)).collect();
        let o = DeleteOptions::with_filter(format!("key in [{}]", list.join(",")));
        self.call(|c, (f, o): (String, DeleteOptions)| async move { c.delete(f, &o).await }, (self.faces.clone(), o))?;
        let erased = self.compact()?;
        Ok(Some(ForgetOutcome { templates: keys.len(), erased }))
    }

    /// Flushes and compacts the faces collection, waiting (at most 120 s) for the compaction;
    /// true when it completed and the flushed segments hold only live rows.
    pub fn compact(&self) -> Result<bool> {
        self.call(|c, f| async move { c.flush(f).await }, self.faces.clone())?;
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            // Flush is asynchronous: compaction only sees segments once they are flushed.
            while !self.all_flushed()? {
                if Instant::now() > deadline {
                    return Ok(false);
                }
                std::thread::sleep(Duration::from_millis(300));
            }
            let info = self.call(|c, f| async move { c.manual_compaction(f, None).await }, self.faces.clone())?;
            loop {
                let st = self.call(|c, id| async move { c.get_compaction_state(id).await }, info.id)?;
                if st.state == milvus::proto::common::CompactionState::Completed {
                    break;
                }
                if Instant::now() > deadline {
                    return Ok(false);
                }
                std::thread::sleep(Duration::from_millis(300));
            }
            let live = self.template_count()?;
            if self.all_flushed()? && self.stored_rows()? <= live {
                return Ok(true);
            }
            if Instant::now() > deadline {
                return Ok(false);
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    fn all_flushed(&self) -> Result<bool> {
        let segs = self.call(|c, f| async move { c.list_persistent_segments(f).await }, self.faces.clone())?;
        Ok(segs.iter().all(|s| s.state == milvus::proto::common::SegmentState::Flushed))
    }

    /// Rows in the faces collection's flushed segments, deleted ones included until compaction.
    pub fn stored_rows(&self) -> Result<usize> {
        let segs = self.call(|c, f| async move { c.list_persistent_segments(f).await }, self.faces.clone())?;
        if std::env::var("VISAGE_MILVUS_DEBUG").is_ok() {
            for s in &segs {
                eprintln!("segment {} rows {} state {:?} level {:?}", s.segment_id, s.num_rows, s.state, s.level);
            }
        }
        Ok(segs
            .iter()
            .filter(|s| matches!(s.state, milvus::proto::common::SegmentState::Flushed | milvus::proto::common::SegmentState::Flushing))
            .map(|s| s.num_rows.max(0) as usize)
            .sum())
    }

    fn to_distance(&self, score: f32) -> f32 {
        match self.contract.metric {
            Metric::L2 => score.max(0.0).sqrt(),
            Metric::Cosine => 1.0 - score,
            Metric::Chi2 => score,
        }
    }

    fn search_raw(&self, probe: &[f32], limit: usize, filter: Option<String>, ef: usize) -> Result<Vec<(String, f32)>> {
        self.check_dim(probe)?;
        let limit = limit.clamp(1, MAX_WINDOW);
        let cosine = self.contract.metric == Metric::Cosine;
        let level = self.search_consistency.level();
        let make = move |filter: &Option<String>| {
            let mut opts = SearchOptions::new()
                .limit(limit)
                .output_fields(vec!["name".to_string()])
                .add_param("anns_field", "embedding")
                .add_param("metric_type", if cosine { "COSINE" } else { "L2" })
                .add_param("ef", ef.max(limit).to_string())
                .consistency_level(level as i32);
            if let Some(f) = filter {
                opts = opts.filter(f.clone());
            }
            opts
        };
        let probe = probe.to_vec();
        let coll = self.faces.clone();
        let res = Self::retrying(&self.rt, &self.url, &self.retry, || {
            let (c, o, p, coll) = (self.client.clone(), make(&filter), probe.clone(), coll.clone());
            async move {
                let r = c.search(coll, vec![Value::from(p)], Some(o)).await?;
                let mut out = Vec::new();
                for sr in r {
                    let names = strings(&sr.field, "name");
                    out.extend(names.into_iter().zip(sr.score.iter().copied()));
                }
                Ok(out)
            }
        })?;
        Ok(res.into_iter().map(|(n, s)| (n, self.to_distance(s))).collect())
    }

    /// The `k` nearest subjects, each at the distance of its nearest template.
    pub fn search(&self, probe: &[f32], k: usize) -> Result<Vec<Match>> {
        self.search_with(probe, k, 0)
    }

    /// [`Self::search`] with the HNSW search breadth `ef` (0: the default, 4x the templates asked for, at least 64).
    pub fn search_with(&self, probe: &[f32], k: usize, ef: usize) -> Result<Vec<Match>> {
        if k == 0 {
            return Ok(Vec::new());
        }
        // Enough templates that k distinct subjects are among them (subjects rarely hold more
        // than 8 templates near one probe).
        let want = (k * 8).clamp(16, MAX_WINDOW);
        let ef = if ef == 0 { (want * 4).max(64) } else { ef };
        let mut best: HashMap<String, f32> = HashMap::new();
        for (n, d) in self.search_raw(probe, want, None, ef)? {
            let e = best.entry(n).or_insert(f32::INFINITY);
            if d < *e {
                *e = d;
            }
        }
        let mut v: Vec<Match> = best.into_iter().map(|(name, distance)| Match { name, distance }).collect();
        v.sort_by(|a, b| a.distance.total_cmp(&b.distance).then_with(|| a.name.cmp(&b.name)));
        v.truncate(k);
        Ok(v)
    }

    /// The distance from `probe` to `name`'s nearest template (verify).
    pub fn distance_to(&self, name: &str, probe: &[f32]) -> Result<f32> {
        let name = visage_gallery::normalize_name(name);
        let hits = self.search_raw(probe, 1, Some(format!("name == {}", lit(&name))), 64)?;
        hits.first().map(|h| h.1).ok_or_else(|| MilvusError::UnknownSubject { url: self.url.to_string(), name })
    }

    /// Identify with the decision rule: the nearest subject if its distance is below
    /// `threshold` (the gallery's when `None`), else unknown (`None`); with the top-k list.
    pub fn identify(&self, probe: &[f32], k: usize, threshold: Option<f64>) -> Result<(Option<Match>, Vec<Match>, f64)> {
        let t = match threshold {
            Some(t) => t,
            None => self.threshold()?,
        };
        let top = self.search(probe, k.max(1))?;
        let m = top.first().filter(|m| (m.distance as f64) < t).cloned();
        Ok((m, top, t))
    }

    /// Drops the gallery (both collections). For tests and benchmarks.
    pub fn drop_gallery(self) -> Result<()> {
        for n in [self.faces.clone(), self.meta.clone()] {
            self.call(|c, n| async move { c.drop_collection(n).await }, n)?;
        }
        Ok(())
    }
}

fn append(a: &mut ValueVec, b: ValueVec) {
    match (a, b) {
        (ValueVec::String(x), ValueVec::String(y)) => x.extend(y),
        (ValueVec::Long(x), ValueVec::Long(y)) => x.extend(y),
        (ValueVec::Float(x), ValueVec::Float(y)) => x.extend(y),
        (ValueVec::Int(x), ValueVec::Int(y)) => x.extend(y),
        (ValueVec::Double(x), ValueVec::Double(y)) => x.extend(y),
        (ValueVec::Bool(x), ValueVec::Bool(y)) => x.extend(y),
        _ => {}
    }
}

/// A connection to a Milvus server as a whole, to list the visage galleries it holds.
pub struct MilvusServer {
    rt: Rt,
    client: Client,
    url: MilvusUrl,
    retry: RetryPolicy,
}

impl MilvusServer {
    /// Connects to `host:port` (the proxy's gRPC port).
    pub fn connect(host: &str, port: u16, retry: RetryPolicy) -> Result<Self> {
        let url = MilvusUrl { host: host.to_string(), port, name: String::new() };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| MilvusError::Invalid(format!("cannot start a runtime: {e}")))?;
        let endpoint = format!("http://{host}:{port}");
        let client = MilvusGallery::retrying(&rt, &url, &retry, || {
            let endpoint = endpoint.clone();
            async move { Client::with_timeout(endpoint, retry.call_timeout, None, None).await }
        })?;
        Ok(Self { rt: Rt(Some(rt)), client, url, retry })
    }

    /// The names of the visage galleries on the server (`NAME` of each `milvus://HOST:PORT/NAME`),
    /// sorted.
    pub fn gallery_names(&self) -> Result<Vec<String>> {
        let all = MilvusGallery::retrying(&self.rt, &self.url, &self.retry, || {
            let c = self.client.clone();
            async move { c.list_collections().await }
        })?;
        let mut names: Vec<String> = all
            .into_iter()
            .filter_map(|c| c.strip_prefix("visage_").and_then(|r| r.strip_suffix("_faces")).map(String::from))
            .filter(|n| !n.is_empty())
            .collect();
        names.sort();
        Ok(names)
    }
}

/// What a copy between galleries did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopyReport {
    /// Subjects in the source.
    pub subjects: usize,
    /// Templates in the source.
    pub templates: usize,
    /// Templates added to the destination (the rest were there already).
    pub added: usize,
}

/// Copies an embedded (SQLite) gallery into Milvus: every subject with its metadata and
/// templates, and the threshold; counts checked at the end. Safe to rerun (idempotent).
pub fn import_sqlite(src: &visage_gallery::Gallery, dst: &MilvusGallery) -> Result<CopyReport> {
    let sc = src.contract();
    if sc.model != dst.contract.model || sc.dim != dst.contract.dim || sc.metric != dst.contract.metric {
        return Err(MilvusError::Contract { url: dst.url.to_string(), want: dst.contract.to_string(), got: sc.to_string() });
    }
    let g = |e: visage_gallery::GalleryError| MilvusError::Invalid(e.to_string());
    let subjects = src.subjects().map_err(g)?;
    let mut added = 0;
    let mut total = 0;
    for s in &subjects {
        let emb = src.templates_of(&s.name).map_err(g)?;
        let faces = src.faces(&s.name).map_err(g)?;
        let ts: Vec<NewTemplate> = faces
            .iter()
            .zip(emb)
            .map(|(f, e)| NewTemplate {
                embedding: e,
                photo_sha256: f.photo_sha256.clone(),
                face_box: f.face_box,
                source: f.source.clone(),
            })
            .collect();
        total += ts.len();
        // The same face under two names in the source is kept as it is there.
        let out = match dst.enroll(&s.name, s.metadata.as_deref(), &ts, false) {
            Err(MilvusError::Invalid(m)) if m.contains("already enrolled as") => dst.enroll(&s.name, s.metadata.as_deref(), &ts, true)?,
            r => r?,
        };
        added += out.added;
    }
    dst.set_threshold(src.threshold().map_err(g)?)?;
    check_counts(&subjects, &dst.subjects()?, dst.url.to_string())?;
    Ok(CopyReport { subjects: subjects.len(), templates: total, added })
}

/// Copies a Milvus gallery into an embedded one (created by `opts` if missing); counts checked.
pub fn export_sqlite(src: &MilvusGallery, path: &std::path::Path) -> Result<CopyReport> {
    let c = src.contract.clone();
    let g = |e: visage_gallery::GalleryError| MilvusError::Invalid(e.to_string());
    let th = src.threshold()? as f32;
    let thresholds = Thresholds { l2: th, cosine: th, chi2: th };
    let dst = visage_gallery::OpenOptions::new(&c.model, c.dim)
        .thresholds(thresholds)
        .metric(Some(c.metric))
        .create(true)
        .open(path)
        .map_err(g)?;
    dst.set_threshold(th as f64).map_err(g)?;
    let subjects = src.subjects()?;
    let mut by_name: BTreeMap<String, Vec<NewTemplate>> = BTreeMap::new();
    let mut total = 0;
    for (t, b, s) in src.templates_full()? {
        total += 1;
        by_name.entry(t.name).or_default().push(NewTemplate {
            embedding: t.embedding,
            photo_sha256: t.photo_sha256,
            face_box: b,
            source: s,
        });
    }
    let mut added = 0;
    for s in &subjects {
        let ts = by_name.remove(&s.name).unwrap_or_default();
        let out =
            dst.enroll_with(&s.name, s.metadata.as_deref(), &ts, visage_gallery::EnrollOptions { allow_duplicate: true }).map_err(g)?;
        added += out.added;
    }
    check_counts(&subjects, &dst.subjects().map_err(g)?, path.display().to_string())?;
    Ok(CopyReport { subjects: subjects.len(), templates: total, added })
}

fn check_counts(src: &[SubjectInfo], dst: &[SubjectInfo], where_: String) -> Result<()> {
    let want: BTreeMap<&str, usize> = src.iter().map(|s| (s.name.as_str(), s.templates)).collect();
    let got: BTreeMap<&str, usize> = dst.iter().map(|s| (s.name.as_str(), s.templates)).collect();
    for (n, c) in &want {
        if got.get(n) != Some(c) {
            return Err(MilvusError::Invalid(format!(
                "copy to {where_} incomplete: {n:?} has {} template(s) there, {c} in the source",
                got.get(n).copied().unwrap_or(0)
            )));
        }
    }
    Ok(())
}

/// Deterministic synthetic templates for tests and tools (not faces: 128 numbers from a seed).
pub mod synthetic {
    use super::*;

    /// The model id synthetic galleries are bound to.
    pub const MODEL: &str = "synthetic-128";
    /// Their dimension.
    pub const DIM: usize = 128;

    /// Options for a synthetic gallery (L2, threshold 0.6).
    pub fn options() -> MilvusOptions {
        MilvusOptions::new(MODEL, DIM).thresholds(Thresholds { l2: 0.6, cosine: 0.093, chi2: 2.86 })
    }

    fn rng(mut x: u64) -> impl FnMut() -> f32 {
        move || {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            (((x.wrapping_mul(0x2545F4914F6CDD1D) >> 11) as f64 / (1u64 << 53) as f64) - 0.5) as f32
        }
    }

    /// Subject `s`'s centre: far (about 1.2) from every other subject's.
    pub fn center(prefix: &str, s: usize, seed: u64) -> Vec<f32> {
        let h = Sha256::digest(format!("{prefix}|{s}|{seed}").as_bytes());
        let mut r = rng(u64::from_le_bytes(h[..8].try_into().unwrap()) | 1);
        (0..DIM).map(|_| r() * 0.3).collect()
    }

    /// Subject `s`'s `per` templates: its centre plus small noise, each a distinct photo.
    pub fn templates(prefix: &str, s: usize, per: usize, seed: u64) -> Vec<NewTemplate> {
        let c = center(prefix, s, seed);
        (0..per)
            .map(|i| {
                let h = Sha256::digest(format!("{prefix}|{s}|{seed}|{i}").as_bytes());
                let mut r = rng(u64::from_le_bytes(h[..8].try_into().unwrap()) | 1);
                NewTemplate {
                    embedding: c.iter().map(|x| x + r() * 0.02).collect(),
                    photo_sha256: h.iter().map(|b| format!("{b:02x}")).collect(),
                    face_box: [i as i64, 0, i as i64 + 99, 99],
                    source: Some(format!("synthetic/{prefix}{s}/{i}")),
                }
            })
            .collect()
    }
}
