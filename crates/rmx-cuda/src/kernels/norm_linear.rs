//! `rms_norm_linear` for one row (decode): the RMS norm made inside the matrix-vector
//! kernels' blocks instead of by a norm kernel. Each block reads the row (and the residual
//! it adds), sums its squares, and stages the normalized row in shared memory, where the
//! product reads it; block 0 also writes the sum `h`. A decode step has a norm before each
//! block's first product, so this removes a kernel (and its launch gap) per norm.

use super::gemv;
use super::prelude::CType;
use super::qmm;
use crate::device::Gpu;
use crate::memory::{alloc_output, device_ptr};
use rmx_core::backend::LinearWeight;
use rmx_core::{ArrayData, Dtype, Result};

/// Bytes of shared memory a block may stage a row in: the default 48 KB per block (no
/// opt-in) less room for the kernels' own static shared arrays.
const MAX_STAGE_BYTES: usize = 44 * 1024;

/// The norm's arguments as a matrix-vector kernel's `_norm` entry takes them after its own:
/// device pointers of the residual (0 when none), the norm weight and `h`'s output (0
/// when none), `eps`, and the bytes of shared memory the row takes.
#[derive(Clone, Copy, Debug)]
pub struct Prologue {
    pub residual: u64,
    pub weight: u64,
    pub h_out: u64,
    pub eps: f32,
    pub smem: u32,
}

/// The C function `{name}(x, r, nw, hout, xs, k, eps)` staging the normalized row into
/// `xs` (shared memory, `k` elements): `h = x + r` rounded to the dtype as `add` rounds it
/// (block 0 writes it to `hout`), or `h = x` when `r` is null; `rstd = 1 / sqrt(sum(h^2) /
/// k + eps)` over the block; `xs[j] = round(round(h_j * rstd) * nw_j)`, as the norm kernel
/// (rows.rs) writes each element. Only the order of the sum of squares differs from it.
/// Every thread of the block calls it; `k` is a multiple of the 16-byte run, the pointers
/// are 16-byte aligned.
pub fn stage_fn(name: &str, t: &CType) -> String {
    let (s, c) = (t.store, t.compute);
    let l = |e: &str| t.load(e);
    let st = |e: &str| t.store(e);
    let add = st(&format!("{} + {}", l("hx.e[e]"), l("rx.e[e]")));
    let scaled = st(&format!(
        "{} * {}",
        l(&st(&format!("{} * rstd", l("hx.e[e]")))),
        l("wx.e[e]")
    ));
    format!(
        r#"
union {name}_run {{ uint4 v; {s} e[16 / sizeof({s})]; }};
__device__ __forceinline__ void {name}(const {s}* __restrict__ x, const {s}* __restrict__ r, const {s}* __restrict__ nw, {s}* __restrict__ hout, {s}* xs, i64 k, float eps) {{
  constexpr int V = 16 / sizeof({s});
  __shared__ float red[32];
  const i64 runs = k / V;
  uint4* xs4 = reinterpret_cast<uint4*>(xs);
  // (holding the row in registers instead of passing it through shared memory was
  // measured on an H200: a Llama-1B bf16 decode step 751 tok/s against 779 this way,
  // the dense kernel's registers doubling)
  {c} ss = 0;
  for (i64 i = threadIdx.x; i < runs; i += blockDim.x) {{
    {name}_run hx;
    hx.v = reinterpret_cast<const uint4*>(x)[i];
    if (r) {{
      {name}_run rx;
      rx.v = reinterpret_cast<const uint4*>(r)[i];
#pragma unroll
      for (int e = 0; e < V; ++e) hx.e[e] = {add};
      if (blockIdx.x == 0) reinterpret_cast<uint4*>(hout)[i] = hx.v;
    }}
#pragma unroll
    for (int e = 0; e < V; ++e) {{ const {c} v = {lh}; ss += v * v; }}
    xs4[i] = hx.v;
  }}
  for (int o = 16; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffff, ss, o);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) red[warp] = ss;
  __syncthreads();
  if (warp == 0) {{
    {c} a = lane < (int)(blockDim.x >> 5) ? red[lane] : 0;
    for (int o = 16; o > 0; o >>= 1) a += __shfl_xor_sync(0xffffffff, a, o);
    if (lane == 0) red[0] = a;
  }}
  __syncthreads();
  const {c} rstd = 1 / sqrtf(red[0] / ({c})k + ({c})eps);
  for (i64 i = threadIdx.x; i < runs; i += blockDim.x) {{
    {name}_run hx, wx;
    hx.v = xs4[i];
    wx.v = reinterpret_cast<const uint4*>(nw)[i];
#pragma unroll
    for (int e = 0; e < V; ++e) hx.e[e] = {scaled};
    xs4[i] = hx.v;
  }}
  __syncthreads();
}}
"#,
        lh = l("hx.e[e]"),
    )
}

/// Warps per block of the `_norm` entries, dense then quantized: the plain kernels' 4.
/// Every block stages the whole row, but larger blocks were no faster on an H200 (a
/// Llama-1B decode step with the register-held staging variant, tok/s: bf16 776 at 8
/// warps, 756 at 16, 751 at 4; 4-bit 857 at 8, 859 at 2, 876-884 at 4).
/// `RMX_NORM_WARPS=dense,quantized` overrides them (for measuring).
pub fn norm_warps() -> (u32, u32) {
    static W: std::sync::OnceLock<(u32, u32)> = std::sync::OnceLock::new();
    *W.get_or_init(|| {
        let default = (4, 4);
        let Ok(v) = std::env::var("RMX_NORM_WARPS") else {
            return default;
        };
        let f: Vec<u32> = v.split(',').filter_map(|x| x.trim().parse().ok()).collect();
        match f[..] {
            [d, q]
                if [d, q]
                    .iter()
                    .all(|w| w.is_power_of_two() && (2..=32).contains(w)) =>
            {
                (d, q)
            }
            _ => default,
        }
    })
}

/// `(h, y)` of `Backend::rms_norm_linear` for one row of `x` (f32, f16 or bf16) by a
/// matrix-vector kernel's `_norm` entry; `None` where none applies (more rows, arrays not
/// dense or aligned, a row too long to stage), and the caller makes the norm and product.
pub fn rms_norm_linear(
    gpu: &'static Gpu,
    x: &ArrayData,
    residual: Option<&ArrayData>,
    norm_weight: &ArrayData,
    eps: f32,
    weight: LinearWeight<'_>,
    gated: bool,
) -> Result<Option<(Option<ArrayData>, ArrayData)>> {
    let dtype = x.dtype;
    let k = x.shape.last().copied().unwrap_or(0);
    let dense_row = |a: &ArrayData| a.dtype == dtype && a.is_row_contiguous();
    let fits = matches!(dtype, Dtype::Float32 | Dtype::Float16 | Dtype::Bfloat16)
        && k > 0
        && x.numel() == k
        && k * dtype.size() <= MAX_STAGE_BYTES
        && k.is_multiple_of(16 / dtype.size())
        && dense_row(x)
        && residual.is_none_or(|r| dense_row(r) && r.shape == x.shape)
        && dense_row(norm_weight)
        && norm_weight.numel() == k;
    if !fits {
        return Ok(None);
    }
    let ptr = |a: &ArrayData| device_ptr(gpu, a);
    let r_ptr = residual.map(ptr).transpose()?.unwrap_or(0);
    let w_ptr = ptr(norm_weight)?;
    let h = residual
        .map(|_| alloc_output(gpu, dtype, &x.shape))
        .transpose()?;
    let h_ptr = h.as_ref().map_or(0, |(_, p)| *p);
    let x_ptr = ptr(x)?;
    if [x_ptr, r_ptr, w_ptr, h_ptr]
        .iter()
        .any(|p| !p.is_multiple_of(16))
    {
        return Ok(None);
    }
    let prologue = Prologue {
        residual: r_ptr,
        weight: w_ptr,
        h_out: h_ptr,
        eps,
        smem: (k * dtype.size()) as u32,
    };
    let y = match weight {
        LinearWeight::Dense(w) => {
            gemv::launch_gemv(gpu, x, &w.permuted(&[1, 0]), gated, Some(prologue))?
        }
        LinearWeight::Quantized {
            w,
            scales,
            biases,
            group_size,
            bits,
        } => qmm::qmv_one_row(
            gpu,
            x,
            [w, scales, biases],
            (group_size, bits),
            gated,
            Some(prologue),
        )?,
    };
    Ok(y.map(|y| (h.map(|(h, _)| h), y)))
}
