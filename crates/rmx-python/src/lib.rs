//! Python bindings: the `rmx._rmx` extension that `rmx.core` re-exports. A thin layer:
//! argument parsing and conversions only; every semantic lives in `rmx_core`.

/// Graph building and evaluation allocate many small objects per op (nodes, array
/// handles, 0-d buffers); mimalloc serves them faster than glibc's malloc.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod args;
mod array;
mod compile;
mod convert;
mod device;
mod dtype;
mod errors;
mod export;
mod fast;
mod fast_cross_entropy;
mod fast_gated_delta;
mod fft;
mod fft_stft;
mod indexing;
mod io;
mod linalg;
mod misc;
mod misc_ops;
mod ops_conv;
mod ops_creation;
mod ops_einsum;
mod ops_elementwise;
mod ops_gather_mm;
mod ops_qqmm;
mod ops_quantized;
mod ops_reduce;
mod ops_shape;
mod ops_sort;
mod random;
mod stream;
mod transforms;

use pyo3::prelude::*;

#[pymodule]
fn _rmx(m: &Bound<'_, PyModule>) -> PyResult<()> {
    // With the `cuda` feature, a CUDA device found at import becomes `mx.gpu` (and the
    // default device, as in MLX); without one nothing changes.
    #[cfg(feature = "cuda")]
    rmx_cuda::init();
    m.add_class::<array::PyArray>()?;
    m.add_class::<array::ArrayAt>()?;
    m.add_class::<array::ArrayAtIndex>()?;
    m.add_class::<dtype::PyDtype>()?;
    m.add_class::<dtype::PyDtypeCategory>()?;
    m.add_class::<dtype::PyFinfo>()?;
    m.add_class::<dtype::PyIinfo>()?;
    for d in rmx_core::dtype::ALL_DTYPES {
        let name = if d == rmx_core::Dtype::Bool {
            "bool_"
        } else {
            d.name()
        };
        m.add(name, dtype::PyDtype(d))?;
    }
    for c in dtype::CATEGORIES {
        m.add(c.name(), dtype::PyDtypeCategory(c))?;
    }
    m.add("pi", std::f64::consts::PI)?;
    m.add("e", std::f64::consts::E)?;
    m.add("inf", f64::INFINITY)?;
    m.add("nan", f64::NAN)?;
    m.add("euler_gamma", 0.577_215_664_901_532_9_f64)?;
    m.add("newaxis", m.py().None())?;
    m.add_function(wrap_pyfunction!(dtype::issubdtype, m)?)?;
    m.add_function(wrap_pyfunction!(dtype::isdtype, m)?)?;
    m.add_function(wrap_pyfunction!(dtype::can_cast, m)?)?;
    m.add_function(wrap_pyfunction!(dtype::result_type, m)?)?;
    m.add_function(wrap_pyfunction!(dtype::_dtype_from_name, m)?)?;
    device::register(m)?;
    stream::register(m)?;
    ops_creation::register(m)?;
    ops_elementwise::register(m)?;
    ops_reduce::register(m)?;
    ops_shape::register(m)?;
    ops_sort::register(m)?;
    ops_quantized::register(m)?;
    ops_conv::register(m)?;
    random::register(m)?;
    fft::register(m)?;
    fast::register(m)?;
    misc::register(m)?;
    transforms::register(m)?;
    compile::register(m)?;
    export::register(m)?;
    io::register(m)?;
    misc_ops::register(m)?;
    ops_einsum::register(m)?;
    ops_gather_mm::register(m)?;
    ops_qqmm::register(m)?;
    linalg::register(m)?;
    Ok(())
}
