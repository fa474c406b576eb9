//! `Matmul`: batched matrix product of inputs already broadcast to equal batch shapes.

use super::one;
use crate::array::ArrayData;
use crate::backend::Backend;
use crate::error::Result;
use crate::primitive::{OutputSpec, Primitive};

#[derive(Debug, PartialEq)]
pub struct Matmul;

impl Primitive for Matmul {
    fn name(&self) -> &'static str {
        "Matmul"
    }
    fn eval(
        &self,
        b: &dyn Backend,
        inputs: &[ArrayData],
        _out: &[OutputSpec],
    ) -> Result<Vec<ArrayData>> {
        one(b.matmul(&inputs[0], &inputs[1])?)
    }
    crate::primitive_common!();
}
