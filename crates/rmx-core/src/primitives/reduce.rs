//! Reductions: `Reduce` over a set of axes (kept as size 1), `ArgReduce` over one axis,
//! and the fused `Softmax` over the last axis.

use super::batching::{self, Batched};
use super::one;
use super::scan_derivatives::{scan_jvp, scan_vjp, Dir};
use crate::array::{Array, ArrayData};
use crate::backend::{ArgReduceOp, Backend, ReduceOp, ScanOp};
use crate::error::Result;
use crate::ops;
use crate::primitive::{OutputSpec, Primitive};

#[derive(Clone, Debug, PartialEq)]
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
    fn vjp(&self, p: &[Array], ct: &[Array], _a: &[usize], out: &[Array]) -> Result<Vec<Array>> {
        let x = &p[0];
        let g = ops::broadcast_to(&ct[0], x.shape())?;
        Ok(vec![match self.op {
            ReduceOp::Sum => g,
            ReduceOp::Prod => ops::divide(
                &ops::multiply(&g, &ops::broadcast_to(&out[0], x.shape())?)?,
                x,
            )?,
            ReduceOp::Max | ReduceOp::Min => {
                // split the cotangent evenly between tied extrema
                let mask = ops::astype(&ops::equal(x, &out[0])?, x.dtype())?;
                let axes: Vec<i64> = self.axes.iter().map(|&a| a as i64).collect();
                let count = ops::sum(&mask, Some(&axes), true)?;
                ops::divide(&ops::multiply(&g, &mask)?, &count)?
            }
            ReduceOp::All | ReduceOp::Any => ops::zeros_like(x)?,
        }])
    }
    fn jvp(&self, p: &[Array], t: &[Array], _a: &[usize], out: &[Array]) -> Result<Vec<Array>> {
        let axes: Vec<i64> = self.axes.iter().map(|&a| a as i64).collect();
        match self.op {
            ReduceOp::Sum => Ok(vec![ops::sum(&t[0], Some(&axes), true)?]),
            ReduceOp::Max | ReduceOp::Min => {
                let mask = ops::astype(&ops::equal(&p[0], &out[0])?, p[0].dtype())?;
                let num = ops::sum(&ops::multiply(&t[0], &mask)?, Some(&axes), true)?;
                Ok(vec![ops::divide(
                    &num,
                    &ops::sum(&mask, Some(&axes), true)?,
                )?])
            }
            ReduceOp::Prod => {
                let s = ops::sum(&ops::divide(&t[0], &p[0])?, Some(&axes), true)?;
                Ok(vec![ops::multiply(&s, &out[0])?])
            }
            _ => Ok(vec![ops::zeros_like(&out[0])?]),
        }
    }
    fn vmap(&self, x: &[Array], ax: &[Option<usize>], out: &[OutputSpec]) -> Result<Batched> {
        let p = Reduce {
            op: self.op,
            axes: batching::shifted(&self.axes),
        };
        batching::front(p, &x[0], ax[0], &out[0])
    }
    crate::primitive_common!();
}

#[derive(Clone, Debug, PartialEq)]
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
    fn vjp(&self, p: &[Array], _ct: &[Array], _a: &[usize], _o: &[Array]) -> Result<Vec<Array>> {
        Ok(vec![ops::zeros_like(&p[0])?])
    }
    fn jvp(&self, _p: &[Array], _t: &[Array], _a: &[usize], out: &[Array]) -> Result<Vec<Array>> {
        Ok(vec![ops::zeros_like(&out[0])?])
    }
    fn vmap(&self, x: &[Array], ax: &[Option<usize>], out: &[OutputSpec]) -> Result<Batched> {
        let p = ArgReduce {
            op: self.op,
            axis: self.axis + 1,
        };
        batching::front(p, &x[0], ax[0], &out[0])
    }
    crate::primitive_common!();
}

/// Softmax over the last axis.
#[derive(Clone, Debug, PartialEq)]
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
    fn vjp(&self, _p: &[Array], ct: &[Array], _a: &[usize], out: &[Array]) -> Result<Vec<Array>> {
        let s = ops::sum(&ops::multiply(&ct[0], &out[0])?, Some(&[-1]), true)?;
        Ok(vec![ops::multiply(&out[0], &ops::subtract(&ct[0], &s)?)?])
    }
    fn jvp(&self, _p: &[Array], t: &[Array], _a: &[usize], out: &[Array]) -> Result<Vec<Array>> {
        let s = ops::sum(&ops::multiply(&t[0], &out[0])?, Some(&[-1]), true)?;
        Ok(vec![ops::multiply(&out[0], &ops::subtract(&t[0], &s)?)?])
    }
    fn vmap(&self, x: &[Array], ax: &[Option<usize>], out: &[OutputSpec]) -> Result<Batched> {
        batching::front(self.clone(), &x[0], ax[0], &out[0])
    }
    crate::primitive_common!();
}

/// Cumulative op along one axis.
#[derive(Clone, Debug, PartialEq)]
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
    fn vjp(&self, p: &[Array], ct: &[Array], _a: &[usize], _o: &[Array]) -> Result<Vec<Array>> {
        let d = Dir {
            axis: self.axis,
            reverse: self.reverse,
        };
        Ok(vec![scan_vjp(self.op, self.inclusive, &p[0], &ct[0], d)?])
    }
    fn jvp(&self, p: &[Array], t: &[Array], _a: &[usize], _o: &[Array]) -> Result<Vec<Array>> {
        let d = Dir {
            axis: self.axis,
            reverse: self.reverse,
        };
        Ok(vec![scan_jvp(self.op, self.inclusive, &p[0], &t[0], d)?])
    }
    fn vmap(&self, x: &[Array], ax: &[Option<usize>], out: &[OutputSpec]) -> Result<Batched> {
        let p = Scan {
            axis: self.axis + 1,
            ..self.clone()
        };
        batching::front(p, &x[0], ax[0], &out[0])
    }
    crate::primitive_common!();
}
