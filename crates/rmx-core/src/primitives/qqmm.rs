//! `QQMatmul`: MLX 0.32.4's `qqmm` product, `quantize(x) @ quantize(w).T` in an fp mode.
//! Inputs `[x, wq, scales]`, then the dense `w` when it was given unquantized (only the
//! derivatives read it; `wq`/`scales` are its `stop_gradient`ed quantization), then
//! nvfp4's `[global_scale_x, global_scale_w]` (float32 scalars). `x` `[..., M, K]` with
//! `wq` `[N, K*bits/32]`, or equal batch shapes (gather_qqmm).
//!
//! Derivatives are MLX's rule: the cotangent is quantized too (straight-through for the
//! quantizers), `dx = qqmm(ct, w.T)` and `dw = qqmm(ct.T, x.T)`, with `max|ct|` as the
//! cotangent's global scale when there are global scales; packed weights give MLX's
//! error for `dx`, scales and global scales get zeros. MLX has no jvp (rmx neither, with
//! MLX's error) and no vmap (rmx has one: rows folded, or one product per batch entry).

use super::batching::{self, Batched};
use crate::array::{Array, ArrayData};
use crate::backend::Backend;
use crate::dtype::Dtype;
use crate::element::Scalar;
use crate::error::Result;
use crate::ops;
use crate::ops::qqmm::{qqmm_product, Weight};
use crate::ops::quantized_fp::QuantMode;
use crate::primitive::{OutputSpec, Primitive};
use std::sync::Arc;

#[derive(Clone, Debug, PartialEq)]
pub struct QQMatmul {
    pub mode: QuantMode,
    /// The dense `w` is input 3.
    pub dense: bool,
    /// Global scales are the last two inputs.
    pub global: bool,
}

impl QQMatmul {
    /// Inputs checked and shaped by `ops::qqmm`.
    pub fn node(&self, inputs: Vec<Array>) -> Array {
        let (x, wq) = (&inputs[0], &inputs[1]);
        let mut shape = x.shape().to_vec();
        let nd = shape.len();
        shape[nd - 1] = wq.shape()[wq.ndim() - 2];
        Array::from_op(shape.into(), x.dtype(), Arc::new(self.clone()), inputs)
    }

    fn globals<'a>(&self, p: &'a [Array]) -> Option<(&'a Array, &'a Array)> {
        let n = p.len();
        self.global.then(|| (&p[n - 2], &p[n - 1]))
    }
}

impl Primitive for QQMatmul {
    fn name(&self) -> &'static str {
        "QQMatmul"
    }
    fn eval(&self, b: &dyn Backend, x: &[ArrayData], _o: &[OutputSpec]) -> Result<Vec<ArrayData>> {
        let n = x.len();
        let g = self.global.then(|| (&x[n - 2], &x[n - 1]));
        Ok(vec![b.qqmm(&x[0], &x[1], &x[2], self.mode, g)?])
    }
    fn vjp(
        &self,
        p: &[Array],
        ct: &[Array],
        argnums: &[usize],
        _o: &[Array],
    ) -> Result<Vec<Array>> {
        let ct = &ct[0];
        let g = self.globals(p);
        let ct_scale = match g {
            Some(_) => Some(ops::astype(
                &ops::max(&ops::abs(ct)?, None, false)?,
                Dtype::Float32,
            )?),
            None => None,
        };
        let t = |a: &Array| ops::swapaxes(a, -1, -2);
        let mut out = Vec::with_capacity(argnums.len());
        for &i in argnums {
            out.push(match i {
                0 => {
                    if !self.dense {
                        return Err(crate::value_err!(
                            "[qqmm] Scales must be provided if second argument is quantized."
                        ));
                    }
                    qqmm_product(
                        ct,
                        Weight::Dense(&t(&p[3])?),
                        self.mode,
                        ct_scale.as_ref().zip(g.map(|g| g.1)),
                    )?
                }
                3 if self.dense => qqmm_product(
                    &t(ct)?,
                    Weight::Dense(&t(&p[0])?),
                    self.mode,
                    ct_scale.as_ref().zip(g.map(|g| g.0)),
                )?,
                _ => ops::zeros_like(&p[i])?,
            });
        }
        Ok(out)
    }
    fn jvp(&self, _p: &[Array], _t: &[Array], _a: &[usize], _o: &[Array]) -> Result<Vec<Array>> {
        Err(crate::runtime_err!("QQMM::jvp NYI"))
    }
    /// Batched `x` alone (2-d weights): its rows are folded into the product's. Anything
    /// else: one product per batch entry, stacked.
    fn vmap(&self, x: &[Array], ax: &[Option<usize>], _o: &[OutputSpec]) -> Result<Batched> {
        if ax[1..].iter().all(|a| a.is_none()) && x[1].ndim() == 2 {
            let xf = batching::to_front(&x[0], ax[0])?;
            let k = xf.shape()[xf.ndim() - 1] as i64;
            let mut inputs = x.to_vec();
            inputs[0] = ops::reshape(&xf, &[-1, k])?;
            let y = self.node(inputs);
            let mut shape: Vec<i64> = xf.shape().iter().map(|&d| d as i64).collect();
            let nd = shape.len();
            shape[nd - 1] = y.shape()[1] as i64;
            return batching::at_front(ops::reshape(&y, &shape)?);
        }
        let n = batching::batch_size(x, ax);
        let mut ys = Vec::with_capacity(n);
        for b in 0..n {
            let idx = Array::scalar_of(Scalar::Int(b as i64), Dtype::Int32)?;
            let inputs = x
                .iter()
                .zip(ax)
                .map(|(a, &axis)| match axis {
                    Some(axis) => ops::take(a, &idx, Some(axis as i64)),
                    None => Ok(a.clone()),
                })
                .collect::<Result<Vec<_>>>()?;
            ys.push(self.node(inputs));
        }
        batching::at_front(ops::stack(&ys, 0)?)
    }
    crate::primitive_common!();
}
