//! Array-API names MLX 0.32.4 added: `minmax`, `cumulative_sum`, `cumulative_prod`.

use crate::array::Array;
use crate::error::Result;

use super::reduce::{cumprod, cumsum, max, min};

/// `(min(a), max(a))` over `axes` (all by default), MLX's order and errors (min's first).
pub fn minmax(a: &Array, axes: Option<&[i64]>, keepdims: bool) -> Result<(Array, Array)> {
    Ok((min(a, axes, keepdims)?, max(a, axes, keepdims)?))
}

/// The array-API name of `cumsum` (in MLX the same function object).
pub fn cumulative_sum(
    a: &Array,
    axis: Option<i64>,
    reverse: bool,
    inclusive: bool,
) -> Result<Array> {
    cumsum(a, axis, reverse, inclusive)
}

/// The array-API name of `cumprod`.
pub fn cumulative_prod(
    a: &Array,
    axis: Option<i64>,
    reverse: bool,
    inclusive: bool,
) -> Result<Array> {
    cumprod(a, axis, reverse, inclusive)
}
