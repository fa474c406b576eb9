//! `rmx.core` elementwise functions: thin wrappers over `rmx_core::ops`.

use crate::array::PyArray;
use crate::convert::operands;
use crate::device::on_stream;
use crate::errors::PyResultExt;
use pyo3::prelude::*;
use rmx_core::{ops, Scalar};

/// Defines one wrapper per unary op and `register_unary`, which adds them all.
macro_rules! py_unary {
    ($($name:ident),* $(,)?) => {
        $(
            #[pyfunction]
            #[pyo3(signature = (a, /, *, stream = None))]
            pub fn $name(a: &Bound<'_, PyAny>, stream: Option<&Bound<'_, PyAny>>) -> PyResult<PyArray> {
                on_stream(stream, || Ok(PyArray::from(ops::$name(&crate::convert::arg_array(a)?).py()?)))
            }
        )*
        fn register_unary(m: &Bound<'_, PyModule>) -> PyResult<()> {
            $( m.add_function(wrap_pyfunction!($name, m)?)?; )*
            Ok(())
        }
    };
}
py_unary!(
    abs,
    negative,
    sign,
    sqrt,
    rsqrt,
    square,
    reciprocal,
    exp,
    expm1,
    log,
    log1p,
    log2,
    log10,
    sin,
    cos,
    tan,
    arcsin,
    arccos,
    arctan,
    sinh,
    cosh,
    tanh,
    arcsinh,
    arccosh,
    arctanh,
    floor,
    ceil,
    erf,
    erfinv,
    sigmoid,
    logical_not,
    bitwise_invert,
    real,
    imag,
    conjugate,
    isnan,
    isinf,
    isposinf,
    isneginf,
    isfinite,
    degrees,
    radians,
    trunc,
    positive,
);

#[pyfunction]
#[pyo3(signature = (a, /, *, stream = None))]
pub fn conj(a: &Bound<'_, PyAny>, stream: Option<&Bound<'_, PyAny>>) -> PyResult<PyArray> {
    conjugate(a, stream)
}

/// Defines one wrapper per binary op and `register_binary`, which adds them all.
macro_rules! py_binary {
    ($($name:ident),* $(,)?) => {
        $(
            #[pyfunction]
            #[pyo3(signature = (a, b, /, *, stream = None))]
            pub fn $name(a: &Bound<'_, PyAny>, b: &Bound<'_, PyAny>, stream: Option<&Bound<'_, PyAny>>) -> PyResult<PyArray> {
                on_stream(stream, || {
                    let (x, y) = operands(a, b)?;
                    Ok(PyArray::from(ops::$name(&x, &y).py()?))
                })
            }
        )*
        fn register_binary(m: &Bound<'_, PyModule>) -> PyResult<()> {
            $( m.add_function(wrap_pyfunction!($name, m)?)?; )*
            Ok(())
        }
    };
}
py_binary!(
    add,
    subtract,
    multiply,
    divide,
    power,
    maximum,
    minimum,
    remainder,
    floor_divide,
    arctan2,
    logaddexp,
    equal,
    not_equal,
    less,
    less_equal,
    greater,
    greater_equal,
    logical_and,
    logical_or,
    bitwise_and,
    bitwise_or,
    bitwise_xor,
    left_shift,
    right_shift,
    logical_xor,
);

#[pyfunction]
#[pyo3(signature = (a, b, /, *, stream = None))]
pub fn divmod(
    a: &Bound<'_, PyAny>,
    b: &Bound<'_, PyAny>,
    stream: Option<&Bound<'_, PyAny>>,
) -> PyResult<Vec<PyArray>> {
    on_stream(stream, || {
        let (x, y) = operands(a, b)?;
        let (q, r) = ops::divmod(&x, &y).py()?;
        Ok(vec![q.into(), r.into()])
    })
}

#[pyfunction]
#[pyo3(signature = (a, /, decimals = 0, *, stream = None))]
pub fn round(
    a: &Bound<'_, PyAny>,
    decimals: i32,
    stream: Option<&Bound<'_, PyAny>>,
) -> PyResult<PyArray> {
    on_stream(stream, || {
        Ok(ops::round(&crate::convert::arg_array(a)?, decimals)
            .py()?
            .into())
    })
}

#[pyfunction]
#[pyo3(name = "where", signature = (condition, x, y, /, *, stream = None))]
pub fn where_(
    condition: &Bound<'_, PyAny>,
    x: &Bound<'_, PyAny>,
    y: &Bound<'_, PyAny>,
    stream: Option<&Bound<'_, PyAny>>,
) -> PyResult<PyArray> {
    on_stream(stream, || {
        let c = crate::convert::arg_array(condition)?;
        let (a, b) = operands(x, y)?;
        Ok(ops::where_(&c, &a, &b).py()?.into())
    })
}

#[pyfunction]
#[pyo3(signature = (a, /, a_min, a_max, *, stream = None))]
pub fn clip(
    a: &Bound<'_, PyAny>,
    a_min: &Bound<'_, PyAny>,
    a_max: &Bound<'_, PyAny>,
    stream: Option<&Bound<'_, PyAny>>,
) -> PyResult<PyArray> {
    on_stream(stream, || {
        let x = crate::convert::arg_array(a)?;
        let bound = |o: &Bound<'_, PyAny>| -> PyResult<Option<rmx_core::Array>> {
            if o.is_none() {
                Ok(None)
            } else {
                Ok(Some(crate::convert::to_operand(o, x.dtype())?))
            }
        };
        let (lo, hi) = (bound(a_min)?, bound(a_max)?);
        Ok(ops::clip(&x, lo.as_ref(), hi.as_ref()).py()?.into())
    })
}

#[pyfunction]
#[pyo3(signature = (a, nan = 0.0, posinf = None, neginf = None, *, stream = None))]
pub fn nan_to_num(
    a: &Bound<'_, PyAny>,
    nan: f64,
    posinf: Option<f64>,
    neginf: Option<f64>,
    stream: Option<&Bound<'_, PyAny>>,
) -> PyResult<PyArray> {
    on_stream(stream, || {
        Ok(
            ops::nan_to_num(&crate::convert::arg_array(a)?, nan, posinf, neginf)
                .py()?
                .into(),
        )
    })
}

#[pyfunction]
#[pyo3(signature = (a, b, /, rtol = 1e-5, atol = 1e-8, *, equal_nan = false, stream = None))]
pub fn isclose(
    a: &Bound<'_, PyAny>,
    b: &Bound<'_, PyAny>,
    rtol: f64,
    atol: f64,
    equal_nan: bool,
    stream: Option<&Bound<'_, PyAny>>,
) -> PyResult<PyArray> {
    on_stream(stream, || {
        let (x, y) = array_pair("isclose", a, b)?;
        Ok(ops::isclose(&x, &y, rtol, atol, equal_nan).py()?.into())
    })
}

#[pyfunction]
#[pyo3(signature = (a, b, /, rtol = 1e-5, atol = 1e-8, *, equal_nan = false, stream = None))]
pub fn allclose(
    a: &Bound<'_, PyAny>,
    b: &Bound<'_, PyAny>,
    rtol: f64,
    atol: f64,
    equal_nan: bool,
    stream: Option<&Bound<'_, PyAny>>,
) -> PyResult<PyArray> {
    on_stream(stream, || {
        let (x, y) = array_pair("allclose", a, b)?;
        Ok(ops::allclose(&x, &y, rtol, atol, equal_nan).py()?.into())
    })
}

#[pyfunction]
#[pyo3(signature = (a, b, /, equal_nan = false, *, stream = None))]
pub fn array_equal(
    a: &Bound<'_, PyAny>,
    b: &Bound<'_, PyAny>,
    equal_nan: bool,
    stream: Option<&Bound<'_, PyAny>>,
) -> PyResult<PyArray> {
    on_stream(stream, || {
        let (x, y) = operands(a, b)?;
        Ok(ops::array_equal(&x, &y, equal_nan).py()?.into())
    })
}

/// Both arguments must already be arrays (MLX's signature takes `array`, not scalars).
fn array_pair(
    name: &str,
    a: &Bound<'_, PyAny>,
    b: &Bound<'_, PyAny>,
) -> PyResult<(rmx_core::Array, rmx_core::Array)> {
    let get = |o: &Bound<'_, PyAny>| -> PyResult<rmx_core::Array> {
        match o.downcast::<PyArray>() {
            Ok(x) => Ok(x.borrow().inner.clone()),
            Err(_) => Err(pyo3::exceptions::PyTypeError::new_err(format!(
                "{name}(): arguments must be arrays"
            ))),
        }
    };
    Ok((get(a)?, get(b)?))
}

/// A Python scalar argument as a core scalar (for fill values).
pub fn scalar_arg(o: &Bound<'_, PyAny>) -> PyResult<Scalar> {
    crate::convert::py_scalar(o)?
        .ok_or_else(|| pyo3::exceptions::PyTypeError::new_err("expected a Python scalar"))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    register_unary(m)?;
    register_binary(m)?;
    macro_rules! add {
        ($($f:ident),* $(,)?) => {$( m.add_function(wrap_pyfunction!($f, m)?)?; )*};
    }
    add!(
        conj,
        divmod,
        round,
        where_,
        clip,
        nan_to_num,
        isclose,
        allclose,
        array_equal
    );
    Ok(())
}
