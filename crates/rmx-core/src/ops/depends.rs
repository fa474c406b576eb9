//! `depends(inputs, dependencies)`: the inputs, unchanged, but evaluated after the
//! dependencies (MLX's graph-ordering op).

use crate::array::Array;
use crate::error::Result;
use crate::primitives::depends::Depends;

pub fn depends(inputs: &[Array], dependencies: &[Array]) -> Result<Vec<Array>> {
    // MLX 0.32.4 crashes on an empty input list; a clear error is better.
    if inputs.is_empty() {
        return Err(crate::value_err!("[depends] Received no inputs."));
    }
    if dependencies.is_empty() {
        return Ok(inputs.to_vec());
    }
    Ok(Depends::node(inputs, dependencies))
}
