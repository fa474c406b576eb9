//! `rmx.core.fft.stft` / `istft` (added to the `fft` submodule by `fft::register`).

use crate::array::PyArray;
use crate::convert::arg_array;
use crate::device::on_stream;
use crate::errors::PyResultExt;
use pyo3::prelude::*;
use rmx_core::ops::stft as s;
use rmx_core::Array;

type Any<'py> = Bound<'py, PyAny>;

fn opt_array(x: Option<&Any<'_>>) -> PyResult<Option<Array>> {
    match x {
        Some(x) if !x.is_none() => Ok(Some(arg_array(x)?)),
        _ => Ok(None),
    }
}

#[pyfunction]
#[pyo3(signature = (x, n_fft = 2048, hop_length = None, win_length = None, window = None, center = true, pad_mode = "reflect", norm = "backward", onesided = None, stream = None))]
#[allow(clippy::too_many_arguments)]
fn stft(
    x: &Any<'_>,
    n_fft: i64,
    hop_length: Option<i64>,
    win_length: Option<i64>,
    window: Option<&Any<'_>>,
    center: bool,
    pad_mode: &str,
    norm: &str,
    onesided: Option<bool>,
    stream: Option<&Any<'_>>,
) -> PyResult<PyArray> {
    let (x, w) = (arg_array(x)?, opt_array(window)?);
    on_stream(stream, || {
        Ok(s::stft(
            &x,
            n_fft,
            hop_length,
            win_length,
            w.as_ref(),
            center,
            pad_mode,
            norm,
            onesided,
        )
        .py()?
        .into())
    })
}

#[pyfunction]
#[pyo3(signature = (stft_matrix, n_fft = None, hop_length = None, win_length = None, window = None, center = true, norm = "backward", onesided = None, length = None, stream = None))]
#[allow(clippy::too_many_arguments)]
fn istft(
    stft_matrix: &Any<'_>,
    n_fft: Option<i64>,
    hop_length: Option<i64>,
    win_length: Option<i64>,
    window: Option<&Any<'_>>,
    center: bool,
    norm: &str,
    onesided: Option<bool>,
    length: Option<i64>,
    stream: Option<&Any<'_>>,
) -> PyResult<PyArray> {
    let (x, w) = (arg_array(stft_matrix)?, opt_array(window)?);
    on_stream(stream, || {
        Ok(s::istft(
            &x,
            n_fft,
            hop_length,
            win_length,
            w.as_ref(),
            center,
            norm,
            onesided,
            length,
        )
        .py()?
        .into())
    })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(stft, m)?)?;
    m.add_function(wrap_pyfunction!(istft, m)?)?;
    Ok(())
}
