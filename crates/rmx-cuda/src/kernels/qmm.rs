//! MLX's affine quantization on the device, for 2, 4 and 8 bits (codes that never straddle
//! a uint32 word): dequantization, and `x @ dequantize(w).T` for few rows of `x` as a
//! matrix-vector kernel that reads the packed weights once (decode). More rows dequantize
//! to the activations' dtype and go through cuBLAS.

use super::elementwise::{generated, launch_config, row_contiguous as dense, Kernel};
use super::matmul;
use super::prelude::{ctype, tag, PRELUDE};
use crate::device::{driver_err, Gpu};
use crate::memory::{alloc_output, device_ptr};
use cudarc::driver::{LaunchConfig, PushKernelArg};
use rmx_core::{ArrayData, Dtype, Result};

/// Rows of `x` up to which the matrix-vector kernel runs.
const QMV_MAX_ROWS: usize = 8;
/// Output features per block of the matrix-vector kernel (one warp each).
const QMV_WARPS: u32 = 8;
/// Output features per warp, and warps per block, of the `_fast` matrix-vector entry.
const QMV_FAST_COLS: usize = 4;
const QMV_FAST_WARPS: u32 = 4;

fn supported(bits: usize) -> bool {
    matches!(bits, 2 | 4 | 8)
}

/// `q * scale + bias` per element, the product rounded to the scales' dtype and the sum
/// to the output's (as MLX and the CPU backend).
pub fn dequantize_kernel(bits: usize, scales: Dtype, out: Dtype) -> Option<Kernel> {
    generated(
        format!("dequantize_kernel {:?}", (bits, scales, out)),
        || {
            let (ts, to) = (
                ctype(scales).filter(|t| t.float)?,
                ctype(out).filter(|t| t.float)?,
            );
            let name = format!("dequantize_{bits}_{}_{}", tag(scales), tag(out));
            let c = if out == Dtype::Float64 {
                "double"
            } else {
                "float"
            };
            let prod = ts.load(&ts.store("(q * s)"));
            let src = format!(
                r#"{PRELUDE}
    extern "C" __global__ void {name}(const u32* w, const {ss}* scales, const {ss}* biases, {os}* out, i64 n_words, i64 group_size) {{
      const int per = 32 / {bits};
      for (i64 wi = (i64)blockIdx.x * blockDim.x + threadIdx.x; wi < n_words; wi += (i64)gridDim.x * blockDim.x) {{
        const u32 word = w[wi];
        const i64 k0 = wi * per, g = k0 / group_size;
        const {c} s = {ls}, b = {lb};
        for (int e = 0; e < per; ++e) {{
          const {c} q = ({c})((word >> (e * {bits})) & ((1u << {bits}) - 1));
          const {c} p = {prod};
          out[k0 + e] = {st};
        }}
      }}
    }}
    "#,
                ss = ts.store,
                os = to.store,
                ls = ts.load("scales[g]"),
                lb = ts.load("biases[g]"),
                st = to.store("p + b"),
            );
            Some(Kernel { name, src })
        },
    )
}

/// `x @ W.T` for rows of `x` (`[M, K]`) and packed `W` (`[N, K * bits / 32]`), one warp
/// per output feature, f32 accumulation: `sum_g s_g * (x_g . q_g) + b_g * sum(x_g)`.
pub fn qmv_kernel(bits: usize, dtype: Dtype) -> Option<Kernel> {
    generated(format!("qmv_kernel {:?}", (bits, dtype)), || {
        let t = ctype(dtype).filter(|t| t.float && dtype != Dtype::Float64)?;
        let name = format!("qmv_{bits}_{}", tag(dtype));
        // Each lane reads 16-byte runs of four packed words (independent loads in flight), the
        // tail word by word; the activations row stays in L1.
        let src = format!(
            r#"{PRELUDE}
    struct alignas(16) {name}_words4 {{ u32 w[4]; }};
    __device__ __forceinline__ float {name}_word(u32 word, const {s}* xr, i64 k0, float s, float b) {{
      float dot = 0, xs = 0;
    #pragma unroll
      for (int e = 0; e < 32 / {bits}; ++e) {{
        const float xv = {lx};
        dot += xv * (float)((word >> (e * {bits})) & ((1u << {bits}) - 1));
        xs += xv;
      }}
      return s * dot + b * xs;
    }}
    extern "C" __global__ void {name}(const u32* w, const {s}* scales, const {s}* biases, const {s}* x, {s}* out, i64 n, i64 k, i64 group_size, int vec) {{
      const int lane = threadIdx.x & 31;
      const i64 col = (i64)blockIdx.x * {QMV_WARPS} + (threadIdx.x >> 5), row = blockIdx.y;
      if (col >= n) return;
      const int per = 32 / {bits};
      const i64 words = k / per, groups = k / group_size;
      const u32* wr = w + col * words;
      const {s}* sr = scales + col * groups;
      const {s}* br = biases + col * groups;
      const {s}* xr = x + row * k;
      float acc = 0;
      const i64 runs = vec ? words / 4 : 0;  // 16-byte aligned rows
      for (i64 r = lane; r < runs; r += 32) {{
        const {name}_words4 q = reinterpret_cast<const {name}_words4*>(wr)[r];
    #pragma unroll
        for (int t = 0; t < 4; ++t) {{
          const i64 k0 = (r * 4 + t) * per, g = k0 / group_size;
          acc += {name}_word(q.w[t], xr, k0, {lsc}, {lbi});
        }}
      }}
      for (i64 wi = runs * 4 + lane; wi < words; wi += 32) {{
        const i64 k0 = wi * per, g = k0 / group_size;
        acc += {name}_word(wr[wi], xr, k0, {lsc}, {lbi});
      }}
      for (int o = 16; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffff, acc, o);
      if (lane == 0) out[row * n + col] = {st};
    }}
    // `_fast`: K a multiple of 512, 16-byte aligned rows. Each lane holds 16 activations
    // in registers (with their sum) and applies them to {QMV_FAST_COLS} output features, so
    // a warp reads {QMV_FAST_COLS} contiguous runs of packed words per 512 values of K.
    extern "C" __global__ void {name}_fast(const u32* w, const {s}* scales, const {s}* biases, const {s}* x, {s}* out, i64 n, i64 k, i64 group_size) {{
      const int lane = threadIdx.x & 31;
      const i64 col0 = ((i64)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5)) * {QMV_FAST_COLS};
      if (col0 >= n) return;
      const i64 row = blockIdx.y, words = k * {bits} / 32, groups = k / group_size;
      const {s}* xr = x + row * k;
      float acc[{QMV_FAST_COLS}] = {{}};
      for (i64 k0 = (i64)lane * 16; k0 < k; k0 += 512) {{
        float v[16];
{load_x}
        float xsum = 0.f;
    #pragma unroll
        for (int e = 0; e < 16; ++e) xsum += v[e];
        const i64 g = (int)k0 / (int)group_size;
    #pragma unroll
        for (int c = 0; c < {QMV_FAST_COLS}; ++c) {{
          const i64 col = col0 + c;
          if (col < n) {{
            const u32* wp = w + col * words + k0 * {bits} / 32;
{load_w}
            float dot = 0.f;
    #pragma unroll
            for (int i = 0; i < {pw}; ++i)
    #pragma unroll
              for (int e = 0; e < 32 / {bits}; ++e) dot += v[i * (32 / {bits}) + e] * (float)((q[i] >> (e * {bits})) & ((1u << {bits}) - 1));
            const {s}* sc = scales + col * groups + g;
            const {s}* bi = biases + col * groups + g;
            acc[c] += {lsf} * dot + {lbf} * xsum;
          }}
        }}
      }}
    #pragma unroll
      for (int c = 0; c < {QMV_FAST_COLS}; ++c) {{
        float a = acc[c];
        for (int o = 16; o > 0; o >>= 1) a += __shfl_xor_sync(0xffffffff, a, o);
        if (lane == 0 && col0 + c < n) out[row * n + col0 + c] = {sta};
      }}
    }}
    "#,
            s = t.store,
            lx = t.load("xr[k0 + e]"),
            lsc = t.load("sr[g]"),
            lbi = t.load("br[g]"),
            st = t.store("acc"),
            pw = bits / 2,
            load_x = if t.store == "u16" {
                // 16 half values: two 16-byte loads
                format!(
                    "        const uint4* xv = reinterpret_cast<const uint4*>(xr + k0);\n    #pragma unroll\n        for (int h = 0; h < 2; ++h) {{ const uint4 u = xv[h]; const u32 ws[4] = {{u.x, u.y, u.z, u.w}};\n    #pragma unroll\n          for (int j = 0; j < 4; ++j) {{ v[h * 8 + 2 * j] = {}; v[h * 8 + 2 * j + 1] = {}; }} }}",
                    t.load("(u16)(ws[j] & 0xffffu)"),
                    t.load("(u16)(ws[j] >> 16)")
                )
            } else {
                "        const float4* xv = reinterpret_cast<const float4*>(xr + k0);\n    #pragma unroll\n        for (int h = 0; h < 4; ++h) { const float4 f = xv[h]; v[4 * h] = f.x; v[4 * h + 1] = f.y; v[4 * h + 2] = f.z; v[4 * h + 3] = f.w; }".to_string()
            },
            load_w = match bits {
                2 => "            const u32 q[1] = {wp[0]};",
                4 => "            const uint2 qq = *reinterpret_cast<const uint2*>(wp); const u32 q[2] = {qq.x, qq.y};",
                _ => "            const uint4 qq = *reinterpret_cast<const uint4*>(wp); const u32 q[4] = {qq.x, qq.y, qq.z, qq.w};",
            },
            lsf = t.load("sc[0]"),
            lbf = t.load("bi[0]"),
            sta = t.store("a"),
        );
        Some(Kernel { name, src })
    })
}

/// `a` (`[..., R, C]`) as one matrix when every batch axis is broadcast (stride 0) or 1.
fn as_matrix(a: &ArrayData) -> Option<ArrayData> {
    let n = a.ndim();
    if n < 2 || (0..n - 2).any(|d| a.shape[d] != 1 && a.strides[d] != 0) {
        return None;
    }
    Some(a.view(a.shape[n - 2..].into(), a.strides[n - 2..].into(), a.offset))
}

/// The float array of `w` (`[..., R, K * bits / 32]`), of `dtype`.
pub fn dequantize(
    gpu: &'static Gpu,
    w: &ArrayData,
    scales: &ArrayData,
    biases: &ArrayData,
    group_size: usize,
    bits: usize,
    dtype: Dtype,
) -> Result<Option<ArrayData>> {
    if !supported(bits) || scales.dtype != biases.dtype || w.dtype != Dtype::Uint32 {
        return Ok(None);
    }
    let Some(Kernel { name, src }) = dequantize_kernel(bits, scales.dtype, dtype) else {
        return Ok(None);
    };
    let (Some(w), Some(s), Some(b)) = (dense(gpu, w)?, dense(gpu, scales)?, dense(gpu, biases)?)
    else {
        return Ok(None);
    };
    let nd = w.ndim();
    let mut shape = w.shape.to_vec();
    shape[nd - 1] = w.shape[nd - 1] * 32 / bits;
    let (out, optr) = alloc_output(gpu, dtype, &shape)?;
    let n_words = w.numel();
    if n_words == 0 {
        return Ok(Some(out));
    }
    let (wp, sp, bp) = (
        device_ptr(gpu, &w)?,
        device_ptr(gpu, &s)?,
        device_ptr(gpu, &b)?,
    );
    let f = gpu.kernel(&name, || src)?;
    let (nw, gs) = (n_words as i64, group_size as i64);
    let mut bl = gpu.stream.launch_builder(&f);
    bl.arg(&wp).arg(&sp).arg(&bp).arg(&optr).arg(&nw).arg(&gs);
    unsafe { bl.launch(launch_config(n_words)) }
        .map_err(|e| driver_err("launching dequantize", e))?;
    Ok(Some(out))
}

#[allow(clippy::too_many_arguments)]
pub fn quantized_matmul(
    gpu: &'static Gpu,
    x: &ArrayData,
    w: &ArrayData,
    scales: &ArrayData,
    biases: &ArrayData,
    group_size: usize,
    bits: usize,
    transpose: bool,
) -> Result<Option<ArrayData>> {
    if !supported(bits) || scales.dtype != x.dtype || biases.dtype != x.dtype {
        return Ok(None);
    }
    let nd = x.ndim();
    let k = x.shape[nd - 1];
    let rows = x.numel().checked_div(k).unwrap_or(0);
    let matrices = (as_matrix(w), as_matrix(scales), as_matrix(biases));
    if let (true, Some(w2), Some(s2), Some(b2)) = (transpose, matrices.0, matrices.1, matrices.2) {
        if let (true, Some(kern)) = (
            rows <= QMV_MAX_ROWS && k.is_multiple_of(group_size),
            qmv_kernel(bits, x.dtype),
        ) {
            let (Some(xd), Some(wd), Some(s), Some(b)) = (
                dense(gpu, x)?,
                dense(gpu, &w2)?,
                dense(gpu, &s2)?,
                dense(gpu, &b2)?,
            ) else {
                return Ok(None);
            };
            let n = wd.shape[0];
            let mut shape = x.shape.to_vec();
            shape[nd - 1] = n;
            let (out, optr) = alloc_output(gpu, x.dtype, &shape)?;
            if out.numel() == 0 {
                return Ok(Some(out));
            }
            let (xp, wp) = (device_ptr(gpu, &xd)?, device_ptr(gpu, &wd)?);
            let (sp, bp) = (device_ptr(gpu, &s)?, device_ptr(gpu, &b)?);
            let (n64, k64, gs) = (n as i64, k as i64, group_size as i64);
            let fast = k.is_multiple_of(512)
                && group_size.is_multiple_of(16)
                && wp.is_multiple_of(16)
                && xp.is_multiple_of(16);
            if fast {
                let name = format!("{}_fast", kern.name);
                let f = gpu.kernel_in(&kern.name, &name, || kern.src)?;
                let mut bl = gpu.stream.launch_builder(&f);
                bl.arg(&wp).arg(&sp).arg(&bp).arg(&xp).arg(&optr);
                bl.arg(&n64).arg(&k64).arg(&gs);
                let per_block = QMV_FAST_COLS * QMV_FAST_WARPS as usize;
                let cfg = LaunchConfig {
                    grid_dim: (n.div_ceil(per_block) as u32, rows as u32, 1),
                    block_dim: (32 * QMV_FAST_WARPS, 1, 1),
                    shared_mem_bytes: 0,
                };
                unsafe { bl.launch(cfg) }.map_err(|e| driver_err("launching qmv_fast", e))?;
                return Ok(Some(out));
            }
            let f = gpu.kernel(&kern.name, || kern.src)?;
            let mut bl = gpu.stream.launch_builder(&f);
            bl.arg(&wp).arg(&sp).arg(&bp).arg(&xp).arg(&optr);
            let words = k / (32 / bits);
            let vec = (wp.is_multiple_of(16) && words.is_multiple_of(4)) as i32;
            bl.arg(&n64).arg(&k64).arg(&gs).arg(&vec);
            let cfg = LaunchConfig {
                grid_dim: (n.div_ceil(QMV_WARPS as usize) as u32, rows as u32, 1),
                block_dim: (32 * QMV_WARPS, 1, 1),
                shared_mem_bytes: 0,
            };
            unsafe { bl.launch(cfg) }.map_err(|e| driver_err("launching qmv", e))?;
            return Ok(Some(out));
        }
    }
    // dequantize to the activations' dtype, then cuBLAS
    let Some(wf) = dequantize(gpu, w, scales, biases, group_size, bits, x.dtype)? else {
        return Ok(None);
    };
    let wf = if transpose {
        let n = wf.ndim();
        let mut shape = wf.shape.clone();
        let mut strides = wf.strides.clone();
        shape.swap(n - 2, n - 1);
        strides.swap(n - 2, n - 1);
        wf.view(shape, strides, wf.offset)
    } else {
        wf
    };
    matmul::matmul(gpu, x, &wf)
}

#[cfg(test)]
pub fn all_kernels() -> Vec<Kernel> {
    let mut v = Vec::new();
    for bits in [2, 4, 8] {
        for d in [Dtype::Float32, Dtype::Bfloat16, Dtype::Float16] {
            v.extend(qmv_kernel(bits, d));
            v.extend(dequantize_kernel(bits, d, d));
        }
        v.extend(dequantize_kernel(bits, Dtype::Float32, Dtype::Float64));
    }
    v
}
