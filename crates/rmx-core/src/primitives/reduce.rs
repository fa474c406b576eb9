//! Reductions: `Reduce` over a set of axes (kept as size 1), `ArgReduce` over one axis,
//! and the fused `Softmax` over the last axis.

use super::one;
use crate::array::ArrayData;
use crate::backend::{ArgReduceOp, Backend, ReduceOp, ScanOp};
use crate::error::Result;
use crate::primitive::{OutputSpec, Primitive};

#[derive(Debug, PartialEq)]
pub struct Reduce {
    pub op: ReduceOp,
    pub axes: Vec<usize>,
}

impl Primitive for Reduce {
    fn name(&self) -> &'static str {
        "Reduce"
    }
    fn eval(
        &self,
        b: &dyn Backend,
        inputs: &[ArrayData],
        out: &[OutputSpec],
    ) -> Result<Vec<ArrayData>> {
        one(b.reduce(self.op, &inputs[0], &self.axes, out[0].dtype)?)
    }
    crate::primitive_common!();
}

#[derive(Debug, PartialEq)]
pub struct ArgReduce {
    pub op: ArgReduceOp,
    pub axis: usize,
}

impl Primitive for ArgReduce {
    fn name(&self) -> &'static str {
        "ArgReduce"
    }
    fn eval(
        &self,
        b: &dyn Backend,
        inputs: &[ArrayData],
        _out: &[OutputSpec],
    ) -> Result<Vec<ArrayData>> {
        one(b.arg_reduce(self.op, &inputs[0], self.axis)?)
    }
    crate::primitive_common!();
}

/// Softmax over the last axis.
#[derive(Debug, PartialEq)]
pub struct Softmax;

impl Primitive for Softmax {
    fn name(&self) -> &'static str {
        "Softmax"
    }
    fn eval(
        &self,
        b: &dyn Backend,
        inputs: &[ArrayData],
        _out: &[OutputSpec],
    ) -> Result<Vec<ArrayData>> {
        one(b.softmax(&inputs[0])?)
    }
    crate::primitive_common!();
}

/// Cumulative op along one axis.
#[derive(Debug, PartialEq)]
pub struct Scan {
    pub op: ScanOp,
    pub axis: usize,
    pub reverse: bool,
    pub inclusive: bool,
}

impl Primitive for Scan {
    fn name(&self) -> &'static str {
        "Scan"
    }
    fn eval(
        &self,
        b: &dyn Backend,
        inputs: &[ArrayData],
        _out: &[OutputSpec],
    ) -> Result<Vec<ArrayData>> {
        one(b.scan(self.op, &inputs[0], self.axis, self.reverse, self.inclusive)?)
    }
    crate::primitive_common!();
}
