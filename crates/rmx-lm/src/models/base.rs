//! Pieces shared by the model families: attention with RoPE and a KV cache, the gated MLP,
//! and the per-family options that switch them.

use crate::cache::KvCache;
use crate::config::{ModelArgs, RopeStyle};
use crate::error::Result;
use crate::kernels;
use crate::layers::{Linear, RmsNorm};
use crate::weights::Weights;
use rmx_core::{ops, Array};

/// RoPE's inverse frequencies for a head of `dims` features, with Llama-3 scaling.
pub fn rope_inv_freq(args: &ModelArgs, dims: usize, base: f32) -> Vec<f32> {
    let mut inv: Vec<f32> = (0..dims / 2)
        .map(|i| 1.0 / base.powf((2 * i) as f32 / dims as f32) / args.rope_linear_factor)
        .collect();
    if let Some((factor, low, high, original)) = args.rope_llama3 {
        let low_wavelen = original / low;
        let high_wavelen = original / high;
        for f in inv.iter_mut() {
            let wavelen = 2.0 * std::f32::consts::PI / *f;
            if wavelen > low_wavelen {
                *f /= factor;
            } else if wavelen >= high_wavelen {
                let smooth = (original / wavelen - low) / (high - low);
                *f = (1.0 - smooth) * *f / factor + smooth * *f;
            }
        }
    }
    inv
}

pub struct Attention {
    pub q_proj: Linear,
    pub k_proj: Linear,
    pub v_proj: Linear,
    pub o_proj: Linear,
    /// q, k and v in one product (`Linear::fuse_rows`) when their formats allow.
    pub qkv_proj: Option<Linear>,
    pub q_norm: Option<RmsNorm>,
    pub k_norm: Option<RmsNorm>,
    pub num_heads: usize,
    pub num_kv_heads: usize,
    pub head_dim: usize,
    pub scale: f32,
    /// RoPE periods (MLX's `freqs`) and the number of rotated features.
    pub rope_freqs: Array,
    pub rope_dims: usize,
    pub adjacent: bool,
}

impl Attention {
    pub fn load(w: &Weights, prefix: &str, args: &ModelArgs) -> Result<Attention> {
        let p = |n: &str| format!("{prefix}.{n}");
        let norm = |n: &str| -> Result<Option<RmsNorm>> {
            if args.qk_norm {
                Ok(Some(RmsNorm::load(w, &p(n), args.norm_eps)?))
            } else {
                Ok(None)
            }
        };
        let rope_dims = ((args.head_dim as f32 * args.partial_rotary_factor) as usize) & !1;
        let mut q_proj = Linear::load(w, &p("q_proj"))?;
        let mut k_proj = Linear::load(w, &p("k_proj"))?;
        let mut v_proj = Linear::load(w, &p("v_proj"))?;
        let qkv_proj = Linear::fuse_rows(&mut [&mut q_proj, &mut k_proj, &mut v_proj])?;
        Ok(Attention {
            q_proj,
            k_proj,
            v_proj,
            qkv_proj,
            o_proj: Linear::load(w, &p("o_proj"))?,
            q_norm: norm("q_norm")?,
            k_norm: norm("k_norm")?,
            num_heads: args.num_heads,
            num_kv_heads: args.num_kv_heads,
            head_dim: args.head_dim,
            scale: 1.0 / (args.head_dim as f32).sqrt(),
            rope_freqs: kernels::rope_freqs(&rope_inv_freq(args, rope_dims, args.rope_theta))?,
            rope_dims,
            adjacent: args.rope_style == RopeStyle::Adjacent,
        })
    }

    /// x (B, L, hidden) -> (B, L, hidden), appending this step's keys/values to `cache`.
    pub fn forward(&self, x: &Array, cache: &mut KvCache) -> Result<Array> {
        let heads = self.project(x, cache)?;
        self.attend(heads, cache)
    }

    /// Attention of `project`'s queries over its keys and values, through `o_proj`.
    fn attend(&self, (q, keys, values): (Array, Array, Array), cache: &KvCache) -> Result<Array> {
        let o = kernels::attention(&q, &keys, &values, self.scale, true, cache.fixed_mask())?;
        self.output(&o)
    }

    /// Queries (B, Hq, L, D) after RoPE, and every key and value (B, Hkv, S, D) they
    /// attend to, this step's appended to `cache`.
    pub fn project(&self, x: &Array, cache: &mut KvCache) -> Result<(Array, Array, Array)> {
        let (b, l) = (x.shape()[0] as i64, x.shape()[1] as i64);
        // (B, L, H, D) -> (B, H, L, D), through the per-head norm when there is one
        let norm_t = |y: Array, norm: &Option<RmsNorm>| -> Result<Array> {
            let y = match norm {
                Some(nm) => nm.forward(&y)?,
                None => y,
            };
            Ok(ops::transpose(&y, Some(&[0, 2, 1, 3]))?)
        };
        let heads = |y: Array, n: usize, norm: &Option<RmsNorm>| -> Result<Array> {
            norm_t(
                ops::reshape(&y, &[b, l, n as i64, self.head_dim as i64])?,
                norm,
            )
        };
        let offset = cache.rope_offset()?;
        let rope =
            |x: &Array| kernels::rope(x, &self.rope_freqs, self.rope_dims, self.adjacent, &offset);
        let (q, k, v) = match &self.qkv_proj {
            Some(qkv) if self.q_norm.is_none() && self.k_norm.is_none() => {
                return self.heads_from_qkv(&qkv.forward(x)?, cache);
            }
            Some(qkv) => {
                // (B, L, Hq + 2 Hkv, D), split along the heads (views)
                let (hq, hkv) = (self.num_heads as i64, self.num_kv_heads as i64);
                let all = ops::reshape(&qkv.forward(x)?, &[b, l, hq + 2 * hkv, -1])?;
                let part = |from: i64, n: i64| -> Result<Array> {
                    let d = self.head_dim as i64;
                    Ok(ops::slice(
                        &all,
                        &[0, 0, from, 0],
                        &[b, l, from + n, d],
                        None,
                    )?)
                };
                (
                    norm_t(part(0, hq)?, &self.q_norm)?,
                    norm_t(part(hq, hkv)?, &self.k_norm)?,
                    norm_t(part(hq + hkv, hkv)?, &None)?,
                )
            }
            None => (
                heads(self.q_proj.forward(x)?, self.num_heads, &self.q_norm)?,
                heads(self.k_proj.forward(x)?, self.num_kv_heads, &self.k_norm)?,
                heads(self.v_proj.forward(x)?, self.num_kv_heads, &None)?,
            ),
        };
        let (q, k) = (rope(&q)?, rope(&k)?);
        let (keys, values) = cache.update(&k, &v)?;
        Ok((q, keys, values))
    }

    /// `project` from the fused q|k|v product `y` (B, L, (Hq + 2 Hkv) D) of a layer
    /// without q/k norms.
    fn heads_from_qkv(&self, y: &Array, cache: &mut KvCache) -> Result<(Array, Array, Array)> {
        let (b, l) = (y.shape()[0] as i64, y.shape()[1] as i64);
        let (hq, hkv) = (self.num_heads as i64, self.num_kv_heads as i64);
        let d = self.head_dim as i64;
        let all = ops::reshape(y, &[b, l, hq + 2 * hkv, -1])?;
        // a fixed decode step: RoPE and both cache writes in one op
        let heads = (self.num_heads, self.num_kv_heads);
        let fused = cache.update_fixed_with(all.dtype(), |kc, vc, pos| {
            let (f, dims) = (&self.rope_freqs, self.rope_dims);
            kernels::rope_kv_update(&all, kc, vc, heads, f, dims, self.adjacent, pos)
        })?;
        if let Some(out) = fused {
            return Ok(out);
        }
        // q and k heads are neighbours in the fused product: one RoPE over both (one
        // kernel instead of two; each head's rotation is the same either way)
        let part = |from: i64, n: i64| -> Result<Array> {
            let p = ops::slice(&all, &[0, 0, from, 0], &[b, l, from + n, d], None)?;
            Ok(ops::transpose(&p, Some(&[0, 2, 1, 3]))?)
        };
        let offset = cache.rope_offset()?;
        let qk = kernels::rope(
            &part(0, hq + hkv)?,
            &self.rope_freqs,
            self.rope_dims,
            self.adjacent,
            &offset,
        )?;
        let q = ops::slice(&qk, &[0, 0, 0, 0], &[b, hq, l, d], None)?;
        let k = ops::slice(&qk, &[0, hq, 0, 0], &[b, hq + hkv, l, d], None)?;
        let (keys, values) = cache.update(&k, &part(hq + hkv, hkv)?)?;
        Ok((q, keys, values))
    }

    /// The block from its input before `norm`: the residual stream `h` and the previous
    /// block's output `branch` not yet added. Returns `(h + branch, attention output)`; the
    /// add, the norm and the q|k|v product are one op where `rms_norm_linear` applies.
    pub fn forward_prenorm(
        &self,
        h: &Array,
        branch: Option<&Array>,
        norm: &RmsNorm,
        cache: &mut KvCache,
    ) -> Result<(Array, Array)> {
        if let (Some(qkv), None, None) = (&self.qkv_proj, &self.q_norm, &self.k_norm) {
            if let Some((h, y)) = kernels::rms_norm_linear(h, branch, norm, qkv, false)? {
                let heads = self.heads_from_qkv(&y, cache)?;
                return Ok((h, self.attend(heads, cache)?));
            }
        }
        let (h, normed) = norm.forward_residual(h, branch)?;
        let a = self.forward(&normed, cache)?;
        Ok((h, a))
    }

    /// The heads' outputs (B, Hq, L, D) -> (B, L, hidden) through `o_proj`.
    pub fn output(&self, o: &Array) -> Result<Array> {
        let (b, l) = (o.shape()[0] as i64, o.shape()[2] as i64);
        let o = ops::reshape(&ops::transpose(o, Some(&[0, 2, 1, 3]))?, &[b, l, -1])?;
        self.o_proj.forward(&o)
    }
}

/// The gated feed-forward block: down(act(gate(x)) * up(x)).
pub struct Mlp {
    pub gate_proj: Linear,
    pub up_proj: Linear,
    pub down_proj: Linear,
    /// gate and up in one product (`Linear::fuse_rows`) when their formats allow.
    pub gate_up_proj: Option<Linear>,
    /// Gemma uses tanh-approximated GELU instead of SiLU.
    pub gelu: bool,
}

impl Mlp {
    pub fn load(w: &Weights, prefix: &str, gelu: bool) -> Result<Mlp> {
        let mut gate_proj = Linear::load(w, &format!("{prefix}.gate_proj"))?;
        let mut up_proj = Linear::load(w, &format!("{prefix}.up_proj"))?;
        let gate_up_proj = Linear::fuse_rows(&mut [&mut gate_proj, &mut up_proj])?;
        Ok(Mlp {
            gate_proj,
            up_proj,
            down_proj: Linear::load(w, &format!("{prefix}.down_proj"))?,
            gate_up_proj,
            gelu,
        })
    }

    pub fn forward(&self, x: &Array) -> Result<Array> {
        // SiLU gating inside the gate/up product: one op (one kernel on a GPU for a token)
        if let (Some(gu), false) = (&self.gate_up_proj, self.gelu) {
            if let Some(hidden) = kernels::swiglu_linear(x, gu)? {
                return self.down_proj.forward(&hidden);
            }
        }
        let (g, u) = match &self.gate_up_proj {
            Some(gu) => {
                // (..., 2F): the two halves, as views
                let y = gu.forward(x)?;
                let shape: Vec<i64> = y.shape().iter().map(|&d| d as i64).collect();
                let (nd, f) = (shape.len(), shape[shape.len() - 1] / 2);
                let (mut lo, mut hi) = (vec![0i64; nd], shape.clone());
                hi[nd - 1] = f;
                let g = ops::slice(&y, &lo, &hi, None)?;
                lo[nd - 1] = f;
                hi[nd - 1] = 2 * f;
                (g, ops::slice(&y, &lo, &hi, None)?)
            }
            None => (self.gate_proj.forward(x)?, self.up_proj.forward(x)?),
        };
        let hidden = if self.gelu {
            ops::multiply(&gelu_approx(&g)?, &u)?
        } else {
            kernels::silu_mul(&g, &u)?
        };
        self.down_proj.forward(&hidden)
    }

    /// The block from its input before `norm` (see `Attention::forward_prenorm`): returns
    /// `(h + branch, output)`; the add, the norm and the gated gate/up product are one op
    /// where `rms_norm_linear` applies.
    pub fn forward_prenorm(
        &self,
        h: &Array,
        branch: Option<&Array>,
        norm: &RmsNorm,
    ) -> Result<(Array, Array)> {
        if let (Some(gu), false) = (&self.gate_up_proj, self.gelu) {
            if let Some((h, hidden)) = kernels::rms_norm_linear(h, branch, norm, gu, true)? {
                return Ok((h, self.down_proj.forward(&hidden)?));
            }
        }
        let (h, normed) = norm.forward_residual(h, branch)?;
        let y = self.forward(&normed)?;
        Ok((h, y))
    }
}

/// 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
pub fn gelu_approx(x: &Array) -> Result<Array> {
    let c = |v: f64| ops::astype(&Array::scalar(v), x.dtype());
    let inner = ops::multiply(
        &c((2.0 / std::f64::consts::PI).sqrt())?,
        &ops::add(x, &ops::multiply(&c(0.044715)?, &ops::power(x, &c(3.0)?)?)?)?,
    )?;
    let t = ops::add(&c(1.0)?, &ops::tanh(&inner)?)?;
    Ok(ops::multiply(&ops::multiply(&c(0.5)?, x)?, &t)?)
}
