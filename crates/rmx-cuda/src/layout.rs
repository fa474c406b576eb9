//! Strided views as kernels see them: a `Layout` passed by value (shape and element
//! strides, dims merged where every operand allows it).

use cudarc::driver::DeviceRepr;

pub const MAX_DIMS: usize = 8;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Layout {
    pub ndim: i32,
    pub pad: i32,
    pub shape: [i64; MAX_DIMS],
    pub strides: [i64; MAX_DIMS],
}

unsafe impl DeviceRepr for Layout {}

impl Layout {
    pub fn new(shape: &[usize], strides: &[isize]) -> Option<Layout> {
        if shape.len() > MAX_DIMS {
            return None;
        }
        let mut l = Layout {
            ndim: shape.len() as i32,
            ..Default::default()
        };
        for (i, (&n, &s)) in shape.iter().zip(strides).enumerate() {
            l.shape[i] = n as i64;
            l.strides[i] = s as i64;
        }
        Some(l)
    }

    /// Whether element `i` (row-major) sits at offset `i`.
    pub fn is_contiguous(&self) -> bool {
        let mut expect = 1i64;
        for d in (0..self.ndim as usize).rev() {
            if self.shape[d] != 1 && self.strides[d] != expect {
                return false;
            }
            expect *= self.shape[d];
        }
        true
    }
}

/// The layout of `x` over every axis but `axis` (row-major order of the other axes): where
/// each line along `axis` starts. `None` past `MAX_DIMS`.
pub fn without_axis(x: &rmx_core::ArrayData, axis: usize) -> Option<Layout> {
    let kept: Vec<usize> = (0..x.ndim()).filter(|&d| d != axis).collect();
    let shape: Vec<usize> = kept.iter().map(|&d| x.shape[d]).collect();
    let strides: Vec<isize> = kept.iter().map(|&d| x.strides[d]).collect();
    Layout::new(&shape, &strides)
}

/// Layouts of several same-shaped views over one shape, with size-1 dims dropped and
/// adjacent dims merged where every view's strides allow it. `None` past `MAX_DIMS`.
pub fn collapse(shape: &[usize], strides: &[&[isize]]) -> Option<Vec<Layout>> {
    let keep: Vec<usize> = (0..shape.len()).filter(|&d| shape[d] != 1).collect();
    let mut dims: Vec<usize> = Vec::new();
    let mut st: Vec<Vec<isize>> = vec![Vec::new(); strides.len()];
    for &d in &keep {
        let merge = !dims.is_empty()
            && strides.iter().enumerate().all(|(k, s)| {
                let last = *st[k].last().unwrap();
                last == s[d] * shape[d] as isize
            });
        if merge {
            *dims.last_mut().unwrap() *= shape[d];
            for (k, s) in strides.iter().enumerate() {
                *st[k].last_mut().unwrap() = s[d];
            }
        } else {
            dims.push(shape[d]);
            for (k, s) in strides.iter().enumerate() {
                st[k].push(s[d]);
            }
        }
    }
    st.iter().map(|s| Layout::new(&dims, s)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_contiguous_dims_and_drops_ones() {
        let l = collapse(&[2, 1, 3, 4], &[&[12, 12, 4, 1], &[0, 0, 0, 0]]).unwrap();
        assert_eq!(l[0].ndim, 1);
        assert_eq!(l[0].shape[0], 24);
        assert_eq!((l[0].strides[0], l[1].strides[0]), (1, 0));
        assert!(l[0].is_contiguous());
    }

    #[test]
    fn a_row_broadcast_splits_where_it_must() {
        let l = collapse(&[2, 1, 3, 4], &[&[12, 12, 4, 1], &[0, 0, 1, 0]]).unwrap();
        assert_eq!(l[1].ndim, 3);
        assert_eq!(&l[1].strides[..3], &[0, 1, 0]);
        assert_eq!(&l[0].strides[..3], &[12, 4, 1]);
    }

    #[test]
    fn keeps_dims_a_broadcast_operand_cannot_merge() {
        let l = collapse(&[3, 4], &[&[4, 1], &[1, 0]]).unwrap();
        assert_eq!(l[0].ndim, 2);
        assert_eq!(&l[1].strides[..2], &[1, 0]);
    }
}
