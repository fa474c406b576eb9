//! Rotary positional embedding in one pass. The angles `(t + offset) * scale * inv_freq`
//! are computed once per (offset, position) into a cos/sin table (angle in f64, reduced to
//! one turn, then f32 sin/cos) shared by every head; then each row of `D` features is rotated pairwise — adjacent
//! pairs (traditional) or the two halves of the first `dims` — and the rest copied.

use super::super::loops::{par_range, par_rows, ConstPtr, SendPtr};
use super::super::math::FloatElem;
use super::{dense_rows, RowIndex};
use crate::array::ArrayData;
use crate::backend::RopeSpec;
use crate::dtype::Dtype;
use crate::error::Result;
use half::{bf16, f16};
use num_traits::NumCast;

pub fn rope(
    x: &ArrayData,
    offset: &ArrayData,
    freqs: Option<&ArrayData>,
    spec: RopeSpec,
) -> Result<ArrayData> {
    let x = dense_rows(x)?;
    let out = ArrayData::alloc(x.dtype, &x.shape)?;
    if x.numel() == 0 {
        return Ok(out);
    }
    let nd = x.ndim();
    let (t_len, d) = (x.shape[nd - 2], x.shape[nd - 1]);
    let half = spec.dims / 2;
    let inv_freqs: Vec<f64> = match freqs {
        Some(f) => f.to_vec::<f32>().iter().map(|&v| 1.0 / v as f64).collect(),
        None => {
            let step = -(spec.base as f64).ln() / half as f64;
            (0..half).map(|i| (i as f64 * step).exp()).collect()
        }
    };
    let offsets: Vec<i32> = offset.to_vec::<i32>();
    // table[(o * T + t) * half + i] = (cos, sin) of the angle
    let n_tab = offsets.len() * t_len;
    let mut table = vec![(0f32, 0f32); n_tab * half];
    let tp = SendPtr(table.as_mut_ptr());
    par_range(n_tab * half, |s, e| {
        for k in s..e {
            let (row, i) = (k / half, k % half);
            let (o, t) = (row / t_len, row % t_len);
            // the angle in f64, reduced to one turn before the f32 sin/cos, so long
            // positions keep f32 accuracy
            let pos = (t as f64 + offsets[o] as f64) * spec.scale as f64;
            let theta = (pos * inv_freqs[i]) % std::f64::consts::TAU;
            let (sn, cs) = (theta as f32).sin_cos();
            unsafe { *tp.get().add(k) = (cs, sn) };
        }
    });
    let per_batch = x.numel() / x.shape[0];
    let g = Geometry {
        t_len,
        d,
        half,
        per_batch_rows: per_batch / d,
        by_batch: offsets.len() > 1,
        traditional: spec.traditional,
    };
    match x.dtype {
        Dtype::Float16 => rows::<f16>(&x, &out, &table, &g),
        Dtype::Bfloat16 => rows::<bf16>(&x, &out, &table, &g),
        Dtype::Float32 => rows::<f32>(&x, &out, &table, &g),
        Dtype::Float64 => rows::<f64>(&x, &out, &table, &g),
        dt => {
            return Err(crate::value_err!(
                "[rope] Input must be a floating type but got {dt}."
            ))
        }
    }
    Ok(out)
}

struct Geometry {
    t_len: usize,
    d: usize,
    half: usize,
    /// Rows (of `d` features) in one batch element.
    per_batch_rows: usize,
    /// One offset per batch element (else one for all).
    by_batch: bool,
    traditional: bool,
}

fn rows<T: FloatElem + Send + Sync>(
    x: &ArrayData,
    out: &ArrayData,
    table: &[(f32, f32)],
    g: &Geometry,
) where
    T::C: NumCast,
{
    let n_rows = x.numel() / g.d;
    let index = RowIndex::new(x);
    let xp = ConstPtr(unsafe { x.ptr::<T>() });
    let op = SendPtr(unsafe { out.ptr_mut::<T>() });
    let c = |v: f32| -> T::C { NumCast::from(v).expect("f32 fits the compute type") };
    par_rows(n_rows, g.d, |r0, r1| {
        for r in r0..r1 {
            let xs = unsafe { std::slice::from_raw_parts(xp.get().offset(index.offset(r)), g.d) };
            let os = unsafe { std::slice::from_raw_parts_mut(op.get().add(r * g.d), g.d) };
            let o = if g.by_batch { r / g.per_batch_rows } else { 0 };
            let t = r % g.t_len;
            let tab = &table[(o * g.t_len + t) * g.half..][..g.half];
            if g.traditional {
                for (i, &(cs, sn)) in tab.iter().enumerate() {
                    let (a, b) = (xs[2 * i].up(), xs[2 * i + 1].up());
                    let (cs, sn) = (c(cs), c(sn));
                    os[2 * i] = T::down(a * cs - b * sn);
                    os[2 * i + 1] = T::down(a * sn + b * cs);
                }
            } else {
                let (x1, x2) = (&xs[..g.half], &xs[g.half..2 * g.half]);
                let (o1, o2) = os[..2 * g.half].split_at_mut(g.half);
                let pairs = o1.iter_mut().zip(o2.iter_mut()).zip(x1.iter().zip(x2));
                for (((y1, y2), (a, b)), &(cs, sn)) in pairs.zip(tab) {
                    let (cs, sn) = (c(cs), c(sn));
                    let (a, b) = (a.up(), b.up());
                    *y1 = T::down(a * cs - b * sn);
                    *y2 = T::down(a * sn + b * cs);
                }
            }
            os[2 * g.half..].copy_from_slice(&xs[2 * g.half..]);
        }
    });
}
