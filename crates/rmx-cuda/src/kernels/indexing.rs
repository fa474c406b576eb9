//! Gathers and scatters along one axis (`take`, `take_along_axis`, `scatter_along_axis`,
//! `check_indices`), with every index bounds-checked on the device: an index out of range
//! is recorded in the GPU's `IndexErrors` record (its element is left zero or unwritten)
//! and raised as an `IndexError` at the next synchronization.
//!
//! Operands are made row-contiguous first, so an element of the data sits at
//! `(outer * size + index) * inner + r` and the kernels need no layouts.

use super::elementwise::{cast, generated, launch_config, row_contiguous as dense, Kernel};
use super::ops_c::binary_expr;
use super::prelude::{bits_type, ctype, tag, PRELUDE};
use crate::device::{driver_err, Gpu};
use crate::memory::{alloc_output, device_ptr, device_ptr_mut};
use rmx_core::allocator::Residency;
use rmx_core::backend::{BinaryOp, ScatterMode};
use rmx_core::{ArrayData, Dtype, Result};

/// Kernel code of the ops in `device::INDEX_OPS`.
const TAKE: i32 = 0;
const TAKE_ALONG: i32 = 1;
pub const SCATTER: i32 = 2;
const CHECK: i32 = 3;

/// Wraps a negative index and checks it; on failure records it (first error wins).
pub const CHECKED: &str = r#"
__device__ __forceinline__ bool wrap_index(i64& v, i64 size, i64* err, int op, int axis) {
  i64 raw = v;
  if (v < 0) v += size;
  if (v >= 0 && v < size) return true;
  if (atomicCAS((unsigned long long*)err, 0ull, 1ull) == 0ull) {
    err[1] = op; err[2] = raw; err[3] = size; err[4] = axis;
  }
  return false;
}
"#;

/// The split of an index position: `outer` rows, `nj` indices per row, `inner` elements
/// per index; and the indexed axis' size.
struct Split {
    outer: i64,
    nj: i64,
    inner: i64,
    size: i64,
    axis: i32,
}

fn split(shape: &[usize], axis: usize, size: usize) -> Split {
    Split {
        outer: shape[..axis].iter().product::<usize>() as i64,
        nj: shape[axis] as i64,
        inner: shape[axis + 1..].iter().product::<usize>() as i64,
        size: size as i64,
        axis: axis as i32,
    }
}

/// Gather kernel: with `along` the index is read at the output position (take_along_axis),
/// else at its middle coordinate `j` (take, whose index array is flattened).
fn gather_kernel(data: Dtype, index: Dtype) -> Kernel {
    let t = bits_type(data.size());
    let it = ctype(index).expect("integer").store;
    let name = format!("gather_{t}_{}", tag(index));
    let src = format!(
        r#"{PRELUDE}{CHECKED}
extern "C" __global__ void {name}(const {t}* x, const {it}* idx, {t}* out, i64 outer, i64 nj,
    i64 inner, i64 size, int axis, int along, int op, i64* err) {{
  const i64 n = outer * nj * inner;
  for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (i64)gridDim.x * blockDim.x) {{
    const i64 r = i % inner, t = i / inner, j = t % nj, o = t / nj;
    i64 v = (i64)idx[along ? i : j];
    out[i] = wrap_index(v, size, err, op, axis) ? x[(o * size + v) * inner + r] : ({t})0;
  }}
}}
"#
    );
    Kernel { name, src }
}

fn run_gather(
    gpu: &'static Gpu,
    x: &ArrayData,
    indices: &ArrayData,
    out_shape: &[usize],
    s: Split,
    along: bool,
) -> Result<Option<ArrayData>> {
    if !indices.dtype.is_integer() {
        return Ok(None); // the host raises the dtype error
    }
    let (Some(x), Some(idx)) = (dense(gpu, x)?, dense(gpu, indices)?) else {
        return Ok(None);
    };
    let (out, optr) = alloc_output(gpu, x.dtype, out_shape)?;
    let n = out.numel();
    if n == 0 {
        return Ok(Some(out));
    }
    let (xp, ip) = (device_ptr(gpu, &x)?, device_ptr(gpu, &idx)?);
    let Kernel { name, src } = gather_kernel(x.dtype, idx.dtype);
    let f = gpu.kernel(&name, || src)?;
    let (along, op) = (along as i32, if along { TAKE_ALONG } else { TAKE });
    let mut b = gpu.launch(&f);
    b.arg(&xp).arg(&ip).arg(&optr);
    b.arg(&s.outer)
        .arg(&s.nj)
        .arg(&s.inner)
        .arg(&s.size)
        .arg(&s.axis);
    b.arg(&along).arg(&op).arg(&gpu.index_errors.device);
    unsafe { b.launch(launch_config(n)) }.map_err(|e| driver_err("launching gather", e))?;
    Ok(Some(out))
}

pub fn take(
    gpu: &'static Gpu,
    x: &ArrayData,
    indices: &ArrayData,
    axis: usize,
) -> Result<Option<ArrayData>> {
    let mut out_shape: Vec<usize> = x.shape[..axis].to_vec();
    out_shape.extend_from_slice(&indices.shape);
    out_shape.extend_from_slice(&x.shape[axis + 1..]);
    // positions split as [outer, indices (flattened), inner]
    let mut flat: Vec<usize> = x.shape[..axis].to_vec();
    flat.push(indices.numel());
    flat.extend_from_slice(&x.shape[axis + 1..]);
    let s = split(&flat, axis, x.shape[axis]);
    run_gather(gpu, x, indices, &out_shape, s, false)
}

pub fn take_along_axis(
    gpu: &'static Gpu,
    x: &ArrayData,
    indices: &ArrayData,
    axis: usize,
) -> Result<Option<ArrayData>> {
    let s = split(&indices.shape, axis, x.shape[axis]);
    run_gather(gpu, x, indices, &indices.shape.clone(), s, true)
}

/// Scatter of `updates` into a copy of the data: stores for `Set` (duplicates: one of
/// them wins), atomic compare-and-swap loops on the element's word for the combining modes.
fn scatter_kernel(mode: ScatterMode, data: Dtype, index: Dtype) -> Option<Kernel> {
    generated(format!("scatter_kernel {:?}", (mode, data, index)), || {
        let it = ctype(index)?.store;
        let name = format!("scatter_{mode:?}_{}_{}", tag(data), tag(index));
        let head = format!(
            r#"{PRELUDE}{CHECKED}
    extern "C" __global__ void {name}(T_* out, const {it}* idx, const T_* upd, i64 outer, i64 nj,
        i64 inner, i64 size, int axis, i64* err) {{
      const i64 n = outer * nj * inner;
      for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (i64)gridDim.x * blockDim.x) {{
        const i64 r = i % inner, o = i / inner / nj;
        i64 v = (i64)idx[i];
        if (!wrap_index(v, size, err, {SCATTER}, axis)) continue;
        T_* p = out + (o * size + v) * inner + r;
    "#
        );
        if mode == ScatterMode::Set {
            let t = bits_type(data.size());
            let src = format!("{head}    *p = upd[i];\n  }}\n}}\n").replace("T_", t);
            return Some(Kernel { name, src });
        }
        let body = {
            let t = ctype(data)?;
            let word = match data.size() {
                2 => "unsigned short",
                4 => "unsigned int",
                8 => "unsigned long long",
                _ => return None, // no 1-byte compare-and-swap
            };
            let op = match mode {
                ScatterMode::Add => BinaryOp::Add,
                ScatterMode::Prod => BinaryOp::Multiply,
                ScatterMode::Max => BinaryOp::Maximum,
                ScatterMode::Min => BinaryOp::Minimum,
                ScatterMode::Set => unreachable!(),
            };
            let expr = binary_expr(op, &t)?;
            format!(
                r#"    union U {{ {word} w; T_ t; }};
        const {c} b = {lb};
        U cur; cur.t = *p;
        while (true) {{
          const {c} a = {la};
          U next; next.t = {st};
          const {word} seen = atomicCAS(({word}*)p, cur.w, next.w);
          if (seen == cur.w) break;
          cur.w = seen;
        }}
      }}
    }}
    "#,
                c = t.compute,
                lb = t.load("upd[i]"),
                la = t.load("cur.t"),
                st = t.store(&format!("({})({expr})", t.compute)),
            )
            .replace("T_", t.store)
        };
        let t = ctype(data)?.store;
        Some(Kernel {
            name,
            src: format!("{}{body}", head.replace("T_", t)),
        })
    })
}

pub fn scatter_along_axis(
    gpu: &'static Gpu,
    mode: ScatterMode,
    x: &ArrayData,
    indices: &ArrayData,
    updates: &ArrayData,
    axis: usize,
) -> Result<Option<ArrayData>> {
    if !indices.dtype.is_integer() {
        return Ok(None);
    }
    let Some(Kernel { name, src }) = scatter_kernel(mode, x.dtype, indices.dtype) else {
        return Ok(None);
    };
    // the output is x itself when it was donated (a KV cache written in place), else a
    // fresh row-major copy of it
    let out = if x.is_donated_whole() {
        x.clone()
    } else {
        match cast(gpu, x, x.dtype)? {
            Some(out) => out,
            None => return Ok(None),
        }
    };
    let (Some(idx), Some(upd)) = (dense(gpu, indices)?, dense(gpu, updates)?) else {
        return Ok(None);
    };
    let n = idx.numel();
    if n == 0 || out.numel() == 0 {
        return Ok(Some(out));
    }
    let s = split(&idx.shape, axis, x.shape[axis]);
    let (op, ip, up) = (
        device_ptr_mut(gpu, &out)?,
        device_ptr(gpu, &idx)?,
        device_ptr(gpu, &upd)?,
    );
    let f = gpu.kernel(&name, || src)?;
    let mut b = gpu.launch(&f);
    b.arg(&op).arg(&ip).arg(&up);
    b.arg(&s.outer)
        .arg(&s.nj)
        .arg(&s.inner)
        .arg(&s.size)
        .arg(&s.axis);
    b.arg(&gpu.index_errors.device);
    unsafe { b.launch(launch_config(n)) }.map_err(|e| driver_err("launching scatter", e))?;
    // a donated buffer's host copy is stale now
    out.buffer.set_residency(Residency::GPU);
    Ok(Some(out))
}

/// Indices wrapped and checked against `size`, as int64.
pub fn check_indices(
    gpu: &'static Gpu,
    indices: &ArrayData,
    size: usize,
    axis: usize,
) -> Result<Option<ArrayData>> {
    if !indices.dtype.is_integer() {
        return Ok(None);
    }
    let Some(idx) = dense(gpu, indices)? else {
        return Ok(None);
    };
    let (out, optr) = alloc_output(gpu, Dtype::Int64, &idx.shape)?;
    let n = out.numel();
    if n == 0 {
        return Ok(Some(out));
    }
    let it = ctype(idx.dtype).expect("integer").store;
    let name = format!("check_indices_{}", tag(idx.dtype));
    let src = format!(
        r#"{PRELUDE}{CHECKED}
extern "C" __global__ void {name}(const {it}* idx, i64* out, i64 n, i64 size, int axis, i64* err) {{
  for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (i64)gridDim.x * blockDim.x) {{
    i64 v = (i64)idx[i];
    out[i] = wrap_index(v, size, err, {CHECK}, axis) ? v : 0;
  }}
}}
"#
    );
    let ip = device_ptr(gpu, &idx)?;
    let f = gpu.kernel(&name, || src)?;
    let (n64, size, axis) = (n as i64, size as i64, axis as i32);
    let mut b = gpu.launch(&f);
    b.arg(&ip).arg(&optr).arg(&n64).arg(&size).arg(&axis);
    b.arg(&gpu.index_errors.device);
    unsafe { b.launch(launch_config(n)) }.map_err(|e| driver_err("launching check_indices", e))?;
    Ok(Some(out))
}

/// Kernel sources for the NVRTC compile check (every dtype pair a model uses).
#[cfg(test)]
pub fn all_kernels() -> Vec<Kernel> {
    let mut v = Vec::new();
    for d in [
        Dtype::Float32,
        Dtype::Bfloat16,
        Dtype::Float16,
        Dtype::Int64,
        Dtype::Uint8,
    ] {
        for i in [Dtype::Int32, Dtype::Uint32, Dtype::Int64] {
            v.push(gather_kernel(d, i));
            for m in [ScatterMode::Set, ScatterMode::Add, ScatterMode::Max] {
                v.extend(scatter_kernel(m, d, i));
            }
        }
    }
    v.sort_by(|a, b| a.name.cmp(&b.name));
    v.dedup_by(|a, b| a.name == b.name);
    v
}
