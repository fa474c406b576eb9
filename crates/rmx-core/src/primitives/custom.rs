//! `CustomTransforms`: the node behind `custom_function` and `checkpoint`. Its inputs
//! are the function's inputs followed by its (already traced) outputs behind
//! `stop_gradient`; evaluating it passes those outputs through, and its rules call the
//! user's vjp/jvp/vmap instead of differentiating the traced function.

use super::batching::Batched;
use crate::array::{Array, ArrayData};
use crate::backend::Backend;
use crate::error::Result;
use crate::primitive::{OutputSpec, Primitive};
use std::sync::Arc;

/// `f(inputs) -> outputs`.
pub type Fun = Arc<dyn Fn(&[Array]) -> Result<Vec<Array>> + Send + Sync>;
/// `vjp(primals, cotangents, outputs) -> one cotangent per primal`.
pub type VjpFun = Arc<dyn Fn(&[Array], &[Array], &[Array]) -> Result<Vec<Array>> + Send + Sync>;
/// `jvp(primals, tangents, argnums) -> one tangent per output`; `tangents[i]` belongs
/// to primal `argnums[i]`, the others have none.
pub type JvpFun = Arc<dyn Fn(&[Array], &[Array], &[usize]) -> Result<Vec<Array>> + Send + Sync>;
/// `vmap(inputs, axes) -> (outputs, output axes)`.
pub type VmapFun = Arc<dyn Fn(&[Array], &[Option<usize>]) -> Result<Batched> + Send + Sync>;

pub struct CustomTransforms {
    pub num_inputs: usize,
    pub vjp: VjpFun,
    pub jvp: JvpFun,
    pub vmap: VmapFun,
}

impl std::fmt::Debug for CustomTransforms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CustomTransforms({} inputs)", self.num_inputs)
    }
}

impl Primitive for CustomTransforms {
    fn name(&self) -> &'static str {
        "CustomTransforms"
    }
    fn eval(
        &self,
        _b: &dyn Backend,
        inputs: &[ArrayData],
        _out: &[OutputSpec],
    ) -> Result<Vec<ArrayData>> {
        Ok(inputs[self.num_inputs..].to_vec())
    }
    fn vjp(
        &self,
        p: &[Array],
        ct: &[Array],
        argnums: &[usize],
        out: &[Array],
    ) -> Result<Vec<Array>> {
        let n = self.num_inputs;
        let grads = (self.vjp)(&p[..n], ct, out)?;
        if grads.len() != n {
            return Err(crate::value_err!(
                "[custom_function] The vjp returned {} cotangents for {} inputs.",
                grads.len(),
                n
            ));
        }
        argnums
            .iter()
            .map(|&k| {
                let g = &grads[k];
                if g.shape() != p[k].shape() {
                    return Err(crate::value_err!(
                        "[custom_function] The vjp returned a cotangent of shape {:?} for an input of shape {:?}.",
                        g.shape(),
                        p[k].shape()
                    ));
                }
                Ok(g.clone())
            })
            .collect()
    }
    fn jvp(
        &self,
        p: &[Array],
        t: &[Array],
        argnums: &[usize],
        _out: &[Array],
    ) -> Result<Vec<Array>> {
        (self.jvp)(&p[..self.num_inputs], t, argnums)
    }
    fn vmap(
        &self,
        inputs: &[Array],
        axes: &[Option<usize>],
        _out: &[OutputSpec],
    ) -> Result<Batched> {
        let n = self.num_inputs;
        (self.vmap)(&inputs[..n], &axes[..n])
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
