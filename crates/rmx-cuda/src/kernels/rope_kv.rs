//! `rope_kv_update` in one kernel: a decoder layer's fused q|k|v projection `[B, L, Hq + 2
//! Hkv, D]` to its rotated queries `[B, Hq, L, D]`, with the rotated keys and the values
//! written into the caches `[B, Hkv, S, D]` at position `offset + l` (in place when the
//! caches were donated). A decode step's RoPE and two scatters were three kernels. The
//! rotation is `rope`'s expression (fast.rs), so values are the same bit for bit.

use super::elementwise::{cast, generated, launch_config, row_contiguous as dense, Kernel};
use super::indexing::{CHECKED, SCATTER};
use super::prelude::{ctype, tag, PRELUDE};
use crate::device::{driver_err, Gpu};
use crate::memory::{alloc_output, device_ptr, device_ptr_mut};
use rmx_core::allocator::Residency;
use rmx_core::backend::RopeSpec;
use rmx_core::{ArrayData, Dtype, Result};

pub fn rope_kv_kernel(dtype: Dtype) -> Option<Kernel> {
    generated(format!("rope_kv_kernel {dtype:?}"), || {
        let t = ctype(dtype).filter(|t| t.float)?;
        let name = format!("rope_kv_{}", tag(dtype));
        let src = format!(
            r#"{PRELUDE}{CHECKED}
    // x [B, L, hq + 2 hkv, d] (strides xs0, xs1, xs2; features contiguous); q [B, hq, L, d],
    // kc and vc [B, hkv, size, d] dense. One thread per rotated pair or passed-through feature.
    extern "C" __global__ void {name}(const {s}* x, {s}* q, {s}* kc, {s}* vc, const i32* offs,
        const float* freqs, i64 bsz, i64 l, i64 hq, i64 hkv, i64 d, i64 half, i64 size,
        i64 xs0, i64 xs1, i64 xs2, int trad, double log_step, double scale, i64* err) {{
      // the frequencies (a constant) head for L2 while the kernel before finishes (launch.rs)
      if (freqs && blockIdx.x == 0 && threadIdx.x == 0 && (half * 4) % 16 == 0 && ((u64)freqs & 15) == 0)
        RMX_PREFETCH_L2(freqs, half * 4);
      RMX_GRID_WAIT();
      const i64 heads = hq + 2 * hkv, per_row = d - half, n = bsz * l * heads * per_row;
      for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (i64)gridDim.x * blockDim.x) {{
        const i64 j = i % per_row, row = i / per_row, h = row % heads, tl = row / heads;
        const i64 t = tl % l, bi = tl / l;
        const {s}* xr = x + bi * xs0 + t * xs1 + h * xs2;
        {s}* orow;
        if (h < hq) {{
          orow = q + ((bi * hq + h) * l + t) * d;
        }} else {{
          i64 p = (i64)offs[0] + t;
          if (!wrap_index(p, size, err, {SCATTER}, 2)) continue;
          const bool key = h < hq + hkv;
          orow = (key ? kc : vc) + ((bi * hkv + (key ? h - hq : h - hq - hkv)) * size + p) * d;
        }}
        if (j >= half) {{ orow[half + j] = xr[half + j]; continue; }}
        if (h >= hq + hkv) {{
          const i64 ia = trad ? 2 * j : j, ib = trad ? 2 * j + 1 : j + half;
          orow[ia] = xr[ia]; orow[ib] = xr[ib];
          continue;
        }}
        {rotate}
      }}
    }}
    "#,
            s = t.store,
            rotate = super::fast::rotate_pair(&t, "offs[0]"),
        );
        Some(Kernel { name, src })
    })
}

/// `[q, k_cache', v_cache']`, or `None` where the kernel does not apply (the host runs it).
pub fn rope_kv_update(
    gpu: &'static Gpu,
    [x, k_cache, v_cache]: [&ArrayData; 3],
    offset: &ArrayData,
    freqs: Option<&ArrayData>,
    spec: RopeSpec,
    (hq, hkv): (usize, usize),
) -> Result<Option<[ArrayData; 3]>> {
    let Some(Kernel { name, src }) = rope_kv_kernel(x.dtype) else {
        return Ok(None);
    };
    let fits = x.ndim() == 4
        && x.strides[3] == 1
        && offset.dtype == Dtype::Int32
        && offset.numel() == 1
        && freqs.is_none_or(|f| f.dtype == Dtype::Float32)
        && k_cache.dtype == x.dtype
        && v_cache.dtype == x.dtype;
    if !fits {
        return Ok(None);
    }
    let Some(offset) = dense(gpu, offset)? else {
        return Ok(None);
    };
    let freqs = match freqs {
        Some(f) => match dense(gpu, f)? {
            Some(f) => Some(f),
            None => return Ok(None),
        },
        None => None,
    };
    // the caches themselves when donated, else fresh dense copies to write into
    let writable = |c: &ArrayData| -> Result<Option<ArrayData>> {
        if c.is_donated_whole() {
            Ok(Some(c.clone()))
        } else {
            cast(gpu, c, c.dtype)
        }
    };
    let (Some(kc), Some(vc)) = (writable(k_cache)?, writable(v_cache)?) else {
        return Ok(None);
    };
    let (bsz, l, d) = (x.shape[0], x.shape[1], x.shape[3]);
    let (q, qptr) = alloc_output(gpu, x.dtype, &[bsz, hq, l, d])?;
    let half = spec.dims / 2;
    let n = bsz * l * (hq + 2 * hkv) * (d - half);
    if n == 0 {
        return Ok(Some([q, kc, vc]));
    }
    let (xp, op) = (device_ptr(gpu, x)?, device_ptr(gpu, &offset)?);
    let fp = match &freqs {
        Some(f) => device_ptr(gpu, f)?,
        None => 0u64,
    };
    let (kp, vp) = (device_ptr_mut(gpu, &kc)?, device_ptr_mut(gpu, &vc)?);
    let f = gpu.kernel(&name, || src)?;
    let dims = [bsz, l, hq, hkv, d, half, kc.shape[2]].map(|v| v as i64);
    let xs = [x.strides[0], x.strides[1], x.strides[2]].map(|v| v as i64);
    let trad = spec.traditional as i32;
    let log_step = -(spec.base as f64).ln() / half as f64;
    let scale = spec.scale as f64;
    let mut b = gpu.launch(&f);
    b.arg(&xp).arg(&qptr).arg(&kp).arg(&vp).arg(&op).arg(&fp);
    for v in dims.iter().chain(&xs) {
        b.arg(v);
    }
    b.arg(&trad).arg(&log_step).arg(&scale);
    b.arg(&gpu.index_errors.device);
    unsafe { b.launch(launch_config(n)) }.map_err(|e| driver_err("launching rope_kv", e))?;
    // a donated buffer's host copy is stale now
    kc.buffer.set_residency(Residency::GPU);
    vc.buffer.set_residency(Residency::GPU);
    Ok(Some([q, kc, vc]))
}

#[cfg(test)]
pub fn all_kernels() -> Vec<Kernel> {
    [Dtype::Float32, Dtype::Float16, Dtype::Bfloat16]
        .into_iter()
        .filter_map(rope_kv_kernel)
        .collect()
}
