//! Scans (cumulative sum/prod/max/min and logaddexp) along one axis, forward or
//! reversed, inclusive or exclusive. They reuse the reducers of reduce.rs.

use super::loops::{par_rows, ConstPtr, SendPtr};
use super::math::FloatElem;
use super::reduce::{with_reducer, ReduceDriver, Reducer};
use crate::array::ArrayData;
use crate::backend::ScanOp;
use crate::dtype::Dtype;
use crate::error::Result;
use half::{bf16, f16};
use num_complex::Complex32;
use num_traits::Float;

/// One scan step. The running value is rounded to the element type after every step
/// when the reducer accumulates in a wider type (f16/bf16 in f32), as
/// MLX's scans accumulate in the element type: its f16 cumsum of 1,000 values near 1.5
/// drifts by ~20 from the exact sums, and rmx gives the same numbers.
#[inline(always)]
fn advance<T: Copy, R: Reducer<T>>(r: &R, acc: R::Acc, v: T) -> R::Acc {
    let next = r.step(acc, v);
    if std::mem::size_of::<R::Acc>() == std::mem::size_of::<T>() {
        next
    } else {
        // step from the identity is exact for every scan (0 + a, 1 * a, max(-inf, a), ...)
        r.step(r.init(), r.finish(next))
    }
}

struct ScanRun<'a> {
    x: &'a ArrayData,
    out: &'a ArrayData,
    axis: usize,
    reverse: bool,
    inclusive: bool,
}

impl ReduceDriver for ScanRun<'_> {
    fn go<T: Copy + Send + Sync, R: Reducer<T>>(&self, r: &R) {
        let x = self.x;
        let len = x.shape[self.axis];
        let n = x.numel();
        if n == 0 {
            return;
        }
        let inner: usize = x.shape[self.axis + 1..].iter().product();
        if inner > 1 && x.is_row_contiguous() {
            return self.columns(r, len, inner);
        }
        if x.is_row_contiguous() && n / len >= LINE_GROUP {
            return self.rows(r, len);
        }
        let lines = n / len;
        let stride = x.strides[self.axis];
        let out_stride = crate::shape::row_strides(&x.shape)[self.axis];
        // offsets of the start of each line, in x and in the (row-major) output
        let mut outer_shape = x.shape.clone();
        outer_shape[self.axis] = 1;
        let mut starts = Vec::with_capacity(lines);
        crate::array::for_each_offset(&outer_shape, &x.strides, &mut |o| starts.push(o));
        let mut out_starts = Vec::with_capacity(lines);
        let ostr = crate::shape::row_strides(&x.shape);
        crate::array::for_each_offset(&outer_shape, &ostr, &mut |o| out_starts.push(o));
        let xp = ConstPtr(unsafe { x.ptr::<T>() });
        let op = SendPtr(unsafe { self.out.ptr_mut::<T>() });
        let (reverse, inclusive) = (self.reverse, self.inclusive);
        par_rows(lines, len, |l0, l1| {
            for l in l0..l1 {
                let mut acc = r.init();
                for k in 0..len {
                    let i = if reverse { len - 1 - k } else { k };
                    let v = unsafe { *xp.get().offset(starts[l] + i as isize * stride) };
                    let dst = unsafe { op.get().offset(out_starts[l] + i as isize * out_stride) };
                    if inclusive {
                        acc = advance(r, acc, v);
                        unsafe { *dst = r.finish(acc) };
                    } else {
                        unsafe { *dst = r.finish(acc) };
                        acc = advance(r, acc, v);
                    }
                }
            }
        });
    }
}

/// Elements per block of neighbouring lines scanned together (4 KiB of f32 accumulators).
const COLUMN_BLOCK: usize = 1024;

impl ScanRun<'_> {
    /// A row-contiguous input scanned along a non-last axis: the lines of one block of
    /// neighbouring columns advance together, so every step reads and writes contiguous
    /// runs (a line at a time would touch one cache line per element).
    fn columns<T: Copy + Send + Sync, R: Reducer<T>>(&self, r: &R, len: usize, inner: usize) {
        let outer = self.x.numel() / (len * inner);
        let blocks = inner.div_ceil(COLUMN_BLOCK);
        let xp = ConstPtr(unsafe { self.x.ptr::<T>() });
        let op = SendPtr(unsafe { self.out.ptr_mut::<T>() });
        let (reverse, inclusive) = (self.reverse, self.inclusive);
        par_rows(outer * blocks, len * COLUMN_BLOCK.min(inner), |t0, t1| {
            let mut acc = vec![r.init(); COLUMN_BLOCK.min(inner)];
            for t in t0..t1 {
                let (o, j0) = (t / blocks, (t % blocks) * COLUMN_BLOCK);
                let w = COLUMN_BLOCK.min(inner - j0);
                let acc = &mut acc[..w];
                acc.fill(r.init());
                for k in 0..len {
                    let i = if reverse { len - 1 - k } else { k };
                    let at = (o * len + i) * inner + j0;
                    // SAFETY: `at..at + w` lies inside line block `t` of both buffers, and
                    // the blocks of different tasks are disjoint.
                    let xs = unsafe { std::slice::from_raw_parts(xp.get().add(at), w) };
                    let os = unsafe { std::slice::from_raw_parts_mut(op.get().add(at), w) };
                    if inclusive {
                        for ((a, &v), d) in acc.iter_mut().zip(xs).zip(os) {
                            *a = advance(r, *a, v);
                            *d = r.finish(*a);
                        }
                    } else {
                        for ((a, &v), d) in acc.iter_mut().zip(xs).zip(os) {
                            *d = r.finish(*a);
                            *a = advance(r, *a, v);
                        }
                    }
                }
            }
        });
    }
}

/// Lines of a last-axis scan advanced together: their accumulations are independent, so
/// the adds of one step overlap instead of waiting on each other's latency.
const LINE_GROUP: usize = 8;
/// Elements of one line scanned before moving to the next line of the group.
const LINE_TILE: usize = 32;

impl ScanRun<'_> {
    /// A row-contiguous input scanned along its last axis, `LINE_GROUP` lines at a time.
    fn rows<T: Copy + Send + Sync, R: Reducer<T>>(&self, r: &R, len: usize) {
        let lines = self.x.numel() / len;
        let xp = ConstPtr(unsafe { self.x.ptr::<T>() });
        let op = SendPtr(unsafe { self.out.ptr_mut::<T>() });
        let (reverse, inclusive) = (self.reverse, self.inclusive);
        par_rows(lines.div_ceil(LINE_GROUP), len * LINE_GROUP, |g0, g1| {
            for g in g0..g1 {
                let l0 = g * LINE_GROUP;
                let m = LINE_GROUP.min(lines - l0);
                let mut acc = [r.init(); LINE_GROUP];
                // A tile of each line in turn: each cache line is used up before the
                // next line's (lines a multiple of 4 KiB apart share one cache set).
                for k0 in (0..len).step_by(LINE_TILE) {
                    let k1 = (k0 + LINE_TILE).min(len);
                    for (q, a) in acc.iter_mut().enumerate().take(m) {
                        let base = (l0 + q) * len;
                        for k in k0..k1 {
                            let i = if reverse { len - 1 - k } else { k };
                            // SAFETY: element `i < len` of line `l0 + q < lines`; the
                            // lines of different tasks are disjoint.
                            let v = unsafe { *xp.get().add(base + i) };
                            let d = unsafe { &mut *op.get().add(base + i) };
                            if inclusive {
                                *a = advance(r, *a, v);
                                *d = r.finish(*a);
                            } else {
                                *d = r.finish(*a);
                                *a = advance(r, *a, v);
                            }
                        }
                    }
                }
            }
        });
    }
}

/// `log(exp(a) + exp(b))` accumulated in the compute type.
struct LogAddExp;
impl<T: FloatElem> Reducer<T> for LogAddExp {
    type Acc = T::C;
    fn init(&self) -> T::C {
        T::C::neg_infinity()
    }
    fn step(&self, a: T::C, v: T) -> T::C {
        logaddexp(a, v.up())
    }
    fn merge(&self, a: T::C, b: T::C) -> T::C {
        logaddexp(a, b)
    }
    fn finish(&self, a: T::C) -> T {
        T::down(a)
    }
}

fn logaddexp<F: Float>(a: F, b: F) -> F {
    if a.is_nan() || b.is_nan() {
        return F::nan();
    }
    let (m, o) = if a > b { (a, b) } else { (b, a) };
    if m == F::neg_infinity() || m == F::infinity() {
        return m;
    }
    m + (o - m).exp().ln_1p()
}

struct ComplexLogAddExp;
impl Reducer<Complex32> for ComplexLogAddExp {
    type Acc = Complex32;
    fn init(&self) -> Complex32 {
        Complex32::new(f32::NEG_INFINITY, 0.0)
    }
    fn step(&self, a: Complex32, v: Complex32) -> Complex32 {
        let (m, o) = if a.re >= v.re { (a, v) } else { (v, a) };
        if m.re == f32::NEG_INFINITY {
            return m;
        }
        m + (Complex32::new(1.0, 0.0) + (o - m).exp()).ln()
    }
    fn merge(&self, a: Complex32, b: Complex32) -> Complex32 {
        self.step(a, b)
    }
    fn finish(&self, a: Complex32) -> Complex32 {
        a
    }
}

pub fn scan(
    op: ScanOp,
    x: &ArrayData,
    axis: usize,
    reverse: bool,
    inclusive: bool,
) -> Result<ArrayData> {
    let out = ArrayData::alloc(x.dtype, &x.shape)?;
    let run = ScanRun {
        x,
        out: &out,
        axis,
        reverse,
        inclusive,
    };
    match op {
        ScanOp::Reduce(r) => with_reducer(r, x.dtype, &run),
        ScanOp::LogAddExp => match x.dtype {
            Dtype::Float16 => run.go::<f16, _>(&LogAddExp),
            Dtype::Bfloat16 => run.go::<bf16, _>(&LogAddExp),
            Dtype::Float32 => run.go::<f32, _>(&LogAddExp),
            Dtype::Float64 => run.go::<f64, _>(&LogAddExp),
            Dtype::Complex64 => run.go::<Complex32, _>(&ComplexLogAddExp),
            d => return Err(crate::value_err!("[logcumsumexp] Not supported for {d}.")),
        },
    }
    Ok(out)
}
