//! The fused `fast` primitives (MLX's `mx.fast`): `Norm` (rms_norm, layer_norm), `AddRmsNorm`
//! (an rmx extension), `Rope`, `RopeKvUpdate`, `SwigluLinear` and `RmsNormLinear` (rmx
//! extensions) and `Attention`. Each evaluates through one backend kernel and keeps its composite
//! definition (the same function from ordinary ops, as MLX's fallback writes it), which
//! the derivative and vmap rules that have no cheaper form differentiate or vectorize.

pub mod attention;
pub mod norm;
pub mod norm_linear;
pub mod rope;
pub mod rope_kv;
pub mod swiglu;

use super::batching::Batched;
use crate::array::Array;
use crate::error::Result;

/// `vjp`, `jvp` and `vmap` of a fused primitive through its definition from ordinary ops,
/// the method `$definition(&self, &[Array]) -> Result<Vec<Array>>` (one array per output):
/// the rules of the rmx extensions, which have no cheaper form.
macro_rules! rules_from_definition {
    ($definition:ident) => {
        fn vjp(
            &self,
            p: &[$crate::array::Array],
            ct: &[$crate::array::Array],
            argnums: &[usize],
            _o: &[$crate::array::Array],
        ) -> $crate::error::Result<Vec<$crate::array::Array>> {
            $crate::primitives::fast::multi_composite_vjp(&|x| self.$definition(x), p, ct, argnums)
        }
        fn jvp(
            &self,
            p: &[$crate::array::Array],
            t: &[$crate::array::Array],
            argnums: &[usize],
            _o: &[$crate::array::Array],
        ) -> $crate::error::Result<Vec<$crate::array::Array>> {
            $crate::primitives::fast::multi_composite_jvp(&|x| self.$definition(x), p, t, argnums)
        }
        fn vmap(
            &self,
            x: &[$crate::array::Array],
            ax: &[Option<usize>],
            _out: &[$crate::primitive::OutputSpec],
        ) -> $crate::error::Result<$crate::primitives::batching::Batched> {
            $crate::primitives::fast::multi_composite_vmap(&|y| self.$definition(y), x, ax)
        }
    };
}
pub(crate) use rules_from_definition;

/// A composite definition: the primitive's inputs to its one output.
pub(crate) type Composite<'a> = &'a dyn Fn(&[Array]) -> Result<Array>;
/// A composite definition of a primitive with several outputs.
pub(crate) type MultiComposite<'a> = &'a dyn Fn(&[Array]) -> Result<Vec<Array>>;

/// Cotangents of `argnums` through the composite definition.
pub(crate) fn composite_vjp(
    f: Composite<'_>,
    p: &[Array],
    ct: &[Array],
    argnums: &[usize],
) -> Result<Vec<Array>> {
    multi_composite_vjp(&|x| Ok(vec![f(x)?]), p, &ct[..1], argnums)
}

/// `composite_vjp` for several outputs, one cotangent each.
pub(crate) fn multi_composite_vjp(
    f: MultiComposite<'_>,
    p: &[Array],
    ct: &[Array],
    argnums: &[usize],
) -> Result<Vec<Array>> {
    let (_, grads) = crate::transforms::vjp(f, p, ct)?;
    Ok(argnums.iter().map(|&k| grads[k].clone()).collect())
}

/// The output's tangent through the composite definition.
pub(crate) fn composite_jvp(
    f: Composite<'_>,
    p: &[Array],
    t: &[Array],
    argnums: &[usize],
) -> Result<Vec<Array>> {
    multi_composite_jvp(&|x| Ok(vec![f(x)?]), p, t, argnums)
}

/// The outputs' tangents through a composite definition with several outputs.
pub(crate) fn multi_composite_jvp(
    f: MultiComposite<'_>,
    p: &[Array],
    t: &[Array],
    argnums: &[usize],
) -> Result<Vec<Array>> {
    let tangents = super::autodiff::full_tangents(p, t, argnums)?;
    Ok(crate::transforms::jvp(f, p, &tangents)?.1)
}

/// The composite definition vectorized (used where the batch axis does not map onto
/// the primitive's own batch dimensions).
pub(crate) fn composite_vmap(
    f: Composite<'_>,
    x: &[Array],
    ax: &[Option<usize>],
) -> Result<Batched> {
    multi_composite_vmap(&|y| Ok(vec![f(y)?]), x, ax)
}

/// `composite_vmap` for several outputs.
pub(crate) fn multi_composite_vmap(
    f: MultiComposite<'_>,
    x: &[Array],
    ax: &[Option<usize>],
) -> Result<Batched> {
    let axes: Vec<Option<i64>> = ax.iter().map(|a| a.map(|a| a as i64)).collect();
    let (outs, oaxes, _) = crate::transforms::vmap_trace(f, x, &axes)?;
    Ok((outs, oaxes))
}
