//! `Fft`: the discrete Fourier transform over a set of axes (complex, real-to-complex or
//! complex-to-real), with its normalisation folded in as `scale`. The op layer has already
//! padded or truncated the input. Derivatives are adjoint transforms (MLX's convention:
//! the vjp of a linear map is its conjugate transpose).

use super::one;
use crate::array::{Array, ArrayData};
use crate::backend::Backend;
use crate::dtype::Dtype;
use crate::error::Result;
use crate::ops;
use crate::primitive::{OutputSpec, Primitive};
use crate::shape::Shape;
use std::sync::Arc;

#[derive(Debug, PartialEq, Clone)]
pub struct Fft {
    pub axes: Vec<usize>,
    pub inverse: bool,
    pub real: bool,
    pub scale: f64,
    /// The output length of the last axis of an inverse real transform (else unused).
    pub n: usize,
}

impl Fft {
    /// The transform of `x`, already of the input dtype (float32 for a forward real
    /// transform, else complex64) and padded or truncated.
    pub fn apply(&self, x: &Array) -> Array {
        self.node(x, self.out_shape(x.shape()))
    }

    fn node(&self, x: &Array, shape: Shape) -> Array {
        let dtype = if self.real && self.inverse {
            Dtype::Float32
        } else {
            Dtype::Complex64
        };
        Array::from_op(shape, dtype, Arc::new(self.clone()), vec![x.clone()])
    }

    fn last(&self) -> usize {
        *self.axes.last().expect("an fft has axes")
    }

    fn out_shape(&self, shape: &[usize]) -> Shape {
        let mut s: Shape = shape.into();
        if self.real {
            let l = self.last();
            s[l] = if self.inverse {
                self.n
            } else {
                shape[l] / 2 + 1
            };
        }
        s
    }
}

impl Primitive for Fft {
    fn name(&self) -> &'static str {
        "FFT"
    }
    fn eval(
        &self,
        b: &dyn Backend,
        inputs: &[ArrayData],
        out: &[OutputSpec],
    ) -> Result<Vec<ArrayData>> {
        let scale = self.scale as f32;
        one(b.fft(
            &inputs[0],
            &self.axes,
            self.inverse,
            self.real,
            &out[0].shape,
            scale,
        )?)
    }
    fn vjp(&self, p: &[Array], ct: &[Array], _a: &[usize], _o: &[Array]) -> Result<Vec<Array>> {
        let x = &p[0];
        let g = &ct[0];
        let adjoint = Fft {
            inverse: !self.inverse,
            real: false,
            ..self.clone()
        };
        Ok(vec![match (self.real, self.inverse) {
            (false, _) => {
                let gc = ops::astype(g, Dtype::Complex64)?;
                adjoint.node(&gc, g.shape().into())
            }
            (true, false) => {
                // zero the dropped negative frequencies back in, then the real part
                let l = self.last();
                let mut widths = vec![(0i64, 0i64); g.ndim()];
                widths[l].1 = (x.shape()[l] - g.shape()[l]) as i64;
                let padded = ops::pad(
                    &ops::astype(g, Dtype::Complex64)?,
                    &widths,
                    "constant",
                    crate::Scalar::Float(0.0),
                )?;
                ops::real(&adjoint.node(&padded, x.shape().into()))?
            }
            (true, true) => {
                // each bin but DC (and Nyquist for even n) stands for two outputs
                let forward = Fft {
                    inverse: false,
                    ..self.clone()
                };
                let gr = ops::astype(g, Dtype::Float32)?;
                let spectrum = forward.apply(&gr);
                let l = self.last();
                let (m, n) = (x.shape()[l], self.n);
                let weights: Vec<f32> = (0..m)
                    .map(|k| if k == 0 || 2 * k == n { 1.0 } else { 2.0 })
                    .collect();
                let mut wshape = vec![1usize; g.ndim()];
                wshape[l] = m;
                ops::multiply(&spectrum, &Array::from_slice(&weights, &wshape)?)?
            }
        }])
    }
    fn jvp(&self, p: &[Array], t: &[Array], _a: &[usize], out: &[Array]) -> Result<Vec<Array>> {
        let dtype = if self.real && !self.inverse {
            Dtype::Float32
        } else {
            Dtype::Complex64
        };
        let _ = (p, out);
        Ok(vec![self.apply(&ops::astype(&t[0], dtype)?)])
    }
    fn vmap(
        &self,
        inputs: &[Array],
        axes: &[Option<usize>],
        _outputs: &[OutputSpec],
    ) -> Result<(Vec<Array>, Vec<Option<usize>>)> {
        let prim = match axes[0] {
            Some(b) => Fft {
                axes: self
                    .axes
                    .iter()
                    .map(|&a| if a >= b { a + 1 } else { a })
                    .collect(),
                ..self.clone()
            },
            None => self.clone(),
        };
        Ok((vec![prim.apply(&inputs[0])], vec![axes[0]]))
    }
    crate::primitive_common!();
}
