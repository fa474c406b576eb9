//! `fft.stft` / `fft.istft` with MLX 0.32.4's signature and semantics, built from
//! ordinary ops with vjp, jvp and vmap rules (MLX frames with `as_strided`, which has no
//! vmap): when `hop` divides `n_fft` (the default `n_fft / 4` does) frames are shifted
//! row blocks of the signal joined by a concatenate, and istft's overlap-add sums the
//! zero-padded column blocks; otherwise frames are one gather and the overlap-add a
//! gather of each sample's at most `ceil(n_fft / hop)` contributions and a sum. The
//! window is centred and zero-padded to `n_fft`; istft divides by the overlap-added
//! squared window where that exceeds 1e-11.

use crate::array::Array;
use crate::dtype::Dtype;
use crate::element::Scalar;
use crate::error::Result;

use super::creation::{ones, zeros};
use super::elementwise::{divide, greater, multiply, real, where_};
use super::fft::{fft1, FftKind, FftNorm};
use super::indexing::take;
use super::reduce::sum;
use super::shape::{concatenate, pad, reshape, slice, squeeze, swapaxes};

/// The window as a length-`n_fft` array: `window` (or `win_length` ones) centred.
fn full_window(
    name: &str,
    n_fft: i64,
    win_length: Option<i64>,
    window: Option<&Array>,
) -> Result<Array> {
    let w = match window {
        Some(w) => {
            if w.ndim() != 1 {
                return Err(crate::value_err!(
                    "[{name}] window must be a one-dimensional array."
                ));
            }
            w.clone()
        }
        None => ones(&[win_length.unwrap_or(n_fft)], Dtype::Float32)?,
    };
    let wl = w.shape()[0] as i64;
    if wl > n_fft {
        return Err(crate::value_err!(
            "[{name}] window length must not exceed n_fft."
        ));
    }
    let left = (n_fft - wl) / 2;
    pad(&w, &[(left, n_fft - wl - left)], "constant", Scalar::Int(0))
}

fn checks(name: &str, n_fft: i64, hop: i64, win_length: Option<i64>) -> Result<()> {
    if n_fft <= 0 {
        return Err(crate::value_err!("[{name}] n_fft must be positive."));
    }
    if hop <= 0 {
        return Err(crate::value_err!("[{name}] hop_length must be positive."));
    }
    if win_length.is_some_and(|w| w > n_fft) {
        return Err(crate::value_err!(
            "[{name}] window length must not exceed n_fft."
        ));
    }
    Ok(())
}

/// An int32 (or int64 when large) index array from host values.
fn index_array(v: Vec<i64>, shape: &[usize]) -> Result<Array> {
    if v.iter().all(|&i| i <= i32::MAX as i64) {
        let v32: Vec<i32> = v.into_iter().map(|i| i as i32).collect();
        Array::from_vec(v32, shape)
    } else {
        Array::from_vec(v, shape)
    }
}

#[allow(clippy::too_many_arguments)]
pub fn stft(
    x: &Array,
    n_fft: i64,
    hop_length: Option<i64>,
    win_length: Option<i64>,
    window: Option<&Array>,
    center: bool,
    pad_mode: &str,
    norm: &str,
    onesided: Option<bool>,
) -> Result<Array> {
    let name = "stft";
    if x.ndim() == 0 {
        return Err(crate::value_err!(
            "[stft] Input must have at least one dimension."
        ));
    }
    let hop = hop_length.unwrap_or(n_fft / 4);
    checks(name, n_fft, hop, win_length)?;
    let norm = FftNorm::parse(name, norm)?;
    let w = full_window(name, n_fft, win_length, window)?;
    let onesided = onesided.unwrap_or(!x.dtype().is_complex());
    let mut x = if onesided && x.dtype().is_complex() {
        real(x)?
    } else {
        x.clone()
    };
    let last = x.ndim() - 1;
    if center {
        let mut widths = vec![(0i64, 0i64); x.ndim()];
        widths[last] = (n_fft / 2, n_fft / 2);
        if x.shape()[last] == 0 {
            return Err(crate::value_err!(
                "[stft] Input is too short for the given n_fft."
            ));
        }
        x = pad(&x, &widths, pad_mode, Scalar::Int(0))?;
    }
    let len = x.shape()[last] as i64;
    if len < n_fft {
        return Err(crate::value_err!(
            "[stft] Input is too short for the given n_fft."
        ));
    }
    let frames_n = 1 + (len - n_fft) / hop;
    let frames = multiply(&frame(&x, n_fft, hop, frames_n)?, &w)?;
    let kind = FftKind {
        inverse: false,
        real: onesided,
    };
    let f = fft1(&frames, None, -1, kind, norm)?;
    swapaxes(&f, -1, -2)
}

/// The last axis `i64` bounds `[lo, hi)` of `x`, all of the others.
fn cut_axis(x: &Array, axis: usize, lo: i64, hi: i64) -> Result<Array> {
    let mut start = vec![0i64; x.ndim()];
    let mut stop: Vec<i64> = x.shape().iter().map(|&d| d as i64).collect();
    start[axis] = lo;
    stop[axis] = hi;
    slice(x, &start, &stop, None)
}

/// `x[..., t*hop + k]` as `[..., T, n_fft]`. When `hop` divides `n_fft` the frames are
/// `n_fft / hop` shifted row blocks of `x` viewed as `[rows, hop]`, joined by one
/// concatenate (views and a copy); otherwise one gather.
fn frame(x: &Array, n_fft: i64, hop: i64, t_n: i64) -> Result<Array> {
    let last = x.ndim() - 1;
    if n_fft % hop == 0 {
        let r_n = n_fft / hop;
        let rows = t_n + r_n - 1;
        let mut shape: Vec<i64> = x.shape()[..last].iter().map(|&d| d as i64).collect();
        shape.extend([rows, hop]);
        let blocks = reshape(&cut_axis(x, last, 0, rows * hop)?, &shape)?;
        let parts = (0..r_n)
            .map(|r| cut_axis(&blocks, last, r, r + t_n))
            .collect::<Result<Vec<_>>>()?;
        return if parts.len() == 1 {
            Ok(parts[0].clone())
        } else {
            concatenate(&parts, Some(-1))
        };
    }
    let idx: Vec<i64> = (0..t_n)
        .flat_map(|t| (0..n_fft).map(move |k| t * hop + k))
        .collect();
    let idx = index_array(idx, &[t_n as usize, n_fft as usize])?;
    take(x, &idx, Some(-1))
}

/// Overlap-add of `y` (`[..., T, n]`) at stride `hop` into `[..., n + hop*(T-1)]`.
/// When `hop` divides `n`, each of the `n / hop` column blocks is zero-padded along the
/// frames and the blocks summed; otherwise a gather of every sample's contributions.
fn overlap_add(y: &Array, hop: i64) -> Result<Array> {
    let nd = y.ndim();
    let (t_n, n) = (y.shape()[nd - 2] as i64, y.shape()[nd - 1] as i64);
    if n % hop == 0 {
        let r_n = n / hop;
        let lead: Vec<i64> = y.shape()[..nd - 2].iter().map(|&d| d as i64).collect();
        let mut shape = lead.clone();
        shape.extend([t_n, r_n, hop]);
        let y4 = reshape(y, &shape)?;
        let mut acc: Option<Array> = None;
        for r in 0..r_n {
            let part = squeeze(&cut_axis(&y4, nd - 1, r, r + 1)?, Some(&[(nd - 1) as i64]))?;
            let mut widths = vec![(0i64, 0i64); nd];
            widths[nd - 2] = (r, r_n - 1 - r);
            let part = pad(&part, &widths, "constant", Scalar::Int(0))?;
            acc = Some(match acc {
                None => part,
                Some(a) => super::elementwise::add(&a, &part)?,
            });
        }
        let mut out = lead;
        out.push((t_n + r_n - 1) * hop);
        return reshape(&acc.expect("n >= hop > 0"), &out);
    }
    let out_len = n + hop * (t_n - 1);
    let r_n = (n + hop - 1) / hop;
    let zero_at = t_n * n;
    let mut idx = Vec::with_capacity((out_len * r_n) as usize);
    for j in 0..out_len {
        for r in 0..r_n {
            let t = j / hop - r;
            let k = j - t * hop;
            idx.push(if t >= 0 && t < t_n && k < n {
                t * n + k
            } else {
                zero_at
            });
        }
    }
    let idx = index_array(idx, &[out_len as usize, r_n as usize])?;
    let mut lead: Vec<i64> = y.shape()[..nd - 2].iter().map(|&d| d as i64).collect();
    lead.push(-1);
    let flat = reshape(y, &lead)?;
    let mut zshape = lead.clone();
    *zshape.last_mut().expect("non-empty") = 1;
    let zero = zeros(&zshape, flat.dtype())?;
    let flat = concatenate(&[flat, zero], Some(-1))?;
    sum(&take(&flat, &idx, Some(-1))?, Some(&[-1]), false)
}

#[allow(clippy::too_many_arguments)]
pub fn istft(
    stft_matrix: &Array,
    n_fft: Option<i64>,
    hop_length: Option<i64>,
    win_length: Option<i64>,
    window: Option<&Array>,
    center: bool,
    norm: &str,
    onesided: Option<bool>,
    length: Option<i64>,
) -> Result<Array> {
    let name = "istft";
    let s = stft_matrix;
    if s.ndim() < 2 {
        return Err(crate::value_err!(
            "[istft] Input must have at least two dimensions (freq, frames)."
        ));
    }
    let onesided = onesided.unwrap_or(true);
    let n_freq = s.shape()[s.ndim() - 2] as i64;
    let n_fft = n_fft.unwrap_or(if onesided { 2 * (n_freq - 1) } else { n_freq });
    let hop = hop_length.unwrap_or(n_fft / 4);
    checks(name, n_fft, hop, win_length)?;
    let norm = FftNorm::parse(name, norm)?;
    let w = full_window(name, n_fft, win_length, window)?;
    if s.shape()[s.ndim() - 1] == 0 {
        return Err(crate::value_err!("[istft] Input has no frames."));
    }
    let frames = swapaxes(s, -1, -2)?;
    let y = if onesided {
        let kind = FftKind {
            inverse: true,
            real: true,
        };
        fft1(&frames, Some(n_fft), -1, kind, norm)?
    } else {
        let kind = FftKind {
            inverse: true,
            real: false,
        };
        real(&fft1(&frames, Some(n_fft), -1, kind, norm)?)?
    };
    let y = multiply(&y, &w)?;
    let t_n = frames.shape()[frames.ndim() - 2];
    let w2 = multiply(&w, &w)?;
    let w2 = super::shape::broadcast_to(&w2, &[t_n, n_fft as usize])?;
    let env = overlap_add(&w2, hop)?;
    let tiny = Array::scalar_of(Scalar::Float(1e-11), Dtype::Float32)?;
    let one = Array::scalar_of(Scalar::Float(1.0), env.dtype())?;
    let env = where_(&greater(&env, &tiny)?, &env, &one)?;
    let out = divide(&overlap_add(&y, hop)?, &env)?;
    trim(&out, if center { n_fft / 2 } else { 0 }, center, length)
}

/// MLX's final cut: `y[start : start + length]` with Python slice rules, zero-padded up
/// to `length`; without `length`, centred output drops `start` samples at both ends.
fn trim(y: &Array, start: i64, center: bool, length: Option<i64>) -> Result<Array> {
    let nd = y.ndim();
    let total = y.shape()[nd - 1] as i64;
    let (lo, hi) = match length {
        Some(l) => {
            let mut stop = start + l;
            if stop < 0 {
                stop = (stop + total).max(0);
            }
            (start.min(total), stop.min(total))
        }
        None if center => (start.min(total), (total - start).max(0)),
        None => (0, total),
    };
    let hi = hi.max(lo);
    let mut starts = vec![0i64; nd];
    let mut stops: Vec<i64> = y.shape().iter().map(|&d| d as i64).collect();
    starts[nd - 1] = lo;
    stops[nd - 1] = hi;
    let cut = slice(y, &starts, &stops, None)?;
    match length {
        Some(l) if l > hi - lo => {
            let mut widths = vec![(0i64, 0i64); nd];
            widths[nd - 1] = (0, l - (hi - lo));
            pad(&cut, &widths, "constant", Scalar::Int(0))
        }
        _ => Ok(cut),
    }
}
