//! rmx-core: lazy arrays, dtypes, primitives with their rules, evaluation and backends.
//! `ops` is the public, NumPy/MLX-named API; everything else supports it.

pub mod allocator;
pub mod array;
pub mod backend;
pub mod device;
pub mod dtype;
pub mod element;
pub mod error;
pub mod eval;
pub mod format;
pub mod graph_dot;
pub mod ops;
pub mod primitive;
pub mod primitives;
pub mod scheduler;
pub mod shape;
pub mod stream;
pub mod transforms;

pub use array::{Array, ArrayData};
pub use device::{Device, DeviceType, Stream};
pub use dtype::{Dtype, DtypeCategory};
pub use element::{Element, Scalar};
pub use error::{Error, Result};
pub use eval::{async_eval, eval};
