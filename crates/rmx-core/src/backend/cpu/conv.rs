//! Convolution: im2col in panels of output rows feeding `gemm`, panels split across
//! threads. Every output row (batch element x output position) gathers the input
//! patches its kernel taps read into one row of a panel (zeros for padding, dilation
//! holes and positions outside the input), and the panel times the packed weight of a
//! group gives that group's output channels. A 1x1 kernel that reads every input
//! position once skips the gather and multiplies the input in place; depthwise
//! convolutions (one input channel per group) accumulate whole input rows tap by tap
//! instead. f16/bf16 run in f32 and round once at the end; f64 stays f64.

use super::loops::{ConstPtr, SendPtr};
use crate::array::ArrayData;
use crate::backend::ConvParams;
use crate::dtype::Dtype;
use crate::element::Element;
use crate::error::Result;
use gemm::Parallelism;
use rayon::prelude::*;
use std::ops::{Add, Mul};

/// Spatial axes handled; fewer are padded with leading axes of size 1.
pub const MAX_SPATIAL: usize = 3;
/// Target panel size in elements (about the L2 cache of one core).
const PANEL_ELEMS: usize = 1 << 16;
/// Products of at most this many (input x output) channels per group are summed directly
/// rather than through gemm (depthwise convolutions), where a gemm call costs more than it does.
const DIRECT_MAX: usize = 8;

/// The element types the kernel runs in.
trait ConvFloat: Element + Add<Output = Self> + Mul<Output = Self> {}
impl ConvFloat for f32 {}
impl ConvFloat for f64 {}

/// Shapes of one convolution, padded to `MAX_SPATIAL` spatial axes; validates the
/// parameters. Shared with device backends, which gather patches through `taps` too.
pub struct Geometry {
    pub n: usize,
    pub cin: usize,
    pub cout: usize,
    pub groups: usize,
    /// Input and output channels per group.
    pub cig: usize,
    pub cog: usize,
    pub in_sp: [usize; MAX_SPATIAL],
    pub k_sp: [usize; MAX_SPATIAL],
    pub out_sp: [usize; MAX_SPATIAL],
    /// Per spatial axis, for output position `t` and tap `k`, the input index read at
    /// `taps[d][t * k_sp[d] + k]`, or -1 where it reads zero.
    pub taps: [Vec<i64>; MAX_SPATIAL],
}

impl Geometry {
    pub fn new(x: &[usize], w: &[usize], out: &[usize], p: &ConvParams) -> Result<Geometry> {
        let nd = x.len();
        let nsp = nd.saturating_sub(2);
        if nd < 3
            || nsp > MAX_SPATIAL
            || w.len() != nd
            || out.len() != nd
            || [&p.stride, &p.kernel_dilation, &p.input_dilation]
                .iter()
                .any(|v| v.len() != nsp)
            || p.pad_lo.len() != nsp
            || p.pad_hi.len() != nsp
        {
            return Err(crate::value_err!(
                "[conv] Inconsistent ranks: input {x:?}, weight {w:?}, output {out:?}, {p:?}."
            ));
        }
        let (cin, cout, cig) = (x[nd - 1], w[0], w[nd - 1]);
        let g = p.groups;
        if g == 0 || cin != g * cig || cout % g != 0 || out[0] != x[0] || out[nd - 1] != cout {
            return Err(crate::value_err!(
                "[conv] Channels do not match: input {x:?}, weight {w:?}, output {out:?}, groups {g}."
            ));
        }
        if [&p.stride, &p.kernel_dilation, &p.input_dilation]
            .iter()
            .any(|v| v.contains(&0))
        {
            return Err(crate::value_err!(
                "[conv] Strides and dilations must be positive: {p:?}."
            ));
        }
        let pad = MAX_SPATIAL - nsp;
        let mut geo = Geometry {
            n: x[0],
            cin,
            cout,
            groups: g,
            cig,
            cog: cout / g,
            in_sp: [1; MAX_SPATIAL],
            k_sp: [1; MAX_SPATIAL],
            out_sp: [1; MAX_SPATIAL],
            taps: [vec![0], vec![0], vec![0]],
        };
        for d in 0..nsp {
            let (l, k, t) = (x[1 + d], w[1 + d], out[1 + d]);
            // i128: positions of any parameters fit
            let (s, kd, id) = (
                p.stride[d] as i128,
                p.kernel_dilation[d] as i128,
                p.input_dilation[d] as i128,
            );
            let mut taps = Vec::with_capacity(t * k);
            for ti in 0..t as i128 {
                for ki in 0..k as i128 {
                    let pos = ti * s + ki * kd - p.pad_lo[d] as i128;
                    let ok = pos >= 0 && pos % id == 0 && pos / id < l as i128;
                    taps.push(if ok { (pos / id) as i64 } else { -1 });
                }
            }
            geo.in_sp[pad + d] = l;
            geo.k_sp[pad + d] = k;
            geo.out_sp[pad + d] = t;
            geo.taps[pad + d] = taps;
        }
        Ok(geo)
    }

    pub fn kernel_taps(&self) -> usize {
        self.k_sp.iter().product()
    }

    pub fn out_positions(&self) -> usize {
        self.out_sp.iter().product()
    }

    /// Whether output row r reads exactly input row r (a 1x1 kernel, unit stride, no padding).
    pub fn is_pointwise(&self) -> bool {
        self.kernel_taps() == 1
            && self.in_sp == self.out_sp
            && self
                .taps
                .iter()
                .all(|t| t.iter().enumerate().all(|(i, &v)| v == i as i64))
    }
}

pub fn conv(
    x: &ArrayData,
    w: &ArrayData,
    p: &ConvParams,
    out_shape: &[usize],
) -> Result<ArrayData> {
    let geo = Geometry::new(&x.shape, &w.shape, out_shape, p)?;
    let w = if w.dtype == x.dtype {
        w.clone()
    } else {
        super::copy::cast(w, x.dtype)?
    };
    match x.dtype {
        Dtype::Float32 => conv_typed::<f32>(x, &w, p.flip, &geo, out_shape),
        Dtype::Float64 => conv_typed::<f64>(x, &w, p.flip, &geo, out_shape),
        Dtype::Float16 | Dtype::Bfloat16 => {
            let x32 = super::copy::cast(x, Dtype::Float32)?;
            let w32 = super::copy::cast(&w, Dtype::Float32)?;
            let o = conv_typed::<f32>(&x32, &w32, p.flip, &geo, out_shape)?;
            super::copy::cast(&o, x.dtype)
        }
        d => Err(crate::value_err!(
            "[conv] Convolution supports floating point types but received {d}."
        )),
    }
}

fn contiguous(a: &ArrayData) -> Result<ArrayData> {
    if a.is_row_contiguous() {
        Ok(a.clone())
    } else {
        super::copy::copy(a)
    }
}

/// The weight as one `[taps * cig, cog]` row-major matrix per group, taps reversed for `flip`.
fn pack_weight<T: ConvFloat>(w: &ArrayData, geo: &Geometry, flip: bool) -> Vec<T> {
    let (kt, cig, cog) = (geo.kernel_taps(), geo.cig, geo.cog);
    let kc = kt * cig;
    let src = w.as_slice::<T>().expect("contiguous weight");
    let mut out = vec![T::zero(); geo.cout * kc];
    for g in 0..geo.groups {
        let dst = &mut out[g * kc * cog..(g + 1) * kc * cog];
        for o in 0..cog {
            let row = &src[(g * cog + o) * kc..(g * cog + o + 1) * kc];
            for k in 0..kt {
                let kw = if flip { kt - 1 - k } else { k };
                for c in 0..cig {
                    dst[(k * cig + c) * cog + o] = row[kw * cig + c];
                }
            }
        }
    }
    out
}

fn conv_typed<T: ConvFloat>(
    x: &ArrayData,
    w: &ArrayData,
    flip: bool,
    geo: &Geometry,
    out_shape: &[usize],
) -> Result<ArrayData> {
    let out = ArrayData::alloc(T::DTYPE, out_shape)?;
    let rows = geo.n * geo.out_positions();
    let kc = geo.kernel_taps() * geo.cig;
    if rows == 0 || geo.cout == 0 {
        return Ok(out);
    }
    let op = SendPtr(unsafe { out.ptr_mut::<T>() });
    if kc == 0 {
        unsafe { std::slice::from_raw_parts_mut(op.get(), rows * geo.cout).fill(T::zero()) };
        return Ok(out);
    }
    let x = contiguous(x)?;
    let w = contiguous(w)?;
    let wp = pack_weight::<T>(&w, geo, flip);
    let xp = ConstPtr(unsafe { x.ptr::<T>() });
    let threads = rayon::current_num_threads().max(1);
    if geo.cig == 1 && geo.cog <= DIRECT_MAX && !geo.is_pointwise() {
        depthwise(xp, &wp, op, geo, rows);
        return Ok(out);
    }
    let panel = (PANEL_ELEMS / kc).clamp(16, 1024).min(rows);
    let panels = rows.div_ceil(panel);
    // one task per (panel, group): disjoint blocks of the output
    let tasks = panels * geo.groups;
    let work = rows * kc * geo.cout;
    // Few tasks: one at a time, gemm itself threaded; else tasks split across threads.
    let inner = if tasks < 2 * threads && work >= (1 << 18) && threads > 1 {
        Parallelism::Rayon(threads)
    } else {
        Parallelism::None
    };
    let pointwise = geo.is_pointwise();
    let run_task = |col: &mut Vec<T>, task: usize| {
        let (pi, g) = (task / geo.groups, task % geo.groups);
        let r0 = pi * panel;
        let r1 = (r0 + panel).min(rows);
        let wg = &wp[g * kc * geo.cog..(g + 1) * kc * geo.cog];
        let (lhs, lhs_rs) = if pointwise {
            (unsafe { xp.get().add(r0 * geo.cin + g * geo.cig) }, geo.cin)
        } else {
            col.resize((r1 - r0) * kc, T::zero());
            gather(xp, geo, g, r0, r1, col);
            (col.as_ptr(), kc)
        };
        let dst = unsafe { op.get().add(r0 * geo.cout + g * geo.cog) };
        if geo.cig * geo.cog <= DIRECT_MAX {
            direct(lhs, lhs_rs, wg, dst, r1 - r0, kc, geo.cog, geo.cout);
        } else {
            unsafe {
                gemm::gemm(
                    r1 - r0,
                    geo.cog,
                    kc,
                    dst,
                    1,
                    geo.cout as isize,
                    false,
                    lhs,
                    1,
                    lhs_rs as isize,
                    wg.as_ptr(),
                    1,
                    geo.cog as isize,
                    T::zero(),
                    T::one(),
                    false,
                    false,
                    false,
                    inner,
                )
            }
        }
    };
    if matches!(inner, Parallelism::None) && tasks > 1 && threads > 1 {
        (0..tasks)
            .into_par_iter()
            .for_each_init(Vec::new, |col, t| run_task(col, t));
    } else {
        let mut col = Vec::new();
        for t in 0..tasks {
            run_task(&mut col, t);
        }
    }
    Ok(out)
}

/// One input channel per group (depthwise): each output row accumulates, tap by tap,
/// the input row at the tapped position times that tap's weights, over all channels at
/// once (contiguous, vectorised), rows split across threads.
fn depthwise<T: ConvFloat>(xp: ConstPtr<T>, wp: &[T], op: SendPtr<T>, geo: &Geometry, rows: usize) {
    let (cin, cout, cog) = (geo.cin, geo.cout, geo.cog);
    let kt = geo.kernel_taps();
    // packed per group as [tap, o]; regroup as [tap, output channel]
    let mut wt = vec![T::zero(); kt * cout];
    for g in 0..geo.groups {
        for k in 0..kt {
            for o in 0..cog {
                wt[k * cout + g * cog + o] = wp[g * kt * cog + k * cog + o];
            }
        }
    }
    let [l0, l1, l2] = geo.in_sp;
    let [k0, k1, k2] = geo.k_sp;
    let [t0, t1, t2] = geo.out_sp;
    let (s2, s1, s0) = (cin, l2 * cin, l1 * l2 * cin);
    let sn = l0 * s0;
    let opos = t0 * t1 * t2;
    super::loops::par_rows(rows, kt * cout, |r0, r1| {
        for r in r0..r1 {
            let n = r / opos;
            let q = r % opos;
            let (o0, o1, o2) = (q / (t1 * t2), (q / t2) % t1, q % t2);
            let acc = unsafe { std::slice::from_raw_parts_mut(op.get().add(r * cout), cout) };
            acc.fill(T::zero());
            let mut k = 0;
            for &i0 in &geo.taps[0][o0 * k0..(o0 + 1) * k0] {
                for &i1 in &geo.taps[1][o1 * k1..(o1 + 1) * k1] {
                    for &i2 in &geo.taps[2][o2 * k2..(o2 + 1) * k2] {
                        let wk = &wt[k * cout..(k + 1) * cout];
                        k += 1;
                        if i0 < 0 || i1 < 0 || i2 < 0 {
                            continue;
                        }
                        let off = n * sn + i0 as usize * s0 + i1 as usize * s1 + i2 as usize * s2;
                        let xr = unsafe { std::slice::from_raw_parts(xp.get().add(off), cin) };
                        if cog == 1 {
                            for ((a, &x), &w) in acc.iter_mut().zip(xr).zip(wk) {
                                *a = *a + x * w;
                            }
                        } else {
                            for (o, (a, &w)) in acc.iter_mut().zip(wk).enumerate() {
                                *a = *a + xr[o / cog] * w;
                            }
                        }
                    }
                }
            }
        }
    });
}

/// `dst[r, o] = sum_k lhs[r, k] * w[k, o]` for small `cog` (row stride of dst `ld`).
#[allow(clippy::too_many_arguments)]
fn direct<T: ConvFloat>(
    lhs: *const T,
    lhs_rs: usize,
    w: &[T],
    dst: *mut T,
    rows: usize,
    kc: usize,
    cog: usize,
    ld: usize,
) {
    for r in 0..rows {
        let a = unsafe { std::slice::from_raw_parts(lhs.add(r * lhs_rs), kc) };
        for o in 0..cog {
            let mut acc = T::zero();
            for (k, &v) in a.iter().enumerate() {
                acc = acc + v * w[k * cog + o];
            }
            unsafe { *dst.add(r * ld + o) = acc };
        }
    }
}

/// Fills `col` (`(r1 - r0) x taps * cig`, row-major) with the patches of group `g` that
/// output rows `r0..r1` read.
fn gather<T: ConvFloat>(
    xp: ConstPtr<T>,
    geo: &Geometry,
    g: usize,
    r0: usize,
    r1: usize,
    col: &mut [T],
) {
    let [l0, l1, l2] = geo.in_sp;
    let [k0, k1, k2] = geo.k_sp;
    let [t0, t1, t2] = geo.out_sp;
    let cig = geo.cig;
    let (s2, s1, s0) = (geo.cin, l2 * geo.cin, l1 * l2 * geo.cin);
    let sn = l0 * s0;
    let kc = k0 * k1 * k2 * cig;
    let opos = t0 * t1 * t2;
    for r in r0..r1 {
        let n = r / opos;
        let q = r % opos;
        let (o0, o1, o2) = (q / (t1 * t2), (q / t2) % t1, q % t2);
        let row = &mut col[(r - r0) * kc..(r - r0 + 1) * kc];
        let base = n * sn + g * cig;
        let tap0 = &geo.taps[0][o0 * k0..(o0 + 1) * k0];
        let tap1 = &geo.taps[1][o1 * k1..(o1 + 1) * k1];
        let tap2 = &geo.taps[2][o2 * k2..(o2 + 1) * k2];
        let mut at = 0;
        for &i0 in tap0 {
            if i0 < 0 {
                row[at..at + k1 * k2 * cig].fill(T::zero());
                at += k1 * k2 * cig;
                continue;
            }
            for &i1 in tap1 {
                if i1 < 0 {
                    row[at..at + k2 * cig].fill(T::zero());
                    at += k2 * cig;
                    continue;
                }
                let b01 = base + i0 as usize * s0 + i1 as usize * s1;
                for &i2 in tap2 {
                    let dst = &mut row[at..at + cig];
                    if i2 < 0 {
                        dst.fill(T::zero());
                    } else {
                        let src = unsafe {
                            std::slice::from_raw_parts(xp.get().add(b01 + i2 as usize * s2), cig)
                        };
                        dst.copy_from_slice(src);
                    }
                    at += cig;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition, one output at a time (2 spatial axes), for comparison.
    fn naive(x: &[f64], xs: [usize; 4], w: &[f64], ws: [usize; 4], p: &ConvParams) -> Vec<f64> {
        let [n, h, wd, cin] = xs;
        let [cout, kh, kw, cig] = ws;
        let cog = cout / p.groups;
        let size = |d: usize, l: usize, k: usize| {
            let ispan = ((l - 1) * p.input_dilation[d] + 1) as i64;
            let kspan = ((k - 1) * p.kernel_dilation[d] + 1) as i64;
            ((ispan + p.pad_lo[d] + p.pad_hi[d] - kspan) / p.stride[d] as i64 + 1) as usize
        };
        let (th, tw) = (size(0, h, kh), size(1, wd, kw));
        let read = |d: usize, t: usize, k: usize, l: usize| -> Option<usize> {
            let pos = (t * p.stride[d] + k * p.kernel_dilation[d]) as i64 - p.pad_lo[d];
            let id = p.input_dilation[d] as i64;
            (pos >= 0 && pos % id == 0 && pos / id < l as i64).then_some((pos / id) as usize)
        };
        let mut out = vec![0.0; n * th * tw * cout];
        for b in 0..n {
            for (t0, t1, o) in itertools(th, tw, cout) {
                let g = o / cog;
                let mut acc = 0.0;
                for (k0, k1, c) in itertools(kh, kw, cig) {
                    let (q0, q1) = if p.flip {
                        (kh - 1 - k0, kw - 1 - k1)
                    } else {
                        (k0, k1)
                    };
                    if let (Some(i0), Some(i1)) = (read(0, t0, k0, h), read(1, t1, k1, wd)) {
                        acc += x[((b * h + i0) * wd + i1) * cin + g * cig + c]
                            * w[((o * kh + q0) * kw + q1) * cig + c];
                    }
                }
                out[((b * th + t0) * tw + t1) * cout + o] = acc;
            }
        }
        out
    }

    fn itertools(a: usize, b: usize, c: usize) -> impl Iterator<Item = (usize, usize, usize)> {
        (0..a).flat_map(move |i| (0..b).flat_map(move |j| (0..c).map(move |k| (i, j, k))))
    }

    fn values(n: usize, seed: u64) -> Vec<f64> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 33) as f64 / (1u64 << 31) as f64) - 0.5
            })
            .collect()
    }

    #[test]
    fn matches_the_definition() {
        let cases = [
            (1, false, [1, 1], [0, 0], [1, 1], [1, 1], [1, 1]),
            (2, true, [2, 1], [1, -1], [0, 2], [1, 2], [2, 1]),
            (4, false, [1, 3], [-2, 2], [1, 1], [2, 1], [1, 3]),
            (8, false, [1, 1], [1, 1], [1, 1], [1, 1], [1, 1]),
        ];
        for (groups, flip, stride, lo, hi, kd, id) in cases {
            let p = ConvParams {
                stride: stride.to_vec(),
                pad_lo: lo.to_vec(),
                pad_hi: hi.to_vec(),
                kernel_dilation: kd.to_vec(),
                input_dilation: id.to_vec(),
                groups,
                flip,
            };
            let (xs, ws) = ([2, 7, 6, 8], [8, 3, 2, 8 / groups]);
            let (x, w) = (values(2 * 7 * 6 * 8, 1), values(8 * 3 * 2 * 8 / groups, 2));
            let expect = naive(&x, xs, &w, ws, &p);
            let xa = ArrayData::from_slice(&x, &xs).unwrap();
            let wa = ArrayData::from_slice(&w, &ws).unwrap();
            let t = expect.len() / (2 * 8);
            let (th, tw) = {
                let ispan = |d: usize, l: usize| ((l - 1) * id[d] + 1) as i64;
                let kspan = |d: usize, k: usize| ((k - 1) * kd[d] + 1) as i64;
                let s = |d: usize, l, k| {
                    ((ispan(d, l) + lo[d] + hi[d] - kspan(d, k)) / stride[d] as i64 + 1) as usize
                };
                (s(0, 7, 3), s(1, 6, 2))
            };
            assert_eq!(th * tw, t);
            let got = conv(&xa, &wa, &p, &[2, th, tw, 8]).unwrap().to_vec::<f64>();
            for (g, e) in got.iter().zip(&expect) {
                assert!((g - e).abs() < 1e-12, "{p:?}: {g} vs {e}");
            }
        }
    }

    #[test]
    fn rejects_inconsistent_shapes() {
        let x = ArrayData::from_slice(&[0f32; 12], &[1, 3, 4]).unwrap();
        let w = ArrayData::from_slice(&[0f32; 6], &[2, 1, 3]).unwrap();
        let p = ConvParams {
            stride: vec![1],
            pad_lo: vec![0],
            pad_hi: vec![0],
            kernel_dilation: vec![1],
            input_dilation: vec![1],
            groups: 1,
            flip: false,
        };
        assert!(conv(&x, &w, &p, &[1, 3, 2]).is_err());
    }
}
