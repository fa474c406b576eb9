//! Reductions over any set of axes, and arg-reductions over one axis. The op layer casts
//! the input to the output dtype first (e.g. int8 sums as int32), so kernels are T -> T,
//! with f16/bf16 accumulated in f32.

use super::loops::{par_range, par_rows, ConstPtr, SendPtr};
use super::math::FloatElem;
use crate::array::{for_each_offset, ArrayData};
use crate::backend::{ArgReduceOp, ReduceOp};
use crate::dtype::Dtype;
use crate::element::Element;
use crate::error::Result;
use crate::shape::{collapse_dims, Shape};
use half::{bf16, f16};
use num_complex::Complex32;
use num_traits::{Float, One, Zero};

/// A reduction: an accumulator type with an identity, a step and a merge.
pub trait Reducer<T>: Sync {
    type Acc: Copy + Send + Sync;
    fn init(&self) -> Self::Acc;
    fn step(&self, acc: Self::Acc, v: T) -> Self::Acc;
    fn merge(&self, a: Self::Acc, b: Self::Acc) -> Self::Acc;
    fn finish(&self, acc: Self::Acc) -> T;

    /// Reduces a contiguous slice with 8 independent lanes so the loop vectorises.
    #[inline]
    fn reduce_slice(&self, xs: &[T]) -> Self::Acc
    where
        T: Copy,
    {
        let mut lanes = [self.init(); 8];
        let chunks = xs.chunks_exact(8);
        let rest = chunks.remainder();
        for c in chunks {
            for i in 0..8 {
                lanes[i] = self.step(lanes[i], c[i]);
            }
        }
        let mut acc = self.init();
        for &v in rest {
            acc = self.step(acc, v);
        }
        for l in lanes {
            acc = self.merge(acc, l);
        }
        acc
    }
}

struct FloatSum;
impl<T: FloatElem> Reducer<T> for FloatSum {
    type Acc = T::C;
    fn init(&self) -> T::C {
        T::C::zero()
    }
    #[inline(always)]
    fn step(&self, a: T::C, v: T) -> T::C {
        a + v.up()
    }
    fn merge(&self, a: T::C, b: T::C) -> T::C {
        a + b
    }
    fn finish(&self, a: T::C) -> T {
        T::down(a)
    }
}
struct FloatProd;
impl<T: FloatElem> Reducer<T> for FloatProd {
    type Acc = T::C;
    fn init(&self) -> T::C {
        T::C::one()
    }
    #[inline(always)]
    fn step(&self, a: T::C, v: T) -> T::C {
        a * v.up()
    }
    fn merge(&self, a: T::C, b: T::C) -> T::C {
        a * b
    }
    fn finish(&self, a: T::C) -> T {
        T::down(a)
    }
}
struct FloatMax;
impl<T: FloatElem> Reducer<T> for FloatMax {
    type Acc = T::C;
    fn init(&self) -> T::C {
        T::C::neg_infinity()
    }
    #[inline(always)]
    fn step(&self, a: T::C, v: T) -> T::C {
        let v = v.up();
        if a.is_nan() || a > v {
            a
        } else {
            v
        }
    }
    fn merge(&self, a: T::C, b: T::C) -> T::C {
        if a.is_nan() || a > b {
            a
        } else {
            b
        }
    }
    fn finish(&self, a: T::C) -> T {
        T::down(a)
    }
}
struct FloatMin;
impl<T: FloatElem> Reducer<T> for FloatMin {
    type Acc = T::C;
    fn init(&self) -> T::C {
        T::C::infinity()
    }
    #[inline(always)]
    fn step(&self, a: T::C, v: T) -> T::C {
        let v = v.up();
        if a.is_nan() || a < v {
            a
        } else {
            v
        }
    }
    fn merge(&self, a: T::C, b: T::C) -> T::C {
        if a.is_nan() || a < b {
            a
        } else {
            b
        }
    }
    fn finish(&self, a: T::C) -> T {
        T::down(a)
    }
}

/// Reducers on types that are their own accumulator (integers, bool, complex).
struct Plain<T> {
    init: T,
    f: fn(T, T) -> T,
}
impl<T: Copy + Send + Sync> Reducer<T> for Plain<T> {
    type Acc = T;
    fn init(&self) -> T {
        self.init
    }
    #[inline(always)]
    fn step(&self, a: T, v: T) -> T {
        (self.f)(a, v)
    }
    fn merge(&self, a: T, b: T) -> T {
        (self.f)(a, b)
    }
    fn finish(&self, a: T) -> T {
        a
    }
}

macro_rules! int_plain {
    ($op:expr, $T:ty) => {
        match $op {
            ReduceOp::Sum => Plain::<$T> {
                init: 0,
                f: |a, b| a.wrapping_add(b),
            },
            ReduceOp::Prod => Plain::<$T> {
                init: 1,
                f: |a, b| a.wrapping_mul(b),
            },
            ReduceOp::Max => Plain::<$T> {
                init: <$T>::MIN,
                f: |a, b| if a > b { a } else { b },
            },
            ReduceOp::Min => Plain::<$T> {
                init: <$T>::MAX,
                f: |a, b| if a < b { a } else { b },
            },
            _ => unreachable!(),
        }
    };
}

/// Something to run with the reducer of an op and dtype (reductions and scans share the
/// per-dtype choice of accumulator).
pub trait ReduceDriver {
    fn go<T: Copy + Send + Sync, R: Reducer<T>>(&self, r: &R);
}

/// Picks the reducer for `op` on elements of `dtype` and hands it to `driver`.
pub fn with_reducer(op: ReduceOp, dtype: Dtype, driver: &impl ReduceDriver) {
    use ReduceOp::*;
    match (op, dtype) {
        (All, _) => driver.go::<bool, _>(&Plain::<bool> {
            init: true,
            f: |a, b| a && b,
        }),
        (Any, _) => driver.go::<bool, _>(&Plain::<bool> {
            init: false,
            f: |a, b| a || b,
        }),
        (_, Dtype::Float16) => float_reducer::<f16>(op, driver),
        (_, Dtype::Bfloat16) => float_reducer::<bf16>(op, driver),
        (_, Dtype::Float32) => float_reducer::<f32>(op, driver),
        (_, Dtype::Float64) => float_reducer::<f64>(op, driver),
        (_, Dtype::Complex64) => {
            let r = match op {
                Sum => Plain::<Complex32> {
                    init: Complex32::new(0.0, 0.0),
                    f: |a, b| a + b,
                },
                Prod => Plain::<Complex32> {
                    init: Complex32::new(1.0, 0.0),
                    f: |a, b| a * b,
                },
                Max => Plain::<Complex32> {
                    init: Complex32::new(f32::NEG_INFINITY, f32::NEG_INFINITY),
                    f: |a, b| {
                        if complex_nan(a) || (!complex_nan(b) && (a.re, a.im) >= (b.re, b.im)) {
                            a
                        } else {
                            b
                        }
                    },
                },
                _ => Plain::<Complex32> {
                    init: Complex32::new(f32::INFINITY, f32::INFINITY),
                    f: |a, b| {
                        if complex_nan(a) || (!complex_nan(b) && (a.re, a.im) <= (b.re, b.im)) {
                            a
                        } else {
                            b
                        }
                    },
                },
            };
            driver.go::<Complex32, _>(&r);
        }
        (_, Dtype::Bool) => {
            let r = match op {
                Sum | Max => Plain::<bool> {
                    init: false,
                    f: |a, b| a || b,
                },
                _ => Plain::<bool> {
                    init: true,
                    f: |a, b| a && b,
                },
            };
            driver.go::<bool, _>(&r);
        }
        (_, Dtype::Uint8) => driver.go::<u8, _>(&int_plain!(op, u8)),
        (_, Dtype::Uint16) => driver.go::<u16, _>(&int_plain!(op, u16)),
        (_, Dtype::Uint32) => driver.go::<u32, _>(&int_plain!(op, u32)),
        (_, Dtype::Uint64) => driver.go::<u64, _>(&int_plain!(op, u64)),
        (_, Dtype::Int8) => driver.go::<i8, _>(&int_plain!(op, i8)),
        (_, Dtype::Int16) => driver.go::<i16, _>(&int_plain!(op, i16)),
        (_, Dtype::Int32) => driver.go::<i32, _>(&int_plain!(op, i32)),
        (_, Dtype::Int64) => driver.go::<i64, _>(&int_plain!(op, i64)),
    }
}

fn float_reducer<T: FloatElem + Send + Sync>(op: ReduceOp, driver: &impl ReduceDriver) {
    match op {
        ReduceOp::Sum => driver.go::<T, _>(&FloatSum),
        ReduceOp::Prod => driver.go::<T, _>(&FloatProd),
        ReduceOp::Max => driver.go::<T, _>(&FloatMax),
        _ => driver.go::<T, _>(&FloatMin),
    }
}

struct ReduceRun<'a> {
    x: &'a ArrayData,
    axes: &'a [usize],
    out: &'a ArrayData,
}

impl ReduceDriver for ReduceRun<'_> {
    fn go<T: Copy + Send + Sync, R: Reducer<T>>(&self, r: &R) {
        run::<T, R>(r, self.x, self.axes, self.out)
    }
}

pub fn reduce(op: ReduceOp, x: &ArrayData, axes: &[usize], out_dtype: Dtype) -> Result<ArrayData> {
    debug_assert!(matches!(op, ReduceOp::All | ReduceOp::Any) || x.dtype == out_dtype);
    let mut out_shape: Shape = x.shape.clone();
    for &a in axes {
        out_shape[a] = 1;
    }
    let out = ArrayData::alloc(out_dtype, &out_shape)?;
    with_reducer(op, x.dtype, &ReduceRun { x, axes, out: &out });
    Ok(out)
}

/// Drives a reducer over the layout: contiguous rows, contiguous columns, or general strides.
fn run<T: Copy + Send + Sync, R: Reducer<T>>(
    r: &R,
    x: &ArrayData,
    axes: &[usize],
    out: &ArrayData,
) {
    let n_out = out.numel();
    let op = SendPtr(unsafe { out.ptr_mut::<T>() });
    let xp = ConstPtr(unsafe { x.ptr::<T>() });
    let n_red: usize = axes.iter().map(|&a| x.shape[a]).product();
    if n_out == 0 {
        return;
    }
    if n_red == 0 {
        for i in 0..n_out {
            unsafe { *op.get().add(i) = r.finish(r.init()) };
        }
        return;
    }
    let nd = x.ndim();
    let trailing = axes
        .iter()
        .enumerate()
        .all(|(i, &a)| a == nd - axes.len() + i);
    let leading = axes.iter().enumerate().all(|(i, &a)| a == i);
    if x.is_row_contiguous() && trailing {
        if n_out == 1 {
            // one big reduction: split across threads and merge
            let parts = parking_lot::Mutex::new(Vec::new());
            par_range(n_red, |s, e| {
                let xs = unsafe { std::slice::from_raw_parts(xp.get().add(s), e - s) };
                let acc = r.reduce_slice(xs);
                parts.lock().push(acc);
            });
            let acc = parts
                .into_inner()
                .into_iter()
                .fold(r.init(), |a, b| r.merge(a, b));
            unsafe { *op.get() = r.finish(acc) };
            return;
        }
        par_rows(n_out, n_red, |o0, o1| {
            for o in o0..o1 {
                let xs = unsafe { std::slice::from_raw_parts(xp.get().add(o * n_red), n_red) };
                unsafe { *op.get().add(o) = r.finish(r.reduce_slice(xs)) };
            }
        });
        return;
    }
    if x.is_row_contiguous() && leading {
        // columns: out[j] = reduce_i x[i, j]
        let chunk = 4096usize;
        let n_chunks = n_out.div_ceil(chunk);
        use rayon::prelude::*;
        (0..n_chunks).into_par_iter().for_each(|c| {
            let j0 = c * chunk;
            let j1 = (j0 + chunk).min(n_out);
            let mut acc = vec![r.init(); j1 - j0];
            for i in 0..n_red {
                let row =
                    unsafe { std::slice::from_raw_parts(xp.get().add(i * n_out + j0), j1 - j0) };
                for (a, &v) in acc.iter_mut().zip(row) {
                    *a = r.step(*a, v);
                }
            }
            for (j, a) in acc.into_iter().enumerate() {
                unsafe { *op.get().add(j0 + j) = r.finish(a) };
            }
        });
        return;
    }
    // General: walk kept dims for each output, reduced dims inside.
    let kept: Vec<usize> = (0..nd).filter(|d| !axes.contains(d)).collect();
    let kept_shape: Vec<usize> = kept.iter().map(|&d| x.shape[d]).collect();
    let kept_strides: Vec<isize> = kept.iter().map(|&d| x.strides[d]).collect();
    let red_shape: Vec<usize> = axes.iter().map(|&d| x.shape[d]).collect();
    let red_strides: Vec<isize> = axes.iter().map(|&d| x.strides[d]).collect();
    let (red_shape, red_strides) = {
        let (s, st) = collapse_dims(&red_shape, &[&red_strides]);
        (s.to_vec(), st[0].to_vec())
    };
    par_rows(n_out, n_red, |o0, o1| {
        for o in o0..o1 {
            // offset of output element o over kept dims
            let mut rem = o;
            let mut base = 0isize;
            for d in (0..kept_shape.len()).rev() {
                base += (rem % kept_shape[d]) as isize * kept_strides[d];
                rem /= kept_shape[d];
            }
            let mut acc = r.init();
            let p = unsafe { xp.get().offset(base) };
            for_each_offset(&red_shape, &red_strides, &mut |off| {
                acc = r.step(acc, unsafe { *p.offset(off) });
            });
            unsafe { *op.get().add(o) = r.finish(acc) };
        }
    });
}

pub fn arg_reduce(op: ArgReduceOp, x: &ArrayData, axis: usize) -> Result<ArrayData> {
    let mut out_shape: Shape = x.shape.clone();
    out_shape[axis] = 1;
    let out = ArrayData::alloc(Dtype::Uint32, &out_shape)?;
    let n_out = out.numel();
    let len = x.shape[axis];
    let stride = x.strides[axis];
    let mut outer_shape = x.shape.clone();
    outer_shape[axis] = 1;
    let outer_strides = x.strides.clone();
    let op_ = SendPtr(unsafe { out.ptr_mut::<u32>() });
    crate::dispatch!(x.dtype, T => {
        let xp = ConstPtr(unsafe { x.ptr::<T>() });
        let better = arg_better::<T>(op);
        par_rows(n_out, len, |o0, o1| {
            for o in o0..o1 {
                let mut rem = o;
                let mut base = 0isize;
                for d in (0..outer_shape.len()).rev() {
                    base += (rem % outer_shape[d]) as isize * outer_strides[d];
                    rem /= outer_shape[d];
                }
                let mut best = 0usize;
                if len > 0 {
                    let mut bv = unsafe { *xp.get().offset(base) };
                    for i in 1..len {
                        let v = unsafe { *xp.get().offset(base + i as isize * stride) };
                        if better(v, bv) { bv = v; best = i; }
                    }
                }
                unsafe { *op_.get().add(o) = best as u32 };
            }
        });
    });
    Ok(out)
}

/// `better(new, current)`: whether `new` replaces the current best. NaN wins and the first one stays.
fn arg_better<T: Element>(op: ArgReduceOp) -> impl Fn(T, T) -> bool + Sync {
    move |new: T, cur: T| {
        let (a, b) = (new.to_scalar(), cur.to_scalar());
        let nan = |s: &crate::element::Scalar| match s {
            crate::element::Scalar::Float(f) => f.is_nan(),
            crate::element::Scalar::Complex(c) => c.re.is_nan() || c.im.is_nan(),
            _ => false,
        };
        if nan(&b) {
            return false;
        }
        if nan(&a) {
            return true;
        }
        let ord = scalar_cmp(a, b);
        match op {
            ArgReduceOp::ArgMax => ord == std::cmp::Ordering::Greater,
            ArgReduceOp::ArgMin => ord == std::cmp::Ordering::Less,
        }
    }
}

fn scalar_cmp(a: crate::element::Scalar, b: crate::element::Scalar) -> std::cmp::Ordering {
    use crate::element::Scalar::*;
    match (a, b) {
        (Int(x), Int(y)) => x.cmp(&y),
        (UInt(x), UInt(y)) => x.cmp(&y),
        (Bool(x), Bool(y)) => x.cmp(&y),
        (Complex(x), Complex(y)) => (x.re, x.im)
            .partial_cmp(&(y.re, y.im))
            .unwrap_or(std::cmp::Ordering::Equal),
        (x, y) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(std::cmp::Ordering::Equal),
    }
}

fn complex_nan(c: Complex32) -> bool {
    c.re.is_nan() || c.im.is_nan()
}
