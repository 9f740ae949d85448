//! Options shared by every command, and loading the pipeline from them.

use anyhow::{Context, Result};
use clap::Args;
use std::path::PathBuf;
use visage::{ImageLimits, ModelStore, Visage};

/// The per-user data directory (the parent of the default model folder).
fn dirs_data() -> Option<PathBuf> {
    ModelStore::default_dir().and_then(|m| m.parent().and_then(|v| v.parent()).map(PathBuf::from))
}

/// Options of every command (given before or after the command's name).
#[derive(Args, Debug, Clone)]
pub struct TopOpts {
    /// Model directory [default: $XDG_DATA_HOME/visage/models].
    #[arg(long, global = true, env = "VISAGE_MODELS", value_name = "DIR")]
    pub models: Option<PathBuf>,
    /// Embed with a model trained by `visage train embedder` or `visage train finetune` (a
    /// .safetensors file) instead of dlib's ResNet; galleries remember which model made their
    /// templates and refuse others.
    #[arg(long, global = true, env = "VISAGE_MODEL", value_name = "FILE")]
    pub model: Option<PathBuf>,
    /// Worker threads [default: all cores].
    #[arg(long, global = true, env = "VISAGE_THREADS", value_name = "N", value_parser = crate::args::threads)]
    pub threads: Option<usize>,
    /// Quiet: no progress bars and no warnings (errors are still printed).
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// More log output on stderr (-v, -vv); VISAGE_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// The gallery file, for the commands that use one (also accepted after the command).
    #[arg(long = "gallery", id = "top_gallery", hide = true, value_name = "FILE")]
    pub gallery: Option<PathBuf>,
}

/// The option of the commands that use the gallery.
#[derive(Args, Debug, Clone, Default)]
pub struct GalleryOpt {
    /// The gallery file [default: $XDG_DATA_HOME/visage/gallery.db], or a gallery in Milvus,
    /// milvus://HOST:PORT/NAME (a build with `--features milvus`).
    #[arg(long, global = true, env = "VISAGE_GALLERY", value_name = "FILE|URL")]
    pub gallery: Option<PathBuf>,
}

/// Options of the commands that read photos.
#[derive(Args, Debug, Clone)]
pub struct PhotoOpts {
    /// Refuse photos with more pixels than this: checked from the header before decoding, and
    /// again on the pixels the detector processes after upsampling (4x per step).
    #[arg(long, global = true, env = "VISAGE_MAX_PIXELS", default_value_t = ImageLimits::DEFAULT.max_pixels)]
    pub max_pixels: u64,
    /// Times a photo is doubled before detection: 0 finds faces from ~80 px, 1 from ~40 px
    /// (face_recognition's default), 2 from ~20 px (slower); at most 8.
    #[arg(long, global = true, default_value_t = 1, value_name = "N",
          value_parser = clap::value_parser!(u32).range(0..=visage::HogDetector::MAX_UPSAMPLE as i64))]
    pub upsample: u32,
    /// Face detector: hog (dlib's HOG: fast, frontal faces), cnn (dlib's CNN, face_recognition's
    /// model="cnn": profiles, small and rotated faces; needs `visage models fetch --all`), or
    /// auto (HOG, and the CNN on photos where HOG finds no face).
    #[arg(long, global = true, default_value = "hog", value_name = "hog|cnn|auto")]
    pub detector: visage::DetectorChoice,
}

/// What a command runs with: the options of every command, and those of its own kind (photo
/// options, the gallery) where it has them.
#[derive(Debug, Clone)]
pub struct GlobalOpts {
    /// Model directory.
    pub models: Option<PathBuf>,
    /// A trained embedder to use instead of dlib's.
    pub model: Option<PathBuf>,
    /// The gallery file.
    pub gallery: Option<PathBuf>,
    /// Pixel limit.
    pub max_pixels: u64,
    /// Detector upsampling.
    pub upsample: u32,
    /// The face detector.
    pub detector: visage::DetectorChoice,
    /// Worker threads.
    pub threads: Option<usize>,
    /// No progress bars or warnings.
    pub quiet: bool,
    /// Log verbosity.
    pub verbose: u8,
}

impl TopOpts {
    /// The options a command runs with, given its photo options and gallery option (if it has
    /// them); a gallery given after the command wins over one given before it.
    pub fn with(&self, photo: Option<&PhotoOpts>, gallery: Option<&GalleryOpt>) -> GlobalOpts {
        GlobalOpts {
            models: self.models.clone(),
            model: self.model.clone(),
            gallery: gallery.and_then(|g| g.gallery.clone()).or_else(|| self.gallery.clone()),
            max_pixels: photo.map_or(ImageLimits::DEFAULT.max_pixels, |p| p.max_pixels),
            upsample: photo.map_or(1, |p| p.upsample),
            detector: photo.map_or(visage::DetectorChoice::Hog, |p| p.detector),
            threads: self.threads,
            quiet: self.quiet,
            verbose: self.verbose,
        }
    }
}

impl GlobalOpts {
    /// Sets up `tracing` on stderr.
    pub fn init_logging(&self) {
        use std::io::IsTerminal;
        let level = match (self.quiet, self.verbose) {
            (true, _) => "error",
            (false, 0) => "warn",
            (false, 1) => "info",
            (false, _) => "debug",
        };
        let filter =
            tracing_subscriber::EnvFilter::try_from_env("VISAGE_LOG").unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
        // Colour only on a terminal: a redirected stderr gets plain text, no escape codes.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
            .with_target(false)
            .without_time()
            .try_init();
    }

    /// Sizes the global thread pool.
    pub fn init_threads(&self) -> Result<()> {
        if let Some(n) = self.threads {
            rayon::ThreadPoolBuilder::new().num_threads(n).build_global().context("starting the thread pool")?;
        }
        Ok(())
    }

    /// The model store chosen by --models / VISAGE_MODELS / the default.
    pub fn store(&self) -> Result<ModelStore> {
        Ok(ModelStore::resolve(self.models.as_deref())?)
    }

    /// The gallery file chosen by --gallery / VISAGE_GALLERY / the default; a folder there is
    /// refused (SQLite would call it a disk I/O error, or a read-only file).
    pub fn gallery_path(&self) -> Result<PathBuf> {
        let path = match &self.gallery {
            Some(p) => p.clone(),
            None => dirs_data().context("no data directory: pass --gallery FILE")?.join("visage").join("gallery.db"),
        };
        if path.is_dir() {
            anyhow::bail!(
                "{}: is a folder, not a gallery file (--gallery names the file, e.g. {})",
                path.display(),
                path.join("gallery.db").display()
            );
        }
        Ok(path)
    }

    /// The gallery file of a command that only reads it: it must exist.
    pub fn existing_gallery_path(&self) -> Result<PathBuf> {
        let path = self.gallery_path()?;
        if !path.exists() {
            anyhow::bail!("{}: no such gallery (enroll someone first to create it, or pass --gallery FILE)", path.display());
        }
        Ok(path)
    }

    /// Image limits from the options.
    pub fn limits(&self) -> ImageLimits {
        ImageLimits { max_pixels: self.max_pixels, ..ImageLimits::DEFAULT }
    }

    /// Loads the models and builds the pipeline (5-point landmarks).
    pub fn visage(&self) -> Result<Visage> {
        self.visage_with(visage::LandmarkScheme::Dlib5)
    }

    /// Loads the models and builds the pipeline aligning on `landmarks`.
    pub fn visage_with(&self, landmarks: visage::LandmarkScheme) -> Result<Visage> {
        let store = self.store()?;
        let t = std::time::Instant::now();
        let config = visage::Config {
            upsample: self.upsample,
            limits: self.limits(),
            landmarks,
            detector: self.detector,
            model: self.model.clone(),
            ..visage::Config::from_env()
        };
        let v = Visage::from_config(&store, &config)?;
        tracing::info!("models loaded from {} in {:.0} ms", store.dir().display(), t.elapsed().as_secs_f64() * 1e3);
        Ok(v)
    }
}
