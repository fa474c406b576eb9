//! Primitives whose result shares the input's buffer through new strides:
//! `Reshape`, `Transpose`, `Slice`, `Broadcast`, `AsStrided`. No data moves
//! (except `Reshape` of a layout that cannot be re-strided, which copies first).

use super::batching::{self, Batched};
use super::one;
use crate::array::{Array, ArrayData};
use crate::backend::Backend;
use crate::error::Result;
use crate::ops;
use crate::primitive::{OutputSpec, Primitive};
use crate::shape::{row_strides, Shape, Strides};

#[derive(Clone, Debug, PartialEq)]
pub struct Reshape {
    /// The axis the caller left to inference (`-1`), kept so a shapeless exported
    /// function can infer it again for other input sizes; the output spec holds the shape.
    pub infer: Option<usize>,
}

impl Primitive for Reshape {
    fn name(&self) -> &'static str {
        "Reshape"
    }
    fn eval(
        &self,
        b: &dyn Backend,
        inputs: &[ArrayData],
        out: &[OutputSpec],
    ) -> Result<Vec<ArrayData>> {
        let x = &inputs[0];
        let shape = &out[0].shape;
        if let Some(strides) = reshape_strides(&x.shape, &x.strides, shape) {
            return one(x.view(shape.clone(), strides, x.offset));
        }
        let c = b.copy(x)?;
        one(c.view(shape.clone(), row_strides(shape), 0))
    }
    fn vjp(&self, p: &[Array], ct: &[Array], _a: &[usize], _o: &[Array]) -> Result<Vec<Array>> {
        Ok(vec![ops::reshape_exact(&ct[0], p[0].shape().into())?])
    }
    fn jvp(&self, _p: &[Array], t: &[Array], _a: &[usize], out: &[Array]) -> Result<Vec<Array>> {
        Ok(vec![ops::reshape_exact(&t[0], out[0].shape().into())?])
    }
    fn vmap(&self, x: &[Array], ax: &[Option<usize>], out: &[OutputSpec]) -> Result<Batched> {
        let x = batching::to_front(&x[0], ax[0])?;
        let shape = batching::with_batch(x.shape()[0], &out[0].shape);
        batching::at_front(ops::reshape_exact(&x, shape)?)
    }
    crate::primitive_common!();
}

/// Strides for viewing a strided layout under a new shape without copying, if possible
/// (NumPy's attempt_nocopy_reshape: each group of merged dims must be contiguous).
pub fn reshape_strides(
    old_shape: &[usize],
    old_strides: &[isize],
    new_shape: &[usize],
) -> Option<Strides> {
    if crate::shape::is_row_contiguous(old_shape, old_strides) {
        return Some(row_strides(new_shape));
    }
    let old: Vec<(usize, isize)> = old_shape
        .iter()
        .zip(old_strides)
        .filter(|(d, _)| **d != 1)
        .map(|(d, s)| (*d, *s))
        .collect();
    let mut new_strides: Strides = Strides::from_elem(0, new_shape.len());
    let (mut oi, mut ni) = (0usize, 0usize);
    let new_nz: Vec<usize> = (0..new_shape.len())
        .filter(|&i| new_shape[i] != 1)
        .collect();
    while oi < old.len() && ni < new_nz.len() {
        let (oj_start, nj_start) = (oi, ni);
        let mut np = new_shape[new_nz[ni]];
        let mut op = old[oi].0;
        while np != op {
            if np < op {
                ni += 1;
                if ni >= new_nz.len() {
                    return None;
                }
                np *= new_shape[new_nz[ni]];
            } else {
                oi += 1;
                if oi >= old.len() {
                    return None;
                }
                op *= old[oi].0;
            }
        }
        // old dims oj_start..=oi must be contiguous with each other
        for k in oj_start..oi {
            if old[k].1 != old[k + 1].1 * old[k + 1].0 as isize {
                return None;
            }
        }
        // assign new strides from the innermost old stride outward
        let mut st = old[oi].1;
        for k in (nj_start..=ni).rev() {
            new_strides[new_nz[k]] = st;
            st *= new_shape[new_nz[k]] as isize;
        }
        oi += 1;
        ni += 1;
    }
    if oi != old.len() || ni != new_nz.len() {
        return None;
    }
    Some(new_strides)
}

#[derive(Clone, Debug, PartialEq)]
pub struct Transpose {
    pub perm: Vec<usize>,
}

impl Primitive for Transpose {
    fn name(&self) -> &'static str {
        "Transpose"
    }
    fn eval(
        &self,
        _b: &dyn Backend,
        inputs: &[ArrayData],
        _out: &[OutputSpec],
    ) -> Result<Vec<ArrayData>> {
        let x = &inputs[0];
        let shape: Shape = self.perm.iter().map(|&p| x.shape[p]).collect();
        let strides: Strides = self.perm.iter().map(|&p| x.strides[p]).collect();
        one(x.view(shape, strides, x.offset))
    }
    fn vjp(&self, _p: &[Array], ct: &[Array], _a: &[usize], _o: &[Array]) -> Result<Vec<Array>> {
        let mut inv = vec![0i64; self.perm.len()];
        for (i, &q) in self.perm.iter().enumerate() {
            inv[q] = i as i64;
        }
        Ok(vec![ops::transpose(&ct[0], Some(&inv))?])
    }
    fn jvp(&self, _p: &[Array], t: &[Array], _a: &[usize], _out: &[Array]) -> Result<Vec<Array>> {
        let perm: Vec<i64> = self.perm.iter().map(|&q| q as i64).collect();
        Ok(vec![ops::transpose(&t[0], Some(&perm))?])
    }
    fn vmap(&self, x: &[Array], ax: &[Option<usize>], _out: &[OutputSpec]) -> Result<Batched> {
        let x = batching::to_front(&x[0], ax[0])?;
        let perm: Vec<i64> = batching::prepend(0, &batching::shifted(&self.perm))
            .into_iter()
            .map(|p| p as i64)
            .collect();
        batching::at_front(ops::transpose(&x, Some(&perm))?)
    }
    crate::primitive_common!();
}

/// Strided slice: `start[i] + k * step[i]` for the output's extent along each axis.
#[derive(Clone, Debug, PartialEq)]
pub struct Slice {
    pub start: Vec<usize>,
    pub step: Vec<isize>,
}

impl Primitive for Slice {
    fn name(&self) -> &'static str {
        "Slice"
    }
    fn eval(
        &self,
        _b: &dyn Backend,
        inputs: &[ArrayData],
        out: &[OutputSpec],
    ) -> Result<Vec<ArrayData>> {
        let x = &inputs[0];
        let shape = &out[0].shape;
        if shape.contains(&0) {
            return one(x.view(shape.clone(), row_strides(shape), x.offset));
        }
        let mut offset = x.offset as isize;
        let mut strides = Strides::new();
        for i in 0..x.ndim() {
            offset += self.start[i] as isize * x.strides[i];
            strides.push(x.strides[i] * self.step[i]);
        }
        one(x.view(shape.clone(), strides, offset as usize))
    }
    fn vjp(&self, p: &[Array], ct: &[Array], _a: &[usize], _o: &[Array]) -> Result<Vec<Array>> {
        let zeros = ops::zeros_like(&p[0])?;
        Ok(vec![ops::slice_update_at(
            &zeros,
            &ct[0],
            &self.start,
            &self.step,
        )?])
    }
    fn jvp(&self, _p: &[Array], t: &[Array], _a: &[usize], out: &[Array]) -> Result<Vec<Array>> {
        Ok(vec![Array::from_op(
            out[0].shape().into(),
            t[0].dtype(),
            std::sync::Arc::new(Slice {
                start: self.start.clone(),
                step: self.step.clone(),
            }),
            vec![t[0].clone()],
        )])
    }
    fn vmap(&self, x: &[Array], ax: &[Option<usize>], out: &[OutputSpec]) -> Result<Batched> {
        let p = Slice {
            start: batching::prepend(0, &self.start),
            step: batching::prepend(1, &self.step),
        };
        batching::front(p, &x[0], ax[0], &out[0])
    }
    crate::primitive_common!();
}

/// Broadcast to a larger shape: new and size-1 dims get stride 0.
#[derive(Clone, Debug, PartialEq)]
pub struct Broadcast;

impl Primitive for Broadcast {
    fn name(&self) -> &'static str {
        "Broadcast"
    }
    fn eval(
        &self,
        _b: &dyn Backend,
        inputs: &[ArrayData],
        out: &[OutputSpec],
    ) -> Result<Vec<ArrayData>> {
        let x = &inputs[0];
        let shape = &out[0].shape;
        let lead = shape.len() - x.ndim();
        let strides: Strides = (0..shape.len())
            .map(|i| {
                if i < lead || x.shape[i - lead] == 1 && shape[i] != 1 {
                    0
                } else {
                    x.strides[i - lead]
                }
            })
            .collect();
        one(x.view(shape.clone(), strides, x.offset))
    }
    fn vjp(&self, p: &[Array], ct: &[Array], _a: &[usize], _o: &[Array]) -> Result<Vec<Array>> {
        Ok(vec![super::autodiff::sum_to_shape(&ct[0], p[0].shape())?])
    }
    fn jvp(&self, _p: &[Array], t: &[Array], _a: &[usize], out: &[Array]) -> Result<Vec<Array>> {
        Ok(vec![ops::broadcast_to(&t[0], out[0].shape())?])
    }
    fn vmap(&self, x: &[Array], ax: &[Option<usize>], out: &[OutputSpec]) -> Result<Batched> {
        // align ranks behind the batch axis, then broadcast the rest
        let x = batching::to_front(&x[0], ax[0])?;
        let b = x.shape()[0];
        let target = &out[0].shape;
        let mut shape = vec![1usize; target.len() + 2 - x.ndim()];
        shape[0] = b;
        shape.extend_from_slice(&x.shape()[1..]);
        let x = ops::reshape_exact(&x, shape.as_slice().into())?;
        batching::at_front(ops::broadcast_to(&x, &batching::with_batch(b, target))?)
    }
    crate::primitive_common!();
}

/// A view with explicit strides and offset over the input's row-major elements.
#[derive(Clone, Debug, PartialEq)]
pub struct AsStrided {
    pub strides: Vec<isize>,
    pub offset: usize,
}

impl Primitive for AsStrided {
    fn name(&self) -> &'static str {
        "AsStrided"
    }
    fn eval(
        &self,
        b: &dyn Backend,
        inputs: &[ArrayData],
        out: &[OutputSpec],
    ) -> Result<Vec<ArrayData>> {
        let x = &inputs[0];
        let x = if x.is_row_contiguous() {
            x.clone()
        } else {
            b.copy(x)?
        };
        let n = x.numel() as isize;
        // Bounds-check the whole view against the input's elements.
        let shape = &out[0].shape;
        if shape.iter().all(|&d| d > 0) {
            let (mut lo, mut hi) = (self.offset as isize, self.offset as isize);
            for (d, s) in shape.iter().zip(&self.strides) {
                let span = (*d as isize - 1) * s;
                if span < 0 {
                    lo += span
                } else {
                    hi += span
                }
            }
            if lo < 0 || hi >= n {
                return Err(crate::index_err!(
                    "[as_strided] The view reaches elements [{lo}, {hi}] outside the input of {n} elements."
                ));
            }
        }
        one(x.view(
            shape.clone(),
            self.strides.iter().copied().collect(),
            x.offset + self.offset,
        ))
    }
    fn vjp(&self, p: &[Array], ct: &[Array], _a: &[usize], out: &[Array]) -> Result<Vec<Array>> {
        // which input element each output element views, then scatter-add back
        let x = &p[0];
        let n = x.size();
        let flat = ops::arange(0.0, n as f64, 1.0, crate::Dtype::Int64)?;
        let flat = ops::reshape_exact(&flat, x.shape().into())?;
        let idx = Array::from_op(
            out[0].shape().into(),
            crate::Dtype::Int64,
            std::sync::Arc::new(self.clone()),
            vec![flat],
        );
        let m = out[0].size();
        let idx = ops::reshape_exact(&idx, [m].as_slice().into())?;
        let g = ops::reshape_exact(&ct[0], [m].as_slice().into())?;
        let zeros = ops::zeros(&[n as i64], x.dtype())?;
        let acc = ops::scatter_along_axis(crate::backend::ScatterMode::Add, &zeros, &idx, &g, 0)?;
        Ok(vec![ops::reshape_exact(&acc, x.shape().into())?])
    }
    fn jvp(&self, _p: &[Array], t: &[Array], _a: &[usize], out: &[Array]) -> Result<Vec<Array>> {
        Ok(vec![Array::from_op(
            out[0].shape().into(),
            t[0].dtype(),
            std::sync::Arc::new(self.clone()),
            vec![t[0].clone()],
        )])
    }
    fn vmap(&self, x: &[Array], ax: &[Option<usize>], out: &[OutputSpec]) -> Result<Batched> {
        // each batch element is one row of the contiguous batch-first input
        let x = ops::contiguous(&batching::to_front(&x[0], ax[0])?)?;
        let row = x.shape()[1..].iter().product::<usize>() as isize;
        let p = AsStrided {
            strides: batching::prepend(row, &self.strides),
            offset: self.offset,
        };
        batching::front(p, &x, Some(0), &out[0])
    }
    crate::primitive_common!();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reshape_without_copy_when_groups_are_contiguous() {
        // transpose of (2,3) -> strides (1,2) shape (3,2): reshape to (6,) needs a copy
        assert!(reshape_strides(&[3, 2], &[1, 3], &[6]).is_none());
        // a column slice (4,3) of a (4,6) array: merging rows is impossible, splitting cols is fine
        assert!(reshape_strides(&[4, 3], &[6, 1], &[12]).is_none());
        assert_eq!(
            reshape_strides(&[4, 3], &[6, 1], &[2, 2, 3])
                .unwrap()
                .as_slice(),
            &[12, 6, 1]
        );
    }
}
