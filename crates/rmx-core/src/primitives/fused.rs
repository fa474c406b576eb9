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
use crate::shape::Shape;
use rayon::prelude::*;
use std::sync::Arc;

/// Elements per tile: a few 64 KB temporaries per op stay in L2 (measured faster than
/// 4,096 on the chain, gelu and normalize benchmarks: less per-tile overhead).
const BLOCK: usize = 16384;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FusedKind {
    Unary(UnaryOp),
    Binary(BinaryOp),
    Cast,
    Select,
}

/// An operand: a fused input, or the result of an earlier op of the program.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Arg {
    Input(usize),
    Op(usize),
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FusedOp {
    pub kind: FusedKind,
    pub args: Vec<Arg>,
    pub dtype: Dtype,
}

/// The program's last op is the output.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
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

/// How an input is addressed tile by tile.
#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Layout {
    /// Row-major contiguous over the whole output shape.
    Contiguous,
    /// One value broadcast everywhere.
    Scalar,
    /// A contiguous row of `len` elements repeated along the leading axes (a broadcast
    /// bias or scale: strides `[0, ..., 0, contiguous suffix]`).
    Periodic(usize),
    /// One value per row of `len` elements (a broadcast per-row statistic such as a
    /// mean with kept dims: contiguous leading axes, stride-0 trailing axes).
    RowConstant(usize),
    /// Anything else: made contiguous before the loop.
    Other,
}

pub(crate) fn layout(x: &ArrayData) -> Layout {
    if x.is_row_contiguous() {
        return Layout::Contiguous;
    }
    if x.strides.iter().all(|&s| s == 0) {
        return Layout::Scalar;
    }
    // the longest row-contiguous suffix; everything before it must be broadcast
    let nd = x.ndim();
    let mut expect = 1isize;
    let mut k = nd;
    while k > 0 && (x.shape[k - 1] == 1 || x.strides[k - 1] == expect) {
        expect *= x.shape[k - 1] as isize;
        k -= 1;
    }
    if (0..k).all(|d| x.strides[d] == 0 || x.shape[d] == 1) {
        return Layout::Periodic(x.shape[k..].iter().product());
    }
    // the longest stride-0 suffix; the leading axes must then be row-contiguous
    let mut k = nd;
    while k > 0 && (x.strides[k - 1] == 0 || x.shape[k - 1] == 1) {
        k -= 1;
    }
    let mut expect = 1isize;
    for d in (0..k).rev() {
        if x.shape[d] != 1 && x.strides[d] != expect {
            return Layout::Other;
        }
        expect *= x.shape[d] as isize;
    }
    Layout::RowConstant(x.shape[k..].iter().product())
}

/// The tile `rows x cols` at row `r0` and column `c0` of `x` seen as `[n / period, period]`.
fn tile_view(
    x: &ArrayData,
    l: Layout,
    period: usize,
    r0: usize,
    c0: usize,
    rows: usize,
    cols: usize,
) -> ArrayData {
    let shape: Shape = [rows, cols].as_slice().into();
    let (strides, offset): ([isize; 2], usize) = match l {
        Layout::Scalar => ([0, 0], x.offset),
        Layout::Periodic(_) => ([0, 1], x.offset + c0),
        Layout::RowConstant(_) => ([1, 0], x.offset + r0),
        _ => ([period as isize, 1], x.offset + r0 * period + c0),
    };
    x.view(shape, strides.as_slice().into(), offset)
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
        if let Some(o) = b.fused(self, inputs, out[0].dtype)? {
            return Ok(vec![o]);
        }
        let shape = &out[0].shape;
        let n: usize = shape.iter().product();
        let o = b.empty(out[0].dtype, shape)?;
        if n == 0 {
            return Ok(vec![o]);
        }
        // View the output as [n / period, period]: the period is the row length of the
        // first input broadcast along rows or columns (n when there is none). Inputs with another period or
        // a layout tiles cannot address are made contiguous once.
        let mut layouts: Vec<Layout> = inputs.iter().map(layout).collect();
        let period = layouts
            .iter()
            .find_map(|l| match l {
                Layout::Periodic(p) | Layout::RowConstant(p) => Some(*p),
                _ => None,
            })
            .unwrap_or(n);
        let mut ins: Vec<ArrayData> = Vec::with_capacity(inputs.len());
        for (x, l) in inputs.iter().zip(layouts.iter_mut()) {
            let fits = match *l {
                Layout::Contiguous | Layout::Scalar => true,
                Layout::Periodic(p) | Layout::RowConstant(p) => p == period,
                Layout::Other => false,
            };
            if fits {
                ins.push(x.clone());
            } else {
                ins.push(b.copy(x)?);
                *l = Layout::Contiguous;
            }
        }
        let rows = n / period;
        // tiles: several whole rows when rows are short, column chunks when they are long
        let (rows_per_tile, cols_per_tile) = if period <= BLOCK {
            (BLOCK / period, period)
        } else {
            (1, BLOCK)
        };
        let row_tiles = rows.div_ceil(rows_per_tile);
        let col_tiles = period.div_ceil(cols_per_tile);
        (0..row_tiles * col_tiles)
            .into_par_iter()
            .try_for_each(|k| -> Result<()> {
                let (r0, c0) = (
                    (k / col_tiles) * rows_per_tile,
                    (k % col_tiles) * cols_per_tile,
                );
                let (nr, nc) = (rows_per_tile.min(rows - r0), cols_per_tile.min(period - c0));
                let views: Vec<ArrayData> = ins
                    .iter()
                    .zip(&layouts)
                    .map(|(x, &l)| tile_view(x, l, period, r0, c0, nr, nc))
                    .collect();
                let r = self.run_block(b, &views)?;
                b.copy_into(
                    &r,
                    &tile_view(&o, Layout::Contiguous, period, r0, c0, nr, nc),
                )
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
        let tangents = super::autodiff::full_tangents(p, t, argnums)?;
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
