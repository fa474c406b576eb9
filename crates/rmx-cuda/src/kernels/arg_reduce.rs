//! `argmax` / `argmin` along one axis: one block per output walks the axis (strided) and
//! combines (value, index) pairs with warp shuffles. NaN wins and, among equals, the first
//! index, as on the CPU.

use super::elementwise::{generated, Kernel};
use super::prelude::{ctype, tag, PRELUDE};
use crate::device::{driver_err, Gpu};
use crate::layout::without_axis;
use crate::memory::{alloc_output, device_ptr};
use cudarc::driver::LaunchConfig;
use rmx_core::backend::ArgReduceOp;
use rmx_core::{ArrayData, Dtype, Result};

/// Elements per block below which a row is not split (see `arg_reduce`).
const PART_LEN: usize = 2048;

pub fn arg_reduce_kernel(op: ArgReduceOp, input: Dtype) -> Option<Kernel> {
    generated(format!("arg_reduce_kernel {:?}", (op, input)), || {
        let t = ctype(input)?;
        // what warp shuffles move
        let c = match t.compute {
            "bool" | "i8" | "i16" | "i32" => "int",
            "u8" | "u16" | "u32" => "u32",
            other => other,
        };
        let cmp = match op {
            ArgReduceOp::ArgMax => ">",
            ArgReduceOp::ArgMin => "<",
        };
        let name = format!("arg_reduce_{op:?}_{}", tag(input));
        // the block's best (bv, bi) into thread 0's registers (all threads must call it)
        let block_best = format!(
            r#"
    __device__ __forceinline__ void block_best_{name}({c}& bv, i64& bi, {c}* sv, i64* si) {{
      for (int s = 16; s > 0; s >>= 1) {{
        const {c} v = __shfl_down_sync(0xffffffff, bv, s); const i64 i = __shfl_down_sync(0xffffffff, bi, s);
        if (better_{name}(v, i, bv, bi)) {{ bv = v; bi = i; }}
      }}
      if ((threadIdx.x & 31) == 0) {{ sv[threadIdx.x >> 5] = bv; si[threadIdx.x >> 5] = bi; }}
      __syncthreads();
      if (threadIdx.x < 32) {{
        bv = sv[0]; bi = -1;
        if (threadIdx.x < (blockDim.x >> 5)) {{ bv = sv[threadIdx.x]; bi = si[threadIdx.x]; }}
        for (int s = 16; s > 0; s >>= 1) {{
          const {c} v = __shfl_down_sync(0xffffffff, bv, s); const i64 i = __shfl_down_sync(0xffffffff, bi, s);
          if (better_{name}(v, i, bv, bi)) {{ bv = v; bi = i; }}
        }}
      }}
      __syncthreads();
    }}"#
        );
        let src = format!(
            r#"{PRELUDE}
    // whether candidate (a, ia) beats (b, ib); index -1 marks no candidate
    __device__ __forceinline__ bool better_{name}({c} a, i64 ia, {c} b, i64 ib) {{
      if (ib < 0) return ia >= 0;
      if (ia < 0) return false;
      const bool na = is_nan(a), nb = is_nan(b);
      if (na || nb) return na && (!nb || ia < ib);
      return a {cmp} b || (a == b && ia < ib);
    }}
    {block_best}
    // one block per output row
    extern "C" __global__ void {name}(const {s}* x, Layout lk, i64 stride, u32* out, i64 n_out, i64 len) {{
      __shared__ {c} sv[32]; __shared__ i64 si[32];
      for (i64 o = blockIdx.x; o < n_out; o += gridDim.x) {{
        const {s}* row = x + loc(lk, o);
        {c} bv = 0; i64 bi = -1;
        for (i64 r = threadIdx.x; r < len; r += blockDim.x) {{
          const {c} v = ({c})({ld});
          if (better_{name}(v, r, bv, bi)) {{ bv = v; bi = r; }}
        }}
        block_best_{name}(bv, bi, sv, si);
        if (threadIdx.x == 0) out[o] = (u32)(bi < 0 ? 0 : bi);
      }}
    }}
    // long rows, few outputs: block (o, p) finds the best of part p (`chunk` elements) of
    // row o; `{name}_final` picks among the parts
    extern "C" __global__ void {name}_part(const {s}* x, Layout lk, i64 stride, {c}* pv, i64* pi, i64 len, i64 chunk) {{
      __shared__ {c} sv[32]; __shared__ i64 si[32];
      const i64 o = blockIdx.x, p = blockIdx.y, end = min(len, (p + 1) * chunk);
      const {s}* row = x + loc(lk, o);
      {c} bv = 0; i64 bi = -1;
      #pragma unroll 4
      for (i64 r = p * chunk + threadIdx.x; r < end; r += blockDim.x) {{
        const {c} v = ({c})({ld});
        if (better_{name}(v, r, bv, bi)) {{ bv = v; bi = r; }}
      }}
      block_best_{name}(bv, bi, sv, si);
      if (threadIdx.x == 0) {{ pv[o * gridDim.y + p] = bv; pi[o * gridDim.y + p] = bi; }}
    }}
    extern "C" __global__ void {name}_final(const {c}* pv, const i64* pi, u32* out, i64 parts) {{
      __shared__ {c} sv[32]; __shared__ i64 si[32];
      const i64 o = blockIdx.x;
      {c} bv = 0; i64 bi = -1;
      for (i64 p = threadIdx.x; p < parts; p += blockDim.x) {{
        if (better_{name}(pv[o * parts + p], pi[o * parts + p], bv, bi)) {{ bv = pv[o * parts + p]; bi = pi[o * parts + p]; }}
      }}
      block_best_{name}(bv, bi, sv, si);
      if (threadIdx.x == 0) out[o] = (u32)(bi < 0 ? 0 : bi);
    }}
    "#,
            s = t.store,
            ld = t.load("row[r * stride]"),
        );
        Some(Kernel { name, src })
    })
}

pub fn arg_reduce(
    gpu: &'static Gpu,
    op: ArgReduceOp,
    x: &ArrayData,
    axis: usize,
) -> Result<Option<ArrayData>> {
    let Some(Kernel { name, src }) = arg_reduce_kernel(op, x.dtype) else {
        return Ok(None);
    };
    let Some(lk) = without_axis(x, axis) else {
        return Ok(None);
    };
    let mut out_shape = x.shape.to_vec();
    out_shape[axis] = 1;
    let (out, optr) = alloc_output(gpu, Dtype::Uint32, &out_shape)?;
    let n_out = out.numel();
    if n_out == 0 {
        return Ok(Some(out));
    }
    let xptr = device_ptr(gpu, x)?;
    let (stride, no, len) = (x.strides[axis] as i64, n_out as i64, x.shape[axis] as i64);
    // Few long rows (a decode step's argmax over the vocabulary): one block per row would
    // walk 128K elements with 256 threads, latency-bound (~1 ms on an H200); split each
    // row over up to 64 blocks, then pick among their bests.
    let parts = (x.shape[axis] / PART_LEN).min(64);
    if n_out <= 64 && parts >= 2 {
        let chunk = (x.shape[axis].div_ceil(parts)) as i64;
        // the kernel keeps values in a 4-byte compute type, or 8 for 8-byte elements
        let value_size = if x.dtype.size() == 8 { 8 } else { 4 };
        let (pv, pvp) = alloc_output(gpu, Dtype::Uint8, &[n_out * parts * value_size])?;
        let (pi, pip) = alloc_output(gpu, Dtype::Int64, &[n_out * parts])?;
        let f = gpu.kernel_in(&name, &format!("{name}_part"), || src.clone())?;
        let mut b = gpu.launch(&f);
        b.arg(&xptr)
            .arg(&lk)
            .arg(&stride)
            .arg(&pvp)
            .arg(&pip)
            .arg(&len)
            .arg(&chunk);
        let cfg = LaunchConfig {
            grid_dim: (n_out as u32, parts as u32, 1),
            block_dim: (256, 1, 1),
            shared_mem_bytes: 0,
        };
        unsafe { b.launch(cfg) }.map_err(|e| driver_err("launching arg_reduce", e))?;
        let f = gpu.kernel_in(&name, &format!("{name}_final"), || src)?;
        let mut b = gpu.launch(&f);
        let np = parts as i64;
        b.arg(&pvp).arg(&pip).arg(&optr).arg(&np);
        let cfg = LaunchConfig {
            grid_dim: (n_out as u32, 1, 1),
            block_dim: (64, 1, 1),
            shared_mem_bytes: 0,
        };
        unsafe { b.launch(cfg) }.map_err(|e| driver_err("launching arg_reduce", e))?;
        drop((pv, pi));
        return Ok(Some(out));
    }
    let f = gpu.kernel_in(&name, &name, || src)?;
    let mut b = gpu.launch(&f);
    b.arg(&xptr)
        .arg(&lk)
        .arg(&stride)
        .arg(&optr)
        .arg(&no)
        .arg(&len);
    let cfg = LaunchConfig {
        grid_dim: (n_out.min(1 << 20) as u32, 1, 1),
        block_dim: (256, 1, 1),
        shared_mem_bytes: 0,
    };
    unsafe { b.launch(cfg) }.map_err(|e| driver_err("launching arg_reduce", e))?;
    Ok(Some(out))
}
