//! Derivatives of the cumulative ops (`Scan`). Each rule is written for the inclusive
//! scan; an exclusive scan is the inclusive one shifted by one step along the axis, so
//! its cotangent is shifted the other way first (and its tangent shifted after).

use crate::array::Array;
use crate::backend::{ReduceOp, ScanOp};
use crate::error::Result;
use crate::ops;

/// Scan geometry: the axis and direction.
#[derive(Clone, Copy)]
pub struct Dir {
    pub axis: usize,
    pub reverse: bool,
}

impl Dir {
    fn ax(self) -> Option<i64> {
        Some(self.axis as i64)
    }
    /// A running sum in the opposite direction (what a vjp accumulates).
    fn back_sum(self, x: &Array) -> Result<Array> {
        ops::cumsum(x, self.ax(), !self.reverse, true)
    }
    /// Moves values one step along the scan direction (`forward`) or against it,
    /// filling the vacated end with zeros.
    fn shift(self, x: &Array, forward: bool) -> Result<Array> {
        let n = x.shape()[self.axis];
        if n == 0 {
            return Ok(x.clone());
        }
        let toward_end = forward != self.reverse;
        let nd = x.ndim();
        let mut start = vec![0usize; nd];
        let mut ext = x.shape().to_vec();
        ext[self.axis] = n - 1;
        if !toward_end {
            start[self.axis] = 1;
        }
        let kept = ops::slice_resolved(x, &start, &ext, &vec![1; nd])?;
        let mut widths = vec![(0i64, 0i64); nd];
        widths[self.axis] = if toward_end { (1, 0) } else { (0, 1) };
        ops::pad(&kept, &widths, "constant", crate::Scalar::Int(0))
    }
}

fn inclusive(op: ScanOp, x: &Array, d: Dir) -> Result<Array> {
    let (ax, r) = (d.ax(), d.reverse);
    match op {
        ScanOp::Reduce(ReduceOp::Sum) => ops::cumsum(x, ax, r, true),
        ScanOp::Reduce(ReduceOp::Prod) => ops::cumprod(x, ax, r, true),
        ScanOp::Reduce(ReduceOp::Max) => ops::cummax(x, ax, r, true),
        ScanOp::Reduce(ReduceOp::Min) => ops::cummin(x, ax, r, true),
        ScanOp::LogAddExp => ops::logcumsumexp(x, ax, r, true),
        _ => Err(crate::value_err!("[Scan] No derivative for this scan.")),
    }
}

/// For cummax/cummin: the index along the axis of the running extremum at each
/// position (the latest one in scan order on ties, as MLX).
fn running_arg(x: &Array, out: &Array, d: Dir) -> Result<Array> {
    let n = x.shape()[d.axis];
    let mut shape = vec![1usize; x.ndim()];
    shape[d.axis] = n;
    let pos = ops::reshape_exact(
        &ops::arange(0.0, n as f64, 1.0, crate::Dtype::Int32)?,
        shape.as_slice().into(),
    )?;
    let hit = ops::equal(x, out)?;
    if d.reverse {
        let none = Array::scalar_of(crate::Scalar::Int(n as i64), crate::Dtype::Int32)?;
        ops::cummin(&ops::where_(&hit, &pos, &none)?, d.ax(), true, true)
    } else {
        let none = Array::scalar_of(crate::Scalar::Int(-1), crate::Dtype::Int32)?;
        ops::cummax(&ops::where_(&hit, &pos, &none)?, d.ax(), false, true)
    }
}

/// log(max(v, 0)): -inf where v <= 0; used to run sums of signed values in log space.
fn log_pos(v: &Array) -> Result<Array> {
    ops::log(&ops::maximum(v, &ops::zeros_like(v)?)?)
}

/// sum over the scan window of `w_k * exp(a_k)`, evaluated stably as
/// exp(logcumsumexp(log w+ + a)) - exp(logcumsumexp(log w- + a)), split by sign of w.
fn signed_lse(w: &Array, a: &Array, d: Dir, back: bool, shift: &Array) -> Result<Array> {
    let r = d.reverse != back;
    let part = |s: &Array| -> Result<Array> {
        let l = ops::logcumsumexp(&ops::add(&log_pos(s)?, a)?, d.ax(), r, true)?;
        ops::exp(&ops::add(&l, shift)?)
    };
    ops::subtract(&part(w)?, &part(&ops::negative(w)?)?)
}

/// Cotangent of the scan's input.
pub fn scan_vjp(op: ScanOp, incl: bool, x: &Array, ct: &Array, d: Dir) -> Result<Array> {
    if let ScanOp::Reduce(ReduceOp::Sum) = op {
        return ops::cumsum(ct, d.ax(), !d.reverse, incl);
    }
    let ct = if incl {
        ct.clone()
    } else {
        d.shift(ct, false)?
    };
    let out = inclusive(op, x, d)?;
    match op {
        ScanOp::Reduce(ReduceOp::Prod) => ops::divide(&d.back_sum(&ops::multiply(&ct, &out)?)?, x),
        ScanOp::Reduce(ReduceOp::Max | ReduceOp::Min) => {
            let idx = running_arg(x, &out, d)?;
            ops::scatter_along_axis(
                crate::backend::ScatterMode::Add,
                &ops::zeros_like(x)?,
                &idx,
                &ct,
                d.axis,
            )
        }
        // sum over later positions j of ct_j * exp(x_i - out_j)
        ScanOp::LogAddExp => signed_lse(&ct, &ops::negative(&out)?, d, true, x),
        _ => Err(crate::value_err!("[Scan] No vjp for this scan.")),
    }
}

/// Tangent of the scan's output.
pub fn scan_jvp(op: ScanOp, incl: bool, x: &Array, t: &Array, d: Dir) -> Result<Array> {
    if let ScanOp::Reduce(ReduceOp::Sum) = op {
        return ops::cumsum(t, d.ax(), d.reverse, incl);
    }
    let out = inclusive(op, x, d)?;
    let tan = match op {
        ScanOp::Reduce(ReduceOp::Prod) => ops::multiply(
            &out,
            &ops::cumsum(&ops::divide(t, x)?, d.ax(), d.reverse, true)?,
        )?,
        ScanOp::Reduce(ReduceOp::Max | ReduceOp::Min) => {
            ops::take_along_axis(t, &running_arg(x, &out, d)?, d.ax())?
        }
        // sum over earlier positions i of t_i * exp(x_i - out_j)
        ScanOp::LogAddExp => signed_lse(t, x, d, false, &ops::negative(&out)?)?,
        _ => return Err(crate::value_err!("[Scan] No jvp for this scan.")),
    };
    if incl {
        Ok(tan)
    } else {
        d.shift(&tan, true)
    }
}
