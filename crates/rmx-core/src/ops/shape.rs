//! Shape manipulation: views (reshape, transpose, broadcast, squeeze, ...) that share
//! the buffer, and assembling ops (concatenate, stack, split, tile, repeat, pad, roll).

use crate::array::Array;
use crate::element::Scalar;
use crate::error::Result;
use crate::primitives::structure::{Concatenate, Copy, Pad};
use crate::primitives::views::{AsStrided, Broadcast, Reshape, Slice, Transpose};
use crate::shape::{broadcast_many, normalize_axis, shape_str, Shape};
use std::sync::Arc;

fn axis_err(op: &str, axis: i64, ndim: usize) -> crate::Error {
    crate::index_err!("[{op}] Axis {axis} is out of bounds for array with {ndim} dimensions.")
}

fn norm_axis(op: &str, axis: i64, ndim: usize) -> Result<usize> {
    normalize_axis(op, axis, ndim).map_err(|_| axis_err(op, axis, ndim))
}

/// Resolves a shape with at most one `-1`.
pub fn resolve_shape(size: usize, shape: &[i64]) -> Result<Shape> {
    let mut infer = None;
    let mut known: usize = 1;
    for (i, &d) in shape.iter().enumerate() {
        if d == -1 {
            if infer.is_some() {
                return Err(crate::value_err!(
                    "[reshape] Reshape can only infer one dimension."
                ));
            }
            infer = Some(i);
        } else if d < 0 {
            return Err(crate::value_err!("[reshape] Invalid dimension {d}."));
        } else {
            known *= d as usize;
        }
    }
    let mut out: Shape = shape.iter().map(|&d| d.max(0) as usize).collect();
    if let Some(i) = infer {
        if known == 0 || !size.is_multiple_of(known) {
            let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
            return Err(crate::value_err!(
                "[reshape] Cannot infer the shape of an empty array or shape ({}) does not divide size {size}.",
                dims.join(",")
            ));
        }
        out[i] = size / known;
    } else if known != size {
        let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
        return Err(crate::value_err!(
            "[reshape] Cannot reshape array of size {size} into shape ({}).",
            dims.join(",")
        ));
    }
    Ok(out)
}

pub fn reshape(x: &Array, shape: &[i64]) -> Result<Array> {
    let infer = shape.iter().position(|&d| d == -1);
    let shape = resolve_shape(x.size(), shape)?;
    reshape_node(x, shape, infer)
}

pub fn reshape_exact(x: &Array, shape: Shape) -> Result<Array> {
    reshape_node(x, shape, None)
}

fn reshape_node(x: &Array, shape: Shape, infer: Option<usize>) -> Result<Array> {
    if shape.as_slice() == x.shape() {
        return Ok(x.clone());
    }
    Ok(Array::from_op(
        shape,
        x.dtype(),
        Arc::new(Reshape { infer }),
        vec![x.clone()],
    ))
}

/// Merges axes `start..=end` into one.
pub fn flatten(x: &Array, start_axis: i64, end_axis: i64) -> Result<Array> {
    let nd = x.ndim() as i64;
    if nd == 0 {
        return reshape(x, &[1]);
    }
    // as MLX: after wrapping negatives, start is raised to 0 and end clamped into range
    let wrap = |a: i64| if a < 0 { a + nd } else { a };
    let s = wrap(start_axis).max(0);
    let e = wrap(end_axis).clamp(0, nd - 1);
    if s > e {
        return Err(crate::value_err!(
            "[flatten] start_axis must be less than or equal to end_axis"
        ));
    }
    let (s, e) = (s as usize, e as usize);
    let mut shape: Shape = x.shape()[..s].into();
    shape.push(x.shape()[s..=e].iter().product());
    shape.extend_from_slice(&x.shape()[e + 1..]);
    reshape_exact(x, shape)
}

/// Splits `axis` into `shape` (one entry may be -1).
pub fn unflatten(x: &Array, axis: i64, shape: &[i64]) -> Result<Array> {
    let ax = normalize_axis("unflatten", axis, x.ndim())?;
    if shape.is_empty() {
        return Err(crate::value_err!(
            "[unflatten] Shape to unflatten to cannot be empty."
        ));
    }
    let inner = resolve_shape(x.shape()[ax], shape).map_err(|_| {
        crate::value_err!(
            "[unflatten] Cannot unflatten axis {axis} with size {} into shape {:?}.",
            x.shape()[ax],
            shape
        )
    })?;
    let mut out: Shape = x.shape()[..ax].into();
    out.extend_from_slice(&inner);
    out.extend_from_slice(&x.shape()[ax + 1..]);
    reshape_exact(x, out)
}

/// Removes size-1 axes (all of them when `axes` is None).
pub fn squeeze(x: &Array, axes: Option<&[i64]>) -> Result<Array> {
    let nd = x.ndim();
    let drop: Vec<usize> = match axes {
        None => (0..nd).filter(|&i| x.shape()[i] == 1).collect(),
        Some(ax) => {
            let mut v = Vec::new();
            for &a in ax {
                let i = norm_axis("squeeze", a, nd)?;
                if x.shape()[i] != 1 {
                    return Err(crate::value_err!(
                        "[squeeze] Cannot squeeze axis {a} with size {} which is not equal to 1.",
                        x.shape()[i]
                    ));
                }
                if v.contains(&i) {
                    return Err(crate::value_err!("[squeeze] Received duplicate axes."));
                }
                v.push(i);
            }
            v
        }
    };
    let shape: Shape = (0..nd)
        .filter(|i| !drop.contains(i))
        .map(|i| x.shape()[i])
        .collect();
    reshape_exact(x, shape)
}

/// Inserts size-1 axes at `axes` (positions in the output).
pub fn expand_dims(x: &Array, axes: &[i64]) -> Result<Array> {
    let out_nd = x.ndim() + axes.len();
    let mut pos = Vec::with_capacity(axes.len());
    for &a in axes {
        let p = norm_axis("expand_dims", a, out_nd)?;
        if pos.contains(&p) {
            return Err(crate::value_err!("[expand_dims] Received duplicate axes."));
        }
        pos.push(p);
    }
    let mut shape = Shape::new();
    let mut src = x.shape().iter();
    for i in 0..out_nd {
        if pos.contains(&i) {
            shape.push(1);
        } else {
            shape.push(*src.next().unwrap());
        }
    }
    reshape_exact(x, shape)
}

/// Permutes axes (reverses them when `axes` is None).
pub fn transpose(x: &Array, axes: Option<&[i64]>) -> Result<Array> {
    let nd = x.ndim();
    let perm: Vec<usize> = match axes {
        None => (0..nd).rev().collect(),
        Some(ax) => {
            if ax.len() != nd {
                return Err(crate::value_err!(
                    "[transpose] Recived {} axes for array with {nd} dimensions.",
                    ax.len()
                ));
            }
            let mut p = Vec::with_capacity(nd);
            for &a in ax {
                let i = normalize_axis("transpose", a, nd).map_err(|_| {
                    crate::index_err!(
                        "[transpose] Invalid axis ({a}) for array with {nd} dimensions."
                    )
                })?;
                if p.contains(&i) {
                    return Err(crate::value_err!("[transpose] Repeat axes not allowed."));
                }
                p.push(i);
            }
            p
        }
    };
    if perm.iter().enumerate().all(|(i, &p)| i == p) {
        return Ok(x.clone());
    }
    let shape: Shape = perm.iter().map(|&p| x.shape()[p]).collect();
    Ok(Array::from_op(
        shape,
        x.dtype(),
        Arc::new(Transpose { perm }),
        vec![x.clone()],
    ))
}

pub fn permute_dims(x: &Array, axes: Option<&[i64]>) -> Result<Array> {
    transpose(x, axes)
}

pub fn swapaxes(x: &Array, a: i64, b: i64) -> Result<Array> {
    let nd = x.ndim();
    let ia = normalize_axis("swapaxes", a, nd)?;
    let ib = normalize_axis("swapaxes", b, nd)?;
    let mut perm: Vec<i64> = (0..nd as i64).collect();
    perm.swap(ia, ib);
    transpose(x, Some(&perm))
}

pub fn moveaxis(x: &Array, source: i64, destination: i64) -> Result<Array> {
    let nd = x.ndim();
    let s = normalize_axis("moveaxis", source, nd)?;
    let d = normalize_axis("moveaxis", destination, nd)?;
    let mut perm: Vec<i64> = (0..nd as i64).collect();
    let v = perm.remove(s);
    perm.insert(d, v);
    transpose(x, Some(&perm))
}

pub fn broadcast_to(x: &Array, shape: &[usize]) -> Result<Array> {
    if x.shape() == shape {
        return Ok(x.clone());
    }
    let b = crate::shape::broadcast_shapes(x.shape(), shape)?;
    if b.as_slice() != shape {
        return Err(crate::value_err!(
            "[broadcast_shapes] Shapes {} and {} cannot be broadcast.",
            shape_str(x.shape()),
            shape_str(shape)
        ));
    }
    Ok(Array::from_op(
        shape.into(),
        x.dtype(),
        Arc::new(Broadcast),
        vec![x.clone()],
    ))
}

/// `broadcast_to` with i64 dims (negative dims are an error).
pub fn broadcast_to_i64(x: &Array, shape: &[i64]) -> Result<Array> {
    if shape.iter().any(|&d| d < 0) {
        return Err(crate::value_err!(
            "[broadcast_to] Negative dimensions not allowed."
        ));
    }
    let s: Shape = shape.iter().map(|&d| d as usize).collect();
    broadcast_to(x, &s)
}

pub fn broadcast_arrays(arrays: &[&Array]) -> Result<Vec<Array>> {
    let shapes: Vec<&[usize]> = arrays.iter().map(|a| a.shape()).collect();
    let shape = broadcast_many(&shapes)?;
    arrays.iter().map(|a| broadcast_to(a, &shape)).collect()
}

pub fn atleast_nd(x: &Array, n: usize) -> Result<Array> {
    let nd = x.ndim();
    if nd >= n {
        return Ok(x.clone());
    }
    let shape: Shape = match (n, nd) {
        (1, _) => Shape::from_slice(&[1]),
        (2, 0) => Shape::from_slice(&[1, 1]),
        (2, _) => Shape::from_slice(&[1, x.shape()[0]]),
        (3, 0) => Shape::from_slice(&[1, 1, 1]),
        (3, 1) => Shape::from_slice(&[1, x.shape()[0], 1]),
        (3, _) => Shape::from_slice(&[x.shape()[0], x.shape()[1], 1]),
        _ => unreachable!(),
    };
    reshape_exact(x, shape)
}

pub fn contiguous(x: &Array) -> Result<Array> {
    Ok(Array::from_op(
        x.shape().into(),
        x.dtype(),
        Arc::new(Copy),
        vec![x.clone()],
    ))
}

pub fn copy(x: &Array) -> Result<Array> {
    contiguous(x)
}

/// Joins arrays along `axis` (flattened first when `axis` is None).
pub fn concatenate(arrays: &[Array], axis: Option<i64>) -> Result<Array> {
    if arrays.is_empty() {
        return Err(crate::value_err!(
            "[concatenate] No arrays provided for concatenation"
        ));
    }
    let arrays: Vec<Array> = match axis {
        None => arrays
            .iter()
            .map(|a| flatten(a, 0, -1))
            .collect::<Result<_>>()?,
        Some(_) => arrays.to_vec(),
    };
    let axis = axis.unwrap_or(0);
    let nd = arrays[0].ndim();
    if nd == 0 {
        return Err(axis_err("concatenate", axis, 0));
    }
    let ax = norm_axis("concatenate", axis, nd)?;
    let mut shape: Shape = arrays[0].shape().into();
    for a in &arrays[1..] {
        if a.ndim() != nd {
            return Err(crate::value_err!(
                "[concatenate] All the input arrays must have the same number of dimensions. However, got arrays with dimensions {nd} and {}.",
                a.ndim()
            ));
        }
        for d in 0..nd {
            if d != ax && a.shape()[d] != shape[d] {
                return Err(crate::value_err!(
                    "[concatenate] All the input array dimensions must match exactly except for the concatenation axis. However, the provided shapes are {}, {}, and the concatenation axis is {axis}.",
                    shape_str(arrays[0].shape()),
                    shape_str(a.shape())
                ));
            }
        }
        shape[ax] += a.shape()[ax];
    }
    let dtypes: Vec<_> = arrays.iter().map(|a| a.dtype()).collect();
    let dtype = crate::dtype::result_type(&dtypes).unwrap();
    let inputs: Vec<Array> = arrays
        .iter()
        .map(|a| super::elementwise::astype(a, dtype))
        .collect::<Result<_>>()?;
    Ok(Array::from_op(
        shape,
        dtype,
        Arc::new(Concatenate { axis: ax }),
        inputs,
    ))
}

pub fn stack(arrays: &[Array], axis: i64) -> Result<Array> {
    if arrays.is_empty() {
        return Err(crate::value_err!("[stack] No arrays provided for stacking"));
    }
    let shape = arrays[0].shape();
    if arrays.iter().any(|a| a.shape() != shape) {
        return Err(crate::value_err!(
            "[stack] All arrays must have the same shape"
        ));
    }
    let nd = shape.len() + 1;
    let ax = norm_axis("stack", axis, nd)?;
    let expanded: Vec<Array> = arrays
        .iter()
        .map(|a| expand_dims(a, &[ax as i64]))
        .collect::<Result<_>>()?;
    concatenate(&expanded, Some(ax as i64))
}

/// A strided slice `start:stop:step` along every axis (already resolved and in range).
pub fn slice_resolved(
    x: &Array,
    start: &[usize],
    shape: &[usize],
    step: &[isize],
) -> Result<Array> {
    if shape == x.shape() && start.iter().all(|&s| s == 0) && step.iter().all(|&s| s == 1) {
        return Ok(x.clone());
    }
    Ok(Array::from_op(
        shape.into(),
        x.dtype(),
        Arc::new(Slice {
            start: start.to_vec(),
            step: step.to_vec(),
        }),
        vec![x.clone()],
    ))
}

/// Python-style bounds for `start:stop:step` on an axis of length `n`: (first index, count).
pub fn resolve_slice(
    n: usize,
    start: Option<i64>,
    stop: Option<i64>,
    step: i64,
) -> Result<(usize, usize)> {
    if step == 0 {
        return Err(crate::value_err!("slice step cannot be zero"));
    }
    let n = n as i64;
    let clamp = |v: i64, lo: i64, hi: i64| v.max(lo).min(hi);
    let (s, e) = if step > 0 {
        let s = start
            .map(|v| if v < 0 { v + n } else { v })
            .map_or(0, |v| clamp(v, 0, n));
        let e = stop
            .map(|v| if v < 0 { v + n } else { v })
            .map_or(n, |v| clamp(v, 0, n));
        (s, e)
    } else {
        let s = start
            .map(|v| if v < 0 { v + n } else { v })
            .map_or(n - 1, |v| clamp(v, -1, n - 1));
        let e = stop
            .map(|v| if v < 0 { v + n } else { v })
            .map_or(-1, |v| clamp(v, -1, n - 1));
        (s, e)
    };
    let count = if step > 0 {
        if e > s {
            (e - s + step - 1) / step
        } else {
            0
        }
    } else if s > e {
        (s - e + (-step) - 1) / (-step)
    } else {
        0
    };
    Ok((if count == 0 { 0 } else { s as usize }, count as usize))
}

/// MLX's `slice(a, start_indices, axes, slice_size)` with static starts.
pub fn slice(x: &Array, start: &[i64], stop: &[i64], strides: Option<&[i64]>) -> Result<Array> {
    let nd = x.ndim();
    if start.len() != nd || stop.len() != nd {
        return Err(crate::value_err!(
            "[slice] Invalid number of indices or strides for array with dimension {nd}."
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
    slice_resolved(x, &st, &shape, &steps)
}

/// Splits into `n` equal parts along `axis`.
pub fn split_sections(x: &Array, n: i64, axis: i64) -> Result<Vec<Array>> {
    let ax = norm_axis("split", axis, x.ndim())?;
    let len = x.shape()[ax] as i64;
    if n <= 0 || len % n != 0 {
        return Err(crate::value_err!(
            "Array split does not result in sub arrays with equal size: attempting {n} splits along axis {axis} for shape {}.",
            shape_str(x.shape())
        ));
    }
    let step = len / n;
    let idx: Vec<i64> = (1..n).map(|i| i * step).collect();
    split_at(x, &idx, axis)
}

/// Splits at the given indices along `axis`.
pub fn split_at(x: &Array, indices: &[i64], axis: i64) -> Result<Vec<Array>> {
    let nd = x.ndim();
    let ax = norm_axis("split", axis, nd)?;
    let len = x.shape()[ax] as i64;
    let mut bounds = vec![0i64];
    for &i in indices {
        let i = if i < 0 { i + len } else { i };
        bounds.push(i.clamp(0, len));
    }
    bounds.push(len);
    let mut out = Vec::with_capacity(bounds.len() - 1);
    for w in bounds.windows(2) {
        let (s, e) = (w[0], w[1].max(w[0]));
        let mut start = vec![0usize; nd];
        let mut shape: Vec<usize> = x.shape().to_vec();
        start[ax] = s as usize;
        shape[ax] = (e - s) as usize;
        out.push(slice_resolved(x, &start, &shape, &vec![1; nd])?);
    }
    Ok(out)
}

/// Splits along `axis` into arrays with that axis removed.
pub fn unstack(x: &Array, axis: i64) -> Result<Vec<Array>> {
    let nd = x.ndim();
    if nd == 0 {
        return Err(crate::value_err!(
            "[unstack] No axis to unstack in a 0-d array."
        ));
    }
    let ax = norm_axis("unstack", axis, nd)?;
    let parts = split_sections(x, x.shape()[ax] as i64, ax as i64)
        .or_else(|_| Ok::<_, crate::Error>(vec![]))?;
    parts
        .iter()
        .map(|p| squeeze(p, Some(&[ax as i64])))
        .collect()
}

/// Repeats the whole array `reps` times along each axis.
pub fn tile(x: &Array, reps: &[i64]) -> Result<Array> {
    if reps.iter().any(|&r| r < 0) {
        return Err(crate::value_err!("[tile] Negative dimensions not allowed."));
    }
    let nd = x.ndim().max(reps.len());
    let mut shape: Vec<usize> = vec![1; nd - x.ndim()];
    shape.extend_from_slice(x.shape());
    let mut reps_full: Vec<usize> = vec![1; nd - reps.len()];
    reps_full.extend(reps.iter().map(|&r| r as usize));
    // interleave: (r0, s0, r1, s1, ...) broadcast then merge
    let mut expanded_shape: Shape = Shape::new();
    let mut bshape: Shape = Shape::new();
    for i in 0..nd {
        expanded_shape.push(1);
        expanded_shape.push(shape[i]);
        bshape.push(reps_full[i]);
        bshape.push(shape[i]);
    }
    let xr = reshape_exact(x, expanded_shape)?;
    let b = broadcast_to(&xr, &bshape)?;
    let out: Shape = (0..nd).map(|i| reps_full[i] * shape[i]).collect();
    reshape_exact(&contiguous(&b)?, out)
}

/// Repeats each element `repeats` times along `axis` (flattened when None).
pub fn repeat(x: &Array, repeats: i64, axis: Option<i64>) -> Result<Array> {
    if repeats < 0 {
        return Err(crate::value_err!(
            "[repeat] Number of repeats cannot be negative"
        ));
    }
    let (x, ax) = match axis {
        None => (flatten(x, 0, -1)?, 0usize),
        Some(a) => {
            let ax = norm_axis("repeat", a, x.ndim())?;
            (x.clone(), ax)
        }
    };
    let mut s1: Shape = x.shape().into();
    s1.insert(ax + 1, 1);
    let mut s2 = s1.clone();
    s2[ax + 1] = repeats as usize;
    let b = broadcast_to(&reshape_exact(&x, s1)?, &s2)?;
    let mut out: Shape = x.shape().into();
    out[ax] *= repeats as usize;
    reshape_exact(&contiguous(&b)?, out)
}

/// Pads with a constant value or by repeating edges; `widths[i]` is (before, after) per axis.
pub fn pad(x: &Array, widths: &[(i64, i64)], mode: &str, value: Scalar) -> Result<Array> {
    let nd = x.ndim();
    if widths.len() != nd {
        return Err(crate::value_err!(
            "Invalid number of padding sizes passed to pad with axes of size {nd}"
        ));
    }
    if widths.iter().any(|&(a, b)| a < 0 || b < 0) {
        return Err(crate::value_err!(
            "Invalid padding size passed to pad: sizes must be non-negative"
        ));
    }
    let edge = match mode {
        "constant" => false,
        "edge" => true,
        "reflect" | "symmetric" => return pad_mirror(x, widths, mode == "reflect"),
        m => {
            return Err(crate::value_err!(
                "Invalid padding mode ({m}) passed to pad"
            ))
        }
    };
    if edge && x.size() == 0 && widths.iter().any(|&(a, b)| a + b > 0) {
        return Err(crate::value_err!("[pad] Cannot edge-pad an empty array."));
    }
    let shape: Shape = (0..nd)
        .map(|i| x.shape()[i] + (widths[i].0 + widths[i].1) as usize)
        .collect();
    Ok(Array::from_op(
        shape,
        x.dtype(),
        Arc::new(Pad {
            low: widths.iter().map(|w| w.0 as usize).collect(),
            value,
            edge,
        }),
        vec![x.clone()],
    ))
}

/// Rolls elements by `shift` along `axes` (over the flattened array when None).
pub fn roll(x: &Array, shift: &[i64], axes: Option<&[i64]>) -> Result<Array> {
    match axes {
        None => {
            let flat = flatten(x, 0, -1)?;
            let total: i64 = shift.iter().sum();
            let r = roll(&flat, &[total], Some(&[0]))?;
            reshape_exact(&r, x.shape().into())
        }
        Some(axes) => {
            let shifts: Vec<i64> = if shift.len() == 1 {
                vec![shift[0]; axes.len()]
            } else if axes.len() == 1 {
                // several shifts on one axis add up
                vec![shift.iter().sum()]
            } else if shift.len() == axes.len() {
                shift.to_vec()
            } else {
                return Err(crate::value_err!(
                    "[roll] The shift and axes should have the same size but got {} and {}.",
                    shift.len(),
                    axes.len()
                ));
            };
            let mut out = x.clone();
            for (&a, &s) in axes.iter().zip(&shifts) {
                let ax = normalize_axis("roll", a, x.ndim())?;
                let n = x.shape()[ax] as i64;
                if n == 0 {
                    continue;
                }
                let k = s.rem_euclid(n);
                if k == 0 {
                    continue;
                }
                let parts = split_at(&out, &[n - k], ax as i64)?;
                out = concatenate(&[parts[1].clone(), parts[0].clone()], Some(ax as i64))?;
            }
            Ok(out)
        }
    }
}

/// The diagonal of the 2-d sub-arrays spanned by `axis1` and `axis2`, moved to the last axis.
pub fn diagonal(x: &Array, offset: i64, axis1: i64, axis2: i64) -> Result<Array> {
    let nd = x.ndim();
    if nd < 2 {
        return Err(crate::value_err!(
            "[diagonal] Array must have at least two dimensions, but received array with {nd} dimensions."
        ));
    }
    let a1 = normalize_axis("diagonal", axis1, nd)?;
    let a2 = normalize_axis("diagonal", axis2, nd)?;
    if a1 == a2 {
        return Err(crate::value_err!(
            "[diagonal] axis1 and axis2 cannot be the same axis"
        ));
    }
    let (n1, n2) = (x.shape()[a1] as i64, x.shape()[a2] as i64);
    let len = if offset >= 0 {
        (n1.min(n2 - offset)).max(0)
    } else {
        ((n1 + offset).min(n2)).max(0)
    } as usize;
    // Build as a strided view over the contiguous input.
    let xc = contiguous(x)?;
    let strides = crate::shape::row_strides(x.shape());
    let mut shape: Vec<usize> = Vec::new();
    let mut out_strides: Vec<isize> = Vec::new();
    for d in 0..nd {
        if d != a1 && d != a2 {
            shape.push(x.shape()[d]);
            out_strides.push(strides[d]);
        }
    }
    shape.push(len);
    out_strides.push(strides[a1] + strides[a2]);
    let off = if len == 0 {
        0
    } else if offset >= 0 {
        offset as isize * strides[a2]
    } else {
        -offset as isize * strides[a1]
    };
    as_strided_unchecked(&xc, &shape, &out_strides, off as usize)
}

/// A 1-d input becomes a 2-d matrix with it on diagonal `k`; a 2-d input gives its diagonal.
pub fn diag(x: &Array, k: i64) -> Result<Array> {
    match x.ndim() {
        1 => {
            let len = x.shape()[0] as i64;
            let n = len + k.abs();
            if len == 0 {
                return super::creation::zeros(&[n, n], x.dtype());
            }
            // row i holds x[i - max(-k, 0)] at its diagonal entry
            let i64s = |v: i64| Array::scalar_of(Scalar::Int(v), crate::Dtype::Int64);
            let rows = super::creation::arange(0.0, n as f64, 1.0, crate::Dtype::Int64)?;
            let src = super::elementwise::subtract(&rows, &i64s((-k).max(0))?)?;
            let src = super::elementwise::clip(&src, Some(&i64s(0)?), Some(&i64s(len - 1)?))?;
            let vals = reshape(&super::indexing::take(x, &src, Some(0))?, &[n, 1])?;
            let mask = super::creation::eye(n, None, k, crate::Dtype::Bool)?;
            super::elementwise::where_(&mask, &vals, &super::creation::zeros(&[1], x.dtype())?)
        }
        2 => diagonal(x, k, 0, 1),
        _ => Err(crate::value_err!("[diag] array must be 1-D or 2-D")),
    }
}

/// A view with explicit shape/strides/offset over the row-major elements of `x`.
pub fn as_strided(x: &Array, shape: &[i64], strides: &[i64], offset: i64) -> Result<Array> {
    if shape.len() != strides.len() {
        return Err(crate::value_err!(
            "[as_strided] shape and strides must have the same length"
        ));
    }
    if shape.iter().any(|&d| d < 0) || offset < 0 {
        return Err(crate::value_err!(
            "[as_strided] Negative dimensions or offset not allowed."
        ));
    }
    let shape: Vec<usize> = shape.iter().map(|&d| d as usize).collect();
    let strides: Vec<isize> = strides.iter().map(|&d| d as isize).collect();
    as_strided_unchecked(x, &shape, &strides, offset as usize)
}

fn as_strided_unchecked(
    x: &Array,
    shape: &[usize],
    strides: &[isize],
    offset: usize,
) -> Result<Array> {
    Ok(Array::from_op(
        shape.into(),
        x.dtype(),
        Arc::new(AsStrided {
            strides: strides.to_vec(),
            offset,
        }),
        vec![x.clone()],
    ))
}

/// Reverses the order of elements along `axes` (all axes when None): a strided view.
pub fn flip(x: &Array, axes: Option<&[i64]>) -> Result<Array> {
    let nd = x.ndim();
    let axes: Vec<usize> = match axes {
        None => (0..nd).collect(),
        Some(a) => {
            // repeated axes flip once, as in MLX
            let mut v: Vec<usize> = a
                .iter()
                .map(|&ax| normalize_axis("flip", ax, nd))
                .collect::<Result<_>>()?;
            v.sort_unstable();
            v.dedup();
            v
        }
    };
    let mut start = vec![0usize; nd];
    let mut step = vec![1isize; nd];
    for &a in &axes {
        if x.shape()[a] > 0 {
            start[a] = x.shape()[a] - 1;
            step[a] = -1;
        }
    }
    slice_resolved(x, &start, x.shape(), &step)
}

/// Swaps the last two axes.
pub fn matrix_transpose(x: &Array) -> Result<Array> {
    if x.ndim() < 2 {
        return Err(crate::value_err!(
            "[matrix_transpose] Array must have at least two dimensions."
        ));
    }
    swapaxes(x, -1, -2)
}

/// `x[1:] - x[:-1]` along `axis`, `n` times.
pub fn diff(x: &Array, n: i64, axis: i64) -> Result<Array> {
    if n < 0 {
        return Err(crate::value_err!(
            "[diff] order must be non-negative but got {n}."
        ));
    }
    if x.ndim() == 0 {
        return Err(crate::value_err!(
            "[diff] requires input to be at least one dimensional."
        ));
    }
    let ax = normalize_axis("diff", axis, x.ndim())?;
    let mut out = x.clone();
    for _ in 0..n {
        let len = out.shape()[ax];
        if len == 0 {
            break;
        }
        let nd = out.ndim();
        let mut shape: Vec<usize> = out.shape().to_vec();
        shape[ax] = len - 1;
        let mut hi = vec![0usize; nd];
        hi[ax] = 1;
        let a = slice_resolved(&out, &hi, &shape, &vec![1; nd])?;
        let b = slice_resolved(&out, &vec![0; nd], &shape, &vec![1; nd])?;
        out = if out.dtype() == crate::Dtype::Bool {
            super::elementwise::not_equal(&a, &b)?
        } else {
            super::elementwise::subtract(&a, &b)?
        };
    }
    Ok(out)
}

/// Sum along the diagonal spanned by `axis1`/`axis2` with `offset`.
pub fn trace(
    x: &Array,
    offset: i64,
    axis1: i64,
    axis2: i64,
    dtype: Option<crate::Dtype>,
) -> Result<Array> {
    let d = diagonal(x, offset, axis1, axis2)?;
    let d = match dtype {
        Some(t) => super::elementwise::astype(&d, t)?,
        None => d,
    };
    super::reduce::sum(&d, Some(&[-1]), false)
}

/// Reflect (`[3,2,1,|1..]` without the edge) or symmetric (with the edge) padding,
/// one axis at a time: flipped edge slices and one concatenate when each side mirrors
/// once (the usual case, e.g. `stft`'s centering), else an index gather.
fn pad_mirror(x: &Array, widths: &[(i64, i64)], reflect: bool) -> Result<Array> {
    let n_at = |ax: usize| x.shape()[ax] as i64;
    let once = |ax: usize, lo: i64, hi: i64| {
        let n = n_at(ax);
        let room = if reflect { n - 1 } else { n };
        n > 0 && lo <= room && hi <= room && (lo > 0 || hi > 0)
    };
    if widths
        .iter()
        .enumerate()
        .all(|(ax, &(lo, hi))| (lo == 0 && hi == 0) || once(ax, lo, hi))
    {
        let mut out = x.clone();
        for (ax, &(lo, hi)) in widths.iter().enumerate() {
            if lo == 0 && hi == 0 {
                continue;
            }
            let n = n_at(ax);
            // reflect: x[lo..=1] and x[n-2..=n-1-hi]; symmetric: x[lo-1..=0], x[n-1..=n-hi]
            let skip = reflect as i64;
            let part = |a: i64, b: i64| -> Result<Array> {
                let mut start = vec![0i64; out.ndim()];
                let mut stop: Vec<i64> = out.shape().iter().map(|&d| d as i64).collect();
                start[ax] = a;
                stop[ax] = b;
                flip(&slice(&out, &start, &stop, None)?, Some(&[ax as i64]))
            };
            let mut pieces = Vec::with_capacity(3);
            if lo > 0 {
                pieces.push(part(skip, skip + lo)?);
            }
            pieces.push(out.clone());
            if hi > 0 {
                pieces.push(part(n - skip - hi, n - skip)?);
            }
            out = concatenate(&pieces, Some(ax as i64))?;
        }
        return Ok(out);
    }
    let mut out = x.clone();
    for (ax, &(lo, hi)) in widths.iter().enumerate() {
        if lo == 0 && hi == 0 {
            continue;
        }
        let n = x.shape()[ax] as i64;
        if n == 0 || (reflect && n == 1 && lo + hi > 0) {
            return Err(crate::value_err!(
                "[pad] Cannot mirror-pad an axis of size {n}."
            ));
        }
        let period = if reflect { 2 * (n - 1) } else { 2 * n };
        let idx: Vec<i64> = (-lo..n + hi)
            .map(|i| {
                let m = i.rem_euclid(period);
                if reflect {
                    if m < n {
                        m
                    } else {
                        period - m
                    }
                } else if m < n {
                    m
                } else {
                    period - 1 - m
                }
            })
            .collect();
        let len = idx.len();
        let idx = Array::from_vec(idx, &[len])?;
        out = super::indexing::take(&out, &idx, Some(ax as i64))?;
    }
    Ok(out)
}
