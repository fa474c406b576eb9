//! Elementwise loop drivers shared by the CPU kernels: contiguous fast paths that the
//! compiler vectorises, a collapsed-strided general path, and splitting across threads.

use crate::array::ArrayData;
use crate::shape::{collapse_dims, numel};
use rayon::prelude::*;

/// Elements below which a loop stays on one thread.
pub const PARALLEL_THRESHOLD: usize = 1 << 16;

#[derive(Clone, Copy)]
pub struct SendPtr<T>(pub *mut T);
unsafe impl<T> Send for SendPtr<T> {}
unsafe impl<T> Sync for SendPtr<T> {}
impl<T> SendPtr<T> {
    #[inline(always)]
    pub fn get(&self) -> *mut T {
        self.0
    }
}

#[derive(Clone, Copy)]
pub struct ConstPtr<T>(pub *const T);
unsafe impl<T> Send for ConstPtr<T> {}
unsafe impl<T> Sync for ConstPtr<T> {}
impl<T> ConstPtr<T> {
    #[inline(always)]
    pub fn get(&self) -> *const T {
        self.0
    }
}

/// Asks the CPU to bring the cache lines of `bytes` bytes at `p` into L1 (a hint: it
/// never faults, so `p` may point anywhere). For loops that stream through memory the
/// hardware prefetchers alone do not keep busy enough (see `PREFETCH_BYTES`).
#[inline(always)]
pub fn prefetch_lines(p: *const u8, bytes: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: prefetching is a hint and cannot fault; SSE is part of x86-64
        // every 64-byte line that `p..p + bytes` touches, once
        let (start, end) = ((p as usize) & !63, (p as usize).saturating_add(bytes));
        for a in (start..end).step_by(64) {
            unsafe { _mm_prefetch::<_MM_HINT_T0>(a as *const i8) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (p, bytes);
}

/// How far ahead of its reads a streaming loop prefetches. On a 2-core Sapphire Rapids VM
/// the 4-bit decode product read its weights at ~8 GB/s without it and ~17 GB/s with it
/// (`rmx-lm benchmark` 59 -> 106 tok/s; the AVX2 kernel, forced on the same machine, 43 -> 90).
/// 512 to 8192 bytes were measured (1 to 4 KiB alike), and the T1/T2 hints matched T0; NTA
/// lost a third.
pub const PREFETCH_BYTES: usize = 2048;

/// Runs `f(start, end)` over `[0, n)`, split across threads when `n` is large.
pub fn par_range(n: usize, f: impl Fn(usize, usize) + Sync) {
    let threads = rayon::current_num_threads().max(1);
    if n < PARALLEL_THRESHOLD || threads == 1 {
        f(0, n);
        return;
    }
    let chunks = threads * 4;
    let chunk = n.div_ceil(chunks);
    (0..chunks).into_par_iter().for_each(|c| {
        let s = c * chunk;
        let e = ((c + 1) * chunk).min(n);
        if s < e {
            f(s, e);
        }
    });
}

/// Runs `f(r0, r1)` over ranges of `rows` rows of `row_len` elements each, split across
/// threads by element count (so a few long rows still use every core).
pub fn par_rows(rows: usize, row_len: usize, f: impl Fn(usize, usize) + Sync) {
    let w = row_len.max(1);
    par_range(rows * w, |s, e| {
        // row r belongs to the chunk holding its first element
        let (r0, r1) = (s.div_ceil(w), e.div_ceil(w).min(rows));
        if r0 < r1 {
            f(r0, r1);
        }
    });
}

/// Offsets (in elements) of row `r` of a collapsed layout for each operand; rows are all dims but the last.
#[inline]
fn row_offsets<const N: usize>(
    mut r: usize,
    shape: &[usize],
    strides: &[[isize; N]],
) -> [isize; N] {
    let mut off = [0isize; N];
    for d in (0..shape.len() - 1).rev() {
        let i = (r % shape[d]) as isize;
        r /= shape[d];
        for m in 0..N {
            off[m] += i * strides[d][m];
        }
    }
    off
}

/// Visits elements `[start, end)` (row-major over `shape`) of several strided operands,
/// calling `f(k, offsets)` with the running output index and each operand's offset.
#[inline]
pub fn walk<const N: usize>(
    shape: &[usize],
    strides: &[[isize; N]],
    start: usize,
    end: usize,
    mut f: impl FnMut(usize, [isize; N]),
) {
    let nd = shape.len();
    let inner = shape[nd - 1];
    let inner_strides = strides[nd - 1];
    let mut k = start;
    while k < end {
        let r = k / inner;
        let j0 = k % inner;
        let j1 = inner.min(j0 + (end - k));
        let mut offs = row_offsets(r, shape, strides);
        for m in 0..N {
            offs[m] += j0 as isize * inner_strides[m];
        }
        for _ in j0..j1 {
            f(k, offs);
            for m in 0..N {
                offs[m] += inner_strides[m];
            }
            k += 1;
        }
    }
}

pub fn collapsed<const N: usize>(
    shape: &[usize],
    ops: [&ArrayData; N],
) -> (Vec<usize>, Vec<[isize; N]>) {
    let strides: Vec<&[isize]> = ops.iter().map(|d| d.strides.as_slice()).collect();
    let (s, st) = collapse_dims(shape, &strides);
    let per_dim: Vec<[isize; N]> = (0..s.len())
        .map(|d| std::array::from_fn(|m| st[m][d]))
        .collect();
    (s.to_vec(), per_dim)
}

/// `map2` whose output is a donated, dense input's own buffer (the CPU backend's
/// `binary_over` checked that the other input is contiguous or a scalar): the donated
/// input is read through the output slice, never through a second, overlapping one.
/// `f(mine, theirs)` gets the donated input's element first.
fn map2_over<T: Copy + Send + Sync, U: Copy + Send + Sync>(
    n: usize,
    op: SendPtr<U>,
    other: ConstPtr<T>,
    other_scalar: bool,
    f: impl Fn(T, T) -> U + Sync,
) {
    par_range(n, |s, e| {
        let os = unsafe { std::slice::from_raw_parts_mut(op.get().add(s), e - s) };
        if other_scalar {
            let v = unsafe { *other.get() };
            for o in os.iter_mut() {
                *o = f(unsafe { read_as::<U, T>(o) }, v);
            }
        } else {
            let vs = unsafe { std::slice::from_raw_parts(other.get().add(s), e - s) };
            for (o, v) in os.iter_mut().zip(vs) {
                *o = f(unsafe { read_as::<U, T>(o) }, *v);
            }
        }
    });
}

/// Whether an input and the output start at the same address: the output is that input's
/// donated buffer (see `CpuBackend::unary_over`), written over in place.
#[inline(always)]
pub(super) fn aliases<T, U>(input: *const T, out: *mut U) -> bool {
    std::ptr::eq(input.cast::<u8>(), out.cast::<u8>())
}

/// The `T` stored where an aliased output element `o` lives (same size: the donated input
/// has the output's dtype).
///
/// # Safety
/// `size_of::<T>() == size_of::<U>()` and the bytes at `o` are a valid `T`.
#[inline(always)]
unsafe fn read_as<U, T: Copy>(o: &U) -> T {
    debug_assert_eq!(std::mem::size_of::<T>(), std::mem::size_of::<U>());
    unsafe { std::ptr::read((o as *const U).cast::<T>()) }
}

/// `out[i] = f(x[i])` over a strided input into a fresh contiguous output.
pub fn map1<T: Copy + Send + Sync, U: Copy + Send + Sync>(
    x: &ArrayData,
    out: &ArrayData,
    f: impl Fn(T) -> U + Sync,
) {
    let n = numel(&x.shape);
    if n == 0 {
        return;
    }
    let xp = ConstPtr(unsafe { x.ptr::<T>() });
    let op = SendPtr(unsafe { out.ptr_mut::<U>() });
    if aliases(xp.get(), op.get()) {
        // `out` is `x`'s own (donated, dense) buffer: read and write through one slice
        par_range(n, |s, e| {
            let os = unsafe { std::slice::from_raw_parts_mut(op.get().add(s), e - s) };
            for o in os.iter_mut() {
                *o = f(unsafe { read_as::<U, T>(o) });
            }
        });
        return;
    }
    if x.is_row_contiguous() {
        par_range(n, |s, e| {
            let xs = unsafe { std::slice::from_raw_parts(xp.get().add(s), e - s) };
            let os = unsafe { std::slice::from_raw_parts_mut(op.get().add(s), e - s) };
            for (o, v) in os.iter_mut().zip(xs) {
                *o = f(*v);
            }
        });
        return;
    }
    let (shape, strides) = collapsed(&x.shape, [x]);
    if shape.is_empty() {
        unsafe { *op.get() = f(*xp.get()) };
        return;
    }
    par_range(n, |s, e| {
        walk(&shape, &strides, s, e, |k, [o]| unsafe {
            *op.get().add(k) = f(*xp.get().offset(o));
        });
    });
}

/// `out[i] = f(a[i], b[i])`; `a` and `b` are views of the output's shape.
pub fn map2<T: Copy + Send + Sync, U: Copy + Send + Sync>(
    a: &ArrayData,
    b: &ArrayData,
    out: &ArrayData,
    f: impl Fn(T, T) -> U + Sync,
) {
    let n = numel(&out.shape);
    if n == 0 {
        return;
    }
    let ap = ConstPtr(unsafe { a.ptr::<T>() });
    let bp = ConstPtr(unsafe { b.ptr::<T>() });
    let op = SendPtr(unsafe { out.ptr_mut::<U>() });
    let a_scalar = a.strides.iter().all(|&s| s == 0);
    let b_scalar = b.strides.iter().all(|&s| s == 0);
    let a_contig = a.is_row_contiguous();
    let b_contig = b.is_row_contiguous();
    let (a_over, b_over) = (aliases(ap.get(), op.get()), aliases(bp.get(), op.get()));
    if a_over {
        debug_assert!(b_scalar || b_contig);
        return map2_over(n, op, bp, b_scalar, &f);
    }
    if b_over {
        debug_assert!(a_scalar || a_contig);
        return map2_over(n, op, ap, a_scalar, |mine, theirs| f(theirs, mine));
    }
    if (a_contig || a_scalar) && (b_contig || b_scalar) {
        par_range(n, |s, e| {
            let os = unsafe { std::slice::from_raw_parts_mut(op.get().add(s), e - s) };
            match (a_scalar, b_scalar) {
                (true, true) => {
                    let (va, vb) = unsafe { (*ap.get(), *bp.get()) };
                    os.iter_mut().for_each(|o| *o = f(va, vb));
                }
                (true, false) => {
                    let va = unsafe { *ap.get() };
                    let bs = unsafe { std::slice::from_raw_parts(bp.get().add(s), e - s) };
                    for (o, vb) in os.iter_mut().zip(bs) {
                        *o = f(va, *vb);
                    }
                }
                (false, true) => {
                    let vb = unsafe { *bp.get() };
                    let as_ = unsafe { std::slice::from_raw_parts(ap.get().add(s), e - s) };
                    for (o, va) in os.iter_mut().zip(as_) {
                        *o = f(*va, vb);
                    }
                }
                (false, false) => {
                    let as_ = unsafe { std::slice::from_raw_parts(ap.get().add(s), e - s) };
                    let bs = unsafe { std::slice::from_raw_parts(bp.get().add(s), e - s) };
                    for ((o, va), vb) in os.iter_mut().zip(as_).zip(bs) {
                        *o = f(*va, *vb);
                    }
                }
            }
        });
        return;
    }
    let (shape, strides) = collapsed(&out.shape, [a, b]);
    if shape.is_empty() {
        unsafe { *op.get() = f(*ap.get(), *bp.get()) };
        return;
    }
    let nd = shape.len();
    let inner = shape[nd - 1];
    let [ia, ib] = strides[nd - 1];
    // Row-broadcast fast paths: contiguous inner rows against a repeated row or a per-row scalar.
    if inner >= 16 && (ia == 1 || ia == 0) && (ib == 1 || ib == 0) {
        let rows = n / inner;
        par_rows(rows, inner, |r0, r1| {
            for r in r0..r1 {
                let [oa, ob] = row_offsets(r, &shape, &strides);
                let os = unsafe { std::slice::from_raw_parts_mut(op.get().add(r * inner), inner) };
                unsafe {
                    match (ia, ib) {
                        (1, 1) => {
                            let as_ = std::slice::from_raw_parts(ap.get().offset(oa), inner);
                            let bs = std::slice::from_raw_parts(bp.get().offset(ob), inner);
                            for ((o, va), vb) in os.iter_mut().zip(as_).zip(bs) {
                                *o = f(*va, *vb);
                            }
                        }
                        (1, _) => {
                            let as_ = std::slice::from_raw_parts(ap.get().offset(oa), inner);
                            let vb = *bp.get().offset(ob);
                            for (o, va) in os.iter_mut().zip(as_) {
                                *o = f(*va, vb);
                            }
                        }
                        (_, 1) => {
                            let va = *ap.get().offset(oa);
                            let bs = std::slice::from_raw_parts(bp.get().offset(ob), inner);
                            for (o, vb) in os.iter_mut().zip(bs) {
                                *o = f(va, *vb);
                            }
                        }
                        _ => {
                            let (va, vb) = (*ap.get().offset(oa), *bp.get().offset(ob));
                            os.iter_mut().for_each(|o| *o = f(va, vb));
                        }
                    }
                }
            }
        });
        return;
    }
    par_range(n, |s, e| {
        walk(&shape, &strides, s, e, |k, [oa, ob]| unsafe {
            *op.get().add(k) = f(*ap.get().offset(oa), *bp.get().offset(ob));
        });
    });
}

/// `out[i] = f(a[i], b[i], c[i])` with a boolean first operand (select).
pub fn map3<T: Copy + Send + Sync>(c: &ArrayData, a: &ArrayData, b: &ArrayData, out: &ArrayData) {
    let n = numel(&out.shape);
    if n == 0 {
        return;
    }
    let cp = ConstPtr(unsafe { c.ptr::<bool>() });
    let ap = ConstPtr(unsafe { a.ptr::<T>() });
    let bp = ConstPtr(unsafe { b.ptr::<T>() });
    let op = SendPtr(unsafe { out.ptr_mut::<T>() });
    let (shape, strides) = collapsed(&out.shape, [c, a, b]);
    if shape.is_empty() {
        unsafe { *op.get() = if *cp.get() { *ap.get() } else { *bp.get() } };
        return;
    }
    par_range(n, |s, e| {
        walk(&shape, &strides, s, e, |k, [oc, oa, ob]| unsafe {
            *op.get().add(k) = if *cp.get().offset(oc) {
                *ap.get().offset(oa)
            } else {
                *bp.get().offset(ob)
            };
        });
    });
}

/// Strided copy of `src` into the strided view `dst` (same shape), with element conversion.
pub fn copy_strided<T: Copy + Send + Sync, U: Copy + Send + Sync>(
    src: &ArrayData,
    dst: &ArrayData,
    f: impl Fn(T) -> U + Sync,
) {
    let n = numel(&src.shape);
    if n == 0 {
        return;
    }
    let sp = ConstPtr(unsafe { src.ptr::<T>() });
    let dp = SendPtr(unsafe { dst.ptr_mut::<U>() });
    let (shape, strides) = collapsed(&src.shape, [src, dst]);
    if shape.is_empty() {
        unsafe { *dp.get() = f(*sp.get()) };
        return;
    }
    let nd = shape.len();
    if nd >= 2 && strides[nd - 1][0].abs() != 1 && strides[nd - 2][0].abs() == 1 {
        copy_transposed(&shape, &strides, sp, dp, &f);
        return;
    }
    par_range(n, |s, e| {
        walk(&shape, &strides, s, e, |_, [os, od]| unsafe {
            *dp.get().offset(od) = f(*sp.get().offset(os));
        });
    });
}

/// Copy where the source is transposed in the last two dims: walking the destination
/// row by row would read the source a column at a time, so copy in square tiles that
/// stay in cache for both sides.
fn copy_transposed<T: Copy + Send + Sync, U: Copy + Send + Sync>(
    shape: &[usize],
    strides: &[[isize; 2]],
    sp: ConstPtr<T>,
    dp: SendPtr<U>,
    f: &(impl Fn(T) -> U + Sync),
) {
    const TILE: usize = 32;
    let nd = shape.len();
    let (rows, cols) = (shape[nd - 2], shape[nd - 1]);
    let outer: usize = shape[..nd - 2].iter().product();
    let (row_tiles, col_tiles) = (rows.div_ceil(TILE), cols.div_ceil(TILE));
    let [rs_s, rs_d] = strides[nd - 2];
    let [cs_s, cs_d] = strides[nd - 1];
    let tiles = outer * row_tiles * col_tiles;
    par_range(tiles * TILE * TILE, |s, e| {
        let (t0, t1) = (s / (TILE * TILE), e.div_ceil(TILE * TILE).min(tiles));
        for t in t0..t1 {
            if t * TILE * TILE < s {
                continue;
            }
            let o = t / (row_tiles * col_tiles);
            let r0 = (t / col_tiles % row_tiles) * TILE;
            let c0 = (t % col_tiles) * TILE;
            // offsets of the outer index o
            let (mut bs, mut bd, mut rem) = (0isize, 0isize, o);
            for d in (0..nd - 2).rev() {
                let i = (rem % shape[d]) as isize;
                rem /= shape[d];
                bs += i * strides[d][0];
                bd += i * strides[d][1];
            }
            // read along the source's contiguous axis (rows), write with stride
            for c in c0..(c0 + TILE).min(cols) {
                for r in r0..(r0 + TILE).min(rows) {
                    let (r, c) = (r as isize, c as isize);
                    unsafe {
                        *dp.get().offset(bd + r * rs_d + c * cs_d) =
                            f(*sp.get().offset(bs + r * rs_s + c * cs_s));
                    }
                }
            }
        }
    });
}
