//! Elementwise kernels (unary, binary, select, cast, copy, fill): one grid-stride kernel
//! per op and dtypes, reading each operand through its layout. An operand is read in
//! one of five modes chosen at launch: contiguous (`i`), a broadcast scalar (`0`), strided
//! (`loc(layout, i)`), or a vector broadcast along the rows or the columns of a 2-d
//! (after merging) launch (`i % cols`, `i / cols`: a bias add).

use super::ops_c::{binary_expr, unary_expr};
use super::prelude::{bits_type, ctype, float_to_int, tag, PRELUDE};
use crate::device::{driver_err, Gpu};
use crate::layout::{collapse, Layout};
use crate::memory::{alloc_output, device_ptr, device_ptr_mut};
use cudarc::driver::LaunchConfig;
use parking_lot::Mutex;
use rmx_core::backend::{BinaryOp, UnaryOp};
use rmx_core::{ArrayData, Dtype, Result};
use std::collections::HashMap;
use std::sync::Arc;

const BLOCK: u32 = 256;
/// Elements per thread per grid step: independent loads in flight hide memory latency.
const UNROLL: usize = 4;

pub fn launch_config(n: usize) -> LaunchConfig {
    let blocks = n.div_ceil(BLOCK as usize * UNROLL).clamp(1, 1 << 20) as u32;
    LaunchConfig {
        grid_dim: (blocks, 1, 1),
        block_dim: (BLOCK, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// Read mode of an operand: 0 contiguous, 1 broadcast scalar, 2 strided, 3 a row vector
/// repeated down the rows of a 2-d launch (`[0, 1]` strides: element `i % cols`), 4 a
/// column vector repeated along them (`[1, 0]`: element `i / cols`).
fn mode(l: &Layout) -> i32 {
    let strides = &l.strides[..l.ndim as usize];
    if l.is_contiguous() {
        0
    } else if strides.iter().all(|&s| s == 0) {
        1
    } else if strides == [0, 1] {
        3
    } else if strides == [1, 0] {
        4
    } else {
        2
    }
}

/// The element of operand `n` read for output index `i`, by the operand's read mode (the
/// vector modes through `loc` too: this entry runs only beside a strided operand).
pub fn element(n: &str) -> String {
    format!("p{n}[(m{n} == 0 ? i : (m{n} == 1 ? 0 : loc(l{n}, i)))]")
}

/// The same read when no operand is strided: no `loc` call in the loop, which otherwise
/// keeps the loop from streaming (measured: a 256M-element f32 add took 5.0 ms, 0.6 TB/s).
fn dense_element(n: &str) -> String {
    format!("p{n}[(m{n} == 0 ? i : (m{n} == 1 ? 0 : vec_index(l{n}, m{n}, i)))]")
}

/// Suffix of the entry point for launches whose operands are all contiguous or scalars.
const DENSE: &str = "_dense";

/// Operands of one launch after merging dims: device pointers, layouts and modes.
pub struct Operands {
    pub ptrs: Vec<u64>,
    pub layouts: Vec<Layout>,
    pub modes: Vec<i32>,
}

pub fn operands(gpu: &'static Gpu, xs: &[&ArrayData], shape: &[usize]) -> Result<Option<Operands>> {
    let strides: Vec<&[isize]> = xs.iter().map(|x| &x.strides[..]).collect();
    let Some(layouts) = collapse(shape, &strides) else {
        return Ok(None);
    };
    let mut ptrs = Vec::with_capacity(xs.len());
    for x in xs {
        ptrs.push(device_ptr(gpu, x)?);
    }
    let modes = layouts.iter().map(mode).collect();
    Ok(Some(Operands {
        ptrs,
        layouts,
        modes,
    }))
}

/// Launches kernel `name` over `n` elements with `ops` (ptr, layout, mode each) then `out`.
pub fn launch(
    gpu: &'static Gpu,
    name: &str,
    src: impl FnOnce() -> String,
    ops: &Operands,
    out: u64,
    n: usize,
) -> Result<()> {
    if n == 0 {
        return Ok(());
    }
    let dense = ops.modes.iter().all(|&m| m != 2);
    let entry = if dense {
        format!("{name}{DENSE}")
    } else {
        name.to_string()
    };
    let f = gpu.kernel_in(name, &entry, src)?;
    let n = n as i64;
    let mut b = gpu.launch(&f);
    for k in 0..ops.ptrs.len() {
        b.arg(&ops.ptrs[k]).arg(&ops.layouts[k]).arg(&ops.modes[k]);
    }
    b.arg(&out).arg(&n);
    unsafe { b.launch(launch_config(n as usize)) }
        .map(|_| ())
        .map_err(|e| driver_err(&format!("launching {name}"), e))
}

/// Two entry points over one body: `name` (any layouts) and `name_dense` (no strided
/// operand), so one NVRTC compile serves both.
pub fn kernel_source(name: &str, inputs: &[(&str, &str)], out_type: &str, body: &str) -> String {
    let params: Vec<String> = inputs
        .iter()
        .map(|(n, t)| format!("const {t}* __restrict__ p{n}, Layout l{n}, int m{n}"))
        .collect();
    let dense_body = inputs.iter().fold(body.to_string(), |b, (n, _)| {
        b.replace(&element(n), &dense_element(n))
    });
    // Whole tiles of the dense entry read every operand's UNROLL elements before any
    // arithmetic: with the loads mixed into the body, a branchy body (sinf's range
    // reduction) kept each load waiting on the one before it, one load in flight per
    // thread (the compiled `exp(sin(x)*2+1)*x` streamed at 2.5 TB/s).
    let tile_loads: String = inputs
        .iter()
        .map(|(n, t)| {
            format!(
                "      {t} r{n}[{UNROLL}];\n#pragma unroll\n      for (int u = 0; u < {UNROLL}; ++u) {{ const i64 i = base + (i64)u * blockDim.x + threadIdx.x; r{n}[u] = {}; }}\n",
                dense_element(n)
            )
        })
        .collect();
    let tile_body = inputs.iter().fold(dense_body.clone(), |b, (n, _)| {
        b.replace(&dense_element(n), &format!("r{n}[u]"))
    });
    let params = params.join(", ");
    let head = |entry: &str| {
        format!(
            "extern \"C\" __global__ void {entry}({params}, {out_type}* __restrict__ out, i64 n) {{\n  const i64 step = (i64)gridDim.x * blockDim.x * {UNROLL};\n  for (i64 base = (i64)blockIdx.x * blockDim.x * {UNROLL}; base < n; base += step) {{\n"
        )
    };
    let checked = |body: &str| {
        format!("#pragma unroll\n    for (int u = 0; u < {UNROLL}; ++u) {{\n      const i64 i = base + (i64)u * blockDim.x + threadIdx.x;\n      if (i < n) {{\n{body}\n      }}\n    }}\n")
    };
    format!(
        "{PRELUDE}\n{}{}  }}\n}}\n{}    if (base + (i64){UNROLL} * blockDim.x <= n) {{\n{tile_loads}#pragma unroll\n      for (int u = 0; u < {UNROLL}; ++u) {{\n        const i64 i = base + (i64)u * blockDim.x + threadIdx.x;\n{tile_body}\n      }}\n      continue;\n    }}\n{}  }}\n}}\n",
        head(name),
        checked(body),
        head(&format!("{name}{DENSE}")),
        checked(&dense_body),
    )
}

/// A kernel's entry-point name (unique per source) and its CUDA C source.
#[derive(Clone, Debug, PartialEq)]
pub struct Kernel {
    pub name: String,
    pub src: String,
}

/// Elementwise `op` from `input` to `out`; `None` when this backend has no such kernel.
pub fn unary_kernel(op: UnaryOp, input: Dtype, out: Dtype) -> Option<Kernel> {
    if input == Dtype::Complex64 {
        return super::complex::unary_kernel(op, out);
    }
    let (ti, to) = (ctype(input)?, ctype(out)?);
    let expr = unary_expr(op, &ti)?;
    let name = format!("unary_{op:?}_{}_{}", tag(input), tag(out));
    let body = format!(
        "    {c} x = {load};\n    out[i] = {store};",
        c = ti.compute,
        load = ti.load(&element("x")),
        store = to.store(&format!("({})({expr})", to.compute)),
    );
    let src = kernel_source(&name, &[("x", ti.store)], to.store, &body);
    Some(Kernel { name, src })
}

pub fn binary_kernel(op: BinaryOp, input: Dtype, out: Dtype) -> Option<Kernel> {
    if input == Dtype::Complex64 {
        return super::complex::binary_kernel(op, out);
    }
    let (ti, to) = (ctype(input)?, ctype(out)?);
    let expr = binary_expr(op, &ti)?;
    let name = format!("binary_{op:?}_{}_{}", tag(input), tag(out));
    let body = format!(
        "    {c} a = {la}; {c} b = {lb};\n    out[i] = {store};",
        c = ti.compute,
        la = ti.load(&element("a")),
        lb = ti.load(&element("b")),
        store = to.store(&format!("({})({expr})", to.compute)),
    );
    let src = kernel_source(&name, &[("a", ti.store), ("b", ti.store)], to.store, &body);
    Some(Kernel { name, src })
}

pub fn select_kernel(cond: Dtype, input: Dtype) -> Kernel {
    let t = bits_type(input.size());
    let ct = bits_type(cond.size());
    let name = format!("select_{ct}_{t}");
    let body = format!(
        "    out[i] = {} ? {} : {};",
        element("c"),
        element("a"),
        element("b")
    );
    let src = kernel_source(&name, &[("c", ct), ("a", t), ("b", t)], t, &body);
    Kernel { name, src }
}

/// C-cast conversion (to bool: `x != 0`); the same dtype is a copy of the raw bits.
pub fn cast_kernel(input: Dtype, out: Dtype) -> Option<Kernel> {
    if input == out {
        let t = bits_type(out.size());
        let name = format!("copy_{t}");
        let body = format!("    out[i] = {};", element("x"));
        let src = kernel_source(&name, &[("x", t)], t, &body);
        return Some(Kernel { name, src });
    }
    if out == Dtype::Complex64 {
        return super::complex::from_real_kernel(input);
    }
    if input == Dtype::Complex64 {
        return super::complex::to_real_kernel(out);
    }
    let (ti, to) = (ctype(input)?, ctype(out)?);
    let name = format!("cast_{}_{}", tag(input), tag(out));
    let v = ti.load(&element("x"));
    let v = if to.compute == "bool" {
        format!("({v} != 0)")
    } else if ti.float && !to.float {
        float_to_int(&v, to.compute)
    } else {
        format!("({})({v})", to.compute)
    };
    let body = format!("    out[i] = {};", to.store(&v));
    let src = kernel_source(&name, &[("x", ti.store)], to.store, &body);
    Some(Kernel { name, src })
}

pub fn fill_kernel(dtype: Dtype) -> Kernel {
    let t = bits_type(dtype.size());
    let name = format!("fill_{t}");
    let src = format!("{PRELUDE}\nextern \"C\" __global__ void {name}({t}* out, u64 v, i64 n) {{\n  for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (i64)gridDim.x * blockDim.x) out[i] = ({t})v;\n}}\n");
    Kernel { name, src }
}

/// Runs `kernel` over the elements of `inputs` (all of `shape`) into a new array.
pub fn run(
    gpu: &'static Gpu,
    kernel: &Kernel,
    inputs: &[&ArrayData],
    shape: &[usize],
    out_dtype: Dtype,
) -> Result<Option<ArrayData>> {
    let Some(ops) = operands(gpu, inputs, shape)? else {
        return Ok(None);
    };
    let (out, optr) = alloc_output(gpu, out_dtype, shape)?;
    launch(
        gpu,
        &kernel.name,
        || kernel.src.clone(),
        &ops,
        optr,
        out.numel(),
    )?;
    Ok(Some(out))
}

/// What identifies a generated elementwise kernel.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    Unary(UnaryOp, Dtype, Dtype),
    Binary(BinaryOp, Dtype, Dtype),
    Select(Dtype, Dtype),
    Cast(Dtype, Dtype),
}

/// The kernel for `key`, generated once per process: building a source costs microseconds
/// of host time, which every op would otherwise pay.
fn memo(key: Key, make: impl FnOnce() -> Option<Kernel>) -> Option<Arc<Kernel>> {
    static MEMO: Mutex<Option<HashMap<Key, Option<Arc<Kernel>>>>> = Mutex::new(None);
    let mut guard = MEMO.lock();
    guard
        .get_or_insert_with(HashMap::new)
        .entry(key)
        .or_insert_with(|| make().map(Arc::new))
        .clone()
}

/// A kernel of the other families, by its generator's name and arguments (`key`), generated
/// once per process: formatting a source costs more host time than launching it (a decode
/// step's norms, rope and qmv paid it on every call), so callers get a copy of the memo.
pub fn generated(key: String, make: impl FnOnce() -> Option<Kernel>) -> Option<Kernel> {
    static MEMO: Mutex<Option<HashMap<String, Option<Arc<Kernel>>>>> = Mutex::new(None);
    let k = MEMO
        .lock()
        .get_or_insert_with(HashMap::new)
        .entry(key)
        .or_insert_with(|| make().map(Arc::new))
        .clone();
    k.map(|k| (*k).clone())
}

fn run_memo(
    gpu: &'static Gpu,
    key: Key,
    make: impl FnOnce() -> Option<Kernel>,
    inputs: &[&ArrayData],
    out_dtype: Dtype,
) -> Result<Option<ArrayData>> {
    match memo(key, make) {
        Some(k) => run(gpu, &k, inputs, &inputs[0].shape.clone(), out_dtype),
        None => Ok(None),
    }
}

/// `op(x)` into a new array of `out_dtype`; `Ok(None)` when no kernel fits.
pub fn unary(
    gpu: &'static Gpu,
    op: UnaryOp,
    x: &ArrayData,
    out_dtype: Dtype,
) -> Result<Option<ArrayData>> {
    let key = Key::Unary(op, x.dtype, out_dtype);
    run_memo(
        gpu,
        key,
        || unary_kernel(op, x.dtype, out_dtype),
        &[x],
        out_dtype,
    )
}

/// `op(a, b)` (same dtype, same shape) into a new array of `out_dtype`.
pub fn binary(
    gpu: &'static Gpu,
    op: BinaryOp,
    a: &ArrayData,
    b: &ArrayData,
    out_dtype: Dtype,
) -> Result<Option<ArrayData>> {
    let key = Key::Binary(op, a.dtype, out_dtype);
    run_memo(
        gpu,
        key,
        || binary_kernel(op, a.dtype, out_dtype),
        &[a, b],
        out_dtype,
    )
}

/// `cond ? a : b`, moving elements as raw bits (any dtype).
pub fn select(
    gpu: &'static Gpu,
    cond: &ArrayData,
    a: &ArrayData,
    b: &ArrayData,
) -> Result<Option<ArrayData>> {
    let key = Key::Select(cond.dtype, a.dtype);
    let make = || Some(select_kernel(cond.dtype, a.dtype));
    run_memo(gpu, key, make, &[cond, a, b], a.dtype)
}

/// `x` converted to `dtype`. Same dtype: a row-major copy.
pub fn cast(gpu: &'static Gpu, x: &ArrayData, dtype: Dtype) -> Result<Option<ArrayData>> {
    if x.dtype == dtype {
        if let Some(y) = copy_by_vectors(gpu, x)? {
            return Ok(Some(y));
        }
    }
    run_memo(
        gpu,
        Key::Cast(x.dtype, dtype),
        || cast_kernel(x.dtype, dtype),
        &[x],
        dtype,
    )
}

/// A row-major copy of `x` moved 16 bytes at a time, when its innermost (merged) axis is
/// contiguous in runs of whole 16-byte vectors and every other stride and its address are
/// whole vectors too (a transposed head axis: `o.transpose(0, 2, 1, 3)` before the output
/// product). The element-wise copy computed a strided address per element (0.13 ms for
/// 16 MB on an H200).
fn copy_by_vectors(gpu: &'static Gpu, x: &ArrayData) -> Result<Option<ArrayData>> {
    const V: usize = 16;
    let size = x.dtype.size();
    let Some(l) = collapse(&x.shape, &[&x.strides[..]]).and_then(|l| l.into_iter().next()) else {
        return Ok(None);
    };
    let nd = l.ndim as usize;
    if nd < 2 || x.numel() == 0 || l.strides[nd - 1] != 1 {
        return Ok(None);
    }
    let vectors = |elems: i64| {
        (elems * size as i64 % V as i64 == 0).then_some(elems * size as i64 / V as i64)
    };
    let Some(inner) = vectors(l.shape[nd - 1]) else {
        return Ok(None);
    };
    let outer: Option<Vec<i64>> = l.strides[..nd - 1].iter().map(|&st| vectors(st)).collect();
    let Some(outer) = outer else {
        return Ok(None);
    };
    let xp = device_ptr(gpu, x)?;
    if xp % V as u64 != 0 {
        return Ok(None);
    }
    let mut shape: Vec<usize> = l.shape[..nd].iter().map(|&d| d as usize).collect();
    shape[nd - 1] = inner as usize;
    let mut strides: Vec<isize> = outer.iter().map(|&st| st as isize).collect();
    strides.push(1);
    let Some(layout) = Layout::new(&shape, &strides) else {
        return Ok(None);
    };
    let (out, optr) = alloc_output(gpu, x.dtype, &x.shape)?;
    let ops = Operands {
        ptrs: vec![xp],
        layouts: vec![layout],
        modes: vec![2],
    };
    let name = "copy_v16";
    let src = || {
        kernel_source(
            name,
            &[("x", "uint4")],
            "uint4",
            &format!("    out[i] = {};", element("x")),
        )
    };
    launch(gpu, name, src, &ops, optr, shape.iter().product())?;
    Ok(Some(out))
}

/// `x` as is when row-contiguous, else a row-major copy (`None`: no copy kernel fits).
pub fn row_contiguous(gpu: &'static Gpu, x: &ArrayData) -> Result<Option<ArrayData>> {
    if x.is_row_contiguous() {
        Ok(Some(x.clone()))
    } else {
        cast(gpu, x, x.dtype)
    }
}

/// A fresh array of `shape` with every element's bytes equal to `bits` (little-endian,
/// `dtype.size()` bytes).
pub fn fill_bits(gpu: &'static Gpu, bits: u64, dtype: Dtype, shape: &[usize]) -> Result<ArrayData> {
    let (out, optr) = alloc_output(gpu, dtype, shape)?;
    let n = out.numel();
    if n == 0 {
        return Ok(out);
    }
    let Kernel { name, src } = fill_kernel(dtype);
    let f = gpu.kernel(&name, || src)?;
    let n64 = n as i64;
    let mut b = gpu.launch(&f);
    b.arg(&optr).arg(&bits).arg(&n64);
    unsafe { b.launch(launch_config(n)) }.map_err(|e| driver_err("launching fill", e))?;
    Ok(out)
}

/// Copies `src` into the strided view `dst` (same shape and dtype) of a buffer: the
/// device copy of that buffer becomes its only valid one.
pub fn copy_into(gpu: &'static Gpu, src: &ArrayData, dst: &ArrayData) -> Result<bool> {
    let Some(ls) = collapse(&src.shape, &[&src.strides[..], &dst.strides[..]]) else {
        return Ok(false);
    };
    let n = src.numel();
    if n == 0 {
        return Ok(true);
    }
    let t = bits_type(src.dtype.size());
    let name = format!("copy_to_view_{t}");
    let src_code = || {
        format!(
            "{PRELUDE}\nextern \"C\" __global__ void {name}(const {t}* x, Layout lx, {t}* out, Layout lo, i64 n) {{\n  for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (i64)gridDim.x * blockDim.x) out[loc(lo, i)] = x[loc(lx, i)];\n}}\n"
        )
    };
    let f = gpu.kernel(&name, src_code)?;
    let (xp, op) = (device_ptr(gpu, src)?, device_ptr_mut(gpu, dst)?);
    let n64 = n as i64;
    let mut b = gpu.launch(&f);
    b.arg(&xp).arg(&ls[0]).arg(&op).arg(&ls[1]).arg(&n64);
    unsafe { b.launch(launch_config(n)) }.map_err(|e| driver_err("launching copy_into", e))?;
    dst.buffer
        .set_residency(rmx_core::allocator::Residency::GPU);
    Ok(true)
}

/// `start + i * step` (the step as the host computes it: `T(start + step) - T(start)`,
/// given here as `first` and `step` in the output's type) for `n` elements.
pub fn arange(
    gpu: &'static Gpu,
    first: f64,
    step: f64,
    dtype: Dtype,
    n: usize,
) -> Result<Option<ArrayData>> {
    let Some(t) = ctype(dtype) else {
        return Ok(None);
    };
    if !t.float && !matches!(dtype, Dtype::Int32 | Dtype::Int64 | Dtype::Uint32) {
        return Ok(None);
    }
    let (out, optr) = alloc_output(gpu, dtype, &[n])?;
    if n == 0 {
        return Ok(Some(out));
    }
    let name = format!("arange_{}", tag(dtype));
    let value = if t.float {
        t.store("(first + step * (double)i)")
    } else {
        t.store("((i64)first + (i64)step * i)")
    };
    let src = format!("{PRELUDE}\nextern \"C\" __global__ void {name}({s}* out, double first, double step, i64 n) {{\n  for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (i64)gridDim.x * blockDim.x) out[i] = {value};\n}}\n", s = t.store);
    let f = gpu.kernel(&name, || src)?;
    let n64 = n as i64;
    let mut b = gpu.launch(&f);
    b.arg(&optr).arg(&first).arg(&step).arg(&n64);
    unsafe { b.launch(launch_config(n)) }.map_err(|e| driver_err("launching arange", e))?;
    Ok(Some(out))
}
