//! `argmax` / `argmin` along one axis: one block per output walks the axis (strided) and
//! combines (value, index) pairs with warp shuffles. NaN wins and, among equals, the first
//! index, as on the CPU.

use super::elementwise::{generated, Kernel};
use super::prelude::{ctype, tag, PRELUDE};
use crate::device::{driver_err, Gpu};
use crate::layout::without_axis;
use crate::memory::{alloc_output, device_ptr};
use cudarc::driver::{LaunchConfig, PushKernelArg};
use rmx_core::backend::ArgReduceOp;
use rmx_core::{ArrayData, Dtype, Result};

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
    extern "C" __global__ void {name}(const {s}* x, Layout lk, i64 stride, u32* out, i64 n_out, i64 len) {{
      __shared__ {c} sv[32]; __shared__ i64 si[32];
      for (i64 o = blockIdx.x; o < n_out; o += gridDim.x) {{
        const {s}* row = x + loc(lk, o);
        {c} bv = 0; i64 bi = -1;
        for (i64 r = threadIdx.x; r < len; r += blockDim.x) {{
          const {c} v = ({c})({ld});
          if (better_{name}(v, r, bv, bi)) {{ bv = v; bi = r; }}
        }}
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
          if (threadIdx.x == 0) out[o] = (u32)(bi < 0 ? 0 : bi);
        }}
        __syncthreads();
      }}
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
    let f = gpu.kernel(&name, || src)?;
    let (stride, no, len) = (x.strides[axis] as i64, n_out as i64, x.shape[axis] as i64);
    let mut b = gpu.stream.launch_builder(&f);
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
