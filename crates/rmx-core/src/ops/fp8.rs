//! `to_fp8` / `from_fp8`: fp8 e4m3 codes stored as uint8, with MLX's checks and messages.

use crate::array::Array;
use crate::dtype::Dtype;
use crate::error::Result;
use crate::primitives::fp8::{fp8_dtype, ConvertFp8};
use std::sync::Arc;

fn node(x: &Array, to_fp8: bool, dtype: Dtype) -> Array {
    Array::from_op(
        x.shape().into(),
        fp8_dtype(to_fp8, dtype),
        Arc::new(ConvertFp8 { to_fp8 }),
        vec![x.clone()],
    )
}

/// Floats to e4m3 codes (uint8). float64 goes through float32 (MLX 0.32.4 reads float64
/// memory as if it were float32 there, which is a bug rmx does not copy).
pub fn to_fp8(x: &Array) -> Result<Array> {
    if !x.dtype().is_float() {
        return Err(crate::value_err!(
            "[to_fp8] Only real floating types are supported but x.dtype() == {}.",
            x.dtype()
        ));
    }
    Ok(node(x, true, Dtype::Uint8))
}

/// e4m3 codes (uint8) to floats of `dtype` (MLX's default is bfloat16).
pub fn from_fp8(x: &Array, dtype: Dtype) -> Result<Array> {
    if x.dtype() != Dtype::Uint8 {
        return Err(crate::value_err!(
            "[from_fp8] Input must have type uint8 but x.dtype() == {}.",
            x.dtype()
        ));
    }
    if !dtype.is_float() {
        return Err(crate::value_err!(
            "[from_fp8] Only real floating types are supported but dtype == {dtype}."
        ));
    }
    Ok(node(x, false, dtype))
}
