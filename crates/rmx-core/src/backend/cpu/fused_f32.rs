//! `compile`'s fused elementwise programs in float32, run as one pass: each thread walks
//! its range in chunks of `CHUNK` elements and runs the whole op list on a chunk with the
//! intermediates in small scratch registers (L1/L2), writing the last op straight into
//! the output. The portable interpreter (`primitives/fused.rs`) instead calls a backend
//! kernel per op per 16K tile, allocating each intermediate and copying the result: on
//! `exp(sin(x)*2+1)*x` it ran at 1.5x the unfused graph, not the >= 2x issue 5 asks for.
//!
//! Every op computes what the unfused kernel computes for the same element (the same
//! `fast_math` kernels, with the same exact fallback for huge sin/cos/tan arguments, and
//! the same scalar formulas), so results are bit-identical to the unfused graph. Programs
//! with other ops, dtypes or input layouts return `None` and take the portable path.

use super::binary::{float_maximum, float_minimum};
use super::fast_math as fm;
use super::loops::{par_range, ConstPtr, SendPtr};
use super::stream_store;
use crate::array::ArrayData;
use crate::backend::{BinaryOp, UnaryOp};
use crate::dtype::Dtype;
use crate::error::Result;
use crate::primitives::fused::{layout, Arg, Fused, FusedKind, FusedOp, Layout};

/// Elements per register: 8 KiB, so a program's registers stay in L1/L2.
const CHUNK: usize = 2048;

#[derive(Clone, Copy)]
enum Source {
    Contiguous(ConstPtr<f32>),
    Scalar(f32),
    /// A contiguous row of this many elements repeated (a broadcast bias or scale).
    Periodic(ConstPtr<f32>, usize),
    /// One value per row of this many elements (a broadcast per-row statistic).
    RowConstant(ConstPtr<f32>, usize),
}

impl Source {
    /// Broadcast inputs are expanded into a register per chunk.
    fn is_broadcast_row(&self) -> bool {
        matches!(self, Source::Periodic(..) | Source::RowConstant(..))
    }
}

/// One operand of an op within a chunk.
#[derive(Clone, Copy)]
enum Operand<'a> {
    Slice(&'a [f32]),
    Scalar(f32),
}

/// Runs `program` when every op and input is supported; `None` otherwise.
pub fn run(program: &Fused, inputs: &[ArrayData]) -> Option<Result<ArrayData>> {
    let first = inputs.first()?;
    let supported_op = |op: &crate::primitives::fused::FusedOp| {
        op.dtype == Dtype::Float32
            && match op.kind {
                FusedKind::Unary(u) => unary_supported(u),
                FusedKind::Binary(b) => binary_supported(b),
                FusedKind::Cast | FusedKind::Select => false,
            }
    };
    if !program.ops.iter().all(supported_op) {
        return None;
    }
    let mut sources = Vec::with_capacity(inputs.len());
    for x in inputs {
        if x.dtype != Dtype::Float32 || x.shape != first.shape {
            return None;
        }
        let p = ConstPtr(unsafe { x.ptr::<f32>() });
        sources.push(if x.is_row_contiguous() {
            Source::Contiguous(p)
        } else if x.strides.iter().all(|&s| s == 0) {
            Source::Scalar(unsafe { *x.ptr::<f32>() })
        } else {
            match layout(x) {
                Layout::Periodic(n) => Source::Periodic(p, n),
                Layout::RowConstant(n) => Source::RowConstant(p, n),
                _ => return None,
            }
        });
    }
    // the unfused unary kernels use their libm forms on broadcast (non-contiguous)
    // inputs; keep those programs on the portable path, which does the same
    let unary_of_scalar = program.ops.iter().any(|op| {
        matches!(op.kind, FusedKind::Unary(_))
            && matches!(op.args[0], Arg::Input(i) if !matches!(sources[i], Source::Contiguous(_)))
    });
    if unary_of_scalar {
        return None;
    }
    Some(execute(program, &sources, &first.shape))
}

fn execute(program: &Fused, sources: &[Source], shape: &[usize]) -> Result<ArrayData> {
    let out = ArrayData::alloc(Dtype::Float32, shape)?;
    let n = out.numel();
    let op = SendPtr(unsafe { out.ptr_mut::<f32>() });
    let level = fm::simd_level();
    // a big output is computed into one more register and streamed out from there
    let stream = n * 4 >= stream_store::STREAM_MIN_BYTES;
    let (regs_of, count) = assign_registers(&program.ops);
    // registers after the program's hold broadcast inputs; a streamed output's comes last
    let mut next = count;
    let expanded: Vec<Option<usize>> = sources
        .iter()
        .map(|s| {
            s.is_broadcast_row().then(|| {
                next += 1;
                next - 1
            })
        })
        .collect();
    let scratch = next;
    par_range(n, |s, e| {
        let mut regs = vec![0f32; CHUNK * (scratch + stream as usize)];
        let mut start = s;
        while start < e {
            let len = CHUNK.min(e - start);
            let dst = unsafe { std::slice::from_raw_parts_mut(op.get().add(start), len) };
            let chunk = Chunk {
                level,
                program,
                regs_of: &regs_of,
                sources,
                expanded: &expanded,
                start,
                len,
            };
            expand_broadcasts(&chunk, &mut regs);
            if stream {
                let (regs, last) = regs.split_at_mut(CHUNK * scratch);
                // SAFETY: `level` comes from the CPUID probe.
                unsafe { run_chunk_at(&chunk, regs, &mut last[..len]) };
                stream_store::copy_streaming(&last[..len], dst);
            } else {
                // SAFETY: as above.
                unsafe { run_chunk_at(&chunk, &mut regs, dst) };
            }
            start += len;
        }
        if stream {
            stream_store::fence();
        }
    });
    Ok(out)
}

/// Elements `start..start + len` of a program's output.
struct Chunk<'a> {
    level: fm::SimdLevel,
    program: &'a Fused,
    regs_of: &'a [usize],
    sources: &'a [Source],
    /// The register holding each broadcast input's values for this chunk.
    expanded: &'a [Option<usize>],
    start: usize,
    len: usize,
}

/// Writes the chunk's elements of each broadcast input into its register, a run at a time.
fn expand_broadcasts(c: &Chunk<'_>, regs: &mut [f32]) {
    let end = c.start + c.len;
    for (src, reg) in c.sources.iter().zip(c.expanded) {
        let Some(reg) = *reg else { continue };
        let dst = &mut regs[reg * CHUNK..reg * CHUNK + c.len];
        let mut i = c.start;
        while i < end {
            match *src {
                Source::Periodic(p, n) => {
                    let (off, seg) = (i % n, (n - i % n).min(end - i));
                    // SAFETY: the input holds one row of n elements
                    let row = unsafe { std::slice::from_raw_parts(p.get().add(off), seg) };
                    dst[i - c.start..i - c.start + seg].copy_from_slice(row);
                    i += seg;
                }
                Source::RowConstant(p, n) => {
                    let seg = (n - i % n).min(end - i);
                    // SAFETY: the input holds one value per row of n output elements
                    let v = unsafe { *p.get().add(i / n) };
                    dst[i - c.start..i - c.start + seg].fill(v);
                    i += seg;
                }
                _ => unreachable!("only broadcast rows are expanded"),
            }
        }
    }
}

/// `run_chunk` compiled for the chunk's SIMD level, so its loops use the widest vectors.
unsafe fn run_chunk_at(c: &Chunk<'_>, regs: &mut [f32], dst: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx512bw,avx2,fma")]
    unsafe fn avx512(c: &Chunk<'_>, regs: &mut [f32], dst: &mut [f32]) {
        run_chunk(c, regs, dst)
    }
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn avx2(c: &Chunk<'_>, regs: &mut [f32], dst: &mut [f32]) {
        run_chunk(c, regs, dst)
    }
    match c.level {
        #[cfg(target_arch = "x86_64")]
        fm::SimdLevel::Avx512 => unsafe { avx512(c, regs, dst) },
        #[cfg(target_arch = "x86_64")]
        fm::SimdLevel::Avx2Fma => unsafe { avx2(c, regs, dst) },
        _ => run_chunk(c, regs, dst),
    }
}

/// The program on one chunk; op `i` before the last writes register `c.regs_of[i]`.
#[inline(always)]
fn run_chunk(c: &Chunk<'_>, regs: &mut [f32], dst: &mut [f32]) {
    let (start, len) = (c.start, c.len);
    let last = c.program.ops.len() - 1;
    let base = regs.as_mut_ptr();
    for (i, op) in c.program.ops.iter().enumerate() {
        // SAFETY (both slices): registers are disjoint CHUNK-sized parts of `regs`, and
        // an op never writes a register one of its operands is read from
        // (`assign_registers`).
        let operand = |a: &Arg| match *a {
            Arg::Op(j) => Operand::Slice(unsafe {
                std::slice::from_raw_parts(base.add(c.regs_of[j] * CHUNK), len)
            }),
            Arg::Input(k) => match c.sources[k] {
                Source::Contiguous(p) => {
                    Operand::Slice(unsafe { std::slice::from_raw_parts(p.get().add(start), len) })
                }
                Source::Scalar(v) => Operand::Scalar(v),
                Source::Periodic(..) | Source::RowConstant(..) => {
                    let r = c.expanded[k].expect("a broadcast input has a register");
                    Operand::Slice(unsafe { std::slice::from_raw_parts(base.add(r * CHUNK), len) })
                }
            },
        };
        let out: &mut [f32] = if i == last {
            &mut *dst
        } else {
            unsafe { std::slice::from_raw_parts_mut(base.add(c.regs_of[i] * CHUNK), len) }
        };
        match op.kind {
            FusedKind::Unary(u) => match operand(&op.args[0]) {
                Operand::Slice(x) => unary(c.level, u, x, out),
                Operand::Scalar(_) => unreachable!("excluded in `run`"),
            },
            FusedKind::Binary(b) => binary(b, operand(&op.args[0]), operand(&op.args[1]), out),
            FusedKind::Cast | FusedKind::Select => unreachable!("excluded in `run`"),
        }
    }
}

/// The register of each op's result (the last op's is unused) and how many registers
/// there are. A register is reused once no later op reads its value, so a chain of any
/// length needs two and the scratch stays in L1; an op's register is never one its own
/// operands are read from.
fn assign_registers(ops: &[FusedOp]) -> (Vec<usize>, usize) {
    let mut last_reader = vec![None; ops.len()];
    for (i, op) in ops.iter().enumerate() {
        for a in &op.args {
            if let Arg::Op(j) = *a {
                last_reader[j] = Some(i);
            }
        }
    }
    let (mut reg, mut free, mut count) = (vec![0; ops.len()], Vec::new(), 0);
    for (i, op) in ops.iter().enumerate().take(ops.len().saturating_sub(1)) {
        reg[i] = free.pop().unwrap_or_else(|| {
            count += 1;
            count - 1
        });
        for (k, a) in op.args.iter().enumerate() {
            let repeated = op.args[..k].contains(a);
            if let Arg::Op(j) = *a {
                if last_reader[j] == Some(i) && !repeated {
                    free.push(reg[j]);
                }
            }
        }
    }
    (reg, count)
}

fn unary_supported(op: UnaryOp) -> bool {
    use UnaryOp::*;
    matches!(
        op,
        Exp | Expm1
            | Log
            | Log1p
            | Log2
            | Log10
            | Sin
            | Cos
            | Tan
            | Tanh
            | Sigmoid
            | Erf
            | Abs
            | Negative
            | Sqrt
            | Rsqrt
            | Square
            | Reciprocal
    )
}

fn binary_supported(op: BinaryOp) -> bool {
    use BinaryOp::*;
    matches!(op, Add | Subtract | Multiply | Divide | Maximum | Minimum)
}

/// As `unary::fast_f32` and `unary::float_unary` compute each element.
#[inline(always)]
fn unary(level: fm::SimdLevel, op: UnaryOp, x: &[f32], out: &mut [f32]) {
    use UnaryOp::*;
    // SAFETY (map_f32_at): `level` comes from the CPUID probe.
    macro_rules! kernel {
        ($k:ty, $exact:expr) => {{
            unsafe { fm::map_f32_at::<$k>(level, x, out) };
            let fix: Option<fm::TrigFix> = $exact;
            if let Some(f) = fix {
                fm::fix_huge_trig_args(x, out, f);
            }
        }};
    }
    macro_rules! map {
        ($f:expr) => {
            for (o, &v) in out.iter_mut().zip(x) {
                *o = $f(v);
            }
        };
    }
    match op {
        Exp => kernel!(fm::Exp, None),
        Expm1 => kernel!(fm::Expm1, None),
        Log => kernel!(fm::Log, None),
        Log1p => kernel!(fm::Log1p, None),
        Log2 => kernel!(fm::Log2, None),
        Log10 => kernel!(fm::Log10, None),
        Sin => kernel!(fm::Sin, Some(fm::SIN_FIX)),
        Cos => kernel!(fm::Cos, Some(fm::COS_FIX)),
        Tan => kernel!(fm::Tan, Some(fm::TAN_FIX)),
        Tanh => kernel!(fm::Tanh, None),
        Sigmoid => kernel!(fm::Sigmoid, None),
        Erf => kernel!(fm::Erf, None),
        Abs => map!(|v: f32| v.abs()),
        Negative => map!(|v: f32| -v),
        Sqrt => map!(|v: f32| v.sqrt()),
        Rsqrt => map!(|v: f32| 1.0 / v.sqrt()),
        Square => map!(|v: f32| v * v),
        Reciprocal => map!(|v: f32| 1.0 / v),
        _ => unreachable!("excluded in `run`"),
    }
}

/// As `binary::float_binary` computes each element.
#[inline(always)]
fn binary(op: BinaryOp, a: Operand<'_>, b: Operand<'_>, out: &mut [f32]) {
    use BinaryOp::*;
    match op {
        Add => zip(a, b, out, |x, y| x + y),
        Subtract => zip(a, b, out, |x, y| x - y),
        Multiply => zip(a, b, out, |x, y| x * y),
        Divide => zip(a, b, out, |x, y| x / y),
        Maximum => zip(a, b, out, float_maximum::<f32>),
        Minimum => zip(a, b, out, float_minimum::<f32>),
        _ => unreachable!("excluded in `run`"),
    }
}

#[inline(always)]
fn zip(a: Operand<'_>, b: Operand<'_>, out: &mut [f32], f: impl Fn(f32, f32) -> f32) {
    match (a, b) {
        (Operand::Slice(x), Operand::Slice(y)) => {
            for ((o, &u), &v) in out.iter_mut().zip(x).zip(y) {
                *o = f(u, v);
            }
        }
        (Operand::Slice(x), Operand::Scalar(v)) => {
            for (o, &u) in out.iter_mut().zip(x) {
                *o = f(u, v);
            }
        }
        (Operand::Scalar(u), Operand::Slice(y)) => {
            for (o, &v) in out.iter_mut().zip(y) {
                *o = f(u, v);
            }
        }
        (Operand::Scalar(u), Operand::Scalar(v)) => out.fill(f(u, v)),
    }
}
