//! Reductions over any set of axes: one block per output element walks the reduced
//! elements (strided, through their own layout) and combines them with warp shuffles.
//! NaN wins max/min, as on the CPU.

use super::elementwise::{generated, Kernel};
use super::prelude::{ctype, tag, PRELUDE};
use crate::device::{driver_err, Gpu};
use crate::layout::Layout;
use crate::memory::{alloc_output, device_ptr};
use cudarc::driver::{LaunchConfig, PushKernelArg};
use rmx_core::backend::ReduceOp;
use rmx_core::{ArrayData, Dtype, Result};

const BLOCK: u32 = 256;

/// Identity and combine expression (of `acc` and `v`) for `op` in compute type `c`.
fn combine(op: ReduceOp, c: &str, float: bool) -> (String, &'static str) {
    let (lo, hi) = match (float, c) {
        (true, _) => ("-INFINITY", "INFINITY"),
        (_, "int") => ("(-2147483647 - 1)", "2147483647"),
        (_, "i64") => ("(-9223372036854775807ll - 1)", "9223372036854775807ll"),
        (_, "u32") => ("0u", "0xffffffffu"),
        _ => ("0ull", "0xffffffffffffffffull"),
    };
    let (lo, hi) = (lo.to_string(), hi.to_string());
    match op {
        ReduceOp::Sum => ("0".into(), "acc + v"),
        ReduceOp::Prod => ("1".into(), "acc * v"),
        ReduceOp::Max => (lo, "((is_nan(acc) || acc > v) ? acc : v)"),
        ReduceOp::Min => (hi, "((is_nan(acc) || acc < v) ? acc : v)"),
        ReduceOp::All => ("1".into(), "(acc && v)"),
        ReduceOp::Any => ("0".into(), "(acc || v)"),
    }
}

/// The accumulator type of reductions into `out`, as a dtype (for partial results).
fn accumulator(op: ReduceOp, out: Dtype) -> Dtype {
    match (op, ctype(out).map(|t| t.compute)) {
        (ReduceOp::All | ReduceOp::Any, _) => Dtype::Int32,
        (_, Some("bool" | "i8" | "i16" | "i32")) => Dtype::Int32,
        (_, Some("u8" | "u16" | "u32")) => Dtype::Uint32,
        (_, Some("float")) => Dtype::Float32,
        _ => out,
    }
}

/// The reduction kernel for `op` from `input` to `out`; `None` without one. With
/// `partial`, each block reduces one chunk of the reduced elements and stores the raw
/// accumulator (a first pass; a second reduces the partials).
pub fn reduce_kernel(op: ReduceOp, input: Dtype, out: Dtype, partial: bool) -> Option<Kernel> {
    generated(
        format!("reduce_kernel {:?}", (op, input, out, partial)),
        || {
            let (ti, to) = (ctype(input)?, ctype(out)?);
            let logical = matches!(op, ReduceOp::All | ReduceOp::Any);
            // Accumulate in the output's compute type, widened to what warp shuffles move (sums and
            // products of narrow integers wrap the same way in the wider type).
            let c = match to.compute {
                _ if logical => "int",
                "bool" | "i8" | "i16" | "i32" => "int",
                "u8" | "u16" | "u32" => "u32",
                other => other,
            };
            let name = format!(
                "reduce_{op:?}_{}_{}{}",
                tag(input),
                tag(out),
                if partial { "_part" } else { "" }
            );
            let (tos, store) = if partial {
                (c.to_string(), "acc".to_string())
            } else {
                (to.store.to_string(), to.store("acc"))
            };
            let (init, comb) = combine(op, c, to.float);
            let load = ti.load("x[base + loc(lr, r)]");
            let v = if logical {
                format!("(({load}) != 0)")
            } else {
                format!("({c})({load})")
            };
            let src = format!(
                r#"{PRELUDE}
    __device__ __forceinline__ {c} comb_{name}({c} acc, {c} v) {{ return {comb}; }}
    extern "C" __global__ void {name}(const {ts}* x, Layout lk, Layout lr, {tos}* out, i64 n_out, i64 n_red, i64 chunk) {{
      __shared__ {c} part[32];
      const i64 r0 = (i64)blockIdx.y * chunk;
      const i64 r1 = r0 + chunk < n_red ? r0 + chunk : n_red;
      for (i64 o = blockIdx.x; o < n_out; o += gridDim.x) {{
        i64 base = loc(lk, o);
        {c} acc = {init};
        for (i64 r = r0 + threadIdx.x; r < r1; r += blockDim.x) {{ {c} v = {v}; acc = comb_{name}(acc, v); }}
        for (int s = 16; s > 0; s >>= 1) acc = comb_{name}(acc, __shfl_down_sync(0xffffffff, acc, s));
        if ((threadIdx.x & 31) == 0) part[threadIdx.x >> 5] = acc;
        __syncthreads();
        if (threadIdx.x < 32) {{
          acc = threadIdx.x < (blockDim.x >> 5) ? part[threadIdx.x] : {init};
          for (int s = 16; s > 0; s >>= 1) acc = comb_{name}(acc, __shfl_down_sync(0xffffffff, acc, s));
          if (threadIdx.x == 0) out[o * gridDim.y + blockIdx.y] = {store};
        }}
        __syncthreads();
      }}
    }}
    "#,
                ts = ti.store,
            );
            Some(Kernel { name, src })
        },
    )
}

pub fn reduce(
    gpu: &'static Gpu,
    op: ReduceOp,
    x: &ArrayData,
    axes: &[usize],
    out_dtype: Dtype,
) -> Result<Option<ArrayData>> {
    if reduce_kernel(op, x.dtype, out_dtype, false).is_none() {
        return Ok(None);
    }
    let (kept, red): (Vec<usize>, Vec<usize>) = (0..x.ndim()).partition(|d| !axes.contains(d));
    let pick = |ds: &[usize]| -> (Vec<usize>, Vec<isize>) {
        (
            ds.iter().map(|&d| x.shape[d]).collect(),
            ds.iter().map(|&d| x.strides[d]).collect(),
        )
    };
    let (ks, kst) = pick(&kept);
    let (rs, rst) = pick(&red);
    let (Some(lk), Some(lr)) = (Layout::new(&ks, &kst), Layout::new(&rs, &rst)) else {
        return Ok(None);
    };
    let mut out_shape = x.shape.to_vec();
    for &a in axes {
        out_shape[a] = 1;
    }
    let n_out: usize = ks.iter().product();
    let n_red: usize = rs.iter().product();
    if n_out == 0 {
        return Ok(Some(alloc_output(gpu, out_dtype, &out_shape)?.0));
    }
    let xptr = device_ptr(gpu, x)?;
    // Few outputs over many elements: split each reduction over several blocks, then
    // reduce the partials (one block per output would leave most of the chip idle).
    let chunks = if n_out < 512 && n_red >= 1 << 14 {
        (n_red >> 12).min((2048 / n_out).max(1)).max(1)
    } else {
        1
    };
    if chunks == 1 {
        let (out, optr) = alloc_output(gpu, out_dtype, &out_shape)?;
        launch(
            gpu,
            op,
            x.dtype,
            out_dtype,
            false,
            (xptr, lk, lr, optr),
            n_out,
            n_red,
            1,
        )?;
        return Ok(Some(out));
    }
    let acc = accumulator(op, out_dtype);
    let (partials, pptr) = alloc_output(gpu, acc, &[n_out, chunks])?;
    launch(
        gpu,
        op,
        x.dtype,
        out_dtype,
        true,
        (xptr, lk, lr, pptr),
        n_out,
        n_red,
        chunks,
    )?;
    let second = reduce(gpu, op, &partials, &[1], out_dtype)?;
    Ok(second.map(|r| ArrayData {
        shape: out_shape.as_slice().into(),
        strides: rmx_core::shape::row_strides(&out_shape),
        ..r
    }))
}

#[allow(clippy::too_many_arguments)]
fn launch(
    gpu: &'static Gpu,
    op: ReduceOp,
    input: Dtype,
    out: Dtype,
    partial: bool,
    (xptr, lk, lr, optr): (u64, Layout, Layout, u64),
    n_out: usize,
    n_red: usize,
    chunks: usize,
) -> Result<()> {
    let Some(Kernel { name, src }) = reduce_kernel(op, input, out, partial) else {
        return Err(rmx_core::runtime_err!(
            "[cuda] No reduction kernel for {op:?}."
        ));
    };
    let f = gpu.kernel(&name, || src)?;
    let chunk = n_red.div_ceil(chunks) as i64;
    let (no, nr) = (n_out as i64, n_red as i64);
    let mut b = gpu.stream.launch_builder(&f);
    b.arg(&xptr)
        .arg(&lk)
        .arg(&lr)
        .arg(&optr)
        .arg(&no)
        .arg(&nr)
        .arg(&chunk);
    let cfg = LaunchConfig {
        grid_dim: (n_out.min(1 << 20) as u32, chunks as u32, 1),
        block_dim: (BLOCK, 1, 1),
        shared_mem_bytes: 0,
    };
    unsafe { b.launch(cfg) }.map_err(|e| driver_err(&format!("launching {name}"), e))?;
    Ok(())
}
