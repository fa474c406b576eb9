//! `SwigluLinear` (an rmx extension; MLX has none): a gated feed-forward block's first half,
//! `silu(x W_g^T) * (x W_u^T)` from one weight `W = [W_g; W_u]` (`[2F, K]`, the gate rows
//! first), dense or in MLX's affine format. Inputs `[x, w]` or `[x, w, scales, biases]`;
//! output `[..., F]`. Every intermediate is rounded to `x`'s dtype as the separate ops store
//! it (the products, `sigmoid(g)`, `g * sigmoid(g)`), so the value equals a matmul, two
//! slices and three elementwise ops bit for bit where the product sums in the same order
//! (on the GPU the dense gated kernel splits a row over at most 2 warps, the plain one up
//! to 4; otherwise alike). One kernel on the GPU for one row (decode)
//! instead of a product and a gating kernel; derivatives and vmap go through the definition.

use crate::array::{Array, ArrayData};
use crate::backend::{Backend, BinaryOp, LinearWeight, UnaryOp};
use crate::error::Result;
use crate::ops;
use crate::primitive::{OutputSpec, Primitive};

#[derive(Clone, Debug, PartialEq)]
pub struct SwigluLinear {
    /// `(group_size, bits)` of an affine-quantized weight; `None` for a dense one.
    pub quantized: Option<(usize, usize)>,
}

impl SwigluLinear {
    /// The definition from ordinary ops.
    pub fn composite(&self, p: &[Array]) -> Result<Array> {
        let weight = ops::fast::Weight::from_parts(&p[1..], self.quantized);
        let y = ops::fast::linear(&p[0], weight)?;
        let shape: Vec<i64> = y.shape().iter().map(|&d| d as i64).collect();
        let (nd, f) = (shape.len(), shape[shape.len() - 1] / 2);
        let (mut lo, mut hi) = (vec![0i64; nd], shape.clone());
        hi[nd - 1] = f;
        let g = ops::slice(&y, &lo, &hi, None)?;
        (lo[nd - 1], hi[nd - 1]) = (f, 2 * f);
        let u = ops::slice(&y, &lo, &hi, None)?;
        ops::multiply(&ops::multiply(&g, &ops::sigmoid(&g)?)?, &u)
    }

    /// `composite` as the list of the primitive's outputs.
    fn definition(&self, p: &[Array]) -> Result<Vec<Array>> {
        Ok(vec![self.composite(p)?])
    }

    fn weight<'a>(&self, p: &'a [ArrayData]) -> LinearWeight<'a> {
        match self.quantized {
            None => LinearWeight::Dense(&p[1]),
            Some((group_size, bits)) => LinearWeight::Quantized {
                w: &p[1],
                scales: &p[2],
                biases: &p[3],
                group_size,
                bits,
            },
        }
    }
}

impl Primitive for SwigluLinear {
    fn name(&self) -> &'static str {
        "SwiGLULinear"
    }
    fn eval(
        &self,
        b: &dyn Backend,
        inputs: &[ArrayData],
        _out: &[OutputSpec],
    ) -> Result<Vec<ArrayData>> {
        Ok(vec![b.swiglu_linear(&inputs[0], self.weight(inputs))?])
    }
    super::rules_from_definition!(definition);
    crate::primitive_common!();
}

/// `x @ W^T` (`x` `[..., K]`, `W` with `N` rows, dense or affine-quantized) as
/// `ops::matmul` / `quantized_matmul` make it (the weight broadcast over `x`'s batch axes),
/// so the value is theirs bit for bit; a 1-d `x` gives `[N]`.
pub fn linear_product<B: Backend + ?Sized>(
    b: &B,
    x: &ArrayData,
    weight: LinearWeight<'_>,
) -> Result<ArrayData> {
    // a 1-d x is one row, as matmul takes it
    let one_d = x.ndim() == 1;
    let x = if one_d {
        x.view(
            vec![1, x.shape[0]].into(),
            vec![0, x.strides[0]].into(),
            x.offset,
        )
    } else {
        x.clone()
    };
    let batch = &x.shape[..x.ndim() - 2];
    // `a` with `batch` prepended as broadcast (stride 0) axes
    let over_batch = |a: &ArrayData| {
        let shape: Vec<usize> = batch.iter().chain(a.shape.iter()).copied().collect();
        let strides: Vec<isize> = batch
            .iter()
            .map(|_| 0)
            .chain(a.strides.iter().copied())
            .collect();
        a.view(shape.into(), strides.into(), a.offset)
    };
    let y = match weight {
        LinearWeight::Dense(w) => b.matmul(&x, &over_batch(&w.permuted(&[1, 0])))?,
        LinearWeight::Quantized {
            w,
            scales,
            biases,
            group_size,
            bits,
        } => b.quantized_matmul(
            &x,
            &over_batch(w),
            &over_batch(scales),
            &over_batch(biases),
            group_size,
            bits,
            true,
        )?,
    };
    Ok(if one_d {
        let n = y.shape[1];
        y.view(vec![n].into(), vec![y.strides[1]].into(), y.offset)
    } else {
        y
    })
}

/// `Backend::swiglu_linear` from the backend's own product and elementwise kernels: the
/// trait's default, and a backend's fallback. `x` `[..., K]`; the weight has `2F` rows.
pub fn linear_then_swiglu<B: Backend + ?Sized>(
    b: &B,
    x: &ArrayData,
    weight: LinearWeight<'_>,
) -> Result<ArrayData> {
    let y = linear_product(b, x, weight)?;
    let nd = y.ndim();
    let f = y.shape[nd - 1] / 2;
    let half = |at: usize| {
        let mut shape = y.shape.clone();
        shape[nd - 1] = f;
        y.view(
            shape,
            y.strides.clone(),
            (y.offset as isize + at as isize * y.strides[nd - 1]) as usize,
        )
    };
    let (g, u) = (half(0), half(f));
    let s = b.unary(UnaryOp::Sigmoid, &g, x.dtype)?;
    let t = b.binary(BinaryOp::Multiply, &g, &s, x.dtype)?;
    b.binary(BinaryOp::Multiply, &t, &u, x.dtype)
}
