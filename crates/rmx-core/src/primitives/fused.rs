//! `Fused`: a chain of elementwise primitives (unary, binary, casts, select) that
//! `compile` merged into one node. Every input has the output's shape (the op layer has
//! already broadcast them, as views). Evaluation is a tiled interpreter: the output is
//! cut into cache-sized blocks, and each block runs the whole op list through the
//! backend's own (SIMD) kernels on block-sized temporaries, so each input is read once
//! and the output written once, with no C compiler at run time.
//! Derivatives and vmap replay the unfused ops.

use super::batching::Batched;
use super::elementwise::{AsType, Binary, Select, Unary};
use crate::array::{Array, ArrayData};
use crate::backend::{Backend, BinaryOp, UnaryOp};
use crate::dtype::Dtype;
use crate::error::Result;
use crate::primitive::{OutputSpec, Primitive};
use crate::shape::{row_strides, Shape};
use rayon::prelude::*;
use std::sync::Arc;

/// Elements per block: a few 16 KB temporaries per op stay in L1/L2.
const BLOCK: usize = 4096;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FusedKind {
    Unary(UnaryOp),
    Binary(BinaryOp),
    Cast,
    Select,
}

/// An operand: a fused input, or the result of an earlier op of the program.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Arg {
    Input(usize),
    Op(usize),
}

#[derive(Clone, Debug, PartialEq)]
pub struct FusedOp {
    pub kind: FusedKind,
    pub args: Vec<Arg>,
    pub dtype: Dtype,
}

/// The program's last op is the output.
#[derive(Clone, Debug, PartialEq)]
pub struct Fused {
    pub ops: Vec<FusedOp>,
}

impl FusedKind {
    /// The kind of an elementwise primitive `compile` can fuse.
    pub fn of(p: &dyn Primitive) -> Option<FusedKind> {
        let any = p.as_any();
        if let Some(u) = any.downcast_ref::<Unary>() {
            return Some(FusedKind::Unary(u.op));
        }
        if let Some(b) = any.downcast_ref::<Binary>() {
            return Some(FusedKind::Binary(b.op));
        }
        if any.downcast_ref::<AsType>().is_some() {
            return Some(FusedKind::Cast);
        }
        if any.downcast_ref::<Select>().is_some() {
            return Some(FusedKind::Select);
        }
        None
    }
}

impl Fused {
    /// The unfused graph over `inputs` (same primitives as before fusion).
    pub fn replay(&self, inputs: &[Array]) -> Result<Array> {
        let mut vals: Vec<Array> = Vec::with_capacity(self.ops.len());
        for op in &self.ops {
            let args: Vec<Array> = op
                .args
                .iter()
                .map(|a| match a {
                    Arg::Input(i) => inputs[*i].clone(),
                    Arg::Op(j) => vals[*j].clone(),
                })
                .collect();
            let prim: Arc<dyn Primitive> = match op.kind {
                FusedKind::Unary(o) => Arc::new(Unary { op: o }),
                FusedKind::Binary(o) => Arc::new(Binary { op: o }),
                FusedKind::Cast => Arc::new(AsType { dtype: op.dtype }),
                FusedKind::Select => Arc::new(Select),
            };
            vals.push(Array::from_op(args[0].shape().into(), op.dtype, prim, args));
        }
        Ok(vals.pop().expect("a fused program has ops"))
    }

    /// Runs the program on one block of `len` elements whose inputs are `ins`.
    fn run_block(&self, b: &dyn Backend, ins: &[ArrayData]) -> Result<ArrayData> {
        let mut vals: Vec<ArrayData> = Vec::with_capacity(self.ops.len());
        for op in &self.ops {
            let get = |a: &Arg| match a {
                Arg::Input(i) => &ins[*i],
                Arg::Op(j) => &vals[*j],
            };
            let v = match op.kind {
                FusedKind::Unary(o) => b.unary(o, get(&op.args[0]), op.dtype)?,
                FusedKind::Binary(o) => {
                    b.binary(o, get(&op.args[0]), get(&op.args[1]), op.dtype)?
                }
                FusedKind::Cast => b.cast(get(&op.args[0]), op.dtype)?,
                FusedKind::Select => {
                    b.select(get(&op.args[0]), get(&op.args[1]), get(&op.args[2]))?
                }
            };
            vals.push(v);
        }
        Ok(vals.pop().expect("a fused program has ops"))
    }
}

/// A block `[start, start+len)` of `x`'s row-major elements as a 1-d view, for inputs
/// that are contiguous or a single broadcast value.
fn block_view(x: &ArrayData, start: usize, len: usize) -> ArrayData {
    let shape: Shape = [len].as_slice().into();
    if x.strides.iter().all(|&s| s == 0) {
        return x.view(shape, [0isize].as_slice().into(), x.offset);
    }
    x.view(shape, row_strides(&[len]), x.offset + start)
}

impl Primitive for Fused {
    fn name(&self) -> &'static str {
        "Fused"
    }
    fn eval(
        &self,
        b: &dyn Backend,
        inputs: &[ArrayData],
        out: &[OutputSpec],
    ) -> Result<Vec<ArrayData>> {
        let shape = &out[0].shape;
        let n: usize = shape.iter().product();
        // Inputs the block views cannot address (general strided layouts) are made
        // contiguous once.
        let ins: Vec<ArrayData> = inputs
            .iter()
            .map(|x| {
                if x.is_row_contiguous() || x.strides.iter().all(|&s| s == 0) {
                    Ok(x.clone())
                } else {
                    b.copy(x)
                }
            })
            .collect::<Result<_>>()?;
        let o = ArrayData::alloc(out[0].dtype, shape)?;
        let blocks = n.div_ceil(BLOCK);
        (0..blocks)
            .into_par_iter()
            .try_for_each(|k| -> Result<()> {
                let start = k * BLOCK;
                let len = BLOCK.min(n - start);
                let views: Vec<ArrayData> = ins.iter().map(|x| block_view(x, start, len)).collect();
                let r = self.run_block(b, &views)?;
                b.copy_into(&r, &block_view(&o, start, len))
            })?;
        Ok(vec![o])
    }
    fn vjp(
        &self,
        p: &[Array],
        ct: &[Array],
        argnums: &[usize],
        _out: &[Array],
    ) -> Result<Vec<Array>> {
        let (_, grads) = crate::transforms::vjp(|x| Ok(vec![self.replay(x)?]), p, &ct[..1])?;
        Ok(argnums.iter().map(|&k| grads[k].clone()).collect())
    }
    fn jvp(&self, p: &[Array], t: &[Array], argnums: &[usize], _o: &[Array]) -> Result<Vec<Array>> {
        let tangents = crate::transforms::custom::full_tangents(p, t, argnums)?;
        Ok(crate::transforms::jvp(|x| Ok(vec![self.replay(x)?]), p, &tangents)?.1)
    }
    fn vmap(&self, x: &[Array], ax: &[Option<usize>], _out: &[OutputSpec]) -> Result<Batched> {
        let axes: Vec<Option<i64>> = ax.iter().map(|a| a.map(|a| a as i64)).collect();
        let (outs, oaxes, _) =
            crate::transforms::vmap_trace(|y| Ok(vec![self.replay(y)?]), x, &axes)?;
        Ok((outs, oaxes))
    }
    crate::primitive_common!();
}
