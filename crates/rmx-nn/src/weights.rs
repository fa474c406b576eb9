//! Weight files for `Module::save_weights` / `load_weights`: `.npz` and `.safetensors`
//! through rmx-io, keyed by dotted parameter names exactly as MLX writes them.

use crate::Params;
use rmx_core::{value_err, Array, Result};
use std::path::Path;

enum Kind {
    Npz,
    Safetensors,
}

fn kind(path: &Path, what: &str) -> Result<Kind> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("npz") => Ok(Kind::Npz),
        Some("safetensors") => Ok(Kind::Safetensors),
        _ => Err(value_err!(
            "[{what}] Unsupported file extension for {}: use .npz or .safetensors.",
            path.display()
        )),
    }
}

pub(crate) fn save(params: &[(String, Array)], path: &Path) -> Result<()> {
    match kind(path, "save_weights")? {
        Kind::Npz => rmx_io::savez(path, params),
        Kind::Safetensors => rmx_io::save_safetensors(path, params, &[]),
    }
}

pub(crate) fn load(path: &Path) -> Result<Params> {
    kind(path, "load_weights")?;
    match rmx_io::load(path)? {
        rmx_io::Loaded::Arrays(arrays) => Ok(arrays.into_iter().collect()),
        rmx_io::Loaded::Array(_) => Err(value_err!(
            "[load_weights] {} holds a single array, not named weights.",
            path.display()
        )),
    }
}
