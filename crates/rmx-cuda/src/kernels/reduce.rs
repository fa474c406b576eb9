//! Reductions over any set of axes: one block per output element walks the reduced
//! elements (strided, through their own layout; contiguous ones with 16-byte loads) and
//! combines them with warp shuffles. NaN wins max/min, as on the CPU.

use super::elementwise::{generated, Kernel};
use super::prelude::{ctype, tag, PRELUDE};
use crate::device::{driver_err, Gpu};
use crate::layout::{collapse, Layout};
use crate::memory::{alloc_output, device_ptr};
use cudarc::driver::LaunchConfig;
use rmx_core::backend::ReduceOp;
use rmx_core::{ArrayData, Dtype, Result};

const BLOCK: u32 = 256;

/// Identity and combine expression (of `acc` and `v`) for `op` in compute type `c`.
pub(crate) fn combine(op: ReduceOp, c: &str, float: bool) -> (String, &'static str) {
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
            let value_of = |e: &str| {
                let load = ti.load(e);
                if logical {
                    format!("(({load}) != 0)")
                } else {
                    format!("({c})({load})")
                }
            };
            let value = |at: &str| value_of(&format!("x[{at}]"));
            let (v, vcol) = (
                value("base + (lr.ndim == 1 ? r * lr.strides[0] : loc(lr, r))"),
                value("base + r * rstride"),
            );
            let (vhead, vvec, vtail) = (
                value("base + r0 + r"),
                value_of("e[j]"),
                value("base + r0 + r"),
            );
            let src = format!(
                r#"{PRELUDE}
    __device__ __forceinline__ {c} comb_{name}({c} acc, {c} v) {{ return {comb}; }}
    // the block's `acc` values combined, stored by thread 0 (every thread of the block calls it)
    __device__ __forceinline__ void finish_{name}({c} acc, {c}* part, {tos}* dst) {{
      for (int s = 16; s > 0; s >>= 1) acc = comb_{name}(acc, __shfl_down_sync(0xffffffff, acc, s));
      if ((threadIdx.x & 31) == 0) part[threadIdx.x >> 5] = acc;
      __syncthreads();
      if (threadIdx.x < 32) {{
        acc = threadIdx.x < (blockDim.x >> 5) ? part[threadIdx.x] : {init};
        for (int s = 16; s > 0; s >>= 1) acc = comb_{name}(acc, __shfl_down_sync(0xffffffff, acc, s));
        if (threadIdx.x == 0) *dst = {store};
      }}
      __syncthreads();
    }}
    extern "C" __global__ void {name}(const {ts}* x, Layout lk, Layout lr, {tos}* out, i64 n_out, i64 n_red, i64 chunk) {{
      __shared__ {c} part[32];
      const i64 r0 = (i64)blockIdx.y * chunk;
      const i64 r1 = r0 + chunk < n_red ? r0 + chunk : n_red;
      for (i64 o = blockIdx.x; o < n_out; o += gridDim.x) {{
        i64 base = loc(lk, o);
        {c} acc = {init};
#pragma unroll 4
        for (i64 r = r0 + threadIdx.x; r < r1; r += blockDim.x) {{ {c} v = {v}; acc = comb_{name}(acc, v); }}
        finish_{name}(acc, part, out + o * gridDim.y + blockIdx.y);
      }}
    }}
    // reduced elements contiguous (stride 1): the same, reading 16 bytes per load once
    // aligned (the unaligned head and the tail element by element)
    extern "C" __global__ void {name}_vec(const {ts}* x, Layout lk, Layout lr, {tos}* out, i64 n_out, i64 n_red, i64 chunk) {{
      __shared__ {c} part[32];
      const i64 r0 = (i64)blockIdx.y * chunk;
      const i64 r1 = r0 + chunk < n_red ? r0 + chunk : n_red;
      const i64 len = r1 - r0, per = 16 / sizeof({ts});
      for (i64 o = blockIdx.x; o < n_out; o += gridDim.x) {{
        const i64 base = loc(lk, o);
        const unsigned long long at = (unsigned long long)(x + base + r0);
        i64 head = at % sizeof({ts}) ? len : (i64)(((16 - (at & 15)) & 15) / sizeof({ts}));
        if (head > len) head = len;
        const i64 nv = (len - head) / per;
        {c} acc = {init};
        for (i64 r = threadIdx.x; r < head; r += blockDim.x) {{ {c} v = {vhead}; acc = comb_{name}(acc, v); }}
        const uint4* q = (const uint4*)(x + base + r0 + head);
#pragma unroll 4
        for (i64 k = threadIdx.x; k < nv; k += blockDim.x) {{
          const uint4 w = q[k];
          const {ts}* e = (const {ts}*)&w;
#pragma unroll
          for (int j = 0; j < (int)per; ++j) {{ {c} v = {vvec}; acc = comb_{name}(acc, v); }}
        }}
        for (i64 r = head + nv * per + threadIdx.x; r < len; r += blockDim.x) {{ {c} v = {vtail}; acc = comb_{name}(acc, v); }}
        finish_{name}(acc, part, out + o * gridDim.y + blockIdx.y);
      }}
    }}
    // outputs contiguous in the input (the reduced axes outer): one thread per output walks
    // its chunk of the reduced elements, so each step of a warp reads one contiguous run;
    // partial results go to out[chunk][output]
    extern "C" __global__ void {name}_cols(const {ts}* x, Layout lk, i64 rstride, {tos}* out, i64 n_out, i64 n_red, i64 chunk) {{
      const i64 r0 = (i64)blockIdx.y * chunk;
      const i64 r1 = r0 + chunk < n_red ? r0 + chunk : n_red;
      for (i64 o = (i64)blockIdx.x * blockDim.x + threadIdx.x; o < n_out; o += (i64)gridDim.x * blockDim.x) {{
        const i64 base = lk.ndim == 1 ? o : loc(lk, o);
        {c} acc = {init};
#pragma unroll 8
        for (i64 r = r0; r < r1; ++r) {{ {c} v = {vcol}; acc = comb_{name}(acc, v); }}
        out[(i64)blockIdx.y * n_out + o] = {store};
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
    if x.dtype == Dtype::Complex64 && out_dtype == Dtype::Complex64 && op == ReduceOp::Sum {
        return complex_sum(gpu, x, axes);
    }
    if x.dtype == Dtype::Complex64 {
        return super::complex_reduce::complex_reduce(gpu, op, x, axes, out_dtype);
    }
    if reduce_kernel(op, x.dtype, out_dtype, false).is_none() {
        return Ok(None);
    }
    let (kept, red): (Vec<usize>, Vec<usize>) = (0..x.ndim()).partition(|d| !axes.contains(d));
    // each side's dims merged where contiguous, so most reductions walk one stride
    let pick = |ds: &[usize]| -> Option<Layout> {
        let shape: Vec<usize> = ds.iter().map(|&d| x.shape[d]).collect();
        let strides: Vec<isize> = ds.iter().map(|&d| x.strides[d]).collect();
        collapse(&shape, &[&strides]).map(|mut l| l.remove(0))
    };
    let (Some(lk), Some(lr)) = (pick(&kept), pick(&red)) else {
        return Ok(None);
    };
    let mut out_shape = x.shape.to_vec();
    for &a in axes {
        out_shape[a] = 1;
    }
    let n_out: usize = kept.iter().map(|&d| x.shape[d]).product();
    let n_red: usize = red.iter().map(|&d| x.shape[d]).product();
    if n_out == 0 {
        return Ok(Some(alloc_output(gpu, out_dtype, &out_shape)?.0));
    }
    let xptr = device_ptr(gpu, x)?;
    let nk = lk.ndim as usize;
    let columns = n_out >= 64 && nk >= 1 && lk.strides[nk - 1] == 1 && lr.ndim == 1;
    if columns {
        return reduce_columns(
            gpu,
            op,
            x.dtype,
            out_dtype,
            (xptr, lk, lr.strides[0]),
            n_out,
            n_red,
        )
        .map(|r| Some(reshaped(r, &out_shape)));
    }
    // Few outputs over many elements: split each reduction over several blocks, then
    // reduce the partials (one block per output would leave most of the chip idle). The
    // 16-byte-load entry wants longer chunks (64 elements per thread of 4 bytes).
    let vec = lr.ndim == 1 && lr.strides[0] == 1;
    let (min_chunk, suffix) = if vec {
        (1 << 14, "_vec")
    } else {
        (1 << 12, "")
    };
    let chunks = if n_out < 512 && n_red >= 1 << 14 {
        (n_red / min_chunk).min((2048 / n_out).max(1)).max(1)
    } else {
        1
    };
    if chunks == 1 {
        let (out, optr) = alloc_output(gpu, out_dtype, &out_shape)?;
        run_kernel(
            gpu,
            (op, x.dtype, out_dtype, false),
            suffix,
            (xptr, lk, lr, optr),
            (n_out, n_red, 1),
            n_out,
        )?;
        return Ok(Some(out));
    }
    let acc = accumulator(op, out_dtype);
    let (partials, pptr) = alloc_output(gpu, acc, &[n_out, chunks])?;
    run_kernel(
        gpu,
        (op, x.dtype, out_dtype, true),
        suffix,
        (xptr, lk, lr, pptr),
        (n_out, n_red, chunks),
        n_out,
    )?;
    let second = reduce(gpu, op, &partials, &[1], out_dtype)?;
    Ok(second.map(|r| reshaped(r, &out_shape)))
}

/// A complex64 sum is two float32 sums: `x` read as float32 with a trailing axis of
/// (real, imaginary), reduced over the same axes, read back as complex64.
fn complex_sum(gpu: &'static Gpu, x: &ArrayData, axes: &[usize]) -> Result<Option<ArrayData>> {
    let mut shape = x.shape.to_vec();
    let mut strides: Vec<isize> = x.strides.iter().map(|s| s * 2).collect();
    shape.push(2);
    strides.push(1);
    let parts = x.view(shape.into(), strides.into(), x.offset * 2);
    let parts = ArrayData {
        dtype: Dtype::Float32,
        ..parts
    };
    let Some(sums) = reduce(gpu, ReduceOp::Sum, &parts, axes, Dtype::Float32)? else {
        return Ok(None);
    };
    let out_shape = &sums.shape[..sums.ndim() - 1];
    Ok(Some(ArrayData {
        dtype: Dtype::Complex64,
        shape: out_shape.into(),
        strides: rmx_core::shape::row_strides(out_shape),
        offset: 0,
        buffer: sums.buffer,
    }))
}

/// `r` (row-contiguous) viewed with `shape` (same element count).
fn reshaped(r: ArrayData, shape: &[usize]) -> ArrayData {
    ArrayData {
        shape: shape.into(),
        strides: rmx_core::shape::row_strides(shape),
        ..r
    }
}

/// The column kernel over `n_out` contiguous outputs, in chunks of the reduced elements
/// when there are too few outputs to fill the device; the partials (`[chunks, n_out]`)
/// are reduced the same way. Returns a row-contiguous `[n_out]` result.
fn reduce_columns(
    gpu: &'static Gpu,
    op: ReduceOp,
    input: Dtype,
    out: Dtype,
    (xptr, lk, rstride): (u64, Layout, i64),
    n_out: usize,
    n_red: usize,
) -> Result<ArrayData> {
    let blocks = n_out.div_ceil(BLOCK as usize);
    let chunks = if n_red < 512 {
        1
    } else {
        (1024 / blocks).clamp(1, n_red / 64)
    };
    let partial = chunks > 1;
    let dtype = if partial { accumulator(op, out) } else { out };
    let (res, rptr) = alloc_output(gpu, dtype, &[chunks, n_out])?;
    run_kernel(
        gpu,
        (op, input, out, partial),
        "_cols",
        (xptr, lk, rstride, rptr),
        (n_out, n_red, chunks),
        blocks,
    )?;
    if !partial {
        return Ok(reshaped(res, &[n_out]));
    }
    let flat = Layout::new(&[n_out], &[1]).expect("one dim");
    reduce_columns(
        gpu,
        op,
        dtype,
        out,
        (rptr, flat, n_out as i64),
        n_out,
        chunks,
    )
}

/// Launches entry `name{suffix}` of the reduction kernel over `chunks` x `blocks` blocks:
/// input, kept layout, the reduced axis (`R`: a layout, or the one stride of the column
/// entry), output, then the output and reduced counts and the chunk length.
fn run_kernel<R: cudarc::driver::DeviceRepr>(
    gpu: &'static Gpu,
    (op, input, out, partial): (ReduceOp, Dtype, Dtype, bool),
    suffix: &str,
    (xptr, lk, reduced, optr): (u64, Layout, R, u64),
    (n_out, n_red, chunks): (usize, usize, usize),
    blocks: usize,
) -> Result<()> {
    let Some(Kernel { name, src }) = reduce_kernel(op, input, out, partial) else {
        return Err(rmx_core::runtime_err!(
            "[cuda] No reduction kernel for {op:?}."
        ));
    };
    let entry = format!("{name}{suffix}");
    let f = gpu.kernel_in(&name, &entry, || src)?;
    let chunk = n_red.div_ceil(chunks) as i64;
    let (no, nr) = (n_out as i64, n_red as i64);
    let mut b = gpu.launch(&f);
    b.arg(&xptr)
        .arg(&lk)
        .arg(&reduced)
        .arg(&optr)
        .arg(&no)
        .arg(&nr)
        .arg(&chunk);
    let cfg = LaunchConfig {
        grid_dim: (blocks.min(1 << 20) as u32, chunks as u32, 1),
        block_dim: (BLOCK, 1, 1),
        shared_mem_bytes: 0,
    };
    unsafe { b.launch(cfg) }.map_err(|e| driver_err(&format!("launching {entry}"), e))?;
    Ok(())
}
