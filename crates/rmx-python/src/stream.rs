//! Streams (`Stream`, `ThreadLocalStream`, `new_stream`, `default_stream`, `mx.stream(s)`,
//! `synchronize`, `clear_streams`) and the `stream=` argument every op accepts.

use crate::device::{device_of, expect_device, PyDevice};
use crate::errors::PyResultExt;
use pyo3::prelude::*;
use rmx_core::device::{self, Device, Stream};
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

#[pyclass(name = "Stream", module = "rmx.core", frozen)]
#[derive(Clone, Copy, PartialEq)]
pub struct PyStream(pub Stream);

#[pymethods]
impl PyStream {
    #[getter]
    fn device(&self) -> PyDevice {
        PyDevice(self.0.device)
    }
    fn __repr__(&self) -> String {
        self.0.to_string()
    }
    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other.extract::<PyStream>().is_ok_and(|s| s.0 == self.0)
    }
    fn __hash__(&self) -> u64 {
        self.0.index as u64
    }
}

/// A stream that stands for a different stream in each thread (made on first use there).
#[pyclass(name = "ThreadLocalStream", module = "rmx.core", frozen)]
#[derive(Clone, Copy, PartialEq)]
pub struct PyThreadLocalStream {
    id: usize,
    device: Device,
}

#[pymethods]
impl PyThreadLocalStream {
    #[getter]
    fn device(&self) -> PyDevice {
        PyDevice(self.device)
    }
    fn __repr__(&self) -> String {
        format!("ThreadLocalStream({}, {})", self.device, self.id)
    }
    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other
            .extract::<PyThreadLocalStream>()
            .is_ok_and(|s| s == *self)
    }
    fn __hash__(&self) -> u64 {
        self.id as u64
    }
}

thread_local! {
    static THREAD_LOCAL_STREAMS: RefCell<HashMap<usize, Stream>> = RefCell::new(HashMap::new());
}

impl PyThreadLocalStream {
    fn resolve(&self) -> PyResult<Stream> {
        if let Some(s) = THREAD_LOCAL_STREAMS.with(|m| m.borrow().get(&self.id).copied()) {
            return Ok(s);
        }
        let s = device::new_stream(self.device).py()?;
        THREAD_LOCAL_STREAMS.with(|m| m.borrow_mut().insert(self.id, s));
        Ok(s)
    }
}

/// Resolves a Stream, ThreadLocalStream, Device or DeviceType to a stream, if it is one.
fn stream_of(obj: &Bound<'_, PyAny>) -> PyResult<Option<Stream>> {
    if let Ok(s) = obj.extract::<PyStream>() {
        return Ok(Some(s.0));
    }
    if let Ok(s) = obj.extract::<PyThreadLocalStream>() {
        return s.resolve().map(Some);
    }
    match device_of(obj) {
        Some(d) => Ok(Some(device::default_stream(d).py()?)),
        None => Ok(None),
    }
}

fn expect_stream(obj: &Bound<'_, PyAny>, func: &str) -> PyResult<Stream> {
    stream_of(obj)?.ok_or_else(|| {
        pyo3::exceptions::PyTypeError::new_err(format!(
            "{func}(): incompatible function arguments: expected a Stream or Device, got {}",
            obj.get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_default()
        ))
    })
}

/// Resolves the `stream=` argument: a Stream, a Device or a DeviceType. A destroyed
/// stream raises MLX's RuntimeError.
pub fn resolve_stream(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Stream>> {
    let Some(obj) = obj else { return Ok(None) };
    if obj.is_none() {
        return Ok(None);
    }
    let s = expect_stream(obj, "stream")?;
    rmx_core::stream::check_stream(s).py()?;
    Ok(Some(s))
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
pub fn default_stream(device: &Bound<'_, PyAny>) -> PyResult<PyStream> {
    let d = expect_device(device, "default_stream")?;
    Ok(PyStream(device::default_stream(d).py()?))
}

#[pyfunction]
pub fn set_default_stream(stream: PyStream) -> PyResult<()> {
    device::set_default_stream(stream.0).py()
}

#[pyfunction]
pub fn new_stream(device: &Bound<'_, PyAny>) -> PyResult<PyStream> {
    let d = expect_device(device, "new_stream")?;
    Ok(PyStream(device::new_stream(d).py()?))
}

/// Every rmx stream may be used from any thread, so this is `new_stream`.
#[pyfunction]
#[pyo3(name = "new_thread_unsafe_stream")]
pub fn new_stream_for_any_thread(device: &Bound<'_, PyAny>) -> PyResult<PyStream> {
    let d = expect_device(device, "new_thread_unsafe_stream")?;
    Ok(PyStream(device::new_stream(d).py()?))
}

static NEXT_THREAD_LOCAL: AtomicUsize = AtomicUsize::new(0);

#[pyfunction]
pub fn new_thread_local_stream(device: &Bound<'_, PyAny>) -> PyResult<PyThreadLocalStream> {
    // As in MLX, an unavailable device is reported when the stream is first used.
    let d = expect_device(device, "new_thread_local_stream")?;
    Ok(PyThreadLocalStream {
        id: NEXT_THREAD_LOCAL.fetch_add(1, Ordering::Relaxed),
        device: d,
    })
}

#[pyfunction]
pub fn clear_streams() {
    THREAD_LOCAL_STREAMS.with(|m| m.borrow_mut().clear());
    device::clear_streams()
}

#[pyfunction]
#[pyo3(signature = (stream = None))]
pub fn synchronize(py: Python<'_>, stream: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
    let s = match stream {
        Some(s) if !s.is_none() => expect_stream(s, "synchronize")?,
        _ => device::default_stream(device::default_device()).py()?,
    };
    py.allow_threads(|| device::synchronize(s)).py()
}

/// `with mx.stream(s):` makes `s` (or a device's default stream) the default stream of
/// this thread and its device the default device, restoring both on exit.
#[pyclass(name = "StreamContext", module = "rmx.core")]
pub struct StreamContext {
    target: PyObject,
    saved: Vec<(Device, Stream)>,
}

#[pymethods]
impl StreamContext {
    #[new]
    fn new(s: &Bound<'_, PyAny>) -> PyResult<Self> {
        let ok = s.extract::<PyStream>().is_ok()
            || s.extract::<PyThreadLocalStream>().is_ok()
            || device_of(s).is_some();
        if !ok {
            return Err(pyo3::exceptions::PyTypeError::new_err(
                "stream(): incompatible function arguments: expected a Stream, ThreadLocalStream, Device or DeviceType",
            ));
        }
        Ok(StreamContext {
            target: s.clone().unbind(),
            saved: Vec::new(),
        })
    }
    fn __enter__(&mut self, py: Python<'_>) -> PyResult<()> {
        let s = expect_stream(self.target.bind(py), "stream")?;
        let old_device = device::default_device();
        let old_stream = device::default_stream(s.device).py()?;
        device::set_default_device(s.device).py()?;
        device::set_default_stream(s).py()?;
        self.saved.push((old_device, old_stream));
        Ok(())
    }
    #[pyo3(signature = (*_args))]
    fn __exit__(&mut self, _args: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<bool> {
        if let Some((d, s)) = self.saved.pop() {
            device::set_default_stream(s).py()?;
            device::set_default_device(d).py()?;
        }
        Ok(false)
    }
}

#[pyfunction]
pub fn stream(s: &Bound<'_, PyAny>) -> PyResult<StreamContext> {
    StreamContext::new(s)
}

/// Scheduler trace for tests: `_trace(True)` starts recording, `_trace(False)` stops;
/// `_trace_take()` returns `[(stream index, primitive, start_ns, end_ns)]`; `_trace_now()`
/// reads the same clock.
#[pyfunction]
fn _trace(on: bool) {
    rmx_core::scheduler::trace::enable(on)
}

#[pyfunction]
fn _trace_take() -> Vec<(usize, &'static str, u64, u64)> {
    rmx_core::scheduler::trace::take()
        .into_iter()
        .map(|e| (e.stream, e.primitive, e.start_ns, e.end_ns))
        .collect()
}

#[pyfunction]
fn _trace_now() -> u64 {
    rmx_core::scheduler::trace::now()
}

/// The index of a stream (not part of MLX's API; used by the tests with `_trace_take`).
#[pyfunction]
fn _stream_index(s: PyStream) -> usize {
    s.0.index
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyStream>()?;
    m.add_class::<PyThreadLocalStream>()?;
    m.add_class::<StreamContext>()?;
    macro_rules! add {
        ($($f:ident),* $(,)?) => {$( m.add_function(wrap_pyfunction!($f, m)?)?; )*};
    }
    add!(
        default_stream,
        set_default_stream,
        new_stream,
        new_stream_for_any_thread,
        new_thread_local_stream,
        clear_streams,
        synchronize,
        stream,
        _trace,
        _trace_take,
        _trace_now,
        _stream_index,
    );
    Ok(())
}
