//! What every request shares: the loaded pipeline and liveness model, the key store, the open
//! galleries of every tenant, the worker pool and the metrics.
//!
//! A tenant's galleries are SQLite files in `DIR/tenants/TENANT/`, or, with a Milvus server
//! configured ([`MilvusConfig`], the `milvus` feature), Milvus galleries named after the tenant
//! and the gallery ([`milvus_gallery_name`]); the keys and the audit log stay in `DIR/keys.db`.

use crate::backend::TenantGallery;
use crate::keys::{valid_name, KeyStore};
use crate::metrics::Metrics;
use crate::pool::Pool;
use crate::problem::ApiError;
use axum::http::StatusCode;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use visage::Visage;
use visage_core::Metric;
use visage_gallery::OpenOptions;
use visage_liveness::LivenessCheck;

/// The server's configuration.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The data directory: `keys.db` and `tenants/<tenant>/<gallery>.db`.
    pub data: PathBuf,
    /// Concurrent photo jobs.
    pub workers: usize,
    /// Jobs that may wait for a worker before requests get 503.
    pub queue: usize,
    /// Largest request body in bytes.
    pub max_body: usize,
    /// How long a client may take to send its request body (then 408).
    pub body_timeout: std::time::Duration,
    /// Where the tenants' galleries live: `None` for SQLite files under `data`.
    pub milvus: Option<MilvusConfig>,
}

/// The tenants' galleries in Milvus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MilvusConfig {
    /// The server's host.
    pub host: String,
    /// Its gRPC port (19530 by default).
    pub port: u16,
    /// Set apart this deployment's galleries from others' on the same server (empty: none).
    pub prefix: String,
}

impl std::str::FromStr for MilvusConfig {
    type Err = String;
    /// `HOST:PORT` or `HOST` (port 19530), optionally written `milvus://HOST:PORT`.
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not a Milvus server: expected HOST:PORT (the proxy's gRPC port, 19530 by default)");
        let rest = s.strip_prefix("milvus://").unwrap_or(s).trim_end_matches('/');
        if rest.is_empty() || rest.contains('/') {
            return Err(bad());
        }
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) if !h.is_empty() && !h.ends_with(':') => (h, p.parse::<u16>().map_err(|_| bad())?),
            _ if !rest.contains(':') => (rest, 19530),
            _ => return Err(bad()),
        };
        Ok(MilvusConfig { host: host.to_string(), port, prefix: String::new() })
    }
}

/// Milvus names may hold letters, digits and underscores only: `_` is written `_u` and `-`
/// `_h`, so that `_t` and `_g` can separate the parts and no two (prefix, tenant, gallery)
/// share a name.
fn milvus_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 4);
    for c in s.chars() {
        match c {
            '_' => o.push_str("_u"),
            '-' => o.push_str("_h"),
            c => o.push(c),
        }
    }
    o
}

#[cfg_attr(not(feature = "milvus"), allow(dead_code))]
fn milvus_unescape(s: &str) -> Option<String> {
    let mut o = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        match c {
            '_' => match it.next()? {
                'u' => o.push('_'),
                'h' => o.push('-'),
                _ => return None,
            },
            c if c.is_ascii_alphanumeric() => o.push(c),
            _ => return None,
        }
    }
    Some(o)
}

fn milvus_tenant_head(prefix: &str, tenant: &str) -> String {
    let p = if prefix.is_empty() { String::new() } else { format!("p{}_", milvus_escape(prefix)) };
    format!("{p}t{}_g", milvus_escape(tenant))
}

/// The Milvus gallery name (`NAME` of `milvus://HOST:PORT/NAME`, its collections
/// `visage_NAME_faces` and `visage_NAME_meta`) of `tenant`'s gallery `gallery`:
/// `t<tenant>_g<gallery>` (`p<prefix>_t<tenant>_g<gallery>` with a prefix), `_` written `_u`
/// and `-` `_h`. Tenant `acme`'s gallery `front-door` is `tacme_gfront_hdoor`.
pub fn milvus_gallery_name(prefix: &str, tenant: &str, gallery: &str) -> String {
    format!("{}{}", milvus_tenant_head(prefix, tenant), milvus_escape(gallery))
}

/// The longest Milvus gallery name (visage-gallery-milvus's limit).
#[cfg_attr(not(feature = "milvus"), allow(dead_code))]
const MILVUS_NAME_MAX: usize = 180;

#[cfg(feature = "milvus")]
struct MilvusBackend {
    config: MilvusConfig,
    server: visage_gallery_milvus::MilvusServer,
}

/// The shared state.
pub struct AppState {
    /// The face pipeline.
    pub visage: Visage,
    /// The liveness model.
    pub liveness: Box<dyn LivenessCheck>,
    /// API keys and the audit log.
    pub keys: KeyStore,
    /// The worker pool.
    pub pool: Pool,
    /// Request counters and latencies.
    pub metrics: Metrics,
    /// The configuration.
    pub config: ServerConfig,
    galleries: Mutex<HashMap<(String, String), Arc<TenantGallery>>>,
    #[cfg(feature = "milvus")]
    milvus: Option<MilvusBackend>,
}

impl AppState {
    /// The state for `config`, with the pipeline and liveness model loaded.
    pub fn new(config: ServerConfig, visage: Visage, liveness: Box<dyn LivenessCheck>) -> Result<Self, String> {
        std::fs::create_dir_all(config.data.join("tenants")).map_err(|e| format!("{}: cannot create: {e}", config.data.display()))?;
        let keys = KeyStore::open(&config.data).map_err(|e| e.to_string())?;
        #[cfg(feature = "milvus")]
        let milvus = match &config.milvus {
            None => None,
            Some(m) => {
                if !m.prefix.is_empty() && !valid_name(&m.prefix) {
                    return Err(format!("{:?} is not a Milvus prefix: 1-64 letters, digits, '-' or '_'", m.prefix));
                }
                let server =
                    visage_gallery_milvus::MilvusServer::connect(&m.host, m.port, Default::default()).map_err(|e| e.to_string())?;
                Some(MilvusBackend { config: m.clone(), server })
            }
        };
        #[cfg(not(feature = "milvus"))]
        if let Some(m) = &config.milvus {
            return Err(format!(
                "galleries in Milvus ({}:{}) need a build with the milvus feature: cargo build --release -p visage-cli --features milvus",
                m.host, m.port
            ));
        }
        Ok(AppState {
            #[cfg(feature = "milvus")]
            milvus,
            visage,
            liveness,
            keys,
            pool: Pool::new(config.workers, config.queue),
            metrics: Metrics::default(),
            config,
            galleries: Mutex::new(HashMap::new()),
        })
    }

    fn tenant_dir(&self, tenant: &str) -> PathBuf {
        self.config.data.join("tenants").join(tenant)
    }

    fn gallery_path(&self, tenant: &str, name: &str) -> Result<PathBuf, ApiError> {
        if !valid_name(name) {
            return Err(ApiError::bad_request(format!("{name:?} is not a gallery name: 1-64 letters, digits, '-' or '_'")));
        }
        Ok(self.tenant_dir(tenant).join(format!("{name}.db")))
    }

    /// True when the tenants' galleries live in Milvus (their calls block on the network).
    pub fn uses_milvus(&self) -> bool {
        #[cfg(feature = "milvus")]
        return self.milvus.is_some();
        #[cfg(not(feature = "milvus"))]
        false
    }

    /// The URL of the tenant's gallery `name` in Milvus; 400 for a name Milvus cannot hold.
    #[cfg(feature = "milvus")]
    fn milvus_url(&self, m: &MilvusBackend, tenant: &str, name: &str) -> Result<String, ApiError> {
        if !valid_name(name) {
            return Err(ApiError::bad_request(format!("{name:?} is not a gallery name: 1-64 letters, digits, '-' or '_'")));
        }
        let n = milvus_gallery_name(&m.config.prefix, tenant, name);
        if n.len() > MILVUS_NAME_MAX {
            return Err(ApiError::bad_request(format!(
                "the gallery name {name:?} is too long for Milvus with this tenant (each '-' and '_' counts twice; at most {MILVUS_NAME_MAX} in all)"
            )));
        }
        Ok(format!("milvus://{}:{}/{n}", m.config.host, m.config.port))
    }

    /// The tenant's gallery `name` (opened once, then shared); 404 when it has none by that name.
    /// With Milvus this blocks on the network: call it off the async executor
    /// ([`Self::gallery_async`]).
    pub fn gallery(&self, tenant: &str, name: &str) -> Result<Arc<TenantGallery>, ApiError> {
        let key = (tenant.to_string(), name.to_string());
        let cached = self.galleries.lock().unwrap_or_else(|p| p.into_inner()).get(&key).cloned();
        #[cfg(feature = "milvus")]
        if let Some(m) = &self.milvus {
            if let Some(g) = cached {
                // Another process may have deleted it since: ask (one round trip).
                if let TenantGallery::Milvus(mg) = &*g {
                    if mg.exists()? {
                        return Ok(g);
                    }
                }
                self.galleries.lock().unwrap_or_else(|p| p.into_inner()).remove(&key);
                return Err(ApiError::not_found("gallery_not_found", format!("no gallery {name:?}")));
            }
            let url = self.milvus_url(m, tenant, name)?;
            let g = match visage_gallery_milvus::MilvusOptions::for_model(self.visage.descriptor()).open(&url) {
                Err(visage_gallery_milvus::MilvusError::Missing(_)) => {
                    return Err(ApiError::not_found("gallery_not_found", format!("no gallery {name:?}")))
                }
                r => Arc::new(TenantGallery::Milvus(r?)),
            };
            let mut map = self.galleries.lock().unwrap_or_else(|p| p.into_inner());
            return Ok(map.entry(key).or_insert(g).clone());
        }
        if let Some(g) = cached {
            return Ok(g);
        }
        let path = self.gallery_path(tenant, name)?;
        if !path.is_file() {
            return Err(ApiError::not_found("gallery_not_found", format!("no gallery {name:?}")));
        }
        let g = OpenOptions::for_model(self.visage.descriptor()).open(&path)?;
        g.check_model(self.visage.descriptor())?;
        let g = Arc::new(TenantGallery::Sqlite(g));
        let mut map = self.galleries.lock().unwrap_or_else(|p| p.into_inner());
        Ok(map.entry(key).or_insert(g).clone())
    }

    /// [`Self::gallery`] from async code: a Milvus gallery is looked up on a blocking thread.
    pub async fn gallery_async(self: &Arc<Self>, tenant: &str, name: &str) -> Result<Arc<TenantGallery>, ApiError> {
        if !self.uses_milvus() {
            return self.gallery(tenant, name);
        }
        let (st, tenant, name) = (self.clone(), tenant.to_string(), name.to_string());
        tokio::task::spawn_blocking(move || st.gallery(&tenant, &name)).await.map_err(ApiError::internal)?
    }

    /// Creates the tenant's gallery `name` with `metric`; 409 when it exists.
    pub fn create_gallery(&self, tenant: &str, name: &str, metric: Metric) -> Result<Arc<TenantGallery>, ApiError> {
        #[cfg(feature = "milvus")]
        if let Some(m) = &self.milvus {
            use visage_gallery_milvus::{MilvusError, MilvusOptions};
            let url = self.milvus_url(m, tenant, name)?;
            match MilvusOptions::any_model().open(&url) {
                Ok(_) => return Err(ApiError::new(StatusCode::CONFLICT, "gallery_exists", format!("gallery {name:?} exists"))),
                Err(MilvusError::Missing(_)) => {}
                Err(e) => return Err(e.into()),
            }
            let g = MilvusOptions::for_model(self.visage.descriptor()).create(true).metric(Some(metric)).open(&url)?;
            let g = Arc::new(TenantGallery::Milvus(g));
            self.galleries.lock().unwrap_or_else(|p| p.into_inner()).insert((tenant.into(), name.into()), g.clone());
            return Ok(g);
        }
        let path = self.gallery_path(tenant, name)?;
        std::fs::create_dir_all(self.tenant_dir(tenant)).map_err(ApiError::internal)?;
        if path.exists() {
            return Err(ApiError::new(StatusCode::CONFLICT, "gallery_exists", format!("gallery {name:?} exists")));
        }
        let g = OpenOptions::for_model(self.visage.descriptor()).create(true).metric(Some(metric)).open(&path)?;
        let g = Arc::new(TenantGallery::Sqlite(g));
        self.galleries.lock().unwrap_or_else(|p| p.into_inner()).insert((tenant.into(), name.into()), g.clone());
        Ok(g)
    }

    /// Deletes the tenant's gallery `name` and its files (in Milvus: its two collections).
    pub fn delete_gallery(&self, tenant: &str, name: &str) -> Result<(), ApiError> {
        #[cfg(feature = "milvus")]
        if let Some(m) = &self.milvus {
            use visage_gallery_milvus::{MilvusError, MilvusOptions};
            let url = self.milvus_url(m, tenant, name)?;
            drop(self.galleries.lock().unwrap_or_else(|p| p.into_inner()).remove(&(tenant.into(), name.into())));
            return match MilvusOptions::any_model().open(&url) {
                Err(MilvusError::Missing(_)) => Err(ApiError::not_found("gallery_not_found", format!("no gallery {name:?}"))),
                Err(e) => Err(e.into()),
                Ok(g) => Ok(g.drop_gallery()?),
            };
        }
        let path = self.gallery_path(tenant, name)?;
        let g = self.galleries.lock().unwrap_or_else(|p| p.into_inner()).remove(&(tenant.into(), name.into()));
        drop(g);
        if !path.is_file() {
            return Err(ApiError::not_found("gallery_not_found", format!("no gallery {name:?}")));
        }
        for suffix in ["", "-wal", "-shm", ".index"] {
            let p = PathBuf::from(format!("{}{suffix}", path.display()));
            if p.exists() {
                std::fs::remove_file(&p).map_err(ApiError::internal)?;
            }
        }
        Ok(())
    }

    /// The names of the tenant's galleries, sorted (in Milvus: those on the server, whichever
    /// process created them).
    pub fn gallery_names(&self, tenant: &str) -> Result<Vec<String>, ApiError> {
        #[cfg(feature = "milvus")]
        if let Some(m) = &self.milvus {
            let head = milvus_tenant_head(&m.config.prefix, tenant);
            let mut names: Vec<String> = m
                .server
                .gallery_names()?
                .into_iter()
                .filter_map(|n| n.strip_prefix(&head).and_then(milvus_unescape))
                .filter(|n| valid_name(n))
                .collect();
            names.sort();
            return Ok(names);
        }
        let mut names: Vec<String> = std::fs::read_dir(self.tenant_dir(tenant))
            .map(|d| {
                d.flatten()
                    .filter_map(|e| e.file_name().to_str().and_then(|n| n.strip_suffix(".db")).map(String::from))
                    .filter(|n| valid_name(n))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        Ok(names)
    }

    /// Every open gallery with its tenant and name (for the metrics).
    pub fn open_galleries(&self) -> Vec<((String, String), Arc<TenantGallery>)> {
        self.galleries.lock().unwrap_or_else(|p| p.into_inner()).iter().map(|(k, g)| (k.clone(), g.clone())).collect()
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.config.data
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn milvus_names_are_valid_distinct_and_listed_back() {
        assert_eq!(milvus_gallery_name("", "acme", "front-door"), "tacme_gfront_hdoor");
        assert_eq!(milvus_gallery_name("api-1", "a_b", "c"), "papi_h1_ta_ub_gc");
        let cases =
            [("", "a_b", "c"), ("", "a", "b_c"), ("", "a", "b-c"), ("", "a-b", "c"), ("x", "a", "b"), ("", "xa", "b"), ("", "a_gb", "c")];
        let names: std::collections::HashSet<String> = cases.iter().map(|(p, t, g)| milvus_gallery_name(p, t, g)).collect();
        assert_eq!(names.len(), cases.len(), "{names:?}");
        for (p, t, g) in cases {
            let n = milvus_gallery_name(p, t, g);
            assert!(n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') && !n.starts_with(|c: char| c.is_ascii_digit()), "{n}");
            let head = milvus_tenant_head(p, t);
            assert_eq!(n.strip_prefix(&head).and_then(milvus_unescape).as_deref(), Some(g));
            // Another tenant's head never lists it.
            for (p2, t2, _) in cases {
                if (p2, t2) != (p, t) {
                    assert!(n.strip_prefix(&milvus_tenant_head(p2, t2)).and_then(milvus_unescape).is_none(), "{n} under {p2}/{t2}");
                }
            }
        }
        // Tenant `a` with gallery `b_gc` is not tenant `a_gb`'s `c`, and lists back as `b_gc`.
        assert_ne!(milvus_gallery_name("", "a", "b_gc"), milvus_gallery_name("", "a_gb", "c"));
    }

    #[test]
    fn milvus_addresses_parse() {
        let m: MilvusConfig = "db-host:19531".parse().unwrap();
        assert_eq!((m.host.as_str(), m.port), ("db-host", 19531));
        let m: MilvusConfig = "milvus://10.0.0.5".parse().unwrap();
        assert_eq!((m.host.as_str(), m.port), ("10.0.0.5", 19530));
        for bad in ["", "host:x", ":19530", "milvus://h:1/name", "h:99999"] {
            assert!(bad.parse::<MilvusConfig>().is_err(), "{bad}");
        }
    }
}
