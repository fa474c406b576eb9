//! The layers LLMs are built from, over float or affine-quantized weights.

use crate::config::QuantConfig;
use crate::error::Result;
use crate::kernels;
use crate::weights::Weights;
use rmx_core::{ops, Array, Dtype};

/// The float type models compute in: float32 (the default, and what the CPU backend is
/// fastest in) or a half type on the GPU. Set once, before loading, by the command line.
static COMPUTE_DTYPE: std::sync::OnceLock<Dtype> = std::sync::OnceLock::new();

pub fn set_compute_dtype(dtype: Dtype) {
    let _ = COMPUTE_DTYPE.set(dtype);
}

pub fn compute_dtype() -> Dtype {
    *COMPUTE_DTYPE.get().unwrap_or(&Dtype::Float32)
}

/// `a` in the compute type, computed now: converting at load keeps a per-call cast out
/// of every forward pass.
fn f32(a: Array) -> Result<Array> {
    let dtype = compute_dtype();
    if a.dtype() == dtype {
        return Ok(a);
    }
    let a = ops::astype(&a, dtype)?;
    rmx_core::eval(std::slice::from_ref(&a))?;
    Ok(a)
}

/// A packed affine-quantized matrix (MLX's format): rows of `bits`-bit codes in uint32
/// words, one scale and bias per `group_size` codes.
#[derive(Clone)]
pub struct Quantized {
    pub weight: Array,
    pub scales: Array,
    pub biases: Array,
    pub config: QuantConfig,
}

impl Quantized {
    fn load(w: &Weights, prefix: &str) -> Result<Option<Quantized>> {
        let Some(scales) = w.opt(&format!("{prefix}.scales")) else {
            return Ok(None);
        };
        let config = w.quant_of(prefix)?;
        let biases = w.get(&format!("{prefix}.biases"))?;
        // The kernels compute in the activations' type: convert scales and biases once here
        // instead of on every call, unless the CPU's decode kernel reads them as they are
        // (then half-precision scales also halve their bytes read per token).
        let native = compute_dtype() == Dtype::Float32
            && matches!(scales.dtype(), Dtype::Float16 | Dtype::Bfloat16)
            && biases.dtype() == scales.dtype()
            && rmx_core::device::default_device() == rmx_core::Device::CPU
            && rmx_core::backend::cpu::decode_reads_half_scales(config.group_size, config.bits);
        let (scales, biases) = if native {
            (scales, biases)
        } else {
            (f32(scales)?, f32(biases)?)
        };
        Ok(Some(Quantized {
            weight: w.get(&format!("{prefix}.weight"))?,
            biases,
            config,
            scales,
        }))
    }

    /// x @ W.T without materializing W.
    pub fn matmul_t(&self, x: &Array) -> Result<Array> {
        let y = kernels::quantized_matmul(
            x,
            &self.weight,
            &self.scales,
            &self.biases,
            self.config.group_size,
            self.config.bits,
        )?;
        Ok(ops::astype(&y, x.dtype())?)
    }

    /// Rows `ids` of W, as floats of `dtype`.
    pub fn rows(&self, ids: &Array, dtype: Dtype) -> Result<Array> {
        let take = |a: &Array| ops::take(a, ids, Some(0));
        // dequantize computes in the scales' type: the rows' scales go to `dtype` first, so
        // half-precision scales kept for the decode kernel give the same values as before
        let take_as = |a: &Array| ops::astype(&take(a)?, dtype);
        kernels::dequantize(
            &take(&self.weight)?,
            &take_as(&self.scales)?,
            &take_as(&self.biases)?,
            self.config.group_size,
            self.config.bits,
            dtype,
        )
    }
}

/// `y = x W^T + b`, with W float or quantized.
#[derive(Clone)]
pub enum Linear {
    Dense { weight: Array, bias: Option<Array> },
    Quantized { q: Quantized, bias: Option<Array> },
}

impl Linear {
    pub fn load(w: &Weights, prefix: &str) -> Result<Linear> {
        let bias = w.opt(&format!("{prefix}.bias"));
        Ok(match Quantized::load(w, prefix)? {
            Some(q) => Linear::Quantized { q, bias },
            None => Linear::Dense {
                weight: f32(w.get(&format!("{prefix}.weight"))?)?,
                bias,
            },
        })
    }

    pub fn forward(&self, x: &Array) -> Result<Array> {
        let (y, bias) = match self {
            Linear::Dense { weight, bias } => {
                let wt = ops::transpose(&ops::astype(weight, x.dtype())?, None)?;
                (ops::matmul(x, &wt)?, bias)
            }
            Linear::Quantized { q, bias } => (q.matmul_t(x)?, bias),
        };
        match bias {
            Some(b) => Ok(ops::add(&y, &ops::astype(b, x.dtype())?)?),
            None => Ok(y),
        }
    }
}

/// Rows `start..stop` of `a` (axis 0).
fn rows_of(a: &Array, start: usize, stop: usize) -> Result<Array> {
    let mut lo = vec![0i64; a.ndim()];
    let mut hi: Vec<i64> = a.shape().iter().map(|&d| d as i64).collect();
    lo[0] = start as i64;
    hi[0] = stop as i64;
    Ok(ops::slice(a, &lo, &hi, None)?)
}

impl Linear {
    /// The arrays of this layer (weights, then scales and biases when quantized, then
    /// the bias), and a key that is equal for layers whose arrays stack by rows.
    fn parts(&self) -> (Vec<&Array>, String) {
        match self {
            Linear::Dense { weight, bias } => {
                let mut a = vec![weight];
                a.extend(bias.as_ref());
                let key = format!("dense {} {}", weight.dtype(), bias.is_some());
                (a, key)
            }
            Linear::Quantized { q, bias } => {
                let mut a = vec![&q.weight, &q.scales, &q.biases];
                a.extend(bias.as_ref());
                let key = format!(
                    "q {:?} {} {} {}",
                    q.config,
                    q.scales.dtype(),
                    q.biases.dtype(),
                    bias.is_some()
                );
                (a, key)
            }
        }
    }

    /// The same layer with every array replaced by `f(array)`.
    fn map(&self, mut f: impl FnMut(&Array) -> Result<Array>) -> Result<Linear> {
        let bias = |b: &Option<Array>, f: &mut dyn FnMut(&Array) -> Result<Array>| {
            b.as_ref().map(f).transpose()
        };
        Ok(match self {
            Linear::Dense { weight, bias: b } => Linear::Dense {
                weight: f(weight)?,
                bias: bias(b, &mut f)?,
            },
            Linear::Quantized { q, bias: b } => Linear::Quantized {
                q: Quantized {
                    weight: f(&q.weight)?,
                    scales: f(&q.scales)?,
                    biases: f(&q.biases)?,
                    config: q.config,
                },
                bias: bias(b, &mut f)?,
            },
        })
    }

    /// One layer whose output is the outputs of `layers` side by side (their weights
    /// stacked by rows), when they share a format; `layers` then become row views of
    /// it, so the weights are not held twice. One product instead of several per step:
    /// fewer graph nodes and kernel calls, the same value for every output.
    pub fn fuse_rows(layers: &mut [&mut Linear]) -> Result<Option<Linear>> {
        let keys: Vec<String> = layers.iter().map(|l| l.parts().1).collect();
        if layers.len() < 2 || keys.iter().any(|k| *k != keys[0]) {
            return Ok(None);
        }
        let stacked: Vec<Vec<Array>> = {
            let parts: Vec<Vec<&Array>> = layers.iter().map(|l| l.parts().0).collect();
            (0..parts[0].len())
                .map(|i| parts.iter().map(|p| p[i].clone()).collect())
                .collect()
        };
        let mut fused_arrays = Vec::with_capacity(stacked.len());
        for arrays in &stacked {
            let a = ops::concatenate(arrays, Some(0))?;
            rmx_core::eval(std::slice::from_ref(&a))?;
            fused_arrays.push(a);
        }
        let mut next = fused_arrays.iter();
        let fused = layers[0].map(|_| Ok(next.next().expect("one per part").clone()))?;
        let mut start = vec![0usize; stacked.len()];
        for layer in layers.iter_mut() {
            let mut i = 0;
            let view = layer.map(|a| {
                let (lo, n) = (start[i], a.shape()[0]);
                start[i] += n;
                let v = rows_of(&fused_arrays[i], lo, lo + n)?;
                i += 1;
                Ok(v)
            })?;
            let views: Vec<Array> = view.parts().0.into_iter().cloned().collect();
            rmx_core::eval(&views)?;
            **layer = view;
        }
        Ok(Some(fused))
    }
}

/// A token embedding table, float or quantized; `as_linear` gives tied output logits.
#[derive(Clone)]
pub struct Embedding(pub Linear);

impl Embedding {
    pub fn load(w: &Weights, prefix: &str) -> Result<Embedding> {
        Ok(Embedding(Linear::load(w, prefix)?))
    }

    /// Embeddings of `ids` (any shape) as `dtype`.
    pub fn forward(&self, ids: &Array, dtype: Dtype) -> Result<Array> {
        let flat = ops::flatten(ids, 0, -1)?;
        let rows = match &self.0 {
            Linear::Dense { weight, .. } => {
                ops::astype(&ops::take(weight, &flat, Some(0))?, dtype)?
            }
            Linear::Quantized { q, .. } => q.rows(&flat, dtype)?,
        };
        let mut shape: Vec<i64> = ids.shape().iter().map(|&v| v as i64).collect();
        shape.push(-1);
        Ok(ops::reshape(&rows, &shape)?)
    }

    /// Logits `x E^T` (tied embeddings).
    pub fn as_linear(&self, x: &Array) -> Result<Array> {
        self.0.forward(x)
    }
}

/// Root-mean-square normalization with a learned scale.
#[derive(Clone)]
pub struct RmsNorm {
    pub weight: Array,
    pub eps: f32,
}

impl RmsNorm {
    pub fn load(w: &Weights, prefix: &str, eps: f32) -> Result<RmsNorm> {
        Ok(RmsNorm {
            weight: f32(w.get(&format!("{prefix}.weight"))?)?,
            eps,
        })
    }

    /// Gemma's norms scale by (1 + w): fold the 1 in once at load time, in the weight's
    /// own type as mlx-lm's `1.0 + self.weight` does.
    pub fn load_offset(w: &Weights, prefix: &str, eps: f32) -> Result<RmsNorm> {
        let weight = w.get(&format!("{prefix}.weight"))?;
        let one = ops::ones_like(&weight)?;
        let weight = f32(ops::add(&weight, &one)?)?;
        rmx_core::eval(std::slice::from_ref(&weight))?;
        Ok(RmsNorm { weight, eps })
    }

    pub fn forward(&self, x: &Array) -> Result<Array> {
        kernels::rms_norm(x, &ops::astype(&self.weight, x.dtype())?, self.eps)
    }

    /// The residual stream `h` with `branch` (a block's output not yet added) added, and
    /// its norm: `(h + branch, norm(h + branch))`, one kernel on the GPU.
    pub fn forward_residual(&self, h: &Array, branch: Option<&Array>) -> Result<(Array, Array)> {
        match branch {
            None => Ok((h.clone(), self.forward(h)?)),
            Some(b) => {
                kernels::add_rms_norm(h, b, &ops::astype(&self.weight, h.dtype())?, self.eps)
            }
        }
    }
}
