//! `Param`: one learnable array and whether it is frozen.
//!
//! Freezing lives on the parameter itself rather than in a set of names kept on the
//! root module: a derived struct has no place for such a set, and a flag on the leaf
//! keeps its meaning when the layer is moved into another model (its name changes,
//! its frozen state does not), as in MLX where freezing is stored per module.

use rmx_core::Array;
use std::ops::Deref;

#[derive(Clone, Debug)]
pub struct Param {
    value: Array,
    frozen: bool,
}

impl Param {
    /// A trainable parameter.
    pub fn new(value: Array) -> Param {
        Param {
            value,
            frozen: false,
        }
    }

    pub fn value(&self) -> &Array {
        &self.value
    }

    /// Replaces the array (the caller checks shapes; `Module::update` does).
    pub fn set(&mut self, value: Array) {
        self.value = value;
    }

    pub fn is_frozen(&self) -> bool {
        self.frozen
    }

    pub fn set_frozen(&mut self, frozen: bool) {
        self.frozen = frozen;
    }
}

impl Deref for Param {
    type Target = Array;
    fn deref(&self) -> &Array {
        &self.value
    }
}

impl AsRef<Array> for Param {
    fn as_ref(&self) -> &Array {
        &self.value
    }
}

impl From<Array> for Param {
    fn from(value: Array) -> Param {
        Param::new(value)
    }
}
