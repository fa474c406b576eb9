//! Quantization primitives: affine `Quantize` (one input, three outputs) and `Dequantize`,
//! and `QuantizedMatmul` of every mode (the fp modes' quantize/dequantize are compositions,
//! `ops/quantized_fp.rs`). Derivatives follow MLX 0.32.4: none through the packed weights
//! (zeros for `dequantize`, an error for `quantized_matmul`), the product's rules for `x`,
//! group sums for affine scales and biases (fp scales raise); `quantize` differentiates
//! its scale/bias formulas.

use super::batching::{self, Batched};
use crate::array::{Array, ArrayData};
use crate::backend::{Backend, QuantizeOp};
use crate::dtype::Dtype;
use crate::error::Result;
use crate::ops;
use crate::ops::quantized_fp::QuantMode;
use crate::primitive::{OutputSpec, Primitive};
use std::sync::Arc;

/// Float rows of the last axis to `[wq (uint32), scales, biases]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Quantize {
    pub group_size: usize,
    pub bits: usize,
}

impl Quantize {
    pub fn nodes(&self, w: &Array) -> Vec<Array> {
        let nd = w.ndim();
        let k = w.shape()[nd - 1];
        let mut q = w.shape().to_vec();
        q[nd - 1] = k * self.bits / 32;
        let mut s = w.shape().to_vec();
        s[nd - 1] = k / self.group_size;
        Array::from_multi_op(
            vec![
                (q.into(), Dtype::Uint32),
                (s.clone().into(), w.dtype()),
                (s.into(), w.dtype()),
            ],
            Arc::new(self.clone()),
            vec![w.clone()],
        )
    }
}

impl Primitive for Quantize {
    fn name(&self) -> &'static str {
        "Quantize"
    }
    fn eval(&self, b: &dyn Backend, x: &[ArrayData], _o: &[OutputSpec]) -> Result<Vec<ArrayData>> {
        b.quantize(QuantizeOp::Quantize, x, self.group_size, self.bits)
    }
    /// Through the scale and bias formulas only (`quantize_grad.rs`), as MLX.
    fn vjp(&self, p: &[Array], ct: &[Array], _a: &[usize], _o: &[Array]) -> Result<Vec<Array>> {
        let g =
            super::quantize_grad::quantize_vjp(&p[0], &ct[1], &ct[2], self.group_size, self.bits)?;
        Ok(vec![g])
    }
    fn jvp(&self, _p: &[Array], _t: &[Array], _a: &[usize], _o: &[Array]) -> Result<Vec<Array>> {
        Err(crate::value_err!(
            "[quantize] The jvp of quantize is not supported in rmx."
        ))
    }
    fn vmap(&self, x: &[Array], ax: &[Option<usize>], _o: &[OutputSpec]) -> Result<Batched> {
        let w = batching::to_front(&x[0], ax[0])?;
        Ok((self.nodes(&w), vec![Some(0); 3]))
    }
    crate::primitive_common!();
}

/// `[wq, scales, biases]` (equal batch shapes) to `q * scale + bias` computed in `dtype`,
/// the promoted type of scales and biases.
#[derive(Clone, Debug, PartialEq)]
pub struct Dequantize {
    pub group_size: usize,
    pub bits: usize,
    pub dtype: Dtype,
}

impl Dequantize {
    pub fn node(&self, wq: &Array, scales: &Array, biases: &Array) -> Array {
        let mut shape = wq.shape().to_vec();
        let nd = shape.len();
        shape[nd - 1] = shape[nd - 1] * 32 / self.bits;
        Array::from_op(
            shape.into(),
            self.dtype,
            Arc::new(self.clone()),
            vec![wq.clone(), scales.clone(), biases.clone()],
        )
    }
}

/// The quantized values of `wq` as `dtype` (scale 1, bias 0).
fn levels(
    wq: &Array,
    scales_shape: &[usize],
    group_size: usize,
    bits: usize,
    dtype: Dtype,
) -> Result<Array> {
    let shape: Vec<i64> = scales_shape.iter().map(|&d| d as i64).collect();
    let one = ops::ones(&shape, dtype)?;
    let zero = ops::zeros(&shape, dtype)?;
    Ok(Dequantize {
        group_size,
        bits,
        dtype,
    }
    .node(wq, &one, &zero))
}

/// Sums of `x` `[..., K]` over groups of `group_size` along the last axis: `[..., K / gs]`.
fn group_sums(x: &Array, group_size: usize) -> Result<Array> {
    let mut shape: Vec<i64> = x.shape().iter().map(|&d| d as i64).collect();
    let k = shape.pop().unwrap_or(0);
    shape.push(k / group_size as i64);
    shape.push(group_size as i64);
    ops::sum(&ops::reshape(x, &shape)?, Some(&[-1]), false)
}

/// `x` `[..., G]` repeated `group_size` times along the last axis: `[..., G * gs]`.
fn expand_groups(x: &Array, group_size: usize) -> Result<Array> {
    let mut shape: Vec<usize> = x.shape().to_vec();
    shape.push(group_size);
    let e = ops::broadcast_to(&ops::expand_dims(x, &[-1])?, &shape)?;
    let mut flat: Vec<i64> = x.shape().iter().map(|&d| d as i64).collect();
    let last = flat.len() - 1;
    flat[last] *= group_size as i64;
    ops::reshape(&e, &flat)
}

/// Cotangents of scales and biases given the cotangent `dw` of the dequantized matrix.
fn scale_bias_grads(
    dw: &Array,
    wq: &Array,
    scales: &Array,
    biases: &Array,
    group_size: usize,
    bits: usize,
    of_scales: bool,
) -> Result<Array> {
    if of_scales {
        let q = levels(wq, scales.shape(), group_size, bits, dw.dtype())?;
        let g = group_sums(&ops::multiply(dw, &q)?, group_size)?;
        ops::astype(&g, scales.dtype())
    } else {
        ops::astype(&group_sums(dw, group_size)?, biases.dtype())
    }
}

impl Primitive for Dequantize {
    fn name(&self) -> &'static str {
        "Dequantize"
    }
    fn eval(&self, b: &dyn Backend, x: &[ArrayData], _o: &[OutputSpec]) -> Result<Vec<ArrayData>> {
        let op = QuantizeOp::Dequantize(self.dtype);
        b.quantize(op, x, self.group_size, self.bits)
    }
    /// None through the packed integers (zeros, as MLX); group sums for scales and biases.
    fn vjp(
        &self,
        p: &[Array],
        ct: &[Array],
        argnums: &[usize],
        _o: &[Array],
    ) -> Result<Vec<Array>> {
        argnums
            .iter()
            .map(|&i| match i {
                0 => ops::zeros_like(&p[0]),
                _ => scale_bias_grads(
                    &ct[0],
                    &p[0],
                    &p[1],
                    &p[2],
                    self.group_size,
                    self.bits,
                    i == 1,
                ),
            })
            .collect()
    }
    fn jvp(&self, p: &[Array], t: &[Array], argnums: &[usize], o: &[Array]) -> Result<Vec<Array>> {
        let mut acc = ops::zeros_like(&o[0])?;
        for (&i, ti) in argnums.iter().zip(t) {
            let term = match i {
                0 => continue,
                1 => {
                    let q = levels(&p[0], p[1].shape(), self.group_size, self.bits, self.dtype)?;
                    ops::multiply(&expand_groups(ti, self.group_size)?, &q)?
                }
                _ => expand_groups(ti, self.group_size)?,
            };
            acc = ops::add(&acc, &ops::astype(&term, self.dtype)?)?;
        }
        Ok(vec![acc])
    }
    fn vmap(&self, x: &[Array], ax: &[Option<usize>], _o: &[OutputSpec]) -> Result<Batched> {
        let (xs, _) = batching::all_to_front(x, ax)?;
        batching::at_front(self.node(&xs[0], &xs[1], &xs[2]))
    }
    crate::primitive_common!();
}

/// `x @ dequantize(w).T` (`transpose`) or `x @ dequantize(w)` over equal batch shapes.
/// Affine: inputs `[x, w, scales, biases]`, x, scales and biases of the output's float
/// dtype (on the CPU, f16/bf16 scales and biases may come with f32 x, uncast). fp modes: inputs `[x, w, scales]` with uint8 scales; the output takes x's dtype.
#[derive(Clone, Debug, PartialEq)]
pub struct QuantizedMatmul {
    pub group_size: usize,
    pub bits: usize,
    pub transpose: bool,
    pub mode: QuantMode,
}

impl QuantizedMatmul {
    /// Inputs already checked, cast and broadcast by `ops::quantized_matmul`.
    pub fn node(&self, x: &Array, w: &Array, scales: &Array, biases: Option<&Array>) -> Array {
        let nd = x.ndim();
        let n = if self.transpose {
            w.shape()[nd - 2]
        } else {
            w.shape()[nd - 1] * 32 / self.bits
        };
        let mut shape = x.shape().to_vec();
        shape[nd - 1] = n;
        let mut inputs = vec![x.clone(), w.clone(), scales.clone()];
        inputs.extend(biases.cloned());
        Array::from_op(shape.into(), x.dtype(), Arc::new(self.clone()), inputs)
    }
}

impl Primitive for QuantizedMatmul {
    fn name(&self) -> &'static str {
        "QuantizedMatmul"
    }
    fn eval(&self, b: &dyn Backend, x: &[ArrayData], _o: &[OutputSpec]) -> Result<Vec<ArrayData>> {
        if self.mode != QuantMode::Affine {
            let y = b.fp_quantized_matmul(&x[0], &x[1], &x[2], self.mode, self.transpose)?;
            return Ok(vec![y]);
        }
        let y = b.quantized_matmul(
            &x[0],
            &x[1],
            &x[2],
            &x[3],
            self.group_size,
            self.bits,
            self.transpose,
        )?;
        Ok(vec![y])
    }
    fn vjp(
        &self,
        p: &[Array],
        ct: &[Array],
        argnums: &[usize],
        _o: &[Array],
    ) -> Result<Vec<Array>> {
        let (x, w, s, b) = (&p[0], &p[1], &p[2], p.get(3));
        let mut out = Vec::with_capacity(argnums.len());
        for &i in argnums {
            out.push(match i {
                0 => QuantizedMatmul {
                    transpose: !self.transpose,
                    ..self.clone()
                }
                .node(&ct[0], w, s, b),
                1 => {
                    return Err(crate::runtime_err!(
                        "[QuantizedMatmul::vjp] no gradient wrt the quantized weights."
                    ))
                }
                _ if self.mode != QuantMode::Affine => {
                    return Err(crate::value_err!(
                        "[QuantizedMatmul::vjp] no gradient wrt scales in {} quantization.",
                        self.mode.name()
                    ))
                }
                _ => {
                    let b = b.expect("affine biases");
                    // cotangent of the dequantized matrix, in w's orientation
                    let dw = if self.transpose {
                        ops::matmul(&ops::swapaxes(&ct[0], -1, -2)?, x)?
                    } else {
                        ops::matmul(&ops::swapaxes(x, -1, -2)?, &ct[0])?
                    };
                    // scales may be half precision under f32 activations
                    let g = scale_bias_grads(&dw, w, s, b, self.group_size, self.bits, i == 2)?;
                    ops::astype(&g, p[i].dtype())?
                }
            });
        }
        Ok(out)
    }
    fn jvp(&self, p: &[Array], t: &[Array], argnums: &[usize], _o: &[Array]) -> Result<Vec<Array>> {
        if argnums != [0] {
            return Err(crate::runtime_err!(
                "[QuantizedMatmul::jvp] No JVP wrt the quantized matrix yet."
            ));
        }
        Ok(vec![self.node(&t[0], &p[1], &p[2], p.get(3))])
    }
    /// Batched weights are stacked in front (x gains a broadcast batch axis); a batch of
    /// inputs alone is folded into `x`'s rows by the op.
    fn vmap(&self, x: &[Array], ax: &[Option<usize>], _o: &[OutputSpec]) -> Result<Batched> {
        let xf = batching::to_front(&x[0], ax[0])?;
        let y = if ax[1..].iter().all(|a| a.is_none()) {
            ops::quantized::quantized_matmul_checked(&xf, &x[1], &x[2], x.get(3), self)?
        } else {
            let (q, _) = batching::all_to_front(&x[1..], &ax[1..])?;
            let xb = if ax[0].is_some() {
                xf
            } else {
                ops::expand_dims(&xf, &[0])?
            };
            ops::quantized::quantized_matmul_checked(&xb, &q[0], &q[1], q.get(2), self)?
        };
        batching::at_front(y)
    }
    crate::primitive_common!();
}
