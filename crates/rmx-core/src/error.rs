//! The error type of every fallible rmx operation.
//! Each variant maps onto the Python exception MLX raises for the same mistake.

use thiserror::Error;

#[derive(Debug, Clone, Error, PartialEq)]
pub enum Error {
    /// Bad argument values: shapes that do not broadcast, bad axes, ... (Python `ValueError`).
    #[error("{0}")]
    Value(String),
    /// An index out of range (Python `IndexError`).
    #[error("{0}")]
    Index(String),
    /// An unsupported dtype or argument type (Python `TypeError`).
    #[error("{0}")]
    Type(String),
    /// A failure while computing (allocation, backend) (Python `RuntimeError`).
    #[error("{0}")]
    Runtime(String),
}

pub type Result<T> = std::result::Result<T, Error>;

/// `value_err!("[op] message {}", x)` builds an `Error::Value`.
#[macro_export]
macro_rules! value_err {
    ($($t:tt)*) => { $crate::error::Error::Value(format!($($t)*)) };
}
#[macro_export]
macro_rules! index_err {
    ($($t:tt)*) => { $crate::error::Error::Index(format!($($t)*)) };
}
#[macro_export]
macro_rules! type_err {
    ($($t:tt)*) => { $crate::error::Error::Type(format!($($t)*)) };
}
#[macro_export]
macro_rules! runtime_err {
    ($($t:tt)*) => { $crate::error::Error::Runtime(format!($($t)*)) };
}
