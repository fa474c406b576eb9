//! `ConvertFp8`: float <-> fp8 (e4m3, stored as uint8), MLX's `ToFP8`/`FromFP8`.
//! Elementwise, so vmap keeps the batch axis (an rmx addition: MLX 0.32.4 has no vmap
//! here). No derivatives, as in MLX (a quantizer's derivative is zero almost everywhere;
//! MLX raises, and so does rmx, with ValueError).

use super::batching::{self, Batched};
use crate::array::{Array, ArrayData};
use crate::backend::Backend;
use crate::dtype::Dtype;
use crate::error::Result;
use crate::primitive::{OutputSpec, Primitive};

#[derive(Clone, Debug, PartialEq)]
pub struct ConvertFp8 {
    pub to_fp8: bool,
}

impl Primitive for ConvertFp8 {
    fn name(&self) -> &'static str {
        if self.to_fp8 {
            "ToFP8"
        } else {
            "FromFP8"
        }
    }
    fn eval(
        &self,
        b: &dyn Backend,
        inputs: &[ArrayData],
        out: &[OutputSpec],
    ) -> Result<Vec<ArrayData>> {
        Ok(vec![b.fp8(&inputs[0], self.to_fp8, out[0].dtype)?])
    }
    fn vmap(&self, x: &[Array], ax: &[Option<usize>], out: &[OutputSpec]) -> Result<Batched> {
        batching::same_axis(self.clone(), &x[0], ax[0], &out[0])
    }
    crate::primitive_common!();
}

/// The output dtype of a conversion (uint8 codes, or the requested float type).
pub fn fp8_dtype(to_fp8: bool, dtype: Dtype) -> Dtype {
    if to_fp8 {
        Dtype::Uint8
    } else {
        dtype
    }
}
