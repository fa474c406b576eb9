//! `rmx.core.fft`, the submodule mirroring `mlx.core.fft`.

use crate::args;
use crate::array::PyArray;
use crate::convert::arg_array;
use crate::device::on_stream;
use crate::errors::PyResultExt;
use pyo3::prelude::*;
use rmx_core::ops::fft::{self as f, FftKind, FftNorm};

type Any<'py> = Bound<'py, PyAny>;

const FFT: FftKind = FftKind {
    inverse: false,
    real: false,
};
const IFFT: FftKind = FftKind {
    inverse: true,
    real: false,
};
const RFFT: FftKind = FftKind {
    inverse: false,
    real: true,
};
const IRFFT: FftKind = FftKind {
    inverse: true,
    real: true,
};

fn name(kind: FftKind) -> &'static str {
    match (kind.inverse, kind.real) {
        (false, false) => "fftn",
        (true, false) => "ifftn",
        (false, true) => "rfftn",
        (true, true) => "irfftn",
    }
}

fn one_d(
    a: &Any<'_>,
    n: Option<i64>,
    axis: i64,
    norm: &str,
    stream: Option<&Any<'_>>,
    kind: FftKind,
) -> PyResult<PyArray> {
    let x = arg_array(a)?;
    let nm = FftNorm::parse(name(kind).trim_end_matches('n'), norm).py()?;
    on_stream(stream, || Ok(f::fft1(&x, n, axis, kind, nm).py()?.into()))
}

fn n_d(
    a: &Any<'_>,
    s: Option<Vec<i64>>,
    axes: Option<Vec<i64>>,
    norm: &str,
    stream: Option<&Any<'_>>,
    kind: FftKind,
) -> PyResult<PyArray> {
    let x = arg_array(a)?;
    let nm = FftNorm::parse(name(kind), norm).py()?;
    on_stream(stream, || {
        Ok(
            f::fftn(name(kind), &x, s.as_deref(), axes.as_deref(), kind, nm)
                .py()?
                .into(),
        )
    })
}

macro_rules! py_fft1 {
    ($($name:ident => $kind:expr),* $(,)?) => {$(
        #[pyfunction]
        #[pyo3(signature = (a, n = None, axis = -1, norm = "backward", stream = None))]
        fn $name(a: &Any<'_>, n: Option<i64>, axis: i64, norm: &str, stream: Option<&Any<'_>>) -> PyResult<PyArray> {
            one_d(a, n, axis, norm, stream, $kind)
        }
    )*};
}
py_fft1!(fft => FFT, ifft => IFFT, rfft => RFFT, irfft => IRFFT);

macro_rules! py_fftn {
    ($($name:ident($($default:tt)*) => $kind:expr),* $(,)?) => {$(
        #[pyfunction]
        #[pyo3(signature = (a, s = None, axes = $($default)*, norm = "backward", stream = None))]
        fn $name(a: &Any<'_>, s: Option<Vec<i64>>, axes: Option<Vec<i64>>, norm: &str, stream: Option<&Any<'_>>) -> PyResult<PyArray> {
            n_d(a, s, axes, norm, stream, $kind)
        }
    )*};
}
py_fftn!(
    fft2(Some(vec![-2, -1])) => FFT, ifft2(Some(vec![-2, -1])) => IFFT,
    rfft2(Some(vec![-2, -1])) => RFFT, irfft2(Some(vec![-2, -1])) => IRFFT,
    fftn(None) => FFT, ifftn(None) => IFFT, rfftn(None) => RFFT, irfftn(None) => IRFFT,
);

#[pyfunction]
#[pyo3(signature = (n, d = 1.0, stream = None))]
fn fftfreq(n: i64, d: f64, stream: Option<&Any<'_>>) -> PyResult<PyArray> {
    on_stream(stream, || Ok(f::fftfreq(n, d).py()?.into()))
}

#[pyfunction]
#[pyo3(signature = (n, d = 1.0, stream = None))]
fn rfftfreq(n: i64, d: f64, stream: Option<&Any<'_>>) -> PyResult<PyArray> {
    on_stream(stream, || Ok(f::rfftfreq(n, d).py()?.into()))
}

#[pyfunction]
#[pyo3(signature = (a, axes = None, stream = None))]
fn fftshift(a: &Any<'_>, axes: Option<&Any<'_>>, stream: Option<&Any<'_>>) -> PyResult<PyArray> {
    let (x, ax) = (arg_array(a)?, args::axes(axes)?);
    on_stream(stream, || Ok(f::fftshift(&x, ax.as_deref()).py()?.into()))
}

#[pyfunction]
#[pyo3(signature = (a, axes = None, stream = None))]
fn ifftshift(a: &Any<'_>, axes: Option<&Any<'_>>, stream: Option<&Any<'_>>) -> PyResult<PyArray> {
    let (x, ax) = (arg_array(a)?, args::axes(axes)?);
    on_stream(stream, || Ok(f::ifftshift(&x, ax.as_deref()).py()?.into()))
}

pub fn register(parent: &Bound<'_, PyModule>) -> PyResult<()> {
    let m = PyModule::new(parent.py(), "fft")?;
    macro_rules! add {
        ($($f:ident),* $(,)?) => {$( m.add_function(wrap_pyfunction!($f, &m)?)?; )*};
    }
    add!(
        fft, ifft, rfft, irfft, fft2, ifft2, rfft2, irfft2, fftn, ifftn, rfftn, irfftn, fftfreq,
        rfftfreq, fftshift, ifftshift
    );
    crate::fft_stft::register(&m)?;
    parent.add_submodule(&m)
}
