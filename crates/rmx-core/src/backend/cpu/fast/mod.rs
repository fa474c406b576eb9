//! Kernels of the fused `fast` ops: normalizations, rotary embedding and attention.
//! Each makes one pass over its input, rows in parallel; half types compute in f32.

pub mod attention;
mod attention_decode;
pub mod norm;
pub mod rope;

use super::math::FloatElem;
use crate::array::ArrayData;
use crate::error::Result;

/// `x` itself when its last axis is dense (stride 1), else a row-contiguous copy.
pub(super) fn dense_rows(x: &ArrayData) -> Result<ArrayData> {
    match x.strides.last() {
        Some(1) => Ok(x.clone()),
        _ if x.ndim() == 0 || x.shape[x.ndim() - 1] <= 1 => Ok(x.clone()),
        _ => super::copy::copy(x),
    }
}

/// Offsets (in elements) of the start of each row of `x` (all axes but the last).
pub(super) struct RowIndex {
    shape: Vec<usize>,
    strides: Vec<isize>,
}

impl RowIndex {
    pub fn new(x: &ArrayData) -> RowIndex {
        let nd = x.ndim().saturating_sub(1);
        RowIndex {
            shape: x.shape[..nd].to_vec(),
            strides: x.strides[..nd].to_vec(),
        }
    }
    /// The offset of row `r` (row-major over the leading axes).
    #[inline]
    pub fn offset(&self, mut r: usize) -> isize {
        let mut o = 0isize;
        for d in (0..self.shape.len()).rev() {
            let n = self.shape[d];
            o += (r % n) as isize * self.strides[d];
            r /= n;
        }
        o
    }
}

/// A 1-d view's elements in the compute type.
pub(super) fn vector_up<T: FloatElem>(v: &ArrayData) -> Vec<T::C> {
    v.to_vec::<T>().into_iter().map(|e| e.up()).collect()
}
