//! Maps rmx errors onto the Python exception types MLX raises.

use pyo3::exceptions::{PyIndexError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::PyErr;
use rmx_core::Error;

thread_local! {
    /// A Python exception raised inside a callback that Rust code called (a traced
    /// function, a custom vjp, ...), kept so the original exception reaches the caller.
    static PENDING: std::cell::RefCell<Option<(String, PyErr)>> = const { std::cell::RefCell::new(None) };
}

/// Carries a Python exception through Rust code as an rmx error; `to_py` turns that
/// error back into the original exception.
pub fn stash(e: PyErr) -> Error {
    let msg = e.to_string();
    PENDING.with(|p| *p.borrow_mut() = Some((msg.clone(), e)));
    Error::Runtime(msg)
}

pub fn to_py(e: Error) -> PyErr {
    if let Error::Runtime(m) = &e {
        let stashed = PENDING.with(|p| p.borrow_mut().take());
        if let Some((msg, err)) = stashed {
            if &msg == m {
                return err;
            }
        }
    }
    match e {
        Error::Value(m) => PyValueError::new_err(m),
        Error::Index(m) => PyIndexError::new_err(m),
        Error::Type(m) => PyTypeError::new_err(m),
        Error::Runtime(m) => PyRuntimeError::new_err(m),
    }
}

/// `.py()?` turns an rmx `Result` into a `PyResult`.
pub trait PyResultExt<T> {
    fn py(self) -> pyo3::PyResult<T>;
}

impl<T> PyResultExt<T> for rmx_core::Result<T> {
    fn py(self) -> pyo3::PyResult<T> {
        self.map_err(to_py)
    }
}
