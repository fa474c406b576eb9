//! Copies, casts, fills and ranges.

use super::loops::{copy_strided, map1, par_range, SendPtr};
use crate::array::ArrayData;
use crate::dtype::Dtype;
use crate::element::{cast as cast_elem, Element, Scalar};
use crate::error::Result;

pub fn copy(x: &ArrayData) -> Result<ArrayData> {
    let out = ArrayData::alloc(x.dtype, &x.shape)?;
    if x.is_row_contiguous() {
        let n = x.numel() * x.dtype.size();
        let sp =
            super::loops::ConstPtr(unsafe { (x.buffer.as_ptr()).add(x.offset * x.dtype.size()) });
        let dp = SendPtr(out.buffer.as_mut_ptr());
        par_range(n, |s, e| unsafe {
            std::ptr::copy_nonoverlapping(sp.get().add(s), dp.get().add(s), e - s)
        });
        return Ok(out);
    }
    copy_into(x, &out)?;
    Ok(out)
}

pub fn copy_into(src: &ArrayData, dst: &ArrayData) -> Result<()> {
    debug_assert_eq!(src.dtype, dst.dtype);
    // Copy as unsigned words of the element size: the bits move unchanged.
    match src.dtype.size() {
        1 => copy_strided::<u8, u8>(src, dst, |v| v),
        2 => copy_strided::<u16, u16>(src, dst, |v| v),
        4 => copy_strided::<u32, u32>(src, dst, |v| v),
        _ => copy_strided::<u64, u64>(src, dst, |v| v),
    }
    Ok(())
}

pub fn cast(x: &ArrayData, dtype: Dtype) -> Result<ArrayData> {
    if x.dtype == dtype {
        return copy(x);
    }
    let out = ArrayData::alloc(dtype, &x.shape)?;
    crate::dispatch!(x.dtype, A => crate::dispatch!(dtype, B => {
        map1::<A, B>(x, &out, cast_elem::<A, B>)
    }));
    Ok(out)
}

pub fn fill(value: Scalar, dtype: Dtype, shape: &[usize]) -> Result<ArrayData> {
    let out = ArrayData::alloc(dtype, shape)?;
    crate::dispatch!(dtype, T => {
        let v = T::from_scalar(value);
        let p = SendPtr(unsafe { out.ptr_mut::<T>() });
        par_range(out.numel(), |s, e| {
            let sl = unsafe { std::slice::from_raw_parts_mut(p.get().add(s), e - s) };
            sl.fill(v);
        });
    });
    Ok(out)
}

/// `start + i * step` in the output type, with the step taken as MLX does:
/// `T(start + step) - T(start)` (so `arange(0.5, 3, 0.5, int32)` steps by 1).
pub fn arange(start: f64, step: f64, dtype: Dtype, n: usize) -> Result<ArrayData> {
    let out = ArrayData::alloc(dtype, &[n])?;
    crate::dispatch!(dtype, T => {
        let p = SendPtr(unsafe { out.ptr_mut::<T>() });
        let s0 = T::from_scalar(Scalar::Float(start)).to_scalar();
        let s1 = T::from_scalar(Scalar::Float(start + step)).to_scalar();
        if dtype.is_integer() {
            let (b, st) = (s0.as_i64(), s1.as_i64().wrapping_sub(s0.as_i64()));
            par_range(n, |s, e| {
                for i in s..e {
                    let v = b.wrapping_add(st.wrapping_mul(i as i64));
                    unsafe { *p.get().add(i) = T::from_scalar(Scalar::Int(v)) };
                }
            });
        } else {
            let (b, st) = (s0.as_f64(), s1.as_f64() - s0.as_f64());
            par_range(n, |s, e| {
                for i in s..e {
                    unsafe { *p.get().add(i) = T::from_scalar(Scalar::Float(b + st * i as f64)) };
                }
            });
        }
    });
    Ok(out)
}

/// `cond ? a : b`.
pub fn select(cond: &ArrayData, a: &ArrayData, b: &ArrayData) -> Result<ArrayData> {
    let out = ArrayData::alloc(a.dtype, &a.shape)?;
    match a.dtype.size() {
        1 => super::loops::map3::<u8>(cond, a, b, &out),
        2 => super::loops::map3::<u16>(cond, a, b, &out),
        4 => super::loops::map3::<u32>(cond, a, b, &out),
        _ => super::loops::map3::<u64>(cond, a, b, &out),
    }
    Ok(out)
}
