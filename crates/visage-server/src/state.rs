//! What every request shares: the loaded pipeline and liveness model, the key store, the open
//! galleries of every tenant, the worker pool and the metrics.

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
use visage_gallery::{Gallery, OpenOptions};
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
    galleries: Mutex<HashMap<(String, String), Arc<Gallery>>>,
}

impl AppState {
    /// The state for `config`, with the pipeline and liveness model loaded.
    pub fn new(config: ServerConfig, visage: Visage, liveness: Box<dyn LivenessCheck>) -> Result<Self, String> {
        std::fs::create_dir_all(config.data.join("tenants")).map_err(|e| format!("{}: cannot create: {e}", config.data.display()))?;
        let keys = KeyStore::open(&config.data).map_err(|e| e.to_string())?;
        Ok(AppState {
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

    /// The tenant's gallery `name` (opened once, then shared); 404 when it has none by that name.
    pub fn gallery(&self, tenant: &str, name: &str) -> Result<Arc<Gallery>, ApiError> {
        let key = (tenant.to_string(), name.to_string());
        if let Some(g) = self.galleries.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
            return Ok(g.clone());
        }
        let path = self.gallery_path(tenant, name)?;
        if !path.is_file() {
            return Err(ApiError::not_found("gallery_not_found", format!("no gallery {name:?}")));
        }
        let g = Arc::new(OpenOptions::for_model(self.visage.descriptor()).open(&path)?);
        g.check_model(self.visage.descriptor())?;
        let mut map = self.galleries.lock().unwrap_or_else(|p| p.into_inner());
        Ok(map.entry(key).or_insert(g).clone())
    }

    /// Creates the tenant's gallery `name` with `metric`; 409 when it exists.
    pub fn create_gallery(&self, tenant: &str, name: &str, metric: Metric) -> Result<Arc<Gallery>, ApiError> {
        let path = self.gallery_path(tenant, name)?;
        std::fs::create_dir_all(self.tenant_dir(tenant)).map_err(ApiError::internal)?;
        if path.exists() {
            return Err(ApiError::new(StatusCode::CONFLICT, "gallery_exists", format!("gallery {name:?} exists")));
        }
        let g = Arc::new(OpenOptions::for_model(self.visage.descriptor()).create(true).metric(Some(metric)).open(&path)?);
        self.galleries.lock().unwrap_or_else(|p| p.into_inner()).insert((tenant.into(), name.into()), g.clone());
        Ok(g)
    }

    /// Deletes the tenant's gallery `name` and its files.
    pub fn delete_gallery(&self, tenant: &str, name: &str) -> Result<(), ApiError> {
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

    /// The names of the tenant's galleries, sorted.
    pub fn gallery_names(&self, tenant: &str) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.tenant_dir(tenant))
            .map(|d| {
                d.flatten()
                    .filter_map(|e| e.file_name().to_str().and_then(|n| n.strip_suffix(".db")).map(String::from))
                    .filter(|n| valid_name(n))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    /// Every open gallery with its tenant and name (for the metrics).
    pub fn open_galleries(&self) -> Vec<((String, String), Arc<Gallery>)> {
        self.galleries.lock().unwrap_or_else(|p| p.into_inner()).iter().map(|(k, g)| (k.clone(), g.clone())).collect()
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.config.data
    }
}
