//! Layers with MLX's semantics and default initialisations.

mod conv;
mod conv_transpose;
mod dropout;
mod embedding;
mod linear;
mod norm;
mod pool;
mod sequential;

pub use conv::{Conv1d, Conv2d, Conv3d, ConvConfig};
pub use conv_transpose::{ConvTranspose1d, ConvTranspose2d, ConvTranspose3d, ConvTransposeConfig};
pub use dropout::Dropout;
pub use embedding::Embedding;
pub use linear::Linear;
pub use norm::{LayerNorm, RMSNorm};
pub use pool::{AvgPool1d, AvgPool2d, AvgPool3d, MaxPool1d, MaxPool2d, MaxPool3d};
pub use sequential::{Activation, Sequential};

use crate::Module;
use rmx_core::{Array, Result};

/// A module with one input and one output (MLX's `__call__(x)`).
pub trait Layer: Module {
    fn forward(&self, x: &Array) -> Result<Array>;
}

/// A float32 0-d scalar.
pub(crate) fn f32_scalar(v: f64) -> Array {
    Array::scalar(rmx_core::Scalar::Float(v))
}
