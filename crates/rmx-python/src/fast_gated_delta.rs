//! `rmx.core.fast.gated_delta_update` (added to the `fast` submodule by `fast::register`).

use crate::array::PyArray;
use crate::convert::arg_array;
use crate::device::on_stream;
use crate::errors::PyResultExt;
use pyo3::prelude::*;
use rmx_core::Array;

type Any<'py> = Bound<'py, PyAny>;

fn opt_array(x: Option<&Any<'_>>) -> PyResult<Option<Array>> {
    match x {
        Some(x) if !x.is_none() => Ok(Some(arg_array(x)?)),
        _ => Ok(None),
    }
}

#[pyfunction]
#[pyo3(signature = (q, k, v, gamma, beta, initial_state = None, mask = None, stream = None))]
#[allow(clippy::too_many_arguments)]
fn gated_delta_update(
    q: &Any<'_>,
    k: &Any<'_>,
    v: &Any<'_>,
    gamma: &Any<'_>,
    beta: &Any<'_>,
    initial_state: Option<&Any<'_>>,
    mask: Option<&Any<'_>>,
    stream: Option<&Any<'_>>,
) -> PyResult<Vec<PyArray>> {
    let (q, k, v) = (arg_array(q)?, arg_array(k)?, arg_array(v)?);
    let (g, b) = (arg_array(gamma)?, arg_array(beta)?);
    let (s, m) = (opt_array(initial_state)?, opt_array(mask)?);
    on_stream(stream, || {
        let outs = rmx_core::ops::fast_gated_delta::gated_delta_update(
            &q,
            &k,
            &v,
            &g,
            &b,
            s.as_ref(),
            m.as_ref(),
        )
        .py()?;
        Ok(outs.into_iter().map(PyArray::from).collect())
    })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(gated_delta_update, m)?)
}
