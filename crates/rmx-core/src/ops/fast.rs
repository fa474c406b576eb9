//! `fast`: fused ops with their own derivative rules, named as in `mlx.core.fast` —
//! rms_norm, layer_norm, rope and scaled_dot_product_attention. Each checks its
//! arguments as MLX does, casts the inputs to the result dtype and records one node.

use crate::array::Array;
use crate::backend::NormKind;
use crate::dtype::{promote_types, result_type, Dtype};
use crate::error::Result;
use crate::primitives::fast::attention::{Attention, MaskKind};
use crate::primitives::fast::norm::{AddRmsNorm, Norm};
use crate::primitives::fast::norm_linear::RmsNormLinear;
use crate::primitives::fast::rope::Rope;
use crate::primitives::fast::rope_kv::RopeKvUpdate;
use crate::primitives::fast::swiglu::SwigluLinear;
use crate::shape::{broadcast_shapes, shape_str};

use super::elementwise::astype;

/// `x` in `dtype` (no node when it already is).
fn cast(x: &Array, dtype: Dtype) -> Result<Array> {
    if x.dtype() == dtype {
        Ok(x.clone())
    } else {
        astype(x, dtype)
    }
}

/// Checks a 1-d `weight`/`bias` of the last axis' size.
fn check_affine(op: &str, what: &str, x: &Array, p: Option<&Array>) -> Result<()> {
    let Some(p) = p else { return Ok(()) };
    if p.ndim() != 1 {
        return Err(crate::value_err!(
            "[{op}] {what} must have 1 dimension but has {} dimensions.",
            p.ndim()
        ));
    }
    if p.size() != x.shape()[x.ndim() - 1] {
        return Err(crate::value_err!(
            "[{op}] {what} must have the same size as the last dimension of x but has {} elements.",
            p.size()
        ));
    }
    Ok(())
}

fn norm(
    op: &str,
    kind: NormKind,
    x: &Array,
    params: [(&str, Option<&Array>); 2],
    eps: f32,
) -> Result<Array> {
    if x.ndim() == 0 {
        return Err(crate::value_err!(
            "[{op}] Input must have at least 1 dimension but got input with 0 dimensions."
        ));
    }
    for (what, p) in params {
        check_affine(op, what, x, p)?;
    }
    // as MLX: without a weight the bias does not take part in the result type
    let mut dtypes = vec![x.dtype()];
    if params[0].1.is_some() {
        dtypes.extend(params.iter().filter_map(|(_, p)| p.map(|p| p.dtype())));
    }
    let out = result_type(&dtypes).expect("x is there");
    if !out.is_float() {
        return Err(crate::value_err!("[{op}] Received unsupported type {out}."));
    }
    let mut inputs = vec![cast(x, out)?];
    for p in params.iter().filter_map(|(_, p)| *p) {
        inputs.push(cast(p, out)?);
    }
    Ok(Norm {
        kind,
        eps,
        has_weight: params[0].1.is_some(),
        has_bias: params[1].1.is_some(),
    }
    .node(inputs))
}

/// Root-mean-square normalization over the last axis, times `weight` (1-d) if given.
pub fn rms_norm(x: &Array, weight: Option<&Array>, eps: f32) -> Result<Array> {
    norm(
        "rms_norm",
        NormKind::Rms,
        x,
        [("(*weight)", weight), ("bias", None)],
        eps,
    )
}

/// `(x + residual, rms_norm(x + residual, weight, eps))` (an rmx extension): a pre-norm
/// decoder's residual add and the next norm, one kernel where the backend has it. Inputs
/// of different shapes or dtypes take the two ops (broadcasting and promotion as `add`).
pub fn add_rms_norm(
    x: &Array,
    residual: &Array,
    weight: Option<&Array>,
    eps: f32,
) -> Result<(Array, Array)> {
    let same = x.shape() == residual.shape()
        && x.dtype() == residual.dtype()
        && x.dtype().is_float()
        && x.ndim() > 0
        && weight.is_none_or(|w| w.dtype() == x.dtype());
    if !same {
        let h = super::add(x, residual)?;
        let y = rms_norm(&h, weight, eps)?;
        return Ok((h, y));
    }
    check_affine("rms_norm", "(*weight)", x, weight)?;
    let mut inputs = vec![x.clone(), residual.clone()];
    inputs.extend(weight.cloned());
    let spec = (x.shape().into(), x.dtype());
    let prim = AddRmsNorm {
        eps,
        has_weight: weight.is_some(),
    };
    let mut out = Array::from_multi_op(vec![spec.clone(), spec], std::sync::Arc::new(prim), inputs);
    let y = out.pop().expect("two outputs");
    let h = out.pop().expect("two outputs");
    Ok((h, y))
}

/// Layer normalization over the last axis, times `weight` and plus `bias` if given.
pub fn layer_norm(
    x: &Array,
    weight: Option<&Array>,
    bias: Option<&Array>,
    eps: f32,
) -> Result<Array> {
    norm(
        "layer_norm",
        NormKind::Layer,
        x,
        [("weight", weight), ("bias", bias)],
        eps,
    )
}

/// Rotary positional encoding of `a` `[B, ..., T, D]` over its first `dims` features, at
/// positions `(t + offset) * scale`: `offset` is an integer scalar or one per batch
/// element. Exactly one of `base` (frequencies `base^(-2i/dims)`) and `freqs` (dims/2
/// frequencies) is given.
pub fn rope(
    a: &Array,
    dims: i64,
    traditional: bool,
    base: Option<f32>,
    scale: f32,
    offset: &Array,
    freqs: Option<&Array>,
) -> Result<Array> {
    let (prim, extra) = rope_parts(a, dims, traditional, base, scale, offset, freqs)?;
    let mut inputs = vec![a.clone()];
    inputs.extend(extra);
    Ok(prim.node(inputs))
}

/// `rope`'s checks of its arguments, then the primitive and its inputs after `a`
/// (`offset` as int32, `freqs` as float32).
fn rope_parts(
    a: &Array,
    dims: i64,
    traditional: bool,
    base: Option<f32>,
    scale: f32,
    offset: &Array,
    freqs: Option<&Array>,
) -> Result<(Rope, Vec<Array>)> {
    if a.ndim() < 3 {
        return Err(crate::value_err!(
            "[rope] Input must have at least 3 dimensions but got input with {} dimensions.",
            a.ndim()
        ));
    }
    if !a.dtype().is_float() {
        return Err(crate::value_err!(
            "[rope] Input must be a floating type but got {}.",
            a.dtype()
        ));
    }
    let d = a.shape()[a.ndim() - 1];
    if dims <= 0 {
        return Err(crate::value_err!(
            "[rope] dims must be positive but got {dims}."
        ));
    }
    if dims % 2 != 0 {
        return Err(crate::value_err!(
            "[rope] dims must be even but got {dims}."
        ));
    }
    if dims as usize > d {
        return Err(crate::value_err!(
            "[rope] dims must not exceed the input's last dimension ({d}) but got {dims}."
        ));
    }
    if offset.ndim() > 1 {
        return Err(crate::value_err!(
            "[rope] offset must have at most one dimension but has shape {}.",
            shape_str(offset.shape())
        ));
    }
    let batch = a.shape()[0];
    if offset.size() != 1 && offset.size() != batch {
        return Err(crate::value_err!(
            "[rope] offset must be a scalar or vector with {batch} elements but has shape {}.",
            shape_str(offset.shape())
        ));
    }
    if !offset.dtype().is_integer() {
        return Err(crate::value_err!(
            "[rope] offset must be an integer but got type {}.",
            offset.dtype()
        ));
    }
    match (base, freqs) {
        (None, None) => {
            return Err(crate::value_err!(
                "[rope] Neither base nor freqs has a value."
            ))
        }
        (Some(_), Some(_)) => {
            return Err(crate::value_err!(
                "[rope] Only one of base or freqs can have a value."
            ))
        }
        _ => {}
    }
    let half = dims as usize / 2;
    let mut inputs = vec![cast(offset, Dtype::Int32)?];
    if let Some(f) = freqs {
        if f.ndim() != 1 || f.shape()[0] != half {
            return Err(crate::value_err!(
                "[rope] freqs must be one dimensional with size {half} but got shape {}.",
                shape_str(f.shape())
            ));
        }
        inputs.push(cast(f, Dtype::Float32)?);
    }
    let prim = Rope {
        dims: dims as usize,
        traditional,
        base,
        scale,
    };
    Ok((prim, inputs))
}

/// The heads of a decoder layer's step (an rmx extension; MLX has none): `x`
/// `[B, L, num_heads + 2 num_kv_heads, D]` holds a fused q|k|v projection's query, key and
/// value heads. Returns `(q, k_cache', v_cache')`: the query heads `[B, num_heads, L, D]`
/// through `rope` at positions `offset + l`, and the caches (`[B, num_kv_heads, S, D]`, of
/// `x`'s dtype) with the rotated keys and the values written at those positions, as
/// `scatter_along_axis` writes them (a negative position wraps once; others outside the
/// cache raise `IndexError` when evaluated). One kernel on the GPU instead of a RoPE and
/// two scatters; the caches are written in place when nothing else holds them.
#[allow(clippy::too_many_arguments)]
pub fn rope_kv_update(
    x: &Array,
    k_cache: &Array,
    v_cache: &Array,
    num_heads: usize,
    num_kv_heads: usize,
    dims: i64,
    traditional: bool,
    base: Option<f32>,
    scale: f32,
    offset: &Array,
    freqs: Option<&Array>,
) -> Result<(Array, Array, Array)> {
    const OP: &str = "[rope_kv_update]";
    if x.ndim() != 4 || x.shape()[2] != num_heads + 2 * num_kv_heads || num_kv_heads == 0 {
        return Err(crate::value_err!(
            "{OP} x must have shape (B, L, num_heads + 2 * num_kv_heads, D) = (B, L, {}, D) with num_kv_heads > 0 but has shape {}.",
            num_heads + 2 * num_kv_heads,
            shape_str(x.shape())
        ));
    }
    let (b, d) = (x.shape()[0], x.shape()[3]);
    for (name, c) in [("k_cache", k_cache), ("v_cache", v_cache)] {
        let s = c.shape();
        if c.ndim() != 4 || s[0] != b || s[1] != num_kv_heads || s[3] != d {
            return Err(crate::value_err!(
                "{OP} {name} must have shape ({b}, {num_kv_heads}, S, {d}) but has shape {}.",
                shape_str(s)
            ));
        }
        if c.dtype() != x.dtype() {
            return Err(crate::value_err!(
                "{OP} {name} must have x's type {} but has type {}.",
                x.dtype(),
                c.dtype()
            ));
        }
    }
    if k_cache.shape()[2] != v_cache.shape()[2] {
        return Err(crate::value_err!(
            "{OP} k_cache and v_cache must hold the same number of tokens but have shapes {} and {}.",
            shape_str(k_cache.shape()),
            shape_str(v_cache.shape())
        ));
    }
    if offset.size() != 1 {
        return Err(crate::value_err!(
            "{OP} offset must have one element but has shape {}.",
            shape_str(offset.shape())
        ));
    }
    let (rope, extra) = rope_parts(x, dims, traditional, base, scale, offset, freqs)?;
    let mut inputs = vec![x.clone(), k_cache.clone(), v_cache.clone()];
    inputs.extend(extra);
    let l = x.shape()[1];
    let specs = vec![
        (vec![b, num_heads, l, d].into(), x.dtype()),
        (k_cache.shape().into(), x.dtype()),
        (v_cache.shape().into(), x.dtype()),
    ];
    let prim = RopeKvUpdate {
        rope,
        num_heads,
        num_kv_heads,
    };
    let mut out = Array::from_multi_op(specs, std::sync::Arc::new(prim), inputs);
    let v = out.pop().expect("three outputs");
    let k = out.pop().expect("three outputs");
    let q = out.pop().expect("three outputs");
    Ok((q, k, v))
}

/// The mask of `scaled_dot_product_attention`.
#[derive(Clone, Copy)]
pub enum SdpaMask<'a> {
    None,
    /// Lower-right aligned: the last query sees the last key.
    Causal,
    /// A bool (false = masked) or additive mask broadcastable to `[B, Hq, Lq, Lk]`.
    Array(&'a Array),
}

impl SdpaMask<'_> {
    /// The mask named by a string (only "causal").
    pub fn parse(name: &str) -> Result<SdpaMask<'static>> {
        match name {
            "causal" => Ok(SdpaMask::Causal),
            _ => Err(crate::value_err!(
                "[scaled_dot_product_attention] invalid mask option '{name}'. Must be 'causal', or an array."
            )),
        }
    }
}

const SDPA: &str = "[scaled_dot_product_attention]";

/// `softmax(scale * q k^T + mask) v` per head: `q` `[B, Hq, Lq, D]`, `k` `[B, Hkv, Lk, D]`,
/// `v` `[B, Hkv, Lk, Dv]` with Hq a multiple of Hkv (grouped-query heads share a key head);
/// `sinks` (`[Hq]`) adds one logit per head to each softmax, weighing no value.
pub fn scaled_dot_product_attention(
    q: &Array,
    k: &Array,
    v: &Array,
    scale: f32,
    mask: SdpaMask<'_>,
    sinks: Option<&Array>,
) -> Result<Array> {
    for x in [q, k, v] {
        if x.ndim() != 4 {
            return Err(crate::value_err!(
                "{SDPA} input with shape {} expected to be rank 4",
                shape_str(x.shape())
            ));
        }
    }
    if let SdpaMask::Array(m) = mask {
        if m.ndim() > 4 {
            return Err(crate::value_err!(
                "{SDPA} the mask with shape {} expected to have at most rank 4.",
                shape_str(m.shape())
            ));
        }
    }
    let (b, hq, lq, d) = (q.shape()[0], q.shape()[1], q.shape()[2], q.shape()[3]);
    for x in [k, v] {
        if x.shape()[0] != b {
            return Err(crate::value_err!(
                "{SDPA} mismatching batch dimension for input with shape {}.",
                shape_str(x.shape())
            ));
        }
    }
    if k.shape()[3] != d {
        return Err(crate::value_err!(
            "{SDPA} query, keys expected to have matching last dimension; found query shape {} for keys shape {}.",
            shape_str(q.shape()),
            shape_str(k.shape())
        ));
    }
    let (hkv, lk) = (k.shape()[1], k.shape()[2]);
    if v.shape()[1] != hkv {
        return Err(crate::value_err!(
            "{SDPA} keys, values expected to have matching n_kv_heads; found keys with n_heads {hkv} for values with n_heads {}.",
            v.shape()[1]
        ));
    }
    if hkv == 0 || hq % hkv != 0 {
        return Err(crate::value_err!(
            "{SDPA} n_heads must be a multiple of n_kv_heads, found n_heads {hq} for n_kv_heads {hkv}."
        ));
    }
    if v.shape()[2] != lk {
        return Err(crate::value_err!(
            "{SDPA} keys, values expected to have matching sequence lengths; found keys shape {} for values shape {}.",
            shape_str(k.shape()),
            shape_str(v.shape())
        ));
    }
    let out = result_type(&[q.dtype(), k.dtype(), v.dtype()]).expect("three dtypes");
    if !out.is_float() {
        return Err(crate::value_err!("{SDPA} Received unsupported type {out}."));
    }
    let mut inputs = vec![cast(q, out)?, cast(k, out)?, cast(v, out)?];
    let kind = match mask {
        SdpaMask::None => MaskKind::None,
        SdpaMask::Causal => MaskKind::Causal,
        SdpaMask::Array(m) => {
            let scores = [b, hq, lq, lk];
            if broadcast_shapes(m.shape(), &scores)?.as_slice() != scores {
                return Err(crate::value_err!(
                    "{SDPA} the mask with shape {} cannot be broadcast to the scores' shape {}.",
                    shape_str(m.shape()),
                    shape_str(&scores)
                ));
            }
            if m.dtype() == Dtype::Bool {
                inputs.push(m.clone());
                MaskKind::Bool
            } else {
                if promote_types(m.dtype(), out) != out {
                    return Err(crate::value_err!(
                        "{SDPA} Mask type must promote to output type {out}."
                    ));
                }
                inputs.push(cast(m, out)?);
                MaskKind::Additive
            }
        }
    };
    if let Some(s) = sinks {
        if s.ndim() != 1 || s.shape()[0] != hq {
            return Err(crate::value_err!(
                "{SDPA} Received invalid shape for sinks {}.",
                shape_str(s.shape())
            ));
        }
        if promote_types(s.dtype(), out) != out {
            return Err(crate::value_err!(
                "{SDPA} Type of sinks must promote to output type {out}."
            ));
        }
        inputs.push(cast(s, out)?);
    }
    Ok(Attention {
        scale,
        mask: kind,
        has_sinks: sinks.is_some(),
    }
    .node(inputs))
}

/// The weight of the fused linear ops (`swiglu_linear`, `rms_norm_linear`): `W` (`[N, K]`),
/// dense or in MLX's affine format.
#[derive(Clone, Copy)]
pub enum Weight<'a> {
    Dense(&'a Array),
    Quantized {
        w: &'a Array,
        scales: &'a Array,
        biases: &'a Array,
        group_size: usize,
        bits: usize,
    },
}

impl<'a> Weight<'a> {
    /// The weight from its arrays (`[w]` or `[w, scales, biases]`, as `parts` lists them).
    pub(crate) fn from_parts(a: &'a [Array], quantized: Option<(usize, usize)>) -> Weight<'a> {
        match quantized {
            None => Weight::Dense(&a[0]),
            Some((group_size, bits)) => Weight::Quantized {
                w: &a[0],
                scales: &a[1],
                biases: &a[2],
                group_size,
                bits,
            },
        }
    }

    /// The arrays (`[w]` or `[w, scales, biases]`) and the quantization.
    fn parts(&self) -> (Vec<Array>, Option<(usize, usize)>) {
        match *self {
            Weight::Dense(w) => (vec![w.clone()], None),
            Weight::Quantized {
                w,
                scales,
                biases,
                group_size,
                bits,
            } => (
                vec![w.clone(), scales.clone(), biases.clone()],
                Some((group_size, bits)),
            ),
        }
    }

    /// Whether the fused kernels take this weight for `x` (`[..., K]`, floating): `[N, K]`
    /// of `x`'s dtype, or packed `[N, K * bits / 32]` with scales and biases
    /// `[N, K / group_size]` (`affine_params_fit`); `N` even where the rows are gate/up
    /// pairs.
    fn fits(&self, x: &Array, pairs: bool) -> bool {
        let (arrays, quantized) = self.parts();
        let w = &arrays[0];
        let k = x.shape().last().copied().unwrap_or(0);
        let n = w.shape().first().copied().unwrap_or(0);
        x.ndim() >= 1
            && x.dtype().is_float()
            && w.ndim() == 2
            && (!pairs || n.is_multiple_of(2))
            && match quantized {
                None => w.dtype() == x.dtype() && w.shape()[1] == k,
                Some((gs, bits)) => {
                    w.dtype() == Dtype::Uint32
                        && bits > 0
                        && (32 % bits == 0)
                        && w.shape()[1] * 32 / bits == k
                        && gs > 0
                        && k % gs == 0
                        && arrays[1..].iter().all(|a| a.shape() == [n, k / gs])
                        && affine_params_fit(x.dtype(), arrays[1].dtype(), arrays[2].dtype())
                }
            }
    }

    /// Output features.
    fn rows(&self) -> usize {
        let w = match self {
            Weight::Dense(w) | Weight::Quantized { w, .. } => w,
        };
        w.shape().first().copied().unwrap_or(0)
    }
}

/// Scales and biases the fused ops take: of `x`'s dtype, or both f16 or both bf16 with f32
/// `x` (a GGUF or MLX checkpoint's half-precision scales, which the CPU's decode kernels
/// read as they are). Either way the output has `x`'s dtype, as `quantized_matmul` gives.
fn affine_params_fit(x: Dtype, scales: Dtype, biases: Dtype) -> bool {
    scales == biases
        && (scales == x
            || (x == Dtype::Float32 && matches!(scales, Dtype::Float16 | Dtype::Bfloat16)))
}

/// `x @ W^T` through `matmul` (dense) or `quantized_matmul` (affine, transposed).
pub fn linear(x: &Array, weight: Weight<'_>) -> Result<Array> {
    match weight {
        Weight::Dense(w) => super::matmul(x, &super::transpose(w, None)?),
        Weight::Quantized {
            w,
            scales,
            biases,
            group_size,
            bits,
        } => super::quantized::quantized_matmul(
            x,
            w,
            scales,
            Some(biases),
            true,
            Some(group_size as i64),
            Some(bits as i64),
            "affine",
        ),
    }
}

/// `x`'s shape with the last axis `n`.
fn with_last(x: &Array, n: usize) -> crate::shape::Shape {
    let mut shape = x.shape().to_vec();
    if let Some(last) = shape.last_mut() {
        *last = n;
    }
    shape.into()
}

/// `silu(x W_g^T) * (x W_u^T)` (an rmx extension; MLX has none): a gated feed-forward
/// block's first half from its stacked gate and up weights, `[..., K]` to `[..., F]`. Every
/// intermediate is rounded to `x`'s dtype as the separate ops store it, so the value is the
/// product, two slices, `sigmoid` and two `multiply`s bit for bit where the product sums
/// in the same order (see `primitives::fast::swiglu`); one kernel on the GPU for a single
/// row. Other dtypes and shapes take those ops (with their errors).
pub fn swiglu_linear(x: &Array, weight: Weight<'_>) -> Result<Array> {
    let (arrays, quantized) = weight.parts();
    let prim = SwigluLinear { quantized };
    let mut inputs = vec![x.clone()];
    inputs.extend(arrays);
    if !weight.fits(x, true) {
        return prim.composite(&inputs);
    }
    Ok(Array::from_op(
        with_last(x, weight.rows() / 2),
        x.dtype(),
        std::sync::Arc::new(prim),
        inputs,
    ))
}

/// `(h, y)` with `h = x + residual` (or `x`), `n = rms_norm(h, norm_weight, eps)` and
/// `y = n @ W^T`, or `swiglu_linear(n, W)` when `gated` (an rmx extension; MLX has none):
/// a pre-norm block's entry in one op, one kernel on the GPU for a single row (the norm
/// is made inside the product). Every intermediate is rounded to `x`'s dtype as the
/// separate ops store it; on the GPU the norm's sum of squares is added in another order
/// than the norm kernel's, so `y` agrees with the separate ops within a rounding of the
/// normalized input. Other dtypes and shapes take the separate ops (with their errors).
pub fn rms_norm_linear(
    x: &Array,
    residual: Option<&Array>,
    norm_weight: &Array,
    eps: f32,
    weight: Weight<'_>,
    gated: bool,
) -> Result<(Array, Array)> {
    let (arrays, quantized) = weight.parts();
    let prim = RmsNormLinear {
        eps,
        residual: residual.is_some(),
        gated,
        quantized,
    };
    let mut inputs = vec![x.clone()];
    inputs.extend(residual.cloned());
    inputs.push(norm_weight.clone());
    inputs.extend(arrays);
    let k = x.shape().last().copied().unwrap_or(0);
    let fits = weight.fits(x, gated)
        && residual.is_none_or(|r| r.shape() == x.shape() && r.dtype() == x.dtype())
        && norm_weight.ndim() == 1
        && norm_weight.size() == k
        && norm_weight.dtype() == x.dtype();
    if !fits {
        let mut out = prim.composite(&inputs)?;
        let y = out.pop().expect("the product");
        return Ok((out.pop().unwrap_or_else(|| x.clone()), y));
    }
    let n = if gated {
        weight.rows() / 2
    } else {
        weight.rows()
    };
    let y_spec = (with_last(x, n), x.dtype());
    let prim = std::sync::Arc::new(prim);
    if residual.is_none() {
        let y = Array::from_op(y_spec.0, y_spec.1, prim, inputs);
        return Ok((x.clone(), y));
    }
    let h_spec = (x.shape().into(), x.dtype());
    let mut out = Array::from_multi_op(vec![h_spec, y_spec], prim, inputs);
    let y = out.pop().expect("two outputs");
    let h = out.pop().expect("two outputs");
    Ok((h, y))
}
