//! Convolution (any of 1-3 spatial axes, strides, padding, kernel and input dilation,
//! groups, flip): an im2col gather kernel, then one strided-batched cuBLAS product with
//! the groups as the batch. The patch geometry (which input position each output position
//! and kernel tap reads) is the CPU backend's `Geometry`, uploaded as its tap tables.
//!
//! Row `r` of the patch matrix (batch element x output position) holds, per group `g`,
//! the `taps x cig` inputs its kernel reads (zero for padding and dilation holes); the
//! weight `[cout, taps, cig]` is already `[groups, cog, taps * cig]` row-major, so output
//! channel `g * cog + o` of row `r` is that row's group-`g` patch dotted with weight row
//! `g * cog + o`. A flipped kernel gathers its taps in reverse instead of reversing the
//! weight. A 1x1 kernel that reads every input once skips the gather. f16/bf16 accumulate
//! in float32 and round once, as the CPU kernel does.

use super::elementwise::{cast, fill_bits, launch_config, row_contiguous, Kernel};
use super::matmul::{gemm, GemmOperand};
use super::prelude::{bits_type, PRELUDE};
use crate::device::{driver_err, Gpu};
use crate::memory::{alloc_output, device_ptr};
use rmx_core::backend::cpu::conv::Geometry;
use rmx_core::backend::ConvParams;
use rmx_core::{ArrayData, Dtype, Result};

/// Largest patch matrix gathered at once; bigger convolutions run in slices of rows.
const MAX_PATCH_BYTES: usize = 256 << 20;

/// The patch gather for elements of `size` bytes (it only moves bits).
pub fn im2col_kernel(size: usize) -> Kernel {
    let name = format!("conv_im2col_{}", size * 8);
    let src = im2col_source(&name, bits_type(size));
    Kernel { name, src }
}

fn im2col_source(name: &str, t: &str) -> String {
    format!(
        r#"{PRELUDE}
extern "C" __global__ void {name}(const {t}* __restrict__ x, const i64* __restrict__ taps,
    {t}* __restrict__ cols, i64 r0, i64 total, i64 groups, i64 cig, i64 cin,
    i64 k0, i64 k1, i64 k2, i64 t0, i64 t1, i64 t2, i64 l0, i64 l1, i64 l2, int flip) {{
  const i64 kt = k0 * k1 * k2, positions = t0 * t1 * t2;
  const i64* taps1 = taps + t0 * k0;
  const i64* taps2 = taps1 + t1 * k1;
  for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (i64)gridDim.x * blockDim.x) {{
    const i64 c = i % cig;
    i64 rest = i / cig;
    i64 k = rest % kt; rest /= kt;
    const i64 g = rest % groups;
    const i64 r = r0 + rest / groups;
    if (flip) k = kt - 1 - k;
    const i64 n = r / positions, q = r % positions;
    const i64 a = taps[(q / (t1 * t2)) * k0 + k / (k1 * k2)];
    const i64 b = taps1[((q / t2) % t1) * k1 + (k / k2) % k1];
    const i64 d = taps2[(q % t2) * k2 + k % k2];
    {t} v = 0;
    if (a >= 0 && b >= 0 && d >= 0) v = x[(((n * l0 + a) * l1 + b) * l2 + d) * cin + g * cig + c];
    cols[i] = v;
  }}
}}
"#
    )
}

pub fn conv(
    gpu: &'static Gpu,
    x: &ArrayData,
    w: &ArrayData,
    p: &ConvParams,
    out_shape: &[usize],
) -> Result<Option<ArrayData>> {
    if !matches!(
        x.dtype,
        Dtype::Float32 | Dtype::Float64 | Dtype::Float16 | Dtype::Bfloat16
    ) {
        return Ok(None); // the host kernel reports the dtype error
    }
    let geo = Geometry::new(&x.shape, &w.shape, out_shape, p)?;
    let rows = geo.n * geo.out_positions();
    let kc = geo.kernel_taps() * geo.cig;
    if rows == 0 || geo.cout == 0 {
        return Ok(Some(alloc_output(gpu, x.dtype, out_shape)?.0));
    }
    if kc == 0 {
        return Ok(Some(fill_bits(gpu, 0, x.dtype, out_shape)?));
    }
    let w = if w.dtype == x.dtype {
        row_contiguous(gpu, w)?
    } else {
        cast(gpu, w, x.dtype)?
    };
    let (Some(x), Some(w)) = (row_contiguous(gpu, x)?, w) else {
        return Ok(None);
    };
    let (out, out_ptr) = alloc_output(gpu, x.dtype, out_shape)?;
    let size = x.dtype.size();
    let (groups, cout) = (geo.groups, geo.cout);
    let weight = GemmOperand {
        ptr: device_ptr(gpu, &w)?,
        trans: true,
        ld: kc as i64,
        batch_stride: (geo.cog * kc) as i64,
    };
    let product = |lhs: u64, lhs_ld: usize, lhs_group: usize, r0: usize, r1: usize| {
        // column-major: out[r0..r1]ᵀ (cog x rows per group) = weight_g (cog x kc) patchᵀ
        let patches = GemmOperand {
            ptr: lhs,
            trans: false,
            ld: lhs_ld as i64,
            batch_stride: lhs_group as i64,
        };
        let dst = GemmOperand {
            ptr: out_ptr + (r0 * cout * size) as u64,
            trans: false,
            ld: cout as i64,
            batch_stride: geo.cog as i64,
        };
        gemm(
            gpu,
            x.dtype,
            (geo.cog, r1 - r0, kc),
            &weight,
            &patches,
            &dst,
            groups,
        )
    };
    let x_ptr = device_ptr(gpu, &x)?;
    if geo.is_pointwise() {
        if !product(x_ptr, geo.cin, geo.cig, 0, rows)? {
            return Ok(None);
        }
        return Ok(Some(out));
    }
    let row_bytes = groups * kc * size;
    let slice = (MAX_PATCH_BYTES / row_bytes).clamp(1, rows);
    let (cols, cols_ptr) = alloc_output(gpu, x.dtype, &[slice * groups * kc])?;
    let taps: Vec<i64> = geo.taps.concat();
    let taps = ArrayData::from_slice(&taps, &[taps.len()])?;
    let taps_ptr = device_ptr(gpu, &taps)?;
    let k = im2col_kernel(size);
    let name = k.name;
    let f = gpu.kernel(&name, || k.src)?;
    let i64s = |v: usize| v as i64;
    let ([k0, k1, k2], [t0, t1, t2], [l0, l1, l2]) = (geo.k_sp, geo.out_sp, geo.in_sp);
    let dims = [k0, k1, k2, t0, t1, t2, l0, l1, l2].map(i64s);
    let (g64, cig64, cin64) = (i64s(groups), i64s(geo.cig), i64s(geo.cin));
    let flip = i32::from(p.flip);
    let mut r0 = 0;
    while r0 < rows {
        let r1 = (r0 + slice).min(rows);
        let total = i64s((r1 - r0) * groups * kc);
        let start = i64s(r0);
        let mut b = gpu.launch(&f);
        b.arg(&x_ptr)
            .arg(&taps_ptr)
            .arg(&cols_ptr)
            .arg(&start)
            .arg(&total);
        b.arg(&g64).arg(&cig64).arg(&cin64);
        for d in &dims {
            b.arg(d);
        }
        b.arg(&flip);
        unsafe { b.launch(launch_config(total as usize)) }
            .map_err(|e| driver_err(&format!("launching {name}"), e))?;
        if !product(cols_ptr, groups * kc, kc, r0, r1)? {
            return Ok(None);
        }
        r0 = r1;
    }
    drop((cols, taps)); // freed stream-ordered, after the products that read them
    Ok(Some(out))
}
