//! MLX's affine quantization on the device, for 2, 4 and 8 bits (codes that never straddle
//! a uint32 word): dequantization, and `x @ dequantize(w).T` for few rows of `x` as a
//! matrix-vector kernel that reads the packed weights once (decode). More rows dequantize
//! to the activations' dtype and go through cuBLAS.

use super::elementwise::{generated, launch_config, row_contiguous as dense, Kernel};
use super::gemv::{self, as_matrix};
use super::matmul;
use super::norm_linear::Prologue;
use super::prelude::{ctype, tag, PRELUDE};
use crate::device::{driver_err, Gpu};
use crate::memory::{alloc_output, device_ptr};
use cudarc::driver::LaunchConfig;
use rmx_core::{ArrayData, Dtype, Result};

/// Rows of `x` up to which the matrix-vector kernels run.
const QMV_MAX_ROWS: usize = gemv::MAX_ROWS;
/// Output features per block of the matrix-vector kernel (one warp each).
const QMV_WARPS: u32 = 8;
/// Output features per warp and 16-byte runs of packed words per feature each lane loads
/// before using them, for one-row products (`_vec1`: 4 features x 1 run; `_vec1_pair`: 2
/// x 2, below `QMV_PAIR_BELOW` features) and for several rows (`_vec`: 4 x 2).
/// `bench/qmv_mma.py simt` timed 18 shapes of the kernel on an H200 with the weights
/// streamed from DRAM, as in a decode step (launches inside a CUDA graph, rotating over
/// 256 MiB of weight copies), in microseconds, for the 1 x 2 used before / 2 x 2 / 4 x 1:
/// 2048 x 2048: 3.51 / 3.25 / 3.77; 3072 x 2048: 4.38 / 3.92 / 4.31; 2048 x 8192: 9.13 /
/// 8.90 / 10.97; 16384 x 2048: 14.23 / 12.34 / 10.87; 128256 x 2048: 91.8 / 73.2 / 65.0.
const QMV_VEC_COLS: usize = 4;
const QMV_VEC_UNROLL: usize = 2;
const QMV_PAIR_BELOW: usize = 16384;

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
    // `_vec`: each lane reads 16-byte runs of packed words ({codes} codes of one group,
    // group_size a multiple of {codes}) for COLS output features, UNROLL runs each,
    // all issued before any is used. Codes become floats without an int->float
    // conversion (a quarter-rate instruction per code): a code masked in
    // place and or-ed into 2^23's bits is 2^23 + code * 2^p exactly, p < 23 its bit
    // position; the activation it multiplies is pre-scaled by 2^-p, so each product is
    // the plain x * code. Activations are read in 16-byte runs (L1-resident), once per
    // run for all COLS features.
    // GATED (`_vec1_gated`, swiglu_linear): the warp's first COLS / 2 features are gate rows
    // and the rest the up rows n / 2 after them; it writes silu(gate) * up.
    // NORM (`_norm` entries, rms_norm_linear; one row): x is the row before its RMS norm;
    // the block stages the normalized row in shared memory (norm_linear.rs).
    {swiglu}
    {stage}
    template <int ROWS, int COLS, int UNROLL, bool GATED = false, bool NORM = false>
    __device__ __forceinline__ void {name}_vec_body(const u32* __restrict__ w, const {s}* __restrict__ scales, const {s}* __restrict__ biases, const {s}* x, {s}* __restrict__ out, i64 n, i64 k, i64 group_size, int rows, const {s}* r = nullptr, const {s}* nw = nullptr, {s}* hout = nullptr, float eps = 0.f) {{
      constexpr int PER = 32 / {bits}, CHUNK = 23 / {bits}, CODES = {codes};
      const int lane = threadIdx.x & 31;
      // warps per block: set at launch (`_norm` entries take larger blocks)
      const i64 warp0 = (i64)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
      const i64 col0 = warp0 * COLS, fo0 = warp0 * (COLS / 2);
      // the weight row of feature slot c (n when there is none)
      auto colx = [&](int c) -> i64 {{
        if (!GATED) return col0 + c < n ? col0 + c : n;
        const i64 f = fo0 + c % (COLS / 2);
        return f < n / 2 ? (c < COLS / 2 ? f : n / 2 + f) : n;
      }};
      const i64 vecs = k / CODES, groups = k / group_size, words = k / PER;
      // the packed rows stream into L2 while the kernel producing x finishes (launch.rs)
      if (lane < COLS && colx(lane) < n) RMX_PREFETCH_L2(w + colx(lane) * words, vecs * 16);
      if (NORM && blockIdx.x == 0 && threadIdx.x == 32) RMX_PREFETCH_L2(nw, k * sizeof({s}));
      RMX_GRID_WAIT();
      if (NORM) {{
        extern __shared__ uint4 {name}_staged[];
        {name}_stage(x, r, nw, hout, reinterpret_cast<{s}*>({name}_staged), k, eps);
        x = reinterpret_cast<const {s}*>({name}_staged);
      }}
      if (colx(0) >= n) return;
      float acc[ROWS][COLS] = {{}};
      for (i64 base = lane; base < vecs; base += 32 * UNROLL) {{
        uint4 wv[COLS][UNROLL];
        float sv[COLS][UNROLL], bv[COLS][UNROLL];
    #pragma unroll
        for (int c = 0; c < COLS; ++c)
    #pragma unroll
          for (int u = 0; u < UNROLL; ++u) {{
            const i64 i = base + 32 * u, col = colx(c);
            if (i < vecs && col < n) {{
              const i64 g = col * groups + i * CODES / group_size;
              wv[c][u] = reinterpret_cast<const uint4*>(w + col * words)[i];
              sv[c][u] = {lsv};
              bv[c][u] = {lbv};
            }}
          }}
    #pragma unroll
        for (int u = 0; u < UNROLL; ++u) {{
          const i64 i = base + 32 * u;
          if (i >= vecs) continue;
    #pragma unroll
          for (int m = 0; m < ROWS; ++m) {{
            if (m >= rows) continue;
            float xf[CODES];
            const uint4* xr = reinterpret_cast<const uint4*>(x + m * k + i * CODES);
    #pragma unroll
            for (int h = 0; h < {xruns}; ++h) {{
              const uint4 xv = xr[h];
              float* xh = xf + h * {xvec};
              {unpack_x}
            }}
            float xsum = 0.f;
    #pragma unroll
            for (int e = 0; e < CODES; ++e) {{
              xsum += xf[e];
              xf[e] *= __int_as_float((127 - ((e % PER) % CHUNK) * {bits}) << 23);
            }}
    #pragma unroll
            for (int c = 0; c < COLS; ++c) {{
              if (colx(c) >= n) continue;
              const u32 q[4] = {{wv[c][u].x, wv[c][u].y, wv[c][u].z, wv[c][u].w}};
              float d = 0.f;
    #pragma unroll
              for (int e = 0; e < CODES; ++e) {{
                const int pos = e % PER, chunk = pos / CHUNK, j = pos % CHUNK;
                const u32 v = ((q[e / PER] >> (chunk * CHUNK * {bits})) & (((1u << {bits}) - 1) << (j * {bits}))) | 0x4B000000u;
                d = __fmaf_rn(xf[e], __uint_as_float(v) - 8388608.f, d);
              }}
              acc[m][c] += sv[c][u] * d + bv[c][u] * xsum;
            }}
          }}
        }}
      }}
    #pragma unroll
      for (int m = 0; m < ROWS; ++m)
    #pragma unroll
        for (int c = 0; c < COLS; ++c) {{
          if (m >= rows || colx(c) >= n) continue;
          float a = acc[m][c];
          for (int o = 16; o > 0; o >>= 1) a += __shfl_xor_sync(0xffffffff, a, o);
          acc[m][c] = a;
          if (!GATED && lane == 0) out[m * n + col0 + c] = {sta};
        }}
      if (GATED && lane == 0)
    #pragma unroll
        for (int m = 0; m < ROWS; ++m)
    #pragma unroll
          for (int c = 0; c < COLS / 2; ++c)
            if (m < rows && colx(c) < n) out[m * (n / 2) + fo0 + c] = {name}_swiglu(acc[m][c], acc[m][c + COLS / 2]);
    }}
    // the entries below wait in `_vec_body`, after its prefetch (launch.rs inserts a
    // wait into entries whose body does not name RMX_GRID_WAIT)
    extern "C" __global__ void {name}_vec1(const u32* w, const {s}* scales, const {s}* biases, const {s}* x, {s}* out, i64 n, i64 k, i64 group_size, int rows) {{
      {name}_vec_body<1, {cols}, 1>(w, scales, biases, x, out, n, k, group_size, rows);  // RMX_GRID_WAIT inside
    }}
    extern "C" __global__ void {name}_vec1_gated(const u32* w, const {s}* scales, const {s}* biases, const {s}* x, {s}* out, i64 n, i64 k, i64 group_size, int rows) {{
      {name}_vec_body<1, {cols}, 1, true>(w, scales, biases, x, out, n, k, group_size, rows);  // RMX_GRID_WAIT inside
    }}
    extern "C" __global__ void {name}_vec1_pair(const u32* w, const {s}* scales, const {s}* biases, const {s}* x, {s}* out, i64 n, i64 k, i64 group_size, int rows) {{
      {name}_vec_body<1, 2, 2>(w, scales, biases, x, out, n, k, group_size, rows);  // RMX_GRID_WAIT inside
    }}
    extern "C" __global__ void {name}_vec1_norm(const u32* w, const {s}* scales, const {s}* biases, const {s}* x, {s}* out, i64 n, i64 k, i64 group_size, int rows, const {s}* r, const {s}* nw, {s}* hout, float eps) {{
      {name}_vec_body<1, {cols}, 1, false, true>(w, scales, biases, x, out, n, k, group_size, rows, r, nw, hout, eps);  // RMX_GRID_WAIT inside
    }}
    extern "C" __global__ void {name}_vec1_gated_norm(const u32* w, const {s}* scales, const {s}* biases, const {s}* x, {s}* out, i64 n, i64 k, i64 group_size, int rows, const {s}* r, const {s}* nw, {s}* hout, float eps) {{
      {name}_vec_body<1, {cols}, 1, true, true>(w, scales, biases, x, out, n, k, group_size, rows, r, nw, hout, eps);  // RMX_GRID_WAIT inside
    }}
    extern "C" __global__ void {name}_vec1_pair_norm(const u32* w, const {s}* scales, const {s}* biases, const {s}* x, {s}* out, i64 n, i64 k, i64 group_size, int rows, const {s}* r, const {s}* nw, {s}* hout, float eps) {{
      {name}_vec_body<1, 2, 2, false, true>(w, scales, biases, x, out, n, k, group_size, rows, r, nw, hout, eps);  // RMX_GRID_WAIT inside
    }}
    extern "C" __global__ void {name}_vec(const u32* w, const {s}* scales, const {s}* biases, const {s}* x, {s}* out, i64 n, i64 k, i64 group_size, int rows) {{
      {name}_vec_body<{rows_max}, {cols}, {unroll}>(w, scales, biases, x, out, n, k, group_size, rows);  // RMX_GRID_WAIT inside
    }}
    "#,
            s = t.store,
            lx = t.load("xr[k0 + e]"),
            lsc = t.load("sr[g]"),
            lbi = t.load("br[g]"),
            st = t.store("acc"),
            codes = 128 / bits,
            unroll = QMV_VEC_UNROLL,
            rows_max = QMV_MAX_ROWS,
            xvec = 16 / dtype.size(),
            xruns = 128 / bits * dtype.size() / 16,
            cols = QMV_VEC_COLS,
            unpack_x = gemv::unpack16(dtype, "xv", "xh")?,
            lsv = t.load("scales[g]"),
            lbv = t.load("biases[g]"),
            sta = t.store("a"),
            swiglu = super::ops_c::swiglu_fn(&format!("{name}_swiglu"), &t)?,
            stage = super::norm_linear::stage_fn(&format!("{name}_stage"), &t),
        );
        Some(Kernel { name, src })
    })
}

/// A `_vec` entry of the 4-bit-style kernel over `grid_features` groups of columns (one
/// warp each): pointers `[w, scales, biases, x, out]`, sizes `(n, k, group_size, rows)`;
/// with a `norm`, the entry's `_norm` form.
fn launch_vec(
    gpu: &'static Gpu,
    kern: &Kernel,
    entry: &str,
    ptrs: [u64; 5],
    (n, k, group_size, rows): (usize, usize, usize, usize),
    warps_needed: usize,
    norm: Option<Prologue>,
) -> Result<()> {
    let suffix = if norm.is_some() { "_norm" } else { "" };
    let name = format!("{}{entry}{suffix}", kern.name);
    let f = gpu.kernel_in(&kern.name, &name, || kern.src.clone())?;
    let mut bl = gpu.launch(&f);
    for p in &ptrs {
        bl.arg(p);
    }
    let (n64, k64, gs, r32) = (n as i64, k as i64, group_size as i64, rows as i32);
    bl.arg(&n64).arg(&k64).arg(&gs).arg(&r32);
    if let Some(p) = &norm {
        bl.arg(&p.residual).arg(&p.weight).arg(&p.h_out).arg(&p.eps);
    }
    let block = norm.map_or(gemv::WARPS, |_| super::norm_linear::norm_warps().1);
    let cfg = LaunchConfig {
        grid_dim: (warps_needed.div_ceil(block as usize) as u32, 1, 1),
        block_dim: (32 * block, 1, 1),
        shared_mem_bytes: norm.map_or(0, |p| p.smem),
    };
    unsafe { bl.launch(cfg) }.map_err(|e| driver_err("launching qmv_vec", e))
}

/// `silu(x W_g^T) * (x W_u^T)` for one row of `x` and a packed `W = [W_g; W_u]`
/// (`swiglu_linear`) by the `_vec1_gated` entry; `None` where it does not apply.
#[allow(clippy::too_many_arguments)]
pub fn quantized_swiglu(
    gpu: &'static Gpu,
    x: &ArrayData,
    w: &ArrayData,
    scales: &ArrayData,
    biases: &ArrayData,
    group_size: usize,
    bits: usize,
) -> Result<Option<ArrayData>> {
    qmv_one_row(gpu, x, [w, scales, biases], (group_size, bits), true, None)
}

/// `x @ W^T` (or, `gated`, its SwiGLU of gate/up row pairs) for one row of `x` and a
/// packed `W` (`[w, scales, biases]`) by a one-row `_vec1` entry, with the norm prologue
/// when `norm` is given (`rms_norm_linear`); `None` where it does not apply.
pub(crate) fn qmv_one_row(
    gpu: &'static Gpu,
    x: &ArrayData,
    [w, scales, biases]: [&ArrayData; 3],
    (group_size, bits): (usize, usize),
    gated: bool,
    norm: Option<Prologue>,
) -> Result<Option<ArrayData>> {
    let nd = x.ndim();
    let k = x.shape[nd - 1];
    let rows = x.numel().checked_div(k).unwrap_or(0);
    let fits = supported(bits)
        && scales.dtype == x.dtype
        && biases.dtype == x.dtype
        && rows == 1
        && w.ndim() == 2
        && (!gated || w.shape[0].is_multiple_of(2))
        && k.is_multiple_of(group_size)
        && group_size.is_multiple_of(128 / bits);
    let Some(kern) = qmv_kernel(bits, x.dtype).filter(|_| fits) else {
        return Ok(None);
    };
    let (Some(xd), Some(wd), Some(s), Some(b)) = (
        dense(gpu, x)?,
        dense(gpu, w)?,
        dense(gpu, scales)?,
        dense(gpu, biases)?,
    ) else {
        return Ok(None);
    };
    let (xp, wp) = (device_ptr(gpu, &xd)?, device_ptr(gpu, &wd)?);
    if !xp.is_multiple_of(16) || !wp.is_multiple_of(16) {
        return Ok(None);
    }
    let n = wd.shape[0];
    let mut shape = x.shape.to_vec();
    shape[nd - 1] = if gated { n / 2 } else { n };
    let (out, optr) = alloc_output(gpu, x.dtype, &shape)?;
    if out.numel() == 0 {
        return Ok(Some(out));
    }
    let ptrs = [wp, device_ptr(gpu, &s)?, device_ptr(gpu, &b)?, xp, optr];
    // the shapes `quantized_matmul` picks for one row (see QMV_PAIR_BELOW)
    let (entry, warps) = match (gated, n < QMV_PAIR_BELOW) {
        (true, _) => ("_vec1_gated", (n / 2).div_ceil(QMV_VEC_COLS / 2)),
        (false, true) => ("_vec1_pair", n.div_ceil(2)),
        (false, false) => ("_vec1", n.div_ceil(QMV_VEC_COLS)),
    };
    launch_vec(
        gpu,
        &kern,
        entry,
        ptrs,
        (n, k, group_size, rows),
        warps,
        norm,
    )?;
    Ok(Some(out))
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
    let mut bl = gpu.launch(&f);
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
            // 16-byte runs of packed words never straddle a group, and rows and
            // activations are 16-byte aligned
            let vectorized = group_size.is_multiple_of(128 / bits)
                && wp.is_multiple_of(16)
                && xp.is_multiple_of(16);
            if vectorized {
                let pair = rows == 1 && n < QMV_PAIR_BELOW;
                let cols = if pair { 2 } else { QMV_VEC_COLS };
                let entry = match (rows, pair) {
                    (1, true) => "_vec1_pair",
                    (1, false) => "_vec1",
                    _ => "_vec",
                };
                let ptrs = [wp, sp, bp, xp, optr];
                launch_vec(
                    gpu,
                    &kern,
                    entry,
                    ptrs,
                    (n, k, group_size, rows),
                    n.div_ceil(cols),
                    None,
                )?;
                return Ok(Some(out));
            }
            let f = gpu.kernel(&kern.name, || kern.src)?;
            let mut bl = gpu.launch(&f);
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
