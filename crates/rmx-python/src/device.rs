//! Devices and streams (`mx.cpu`, `mx.gpu`, `Device`, `Stream`, `default_device`, ...)
//! and the `stream=` argument every op accepts.

use crate::errors::PyResultExt;
use pyo3::prelude::*;
use rmx_core::device::{self, Device, DeviceType, Stream};

#[pyclass(name = "DeviceType", module = "rmx.core", eq, eq_int, frozen, hash)]
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum PyDeviceType {
    #[pyo3(name = "cpu")]
    Cpu,
    #[pyo3(name = "gpu")]
    Gpu,
}

#[pymethods]
impl PyDeviceType {
    fn __repr__(&self) -> &'static str {
        match self {
            PyDeviceType::Cpu => "DeviceType.cpu",
            PyDeviceType::Gpu => "DeviceType.gpu",
        }
    }
}

impl From<PyDeviceType> for DeviceType {
    fn from(d: PyDeviceType) -> Self {
        match d {
            PyDeviceType::Cpu => DeviceType::Cpu,
            PyDeviceType::Gpu => DeviceType::Gpu,
        }
    }
}

#[pyclass(name = "Device", module = "rmx.core", frozen, eq)]
#[derive(Clone, Copy, PartialEq)]
pub struct PyDevice(pub Device);

#[pymethods]
impl PyDevice {
    #[new]
    #[pyo3(signature = (r#type, index = 0))]
    fn new(r#type: PyDeviceType, index: usize) -> Self {
        PyDevice(Device {
            kind: r#type.into(),
            index,
        })
    }
    #[getter]
    fn r#type(&self) -> PyDeviceType {
        match self.0.kind {
            DeviceType::Cpu => PyDeviceType::Cpu,
            DeviceType::Gpu => PyDeviceType::Gpu,
        }
    }
    fn __repr__(&self) -> String {
        let k = match self.0.kind {
            DeviceType::Cpu => "cpu",
            DeviceType::Gpu => "gpu",
        };
        format!("Device({k}, {})", self.0.index)
    }
}

#[pyclass(name = "Stream", module = "rmx.core", frozen, eq)]
#[derive(Clone, Copy, PartialEq)]
pub struct PyStream(pub Stream);

#[pymethods]
impl PyStream {
    #[getter]
    fn device(&self) -> PyDevice {
        PyDevice(self.0.device)
    }
    fn __repr__(&self) -> String {
        format!(
            "Stream({}, {})",
            PyDevice(self.0.device).__repr__(),
            self.0.index
        )
    }
}

fn device_of(obj: &Bound<'_, PyAny>) -> PyResult<Option<Device>> {
    if let Ok(d) = obj.extract::<PyDevice>() {
        return Ok(Some(d.0));
    }
    if let Ok(t) = obj.extract::<PyDeviceType>() {
        return Ok(Some(Device {
            kind: t.into(),
            index: 0,
        }));
    }
    Ok(None)
}

/// Resolves the `stream=` argument: a Stream, a Device or a DeviceType.
pub fn resolve_stream(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Stream>> {
    let Some(obj) = obj else { return Ok(None) };
    if obj.is_none() {
        return Ok(None);
    }
    if let Ok(s) = obj.extract::<PyStream>() {
        return Ok(Some(s.0));
    }
    if let Some(d) = device_of(obj)? {
        return Ok(Some(device::default_stream(d).py()?));
    }
    Err(pyo3::exceptions::PyTypeError::new_err(
        "stream must be a Stream, a Device or a DeviceType",
    ))
}

/// Runs `f` with ops placed on the requested stream (or the default).
pub fn on_stream<R>(
    stream: Option<&Bound<'_, PyAny>>,
    f: impl FnOnce() -> PyResult<R>,
) -> PyResult<R> {
    match resolve_stream(stream)? {
        None => f(),
        Some(s) => device::with_stream(s, f),
    }
}

#[pyfunction]
pub fn default_device() -> PyDevice {
    PyDevice(device::default_device())
}

#[pyfunction]
pub fn set_default_device(device: &Bound<'_, PyAny>) -> PyResult<()> {
    let d = device_of(device)?
        .ok_or_else(|| pyo3::exceptions::PyTypeError::new_err("expected a Device"))?;
    device::set_default_device(d).py()
}

#[pyfunction]
pub fn default_stream(device: &Bound<'_, PyAny>) -> PyResult<PyStream> {
    let d = device_of(device)?
        .ok_or_else(|| pyo3::exceptions::PyTypeError::new_err("expected a Device"))?;
    Ok(PyStream(device::default_stream(d).py()?))
}

#[pyfunction]
pub fn new_stream(device: &Bound<'_, PyAny>) -> PyResult<PyStream> {
    let d = device_of(device)?
        .ok_or_else(|| pyo3::exceptions::PyTypeError::new_err("expected a Device"))?;
    Ok(PyStream(device::new_stream(d).py()?))
}

#[pyfunction]
pub fn is_available(device: &Bound<'_, PyAny>) -> PyResult<bool> {
    let d = device_of(device)?
        .ok_or_else(|| pyo3::exceptions::PyTypeError::new_err("expected a Device"))?;
    Ok(device::is_available(d))
}

#[pyfunction]
pub fn device_count(device_type: PyDeviceType) -> usize {
    device::device_count(device_type.into())
}

#[pyfunction]
#[pyo3(signature = (stream = None))]
pub fn synchronize(stream: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
    resolve_stream(stream)?;
    Ok(())
}
