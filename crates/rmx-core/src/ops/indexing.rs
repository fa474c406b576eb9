//! Indexing: `take`, `take_along_axis`, `put_along_axis`, `slice_update`, and NumPy-style
//! `index` / `index_update` (ints, slices, None, Ellipsis, integer arrays, boolean masks).
//! Every index is bounds-checked: out of range is an `IndexError`, never garbage.
//! Multi-array indices are lowered onto one-axis gathers/scatters over merged axes.

use crate::array::Array;
use crate::backend::ScatterMode;
use crate::dtype::Dtype;
use crate::element::Scalar;
use crate::error::Result;
use crate::primitives::indexing::{CheckIndices, ScatterAxis, Take, TakeAlongAxis};
use crate::primitives::structure::SliceUpdate;
use crate::shape::{normalize_axis, Shape};
use std::sync::Arc;

use super::elementwise::{add, astype, multiply};
use super::shape::{
    broadcast_arrays, broadcast_to, flatten, reshape_exact, resolve_slice, slice_resolved,
    transpose,
};

/// One entry of a NumPy-style index.
#[derive(Clone, Debug)]
pub enum Index {
    Int(i64),
    Slice {
        start: Option<i64>,
        stop: Option<i64>,
        step: Option<i64>,
    },
    NewAxis,
    Ellipsis,
    Array(Array),
}

impl Index {
    pub fn full() -> Index {
        Index::Slice {
            start: None,
            stop: None,
            step: None,
        }
    }
}

fn check_int_index(i: i64, n: usize, axis: usize) -> Result<usize> {
    let n_i = n as i64;
    let w = if i < 0 { i + n_i } else { i };
    if w < 0 || w >= n_i {
        return Err(crate::index_err!(
            "index {i} is out of bounds for axis {axis} with size {n}"
        ));
    }
    Ok(w as usize)
}

/// Lazily wraps and checks index values against an axis of `size` (IndexError at eval).
fn checked(indices: &Array, size: usize, axis: usize) -> Result<Array> {
    if !indices.dtype().is_integer() {
        return Err(crate::value_err!(
            "Arrays used as indices must be of integer (or boolean) type, got {}.",
            indices.dtype()
        ));
    }
    Ok(Array::from_op(
        indices.shape().into(),
        Dtype::Int64,
        Arc::new(CheckIndices { size, axis }),
        vec![indices.clone()],
    ))
}

/// `x` at `indices` along `axis` (over the flattened array when None).
pub fn take(x: &Array, indices: &Array, axis: Option<i64>) -> Result<Array> {
    let (x, ax) = match axis {
        None => (flatten(x, 0, -1)?, 0usize),
        Some(a) => {
            let ax = normalize_axis("take", a, x.ndim()).map_err(|_| {
                crate::index_err!(
                    "[take] Received invalid axis {a} for array with {} dimensions.",
                    x.ndim()
                )
            })?;
            (x.clone(), ax)
        }
    };
    if x.ndim() == 0 {
        return Err(crate::value_err!("[take] Cannot index a 0-d array."));
    }
    if !indices.dtype().is_integer() {
        return Err(crate::value_err!("[take] Indices must be integers."));
    }
    let mut shape: Shape = x.shape()[..ax].into();
    shape.extend_from_slice(indices.shape());
    shape.extend_from_slice(&x.shape()[ax + 1..]);
    if x.shape()[ax] == 0 && indices.size() > 0 {
        return Err(crate::index_err!("[take] Cannot take from an empty axis."));
    }
    Ok(Array::from_op(
        shape,
        x.dtype(),
        Arc::new(Take { axis: ax }),
        vec![x, indices.clone()],
    ))
}

/// Indices shaped like `x` but along `axis`; both broadcast against each other elsewhere.
fn along_axis_shapes(
    op: &str,
    x: &Array,
    indices: &Array,
    axis: i64,
) -> Result<(usize, Array, Shape)> {
    let nd = x.ndim();
    if indices.ndim() != nd {
        return Err(crate::value_err!(
            "[{op}] Indices of dimension {} does not match array of dimension {nd}.",
            indices.ndim()
        ));
    }
    let ax = normalize_axis(op, axis, nd)?;
    let mut idx_shape: Shape = Shape::new();
    for d in 0..nd {
        if d == ax {
            idx_shape.push(indices.shape()[d]);
        } else {
            let (a, b) = (x.shape()[d], indices.shape()[d]);
            idx_shape.push(if a == b || b == 1 {
                a
            } else if a == 1 {
                b
            } else {
                return Err(crate::value_err!(
                    "[{op}] Shapes {:?} and {:?} cannot be broadcast.",
                    x.shape(),
                    indices.shape()
                ));
            });
        }
    }
    let idx = broadcast_to(indices, &idx_shape)?;
    Ok((ax, idx, idx_shape))
}

pub fn take_along_axis(x: &Array, indices: &Array, axis: Option<i64>) -> Result<Array> {
    let (x, indices, axis) = match axis {
        None => (flatten(x, 0, -1)?, indices.clone(), 0),
        Some(a) => (x.clone(), indices.clone(), a),
    };
    let (ax, idx, shape) = along_axis_shapes("take_along_axis", &x, &indices, axis)?;
    // x broadcast on the non-indexed axes
    let mut xs = shape.clone();
    xs[ax] = x.shape()[ax];
    let xb = broadcast_to(&x, &xs)?;
    Ok(Array::from_op(
        shape,
        x.dtype(),
        Arc::new(TakeAlongAxis { axis: ax }),
        vec![xb, idx],
    ))
}

/// Scatters `values` into a copy of `x` at `indices` along `axis`.
pub fn scatter_along_axis(
    mode: ScatterMode,
    x: &Array,
    indices: &Array,
    values: &Array,
    axis: usize,
) -> Result<Array> {
    let v = astype(values, x.dtype())?;
    let v = broadcast_to(&v, indices.shape())?;
    Ok(Array::from_op(
        x.shape().into(),
        x.dtype(),
        Arc::new(ScatterAxis { mode, axis }),
        vec![x.clone(), indices.clone(), v],
    ))
}

pub fn put_along_axis(
    x: &Array,
    indices: &Array,
    values: &Array,
    axis: Option<i64>,
) -> Result<Array> {
    match axis {
        None => {
            let flat = flatten(x, 0, -1)?;
            let r = put_along_axis(
                &flat,
                &flatten(indices, 0, -1)?,
                &flatten(values, 0, -1)?,
                Some(0),
            )?;
            reshape_exact(&r, x.shape().into())
        }
        Some(a) => {
            let (ax, idx, shape) = along_axis_shapes("put_along_axis", x, indices, a)?;
            // Broadcast indices to the values' shape too (numpy allows either to broadcast).
            let vb = broadcast_to(values, &shape)?;
            scatter_along_axis(ScatterMode::Set, x, &idx, &vb, ax)
        }
    }
}

/// Replaces the region `start:stop:step` of `x` with `update` (broadcast to the region).
pub fn slice_update(
    x: &Array,
    update: &Array,
    start: &[i64],
    stop: &[i64],
    strides: Option<&[i64]>,
) -> Result<Array> {
    let nd = x.ndim();
    if start.len() != nd || stop.len() != nd {
        return Err(crate::value_err!(
            "[slice_update] Invalid number of indices or strides for array with dimension {nd}."
        ));
    }
    let mut st = Vec::with_capacity(nd);
    let mut shape = Vec::with_capacity(nd);
    let mut steps = Vec::with_capacity(nd);
    for i in 0..nd {
        let step = strides.map_or(1, |s| s[i]);
        let (s, c) = resolve_slice(x.shape()[i], Some(start[i]), Some(stop[i]), step)?;
        st.push(s);
        shape.push(c);
        steps.push(step as isize);
    }
    slice_update_resolved(x, update, &st, &shape, &steps)
}

fn slice_update_resolved(
    x: &Array,
    update: &Array,
    start: &[usize],
    shape: &[usize],
    step: &[isize],
) -> Result<Array> {
    let u = broadcast_to(&astype(update, x.dtype())?, shape)?;
    Ok(Array::from_op(
        x.shape().into(),
        x.dtype(),
        Arc::new(SliceUpdate {
            start: start.to_vec(),
            step: step.to_vec(),
        }),
        vec![x.clone(), u],
    ))
}

/// Indices of true elements, one int64 array per axis (evaluates `mask` now: the output
/// shape depends on its values).
pub fn nonzero(mask: &Array) -> Result<Vec<Array>> {
    let m = astype(mask, Dtype::Bool)?;
    let data = m.data()?;
    let vals = data.to_vec::<bool>();
    let nd = m.ndim();
    let strides = crate::shape::row_strides(m.shape());
    let mut cols: Vec<Vec<i64>> = vec![Vec::new(); nd];
    for (flat, &v) in vals.iter().enumerate() {
        if v {
            let mut rem = flat;
            for d in 0..nd {
                let s = strides[d] as usize;
                cols[d].push((rem / s) as i64);
                rem %= s;
            }
        }
    }
    cols.into_iter()
        .map(|c| {
            let n = c.len();
            Array::from_vec(c, &[n])
        })
        .collect()
}

/// The index after expanding Ellipsis, turning None into size-1 axes and masks into
/// integer arrays. Returns the reshaped source and one entry per source axis.
struct Plan {
    source: Array,
    entries: Vec<Index>,
}

fn plan(x: &Array, indices: &[Index], for_update: bool) -> Result<Plan> {
    // Boolean masks become their nonzero() integer arrays (one per masked axis).
    let mut idx: Vec<Index> = Vec::new();
    // source axis the next entry applies to (unknown after an Ellipsis)
    let mut axis: Option<usize> = Some(0);
    for i in indices {
        match i {
            Index::Array(a) if a.dtype() == Dtype::Bool && a.ndim() == 0 => {
                // NumPy: a 0-d True adds a length-1 axis (selecting everything)
                if !a.item()?.as_bool() {
                    return Err(crate::value_err!(
                        "boolean indices are not yet supported (a 0-d False index)"
                    ));
                }
                idx.push(Index::NewAxis);
            }
            Index::Array(a) if a.dtype() == Dtype::Bool => {
                if let Some(ax) = axis {
                    let end = ax + a.ndim();
                    if (end > x.ndim() || a.shape() != &x.shape()[ax..end]) && !for_update {
                        return Err(crate::index_err!(
                            "boolean index did not match indexed array: mask shape {}, array shape {}",
                            crate::shape::shape_str(a.shape()),
                            crate::shape::shape_str(x.shape())
                        ));
                    }
                    if end > x.ndim() || a.shape() != &x.shape()[ax..end] {
                        return Err(crate::value_err!(
                            "[masked_scatter] The boolean mask should have the same shape as the beginning of the indexed array but the mask has shape {} and the array has shape {}",
                            crate::shape::shape_str(a.shape()),
                            crate::shape::shape_str(x.shape())
                        ));
                    }
                    axis = Some(end);
                }
                for col in nonzero(a)? {
                    idx.push(Index::Array(col));
                }
            }
            other => {
                axis = match (other, axis) {
                    (Index::Ellipsis, _) | (_, None) => None,
                    (Index::NewAxis, a) => a,
                    (_, Some(a)) => Some(a + 1),
                };
                idx.push(other.clone())
            }
        }
    }
    let consumed = idx
        .iter()
        .filter(|i| !matches!(i, Index::NewAxis | Index::Ellipsis))
        .count();
    if idx.iter().filter(|i| matches!(i, Index::Ellipsis)).count() > 1 {
        return Err(crate::value_err!(
            "An index can only have a single ellipsis (...)"
        ));
    }
    if consumed > x.ndim() {
        if x.ndim() == 0 {
            return Err(crate::value_err!(
                "too many indices for array: array is 0-dimensional"
            ));
        }
        return Err(crate::value_err!(
            "Too many indices for array with {} dimensions.",
            x.ndim()
        ));
    }
    let mut full: Vec<Index> = Vec::new();
    let mut saw_ellipsis = false;
    for i in &idx {
        if let Index::Ellipsis = i {
            saw_ellipsis = true;
            for _ in 0..x.ndim() - consumed {
                full.push(Index::full());
            }
        } else {
            full.push(i.clone());
        }
    }
    if !saw_ellipsis {
        for _ in consumed..x.ndim() {
            full.push(Index::full());
        }
    }
    // None: insert a size-1 source axis and slice it fully.
    let mut shape: Shape = Shape::new();
    let mut dims = x.shape().iter();
    let mut entries = Vec::with_capacity(full.len());
    for i in full {
        match i {
            Index::NewAxis => {
                shape.push(1);
                entries.push(Index::full());
            }
            other => {
                shape.push(*dims.next().unwrap());
                entries.push(other);
            }
        }
    }
    let source = reshape_exact(x, shape)?;
    Ok(Plan { source, entries })
}

/// The basic-index part: slices and (without arrays) ints, as (start, count, step) per axis.
struct Basic {
    start: Vec<usize>,
    shape: Vec<usize>,
    step: Vec<isize>,
    /// Axes selected by an int (dropped from a basic-only result).
    int_axes: Vec<usize>,
}

fn basic_part(p: &Plan, ints_as_arrays: bool) -> Result<Basic> {
    let nd = p.source.ndim();
    let mut b = Basic {
        start: vec![0; nd],
        shape: p.source.shape().to_vec(),
        step: vec![1; nd],
        int_axes: vec![],
    };
    for (ax, e) in p.entries.iter().enumerate() {
        let n = p.source.shape()[ax];
        match e {
            Index::Slice { start, stop, step } => {
                let (s, c) = resolve_slice(n, *start, *stop, step.unwrap_or(1))?;
                b.start[ax] = s;
                b.shape[ax] = c;
                b.step[ax] = step.unwrap_or(1) as isize;
            }
            Index::Int(i) if !ints_as_arrays => {
                b.start[ax] = check_int_index(*i, n, ax)?;
                b.shape[ax] = 1;
                b.int_axes.push(ax);
            }
            _ => {}
        }
    }
    Ok(b)
}

/// Advanced-index lowering: the region's advanced axes merged into one axis `q` and a
/// linear index into it. Returns (merged region, permutation used, q, linear index, broadcast shape).
struct Advanced {
    merged: Array,
    perm: Vec<usize>,
    permuted_shape: Shape,
    q: usize,
    linear: Array,
    bshape: Shape,
}

fn advanced_part(region: &Array, entries: &[Index]) -> Result<Advanced> {
    let nd = region.ndim();
    let mut adv_axes = Vec::new();
    let mut adv_arrays = Vec::new();
    for (ax, e) in entries.iter().enumerate() {
        match e {
            Index::Array(a) => {
                adv_axes.push(ax);
                adv_arrays.push(a.clone());
            }
            Index::Int(i) => {
                adv_axes.push(ax);
                adv_arrays.push(Array::scalar_of(Scalar::Int(*i), Dtype::Int64)?);
            }
            _ => {}
        }
    }
    let adjacent = adv_axes.windows(2).all(|w| w[1] == w[0] + 1);
    let refs: Vec<&Array> = adv_arrays.iter().collect();
    let bcast = broadcast_arrays(&refs)?;
    let bshape: Shape = bcast[0].shape().into();
    // linear index = sum_j checked(idx_j) * prod(sizes of later advanced axes)
    let mut linear: Option<Array> = None;
    let mut mult: i64 = 1;
    for (j, &ax) in adv_axes.iter().enumerate().rev() {
        let c = checked(&bcast[j], region.shape()[ax], ax)?;
        let term = if mult == 1 {
            c
        } else {
            multiply(&c, &Array::scalar_of(Scalar::Int(mult), Dtype::Int64)?)?
        };
        linear = Some(match linear {
            None => term,
            Some(l) => add(&l, &term)?,
        });
        mult *= region.shape()[ax] as i64;
    }
    let linear = linear.unwrap();
    let rest: Vec<usize> = (0..nd).filter(|a| !adv_axes.contains(a)).collect();
    let q = if adjacent { adv_axes[0] } else { 0 };
    let mut perm: Vec<usize> = rest[..q.min(rest.len())].to_vec();
    perm.extend_from_slice(&adv_axes);
    perm.extend_from_slice(&rest[q.min(rest.len())..]);
    let perm_i: Vec<i64> = perm.iter().map(|&p| p as i64).collect();
    let permuted = transpose(region, Some(&perm_i))?;
    let permuted_shape: Shape = permuted.shape().into();
    let mut merged_shape: Shape = permuted.shape()[..q].into();
    merged_shape.push(adv_axes.iter().map(|&a| region.shape()[a]).product());
    merged_shape.extend_from_slice(&permuted.shape()[q + adv_axes.len()..]);
    let merged = reshape_exact(&permuted, merged_shape)?;
    Ok(Advanced {
        merged,
        perm,
        permuted_shape,
        q,
        linear,
        bshape,
    })
}

fn has_arrays(entries: &[Index]) -> bool {
    entries.iter().any(|e| matches!(e, Index::Array(_)))
}

/// `x[indices]` with NumPy semantics.
pub fn index(x: &Array, indices: &[Index]) -> Result<Array> {
    let p = plan(x, indices, false)?;
    let arrays = has_arrays(&p.entries);
    let b = basic_part(&p, arrays)?;
    let region = slice_resolved(&p.source, &b.start, &b.shape, &b.step)?;
    if !arrays {
        let shape: Shape = (0..region.ndim())
            .filter(|a| !b.int_axes.contains(a))
            .map(|a| region.shape()[a])
            .collect();
        return reshape_exact(&region, shape);
    }
    let adv = advanced_part(&region, &p.entries)?;
    take(&adv.merged, &adv.linear, Some(adv.q as i64))
}

/// The result of `x[indices] = value` (mode Set) or `x.at[indices].add(value)` etc.
pub fn index_update(
    x: &Array,
    indices: &[Index],
    value: &Array,
    mode: ScatterMode,
) -> Result<Array> {
    let p = plan(x, indices, true)?;
    let arrays = has_arrays(&p.entries);
    let b = basic_part(&p, arrays)?;
    let region = slice_resolved(&p.source, &b.start, &b.shape, &b.step)?;
    let value = astype(value, x.dtype())?;
    let new_region = if !arrays {
        // value broadcasts against the indexed shape (int axes dropped), then restores them
        let dropped: Shape = (0..region.ndim())
            .filter(|a| !b.int_axes.contains(a))
            .map(|a| region.shape()[a])
            .collect();
        let v = broadcast_to(&value, &dropped)?;
        let v = reshape_exact(&v, region.shape().into())?;
        combine(mode, &region, &v)?
    } else {
        let adv = advanced_part(&region, &p.entries)?;
        let q = adv.q;
        let merged_shape: Shape = adv.merged.shape().into();
        // the getitem result shape: merged axis q replaced by the broadcast index shape
        let mut g: Shape = merged_shape[..q].into();
        g.extend_from_slice(&adv.bshape);
        g.extend_from_slice(&merged_shape[q + 1..]);
        let nb: usize = adv.bshape.iter().product();
        let mut flat: Shape = merged_shape[..q].into();
        flat.push(nb);
        flat.extend_from_slice(&merged_shape[q + 1..]);
        let v = reshape_exact(&broadcast_to(&value, &g)?, flat.clone())?;
        let mut lshape: Shape = Shape::from_elem(1, flat.len());
        lshape[q] = nb;
        let l = broadcast_to(&reshape_exact(&adv.linear, lshape)?, &flat)?;
        let scattered = scatter_along_axis(mode, &adv.merged, &l, &v, q)?;
        // undo the merge and the permutation
        let unmerged = reshape_exact(&scattered, adv.permuted_shape.clone())?;
        let mut inv = vec![0i64; adv.perm.len()];
        for (i, &pp) in adv.perm.iter().enumerate() {
            inv[pp] = i as i64;
        }
        transpose(&unmerged, Some(&inv))?
    };
    let updated = slice_update_resolved(&p.source, &new_region, &b.start, &b.shape, &b.step)?;
    reshape_exact(&updated, x.shape().into())
}

/// Applies a non-scatter update of a dense region.
fn combine(mode: ScatterMode, region: &Array, v: &Array) -> Result<Array> {
    use super::elementwise as ew;
    match mode {
        ScatterMode::Set => Ok(v.clone()),
        ScatterMode::Add => ew::add(region, v),
        ScatterMode::Prod => ew::multiply(region, v),
        ScatterMode::Max => ew::maximum(region, v),
        ScatterMode::Min => ew::minimum(region, v),
    }
}

/// `x` with the region starting at `start` (with `step`, extent = `update`'s shape) replaced.
pub fn slice_update_at(
    x: &Array,
    update: &Array,
    start: &[usize],
    step: &[isize],
) -> Result<Array> {
    slice_update_resolved(x, update, start, update.shape(), step)
}
