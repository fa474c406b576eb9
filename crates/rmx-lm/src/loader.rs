//! Loads a model and its tokenizer from a GGUF file or from a Hugging Face / mlx-lm folder.

use crate::config::ModelArgs;
use crate::error::{LmError, Result};
use crate::metadata::Meta;
use crate::model_err;
use crate::models::{self, LanguageModel};
use crate::tokenizer::Tokenizer;
use crate::weights::Weights;
use std::path::Path;

pub struct Loaded {
    pub model: Box<dyn LanguageModel>,
    pub tokenizer: Tokenizer,
    /// A short name for messages and the server's model list.
    pub name: String,
}

pub fn load(path: &Path) -> Result<Loaded> {
    if !path.exists() {
        return Err(LmError::Io(format!(
            "model path {} does not exist",
            path.display()
        )));
    }
    let name = path
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string());
    if path.is_dir() {
        return load_folder(path, name);
    }
    if path.extension().is_some_and(|x| x == "gguf") {
        return load_gguf(path, name);
    }
    Err(model_err!(
        "{}: expected a .gguf file or a folder with config.json and safetensors",
        path.display()
    ))
}

/// What a checkpoint holds before a model is built from it.
pub struct Parts {
    pub weights: Weights,
    pub args: ModelArgs,
    pub tokenizer: Tokenizer,
    /// The folder's config.json (None for GGUF).
    pub config: Option<serde_json::Value>,
}

/// Reads weights, hyper-parameters and tokenizer without building the model.
pub fn load_parts(path: &Path) -> Result<Parts> {
    if !path.exists() {
        return Err(LmError::Io(format!(
            "model path {} does not exist",
            path.display()
        )));
    }
    if path.is_dir() {
        let (weights, args, tokenizer, config) = folder_parts(path)?;
        return Ok(Parts {
            weights,
            args,
            tokenizer,
            config: Some(config),
        });
    }
    let (weights, args, tokenizer) = gguf_parts(path)?;
    Ok(Parts {
        weights,
        args,
        tokenizer,
        config: None,
    })
}

fn gguf_parts(path: &Path) -> Result<(Weights, ModelArgs, Tokenizer)> {
    let (arrays, meta) = match rmx_io::load_with_metadata(path, Some(rmx_io::Format::Gguf), true)? {
        (rmx_io::Loaded::Arrays(a), Some(rmx_io::Metadata::Gguf(m))) => (a, m),
        _ => return Err(model_err!("{}: not a GGUF model", path.display())),
    };
    let meta = Meta::new(meta);
    let mut args = ModelArgs::from_gguf(&meta)?;
    let weights = Weights::from_gguf(arrays);
    args.tie_word_embeddings = weights.opt("lm_head.weight").is_none();
    let tokenizer = Tokenizer::from_gguf(&meta)?;
    Ok((weights, args, tokenizer))
}

fn load_gguf(path: &Path, name: String) -> Result<Loaded> {
    let (weights, args, tokenizer) = gguf_parts(path)?;
    let model = models::build(weights, args)?;
    Ok(Loaded {
        model,
        tokenizer,
        name,
    })
}

#[allow(clippy::type_complexity)]
fn folder_parts(dir: &Path) -> Result<(Weights, ModelArgs, Tokenizer, serde_json::Value)> {
    let cfg_path = dir.join("config.json");
    let text = std::fs::read_to_string(&cfg_path)
        .map_err(|e| LmError::Io(format!("{}: {e}", cfg_path.display())))?;
    let config: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| model_err!("{}: {e}", cfg_path.display()))?;
    let args = ModelArgs::from_hf_config(&config)?;
    let weights = Weights::from_folder(dir, &config)?;
    let tokenizer = Tokenizer::from_folder(dir, &args.eos_token_ids)?;
    Ok((weights, args, tokenizer, config))
}

fn load_folder(dir: &Path, name: String) -> Result<Loaded> {
    let (weights, args, tokenizer, _) = folder_parts(dir)?;
    let model = models::build(weights, args)?;
    Ok(Loaded {
        model,
        tokenizer,
        name,
    })
}
