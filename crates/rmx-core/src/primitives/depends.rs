//! `Depends`: outputs equal to the first `n` inputs, evaluated only after the remaining
//! inputs (the dependencies). MLX's `depends`; its eval shares the inputs' buffers.
//! vjp as MLX (cotangents pass to the inputs, dependencies get zeros); jvp and vmap are
//! rmx additions (MLX 0.32.4 has neither): tangents pass through, batching maps onto a
//! `Depends` of the batched arrays.

use super::batching::Batched;
use crate::array::{Array, ArrayData};
use crate::backend::Backend;
use crate::error::Result;
use crate::primitive::{OutputSpec, Primitive};
use std::sync::Arc;

#[derive(Clone, Debug, PartialEq)]
pub struct Depends {
    /// How many of the inputs are passed through (the rest are dependencies).
    pub n: usize,
}

impl Depends {
    /// The outputs: one per passed-through input, same shape and dtype.
    pub fn node(inputs: &[Array], deps: &[Array]) -> Vec<Array> {
        let outs = inputs
            .iter()
            .map(|x| (x.shape().into(), x.dtype()))
            .collect();
        let all: Vec<Array> = inputs.iter().chain(deps).cloned().collect();
        Array::from_multi_op(outs, Arc::new(Depends { n: inputs.len() }), all)
    }
}

impl Primitive for Depends {
    fn name(&self) -> &'static str {
        "Depends"
    }
    fn eval(
        &self,
        _b: &dyn Backend,
        inputs: &[ArrayData],
        _out: &[OutputSpec],
    ) -> Result<Vec<ArrayData>> {
        Ok(inputs[..self.n].to_vec())
    }
    fn vjp(
        &self,
        p: &[Array],
        ct: &[Array],
        argnums: &[usize],
        _o: &[Array],
    ) -> Result<Vec<Array>> {
        argnums
            .iter()
            .map(|&k| {
                if k < self.n {
                    Ok(ct[k].clone())
                } else {
                    crate::ops::zeros_like(&p[k])
                }
            })
            .collect()
    }
    fn jvp(&self, p: &[Array], t: &[Array], argnums: &[usize], _o: &[Array]) -> Result<Vec<Array>> {
        (0..self.n)
            .map(|i| match argnums.iter().position(|&k| k == i) {
                Some(j) => Ok(t[j].clone()),
                None => crate::ops::zeros_like(&p[i]),
            })
            .collect()
    }
    fn vmap(&self, x: &[Array], ax: &[Option<usize>], _out: &[OutputSpec]) -> Result<Batched> {
        let outs = Depends::node(&x[..self.n], &x[self.n..]);
        Ok((outs, ax[..self.n].to_vec()))
    }
    crate::primitive_common!();
}
