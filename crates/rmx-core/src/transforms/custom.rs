//! `custom_function` and `checkpoint`: functions whose transforms are given by the
//! user (or, for checkpoint, recompute the function instead of keeping its activations).
//! Undefined rules fall back to transforming the function itself, as in MLX.

use crate::array::Array;
use crate::error::Result;
use crate::ops;
use crate::primitives::autodiff::full_tangents;
use crate::primitives::custom::{CustomTransforms, Fun, JvpFun, VjpFun, VmapFun};
use std::sync::Arc;

/// A function with optional user-defined vjp, jvp and vmap rules.
#[derive(Clone)]
pub struct CustomFunction {
    fun: Fun,
    vjp: Option<VjpFun>,
    jvp: Option<JvpFun>,
    vmap: Option<VmapFun>,
}

impl CustomFunction {
    pub fn new(fun: Fun) -> Self {
        CustomFunction {
            fun,
            vjp: None,
            jvp: None,
            vmap: None,
        }
    }
    pub fn with_vjp(mut self, vjp: VjpFun) -> Self {
        self.vjp = Some(vjp);
        self
    }
    pub fn with_jvp(mut self, jvp: JvpFun) -> Self {
        self.jvp = Some(jvp);
        self
    }
    pub fn with_vmap(mut self, vmap: VmapFun) -> Self {
        self.vmap = Some(vmap);
        self
    }

    /// Runs the function; its outputs carry the custom rules into later transforms.
    pub fn call(&self, inputs: &[Array]) -> Result<Vec<Array>> {
        let outputs = (self.fun)(inputs)?;
        let fun = self.fun.clone();
        let vjp = self.vjp.clone().unwrap_or_else(|| {
            let fun = fun.clone();
            Arc::new(move |p: &[Array], ct: &[Array], _o: &[Array]| {
                Ok(super::vjp(|x| fun(x), p, ct)?.1)
            })
        });
        let jvp = self.jvp.clone().unwrap_or_else(|| {
            let fun = fun.clone();
            Arc::new(move |p: &[Array], t: &[Array], argnums: &[usize]| {
                let tangents = full_tangents(p, t, argnums)?;
                Ok(super::jvp(|x| fun(x), p, &tangents)?.1)
            })
        });
        let vmap = self.vmap.clone().unwrap_or_else(|| {
            let fun = fun.clone();
            Arc::new(move |x: &[Array], axes: &[Option<usize>]| {
                let axes: Vec<Option<i64>> = axes.iter().map(|a| a.map(|a| a as i64)).collect();
                let (outs, oaxes, _) = super::vmap_trace(|y| fun(y), x, &axes)?;
                Ok((outs, oaxes))
            })
        });
        let prim = CustomTransforms {
            num_inputs: inputs.len(),
            vjp,
            jvp,
            vmap,
        };
        let mut node_inputs = inputs.to_vec();
        for o in &outputs {
            node_inputs.push(ops::stop_gradient(o)?);
        }
        let specs = outputs
            .iter()
            .map(|o| (o.shape().into(), o.dtype()))
            .collect();
        Ok(Array::from_multi_op(specs, Arc::new(prim), node_inputs))
    }
}

/// `fun` with gradient checkpointing: the backward pass recomputes `fun` from its
/// inputs instead of keeping its intermediate activations alive. That is exactly the
/// default vjp of a custom function (which only sees the inputs and the outputs).
pub fn checkpoint(fun: Fun) -> CustomFunction {
    CustomFunction::new(fun)
}
