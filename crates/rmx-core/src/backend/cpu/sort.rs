//! Sorting kernels: stable sort, partition (select the kth) and binary search, one
//! line along the axis at a time, lines split across threads. NaN sorts last, as in MLX.

use super::loops::{par_rows, ConstPtr, SendPtr};
use crate::array::{for_each_offset, ArrayData};
use crate::dtype::Dtype;
use crate::element::Element;
use crate::error::Result;
use crate::shape::row_strides;
use std::cmp::Ordering;

/// MLX's sort order: the element type's `<`, with NaN (x != x) after everything.
#[inline]
fn nan_less<T: Element>(a: &T, b: &T) -> bool {
    #[allow(clippy::eq_op)]
    let (a_nan, b_nan) = (a != a, b != b);
    if a_nan {
        return false;
    }
    b_nan || a.lt(b)
}

#[inline]
fn order<T: Element>(a: &T, b: &T) -> Ordering {
    if nan_less(a, b) {
        Ordering::Less
    } else if nan_less(b, a) {
        Ordering::Greater
    } else {
        Ordering::Equal
    }
}

/// What to do with each line's indices once they are arranged.
#[derive(Clone, Copy)]
pub enum Arrange {
    /// A stable sort.
    Sort,
    /// The kth element in place, smaller ones before, larger ones after.
    Partition(usize),
}

/// Element offsets of the start of every line along `axis` for a layout `strides`.
fn line_starts(shape: &[usize], strides: &[isize], axis: usize) -> Vec<isize> {
    let mut outer: Vec<usize> = shape.to_vec();
    outer[axis] = 1;
    let mut starts = Vec::new();
    for_each_offset(&outer, strides, &mut |o| starts.push(o));
    starts
}

fn arrange_typed<T: Element>(x: &ArrayData, axis: usize, how: Arrange, out: &ArrayData, arg: bool) {
    let len = x.shape[axis];
    if x.numel() == 0 {
        return;
    }
    let in_starts = line_starts(&x.shape, &x.strides, axis);
    let ostrides = row_strides(&x.shape);
    let out_starts = line_starts(&x.shape, &ostrides, axis);
    let (stride, ostride) = (x.strides[axis], ostrides[axis]);
    let xp = ConstPtr(unsafe { x.ptr::<T>() });
    let vp = SendPtr(unsafe { out.ptr_mut::<T>() });
    let ip = SendPtr(unsafe { out.ptr_mut::<u32>() });
    par_rows(in_starts.len(), len, |l0, l1| {
        let mut line: Vec<(T, u32)> = Vec::with_capacity(len);
        for l in l0..l1 {
            line.clear();
            for i in 0..len {
                let v = unsafe { *xp.get().offset(in_starts[l] + i as isize * stride) };
                line.push((v, i as u32));
            }
            match how {
                Arrange::Sort => line.sort_by(|a, b| order(&a.0, &b.0)),
                Arrange::Partition(k) => {
                    line.select_nth_unstable_by(k, |a, b| order(&a.0, &b.0));
                }
            }
            for (i, (v, idx)) in line.iter().enumerate() {
                let o = out_starts[l] + i as isize * ostride;
                unsafe {
                    if arg {
                        *ip.get().offset(o) = *idx;
                    } else {
                        *vp.get().offset(o) = *v;
                    }
                }
            }
        }
    });
}

/// Sorts or partitions `x` along `axis`; `arg` returns the uint32 source indices instead.
pub fn arrange(x: &ArrayData, axis: usize, how: Arrange, arg: bool) -> Result<ArrayData> {
    if let Arrange::Partition(k) = how {
        if k >= x.shape[axis] && x.numel() > 0 {
            return Err(crate::value_err!(
                "[partition] kth {k} is out of range for axis of size {}.",
                x.shape[axis]
            ));
        }
    }
    let out = ArrayData::alloc(if arg { Dtype::Uint32 } else { x.dtype }, &x.shape)?;
    crate::dispatch!(x.dtype, T => arrange_typed::<T>(x, axis, how, &out, arg));
    Ok(out)
}

/// For each value, the number of sequence elements before it in sort order (`right`:
/// also those equal to it), as uint32. `seq` is 1-d and sorted; both share a dtype.
pub fn searchsorted(seq: &ArrayData, values: &ArrayData, right: bool) -> Result<ArrayData> {
    let out = ArrayData::alloc(Dtype::Uint32, &values.shape)?;
    crate::dispatch!(seq.dtype, T => {
        let s = seq.to_vec::<T>();
        let v = values.to_vec::<T>();
        let o = SendPtr(unsafe { out.ptr_mut::<u32>() });
        par_rows(v.len(), s.len().max(1).ilog2() as usize + 1, |r0, r1| {
            for (i, x) in v.iter().enumerate().take(r1).skip(r0) {
                let n = if right {
                    s.partition_point(|e| !nan_less(x, e))
                } else {
                    s.partition_point(|e| nan_less(e, x))
                };
                unsafe { *o.get().add(i) = n as u32 };
            }
        });
    });
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sort_is_stable_and_puts_nan_last() {
        let x = ArrayData::from_slice(&[2.0f32, f32::NAN, 1.0, -0.0, 0.0, 1.0], &[6]).unwrap();
        let idx = arrange(&x, 0, Arrange::Sort, true).unwrap().to_vec::<u32>();
        assert_eq!(idx, vec![3, 4, 2, 5, 0, 1]);
    }

    #[test]
    fn partition_places_kth() {
        let x = ArrayData::from_slice(&[5i32, 3, 9, 1, 7], &[5]).unwrap();
        let p = arrange(&x, 0, Arrange::Partition(2), false)
            .unwrap()
            .to_vec::<i32>();
        assert_eq!(p[2], 5);
        assert!(p[..2].iter().all(|&v| v <= 5) && p[3..].iter().all(|&v| v >= 5));
    }
}
