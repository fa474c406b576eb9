//! Gathers and scatters along one axis, with every index bounds-checked
//! (MLX leaves out-of-range indices undefined; here they are an `IndexError`).

use super::loops::{collapsed, par_range, walk, ConstPtr, SendPtr};
use crate::array::ArrayData;
use crate::backend::ScatterMode;
use crate::element::Element;
use crate::error::Result;
use crate::shape::{row_strides, Shape};

/// Index values as i64, wrapped for negatives and checked against `size`.
pub fn checked_indices(op: &str, idx: &ArrayData, size: usize, axis: usize) -> Result<Vec<i64>> {
    if !idx.dtype.is_integer() {
        return Err(crate::value_err!(
            "[{op}] Indices must be integers, got {}.",
            idx.dtype
        ));
    }
    let raw: Vec<i64> = crate::dispatch!(idx.dtype, T => idx.to_vec::<T>().into_iter().map(|v| v.to_scalar().as_i64()).collect());
    let n = size as i64;
    let mut out = raw;
    for v in out.iter_mut() {
        let w = if *v < 0 { *v + n } else { *v };
        if w < 0 || w >= n {
            return Err(crate::index_err!(
                "[{op}] Index {} is out of bounds for axis {axis} with size {size}.",
                *v
            ));
        }
        *v = w;
    }
    Ok(out)
}

pub fn take(x: &ArrayData, indices: &ArrayData, axis: usize) -> Result<ArrayData> {
    let idx = checked_indices("take", indices, x.shape[axis], axis)?;
    let mut out_shape: Shape = x.shape[..axis].into();
    out_shape.extend_from_slice(&indices.shape);
    out_shape.extend_from_slice(&x.shape[axis + 1..]);
    let out = ArrayData::alloc(x.dtype, &out_shape)?;
    let outer_shape = &x.shape[..axis];
    let inner_shape = &x.shape[axis + 1..];
    let offsets_of = |shape: &[usize], strides: &[isize]| {
        let mut v = Vec::with_capacity(shape.iter().product());
        crate::array::for_each_offset(shape, strides, &mut |o| v.push(o));
        if shape.is_empty() {
            v.clear();
            v.push(0);
        }
        v
    };
    let outer = offsets_of(outer_shape, &x.strides[..axis]);
    let inner = offsets_of(inner_shape, &x.strides[axis + 1..]);
    let stride = x.strides[axis];
    macro_rules! go {
        ($T:ty) => {{
            let xp = ConstPtr(unsafe { x.ptr::<$T>() });
            let op = SendPtr(unsafe { out.ptr_mut::<$T>() });
            let (ni, nin) = (idx.len(), inner.len());
            par_range(outer.len() * ni, |s, e| {
                for r in s..e {
                    let (o, i) = (r / ni, r % ni);
                    let base = outer[o] + idx[i] as isize * stride;
                    let dst = r * nin;
                    for (j, &io) in inner.iter().enumerate() {
                        unsafe { *op.get().add(dst + j) = *xp.get().offset(base + io) };
                    }
                }
            });
        }};
    }
    match x.dtype.size() {
        1 => go!(u8),
        2 => go!(u16),
        4 => go!(u32),
        _ => go!(u64),
    }
    Ok(out)
}

pub fn take_along_axis(x: &ArrayData, indices: &ArrayData, axis: usize) -> Result<ArrayData> {
    let idx = checked_indices("take_along_axis", indices, x.shape[axis], axis)?;
    let out = ArrayData::alloc(x.dtype, &indices.shape)?;
    // x viewed with the indexed axis pinned (stride 0); the index adds the axis offset.
    let mut pinned = x.view(indices.shape.clone(), x.strides.clone(), x.offset);
    pinned.strides[axis] = 0;
    let stride = x.strides[axis];
    let n = out.numel();
    if n == 0 {
        return Ok(out);
    }
    let (shape, strides) = collapsed(&indices.shape, [&pinned]);
    macro_rules! go {
        ($T:ty) => {{
            let xp = ConstPtr(unsafe { x.ptr::<$T>() });
            let op = SendPtr(unsafe { out.ptr_mut::<$T>() });
            if shape.is_empty() {
                unsafe { *op.get() = *xp.get().offset(idx[0] as isize * stride) };
            } else {
                par_range(n, |s, e| {
                    walk(&shape, &strides, s, e, |k, [o]| unsafe {
                        *op.get().add(k) = *xp.get().offset(o + idx[k] as isize * stride);
                    });
                });
            }
        }};
    }
    match x.dtype.size() {
        1 => go!(u8),
        2 => go!(u16),
        4 => go!(u32),
        _ => go!(u64),
    }
    Ok(out)
}

pub fn scatter_along_axis(
    mode: ScatterMode,
    x: &ArrayData,
    indices: &ArrayData,
    updates: &ArrayData,
    axis: usize,
) -> Result<ArrayData> {
    let idx = checked_indices("scatter", indices, x.shape[axis], axis)?;
    let donated = x.is_donated_whole();
    let out = if donated {
        x.clone()
    } else {
        super::copy::copy(x)?
    };
    let ostrides = row_strides(&x.shape);
    let mut pinned_strides = ostrides.clone();
    pinned_strides[axis] = 0;
    let upd = updates.clone();
    crate::dispatch!(x.dtype, T => {
        let vals: Vec<T> = upd.to_vec::<T>();
        let op = unsafe { out.ptr_mut::<T>() };
        let mut k = 0usize;
        let combine = combiner::<T>(mode)?;
        crate::array::for_each_offset(&indices.shape, &pinned_strides, &mut |o| {
            let target = o + idx[k] as isize * ostrides[axis];
            unsafe {
                let p = op.offset(target);
                *p = combine(*p, vals[k]);
            }
            k += 1;
        });
    });
    if donated {
        // any device copy of the donated buffer is stale now
        out.buffer.set_residency(crate::allocator::Residency::HOST);
    }
    Ok(out)
}

fn combiner<T: Element>(mode: ScatterMode) -> Result<fn(T, T) -> T> {
    use crate::element::Scalar;
    fn num<T: Element>(a: T, b: T, f: fn(Scalar, Scalar) -> Scalar) -> T {
        T::from_scalar(f(a.to_scalar(), b.to_scalar()))
    }
    Ok(match mode {
        ScatterMode::Set => |_, b| b,
        ScatterMode::Add => |a, b| num(a, b, scalar_add),
        ScatterMode::Prod => |a, b| num(a, b, scalar_mul),
        ScatterMode::Max => |a, b| num(a, b, scalar_max),
        ScatterMode::Min => |a, b| num(a, b, scalar_min),
    })
}

fn scalar_add(a: crate::element::Scalar, b: crate::element::Scalar) -> crate::element::Scalar {
    use crate::element::Scalar::*;
    match (a, b) {
        (Int(x), Int(y)) => Int(x.wrapping_add(y)),
        (UInt(x), UInt(y)) => UInt(x.wrapping_add(y)),
        (Bool(x), Bool(y)) => Bool(x || y),
        (Complex(x), Complex(y)) => Complex(x + y),
        (x, y) => Float(x.as_f64() + y.as_f64()),
    }
}
fn scalar_mul(a: crate::element::Scalar, b: crate::element::Scalar) -> crate::element::Scalar {
    use crate::element::Scalar::*;
    match (a, b) {
        (Int(x), Int(y)) => Int(x.wrapping_mul(y)),
        (UInt(x), UInt(y)) => UInt(x.wrapping_mul(y)),
        (Bool(x), Bool(y)) => Bool(x && y),
        (Complex(x), Complex(y)) => Complex(x * y),
        (x, y) => Float(x.as_f64() * y.as_f64()),
    }
}
fn scalar_max(a: crate::element::Scalar, b: crate::element::Scalar) -> crate::element::Scalar {
    use crate::element::Scalar::*;
    match (a, b) {
        (Int(x), Int(y)) => Int(x.max(y)),
        (UInt(x), UInt(y)) => UInt(x.max(y)),
        (Bool(x), Bool(y)) => Bool(x || y),
        (Float(x), Float(y)) => Float(if x.is_nan() || x > y { x } else { y }),
        (x, y) => {
            if (x.as_complex().re, x.as_complex().im) >= (y.as_complex().re, y.as_complex().im) {
                x
            } else {
                y
            }
        }
    }
}
fn scalar_min(a: crate::element::Scalar, b: crate::element::Scalar) -> crate::element::Scalar {
    use crate::element::Scalar::*;
    match (a, b) {
        (Int(x), Int(y)) => Int(x.min(y)),
        (UInt(x), UInt(y)) => UInt(x.min(y)),
        (Bool(x), Bool(y)) => Bool(x && y),
        (Float(x), Float(y)) => Float(if x.is_nan() || x < y { x } else { y }),
        (x, y) => {
            if (x.as_complex().re, x.as_complex().im) <= (y.as_complex().re, y.as_complex().im) {
                x
            } else {
                y
            }
        }
    }
}
