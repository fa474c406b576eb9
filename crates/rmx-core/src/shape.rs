//! Shapes, strides and axis arithmetic shared by ops and kernels.

use crate::error::Result;
use smallvec::SmallVec;

pub type Shape = SmallVec<[usize; 4]>;
pub type Strides = SmallVec<[isize; 4]>;

pub fn shape_str(shape: &[usize]) -> String {
    let parts: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    format!("({})", parts.join(","))
}

/// Row-major strides, in elements.
pub fn row_strides(shape: &[usize]) -> Strides {
    let mut strides: Strides = SmallVec::from_elem(0, shape.len());
    let mut acc: isize = 1;
    for i in (0..shape.len()).rev() {
        strides[i] = acc;
        acc *= shape[i].max(1) as isize;
    }
    strides
}

pub fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

/// NumPy broadcasting of two shapes.
pub fn broadcast_shapes(a: &[usize], b: &[usize]) -> Result<Shape> {
    let n = a.len().max(b.len());
    let mut out: Shape = SmallVec::from_elem(0, n);
    for i in 0..n {
        let da = if i + a.len() >= n {
            a[i + a.len() - n]
        } else {
            1
        };
        let db = if i + b.len() >= n {
            b[i + b.len() - n]
        } else {
            1
        };
        out[i] = if da == db || db == 1 {
            da
        } else if da == 1 {
            db
        } else {
            return Err(crate::value_err!(
                "[broadcast_shapes] Shapes {} and {} cannot be broadcast.",
                shape_str(a),
                shape_str(b)
            ));
        };
    }
    Ok(out)
}

pub fn broadcast_many(shapes: &[&[usize]]) -> Result<Shape> {
    let mut out: Shape = SmallVec::new();
    for s in shapes {
        out = broadcast_shapes(&out, s)?;
    }
    Ok(out)
}

/// Resolves a possibly negative axis against `ndim`.
pub fn normalize_axis(op: &str, axis: i64, ndim: usize) -> Result<usize> {
    let n = ndim as i64;
    if axis < -n || axis >= n {
        return Err(crate::index_err!(
            "[{op}] Invalid axis {axis} for array with {ndim} dimensions."
        ));
    }
    Ok(if axis < 0 {
        (axis + n) as usize
    } else {
        axis as usize
    })
}

/// Resolves a list of axes (sorted, checked for duplicates).
pub fn normalize_axes(op: &str, axes: &[i64], ndim: usize) -> Result<Vec<usize>> {
    let mut out = Vec::with_capacity(axes.len());
    for &a in axes {
        let ax = normalize_axis(op, a, ndim)?;
        if out.contains(&ax) {
            return Err(crate::value_err!("[{op}] Duplicate axes detected ({a})."));
        }
        out.push(ax);
    }
    out.sort_unstable();
    Ok(out)
}

/// Whether a strided layout is dense row-major.
pub fn is_row_contiguous(shape: &[usize], strides: &[isize]) -> bool {
    let mut expected: isize = 1;
    for i in (0..shape.len()).rev() {
        if shape[i] == 1 {
            continue;
        }
        if strides[i] != expected {
            return false;
        }
        expected *= shape[i] as isize;
    }
    true
}

/// Whether a strided layout is dense column-major.
pub fn is_col_contiguous(shape: &[usize], strides: &[isize]) -> bool {
    let mut expected: isize = 1;
    for i in 0..shape.len() {
        if shape[i] == 1 {
            continue;
        }
        if strides[i] != expected {
            return false;
        }
        expected *= shape[i] as isize;
    }
    true
}

/// Merges adjacent dimensions that are contiguous with each other, so kernels loop over
/// as few dimensions as possible. All stride sets are collapsed together.
pub fn collapse_dims(shape: &[usize], strides: &[&[isize]]) -> (Shape, Vec<Strides>) {
    let mut out_shape: Shape = SmallVec::new();
    let mut out_strides: Vec<Strides> = vec![SmallVec::new(); strides.len()];
    for i in 0..shape.len() {
        if shape[i] == 1 {
            continue;
        }
        if let Some(&last) = out_shape.last() {
            let mergeable = strides
                .iter()
                .enumerate()
                .all(|(k, s)| *out_strides[k].last().unwrap() == s[i] * shape[i] as isize);
            if mergeable {
                let n = out_shape.len() - 1;
                out_shape[n] = last * shape[i];
                for (k, s) in strides.iter().enumerate() {
                    *out_strides[k].last_mut().unwrap() = s[i];
                }
                continue;
            }
        }
        out_shape.push(shape[i]);
        for (k, s) in strides.iter().enumerate() {
            out_strides[k].push(s[i]);
        }
    }
    (out_shape, out_strides)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcasting() {
        assert_eq!(broadcast_shapes(&[3, 1], &[4]).unwrap().as_slice(), &[3, 4]);
        assert_eq!(broadcast_shapes(&[], &[2, 2]).unwrap().as_slice(), &[2, 2]);
        assert!(broadcast_shapes(&[2], &[3]).is_err());
    }

    #[test]
    fn strides_and_contiguity() {
        assert_eq!(row_strides(&[2, 3, 4]).as_slice(), &[12, 4, 1]);
        assert!(is_row_contiguous(&[2, 3], &[3, 1]));
        assert!(!is_row_contiguous(&[2, 3], &[1, 2]));
        assert!(is_col_contiguous(&[2, 3], &[1, 2]));
    }

    #[test]
    fn collapse_merges_contiguous_dims() {
        let (s, st) = collapse_dims(&[2, 3, 4], &[&[12, 4, 1]]);
        assert_eq!(s.as_slice(), &[24]);
        assert_eq!(st[0].as_slice(), &[1]);
        let (s, _) = collapse_dims(&[2, 3, 4], &[&[12, 4, 1], &[0, 4, 1]]);
        assert_eq!(s.as_slice(), &[2, 12]);
    }
}
