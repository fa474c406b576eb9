//! The `Module` trait: a tree of named parameters, walked by two visitors.
//!
//! Implementors (usually through `#[derive(Module)]`) only say how to visit their
//! parameters; naming, freezing, strict updates, weight files and the training flag are
//! provided on top. Leaves are `Param` (freezable) and `Array` (always trainable);
//! `Vec<T>` names its entries `prefix.0`, `prefix.1`, ... as MLX does for lists, and
//! `Option<T>` is transparent (a `None` bias simply has no parameter, as in MLX).

use crate::Param;
use rmx_core::{value_err, Array, Result};
use std::collections::{HashMap, HashSet};
use std::path::Path;

/// Arrays by dotted parameter name: gradients, updates, loaded weights.
pub type Params = HashMap<String, Array>;

/// `prefix.key`, or `key` at the root.
pub fn join_key(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

/// Whether `key` selects the parameter `name`: the full name, a submodule prefix of it
/// (`layers.0`), or its trailing components (`bias`, as MLX's `freeze(keys=...)`).
fn key_matches(key: &str, name: &str) -> bool {
    name == key
        || name
            .strip_prefix(key)
            .is_some_and(|rest| rest.starts_with('.'))
        || name
            .strip_suffix(key)
            .is_some_and(|rest| rest.ends_with('.'))
}

fn shape_str(shape: &[usize]) -> String {
    let parts: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    if parts.len() == 1 {
        format!("({},)", parts[0])
    } else {
        format!("({})", parts.join(", "))
    }
}

pub trait Module {
    /// Calls `f(name, param)` for every parameter under `prefix`.
    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(&str, &Param));

    /// Calls `f(name, param)` for every parameter under `prefix`, mutably; stops at the
    /// first error.
    fn visit_params_mut(
        &mut self,
        prefix: &str,
        f: &mut dyn FnMut(&str, &mut Param) -> Result<()>,
    ) -> Result<()>;

    /// Sets the training flag of this module and its children (Dropout reads it).
    fn set_training(&mut self, _training: bool) {}

    /// Every parameter with its dotted name, in field order.
    fn parameters(&self) -> Vec<(String, Array)> {
        let mut out = Vec::new();
        self.visit_params("", &mut |name, p| {
            out.push((name.to_string(), p.value().clone()))
        });
        out
    }

    /// The parameters that are not frozen.
    fn trainable_parameters(&self) -> Vec<(String, Array)> {
        let mut out = Vec::new();
        self.visit_params("", &mut |name, p| {
            if !p.is_frozen() {
                out.push((name.to_string(), p.value().clone()))
            }
        });
        out
    }

    /// The parameters as a map (for `update` round trips and optimizers).
    fn parameter_map(&self) -> Params {
        self.parameters().into_iter().collect()
    }

    /// Number of scalars in all parameters.
    fn num_parameters(&self) -> usize {
        let mut n = 0;
        self.visit_params("", &mut |_, p| n += p.size());
        n
    }

    /// Freezes every parameter.
    fn freeze(&mut self) -> Result<()> {
        set_frozen(self, None, true)
    }

    /// Unfreezes every parameter.
    fn unfreeze(&mut self) -> Result<()> {
        set_frozen(self, None, false)
    }

    /// Freezes the parameters selected by `keys`: a full name (`layers.0.weight`), a
    /// submodule (`layers.0`) or a local name matched everywhere (`bias`). A key that
    /// selects nothing is an error, and nothing is changed then.
    fn freeze_keys(&mut self, keys: &[&str]) -> Result<()> {
        set_frozen(self, Some(keys), true)
    }

    /// Unfreezes the parameters selected by `keys` (see `freeze_keys`).
    fn unfreeze_keys(&mut self, keys: &[&str]) -> Result<()> {
        set_frozen(self, Some(keys), false)
    }

    /// Replaces every parameter: `params` must name each parameter of the model exactly
    /// once with its shape. Errors name missing and unknown keys and mismatched shapes;
    /// nothing is changed on error.
    fn update(&mut self, params: &Params) -> Result<()> {
        check_update(self, params, true)?;
        apply_update(self, params)
    }

    /// Replaces the parameters named in `params` (MLX's `update`: a subset is fine, such
    /// as the trainable ones). Unknown names and mismatched shapes are errors.
    fn update_partial(&mut self, params: &Params) -> Result<()> {
        check_update(self, params, false)?;
        apply_update(self, params)
    }

    /// Sets training mode (`true`, the default of new layers) or evaluation mode.
    fn train(&mut self, mode: bool) {
        self.set_training(mode)
    }

    /// Writes all parameters to `.npz` or `.safetensors` (by extension) under their
    /// dotted names, as MLX's `save_weights`.
    fn save_weights(&self, path: impl AsRef<Path>) -> Result<()>
    where
        Self: Sized,
    {
        crate::weights::save(&self.parameters(), path.as_ref())
    }

    /// Reads `.npz` or `.safetensors` weights. With `strict`, the file must hold exactly
    /// the model's parameters with their shapes; otherwise matching names are loaded
    /// and the rest ignored (shapes are still checked).
    fn load_weights(&mut self, path: impl AsRef<Path>, strict: bool) -> Result<()>
    where
        Self: Sized,
    {
        let mut loaded = crate::weights::load(path.as_ref())?;
        if strict {
            self.update(&loaded)
        } else {
            let names: HashSet<String> = self.parameters().into_iter().map(|p| p.0).collect();
            loaded.retain(|k, _| names.contains(k));
            self.update_partial(&loaded)
        }
    }
}

fn set_frozen<M: Module + ?Sized>(m: &mut M, keys: Option<&[&str]>, frozen: bool) -> Result<()> {
    let what = if frozen { "freeze" } else { "unfreeze" };
    if let Some(keys) = keys {
        let names: Vec<String> = m.parameters().into_iter().map(|p| p.0).collect();
        for key in keys {
            if !names.iter().any(|n| key_matches(key, n)) {
                return Err(value_err!(
                    "[{what}] No parameter matches the key \"{key}\"."
                ));
            }
        }
    }
    let mut before: HashMap<String, bool> = HashMap::new();
    m.visit_params("", &mut |name, p| {
        before.insert(name.to_string(), p.is_frozen());
    });
    let applied = m.visit_params_mut("", &mut |name, p| {
        if keys.is_none_or(|ks| ks.iter().any(|k| key_matches(k, name))) {
            p.set_frozen(frozen);
        }
        Ok(())
    });
    if applied.is_err() {
        // put every flag back, so a failed call changes nothing
        m.visit_params_mut("", &mut |name, p| {
            p.set_frozen(before.get(name).copied().unwrap_or(false));
            Ok(())
        })?;
    }
    applied
}

fn check_update<M: Module + ?Sized>(m: &M, params: &Params, require_all: bool) -> Result<()> {
    let mut current: HashMap<String, Vec<usize>> = HashMap::new();
    m.visit_params("", &mut |name, p| {
        current.insert(name.to_string(), p.shape().to_vec());
    });
    let mut extra: Vec<&String> = params
        .keys()
        .filter(|k| !current.contains_key(*k))
        .collect();
    if !extra.is_empty() {
        extra.sort();
        let list: Vec<&str> = extra.iter().map(|s| s.as_str()).collect();
        return Err(value_err!(
            "[update] Received {} parameters not in model: {}.",
            extra.len(),
            list.join(", ")
        ));
    }
    if require_all {
        let mut missing: Vec<&String> = current
            .keys()
            .filter(|k| !params.contains_key(*k))
            .collect();
        if !missing.is_empty() {
            missing.sort();
            let list: Vec<&str> = missing.iter().map(|s| s.as_str()).collect();
            return Err(value_err!(
                "[update] Missing {} parameters: {}.",
                missing.len(),
                list.join(", ")
            ));
        }
    }
    let mut names: Vec<&String> = params.keys().collect();
    names.sort();
    for name in names {
        let (want, got) = (&current[name], params[name].shape());
        if want.as_slice() != got {
            return Err(value_err!(
                "[update] Expected shape {} but received shape {} for parameter {name}.",
                shape_str(want),
                shape_str(got)
            ));
        }
    }
    Ok(())
}

fn apply_update<M: Module + ?Sized>(m: &mut M, params: &Params) -> Result<()> {
    m.visit_params_mut("", &mut |name, p| {
        if let Some(v) = params.get(name) {
            p.set(v.clone());
        }
        Ok(())
    })
}
