//! Options shared by every command, and loading the pipeline from them.

use anyhow::{Context, Result};
use clap::Args;
use std::path::PathBuf;
use visage::{ImageLimits, ModelStore, Visage};

/// The per-user data directory (the parent of the default model folder).
fn dirs_data() -> Option<PathBuf> {
    ModelStore::default_dir().and_then(|m| m.parent().and_then(|v| v.parent()).map(PathBuf::from))
}

/// Options every command accepts.
#[derive(Args, Debug, Clone)]
pub struct GlobalOpts {
    /// Model directory [default: $XDG_DATA_HOME/visage/models].
    #[arg(long, global = true, env = "VISAGE_MODELS", value_name = "DIR")]
    pub models: Option<PathBuf>,
    /// The gallery file [default: $XDG_DATA_HOME/visage/gallery.db].
    #[arg(long, global = true, env = "VISAGE_GALLERY", value_name = "FILE")]
    pub gallery: Option<PathBuf>,
    /// Refuse photos with more pixels than this (checked before decoding).
    #[arg(long, global = true, env = "VISAGE_MAX_PIXELS", default_value_t = ImageLimits::DEFAULT.max_pixels)]
    pub max_pixels: u64,
    /// Times a photo is doubled before detection: 0 finds faces from ~80 px, 1 from ~40 px
    /// (face_recognition's default), 2 from ~20 px (slower).
    #[arg(long, global = true, default_value_t = 1, value_name = "N")]
    pub upsample: u32,
    /// Worker threads [default: all cores].
    #[arg(long, global = true, env = "VISAGE_THREADS", value_name = "N")]
    pub threads: Option<usize>,
    /// No progress bars.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// More log output on stderr (-v, -vv); VISAGE_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

impl GlobalOpts {
    /// Sets up `tracing` on stderr.
    pub fn init_logging(&self) {
        let level = match self.verbose {
            0 => "warn",
            1 => "info",
            _ => "debug",
        };
        let filter =
            tracing_subscriber::EnvFilter::try_from_env("VISAGE_LOG").unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
        let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false).try_init();
    }

    /// Sizes the global thread pool.
    pub fn init_threads(&self) -> Result<()> {
        if let Some(n) = self.threads {
            anyhow::ensure!(n > 0, "--threads must be at least 1");
            rayon::ThreadPoolBuilder::new().num_threads(n).build_global().context("starting the thread pool")?;
        }
        Ok(())
    }

    /// The model store chosen by --models / VISAGE_MODELS / the default.
    pub fn store(&self) -> Result<ModelStore> {
        Ok(ModelStore::resolve(self.models.as_deref())?)
    }

    /// The gallery file chosen by --gallery / VISAGE_GALLERY / the default.
    pub fn gallery_path(&self) -> Result<PathBuf> {
        match &self.gallery {
            Some(p) => Ok(p.clone()),
            None => Ok(dirs_data().context("no data directory: pass --gallery FILE")?.join("visage").join("gallery.db")),
        }
    }

    /// Image limits from the options.
    pub fn limits(&self) -> ImageLimits {
        ImageLimits { max_pixels: self.max_pixels, ..ImageLimits::DEFAULT }
    }

    /// Loads the models and builds the pipeline.
    pub fn visage(&self) -> Result<Visage> {
        let store = self.store()?;
        let t = std::time::Instant::now();
        let v = Visage::load(&store)?.with_upsample(self.upsample).with_limits(self.limits());
        tracing::info!("models loaded from {} in {:.0} ms", store.dir().display(), t.elapsed().as_secs_f64() * 1e3);
        Ok(v)
    }
}
