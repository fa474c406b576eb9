//! `x @ W.T` for a few rows of `x` and a float weight `W` whose rows are contiguous (a
//! `Linear` layer's layout): the matrix-vector product of decoding, where a cuBLAS GEMM
//! call cost 20 µs of host time per product against 7-8 µs for this kernel's launch
//! (H200 machines, Llama-1B decode). One warp per output feature;
//! each lane reads 16-byte runs of its row, several issued before any is used, so enough
//! loads are in flight to stream the weight; f32 accumulation.

use super::elementwise::{generated, Kernel};
use super::prelude::{ctype, tag, PRELUDE};
use crate::device::{driver_err, Gpu};
use crate::memory::{alloc_output, device_ptr};
use cudarc::driver::{LaunchConfig, PushKernelArg};
use rmx_core::{ArrayData, Dtype, Result};

/// Rows of `x` up to which the matrix-vector kernels run (their accumulators are registers).
pub const MAX_ROWS: usize = 8;
/// Output features per block (one warp each).
pub const WARPS: u32 = 4;
/// 16-byte runs each lane loads before using them.
const UNROLL: usize = 4;

/// `a` (`[..., R, C]`) as one matrix when every batch axis is broadcast (stride 0) or 1.
pub fn as_matrix(a: &ArrayData) -> Option<ArrayData> {
    let n = a.ndim();
    if n < 2 || (0..n - 2).any(|d| a.shape[d] != 1 && a.strides[d] != 0) {
        return None;
    }
    Some(a.view(a.shape[n - 2..].into(), a.strides[n - 2..].into(), a.offset))
}

/// C statements unpacking the 16-byte run `src` (a `uint4`) into `float dst[16 / size]`.
pub fn unpack16(dtype: Dtype, src: &str, dst: &str) -> Option<String> {
    let t = ctype(dtype)?;
    Some(match dtype {
        Dtype::Float32 => format!(
            "{dst}[0] = __uint_as_float({src}.x); {dst}[1] = __uint_as_float({src}.y); {dst}[2] = __uint_as_float({src}.z); {dst}[3] = __uint_as_float({src}.w);"
        ),
        Dtype::Float16 | Dtype::Bfloat16 => {
            let mut s = format!("{{ const u32 ws_[4] = {{{src}.x, {src}.y, {src}.z, {src}.w}};\n#pragma unroll\n for (int j_ = 0; j_ < 4; ++j_) {{ ");
            s += &format!(
                "{dst}[2 * j_] = {}; {dst}[2 * j_ + 1] = {}; }} }}",
                t.load("(u16)(ws_[j_] & 0xffffu)"),
                t.load("(u16)(ws_[j_] >> 16)")
            );
            s
        }
        _ => return None,
    })
}

/// The dense kernel for `dtype` (f32, f16 or bf16).
pub fn gemv_kernel(dtype: Dtype) -> Option<Kernel> {
    generated(format!("gemv_kernel {dtype:?}"), || {
        let t = ctype(dtype)?;
        let vec = 16 / dtype.size();
        let name = format!("gemv_{}", tag(dtype));
        let src = format!(
            r#"{PRELUDE}
// out[m, c] = sum_k x[m, k] w[c * ldw + k] for m < rows (x contiguous [rows, k]); k and ldw
// multiples of {vec}, w and x 16-byte aligned.
extern "C" __global__ void {name}(const {s}* __restrict__ w, const {s}* __restrict__ x, {s}* __restrict__ out, i64 n, i64 k, i64 ldw, int rows) {{
  const int lane = threadIdx.x & 31;
  const i64 col = (i64)blockIdx.x * {WARPS} + (threadIdx.x >> 5);
  if (col >= n) return;
  const uint4* wr = reinterpret_cast<const uint4*>(w + col * ldw);
  const i64 vecs = k / {vec};
  float acc[{MAX_ROWS}] = {{}};
  for (i64 base = lane; base < vecs; base += 32 * {UNROLL}) {{
    uint4 wv[{UNROLL}];
#pragma unroll
    for (int u = 0; u < {UNROLL}; ++u) {{
      const i64 i = base + 32 * u;
      if (i < vecs) wv[u] = wr[i];
    }}
#pragma unroll
    for (int u = 0; u < {UNROLL}; ++u) {{
      const i64 i = base + 32 * u;
      if (i < vecs) {{
        float wf[{vec}];
        {unpack_w}
#pragma unroll
        for (int m = 0; m < {MAX_ROWS}; ++m) {{
          if (m < rows) {{
            const uint4 xv = reinterpret_cast<const uint4*>(x + m * k)[i];
            float xf[{vec}];
            {unpack_x}
            float d = 0.f;
#pragma unroll
            for (int e = 0; e < {vec}; ++e) d = __fmaf_rn(wf[e], xf[e], d);
            acc[m] += d;
          }}
        }}
      }}
    }}
  }}
#pragma unroll
  for (int m = 0; m < {MAX_ROWS}; ++m) {{
    if (m < rows) {{
      float a = acc[m];
      for (int o = 16; o > 0; o >>= 1) a += __shfl_xor_sync(0xffffffff, a, o);
      if (lane == 0) out[m * n + col] = {st};
    }}
  }}
}}
"#,
            s = t.store,
            unpack_w = unpack16(dtype, "wv[u]", "wf")?,
            unpack_x = unpack16(dtype, "xv", "xf")?,
            st = t.store("a"),
        );
        Some(Kernel { name, src })
    })
}

/// `a @ b` by the matrix-vector kernel when `a` has at most `MAX_ROWS` rows in all and `b`
/// is one transposed matrix with contiguous rows (`W.T` of a row-major `W`), aligned for
/// 16-byte loads; `Ok(None)` otherwise (cuBLAS takes it).
pub fn gemv(gpu: &'static Gpu, a: &ArrayData, b: &ArrayData) -> Result<Option<ArrayData>> {
    if !matches!(a.dtype, Dtype::Float32 | Dtype::Float16 | Dtype::Bfloat16) || b.dtype != a.dtype {
        return Ok(None);
    }
    let nd = a.ndim();
    let k = a.shape[nd - 1];
    let rows = a.numel().checked_div(k).unwrap_or(0);
    let vec = 16 / a.dtype.size();
    if rows == 0 || rows > MAX_ROWS || k == 0 || !k.is_multiple_of(vec) || !a.is_row_contiguous() {
        return Ok(None);
    }
    let Some(bm) = as_matrix(b) else {
        return Ok(None);
    };
    // b is [k, n] with unit stride along k: W's rows, ldw apart
    let (n, ldw) = (bm.shape[1], bm.strides[1]);
    if bm.strides[0] != 1 || ldw < k as isize || !(ldw as usize).is_multiple_of(vec) || n == 0 {
        return Ok(None);
    }
    let (xp, wp) = (device_ptr(gpu, a)?, device_ptr(gpu, &bm)?);
    if !xp.is_multiple_of(16) || !wp.is_multiple_of(16) {
        return Ok(None);
    }
    let Some(kern) = gemv_kernel(a.dtype) else {
        return Ok(None);
    };
    let mut shape = a.shape.to_vec();
    shape[nd - 1] = n;
    let (out, optr) = alloc_output(gpu, a.dtype, &shape)?;
    let f = gpu.kernel(&kern.name, || kern.src)?;
    let (n64, k64, ld64, r32) = (n as i64, k as i64, ldw as i64, rows as i32);
    let mut bl = gpu.stream.launch_builder(&f);
    bl.arg(&wp)
        .arg(&xp)
        .arg(&optr)
        .arg(&n64)
        .arg(&k64)
        .arg(&ld64)
        .arg(&r32);
    let cfg = LaunchConfig {
        grid_dim: (n.div_ceil(WARPS as usize) as u32, 1, 1),
        block_dim: (32 * WARPS, 1, 1),
        shared_mem_bytes: 0,
    };
    unsafe { bl.launch(cfg) }.map_err(|e| driver_err("launching gemv", e))?;
    Ok(Some(out))
}

#[cfg(test)]
pub fn all_kernels() -> Vec<Kernel> {
    [Dtype::Float32, Dtype::Float16, Dtype::Bfloat16]
        .into_iter()
        .filter_map(gemv_kernel)
        .collect()
}
