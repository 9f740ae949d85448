//! A training run's checkpoint beside its model file `OUT`, written so that a kill at any
//! moment leaves a complete one: the step's weights (`OUT.ckpt-STEP.safetensors`, a model
//! file) and Adam's state (`OUT.ckpt-STEP.adam`, with the parameter ids it is keyed by) are
//! written first, each through a temporary file and a rename; then `OUT.ckpt.json`, which
//! names the step and those files, is renamed into place; then the previous step's files
//! are removed. `--resume` reads the JSON and continues with the weights and Adam's moment
//! estimates the run had, so a resumed run computes what an uninterrupted one would.
//!
//! Checkpoints written before Adam's state was kept (`OUT.ckpt.safetensors`, no `adam` in
//! the JSON) still resume, with fresh moments.

use anyhow::{Context, Result};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use visage_embed::TrainedModel;
use visage_train::burn::module::Module;
use visage_train::burn::optim::ModuleOptimizer;
use visage_train::optimizer_state::{assign_param_ids, optimizer_bytes, param_ids, restore_optimizer};

/// The checkpoint of the run writing `out`.
pub(crate) struct Checkpoint {
    out: PathBuf,
}

/// What a checkpoint holds.
pub(crate) struct Saved {
    /// Steps done.
    pub step: usize,
    /// The JSON (the step, the files, and what the command stored beside them).
    pub state: Value,
    /// The weights.
    pub model: TrainedModel,
    /// Adam's state and the parameter ids it is keyed by (absent in older checkpoints).
    adam: Option<(Vec<u64>, Vec<u8>)>,
}

/// `bytes` written to `path` through a temporary file and a rename.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("partial");
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
}

impl Checkpoint {
    /// The checkpoint beside `out`.
    pub fn new(out: &Path) -> Self {
        Checkpoint { out: out.to_path_buf() }
    }

    /// `OUT.ckpt.json`.
    pub fn state_path(&self) -> PathBuf {
        self.out.with_extension("ckpt.json")
    }

    /// A file of this checkpoint: `OUT.ckpt-STEP.EXT`, or `OUT.ckpt.EXT` for older ones.
    fn file(&self, step: Option<usize>, ext: &str) -> PathBuf {
        match step {
            Some(s) => self.out.with_extension(format!("ckpt-{s}.{ext}")),
            None => self.out.with_extension(format!("ckpt.{ext}")),
        }
    }

    /// Names written in the JSON are file names beside `OUT`.
    fn beside(&self, name: &str) -> PathBuf {
        self.out.parent().map(|d| d.join(name)).unwrap_or_else(|| PathBuf::from(name))
    }

    /// Writes the checkpoint of `step`: `model` (the weights as a model file), `module`'s
    /// parameter ids and `optim`'s state, and `extra` (fields of the JSON).
    pub fn save<M: Module>(&self, step: usize, model: &TrainedModel, module: &M, optim: &ModuleOptimizer, extra: Value) -> Result<()> {
        let previous: Option<Value> = std::fs::read_to_string(self.state_path()).ok().and_then(|s| serde_json::from_str(&s).ok());
        let weights = self.file(Some(step), "safetensors");
        let adam = self.file(Some(step), "adam");
        write_atomically(&weights, &model.to_bytes())?;
        let state = optimizer_bytes(optim).map_err(anyhow::Error::msg)?;
        write_atomically(&adam, &state)?;
        let name = |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let mut j = json!({"step": step, "model": name(&weights), "adam": name(&adam), "param_ids": param_ids(module)});
        if let (Some(o), Value::Object(e)) = (j.as_object_mut(), extra) {
            o.extend(e);
        }
        write_atomically(&self.state_path(), j.to_string().as_bytes())?;
        // The previous step's files (or the older layout's) are no longer named by the JSON.
        if let Some(p) = previous {
            for key in ["model", "adam"] {
                if let Some(f) = p[key].as_str().filter(|f| *f != name(&weights) && *f != name(&adam)) {
                    let _ = std::fs::remove_file(self.beside(f));
                }
            }
        }
        let _ = std::fs::remove_file(self.file(None, "safetensors"));
        Ok(())
    }

    /// `module` (rebuilt from `saved`'s [`Saved::model`]) and a fresh `optim`, given the run's
    /// optimizer state (unchanged when an older checkpoint has none); says on stderr, unless
    /// `quiet`, from which step the run goes on.
    pub fn resume<M: Module>(&self, saved: &Saved, module: M, optim: ModuleOptimizer, quiet: bool) -> Result<(M, ModuleOptimizer)> {
        let (module, optim, moments) = match &saved.adam {
            Some((ids, bytes)) => {
                let module = assign_param_ids(module, ids).map_err(anyhow::Error::msg)?;
                (module, restore_optimizer(optim, bytes.clone()).map_err(anyhow::Error::msg)?, "")
            }
            None => (module, optim, " (an older checkpoint: Adam's moments start afresh)"),
        };
        if !quiet {
            eprintln!("resuming from step {} ({}){moments}", saved.step, self.state_path().display());
        }
        Ok((module, optim))
    }

    /// The checkpoint, if there is one.
    pub fn load(&self) -> Result<Option<Saved>> {
        let path = self.state_path();
        if !path.exists() {
            return Ok(None);
        }
        let state: Value = serde_json::from_str(&std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?)
            .with_context(|| format!("{}: not a checkpoint", path.display()))?;
        let step = state["step"].as_u64().with_context(|| format!("{}: no step", path.display()))? as usize;
        let weights = match state["model"].as_str() {
            Some(f) => self.beside(f),
            None => self.file(None, "safetensors"),
        };
        let model = TrainedModel::load(&weights)?;
        let adam = match (state["adam"].as_str(), state["param_ids"].as_array()) {
            (Some(f), Some(ids)) => {
                let ids: Option<Vec<u64>> = ids.iter().map(Value::as_u64).collect();
                let ids = ids.with_context(|| format!("{}: parameter ids are not integers", path.display()))?;
                let f = self.beside(f);
                Some((ids, std::fs::read(&f).with_context(|| format!("reading the optimizer state {}", f.display()))?))
            }
            _ => None,
        };
        Ok(Some(Saved { step, state, model, adam }))
    }
}
