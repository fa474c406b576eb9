//! `rmx.core` reductions.

use crate::args;
use crate::array::PyArray;
use crate::convert::to_array;
use crate::device::on_stream;
use crate::errors::PyResultExt;
use pyo3::prelude::*;
use rmx_core::ops;

macro_rules! py_reduce {
    ($($name:ident),* $(,)?) => {$(
        #[pyfunction]
        #[pyo3(signature = (a, /, axis = None, keepdims = false, *, stream = None))]
        pub fn $name(a: &Bound<'_, PyAny>, axis: Option<&Bound<'_, PyAny>>, keepdims: bool, stream: Option<&Bound<'_, PyAny>>) -> PyResult<PyArray> {
            let ax = args::axes(axis)?;
            on_stream(stream, || Ok(ops::$name(&crate::convert::arg_array(a)?, ax.as_deref(), keepdims).py()?.into()))
        }
    )*};
}
py_reduce!(
    sum,
    prod,
    max,
    min,
    mean,
    all,
    any,
    logsumexp,
    count_nonzero
);

#[pyfunction]
#[pyo3(signature = (a, /, axis = None, keepdims = false, ddof = 0, *, stream = None))]
pub fn var(
    a: &Bound<'_, PyAny>,
    axis: Option<&Bound<'_, PyAny>>,
    keepdims: bool,
    ddof: i64,
    stream: Option<&Bound<'_, PyAny>>,
) -> PyResult<PyArray> {
    let ax = args::axes(axis)?;
    on_stream(stream, || {
        Ok(ops::var(
            &crate::convert::arg_array(a)?,
            ax.as_deref(),
            keepdims,
            ddof,
        )
        .py()?
        .into())
    })
}

#[pyfunction]
#[pyo3(name = "std", signature = (a, /, axis = None, keepdims = false, ddof = 0, *, stream = None))]
pub fn std_(
    a: &Bound<'_, PyAny>,
    axis: Option<&Bound<'_, PyAny>>,
    keepdims: bool,
    ddof: i64,
    stream: Option<&Bound<'_, PyAny>>,
) -> PyResult<PyArray> {
    let ax = args::axes(axis)?;
    on_stream(stream, || {
        Ok(ops::std(
            &crate::convert::arg_array(a)?,
            ax.as_deref(),
            keepdims,
            ddof,
        )
        .py()?
        .into())
    })
}

#[pyfunction]
#[pyo3(signature = (a, /, axis = None, keepdims = false, *, stream = None))]
pub fn argmax(
    a: &Bound<'_, PyAny>,
    axis: Option<i64>,
    keepdims: bool,
    stream: Option<&Bound<'_, PyAny>>,
) -> PyResult<PyArray> {
    on_stream(stream, || {
        Ok(ops::argmax(&crate::convert::arg_array(a)?, axis, keepdims)
            .py()?
            .into())
    })
}

#[pyfunction]
#[pyo3(signature = (a, /, axis = None, keepdims = false, *, stream = None))]
pub fn argmin(
    a: &Bound<'_, PyAny>,
    axis: Option<i64>,
    keepdims: bool,
    stream: Option<&Bound<'_, PyAny>>,
) -> PyResult<PyArray> {
    on_stream(stream, || {
        Ok(ops::argmin(&crate::convert::arg_array(a)?, axis, keepdims)
            .py()?
            .into())
    })
}

#[pyfunction]
#[pyo3(signature = (a, /, axis = None, *, precise = false, stream = None))]
pub fn softmax(
    a: &Bound<'_, PyAny>,
    axis: Option<&Bound<'_, PyAny>>,
    precise: bool,
    stream: Option<&Bound<'_, PyAny>>,
) -> PyResult<PyArray> {
    let ax = args::axes(axis)?;
    on_stream(stream, || {
        Ok(
            ops::softmax(&crate::convert::arg_array(a)?, ax.as_deref(), precise)
                .py()?
                .into(),
        )
    })
}

macro_rules! py_scan {
    ($($name:ident),* $(,)?) => {$(
        #[pyfunction]
        #[pyo3(signature = (a, /, axis = None, *, reverse = false, inclusive = true, dtype = None, stream = None))]
        pub fn $name(a: &Bound<'_, PyAny>, axis: Option<i64>, reverse: bool, inclusive: bool, dtype: Option<&Bound<'_, PyAny>>, stream: Option<&Bound<'_, PyAny>>) -> PyResult<PyArray> {
            let d = args::dtype(dtype)?;
            on_stream(stream, || {
                let x = to_array(a, d)?;
                Ok(ops::$name(&x, axis, reverse, inclusive).py()?.into())
            })
        }
    )*};
}
py_scan!(cumsum, cumprod, cummax, cummin, logcumsumexp);

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    macro_rules! add {
        ($($f:ident),* $(,)?) => {$( m.add_function(wrap_pyfunction!($f, m)?)?; )*};
    }
    add!(
        sum,
        prod,
        max,
        min,
        mean,
        all,
        any,
        logsumexp,
        count_nonzero,
        var,
        std_,
        cumsum,
        cumprod,
        cummax,
        cummin,
        logcumsumexp,
        argmax,
        argmin,
        softmax
    );
    Ok(())
}
