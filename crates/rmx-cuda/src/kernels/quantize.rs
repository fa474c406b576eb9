//! MLX's affine quantization on the device (`mx.quantize`, the quantized KV cache): one
//! thread per group computes the group's scale and bias in f32 in MLX's order (as the
//! CPU backend's `scale_bias`) and packs its codes low bits first, so the packed words,
//! scales and biases equal the CPU's bit for bit.

use super::elementwise::{generated, launch_config, row_contiguous, Kernel};
use super::prelude::{ctype, tag, PRELUDE};
use crate::device::{driver_err, Gpu};
use crate::memory::{alloc_output, device_ptr};
use rmx_core::{ArrayData, Dtype, Result};

/// The kernel quantizing `dtype` values to `bits` (1 to 8) bits.
pub fn quantize_kernel(bits: usize, dtype: Dtype) -> Option<Kernel> {
    generated(format!("quantize_kernel {:?}", (bits, dtype)), || {
        if !(1..=8).contains(&bits)
            || !matches!(dtype, Dtype::Float32 | Dtype::Float16 | Dtype::Bfloat16)
        {
            return None;
        }
        let t = ctype(dtype)?;
        let name = format!("quantize_{bits}_{}", tag(dtype));
        let src = format!(
            r#"{PRELUDE}
extern "C" __global__ void {name}(const {s}* __restrict__ w, u32* __restrict__ wq, {s}* __restrict__ scales, {s}* __restrict__ biases, i64 groups, i64 group_size) {{
  const float n_bins = (float)((1u << {bits}) - 1);
  for (i64 g = (i64)blockIdx.x * blockDim.x + threadIdx.x; g < groups; g += (i64)gridDim.x * blockDim.x) {{
    const {s}* in = w + g * group_size;
    float lo = INFINITY, hi = -INFINITY;
    for (i64 i = 0; i < group_size; ++i) {{
      const float v = {load};
      lo = fminf(lo, v);
      hi = fmaxf(hi, v);
    }}
    float scale = fmaxf((hi - lo) / n_bins, 1e-7f), bias = lo;
    if ({bits} > 1) {{
      // the edge farther from zero becomes exactly representable (keeps 0 exact)
      const bool lo_edge = fabsf(lo) > fabsf(hi);
      scale = lo_edge ? scale : -scale;
      const float edge = lo_edge ? lo : hi;
      const float q0 = rintf(edge / scale);
      if (q0 != 0.f) {{ scale = edge / q0; bias = edge; }} else {{ bias = 0.f; }}
    }}
    u64 acc = 0;
    int have = 0;
    i64 next = g * (group_size * {bits} / 32);
    for (i64 i = 0; i < group_size; ++i) {{
      const float v = {load};
      // NaN becomes 0 (fmaxf returns the number), as the host's saturating cast
      const float q = fminf(fmaxf(rintf((v - bias) / scale), 0.f), n_bins);
      acc |= (u64)(u32)q << have;
      have += {bits};
      if (have >= 32) {{ wq[next++] = (u32)acc; acc >>= 32; have -= 32; }}
    }}
    scales[g] = {st_scale};
    biases[g] = {st_bias};
  }}
}}
"#,
            s = t.store,
            load = t.load("in[i]"),
            st_scale = t.store("scale"),
            st_bias = t.store("bias"),
        );
        Some(Kernel { name, src })
    })
}

/// `[wq, scales, biases]` of `w` (last axis in groups of `group_size`); `Ok(None)` for
/// what the kernel does not take (the host then quantizes, or reports the error).
pub fn quantize(
    gpu: &'static Gpu,
    w: &ArrayData,
    group_size: usize,
    bits: usize,
) -> Result<Option<Vec<ArrayData>>> {
    let nd = w.ndim();
    let Some(kern) = quantize_kernel(bits, w.dtype) else {
        return Ok(None);
    };
    if nd == 0 || group_size == 0 || !(group_size * bits).is_multiple_of(32) {
        return Ok(None);
    }
    let k = w.shape[nd - 1];
    if !k.is_multiple_of(group_size) {
        return Ok(None);
    }
    let Some(w) = row_contiguous(gpu, w)? else {
        return Ok(None);
    };
    let mut qshape = w.shape.to_vec();
    qshape[nd - 1] = k * bits / 32;
    let mut sshape = w.shape.to_vec();
    sshape[nd - 1] = k / group_size;
    let (wq, qp) = alloc_output(gpu, Dtype::Uint32, &qshape)?;
    let (scales, sp) = alloc_output(gpu, w.dtype, &sshape)?;
    let (biases, bp) = alloc_output(gpu, w.dtype, &sshape)?;
    let groups = w.numel() / group_size;
    if groups > 0 {
        let wp = device_ptr(gpu, &w)?;
        let f = gpu.kernel(&kern.name, || kern.src)?;
        let (g64, gs64) = (groups as i64, group_size as i64);
        let mut bl = gpu.launch(&f);
        bl.arg(&wp).arg(&qp).arg(&sp).arg(&bp).arg(&g64).arg(&gs64);
        unsafe { bl.launch(launch_config(groups)) }
            .map_err(|e| driver_err("launching quantize", e))?;
    }
    Ok(Some(vec![wq, scales, biases]))
}

#[cfg(test)]
pub fn all_kernels() -> Vec<Kernel> {
    let mut ks = Vec::new();
    for bits in 1..=8 {
        for dt in [Dtype::Float32, Dtype::Float16, Dtype::Bfloat16] {
            ks.extend(quantize_kernel(bits, dt));
        }
    }
    ks
}
