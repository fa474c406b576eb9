//! `RandomBits`: threefry-2x32 bits from `[..., 2]` uint32 keys, one equal run of the
//! output per key. Every sampler in `ops::random` transforms these bits with ordinary ops.

use super::one;
use crate::array::{Array, ArrayData};
use crate::backend::Backend;
use crate::dtype::Dtype;
use crate::error::Result;
use crate::ops;
use crate::primitive::{OutputSpec, Primitive};
use crate::shape::Shape;
use std::sync::Arc;

/// Bits of `width` bytes per element (1, 2 or 4: uint8/16/32); `shape` is the whole
/// output shape, whose leading elements come from the first key.
#[derive(Debug, PartialEq)]
pub struct RandomBits {
    pub shape: Shape,
    pub width: usize,
}

impl RandomBits {
    pub fn dtype(width: usize) -> Dtype {
        match width {
            1 => Dtype::Uint8,
            2 => Dtype::Uint16,
            _ => Dtype::Uint32,
        }
    }

    /// The node producing bits of `shape` from `keys`.
    pub fn node(keys: &Array, shape: Shape, width: usize) -> Array {
        Array::from_op(
            shape.clone(),
            Self::dtype(width),
            Arc::new(RandomBits { shape, width }),
            vec![keys.clone()],
        )
    }
}

impl Primitive for RandomBits {
    fn name(&self) -> &'static str {
        "RandomBits"
    }
    fn eval(
        &self,
        b: &dyn Backend,
        inputs: &[ArrayData],
        _out: &[OutputSpec],
    ) -> Result<Vec<ArrayData>> {
        one(b.random_bits(&inputs[0], &self.shape, self.width)?)
    }
    /// A batch of keys gives a batch of bit runs: the batch axis goes first on both.
    fn vmap(
        &self,
        inputs: &[Array],
        axes: &[Option<usize>],
        _outputs: &[OutputSpec],
    ) -> Result<(Vec<Array>, Vec<Option<usize>>)> {
        let Some(ax) = axes[0] else {
            return Ok((
                vec![RandomBits::node(&inputs[0], self.shape.clone(), self.width)],
                vec![None],
            ));
        };
        let keys = ops::moveaxis(&inputs[0], ax as i64, 0)?;
        let mut shape = self.shape.clone();
        shape.insert(0, keys.shape()[0]);
        Ok((
            vec![RandomBits::node(&keys, shape, self.width)],
            vec![Some(0)],
        ))
    }
    crate::primitive_common!();
}
