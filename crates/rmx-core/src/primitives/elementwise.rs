//! Elementwise primitives: `Unary`, `Binary`, `Select`, `AsType`, `BitCast`.
//! Inputs of `Binary` and `Select` are already broadcast and cast by the op layer.

use super::batching::{self, Batched};
use super::derivatives::{binary_partials, complex_part_rule, unary_derivative};
use super::one;
use crate::array::{Array, ArrayData};
use crate::backend::{Backend, BinaryOp, UnaryOp};
use crate::dtype::Dtype;
use crate::error::Result;
use crate::ops;
use crate::primitive::{OutputSpec, Primitive};
use crate::shape::row_strides;

#[derive(Clone, Debug, PartialEq)]
pub struct Unary {
    pub op: UnaryOp,
}

impl Primitive for Unary {
    fn name(&self) -> &'static str {
        "Unary"
    }
    fn donatable_inputs(&self) -> &'static [usize] {
        &[0]
    }
    fn eval(
        &self,
        b: &dyn Backend,
        inputs: &[ArrayData],
        out: &[OutputSpec],
    ) -> Result<Vec<ArrayData>> {
        one(b.unary_over(self.op, &inputs[0], out[0].dtype)?)
    }
    fn vjp(&self, p: &[Array], ct: &[Array], _a: &[usize], out: &[Array]) -> Result<Vec<Array>> {
        if let Some(g) = complex_part_rule(self.op, &ct[0], false)? {
            return Ok(vec![g]);
        }
        Ok(vec![match unary_derivative(self.op, &p[0], &out[0])? {
            Some(d) => ops::multiply(&ct[0], &d)?,
            None => ops::zeros_like(&p[0])?,
        }])
    }
    fn jvp(&self, p: &[Array], t: &[Array], _a: &[usize], out: &[Array]) -> Result<Vec<Array>> {
        if let Some(g) = complex_part_rule(self.op, &t[0], true)? {
            return Ok(vec![g]);
        }
        Ok(vec![match unary_derivative(self.op, &p[0], &out[0])? {
            Some(d) => ops::multiply(&t[0], &d)?,
            None => ops::zeros_like(&out[0])?,
        }])
    }
    fn vmap(&self, x: &[Array], ax: &[Option<usize>], out: &[OutputSpec]) -> Result<Batched> {
        batching::same_axis(self.clone(), &x[0], ax[0], &out[0])
    }
    crate::primitive_common!();
}

#[derive(Clone, Debug, PartialEq)]
pub struct Binary {
    pub op: BinaryOp,
}

impl Primitive for Binary {
    fn name(&self) -> &'static str {
        "Binary"
    }
    fn donatable_inputs(&self) -> &'static [usize] {
        &[0, 1]
    }
    fn eval(
        &self,
        b: &dyn Backend,
        inputs: &[ArrayData],
        out: &[OutputSpec],
    ) -> Result<Vec<ArrayData>> {
        one(b.binary_over(self.op, &inputs[0], &inputs[1], out[0].dtype)?)
    }
    fn vjp(
        &self,
        p: &[Array],
        ct: &[Array],
        argnums: &[usize],
        out: &[Array],
    ) -> Result<Vec<Array>> {
        let (da, db) = binary_partials(self.op, &p[0], &p[1], &out[0])?;
        argnums
            .iter()
            .map(|&k| {
                let d = if k == 0 { &da } else { &db };
                match d {
                    Some(d) => ops::multiply(&ct[0], d),
                    None => ops::zeros_like(&p[k]),
                }
            })
            .collect()
    }
    fn jvp(
        &self,
        p: &[Array],
        t: &[Array],
        argnums: &[usize],
        out: &[Array],
    ) -> Result<Vec<Array>> {
        let (da, db) = binary_partials(self.op, &p[0], &p[1], &out[0])?;
        let mut acc: Option<Array> = None;
        for (&k, tk) in argnums.iter().zip(t) {
            if let Some(d) = if k == 0 { &da } else { &db } {
                let term = ops::multiply(tk, d)?;
                acc = Some(match acc {
                    None => term,
                    Some(a) => ops::add(&a, &term)?,
                });
            }
        }
        Ok(vec![match acc {
            Some(a) => a,
            None => ops::zeros_like(&out[0])?,
        }])
    }
    fn vmap(&self, x: &[Array], ax: &[Option<usize>], out: &[OutputSpec]) -> Result<Batched> {
        let (xs, b) = batching::all_to_front(x, ax)?;
        batching::rebuild(self.clone(), &out[0], b, xs)
    }
    crate::primitive_common!();
}

/// `where(cond, a, b)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Select;

impl Primitive for Select {
    fn name(&self) -> &'static str {
        "Select"
    }
    fn eval(
        &self,
        b: &dyn Backend,
        inputs: &[ArrayData],
        _out: &[OutputSpec],
    ) -> Result<Vec<ArrayData>> {
        one(b.select(&inputs[0], &inputs[1], &inputs[2])?)
    }
    fn vjp(
        &self,
        p: &[Array],
        ct: &[Array],
        argnums: &[usize],
        _o: &[Array],
    ) -> Result<Vec<Array>> {
        let zero = ops::zeros_like(&ct[0])?;
        argnums
            .iter()
            .map(|&k| match k {
                0 => ops::zeros_like(&p[0]),
                1 => ops::where_(&p[0], &ct[0], &zero),
                _ => ops::where_(&p[0], &zero, &ct[0]),
            })
            .collect()
    }
    fn jvp(
        &self,
        p: &[Array],
        t: &[Array],
        argnums: &[usize],
        _out: &[Array],
    ) -> Result<Vec<Array>> {
        let get = |k| super::autodiff::tangent_or_zeros(p, t, argnums, k);
        Ok(vec![ops::where_(&p[0], &get(1)?, &get(2)?)?])
    }
    fn vmap(&self, x: &[Array], ax: &[Option<usize>], out: &[OutputSpec]) -> Result<Batched> {
        let (xs, b) = batching::all_to_front(x, ax)?;
        batching::rebuild(self.clone(), &out[0], b, xs)
    }
    crate::primitive_common!();
}

/// Value conversion to another dtype.
#[derive(Clone, Debug, PartialEq)]
pub struct AsType {
    pub dtype: Dtype,
}

impl Primitive for AsType {
    fn name(&self) -> &'static str {
        "AsType"
    }
    fn eval(
        &self,
        b: &dyn Backend,
        inputs: &[ArrayData],
        _out: &[OutputSpec],
    ) -> Result<Vec<ArrayData>> {
        one(b.cast(&inputs[0], self.dtype)?)
    }
    fn vjp(&self, p: &[Array], ct: &[Array], _a: &[usize], _o: &[Array]) -> Result<Vec<Array>> {
        Ok(vec![ops::astype(&ct[0], p[0].dtype())?])
    }
    fn jvp(&self, _p: &[Array], t: &[Array], _a: &[usize], _out: &[Array]) -> Result<Vec<Array>> {
        Ok(vec![ops::astype(&t[0], self.dtype)?])
    }
    fn vmap(&self, x: &[Array], ax: &[Option<usize>], out: &[OutputSpec]) -> Result<Batched> {
        batching::same_axis(self.clone(), &x[0], ax[0], &out[0])
    }
    crate::primitive_common!();
}

/// Reinterprets the bytes of the (contiguous) input as another dtype (`view`).
#[derive(Clone, Debug, PartialEq)]
pub struct BitCast {
    pub dtype: Dtype,
}

impl Primitive for BitCast {
    fn name(&self) -> &'static str {
        "BitCast"
    }
    fn eval(
        &self,
        b: &dyn Backend,
        inputs: &[ArrayData],
        out: &[OutputSpec],
    ) -> Result<Vec<ArrayData>> {
        let x = &inputs[0];
        let x = if x.is_row_contiguous() {
            x.clone()
        } else {
            b.copy(x)?
        };
        let byte_offset = x.offset * x.dtype.size();
        let new_size = self.dtype.size();
        if byte_offset % new_size != 0 {
            let c = b.copy(&x)?;
            return one(c.view_as(self.dtype, &out[0].shape, 0));
        }
        one(x.view_as(self.dtype, &out[0].shape, byte_offset / new_size))
    }
    fn vmap(&self, x: &[Array], ax: &[Option<usize>], out: &[OutputSpec]) -> Result<Batched> {
        batching::front(self.clone(), &x[0], ax[0], &out[0])
    }
    crate::primitive_common!();
}

impl ArrayData {
    /// The same bytes seen as `dtype` with a row-major `shape`, starting at element `offset` of `dtype`.
    pub fn view_as(&self, dtype: Dtype, shape: &[usize], offset: usize) -> ArrayData {
        ArrayData {
            buffer: self.buffer.clone(),
            dtype,
            shape: shape.into(),
            strides: row_strides(shape),
            offset,
        }
    }
}
