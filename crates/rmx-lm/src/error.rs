//! The one error type of rmx-lm: every failure a user can cause (a missing file, an
//! unsupported architecture, a bad sampling value) is a variant with a clear message.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum LmError {
    #[error(transparent)]
    Array(#[from] rmx_core::Error),
    #[error("{0}")]
    Io(String),
    #[error("model: {0}")]
    Model(String),
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("chat template: {0}")]
    Template(String),
    #[error("invalid argument: {0}")]
    Invalid(String),
}

pub type Result<T> = std::result::Result<T, LmError>;

/// `Err(LmError::Model(format!(...)))`.
#[macro_export]
macro_rules! model_err {
    ($($t:tt)*) => { $crate::error::LmError::Model(format!($($t)*)) };
}

/// `Err(LmError::Invalid(format!(...)))`.
#[macro_export]
macro_rules! invalid {
    ($($t:tt)*) => { $crate::error::LmError::Invalid(format!($($t)*)) };
}
