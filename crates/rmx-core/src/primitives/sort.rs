//! Sorting primitives: `Sort` (sort, argsort, partition, argpartition along one axis)
//! and `SearchSorted`. Values differentiate through the arrangement's indices.

use super::one;
use crate::array::{Array, ArrayData};
use crate::backend::Backend;
use crate::dtype::Dtype;
use crate::error::Result;
use crate::ops;
use crate::primitive::{OutputSpec, Primitive};
use std::sync::Arc;

/// A stable sort (`kth` None) or a partition around position `kth`, along `axis`;
/// `arg` gives the uint32 indices of the arrangement instead of the values.
#[derive(Debug, PartialEq, Clone)]
pub struct Sort {
    pub axis: usize,
    pub kth: Option<usize>,
    pub arg: bool,
}

impl Sort {
    pub fn node(&self, x: &Array) -> Array {
        let dtype = if self.arg { Dtype::Uint32 } else { x.dtype() };
        Array::from_op(
            x.shape().into(),
            dtype,
            Arc::new(self.clone()),
            vec![x.clone()],
        )
    }

    /// The indices of the same arrangement (identical for ties: one kernel, one order).
    fn indices(&self, x: &Array) -> Array {
        Sort {
            arg: true,
            ..self.clone()
        }
        .node(x)
    }
}

impl Primitive for Sort {
    fn name(&self) -> &'static str {
        match (self.kth.is_some(), self.arg) {
            (false, false) => "Sort",
            (false, true) => "ArgSort",
            (true, false) => "Partition",
            (true, true) => "ArgPartition",
        }
    }
    fn eval(
        &self,
        b: &dyn Backend,
        inputs: &[ArrayData],
        _out: &[OutputSpec],
    ) -> Result<Vec<ArrayData>> {
        one(b.sort(&inputs[0], self.axis, self.kth, self.arg)?)
    }
    /// Each cotangent goes back to the position its value came from.
    fn vjp(&self, p: &[Array], ct: &[Array], _a: &[usize], _o: &[Array]) -> Result<Vec<Array>> {
        let x = &p[0];
        if self.arg {
            return Ok(vec![ops::zeros_like(x)?]);
        }
        let idx = self.indices(x);
        let zeros = ops::zeros_like(&ct[0])?;
        Ok(vec![ops::put_along_axis(
            &zeros,
            &idx,
            &ct[0],
            Some(self.axis as i64),
        )?])
    }
    fn jvp(&self, p: &[Array], t: &[Array], _a: &[usize], out: &[Array]) -> Result<Vec<Array>> {
        if self.arg {
            return Ok(vec![ops::zeros_like(&out[0])?]);
        }
        let idx = self.indices(&p[0]);
        Ok(vec![ops::take_along_axis(
            &t[0],
            &idx,
            Some(self.axis as i64),
        )?])
    }
    fn vmap(
        &self,
        inputs: &[Array],
        axes: &[Option<usize>],
        _outputs: &[OutputSpec],
    ) -> Result<(Vec<Array>, Vec<Option<usize>>)> {
        let axis = match axes[0] {
            Some(b) if b <= self.axis => self.axis + 1,
            _ => self.axis,
        };
        let prim = Sort {
            axis,
            ..self.clone()
        };
        Ok((vec![prim.node(&inputs[0])], vec![axes[0]]))
    }
    crate::primitive_common!();
}

/// Insertion indices of `values` (input 1) into the sorted 1-d `seq` (input 0).
#[derive(Debug, PartialEq)]
pub struct SearchSorted {
    pub right: bool,
}

impl Primitive for SearchSorted {
    fn name(&self) -> &'static str {
        "SearchSorted"
    }
    fn eval(
        &self,
        b: &dyn Backend,
        inputs: &[ArrayData],
        _out: &[OutputSpec],
    ) -> Result<Vec<ArrayData>> {
        one(b.searchsorted(&inputs[0], &inputs[1], self.right)?)
    }
    /// Integer indices: no gradient reaches either input.
    fn vjp(
        &self,
        p: &[Array],
        _ct: &[Array],
        argnums: &[usize],
        _o: &[Array],
    ) -> Result<Vec<Array>> {
        argnums.iter().map(|&i| ops::zeros_like(&p[i])).collect()
    }
    fn jvp(&self, _p: &[Array], _t: &[Array], _a: &[usize], out: &[Array]) -> Result<Vec<Array>> {
        Ok(vec![ops::zeros_like(&out[0])?])
    }
    /// Batched values search the same sequence; a batch of sequences is not supported.
    fn vmap(
        &self,
        inputs: &[Array],
        axes: &[Option<usize>],
        _outputs: &[OutputSpec],
    ) -> Result<(Vec<Array>, Vec<Option<usize>>)> {
        if axes[0].is_some() {
            return Err(crate::value_err!(
                "[searchsorted] vmap over the sorted sequence is not supported."
            ));
        }
        let out = Array::from_op(
            inputs[1].shape().into(),
            Dtype::Uint32,
            Arc::new(SearchSorted { right: self.right }),
            inputs.to_vec(),
        );
        Ok((vec![out], vec![axes[1]]))
    }
    crate::primitive_common!();
}
