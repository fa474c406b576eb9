//! Gather/scatter primitives along one axis. Multi-axis indexing is lowered onto these
//! by the op layer (indices over several axes become one linear index).

use super::one;
use crate::array::ArrayData;
use crate::backend::{Backend, ScatterMode};
use crate::error::Result;
use crate::primitive::{OutputSpec, Primitive};

/// `take(x, indices, axis)`: inputs `[x, indices]`.
#[derive(Debug, PartialEq)]
pub struct Take {
    pub axis: usize,
}

impl Primitive for Take {
    fn name(&self) -> &'static str {
        "Take"
    }
    fn eval(
        &self,
        b: &dyn Backend,
        inputs: &[ArrayData],
        _out: &[OutputSpec],
    ) -> Result<Vec<ArrayData>> {
        one(b.take(&inputs[0], &inputs[1], self.axis)?)
    }
    crate::primitive_common!();
}

/// `take_along_axis(x, indices, axis)`: inputs `[x, indices]` (indices broadcast).
#[derive(Debug, PartialEq)]
pub struct TakeAlongAxis {
    pub axis: usize,
}

impl Primitive for TakeAlongAxis {
    fn name(&self) -> &'static str {
        "TakeAlongAxis"
    }
    fn eval(
        &self,
        b: &dyn Backend,
        inputs: &[ArrayData],
        _out: &[OutputSpec],
    ) -> Result<Vec<ArrayData>> {
        one(b.take_along_axis(&inputs[0], &inputs[1], self.axis)?)
    }
    crate::primitive_common!();
}

/// Scatter along one axis: inputs `[x, indices, updates]`, indices and updates of equal shape.
#[derive(Debug, PartialEq)]
pub struct ScatterAxis {
    pub mode: ScatterMode,
    pub axis: usize,
}

impl Primitive for ScatterAxis {
    fn name(&self) -> &'static str {
        "ScatterAxis"
    }
    fn eval(
        &self,
        b: &dyn Backend,
        inputs: &[ArrayData],
        _out: &[OutputSpec],
    ) -> Result<Vec<ArrayData>> {
        one(b.scatter_along_axis(self.mode, &inputs[0], &inputs[1], &inputs[2], self.axis)?)
    }
    crate::primitive_common!();
}

/// Wraps negative indices and checks them against an axis of `size` (int64 out).
#[derive(Debug, PartialEq)]
pub struct CheckIndices {
    pub size: usize,
    pub axis: usize,
}

impl Primitive for CheckIndices {
    fn name(&self) -> &'static str {
        "CheckIndices"
    }
    fn eval(
        &self,
        b: &dyn Backend,
        inputs: &[ArrayData],
        _out: &[OutputSpec],
    ) -> Result<Vec<ArrayData>> {
        one(b.check_indices(&inputs[0], self.size, self.axis)?)
    }
    crate::primitive_common!();
}
