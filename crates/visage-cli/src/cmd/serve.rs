//! `visage serve`: the HTTP API; `visage keys`: its API keys.

use crate::context::GlobalOpts;
use crate::Outcome;
use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use visage_server::{AppState, KeyStore, Scope, ServerConfig};

/// Arguments of `visage serve`.
#[derive(Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0: any free port, printed at start).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Data directory: API keys, the audit log, every tenant's galleries.
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    /// Photo jobs run at once [default: the number of cores].
    #[arg(long)]
    pub workers: Option<usize>,
    /// Photo jobs that may wait for a worker; beyond them requests get 503 with Retry-After.
    #[arg(long, default_value_t = 64)]
    pub queue: usize,
    /// Largest request body in bytes.
    #[arg(long, default_value_t = 20 << 20)]
    pub max_body: usize,
    /// Seconds a client may take to send its request body; slower ones get 408.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub body_timeout: u64,
    /// Keep the tenants' galleries in Milvus at HOST:PORT (the proxy's gRPC port) instead of
    /// SQLite files under --data; keys and the audit log stay in --data. Needs a build with
    /// `--features milvus`.
    #[arg(long, value_name = "HOST:PORT")]
    pub milvus: Option<visage_server::MilvusConfig>,
    /// With --milvus: a name that sets this deployment's galleries apart from others' on the
    /// same server (letters, digits, '-', '_').
    #[arg(long, value_name = "NAME", requires = "milvus")]
    pub milvus_prefix: Option<String>,
    #[command(flatten)]
    pub photo_opts: crate::context::PhotoOpts,
}

/// `visage keys`.
#[derive(Subcommand)]
pub enum KeysCommand {
    /// Create a key for a tenant; it is printed once (only its hash is stored).
    Create {
        /// Data directory of the server.
        #[arg(long, value_name = "DIR")]
        data: PathBuf,
        /// The tenant the key acts for (letters, digits, '-', '_').
        #[arg(long)]
        tenant: String,
        /// recognize (detect, compare, liveness, identify, verify), enroll (and enroll, rename,
        /// forget), admin (and create and delete galleries).
        #[arg(long, value_parser = ["recognize", "enroll", "admin"])]
        scope: String,
        /// A label to recognise the key by.
        #[arg(long, default_value = "")]
        label: String,
    },
    /// List the keys (ids, tenants, scopes; never secrets).
    List {
        /// Data directory of the server.
        #[arg(long, value_name = "DIR")]
        data: PathBuf,
    },
    /// Revoke a key by its id (effective for the next request).
    Revoke {
        /// Data directory of the server.
        #[arg(long, value_name = "DIR")]
        data: PathBuf,
        /// The key's id (`visage keys list`).
        id: String,
    },
}

pub fn serve(g: &GlobalOpts, a: ServeArgs) -> Result<Outcome> {
    let milvus = a.milvus.clone().map(|m| visage_server::MilvusConfig { prefix: a.milvus_prefix.clone().unwrap_or_default(), ..m });
    if let Some(m) = &milvus {
        if !cfg!(feature = "milvus") {
            anyhow::bail!(
                "--milvus {}:{}: this visage was built without Milvus; build it with `cargo build --release -p visage-cli --features milvus` to keep the galleries in Milvus",
                m.host,
                m.port
            );
        }
    }
    let visage = g.visage()?;
    let liveness: Box<dyn visage_liveness::LivenessCheck> = Box::new(visage_liveness::LivenessModel::shipped());
    let workers = a.workers.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get())).max(1);
    let config = ServerConfig {
        data: a.data.clone(),
        workers,
        queue: a.queue,
        max_body: a.max_body,
        body_timeout: std::time::Duration::from_secs(a.body_timeout),
        milvus: milvus.clone(),
    };
    let place = match &milvus {
        None => format!("data {}", a.data.display()),
        Some(m) => format!("keys in {}, galleries in Milvus at {}:{}", a.data.display(), m.host, m.port),
    };
    let state = Arc::new(AppState::new(config, visage, liveness).map_err(anyhow::Error::msg)?);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().context("starting the async runtime")?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(a.listen).await.with_context(|| format!("cannot listen on {}", a.listen))?;
        let addr = listener.local_addr()?;
        println!("visage serve: listening on http://{addr} ({place}, {workers} workers)");
        use std::io::Write;
        let _ = std::io::stdout().flush();
        visage_server::serve(listener, state).await.context("serving")?;
        Ok(Outcome::Ok)
    })
}

pub fn keys(c: KeysCommand) -> Result<Outcome> {
    let open = |d: &PathBuf| -> Result<KeyStore> {
        std::fs::create_dir_all(d).with_context(|| format!("{}: cannot create the data directory", d.display()))?;
        Ok(KeyStore::open(d)?)
    };
    match c {
        KeysCommand::Create { data, tenant, scope, label } => {
            let ks = open(&data)?;
            let (id, key) = ks.create(&tenant, Scope::parse(&scope).expect("clap checked the scope"), &label)?;
            eprintln!("key {id} for tenant {tenant}, scope {scope}: shown once, store it now");
            println!("{key}");
        }
        KeysCommand::List { data } => {
            for k in open(&data)?.list()? {
                println!("{}\t{}\t{}\t{}\t{}", k.id, k.tenant, k.scope.name(), if k.revoked { "revoked" } else { "active" }, k.label);
            }
        }
        KeysCommand::Revoke { data, id } => {
            open(&data)?.revoke(&id)?;
            println!("revoked {id}");
        }
    }
    Ok(Outcome::Ok)
}
