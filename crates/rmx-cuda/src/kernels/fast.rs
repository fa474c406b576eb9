//! The fast ops of LLM layers: rotary embedding and fused attention.
//!
//! Attention from 16 query rows per batch element goes through cuBLAS
//! (`attention_gemm.rs`); otherwise (and with attention sinks) it is one block per (batch,
//! head, query row) with four warps; each warp walks every fourth key with an online
//! softmax (lanes split the head dimension), then the warps' partial results are merged. The (Lq, Lk) scores never exist in memory. Masked
//! bool entries score the dtype's lowest finite value and causal alignment is MLX's
//! (lower right), as on the CPU.

use super::elementwise::{generated, launch_config, row_contiguous as dense, Kernel};
use super::prelude::{ctype, tag, CType, PRELUDE};
use crate::device::{driver_err, Gpu, BLOCK_COUNTERS};
use crate::memory::{alloc_output, device_ptr};
use cudarc::driver::LaunchConfig;
use rmx_core::backend::{AttnMask, RopeSpec};
use rmx_core::dtype::finfo;
use rmx_core::{ArrayData, Dtype, Result};

/// The C statements rotating pair `j` (`j < half`) of row `xr` into `orow` at position
/// `t + {offset}`: shared by `rope` and `rope_kv_update`, so the two give the same bits.
/// Needs `freqs`, `log_step`, `scale`, `trad`, `half` in scope; `t` the compute type.
pub fn rotate_pair(t: &CType, offset: &str) -> String {
    let c = t.compute;
    format!(
        r#"const double inv = freqs ? 1.0 / (double)freqs[j] : exp((double)j * log_step);
        const double theta = fmod(((double)t + (double){offset}) * scale * inv, 6.283185307179586);
        float sn, cs; sincosf((float)theta, &sn, &cs);
        const i64 ia = trad ? 2 * j : j, ib = trad ? 2 * j + 1 : j + half;
        const {c} a = {la}, b = {lb};
        orow[ia] = {sa}; orow[ib] = {sb};"#,
        la = t.load("xr[ia]"),
        lb = t.load("xr[ib]"),
        sa = t.store(&format!("a * ({c})cs - b * ({c})sn")),
        sb = t.store(&format!("a * ({c})sn + b * ({c})cs")),
    )
}

pub fn rope_kernel(dtype: Dtype) -> Option<Kernel> {
    generated(format!("rope_kernel {:?}", (dtype,)), || {
        let t = ctype(dtype).filter(|t| t.float)?;
        let name = format!("rope_{}", tag(dtype));
        let src = format!(
            r#"{PRELUDE}
    extern "C" __global__ void {name}(const {s}* x, {s}* out, const i32* offs, const float* freqs,
        i64 n_rows, i64 d, i64 half, i64 t_len, i64 per_batch_rows, int by_batch, int trad,
        double log_step, double scale) {{
      // the frequencies (a constant) head for L2 while the kernel before finishes (launch.rs)
      if (freqs && blockIdx.x == 0 && threadIdx.x == 0 && (half * 4) % 16 == 0 && ((u64)freqs & 15) == 0)
        RMX_PREFETCH_L2(freqs, half * 4);
      RMX_GRID_WAIT();
      const i64 per_row = d - half, n = n_rows * per_row;
      for (i64 k = (i64)blockIdx.x * blockDim.x + threadIdx.x; k < n; k += (i64)gridDim.x * blockDim.x) {{
        const i64 row = k / per_row, j = k % per_row;
        const {s}* xr = x + row * d; {s}* orow = out + row * d;
        if (j >= half) {{ orow[half + j] = xr[half + j]; continue; }}
        const i64 t = row % t_len, o = by_batch ? row / per_batch_rows : 0;
        {rotate}
      }}
    }}
    "#,
            s = t.store,
            rotate = rotate_pair(&t, "offs[o]"),
        );
        Some(Kernel { name, src })
    })
}

pub fn rope(
    gpu: &'static Gpu,
    x: &ArrayData,
    offset: &ArrayData,
    freqs: Option<&ArrayData>,
    spec: RopeSpec,
) -> Result<Option<ArrayData>> {
    let Some(Kernel { name, src }) = rope_kernel(x.dtype) else {
        return Ok(None);
    };
    if offset.dtype != Dtype::Int32 || freqs.is_some_and(|f| f.dtype != Dtype::Float32) {
        return Ok(None);
    }
    let (Some(x), Some(offset)) = (dense(gpu, x)?, dense(gpu, offset)?) else {
        return Ok(None);
    };
    let freqs = match freqs {
        Some(f) => dense(gpu, f)?,
        None => None,
    };
    let (out, optr) = alloc_output(gpu, x.dtype, &x.shape)?;
    let nd = x.ndim();
    if x.numel() == 0 || nd < 2 {
        return Ok(if x.numel() == 0 { Some(out) } else { None });
    }
    let (t_len, d) = (x.shape[nd - 2] as i64, x.shape[nd - 1] as i64);
    let half = (spec.dims / 2) as i64;
    let n_rows = (x.numel() as i64) / d;
    let per_batch_rows = n_rows / x.shape[0] as i64;
    let by_batch = (offset.numel() > 1) as i32;
    let trad = spec.traditional as i32;
    let log_step = -(spec.base as f64).ln() / half as f64;
    let scale = spec.scale as f64;
    let (xp, op) = (device_ptr(gpu, &x)?, device_ptr(gpu, &offset)?);
    let fp = match &freqs {
        Some(f) => device_ptr(gpu, f)?,
        None => 0u64,
    };
    let f = gpu.kernel(&name, || src)?;
    let mut b = gpu.launch(&f);
    b.arg(&xp).arg(&optr).arg(&op).arg(&fp);
    b.arg(&n_rows)
        .arg(&d)
        .arg(&half)
        .arg(&t_len)
        .arg(&per_batch_rows);
    b.arg(&by_batch).arg(&trad).arg(&log_step).arg(&scale);
    let n = (n_rows * (d - half)) as usize;
    unsafe { b.launch(launch_config(n)) }.map_err(|e| driver_err("launching rope", e))?;
    Ok(Some(out))
}

/// Head dimensions up to `32 * PER_LANE`.
const PER_LANE: usize = 8;
const WARPS: u32 = 4;

/// Query rows below which attention splits each row's keys over blocks (each such row
/// needs one of the device's block counters).
const SPLIT_ROWS: usize = 264;
const _: () = assert!(SPLIT_ROWS <= BLOCK_COUNTERS);

/// Mask kinds of the attention kernel.
pub(super) const NO_MASK: i32 = 0;
pub(super) const CAUSAL: i32 = 1;
pub(super) const BOOL_MASK: i32 = 2;
pub(super) const ADD_MASK: i32 = 3;

pub fn attention_kernel(dtype: Dtype, mask_dtype: Option<Dtype>) -> Option<Kernel> {
    generated(
        format!("attention_kernel {:?}", (dtype, mask_dtype)),
        || {
            let t = ctype(dtype).filter(|t| t.float)?;
            let mt = ctype(mask_dtype.unwrap_or(dtype))?;
            let name = format!(
                "attention_{}_{}",
                tag(dtype),
                mask_dtype.map_or("none", tag)
            );
            let c = t.compute;
            let exp = t.math("exp");
            let src = format!(
                r#"{PRELUDE}
    #define PL {PER_LANE}
    extern "C" __global__ void {name}(const {s}* q, const {s}* k, const {s}* v, const {ms}* mask,
        const {s}* sinks, {s}* out, i64 hq, i64 rep, i64 lq, i64 lk, i64 d, i64 dv,
        i64 qs0, i64 qs1, i64 qs2, i64 ks0, i64 ks1, i64 ks2, i64 vs0, i64 vs1, i64 vs2,
        i64 ms0, i64 ms1, i64 ms2, i64 ms3, int mask_kind, {c} scale, {c} lowest, i64 chunk,
        {c}* part_o, {c}* part_ml, unsigned* counters) {{
      const i64 row = blockIdx.x, split = blockIdx.y, splits = gridDim.y;
      const i64 j0 = split * chunk, j1 = j0 + chunk < lk ? j0 + chunk : lk;
      const i64 qi = row % lq, h = (row / lq) % hq, bi = row / lq / hq, kh = h / rep;
      const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
      const {s}* qr = q + bi * qs0 + h * qs1 + qi * qs2;
      const {s}* kb = k + bi * ks0 + kh * ks1;
      const {s}* vb = v + bi * vs0 + kh * vs1;
      {c} qv[PL], acc[PL];
    #pragma unroll
      for (int e = 0; e < PL; ++e) {{
        const i64 dd = lane + 32 * e;
        qv[e] = dd < d ? {lq_} * scale : ({c})0;
        acc[e] = 0;
      }}
      {c} m = -INFINITY, l = 0;
      if (sinks && warp == 0 && split == 0) {{ m = {lsink}; l = 1; }}
      const i64 last = qi + lk - lq;  // causal: the last visible key
      for (i64 j = j0 + warp; j < j1; j += {WARPS}) {{
        const {s}* kr = kb + j * ks2;
        {c} sc = 0;
    #pragma unroll
        for (int e = 0; e < PL; ++e) {{ const i64 dd = lane + 32 * e; if (dd < d) sc += qv[e] * {lk_}; }}
        for (int o = 16; o > 0; o >>= 1) sc += __shfl_xor_sync(0xffffffff, sc, o);
        if (mask_kind == {CAUSAL}) {{ if (j > last) sc = lowest; }}
        else if (mask_kind != {NO_MASK}) {{
          const {ms} mv = mask[bi * ms0 + h * ms1 + qi * ms2 + j * ms3];
          if (mask_kind == {BOOL_MASK}) {{ if (!mv) sc = lowest; }}
          else sc += ({c}){lmask};
        }}
        const {c} mn = sc > m ? sc : m;
        if (mn == -INFINITY) continue;
        const {c} alpha = {exp}(m - mn), p = {exp}(sc - mn);
        l = l * alpha + p; m = mn;
        const {s}* vr = vb + j * vs2;
    #pragma unroll
        for (int e = 0; e < PL; ++e) {{ const i64 dd = lane + 32 * e; if (dd < dv) acc[e] = acc[e] * alpha + p * {lv}; }}
      }}
      __shared__ {c} sm[{WARPS}], sl[{WARPS}], sacc[{WARPS}][32 * PL];
      if (lane == 0) {{ sm[warp] = m; sl[warp] = l; }}
    #pragma unroll
      for (int e = 0; e < PL; ++e) sacc[warp][lane + 32 * e] = acc[e];
      __syncthreads();
      if (warp == 0) {{
        {c} M = sm[0];
        for (int w = 1; w < {WARPS}; ++w) M = sm[w] > M ? sm[w] : M;
        {c} L = 0, wt[{WARPS}];
        for (int w = 0; w < {WARPS}; ++w) {{ wt[w] = sm[w] == -INFINITY ? ({c})0 : {exp}(sm[w] - M); L += sl[w] * wt[w]; }}
        {s}* orow = out + ((bi * hq + h) * lq + qi) * dv;
        const i64 part = row * splits + split;
        if (part_o && lane == 0) {{ part_ml[2 * part] = M; part_ml[2 * part + 1] = L; }}
    #pragma unroll
        for (int e = 0; e < PL; ++e) {{
          const i64 dd = lane + 32 * e;
          if (dd < dv) {{
            {c} o = 0;
            for (int w = 0; w < {WARPS}; ++w) o += sacc[w][dd] * wt[w];
            if (part_o) part_o[part * dv + dd] = o;
            else orow[dd] = {so};
          }}
        }}
      }}
      if (!part_o) return;
      // Split keys (short queries): the row's last block to finish merges the chunks'
      // partial results (threadFenceReduction's pattern), then resets the row's counter.
      __shared__ int is_last;
      __threadfence();
      __syncthreads();
      if (threadIdx.x == 0) is_last = atomicAdd(&counters[row], 1u) == (unsigned)(splits - 1);
      __syncthreads();
      if (!is_last) return;
      __threadfence();
      const {c}* ml = part_ml + 2 * row * splits;
      {c} M = -INFINITY;
      for (i64 p = 0; p < splits; ++p) {{ const {c} m = __ldcg(ml + 2 * p); M = m > M ? m : M; }}
      {s}* orow = out + row * dv;
      for (i64 dd = threadIdx.x; dd < dv; dd += blockDim.x) {{
        {c} L = 0, o = 0;
        for (i64 p = 0; p < splits; ++p) {{
          const {c} m = __ldcg(ml + 2 * p);
          const {c} w = m == -INFINITY ? ({c})0 : {exp}(m - M);
          L += __ldcg(ml + 2 * p + 1) * w;
          o += __ldcg(part_o + (row * splits + p) * dv + dd) * w;
        }}
        orow[dd] = {so};
      }}
      if (threadIdx.x == 0) counters[row] = 0;
    }}
    "#,
                s = t.store,
                ms = mt.store,
                lq_ = t.load("qr[dd]"),
                lk_ = t.load("kr[dd]"),
                lv = t.load("vr[dd]"),
                lsink = t.load("sinks[h]"),
                lmask = mt.load("mv"),
                so = t.store("o / L"),
            );
            Some(Kernel { name, src })
        },
    )
}

/// The strides of the first three axes of a 4-d view whose last axis is contiguous.
fn strides3(x: &ArrayData) -> [i64; 3] {
    [
        x.strides[0] as i64,
        x.strides[1] as i64,
        x.strides[2] as i64,
    ]
}

pub fn attention(
    gpu: &'static Gpu,
    q: &ArrayData,
    k: &ArrayData,
    v: &ArrayData,
    mask: AttnMask<'_>,
    sinks: Option<&ArrayData>,
    scale: f32,
) -> Result<Option<ArrayData>> {
    let (b, hq, lq, d) = (q.shape[0], q.shape[1], q.shape[2], q.shape[3]);
    let (hkv, lk, dv) = (k.shape[1], k.shape[2], v.shape[3]);
    // (no keys: the host's convention for an empty softmax applies)
    if q.ndim() != 4 || d > 32 * PER_LANE || dv > 32 * PER_LANE || hkv == 0 || lk == 0 {
        return Ok(None);
    }
    let (mask_kind, mask_arr) = match mask {
        AttnMask::None => (NO_MASK, None),
        AttnMask::Causal => (CAUSAL, None),
        AttnMask::Array(m) if m.dtype == Dtype::Bool => (BOOL_MASK, Some(m)),
        AttnMask::Array(m) => (ADD_MASK, Some(m)),
    };
    let Some(Kernel { name, src }) = attention_kernel(q.dtype, mask_arr.map(|m| m.dtype)) else {
        return Ok(None);
    };
    let last_dense = |x: &ArrayData| -> Result<Option<ArrayData>> {
        if x.strides[3] == 1 || x.shape[3] == 1 {
            Ok(Some(x.clone()))
        } else {
            dense(gpu, x)
        }
    };
    let (Some(q), Some(k), Some(v)) = (last_dense(q)?, last_dense(k)?, last_dense(v)?) else {
        return Ok(None);
    };
    if sinks.is_none() && b * hq * lq * lk > 0 {
        // tensor-core flash attention (half dtypes, no mask or causal), else cuBLAS products
        let causal = mask_kind == CAUSAL;
        let flash = match mask_arr {
            None => super::flash_attention::flash_attention(gpu, &q, &k, &v, causal, scale)?,
            Some(_) => None,
        };
        if flash.is_some() {
            return Ok(flash);
        }
        let through_products =
            super::attention_gemm::attention_gemm(gpu, &q, &k, &v, mask, mask_kind, scale)?;
        if through_products.is_some() {
            return Ok(through_products);
        }
    }
    let sinks = match sinks {
        Some(s) => dense(gpu, s)?,
        None => None,
    };
    let (out, optr) = alloc_output(gpu, q.dtype, &[b, hq, lq, dv])?;
    if out.numel() == 0 {
        return Ok(Some(out));
    }
    let lowest = finfo(q.dtype).map_or(f64::MIN, |f| f.min);
    let (qp, kp, vp) = (
        device_ptr(gpu, &q)?,
        device_ptr(gpu, &k)?,
        device_ptr(gpu, &v)?,
    );
    let mp = match mask_arr {
        Some(m) => device_ptr(gpu, m)?,
        None => 0,
    };
    let ms: [i64; 4] = match mask_arr {
        Some(m) => [0, 1, 2, 3].map(|i| m.strides[i] as i64),
        None => [0; 4],
    };
    let sp = match &sinks {
        Some(s) => device_ptr(gpu, s)?,
        None => 0,
    };
    let f = gpu.kernel_in(&name, &name, || src)?;
    let dims = [hq, hq / hkv, lq, lk, d, dv].map(|x| x as i64);
    let (qs, ks, vs) = (strides3(&q), strides3(&k), strides3(&v));
    let mut bld = gpu.launch(&f);
    bld.arg(&qp).arg(&kp).arg(&vp).arg(&mp).arg(&sp).arg(&optr);
    for x in &dims {
        bld.arg(x);
    }
    for x in qs.iter().chain(&ks).chain(&vs).chain(&ms) {
        bld.arg(x);
    }
    bld.arg(&mask_kind);
    let (scale64, lowest32) = (scale as f64, lowest as f32);
    if q.dtype == Dtype::Float64 {
        bld.arg(&scale64).arg(&lowest);
    } else {
        bld.arg(&scale).arg(&lowest32);
    }
    // Few query rows (decode): split the keys over several blocks per row; the last block
    // of a row to finish merges them (one kernel: a separate merge kernel cost ~4 us per
    // layer). A warp walks its keys one after another (a dependent chain of loads,
    // shuffles and exps), so chunks are short: 16 keys per block, 4 per warp (on an H200 a
    // 256-key decode step took 31 us per layer at 128 keys per block, 10.6 at 32; the work
    // is ~1 us of bandwidth).
    let rows = b * hq * lq;
    let splits = if rows < SPLIT_ROWS && lk >= 32 {
        lk.div_ceil(16).min(2112usize.div_ceil(rows)).max(1)
    } else {
        1
    };
    let chunk = lk.div_ceil(splits) as i64;
    let wide = if q.dtype == Dtype::Float64 { 8 } else { 4 };
    let partials = if splits > 1 {
        let o = crate::memory::DeviceAlloc::new(gpu, rows * splits * dv * wide)?;
        let ml = crate::memory::DeviceAlloc::new(gpu, rows * splits * 2 * wide)?;
        Some((o, ml))
    } else {
        None
    };
    let (po, pml) = partials.as_ref().map_or((0, 0), |(o, ml)| (o.ptr, ml.ptr));
    bld.arg(&chunk).arg(&po).arg(&pml).arg(&gpu.block_counters);
    let cfg = LaunchConfig {
        grid_dim: (rows as u32, splits as u32, 1),
        block_dim: (32 * WARPS, 1, 1),
        shared_mem_bytes: 0,
    };
    unsafe { bld.launch(cfg) }.map_err(|e| driver_err("launching attention", e))?;
    // the partial buffers' frees are stream-ordered after the kernel
    drop(partials);
    Ok(Some(out))
}
