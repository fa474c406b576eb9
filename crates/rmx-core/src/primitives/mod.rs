//! One type per graph operation. Each file holds a family of primitives with their
//! evaluation (through the backend's kernel families) and, as they are written, their
//! derivative and vectorisation rules.

pub mod autodiff;
pub mod batching;
pub mod conv;
pub mod creation;
pub mod custom;
pub mod decompositions;
pub mod depends;
pub mod derivatives;
pub mod elementwise;
pub mod fast;
pub mod fft;
pub mod fp8;
pub mod fused;
pub mod indexing;
pub mod linalg;
pub mod qqmm;
pub mod quantize_grad;
pub mod quantized;
pub mod random;
pub mod reduce;
pub mod scan_derivatives;
pub mod sort;
pub mod structure;
pub mod views;

use crate::array::ArrayData;
use crate::error::Result;

/// The single result of a one-output primitive.
pub(crate) fn one(d: ArrayData) -> Result<Vec<ArrayData>> {
    Ok(vec![d])
}
