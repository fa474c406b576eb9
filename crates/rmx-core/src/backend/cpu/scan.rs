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
                        acc = r.step(acc, v);
                        unsafe { *dst = r.finish(acc) };
                    } else {
                        unsafe { *dst = r.finish(acc) };
                        acc = r.step(acc, v);
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
