//! Sort, argsort and partition along one axis, as the CPU's stable sort with NaN last.
//!
//! Every element is keyed by (value, its index in the line); that order is total, so any
//! correct sorting network gives exactly the stable sort. Three kernels:
//! - `tiles`: one block sorts a tile of up to `TILE` elements of a line in shared memory
//!   (a bitonic network, padded to a power of two with entries that sort last);
//! - `merge`: sorted runs of width `w` merge pairwise: each element finds its place in the
//!   other run by binary search (log2(len / TILE) passes, ping-ponging two buffers);
//! - `emit`: values (their original bits, read back from the input) or uint32 indices are
//!   written to the row-major output.
//!
//! A partition is a full sort here: it satisfies the contract (the kth element in place,
//! smaller before, larger after).

use super::elementwise::{generated, Kernel};
use super::prelude::{bits_type, ctype, tag, PRELUDE};
use crate::device::{driver_err, Gpu};
use crate::layout::without_axis;
use crate::memory::{alloc_output, device_ptr, DeviceAlloc};
use cudarc::driver::LaunchConfig;
use rmx_core::{ArrayData, Dtype, Result};

/// Elements one block sorts in shared memory (keys up to 8 bytes + u32 indices: 24 KiB).
const TILE: usize = 2048;
const BLOCK: u32 = 256;

/// The type keys are compared in: the element type, f32 for half types.
fn key_type(dtype: Dtype) -> Option<(&'static str, Dtype)> {
    let t = ctype(dtype)?;
    Some(if t.store == "u16" && t.float {
        ("float", Dtype::Float32)
    } else {
        (t.compute, dtype)
    })
}

/// The three kernels for `dtype` in one source: `{name}_tiles`, `{name}_merge`,
/// `{name}_emit`.
pub fn sort_kernels(dtype: Dtype) -> Option<Kernel> {
    generated(format!("sort_kernels {dtype:?}"), || {
        let t = ctype(dtype)?;
        let (k, _) = key_type(dtype)?;
        let name = format!("sort_{}", tag(dtype));
        let bits = bits_type(dtype.size());
        let src = format!(
            r#"{PRELUDE}
    #define PAD 0xffffffffu
    // MLX's order: `<`, NaN after everything; ties by index (pads last), so the order is
    // total and equals the stable sort's
    __device__ __forceinline__ bool before_{name}({k} a, u32 ia, {k} b, u32 ib) {{
      if (ia == PAD) return false;
      if (ib == PAD) return true;
      const bool na = is_nan(a), nb = is_nan(b);
      if (!na && (nb || a < b)) return true;
      if (!nb && (na || b < a)) return false;
      return ia < ib;
    }}
    extern "C" __global__ void {name}_tiles(const {s}* x, Layout lo, i64 sa, i64 len, i64 tiles, {k}* keys, u32* idx, i64 lines) {{
      __shared__ {k} sk[{TILE}]; __shared__ u32 si[{TILE}];
      for (i64 t = blockIdx.x; t < lines * tiles; t += gridDim.x) {{
        const i64 l = t / tiles, t0 = (t % tiles) * {TILE};
        const int n = (int)(len - t0 < {TILE} ? len - t0 : {TILE});
        int p = 1; while (p < n) p <<= 1;
        const {s}* row = x + loc(lo, l);
        for (int j = threadIdx.x; j < p; j += blockDim.x) {{
          if (j < n) {{ sk[j] = ({k})({load}); si[j] = (u32)(t0 + j); }} else {{ sk[j] = ({k})0; si[j] = PAD; }}
        }}
        __syncthreads();
        for (int size = 2; size <= p; size <<= 1) {{
          for (int stride = size >> 1; stride > 0; stride >>= 1) {{
            for (int j = threadIdx.x; j < p / 2; j += blockDim.x) {{
              const int a = 2 * j - (j & (stride - 1)), b = a + stride;
              const {k} ka = sk[a], kb = sk[b]; const u32 ia = si[a], ib = si[b];
              const bool swap = (a & size) == 0 ? before_{name}(kb, ib, ka, ia) : before_{name}(ka, ia, kb, ib);
              if (swap) {{ sk[a] = kb; sk[b] = ka; si[a] = ib; si[b] = ia; }}
            }}
            __syncthreads();
          }}
        }}
        for (int j = threadIdx.x; j < n; j += blockDim.x) {{ keys[l * len + t0 + j] = sk[j]; idx[l * len + t0 + j] = si[j]; }}
        __syncthreads();
      }}
    }}
    // runs [r0, r0 + w) and [r0 + w, r0 + 2w) of every line merge into one
    extern "C" __global__ void {name}_merge(const {k}* kin, const u32* iin, {k}* kout, u32* iout, i64 len, i64 lines, i64 w) {{
      const i64 n = lines * len;
      for (i64 g = (i64)blockIdx.x * blockDim.x + threadIdx.x; g < n; g += (i64)gridDim.x * blockDim.x) {{
        const i64 l = g / len, p = g % len;
        const i64 r0 = p / (2 * w) * (2 * w);
        const i64 mid = r0 + w < len ? r0 + w : len, end = r0 + 2 * w < len ? r0 + 2 * w : len;
        const {k}* kl = kin + l * len; const u32* il = iin + l * len;
        const {k} key = kl[p]; const u32 ix = il[p];
        // elements of the other run that sort before this one
        i64 lo = p < mid ? mid : r0, hi = p < mid ? end : mid;
        const i64 start = lo;
        while (lo < hi) {{ const i64 m = (lo + hi) >> 1; if (before_{name}(kl[m], il[m], key, ix)) lo = m + 1; else hi = m; }}
        const i64 pos = r0 + (p < mid ? p - r0 : p - mid) + (lo - start);
        kout[l * len + pos] = key; iout[l * len + pos] = ix;
      }}
    }}
    extern "C" __global__ void {name}_emit(const {bits}* x, Layout lo, i64 sa, const u32* idx, i64 len, i64 inner, i64 lines, {bits}* vals, u32* out_idx, int arg) {{
      const i64 n = lines * len;
      for (i64 g = (i64)blockIdx.x * blockDim.x + threadIdx.x; g < n; g += (i64)gridDim.x * blockDim.x) {{
        const i64 l = g / len, p = g % len;
        const i64 o = (l / inner) * len * inner + (l % inner) + p * inner;
        if (arg) out_idx[o] = idx[g]; else vals[o] = x[loc(lo, l) + (i64)idx[g] * sa];
      }}
    }}
"#,
            s = t.store,
            load = t.load("row[(t0 + j) * sa]"),
        );
        Some(Kernel { name, src })
    })
}

fn grid(n: usize) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (n.div_ceil(BLOCK as usize).clamp(1, 1 << 20) as u32, 1, 1),
        block_dim: (BLOCK, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// `x` sorted (or, with `kth`, partitioned: here fully sorted) along `axis`; with `arg`
/// the uint32 source indices. `None` for dtypes without a kernel and out-of-range `kth`
/// (the host path raises the error).
pub fn sort(
    gpu: &'static Gpu,
    x: &ArrayData,
    axis: usize,
    kth: Option<usize>,
    arg: bool,
) -> Result<Option<ArrayData>> {
    let len = x.shape[axis];
    if kth.is_some_and(|k| k >= len && x.numel() > 0) || len > u32::MAX as usize {
        return Ok(None);
    }
    let (Some(Kernel { name, src }), Some((_, key_dtype))) =
        (sort_kernels(x.dtype), key_type(x.dtype))
    else {
        return Ok(None);
    };
    let Some(lo) = without_axis(x, axis) else {
        return Ok(None);
    };
    let (out, optr) = alloc_output(gpu, if arg { Dtype::Uint32 } else { x.dtype }, &x.shape)?;
    let n = x.numel();
    if n == 0 {
        return Ok(Some(out));
    }
    let lines = n / len;
    let xptr = device_ptr(gpu, x)?;
    let ksize = key_dtype.size();
    // two key and index buffers: the merge passes read one and write the other
    let bufs = [
        DeviceAlloc::new(gpu, n * ksize)?,
        DeviceAlloc::new(gpu, n * 4)?,
        DeviceAlloc::new(gpu, n * ksize)?,
        DeviceAlloc::new(gpu, n * 4)?,
    ];
    let (mut kin, mut iin, mut kout, mut iout) =
        (bufs[0].ptr, bufs[1].ptr, bufs[2].ptr, bufs[3].ptr);
    let err = |e| driver_err(&format!("launching {name}"), e);
    let (sa, len64, lines64) = (x.strides[axis] as i64, len as i64, lines as i64);

    let f = gpu.kernel_in(&name, &format!("{name}_tiles"), || src.clone())?;
    let tiles = len.div_ceil(TILE) as i64;
    let mut b = gpu.launch(&f);
    b.arg(&xptr)
        .arg(&lo)
        .arg(&sa)
        .arg(&len64)
        .arg(&tiles)
        .arg(&kin)
        .arg(&iin)
        .arg(&lines64);
    let cfg = LaunchConfig {
        grid_dim: ((lines * tiles as usize).min(1 << 20) as u32, 1, 1),
        block_dim: (1024, 1, 1),
        shared_mem_bytes: 0,
    };
    unsafe { b.launch(cfg) }.map_err(err)?;

    let merge = gpu.kernel_in(&name, &format!("{name}_merge"), || src.clone())?;
    let mut w = TILE;
    while w < len {
        let w64 = w as i64;
        let mut b = gpu.launch(&merge);
        b.arg(&kin)
            .arg(&iin)
            .arg(&kout)
            .arg(&iout)
            .arg(&len64)
            .arg(&lines64)
            .arg(&w64);
        unsafe { b.launch(grid(n)) }.map_err(err)?;
        std::mem::swap(&mut kin, &mut kout);
        std::mem::swap(&mut iin, &mut iout);
        w *= 2;
    }

    let emit = gpu.kernel_in(&name, &format!("{name}_emit"), || src)?;
    let inner = x.shape[axis + 1..].iter().product::<usize>().max(1) as i64;
    let argi = arg as i32;
    let mut b = gpu.launch(&emit);
    b.arg(&xptr)
        .arg(&lo)
        .arg(&sa)
        .arg(&iin)
        .arg(&len64)
        .arg(&inner)
        .arg(&lines64)
        .arg(&optr)
        .arg(&optr)
        .arg(&argi);
    unsafe { b.launch(grid(n)) }.map_err(err)?;
    drop(bufs);
    Ok(Some(out))
}
