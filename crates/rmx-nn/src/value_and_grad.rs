//! `value_and_grad` for modules (MLX's `nn.value_and_grad`): the loss of a closure over
//! the model and its gradient with respect to each trainable parameter, by name.
//!
//! The trainable parameters are handed to `rmx_core::transforms::value_and_grad` as the
//! differentiated inputs; inside the traced function the model's parameters are swapped
//! for the traced arrays, the closure runs, and the original arrays are put back
//! afterwards (also when the closure fails).

use crate::{Module, Params};
use rmx_core::transforms::autodiff;
use rmx_core::{Array, Result};

/// Returns `g(model, inputs) -> (loss, grads)` where `loss = f(model, inputs)` (a
/// scalar) and `grads` maps each trainable parameter name to its gradient.
pub fn value_and_grad<M, F>(f: F) -> impl Fn(&mut M, &[Array]) -> Result<(Array, Params)>
where
    M: Module,
    F: Fn(&M, &[Array]) -> Result<Array>,
{
    move |model: &mut M, inputs: &[Array]| {
        let (names, values): (Vec<String>, Vec<Array>) =
            model.trainable_parameters().into_iter().unzip();
        let originals: Params = names.iter().cloned().zip(values.iter().cloned()).collect();
        let argnums: Vec<usize> = (0..values.len()).collect();
        let traced = autodiff::value_and_grad(
            |traced: &[Array]| {
                let subst: Params = names.iter().cloned().zip(traced.iter().cloned()).collect();
                model.update_partial(&subst)?;
                Ok(vec![f(&*model, inputs)?])
            },
            &values,
            &argnums,
        );
        model.update_partial(&originals)?;
        let (outputs, grads) = traced?;
        let loss = outputs.into_iter().next().expect("one output");
        Ok((loss, names.into_iter().zip(grads).collect()))
    }
}
