//! The `Primitive` trait: one type per graph operation, owning its evaluation (through
//! the backend's kernel families), its derivative rules and its equality for CSE.

use crate::array::{Array, ArrayData};
use crate::backend::Backend;
use crate::dtype::Dtype;
use crate::error::Result;
use crate::shape::Shape;
use std::any::Any;
use std::fmt::Debug;

/// Shape and dtype of one output, known when the node is built.
#[derive(Clone, Debug, PartialEq)]
pub struct OutputSpec {
    pub shape: Shape,
    pub dtype: Dtype,
}

pub trait Primitive: Send + Sync + Debug + Any {
    /// Short name used in errors and graph dumps ("Add", "Reshape", ...).
    fn name(&self) -> &'static str;

    /// Computes the outputs from materialised inputs.
    fn eval(
        &self,
        backend: &dyn Backend,
        inputs: &[ArrayData],
        outputs: &[OutputSpec],
    ) -> Result<Vec<ArrayData>>;

    /// Vector-Jacobian product: cotangents of the inputs listed in `argnums`.
    fn vjp(
        &self,
        _primals: &[Array],
        _cotangents: &[Array],
        _argnums: &[usize],
        _outputs: &[Array],
    ) -> Result<Vec<Array>> {
        Err(crate::value_err!(
            "[{}] The vjp is not implemented for this primitive.",
            self.name()
        ))
    }

    /// Jacobian-vector product: tangents of the outputs given tangents of `argnums`.
    fn jvp(
        &self,
        _primals: &[Array],
        _tangents: &[Array],
        _argnums: &[usize],
        _outputs: &[Array],
    ) -> Result<Vec<Array>> {
        Err(crate::value_err!(
            "[{}] The jvp is not implemented for this primitive.",
            self.name()
        ))
    }

    /// Vectorised form: inputs carry a batch axis at `axes[i]` (None = not batched);
    /// `outputs` are the unbatched outputs' specs. Returns the batched outputs and
    /// their batch axes (see `primitives::batching` for the shared helpers).
    fn vmap(
        &self,
        _inputs: &[Array],
        _axes: &[Option<usize>],
        _outputs: &[OutputSpec],
    ) -> Result<(Vec<Array>, Vec<Option<usize>>)> {
        Err(crate::value_err!(
            "[{}] vmap is not implemented for this primitive.",
            self.name()
        ))
    }

    /// Inputs whose buffers this primitive may overwrite to produce its output (as MLX's
    /// buffer donation): when nothing else can reach such an input any more, the scheduler
    /// hands it over as the only reference (`Arc::strong_count(&buffer) == 1` in `eval`),
    /// so e.g. a KV-cache `slice_update` writes in place instead of copying the cache, and
    /// `exp(sin(x) * 2)` writes the product and the exp over `sin(x)`'s buffer.
    fn donatable_inputs(&self) -> &'static [usize] {
        &[]
    }

    /// Whether derivatives stop here (stop_gradient): outputs count as constants.
    fn blocks_gradient(&self) -> bool {
        false
    }

    /// Whether `other` computes the same function (same type and parameters); used by CSE.
    fn is_equivalent(&self, _other: &dyn Primitive) -> bool {
        false
    }

    fn as_any(&self) -> &dyn Any;
}

/// Implements `as_any` and a parameter-comparing `is_equivalent` for a primitive that derives `PartialEq`.
#[macro_export]
macro_rules! primitive_common {
    () => {
        fn as_any(&self) -> &dyn std::any::Any {
            self
        }
        fn is_equivalent(&self, other: &dyn $crate::primitive::Primitive) -> bool {
            other
                .as_any()
                .downcast_ref::<Self>()
                .is_some_and(|o| o == self)
        }
    };
}
