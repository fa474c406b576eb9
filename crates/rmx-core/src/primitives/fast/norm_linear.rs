//! `RmsNormLinear` (an rmx extension; MLX has none): a pre-norm block's entry, the RMS norm
//! of its input followed by the block's first product, `rms_norm(h) @ W^T` or, gated,
//! `swiglu_linear(rms_norm(h), W)`, where `h = x` or `h = x + residual` (the previous
//! block's output added to the residual stream). Inputs `[x, residual?, norm_weight, w,
//! scales?, biases?]` (the weight dense or in MLX's affine format); outputs `[h, y]` with a
//! residual, `[y]` without. Every intermediate is rounded to `x`'s dtype as the separate
//! ops store it. One kernel on the GPU for one row (decode): the norm is made inside the
//! product's blocks instead of by a kernel of its own. Derivatives and vmap go through
//! the definition.

use crate::array::{Array, ArrayData};
use crate::backend::{Backend, LinearWeight, NormKind};
use crate::error::Result;
use crate::ops;
use crate::primitive::{OutputSpec, Primitive};

#[derive(Clone, Debug, PartialEq)]
pub struct RmsNormLinear {
    pub eps: f32,
    /// A residual follows `x` in the inputs and `h = x + residual` is the first output.
    pub residual: bool,
    /// SwiGLU epilogue: `W = [W_g; W_u]` and `y = silu(n W_g^T) * (n W_u^T)`.
    pub gated: bool,
    /// `(group_size, bits)` of an affine-quantized weight; `None` for a dense one.
    pub quantized: Option<(usize, usize)>,
}

impl RmsNormLinear {
    /// Index of the norm's weight in the inputs.
    fn norm_at(&self) -> usize {
        1 + self.residual as usize
    }

    /// The definition from ordinary ops: `add_rms_norm` (or `rms_norm`), then the product.
    pub fn composite(&self, p: &[Array]) -> Result<Vec<Array>> {
        let at = self.norm_at();
        let nw = Some(&p[at]);
        let (h, n) = if self.residual {
            ops::fast::add_rms_norm(&p[0], &p[1], nw, self.eps)?
        } else {
            (p[0].clone(), ops::fast::rms_norm(&p[0], nw, self.eps)?)
        };
        let weight = ops::fast::Weight::from_parts(&p[at + 1..], self.quantized);
        let y = if self.gated {
            ops::fast::swiglu_linear(&n, weight)?
        } else {
            ops::fast::linear(&n, weight)?
        };
        Ok(if self.residual { vec![h, y] } else { vec![y] })
    }

    fn weight<'a>(&self, p: &'a [ArrayData]) -> LinearWeight<'a> {
        let at = self.norm_at() + 1;
        match self.quantized {
            None => LinearWeight::Dense(&p[at]),
            Some((group_size, bits)) => LinearWeight::Quantized {
                w: &p[at],
                scales: &p[at + 1],
                biases: &p[at + 2],
                group_size,
                bits,
            },
        }
    }
}

impl Primitive for RmsNormLinear {
    fn name(&self) -> &'static str {
        "RMSNormLinear"
    }
    fn eval(
        &self,
        b: &dyn Backend,
        inputs: &[ArrayData],
        _out: &[OutputSpec],
    ) -> Result<Vec<ArrayData>> {
        let residual = self.residual.then(|| &inputs[1]);
        let nw = &inputs[self.norm_at()];
        let (h, y) = b.rms_norm_linear(
            &inputs[0],
            residual,
            nw,
            self.eps,
            self.weight(inputs),
            self.gated,
        )?;
        Ok(match h {
            Some(h) if self.residual => vec![h, y],
            _ => vec![y],
        })
    }
    super::rules_from_definition!(composite);
    crate::primitive_common!();
}

/// `Backend::rms_norm_linear` from the backend's own kernels: the norm (with the residual
/// add when there is one), then the product (and the gating). The trait's default, and a
/// backend's fallback; the value is the separate ops' bit for bit.
pub fn norm_then_linear<B: Backend + ?Sized>(
    b: &B,
    x: &ArrayData,
    residual: Option<&ArrayData>,
    norm_weight: &ArrayData,
    eps: f32,
    weight: LinearWeight<'_>,
    gated: bool,
) -> Result<(Option<ArrayData>, ArrayData)> {
    let (h, n) = match residual {
        Some(r) => {
            let (h, n) = b.add_rms_norm(x, r, Some(norm_weight), eps)?;
            (Some(h), n)
        }
        None => (
            None,
            b.norm(NormKind::Rms, x, Some(norm_weight), None, eps)?,
        ),
    };
    let y = if gated {
        b.swiglu_linear(&n, weight)?
    } else {
        super::swiglu::linear_product(b, &n, weight)?
    };
    Ok((h, y))
}
