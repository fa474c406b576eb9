//! Batched matrix multiply through the `gemm` crate (f32/f64/complex64 directly from
//! strided views; f16/bf16 converted to f32 so accumulation is in f32).

use super::loops::par_rows;
use super::loops::{ConstPtr, SendPtr};
use super::math::FloatElem;
use crate::array::ArrayData;
use crate::dtype::Dtype;
use crate::error::Result;
use crate::shape::Shape;
use gemm::Parallelism;
use half::slice::HalfFloatSliceExt;
use half::{bf16, f16};
use num_complex::Complex32;

/// Rows of `a` up to which an f16/bf16 product converts `b` block by block (decode shapes).
const FEW_ROWS: usize = 16;
/// The f32 block of `b`: `PANEL_K` x `PANEL_N` (256 KiB, within L2).
const PANEL_K: usize = 512;
const PANEL_N: usize = 128;

fn few_rows(a: &ArrayData, m: usize) -> bool {
    m <= FEW_ROWS && a.shape[..a.ndim() - 2].iter().product::<usize>() == 1
}

/// `[T]` slices converted to f32 (with F16C/AVX where the CPU has them).
trait HalfSlice: FloatElem<C = f32> + 'static {
    fn to_f32s(src: &[Self], dst: &mut [f32]);
    /// `to_f32s` inlined into code compiled with F16C (x86), without the per-call feature
    /// check and per-8-element calls of `half`'s slice conversion.
    ///
    /// # Safety
    /// The CPU must have F16C (and the caller be compiled with it to gain anything).
    unsafe fn to_f32s_f16c(src: &[Self], dst: &mut [f32]);
}
impl HalfSlice for f16 {
    fn to_f32s(src: &[f16], dst: &mut [f32]) {
        src.convert_to_f32_slice(dst)
    }
    #[inline(always)]
    unsafe fn to_f32s_f16c(src: &[f16], dst: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{__m128i, _mm256_cvtph_ps, _mm256_storeu_ps, _mm_loadu_si128};
            let n = src.len().min(dst.len());
            let n8 = n / 8 * 8;
            for i in (0..n8).step_by(8) {
                // SAFETY: i + 8 <= n for both slices; unaligned loads and stores
                unsafe {
                    let h = _mm_loadu_si128(src.as_ptr().add(i) as *const __m128i);
                    _mm256_storeu_ps(dst.as_mut_ptr().add(i), _mm256_cvtph_ps(h));
                }
            }
            for i in n8..n {
                dst[i] = src[i].to_f32();
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        Self::to_f32s(src, dst)
    }
}
impl HalfSlice for bf16 {
    fn to_f32s(src: &[bf16], dst: &mut [f32]) {
        src.convert_to_f32_slice(dst)
    }
    #[inline(always)]
    unsafe fn to_f32s_f16c(src: &[bf16], dst: &mut [f32]) {
        // bf16 is the top half of an f32: a shift, which vectorises
        for (d, s) in dst.iter_mut().zip(src) {
            *d = f32::from_bits((s.to_bits() as u32) << 16);
        }
    }
}

/// An f16/bf16 product with few rows (one token's activations times a weight matrix):
/// `a` is converted whole; a weight with unit stride along either axis is read once by
/// `WeightRows` (1x4096 by 4096x4096 f16: `x @ w.T` 1.7 ms, `x @ w` 4.7-5.1 -> 2.5 ms);
/// any other `b` is converted one `PANEL_K x PANEL_N` block at a time into f32 scratch that
/// the f32 GEMM accumulates from, so the weight is read once instead of being cast into an
/// f32 copy twice its size (18.5 -> 5.0 ms).
fn half_few_rows<T: HalfSlice>(
    a: &ArrayData,
    b: &ArrayData,
    out_shape: &[usize],
    m: usize,
    n: usize,
    k: usize,
) -> Result<ArrayData> {
    let nd = a.ndim();
    let a32 = super::copy::cast(a, Dtype::Float32)?; // row-contiguous [m, k]
    let out32 = ArrayData::alloc(Dtype::Float32, out_shape)?;
    let (brs, bcs) = (b.strides[nd - 2], b.strides[nd - 1]);
    let ap = ConstPtr(unsafe { a32.ptr::<f32>() });
    let bp = ConstPtr(unsafe { b.ptr::<T>() });
    let op = SendPtr(unsafe { out32.ptr_mut::<f32>() });
    if k == 0 {
        // SAFETY: a fresh buffer of m * n f32
        unsafe { std::slice::from_raw_parts_mut(op.get(), m * n) }.fill(0.0);
    }
    if (brs == 1 || bcs == 1) && k > 0 && n > 0 {
        // x @ w.T (each output's weights one contiguous run, the layout of a linear layer):
        // dot products straight from the converted run; x @ w with w row-major: each weight
        // row converted once and added, scaled, into a block of output columns
        let level = super::fast_math::simd_level();
        let job = WeightRows {
            a: ap,
            w: bp,
            stride: if brs == 1 { bcs } else { brs },
            by_columns: brs != 1,
            out: op,
            m,
            n,
            k,
        };
        let tasks = if job.by_columns {
            n.div_ceil(COL_BLOCK)
        } else {
            n
        };
        par_rows(tasks, k * n.div_ceil(tasks), |t0, t1| {
            // SAFETY: `level` comes from the CPUID probe; tasks t0..t1 own their weight
            // rows or column blocks and the matching output columns.
            unsafe { job.run_at(level, t0, t1) }
        });
        return super::copy::cast(&out32, a.dtype);
    }
    par_rows(n.div_ceil(PANEL_N), k * PANEL_N, |p0, p1| {
        let mut scratch = vec![0f32; PANEL_K * PANEL_N];
        for p in p0..p1 {
            let n0 = p * PANEL_N;
            let nb = PANEL_N.min(n - n0);
            for k0 in (0..k).step_by(PANEL_K) {
                let kb = PANEL_K.min(k - k0);
                // the block as f32 (weights with a unit stride took `WeightRows` above)
                // SAFETY: element (k0 + i, n0 + j) of b for i < kb, j < nb
                let at = |i: usize, j: usize| unsafe {
                    bp.get()
                        .offset((k0 + i) as isize * brs + (n0 + j) as isize * bcs)
                };
                for i in 0..kb {
                    for j in 0..nb {
                        scratch[i * nb + j] = unsafe { *at(i, j) }.up();
                    }
                }
                // SAFETY: columns n0..n0 + nb of the output belong to this task; the
                // operands are the live a32 rows and this task's scratch.
                unsafe {
                    gemm::gemm(
                        m,
                        nb,
                        kb,
                        op.get().add(n0),
                        1,
                        n as isize,
                        k0 > 0,
                        ap.get().add(k0),
                        1,
                        k as isize,
                        scratch.as_ptr(),
                        1,
                        nb as isize,
                        1.0,
                        1.0,
                        false,
                        false,
                        false,
                        Parallelism::None,
                    )
                }
            }
        }
    });
    super::copy::cast(&out32, a.dtype)
}

/// Elements of a weight run converted to f32 at a time (16 KiB, in L1; fewer horizontal
/// sums than shorter runs).
const RUN_K: usize = 4096;

/// Output columns per task of the row-major weight case (4 KiB of f32 per activation row).
const COL_BLOCK: usize = 1024;

/// An f16/bf16 weight read once for up to `FEW_ROWS` rows of row-contiguous f32 `a`:
/// - transposed (`by_columns` false): `out[r, j] = a[r, :] . w[j, :]`, weight row `j`
///   contiguous and `stride` apart from the next, converted `RUN_K` elements at a time;
/// - row-major (`by_columns` true): `out[r, c] = sum_i a[r, i] w[i, c]`, weight row `i`
///   contiguous and `stride` apart, each task a block of `COL_BLOCK` output columns.
///
/// f32 accumulation either way.
#[derive(Clone, Copy)]
struct WeightRows<T> {
    a: ConstPtr<f32>,
    w: ConstPtr<T>,
    stride: isize,
    by_columns: bool,
    out: SendPtr<f32>,
    m: usize,
    n: usize,
    k: usize,
}

impl<T: HalfSlice> WeightRows<T> {
    /// `run` compiled for AVX2 + FMA + F16C when the CPU has them (the dot products use
    /// 256-bit FMAs; on Zen 4 512-bit ones would run at the same rate).
    unsafe fn run_at(&self, level: super::fast_math::SimdLevel, j0: usize, j1: usize) {
        use super::fast_math::SimdLevel;
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2,fma,f16c")]
        unsafe fn avx2<T: HalfSlice>(job: &WeightRows<T>, j0: usize, j1: usize) {
            job.run::<true>(j0, j1)
        }
        #[cfg(target_arch = "x86_64")]
        let f16c = is_x86_feature_detected!("f16c");
        #[cfg(not(target_arch = "x86_64"))]
        let f16c = false;
        match level {
            #[cfg(target_arch = "x86_64")]
            SimdLevel::Avx512 | SimdLevel::Avx2Fma if f16c => unsafe { avx2(self, j0, j1) },
            _ => self.run::<false>(j0, j1),
        }
    }

    #[inline(always)]
    fn run<const FMA: bool>(&self, t0: usize, t1: usize) {
        if self.by_columns {
            for t in t0..t1 {
                self.columns::<FMA>(t * COL_BLOCK, self.n.min((t + 1) * COL_BLOCK));
            }
        } else {
            self.rows::<FMA>(t0, t1);
        }
    }

    /// Weight rows converted into `buf` (F16C / shift in the SIMD entries).
    #[inline(always)]
    fn convert<const FMA: bool>(src: &[T], buf: &mut [f32]) {
        if FMA {
            // SAFETY: `FMA` runs only from the SIMD entries, which need F16C
            unsafe { T::to_f32s_f16c(src, buf) }
        } else {
            T::to_f32s(src, buf)
        }
    }

    /// Output columns `c0..c1` of the row-major case.
    #[inline(always)]
    fn columns<const FMA: bool>(&self, c0: usize, c1: usize) {
        let (m, n, k, w) = (self.m, self.n, self.k, c1 - c0);
        let mut buf = [0f32; COL_BLOCK];
        // SAFETY (all): `a` holds m rows of k; weight row i holds n elements; output
        // columns c0..c1 of every row are this task's.
        let a = unsafe { std::slice::from_raw_parts(self.a.get(), m * k) };
        let out_row =
            |r: usize| unsafe { std::slice::from_raw_parts_mut(self.out.get().add(r * n + c0), w) };
        for r in 0..m {
            out_row(r).fill(0.0);
        }
        for i in 0..k {
            let src = unsafe {
                std::slice::from_raw_parts(self.w.get().offset(i as isize * self.stride).add(c0), w)
            };
            Self::convert::<FMA>(src, &mut buf[..w]);
            for r in 0..m {
                axpy::<FMA>(a[r * k + i], &buf[..w], out_row(r));
            }
        }
    }

    #[inline(always)]
    fn rows<const FMA: bool>(&self, j0: usize, j1: usize) {
        let (m, n, k) = (self.m, self.n, self.k);
        let mut buf = [0f32; RUN_K];
        let mut acc = [0f32; FEW_ROWS];
        // SAFETY (all): `a` holds m rows of k, the weight rows j0..j1 hold k elements each,
        // and output columns j0..j1 are this task's.
        let a = unsafe { std::slice::from_raw_parts(self.a.get(), m * k) };
        for j in j0..j1 {
            acc[..m].fill(0.0);
            let row = unsafe { self.w.get().offset(j as isize * self.stride) };
            for k0 in (0..k).step_by(RUN_K) {
                let kb = RUN_K.min(k - k0);
                let src = unsafe { std::slice::from_raw_parts(row.add(k0), kb) };
                Self::convert::<FMA>(src, &mut buf[..kb]);
                for (r, s) in acc[..m].iter_mut().enumerate() {
                    *s += dot::<FMA>(&a[r * k + k0..r * k + k0 + kb], &buf[..kb]);
                }
            }
            for (r, s) in acc[..m].iter().enumerate() {
                unsafe { *self.out.get().add(r * n + j) = *s };
            }
        }
    }
}

/// `y += s * x` over equal slices: AVX2 FMAs with `FMA` (as `dot`), plain f32 otherwise.
#[inline(always)]
fn axpy<const FMA: bool>(s: f32, x: &[f32], y: &mut [f32]) {
    let n = x.len().min(y.len());
    let mut i = 0;
    #[cfg(target_arch = "x86_64")]
    if FMA {
        use std::arch::x86_64::*;
        // SAFETY: as in `dot`; every access is within i..i + 8 <= n of both slices.
        unsafe {
            let sv = _mm256_set1_ps(s);
            let (px, py) = (x.as_ptr(), y.as_mut_ptr());
            while i + 8 <= n {
                let v = _mm256_fmadd_ps(sv, _mm256_loadu_ps(px.add(i)), _mm256_loadu_ps(py.add(i)));
                _mm256_storeu_ps(py.add(i), v);
                i += 8;
            }
        }
    }
    for j in i..n {
        y[j] += s * x[j];
    }
}

/// Dot product of two equal slices: AVX2 FMAs on four 8-lane accumulators with `FMA`
/// (which the SIMD entries guarantee), plain f32 arithmetic otherwise.
#[inline(always)]
fn dot<const FMA: bool>(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    #[cfg(target_arch = "x86_64")]
    if FMA {
        use std::arch::x86_64::*;
        // SAFETY: FMA is only true in functions compiled for AVX2+FMA on CPUs that have
        // them; every load reads i..i + 8 <= n of both slices.
        unsafe {
            let (pa, pb) = (a.as_ptr(), b.as_ptr());
            let mut s = [_mm256_setzero_ps(); 4];
            let mut i = 0;
            while i + 32 <= n {
                for (j, acc) in s.iter_mut().enumerate() {
                    let o = i + 8 * j;
                    *acc = _mm256_fmadd_ps(
                        _mm256_loadu_ps(pa.add(o)),
                        _mm256_loadu_ps(pb.add(o)),
                        *acc,
                    );
                }
                i += 32;
            }
            while i + 8 <= n {
                s[0] =
                    _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), s[0]);
                i += 8;
            }
            let v = _mm256_add_ps(_mm256_add_ps(s[0], s[1]), _mm256_add_ps(s[2], s[3]));
            let mut lanes = [0f32; 8];
            _mm256_storeu_ps(lanes.as_mut_ptr(), v);
            let tail: f32 = (i..n).map(|j| a[j] * b[j]).sum();
            return lanes.iter().sum::<f32>() + tail;
        }
    }
    a[..n].iter().zip(&b[..n]).map(|(x, y)| x * y).sum()
}

pub fn matmul(a: &ArrayData, b: &ArrayData) -> Result<ArrayData> {
    let nd = a.ndim();
    let (m, k) = (a.shape[nd - 2], a.shape[nd - 1]);
    let n = b.shape[nd - 1];
    let mut out_shape: Shape = a.shape.clone();
    out_shape[nd - 1] = n;
    match a.dtype {
        Dtype::Float32 => matmul_typed::<f32>(a, b, &out_shape, m, n, k),
        Dtype::Float64 => matmul_typed::<f64>(a, b, &out_shape, m, n, k),
        Dtype::Complex64 => matmul_typed::<Complex32>(a, b, &out_shape, m, n, k),
        Dtype::Float16 if few_rows(a, m) => half_few_rows::<f16>(a, b, &out_shape, m, n, k),
        Dtype::Bfloat16 if few_rows(a, m) => half_few_rows::<bf16>(a, b, &out_shape, m, n, k),
        Dtype::Float16 | Dtype::Bfloat16 => {
            let a32 = super::copy::cast(a, Dtype::Float32)?;
            let b32 = super::copy::cast(b, Dtype::Float32)?;
            let c32 = matmul_typed::<f32>(&a32, &b32, &out_shape, m, n, k)?;
            super::copy::cast(&c32, a.dtype)
        }
        d => Err(crate::value_err!(
            "[matmul] Only real floating point types are supported but {d} and {d} were provided."
        )),
    }
}

fn matmul_typed<T: Copy + Send + Sync + 'static + crate::element::Element>(
    a: &ArrayData,
    b: &ArrayData,
    out_shape: &[usize],
    m: usize,
    n: usize,
    k: usize,
) -> Result<ArrayData> {
    let out = ArrayData::alloc(T::DTYPE, out_shape)?;
    let nd = a.ndim();
    let batch: usize = out_shape[..nd - 2].iter().product();
    if batch == 0 || m == 0 || n == 0 {
        return Ok(out);
    }
    let batch_shape = &out_shape[..nd - 2];
    let (ars, acs) = (a.strides[nd - 2], a.strides[nd - 1]);
    let (brs, bcs) = (b.strides[nd - 2], b.strides[nd - 1]);
    let ap = ConstPtr(unsafe { a.ptr::<T>() });
    let bp = ConstPtr(unsafe { b.ptr::<T>() });
    let op = SendPtr(unsafe { out.ptr_mut::<T>() });
    let offsets = |mut bi: usize| -> (isize, isize) {
        let (mut oa, mut ob) = (0isize, 0isize);
        for d in (0..nd - 2).rev() {
            let i = (bi % batch_shape[d]) as isize;
            bi /= batch_shape[d];
            oa += i * a.strides[d];
            ob += i * b.strides[d];
        }
        (oa, ob)
    };
    let threads = rayon::current_num_threads();
    let flops_per = m * n * k;
    let run_one = |bi: usize, par: Parallelism| {
        let (oa, ob) = offsets(bi);
        unsafe {
            if k == 0 {
                std::slice::from_raw_parts_mut(op.get().add(bi * m * n), m * n)
                    .fill(<T as crate::element::Element>::zero());
                return;
            }
            gemm::gemm(
                m,
                n,
                k,
                op.get().add(bi * m * n),
                1,
                n as isize,
                false,
                ap.get().offset(oa),
                acs,
                ars,
                bp.get().offset(ob),
                bcs,
                brs,
                <T as crate::element::Element>::zero(),
                <T as crate::element::Element>::one(),
                false,
                false,
                false,
                par,
            )
        }
    };
    if batch > 1 && flops_per < (1 << 21) {
        // many small products: one thread each
        use rayon::prelude::*;
        (0..batch)
            .into_par_iter()
            .for_each(|bi| run_one(bi, Parallelism::None));
    } else {
        let par = if flops_per >= (1 << 15) && threads > 1 {
            Parallelism::Rayon(threads)
        } else {
            Parallelism::None
        };
        for bi in 0..batch {
            run_one(bi, par);
        }
    }
    Ok(out)
}
