//! Discrete Fourier transforms with `rustfft` (any length: mixed radix, Rader, Bluestein;
//! SIMD), in complex64 like MLX. An n-d transform is 1-d transforms axis by axis over a
//! contiguous work buffer, lines batched per thread. Real transforms go through the
//! complex one: forward keeps the n/2+1 non-negative frequencies of the last axis,
//! inverse rebuilds the Hermitian spectrum of each last-axis line.

use super::loops::{par_rows, SendPtr};
use crate::array::ArrayData;
use crate::dtype::Dtype;
use crate::error::Result;
use num_complex::Complex32;
use parking_lot::Mutex;
use rustfft::{FftDirection, FftPlanner};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

type Plan = Arc<dyn rustfft::Fft<f32>>;

/// A plan for length `n`; plans (twiddle tables) are cached across calls.
fn plan(n: usize, inverse: bool) -> Plan {
    static PLANNER: OnceLock<Mutex<FftPlanner<f32>>> = OnceLock::new();
    let dir = if inverse {
        FftDirection::Inverse
    } else {
        FftDirection::Forward
    };
    let planner = PLANNER.get_or_init(|| Mutex::new(FftPlanner::new()));
    planner.lock().plan_fft(n, dir)
}

/// Transforms every line along `axis` of the row-major `buf` of `shape` in place.
fn transform_axis(buf: &mut [Complex32], shape: &[usize], axis: usize, inverse: bool) {
    let n = shape[axis];
    if n <= 1 || buf.is_empty() {
        return;
    }
    let stride: usize = shape[axis + 1..].iter().product();
    let lines = buf.len() / n;
    let fft = plan(n, inverse);
    if stride == 1 {
        // contiguous lines: transform them where they are
        let base = SendPtr(buf.as_mut_ptr());
        par_rows(lines, n, |l0, l1| {
            let mut scratch = vec![Complex32::default(); fft.get_inplace_scratch_len()];
            let chunk =
                unsafe { std::slice::from_raw_parts_mut(base.get().add(l0 * n), (l1 - l0) * n) };
            fft.process_with_scratch(chunk, &mut scratch);
        });
        return;
    }
    let base = SendPtr(buf.as_mut_ptr());
    // line l is (outer o, column j); its elements sit `stride` apart
    let at = move |l: usize, k: usize| (l / stride) * n * stride + k * stride + l % stride;
    par_rows(lines, n, |l0, l1| {
        let mut tmp = vec![Complex32::default(); (l1 - l0) * n];
        let mut scratch = vec![Complex32::default(); fft.get_inplace_scratch_len()];
        let p = base.get();
        for k in 0..n {
            for (t, l) in (l0..l1).enumerate() {
                tmp[t * n + k] = unsafe { *p.add(at(l, k)) };
            }
        }
        fft.process_with_scratch(&mut tmp, &mut scratch);
        for k in 0..n {
            for (t, l) in (l0..l1).enumerate() {
                unsafe { *p.add(at(l, k)) = tmp[t * n + k] };
            }
        }
    });
}

/// The input as a contiguous complex buffer.
fn complex_buffer(x: &ArrayData) -> Vec<Complex32> {
    match x.dtype {
        Dtype::Complex64 => x.to_vec::<Complex32>(),
        _ => x
            .to_vec::<f32>()
            .into_iter()
            .map(|v| Complex32::new(v, 0.0))
            .collect(),
    }
}

/// Copies the leading `m` entries of each last-axis line of `buf` (lines of `n`).
fn truncate_last(buf: &[Complex32], n: usize, m: usize) -> Vec<Complex32> {
    if n == m {
        return buf.to_vec();
    }
    buf.chunks(n.max(1))
        .flat_map(|line| line[..m].iter().copied())
        .collect()
}

/// Inverse real transform of each last-axis line: `m` bins in, `n` real values out.
fn inverse_real_lines(buf: &[Complex32], m: usize, n: usize, scale: f32, out: &ArrayData) {
    let lines = out.numel() / n.max(1);
    let fft = plan(n, true);
    let o = SendPtr(unsafe { out.ptr_mut::<f32>() });
    par_rows(lines, n, |l0, l1| {
        let mut line = vec![Complex32::default(); n];
        let mut scratch = vec![Complex32::default(); fft.get_inplace_scratch_len()];
        for l in l0..l1 {
            let src = &buf[l * m..(l + 1) * m];
            for (k, v) in line.iter_mut().enumerate() {
                *v = if k < m { src[k] } else { src[n - k].conj() };
            }
            fft.process_with_scratch(&mut line, &mut scratch);
            for (k, v) in line.iter().enumerate() {
                unsafe { *o.get().add(l * n + k) = v.re * scale };
            }
        }
    });
}

/// `W^k = exp(-2 pi i k / n)` for `k = 0..=n/2`, in f64 then rounded; cached per `n`
/// like the plans (computing them took longer than the FFT itself for n = 2^20).
fn real_twiddles(n: usize) -> Arc<Vec<Complex32>> {
    static CACHE: OnceLock<Mutex<HashMap<usize, Arc<Vec<Complex32>>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(t) = cache.lock().get(&n) {
        return t.clone();
    }
    let t: Arc<Vec<Complex32>> = Arc::new(
        (0..=n / 2)
            .map(|k| {
                let a = -2.0 * std::f64::consts::PI * k as f64 / n as f64;
                Complex32::new(a.cos() as f32, a.sin() as f32)
            })
            .collect(),
    );
    cache.lock().insert(n, t.clone());
    t
}

/// Forward real transform of each line of `x` (f32, lines of even length `n` along its
/// last axis) into `out` (complex64, lines of `n/2 + 1`): the line packed as `n/2` complex
/// values `x[2k] + i x[2k+1]`, one complex FFT of half the length, then the two
/// interleaved half-spectra separated (`X[k] = E[k] + W^k O[k]`). Half the work and none
/// of the copies of going through a full complex transform.
fn forward_real_lines(x: &[f32], n: usize, out: &mut [Complex32]) {
    let h = n / 2;
    let lines = x.len() / n;
    let fft = plan(h, false);
    let twiddle = real_twiddles(n);
    let o = SendPtr(out.as_mut_ptr());
    par_rows(lines, n, |l0, l1| {
        let mut z = vec![Complex32::default(); h];
        let mut scratch = vec![Complex32::default(); fft.get_inplace_scratch_len()];
        for l in l0..l1 {
            let src = &x[l * n..(l + 1) * n];
            for (k, v) in z.iter_mut().enumerate() {
                *v = Complex32::new(src[2 * k], src[2 * k + 1]);
            }
            fft.process_with_scratch(&mut z, &mut scratch);
            // SAFETY: line l of `out` (h + 1 values) belongs to this range only
            let dst = unsafe { std::slice::from_raw_parts_mut(o.get().add(l * (h + 1)), h + 1) };
            dst[0] = Complex32::new(z[0].re + z[0].im, 0.0);
            dst[h] = Complex32::new(z[0].re - z[0].im, 0.0);
            for k in 1..h {
                let (a, b) = (z[k], z[h - k].conj());
                let even = (a + b) * 0.5;
                // (a - b) / 2i
                let d = (a - b) * 0.5;
                let odd = Complex32::new(d.im, -d.re);
                dst[k] = even + twiddle[k] * odd;
            }
        }
    });
}

/// See `Backend::fft`.
pub fn fft(
    x: &ArrayData,
    axes: &[usize],
    inverse: bool,
    real: bool,
    out_shape: &[usize],
    scale: f32,
) -> Result<ArrayData> {
    let Some(&last) = axes.last() else {
        return Ok(x.clone());
    };
    let n = x.shape.get(last).copied().unwrap_or(0);
    if real
        && !inverse
        && x.dtype == Dtype::Float32
        && last + 1 == x.ndim()
        && n >= 2
        && n % 2 == 0
        && out_shape[last] == n / 2 + 1
    {
        // the real last axis first (as NumPy's rfftn), then the complex axes
        let res = ArrayData::alloc(Dtype::Complex64, out_shape)?;
        // SAFETY: a fresh dense buffer of `res.numel()` complex values, written only here
        let out =
            unsafe { std::slice::from_raw_parts_mut(res.ptr_mut::<Complex32>(), res.numel()) };
        if !out.is_empty() {
            let dense;
            let src: &[f32] = if x.is_row_contiguous() {
                // SAFETY: a row-contiguous view of x.numel() f32 values
                unsafe { std::slice::from_raw_parts(x.ptr::<f32>(), x.numel()) }
            } else {
                dense = x.to_vec::<f32>();
                &dense
            };
            forward_real_lines(src, n, out);
        }
        for &ax in &axes[..axes.len() - 1] {
            transform_axis(out, out_shape, ax, false);
        }
        if scale != 1.0 {
            out.iter_mut().for_each(|v| *v *= scale);
        }
        return Ok(res);
    }
    let mut buf = complex_buffer(x);
    let mut shape = x.shape.to_vec();
    if real && inverse {
        // the complex axes first, then the real last axis line by line
        for &ax in &axes[..axes.len() - 1] {
            transform_axis(&mut buf, &shape, ax, true);
        }
        // move the real axis last so its lines are contiguous
        let (moved, mshape) = move_to_end(&buf, &shape, last)?;
        let tmp = ArrayData::alloc(Dtype::Float32, &with_last(&mshape, out_shape[last]))?;
        if tmp.numel() > 0 {
            inverse_real_lines(&moved, shape[last], out_shape[last], scale, &tmp);
        }
        return unmove(&tmp, last);
    }
    for &ax in axes {
        transform_axis(&mut buf, &shape, ax, inverse);
    }
    if scale != 1.0 {
        buf.iter_mut().for_each(|v| *v *= scale);
    }
    if real {
        let (moved, mshape) = move_to_end(&buf, &shape, last)?;
        let m = out_shape[last];
        let kept = truncate_last(&moved, mshape[mshape.len() - 1], m);
        shape = with_last(&mshape, m);
        let t = ArrayData::from_slice(&kept, &shape)?;
        return unmove(&t, last);
    }
    ArrayData::from_slice(&buf, &shape)
}

fn with_last(shape: &[usize], n: usize) -> Vec<usize> {
    let mut s = shape.to_vec();
    if let Some(l) = s.last_mut() {
        *l = n;
    }
    s
}

/// The buffer with `axis` moved last (a no-op when it already is), and its shape.
fn move_to_end(
    buf: &[Complex32],
    shape: &[usize],
    axis: usize,
) -> Result<(Vec<Complex32>, Vec<usize>)> {
    if axis == shape.len() - 1 {
        return Ok((buf.to_vec(), shape.to_vec()));
    }
    let view = ArrayData::from_slice(buf, shape)?.with_axis_last(axis);
    Ok((view.to_vec::<Complex32>(), view.shape.to_vec()))
}

/// The inverse of `move_to_end` on a computed array: a contiguous copy with the last axis back at `axis`.
fn unmove(t: &ArrayData, axis: usize) -> Result<ArrayData> {
    if axis == t.ndim() - 1 {
        return Ok(t.clone());
    }
    super::copy::copy(&t.with_last_axis_at(axis))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dft_of_small_signal() {
        let x = ArrayData::from_slice(&[1.0f32, 2.0, 3.0, 4.0], &[4]).unwrap();
        let y = fft(&x, &[0], false, true, &[3], 1.0).unwrap();
        let v = y.to_vec::<Complex32>();
        let want = [
            Complex32::new(10.0, 0.0),
            Complex32::new(-2.0, 2.0),
            Complex32::new(-2.0, 0.0),
        ];
        for (a, b) in v.iter().zip(want) {
            assert!((a - b).norm() < 1e-5);
        }
        let back = fft(&y, &[0], true, true, &[4], 0.25).unwrap();
        for (a, b) in back.to_vec::<f32>().iter().zip([1.0, 2.0, 3.0, 4.0]) {
            assert!((a - b).abs() < 1e-5);
        }
    }
}
