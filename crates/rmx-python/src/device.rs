//! Devices (`mx.cpu`, `mx.gpu`, `Device`, `default_device`, `is_available`, ...). Streams
//! and the `stream=` argument every op accepts are in stream.rs.

use crate::errors::PyResultExt;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use rmx_core::device::{self, Device, DeviceType};

pub use crate::stream::on_stream;

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

impl From<DeviceType> for PyDeviceType {
    fn from(d: DeviceType) -> Self {
        match d {
            DeviceType::Cpu => PyDeviceType::Cpu,
            DeviceType::Gpu => PyDeviceType::Gpu,
        }
    }
}

#[pyclass(name = "Device", module = "rmx.core", frozen)]
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
        self.0.kind.into()
    }
    fn __repr__(&self) -> String {
        self.0.to_string()
    }
    /// Equal to another Device, or to a DeviceType (as `Device(cpu) == mx.cpu` in MLX).
    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        device_of(other).is_some_and(|d| d == self.0)
    }
    fn __hash__(&self) -> u64 {
        (self.0.index as u64) << 1 | (self.0.kind == DeviceType::Gpu) as u64
    }
}

/// A Device or a DeviceType (which means index 0).
pub fn device_of(obj: &Bound<'_, PyAny>) -> Option<Device> {
    if let Ok(d) = obj.extract::<PyDevice>() {
        return Some(d.0);
    }
    obj.extract::<PyDeviceType>().ok().map(|t| Device {
        kind: t.into(),
        index: 0,
    })
}

pub fn expect_device(obj: &Bound<'_, PyAny>, func: &str) -> PyResult<Device> {
    device_of(obj).ok_or_else(|| {
        pyo3::exceptions::PyTypeError::new_err(format!(
            "{func}(): incompatible function arguments: expected a Device or DeviceType, got {}",
            obj.get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_default()
        ))
    })
}

#[pyfunction]
pub fn default_device() -> PyDevice {
    PyDevice(device::default_device())
}

#[pyfunction]
pub fn set_default_device(device: &Bound<'_, PyAny>) -> PyResult<()> {
    device::set_default_device(expect_device(device, "set_default_device")?).py()
}

#[pyfunction]
pub fn is_available(device: &Bound<'_, PyAny>) -> PyResult<bool> {
    Ok(device::is_available(expect_device(device, "is_available")?))
}

#[pyfunction]
pub fn device_count(device_type: PyDeviceType) -> usize {
    device::device_count(device_type.into())
}

#[pyfunction]
#[pyo3(signature = (d = None))]
pub fn device_info<'py>(
    py: Python<'py>,
    d: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let dev = match d {
        Some(d) if !d.is_none() => expect_device(d, "device_info")?,
        _ => device::default_device(),
    };
    let out = PyDict::new(py);
    for (k, v) in device::device_info(dev) {
        out.set_item(k, v)?;
    }
    Ok(out)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyDevice>()?;
    m.add_class::<PyDeviceType>()?;
    m.add("cpu", PyDeviceType::Cpu)?;
    m.add("gpu", PyDeviceType::Gpu)?;
    m.add_function(wrap_pyfunction!(default_device, m)?)?;
    m.add_function(wrap_pyfunction!(set_default_device, m)?)?;
    m.add_function(wrap_pyfunction!(is_available, m)?)?;
    m.add_function(wrap_pyfunction!(device_count, m)?)?;
    m.add_function(wrap_pyfunction!(device_info, m)?)?;
    Ok(())
}
